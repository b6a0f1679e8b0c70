//! The errors of the MySQL codec: what was wrong, in which packet.

/// Everything that can be wrong with bytes on a MySQL/MariaDB connection,
/// or with arguments given to an encoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MySqlError {
    /// The packets announced so far add up to more than the cap for this
    /// direction and state; detected from the headers, before any payload is
    /// buffered or copied.
    #[error("packet payload of at least {len} bytes, above the maximum {max}")]
    PacketTooLarge { len: usize, max: usize },
    /// A packet's sequence id is not the one the exchange is at.
    #[error("packet sequence id {got}, expected {expected}")]
    Sequence { expected: u8, got: u8 },
    /// The payload does not match the layout of the packet it should be.
    #[error("malformed {packet} packet: {what}")]
    Malformed {
        packet: &'static str,
        what: &'static str,
    },
    /// A field the codec refuses to guess about (an unknown column type in a
    /// binary row, a handshake protocol other than 10).
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: u64 },
    /// Encoder input that would corrupt the framing: a NUL inside a
    /// NUL-terminated string.
    #[error("{what} contains a NUL byte")]
    InteriorNul { what: &'static str },
    /// Encoder input too large for its length field.
    #[error("{what} is {len} bytes, above the maximum {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Encoder arguments that contradict each other or the packet they edit.
    #[error("invalid encoder argument: {what}")]
    InvalidArgument { what: &'static str },
}
