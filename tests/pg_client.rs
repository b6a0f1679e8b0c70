//! End-to-end tests of what a PostgreSQL client can send besides plain
//! statements: pipelined lexical-mode changes (simple and extended protocol,
//! psycopg pipeline mode), fast-path function calls (large objects through
//! psql, psycopg2, pg_dump/pg_restore), syntax errors (the server's 42601 with
//! its position, never a run of an unclassifiable statement) and client
//! encodings that can hide a backslash. Every check reads the server's state
//! directly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{BufMut, BytesMut};
use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire, error_of};
use common::*;
use tollgate_codecs::pg;

const POLICY: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_table", "truncate", "delete_without_where", "update_without_where"]
"#;

/// Large objects allowed by name; dropping (lo_unlink counts) is not.
const LO_POLICY: &str = r#"
[[target.policy.rules]]
name = "no-drops"
action = "block"
message = "dropping is not allowed through tollgate"
classes = ["drop"]

[[target.policy.rules]]
name = "large-objects"
action = "allow"
functions = ["lo_*"]
"#;

fn setup(name: &str, policy: &str) -> PgGateway {
    let g = PgGateway::builder().tables(policy).start(name);
    reset_table(&g);
    g
}

/// `t` with three rows, owned by the target's role.
fn reset_table(g: &PgGateway) {
    g.direct(&format!(
        "drop table if exists t; create table t (id int);
         insert into t values (1), (2), (3); alter table t owner to {}",
        g.role
    ));
}

/// Rows in `t`, or a note that it is gone.
fn rows(g: &PgGateway) -> String {
    g.cluster()
        .try_sql(&g.db, "select count(*) from t")
        .unwrap_or_else(|| "table t dropped".into())
}

fn query_bytes(b: &mut BytesMut, sql: &[u8]) {
    pg::encode_query(b, sql).unwrap();
}

fn extended_bytes(b: &mut BytesMut, sql: &[u8], sync: bool) {
    pg::encode_parse(b, b"", sql, &[]).unwrap();
    pg::encode_bind(b, b"", b"", &[], std::iter::empty(), &[]).unwrap();
    pg::encode_execute(b, b"", 0).unwrap();
    if sync {
        pg::encode_sync(b);
    }
}

/// Send `bytes` in one write and read `readies` ReadyForQuery messages.
fn exchange(w: &mut Wire, bytes: &[u8], readies: usize) -> Vec<Msg> {
    w.send_raw(bytes);
    let mut all = Vec::new();
    for _ in 0..readies {
        let got = w.until_ready();
        let closed = got.last().is_none_or(|m| m.tag != b'Z');
        all.extend(got);
        if closed {
            break;
        }
    }
    all
}

/// The session still answers a query.
fn alive(w: &mut Wire) -> bool {
    let mut b = BytesMut::new();
    query_bytes(&mut b, b"select 'alive'");
    let msgs = exchange(w, &b, 1);
    msgs.iter()
        .any(|m| m.tag == b'D' && m.body.windows(5).any(|x| x == b"alive"))
}

fn login(g: &PgGateway) -> Wire {
    let t = g.token("ci-job", "ci", "10m");
    let (w, msgs) = Wire::login(g.port, &g.db, &t);
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
    w
}

/// Gateway reads `on`, server reads `off`: under off the `\'` keeps the
/// first string open, so `DROP TABLE t` is outside any literal.
const ATTACK_OFF: &[u8] = br"SELECT 'a\' , $$'; DROP TABLE t; --$$";
/// Gateway reads `off`, server reads `on`.
const ATTACK_ON: &[u8] = br"SELECT 'a\' ; DROP TABLE t; -- '";
/// One statement (extended protocol): under off a data-modifying CTE
/// deletes every row; under on it is a SELECT of two literals.
const EXT_ATTACK_OFF: &[u8] =
    br"WITH x AS (SELECT 'a\' , $$') , d AS (DELETE FROM t RETURNING 1) SELECT 1 --$$) SELECT 1";
/// The same for a server that reads `on` where the gateway reads `off`.
const EXT_ATTACK_ON: &[u8] =
    br"WITH x AS (SELECT 'a\') , d AS (DELETE FROM t RETURNING 1) SELECT 1 --') SELECT 1";

/// Writes one pipeline; returns how many ReadyForQuery it will produce.
type Pipeline = Box<dyn Fn(&mut BytesMut) -> usize>;
/// A pipelined case: name, statements answered first, the pipeline.
type Case = (&'static str, Vec<&'static [u8]>, Pipeline);

/// One statement: under SJIS `\x95\x5c` is one character and the literal
/// ends before `)`, so the CTE deletes; read byte by byte `\'` continues it.
const EXT_ATTACK_SJIS: &[u8] =
    b"WITH x AS (SELECT E'\x95\x5c') , d AS (DELETE FROM t RETURNING 1) SELECT 1 --') SELECT 1";

/// One pipelined case: `settle` runs first (answered), then `pipeline` in
/// one write. Returns a failure description, if any.
fn pipelined_case(
    g: &PgGateway,
    name: &str,
    settle: &[&[u8]],
    pipeline: &dyn Fn(&mut BytesMut) -> usize,
) -> Option<String> {
    reset_table(g);
    let mut w = login(g);
    for sql in settle {
        let mut b = BytesMut::new();
        query_bytes(&mut b, sql);
        let msgs = exchange(&mut w, &b, 1);
        assert!(error_of(&msgs).is_none(), "{name}: settle failed: {msgs:?}");
    }
    let mut b = BytesMut::new();
    let readies = pipeline(&mut b);
    exchange(&mut w, &b, readies);
    let alive = alive(&mut w);
    let rows = rows(g);
    (rows != "3" || !alive).then(|| format!("{name}: rows={rows} alive={alive}"))
}

#[test]
fn pipelined_lexical_mode_changes_cannot_smuggle_statements() {
    let g = setup("lexmode", POLICY);
    let off: &[u8] = b"SET standard_conforming_strings = off";
    let simple = |stmts: Vec<&'static [u8]>| {
        move |b: &mut BytesMut| {
            for s in &stmts {
                query_bytes(b, s);
            }
            stmts.len()
        }
    };
    let cases: Vec<Case> = vec![
        (
            "SET",
            vec![],
            Box::new(simple(vec![
                b"SET standard_conforming_strings = off",
                ATTACK_OFF,
            ])),
        ),
        (
            "set_config",
            vec![],
            Box::new(simple(vec![
                b"SELECT set_config('standard_conforming_strings', 'off', false)",
                ATTACK_OFF,
            ])),
        ),
        (
            "SET LOCAL",
            vec![],
            Box::new(simple(vec![
                b"BEGIN",
                b"SET LOCAL standard_conforming_strings = off",
                ATTACK_OFF,
                b"COMMIT",
            ])),
        ),
        (
            "RESET",
            vec![off],
            Box::new(simple(vec![
                b"RESET standard_conforming_strings",
                ATTACK_ON,
            ])),
        ),
        (
            "SET TO DEFAULT",
            vec![off],
            Box::new(simple(vec![
                b"SET standard_conforming_strings TO DEFAULT",
                ATTACK_ON,
            ])),
        ),
        (
            "ROLLBACK undoes SET LOCAL",
            vec![b"BEGIN", b"SET LOCAL standard_conforming_strings = off"],
            Box::new(simple(vec![b"ROLLBACK", ATTACK_ON])),
        ),
        (
            "DISCARD ALL",
            vec![off],
            Box::new(simple(vec![b"DISCARD ALL", ATTACK_ON])),
        ),
        (
            "backslash_quote then SET",
            vec![],
            Box::new(simple(vec![
                b"SET backslash_quote = on",
                b"SET standard_conforming_strings = off",
                ATTACK_OFF,
            ])),
        ),
        (
            "client_encoding",
            vec![],
            Box::new(simple(vec![
                b"SET client_encoding = 'SJIS'",
                b"SELECT E'\x95\x5c' ; DROP TABLE t; -- '",
            ])),
        ),
        (
            "extended SET, Sync between",
            vec![],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"SET standard_conforming_strings = off", true);
                extended_bytes(b, EXT_ATTACK_OFF, true);
                2
            }),
        ),
        (
            "extended SET, one batch",
            vec![],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"SET standard_conforming_strings = off", false);
                extended_bytes(b, EXT_ATTACK_OFF, true);
                1
            }),
        ),
        (
            "extended set_config",
            vec![],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(
                    b,
                    b"SELECT set_config('standard_conforming_strings', 'off', false)",
                    false,
                );
                extended_bytes(b, EXT_ATTACK_OFF, true);
                1
            }),
        ),
        (
            "extended RESET",
            vec![off],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"RESET standard_conforming_strings", true);
                extended_bytes(b, EXT_ATTACK_ON, true);
                2
            }),
        ),
        (
            "extended SET LOCAL",
            vec![],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"BEGIN", false);
                extended_bytes(b, b"SET LOCAL standard_conforming_strings = off", false);
                extended_bytes(b, EXT_ATTACK_OFF, true);
                extended_bytes(b, b"COMMIT", true);
                2
            }),
        ),
        (
            "extended SET TO DEFAULT",
            vec![off],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"SET standard_conforming_strings TO DEFAULT", true);
                extended_bytes(b, EXT_ATTACK_ON, true);
                2
            }),
        ),
        (
            "extended client_encoding",
            vec![],
            Box::new(|b: &mut BytesMut| {
                extended_bytes(b, b"SET client_encoding = 'SJIS'", false);
                extended_bytes(b, EXT_ATTACK_SJIS, true);
                1
            }),
        ),
        (
            "simple SET then extended",
            vec![],
            Box::new(|b: &mut BytesMut| {
                query_bytes(b, b"SET standard_conforming_strings = off");
                extended_bytes(b, EXT_ATTACK_OFF, true);
                2
            }),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, settle, pipeline)| pipelined_case(&g, name, settle, pipeline))
        .collect();
    assert!(failures.is_empty(), "bypassed: {failures:#?}");
    // Unpipelined, the same statements are judged under the settled mode and
    // a harmless string with a backslash still runs.
    reset_table(&g);
    let mut w = login(&g);
    let mut b = BytesMut::new();
    query_bytes(&mut b, off);
    exchange(&mut w, &b, 1);
    b.clear();
    query_bytes(&mut b, br"SELECT 'C:\\temp' AS path");
    let msgs = exchange(&mut w, &b, 1);
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
    assert_eq!(rows(&g), "3");
}

#[test]
fn psycopg_pipeline_mode_cannot_smuggle_statements() {
    let g = setup("lexpipe", POLICY);
    let t = g.token("ci-job", "ci", "10m");
    let out = python(
        "import psycopg, sys\n\
         attack = sys.argv[2]\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   try:\n\
         \x20       with c.pipeline():\n\
         \x20           c.execute('SET standard_conforming_strings = off')\n\
         \x20           c.execute(attack)\n\
         \x20       print('ran')\n\
         \x20   except psycopg.Error as e:\n\
         \x20       print('refused', e.sqlstate)\n\
         \x20   print(c.execute('select 1').fetchone()[0])\n",
        &[
            &g.conninfo(&t),
            std::str::from_utf8(EXT_ATTACK_OFF).unwrap(),
        ],
    );
    assert_eq!(out, "refused 42501\n1", "{out}");
    assert_eq!(rows(&g), "3");
}

/// A FunctionCall message: `oid` with int4 arguments in binary.
fn function_call(oid: u32, args: &[i32]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u32(oid);
    body.put_i16(1);
    body.put_i16(1);
    body.put_i16(args.len() as i16);
    for a in args {
        body.put_i32(4);
        body.put_i32(*a);
    }
    body.put_i16(1);
    let mut b = BytesMut::new();
    b.put_u8(b'F');
    b.put_u32(body.len() as u32 + 4);
    b.extend_from_slice(&body);
    b
}

#[test]
fn fast_path_oids_are_the_servers() {
    let g = PgGateway::start("fpoids");
    for (oid, name) in tollgate::pg::fastpath::FAST_PATH_FUNCTIONS {
        assert_eq!(
            g.direct(&format!(
                "select proname from pg_proc where oid = {oid} and pronamespace = 'pg_catalog'::regnamespace"
            )),
            *name,
            "oid {oid}"
        );
    }
}

#[test]
fn a_refused_fast_path_call_gets_an_error_and_the_session_goes_on() {
    let g = setup("fpblock", POLICY);
    let mut w = login(&g);
    // lo_creat(-1): refused by the unclassified default.
    let msgs = exchange(&mut w, &function_call(957, &[-1]), 1);
    let e = error_of(&msgs).expect("an error");
    assert_eq!(e.field(b'C').as_deref(), Some("42501"), "{msgs:?}");
    assert!(e.field(b'M').unwrap().contains("lo_creat"), "{msgs:?}");
    assert!(e.field(b'D').unwrap().contains("unclassified"), "{msgs:?}");
    assert_eq!(msgs.last().unwrap().body, b"I");
    assert!(alive(&mut w));
    // Inside a transaction block it aborts the block, as a failed call would.
    let mut b = BytesMut::new();
    query_bytes(&mut b, b"BEGIN");
    exchange(&mut w, &b, 1);
    let msgs = exchange(&mut w, &function_call(957, &[-1]), 1);
    assert_eq!(msgs.last().unwrap().body, b"E", "{msgs:?}");
    b.clear();
    query_bytes(&mut b, b"ROLLBACK");
    exchange(&mut w, &b, 1);
    assert!(alive(&mut w));
    assert_eq!(
        g.direct("select count(*) from pg_largeobject_metadata"),
        "0"
    );

    // psql's \lo_import: a clear error, and the script goes on.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.txt");
    std::fs::write(&file, "large object body").unwrap();
    let t = g.token("ci-job", "ci", "10m");
    let (_, out, err) = g.psql_script(
        &t,
        &format!("\\lo_import {}\nselect 'after';\n", file.display()),
    );
    assert!(out.contains("after"), "{out}\n{err}");
    assert!(
        err.contains("fast-path call of lo_creat is not allowed"),
        "{err}"
    );
    assert_eq!(
        g.direct("select count(*) from pg_largeobject_metadata"),
        "0"
    );
}

#[test]
fn large_objects_through_a_target_that_allows_them() {
    let g = setup("fpallow", LO_POLICY);
    let t = g.token("ci-job", "ci", "10m");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.txt");
    std::fs::write(&file, "large object body").unwrap();
    let (ok, out, err) = g.psql(&t, &format!("\\lo_import {}", file.display()));
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        g.direct("select convert_from(lo_get(oid), 'UTF8') from pg_largeobject_metadata"),
        "large object body"
    );
    let back = dir.path().join("back.txt");
    let oid = g.direct("select oid from pg_largeobject_metadata");
    let (ok, out, err) = g.psql(&t, &format!("\\lo_export {oid} {}", back.display()));
    assert!(ok, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "large object body");

    // psycopg2's lobject: create, write, read; unlink counts as a drop.
    let out = python(
        "import psycopg2, sys\n\
         c = psycopg2.connect(sys.argv[1])\n\
         lo = c.lobject(0, 'wb')\n\
         lo.write(b'from psycopg2')\n\
         oid = lo.oid\n\
         lo.close()\n\
         c.commit()\n\
         print(c.lobject(oid, 'rb').read().decode())\n\
         c.commit()\n\
         try:\n\
         \x20   c.lobject(oid, 'rb').unlink()\n\
         \x20   print('unlinked')\n\
         except psycopg2.Error as e:\n\
         \x20   print('refused:', str(e).splitlines()[0])\n\
         c.rollback()\n\
         print(oid)\n",
        &[&g.conninfo(&t)],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "from psycopg2",
            "refused: ERROR:  dropping is not allowed through tollgate"
        ],
        "{out}"
    );
    assert_eq!(
        g.direct(&format!(
            "select convert_from(lo_get({}), 'UTF8')",
            lines[2]
        )),
        "from psycopg2"
    );

    // pg_dump of a database with large objects, pg_restore of it.
    g.direct("select lo_unlink(oid) from pg_largeobject_metadata");
    let oid = g.direct("select lo_from_bytea(0, 'dumped and restored')");
    g.direct(&format!("alter large object {oid} owner to {}", g.role));
    let dump = dir.path().join("db.dump");
    let conn = |cmd: &mut std::process::Command| {
        cmd.args(["-h", "127.0.0.1", "-p", &g.port.to_string(), "-U", "ci-job"])
            .env("PGPASSWORD", &t)
            .env("PGSSLMODE", "disable");
    };
    let mut cmd = std::process::Command::new("pg_dump");
    conn(&mut cmd);
    let out = cmd
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(&g.db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    g.direct("select lo_unlink(oid) from pg_largeobject_metadata; drop table t");
    let mut cmd = std::process::Command::new("pg_restore");
    conn(&mut cmd);
    let out = cmd
        .args(["--no-owner", "-d", &g.db])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        g.direct("select convert_from(lo_get(oid), 'UTF8') from pg_largeobject_metadata"),
        "dumped and restored"
    );
    assert_eq!(rows(&g), "3");
}

/// A valid statement the classifier gives up on (WITH subqueries nested
/// deeper than it follows), with a side effect that shows whether it ran.
fn unclassifiable() -> String {
    let mut sql = "select nextval('s')".to_string();
    for k in 0..10 {
        sql = format!("select (with a{k} as (select 1) {sql})");
    }
    sql
}

#[test]
fn syntax_errors_come_back_as_the_servers_42601() {
    let g = setup("syntax", POLICY);
    g.direct(&format!(
        "create sequence s; alter sequence s owner to {}",
        g.role
    ));
    let mut w = login(&g);
    let mut b = BytesMut::new();
    query_bytes(&mut b, b"selec 1");
    let msgs = exchange(&mut w, &b, 1);
    let e = error_of(&msgs).expect("an error");
    assert_eq!(e.field(b'C').as_deref(), Some("42601"), "{msgs:?}");
    assert_eq!(e.field(b'P').as_deref(), Some("1"), "{msgs:?}");
    assert_eq!(msgs.iter().filter(|m| m.tag == b'E').count(), 1);
    assert_eq!(msgs.last().unwrap().body, b"I");
    // The position is the server's, in the whole string.
    b.clear();
    query_bytes(&mut b, b"select 1; selec 2");
    let msgs = exchange(&mut w, &b, 1);
    assert_eq!(error_of(&msgs).unwrap().field(b'P').as_deref(), Some("11"));
    // Valid but unclassifiable: refused, never run (alone, after another
    // statement, and through Parse).
    let deep = unclassifiable();
    for sql in [deep.clone(), format!("select 1; {deep}")] {
        b.clear();
        query_bytes(&mut b, sql.as_bytes());
        let msgs = exchange(&mut w, &b, 1);
        let e = error_of(&msgs).expect("an error");
        assert_eq!(e.field(b'C').as_deref(), Some("42501"), "{sql}: {msgs:?}");
        assert_eq!(msgs.last().unwrap().body, b"I");
    }
    b.clear();
    pg::encode_parse(&mut b, b"mine", deep.as_bytes(), &[]).unwrap();
    pg::encode_bind(&mut b, b"", b"mine", &[], std::iter::empty(), &[]).unwrap();
    pg::encode_execute(&mut b, b"", 0).unwrap();
    pg::encode_sync(&mut b);
    let msgs = exchange(&mut w, &b, 1);
    let e = error_of(&msgs).expect("an error");
    assert_eq!(e.field(b'C').as_deref(), Some("42501"), "{msgs:?}");
    assert!(
        !msgs.iter().any(|m| matches!(m.tag, b'1' | b'2' | b'3')),
        "{msgs:?}"
    );
    assert_eq!(g.direct("select is_called from s"), "f");
    // Extended: the server's 42601; no statement of ours left behind.
    b.clear();
    extended_bytes(&mut b, b"selec 1", true);
    let msgs = exchange(&mut w, &b, 1);
    assert_eq!(
        error_of(&msgs).unwrap().field(b'C').as_deref(),
        Some("42601")
    );
    b.clear();
    query_bytes(&mut b, b"select count(*) from pg_prepared_statements");
    let msgs = exchange(&mut w, &b, 1);
    assert!(
        msgs.iter().any(|m| m.tag == b'D' && m.body.ends_with(b"0")),
        "{msgs:?}"
    );
    // In a transaction block the error aborts it, as PostgreSQL's would.
    b.clear();
    query_bytes(&mut b, b"begin");
    query_bytes(&mut b, b"selec 1");
    let msgs = exchange(&mut w, &b, 2);
    assert_eq!(msgs.last().unwrap().body, b"E", "{msgs:?}");
    b.clear();
    query_bytes(&mut b, b"rollback");
    exchange(&mut w, &b, 1);
    assert!(alive(&mut w));

    // psql shows the server's message and caret; the script goes on.
    let t = g.token("ci-job", "ci", "10m");
    let (_, out, err) = g.psql_script(&t, "selec 1;\nselect 'after';\n");
    assert!(err.contains("syntax error at or near \"selec\""), "{err}");
    assert!(err.contains("LINE 1: selec 1"), "{err}");
    assert_eq!(out, "after", "{err}");
    // Drivers get SQLSTATE 42601 and the position.
    let out = python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   for q in ['selec 1', 'select 1 frm t']:\n\
         \x20       try:\n\
         \x20           c.execute(q)\n\
         \x20       except psycopg.Error as e:\n\
         \x20           print(e.sqlstate, e.diag.statement_position)\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(out, "42601 1\n42601 14", "{out}");
    let out = python(
        "import asyncio, asyncpg, sys\n\
         async def main():\n\
         \x20   c = await asyncpg.connect(sys.argv[1])\n\
         \x20   try:\n\
         \x20       await c.fetch('selec 1')\n\
         \x20   except asyncpg.PostgresError as e:\n\
         \x20       print(e.sqlstate, e.position)\n\
         \x20   try:\n\
         \x20       await c.fetch(sys.argv[2])\n\
         \x20   except asyncpg.PostgresError as e:\n\
         \x20       print(e.sqlstate)\n\
         \x20   print(await c.fetchval('select 7'))\n\
         \x20   await c.close()\n\
         asyncio.run(main())\n",
        &[
            &format!(
                "postgresql://ci-job:{t}@127.0.0.1:{}/{}?sslmode=disable",
                g.port, g.db
            ),
            &deep,
        ],
    );
    assert_eq!(out, "42601 1\n42501\n7", "{out}");
    assert_eq!(g.direct("select is_called from s"), "f");
}

/// Start-up with `client_encoding` set: the gateway's answer to it.
fn startup_with_encoding(g: &PgGateway, encoding: &str) -> Msg {
    let mut w = Wire::connect(g.port);
    let mut b = BytesMut::new();
    pg::encode_startup_message(
        &mut b,
        0,
        [
            ("user", "ci-job"),
            ("database", g.db.as_str()),
            ("client_encoding", encoding),
        ],
    )
    .unwrap();
    w.send_raw(&b);
    w.recv().expect("an answer")
}

#[test]
fn client_encodings_that_hide_a_backslash_are_refused() {
    let g = setup("encodings", POLICY);
    for enc in [
        "SJIS",
        "'sjis'",
        "Shift_JIS_2004",
        "WIN932",
        "big5",
        "GBK",
        "GB18030",
        "UHC",
        "win949",
        "win950",
        "JOHAB",
    ] {
        let m = startup_with_encoding(&g, enc);
        assert_eq!(m.tag, b'E', "{enc}: {m:?}");
        assert_eq!(m.field(b'C').as_deref(), Some("0A000"), "{enc}");
        assert!(m.field(b'M').unwrap().contains("client_encoding"), "{enc}");
    }
    assert_eq!(startup_with_encoding(&g, "UTF8").tag, b'R');
    let t = g.token("ci-job", "ci", "10m");
    // libpq: PGCLIENTENCODING, and PGOPTIONS (the server's greeting says it).
    for (var, value) in [
        ("PGCLIENTENCODING", "SJIS"),
        ("PGOPTIONS", "-c client_encoding=BIG5"),
    ] {
        let out = std::process::Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &g.port.to_string(),
                "-U",
                "ci-job",
                "-d",
                &g.db,
                "-c",
                "select 1",
            ])
            .env("PGPASSWORD", &t)
            .env("PGSSLMODE", "disable")
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}");
        assert!(
            err.contains("does not allow client_encoding"),
            "{var}: {err}"
        );
    }
    // At run time: SET, SET NAMES, set_config are blocked; the session stays UTF8.
    let (_, out, err) = g.psql_script(
        &t,
        "SET client_encoding = 'SJIS';\nSET NAMES 'big5';\nselect set_config('client_encoding', 'GBK', false);\nSET client_encoding TO \"Shift_JIS\";\nshow client_encoding;\n",
    );
    assert_eq!(out, "UTF8", "{err}");
    assert_eq!(
        err.matches("does not allow client_encoding").count(),
        4,
        "{err}"
    );
    // The truncating string of the issue, after a SET that did not happen.
    let mut w = login(&g);
    let mut b = BytesMut::new();
    query_bytes(&mut b, b"SET client_encoding = 'SJIS'");
    exchange(&mut w, &b, 1);
    b.clear();
    query_bytes(&mut b, b"SELECT E'\x95\x5c' ; TRUNCATE t; -- '");
    exchange(&mut w, &b, 1);
    assert_eq!(rows(&g), "3");
    // A computed value no statement check reads: the server's report of
    // the encoding ends the session, and the statement pipelined behind it
    // was judged as possibly read under it.
    let mut w = login(&g);
    b.clear();
    query_bytes(
        &mut b,
        b"select set_config('client_' || 'encoding', 'S' || 'JIS', false)",
    );
    query_bytes(&mut b, b"SELECT E'\x95\x5c' ; TRUNCATE t; -- '");
    let msgs = exchange(&mut w, &b, 2);
    let fatal = msgs
        .iter()
        .find(|m| m.tag == b'E' && m.field(b'S').as_deref() == Some("FATAL"))
        .expect("the session ends");
    assert_eq!(fatal.field(b'C').as_deref(), Some("0A000"), "{msgs:?}");
    assert!(w.closed());
    assert_eq!(rows(&g), "3");
}
