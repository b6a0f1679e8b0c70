//! Reading a bucket: the [`ObjectSource`] the manifest check runs on, and a
//! local cache of each host's segments and index that `list`, `export` and
//! `replay` read like any recording directory.

use std::path::{Path, PathBuf};

use tollgate_recorder::manifest::{ObjectSource, is_index_key};

use super::s3::{Bucket, MAX_OBJECT};

/// The objects under `prefix`, keys relative to it.
pub struct BucketSource<'a> {
    pub bucket: &'a Bucket,
    pub prefix: &'a str,
}

impl ObjectSource for BucketSource<'_> {
    fn list(&self) -> Result<Vec<(String, u64)>, String> {
        Ok(self
            .bucket
            .list(self.prefix)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|o| {
                o.key
                    .strip_prefix(self.prefix)
                    .map(|k| (k.to_string(), o.size))
            })
            .collect())
    }

    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, String> {
        self.bucket
            .get(&format!("{}{key}", self.prefix), max)
            .map_err(|e| e.to_string())
    }
}

/// Downloads every host's segments and session indexes under the prefix
/// (or only `host`'s) into `cache/<host>/shard-N/`, and returns each host's
/// directory. A segment already cached at the same size is not fetched
/// again (segments never change once sealed); indexes always are.
///
/// The cache is what the bucket holds, unverified: `verify --from` is the
/// check.
pub fn fetch_to_cache(
    src: &BucketSource<'_>,
    cache: &Path,
    host: Option<&str>,
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut hosts: Vec<(String, PathBuf)> = Vec::new();
    for (key, size) in src.list()? {
        let Some((h, rest)) = key.split_once('/') else {
            continue;
        };
        if host.is_some_and(|want| want != h) || !tollgate_recorder::manifest::valid_host_id(h) {
            continue;
        }
        let Some((shard, name)) = rest.split_once('/') else {
            continue;
        };
        let is_segment = tollgate_recorder::format::parse_shard_dir_name(shard).is_some()
            && tollgate_recorder::format::parse_segment_file_name(name).is_some();
        if !is_segment && !is_index_key(rest) {
            continue;
        }
        let host_dir = cache.join(h);
        if !hosts.iter().any(|(n, _)| n == h) {
            hosts.push((h.to_string(), host_dir.clone()));
        }
        let dir = host_dir.join(shard);
        let path = dir.join(name);
        if is_segment && std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let data = src.get(&key, MAX_OBJECT)?;
        let tmp = dir.join(format!("{name}.part"));
        std::fs::write(&tmp, &data)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    hosts.sort();
    Ok(hosts)
}
