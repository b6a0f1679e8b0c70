//! Revocation of identities by subject, token id (`jti`) or issuer: a read-mostly shared store
//! checked on every new session, an API for the admin plane, a watched file, and
//! subscriptions so the engine can end revoked identities' live sessions on every shard.
//!
//! The file is JSON (a list, or `{"revoke": [...]}`) or TOML (`[[revoke]]`, when the name ends
//! in `.toml`); each entry names exactly one of `subject`, `token_id`, `issuer`, with an
//! optional `until` (RFC 3339 time) after which the revocation lapses, and an optional
//! `reason`:
//! ```json
//! [{"subject": "spiffe://prod.example/ns/ci/runner", "reason": "compromised runner"},
//!  {"token_id": "4f1c", "until": "2026-12-01T00:00:00Z"}]
//! ```
//! The file and the API are two separate lists; the effective set is their union.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// How often the revocation file's metadata is polled: well within the one second promised.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);
/// A revocation file larger than this is refused (and the previous list kept).
pub const MAX_REVOCATION_FILE: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {len} bytes, more than the {max} allowed")]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("revocation entry {index}: exactly one of subject, token_id, issuer must be set")]
    AmbiguousEntry { index: usize },
    #[error("cannot start the revocation watcher: {source}")]
    Spawn { source: std::io::Error },
}

/// What a revocation applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationTarget {
    Subject(String),
    TokenId(String),
    Issuer(String),
}

impl std::fmt::Display for RevocationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Subject(s) => write!(f, "subject {s:?}"),
            Self::TokenId(s) => write!(f, "token id {s:?}"),
            Self::Issuer(s) => write!(f, "issuer {s:?}"),
        }
    }
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub target: RevocationTarget,
    /// The revocation lapses at this time; `None`: until removed.
    pub until: Option<SystemTime>,
    pub reason: Option<String>,
}

impl Revocation {
    pub fn new(target: RevocationTarget) -> Self {
        Self {
            target,
            until: None,
            reason: None,
        }
    }

    pub fn is_in_force(&self, now: SystemTime) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// Whether this revocation (in force at `now`) covers `id`: the test the engine runs on
    /// each live session when notified.
    pub fn matches(&self, id: &Identity, now: SystemTime) -> bool {
        self.is_in_force(now)
            && match &self.target {
                RevocationTarget::Subject(s) => id.subject == *s,
                RevocationTarget::TokenId(t) => id.token_id.as_deref() == Some(t.as_str()),
                RevocationTarget::Issuer(i) => id.issuer == *i,
            }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    token_id: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default, with = "humantime_serde")]
    until: Option<SystemTime>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileShape {
    List(Vec<FileEntry>),
    Table {
        #[serde(default)]
        revoke: Vec<FileEntry>,
    },
}

/// Parses a revocation list; `toml` selects the TOML syntax.
pub fn parse_revocation_list(
    text: &str,
    toml: bool,
    path: &Path,
) -> Result<Vec<Revocation>, RevocationError> {
    let parse_err = |reason: String| RevocationError::Parse {
        path: path.to_owned(),
        reason,
    };
    let shape: FileShape = if toml {
        toml::from_str(text).map_err(|e| parse_err(e.to_string()))?
    } else {
        serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?
    };
    let entries = match shape {
        FileShape::List(l) | FileShape::Table { revoke: l } => l,
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            let target = match (e.subject, e.token_id, e.issuer) {
                (Some(s), None, None) => RevocationTarget::Subject(s),
                (None, Some(t), None) => RevocationTarget::TokenId(t),
                (None, None, Some(i)) => RevocationTarget::Issuer(i),
                _ => return Err(RevocationError::AmbiguousEntry { index }),
            };
            Ok(Revocation {
                target,
                until: e.until,
                reason: e.reason,
            })
        })
        .collect()
}

/// Three maps keyed by plain strings, so a check probes with `&str` and never allocates.
#[derive(Debug, Default)]
struct RevocationSet {
    subjects: HashMap<String, Revocation>,
    token_ids: HashMap<String, Revocation>,
    issuers: HashMap<String, Revocation>,
}

impl RevocationSet {
    fn build(lists: [&[Revocation]; 2]) -> Self {
        let mut set = Self::default();
        for r in lists.into_iter().flatten() {
            let (map, key) = match &r.target {
                RevocationTarget::Subject(k) => (&mut set.subjects, k),
                RevocationTarget::TokenId(k) => (&mut set.token_ids, k),
                RevocationTarget::Issuer(k) => (&mut set.issuers, k),
            };
            // Both lists may revoke the same target; the longer-lasting one wins.
            map.entry(key.clone())
                .and_modify(|old: &mut Revocation| {
                    if outlasts(r, old) {
                        *old = r.clone();
                    }
                })
                .or_insert_with(|| r.clone());
        }
        set
    }

    fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.token_ids.is_empty() && self.issuers.is_empty()
    }

    fn all(&self) -> impl Iterator<Item = &Revocation> {
        self.subjects
            .values()
            .chain(self.token_ids.values())
            .chain(self.issuers.values())
    }

    fn find(&self, id: &Identity, now: SystemTime) -> Option<&Revocation> {
        let in_force = |r: &&Revocation| r.is_in_force(now);
        self.subjects
            .get(id.subject.as_str())
            .filter(in_force)
            .or_else(|| self.issuers.get(id.issuer.as_str()).filter(in_force))
            .or_else(|| {
                id.token_id
                    .as_deref()
                    .and_then(|t| self.token_ids.get(t))
                    .filter(in_force)
            })
    }
}

fn outlasts(a: &Revocation, b: &Revocation) -> bool {
    match (a.until, b.until) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x > y,
    }
}

type Callback = Arc<dyn Fn(&Revocation) + Send + Sync>;

/// Identifies a subscription for [`Revocations::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionId(u64);

#[derive(Default)]
struct Lists {
    api: Vec<Revocation>,
    file: Vec<Revocation>,
}

/// The shared revocation store.
pub struct Revocations {
    snapshot: RwLock<Arc<RevocationSet>>,
    /// Lets the common case (nothing revoked) skip the lock entirely.
    any: AtomicBool,
    lists: Mutex<Lists>,
    subscribers: RwLock<Vec<(u64, Callback)>>,
    next_subscription: AtomicU64,
    watcher: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("count", &self.list().len())
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// A store fed only by the API.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            snapshot: RwLock::new(Arc::new(RevocationSet::default())),
            any: AtomicBool::new(false),
            lists: Mutex::new(Lists::default()),
            subscribers: RwLock::new(Vec::new()),
            next_subscription: AtomicU64::new(1),
            watcher: Mutex::new(None),
        })
    }

    /// A store that also follows `path`: read now (a broken file is a start-up error), then
    /// re-read by a background thread whenever it changes.
    pub fn with_file(path: &Path) -> Result<Arc<Self>, RevocationError> {
        let this = Self::new();
        let mut stamp = None;
        let initial = read_file(path, &mut stamp)?.unwrap_or_default();
        this.replace_file_list(initial);
        let (tx, rx) = mpsc::channel::<()>();
        let weak = Arc::downgrade(&this);
        let path = path.to_owned();
        let handle = std::thread::Builder::new()
            .name("tg-revocations".into())
            .spawn(move || watch_file(&weak, &path, stamp, &rx))
            .map_err(|source| RevocationError::Spawn { source })?;
        *this.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some((tx, handle));
        Ok(this)
    }

    /// The revocation covering `id` at `now`, if any. Cheap; called on every new session and
    /// on every cache hit.
    pub fn check(&self, id: &Identity, now: SystemTime) -> Option<Revocation> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let set = self
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        set.find(id, now).cloned()
    }

    pub fn is_revoked(&self, id: &Identity, now: SystemTime) -> bool {
        self.check(id, now).is_some()
    }

    /// Adds (or replaces) an API revocation and notifies subscribers.
    pub fn revoke(&self, revocation: Revocation) {
        {
            let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            lists.api.retain(|r| r.target != revocation.target);
            lists.api.push(revocation.clone());
            self.publish(&lists);
        }
        self.notify(&revocation);
    }

    /// Removes an API revocation; returns whether there was one. Revocations from the file
    /// are removed by editing the file.
    pub fn unrevoke(&self, target: &RevocationTarget) -> bool {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let before = lists.api.len();
        lists.api.retain(|r| r.target != *target);
        let removed = lists.api.len() != before;
        if removed {
            self.publish(&lists);
        }
        removed
    }

    /// Every revocation currently known (API and file), in force or not.
    pub fn list(&self) -> Vec<Revocation> {
        let set = self
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        set.all().cloned().collect()
    }

    /// Calls `callback` for every new revocation (API or file) from now on. Callbacks run on
    /// the revoking thread (the admin plane's, or the file watcher's): keep them short, e.g.
    /// send a message to each shard.
    pub fn subscribe(&self, callback: Box<dyn Fn(&Revocation) + Send + Sync>) -> SubscriptionId {
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, Arc::from(callback)));
        SubscriptionId(id)
    }

    pub fn unsubscribe(&self, id: SubscriptionId) {
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(i, _)| *i != id.0);
    }

    /// Stops the file watcher, if any.
    pub fn shutdown(&self) {
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((tx, handle)) = watcher {
            drop(tx);
            // The watcher may itself drop the last reference and land here; never self-join.
            if handle.thread().id() != std::thread::current().id() && handle.join().is_err() {
                tracing::error!("revocation watcher panicked");
            }
        }
    }

    fn publish(&self, lists: &Lists) {
        let set = RevocationSet::build([&lists.api, &lists.file]);
        let any = !set.is_empty();
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        self.any.store(any, Ordering::Release);
    }

    fn notify(&self, revocation: &Revocation) {
        // Clone the list so a callback may (un)subscribe without deadlocking.
        let subs: Vec<Callback> = self
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for cb in subs {
            cb(revocation);
        }
    }

    /// Installs a new file list and notifies for entries that were not there before.
    fn replace_file_list(&self, new: Vec<Revocation>) {
        let added: Vec<Revocation> = {
            let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            let added = new
                .iter()
                .filter(|r| !lists.file.contains(r))
                .cloned()
                .collect();
            lists.file = new;
            self.publish(&lists);
            added
        };
        let now = SystemTime::now();
        for r in added.iter().filter(|r| r.is_in_force(now)) {
            tracing::info!(target_ = %r.target, "revocation added from file");
            self.notify(r);
        }
    }
}

impl Drop for Revocations {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type Stamp = Option<(Option<SystemTime>, u64)>;

/// Reads the file if its metadata changed since `stamp`; `Ok(None)`: unchanged.
fn read_file(path: &Path, stamp: &mut Stamp) -> Result<Option<Vec<Revocation>>, RevocationError> {
    let io = |source| RevocationError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let now_stamp = Some((meta.modified().ok(), meta.len()));
    if *stamp == now_stamp {
        return Ok(None);
    }
    if meta.len() > MAX_REVOCATION_FILE {
        return Err(RevocationError::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
            max: MAX_REVOCATION_FILE,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    // Record the stamp even if parsing fails, so a broken file is reported once, not 4×/s.
    *stamp = now_stamp;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    parse_revocation_list(&text, is_toml, path).map(Some)
}

fn watch_file(store: &Weak<Revocations>, path: &Path, mut stamp: Stamp, rx: &mpsc::Receiver<()>) {
    loop {
        match rx.recv_timeout(REVOCATION_POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        match read_file(path, &mut stamp) {
            Ok(Some(list)) => store.replace_file_list(list),
            Ok(None) => {}
            // Fail safe: an unreadable or broken file keeps the revocations already in force.
            Err(e) => {
                tracing::warn!(error = %e, "revocation file unusable; keeping the previous list")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::IdentitySource;

    fn id(sub: &str, iss: &str, jti: Option<&str>) -> Identity {
        Identity {
            subject: sub.into(),
            issuer: iss.into(),
            groups: vec![],
            token_id: jti.map(Into::into),
            expires_at: None,
            source: IdentitySource::Token,
        }
    }

    #[test]
    fn revoke_by_each_target_and_unrevoke() {
        let store = Revocations::new();
        let now = SystemTime::now();
        let alice = id("alice", "https://a", Some("t1"));
        assert!(!store.is_revoked(&alice, now));
        store.revoke(Revocation::new(RevocationTarget::TokenId("t1".into())));
        assert!(store.is_revoked(&alice, now));
        assert!(!store.is_revoked(&id("alice", "https://a", Some("t2")), now));
        assert!(store.unrevoke(&RevocationTarget::TokenId("t1".into())));
        assert!(!store.is_revoked(&alice, now));
        store.revoke(Revocation::new(RevocationTarget::Issuer(
            "https://a".into(),
        )));
        assert!(store.is_revoked(&id("bob", "https://a", None), now));
        assert!(!store.is_revoked(&id("bob", "https://b", None), now));
        store.revoke(Revocation::new(RevocationTarget::Subject("carol".into())));
        assert!(store.is_revoked(&id("carol", "https://b", None), now));
        assert!(!store.unrevoke(&RevocationTarget::Subject("nobody".into())));
    }

    #[test]
    fn revocations_lapse() {
        let store = Revocations::new();
        let now = SystemTime::now();
        let mut r = Revocation::new(RevocationTarget::Subject("dave".into()));
        r.until = Some(now + Duration::from_secs(60));
        store.revoke(r);
        assert!(store.is_revoked(&id("dave", "i", None), now));
        assert!(!store.is_revoked(&id("dave", "i", None), now + Duration::from_secs(61)));
    }

    #[test]
    fn subscribers_hear_api_revocations() {
        let store = Revocations::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sub = store.subscribe(Box::new(move |r| s2.lock().unwrap().push(r.target.clone())));
        store.revoke(Revocation::new(RevocationTarget::Subject("eve".into())));
        store.unsubscribe(sub);
        store.revoke(Revocation::new(RevocationTarget::Subject("frank".into())));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![RevocationTarget::Subject("eve".into())]
        );
    }

    #[test]
    fn file_formats() {
        let p = Path::new("r");
        let json =
            r#"[{"subject":"a"},{"token_id":"t","until":"2030-01-01T00:00:00Z","reason":"leak"}]"#;
        let l = parse_revocation_list(json, false, p).unwrap();
        assert_eq!(l[0].target, RevocationTarget::Subject("a".into()));
        assert_eq!(l[1].reason.as_deref(), Some("leak"));
        assert!(l[1].until.is_some());
        let l = parse_revocation_list(r#"{"revoke":[{"issuer":"i"}]}"#, false, p).unwrap();
        assert_eq!(l[0].target, RevocationTarget::Issuer("i".into()));
        let l = parse_revocation_list("[[revoke]]\nsubject = \"b\"\n", true, p).unwrap();
        assert_eq!(l[0].target, RevocationTarget::Subject("b".into()));
        assert!(matches!(
            parse_revocation_list(r#"[{"subject":"a","issuer":"i"}]"#, false, p),
            Err(RevocationError::AmbiguousEntry { index: 0 })
        ));
        assert!(parse_revocation_list(r#"[{"subjekt":"a"}]"#, false, p).is_err());
    }
}
