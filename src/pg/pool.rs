//! Upstream connection pool (`[target.postgres.pool]`), session and
//! transaction mode (the relay's `tx.rs` takes and returns connections per
//! transaction; this module is the same for both).
//!
//! Every caller of a target logs in upstream as the same stored role, so a
//! server connection can serve one caller after another: when a caller
//! leaves with its connection idle (ReadyForQuery 'I', nothing pending),
//! the relay runs the reset query (`DISCARD ALL`) and hands the connection
//! back here; anything else (in a transaction, in COPY, mid-result, an
//! error) closes it.
//!
//! One pool per target per shard (a thread-local map: shards are threads
//! with a runtime each, so no lock is ever taken across cores). A shard may
//! hold its share of `size` connections (`PoolConfig::share`): idle, in
//! use, or logging in. A connection is reused only by a caller whose
//! start-up parameters are the same as those it logged in with (they are
//! its session defaults, which `DISCARD ALL` returns to); when the share is
//! taken by connections of other parameters, the oldest idle one is closed
//! to make room.
//!
//! Checkout: the newest idle connection of the key that is within
//! `max_lifetime` and `idle_timeout`, logged in with the credential the
//! file holds now (a rotation drains the rest), and whose socket has
//! neither data nor EOF waiting (a server that restarted or ended the
//! backend); else a new login; else a wait for a release up to
//! `checkout_timeout`, then 53300.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::net::TcpStream;
use tracing::debug;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::auth::Password;
use super::poolstats::{PoolStats, register};
use super::session::UpstreamReady;
use super::txstmts::ServerStatements;
use crate::config::{PoolConfig, TargetConfig};
use crate::tls::{ReadHalf, WriteHalf};

/// What a server connection was logged in with: only a caller asking for
/// the same may reuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnKey {
    upstream: String,
    user: String,
    database: String,
    tls: bool,
    /// The caller's start-up parameters, sorted by name.
    params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ConnKey {
    pub(crate) fn new(
        target: &TargetConfig,
        user: &str,
        database: &str,
        tls: bool,
        params: &[(Vec<u8>, Vec<u8>)],
    ) -> ConnKey {
        let mut params = params.to_vec();
        params.sort();
        ConnKey {
            upstream: target.upstream.clone(),
            user: user.to_string(),
            database: database.to_string(),
            tls,
            params,
        }
    }
}

/// A digest of the stored credential: connections logged in with another
/// are drained. The secret itself is not kept.
pub(crate) type Fingerprint = [u8; 32];

pub(crate) fn fingerprint(password: &Password) -> Fingerprint {
    let d = ring::digest::digest(&ring::digest::SHA256, password.expose());
    let mut f = [0; 32];
    f.copy_from_slice(d.as_ref());
    f
}

/// An idle server connection, as the last caller's relay left it (reset).
pub(crate) struct Idle {
    pub reader: ReadHalf,
    pub writer: WriteHalf,
    pub buf: BytesMut,
    /// ParameterStatus frames the server has reported (login, then changes).
    pub greeting: BytesMut,
    pub key_data: Option<(i32, Vec<u8>)>,
    pub method: &'static str,
    /// Transaction mode: the statements this connection has prepared.
    statements: ServerStatements,
    meta: Meta,
    idle_since: Instant,
}

/// What the pool knows of a connection, idle or in use.
#[derive(Clone)]
struct Meta {
    key: Rc<ConnKey>,
    fingerprint: Fingerprint,
    created: Instant,
}

/// A shard's pool for one target.
#[derive(Default)]
struct TargetPool {
    /// Connections counted against the shard's share: idle, in use and
    /// logging in.
    open: usize,
    /// Newest last.
    idle: Vec<Idle>,
    /// Callers waiting for room, oldest first.
    waiters: VecDeque<async_channel::Sender<()>>,
    /// The credential's digest at the last checkout.
    current: Option<Fingerprint>,
    /// The idle reaper runs for this pool.
    reaping: bool,
    /// This pool's numbers on the metrics endpoint (registered by the
    /// first checkout).
    stats: Option<Arc<PoolStats>>,
}

impl TargetPool {
    fn count(&self, pick: fn(&PoolStats) -> &AtomicU64, n: u64) {
        if let Some(s) = &self.stats {
            PoolStats::add(pick(s), n);
        }
    }

    /// `n` connections are gone: their room is free.
    fn gone(&mut self, n: usize) {
        self.open = self.open.saturating_sub(n);
        self.count(|s| &s.closed, n as u64);
    }
}

thread_local! {
    static POOLS: RefCell<HashMap<String, TargetPool>> = RefCell::default();
}

fn with_pool<R>(target: &str, f: impl FnOnce(&mut TargetPool) -> R) -> R {
    POOLS.with(|p| {
        let mut pools = p.borrow_mut();
        let p = pools.entry(target.to_string()).or_default();
        let r = f(p);
        publish(p);
        r
    })
}

/// The pool's gauges as they stand.
fn publish(p: &TargetPool) {
    if let Some(s) = &p.stats {
        s.idle.store(p.idle.len() as u64, Ordering::Relaxed);
        s.open.store(p.open as u64, Ordering::Relaxed);
    }
}

/// A caller's hold on one unit of its shard's share: dropped without
/// [`Lease::give_back`], the connection is gone and the room is freed.
pub(crate) struct Lease {
    target: String,
    meta: Meta,
    pub reset_query: String,
    /// The connection served an earlier caller (for the `session opened` line).
    pub reused: bool,
    /// Transaction mode: the statements the connection has prepared
    /// (travels with it through the pool).
    pub statements: ServerStatements,
    returned: bool,
    /// A server connection stands behind the lease (a reused one, or a
    /// login that went through): its end is counted as a close.
    live: bool,
    stats: Option<Arc<PoolStats>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("target", &self.target)
            .finish()
    }
}

impl Lease {
    /// Count statements prepared again on this connection.
    pub(crate) fn count_reprepares(&self, n: u64) {
        if let Some(s) = &self.stats {
            PoolStats::add(&s.reprepares, n);
        }
    }

    /// The connection is closed because it was found holding session
    /// state: counted (the close itself is counted when the lease drops).
    pub(crate) fn count_dirty(&self) {
        if let Some(s) = &self.stats {
            PoolStats::add(&s.dirty, 1);
        }
    }

    /// Return a connection the relay reset, for the next caller.
    pub(crate) fn give_back(
        mut self,
        reader: ReadHalf,
        writer: WriteHalf,
        buf: BytesMut,
        greeting: BytesMut,
        key_data: Option<(i32, Vec<u8>)>,
        method: &'static str,
    ) {
        self.returned = true;
        let idle = Idle {
            reader,
            writer,
            buf,
            greeting,
            key_data,
            method,
            statements: std::mem::take(&mut self.statements),
            meta: self.meta.clone(),
            idle_since: Instant::now(),
        };
        with_pool(&self.target, |p| {
            if p.current.is_some_and(|c| c != idle.meta.fingerprint) {
                // The credential changed while it was in use: drain.
                close(idle);
                p.gone(1);
            } else {
                p.idle.push(idle);
            }
            wake(p);
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.returned {
            return;
        }
        // At thread exit the pools may be gone already: nothing to free.
        let _ = POOLS.try_with(|pools| {
            if let Some(p) = pools.borrow_mut().get_mut(&self.target) {
                p.open = p.open.saturating_sub(1);
                if self.live {
                    p.count(|s| &s.closed, 1);
                }
                wake(p);
                publish(p);
            }
        });
    }
}

/// Let the oldest live waiter try again.
fn wake(p: &mut TargetPool) {
    while let Some(w) = p.waiters.pop_front() {
        if w.try_send(()).is_ok() {
            return;
        }
    }
}

/// Close a connection the pool gives up: Terminate when it can go out at
/// once (plain connections), then shut the socket down.
fn close(c: Idle) {
    close_socket_of(&c.writer);
}

/// Close a server connection given up (Terminate first on a plain one).
pub(crate) fn close_socket_of(writer: &WriteHalf) {
    let sock = writer.socket();
    if !writer.is_tls() {
        let _ = socket2::SockRef::from(sock)
            .send_with_flags(&[b'X', 0, 0, 0, 4], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    }
    crate::tls::close_socket(sock);
}

/// Whether an idle connection's socket is still quiet: nothing may arrive
/// on an idle, reset connection, so data (a FATAL from a server shutting
/// down), EOF or an error all mean it is not reusable.
fn quiet(sock: &TcpStream) -> bool {
    let mut one = [MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(sock)
        .recv_with_flags(&mut one, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}

/// What a caller gets from [`take`].
enum Take {
    /// A reused connection.
    Reused(Box<Idle>, Lease),
    /// Room for a new login.
    Room(Lease),
    /// The share is in use: wait.
    Full,
}

/// Take an idle connection of `key`, or room for a new one.
fn take(target: &str, cfg: &PoolConfig, share: usize, key: &Rc<ConnKey>, fp: Fingerprint) -> Take {
    let now = Instant::now();
    with_pool(target, |p| {
        p.current = Some(fp);
        reap(p, cfg, now);
        let stats = p.stats.clone();
        let lease = |meta: Meta, reused: bool| Lease {
            target: target.to_string(),
            meta,
            reset_query: cfg.reset_query.clone(),
            reused,
            statements: ServerStatements::default(),
            returned: false,
            live: reused,
            stats: stats.clone(),
        };
        while let Some(i) = p.idle.iter().rposition(|c| *c.meta.key == **key) {
            let mut c = p.idle.remove(i);
            if quiet(c.writer.socket()) {
                let mut l = lease(c.meta.clone(), true);
                l.statements = std::mem::take(&mut c.statements);
                return Take::Reused(Box::new(c), l);
            }
            debug!(target, "pooled connection closed by the server: replaced");
            close(c);
            p.gone(1);
        }
        let meta = Meta {
            key: key.clone(),
            fingerprint: fp,
            created: now,
        };
        if p.open < share {
            p.open += 1;
            return Take::Room(lease(meta, false));
        }
        if !p.idle.is_empty() {
            // Room held by idle connections of other parameters.
            close(p.idle.remove(0));
            p.count(|s| &s.closed, 1);
            return Take::Room(lease(meta, false));
        }
        Take::Full
    })
}

/// Why a checkout failed.
pub(crate) enum CheckoutError {
    /// No connection came free within `checkout_timeout`.
    Exhausted,
    /// A new login failed.
    Login(String),
}

/// A connection for a caller: reused, or logged in by `login`.
pub(crate) async fn checkout<F, Fut>(
    target: &TargetConfig,
    cfg: &PoolConfig,
    (shard, share): (usize, usize),
    key: ConnKey,
    password: Password,
    login: F,
) -> Result<UpstreamReady, CheckoutError>
where
    F: FnOnce(Password) -> Fut,
    Fut: std::future::Future<Output = Result<UpstreamReady, String>>,
{
    let fp = fingerprint(&password);
    let key = Rc::new(key);
    let deadline = Instant::now() + cfg.checkout_timeout;
    let stats = with_pool(&target.name, |p| {
        p.stats
            .get_or_insert_with(|| register(&target.name, shard))
            .clone()
    });
    start_reaper(&target.name, cfg);
    PoolStats::add(&stats.checkouts, 1);
    let mut waited = false;
    loop {
        match take(&target.name, cfg, share, &key, fp) {
            Take::Reused(c, lease) => {
                let c = *c;
                return Ok(UpstreamReady {
                    reader: c.reader,
                    writer: c.writer,
                    buf: c.buf,
                    greeting: c.greeting,
                    key: c.key_data,
                    status: tollgate_codecs::pg::TransactionStatus::Idle,
                    method: c.method,
                    pool: Some(lease),
                });
            }
            Take::Room(mut lease) => {
                let mut up = login(password).await.map_err(CheckoutError::Login)?;
                lease.live = true;
                PoolStats::add(&stats.opened, 1);
                up.pool = Some(lease);
                return Ok(up);
            }
            Take::Full => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    PoolStats::add(&stats.timeouts, 1);
                    return Err(CheckoutError::Exhausted);
                }
                if !std::mem::replace(&mut waited, true) {
                    PoolStats::add(&stats.waits, 1);
                }
                let (tx, rx) = async_channel::bounded(1);
                with_pool(&target.name, |p| p.waiters.push_back(tx));
                let _ = compio::time::timeout(left, rx.recv()).await;
            }
        }
    }
}

/// One task per pool and shard closes idle connections past their
/// `idle_timeout` or `max_lifetime` even when no caller comes.
fn start_reaper(target: &str, cfg: &PoolConfig) {
    let started = with_pool(target, |p| std::mem::replace(&mut p.reaping, true));
    if started {
        return;
    }
    let (target, cfg) = (target.to_string(), cfg.clone());
    let every = (cfg.idle_timeout.min(cfg.max_lifetime) / 2)
        .clamp(Duration::from_millis(500), Duration::from_secs(60));
    compio::runtime::spawn(async move {
        loop {
            compio::time::sleep(every).await;
            let now = Instant::now();
            with_pool(&target, |p| reap(p, &cfg, now));
        }
    })
    .detach();
}

/// Close idle connections past their time or credential.
fn reap(p: &mut TargetPool, cfg: &PoolConfig, now: Instant) {
    let current = p.current;
    let (keep, gone): (Vec<Idle>, Vec<Idle>) =
        std::mem::take(&mut p.idle).into_iter().partition(|c| {
            now.duration_since(c.meta.created) < cfg.max_lifetime
                && now.duration_since(c.idle_since) < cfg.idle_timeout
                && current.is_none_or(|f| f == c.meta.fingerprint)
        });
    p.idle = keep;
    p.gone(gone.len());
    if !gone.is_empty() {
        for c in gone {
            close(c);
        }
        wake(p);
    }
}
