//! The differential run: tollgate against PostgreSQL's parser on the
//! project's corpora, the installed server's own SQL scripts, and generated
//! and mutated statements. Fails on any finding where tollgate is more
//! permissive than the tree; prints every count.
//!
//! Bounds: `TOLLGATE_ORACLE_SECONDS` (default 40) of generated input after
//! the fixed corpora, `TOLLGATE_ORACLE_SEED` to reproduce a run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tollgate_codecs::sql::Classifier;
use tollgate_sql_oracle::generate::{Rng, mutate, script};
use tollgate_sql_oracle::{Outcome, Severity, check};

#[derive(Default)]
struct Tally {
    inputs: usize,
    rejected: usize,
    statements: usize,
    stricter: usize,
    stricter_examples: Vec<String>,
    permissive: Vec<String>,
}

impl Tally {
    fn run(&mut self, classifier: &mut Classifier, source: &str, sql: &str) -> Outcome {
        self.inputs += 1;
        let outcome = check(classifier, sql);
        if outcome.rejected {
            self.rejected += 1;
        }
        self.statements += outcome.statements;
        for f in &outcome.findings {
            match f.severity {
                Severity::Stricter => {
                    self.stricter += 1;
                    if self.stricter_examples.len() < 3 {
                        // Whole scripts are inputs too: an example names
                        // the place and shows the input's start only.
                        let head: String = sql.chars().take(160).collect();
                        self.stricter_examples
                            .push(format!("{source}: {} in {head:?}…", f.what));
                    }
                }
                Severity::Permissive => {
                    self.permissive
                        .push(format!("{source}: {} in {sql:?}", f.what));
                }
            }
        }
        outcome
    }

    fn report(&self, name: &str) {
        println!(
            "oracle {name}: {} inputs, {} rejected by the server, {} statements compared, {} permissive, {} stricter",
            self.inputs,
            self.rejected,
            self.statements,
            self.permissive.len(),
            self.stricter
        );
        for s in &self.stricter_examples {
            println!("  stricter {s}");
        }
        for p in self.permissive.iter().take(30) {
            println!("  PERMISSIVE {p}");
        }
    }
}

/// `pg` cases of the blocking corpora (the other dialects are not
/// PostgreSQL, and `pg-oldstr` is a mode libpg_query does not parse in).
fn corpus_cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    for name in ["dangerous.sql", "benign.sql"] {
        let path = format!("{}/../corpus/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut current: Option<(String, bool, Vec<&str>)> = None;
        let mut finish = |c: Option<(String, bool, Vec<&str>)>| {
            if let Some((at, esc, lines)) = c {
                let body = lines.join("\n");
                if esc {
                    if let Some(body) = unescape(&body) {
                        cases.push((at, body));
                    }
                } else {
                    cases.push((at, body));
                }
            }
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(header) = line.strip_prefix("=== ") {
                finish(current.take());
                let parts: Vec<&str> = header.split_whitespace().collect();
                if parts.first() == Some(&"pg") {
                    let at = format!("{name}:{}", n + 1);
                    current = Some((at, parts.get(2) == Some(&"esc"), Vec::new()));
                }
            } else if let Some(c) = current.as_mut() {
                c.2.push(line);
            }
        }
        finish(current.take());
    }
    cases
}

/// The corpus's `esc` bodies; `None` when the bytes are not UTF-8
/// (libpg_query takes text).
fn unescape(body: &str) -> Option<String> {
    let mut out = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let (c, used) = match b[i + 1] {
                b't' => (b'\t', 2),
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b'f' => (0x0c, 2),
                b'v' => (0x0b, 2),
                b'0' => (0, 2),
                b'\\' => (b'\\', 2),
                b'x' => (u8::from_str_radix(body.get(i + 2..i + 4)?, 16).ok()?, 4),
                _ => return None,
            };
            out.push(c);
            i += used;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// SQL scripts the installed PostgreSQL ships (catalog views, functions,
/// contrib extensions), psql meta-commands removed.
fn installed_scripts() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let root = Path::new("/usr/share/postgresql");
    let Ok(versions) = std::fs::read_dir(root) else {
        return files;
    };
    for version in versions.flatten() {
        for dir in [version.path(), version.path().join("extension")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "sql")
                    && let Ok(text) = std::fs::read_to_string(&path)
                {
                    let sql: Vec<&str> = text.lines().filter(|l| !l.starts_with('\\')).collect();
                    files.push((path.display().to_string(), sql.join("\n")));
                }
            }
        }
    }
    files.sort();
    files
}

#[test]
fn tollgate_is_never_more_permissive_than_the_server_parser() {
    let mut classifier = Classifier::new();
    let mut all_permissive = Vec::new();

    let mut corpus = Tally::default();
    for (at, sql) in corpus_cases() {
        corpus.run(&mut classifier, &at, &sql);
    }
    corpus.report("project corpora");
    assert!(corpus.inputs > 100, "corpora not found");
    all_permissive.extend(corpus.permissive);

    let mut installed = Tally::default();
    let scripts = installed_scripts();
    for (path, text) in &scripts {
        // The whole script as one simple-protocol string, then each of its
        // statements alone (as a driver's Parse would send it).
        installed.run(&mut classifier, path, text);
        if let Ok(parts) = pg_query::split_with_parser(text) {
            for part in parts {
                installed.run(&mut classifier, path, part);
            }
        }
    }
    installed.report("installed PostgreSQL scripts");
    println!("oracle installed scripts read: {}", scripts.len());
    // tests/deps.sh installs postgresql-15, which ships them: none is a
    // broken setup, not a pass.
    assert!(
        scripts.len() > 50,
        "no PostgreSQL SQL scripts under /usr/share/postgresql"
    );
    all_permissive.extend(installed.permissive);

    let seconds = std::env::var("TOLLGATE_ORACLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40u64);
    let seed = std::env::var("TOLLGATE_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_7011_6a7e_u64);
    println!("oracle generated: seed {seed}, {seconds} s");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng::new(seed);
    let mut generated = Tally::default();
    let mut mutated = Tally::default();
    while Instant::now() < deadline {
        for _ in 0..200 {
            let sql = script(&mut rng);
            generated.run(&mut classifier, "generated", &sql);
            for _ in 0..4 {
                let m = mutate(&mut rng, &sql);
                mutated.run(&mut classifier, "mutated", &m);
            }
        }
    }
    generated.report("generated");
    mutated.report("mutated");
    assert!(
        generated.inputs > 1000,
        "generator too slow to mean anything"
    );
    all_permissive.extend(generated.permissive);
    all_permissive.extend(mutated.permissive);

    assert!(
        all_permissive.is_empty(),
        "{} findings where tollgate is more permissive than PostgreSQL's parser (first: {:?})",
        all_permissive.len(),
        all_permissive.first()
    );
}
