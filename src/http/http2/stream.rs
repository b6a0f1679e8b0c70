//! One HTTP/2 stream through the HTTP/1.1 relay: the stream's request is
//! handed to an [`Exchange`] of its own as an HTTP/1.1 request on an
//! in-process channel (identity, rules, approvals, credential, masking and
//! recording are the relay's, step for step), and what the relay answers
//! on the channel is turned into the stream's HTTP/2 response.
//!
//! Flow control both ways: request DATA is released to the caller's window
//! only once the relay has taken it off a small bounded channel, and
//! response bytes are sent as the caller's window grants capacity (the
//! relay waits on the channel meanwhile, and the upstream on the relay).

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use bytes::{Bytes, BytesMut};
use compio::net::TcpStream;
use futures_util::future::{Either, join, select};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkEvent, ChunkedDecoder, HeadParser, Limits, RequestHead, encode_chunk,
};
use tracing::info;

use super::convert;
use crate::config::http::HttpTarget;
use crate::http::adapter::{HttpClient, HttpUpstream};
use crate::http::exchange::Exchange;
use crate::http::io::Side;
use crate::identity::Identity;
use crate::pipeline::{EndReason, Live, Session, Target};

/// Buffers of request or response bytes in flight between a stream and
/// its relay (each at most one DATA frame, or one relay write).
const CHANNEL_DEPTH: usize = 4;

/// What every stream of one connection shares.
pub(crate) struct Streams<'a> {
    pub s: &'a Session<'a>,
    pub target: &'a Target<'a>,
    pub live: &'a Live<'a>,
    pub identity: &'a Arc<Identity>,
    pub h: &'a HttpTarget,
    /// The caller's connection (for the relay's `Side`).
    pub sock: TcpStream,
    pub addr: IpAddr,
    pub sni: Option<String>,
    /// Upstream connections between requests.
    pub idle: RefCell<Vec<HttpUpstream>>,
    /// At most this many kept in `idle`.
    pub idle_max: usize,
}

/// A stream's request, its head already read as HTTP/1.1.
pub(crate) struct Incoming {
    pub head: RequestHead,
    pub body: RecvStream,
    pub respond: SendResponse<Bytes>,
}

/// A stream's request, or the answer it gets at once.
pub(crate) fn incoming(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) -> Option<Incoming> {
    let (parts, body) = req.into_parts();
    match convert::request_head(&parts, body.is_end_stream()) {
        Ok(head) => Some(Incoming {
            head,
            body,
            respond,
        }),
        Err(r) => {
            info!(stream = %respond.stream_id().as_u32(), status = r.status, reason = %r.why, "HTTP/2 request refused");
            answer_now(&mut respond, r.status);
            None
        }
    }
}

/// A short answer of the gateway's own on a stream.
pub(crate) fn answer_now(respond: &mut SendResponse<Bytes>, status: u16) {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let r = http::Response::builder()
        .status(status)
        .header("content-length", "0")
        .body(());
    match r {
        Ok(r) => {
            let _ = respond.send_response(r, true);
        }
        Err(_) => respond.send_reset(h2::Reason::INTERNAL_ERROR),
    }
}

/// Whether a stream's end ends the whole connection: the session is over
/// (killed, recorder gone, memory) or the caller is not who the connection
/// belongs to.
fn ends_connection(e: &EndReason) -> bool {
    matches!(
        e,
        EndReason::Killed(_)
            | EndReason::RecorderFailed(_)
            | EndReason::OutOfMemory(_)
            | EndReason::Authentication(_)
            | EndReason::AccessDenied(_)
    )
}

impl Streams<'_> {
    /// Judge a request without relaying it (a gRPC call): identity and
    /// target for a later stream, the path, then the rules (recorded).
    /// `Ok(Some(rule))`: blocked by it.
    pub(super) async fn judge_only(
        &self,
        head: &RequestHead,
        first: bool,
    ) -> Result<Option<String>, EndReason> {
        let (tx, rx) = async_channel::bounded(1);
        tx.close();
        let client = HttpClient {
            side: Side::stream(self.sock.clone(), rx, tx),
            parser: HeadParser::new(&Limits::default()),
            first: None,
            addr: self.addr,
            tls: true,
            sni: self.sni.clone(),
            h2: None,
            stream: true,
        };
        let mut x = Exchange::new(
            self.s,
            self.target,
            self.live,
            self.identity,
            self.h,
            client,
            None,
        );
        x.judge_only(head, !first).await
    }

    /// Serve one stream; `Some`: why the connection must end.
    /// `first`: the request read at the front door (its identity is the
    /// connection's); every later one must verify to the same.
    pub async fn serve(&self, i: Incoming, first: bool) -> Option<EndReason> {
        let Incoming {
            head,
            body,
            respond,
        } = i;
        if super::grpc::is_grpc(&head) {
            return self.serve_grpc(head, body, respond, first).await;
        }
        let (req_tx, req_rx) = async_channel::bounded(CHANNEL_DEPTH);
        let (resp_tx, resp_rx) = async_channel::bounded(CHANNEL_DEPTH);
        let client = HttpClient {
            side: Side::stream(self.sock.clone(), req_rx, resp_tx),
            parser: HeadParser::new(&Limits::default()),
            first: None,
            addr: self.addr,
            tls: true,
            sni: self.sni.clone(),
            h2: None,
            stream: true,
        };
        let up = self.idle.borrow_mut().pop();
        let x = Exchange::new(
            self.s,
            self.target,
            self.live,
            self.identity,
            self.h,
            client,
            up,
        );
        let method = head.method().to_string();
        let framing = head.framing();
        let exchange = async move {
            let mut x = x;
            let r = if first {
                x.one(head).await
            } else {
                x.one_more(head).await
            };
            let up = x.take_upstream();
            // Dropping the exchange ends both channels: the answer is
            // complete, and an unread request body is not wanted.
            drop(x);
            (r, up)
        };
        let relayed = async {
            let exchange = pin!(exchange);
            let feed = pin!(feed(body, req_tx, framing));
            match select(exchange, feed).await {
                Either::Left((r, _)) => r,
                Either::Right((_, exchange)) => exchange.await,
            }
        };
        let ((r, up), answered) = join(relayed, answer(resp_rx, respond, &method)).await;
        if let Err(why) = answered {
            info!(session = %self.s.entry.id, reason = %why, "HTTP/2 response ended early");
        }
        match r {
            Ok(_) => {
                let mut idle = self.idle.borrow_mut();
                if let Some(u) = up
                    && idle.len() < self.idle_max
                {
                    idle.push(u);
                }
                None
            }
            Err(e) if ends_connection(&e) => Some(e),
            Err(e) => {
                info!(session = %self.s.entry.id, reason = %e, "HTTP/2 stream ended");
                if let Some(u) = up {
                    u.side.close();
                }
                None
            }
        }
    }
}

/// The request body from the stream into the relay's channel (chunked when
/// the request has no `content-length`), its window released as the relay
/// takes it.
async fn feed(mut body: RecvStream, tx: Sender<Bytes>, framing: BodyFraming) {
    let chunked = framing == BodyFraming::Chunked;
    if framing == BodyFraming::None {
        return;
    }
    while let Some(data) = body.data().await {
        let Ok(data) = data else {
            // A reset or broken stream: the relay sees the body end early.
            return;
        };
        let n = data.len();
        let out = if chunked {
            if n == 0 {
                continue;
            }
            let mut c = BytesMut::with_capacity(n + 16);
            encode_chunk(&data, &mut c);
            c.freeze()
        } else {
            data
        };
        if tx.send(out).await.is_err() {
            return;
        }
        let _ = body.flow_control().release_capacity(n);
    }
    if chunked {
        let Ok(trailers) = body.trailers().await else {
            return;
        };
        let _ = tx.send(convert::last_chunk(trailers.as_ref())).await;
    }
}

/// Read more of the relay's answer into `buf`; `false` once it has ended.
async fn more(rx: &Receiver<Bytes>, buf: &mut BytesMut) -> bool {
    match rx.recv().await {
        Ok(b) => {
            buf.extend_from_slice(&b);
            true
        }
        Err(_) => false,
    }
}

/// The relay's HTTP/1.1 answer as the stream's HTTP/2 response.
async fn answer(
    rx: Receiver<Bytes>,
    mut respond: SendResponse<Bytes>,
    method: &str,
) -> Result<(), String> {
    let mut buf = BytesMut::new();
    let mut parser = HeadParser::new(&Limits::default());
    let head = loop {
        match parser.response(&mut buf) {
            Ok(Some(h)) if h.is_interim() => {
                // The relay's own `100 Continue` for a caller that waits
                // for it before sending its body (curl does, a while).
                if h.status() == 100 {
                    let go_on = http::Response::builder().status(100).body(());
                    if let Ok(r) = go_on {
                        let _ = respond.send_informational(r);
                    }
                }
                continue;
            }
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                return Err(format!("relay answer: {e}"));
            }
        }
        if !more(&rx, &mut buf).await {
            // The relay ended without an answer (killed, recorder failed).
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
            return Err("no answer".into());
        }
    };
    let framing = head.framing(method);
    let response = match convert::response(&head) {
        Ok(r) => r,
        Err(e) => {
            answer_now(&mut respond, 502);
            return Err(e);
        }
    };
    let end = matches!(framing, BodyFraming::None | BodyFraming::Length(0));
    let mut send = respond
        .send_response(response, end)
        .map_err(|e| e.to_string())?;
    if end {
        return Ok(());
    }
    let r = match framing {
        BodyFraming::Length(n) => body_length(&rx, &mut buf, &mut send, n).await,
        BodyFraming::Chunked => body_chunked(&rx, &mut buf, &mut send).await,
        _ => body_to_end(&rx, &mut buf, &mut send).await,
    };
    if r.is_err() {
        send.send_reset(h2::Reason::INTERNAL_ERROR);
    }
    r
}

async fn body_length(
    rx: &Receiver<Bytes>,
    buf: &mut BytesMut,
    send: &mut SendStream<Bytes>,
    mut left: u64,
) -> Result<(), String> {
    while left > 0 {
        if buf.is_empty() && !more(rx, buf).await {
            return Err(format!("response body short by {left} bytes"));
        }
        let n = (buf.len() as u64).min(left) as usize;
        left -= n as u64;
        send_all(send, buf.split_to(n).freeze(), left == 0).await?;
    }
    Ok(())
}

async fn body_chunked(
    rx: &Receiver<Bytes>,
    buf: &mut BytesMut,
    send: &mut SendStream<Bytes>,
) -> Result<(), String> {
    let mut dec = ChunkedDecoder::new(&Limits::default());
    loop {
        match dec.decode(buf).map_err(|e| e.to_string())? {
            Some(ChunkEvent::Data(d)) => send_all(send, d, false).await?,
            Some(ChunkEvent::End(t)) if t.is_empty() => {
                return send
                    .send_data(Bytes::new(), true)
                    .map_err(|e| e.to_string());
            }
            Some(ChunkEvent::End(t)) => {
                let map = convert::trailers(&t)?;
                return send.send_trailers(map).map_err(|e| e.to_string());
            }
            None => {
                if !more(rx, buf).await {
                    return Err("chunked response body cut short".into());
                }
            }
        }
    }
}

async fn body_to_end(
    rx: &Receiver<Bytes>,
    buf: &mut BytesMut,
    send: &mut SendStream<Bytes>,
) -> Result<(), String> {
    loop {
        if !buf.is_empty() {
            send_all(send, buf.split().freeze(), false).await?;
        }
        if !more(rx, buf).await {
            return send
                .send_data(Bytes::new(), true)
                .map_err(|e| e.to_string());
        }
    }
}

/// Send `data` as the peer's window allows.
pub(super) async fn send_all(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), String> {
    if data.is_empty() {
        return match end {
            true => send.send_data(data, true).map_err(|e| e.to_string()),
            false => Ok(()),
        };
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the stream was closed".into()),
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, end && data.is_empty())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
