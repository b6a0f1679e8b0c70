//! A session the gateway ends gets PostgreSQL's own goodbye first: a FATAL
//! `57P01` "terminating connection ..." naming why, so a client prints the
//! reason instead of "server closed the connection unexpectedly".

use std::time::Duration;

use bytes::BytesMut;

use super::session::{fatal, sqlstate};
use crate::engine::KillReason;
use crate::tls::LastWord;

/// Why the gateway itself ended a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Killed(KillReason),
    IdleTimeout,
}

impl Ending {
    /// The sentence the client reads.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Ending::Killed(KillReason::Revoked) => {
                "terminating connection because the caller's identity was revoked"
            }
            Ending::Killed(KillReason::Admin) => {
                "terminating connection because it was killed by an operator"
            }
            Ending::Killed(KillReason::Shutdown) => {
                "terminating connection because the gateway is shutting down"
            }
            Ending::IdleTimeout => "terminating connection because of the idle timeout",
        }
    }

    /// The reason in the log and the audit record (unchanged wording).
    pub(crate) fn reason(self) -> String {
        match self {
            Ending::Killed(k) => k.to_string(),
            Ending::IdleTimeout => "idle timeout".to_string(),
        }
    }
}

/// Tell the client why, then half-close. Skipped when a write to the
/// client was cut off midway (the FATAL would be read as its rest).
pub(crate) async fn say_goodbye(w: LastWord, why: Ending) {
    let mut out = BytesMut::new();
    fatal(&mut out, sqlstate::ADMIN_SHUTDOWN, why.message());
    // A client that reads nothing must not keep an ended session alive.
    let _ = compio::time::timeout(GOODBYE_LIMIT, w.send(out.freeze())).await;
}

/// How long the goodbye may wait on a client that does not read.
const GOODBYE_LIMIT: Duration = Duration::from_secs(2);
