//! `[target.masking]` configuration: rules, custom detectors, and validation.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::detect::{Builtin, MAX_DETECTORS};

/// Longest `keep` a partial rule may ask for.
pub const MAX_KEEP: usize = 64;
/// Longest `replacement` text.
pub const MAX_REPLACEMENT: usize = 256;
/// Most rules per target (a rule index must fit a byte in the result plan).
pub const MAX_RULES: usize = 254;
/// Most custom detectors (built-ins and customs share a 64-bit set).
pub const MAX_CUSTOM: usize = MAX_DETECTORS - Builtin::COUNT;
/// Shortest HMAC key accepted for `hash`.
pub const MIN_KEY_LEN: usize = 16;
/// Compiled-size cap for one custom regex, so a config cannot eat memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Masking for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// HMAC key for style `hash`. The caller reads the file and hands the
    /// bytes to [`super::MaskPolicy::new`] (see [`MaskingConfig::key_from_file`]).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub rules: Vec<MaskRuleConfig>,
    #[serde(default)]
    pub custom: Vec<CustomDetectorConfig>,
    /// Rows whose columns the gateway cannot name (a prepared statement or
    /// portal it never saw described): every value NULL, or the session
    /// refused. Either way nothing passes unmasked.
    #[serde(default)]
    pub unknown_shape: UnknownShape,
    /// Result columns computed or renamed from a column a rule masks by
    /// name (`upper(email)`, `ssn AS x`), found by the statement's
    /// reference to it: masked whole, or the session refused.
    #[serde(default)]
    pub unknown_origin: UnknownOrigin,
}

/// What to do with a result column whose origin cannot be established when
/// the statement references a column masked by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOrigin {
    /// Mask the whole value with the referenced column's rule (kept valid
    /// for the column's type).
    #[default]
    Mask,
    /// End the session with a FATAL error naming the column.
    Refuse,
}

/// What to do with rows whose shape (column names and types) is unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownShape {
    /// Send every value of such rows as NULL (valid for every type and
    /// format, so clients still decode the rows).
    #[default]
    MaskAll,
    /// End the session with a FATAL error naming the statement.
    Refuse,
}

/// One masking rule. `columns` mask whole values by column name; `detectors`
/// mask matches inside any column's value (and in free text). A rule may do
/// both. For a column, the first rule (in order) whose glob names it wins;
/// for a content match, the first rule naming the detector picks the style.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRuleConfig {
    pub name: String,
    /// Case-insensitive globs on column names (`ssn`, `*_ssn`, `card_*`).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Built-in detector names or names of `[[masking.custom]]` entries.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// JSON Pointer globs (`/users/*/ssn`, `/**/password`): values at these
    /// places of a JSON document are masked whole (HTTP targets; see
    /// `pointer.rs`).
    #[serde(default)]
    pub json_paths: Vec<String>,
    pub style: MaskStyleKind,
    /// `partial` only: characters kept at the end (default 4).
    #[serde(default)]
    pub keep: Option<usize>,
    /// `redact` only: replacement text (default `****`).
    #[serde(default)]
    pub replacement: Option<String>,
    /// `redact` only: replace each byte with `*` instead, keeping the length
    /// so the value can be masked in place.
    #[serde(default)]
    pub preserve_length: bool,
    /// Callers in any of these groups see clear values for this rule.
    #[serde(default)]
    pub exempt_groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskStyleKind {
    Redact,
    Partial,
    Hash,
    Null,
}

impl MaskStyleKind {
    pub const fn name(self) -> &'static str {
        match self {
            MaskStyleKind::Redact => "redact",
            MaskStyleKind::Partial => "partial",
            MaskStyleKind::Hash => "hash",
            MaskStyleKind::Null => "null",
        }
    }
}

/// A detector defined by a regex (Rust `regex` syntax, over bytes).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetectorConfig {
    pub name: String,
    pub regex: String,
    /// A literal every match contains. Values without it skip the regex;
    /// without an anchor the regex runs on every scanned value.
    #[serde(default)]
    pub anchor: Option<String>,
}

/// Why a masking configuration or key was refused. `field` is the path of
/// the offending setting, e.g. `masking.rules[2].detectors[0]`.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: name {name:?} is used twice")]
    DuplicateName { field: String, name: String },
    #[error("{field}: custom detector {name:?} shadows a built-in detector")]
    ShadowsBuiltin { field: String, name: String },
    #[error("{field}: a rule needs `columns`, `detectors` or `json_paths`")]
    NothingToMask { field: String },
    #[error("{field}: bad JSON pointer {pointer:?}: {source}")]
    BadPointer {
        field: String,
        pointer: String,
        source: super::pointer::PointerError,
    },
    #[error("{field}: unknown detector {name:?}")]
    UnknownDetector { field: String, name: String },
    #[error("{field}: bad glob {glob:?}: {source}")]
    BadGlob {
        field: String,
        glob: String,
        source: globset::Error,
    },
    #[error("{field}: bad regex: {source}")]
    BadRegex { field: String, source: regex::Error },
    #[error("{field}: only applies to style {applies_to:?}, not {style:?}")]
    NotForStyle {
        field: String,
        applies_to: &'static str,
        style: &'static str,
    },
    #[error("{field}: {value} is over the maximum {max}")]
    TooLarge {
        field: String,
        value: usize,
        max: usize,
    },
    #[error("{field}: {count} entries, at most {max} allowed")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    #[error("{field}: style \"hash\" needs masking.key_file")]
    MissingKeyFile { field: String },
    #[error("masking: a rule uses style \"hash\" but no key was loaded")]
    MissingKey,
    #[error("masking.key_file: key is {len} bytes, at least {min} required")]
    KeyTooShort { len: usize, min: usize },
    #[error("masking: building the anchor automaton: {source}")]
    Automaton { source: aho_corasick::BuildError },
}

impl MaskingConfig {
    /// Whether any rule names JSON pointers (`json_paths`).
    pub fn has_json_paths(&self) -> bool {
        self.rules.iter().any(|r| !r.json_paths.is_empty())
    }

    /// Whether any rule uses style `hash` (and so needs the key file read).
    pub fn needs_key(&self) -> bool {
        self.rules.iter().any(|r| r.style == MaskStyleKind::Hash)
    }

    /// The key from the key file's contents: trailing whitespace (a newline
    /// from `echo` or an editor) is dropped; the rest is used as raw bytes.
    pub fn key_from_file(contents: &[u8]) -> Result<&[u8], MaskError> {
        let key = contents.trim_ascii_end();
        if key.len() < MIN_KEY_LEN {
            return Err(MaskError::KeyTooShort {
                len: key.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(key)
    }

    /// Checks everything that does not need the key file's contents.
    pub fn validate(&self) -> Result<(), MaskError> {
        if self.rules.len() > MAX_RULES {
            return Err(MaskError::TooMany {
                field: "masking.rules".into(),
                count: self.rules.len(),
                max: MAX_RULES,
            });
        }
        if self.custom.len() > MAX_CUSTOM {
            return Err(MaskError::TooMany {
                field: "masking.custom".into(),
                count: self.custom.len(),
                max: MAX_CUSTOM,
            });
        }
        let mut custom_names = HashSet::new();
        for (i, c) in self.custom.iter().enumerate() {
            let field = |f: &str| format!("masking.custom[{i}].{f}");
            if c.name.is_empty() {
                return Err(MaskError::Empty {
                    field: field("name"),
                });
            }
            if Builtin::from_name(&c.name).is_some() {
                return Err(MaskError::ShadowsBuiltin {
                    field: field("name"),
                    name: c.name.clone(),
                });
            }
            if !custom_names.insert(c.name.as_str()) {
                return Err(MaskError::DuplicateName {
                    field: field("name"),
                    name: c.name.clone(),
                });
            }
            compile_regex(&c.regex).map_err(|source| MaskError::BadRegex {
                field: field("regex"),
                source,
            })?;
            if c.anchor.as_deref() == Some("") {
                return Err(MaskError::Empty {
                    field: field("anchor"),
                });
            }
        }
        let mut rule_names = HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let field = |f: &str| format!("masking.rules[{i}].{f}");
            if r.name.is_empty() {
                return Err(MaskError::Empty {
                    field: field("name"),
                });
            }
            if !rule_names.insert(r.name.as_str()) {
                return Err(MaskError::DuplicateName {
                    field: field("name"),
                    name: r.name.clone(),
                });
            }
            if r.columns.is_empty() && r.detectors.is_empty() && r.json_paths.is_empty() {
                return Err(MaskError::NothingToMask {
                    field: format!("masking.rules[{i}]"),
                });
            }
            for (k, p) in r.json_paths.iter().enumerate() {
                super::pointer::Pointer::parse(p).map_err(|source| MaskError::BadPointer {
                    field: field(&format!("json_paths[{k}]")),
                    pointer: p.clone(),
                    source,
                })?;
            }
            for (k, glob) in r.columns.iter().enumerate() {
                column_glob(glob).map_err(|source| MaskError::BadGlob {
                    field: field(&format!("columns[{k}]")),
                    glob: glob.clone(),
                    source,
                })?;
            }
            for (k, d) in r.detectors.iter().enumerate() {
                if Builtin::from_name(d).is_none() && !custom_names.contains(d.as_str()) {
                    return Err(MaskError::UnknownDetector {
                        field: field(&format!("detectors[{k}]")),
                        name: d.clone(),
                    });
                }
            }
            r.validate_style_fields(&field)?;
            if r.style == MaskStyleKind::Hash && self.key_file.is_none() {
                return Err(MaskError::MissingKeyFile {
                    field: field("style"),
                });
            }
        }
        Ok(())
    }
}

impl MaskRuleConfig {
    fn validate_style_fields(&self, field: &dyn Fn(&str) -> String) -> Result<(), MaskError> {
        let style = self.style.name();
        let not_for = |f: &str, applies_to| MaskError::NotForStyle {
            field: field(f),
            applies_to,
            style,
        };
        if self.keep.is_some() && self.style != MaskStyleKind::Partial {
            return Err(not_for("keep", "partial"));
        }
        if self.replacement.is_some() && self.style != MaskStyleKind::Redact {
            return Err(not_for("replacement", "redact"));
        }
        if self.preserve_length && self.style != MaskStyleKind::Redact {
            return Err(not_for("preserve_length", "redact"));
        }
        if let Some(keep) = self.keep.filter(|&k| k > MAX_KEEP) {
            return Err(MaskError::TooLarge {
                field: field("keep"),
                value: keep,
                max: MAX_KEEP,
            });
        }
        if let Some(r) = &self.replacement
            && r.len() > MAX_REPLACEMENT
        {
            {
                return Err(MaskError::TooLarge {
                    field: field("replacement"),
                    value: r.len(),
                    max: MAX_REPLACEMENT,
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn compile_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Column globs match case-insensitively, and `*` crosses `/` and `.` since
/// column names are not paths.
pub(crate) fn column_glob(glob: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(glob)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
key_file = "/etc/tollgate/mask.key"
[[rules]]
name = "pii"
columns = ["ssn", "*_ssn", "email"]
detectors = ["email", "card", "us_ssn", "employee_id"]
style = "partial"
keep = 4
exempt_groups = ["auditors"]
[[rules]]
name = "secrets"
detectors = ["jwt", "aws_access_key"]
style = "hash"
[[custom]]
name = "employee_id"
regex = "EMP-[0-9]{6}"
anchor = "EMP-"
"#;

    fn example() -> MaskingConfig {
        toml::from_str(EXAMPLE).unwrap()
    }

    #[test]
    fn example_parses_and_validates() {
        let cfg = example();
        cfg.validate().unwrap();
        assert!(cfg.needs_key());
        assert_eq!(cfg.rules[0].keep, Some(4));
        assert_eq!(cfg.custom[0].anchor.as_deref(), Some("EMP-"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<MaskingConfig>("[[rules]]\nname='a'\nstyle='null'\nkep=4\n");
        assert!(err.unwrap_err().to_string().contains("kep"));
        assert!(toml::from_str::<MaskingConfig>("[[rules]]\nname='a'\nstyle='blur'\n").is_err());
    }

    fn err_of(edit: impl FnOnce(&mut MaskingConfig)) -> String {
        let mut cfg = example();
        edit(&mut cfg);
        cfg.validate().unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let e = err_of(|c| c.rules[0].detectors.push("passport".into()));
        assert!(
            e.starts_with("masking.rules[0].detectors[4]") && e.contains("passport"),
            "{e}"
        );
        let e = err_of(|c| c.rules[0].columns.push("[".into()));
        assert!(e.starts_with("masking.rules[0].columns[3]"), "{e}");
        let e = err_of(|c| c.custom[0].regex = "(".into());
        assert!(e.starts_with("masking.custom[0].regex"), "{e}");
        let e = err_of(|c| c.rules[1].keep = Some(2));
        assert!(
            e.starts_with("masking.rules[1].keep") && e.contains("partial"),
            "{e}"
        );
        let e = err_of(|c| c.key_file = None);
        assert!(e.starts_with("masking.rules[1].style"), "{e}");
        let e = err_of(|c| c.rules[1].name = "pii".into());
        assert!(e.starts_with("masking.rules[1].name"), "{e}");
        let e = err_of(|c| c.custom[0].name = "email".into());
        assert!(e.starts_with("masking.custom[0].name"), "{e}");
        let e = err_of(|c| {
            c.rules[1].detectors.clear();
        });
        assert!(e.starts_with("masking.rules[1]:"), "{e}");
        let e = err_of(|c| c.rules[0].json_paths.push("users/*".into()));
        assert!(
            e.starts_with("masking.rules[0].json_paths[0]") && e.contains("must start with"),
            "{e}"
        );
        let mut only_paths = example();
        only_paths.rules[1].detectors.clear();
        only_paths.rules[1].json_paths.push("/a/**/token".into());
        only_paths.validate().expect("json_paths alone is enough");
        let e = err_of(|c| c.rules[0].keep = Some(MAX_KEEP + 1));
        assert!(e.contains("over the maximum"), "{e}");
    }

    #[test]
    fn key_file_contents() {
        assert_eq!(
            MaskingConfig::key_from_file(b"0123456789abcdef\n").unwrap(),
            b"0123456789abcdef"
        );
        assert!(matches!(
            MaskingConfig::key_from_file(b"short\n"),
            Err(MaskError::KeyTooShort {
                len: 5,
                min: MIN_KEY_LEN
            })
        ));
    }
}
