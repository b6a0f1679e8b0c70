//! Verification keys: JWKS parsing, and the sources that keep them fresh (a watched file, or
//! OIDC discovery over HTTPS) on background threads.
//!
//! Shards never wait on a source. Each source publishes an immutable `Arc<KeySet>`; a lookup
//! takes the read lock only long enough to clone the `Arc`. An unknown `kid` fails the
//! lookup at once and asks the source's thread to refresh (rate-limited), so the next
//! connection after a key rotation succeeds.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::identity::config::IssuerConfig;

/// A JWKS document (file or HTTP body) larger than this is refused.
pub const MAX_JWKS_LEN: u64 = 1024 * 1024;
/// More keys than this in one set is refused: real issuers publish a handful.
pub const MAX_KEYS: usize = 64;
/// How often a JWKS file's metadata is polled.
pub const FILE_POLL: Duration = Duration::from_secs(1);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a key set could not be loaded or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    TooLarge { what: String, len: u64, max: u64 },
    #[error("{what} is not valid JSON of the expected shape: {reason}")]
    Json { what: String, reason: String },
    #[error("JWKS has {count} keys, more than the {max} allowed")]
    TooManyKeys { count: usize, max: usize },
    #[error("JWKS has no usable signing keys")]
    NoUsableKeys,
    #[error("fetching {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("jwks_uri {uri:?} is not https")]
    InsecureJwksUri { uri: String },
    #[error("cannot start the key source thread: {source}")]
    Spawn { source: std::io::Error },
    #[error("CA file {path} holds no certificates")]
    NoCaCertificates { path: PathBuf },
}

/// One verification key and the only algorithm it may be used with.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// An immutable set of keys, as published by a source.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    /// After this instant the keys are too stale to use (discovery only).
    usable_until: Option<Instant>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot be used for signatures (encryption keys,
    /// symmetric keys, unsupported curves, short RSA moduli, no `kid`) are skipped with a
    /// warning; a set left with no usable key is an error.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<Self, KeySourceError> {
        #[derive(Deserialize)]
        struct RawJwks {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawJwks = serde_json::from_slice(bytes).map_err(|e| KeySourceError::Json {
            what: "JWKS".into(),
            reason: e.to_string(),
        })?;
        if raw.keys.len() > MAX_KEYS {
            return Err(KeySourceError::TooManyKeys {
                count: raw.keys.len(),
                max: MAX_KEYS,
            });
        }
        let mut keys: Vec<VerificationKey> = Vec::with_capacity(raw.keys.len());
        for value in raw.keys {
            match key_from_jwk(value) {
                Ok(key) if keys.iter().any(|k| k.kid == key.kid) => {
                    tracing::warn!(kid = %key.kid, "duplicate kid in JWKS; keeping the first");
                }
                Ok(key) => keys.push(key),
                Err(why) => tracing::warn!(%why, "skipping JWKS key"),
            }
        }
        if keys.is_empty() {
            return Err(KeySourceError::NoUsableKeys);
        }
        Ok(Self {
            keys,
            usable_until: None,
        })
    }

    /// A set holding exactly these keys (tests, the development issuer).
    pub fn from_keys(keys: Vec<VerificationKey>) -> Self {
        Self {
            keys,
            usable_until: None,
        }
    }

    pub fn find(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// False once the keys outlived `stale_for` without a successful refresh.
    pub fn is_usable(&self, now: Instant) -> bool {
        !self.keys.is_empty() && self.usable_until.is_none_or(|until| now < until)
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn b64(field: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let s = field
        .as_deref()
        .ok_or_else(|| format!("missing `{name}`"))?;
    // Some issuers pad their JWK members despite RFC 7515; accept both.
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| format!("`{name}` is not base64url"))
}

/// The algorithm comes from the key (`kty`, `crv`, and `alg` when present), never from a token.
fn key_from_jwk(value: serde_json::Value) -> Result<VerificationKey, String> {
    let raw: RawJwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    let kid = raw.kid.clone().ok_or("no kid")?;
    if let Some(u) = &raw.use_
        && u != "sig"
    {
        return Err(format!("kid {kid}: use {u:?} is not sig"));
    }
    let alg_named =
        |allowed: &[(&str, Algorithm)], default: Option<Algorithm>| -> Result<Algorithm, String> {
            match &raw.alg {
                None => default
                    .ok_or_else(|| format!("kid {kid}: no alg and no default for this key type")),
                Some(a) => allowed
                    .iter()
                    .find(|(name, _)| name == a)
                    .map(|(_, alg)| *alg)
                    .ok_or_else(|| format!("kid {kid}: alg {a:?} does not fit kty {:?}", raw.kty)),
            }
        };
    match raw.kty.as_str() {
        "RSA" => {
            let alg = alg_named(
                &[
                    ("RS256", Algorithm::RS256),
                    ("RS384", Algorithm::RS384),
                    ("RS512", Algorithm::RS512),
                    ("PS256", Algorithm::PS256),
                    ("PS384", Algorithm::PS384),
                    ("PS512", Algorithm::PS512),
                ],
                Some(Algorithm::RS256),
            )?;
            let n = b64(&raw.n, "n")?;
            let e = b64(&raw.e, "e")?;
            let n_trimmed: &[u8] = {
                let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
                &n[start..]
            };
            let bits =
                n_trimmed.len() * 8 - n_trimmed.first().map_or(8, |b| b.leading_zeros() as usize);
            if !(2048..=16384).contains(&bits) {
                return Err(format!(
                    "kid {kid}: RSA modulus of {bits} bits (2048..=16384 accepted)"
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(format!("kid {kid}: bad RSA exponent"));
            }
            Ok(VerificationKey {
                kid,
                alg,
                key: DecodingKey::from_rsa_raw_components(n_trimmed, &e),
            })
        }
        "EC" => {
            let (alg, coord_len) = match raw.crv.as_deref() {
                Some("P-256") => (Algorithm::ES256, 32),
                Some("P-384") => (Algorithm::ES384, 48),
                other => return Err(format!("kid {kid}: unsupported EC curve {other:?}")),
            };
            let named = alg_named(
                &[("ES256", Algorithm::ES256), ("ES384", Algorithm::ES384)],
                Some(alg),
            )?;
            if named != alg {
                return Err(format!("kid {kid}: alg does not fit curve"));
            }
            let x = b64(&raw.x, "x")?;
            let y = b64(&raw.y, "y")?;
            if x.len() != coord_len || y.len() != coord_len {
                return Err(format!("kid {kid}: EC coordinates of the wrong length"));
            }
            // The verifier takes the SEC1 uncompressed point, which is what the EC
            // "der" constructor stores.
            let mut point = Vec::with_capacity(1 + 2 * coord_len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(VerificationKey {
                kid,
                alg,
                key: DecodingKey::from_ec_der(&point),
            })
        }
        "OKP" => {
            if raw.crv.as_deref() != Some("Ed25519") {
                return Err(format!("kid {kid}: unsupported OKP curve {:?}", raw.crv));
            }
            let alg = alg_named(
                &[("EdDSA", Algorithm::EdDSA), ("Ed25519", Algorithm::EdDSA)],
                Some(Algorithm::EdDSA),
            )?;
            let x = b64(&raw.x, "x")?;
            if x.len() != 32 {
                return Err(format!("kid {kid}: Ed25519 key of the wrong length"));
            }
            Ok(VerificationKey {
                kid,
                alg,
                key: DecodingKey::from_ed_der(&x),
            })
        }
        other => Err(format!(
            "kid {kid}: kty {other:?} is not accepted for signatures"
        )),
    }
}

/// The published snapshot, shared by the owner and its background thread.
#[derive(Debug, Default)]
struct Published {
    current: RwLock<Arc<KeySet>>,
    /// Completed looks at the source (file checks, fetch attempts): see [`KeySourceStats`].
    checks: AtomicU64,
    /// Changed files or fetches that could not be used (the previous keys stayed).
    failures: AtomicU64,
}

/// What a key source's background thread has done so far: diagnostics, and the events tests
/// wait for instead of sleeping ("the watcher looked at the broken file").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySourceStats {
    /// Completed looks at the source: file polls, fetch attempts.
    pub checks: u64,
    /// Looks that found something unusable (a broken JWKS file, a failed fetch).
    pub failures: u64,
    /// Refresh requests (unknown kids) that passed the rate limit.
    pub refresh_requests: u64,
}

impl Published {
    fn get(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, set: KeySet) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }
}

enum Msg {
    Refresh,
    Shutdown,
}

/// A key source with its background thread.
pub struct KeySource {
    name: String,
    published: Arc<Published>,
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last refresh request sent, plus one (0 = never).
    last_request_ms: AtomicU64,
    min_interval: Duration,
    refresh_requests: AtomicU64,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KeySource {
    /// Starts the source an issuer config names. A JWKS file is read now (a broken file is a
    /// start-up error); discovery starts fetching in the background and `new` returns at once.
    pub fn start(cfg: &IssuerConfig) -> Result<Self, KeySourceError> {
        let published = Arc::new(Published::default());
        let (tx, rx) = mpsc::channel();
        let thread_name = format!("tg-keys-{}", cfg.name);
        let handle = if let Some(path) = &cfg.jwks_file {
            let (set, stamp) = read_jwks_file(path)?;
            published.set(set);
            let watcher = FileWatcher {
                path: path.clone(),
                stamp,
                published: published.clone(),
            };
            spawn(thread_name, move || watcher.run(&rx))
                .map_err(|source| KeySourceError::Spawn { source })?
        } else if let Some(base) = &cfg.discovery {
            let agent = http_agent(cfg.ca_file.as_deref())?;
            let fetcher = DiscoveryFetcher {
                name: cfg.name.clone(),
                base: base.trim_end_matches('/').to_owned(),
                issuer: cfg.issuer.clone(),
                agent,
                refresh: cfg.refresh,
                min_interval: cfg.refresh_min_interval,
                stale_for: cfg.stale_for,
                published: published.clone(),
            };
            spawn(thread_name, move || fetcher.run(&rx))
                .map_err(|source| KeySourceError::Spawn { source })?
        } else {
            return Err(KeySourceError::NoUsableKeys);
        };
        Ok(Self {
            name: cfg.name.clone(),
            published,
            tx,
            thread: Mutex::new(Some(handle)),
            epoch: Instant::now(),
            last_request_ms: AtomicU64::new(0),
            min_interval: cfg.refresh_min_interval,
            refresh_requests: AtomicU64::new(0),
        })
    }

    /// What the background thread has done so far.
    pub fn stats(&self) -> KeySourceStats {
        KeySourceStats {
            checks: self.published.checks.load(Ordering::Acquire),
            failures: self.published.failures.load(Ordering::Acquire),
            refresh_requests: self.refresh_requests.load(Ordering::Acquire),
        }
    }

    /// The current snapshot; never blocks on I/O.
    pub fn current(&self) -> Arc<KeySet> {
        self.published.get()
    }

    /// Asks the background thread to refresh, at most once per `refresh_min_interval`;
    /// returns immediately.
    pub fn request_refresh(&self) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_request_ms.load(Ordering::Relaxed);
        let min_ms = u64::try_from(self.min_interval.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < min_ms {
            return;
        }
        if self
            .last_request_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.refresh_requests.fetch_add(1, Ordering::AcqRel);
            // The thread may be gone during shutdown; nothing to do then.
            let _ = self.tx.send(Msg::Refresh);
        }
    }

    /// Stops the background thread and waits for it.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!(source = %self.name, "key source thread panicked");
        }
    }
}

impl Drop for KeySource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(crate) fn spawn(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, std::io::Error> {
    std::thread::Builder::new().name(name).spawn(f)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    digest: [u8; 32],
}

fn read_capped(path: &Path, what: &str) -> Result<(Vec<u8>, fs::Metadata), KeySourceError> {
    let io = |source| KeySourceError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_JWKS_LEN {
        return Err(KeySourceError::TooLarge {
            what: what.into(),
            len: meta.len(),
            max: MAX_JWKS_LEN,
        });
    }
    let bytes = fs::read(path).map_err(io)?;
    if bytes.len() as u64 > MAX_JWKS_LEN {
        return Err(KeySourceError::TooLarge {
            what: what.into(),
            len: bytes.len() as u64,
            max: MAX_JWKS_LEN,
        });
    }
    Ok((bytes, meta))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

fn read_jwks_file(path: &Path) -> Result<(KeySet, FileStamp), KeySourceError> {
    let (bytes, meta) = read_capped(path, "JWKS file")?;
    let set = KeySet::from_jwks_json(&bytes)?;
    Ok((
        set,
        FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            digest: sha256(&bytes),
        },
    ))
}

struct FileWatcher {
    path: PathBuf,
    stamp: FileStamp,
    published: Arc<Published>,
}

impl FileWatcher {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        loop {
            let forced = match rx.recv_timeout(FILE_POLL) {
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Refresh) => true,
                Err(RecvTimeoutError::Timeout) => false,
            };
            if !self.poll(forced) {
                self.published.failures.fetch_add(1, Ordering::AcqRel);
            }
            self.published.checks.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Re-reads when mtime or size changed (or when forced by an unknown kid), and publishes
    /// only when the content hash changed. A broken file keeps the previous keys (and
    /// answers false).
    fn poll(&mut self, forced: bool) -> bool {
        let Ok(meta) = fs::metadata(&self.path) else {
            return false;
        };
        if !forced && meta.modified().ok() == self.stamp.modified && meta.len() == self.stamp.len {
            return true;
        }
        match read_capped(&self.path, "JWKS file") {
            Ok((bytes, meta)) => {
                let digest = sha256(&bytes);
                let stamp = FileStamp {
                    modified: meta.modified().ok(),
                    len: meta.len(),
                    digest,
                };
                if digest == self.stamp.digest {
                    self.stamp = stamp;
                    return true;
                }
                match KeySet::from_jwks_json(&bytes) {
                    Ok(set) => {
                        tracing::info!(path = %self.path.display(), kids = ?set.kids().collect::<Vec<_>>(), "JWKS file reloaded");
                        self.published.set(set);
                        self.stamp = stamp;
                        true
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "JWKS file unusable; keeping previous keys");
                        // Remember the metadata so a broken file is not re-parsed every second,
                        // but not the digest, so the fixed file is picked up.
                        self.stamp.modified = stamp.modified;
                        self.stamp.len = stamp.len;
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS file unreadable; keeping previous keys");
                false
            }
        }
    }
}

/// A blocking HTTPS client for discovery: rustls (ring), https only, bounded time and size.
fn http_agent(ca_file: Option<&Path>) -> Result<ureq::Agent, KeySourceError> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
    let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
    if let Some(path) = ca_file {
        let pem = fs::read(path).map_err(|source| KeySourceError::Io {
            path: path.to_owned(),
            source,
        })?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(KeySourceError::NoCaCertificates {
                path: path.to_owned(),
            });
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .https_only(true)
        .timeout_global(Some(HTTP_TIMEOUT))
        .max_redirects(3)
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

fn http_get(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, KeySourceError> {
    let err = |reason: String| KeySourceError::Http {
        url: url.to_owned(),
        reason,
    };
    let mut resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_JWKS_LEN)
        .read_to_vec()
        .map_err(|e| err(e.to_string()))
}

/// Fetches `<base>/.well-known/openid-configuration`, checks its `issuer`, then fetches and
/// parses its `jwks_uri`.
pub fn fetch_discovered_keys(
    agent: &ureq::Agent,
    base: &str,
    issuer: &str,
) -> Result<KeySet, KeySourceError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = format!("{base}/.well-known/openid-configuration");
    let body = http_get(agent, &url)?;
    let doc: Discovery = serde_json::from_slice(&body).map_err(|e| KeySourceError::Json {
        what: "discovery document".into(),
        reason: e.to_string(),
    })?;
    if doc.issuer != issuer {
        return Err(KeySourceError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: doc.issuer,
        });
    }
    if !doc.jwks_uri.starts_with("https://") {
        return Err(KeySourceError::InsecureJwksUri { uri: doc.jwks_uri });
    }
    KeySet::from_jwks_json(&http_get(agent, &doc.jwks_uri)?)
}

struct DiscoveryFetcher {
    name: String,
    base: String,
    issuer: String,
    agent: ureq::Agent,
    refresh: Duration,
    min_interval: Duration,
    stale_for: Duration,
    published: Arc<Published>,
}

impl DiscoveryFetcher {
    fn run(self, rx: &mpsc::Receiver<Msg>) {
        let mut next = Instant::now();
        let mut last_attempt: Option<Instant> = None;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Refresh) => {
                    // Rate limit: a burst of unknown kids costs at most one fetch per interval.
                    if let Some(at) = last_attempt
                        && at.elapsed() < self.min_interval
                    {
                        next = next.min(at + self.min_interval);
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let started = Instant::now();
            last_attempt = Some(started);
            match fetch_discovered_keys(&self.agent, &self.base, &self.issuer) {
                Ok(mut set) => {
                    set.usable_until = Some(started + self.stale_for);
                    tracing::debug!(issuer = %self.name, kids = ?set.kids().collect::<Vec<_>>(), "keys fetched");
                    self.published.set(set);
                    next = started + self.refresh;
                    self.published.checks.fetch_add(1, Ordering::AcqRel);
                }
                Err(e) => {
                    let current = self.published.get();
                    let usable = current.is_usable(Instant::now());
                    tracing::warn!(issuer = %self.name, error = %e, serving_stale = usable, "key fetch failed");
                    if !usable && !current.is_empty() {
                        self.published.set(KeySet::default());
                    }
                    next = started + self.min_interval;
                    self.published.failures.fetch_add(1, Ordering::AcqRel);
                    self.published.checks.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed_jwk(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode([7u8; 32])})
    }

    #[test]
    fn algorithm_comes_from_the_key() {
        let rsa_n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let set = serde_json::to_vec(&json!({"keys": [
            ed_jwk("ed"),
            {"kty": "RSA", "kid": "rsa-default", "n": rsa_n, "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-pss", "alg": "PS256", "n": rsa_n, "e": "AQAB"},
            {"kty": "EC", "crv": "P-384", "kid": "ec", "x": URL_SAFE_NO_PAD.encode([1u8; 48]), "y": URL_SAFE_NO_PAD.encode([2u8; 48])},
        ]}))
        .unwrap();
        let set = KeySet::from_jwks_json(&set).unwrap();
        assert_eq!(set.find("ed").unwrap().alg, Algorithm::EdDSA);
        assert_eq!(set.find("rsa-default").unwrap().alg, Algorithm::RS256);
        assert_eq!(set.find("rsa-pss").unwrap().alg, Algorithm::PS256);
        assert_eq!(set.find("ec").unwrap().alg, Algorithm::ES384);
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let short_n = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let set = serde_json::to_vec(&json!({"keys": [
            ed_jwk("good"),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "short", "n": short_n, "e": "AQAB"},
            {"kty": "RSA", "kid": "alg-mismatch", "alg": "ES256", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 256]), "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": URL_SAFE_NO_PAD.encode([7u8; 32])},
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])},
            ed_jwk("good"),
        ]}))
        .unwrap();
        let set = KeySet::from_jwks_json(&set).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), vec!["good"]);
        let none =
            serde_json::to_vec(&json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}))
                .unwrap();
        assert!(matches!(
            KeySet::from_jwks_json(&none),
            Err(KeySourceError::NoUsableKeys)
        ));
        assert!(matches!(
            KeySet::from_jwks_json(b"[]"),
            Err(KeySourceError::Json { .. })
        ));
    }

    #[test]
    fn staleness_bounds_usability() {
        let mut set =
            KeySet::from_jwks_json(&serde_json::to_vec(&json!({"keys": [ed_jwk("a")]})).unwrap())
                .unwrap();
        let now = Instant::now();
        assert!(set.is_usable(now));
        set.usable_until = Some(now + Duration::from_secs(1));
        assert!(set.is_usable(now));
        assert!(!set.is_usable(now + Duration::from_secs(2)));
        assert!(!KeySet::default().is_usable(now));
    }
}
