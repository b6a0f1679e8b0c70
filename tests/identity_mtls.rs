//! Workload certificates over real rustls handshakes on loopback: a client certificate from
//! the configured CA is accepted and yields its SPIFFE identity and mapped groups; one from
//! another CA, or none, is refused by the handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::ServerName;
use tollgate::identity::config::{MtlsConfig, MtlsMapping};
use tollgate::identity::mtls::{client_config, server_config};
use tollgate::identity::{
    AuthError, Identity, IdentityConfig, IdentityService, IdentitySource, Revocation,
    RevocationTarget,
};

const SPIFFE: &str = "spiffe://prod.example/ns/ci/runner";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.distinguished_name.push(DnType::CommonName, name);
        std::fs::write(
            dir.join(format!("{name}.pem")),
            p.self_signed(&key).unwrap().pem(),
        )
        .unwrap();
        Self {
            issuer: Issuer::new(p, key),
        }
    }

    fn issue(&self, dir: &Path, file: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.subject_alt_names = sans;
        p.distinguished_name.push(DnType::CommonName, file);
        p.extended_key_usages = vec![eku];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
}

struct Pki {
    dir: tempfile::TempDir,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trusted = Ca::new(d, "trusted-ca");
    let other = Ca::new(d, "other-ca");
    trusted.issue(
        d,
        "server",
        vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    trusted.issue(
        d,
        "client",
        vec![SanType::URI(SPIFFE.try_into().unwrap())],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    other.issue(
        d,
        "intruder",
        vec![SanType::URI(SPIFFE.try_into().unwrap())],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki { dir }
}

impl Pki {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

fn service() -> IdentityService {
    let cfg = IdentityConfig {
        mtls: Some(MtlsConfig {
            ca_file: None,
            map: vec![
                MtlsMapping {
                    pattern: "spiffe://prod.example/ns/ci/*".into(),
                    groups: vec!["ci".into()],
                },
                MtlsMapping {
                    pattern: "spiffe://staging.example/**".into(),
                    groups: vec!["staging".into()],
                },
            ],
        }),
        ..IdentityConfig::default()
    };
    IdentityService::new(&cfg).unwrap()
}

/// One handshake over a loopback TCP pair, server and client on their own threads. Returns
/// the identity the server derived, or the server's handshake error.
fn handshake(
    pki: &Pki,
    svc: &Arc<IdentityService>,
    client_cert: Option<&str>,
) -> Result<Result<Arc<Identity>, AuthError>, String> {
    let server_cfg = server_config(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        Some(&pki.path("trusted-ca.pem")),
    )
    .unwrap();
    let client_auth =
        client_cert.map(|c| (pki.path(&format!("{c}.pem")), pki.path(&format!("{c}.key"))));
    let client_cfg = client_config(
        Some(&pki.path("trusted-ca.pem")),
        client_auth
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = svc.clone();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut conn = rustls::ServerConnection::new(server_cfg).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        let chain = conn.peer_certificates().unwrap_or_default().to_vec();
        Ok(svc.identity_from_certificate(&chain, SystemTime::now()))
    });
    let client = std::thread::spawn(move || {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let mut conn = rustls::ClientConnection::new(client_cfg, name).unwrap();
        // TLS 1.3: the client finishes before the server has judged its certificate; push
        // the last flight out and wait for the server's verdict (an alert, or nothing).
        let r = (|| {
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)?;
            }
            while conn.wants_write() {
                conn.write_tls(&mut tcp)?;
            }
            Ok::<_, std::io::Error>(())
        })();
        let _ = r;
        let _ = conn.complete_io(&mut tcp);
    });
    let result = server.join().unwrap();
    client.join().unwrap();
    result
}

#[test]
fn client_certificate_from_the_trusted_ca_gives_spiffe_identity_and_groups() {
    let pki = pki();
    let svc = Arc::new(service());
    let id = handshake(&pki, &svc, Some("client")).unwrap().unwrap();
    assert_eq!(id.subject, SPIFFE);
    assert_eq!(id.groups, vec!["ci".to_owned()]);
    assert_eq!(id.source, IdentitySource::Certificate);
    assert!(id.issuer.contains("trusted-ca"), "{}", id.issuer);
    assert!(id.expires_at.is_some());
}

#[test]
fn client_certificate_from_another_ca_or_none_is_refused() {
    let pki = pki();
    let svc = Arc::new(service());
    let err = handshake(&pki, &svc, Some("intruder")).unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let err = handshake(&pki, &svc, None).unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn revoked_certificate_identity_is_refused() {
    let pki = pki();
    let svc = Arc::new(service());
    svc.revocations()
        .revoke(Revocation::new(RevocationTarget::Subject(SPIFFE.into())));
    let verdict = handshake(&pki, &svc, Some("client")).unwrap();
    assert!(matches!(verdict, Err(AuthError::Revoked { .. })));
}

#[test]
fn upstream_client_config_with_webpki_roots_builds() {
    assert!(client_config(None, None).is_ok());
}
