//! Workload certificates: rustls server configs for listeners (client certificates required
//! when a client CA is configured), the identity of a verified peer certificate, and a
//! rustls client config for upstream TLS.
//!
//! Identity from a certificate: the subject is the URI SAN (a SPIFFE ID
//! `spiffe://trust-domain/path` preferred over other URIs), else the first DNS SAN, else the
//! subject CN; groups come from `[[identity.mtls.map]]` globs over that subject (union of all
//! matches). Only ever applied to a chain rustls has already verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use globset::GlobMatcher;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::identity::authz::compile_glob;
use crate::identity::config::{IdentityConfigError, MtlsConfig};
use crate::identity::jwt::AuthError;
use crate::identity::{Identity, IdentitySource};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("{path} holds no certificates")]
    NoCertificates { path: PathBuf },
    #[error("client certificate verifier: {reason}")]
    Verifier { reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem_err = |e: rustls_pki_types::pem::Error| TlsSetupError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsSetupError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn root_store(ca_file: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(load_certs(ca_file)?);
    if added == 0 {
        return Err(TlsSetupError::NoCertificates {
            path: ca_file.to_owned(),
        });
    }
    Ok(roots)
}

/// A listener's TLS config. With `client_ca`, every client must present a certificate that
/// chains to it (and the handshake fails otherwise).
pub fn server_config(
    cert_chain: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let certs = load_certs(cert_chain)?;
    let key = load_private_key(key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
                    .build()
                    .map_err(|e| TlsSetupError::Verifier {
                        reason: e.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

/// An upstream TLS client config: server certificates verified against `ca_file`, or
/// Mozilla's roots when none is given; optionally presenting a client certificate.
pub fn client_config(
    ca_file: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let roots = match ca_file {
        Some(ca) => root_store(ca)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client_cert {
        Some((chain, key)) => {
            builder.with_client_auth_cert(load_certs(chain)?, load_private_key(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Compiled `[[identity.mtls.map]]`.
#[derive(Debug, Clone, Default)]
pub struct CertificateMapper {
    rules: Vec<(GlobMatcher, Vec<String>)>,
}

impl CertificateMapper {
    pub fn from_config(cfg: Option<&MtlsConfig>) -> Result<Self, IdentityConfigError> {
        let mut rules = Vec::new();
        for (i, m) in cfg
            .map(|c| c.map.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let matcher = compile_glob(&m.pattern).map_err(|reason| {
                IdentityConfigError::new(format!("identity.mtls.map[{i}].pattern"), reason)
            })?;
            rules.push((matcher, m.groups.clone()));
        }
        Ok(Self { rules })
    }

    /// Groups granted to `subject`: the union over every matching pattern, in config order.
    pub fn groups_for(&self, subject: &str) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for (m, gs) in &self.rules {
            if m.is_match(subject) {
                for g in gs {
                    if !groups.contains(g) {
                        groups.push(g.clone());
                    }
                }
            }
        }
        groups
    }
}

/// Derives the identity from a verified peer chain (leaf first).
pub fn identity_from_certificate(
    chain: &[CertificateDer<'_>],
    mapper: &CertificateMapper,
) -> Result<Identity, AuthError> {
    let leaf = chain.first().ok_or(AuthError::NoClientCertificate)?;
    let bad = |reason: String| AuthError::BadCertificate { reason };
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| bad(e.to_string()))?;
    let mut uri: Option<&str> = None;
    let mut dns: Option<&str> = None;
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u)
                    if u.starts_with("spiffe://")
                        && !uri.is_some_and(|x| x.starts_with("spiffe://")) =>
                {
                    uri = Some(u)
                }
                GeneralName::URI(u) if uri.is_none() => uri = Some(u),
                GeneralName::DNSName(d) if dns.is_none() => dns = Some(d),
                _ => {}
            }
        }
    }
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    };
    let subject = uri
        .or(dns)
        .or_else(cn)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no URI SAN, DNS SAN or CN".into()))?
        .to_owned();
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    Ok(Identity {
        groups: mapper.groups_for(&subject),
        subject,
        issuer: cert.issuer().to_string(),
        token_id: None,
        expires_at: Some(UNIX_EPOCH + Duration::from_secs(not_after)),
        source: IdentitySource::Certificate,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::config::MtlsMapping;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(sans: Vec<SanType>, cn: Option<&str>) -> CertificateDer<'static> {
        let mut p = CertificateParams::default();
        p.subject_alt_names = sans;
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone()
    }

    fn mapper() -> CertificateMapper {
        CertificateMapper::from_config(Some(&MtlsConfig {
            ca_file: None,
            map: vec![
                MtlsMapping {
                    pattern: "spiffe://prod.example/ns/ci/*".into(),
                    groups: vec!["ci".into()],
                },
                MtlsMapping {
                    pattern: "spiffe://prod.example/**".into(),
                    groups: vec!["prod".into(), "ci".into()],
                },
            ],
        }))
        .unwrap()
    }

    #[test]
    fn subject_precedence_uri_dns_cn() {
        let spiffe = "spiffe://prod.example/ns/ci/runner";
        let c = cert(
            vec![
                SanType::DnsName("runner.ci".try_into().unwrap()),
                SanType::URI("https://other.example/x".try_into().unwrap()),
                SanType::URI(spiffe.try_into().unwrap()),
            ],
            Some("cn"),
        );
        let id = identity_from_certificate(&[c], &mapper()).unwrap();
        assert_eq!(id.subject, spiffe);
        assert_eq!(id.groups, vec!["ci".to_owned(), "prod".to_owned()]);
        assert_eq!(id.source, IdentitySource::Certificate);

        let c = cert(
            vec![SanType::DnsName("svc.internal".try_into().unwrap())],
            Some("cn"),
        );
        assert_eq!(
            identity_from_certificate(&[c], &mapper()).unwrap().subject,
            "svc.internal"
        );
        let c = cert(vec![], Some("legacy-svc"));
        let id = identity_from_certificate(&[c], &mapper()).unwrap();
        assert_eq!(id.subject, "legacy-svc");
        assert!(id.groups.is_empty());
    }

    #[test]
    fn empty_chain_and_garbage_are_refused() {
        assert_eq!(
            identity_from_certificate(&[], &mapper()).unwrap_err(),
            AuthError::NoClientCertificate
        );
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(matches!(
            identity_from_certificate(&[junk], &mapper()),
            Err(AuthError::BadCertificate { .. })
        ));
    }
}
