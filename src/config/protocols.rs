//! The protocols a target may speak, and what each adds to the settings
//! every target shares: the one place in the configuration that names them
//! all (the pipeline's registry, `crate::pipeline::protocols`, is the other).
//! A protocol's own keys live in its sub-table (`[target.postgres]`,
//! `[target.mysql]`), checked by its module here (`postgres.rs`,
//! `mysql.rs`, `tcp.rs`).

use std::fmt;

use serde::Deserialize;

use super::raw::RawTarget;
use super::target::TargetCheck;
use super::{ConfigError, TargetConfig, Validator, http, mysql, postgres, ssh, tcp};
use crate::identity::IdentityConfig;

/// The wire protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A byte relay: no inspection, identity from mTLS (or explicitly none, on loopback).
    Tcp,
    /// PostgreSQL v3: token in, stored credential out, policy on every message.
    Postgres,
    /// MySQL/MariaDB: token in, stored credential out, policy on every
    /// command (`[target.mysql]`, `crate::mysql`).
    Mysql,
    /// HTTP/1.1: bearer token in, stored credential out, rules on method
    /// and path (`[target.http]`, `crate::http`).
    Http,
    /// SSH: token as the password, stored key or password out, rules on
    /// each exec (`[target.ssh]`, `crate::ssh`).
    Ssh,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Postgres => f.write_str("postgres"),
            Protocol::Mysql => f.write_str("mysql"),
            Protocol::Http => f.write_str("http"),
            Protocol::Ssh => f.write_str("ssh"),
        }
    }
}

impl Protocol {
    /// Every protocol a target may name (the engine's registry must serve each).
    pub const ALL: [Protocol; 5] = [
        Protocol::Tcp,
        Protocol::Postgres,
        Protocol::Mysql,
        Protocol::Http,
        Protocol::Ssh,
    ];

    /// Whether callers identify by client certificate on the target's TLS
    /// listener (the mTLS CA is then required of them); otherwise they
    /// present a token.
    pub fn callers_by_certificate(self) -> bool {
        match self {
            Protocol::Tcp => tcp::CALLERS_BY_CERTIFICATE,
            Protocol::Postgres => postgres::CALLERS_BY_CERTIFICATE,
            Protocol::Mysql => mysql::CALLERS_BY_CERTIFICATE,
            Protocol::Http => http::CALLERS_BY_CERTIFICATE,
            Protocol::Ssh => ssh::CALLERS_BY_CERTIFICATE,
        }
    }
}

impl TargetConfig {
    /// Whether this target's callers identify by client certificate (the
    /// protocol's rule, or an http target with `identity = "mtls"`).
    pub fn callers_by_certificate(&self) -> bool {
        self.protocol.callers_by_certificate()
            || self
                .http
                .as_ref()
                .is_some_and(|h| h.identity == http::CallerIdentity::Mtls)
    }
}

/// The protocol's own keys and rules: its sub-table into `t`, its
/// requirements of the common keys checked.
pub(super) fn finish(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &mut TargetConfig,
    deprecations: &mut Vec<String>,
) -> Result<(), ConfigError> {
    foreign_tables(c, raw, t)?;
    // Held until a reviewer lets the session in: the SQL protocols only.
    if t.require_approval_to_connect && !matches!(t.protocol, Protocol::Postgres | Protocol::Mysql)
    {
        return Err(c.err(
            "require_approval_to_connect",
            "require_approval_to_connect",
            "approval to connect is available on postgres and mysql targets",
        ));
    }
    if t.protocol != Protocol::Postgres {
        postgres::legacy_keys_unused(c, raw, t, deprecations);
    }
    match t.protocol {
        Protocol::Postgres => postgres::finish(c, raw, t, deprecations),
        Protocol::Mysql => mysql::finish(c, raw, t),
        Protocol::Http => http::finish(c, raw, t),
        Protocol::Ssh => ssh::finish(c, raw, t),
        Protocol::Tcp => tcp::finish(c, t),
    }
}

/// A protocol's sub-table (`[target.postgres]`, ...) on a target of
/// another protocol is refused.
fn foreign_tables(
    c: &TargetCheck<'_>,
    raw: &RawTarget,
    t: &TargetConfig,
) -> Result<(), ConfigError> {
    let tables = [
        (Protocol::Postgres, "postgres", raw.postgres.is_some()),
        (Protocol::Mysql, "mysql", raw.mysql.is_some()),
        (Protocol::Http, "http", raw.http.is_some()),
        (Protocol::Ssh, "ssh", raw.ssh.is_some()),
    ];
    for (protocol, key, set) in tables {
        if set && protocol != t.protocol {
            return Err(c.err(
                key,
                key,
                &format!(
                    "[target.{key}] is for {key} targets; this one is {}",
                    t.protocol
                ),
            ));
        }
    }
    Ok(())
}

/// What the protocol requires of `[identity]`.
pub(super) fn with_identity(
    v: &Validator<'_>,
    i: usize,
    t: &TargetConfig,
    identity: &IdentityConfig,
) -> Result<(), ConfigError> {
    let c = TargetCheck { v, i };
    match t.protocol {
        Protocol::Postgres | Protocol::Mysql => postgres::with_identity(&c, t, identity),
        Protocol::Http => http::with_identity(&c, t, identity),
        Protocol::Ssh => ssh::with_identity(&c, t, identity),
        Protocol::Tcp => tcp::with_identity(&c, t, identity),
    }
}

/// The name a caller picks its target by on a listener several targets
/// share (postgres, mysql: the database; http: the host and path prefix;
/// ssh: the target's name, as `LOGIN+TARGET` in the SSH user name);
/// `None`: the target has its listener to itself.
pub(super) fn route(t: &TargetConfig) -> Option<String> {
    match (&t.postgres, &t.mysql, &t.http, &t.ssh) {
        (Some(p), _, _, _) => Some(p.database.clone()),
        (_, Some(m), _, _) => Some(m.database.clone()),
        (_, _, Some(h), _) => match (&h.host, &h.path_prefix) {
            (None, None) => None,
            (host, prefix) => Some(format!(
                "{}{}",
                host.as_deref().unwrap_or("*"),
                prefix.as_deref().unwrap_or("/")
            )),
        },
        (_, _, _, Some(_)) => Some(t.name.clone()),
        _ => None,
    }
}
