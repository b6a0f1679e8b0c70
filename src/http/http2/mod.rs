//! HTTP/2 from callers (ALPN `h2` on a TLS listener whose target sets
//! `http2 = true`). The `h2` crate runs on the shard's compio runtime over
//! an adapter ([`io`]); the connection and all its streams are polled by
//! the session's own future, so a session killed from outside takes them
//! all with it. Each stream is an HTTP/1.1 exchange of the relay
//! ([`stream`]); the upstream stays HTTP/1.1.
//!
//! The first request is read at the front door: its bearer token (or the
//! handshake's certificate) identifies the connection, as for HTTP/1.1,
//! and every later stream's token must verify to the same identity.
//! Hostile input is h2's to refuse: a connection error sends GOAWAY and
//! ends the session, a stream error resets that stream only.

mod convert;
mod grpc;
mod io;
mod stream;

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use compio::net::TcpStream;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use h2::server::Connection;
use tollgate_codecs::http::h1::{HeadParser, Limits};
use tracing::{info, warn};

use super::adapter::{HttpClient, HttpUpstream, bearer, route};
use super::io::{Peer, Side};
use crate::config::http::{CallerIdentity, Http2Limits, HttpTarget};
use crate::identity::Identity;
use crate::pipeline::{Admission, Caller, EndReason, Live, Session, Target};
use crate::tls::Conn;
use stream::{Incoming, Streams};

/// Stream and connection windows offered to callers: a 10 MB upload
/// needs no more than a few round trips of WINDOW_UPDATE.
pub(super) const STREAM_WINDOW: u32 = 1 << 20;
pub(super) const CONNECTION_WINDOW: u32 = 4 << 20;
/// Response bytes h2 may hold per stream before the relay waits.
const SEND_BUFFER: usize = 256 << 10;
/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A caller's HTTP/2 connection, past its first request head.
pub(crate) struct H2Front {
    conn: Connection<io::H2Io, Bytes>,
    /// The first request, not yet relayed.
    first: Option<Incoming>,
    sock: TcpStream,
}

/// The caps of the first target on the listener that offers HTTP/2 (its
/// TLS settings are the ones that offered `h2`).
fn listener_limits(s: &Session<'_>) -> Option<Http2Limits> {
    s.listener
        .targets
        .iter()
        .find_map(|t| s.snapshot.config.targets[*t].http.as_ref()?.http2)
}

fn protocol(e: h2::Error) -> EndReason {
    if e.is_io() {
        return EndReason::ClientIo(e.to_string());
    }
    Peer::Client.protocol(format!("HTTP/2: {e}"))
}

/// The front door for a caller that chose `h2`: the connection preface and
/// settings, then the first request, routed and its caller named.
pub(crate) async fn front_door(
    s: &Session<'_>,
    sock: TcpStream,
    conn: Conn,
) -> Result<Option<Admission<HttpClient>>, EndReason> {
    let Some(limits) = listener_limits(s) else {
        return Err(EndReason::Refused(
            "h2 agreed without http2 configured".into(),
        ));
    };
    let sni = conn.server_name();
    let tls = conn.tls_summary();
    let chain = conn.peer_certificates();
    let (r, w) = conn.split();
    let transport = io::H2Io::new(r, w, BytesMut::new());
    let mut conn = h2::server::Builder::new()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_size)
        .max_frame_size(limits.max_frame_size)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(SEND_BUFFER)
        .handshake::<_, Bytes>(transport)
        .await
        .map_err(protocol)?;
    let first = loop {
        let (req, respond) = match conn.accept().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(protocol(e)),
            Some(Ok(x)) => x,
        };
        // A request refused on its own (CONNECT, no :path) is answered
        // there; the connection waits for one it can route.
        if let Some(i) = stream::incoming(req, respond) {
            break i;
        }
    };
    let Incoming {
        head,
        body,
        mut respond,
    } = first;
    let target = match route(s, &head, sni.as_deref()) {
        Ok(t) => t,
        Err((status, why)) => {
            stream::answer_now(&mut respond, status);
            close(&mut conn).await;
            return Err(EndReason::Refused(why));
        }
    };
    let Some(h) = s.snapshot.config.targets[target].http.as_ref() else {
        return Err(EndReason::Refused("not an http target".into()));
    };
    if h.http2.is_none() {
        stream::answer_now(&mut respond, 421);
        close(&mut conn).await;
        return Err(EndReason::Refused(format!(
            "HTTP/2 request for target {:?}, which does not offer it",
            s.snapshot.config.targets[target].name
        )));
    }
    let caller = match h.identity {
        CallerIdentity::Token => {
            Caller::Token(bearer(&head, h).map(<[u8]>::to_vec).unwrap_or_default())
        }
        CallerIdentity::Mtls => Caller::Certificate(chain.unwrap_or_default()),
    };
    // The connection's own writes go through h2; the relay's `Side` here
    // is a closed channel that only fills the field.
    let (tx, rx) = async_channel::bounded(1);
    tx.close();
    let client = HttpClient {
        side: Side::stream(sock.clone(), rx, tx),
        parser: HeadParser::new(&Limits::default()),
        first: None,
        addr: s.entry.client.ip(),
        tls: true,
        sni,
        h2: Some(Box::new(H2Front {
            conn,
            first: Some(Incoming {
                head,
                body,
                respond,
            }),
            sock,
        })),
        stream: false,
    };
    Ok(Some(Admission {
        client,
        target,
        caller,
        tls,
        user: None,
    }))
}

/// Send GOAWAY and let the connection flush what it holds (the answer
/// just given), for a short while at most.
async fn close(conn: &mut Connection<io::H2Io, Bytes>) {
    conn.graceful_shutdown();
    let _ = compio::time::timeout(CLOSE_GRACE, poll_fn(|cx| conn.poll_closed(cx))).await;
}

/// A refusal before the relay: the first stream gets `answer` (the
/// HTTP/1.1 refusal's status), then the connection closes.
pub(crate) async fn reject(front: &mut H2Front, status: u16) {
    if let Some(mut first) = front.first.take() {
        stream::answer_now(&mut first.respond, status);
    }
    close(&mut front.conn).await;
}

/// Relay the connection's streams until the caller closes it or the
/// session ends.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay(
    s: &Session<'_>,
    target: &Target<'_>,
    live: &Live<'_>,
    identity: &Arc<Identity>,
    h: &HttpTarget,
    client: HttpClient,
    mut front: H2Front,
    upstream: HttpUpstream,
) -> EndReason {
    let idle_max = h
        .http2
        .map_or(1, |l| l.max_concurrent_streams as usize)
        .min(16);
    let streams = Streams {
        s,
        target,
        live,
        identity,
        h,
        sock: front.sock.clone(),
        addr: client.addr,
        sni: client.sni.clone(),
        idle: RefCell::new(vec![upstream]),
        idle_max,
    };
    let mut running = FuturesUnordered::new();
    if let Some(first) = front.first.take() {
        running.push(streams.serve(first, true));
    }
    let conn = &mut front.conn;
    let end = poll_fn(|cx| {
        loop {
            while let Poll::Ready(Some(outcome)) = running.poll_next_unpin(cx) {
                if let Some(end) = outcome {
                    return Poll::Ready(end);
                }
            }
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((req, respond)))) => {
                    if let Some(i) = stream::incoming(req, respond) {
                        running.push(streams.serve(i, false));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(protocol(e)),
                Poll::Ready(None) => return Poll::Ready(EndReason::ClientTerminated),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    drop(running);
    match &end {
        EndReason::ClientTerminated | EndReason::ClientIo(_) => {}
        EndReason::ClientProtocol(why) => {
            warn!(session = %s.entry.id, reason = %why, "HTTP/2 connection refused")
        }
        other => {
            info!(session = %s.entry.id, reason = %other, "HTTP/2 connection ends");
            close(conn).await;
        }
    }
    for u in streams.idle.borrow().iter() {
        u.side.close();
    }
    end
}
