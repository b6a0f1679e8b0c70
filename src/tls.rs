//! Connections that may be TLS: rustls driven sans-IO over compio sockets,
//! split into a read half and a write half so each direction of a relay runs
//! in its own future (RUNTIME.md: the generic compio split holds a lock
//! across reads and deadlocks a TLS relay).
//!
//! The `rustls::Connection` sits in an `Rc<RefCell<_>>` shared by the halves
//! and is borrowed only between awaits. TLS records the read side must send
//! (alerts, key updates) are written by whichever half is not already
//! writing: a `writing` flag makes the write half pick them up when it
//! finishes, so records never interleave on the socket.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use rustls::pki_types::{CertificateDer, ServerName};

/// Bytes of ciphertext read from the socket per read call.
const TLS_READ_CHUNK: usize = 32 * 1024;

struct Shared {
    tls: RefCell<rustls::Connection>,
    sock: TcpStream,
    /// Set while a half is in the middle of writing TLS records.
    writing: Cell<bool>,
}

/// A connection, plain or TLS.
pub struct Conn {
    inner: Inner,
}

enum Inner {
    Plain(TcpStream),
    Tls(Rc<Shared>),
}

/// The read half of a [`Conn`].
pub struct ReadHalf {
    inner: ReadInner,
}

enum ReadInner {
    Plain(TcpStream),
    Tls {
        shared: Rc<Shared>,
        raw: Vec<u8>,
        eof: bool,
    },
}

/// The write half of a [`Conn`].
pub struct WriteHalf {
    inner: WriteInner,
}

enum WriteInner {
    Plain(TcpStream),
    Tls { shared: Rc<Shared>, out: Vec<u8> },
}

impl Conn {
    pub fn plain(sock: TcpStream) -> Conn {
        Conn {
            inner: Inner::Plain(sock),
        }
    }

    /// Server side: complete a TLS handshake with a client.
    pub async fn accept(sock: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<Conn> {
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Conn::handshake(sock, rustls::Connection::Server(conn)).await
    }

    /// Client side: complete a TLS handshake with a server, verifying `name`.
    pub async fn connect(
        sock: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Conn> {
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        Conn::handshake(sock, rustls::Connection::Client(conn)).await
    }

    async fn handshake(sock: TcpStream, tls: rustls::Connection) -> io::Result<Conn> {
        let shared = Rc::new(Shared {
            tls: RefCell::new(tls),
            sock,
            writing: Cell::new(false),
        });
        let mut raw = Vec::with_capacity(TLS_READ_CHUNK);
        let mut out = Vec::new();
        loop {
            flush_tls(&shared, &mut out).await?;
            if !shared.tls.borrow().is_handshaking() {
                break;
            }
            raw.clear();
            let mut sock = &shared.sock;
            let BufResult(n, r) = sock.read(raw).await;
            raw = r;
            if n? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed during the TLS handshake",
                ));
            }
            feed(&shared, &raw)?;
        }
        Ok(Conn {
            inner: Inner::Tls(shared),
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The peer's certificate chain (TLS with client or server certificates).
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(s) => s
                .tls
                .borrow()
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect()),
        }
    }

    /// Negotiated protocol version and cipher suite, for the audit record.
    pub fn tls_summary(&self) -> Option<String> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls(s) => {
                let tls = s.tls.borrow();
                Some(format!(
                    "{:?} {:?}",
                    tls.protocol_version()?,
                    tls.negotiated_cipher_suite()?.suite()
                ))
            }
        }
    }

    pub fn socket(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(s) => s,
            Inner::Tls(s) => &s.sock,
        }
    }

    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self.inner {
            Inner::Plain(s) => (
                ReadHalf {
                    inner: ReadInner::Plain(s.clone()),
                },
                WriteHalf {
                    inner: WriteInner::Plain(s),
                },
            ),
            Inner::Tls(shared) => (
                ReadHalf {
                    inner: ReadInner::Tls {
                        shared: shared.clone(),
                        raw: Vec::with_capacity(TLS_READ_CHUNK),
                        eof: false,
                    },
                },
                WriteHalf {
                    inner: WriteInner::Tls {
                        shared,
                        out: Vec::new(),
                    },
                },
            ),
        }
    }

    /// Shut the underlying socket down both ways (pending operations complete).
    pub fn close(&self) {
        close_socket(self.socket());
    }
}

/// Shut a socket down both ways so any operation pending on it completes and
/// the peer sees the close at once.
pub fn close_socket(sock: &TcpStream) {
    let _ = socket2::SockRef::from(sock).shutdown(Shutdown::Both);
}

fn feed(shared: &Shared, mut raw: &[u8]) -> io::Result<()> {
    let mut tls = shared.tls.borrow_mut();
    while !raw.is_empty() {
        tls.read_tls(&mut raw)?;
        tls.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(())
}

/// Write every pending TLS record to the socket.
async fn flush_tls(shared: &Shared, out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        out.clear();
        {
            let mut tls = shared.tls.borrow_mut();
            while tls.wants_write() {
                tls.write_tls(out)?;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        let mut sock = &shared.sock;
        let BufResult(r, o) = sock.write_all(std::mem::take(out)).await;
        *out = o;
        r?;
    }
}

impl ReadHalf {
    /// Append what arrives into `buf`'s spare capacity; `Ok(0)` at EOF.
    pub async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(TLS_READ_CHUNK);
        }
        match &mut self.inner {
            ReadInner::Plain(s) => {
                let BufResult(n, b) = s.append(std::mem::take(buf)).await;
                *buf = b;
                n
            }
            ReadInner::Tls { shared, raw, eof } => loop {
                {
                    let mut tls = shared.tls.borrow_mut();
                    let start = buf.len();
                    // rustls hands out at most a record's worth per call:
                    // zero (and offer) only that much, not the whole capacity
                    // a large frame may have reserved.
                    let spare = (buf.capacity() - start).min(TLS_READ_CHUNK);
                    buf.resize(start + spare, 0);
                    match tls.reader().read(&mut buf[start..]) {
                        Ok(n) => {
                            buf.truncate(start + n);
                            // Ok(0) is a clean close_notify.
                            return Ok(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            buf.truncate(start);
                        }
                        Err(e) => {
                            buf.truncate(start);
                            return Err(e);
                        }
                    }
                }
                if *eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "TLS peer closed without close_notify",
                    ));
                }
                raw.clear();
                let mut sock = &shared.sock;
                let BufResult(n, r) = sock.read(std::mem::take(raw)).await;
                *raw = r;
                if n? == 0 {
                    *eof = true;
                    // Let rustls see the EOF; a clean close_notify already
                    // queued turns into Ok(0) on the next reader() call.
                    continue;
                }
                feed(shared, raw)?;
                // Records rustls wants to send in reply (alerts, key updates).
                if !shared.writing.get() && shared.tls.borrow().wants_write() {
                    shared.writing.set(true);
                    let mut out = Vec::new();
                    let r = flush_tls(shared, &mut out).await;
                    shared.writing.set(false);
                    r?;
                }
            },
        }
    }
}

impl WriteHalf {
    /// Write all of `data`.
    pub async fn write_all(&mut self, data: Bytes) -> io::Result<()> {
        match &mut self.inner {
            WriteInner::Plain(s) => {
                let BufResult(r, _) = s.write_all(data).await;
                r
            }
            WriteInner::Tls { shared, out } => {
                shared.tls.borrow_mut().writer().write_all(&data)?;
                shared.writing.set(true);
                let r = flush_tls(shared, out).await;
                shared.writing.set(false);
                r
            }
        }
    }

    /// Write several buffers in order.
    pub async fn write_all_vectored(&mut self, data: Vec<Bytes>) -> io::Result<()> {
        match &mut self.inner {
            WriteInner::Plain(s) => {
                if data.len() == 1 {
                    let one = data.into_iter().next().unwrap_or_default();
                    let BufResult(r, _) = s.write_all(one).await;
                    return r;
                }
                let BufResult(r, _) = s.write_vectored_all(data).await;
                r
            }
            WriteInner::Tls { shared, out } => {
                {
                    let mut tls = shared.tls.borrow_mut();
                    for d in &data {
                        tls.writer().write_all(d)?;
                    }
                }
                shared.writing.set(true);
                let r = flush_tls(shared, out).await;
                shared.writing.set(false);
                r
            }
        }
    }

    /// Half-close: no more data from us (close_notify for TLS, then FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.inner {
            WriteInner::Plain(s) => match s.shutdown().await {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                r => r,
            },
            WriteInner::Tls { shared, out } => {
                shared.tls.borrow_mut().send_close_notify();
                shared.writing.set(true);
                let r = flush_tls(shared, out).await;
                shared.writing.set(false);
                r?;
                let mut sock = &shared.sock;
                match sock.shutdown().await {
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                }
            }
        }
    }
}
