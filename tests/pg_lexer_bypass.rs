//! Issue 12 A/B end to end: statements that used to slip past a policy
//! blocking drop/truncate/delete-or-update-without-WHERE, because the lexer
//! read a literal differently from the server or the classifier was fooled
//! by their shape, sent over the simple and the extended protocol to a real
//! PostgreSQL 15. Each must be refused with 42501 and the table checked
//! directly must be unchanged; look-alikes that are harmless must run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire, error_of};

const POLICY: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_table", "truncate", "delete_without_where", "update_without_where"]
"#;

/// Single statements: sent both ways.
const BYPASSES: &[&str] = &[
    "DELETE FROM t RETURNING E'a'\n'\\' WHERE id = 1 --'",
    "DELETE FROM t RETURNING 1 AS where",
    "UPDATE t SET x = 0 RETURNING x AS where",
    "UPDATE t SET x = 0 RETURNING t.where",
    "WITH d AS (DELETE FROM t RETURNING 1 AS where) SELECT count(*) FROM d",
    "WITH u AS (UPDATE t * SET x = 0 RETURNING 1) SELECT count(*) FROM u",
    "WITH u AS (UPDATE ONLY (t) SET x = 0 RETURNING 1) SELECT count(*) FROM u",
    "UPDATE ONLY (t) SET x = 0",
    "COPY (UPDATE t * SET x = 0 RETURNING 1) TO STDOUT",
];

/// Multi-statement strings: simple protocol only (a Parse takes one).
const SIMPLE_ONLY: &[&str] = &[
    "SELECT E'a'\n'x\\''; DROP TABLE t; -- '",
    "SELECT 'a' -- c\n'x'; TRUNCATE t",
];

/// Under standard_conforming_strings = off.
const OLDSTR: &[&str] = &[
    "SELECT B'\\' ; DROP TABLE t; -- '",
    "SELECT X'0'\n'\\' ; TRUNCATE t; -- '",
];

/// Look-alikes that must run (and change nothing, or one known row).
const BENIGN: &[&str] = &[
    "SELECT E'a'\n'b', 'c'\n-- c\n'd'",
    "DELETE FROM t WHERE id = 99 RETURNING 1 AS where",
    "UPDATE t SET x = x WHERE id = 1 RETURNING x AS where",
    "WITH u AS (UPDATE t * SET x = x WHERE id = 2 RETURNING 1) SELECT count(*) FROM u",
    "SELECT 1.5e-3 AS where, x.where FROM (SELECT 1 AS where) x",
];

fn state(g: &PgGateway) -> String {
    g.direct("select count(*) || '|' || sum(x) from t")
}

/// Parse/Bind/Execute/Sync of `sql`, unnamed statement and portal.
fn extended(w: &mut Wire, sql: &str) -> Vec<Msg> {
    fn msg(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(&[0, 0, 0]);
    msg(&mut out, b'P', &parse);
    msg(&mut out, b'B', &[0, 0, 0, 0, 0, 0, 0, 0]);
    msg(&mut out, b'E', &[0, 0, 0, 0, 0]);
    msg(&mut out, b'S', &[]);
    w.send_raw(&out);
    w.until_ready()
}

fn assert_blocked(msgs: &[Msg], how: &str, sql: &str) {
    assert_eq!(
        msgs.last().map(|m| m.tag),
        Some(b'Z'),
        "{how}: out of sync after {sql:?}"
    );
    let code = error_of(msgs).and_then(|e| e.field(b'C'));
    assert_eq!(
        code.as_deref(),
        Some("42501"),
        "{how}: not blocked: {sql:?} -> {msgs:?}"
    );
}

#[test]
fn lexer_and_shape_bypasses_are_blocked_over_both_protocols() {
    let g = PgGateway::builder().tables(POLICY).start("lexbypass");
    g.direct(&format!(
        "create table t (id int primary key, x int);
         insert into t select g, 10 from generate_series(1, 5) g;
         alter table t owner to {}",
        g.role
    ));
    let before = state(&g);
    assert_eq!(before, "5|50");
    let t = g.token("ci-job", "ci", "10m");
    let (mut w, msgs) = Wire::login(g.port, &g.db, &t);
    assert!(error_of(&msgs).is_none(), "{msgs:?}");

    for sql in BYPASSES.iter().chain(SIMPLE_ONLY) {
        w.query(sql);
        assert_blocked(&w.until_ready(), "simple", sql);
        assert_eq!(state(&g), before, "simple: {sql:?} changed the table");
    }
    for sql in BYPASSES {
        assert_blocked(&extended(&mut w, sql), "extended", sql);
        assert_eq!(state(&g), before, "extended: {sql:?} changed the table");
    }
    w.query("SET standard_conforming_strings = off");
    assert!(error_of(&w.until_ready()).is_none());
    for sql in OLDSTR {
        w.query(sql);
        assert_blocked(&w.until_ready(), "simple, strings off", sql);
        assert_eq!(state(&g), before, "strings off: {sql:?} changed the table");
    }
    w.query("SET standard_conforming_strings = on");
    assert!(error_of(&w.until_ready()).is_none());

    for sql in BENIGN {
        for how in ["simple", "extended"] {
            let msgs = if how == "simple" {
                w.query(sql);
                w.until_ready()
            } else {
                extended(&mut w, sql)
            };
            assert!(
                error_of(&msgs).is_none(),
                "{how}: benign {sql:?} refused: {msgs:?}"
            );
        }
    }
    assert_eq!(state(&g), before);
}
