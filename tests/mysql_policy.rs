//! The MySQL statement corpus over the wire: every dangerous statement of
//! `codecs/corpus/mysql_dangerous.sql` sent through tollgate to a real
//! MariaDB must come back as the gateway's ERR 1142 (never the server's
//! answer), and every benign one of `mysql_benign.sql` must not; the
//! server's state is checked directly afterwards. Cases written for a
//! session state the wire session does not have (ANSI_QUOTES,
//! NO_BACKSLASH_ESCAPES, an unknown server version) are left to the
//! classifier's own corpus test (`codecs/tests/mysql_corpus.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::mygw::MyGateway;
use common::mywire::{Conn, Outcome, login_config};

/// (dialect, expected selector, sql) of a corpus file.
fn load(name: &str) -> Vec<(String, String, String)> {
    let path = format!("{}/codecs/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut cases: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("=== ") {
            let parts: Vec<&str> = header.split_whitespace().collect();
            cases.push((parts[0].into(), parts[1].into(), String::new()));
        } else if let Some(c) = cases.last_mut() {
            if !c.2.is_empty() {
                c.2.push('\n');
            }
            c.2.push_str(line);
        }
    }
    cases
        .into_iter()
        .filter(|(d, _, _)| d == "my" || d == "maria")
        .collect()
}

/// Whether an answer is the gateway's refusal (its 1142, not the server's
/// "command denied" 1142).
fn blocked_by_gateway(out: &[Outcome]) -> bool {
    out.iter().any(|o| {
        matches!(o, Outcome::Err { code: 1142, message, .. } if !message.contains("command denied"))
    })
}

/// An executable comment MySQL 8.0.36 skips and MariaDB 10.11 runs:
/// `/*M! */`, or `/*!NNNNN */` with 80036 < NNNNN <= 101106.
fn runs_on_mariadb_only(sql: &str) -> bool {
    if sql.contains("/*M!") {
        return true;
    }
    sql.match_indices("/*!").any(|(i, _)| {
        let digits: String = sql[i + 3..]
            .chars()
            .take(6)
            .take_while(char::is_ascii_digit)
            .collect();
        digits.len() >= 5
            && digits
                .parse::<u32>()
                .is_ok_and(|v| v > 80036 && v <= 101106)
    })
}

#[test]
fn the_mysql_corpus_over_the_wire_zero_bypasses_zero_false_blocks() {
    let dangerous = load("mysql_dangerous.sql");
    let benign = load("mysql_benign.sql");
    assert!(
        dangerous.len() >= 100 && benign.len() >= 100,
        "{} {}",
        dangerous.len(),
        benign.len()
    );
    let mut classes = BTreeSet::new();
    let mut functions = BTreeSet::new();
    for (_, expect, _) in &dangerous {
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
    let g = MyGateway::builder().tables(&rules).start();
    g.direct(
        "CREATE TABLE app.users (id INT PRIMARY KEY, name TEXT); \
         INSERT INTO app.users VALUES (1, 'a'), (2, 'b'), (3, 'c'); \
         CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app.t VALUES (1, 'x')",
    );
    let before = g.direct("SELECT COUNT(*) FROM app.users");
    let outfile_before = std::path::Path::new("/tmp/users.csv").exists();
    let t = g.token("ci-job", "ci");
    let mut c = Conn::connect(g.port, login_config("ci-job", &t, true), &g.ca).unwrap();
    let mut bypasses = Vec::new();
    for (dialect, expect, sql) in &dangerous {
        let out = c.query(sql);
        if !blocked_by_gateway(&out) {
            bypasses.push(format!("{dialect} {expect}: {sql:?} -> {out:?}"));
        }
    }
    let mut false_blocks = Vec::new();
    let mut mariadb_runs = 0;
    for (dialect, expect, sql) in &benign {
        let out = c.query(sql);
        if dialect == "my" && runs_on_mariadb_only(sql) {
            // Benign on MySQL 8.0.36, where the comment is skipped; MariaDB
            // 10.11 runs it, and the gateway judges as the upstream runs.
            assert!(blocked_by_gateway(&out), "{sql:?} -> {out:?}");
            mariadb_runs += 1;
        } else if blocked_by_gateway(&out) {
            false_blocks.push(format!("{dialect} {expect}: {sql:?} -> {out:?}"));
        }
        // Leave any transaction a case opened.
        c.query("ROLLBACK");
    }
    assert!(
        bypasses.is_empty(),
        "{} bypasses:\n{}",
        bypasses.len(),
        bypasses.join("\n")
    );
    assert!(
        false_blocks.is_empty(),
        "{} false blocks:\n{}",
        false_blocks.len(),
        false_blocks.join("\n")
    );
    assert_eq!(
        mariadb_runs, 3,
        "the corpus changed: check runs_on_mariadb_only"
    );
    // The server's state, read directly: nothing dangerous ran.
    assert_eq!(g.direct("SELECT COUNT(*) FROM app.users"), before);
    assert_eq!(g.direct("SHOW DATABASES LIKE 'app'"), "app");
    assert_eq!(
        g.direct("SELECT @@GLOBAL.general_log, @@GLOBAL.local_infile"),
        "0\t1"
    );
    let grants = g.direct("SHOW GRANTS FOR native_user@'%'");
    assert!(!grants.contains("ALL PRIVILEGES ON *.*"), "{grants}");
    // native_user holds FILE: an INTO OUTFILE that ran would have left this.
    assert!(
        outfile_before || !std::path::Path::new("/tmp/users.csv").exists(),
        "an INTO OUTFILE ran"
    );
}
