//! Unit tests for the statement classifier.

use super::*;
use crate::sql::lexer::{MySqlMode, PgMode};

/// `class[/object]` per statement, nested ones prefixed with `>`.
fn summary(sql: &str, dialect: Dialect) -> Vec<String> {
    let mut classifier = Classifier::new();
    let classified = classifier.classify(sql.as_bytes(), dialect);
    classified
        .statements()
        .iter()
        .map(|s| {
            let mut out = String::new();
            if s.parent != NO_PARENT {
                out.push('>');
            }
            out.push_str(s.class.as_str());
            if !matches!(s.object, ObjectKind::None) {
                out.push('/');
                out.push_str(s.object.as_str());
            }
            out
        })
        .collect()
}

fn pg(sql: &str) -> Vec<String> {
    summary(sql, Dialect::POSTGRES)
}

fn my(sql: &str) -> Vec<String> {
    summary(sql, MYSQL8)
}

const MYSQL8: Dialect = Dialect::MySql(MySqlMode {
    ansi_quotes: false,
    backslash_escapes: true,
    server_version: 80036,
    mariadb: false,
});

fn first(sql: &str, dialect: Dialect) -> (Statement, Vec<String>, Vec<String>) {
    let mut classifier = Classifier::new();
    let c = classifier.classify(sql.as_bytes(), dialect);
    let s = c.statements()[0];
    let text = |n: Name<'_>| String::from_utf8_lossy(n.full).into_owned();
    let rels = c.relations(&s).map(text).collect();
    let fns = c.functions(&s).map(text).collect();
    (s, rels, fns)
}

#[test]
fn common_heads() {
    assert_eq!(pg("SELECT 1"), ["select"]);
    assert_eq!(pg("(SELECT 1)"), ["select"]);
    assert_eq!(pg("insert into t values (1)"), ["insert"]);
    assert_eq!(pg("DROP DATABASE x"), ["drop/database"]);
    assert_eq!(pg("dRoP/**/DATABASE x"), ["drop/database"]);
    assert_eq!(
        pg("CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql"),
        ["create/function"]
    );
    assert_eq!(
        pg("create unique index concurrently if not exists i on t (a)"),
        ["create/index"]
    );
    assert_eq!(
        pg("CREATE MATERIALIZED VIEW v AS SELECT 1"),
        ["create/materialized_view"]
    );
    assert_eq!(pg("ALTER SYSTEM SET x = 1"), ["alter/system"]);
    assert_eq!(
        pg("DROP FOREIGN DATA WRAPPER w"),
        ["drop/foreign_data_wrapper"]
    );
    assert_eq!(pg("TRUNCATE ONLY a, b CASCADE"), ["truncate/table"]);
    assert_eq!(pg("GRANT SELECT ON t TO bob"), ["grant/table"]);
    assert_eq!(pg("GRANT admin TO bob"), ["grant/role"]);
    assert_eq!(pg("REVOKE ALL ON DATABASE d FROM bob"), ["revoke/database"]);
    assert_eq!(pg("SET ROLE admin"), ["set/role"]);
    assert_eq!(pg("SET SESSION AUTHORIZATION bob"), ["set/role"]);
    assert_eq!(
        pg("BEGIN; COMMIT; ROLLBACK; END; ABORT"),
        [
            "begin/transaction",
            "commit/transaction",
            "rollback/transaction",
            "commit/transaction",
            "rollback/transaction"
        ]
    );
    assert_eq!(pg("VACUUM (VERBOSE, ANALYZE) t"), ["vacuum/table"]);
    assert_eq!(
        pg("REFRESH MATERIALIZED VIEW CONCURRENTLY v"),
        ["refresh/materialized_view"]
    );
    assert_eq!(pg("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"), ["lock/table"]);
    assert_eq!(pg("DO $$ BEGIN PERFORM 1; END $$"), ["do"]);
    assert_eq!(pg("CALL p(1)"), ["call/procedure"]);
    assert_eq!(
        pg("LISTEN c; NOTIFY c; UNLISTEN *; DISCARD ALL"),
        ["listen", "notify", "unlisten", "discard"]
    );
    assert_eq!(pg("COMMENT ON TABLE t IS 'x'"), ["comment/table"]);
    assert_eq!(pg("REINDEX DATABASE d"), ["reindex/database"]);
    assert_eq!(pg("frobnicate the database"), ["unknown"]);
    assert_eq!(pg("\"DELETE\" FROM t"), ["unknown"]);
    assert_eq!(pg(";;  ; -- nothing\n"), Vec::<String>::new());
}

#[test]
fn mysql_heads() {
    assert_eq!(my("USE db"), ["use/database"]);
    assert_eq!(my("REPLACE INTO t VALUES (1)"), ["replace"]);
    assert_eq!(
        my("LOAD DATA LOCAL INFILE '/x' INTO TABLE t"),
        ["load_data"]
    );
    assert_eq!(
        my("FLUSH PRIVILEGES; KILL 12; SHUTDOWN"),
        ["flush", "kill", "shutdown"]
    );
    assert_eq!(my("RENAME TABLE a TO b"), ["rename/table"]);
    assert_eq!(my("INSTALL PLUGIN p SONAME 'x.so'"), ["install/plugin"]);
    assert_eq!(my("HANDLER t OPEN"), ["handler/table"]);
    assert_eq!(my("DESC t"), ["describe/table"]);
    assert_eq!(
        my("CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @x = 1"),
        ["create/trigger"]
    );
    assert_eq!(
        my("CREATE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW v AS SELECT 1"),
        ["create/view"]
    );
    assert_eq!(my("/*!DROP*/ DATABASE x"), ["drop/database"]);
    assert_eq!(my("/*!50001 DROP DATABASE x */"), ["drop/database"]);
    assert_eq!(
        my("START TRANSACTION; START SLAVE"),
        ["begin/transaction", "replication"]
    );
    assert_eq!(my("DROP PREPARE s"), ["deallocate"]);
    assert_eq!(
        summary("/*!50001 DROP DATABASE x */", Dialect::MYSQL),
        ["unknown"]
    );
}

#[test]
fn where_detection_ignores_strings_comments_and_subqueries() {
    let has_where = |sql: &str, d: Dialect| first(sql, d).0.has(Flags::HAS_WHERE);
    assert!(has_where("DELETE FROM t WHERE id = 1", Dialect::POSTGRES));
    assert!(!has_where("DELETE FROM t", Dialect::POSTGRES));
    assert!(!has_where(
        "DELETE FROM t -- WHERE id = 1",
        Dialect::POSTGRES
    ));
    assert!(!has_where(
        "DELETE FROM t /* WHERE id = 1 */",
        Dialect::POSTGRES
    ));
    assert!(!has_where("DELETE FROM t # WHERE id = 1", MYSQL8));
    assert!(!has_where(
        "DELETE FROM t RETURNING 'WHERE'",
        Dialect::POSTGRES
    ));
    assert!(!has_where(
        "UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)",
        Dialect::POSTGRES
    ));
    assert!(has_where(
        "UPDATE t SET a = 1 WHERE id IN (SELECT 1)",
        Dialect::POSTGRES
    ));
    assert!(has_where("DELETE FROM t /*! WHERE id = 1 */", MYSQL8));
    assert!(!has_where("DELETE FROM t -- x\rWHERE id = 1", MYSQL8));
}

#[test]
fn cte_bodies_that_modify_data_are_statements() {
    assert_eq!(
        pg("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"),
        ["select", ">delete"]
    );
    assert_eq!(
        pg(
            "WITH RECURSIVE a AS (SELECT 1), b AS MATERIALIZED (UPDATE t SET a = 1 RETURNING *) DELETE FROM u WHERE x"
        ),
        ["delete", ">update/table"]
    );
    let mut c = Classifier::new();
    let got = c.classify(
        b"WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        Dialect::POSTGRES,
    );
    let nested = got.statements()[1];
    assert!(!nested.has(Flags::HAS_WHERE));
    assert_eq!(nested.parent, 0);
    assert_eq!(
        pg("COPY (DELETE FROM t RETURNING *) TO STDOUT"),
        ["copy/table", ">delete"]
    );
    // A column named `update` in parentheses is no statement.
    assert_eq!(pg("SELECT (update) FROM t"), ["select"]);
    // Nesting past the limit fails closed.
    let deep = format!(
        "{}SELECT 1{}",
        "WITH a AS (".repeat(20),
        ") SELECT 1".repeat(20)
    );
    assert_eq!(pg(&deep)[0], "unknown");
}

#[test]
fn explain_analyze_runs_the_statement() {
    assert_eq!(pg("EXPLAIN DELETE FROM t"), ["explain"]);
    let (s, _, _) = first("EXPLAIN ANALYZE DELETE FROM t", Dialect::POSTGRES);
    assert_eq!(
        (s.class, s.has(Flags::EXPLAIN_ANALYZE)),
        (StatementClass::Delete, true)
    );
    assert_eq!(
        pg("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1"),
        ["update/table"]
    );
    assert_eq!(pg("EXPLAIN (ANALYZE off) DELETE FROM t"), ["explain"]);
    assert_eq!(pg("explain analyse verbose delete from t"), ["delete"]);
}

#[test]
fn copy_direction_and_program() {
    let (s, rels, _) = first("COPY public.t (a) TO PROGRAM 'curl x'", Dialect::POSTGRES);
    assert!(s.has(Flags::COPY_TO) && s.has(Flags::PROGRAM));
    assert_eq!(rels, ["public.t"]);
    let (s, _, _) = first("copy t from stdin", Dialect::POSTGRES);
    assert!(s.has(Flags::COPY_FROM) && s.has(Flags::STDIO));
    let (s, _, _) = first("COPY t FROM '/etc/passwd'", Dialect::POSTGRES);
    assert!(s.has(Flags::FILE));
}

#[test]
fn relations_and_functions() {
    let (_, rels, fns) = first(
        "SELECT pg_catalog.pg_read_file('/x'), EXTRACT(year FROM ts), count(*) \
         FROM Payments.Cards c JOIN \"Secrets\" s ON s.id = c.id, dblink('a', 'b') AS d(x int) \
         WHERE x::varchar(10) IN (1)",
        Dialect::POSTGRES,
    );
    assert_eq!(rels, ["payments.cards", "Secrets"]);
    assert_eq!(
        fns,
        ["pg_catalog.pg_read_file", "extract", "count", "dblink"]
    );
    let (_, rels, fns) = first(
        "INSERT INTO a.b (x, y) SELECT lo_import('/x') FROM c",
        Dialect::POSTGRES,
    );
    assert_eq!(rels, ["a.b", "c"]);
    assert_eq!(fns, ["lo_import"]);
    let (_, rels, fns) = first(
        "CREATE FUNCTION f(a int) RETURNS int AS 'x' LANGUAGE sql",
        Dialect::POSTGRES,
    );
    assert!(rels.is_empty() && fns.is_empty(), "{rels:?} {fns:?}");
    let (_, rels, _) = first("DROP TABLE IF EXISTS a, s.b CASCADE", Dialect::POSTGRES);
    assert_eq!(rels, ["a", "s.b"]);
    let (_, rels, _) = first("UPDATE `Db`.`T` SET a = 1", MYSQL8);
    assert_eq!(rels, ["db.t"]);
    let (_, rels, _) = first("DELETE FROM t USING u WHERE t.id = u.id", Dialect::POSTGRES);
    assert_eq!(rels, ["t", "u"]);
    let (_, rels, _) = first("GRANT SELECT ON a, b TO r1, r2", Dialect::POSTGRES);
    assert_eq!(rels, ["a", "b"]);
    let (_, _, fns) = first("SELECT \"pg_read_file\"('x')", Dialect::POSTGRES);
    assert_eq!(fns, ["pg_read_file"]);
    // A U& identifier with escapes is not decoded: the statement is Unknown.
    assert_eq!(pg(r#"SELECT U&"pg_read\005ffile"('x')"#), ["unknown"]);
}

#[test]
fn prepare_and_execute() {
    let mut c = Classifier::new();
    let got = c.classify(
        b"PREPARE p (int) AS DELETE FROM t WHERE id = $1; EXECUTE p(1)",
        Dialect::POSTGRES,
    );
    let (prep, exec) = (got.statements()[0], got.statements()[1]);
    assert_eq!(
        (prep.class, prep.has(Flags::PREPARE)),
        (StatementClass::Delete, true)
    );
    assert_eq!(got.text(prep.name), b"p");
    assert_eq!(
        (exec.class, got.text(exec.name)),
        (StatementClass::Execute, &b"p"[..])
    );
    let got = c.classify(b"PREPARE s FROM 'DELETE FROM t'", MYSQL8);
    let s = got.statements()[0];
    assert_eq!(s.class, StatementClass::Prepare);
    assert_eq!(got.text(s.body), b"'DELETE FROM t'");
    let got = c.classify(b"PREPARE s FROM @q", MYSQL8);
    assert!(got.statements()[0].body.is_empty());
}

#[test]
fn flags_for_dangerous_features() {
    let f = |sql: &str, d: Dialect| first(sql, d).0.flags;
    assert!(f("SELECT * INTO OUTFILE '/tmp/x' FROM t", MYSQL8).contains(Flags::INTO_OUTFILE));
    assert!(f("SELECT * INTO newtab FROM t", Dialect::POSTGRES).contains(Flags::SELECT_INTO));
    assert!(f("SET GLOBAL general_log = 1", MYSQL8).contains(Flags::GLOBAL));
    assert!(f("SET @@global.x = 1", MYSQL8).contains(Flags::GLOBAL));
    assert!(!f("SET @x = 1", MYSQL8).contains(Flags::GLOBAL));
    assert!(
        f("SET standard_conforming_strings = off", Dialect::POSTGRES).contains(Flags::LEXICAL_MODE)
    );
    assert!(f("SET SESSION sql_mode = 'ANSI_QUOTES'", MYSQL8).contains(Flags::LEXICAL_MODE));
    assert!(f("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", MYSQL8).contains(Flags::LOCAL));
}

#[test]
fn string_modes_change_statement_boundaries() {
    let sql = r"SELECT '\'; DROP TABLE x; -- '";
    assert_eq!(pg(sql), ["select", "drop/table"]);
    let off = Dialect::Postgres(PgMode {
        standard_conforming_strings: false,
    });
    assert_eq!(summary(sql, off), ["select"]);
    assert_eq!(my(sql), ["select"]);
    let no_bs = Dialect::MySql(MySqlMode {
        backslash_escapes: false,
        ..match MYSQL8 {
            Dialect::MySql(m) => m,
            Dialect::Postgres(_) => unreachable!(),
        }
    });
    assert_eq!(summary(sql, no_bs), ["select", "drop/table"]);
}

#[test]
fn hostile_input_is_unknown_not_a_panic() {
    let mut c = Classifier::new();
    for sql in [
        "'",
        "DELETE FROM t WHERE x = 'abc",
        "((((((",
        ")))) DELETE",
        "WITH",
        "EXPLAIN",
        "PREPARE",
        "COPY",
        "DROP",
        "GRANT ON",
        "SET",
        "WITH a AS (",
        "UPDATE",
        "(UPDATE a SET",
    ] {
        for d in [Dialect::POSTGRES, MYSQL8] {
            let got = c.classify(sql.as_bytes(), d);
            for s in got.statements() {
                assert!(s.span.end as usize <= sql.len());
            }
        }
    }
    assert_eq!(pg("DELETE FROM t WHERE x = 'abc"), ["unknown"]);
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    c.classify(&bytes, Dialect::POSTGRES);
    c.classify(&bytes, MYSQL8);
}

#[test]
fn push_ident_normalizes_every_name_form() {
    let norm = |raw: &[u8], mysql: bool| {
        let mut out = b"x.".to_vec();
        push_ident(raw, mysql, &mut out);
        out
    };
    // Bare words fold ASCII only and append after what is there.
    assert_eq!(norm(b"Orders_2$", false), b"x.orders_2$");
    assert_eq!(norm("CAFÉ".as_bytes(), true), "x.cafÉ".as_bytes());
    // PostgreSQL quoted names keep their case; MySQL folds them.
    assert_eq!(norm(br#""My""Tbl""#, false), br#"x.My"Tbl"#);
    assert_eq!(norm(b"`My``Tbl`", true), b"x.my`tbl");
    assert_eq!(norm(br#"U&"Ab""#, false), b"x.Ab");
    assert_eq!(norm(b"", false), b"x.");
}
