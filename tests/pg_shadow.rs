//! Shadow mode end to end with psql through the gateway: a statement a
//! shadow rule (or a policy in `mode = "shadow"`) would refuse runs on the
//! server (checked directly), and "what would have been refused" shows in
//! `/metrics`, in a log line and in the recording (`recordings export`);
//! the export then feeds `tollgate policy test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::pggw::PgGateway;
use common::*;

fn metrics(gw: &Gateway) -> String {
    ureq::get(&format!("http://127.0.0.1:{}/metrics", gw.admin_port))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// The sum over shards of `tollgate_statements_shadow_total` for one series.
fn shadow_count(gw: &Gateway, rule: &str, verdict: &str) -> f64 {
    metrics(gw)
        .lines()
        .filter(|l| {
            l.starts_with("tollgate_statements_shadow_total{")
                && l.contains(&format!("rule=\"{rule}\""))
                && l.contains(&format!("verdict=\"{verdict}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every command record of every recorded session.
fn recorded_commands(gw: &Gateway) -> Vec<serde_json::Value> {
    let o = gw.cli(&["recordings", "export", "--all"]);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "command")
        .collect()
}

const SHADOW_RULES: &str = r#"
[target.policy]
[[target.policy.rules]]
name = "watch-truncate"
action = "block"
classes = ["truncate"]
shadow = true
[[target.policy.rules]]
name = "no-drop"
action = "block"
classes = ["drop_table"]
"#;

#[test]
fn a_shadow_rule_lets_the_statement_run_and_reports_what_it_would_have_blocked() {
    let pg = PgGateway::builder()
        .tables(SHADOW_RULES)
        .start("shadow_rule");
    let token = pg.token("svc-ci", "ci", "5m");
    let (ok, _, err) = pg.psql(
        &token,
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
    );
    assert!(ok, "{err}");
    assert_eq!(shadow_count(&pg.gw, "watch-truncate", "block"), 0.0);

    let (ok, out, err) = pg.psql(&token, "TRUNCATE t");
    assert!(ok, "{out} {err}");
    // It ran on the server.
    assert_eq!(pg.direct("SELECT count(*) FROM t"), "0");
    // The enforcing rule still enforces.
    let (ok, _, err) = pg.psql(&token, "DROP TABLE t");
    assert!(!ok && err.contains("no-drop"), "{err}");
    assert_eq!(pg.direct("SELECT count(*) FROM t"), "0");

    assert_eventually!(
        shadow_count(&pg.gw, "watch-truncate", "block") == 1.0,
        Duration::from_secs(10),
        "metric missing:\n{}",
        metrics(&pg.gw)
    );
    let logged = pg
        .gw
        .log_events("statement passed in shadow mode; the policy would have refused it");
    assert_eq!(logged.len(), 1, "{}", pg.gw.log_text());
    assert_eq!(logged[0]["rule"], "watch-truncate");
    assert_eq!(logged[0]["would"], "block");
    assert_eq!(logged[0]["statement"], "TRUNCATE t");

    assert_eventually!(
        recorded_commands(&pg.gw)
            .iter()
            .any(|c| c["statement"] == "DROP TABLE t"),
        Duration::from_secs(10),
        "commands never recorded"
    );
    let commands = recorded_commands(&pg.gw);
    let truncate = commands
        .iter()
        .find(|c| c["statement"] == "TRUNCATE t")
        .unwrap();
    assert_eq!(truncate["verdict"], "allow", "{truncate}");
    assert_eq!(truncate["shadow_verdict"], "block", "{truncate}");
    assert_eq!(truncate["shadow_rule"], "watch-truncate", "{truncate}");
    let drop = commands
        .iter()
        .find(|c| c["statement"] == "DROP TABLE t")
        .unwrap();
    assert!(drop.get("shadow_verdict").is_none(), "{drop}");

    // The export is input for the workbench: judged again as recorded (same
    // caller, same verdicts), so --expect-recorded passes ...
    let export = pg.gw.dir().join("export.jsonl");
    let o = pg.gw.cli(&["recordings", "export", "--all"]);
    std::fs::write(&export, &o.stdout).unwrap();
    let cfg = pg.gw.config.to_str().unwrap().to_string();
    let test = |cfg: &str| {
        pg.gw.cli(&[
            "policy",
            "test",
            "--config",
            cfg,
            "--target",
            &pg.db,
            "--expect-recorded",
            export.to_str().unwrap(),
        ])
    };
    let o = test(&cfg);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("shadow: would block (rule watch-truncate)"),
        "{out}"
    );
    // ... and once the rule enforces, the diff shows what changes.
    let enforcing = pg.gw.dir().join("enforcing.toml");
    let text = std::fs::read_to_string(&pg.gw.config).unwrap();
    std::fs::write(&enforcing, text.replace("shadow = true\n", "")).unwrap();
    let o = test(enforcing.to_str().unwrap());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("-allow"), "{out}");
    assert!(out.contains("+block:watch-truncate"), "{out}");
}

#[test]
fn a_policy_in_shadow_mode_refuses_nothing_and_reports_every_refusal() {
    let pg = PgGateway::builder()
        .tables(&SHADOW_RULES.replace("[target.policy]\n", "[target.policy]\nmode = \"shadow\"\n"))
        .start("shadow_mode");
    let token = pg.token("svc-ci", "ci", "5m");
    let (ok, _, err) = pg.psql(&token, "CREATE TABLE t (id int)");
    assert!(ok, "{err}");
    let (ok, out, err) = pg.psql(&token, "DROP TABLE t");
    assert!(ok, "{out} {err}");
    assert_eq!(
        pg.direct("SELECT count(*) FROM pg_class WHERE relname = 't'"),
        "0"
    );
    assert_eventually!(
        shadow_count(&pg.gw, "no-drop", "block") == 1.0,
        Duration::from_secs(10),
        "metric missing:\n{}",
        metrics(&pg.gw)
    );
    assert_eventually!(
        recorded_commands(&pg.gw)
            .iter()
            .any(|c| c["statement"] == "DROP TABLE t"),
        Duration::from_secs(10),
        "command never recorded"
    );
    let commands = recorded_commands(&pg.gw);
    let drop = commands
        .iter()
        .find(|c| c["statement"] == "DROP TABLE t")
        .unwrap();
    assert_eq!(drop["verdict"], "audit", "{drop}");
    assert_eq!(drop["shadow_verdict"], "block", "{drop}");
    assert_eq!(drop["shadow_rule"], "no-drop", "{drop}");
}
