//! The admin listener: blocking std sockets, one acceptor thread and a small
//! fixed pool of worker threads, optional TLS through rustls' blocking
//! `StreamOwned`.
//!
//! Why not a compio runtime: the admin plane is a handful of requests a
//! minute, and its handlers block by design (`Control::list_sessions` waits
//! for every shard's reply, a reload validates a file). Plain threads keep it
//! entirely off the shards' cores and runtimes, and a fixed pool with a
//! bounded hand-off queue caps what a flood of admin connections can cost:
//! when every worker is busy and the queue is full, new connections get 503.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_codecs::http::{Limits, encode_response, parse_request};

use super::AdminState;
use super::routes::{Reply, handle};

/// Worker threads serving connections.
const WORKERS: usize = 4;
/// Accepted connections waiting for a worker.
const QUEUE: usize = 64;
/// How often a blocked read wakes to check for shutdown.
const TICK: Duration = Duration::from_millis(200);
/// A keep-alive connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request (head and body) must arrive within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin config: {0}")]
    Config(#[from] super::config::AdminConfigError),
    #[error("admin listener {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("admin TLS {path}: {message}")]
    Tls { path: String, message: String },
    #[error("admin threads: {0}")]
    Thread(#[source] io::Error),
}

/// Load a certificate chain and key (PEM) into a rustls server config
/// using the ring provider.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, AdminError> {
    let tls_err = |path: &Path, message: String| AdminError::Tls {
        path: path.display().to_string(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| tls_err(key, e.to_string()))?;
    Ok(Arc::new(config))
}

/// A running admin server.
pub struct AdminServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct Ctx {
    state: Arc<AdminState>,
    tls: Option<Arc<ServerConfig>>,
    loopback: bool,
    stop: Arc<AtomicBool>,
}

impl AdminServer {
    /// Validate the config, bind, load TLS, and start serving.
    pub fn start(state: Arc<AdminState>) -> Result<AdminServer, AdminError> {
        state.config.validate()?;
        let tls = match (&state.config.tls_cert, &state.config.tls_key) {
            (Some(c), Some(k)) => Some(load_tls(c, k)?),
            _ => None,
        };
        let addr = state.config.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| AdminError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            loopback: state.config.is_loopback(),
            state,
            tls,
            stop: stop.clone(),
        });
        let (tx, rx) = async_channel::bounded::<TcpStream>(QUEUE);
        let mut threads = Vec::with_capacity(WORKERS + 1);
        for i in 0..WORKERS {
            let rx = rx.clone();
            let ctx = ctx.clone();
            let t = std::thread::Builder::new()
                .name(format!("tollgate-admin-{i}"))
                .spawn(move || {
                    while let Ok(stream) = rx.recv_blocking() {
                        serve(&ctx, stream);
                    }
                })
                .map_err(AdminError::Thread)?;
            threads.push(t);
        }
        let accept_ctx = ctx.clone();
        let t = std::thread::Builder::new()
            .name("tollgate-admin-accept".into())
            .spawn(move || accept_loop(&accept_ctx, &listener, &tx))
            .map_err(AdminError::Thread)?;
        threads.push(t);
        tracing::info!(listen = %addr, tls = ctx.tls.is_some(), loopback = ctx.loopback, "admin API listening");
        Ok(AdminServer {
            addr,
            stop,
            threads,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let in-flight requests finish, and join the threads.
    pub fn shutdown(mut self) {
        self.signal_stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn signal_stop(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the acceptor out of accept().
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn accept_loop(ctx: &Ctx, listener: &TcpListener, tx: &async_channel::Sender<TcpStream>) {
    for conn in listener.incoming() {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if stream.set_read_timeout(Some(TICK)).is_err()
            || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
        {
            continue;
        }
        if let Err(async_channel::TrySendError::Full(mut s)) = tx.try_send(stream) {
            tracing::warn!("admin API busy: connection refused with 503");
            if ctx.tls.is_none() {
                let _ = write_reply(&mut s, &Reply::error(503, "admin API busy"), false);
            }
        }
    }
}

fn serve(ctx: &Ctx, stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    let result = match &ctx.tls {
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(conn) => serve_http(ctx, rustls::StreamOwned::new(conn, stream)),
            Err(e) => Err(io::Error::other(e)),
        },
        None => serve_http(ctx, stream),
    };
    if let Err(e) = result {
        tracing::debug!(?peer, error = %e, "admin connection ended");
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn write_reply<S: Write>(s: &mut S, reply: &Reply, keep_alive: bool) -> io::Result<()> {
    let mut headers: Vec<(&str, &str)> = vec![
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
    ];
    headers.extend(reply.headers.iter().map(|(n, v)| (*n, v.as_str())));
    if !keep_alive {
        headers.push(("Connection", "close"));
    }
    let mut out = BytesMut::with_capacity(reply.body.len() + 256);
    encode_response(reply.status, &headers, &reply.body, &mut out).map_err(io::Error::other)?;
    s.write_all(&out)?;
    s.flush()
}

fn serve_http<S: Read + Write>(ctx: &Ctx, mut s: S) -> io::Result<()> {
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut served = 0;
    // When the current request started arriving, or when we went idle.
    let mut since = Instant::now();
    loop {
        match parse_request(&mut buf, &limits) {
            Ok(Some(req)) => {
                served += 1;
                let keep = req.keep_alive()
                    && served < MAX_REQUESTS_PER_CONNECTION
                    && !ctx.stop.load(Ordering::SeqCst);
                let reply = handle(&ctx.state, &req, ctx.loopback);
                write_reply(&mut s, &reply, keep)?;
                if !keep {
                    return Ok(());
                }
                since = Instant::now();
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = write_reply(&mut s, &Reply::error(e.status(), &e), false);
                return Ok(());
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if buf.is_empty() {
                    since = Instant::now();
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if is_timeout(&e) => {
                if ctx.stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if buf.is_empty() {
                    if since.elapsed() > IDLE_TIMEOUT {
                        return Ok(());
                    }
                } else if since.elapsed() > REQUEST_TIMEOUT {
                    let _ = write_reply(&mut s, &Reply::error(408, "request too slow"), false);
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
