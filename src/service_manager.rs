//! systemd's readiness protocol (`Type=notify`): what the service manager is told, and when.
//!
//! `READY=1` is sent once every shard listens and the admin API is up (the moment the
//! `--ready-file` report is written), so `systemctl start` returns — and units ordered
//! `After=tollgate.service` start — only when connections are accepted. A SIGHUP reload is
//! bracketed by `RELOADING=1` … `READY=1` so `systemctl reload` waits for it to finish, and
//! `STOPPING=1` announces the drain. Outside systemd (`$NOTIFY_SOCKET` unset) every call
//! is a no-op.
//!
//! No watchdog: a `WATCHDOG=1` ping would come from the signal loop on the main thread,
//! which proves nothing about the shards that carry traffic, while a missed ping makes
//! systemd kill the process and every live session with it. A stuck shard is what
//! `/readyz` reports; a supervisor that wants to act on it should probe that.

use sd_notify::NotifyState;
use tracing::warn;

/// Everything listens: `systemctl start` may return.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A SIGHUP reload starts. `MONOTONIC_USEC` lets systemd ≥ 253 match it with the
/// `reload` job it started; older versions ignore the field.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The reload is over, applied or refused (a refused one keeps the running
/// configuration, which still serves).
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The drain begins: no new connections, live sessions finish.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining live sessions"),
    ]);
}

fn send(states: &[NotifyState<'_>]) {
    // A lost notification must not stop the gateway: systemd times the start out
    // (TimeoutStartSec) and says why, which is the right place for that failure.
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager ($NOTIFY_SOCKET)");
    }
}
