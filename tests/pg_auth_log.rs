//! Rejected tokens cannot flood the log (issue 13): a client sending 2,000
//! bad tokens gets every one refused with 28P01, while the log holds one
//! line a second per source and shard, each counting the failures folded
//! into it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::pggw::PgGateway;
use common::pgwire::Wire;

const TRIES: u64 = 2_000;

#[test]
fn bad_tokens_are_logged_folded_per_source() {
    let g = PgGateway::builder().shards(2).start("authlogflood");
    let started = Instant::now();
    let refused = |i: u64| {
        let mut w = Wire::connect(g.port);
        w.startup("ci-job", &g.db);
        assert_eq!(w.recv().expect("an authentication request").tag, b'R');
        w.password(&format!("not-a-token-{i}"));
        let m = w.recv().expect("a refusal");
        assert_eq!(m.field(b'C').as_deref(), Some("28P01"), "try {i}");
    };
    for i in 0..TRIES {
        refused(i);
    }
    let folded_of = |l: &serde_json::Value| {
        l["fields"]["folded"]
            .as_u64()
            .or(l["folded"].as_u64())
            .unwrap_or(0)
    };
    // A folded count is written with the source's next line on that shard:
    // keep trying (one more each round) until the lines account for every
    // try of the flood.
    let mut tries = TRIES;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let lines = loop {
        let lines = g.gw.log_events("caller authentication failed");
        if lines.len() as u64 + lines.iter().map(folded_of).sum::<u64>() >= TRIES {
            break lines;
        }
        assert!(Instant::now() < deadline, "no folded count: {lines:?}");
        refused(tries);
        tries += 1;
    };
    let elapsed = started.elapsed().as_secs();
    let n = lines.len() as u64;
    let folded: u64 = lines.iter().map(folded_of).sum();
    // At most one line per second per shard (plus the first of each shard),
    // however fast the tries came; every line accounts for tries before it.
    assert!(n >= 2 && n <= 2 * (elapsed + 2), "{n} lines in {elapsed} s");
    assert!(n + folded <= tries, "{n} + {folded} > {tries}");
    assert!(folded > 0, "{n} lines, nothing folded");
}

/// A newline in the start-up packet's `user` or `database` cannot write a
/// line of its own into a human log (issue 13): the harness starts the
/// gateway with human logs, as an operator runs it.
#[test]
fn start_up_parameters_cannot_forge_human_log_lines() {
    let g = PgGateway::builder().human_logs().start("authlogforge");
    let forged = "\n2026-12-01T00:00:00Z  INFO FORGED admin login subject=root";
    // A known database, a forged user, a bad token: logged as a failure.
    let mut w = Wire::connect(g.port);
    w.startup(&format!("x{forged}"), &g.db);
    assert_eq!(w.recv().expect("an authentication request").tag, b'R');
    w.password("not-a-token");
    let m = w.recv().expect("a refusal");
    assert_eq!(m.field(b'C').as_deref(), Some("28P01"));
    // A forged database: refused before authentication.
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", &format!("db{forged}"));
    let m = w.recv().expect("a refusal");
    assert_eq!(m.tag, b'E', "{m:?}");
    // The first refusal's line is in the log: it carries the user escaped.
    let failed_line = || {
        g.gw.log_text()
            .lines()
            .find(|l| l.contains("caller authentication failed"))
            .map(str::to_string)
    };
    assert_eventually!(
        failed_line().is_some(),
        std::time::Duration::from_secs(15),
        "the failure was never logged"
    );
    let line = failed_line().unwrap();
    assert!(line.contains(r"x\n2026-12-01T00:00:00Z"), "{line}");
    let log = g.gw.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-01")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}'), "{log}");
}
