//! Digit-based detectors: payment cards, US SSNs, phone numbers, IPv4 and IBANs.
//!
//! One pass finds runs of ASCII digits. A run that starts a *chain* (see
//! [`is_chain_start`]) is parsed together with the runs that follow it through
//! single separators, and every detector looks for its shape inside that one
//! chain. A timestamp or a UUID therefore costs one short parse, not one parse
//! per detector, and a run that continues a chain (`:23` in `10:23`, `.5` in
//! `1.5`) is never a start of its own. The scanner only calls this on the
//! chainable runs where `prefilter.rs` found a candidate
//! ([`scan_numeric_range`]), so most timestamps and UUIDs never get here.

use super::detect::{Builtin, DetectorSet, Span, is_word};
use super::iban::{iban_at, iban_trigger};

/// Longest chain parsed at once; a longer one is cut and the rest restarts as
/// a new chain, which can only lose a match that straddles the cut.
const MAX_GROUPS: usize = 24;

/// What joins two digit groups of a chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Sep {
    #[default]
    None,
    Space,
    Dash,
    Dot,
    /// `)` or `) ` after an area code written as `(415)`.
    Close,
    /// ` (` before an area code, as in `+1 (415) 555-2671`.
    Open,
}

#[derive(Clone, Copy, Default, Debug)]
struct Group {
    start: usize,
    end: usize,
}

impl Group {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// Digit groups joined by separators. `seps[k]` joins group `k` to `k + 1`;
/// for the last group it is the separator that led to a group that could not
/// join (glued to a word), so boundary checks still see it.
struct Chain {
    groups: [Group; MAX_GROUPS],
    seps: [Sep; MAX_GROUPS],
    len: usize,
    digits: usize,
    /// The chain is written `+<digits>...`: an international phone number shape.
    plus: bool,
}

impl Chain {
    fn new() -> Self {
        Chain {
            groups: [Group::default(); MAX_GROUPS],
            seps: [Sep::None; MAX_GROUPS],
            len: 0,
            digits: 0,
            plus: false,
        }
    }

    fn sep_before(&self, i: usize) -> Sep {
        if i == 0 { Sep::None } else { self.seps[i - 1] }
    }

    fn sep_after(&self, i: usize) -> Sep {
        self.seps[i]
    }
}

/// High bit of each byte of `w` that is an ASCII digit (SWAR: eight bytes per
/// step with plain integer ops; `unsafe` SIMD is not allowed in this crate).
/// Bytes are masked to 7 bits first so the additions never carry across.
#[inline]
pub(crate) fn digit_mask(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let y = w & LOW7;
    let at_least_0 = y + 0x5050_5050_5050_5050;
    let above_9 = y + 0x4646_4646_4646_4646;
    at_least_0 & !above_9 & !w & HIGH
}

#[inline]
fn word_at(v: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = v.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// First digit at or after `i`.
fn next_digit(v: &[u8], mut i: usize) -> Option<usize> {
    while let Some(w) = word_at(v, i) {
        let m = digit_mask(w);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    v[i.min(v.len())..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|p| i + p)
}

/// End of the digit run that contains `i`.
fn digit_run_end(v: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(v, i) {
        let non_digit = !digit_mask(w) & 0x8080_8080_8080_8080;
        if non_digit != 0 {
            return i + (non_digit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn digit_at(v: &[u8], i: usize) -> bool {
    v.get(i).is_some_and(u8::is_ascii_digit)
}

/// The separator at `e` and where the next group starts, if a digit follows.
fn sep_at(v: &[u8], e: usize) -> Option<(Sep, usize)> {
    let (sep, next) = match *v.get(e)? {
        b' ' if v.get(e + 1) == Some(&b'(') => (Sep::Open, e + 2),
        b' ' => (Sep::Space, e + 1),
        b'-' => (Sep::Dash, e + 1),
        b'.' => (Sep::Dot, e + 1),
        b')' if v.get(e + 1) == Some(&b' ') => (Sep::Close, e + 2),
        b')' => (Sep::Close, e + 1),
        _ => return None,
    };
    digit_at(v, next).then_some((sep, next))
}

/// A digit run at `s` starts a chain unless it is glued to a word (`v1`, `a716`)
/// or continues digits through punctuation (`10:23`, `1.5`, `+05`, `2/3`).
/// Commas and tabs do start chains, so CSV and COPY fields are seen one by one.
fn is_chain_start(v: &[u8], s: usize) -> bool {
    if s == 0 {
        return true;
    }
    let p = v[s - 1];
    if is_word(p) {
        return false;
    }
    !(s >= 2 && v[s - 2].is_ascii_digit() && matches!(p, b'-' | b'.' | b':' | b'+' | b'/' | b')'))
}

/// Parses the chain starting at `start`; returns where scanning resumes.
fn parse_chain(v: &[u8], start: usize, chain: &mut Chain) -> usize {
    chain.len = 0;
    chain.digits = 0;
    let mut s = start;
    loop {
        let e = digit_run_end(v, s);
        if v.get(e).is_some_and(|&b| is_word(b)) {
            // Glued to a word (`4e2b`): this group cannot be part of a number.
            return e;
        }
        chain.groups[chain.len] = Group { start: s, end: e };
        chain.seps[chain.len] = Sep::None;
        chain.len += 1;
        chain.digits += e - s;
        let Some((sep, next)) = sep_at(v, e) else {
            return e;
        };
        chain.seps[chain.len - 1] = sep;
        if chain.len == MAX_GROUPS {
            return e;
        }
        s = next;
    }
}

/// Scans all of `v` for the numeric detectors in `enabled`, appending spans:
/// the reference the prefiltered scan is tested (and fuzzed) against.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn scan_numeric(v: &[u8], enabled: DetectorSet, spans: &mut Vec<Span>) {
    scan_numeric_range(v, 0, v.len(), enabled, spans);
}

/// Bytes that can lie inside a chain (digits and separators) or an IBAN
/// (capitals, digits, spaces). Every other byte is a *sync point*: no match
/// crosses it, and the scan's state after it does not depend on what came
/// before, so [`scan_numeric_range`] may start right after one.
#[inline]
pub(crate) fn chainable(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase() || matches!(b, b' ' | b'-' | b'.' | b')' | b'(')
}

/// The run of [`chainable`] bytes around `i`: `(from, to)` with `from` right
/// after a sync byte (or 0) and `to` at one (or the end).
pub(crate) fn chainable_run(v: &[u8], i: usize) -> (usize, usize) {
    let mut from = i.min(v.len());
    while from > 0 && chainable(v[from - 1]) {
        from -= 1;
    }
    let mut to = i.min(v.len());
    while to < v.len() && chainable(v[to]) {
        to += 1;
    }
    (from, to)
}

/// [`scan_numeric`] restricted to matches that start in `from..to`, where
/// `from` and `to` are sync points (see [`chainable`]): the spans found are
/// exactly those a scan of the whole value finds there. Reading before `from`
/// and after `to` is allowed (boundary checks look at neighbours).
pub(crate) fn scan_numeric_range(
    v: &[u8],
    from: usize,
    to: usize,
    enabled: DetectorSet,
    spans: &mut Vec<Span>,
) {
    let chained = enabled.intersects(DetectorSet::of(&[
        Builtin::Card,
        Builtin::UsSsn,
        Builtin::Phone,
        Builtin::Ipv4,
    ]));
    let iban = enabled.has(Builtin::Iban);
    // Built on the first chain start: most values never have one.
    let mut chain: Option<Chain> = None;
    let mut pos = from;
    while let Some(s) = next_digit(v, pos) {
        if s >= to {
            break;
        }
        if iban
            && iban_trigger(v, s)
            && let Some(end) = iban_at(v, s - 2)
        {
            {
                spans.push(span(s - 2, end, Builtin::Iban));
                pos = end;
                continue;
            }
        }
        if chained && is_chain_start(v, s) {
            let chain = chain.get_or_insert_with(Chain::new);
            let end = parse_chain(v, s, chain);
            chain.plus = s >= 1 && v[s - 1] == b'+' && (s < 2 || !is_word(v[s - 2]));
            if chain.len > 0 {
                detect_in_chain(v, chain, enabled, spans);
            }
            pos = end.max(s + 1);
            continue;
        }
        pos = digit_run_end(v, s);
    }
}

fn span(start: usize, end: usize, b: Builtin) -> Span {
    Span {
        start,
        end,
        detector: b.id(),
    }
}

fn detect_in_chain(v: &[u8], c: &Chain, enabled: DetectorSet, spans: &mut Vec<Span>) {
    if enabled.has(Builtin::Card) && c.digits >= 13 {
        find_cards(v, c, spans);
    }
    if enabled.has(Builtin::UsSsn) && c.len >= 3 {
        find_ssns(v, c, spans);
    }
    if enabled.has(Builtin::Phone) && c.digits >= 8 {
        find_phones(v, c, spans);
    }
    if enabled.has(Builtin::Ipv4) && c.len >= 4 {
        find_ipv4s(v, c, spans);
    }
}

// ---- payment cards -------------------------------------------------------

fn find_cards(v: &[u8], c: &Chain, spans: &mut Vec<Span>) {
    let mut i = 0;
    while i < c.len {
        match card_at(v, c, i) {
            Some(j) => {
                spans.push(span(c.groups[i].start, c.groups[j].end, Builtin::Card));
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

/// A card starting at group `i`: one bare group of 13–19 digits, or groups
/// joined by one kind of separator (space or dash) whose first group has four
/// digits (every issuer's printed grouping does). The longest valid wins.
fn card_at(v: &[u8], c: &Chain, i: usize) -> Option<usize> {
    let g = c.groups[i];
    if (13..=19).contains(&g.len()) {
        return card_digits_ok(v, &c.groups[i..=i]).then_some(i);
    }
    let sep = c.sep_after(i);
    if g.len() != 4 || !matches!(sep, Sep::Space | Sep::Dash) {
        return None;
    }
    let mut total = 4;
    let mut best = None;
    let mut j = i;
    while j + 1 < c.len && c.seps[j] == sep {
        let next = c.groups[j + 1];
        if next.len() > 6 {
            break;
        }
        total += next.len();
        if total > 19 {
            break;
        }
        j += 1;
        if total >= 13 && card_digits_ok(v, &c.groups[i..=j]) {
            best = Some(j);
        }
    }
    best
}

fn card_digits_ok(v: &[u8], groups: &[Group]) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0;
    for g in groups {
        for &b in &v[g.start..g.end] {
            if n == digits.len() {
                return false;
            }
            digits[n] = b - b'0';
            n += 1;
        }
    }
    let d = &digits[..n];
    (13..=19).contains(&n) && plausible_iin(d) && luhn_ok(d)
}

/// Luhn checksum over decimal digit values (0..=9).
pub(crate) fn luhn_ok(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &x) in d.iter().rev().enumerate() {
        let mut x = u32::from(x);
        if k % 2 == 1 {
            x *= 2;
            if x > 9 {
                x -= 9;
            }
        }
        sum += x;
    }
    sum.is_multiple_of(10)
}

/// Issuer prefixes and lengths of the networks in wide use (Visa, Mastercard,
/// Amex, Discover, JCB, Diners, UnionPay, Maestro). Rejects numbers starting
/// 0, 1, 7, 8, 9 — which takes out millisecond timestamps and most order ids.
fn plausible_iin(d: &[u8]) -> bool {
    let n = d.len();
    let p2 = u32::from(d[0]) * 10 + u32::from(d[1]);
    let p3 = p2 * 10 + u32::from(d[2]);
    let p4 = p3 * 10 + u32::from(d[3]);
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        3 => {
            (matches!(p2, 34 | 37) && n == 15)
                || ((3528..=3589).contains(&p4) && n >= 16)
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && n >= 14)
        }
        5 => ((51..=55).contains(&p2) && n == 16) || matches!(p2, 50 | 56..=58),
        2 => (2221..=2720).contains(&p4) && n == 16,
        6 => n >= 16 || matches!(p2, 63 | 67),
        _ => false,
    }
}

// ---- US SSN --------------------------------------------------------------

/// `AAA-GG-SSSS` (or with spaces). Bare nine-digit numbers are not matched:
/// any nine-digit integer would be, so name such columns with a column rule.
fn find_ssns(v: &[u8], c: &Chain, spans: &mut Vec<Span>) {
    for i in 0..c.len.saturating_sub(2) {
        let (a, g, s) = (c.groups[i], c.groups[i + 1], c.groups[i + 2]);
        if a.len() != 3 || g.len() != 2 || s.len() != 4 {
            continue;
        }
        let sep = c.seps[i];
        if !matches!(sep, Sep::Dash | Sep::Space) || c.seps[i + 1] != sep {
            continue;
        }
        if c.sep_before(i) == sep || c.sep_after(i + 2) == sep {
            continue;
        }
        if ssn_valid(&v[a.start..a.end], &v[g.start..g.end], &v[s.start..s.end]) {
            spans.push(span(a.start, s.end, Builtin::UsSsn));
        }
    }
}

/// SSA rules: area 000, 666 and 900–999, group 00 and serial 0000 are never
/// issued; 078-05-1120 and 219-09-9999 were published as samples and voided.
fn ssn_valid(area: &[u8], group: &[u8], serial: &[u8]) -> bool {
    if area == b"000" || area == b"666" || area[0] == b'9' || group == b"00" || serial == b"0000" {
        return false;
    }
    !matches!(
        (area, group, serial),
        (b"078", b"05", b"1120") | (b"219", b"09", b"9999")
    )
}

// ---- phone numbers -------------------------------------------------------

fn find_phones(v: &[u8], c: &Chain, spans: &mut Vec<Span>) {
    let mut i = 0;
    if c.plus
        && let Some(j) = e164(v, c)
    {
        {
            spans.push(span(c.groups[0].start - 1, c.groups[j].end, Builtin::Phone));
            i = j + 1;
        }
    }
    while i < c.len {
        if let Some((start, j)) = nanp_at(v, c, i).or_else(|| trunk_at(v, c, i)) {
            spans.push(span(start, c.groups[j].end, Builtin::Phone));
            i = j + 1;
        } else {
            i += 1;
        }
    }
}

/// `+` and 8–15 digits (E.164 allows at most 15), country code not 0. The
/// number ends at the last group that keeps it within 15 digits; if digits
/// then continue through anything but a space, it is not a phone number.
fn e164(v: &[u8], c: &Chain) -> Option<usize> {
    if v[c.groups[0].start] == b'0' {
        return None;
    }
    let mut total = 0;
    let mut last = None;
    for (j, g) in c.groups[..c.len].iter().enumerate() {
        if total + g.len() > 15 {
            break;
        }
        total += g.len();
        last = Some(j);
    }
    let j = last?;
    if total < 8 || (j + 1 < c.len && c.seps[j] != Sep::Space) {
        return None;
    }
    Some(j)
}

/// North American `(415) 555-2671`, `415-555-2671`, `415.555.2671`,
/// `415 555 2671`, optionally after a `1` trunk code. Area code and exchange
/// start with 2–9 (NANP), which also rules out `123-456-7890` placeholders.
fn nanp_at(v: &[u8], c: &Chain, i: usize) -> Option<(usize, usize)> {
    if i + 2 >= c.len {
        return None;
    }
    let (a, x, l) = (c.groups[i], c.groups[i + 1], c.groups[i + 2]);
    if a.len() != 3 || x.len() != 3 || l.len() != 4 || v[a.start] < b'2' || v[x.start] < b'2' {
        return None;
    }
    let (s1, s2) = (c.seps[i], c.seps[i + 1]);
    let paren = s1 == Sep::Close && a.start >= 1 && v[a.start - 1] == b'(';
    let ok = if paren {
        matches!(s2, Sep::Space | Sep::Dash | Sep::Dot)
    } else {
        matches!(s1, Sep::Space | Sep::Dash | Sep::Dot) && s2 == s1
    };
    if !ok || matches!(c.sep_after(i + 2), Sep::Dash | Sep::Dot) {
        return None;
    }
    let mut start = if paren { a.start - 1 } else { a.start };
    let before = c.sep_before(i);
    let trunk_one = i >= 1 && &v[c.groups[i - 1].start..c.groups[i - 1].end] == b"1";
    if trunk_one && (before == s1 || (paren && before == Sep::Open)) {
        start = c.groups[i - 1].start;
    } else if !paren && before == s1 && before != Sep::Space {
        return None;
    }
    Some((start, i + 2))
}

/// National numbers with a `0` trunk prefix, written with spaces:
/// `020 7946 0958`, `030 12345678`, `(020) 7946 0958`, or the French
/// `01 23 45 67 89` (also with dots). Dashes are left out: `01-2024-0001`
/// is far more often an invoice number than a phone.
fn trunk_at(v: &[u8], c: &Chain, i: usize) -> Option<(usize, usize)> {
    let g0 = c.groups[i];
    if !(2..=5).contains(&g0.len()) || v[g0.start] != b'0' || v[g0.start + 1] == b'0' {
        return None;
    }
    if i > 0 && c.sep_before(i) != Sep::Space {
        return None;
    }
    let paren = c.seps[i] == Sep::Close && g0.start >= 1 && v[g0.start - 1] == b'(';
    let start = if paren { g0.start - 1 } else { g0.start };
    // French: five pairs joined by one kind of separator.
    if !paren && g0.len() == 2 && i + 4 < c.len {
        let sep = c.seps[i];
        let pairs = (i..i + 4).all(|k| c.seps[k] == sep && c.groups[k + 1].len() == 2);
        if matches!(sep, Sep::Space | Sep::Dot) && pairs && c.sep_after(i + 4) != sep {
            return Some((start, i + 4));
        }
    }
    let mut total = g0.len();
    let mut j = i;
    while j + 1 < c.len {
        let joined = if j == i && paren {
            Sep::Close
        } else {
            Sep::Space
        };
        let next = c.groups[j + 1];
        if c.seps[j] != joined || !(3..=8).contains(&next.len()) {
            break;
        }
        total += next.len();
        j += 1;
        if total > 11 {
            return None;
        }
    }
    (j > i && total >= 10 && !matches!(c.sep_after(j), Sep::Dash | Sep::Dot)).then_some((start, j))
}

// ---- IPv4 ----------------------------------------------------------------

/// Four dotted octets 0–255 without leading zeros, not inside a longer dotted
/// run (`1.2.3.4.5`) and not glued to a word (`v10.0.0.1`).
fn find_ipv4s(v: &[u8], c: &Chain, spans: &mut Vec<Span>) {
    for i in 0..c.len.saturating_sub(3) {
        if c.seps[i..i + 3].iter().any(|&s| s != Sep::Dot) {
            continue;
        }
        if c.sep_before(i) == Sep::Dot || c.sep_after(i + 3) == Sep::Dot {
            continue;
        }
        if i == 0 && c.groups[0].start >= 1 && v[c.groups[0].start - 1] == b'.' {
            continue;
        }
        if c.groups[i..i + 4]
            .iter()
            .all(|g| octet_ok(&v[g.start..g.end]))
        {
            spans.push(span(c.groups[i].start, c.groups[i + 3].end, Builtin::Ipv4));
        }
    }
}

fn octet_ok(d: &[u8]) -> bool {
    match d.len() {
        1 => true,
        2 | 3 if d[0] != b'0' => d.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 255,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn found(v: &str, b: Builtin) -> Vec<&str> {
        let mut spans = Vec::new();
        scan_numeric(v.as_bytes(), DetectorSet::of(&[b]), &mut spans);
        spans
            .iter()
            .filter(|s| s.detector == b.id())
            .map(|s| &v[s.start..s.end])
            .collect()
    }

    #[test]
    fn swar_digit_scanning_matches_bytewise() {
        let v: Vec<u8> = (0..=255u8)
            .chain(b"0123456789abc9".iter().copied())
            .collect();
        for i in 0..v.len() {
            assert_eq!(
                next_digit(&v, i),
                v[i..].iter().position(u8::is_ascii_digit).map(|p| p + i)
            );
            let mut e = i;
            while e < v.len() && v[e].is_ascii_digit() {
                e += 1;
            }
            assert_eq!(digit_run_end(&v, i), e, "at {i}");
        }
    }

    #[test]
    fn luhn_known_values() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        assert!(luhn_ok(&d("4111111111111111")));
        assert!(luhn_ok(&d("79927398713")));
        assert!(!luhn_ok(&d("4111111111111112")));
        assert!(!luhn_ok(&d("79927398710")));
    }

    #[test]
    fn cards_with_and_without_separators() {
        assert_eq!(
            found("pay 4111 1111 1111 1111 now", Builtin::Card),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            found("4111-1111-1111-1111", Builtin::Card),
            ["4111-1111-1111-1111"]
        );
        assert_eq!(
            found("amex 3782 822463 10005", Builtin::Card),
            ["3782 822463 10005"]
        );
        assert_eq!(
            found("4111111111111111 5500000000000004", Builtin::Card),
            ["4111111111111111", "5500000000000004"]
        );
        assert!(found("4111111111111112", Builtin::Card).is_empty());
        assert!(
            found("1700000000000000", Builtin::Card).is_empty(),
            "bad IIN"
        );
        assert!(
            found("x4111111111111111", Builtin::Card).is_empty(),
            "glued"
        );
        assert!(
            found("4111 1111-1111 1111", Builtin::Card).is_empty(),
            "mixed separators"
        );
    }

    #[test]
    fn ssn_ranges() {
        assert_eq!(found("ssn 123-45-6789.", Builtin::UsSsn), ["123-45-6789"]);
        assert_eq!(found("123 45 6789", Builtin::UsSsn), ["123 45 6789"]);
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(found(bad, Builtin::UsSsn).is_empty(), "{bad}");
        }
        assert!(found("123456789", Builtin::UsSsn).is_empty());
        assert!(found("1-123-45-6789", Builtin::UsSsn).is_empty());
        assert!(found("123-45-6789-1", Builtin::UsSsn).is_empty());
    }

    #[test]
    fn phones() {
        assert_eq!(
            found("call +1 415 555 2671", Builtin::Phone),
            ["+1 415 555 2671"]
        );
        assert_eq!(found("+4915112345678", Builtin::Phone), ["+4915112345678"]);
        assert_eq!(found("(415) 555-2671", Builtin::Phone), ["(415) 555-2671"]);
        assert_eq!(found("1-800-555-0199", Builtin::Phone), ["1-800-555-0199"]);
        assert_eq!(
            found("+1 (415) 555-2671", Builtin::Phone),
            ["+1 (415) 555-2671"]
        );
        assert_eq!(found("020 7946 0958", Builtin::Phone), ["020 7946 0958"]);
        assert_eq!(found("01 23 45 67 89", Builtin::Phone), ["01 23 45 67 89"]);
        for bad in [
            "2024-01-15 10:23:45",
            "4155552671",
            "123-456-7890",
            "1.2.3.4",
            "+05:30",
            "20240115",
        ] {
            assert!(found(bad, Builtin::Phone).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ipv4() {
        assert_eq!(found("from 10.0.0.1:5432", Builtin::Ipv4), ["10.0.0.1"]);
        assert_eq!(
            found("192.168.1.1 and 8.8.8.8.", Builtin::Ipv4),
            ["192.168.1.1", "8.8.8.8"]
        );
        for bad in [
            "1.2.3.4.5",
            "v10.0.0.1",
            "256.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "a.1.2.3.4",
        ] {
            assert!(found(bad, Builtin::Ipv4).is_empty(), "{bad}");
        }
    }

    #[test]
    fn timestamps_and_uuids_find_nothing() {
        let all = DetectorSet::of(&Builtin::ALL);
        for v in [
            "2024-03-15 10:23:45.123456+00",
            "550e8400-e29b-41d4-a716-446655440000",
            "1700000000123",
            "3.14159265358979",
        ] {
            let mut spans = Vec::new();
            scan_numeric(v.as_bytes(), all, &mut spans);
            assert!(spans.is_empty(), "{v}: {spans:?}");
        }
    }
}
