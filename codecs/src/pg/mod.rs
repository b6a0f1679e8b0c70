//! Sans-IO PostgreSQL v3 wire codec: framing with per-type caps, lazy typed views, encoders.
//!
//! The session reads bytes into a `BytesMut` and calls [`next_startup_frame`]
//! until the startup phase is over, then [`next_frame`] with the [`Caps`] of
//! the direction it reads (client → [`Caps::frontend`], server →
//! [`Caps::backend`]). Both return `Ok(None)` when more bytes are needed, and
//! check the declared length against the cap for that message type *before*
//! anything is reserved, so a hostile 2 GiB length costs nothing.
//!
//! A frame is a `Bytes` slice of the read buffer (header included), so the
//! allow path forwards it unchanged. Typed views (`Query::parse(&frame)`,
//! `DataRow::parse(&frame)`, ...) borrow from the frame, validate every count
//! and length once, and then hand out infallible iterators.
//!
//! Encoders append a whole message to a `BytesMut` and patch its length
//! afterwards; on error they leave the buffer as it was.
//!
//! Tags overlap between directions (`D` is Describe from the client and
//! DataRow from the server), so the caller picks the parser by direction.

mod backend;
mod encode;
mod error;
mod frame;
mod frontend;
mod read;
mod startup;

pub use backend::{
    Authentication, BackendKeyData, BackendMessage, CommandComplete, CopyResponse, DataRow,
    ErrorResponse, Field, Fields, FunctionCallResponse, NegotiateProtocolVersion,
    NotificationResponse, ParameterDescription, ParameterStatus, ReadyForQuery, RowDescription,
    SaslMechanisms, TransactionStatus,
};
pub use encode::*;
pub use error::{PgError, TagName};
pub use frame::{Caps, Frame, FrameMut, HEADER_LEN, Limits, frame_len, next_frame, next_frame_mut};
pub use frontend::{
    Bind, Close, CopyData, CopyFail, Describe, Execute, FrontendMessage, FunctionCall, ObjectKind,
    Parse, PasswordMessage, Query, SaslInitialResponse, SaslResponse,
};
pub use read::{Formats, Oids, Values};
pub use startup::{
    CANCEL_REQUEST_CODE, CancelRequest, GSSENC_REQUEST_CODE, PROTOCOL_3_0, Params,
    SSL_REQUEST_CODE, StartupFrame, StartupMessage, StartupPacket, next_startup_frame,
};

/// Message type bytes, named so that call sites read as the protocol document does.
pub mod tag {
    // Frontend.
    pub const QUERY: u8 = b'Q';
    pub const PARSE: u8 = b'P';
    pub const BIND: u8 = b'B';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const SYNC: u8 = b'S';
    pub const CLOSE: u8 = b'C';
    pub const FLUSH: u8 = b'H';
    pub const COPY_FAIL: u8 = b'f';
    pub const FUNCTION_CALL: u8 = b'F';
    /// PasswordMessage, SASLInitialResponse and SASLResponse share this tag.
    pub const PASSWORD: u8 = b'p';
    pub const TERMINATE: u8 = b'X';
    // Both directions.
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    // Backend.
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const DATA_ROW: u8 = b'D';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const NO_DATA: u8 = b'n';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
}
