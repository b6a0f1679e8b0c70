//! The upstream pools' counters and gauges (`crate::pg::pool`), one set per
//! target and shard, on the metrics endpoint as `tollgate_pool_*`.
//!
//! A pool lives on its shard's thread and only that thread writes its
//! stats (relaxed atomics, as `crate::metrics`); a scrape reads them all.
//! The registry's lock is taken when a shard first uses a target's pool
//! and at scrape time, never per checkout. Labels are the target's name
//! and the shard: nothing of a caller or a credential.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Exposition;

/// One pool's numbers.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Connections asked of the pool (session mode: one per session;
    /// transaction mode: one per transaction).
    pub checkouts: AtomicU64,
    /// Checkouts that had to wait for a connection to come free.
    pub waits: AtomicU64,
    /// Checkouts that gave up after `checkout_timeout` (53300).
    pub timeouts: AtomicU64,
    /// Transaction mode: statements prepared again on a connection that
    /// lacked them.
    pub reprepares: AtomicU64,
    /// Server connections logged in for the pool.
    pub opened: AtomicU64,
    /// Server connections the pool let go (any reason, dirty included).
    pub closed: AtomicU64,
    /// Server connections closed because the release check found session
    /// state on them (transaction mode, `server_check_query`).
    pub dirty: AtomicU64,
    /// Server connections idle in the pool now.
    pub idle: AtomicU64,
    /// Server connections counted against the shard's share now: idle, in
    /// use, logging in or being checked.
    pub open: AtomicU64,
}

impl PoolStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// (target, shard, stats) for every pool any shard has used.
static REGISTRY: Mutex<Vec<(String, usize, Arc<PoolStats>)>> = Mutex::new(Vec::new());

/// The stats of `target`'s pool on `shard`, made and registered on first use.
pub(crate) fn register(target: &str, shard: usize) -> Arc<PoolStats> {
    let mut reg = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, s)) = reg.iter().find(|(t, sh, _)| t == target && *sh == shard) {
        return s.clone();
    }
    let s = Arc::new(PoolStats::default());
    reg.push((target.to_string(), shard, s.clone()));
    s
}

/// The counter families: (name, help, which counter).
type Pick = fn(&PoolStats) -> &AtomicU64;
const COUNTERS: [(&str, &str, Pick); 7] = [
    (
        "tollgate_pool_checkouts_total",
        "Upstream connections asked of the pool (per session in session mode, per transaction in transaction mode).",
        |s| &s.checkouts,
    ),
    (
        "tollgate_pool_waits_total",
        "Checkouts that waited for a connection to come free.",
        |s| &s.waits,
    ),
    (
        "tollgate_pool_timeouts_total",
        "Checkouts refused with 53300 after checkout_timeout.",
        |s| &s.timeouts,
    ),
    (
        "tollgate_pool_reprepares_total",
        "Named statements prepared again on a server connection that lacked them (transaction mode).",
        |s| &s.reprepares,
    ),
    (
        "tollgate_pool_connections_opened_total",
        "Server connections logged in for the pool.",
        |s| &s.opened,
    ),
    (
        "tollgate_pool_connections_closed_total",
        "Server connections the pool closed (lifetime, idle timeout, rotation, server gone, dirty, error).",
        |s| &s.closed,
    ),
    (
        "tollgate_pool_dirty_total",
        "Server connections closed because the release check found session state on them.",
        |s| &s.dirty,
    ),
];

/// Every pool's families, sorted by target then shard.
pub fn render(e: &mut Exposition) {
    let mut pools: Vec<(String, usize, Arc<PoolStats>)> = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if pools.is_empty() {
        return;
    }
    pools.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let pools: Vec<(String, String, Arc<PoolStats>)> = pools
        .into_iter()
        .map(|(t, sh, s)| (t, sh.to_string(), s))
        .collect();
    for (name, help, pick) in COUNTERS {
        e.family(name, "counter", help);
        for (target, shard, s) in &pools {
            let v = pick(s).load(Ordering::Relaxed);
            e.sample(name, &[("target", target), ("shard", shard)], v as f64);
        }
    }
    let name = "tollgate_pool_connections";
    e.family(
        name,
        "gauge",
        "Server connections of the pool now, by state (in_use counts those logging in or being checked).",
    );
    for (target, shard, s) in &pools {
        let open = s.open.load(Ordering::Relaxed);
        let idle = s.idle.load(Ordering::Relaxed).min(open);
        let labels = |state| {
            [
                ("target", target.as_str()),
                ("shard", shard.as_str()),
                ("state", state),
            ]
        };
        e.sample(name, &labels("idle"), idle as f64);
        e.sample(name, &labels("in_use"), (open - idle) as f64);
    }
}
