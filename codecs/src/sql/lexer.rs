//! SQL lexer for the PostgreSQL and MySQL dialects: bytes in, token spans out.
//!
//! Tokens are `(start, end)` offsets into the caller's bytes; nothing is
//! copied and the output `Vec` is the caller's, reused between statements.
//! Comments and whitespace produce no tokens. Strings, quoted identifiers
//! and comments are scanned with memchr. Input that a server would reject
//! or read differently depending on state we do not know (an unterminated
//! string or comment, a MySQL versioned comment without a known server
//! version) produces an `Unterminated` or `Ambiguous` token, never a panic:
//! the classifier turns those statements into `Unknown`, which the policy
//! blocks by default.

use memchr::{memchr, memchr2};

use super::keywords::Kw;

/// Longest input the lexer accepts: offsets are `u32`.
pub const MAX_SQL_LEN: usize = u32::MAX as usize;

/// How a PostgreSQL session reads string literals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgMode {
    /// `standard_conforming_strings` (on since 9.1): when off, backslash
    /// escapes apply in plain `'..'` strings too.
    pub standard_conforming_strings: bool,
}

/// How a MySQL/MariaDB session reads quotes, escapes and `/*! */` comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MySqlMode {
    /// `sql_mode` has ANSI_QUOTES: `".."` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// Backslash escapes in strings (off under NO_BACKSLASH_ESCAPES).
    pub backslash_escapes: bool,
    /// The server's version as MySQL writes it in `/*!50001 .. */`
    /// (major*10000 + minor*100 + patch). 0 = unknown: a versioned
    /// executable comment is then `Ambiguous`, because whether its content
    /// runs depends on the version.
    pub server_version: u32,
    /// MariaDB runs `/*M! .. */` comments as code; MySQL ignores them.
    pub mariadb: bool,
}

/// The SQL dialect and the session state that changes how text is lexed.
/// Sessions track that state (ParameterStatus, `sql_mode`) and pass it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres(PgMode),
    MySql(MySqlMode),
}

impl Dialect {
    /// PostgreSQL with today's defaults.
    pub const POSTGRES: Dialect = Dialect::Postgres(PgMode {
        standard_conforming_strings: true,
    });
    /// MySQL with default `sql_mode` and an unknown server version.
    pub const MYSQL: Dialect = Dialect::MySql(MySqlMode {
        ansi_quotes: false,
        backslash_escapes: true,
        server_version: 0,
        mariadb: false,
    });

    pub fn is_mysql(self) -> bool {
        matches!(self, Dialect::MySql(_))
    }
}

/// What a token is. Comments and whitespace are not tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TokenKind {
    /// A bare word: keyword or unquoted identifier (`kw` says which keyword).
    Word,
    /// `"x"`, `` `x` `` or PostgreSQL `U&"x"`.
    QuotedIdent,
    /// Any string literal, including its prefix (`E'..'`, `X'..'`, `$t$..$t$`).
    String,
    Number,
    /// `$1` (PostgreSQL) or `?` (MySQL).
    Param,
    /// A run of operator characters, or any other single byte.
    Operator,
    Dot,
    Comma,
    LParen,
    RParen,
    Semicolon,
    /// A string, quoted identifier or comment that never ends; runs to the
    /// end of the input.
    Unterminated,
    /// A MySQL versioned comment whose meaning depends on the server version.
    Ambiguous,
}

/// A token: a span of the input plus what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub start: u32,
    pub end: u32,
    pub kind: TokenKind,
    /// For `Word`s, the keyword it spells (`Kw::None` for identifiers).
    pub kw: Kw,
    /// Classifier scratch: set on tokens a statement head already consumed.
    pub(crate) mark: u8,
}

impl Token {
    /// The token's bytes in the input it was lexed from.
    pub fn text<'a>(&self, sql: &'a [u8]) -> &'a [u8] {
        sql.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Errors that stop lexing before it starts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LexError {
    #[error("SQL text of {len} bytes exceeds the lexer's limit of {max}")]
    TooLong { len: usize, max: usize },
}

const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT_CONT: u8 = 4;
const DIGIT: u8 = 8;
const OP: u8 = 16;

/// Byte classes. High bytes are identifier characters, as both servers
/// treat them (so a non-breaking space is part of a word, not a gap).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            t[b] |= IDENT_START | IDENT_CONT;
        }
        if c.is_ascii_digit() {
            t[b] |= IDENT_CONT | DIGIT;
        }
        b += 1;
    }
    t[b'$' as usize] |= IDENT_CONT;
    // Space, tab, newline, vertical tab, form feed, carriage return.
    let spaces = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];
    let mut i = 0;
    while i < spaces.len() {
        t[spaces[i] as usize] |= SPACE;
        i += 1;
    }
    let ops = b"+-*/<>=~!@#%^&|`?:";
    let mut i = 0;
    while i < ops.len() {
        t[ops[i] as usize] |= OP;
        i += 1;
    }
    t
};

#[inline]
fn class(b: u8) -> u8 {
    CLASS[b as usize]
}

/// Length of the prefix of `bytes` whose bytes all have a `bits` class.
#[inline]
fn scan_while(bytes: &[u8], bits: u8) -> usize {
    bytes
        .iter()
        .position(|&b| class(b) & bits == 0)
        .unwrap_or(bytes.len())
}

/// Splits `sql` into tokens appended to `out` (cleared first).
pub fn tokenize(sql: &[u8], dialect: Dialect, out: &mut Vec<Token>) -> Result<(), LexError> {
    out.clear();
    if sql.len() > MAX_SQL_LEN {
        return Err(LexError::TooLong {
            len: sql.len(),
            max: MAX_SQL_LEN,
        });
    }
    let mut lexer = Lexer {
        sql,
        pos: 0,
        dialect,
        mysql: dialect.is_mysql(),
        in_exec_comment: false,
        out,
    };
    lexer.run();
    Ok(())
}

struct Lexer<'a, 'o> {
    sql: &'a [u8],
    pos: usize,
    dialect: Dialect,
    mysql: bool,
    /// Inside a MySQL `/*! .. */`: the closing `*/` is skipped like space.
    in_exec_comment: bool,
    out: &'o mut Vec<Token>,
}

impl Lexer<'_, '_> {
    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.sql.get(i).copied().unwrap_or(0)
    }

    fn push(&mut self, start: usize, end: usize, kind: TokenKind, kw: Kw) {
        // Both offsets are <= sql.len() <= u32::MAX, checked in tokenize.
        self.out.push(Token {
            start: start as u32,
            end: end as u32,
            kind,
            kw,
            mark: 0,
        });
    }

    /// Ends lexing with a token covering the rest of the input.
    fn fail(&mut self, start: usize, kind: TokenKind) {
        let end = self.sql.len();
        self.push(start, end, kind, Kw::None);
        self.pos = end;
    }

    fn run(&mut self) {
        loop {
            if !self.skip_space_and_comments() {
                return;
            }
            if self.pos >= self.sql.len() {
                if self.in_exec_comment {
                    // `/*!` never closed: MySQL rejects the statement.
                    self.push(self.pos, self.pos, TokenKind::Unterminated, Kw::None);
                }
                return;
            }
            let start = self.pos;
            let b = self.sql[start];
            match b {
                b'\'' => self.string(start, start, self.plain_backslashes(), b'\''),
                b'"' => match self.dialect {
                    Dialect::MySql(m) if !m.ansi_quotes => {
                        self.string(start, start, m.backslash_escapes, b'"')
                    }
                    _ => self.quoted_ident(start, start, b'"'),
                },
                b'`' if self.mysql => self.quoted_ident(start, start, b'`'),
                b'$' if !self.mysql => self.dollar(start),
                b'0'..=b'9' => self.number(start),
                b'.' if self.at(start + 1).is_ascii_digit() => self.number(start),
                b'.' => self.single(TokenKind::Dot),
                b',' => self.single(TokenKind::Comma),
                b'(' => self.single(TokenKind::LParen),
                b')' => self.single(TokenKind::RParen),
                b';' => self.single(TokenKind::Semicolon),
                b'?' if self.mysql => self.single(TokenKind::Param),
                _ if class(b) & IDENT_START != 0 || (b == b'$' && self.mysql) => self.word(start),
                _ if class(b) & OP != 0 => self.operator(start),
                _ => self.single(TokenKind::Operator),
            }
        }
    }

    fn single(&mut self, kind: TokenKind) {
        let start = self.pos;
        self.pos += 1;
        self.push(start, self.pos, kind, Kw::None);
    }

    /// Whether plain `'..'` strings take backslash escapes.
    fn plain_backslashes(&self) -> bool {
        match self.dialect {
            Dialect::Postgres(p) => !p.standard_conforming_strings,
            Dialect::MySql(m) => m.backslash_escapes,
        }
    }

    /// Skips whitespace and comments. Returns false once lexing has ended
    /// with an error token.
    fn skip_space_and_comments(&mut self) -> bool {
        let len = self.sql.len();
        loop {
            let rest = self.sql.get(self.pos..).unwrap_or_default();
            self.pos += scan_while(rest, SPACE);
            if self.pos >= len {
                return true;
            }
            let b = self.sql[self.pos];
            let next = self.at(self.pos + 1);
            if b == b'-' && next == b'-' && self.dash_comment_at(self.pos) {
                self.line_comment(self.pos + 2);
            } else if b == b'#' && self.mysql {
                self.line_comment(self.pos + 1);
            } else if b == b'/' && next == b'*' {
                if !self.block_comment() {
                    return false;
                }
            } else if b == b'*' && next == b'/' && self.in_exec_comment {
                self.in_exec_comment = false;
                self.pos += 2;
            } else {
                return true;
            }
        }
    }

    /// `--` starts a comment in PostgreSQL always, in MySQL only when
    /// followed by a space or control character (or the end).
    fn dash_comment_at(&self, i: usize) -> bool {
        !self.mysql || i + 2 >= self.sql.len() || self.sql[i + 2] <= b' '
    }

    fn line_comment(&mut self, from: usize) {
        // PostgreSQL ends a `--` comment at CR or LF; MySQL only at LF, so a
        // lone CR must not end it (text after it is still comment there).
        let rest = &self.sql[from..];
        let end = if self.mysql {
            memchr(b'\n', rest)
        } else {
            memchr2(b'\n', b'\r', rest)
        };
        self.pos = end.map_or(self.sql.len(), |e| from + e + 1);
    }

    /// Handles `/*` at `self.pos`. Returns false on an error token.
    fn block_comment(&mut self) -> bool {
        let start = self.pos;
        if let Dialect::MySql(mode) = self.dialect
            && !self.in_exec_comment
        {
            let bang = self.at(start + 2);
            let maria = bang == b'M' && self.at(start + 3) == b'!';
            if bang == b'!' || maria {
                let mut p = start + if maria { 4 } else { 3 };
                let digits = self.sql[p..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let runs = if maria && !mode.mariadb {
                    false
                } else if digits >= 5 {
                    if mode.server_version == 0 {
                        self.fail(start, TokenKind::Ambiguous);
                        return false;
                    }
                    let mut version = 0u32;
                    for &d in &self.sql[p..p + digits] {
                        version = version * 10 + u32::from(d - b'0');
                    }
                    p += digits;
                    version <= mode.server_version
                } else {
                    true
                };
                if runs {
                    self.in_exec_comment = true;
                    self.pos = p;
                    return true;
                }
            }
        }
        let nested = !self.mysql;
        let mut depth = 1usize;
        let mut i = start + 2;
        loop {
            let found = if nested {
                memchr2(b'*', b'/', &self.sql[i..])
            } else {
                memchr(b'*', &self.sql[i..])
            };
            let Some(off) = found else {
                self.fail(start, TokenKind::Unterminated);
                return false;
            };
            let p = i + off;
            let next = self.at(p + 1);
            if self.sql[p] == b'*' && next == b'/' {
                depth -= 1;
                i = p + 2;
                if depth == 0 {
                    self.pos = i;
                    return true;
                }
            } else if self.sql[p] == b'/' && next == b'*' {
                depth += 1;
                i = p + 2;
            } else {
                i = p + 1;
            }
        }
    }

    /// A quoted literal starting with `quote` at `open`; `start` may be
    /// earlier to include a prefix (`E`, `X`, `N`, `U&`).
    fn string(&mut self, start: usize, open: usize, backslashes: bool, quote: u8) {
        let mut i = open + 1;
        loop {
            let rest = &self.sql[i..];
            let found = if backslashes {
                memchr2(quote, b'\\', rest)
            } else {
                memchr(quote, rest)
            };
            let Some(off) = found else {
                self.fail(start, TokenKind::Unterminated);
                return;
            };
            let p = i + off;
            if self.sql[p] == b'\\' {
                i = p + 2;
                if i > self.sql.len() {
                    self.fail(start, TokenKind::Unterminated);
                    return;
                }
            } else if self.at(p + 1) == quote {
                i = p + 2;
            } else {
                self.pos = p + 1;
                self.push(start, self.pos, TokenKind::String, Kw::None);
                return;
            }
        }
    }

    fn quoted_ident(&mut self, start: usize, open: usize, quote: u8) {
        let mut i = open + 1;
        loop {
            let Some(off) = memchr(quote, &self.sql[i..]) else {
                self.fail(start, TokenKind::Unterminated);
                return;
            };
            let p = i + off;
            if self.at(p + 1) == quote {
                i = p + 2;
            } else {
                self.pos = p + 1;
                self.push(start, self.pos, TokenKind::QuotedIdent, Kw::None);
                return;
            }
        }
    }

    /// PostgreSQL `$1`, `$tag$ .. $tag$`, or a lone `$` operator.
    fn dollar(&mut self, start: usize) {
        let len = self.sql.len();
        let next = self.at(start + 1);
        if next.is_ascii_digit() {
            let mut i = start + 1;
            while i < len && self.sql[i].is_ascii_digit() {
                i += 1;
            }
            self.pos = i;
            self.push(start, i, TokenKind::Param, Kw::None);
            return;
        }
        let mut i = start + 1;
        if class(next) & IDENT_START != 0 {
            while i < len && class(self.sql[i]) & IDENT_CONT != 0 && self.sql[i] != b'$' {
                i += 1;
            }
        }
        if self.at(i) != b'$' {
            self.single(TokenKind::Operator);
            return;
        }
        let delim_end = i + 1;
        let delim = &self.sql[start..delim_end];
        let mut j = delim_end;
        loop {
            let Some(off) = memchr(b'$', &self.sql[j..]) else {
                self.fail(start, TokenKind::Unterminated);
                return;
            };
            let p = j + off;
            if self.sql[p..].starts_with(delim) {
                self.pos = p + delim.len();
                self.push(start, self.pos, TokenKind::String, Kw::None);
                return;
            }
            j = p + 1;
        }
    }

    fn number(&mut self, start: usize) {
        let len = self.sql.len();
        let mut i = start;
        while i < len {
            let b = self.sql[i];
            let exponent_sign = (b == b'+' || b == b'-')
                && matches!(self.sql[i - 1], b'e' | b'E')
                && self.at(i + 1).is_ascii_digit()
                && !self.sql[start..i].starts_with(b"0x");
            if (class(b) & IDENT_CONT != 0 && b != b'$') || b == b'.' || exponent_sign {
                i += 1;
            } else {
                break;
            }
        }
        self.pos = i;
        self.push(start, i, TokenKind::Number, Kw::None);
    }

    fn word(&mut self, start: usize) {
        let rest = self.sql.get(start + 1..).unwrap_or_default();
        let i = start + 1 + scan_while(rest, IDENT_CONT);
        let next = self.at(i);
        if i == start + 1 {
            let first = self.sql[start].to_ascii_lowercase();
            if next == b'\'' {
                match first {
                    b'e' if !self.mysql => return self.string(start, i, true, b'\''),
                    b'b' | b'x' | b'n' => {
                        return self.string(start, i, self.plain_backslashes(), b'\'');
                    }
                    _ => {}
                }
            }
            if first == b'u' && next == b'&' && !self.mysql {
                match self.at(i + 1) {
                    b'\'' => return self.string(start, i + 1, false, b'\''),
                    b'"' => return self.quoted_ident(start, i + 1, b'"'),
                    _ => {}
                }
            }
        }
        self.pos = i;
        let kw = Kw::lookup_in(self.sql, start, i);
        self.push(start, i, TokenKind::Word, kw);
    }

    fn operator(&mut self, start: usize) {
        let len = self.sql.len();
        let mut i = start + 1;
        while i < len {
            let b = self.sql[i];
            let ok = class(b) & OP != 0 && !(self.mysql && (b == b'#' || b == b'?' || b == b'`'));
            if !ok {
                break;
            }
            let next = self.at(i + 1);
            let comment = (b == b'-' && next == b'-' && self.dash_comment_at(i))
                || (b == b'/' && next == b'*')
                || (b == b'*' && next == b'/' && self.in_exec_comment);
            if comment {
                break;
            }
            i += 1;
        }
        self.pos = i;
        self.push(start, i, TokenKind::Operator, Kw::None);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lex(sql: &str, dialect: Dialect) -> Vec<(TokenKind, String)> {
        let mut out = Vec::new();
        tokenize(sql.as_bytes(), dialect, &mut out).unwrap();
        out.iter()
            .map(|t| {
                let text = String::from_utf8_lossy(t.text(sql.as_bytes())).into_owned();
                (t.kind, text)
            })
            .collect()
    }

    fn texts(sql: &str, dialect: Dialect) -> Vec<String> {
        lex(sql, dialect).into_iter().map(|(_, t)| t).collect()
    }

    const PG_OFF: Dialect = Dialect::Postgres(PgMode {
        standard_conforming_strings: false,
    });

    #[test]
    fn words_numbers_and_punctuation() {
        let got = lex("SELECT a.b, 1.5e-3 FROM t;", Dialect::POSTGRES);
        let kinds: Vec<_> = got.iter().map(|(k, _)| *k).collect();
        use TokenKind::*;
        assert_eq!(
            kinds,
            [Word, Word, Dot, Word, Comma, Number, Word, Word, Semicolon]
        );
        assert_eq!(got[5].1, "1.5e-3");
    }

    #[test]
    fn comments_vanish_and_pg_nests_them() {
        assert_eq!(
            texts("dRoP/**/DATABASE", Dialect::POSTGRES),
            ["dRoP", "DATABASE"]
        );
        assert_eq!(
            texts("a /* x /* y */ still */ b -- c\nd", Dialect::POSTGRES),
            ["a", "b", "d"]
        );
        // MySQL does not nest: the first `*/` ends the comment.
        assert_eq!(
            texts("a /* x /* y */ b */", Dialect::MYSQL),
            ["a", "b", "*/"]
        );
    }

    #[test]
    fn mysql_comment_rules() {
        assert_eq!(texts("a # c\nb", Dialect::MYSQL), ["a", "b"]);
        assert_eq!(texts("a # c\nb", Dialect::POSTGRES), ["a", "#", "c", "b"]);
        // `--` without a following space is two minus signs in MySQL.
        assert_eq!(texts("1--1", Dialect::MYSQL), ["1", "--", "1"]);
        assert_eq!(texts("1--1", Dialect::POSTGRES), ["1"]);
        // A lone CR does not end a MySQL line comment.
        assert_eq!(texts("a -- x\rWHERE\nb", Dialect::MYSQL), ["a", "b"]);
        assert_eq!(
            texts("a -- x\rWHERE\nb", Dialect::POSTGRES),
            ["a", "WHERE", "b"]
        );
    }

    #[test]
    fn mysql_executable_comments_are_code() {
        assert_eq!(
            texts("/*!DROP*/ DATABASE x", Dialect::MYSQL),
            ["DROP", "DATABASE", "x"]
        );
        let v8 = Dialect::MySql(MySqlMode {
            server_version: 80036,
            ..match Dialect::MYSQL {
                Dialect::MySql(m) => m,
                Dialect::Postgres(_) => unreachable!(),
            }
        });
        assert_eq!(
            texts("/*!50001 DROP */ TABLE t", v8),
            ["DROP", "TABLE", "t"]
        );
        assert_eq!(texts("/*!90001 DROP */ TABLE t", v8), ["TABLE", "t"]);
        // Unknown version: cannot tell, so the statement is ambiguous.
        let got = lex("/*!50001 DROP */ TABLE t", Dialect::MYSQL);
        assert_eq!(got.last().unwrap().0, TokenKind::Ambiguous);
        // MariaDB-only comments are plain comments on MySQL.
        assert_eq!(texts("/*M! DROP */ TABLE t", v8), ["TABLE", "t"]);
        // PostgreSQL has no executable comments.
        assert_eq!(texts("/*!DROP*/ x", Dialect::POSTGRES), ["x"]);
    }

    #[test]
    fn strings_by_dialect() {
        // Standard strings: backslash is an ordinary character.
        assert_eq!(
            texts(r"SELECT '\'; DROP TABLE x; --'", Dialect::POSTGRES),
            ["SELECT", r"'\'", ";", "DROP", "TABLE", "x", ";"]
        );
        // E-strings and MySQL strings escape the quote.
        assert_eq!(
            texts(r"SELECT E'\'; DROP TABLE x; --'", Dialect::POSTGRES),
            ["SELECT", r"E'\'; DROP TABLE x; --'"]
        );
        assert_eq!(
            texts(r"SELECT '\'; DROP'", Dialect::MYSQL),
            ["SELECT", r"'\'; DROP'"]
        );
        assert_eq!(
            texts(r"SELECT '\'; DROP'", PG_OFF),
            ["SELECT", r"'\'; DROP'"]
        );
        assert_eq!(texts("'it''s'", Dialect::POSTGRES), ["'it''s'"]);
        // MySQL double quotes are strings unless ANSI_QUOTES.
        assert_eq!(lex(r#""a\"b""#, Dialect::MYSQL)[0].0, TokenKind::String);
        assert_eq!(
            lex(r#""drop""#, Dialect::POSTGRES)[0].0,
            TokenKind::QuotedIdent
        );
        assert_eq!(lex("`a``b`", Dialect::MYSQL)[0].1, "`a``b`");
        assert_eq!(lex("X'4142'", Dialect::POSTGRES)[0].0, TokenKind::String);
        assert_eq!(
            lex(r#"U&"d\0061t""#, Dialect::POSTGRES)[0].0,
            TokenKind::QuotedIdent
        );
    }

    #[test]
    fn dollar_quotes_and_params() {
        assert_eq!(
            texts("SELECT $$;DROP$$, $a$ $$ ; $a$, $1", Dialect::POSTGRES),
            ["SELECT", "$$;DROP$$", ",", "$a$ $$ ; $a$", ",", "$1"]
        );
        assert_eq!(texts("a$b", Dialect::POSTGRES), ["a$b"]);
        assert_eq!(lex("$$;", Dialect::MYSQL)[0].0, TokenKind::Word);
        assert_eq!(lex("?", Dialect::MYSQL)[0].0, TokenKind::Param);
    }

    #[test]
    fn unterminated_input_never_panics() {
        for sql in [
            "'abc", "\"abc", "/* abc", "$x$ abc", "E'\\", "/*!", "`a", "/* /* */",
        ] {
            let got = lex(sql, Dialect::POSTGRES);
            let got_my = lex(sql, Dialect::MYSQL);
            assert!(
                got.iter()
                    .chain(&got_my)
                    .any(|(k, _)| *k == TokenKind::Unterminated),
                "{sql}: {got:?} / {got_my:?}"
            );
        }
        assert_eq!(
            lex("/* a */ /* b", Dialect::MYSQL).last().unwrap().0,
            TokenKind::Unterminated
        );
    }

    #[test]
    fn hostile_bytes_are_tokens() {
        let sql: Vec<u8> = (0u8..=255).collect();
        for d in [Dialect::POSTGRES, Dialect::MYSQL, PG_OFF] {
            let mut out = Vec::new();
            tokenize(&sql, d, &mut out).unwrap();
            assert!(
                out.iter()
                    .all(|t| t.start <= t.end && t.end as usize <= sql.len())
            );
        }
        // Non-breaking space (UTF-8 C2 A0) joins words rather than splitting them.
        assert_eq!(texts("DROP\u{a0}DATABASE", Dialect::POSTGRES).len(), 1);
    }
}
