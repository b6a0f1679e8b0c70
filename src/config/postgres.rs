//! `[target.postgres]`: the keys only a PostgreSQL target has, and what a
//! postgres target requires of the keys every target shares.
//!
//! `database` and `upstream_database` were once written in `[target]`
//! itself; they are still read from there, with a warning naming their new
//! place (and an error when both places are set).

use serde::Deserialize;

use super::raw::RawTarget;
use super::target::TargetCheck;
use super::{ConfigError, TargetConfig};
use crate::identity::IdentityConfig;

pub(super) const CALLERS_BY_CERTIFICATE: bool = false;

/// `[target.postgres]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// The database name callers ask for (the routing key); default: the target's `name`.
    database: Option<String>,
    /// The database on the upstream; default: `database`.
    upstream_database: Option<String>,
    /// `[target.postgres.pool]`: upstream connection reuse.
    pool: Option<super::pool::RawPool>,
}

/// A postgres target's own settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// The database name callers connect to; targets sharing a listener
    /// are told apart by it.
    pub database: String,
    /// The database the gateway logs in to upstream.
    pub upstream_database: String,
    /// Upstream connections reused across callers; `None`: one login per
    /// session (`crate::pg::pool`).
    pub pool: Option<super::PoolConfig>,
}

/// The keys that moved from `[target]` to `[target.postgres]`.
const MOVED: [&str; 2] = ["database", "upstream_database"];

pub(super) fn finish(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &mut TargetConfig,
    deprecations: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut sub = raw.postgres.take().unwrap_or_default();
    let legacy = [raw.database.take(), raw.upstream_database.take()];
    let new = [&mut sub.database, &mut sub.upstream_database];
    for ((key, old), new) in MOVED.into_iter().zip(legacy).zip(new) {
        let Some(old) = old else { continue };
        if new.is_some() {
            return Err(c.err(
                key,
                key,
                &format!(
                    "set both here and in [target.postgres]: keep only \
                     [target.postgres] {key}"
                ),
            ));
        }
        deprecations.push(c.moved(key, &format!("[target.postgres] {key}"), &t.name));
        *new = Some(old);
    }
    let named = sub.database.is_none();
    let database = sub.database.unwrap_or_else(|| t.name.clone());
    if database.is_empty() || database.len() > 63 || database.contains('\0') {
        let why = if named {
            "must be 1-63 bytes without NUL (unset: the target's name, which is longer)"
        } else {
            DB_NAME
        };
        return Err(c.err_in(&["postgres", "database"], "postgres.database", why));
    }
    let upstream_database = sub.upstream_database.unwrap_or_else(|| database.clone());
    if upstream_database.is_empty()
        || upstream_database.len() > 63
        || upstream_database.contains('\0')
    {
        return Err(c.err_in(
            &["postgres", "upstream_database"],
            "postgres.upstream_database",
            DB_NAME,
        ));
    }
    requires(c, t)?;
    let pool = sub.pool.map(|p| super::pool::finish(c, p)).transpose()?;
    t.postgres = Some(PostgresTarget {
        database,
        upstream_database,
        pool,
    });
    Ok(())
}

const DB_NAME: &str = "must be 1-63 bytes without NUL";

/// What a target whose callers present tokens and whose gateway logs in
/// with a stored credential (postgres, mysql) requires of the common keys.
pub(super) fn requires(c: &TargetCheck<'_>, t: &TargetConfig) -> Result<(), ConfigError> {
    if t.unauthenticated {
        return Err(c.err(
            "unauthenticated",
            "unauthenticated",
            &format!(
                "{} targets always authenticate callers by token",
                t.protocol
            ),
        ));
    }
    if t.credential.is_none() {
        return Err(c.err(
            "name",
            "credential",
            &format!(
                "a {} target needs [target.credential] (user and password_file or \
                 password_env): the gateway logs in with it",
                t.protocol
            ),
        ));
    }
    if !t.allow_plaintext && t.tls.is_none() {
        return Err(c.err(
            "listen",
            "tls",
            "this target accepts no plaintext clients (non-loopback listener, or \
             allow_plaintext = false) and has no [target.tls]: nobody could connect",
        ));
    }
    Ok(())
}

/// On a target of another protocol the old top-level keys, which never did
/// anything there, are warned about.
pub(super) fn legacy_keys_unused(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &TargetConfig,
    deprecations: &mut Vec<String>,
) {
    let legacy = [raw.database.take(), raw.upstream_database.take()];
    for (key, old) in MOVED.into_iter().zip(legacy) {
        if old.is_some() {
            deprecations.push(c.unused(key, &t.name, t.protocol));
        }
    }
}

/// Token callers (postgres, mysql) need an issuer to check tokens against.
pub(super) fn with_identity(
    c: &TargetCheck<'_>,
    t: &TargetConfig,
    identity: &IdentityConfig,
) -> Result<(), ConfigError> {
    if identity.issuers.is_empty() {
        return Err(c.err(
            "protocol",
            "protocol",
            &format!(
                "{} callers authenticate with tokens: configure at least one \
                 [[identity.issuer]]",
                t.protocol
            ),
        ));
    }
    Ok(())
}
