//! WebSocket (RFC 6455), sans-IO, for a gateway that relays frames and
//! records messages.
//!
//! - [`FrameDecoder`]: frames from the front of a buffer as a stream of
//!   [`FrameEvent`]s (header, unmasked payload pieces, end), so a large frame
//!   is never held whole. It refuses an unmasked frame from a client, a
//!   masked one from a server, RSV bits (no extension is negotiated: the
//!   handshake check refuses `Sec-WebSocket-Extensions`), reserved opcodes,
//!   a fragmented or over-125-byte control frame, a length in more bytes
//!   than needed or with the top bit set, and any length over the cap,
//!   before a payload byte is read.
//! - [`MessageAssembler`]: joins fragments into messages for the recorder,
//!   keeping at most a capped prefix of each (the rest is counted, not
//!   kept); refuses a continuation with no message open and a new data
//!   message inside an open one. Close payloads are checked (codes, UTF-8);
//!   Text payloads are not (a capped prefix may end mid-character, and the
//!   endpoints fail the connection themselves).
//! - [`encode_frame`] / [`encode_close`]: frames out; [`encode_frame_header`]
//!   and [`mask_payload`] for a relay that streams a payload it decoded.
//! - [`accept_key`], [`check_upgrade_request`], [`check_upgrade_response`]:
//!   the opening handshake.
//! - [`k8s`]: the Kubernetes `v4`/`v5.channel.k8s.io` sub-protocols carried
//!   in binary messages (`kubectl exec`).

mod frame;
mod handshake;
pub mod k8s;
mod message;

pub use frame::{
    FrameDecoder, FrameEvent, FrameHeader, Opcode, Sender, encode_close, encode_frame,
    encode_frame_header, mask_payload,
};
pub use handshake::{Upgrade, accept_key, check_upgrade_request, check_upgrade_response};
pub use message::{Message, MessageAssembler, parse_close};

/// Why a frame, message or handshake was refused. After a frame error the
/// connection is failed (RFC 6455 §7.1.7), with close code [`WsError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("RSV bits set without a negotiated extension")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("a client frame was not masked")]
    UnmaskedClientFrame,
    #[error("a server frame was masked")]
    MaskedServerFrame,
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("payload length not in its shortest form or over 2^63")]
    BadLength,
    #[error("frame payload of {len} bytes exceeds {max}")]
    FrameTooLarge { len: u64, max: u64 },
    #[error("continuation frame with no message open")]
    UnexpectedContinuation,
    #[error("new data message while a fragmented one is open")]
    MessageInterleaved,
    #[error("invalid close frame payload")]
    BadClose,
    #[error("invalid WebSocket handshake: {0}")]
    Handshake(&'static str),
    #[error("Kubernetes channel message: {0}")]
    Channel(&'static str),
}

impl WsError {
    /// The close code to fail the connection with: 1002 for protocol
    /// errors, 1009 for a frame over the cap, 1007 for a bad close payload.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::FrameTooLarge { .. } => 1009,
            WsError::BadClose => 1007,
            _ => 1002,
        }
    }
}
