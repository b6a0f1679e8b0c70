//! Routing and handlers: one parsed request in, one reply out. No sockets
//! here, so every route is testable with a plain `Request`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_codecs::http::Request;

use super::auth::{Need, Principal, Refusal, authenticate, authorize};
use super::{AdminState, Revocation, RevocationKind};
use crate::approvals::{Broker, DecideError, Verdict};
use crate::engine::{KillReason, SessionId, SessionSelector};
use crate::metrics::{Exposition, render_shard_families};

/// Longest reason or revocation value accepted.
const MAX_TEXT: usize = 1024;

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

fn refused(r: Refusal) -> Reply {
    match r {
        Refusal::Unauthenticated(m) => {
            Reply::error(401, m).header("WWW-Authenticate", "Bearer realm=\"tollgate-admin\"")
        }
        Refusal::Forbidden(m) => Reply::error(403, m),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    Reply::error(405, format!("method not allowed; use {allow}")).header("Allow", allow)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parse an optional JSON body (empty = all defaults).
fn body<T: for<'de> Deserialize<'de> + Default>(req: &Request) -> Result<T, Reply> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(req.body())
        .map_err(|e| Reply::error(400, format!("invalid JSON body: {e}")))
}

fn check_text(what: &str, s: &str) -> Result<(), Reply> {
    if s.len() > MAX_TEXT {
        return Err(Reply::error(
            422,
            format!("{what} longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

/// Route one request. `loopback` says whether the listener is loopback.
pub fn handle(state: &AdminState, req: &Request, loopback: bool) -> Reply {
    let path = req.path();
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let method = req.method();
    let (need, allow) = match segs.as_slice() {
        ["healthz"] | ["readyz"] => (Need::Public, "GET"),
        ["metrics"] => (Need::Admin, "GET"),
        ["v1", "sessions"] => (Need::Admin, "GET"),
        ["v1", "sessions", _] => (Need::Admin, "DELETE"),
        ["v1", "revocations"] => (Need::Admin, "GET, POST"),
        ["v1", "reload"] => (Need::Admin, "POST"),
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
        ("GET", ["v1", "sessions"]) => {
            Reply::json(200, &json!({ "sessions": state.control.list_sessions() }))
        }
        ("DELETE", ["v1", "sessions", id]) => kill(state, &who, id),
        ("GET", ["v1", "revocations"]) => match &state.revocations {
            Some(r) => Reply::json(200, &json!({ "revocations": r.list() })),
            None => Reply::error(501, "revocation is not configured"),
        },
        ("POST", ["v1", "revocations"]) => revoke(state, &who, req),
        ("POST", ["v1", "reload"]) => reload(state, &who),
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
    state.broker.render_metrics(&mut e);
    if let Some(w) = &state.webhook {
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
}

fn revoke(state: &AdminState, who: &Principal, req: &Request) -> Reply {
    let Some(sink) = &state.revocations else {
        return Reply::error(501, "revocation is not configured");
    };
    let b: RevokeBody = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let named: Vec<(RevocationKind, String)> = [
        (RevocationKind::Subject, b.subject),
        (RevocationKind::TokenId, b.token_id),
        (RevocationKind::Issuer, b.issuer),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let [(kind, value)] = named.as_slice() else {
        return Reply::error(400, "name exactly one of subject, token_id, issuer");
    };
    if value.trim().is_empty() {
        return Reply::error(422, "the revoked value is empty");
    }
    let reason = b.reason.unwrap_or_default();
    if let Err(r) = check_text("value", value).and_then(|()| check_text("reason", &reason)) {
        return r;
    }
    let revocation = Revocation {
        kind: *kind,
        value: value.clone(),
        reason,
        revoked_by: who.subject.clone(),
        revoked_ms: now_ms(),
    };
    let mut subjects = match sink.revoke(&revocation) {
        Ok(s) => s,
        Err(e) => return Reply::error(500, format!("revocation not stored: {e}")),
    };
    if *kind == RevocationKind::Subject {
        subjects.insert(0, value.clone());
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
    let kind_name = match kind {
        RevocationKind::Subject => "subject",
        RevocationKind::TokenId => "token_id",
        RevocationKind::Issuer => "issuer",
    };
    state.audit(
        &who.subject,
        "revoke",
        &format!("{kind_name}/{value}"),
        &format!("reason={:?} sessions_ended={ended}", revocation.reason),
    );
    Reply::json(
        201,
        &json!({ "revocation": revocation, "sessions_ended": ended }),
    )
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

fn decide(state: &AdminState, who: &Principal, req: &Request, id: &str, action: &str) -> Reply {
    let Ok(id) = id.parse::<u64>() else {
        return Reply::error(404, format!("no approval request {id}"));
    };
    let b: DecideBody = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(reason) = &b.reason
        && let Err(r) = check_text("reason", reason)
    {
        return r;
    }
    let verdict = match action {
        "approve" => Verdict::Approve {
            grant: b
                .grant_minutes
                .filter(|&m| m > 0)
                .map(|m| Duration::from_secs(m.saturating_mul(60))),
        },
        _ if b.grant_minutes.is_some() => {
            return Reply::error(422, "grant_minutes only applies to approve");
        }
        _ => Verdict::Deny,
    };
    let object = format!("approval/{id}");
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
