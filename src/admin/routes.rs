//! Routing and handlers: one request in, one reply out. No sockets here, so
//! every route is testable with a plain [`AdminRequest`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AdminRefusal, Need, Principal, authenticate, authorize, browser_refusal};
use super::validate::{self, MAX_REASON};
use super::{AdminState, Revocation, RevocationKind};
use crate::approvals::{Broker, DecideError, ReviewerAnswer};
use crate::engine::{KillReason, SessionId, SessionSelector};
use crate::metrics::{Exposition, render_shard_families};

/// The longest a revocation may be given to lapse in (`until`): beyond this
/// it is a mistake, or meant to be permanent (leave `until` out).
const MAX_UNTIL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A request as the routes see it (the server builds it from hyper's parts;
/// tests build it directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query string (after `?`, undecoded; empty when none).
    pub query: String,
    /// Names lower-case, in arrival order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl AdminRequest {
    pub fn from_parts(parts: &hyper::http::request::Parts, body: Bytes) -> AdminRequest {
        AdminRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    /// Every value of header `name` (any case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// A response before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    pub fn error(status: u16, message: impl std::fmt::Display) -> Reply {
        Reply::json(status, &json!({ "error": message.to_string() }))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as JSON (tests).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn refused(r: AdminRefusal) -> Reply {
    match r {
        AdminRefusal::Unauthenticated(m) => {
            Reply::error(401, m).header("WWW-Authenticate", "Bearer realm=\"tollgate-admin\"")
        }
        AdminRefusal::Forbidden(m) => Reply::error(403, m),
        AdminRefusal::UnsupportedMediaType(m) => Reply::error(415, m),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    Reply::error(405, format!("method not allowed; use {allow}")).header("Allow", allow)
}

/// Parse an optional JSON body (empty = all defaults).
fn body<T: for<'de> Deserialize<'de> + Default>(req: &AdminRequest) -> Result<T, Reply> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(req.body())
        .map_err(|e| Reply::error(400, format!("invalid JSON body: {e}")))
}

fn invalid(e: validate::InputError) -> Reply {
    Reply::error(422, e)
}

/// Route one request. `loopback` says whether the listener is loopback.
pub fn handle(state: &AdminState, req: &AdminRequest, loopback: bool) -> Reply {
    let path = req.path.as_str();
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let method = req.method.as_str();
    let (need, allow) = match segs.as_slice() {
        ["healthz"] | ["readyz"] => (Need::Public, "GET"),
        ["metrics"] => (Need::Admin, "GET"),
        ["v1", "sessions"] => (Need::Admin, "GET"),
        ["v1", "sessions", _] => (Need::Admin, "DELETE"),
        ["v1", "revocations"] => (Need::Admin, "GET, POST"),
        ["v1", "revocations", _] => (Need::Admin, "DELETE"),
        ["v1", "reload"] => (Need::Admin, "POST"),
        ["v1", "recordings", "catalog"] => (Need::Admin, "GET"),
        ["v1", "approvals"] | ["v1", "approvals", _] | ["v1", "grants"] => (Need::Reviewer, "GET"),
        ["v1", "approvals", _, "approve" | "deny"] => (Need::Reviewer, "POST"),
        _ => return Reply::error(404, format!("no such endpoint: {path}")),
    };
    if !allow.split(", ").any(|m| m == method) {
        return method_not_allowed(allow);
    }
    let who = if need == Need::Public {
        Principal::local_operator()
    } else {
        if let Err(r) = browser_refusal(state, req, loopback) {
            return refused(r);
        }
        match authenticate(state, req, loopback)
            .and_then(|p| authorize(state, &p, need).map(|()| p))
        {
            Ok(p) => p,
            Err(r) => return refused(r),
        }
    };
    match (method, segs.as_slice()) {
        ("GET", ["healthz"]) => Reply::json(200, &json!({"status": "ok"})),
        ("GET", ["readyz"]) => readyz(state),
        ("GET", ["metrics"]) => metrics(state),
        ("GET", ["v1", "sessions"]) => match &state.fleet {
            Some(f) => super::fleet::sessions(state, f),
            None => Reply::json(200, &json!({ "sessions": state.control.list_sessions() })),
        },
        ("DELETE", ["v1", "sessions", id]) => kill(state, &who, id),
        ("GET", ["v1", "revocations"]) => match &state.revocations {
            Some(r) => Reply::json(200, &json!({ "revocations": r.list() })),
            None => Reply::error(501, "revocation is not configured"),
        },
        ("POST", ["v1", "revocations"]) => revoke(state, &who, req),
        ("DELETE", ["v1", "revocations", id]) => lift(state, &who, id),
        ("POST", ["v1", "reload"]) => reload(state, &who),
        ("GET", ["v1", "recordings", "catalog"]) => super::fleet::catalog(state, &req.query),
        ("GET", ["v1", "approvals"]) if state.fleet.is_some() => {
            super::fleet::approvals(state, &who, None)
        }
        ("GET", ["v1", "approvals", id]) if state.fleet.is_some() => {
            super::fleet::approvals(state, &who, Some(id))
        }
        ("GET", ["v1", "approvals"]) => {
            let visible: Vec<_> = state
                .broker
                .pending()
                .into_iter()
                .filter(|v| who.is_admin(state) || Broker::may_review(v, &who.reviewer()))
                .collect();
            Reply::json(200, &json!({ "approvals": visible }))
        }
        ("GET", ["v1", "grants"]) => Reply::json(200, &json!({ "grants": state.broker.grants() })),
        ("GET", ["v1", "approvals", id]) => {
            let found = id
                .parse::<u64>()
                .ok()
                .and_then(|id| state.broker.get(id))
                .filter(|v| who.is_admin(state) || Broker::may_review(v, &who.reviewer()));
            match found {
                Some(v) => Reply::json(200, &json!(v)),
                None => Reply::error(404, format!("no approval request {id}")),
            }
        }
        ("POST", ["v1", "approvals", id, action]) => decide(state, &who, req, id, action),
        _ => Reply::error(404, format!("no such endpoint: {path}")),
    }
}

fn readyz(state: &AdminState) -> Reply {
    let checks = state
        .readiness
        .as_ref()
        .map(|p| p.checks())
        .unwrap_or_default();
    let ready = checks.iter().all(|c| c.ok);
    Reply::json(
        if ready { 200 } else { 503 },
        &json!({ "ready": ready, "checks": checks }),
    )
}

fn metrics(state: &AdminState) -> Reply {
    let mut e = Exposition::new();
    let stats = state.control.shard_stats();
    match &state.metrics {
        Some(m) => m.render(stats, &mut e),
        None => render_shard_families(stats, &[], &mut e),
    }
    crate::pg::poolstats::render(&mut e);
    state.broker.render_metrics(&mut e);
    if let Some(w) = state.webhook_stats() {
        w.render(&mut e);
    }
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: e.finish().into_bytes(),
        headers: Vec::new(),
    }
}

fn kill(state: &AdminState, who: &Principal, id: &str) -> Reply {
    if let Some(f) = &state.fleet {
        return super::fleet::kill(state, f, who, id);
    }
    let Ok(sid) = id.parse::<SessionId>() else {
        return Reply::error(400, format!("{id:?} is not a session id (16 hex digits)"));
    };
    let n = state
        .control
        .kill(SessionSelector::Id(sid), KillReason::Admin);
    state.audit(
        &who.subject,
        "kill",
        &format!("session/{sid}"),
        &format!("ended {n}"),
    );
    if n == 0 {
        Reply::error(404, format!("no live session {sid}"))
    } else {
        Reply::json(200, &json!({ "killed": n }))
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    subject: Option<String>,
    token_id: Option<String>,
    issuer: Option<String>,
    reason: Option<String>,
    /// RFC 3339 time at which the revocation lapses.
    until: Option<String>,
}

/// `until` as milliseconds since the epoch: in the future, not absurdly far.
fn parse_until(until: &str, now: SystemTime) -> Result<u64, Reply> {
    validate::text("until", until, 64).map_err(invalid)?;
    let t = humantime::parse_rfc3339_weak(until).map_err(|e| {
        Reply::error(
            422,
            format!("until {until:?} is not an RFC 3339 time ({e}); e.g. 2026-12-31T23:00:00Z"),
        )
    })?;
    if t <= now {
        return Err(Reply::error(
            422,
            format!("until {until:?} is not in the future"),
        ));
    }
    if t.duration_since(now).unwrap_or_default() > MAX_UNTIL {
        return Err(Reply::error(
            422,
            "until is more than 10 years away; leave it out for a revocation until lifted",
        ));
    }
    Ok(epoch_ms(t))
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The revocation a POST body asks for, validated.
fn revocation_of(b: RevokeBody, who: &Principal) -> Result<Revocation, Reply> {
    let named: Vec<(RevocationKind, String)> = [
        (RevocationKind::Subject, b.subject),
        (RevocationKind::TokenId, b.token_id),
        (RevocationKind::Issuer, b.issuer),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let [(kind, value)] = named.as_slice() else {
        return Err(Reply::error(
            400,
            "name exactly one of subject, token_id, issuer",
        ));
    };
    validate::identifier(kind.name(), value).map_err(invalid)?;
    let reason = b.reason.unwrap_or_default();
    validate::text("reason", &reason, MAX_REASON).map_err(invalid)?;
    let now = SystemTime::now();
    let until_ms = b.until.map(|u| parse_until(&u, now)).transpose()?;
    Ok(Revocation {
        id: None,
        kind: *kind,
        value: value.clone(),
        reason,
        revoked_by: who.subject.clone(),
        revoked_ms: Some(epoch_ms(now)),
        until_ms,
    })
}

fn revoke(state: &AdminState, who: &Principal, req: &AdminRequest) -> Reply {
    let Some(sink) = &state.revocations else {
        return Reply::error(501, "revocation is not configured");
    };
    let revocation = match body::<RevokeBody>(req).and_then(|b| revocation_of(b, who)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Durable first: nothing is acknowledged (or enforced) that a restart
    // would forget.
    let (stored, mut subjects) = match sink.revoke(&revocation) {
        Ok(s) => s,
        Err(e) => return Reply::error(503, format!("revocation not stored: {e}")),
    };
    if stored.kind == RevocationKind::Subject {
        subjects.insert(0, stored.value.clone());
    }
    subjects.sort();
    subjects.dedup();
    let ended: usize = subjects
        .into_iter()
        .map(|s| {
            state
                .control
                .kill(SessionSelector::Subject(s), KillReason::Revoked)
        })
        .sum();
    let until = stored
        .until_ms
        .map(|u| format!(" until_ms={u}"))
        .unwrap_or_default();
    state.audit(
        &who.subject,
        "revoke",
        &format!("{}/{}", stored.kind.name(), stored.value),
        &format!(
            "id={} reason={:?}{until} sessions_ended={ended}",
            stored.id.unwrap_or(0),
            stored.reason
        ),
    );
    Reply::json(
        201,
        &json!({ "revocation": stored, "sessions_ended": ended }),
    )
}

fn lift(state: &AdminState, who: &Principal, id: &str) -> Reply {
    let Some(sink) = &state.revocations else {
        return Reply::error(501, "revocation is not configured");
    };
    let Ok(id) = id.parse::<u64>() else {
        return Reply::error(404, format!("no revocation {id:?} (ids are numbers)"));
    };
    match sink.lift(id) {
        Ok(Some(r)) => {
            state.audit(
                &who.subject,
                "lift",
                &format!("{}/{}", r.kind.name(), r.value),
                &format!("id={id}"),
            );
            Reply::json(200, &json!({ "lifted": r }))
        }
        Ok(None) => Reply::error(404, format!("no revocation {id} in force")),
        Err(e) => Reply::error(503, format!("revocation not lifted: {e}")),
    }
}

fn reload(state: &AdminState, who: &Principal) -> Reply {
    let Some(r) = &state.reloader else {
        return Reply::error(501, "reload is not configured");
    };
    match r.reload() {
        Ok(summary) => {
            state.audit(&who.subject, "reload", "config", "applied");
            Reply::json(200, &json!({ "reloaded": true, "summary": summary }))
        }
        Err(e) => {
            state.audit(&who.subject, "reload", "config", &format!("refused: {e}"));
            Reply::error(422, e)
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    reason: Option<String>,
    grant_minutes: Option<u64>,
}

fn decide(
    state: &AdminState,
    who: &Principal,
    req: &AdminRequest,
    id: &str,
    action: &str,
) -> Reply {
    let Ok(id) = id.parse::<u64>() else {
        return Reply::error(404, format!("no approval request {id}"));
    };
    let b: DecideBody = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(reason) = &b.reason
        && let Err(e) = validate::text("reason", reason, MAX_REASON)
    {
        return invalid(e);
    }
    let verdict = match action {
        "approve" => ReviewerAnswer::Approve {
            grant: b
                .grant_minutes
                .filter(|&m| m > 0)
                .map(|m| Duration::from_secs(m.saturating_mul(60))),
        },
        _ if b.grant_minutes.is_some() => {
            return Reply::error(422, "grant_minutes only applies to approve");
        }
        _ => ReviewerAnswer::Deny,
    };
    let object = format!("approval/{id}");
    if let Some(f) = &state.fleet {
        return super::fleet::decide(state, f, who, id, action, verdict, b.reason);
    }
    match state
        .broker
        .decide(id, &who.reviewer(), verdict, b.reason.as_deref())
    {
        Ok(v) => {
            let grant = v
                .grant_expires_ms
                .map(|t| format!(" grant_until_ms={t}"))
                .unwrap_or_default();
            state.audit(
                &who.subject,
                action,
                &object,
                &format!(
                    "requester={} target={} rule={:?} reason={:?}{grant}",
                    v.requester,
                    v.target,
                    v.rule,
                    v.reason.as_deref().unwrap_or("")
                ),
            );
            Reply::json(200, &json!(v))
        }
        Err(e) => {
            let status = match &e {
                DecideError::NotFound { .. } => 404,
                DecideError::AlreadyDecided { .. } => 409,
                DecideError::OwnRequest { .. } | DecideError::NotReviewer { .. } => {
                    // Refused attempts to decide are security events too.
                    state.audit(&who.subject, action, &object, &format!("refused: {e}"));
                    403
                }
                DecideError::BadGrant { .. } => 422,
            };
            Reply::error(status, e)
        }
    }
}
