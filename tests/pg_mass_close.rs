//! End-to-end (issue 13): many logged-in PostgreSQL sessions that end at
//! once all end at the gateway (no client socket left in CLOSE-WAIT) and
//! give their upstream sessions back, whether their clients close or the
//! gateway shuts down.
//!
//! What froze: the recorder's writer thread woke the sessions waiting for
//! their end records while holding the lock those sessions register under.
//! A wake-up from another thread goes through the shard's bounded queue of
//! cross-thread wake-ups (compio, 64 entries), and the writer spins while
//! it is full; the shard, which empties that queue, was blocked on the
//! writer's lock as soon as another session ended meanwhile. The whole
//! shard stopped: no session ended, nothing new was served, SIGTERM never
//! finished. With the default recorder queue that takes about 200 to 1,000
//! sessions ending together (it depends on how fast the writer keeps up);
//! a one-record queue makes every ending session wait for the writer, so
//! each of its rounds wakes nearly all of them and the freeze is certain
//! well above the 64-entry queue. Before the fix both tests failed in every
//! run at `N` = 180 (4 runs) and 140 (1 run); 100 froze 1 run of 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::pggw::PgGateway;
use common::pgwire::Wire;

/// Sessions per test (`TOLLGATE_MASS_CLOSE_N` overrides).
const N: usize = 180;

fn n() -> usize {
    std::env::var("TOLLGATE_MASS_CLOSE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N)
}

/// One shard, so every session shares one recorder writer and one queue of
/// wake-ups; a one-record recorder queue (see the file's comment).
fn gateway(name: &str) -> PgGateway {
    // Both tests hold their sessions at once, on one cluster.
    common::pg::cluster_with_max_connections(2 * n() as u32 + 20);
    PgGateway::builder()
        .shards(1)
        .engine("shutdown_grace = \"1s\"")
        .recorder("queue_capacity = 1")
        .start(name)
}

/// Upstream sessions of this gateway's role still open on the server.
fn upstream_sessions(g: &PgGateway) -> usize {
    g.direct(&format!(
        "select count(*) from pg_stat_activity where usename = '{}'",
        g.role
    ))
    .trim()
    .parse()
    .unwrap()
}

fn closed(g: &PgGateway) -> usize {
    g.gw.log_events("session closed").len()
}

/// `n` sessions logged in through the gateway, each at ReadyForQuery.
fn log_in(g: &PgGateway, n: usize) -> Vec<Wire> {
    let t = g.token("ci-job", "ci", "10m");
    let conns: Vec<Wire> = (0..n)
        .map(|_| {
            let (w, msgs) = Wire::login(g.port, &g.db, &t);
            assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{msgs:?}");
            w
        })
        .collect();
    assert_eq!(upstream_sessions(g), n);
    conns
}

#[test]
fn logged_in_sessions_closed_at_once_all_end() {
    let n = n();
    let g = gateway("mass_close");
    let conns = log_in(&g, n);
    drop(conns);
    assert_eventually!(
        closed(&g) >= n,
        Duration::from_secs(30),
        "only {} of {n} sessions closed at the gateway; upstream still holds {}",
        closed(&g),
        upstream_sessions(&g)
    );
    assert_eventually!(
        upstream_sessions(&g) == 0,
        Duration::from_secs(10),
        "{} upstream sessions still open",
        upstream_sessions(&g)
    );
    // The shard still serves.
    let t = g.token("ci-job", "ci", "10m");
    let (_w, msgs) = Wire::login(g.port, &g.db, &t);
    assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{msgs:?}");
}

#[test]
fn shutdown_ends_every_logged_in_session() {
    let n = n();
    let mut g = gateway("mass_shutdown");
    let conns = log_in(&g, n);
    g.gw.signal("TERM");
    let exited = g.gw.wait_exit(Duration::from_secs(30));
    assert!(
        exited.is_some_and(|s| s.success()),
        "gateway did not stop cleanly ({exited:?}); {} of {n} sessions closed",
        closed(&g)
    );
    let ends = g.gw.log_events("session closed");
    assert_eq!(ends.len(), n, "every session logs its end");
    assert!(
        ends.iter().all(|e| e["reason"] == "gateway shutting down"),
        "{:?}",
        ends.iter().find(|e| e["reason"] != "gateway shutting down")
    );
    assert_eventually!(
        upstream_sessions(&g) == 0,
        Duration::from_secs(10),
        "{} upstream sessions still open after shutdown",
        upstream_sessions(&g)
    );
    drop(conns);
}
