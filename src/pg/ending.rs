//! A session the gateway ends gets PostgreSQL's own goodbye first: a FATAL
//! `57P01` "terminating connection ..." naming why, so a client prints the
//! reason instead of "server closed the connection unexpectedly".

use std::time::Duration;

use bytes::BytesMut;
use tollgate_codecs::pg::PgError;

use super::session::{fatal, sqlstate};
use crate::engine::KillReason;
use crate::tls::LastWord;

/// Why the gateway itself ended a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    Killed(KillReason),
    IdleTimeout,
    /// A client message did not arrive whole within `[limits] frame_timeout`.
    FrameTimeout,
    /// The client sent a message the gateway cannot accept.
    Protocol {
        code: &'static str,
        message: String,
    },
}

/// SQLSTATE for a message above its size cap (PostgreSQL's own choice).
pub(crate) const PROGRAM_LIMIT_EXCEEDED: &str = "54000";

/// The SQLSTATE and sentence PostgreSQL would send for a client message
/// the gateway refuses to parse: `54000` when too large, `08P01` otherwise.
pub(crate) fn protocol_error(e: &PgError) -> Ending {
    let code = match e {
        PgError::MessageTooLarge { .. } | PgError::TooLong { .. } => PROGRAM_LIMIT_EXCEEDED,
        _ => sqlstate::PROTOCOL_VIOLATION,
    };
    Ending::Protocol {
        code,
        message: format!("invalid message from the client: {e}"),
    }
}

/// SQLSTATE for a budget the session or the gateway reached.
pub(crate) const OUT_OF_MEMORY: &str = "53200";

/// The FATAL for a message refused by a memory budget (`[limits]`).
pub(crate) fn out_of_memory(e: &crate::limits::OverBudget) -> Ending {
    Ending::Protocol {
        code: OUT_OF_MEMORY,
        message: format!("out of memory: {e}"),
    }
}

/// Write the FATAL for `e` into `out` (for a caller that owns the writer).
pub(crate) fn protocol_fatal(out: &mut BytesMut, e: &PgError) {
    if let Ending::Protocol { code, message } = protocol_error(e) {
        fatal(out, code, &message);
    }
}

impl Ending {
    /// The sentence the client reads.
    pub(crate) fn message(&self) -> &str {
        match self {
            Ending::Protocol { message, .. } => message,
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
            Ending::FrameTimeout => {
                "terminating connection because a message from the client did not arrive whole within the frame timeout"
            }
        }
    }
}

/// Tell the client why, then half-close. Skipped when a write to the
/// client was cut off midway (the FATAL would be read as its rest).
pub(crate) async fn say_goodbye(w: LastWord, why: Ending) {
    let mut out = BytesMut::new();
    let code = match &why {
        Ending::Protocol { code, .. } => code,
        _ => sqlstate::ADMIN_SHUTDOWN,
    };
    fatal(&mut out, code, why.message());
    // A client that reads nothing must not keep an ended session alive.
    let _ = compio::time::timeout(GOODBYE_LIMIT, w.send(out.freeze())).await;
}

/// How long the goodbye may wait on a client that does not read.
const GOODBYE_LIMIT: Duration = Duration::from_secs(2);
