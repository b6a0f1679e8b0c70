//! The lexer as it was before the dispatch-table rewrite, kept only for
//! tests: the new lexer must produce exactly the same tokens on any input.
//! PostgreSQL literals follow scan.l's states here too (`pg_literal`),
//! written as a plain byte loop independent of the fast lexer's memchr scan.

use memchr::{memchr, memchr2};

use super::{Dialect, LexError, MAX_SQL_LEN, Token, TokenKind};
use crate::sql::keywords::Kw;

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
pub(crate) fn tokenize(sql: &[u8], dialect: Dialect, out: &mut Vec<Token>) -> Result<(), LexError> {
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
                b'\'' if !self.mysql => {
                    self.pg_literal(start, start, self.plain_backslashes(), true)
                }
                b'\'' => self.string(start, start, self.plain_backslashes(), b'\''),
                b'"' => match self.dialect {
                    Dialect::MySql(m) if !m.ansi_quotes => {
                        self.string(start, start, m.backslash_escapes, b'"')
                    }
                    _ => self.quoted_ident(start, start, b'"'),
                },
                b'`' if self.mysql => self.quoted_ident(start, start, b'`'),
                b'$' if !self.mysql => self.dollar(start),
                b'0'..=b'9' | b'.' if !self.mysql && self.pg_number_end(start) > start => {
                    self.pos = self.pg_number_end(start);
                    self.push(start, self.pos, TokenKind::Number, Kw::None);
                }
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

    /// A PostgreSQL literal, byte by byte: `escapes` (state `xe`),
    /// `doubled` (`''` inside; not in `xb`/`xh`), and continuation across
    /// whitespace holding a newline (`quotecontinue`).
    fn pg_literal(&mut self, start: usize, open: usize, escapes: bool, doubled: bool) {
        let len = self.sql.len();
        let mut i = open + 1;
        while i < len {
            let b = self.sql[i];
            if escapes && b == b'\\' {
                i += 2;
                continue;
            }
            if b != b'\'' {
                i += 1;
                continue;
            }
            if doubled && self.at(i + 1) == b'\'' {
                i += 2;
                continue;
            }
            // Closing quote: does whitespace with a newline and a quote follow?
            let mut j = i + 1;
            let mut newlines = 0;
            let mut in_comment = false;
            while j < len {
                let c = self.sql[j];
                if c == b'\n' || c == b'\r' {
                    newlines += 1;
                    in_comment = false;
                } else if in_comment {
                } else if c == b'-' && self.at(j + 1) == b'-' {
                    in_comment = true;
                    j += 1;
                } else if !matches!(c, b' ' | b'\t' | 0x0b | 0x0c) {
                    break;
                }
                j += 1;
            }
            if newlines > 0 && !in_comment && self.at(j) == b'\'' && j < len {
                i = j + 1;
                continue;
            }
            self.pos = i + 1;
            self.push(start, self.pos, TokenKind::String, Kw::None);
            return;
        }
        self.fail(start, TokenKind::Unterminated);
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

    /// End of a PostgreSQL number at `start` (scan.l: integer, decimal,
    /// real, decimalfail, realfail1/2), or `start` if none starts there.
    fn pg_number_end(&self, start: usize) -> usize {
        let s = self.sql;
        let digit = |i: usize| i < s.len() && s[i].is_ascii_digit();
        let mut i = start;
        while digit(i) {
            i += 1;
        }
        let int_digits = i - start;
        if i < s.len() && s[i] == b'.' {
            if int_digits > 0 && i + 1 < s.len() && s[i + 1] == b'.' {
                return i;
            }
            let mut j = i + 1;
            while digit(j) {
                j += 1;
            }
            if int_digits == 0 && j == i + 1 {
                return start;
            }
            i = j;
        } else if int_digits == 0 {
            return start;
        }
        if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
            let sign = i + 1 < s.len() && (s[i + 1] == b'+' || s[i + 1] == b'-');
            let first = i + 1 + usize::from(sign);
            if digit(first) {
                let mut j = first;
                while digit(j) {
                    j += 1;
                }
                i = j;
            }
        }
        i
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
            if next == b'\'' && !self.mysql {
                match first {
                    b'e' => return self.pg_literal(start, i, true, true),
                    b'b' | b'x' => return self.pg_literal(start, i, false, false),
                    b'n' => return self.pg_literal(start, i, self.plain_backslashes(), true),
                    _ => {}
                }
            }
            if next == b'\'' {
                match first {
                    b'b' | b'x' | b'n' => {
                        return self.string(start, i, self.plain_backslashes(), b'\'');
                    }
                    _ => {}
                }
            }
            if first == b'u' && next == b'&' && !self.mysql {
                match self.at(i + 1) {
                    b'\'' => return self.pg_literal(start, i + 1, false, true),
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
