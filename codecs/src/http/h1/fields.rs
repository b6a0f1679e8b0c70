//! Field sections (a head's header lines, a chunked body's trailers): finding
//! where one ends, and strict parsing of its lines into spans over one `Bytes`.

use std::ops::Range;

use bytes::Bytes;

use super::{H1Error, is_ows, is_token, list_elements, trim_ows};
use crate::http::is_value_byte;

/// One field line, as spans into the section's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldLine {
    /// The whole line, CRLF included: what a re-encoder copies verbatim.
    pub(crate) line: Range<usize>,
    pub(crate) name: Range<usize>,
    /// The value without surrounding whitespace.
    pub(crate) value: Range<usize>,
}

/// Parsed field lines in arrival order. Names keep the case they were sent
/// with; lookups ignore case. Values are raw bytes (obs-text allowed), OWS
/// around them removed. Two `Fields` are equal when their lines are.
#[derive(Debug, Clone)]
pub struct Fields {
    raw: Bytes,
    lines: Vec<FieldLine>,
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.raw_line(i) == other.raw_line(i))
    }
}

impl Eq for Fields {}

impl Fields {
    pub(crate) fn new(raw: Bytes, lines: Vec<FieldLine>) -> Fields {
        Fields { raw, lines }
    }

    /// No field lines at all.
    pub fn empty() -> Fields {
        Fields {
            raw: Bytes::new(),
            lines: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn name_of(&self, l: &FieldLine) -> &str {
        // Names were checked to be tokens (ASCII) while parsing.
        std::str::from_utf8(&self.raw[l.name.clone()]).unwrap_or("")
    }

    /// (name, value) of every line, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.lines
            .iter()
            .map(|l| (self.name_of(l), &self.raw[l.value.clone()]))
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether any `name` line lists `token` (comma-separated, case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(list_elements)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The i-th line exactly as received, CRLF included.
    pub fn raw_line(&self, i: usize) -> Option<&[u8]> {
        self.lines.get(i).map(|l| &self.raw[l.line.clone()])
    }

    pub(crate) fn name_at(&self, i: usize) -> Option<&str> {
        self.lines.get(i).map(|l| self.name_of(l))
    }
}

/// Progress through a section that has not ended yet, so a head arriving in
/// many small reads is scanned once, not once per read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SectionScan {
    /// Bytes already scanned.
    pos: usize,
    line_start: usize,
    lines: usize,
}

impl SectionScan {
    /// Where the section at the front of `buf` ends: the length through the
    /// CRLF of its empty line, or `None` if that has not arrived yet.
    /// `lead_lines` lines (a start line) precede the `max_fields` field lines
    /// allowed. Between calls `buf` may only grow at the back.
    ///
    /// Refuses as soon as the bytes seen allow: a bare LF at once, a section
    /// over `max` bytes once `max` bytes have arrived without its end.
    pub(crate) fn find_end(
        &mut self,
        buf: &[u8],
        max: usize,
        lead_lines: usize,
        max_fields: usize,
        too_large: H1Error,
    ) -> Result<Option<usize>, H1Error> {
        let window = &buf[..buf.len().min(max)];
        let from = self.pos.min(window.len());
        for lf in memchr::memchr_iter(b'\n', &window[from..]).map(|i| from + i) {
            if lf == self.line_start || window[lf - 1] != b'\r' {
                return Err(H1Error::BareLf {
                    line: self.lines + 1,
                });
            }
            if lf - 1 == self.line_start && self.lines >= lead_lines {
                *self = SectionScan::default();
                return Ok(Some(lf + 1));
            }
            self.lines += 1;
            if self.lines > lead_lines + max_fields {
                return Err(H1Error::TooManyHeaders { max: max_fields });
            }
            self.line_start = lf + 1;
        }
        self.pos = window.len();
        if buf.len() >= max {
            return Err(too_large);
        }
        Ok(None)
    }

    /// Nothing of a section scanned yet.
    pub(crate) fn at_start(&self) -> bool {
        self.pos == 0
    }
}

/// [`SectionScan::find_end`] from scratch.
#[cfg(test)]
fn find_section_end(
    buf: &[u8],
    max: usize,
    lead_lines: usize,
    max_fields: usize,
    too_large: H1Error,
) -> Result<Option<usize>, H1Error> {
    SectionScan::default().find_end(buf, max, lead_lines, max_fields, too_large)
}

/// Parse the field lines in `raw[start..end]`, where `end` is just before the
/// empty line's CRLF. `first_line` numbers the first of them for errors.
pub(crate) fn parse_field_lines(
    raw: &[u8],
    start: usize,
    end: usize,
    first_line: usize,
) -> Result<Vec<FieldLine>, H1Error> {
    let mut out = Vec::new();
    let mut pos = start;
    let mut line_no = first_line;
    while pos < end {
        // SectionScan::find_end proved every LF here ends a CRLF.
        let lf = memchr::memchr(b'\n', &raw[pos..end]).map_or(end, |i| pos + i);
        out.push(parse_field_line(raw, pos, lf.saturating_sub(1), line_no)?);
        pos = lf + 1;
        line_no += 1;
    }
    Ok(out)
}

/// `field-name ":" OWS field-value OWS`; `end` excludes the CRLF.
fn parse_field_line(
    raw: &[u8],
    start: usize,
    end: usize,
    line: usize,
) -> Result<FieldLine, H1Error> {
    let text = &raw[start..end];
    if text.first().is_some_and(|&b| is_ows(b)) {
        return Err(H1Error::ObsFold { line });
    }
    if memchr::memchr(b'\r', text).is_some() {
        return Err(H1Error::BareCr { line });
    }
    let colon = memchr::memchr(b':', text).ok_or(H1Error::MissingColon { line })?;
    let name = &text[..colon];
    if name.last().is_some_and(|&b| is_ows(b)) {
        return Err(H1Error::SpaceBeforeColon { line });
    }
    if !is_token(name) {
        return Err(H1Error::BadFieldName { line });
    }
    let after = &text[colon + 1..];
    let value = trim_ows(after);
    if !value.iter().all(|&b| is_value_byte(b) && b != 0x7f) {
        return Err(H1Error::BadFieldValue { line });
    }
    let lead = after.len() - after.iter().skip_while(|&&b| is_ows(b)).count();
    let vstart = start + colon + 1 + lead;
    Ok(FieldLine {
        line: start..end + 2,
        name: start..start + colon,
        value: vstart..vstart + value.len(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(line: &[u8]) -> Result<FieldLine, H1Error> {
        let mut raw = line.to_vec();
        raw.extend_from_slice(b"\r\n");
        parse_field_line(&raw, 0, line.len(), 2)
    }

    #[test]
    fn value_spans_skip_ows() {
        let l = one(b"X-A: \t v a l \t").unwrap();
        assert_eq!(l.name, 0..3);
        assert_eq!(&b"X-A: \t v a l \t"[l.value.clone()], b"v a l");
        assert_eq!(l.line, 0..16);
        let empty = one(b"X-A:").unwrap();
        assert!(empty.value.is_empty());
    }

    #[test]
    fn refusals() {
        assert_eq!(one(b" X: y"), Err(H1Error::ObsFold { line: 2 }));
        assert_eq!(one(b"X : y"), Err(H1Error::SpaceBeforeColon { line: 2 }));
        assert_eq!(one(b"X\ty: y"), Err(H1Error::BadFieldName { line: 2 }));
        assert_eq!(one(b": y"), Err(H1Error::BadFieldName { line: 2 }));
        assert_eq!(one(b"X y"), Err(H1Error::MissingColon { line: 2 }));
        assert_eq!(one(b"X: a\0b"), Err(H1Error::BadFieldValue { line: 2 }));
        assert_eq!(one(b"X: a\x7fb"), Err(H1Error::BadFieldValue { line: 2 }));
        assert_eq!(one(b"X: a\rb"), Err(H1Error::BareCr { line: 2 }));
    }

    #[test]
    fn section_end_needs_crlf_crlf() {
        let big = H1Error::HeadTooLarge { max: 64 };
        let f = |b: &[u8]| find_section_end(b, 64, 1, 4, big.clone());
        assert_eq!(f(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"), Ok(Some(24)));
        assert_eq!(f(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(
            f(b"GET / HTTP/1.1\nA: b\r\n\r\n"),
            Err(H1Error::BareLf { line: 1 })
        );
        assert_eq!(f(b"GET / HTTP/1.1\r\n\n"), Err(H1Error::BareLf { line: 2 }));
        assert_eq!(f(&[b'a'; 64]), Err(big.clone()));
        let many = b"G\r\na:1\r\na:1\r\na:1\r\na:1\r\na:1\r\n\r\n";
        assert_eq!(f(many), Err(H1Error::TooManyHeaders { max: 4 }));
    }
}
