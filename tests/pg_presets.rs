//! Rule presets end to end through the PostgreSQL gateway: every statement
//! of the "no destructive statements" probe (issue 12, part C), and the
//! privilege and exfiltration statements, over the simple and the extended
//! protocol, with the server's state read directly before and after each;
//! the blocking corpus replayed over the wire against the three presets;
//! and `tollgate check` warning about a partial list of classes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire, error_of};
use common::*;
use tollgate_codecs::pg;

const PRESETS: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
preset = "destructive"

[[target.policy.rules]]
name = "no-privilege"
action = "block"
message = "privilege changes are not allowed through tollgate"
preset = "privilege"

[[target.policy.rules]]
name = "no-exfiltration"
action = "block"
message = "exfiltration is not allowed through tollgate"
preset = "exfiltration"
"#;

/// One line describing everything the statements below could change.
const FINGERPRINT: &str = "select concat_ws(' | ', \
  (select count(*) || ' rows ' || sum(balance) from accounts), \
  (select string_agg(attname, ',' order by attnum) from pg_attribute \
     where attrelid = 'accounts'::regclass and attnum > 0 and not attisdropped), \
  (select format_type(atttypid, atttypmod) from pg_attribute \
     where attrelid = 'accounts'::regclass and attname = 'balance'), \
  (select count(*) || ' functions' from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
     where n.nspname in ('public', 'app')), \
  (select count(*) || ' security definer' from pg_proc where prosecdef and proowner <> 10), \
  (select count(*) || ' triggers' from pg_trigger where not tgisinternal), \
  (select count(*) || ' rules' from pg_rules where schemaname = 'public'), \
  (select count(*) || ' app relations' from pg_class c join pg_namespace n on n.oid = c.relnamespace \
     where n.nspname = 'app'), \
  (select count(*) || ' large objects' from pg_largeobject_metadata), \
  (select count(*) || ' mallory roles' from pg_roles where rolname like 'mallory%'), \
  (select tableowner from pg_tables where tablename = 'accounts'), \
  (select coalesce(relacl::text, 'no acl') || ' rls ' || relrowsecurity from pg_class \
     where oid = 'accounts'::regclass), \
  (select count(*) || ' policies' from pg_policies), \
  (select count(*) || ' views' from pg_views where schemaname = 'public'))";

fn setup(name: &str, rules: &str) -> PgGateway {
    let g = PgGateway::builder().tables(rules).start(name);
    let role = &g.role;
    g.direct(&format!(
        "create table accounts (id int primary key, owner text, balance int);
         insert into accounts select g, 'owner' || g, 100 from generate_series(1, 10) g;
         alter table accounts owner to {role};
         alter table accounts enable row level security;
         create policy own on accounts using (true);
         create schema app authorization {role};
         create table app.keep (id int); alter table app.keep owner to {role};
         create view public.v as select 1 as one; alter view public.v owner to {role};
         create function public.tf() returns trigger language plpgsql
           as $$ begin truncate accounts; return null; end $$;
         alter function public.tf() owner to {role};
         create procedure public.wipe() language sql as $$ delete from accounts $$;
         alter procedure public.wipe() owner to {role};
         select lo_create(4242); alter large object 4242 owner to {role};
         grant create on database {db} to {role};",
        db = g.db
    ));
    g
}

/// Parse/Bind/Execute/Sync of one statement, unnamed; the messages up to
/// ReadyForQuery.
fn extended(w: &mut Wire, sql: &str) -> Vec<Msg> {
    let mut b = BytesMut::new();
    pg::encode_parse(&mut b, b"", sql.as_bytes(), &[]).unwrap();
    pg::encode_bind(&mut b, b"", b"", &[], std::iter::empty(), &[]).unwrap();
    pg::encode_execute(&mut b, b"", 0).unwrap();
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready()
}

/// The rule that blocked, from the error's detail; None when no error or
/// the error came from the server.
fn blocked_by(msgs: &[Msg]) -> Option<String> {
    let e = error_of(msgs)?;
    if e.field(b'C').as_deref() != Some("42501") {
        return None;
    }
    let detail = e.field(b'D')?;
    ["no-destructive", "no-privilege", "no-exfiltration"]
        .into_iter()
        .find(|r| detail.contains(r))
        .map(str::to_string)
}

/// (rule expected to block, statement) — the issue's list first. A
/// statement in several presets is blocked by the first rule in order
/// (destructive, privilege, exfiltration).
fn dangerous(role: &str) -> Vec<(&'static str, String)> {
    let d = "no-destructive";
    let p = "no-privilege";
    let e = "no-exfiltration";
    let mut v: Vec<(&'static str, String)> = [
        (d, "MERGE INTO accounts a USING accounts b ON a.id = b.id WHEN MATCHED THEN DELETE"),
        (d, "MERGE INTO accounts a USING (SELECT 1 AS id) s ON true WHEN MATCHED THEN UPDATE SET balance = 0"),
        (d, "DO $$ BEGIN DROP TABLE accounts; END $$"),
        (d, "DO $$ BEGIN EXECUTE 'DEL' || 'ETE FROM accounts'; END $$"),
        (d, "DO LANGUAGE plpgsql $x$ BEGIN EXECUTE format('TRUNCATE %I', 'accounts'); END $x$"),
        (d, "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM accounts $$"),
        (d, "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM accounts RETURNING 1'"),
        (d, "CREATE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM accounts $$"),
        (d, "CALL wipe()"),
        (d, "CALL public.wipe()"),
        (d, "CREATE RULE r AS ON INSERT TO accounts DO ALSO DELETE FROM accounts"),
        (d, "CREATE TRIGGER tr AFTER INSERT ON accounts FOR EACH STATEMENT EXECUTE FUNCTION tf()"),
        (d, "CREATE FUNCTION tf2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN TRUNCATE accounts; RETURN NULL; END $$"),
        (d, "DROP SCHEMA app CASCADE"),
        (d, "ALTER TABLE accounts DROP COLUMN balance"),
        (d, "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint USING 0"),
        (d, "DELETE FROM accounts WHERE true"),
        (d, "DELETE FROM accounts WHERE 1=1"),
        (d, "DELETE FROM accounts WHERE 'a'='a'"),
        (d, "DELETE FROM accounts WHERE id = id"),
        (d, "DELETE FROM accounts WHERE id = 3 OR true"),
        (d, "DELETE FROM accounts WHERE NOT false"),
        (d, "UPDATE accounts SET balance = 0 WHERE (1 = 1)"),
        (d, "WITH x AS (DELETE FROM accounts WHERE TRUE RETURNING 1) SELECT count(*) FROM x"),
        (d, "DELETE FROM accounts"),
        (d, "TRUNCATE accounts"),
        (d, "COPY accounts FROM PROGRAM 'true'"),
        (d, "SELECT lo_unlink(4242)"),
        (d, "ALTER SYSTEM SET archive_command = 'true'"),
        (d, "CREATE OR REPLACE VIEW v AS SELECT 2 AS one"),
        (p, "GRANT ALL ON accounts TO public"),
        (p, "CREATE ROLE mallory SUPERUSER"),
        (p, "SET ROLE postgres"),
        (p, "SET SESSION AUTHORIZATION postgres"),
        (p, "SELECT set_config('role', 'postgres', false)"),
        (p, "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO public"),
        (p, "ALTER FUNCTION tf() SECURITY DEFINER"),
        (p, "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY"),
        (d, "DROP POLICY own ON accounts"),
        (p, "CREATE POLICY everyone ON accounts USING (true)"),
        (d, "COPY accounts TO '/tmp/tollgate-presets-accounts.csv'"),
        (e, "COPY accounts FROM '/etc/hostname'"),
        (e, "SELECT pg_read_file('/etc/passwd')"),
        (e, "SELECT pg_ls_dir('.')"),
        (d, "SELECT lo_export(4242, '/tmp/tollgate-presets-lo')"),
        (e, "SELECT lo_import('/etc/hostname')"),
        (e, "SELECT * FROM dblink('host=127.0.0.1', 'select 1') AS t(a int)"),
        (e, "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw"),
    ]
    .into_iter()
    .map(|(r, s)| (r, s.to_string()))
    .collect();
    v.push((d, format!("DROP OWNED BY {role}")));
    v.push((p, format!("ALTER TABLE accounts OWNER TO {role}")));
    v
}

#[test]
fn issue_statements_are_blocked_over_both_protocols_and_nothing_changes() {
    let g = setup("presets", PRESETS);
    let t = g.token("ci-job", "ci", "10m");
    let before = g.direct(FINGERPRINT);
    assert!(
        before.starts_with("10 rows 1000 | id,owner,balance | integer"),
        "{before}"
    );
    let (mut simple, _) = Wire::login(g.port, &g.db, &t);
    let (mut ext, _) = Wire::login(g.port, &g.db, &t);
    let cases = dangerous(&g.role);
    for (rule, sql) in &cases {
        for (protocol, msgs) in [
            ("simple", {
                simple.query(sql);
                simple.until_ready()
            }),
            ("extended", extended(&mut ext, sql)),
        ] {
            assert_eq!(
                msgs.last().map(|m| m.tag),
                Some(b'Z'),
                "{protocol}: out of sync after {sql}"
            );
            assert_eq!(
                blocked_by(&msgs).as_deref(),
                Some(*rule),
                "{protocol}: {sql} -> {msgs:?}"
            );
            assert_eq!(
                g.direct(FINGERPRINT),
                before,
                "{protocol}: {sql} changed the server"
            );
        }
    }
    // The same session still does ordinary work, and a WHERE that restricts
    // still runs: the presets block intent, not the verbs.
    for sql in [
        "DELETE FROM accounts WHERE id = 10",
        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
    ] {
        simple.query(sql);
        let msgs = simple.until_ready();
        assert!(error_of(&msgs).is_none(), "{sql}: {msgs:?}");
    }
    let after = extended(&mut ext, "INSERT INTO accounts VALUES (11, 'x', 5)");
    assert!(error_of(&after).is_none(), "{after:?}");
    assert_eq!(
        g.direct("select count(*), sum(balance) from accounts"),
        "10|906"
    );
    println!(
        "{} issue statements blocked over both protocols",
        cases.len()
    );
}

/// Corpus case: (expectation, sql), PostgreSQL cases only.
fn corpus(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!(
        "{}/codecs/corpus/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut cases = Vec::new();
    let mut cur: Option<(String, bool, bool, String)> = None;
    let flush = |cur: &mut Option<(String, bool, bool, String)>,
                 cases: &mut Vec<(String, String)>| {
        if let Some((expect, pg, esc, mut sql)) = cur.take() {
            if sql.ends_with('\n') {
                sql.pop();
            }
            if pg {
                cases.push((expect, if esc { unescape(&sql) } else { sql }));
            }
        }
    };
    for line in text.split_inclusive('\n') {
        if let Some(h) = line.strip_prefix("=== ") {
            flush(&mut cur, &mut cases);
            let parts: Vec<&str> = h.split_whitespace().collect();
            cur = Some((
                parts[1].to_string(),
                parts[0] == "pg",
                parts.get(2) == Some(&"esc"),
                String::new(),
            ));
        } else if let Some((_, _, _, sql)) = cur.as_mut() {
            sql.push_str(line);
        }
    }
    flush(&mut cur, &mut cases);
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

/// What the replay policy adds to the presets for corpus cases whose
/// selector is in no preset on purpose (see README: `select_into` creates,
/// `lexical_mode_change` is the lexer's concern, `pg_terminate_backend`
/// ends sessions, `set_config` of a lexing setting): named by extra rules, so every dangerous case must
/// still be blocked. `unknown` is the `unclassified` default (block).
const OUTSIDE_PRESETS: &str = r#"
[[target.policy.rules]]
name = "named-outside-presets"
action = "block"
classes = ["select_into", "lexical_mode_change"]

[[target.policy.rules]]
name = "named-functions"
action = "block"
functions = ["pg_terminate_backend", "pg_cancel_backend", "set_config"]
"#;

/// Every PostgreSQL case of the blocking corpus through a target with the
/// three presets: every dangerous one blocked by tollgate, no benign one.
/// One session; each case in a transaction that is rolled back, so cases
/// do not change what later ones see (save the few benign ones that
/// COMMIT themselves).
#[test]
fn the_corpus_replayed_against_the_presets() {
    let dangerous = corpus("dangerous.sql");
    let benign = corpus("benign.sql");
    assert!(
        dangerous.len() >= 300 && benign.len() >= 300,
        "{} dangerous / {} benign PostgreSQL cases",
        dangerous.len(),
        benign.len()
    );
    let g = setup("presetcorpus", &format!("{PRESETS}{OUTSIDE_PRESETS}"));
    let t = g.token("ci-job", "ci", "10m");
    let before = g.direct(FINGERPRINT);
    let (mut w, _) = Wire::login(g.port, &g.db, &t);
    let mut run = |sql: &str| -> Vec<Msg> {
        w.query("BEGIN");
        w.until_ready();
        w.query(sql);
        let msgs = w.until_ready();
        assert_eq!(
            msgs.last().map(|m| m.tag),
            Some(b'Z'),
            "out of sync after {sql:?}"
        );
        w.query("ROLLBACK");
        w.until_ready();
        msgs
    };
    let is_tollgate = |msgs: &[Msg]| {
        error_of(msgs).is_some_and(|e| {
            e.field(b'C').as_deref() == Some("42501")
                && e.field(b'D').is_some_and(|d| d.contains("tollgate"))
        })
    };
    let mut bypasses = Vec::new();
    // Unclassifiable text goes to the server's parser first and never runs:
    // a syntax error comes back as the server's own 42601 (src/pg/probe.rs).
    let is_syntax_error =
        |msgs: &[Msg]| error_of(msgs).is_some_and(|e| e.field(b'C').as_deref() == Some("42601"));
    for (expect, sql) in &dangerous {
        let msgs = run(sql);
        let refused = is_tollgate(&msgs) || (*expect == "unknown" && is_syntax_error(&msgs));
        if !refused {
            bypasses.push(format!("{expect}: {sql:?} -> {:?}", error_of(&msgs)));
        }
    }
    // Nothing a dangerous case sent reached the server. (Benign cases that
    // COMMIT their own transaction may change it afterwards.)
    let after_dangerous = g.direct(FINGERPRINT);
    let mut false_blocks = Vec::new();
    for (expect, sql) in &benign {
        let msgs = run(sql);
        if is_tollgate(&msgs) {
            false_blocks.push(format!("{expect}: {sql:?} -> {:?}", error_of(&msgs)));
        }
    }
    println!(
        "presets over the wire: {} dangerous, {} bypasses; {} benign, {} false blocks",
        dangerous.len(),
        bypasses.len(),
        benign.len(),
        false_blocks.len()
    );
    assert!(bypasses.is_empty(), "bypasses:\n{}", bypasses.join("\n"));
    assert!(
        false_blocks.is_empty(),
        "false blocks:\n{}",
        false_blocks.join("\n")
    );
    assert_eq!(after_dangerous, before);
}

/// `tollgate check` on a configuration whose rule names some destructive
/// classes: a warning naming the rule, what is missing and the preset;
/// with the preset, no warning.
#[test]
fn check_warns_about_a_partial_destructive_list() {
    let partial = r#"
[[target.policy.rules]]
name = "hand-made"
action = "block"
classes = ["drop_table", "truncate", "delete_without_where", "update_without_where"]
"#;
    let g = PgGateway::builder().tables(partial).start("presetcheck");
    let cfg = g.gw.dir().join("tollgate.toml");
    let out = std::process::Command::new(tollgate_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    for needle in [
        "\"hand-made\"",
        "destructive",
        "merge_delete",
        "tautological_where",
        "do, call",
        "preset = \"destructive\"",
    ] {
        assert!(warning.contains(needle), "{needle} not in {warning}");
    }
    assert!(!warning.contains(" truncate,"), "{warning}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rule presets: version"),
        "{out:?}"
    );
    // Adding the preset silences it.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let fixed = g.gw.dir().join("fixed.toml");
    std::fs::write(
        &fixed,
        format!("{text}\n[[target.policy.rules]]\nname = \"all\"\naction = \"block\"\npreset = \"destructive\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(tollgate_bin())
        .args(["check", "--config"])
        .arg(&fixed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );
}
