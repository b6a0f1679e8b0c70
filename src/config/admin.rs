//! `[admin]`: where the admin API listens, how it is secured, and the
//! approval settings it shares with the broker.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::approvals::{BrokerConfig, DEFAULT_TIMEOUT, MAX_GRANT};

/// A field of `[admin]` that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("admin.{field}: {message}")]
pub struct AdminConfigError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> AdminConfigError {
    AdminConfigError {
        field,
        message: message.into(),
    }
}

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: on loopback, tokenless requests act as the local
    /// operator; anywhere else TLS and an admin token are required.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Token groups allowed to use the admin endpoints.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Default reviewer groups for approvals (a target may name its own).
    #[serde(default)]
    pub reviewer_groups: Vec<String>,
    /// Where new approval requests are announced (Slack-compatible JSON).
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub approval_timeout: Duration,
    /// Where the admin plane keeps what must survive a restart (the
    /// revocations made through the API, `revocations.json`). Default:
    /// `<recorder dir>/admin-state`; with recording disabled it must be set
    /// for API revocations to be accepted.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9090";

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            admin_groups: Vec::new(),
            reviewer_groups: Vec::new(),
            webhook_url: None,
            approval_timeout: DEFAULT_TIMEOUT,
            state_dir: None,
        }
    }
}

/// Whether an address only this host can reach (IPv4-mapped loopback included).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn check_groups(field: &'static str, groups: &[String]) -> Result<(), AdminConfigError> {
    for (i, g) in groups.iter().enumerate() {
        if g.trim().is_empty() {
            return Err(err(field, format!("entry {i} is empty")));
        }
        if groups[..i].contains(g) {
            return Err(err(field, format!("{g:?} is listed twice")));
        }
    }
    Ok(())
}

impl AdminConfig {
    pub fn is_loopback(&self) -> bool {
        is_loopback(self.listen.ip())
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// Refuse settings that would expose the admin plane or make it unusable.
    pub fn validate(&self) -> Result<(), AdminConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(err("tls_key", "tls_cert is set but tls_key is not")),
            (None, Some(_)) => return Err(err("tls_cert", "tls_key is set but tls_cert is not")),
            _ => {}
        }
        if !self.is_loopback() {
            if self.tls_cert.is_none() {
                return Err(err(
                    "tls_cert",
                    format!(
                        "listen = {} is not loopback: tls_cert and tls_key are required",
                        self.listen
                    ),
                ));
            }
            if self.admin_groups.is_empty() {
                return Err(err(
                    "admin_groups",
                    format!(
                        "listen = {} is not loopback: name the token groups allowed to administer",
                        self.listen
                    ),
                ));
            }
        }
        check_groups("admin_groups", &self.admin_groups)?;
        check_groups("reviewer_groups", &self.reviewer_groups)?;
        if let Some(url) = &self.webhook_url {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(|| err("webhook_url", "must start with http:// or https://"))?;
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || host.contains('@') {
                return Err(err("webhook_url", "needs a host (and no user info)"));
            }
        }
        if self.approval_timeout < Duration::from_secs(1) || self.approval_timeout > MAX_GRANT {
            return Err(err("approval_timeout", "must be between 1s and 24h"));
        }
        if let Some(dir) = &self.state_dir
            && !dir.is_absolute()
        {
            return Err(err("state_dir", "must be an absolute path"));
        }
        Ok(())
    }

    /// The settings a running admin plane cannot take from a reload (its
    /// socket, TLS identity and state directory are set up once), each
    /// named; empty when `new` can be applied in place.
    pub fn needs_restart(&self, new: &AdminConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.listen != new.listen {
            changed.push("admin.listen");
        }
        if self.tls_cert != new.tls_cert || self.tls_key != new.tls_key {
            changed.push("admin.tls_cert/tls_key");
        }
        if self.state_dir != new.state_dir {
            changed.push("admin.state_dir");
        }
        changed
    }

    /// Broker settings taken from this table.
    pub fn broker_config(&self) -> BrokerConfig {
        BrokerConfig {
            timeout: self.approval_timeout,
            default_reviewer_groups: self.reviewer_groups.clone(),
            ..BrokerConfig::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AdminConfig, String> {
        let c: AdminConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(
            r#"
            listen = "10.0.0.5:9090"
            tls_cert = "/etc/tollgate/admin.pem"
            tls_key = "/etc/tollgate/admin.key"
            admin_groups = ["sre"]
            reviewer_groups = ["reviewers"]
            webhook_url = "http://127.0.0.1:9999/hook"
            approval_timeout = "5m"
            "#,
        )
        .unwrap();
        assert!(!c.is_loopback());
        assert_eq!(c.approval_timeout, Duration::from_secs(300));
        assert_eq!(c.broker_config().default_reviewer_groups, vec!["reviewers"]);
    }

    #[test]
    fn defaults_are_loopback_without_tls() {
        let c = parse("").unwrap();
        assert_eq!(c, AdminConfig::default());
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.is_loopback());
        assert!(parse(r#"listen = "[::1]:9""#).unwrap().is_loopback());
        assert!(
            parse(r#"listen = "[::ffff:127.0.0.1]:9""#)
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn a_reload_names_what_needs_a_restart_and_nothing_else() {
        let old = parse(r#"reviewer_groups = ["a"]"#).unwrap();
        let groups_only = parse(
            r#"reviewer_groups = ["b"]
               admin_groups = ["sre"]
               approval_timeout = "9m"
               webhook_url = "http://127.0.0.1:1/h""#,
        )
        .unwrap();
        assert!(old.needs_restart(&groups_only).is_empty());
        let moved = parse(
            r#"listen = "127.0.0.1:9"
               state_dir = "/var/lib/x""#,
        )
        .unwrap();
        assert_eq!(
            old.needs_restart(&moved),
            vec!["admin.listen", "admin.state_dir"]
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (r#"listen = "0.0.0.0:9090""#, "tls_cert"),
            (
                r#"listen = "0.0.0.0:9090"
                   tls_cert = "c"
                   tls_key = "k""#,
                "admin_groups",
            ),
            (r#"tls_cert = "c""#, "tls_key"),
            (r#"tls_key = "k""#, "tls_cert"),
            (r#"admin_groups = ["sre", "sre"]"#, "admin_groups"),
            (r#"reviewer_groups = [""]"#, "reviewer_groups"),
            (r#"webhook_url = "ftp://x""#, "webhook_url"),
            (r#"webhook_url = "http://""#, "webhook_url"),
            (r#"approval_timeout = "0s""#, "approval_timeout"),
            (r#"approval_timeout = "2days""#, "approval_timeout"),
            (r#"state_dir = "relative/dir""#, "state_dir"),
            (r#"surprise = 1"#, "surprise"),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
