//! `IdentityService`: the one object the engine holds; routes tokens to their issuer, verifies
//! them through the shard's cache, and applies revocations.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey};
use rustls_pki_types::CertificateDer;

use crate::identity::cache::{CacheLookup, TokenCache, token_digest};
use crate::identity::config::{IdentityConfig, IdentityConfigError, IssuerConfig};
use crate::identity::jwks::{KeySource, KeySourceError, KeySourceStats};
use crate::identity::jwt::{self, AuthError, ClaimPolicy, MAX_TOKEN_LEN, alg_name};
use crate::identity::mtls::{CertificateMapper, identity_from_certificate};
use crate::identity::revocation::{RevocationError, Revocations};
use crate::identity::sshcert::SshTrust;
use crate::identity::{Identity, IdentitySource};

/// HS256 secrets shorter than this are refused: HMAC-SHA256 wants at least 256 bits.
pub const MIN_HS256_SECRET: usize = 32;

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Config(#[from] IdentityConfigError),
    #[error("issuer {issuer:?}: {source}")]
    Keys {
        issuer: String,
        source: KeySourceError,
    },
    #[error("issuer {issuer:?}: HS256 secret {path}: {reason}")]
    Secret {
        issuer: String,
        path: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Revocations(#[from] RevocationError),
}

enum Keys {
    Jwks(KeySource),
    Hs256(DecodingKey),
}

struct IssuerRuntime {
    name: String,
    policy: ClaimPolicy,
    keys: Keys,
}

static NEXT_SERVICE_ID: AtomicU64 = AtomicU64::new(1);

/// Token and certificate verification for the whole process. `Send + Sync`; shards share it.
pub struct IdentityService {
    id: u64,
    issuers: Vec<IssuerRuntime>,
    revocations: Arc<Revocations>,
    certificates: CertificateMapper,
    ssh: Option<Arc<SshTrust>>,
    cache_size: usize,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn read_secret(cfg: &IssuerConfig, path: &Path) -> Result<DecodingKey, IdentityError> {
    let err = |reason: String| IdentityError::Secret {
        issuer: cfg.name.clone(),
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    // Files written with `echo` end in a newline that is not part of the secret.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    if end < MIN_HS256_SECRET {
        return Err(err(format!("shorter than {MIN_HS256_SECRET} bytes")));
    }
    Ok(DecodingKey::from_secret(&bytes[..end]))
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl IdentityService {
    /// Validates the config, reads JWKS files and secrets, starts the key source threads and
    /// the revocation watcher. Discovery issuers start fetching in the background: until their
    /// first fetch succeeds their tokens fail with `NoKeys` (see [`Self::wait_for_keys`]).
    pub fn new(cfg: &IdentityConfig) -> Result<Self, IdentityError> {
        cfg.validate()?;
        let mut issuers = Vec::with_capacity(cfg.issuers.len());
        for ic in &cfg.issuers {
            let keys = match &ic.hs256_secret_file {
                Some(path) => Keys::Hs256(read_secret(ic, path)?),
                None => Keys::Jwks(KeySource::start(ic).map_err(|source| IdentityError::Keys {
                    issuer: ic.name.clone(),
                    source,
                })?),
            };
            issuers.push(IssuerRuntime {
                name: ic.name.clone(),
                policy: ClaimPolicy::from_config(ic),
                keys,
            });
        }
        let revocations = match &cfg.revocation_file {
            Some(path) => Revocations::with_file(path)?,
            None => Revocations::new(),
        };
        Ok(Self {
            id: NEXT_SERVICE_ID.fetch_add(1, Ordering::Relaxed),
            issuers,
            revocations,
            certificates: CertificateMapper::from_config(cfg.mtls.as_ref())?,
            ssh: cfg
                .ssh
                .as_ref()
                .map(SshTrust::build)
                .transpose()?
                .map(Arc::new),
            cache_size: cfg.cache_size,
        })
    }

    /// A cache for one shard, sized by `identity.cache_size`.
    pub fn new_cache(&self) -> TokenCache {
        let mut cache = TokenCache::new(self.cache_size);
        cache.owner = self.id;
        cache
    }

    /// The revocation store (the admin plane revokes through it; the engine subscribes to it).
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The key source counters of issuer `name` (None for unknown names and HS256 issuers).
    pub fn key_source_stats(&self, name: &str) -> Option<KeySourceStats> {
        self.issuers
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| match &i.keys {
                Keys::Jwks(src) => Some(src.stats()),
                Keys::Hs256(_) => None,
            })
    }

    /// Waits until every JWKS issuer has usable keys, or `timeout` passes; for start-up and
    /// tests, never for the data path.
    pub fn wait_for_keys(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.issuers.iter().all(|i| match &i.keys {
                Keys::Jwks(src) => src.current().is_usable(Instant::now()),
                Keys::Hs256(_) => true,
            });
            if ready {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Verifies a bearer token for a new session. A cached token skips the signature and
    /// claim checks but is still checked for expiry and revocation. Never blocks: an unknown
    /// `kid` fails at once and schedules a key refresh.
    pub fn verify_token(
        &self,
        token: &[u8],
        cache: &mut TokenCache,
        now: SystemTime,
    ) -> Result<Arc<Identity>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if cache.owner != self.id {
            cache.clear();
            cache.owner = self.id;
        }
        let now_s = unix_secs(now);
        let digest = token_digest(token);
        match cache.lookup(&digest, now_s) {
            CacheLookup::Hit(identity) => {
                if let Some(r) = self.revocations.check(&identity, now) {
                    cache.remove(&digest);
                    return Err(AuthError::Revoked {
                        rule: r.target.to_string(),
                    });
                }
                return Ok(identity);
            }
            CacheLookup::Expired { expires_at } => {
                return Err(AuthError::Expired {
                    exp: expires_at,
                    now: now_s,
                });
            }
            CacheLookup::Miss => {}
        }

        let parsed = jwt::parse_token(token)?;
        let iss = parsed.issuer()?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.policy.issuer == iss)
            .ok_or_else(|| AuthError::WrongIssuer {
                issuer: iss.to_owned(),
            })?;
        match &issuer.keys {
            Keys::Hs256(secret) => {
                require_alg(&parsed.alg, Algorithm::HS256)?;
                cache.count_signature_check();
                parsed.verify_signature(secret, Algorithm::HS256)?;
            }
            Keys::Jwks(source) => {
                // Refused before any key lookup: `none` and HMAC never pair with a JWKS key.
                if parsed.alg == "none" || parsed.alg.starts_with("HS") {
                    return Err(AuthError::AlgorithmNotAllowed {
                        alg: parsed.alg.clone(),
                        allowed: None,
                    });
                }
                let keys = source.current();
                if !keys.is_usable(Instant::now()) {
                    source.request_refresh();
                    return Err(AuthError::NoKeys {
                        issuer: issuer.name.clone(),
                    });
                }
                let Some(kid) = parsed.kid.as_deref() else {
                    return Err(AuthError::UnknownKid {
                        issuer: issuer.name.clone(),
                        kid: None,
                    });
                };
                let Some(key) = keys.find(kid) else {
                    source.request_refresh();
                    return Err(AuthError::UnknownKid {
                        issuer: issuer.name.clone(),
                        kid: Some(kid.to_owned()),
                    });
                };
                require_alg(&parsed.alg, key.alg)?;
                cache.count_signature_check();
                parsed.verify_signature(&key.key, key.alg)?;
            }
        }
        let claims = jwt::validate_claims(&parsed.claims, &issuer.policy, now_s)?;
        let identity = Arc::new(Identity {
            subject: claims.subject,
            issuer: issuer.policy.issuer.clone(),
            groups: claims.groups,
            token_id: claims.token_id,
            expires_at: u64::try_from(claims.exp)
                .ok()
                .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            source: IdentitySource::Token,
        });
        if let Some(r) = self.revocations.check(&identity, now) {
            return Err(AuthError::Revoked {
                rule: r.target.to_string(),
            });
        }
        cache.insert(
            digest,
            identity.clone(),
            claims.exp.saturating_add(issuer.policy.leeway_s),
            now_s,
        );
        Ok(identity)
    }

    /// The identity of an mTLS peer, from the chain rustls already verified
    /// (`conn.peer_certificates()`), with groups mapped from `[[identity.mtls.map]]` and
    /// revocations applied.
    pub fn identity_from_certificate(
        &self,
        chain: &[CertificateDer<'_>],
        now: SystemTime,
    ) -> Result<Arc<Identity>, AuthError> {
        let identity = identity_from_certificate(chain, &self.certificates)?;
        if let Some(r) = self.revocations.check(&identity, now) {
            return Err(AuthError::Revoked {
                rule: r.target.to_string(),
            });
        }
        Ok(Arc::new(identity))
    }

    /// `[identity.ssh]`, when configured (the SSH front door pre-screens
    /// offered keys with it).
    pub fn ssh_trust(&self) -> Option<&Arc<SshTrust>> {
        self.ssh.as_ref()
    }

    /// The identity of an SSH caller's user certificate (russh has checked
    /// the caller holds its key), revocations applied.
    pub fn identity_from_ssh_certificate(
        &self,
        cert: &russh::keys::Certificate,
        now: SystemTime,
    ) -> Result<Arc<Identity>, AuthError> {
        let trust = self.ssh.as_ref().ok_or_else(|| AuthError::BadCertificate {
            reason: "ssh certificate, but no [identity.ssh] is configured".into(),
        })?;
        self.unless_revoked(trust.identity_from_certificate(cert, now)?, now)
    }

    /// The identity of an SSH caller's plain public key, listed in
    /// `[[identity.ssh.key]]`, revocations applied.
    pub fn identity_from_ssh_key(
        &self,
        key: &russh::keys::PublicKey,
        now: SystemTime,
    ) -> Result<Arc<Identity>, AuthError> {
        let trust = self.ssh.as_ref().ok_or_else(|| AuthError::BadCertificate {
            reason: "ssh public key, but no [identity.ssh] is configured".into(),
        })?;
        self.unless_revoked(trust.identity_from_key(key)?, now)
    }

    fn unless_revoked(
        &self,
        identity: Identity,
        now: SystemTime,
    ) -> Result<Arc<Identity>, AuthError> {
        if let Some(r) = self.revocations.check(&identity, now) {
            return Err(AuthError::Revoked {
                rule: r.target.to_string(),
            });
        }
        Ok(Arc::new(identity))
    }

    /// Stops every background thread. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        for i in &self.issuers {
            if let Keys::Jwks(src) = &i.keys {
                src.shutdown();
            }
        }
        self.revocations.shutdown();
    }
}

impl Drop for IdentityService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn require_alg(header_alg: &str, key_alg: Algorithm) -> Result<(), AuthError> {
    if header_alg == alg_name(key_alg) {
        Ok(())
    } else {
        Err(AuthError::AlgorithmNotAllowed {
            alg: header_alg.to_owned(),
            allowed: Some(key_alg),
        })
    }
}
