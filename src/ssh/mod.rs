//! SSH on the session pipeline (`protocol = "ssh"`). russh runs on a tokio
//! runtime per shard (`runtime.rs`); the compio shard accepts, hands the
//! socket over, and keeps the session's pipeline steps: identity, the
//! upstream login's credential, exec rules, recording, kills.
//!
//! - `adapter.rs`: the `Protocol` (compio side).
//! - `conn.rs`: the russh server towards the caller and the per-channel
//!   relay to the upstream (tokio side).
//! - `upstream.rs`: the russh client towards the host, host key pinned.
//! - `rules.rs`: exec command-line globs. `decode.rs`: export.
//! - `sftp.rs`, `sftp_rules.rs`: the sftp subsystem decoded and judged by
//!   path (only for targets with sftp rules or file recording).
//! - `pty.rs`: typed-line assembly and the pty records; `conn/typed.rs`
//!   judges typed lines (`prompt.rs`: a secret typed at a host's prompt
//!   is not a command), `conn/forward.rs` relays allowed forwards,
//!   `conn/agent_x11.rs` agent and X11 requests, `conn/back.rs` the
//!   channels the host opens back (`agent_msg.rs`, `x11_auth.rs`).
//!
//! The two sides talk through `tokio::sync` channels (awaitable from any
//! runtime): the caller's first credential (the JWT as password, or a user
//! certificate or listed key, `[identity.ssh]`) comes to the compio side,
//! which answers with a refusal or with the upstream login to perform; exec
//! commands come to be judged; channel bytes come to be recorded (up to a
//! cap per channel and direction; within it they are forwarded only once
//! recorded).

pub(crate) mod adapter;
pub mod agent_msg;
mod conn;
pub mod decode;
pub mod prompt;
pub mod pty;
pub mod rules;
pub mod runtime;
mod sftp;
mod sftp_judge;
pub mod sftp_rules;
mod upstream;
pub mod x11_auth;

use bytes::Bytes;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// Which stream of a channel recorded bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stream {
    /// Caller → host.
    Stdin = 0,
    Stdout = 1,
    /// Extended data (stderr).
    Stderr = 2,
    /// The first bytes of a file written over sftp (`sftp.rs`): path
    /// length (u16 BE), path, bytes.
    FileWritten = 5,
    /// The same for a file read.
    FileRead = 6,
    /// A pty request: the terminal's size and TERM (`pty::pty_record`).
    Pty = 3,
    /// A window change: the terminal's new size (`pty::resize_record`).
    Resize = 4,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::FileWritten => "file-written",
            Stream::FileRead => "file-read",
            Stream::Pty => "pty",
            Stream::Resize => "resize",
        }
    }

    pub fn from_u8(b: u8) -> Option<Stream> {
        match b {
            0 => Some(Stream::Stdin),
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            5 => Some(Stream::FileWritten),
            6 => Some(Stream::FileRead),
            3 => Some(Stream::Pty),
            4 => Some(Stream::Resize),
            _ => None,
        }
    }
}

/// The caller's authentication attempt, and where the answer goes.
pub(crate) struct AuthAttempt {
    pub user: String,
    pub presented: Presented,
    pub answer: oneshot::Sender<AuthStep>,
}

/// What the caller authenticated with.
pub(crate) enum Presented {
    /// The password (or keyboard-interactive answer): a token.
    Token(Zeroizing<Vec<u8>>),
    /// An OpenSSH user certificate from a trusted CA whose key the caller
    /// proved it holds (the rest of its checks are the identity step's).
    Certificate(Box<russh::keys::Certificate>),
    /// A listed plain public key the caller proved it holds.
    Key(Box<russh::keys::PublicKey>),
}

/// The compio side's answer to an [`AuthAttempt`].
pub(crate) enum AuthStep {
    /// Refused (the reason is logged on the compio side only).
    Reject,
    /// Admitted so far: log in upstream, report how it went on `result`,
    /// then accept the caller only once `go` says `true` (the session's
    /// start record is written).
    Login {
        params: Box<upstream::LoginParams>,
        result: oneshot::Sender<Result<(), String>>,
        go: oneshot::Receiver<bool>,
    },
}

/// What the tokio side reports to the session's relay.
pub(crate) enum Event {
    /// Bytes moved on a channel; `recorded` is the part within the cap
    /// (empty past it). With `ack`, the bytes wait until recorded (`true`)
    /// or the recorder failed (`false`).
    Data {
        channel: u32,
        stream: Stream,
        recorded: Bytes,
        len: usize,
        ack: Option<oneshot::Sender<bool>>,
    },
    /// An exec request to judge: `Ok` runs it, `Err(message)` refuses it.
    Exec {
        channel: u32,
        command: Vec<u8>,
        answer: oneshot::Sender<Result<(), String>>,
    },
    /// An sftp request (`sftp.rs`), judged as `judge` says and recorded as
    /// `statement` (which names the channel): `Ok` forwards it,
    /// `Err(message)` refuses it.
    Sftp {
        statement: String,
        judge: SftpJudge,
        answer: oneshot::Sender<Result<(), String>>,
    },
    /// A line typed into a pty shell, to judge before its Enter is
    /// forwarded: `Ok` sends the Enter, `Err(message)` refuses the line.
    Typed {
        channel: u32,
        line: pty::TypedLine,
        answer: oneshot::Sender<Result<(), String>>,
    },
    /// A channel request recorded as an event (`shell`, `subsystem sftp`,
    /// a refused forwarding): `allowed` or refused by configuration.
    Note {
        channel: u32,
        what: String,
        allowed: bool,
    },
}

/// How the compio side judges an sftp request.
pub(crate) enum SftpJudge {
    /// The operation on each (normalised, absolute) path: the strictest
    /// verdict wins.
    Paths(crate::config::ssh_sftp::SftpOp, Vec<Vec<u8>>),
    /// Refused before the rules (a path that cannot be judged, an unknown
    /// extension): the message.
    Refused(String),
    /// Recorded only (a CLOSE's sizes and digest).
    Record,
}

/// The header of a recorded data record: channel id (big-endian u32) and
/// stream; the bytes follow.
pub const RECORD_HEADER: usize = 5;
