//! The admin API in-process over real sockets: a real engine relaying a tcp
//! target, the admin server on a free port, driven with ureq — sessions
//! listed and killed, reload hook called, approvals decided over HTTP, and a
//! non-loopback TLS listener that refuses requests without an admin token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tollgate::admin::{
    AdminAuth, AdminConfig, AdminServer, AdminState, AuditSink, Caller, MemoryRevocations,
};
use tollgate::approvals::{ApprovalOutcome, ApprovalRequest, Broker};
use tollgate::config::Config;
use tollgate::engine::Engine;

struct Tokens;

impl AdminAuth for Tokens {
    fn verify(&self, bearer: &str) -> Result<Caller, String> {
        let (subject, group) = match bearer {
            "sre" => ("sam", "sre"),
            "reviewer" => ("rita", "reviewers"),
            "requester" => ("ci-job", "ci"),
            _ => return Err("unknown token".into()),
        };
        Ok(Caller {
            subject: subject.into(),
            groups: vec![group.into()],
        })
    }
}

#[derive(Default)]
struct CountingAudit(AtomicUsize);

impl AuditSink for CountingAudit {
    fn admin_action(&self, _actor: &str, _action: &str, _object: &str, _detail: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn agent(tls_root: Option<&str>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)));
    if let Some(pem) = tls_root {
        let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
        b = b.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    b.build().into()
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    // The API takes POSTs only as JSON (issue 13: no browser-driven admin).
    let body = match body {
        Some(b) => b.to_string(),
        None if method == "POST" => "{}".to_string(),
        None => String::new(),
    };
    if method == "POST" {
        req = req.header("Content-Type", "application/json");
    }
    let mut resp = agent.run(req.body(body).unwrap()).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

struct Setup {
    _engine: Engine,
    server: AdminServer,
    broker: Broker,
    reloads: Arc<AtomicUsize>,
    audit: Arc<CountingAudit>,
    port: u16,
    _echo: Echo,
}

fn setup(config: AdminConfig) -> Setup {
    let echo = Echo::start();
    let text = format!(
        "[engine]\nshards = 2\n{}",
        tcp_target("echo", 0, echo.addr, "")
    );
    let cfg = Config::parse(&text, Path::new("admin-test.toml")).unwrap();
    let shards = cfg.engine.shards;
    let snapshot = tollgate::snapshot::Snapshot::build(Arc::new(cfg)).unwrap();
    let broker = Broker::new(config.broker_config(), None).unwrap();
    let engine = Engine::start(tollgate::engine::EngineParts {
        snapshot: Arc::new(snapshot),
        recorders: Vec::new(),
        broker: broker.clone(),
        metrics: Arc::new(tollgate::metrics::Metrics::new(shards)),
        protocols: tollgate::pipeline::protocols(),
    })
    .unwrap();
    let port = engine.bound_addrs()[0].port();
    let reloads = Arc::new(AtomicUsize::new(0));
    let r = reloads.clone();
    let audit = Arc::new(CountingAudit::default());
    let state = AdminState::new(config, Arc::new(engine.control()), broker.clone())
        .with_auth(Arc::new(Tokens))
        .with_audit(audit.clone())
        .with_revocations(Arc::new(MemoryRevocations::default()))
        .with_reloader(Arc::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>("1 target".to_string())
        }));
    let server = AdminServer::start(Arc::new(state)).unwrap();
    Setup {
        _engine: engine,
        server,
        broker,
        reloads,
        audit,
        port,
        _echo: echo,
    }
}

fn loopback_config() -> AdminConfig {
    AdminConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_groups: vec!["sre".into()],
        reviewer_groups: vec!["reviewers".into()],
        ..AdminConfig::default()
    }
}

#[test]
fn sessions_are_listed_and_killed_over_http() {
    let s = setup(loopback_config());
    let base = format!("http://{}", s.server.local_addr());
    let a = agent(None);
    let mut client = connect(s.port);
    assert_eq!(roundtrip(&mut client, b"ping"), b"ping");
    let list = || {
        let (status, body) = send(&a, "GET", &format!("{base}/v1/sessions"), None, None);
        assert_eq!(status, 200);
        body["sessions"].as_array().unwrap().clone()
    };
    assert_eventually!(
        list().len() == 1,
        Duration::from_secs(10),
        "the relayed session never showed up"
    );
    let sessions = list();
    assert_eq!(sessions[0]["target"], "echo");
    let id = sessions[0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(
        &a,
        "DELETE",
        &format!("{base}/v1/sessions/{id}"),
        None,
        None,
    );
    assert_eq!((status, body["killed"].as_u64()), (200, Some(1)));
    // The client sees its connection end.
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    let (status, _) = send(
        &a,
        "DELETE",
        &format!("{base}/v1/sessions/{id}"),
        None,
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(s.audit.0.load(Ordering::SeqCst), 2);
    // The engine's counters reach /metrics.
    let mut resp = a.get(format!("{base}/metrics")).call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    let accepted: f64 = text
        .lines()
        .filter(|l| l.starts_with("tollgate_connections_accepted_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(accepted, 1.0, "{text}");
}

#[test]
fn reload_calls_the_hook() {
    let s = setup(loopback_config());
    let base = format!("http://{}", s.server.local_addr());
    let (status, body) = send(
        &agent(None),
        "POST",
        &format!("{base}/v1/reload"),
        None,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["summary"], "1 target");
    assert_eq!(s.reloads.load(Ordering::SeqCst), 1);
}

fn ask(broker: &Broker) -> tollgate::approvals::Pending {
    broker.request(ApprovalRequest {
        session_id: "s".into(),
        requester: "ci-job".into(),
        requester_groups: vec!["ci".into()],
        target: "echo".into(),
        statement: "DELETE FROM accounts".into(),
        rule: "deletes need approval".into(),
        reviewer_groups: vec![],
    })
}

fn wait(p: tollgate::approvals::Pending) -> ApprovalOutcome {
    compio::runtime::Runtime::new()
        .unwrap()
        .block_on(p.decision())
}

#[test]
fn approvals_are_decided_over_http() {
    let s = setup(loopback_config());
    let base = format!("http://{}", s.server.local_addr());
    let a = agent(None);

    let p = ask(&s.broker);
    let (status, body) = send(
        &a,
        "GET",
        &format!("{base}/v1/approvals"),
        Some("reviewer"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["approvals"][0]["id"], p.id);
    let url = format!("{base}/v1/approvals/{}/approve", p.id);
    let (status, _) = send(&a, "POST", &url, Some("requester"), None);
    assert_eq!(status, 403, "the requester approved their own statement");
    let (status, body) = send(
        &a,
        "POST",
        &url,
        Some("reviewer"),
        Some(json!({"reason": "CHG-7"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        wait(p),
        ApprovalOutcome::Approved {
            by: "rita".into(),
            reason: "CHG-7".into()
        }
    );

    let p = ask(&s.broker);
    let url = format!("{base}/v1/approvals/{}/deny", p.id);
    let (status, _) = send(&a, "POST", &url, None, Some(json!({"reason": "not now"})));
    assert_eq!(status, 200);
    assert_eq!(
        wait(p),
        ApprovalOutcome::Denied {
            by: "local-admin".into(),
            reason: "not now".into()
        }
    );
}

#[test]
fn a_tls_listener_off_loopback_requires_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = ck.cert.pem();
    std::fs::write(dir.path().join("admin.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("admin.key"), ck.signing_key.serialize_pem()).unwrap();
    let config = AdminConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        tls_cert: Some(dir.path().join("admin.pem")),
        tls_key: Some(dir.path().join("admin.key")),
        ..loopback_config()
    };
    let s = setup(config);
    let base = format!("https://127.0.0.1:{}", s.server.local_addr().port());
    let a = agent(Some(&cert_pem));
    let sessions = format!("{base}/v1/sessions");
    assert_eq!(send(&a, "GET", &sessions, None, None).0, 401);
    assert_eq!(send(&a, "GET", &sessions, Some("forged"), None).0, 401);
    assert_eq!(send(&a, "GET", &sessions, Some("reviewer"), None).0, 403);
    assert_eq!(
        send(&a, "POST", &format!("{base}/v1/reload"), None, None).0,
        401
    );
    assert_eq!(s.reloads.load(Ordering::SeqCst), 0);
    assert_eq!(send(&a, "GET", &sessions, Some("sre"), None).0, 200);
    assert_eq!(
        send(&a, "GET", &format!("{base}/healthz"), None, None).0,
        200
    );
    // Plain HTTP to the TLS port gets nothing useful.
    let plain = agent(None)
        .get(format!(
            "http://127.0.0.1:{}/healthz",
            s.server.local_addr().port()
        ))
        .call();
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}
