//! Response bodies masked before the caller reads them, with the target's
//! `[target.masking]` rules: `application/json` (and `+json`) by key names
//! (the rules' column globs) and the content detectors, text-like bodies
//! (`text/*`, XML, form data, a body without a Content-Type) by the
//! detectors. Other media types (images, archives, octet streams) pass
//! unmasked: detectors read text.
//!
//! A masked body is gathered whole, up to `[target.http] mask_body_max`
//! (charged to the session's memory budget), masked, and sent with a new
//! `Content-Length` (a chunked body's trailers are dropped; digests of the
//! original body are removed when it changed). Beyond the cap the response
//! is refused with `502` (`mask_over_cap = "block"`, the default) or passed
//! unmasked (`"pass"`), logged either way. Requests on a masked target ask
//! for `identity` encoding (`Accept-Encoding` removed); a compressed answer
//! is refused with `502` rather than passed unread. A body that says it is
//! JSON but does not parse is scanned by the detectors, or refused when a
//! key-name rule applies to the caller (its keys cannot be found).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkEvent, ChunkedDecoder, HeadEditor, Limits, RequestHead, ResponseHead,
};
use tracing::warn;

use super::body::{self, BodyRecord};
use super::exchange::Exchange;
use super::io::{Meter, Peer, Side, answer};
use crate::config::http::OverCap;
use crate::identity::Identity;
use crate::limits::{Direction, SessionBudget};
use crate::pipeline::EndReason;
use crate::policy::mask::{MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// What a response body is, for masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Json,
    Text,
}

/// Media types read as text besides `text/*`.
const TEXT_TYPES: [&str; 6] = [
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/x-ndjson",
    "application/graphql",
    "application/yaml",
];

/// The kind of a response's body by its `Content-Type` (`None`: passed
/// unmasked). No Content-Type, or more than one, reads as text.
/// A `Content-Type` value's media type, lower case, parameters dropped.
pub(crate) fn media_type(content_type: &[u8]) -> String {
    let ct = String::from_utf8_lossy(content_type);
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `application/json` or a `+json` type.
pub(crate) fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

pub(crate) fn kind_of(resp: &ResponseHead) -> Option<Kind> {
    let mut types = resp.fields().get_all("content-type");
    let (Some(ct), None) = (types.next(), types.next()) else {
        return Some(Kind::Text);
    };
    let media = media_type(ct);
    if is_json(&media) {
        Some(Kind::Json)
    } else if media.starts_with("text/")
        || media.ends_with("+xml")
        || TEXT_TYPES.contains(&media.as_str())
    {
        Some(Kind::Text)
    } else {
        None
    }
}

/// A caller's masking on one connection (the identity is fixed per
/// connection, so the plan is made once).
pub(crate) struct Masking {
    plan: ResultPlan,
    scratch: MaskScratch,
    budget: Rc<SessionBudget>,
}

impl Masking {
    /// `None` when the target masks nothing for this caller.
    pub fn for_caller(
        policy: Option<&MaskPolicy>,
        identity: &Identity,
        limits: &crate::limits::LimitsConfig,
    ) -> Option<Masking> {
        let m = policy?;
        let mut plan = ResultPlan::default();
        m.plan_caller(&identity.groups, &mut plan);
        if plan.is_noop() && !m.has_json_key_rules(&plan) {
            return None;
        }
        Some(Masking {
            plan,
            scratch: MaskScratch::default(),
            budget: Rc::new(SessionBudget::new(limits)),
        })
    }
}

/// Why a body could not be masked.
enum Unmaskable {
    /// Not JSON although it says so, and a key-name rule applies.
    BadJson,
}

/// Masks a whole body; `Ok(None)`: unchanged.
fn mask_body(
    m: &MaskPolicy,
    k: &mut Masking,
    kind: Kind,
    body: &[u8],
) -> Result<Option<Vec<u8>>, Unmaskable> {
    if kind == Kind::Json {
        // Masked where it lies: every occurrence of a duplicate key too,
        // and the upstream's layout kept.
        let mut out = Vec::new();
        match crate::policy::mask::jsontext::mask(m, &k.plan, body, &mut k.scratch, &mut out) {
            Ok(changed) => return Ok(changed.then_some(out)),
            Err(_) if m.has_json_key_rules(&k.plan) => return Err(Unmaskable::BadJson),
            Err(_) => {}
        }
    }
    Ok(match m.mask_text(&k.plan, body, &mut k.scratch) {
        MaskOutcome::Unchanged => None,
        MaskOutcome::Replaced(b) => Some(b.to_vec()),
        // mask_text never NULLs a text; nothing of it may pass if it did.
        MaskOutcome::Null => Some(Vec::new()),
    })
}

/// A body read up to the cap, or what was read when the cap was reached.
enum Gathered {
    Whole(Vec<u8>),
    Over(Vec<u8>, Rest),
}

/// Where an over-cap body goes on from.
enum Rest {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

fn charge(k: &Masking, body: &Vec<u8>, side: &Side) -> Result<(), EndReason> {
    let held = body.capacity() + side.buf.capacity();
    k.budget
        .charge(Direction::FromUpstream, held)
        .map_err(|e| EndReason::OutOfMemory(e.to_string()))
}

async fn gather(
    from: &mut Side,
    meter: Meter<'_>,
    framing: BodyFraming,
    cap: usize,
    k: &Masking,
) -> Result<Gathered, EndReason> {
    let mut body = Vec::new();
    match framing {
        BodyFraming::None | BodyFraming::Tunnel => Ok(Gathered::Whole(body)),
        BodyFraming::Length(n) if n > cap as u64 => Ok(Gathered::Over(body, Rest::Length(n))),
        BodyFraming::Length(n) => {
            // n ≤ cap: the whole body is read before anything is sent.
            let n = n as usize;
            while from.buf.len() < n {
                charge(k, &body, from)?;
                from.fill_some(meter).await?;
            }
            body.extend_from_slice(&from.buf.split_to(n));
            Ok(Gathered::Whole(body))
        }
        BodyFraming::CloseDelimited => loop {
            body.extend_from_slice(&from.buf.split());
            if body.len() > cap {
                return Ok(Gathered::Over(body, Rest::Close));
            }
            charge(k, &body, from)?;
            if from.fill(meter).await? == 0 {
                return Ok(Gathered::Whole(body));
            }
        },
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new(&Limits::default());
            loop {
                match decoder
                    .decode(&mut from.buf)
                    .map_err(|e| Peer::Upstream.protocol(e))?
                {
                    Some(ChunkEvent::Data(d)) => {
                        body.extend_from_slice(&d);
                        if body.len() > cap {
                            return Ok(Gathered::Over(body, Rest::Chunked(decoder)));
                        }
                    }
                    Some(ChunkEvent::End(_trailers)) => return Ok(Gathered::Whole(body)),
                    None => {
                        charge(k, &body, from)?;
                        from.fill_some(meter).await?;
                    }
                }
            }
        }
    }
}

/// Fields that describe the original body's bytes.
const DIGESTS: [&str; 4] = ["content-md5", "digest", "content-digest", "repr-digest"];

impl Exchange<'_> {
    /// Relay a response whose body the caller's masking applies to;
    /// whether the caller's connection goes on.
    pub(super) async fn answer_masked(
        &mut self,
        req: &RequestHead,
        resp: ResponseHead,
        framing: BodyFraming,
        kind: Kind,
    ) -> Result<bool, EndReason> {
        let coded = resp
            .fields()
            .get_all("content-encoding")
            .any(|v| !v.trim_ascii().eq_ignore_ascii_case(b"identity"));
        if coded {
            return self
                .refuse_response("a compressed response on a masked target")
                .await;
        }
        let meter = self.upstream_meter();
        let (Some(up), Some(k)) = (self.up.as_mut(), self.mask.as_ref()) else {
            return Err(EndReason::UpstreamClosed);
        };
        let gathered = gather(&mut up.side, meter, framing, self.h.mask_body_max, k).await;
        if let Some(k) = &self.mask {
            k.budget.release_to(Direction::FromUpstream, 0);
        }
        let gathered = match gathered {
            Err(EndReason::OutOfMemory(e)) => {
                warn!(session = %self.s.entry.id, reason = %e, "response refused: memory budget");
                let _ = self
                    .client
                    .side
                    .write(answer(503, &[], "response too large to mask\n", true))
                    .await;
                return Err(EndReason::OutOfMemory(e));
            }
            g => g?,
        };
        match gathered {
            Gathered::Whole(body) => self.send_masked(req, &resp, framing, kind, body).await,
            Gathered::Over(read, rest) => match self.h.mask_over_cap {
                OverCap::Block => {
                    self.refuse_response("a response body over mask_body_max")
                        .await
                }
                OverCap::Pass => {
                    warn!(session = %self.s.entry.id, cap = self.h.mask_body_max,
                        "response body over mask_body_max passed unmasked");
                    self.send_over_cap(req, &resp, framing, read, rest).await
                }
            },
        }
    }

    /// `502` to the caller, both connections closed.
    async fn refuse_response(&mut self, why: &str) -> Result<bool, EndReason> {
        warn!(session = %self.s.entry.id, reason = why, "response refused");
        let _ = self
            .client
            .side
            .write(answer(502, &[], "response could not be masked\n", true))
            .await;
        if let Some(u) = self.up.take() {
            u.side.close();
        }
        Err(EndReason::Refused(format!("response refused: {why}")))
    }

    async fn send_masked(
        &mut self,
        req: &RequestHead,
        resp: &ResponseHead,
        framing: BodyFraming,
        kind: Kind,
        body: Vec<u8>,
    ) -> Result<bool, EndReason> {
        let masked = match (&self.target.rt.masking, self.mask.as_mut()) {
            (Some(m), Some(k)) => {
                let r = mask_body(m, k, kind, &body);
                let metrics = self.s.ctx.shared.metrics.shard(self.s.ctx.id);
                metrics.masked_counts(&k.scratch.counters);
                k.scratch.counters = Default::default();
                r
            }
            _ => Ok(None),
        };
        let changed = match masked {
            Ok(c) => c,
            Err(Unmaskable::BadJson) => {
                return self
                    .refuse_response("a JSON response that does not parse")
                    .await;
            }
        };
        let was_changed = changed.is_some();
        let body = Bytes::from(changed.unwrap_or(body));
        // Re-framed with a length: the caller's connection can go on even
        // after a close-delimited upstream answer.
        let client_keep = req.keep_alive();
        let up_keep = resp.keep_alive(req.method()) && framing != BodyFraming::CloseDelimited;
        let mut e = HeadEditor::for_response(resp);
        e.remove_hop_by_hop();
        e.remove("content-length");
        if was_changed {
            for d in DIGESTS {
                e.remove(d);
            }
        }
        let len = body.len().to_string();
        let edited = (|| {
            e.append_via(resp.minor_version(), &self.h.via)?;
            e.append("Content-Length", len.as_bytes())?;
            if !client_keep {
                e.append("Connection", b"close")?;
            }
            Ok::<_, tollgate_codecs::http::h1::H1Error>(())
        })();
        if let Err(err) = edited {
            return self.refuse_response(&err.to_string()).await;
        }
        let mut head = BytesMut::new();
        e.encode(&mut head);
        self.send_response_head(head.freeze()).await?;
        let framing = BodyFraming::Length(body.len() as u64);
        let mut rec = BodyRecord::new(self.live.recording, self.h.record_body_bytes, framing);
        rec.note(Peer::Upstream, &body).await?;
        rec.finish(Peer::Upstream).await?;
        self.client.side.write(body).await?;
        self.upstream_done(up_keep);
        Ok(client_keep)
    }

    async fn send_over_cap(
        &mut self,
        req: &RequestHead,
        resp: &ResponseHead,
        framing: BodyFraming,
        read: Vec<u8>,
        rest: Rest,
    ) -> Result<bool, EndReason> {
        let delimited = framing != BodyFraming::CloseDelimited;
        let client_keep = req.keep_alive() && delimited;
        let up_keep = resp.keep_alive(req.method()) && delimited;
        let Some(head) = self.response_head_out(resp, framing, client_keep) else {
            return self.refuse_response("an unencodable response head").await;
        };
        self.send_response_head(head).await?;
        let meter = self.upstream_meter();
        let mut rec = BodyRecord::new(self.live.recording, self.h.record_body_bytes, framing);
        let Some(up) = self.up.as_mut() else {
            return Err(EndReason::UpstreamClosed);
        };
        rec.note(Peer::Upstream, &read).await?;
        let to = &mut self.client.side;
        match rest {
            Rest::Length(n) => {
                let left = n - read.len() as u64;
                if left == 0 {
                    // Its last bytes: the digest goes first (body::relay).
                    rec.finish(Peer::Upstream).await?;
                }
                to.write(Bytes::from(read)).await?;
                body::relay(&mut up.side, meter, to, BodyFraming::Length(left), &mut rec).await?;
            }
            Rest::Close => {
                to.write(Bytes::from(read)).await?;
                body::relay(
                    &mut up.side,
                    meter,
                    to,
                    BodyFraming::CloseDelimited,
                    &mut rec,
                )
                .await?;
            }
            Rest::Chunked(decoder) => {
                let mut out = BytesMut::new();
                tollgate_codecs::http::h1::encode_chunk(&read, &mut out);
                to.write(out.freeze()).await?;
                body::relay_chunks(&mut up.side, meter, to, decoder, &mut rec).await?;
            }
        }
        rec.finish(Peer::Upstream).await?;
        self.upstream_done(up_keep);
        Ok(client_keep)
    }
}
