//! The `tcp` protocol: a byte relay between a client and its target, with an
//! upstream connect timeout and half-close in both directions. The session
//! pipeline (`crate::pipeline`) around it authenticates the caller (mTLS),
//! records, and ends it on an idle timeout or a kill.
//!
//! One future per direction, each owning its socket halves, so a read is
//! never raced against anything but the session's end (dropping an in-flight
//! read can lose what it read; we only do that when the session is over).

use std::cell::Cell;
use std::io;
use std::time::Instant;

use bytes::BytesMut;
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use tracing::{debug, warn};

use crate::config::TargetConfig;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::metrics::AuthOutcome;
use crate::pipeline::{
    Admission, Caller, EndReason, Live, Protocol, Rejection, Relayed, Session, Stop, Target,
};
use crate::recording::SessionRecording;
use crate::tls::{Conn, ReadHalf, WriteHalf, close_socket};

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

/// The `tcp` protocol's adapter: no inspection, identity from mTLS.
pub(crate) struct TcpProtocol;

/// A `tcp` client: its socket and, on a TLS target, the handshake's result.
pub(crate) struct TcpClient {
    sock: TcpStream,
    conn: Conn,
}

/// The upstream socket; shut down when the relay ends or is dropped, so a
/// killed session does not leave the upstream waiting on a half-open socket.
pub(crate) struct TcpUpstream(TcpStream);

impl Drop for TcpUpstream {
    fn drop(&mut self) {
        close_socket(&self.0);
    }
}

impl Protocol for TcpProtocol {
    type Client = TcpClient;
    type Upstream = TcpUpstream;
    type LastWord = ();
    type Goodbye = ();
    const NAME: &'static str = "tcp";

    async fn front_door(
        &self,
        s: &Session<'_>,
        client: TcpStream,
    ) -> Result<Option<Admission<TcpClient>>, EndReason> {
        let target_idx = s.listener.targets[0];
        let target = &s.snapshot.config.targets[target_idx];
        let rt = &s.snapshot.targets[target_idx];
        // mTLS: the workload certificate is the caller's identity.
        let (conn, caller) = match &rt.tls {
            None => (Conn::plain(client.clone()), Caller::Anonymous),
            Some(cfg) => match Conn::accept(client.clone(), cfg.clone()).await {
                Ok(c) => {
                    let chain = c.peer_certificates().unwrap_or_default();
                    (c, Caller::Certificate(chain))
                }
                Err(e) => {
                    s.ctx
                        .shared
                        .metrics
                        .shard(s.ctx.id)
                        .auth_refused(AuthOutcome::Other);
                    warn!(session = %s.entry.id, target = %target.name, client = %s.entry.client, error = %e, "TLS handshake failed");
                    return Err(EndReason::ClientIo(e.to_string()));
                }
            },
        };
        Ok(Some(Admission {
            tls: conn.tls_summary(),
            client: TcpClient { sock: client, conn },
            target: target_idx,
            caller,
            user: None,
        }))
    }

    /// A byte relay has no words for a refusal: the socket is closed.
    async fn reject(&self, client: &mut TcpClient, _why: Rejection<'_>) {
        close_socket(&client.sock);
    }

    async fn login(
        &self,
        _s: &Session<'_>,
        target: &Target<'_>,
        _client: &mut TcpClient,
    ) -> Result<TcpUpstream, String> {
        connect_upstream(target.config)
            .await
            .map(TcpUpstream)
            .map_err(|e| e.to_string())
    }

    fn last_word(&self, _client: &TcpClient) {}

    async fn relay(
        &self,
        s: &Session<'_>,
        _target: &Target<'_>,
        client: TcpClient,
        upstream: TcpUpstream,
        live: &Live<'_>,
    ) -> Relayed<()> {
        let reason = relay(
            s.ctx,
            s.entry,
            client.conn,
            Conn::plain(upstream.0.clone()),
            live,
        )
        .await;
        Relayed {
            reason,
            goodbye: None,
        }
    }

    fn goodbye_for(&self, _stop: Stop) -> Option<()> {
        None
    }

    async fn say_goodbye(&self, _w: (), _why: ()) {}
}

async fn relay(
    ctx: &ShardCtx,
    entry: &SessionEntry,
    client: Conn,
    upstream: Conn,
    live: &Live<'_>,
) -> EndReason {
    let buf = ctx.shared.config.engine.buffer_size;
    let stats = ctx.stats();
    let (client_r, client_w) = client.split();
    let (up_r, up_w) = upstream.split();
    let up = pump(
        client_r,
        up_w,
        live.recording,
        ReadSide::Client,
        buf,
        live.last_activity,
        &entry.bytes_up,
        &stats.bytes_client_to_upstream,
    );
    let down = pump(
        up_r,
        client_w,
        live.recording,
        ReadSide::Upstream,
        buf,
        live.last_activity,
        &entry.bytes_down,
        &stats.bytes_upstream_to_client,
    );
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
}

/// Which side broke a pump, and how.
#[derive(Debug)]
enum Side {
    Read(ReadSide, String),
    Write(ReadSide, String),
    Recorder(String),
}

#[derive(Debug, Clone, Copy)]
enum ReadSide {
    Client,
    Upstream,
}

impl Side {
    fn reason(self) -> EndReason {
        match self {
            Side::Read(ReadSide::Client, e) | Side::Write(ReadSide::Client, e) => {
                EndReason::ClientIo(e)
            }
            Side::Read(ReadSide::Upstream, e) | Side::Write(ReadSide::Upstream, e) => {
                EndReason::UpstreamIo(e)
            }
            Side::Recorder(e) => EndReason::RecorderFailed(e),
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
                return Err(Side::Read(from_side, e.to_string()));
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
                return Err(Side::Recorder(e.to_string()));
            }
        }
        if let Err(e) = to.write_all(data).await {
            debug!(error = %e, "relay write failed");
            return Err(Side::Write(to_side, e.to_string()));
        }
        session_bytes.set(session_bytes.get() + n as u64);
        ShardStats::add(shard_bytes, n as u64);
    }
    match to.shutdown().await {
        Ok(()) => Ok(()),
        Err(e) => Err(Side::Write(to_side, e.to_string())),
    }
}
