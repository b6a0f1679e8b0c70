//! The lexical state a PostgreSQL statement will be read under, and the
//! client encodings tollgate refuses because they can hide a backslash.
//!
//! The gateway learns `standard_conforming_strings` from the server's
//! ParameterStatus, which only arrives with the answer to the statement that
//! changed it. A statement pipelined behind one still in flight may therefore
//! be read by the server under either setting: any statement can change it
//! (`SET`, `RESET`, `set_config`, `ROLLBACK` of a `SET LOCAL`, a function or a
//! trigger that calls `set_config`), so tollgate does not try to prove which
//! cannot. While anything is in flight the mode is *unsettled*, and a
//! statement that lexes differently under the two settings is judged under
//! both, strictest verdict wins (see `Inspector::judge`). Only a statement
//! holding a backslash can lex differently, so the common case costs one
//! memchr.
//!
//! Client encodings whose multi-byte characters may end in 0x5C (SJIS, BIG5,
//! GBK, GB18030, UHC, JOHAB, SHIFT_JIS_2004: PostgreSQL's client-only
//! encodings) make the server see a character where the gateway's lexer sees
//! `\`: a string ends somewhere else. PostgreSQL itself never uses them as
//! server encodings; tollgate refuses them at start-up, on `SET`, and ends a
//! session whose server reports one.

use bytes::BytesMut;
use memchr::memchr;
use tollgate_codecs::pg::{self, Caps, Limits, tag};
use tollgate_codecs::sql::{Dialect, PgMode, Token, TokenKind, decode_string, tokenize};

/// Encoding names (as PostgreSQL's `clean_encoding_name` leaves them: ASCII
/// letters and digits, lower case) that map to a client-only encoding in
/// PostgreSQL's `encnames.c`.
const BACKSLASH_HIDING: &[&[u8]] = &[
    b"big5",
    b"cp932",
    b"cp936",
    b"cp949",
    b"cp950",
    b"gb18030",
    b"gbk",
    b"johab",
    b"mskanji",
    b"shiftjis",
    b"shiftjis2004",
    b"sjis",
    b"uhc",
    b"win932",
    b"win936",
    b"win949",
    b"win950",
];

/// Longest name worth cleaning (longer input cannot be one of the above).
const MAX_NAME: usize = 64;

/// Whether `name` (any case, any punctuation, as the server accepts it)
/// names an encoding whose characters can contain the byte 0x5C.
pub fn encoding_hides_backslash(name: &[u8]) -> bool {
    if name.len() > MAX_NAME {
        return false;
    }
    let mut clean = [0u8; MAX_NAME];
    let mut n = 0;
    for &b in name {
        if b.is_ascii_alphanumeric() {
            clean[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    BACKSLASH_HIDING.contains(&&clean[..n])
}

/// The refusal a client sees for such an encoding.
pub fn encoding_refusal(name: &[u8]) -> String {
    format!(
        "tollgate does not allow client_encoding \"{}\": its multi-byte characters can contain \
         the byte 0x5C (backslash), so the server could read a statement differently from the \
         gateway; use UTF8",
        String::from_utf8_lossy(&name[..name.len().min(MAX_NAME)])
    )
}

/// The refusal for a start-up packet whose `client_encoding` (libpq sends
/// PGCLIENTENCODING there) can hide a backslash.
pub fn startup_refusal(params: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    params
        .iter()
        .find(|(k, v)| k.as_slice() == b"client_encoding" && encoding_hides_backslash(v))
        .map(|(_, v)| encoding_refusal(v))
}

/// The refusal for a ParameterStatus body reporting such a client encoding.
pub fn refused_encoding_status(body: &[u8]) -> Option<String> {
    let p = pg::ParameterStatus::parse_body(body).ok()?;
    (p.name == b"client_encoding" && encoding_hides_backslash(p.value))
        .then(|| encoding_refusal(p.value))
}

/// The refusal if the server's greeting reports such a client encoding
/// (set by `options=-c client_encoding=…`, `ALTER ROLE … SET`, or the
/// database's defaults).
pub fn refused_encoding_in_greeting(greeting: &[u8]) -> Option<String> {
    let mut buf = BytesMut::from(greeting);
    let caps = Caps::backend(&Limits::default());
    while let Ok(Some(f)) = pg::next_frame(&mut buf, &caps) {
        if f.tag() == tag::PARAMETER_STATUS
            && let Some(why) = refused_encoding_status(f.body())
        {
            return Some(why);
        }
    }
    None
}

/// Whether the mode can matter for `sql` at all: `standard_conforming_strings`
/// only changes what a backslash means.
pub fn mode_may_matter(sql: &[u8]) -> bool {
    memchr(b'\\', sql).is_some()
}

/// Whether `sql` lexes into the same tokens under both settings of
/// `standard_conforming_strings` (`a`, `b` are scratch).
pub fn same_under_both_modes(sql: &[u8], a: &mut Vec<Token>, b: &mut Vec<Token>) -> bool {
    let on = tokenize(sql, pg_dialect(true), a);
    let off = tokenize(sql, pg_dialect(false), b);
    on.is_ok() && off.is_ok() && a == b
}

pub fn pg_dialect(standard_conforming_strings: bool) -> Dialect {
    Dialect::Postgres(PgMode {
        standard_conforming_strings,
    })
}

/// Whether a high byte is followed by `\`: under a client-only encoding the
/// pair is one character and the backslash is not there. Only consulted
/// while the mode is unsettled (a statement in flight might have switched
/// the encoding through a path `sets_backslash_hiding_encoding` cannot see,
/// such as a function; the ParameterStatus that follows ends the session).
pub fn multibyte_may_hide_backslash(sql: &[u8]) -> bool {
    sql.windows(2).any(|w| w[0] >= 0x81 && w[1] == b'\\')
}

/// Whether `sql` may set a backslash-hiding client encoding: it names the
/// setting (`client_encoding`, or `NAMES` as in `SET NAMES`) and one of the
/// encodings, as a word, a quoted identifier or a string literal; a literal
/// with escapes this does not decode (`E'\x53JIS'`) counts as one. This is
/// the clear error for the usual spellings; computed values
/// (`set_config('client_' || 'encoding', …)`) are caught when the server
/// reports the encoding (the session ends, and statements pipelined behind
/// are judged by `multibyte_may_hide_backslash`). Tokens are lexed in
/// `dialect`; `tokens` and `value` are scratch.
pub fn sets_backslash_hiding_encoding(
    sql: &[u8],
    dialect: Dialect,
    tokens: &mut Vec<Token>,
    value: &mut Vec<u8>,
) -> Option<String> {
    if !mentions_encoding_setting(sql) || tokenize(sql, dialect, tokens).is_err() {
        return None;
    }
    let mut names_setting = false;
    let mut encoding: Option<&[u8]> = None;
    for t in tokens.iter() {
        let raw = t.text(sql);
        let text: &[u8] = match t.kind {
            TokenKind::Word => raw,
            TokenKind::QuotedIdent | TokenKind::String if escaped(raw) => {
                // `E'\x53JIS'`, `U&'\0053JIS'`: escapes this does not
                // decode; a value it cannot read counts as a refused one.
                encoding.get_or_insert(raw);
                continue;
            }
            TokenKind::QuotedIdent => raw.strip_prefix(b"\"").unwrap_or(raw),
            TokenKind::String => {
                if !decode_string(raw, dialect, value) {
                    encoding.get_or_insert(raw);
                    continue;
                }
                value.as_slice()
            }
            _ => continue,
        };
        let text = text.strip_suffix(b"\"").unwrap_or(text);
        if text.eq_ignore_ascii_case(b"client_encoding") || text.eq_ignore_ascii_case(b"names") {
            names_setting = true;
        } else if encoding.is_none() && encoding_hides_backslash(text) {
            encoding = Some(raw);
        }
    }
    match (names_setting, encoding) {
        (true, Some(raw)) => Some(encoding_refusal(raw)),
        _ => None,
    }
}

/// Whether a literal or quoted identifier holds escapes (`\`, or the `U&`
/// form) whose decoded value the gateway does not compute here.
fn escaped(raw: &[u8]) -> bool {
    memchr(b'\\', raw).is_some() || raw.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"u&"))
}

/// Cheap prefilter: the text contains `names` or `encoding` in any case
/// (both spelled from an `n`, so one memchr pass finds the candidates).
fn mentions_encoding_setting(sql: &[u8]) -> bool {
    memchr::memchr2_iter(b'n', b'N', sql).any(|i| {
        let at = |w: &[u8]| {
            sql.get(i..i + w.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(w))
        };
        at(b"names") || at(b"ncoding")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_client_only_encoding_is_recognised() {
        for name in [
            "SJIS",
            "sjis",
            "Shift_JIS",
            "SHIFT-JIS",
            "shift_jis_2004",
            "S_J_I_S",
            "WIN932",
            "win936",
            "Win949",
            "win950",
            "BIG5",
            "GBK",
            "GB18030",
            "UHC",
            "JOHAB",
            "MS_KANJI",
            "cp932",
        ] {
            assert!(encoding_hides_backslash(name.as_bytes()), "{name}");
        }
        for name in [
            "UTF8",
            "utf-8",
            "LATIN1",
            "EUC_JP",
            "SQL_ASCII",
            "WIN1252",
            "",
        ] {
            assert!(!encoding_hides_backslash(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn set_and_set_config_of_such_an_encoding_are_caught() {
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let d = pg_dialect(true);
        for sql in [
            "SET client_encoding = 'SJIS'",
            "set client_encoding to sjis",
            "SET SESSION client_encoding TO \"Shift_JIS\"",
            "SET LOCAL client_encoding = 'big5'",
            "SET NAMES 'GBK'",
            "select set_config('client_encoding', 'WIN932', false)",
            "select set_config('client_encoding', E'\\x53JIS', false)",
            "select set_config('client_encoding', U&'\\0053JIS', false)",
            "ALTER ROLE x SET client_encoding = 'UHC'",
        ] {
            assert!(
                sets_backslash_hiding_encoding(sql.as_bytes(), d, &mut t, &mut v).is_some(),
                "{sql}"
            );
        }
        for sql in [
            "SET client_encoding = 'UTF8'",
            "SELECT 'sjis'",
            "SELECT names FROM t",
            "RESET client_encoding",
        ] {
            assert!(
                sets_backslash_hiding_encoding(sql.as_bytes(), d, &mut t, &mut v).is_none(),
                "{sql}"
            );
        }
    }

    #[test]
    fn only_backslashes_make_the_mode_matter() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert!(!mode_may_matter(b"SELECT 'a' , $$'; DROP TABLE t; --$$"));
        let attack = br"SELECT 'a\' , $$'; DROP TABLE t; --$$";
        assert!(mode_may_matter(attack));
        assert!(!same_under_both_modes(attack, &mut a, &mut b));
        assert!(same_under_both_modes(
            br"SELECT 'a\nb', E'\''",
            &mut a,
            &mut b
        ));
        assert!(multibyte_may_hide_backslash(
            b"SELECT E'\x95\\' ; TRUNCATE t; -- '"
        ));
        assert!(!multibyte_may_hide_backslash(b"SELECT 'caf\xc3\xa9'"));
    }
}
