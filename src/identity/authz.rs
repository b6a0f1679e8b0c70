//! Authorization: which identities a target admits. Default deny; the decision carries the
//! rule that admitted or the reason for refusal, for the audit record.
//!
//! ```toml
//! [target.access]
//! subjects = ["spiffe://prod.example/ns/ci/**", "deploy-bot"]   # globs
//! groups = ["dba"]                                              # exact names
//! issuers = ["https://ci.example"]                              # optional restriction
//! ```
//! Subject globs: `*` and `?` stay within one `/`-separated segment, `**` crosses segments,
//! so `spiffe://prod.example/ns/ci/*` does not admit `spiffe://prod.example/ns/ci/a/b`.

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::identity::config::IdentityConfigError;

/// `[target.access]` as written in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// When non-empty, the identity's issuer must be one of these (the `iss` value for tokens,
    /// the issuer DN for certificates).
    #[serde(default)]
    pub issuers: Vec<String>,
}

/// Compiles an identity glob with the segment rules described in the module docs.
pub(crate) fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() {
        return Err("empty pattern".into());
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|e| e.to_string())
}

/// A compiled [`AccessConfig`].
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    subjects: Vec<(String, GlobMatcher)>,
    groups: Vec<String>,
    issuers: Vec<String>,
}

/// Why a target admitted an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// The subject matched this pattern.
    Subject { pattern: String },
    /// The identity carries this group.
    Group { group: String },
}

/// Why a target refused an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The target lists no subjects and no groups: it admits nobody.
    NoRules,
    /// The identity's issuer is not in the target's `issuers`.
    IssuerNotListed { issuer: String },
    /// No subject pattern and no group matched.
    NoMatch,
}

/// The outcome, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision {
    Admit(Admitted),
    Refuse(Refused),
}

impl AccessDecision {
    pub fn is_admitted(&self) -> bool {
        matches!(self, Self::Admit(_))
    }
}

impl std::fmt::Display for AccessDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admit(Admitted::Subject { pattern }) => {
                write!(f, "admitted: subject matches {pattern:?}")
            }
            Self::Admit(Admitted::Group { group }) => {
                write!(f, "admitted: member of group {group:?}")
            }
            Self::Refuse(Refused::NoRules) => {
                write!(f, "refused: target admits nobody (no subjects or groups)")
            }
            Self::Refuse(Refused::IssuerNotListed { issuer }) => {
                write!(f, "refused: issuer {issuer:?} not listed")
            }
            Self::Refuse(Refused::NoMatch) => {
                write!(f, "refused: no subject or group rule matches")
            }
        }
    }
}

impl AccessPolicy {
    /// Compiles the config; `field` is the TOML path used in errors (e.g. `target.pg.access`).
    pub fn compile(cfg: &AccessConfig, field: &str) -> Result<Self, IdentityConfigError> {
        let mut subjects = Vec::with_capacity(cfg.subjects.len());
        for (i, p) in cfg.subjects.iter().enumerate() {
            let m = compile_glob(p).map_err(|reason| {
                IdentityConfigError::new(format!("{field}.subjects[{i}]"), reason)
            })?;
            subjects.push((p.clone(), m));
        }
        for (i, g) in cfg.groups.iter().enumerate() {
            if g.is_empty() {
                return Err(IdentityConfigError::new(
                    format!("{field}.groups[{i}]"),
                    "empty group name",
                ));
            }
        }
        for (i, s) in cfg.issuers.iter().enumerate() {
            if s.is_empty() {
                return Err(IdentityConfigError::new(
                    format!("{field}.issuers[{i}]"),
                    "empty issuer",
                ));
            }
        }
        Ok(Self {
            subjects,
            groups: cfg.groups.clone(),
            issuers: cfg.issuers.clone(),
        })
    }

    /// Decides whether `id` may use the target. Subject rules are tried before group rules,
    /// each in configuration order, so the reported rule is deterministic.
    pub fn decide(&self, id: &Identity) -> AccessDecision {
        if self.subjects.is_empty() && self.groups.is_empty() {
            return AccessDecision::Refuse(Refused::NoRules);
        }
        if !self.issuers.is_empty() && !self.issuers.contains(&id.issuer) {
            return AccessDecision::Refuse(Refused::IssuerNotListed {
                issuer: id.issuer.clone(),
            });
        }
        if let Some((pattern, _)) = self.subjects.iter().find(|(_, m)| m.is_match(&id.subject)) {
            return AccessDecision::Admit(Admitted::Subject {
                pattern: pattern.clone(),
            });
        }
        if let Some(group) = self
            .groups
            .iter()
            .find(|g| id.groups.iter().any(|have| have == *g))
        {
            return AccessDecision::Admit(Admitted::Group {
                group: group.clone(),
            });
        }
        AccessDecision::Refuse(Refused::NoMatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::IdentitySource;

    fn id(sub: &str, iss: &str, groups: &[&str]) -> Identity {
        Identity {
            subject: sub.into(),
            issuer: iss.into(),
            groups: groups.iter().map(|g| (*g).into()).collect(),
            token_id: None,
            expires_at: None,
            source: IdentitySource::Token,
        }
    }

    fn policy(subjects: &[&str], groups: &[&str], issuers: &[&str]) -> AccessPolicy {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect();
        AccessPolicy::compile(
            &AccessConfig {
                subjects: v(subjects),
                groups: v(groups),
                issuers: v(issuers),
            },
            "t",
        )
        .unwrap()
    }

    #[test]
    fn default_deny() {
        let p = policy(&[], &[], &["https://ci"]);
        assert_eq!(
            p.decide(&id("a", "https://ci", &["x"])),
            AccessDecision::Refuse(Refused::NoRules)
        );
    }

    #[test]
    fn subject_glob_and_group_admit_with_reason() {
        let p = policy(&["spiffe://prod/ns/ci/*"], &["dba"], &[]);
        assert_eq!(
            p.decide(&id("spiffe://prod/ns/ci/runner", "i", &[])),
            AccessDecision::Admit(Admitted::Subject {
                pattern: "spiffe://prod/ns/ci/*".into()
            })
        );
        assert_eq!(
            p.decide(&id("spiffe://prod/ns/ci/a/b", "i", &[])),
            AccessDecision::Refuse(Refused::NoMatch)
        );
        assert_eq!(
            p.decide(&id("bob", "i", &["dev", "dba"])),
            AccessDecision::Admit(Admitted::Group {
                group: "dba".into()
            })
        );
        assert_eq!(
            p.decide(&id("bob", "i", &["dev"])),
            AccessDecision::Refuse(Refused::NoMatch)
        );
        let deep = policy(&["spiffe://prod/ns/ci/**"], &[], &[]);
        assert!(
            deep.decide(&id("spiffe://prod/ns/ci/a/b", "i", &[]))
                .is_admitted()
        );
    }

    #[test]
    fn issuer_restriction() {
        let p = policy(&["*"], &[], &["https://ci"]);
        assert!(p.decide(&id("a", "https://ci", &[])).is_admitted());
        assert_eq!(
            p.decide(&id("a", "https://idp", &[])),
            AccessDecision::Refuse(Refused::IssuerNotListed {
                issuer: "https://idp".into()
            })
        );
    }

    #[test]
    fn bad_glob_names_field() {
        let cfg = AccessConfig {
            subjects: vec!["ok".into(), "a{".into()],
            ..Default::default()
        };
        assert_eq!(
            AccessPolicy::compile(&cfg, "target.pg.access")
                .unwrap_err()
                .field,
            "target.pg.access.subjects[1]"
        );
    }
}
