//! The content scanner: one prefilter pass over each value decides which
//! detectors can possibly match, and where, and only those run their exact
//! checks.

use memchr::memmem;
use regex::bytes::Regex;

use super::detect::{Builtin, DetectorId, DetectorSet, Span};
use super::numeric::scan_numeric_range;
use super::prefilter::{NUMERIC, prefilter};
use super::token::{ANCHORED, Anchors, anchor_hint, scan_email};

/// A custom detector compiled from `[[masking.custom]]`.
#[derive(Clone, Debug)]
pub(crate) struct CustomDetector {
    pub(crate) id: DetectorId,
    pub(crate) regex: Regex,
    pub(crate) anchor: Option<memmem::Finder<'static>>,
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
        let numeric = DetectorSet(enabled.0 & NUMERIC.0);
        let seen = prefilter(v, numeric, |from, to| {
            scan_numeric_range(v, from, to, numeric, spans);
        });
        if seen.at && enabled.has(Builtin::Email) {
            scan_email(v, spans);
        }
        // The pass's anchor flag is coarse (any capital sets it); the triple
        // hint is exact enough to keep the automaton off most such values.
        if seen.anchor && enabled.intersects(ANCHORED) && anchor_hint(v) {
            self.anchors.scan(v, enabled, spans);
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
