//! The content scanner: one prefilter pass over each value decides which
//! detectors can possibly match, and where, and only those run their exact
//! checks.

use memchr::memmem;
use regex::bytes::Regex;

use super::detect::{Builtin, DetectorId, DetectorSet, Span};
use super::numeric::scan_numeric_range;
use super::prefilter::{NUMERIC, prefilter, seen, seen_long};
use super::token::{ANCHORED, Anchors, anchor_hint, scan_email};

/// A custom detector compiled from `[[masking.custom]]`.
#[derive(Clone, Debug)]
pub(crate) struct CustomDetector {
    pub(crate) id: DetectorId,
    pub(crate) regex: Regex,
    pub(crate) anchor: Option<memmem::Finder<'static>>,
}

/// Values longer than this go to the anchor automaton without the hint.
const LONG: usize = 1024;

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
        let seen = if v.len() > LONG {
            seen_long(v)
        } else {
            seen(v)
        };
        if seen.at && enabled.has(Builtin::Email) {
            scan_email(v, spans);
        }
        // The anchor flag is coarse (any capital sets it); on short values the
        // triple hint keeps the automaton off most such values, on long ones
        // the automaton's own vectorised prefilter is faster than the hint.
        if seen.anchor && enabled.intersects(ANCHORED) && (v.len() > LONG || anchor_hint(v)) {
            self.anchors.scan(v, enabled, spans);
        }
        let numeric = DetectorSet(enabled.0 & NUMERIC.0);
        if seen.digit && !numeric.is_empty() {
            prefilter(v, numeric, seen.upper, |from, to| {
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

/// Fuzzing entry point (`fuzz/fuzz_targets/mask_scan.rs`): the prefiltered scan of `v` must
/// find exactly what every detector finds run unfiltered over the whole value, as the
/// `prefiltered_scan_equals_unfiltered_detectors` test checks on generated values.
/// Panics, with the value, on any difference.
#[cfg(feature = "fuzzing")]
pub fn check_scan_against_unfiltered(v: &[u8]) {
    use super::numeric::scan_numeric;
    thread_local! {
        static SCANNER: Option<Scanner> = Regex::new("EMP-[0-9]{6}").ok().and_then(|regex| {
            Scanner::new(vec![CustomDetector {
                id: DetectorId(Builtin::COUNT as u8),
                regex,
                anchor: Some(memmem::Finder::new(b"EMP-").into_owned()),
            }])
            .ok()
        });
    }
    SCANNER.with(|s| {
        let Some(s) = s else {
            panic!("the fuzzing scanner did not build");
        };
        let all = DetectorSet(u64::MAX);
        let (mut got, mut want) = (Vec::new(), Vec::new());
        s.scan(v, all, &mut got);
        if !v.is_empty() {
            scan_email(v, &mut want);
            s.anchors.scan(v, all, &mut want);
            scan_numeric(v, DetectorSet(NUMERIC.0), &mut want);
            for c in &s.custom {
                want.extend(
                    c.regex
                        .find_iter(v)
                        .filter(|m| !m.is_empty())
                        .map(|m| Span {
                            start: m.start(),
                            end: m.end(),
                            detector: c.id,
                        }),
                );
            }
        }
        let key = |s: &Span| (s.start, s.end, s.detector);
        got.sort_unstable_by_key(key);
        want.sort_unstable_by_key(key);
        assert_eq!(
            got,
            want,
            "prefiltered scan differs on {:?}",
            String::from_utf8_lossy(v)
        );
    });
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

    /// The prefiltered scan finds exactly what every detector finds when run
    /// over the whole value, short and long, at any alignment.
    #[test]
    fn prefiltered_scan_equals_unfiltered_detectors() {
        use super::super::numeric::scan_numeric;
        const PIECES: &[&str] = &[
            " ",
            "-",
            ".",
            "+",
            "(",
            ")",
            "\t",
            "z",
            "go",
            "be",
            "ax",
            "o",
            "@",
            "a@b.io ",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "gh",
            "xoxb-",
            "1234567890",
            "Bearer ",
            "bearer abc123def456ghi789 ",
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJzdWIiOiIxIn0.c2ln",
            "-----BEGIN PRIVATE KEY-----",
            "4111 1111 1111 1111",
            "123-45-6789",
            "+1 415 555 2671",
            "10.0.0.1",
            "DE89370400440532013000",
            "EMP-",
            "123456",
            "2024-03-15 10:23:45+00",
            "550e8400-e29b-41d4",
            "AIza",
            "x",
        ];
        let s = scanner();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let mut hits = 0;
        for _ in 0..20_000 {
            let mut v = String::new();
            // Some values past `LONG`, for the long-value flag pass.
            let pieces = if next() % 16 == 0 {
                150
            } else {
                1 + next() % 40
            };
            for _ in 0..pieces {
                v.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let b = v.as_bytes();
            s.scan(b, all(), &mut got);
            want.clear();
            scan_email(b, &mut want);
            s.anchors.scan(b, all(), &mut want);
            scan_numeric(b, DetectorSet(NUMERIC.0), &mut want);
            for m in s.custom[0].regex.find_iter(b) {
                want.push(Span {
                    start: m.start(),
                    end: m.end(),
                    detector: s.custom[0].id,
                });
            }
            let key = |s: &Span| (s.start, s.end, s.detector);
            got.sort_unstable_by_key(key);
            want.sort_unstable_by_key(key);
            assert_eq!(got, want, "{v:?}");
            hits += got.len();
        }
        assert!(hits > 10_000, "the generator must produce matches: {hits}");
    }
}
