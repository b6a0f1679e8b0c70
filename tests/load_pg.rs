//! End-to-end: `tollgate-load pg` through a real tollgate to a real
//! PostgreSQL 15, every workload for a bounded count, and what the tool
//! reports compared with what the server saw (transactions committed, rows
//! inserted, updates applied, logins). Then `tollgate-load plot` on two result
//! files. No timing is asserted.
//!
//! The load tool is the workspace's `tollgate-load` binary, built next to
//! `tollgate` (`cargo build --workspace`, as tests/run.sh does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::pggw::{ISS, PgGateway};
use common::pki::Ca;
use common::*;
use serde_json::Value;

fn load_bin() -> PathBuf {
    let bin = std::path::Path::new(tollgate_bin()).with_file_name("tollgate-load");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tollgate-bench` (tests/run.sh builds the workspace)",
        bin.display()
    );
    bin
}

/// The gateway's DSN without a password: the tool sends a token.
fn gateway_dsn(g: &PgGateway) -> String {
    format!(
        "host=127.0.0.1 port={} dbname={} user=ci-job sslmode=disable connect_timeout=10",
        g.port, g.db
    )
}

/// The same database directly, as the target's own role (the password
/// goes in PGPASSWORD).
fn direct_dsn(g: &PgGateway) -> String {
    format!(
        "host=127.0.0.1 port={} dbname={} user={} sslmode=disable connect_timeout=10",
        g.cluster().port,
        g.db,
        g.role,
    )
}

/// Runs `tollgate-load pg` with a key to mint tokens from; returns its JSON.
fn load_pg(g: &PgGateway, args: &[&str]) -> Value {
    load_pg_at(g, &gateway_dsn(g), args)
}

fn load_pg_at(g: &PgGateway, dsn: &str, args: &[&str]) -> Value {
    let out = Command::new(load_bin())
        .env("PGPASSWORD", &g.password)
        .arg("pg")
        .args(args)
        .args(["--dsn", dsn, "--token-key"])
        .arg(&g.key)
        .args(["--iss", ISS, "--groups", "ci", "--json", "--timeout", "20s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tollgate-load failed ({:?}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!(json["tool"], "tollgate-load");
    assert_eq!(json["mode"], "pg");
    json
}

fn xact_commit(g: &PgGateway) -> u64 {
    // Read from another database, so the probe is not one of the counted transactions.
    g.cluster()
        .sql(
            "postgres",
            &format!(
                "select xact_commit from pg_stat_database where datname = '{}'",
                g.db
            ),
        )
        .parse()
        .unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The run is clean and its counts add up.
fn check_run(json: &Value, count: u64, workload: &str) {
    assert_eq!(json["workload"], workload, "{json}");
    assert_eq!(u(&json["requests"]), count, "{json}");
    assert_eq!(u(&json["errors_total"]), 0, "{json}");
    let ops = &json["ops"];
    let by_kind = u(&ops["select"]) + u(&ops["insert"]) + u(&ops["update"]) + u(&ops["connect"]);
    assert_eq!(by_kind, count, "{json}");
    let per_second: u64 = json["per_second"].as_array().unwrap().iter().map(u).sum();
    assert_eq!(per_second, count, "{json}");
    let curve = json["latency_curve_us"].as_array().unwrap();
    assert!(!curve.is_empty(), "{json}");
    assert_eq!(curve.last().unwrap()["percentile"], 100.0);
    assert_eq!(curve.last().unwrap()["us"], json["latency_us"]["max"]);
}

/// The transactions a run makes on the server: one per operation, per set-up
/// statement and per prepared statement (a Parse with its Sync), and one per
/// login (the backend's start-up reads the catalogs in a transaction of its
/// own), the set-up's session included.
fn server_transactions(json: &Value) -> u64 {
    let setup = u(&json["setup_statements"]);
    u(&json["requests"])
        + setup
        + u(&json["prepared_statements"])
        + u(&json["sessions"])
        + u64::from(setup > 0)
}

/// Waits until the server's committed-transaction count for the database has
/// grown by exactly `expected` (backends report their counts when the
/// sessions end, which follows the tool's exit).
fn expect_commits(g: &PgGateway, before: u64, expected: u64) {
    assert_eventually!(
        xact_commit(g) - before == expected,
        Duration::from_secs(30),
        "committed transactions grew by {} (expected {expected})",
        xact_commit(g) - before
    );
}

#[test]
fn select1_simple_protocol_matches_the_servers_transactions() {
    let g = PgGateway::start("load_select1");
    let before = xact_commit(&g);
    let json = load_pg(
        &g,
        &[
            "select1",
            "--count",
            "300",
            "--connections",
            "3",
            "--threads",
            "2",
        ],
    );
    check_run(&json, 300, "select1");
    assert_eq!(json["protocol"], "simple");
    assert_eq!(json["path"], "gateway");
    assert_eq!(u(&json["sessions"]), 3);
    assert!(json["direct"].is_null() && json["vs_direct"].is_null());
    // 300 statements and 3 logins.
    expect_commits(&g, before, 303);
    assert_eq!(server_transactions(&json), 303);
}

#[test]
fn point_select_extended_and_prepared_match_the_servers_transactions() {
    let g = PgGateway::start("load_point");
    for protocol in ["extended", "prepared"] {
        let before = xact_commit(&g);
        let json = load_pg(
            &g,
            &[
                "point-select",
                "--protocol",
                protocol,
                "--rows",
                "500",
                "--count",
                "200",
                "--connections",
                "4",
            ],
        );
        check_run(&json, 200, "point-select");
        assert_eq!(json["protocol"], protocol);
        // Table, rows, ANALYZE: three statements, each its own transaction.
        assert_eq!(u(&json["setup_statements"]), 3);
        // Prepared: one Parse per session, itself a transaction on the server.
        let prepared = u(&json["prepared_statements"]);
        assert_eq!(prepared, if protocol == "prepared" { 4 } else { 0 });
        // And 4 logins, plus the set-up's.
        expect_commits(&g, before, 200 + 3 + prepared + 4 + 1);
        assert_eq!(server_transactions(&json), 200 + 3 + prepared + 5);
    }
    assert_eq!(
        g.direct("select count(*) from tollgate_load_accounts"),
        "500"
    );
}

#[test]
fn insert_rows_match_the_count_and_are_each_inserted_once() {
    let g = PgGateway::start("load_insert");
    let json = load_pg(
        &g,
        &[
            "insert",
            "--protocol",
            "extended",
            "--count",
            "250",
            "--connections",
            "5",
        ],
    );
    check_run(&json, 250, "insert");
    assert_eq!(u(&json["ops"]["insert"]), 250);
    assert_eq!(
        g.direct("select count(*), count(distinct (session, seq)) from tollgate_load_inserts"),
        "250|250"
    );
    // Every session inserted its own share: 250 over 5 sessions.
    assert_eq!(
        g.direct("select string_agg(n::text, ',') from (select count(*) n from tollgate_load_inserts group by session) s"),
        "50,50,50,50,50"
    );
}

#[test]
fn mixed_through_the_gateway_and_direct_in_one_run() {
    let g = PgGateway::start("load_mixed");
    let direct = direct_dsn(&g);
    let json = load_pg(
        &g,
        &[
            "mixed",
            "--protocol",
            "prepared",
            "--rows",
            "100",
            "--count",
            "400",
            "--connections",
            "4",
            "--direct",
            &direct,
        ],
    );
    check_run(&json, 400, "mixed");
    let d = &json["direct"];
    assert_eq!(d["path"], "direct");
    assert_eq!(d["addr"], format!("127.0.0.1:{}", g.cluster().port));
    check_run(d, 400, "mixed");
    assert!(json["vs_direct"]["req_per_s_ratio"].as_f64().unwrap() > 0.0);
    // What the server holds is exactly what both paths report having done:
    // each update adds 1 to one balance, each insert adds one row.
    let inserts = u(&json["ops"]["insert"]) + u(&d["ops"]["insert"]);
    let updates = u(&json["ops"]["update"]) + u(&d["ops"]["update"]);
    assert!(inserts > 0 && updates > 0, "{json}");
    assert_eq!(
        g.direct("select count(*) from tollgate_load_inserts"),
        inserts.to_string()
    );
    assert_eq!(
        g.direct("select sum(balance) from tollgate_load_accounts"),
        updates.to_string()
    );
}

#[test]
fn connect_opens_one_upstream_login_per_operation_on_a_schedule() {
    let g = PgGateway::start("load_connect");
    let before = g.server_logins();
    let json = load_pg(
        &g,
        &[
            "connect",
            "--token-per-session",
            "--count",
            "40",
            "--connections",
            "2",
            "--rate",
            "200",
        ],
    );
    check_run(&json, 40, "connect");
    assert_eq!(json["target_rate"], 200.0);
    assert_eq!(u(&json["ops"]["connect"]), 40);
    assert_eq!(u(&json["sessions"]), 40);
    assert_eventually!(
        g.server_logins() - before == 40,
        Duration::from_secs(20),
        "the server saw {} logins, expected 40",
        g.server_logins() - before
    );
}

#[test]
fn a_refused_token_is_a_connect_error_and_exit_status_2() {
    let g = PgGateway::start("load_refused");
    let out = Command::new(load_bin())
        .args([
            "pg",
            "select1",
            "--count",
            "5",
            "--connections",
            "1",
            "--json",
        ])
        .args(["--dsn", &gateway_dsn(&g), "--token", "not-a-token"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json["requests"]), 0);
    assert!(u(&json["errors"]["connect"]) >= 5, "{json}");
    // The token the tool sent never comes back in its report.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-a-token"));
}

#[test]
fn plot_draws_two_result_files_as_valid_svg_and_html() {
    let g = PgGateway::start("load_plot");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, protocol) in [("simple-run", "simple"), ("extended-run", "extended")] {
        let json = load_pg(
            &g,
            &[
                "select1",
                "--protocol",
                protocol,
                "--count",
                "100",
                "--connections",
                "2",
            ],
        );
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, json.to_string()).unwrap();
        files.push(path);
    }
    for ext in ["svg", "html"] {
        let output = dir.path().join(format!("report.{ext}"));
        let out = Command::new(load_bin())
            .arg("plot")
            .args(&files)
            .arg("-o")
            .arg(&output)
            .args(["--title", "two <runs>"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&output).unwrap();
        assert!(text.contains("simple-run") && text.contains("extended-run"));
        assert!(text.contains("Latency by percentile") && text.contains("Throughput over time"));
        if ext == "svg" {
            // A real XML parser accepts it, and the root element is an SVG.
            let root = python(
                "import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().tag)",
                &[output.to_str().unwrap()],
            );
            assert_eq!(root, "{http://www.w3.org/2000/svg}svg");
        } else {
            assert!(text.starts_with("<!DOCTYPE html>"));
            assert!(text.contains("<title>two &lt;runs&gt;</title>"));
            assert!(text.contains("<svg"));
        }
    }
}

/// A gateway that refuses plaintext, with its listener certificate's CA.
fn tls_gateway(name: &str, dir: &std::path::Path) -> (PgGateway, Ca) {
    let ca = Ca::new(dir, "gw-ca");
    let (cert, key) = ca.server(dir, "gateway");
    let g = PgGateway::builder()
        .target("allow_plaintext = false")
        .tables(&format!(
            "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ))
        .start(name);
    (g, ca)
}

#[test]
fn tls_verify_full_through_a_gateway_that_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (g, ca) = tls_gateway("load_tls", dir.path());
    let key_value = format!(
        "host=127.0.0.1 port={} dbname={} user=ci-job sslmode=verify-full sslrootcert={} connect_timeout=10",
        g.port,
        g.db,
        ca.cert.display()
    );
    let url = format!(
        "postgresql://ci-job@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={}",
        g.port,
        g.db,
        ca.cert.display()
    );
    // The gateway takes no plaintext, so every operation went over TLS.
    for (dsn, workload, protocol) in [
        (&key_value, "select1", "extended"),
        (&url, "connect", "simple"),
    ] {
        let json = load_pg_at(
            &g,
            dsn,
            &[
                workload,
                "--protocol",
                protocol,
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--connections",
                "2",
            ],
        );
        assert_eq!(json["workload"], workload);
        assert!(u(&json["requests"]) > 0, "{json}");
        assert_eq!(u(&json["errors_total"]), 0, "{json}");
    }
}

#[test]
fn tls_refuses_a_gateway_certificate_from_another_ca_and_plaintext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (g, _ca) = tls_gateway("load_tls_bad", dir.path());
    let other = Ca::new(dir.path(), "other-ca");
    let cases = [
        format!("sslmode=verify-full sslrootcert={}", other.cert.display()),
        "sslmode=disable".to_owned(),
    ];
    for tls in cases {
        let dsn = format!(
            "host=127.0.0.1 port={} dbname={} user=ci-job connect_timeout=10 {tls}",
            g.port, g.db
        );
        let out = Command::new(load_bin())
            .args([
                "pg",
                "select1",
                "--count",
                "2",
                "--connections",
                "1",
                "--json",
            ])
            .args(["--dsn", &dsn, "--token-key"])
            .arg(&g.key)
            .args(["--iss", ISS, "--groups", "ci"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{tls}: {out:?}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(u(&json["requests"]), 0, "{json}");
        assert!(u(&json["errors"]["connect"]) >= 2, "{json}");
        if tls.contains("verify-full") {
            let last = json["last_error"].as_str().unwrap();
            assert!(last.contains("certificate"), "{json}");
        }
    }
}
