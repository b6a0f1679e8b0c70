//! Token verification through `IdentityService`: every algorithm, every rejection path, the
//! per-shard cache, JWKS file rotation and revocation (API and watched file).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use tollgate::identity::devissuer::{DevAlg, SigningKey};
use tollgate::identity::{
    AuthError, IdentityConfig, IdentityService, IssuerConfig, Revocation, RevocationTarget,
    TokenCache,
};

const ISS: &str = "https://ci.example";
const HS_ISS: &str = "https://hs.example";
const RSA_PEM: &[u8] = include_bytes!("identity_rsa_test_key.pem");
const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within 10 s: {what}");
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

struct Keys {
    ed: SigningKey,
    es256: SigningKey,
    es384: SigningKey,
    rsa: Vec<SigningKey>,
}

fn keys() -> Keys {
    let es384_der = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P384_SHA384_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    Keys {
        ed: SigningKey::generate(DevAlg::EdDsa)
            .unwrap()
            .0
            .with_kid("ed"),
        es256: SigningKey::generate(DevAlg::Es256)
            .unwrap()
            .0
            .with_kid("es256"),
        es384: SigningKey::from_pkcs8_der(es384_der.as_ref())
            .unwrap()
            .with_kid("es384"),
        rsa: [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
        ]
        .into_iter()
        .map(|alg| {
            SigningKey::from_pem_with_alg(RSA_PEM, alg)
                .unwrap()
                .with_kid(&format!("rsa-{alg:?}"))
        })
        .collect(),
    }
}

impl Keys {
    fn all(&self) -> Vec<&SigningKey> {
        let mut v = vec![&self.ed, &self.es256, &self.es384];
        v.extend(self.rsa.iter());
        v
    }
    fn jwks(&self) -> Value {
        json!({"keys": self.all().iter().map(|k| k.public_jwk().unwrap()).collect::<Vec<_>>()})
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
    keys: Keys,
    svc: IdentityService,
    cache: TokenCache,
}

fn fixture_with(edit: impl FnOnce(&mut IdentityConfig, &Path)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let jwks = dir.path().join("jwks.json");
    write_atomically(&jwks, keys.jwks().to_string().as_bytes());
    let secret = dir.path().join("hs.secret");
    std::fs::write(&secret, [HS_SECRET, b"\n"].concat()).unwrap();

    let mut ci = IssuerConfig::new("ci", ISS, &["tollgate"]);
    ci.jwks_file = Some(jwks);
    ci.refresh_min_interval = Duration::from_millis(50);
    let mut hs = IssuerConfig::new("hs", HS_ISS, &["tollgate"]);
    hs.hs256_secret_file = Some(secret);
    let mut cfg = IdentityConfig {
        issuers: vec![ci, hs],
        ..IdentityConfig::default()
    };
    edit(&mut cfg, dir.path());
    let svc = IdentityService::new(&cfg).unwrap();
    let cache = svc.new_cache();
    Fixture {
        dir,
        keys,
        svc,
        cache,
    }
}

fn fixture() -> Fixture {
    fixture_with(|_, _| {})
}

fn claims(now: SystemTime) -> Value {
    let t = unix(now);
    json!({"iss": ISS, "aud": "tollgate", "sub": "job-1", "iat": t, "nbf": t, "exp": t + 600, "groups": ["ci", "deploy"], "jti": "tok-1"})
}

impl Fixture {
    fn verify(
        &mut self,
        token: &str,
        now: SystemTime,
    ) -> Result<Arc<tollgate::identity::Identity>, AuthError> {
        self.svc
            .verify_token(token.as_bytes(), &mut self.cache, now)
    }

    fn refused(&mut self, token: &str, now: SystemTime) -> AuthError {
        let err = self.verify(token, now).unwrap_err();
        assert_eq!(err.client_message(), "authentication failed");
        err
    }
}

#[test]
fn every_supported_algorithm_verifies() {
    let mut f = fixture();
    let now = SystemTime::now();
    let tokens: Vec<(Algorithm, String)> = f
        .keys
        .all()
        .iter()
        .map(|k| (k.alg(), k.sign(&claims(now)).unwrap()))
        .collect();
    for (alg, token) in tokens {
        let id = f
            .verify(&token, now)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(id.subject, "job-1");
        assert_eq!(id.issuer, ISS);
        assert_eq!(id.groups, vec!["ci".to_owned(), "deploy".to_owned()]);
        assert_eq!(id.token_id.as_deref(), Some("tok-1"));
        assert_eq!(id.expires_at.map(unix), Some(unix(now) + 600));
    }
    assert_eq!(f.cache.signature_checks(), 7);
}

#[test]
fn time_issuer_audience_and_lifetime_rejections() {
    let mut f = fixture();
    let now = SystemTime::now();
    let t = unix(now) as i64;

    let mut c = claims(now);
    c["iat"] = json!(t - 700);
    c["nbf"] = json!(t - 700);
    c["exp"] = json!(t - 100);
    assert!(matches!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::Expired { .. }
    ));

    let mut c = claims(now);
    c["nbf"] = json!(t + 120);
    assert!(matches!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::NotYetValid { .. }
    ));

    let mut c = claims(now);
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::WrongIssuer {
            issuer: "https://evil.example".into()
        }
    );

    let mut c = claims(now);
    c["aud"] = json!("someone-else");
    assert_eq!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::WrongAudience
    );

    let mut c = claims(now);
    c["exp"] = json!(t + 3601);
    assert!(matches!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::LifetimeTooLong { .. }
    ));

    let mut c = claims(now);
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::MissingClaim { claim: "iat" }
    );

    let mut c = claims(now);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::MissingClaim { claim: "exp" }
    );

    assert_eq!(f.cache.len(), 0, "refused tokens must not be cached");
}

#[test]
fn algorithm_confusion_and_none_are_refused() {
    let mut f = fixture();
    let now = SystemTime::now();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // alg none, with and without a signature part.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "ed"})),
        b64(&claims(now))
    );
    assert!(matches!(
        f.refused(&none, now),
        AuthError::AlgorithmNotAllowed { allowed: None, .. }
    ));

    // RS256 -> HS256: the RSA public key's PEM used as the HMAC secret.
    let public_pem = rcgen::KeyPair::from_pem(std::str::from_utf8(RSA_PEM).unwrap())
        .unwrap()
        .public_key_pem();
    let forged = SigningKey::hmac(public_pem.as_bytes(), "rsa-RS256")
        .sign_compact(&json!({"alg": "HS256", "kid": "rsa-RS256"}), &claims(now))
        .unwrap();
    assert!(matches!(
        f.refused(&forged, now),
        AuthError::AlgorithmNotAllowed { allowed: None, .. }
    ));

    // A header alg that differs from the key's: EdDSA key, ES256 header.
    let mismatched = f
        .keys
        .ed
        .sign_compact(&json!({"alg": "ES256", "kid": "ed"}), &claims(now))
        .unwrap();
    assert_eq!(
        f.refused(&mismatched, now),
        AuthError::AlgorithmNotAllowed {
            alg: "ES256".into(),
            allowed: Some(Algorithm::EdDSA)
        }
    );
    // RS256 key presented as PS256.
    let pss_header = f.keys.rsa[0]
        .sign_compact(&json!({"alg": "PS256", "kid": "rsa-RS256"}), &claims(now))
        .unwrap();
    assert!(matches!(
        f.refused(&pss_header, now),
        AuthError::AlgorithmNotAllowed { .. }
    ));
    assert_eq!(
        f.cache.signature_checks(),
        0,
        "refused before any signature check"
    );
}

#[test]
fn hs256_only_where_configured_and_only_with_its_secret() {
    let mut f = fixture();
    let now = SystemTime::now();
    let mut c = claims(now);
    c["iss"] = json!(HS_ISS);
    let good = SigningKey::hmac(HS_SECRET, "any").sign(&c).unwrap();
    assert_eq!(f.verify(&good, now).unwrap().issuer, HS_ISS);

    let wrong_secret = SigningKey::hmac(b"another-secret-another-secret-xx", "any")
        .sign(&c)
        .unwrap();
    assert_eq!(f.refused(&wrong_secret, now), AuthError::BadSignature);

    let rs = f.keys.rsa[0].sign(&c).unwrap();
    assert!(matches!(
        f.refused(&rs, now),
        AuthError::AlgorithmNotAllowed {
            allowed: Some(Algorithm::HS256),
            ..
        }
    ));
    let hs384 = SigningKey::hmac(HS_SECRET, "any")
        .sign_compact(&json!({"alg": "HS384"}), &c)
        .unwrap();
    assert!(matches!(
        f.refused(&hs384, now),
        AuthError::AlgorithmNotAllowed { .. }
    ));
}

#[test]
fn tampering_kids_encoding_size_and_groups() {
    let mut f = fixture();
    let now = SystemTime::now();
    let token = f.keys.es256.sign(&claims(now)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();

    let mut c = claims(now);
    c["sub"] = json!("admin");
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    assert_eq!(f.refused(&tampered_payload, now), AuthError::BadSignature);

    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x01;
    let tampered_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(f.refused(&tampered_sig, now), AuthError::BadSignature);

    let unknown = f
        .keys
        .ed
        .sign_compact(&json!({"alg": "EdDSA", "kid": "nope"}), &claims(now))
        .unwrap();
    assert!(matches!(
        f.refused(&unknown, now),
        AuthError::UnknownKid { kid: Some(_), .. }
    ));
    let no_kid = f
        .keys
        .ed
        .sign_compact(&json!({"alg": "EdDSA"}), &claims(now))
        .unwrap();
    assert!(matches!(
        f.refused(&no_kid, now),
        AuthError::UnknownKid { kid: None, .. }
    ));

    assert!(matches!(
        f.refused(&format!("{}.{}!.{}", parts[0], parts[1], parts[2]), now),
        AuthError::BadBase64 { .. }
    ));
    assert!(matches!(
        f.refused(&format!("{}.A.{}", parts[0], parts[2]), now),
        AuthError::BadBase64 { .. }
    ));
    assert!(matches!(
        f.refused(&format!("{}+.{}.{}", parts[0], parts[1], parts[2]), now),
        AuthError::BadBase64 { .. }
    ));
    assert!(matches!(
        f.refused(&format!("{}.{}", parts[0], parts[1]), now),
        AuthError::Malformed { .. }
    ));

    let mut big = claims(now);
    big["padding"] = json!("x".repeat(17 * 1024));
    let oversized = f.keys.ed.sign(&big).unwrap();
    assert!(matches!(
        f.refused(&oversized, now),
        AuthError::TooLarge { max: 16384, .. }
    ));

    let mut c = claims(now);
    c["groups"] = json!("admins");
    assert!(matches!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::GroupsMalformed { .. }
    ));
    let mut c = claims(now);
    c["groups"] = json!(["ok", 7]);
    assert!(matches!(
        f.refused(&f.keys.ed.sign(&c).unwrap(), now),
        AuthError::GroupsMalformed { .. }
    ));

    // Missing groups: empty groups by default...
    let mut c = claims(now);
    c.as_object_mut().unwrap().remove("groups");
    let no_groups = f.keys.ed.sign(&c).unwrap();
    assert!(f.verify(&no_groups, now).unwrap().groups.is_empty());
    // ...refused where the issuer requires them.
    let mut strict = fixture_with(|cfg, _| cfg.issuers[0].groups_required = true);
    let no_groups = strict.keys.ed.sign(&c).unwrap();
    assert!(matches!(
        strict.refused(&no_groups, now),
        AuthError::GroupsMissing { .. }
    ));
}

#[test]
fn groups_from_nested_and_url_named_claims() {
    let now = SystemTime::now();
    for path in ["realm_access.roles", "https://example.com/groups"] {
        let mut f = fixture_with(|cfg, _| cfg.issuers[0].groups_claim = path.to_owned());
        let mut c = claims(now);
        c["realm_access"] = json!({"roles": ["nested"]});
        c["https://example.com/groups"] = json!(["url"]);
        let id = f.verify(&f.keys.ed.sign(&c).unwrap(), now).unwrap();
        let expected = if path.starts_with("https") {
            "url"
        } else {
            "nested"
        };
        assert_eq!(id.groups, vec![expected.to_owned()]);
    }
}

#[test]
fn cache_skips_signature_but_not_expiry_or_revocation() {
    let mut f = fixture();
    let now = SystemTime::now();
    let token = f.keys.rsa[0].sign(&claims(now)).unwrap();
    f.verify(&token, now).unwrap();
    assert_eq!(f.cache.signature_checks(), 1);
    for _ in 0..5 {
        assert_eq!(
            f.verify(&token, now + Duration::from_secs(10))
                .unwrap()
                .subject,
            "job-1"
        );
    }
    assert_eq!(
        f.cache.signature_checks(),
        1,
        "cache hits do no signature check"
    );
    assert_eq!(f.cache.hits(), 5);

    // Past exp + leeway the cached entry is refused, still without a signature check.
    assert!(matches!(
        f.refused(&token, now + Duration::from_secs(631)),
        AuthError::Expired { .. }
    ));
    assert_eq!(f.cache.signature_checks(), 1);

    // A revocation applies to cached tokens at once.
    let other = f.keys.ed.sign(&claims(now)).unwrap();
    f.verify(&other, now).unwrap();
    f.svc
        .revocations()
        .revoke(Revocation::new(RevocationTarget::TokenId("tok-1".into())));
    assert!(matches!(f.refused(&other, now), AuthError::Revoked { .. }));
    assert_eq!(f.cache.signature_checks(), 2);

    // A cache filled by another service (config reload) is not trusted.
    let g = fixture();
    let mut stale_cache = f.svc.new_cache();
    let token = g.keys.ed.sign(&claims(now)).unwrap();
    assert!(
        f.svc
            .verify_token(token.as_bytes(), &mut stale_cache, now)
            .is_err()
    );
}

#[test]
fn jwks_file_rotation_is_picked_up_without_restart() {
    let mut f = fixture();
    let now = SystemTime::now();
    let (new_key, _) = SigningKey::generate(DevAlg::EdDsa).unwrap();
    let new_key = new_key.with_kid("rotated");
    let token = new_key.sign(&claims(now)).unwrap();
    assert!(matches!(
        f.refused(&token, now),
        AuthError::UnknownKid { .. }
    ));

    write_atomically(
        &f.dir.path().join("jwks.json"),
        new_key.jwks().to_string().as_bytes(),
    );
    eventually("rotated key accepted", || f.verify(&token, now).is_ok());
    // The old keys are gone with the old file.
    let old = f.keys.ed.sign(&claims(now)).unwrap();
    assert!(matches!(f.refused(&old, now), AuthError::UnknownKid { .. }));

    // A broken file keeps the current keys: once the watcher has looked at it and refused
    // it, the key from the last good file still verifies.
    let failures = f.svc.key_source_stats("ci").unwrap().failures;
    write_atomically(&f.dir.path().join("jwks.json"), b"{not json");
    eventually("the watcher refused the broken file", || {
        f.svc.key_source_stats("ci").unwrap().failures > failures
    });
    let again = new_key.sign(&json!({"iss": ISS, "aud": "tollgate", "sub": "x", "iat": unix(now), "exp": unix(now) + 60})).unwrap();
    assert!(f.verify(&again, now).is_ok());
}

#[test]
fn revocations_from_file_and_api_notify_subscribers_and_refuse() {
    let mut f = fixture_with(|cfg, dir| {
        let path = dir.join("revocations.json");
        std::fs::write(&path, "[]").unwrap();
        cfg.revocation_file = Some(path);
    });
    let now = SystemTime::now();
    let seen: Arc<Mutex<Vec<RevocationTarget>>> = Arc::default();
    let sink = seen.clone();
    f.svc
        .revocations()
        .subscribe(Box::new(move |r: &Revocation| {
            sink.lock().unwrap().push(r.target.clone())
        }));

    let token = f.keys.ed.sign(&claims(now)).unwrap();
    let id = f.verify(&token, now).unwrap();

    write_atomically(
        &f.dir.path().join("revocations.json"),
        br#"[{"subject": "job-1", "reason": "test"}]"#,
    );
    eventually("file revocation notified", || {
        seen.lock()
            .unwrap()
            .contains(&RevocationTarget::Subject("job-1".into()))
    });
    let revocation = f.svc.revocations().check(&id, now).unwrap();
    assert!(revocation.matches(&id, now));
    assert!(matches!(f.refused(&token, now), AuthError::Revoked { .. }));

    f.svc
        .revocations()
        .revoke(Revocation::new(RevocationTarget::Issuer(HS_ISS.into())));
    assert!(
        seen.lock()
            .unwrap()
            .contains(&RevocationTarget::Issuer(HS_ISS.into()))
    );

    // Removing the entry from the file lifts it.
    write_atomically(&f.dir.path().join("revocations.json"), b"[]");
    eventually("file revocation lifted", || f.verify(&token, now).is_ok());
}
