//! Per-shard cache of verified tokens, so a job opening 500 connections with one token pays
//! for one signature check.
//!
//! Keyed by the SHA-256 of the token (the token itself is never stored), bounded with a CLOCK
//! (second-chance) eviction, entries expire with the token's `exp` plus the issuer's leeway.
//! Deliberately not `Sync`: one cache per shard, no locks. A hit skips the signature and claim
//! checks but the caller still checks expiry (here) and revocation (in the service).

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::identity::Identity;

/// The SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// Hashes the token for the cache key.
pub fn token_digest(token: &[u8]) -> TokenDigest {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token).as_ref());
    out
}

/// The key is already a cryptographic hash of a token that passed verification, so its first
/// bytes are as good a table hash as SipHash would produce, at no cost.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

struct Slot {
    digest: TokenDigest,
    identity: Arc<Identity>,
    /// Unix seconds from which the entry is expired (`exp` + leeway).
    expires_at: i64,
    referenced: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub enum CacheLookup {
    Hit(Arc<Identity>),
    /// Was cached but its token has expired; the entry has been dropped.
    Expired {
        expires_at: i64,
    },
    Miss,
}

/// A bounded per-shard cache of verified tokens.
pub struct TokenCache {
    /// Which `IdentityService` filled it: a rebuilt service (config reload) must not be
    /// answered from entries verified under the old rules.
    pub(crate) owner: u64,
    index: HashMap<TokenDigest, usize, BuildHasherDefault<DigestHasher>>,
    slots: Vec<Slot>,
    hand: usize,
    capacity: usize,
    signature_checks: u64,
    hits: u64,
    /// One per shard: `Cell` makes the type `!Sync` so it cannot be shared by accident.
    _not_sync: PhantomData<Cell<()>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            owner: 0,
            index: HashMap::with_capacity_and_hasher(
                capacity.min(1 << 16),
                BuildHasherDefault::default(),
            ),
            slots: Vec::with_capacity(capacity.min(1 << 16)),
            hand: 0,
            capacity,
            signature_checks: 0,
            hits: 0,
            _not_sync: PhantomData,
        }
    }

    /// Signature verifications performed on behalf of this cache's shard.
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
    }

    pub(crate) fn count_signature_check(&mut self) {
        self.signature_checks += 1;
    }

    /// Finds a token; an expired entry is removed and reported.
    pub fn lookup(&mut self, digest: &TokenDigest, now: i64) -> CacheLookup {
        let Some(&i) = self.index.get(digest) else {
            return CacheLookup::Miss;
        };
        let slot = &mut self.slots[i];
        if now >= slot.expires_at {
            let expires_at = slot.expires_at;
            self.remove_at(i);
            return CacheLookup::Expired { expires_at };
        }
        slot.referenced = true;
        self.hits += 1;
        CacheLookup::Hit(slot.identity.clone())
    }

    /// Drops one token (e.g. found revoked).
    pub fn remove(&mut self, digest: &TokenDigest) {
        if let Some(&i) = self.index.get(digest) {
            self.remove_at(i);
        }
    }

    /// Caches a verified token until `expires_at` (unix seconds), evicting if full.
    pub fn insert(
        &mut self,
        digest: TokenDigest,
        identity: Arc<Identity>,
        expires_at: i64,
        now: i64,
    ) {
        if let Some(&i) = self.index.get(&digest) {
            let slot = &mut self.slots[i];
            slot.identity = identity;
            slot.expires_at = expires_at;
            slot.referenced = true;
            return;
        }
        let slot = Slot {
            digest,
            identity,
            expires_at,
            referenced: false,
        };
        if self.slots.len() < self.capacity {
            self.index.insert(digest, self.slots.len());
            self.slots.push(slot);
            return;
        }
        let victim = self.pick_victim(now);
        self.index.remove(&self.slots[victim].digest);
        self.index.insert(digest, victim);
        self.slots[victim] = slot;
    }

    /// CLOCK: expired entries go first, then the first entry not referenced since the hand
    /// last passed. Two sweeps always find one (the first sweep clears every bit).
    fn pick_victim(&mut self, now: i64) -> usize {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand;
            self.hand = (self.hand + 1) % n;
            let slot = &mut self.slots[i];
            if now >= slot.expires_at || !slot.referenced {
                return i;
            }
            slot.referenced = false;
        }
        self.hand
    }

    fn remove_at(&mut self, i: usize) {
        let removed = self.slots.swap_remove(i);
        self.index.remove(&removed.digest);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.digest, i);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::IdentitySource;

    fn ident(sub: &str) -> Arc<Identity> {
        Arc::new(Identity {
            subject: sub.into(),
            issuer: "iss".into(),
            groups: vec![],
            token_id: None,
            expires_at: None,
            source: IdentitySource::Token,
        })
    }

    #[test]
    fn hit_miss_and_expiry() {
        let mut c = TokenCache::new(4);
        let d = token_digest(b"token-a");
        assert!(matches!(c.lookup(&d, 100), CacheLookup::Miss));
        c.insert(d, ident("a"), 200, 100);
        match c.lookup(&d, 150) {
            CacheLookup::Hit(id) => assert_eq!(id.subject, "a"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.lookup(&d, 200),
            CacheLookup::Expired { expires_at: 200 }
        ));
        assert!(matches!(c.lookup(&d, 150), CacheLookup::Miss));
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_and_keeps_referenced_entries() {
        let mut c = TokenCache::new(3);
        let keys: Vec<_> = (0..3)
            .map(|i| token_digest(format!("t{i}").as_bytes()))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            c.insert(*k, ident(&format!("s{i}")), 1000, 0);
        }
        // Touch 0 and 2: 1 is the one not referenced, so it is evicted.
        assert!(matches!(c.lookup(&keys[0], 1), CacheLookup::Hit(_)));
        assert!(matches!(c.lookup(&keys[2], 1), CacheLookup::Hit(_)));
        let new = token_digest(b"t3");
        c.insert(new, ident("s3"), 1000, 1);
        assert_eq!(c.len(), 3);
        assert!(matches!(c.lookup(&keys[1], 1), CacheLookup::Miss));
        assert!(matches!(c.lookup(&keys[0], 1), CacheLookup::Hit(_)));
        assert!(matches!(c.lookup(&new, 1), CacheLookup::Hit(_)));
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let mut c = TokenCache::new(2);
        let a = token_digest(b"a");
        let b = token_digest(b"b");
        c.insert(a, ident("a"), 1000, 0);
        c.insert(b, ident("b"), 10, 0);
        assert!(matches!(c.lookup(&a, 5), CacheLookup::Hit(_)));
        assert!(matches!(c.lookup(&b, 5), CacheLookup::Hit(_)));
        let n = token_digest(b"n");
        c.insert(n, ident("n"), 1000, 50);
        assert!(matches!(c.lookup(&a, 50), CacheLookup::Hit(_)));
        assert!(matches!(c.lookup(&b, 50), CacheLookup::Miss));
    }

    #[test]
    fn remove_keeps_index_consistent() {
        let mut c = TokenCache::new(8);
        let keys: Vec<_> = (0..5).map(|i| token_digest(&[i])).collect();
        for k in &keys {
            c.insert(*k, ident("x"), 1000, 0);
        }
        c.remove(&keys[1]);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(matches!(c.lookup(k, 0), CacheLookup::Hit(_)), i != 1);
        }
    }
}
