//! CancelRequest routing. Each client gets its own BackendKeyData, mapped to
//! the upstream's, so Ctrl-C in psql cancels the right query and nobody can
//! cancel another caller's: the key a client sees is random and tells nothing
//! about the upstream's. The map is shared by all shards (a cancel request
//! arrives on a new connection, on whichever shard the kernel picks); it is
//! touched at session start, end and cancel only, never per message.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;

/// Where a client's cancel key leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTarget {
    pub upstream: String,
    pub pid: i32,
    pub secret: Vec<u8>,
    pub session: String,
}

#[derive(Default)]
pub struct CancelMap {
    map: Mutex<HashMap<(i32, [u8; 4]), CancelTarget>>,
}

impl CancelMap {
    /// Allocate a fresh client-facing key for `target`.
    pub fn register(&self, target: CancelTarget) -> (i32, [u8; 4]) {
        let mut rng = rand::rng();
        let Ok(mut map) = self.map.lock() else {
            // A poisoned map means a panic elsewhere; cancels are best
            // effort, the session itself is unaffected.
            return (0, [0; 4]);
        };
        loop {
            let pid = rng.random_range(1..i32::MAX);
            let secret: [u8; 4] = rng.random();
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry((pid, secret)) {
                e.insert(target);
                return (pid, secret);
            }
        }
    }

    pub fn lookup(&self, pid: i32, secret: &[u8]) -> Option<CancelTarget> {
        let secret: [u8; 4] = secret.try_into().ok()?;
        self.map.lock().ok()?.get(&(pid, secret)).cloned()
    }

    /// Point a client's key at another server connection (transaction
    /// mode), or at none (`pid` 0: a cancel then does nothing).
    pub fn retarget(&self, key: (i32, [u8; 4]), to: Option<(i32, Vec<u8>)>) {
        if let Ok(mut map) = self.map.lock()
            && let Some(t) = map.get_mut(&key)
        {
            let (pid, secret) = to.unwrap_or_default();
            t.pid = pid;
            t.secret = secret;
        }
    }

    pub fn remove(&self, key: (i32, [u8; 4])) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_target_and_only_exact_keys_match() {
        let m = CancelMap::default();
        let t = CancelTarget {
            upstream: "db:5432".into(),
            pid: 77,
            secret: vec![1, 2, 3, 4],
            session: "s".into(),
        };
        let (pid, secret) = m.register(t.clone());
        assert_eq!(m.lookup(pid, &secret), Some(t));
        let mut wrong = secret;
        wrong[0] ^= 1;
        assert_eq!(m.lookup(pid, &wrong), None);
        assert_eq!(m.lookup(pid, &secret[..3]), None);
        m.remove((pid, secret));
        assert!(m.is_empty());
    }
}
