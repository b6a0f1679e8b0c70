//! The content scanner: a cheap summary pass over each value decides which
//! detectors can possibly match, and only those run their exact checks.

use memchr::memmem;
use regex::bytes::Regex;

use super::detect::{Builtin, DetectorId, DetectorSet, Span};
use super::numeric::scan_numeric_range;
use super::prefilter::{NUMERIC, for_each_candidate_run};
use super::token::{ANCHORED, Anchors, anchor_hint, scan_email};

/// A custom detector compiled from `[[masking.custom]]`.
#[derive(Clone, Debug)]
pub(crate) struct CustomDetector {
    pub(crate) id: DetectorId,
    pub(crate) regex: Regex,
    pub(crate) anchor: Option<memmem::Finder<'static>>,
}

/// What one vectorisable pass learns about a value.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    digits: usize,
    dots: usize,
    upper: bool,
    at: bool,
}

impl Summary {
    /// Counts in `u8` per 128-byte chunk so the inner loop stays in byte
    /// lanes (the compiler turns it into SIMD compares and adds).
    fn of(v: &[u8]) -> Summary {
        let mut sum = Summary::default();
        let (mut upper, mut at) = (0u8, 0u8);
        for chunk in v.chunks(128) {
            let (mut d, mut dots) = (0u8, 0u8);
            for &b in chunk {
                d += u8::from(b.wrapping_sub(b'0') < 10);
                dots += u8::from(b == b'.');
                upper |= u8::from(b.wrapping_sub(b'A') < 26);
                at |= u8::from(b == b'@');
            }
            sum.digits += usize::from(d);
            sum.dots += usize::from(dots);
        }
        sum.upper = upper != 0;
        sum.at = at != 0;
        sum
    }

    /// The numeric detectors whose minimum digit count this value reaches.
    fn numeric_candidates(self, enabled: DetectorSet) -> DetectorSet {
        let mut set = DetectorSet::EMPTY;
        let mut want = |b: Builtin, ok: bool| {
            if ok && enabled.has(b) {
                set.insert(b.id());
            }
        };
        want(Builtin::Card, self.digits >= 13);
        want(Builtin::UsSsn, self.digits >= 9);
        want(Builtin::Phone, self.digits >= 8);
        want(Builtin::Ipv4, self.digits >= 4 && self.dots >= 3);
        want(Builtin::Iban, self.digits >= 4 && self.upper);
        set
    }
}

/// Values shorter than this are summarised by one table-driven loop; longer
/// ones by the vectorised passes, which only pay off once the compiler's SIMD
/// body runs more than its scalar tail.
const SHORT_VALUE: usize = 64;

/// Bit layout of [`CLASS`]: which anchor triples a byte can start (bits
/// 0..8), continue (8..16) or end (16..24); flags; and count units so one
/// add per byte counts digits (bits 32..40) and dots (40..48). A value under
/// [`SHORT_VALUE`] bytes cannot overflow the 8-bit counts.
const SECOND_SHIFT: u32 = 8;
const THIRD_SHIFT: u32 = 16;
const UPPER: u64 = 1 << 24;
const AT: u64 = 1 << 25;
const DIGIT_UNIT: u64 = 1 << 32;
const DOT_UNIT: u64 = 1 << 40;

/// Byte-class triples, one per anchor family; every anchor contains one
/// (`AKI`, `ASI`, `AIz`; `ghp`.., `git`; `eyJ`; `---`; `Bea`/`bea`/`BEA`; `xox`).
/// Supersets (`AKz`) only cost a needless exact check.
const TRIPLES: [(&[u8], &[u8], &[u8]); 6] = [
    (b"A", b"KSI", b"Iz"),
    (b"g", b"hi", b"pousrt"),
    (b"e", b"y", b"J"),
    (b"-", b"-", b"-"),
    (b"Bb", b"eE", b"aA"),
    (b"x", b"o", b"x"),
];

const fn contains(set: &[u8], c: u8) -> bool {
    let mut k = 0;
    while k < set.len() {
        if set[k] == c {
            return true;
        }
        k += 1;
    }
    false
}

const CLASS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0u64;
        if c.is_ascii_digit() {
            bits |= DIGIT_UNIT;
        }
        if c == b'.' {
            bits |= DOT_UNIT;
        }
        if c.is_ascii_uppercase() {
            bits |= UPPER;
        }
        if c == b'@' {
            bits |= AT;
        }
        let mut p = 0;
        while p < TRIPLES.len() {
            let (first, second, third) = TRIPLES[p];
            if contains(first, c) {
                bits |= 1 << p;
            }
            if contains(second, c) {
                bits |= 1 << (p as u32 + SECOND_SHIFT);
            }
            if contains(third, c) {
                bits |= 1 << (p as u32 + THIRD_SHIFT);
            }
            p += 1;
        }
        t[b] = bits;
        b += 1;
    }
    t
};

/// Summary and anchor hint of a short value in one table-driven pass.
fn summarize_short(v: &[u8]) -> (Summary, bool) {
    let (mut p1, mut p2, mut hint, mut flags, mut counts) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for &b in v {
        let c = CLASS[usize::from(b)];
        hint |= p2 & (p1 >> SECOND_SHIFT) & (c >> THIRD_SHIFT);
        p2 = p1;
        p1 = c;
        flags |= c;
        counts += c & (DIGIT_UNIT | DOT_UNIT);
    }
    let sum = Summary {
        digits: ((counts >> 32) & 0xff) as usize,
        dots: ((counts >> 40) & 0xff) as usize,
        upper: flags & UPPER != 0,
        at: flags & AT != 0,
    };
    (sum, hint & 0xff != 0)
}

/// All detectors of one policy snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    anchors: Anchors,
    custom: Vec<CustomDetector>,
}

impl Scanner {
    pub(crate) fn new(custom: Vec<CustomDetector>) -> Result<Self, aho_corasick::BuildError> {
        Ok(Scanner {
            anchors: Anchors::new()?,
            custom,
        })
    }

    /// Replaces `spans` with every match of the `enabled` detectors in `v`,
    /// sorted by start (overlaps are left for the caller to merge).
    pub(crate) fn scan(&self, v: &[u8], enabled: DetectorSet, spans: &mut Vec<Span>) {
        spans.clear();
        if enabled.is_empty() || v.is_empty() {
            return;
        }
        let anchored = enabled.intersects(ANCHORED);
        let (sum, hint) = if v.len() < SHORT_VALUE {
            summarize_short(v)
        } else {
            (Summary::of(v), anchored && anchor_hint(v))
        };
        if sum.at && enabled.has(Builtin::Email) {
            scan_email(v, spans);
        }
        if anchored && hint {
            self.anchors.scan(v, enabled, spans);
        }
        let numeric = DetectorSet(enabled.0 & NUMERIC.0);
        if !numeric.is_empty() && (sum.digits >= 4) {
            for_each_candidate_run(v, numeric, sum.upper, |from, to| {
                scan_numeric_range(v, from, to, numeric, spans);
            });
        }
        for c in &self.custom {
            if !enabled.contains(c.id) || c.anchor.as_ref().is_some_and(|f| f.find(v).is_none()) {
                continue;
            }
            for m in c.regex.find_iter(v) {
                if !m.is_empty() {
                    spans.push(Span {
                        start: m.start(),
                        end: m.end(),
                        detector: c.id,
                    });
                }
            }
        }
        spans.sort_unstable_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    }
}

/// Merges overlapping spans in place; a merged span keeps the detector of the
/// one that starts first (the longest, on a tie), so its rule picks the style.
pub(crate) fn merge_overlaps(spans: &mut Vec<Span>) {
    let mut w = 0;
    for r in 0..spans.len() {
        if w > 0 && spans[r].start < spans[w - 1].end {
            spans[w - 1].end = spans[w - 1].end.max(spans[r].end);
        } else {
            spans[w] = spans[r];
            w += 1;
        }
    }
    spans.truncate(w);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn scanner() -> Scanner {
        let custom = CustomDetector {
            id: DetectorId(Builtin::COUNT as u8),
            regex: Regex::new("EMP-[0-9]{6}").unwrap(),
            anchor: Some(memmem::Finder::new(b"EMP-").into_owned()),
        };
        Scanner::new(vec![custom]).unwrap()
    }

    fn all() -> DetectorSet {
        DetectorSet(u64::MAX)
    }

    #[test]
    fn summary_counts_across_chunks() {
        let v = format!("{}@{}", "1.".repeat(200), "A");
        let s = Summary::of(v.as_bytes());
        assert_eq!((s.digits, s.dots, s.at, s.upper), (200, 200, true, true));
        let s = Summary::of(b"abc");
        assert_eq!((s.digits, s.at, s.upper), (0, false, false));
    }

    #[test]
    fn short_and_long_summaries_agree() {
        let samples: [&[u8]; 6] = [
            b"hello world",
            b"2024-03-15 10:23:45.123+00 a@b.io",
            b"550e8400-e29b-41d4-a716-446655440000",
            b"DE89 3704 0044 0532 0130 00",
            b"\xff\xfe1.2.3.4",
            b"",
        ];
        for v in samples {
            let (short, _) = summarize_short(v);
            let long = Summary::of(v);
            assert_eq!(
                (short.digits, short.dots, short.upper, short.at),
                (long.digits, long.dots, long.upper, long.at),
                "{v:?}"
            );
        }
    }

    #[test]
    fn short_hint_covers_every_anchor() {
        for (anchor, _) in super::super::token::ANCHORS {
            assert!(summarize_short(anchor.as_bytes()).1, "{anchor}");
            assert!(
                summarize_short(format!("x {anchor} y").as_bytes()).1,
                "{anchor}"
            );
        }
        assert!(!summarize_short(b"order shipped to customer 42").1);
        assert!(
            !summarize_short(b"550e8400-e29b-41d4-a716-4466beef0000").1,
            "hex `be`"
        );
    }

    #[test]
    fn mixed_value_finds_every_kind_in_order() {
        let v = b"mail a@b.io card 4111111111111111 key AKIAIOSFODNN7EXAMPLE emp EMP-123456";
        let mut spans = Vec::new();
        scanner().scan(v, all(), &mut spans);
        let ids: Vec<_> = spans.iter().map(|s| s.detector).collect();
        assert_eq!(
            ids,
            [
                Builtin::Email.id(),
                Builtin::Card.id(),
                Builtin::AwsAccessKey.id(),
                DetectorId(Builtin::COUNT as u8)
            ]
        );
    }

    #[test]
    fn disabled_detectors_stay_quiet() {
        let mut spans = Vec::new();
        let only_email = DetectorSet::of(&[Builtin::Email]);
        scanner().scan(b"4111111111111111 EMP-123456", only_email, &mut spans);
        assert!(spans.is_empty());
    }

    #[test]
    fn merge_keeps_first_detector() {
        let s = |start, end, d| Span {
            start,
            end,
            detector: DetectorId(d),
        };
        let mut spans = vec![s(0, 5, 1), s(3, 8, 2), s(10, 12, 3), s(11, 12, 4)];
        merge_overlaps(&mut spans);
        assert_eq!(spans, [s(0, 8, 1), s(10, 12, 3)]);
    }
}
