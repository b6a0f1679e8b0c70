//! JSON documents (PostgreSQL json/jsonb values, HTTP response bodies),
//! masked where they lie by `jsontext`; the tree walk here is its oracle
//! and says what masking means: a
//! value whose key matches a column glob is masked with that column's rule
//! (`row_to_json(c)`, `json_agg(c)`, `jsonb_build_object('ssn', ssn)`, an
//! API's `{"ssn": …}`), every other string and number is scanned by the
//! content detectors; the result is JSON again.

#[cfg(test)]
use serde_json::Value;

use super::{MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// Deepest nesting walked; serde_json itself stops at 128 while parsing.
#[cfg(test)]
const MAX_DEPTH: usize = 64;

/// `None`: unchanged; `Some(None)`: NULL (not valid JSON); `Some(Some)`:
/// the masked document. A document that does not parse is NULLed if any
/// detector or masked key name finds something in it, since it cannot be
/// rewritten safely.
pub(crate) fn mask(
    m: &MaskPolicy,
    plan: &ResultPlan,
    text: &[u8],
    scratch: &mut MaskScratch,
) -> Option<Option<Vec<u8>>> {
    let mut out = Vec::new();
    match super::jsontext::mask(m, plan, text, scratch, &mut out) {
        Ok(false) => None,
        Ok(true) => Some(Some(out)),
        Err(_) => {
            let hit = !matches!(m.mask_text(plan, text, scratch), MaskOutcome::Unchanged);
            hit.then_some(None)
        }
    }
}

/// Masks a parsed document in place; whether anything changed. The oracle
/// of `jsontext` (which masks without parsing into a tree).
#[cfg(test)]
pub(crate) fn mask_value(
    m: &MaskPolicy,
    plan: &ResultPlan,
    doc: &mut Value,
    scratch: &mut MaskScratch,
) -> bool {
    walk(m, plan, doc, scratch, &mut Vec::new())
}

/// The rule a key name or a pointer gives the value at `path`, the lowest
/// when both do; pointers matched from the root each time.
#[cfg(test)]
fn rule_at(m: &MaskPolicy, plan: &ResultPlan, key: Option<&str>, path: &[Vec<u8>]) -> Option<u8> {
    let by_name = key.and_then(|k| m.column_rule(plan, k.as_bytes()));
    let segments: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
    let by_pointer =
        super::pointer::rule_for_path(m.pointers(), &segments, |r| m.rule_applies(plan, r));
    match (by_name, by_pointer) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
/// A value masked whole by `rule`: its JSON text through the style, as a
/// JSON string (or JSON null for style `null`).
fn by_rule(m: &MaskPolicy, rule: u8, v: &Value, scratch: &mut MaskScratch) -> Value {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => return Value::Null,
        other => other.to_string(),
    };
    match m.mask_with_rule(rule, text.as_bytes(), scratch) {
        MaskOutcome::Null => Value::Null,
        MaskOutcome::Replaced(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        MaskOutcome::Unchanged => Value::String(text),
    }
}

#[cfg(test)]
fn walk(
    m: &MaskPolicy,
    plan: &ResultPlan,
    v: &mut Value,
    scratch: &mut MaskScratch,
    path: &mut Vec<Vec<u8>>,
) -> bool {
    if path.len() > MAX_DEPTH {
        *v = Value::Null;
        return true;
    }
    match v {
        Value::Object(map) => {
            let mut changed = false;
            for (k, val) in map.iter_mut() {
                path.push(k.as_bytes().to_vec());
                if let Some(rule) = rule_at(m, plan, Some(k), path) {
                    *val = by_rule(m, rule, val, scratch);
                    changed = true;
                } else {
                    changed |= walk(m, plan, val, scratch, path);
                }
                path.pop();
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string().into_bytes());
                if let Some(rule) = rule_at(m, plan, None, path) {
                    *item = by_rule(m, rule, item, scratch);
                    changed = true;
                } else {
                    changed |= walk(m, plan, item, scratch, path);
                }
                path.pop();
            }
            changed
        }
        Value::String(s) => match m.mask_text(plan, s.as_bytes(), scratch) {
            MaskOutcome::Unchanged => false,
            MaskOutcome::Replaced(b) => {
                *s = String::from_utf8_lossy(b).into_owned();
                true
            }
            MaskOutcome::Null => {
                *v = Value::Null;
                true
            }
        },
        Value::Number(n) => {
            let text = n.to_string();
            if matches!(
                m.mask_text(plan, text.as_bytes(), scratch),
                MaskOutcome::Unchanged
            ) {
                return false;
            }
            *v = Value::from(0);
            true
        }
        Value::Bool(_) | Value::Null => false,
    }
}
