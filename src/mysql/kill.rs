//! `KILL` ids, mapped like PostgreSQL cancel keys: the greeting gives each
//! caller a gateway id for its session, and a `KILL [QUERY|CONNECTION] n`
//! passes only when `n` names a live session (by its gateway id or its
//! upstream connection id) of the same subject on the same target; it is
//! then rewritten with the upstream's id. A caller cannot kill another's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A live session a KILL may name.
#[derive(Debug, Clone)]
struct Live {
    target: String,
    subject: String,
    upstream_id: u32,
}

/// Every live MySQL session of this process, shared by the shards (a KILL
/// comes on another connection, on whichever shard).
#[derive(Default)]
pub(crate) struct KillMap {
    next: AtomicU32,
    live: Mutex<HashMap<u32, Live>>,
}

/// Removes a session from the map when it ends.
pub(crate) struct Registered<'a> {
    map: &'a KillMap,
    id: u32,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.live.lock() {
            m.remove(&self.id);
        }
    }
}

impl KillMap {
    /// A fresh gateway id for a greeting (never 0).
    pub fn next_id(&self) -> u32 {
        loop {
            let id = self.next.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    pub fn register(
        &self,
        id: u32,
        target: &str,
        subject: &str,
        upstream_id: u32,
    ) -> Registered<'_> {
        if let Ok(mut m) = self.live.lock() {
            m.insert(
                id,
                Live {
                    target: target.to_string(),
                    subject: subject.to_string(),
                    upstream_id,
                },
            );
        }
        Registered { map: self, id }
    }

    /// The upstream id a KILL of `n` by `subject` on `target` may name.
    pub fn resolve(&self, n: u64, target: &str, subject: &str) -> Option<u32> {
        let m = self.live.lock().ok()?;
        let mine = |l: &&Live| l.target == target && l.subject == subject;
        if let Ok(id) = u32::try_from(n)
            && let Some(l) = m.get(&id).filter(mine)
        {
            return Some(l.upstream_id);
        }
        m.values()
            .filter(mine)
            .find(|l| u64::from(l.upstream_id) == n)
            .map(|l| l.upstream_id)
    }
}

/// `KILL [HARD|SOFT] [QUERY|CONNECTION] n` as one plain statement: whether
/// it kills only the query, and `n`. Anything else (comments, `USER`,
/// `QUERY ID`, expressions) is not read.
pub(crate) fn parse_kill(sql: &[u8]) -> Option<(bool, u64)> {
    let text = std::str::from_utf8(sql).ok()?;
    let text = text.trim().trim_end_matches(';').trim_end();
    let mut words = text.split_ascii_whitespace().peekable();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    if words
        .peek()
        .is_some_and(|w| w.eq_ignore_ascii_case("hard") || w.eq_ignore_ascii_case("soft"))
    {
        words.next();
    }
    let mut query = false;
    if let Some(w) = words.peek() {
        if w.eq_ignore_ascii_case("query") {
            query = true;
            words.next();
        } else if w.eq_ignore_ascii_case("connection") {
            words.next();
        }
    }
    let n = words.next()?;
    if words.next().is_some() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((query, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements_are_read_only_in_their_plain_forms() {
        assert_eq!(parse_kill(b"KILL 5"), Some((false, 5)));
        assert_eq!(parse_kill(b" kill query 7 ;"), Some((true, 7)));
        assert_eq!(parse_kill(b"KILL HARD CONNECTION 9"), Some((false, 9)));
        assert_eq!(parse_kill(b"KILL USER root"), None);
        assert_eq!(parse_kill(b"KILL QUERY ID 3"), None);
        assert_eq!(parse_kill(b"KILL 5 /* x */"), None);
        assert_eq!(parse_kill(b"KILL 1+1"), None);
    }

    #[test]
    fn a_caller_kills_only_its_own_sessions() {
        let m = KillMap::default();
        let a = m.next_id();
        let b = m.next_id();
        let _ra = m.register(a, "t", "alice", 100);
        let rb = m.register(b, "t", "bob", 200);
        assert_eq!(m.resolve(u64::from(a), "t", "alice"), Some(100));
        assert_eq!(m.resolve(100, "t", "alice"), Some(100));
        assert_eq!(m.resolve(u64::from(b), "t", "alice"), None);
        assert_eq!(m.resolve(200, "t", "alice"), None);
        assert_eq!(m.resolve(u64::from(a), "other", "alice"), None);
        drop(rb);
        assert_eq!(m.resolve(u64::from(b), "t", "bob"), None);
    }
}
