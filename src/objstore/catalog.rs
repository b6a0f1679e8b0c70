//! The catalog of uploaded segments: what the uploader tells the fleet's
//! control database (`[cluster]`) after each confirmed manifest version,
//! and the cross-check of a catalog against a bucket and its manifests.
//!
//! The signed manifests in the bucket are the source of truth; the catalog
//! is an index of them that can be queried (per host, by time) without
//! reading the bucket. It is written through the cluster agent's queue:
//! the uploader never waits on the control database. What the agent could
//! not write is sent again from the bucket's manifests once the agent
//! knows the catalog's position again ([`CatalogSink::position`]); rows
//! are keyed by (host, object key), so a repeat writes nothing twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tollgate_recorder::manifest::{ManifestBody, ManifestEntry};

/// Most local-copy keys sent at once (a host with more sends none and
/// says so: the catalog's `local_deleted` then lags, nothing else).
pub const MAX_LOCAL_KEYS: usize = 200_000;

/// One uploaded segment as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogSegment {
    /// The object's full key in the bucket (prefix included).
    pub object_key: String,
    pub shard: u32,
    /// First record's sequence number ...
    pub base_seq: u64,
    /// ... and the one after the last.
    pub next_seq: u64,
    pub size: u64,
    /// SHA-256 of the object (hex).
    pub sha256: String,
    /// When the writer opened the segment (no record is older); unknown
    /// for a segment cataloged from a manifest after its local copy went.
    pub opened_ms: Option<u64>,
    /// When the writer sealed it (no record is newer); unknown likewise.
    pub sealed_ms: Option<u64>,
}

/// One confirmed manifest version and the segments it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogManifest {
    /// The host's folder in the bucket (`[recorder.upload] host_id`).
    pub host: String,
    pub bucket: String,
    /// The manifest object's full key.
    pub manifest_key: String,
    pub version: u64,
    /// SHA-256 (hex) of the signed manifest object.
    pub sha256: String,
    /// The manifest's creation time: when the upload was confirmed.
    pub uploaded_ms: u64,
    pub segments: Vec<CatalogSegment>,
}

impl CatalogManifest {
    /// The catalog rows of a manifest version (`sha256`: of its signed
    /// object); `times` gives a segment's (opened, sealed) in nanoseconds
    /// when the uploader still knows them.
    pub fn from_body(
        body: &ManifestBody,
        bucket: &str,
        prefix: &str,
        sha256: String,
        times: impl Fn(&ManifestEntry) -> Option<(u64, u64)>,
    ) -> CatalogManifest {
        let ms = |ns: u64| ns / 1_000_000;
        let host = &body.host;
        CatalogManifest {
            host: host.clone(),
            bucket: bucket.to_string(),
            manifest_key: format!(
                "{prefix}{}",
                tollgate_recorder::manifest::manifest_key(host, body.version)
            ),
            version: body.version,
            sha256,
            uploaded_ms: ms(body.created_ns),
            segments: body
                .entries
                .iter()
                .map(|e| {
                    let t = times(e);
                    CatalogSegment {
                        object_key: format!("{prefix}{host}/{}", e.key),
                        shard: e.shard,
                        base_seq: e.base,
                        next_seq: e.next_seq,
                        size: e.size,
                        sha256: e.sha256.clone(),
                        opened_ms: t.map(|t| ms(t.0)),
                        sealed_ms: t.map(|t| ms(t.1)),
                    }
                })
                .collect(),
        }
    }
}

/// Where the uploader sends catalog rows (the cluster agent under
/// `[cluster]`). Every method returns at once.
pub trait CatalogSink: Send + Sync {
    /// `(epoch, through)`: the catalog holds this host's manifest versions
    /// `1..=through`, as the agent last read or wrote it; `epoch` changes
    /// each time the agent had to learn it again (it reconnected, or a
    /// write failed), which is the uploader's cue to send again from
    /// `through + 1`. `None`: not known now (the database is unreachable).
    fn position(&self) -> Option<(u64, u64)>;
    /// Queue one confirmed manifest version; false: not queued.
    fn record(&self, manifest: CatalogManifest) -> bool;
    /// Queue the keys of this host's uploaded segments still on local
    /// disk: the catalog marks the host's other rows as deleted locally.
    fn local_copies(&self, host: &str, bucket: &str, keys: Vec<String>) -> bool;
}

/// A local segment's (opened, sealed) times in nanoseconds, from its
/// header and seal; `None` when it is gone or unreadable.
pub fn local_times(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    use tollgate_recorder::format::{SEAL_LEN, SEGMENT_HEADER_LEN, Seal, SegmentHeader};
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    f.read_exact(&mut head).ok()?;
    let mut seal = [0u8; SEAL_LEN];
    f.seek(SeekFrom::End(-(SEAL_LEN as i64))).ok()?;
    f.read_exact(&mut seal).ok()?;
    let header = SegmentHeader::decode(&head).ok()?;
    let seal = Seal::decode(&seal).ok()?;
    Some((header.created_ns, seal.sealed_ns))
}

/// `shard-N/<base>.seg` of every local segment that carries an upload mark
/// (confirmed in the bucket and still on disk), sorted.
pub fn marked_local_segments(dir: &std::path::Path) -> Result<Vec<String>, String> {
    use tollgate_recorder::format::{parse_shard_dir_name, shard_dir_name};
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.filter_map(Result::ok) {
        let Some(shard) = e.file_name().to_str().and_then(parse_shard_dir_name) else {
            continue;
        };
        let segs = tollgate_recorder::list_segments(&tollgate_recorder::fs::RealFs, &e.path())
            .map_err(|e| e.to_string())?;
        for (base, path) in segs {
            if tollgate_recorder::uploaded_mark_path(&path).exists() {
                out.push(format!(
                    "{}/{}",
                    shard_dir_name(shard),
                    tollgate_recorder::format::segment_file_name(base)
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A catalog row as read back (the reader's view of [`CatalogSegment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogRow {
    pub host: String,
    pub bucket: String,
    pub object_key: String,
    pub shard: u32,
    pub base_seq: u64,
    pub next_seq: u64,
    pub size: u64,
    pub sha256: String,
    pub manifest_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_ms: Option<u64>,
    pub uploaded_ms: u64,
    /// When this host found its local copy gone (retention after upload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_deleted_ms: Option<u64>,
}

/// Which rows a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFilter {
    pub host: Option<String>,
    /// Uploaded at or after (ms since the epoch).
    pub since_ms: Option<u64>,
    pub bucket: Option<String>,
    /// Object keys starting with this (a bucket prefix).
    pub key_prefix: Option<String>,
    pub limit: usize,
}

/// What a manifest lists, per object key relative to the bucket prefix:
/// (manifest version, size, SHA-256).
pub type Listed = BTreeMap<String, (u64, u64, String)>;

/// Names each disagreement between the catalog (`rows`, keys with the
/// prefix), the bucket (`objects`: key relative to `prefix`, size) and the
/// manifests (`listed`). Only segment objects count: manifests and session
/// indexes are not cataloged.
pub fn cross_check(
    prefix: &str,
    rows: &[CatalogRow],
    objects: &[(String, u64)],
    listed: &Listed,
) -> Vec<String> {
    let mut problems = Vec::new();
    let in_bucket: BTreeMap<&str, u64> = objects
        .iter()
        .filter(|(k, _)| is_segment_key(k))
        .map(|(k, s)| (k.as_str(), *s))
        .collect();
    let mut cataloged = BTreeSet::new();
    for r in rows {
        let Some(rel) = r.object_key.strip_prefix(prefix) else {
            continue;
        };
        cataloged.insert(rel);
        let size = match in_bucket.get(rel) {
            None => {
                problems.push(format!(
                    "catalog: {rel}: in the catalog (host {}, manifest version {}) but not in the bucket",
                    r.host, r.manifest_version
                ));
                None
            }
            Some(&s) => Some(s),
        };
        if let Some(s) = size.filter(|&s| s != r.size) {
            problems.push(format!(
                "catalog: {rel}: the catalog says {} bytes, the bucket holds {s}",
                r.size
            ));
        }
        match listed.get(rel) {
            None => problems.push(format!(
                "catalog: {rel}: in the catalog but no manifest in the bucket lists it"
            )),
            Some((version, msize, msha)) => {
                if *msize != r.size || *msha != r.sha256 {
                    problems.push(format!(
                        "catalog: {rel}: size/SHA-256 in the catalog ({} bytes, {}) differ from manifest version {version} ({msize} bytes, {msha})",
                        r.size, r.sha256
                    ));
                } else if *version != r.manifest_version {
                    problems.push(format!(
                        "catalog: {rel}: the catalog names manifest version {}, the bucket's manifests list it in version {version}",
                        r.manifest_version
                    ));
                }
            }
        }
    }
    for rel in in_bucket.keys() {
        if !cataloged.contains(rel) {
            problems.push(format!(
                "catalog: {rel}: in the bucket but not in the catalog"
            ));
        }
    }
    problems
}

/// `<host>/shard-N/<base>.seg`
fn is_segment_key(key: &str) -> bool {
    let mut parts = key.splitn(3, '/');
    let (Some(_host), Some(shard), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    tollgate_recorder::format::parse_shard_dir_name(shard).is_some()
        && tollgate_recorder::format::parse_segment_file_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: &str = "gw-a/shard-0/00000000000000000000.seg";
    const SEG2: &str = "gw-a/shard-0/00000000000000000007.seg";

    fn row(key: &str, size: u64, sha: &str, version: u64) -> CatalogRow {
        CatalogRow {
            host: "gw-a".into(),
            bucket: "b".into(),
            object_key: format!("p/{key}"),
            shard: 0,
            base_seq: 0,
            next_seq: 7,
            size,
            sha256: sha.into(),
            manifest_version: version,
            opened_ms: None,
            sealed_ms: None,
            uploaded_ms: 1,
            local_deleted_ms: None,
        }
    }

    fn listed(entries: &[(&str, u64, u64, &str)]) -> Listed {
        entries
            .iter()
            .map(|(k, v, s, h)| (k.to_string(), (*v, *s, h.to_string())))
            .collect()
    }

    #[test]
    fn an_agreeing_catalog_has_no_problem_and_non_segments_are_ignored() {
        let rows = [row(SEG, 10, "aa", 1)];
        let objects = [
            (SEG.to_string(), 10),
            ("gw-a/manifest/00000000000000000001.json".to_string(), 99),
            ("gw-a/shard-0/sessions.idx".to_string(), 5),
        ];
        let l = listed(&[(SEG, 1, 10, "aa")]);
        assert!(cross_check("p/", &rows, &objects, &l).is_empty());
    }

    #[test]
    fn each_disagreement_is_named() {
        let rows = [row(SEG, 10, "aa", 1), row(SEG2, 12, "bb", 2)];
        // SEG2 deleted from the bucket; a third segment the catalog lacks.
        let extra = "gw-a/shard-1/00000000000000000000.seg";
        let objects = [(SEG.to_string(), 11), (extra.to_string(), 3)];
        let l = listed(&[(SEG, 1, 11, "cc"), (SEG2, 2, 12, "bb"), (extra, 2, 3, "dd")]);
        let p = cross_check("p/", &rows, &objects, &l).join("\n");
        assert!(
            p.contains(&format!(
                "{SEG2}: in the catalog (host gw-a, manifest version 2) but not in the bucket"
            )),
            "{p}"
        );
        assert!(
            p.contains(&format!("{extra}: in the bucket but not in the catalog")),
            "{p}"
        );
        assert!(
            p.contains(&format!(
                "{SEG}: the catalog says 10 bytes, the bucket holds 11"
            )),
            "{p}"
        );
        assert!(
            p.contains(&format!(
                "{SEG}: size/SHA-256 in the catalog (10 bytes, aa) differ from manifest version 1"
            )),
            "{p}"
        );
    }

    #[test]
    fn a_row_no_manifest_lists_and_a_wrong_version_are_named() {
        let rows = [row(SEG, 10, "aa", 3), row(SEG2, 12, "bb", 2)];
        let objects = [(SEG.to_string(), 10), (SEG2.to_string(), 12)];
        let l = listed(&[(SEG, 1, 10, "aa")]);
        let p = cross_check("p/", &rows, &objects, &l).join("\n");
        assert!(
            p.contains(&format!(
                "{SEG2}: in the catalog but no manifest in the bucket lists it"
            )),
            "{p}"
        );
        assert!(
            p.contains(&format!("{SEG}: the catalog names manifest version 3")),
            "{p}"
        );
    }
}
