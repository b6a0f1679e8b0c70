//! gRPC calls (`content-type: application/grpc…` on an HTTP/2 stream):
//! judged by the same rules as any request (the path is
//! `/package.Service/Method`, the method `POST`), refused the gRPC way
//! (HTTP 200, trailers only, `grpc-status: 7` PERMISSION_DENIED and the
//! rule in `grpc-message`), and relayed over HTTP/2 to the upstream
//! (gRPC needs its trailers): h2c with prior knowledge to a plain
//! upstream, ALPN `h2` over TLS. Each call has an upstream connection of
//! its own. Messages (the 5-byte length prefix) are recorded each up to
//! `record_body_bytes`; the body bytes are relayed unchanged, as the
//! caller's and the upstream's windows allow. gRPC bodies are protobuf:
//! response masking does not read them.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, join, select};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::HeaderValue;
use tollgate_codecs::http::h1::{HeadEditor, RequestHead};
use zeroize::Zeroizing;

use super::io::H2Io;
use super::stream::{Streams, send_all};
use super::{CONNECTION_WINDOW, STREAM_WINDOW};
use crate::http::wsrec;
use crate::pipeline::EndReason;
use crate::recording::SessionRecording;
use crate::tls::Conn;

/// gRPC status codes used here.
const PERMISSION_DENIED: u32 = 7;
const UNAUTHENTICATED: u32 = 16;
const INVALID_ARGUMENT: u32 = 3;
const UNAVAILABLE: u32 = 14;

/// Whether a request is a gRPC call.
pub(crate) fn is_grpc(head: &RequestHead) -> bool {
    head.fields()
        .get("content-type")
        .is_some_and(|v| v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc"))
}

/// A trailers-only answer: HTTP 200 with `grpc-status` and `grpc-message`.
fn refuse(respond: &mut SendResponse<Bytes>, code: u32, message: &str) {
    // grpc-message is percent-encoded outside printable ASCII.
    let mut m = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            m.push(b as char);
        } else {
            m.push_str(&format!("%{b:02X}"));
        }
    }
    let r = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .header("grpc-message", m)
        .body(());
    match r {
        Ok(r) => {
            let _ = respond.send_response(r, true);
        }
        Err(_) => respond.send_reset(h2::Reason::INTERNAL_ERROR),
    }
}

/// The messages of one direction, cut from the DATA as it passes, for the
/// recording: each message's first `cap` bytes.
struct Messages {
    prefix: [u8; 5],
    have: usize,
    left: u64,
    kept: Vec<u8>,
    cap: usize,
}

impl Messages {
    fn new(cap: usize) -> Messages {
        Messages {
            prefix: [0; 5],
            have: 0,
            left: 0,
            kept: Vec::new(),
            cap,
        }
    }

    /// Take `data`; the records of the messages it completes go to `done`.
    fn feed(&mut self, mut data: &[u8], done: &mut Vec<Vec<u8>>) {
        while !data.is_empty() {
            if self.have < 5 {
                let n = (5 - self.have).min(data.len());
                self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have == 5 {
                    let len = u32::from_be_bytes([
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ]);
                    self.left = u64::from(len);
                    self.kept.clear();
                    if self.left == 0 {
                        self.finish(done);
                    }
                }
                continue;
            }
            let n = (self.left.min(data.len() as u64)) as usize;
            let room = self.cap.saturating_sub(self.kept.len()).min(n);
            self.kept.extend_from_slice(&data[..room]);
            self.left -= n as u64;
            data = &data[n..];
            if self.left == 0 {
                self.finish(done);
            }
        }
    }

    fn finish(&mut self, done: &mut Vec<Vec<u8>>) {
        done.push(wsrec::body(&self.kept));
        self.have = 0;
        self.kept.clear();
    }
}

async fn record(rec: &SessionRecording, up: bool, data: &[u8]) -> Result<(), EndReason> {
    if !rec.enabled() {
        return Ok(());
    }
    let at = Instant::now();
    let d = if up {
        rec.client_data(at, data).await
    } else {
        rec.target_data(at, data).await
    };
    d.map_err(|e| EndReason::RecorderFailed(e.to_string()))?
        .forwardable()
        .await
        .map_err(|e| EndReason::RecorderFailed(e.to_string()))
}

/// A response head or trailer section in HTTP/1.1 form, for the recording.
fn head_text(first: &str, fields: &http::HeaderMap) -> Vec<u8> {
    let mut v = first.as_bytes().to_vec();
    v.extend_from_slice(b"\r\n");
    for (n, val) in fields {
        v.extend_from_slice(n.as_str().as_bytes());
        v.extend_from_slice(b": ");
        v.extend_from_slice(val.as_bytes());
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

impl Streams<'_> {
    /// Serve one gRPC call; `Some`: why the connection must end.
    pub(super) async fn serve_grpc(
        &self,
        head: RequestHead,
        body: RecvStream,
        mut respond: SendResponse<Bytes>,
        first: bool,
    ) -> Option<EndReason> {
        match self.judge_only(&head, first).await {
            Ok(None) => {}
            Ok(Some(rule)) => {
                refuse(
                    &mut respond,
                    PERMISSION_DENIED,
                    &format!("blocked by rule {rule}"),
                );
                return None;
            }
            Err(e @ EndReason::Authentication(_)) => {
                refuse(&mut respond, UNAUTHENTICATED, "authentication failed");
                return Some(e);
            }
            Err(EndReason::ClientProtocol(why)) => {
                refuse(&mut respond, INVALID_ARGUMENT, "request refused");
                tracing::info!(session = %self.s.entry.id, reason = %why, "gRPC call refused");
                return None;
            }
            Err(e) => {
                refuse(&mut respond, UNAVAILABLE, "refused by tollgate");
                return Some(e);
            }
        }
        match self.call(&head, body, &mut respond).await {
            Ok(()) => None,
            Err(Call::Session(e)) => {
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                Some(e)
            }
            Err(Call::Upstream(why)) => {
                tracing::info!(session = %self.s.entry.id, reason = %why, "gRPC call failed upstream");
                refuse(&mut respond, UNAVAILABLE, "the target could not be reached");
                None
            }
            Err(Call::Broken(why)) => {
                tracing::info!(session = %self.s.entry.id, reason = %why, "gRPC call ended early");
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                None
            }
        }
    }

    /// Connect, send the call, relay both ways.
    async fn call(
        &self,
        head: &RequestHead,
        body: RecvStream,
        respond: &mut SendResponse<Bytes>,
    ) -> Result<(), Call> {
        let t = self.target.config;
        let credential = crate::http::adapter::stored_credential(t).map_err(Call::Upstream)?;
        let (recorded, req) = self.upstream_request(head, credential.as_ref())?;
        let (send_req, mut conn) = connect(self.target).await.map_err(Call::Upstream)?;
        record(self.live.recording, true, &recorded)
            .await
            .map_err(Call::Session)?;
        let driver = poll_fn(|cx| std::pin::Pin::new(&mut conn).poll(cx));
        let no_body = head.framing() == tollgate_codecs::http::h1::BodyFraming::None;
        let relay = self.relay(send_req, req, body, respond, no_body);
        match select(pin!(relay), pin!(driver)).await {
            Either::Left((r, _)) => r,
            Either::Right((_, relay)) => relay.await,
        }
    }

    async fn relay(
        &self,
        send_req: h2::client::SendRequest<Bytes>,
        req: http::Request<()>,
        body: RecvStream,
        respond: &mut SendResponse<Bytes>,
        no_body: bool,
    ) -> Result<(), Call> {
        let mut send_req = send_req
            .ready()
            .await
            .map_err(|e| Call::Upstream(e.to_string()))?;
        let (response, up_body) = send_req
            .send_request(req, no_body)
            .map_err(|e| Call::Upstream(e.to_string()))?;
        let cap = self.h.record_body_bytes;
        let rec = self.live.recording;
        let up = async {
            if no_body {
                return Ok(());
            }
            pump(body, up_body, Messages::new(cap), rec, true).await
        };
        let down = async {
            let r = response.await.map_err(|e| Call::Upstream(e.to_string()))?;
            let (parts, from) = r.into_parts();
            let mut first = format!("HTTP/1.1 {}", parts.status.as_u16());
            if let Some(reason) = parts.status.canonical_reason() {
                first = format!("{first} {reason}");
            }
            record(rec, false, &head_text(&first, &parts.headers))
                .await
                .map_err(Call::Session)?;
            let end = from.is_end_stream();
            let send = respond
                .send_response(http::Response::from_parts(parts, ()), end)
                .map_err(|e| Call::Broken(e.to_string()))?;
            if end {
                return Ok(());
            }
            pump(from, send, Messages::new(cap), rec, false).await
        };
        let (u, d) = join(up, down).await;
        d?;
        // The caller's request stream may end early once the answer is
        // whole (a server that answers before reading all).
        if let Err(Call::Session(e)) = u {
            return Err(Call::Session(e));
        }
        Ok(())
    }

    /// The request for the upstream (the caller's token out, the stored
    /// credential and `Via: 2` in) and what the recording holds of it
    /// (the same head without the credential, in HTTP/1.1 form).
    fn upstream_request(
        &self,
        head: &RequestHead,
        credential: Option<&Zeroizing<Vec<u8>>>,
    ) -> Result<(Vec<u8>, http::Request<()>), Call> {
        let h = self.h;
        let tls = self.target.rt.upstream_tls.is_some();
        let authority = head
            .host()
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or("localhost");
        let uri = format!(
            "{}://{authority}{}",
            if tls { "https" } else { "http" },
            head.origin_form()
        );
        let mut b = http::Request::builder()
            .method(head.method())
            .uri(uri)
            .version(http::Version::HTTP_2);
        let mut e = HeadEditor::for_request(head);
        e.remove_hop_by_hop();
        e.remove("transfer-encoding");
        e.remove(&h.token_header);
        if credential.is_some() {
            e.remove(&h.credential_header);
        }
        let via = format!("2 {}", h.via);
        let bad = |e: tollgate_codecs::http::h1::H1Error| Call::Broken(e.to_string());
        e.append("Via", via.as_bytes()).map_err(bad)?;
        let mut recorded = BytesMut::new();
        e.encode(&mut recorded);
        for (name, value) in head.fields().iter() {
            let skip = name.eq_ignore_ascii_case("host")
                || name.eq_ignore_ascii_case("transfer-encoding")
                || name.eq_ignore_ascii_case("te")
                || name.eq_ignore_ascii_case(&h.token_header)
                || (credential.is_some() && name.eq_ignore_ascii_case(&h.credential_header))
                || tollgate_codecs::http::h1::is_hop_by_hop(name);
            if !skip {
                b = b.header(name.to_ascii_lowercase(), value);
            }
        }
        b = b.header("te", "trailers").header("via", via);
        if let Some(c) = credential {
            let v = HeaderValue::from_bytes(c).map_err(|e| Call::Upstream(e.to_string()))?;
            b = b.header(h.credential_header.as_str(), v);
        }
        let req = b.body(()).map_err(|e| Call::Broken(e.to_string()))?;
        Ok((recorded.to_vec(), req))
    }
}

/// How a call failed: the session is over, the upstream could not take
/// it, or a stream broke midway.
enum Call {
    Session(EndReason),
    Upstream(String),
    Broken(String),
}

/// Relay one direction's DATA and trailers, recording its messages, each
/// DATA acknowledged to its sender once forwarded.
async fn pump(
    mut from: RecvStream,
    mut to: SendStream<Bytes>,
    mut msgs: Messages,
    rec: &SessionRecording,
    up: bool,
) -> Result<(), Call> {
    let mut done = Vec::new();
    while let Some(data) = from.data().await {
        let data = data.map_err(|e| Call::Broken(e.to_string()))?;
        let n = data.len();
        msgs.feed(&data, &mut done);
        for r in done.drain(..) {
            record(rec, up, &r).await.map_err(Call::Session)?;
        }
        send_all(&mut to, data, false).await.map_err(Call::Broken)?;
        let _ = from.flow_control().release_capacity(n);
    }
    match from
        .trailers()
        .await
        .map_err(|e| Call::Broken(e.to_string()))?
    {
        Some(t) => {
            record(rec, up, &wsrec::body(&head_text("trailers", &t)))
                .await
                .map_err(Call::Session)?;
            to.send_trailers(t).map_err(|e| Call::Broken(e.to_string()))
        }
        None => to
            .send_data(Bytes::new(), true)
            .map_err(|e| Call::Broken(e.to_string())),
    }
}

/// An HTTP/2 connection to the upstream: h2c with prior knowledge when
/// plain, ALPN `h2` over TLS (verified as for HTTP/1.1).
async fn connect(
    target: &crate::pipeline::Target<'_>,
) -> Result<
    (
        h2::client::SendRequest<Bytes>,
        h2::client::Connection<H2Io, Bytes>,
    ),
    String,
> {
    let t = target.config;
    let sock = crate::relay::connect_upstream(t)
        .await
        .map_err(|e| format!("connect to {}: {e}", t.upstream))?;
    let conn = match &target.rt.upstream_tls {
        None => Conn::plain(sock),
        Some((cfg, name)) => {
            let mut cfg = (**cfg).clone();
            cfg.alpn_protocols = vec![b"h2".to_vec()];
            let c = Conn::connect(sock, Arc::new(cfg), name.clone())
                .await
                .map_err(|e| format!("upstream TLS: {e}"))?;
            if c.alpn_protocol().as_deref() != Some(b"h2") {
                return Err("the upstream did not agree to HTTP/2".into());
            }
            c
        }
    };
    let (r, w) = conn.split();
    h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(H2Io::new(r, w, BytesMut::new()))
        .await
        .map_err(|e| format!("upstream HTTP/2: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_across_data_frames() {
        let mut m = Messages::new(3);
        let mut done = Vec::new();
        let mut wire = vec![0, 0, 0, 0, 5];
        wire.extend_from_slice(b"hello");
        wire.extend_from_slice(&[0, 0, 0, 0, 0]);
        wire.extend_from_slice(&[0, 0, 0, 0, 2]);
        wire.extend_from_slice(b"ok");
        for piece in wire.chunks(3) {
            m.feed(piece, &mut done);
        }
        assert_eq!(
            done,
            vec![wsrec::body(b"hel"), wsrec::body(b""), wsrec::body(b"ok")]
        );
    }
}
