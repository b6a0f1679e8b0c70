//! The admin plane hardened (issue 13): revocations that survive a restart,
//! lift and lapse; reloads that apply `[admin]` or say what needs a
//! restart; an admin listener that silent connections cannot starve; and no
//! browser-driven admin. Real tollgate, real PostgreSQL, real psql and CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pggw::PgGateway;
use common::*;
use serde_json::Value;

/// A gateway whose admin API listens on a loopback port the kernel picks
/// (read back from the ready file), with `admin_extra` lines in `[admin]`.
fn gateway(name: &str, admin_extra: &str) -> PgGateway {
    PgGateway::builder()
        .tables(&format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n{admin_extra}\n"
        ))
        .start(name)
}

/// `tollgate <args>`: (success, stdout + stderr).
fn cli(g: &PgGateway, args: &[&str]) -> (bool, String) {
    let out = g.gw.cli(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn cli_json(g: &PgGateway, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out) = cli(g, &all);
    assert!(ok, "tollgate {args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Stop the gateway with SIGTERM and start it again on the same config and
/// state (a new log file, so readiness is that of the new process).
fn restart(g: &mut PgGateway, round: u32) {
    g.gw.signal("TERM");
    let status = g.gw.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "tollgate did not stop on SIGTERM");
    let log = g.gw.dir().join(format!("tollgate-{round}.log"));
    // The new process reports its (new, kernel-picked) ports afresh.
    std::fs::remove_file(&g.gw.ready_file).unwrap();
    g.gw.child = Command::new(tollgate_bin())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&g.gw.config)
        .arg("--ready-file")
        .arg(&g.gw.ready_file)
        .env("TOLLGATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    g.gw.log = log;
    g.gw.wait_ready();
    g.port = g.gw.port(&g.db);
}

fn connects(g: &PgGateway, token: &str) -> Result<(), String> {
    let (ok, out, err) = g.psql(token, "select 1");
    if ok && out == "1" {
        Ok(())
    } else {
        Err(format!("{out}{err}"))
    }
}

#[test]
fn a_revocation_made_with_the_cli_survives_a_restart_until_it_is_lifted() {
    let mut g = gateway("durable_revoke", "");
    let token = g.token("ci-job", "ci", "30m");
    connects(&g, &token).unwrap();
    let (ok, out) = cli(&g, &["revoke", "--subject", "ci-job", "--reason", "leaked"]);
    assert!(ok, "{out}");
    let err = connects(&g, &token).unwrap_err();
    assert!(err.contains("authentication failed"), "{err}");

    restart(&mut g, 1);
    let err = connects(&g, &token).expect_err("a revoked subject connected after a restart");
    assert!(err.contains("authentication failed"), "{err}");
    let listed = cli_json(&g, &["revocations"]);
    let r = &listed["revocations"][0];
    assert_eq!(r["value"], "ci-job", "{listed}");
    assert_eq!(r["revoked_by"], "local-admin");
    assert!(r["revoked_ms"].as_u64().unwrap() > 1_700_000_000_000, "{r}");
    let id = r["id"].as_u64().unwrap().to_string();

    let (ok, out) = cli(&g, &["revocations", "lift", &id]);
    assert!(ok, "{out}");
    assert!(out.contains("lifted revocation"), "{out}");
    connects(&g, &token).unwrap();
    // Lifted stays lifted across a restart too.
    restart(&mut g, 2);
    connects(&g, &token).unwrap();
    assert_eq!(
        cli_json(&g, &["revocations"])["revocations"],
        Value::Array(vec![])
    );
    let (ok, out) = cli(&g, &["revocations", "lift", &id]);
    assert!(!ok && out.contains("404"), "{out}");
}

#[test]
fn a_revocation_with_an_expiry_stops_applying_when_it_lapses() {
    let g = gateway("lapsing_revoke", "");
    let token = g.token("ci-job", "ci", "30m");
    let (ok, out) = cli(&g, &["revoke", "--subject", "ci-job", "--until", "20s"]);
    assert!(ok, "{out}");
    let listed = cli_json(&g, &["revocations"]);
    assert!(
        listed["revocations"][0]["until_ms"].as_u64().is_some(),
        "{listed}"
    );
    assert!(connects(&g, &token).is_err(), "revoked subject connected");
    // Wait for the lapse by observing it: the same token connects again.
    assert_eventually!(
        connects(&g, &token).is_ok(),
        Duration::from_secs(90),
        "the revocation never lapsed"
    );
    assert_eq!(
        cli_json(&g, &["revocations"])["revocations"],
        Value::Array(vec![])
    );
}

/// GET `path` on the admin API as `token`: the HTTP status.
fn admin_get(g: &PgGateway, path: &str, token: &str) -> u16 {
    let url = format!("http://127.0.0.1:{}{path}", g.gw.admin_port);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    agent
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_reload_applies_admin_groups_and_refuses_what_needs_a_restart() {
    let mut g = gateway("admin_reload", "reviewer_groups = [\"old-reviewers\"]");
    let reviewer = g.token("rita", "new-reviewers", "30m");
    assert_eq!(admin_get(&g, "/v1/approvals", &reviewer), 403);

    let text = std::fs::read_to_string(&g.gw.config).unwrap();
    let changed = text.replace("\"old-reviewers\"", "\"new-reviewers\"");
    assert_ne!(text, changed);
    std::fs::write(&g.gw.config, &changed).unwrap();
    let (ok, out) = cli(&g, &["reload"]);
    assert!(ok, "{out}");
    assert_eq!(admin_get(&g, "/v1/approvals", &reviewer), 200);

    // A new admin port cannot be taken by a running listener: the reload
    // says so, exits non-zero, and changes nothing (not even the groups).
    let port = g.gw.admin_port;
    let moved = changed
        // Any other address: a reload never binds it, it refuses the change.
        .replace("127.0.0.1:0\"", "127.0.0.1:1\"")
        .replace("\"new-reviewers\"", "\"old-reviewers\"");
    std::fs::write(&g.gw.config, &moved).unwrap();
    let (ok, out) = cli(&g, &["reload"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("admin.listen") && out.contains("restart"),
        "{out}"
    );
    assert_eq!(admin_get(&g, "/v1/approvals", &reviewer), 200);
    // SIGHUP says the same in the log instead of "configuration reloaded".
    g.gw.signal("HUP");
    assert_eventually!(
        g.gw.log_text().contains("admin.listen changed"),
        Duration::from_secs(20),
        "SIGHUP did not report the refused change: {}",
        g.gw.log_text()
    );
    assert_eq!(g.gw.log_count("configuration reloaded (SIGHUP)"), 0);
    g.gw.admin_port = port;
}

/// One HTTP/1.1 request on a fresh connection; the status line's code.
fn raw_status(port: u16, request: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head).into_owned();
    text[9..12].parse().unwrap_or_else(|_| panic!("{text}"))
}

#[test]
fn two_hundred_silent_connections_do_not_starve_the_admin_api() {
    let g = gateway("admin_starve", "admin_groups = [\"sre\"]");
    let port = g.gw.admin_port;
    let silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let health = format!("GET /healthz HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    let ready = format!("GET /readyz HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    let sessions = format!("GET /v1/sessions HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    assert_eq!(raw_status(port, &health), 200);
    assert_eq!(raw_status(port, &ready), 200);
    assert_eq!(raw_status(port, &sessions), 200);
    // With an admin token, through the CLI, as an operator would.
    let admin = g.token("sam", "sre", "30m");
    let (ok, out) = cli(&g, &["sessions", "list", "--token", &admin]);
    assert!(ok, "{out}");
    assert_eq!(admin_get(&g, "/metrics", &admin), 200);
    assert_eq!(raw_status(port, &health), 200);
    // A body over the cap is refused before it is read.
    let big = format!(
        "POST /v1/revocations HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_status(port, &big), 413);
    // The silent connections are closed by the server's head timeout: each
    // read ends with EOF (or a reset), not with this test's own 60 s limit.
    for mut s in silent.into_iter().take(3) {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("a silent connection got {n} bytes"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a silent connection was never closed: {e}"
            ),
        }
    }
}

#[test]
fn a_cross_site_post_cannot_revoke_through_the_loopback_admin() {
    let g = gateway("admin_csrf", "");
    let port = g.gw.admin_port;
    let body = r#"{"subject":"ci-job"}"#;
    let forged = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: evil.example\r\nOrigin: https://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(port, &forged), 403);
    let text_plain = format!(
        "POST /v1/revocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(port, &text_plain), 415);
    let token = g.token("ci-job", "ci", "30m");
    connects(&g, &token).unwrap();
    assert_eq!(
        cli_json(&g, &["revocations"])["revocations"],
        Value::Array(vec![])
    );
    // The CLI's JSON POST (no Origin, loopback Host) still works.
    let (ok, out) = cli(&g, &["revoke", "--subject", "ci-job"]);
    assert!(ok, "{out}");
    assert!(connects(&g, &token).is_err());
}
