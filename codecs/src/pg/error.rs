//! The one error type of the PostgreSQL codec: what was wrong, in which message.

use std::fmt;

/// A message type byte shown the way the protocol document names it:
/// `'Q'` for printable tags, `startup` for the untyped startup packets (tag 0).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TagName(pub u8);

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("startup"),
            t if t.is_ascii_graphic() => write!(f, "'{}'", t as char),
            t => write!(f, "0x{t:02x}"),
        }
    }
}

impl fmt::Debug for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything that can be wrong with bytes on a PostgreSQL connection.
/// `tag` is the message type byte; 0 means a startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    /// The declared length is above the cap for this message type.
    #[error("message {} declares length {len}, above the maximum {max}", TagName(*tag))]
    MessageTooLarge { tag: u8, len: u32, max: u32 },
    /// The declared length cannot be right (shorter than its own header, negative).
    #[error("message {} declares invalid length {len}", TagName(*tag))]
    InvalidLength { tag: u8, len: i64 },
    /// A message type this direction of the protocol does not have.
    #[error("unknown message type {}", TagName(*tag))]
    UnknownMessage { tag: u8 },
    /// The body does not match the layout of its message type.
    #[error("malformed message {}: {what}", TagName(*tag))]
    Malformed { tag: u8, what: &'static str },
    /// A typed view was asked for on a frame of another type.
    #[error("expected message {}, got {}", TagName(*expected), TagName(*got))]
    UnexpectedMessage { expected: u8, got: u8 },
    /// A StartupMessage for a protocol other than 3.x.
    #[error("unsupported frontend protocol {major}.{minor}")]
    UnsupportedProtocol { major: u16, minor: u16 },
    /// A startup packet whose request code is none of the known ones.
    #[error("unknown startup request code {code}")]
    UnknownStartupCode { code: u32 },
    /// Encoder input that would corrupt the framing: a NUL inside a C string.
    #[error("{what} contains a NUL byte")]
    InteriorNul { what: &'static str },
    /// Encoder arguments that contradict each other (e.g. DataRow replacements out of order).
    #[error("invalid encoder argument: {what}")]
    InvalidArgument { what: &'static str },
    /// Encoder input too large for its length or count field.
    #[error("{what} is {len}, above the maximum {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}
