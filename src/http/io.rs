//! One side of an HTTP connection (the caller's or the upstream's): its
//! socket halves and read buffer, reads metered for the session, and the
//! short answers the gateway writes itself.

use std::cell::Cell;
use std::io;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use compio::net::TcpStream;
use tollgate_codecs::http::encode_response;

use crate::pipeline::EndReason;
use crate::tls::{Conn, ReadHalf, WriteHalf, close_socket};

/// Who a failure is about, to name the session's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Client,
    Upstream,
}

impl Peer {
    pub fn io(self, e: io::Error) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientIo(e.to_string()),
            Peer::Upstream => EndReason::UpstreamIo(e.to_string()),
        }
    }

    pub fn closed(self) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientClosed,
            Peer::Upstream => EndReason::UpstreamClosed,
        }
    }

    pub fn protocol(self, e: impl std::fmt::Display) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientProtocol(e.to_string()),
            Peer::Upstream => EndReason::UpstreamProtocol(e.to_string()),
        }
    }
}

/// Where a side's reads are counted: the session's byte counter for that
/// direction and its idle clock.
#[derive(Clone, Copy)]
pub(crate) struct Meter<'a> {
    pub bytes: &'a Cell<u64>,
    pub last: &'a Cell<Instant>,
}

impl Meter<'_> {
    pub fn add(&self, n: usize) {
        self.bytes.set(self.bytes.get() + n as u64);
        self.last.set(Instant::now());
    }
}

/// A connection's halves and what has been read and not yet consumed.
pub(crate) struct Side {
    pub sock: TcpStream,
    pub r: ReadHalf,
    pub w: WriteHalf,
    pub buf: BytesMut,
    pub peer: Peer,
}

impl Side {
    pub fn new(sock: TcpStream, conn: Conn, peer: Peer) -> Side {
        let (r, w) = conn.split();
        Side {
            sock,
            r,
            w,
            buf: BytesMut::with_capacity(16 << 10),
            peer,
        }
    }

    /// Read more into the buffer; `Ok(0)` at EOF.
    pub async fn fill(&mut self, meter: Meter<'_>) -> Result<usize, EndReason> {
        let n = self
            .r
            .read_into(&mut self.buf)
            .await
            .map_err(|e| self.peer.io(e))?;
        meter.add(n);
        Ok(n)
    }

    /// Read more, an EOF being an error (the peer left mid-message).
    pub async fn fill_some(&mut self, meter: Meter<'_>) -> Result<(), EndReason> {
        match self.fill(meter).await? {
            0 => Err(self.peer.closed()),
            _ => Ok(()),
        }
    }

    pub async fn write(&mut self, data: Bytes) -> Result<(), EndReason> {
        self.w.write_all(data).await.map_err(|e| self.peer.io(e))
    }

    /// An HTTP/2 stream's side (`src/http/http2`): the stream's request
    /// comes in on `rx`, what the relay answers goes out on `tx`; `sock`
    /// is the caller's connection that carries the stream.
    pub fn stream(
        sock: TcpStream,
        rx: async_channel::Receiver<Bytes>,
        tx: async_channel::Sender<Bytes>,
    ) -> Side {
        let (r, w) = crate::tls::channel(rx, tx, sock.clone());
        Side {
            sock,
            r,
            w,
            buf: BytesMut::with_capacity(16 << 10),
            peer: Peer::Client,
        }
    }

    /// Close the connection (for an HTTP/2 stream: the stream only, never
    /// the connection that carries the others).
    pub fn close(&self) {
        if self.w.is_channel() {
            self.w.close_channel();
        } else {
            close_socket(&self.sock);
        }
    }
}

/// A complete short answer from the gateway itself, closing the connection
/// when `close`.
pub(crate) fn answer(status: u16, headers: &[(&str, &str)], body: &str, close: bool) -> Bytes {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if close {
        all.push(("Connection", "close"));
    }
    let mut out = BytesMut::new();
    if encode_response(status, &all, body.as_bytes(), &mut out).is_err() {
        // Every caller passes constant, valid fields; fail closed anyway.
        out.clear();
        out.extend_from_slice(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    out.freeze()
}

/// The 401 every authentication failure gets: one generic body, the
/// precise reason in the log only.
pub(crate) fn unauthorized() -> Bytes {
    answer(
        401,
        &[
            ("WWW-Authenticate", "Bearer error=\"invalid_token\""),
            ("Content-Type", "text/plain"),
        ],
        "authentication failed\n",
        true,
    )
}

/// A refusal of a malformed message (the codec's status), then close.
pub(crate) fn malformed(status: u16) -> Bytes {
    answer(
        status,
        &[("Content-Type", "text/plain")],
        "bad request\n",
        true,
    )
}

/// RFC 9457 problem details for a request a rule blocked.
pub(crate) fn forbidden(rule: &str, close: bool) -> Bytes {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": format!("blocked by rule {rule}"),
        "rule": rule,
    })
    .to_string();
    answer(
        403,
        &[("Content-Type", "application/problem+json")],
        &body,
        close,
    )
}
