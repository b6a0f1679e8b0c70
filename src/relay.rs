//! The `tcp` protocol: a byte relay between a client and its target, with an
//! upstream connect timeout, an idle timeout, half-close in both directions,
//! and external kills (shutdown, admin, revocation).
//!
//! One future per direction, each owning its socket halves, so a read is
//! never raced against anything but the session's end (dropping an in-flight
//! read can lose what it read; we only do that when the session is over).

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use tracing::{debug, info, warn};

use crate::config::TargetConfig;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::metrics::AuthOutcome;
use crate::recording::SessionRecording;
use crate::tls::{Conn, ReadHalf, WriteHalf, close_socket};
use tollgate_recorder::{SessionEnd, SessionStart};

/// How a relayed session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both sides closed their write halves.
    Closed,
    ClientError,
    UpstreamError,
    IdleTimeout,
    RecorderFailed,
    Killed(crate::engine::KillReason),
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::ClientError => "client error",
            EndReason::UpstreamError => "upstream error",
            EndReason::IdleTimeout => "idle timeout",
            EndReason::RecorderFailed => "recorder failed",
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
    target_idx: usize,
    entry: &SessionEntry,
    client: TcpStream,
) {
    let started = Instant::now();
    let snapshot = ctx.snapshot();
    let target = &snapshot.config.targets[target_idx];
    let rt = &snapshot.targets[target_idx];
    let metrics = ctx.shared.metrics.shard(ctx.id);
    // mTLS: the workload certificate is the caller's identity.
    let client_conn = match &rt.tls {
        None => Conn::plain(client.clone()),
        Some(cfg) => {
            let accept = compio::time::timeout(
                target.auth_timeout,
                Conn::accept(client.clone(), cfg.clone()),
            );
            let accept = std::pin::pin!(accept);
            let conn = match select(accept, entry.kill.killed()).await {
                Either::Left((Ok(Ok(c)), _)) => c,
                Either::Left((Ok(Err(e)), _)) => {
                    metrics.auth_refused(AuthOutcome::Other);
                    warn!(session = %entry.id, target = %target.name, client = %entry.client, error = %e, "TLS handshake failed");
                    close_socket(&client);
                    return;
                }
                Either::Left((Err(_), _)) | Either::Right(_) => {
                    close_socket(&client);
                    return;
                }
            };
            let chain = conn.peer_certificates().unwrap_or_default();
            let now = std::time::SystemTime::now();
            let refused = match snapshot.identity.identity_from_certificate(&chain, now) {
                Err(e) => Some((e.to_string(), AuthOutcome::of_error(&e))),
                Ok(id) if snapshot.identity.revocations().is_revoked(&id, now) => {
                    Some(("identity revoked".to_string(), AuthOutcome::Revoked))
                }
                Ok(id) => {
                    let decision = rt.access.decide(&id);
                    if decision.is_admitted() {
                        *entry.identity.borrow_mut() = Some(id);
                        None
                    } else {
                        Some((
                            format!("not admitted: {decision}"),
                            AuthOutcome::NotAdmitted,
                        ))
                    }
                }
            };
            if let Some((reason, outcome)) = refused {
                metrics.auth_refused(outcome);
                warn!(session = %entry.id, target = %target.name, client = %entry.client, reason = %reason, "caller authentication failed");
                close_socket(&client);
                return;
            }
            metrics.auth(AuthOutcome::Ok);
            conn
        }
    };
    info!(
        shard = ctx.id,
        session = %entry.id,
        target = %target.name,
        client = %entry.client,
        subject = entry.subject().as_deref().unwrap_or("-"),
        "session opened"
    );
    let connect = std::pin::pin!(connect_upstream(target));
    let upstream = match select(connect, entry.kill.killed()).await {
        Either::Left((Ok(u), _)) => u,
        Either::Left((Err(e), _)) => {
            ShardStats::add(&ctx.stats().upstream_failures, 1);
            warn!(session = %entry.id, target = %target.name, upstream = %target.upstream, error = %e, "upstream connect failed; closing client");
            close_socket(&client);
            return;
        }
        Either::Right(_) => {
            close_socket(&client);
            return;
        }
    };
    let recording = SessionRecording::new(ctx.recorder(), entry);
    let identity = entry.identity.borrow().clone();
    let start = SessionStart {
        subject: identity.as_ref().map_or("-".into(), |i| i.subject.clone()),
        groups: identity.as_ref().map_or(Vec::new(), |i| i.groups.clone()),
        issuer: identity.as_ref().map(|i| i.issuer.clone()),
        target: target.name.clone(),
        client_addr: Some(entry.client.to_string()),
        tls_version: client_conn.tls_summary(),
        protocol: Some("tcp".into()),
        ..Default::default()
    };
    let reason = match recording.start(start).await {
        Ok(()) => {
            relay(
                ctx,
                target,
                entry,
                client_conn,
                Conn::plain(upstream.clone()),
                &recording,
            )
            .await
        }
        Err(e) => {
            warn!(session = %entry.id, error = %e, "cannot record: session refused");
            EndReason::RecorderFailed
        }
    };
    close_socket(&client);
    close_socket(&upstream);
    let end = SessionEnd {
        reason: reason.as_str().into(),
        bytes_client_to_target: entry.bytes_up.get(),
        bytes_target_to_client: entry.bytes_down.get(),
        duration_ns: started.elapsed().as_nanos() as u64,
    };
    if let Err(e) = recording.end(end).await {
        warn!(session = %entry.id, error = %e, "session end not recorded");
    }
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
    client: Conn,
    upstream: Conn,
    recording: &SessionRecording,
) -> EndReason {
    let last_activity = Cell::new(Instant::now());
    let buf = ctx.shared.config.engine.buffer_size;
    let stats = ctx.stats();
    let (client_r, client_w) = client.split();
    let (up_r, up_w) = upstream.split();
    let up = pump(
        client_r,
        up_w,
        recording,
        ReadSide::Client,
        buf,
        &last_activity,
        &entry.bytes_up,
        &stats.bytes_client_to_upstream,
    );
    let down = pump(
        up_r,
        client_w,
        recording,
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
            Either::Left((Ok(()), rest)) | Either::Right((Ok(()), rest)) => {
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
    Recorder,
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
            Side::Recorder => EndReason::RecorderFailed,
        }
    }
}

// Each argument is one of the two directions' own pieces; a struct for them
// would be built once per session just to be taken apart here.
#[allow(clippy::too_many_arguments)]
/// Copy `from` → `to` until `from` reaches EOF, then shut down `to`'s write
/// half (half-close) so the peer sees the same EOF. The buffer is handed to
/// the write as `Bytes` and reclaimed by the next read once the write is done,
/// so the steady state allocates nothing.
async fn pump(
    mut from: ReadHalf,
    mut to: WriteHalf,
    recording: &SessionRecording,
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
    let mut buf = BytesMut::with_capacity(buf_size);
    loop {
        if buf.capacity() < buf_size {
            buf.reserve(buf_size);
        }
        let n = match from.read_into(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "relay read failed");
                return Err(Side::Read(from_side));
            }
        };
        let now = Instant::now();
        last_activity.set(now);
        let data = buf.split().freeze();
        // Recorded before it is forwarded: nothing reaches a peer unrecorded.
        if recording.enabled() {
            let rec = match from_side {
                ReadSide::Client => recording.client_data(now, &data).await,
                ReadSide::Upstream => recording.target_data(now, &data).await,
            };
            // Strict durability: forwarded only once the record is fsynced.
            let rec = match rec {
                Ok(durable) => durable.forwardable().await,
                Err(e) => Err(e),
            };
            if let Err(e) = rec {
                warn!(error = %e, "recorder failed: ending the session");
                return Err(Side::Recorder);
            }
        }
        if let Err(e) = to.write_all(data).await {
            debug!(error = %e, "relay write failed");
            return Err(Side::Write(to_side));
        }
        session_bytes.set(session_bytes.get() + n as u64);
        ShardStats::add(shard_bytes, n as u64);
    }
    match to.shutdown().await {
        Ok(()) => Ok(()),
        Err(_) => Err(Side::Write(to_side)),
    }
}

/// Resolves once nothing has moved for `idle`.
pub(crate) async fn idle_timer(last_activity: &Cell<Instant>, idle: Duration) {
    loop {
        let due = last_activity.get() + idle;
        let now = Instant::now();
        if now >= due {
            return;
        }
        compio::time::sleep(due - now).await;
    }
}
