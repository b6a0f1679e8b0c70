//! The per-host upload manifest: a signed, hash-chained list of the sealed
//! segments a host uploaded to object storage, and the check that proves a
//! bucket holds every one of them, unaltered and in order, and nothing else.
//!
//! A host writes manifest versions 1, 2, 3, ... as immutable objects
//! `<host>/manifest/<version, 20 digits>.json`. Each lists the segments
//! added since the previous version and names the previous version's
//! SHA-256 (`prev`), so the versions form a chain: one removed, replaced or
//! reordered breaks it. Each is signed with the recorder's seal key
//! (Ed25519, domain-separated by [`SIGNED_MAGIC`]), so nobody without that
//! key can write one. Deleting the newest versions (a rollback) leaves their
//! segments in the bucket unlisted, which [`verify_bucket`] names; an
//! auditor who also keeps the last head it saw ([`SeenHeads`]) catches a
//! rollback that removed the segments too.
//!
//! Within a shard the entries chain like the log itself: an entry starts
//! where the one before it ended (`base == previous next_seq`) and its
//! segment header links to the previous seal's chain head.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use ring::digest;
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};

use crate::format::{SEAL_LEN, SEGMENT_HEADER_LEN, Seal, SegmentHeader, ZERO_HASH};
use crate::retention::hex;
use crate::signing::{sign, signature_valid};

/// Domain separation: a manifest signature never verifies as a seal's or a checkpoint's.
pub const SIGNED_MAGIC: &[u8; 8] = b"TGMANI01";
/// Largest manifest object accepted.
pub const MAX_MANIFEST: u64 = 64 << 20;
/// Folder of a host's manifest versions.
pub const MANIFEST_DIR: &str = "manifest";

/// One uploaded segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Object key under the host's prefix (`shard-N/<base>.seg`).
    pub key: String,
    pub shard: u32,
    pub base: u64,
    /// The sequence after the segment's last record (from its seal).
    pub next_seq: u64,
    /// The segment header's link (hex).
    pub prev_hash: String,
    /// The seal's chain head (hex).
    pub chain_head: String,
    pub size: u64,
    /// SHA-256 of the whole object (hex).
    pub sha256: String,
}

/// The signed part of a manifest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestBody {
    pub host: String,
    pub version: u64,
    /// SHA-256 (hex) of the previous version's object; empty for version 1.
    pub prev: String,
    pub created_ns: u64,
    pub entries: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedManifest {
    manifest: ManifestBody,
    /// Ed25519 signature (base64) of `SIGNED_MAGIC || JSON(manifest)`.
    signature: String,
}

impl ManifestBody {
    fn signed_message(&self) -> Vec<u8> {
        let mut m = SIGNED_MAGIC.to_vec();
        // Serializing our own struct (no maps) is deterministic, so the
        // verifier re-derives exactly these bytes from what it parsed.
        m.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        m
    }

    /// The object bytes of this version, signed with `key`.
    pub fn to_signed_bytes(&self, key: &Ed25519KeyPair) -> Vec<u8> {
        let sig = sign(key, &self.signed_message());
        let signed = SignedManifest {
            manifest: self.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig),
        };
        let mut out = serde_json::to_vec_pretty(&signed).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a manifest object and checks its signature against any of
    /// `keys` (32 raw bytes each); no keys: the signature is not checked.
    pub fn from_signed_bytes(data: &[u8], keys: &[Vec<u8>]) -> Result<ManifestBody, String> {
        if data.len() as u64 > MAX_MANIFEST {
            return Err(format!(
                "{} bytes, above the cap of {MAX_MANIFEST}",
                data.len()
            ));
        }
        let signed: SignedManifest =
            serde_json::from_slice(data).map_err(|e| format!("does not parse: {e}"))?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signed.signature.trim())
            .map_err(|_| "signature is not base64".to_string())?;
        let message = signed.manifest.signed_message();
        if !keys.is_empty() && !keys.iter().any(|k| signature_valid(k, &message, &sig)) {
            return Err("signature does not verify with the given key(s)".into());
        }
        Ok(signed.manifest)
    }
}

/// SHA-256 (hex) of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// Object key of a host's manifest version (relative to the bucket prefix).
pub fn manifest_key(host: &str, version: u64) -> String {
    format!("{host}/{MANIFEST_DIR}/{version:020}.json")
}

fn parse_manifest_key(rest: &str) -> Option<u64> {
    let v = rest.strip_prefix("manifest/")?.strip_suffix(".json")?;
    (v.len() == 20 && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// A host name usable as a key prefix: 1..=64 of `[A-Za-z0-9._-]`, not `.`/`..`.
pub fn valid_host_id(host: &str) -> bool {
    (1..=64).contains(&host.len())
        && host != "."
        && host != ".."
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What a sealed segment's bytes say about themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSegment {
    pub shard: u32,
    pub base: u64,
    pub prev_hash: String,
    pub next_seq: u64,
    pub chain_head: String,
    /// When the writer opened the segment (header; its first record is not older).
    pub created_ns: u64,
    /// When the writer sealed it (its last record is not newer).
    pub sealed_ns: u64,
    /// The seal's signature checked out with one of the keys (false: no keys given).
    pub signature_checked: bool,
}

/// Reads the header and seal of a whole sealed segment; with `keys`, the
/// seal signature must verify with one of them.
pub fn inspect_sealed_segment(data: &[u8], keys: &[Vec<u8>]) -> Result<SealedSegment, String> {
    if data.len() < SEGMENT_HEADER_LEN + SEAL_LEN {
        return Err(format!(
            "{} bytes: too short for a sealed segment",
            data.len()
        ));
    }
    let mut header_bytes = [0u8; SEGMENT_HEADER_LEN];
    header_bytes.copy_from_slice(&data[..SEGMENT_HEADER_LEN]);
    let header = SegmentHeader::decode(&header_bytes).map_err(|e| format!("header: {e}"))?;
    let seal = Seal::decode(&data[data.len() - SEAL_LEN..]).map_err(|e| format!("seal: {e}"))?;
    let mut signature_checked = false;
    if !keys.is_empty() {
        let sig = seal.signature.ok_or("seal is not signed")?;
        let message = seal.signed_message(&header_bytes);
        if !keys.iter().any(|k| signature_valid(k, &message, &sig)) {
            return Err("seal signature does not verify with the given key(s)".into());
        }
        signature_checked = true;
    }
    Ok(SealedSegment {
        shard: header.shard,
        base: header.base_seq,
        prev_hash: hex(&header.prev_hash),
        next_seq: seal.next_seq,
        chain_head: hex(&seal.chain_head),
        created_ns: header.created_ns,
        sealed_ns: seal.sealed_ns,
        signature_checked,
    })
}

/// Read access to the objects under a bucket prefix (keys relative to it).
pub trait ObjectSource {
    /// Every object: (key, size), any order.
    fn list(&self) -> Result<Vec<(String, u64)>, String>;
    /// An object's bytes, at most `max`.
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, String>;
}

/// The last manifest head an auditor saw per host: (version, SHA-256).
pub type SeenHeads = BTreeMap<String, (u64, String)>;

/// What a bucket check found.
#[derive(Debug, Default, Clone)]
pub struct BucketReport {
    pub hosts: usize,
    pub manifests: u64,
    pub segments: u64,
    pub bytes: u64,
    /// Each problem names the host and the object.
    pub problems: Vec<String>,
    /// Facts worth knowing that are not failures.
    pub notes: Vec<String>,
    /// The head of each host's chain as found (for [`SeenHeads`]).
    pub heads: SeenHeads,
}

/// Checks every host under the prefix: manifest chain and signatures
/// (`keys`; empty: signatures unchecked, a note says so), every listed
/// segment present with its size and SHA-256, entries chained in order per
/// shard, no object the manifests do not list, and no head older than
/// `seen`. `max_object` caps each segment read.
pub fn verify_bucket(
    src: &dyn ObjectSource,
    keys: &[Vec<u8>],
    seen: &SeenHeads,
    max_object: u64,
) -> Result<BucketReport, String> {
    let mut report = BucketReport::default();
    let mut by_host: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (key, size) in src.list()? {
        match key.split_once('/') {
            Some((host, rest)) if !rest.is_empty() => {
                by_host
                    .entry(host.to_string())
                    .or_default()
                    .insert(rest.to_string(), size);
            }
            _ => report
                .problems
                .push(format!("{key}: object outside any host's folder")),
        }
    }
    if keys.is_empty() {
        report
            .notes
            .push("no --key given: manifest and seal signatures were not checked".into());
    }
    for host in seen.keys() {
        if !by_host.contains_key(host) {
            report.problems.push(format!(
                "host {host}: no objects left, but manifest version {} was seen before (removed)",
                seen[host].0
            ));
        }
    }
    for (host, objects) in &by_host {
        report.hosts += 1;
        verify_host(
            src,
            host,
            objects,
            keys,
            seen.get(host),
            max_object,
            &mut report,
        );
    }
    Ok(report)
}

fn verify_host(
    src: &dyn ObjectSource,
    host: &str,
    objects: &BTreeMap<String, u64>,
    keys: &[Vec<u8>],
    seen: Option<&(u64, String)>,
    max_object: u64,
    report: &mut BucketReport,
) {
    let mut problem = |p: String| report.problems.push(format!("host {host}: {p}"));
    let versions: BTreeSet<u64> = objects
        .keys()
        .filter_map(|k| parse_manifest_key(k))
        .collect();
    if versions.is_empty() {
        problem("objects but no manifest: nothing vouches for them".into());
    }
    let mut listed: BTreeMap<String, ManifestEntry> = BTreeMap::new();
    // Per shard: (next_seq, chain_head) the next entry must continue from.
    let mut shard_end: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    let mut prev_sha = String::new();
    let mut head: Option<(u64, String)> = None;
    let last = versions.last().copied().unwrap_or(0);
    for version in 1..=last {
        let key = format!("{MANIFEST_DIR}/{version:020}.json");
        if !versions.contains(&version) {
            problem(format!(
                "{key}: manifest version {version} is missing (removed)"
            ));
            prev_sha.clear();
            continue;
        }
        let data = match src.get(&format!("{host}/{key}"), MAX_MANIFEST) {
            Ok(d) => d,
            Err(e) => {
                problem(format!("{key}: cannot read: {e}"));
                prev_sha.clear();
                continue;
            }
        };
        let sha = sha256_hex(&data);
        let body = match ManifestBody::from_signed_bytes(&data, keys) {
            Ok(b) => b,
            Err(e) => {
                problem(format!("{key}: manifest rejected: {e}"));
                prev_sha.clear();
                continue;
            }
        };
        report.manifests += 1;
        if body.host != host || body.version != version {
            problem(format!(
                "{key}: holds host {} version {} (moved or replaced)",
                body.host, body.version
            ));
        }
        let chained = if version == 1 {
            body.prev.is_empty()
        } else {
            !prev_sha.is_empty() && body.prev == prev_sha
        };
        if !chained && (version == 1 || !prev_sha.is_empty()) {
            problem(format!(
                "{key}: does not link to manifest version {} (replaced or reordered)",
                version - 1
            ));
        }
        for e in body.entries {
            if let Some((next, chain)) = shard_end.get(&e.shard) {
                if e.base != *next || e.prev_hash != *chain {
                    problem(format!(
                        "{}: out of order: shard {} continues at sequence {next}, this segment starts at {} (a segment is missing or reordered)",
                        e.key, e.shard, e.base
                    ));
                }
            } else if e.base != 0 || e.prev_hash != hex(&ZERO_HASH) {
                report.notes.push(format!(
                    "host {host}: shard {}'s uploads begin at sequence {} (earlier segments were not uploaded)",
                    e.shard, e.base
                ));
            }
            shard_end.insert(e.shard, (e.next_seq, e.chain_head.clone()));
            if listed.insert(e.key.clone(), e.clone()).is_some() {
                problem(format!("{}: listed twice", e.key));
            }
        }
        prev_sha = sha.clone();
        head = Some((version, sha));
    }
    if let Some((seen_v, seen_sha)) = seen {
        match &head {
            Some((v, _)) if v < seen_v => problem(format!(
                "manifest rolled back: newest version is {v}, version {seen_v} was seen before"
            )),
            None => problem(format!(
                "manifest rolled back: no version left, {seen_v} was seen before"
            )),
            _ => {}
        }
        if let Some(prior) = (head.as_ref().map(|h| h.0) >= Some(*seen_v))
            .then(|| objects.get(&format!("{MANIFEST_DIR}/{seen_v:020}.json")))
            .flatten()
            .map(|_| ())
            .and_then(|()| {
                src.get(
                    &format!("{host}/{MANIFEST_DIR}/{seen_v:020}.json"),
                    MAX_MANIFEST,
                )
                .ok()
            })
            && sha256_hex(&prior) != *seen_sha
        {
            problem(format!(
                "manifest version {seen_v} changed since it was seen"
            ));
        }
    }
    if let Some(h) = head {
        report.heads.insert(host.to_string(), h);
    }
    for (key, e) in &listed {
        let Some(&size) = objects.get(key) else {
            problem(format!(
                "{key}: listed in the manifest but missing from the bucket"
            ));
            continue;
        };
        if size != e.size {
            problem(format!(
                "{key}: altered: {size} bytes, the manifest says {}",
                e.size
            ));
            continue;
        }
        let data = match src.get(&format!("{host}/{key}"), max_object) {
            Ok(d) => d,
            Err(err) => {
                problem(format!("{key}: cannot read: {err}"));
                continue;
            }
        };
        if sha256_hex(&data) != e.sha256 {
            problem(format!(
                "{key}: altered: its SHA-256 differs from the manifest's"
            ));
            continue;
        }
        match inspect_sealed_segment(&data, keys) {
            Ok(s)
                if s.shard == e.shard
                    && s.base == e.base
                    && s.next_seq == e.next_seq
                    && s.prev_hash == e.prev_hash
                    && s.chain_head == e.chain_head => {}
            Ok(_) => problem(format!(
                "{key}: header or seal disagrees with the manifest entry"
            )),
            Err(err) => problem(format!("{key}: {err}")),
        }
        report.segments += 1;
        report.bytes += size;
    }
    for key in objects.keys() {
        let known =
            listed.contains_key(key) || parse_manifest_key(key).is_some() || is_index_key(key);
        if !known {
            problem(format!("{key}: extra object that no manifest lists"));
        }
    }
}

/// `shard-N/sessions.idx`: the session index copy (a listing aid; the
/// segments are what the manifest vouches for).
pub fn is_index_key(key: &str) -> bool {
    key.split_once('/').is_some_and(|(shard, name)| {
        crate::format::parse_shard_dir_name(shard).is_some() && name == crate::index::INDEX_FILE
    })
}

#[cfg(test)]
mod tests;
