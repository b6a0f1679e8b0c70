//! Route and auth tests against fakes: no sockets, no engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tollgate_codecs::http::{Limits, Request, parse_request};

use super::routes::{Reply, handle};
use super::*;
use crate::approvals::{ApprovalRequest, BrokerConfig, Decision};

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

fn request(method: &str, path: &str, token: Option<&str>, body: &str) -> Request {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut b = BytesMut::from(raw.as_bytes());
    parse_request(&mut b, &Limits::default()).unwrap().unwrap()
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
    let mut raw = BytesMut::from(
        &b"GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Basic abc\r\n\r\n"[..],
    );
    let req = parse_request(&mut raw, &Limits::default())
        .unwrap()
        .unwrap();
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
        Decision::Approved {
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
        Decision::Denied {
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
