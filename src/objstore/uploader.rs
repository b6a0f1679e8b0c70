//! The uploader: one thread of its own (blocking HTTP, never on a shard)
//! that ships each sealed segment to the bucket in order, confirms it, adds
//! it to the host's signed manifest, and only then marks it for deletion.
//!
//! One pass:
//! 1. *Adopt*: manifest versions already in the bucket beyond the local
//!    journal (a crash after a manifest PUT) are checked (signature, chain)
//!    and taken over: their segments get marks, the journal moves on.
//! 2. *Scan*: in every shard, the sealed segments (all but the last) with
//!    no mark, oldest first. Backlog and the oldest one's age are published.
//! 3. *Upload*: each is PUT (the server checks its SHA-256) unless the same
//!    bytes are there already, then read back and compared (size, SHA-256).
//! 4. *Manifest*: version N+1 listing them, chained to N, signed, PUT and
//!    read back.
//! 5. *Marks*, then the journal (`upload-journal.json`, atomically
//!    replaced). The writer's retention deletes marked segments (with a
//!    checkpoint), never an unmarked one.
//!
//! A crash anywhere repeats at most steps 3-5 for one batch: re-uploading
//! identical bytes is harmless, and a manifest version already written is
//! adopted rather than written twice. A failing store backs off (doubling,
//! up to `max_backoff`); the writer keeps recording to disk meanwhile.
//!
//! Under `[cluster]`, every pass ends by telling the fleet's catalog (see
//! `catalog.rs`) what it lacks: the version just written, or versions read
//! back from the bucket when the catalog is behind (the control database
//! was down, the host died before the agent wrote them), then which
//! uploaded segments are still on local disk. All of it is queued; nothing
//! here waits on the control database.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use tollgate_recorder::format::parse_shard_dir_name;
use tollgate_recorder::fs::RealFs;
use tollgate_recorder::index::INDEX_FILE;
use tollgate_recorder::list_segments;
use tollgate_recorder::manifest::{
    ManifestBody, ManifestEntry, inspect_sealed_segment, manifest_key, sha256_hex,
};
use tollgate_recorder::uploaded_mark_path;
use tracing::{info, warn};

use super::UploadConfig;
use super::catalog::{
    CatalogManifest, CatalogSink, MAX_LOCAL_KEYS, local_times, marked_local_segments,
};
use super::s3::{Bucket, MAX_OBJECT};
use crate::metrics::Exposition;

/// The local journal's file name, in the recording directory.
pub const JOURNAL_FILE: &str = "upload-journal.json";
/// Most segments per manifest version (a long backlog goes in batches).
const BATCH_SEGMENTS: usize = 64;
/// Most bytes per manifest version.
const BATCH_BYTES: u64 = 1 << 30;
/// Most manifest versions sent to a catalog that is behind, per pass.
const CATALOG_CATCH_UP: u64 = 64;

/// What the uploader last wrote to the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    host: String,
    /// The newest manifest version confirmed in the bucket (0: none).
    version: u64,
    /// Its SHA-256 (hex); empty for version 0.
    sha256: String,
}

/// Shared counters: read by `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct UploadStatus {
    /// Sealed segments not yet confirmed in the bucket.
    pub backlog: AtomicU64,
    /// Bytes of those.
    pub backlog_bytes: AtomicU64,
    /// Seconds since the oldest of them was sealed (0: none).
    pub oldest_pending_s: AtomicU64,
    pub uploaded_segments: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub failures: AtomicU64,
    pub manifest_version: AtomicU64,
    /// False while the last attempt failed.
    pub store_ok: AtomicBool,
    pub last_error: Mutex<String>,
}

impl UploadStatus {
    /// One `/readyz` line: uploads never make the host unready (sessions
    /// keep recording to disk), they make it degraded.
    pub fn ready_detail(&self) -> (bool, String) {
        let backlog = self.backlog.load(Ordering::Relaxed);
        let oldest = self.oldest_pending_s.load(Ordering::Relaxed);
        let version = self.manifest_version.load(Ordering::Relaxed);
        if self.store_ok.load(Ordering::Relaxed) {
            (
                false,
                format!("manifest version {version}, backlog {backlog} segments"),
            )
        } else {
            let err = self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            (
                true,
                format!("degraded: {err}; backlog {backlog} segments, oldest sealed {oldest}s ago"),
            )
        }
    }

    pub fn render(&self, e: &mut Exposition) {
        let gauges: [(&str, &str, &AtomicU64); 4] = [
            (
                "tollgate_recording_upload_backlog_segments",
                "Sealed segments not yet confirmed in object storage.",
                &self.backlog,
            ),
            (
                "tollgate_recording_upload_backlog_bytes",
                "Bytes of the sealed segments not yet confirmed in object storage.",
                &self.backlog_bytes,
            ),
            (
                "tollgate_recording_upload_oldest_pending_seconds",
                "Age of the oldest sealed segment not yet confirmed in object storage.",
                &self.oldest_pending_s,
            ),
            (
                "tollgate_recording_upload_manifest_version",
                "Newest manifest version confirmed in object storage.",
                &self.manifest_version,
            ),
        ];
        for (name, help, v) in gauges {
            e.family(name, "gauge", help);
            e.sample(name, &[], v.load(Ordering::Relaxed) as f64);
        }
        let counters: [(&str, &str, &AtomicU64); 3] = [
            (
                "tollgate_recording_uploaded_segments_total",
                "Segments uploaded and verified.",
                &self.uploaded_segments,
            ),
            (
                "tollgate_recording_uploaded_bytes_total",
                "Bytes of segments uploaded and verified.",
                &self.uploaded_bytes,
            ),
            (
                "tollgate_recording_upload_failures_total",
                "Upload passes that failed (store unreachable, refused, or a read-back mismatch).",
                &self.failures,
            ),
        ];
        for (name, help, v) in counters {
            e.family(name, "counter", help);
            e.sample(name, &[], v.load(Ordering::Relaxed) as f64);
        }
        let up = "tollgate_recording_upload_store_up";
        e.family(
            up,
            "gauge",
            "1 when the last upload attempt reached the store and succeeded.",
        );
        e.sample(
            up,
            &[],
            if self.store_ok.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
    }
}

/// The running uploader.
pub struct Uploader {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    status: Arc<UploadStatus>,
}

impl Uploader {
    /// Starts the thread. Fails (and so does `tollgate run`) when the
    /// credentials or the signing key cannot be read.
    pub fn start(
        config: UploadConfig,
        recording_dir: PathBuf,
        signing_key: &Path,
        catalog: Option<Arc<dyn CatalogSink>>,
    ) -> Result<Uploader, String> {
        let bucket = config.store.open()?;
        let key = tollgate_recorder::load_signing_key(signing_key).map_err(|e| e.to_string())?;
        let status = Arc::new(UploadStatus {
            store_ok: AtomicBool::new(true),
            ..Default::default()
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut work = Work {
            bucket,
            bucket_name: config.store.url.bucket.clone(),
            catalog: catalog.map(|sink| CatalogState {
                sink,
                sent: None,
                local: None,
            }),
            prefix: config.store.url.prefix.clone(),
            host: config.host_id.clone(),
            dir: recording_dir,
            public: key.public_key().as_ref().to_vec(),
            key,
            status: status.clone(),
        };
        let (scan, max_backoff) = (config.scan_interval, config.max_backoff);
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-upload".into())
            .spawn(move || work.run(&stop2, scan, max_backoff))
            .map_err(|e| format!("cannot start the upload thread: {e}"))?;
        info!(
            bucket = %config.store.url.bucket,
            prefix = %config.store.url.prefix,
            host_id = %config.host_id,
            "uploading sealed recording segments"
        );
        Ok(Uploader {
            stop,
            thread: Some(thread),
            status,
        })
    }

    pub fn status(&self) -> Arc<UploadStatus> {
        self.status.clone()
    }

    /// Asks for one last pass (the recorder sealed its segments on shutdown)
    /// and waits for the thread, at most `grace`.
    pub fn shutdown(mut self, grace: Duration) {
        {
            let (lock, cv) = &*self.stop;
            if let Ok(mut s) = lock.lock() {
                *s = true;
            }
            cv.notify_all();
        }
        let deadline = Instant::now() + grace;
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                warn!(
                    "the uploader did not finish within the shutdown grace; the next start resumes"
                );
            }
        }
    }
}

struct Work {
    bucket: Bucket,
    bucket_name: String,
    catalog: Option<CatalogState>,
    prefix: String,
    host: String,
    dir: PathBuf,
    key: Ed25519KeyPair,
    public: Vec<u8>,
    status: Arc<UploadStatus>,
}

/// What this uploader told the catalog, per the catalog's epoch.
struct CatalogState {
    sink: Arc<dyn CatalogSink>,
    /// (epoch, newest manifest version queued).
    sent: Option<(u64, u64)>,
    /// (epoch, the local copies last queued).
    local: Option<(u64, Vec<String>)>,
}

/// A sealed segment waiting for upload.
struct Pending {
    shard: u32,
    path: PathBuf,
    /// `shard-N/<name>`
    rel: String,
    size: u64,
    sealed: SystemTime,
}

impl Work {
    fn run(&mut self, stop: &(Mutex<bool>, Condvar), scan: Duration, max_backoff: Duration) {
        let mut backoff = Duration::from_secs(1).min(max_backoff);
        loop {
            let stopping = stop.0.lock().map(|s| *s).unwrap_or(true);
            let wait = match self.pass() {
                Ok(more) => {
                    self.status.store_ok.store(true, Ordering::Relaxed);
                    backoff = Duration::from_secs(1).min(max_backoff);
                    if more { Duration::ZERO } else { scan }
                }
                Err(e) => {
                    self.status.failures.fetch_add(1, Ordering::Relaxed);
                    self.status.store_ok.store(false, Ordering::Relaxed);
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "recording upload failed; retrying");
                    if let Ok(mut last) = self.status.last_error.lock() {
                        *last = e;
                    }
                    let w = backoff;
                    backoff = (backoff * 2).min(max_backoff);
                    w
                }
            };
            if stopping {
                return;
            }
            let (lock, cv) = stop;
            let Ok(guard) = lock.lock() else { return };
            let (guard, _) = cv
                .wait_timeout_while(guard, wait, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            drop(guard);
        }
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    fn load_journal(&self) -> Result<Journal, String> {
        let path = self.journal_path();
        match std::fs::read(&path) {
            Ok(data) => {
                let j: Journal = serde_json::from_slice(&data)
                    .map_err(|e| format!("{}: damaged: {e}", path.display()))?;
                if j.host != self.host {
                    return Err(format!(
                        "{} belongs to host_id {:?}, this host uploads as {:?}: move it away to start a new chain",
                        path.display(),
                        j.host,
                        self.host
                    ));
                }
                Ok(j)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Journal {
                host: self.host.clone(),
                ..Default::default()
            }),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn save_journal(&self, j: &Journal) -> Result<(), String> {
        let path = self.journal_path();
        let tmp = self.dir.join(format!("{JOURNAL_FILE}.tmp"));
        let data = serde_json::to_vec(j).map_err(|e| e.to_string())?;
        write_durably(&tmp, &data)?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        sync_dir(&self.dir)
    }

    fn object_key(&self, rel: &str) -> String {
        format!("{}{}/{rel}", self.prefix, self.host)
    }

    /// One pass; `Ok(true)` when a full batch went and more is waiting.
    fn pass(&mut self) -> Result<bool, String> {
        let mut journal = self.load_journal()?;
        let pending = self.scan()?;
        self.publish_backlog(&pending);
        self.adopt(&mut journal)?;
        let pending = self.scan()?;
        self.publish_backlog(&pending);
        if pending.is_empty() {
            self.sync_catalog(journal.version, None);
            return Ok(false);
        }
        let mut entries = Vec::new();
        let mut times = std::collections::HashMap::new();
        let mut bytes = 0u64;
        let mut shards = Vec::new();
        for p in &pending {
            if entries.len() >= BATCH_SEGMENTS || (bytes > 0 && bytes + p.size > BATCH_BYTES) {
                break;
            }
            let (entry, t) = self.upload_segment(p)?;
            times.insert(entry.key.clone(), t);
            entries.push(entry);
            bytes += p.size;
            if !shards.contains(&p.shard) {
                shards.push(p.shard);
            }
        }
        let full = entries.len() < pending.len();
        for shard in shards {
            self.upload_index(shard)?;
        }
        let body = ManifestBody {
            host: self.host.clone(),
            version: journal.version + 1,
            prev: journal.sha256.clone(),
            created_ns: tollgate_recorder::now_ns(),
            entries,
        };
        let data = body.to_signed_bytes(&self.key);
        let key = self.prefix.clone() + &manifest_key(&self.host, body.version);
        self.bucket.put(&key, &data).map_err(|e| e.to_string())?;
        let back = self
            .bucket
            .get(&key, tollgate_recorder::manifest::MAX_MANIFEST)
            .map_err(|e| e.to_string())?;
        if back != data {
            return Err(format!("{key}: read back differs from what was written"));
        }
        self.mark(&body.entries)?;
        journal.version = body.version;
        journal.sha256 = sha256_hex(&data);
        self.save_journal(&journal)?;
        let fresh = CatalogManifest::from_body(
            &body,
            &self.bucket_name,
            &self.prefix,
            journal.sha256.clone(),
            |e| times.get(&e.key).copied(),
        );
        self.sync_catalog(journal.version, Some(fresh));
        self.status
            .manifest_version
            .store(journal.version, Ordering::Relaxed);
        info!(
            version = journal.version,
            segments = body.entries.len(),
            bytes,
            "recording segments uploaded; manifest written"
        );
        let left = self.scan()?;
        self.publish_backlog(&left);
        Ok(full)
    }

    /// Takes over manifest versions in the bucket the journal does not know yet.
    fn adopt(&mut self, journal: &mut Journal) -> Result<(), String> {
        loop {
            let next = journal.version + 1;
            let key = self.prefix.clone() + &manifest_key(&self.host, next);
            let data = match self
                .bucket
                .get(&key, tollgate_recorder::manifest::MAX_MANIFEST)
            {
                Ok(d) => d,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e.to_string()),
            };
            let body = ManifestBody::from_signed_bytes(&data, std::slice::from_ref(&self.public))
                .map_err(|e| {
                format!("{key}: {e}: is another host writing as {:?}?", self.host)
            })?;
            if body.host != self.host || body.version != next || body.prev != journal.sha256 {
                return Err(format!(
                    "{key} does not continue this host's manifest chain (version {}): is another host writing as {:?}? Uploads stop until that is resolved",
                    journal.version, self.host
                ));
            }
            self.mark(&body.entries)?;
            journal.version = next;
            journal.sha256 = sha256_hex(&data);
            self.save_journal(journal)?;
            info!(
                version = next,
                "adopted a manifest version written before a restart"
            );
        }
        self.status
            .manifest_version
            .store(journal.version, Ordering::Relaxed);
        Ok(())
    }

    /// Sealed, unmarked segments, per shard oldest first.
    fn scan(&self) -> Result<Vec<Pending>, String> {
        let mut out = Vec::new();
        let mut shards: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some((parse_shard_dir_name(&name)?, e.path()))
            })
            .collect();
        shards.sort();
        for (shard, dir) in shards {
            let segs = list_segments(&RealFs, &dir).map_err(|e| e.to_string())?;
            // The last segment is the active one, unless the writer sealed
            // it on shutdown (a new one is created at the next start).
            for (i, (_, path)) in segs.iter().enumerate() {
                if uploaded_mark_path(path).exists() {
                    continue;
                }
                if i + 1 == segs.len() && !ends_with_seal(path) {
                    break;
                }
                let Ok(meta) = std::fs::metadata(path) else {
                    continue;
                };
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                out.push(Pending {
                    shard,
                    rel: format!(
                        "{}/{name}",
                        tollgate_recorder::format::shard_dir_name(shard)
                    ),
                    path: path.clone(),
                    size: meta.len(),
                    sealed: meta.modified().unwrap_or(SystemTime::now()),
                });
            }
        }
        Ok(out)
    }

    fn publish_backlog(&self, pending: &[Pending]) {
        let s = &self.status;
        s.backlog.store(pending.len() as u64, Ordering::Relaxed);
        s.backlog_bytes
            .store(pending.iter().map(|p| p.size).sum(), Ordering::Relaxed);
        let oldest = pending
            .iter()
            .map(|p| p.sealed)
            .min()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        s.oldest_pending_s.store(oldest, Ordering::Relaxed);
    }

    /// Tells the catalog what it lacks (versions up to `head`, `fresh`
    /// being the one just written), then the local copies. Never waits:
    /// what the queue refuses goes at a later pass.
    fn sync_catalog(&mut self, head: u64, fresh: Option<CatalogManifest>) {
        let Some(mut cat) = self.catalog.take() else {
            return;
        };
        if let Some((epoch, through)) = cat.sink.position() {
            let mut sent = match cat.sent {
                Some((e, s)) if e == epoch => s.max(through),
                _ => through,
            };
            let mut recorded = false;
            while sent < head && sent < through + CATALOG_CATCH_UP {
                let v = sent + 1;
                let m = match &fresh {
                    Some(m) if m.version == v => m.clone(),
                    _ => match self.catalog_from_bucket(v) {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(version = v, error = %e, "cannot read a manifest version back for the catalog; retrying later");
                            break;
                        }
                    },
                };
                if !cat.sink.record(m) {
                    break;
                }
                sent = v;
                recorded = true;
            }
            cat.sent = Some((epoch, sent));
            match marked_local_segments(&self.dir) {
                Ok(keys) if keys.len() > MAX_LOCAL_KEYS => {
                    warn!(
                        segments = keys.len(),
                        "too many uploaded segments on disk to report their local copies to the catalog"
                    );
                }
                Ok(keys) => {
                    let keys: Vec<String> = keys.iter().map(|k| self.object_key(k)).collect();
                    let changed = cat
                        .local
                        .as_ref()
                        .is_none_or(|(e, k)| *e != epoch || *k != keys);
                    if (recorded || changed)
                        && cat
                            .sink
                            .local_copies(&self.host, &self.bucket_name, keys.clone())
                    {
                        cat.local = Some((epoch, keys));
                    }
                }
                Err(e) => warn!(error = %e, "cannot list the local copies for the catalog"),
            }
        }
        self.catalog = Some(cat);
    }

    /// A manifest version of this host, read back from the bucket and
    /// checked (own key, host, version), as catalog rows.
    fn catalog_from_bucket(&self, version: u64) -> Result<CatalogManifest, String> {
        let key = self.prefix.clone() + &manifest_key(&self.host, version);
        let data = self
            .bucket
            .get(&key, tollgate_recorder::manifest::MAX_MANIFEST)
            .map_err(|e| e.to_string())?;
        let body = ManifestBody::from_signed_bytes(&data, std::slice::from_ref(&self.public))
            .map_err(|e| format!("{key}: {e}"))?;
        if body.host != self.host || body.version != version {
            return Err(format!("{key} is not this host's version {version}"));
        }
        Ok(CatalogManifest::from_body(
            &body,
            &self.bucket_name,
            &self.prefix,
            sha256_hex(&data),
            |e| local_times(&self.dir.join(&e.key)),
        ))
    }

    /// PUT (unless the same bytes are there), then read back and compare;
    /// the entry, and the segment's (opened, sealed) times.
    fn upload_segment(&self, p: &Pending) -> Result<(ManifestEntry, (u64, u64)), String> {
        if p.size > MAX_OBJECT {
            return Err(format!(
                "{}: {} bytes, above {MAX_OBJECT}",
                p.path.display(),
                p.size
            ));
        }
        let data = std::fs::read(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?;
        // The seal signature is not required here: a segment sealed before
        // the key was configured must not block every later upload
        // (`verify --from --key` names it as unsigned).
        let seg = inspect_sealed_segment(&data, &[])
            .map_err(|e| format!("{}: not uploadable: {e}", p.path.display()))?;
        let sha = sha256_hex(&data);
        let key = self.object_key(&p.rel);
        let size = data.len() as u64;
        let present = match self.bucket.head(&key).map_err(|e| e.to_string())? {
            Some(n) if n == size => {
                let there = self
                    .bucket
                    .get(&key, MAX_OBJECT)
                    .map_err(|e| e.to_string())?;
                sha256_hex(&there) == sha
            }
            _ => false,
        };
        if !present {
            self.bucket.put(&key, &data).map_err(|e| e.to_string())?;
            let back = self
                .bucket
                .get(&key, MAX_OBJECT)
                .map_err(|e| e.to_string())?;
            if back.len() as u64 != size || sha256_hex(&back) != sha {
                return Err(format!(
                    "{key}: read back {} bytes that differ from the {size} written",
                    back.len()
                ));
            }
        }
        self.status
            .uploaded_segments
            .fetch_add(1, Ordering::Relaxed);
        self.status
            .uploaded_bytes
            .fetch_add(size, Ordering::Relaxed);
        let entry = ManifestEntry {
            key: p.rel.clone(),
            shard: seg.shard,
            base: seg.base,
            next_seq: seg.next_seq,
            prev_hash: seg.prev_hash,
            chain_head: seg.chain_head,
            size,
            sha256: sha,
        };
        Ok((entry, (seg.created_ns, seg.sealed_ns)))
    }

    fn upload_index(&self, shard: u32) -> Result<(), String> {
        let dir = self
            .dir
            .join(tollgate_recorder::format::shard_dir_name(shard));
        let path = dir.join(INDEX_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        // No session yet: nothing to list (and an empty PUT may go without
        // the Content-Length some stores insist on).
        if data.is_empty() {
            return Ok(());
        }
        let rel = format!(
            "{}/{INDEX_FILE}",
            tollgate_recorder::format::shard_dir_name(shard)
        );
        self.bucket
            .put(&self.object_key(&rel), &data)
            .map_err(|e| e.to_string())
    }

    /// Marks the entries' local segments (confirmed: retention may delete them).
    fn mark(&self, entries: &[ManifestEntry]) -> Result<(), String> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for e in entries {
            // Only `shard-N/<base>.seg` (the entry is signed, but a mark is
            // never written outside the shard directories).
            let valid = e.key.split_once('/').is_some_and(|(shard, name)| {
                parse_shard_dir_name(shard).is_some()
                    && tollgate_recorder::format::parse_segment_file_name(name).is_some()
            });
            if !valid {
                return Err(format!(
                    "manifest entry {:?} is not shard-N/<base>.seg",
                    e.key
                ));
            }
            let path = self.dir.join(&e.key);
            if !path.exists() {
                continue;
            }
            write_durably(&uploaded_mark_path(&path), b"")?;
            if let Some(d) = path.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
                dirs.push(d.to_path_buf());
            }
        }
        for d in dirs {
            sync_dir(&d)?;
        }
        Ok(())
    }
}

/// True when the file's last bytes are a valid seal (magic and CRC): the
/// writer never appends to a sealed segment.
fn ends_with_seal(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    use tollgate_recorder::format::{SEAL_LEN, Seal};
    let mut buf = [0u8; SEAL_LEN];
    std::fs::File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-(SEAL_LEN as i64)))?;
            f.read_exact(&mut buf)
        })
        .is_ok_and(|()| Seal::decode(&buf).is_ok())
}

fn write_durably(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}
