//! Masking PostgreSQL values so they stay valid for their type and format:
//! typed placeholders for non-text scalars, element-wise masking of arrays
//! and records (text and binary formats), JSON kept valid JSON.
//!
//! A masking style writes text (`****`, `***-**-6789`, `h:…`). Written into a
//! `bigint`, a binary `int8` or an array literal it would break the client's
//! decoder, so each value is handled by its kind:
//! - text-like types (text, varchar, char, name, unknown; enums and other
//!   types in text format): the style, as before;
//! - known non-text scalars: a masked value becomes the type's placeholder
//!   (numbers 0, bool false, dates and times 2000-01-01 00:00, uuid nil,
//!   inet 0.0.0.0, bytea empty), in the value's own format;
//! - arrays and records: decoded, each element masked by its own kind, and
//!   encoded again (binary: dims, null bitmap flag, element OID kept);
//! - json/jsonb: a whole-value mask is a JSON string; content matches are
//!   rewritten inside the text (jsonb binary keeps its version byte);
//! - a binary value of a type the gateway cannot decode: a column rule or a
//!   content match anywhere in its bytes makes it NULL.

use crate::policy::mask::{ColumnAction, MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// Deepest nesting of records/arrays decoded (deeper values are NULLed
/// when they would need masking).
const MAX_DEPTH: usize = 8;
/// Most dimensions PostgreSQL allows in an array.
const MAX_DIMS: usize = 6;

/// How a value of one column is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text, or a binary format that is the text itself.
    Text,
    /// A scalar of a known non-text type.
    Scalar {
        oid: u32,
        binary: bool,
    },
    /// An array; `elem` is the element type (text format needs it; binary
    /// carries its own).
    Array {
        elem: u32,
        binary: bool,
    },
    /// A record or composite value.
    Record {
        binary: bool,
    },
    Json {
        jsonb_binary: bool,
    },
    /// A binary value of a type the gateway cannot decode.
    Opaque,
}

/// Types whose binary format is their text.
fn is_text_oid(oid: u32) -> bool {
    matches!(oid, 25 | 1042 | 1043 | 19 | 705)
}

/// The element type of a built-in array type.
fn array_elem(oid: u32) -> Option<u32> {
    Some(match oid {
        1009 => 25,
        1015 => 1043,
        1014 => 1042,
        1003 => 19,
        1005 => 21,
        1007 => 23,
        1016 => 20,
        1028 => 26,
        1021 => 700,
        1022 => 701,
        1231 => 1700,
        1000 => 16,
        1182 => 1082,
        1183 => 1083,
        1115 => 1114,
        1185 => 1184,
        1187 => 1186,
        2951 => 2950,
        1001 => 17,
        1041 => 869,
        199 => 114,
        3807 => 3802,
        2287 => 2249,
        _ => return None,
    })
}

/// Placeholder of a known non-text scalar: (text form, binary form).
fn placeholder(oid: u32) -> Option<(&'static [u8], &'static [u8])> {
    const Z: [u8; 16] = [0; 16];
    Some(match oid {
        21 => (b"0", &Z[..2]),
        23 | 26 => (b"0", &Z[..4]),
        20 => (b"0", &Z[..8]),
        700 => (b"0", &Z[..4]),
        701 => (b"0", &Z[..8]),
        790 => (b"0", &Z[..8]),
        // numeric: ndigits 0, weight 0, sign +, dscale 0.
        1700 => (b"0", &Z[..8]),
        16 => (b"f", &Z[..1]),
        1082 => (b"2000-01-01", &Z[..4]),
        1083 => (b"00:00:00", &Z[..8]),
        1266 => (b"00:00:00+00", &Z[..12]),
        1114 => (b"2000-01-01 00:00:00", &Z[..8]),
        1184 => (b"2000-01-01 00:00:00+00", &Z[..8]),
        1186 => (b"00:00:00", &Z[..16]),
        2950 => (b"00000000-0000-0000-0000-000000000000", &Z[..16]),
        869 => (b"0.0.0.0", &[2, 32, 0, 4, 0, 0, 0, 0]),
        650 => (b"0.0.0.0/32", &[2, 32, 1, 4, 0, 0, 0, 0]),
        829 => (b"00:00:00:00:00:00", &Z[..6]),
        17 => (b"\\x", &Z[..0]),
        _ => return None,
    })
}

impl Kind {
    pub fn of(oid: u32, format: i16) -> Kind {
        let binary = format == 1;
        if is_text_oid(oid) {
            return Kind::Text;
        }
        if oid == 114 || oid == 3802 {
            return Kind::Json {
                jsonb_binary: binary && oid == 3802,
            };
        }
        if oid == 2249 {
            return Kind::Record { binary };
        }
        if let Some(elem) = array_elem(oid) {
            return Kind::Array { elem, binary };
        }
        if placeholder(oid).is_some() {
            return Kind::Scalar { oid, binary };
        }
        if binary { Kind::Opaque } else { Kind::Text }
    }
}

/// The result of masking one value.
#[derive(Debug, PartialEq, Eq)]
pub enum Masked {
    Unchanged,
    /// Rewritten in place (same length).
    InPlace,
    Replace(Vec<u8>),
    Null,
}

/// Masks one value of `column` by its kind. `value` may be rewritten in
/// place (only for `Kind::Text` with a length-keeping style).
pub fn mask(
    m: &MaskPolicy,
    plan: &ResultPlan,
    column: usize,
    kind: Kind,
    value: &mut [u8],
    scratch: &mut MaskScratch,
) -> Masked {
    // JSON is read even in a column no rule names: its keys may be masked
    // names (`row_to_json(c)`).
    if plan.column(column) == ColumnAction::Clear
        && !(matches!(kind, Kind::Json { .. }) && m.has_column_rules(plan))
    {
        return Masked::Unchanged;
    }
    if kind == Kind::Text {
        use crate::policy::mask::InPlaceOutcome as O;
        return match m.mask_value_in_place(plan, column, value, scratch) {
            O::Unchanged => Masked::Unchanged,
            O::Masked => Masked::InPlace,
            O::Replaced(v) => Masked::Replace(v.to_vec()),
            O::Null => Masked::Null,
        };
    }
    let cx = Cx {
        m,
        plan,
        column,
        depth: 0,
    };
    match cx.value(kind, value, scratch) {
        Some(Some(v)) => Masked::Replace(v),
        Some(None) => Masked::Null,
        None => Masked::Unchanged,
    }
}

/// One column's masking context, passed down into elements and fields.
pub(super) struct Cx<'a> {
    m: &'a MaskPolicy,
    plan: &'a ResultPlan,
    column: usize,
    depth: usize,
}

/// `None`: unchanged; `Some(None)`: NULL; `Some(Some(v))`: replaced.
type Out = Option<Option<Vec<u8>>>;

impl Cx<'_> {
    fn whole(&self) -> bool {
        matches!(self.plan.column(self.column), ColumnAction::Whole { .. })
    }

    fn deeper(&self) -> Cx<'_> {
        Cx {
            m: self.m,
            plan: self.plan,
            column: self.column,
            depth: self.depth + 1,
        }
    }

    /// The column's style or detectors over a text value.
    fn text(&self, value: &[u8], scratch: &mut MaskScratch) -> Out {
        match self.m.mask_value(self.plan, self.column, value, scratch) {
            MaskOutcome::Unchanged => None,
            MaskOutcome::Replaced(v) => Some(Some(v.to_vec())),
            MaskOutcome::Null => Some(None),
        }
    }

    /// Whether the detectors find anything in `value` (read as text).
    fn matches(&self, value: &[u8], scratch: &mut MaskScratch) -> bool {
        self.whole() || self.text(value, scratch).is_some()
    }

    fn value(&self, kind: Kind, value: &[u8], scratch: &mut MaskScratch) -> Out {
        if self.depth > MAX_DEPTH {
            return self.matches(value, scratch).then_some(None);
        }
        match kind {
            Kind::Text => self.text(value, scratch),
            Kind::Scalar { oid, binary } => self.scalar(oid, binary, value, scratch),
            Kind::Array {
                elem,
                binary: false,
            } => super::values_text::array(self, elem, value, scratch),
            Kind::Array { binary: true, .. } => self.binary_array(value, scratch),
            Kind::Record { binary: false } => super::values_text::record(self, value, scratch),
            Kind::Record { binary: true } => self.binary_record(value, scratch),
            Kind::Json { jsonb_binary } => self.json(jsonb_binary, value, scratch),
            Kind::Opaque => {
                // Perhaps a composite of a type we do not know: try it as a
                // record; otherwise its bytes are scanned as they are.
                if let Some(out) = self.binary_record(value, scratch) {
                    return Some(out);
                }
                if decode_record(value).is_some() {
                    return None;
                }
                self.matches(value, scratch).then_some(None)
            }
        }
    }

    fn scalar(&self, oid: u32, binary: bool, value: &[u8], scratch: &mut MaskScratch) -> Out {
        let (text, bin) = placeholder(oid)?;
        let hit = if self.whole() {
            true
        } else if !binary {
            self.text(value, scratch).is_some()
        } else {
            // Integers can carry a number a detector knows (a card number
            // in a bigint): read them as their decimal text.
            let n = match (oid, value.len()) {
                (21, 2) => Some(i64::from(i16::from_be_bytes([value[0], value[1]]))),
                (23, 4) => Some(i64::from(i32::from_be_bytes([
                    value[0], value[1], value[2], value[3],
                ]))),
                (20, 8) => value.try_into().ok().map(i64::from_be_bytes),
                _ => None,
            };
            n.is_some_and(|n| self.text(decimal(n, &mut [0; 20]), scratch).is_some())
        };
        if !hit {
            return None;
        }
        Some(Some(if binary { bin.to_vec() } else { text.to_vec() }))
    }

    fn json(&self, jsonb_binary: bool, value: &[u8], scratch: &mut MaskScratch) -> Out {
        let (prefix, text) = if jsonb_binary {
            match value.split_first() {
                Some((1, rest)) => (&value[..1], rest),
                _ => return self.matches(value, scratch).then_some(None),
            }
        } else {
            (&value[..0], value)
        };
        let masked = if self.whole() {
            let v = self.text(text, scratch)?;
            // The style's text as a JSON string (NULL stays NULL).
            let v = v?;
            serde_json::to_vec(&String::from_utf8_lossy(&v)).ok()?
        } else {
            let v = crate::policy::mask::json::mask(self.m, self.plan, text, scratch)?;
            v?
        };
        let mut out = Vec::with_capacity(prefix.len() + masked.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(&masked);
        Some(Some(out))
    }

    /// Binary array: ndim, has-null flag, element OID, (dim, lower bound)
    /// per dimension, then each element as a length-prefixed value.
    fn binary_array(&self, value: &[u8], scratch: &mut MaskScratch) -> Out {
        let Some(a) = decode_array(value) else {
            // Not a valid array: nothing we can vouch for.
            return self.matches(value, scratch).then_some(None);
        };
        let kind = Kind::of(a.elem, 1);
        let inner = self.deeper();
        let mut changed = false;
        let mut elems: Vec<Option<Vec<u8>>> = Vec::with_capacity(a.elems.len());
        for e in &a.elems {
            let new = match e {
                None => None,
                Some(r) => {
                    let v = &value[r.clone()];
                    match inner.value(kind, v, scratch) {
                        None => Some(v.to_vec()),
                        Some(out) => {
                            changed = true;
                            out
                        }
                    }
                }
            };
            elems.push(new);
        }
        if !changed {
            return None;
        }
        let mut out = Vec::with_capacity(value.len());
        let has_null = elems.iter().any(Option::is_none);
        out.extend_from_slice(&(a.dims.len() as i32).to_be_bytes());
        out.extend_from_slice(&i32::from(has_null).to_be_bytes());
        out.extend_from_slice(&a.elem.to_be_bytes());
        for (d, lb) in &a.dims {
            out.extend_from_slice(&d.to_be_bytes());
            out.extend_from_slice(&lb.to_be_bytes());
        }
        put_values(&mut out, &elems)?;
        Some(Some(out))
    }

    /// Binary record: field count, then (type OID, length, bytes) per field.
    fn binary_record(&self, value: &[u8], scratch: &mut MaskScratch) -> Out {
        let fields = decode_record(value)?;
        let inner = self.deeper();
        let mut changed = false;
        let mut out_fields: Vec<(u32, Option<Vec<u8>>)> = Vec::with_capacity(fields.len());
        for (oid, r) in &fields {
            let new = match r {
                None => None,
                Some(r) => {
                    let v = &value[r.clone()];
                    match inner.value(Kind::of(*oid, 1), v, scratch) {
                        None => Some(v.to_vec()),
                        Some(out) => {
                            changed = true;
                            out
                        }
                    }
                }
            };
            out_fields.push((*oid, new));
        }
        if !changed {
            // A valid record with nothing to mask.
            return None;
        }
        let mut out = Vec::with_capacity(value.len());
        out.extend_from_slice(&(out_fields.len() as i32).to_be_bytes());
        for (oid, v) in &out_fields {
            out.extend_from_slice(&oid.to_be_bytes());
            put_values(&mut out, std::slice::from_ref(v))?;
        }
        Some(Some(out))
    }

    /// A value that should have parsed and did not: NULL if anything in it
    /// would be masked, since it cannot be rewritten safely.
    pub(super) fn fallback(&self, value: &[u8], scratch: &mut MaskScratch) -> Out {
        self.matches(value, scratch).then_some(None)
    }

    pub(super) fn mask_text_elem(&self, elem: u32, value: &[u8], scratch: &mut MaskScratch) -> Out {
        self.deeper().value(Kind::of(elem, 0), value, scratch)
    }
}

/// `n` in decimal, written into `buf` (no allocation per value).
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Appends length-prefixed values (-1 for NULL); `None` if one is too long.
fn put_values(out: &mut Vec<u8>, vals: &[Option<Vec<u8>>]) -> Option<()> {
    for v in vals {
        match v {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&i32::try_from(v.len()).ok()?.to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    Some(())
}

struct BinArray {
    dims: Vec<(i32, i32)>,
    elem: u32,
    elems: Vec<Option<std::ops::Range<usize>>>,
}

fn be_i32(v: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?))
}

/// Length-prefixed values from `at` on: exactly `n` of them, ending at the
/// end of `v`. Every length is checked against what is left.
fn values_at(v: &[u8], mut at: usize, n: usize) -> Option<Vec<Option<std::ops::Range<usize>>>> {
    let mut out = Vec::with_capacity(n.min(v.len() / 4));
    for _ in 0..n {
        let len = be_i32(v, at)?;
        at += 4;
        if len == -1 {
            out.push(None);
        } else {
            let len = usize::try_from(len).ok()?;
            let end = at.checked_add(len).filter(|e| *e <= v.len())?;
            out.push(Some(at..end));
            at = end;
        }
    }
    (at == v.len()).then_some(out)
}

fn decode_array(v: &[u8]) -> Option<BinArray> {
    let ndim = usize::try_from(be_i32(v, 0)?).ok()?;
    let flags = be_i32(v, 4)?;
    let elem = u32::try_from(be_i32(v, 8)?).ok()?;
    if ndim > MAX_DIMS || !(flags == 0 || flags == 1) {
        return None;
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut n: usize = if ndim == 0 { 0 } else { 1 };
    for d in 0..ndim {
        let len = be_i32(v, 12 + d * 8)?;
        let lb = be_i32(v, 16 + d * 8)?;
        n = n.checked_mul(usize::try_from(len).ok()?)?;
        dims.push((len, lb));
    }
    // Each element needs at least its 4-byte length: caps `n` by the value.
    if n > v.len() / 4 {
        return None;
    }
    let elems = values_at(v, 12 + ndim * 8, n)?;
    Some(BinArray { dims, elem, elems })
}

type Fields = Vec<(u32, Option<std::ops::Range<usize>>)>;

fn decode_record(v: &[u8]) -> Option<Fields> {
    let n = usize::try_from(be_i32(v, 0)?).ok()?;
    if n > v.len() / 8 {
        return None;
    }
    let mut at = 4;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let oid = u32::try_from(be_i32(v, at)?).ok()?;
        let len = be_i32(v, at + 4)?;
        at += 8;
        if len == -1 {
            out.push((oid, None));
        } else {
            let len = usize::try_from(len).ok()?;
            let end = at.checked_add(len).filter(|e| *e <= v.len())?;
            out.push((oid, Some(at..end)));
            at = end;
        }
    }
    (at == v.len()).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn bin_text_array(elems: &[Option<&str>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&i32::from(elems.iter().any(Option::is_none)).to_be_bytes());
        v.extend_from_slice(&25u32.to_be_bytes());
        v.extend_from_slice(&(elems.len() as i32).to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        let vals: Vec<Option<Vec<u8>>> = elems
            .iter()
            .map(|e| e.map(|s| s.as_bytes().to_vec()))
            .collect();
        put_values(&mut v, &vals).unwrap();
        v
    }

    #[test]
    fn binary_arrays_decode_and_reject_bad_lengths() {
        let v = bin_text_array(&[Some("a"), None, Some("bc")]);
        let a = decode_array(&v).unwrap();
        assert_eq!(a.elem, 25);
        assert_eq!(a.elems.len(), 3);
        assert_eq!(&v[a.elems[2].clone().unwrap()], b"bc");
        for cut in 0..v.len() {
            assert!(decode_array(&v[..cut]).is_none(), "truncated at {cut}");
        }
        let mut huge = v.clone();
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_array(&huge).is_none());
    }

    #[test]
    fn records_decode_and_reject_bad_lengths() {
        let mut v = Vec::new();
        v.extend_from_slice(&2i32.to_be_bytes());
        v.extend_from_slice(&25u32.to_be_bytes());
        v.extend_from_slice(&3i32.to_be_bytes());
        v.extend_from_slice(b"abc");
        v.extend_from_slice(&23u32.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        let f = decode_record(&v).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1], (23, None));
        for cut in 0..v.len() {
            assert!(decode_record(&v[..cut]).is_none(), "truncated at {cut}");
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, -7, 4111111111111111, i64::MIN, i64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(25, 1), Kind::Text);
        assert_eq!(
            Kind::of(20, 0),
            Kind::Scalar {
                oid: 20,
                binary: false
            }
        );
        assert_eq!(
            Kind::of(1009, 1),
            Kind::Array {
                elem: 25,
                binary: true
            }
        );
        assert_eq!(Kind::of(99999, 0), Kind::Text);
        assert_eq!(Kind::of(99999, 1), Kind::Opaque);
        assert_eq!(Kind::of(3802, 1), Kind::Json { jsonb_binary: true });
    }
}
