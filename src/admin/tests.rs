//! Route and auth tests against fakes: no sockets, no engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tollgate_codecs::http::{Limits, Request, parse_request};

use super::routes::{AdminRequest, Reply, handle};
use super::*;
use crate::approvals::{ApprovalOutcome, ApprovalRequest, BrokerConfig};

#[derive(Default)]
pub(crate) struct FakeControl {
    pub sessions: Mutex<Vec<SessionInfo>>,
}

impl FakeControl {
    pub fn with(sessions: &[(&str, &str)]) -> FakeControl {
        let list = sessions
            .iter()
            .enumerate()
            .map(|(i, (id, subject))| SessionInfo {
                id: id.to_string(),
                shard: i,
                target: "payments".into(),
                client: "127.0.0.1:5000".into(),
                subject: Some(subject.to_string()),
                started_ms: 1,
                bytes_up: 10,
                bytes_down: 20,
                current_statement: None,
            })
            .collect();
        FakeControl {
            sessions: Mutex::new(list),
        }
    }
}

impl SessionControl for FakeControl {
    fn list_sessions(&self) -> Vec<SessionInfo> {
        self.sessions.lock().unwrap().clone()
    }
    fn kill(&self, which: SessionSelector, _reason: KillReason) -> usize {
        let mut s = self.sessions.lock().unwrap();
        let before = s.len();
        s.retain(|x| match &which {
            SessionSelector::Id(id) => x.id != id.to_string(),
            SessionSelector::Subject(sub) => x.subject.as_deref() != Some(sub),
            SessionSelector::Revoked(_) => true,
            SessionSelector::All => false,
        });
        before - s.len()
    }
}

pub(crate) struct FakeAuth;

impl AdminAuth for FakeAuth {
    fn verify(&self, bearer: &str) -> Result<Caller, String> {
        let (subject, groups): (&str, &[&str]) = match bearer {
            "sre-token" => ("sam", &["sre"]),
            "alice-token" => ("alice", &["reviewers"]),
            "bob-token" => ("bob", &["reviewers"]),
            "ci-token" => ("ci-job", &["ci"]),
            _ => return Err("signature invalid".into()),
        };
        Ok(Caller {
            subject: subject.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
    }
}

#[derive(Default)]
pub(crate) struct FakeAudit(pub Mutex<Vec<(String, String, String, String)>>);

impl AuditSink for FakeAudit {
    fn admin_action(&self, actor: &str, action: &str, object: &str, detail: &str) {
        self.0
            .lock()
            .unwrap()
            .push((actor.into(), action.into(), object.into(), detail.into()));
    }
}

const S1: &str = "000000010100002a";
const S2: &str = "0000000000000001000000000000002b";

struct Fixture {
    state: AdminState,
    control: Arc<FakeControl>,
    audit: Arc<FakeAudit>,
    revocations: Arc<MemoryRevocations>,
}

fn fixture() -> Fixture {
    let control = Arc::new(FakeControl::with(&[(S1, "ci-job"), (S2, "etl")]));
    let audit = Arc::new(FakeAudit::default());
    let revocations = Arc::new(MemoryRevocations::default());
    let config = AdminConfig {
        admin_groups: vec!["sre".into()],
        reviewer_groups: vec!["reviewers".into()],
        ..AdminConfig::default()
    };
    let broker = Broker::new(
        BrokerConfig {
            default_reviewer_groups: vec!["reviewers".into()],
            ..BrokerConfig::default()
        },
        None,
    )
    .unwrap();
    let state = AdminState::new(config, control.clone(), broker)
        .with_auth(Arc::new(FakeAuth))
        .with_audit(audit.clone())
        .with_revocations(revocations.clone())
        .with_reloader(Arc::new(|| Ok::<_, String>("2 targets".to_string())))
        .with_metrics(Arc::new(crate::metrics::Metrics::new(2)));
    Fixture {
        state,
        control,
        audit,
        revocations,
    }
}

fn request(method: &str, path: &str, token: Option<&str>, body: &str) -> AdminRequest {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let json = if method == "POST" {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    raw(&format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n{auth}{json}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// A request exactly as written on the wire (parsed by the HTTP codec).
fn raw(text: &str) -> AdminRequest {
    let mut b = BytesMut::from(text.as_bytes());
    let req: Request = parse_request(&mut b, &Limits::default()).unwrap().unwrap();
    let target = req.path().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    AdminRequest {
        method: req.method().to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect(),
        body: req.body().clone(),
    }
}

fn call(
    f: &Fixture,
    loopback: bool,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    handle(&f.state, &request(method, path, token, body), loopback)
}

#[test]
fn loopback_without_a_token_is_the_local_operator() {
    let f = fixture();
    let r = call(&f, true, "GET", "/v1/sessions", None, "");
    assert_eq!(r.status, 200);
    let sessions = r.json_body()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["subject"], "ci-job");
}

#[test]
fn non_loopback_requires_a_valid_admin_token() {
    let f = fixture();
    let r = call(&f, false, "GET", "/v1/sessions", None, "");
    assert_eq!(r.status, 401);
    assert!(r.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
    assert_eq!(
        call(&f, false, "GET", "/v1/sessions", Some("forged"), "").status,
        401
    );
    assert_eq!(
        call(&f, false, "GET", "/v1/sessions", Some("ci-token"), "").status,
        403
    );
    assert_eq!(
        call(&f, false, "GET", "/v1/sessions", Some("alice-token"), "").status,
        403
    );
    assert_eq!(
        call(&f, false, "GET", "/v1/sessions", Some("sre-token"), "").status,
        200
    );
    assert_eq!(call(&f, false, "GET", "/metrics", None, "").status, 401);
    // Reviewers reach the approval endpoints but nothing else.
    assert_eq!(
        call(&f, false, "GET", "/v1/approvals", Some("alice-token"), "").status,
        200
    );
    assert_eq!(
        call(&f, false, "GET", "/v1/approvals", Some("ci-token"), "").status,
        403
    );
    // Health probes carry no token.
    assert_eq!(call(&f, false, "GET", "/healthz", None, "").status, 200);
    assert_eq!(call(&f, false, "GET", "/readyz", None, "").status, 200);
}

#[test]
fn a_token_on_loopback_is_verified_and_its_identity_used() {
    let f = fixture();
    assert_eq!(
        call(&f, true, "GET", "/v1/sessions", Some("ci-token"), "").status,
        403
    );
    assert_eq!(
        call(&f, true, "GET", "/v1/sessions", Some("forged"), "").status,
        401
    );
    let req =
        raw("GET /v1/sessions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic abc\r\n\r\n");
    assert_eq!(handle(&f.state, &req, true).status, 401);
}

#[test]
fn tokens_without_a_verifier_are_refused() {
    let mut f = fixture();
    f.state.auth = None;
    assert_eq!(
        call(&f, true, "GET", "/v1/sessions", Some("sre-token"), "").status,
        401
    );
    assert_eq!(call(&f, true, "GET", "/v1/sessions", None, "").status, 200);
}

#[test]
fn unknown_paths_and_methods() {
    let f = fixture();
    assert_eq!(call(&f, true, "GET", "/v2/sessions", None, "").status, 404);
    assert_eq!(call(&f, true, "GET", "/v1/sessions/", None, "").status, 405);
    let r = call(&f, true, "POST", "/v1/sessions", None, "");
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("Allow", "GET".to_string())));
    assert_eq!(
        call(&f, true, "GET", "/v1/approvals/1/approve", None, "").status,
        405
    );
    assert!(r.json_body()["error"].is_string());
}

#[test]
fn kill_ends_one_session_and_is_audited() {
    let f = fixture();
    let r = call(&f, true, "DELETE", &format!("/v1/sessions/{S1}"), None, "");
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body()["killed"], 1);
    assert_eq!(f.control.list_sessions().len(), 1);
    let audit = f.audit.0.lock().unwrap().clone();
    assert_eq!(audit[0].0, "local-admin");
    assert_eq!(audit[0].1, "kill");
    assert_eq!(audit[0].2, format!("session/{S1}"));
    assert_eq!(
        call(&f, true, "DELETE", &format!("/v1/sessions/{S1}"), None, "").status,
        404
    );
    assert_eq!(
        call(&f, true, "DELETE", "/v1/sessions/not-hex", None, "").status,
        400
    );
}

#[test]
fn revoking_a_subject_stores_it_and_ends_its_sessions() {
    let f = fixture();
    let r = call(
        &f,
        false,
        "POST",
        "/v1/revocations",
        Some("sre-token"),
        r#"{"subject": "ci-job", "reason": "leaked"}"#,
    );
    assert_eq!(r.status, 201, "{:?}", r.json_body());
    assert_eq!(r.json_body()["sessions_ended"], 1);
    assert!(f.revocations.is_revoked(RevocationKind::Subject, "ci-job"));
    assert_eq!(f.control.list_sessions().len(), 1);
    let listed = call(&f, false, "GET", "/v1/revocations", Some("sre-token"), "");
    assert_eq!(listed.json_body()["revocations"][0]["revoked_by"], "sam");
    assert_eq!(listed.json_body()["revocations"][0]["reason"], "leaked");
    // A token id ends nothing by itself (the sink names no subjects).
    let r = call(
        &f,
        true,
        "POST",
        "/v1/revocations",
        None,
        r#"{"token_id": "jti-1"}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json_body()["sessions_ended"], 0);
    for bad in [
        r#"{"subject": "a", "issuer": "b"}"#,
        r#"{}"#,
        r#"{"who": "x"}"#,
        "not json",
    ] {
        assert_eq!(
            call(&f, true, "POST", "/v1/revocations", None, bad).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        call(
            &f,
            true,
            "POST",
            "/v1/revocations",
            None,
            r#"{"subject": " "}"#
        )
        .status,
        422
    );
    let actions: Vec<String> = f
        .audit
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.1.clone())
        .collect();
    assert_eq!(actions, vec!["revoke", "revoke"]);
}

#[test]
fn revocation_and_reload_without_hooks_are_501() {
    let mut f = fixture();
    f.state.revocations = None;
    f.state.reloader = None;
    assert_eq!(
        call(
            &f,
            true,
            "POST",
            "/v1/revocations",
            None,
            r#"{"subject":"a"}"#
        )
        .status,
        501
    );
    assert_eq!(call(&f, true, "POST", "/v1/reload", None, "").status, 501);
}

#[test]
fn reload_reports_success_and_validation_errors() {
    let mut f = fixture();
    let r = call(&f, true, "POST", "/v1/reload", None, "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json_body()["summary"], "2 targets");
    f.state.reloader = Some(Arc::new(|| {
        Err::<String, _>("config.toml:3: target.listen: bad".to_string())
    }));
    let r = call(&f, true, "POST", "/v1/reload", None, "");
    assert_eq!(r.status, 422);
    assert!(
        r.json_body()["error"]
            .as_str()
            .unwrap()
            .contains("target.listen")
    );
    let audit = f.audit.0.lock().unwrap().clone();
    assert_eq!(audit.len(), 2);
    assert!(audit[1].3.starts_with("refused"));
}

#[test]
fn readiness_follows_the_probe() {
    let mut f = fixture();
    f.state.readiness = Some(Arc::new(|| {
        vec![
            ReadyCheck {
                name: "listeners".into(),
                ok: true,
                detail: String::new(),
            },
            ReadyCheck {
                name: "recorder".into(),
                ok: false,
                detail: "disk full".into(),
            },
        ]
    }));
    let r = call(&f, false, "GET", "/readyz", None, "");
    assert_eq!(r.status, 503);
    assert_eq!(r.json_body()["checks"][1]["detail"], "disk full");
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let f = fixture();
    let r = call(&f, true, "GET", "/metrics", None, "");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    let series = crate::metrics::checker::check(std::str::from_utf8(&r.body).unwrap()).unwrap();
    assert_eq!(series["tollgate_approvals_pending"], 0.0);
    assert!(series.contains_key("tollgate_auth_total{shard=\"1\",outcome=\"ok\"}"));
}

fn ask(f: &Fixture, requester: &str) -> crate::approvals::Pending {
    f.state.broker.request(ApprovalRequest {
        session_id: S1.into(),
        requester: requester.into(),
        requester_groups: vec![],
        target: "payments".into(),
        statement: "DROP TABLE t".into(),
        rule: "drops".into(),
        reviewer_groups: vec![],
    })
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(fut)
}

#[test]
fn approve_over_http_with_a_grant() {
    let f = fixture();
    let p = ask(&f, "ci-job");
    let id = p.id;
    let list = call(&f, false, "GET", "/v1/approvals", Some("alice-token"), "");
    assert_eq!(list.json_body()["approvals"][0]["id"], id);
    assert_eq!(
        list.json_body()["approvals"][0]["statement"],
        "DROP TABLE t"
    );
    let r = call(
        &f,
        false,
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some("alice-token"),
        r#"{"reason": "CHG-1", "grant_minutes": 30}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json_body());
    assert_eq!(r.json_body()["state"], "approved");
    // Decided by a runtime other than the broker's: compio's.
    assert_eq!(
        block_on(p.decision()),
        ApprovalOutcome::Approved {
            by: "alice".into(),
            reason: "CHG-1".into()
        }
    );
    let grants = call(&f, false, "GET", "/v1/grants", Some("bob-token"), "");
    assert_eq!(grants.json_body()["grants"][0]["subject"], "ci-job");
    let again = call(
        &f,
        false,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some("bob-token"),
        "",
    );
    assert_eq!(again.status, 409);
    let shown = call(
        &f,
        false,
        "GET",
        &format!("/v1/approvals/{id}"),
        Some("bob-token"),
        "",
    );
    assert_eq!(shown.json_body()["decided_by"], "alice");
    let audit = f.audit.0.lock().unwrap().clone();
    assert_eq!(audit[0].1, "approve");
    assert!(audit[0].3.contains("grant_until_ms"), "{audit:?}");
}

#[test]
fn deny_over_http_carries_the_reason() {
    let f = fixture();
    let p = ask(&f, "ci-job");
    let r = call(
        &f,
        true,
        "POST",
        &format!("/v1/approvals/{}/deny", p.id),
        Some("bob-token"),
        r#"{"reason": "use the migration tool"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        block_on(p.decision()),
        ApprovalOutcome::Denied {
            by: "bob".into(),
            reason: "use the migration tool".into()
        }
    );
}

#[test]
fn the_requester_cannot_approve_their_own_request() {
    let f = fixture();
    // alice is a reviewer, but she asked.
    let p = ask(&f, "alice");
    let path = format!("/v1/approvals/{}/approve", p.id);
    let r = call(&f, true, "POST", &path, Some("alice-token"), "");
    assert_eq!(r.status, 403, "{:?}", r.json_body());
    // She does not even see it in her list.
    let list = call(&f, true, "GET", "/v1/approvals", Some("alice-token"), "");
    assert_eq!(list.json_body()["approvals"].as_array().unwrap().len(), 0);
    // The refused attempt is audited and the request is still pending.
    assert!(f.audit.0.lock().unwrap()[0].3.starts_with("refused"));
    assert_eq!(f.state.broker.pending().len(), 1);
    let r = call(&f, true, "POST", &path, Some("bob-token"), "");
    assert_eq!(r.status, 200);
}

#[test]
fn bad_decision_bodies() {
    let f = fixture();
    let p = ask(&f, "ci-job");
    let base = format!("/v1/approvals/{}", p.id);
    let cases = [
        ("approve", r#"{"grant_minutes": 100000}"#, 422),
        ("deny", r#"{"grant_minutes": 5}"#, 422),
        ("approve", r#"{"reason": 5}"#, 400),
        ("approve", r#"{"because": "x"}"#, 400),
    ];
    for (action, body, status) in cases {
        let r = call(&f, true, "POST", &format!("{base}/{action}"), None, body);
        assert_eq!(r.status, status, "{action} {body}: {:?}", r.json_body());
    }
    assert_eq!(
        call(&f, true, "POST", "/v1/approvals/999/approve", None, "").status,
        404
    );
    assert_eq!(
        call(&f, true, "POST", "/v1/approvals/x/approve", None, "").status,
        404
    );
    assert_eq!(f.state.broker.pending().len(), 1);
}

#[test]
fn a_browser_cannot_drive_the_loopback_admin() {
    let f = fixture();
    let body = r#"{"subject": "ci-job"}"#;
    let n = body.len();
    // The cross-site form POST of issue 13: text/plain, foreign Origin and Host.
    let cross_site = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: evil.example\r\nOrigin: https://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    let only_text_plain = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    let no_type = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    let json_with_origin = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nOrigin: null\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    let rebound_host = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: attacker.example:9090\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    let fetch_metadata =
        "GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nSec-Fetch-Site: cross-site\r\n\r\n"
            .to_string();
    let rebound_get = "GET /v1/sessions HTTP/1.1\r\nHost: attacker.example\r\n\r\n".to_string();
    for (text, status) in [
        (&cross_site, 403),
        (&only_text_plain, 415),
        (&no_type, 415),
        (&json_with_origin, 403),
        (&rebound_host, 403),
        (&fetch_metadata, 403),
        (&rebound_get, 403),
    ] {
        let r = handle(&f.state, &raw(text), true);
        assert_eq!(r.status, status, "{text}\n{:?}", r.json_body());
    }
    assert!(f.revocations.list().is_empty());
    assert_eq!(f.control.list_sessions().len(), 2);
    // The CLI's own request shape still works, and health probes never check.
    let cli = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {n}\r\n\r\n{body}"
    );
    assert_eq!(handle(&f.state, &raw(&cli), true).status, 201);
    let probe = "GET /healthz HTTP/1.1\r\nHost: lb.internal\r\nOrigin: https://x\r\n\r\n";
    assert_eq!(handle(&f.state, &raw(probe), true).status, 200);
}

#[test]
fn revocation_inputs_are_validated() {
    let f = fixture();
    for bad in [
        "{\"subject\": \"ci\\u0000job\"}",
        "{\"subject\": \"ci\\njob\"}",
        "{\"subject\": \" ci-job\"}",
        "{\"token_id\": \"\"}",
        "{\"subject\": \"a\", \"reason\": \"x\\u001b[31m\"}",
        "{\"subject\": \"a\", \"until\": \"yesterday\"}",
        "{\"subject\": \"a\", \"until\": \"2001-01-01T00:00:00Z\"}",
        "{\"subject\": \"a\", \"until\": \"2999-01-01T00:00:00Z\"}",
    ] {
        let r = call(&f, true, "POST", "/v1/revocations", None, bad);
        assert_eq!(r.status, 422, "{bad}: {:?}", r.json_body());
    }
    let long = format!("{{\"subject\": \"{}\"}}", "x".repeat(600));
    assert_eq!(
        call(&f, true, "POST", "/v1/revocations", None, &long).status,
        422
    );
    assert!(f.revocations.list().is_empty());
    assert!(f.audit.0.lock().unwrap().is_empty());
}

#[test]
fn a_revocation_is_listed_as_made_given_an_expiry_and_lifted_with_an_audit() {
    let f = fixture();
    let until = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .to_string();
    let made = call(
        &f,
        false,
        "POST",
        "/v1/revocations",
        Some("sre-token"),
        &format!(r#"{{"subject": "etl", "reason": "rotating", "until": "{until}"}}"#),
    );
    assert_eq!(made.status, 201, "{:?}", made.json_body());
    let made = made.json_body()["revocation"].clone();
    let listed = call(&f, false, "GET", "/v1/revocations", Some("sre-token"), "");
    assert_eq!(listed.json_body()["revocations"][0], made);
    assert_eq!(made["revoked_by"], "sam");
    assert!(made["revoked_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(made["until_ms"].as_u64().unwrap() > made["revoked_ms"].as_u64().unwrap());
    let id = made["id"].as_u64().unwrap();
    assert_eq!(
        call(&f, true, "DELETE", "/v1/revocations/999", None, "").status,
        404
    );
    let lifted = call(
        &f,
        true,
        "DELETE",
        &format!("/v1/revocations/{id}"),
        None,
        "",
    );
    assert_eq!(lifted.status, 200, "{:?}", lifted.json_body());
    assert!(f.revocations.list().is_empty());
    let audit = f.audit.0.lock().unwrap().clone();
    assert_eq!(audit[1].0, "local-admin");
    assert_eq!(audit[1].1, "lift");
    assert_eq!(audit[1].2, "subject/etl");
}
