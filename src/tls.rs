//! Connections that may be TLS: rustls driven sans-IO over compio sockets,
//! split into a read half and a write half so each direction of a relay runs
//! in its own future (RUNTIME.md: the generic compio split holds a lock
//! across reads and deadlocks a TLS relay).
//!
//! The `rustls::Connection` sits in an `Rc<RefCell<_>>` shared by the halves
//! and is borrowed only between awaits. rustls's backpressure is honoured
//! both ways: plaintext goes in only as far as its send buffer takes it,
//! with the records flushed between rounds, and ciphertext goes in only
//! once the decrypted plaintext has been drained (the rest is kept).
//! Every socket write of TLS records happens under one write lock, so the
//! records of the two halves never interleave; TLS records the read side
//! must send (alerts, key updates) are written by it only when the write
//! half is idle, otherwise the write half's flush loop picks them up.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::lock::Mutex;
use rustls::pki_types::{CertificateDer, ServerName};

/// Bytes of ciphertext read from the socket per read call.
const TLS_READ_CHUNK: usize = 32 * 1024;

struct Shared {
    tls: RefCell<rustls::Connection>,
    sock: TcpStream,
    /// Held by whichever half is writing TLS records to the socket.
    write_lock: Mutex<()>,
    /// Set while the read half writes records: cut off, they leave a
    /// partial TLS record on the socket.
    reply_torn: Cell<bool>,
}

/// A connection, plain or TLS.
pub struct Conn {
    inner: Inner,
}

enum Inner {
    Plain(TcpStream),
    Tls {
        shared: Rc<Shared>,
        /// Ciphertext read during the handshake and not yet given to rustls.
        raw: Vec<u8>,
        pos: usize,
    },
}

/// The read half of a [`Conn`].
pub struct ReadHalf {
    inner: ReadInner,
}

enum ReadInner {
    Plain(TcpStream),
    /// An in-process connection: what arrives on the channel (an HTTP/2
    /// stream's request presented to the HTTP/1.1 relay, src/http/http2).
    Channel(async_channel::Receiver<Bytes>),
    Tls {
        shared: Rc<Shared>,
        /// Ciphertext read from the socket; `raw[pos..]` is not yet in rustls.
        raw: Vec<u8>,
        pos: usize,
        eof: bool,
    },
}

/// The write half of a [`Conn`].
pub struct WriteHalf {
    inner: WriteInner,
    /// Set while a write is under way: if its future is dropped midway the
    /// peer may hold part of a message, and no [`LastWord`] may follow it.
    torn: Rc<Cell<bool>>,
}

/// A handle for one last message on a connection whose write half belongs
/// to a task that may be dropped (a session ended by the gateway): it is
/// sent only if no write was cut off midway.
pub struct LastWord {
    inner: WriteInner,
    torn: Rc<Cell<bool>>,
}

enum WriteInner {
    Plain(TcpStream),
    Tls {
        shared: Rc<Shared>,
        out: Vec<u8>,
    },
    /// `sock`: the connection the stream travels on.
    Channel {
        tx: async_channel::Sender<Bytes>,
        sock: TcpStream,
    },
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
        Conn::handshake(sock, rustls::Connection::Server(conn), Vec::new()).await
    }

    /// Server side, where the client starts its handshake without waiting
    /// for an answer (MySQL's SSLRequest has none): `early` holds what was
    /// read of it already.
    pub async fn accept_after(
        sock: TcpStream,
        config: Arc<rustls::ServerConfig>,
        early: Vec<u8>,
    ) -> io::Result<Conn> {
        let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        Conn::handshake(sock, rustls::Connection::Server(conn), early).await
    }

    /// Client side: complete a TLS handshake with a server, verifying `name`.
    pub async fn connect(
        sock: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Conn> {
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        Conn::handshake(sock, rustls::Connection::Client(conn), Vec::new()).await
    }

    async fn handshake(
        sock: TcpStream,
        tls: rustls::Connection,
        early: Vec<u8>,
    ) -> io::Result<Conn> {
        let shared = Rc::new(Shared {
            tls: RefCell::new(tls),
            sock,
            write_lock: Mutex::new(()),
            reply_torn: Cell::new(false),
        });
        let mut raw = early;
        raw.reserve(TLS_READ_CHUNK);
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            flush_tls(&shared, &mut out).await?;
            if !shared.tls.borrow().is_handshaking() {
                break;
            }
            if pos < raw.len() {
                if !feed_some(&shared, &raw, &mut pos)? {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "TLS: rustls took no ciphertext during the handshake",
                    ));
                }
                continue;
            }
            raw.clear();
            pos = 0;
            let mut sock = &shared.sock;
            let BufResult(n, r) = sock.read(raw).await;
            raw = r;
            if n? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed during the TLS handshake",
                ));
            }
        }
        // Whatever the peer sent right after its Finished stays in `raw`
        // for the read half.
        Ok(Conn {
            inner: Inner::Tls { shared, raw, pos },
        })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls { .. })
    }

    /// The peer's certificate chain (TLS with client or server certificates).
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls { shared: s, .. } => s
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
            Inner::Tls { shared: s, .. } => {
                let tls = s.tls.borrow();
                Some(format!(
                    "{:?} {:?}",
                    tls.protocol_version()?,
                    tls.negotiated_cipher_suite()?.suite()
                ))
            }
        }
    }

    /// The name a TLS client asked for (SNI), server side.
    /// The protocol agreed by ALPN, server or client side.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls { shared: s, .. } => s.tls.borrow().alpn_protocol().map(<[u8]>::to_vec),
        }
    }

    pub fn server_name(&self) -> Option<String> {
        match &self.inner {
            Inner::Plain(_) => None,
            Inner::Tls { shared: s, .. } => match &*s.tls.borrow() {
                rustls::Connection::Server(c) => c.server_name().map(str::to_string),
                rustls::Connection::Client(_) => None,
            },
        }
    }

    pub fn socket(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(s) => s,
            Inner::Tls { shared: s, .. } => &s.sock,
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
                    torn: Rc::default(),
                },
            ),
            Inner::Tls { shared, raw, pos } => (
                ReadHalf {
                    inner: ReadInner::Tls {
                        shared: shared.clone(),
                        raw,
                        pos,
                        eof: false,
                    },
                },
                WriteHalf {
                    inner: WriteInner::Tls {
                        shared,
                        out: Vec::new(),
                    },
                    torn: Rc::default(),
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

/// Hand rustls at most one `read_tls` worth of the ciphertext in `raw`
/// from `*pos` on and decrypt it; returns whether any was taken. rustls
/// refuses ciphertext while its plaintext buffer is full (its backpressure
/// signal), so callers drain plaintext first and keep the rest for later.
fn feed_some(shared: &Shared, raw: &[u8], pos: &mut usize) -> io::Result<bool> {
    let mut tls = shared.tls.borrow_mut();
    let mut rest = &raw[*pos..];
    let before = rest.len();
    tls.read_tls(&mut rest)?;
    *pos += before - rest.len();
    tls.process_new_packets()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(rest.len() < before)
}

/// Write every pending TLS record to the socket. The caller holds the write
/// lock (or owns the connection alone, during the handshake).
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

/// Encrypt and send all of `data`, in as many rounds as rustls's send
/// buffer needs: rustls takes plaintext only up to its buffer limit, so each
/// round hands it what it accepts and writes the records out before the
/// next. Runs under the write lock so no other records interleave.
async fn write_plain(shared: &Shared, out: &mut Vec<u8>, data: &[Bytes]) -> io::Result<()> {
    let _turn = shared.write_lock.lock().await;
    let mut idx = 0;
    let mut off = 0;
    loop {
        {
            let mut tls = shared.tls.borrow_mut();
            while idx < data.len() {
                let d = &data[idx];
                if off == d.len() {
                    idx += 1;
                    off = 0;
                    continue;
                }
                let n = tls.writer().write(&d[off..])?;
                if n == 0 {
                    break;
                }
                off += n;
            }
        }
        flush_tls(shared, out).await?;
        if idx == data.len() {
            return Ok(());
        }
    }
}

/// The halves of an in-process connection: reads take what `rx` delivers
/// (EOF once every sender is gone), writes go to `tx` (bounded, so a slow
/// reader holds the writer back; an error once the receiver is gone).
/// `sock` is the connection that carries it.
pub fn channel(
    rx: async_channel::Receiver<Bytes>,
    tx: async_channel::Sender<Bytes>,
    sock: TcpStream,
) -> (ReadHalf, WriteHalf) {
    (
        ReadHalf {
            inner: ReadInner::Channel(rx),
        },
        WriteHalf {
            inner: WriteInner::Channel { tx, sock },
            torn: Rc::default(),
        },
    )
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
            ReadInner::Channel(rx) => match rx.recv().await {
                Ok(data) => {
                    buf.extend_from_slice(&data);
                    Ok(data.len())
                }
                Err(_) => Ok(0),
            },
            ReadInner::Tls {
                shared,
                raw,
                pos,
                eof,
            } => loop {
                if let Some(n) = take_plaintext(shared, buf)? {
                    return Ok(n);
                }
                if *pos < raw.len() {
                    // Ciphertext left over from an earlier socket read.
                    if !feed_some(shared, raw, pos)? {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "TLS: rustls took no ciphertext with its plaintext drained",
                        ));
                    }
                    reply_records(shared).await?;
                    continue;
                }
                if *eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "TLS peer closed without close_notify",
                    ));
                }
                raw.clear();
                *pos = 0;
                let mut sock = &shared.sock;
                let BufResult(n, r) = sock.read(std::mem::take(raw)).await;
                *raw = r;
                if n? == 0 {
                    *eof = true;
                    // Tell rustls; a close_notify it already has turns into
                    // Ok(0) on the next reader() call.
                    let _ = shared.tls.borrow_mut().read_tls(&mut io::empty());
                }
            },
        }
    }
}

/// Move decrypted bytes into `buf`: `Some(n)` when there were some (or
/// `Some(0)` after close_notify), `None` when rustls needs more ciphertext.
fn take_plaintext(shared: &Shared, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    let mut tls = shared.tls.borrow_mut();
    // Copy straight out of rustls' plaintext buffer: reading through `Read`
    // wants an initialised slice, and zeroing up to a record's worth of
    // spare capacity for every small frame showed as 2-3 % of a shard's CPU.
    // At most the spare capacity (or a chunk) per call, as before, so a
    // large frame's reservation is not outgrown here.
    let spare = (buf.capacity() - buf.len()).min(TLS_READ_CHUNK);
    let mut reader = tls.reader();
    match reader.fill_buf() {
        Ok(chunk) => {
            let n = chunk.len().min(spare);
            buf.extend_from_slice(&chunk[..n]);
            reader.consume(n);
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Send records the read side made rustls queue (alerts, KeyUpdate
/// replies). If the write half holds the lock it is mid-flush and its flush
/// loop picks them up before it lets go (the check and the release happen
/// without an await between them), so the read side never waits on it and
/// a relay writing both ways at once cannot deadlock on the lock.
async fn reply_records(shared: &Shared) -> io::Result<()> {
    if !shared.tls.borrow().wants_write() {
        return Ok(());
    }
    let Some(_turn) = shared.write_lock.try_lock() else {
        return Ok(());
    };
    let mut out = Vec::new();
    shared.reply_torn.set(true);
    flush_tls(shared, &mut out).await?;
    shared.reply_torn.set(false);
    Ok(())
}

impl WriteHalf {
    /// Write all of `data`.
    pub async fn write_all(&mut self, data: Bytes) -> io::Result<()> {
        self.torn.set(true);
        let r = write_one(&mut self.inner, data).await;
        self.torn.set(r.is_err());
        r
    }

    /// A handle to send one last message after this half is dropped.
    pub fn last_word(&self) -> LastWord {
        LastWord {
            inner: match &self.inner {
                WriteInner::Plain(s) => WriteInner::Plain(s.clone()),
                WriteInner::Channel { tx, sock } => WriteInner::Channel {
                    tx: tx.clone(),
                    sock: sock.clone(),
                },
                WriteInner::Tls { shared, .. } => WriteInner::Tls {
                    shared: shared.clone(),
                    out: Vec::new(),
                },
            },
            torn: self.torn.clone(),
        }
    }

    /// Write several buffers in order.
    pub async fn write_all_vectored(&mut self, data: Vec<Bytes>) -> io::Result<()> {
        self.torn.set(true);
        let r = write_many(&mut self.inner, data).await;
        self.torn.set(r.is_err());
        r
    }

    /// The socket under this half (plain or TLS).
    pub fn socket(&self) -> &TcpStream {
        match &self.inner {
            WriteInner::Plain(s) => s,
            WriteInner::Tls { shared, .. } => &shared.sock,
            WriteInner::Channel { sock, .. } => sock,
        }
    }

    /// Whether this half is an in-process channel (see [`channel`]).
    pub fn is_channel(&self) -> bool {
        matches!(self.inner, WriteInner::Channel { .. })
    }

    /// End an in-process channel: its reader sees EOF (no-op otherwise).
    pub fn close_channel(&self) {
        if let WriteInner::Channel { tx, .. } = &self.inner {
            tx.close();
        }
    }

    /// Whether this half writes TLS records.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner, WriteInner::Tls { .. })
    }

    /// Half-close: no more data from us (close_notify for TLS, then FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        shutdown(&mut self.inner).await
    }
}

impl LastWord {
    /// Send `data` and half-close, unless a write on this connection was
    /// cut off midway (then the peer would read `data` as the rest of an
    /// earlier message); returns whether it was sent.
    pub async fn send(mut self, data: Bytes) -> bool {
        if self.torn.get() {
            return false;
        }
        if let WriteInner::Tls { shared, .. } = &self.inner
            && shared.reply_torn.get()
        {
            return false;
        }
        let sent = write_one(&mut self.inner, data).await.is_ok();
        let _ = shutdown(&mut self.inner).await;
        sent
    }
}

async fn write_one(inner: &mut WriteInner, data: Bytes) -> io::Result<()> {
    match inner {
        WriteInner::Plain(s) => {
            let BufResult(r, _) = s.write_all(data).await;
            r
        }
        WriteInner::Tls { shared, out } => write_plain(shared, out, &[data]).await,
        WriteInner::Channel { tx, .. } => send_channel(tx, data).await,
    }
}

async fn send_channel(tx: &async_channel::Sender<Bytes>, data: Bytes) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    tx.send(data)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the stream was closed"))
}

async fn write_many(inner: &mut WriteInner, data: Vec<Bytes>) -> io::Result<()> {
    match inner {
        WriteInner::Plain(s) => {
            if data.len() == 1 {
                let one = data.into_iter().next().unwrap_or_default();
                let BufResult(r, _) = s.write_all(one).await;
                return r;
            }
            let BufResult(r, _) = s.write_vectored_all(data).await;
            r
        }
        WriteInner::Tls { shared, out } => write_plain(shared, out, &data).await,
        WriteInner::Channel { tx, .. } => {
            for d in data {
                send_channel(tx, d).await?;
            }
            Ok(())
        }
    }
}

/// Half-close: no more data from us (close_notify for TLS, then FIN).
async fn shutdown(inner: &mut WriteInner) -> io::Result<()> {
    match inner {
        WriteInner::Channel { tx, .. } => {
            tx.close();
            Ok(())
        }
        WriteInner::Plain(s) => match s.shutdown().await {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        },
        WriteInner::Tls { shared, out } => {
            {
                let _turn = shared.write_lock.lock().await;
                shared.tls.borrow_mut().send_close_notify();
                flush_tls(shared, out).await?;
            }
            let mut sock = &shared.sock;
            match sock.shutdown().await {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                r => r,
            }
        }
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

/// A certificate chosen by the name the client asks for (SNI), for targets
/// that share a listener; a client naming none of them gets the first's
/// (and is then refused by the protocol's routing).
#[derive(Debug)]
struct BySni {
    names: Vec<(String, Arc<dyn rustls::server::ResolvesServerCert>)>,
    fallback: Arc<dyn rustls::server::ResolvesServerCert>,
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|n| self.names.iter().find(|(h, _)| h.eq_ignore_ascii_case(n)))
            .map_or(&self.fallback, |(_, r)| r);
        chosen.resolve(hello)
    }
}

/// `first`'s settings with each name's certificate from its own config.
pub fn by_server_name(
    first: &Arc<rustls::ServerConfig>,
    names: Vec<(String, Arc<rustls::ServerConfig>)>,
) -> Arc<rustls::ServerConfig> {
    let mut config = (**first).clone();
    config.cert_resolver = Arc::new(BySni {
        names: names
            .into_iter()
            .map(|(n, c)| (n, c.cert_resolver.clone()))
            .collect(),
        fallback: first.cert_resolver.clone(),
    });
    Arc::new(config)
}
