//! COPY TO STDOUT rows masked by column, in text, CSV and binary formats.
//!
//! The columns come from the description the gateway asked for just before
//! the COPY (see `copystmt` and `shapes`), checked against the column count
//! of CopyOutResponse; the row format from the COPY statement's options.
//! Each row is split into its fields, each field decoded (text escapes, CSV
//! quoting, binary lengths), masked by its column's kind exactly like a
//! DataRow value (`values`), and written back in the same format. A row may
//! span CopyData messages (the protocol allows it; PostgreSQL sends one row
//! per message): the unfinished tail is held, up to a cap, and the masked
//! complete rows go out in one CopyData.

use super::copystmt::{self, CopyFormat, Parsed};
use super::rowplan::{ResultRefusal, RowMode, RowPlan};
use super::shapes::{Column, CopyShape, ResultShape};
use super::values::{self, Kind, Masked};
use crate::policy::mask::{ColumnAction, MaskPolicy, MaskScratch};

/// Longest unfinished row held between CopyData messages.
pub const MAX_HELD_ROW: usize = 64 * 1024 * 1024;

const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// One COPY OUT in progress (inactive between COPYs).
#[derive(Debug, Default)]
pub struct CopyOut {
    active: bool,
    format: Option<CopyFormat>,
    rows: RowPlan,
    held: Vec<u8>,
    /// Binary: the file header was passed; CSV: the header line was.
    started: bool,
    field: Vec<u8>,
}

fn refusal(why: impl Into<String>) -> ResultRefusal {
    ResultRefusal::Copy { why: why.into() }
}

/// The column count of a CopyOutResponse and whether it is binary.
fn response_columns(body: &[u8]) -> Option<(bool, usize)> {
    let binary = *body.first()? == 1;
    let n = i16::from_be_bytes(body.get(1..3)?.try_into().ok()?);
    usize::try_from(n).ok().map(|n| (binary, n))
}

impl CopyOut {
    pub fn active(&self) -> bool {
        self.active
    }

    /// A CopyOutResponse (`body`) arrived for a COPY of `shape`. Leaves the
    /// COPY inactive when no name rule applies to the caller (content-only
    /// masking of whole messages applies then, as before).
    pub fn start(
        &mut self,
        m: &MaskPolicy,
        groups: &[String],
        shape: CopyShape,
        body: &[u8],
        standard_conforming_strings: bool,
    ) -> Result<(), ResultRefusal> {
        self.end();
        let mut caller = crate::policy::mask::ResultPlan::default();
        m.plan_caller(groups, &mut caller);
        if !m.has_column_rules(&caller) {
            return Ok(());
        }
        let statement = shape
            .statement
            .ok_or_else(|| refusal("the statement is too long to keep"))?;
        let format = match copystmt::parse(&statement, standard_conforming_strings) {
            Parsed::CopyTo(c) => c.format,
            Parsed::Unsupported(why) => return Err(refusal(why)),
            Parsed::Other => {
                return Err(refusal("the statement is not a COPY TO STDOUT it can read"));
            }
        };
        let columns = shape.columns.ok_or_else(|| {
            refusal("its columns could not be described (see the error before it, if any)")
        })?;
        let (binary, n) =
            response_columns(body).ok_or_else(|| refusal("a malformed CopyOutResponse"))?;
        if binary != (format == CopyFormat::Binary) {
            return Err(refusal(
                "the server's COPY format differs from the statement's",
            ));
        }
        if n != columns.columns.len() {
            return Err(refusal(format!(
                "the server sends {n} columns but the description has {} \
                 (generated columns are left out of COPY: name the columns)",
                columns.columns.len()
            )));
        }
        let wire = i16::from(binary);
        let described: std::rc::Rc<[Column]> = columns
            .columns
            .iter()
            .map(|c| Column {
                format: wire,
                ..c.clone()
            })
            .collect();
        self.rows.start(
            m,
            groups,
            ResultShape::Known {
                columns: described,
                sql: columns.sql,
            },
            standard_conforming_strings,
        )?;
        if self.rows.mode != RowMode::Off {
            self.active = true;
            self.format = Some(format);
        }
        Ok(())
    }

    /// The COPY is over (CopyDone, an error, the end of the batch).
    pub fn end(&mut self) {
        self.active = false;
        self.format = None;
        self.held.clear();
        self.started = false;
    }

    /// CopyDone: nothing may be left unfinished.
    pub fn done(&mut self) -> Result<(), ResultRefusal> {
        let rest = !self.held.is_empty();
        self.end();
        if rest {
            return Err(refusal("the last row is incomplete"));
        }
        Ok(())
    }

    /// One CopyData body: `None` to pass it as it is, or the body that
    /// replaces it (empty: drop the message, its row is not complete yet).
    pub fn data(
        &mut self,
        m: &MaskPolicy,
        body: &[u8],
        scratch: &mut MaskScratch,
    ) -> Result<Option<Vec<u8>>, ResultRefusal> {
        let Some(format) = self.format.clone() else {
            return Ok(None);
        };
        let held = !self.held.is_empty();
        if held {
            if self.held.len() + body.len() > MAX_HELD_ROW {
                return Err(refusal("a row is larger than the gateway holds"));
            }
            self.held.extend_from_slice(body);
        }
        let input = if held {
            std::mem::take(&mut self.held)
        } else {
            body.to_vec()
        };
        let mut out = Vec::with_capacity(input.len() + 16);
        let mut changed = held;
        let mut at = 0;
        while at < input.len() {
            let Some(len) = self.row_len(&format, &input[at..])? else {
                break;
            };
            let row = &input[at..at + len];
            let skip = !self.started
                && matches!(
                    format,
                    CopyFormat::Binary
                        | CopyFormat::Csv { header: true, .. }
                        | CopyFormat::Text { header: true, .. }
                );
            if skip {
                self.started = true;
                out.extend_from_slice(row);
            } else {
                changed |= self.row(m, &format, row, &mut out, scratch)?;
            }
            at += len;
        }
        if at < input.len() {
            if input.len() - at > MAX_HELD_ROW {
                return Err(refusal("a row is larger than the gateway holds"));
            }
            self.held.extend_from_slice(&input[at..]);
            changed = true;
        }
        Ok(changed.then_some(out))
    }

    /// Length of the row (or binary header/trailer) at the start of `b`,
    /// or `None` when it is not complete yet.
    fn row_len(&self, format: &CopyFormat, b: &[u8]) -> Result<Option<usize>, ResultRefusal> {
        match format {
            CopyFormat::Text { .. } => Ok(memchr::memchr(b'\n', b).map(|i| i + 1)),
            CopyFormat::Csv { quote, escape, .. } => {
                Ok(csv_scan(b, b'\n', *quote, *escape, |_| {}).map(|i| i + 1))
            }
            CopyFormat::Binary if !self.started => {
                let Some(ext) = b.get(15..19) else {
                    return Ok(None);
                };
                if !b.starts_with(BINARY_SIGNATURE) {
                    return Err(refusal("a binary COPY without its signature"));
                }
                let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
                let len = 19usize.saturating_add(ext);
                Ok((b.len() >= len).then_some(len))
            }
            CopyFormat::Binary => binary_tuple_len(b),
        }
    }

    /// Masks one row into `out`; says whether anything changed.
    fn row(
        &mut self,
        m: &MaskPolicy,
        format: &CopyFormat,
        row: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut MaskScratch,
    ) -> Result<bool, ResultRefusal> {
        match format {
            CopyFormat::Binary => self.binary_row(m, row, out, scratch),
            CopyFormat::Text {
                delimiter, null, ..
            } => self.text_row(m, *delimiter, null, row, out, scratch),
            CopyFormat::Csv {
                delimiter,
                quote,
                escape,
                null,
                ..
            } => self.csv_row(m, (*delimiter, *quote, *escape), null, row, out, scratch),
        }
    }

    /// Whether column `i` needs its values read at all.
    fn wanted(&self, m: &MaskPolicy, i: usize) -> bool {
        self.rows.plan.column(i) != ColumnAction::Clear
            || (matches!(self.rows.kinds.get(i), Some(Kind::Json { .. }))
                && m.has_column_rules(&self.rows.plan))
    }

    /// Masks the decoded value in `self.field`: `None` unchanged, `Some(None)`
    /// NULL, `Some(Some(v))` the new value.
    fn mask_field(
        &mut self,
        m: &MaskPolicy,
        i: usize,
        scratch: &mut MaskScratch,
    ) -> Option<Option<Vec<u8>>> {
        let kind = self.rows.kinds.get(i).copied().unwrap_or(Kind::Text);
        match values::mask(m, &self.rows.plan, i, kind, &mut self.field, scratch) {
            Masked::Unchanged => None,
            Masked::InPlace => Some(Some(self.field.clone())),
            Masked::Replace(v) => Some(Some(v)),
            Masked::Null => Some(None),
        }
    }

    fn check_count(&self, fields: usize) -> Result<(), ResultRefusal> {
        if fields != self.rows.kinds.len() {
            return Err(refusal(format!(
                "a row has {fields} fields for {} columns",
                self.rows.kinds.len()
            )));
        }
        Ok(())
    }

    fn text_row(
        &mut self,
        m: &MaskPolicy,
        delimiter: u8,
        null: &[u8],
        row: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut MaskScratch,
    ) -> Result<bool, ResultRefusal> {
        let line = row.strip_suffix(b"\n").unwrap_or(row);
        let fields = split_text(line, delimiter);
        self.check_count(fields.len())?;
        let mut changed = false;
        for (i, raw) in fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            if *raw == null || !self.wanted(m, i) {
                out.extend_from_slice(raw);
                continue;
            }
            unescape_text(raw, &mut self.field);
            match self.mask_field(m, i, scratch) {
                None => out.extend_from_slice(raw),
                Some(v) => {
                    changed = true;
                    match v {
                        None => out.extend_from_slice(null),
                        Some(v) => escape_text(&v, delimiter, out),
                    }
                }
            }
        }
        out.push(b'\n');
        Ok(changed)
    }

    fn csv_row(
        &mut self,
        m: &MaskPolicy,
        (delimiter, quote, escape): (u8, u8, u8),
        null: &[u8],
        row: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut MaskScratch,
    ) -> Result<bool, ResultRefusal> {
        let line = row.strip_suffix(b"\n").unwrap_or(row);
        let fields = split_csv(line, delimiter, quote, escape);
        self.check_count(fields.len())?;
        let mut changed = false;
        for (i, raw) in fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            let quoted = raw.first() == Some(&quote);
            if (!quoted && *raw == null) || !self.wanted(m, i) {
                out.extend_from_slice(raw);
                continue;
            }
            unquote_csv(raw, quote, escape, &mut self.field);
            match self.mask_field(m, i, scratch) {
                None => out.extend_from_slice(raw),
                Some(v) => {
                    changed = true;
                    match v {
                        None => out.extend_from_slice(null),
                        Some(v) => quote_csv(&v, (delimiter, quote, escape), null, out),
                    }
                }
            }
        }
        out.push(b'\n');
        Ok(changed)
    }

    fn binary_row(
        &mut self,
        m: &MaskPolicy,
        row: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut MaskScratch,
    ) -> Result<bool, ResultRefusal> {
        let short = || refusal("a binary row shorter than its lengths");
        let word = |at: usize, n: usize| row.get(at..at + n).ok_or_else(short);
        let c = word(0, 2)?;
        let count = i16::from_be_bytes([c[0], c[1]]);
        if count == -1 {
            out.extend_from_slice(row);
            return Ok(false);
        }
        self.check_count(usize::try_from(count).unwrap_or(usize::MAX))?;
        out.extend_from_slice(c);
        let mut at = 2;
        let mut changed = false;
        for i in 0..self.rows.kinds.len() {
            let l = word(at, 4)?;
            let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
            at += 4;
            let Ok(n) = usize::try_from(len) else {
                out.extend_from_slice(&len.to_be_bytes());
                continue;
            };
            let raw = word(at, n)?;
            at += n;
            let masked = if self.wanted(m, i) {
                self.field.clear();
                self.field.extend_from_slice(raw);
                self.mask_field(m, i, scratch)
            } else {
                None
            };
            match masked {
                None => {
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(raw);
                }
                Some(None) => {
                    changed = true;
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                }
                Some(Some(v)) => {
                    changed = true;
                    let n = i32::try_from(v.len())
                        .map_err(|_| refusal("a masked value is too long"))?;
                    out.extend_from_slice(&n.to_be_bytes());
                    out.extend_from_slice(&v);
                }
            }
        }
        Ok(changed)
    }
}

/// Length of the binary tuple (or trailer) at the start of `b`; every field
/// length is checked against what is there before it is trusted.
fn binary_tuple_len(b: &[u8]) -> Result<Option<usize>, ResultRefusal> {
    let Some(count) = b.get(..2) else {
        return Ok(None);
    };
    let count = i16::from_be_bytes([count[0], count[1]]);
    if count == -1 {
        return Ok(Some(2));
    }
    let count = usize::try_from(count).map_err(|_| refusal("a negative field count"))?;
    let mut at = 2usize;
    for _ in 0..count {
        let Some(l) = b.get(at..at + 4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        at += 4;
        match len {
            -1 => {}
            n if n < 0 => return Err(refusal("a negative field length")),
            n => {
                at = at.saturating_add(n as usize);
                if at > MAX_HELD_ROW {
                    return Err(refusal("a row is larger than the gateway holds"));
                }
            }
        }
    }
    Ok((b.len() >= at).then_some(at))
}

/// Fields of a text-format line (an escaped delimiter does not split).
fn split_text(line: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < line.len() {
        if line[i] == b'\\' {
            i += 2;
            continue;
        }
        if line[i] == delimiter {
            fields.push(&line[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    fields.push(&line[start.min(line.len())..]);
    fields
}

/// PostgreSQL's text-format escapes, decoded into `out`.
fn unescape_text(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != b'\\' || i >= raw.len() {
            out.push(c);
            continue;
        }
        let e = raw[i];
        i += 1;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// A value written as PostgreSQL writes text-format COPY fields.
fn escape_text(v: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    for &c in v {
        match c {
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            11 => out.extend_from_slice(b"\\v"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            c if c == delimiter => out.extend_from_slice(&[b'\\', c]),
            c => out.push(c),
        }
    }
}

/// Index of the first `stop` byte outside quotes; `at` sees every unquoted
/// delimiter-candidate position before it (escaped bytes inside quotes are
/// skipped, so `\"` with a backslash escape does not end the quotes).
fn csv_scan(b: &[u8], stop: u8, quote: u8, escape: u8, mut at: impl FnMut(usize)) -> Option<usize> {
    let mut quoted = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if quoted && c == escape && escape != quote && b.get(i + 1).is_some() {
            i += 2;
            continue;
        }
        if c == quote {
            quoted = !quoted;
        } else if !quoted {
            if c == stop {
                return Some(i);
            }
            at(i);
        }
        i += 1;
    }
    None
}

/// Fields of a CSV line, quotes kept (a quoted delimiter does not split).
fn split_csv(line: &[u8], delimiter: u8, quote: u8, escape: u8) -> Vec<&[u8]> {
    let mut cuts = Vec::new();
    csv_scan(line, b'\n', quote, escape, |i| {
        if line[i] == delimiter {
            cuts.push(i);
        }
    });
    let mut fields = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts {
        fields.push(&line[start..c]);
        start = c + 1;
    }
    fields.push(&line[start..]);
    fields
}

/// A CSV field's value: quotes removed, escapes resolved.
fn unquote_csv(raw: &[u8], quote: u8, escape: u8, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    let mut quoted = false;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if quoted && c == escape && raw.get(i).is_some_and(|n| *n == quote || *n == escape) {
            out.push(raw[i]);
            i += 1;
        } else if c == quote {
            quoted = !quoted;
        } else {
            out.push(c);
        }
    }
}

/// A value written as PostgreSQL writes a CSV field: quoted when it holds
/// the delimiter, a quote, an escape or a line break, or could be read as
/// NULL or the end-of-data marker; quote and escape escaped inside.
fn quote_csv(v: &[u8], (delimiter, quote, escape): (u8, u8, u8), null: &[u8], out: &mut Vec<u8>) {
    let needs = v == null
        || v == b"\\."
        || v.iter()
            .any(|&c| c == delimiter || c == quote || c == escape || c == b'\n' || c == b'\r');
    if !needs {
        out.extend_from_slice(v);
        return;
    }
    out.push(quote);
    for &c in v {
        if c == quote || c == escape {
            out.push(escape);
        }
        out.push(c);
    }
    out.push(quote);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_round_trip() {
        let line = b"1\ta\\tb\\\\c\t\\N";
        let f = split_text(line, b'\t');
        assert_eq!(f, vec![&b"1"[..], b"a\\tb\\\\c", b"\\N"]);
        let mut v = Vec::new();
        unescape_text(f[1], &mut v);
        assert_eq!(v, b"a\tb\\c");
        let mut out = Vec::new();
        escape_text(&v, b'\t', &mut out);
        assert_eq!(out, f[1]);
        unescape_text(b"\\101\\x42", &mut v);
        assert_eq!(v, b"AB");
    }

    #[test]
    fn csv_fields_round_trip() {
        let line = br#"1,"a,""b""",,"""#;
        let f = split_csv(line, b',', b'"', b'"');
        assert_eq!(f, vec![&b"1"[..], br#""a,""b""""#, b"", br#""""#]);
        let mut v = Vec::new();
        unquote_csv(f[1], b'"', b'"', &mut v);
        assert_eq!(v, br#"a,"b""#);
        let mut out = Vec::new();
        quote_csv(&v, (b',', b'"', b'"'), b"", &mut out);
        assert_eq!(out, f[1]);
        out.clear();
        quote_csv(b"plain", (b',', b'"', b'"'), b"", &mut out);
        quote_csv(b"", (b',', b'"', b'"'), b"", &mut out);
        assert_eq!(out, b"plain\"\"");
        unquote_csv(br#""x\"y\\""#, b'"', b'\\', &mut v);
        assert_eq!(v, br#"x"y\"#);
    }

    #[test]
    fn binary_tuples_are_measured_before_they_are_trusted() {
        let mut t = vec![0, 2];
        t.extend_from_slice(&3i32.to_be_bytes());
        t.extend_from_slice(b"abc");
        t.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(binary_tuple_len(&t).unwrap(), Some(t.len()));
        assert_eq!(binary_tuple_len(&t[..5]).unwrap(), None);
        let mut bad = vec![0, 1];
        bad.extend_from_slice(&(-7i32).to_be_bytes());
        assert!(binary_tuple_len(&bad).is_err());
        assert!(binary_tuple_len(&[0xff, 0xfe]).is_err());
    }
}
