//! End-to-end: the upstream connection pool in session mode
//! (`[target.postgres.pool]`) on a real PostgreSQL 15: reuse across many
//! callers, nothing of one caller's session state reaching the next, a
//! connection left mid-transaction closed (and rolled back by the server),
//! credential rotation draining, a server restart, cancel, a full pool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::pg::restartable_cluster;
use common::pggw::PgGateway;

/// The restart test takes it exclusively: the other tests share the server.
static SERVER: RwLock<()> = RwLock::new(());

fn pooled(name: &str, pool: &str, shards: usize) -> PgGateway {
    restartable_cluster();
    PgGateway::builder()
        .shards(shards)
        .tables(&format!("[target.postgres.pool]\n{pool}"))
        .start(name)
}

/// Server backends of the target's role right now (queried directly).
fn backends(g: &PgGateway) -> usize {
    g.direct(&format!(
        "select count(*) from pg_stat_activity where usename = '{}'",
        g.role
    ))
    .parse()
    .unwrap()
}

/// psql -c through the gateway; its output, the test failing otherwise.
fn sql(g: &PgGateway, token: &str, q: &str) -> String {
    let (ok, out, err) = g.psql(token, q);
    assert!(ok, "{q}: {err}\n{}", g.gw.log_text());
    out
}

/// `n` sessions (connect, one query, Terminate) from `concurrency` callers at once.
fn sessions(g: &PgGateway, token: &str, n: usize, concurrency: usize) {
    let conninfo = Arc::new(g.conninfo(token));
    local(async {
        let mut workers = Vec::new();
        for w in 0..concurrency {
            let conninfo = conninfo.clone();
            let mine = n / concurrency + usize::from(w < n % concurrency);
            workers.push(tokio::task::spawn_local(async move {
                for i in 0..mine {
                    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                        .await
                        .unwrap_or_else(|e| panic!("worker {w} session {i}: {e}"));
                    let conn = tokio::task::spawn_local(conn);
                    let row = client.query_one("select 40 + 2", &[]).await.unwrap();
                    assert_eq!(row.get::<_, i32>(0), 42);
                    drop(client);
                    conn.await.unwrap().unwrap();
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
    });
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

#[test]
fn a_thousand_sessions_sequential_and_fifty_at_once_use_at_most_ten_backends() {
    let _s = SERVER.read().unwrap();
    let g = pooled("thousand", "size = 10\ncheckout_timeout = \"30s\"\n", 2);
    let t = g.token("ci-job", "ci", "10m");
    let before = g.server_logins();
    sessions(&g, &t, 1000, 1);
    assert!(backends(&g) <= 10, "{} backends", backends(&g));
    // 50 callers at once over 10 connections: the rest wait for a release.
    let done = std::sync::atomic::AtomicBool::new(false);
    let sampler = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(backends(&g));
            }
            most
        });
        sessions(&g, &t, 1000, 50);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        h.join().unwrap()
    });
    assert!(sampler <= 10, "{sampler} backends seen at once");
    // Every backend is a login: 2,000 sessions, at most 10 logins.
    let logins = g.server_logins() - before;
    assert!(
        (1..=10).contains(&logins),
        "{logins} upstream logins for 2000 sessions"
    );
    assert!(backends(&g) <= 10);
}

#[test]
fn pgbench_new_connection_per_transaction_through_the_pool() {
    let _s = SERVER.read().unwrap();
    let g = pooled("pgbench", "size = 4\n", 2);
    let t = g.token("ci-job", "ci", "10m");
    let bench = |args: &[&str]| {
        let out = Command::new("pgbench")
            .args(["-h", "127.0.0.1", "-p", &g.port.to_string(), "-U", "ci-job"])
            .args(args)
            .arg(&g.db)
            .env("PGPASSWORD", &t)
            .env("PGSSLMODE", "disable")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pgbench {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            g.gw.log_text()
        );
    };
    bench(&["-i", "-s", "1", "-q"]);
    let before = g.server_logins();
    // One thread per client: pgbench connects synchronously, so a client
    // waiting for a pooled connection must not hold up the clients whose
    // Terminate would free one (with -j 1 it would, against any pool).
    bench(&["-C", "-S", "-c", "4", "-j", "4", "-t", "100", "-n"]);
    let logins = g.server_logins() - before;
    assert!(logins <= 4, "{logins} logins for 400 connections");
}

#[test]
fn one_callers_session_state_is_gone_for_the_next() {
    let _s = SERVER.read().unwrap();
    // One connection: the second caller surely gets the first one's.
    let g = pooled("leak", "size = 1\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    let pid = sql(
        &g,
        &t,
        "create temp table mine (x int); set work_mem = '7MB'; \
         prepare p as select 1; listen chan; select pg_advisory_lock(42); \
         select pg_backend_pid()",
    );
    let pid = pid.lines().last().unwrap().to_string();
    let out = sql(
        &g,
        &t,
        "select pg_backend_pid(), to_regclass('pg_temp.mine') is null, \
         current_setting('work_mem'), \
         (select count(*) from pg_prepared_statements), \
         (select count(*) from pg_listening_channels())",
    );
    assert_eq!(out, format!("{pid}|t|4MB|0|0"), "state leaked");
    // The advisory lock is gone on the server too.
    assert_eq!(
        g.direct("select count(*) from pg_locks where locktype = 'advisory'"),
        "0"
    );
    // DISCARD ALL resets SET ROLE / SET SESSION AUTHORIZATION as well.
    g.direct(&format!(
        "create role helper_leak; grant helper_leak to {}",
        g.role
    ));
    sql(&g, &t, "set role helper_leak; select 1");
    assert_eq!(
        sql(&g, &t, "select pg_backend_pid(), current_user"),
        format!("{pid}|{}", g.role)
    );
}

#[test]
fn a_caller_leaving_mid_transaction_closes_its_connection_and_the_server_rolls_back() {
    let _s = SERVER.read().unwrap();
    let g = pooled("midtx", "size = 1\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    sql(&g, &t, "create table kept (x int)");
    let out = sql(
        &g,
        &t,
        "begin; insert into kept values (1); select pg_backend_pid()",
    );
    let pid = out.lines().last().unwrap().to_string();
    // The server ends that backend (the gateway closed it), rolling back.
    assert_eventually!(
        g.direct(&format!(
            "select count(*) from pg_stat_activity where pid = {pid}"
        )) == "0",
        Duration::from_secs(10),
        "backend {pid} of a session left mid-transaction still lives"
    );
    assert_eq!(g.direct("select count(*) from kept"), "0");
    let next = sql(&g, &t, "select pg_backend_pid()");
    assert_ne!(next, pid, "a connection left in a transaction was reused");
}

#[test]
fn a_credential_rotation_drains_the_pool() {
    let _s = SERVER.read().unwrap();
    let g = pooled("rotate", "size = 2\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    let first = sql(&g, &t, "select pg_backend_pid()");
    assert_eq!(sql(&g, &t, "select pg_backend_pid()"), first, "not reused");
    let new_pw = "Rotated-Pool-Password-2";
    g.direct(&format!("alter role {} password '{new_pw}'", g.role));
    std::fs::write(&g.password_file, new_pw).unwrap();
    let after = sql(&g, &t, "select pg_backend_pid()");
    assert_ne!(
        after, first,
        "a connection of the old credential was reused"
    );
    assert_eventually!(
        g.direct(&format!(
            "select count(*) from pg_stat_activity where pid = {first}"
        )) == "0",
        Duration::from_secs(10),
        "the old credential's connection was not closed"
    );
    assert_eq!(sql(&g, &t, "select pg_backend_pid()"), after);
}

#[test]
fn after_an_upstream_restart_the_next_caller_works() {
    let _s = SERVER.write().unwrap();
    let g = pooled("restart", "size = 2\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    let first = sql(&g, &t, "select pg_backend_pid()");
    assert_eq!(sql(&g, &t, "select pg_backend_pid()"), first, "not reused");
    g.cluster().restart();
    // The pooled connection died with the old server: replaced at checkout.
    for _ in 0..3 {
        let (ok, out, err) = g.psql(&t, "select 'after restart'");
        assert!(ok, "{err}\n{}", g.gw.log_text());
        assert_eq!(out, "after restart");
    }
}

#[test]
fn cancel_through_a_pooled_connection_cancels_the_callers_query_only() {
    let _s = SERVER.read().unwrap();
    let g = pooled("cancel", "size = 2\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    // Warm the pool: both sleepers below may run on reused connections.
    sql(&g, &t, "select 1");
    let a = g.psql_running(&t, "select pg_sleep(60)");
    let b = g.psql_running(&t, "select pg_sleep(61)");
    let ok = Command::new("kill")
        .args(["-INT", &a.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    // The other caller's query still runs.
    assert_eq!(
        g.direct("select count(*) from pg_stat_activity where query = 'select pg_sleep(61)'"),
        "1"
    );
    let ok = Command::new("kill")
        .args(["-INT", &b.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let _ = b.wait_with_output();
}

#[test]
fn a_full_pool_answers_53300_after_the_checkout_timeout() {
    let _s = SERVER.read().unwrap();
    let g = pooled("full", "size = 1\ncheckout_timeout = \"1s\"\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    let mut busy = g.psql_running(&t, "select pg_sleep(60)");
    let (_, msgs) = common::pgwire::Wire::login(g.port, &g.db, &t);
    let e = common::pgwire::error_of(&msgs).unwrap_or_else(|| panic!("no error: {msgs:?}"));
    assert_eq!(e.field(b'C').as_deref(), Some("53300"), "{msgs:?}");
    assert!(
        e.field(b'M')
            .unwrap()
            .contains("no upstream connection came free"),
        "{msgs:?}"
    );
    busy.kill().unwrap();
    let _ = busy.wait();
    // The connection of the killed caller (mid-query) is closed, not reused;
    // room for a new one.
    assert_eq!(sql(&g, &t, "select 1"), "1");
}
