//! A minimal HTTP/1.1 keep-alive client on the gateway's own codec
//! (`tollgate_codecs::http::h1`): one request at a time per connection, the
//! response head parsed strictly (bare LF, bad framing, oversized heads are
//! errors, as the gateway itself would refuse them), the body read by its
//! framing (length, chunked, or to close) and discarded as it arrives, so a
//! connection holds at most one read buffer whatever the body's size.
//!
//! Why not hyper: the load tool must spend less CPU per request than what it
//! measures on the same small host, and it needs no routing, pooling or body
//! types; a request here is one prebuilt buffer and one write. The parser is
//! the one the gateway relays with, so the tool and the gateway agree on what
//! a well-formed response is.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf as _, BytesMut};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tollgate_codecs::http::h1::{BodyFraming, ChunkEvent, ChunkedDecoder, HeadParser, Limits};

use crate::sql::OpError;

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Body bytes of an error response kept for the error's text.
const ERROR_BODY_BYTES: usize = 200;

/// Where a URL's connections go, and how (plain or TLS).
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One open connection and the bytes read from it but not yet consumed.
pub struct Conn {
    stream: Stream,
    buf: BytesMut,
    limits: Limits,
}

/// What came back for one request.
pub struct Answer {
    pub status: u16,
    /// Whether the connection can carry the next request.
    pub keep_alive: bool,
    /// The status line's reason and the start of the body, for an error's text.
    pub detail: String,
}

impl Conn {
    /// Opens a TCP connection (and the TLS session over it).
    pub async fn open(endpoint: &Endpoint) -> Result<Conn, OpError> {
        let connect = |e: io::Error| OpError::Connect {
            reason: format!("{}: {e}", endpoint.addr),
        };
        let tcp = TcpStream::connect(endpoint.addr).await.map_err(connect)?;
        tcp.set_nodelay(true).map_err(connect)?;
        let stream =
            match &endpoint.tls {
                None => Stream::Plain(tcp),
                Some((config, name)) => {
                    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                    let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                        OpError::Connect {
                            reason: format!("TLS with {}: {e}", endpoint.addr),
                        }
                    })?;
                    Stream::Tls(Box::new(tls))
                }
            };
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            limits: Limits::default(),
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    async fn read_more(&mut self) -> Result<usize, OpError> {
        self.buf.reserve(READ_CHUNK);
        let read = match &mut self.stream {
            Stream::Plain(s) => s.read_buf(&mut self.buf).await,
            Stream::Tls(s) => s.read_buf(&mut self.buf).await,
        };
        read.map_err(io_error)
    }

    /// Like [`Conn::read_more`], but the end of the stream is an error.
    async fn read_some(&mut self) -> Result<(), OpError> {
        match self.read_more().await? {
            0 => Err(OpError::Closed),
            _ => Ok(()),
        }
    }

    /// Sends one request (`parts` written in order) and reads its answer.
    pub async fn exchange(&mut self, parts: &[&[u8]], method: &str) -> Result<Answer, OpError> {
        if !self.buf.is_empty() {
            return Err(OpError::Other {
                reason: format!("{} bytes arrived before the request", self.buf.len()),
            });
        }
        for part in parts {
            self.write(part).await.map_err(io_error)?;
        }
        let mut parser = HeadParser::new(&self.limits);
        let head = loop {
            match parser.response(&mut self.buf) {
                Ok(Some(head)) if head.is_interim() => parser = HeadParser::new(&self.limits),
                Ok(Some(head)) => break head,
                Ok(None) => self.read_some().await?,
                Err(e) => return Err(malformed(e)),
            }
        };
        let status = head.status();
        let mut kept = Vec::new();
        let keep = |kept: &mut Vec<u8>, data: &[u8]| {
            if status >= 400 && kept.len() < ERROR_BODY_BYTES {
                let room = ERROR_BODY_BYTES - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        };
        let mut keep_alive = head.keep_alive(method);
        match head.framing(method) {
            BodyFraming::None => {}
            BodyFraming::Length(mut left) => {
                while left > 0 {
                    if self.buf.is_empty() {
                        self.read_some().await?;
                    }
                    let take =
                        usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
                    keep(&mut kept, &self.buf[..take]);
                    self.buf.advance(take);
                    left -= take as u64;
                }
            }
            BodyFraming::Chunked => {
                let mut chunks = ChunkedDecoder::new(&self.limits);
                loop {
                    match chunks.decode(&mut self.buf) {
                        Ok(Some(ChunkEvent::Data(data))) => keep(&mut kept, &data),
                        Ok(Some(ChunkEvent::End(_))) => break,
                        Ok(None) => self.read_some().await?,
                        Err(e) => return Err(malformed(e)),
                    }
                }
            }
            BodyFraming::CloseDelimited => {
                keep_alive = false;
                loop {
                    keep(&mut kept, &self.buf);
                    self.buf.clear();
                    if self.read_more().await? == 0 {
                        break;
                    }
                }
            }
            BodyFraming::Tunnel => {
                return Err(OpError::Other {
                    reason: format!("the server switched protocols (status {status})"),
                });
            }
        }
        Ok(Answer {
            status,
            keep_alive,
            detail: detail(head.reason(), &kept),
        })
    }

    /// Ends the connection (TLS: close_notify first).
    pub async fn close(self) {
        match self.stream {
            Stream::Plain(mut s) => {
                let _ = s.shutdown().await;
            }
            Stream::Tls(mut s) => {
                let _ = s.shutdown().await;
            }
        }
    }
}

fn io_error(err: io::Error) -> OpError {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => OpError::Closed,
        _ => OpError::Other {
            reason: err.to_string(),
        },
    }
}

fn malformed(err: impl std::fmt::Display) -> OpError {
    OpError::WrongResult {
        what: format!("malformed response: {err}"),
    }
}

/// `reason: body…` printable, on one line, bounded.
fn detail(reason: &[u8], body: &[u8]) -> String {
    let clean = |bytes: &[u8]| -> String {
        String::from_utf8_lossy(bytes)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let (reason, body) = (clean(reason), clean(body));
    match (reason.is_empty(), body.is_empty()) {
        (_, true) => reason,
        (true, false) => body,
        (false, false) => format!("{reason}: {body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_one_printable_line() {
        assert_eq!(
            detail(b"Unauthorized", b"{\"error\":\n\"invalid token\"}\r\n"),
            "Unauthorized: {\"error\": \"invalid token\"}"
        );
        assert_eq!(detail(b"", b"oops"), "oops");
        assert_eq!(detail(b"Not Found", b""), "Not Found");
    }
}
