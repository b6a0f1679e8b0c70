//! Masking: column-name globs and content detectors over result values.
//!
//! A [`MaskPolicy`] is compiled once per configuration snapshot and shared by
//! every session (it is `Send + Sync`). A session builds a [`ResultPlan`] once
//! per result description (PostgreSQL RowDescription, MySQL column
//! definitions) for its caller, then masks each value with [`MaskPolicy::mask_value`]
//! (or [`MaskPolicy::mask_value_in_place`] on the frame buffer), and free text
//! (COPY rows, HTTP bodies) with [`MaskPolicy::mask_text`]. A value with no
//! candidate costs one vectorised flag pass (plus, when it has digits enough
//! for some number shape, one SIMD bitmap pass; see `prefilter.rs`)
//! and no copy.
//!
//! Semantics, in brief:
//! - A column whose name matches a rule's `columns` glob has its whole value
//!   masked with that rule's style (first matching rule wins), unless the
//!   caller is in the rule's `exempt_groups`.
//! - Every other column, and free text, is scanned with the detectors of the
//!   rules that apply to the caller; each match is rewritten with the style
//!   of the first such rule naming its detector.
//! - Style `null` makes the whole value NULL when any of its detectors
//!   matches (in free text, where there is no NULL, it redacts the match).
//! - Length-keeping styles (`partial`, `redact` with `preserve_length`) can
//!   work in place; the others write into [`MaskScratch`].

mod config;
mod detect;
mod iban;
pub(crate) mod json;
pub(crate) mod jsontext;
mod numeric;
pub(crate) mod pointer;
mod prefilter;
mod scan;
#[cfg(feature = "fuzzing")]
pub use scan::check_scan_against_unfiltered;
mod style;
mod token;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobSet, GlobSetBuilder};
use ring::hmac;

pub use config::{
    CustomDetectorConfig, MAX_CUSTOM, MAX_KEEP, MAX_REPLACEMENT, MAX_RULES, MIN_KEY_LEN, MaskError,
    MaskRuleConfig, MaskStyleKind, MaskingConfig, UnknownOrigin, UnknownShape,
};
pub use detect::{Builtin, DetectorId, DetectorSet, MAX_DETECTORS, Span};
pub use style::{DEFAULT_REPLACEMENT, HASH_HEX_LEN, HASH_PREFIX, Style};

use scan::{CustomDetector, Scanner, merge_overlaps};

/// Default `keep` of a partial rule.
pub const DEFAULT_KEEP: usize = 4;

const NO_RULE: u8 = u8::MAX;

#[derive(Debug)]
struct Rule {
    detectors: DetectorSet,
    style: Style,
    exempt: Box<[String]>,
}

impl Rule {
    fn applies_to(&self, groups: &[String]) -> bool {
        !groups.iter().any(|g| self.exempt.contains(g))
    }
}

/// Masking for one target, compiled from a [`MaskingConfig`].
#[derive(Debug)]
pub struct MaskPolicy {
    rules: Vec<Rule>,
    rule_names: Vec<String>,
    globs: GlobSet,
    /// Rule index of each glob in `globs`.
    glob_rule: Vec<u8>,
    /// Every rule's `json_paths`.
    pointers: pointer::PointerSet,
    scanner: Scanner,
    detector_names: Vec<String>,
    key: Option<hmac::Key>,
    /// Style for a span whose detector has no rule in the plan (cannot
    /// happen through the API; masks everything if it ever does).
    fallback: Style,
    unknown_shape: UnknownShape,
    unknown_origin: UnknownOrigin,
}

/// What to do with one column of a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnAction {
    /// Pass values through untouched.
    Clear,
    /// Mask the whole value with this rule (index into the config's rules).
    Whole { rule: u8 },
    /// Scan values with the caller's content detectors.
    Scan,
}

/// Per-caller, per-result decisions. Reuse one per session: once its vectors
/// have grown, planning allocates nothing.
#[derive(Clone, Debug)]
pub struct ResultPlan {
    columns: Vec<ColumnAction>,
    /// Detectors that apply to this caller.
    scan: DetectorSet,
    /// Rule (index) whose style masks each detector's matches.
    by_detector: [u8; MAX_DETECTORS],
    applies: Vec<bool>,
    glob_hits: Vec<usize>,
}

impl Default for ResultPlan {
    fn default() -> Self {
        ResultPlan {
            columns: Vec::new(),
            scan: DetectorSet::EMPTY,
            by_detector: [NO_RULE; MAX_DETECTORS],
            applies: Vec::new(),
            glob_hits: Vec::new(),
        }
    }
}

impl ResultPlan {
    /// True when no value of this result (or text, for a caller plan) can be
    /// changed: the session may skip masking altogether.
    pub fn is_noop(&self) -> bool {
        self.scan.is_empty() && self.columns.iter().all(|c| *c == ColumnAction::Clear)
    }

    pub fn column(&self, column: usize) -> ColumnAction {
        match self.columns.get(column) {
            Some(action) => *action,
            // More values than described: scan them rather than pass them clear.
            None if !self.scan.is_empty() => ColumnAction::Scan,
            None => ColumnAction::Clear,
        }
    }

    /// Content detectors that apply to this caller.
    pub fn detectors(&self) -> DetectorSet {
        self.scan
    }
}

/// Masked-value counts, indexed by [`DetectorId`]; whole-column masks are
/// counted apart. Sessions add these into their metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskCounters {
    pub by_detector: [u64; MAX_DETECTORS],
    pub by_column: u64,
}

impl Default for MaskCounters {
    fn default() -> Self {
        MaskCounters {
            by_detector: [0; MAX_DETECTORS],
            by_column: 0,
        }
    }
}

/// Per-session working memory: the output buffer a replaced value lives in,
/// the span list, and the counters.
#[derive(Clone, Debug, Default)]
pub struct MaskScratch {
    out: Vec<u8>,
    spans: Vec<Span>,
    /// Where a JSON walk is, for `json_paths` (kept to reuse its memory).
    pointer_walk: pointer::PointerWalk,
    pub counters: MaskCounters,
}

/// Result of masking a value given by reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskOutcome<'s> {
    /// Nothing to mask: forward the original bytes.
    Unchanged,
    /// Forward these bytes instead (they live in the scratch).
    Replaced(&'s [u8]),
    /// The value must be sent as SQL NULL.
    Null,
}

/// Result of masking a value in its frame buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InPlaceOutcome<'s> {
    Unchanged,
    /// The buffer was rewritten; its length is unchanged.
    Masked,
    /// The masked value has another length: send these bytes instead.
    Replaced(&'s [u8]),
    Null,
}

impl MaskPolicy {
    /// Compiles `config`. `key` is the content of `key_file` (see
    /// [`MaskingConfig::key_from_file`]); it is required when a rule hashes.
    pub fn new(config: &MaskingConfig, key: Option<&[u8]>) -> Result<MaskPolicy, MaskError> {
        config.validate()?;
        let key = match key {
            Some(k) if k.len() < MIN_KEY_LEN => {
                return Err(MaskError::KeyTooShort {
                    len: k.len(),
                    min: MIN_KEY_LEN,
                });
            }
            Some(k) => Some(hmac::Key::new(hmac::HMAC_SHA256, k)),
            None if config.needs_key() => return Err(MaskError::MissingKey),
            None => None,
        };
        let mut detector_names: Vec<String> =
            Builtin::ALL.iter().map(|b| b.name().to_owned()).collect();
        let mut custom = Vec::with_capacity(config.custom.len());
        for (i, c) in config.custom.iter().enumerate() {
            let regex = config::compile_regex(&c.regex).map_err(|source| MaskError::BadRegex {
                field: format!("masking.custom[{i}].regex"),
                source,
            })?;
            let anchor = c
                .anchor
                .as_ref()
                .map(|a| memchr::memmem::Finder::new(a.as_bytes()).into_owned());
            custom.push(CustomDetector {
                id: DetectorId(detector_names.len() as u8),
                regex,
                anchor,
            });
            detector_names.push(c.name.clone());
        }
        let id_of = |name: &str| {
            detector_names
                .iter()
                .position(|n| n == name)
                .map(|i| DetectorId(i as u8))
        };
        let mut globs = GlobSetBuilder::new();
        let mut glob_rule = Vec::new();
        let mut pointers = pointer::PointerSet::default();
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.iter().enumerate() {
            for (k, p) in r.json_paths.iter().enumerate() {
                let compiled =
                    pointer::Pointer::parse(p).map_err(|source| MaskError::BadPointer {
                        field: format!("masking.rules[{i}].json_paths[{k}]"),
                        pointer: p.clone(),
                        source,
                    })?;
                pointers.push(i as u8, compiled);
            }
            for (k, g) in r.columns.iter().enumerate() {
                let glob = config::column_glob(g).map_err(|source| MaskError::BadGlob {
                    field: format!("masking.rules[{i}].columns[{k}]"),
                    glob: g.clone(),
                    source,
                })?;
                globs.add(glob);
                glob_rule.push(i as u8);
            }
            let mut detectors = DetectorSet::EMPTY;
            for d in &r.detectors {
                // validate() has checked every name.
                if let Some(id) = id_of(d) {
                    detectors.insert(id);
                }
            }
            rules.push(Rule {
                detectors,
                style: compile_style(r),
                exempt: r.exempt_groups.clone().into(),
            });
        }
        let globs = globs.build().map_err(|source| MaskError::BadGlob {
            field: "masking.rules".into(),
            glob: String::new(),
            source,
        })?;
        let scanner = Scanner::new(custom).map_err(|source| MaskError::Automaton { source })?;
        Ok(MaskPolicy {
            rules,
            rule_names: config.rules.iter().map(|r| r.name.clone()).collect(),
            globs,
            glob_rule,
            pointers,
            scanner,
            detector_names,
            key,
            fallback: Style::Redact {
                replacement: DEFAULT_REPLACEMENT.into(),
                preserve_length: true,
            },
            unknown_shape: config.unknown_shape,
            unknown_origin: config.unknown_origin,
        })
    }

    /// What to do with derived columns of a statement naming a masked column.
    pub fn unknown_origin(&self) -> UnknownOrigin {
        self.unknown_origin
    }

    /// What to do with rows whose columns cannot be named.
    pub fn unknown_shape(&self) -> UnknownShape {
        self.unknown_shape
    }

    /// Number of detector ids in use (built-ins, then customs).
    pub fn detector_count(&self) -> usize {
        self.detector_names.len()
    }

    /// Name of a detector id, for metrics labels.
    pub fn detector_name(&self, id: DetectorId) -> Option<&str> {
        self.detector_names.get(id.index()).map(String::as_str)
    }

    pub fn rule_name(&self, rule: u8) -> Option<&str> {
        self.rule_names.get(usize::from(rule)).map(String::as_str)
    }

    /// Fills `plan` for a caller with no result columns: enough for
    /// [`mask_text`](Self::mask_text).
    pub fn plan_caller(&self, caller_groups: &[String], plan: &mut ResultPlan) {
        plan.columns.clear();
        plan.applies.clear();
        plan.applies
            .extend(self.rules.iter().map(|r| r.applies_to(caller_groups)));
        plan.scan = DetectorSet::EMPTY;
        plan.by_detector = [NO_RULE; MAX_DETECTORS];
        // Reverse order so the first rule naming a detector is the one kept.
        for (i, rule) in self.rules.iter().enumerate().rev() {
            if !plan.applies[i] {
                continue;
            }
            plan.scan.0 |= rule.detectors.0;
            for id in 0..MAX_DETECTORS {
                if rule.detectors.contains(DetectorId(id as u8)) {
                    plan.by_detector[id] = i as u8;
                }
            }
        }
    }

    /// Fills `plan` for one result: which columns are masked by name, and
    /// which are scanned. Call once per result description.
    pub fn plan_result<'n>(
        &self,
        column_names: impl IntoIterator<Item = &'n [u8]>,
        caller_groups: &[String],
        plan: &mut ResultPlan,
    ) {
        self.plan_caller(caller_groups, plan);
        for name in column_names {
            self.globs
                .matches_into(Path::new(OsStr::from_bytes(name)), &mut plan.glob_hits);
            let rule = plan
                .glob_hits
                .iter()
                .map(|&g| self.glob_rule[g])
                .filter(|&r| plan.applies[usize::from(r)])
                .min();
            plan.columns.push(match rule {
                Some(rule) => ColumnAction::Whole { rule },
                None if !plan.scan.is_empty() => ColumnAction::Scan,
                None => ColumnAction::Clear,
            });
        }
    }

    /// The rule whose column glob matches `name` and applies to the plan's
    /// caller (first rule wins), e.g. for a JSON key or a referenced column.
    pub fn column_rule(&self, plan: &ResultPlan, name: &[u8]) -> Option<u8> {
        if self.glob_rule.is_empty() {
            return None;
        }
        self.globs
            .matches(Path::new(OsStr::from_bytes(name)))
            .into_iter()
            .map(|g| self.glob_rule[g])
            .filter(|&r| plan.applies.get(usize::from(r)).copied().unwrap_or(false))
            .min()
    }

    /// Whether any rule masks by column name for the plan's caller.
    pub fn has_column_rules(&self, plan: &ResultPlan) -> bool {
        self.first_column_rule(plan).is_some()
    }

    /// The compiled `json_paths` of every rule.
    pub(crate) fn pointers(&self) -> &pointer::PointerSet {
        &self.pointers
    }

    /// Whether rule `rule` masks for the plan's caller.
    pub(crate) fn rule_applies(&self, plan: &ResultPlan, rule: u8) -> bool {
        plan.applies
            .get(usize::from(rule))
            .copied()
            .unwrap_or(false)
    }

    /// Whether any rule masks by JSON pointer for the plan's caller.
    pub fn has_pointer_rules(&self, plan: &ResultPlan) -> bool {
        self.pointers
            .rules()
            .iter()
            .any(|&r| self.rule_applies(plan, r))
    }

    /// Whether a JSON document is masked by where its values are (a key
    /// name or a pointer) for the plan's caller, beyond content detectors:
    /// then a body that is not JSON cannot be masked.
    pub fn has_json_key_rules(&self, plan: &ResultPlan) -> bool {
        self.has_column_rules(plan) || self.has_pointer_rules(plan)
    }

    /// The first rule that masks by column name for the plan's caller.
    pub fn first_column_rule(&self, plan: &ResultPlan) -> Option<u8> {
        self.glob_rule
            .iter()
            .copied()
            .filter(|&r| plan.applies.get(usize::from(r)).copied().unwrap_or(false))
            .min()
    }

    /// Masks a whole value with `rule`'s style (a value found by name
    /// somewhere other than a result column: a JSON key).
    pub fn mask_with_rule<'s>(
        &self,
        rule: u8,
        value: &[u8],
        scratch: &'s mut MaskScratch,
    ) -> MaskOutcome<'s> {
        let Some(r) = self.rules.get(usize::from(rule)) else {
            return MaskOutcome::Null;
        };
        scratch.counters.by_column += 1;
        if r.style == Style::Null {
            return MaskOutcome::Null;
        }
        scratch.out.clear();
        r.style.apply(value, self.key.as_ref(), &mut scratch.out);
        MaskOutcome::Replaced(&scratch.out)
    }

    /// Makes `column` of `plan` masked whole by `rule` (a derived column of
    /// a statement that references a masked one).
    pub fn mask_column_whole(&self, plan: &mut ResultPlan, column: usize, rule: u8) {
        if let Some(c) = plan.columns.get_mut(column) {
            *c = ColumnAction::Whole { rule };
        }
    }

    /// Content matches of the caller's detectors in `value`, sorted by start
    /// and possibly overlapping (for audit, tests, and tools).
    pub fn find(&self, plan: &ResultPlan, value: &[u8], spans: &mut Vec<Span>) {
        self.scanner.scan(value, plan.scan, spans);
    }

    /// Masks one value of `column`.
    pub fn mask_value<'s>(
        &self,
        plan: &ResultPlan,
        column: usize,
        value: &[u8],
        scratch: &'s mut MaskScratch,
    ) -> MaskOutcome<'s> {
        match plan.column(column) {
            ColumnAction::Clear => MaskOutcome::Unchanged,
            ColumnAction::Whole { rule } => {
                scratch.counters.by_column += 1;
                let style = &self.rules[usize::from(rule)].style;
                if *style == Style::Null {
                    return MaskOutcome::Null;
                }
                scratch.out.clear();
                style.apply(value, self.key.as_ref(), &mut scratch.out);
                MaskOutcome::Replaced(&scratch.out)
            }
            ColumnAction::Scan => self.mask_content(plan, value, scratch, true),
        }
    }

    /// Masks one value of `column` where it lies in the frame buffer. When
    /// every style involved keeps length the buffer is rewritten in place;
    /// otherwise the masked value is returned from the scratch.
    pub fn mask_value_in_place<'s>(
        &self,
        plan: &ResultPlan,
        column: usize,
        value: &mut [u8],
        scratch: &'s mut MaskScratch,
    ) -> InPlaceOutcome<'s> {
        match plan.column(column) {
            ColumnAction::Clear => InPlaceOutcome::Unchanged,
            ColumnAction::Whole { rule } => {
                let style = &self.rules[usize::from(rule)].style;
                if style.keeps_length() {
                    scratch.counters.by_column += 1;
                    style.apply_in_place(value);
                    return InPlaceOutcome::Masked;
                }
                self.mask_value(plan, column, value, scratch).into()
            }
            ColumnAction::Scan => {
                if !self.scan_and_count(plan, value, scratch) {
                    return InPlaceOutcome::Unchanged;
                }
                if self.any_style(plan, scratch, |s| *s == Style::Null) {
                    return InPlaceOutcome::Null;
                }
                if self.any_style(plan, scratch, |s| !s.keeps_length()) {
                    return self.rewrite(plan, value, scratch).into();
                }
                for sp in &scratch.spans {
                    self.style_of(plan, sp)
                        .apply_in_place(&mut value[sp.start..sp.end]);
                }
                InPlaceOutcome::Masked
            }
        }
    }

    /// Masks free text (a COPY row, an HTTP body) with the caller's content
    /// detectors. Never returns `Null`: `null` matches are redacted.
    pub fn mask_text<'s>(
        &self,
        plan: &ResultPlan,
        text: &[u8],
        scratch: &'s mut MaskScratch,
    ) -> MaskOutcome<'s> {
        self.mask_content(plan, text, scratch, false)
    }

    fn mask_content<'s>(
        &self,
        plan: &ResultPlan,
        value: &[u8],
        scratch: &'s mut MaskScratch,
        null_allowed: bool,
    ) -> MaskOutcome<'s> {
        if !self.scan_and_count(plan, value, scratch) {
            return MaskOutcome::Unchanged;
        }
        if null_allowed && self.any_style(plan, scratch, |s| *s == Style::Null) {
            return MaskOutcome::Null;
        }
        self.rewrite(plan, value, scratch)
    }

    /// Scans, merges and counts; true when something matched.
    fn scan_and_count(&self, plan: &ResultPlan, value: &[u8], scratch: &mut MaskScratch) -> bool {
        if plan.scan.is_empty() {
            return false;
        }
        self.scanner.scan(value, plan.scan, &mut scratch.spans);
        if scratch.spans.is_empty() {
            return false;
        }
        merge_overlaps(&mut scratch.spans);
        for sp in &scratch.spans {
            scratch.counters.by_detector[sp.detector.index()] += 1;
        }
        true
    }

    fn style_of(&self, plan: &ResultPlan, span: &Span) -> &Style {
        let rule = plan.by_detector[span.detector.index()];
        match self.rules.get(usize::from(rule)) {
            Some(r) => &r.style,
            // A span can only come from a detector the plan enabled; redact
            // anyway if that ever breaks.
            None => &self.fallback,
        }
    }

    fn any_style(
        &self,
        plan: &ResultPlan,
        scratch: &MaskScratch,
        f: impl Fn(&Style) -> bool,
    ) -> bool {
        scratch.spans.iter().any(|sp| f(self.style_of(plan, sp)))
    }

    fn rewrite<'s>(
        &self,
        plan: &ResultPlan,
        value: &[u8],
        scratch: &'s mut MaskScratch,
    ) -> MaskOutcome<'s> {
        let MaskScratch { out, spans, .. } = scratch;
        out.clear();
        let mut prev = 0;
        for sp in spans.iter() {
            out.extend_from_slice(&value[prev..sp.start]);
            self.style_of(plan, sp)
                .apply(&value[sp.start..sp.end], self.key.as_ref(), out);
            prev = sp.end;
        }
        out.extend_from_slice(&value[prev..]);
        MaskOutcome::Replaced(out)
    }
}

impl<'s> From<MaskOutcome<'s>> for InPlaceOutcome<'s> {
    fn from(o: MaskOutcome<'s>) -> Self {
        match o {
            MaskOutcome::Unchanged => InPlaceOutcome::Unchanged,
            MaskOutcome::Replaced(b) => InPlaceOutcome::Replaced(b),
            MaskOutcome::Null => InPlaceOutcome::Null,
        }
    }
}

fn compile_style(r: &MaskRuleConfig) -> Style {
    match r.style {
        MaskStyleKind::Redact => Style::Redact {
            replacement: r
                .replacement
                .as_deref()
                .map_or(DEFAULT_REPLACEMENT, str::as_bytes)
                .into(),
            preserve_length: r.preserve_length,
        },
        MaskStyleKind::Partial => Style::Partial {
            keep: r.keep.unwrap_or(DEFAULT_KEEP),
        },
        MaskStyleKind::Hash => Style::Hash,
        MaskStyleKind::Null => Style::Null,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
