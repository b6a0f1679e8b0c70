//! SQL lexer for the PostgreSQL and MySQL dialects: bytes in, token spans out.
//!
//! Tokens are `(start, end)` offsets into the caller's bytes; nothing is
//! copied and the output `Vec` is the caller's, reused between statements.
//! Comments and whitespace produce no tokens. Each token's first byte picks
//! its handler through one 256-entry table per dialect; words are scanned
//! eight bytes at a time; strings, quoted identifiers and comments are
//! scanned with memchr. The `;` tokens' indices can be collected as the
//! lexer goes (`tokenize_split`), so the classifier splits statements
//! without another pass. PostgreSQL literals and numbers follow the
//! server's scanner, scan.l (`lexer/pg.rs`: literal states, continuation
//! across newlines, numbers); the differential oracle in `codecs/oracle`
//! checks the lexer against it. Input that a server would reject
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

/// What the lexer does with the byte a token (or a gap) starts with. One
/// table per dialect resolves every dialect difference that depends only on
/// that byte, so the main loop is a single indexed jump instead of a chain
/// of comparisons (a byte's action used to be found by testing it against
/// each case in turn, after a separate whitespace-and-comment pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Act {
    Space,
    Word,
    Digit,
    /// `'`.
    Quote,
    /// `"`: a string or a quoted identifier, by session mode.
    DoubleQuote,
    /// MySQL `` ` ``.
    Backtick,
    /// PostgreSQL `$`: parameter, dollar quote or operator.
    Dollar,
    Dot,
    Comma,
    LParen,
    RParen,
    Semicolon,
    /// MySQL `?`.
    Param,
    /// `-`: a comment when doubled, else an operator.
    Dash,
    /// `/`: a block comment before `*`, else an operator.
    Slash,
    /// `*`: closes a MySQL executable comment before `/`, else an operator.
    Star,
    /// MySQL `#`: a line comment.
    Hash,
    /// Any other operator character.
    Op,
    /// Anything else: a one-byte operator token.
    Other,
}

const fn actions(mysql: bool) -> [Act; 256] {
    let mut t = [Act::Other; 256];
    let mut b = 0;
    while b < 256 {
        let c = CLASS[b];
        t[b] = if c & SPACE != 0 {
            Act::Space
        } else if c & DIGIT != 0 {
            Act::Digit
        } else if c & IDENT_START != 0 {
            Act::Word
        } else if c & OP != 0 {
            Act::Op
        } else {
            Act::Other
        };
        b += 1;
    }
    t[b'\'' as usize] = Act::Quote;
    t[b'"' as usize] = Act::DoubleQuote;
    t[b'.' as usize] = Act::Dot;
    t[b',' as usize] = Act::Comma;
    t[b'(' as usize] = Act::LParen;
    t[b')' as usize] = Act::RParen;
    t[b';' as usize] = Act::Semicolon;
    t[b'-' as usize] = Act::Dash;
    t[b'/' as usize] = Act::Slash;
    t[b'*' as usize] = Act::Star;
    if mysql {
        t[b'`' as usize] = Act::Backtick;
        t[b'$' as usize] = Act::Word;
        t[b'?' as usize] = Act::Param;
        t[b'#' as usize] = Act::Hash;
    } else {
        t[b'$' as usize] = Act::Dollar;
    }
    t
}

static PG_ACTIONS: [Act; 256] = actions(false);
static MYSQL_ACTIONS: [Act; 256] = actions(true);

const LANES_LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const LANES_HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte lane.
const fn lanes(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// High bit of each lane of `low7` (bytes below 0x80) set where the byte
/// equals `b` (< 0x80). Exact per lane: no carry crosses lanes.
#[inline]
const fn lanes_eq(low7: u64, b: u8) -> u64 {
    let v = low7 ^ lanes(b);
    !((v + LANES_LOW7) | v) & LANES_HIGH
}

/// High bit of each byte lane of `x` set where the byte is an identifier
/// continuation byte (`IDENT_CONT`: letter, digit, `_`, `$` or >= 0x80).
/// Eight bytes at once without a branch per byte: word lengths vary, so a
/// byte loop mispredicts its exit on nearly every word.
#[inline]
const fn ident_lanes(x: u64) -> u64 {
    let low7 = x & LANES_LOW7;
    // Every lane sum below stays under 0x100: lanes are <= 0x7f.
    let folded = low7 | lanes(0x20);
    let letter = (folded + lanes(0x80 - b'a')) & !(folded + lanes(0x7f - b'z'));
    let digit = (low7 + lanes(0x80 - b'0')) & !(low7 + lanes(0x7f - b'9'));
    (x | letter | digit | lanes_eq(low7, b'_') | lanes_eq(low7, b'$')) & LANES_HIGH
}

/// The eight bytes at `i`, little-endian; past the end of the input they
/// read as 0, which ends any identifier run.
#[inline]
fn load8(sql: &[u8], i: usize) -> u64 {
    match sql.get(i..i + 8) {
        Some(bytes) => {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(bytes);
            u64::from_le_bytes(buf)
        }
        None => {
            let rest = sql.get(i..).unwrap_or_default();
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(buf)
        }
    }
}

/// End of the run of `IDENT_CONT` bytes starting at `i`.
#[inline]
fn ident_end(sql: &[u8], mut i: usize) -> usize {
    loop {
        let word = load8(sql, i);
        let stop = !ident_lanes(word) & LANES_HIGH;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
}

/// Splits `sql` into tokens appended to `out` (cleared first).
pub fn tokenize(sql: &[u8], dialect: Dialect, out: &mut Vec<Token>) -> Result<(), LexError> {
    lex(sql, dialect, out, None)
}

/// `tokenize`, also appending to `semicolons` (cleared first) the index of
/// every `;` token, so the classifier splits statements without another
/// walk over the tokens.
pub(crate) fn tokenize_split(
    sql: &[u8],
    dialect: Dialect,
    out: &mut Vec<Token>,
    semicolons: &mut Vec<u32>,
) -> Result<(), LexError> {
    semicolons.clear();
    lex(sql, dialect, out, Some(semicolons))
}

fn lex(
    sql: &[u8],
    dialect: Dialect,
    out: &mut Vec<Token>,
    semicolons: Option<&mut Vec<u32>>,
) -> Result<(), LexError> {
    out.clear();
    if sql.len() > MAX_SQL_LEN {
        return Err(LexError::TooLong {
            len: sql.len(),
            max: MAX_SQL_LEN,
        });
    }
    let mysql = dialect.is_mysql();
    let mut lexer = Lexer {
        sql,
        pos: 0,
        dialect,
        mysql,
        in_exec_comment: false,
        actions: if mysql { &MYSQL_ACTIONS } else { &PG_ACTIONS },
        // Owned for the run, so the push path keeps the vector's length in
        // the lexer rather than behind the caller's reference.
        out: std::mem::take(out),
        semicolons,
    };
    lexer.run();
    *out = lexer.out;
    Ok(())
}

struct Lexer<'a, 'o> {
    sql: &'a [u8],
    pos: usize,
    dialect: Dialect,
    mysql: bool,
    /// Inside a MySQL `/*! .. */`: the closing `*/` is skipped like space.
    in_exec_comment: bool,
    actions: &'static [Act; 256],
    out: Vec<Token>,
    semicolons: Option<&'o mut Vec<u32>>,
}

impl Lexer<'_, '_> {
    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.sql.get(i).copied().unwrap_or(0)
    }

    #[inline]
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
        let sql = self.sql;
        while let Some(&first) = sql.get(self.pos) {
            let mut b = first;
            // Most tokens are followed by one plain space: step over it here
            // rather than through the dispatch (an indirect jump per gap).
            if b == b' ' {
                match sql.get(self.pos + 1) {
                    Some(&next) => {
                        self.pos += 1;
                        b = next;
                    }
                    None => {
                        self.pos += 1;
                        break;
                    }
                }
            }
            let start = self.pos;
            match self.actions[b as usize] {
                Act::Space => self.pos += 1,
                Act::Word => self.word(start),
                Act::Digit if !self.mysql => self.pg_number(start),
                Act::Digit => self.number(start),
                Act::Quote if !self.mysql => {
                    self.pg_string(start, start, self.plain_backslashes(), true)
                }
                Act::Quote => self.string(start, start, self.plain_backslashes(), b'\''),
                Act::DoubleQuote => match self.dialect {
                    Dialect::MySql(m) if !m.ansi_quotes => {
                        self.string(start, start, m.backslash_escapes, b'"')
                    }
                    _ => self.quoted_ident(start, start, b'"'),
                },
                Act::Backtick => self.quoted_ident(start, start, b'`'),
                Act::Dollar => self.dollar(start),
                Act::Dot if self.at(start + 1).is_ascii_digit() => {
                    if self.mysql {
                        self.number(start)
                    } else {
                        self.pg_number(start)
                    }
                }
                Act::Dot => self.single(TokenKind::Dot),
                Act::Comma => self.single(TokenKind::Comma),
                Act::LParen => self.single(TokenKind::LParen),
                Act::RParen => self.single(TokenKind::RParen),
                Act::Semicolon => {
                    if let Some(semicolons) = self.semicolons.as_mut() {
                        // Token counts are below the input length, a u32.
                        semicolons.push(self.out.len() as u32);
                    }
                    self.single(TokenKind::Semicolon)
                }
                Act::Param => self.single(TokenKind::Param),
                Act::Dash if self.at(start + 1) == b'-' && self.dash_comment_at(start) => {
                    self.line_comment(start + 2)
                }
                Act::Hash => self.line_comment(start + 1),
                Act::Slash if self.at(start + 1) == b'*' => {
                    if !self.block_comment() {
                        return;
                    }
                }
                Act::Star if self.in_exec_comment && self.at(start + 1) == b'/' => {
                    self.in_exec_comment = false;
                    self.pos += 2;
                }
                Act::Dash | Act::Slash | Act::Star | Act::Op => self.operator(start),
                Act::Other => self.single(TokenKind::Operator),
            }
        }
        if self.in_exec_comment {
            // `/*!` never closed: MySQL rejects the statement.
            self.push(self.pos, self.pos, TokenKind::Unterminated, Kw::None);
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
        // The first eight bytes, word start included (an identifier byte, so
        // lane 0 never stops the run): most words end inside them, and the
        // keyword lookup and the literal-prefix check reuse the load.
        let head = load8(self.sql, start);
        let stop = !ident_lanes(head) & LANES_HIGH;
        let (i, kw) = if stop != 0 {
            let len = (stop.trailing_zeros() / 8) as usize;
            if len == 1 && self.prefixed_literal(start, head) {
                return;
            }
            (start + len, Kw::lookup_short(head, len))
        } else {
            let i = ident_end(self.sql, start + 8);
            (i, Kw::lookup_in(self.sql, start, i))
        };
        self.pos = i;
        self.push(start, i, TokenKind::Word, kw);
    }

    /// A one-letter word at `start` that prefixes a literal (`E'..'`,
    /// `B'..'`, `X'..'`, `N'..'`, PostgreSQL `U&'..'` and `U&".."`): lexes
    /// the literal and returns true. `head` holds the bytes from `start`
    /// (0 past the end of the input, as `at` reads them).
    #[inline]
    fn prefixed_literal(&mut self, start: usize, head: u64) -> bool {
        let [first, next, after, ..] = head.to_le_bytes();
        let i = start + 1;
        if next == b'\'' {
            match first.to_ascii_lowercase() {
                b'e' if !self.mysql => self.pg_string(start, i, true, true),
                // Bit strings take neither escapes nor doubled quotes.
                b'b' | b'x' if !self.mysql => self.pg_string(start, i, false, false),
                b'n' if !self.mysql => self.pg_string(start, i, self.plain_backslashes(), true),
                b'b' | b'x' | b'n' => self.string(start, i, self.plain_backslashes(), b'\''),
                _ => return false,
            }
            return true;
        }
        if first.eq_ignore_ascii_case(&b'u') && next == b'&' && !self.mysql {
            match after {
                b'\'' => self.pg_string(start, i + 1, false, true),
                b'"' => self.quoted_ident(start, i + 1, b'"'),
                _ => return false,
            }
            return true;
        }
        false
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

mod pg;

#[cfg(test)]
mod reference;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
