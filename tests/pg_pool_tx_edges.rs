//! End-to-end: the transaction-mode pool's harder cases on a real
//! PostgreSQL 15 — psycopg's pipeline mode and pgjdbc's batches over a
//! small pool, session state set where the statement text does not show
//! it (a `DO` block, a function) caught by the release check, the pool's
//! metrics, a 20 MB result over client TLS through a pool of one shared
//! with another caller, and an upstream restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../src/metrics/checker.rs"]
#[allow(dead_code)]
mod checker;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::RwLock;
use std::time::Duration;

use common::pg::restartable_cluster;
use common::pggw::PgGateway;
use common::pki::Ca;

/// The restart test takes the server exclusively; the others share it.
static SERVER: RwLock<()> = RwLock::new(());

fn pooled(name: &str, pool: &str, shards: usize) -> PgGateway {
    restartable_cluster();
    PgGateway::builder()
        .shards(shards)
        .tables(&format!(
            "[target.postgres.pool]\nmode = \"transaction\"\n{pool}"
        ))
        .start(name)
}

fn url(g: &PgGateway, t: &str) -> String {
    format!("postgresql://ci-job:{t}@127.0.0.1:{}/{}", g.port, g.db)
}

fn psql_ok(g: &PgGateway, t: &str, q: &str) -> String {
    let (ok, out, err) = g.psql(t, q);
    assert!(ok, "{q}: {err}\n{}", g.gw.log_text());
    out
}

#[test]
fn psycopg_pipelines_from_twenty_connections_share_a_pool_of_two() {
    let _s = SERVER.read().unwrap();
    let g = pooled("txpipe", "size = 2\ncheckout_timeout = \"10s\"\n", 1);
    g.direct(&format!(
        "create table piped (caller int, round int); alter table piped owner to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    // Each connection: pipelines of prepared statements (results fetched
    // after the pipeline's Sync), one in autocommit and one inside an
    // explicit transaction (BEGIN and COMMIT in the pipeline too).
    let out = common::python(
        "import asyncio, sys, psycopg\n\
         async def one(i):\n\
         \x20   async with await psycopg.AsyncConnection.connect(sys.argv[1], prepare_threshold=0, autocommit=True) as c:\n\
         \x20       got = []\n\
         \x20       for rnd in range(3):\n\
         \x20           async with c.pipeline():\n\
         \x20               curs = [await c.execute('select %s::int * %s::int', (i, k)) for k in range(5)]\n\
         \x20               await c.execute('insert into piped values (%s, %s)', (i, rnd))\n\
         \x20           for cur in curs:\n\
         \x20               got.append((await cur.fetchone())[0])\n\
         \x20       async with c.pipeline():\n\
         \x20           async with c.transaction():\n\
         \x20               await c.execute('insert into piped values (%s, %s)', (i, 3))\n\
         \x20               cur = await c.execute('select count(*) from piped where caller = %s', (i,))\n\
         \x20           n = (await cur.fetchone())[0]\n\
         \x20       return got, n\n\
         async def main():\n\
         \x20   rs = await asyncio.gather(*[one(i) for i in range(20)])\n\
         \x20   for i, (got, n) in enumerate(rs):\n\
         \x20       assert got == [i * k for k in range(5)] * 3, (i, got)\n\
         \x20       assert n == 4, (i, n)\n\
         \x20   print('pipelines ok', len(rs))\n\
         asyncio.run(main())\n",
        &[&url(&g, &t)],
    );
    assert_eq!(out, "pipelines ok 20", "{}", g.gw.log_text());
    assert_eq!(g.direct("select count(*) from piped"), "80");
}

#[test]
fn pgjdbc_batches_and_server_prepared_statements_over_a_pool_of_two() {
    let _s = SERVER.read().unwrap();
    let jar = Path::new("/usr/share/java/postgresql.jar");
    assert!(
        jar.exists(),
        "pgjdbc missing: tests/deps.sh installs libpostgresql-jdbc-java"
    );
    let g = pooled("txjdbc", "size = 2\ncheckout_timeout = \"60s\"\n", 1);
    g.direct(&format!(
        "create table jdbc_rows (caller int, n int); alter table jdbc_rows owner to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/PgjdbcTx.java");
    let out = Command::new("java")
        .arg("-cp")
        .arg(jar)
        .arg(program)
        .arg(format!("jdbc:postgresql://127.0.0.1:{}/{}", g.port, g.db))
        .args(["ci-job", &t, "12"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        g.gw.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pgjdbc ok 12");
    assert_eq!(g.direct("select count(*) from jdbc_rows"), "2400");
}

#[test]
fn session_state_set_inside_functions_never_reaches_the_next_caller() {
    let _s = SERVER.read().unwrap();
    // One server connection: every caller gets the same one, unless it
    // was closed.
    let g = pooled("txhidden", "size = 1\n", 1);
    g.direct(
        "create function mk_temp() returns void language plpgsql as \
           $$ begin create temp table sneaky (x int); end $$; \
         create function take_lock() returns void language plpgsql as \
           $$ begin perform pg_advisory_lock(4242); end $$",
    );
    let t = g.token("ci-job", "ci", "10m");
    let pid = |g: &PgGateway| psql_ok(g, &t, "select pg_backend_pid()");
    // A clean connection is kept across callers.
    let first = pid(&g);
    assert_eq!(pid(&g), first, "a clean connection was not reused");

    // search_path set for the session inside a DO block (the statement's
    // text shows a string only): the next caller sees the default.
    psql_ok(
        &g,
        &t,
        "DO $$ begin perform set_config('search_path', 'evil', false); end $$",
    );
    assert_eq!(psql_ok(&g, &t, "show search_path"), "\"$user\", public");
    // A reported setting (TimeZone) changed the same way: found, and the
    // connection closed.
    let before = pid(&g);
    psql_ok(
        &g,
        &t,
        "DO $$ begin perform set_config('TimeZone', 'Asia/Tokyo', false); end $$",
    );
    let (tz, after) = two(&psql_ok(
        &g,
        &t,
        "select current_setting('TimeZone'), pg_backend_pid()",
    ));
    assert_ne!(tz, "Asia/Tokyo");
    assert_ne!(
        after, before,
        "the connection that changed TimeZone was reused"
    );

    // A temporary table made inside a function.
    let before = pid(&g);
    psql_ok(&g, &t, "select mk_temp()");
    let (gone, after) = two(&psql_ok(
        &g,
        &t,
        "select to_regclass('pg_temp.sneaky') is null, pg_backend_pid()",
    ));
    assert_eq!(gone, "t", "the temporary table reached the next caller");
    assert_ne!(after, before);

    // A session advisory lock taken inside a function: the connection is
    // closed, so the server lets the lock go.
    psql_ok(&g, &t, "select take_lock()");
    assert_eventually!(
        g.direct("select count(*) from pg_locks where locktype = 'advisory'") == "0",
        Duration::from_secs(10),
        "the advisory lock outlived the caller's transaction"
    );
    assert_eq!(
        psql_ok(&g, &t, "select pg_try_advisory_xact_lock(4242)"),
        "t"
    );

    // Each find is logged with what was found.
    let found: Vec<String> = g
        .gw
        .log_events("transaction mode: a server connection kept session state after a transaction; closed, not reused")
        .iter()
        .map(|e| e["found"].as_str().unwrap_or_default().to_string())
        .collect();
    for what in ["setting:TimeZone", "temporary_namespace", "advisory_locks"] {
        assert!(
            found.iter().any(|f| f.contains(what)),
            "{what} not logged: {found:?}"
        );
    }
}

fn two(out: &str) -> (String, String) {
    let mut it = out.split('|');
    (
        it.next().unwrap_or_default().to_string(),
        it.next().unwrap_or_default().to_string(),
    )
}

/// `/metrics` checked by the format checker: every series with its value.
fn metrics(g: &PgGateway) -> (String, HashMap<String, f64>) {
    let text = ureq::get(format!("http://127.0.0.1:{}/metrics", g.gw.admin_port))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let series = checker::check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, series)
}

fn pool_series(m: &HashMap<String, f64>, g: &PgGateway, family: &str, extra: &str) -> f64 {
    m.get(&format!(
        "{family}{{target=\"{}\",shard=\"0\"{extra}}}",
        g.db
    ))
    .copied()
    .unwrap_or(0.0)
}

#[test]
fn the_pools_counters_on_the_metrics_endpoint_follow_the_traffic() {
    let _s = SERVER.read().unwrap();
    let g = pooled("txmetrics", "size = 1\ncheckout_timeout = \"1s\"\n", 1);
    g.direct(
        "create function take_lock2() returns void language plpgsql as \
           $$ begin perform pg_advisory_lock(77); end $$",
    );
    let t = g.token("ci-job", "ci", "10m");
    let (_, m0) = metrics(&g);
    let c = |m: &HashMap<String, f64>, f: &str| pool_series(m, &g, f, "");
    // Five sessions of one statement each: a checkout for the greeting
    // and one for the statement, all on one connection.
    for _ in 0..5 {
        psql_ok(&g, &t, "select 1");
    }
    // A statement prepared on the connection, then the connection closed
    // as dirty by another caller's function, then the statement run again:
    // prepared anew on the new connection.
    let out = common::python(
        "import sys, subprocess, psycopg\n\
         with psycopg.connect(sys.argv[1], prepare_threshold=0, autocommit=True) as c:\n\
         \x20   assert c.execute('select %s::int', (1,)).fetchone()[0] == 1\n\
         \x20   with psycopg.connect(sys.argv[1], autocommit=True) as d:\n\
         \x20       d.execute('select take_lock2()')\n\
         \x20   assert c.execute('select %s::int', (2,)).fetchone()[0] == 2\n\
         print('ok')\n",
        &[&url(&g, &t)],
    );
    assert_eq!(out, "ok");
    // A caller held up by another's transaction: it waits, then times out.
    let mut holder = g.psql_running(&t, "begin; select pg_sleep(30)");
    let (ok, _, err) = g.psql(&t, "select 1");
    assert!(
        !ok && err.contains("no upstream connection came free"),
        "{err}"
    );
    holder.kill().unwrap();
    let _ = holder.wait();
    // The holder left with its answer still to come: the gateway waits for
    // it (10 s at most), then closes the connection, which was not idle.
    assert_eventually!(
        {
            let (_, m) = metrics(&g);
            pool_series(&m, &g, "tollgate_pool_connections", ",state=\"in_use\"") == 0.0
        },
        Duration::from_secs(20),
        "the holder's connection is still in use"
    );
    psql_ok(&g, &t, "select 1");
    assert_eventually!(
        {
            let (_, m) = metrics(&g);
            pool_series(&m, &g, "tollgate_pool_connections", ",state=\"in_use\"") == 0.0
                && pool_series(&m, &g, "tollgate_pool_connections", ",state=\"idle\"") == 1.0
        },
        Duration::from_secs(10),
        "the pool's gauges do not settle at one idle connection"
    );
    let (text, m) = metrics(&g);
    let moved = |f: &str| c(&m, f) - c(&m0, f);
    // 5 psql sessions (2 each), the two psycopg sessions (greeting, 2 and
    // 1 transactions), the holder (2), the refused one (1), the last (2).
    assert!(moved("tollgate_pool_checkouts_total") >= 10.0 + 5.0 + 2.0 + 1.0 + 2.0);
    assert_eq!(moved("tollgate_pool_dirty_total"), 1.0, "{text}");
    assert_eq!(moved("tollgate_pool_reprepares_total"), 1.0, "{text}");
    assert!(moved("tollgate_pool_waits_total") >= 1.0, "{text}");
    assert_eq!(moved("tollgate_pool_timeouts_total"), 1.0, "{text}");
    // Connections are keyed by start-up parameters, and psycopg's differ
    // from psql's: psql's first (opened 1); psycopg's, in its place (the
    // idle psql one closed to make room: opened 2, closed 1); closed as
    // dirty (closed 2); psycopg's next (opened 3); the holder's psql one in
    // its place (opened 4, closed 3); closed when the holder left
    // mid-transaction (closed 4); the last caller's (opened 5).
    assert_eq!(
        moved("tollgate_pool_connections_opened_total"),
        5.0,
        "{text}"
    );
    assert_eq!(
        moved("tollgate_pool_connections_closed_total"),
        4.0,
        "{text}"
    );
    // Labels name the target and the shard, nothing of a caller or secret.
    assert!(!text.contains(&t) && !text.contains(&g.password));
    for line in text.lines().filter(|l| l.starts_with("tollgate_pool_")) {
        assert!(!line.contains("ci-job"), "{line}");
    }
}

#[test]
fn a_twenty_megabyte_result_over_client_tls_through_a_pool_of_one_shared_with_another_caller() {
    let _s = SERVER.read().unwrap();
    restartable_cluster();
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "gw-ca");
    let (cert, key) = ca.server(pki.path(), "gateway");
    let g = PgGateway::builder()
        .shards(1)
        .target("allow_plaintext = false")
        .tables(&format!(
            "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
             [target.postgres.pool]\nmode = \"transaction\"\nsize = 1\ncheckout_timeout = \"120s\"\n",
            cert.display(),
            key.display()
        ))
        .start("txtlsbig");
    let t = g.token("ci-job", "ci", "30m");
    let dsn = format!(
        "host=127.0.0.1 port={} dbname={} user=ci-job password={t} sslmode=verify-ca sslrootcert={} connect_timeout=10",
        g.port,
        g.db,
        ca.cert.display()
    );
    // The big reader and a small one at once, each over TLS; both use the
    // one server connection in turn.
    let out = common::python(
        "import asyncio, hashlib, sys, psycopg\n\
         async def big():\n\
         \x20   async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20       pid = (await (await c.execute('select pg_backend_pid()')).fetchone())[0]\n\
         \x20       cur = await c.execute(\"select i, md5(i::text) || repeat('y', 968) from generate_series(1, 20000) i\")\n\
         \x20       rows = await cur.fetchall()\n\
         \x20       size = 0\n\
         \x20       for i, v in rows:\n\
         \x20           assert v == hashlib.md5(str(i).encode()).hexdigest() + 'y' * 968, i\n\
         \x20           size += len(v)\n\
         \x20       assert len(rows) == 20000\n\
         \x20       return pid, size\n\
         async def small():\n\
         \x20   async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20       pids = set()\n\
         \x20       for n in range(30):\n\
         \x20           async with c.transaction():\n\
         \x20               r = await (await c.execute('select %s::int + 1, pg_backend_pid()', (n,))).fetchone()\n\
         \x20               assert r[0] == n + 1\n\
         \x20               pids.add(r[1])\n\
         \x20       return pids\n\
         async def main():\n\
         \x20   (pid, size), pids = await asyncio.gather(big(), small())\n\
         \x20   assert pids == {pid}, (pid, pids)\n\
         \x20   print('tls ok', size)\n\
         asyncio.run(main())\n",
        &[&dsn],
    );
    assert_eq!(out, "tls ok 20000000", "{}", g.gw.log_text());
}

#[test]
fn sessions_open_across_an_upstream_restart_go_on_with_new_connections() {
    let _s = SERVER.write().unwrap();
    let g = pooled("txrestart", "size = 2\n", 1);
    let t = g.token("ci-job", "ci", "10m");
    // Sessions opened before the restart, idle between transactions (so
    // holding no server connection), run their next transaction after it.
    let mut child = Command::new(common::python_bin())
        .arg("-c")
        .arg(
            "import sys, psycopg\n\
             cs = [psycopg.connect(sys.argv[1], prepare_threshold=0, autocommit=True) for _ in range(3)]\n\
             before = [c.execute('select %s::int, pg_backend_pid()', (7,)).fetchone() for c in cs]\n\
             print(' '.join(str(p) for _, p in before), flush=True)\n\
             sys.stdin.readline()\n\
             after = [c.execute('select %s::int, pg_backend_pid()', (8,)).fetchone() for c in cs]\n\
             assert [v for v, _ in after] == [8, 8, 8], after\n\
             print(' '.join(str(p) for _, p in after), flush=True)\n",
        )
        .arg(url(&g, &t))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let before: Vec<String> = line.split_whitespace().map(String::from).collect();
    assert_eq!(before.len(), 3, "{line}");
    g.cluster().restart();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(out.status.success(), "{rest}\n{}", g.gw.log_text());
    let after: Vec<&str> = rest.split_whitespace().collect();
    assert_eq!(after.len(), 3, "{rest}");
    for p in &after {
        assert!(
            !before.iter().any(|b| b == p),
            "a backend from before the restart: {p}"
        );
    }
    // New sessions too.
    assert_eq!(psql_ok(&g, &t, "select 'after restart'"), "after restart");
}
