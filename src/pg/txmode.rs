//! Transaction mode: statements whose effect would outlive the transaction
//! on the server connection — and so reach the next caller given that
//! connection — are refused (the relay answers them as a blocked statement,
//! rule `transaction-mode`). Refusing rather than pinning keeps the pool's
//! promise (a caller holds a connection only while in a transaction) and
//! needs no reset between transactions, as pgbouncer runs none in
//! transaction mode.
//!
//! Refused: `SET` without `LOCAL` (and `SET SESSION …`), `SET ROLE` and
//! `SET SESSION AUTHORIZATION` in any form, `LISTEN`, `DECLARE … WITH HOLD`,
//! SQL-level `PREPARE` (not `PREPARE TRANSACTION`), `DEALLOCATE` and
//! `DISCARD` (they would drop the gateway's protocol-level statements),
//! `LOAD`, temporary objects (`CREATE TEMP …`, `SELECT … INTO TEMP`),
//! session advisory locks (`pg_advisory_lock[_shared]`,
//! `pg_try_advisory_lock[_shared]`; the `_xact_` forms are fine) and
//! `set_config(…, …, is_local)` unless `is_local` is the literal `true`.
//! The check reads the statement's own text: what a function or `DO`
//! block does inside is not seen here; the release check
//! (`crate::pg::relay` `txcheck.rs`, `server_check_query`) asks the server
//! when the connection goes back, and closes one found holding state.

use tollgate_codecs::sql::{Dialect, Token, TokenKind, tokenize};

/// The rule name shown for these refusals.
pub const RULE: &str = "transaction-mode";

/// Why `sql` may not run in transaction mode, if it may not.
pub fn refusal(sql: &[u8], dialect: Dialect, tokens: &mut Vec<Token>) -> Option<String> {
    if tokenize(sql, dialect, tokens).is_err() {
        return Some(why("this statement (too long to check)"));
    }
    let words: Vec<(TokenKind, &[u8])> = tokens
        .iter()
        .filter(|t| !matches!(t.kind, TokenKind::String | TokenKind::Number))
        .map(|t| (t.kind, t.text(sql)))
        .collect();
    for stmt in words.split(|(k, _)| *k == TokenKind::Semicolon) {
        if let Some(what) = statement(stmt) {
            return Some(why(what));
        }
    }
    // Function calls anywhere (a SELECT, a CTE, a DEFAULT).
    for (i, (k, w)) in tokens.iter().map(|t| (t.kind, t.text(sql))).enumerate() {
        if k != TokenKind::Word && k != TokenKind::QuotedIdent {
            continue;
        }
        let w = w
            .strip_prefix(b"\"")
            .and_then(|w| w.strip_suffix(b"\""))
            .unwrap_or(w);
        if SESSION_LOCKS.iter().any(|l| w.eq_ignore_ascii_case(l)) {
            return Some(why("a session advisory lock (use pg_advisory_xact_lock)"));
        }
        if w.eq_ignore_ascii_case(b"set_config") && !local_set_config(sql, &tokens[i + 1..]) {
            return Some(why("set_config(…, …, false) (use is_local = true)"));
        }
    }
    None
}

const SESSION_LOCKS: [&[u8]; 4] = [
    b"pg_advisory_lock",
    b"pg_advisory_lock_shared",
    b"pg_try_advisory_lock",
    b"pg_try_advisory_lock_shared",
];

fn why(what: &str) -> String {
    format!(
        "tollgate pools this target in transaction mode: {what} would outlive the transaction \
         on a server connection shared with other callers, and is refused"
    )
}

/// The session-lasting kind of one statement (its tokens, strings and
/// numbers left out), if it is one.
fn statement(t: &[(TokenKind, &[u8])]) -> Option<&'static str> {
    let word = |i: usize| {
        t.get(i)
            .filter(|(k, _)| *k == TokenKind::Word)
            .map(|(_, w)| w.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let first = word(0);
    let second = word(1);
    match first.as_slice() {
        b"set" => match second.as_slice() {
            b"role" => Some("SET ROLE"),
            b"session" if word(2) == b"authorization" => Some("SET SESSION AUTHORIZATION"),
            b"session" => Some("SET SESSION"),
            b"local" if word(2) == b"role" => Some("SET ROLE"),
            b"local" if word(2) == b"session" => Some("SET SESSION AUTHORIZATION"),
            b"local" | b"transaction" | b"constraints" => None,
            _ => Some("SET without LOCAL (use SET LOCAL)"),
        },
        b"listen" => Some("LISTEN"),
        b"declare" => t
            .windows(2)
            .any(|w| w[0].1.eq_ignore_ascii_case(b"with") && w[1].1.eq_ignore_ascii_case(b"hold"))
            .then_some("DECLARE … WITH HOLD"),
        b"prepare" if second != b"transaction" => Some("PREPARE (use the protocol's Parse)"),
        b"deallocate" => Some("DEALLOCATE"),
        b"discard" => Some("DISCARD"),
        b"load" => Some("LOAD"),
        b"create" => {
            // CREATE [OR REPLACE] [LOCAL | GLOBAL] {TEMP | TEMPORARY} …
            let mut i = 1;
            if second == b"or" && word(2) == b"replace" {
                i = 3;
            }
            if matches!(word(i).as_slice(), b"local" | b"global") {
                i += 1;
            }
            matches!(word(i).as_slice(), b"temp" | b"temporary").then_some("a temporary object")
        }
        _ => t
            .windows(2)
            .any(|w| {
                w[0].1.eq_ignore_ascii_case(b"into")
                    && (w[1].1.eq_ignore_ascii_case(b"temp")
                        || w[1].1.eq_ignore_ascii_case(b"temporary"))
            })
            .then_some("a temporary object"),
    }
}

/// Whether the call after `set_config` is `(…, …, true)`.
fn local_set_config(sql: &[u8], after: &[Token]) -> bool {
    let mut it = after.iter();
    if it.next().map(|t| t.kind) != Some(TokenKind::LParen) {
        // Not a call (a column named set_config, say).
        return true;
    }
    let (mut depth, mut commas) = (0u32, 0u32);
    let mut third: Vec<&Token> = Vec::new();
    for t in it {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen if depth == 0 => break,
            TokenKind::RParen => depth -= 1,
            TokenKind::Comma if depth == 0 => {
                commas += 1;
                continue;
            }
            _ => {}
        }
        if commas == 2 {
            third.push(t);
        }
    }
    commas == 2
        && third.len() == 1
        && third[0].kind == TokenKind::Word
        && third[0].text(sql).eq_ignore_ascii_case(b"true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::lexmode::pg_dialect;

    fn refused(sql: &str) -> bool {
        refusal(sql.as_bytes(), pg_dialect(true), &mut Vec::new()).is_some()
    }

    #[test]
    fn session_state_is_refused_and_transaction_state_is_not() {
        for sql in [
            "SET search_path = x",
            "set statement_timeout to 5",
            "select 1; SET work_mem = '1MB'",
            "SET SESSION work_mem = '1MB'",
            "SET ROLE admin",
            "set local role admin",
            "SET SESSION AUTHORIZATION admin",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "LISTEN ch",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE ALL",
            "DISCARD ALL",
            "LOAD 'auto_explain'",
            "CREATE TEMP TABLE t (a int)",
            "create local temporary table t (a int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "SELECT 1 INTO TEMP t",
            "SELECT pg_advisory_lock(1)",
            "select PG_TRY_ADVISORY_LOCK_SHARED(1)",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT set_config('a.b', 'x', $1)",
            "SELECT set_config('a.b', 'x')",
        ] {
            assert!(refused(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "SET LOCAL search_path = x",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED",
            "BEGIN; UPDATE t SET a = 1; COMMIT",
            "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1",
            "PREPARE TRANSACTION 'x'",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT set_config('a.b', 'x', true)",
            "SELECT 'SET role x; LISTEN y'",
            "CREATE TABLE temp (a int)",
            "RESET ALL",
            "UNLISTEN *",
        ] {
            assert!(!refused(sql), "{sql}");
        }
    }
}
