//! Criterion bench: token verification per new session. Compares, for RS256, ES256 and EdDSA,
//! an uncached `IdentityService::verify_token` (parse, route, key lookup, signature, claims)
//! against a cached one (SHA-256 of the token, cache hit, expiry and revocation checks), and
//! the bare signature check (parse, then `ring` verify with the same key) as the floor.
//! Goal: cached <= 1 us per session; uncached RS256 close to the bare signature check.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tollgate::identity::devissuer::{DevAlg, SigningKey};
use tollgate::identity::jwks::KeySet;
use tollgate::identity::jwt::parse_token;
use tollgate::identity::{IdentityConfig, IdentityService, IssuerConfig};

const ISS: &str = "https://ci.example";
const RSA_PEM: &[u8] = include_bytes!("../../tests/identity_rsa_test_key.pem");

fn token_for(key: &SigningKey) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    key.sign(&json!({
        "iss": ISS, "aud": "tollgate", "sub": "ci-job-4711", "iat": t, "nbf": t, "exp": t + 600,
        "groups": ["ci", "deploy"], "jti": "0f8a1c2e",
    }))
    .unwrap_or_default()
}

fn bench_jwt(c: &mut Criterion) {
    let keys = [
        (
            "RS256",
            SigningKey::from_pem(RSA_PEM).map(|k| k.with_kid("rsa")),
        ),
        (
            "ES256",
            SigningKey::generate(DevAlg::Es256).map(|(k, _)| k.with_kid("es")),
        ),
        (
            "EdDSA",
            SigningKey::generate(DevAlg::EdDsa).map(|(k, _)| k.with_kid("ed")),
        ),
    ];
    let keys: Vec<(&str, SigningKey)> = keys
        .into_iter()
        .filter_map(|(n, k)| k.ok().map(|k| (n, k)))
        .collect();
    let jwks = json!({"keys": keys.iter().filter_map(|(_, k)| k.public_jwk()).collect::<Vec<_>>()});
    let dir = std::env::temp_dir().join(format!("tollgate-jwt-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let jwks_path = dir.join("jwks.json");
    if std::fs::write(&jwks_path, jwks.to_string()).is_err() {
        return;
    }
    let mut issuer = IssuerConfig::new("ci", ISS, &["tollgate"]);
    issuer.jwks_file = Some(jwks_path);
    let Ok(svc) = IdentityService::new(&IdentityConfig {
        issuers: vec![issuer],
        ..IdentityConfig::default()
    }) else {
        return;
    };
    let Ok(set) = KeySet::from_jwks_json(jwks.to_string().as_bytes()) else {
        return;
    };
    let now = SystemTime::now();

    let mut group = c.benchmark_group("jwt");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for (name, key) in &keys {
        let token = token_for(key);
        let check = svc.verify_token(token.as_bytes(), &mut svc.new_cache(), now);
        assert!(
            check.is_ok(),
            "{name}: bench token does not verify: {check:?}"
        );
        let mut cache = svc.new_cache();
        group.bench_function(format!("uncached/{name}"), |b| {
            b.iter(|| {
                cache.clear();
                black_box(
                    svc.verify_token(black_box(token.as_bytes()), &mut cache, now)
                        .is_ok(),
                )
            })
        });
        let mut cache = svc.new_cache();
        group.bench_function(format!("cached/{name}"), |b| {
            b.iter(|| {
                black_box(
                    svc.verify_token(black_box(token.as_bytes()), &mut cache, now)
                        .is_ok(),
                )
            })
        });
        let Some(vk) = set.find(key.kid()) else {
            continue;
        };
        group.bench_function(format!("ring_signature_floor/{name}"), |b| {
            b.iter(|| {
                black_box(
                    parse_token(black_box(token.as_bytes()))
                        .and_then(|t| t.verify_signature(&vk.key, vk.alg))
                        .is_ok(),
                )
            })
        });
    }
    group.finish();
    svc.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
