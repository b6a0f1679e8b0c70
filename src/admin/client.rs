//! CLI client for the admin API (filled in by part 6).
