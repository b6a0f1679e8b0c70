//! Sans-IO HTTP/1.1: a request-head parser with hard caps and a response
//! encoder. Built for the admin plane (small JSON requests), so it supports
//! `Content-Length` bodies only; a chunked or otherwise transfer-encoded
//! request body is refused rather than guessed at (request smuggling lives in
//! the gap between two parsers' guesses).
//!
//! The gateway's proxy codec (streaming bodies, chunked both ways, hop-by-hop
//! handling) is [`h1`].

pub mod h1;
pub mod k8s;
pub mod query;
mod request;
mod response;

pub use request::{Limits, Request, parse_request};
pub use response::{encode_response, reason_phrase};

/// Largest request head (request line + headers) accepted by default.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted by default.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most header fields accepted by default.
pub const MAX_HEADERS: usize = 64;

/// Why a request was refused. Each maps to the status code a server should
/// answer with before closing the connection ([`HttpError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("request head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    #[error("request body of {len} bytes exceeds {max}")]
    BodyTooLarge { len: u64, max: usize },
    #[error("malformed request line")]
    BadRequestLine,
    #[error("unsupported HTTP version")]
    BadVersion,
    #[error("malformed header field on line {line}")]
    BadHeader { line: usize },
    #[error("an HTTP/1.1 request needs exactly one Host header")]
    MissingHost,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("Transfer-Encoding is not supported; send a Content-Length")]
    TransferEncoding,
    #[error("invalid header value: {what}")]
    BadResponseHeader { what: &'static str },
}

impl HttpError {
    /// The status code that reports this error to the client.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::BadVersion => 505,
            HttpError::TransferEncoding => 411,
            HttpError::BadRequestLine
            | HttpError::BadHeader { .. }
            | HttpError::MissingHost
            | HttpError::BadContentLength => 400,
            HttpError::BadResponseHeader { .. } => 500,
        }
    }
}

/// RFC 9110 `tchar`: the bytes allowed in a method or a header name.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// A header value byte: visible ASCII, space, tab, or obs-text. Never CR, LF or NUL.
pub(crate) fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80
}
