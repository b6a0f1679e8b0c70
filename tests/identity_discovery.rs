//! OIDC discovery against a local HTTPS issuer (rustls over std TCP, CA from rcgen): keys
//! fetched, rotation picked up on an unknown kid, stale keys served while the issuer is down
//! and dropped after `stale_for`, and an untrusted issuer certificate refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};
use tollgate::identity::devissuer::{DevAlg, SigningKey};
use tollgate::identity::mtls::server_config;
use tollgate::identity::{AuthError, IdentityConfig, IdentityService, IssuerConfig};

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within 15 s: {what}");
}

/// A CA and a server certificate for 127.0.0.1, written as PEM files into `dir`.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "discovery test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
}

/// The test's identity provider: serves the discovery document and a JWKS it can rotate.
struct TestIssuer {
    addr: SocketAddr,
    jwks: Arc<Mutex<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestIssuer {
    fn start(dir: &Path, jwks: Value) -> Self {
        let tls = server_config(&dir.join("server.pem"), &dir.join("server.key"), None).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let jwks = Arc::new(Mutex::new(jwks));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (j, n, s) = (jwks.clone(), jwks_fetches.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                // A failed exchange (e.g. a client that distrusts us) must not stop the server.
                let _ = serve_one(stream, tls.clone(), addr, &j, &n);
            }
        });
        Self {
            addr,
            jwks,
            jwks_fetches,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The issuer goes away: its port refuses connections from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_one(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    addr: SocketAddr,
    jwks: &Mutex<Value>,
    fetches: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/.well-known/openid-configuration" => {
            ("200 OK", json!({"issuer": format!("https://{addr}"), "jwks_uri": format!("https://{addr}/keys")}).to_string())
        }
        "/keys" => {
            fetches.fetch_add(1, Ordering::SeqCst);
            ("200 OK", jwks.lock().unwrap().to_string())
        }
        _ => ("404 Not Found", String::new()),
    };
    write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()
}

fn token(key: &SigningKey, iss: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(&json!({"iss": iss, "aud": "tollgate", "sub": "svc", "iat": t, "exp": t + 300}))
        .unwrap()
}

fn service(
    issuer: &TestIssuer,
    dir: &Path,
    edit: impl FnOnce(&mut IssuerConfig),
) -> IdentityService {
    let mut ic = IssuerConfig::new("idp", &issuer.url(), &["tollgate"]);
    ic.discovery = Some(issuer.url());
    ic.ca_file = Some(dir.join("ca.pem"));
    ic.refresh_min_interval = Duration::from_millis(100);
    edit(&mut ic);
    IdentityService::new(&IdentityConfig {
        issuers: vec![ic],
        ..IdentityConfig::default()
    })
    .unwrap()
}

/// Verifies with a fresh cache, so every call really consults the current keys.
fn verify(svc: &IdentityService, token: &str) -> Result<(), AuthError> {
    svc.verify_token(token.as_bytes(), &mut svc.new_cache(), SystemTime::now())
        .map(|_| ())
}

#[test]
fn discovery_fetches_keys_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let old = SigningKey::generate(DevAlg::EdDsa)
        .unwrap()
        .0
        .with_kid("k1");
    let new = SigningKey::generate(DevAlg::Es256)
        .unwrap()
        .0
        .with_kid("k2");
    let issuer = TestIssuer::start(dir.path(), old.jwks());
    let svc = service(&issuer, dir.path(), |_| {});
    assert!(
        svc.wait_for_keys(Duration::from_secs(10)),
        "initial discovery fetch"
    );
    verify(&svc, &token(&old, &issuer.url())).unwrap();

    *issuer.jwks.lock().unwrap() = json!({"keys": [old.public_jwk(), new.public_jwk()]});
    let rotated = token(&new, &issuer.url());
    // The first use of the new kid fails fast and triggers the refresh...
    assert!(matches!(
        verify(&svc, &rotated),
        Err(AuthError::UnknownKid { .. })
    ));
    // ...after which it is accepted, with the scheduled refresh (10 min) far away.
    eventually("new kid accepted", || verify(&svc, &rotated).is_ok());

    // A storm of unknown kids is rate-limited to about one fetch per refresh_min_interval.
    let bogus = SigningKey::generate(DevAlg::EdDsa)
        .unwrap()
        .0
        .with_kid("bogus");
    let bogus = token(&bogus, &issuer.url());
    // Let the fetcher finish what the rotation asked for, so only the storm is counted.
    let settled = |svc: &IdentityService| {
        let s = svc.key_source_stats("idp").unwrap();
        s.checks > 0 && issuer.jwks_fetches.load(Ordering::SeqCst) > 0
    };
    eventually("initial fetches done", || settled(&svc));
    let before = svc.key_source_stats("idp").unwrap();
    let fetches_before = issuer.jwks_fetches.load(Ordering::SeqCst);
    let storm = Instant::now();
    for _ in 0..200 {
        assert!(verify(&svc, &bogus).is_err());
    }
    // The limiter lets one request through per refresh_min_interval (100 ms) of the storm.
    let intervals = storm.elapsed().as_millis() / 100;
    let after = svc.key_source_stats("idp").unwrap();
    let requests = after.refresh_requests - before.refresh_requests;
    assert!(
        u128::from(requests) <= 1 + intervals,
        "{requests} refresh requests in {intervals} intervals for 200 unknown-kid lookups"
    );
    // Wait until the fetcher has acted on them (each request is one look at the issuer,
    // at once or deferred to the next interval); no more fetches than requests.
    eventually("the fetcher handled the requests", || {
        svc.key_source_stats("idp").unwrap().checks >= before.checks + requests.min(1)
    });
    let fetched = issuer.jwks_fetches.load(Ordering::SeqCst) - fetches_before;
    assert!(
        fetched as u64 <= requests,
        "{fetched} fetches for {requests} refresh requests"
    );
}

#[test]
fn stale_keys_are_served_for_a_bounded_time_when_the_issuer_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let key = SigningKey::generate(DevAlg::EdDsa)
        .unwrap()
        .0
        .with_kid("k1");
    let mut issuer = TestIssuer::start(dir.path(), key.jwks());
    let svc = service(&issuer, dir.path(), |ic| {
        ic.refresh = Duration::from_millis(300);
        ic.stale_for = Duration::from_secs(4);
    });
    assert!(svc.wait_for_keys(Duration::from_secs(10)));
    let tok = token(&key, &issuer.url());
    verify(&svc, &tok).unwrap();

    let failures = svc.key_source_stats("idp").unwrap().failures;
    issuer.stop();
    // Unreachable issuer: after a fetch has failed, the last keys still verify...
    eventually("a fetch failed", || {
        svc.key_source_stats("idp").unwrap().failures > failures
    });
    verify(&svc, &tok).unwrap();
    // ...until stale_for has passed since the last successful fetch.
    eventually("stale keys dropped", || {
        matches!(verify(&svc, &tok), Err(AuthError::NoKeys { .. }))
    });
}

#[test]
fn issuer_with_untrusted_certificate_yields_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let key = SigningKey::generate(DevAlg::EdDsa)
        .unwrap()
        .0
        .with_kid("k1");
    let issuer = TestIssuer::start(dir.path(), key.jwks());
    // Mozilla's roots do not include the test CA.
    let svc = service(&issuer, dir.path(), |ic| ic.ca_file = None);
    assert!(!svc.wait_for_keys(Duration::from_millis(500)));
    assert!(matches!(
        verify(&svc, &token(&key, &issuer.url())),
        Err(AuthError::NoKeys { .. })
    ));
}
