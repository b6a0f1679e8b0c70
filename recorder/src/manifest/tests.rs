//! The bucket check against an in-memory bucket: each kind of tampering is
//! named, an untouched bucket passes.

use std::cell::RefCell;

use ring::rand::SystemRandom;
use ring::signature::KeyPair;

use super::*;
use crate::format::Hash;

#[derive(Default)]
struct MemBucket(RefCell<BTreeMap<String, Vec<u8>>>);

impl ObjectSource for MemBucket {
    fn list(&self) -> Result<Vec<(String, u64)>, String> {
        Ok(self
            .0
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect())
    }
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, String> {
        let b = self.0.borrow();
        let v = b.get(key).ok_or("no such key")?;
        if v.len() as u64 > max {
            return Err("too large".into());
        }
        Ok(v.clone())
    }
}

fn key_pair() -> (Ed25519KeyPair, Vec<u8>) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    (pair, public)
}

/// A sealed segment: header, some stand-in block bytes, signed seal.
fn segment(
    key: &Ed25519KeyPair,
    shard: u32,
    base: u64,
    next: u64,
    prev: Hash,
    head: Hash,
) -> Vec<u8> {
    let header = SegmentHeader {
        shard,
        base_seq: base,
        created_ns: 1,
        prev_hash: prev,
    }
    .encode();
    let mut seal = Seal {
        block_count: 1,
        next_seq: next,
        sealed_ns: 2,
        chain_head: head,
        signature: Some([0; 64]),
    };
    seal.signature = Some(sign(key, &seal.signed_message(&header)));
    let mut out = header.to_vec();
    out.extend_from_slice(&[7u8; 100]);
    out.extend_from_slice(&seal.encode());
    out
}

/// Host `h`, shard 0: three segments in two manifest versions.
fn bucket(key: &Ed25519KeyPair, host: &str) -> MemBucket {
    let b = MemBucket::default();
    let heads: [Hash; 4] = [ZERO_HASH, [1; 32], [2; 32], [3; 32]];
    let mut entries = Vec::new();
    for i in 0..3u64 {
        let data = segment(
            key,
            0,
            i * 10,
            (i + 1) * 10,
            heads[i as usize],
            heads[i as usize + 1],
        );
        let k = format!("shard-0/{}", crate::format::segment_file_name(i * 10));
        entries.push(ManifestEntry {
            key: k.clone(),
            shard: 0,
            base: i * 10,
            next_seq: (i + 1) * 10,
            prev_hash: hex(&heads[i as usize]),
            chain_head: hex(&heads[i as usize + 1]),
            size: data.len() as u64,
            sha256: sha256_hex(&data),
        });
        b.0.borrow_mut().insert(format!("{host}/{k}"), data);
    }
    let v1 = ManifestBody {
        host: host.into(),
        version: 1,
        prev: String::new(),
        created_ns: 5,
        entries: entries[..2].to_vec(),
    }
    .to_signed_bytes(key);
    let v2 = ManifestBody {
        host: host.into(),
        version: 2,
        prev: sha256_hex(&v1),
        created_ns: 6,
        entries: entries[2..].to_vec(),
    }
    .to_signed_bytes(key);
    b.0.borrow_mut().insert(manifest_key(host, 1), v1);
    b.0.borrow_mut().insert(manifest_key(host, 2), v2);
    b.0.borrow_mut()
        .insert(format!("{host}/shard-0/sessions.idx"), b"idx".to_vec());
    b
}

fn check(b: &MemBucket, public: &[u8], seen: &SeenHeads) -> BucketReport {
    verify_bucket(b, &[public.to_vec()], seen, 1 << 20).unwrap()
}

fn named(r: &BucketReport, what: &str) -> bool {
    r.problems.iter().any(|p| p.contains(what))
}

#[test]
fn untouched_buckets_of_two_hosts_pass() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    let other = bucket(&key, "h2");
    b.0.borrow_mut().append(&mut other.0.borrow_mut());
    let r = check(&b, &public, &SeenHeads::new());
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.hosts, r.manifests, r.segments), (2, 4, 6));
    assert_eq!(r.heads["h1"].0, 2);
}

#[test]
fn a_deleted_segment_is_named() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    b.0.borrow_mut()
        .remove("h1/shard-0/00000000000000000010.seg");
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(
            &r,
            "shard-0/00000000000000000010.seg: listed in the manifest but missing"
        ),
        "{:?}",
        r.problems
    );
}

#[test]
fn an_altered_segment_is_named_even_at_the_same_size() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    b.0.borrow_mut()
        .get_mut("h1/shard-0/00000000000000000020.seg")
        .unwrap()[80] ^= 1;
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "00000000000000000020.seg: altered"),
        "{:?}",
        r.problems
    );
}

#[test]
fn swapped_segments_are_both_named() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    {
        let mut m = b.0.borrow_mut();
        let a = m.remove("h1/shard-0/00000000000000000000.seg").unwrap();
        let c = m.remove("h1/shard-0/00000000000000000010.seg").unwrap();
        m.insert("h1/shard-0/00000000000000000000.seg".into(), c);
        m.insert("h1/shard-0/00000000000000000010.seg".into(), a);
    }
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "00000000000000000000.seg: altered"),
        "{:?}",
        r.problems
    );
    assert!(
        named(&r, "00000000000000000010.seg: altered"),
        "{:?}",
        r.problems
    );
}

#[test]
fn an_extra_object_is_named() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    b.0.borrow_mut()
        .insert("h1/shard-0/00000000000000000030.seg".into(), vec![1]);
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "00000000000000000030.seg: extra object"),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_rolled_back_manifest_is_named() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    let heads = check(&b, &public, &SeenHeads::new()).heads;
    // The newest version removed: its segment is now unlisted ...
    b.0.borrow_mut().remove(&manifest_key("h1", 2));
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "00000000000000000020.seg: extra object"),
        "{:?}",
        r.problems
    );
    // ... and with the segment gone too, the head seen before names it.
    b.0.borrow_mut()
        .remove("h1/shard-0/00000000000000000020.seg");
    assert!(check(&b, &public, &SeenHeads::new()).problems.is_empty());
    let r = check(&b, &public, &heads);
    assert!(
        named(
            &r,
            "manifest rolled back: newest version is 1, version 2 was seen before"
        ),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_replaced_or_removed_middle_version_or_a_foreign_key_is_named() {
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    let v1 = b.0.borrow()[&manifest_key("h1", 1)].clone();
    b.0.borrow_mut().insert(manifest_key("h1", 2), v1);
    let r = check(&b, &public, &SeenHeads::new());
    assert!(named(&r, "holds host h1 version 1"), "{:?}", r.problems);

    let b = bucket(&key, "h1");
    b.0.borrow_mut().remove(&manifest_key("h1", 1));
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "manifest version 1 is missing"),
        "{:?}",
        r.problems
    );

    let (_, other_public) = key_pair();
    let r = check(&bucket(&key, "h1"), &other_public, &SeenHeads::new());
    assert!(named(&r, "signature does not verify"), "{:?}", r.problems);
}

#[test]
fn a_version_rewritten_with_the_key_breaks_the_link_to_the_next() {
    // Version 1 rewritten (even with the key) no longer matches the hash
    // version 2 names; the shard's first entry now starts at 10 (a note).
    let (key, public) = key_pair();
    let b = bucket(&key, "h1");
    let v1 = ManifestBody::from_signed_bytes(&b.0.borrow()[&manifest_key("h1", 1)], &[]).unwrap();
    let mut skipped = v1.clone();
    skipped.entries.remove(0);
    b.0.borrow_mut()
        .insert(manifest_key("h1", 1), skipped.to_signed_bytes(&key));
    b.0.borrow_mut()
        .remove("h1/shard-0/00000000000000000000.seg");
    let r = check(&b, &public, &SeenHeads::new());
    assert!(
        named(&r, "does not link to manifest version 1"),
        "{:?}",
        r.problems
    );
    assert!(
        r.notes.iter().any(|n| n.contains("begin at sequence 10")),
        "{:?}",
        r.notes
    );
}
