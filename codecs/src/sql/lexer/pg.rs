//! PostgreSQL string literals as the server's scanner (scan.l) reads them.
//!
//! scan.l has one state per literal form: `xq` (plain `'..'`), `xe`
//! (`E'..'`, and plain strings when `standard_conforming_strings` is off),
//! `xus` (`U&'..'`), `xb`/`xh` (`B'..'`/`X'..'`). They differ in whether a
//! backslash escapes the next byte and whether `''` is a quote inside the
//! literal (not in `xb`/`xh`: there it ends the literal). In every one of
//! them a closing quote followed by whitespace that contains a newline and
//! another quote (`quotecontinue`) does not end the literal: the next part
//! is read in the same state, so `E'a'\n'x\''` is one literal whose second
//! part still takes escapes. Reading that second part as a fresh plain
//! string would end it one quote early and misplace every boundary after it.
//!
//! `backslash_quote` needs no mode here: when it forbids `\'`, the server
//! rejects the whole query string, so reading `\'` as an escape (what it
//! means whenever the server accepts it) never lets through anything that
//! runs.

use memchr::{memchr, memchr2};

use super::{Kw, Lexer, TokenKind};

impl Lexer<'_, '_> {
    /// A PostgreSQL string literal whose opening quote is at `open`; `start`
    /// may be earlier to include a prefix (`E`, `B`, `X`, `N`, `U&`).
    /// `backslashes`: a backslash escapes the next byte (`xe`). `doubled`:
    /// `''` is a quote inside the literal (every state but `xb`/`xh`).
    pub(super) fn pg_string(
        &mut self,
        start: usize,
        open: usize,
        backslashes: bool,
        doubled: bool,
    ) {
        let mut i = open + 1;
        loop {
            let rest = self.sql.get(i..).unwrap_or_default();
            let found = if backslashes {
                memchr2(b'\'', b'\\', rest)
            } else {
                memchr(b'\'', rest)
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
            } else if doubled && self.at(p + 1) == b'\'' {
                i = p + 2;
            } else if let Some(next) = quote_continuation(self.sql, p + 1) {
                i = next + 1;
            } else {
                self.pos = p + 1;
                self.push(start, self.pos, TokenKind::String, Kw::None);
                return;
            }
        }
    }
}

/// scan.l's `quotecontinue` after a literal's closing quote, from `i`:
/// spaces and `--` comments containing at least one newline, then a quote.
/// Returns that quote's index. Block comments do not count.
fn quote_continuation(sql: &[u8], mut i: usize) -> Option<usize> {
    let mut newline = false;
    loop {
        match *sql.get(i)? {
            b'\n' | b'\r' => {
                newline = true;
                i += 1;
            }
            // Vertical tab is space from PostgreSQL 16 on; before, it is a
            // syntax error wherever it appears outside a literal, so
            // treating it as space here cannot hide anything that runs.
            b' ' | b'\t' | 0x0b | 0x0c => i += 1,
            // A comment runs to the end of its line (the newline is read
            // next); at the end of the input there is nothing to continue.
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                let rest = sql.get(i + 2..)?;
                i += 2 + memchr2(b'\n', b'\r', rest)?;
            }
            b'\'' if newline => return Some(i),
            _ => return None,
        }
    }
}

impl Lexer<'_, '_> {
    /// A PostgreSQL 15 number (scan.l's `integer`, `decimal`, `real` and
    /// their `fail` rules): digits, an optional fraction, an optional
    /// exponent with at least one digit. It never takes letters: `1FROM t`
    /// is `1` then `FROM`, and `1.5e-3WHERE` ends before `WHERE`, as the
    /// server reads them. (PostgreSQL 16 rejects such trailing letters, so
    /// reading them as the next token hides nothing there either.)
    pub(super) fn pg_number(&mut self, start: usize) {
        let digits = |sql: &[u8], mut i: usize| {
            while sql.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut i = digits(self.sql, start);
        // `1..10` is 1, `..`, 10 (decimalfail); `1.` and `.5` are decimals.
        if self.at(i) == b'.' && !(i > start && self.at(i + 1) == b'.') {
            i = digits(self.sql, i + 1);
        }
        if matches!(self.at(i), b'e' | b'E') {
            let mut j = i + 1;
            if matches!(self.at(j), b'+' | b'-') {
                j += 1;
            }
            // Without a digit the `e` (and sign) are the next tokens.
            if self.at(j).is_ascii_digit() {
                i = digits(self.sql, j);
            }
        }
        self.pos = i;
        self.push(start, i, TokenKind::Number, Kw::None);
    }
}
