//! `COPY … TO STDOUT` statements read for masking: which rows they send (the
//! statement the gateway describes to learn the column names) and how the
//! rows are written (text, CSV with its delimiter/quote/escape/NULL, binary).
//!
//! COPY rows carry no column names, so a name-based masking rule needs the
//! server to say which columns they are: `COPY t (a, b)` sends the columns of
//! `SELECT a, b FROM t`, `COPY t` those of `SELECT * FROM t` (the server
//! resolves `t` under the session's own `search_path`), and `COPY (query)`
//! those of `query`. Anything this reader does not understand is reported as
//! unsupported, and the caller refuses the COPY when name rules apply.

use tollgate_codecs::sql::{Dialect, Kw, PgMode, Token, TokenKind, tokenize};

/// How COPY writes its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    Text {
        delimiter: u8,
        null: Vec<u8>,
        /// PostgreSQL 15 writes a header line in text format too.
        header: bool,
    },
    Csv {
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: Vec<u8>,
        header: bool,
    },
    Binary,
}

/// A `COPY … TO STDOUT` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyTo {
    /// The query whose columns are the rows' columns.
    pub describe: Vec<u8>,
    pub format: CopyFormat,
}

/// The messages to send in place of a client's Query or Parse (`frame`,
/// header included) of `sql`: `Ok(None)` when it is not a COPY TO STDOUT,
/// `Ok(Some(..))` the description of its columns under
/// [`COPY_PROBE`](super::shapes::COPY_PROBE) (Parse, Describe, Close, and a
/// Sync ahead of a simple Query, which the server would otherwise skip
/// after a failed Parse) followed by the frame, `Err` why it is refused.
///
/// Nothing here runs the client's SQL: a Parse only parses and analyses,
/// and the statement is closed right behind its description. The
/// description fails only where the COPY would (the same relation, columns
/// or query, under the same `search_path`, at the same point of the stream).
pub fn probe_for(
    sql: &[u8],
    standard_conforming_strings: bool,
    simple: bool,
    frame: &[u8],
) -> Result<Option<bytes::Bytes>, String> {
    use super::shapes::COPY_PROBE;
    use tollgate_codecs::pg::{self, ObjectKind};
    let copy = match parse(sql, standard_conforming_strings) {
        Parsed::Other => return Ok(None),
        Parsed::Unsupported(why) => return Err(why),
        Parsed::CopyTo(c) => c,
    };
    let mut b = bytes::BytesMut::with_capacity(copy.describe.len() + frame.len() + 96);
    let encode = |b: &mut bytes::BytesMut| -> Result<(), pg::PgError> {
        pg::encode_parse(b, COPY_PROBE, &copy.describe, &[])?;
        pg::encode_describe(b, ObjectKind::Statement, COPY_PROBE)?;
        pg::encode_close(b, ObjectKind::Statement, COPY_PROBE)
    };
    encode(&mut b).map_err(|e| format!("its description cannot be sent: {e}"))?;
    if simple {
        pg::encode_sync(&mut b);
    }
    b.extend_from_slice(frame);
    Ok(Some(b.freeze()))
}

/// What a statement is, for COPY masking.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a COPY that sends rows to the client.
    Other,
    CopyTo(CopyTo),
    /// A COPY to the client this reader cannot follow (the reason).
    Unsupported(String),
}

/// Reads `sql` (one Query or Parse text).
pub fn parse(sql: &[u8], standard_conforming_strings: bool) -> Parsed {
    // Every Query and Parse of a caller whom name rules mask comes here: a
    // statement without the keyword (which has no escaped spelling) cannot
    // be a COPY, so it skips the second lex and the token vector.
    if !sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"copy")) {
        return Parsed::Other;
    }
    let dialect = Dialect::Postgres(PgMode {
        standard_conforming_strings,
    });
    let mut tokens = Vec::new();
    if tokenize(sql, dialect, &mut tokens).is_err() {
        return Parsed::Other;
    }
    // Statements of a multi-statement Query; the server resolves each COPY's
    // names after the statements before it ran (a `SET search_path`, a
    // `CREATE TABLE`), which a description sent ahead of the Query cannot see.
    let statements: Vec<&[Token]> = tokens
        .split(|t| t.kind == TokenKind::Semicolon)
        .filter(|s| !s.is_empty())
        .collect();
    let copy_to = |s: &&[Token]| {
        s.first().is_some_and(|t| t.kw == Kw::Copy)
            && s.windows(2)
                .any(|w| w[0].kw == Kw::To && w[1].kw == Kw::Stdout)
    };
    match statements.as_slice() {
        [one] if copy_to(one) => Reader { sql, t: one, i: 1 }.copy_to(standard_conforming_strings),
        many if many.iter().any(copy_to) => {
            Parsed::Unsupported("a COPY TO STDOUT must be the only statement of its query".into())
        }
        _ => Parsed::Other,
    }
}

struct Reader<'a> {
    sql: &'a [u8],
    t: &'a [Token],
    i: usize,
}

fn unsupported(what: impl Into<String>) -> Parsed {
    Parsed::Unsupported(what.into())
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }

    fn word(&self) -> Option<Vec<u8>> {
        self.peek()
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text(self.sql).to_ascii_lowercase())
    }

    fn is(&self, kind: TokenKind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }

    /// Index of the `)` matching the `(` at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (j, t) in self.t.iter().enumerate().skip(open) {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Bytes from the start of token `a` to the end of token `b`.
    fn span(&self, a: usize, b: usize) -> &[u8] {
        let (Some(s), Some(e)) = (self.t.get(a), self.t.get(b)) else {
            return &[];
        };
        self.sql
            .get(s.start as usize..e.end as usize)
            .unwrap_or_default()
    }

    fn copy_to(mut self, scs: bool) -> Parsed {
        let mut format = None;
        if self.word().as_deref() == Some(b"binary") {
            format = Some(CopyFormat::Binary);
            self.i += 1;
        }
        let describe = if self.is(TokenKind::LParen) {
            let Some(close) = self.closing(self.i) else {
                return unsupported("unbalanced parentheses");
            };
            if close == self.i + 1 {
                return unsupported("an empty query");
            }
            let q = self.span(self.i + 1, close - 1).to_vec();
            self.i = close + 1;
            q
        } else {
            let start = self.i;
            while matches!(
                self.peek().map(|t| t.kind),
                Some(TokenKind::Word | TokenKind::QuotedIdent)
            ) && self.peek().is_some_and(|t| t.kw != Kw::To)
            {
                self.i += 1;
                if !self.is(TokenKind::Dot) {
                    break;
                }
                self.i += 1;
            }
            if self.i == start {
                return unsupported("no table name");
            }
            let relation = self.span(start, self.i - 1).to_vec();
            let columns = if self.is(TokenKind::LParen) {
                let Some(close) = self.closing(self.i) else {
                    return unsupported("unbalanced parentheses");
                };
                let list = self.span(self.i + 1, close - 1).to_vec();
                self.i = close + 1;
                list
            } else {
                b"*".to_vec()
            };
            let mut q = b"SELECT ".to_vec();
            q.extend_from_slice(&columns);
            q.extend_from_slice(b" FROM ");
            q.extend_from_slice(&relation);
            q
        };
        if !(self.peek().is_some_and(|t| t.kw == Kw::To)
            && self.t.get(self.i + 1).is_some_and(|t| t.kw == Kw::Stdout))
        {
            return unsupported("COPY … TO STDOUT in an unexpected form");
        }
        self.i += 2;
        match self.options(format, scs) {
            Ok(format) => Parsed::CopyTo(CopyTo { describe, format }),
            Err(why) => Parsed::Unsupported(why),
        }
    }

    /// `[WITH] (option value, …)` or the old `BINARY DELIMITER 'x' CSV …`.
    fn options(&mut self, format: Option<CopyFormat>, scs: bool) -> Result<CopyFormat, String> {
        let mut o = Options {
            binary: format.is_some(),
            ..Options::default()
        };
        if self.peek().is_some_and(|t| t.kw == Kw::With) {
            self.i += 1;
        }
        if self.is(TokenKind::LParen) {
            self.i += 1;
            loop {
                let name = self.word().ok_or("an option name was expected")?;
                self.i += 1;
                let value = self.value(scs)?;
                o.set(&name, value)?;
                if self.is(TokenKind::Comma) {
                    self.i += 1;
                    continue;
                }
                if self.is(TokenKind::RParen) {
                    self.i += 1;
                    break;
                }
                return Err("unexpected text in the option list".into());
            }
        } else {
            while let Some(w) = self.word() {
                self.i += 1;
                match w.as_slice() {
                    b"binary" | b"csv" | b"header" => o.set(&w, Value::None)?,
                    b"delimiter" | b"null" | b"quote" | b"escape" => {
                        if self.word().as_deref() == Some(b"as") {
                            self.i += 1;
                        }
                        let v = self.value(scs)?;
                        o.set(&w, v)?;
                    }
                    b"force" if self.word().as_deref() == Some(b"quote") => {
                        self.i += 1;
                        self.value(scs)?;
                    }
                    _ => return Err(format!("COPY option {:?}", String::from_utf8_lossy(&w))),
                }
            }
        }
        if self.peek().is_some() {
            return Err("unexpected text after the COPY options".into());
        }
        o.format()
    }

    /// An option's value: a word, a string, a number, `*` or `( … )`.
    fn value(&mut self, scs: bool) -> Result<Value, String> {
        let Some(t) = self.peek().copied() else {
            return Ok(Value::None);
        };
        let text = t.text(self.sql);
        let v = match t.kind {
            TokenKind::Word => Value::Word(text.to_ascii_lowercase()),
            TokenKind::Number => Value::Word(text.to_vec()),
            TokenKind::String => Value::String(string_literal(text, scs)?),
            TokenKind::Operator if text == b"*" => Value::Word(b"*".to_vec()),
            TokenKind::LParen => {
                let close = self.closing(self.i).ok_or("unbalanced parentheses")?;
                self.i = close + 1;
                return Ok(Value::Word(Vec::new()));
            }
            _ => return Ok(Value::None),
        };
        self.i += 1;
        Ok(v)
    }
}

enum Value {
    None,
    Word(Vec<u8>),
    String(Vec<u8>),
}

#[derive(Default)]
struct Options {
    binary: bool,
    csv: bool,
    delimiter: Option<u8>,
    null: Option<Vec<u8>>,
    quote: Option<u8>,
    escape: Option<u8>,
    header: bool,
}

fn one_byte(name: &str, v: Value) -> Result<u8, String> {
    match v {
        Value::String(s) if s.len() == 1 && s[0].is_ascii() => Ok(s[0]),
        _ => Err(format!("COPY {name} must be one ASCII character")),
    }
}

impl Options {
    fn set(&mut self, name: &[u8], v: Value) -> Result<(), String> {
        match name {
            b"format" => match v {
                Value::Word(w) | Value::String(w) => match w.to_ascii_lowercase().as_slice() {
                    b"text" => {}
                    b"csv" => self.csv = true,
                    b"binary" => self.binary = true,
                    _ => return Err("an unknown COPY format".into()),
                },
                Value::None => return Err("FORMAT without a value".into()),
            },
            b"binary" => self.binary = true,
            b"csv" => self.csv = true,
            b"header" => {
                self.header = match v {
                    Value::None => true,
                    Value::Word(w) | Value::String(w) => match w.to_ascii_lowercase().as_slice() {
                        b"true" | b"on" | b"1" => true,
                        b"false" | b"off" | b"0" => false,
                        _ => return Err("an unknown HEADER value".into()),
                    },
                }
            }
            b"delimiter" => self.delimiter = Some(one_byte("DELIMITER", v)?),
            b"quote" => self.quote = Some(one_byte("QUOTE", v)?),
            b"escape" => self.escape = Some(one_byte("ESCAPE", v)?),
            b"null" => match v {
                Value::String(s) => self.null = Some(s),
                _ => return Err("NULL must be a string".into()),
            },
            // Output quoting only: the CSV reader takes any quoting.
            b"force_quote" => {}
            // ENCODING converts the rows to another encoding, which may hide
            // a delimiter or a backslash inside a character: not followed.
            other => {
                return Err(format!(
                    "COPY option {:?} is not supported with masking",
                    String::from_utf8_lossy(other)
                ));
            }
        }
        Ok(())
    }

    fn format(self) -> Result<CopyFormat, String> {
        if self.binary {
            return Ok(CopyFormat::Binary);
        }
        if self.csv {
            let quote = self.quote.unwrap_or(b'"');
            return Ok(CopyFormat::Csv {
                delimiter: self.delimiter.unwrap_or(b','),
                quote,
                escape: self.escape.unwrap_or(quote),
                null: self.null.unwrap_or_default(),
                header: self.header,
            });
        }
        Ok(CopyFormat::Text {
            delimiter: self.delimiter.unwrap_or(b'\t'),
            null: self.null.unwrap_or_else(|| b"\\N".to_vec()),
            header: self.header,
        })
    }
}

/// The value of a string literal: `'…'` (`''` is a quote), or `E'…'` with
/// the common backslash escapes. Anything else is not followed.
fn string_literal(text: &[u8], scs: bool) -> Result<Vec<u8>, String> {
    let (escapes, body) = match text {
        [b'E' | b'e', b'\'', rest @ ..] => (true, rest),
        [b'\'', rest @ ..] => (!scs, rest),
        _ => return Err("a string form not supported in COPY options".into()),
    };
    let body = body.strip_suffix(b"'").ok_or("an unterminated string")?;
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&c) = body.get(i) {
        i += 1;
        match c {
            b'\'' if body.get(i) == Some(&b'\'') => {
                i += 1;
                out.push(b'\'');
            }
            b'\\' if escapes => {
                let e = *body.get(i).ok_or("a dangling backslash")?;
                i += 1;
                out.push(match e {
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'b' => 8,
                    b'f' => 12,
                    b'\\' | b'\'' | b'"' => e,
                    _ => return Err("a backslash escape not supported in COPY options".into()),
                });
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn copy(sql: &str) -> CopyTo {
        match parse(sql.as_bytes(), true) {
            Parsed::CopyTo(c) => c,
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn text(delimiter: u8, null: &[u8]) -> CopyFormat {
        CopyFormat::Text {
            delimiter,
            null: null.to_vec(),
            header: false,
        }
    }

    #[test]
    fn describes_the_table_the_columns_or_the_query() {
        let c = copy(r#"COPY app."Customers" TO STDOUT"#);
        assert_eq!(c.describe, br#"SELECT * FROM app."Customers""#);
        assert_eq!(c.format, text(b'\t', b"\\N"));
        let c = copy("copy customers (ssn, \"Id\") to stdout with (format csv, header)");
        assert_eq!(c.describe, br#"SELECT ssn, "Id" FROM customers"#);
        assert!(matches!(
            c.format,
            CopyFormat::Csv {
                header: true,
                delimiter: b',',
                ..
            }
        ));
        let c = copy("copy (select ssn from t where x = ')') to stdout (format binary);");
        assert_eq!(c.describe, b"select ssn from t where x = ')'");
        assert_eq!(c.format, CopyFormat::Binary);
        let c = copy("COPY t TO STDOUT DELIMITER AS '|' NULL 'nil'");
        assert_eq!(c.format, text(b'|', b"nil"));
        let c = copy("COPY BINARY t TO STDOUT");
        assert_eq!(c.format, CopyFormat::Binary);
        let c = copy("COPY t TO STDOUT CSV HEADER QUOTE '''' ESCAPE E'\\\\' FORCE QUOTE *");
        assert_eq!(
            c.format,
            CopyFormat::Csv {
                delimiter: b',',
                quote: b'\'',
                escape: b'\\',
                null: vec![],
                header: true
            }
        );
        let c = copy("copy t to stdout (delimiter E'\\t', null '')");
        assert_eq!(c.format, text(b'\t', b""));
    }

    #[test]
    fn others_and_the_unsupported() {
        for other in [
            "select 1",
            "copy t from stdin",
            "copy t to '/tmp/x'",
            "copy t to program 'cat'",
        ] {
            assert_eq!(parse(other.as_bytes(), true), Parsed::Other, "{other}");
        }
        for bad in [
            "select 1; copy t to stdout",
            "copy t to stdout (encoding 'latin1')",
            "copy t to stdout (delimiter 'ab')",
            "copy t to stdout with csv bogus",
        ] {
            assert!(
                matches!(parse(bad.as_bytes(), true), Parsed::Unsupported(_)),
                "{bad}"
            );
        }
    }
}
