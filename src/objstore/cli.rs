//! `tollgate recordings ... --from s3://bucket/prefix`: where the bucket is
//! and how to reach it (flags, environment, or a config file's
//! `[recorder.upload]`), the local cache, and `verify --from` (with
//! `--catalog`, also against the fleet's segment catalog).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate_recorder::manifest::{ManifestBody, ObjectSource, SeenHeads, verify_bucket};

use super::catalog::{CatalogFilter, Listed, cross_check};
use super::s3::{Bucket, MAX_OBJECT};
use super::source::{BucketSource, fetch_to_cache};
use super::{KeySource, S3Url, StoreConfig};

/// Reading recordings from object storage instead of `--dir`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// Read from object storage: s3://bucket/prefix (every host under it).
    #[arg(long, value_name = "S3_URL")]
    pub from: Option<String>,
    /// S3-compatible endpoint, http(s)://host:port (absent: AWS S3).
    #[arg(long, env = "TOLLGATE_S3_ENDPOINT", requires = "from")]
    pub endpoint: Option<String>,
    #[arg(long, env = "AWS_REGION", requires = "from")]
    pub region: Option<String>,
    /// Access key id from a file (else AWS_ACCESS_KEY_ID).
    #[arg(long, requires = "from")]
    pub access_key_id_file: Option<PathBuf>,
    /// Secret from a file (else AWS_SECRET_ACCESS_KEY).
    #[arg(long, requires = "from")]
    pub secret_access_key_file: Option<PathBuf>,
    /// Take endpoint, region and credentials from this config file's
    /// `[recorder.upload]` (flags still win).
    #[arg(long, requires = "from")]
    pub store_config: Option<PathBuf>,
    /// Local cache of downloaded segments (reused between runs).
    #[arg(
        long,
        env = "TOLLGATE_RECORDINGS_CACHE",
        default_value = "/var/tmp/tollgate-recordings-cache",
        requires = "from"
    )]
    pub cache: PathBuf,
    /// Only this host's recordings.
    #[arg(long, requires = "from")]
    pub host: Option<String>,
}

impl StoreArgs {
    pub fn is_set(&self) -> bool {
        self.from.is_some()
    }

    fn store(&self) -> Result<(StoreConfig, Bucket), String> {
        let url = S3Url::parse(self.from.as_deref().unwrap_or_default())?;
        let base = match &self.store_config {
            Some(p) => {
                let c = crate::config::Config::load(p).map_err(|e| e.to_string())?;
                c.upload
                    .map(|u| u.store)
                    .ok_or_else(|| format!("{}: no [recorder.upload]", p.display()))?
            }
            None => StoreConfig {
                url: url.clone(),
                endpoint: None,
                region: super::DEFAULT_REGION.into(),
                access_key_id: KeySource::Env("AWS_ACCESS_KEY_ID"),
                secret_access_key: KeySource::Env("AWS_SECRET_ACCESS_KEY"),
                request_timeout: Duration::from_secs(120),
            },
        };
        let store = StoreConfig {
            url,
            endpoint: self.endpoint.clone().or(base.endpoint),
            region: self.region.clone().unwrap_or(base.region),
            access_key_id: self
                .access_key_id_file
                .clone()
                .map_or(base.access_key_id, KeySource::File),
            secret_access_key: self
                .secret_access_key_file
                .clone()
                .map_or(base.secret_access_key, KeySource::File),
            request_timeout: base.request_timeout,
        };
        let bucket = store.open()?;
        Ok((store, bucket))
    }

    fn cache_dir(&self, store: &StoreConfig) -> PathBuf {
        let mut name = store.url.bucket.clone();
        if !store.url.prefix.is_empty() {
            name.push('_');
            name.push_str(&store.url.prefix.trim_end_matches('/').replace('/', "_"));
        }
        self.cache.join(name)
    }

    /// Downloads what the bucket holds and returns each host's directory.
    pub fn fetch(&self) -> Result<Vec<(String, PathBuf)>, String> {
        let (store, bucket) = self.store()?;
        let cache = self.cache_dir(&store);
        std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let src = BucketSource {
            bucket: &bucket,
            prefix: &store.url.prefix,
        };
        fetch_to_cache(&src, &cache, self.host.as_deref())
    }

    /// `verify --from`: the manifest check of every host (or `--host`).
    /// The newest head seen per host is kept in `state` (default: in the
    /// cache) and a later run names a head older than it.
    pub fn verify(
        &self,
        keys: &[Vec<u8>],
        state: Option<&Path>,
        catalog: Option<&Path>,
        out: &mut dyn Write,
    ) -> Result<bool, String> {
        let (store, bucket) = self.store()?;
        let cache = self.cache_dir(&store);
        let state = state.map_or_else(|| cache.join("verify-heads.json"), Path::to_path_buf);
        let mut seen: SeenHeads = match std::fs::read(&state) {
            Ok(d) => serde_json::from_slice(&d)
                .map_err(|e| format!("{}: damaged: {e}", state.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SeenHeads::new(),
            Err(e) => return Err(format!("{}: {e}", state.display())),
        };
        let prefix = match &self.host {
            Some(h) => format!("{}{h}/", store.url.prefix),
            None => store.url.prefix.clone(),
        };
        let src = BucketSource {
            bucket: &bucket,
            prefix: &store.url.prefix,
        };
        let filtered = HostFilter {
            inner: &src,
            host: self.host.as_deref(),
        };
        let relevant: SeenHeads = seen
            .iter()
            .filter(|(h, _)| self.host.as_deref().is_none_or(|want| want == h.as_str()))
            .map(|(h, v)| (h.clone(), v.clone()))
            .collect();
        let mut report = verify_bucket(&filtered, keys, &relevant, MAX_OBJECT)?;
        if let Some(config) = catalog {
            let (rows, problems) = self.check_catalog(config, &store, &filtered, keys)?;
            report.notes.push(format!(
                "catalog: {rows} segment rows of the control database cross-checked against the bucket and its manifests"
            ));
            report.problems.extend(problems);
        }
        let _ = writeln!(
            out,
            "s3://{}/{prefix}: {} hosts, {} manifest versions, {} segments, {} bytes",
            store.url.bucket, report.hosts, report.manifests, report.segments, report.bytes
        );
        for (host, (v, _)) in &report.heads {
            let _ = writeln!(out, "host {host}: manifest version {v}");
        }
        for n in &report.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for p in &report.problems {
            let _ = writeln!(out, "PROBLEM: {p}");
        }
        let ok = report.problems.is_empty();
        let _ = writeln!(
            out,
            "{}",
            if ok {
                "OK: every listed segment is present, unaltered and in order; nothing unlisted"
            } else {
                "FAILED"
            }
        );
        if ok {
            // Only ever forward: a head is remembered once it verified.
            for (host, head) in report.heads {
                if seen.get(&host).is_none_or(|s| s.0 <= head.0) {
                    seen.insert(host, head);
                }
            }
            if let Some(dir) = state.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let data = serde_json::to_vec_pretty(&seen).map_err(|e| e.to_string())?;
            let tmp = state.with_extension("tmp");
            std::fs::write(&tmp, data)
                .and_then(|()| std::fs::rename(&tmp, &state))
                .map_err(|e| format!("{}: {e}", state.display()))?;
        }
        Ok(ok)
    }
}

impl StoreArgs {
    /// The catalog (from `config`'s `[cluster]`) against the bucket's
    /// segment objects and what its manifests list: (rows, problems).
    fn check_catalog(
        &self,
        config: &Path,
        store: &StoreConfig,
        src: &HostFilter<'_>,
        keys: &[Vec<u8>],
    ) -> Result<(usize, Vec<String>), String> {
        let cluster = crate::cluster::cli::cluster_of(config)?;
        let filter = CatalogFilter {
            host: self.host.clone(),
            since_ms: None,
            bucket: Some(store.url.bucket.clone()),
            key_prefix: Some(store.url.prefix.clone()),
            limit: crate::cluster::catalog::MAX_ROWS + 1,
        };
        let rows = crate::cluster::cli::read_catalog(&cluster, &filter)
            .map_err(|e| format!("catalog ({}): {e}", config.display()))?;
        if rows.len() > crate::cluster::catalog::MAX_ROWS {
            return Ok((
                rows.len(),
                vec![format!(
                    "catalog: more than {} rows under this prefix: narrow it with --host (not cross-checked)",
                    crate::cluster::catalog::MAX_ROWS
                )],
            ));
        }
        let objects = src.list()?;
        let mut listed = Listed::new();
        for (key, _) in &objects {
            let Some((host, rest)) = key.split_once('/') else {
                continue;
            };
            if !(rest.starts_with("manifest/") && rest.ends_with(".json")) {
                continue;
            }
            // A manifest that does not read or verify is verify_bucket's
            // problem, already named; its entries are not trusted here.
            let Ok(body) = src
                .get(key, tollgate_recorder::manifest::MAX_MANIFEST)
                .and_then(|d| ManifestBody::from_signed_bytes(&d, keys))
            else {
                continue;
            };
            for e in body.entries {
                listed.insert(
                    format!("{host}/{}", e.key),
                    (body.version, e.size, e.sha256),
                );
            }
        }
        Ok((
            rows.len(),
            cross_check(&store.url.prefix, &rows, &objects, &listed),
        ))
    }
}

/// Only one host's objects (for `--host`).
struct HostFilter<'a> {
    inner: &'a BucketSource<'a>,
    host: Option<&'a str>,
}

impl tollgate_recorder::manifest::ObjectSource for HostFilter<'_> {
    fn list(&self) -> Result<Vec<(String, u64)>, String> {
        let all = self.inner.list()?;
        Ok(match self.host {
            None => all,
            Some(h) => all
                .into_iter()
                .filter(|(k, _)| k.split_once('/').is_some_and(|(host, _)| host == h))
                .collect(),
        })
    }
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, String> {
        self.inner.get(key, max)
    }
}
