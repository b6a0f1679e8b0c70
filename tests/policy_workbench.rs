//! `tollgate policy test` and `tollgate policy explain` through the built
//! binary: no target is contacted (the config's upstream, credential and
//! key files do not even exist), verdicts come from the session's own
//! judging code, `--expect` makes a regression test (exit 0 / 1), stdin and
//! recording exports are inputs, lexical options change what is read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::tollgate_bin;

const CONFIG: &str = r#"
[identity]
[[identity.issuer]]
name = "test"
issuer = "https://issuer.test"
audience = ["tollgate"]
jwks_file = "/nonexistent/jwks.json"

[[target]]
name = "pg"
protocol = "postgres"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:1"
[target.credential]
user = "app"
password_file = "/nonexistent/pw"
[target.access]
groups = ["ci"]
[target.masking]
[[target.masking.rules]]
name = "pii"
columns = ["ssn"]
style = "redact"
[target.policy]
[[target.policy.rules]]
name = "no-destructive"
action = "block"
preset = "destructive"
[[target.policy.rules]]
name = "dba-grants"
action = "approve"
classes = ["grant"]
groups = ["dba"]
"#;

const SQL: &str = "SELECT ssn AS x FROM people;\n\
                   -- DROP TABLE in a comment; ignored\n\
                   DELETE FROM orders;\n\
                   DELETE FROM orders WHERE id = 1;\n\
                   GRANT SELECT ON orders TO analyst;\n\
                   SELECT $$;DROP TABLE t;$$;\n";

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tollgate.toml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("in.sql"), SQL).unwrap();
        Bench { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `tollgate policy <args>` with this bench's config and target.
    fn policy(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(tollgate_bin());
        cmd.arg("policy").args(args).args([
            "--config",
            self.path("tollgate.toml").to_str().unwrap(),
            "--target",
            "pg",
        ]);
        run(&mut cmd, stdin)
    }
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that refuses before it reads stdin closes the pipe first.
    if let Err(e) = input.write_all(stdin.unwrap_or("").as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all(o: &Output) -> String {
    stdout(o) + &String::from_utf8_lossy(&o.stderr)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The (verdict, rule) per statement of a `--json` run.
fn verdicts(o: &Output) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn policy_test_judges_each_statement_and_expectations_pass_or_fail() {
    let b = Bench::new();
    let input = b.path("in.sql");
    let o = b.policy(&["test", "--as", "svc-ci,ci", "--json", p(&input)], None);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let got = verdicts(&o);
    let want = [
        ("allow", "unmatched"),
        ("block", "no-destructive"),
        ("allow", "unmatched"),
        ("allow", "unmatched"),
        ("allow", "unmatched"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(v, r)| (v.to_string(), r.to_string()))
        .collect();
    assert_eq!(got, want, "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let first = &doc["results"][0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["masking"]["column"], "ssn", "{first}");
    assert_eq!(doc["results"][1]["line"], 3);
    assert!(
        doc["results"][1]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "delete_without_where"),
        "{doc}"
    );

    // The groups decide: a dba's GRANT is held for approval.
    let o = b.policy(&["test", "--as", "alice,dba", "--json", p(&input)], None);
    assert_eq!(verdicts(&o)[3], ("approve".into(), "dba-grants".into()));

    // Pin today's verdicts, and they pass (from a file and from stdin).
    let o = b.policy(
        &["test", "--as", "svc-ci,ci", "--emit-expect", p(&input)],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let expect = b.write("policy.expect", &stdout(&o));
    assert!(
        stdout(&o).contains("block:no-destructive             DELETE FROM orders\n"),
        "{}",
        stdout(&o)
    );
    let o = b.policy(
        &[
            "test",
            "--as",
            "svc-ci,ci",
            "--expect",
            p(&expect),
            p(&input),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let o = b.policy(
        &["test", "--as", "svc-ci,ci", "--expect", p(&expect), "-"],
        Some(SQL),
    );
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(stdout(&o).contains("every statement got its expected verdict"));

    // A different caller differs: exit 1 and a diff naming the line.
    let o = b.policy(
        &[
            "test",
            "--as",
            "alice,dba",
            "--expect",
            p(&expect),
            p(&input),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    let out = stdout(&o);
    assert!(out.contains("@@ line 5 @@"), "{out}");
    assert!(out.contains("-allow:unmatched"), "{out}");
    assert!(out.contains("+approve:dba-grants"), "{out}");

    // A hand-written expectation without a rule, and one the input lacks.
    let loose = b.write(
        "loose.expect",
        "# reviewed\nblock DELETE   FROM orders\nblock TRUNCATE orders\n",
    );
    let o = b.policy(
        &[
            "test",
            "--as",
            "svc-ci,ci",
            "--expect",
            p(&loose),
            "--json",
            "-",
        ],
        Some("DELETE FROM orders;"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let diffs = doc["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{doc}");
    assert_eq!(diffs[0]["statement"], "TRUNCATE orders");
    assert!(diffs[0]["actual"].is_null());
    assert_eq!(doc["ok"], false);
}

#[test]
fn policy_test_reads_statements_in_the_sessions_lexical_mode() {
    let b = Bench::new();
    // One string literal when backslashes escape, a DELETE when they do not.
    let sql = r"SELECT 'a\' ; DELETE FROM orders; -- '";
    let on = b.policy(&["test", "--as", "svc-ci,ci", "--json", "-"], Some(sql));
    assert_eq!(verdicts(&on)[1], ("block".into(), "no-destructive".into()));
    let off = b.policy(
        &[
            "test",
            "--as",
            "svc-ci,ci",
            "--standard-conforming-strings",
            "off",
            "--json",
            "-",
        ],
        Some(sql),
    );
    assert_eq!(verdicts(&off), vec![("allow".into(), "unmatched".into())]);
    // Pipelined behind each other, each is judged under both settings.
    let piped = b.policy(
        &["test", "--as", "svc-ci,ci", "--pipelined", "--json", "-"],
        Some("SELECT 1;\nSELECT E'\u{95}\\' ;"),
    );
    assert_eq!(verdicts(&piped)[1].1, "lexical-state", "{}", all(&piped));
    // Encodings the gateway refuses are refused here too.
    let sjis = b.policy(
        &[
            "test",
            "--as",
            "svc-ci,ci",
            "--client-encoding",
            "SJIS",
            "-",
        ],
        Some("SELECT 1"),
    );
    assert_eq!(sjis.status.code(), Some(2), "{}", all(&sjis));
    assert!(all(&sjis).contains("client_encoding"), "{}", all(&sjis));
    let set = b.policy(
        &["test", "--as", "svc-ci,ci", "--json", "-"],
        Some("SET client_encoding = 'SJIS'"),
    );
    assert_eq!(
        verdicts(&set),
        vec![("block".into(), "lexical-state".into())]
    );
}

#[test]
fn policy_test_reads_a_recordings_export_as_the_recorded_callers() {
    let b = Bench::new();
    let export = [
        r#"{"shard":0,"seq":1,"session":7,"type":"session_start","subject":"alice","groups":["dba"],"target":"pg"}"#,
        r#"{"shard":0,"seq":2,"session":7,"type":"command","statement":"GRANT SELECT ON orders TO analyst","verdict":"approve","rule":"dba-grants"}"#,
        r#"{"shard":0,"seq":3,"session":8,"type":"session_start","subject":"svc-ci","groups":["ci"],"target":"pg"}"#,
        r#"{"shard":0,"seq":4,"session":8,"type":"command","statement":"GRANT SELECT ON orders TO analyst","verdict":"allow"}"#,
        r#"{"shard":0,"seq":5,"session":8,"type":"command","statement":"DELETE FROM orders","verdict":"allow"}"#,
        r#"{"shard":0,"seq":6,"session":9,"type":"session_start","subject":"x","groups":[],"target":"elsewhere"}"#,
        r#"{"shard":0,"seq":7,"session":9,"type":"command","statement":"DROP DATABASE x","verdict":"allow"}"#,
    ]
    .join("\n");
    let file = b.write("export.jsonl", &(export + "\n"));
    let o = b.policy(&["test", "--json", p(&file)], None);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let got = verdicts(&o);
    assert_eq!(got.len(), 3, "the other target's session is skipped");
    assert_eq!(got[0], ("approve".into(), "dba-grants".into()));
    assert_eq!(got[1], ("allow".into(), "unmatched".into()));
    assert_eq!(got[2], ("block".into(), "no-destructive".into()));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["skipped_other_targets"], 1);
    // Against what was recorded: the DELETE that ran would now be blocked.
    let o = b.policy(&["test", "--expect-recorded", p(&file)], None);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    let out = stdout(&o);
    assert!(out.contains("@@ session 8 @@"), "{out}");
    assert!(out.contains("+block:no-destructive"), "{out}");
    // --as overrides the recorded callers.
    let o = b.policy(&["test", "--as", "svc-ci,ci", "--json", p(&file)], None);
    assert_eq!(verdicts(&o)[0], ("allow".into(), "unmatched".into()));
}

#[test]
fn policy_test_refuses_what_it_cannot_run() {
    let b = Bench::new();
    let o = b.policy(&["test", "-"], Some("SELECT 1"));
    assert_eq!(o.status.code(), Some(2), "no caller: {}", all(&o));
    let mut cmd = Command::new(tollgate_bin());
    cmd.args(["policy", "test", "--config"])
        .arg(b.path("tollgate.toml"))
        .args(["--target", "nope", "--as", "x", "-"]);
    let o = run(&mut cmd, Some("SELECT 1"));
    assert_eq!(o.status.code(), Some(2));
    assert!(all(&o).contains("no target named \"nope\""), "{}", all(&o));
    let bad = b.write("bad.expect", "deny SELECT 1\n");
    let o = b.policy(
        &["test", "--as", "x", "--expect", p(&bad), "-"],
        Some("SELECT 1"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", all(&o));
    assert!(all(&o).contains("line 1"), "{}", all(&o));
}

#[test]
fn policy_explain_shows_the_lexers_view_and_every_rule() {
    let b = Bench::new();
    let sql = "DELETE FROM app.orders; SELECT pg_read_file('/etc/passwd')";
    let mut cmd = Command::new(tollgate_bin());
    cmd.args(["policy", "explain", sql, "--tokens", "--json"]);
    let o = run(&mut cmd, None);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = doc["statements"].as_array().unwrap();
    assert_eq!(s.len(), 2, "{doc}");
    assert_eq!(
        (s[0]["start"].as_u64(), s[0]["end"].as_u64()),
        (Some(0), Some(22))
    );
    assert_eq!(s[0]["relations"][0], "app.orders");
    assert!(
        s[0]["selectors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "delete_without_where")
    );
    assert_eq!(s[1]["functions"][0], "pg_read_file");
    assert!(
        s[1]["selectors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "server_file_read")
    );
    assert_eq!(s[0]["tokens"][0]["keyword"], "Delete", "{doc}");
    assert!(doc.get("verdict").is_none());

    // With a policy: the verdict, and why each rule matched or not.
    let o = b.policy(&["explain", sql, "--as", "bob,ci"], None);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let out = stdout(&o);
    assert!(
        out.contains("#0 bytes 0..22: DELETE FROM app.orders"),
        "{out}"
    );
    assert!(out.contains("rule no-destructive"), "{out}");
    assert!(out.contains("MATCH: every criterion matched"), "{out}");
    assert!(out.contains("not for this caller"), "{out}");
    assert!(
        out.contains("verdict: block (decided by no-destructive)"),
        "{out}"
    );

    // The MySQL dialect: backquotes and `#` comments.
    let mut cmd = Command::new(tollgate_bin());
    cmd.args([
        "policy",
        "explain",
        "--dialect",
        "mysql",
        "--json",
        "SELECT `a;b` FROM t # ; DROP DATABASE x\n; TRUNCATE t",
    ]);
    let o = run(&mut cmd, None);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let classes: Vec<&str> = doc["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["select", "truncate"], "{doc}");
    assert_eq!(doc["dialect"], "mysql");
}
