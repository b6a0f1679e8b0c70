//! Canonical statement text for keyword and regex rules, and decoding of
//! string literals (a MySQL `PREPARE s FROM '<sql>'` body).
//!
//! Normalized text is built from tokens, so comments and odd whitespace
//! cannot hide a keyword and a keyword inside a literal cannot fake one:
//! - unquoted words are uppercased (`dRoP` → `DROP`);
//! - string literals of every form (`'..'`, `E'..'`, `$$..$$`, MySQL `".."`)
//!   become `?`; numbers, parameters and operators are kept as written;
//! - quoted identifiers are kept as written, quotes included (`"drop"`);
//! - tokens are joined by one space, except none after `(` or `.`, none
//!   before `)`, `,`, `.` or `;`, and none between a name and its `(`:
//!   `SELECT PG_READ_FILE(?) FROM A.B WHERE X IN(?, ?)`.

use super::lexer::{Dialect, Token, TokenKind};

/// Writes the normalized text of `tokens` (lexed from `sql`) into `out`,
/// replacing its contents.
pub fn write_normalized(sql: &[u8], tokens: &[Token], out: &mut Vec<u8>) {
    out.clear();
    let mut prev: Option<TokenKind> = None;
    for token in tokens {
        let kind = token.kind;
        if let Some(prev) = prev {
            let glue_after = matches!(prev, TokenKind::LParen | TokenKind::Dot);
            let glue_before = matches!(
                kind,
                TokenKind::RParen | TokenKind::Comma | TokenKind::Dot | TokenKind::Semicolon
            ) || (kind == TokenKind::LParen
                && matches!(prev, TokenKind::Word | TokenKind::QuotedIdent));
            if !glue_after && !glue_before {
                out.push(b' ');
            }
        }
        let text = token.text(sql);
        match kind {
            TokenKind::Word => out.extend(text.iter().map(u8::to_ascii_uppercase)),
            TokenKind::String | TokenKind::Unterminated | TokenKind::Ambiguous => out.push(b'?'),
            _ => out.extend_from_slice(text),
        }
        prev = Some(kind);
    }
}

/// Decodes a `String` token's value into `out` (replacing its contents).
/// Returns false for forms whose value this does not decode (PostgreSQL
/// `U&'..'`, bit strings), so a caller fails closed.
pub fn decode_string(raw: &[u8], dialect: Dialect, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(&first) = raw.first() else {
        return false;
    };
    if first == b'$' {
        let Some(delim_len) = raw[1..].iter().position(|&b| b == b'$').map(|p| p + 2) else {
            return false;
        };
        if raw.len() < 2 * delim_len {
            return false;
        }
        out.extend_from_slice(&raw[delim_len..raw.len() - delim_len]);
        return true;
    }
    let (body_start, backslashes, hex) = match first.to_ascii_lowercase() {
        b'\'' | b'"' => (0, plain_backslashes(dialect), false),
        b'e' if !dialect.is_mysql() => (1, true, false),
        b'n' => (1, plain_backslashes(dialect), false),
        b'x' => (1, false, true),
        _ => return false,
    };
    let quoted = &raw[body_start..];
    let (Some(&quote), true) = (quoted.first(), quoted.len() >= 2) else {
        return false;
    };
    let body = &quoted[1..quoted.len() - 1];
    if hex {
        return decode_hex(body, out);
    }
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && backslashes && i + 1 < body.len() {
            let e = body[i + 1];
            out.push(match e {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 0x08,
                b'0' => 0,
                b'Z' if dialect.is_mysql() => 0x1a,
                other => other,
            });
            i += 2;
        } else if b == quote && body.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 2;
        } else if b == quote {
            // A lone quote inside: a PostgreSQL literal continued across a
            // newline (`'a'\n'b'`), not decoded here.
            return false;
        } else {
            out.push(b);
            i += 1;
        }
    }
    true
}

fn plain_backslashes(dialect: Dialect) -> bool {
    match dialect {
        Dialect::Postgres(p) => !p.standard_conforming_strings,
        Dialect::MySql(m) => m.backslash_escapes,
    }
}

fn decode_hex(body: &[u8], out: &mut Vec<u8>) -> bool {
    if !body.len().is_multiple_of(2) {
        return false;
    }
    for pair in body.chunks_exact(2) {
        let (Some(hi), Some(lo)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
            return false;
        };
        out.push(hi << 4 | lo);
    }
    true
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sql::lexer::tokenize;

    fn normalized(sql: &str, dialect: Dialect) -> String {
        let mut tokens = Vec::new();
        tokenize(sql.as_bytes(), dialect, &mut tokens).unwrap();
        let mut out = Vec::new();
        write_normalized(sql.as_bytes(), &tokens, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normalization_is_canonical() {
        assert_eq!(
            normalized("dRoP/**/DATABASE\t\n x", Dialect::POSTGRES),
            "DROP DATABASE X"
        );
        assert_eq!(
            normalized(
                "select pg_read_file ('/etc/passwd') from a . b where x in (1, $1)",
                Dialect::POSTGRES
            ),
            "SELECT PG_READ_FILE(?) FROM A.B WHERE X IN(1, $1)"
        );
        assert_eq!(
            normalized(
                "SELECT 'DROP TABLE x', $$DROP$$, \"drop\"",
                Dialect::POSTGRES
            ),
            "SELECT ?, ?, \"drop\""
        );
        assert_eq!(
            normalized("SELECT \"a\" # c\n;", Dialect::MYSQL),
            "SELECT ?;"
        );
    }

    fn decoded(raw: &str, dialect: Dialect) -> Option<String> {
        let mut out = Vec::new();
        decode_string(raw.as_bytes(), dialect, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn decodes_literals_by_dialect() {
        assert_eq!(
            decoded("'it''s'", Dialect::POSTGRES).as_deref(),
            Some("it's")
        );
        assert_eq!(decoded(r"'a\'b'", Dialect::MYSQL).as_deref(), Some("a'b"));
        assert_eq!(
            decoded(r"'a\nb'", Dialect::POSTGRES).as_deref(),
            Some(r"a\nb")
        );
        assert_eq!(
            decoded(r"E'a\nb'", Dialect::POSTGRES).as_deref(),
            Some("a\nb")
        );
        assert_eq!(
            decoded("$x$ DROP $x$", Dialect::POSTGRES).as_deref(),
            Some(" DROP ")
        );
        assert_eq!(
            decoded("X'44524f50'", Dialect::MYSQL).as_deref(),
            Some("DROP")
        );
        assert_eq!(decoded("X'4'", Dialect::MYSQL), None);
        assert_eq!(decoded("U&'d\\0061'", Dialect::POSTGRES), None);
        assert_eq!(decoded("'a'\n'b'", Dialect::POSTGRES), None);
        assert_eq!(
            decoded("\"x\"\"y\"", Dialect::MYSQL).as_deref(),
            Some("x\"y")
        );
    }
}
