//! Webhook notifier (filled in by part 4).
