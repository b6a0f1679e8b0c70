//! The admin plane end to end: real psql through the PostgreSQL gateway,
//! the `tollgate` CLI as the reviewer's and operator's tool. Approvals
//! (approve, deny, own request, timeout, time-boxed grant, webhook), live
//! sessions and kills, revocation, reload (API and SIGHUP), `/metrics`, the
//! TLS admin listener off loopback, and the audit trail of admin actions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../src/metrics/checker.rs"]
#[allow(dead_code)]
mod checker;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::pggw::PgGateway;
use common::pgwire::{Wire, error_of};
use common::pki::Ca;
use serde_json::Value;

/// Writes to `accounts` wait for a reviewer; the marker is where tests add
/// rules before a reload.
const RULES: &str = r#"
[[target.policy.rules]]
name = "writes-need-review"
action = "approve"
message = "writes to accounts need a reviewer"
classes = ["update", "delete"]

[[target.policy.rules]]
name = "no-truncate"
action = "block"
message = "truncate is not allowed"
classes = ["truncate"]

# more rules
"#;

const MORE_RULES: &str = "# more rules";

const FREEZE_INSERTS: &str = r#"
[[target.policy.rules]]
name = "freeze-inserts"
action = "block"
message = "inserts are frozen"
classes = ["insert"]
"#;

/// A gateway with [`RULES`], reviewers in group `reviewers`, its admin API on
/// a loopback port the kernel picks (plus `admin_extra` lines in `[admin]`), and a table
/// of ten accounts with balance 100.
fn gateway(name: &str, admin_extra: &str) -> PgGateway {
    gateway_with(name, "", admin_extra)
}

/// [`gateway`] with more tables (e.g. masking) after the rules.
fn gateway_with(name: &str, tables: &str, admin_extra: &str) -> PgGateway {
    let g = PgGateway::builder()
        .tables(&format!(
            "{RULES}\n{tables}\n[admin]\nlisten = \"127.0.0.1:0\"\nreviewer_groups = [\"reviewers\"]\n{admin_extra}\n"
        ))
        .start(name);
    g.direct(&format!(
        "create table accounts (id int primary key, owner text, balance int);
         insert into accounts select g, 'owner' || g, 100 from generate_series(1, 10) g;
         alter table accounts owner to {}",
        g.role
    ));
    g
}

/// `tollgate <args>` against the gateway's admin API: (success, stdout, stderr).
fn cli(g: &PgGateway, args: &[&str]) -> (bool, String, String) {
    let out = g.gw.cli(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tollgate <args> --json`, which must succeed.
fn cli_json(g: &PgGateway, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cli(g, &all);
    assert!(ok, "tollgate {args:?} failed: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Poll `f` until it yields a value; panic with `what` (and the last
/// attempt's description) after 20 seconds.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("{what}; last seen: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The first pending approval request, once there is one.
fn pending(g: &PgGateway) -> Value {
    eventually("no approval request appeared", || {
        let list = cli_json(g, &["approvals", "list"]);
        list["approvals"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .ok_or_else(|| format!("{list}\nlog:\n{}", g.gw.log_text()))
    })
}

fn id_of(approval: &Value) -> String {
    approval["id"].as_u64().unwrap().to_string()
}

fn balance(g: &PgGateway, id: u32) -> String {
    g.direct(&format!("select balance from accounts where id = {id}"))
}

/// Live sessions of `subject`, as the admin API lists them.
fn sessions_of(g: &PgGateway, subject: &str) -> Vec<Value> {
    cli_json(g, &["sessions", "list"])["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["subject"] == subject)
        .cloned()
        .collect()
}

/// The one live session of `subject` running `statement`, once it is listed
/// (a session that just ended may still be listed for a moment).
fn live_session(g: &PgGateway, subject: &str, statement: &str) -> Value {
    eventually(&format!("no live session of {subject}"), || {
        let mut found = sessions_of(g, subject);
        found.retain(|s| {
            s["current_statement"]
                .as_str()
                .is_some_and(|c| c.contains(statement))
        });
        match found.len() {
            1 => Ok(found.pop().unwrap()),
            _ => Err(format!("{found:?}")),
        }
    })
}

/// psql waiting on `pg_sleep` is ended from outside: it exits with an error.
fn assert_ended(child: &mut std::process::Child) {
    assert_eventually!(
        child.try_wait().unwrap().is_some(),
        Duration::from_secs(10),
        "psql is still running after its session was ended"
    );
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(!status.success(), "psql exited cleanly: {err}");
}

#[test]
fn a_statement_needing_approval_waits_until_a_reviewer_approves_it_with_the_cli() {
    let g = gateway("approve", "");
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| {
            g.psql_script(
                &t,
                "update accounts set balance = 500 where id = 1;\nselect balance from accounts where id = 1;\n",
            )
        });
        let a = pending(&g);
        assert_eq!(a["kind"], "statement");
        assert_eq!(a["requester"], "ci-job");
        assert_eq!(a["target"], g.db.as_str());
        assert_eq!(a["rule"], "writes-need-review");
        assert_eq!(
            a["statement"],
            "update accounts set balance = 500 where id = 1;"
        );
        // The table a reviewer reads names who, where and what.
        let (ok, table, _) = cli(&g, &["approvals", "list"]);
        assert!(ok);
        for needle in ["ci-job", g.db.as_str(), "update accounts set balance = 500"] {
            assert!(table.contains(needle), "{needle} missing from\n{table}");
        }
        // While it waits, nothing reached the database and psql has no answer.
        assert_eq!(balance(&g, 1), "100");
        assert!(!psql.is_finished());
        let live = live_session(&g, "ci-job", "update accounts");
        assert!(
            live["current_statement"]
                .as_str()
                .unwrap()
                .starts_with("[awaiting approval] update accounts"),
            "{live}"
        );

        let (ok, out, err) = cli(
            &g,
            &[
                "approvals",
                "approve",
                &id_of(&a),
                "--reason",
                "CHG-1",
                "--token",
                &rita,
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(out.contains("approved by rita"), "{out}");

        let (_, out, err) = psql.join().unwrap();
        assert_eq!(out, "UPDATE 1\n500", "{err}");
    });
    assert_eq!(balance(&g, 1), "500");
    let decided = cli_json(&g, &["approvals", "show", "1"]);
    assert_eq!(decided["state"], "approved");
    assert_eq!(decided["decided_by"], "rita");
    assert_eq!(decided["reason"], "CHG-1");
}

#[test]
fn a_denied_statement_gets_42501_with_the_reason_and_the_session_goes_on() {
    let g = gateway("deny", "");
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| {
            g.psql_script(
                &t,
                "\\set VERBOSITY verbose\n\
                 update accounts set balance = 0 where id = 2;\n\
                 select 'still usable', count(*) from accounts;\n",
            )
        });
        let a = pending(&g);
        let (ok, out, err) = cli(
            &g,
            &[
                "approvals",
                "deny",
                &id_of(&a),
                "--reason",
                "use the migration pipeline",
                "--token",
                &rita,
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(out.contains("denied by rita"), "{out}");
        let (_, out, err) = psql.join().unwrap();
        assert!(
            err.contains("ERROR:  42501: denied by rita: use the migration pipeline"),
            "{err}"
        );
        assert_eq!(out, "still usable|10", "{err}");
    });
    assert_eq!(balance(&g, 2), "100");
    assert_eq!(cli_json(&g, &["approvals", "show", "1"])["state"], "denied");
}

#[test]
fn the_requester_cannot_approve_their_own_request_even_as_a_reviewer() {
    let g = gateway("own", "");
    // ci-job is in the reviewer group too: being the requester still wins.
    let t = g.token("ci-job", "ci,reviewers", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql_script(&t, "delete from accounts where id = 3;\n"));
        let a = pending(&g);
        let id = id_of(&a);
        let (ok, out, err) = cli(&g, &["approvals", "approve", &id, "--token", &t]);
        assert!(!ok, "the requester approved their own request: {out}");
        assert!(err.contains("403"), "{err}");
        assert!(err.contains("cannot decide"), "{err}");
        // Nor do they see it among the requests they may review.
        let mine = cli_json(&g, &["approvals", "list", "--token", &t]);
        assert_eq!(mine["approvals"], serde_json::json!([]), "{mine}");
        // It is still pending, and nothing ran.
        assert_eq!(
            cli_json(&g, &["approvals", "show", &id])["state"],
            "pending"
        );
        assert!(!psql.is_finished());
        assert_eq!(g.direct("select count(*) from accounts"), "10");

        let (ok, _, err) = cli(
            &g,
            &["approvals", "deny", &id, "--reason", "no", "--token", &rita],
        );
        assert!(ok, "{err}");
        psql.join().unwrap();
    });
    assert_eq!(g.direct("select count(*) from accounts"), "10");
}

#[test]
fn an_unanswered_request_is_denied_when_it_times_out() {
    let g = gateway("timeout", "approval_timeout = \"1s\"");
    let t = g.token("ci-job", "ci", "10m");
    let (_, out, err) = g.psql_script(
        &t,
        "\\set VERBOSITY verbose\n\
         update accounts set balance = 0 where id = 4;\n\
         select 'after the timeout';\n",
    );
    assert!(err.contains("ERROR:  42501:"), "{err}");
    assert!(err.contains("no reviewer approved it in time"), "{err}");
    assert_eq!(out, "after the timeout", "{err}");
    assert_eq!(balance(&g, 4), "100");
    assert_eq!(
        cli_json(&g, &["approvals", "show", "1"])["state"],
        "timed_out"
    );
}

#[test]
fn a_time_boxed_grant_lets_the_next_statements_of_that_identity_through() {
    let g = gateway("grant", "approval_timeout = \"60s\"");
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&t, "update accounts set balance = 1 where id = 5"));
        let a = pending(&g);
        let (ok, out, err) = cli(
            &g,
            &[
                "approvals",
                "approve",
                &id_of(&a),
                "--grant-minutes",
                "1",
                "--reason",
                "incident 42",
                "--token",
                &rita,
            ],
        );
        assert!(ok, "{out}{err}");
        assert!(
            out.contains(&format!("ci-job may repeat this on {}", g.db)),
            "{out}"
        );
        let (ok, out, err) = psql.join().unwrap();
        assert!(ok, "{err}");
        assert_eq!(out, "UPDATE 1");
    });
    let grants = cli_json(&g, &["approvals", "grants"])["grants"].clone();
    let grant = &grants.as_array().unwrap()[0];
    assert_eq!(grant["subject"], "ci-job");
    assert_eq!(grant["target"], g.db.as_str());
    assert_eq!(grant["granted_by"], "rita");
    assert_eq!(
        grant["expires_ms"].as_u64().unwrap() - grant["created_ms"].as_u64().unwrap(),
        60_000
    );
    // The next statements needing approval, in a new session, run at once:
    // no request is opened (it would wait a minute and then be denied).
    let (ok, out, err) = g.psql_script(
        &t,
        "update accounts set balance = 2 where id = 6;\ndelete from accounts where id = 7;\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "UPDATE 1\nDELETE 1", "{err}");
    assert_eq!(balance(&g, 6), "2");
    assert_eq!(
        cli_json(&g, &["approvals", "list"])["approvals"],
        serde_json::json!([])
    );
    // The grant is for ci-job alone: another identity still waits.
    let other = g.token("other-job", "ci", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&other, "update accounts set balance = 3 where id = 8"));
        let a = pending(&g);
        assert_eq!(a["requester"], "other-job");
        let (ok, _, err) = cli(
            &g,
            &[
                "approvals",
                "deny",
                &id_of(&a),
                "--reason",
                "not you",
                "--token",
                &rita,
            ],
        );
        assert!(ok, "{err}");
        let (ok, _, err) = psql.join().unwrap();
        assert!(!ok && err.contains("not you"), "{err}");
    });
    assert_eq!(balance(&g, 8), "100");
    let m = metrics(&g);
    assert_eq!(
        m["tollgate_approvals_decided_total{outcome=\"covered_by_grant\"}"],
        2.0
    );
}

/// A one-route HTTP server that hands every request body to the test.
fn webhook_receiver() -> (u16, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < head_end + len {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            if tx.send((head, body)).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn reviewers_are_notified_by_a_slack_compatible_webhook() {
    let (hook, received) = webhook_receiver();
    let g = gateway(
        "webhook",
        &format!("webhook_url = \"http://127.0.0.1:{hook}/hooks/tollgate\""),
    );
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&t, "update accounts set balance = 9 where id = 9"));
        let (head, body) = received
            .recv_timeout(Duration::from_secs(20))
            .expect("the webhook was not called");
        assert!(head.starts_with("POST /hooks/tollgate HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        for needle in ["ci-job", g.db.as_str(), "writes-need-review"] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let blocks = v["blocks"].as_array().unwrap();
        assert!(
            blocks
                .iter()
                .any(|b| b.to_string().contains("update accounts set balance = 9")),
            "{body}"
        );
        let a = pending(&g);
        assert_eq!(v["approval"]["id"], a["id"]);
        assert_eq!(v["approval"]["requester"], "ci-job");
        assert_eq!(
            v["approval"]["statement"],
            "update accounts set balance = 9 where id = 9"
        );
        let (ok, _, err) = cli(&g, &["approvals", "approve", &id_of(&a), "--token", &rita]);
        assert!(ok, "{err}");
        let (ok, out, err) = psql.join().unwrap();
        assert!(ok && out == "UPDATE 1", "{out}{err}");
    });
    assert_eventually!(
        metrics(&g)["tollgate_webhook_notifications_total{outcome=\"sent\"}"] == 1.0,
        Duration::from_secs(10),
        "the sent notification was not counted"
    );
}

#[test]
fn sessions_list_shows_a_live_psql_session_and_kill_ends_it() {
    let g = gateway("kill", "");
    let t = g.token("ci-job", "ci", "10m");
    let mut child = g.psql_spawn(&t, "select pg_sleep(60)");
    let s = live_session(&g, "ci-job", "pg_sleep");
    assert_eq!(s["target"], g.db.as_str());
    assert!(
        s["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{s}"
    );
    assert_eq!(s["current_statement"], "select pg_sleep(60)");
    let id = s["id"].as_str().unwrap().to_string();
    let (ok, table, _) = cli(&g, &["sessions", "list"]);
    assert!(ok);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("ci-job") && l.contains(&g.db)),
        "{table}"
    );

    let (ok, out, err) = cli(&g, &["sessions", "kill", &id]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "ended 1 session(s)");
    assert_ended(&mut child);
    assert_eventually!(
        sessions_of(&g, "ci-job").is_empty(),
        Duration::from_secs(10),
        "the killed session is still listed"
    );
    // A session that is gone cannot be killed twice.
    let (ok, _, err) = cli(&g, &["sessions", "kill", &id]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[test]
fn revoking_a_subject_ends_its_live_session_and_refuses_the_next_login() {
    let g = gateway("revoke", "");
    let t = g.token("ci-job", "ci", "10m");
    let bystander = g.token("other-job", "ci", "10m");
    let mut child = g.psql_spawn(&t, "select pg_sleep(60)");
    let mut other = g.psql_spawn(&bystander, "select pg_sleep(60)");
    live_session(&g, "ci-job", "pg_sleep");
    live_session(&g, "other-job", "pg_sleep");

    let (ok, out, err) = cli(
        &g,
        &[
            "revoke",
            "--subject",
            "ci-job",
            "--reason",
            "token leaked in a build log",
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.trim(),
        "revoked subject ci-job; 1 live session(s) ended"
    );
    assert_ended(&mut child);
    // A fresh token for the same subject is refused like a bad password.
    let fresh = g.token("ci-job", "ci", "10m");
    let (mut w, msgs) = Wire::login(g.port, &g.db, &fresh);
    let e = error_of(&msgs).expect("a revoked subject logged in");
    assert_eq!(e.field(b'C').as_deref(), Some("28P01"));
    assert!(w.closed());
    // Only that identity: the bystander's session is still live.
    assert!(other.try_wait().unwrap().is_none());
    assert_eq!(sessions_of(&g, "other-job").len(), 1);
    let revs = cli_json(&g, &["revocations"]);
    assert_eq!(revs["revocations"][0]["value"], "ci-job", "{revs}");
    other.kill().unwrap();
    other.wait().unwrap();
}

/// New sessions of `token` run an insert: Ok(output) or Err(stderr).
fn try_insert(g: &PgGateway, token: &str, id: u32) -> Result<String, String> {
    let (ok, out, err) = g.psql(
        token,
        &format!("insert into accounts values ({id}, 'new', 1)"),
    );
    if ok { Ok(out) } else { Err(err) }
}

#[test]
fn reload_gives_new_sessions_the_new_rules_and_refuses_a_broken_file() {
    let g = gateway("reload", "");
    let t = g.token("ci-job", "ci", "10m");
    let original = std::fs::read_to_string(&g.gw.config).unwrap();
    assert!(original.contains(MORE_RULES));
    assert_eq!(try_insert(&g, &t, 20), Ok("INSERT 0 1".into()));
    // A session opened before the reload keeps the policy it started with.
    let (mut before, msgs) = Wire::login(g.port, &g.db, &t);
    assert!(error_of(&msgs).is_none(), "{msgs:?}");

    std::fs::write(&g.gw.config, original.replace(MORE_RULES, FREEZE_INSERTS)).unwrap();
    let (ok, out, err) = cli(&g, &["reload"]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("reloaded: "), "{out}");
    let err = try_insert(&g, &t, 21).unwrap_err();
    assert!(err.contains("inserts are frozen"), "{err}");
    before.query("insert into accounts values (22, 'old session', 1)");
    let msgs = before.until_ready();
    assert!(
        error_of(&msgs).is_none(),
        "the old session got the new rule"
    );

    // A broken file is refused with the reason; the last good one serves on.
    std::fs::write(
        &g.gw.config,
        original.replace(
            MORE_RULES,
            &FREEZE_INSERTS.replace("\"block\"", "\"explode\""),
        ),
    )
    .unwrap();
    let (ok, out, err) = cli(&g, &["reload"]);
    assert!(!ok, "a broken file was accepted: {out}");
    assert!(err.contains("422") && err.contains("explode"), "{err}");
    let err = try_insert(&g, &t, 23).unwrap_err();
    assert!(err.contains("inserts are frozen"), "{err}");

    // SIGHUP does the same as the API: back to the original rules.
    std::fs::write(&g.gw.config, &original).unwrap();
    g.gw.signal("HUP");
    assert_eventually!(
        g.gw.log_count("configuration reloaded (SIGHUP)") == 1,
        Duration::from_secs(10),
        "SIGHUP did not reload; log:\n{}",
        g.gw.log_text()
    );
    assert_eq!(try_insert(&g, &t, 24), Ok("INSERT 0 1".into()));
    assert_eq!(
        g.direct("select string_agg(id::text, ',' order by id) from accounts where id > 10"),
        "20,22,24"
    );
}

/// `/metrics` from the loopback admin listener, checked by the format
/// checker; every series with its value.
fn metrics(g: &PgGateway) -> HashMap<String, f64> {
    let mut resp = ureq::get(format!("http://127.0.0.1:{}/metrics", g.gw.admin_port))
        .call()
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = resp.body_mut().read_to_string().unwrap();
    checker::check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A family's samples summed over shards, for the series whose labels
/// include `label` (e.g. `outcome="ok"`; empty for all).
fn total(m: &HashMap<String, f64>, family: &str, label: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| {
            k.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(label))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Masks the `ssn` column by name and e-mail addresses anywhere.
const MASK_CONTACTS: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn"]
style = "redact"
replacement = "[redacted]"

[[target.masking.rules]]
name = "emails"
detectors = ["email"]
style = "redact"
replacement = "[redacted]"
"#;

#[test]
fn metrics_parse_as_prometheus_text_and_count_what_happened() {
    let g = gateway_with("metrics", MASK_CONTACTS, "");
    let t = g.token("ci-job", "ci", "10m");
    let m = metrics(&g);
    assert_eq!(total(&m, "tollgate_connections_accepted_total", ""), 0.0);

    // Three logins, four allowed statements (one with three masked
    // values), two blocked.
    assert!(g.psql(&t, "select 1").0);
    let (_, out, _) = g.psql_script(
        &t,
        "truncate accounts;\nselect 2;\ntruncate table accounts;\nselect 3;\n",
    );
    assert_eq!(out, "2\n3");
    let (ok, out, err) = g.psql(
        &t,
        "select 'alice@example.com' as contact, 'bob@example.org' as other, '123' as ssn",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "[redacted]|[redacted]|[redacted]");
    // One token that is not a JWT, one identity the target does not admit.
    let (ok, _, err) = g.psql("not-a-token", "select 1");
    assert!(!ok && err.contains("authentication failed"), "{err}");
    let outsider = g.token("intruder", "nobody", "10m");
    assert!(!g.psql(&outsider, "select 1").0);

    let m = metrics(&g);
    let count = |family: &str, label: &str| total(&m, family, label);
    assert_eq!(count("tollgate_connections_accepted_total", ""), 5.0);
    assert_eq!(count("tollgate_auth_total", "outcome=\"ok\""), 3.0);
    assert_eq!(count("tollgate_auth_total", "outcome=\"malformed\""), 1.0);
    assert_eq!(
        count("tollgate_auth_total", "outcome=\"not_admitted\""),
        1.0
    );
    assert_eq!(count("tollgate_auth_total", ""), 5.0);
    assert_eq!(
        count(
            "tollgate_connections_refused_total",
            "reason=\"unauthenticated\""
        ),
        1.0
    );
    assert_eq!(
        count(
            "tollgate_connections_refused_total",
            "reason=\"not_admitted\""
        ),
        1.0
    );
    assert_eq!(count("tollgate_statements_total", "verdict=\"block\""), 2.0);
    assert_eq!(count("tollgate_statements_total", "verdict=\"allow\""), 4.0);
    assert_eq!(
        count("tollgate_statements_total", "verdict=\"approve\""),
        0.0
    );
    assert_eq!(
        count("tollgate_masked_values_total", "detector=\"column\""),
        1.0
    );
    assert_eq!(
        count("tollgate_masked_values_total", "detector=\"email\""),
        2.0
    );
    assert_eq!(count("tollgate_masked_values_total", ""), 3.0);
    assert_eq!(
        count("tollgate_statement_added_latency_seconds_count", ""),
        6.0
    );
    assert!(count("tollgate_bytes_total", "direction=\"client_to_upstream\"") > 0.0);
    assert!(count("tollgate_recorder_bytes_total", "") > 0.0);
    // Every block is fsynced (batch durability), and each fsync is timed.
    assert!(count("tollgate_recorder_fsync_seconds_count", "") > 0.0);
    assert_eq!(m["tollgate_approvals_pending"], 0.0);
    assert_eventually!(
        total(&metrics(&g), "tollgate_connections_active", "") == 0.0,
        Duration::from_secs(10),
        "connections still counted as active"
    );
}

/// An HTTPS agent that trusts `ca` and reports every status as a response.
fn https_agent(ca: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item.unwrap() {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn an_admin_listener_off_loopback_refuses_requests_without_an_admin_token() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "admin-ca");
    let (cert, key) = ca.server(pki.path(), "admin");
    let g = PgGateway::builder()
        .tables(&format!(
            "[admin]\nlisten = \"0.0.0.0:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             admin_groups = [\"sre\"]\nreviewer_groups = [\"reviewers\"]\n",
            cert.display(),
            key.display()
        ))
        .start("tlsadmin");
    let port = g.gw.admin_port;
    let agent = https_agent(&ca.cert);
    let base = format!("https://127.0.0.1:{port}");
    let sre = g.token("sam", "sre", "10m");
    let ci = g.token("ci-job", "ci", "10m");

    // Probes stay open; everything else wants a token from an admin group.
    assert_eq!(get(&agent, &format!("{base}/healthz"), None).0, 200);
    for path in [
        "/metrics",
        "/v1/sessions",
        "/v1/approvals",
        "/v1/revocations",
    ] {
        let url = format!("{base}{path}");
        let (status, body) = get(&agent, &url, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(get(&agent, &url, Some("not-a-token")).0, 401, "{path}");
    }
    assert_eq!(
        get(&agent, &format!("{base}/v1/sessions"), Some(&ci)).0,
        403
    );
    let (status, body) = get(&agent, &format!("{base}/v1/sessions"), Some(&sre));
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&agent, &format!("{base}/metrics"), Some(&sre));
    assert_eq!(status, 200);
    checker::check(&body).unwrap();

    // The CLI does the same with --ca-file and --token.
    let ca_file = ca.cert.display().to_string();
    let cli = |extra: &[&str]| {
        let mut args = vec!["--admin", base.as_str(), "--ca-file", ca_file.as_str()];
        args.extend_from_slice(extra);
        g.gw.cli(&args)
    };
    let out = cli(&["sessions", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    let out = cli(&["sessions", "list", "--token", &sre]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no live sessions"
    );
}

#[test]
fn admin_actions_are_recorded_with_who_did_what() {
    let g = gateway("audit", "");
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&t, "update accounts set balance = 5 where id = 10"));
        let a = pending(&g);
        let (ok, _, err) = cli(
            &g,
            &[
                "approvals",
                "approve",
                &id_of(&a),
                "--reason",
                "CHG-7",
                "--token",
                &rita,
            ],
        );
        assert!(ok, "{err}");
        assert!(psql.join().unwrap().0);
    });
    let mut child = g.psql_spawn(&t, "select pg_sleep(60)");
    let id = live_session(&g, "ci-job", "pg_sleep")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cli(&g, &["sessions", "kill", &id]).0);
    assert_ended(&mut child);

    let records: Vec<Value> = eventually("admin actions were not recorded", || {
        let (ok, out, err) = cli(&g, &["recordings", "export", "--all"]);
        let records: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if ok && records.iter().filter(|r| r["type"] == "admin").count() >= 2 {
            Ok(records)
        } else {
            Err(format!("{err}{records:#?}"))
        }
    });
    let admin: Vec<&Value> = records.iter().filter(|r| r["type"] == "admin").collect();
    let approve = admin
        .iter()
        .find(|r| r["action"] == "approve")
        .expect("no approve record");
    assert_eq!(approve["actor"], "rita");
    assert_eq!(approve["object"], "approval/1");
    assert!(
        approve["detail"].as_str().unwrap().contains("CHG-7"),
        "{approve}"
    );
    let kill = admin
        .iter()
        .find(|r| r["action"] == "kill")
        .expect("no kill record");
    assert_eq!(kill["actor"], "local-admin");
    assert_eq!(kill["object"], format!("session/{id}"));
    // The approved statement's own record says who approved it.
    assert!(
        records.iter().any(|r| r["type"] == "command"
            && r["statement"] == "update accounts set balance = 5 where id = 10"
            && r["approval"]
                .as_str()
                .is_some_and(|a| a.contains("approved by rita"))),
        "{records:#?}"
    );
}

#[test]
fn a_target_requiring_approval_to_connect_holds_the_connection_until_a_reviewer_opens_a_window() {
    // Per-target reviewers: only `dba` may decide here, not [admin]'s `reviewers`.
    let g = PgGateway::builder()
        .target("require_approval_to_connect = true\nreviewer_groups = [\"dba\"]")
        .tables("[admin]\nlisten = \"127.0.0.1:0\"\nreviewer_groups = [\"reviewers\"]\n")
        .start("jit");
    let t = g.token("ci-job", "ci", "10m");
    let rita = g.token("rita", "reviewers", "10m");
    let dana = g.token("dana", "dba", "10m");
    let before = g.server_logins();
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&t, "select 'in'"));
        let a = pending(&g);
        assert_eq!(a["kind"], "access");
        assert_eq!(a["requester"], "ci-job");
        // Held before the upstream: the server has not seen this caller.
        assert_eq!(g.server_logins(), before);
        assert!(!psql.is_finished());
        let id = a["id"].to_string();
        // A reviewer of other targets cannot open this one.
        let (ok, out, err) = cli(&g, &["approvals", "approve", &id, "--token", &rita]);
        assert!(!ok, "{out}{err}");
        let (ok, out, err) = cli(
            &g,
            &[
                "approvals",
                "approve",
                &id,
                "--token",
                &dana,
                "--grant-minutes",
                "5",
                "--reason",
                "deploy window",
            ],
        );
        assert!(ok, "{out}{err}");
        let (ok, out, err) = psql.join().unwrap();
        assert!(ok, "{err}");
        assert_eq!(out, "in");
    });
    // The window is open: the next connection does not wait.
    let (ok, out, _) = g.psql(&t, "select 'again'");
    assert!(ok);
    assert_eq!(out, "again");
    assert!(
        cli_json(&g, &["approvals", "list"])["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Another identity still needs its own approval, and a denial refuses it.
    let other = g.token("other-job", "ci", "10m");
    std::thread::scope(|s| {
        let psql = s.spawn(|| g.psql(&other, "select 1"));
        let a = pending(&g);
        assert_eq!(a["requester"], "other-job");
        let id = a["id"].to_string();
        let (ok, out, err) = cli(
            &g,
            &[
                "approvals",
                "deny",
                &id,
                "--token",
                &dana,
                "--reason",
                "not today",
            ],
        );
        assert!(ok, "{out}{err}");
        let (ok, _, err) = psql.join().unwrap();
        assert!(!ok);
        assert!(err.contains("access denied by dana: not today"), "{err}");
    });
}
