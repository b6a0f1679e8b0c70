//! JSON text masked where it lies: the document is read once, token by
//! token, and copied through; only a value that masking changes is written
//! anew. No tree is built and nothing is re-serialized, so key order,
//! spacing and number spelling reach the caller as the upstream sent them,
//! and an unchanged document costs one pass and no allocation.
//!
//! It masks exactly as [`super::json::mask_value`] does on a parsed
//! document (the tests hold it to that, document by document): a value
//! under a key matching a column glob is masked whole by that rule (its
//! text, or its compact JSON when it is not a string, becomes a string, or
//! `null` for style `null`); every other string and number is scanned by the
//! detectors (a number with a match becomes `0`); values nested deeper than
//! the walk goes become `null`. It accepts what `serde_json` accepts (one
//! RFC 8259 value, whitespace around it, strings valid UTF-8 with no
//! control characters or lone surrogate escapes, at most 128 levels), and
//! refuses the rest.

use super::pointer::PointerWalk;
use super::{MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// Deepest level whose values are masked (as `json::MAX_DEPTH`).
const MAX_DEPTH: usize = 64;
/// Deepest nesting accepted (serde_json's recursion limit).
const MAX_NESTING: usize = 128;

/// The text is not one JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Masks the JSON document `text` into `out` (cleared first). `Ok(false)`:
/// nothing changed, and `out` holds nothing useful (send `text`).
pub(crate) fn mask(
    m: &MaskPolicy,
    plan: &ResultPlan,
    text: &[u8],
    scratch: &mut MaskScratch,
    out: &mut Vec<u8>,
) -> Result<bool, NotJson> {
    out.clear();
    // The pointer walk lives in the scratch between calls (its memory is
    // reused); it is taken out while the scratch is lent to the detectors.
    let pointers = m.has_pointer_rules(plan).then(|| {
        let mut walk = std::mem::take(&mut scratch.pointer_walk);
        walk.reset(m.pointers());
        walk
    });
    let mut w = Walker {
        m,
        plan,
        text,
        at: 0,
        copied: 0,
        out,
        scratch,
        decoded: Vec::new(),
        changed: false,
        pointers,
        index: itoa::Buffer::new(),
    };
    let result = w.document();
    if let Some(walk) = w.pointers.take() {
        w.scratch.pointer_walk = walk;
    }
    result?;
    if w.changed {
        let rest = &text[w.copied..];
        w.out.extend_from_slice(rest);
    }
    Ok(w.changed)
}

struct Walker<'a, 'o> {
    m: &'a MaskPolicy,
    plan: &'a ResultPlan,
    text: &'a [u8],
    at: usize,
    /// `text[..copied]` is in `out` (or replaced there).
    copied: usize,
    out: &'o mut Vec<u8>,
    scratch: &'o mut MaskScratch,
    /// A string's decoded text, when it has escapes.
    decoded: Vec<u8>,
    changed: bool,
    /// Where the walk is for the `json_paths` rules (when any applies).
    pointers: Option<PointerWalk>,
    /// An array index as a pointer segment.
    index: itoa::Buffer,
}

impl Walker<'_, '_> {
    fn document(&mut self) -> Result<(), NotJson> {
        self.ws();
        self.value(0)?;
        self.ws();
        if self.at != self.text.len() {
            return Err(NotJson);
        }
        Ok(())
    }

    fn leave(&mut self) {
        if let Some(walk) = self.pointers.as_mut() {
            walk.leave();
        }
    }

    /// One member's or element's value, masked whole by `rule` or walked.
    fn member(&mut self, rule: Option<u8>, depth: usize) -> Result<(), NotJson> {
        let result = match rule {
            Some(rule) => self.by_rule(rule, depth),
            None => self.value(depth),
        };
        self.leave();
        result
    }
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), NotJson> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(NotJson)
        }
    }

    /// Writes `with` in place of `text[start..end]`.
    fn replace(&mut self, start: usize, end: usize, with: Replacement<'_>) {
        self.out.extend_from_slice(&self.text[self.copied..start]);
        match with {
            Replacement::Null => self.out.extend_from_slice(b"null"),
            Replacement::Zero => self.out.push(b'0'),
            Replacement::String(s) => push_json_string(self.out, &String::from_utf8_lossy(s)),
        }
        self.copied = end;
        self.changed = true;
    }

    /// One value at `depth` (the document is depth 0).
    fn value(&mut self, depth: usize) -> Result<(), NotJson> {
        let start = self.at;
        if depth > MAX_DEPTH {
            self.skip(depth)?;
            self.replace(start, self.at, Replacement::Null);
            return Ok(());
        }
        match self.peek().ok_or(NotJson)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => {
                let escaped = self.string()?;
                let raw = &self.text[start + 1..self.at - 1];
                let value: &[u8] = if escaped { &self.decoded } else { raw };
                match self.m.mask_text(self.plan, value, self.scratch) {
                    MaskOutcome::Unchanged => Ok(()),
                    MaskOutcome::Replaced(b) => {
                        let b = b.to_vec();
                        self.replace(start, self.at, Replacement::String(&b));
                        Ok(())
                    }
                    // mask_text never NULLs; as the tree walk would.
                    MaskOutcome::Null => {
                        self.replace(start, self.at, Replacement::Null);
                        Ok(())
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                let canonical = canonical_number(&self.text[start..self.at])?;
                if !matches!(
                    self.m
                        .mask_text(self.plan, canonical.as_bytes(), self.scratch),
                    MaskOutcome::Unchanged
                ) {
                    self.replace(start, self.at, Replacement::Zero);
                }
                Ok(())
            }
            _ => self.literal(),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), NotJson> {
        if depth + 1 >= MAX_NESTING {
            return Err(NotJson);
        }
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key_start = self.at;
            if self.peek() != Some(b'"') {
                return Err(NotJson);
            }
            let escaped = self.string()?;
            let key: &[u8] = if escaped {
                &self.decoded
            } else {
                &self.text[key_start + 1..self.at - 1]
            };
            let by_name = self.m.column_rule(self.plan, key);
            let (m, plan) = (self.m, self.plan);
            let by_pointer = self
                .pointers
                .as_mut()
                .and_then(|w| w.enter(m.pointers(), key, |r| m.rule_applies(plan, r)));
            let rule = match (by_name, by_pointer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.ws();
            self.eat(b':')?;
            self.ws();
            self.member(rule, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(NotJson),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), NotJson> {
        if depth + 1 >= MAX_NESTING {
            return Err(NotJson);
        }
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            let (m, plan) = (self.m, self.plan);
            let rule = match self.pointers.as_mut() {
                Some(w) => {
                    let segment = self.index.format(index).as_bytes();
                    w.enter(m.pointers(), segment, |r| m.rule_applies(plan, r))
                }
                None => None,
            };
            index += 1;
            self.member(rule, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(NotJson),
            }
        }
    }

    /// A value under a masked key, masked whole by `rule`: its text (a
    /// string's decoded text, or any other value's compact JSON) through
    /// the rule's style, as a string; `null` stays `null`.
    fn by_rule(&mut self, rule: u8, depth: usize) -> Result<(), NotJson> {
        let start = self.at;
        let text: Vec<u8> = match self.peek().ok_or(NotJson)? {
            b'"' => {
                if self.string()? {
                    self.decoded.clone()
                } else {
                    self.text[start + 1..self.at - 1].to_vec()
                }
            }
            b'n' => {
                // Stays null; counted as masked, as the tree walk counts it.
                self.literal()?;
                self.replace(start, self.at, Replacement::Null);
                return Ok(());
            }
            // A number, object, array or boolean: as its compact JSON
            // (rare: a masked key usually holds a string).
            _ => {
                self.skip(depth)?;
                serde_json::from_slice::<serde_json::Value>(&self.text[start..self.at])
                    .map_err(|_| NotJson)?
                    .to_string()
                    .into_bytes()
            }
        };
        let with = match self.m.mask_with_rule(rule, &text, self.scratch) {
            MaskOutcome::Null => Owned::Null,
            MaskOutcome::Replaced(b) => Owned::String(b.to_vec()),
            MaskOutcome::Unchanged => Owned::String(text),
        };
        let with = match &with {
            Owned::Null => Replacement::Null,
            Owned::String(s) => Replacement::String(s),
        };
        self.replace(start, self.at, with);
        Ok(())
    }

    /// Skips (and checks) one value at `depth` without masking.
    fn skip(&mut self, depth: usize) -> Result<(), NotJson> {
        match self.peek().ok_or(NotJson)? {
            b'{' | b'[' => {
                if depth + 1 >= MAX_NESTING {
                    return Err(NotJson);
                }
                let close = if self.peek() == Some(b'{') {
                    b'}'
                } else {
                    b']'
                };
                let object = close == b'}';
                self.at += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    if object {
                        if self.peek() != Some(b'"') {
                            return Err(NotJson);
                        }
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.at += 1;
                            self.ws();
                        }
                        Some(c) if c == close => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(NotJson),
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                self.number()?;
                canonical_number(&self.text[start..self.at]).map(|_| ())
            }
            _ => self.literal(),
        }
    }

    fn literal(&mut self) -> Result<(), NotJson> {
        let rest = &self.text[self.at..];
        for word in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(word) {
                self.at += word.len();
                return Ok(());
            }
        }
        Err(NotJson)
    }

    /// Reads a string at `at` (its quote); whether it had escapes (then
    /// its text is in `decoded`).
    fn string(&mut self) -> Result<bool, NotJson> {
        self.eat(b'"')?;
        let start = self.at;
        // The common case: no escape, no control character, then the run
        // is checked as UTF-8 once.
        let run = self.text[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(NotJson)?;
        let end = start + run;
        std::str::from_utf8(&self.text[start..end]).map_err(|_| NotJson)?;
        if self.text[end] == b'"' {
            self.at = end + 1;
            return Ok(false);
        }
        if self.text[end] < 0x20 {
            return Err(NotJson);
        }
        self.decoded.clear();
        self.decoded.extend_from_slice(&self.text[start..end]);
        self.at = end;
        loop {
            let b = self.peek().ok_or(NotJson)?;
            match b {
                b'"' => {
                    self.at += 1;
                    return Ok(true);
                }
                b'\\' => {
                    self.at += 1;
                    self.escape()?;
                }
                0..=0x1f => return Err(NotJson),
                _ => {
                    let run = self.text[self.at..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                        .ok_or(NotJson)?;
                    let part = &self.text[self.at..self.at + run];
                    std::str::from_utf8(part).map_err(|_| NotJson)?;
                    self.decoded.extend_from_slice(part);
                    self.at += run;
                }
            }
        }
    }

    /// One escape after its backslash, decoded into `decoded`.
    fn escape(&mut self) -> Result<(), NotJson> {
        let b = self.peek().ok_or(NotJson)?;
        self.at += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by an escaped low one.
                    if self.text.get(self.at..self.at + 2) != Some(b"\\u") {
                        return Err(NotJson);
                    }
                    self.at += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(NotJson);
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err(NotJson);
                } else {
                    hi
                };
                char::from_u32(code).ok_or(NotJson)?
            }
            _ => return Err(NotJson),
        };
        let mut buf = [0u8; 4];
        self.decoded
            .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, NotJson> {
        let digits = self.text.get(self.at..self.at + 4).ok_or(NotJson)?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or(NotJson)?;
            v = v * 16 + n;
        }
        self.at += 4;
        Ok(v)
    }

    /// Reads a number's grammar (RFC 8259 section 6).
    fn number(&mut self) -> Result<(), NotJson> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(NotJson),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(NotJson);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(NotJson);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }
}

/// What a value is replaced with.
enum Replacement<'s> {
    Null,
    Zero,
    String(&'s [u8]),
}

enum Owned {
    Null,
    String(Vec<u8>),
}

/// The text the tree walk scans for a number: serde_json's own spelling of
/// it. An integer of up to 18 digits is spelled as written; anything else
/// goes through serde_json (which refuses a number out of f64's range).
fn canonical_number(raw: &[u8]) -> Result<std::borrow::Cow<'_, str>, NotJson> {
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit)
        && !(raw.starts_with(b"-") && digits == b"0");
    if plain {
        // ASCII digits: valid UTF-8.
        return std::str::from_utf8(raw)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| NotJson);
    }
    let n: serde_json::Number = serde_json::from_slice(raw).map_err(|_| NotJson)?;
    Ok(std::borrow::Cow::Owned(n.to_string()))
}

/// `s` as a JSON string, escaped as serde_json escapes.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests;
