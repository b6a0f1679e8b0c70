//! Text-format arrays (`{a,"b c",NULL}`) and records (`(a,"b c",)`): each
//! element is masked on its own and written back quoted, so the literal
//! stays one the client's parser accepts whatever the style writes.

use super::values::Cx;
use crate::policy::mask::MaskScratch;

type Out = Option<Option<Vec<u8>>>;

/// One element of a literal: its bytes as written, and its decoded value
/// (`None` for NULL).
struct Elem {
    raw: std::ops::Range<usize>,
    value: Option<Vec<u8>>,
}

/// Reads a quoted element starting at `v[at] == b'"'`; returns the end
/// (after the closing quote) and the decoded bytes. `doubled`: `""` is a
/// quote (records); backslash escapes apply in both.
fn quoted(v: &[u8], mut at: usize, doubled: bool) -> Option<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    at += 1;
    loop {
        match *v.get(at)? {
            b'\\' => {
                out.push(*v.get(at + 1)?);
                at += 2;
            }
            b'"' if doubled && v.get(at + 1) == Some(&b'"') => {
                out.push(b'"');
                at += 2;
            }
            b'"' => return Some((at + 1, out)),
            b => {
                out.push(b);
                at += 1;
            }
        }
    }
}

fn write_quoted(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Elements of an array literal (any nesting), or `None` if malformed.
fn array_elems(v: &[u8]) -> Option<Vec<Elem>> {
    // Optional dimension decoration: `[1:2]={...}`.
    let mut at = match v.first()? {
        b'[' => v.iter().position(|&b| b == b'=')? + 1,
        _ => 0,
    };
    let mut depth = 0usize;
    let mut elems = Vec::new();
    while at < v.len() {
        match v[at] {
            b'{' => {
                depth += 1;
                at += 1;
            }
            b'}' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            b'"' if depth > 0 => {
                let (end, value) = quoted(v, at, false)?;
                elems.push(Elem {
                    raw: at..end,
                    value: Some(value),
                });
                at = end;
            }
            _ if depth > 0 => {
                let start = at;
                while at < v.len() && !matches!(v[at], b',' | b'}' | b'{' | b'"') {
                    at += 1;
                }
                let raw = v[start..at].trim_ascii_end();
                let value = (!raw.eq_ignore_ascii_case(b"NULL")).then(|| unescape(raw));
                elems.push(Elem {
                    raw: start..start + raw.len(),
                    value,
                });
            }
            _ => return None,
        }
    }
    (depth == 0).then_some(elems)
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// Fields of a record literal, or `None` if malformed.
fn record_fields(v: &[u8]) -> Option<Vec<Elem>> {
    let inner_end = v.len().checked_sub(1)?;
    if v.first() != Some(&b'(') || v.get(inner_end) != Some(&b')') {
        return None;
    }
    let mut at = 1;
    let mut fields = Vec::new();
    loop {
        let start = at;
        let mut value: Vec<u8> = Vec::new();
        let mut any = false;
        while at < inner_end && v[at] != b',' {
            any = true;
            if v[at] == b'"' {
                let (end, q) = quoted(v, at, true)?;
                value.extend_from_slice(&q);
                at = end;
            } else if v[at] == b'\\' {
                value.push(*v.get(at + 1)?);
                at += 2;
            } else {
                value.push(v[at]);
                at += 1;
            }
        }
        if at > inner_end {
            return None;
        }
        fields.push(Elem {
            raw: start..at,
            value: any.then_some(value),
        });
        if at == inner_end {
            return Some(fields);
        }
        at += 1;
    }
}

/// Writes `v` with each element either as it was or as its masked form.
fn rebuild(
    v: &[u8],
    elems: &[Elem],
    masked: &[Out],
    null: &[u8],
    quote: fn(&mut Vec<u8>, &[u8]),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 16);
    let mut prev = 0;
    for (e, m) in elems.iter().zip(masked) {
        let Some(m) = m else { continue };
        out.extend_from_slice(&v[prev..e.raw.start]);
        match m {
            Some(new) => quote(&mut out, new),
            None => out.extend_from_slice(null),
        }
        prev = e.raw.end;
    }
    out.extend_from_slice(&v[prev..]);
    out
}

fn write_record_field(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b);
        }
        out.push(b);
    }
    out.push(b'"');
}

pub(super) fn array(cx: &Cx<'_>, elem: u32, v: &[u8], scratch: &mut MaskScratch) -> Out {
    let Some(elems) = array_elems(v) else {
        return cx.fallback(v, scratch);
    };
    let masked: Vec<Out> = elems
        .iter()
        .map(|e| {
            e.value
                .as_deref()
                .and_then(|val| cx.mask_text_elem(elem, val, scratch))
        })
        .collect();
    if masked.iter().all(Option::is_none) {
        return None;
    }
    Some(Some(rebuild(v, &elems, &masked, b"NULL", write_quoted)))
}

pub(super) fn record(cx: &Cx<'_>, v: &[u8], scratch: &mut MaskScratch) -> Out {
    let Some(fields) = record_fields(v) else {
        return cx.fallback(v, scratch);
    };
    let masked: Vec<Out> = fields
        .iter()
        .map(|f| {
            f.value
                .as_deref()
                .and_then(|val| cx.mask_text_elem(25, val, scratch))
        })
        .collect();
    if masked.iter().all(Option::is_none) {
        return None;
    }
    Some(Some(rebuild(v, &fields, &masked, b"", write_record_field)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn values(elems: &[Elem]) -> Vec<Option<String>> {
        elems
            .iter()
            .map(|e| {
                e.value
                    .as_ref()
                    .map(|v| String::from_utf8(v.clone()).unwrap())
            })
            .collect()
    }

    #[test]
    fn array_literals() {
        let v = br#"{a,"b \"c\"",NULL,"NULL",{d}}"#;
        let e = array_elems(v).unwrap();
        assert_eq!(
            values(&e),
            vec![
                Some("a".into()),
                Some("b \"c\"".into()),
                None,
                Some("NULL".into()),
                Some("d".into())
            ]
        );
        assert!(array_elems(b"{a,{b}").is_none());
        assert!(array_elems(b"{\"a").is_none());
        assert_eq!(values(&array_elems(b"[0:1]={x,y}").unwrap()).len(), 2);
        let masked = vec![None, Some(Some(b"x,\"y".to_vec())), Some(None), None, None];
        assert_eq!(
            rebuild(v, &e, &masked, b"NULL", write_quoted),
            br#"{a,"x,\"y",NULL,"NULL",{d}}"#
        );
    }

    #[test]
    fn record_literals() {
        let v = br#"(1,"a ""b""",,x\,y)"#;
        let f = record_fields(v).unwrap();
        assert_eq!(
            values(&f),
            vec![
                Some("1".into()),
                Some("a \"b\"".into()),
                None,
                Some("x,y".into())
            ]
        );
        assert!(record_fields(b"(\"a)").is_none());
        assert!(record_fields(b"a,b").is_none());
        let masked = vec![None, Some(Some(b"q\"".to_vec())), None, Some(None)];
        assert_eq!(
            rebuild(v, &f, &masked, b"", write_record_field),
            br#"(1,"q""",,)"#
        );
    }
}
