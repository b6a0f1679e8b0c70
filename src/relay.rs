//! The `tcp` protocol: a byte relay between a client and its target, with an
//! upstream connect timeout, an idle timeout, half-close in both directions,
//! and external kills (shutdown, admin, revocation).
//!
//! One future per direction, each owning its socket halves, so a read is
//! never raced against anything but the session's end (dropping an in-flight
//! read can lose what it read; we only do that when the session is over).

use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use tracing::{debug, info, warn};

use crate::config::TargetConfig;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;

/// How a relayed session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both sides closed their write halves.
    Closed,
    ClientError,
    UpstreamError,
    IdleTimeout,
    Killed(crate::engine::KillReason),
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::ClientError => "client error",
            EndReason::UpstreamError => "upstream error",
            EndReason::IdleTimeout => "idle timeout",
            EndReason::Killed(crate::engine::KillReason::Shutdown) => "shutdown",
            EndReason::Killed(crate::engine::KillReason::Admin) => "killed by admin",
            EndReason::Killed(crate::engine::KillReason::Revoked) => "identity revoked",
        }
    }
}

/// Connect to a target's upstream within its connect timeout, with TCP_NODELAY.
pub async fn connect_upstream(target: &TargetConfig) -> io::Result<TcpStream> {
    let stream = compio::time::timeout(
        target.connect_timeout,
        TcpStream::connect(target.upstream.as_str()),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Serve one `tcp` session to its end.
pub(crate) async fn serve(
    ctx: &ShardCtx,
    target: &TargetConfig,
    entry: &SessionEntry,
    client: TcpStream,
) {
    let started = Instant::now();
    info!(shard = ctx.id, session = %entry.id, target = %target.name, client = %entry.client, "session opened");
    let connect = std::pin::pin!(connect_upstream(target));
    let upstream = match select(connect, entry.kill.killed()).await {
        Either::Left((Ok(u), _)) => u,
        Either::Left((Err(e), _)) => {
            ShardStats::add(&ctx.stats().upstream_failures, 1);
            warn!(session = %entry.id, target = %target.name, upstream = %target.upstream, error = %e, "upstream connect failed; closing client");
            close(&client);
            return;
        }
        Either::Right(_) => {
            close(&client);
            return;
        }
    };
    let reason = relay(ctx, target, entry, &client, &upstream).await;
    close(&client);
    close(&upstream);
    info!(
        shard = ctx.id,
        session = %entry.id,
        target = %target.name,
        reason = reason.as_str(),
        bytes_up = entry.bytes_up.get(),
        bytes_down = entry.bytes_down.get(),
        duration_ms = started.elapsed().as_millis() as u64,
        "session closed"
    );
}

async fn relay(
    ctx: &ShardCtx,
    target: &TargetConfig,
    entry: &SessionEntry,
    client: &TcpStream,
    upstream: &TcpStream,
) -> EndReason {
    let last_activity = Cell::new(Instant::now());
    let buf = ctx.shared.config.engine.buffer_size;
    let stats = ctx.stats();
    let up = pump(
        client,
        upstream,
        ReadSide::Client,
        buf,
        &last_activity,
        &entry.bytes_up,
        &stats.bytes_client_to_upstream,
    );
    let down = pump(
        upstream,
        client,
        ReadSide::Upstream,
        buf,
        &last_activity,
        &entry.bytes_down,
        &stats.bytes_upstream_to_client,
    );
    let both = async {
        let up = std::pin::pin!(up);
        let down = std::pin::pin!(down);
        match select(up, down).await {
            // One direction finished cleanly (EOF, write side shut down):
            // the other may still have a reply to carry.
            Either::Left((Ok(()), rest)) => {
                rest.await.err().map_or(EndReason::Closed, |s| s.reason())
            }
            Either::Right((Ok(()), rest)) => {
                rest.await.err().map_or(EndReason::Closed, |s| s.reason())
            }
            Either::Left((Err(side), _)) | Either::Right((Err(side), _)) => side.reason(),
        }
    };
    let watchdog = async {
        let idle = idle_timer(&last_activity, target.idle_timeout);
        let idle = std::pin::pin!(idle);
        match select(idle, entry.kill.killed()).await {
            Either::Left(_) => EndReason::IdleTimeout,
            Either::Right((k, _)) => EndReason::Killed(k),
        }
    };
    let both = std::pin::pin!(both);
    let watchdog = std::pin::pin!(watchdog);
    match select(both, watchdog).await {
        Either::Left((r, _)) | Either::Right((r, _)) => r,
    }
}

/// Which side broke a pump.
#[derive(Debug, Clone, Copy)]
enum Side {
    Read(ReadSide),
    Write(ReadSide),
}

#[derive(Debug, Clone, Copy)]
enum ReadSide {
    Client,
    Upstream,
}

impl Side {
    fn reason(self) -> EndReason {
        match self {
            Side::Read(ReadSide::Client) | Side::Write(ReadSide::Client) => EndReason::ClientError,
            Side::Read(ReadSide::Upstream) | Side::Write(ReadSide::Upstream) => {
                EndReason::UpstreamError
            }
        }
    }
}

/// Copy `from` → `to` until `from` reaches EOF, then shut down `to`'s write
/// half (half-close) so the peer sees the same EOF.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    from_side: ReadSide,
    buf_size: usize,
    last_activity: &Cell<Instant>,
    session_bytes: &Cell<u64>,
    shard_bytes: &std::sync::atomic::AtomicU64,
) -> Result<(), Side> {
    let to_side = match from_side {
        ReadSide::Client => ReadSide::Upstream,
        ReadSide::Upstream => ReadSide::Client,
    };
    let mut from_r = from;
    let mut to_w = to;
    let mut buf: Vec<u8> = Vec::with_capacity(buf_size);
    loop {
        // compio fills from the start but never shrinks `len`: clear first.
        buf.clear();
        let BufResult(res, b) = from_r.read(buf).await;
        buf = b;
        let n = match res {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "relay read failed");
                return Err(Side::Read(from_side));
            }
        };
        last_activity.set(Instant::now());
        let BufResult(res, b) = to_w.write_all(buf).await;
        buf = b;
        if let Err(e) = res {
            debug!(error = %e, "relay write failed");
            return Err(Side::Write(to_side));
        }
        session_bytes.set(session_bytes.get() + n as u64);
        ShardStats::add(shard_bytes, n as u64);
    }
    match to_w.shutdown().await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        Err(_) => Err(Side::Write(to_side)),
    }
}

/// Resolves once nothing has moved for `idle`.
async fn idle_timer(last_activity: &Cell<Instant>, idle: Duration) {
    loop {
        let due = last_activity.get() + idle;
        let now = Instant::now();
        if now >= due {
            return;
        }
        compio::time::sleep(due - now).await;
    }
}

/// Shut a socket down both ways so any operation still pending on it
/// completes, and the peer sees the close at once.
fn close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
}
