//! Failed caller authentications are logged at most once a second per
//! source address (per shard), with the count of failures folded into the
//! line, so a client that never authenticates cannot flood the log: one
//! sending bad tokens as fast as it can gets one line a second, not one per
//! try, whatever the protocol. Connection refusals are folded the same way
//! (engine/shard.rs).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::warn;

/// Sources remembered per shard; past it the table is cleared (a flood from
/// many addresses then logs one line per address and second at most).
const MAX_SOURCES: usize = 4096;
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Source {
    last: Option<Instant>,
    folded: u64,
}

thread_local! {
    static SOURCES: RefCell<HashMap<IpAddr, Source>> = RefCell::new(HashMap::new());
}

/// How many earlier failures this line stands for, or `None` when this one
/// is folded into the next line from the same source.
fn admit(ip: IpAddr, now: Instant) -> Option<u64> {
    SOURCES.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() >= MAX_SOURCES && !s.contains_key(&ip) {
            s.clear();
        }
        let src = s.entry(ip).or_default();
        if src.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            src.folded += 1;
            return None;
        }
        src.last = Some(now);
        Some(std::mem::take(&mut src.folded))
    })
}

/// Logs one failed caller authentication, folded per source.
pub fn failed(
    session: &dyn std::fmt::Display,
    client: SocketAddr,
    target: &str,
    user: &str,
    reason: &dyn std::fmt::Display,
) {
    if let Some(folded) = admit(client.ip(), Instant::now()) {
        warn!(
            session = %session,
            client = %client,
            target = %target,
            user = %user,
            reason = %reason,
            folded,
            "caller authentication failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_per_source_with_the_count_folded() {
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let t0 = Instant::now();
        assert_eq!(admit(a, t0), Some(0));
        for _ in 0..1999 {
            assert_eq!(admit(a, t0 + Duration::from_millis(500)), None);
        }
        assert_eq!(admit(b, t0), Some(0), "another source is not folded");
        assert_eq!(admit(a, t0 + INTERVAL), Some(1999));
        assert_eq!(admit(a, t0 + INTERVAL), None);
    }
}
