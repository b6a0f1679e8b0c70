//! End-to-end: `tollgate-load mysql` through a real tollgate (TLS verified
//! against the gateway's CA, the token sent as the password) to a real
//! MariaDB 10.11, and `--direct` to the same server, every workload briefly;
//! the `--json` report parsed and checked against what the server holds (rows
//! counted with the `mariadb` CLI). No timing is asserted.
//!
//! The load tool is the workspace's `tollgate-load` binary, built next to
//! `tollgate` (`cargo build --workspace`, as tests/run.sh does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use common::mariadb::{self, server};
use common::mygw::MyGateway;
use common::pggw::ISS;
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

/// The tests share one server and the tool's two table names: one at a time,
/// each from empty tables.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    server().sql(&format!(
        "DROP TABLE IF EXISTS {db}.tollgate_load_accounts, {db}.tollgate_load_inserts",
        db = mariadb::DATABASE
    ));
    guard
}

/// The gateway's URL: TLS verified (chain and 127.0.0.1) against its CA.
fn gateway_url(g: &MyGateway) -> String {
    format!(
        "mysql://ci-job@127.0.0.1:{}/{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        g.port,
        mariadb::DATABASE,
        g.ca.display()
    )
}

/// The same database directly, as the gateway's own account (the password
/// goes in MYSQL_PWD), over TLS too.
fn direct_url() -> String {
    format!(
        "mysql://{}@127.0.0.1:{}/{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        mariadb::NATIVE_USER,
        server().port,
        mariadb::DATABASE,
        server().ca.display()
    )
}

fn run_load(g: &MyGateway, url: &str, args: &[&str]) -> Output {
    Command::new(load_bin())
        .env("MYSQL_PWD", mariadb::NATIVE_PASSWORD)
        .env_remove("TOLLGATE_TOKEN")
        .arg("mysql")
        .args(args)
        .args(["--dsn", url, "--token-key"])
        .arg(&g.key)
        .args(["--iss", ISS, "--groups", "ci", "--json", "--timeout", "20s"])
        .output()
        .unwrap()
}

/// Runs `tollgate-load mysql` through the gateway with minted tokens; returns its JSON.
fn load_mysql(g: &MyGateway, args: &[&str]) -> Value {
    let out = run_load(g, &gateway_url(g), args);
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
    assert_eq!(json["mode"], "mysql");
    json
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The run is clean and its counts add up; `count` when the run had one.
fn check_run(json: &Value, workload: &str, protocol: &str, count: Option<u64>) {
    assert_eq!(json["workload"], workload, "{json}");
    assert_eq!(json["protocol"], protocol, "{json}");
    let requests = u(&json["requests"]);
    assert!(requests > 0, "{json}");
    if let Some(count) = count {
        assert_eq!(requests, count, "{json}");
    }
    assert_eq!(u(&json["errors_total"]), 0, "{json}");
    let ops = &json["ops"];
    let by_kind = u(&ops["select"]) + u(&ops["insert"]) + u(&ops["update"]) + u(&ops["connect"]);
    assert_eq!(by_kind, requests, "{json}");
    let per_second: u64 = json["per_second"].as_array().unwrap().iter().map(u).sum();
    assert_eq!(per_second, requests, "{json}");
    let curve = json["latency_curve_us"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["us"], json["latency_us"]["max"]);
}

/// Gateway and direct both ran the plan cleanly.
fn check_both(json: &Value, workload: &str, protocol: &str, count: Option<u64>) {
    check_run(json, workload, protocol, count);
    assert_eq!(json["path"], "gateway");
    let d = &json["direct"];
    assert_eq!(d["path"], "direct", "{json}");
    assert_eq!(d["addr"], format!("127.0.0.1:{}", server().port));
    check_run(d, workload, protocol, count);
    assert!(json["vs_direct"]["req_per_s_ratio"].as_f64().unwrap() > 0.0);
}

fn table(sql: &str) -> String {
    server().sql(&format!("USE {}; {sql}", mariadb::DATABASE))
}

#[test]
fn select1_text_and_prepared_through_tls_and_direct() {
    let _one = exclusive();
    let g = MyGateway::start();
    let direct = direct_url();
    for protocol in ["text", "prepared"] {
        let json = load_mysql(
            &g,
            &[
                "select1",
                "--protocol",
                protocol,
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--connections",
                "3",
                "--threads",
                "2",
                "--direct",
                &direct,
            ],
        );
        check_both(&json, "select1", protocol, None);
        // Sessions open before the clock; none broke.
        assert_eq!(u(&json["sessions"]), 3, "{json}");
        let prepared = if protocol == "prepared" { 3 } else { 0 };
        assert_eq!(u(&json["prepared_statements"]), prepared, "{json}");
        assert_eq!(u(&json["direct"]["prepared_statements"]), prepared);
    }
}

#[test]
fn point_select_fills_the_table_it_reads() {
    let _one = exclusive();
    let g = MyGateway::start();
    let json = load_mysql(
        &g,
        &[
            "point-select",
            "--protocol",
            "prepared",
            "--rows",
            "1500",
            "--duration",
            "1s",
            "--connections",
            "4",
            "--direct",
            &direct_url(),
        ],
    );
    check_both(&json, "point-select", "prepared", None);
    // Table, two batches of rows (1,000 + 500).
    assert_eq!(u(&json["setup_statements"]), 3);
    assert_eq!(table("SELECT COUNT(*) FROM tollgate_load_accounts"), "1500");
}

#[test]
fn insert_rows_are_really_in_the_servers_table() {
    let _one = exclusive();
    let g = MyGateway::start();
    let json = load_mysql(
        &g,
        &[
            "insert",
            "--count",
            "250",
            "--connections",
            "5",
            "--direct",
            &direct_url(),
        ],
    );
    check_both(&json, "insert", "text", Some(250));
    assert_eq!(u(&json["ops"]["insert"]), 250);
    // Both paths' rows, each (session, seq) once per path.
    assert_eq!(
        table("SELECT COUNT(*), COUNT(DISTINCT session, seq) FROM tollgate_load_inserts"),
        "500\t250"
    );
    assert_eq!(
        table(
            "SELECT GROUP_CONCAT(n) FROM (SELECT COUNT(*) n FROM tollgate_load_inserts GROUP BY session) s"
        ),
        "100,100,100,100,100"
    );
}

#[test]
fn mixed_prepared_matches_what_the_server_holds() {
    let _one = exclusive();
    let g = MyGateway::start();
    let json = load_mysql(
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
            &direct_url(),
        ],
    );
    check_both(&json, "mixed", "prepared", Some(400));
    let d = &json["direct"];
    let inserts = u(&json["ops"]["insert"]) + u(&d["ops"]["insert"]);
    let updates = u(&json["ops"]["update"]) + u(&d["ops"]["update"]);
    assert!(inserts > 0 && updates > 0, "{json}");
    assert_eq!(
        table("SELECT COUNT(*) FROM tollgate_load_inserts"),
        inserts.to_string()
    );
    assert_eq!(
        table("SELECT SUM(balance) FROM tollgate_load_accounts"),
        updates.to_string()
    );
}

#[test]
fn connect_logs_in_once_per_operation_with_a_token_each() {
    let _one = exclusive();
    let g = MyGateway::start();
    let json = load_mysql(
        &g,
        &[
            "connect",
            "--token-per-session",
            "--duration",
            "1s",
            "--rate",
            "50",
            "--connections",
            "2",
            "--direct",
            &direct_url(),
        ],
    );
    check_both(&json, "connect", "text", None);
    assert_eq!(json["target_rate"], 50.0);
    let connects = u(&json["ops"]["connect"]);
    // Every operation was a session of its own (the warm-up's too).
    assert!(u(&json["sessions"]) >= connects, "{json}");
}

#[test]
fn without_tls_the_gateway_refuses_before_the_token_and_the_exit_status_is_2() {
    let _one = exclusive();
    let g = MyGateway::builder()
        .target("allow_plaintext = false")
        .start();
    let url = format!(
        "mysql://ci-job@127.0.0.1:{}/{}?ssl-mode=DISABLED",
        g.port,
        mariadb::DATABASE
    );
    let out = run_load(&g, &url, &["select1", "--count", "3", "--connections", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json["requests"]), 0);
    assert!(u(&json["errors"]["connect"]) >= 3, "{json}");
    assert!(
        json["last_error"].as_str().unwrap().contains("3159"),
        "{json}"
    );
}

#[test]
fn a_gateway_certificate_from_another_ca_is_refused_before_the_token() {
    let _one = exclusive();
    let g = MyGateway::start();
    // The server's CA, not the gateway's: verification must fail.
    let url = format!(
        "mysql://ci-job@127.0.0.1:{}/{}?ssl-ca={}",
        g.port,
        mariadb::DATABASE,
        server().ca.display()
    );
    let out = run_load(&g, &url, &["select1", "--count", "2", "--connections", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json["requests"]), 0);
    assert!(u(&json["errors"]["connect"]) >= 2, "{json}");
    let last = json["last_error"].as_str().unwrap();
    assert!(
        last.contains("certificate") || last.contains("UnknownIssuer"),
        "{json}"
    );
    // No session reached the gateway's authentication.
    assert_eq!(g.gw.log_count("session opened"), 0, "{}", g.gw.log_text());
}
