//! End-to-end command policy through the PostgreSQL gateway: blocked
//! statements get SQLSTATE 42501 in the right place of the response stream,
//! the session stays in sync (simple query, transactions, extended protocol),
//! the database is unchanged, and the inspection corpus is replayed over the
//! wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire, error_of};
use common::*;

const POLICY: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where", "copy_to_program", "alter_system"]

[[target.policy.rules]]
name = "no-server-files"
action = "block"
message = "server file and process functions are not allowed"
functions = ["pg_read_file", "pg_terminate_backend", "lo_import", "lo_export", "dblink*"]
"#;

fn setup(name: &str, extra: &str) -> PgGateway {
    let g = PgGateway::builder()
        .tables(&format!("{POLICY}{extra}"))
        .start(name);
    g.direct(&format!(
        "create table accounts (id int primary key, owner text, balance int);
         insert into accounts select g, 'owner' || g, 100 from generate_series(1, 10) g;
         alter table accounts owner to {}",
        g.role
    ));
    g
}

#[test]
fn blocked_statements_get_42501_and_the_session_stays_usable() {
    let g = setup("blocks", "");
    let t = g.token("ci-job", "ci", "10m");
    let script = "\
select count(*) from accounts;
drop database postgres;
select 'after drop';
truncate accounts;
select 'after truncate';
delete from accounts;
delete from accounts where id = 10;
update accounts set balance = 0;
select pg_read_file('/etc/passwd');
select count(*), sum(balance) from accounts;
";
    let (_, out, err) = g.psql_script(&t, script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["10", "after drop", "after truncate", "DELETE 1", "9|900"],
        "{out}\n{err}"
    );
    // The client sees the rule's message and name, not the gateway's plumbing.
    assert!(
        !err.contains("PL/pgSQL") && !err.contains("CONTEXT"),
        "{err}"
    );
    assert_eq!(
        err.matches("destructive statements are not allowed through tollgate")
            .count(),
        4,
        "{err}"
    );
    assert!(
        err.contains("server file and process functions are not allowed"),
        "{err}"
    );
    // The direct path agrees: only the allowed delete happened.
    assert_eq!(
        g.direct("select count(*), sum(balance) from accounts"),
        "9|900"
    );
    assert_eq!(
        g.direct("select count(*) from pg_database where datname = 'postgres'"),
        "1"
    );
}

#[test]
fn the_error_carries_sqlstate_42501_and_the_rule() {
    let g = setup("sqlstate", "");
    let t = g.token("ci-job", "ci", "10m");
    let (mut w, msgs) = Wire::login(g.port, &g.db, &t);
    assert!(error_of(&msgs).is_none());
    w.query("TRUNCATE accounts");
    let msgs = w.until_ready();
    let e = error_of(&msgs).expect("no error for TRUNCATE");
    assert_eq!(e.field(b'C').as_deref(), Some("42501"));
    assert_eq!(
        e.field(b'M').as_deref(),
        Some("destructive statements are not allowed through tollgate")
    );
    assert!(e.field(b'D').unwrap().contains("no-destructive"));
    assert_eq!(msgs.last().unwrap().tag, b'Z');
}

#[test]
fn a_block_inside_a_transaction_aborts_it_like_any_error() {
    let g = setup("txn", "");
    let t = g.token("ci-job", "ci", "10m");
    let (mut w, _) = Wire::login(g.port, &g.db, &t);
    let status = |msgs: &[Msg]| msgs.last().map(|m| m.body[0]).unwrap();
    w.query("begin");
    assert_eq!(status(&w.until_ready()), b'T');
    w.query("insert into accounts values (11, 'x', 1)");
    assert_eq!(status(&w.until_ready()), b'T');
    w.query("delete from accounts");
    let msgs = w.until_ready();
    assert_eq!(
        error_of(&msgs).and_then(|e| e.field(b'C')).as_deref(),
        Some("42501")
    );
    // The server's transaction is failed too: the client and it agree.
    assert_eq!(status(&msgs), b'E');
    w.query("select 1");
    let msgs = w.until_ready();
    assert_eq!(
        error_of(&msgs).and_then(|e| e.field(b'C')).as_deref(),
        Some("25P02")
    );
    w.query("rollback");
    assert_eq!(status(&w.until_ready()), b'I');
    assert_eq!(g.direct("select count(*) from accounts"), "10");
}

#[test]
fn extended_protocol_blocks_stay_in_sync() {
    let g = setup("extended", "");
    let t = g.token("ci-job", "ci", "10m");
    // psycopg 3: server-side parameters, so every statement is Parse/Bind/Execute/Sync.
    let out = python(
        "import psycopg, sys\n\
         from psycopg import errors\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   print(c.execute('select count(*) from accounts where id > %s', (0,)).fetchone()[0])\n\
         \x20   try:\n\
         \x20       c.execute('delete from accounts where %s = %s', (1, 1)).rowcount\n\
         \x20       print('deleted with a where')\n\
         \x20       c.execute('update accounts set balance = %s', (0,))\n\
         \x20       print('not blocked')\n\
         \x20   except errors.InsufficientPrivilege as e:\n\
         \x20       print('blocked', e.sqlstate)\n\
         \x20   print(c.execute('select count(*) from accounts where id > %s', (0,)).fetchone()[0])\n\
         \x20   with c.pipeline():\n\
         \x20       c.execute('insert into accounts values (%s, %s, %s)', (50, 'p', 5))\n\
         \x20       cur = c.execute('select count(*) from accounts where id > %s', (0,))\n\
         \x20   print(cur.fetchone()[0])\n",
        &[&g.conninfo(&t)],
    );
    // `where 1 = 1` is a WHERE (documented: trivial WHEREs count), so that
    // delete ran; the update without WHERE did not.
    assert_eq!(
        out, "10\ndeleted with a where\nblocked 42501\n0\n1",
        "{out}"
    );
    assert_eq!(
        g.direct("select count(*), coalesce(sum(balance), 0) from accounts"),
        "1|5"
    );
}

/// Corpus case: (expectation, sql).
fn corpus(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!(
        "{}/codecs/corpus/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut cases = Vec::new();
    let mut cur: Option<(String, bool, String)> = None;
    let flush = |cur: &mut Option<(String, bool, String)>, cases: &mut Vec<(String, String)>| {
        if let Some((expect, esc, mut sql)) = cur.take() {
            if sql.ends_with('\n') {
                sql.pop();
            }
            cases.push((expect, if esc { unescape(&sql) } else { sql }));
        }
    };
    for line in text.split_inclusive('\n') {
        if let Some(h) = line.strip_prefix("=== ") {
            flush(&mut cur, &mut cases);
            let parts: Vec<&str> = h.split_whitespace().collect();
            cur = (parts[0] == "pg").then(|| {
                (
                    parts[1].to_string(),
                    parts.get(2) == Some(&"esc"),
                    String::new(),
                )
            });
            if cur.is_none() {
                cur = Some(("skip".into(), false, String::new()));
            }
        } else if let Some((_, _, sql)) = cur.as_mut() {
            sql.push_str(line);
        }
    }
    flush(&mut cur, &mut cases);
    cases.retain(|(e, _)| e != "skip");
    cases
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let h: String = it.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).unwrap() as char);
            }
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[test]
fn the_inspection_corpus_replayed_over_the_wire() {
    let dangerous = corpus("dangerous.sql");
    let benign = corpus("benign.sql");
    assert!(
        dangerous.len() >= 100 && benign.len() >= 80,
        "{} / {}",
        dangerous.len(),
        benign.len()
    );
    // One rule naming every class and function the corpus expects to catch:
    // this checks the wire path (frames, injection, sync), the classifier has
    // its own corpus test.
    let mut classes = BTreeSet::new();
    let mut functions = BTreeSet::new();
    for (expect, _) in &dangerous {
        match expect.strip_prefix("fn:") {
            Some(f) => functions.insert(f.to_string()),
            None if expect != "unknown" => classes.insert(expect.clone()),
            None => false,
        };
    }
    let list = |s: &BTreeSet<String>| {
        s.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rules = format!(
        "[[target.policy.rules]]\nname = \"corpus\"\naction = \"block\"\nmessage = \"corpus\"\nclasses = [{}]\n\
         [[target.policy.rules]]\nname = \"corpus-fn\"\naction = \"block\"\nmessage = \"corpus\"\nfunctions = [{}]\n",
        list(&classes),
        list(&functions)
    );
    let g = PgGateway::builder().tables(&rules).start("corpus");
    g.direct(&format!("create table canary (id int); insert into canary values (1), (2), (3); alter table canary owner to {}", g.role));
    let t = g.token("ci-job", "ci", "10m");
    let (mut w, _) = Wire::login(g.port, &g.db, &t);
    let mut caught = 0;
    for (expect, sql) in &dangerous {
        w.query(sql);
        let msgs = w.until_ready();
        assert_eq!(
            msgs.last().map(|m| m.tag),
            Some(b'Z'),
            "out of sync after {sql:?}"
        );
        let code = error_of(&msgs).and_then(|e| e.field(b'C'));
        // Unclassifiable text goes to the server's parser first (never run):
        // a syntax error comes back as the server's 42601, anything the
        // server can parse gets the gateway's 42501.
        let refused: &[&str] = if expect == "unknown" {
            &["42501", "42601"]
        } else {
            &["42501"]
        };
        assert!(
            code.as_deref().is_some_and(|c| refused.contains(&c)),
            "{expect}: not blocked: {sql:?} -> {msgs:?}"
        );
        caught += 1;
        // Leave any failed transaction the case opened.
        if msgs.last().unwrap().body[0] != b'I' {
            w.query("rollback");
            w.until_ready();
        }
    }
    let mut passed = 0;
    for (expect, sql) in &benign {
        w.query(sql);
        let msgs = w.until_ready();
        assert_eq!(
            msgs.last().map(|m| m.tag),
            Some(b'Z'),
            "out of sync after {sql:?}"
        );
        let e = error_of(&msgs);
        assert!(
            e.is_none_or(|e| e.field(b'D').is_none_or(|d| !d.contains("tollgate rule"))),
            "{expect}: benign statement blocked: {sql:?} -> {e:?}"
        );
        passed += 1;
        if msgs.last().unwrap().body[0] != b'I' {
            w.query("rollback");
            w.until_ready();
        }
    }
    println!(
        "over the wire: dangerous {caught}/{} blocked, benign {passed}/{} passed",
        dangerous.len(),
        benign.len()
    );
    assert_eq!(g.direct("select count(*) from canary"), "3");
    assert_eq!(
        g.direct(&format!(
            "select count(*) from pg_database where datname = '{}'",
            g.db
        )),
        "1"
    );
}
