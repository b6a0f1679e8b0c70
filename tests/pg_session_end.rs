//! End-to-end: a session the gateway ends (revocation, an operator's kill,
//! the idle timeout, shutdown) is told why with PostgreSQL's FATAL 57P01
//! before the connection closes, and psql prints it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Child;
use std::time::Duration;

use common::pggw::PgGateway;
use common::*;

/// A gateway with its admin API on a free loopback port.
fn gateway(name: &str, target: &str, engine: &str) -> PgGateway {
    let port = free_port();
    let mut g = PgGateway::builder()
        .target(target)
        .engine(engine)
        .tables(&format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n"))
        .start(name);
    g.gw.admin_port = port;
    g
}

/// psql's stderr once it has ended (bounded: the session must end).
fn stderr_of_ended(mut child: Child) -> String {
    assert_eventually!(
        child.try_wait().unwrap().is_some(),
        Duration::from_secs(20),
        "psql is still running"
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The id of the one session the gateway opened.
fn session_id(g: &PgGateway) -> String {
    let opened = g.gw.log_events("session opened");
    assert_eq!(opened.len(), 1, "{opened:?}");
    opened[0]["session"].as_str().unwrap().to_string()
}

fn assert_fatal(stderr: &str, message: &str) {
    assert!(
        stderr.contains(&format!("FATAL:  {message}")),
        "psql did not print the FATAL `{message}`:\n{stderr}"
    );
}

#[test]
fn an_operator_kill_is_explained() {
    // (Each test sleeps for a different time: psql_running finds its query
    // by its text among the sessions of every test in this binary.)
    let g = gateway("end_kill", "", "");
    let t = g.token("ci-job", "ci", "10m");
    let child = g.psql_running(&t, "select pg_sleep(61)");
    let out = g.gw.cli(&["sessions", "kill", &session_id(&g)]);
    assert!(out.status.success(), "{out:?}");
    assert_fatal(
        &stderr_of_ended(child),
        "terminating connection because it was killed by an operator",
    );
}

#[test]
fn a_revocation_is_explained() {
    let g = gateway("end_revoke", "", "");
    let t = g.token("ci-job", "ci", "10m");
    let child = g.psql_running(&t, "select pg_sleep(62)");
    let out =
        g.gw.cli(&["revoke", "--subject", "ci-job", "--reason", "leaked"]);
    assert!(out.status.success(), "{out:?}");
    assert_fatal(
        &stderr_of_ended(child),
        "terminating connection because the caller's identity was revoked",
    );
}

#[test]
fn the_idle_timeout_is_explained() {
    let g = gateway("end_idle", "idle_timeout = \"1s\"", "");
    let t = g.token("ci-job", "ci", "10m");
    // Nothing crosses the gateway while the server sleeps.
    let child = g.psql_spawn(&t, "select pg_sleep(63)");
    assert_fatal(
        &stderr_of_ended(child),
        "terminating connection because of the idle timeout",
    );
}

#[test]
fn a_shutdown_is_explained() {
    let mut g = gateway("end_shutdown", "", "shutdown_grace = \"1s\"");
    let t = g.token("ci-job", "ci", "10m");
    let child = g.psql_running(&t, "select pg_sleep(64)");
    g.gw.signal("TERM");
    assert_fatal(
        &stderr_of_ended(child),
        "terminating connection because the gateway is shutting down",
    );
    assert!(g.gw.wait_exit(Duration::from_secs(20)).is_some());
}
