//! Unit tests for command rules: every rule field, first-match order,
//! strictest-of-many, caller scoping, defaults, and prepared statements.

use super::*;

fn policy(toml_text: &str) -> Policy {
    let config: PolicyConfig = toml::from_str(toml_text).unwrap();
    config.validate().unwrap();
    Policy::compile(&config).unwrap()
}

struct Session {
    scratch: EvalScratch,
    prepared: PreparedVerdicts,
    subject: &'static str,
    groups: Vec<String>,
    dialect: Dialect,
}

impl Session {
    fn new() -> Self {
        Session {
            scratch: EvalScratch::new(),
            prepared: PreparedVerdicts::new(),
            subject: "ci-job",
            groups: Vec::new(),
            dialect: Dialect::POSTGRES,
        }
    }

    fn member(mut self, subject: &'static str, groups: &[&str]) -> Self {
        self.subject = subject;
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    fn eval<'p>(&mut self, policy: &'p Policy, sql: &str) -> Verdict<'p> {
        let caller = Caller {
            subject: self.subject,
            groups: &self.groups,
        };
        policy.evaluate(
            sql.as_bytes(),
            self.dialect,
            &caller,
            &mut self.scratch,
            &mut self.prepared,
        )
    }

    /// `(action, deciding rule name or default)`.
    fn judge(&mut self, policy: &Policy, sql: &str) -> (ActionKind, String) {
        let verdict = self.eval(policy, sql);
        let by = match verdict.decided_by {
            DecidedBy::Rule { name, .. } => name.to_string(),
            DecidedBy::Unclassified => "<unclassified>".into(),
            DecidedBy::Unmatched => "<unmatched>".into(),
            DecidedBy::Empty => "<empty>".into(),
        };
        (verdict.kind(), by)
    }
}

use ActionKind::{Allow, Approve, Audit, Block};

fn j(action: ActionKind, by: &str) -> (ActionKind, String) {
    (action, by.to_string())
}

#[test]
fn config_defaults_and_unknown_fields() {
    let config: PolicyConfig = toml::from_str("").unwrap();
    assert_eq!(config, PolicyConfig::default());
    assert_eq!(config.unclassified, Block);
    assert_eq!(config.unmatched, Allow);
    let err = toml::from_str::<PolicyConfig>("unmached = 'allow'").unwrap_err();
    assert!(err.to_string().contains("unmached"), "{err}");
    let err =
        toml::from_str::<PolicyConfig>("[[rules]]\nname = 'x'\naction = 'block'\nclass = ['drop']")
            .unwrap_err();
    assert!(err.to_string().contains("class"), "{err}");
    assert!(toml::from_str::<PolicyConfig>("[[rules]]\nname = 'x'\naction = 'deny'").is_err());
}

#[test]
fn validate_names_the_bad_field() {
    let check = |rules: &str| {
        toml::from_str::<PolicyConfig>(rules)
            .unwrap()
            .validate()
            .unwrap_err()
    };
    assert_eq!(
        check("[[rules]]\nname = 'r'\naction = 'block'\nclasses = ['drop_teh_bass']"),
        RuleError::UnknownClass {
            rule: "r".into(),
            class: "drop_teh_bass".into()
        }
    );
    assert!(matches!(
        check("[[rules]]\nname = 'r'\naction = 'block'\nfunctions = ['a[']"),
        RuleError::BadGlob {
            field: "functions",
            ..
        }
    ));
    assert!(matches!(
        check("[[rules]]\nname = 'r'\naction = 'block'\nregex = '('"),
        RuleError::BadRegex { .. }
    ));
    assert!(matches!(
        check("[[rules]]\nname = 'r'\naction = 'block'\nkeywords = [' ']"),
        RuleError::EmptyPattern {
            field: "keywords",
            ..
        }
    ));
    assert!(matches!(
        check("[[rules]]\nname = ''\naction = 'block'"),
        RuleError::EmptyName { index: 0 }
    ));
    assert!(matches!(
        check("[[rules]]\nname = 'a'\naction = 'block'\n[[rules]]\nname = 'a'\naction = 'allow'"),
        RuleError::DuplicateName { .. }
    ));
    for reserved in RESERVED_RULE_NAMES {
        assert!(matches!(
            check(&format!("[[rules]]\nname = '{reserved}'\naction = 'block'")),
            RuleError::ReservedName { .. }
        ));
    }
}

#[test]
fn classes_field() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-destructive"
        action = "block"
        message = "destructive statements are not allowed through tollgate"
        classes = ["drop_database", "truncate", "delete_without_where", "copy_to_program", "alter_system"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "dRoP/**/DATABASE x"),
        j(Block, "no-destructive")
    );
    assert_eq!(s.judge(&p, "DROP TABLE x"), j(Allow, "<unmatched>"));
    assert_eq!(s.judge(&p, "DELETE FROM t"), j(Block, "no-destructive"));
    assert_eq!(
        s.judge(&p, "DELETE FROM t WHERE id = 1"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(
        s.judge(&p, "EXPLAIN ANALYZE DELETE FROM t"),
        j(Block, "no-destructive")
    );
    assert_eq!(
        s.judge(&p, "EXPLAIN DELETE FROM t"),
        j(Allow, "<unmatched>")
    );
    let v = s.eval(&p, "TRUNCATE t");
    assert_eq!(
        v.action,
        Action::Block {
            message: "destructive statements are not allowed through tollgate"
        }
    );
    assert!(v.classes.contains(StatementClass::Truncate));
}

#[test]
fn functions_field_globs_case_insensitively() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-file-access"
        action = "block"
        functions = ["pg_read_file", "lo_import", "dblink*"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "SELECT PG_READ_FILE('/etc/passwd')"),
        j(Block, "no-file-access")
    );
    assert_eq!(
        s.judge(&p, "SELECT pg_catalog.pg_read_file('/x')"),
        j(Block, "no-file-access")
    );
    assert_eq!(
        s.judge(&p, "SELECT * FROM dblink_exec('x')"),
        j(Block, "no-file-access")
    );
    assert_eq!(
        s.judge(&p, "SELECT pg_read_file_size FROM t"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(
        s.judge(&p, "SELECT 'pg_read_file(1)'"),
        j(Allow, "<unmatched>")
    );
}

#[test]
fn relations_field() {
    let p = policy(
        r#"
        [[rules]]
        name = "payments-need-approval"
        action = "approve"
        relations = ["payments.*", "*.secrets"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "SELECT * FROM Payments.Cards"),
        j(Approve, "payments-need-approval")
    );
    assert_eq!(
        s.judge(&p, "UPDATE vault.secrets SET a = 1 WHERE id = 1"),
        j(Approve, "payments-need-approval")
    );
    assert_eq!(s.judge(&p, "SELECT * FROM cards"), j(Allow, "<unmatched>"));
    let v = s.eval(&p, "SELECT 1 FROM payments.x");
    assert!(
        matches!(v.action, Action::Approve { message } if message.contains("payments-need-approval"))
    );
}

#[test]
fn keywords_field_matches_tokens_not_text() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-sleep"
        action = "block"
        keywords = ["pg_sleep", "for   update"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(s.judge(&p, "SELECT pg_sleep(10)"), j(Block, "no-sleep"));
    assert_eq!(
        s.judge(&p, "SELECT * FROM t FOR/**/UPDATE"),
        j(Block, "no-sleep")
    );
    assert_eq!(s.judge(&p, "SELECT 'pg_sleep'"), j(Allow, "<unmatched>"));
    assert_eq!(
        s.judge(&p, "SELECT my_pg_sleep_x FROM t"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(s.judge(&p, "SELECT 1 -- pg_sleep"), j(Allow, "<unmatched>"));
}

#[test]
fn regex_field_runs_over_normalized_text() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-select-star"
        action = "audit"
        regex = '^SELECT \* FROM '
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "select/**/*\n\tfrom t"),
        j(Audit, "no-select-star")
    );
    assert_eq!(s.judge(&p, "SELECT a FROM t"), j(Allow, "<unmatched>"));
}

#[test]
fn criteria_combine_with_and() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-deletes-on-payments"
        action = "block"
        classes = ["delete"]
        relations = ["payments.*"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "DELETE FROM payments.x WHERE id = 1"),
        j(Block, "no-deletes-on-payments")
    );
    assert_eq!(
        s.judge(&p, "DELETE FROM other WHERE id = 1"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(
        s.judge(&p, "SELECT * FROM payments.x"),
        j(Allow, "<unmatched>")
    );
}

#[test]
fn first_match_wins_in_order() {
    let p = policy(
        r#"
        unmatched = "block"
        [[rules]]
        name = "audit-drops"
        action = "audit"
        classes = ["drop_table"]
        [[rules]]
        name = "block-ddl"
        action = "block"
        classes = ["drop", "create"]
        [[rules]]
        name = "reads"
        action = "allow"
        classes = ["select"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(s.judge(&p, "DROP TABLE t"), j(Audit, "audit-drops"));
    assert_eq!(s.judge(&p, "DROP VIEW v"), j(Block, "block-ddl"));
    assert_eq!(s.judge(&p, "SELECT 1"), j(Allow, "reads"));
    assert_eq!(
        s.judge(&p, "INSERT INTO t VALUES (1)"),
        j(Block, "<unmatched>")
    );
}

#[test]
fn multi_statement_gets_the_strictest() {
    let p = policy(
        r#"
        [[rules]]
        name = "audit-writes"
        action = "audit"
        classes = ["insert"]
        [[rules]]
        name = "approve-updates"
        action = "approve"
        classes = ["update"]
        [[rules]]
        name = "block-drops"
        action = "block"
        classes = ["drop"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "SELECT 1; INSERT INTO t VALUES (1)"),
        j(Audit, "audit-writes")
    );
    assert_eq!(
        s.judge(&p, "INSERT INTO t VALUES (1); UPDATE t SET a = 1; SELECT 1"),
        j(Approve, "approve-updates")
    );
    assert_eq!(
        s.judge(
            &p,
            "INSERT INTO t VALUES (1); DROP TABLE t; UPDATE t SET a = 1"
        ),
        j(Block, "block-drops")
    );
    // A data-modifying CTE body is judged as a statement of its own.
    assert_eq!(
        s.judge(
            &p,
            "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x"
        ),
        j(Approve, "approve-updates")
    );
    let v = s.eval(&p, "SELECT 1; INSERT INTO t VALUES (1); DROP TABLE t");
    assert_eq!(v.statements, 3);
    let classes: Vec<_> = v.classes.iter().collect();
    assert_eq!(
        classes,
        [
            StatementClass::Select,
            StatementClass::Insert,
            StatementClass::Drop
        ]
    );
    assert_eq!(s.judge(&p, " -- nothing\n;"), j(Allow, "<empty>"));
}

#[test]
fn subject_and_group_scoping() {
    let p = policy(
        r#"
        unmatched = "block"
        [[rules]]
        name = "dbas-may-drop"
        action = "allow"
        classes = ["drop"]
        groups = ["dba"]
        [[rules]]
        name = "migrator-may-create"
        action = "allow"
        classes = ["create"]
        subjects = ["migrator"]
        [[rules]]
        name = "everyone-reads"
        action = "allow"
        classes = ["select"]
        "#,
    );
    let mut job = Session::new();
    let mut dba = Session::new().member("alice", &["dev", "dba"]);
    let mut migrator = Session::new().member("migrator", &[]);
    assert_eq!(job.judge(&p, "DROP TABLE t"), j(Block, "<unmatched>"));
    assert_eq!(dba.judge(&p, "DROP TABLE t"), j(Allow, "dbas-may-drop"));
    assert_eq!(
        migrator.judge(&p, "CREATE TABLE t (a int)"),
        j(Allow, "migrator-may-create")
    );
    assert_eq!(
        dba.judge(&p, "CREATE TABLE t (a int)"),
        j(Block, "<unmatched>")
    );
    assert_eq!(job.judge(&p, "SELECT 1"), j(Allow, "everyone-reads"));
}

#[test]
fn unclassified_defaults_to_block() {
    let p = policy(
        r#"
        [[rules]]
        name = "catch-all"
        action = "allow"
        "#,
    );
    let mut s = Session::new();
    assert_eq!(s.judge(&p, "SELECT 1"), j(Allow, "catch-all"));
    // A catch-all rule does not cover statements nobody could classify.
    assert_eq!(
        s.judge(&p, "FROBNICATE the database"),
        j(Block, "<unclassified>")
    );
    assert_eq!(
        s.judge(&p, "SELECT 'unterminated"),
        j(Block, "<unclassified>")
    );
    let v = s.eval(&p, "SELECT 1; FROBNICATE");
    assert!(matches!(v.action, Action::Block { message } if message.contains("classify")));
    // Unless the policy says otherwise, or a rule names `unknown`.
    let lenient = policy("unclassified = 'audit'");
    assert_eq!(s.judge(&lenient, "FROBNICATE"), j(Audit, "<unclassified>"));
    let named = policy(
        "[[rules]]\nname = 'unknown-needs-approval'\naction = 'approve'\nclasses = ['unknown']",
    );
    assert_eq!(
        s.judge(&named, "FROBNICATE"),
        j(Approve, "unknown-needs-approval")
    );
}

#[test]
fn execute_is_judged_by_prepare() {
    let p = policy(
        r#"
        [[rules]]
        name = "no-mass-delete"
        action = "block"
        classes = ["delete_without_where"]
        [[rules]]
        name = "approve-updates"
        action = "approve"
        classes = ["update"]
        "#,
    );
    let mut s = Session::new();
    assert_eq!(
        s.judge(&p, "PREPARE q (int) AS SELECT * FROM t WHERE id = $1"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(s.judge(&p, "EXECUTE q(1)"), j(Allow, "<unmatched>"));
    // A blocked PREPARE never reached the server, so its name stays unknown.
    assert_eq!(
        s.judge(&p, "PREPARE wipe AS DELETE FROM t"),
        j(Block, "no-mass-delete")
    );
    assert_eq!(s.judge(&p, "EXECUTE wipe"), j(Block, "<unclassified>"));
    // Unknown names get the unclassified default.
    assert_eq!(
        s.judge(&p, "EXECUTE never_prepared"),
        j(Block, "<unclassified>")
    );
    // Names fold like identifiers.
    assert_eq!(s.judge(&p, "EXECUTE Q(2)"), j(Allow, "<unmatched>"));
    // A PREPARE that needs approval is remembered only once it is forwarded.
    assert_eq!(
        s.judge(&p, "PREPARE up AS UPDATE t SET a = 1 WHERE id = 1"),
        j(Approve, "approve-updates")
    );
    assert!(s.prepared.has_pending());
    s.prepared.resolve_pending(true);
    assert_eq!(s.judge(&p, "EXECUTE up"), j(Approve, "approve-updates"));
    // DEALLOCATE forgets.
    assert_eq!(s.judge(&p, "DEALLOCATE q"), j(Allow, "<unmatched>"));
    assert_eq!(s.judge(&p, "EXECUTE q(1)"), j(Block, "<unclassified>"));
    assert_eq!(s.judge(&p, "DISCARD ALL"), j(Allow, "<unmatched>"));
    assert_eq!(s.judge(&p, "EXECUTE up"), j(Block, "<unclassified>"));
}

#[test]
fn mysql_prepare_from_literal_and_protocol_prepares() {
    let p = policy(
        "[[rules]]\nname = 'no-mass-delete'\naction = 'block'\nclasses = ['delete_without_where']",
    );
    let mut s = Session::new();
    s.dialect = Dialect::MYSQL;
    assert_eq!(
        s.judge(&p, "PREPARE s FROM 'DELETE FROM t'"),
        j(Block, "no-mass-delete")
    );
    assert_eq!(
        s.judge(&p, "PREPARE s FROM 'SELECT * FROM t WHERE id = ?'"),
        j(Allow, "<unmatched>")
    );
    assert_eq!(s.judge(&p, "EXECUTE s USING @id"), j(Allow, "<unmatched>"));
    // A body we cannot read is unclassified.
    assert_eq!(
        s.judge(&p, "PREPARE s2 FROM @sql"),
        j(Block, "<unclassified>")
    );
    // Protocol-level Parse: the session evaluates and remembers.
    let verdict = s.eval(&p, "DELETE FROM t").stored();
    s.prepared.remember(b"stmt1", verdict);
    assert_eq!(p.verdict_for_prepared(&s.prepared, b"stmt1").kind(), Block);
    assert_eq!(
        p.verdict_for_prepared(&s.prepared, b"stmt2").decided_by,
        DecidedBy::Unclassified
    );
    assert_eq!(
        p.verdict_for_prepared(&s.prepared, b"stmt1").decided_by,
        DecidedBy::Rule {
            index: 0,
            name: "no-mass-delete"
        }
    );
    s.prepared.forget(b"stmt1");
    assert_eq!(
        p.verdict_for_prepared(&s.prepared, b"stmt1").decided_by,
        DecidedBy::Unclassified
    );
}

#[test]
fn policy_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
}
