//! Request after request on one caller connection, answered in order (a
//! pipelined request waits in the buffer until the answer before it is
//! relayed): identity, rules, the rewritten head upstream (hop-by-hop and
//! the caller's token out; the stored credential, `Via` and
//! `X-Forwarded-For` in), bodies streamed both ways, the upstream
//! reconnected when it closes between requests.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{
    BodyFraming, HeadEditor, RequestHead, ResponseHead, check_normal_path,
};
use tollgate_codecs::http::k8s;
use tollgate_codecs::http::query::parse_query;
use tracing::info;

use super::adapter::{HttpClient, HttpUpstream, bearer, connect, misrouted, next_head, route};
use super::body::{self, BodyRecord};
use super::io::{Meter, Peer, answer, forbidden, malformed, unauthorized};
use super::jsonbody::{self, JsonBody};
use super::mask::{Masking, kind_of};
use super::rules::Request;
use super::upgrade::Switch;
use crate::config::http::{CallerIdentity, HttpTarget, RuleAction};
use crate::identity::Identity;
use crate::pipeline::statement::{Decision, StatementScope, StepError};
use crate::pipeline::{Caller, EndReason, Live, Session, Target, steps};

pub(crate) struct Exchange<'a> {
    pub(super) s: &'a Session<'a>,
    pub(super) target: &'a Target<'a>,
    pub(super) live: &'a Live<'a>,
    identity: &'a Arc<Identity>,
    pub(super) h: &'a HttpTarget,
    pub(super) client: HttpClient,
    pub(super) up: Option<HttpUpstream>,
    /// The caller's response masking (`None`: nothing masked for it).
    pub(super) mask: Option<Masking>,
    /// This request's `100 Continue` was sent (before its body was read
    /// for the rules).
    continued: bool,
}

/// The largest body sent in one write with its head (when it has arrived
/// whole): one send instead of two; a copy of at most this much.
const ONE_WRITE_MAX: u64 = 64 << 10;

/// A head and its body as one buffer.
fn joined(head: &[u8], body: &[u8]) -> Bytes {
    let mut one = BytesMut::with_capacity(head.len() + body.len());
    one.extend_from_slice(head);
    one.extend_from_slice(body);
    one.freeze()
}

fn bad_gateway() -> Bytes {
    answer(502, &[], "bad gateway\n", true)
}

impl<'a> Exchange<'a> {
    pub fn new(
        s: &'a Session<'a>,
        target: &'a Target<'a>,
        live: &'a Live<'a>,
        identity: &'a Arc<Identity>,
        h: &'a HttpTarget,
        client: HttpClient,
        up: Option<HttpUpstream>,
    ) -> Exchange<'a> {
        let limits = &s.snapshot.config.limits;
        let mask = Masking::for_caller(target.rt.masking.as_ref(), identity, limits);
        Exchange {
            s,
            target,
            live,
            identity,
            h,
            client,
            up,
            mask,
            continued: false,
        }
    }

    pub(super) fn client_meter(&self) -> Meter<'a> {
        Meter {
            bytes: &self.s.entry.bytes_up,
            last: self.live.last_activity,
        }
    }

    pub(super) fn upstream_meter(&self) -> Meter<'a> {
        Meter {
            bytes: &self.s.entry.bytes_down,
            last: self.live.last_activity,
        }
    }

    /// Close both connections.
    pub fn close(&self) {
        self.client.side.close();
        if let Some(u) = &self.up {
            u.side.close();
        }
    }

    /// Serve requests until the caller (or a refusal) ends the connection.
    pub async fn run(&mut self) -> EndReason {
        let mut first = true;
        loop {
            let head = match self.client.first.take() {
                Some(h) => h,
                None => {
                    let meter = self.client_meter();
                    let clock = Some(self.live.frame_clock);
                    let c = &mut self.client;
                    match next_head(&mut c.side, &mut c.parser, meter, clock).await {
                        Ok(Some(h)) => h,
                        Ok(None) => return EndReason::ClientTerminated,
                        Err(r) => return r,
                    }
                }
            };
            if !first && let Err(why) = self.same_identity(&head) {
                let _ = self.client.side.write(unauthorized()).await;
                return EndReason::Authentication(why);
            }
            // A connection stays with the target its first request chose.
            if !first && let Err(why) = self.same_target(&head) {
                let _ = self.client.side.write(misrouted(why.0)).await;
                return EndReason::Refused(why.1);
            }
            first = false;
            match self.one(head).await {
                Ok(true) => {}
                Ok(false) => return EndReason::Closed,
                Err(r) => return r,
            }
        }
    }

    /// A later request on the connection (an HTTP/2 stream after the
    /// first): the same identity and target as the first, then [`Self::one`].
    pub(super) async fn one_more(&mut self, head: RequestHead) -> Result<bool, EndReason> {
        if let Err(why) = self.same_identity(&head) {
            let _ = self.client.side.write(unauthorized()).await;
            return Err(EndReason::Authentication(why));
        }
        if let Err(why) = self.same_target(&head) {
            let _ = self.client.side.write(misrouted(why.0)).await;
            return Err(EndReason::Refused(why.1));
        }
        self.one(head).await
    }

    /// Judge a request that is relayed elsewhere (a gRPC call): for a
    /// `later` request the connection's identity and target, then the
    /// path and query checks and the rules, as [`Self::one`] does.
    /// `Ok(Some(rule))`: blocked by it.
    pub(super) async fn judge_only(
        &mut self,
        head: &RequestHead,
        later: bool,
    ) -> Result<Option<String>, EndReason> {
        if later {
            self.same_identity(head)
                .map_err(EndReason::Authentication)?;
            self.same_target(head)
                .map_err(|(_, why)| EndReason::Refused(why))?;
        }
        if let Err(why) = check_normal_path(head.path()) {
            return Err(Peer::Client.protocol(format!("request path refused: {why}")));
        }
        let reads_query = self
            .target
            .rt
            .http_rules
            .as_ref()
            .is_some_and(|r| r.reads_query());
        let query = match reads_query.then(|| parse_query(head.query().unwrap_or(""))) {
            None => Vec::new(),
            Some(Ok(q)) => q,
            Some(Err(e)) => {
                return Err(Peer::Client.protocol(format!("request query refused: {e}")));
            }
        };
        self.judge(head, &query, None).await
    }

    /// The upstream connection, when it stays open for another request.
    pub(super) fn take_upstream(&mut self) -> Option<HttpUpstream> {
        self.up.take()
    }

    /// A later request must route to the connection's target.
    fn same_target(&self, head: &RequestHead) -> Result<(), (u16, String)> {
        // The common case: the listener's only target, routed by nothing.
        if self.s.listener.targets.len() == 1
            && self.h.host.is_none()
            && self.h.path_prefix.is_none()
        {
            return Ok(());
        }
        let t = route(self.s, head, self.client.sni.as_deref())?;
        if std::ptr::eq(&self.s.snapshot.config.targets[t], self.target.config) {
            return Ok(());
        }
        Err((
            421,
            format!(
                "a request for target {:?} on a connection for {:?}",
                self.s.snapshot.config.targets[t].name, self.target.config.name
            ),
        ))
    }

    /// A later request's token must verify to the connection's identity.
    fn same_identity(&self, head: &RequestHead) -> Result<(), String> {
        // A certificate caller is the connection's handshake, once.
        if self.h.identity == CallerIdentity::Mtls {
            return Ok(());
        }
        let token = bearer(head, self.h).ok_or("no bearer token")?;
        let caller = Caller::Token(token.to_vec());
        let metrics = self.s.ctx.shared.metrics.shard(self.s.ctx.id);
        match steps::identify(self.s.ctx, self.s.snapshot, self.target.rt, &caller) {
            Ok(Some(id))
                if id.subject == self.identity.subject && id.issuer == self.identity.issuer =>
            {
                Ok(())
            }
            Ok(Some(id)) => {
                metrics.auth_refused(crate::metrics::AuthOutcome::NotAdmitted);
                Err(format!(
                    "a token of {:?} on a connection bound to {:?}",
                    id.subject, self.identity.subject
                ))
            }
            Ok(None) => Err("no identity".into()),
            Err(f) => {
                metrics.auth_refused(f.outcome());
                Err(f.to_string())
            }
        }
    }

    /// Judge a request by the target's rules; the verdict is counted,
    /// logged and recorded. `Some(rule)`: blocked by it.
    /// `query`: decoded when the rules read it, else empty.
    /// The body's top-level JSON fields when a rule reads them (the body
    /// then waits in the caller's buffer); a body labelled JSON that cannot
    /// be read so is refused.
    async fn json_body(
        &mut self,
        head: &RequestHead,
    ) -> Result<Option<Vec<(String, serde_json::Value)>>, EndReason> {
        let reads = self
            .target
            .rt
            .http_rules
            .as_ref()
            .is_some_and(|r| r.reads_json());
        if !reads || head.framing() == BodyFraming::None {
            return Ok(None);
        }
        if head.expect_continue() {
            let go_on = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.client.side.write(go_on).await?;
            self.continued = true;
        }
        let meter = self.client_meter();
        let cap = self.h.json_body_max;
        match jsonbody::read(&mut self.client.side, meter, head, cap).await? {
            JsonBody::Fields(f) => Ok(Some(f)),
            JsonBody::None => Ok(None),
            JsonBody::Refused(status, why) => {
                let _ = self.client.side.write(malformed(status)).await;
                Err(Peer::Client.protocol(format!("request body refused: {why}")))
            }
        }
    }

    async fn judge(
        &self,
        head: &RequestHead,
        query: &[(String, String)],
        json: Option<&[(String, serde_json::Value)]>,
    ) -> Result<Option<String>, EndReason> {
        let (action, rule) = match &self.target.rt.http_rules {
            Some(r) => {
                let k8s = r
                    .reads_query()
                    .then(|| {
                        k8s::parse_request(head.method(), head.path(), k8s::query_watches(query))
                    })
                    .flatten();
                r.judge(&Request {
                    method: head.method(),
                    path: head.path(),
                    query,
                    fields: head.fields(),
                    groups: &self.identity.groups,
                    k8s: k8s.as_ref(),
                    json,
                })
            }
            None => (RuleAction::Allow, None),
        };
        let rule = rule.map_or_else(|| "default".to_string(), str::to_string);
        let d = match action {
            RuleAction::Allow => Decision::Allow,
            RuleAction::Audit => Decision::Audit { rule: rule.clone() },
            RuleAction::Block => Decision::Block {
                message: format!("blocked by rule {rule}"),
                rule: rule.clone(),
            },
            RuleAction::Approve => Decision::Approve {
                message: format!("held by rule {rule}"),
                rule: rule.clone(),
            },
        };
        let scope = StatementScope {
            ctx: self.s.ctx,
            entry: self.s.entry,
            target: self.target.config,
            identity: self.identity,
            recording: self.live.recording,
        };
        // The path only: a query may carry secrets of its own.
        let statement = format!("{} {}", head.method(), head.path());
        let step = |e: StepError| match e {
            StepError::Killed(k) => EndReason::Killed(k),
            StepError::Recorder(e) => EndReason::RecorderFailed(e),
        };
        let d = match d {
            Decision::Approve { message, rule } => {
                // The wait is the reviewer's, not the caller's.
                self.live.frame_clock.progress();
                let d = scope.await_approval(&statement, &message, &rule).await;
                self.live.last_activity.set(Instant::now());
                d.map_err(step)?
            }
            d => {
                scope.note(&statement, &d, None, None).await.map_err(step)?;
                d
            }
        };
        Ok((!d.forwards()).then_some(rule))
    }

    /// One request and its answer; `Ok(true)`: the connection goes on.
    pub(super) async fn one(&mut self, head: RequestHead) -> Result<bool, EndReason> {
        // Rules judge the path as written: one the upstream could read as
        // another path (`//`, `..`, `%75`, `;x`, `\\`) is refused.
        if let Err(why) = check_normal_path(head.path()) {
            let _ = self.client.side.write(malformed(400)).await;
            return Err(Peer::Client.protocol(format!("request path refused: {why}")));
        }
        // A query the rules read must read one way only (`;`, bad `%`).
        let reads_query = self
            .target
            .rt
            .http_rules
            .as_ref()
            .is_some_and(|r| r.reads_query());
        let query = match reads_query.then(|| parse_query(head.query().unwrap_or(""))) {
            None => Vec::new(),
            Some(Ok(q)) => q,
            Some(Err(e)) => {
                let _ = self.client.side.write(malformed(400)).await;
                return Err(Peer::Client.protocol(format!("request query refused: {e}")));
            }
        };
        // A switch this target does not relay is refused before the rules.
        let switch = match head.upgrade() {
            Some(_) => Some(self.switch_asked(&head).await?),
            None => None,
        };
        self.continued = false;
        let json = self.json_body(&head).await?;
        let has_body = head.framing() != BodyFraming::None;
        if let Some(rule) = self.judge(&head, &query, json.as_deref()).await? {
            // An unread body cannot be skipped safely: close after it.
            let close = has_body || !head.keep_alive();
            self.client.side.write(forbidden(&rule, close)).await?;
            return if close {
                Err(EndReason::Refused(format!(
                    "request blocked by rule {rule}"
                )))
            } else {
                Ok(true)
            };
        }
        let upgrade = switch.as_ref().map(Switch::token);
        let resp = match self.forward(&head, upgrade).await {
            // An upstream may close a keep-alive connection just as a
            // request is sent on it: a request without a body that got no
            // byte back is sent once more on a new connection.
            Err(EndReason::UpstreamClosed | EndReason::UpstreamIo(_))
                if !has_body
                    && self
                        .up
                        .as_ref()
                        .is_some_and(|u| u.served > 0 && u.side.buf.is_empty()) =>
            {
                info!(session = %self.s.entry.id, "the upstream closed a kept-alive connection: request sent again");
                if let Some(u) = self.up.take() {
                    u.side.close();
                }
                self.forward(&head, upgrade).await
            }
            r => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                if matches!(
                    e,
                    EndReason::UpstreamClosed
                        | EndReason::UpstreamIo(_)
                        | EndReason::UpstreamProtocol(_)
                        | EndReason::UpstreamLogin(_)
                ) {
                    let _ = self.client.side.write(bad_gateway()).await;
                }
                return Err(e);
            }
        };
        match switch {
            Some(sw) if resp.status() == 101 => self.switch(sw, resp).await,
            _ => self.answer(&head, resp).await,
        }
    }

    /// Connect if needed, send the request, read the response head.
    /// `upgrade`: the protocol a switch asks the upstream for.
    async fn forward(
        &mut self,
        head: &RequestHead,
        upgrade: Option<&[u8]>,
    ) -> Result<ResponseHead, EndReason> {
        if self.up.is_none() {
            let u = connect(self.target.config, self.target.rt)
                .await
                .map_err(EndReason::UpstreamLogin)?;
            self.up = Some(u);
        }
        self.send_request(head, upgrade).await?;
        self.response_head().await
    }
}

/// The upstream's request head: recorded without the credential, sent with it.
/// `masked`: the caller's responses are masked, so ask for them unencoded.
fn upstream_head(
    head: &RequestHead,
    h: &HttpTarget,
    up: &HttpUpstream,
    client: &HttpClient,
    masked: bool,
    upgrade: Option<&[u8]>,
) -> Result<(Bytes, Bytes), tollgate_codecs::http::h1::H1Error> {
    let mut e = HeadEditor::for_request(head);
    e.remove_hop_by_hop();
    if masked {
        e.remove("accept-encoding");
    }
    if let Some(protocol) = upgrade {
        e.append("Connection", b"Upgrade")?;
        e.append("Upgrade", protocol)?;
        // No extension is relayed: the frame codec refuses RSV bits.
        e.remove("sec-websocket-extensions");
    }
    e.remove(&h.token_header);
    if up.credential.is_some() {
        e.remove(&h.credential_header);
    }
    if head.expect_continue() {
        e.remove("expect");
    }
    e.set_request_line(head.method(), &head.origin_form(), 1)?;
    if h.x_forwarded_for {
        e.append_x_forwarded_for(client.addr)?;
    }
    if h.forwarded {
        let proto = if client.tls { "https" } else { "http" };
        e.append_forwarded(client.addr, proto, head.host())?;
    }
    if client.stream {
        // Received as HTTP/2 (RFC 9110 §7.6.3): the recording shows it too.
        e.append("Via", format!("2 {}", h.via).as_bytes())?;
    } else {
        e.append_via(head.minor_version(), &h.via)?;
    }
    if head.framing() == BodyFraming::Chunked {
        e.append("Transfer-Encoding", b"chunked")?;
    }
    let mut recorded = BytesMut::new();
    e.encode(&mut recorded);
    if let Some(c) = &up.credential {
        e.append(&h.credential_header, c)?;
    }
    let mut sent = BytesMut::new();
    e.encode(&mut sent);
    Ok((recorded.freeze(), sent.freeze()))
}

impl Exchange<'_> {
    async fn send_request(
        &mut self,
        head: &RequestHead,
        upgrade: Option<&[u8]>,
    ) -> Result<(), EndReason> {
        let h = self.h;
        let (client_meter, recording) = (self.client_meter(), self.live.recording);
        let masked = self.mask.is_some();
        let Some(up) = self.up.as_mut() else {
            return Err(EndReason::UpstreamClosed);
        };
        let (recorded, sent) = match upstream_head(head, h, up, &self.client, masked, upgrade) {
            Ok(x) => x,
            Err(e) => {
                let _ = self.client.side.write(malformed(e.status())).await;
                return Err(Peer::Client.protocol(e));
            }
        };
        if recording.enabled() {
            recording
                .client_data(Instant::now(), &recorded)
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?
                .forwardable()
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
        }
        // A small body already read goes up with its head: one write.
        if let BodyFraming::Length(n) = head.framing()
            && n <= ONE_WRITE_MAX
            && (!head.expect_continue() || self.continued)
            && self.client.side.buf.len() as u64 >= n
        {
            let body = self.client.side.buf.split_to(n as usize).freeze();
            let mut rec = BodyRecord::new(recording, h.record_body_bytes, head.framing());
            rec.note(Peer::Client, &body).await?;
            rec.finish(Peer::Client).await?;
            return up.side.write(joined(&sent, &body)).await;
        }
        up.side.write(sent).await?;
        if head.expect_continue() && !self.continued {
            let go_on = Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.client.side.write(go_on).await?;
        }
        let mut rec = BodyRecord::new(recording, h.record_body_bytes, head.framing());
        let r = body::relay(
            &mut self.client.side,
            client_meter,
            &mut up.side,
            head.framing(),
            &mut rec,
        )
        .await;
        if let Err(EndReason::ClientProtocol(e)) = &r {
            let _ = self.client.side.write(malformed(400)).await;
            info!(session = %self.s.entry.id, error = %e, "request body refused");
        }
        r
    }

    /// The upstream's final response head, interim (1xx) heads skipped.
    async fn response_head(&mut self) -> Result<ResponseHead, EndReason> {
        let meter = self.upstream_meter();
        let Some(up) = self.up.as_mut() else {
            return Err(EndReason::UpstreamClosed);
        };
        loop {
            match up.parser.response(&mut up.side.buf) {
                Ok(Some(r)) if r.is_interim() => continue,
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => return Err(Peer::Upstream.protocol(e)),
            }
            up.side.fill_some(meter).await?;
        }
    }

    /// Relay the response; whether the caller's connection goes on.
    async fn answer(&mut self, req: &RequestHead, resp: ResponseHead) -> Result<bool, EndReason> {
        let framing = resp.framing(req.method());
        if framing == BodyFraming::Tunnel {
            let _ = self.client.side.write(bad_gateway()).await;
            return Err(EndReason::UpstreamProtocol(
                "unrequested protocol switch".into(),
            ));
        }
        if framing != BodyFraming::None
            && self.mask.is_some()
            && let Some(kind) = kind_of(&resp)
        {
            return self.answer_masked(req, resp, framing, kind).await;
        }
        let delimited = framing != BodyFraming::CloseDelimited;
        let client_keep = req.keep_alive() && delimited;
        let up_keep = resp.keep_alive(req.method()) && delimited;
        let Some(out) = self.response_head_out(&resp, framing, client_keep) else {
            let _ = self.client.side.write(bad_gateway()).await;
            return Err(Peer::Upstream.protocol("an unencodable response head"));
        };
        // A small body that came with its head goes out with it: one write
        // per response instead of two.
        if let BodyFraming::Length(n) = framing
            && n <= ONE_WRITE_MAX
            && self
                .up
                .as_ref()
                .is_some_and(|u| u.side.buf.len() as u64 >= n)
        {
            let Some(up) = self.up.as_mut() else {
                return Err(EndReason::UpstreamClosed);
            };
            let body = up.side.buf.split_to(n as usize).freeze();
            let recording = self.live.recording;
            if recording.enabled() {
                recording
                    .target_data_durable(Instant::now(), &out)
                    .await
                    .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
            }
            let mut rec = BodyRecord::new(recording, self.h.record_body_bytes, framing);
            rec.note(Peer::Upstream, &body).await?;
            rec.finish(Peer::Upstream).await?;
            self.client.side.write(joined(&out, &body)).await?;
            self.upstream_done(up_keep);
            return Ok(client_keep);
        }
        self.send_response_head(out).await?;
        let meter = self.upstream_meter();
        let mut rec = BodyRecord::new(self.live.recording, self.h.record_body_bytes, framing);
        let Some(up) = self.up.as_mut() else {
            return Err(EndReason::UpstreamClosed);
        };
        body::relay(
            &mut up.side,
            meter,
            &mut self.client.side,
            framing,
            &mut rec,
        )
        .await?;
        self.upstream_done(up_keep);
        Ok(client_keep)
    }

    /// The response head for the caller: hop-by-hop fields out, `Via` in,
    /// the framing it is relayed with; `None` when it cannot be encoded.
    pub(super) fn response_head_out(
        &self,
        resp: &ResponseHead,
        framing: BodyFraming,
        client_keep: bool,
    ) -> Option<Bytes> {
        let mut e = HeadEditor::for_response(resp);
        e.remove_hop_by_hop();
        e.append_via(resp.minor_version(), &self.h.via).ok()?;
        if framing == BodyFraming::Chunked {
            e.append("Transfer-Encoding", b"chunked").ok()?;
        }
        if !client_keep {
            e.append("Connection", b"close").ok()?;
        }
        let mut out = BytesMut::new();
        e.encode(&mut out);
        Some(out.freeze())
    }

    /// Record a response head (durably: a caller never reads an answer
    /// the recording lacks) and send it.
    pub(super) async fn send_response_head(&mut self, head: Bytes) -> Result<(), EndReason> {
        let recording = self.live.recording;
        if recording.enabled() {
            recording
                .target_data_durable(Instant::now(), &head)
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
        }
        self.client.side.write(head).await
    }

    /// A response relayed whole: count it, and drop the upstream
    /// connection unless it stays open.
    pub(super) fn upstream_done(&mut self, keep: bool) {
        if let Some(up) = self.up.as_mut() {
            up.served += 1;
            if !keep {
                up.side.close();
                self.up = None;
            }
        }
    }
}
