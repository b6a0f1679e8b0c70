//! Blocking corpus: every obfuscated dangerous statement in
//! `corpus/dangerous.sql` must be caught, and every benign look-alike in
//! `corpus/benign.sql` must pass as its class. Prints counts; fails on any miss.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_codecs::sql::presets::MEMBERS;
use tollgate_codecs::sql::{
    Classified, Classifier, Dialect, MySqlMode, PgMode, Selector, Statement, StatementClass,
    decode_string,
};

struct Case {
    line: usize,
    dialect: Dialect,
    expect: String,
    sql: Vec<u8>,
}

fn mysql(version: u32, mariadb: bool) -> MySqlMode {
    MySqlMode {
        ansi_quotes: false,
        backslash_escapes: true,
        server_version: version,
        mariadb,
    }
}

fn dialect(name: &str) -> Dialect {
    match name {
        "pg" => Dialect::POSTGRES,
        "pg-oldstr" => Dialect::Postgres(PgMode {
            standard_conforming_strings: false,
        }),
        "my" => Dialect::MySql(mysql(80036, false)),
        "my-noesc" => Dialect::MySql(MySqlMode {
            backslash_escapes: false,
            ..mysql(80036, false)
        }),
        "my-ansi" => Dialect::MySql(MySqlMode {
            ansi_quotes: true,
            ..mysql(80036, false)
        }),
        "my-nover" => Dialect::MYSQL,
        "maria" => Dialect::MySql(mysql(101106, true)),
        other => panic!("unknown dialect {other:?}"),
    }
}

fn unescape(body: &str) -> Vec<u8> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let (b, used) = match bytes[i + 1] {
                b't' => (b'\t', 2),
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b'f' => (0x0c, 2),
                b'v' => (0x0b, 2),
                b'0' => (0, 2),
                b'\\' => (b'\\', 2),
                b'x' => (
                    u8::from_str_radix(&body[i + 2..i + 4], 16).expect("bad \\x escape"),
                    4,
                ),
                other => panic!("unknown escape \\{}", other as char),
            };
            out.push(b);
            i += used;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn load(name: &str) -> Vec<Case> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cases = Vec::new();
    // (header line, dialect, expect, esc, body lines)
    let mut current: Option<(usize, Dialect, String, bool, Vec<&str>)> = None;
    let finish = |c: Option<(usize, Dialect, String, bool, Vec<&str>)>, cases: &mut Vec<Case>| {
        if let Some((line, dialect, expect, esc, lines)) = c {
            let body = lines.join("\n");
            let sql = if esc {
                unescape(&body)
            } else {
                body.into_bytes()
            };
            cases.push(Case {
                line,
                dialect,
                expect,
                sql,
            });
        }
    };
    for (n, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("=== ") {
            finish(current.take(), &mut cases);
            let parts: Vec<&str> = header.split_whitespace().collect();
            assert!(
                (2..=3).contains(&parts.len()) && parts.get(2).is_none_or(|f| *f == "esc"),
                "{name}:{}: bad header",
                n + 1
            );
            current = Some((
                n + 1,
                dialect(parts[0]),
                parts[1].to_string(),
                parts.len() == 3,
                Vec::new(),
            ));
        } else if let Some(c) = current.as_mut() {
            c.4.push(line);
        }
    }
    finish(current.take(), &mut cases);
    cases
}

/// Visits every statement and, for MySQL `PREPARE s FROM '<sql>'`, the
/// statements of the body, classified the way the policy classifies them.
fn with_prepared_bodies(
    classified: &Classified<'_>,
    dialect: Dialect,
    mut visit: impl FnMut(&Classified<'_>, &Statement),
) {
    let mut inner = Classifier::new();
    let mut body = Vec::new();
    for s in classified.statements() {
        visit(classified, s);
        if s.class == StatementClass::Prepare && !s.body.is_empty() {
            assert!(decode_string(classified.text(s.body), dialect, &mut body));
            let got = inner.classify(&body, dialect);
            for b in got.statements() {
                visit(&got, b);
            }
        }
    }
}

fn calls(c: &Classified<'_>, s: &Statement, name: &str) -> bool {
    c.functions(s).any(|f| {
        f.full.eq_ignore_ascii_case(name.as_bytes()) || f.bare.eq_ignore_ascii_case(name.as_bytes())
    })
}

/// PostgreSQL cases (the over-the-wire replays use these).
fn pg_cases(cases: &[Case]) -> usize {
    cases
        .iter()
        .filter(|c| matches!(c.dialect, Dialect::Postgres(_)))
        .count()
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
fn dangerous_statements_are_caught() {
    let cases = load("dangerous.sql");
    let mut classifier = Classifier::new();
    let mut misses = Vec::new();
    for case in &cases {
        let classified = classifier.classify(&case.sql, case.dialect);
        let selector = match case.expect.strip_prefix("fn:") {
            Some(name) => Err(name),
            None => Ok(Selector::parse(&case.expect)
                .unwrap_or_else(|| panic!("line {}: unknown selector {}", case.line, case.expect))),
        };
        let mut caught = false;
        with_prepared_bodies(&classified, case.dialect, |c, s| {
            caught |= match selector {
                Ok(sel) => sel.matches(s),
                Err(name) => calls(c, s, name),
            };
        });
        if !caught {
            misses.push(format!(
                "line {}: {} not caught in {:?}: {}",
                case.line,
                case.expect,
                String::from_utf8_lossy(&case.sql),
                describe(&classified)
            ));
        }
    }
    println!(
        "dangerous: {}/{} caught",
        cases.len() - misses.len(),
        cases.len()
    );
    assert!(cases.len() >= 100, "corpus shrank to {}", cases.len());
    assert!(
        pg_cases(&cases) >= 300,
        "{} PostgreSQL cases",
        pg_cases(&cases)
    );
    assert!(misses.is_empty(), "missed:\n{}", misses.join("\n"));
}

/// Selectors no benign case may match.
const DANGER: &[&str] = &[
    "drop",
    "truncate",
    "delete_without_where",
    "update_without_where",
    "copy_program",
    "copy_file",
    "alter_system",
    "grant",
    "revoke",
    "create_role",
    "alter_role",
    "drop_role",
    "set_role",
    "set_global",
    "into_outfile",
    "select_into",
    "load_data",
    "load",
    "do",
    "install",
    "shutdown",
    "kill",
    "lexical_mode_change",
    "unknown",
];

/// Functions no benign case may call.
const DANGER_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "lo_import",
    "lo_export",
    "dblink",
    "dblink_exec",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_ls_dir",
    "set_config",
    "load_file",
];

#[test]
fn benign_look_alikes_pass() {
    let cases = load("benign.sql");
    // The corpus test's own list, and every member of the rule presets.
    let names: Vec<&str> = DANGER
        .iter()
        .copied()
        .chain(MEMBERS.iter().map(|m| m.selector))
        .collect();
    let danger: Vec<Selector> = names.iter().map(|d| Selector::parse(d).unwrap()).collect();
    let mut classifier = Classifier::new();
    let mut failures = Vec::new();
    for case in &cases {
        let classified = classifier.classify(&case.sql, case.dialect);
        let expected: Vec<Selector> = case
            .expect
            .split(',')
            .map(|e| {
                Selector::parse(e)
                    .unwrap_or_else(|| panic!("line {}: unknown selector {e}", case.line))
            })
            .collect();
        let statements = classified.statements();
        let mut problems = Vec::new();
        if statements.len() != expected.len() {
            problems.push(format!(
                "{} statements, expected {}",
                statements.len(),
                expected.len()
            ));
        }
        for (i, (s, sel)) in statements.iter().zip(&expected).enumerate() {
            if !sel.matches(s) {
                problems.push(format!("statement {i} does not match {sel:?}"));
            }
        }
        with_prepared_bodies(&classified, case.dialect, |c, s| {
            for (name, sel) in names.iter().zip(&danger) {
                if sel.matches(s) {
                    problems.push(format!("matches danger selector {name}"));
                }
            }
            for name in DANGER_FUNCTIONS {
                if calls(c, s, name) {
                    problems.push(format!("calls {name}"));
                }
            }
        });
        if !problems.is_empty() {
            failures.push(format!(
                "line {}: {:?}: {} [{}]",
                case.line,
                String::from_utf8_lossy(&case.sql),
                problems.join("; "),
                describe(&classified)
            ));
        }
    }
    println!(
        "benign: {}/{} passed",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(cases.len() >= 100, "corpus shrank to {}", cases.len());
    assert!(
        pg_cases(&cases) >= 300,
        "{} PostgreSQL cases",
        pg_cases(&cases)
    );
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
