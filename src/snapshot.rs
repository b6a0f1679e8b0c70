//! The compiled, immutable view of one configuration: per-target policy,
//! masking and access rules, TLS configs, and the identity service. Built
//! once per (re)load, shared by every shard through an `Arc`; a session keeps
//! the snapshot it started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, UpstreamTlsMode};
use crate::identity::{AccessPolicy, IdentityService};
use crate::policy::mask::MaskPolicy;

/// Why a configuration could not be put into service.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("identity: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("target {target}: access: {reason}")]
    Access { target: String, reason: String },
    #[error("target {target}: policy: {reason}")]
    Policy { target: String, reason: String },
    #[error("target {target}: masking: {reason}")]
    Masking { target: String, reason: String },
    #[error("target {target}: cannot read {path}: {reason}")]
    File {
        target: String,
        path: PathBuf,
        reason: String,
    },
    #[error("target {target}: TLS: {reason}")]
    Tls { target: String, reason: String },
    #[error("target {target}: ssh: {reason}")]
    Ssh { target: String, reason: String },
}

/// Everything a session needs to enforce one target.
pub struct TargetRuntime {
    pub access: AccessPolicy,
    pub policy: crate::policy::rules::Policy,
    pub masking: Option<MaskPolicy>,
    /// Client-facing TLS (PostgreSQL SSLRequest).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS towards the upstream, with the name to verify.
    pub upstream_tls: Option<UpstreamTlsConfig>,
    /// `[target.http]` rules, compiled (http targets only).
    pub http_rules: Option<crate::http::rules::HttpRules>,
    /// `[target.ssh]`: the host key read, the exec rules compiled (ssh targets only).
    pub ssh: Option<crate::ssh::adapter::SshRuntime>,
}

/// A configuration in service.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub identity: Arc<IdentityService>,
    pub targets: Vec<TargetRuntime>,
}

impl Snapshot {
    pub fn build(config: Arc<Config>) -> Result<Snapshot, SnapshotError> {
        let identity = Arc::new(IdentityService::new(&config.identity)?);
        let mut targets = Vec::with_capacity(config.targets.len());
        for (i, t) in config.targets.iter().enumerate() {
            let name = || t.name.clone();
            let access =
                AccessPolicy::compile(&t.access, &format!("target[{i}].access")).map_err(|e| {
                    SnapshotError::Access {
                        target: name(),
                        reason: e.to_string(),
                    }
                })?;
            let masking = masking_for(t)?;
            // Callers who identify by certificate (tcp) must present one
            // from the mTLS CA; the others present tokens.
            let client_ca = if t.callers_by_certificate() {
                config
                    .identity
                    .mtls
                    .as_ref()
                    .and_then(|m| m.ca_file.as_deref())
            } else {
                None
            };
            let tls = match &t.tls {
                None => None,
                Some(files) => Some(
                    crate::identity::mtls::server_config(
                        &files.cert_file,
                        &files.key_file,
                        client_ca,
                    )
                    .map_err(|e| SnapshotError::Tls {
                        target: name(),
                        reason: e.to_string(),
                    })?,
                ),
            };
            // HTTP/2 is agreed by ALPN; a caller that offers none, or only
            // `http/1.1`, gets HTTP/1.1 as before.
            let tls = match (tls, t.http.as_ref().and_then(|h| h.http2)) {
                (Some(mut cfg), Some(_)) => {
                    Arc::make_mut(&mut cfg).alpn_protocols =
                        vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                    Some(cfg)
                }
                (tls, _) => tls,
            };
            let upstream_tls = upstream_tls_for(t)?;
            let policy = crate::policy::rules::Policy::compile(&t.policy).map_err(|e| {
                SnapshotError::Policy {
                    target: name(),
                    reason: e.to_string(),
                }
            })?;
            let http_rules = match &t.http {
                None => None,
                Some(h) => Some(crate::http::rules::HttpRules::compile(h).map_err(|reason| {
                    SnapshotError::Policy {
                        target: name(),
                        reason,
                    }
                })?),
            };
            let ssh = match &t.ssh {
                None => None,
                Some(s) => Some(crate::ssh::adapter::SshRuntime::build(s).map_err(|reason| {
                    SnapshotError::Ssh {
                        target: name(),
                        reason,
                    }
                })?),
            };
            targets.push(TargetRuntime {
                ssh,
                http_rules,
                access,
                policy,
                masking,
                tls,
                upstream_tls,
            });
        }
        Ok(Snapshot {
            config,
            identity,
            targets,
        })
    }
}

/// TLS towards a target's upstream, with the name its certificate must carry.
pub type UpstreamTlsConfig = (
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
);

fn upstream_tls_for(
    t: &crate::config::TargetConfig,
) -> Result<Option<UpstreamTlsConfig>, SnapshotError> {
    let name = || t.name.clone();
    let Some(u) = t
        .upstream_tls
        .as_ref()
        .filter(|u| u.mode == UpstreamTlsMode::VerifyFull)
    else {
        return Ok(None);
    };
    let client_cert = u
        .client_cert
        .as_ref()
        .map(|f| (f.cert_file.as_path(), f.key_file.as_path()));
    let cfg =
        crate::identity::mtls::client_config(u.ca_file.as_deref(), client_cert).map_err(|e| {
            SnapshotError::Tls {
                target: name(),
                reason: e.to_string(),
            }
        })?;
    let host = u.server_name.clone().unwrap_or_else(|| {
        t.upstream
            .rsplit_once(':')
            .map_or(t.upstream.clone(), |(h, _)| {
                h.trim_matches(['[', ']']).to_string()
            })
    });
    let server_name =
        rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| SnapshotError::Tls {
            target: name(),
            reason: format!("{host:?} is not a valid server name: {e}"),
        })?;
    Ok(Some((cfg, server_name)))
}

/// A target's masking policy, its key file read (also used by
/// `tollgate policy test`, which needs no identity, TLS or upstream).
pub fn masking_for(t: &crate::config::TargetConfig) -> Result<Option<MaskPolicy>, SnapshotError> {
    let name = || t.name.clone();
    let Some(m) = &t.masking else {
        return Ok(None);
    };
    let key = match &m.key_file {
        Some(path) => Some(read_file(&t.name, path)?),
        None => None,
    };
    let key = match &key {
        Some(bytes) => Some(
            crate::policy::mask::MaskingConfig::key_from_file(bytes)
                .map_err(|e| SnapshotError::Masking {
                    target: name(),
                    reason: e.to_string(),
                })?
                .to_vec(),
        ),
        None => None,
    };
    MaskPolicy::new(m, key.as_deref())
        .map(Some)
        .map_err(|e| SnapshotError::Masking {
            target: name(),
            reason: e.to_string(),
        })
}

fn read_file(target: &str, path: &Path) -> Result<Vec<u8>, SnapshotError> {
    std::fs::read(path).map_err(|e| SnapshotError::File {
        target: target.to_string(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
