//! The admin listener: hyper (HTTP/1.1) on a small tokio runtime of its own,
//! on one dedicated thread, with TLS through tokio-rustls when configured.
//!
//! Why its own runtime: the data path runs on the compio shards and must
//! never wait for an operator; the admin plane is a handful of requests a
//! minute. A current-thread runtime keeps it on one thread, off the shards'
//! cores. Handlers block by design (`Control::list_sessions` waits for every
//! shard's reply, a reload validates a file), so they run on a small blocking
//! pool; the health probes are answered inline and keep answering while that
//! pool is busy.
//!
//! Why it cannot be starved: a connection costs a task, not a thread. Each
//! one must send its request head within [`HEADER_TIMEOUT`] (idle keep-alive
//! waits count: hyper starts that clock whenever it waits for a head), its
//! body within [`BODY_TIMEOUT`] and at most [`MAX_BODY`] bytes, and lives at
//! most [`MAX_CONNECTION_AGE`]; at most [`MAX_CONNECTIONS`] are open at once
//! (beyond that new ones are closed at accept, so the backlog never fills).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};

use super::AdminState;
use super::routes::{AdminRequest, Reply, handle};

/// Connections open at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 512;
/// A request head (or, on a kept-alive connection, the next one) must
/// arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body must arrive within this once its head has.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed (gracefully, after its request in flight) at this
/// age, so no client holds a slot for ever by trickling requests.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// The largest request body accepted (the API's bodies are a few hundred
/// bytes of JSON).
pub const MAX_BODY: usize = 64 * 1024;
/// The largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// How long a stopping server waits for requests in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// Threads for the blocking handlers.
const BLOCKING_THREADS: usize = 4;
/// Paths answered on the runtime thread itself, never queued behind a
/// blocking handler.
const INLINE_PATHS: [&str; 2] = ["/healthz", "/readyz"];

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
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| tls_err(key, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running admin server.
pub struct AdminServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

struct Ctx {
    state: Arc<AdminState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    loopback: bool,
    slots: Arc<Semaphore>,
}

impl AdminServer {
    /// Validate the config, bind, load TLS, and start serving.
    pub fn start(state: Arc<AdminState>) -> Result<AdminServer, AdminError> {
        state.config().validate()?;
        let (tls, addr, loopback) = {
            let config = state.config();
            let tls = match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(load_tls(c, k)?)),
                _ => None,
            };
            (tls, config.listen, config.is_loopback())
        };
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| AdminError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a))
            .map_err(|source| AdminError::Bind { addr, source })?;
        state.set_bound(bound);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("tollgate-admin-blocking")
            .build()
            .map_err(AdminError::Thread)?;
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            state,
            tls,
            loopback,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        });
        tracing::info!(listen = %bound, tls = ctx.tls.is_some(), loopback, "admin API listening");
        let thread = std::thread::Builder::new()
            .name("tollgate-admin".into())
            .spawn(move || {
                let slots = ctx.slots.clone();
                runtime.block_on(async move {
                    accept_loop(ctx, listener, stop_rx).await;
                    // Connections were told to close after their request in
                    // flight; give them a moment (every slot back), no more.
                    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
                    let _ = tokio::time::timeout(SHUTDOWN_WAIT, slots.acquire_many(all)).await;
                });
                runtime.shutdown_timeout(SHUTDOWN_WAIT);
            })
            .map_err(AdminError::Thread)?;
        Ok(AdminServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let in-flight requests finish, and join the thread.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("admin API thread panicked");
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    ctx: Arc<Ctx>,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "admin listener unusable");
            return;
        }
    };
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.slots.clone().try_acquire_owned() else {
            // Closing at once keeps the kernel's backlog moving, so a flood
            // costs its senders, not the operators who come after it.
            if last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(max = MAX_CONNECTIONS, %peer, "admin API connection limit reached; closing new connections");
                last_full_warning = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = permit;
            match ctx.tls.clone() {
                None => serve_connection(ctx, stream, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(ctx, tls, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "admin TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(ctx: Arc<Ctx>, io: I, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_ctx = ctx.clone();
    let service = service_fn(move |req| respond(service_ctx.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let age = tokio::time::sleep(MAX_CONNECTION_AGE);
    tokio::pin!(age);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = &mut age => { conn.as_mut().graceful_shutdown(); conn.await }
        _ = stop.changed() => { conn.as_mut().graceful_shutdown(); conn.await }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "admin connection ended");
    }
}

/// One request: read the body within its limits, route it (blocking routes
/// on the blocking pool), and encode the reply.
async fn respond(
    ctx: Arc<Ctx>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(encode(&Reply::error(
            413,
            format!("request body larger than {MAX_BODY} bytes"),
        )));
    }
    let body =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => {
                let reply = if e.is::<http_body_util::LengthLimitError>() {
                    Reply::error(413, format!("request body larger than {MAX_BODY} bytes"))
                } else {
                    Reply::error(400, "request body could not be read")
                };
                return Ok(encode(&reply));
            }
            Err(_) => return Ok(encode(&Reply::error(408, "request body too slow"))),
        };
    let request = AdminRequest::from_parts(&parts, body);
    let reply = if INLINE_PATHS.contains(&request.path.as_str()) {
        handle(&ctx.state, &request, ctx.loopback)
    } else {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || handle(&ctx.state, &request, ctx.loopback))
            .await
            .unwrap_or_else(|_| Reply::error(500, "internal error"))
    };
    Ok(encode(&reply))
}

fn encode(reply: &Reply) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header("X-Content-Type-Options", "nosniff");
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(reply.body.clone())))
        .unwrap_or_else(|_| {
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}
