//! `[target.postgres.pool]`: upstream connection reuse for a PostgreSQL
//! target (`crate::pg::pool`). Session mode: a server connection serves
//! one caller for the caller's whole session, then is reset
//! (`reset_query`) and kept for the next caller. Transaction mode: a
//! caller holds one only while in a transaction (no reset query runs).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::target::TargetCheck;

/// `[target.postgres.pool]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    mode: Option<String>,
    size: Option<usize>,
    min_idle: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    max_lifetime: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    checkout_timeout: Option<Duration>,
    reset_query: Option<String>,
    server_check_query: Option<String>,
}

/// How long a server connection is held by a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// For the caller's whole session (pgbouncer's `pool_mode = session`).
    Session,
    /// For one transaction at a time (`pool_mode = transaction`).
    Transaction,
}

/// A target's pool, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub mode: PoolMode,
    /// Server connections of the target at most, all shards together: each
    /// shard holds its share (`share`).
    pub size: usize,
    /// Idle connections kept open ahead of demand (0 only, in this slice).
    pub min_idle: usize,
    /// A server connection older than this is closed instead of reused.
    pub max_lifetime: Duration,
    /// An idle server connection unused this long is closed.
    pub idle_timeout: Duration,
    /// How long a caller waits for a connection when the pool is full.
    pub checkout_timeout: Duration,
    /// Run on a connection the caller left idle, before the next caller.
    pub reset_query: String,
    /// Transaction mode: run on a server connection each time it goes
    /// back, before the next caller may have it; a connection whose answer
    /// is not one row starting with `true` is closed (`None`: no check).
    pub server_check_query: Option<String>,
}

/// The release check run by default in transaction mode (measured in
/// README, "Transaction mode"). Its first column is `true` when the
/// connection holds no session state that a statement could have left
/// behind unseen (in a function, a `DO` block, a trigger): no temporary
/// namespace (a temporary relation was made), no session advisory lock, no
/// `LISTEN`, no open cursor (`WITH HOLD`), no SQL-level prepared statement,
/// no `SET ROLE`; its second names what was found, for the log. Then
/// `RESET ALL` returns every setting to what the connection logged in with
/// (a changed setting the server reports — `TimeZone`, `DateStyle`,
/// `application_name`, … — shows as a ParameterStatus and counts as found).
/// Finding changed settings that the server does not report (`search_path`,
/// custom `app.*`) needs `pg_settings` (about 1 ms a check, against 0.2 ms
/// for this one): they are reset, not counted.
pub const DEFAULT_SERVER_CHECK: &str = "SELECT r AND l AND n AND c AND p AND u, \
concat_ws(' ', CASE WHEN NOT r THEN 'temporary_namespace' END, CASE WHEN NOT l THEN 'advisory_locks' END, \
CASE WHEN NOT n THEN 'listen' END, CASE WHEN NOT c THEN 'cursors' END, \
CASE WHEN NOT p THEN 'prepared_statements' END, CASE WHEN NOT u THEN 'role' END) FROM (SELECT \
pg_my_temp_schema() = 0 AS r, \
NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS l, \
NOT EXISTS (SELECT FROM pg_listening_channels()) AS n, \
NOT EXISTS (SELECT FROM pg_cursors) AS c, \
NOT EXISTS (SELECT FROM pg_prepared_statements WHERE from_sql) AS p, \
current_user = session_user AS u) AS tollgate_server_check; RESET ALL";

impl PoolConfig {
    /// Shard `shard`'s share of `size` among `shards`: the size split as
    /// evenly as it goes, lower shards taking the remainder, at least one.
    pub fn share(&self, shard: usize, shards: usize) -> usize {
        let shards = shards.max(1);
        let base = self.size / shards;
        let extra = usize::from(shard < self.size % shards);
        (base + extra).max(1)
    }
}

/// The largest pool a target may ask for (PostgreSQL's own cap on
/// connections is far lower in practice).
const MAX_SIZE: usize = 100_000;

pub(super) fn finish(c: &TargetCheck<'_>, raw: RawPool) -> Result<PoolConfig, ConfigError> {
    let at = |key: &str, why: &str| {
        c.err_in(
            &["postgres", "pool", key],
            &format!("postgres.pool.{key}"),
            why,
        )
    };
    let mode = match raw.mode.as_deref().unwrap_or("session") {
        "session" => PoolMode::Session,
        "transaction" => PoolMode::Transaction,
        "statement" => {
            return Err(at(
                "mode",
                "\"statement\" is not supported (use \"transaction\" or \"session\")",
            ));
        }
        _ => return Err(at("mode", "must be \"session\" or \"transaction\"")),
    };
    let size = raw.size.unwrap_or(20);
    if size == 0 || size > MAX_SIZE {
        return Err(at("size", "must be 1-100000"));
    }
    let min_idle = raw.min_idle.unwrap_or(0);
    if min_idle != 0 {
        return Err(at("min_idle", "only 0 is supported so far"));
    }
    let positive = |key: &str, d: Option<Duration>, default: u64| {
        let d = d.unwrap_or(Duration::from_secs(default));
        if d.is_zero() {
            Err(at(key, "must be above zero"))
        } else {
            Ok(d)
        }
    };
    let max_lifetime = positive("max_lifetime", raw.max_lifetime, 3600)?;
    let idle_timeout = positive("idle_timeout", raw.idle_timeout, 600)?;
    let checkout_timeout = positive("checkout_timeout", raw.checkout_timeout, 5)?;
    let reset_query = raw.reset_query.unwrap_or_else(|| "DISCARD ALL".into());
    if reset_query.trim().is_empty() || reset_query.len() > 4096 || reset_query.contains('\0') {
        return Err(at("reset_query", "must be 1-4096 bytes of SQL without NUL"));
    }
    let server_check_query = match raw.server_check_query {
        None => Some(DEFAULT_SERVER_CHECK.to_string()),
        Some(q) if q.trim().is_empty() => None,
        Some(q) if q.len() > 4096 || q.contains('\0') => {
            return Err(at(
                "server_check_query",
                "must be at most 4096 bytes of SQL without NUL (\"\" turns the check off)",
            ));
        }
        Some(q) => Some(q),
    };
    Ok(PoolConfig {
        mode,
        size,
        min_idle,
        max_lifetime,
        idle_timeout,
        checkout_timeout,
        reset_query,
        server_check_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: usize) -> PoolConfig {
        PoolConfig {
            mode: PoolMode::Session,
            size,
            min_idle: 0,
            max_lifetime: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            checkout_timeout: Duration::from_secs(1),
            reset_query: "DISCARD ALL".into(),
            server_check_query: None,
        }
    }

    #[test]
    fn shares_add_up_to_the_size() {
        for (size, shards) in [(10, 2), (10, 3), (7, 4), (100, 16)] {
            let c = cfg(size);
            let sum: usize = (0..shards).map(|s| c.share(s, shards)).sum();
            assert_eq!(sum, size, "size {size} over {shards} shards");
        }
        // Fewer connections than shards: each shard still gets one.
        assert_eq!(cfg(2).share(3, 4), 1);
    }
}
