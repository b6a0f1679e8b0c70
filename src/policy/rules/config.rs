//! Command-rule configuration as it appears under `[target.policy]`, and
//! the errors that validating it reports.

use serde::{Deserialize, Serialize};

/// What happens to a statement. Declared from least to most strict: a
/// multi-statement string gets the strictest action of its statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Forward it.
    Allow,
    /// Forward it, flagged in the audit record.
    Audit,
    /// Hold it until a reviewer approves (the admin plane implements the wait).
    Approve,
    /// Refuse it with the rule's message.
    Block,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Allow => "allow",
            ActionKind::Audit => "audit",
            ActionKind::Approve => "approve",
            ActionKind::Block => "block",
        }
    }
}

fn block() -> ActionKind {
    ActionKind::Block
}

fn allow() -> ActionKind {
    ActionKind::Allow
}

/// A target's command policy.
///
/// ```toml
/// [target.policy]
/// unclassified = "block"
/// unmatched = "allow"
/// [[target.policy.rules]]
/// name = "no-destructive"
/// action = "block"
/// message = "destructive statements are not allowed through tollgate"
/// classes = ["drop_database", "truncate", "delete_without_where"]
/// [[target.policy.rules]]
/// name = "no-privilege-changes"
/// action = "approve"
/// preset = "privilege"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Action for statements the lexer/classifier cannot classify (class
    /// `unknown`), unless a rule names the `unknown` class. Default: block.
    #[serde(default = "block")]
    pub unclassified: ActionKind,
    /// Action when no rule matches. Default: allow.
    #[serde(default = "allow")]
    pub unmatched: ActionKind,
    /// Rules in order; the first that matches a statement decides it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `enforce` (default) or `shadow`: in shadow mode nothing the policy
    /// would block or hold is stopped; it runs, flagged as audited, and the
    /// verdict it would have had is counted, logged and recorded.
    #[serde(default, skip_serializing_if = "PolicyMode::is_enforce")]
    pub mode: PolicyMode,
}

/// Whether a target's policy stops what it refuses, or only reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    #[default]
    Enforce,
    Shadow,
}

impl PolicyMode {
    fn is_enforce(&self) -> bool {
        *self == PolicyMode::Enforce
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            unclassified: ActionKind::Block,
            unmatched: ActionKind::Allow,
            rules: Vec::new(),
            mode: PolicyMode::Enforce,
        }
    }
}

/// One rule. Every non-empty criterion must match (AND); within a list any
/// entry may match (OR). A rule with no criteria matches every classified
/// statement. `subjects`/`groups` scope the rule to callers: empty both =
/// everyone; otherwise the caller's subject must be listed or one of its
/// groups must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique within the policy; shown in verdicts and audit records.
    pub name: String,
    pub action: ActionKind,
    /// Shown to the client on block (and on an approval refused).
    #[serde(default)]
    pub message: Option<String>,
    /// Statement selectors: class names (`select`, `drop`, `unknown`, ...),
    /// `<class>_<object>` (`drop_database`, `alter_system`, `set_role`), or
    /// features (`delete_without_where`, `copy_to_program`, ...). The full
    /// list is in `tollgate_codecs::sql::selector` and `rules.rs`.
    #[serde(default)]
    pub classes: Vec<String>,
    /// A named selector set added to `classes`: `destructive`, `privilege`
    /// or `exfiltration` (see `tollgate_codecs::sql::presets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Globs over called functions, case-insensitive, matched against both
    /// the qualified (`pg_catalog.pg_read_file`) and bare name.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Globs over referenced relations, case-insensitive, matched against
    /// the name as written (`payments.cards`) and its bare name (`cards`).
    #[serde(default)]
    pub relations: Vec<String>,
    /// Words or phrases matched over normalized statement text at word
    /// boundaries (`"DROP DATABASE"`, `"pg_sleep"`), never inside literals.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A regex over the normalized statement text (see
    /// `tollgate_codecs::sql::normalize`: words uppercased, literals `?`).
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// A shadow rule decides nothing: where it matches, evaluation goes on
    /// to the rules after it, and its own action is reported as what would
    /// have happened (metric, log line, recording) so it can be watched in
    /// production before it enforces.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// Most rules one policy may hold.
pub const MAX_RULES: usize = 1024;
/// Longest pattern (glob, keyword, regex) accepted.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Compiled size limit for a rule's regex.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a policy configuration is invalid. Each names the rule and field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("policy has {count} rules; at most {max} are allowed")]
    TooManyRules { count: usize, max: usize },
    #[error("policy.rules[{index}].name is empty")]
    EmptyName { index: usize },
    #[error("policy.rules: the name {name:?} is used twice")]
    DuplicateName { name: String },
    #[error(
        "policy.rules: the name {name:?} is reserved for the gateway's own verdicts (unclassified, unmatched, empty, lexical-state)"
    )]
    ReservedName { name: String },
    #[error(
        "policy rule {rule:?}: classes has unknown selector {class:?} (a class name, <class>_<object>, or a feature)"
    )]
    UnknownClass { rule: String, class: String },
    #[error(
        "policy rule {rule:?}: unknown preset {preset:?} (destructive, privilege or exfiltration)"
    )]
    UnknownPreset { rule: String, preset: String },
    #[error("policy rule {rule:?}: {field} has an empty entry")]
    EmptyPattern { rule: String, field: &'static str },
    #[error("policy rule {rule:?}: {field} entry of {len} bytes exceeds {max}")]
    PatternTooLong {
        rule: String,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("policy rule {rule:?}: {field} glob {pattern:?} is invalid: {reason}")]
    BadGlob {
        rule: String,
        field: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("policy rule {rule:?}: regex is invalid: {reason}")]
    BadRegex { rule: String, reason: String },
    #[error("policy: cannot build the {field} matcher: {reason}")]
    Matcher { field: &'static str, reason: String },
}

impl PolicyConfig {
    /// Checks the configuration by compiling it; the error names the field.
    pub fn validate(&self) -> Result<(), RuleError> {
        super::Policy::compile(self).map(|_| ())
    }
}

/// Checks the entries of one list field.
pub(crate) fn check_patterns(
    rule: &str,
    field: &'static str,
    patterns: &[String],
) -> Result<(), RuleError> {
    for p in patterns {
        if p.trim().is_empty() {
            return Err(RuleError::EmptyPattern {
                rule: rule.to_string(),
                field,
            });
        }
        if p.len() > MAX_PATTERN_LEN {
            return Err(RuleError::PatternTooLong {
                rule: rule.to_string(),
                field,
                len: p.len(),
                max: MAX_PATTERN_LEN,
            });
        }
    }
    Ok(())
}
