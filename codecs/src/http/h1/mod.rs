//! Proxy-grade HTTP/1.1 (RFC 9112), sans-IO: the codec the HTTP gateway relays
//! client and upstream traffic with.
//!
//! It sits beside the admin parser in [`crate::http`] rather than replacing it:
//! the admin plane wants whole small requests in one call, a proxy wants heads
//! and bodies separately and bodies as a stream. The two share only the byte
//! classes.
//!
//! What each part is for:
//! - [`parse_request_head`] / [`parse_response_head`]: cut one head off the
//!   front of a buffer. Hand-written, not `httparse`: httparse accepts bare LF
//!   line ends, and every refusal below would have needed a second pass over
//!   its output anyway. Values are never copied: a head is one `Bytes` and
//!   spans into it.
//! - [`BodyFraming`]: how the body after a head is delimited (RFC 9112 §6.3);
//!   computed by [`RequestHead::framing`] and [`ResponseHead::framing`].
//! - [`ChunkedDecoder`] / [`encode_chunk`] / [`encode_last_chunk`]: chunked
//!   bodies as a stream of data slices, then the trailers.
//! - [`HeadEditor`]: writes a head back out from its parsed lines, dropping and
//!   appending fields (hop-by-hop, `Authorization` out, a credential in,
//!   `Via`, `X-Forwarded-For`, `Forwarded`); lines it did not touch are copied
//!   byte for byte.
//!
//! Driving it (one client connection; the upstream side mirrors it):
//! 1. [`HeadParser::request`] until it returns a head (or an error: answer
//!    [`H1Error::status`] with `Connection: close` and close).
//! 2. Judge the head; if [`RequestHead::expect_continue`] and the request may
//!    go on, the client is waiting for `100 Continue` (or a final answer).
//! 3. Write the upstream head with a [`HeadEditor`]: `remove_hop_by_hop`,
//!    drop the caller's credential, `append` the injected one, Via and
//!    forwarding fields, `set_request_line` with [`RequestHead::origin_form`]
//!    and HTTP/1.1; then the framing field the body is relayed with
//!    (`Content-Length` stays unless Connection-nominated, which it cannot be;
//!    a chunked body needs `Transfer-Encoding: chunked` appended again).
//! 4. Relay the body per [`RequestHead::framing`]: `Length(n)` as n bytes
//!    straight from the buffer, `Chunked` through a [`ChunkedDecoder`] and
//!    [`encode_chunk`] / [`encode_last_chunk`].
//! 5. [`HeadParser::response`] on the upstream bytes; skip interim (1xx)
//!    heads after relaying them; relay the body per
//!    [`ResponseHead::framing`] with the request's method. Keep the client
//!    connection only if both [`RequestHead::keep_alive`] and the framing
//!    allow it; the bytes left in the buffer are the next pipelined request.
//!
//! What it refuses (each a [`H1Error`] whose [`H1Error::status`] is the answer
//! a server gives before it closes the connection): a head over
//! [`Limits::max_head`] or with more than [`Limits::max_headers`] fields (431),
//! a request-target over [`Limits::max_target`] (414), bare LF, bare CR,
//! obs-fold, whitespace before a colon, a name that is not a token, a value
//! with NUL or other control bytes, a Content-Length that is not digits or that
//! differs between repeats, Content-Length together with Transfer-Encoding,
//! Transfer-Encoding in HTTP/1.0, a request Transfer-Encoding other than
//! exactly `chunked` (`gzip, chunked` too: 501, the gateway must read what it
//! relays), a response Transfer-Encoding whose final coding is not `chunked`
//! (RFC 9112 would read it to close; the gateway refuses such an upstream),
//! a missing or repeated Host in HTTP/1.1, an absolute-form target whose
//! authority differs from Host or carries userinfo, an `Expect` other than
//! `100-continue` (417), a version other than 1.0 and 1.1 (505). Chunked
//! bodies: a size line over [`Limits::max_chunk_line`] (extensions included),
//! more than 16 hex digits, a missing CRLF after the data, trailers over
//! [`Limits::max_trailers`] bytes or malformed like a bad header.
//!
//! An error parsing an upstream's response is not the client's fault: the
//! gateway answers 502 whatever [`H1Error::status`] says.

mod chunked;
mod edit;
mod fields;
mod head;
mod path;

pub use chunked::{ChunkEvent, ChunkedDecoder, encode_chunk, encode_last_chunk};
pub use edit::{HOP_BY_HOP, HeadEditor, forwarded_for, is_hop_by_hop};
pub use fields::Fields;
pub use head::{
    BodyFraming, HeadParser, RequestHead, ResponseHead, TargetForm, parse_request_head,
    parse_response_head,
};
pub use path::{PathError, check_normal_path};

/// Caps applied while parsing, each checked before the bytes it bounds are
/// buffered or trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head: start line, fields and the empty line that ends them.
    pub max_head: usize,
    /// Most field lines in a head or in a trailer section.
    pub max_headers: usize,
    /// Longest request-target.
    pub max_target: usize,
    /// Longest chunk-size line, extensions included, CRLF excluded.
    pub max_chunk_line: usize,
    /// Largest trailer section (field lines and the final empty line).
    pub max_trailers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 32 * 1024,
            max_headers: 100,
            max_target: 8 * 1024,
            max_chunk_line: 1024,
            max_trailers: 8 * 1024,
        }
    }
}

/// Why a message was refused. Line numbers count from 1 (the start line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H1Error {
    #[error("head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error("more than {max} field lines")]
    TooManyHeaders { max: usize },
    #[error("request-target longer than {max} bytes")]
    TargetTooLong { max: usize },
    /// `line` 0: a chunk-size line.
    #[error("bare LF (a line end without CR) on line {line}")]
    BareLf { line: usize },
    #[error("bare CR (a CR not followed by LF) on line {line}")]
    BareCr { line: usize },
    #[error("obs-fold (a line starting with whitespace) on line {line}")]
    ObsFold { line: usize },
    #[error("malformed request line")]
    BadRequestLine,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("invalid request-target")]
    BadTarget,
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    #[error("field line {line} has no colon")]
    MissingColon { line: usize },
    #[error("whitespace before the colon on line {line}")]
    SpaceBeforeColon { line: usize },
    #[error("field name on line {line} is not a token")]
    BadFieldName { line: usize },
    #[error("field value on line {line} has a forbidden byte")]
    BadFieldValue { line: usize },
    #[error("an HTTP/1.1 request needs a Host header")]
    MissingHost,
    #[error("more than one Host header")]
    DuplicateHost,
    #[error("invalid Host")]
    BadHost,
    #[error("absolute-form target and Host name different authorities")]
    HostMismatch,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("Content-Length values differ")]
    ConflictingContentLength,
    #[error("Content-Length together with Transfer-Encoding")]
    LengthWithTransferEncoding,
    #[error("Transfer-Encoding is malformed, chunked is not the final coding, or HTTP/1.0")]
    BadTransferEncoding,
    #[error("transfer coding not supported (only chunked)")]
    UnsupportedTransferCoding,
    #[error("invalid Connection header")]
    BadConnection,
    #[error("expectation not supported (only 100-continue)")]
    UnsupportedExpectation,
    #[error("invalid chunk size")]
    BadChunkSize,
    #[error("chunk-size line longer than {max} bytes")]
    ChunkLineTooLong { max: usize },
    #[error("invalid chunk extension")]
    BadChunkExtension,
    #[error("chunk data not followed by CRLF")]
    MissingChunkCrlf,
    #[error("trailer field on line {line} may not be a trailer (framing, routing or credentials)")]
    ForbiddenTrailer { line: usize },
    #[error("trailer section larger than {max} bytes")]
    TrailersTooLarge { max: usize },
    #[error("invalid field to write: {what}")]
    BadOutgoingField { what: &'static str },
}

impl H1Error {
    /// The status a server answers a client's request with before closing.
    /// For an upstream's response the gateway answers 502 instead.
    pub fn status(&self) -> u16 {
        match self {
            H1Error::HeadTooLarge { .. } | H1Error::TooManyHeaders { .. } => 431,
            H1Error::TrailersTooLarge { .. } => 431,
            H1Error::TargetTooLong { .. } => 414,
            H1Error::UnsupportedVersion => 505,
            H1Error::UnsupportedTransferCoding => 501,
            H1Error::UnsupportedExpectation => 417,
            H1Error::BadOutgoingField { .. } => 500,
            _ => 400,
        }
    }
}

/// `OWS`: optional space or horizontal tab.
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trim OWS on both sides.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !is_ows(*first) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !is_ows(*last) {
            break;
        }
        v = rest;
    }
    v
}

/// Comma-separated list elements, OWS trimmed, empty elements skipped
/// (RFC 9110 §5.6.1 asks recipients to accept them).
pub(crate) fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether `v` is a non-empty token (RFC 9110 `tchar`s).
pub(crate) fn is_token(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|&b| super::is_tchar(b))
}
