//! JSON Pointer globs (`json_paths` of a masking rule): RFC 6901 pointers
//! whose segments may be globs, `*` standing for any one segment and `**`
//! for any number of them (none included). `/users/*/ssn` masks the `ssn`
//! of every element of `users`; `/**/password` every `password` anywhere;
//! `/data/card_*` the matching keys of `data`. An array element's segment
//! is its index in decimal, so `/items/0/secret` and `/items/*/secret`
//! both work. Segments compare byte for byte with the decoded key (JSON
//! keys are case-sensitive, unlike column names); `~1` is `/` and `~0` is
//! `~` in a segment, as RFC 6901 writes them.
//!
//! Matching runs as a small NFA per pointer: a document walker keeps, per
//! nesting level, the set of pointer positions reached so far (one `u64`
//! per pointer), so deciding a key costs one step per pointer, whatever
//! the depth and however many `**` a pointer has.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Most segments in one pointer (the state set is a `u64`).
pub const MAX_SEGMENTS: usize = 32;
/// Longest pointer text.
pub const MAX_POINTER_LEN: usize = 512;

/// Why a pointer was refused.
#[derive(Debug, thiserror::Error)]
pub enum PointerError {
    #[error("must start with `/` (RFC 6901; the document itself cannot be named)")]
    NoLeadingSlash,
    #[error("{len} bytes, at most {MAX_POINTER_LEN}")]
    TooLong { len: usize },
    #[error("{count} segments, at most {MAX_SEGMENTS}")]
    TooManySegments { count: usize },
    #[error("`~` must be followed by `0` or `1` (RFC 6901 escapes)")]
    BadEscape,
    #[error("segment {segment:?}: {source}")]
    BadGlob {
        segment: String,
        source: globset::Error,
    },
}

#[derive(Debug)]
enum Seg {
    Exact(Box<[u8]>),
    Glob(globset::GlobMatcher),
    /// `*`: any one segment.
    One,
    /// `**`: any number of segments.
    Deep,
}

impl Seg {
    fn matches(&self, segment: &[u8]) -> bool {
        match self {
            Seg::Exact(e) => **e == *segment,
            Seg::Glob(g) => g.is_match(Path::new(OsStr::from_bytes(segment))),
            Seg::One => true,
            Seg::Deep => false,
        }
    }
}

/// One compiled pointer glob.
#[derive(Debug)]
pub struct Pointer {
    segs: Vec<Seg>,
}

impl Pointer {
    pub fn parse(text: &str) -> Result<Pointer, PointerError> {
        if text.len() > MAX_POINTER_LEN {
            return Err(PointerError::TooLong { len: text.len() });
        }
        let rest = text.strip_prefix('/').ok_or(PointerError::NoLeadingSlash)?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() > MAX_SEGMENTS {
            return Err(PointerError::TooManySegments { count: parts.len() });
        }
        let segs = parts
            .into_iter()
            .map(segment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pointer { segs })
    }

    /// The states before any segment.
    fn start(&self) -> u64 {
        self.closure(1)
    }

    /// Adds the positions reachable by letting a `**` match nothing.
    fn closure(&self, mut states: u64) -> u64 {
        for (i, s) in self.segs.iter().enumerate() {
            if matches!(s, Seg::Deep) && states & (1 << i) != 0 {
                states |= 1 << (i + 1);
            }
        }
        states
    }

    /// The states after one more segment.
    fn step(&self, states: u64, segment: &[u8]) -> u64 {
        if states == 0 {
            return 0;
        }
        let mut next = 0u64;
        for (i, s) in self.segs.iter().enumerate() {
            if states & (1 << i) == 0 {
                continue;
            }
            match s {
                Seg::Deep => next |= 1 << i,
                s if s.matches(segment) => next |= 1 << (i + 1),
                _ => {}
            }
        }
        self.closure(next)
    }

    fn accepts(&self, states: u64) -> bool {
        states & (1 << self.segs.len()) != 0
    }
}

/// One segment's text, unescaped, compiled.
fn segment(raw: &str) -> Result<Seg, PointerError> {
    match raw {
        "*" => return Ok(Seg::One),
        "**" => return Ok(Seg::Deep),
        _ => {}
    }
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => text.push('~'),
                Some('1') => text.push('/'),
                _ => return Err(PointerError::BadEscape),
            }
        } else {
            text.push(c);
        }
    }
    if !raw.contains(['*', '?', '[', '{']) {
        return Ok(Seg::Exact(text.into_bytes().into()));
    }
    let glob = globset::GlobBuilder::new(&text)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|source| PointerError::BadGlob {
            segment: raw.to_owned(),
            source,
        })?;
    Ok(Seg::Glob(glob.compile_matcher()))
}

/// Every rule's pointers, compiled.
#[derive(Debug, Default)]
pub struct PointerSet {
    pointers: Vec<Pointer>,
    /// Rule index of each pointer.
    rule: Vec<u8>,
}

impl PointerSet {
    pub fn push(&mut self, rule: u8, p: Pointer) {
        self.pointers.push(p);
        self.rule.push(rule);
    }

    /// Rule indices, one per pointer.
    pub fn rules(&self) -> &[u8] {
        &self.rule
    }
}

/// A walker's position in a document for every pointer: one frame of
/// states per open level. Reuse one; it allocates only when it grows.
#[derive(Clone, Debug, Default)]
pub struct PointerWalk {
    /// `n` states per level, the innermost last.
    states: Vec<u64>,
    n: usize,
}

impl PointerWalk {
    /// Starts at a document's root.
    pub fn reset(&mut self, set: &PointerSet) {
        self.n = set.pointers.len();
        self.states.clear();
        self.states.extend(set.pointers.iter().map(Pointer::start));
    }

    /// Enters the member or element named `segment` of the innermost
    /// level; `applies(rule)` says whether a rule masks for this caller.
    /// Returns the first (lowest) applying rule whose pointer names it.
    pub fn enter(
        &mut self,
        set: &PointerSet,
        segment: &[u8],
        applies: impl Fn(u8) -> bool,
    ) -> Option<u8> {
        let base = self.states.len() - self.n;
        let mut best: Option<u8> = None;
        for (j, p) in set.pointers.iter().enumerate() {
            let next = p.step(self.states[base + j], segment);
            self.states.push(next);
            let rule = set.rule[j];
            if p.accepts(next) && applies(rule) && best.is_none_or(|b| rule < b) {
                best = Some(rule);
            }
        }
        best
    }

    /// Leaves the level [`PointerWalk::enter`] opened.
    pub fn leave(&mut self) {
        let keep = self.states.len().saturating_sub(self.n);
        self.states.truncate(keep);
    }
}

/// The first applying rule naming `path` (its segments from the root),
/// computed from scratch: the oracle for [`PointerWalk`].
#[cfg(test)]
pub fn rule_for_path(set: &PointerSet, path: &[&[u8]], applies: impl Fn(u8) -> bool) -> Option<u8> {
    set.pointers
        .iter()
        .zip(&set.rule)
        .filter(|(p, r)| applies(**r) && matches_path(p, path))
        .map(|(_, r)| *r)
        .min()
}

/// Backtracking match of one pointer against a whole path.
#[cfg(test)]
fn matches_path(p: &Pointer, path: &[&[u8]]) -> bool {
    fn go(segs: &[Seg], path: &[&[u8]]) -> bool {
        match segs.split_first() {
            None => path.is_empty(),
            Some((Seg::Deep, rest)) => (0..=path.len()).any(|k| go(rest, &path[k..])),
            Some((s, rest)) => path
                .split_first()
                .is_some_and(|(first, tail)| s.matches(first) && go(rest, tail)),
        }
    }
    go(&p.segs, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(pointers: &[&str]) -> PointerSet {
        let mut s = PointerSet::default();
        for (i, p) in pointers.iter().enumerate() {
            s.push(i as u8, Pointer::parse(p).unwrap());
        }
        s
    }

    fn walk(s: &PointerSet, path: &[&str]) -> Option<u8> {
        let mut w = PointerWalk::default();
        w.reset(s);
        let mut last = None;
        for seg in path {
            last = w.enter(s, seg.as_bytes(), |_| true);
        }
        last
    }

    #[test]
    fn segments_globs_and_deep_wildcards() {
        let s = set(&["/users/*/ssn", "/**/password", "/data/card_*", "/a~1b/~0x"]);
        assert_eq!(walk(&s, &["users", "3", "ssn"]), Some(0));
        assert_eq!(walk(&s, &["users", "ssn"]), None);
        assert_eq!(walk(&s, &["users", "3", "x", "ssn"]), None);
        assert_eq!(walk(&s, &["password"]), Some(1));
        assert_eq!(walk(&s, &["a", "b", "c", "password"]), Some(1));
        assert_eq!(walk(&s, &["Password"]), None, "keys are case-sensitive");
        assert_eq!(walk(&s, &["data", "card_no"]), Some(2));
        assert_eq!(walk(&s, &["data", "x", "card_no"]), None);
        assert_eq!(walk(&s, &["a/b", "~x"]), Some(3));
        assert_eq!(walk(&s, &["users", "1", "password"]), Some(1));
    }

    #[test]
    fn a_deep_wildcard_in_the_middle_and_at_the_end() {
        let s = set(&["/a/**/z", "/keep/**"]);
        assert_eq!(walk(&s, &["a", "z"]), Some(0));
        assert_eq!(walk(&s, &["a", "b", "c", "z"]), Some(0));
        assert_eq!(walk(&s, &["a", "z", "y"]), None);
        assert_eq!(walk(&s, &["keep"]), Some(1), "`**` matches nothing too");
        assert_eq!(walk(&s, &["keep", "x", "y"]), Some(1));
    }

    #[test]
    fn the_lowest_applying_rule_wins() {
        let s = set(&["/**/x", "/a/x"]);
        let mut w = PointerWalk::default();
        w.reset(&s);
        w.enter(&s, b"a", |_| true);
        assert_eq!(w.enter(&s, b"x", |r| r != 0), Some(1));
        w.leave();
        assert_eq!(w.enter(&s, b"x", |_| true), Some(0));
    }

    #[test]
    fn bad_pointers_are_refused() {
        assert!(matches!(
            Pointer::parse("a/b"),
            Err(PointerError::NoLeadingSlash)
        ));
        assert!(matches!(
            Pointer::parse(""),
            Err(PointerError::NoLeadingSlash)
        ));
        assert!(matches!(
            Pointer::parse("/a~2"),
            Err(PointerError::BadEscape)
        ));
        assert!(matches!(
            Pointer::parse("/a[b"),
            Err(PointerError::BadGlob { .. })
        ));
        let long = "/x".repeat(MAX_SEGMENTS + 1);
        assert!(matches!(
            Pointer::parse(&long),
            Err(PointerError::TooManySegments { .. })
        ));
        assert!(Pointer::parse(&"/x".repeat(MAX_SEGMENTS)).is_ok());
    }

    /// The incremental walk agrees with a backtracking match from the root
    /// on every path over a small alphabet, for pointers with several `**`.
    #[test]
    fn the_walk_agrees_with_backtracking() {
        let s = set(&["/**/a/**/b", "/*/a/**", "/a/*/*", "/**/**/c", "/b*/**/a?"]);
        let alphabet: [&[u8]; 5] = [b"a", b"b", b"c", b"ab", b"ba"];
        let mut path: Vec<&[u8]> = Vec::new();
        fn all<'p>(
            s: &PointerSet,
            alphabet: &[&'p [u8]; 5],
            path: &mut Vec<&'p [u8]>,
            w: &mut PointerWalk,
            checked: &mut usize,
        ) {
            if path.len() == 5 {
                return;
            }
            for seg in alphabet {
                let got = w.enter(s, seg, |_| true);
                path.push(seg);
                assert_eq!(got, rule_for_path(s, path, |_| true), "{path:?}");
                *checked += 1;
                all(s, alphabet, path, w, checked);
                path.pop();
                w.leave();
            }
        }
        let mut w = PointerWalk::default();
        w.reset(&s);
        let mut checked = 0;
        all(&s, &alphabet, &mut path, &mut w, &mut checked);
        assert_eq!(checked, 5 + 25 + 125 + 625 + 3125);
    }
}
