//! MySQL/MariaDB blocking corpus: every dangerous statement in
//! `corpus/mysql_dangerous.sql` (plain, in executable comments, behind
//! comments, backticks and other statements) must be caught, and every
//! look-alike in `corpus/mysql_benign.sql` must pass as its class and match
//! no dangerous selector. Same file format as corpus.rs reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_codecs::sql::presets::MEMBERS;
use tollgate_codecs::sql::{
    Classified, Classifier, Dialect, MySqlMode, Selector, Statement, StatementClass, decode_string,
};

struct Case {
    line: usize,
    dialect: Dialect,
    expect: String,
    sql: String,
}

fn mode(version: u32, mariadb: bool) -> MySqlMode {
    MySqlMode {
        ansi_quotes: false,
        backslash_escapes: true,
        server_version: version,
        mariadb,
    }
}

fn dialect(name: &str) -> Dialect {
    Dialect::MySql(match name {
        "my" => mode(80036, false),
        "my-noesc" => MySqlMode {
            backslash_escapes: false,
            ..mode(80036, false)
        },
        "my-ansi" => MySqlMode {
            ansi_quotes: true,
            ..mode(80036, false)
        },
        "my-nover" => mode(0, false),
        "maria" => mode(101106, true),
        other => panic!("unknown dialect {other:?}"),
    })
}

fn load(name: &str) -> Vec<Case> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cases: Vec<Case> = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    let flush = |cases: &mut Vec<Case>, body: &mut Vec<&str>| {
        if let Some(c) = cases.last_mut() {
            c.sql = body.join("\n");
        }
        body.clear();
    };
    for (n, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("=== ") {
            flush(&mut cases, &mut body);
            let parts: Vec<&str> = header.split_whitespace().collect();
            assert_eq!(parts.len(), 2, "{name}:{}: bad header", n + 1);
            cases.push(Case {
                line: n + 1,
                dialect: dialect(parts[0]),
                expect: parts[1].to_string(),
                sql: String::new(),
            });
        } else if !cases.is_empty() {
            body.push(line);
        }
    }
    flush(&mut cases, &mut body);
    cases
}

/// Every statement, and the statements of `PREPARE s FROM '<sql>'` bodies.
fn visit_all(c: &Classified<'_>, dialect: Dialect, mut f: impl FnMut(&Classified<'_>, &Statement)) {
    let mut inner = Classifier::new();
    let mut body = Vec::new();
    for s in c.statements() {
        f(c, s);
        if s.class == StatementClass::Prepare && !s.body.is_empty() {
            assert!(decode_string(c.text(s.body), dialect, &mut body));
            let got = inner.classify(&body, dialect);
            for b in got.statements() {
                f(&got, b);
            }
        }
    }
}

fn calls(c: &Classified<'_>, s: &Statement, name: &str) -> bool {
    c.functions(s)
        .any(|f| f.bare.eq_ignore_ascii_case(name.as_bytes()))
}

fn describe(c: &Classified<'_>) -> String {
    let parts: Vec<String> = c
        .statements()
        .iter()
        .map(|s| format!("{}/{} {:#x}", s.class, s.object, s.flags.0))
        .collect();
    parts.join(", ")
}

#[test]
fn mysql_dangerous_statements_are_caught() {
    let cases = load("mysql_dangerous.sql");
    assert!(cases.len() >= 100, "corpus shrank to {}", cases.len());
    let mut classifier = Classifier::new();
    let mut misses = Vec::new();
    for case in &cases {
        let got = classifier.classify(case.sql.as_bytes(), case.dialect);
        let mut caught = false;
        visit_all(&got, case.dialect, |c, s| {
            caught |= match case.expect.strip_prefix("fn:") {
                Some(name) => calls(c, s, name),
                None => Selector::parse(&case.expect)
                    .unwrap_or_else(|| panic!("line {}: unknown selector", case.line))
                    .matches(s),
            };
        });
        if !caught {
            misses.push(format!(
                "line {}: {} not caught in {:?}: {}",
                case.line,
                case.expect,
                case.sql,
                describe(&got)
            ));
        }
    }
    println!(
        "mysql dangerous: {}/{} caught",
        cases.len() - misses.len(),
        cases.len()
    );
    assert!(misses.is_empty(), "missed:\n{}", misses.join("\n"));
}

/// Selectors no benign case may match (the preset members are added).
const DANGER: &[&str] = &[
    "drop",
    "truncate",
    "delete_without_where",
    "update_without_where",
    "grant",
    "revoke",
    "create_role",
    "set_global",
    "into_outfile",
    "load_data",
    "load_data_local",
    "install",
    "shutdown",
    "kill",
    "lexical_mode_change",
    "unknown",
];

#[test]
fn mysql_benign_look_alikes_pass() {
    let cases = load("mysql_benign.sql");
    assert!(cases.len() >= 100, "corpus shrank to {}", cases.len());
    let names: Vec<&str> = DANGER
        .iter()
        .copied()
        .chain(MEMBERS.iter().map(|m| m.selector))
        .collect();
    let danger: Vec<Selector> = names.iter().map(|d| Selector::parse(d).unwrap()).collect();
    let mut classifier = Classifier::new();
    let mut failures = Vec::new();
    for case in &cases {
        let got = classifier.classify(case.sql.as_bytes(), case.dialect);
        let expected: Vec<Selector> = case
            .expect
            .split(',')
            .map(|e| Selector::parse(e).unwrap_or_else(|| panic!("line {}: {e}", case.line)))
            .collect();
        let mut problems = Vec::new();
        if got.statements().len() != expected.len() {
            problems.push(format!(
                "{} statements, expected {}",
                got.statements().len(),
                expected.len()
            ));
        }
        for (i, (s, sel)) in got.statements().iter().zip(&expected).enumerate() {
            if !sel.matches(s) {
                problems.push(format!("statement {i} does not match {sel:?}"));
            }
        }
        visit_all(&got, case.dialect, |c, s| {
            for (name, sel) in names.iter().zip(&danger) {
                if sel.matches(s) {
                    problems.push(format!("matches danger selector {name}"));
                }
            }
            if calls(c, s, "load_file") {
                problems.push("calls load_file".into());
            }
        });
        if !problems.is_empty() {
            failures.push(format!(
                "line {}: {:?}: {} [{}]",
                case.line,
                case.sql,
                problems.join("; "),
                describe(&got)
            ));
        }
    }
    println!(
        "mysql benign: {}/{} passed",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
