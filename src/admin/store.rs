//! The durable list of revocations made through the admin API:
//! `<state_dir>/revocations.json`, rewritten whole on every change (write a
//! temporary file, fsync it, rename it over the old one, fsync the
//! directory) before the change is acknowledged, and read back at start.
//!
//! ```json
//! {"format": "tollgate-revocations", "version": 1, "next_id": 3,
//!  "revocations": [{"id": 2, "kind": "subject", "value": "ci-job", "reason": "leak",
//!                   "revoked_by": "local-admin", "revoked_ms": 1764876000000,
//!                   "until_ms": 1764879600000}]}
//! ```
//! A file that cannot be read or parsed stops the start (fail closed: a
//! gateway that forgot its revocations would let revoked callers in).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::Revocation;
use super::validate::{self, InputError};

/// The store's file name inside the state directory.
pub const FILE_NAME: &str = "revocations.json";
const FORMAT: &str = "tollgate-revocations";
const VERSION: u32 = 1;
/// A store file larger than this is refused.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Revocations kept at once (each is small; this bounds memory and the
/// cost of rewriting the file).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revocation store {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("revocation store {path} is {len} bytes, more than the {max} allowed")]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("revocation store {path} is not a tollgate revocation list: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("revocation store {path}: entry {index}: {source}")]
    BadEntry {
        path: PathBuf,
        index: usize,
        #[source]
        source: InputError,
    },
    #[error("the revocation store is full ({max} revocations); lift some first")]
    Full { max: usize },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    format: String,
    version: u32,
    next_id: u64,
    revocations: Vec<Revocation>,
}

struct Inner {
    next_id: u64,
    entries: Vec<Revocation>,
}

/// The store; every change is on disk before the call returns.
pub struct RevocationStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RevocationStore {
    /// Open (creating `dir` if needed) and read what an earlier run stored.
    /// Revocations that lapsed while the gateway was down are dropped.
    pub fn open(dir: &Path, now_ms: u64) -> Result<RevocationStore, StoreError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(io(&path, "create directory"))?;
        let inner = match File::open(&path) {
            Ok(f) => read(&path, f, now_ms)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Inner {
                next_id: 1,
                entries: Vec::new(),
            },
            Err(e) => return Err(io(&path, "open")(e)),
        };
        Ok(RevocationStore {
            path,
            inner: Mutex::new(inner),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The revocations in force at `now_ms`.
    pub fn entries(&self, now_ms: u64) -> Vec<Revocation> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .iter()
            .filter(|r| in_force(r, now_ms))
            .cloned()
            .collect()
    }

    /// Store `r` under a new id (replacing a revocation of the same kind and
    /// value) and return it as stored.
    pub fn add(&self, r: &Revocation, now_ms: u64) -> Result<Revocation, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<Revocation> = inner
            .entries
            .iter()
            .filter(|e| in_force(e, now_ms) && !(e.kind == r.kind && e.value == r.value))
            .cloned()
            .collect();
        if entries.len() >= MAX_ENTRIES {
            return Err(StoreError::Full { max: MAX_ENTRIES });
        }
        let mut stored = r.clone();
        stored.id = Some(inner.next_id);
        entries.push(stored.clone());
        let next_id = inner.next_id + 1;
        self.write(next_id, &entries)?;
        *inner = Inner { next_id, entries };
        Ok(stored)
    }

    /// Remove revocation `id`; `Ok(None)` when there is none (or it lapsed).
    pub fn remove(&self, id: u64, now_ms: u64) -> Result<Option<Revocation>, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(found) = inner
            .entries
            .iter()
            .find(|e| e.id == Some(id) && in_force(e, now_ms))
            .cloned()
        else {
            return Ok(None);
        };
        let entries: Vec<Revocation> = inner
            .entries
            .iter()
            .filter(|e| e.id != Some(id) && in_force(e, now_ms))
            .cloned()
            .collect();
        self.write(inner.next_id, &entries)?;
        inner.entries = entries;
        Ok(Some(found))
    }

    /// Replace the file atomically: a reader (or a crash) sees the old list
    /// or the new one, never a mix.
    fn write(&self, next_id: u64, entries: &[Revocation]) -> Result<(), StoreError> {
        let body = FileBody {
            format: FORMAT.into(),
            version: VERSION,
            next_id,
            revocations: entries.to_vec(),
        };
        let text = serde_json::to_vec_pretty(&body).map_err(|e| StoreError::Parse {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp, "create"))?;
        f.write_all(&text).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path, "rename"))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir, "fsync directory"))
    }
}

fn in_force(r: &Revocation, now_ms: u64) -> bool {
    r.until_ms.is_none_or(|u| now_ms < u)
}

fn io(path: &Path, op: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        path: path.clone(),
        op,
        source,
    }
}

fn read(path: &Path, f: File, now_ms: u64) -> Result<Inner, StoreError> {
    let len = f.metadata().map_err(io(path, "stat"))?.len();
    if len > MAX_FILE {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            len,
            max: MAX_FILE,
        });
    }
    let mut text = Vec::new();
    f.take(MAX_FILE)
        .read_to_end(&mut text)
        .map_err(io(path, "read"))?;
    let parse = |reason: String| StoreError::Parse {
        path: path.to_owned(),
        reason,
    };
    let body: FileBody = serde_json::from_slice(&text).map_err(|e| parse(e.to_string()))?;
    if body.format != FORMAT || body.version != VERSION {
        return Err(parse(format!(
            "format {:?} version {}, expected {FORMAT:?} version {VERSION}",
            body.format, body.version
        )));
    }
    if body.revocations.len() > MAX_ENTRIES {
        return Err(parse(format!("more than {MAX_ENTRIES} revocations")));
    }
    for (index, r) in body.revocations.iter().enumerate() {
        let bad = |source| StoreError::BadEntry {
            path: path.to_owned(),
            index,
            source,
        };
        validate::identifier("value", &r.value).map_err(bad)?;
        validate::text("reason", &r.reason, validate::MAX_REASON).map_err(bad)?;
        if r.id.is_none_or(|id| id >= body.next_id) {
            return Err(parse(format!("entry {index} has no id below next_id")));
        }
    }
    let entries = body
        .revocations
        .into_iter()
        .filter(|r| in_force(r, now_ms))
        .collect();
    Ok(Inner {
        next_id: body.next_id,
        entries,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::admin::RevocationKind;

    fn rev(value: &str, until_ms: Option<u64>) -> Revocation {
        Revocation {
            id: None,
            kind: RevocationKind::Subject,
            value: value.into(),
            reason: "leak".into(),
            revoked_by: "sam".into(),
            revoked_ms: Some(1_000),
            until_ms,
        }
    }

    #[test]
    fn what_is_stored_survives_reopening_and_a_lift_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = RevocationStore::open(dir.path(), 0).unwrap();
        let a = store.add(&rev("a", None), 10).unwrap();
        let b = store.add(&rev("b", None), 10).unwrap();
        assert_eq!((a.id, b.id), (Some(1), Some(2)));
        drop(store);
        let store = RevocationStore::open(dir.path(), 20).unwrap();
        assert_eq!(store.entries(20), vec![a.clone(), b.clone()]);
        assert_eq!(store.remove(1, 30).unwrap(), Some(a));
        assert_eq!(store.remove(1, 30).unwrap(), None);
        drop(store);
        let store = RevocationStore::open(dir.path(), 40).unwrap();
        assert_eq!(store.entries(40), vec![b]);
        // Ids are never reused, even after a lift and a restart.
        assert_eq!(store.add(&rev("c", None), 50).unwrap().id, Some(3));
        assert!(!dir.path().join("revocations.json.tmp").exists());
    }

    #[test]
    fn a_revocation_lapses_at_its_until_and_is_dropped_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = RevocationStore::open(dir.path(), 0).unwrap();
        store.add(&rev("short", Some(100)), 10).unwrap();
        assert_eq!(store.entries(99).len(), 1);
        assert!(store.entries(100).is_empty());
        assert_eq!(store.remove(1, 100).unwrap(), None);
        store.add(&rev("other", None), 200).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("short"), "{text}");
    }

    #[test]
    fn revoking_the_same_value_again_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RevocationStore::open(dir.path(), 0).unwrap();
        store.add(&rev("a", Some(100)), 10).unwrap();
        let again = store.add(&rev("a", None), 20).unwrap();
        assert_eq!(store.entries(500), vec![again]);
    }

    #[test]
    fn a_damaged_or_hostile_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for text in [
            "{",
            r#"{"format":"other","version":1,"next_id":1,"revocations":[]}"#,
            r#"{"format":"tollgate-revocations","version":1,"next_id":2,"revocations":[{"id":1,"kind":"subject","value":"a\u0000b","reason":"","revoked_by":"x","revoked_ms":1}]}"#,
            r#"{"format":"tollgate-revocations","version":1,"next_id":1,"revocations":[{"id":1,"kind":"subject","value":"a","reason":"","revoked_by":"x","revoked_ms":1}]}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(RevocationStore::open(dir.path(), 0).is_err(), "{text}");
        }
        let f = File::create(&path).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        assert!(matches!(
            RevocationStore::open(dir.path(), 0),
            Err(StoreError::TooLarge { .. })
        ));
    }
}
