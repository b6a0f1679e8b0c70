//! Why a session ended: one typed reason for every protocol, written to the
//! log (`session closed`) and the audit record (`SessionEnd.reason`).

use std::fmt;

use crate::engine::KillReason;

/// Why a session ended. The `Display` text is what the log and the
/// recording show; it never carries a credential or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The client said goodbye (PostgreSQL Terminate, a clean EOF).
    ClientTerminated,
    /// Both sides closed their write halves (`tcp`).
    Closed,
    /// The client's connection failed.
    ClientIo(String),
    /// The client sent something its protocol does not allow.
    ClientProtocol(String),
    /// The client went away in the middle of an exchange.
    ClientClosed,
    /// The upstream's connection failed.
    UpstreamIo(String),
    /// The upstream sent something its protocol does not allow.
    UpstreamProtocol(String),
    /// The upstream went away.
    UpstreamClosed,
    /// The caller was not let in (token, revocation, access rules).
    Authentication(String),
    /// Just-in-time access was denied, timed out or abandoned.
    AccessDenied(String),
    /// The gateway could not log in to (or connect to) the upstream.
    UpstreamLogin(String),
    /// The gateway refused the session for a protocol-specific reason
    /// (unsupported start-up, encoding, replication...).
    Refused(String),
    /// Nothing moved for the target's `idle_timeout`.
    IdleTimeout,
    /// A client message did not complete within `[limits] frame_timeout`.
    FrameTimeout,
    /// The session or the process reached its memory budget (`[limits]`).
    OutOfMemory(String),
    /// Ended from outside: shutdown, an operator, a revocation.
    Killed(KillReason),
    /// The recorder failed: no recording, no access.
    RecorderFailed(String),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ClientTerminated => f.write_str("client terminated"),
            EndReason::Closed => f.write_str("closed"),
            EndReason::ClientIo(e) => write!(f, "client: {e}"),
            EndReason::ClientProtocol(e) => write!(f, "client sent a malformed message: {e}"),
            EndReason::ClientClosed => f.write_str("client closed the connection"),
            EndReason::UpstreamIo(e) => write!(f, "upstream: {e}"),
            EndReason::UpstreamProtocol(e) => {
                write!(f, "upstream sent a malformed message: {e}")
            }
            EndReason::UpstreamClosed => f.write_str("upstream closed the connection"),
            EndReason::Authentication(why) => write!(f, "authentication: {why}"),
            EndReason::AccessDenied(why) | EndReason::Refused(why) => f.write_str(why),
            EndReason::UpstreamLogin(e) => write!(f, "upstream login failed: {e}"),
            EndReason::IdleTimeout => f.write_str("idle timeout"),
            EndReason::FrameTimeout => f.write_str("frame timeout: a client message stalled"),
            EndReason::OutOfMemory(e) => write!(f, "out of memory: {e}"),
            EndReason::Killed(k) => write!(f, "{k}"),
            EndReason::RecorderFailed(e) => write!(f, "recorder failed: {e}"),
        }
    }
}

/// What the watchdog ends a session for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    IdleTimeout,
    FrameTimeout,
    Killed(KillReason),
}

impl From<Stop> for EndReason {
    fn from(s: Stop) -> EndReason {
        match s {
            Stop::IdleTimeout => EndReason::IdleTimeout,
            Stop::FrameTimeout => EndReason::FrameTimeout,
            Stop::Killed(k) => EndReason::Killed(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_log_always_showed_them() {
        assert_eq!(EndReason::IdleTimeout.to_string(), "idle timeout");
        assert_eq!(EndReason::ClientTerminated.to_string(), "client terminated");
        assert_eq!(
            EndReason::Killed(KillReason::Revoked).to_string(),
            "identity revoked"
        );
        assert_eq!(
            EndReason::RecorderFailed("disk full".into()).to_string(),
            "recorder failed: disk full"
        );
        assert_eq!(
            EndReason::from(Stop::Killed(KillReason::Admin)),
            EndReason::Killed(KillReason::Admin)
        );
    }
}
