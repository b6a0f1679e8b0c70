//! Command rules: ordered, first match wins, over classified SQL statements.
//!
//! A `PolicyConfig` (TOML under `[target.policy]`) compiles once per config
//! snapshot into an immutable `Policy` (Send + Sync): selectors parsed, globs
//! in one `globset` per field, keywords in one aho-corasick automaton,
//! regexes compiled. `Policy::evaluate` classifies a SQL string with the
//! shard's reusable `EvalScratch` and judges every statement (nested ones
//! included): the first rule whose criteria all match decides; a statement
//! no rule matches gets `unmatched`; an `unknown` one gets `unclassified`
//! (default block) unless a rule names `unknown`. The string's verdict is
//! the strictest (block > approve > audit > allow), first such statement's
//! decider. Nothing allocates per statement once the scratch buffers have
//! grown (PREPARE names are the exception: they are remembered).
//! A `shadow = true` rule decides nothing: where it matches, the rules
//! after it decide, and its action, when stricter, is returned as the
//! verdict's `shadow` (see `judge.rs`); a policy in `mode = "shadow"`
//! audits what it would block or hold and reports that the same way.
//!
//! ## `classes` names
//! - Classes: unknown, select (also VALUES and TABLE), insert, update,
//!   delete, merge, replace, copy, load_data, load, create, alter, drop,
//!   truncate, rename, grant, revoke, set, reset, show, use, explain,
//!   describe, prepare, execute, deallocate, begin, commit, rollback,
//!   savepoint, release, vacuum, analyze, checkpoint, reindex, cluster,
//!   comment, security_label, refresh, lock, unlock, listen, notify,
//!   unlisten, discard, do, call, declare, fetch, move, close, import,
//!   reassign_owned, handler, flush, kill, install, uninstall, optimize,
//!   repair, check_table, checksum, purge, shutdown, restart, clone, xa,
//!   help, signal, get_diagnostics, binlog, cache_index, replication.
//! - `<class>_<object>` with objects: database, schema, table, index, view,
//!   materialized_view, function, procedure, role (role/user/group),
//!   extension, sequence, trigger, event_trigger, event, type, domain,
//!   policy, rule, server, foreign_table, foreign_data_wrapper,
//!   user_mapping, tablespace, publication, subscription, collation,
//!   conversion, language, operator, aggregate, statistics, text_search,
//!   cast, transform, access_method, default_privileges, large_object,
//!   owned, system, instance, plugin, transaction, other. E.g.
//!   `drop_database`, `alter_system`, `create_role`, `set_role`,
//!   `grant_role` (role membership), `create_extension`.
//! - Features: delete_without_where, update_without_where, copy_to,
//!   copy_from, copy_program, copy_to_program, copy_from_program, copy_file,
//!   copy_to_file, copy_from_file, copy_to_stdout, copy_from_stdin,
//!   explain_analyze, select_into, into_outfile, set_global,
//!   load_data_local, lexical_mode_change, with_cte, nested,
//!   tautological_where, merge_delete, merge_update, alter_drop,
//!   alter_column_type, create_or_replace, security_definer,
//!   ownership_change, row_security_off, set_config_role, lo_unlink,
//!   server_file_read, server_file_write, dblink.
//! - `preset = "destructive" | "privilege" | "exfiltration"` adds a
//!   preset's selectors (`tollgate_codecs::sql::presets`) to `classes`.
//!
//! `EXPLAIN ANALYZE <stmt>` has the class of `<stmt>` (it runs it); plain
//! EXPLAIN is `explain`. PostgreSQL `PREPARE p AS <stmt>` has the class of
//! `<stmt>`; MySQL `PREPARE p FROM '<sql>'` is judged by the classified
//! literal. `EXECUTE p` is judged by the verdict remembered for `p` in the
//! session's `PreparedVerdicts` (unknown name: the unclassified default),
//! or by a rule that matches the EXECUTE itself if that is stricter.

mod config;
pub mod explain;
mod judge;
mod prepared;
mod presets;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod shadow_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use aho_corasick::{AhoCorasick, MatchKind};
use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use tollgate_codecs::sql::{
    Classified, Classifier, Dialect, Flags, Selector, Statement, StatementClass, decode_string,
    push_ident, write_normalized,
};

pub use config::{
    ActionKind, MAX_PATTERN_LEN, MAX_RULES, PolicyConfig, PolicyMode, REGEX_SIZE_LIMIT, RuleConfig,
    RuleError,
};
pub use prepared::{MAX_PREPARED, PreparedVerdicts, StoredDecider, StoredVerdict};
pub use presets::preset_warnings;

const UNCLASSIFIED_MESSAGE: &str = "tollgate could not classify this statement; blocked by policy";
const UNMATCHED_MESSAGE: &str = "this statement is not allowed by the tollgate policy";

/// Names the gateway gives verdicts no rule decided (and its own lexical-state
/// refusals); configured rules cannot use them.
pub const RESERVED_RULE_NAMES: [&str; 4] = ["unclassified", "unmatched", "empty", "lexical-state"];

/// The set of statement classes a string contained (for audit records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct ClassSet(u128);

impl ClassSet {
    pub fn insert(&mut self, class: StatementClass) {
        self.0 |= 1u128 << (class as u8 as u32 % 128);
    }

    pub fn contains(self, class: StatementClass) -> bool {
        self.0 & (1u128 << (class as u8 as u32 % 128)) != 0
    }

    pub fn union(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = StatementClass> {
        StatementClass::ALL
            .iter()
            .copied()
            .filter(move |c| self.contains(*c))
    }
}

/// Who is sending the statement.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub subject: &'a str,
    pub groups: &'a [String],
}

/// The action, with the message a client sees where there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'p> {
    Allow,
    Audit,
    Approve { message: &'p str },
    Block { message: &'p str },
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedBy<'p> {
    Rule {
        index: usize,
        name: &'p str,
    },
    /// The policy's `unclassified` default.
    Unclassified,
    /// The policy's `unmatched` default.
    Unmatched,
    /// The string held no statement (only comments or `;`).
    Empty,
}

/// The judgement of one SQL string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict<'p> {
    pub action: Action<'p>,
    pub decided_by: DecidedBy<'p>,
    /// Classes of every statement seen (prepared bodies included).
    pub classes: ClassSet,
    /// How many statements (nested ones included) were judged.
    pub statements: u32,
    /// What a shadow rule (or the policy in shadow mode) would have done
    /// instead, when that is stricter than `action`.
    pub shadow: Option<Shadow<'p>>,
}

/// A verdict that shadow mode reported instead of enforcing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow<'p> {
    pub action: ActionKind,
    /// The rule (or the default: `unclassified`, `unmatched`) that would
    /// have decided.
    pub rule: &'p str,
}

impl Verdict<'_> {
    pub fn kind(&self) -> ActionKind {
        match self.action {
            Action::Allow => ActionKind::Allow,
            Action::Audit => ActionKind::Audit,
            Action::Approve { .. } => ActionKind::Approve,
            Action::Block { .. } => ActionKind::Block,
        }
    }

    /// The verdict in a form a session can keep (for protocol prepares).
    pub fn stored(&self) -> StoredVerdict {
        StoredVerdict {
            action: self.kind(),
            decider: match self.decided_by {
                DecidedBy::Rule { index, .. } => StoredDecider::Rule(index as u32),
                DecidedBy::Unclassified => StoredDecider::Unclassified,
                DecidedBy::Unmatched => StoredDecider::Unmatched,
                DecidedBy::Empty => StoredDecider::Empty,
            },
            classes: self.classes,
        }
    }
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    action: ActionKind,
    shadow: bool,
    message: String,
    selectors: Vec<Selector>,
    names_unknown: bool,
    has_functions: bool,
    has_relations: bool,
    has_keywords: bool,
    regex: Option<regex::bytes::Regex>,
    subjects: Vec<String>,
    groups: Vec<String>,
}

/// One field's globs across all rules, with the rule owning each glob.
#[derive(Debug)]
struct Globs {
    set: GlobSet,
    owner: Vec<usize>,
}

impl Globs {
    fn build(rules: &[RuleConfig], field: &'static str) -> Result<Globs, RuleError> {
        let mut builder = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let patterns = if field == "functions" {
                &rule.functions
            } else {
                &rule.relations
            };
            config::check_patterns(&rule.name, field, patterns)?;
            for pattern in patterns {
                let glob = GlobBuilder::new(pattern.trim())
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| RuleError::BadGlob {
                        rule: rule.name.clone(),
                        field,
                        pattern: pattern.clone(),
                        reason: e.kind().to_string(),
                    })?;
                builder.add(glob);
                owner.push(index);
            }
        }
        let set = builder.build().map_err(|e| RuleError::Matcher {
            field,
            reason: e.to_string(),
        })?;
        Ok(Globs { set, owner })
    }

    /// Marks in `hits` the rules with a glob matching `name`.
    fn mark(&self, name: &[u8], matches: &mut Vec<usize>, hits: &mut [bool]) {
        use std::os::unix::ffi::OsStrExt;
        let candidate = Candidate::new(std::ffi::OsStr::from_bytes(name));
        self.set.matches_candidate_into(&candidate, matches);
        for &glob in matches.iter() {
            if let Some(&rule) = self.owner.get(glob)
                && let Some(hit) = hits.get_mut(rule)
            {
                *hit = true;
            }
        }
    }
}

/// A compiled, immutable command policy.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<CompiledRule>,
    unclassified: ActionKind,
    unmatched: ActionKind,
    mode: PolicyMode,
    functions: Globs,
    relations: Globs,
    keywords: Option<AhoCorasick>,
    /// Per keyword pattern: owning rule, and whether its first/last byte
    /// must sit at a word boundary.
    keyword_info: Vec<(usize, bool, bool)>,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Uppercases ASCII and collapses whitespace, as statement text is normalized.
fn normalize_keyword(keyword: &str) -> String {
    keyword
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

impl Policy {
    /// Validates and compiles a configuration.
    pub fn compile(config: &PolicyConfig) -> Result<Policy, RuleError> {
        if config.rules.len() > MAX_RULES {
            return Err(RuleError::TooManyRules {
                count: config.rules.len(),
                max: MAX_RULES,
            });
        }
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut keyword_patterns = Vec::new();
        let mut keyword_info = Vec::new();
        for (index, rule) in config.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(RuleError::EmptyName { index });
            }
            // Verdicts carry these names when no rule decided; the relay keys
            // behaviour on them (the syntax probe runs only for
            // `unclassified`), so a rule may not wear one.
            if RESERVED_RULE_NAMES.contains(&rule.name.trim()) {
                return Err(RuleError::ReservedName {
                    name: rule.name.clone(),
                });
            }
            if config.rules[..index].iter().any(|r| r.name == rule.name) {
                return Err(RuleError::DuplicateName {
                    name: rule.name.clone(),
                });
            }
            let mut selectors = Vec::with_capacity(rule.classes.len());
            for class in &rule.classes {
                let selector =
                    Selector::parse(class.trim()).ok_or_else(|| RuleError::UnknownClass {
                        rule: rule.name.clone(),
                        class: class.clone(),
                    })?;
                selectors.push(selector);
            }
            if let Some(preset) = &rule.preset {
                selectors.extend(presets::preset_selectors(&rule.name, preset)?);
            }
            config::check_patterns(&rule.name, "keywords", &rule.keywords)?;
            for keyword in &rule.keywords {
                let normalized = normalize_keyword(keyword);
                let bytes = normalized.as_bytes();
                let first = bytes.first().is_some_and(|&b| is_word_byte(b));
                let last = bytes.last().is_some_and(|&b| is_word_byte(b));
                keyword_patterns.push(normalized);
                keyword_info.push((index, first, last));
            }
            let regex = match &rule.regex {
                None => None,
                Some(pattern) => {
                    config::check_patterns(&rule.name, "regex", std::slice::from_ref(pattern))?;
                    Some(
                        regex::bytes::RegexBuilder::new(pattern)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| RuleError::BadRegex {
                                rule: rule.name.clone(),
                                reason: e.to_string(),
                            })?,
                    )
                }
            };
            let message = match (&rule.message, rule.action) {
                (Some(m), _) => m.clone(),
                (None, ActionKind::Approve) => {
                    format!(
                        "this statement needs approval (tollgate rule {:?})",
                        rule.name
                    )
                }
                (None, _) => format!("blocked by tollgate policy rule {:?}", rule.name),
            };
            rules.push(CompiledRule {
                name: rule.name.clone(),
                action: rule.action,
                shadow: rule.shadow,
                message,
                names_unknown: selectors.contains(&Selector::Class(StatementClass::Unknown)),
                selectors,
                has_functions: !rule.functions.is_empty(),
                has_relations: !rule.relations.is_empty(),
                has_keywords: !rule.keywords.is_empty(),
                regex,
                subjects: rule.subjects.clone(),
                groups: rule.groups.clone(),
            });
        }
        let keywords = if keyword_patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(&keyword_patterns)
                    .map_err(|e| RuleError::Matcher {
                        field: "keywords",
                        reason: e.to_string(),
                    })?,
            )
        };
        Ok(Policy {
            functions: Globs::build(&config.rules, "functions")?,
            relations: Globs::build(&config.rules, "relations")?,
            rules,
            unclassified: config.unclassified,
            unmatched: config.unmatched,
            mode: config.mode,
            keywords,
            keyword_info,
        })
    }

    /// The action for statements that cannot be classified.
    pub fn unclassified_action(&self) -> ActionKind {
        self.unclassified
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Judges every statement of `sql` for `caller`. `prepared` is the
    /// session's memory of PREPAREd statements: read for EXECUTE, updated by
    /// PREPARE/DEALLOCATE/DISCARD ALL (see `PreparedVerdicts`).
    pub fn evaluate<'p>(
        &'p self,
        sql: &[u8],
        dialect: Dialect,
        caller: &Caller<'_>,
        scratch: &mut EvalScratch,
        prepared: &mut PreparedVerdicts,
    ) -> Verdict<'p> {
        prepared.begin();
        let EvalScratch {
            classifier,
            body_classifier,
            body,
            name,
            work,
        } = scratch;
        work.reset(self, caller);
        let classified = classifier.classify(sql, dialect);
        let mut acc = Strictest::default();
        for s in classified.statements() {
            acc.classes.insert(s.class);
            acc.statements += 1;
            let mut statement_classes = ClassSet::default();
            statement_classes.insert(s.class);
            let judged = match s.class {
                StatementClass::Execute => {
                    name.clear();
                    push_ident(classified.text(s.name), dialect.is_mysql(), name);
                    let direct = self.judge(&classified, s, work);
                    let stored = prepared.lookup(name).unwrap_or(StoredVerdict {
                        action: self.unclassified,
                        decider: StoredDecider::Unclassified,
                        classes: ClassSet::default(),
                    });
                    acc.classes = acc.classes.union(stored.classes);
                    if matches!(direct.1, StoredDecider::Rule(_)) && direct.0 > stored.action {
                        direct
                    } else {
                        (stored.action, stored.decider)
                    }
                }
                StatementClass::Prepare => {
                    // MySQL `PREPARE p FROM '<sql>'`: judge the literal.
                    let mut inner = Strictest::default();
                    let readable =
                        !s.body.is_empty() && decode_string(classified.text(s.body), dialect, body);
                    if readable {
                        let got = body_classifier.classify(body.as_slice(), dialect);
                        for b in got.statements() {
                            inner.classes.insert(b.class);
                            let nested_sql = matches!(
                                b.class,
                                StatementClass::Prepare
                                    | StatementClass::Execute
                                    | StatementClass::Deallocate
                            ) || b.has(Flags::PREPARE);
                            let verdict = if nested_sql {
                                (self.unclassified, StoredDecider::Unclassified)
                            } else {
                                self.judge(&got, b, work)
                            };
                            inner.merge(verdict);
                        }
                    }
                    acc.classes = acc.classes.union(inner.classes);
                    statement_classes = inner.classes;
                    inner
                        .best
                        .unwrap_or((self.unclassified, StoredDecider::Unclassified))
                }
                _ => self.judge(&classified, s, work),
            };
            if s.class == StatementClass::Prepare || s.has(Flags::PREPARE) {
                name.clear();
                push_ident(classified.text(s.name), dialect.is_mysql(), name);
                prepared.stage_remember(
                    name,
                    StoredVerdict {
                        action: judged.0,
                        decider: judged.1,
                        classes: statement_classes,
                    },
                );
            } else if s.class == StatementClass::Deallocate {
                let raw = classified.text(s.name);
                if raw.eq_ignore_ascii_case(b"all") {
                    prepared.stage_forget_all();
                } else {
                    name.clear();
                    push_ident(raw, dialect.is_mysql(), name);
                    prepared.stage_forget(name);
                }
            } else if s.class == StatementClass::Discard && s.has(Flags::LEXICAL_MODE) {
                // DISCARD ALL (the only DISCARD flagged so) deallocates everything.
                prepared.stage_forget_all();
            }
            acc.merge(judged);
        }
        let (action, decider) = acc
            .best
            .unwrap_or((ActionKind::Allow, StoredDecider::Empty));
        prepared.finish(action);
        let mut verdict = self.resolve(StoredVerdict {
            action,
            decider,
            classes: acc.classes,
        });
        verdict.statements = acc.statements;
        verdict.shadow = work.shadow.filter(|s| s.0 > action).map(|(a, d)| Shadow {
            action: a,
            rule: self.decider_name(d),
        });
        verdict
    }

    /// The verdict for executing a protocol-level prepared statement:
    /// what was remembered for `name`, or the unclassified default.
    pub fn verdict_for_prepared(&self, prepared: &PreparedVerdicts, name: &[u8]) -> Verdict<'_> {
        let stored = prepared.lookup(name).unwrap_or(StoredVerdict {
            action: self.unclassified,
            decider: StoredDecider::Unclassified,
            classes: ClassSet::default(),
        });
        self.resolve(stored)
    }

    /// Turns a stored verdict back into one that carries names and messages.
    pub fn resolve(&self, stored: StoredVerdict) -> Verdict<'_> {
        let rule = match stored.decider {
            StoredDecider::Rule(index) => self.rules.get(index as usize).map(|r| (index, r)),
            _ => None,
        };
        let decided_by = match (stored.decider, rule) {
            (StoredDecider::Rule(_), Some((index, r))) => DecidedBy::Rule {
                index: index as usize,
                name: &r.name,
            },
            // A rule index from another snapshot: say the default decided.
            (StoredDecider::Rule(_), None) | (StoredDecider::Unclassified, _) => {
                DecidedBy::Unclassified
            }
            (StoredDecider::Unmatched, _) => DecidedBy::Unmatched,
            (StoredDecider::Empty, _) => DecidedBy::Empty,
        };
        let message = match (rule, stored.decider) {
            (Some((_, r)), _) => r.message.as_str(),
            (None, StoredDecider::Unmatched) => UNMATCHED_MESSAGE,
            _ => UNCLASSIFIED_MESSAGE,
        };
        let action = match stored.action {
            ActionKind::Allow => Action::Allow,
            ActionKind::Audit => Action::Audit,
            ActionKind::Approve => Action::Approve { message },
            ActionKind::Block => Action::Block { message },
        };
        Verdict {
            action,
            decided_by,
            classes: stored.classes,
            statements: 0,
            shadow: None,
        }
    }
}

/// Strictest verdict so far; ties keep the first.
#[derive(Default)]
struct Strictest {
    best: Option<(ActionKind, StoredDecider)>,
    classes: ClassSet,
    statements: u32,
}

impl Strictest {
    fn merge(&mut self, judged: (ActionKind, StoredDecider)) {
        if self.best.is_none_or(|(best, _)| judged.0 > best) {
            self.best = Some(judged);
        }
    }
}

/// Reusable buffers for `Policy::evaluate`; keep one per shard.
#[derive(Debug, Default)]
pub struct EvalScratch {
    classifier: Classifier,
    body_classifier: Classifier,
    body: Vec<u8>,
    name: Vec<u8>,
    work: Work,
}

impl EvalScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Per-rule hit tables, filled lazily per statement.
#[derive(Debug, Default)]
struct Work {
    applies: Vec<bool>,
    function_hits: Vec<bool>,
    relation_hits: Vec<bool>,
    keyword_hits: Vec<bool>,
    functions_done: bool,
    relations_done: bool,
    keywords_done: bool,
    normalized_done: bool,
    normalized: Vec<u8>,
    glob_matches: Vec<usize>,
    /// The strictest shadow verdict of the string being judged.
    shadow: Option<(ActionKind, StoredDecider)>,
}

impl Work {
    fn reset(&mut self, policy: &Policy, caller: &Caller<'_>) {
        let n = policy.rules.len();
        self.shadow = None;
        self.applies.clear();
        self.applies.extend(policy.rules.iter().map(|r| {
            (r.subjects.is_empty() && r.groups.is_empty())
                || r.subjects.iter().any(|s| s == caller.subject)
                || r.groups.iter().any(|g| caller.groups.contains(g))
        }));
        for hits in [
            &mut self.function_hits,
            &mut self.relation_hits,
            &mut self.keyword_hits,
        ] {
            hits.clear();
            hits.resize(n, false);
        }
    }

    fn begin_statement(&mut self) {
        self.functions_done = false;
        self.relations_done = false;
        self.keywords_done = false;
        self.normalized_done = false;
    }

    fn function_hit(&mut self, p: &Policy, c: &Classified<'_>, s: &Statement, rule: usize) -> bool {
        if !self.functions_done {
            self.functions_done = true;
            self.function_hits.fill(false);
            for name in c.functions(s) {
                p.functions
                    .mark(name.full, &mut self.glob_matches, &mut self.function_hits);
                if name.bare.len() != name.full.len() {
                    p.functions
                        .mark(name.bare, &mut self.glob_matches, &mut self.function_hits);
                }
            }
        }
        self.function_hits[rule]
    }

    fn relation_hit(&mut self, p: &Policy, c: &Classified<'_>, s: &Statement, rule: usize) -> bool {
        if !self.relations_done {
            self.relations_done = true;
            self.relation_hits.fill(false);
            for name in c.relations(s) {
                p.relations
                    .mark(name.full, &mut self.glob_matches, &mut self.relation_hits);
                if name.bare.len() != name.full.len() {
                    p.relations
                        .mark(name.bare, &mut self.glob_matches, &mut self.relation_hits);
                }
            }
        }
        self.relation_hits[rule]
    }

    fn ensure_normalized(&mut self, c: &Classified<'_>, s: &Statement) {
        if !self.normalized_done {
            self.normalized_done = true;
            write_normalized(c.sql(), c.tokens(s), &mut self.normalized);
        }
    }

    fn keyword_hit(&mut self, p: &Policy, c: &Classified<'_>, s: &Statement, rule: usize) -> bool {
        if !self.keywords_done {
            self.keywords_done = true;
            self.ensure_normalized(c, s);
            self.keyword_hits.fill(false);
            if let Some(ac) = &p.keywords {
                let text = &self.normalized;
                for m in ac.find_overlapping_iter(text.as_slice()) {
                    let Some(&(owner, first, last)) = p.keyword_info.get(m.pattern().as_usize())
                    else {
                        continue;
                    };
                    let before_ok = !first || m.start() == 0 || !is_word_byte(text[m.start() - 1]);
                    let after_ok = !last || m.end() >= text.len() || !is_word_byte(text[m.end()]);
                    if before_ok && after_ok {
                        self.keyword_hits[owner] = true;
                    }
                }
            }
        }
        self.keyword_hits[rule]
    }
}
