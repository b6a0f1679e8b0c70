//! End-to-end: the upstream pool in transaction mode
//! (`[target.postgres.pool] mode = "transaction"`) on a real PostgreSQL 15:
//! many callers over few server connections, named prepared statements
//! re-prepared per server connection (pgbench -M prepared, tokio-postgres,
//! psycopg, asyncpg), session state refused and never visible to another
//! caller, masking of re-prepared statements, cancel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::pg::restartable_cluster;
use common::pggw::PgGateway;

fn pooled(name: &str, pool: &str, shards: usize, extra: &str) -> PgGateway {
    restartable_cluster();
    PgGateway::builder()
        .shards(shards)
        .tables(&format!(
            "[target.postgres.pool]\nmode = \"transaction\"\n{pool}{extra}"
        ))
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

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// The most backends seen while `f` runs.
fn most_backends_during(g: &PgGateway, f: impl FnOnce()) -> usize {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut most = 0;
            while !done.load(Ordering::SeqCst) {
                most = most.max(backends(g));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        f();
        done.store(true, Ordering::SeqCst);
        h.join().unwrap()
    })
}

#[test]
fn two_hundred_open_sessions_run_transactions_over_four_connections() {
    let g = pooled("tx200", "size = 4\ncheckout_timeout = \"60s\"\n", 2, "");
    let t = g.token("ci-job", "ci", "10m");
    g.direct(&format!(
        "create table ledger (caller int, n int); alter table ledger owner to {}",
        g.role
    ));
    let conninfo = Arc::new(g.conninfo(&t));
    let connected = Arc::new(AtomicUsize::new(0));
    let most = most_backends_during(&g, || {
        local(async {
            let mut clients = Vec::new();
            // All 200 sessions open before any runs a transaction.
            for i in 0..200 {
                let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| panic!("session {i}: {e}"));
                tokio::task::spawn_local(conn);
                connected.fetch_add(1, Ordering::SeqCst);
                clients.push(client);
            }
            let mut tasks = Vec::new();
            for (i, mut client) in clients.into_iter().enumerate() {
                tasks.push(tokio::task::spawn_local(async move {
                    let i = i as i32;
                    for n in 0..5 {
                        // A named statement (tokio-postgres prepares one
                        // per query) inside an explicit transaction.
                        let tx = client.transaction().await.unwrap();
                        tx.execute("insert into ledger values ($1, $2)", &[&i, &n])
                            .await
                            .unwrap();
                        let row = tx
                            .query_one("select count(*)::int from ledger where caller = $1", &[&i])
                            .await
                            .unwrap();
                        assert_eq!(row.get::<_, i32>(0), n + 1, "caller {i}");
                        tx.commit().await.unwrap();
                        // And one outside a transaction block.
                        let row = client.query_one("select $1::int * 2", &[&i]).await.unwrap();
                        assert_eq!(row.get::<_, i32>(0), i * 2);
                    }
                    client
                }));
            }
            let mut open = Vec::new();
            for t in tasks {
                open.push(t.await.unwrap());
            }
            // Still 200 live sessions at the end.
            assert_eq!(open.len(), 200);
            for c in &open {
                assert_eq!(
                    c.query_one("select 1", &[]).await.unwrap().get::<_, i32>(0),
                    1
                );
            }
        });
    });
    assert_eq!(connected.load(Ordering::SeqCst), 200);
    assert!(most <= 4, "{most} backends seen at once");
    assert_eq!(g.direct("select count(*) from ledger"), "1000");
    assert!(backends(&g) <= 4);
}

fn pgbench(g: &PgGateway, t: &str, args: &[&str]) -> String {
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &g.port.to_string(), "-U", "ci-job"])
        .args(args)
        .arg(&g.db)
        .env("PGPASSWORD", t)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pgbench {args:?}: {text}\n{}",
        g.gw.log_text()
    );
    text
}

#[test]
fn pgbench_prepared_and_extended_with_more_clients_than_connections() {
    let g = pooled("txbench", "size = 4\ncheckout_timeout = \"60s\"\n", 2, "");
    let t = g.token("ci-job", "ci", "10m");
    pgbench(&g, &t, &["-i", "-s", "1", "-q"]);
    let before = g.server_logins();
    for (mode, threads) in [("prepared", "16"), ("extended", "4"), ("simple", "4")] {
        // The TPC-B-like default script: BEGIN, 3 UPDATEs, SELECT, INSERT,
        // END; 16 clients over 4 server connections. pgbench prepares a
        // client's statements with a synchronous PQprepare that blocks its
        // whole thread: with clients sharing threads, one waiting for a
        // connection there holds up those whose commit would free one
        // (against any transaction pool), so -M prepared gets a thread per
        // client.
        let out = pgbench(
            &g,
            &t,
            &["-M", mode, "-c", "16", "-j", threads, "-t", "50", "-n"],
        );
        assert!(
            out.contains("number of transactions actually processed: 800/800"),
            "{mode}: {out}"
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
    // Every transaction's history row is there, and the balances add up.
    assert_eq!(g.direct("select count(*) from pgbench_history"), "2400");
    assert_eq!(
        g.direct(
            "select (select sum(abalance) from pgbench_accounts) = \
             (select sum(delta) from pgbench_history)"
        ),
        "t"
    );
    let logins = g.server_logins() - before;
    assert!(logins <= 4, "{logins} upstream logins");
    let out = pgbench(
        &g,
        &t,
        &[
            "-M", "prepared", "-S", "-c", "8", "-j", "8", "-t", "50", "-n",
        ],
    );
    assert!(out.contains("actually processed: 400/400"), "{out}");
    // A new connection per transaction too.
    let out = pgbench(
        &g,
        &t,
        &["-C", "-S", "-c", "4", "-j", "4", "-t", "50", "-n"],
    );
    assert!(out.contains("actually processed: 200/200"), "{out}");
}

#[test]
fn psycopg_and_asyncpg_prepared_statements_over_a_small_pool() {
    let g = pooled("txpy", "size = 2\ncheckout_timeout = \"60s\"\n", 1, "");
    let t = g.token("ci-job", "ci", "10m");
    let url = format!("postgresql://ci-job:{t}@127.0.0.1:{}/{}", g.port, g.db);
    // psycopg 3: every statement prepared server-side (prepare_threshold=0),
    // 20 async connections at once. (Pipeline mode over a small pool:
    // tests/pg_pool_tx_edges.rs.)
    let out = common::python(
        "import asyncio, sys, psycopg\n\
         async def one(i):\n\
         \x20   async with await psycopg.AsyncConnection.connect(sys.argv[1], prepare_threshold=0, autocommit=True) as c:\n\
         \x20       total = 0\n\
         \x20       for n in range(10):\n\
         \x20           async with c.transaction():\n\
         \x20               cur = await c.execute('select %s::int + %s::int', (i, n))\n\
         \x20               total += (await cur.fetchone())[0]\n\
         \x20       piped = [(await (await c.execute('select %s::int * 3', (k,))).fetchone())[0] for k in range(5)]\n\
         \x20       return total, piped\n\
         async def main():\n\
         \x20   rs = await asyncio.gather(*[one(i) for i in range(20)])\n\
         \x20   for i, (total, piped) in enumerate(rs):\n\
         \x20       assert total == 10 * i + 45, (i, total)\n\
         \x20       assert piped == [0, 3, 6, 9, 12], piped\n\
         \x20   print('psycopg ok', len(rs))\n\
         asyncio.run(main())\n",
        &[&url],
    );
    assert_eq!(out, "psycopg ok 20");
    // asyncpg: its statement cache (named statements), 30 connections,
    // many concurrent tasks.
    let out = common::python(
        "import asyncio, sys, asyncpg\n\
         async def one(i):\n\
         \x20   c = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   got = []\n\
         \x20   for n in range(10):\n\
         \x20       got.append(await c.fetchval('select $1::int + $2::int', i, n))\n\
         \x20       async with c.transaction():\n\
         \x20           got.append(await c.fetchval('select $1::int * 2', n))\n\
         \x20   st = await c.prepare('select generate_series(1, $1::int)')\n\
         \x20   rows = await st.fetch(3)\n\
         \x20   await c.close()\n\
         \x20   return got, [r[0] for r in rows]\n\
         async def main():\n\
         \x20   rs = await asyncio.gather(*[one(i) for i in range(30)])\n\
         \x20   for i, (got, series) in enumerate(rs):\n\
         \x20       want = []\n\
         \x20       for n in range(10):\n\
         \x20           want += [i + n, n * 2]\n\
         \x20       assert got == want, (i, got)\n\
         \x20       assert series == [1, 2, 3], series\n\
         \x20   print('asyncpg ok', len(rs))\n\
         asyncio.run(main())\n",
        &[&url],
    );
    assert_eq!(out, "asyncpg ok 30");
    assert!(backends(&g) <= 2);
}

/// psql -c through the gateway: (ok, stdout, stderr).
fn psql(g: &PgGateway, t: &str, q: &str) -> (bool, String, String) {
    g.psql(t, q)
}

#[test]
fn session_state_is_refused_and_never_reaches_another_caller() {
    // One connection: every caller surely gets the same one.
    let g = pooled("txleak", "size = 1\n", 1, "");
    let t = g.token("ci-job", "ci", "10m");
    for q in [
        "set work_mem = '7MB'",
        "create temp table mine (x int)",
        "select pg_advisory_lock(42)",
        "listen chan",
        "prepare p as select 1",
        "declare c cursor with hold for select 1",
        "select set_config('work_mem', '7MB', false)",
        "discard all",
    ] {
        let (ok, _, err) = psql(&g, &t, q);
        assert!(!ok, "{q} ran");
        assert!(err.contains("transaction mode"), "{q}: {err}");
    }
    for q in [
        "set role postgres",
        "set session authorization postgres",
        "set local role postgres",
    ] {
        let (ok, _, err) = psql(&g, &t, &format!("begin; {q}; commit"));
        assert!(!ok, "{q} ran");
        assert!(
            err.contains("transaction mode") && err.contains("ROLE")
                || err.contains("AUTHORIZATION"),
            "{q}: {err}"
        );
    }
    // Transaction-scoped state is fine and ends with the transaction.
    let (ok, out, err) = psql(
        &g,
        &t,
        "begin; set local work_mem = '9MB'; select pg_advisory_xact_lock(7); \
         select current_setting('work_mem'); commit",
    );
    assert!(ok, "{err}");
    assert!(out.contains("9MB"), "{out}");
    // The next caller on the same server connection sees none of it.
    let (ok, out, err) = psql(
        &g,
        &t,
        "select current_setting('work_mem'), to_regclass('pg_temp.mine') is null, \
         (select count(*) from pg_prepared_statements where not from_sql), \
         (select count(*) from pg_prepared_statements where from_sql), \
         (select count(*) from pg_listening_channels())",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "4MB|t|0|0|0", "state leaked");
    assert_eq!(
        g.direct("select count(*) from pg_locks where locktype = 'advisory'"),
        "0"
    );
    assert_eq!(
        g.direct(&format!(
            "select count(*) from pg_stat_activity where usename = '{}' and state <> 'idle'",
            g.role
        )),
        "0"
    );
}

#[test]
fn masking_applies_to_a_statement_re_prepared_on_another_connection() {
    let g = pooled(
        "txmask",
        "size = 2\n",
        1,
        "[[target.masking.rules]]\nname = \"ssn-column\"\ncolumns = [\"ssn\"]\nstyle = \"partial\"\nkeep = 4\n",
    );
    g.direct(&format!(
        "create table customers (id int, ssn text);
         insert into customers values (1, '123-45-6789');
         alter table customers owner to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    let url = format!("postgresql://ci-job:{t}@127.0.0.1:{}/{}", g.port, g.db);
    // A prepares and runs on one connection; B then holds that one in a
    // transaction, so A's next run is on the other: a re-prepare.
    let out = common::python(
        "import asyncio, sys, asyncpg\n\
         async def main():\n\
         \x20   a = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   b = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   q = 'select ssn from customers where id = $1'\n\
         \x20   pid = 'select pg_backend_pid()'\n\
         \x20   first = await a.fetchval(q, 1)\n\
         \x20   p1 = await a.fetchval(pid)\n\
         \x20   tr = b.transaction()\n\
         \x20   await tr.start()\n\
         \x20   held = await b.fetchval(pid)\n\
         \x20   second = await a.fetchval(q, 1)\n\
         \x20   p2 = await a.fetchval(pid)\n\
         \x20   await tr.commit()\n\
         \x20   print(first, second, p1, held, p2)\n\
         asyncio.run(main())\n",
        &[&url],
    );
    let f: Vec<&str> = out.split(' ').collect();
    assert_eq!(f.len(), 5, "{out}");
    assert_eq!(f[..2], ["***-**-6789", "***-**-6789"], "{out}");
    // B held A's first connection (in a transaction) while A ran its
    // statement again: on the other connection, prepared there anew.
    assert_eq!(f[2], f[3], "{out}");
    assert_ne!(f[2], f[4], "{out}");
}

#[test]
fn cancel_reaches_the_connection_running_the_callers_query() {
    let g = pooled("txcancel", "size = 3\n", 1, "");
    let t = g.token("ci-job", "ci", "10m");
    let a = g.psql_running(&t, "select pg_sleep(60)");
    let b = g.psql_running(&t, "select pg_sleep(61)");
    // Callers between transactions hold nothing: a third keeps running.
    let (ok, out, err) = psql(&g, &t, "select 'third'");
    assert!(ok && out == "third", "{err}");
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
    assert_eq!(
        g.direct("select count(*) from pg_stat_activity where query = 'select pg_sleep(61)'"),
        "1",
        "the other caller's query was cancelled"
    );
    let ok = Command::new("kill")
        .args(["-INT", &b.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = b.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("canceling statement"));
}

#[test]
fn a_caller_leaving_mid_transaction_closes_its_connection_and_the_server_rolls_back() {
    let g = pooled("txmid", "size = 1\n", 1, "");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, _, err) = psql(&g, &t, "create table kept (x int)");
    assert!(ok, "{err}");
    let (ok, out, err) = psql(
        &g,
        &t,
        "begin; insert into kept values (1); select pg_backend_pid()",
    );
    assert!(ok, "{err}");
    let pid = out.lines().last().unwrap().to_string();
    assert_eventually!(
        g.direct(&format!(
            "select count(*) from pg_stat_activity where pid = {pid}"
        )) == "0",
        Duration::from_secs(10),
        "backend {pid} of a session left mid-transaction still lives"
    );
    assert_eq!(g.direct("select count(*) from kept"), "0");
    let (ok, out, err) = psql(&g, &t, "select 1");
    assert!(ok && out == "1", "{err}");
}
