//! The `[identity]` configuration as it appears in the TOML file, and its validation.
//!
//! ```toml
//! [identity]
//! cache_size = 10000
//! revocation_file = "/var/lib/tollgate/revocations.json"   # optional
//! [[identity.issuer]]
//! name = "ci"
//! issuer = "https://ci.example"          # the iss claim
//! audience = ["tollgate"]
//! jwks_file = "/etc/tollgate/ci-jwks.json"    # exactly one of jwks_file / discovery / hs256_secret_file
//! max_lifetime = "1h"
//! leeway = "30s"
//! groups_claim = "groups"
//! [identity.mtls]
//! ca_file = "/etc/tollgate/clients-ca.pem"
//! [[identity.mtls.map]]
//! pattern = "spiffe://prod.example/ns/ci/*"
//! groups = ["ci"]
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// A configuration value that cannot be used; `field` is the TOML path of the culprit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration `{field}`: {reason}")]
pub struct IdentityConfigError {
    pub field: String,
    pub reason: String,
}

impl IdentityConfigError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Largest accepted `cache_size`: a bound on per-shard memory, not a tuning hint.
pub const MAX_CACHE_SIZE: usize = 10_000_000;
/// A leeway beyond this makes `exp` meaningless for short-lived tokens.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Short-lived means short-lived: even an explicit `max_lifetime` cannot exceed a day.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// `[identity]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Verified tokens kept per shard.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Watched revocation list (JSON, or TOML when the name ends in `.toml`).
    #[serde(default)]
    pub revocation_file: Option<PathBuf>,
    /// `[[identity.issuer]]`: token issuers, routed by the token's `iss` claim.
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<IssuerConfig>,
    /// `[identity.mtls]`: workload certificates.
    #[serde(default)]
    pub mtls: Option<MtlsConfig>,
    /// `[identity.ssh]`: SSH user certificate CAs and listed public keys
    /// (`crate::identity::sshcert`).
    #[serde(default)]
    pub ssh: Option<crate::identity::sshcert::SshIdentityConfig>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            cache_size: default_cache_size(),
            revocation_file: None,
            issuers: Vec::new(),
            mtls: None,
            ssh: None,
        }
    }
}

/// `[[identity.issuer]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Short name for logs and audit records.
    pub name: String,
    /// The exact `iss` claim value.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one of them.
    pub audience: Vec<String>,
    /// A JWKS file on disk, re-read when it changes.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// OIDC discovery base URL (`https://`); `/.well-known/openid-configuration` is appended.
    #[serde(default)]
    pub discovery: Option<String>,
    /// Trust roots for the discovery fetches (replaces Mozilla's roots when set).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A shared secret: the only way HS256 is ever accepted, and then only HS256.
    #[serde(default)]
    pub hs256_secret_file: Option<PathBuf>,
    /// Scheduled re-fetch of discovered keys.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Rate limit on fetches triggered by unknown `kid`s and on retries after failures.
    #[serde(default = "default_refresh_min_interval", with = "humantime_serde")]
    pub refresh_min_interval: Duration,
    /// How long keys keep being served after the last successful fetch when the issuer is unreachable.
    #[serde(default = "default_stale_for", with = "humantime_serde")]
    pub stale_for: Duration,
    /// Longest accepted `exp - iat`.
    #[serde(default = "default_max_lifetime", with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// Claim holding the groups: a top-level name (tried whole first, so URL-named claims with
    /// dots work), else a dotted path into nested objects (`realm_access.roles`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Refuse tokens without the groups claim (otherwise: no groups).
    #[serde(default)]
    pub groups_required: bool,
}

impl IssuerConfig {
    /// A config with defaults for everything but the identity of the issuer and its keys.
    pub fn new(name: &str, issuer: &str, audience: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.iter().map(|a| (*a).to_owned()).collect(),
            jwks_file: None,
            discovery: None,
            ca_file: None,
            hs256_secret_file: None,
            refresh: default_refresh(),
            refresh_min_interval: default_refresh_min_interval(),
            stale_for: default_stale_for(),
            max_lifetime: default_max_lifetime(),
            leeway: default_leeway(),
            groups_claim: default_groups_claim(),
            groups_required: false,
        }
    }
}

/// `[identity.mtls]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    /// CA bundle client certificates must chain to; when set, listeners require client certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Identity patterns to groups.
    #[serde(default)]
    pub map: Vec<MtlsMapping>,
}

/// `[[identity.mtls.map]]`: a glob over the certificate's identity (`*` stays within one `/`
/// segment, `**` crosses segments) and the groups it grants.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MtlsMapping {
    pub pattern: String,
    pub groups: Vec<String>,
}

fn default_cache_size() -> usize {
    10_000
}
fn default_refresh() -> Duration {
    Duration::from_secs(600)
}
fn default_refresh_min_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_stale_for() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_max_lifetime() -> Duration {
    Duration::from_secs(3600)
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_groups_claim() -> String {
    "groups".to_owned()
}

impl IdentityConfig {
    /// Checks everything that can be checked without touching the network or the disk.
    pub fn validate(&self) -> Result<(), IdentityConfigError> {
        if self.cache_size == 0 || self.cache_size > MAX_CACHE_SIZE {
            return Err(IdentityConfigError::new(
                "identity.cache_size",
                format!("must be between 1 and {MAX_CACHE_SIZE}"),
            ));
        }
        let mut names = HashSet::new();
        let mut iss_values = HashSet::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let at = |f: &str| format!("identity.issuer[{i}].{f}");
            issuer.validate(&at)?;
            if !names.insert(issuer.name.as_str()) {
                return Err(IdentityConfigError::new(
                    at("name"),
                    format!("duplicate issuer name {:?}", issuer.name),
                ));
            }
            if !iss_values.insert(issuer.issuer.as_str()) {
                return Err(IdentityConfigError::new(
                    at("issuer"),
                    format!(
                        "{:?} is configured twice; tokens are routed by iss",
                        issuer.issuer
                    ),
                ));
            }
        }
        if let Some(mtls) = &self.mtls {
            for (i, m) in mtls.map.iter().enumerate() {
                crate::identity::authz::compile_glob(&m.pattern).map_err(|reason| {
                    IdentityConfigError::new(format!("identity.mtls.map[{i}].pattern"), reason)
                })?;
                if m.groups.iter().any(|g| g.is_empty()) {
                    return Err(IdentityConfigError::new(
                        format!("identity.mtls.map[{i}].groups"),
                        "empty group name",
                    ));
                }
            }
        }
        if let Some(ssh) = &self.ssh {
            crate::identity::sshcert::SshTrust::build(ssh)?;
        }
        Ok(())
    }
}

impl IssuerConfig {
    fn validate(&self, at: &dyn Fn(&str) -> String) -> Result<(), IdentityConfigError> {
        if self.name.is_empty() {
            return Err(IdentityConfigError::new(at("name"), "must not be empty"));
        }
        if self.issuer.is_empty() {
            return Err(IdentityConfigError::new(at("issuer"), "must not be empty"));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.is_empty()) {
            return Err(IdentityConfigError::new(
                at("audience"),
                "needs at least one non-empty audience",
            ));
        }
        let sources = [
            self.jwks_file.is_some(),
            self.discovery.is_some(),
            self.hs256_secret_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(IdentityConfigError::new(
                at("jwks_file"),
                "exactly one of jwks_file, discovery, hs256_secret_file must be set",
            ));
        }
        if let Some(url) = &self.discovery
            && !url.starts_with("https://")
        {
            return Err(IdentityConfigError::new(
                at("discovery"),
                "must be an https:// URL",
            ));
        }
        if self.ca_file.is_some() && self.discovery.is_none() {
            return Err(IdentityConfigError::new(
                at("ca_file"),
                "only used with discovery",
            ));
        }
        if self.refresh.is_zero() {
            return Err(IdentityConfigError::new(at("refresh"), "must be positive"));
        }
        if self.refresh_min_interval.is_zero() || self.refresh_min_interval > self.refresh {
            return Err(IdentityConfigError::new(
                at("refresh_min_interval"),
                "must be positive and at most `refresh`",
            ));
        }
        if self.stale_for.is_zero() {
            return Err(IdentityConfigError::new(
                at("stale_for"),
                "must be positive",
            ));
        }
        if self.max_lifetime.is_zero() || self.max_lifetime > MAX_TOKEN_LIFETIME {
            return Err(IdentityConfigError::new(
                at("max_lifetime"),
                "must be between 1s and 24h",
            ));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(IdentityConfigError::new(at("leeway"), "must be at most 5m"));
        }
        if self.groups_claim.is_empty() {
            return Err(IdentityConfigError::new(
                at("groups_claim"),
                "must not be empty",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<IdentityConfig, toml::de::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Root {
            identity: IdentityConfig,
        }
        toml::from_str::<Root>(toml_text).map(|r| r.identity)
    }

    const SAMPLE: &str = r#"
[identity]
cache_size = 500
revocation_file = "/var/lib/tollgate/revocations.json"
[[identity.issuer]]
name = "ci"
issuer = "https://ci.example"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/ci-jwks.json"
max_lifetime = "15m"
leeway = "10s"
groups_claim = "realm_access.roles"
groups_required = true
[[identity.issuer]]
name = "idp"
issuer = "https://idp.example"
audience = ["tollgate", "db"]
discovery = "https://idp.example"
ca_file = "/etc/tollgate/idp-ca.pem"
refresh = "5m"
stale_for = "2h"
[identity.mtls]
ca_file = "/etc/tollgate/clients-ca.pem"
[[identity.mtls.map]]
pattern = "spiffe://prod.example/ns/ci/*"
groups = ["ci"]
"#;

    #[test]
    fn sample_parses_with_durations_and_defaults() {
        let cfg = parse(SAMPLE).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.cache_size, 500);
        assert_eq!(cfg.issuers[0].max_lifetime, Duration::from_secs(900));
        assert_eq!(cfg.issuers[0].leeway, Duration::from_secs(10));
        assert!(cfg.issuers[0].groups_required);
        assert_eq!(cfg.issuers[1].refresh, Duration::from_secs(300));
        assert_eq!(cfg.issuers[1].leeway, Duration::from_secs(30));
        assert_eq!(cfg.issuers[1].max_lifetime, Duration::from_secs(3600));
        assert_eq!(cfg.issuers[1].groups_claim, "groups");
        assert_eq!(cfg.mtls.unwrap().map[0].groups, vec!["ci".to_owned()]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = SAMPLE.replace("leeway = \"10s\"", "leway = \"10s\"");
        assert!(parse(&text).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let mut cfg = parse(SAMPLE).unwrap();
        cfg.issuers[1].jwks_file = Some("/x".into());
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.issuer[1].jwks_file"
        );

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.issuers[0].audience.clear();
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.issuer[0].audience"
        );

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.issuers[1].issuer = cfg.issuers[0].issuer.clone();
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.issuer[1].issuer"
        );

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.issuers[1].discovery = Some("http://idp.example".into());
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.issuer[1].discovery"
        );

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.issuers[0].max_lifetime = Duration::from_secs(48 * 3600);
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.issuer[0].max_lifetime"
        );

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.cache_size = 0;
        assert_eq!(cfg.validate().unwrap_err().field, "identity.cache_size");

        let mut cfg = parse(SAMPLE).unwrap();
        cfg.mtls.as_mut().unwrap().map[0].pattern = "spiffe://{a".into();
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "identity.mtls.map[0].pattern"
        );
    }
}
