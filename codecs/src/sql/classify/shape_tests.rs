//! Issue 12 B: statements whose shape used to hide a nested UPDATE or
//! invent a WHERE clause.

use crate::sql::class::{Flags, StatementClass};
use crate::sql::classify::{Classifier, NO_PARENT};
use crate::sql::lexer::Dialect;

/// `(class, has WHERE, nested, relations)` per statement.
fn judge(sql: &str) -> Vec<(StatementClass, bool, bool, Vec<String>)> {
    let mut classifier = Classifier::new();
    let c = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
    c.statements()
        .iter()
        .map(|s| {
            let rels = c
                .relations(s)
                .map(|n| String::from_utf8_lossy(n.full).into_owned())
                .collect();
            (
                s.class,
                s.has(Flags::HAS_WHERE),
                s.parent != NO_PARENT,
                rels,
            )
        })
        .collect()
}

#[test]
fn a_column_label_is_not_a_where_clause() {
    use StatementClass::*;
    for sql in [
        "DELETE FROM t RETURNING 1 AS where",
        "DELETE FROM t RETURNING 1 AS \"x\", 2 AS where",
        "UPDATE t SET x = 1 RETURNING x AS where",
        "UPDATE t SET x = 1 RETURNING t.where",
    ] {
        let got = judge(sql);
        assert_eq!(got.len(), 1, "{sql}");
        assert!(matches!(got[0].0, Delete | Update), "{sql}: {got:?}");
        assert!(!got[0].1, "{sql}: a label counted as WHERE");
    }
    // Inside a CTE the nested DELETE has no WHERE either.
    let got = judge("WITH d AS (DELETE FROM t RETURNING 1 AS where) SELECT * FROM d");
    assert_eq!(got[1].0, Delete);
    assert!(got[1].2 && !got[1].1, "{got:?}");
    // A real WHERE still counts, after a label too.
    let got = judge("DELETE FROM t WHERE id = 1 RETURNING id AS where");
    assert!(got[0].1);
}

#[test]
fn nested_updates_of_every_relation_form_are_judged() {
    use StatementClass::*;
    for (sql, rel) in [
        ("WITH u AS (UPDATE t * SET x = 1 RETURNING 1) SELECT 1", "t"),
        ("WITH u AS (UPDATE ONLY (t) SET x = 1) SELECT 1", "t"),
        ("WITH u AS (UPDATE ONLY s.t AS a SET x = 1) SELECT 1", "s.t"),
        ("WITH u AS (UPDATE \"T\" a SET x = 1) SELECT 1", "T"),
        ("COPY (UPDATE t * SET x = 1 RETURNING 1) TO STDOUT", "t"),
        (
            "COPY (UPDATE ONLY (s.t) SET x = 1 RETURNING 1) TO STDOUT",
            "s.t",
        ),
    ] {
        let got = judge(sql);
        let nested: Vec<_> = got.iter().filter(|s| s.2).collect();
        assert_eq!(nested.len(), 1, "{sql}: {got:?}");
        assert_eq!(nested[0].0, Update, "{sql}");
        assert!(!nested[0].1, "{sql}");
        assert_eq!(nested[0].3, [rel], "{sql}");
    }
    // Top level: the target of `UPDATE ONLY (t)` is recorded.
    let got = judge("UPDATE ONLY (t) SET x = 1");
    assert_eq!((got[0].0, got[0].1), (Update, false));
    assert_eq!(got[0].3, ["t"]);
    // A column named `update` in parentheses is not a statement.
    let got = judge("SELECT (update + 1), (update) FROM t WHERE (update * 2) > 0");
    assert_eq!(got.len(), 1, "{got:?}");
}

/// Found by the oracle: PostgreSQL tables may be named by unreserved
/// keywords and by MySQL's modifier words.
#[test]
fn keyword_named_tables_are_targets() {
    use StatementClass::*;
    for (sql, class, rel) in [
        ("UPDATE set \"where\" SET x = 1", Update, "set"),
        ("DELETE FROM set t", Delete, "set"),
        ("DELETE FROM values", Delete, "values"),
        ("DELETE FROM quick WHERE id = 1", Delete, "quick"),
        ("WITH d AS (DELETE FROM ignore) SELECT 1", Delete, "ignore"),
    ] {
        let got = judge(sql);
        let s = got.iter().find(|s| s.0 == class).unwrap();
        assert_eq!(s.3, [rel], "{sql}: {got:?}");
    }
}
