//! Fuzzes the JWT/JWKS path: token parsing, signature checks on ring against a fixed key set, claim validation, JWKS parsing.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tollgate::identity::devissuer::{DevAlg, SigningKey};
use tollgate::identity::jwks::KeySet;
use tollgate::identity::jwt::{ClaimPolicy, parse_token, validate_claims};

const RSA_PEM: &[u8] = include_bytes!("../../tests/identity_rsa_test_key.pem");
const ISS: &str = "https://issuer.fuzz";
const NOW: i64 = 1_800_000_000;

struct Fixture {
    signers: Vec<SigningKey>,
    keys: KeySet,
    policy: ClaimPolicy,
    /// One valid token per signer, for the JWKS mode.
    tokens: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use tollgate::identity::jwt::jsonwebtoken::Algorithm;
        let mut signers = Vec::new();
        for (kid, alg) in [("rs256", Algorithm::RS256), ("ps384", Algorithm::PS384)] {
            if let Ok(k) = SigningKey::from_pem_with_alg(RSA_PEM, alg) {
                signers.push(k.with_kid(kid));
            }
        }
        for (kid, alg) in [("es256", DevAlg::Es256), ("ed", DevAlg::EdDsa)] {
            if let Ok((k, _)) = SigningKey::generate(alg) {
                signers.push(k.with_kid(kid));
            }
        }
        let jwks: Vec<Value> = signers.iter().filter_map(SigningKey::public_jwk).collect();
        let keys = KeySet::from_jwks_json(json!({ "keys": jwks }).to_string().as_bytes())
            .unwrap_or_else(|e| panic!("fixture JWKS: {e}"));
        let claims = json!({"iss": ISS, "aud": "tollgate", "sub": "fuzz", "iat": NOW, "exp": NOW + 60});
        let tokens = signers.iter().filter_map(|s| s.sign(&claims).ok()).collect();
        let policy = ClaimPolicy {
            issuer: ISS.into(),
            audience: vec!["tollgate".into()],
            leeway_s: 5,
            max_lifetime: Duration::from_secs(3600),
            groups_claim: "groups".into(),
            groups_required: false,
        };
        Fixture { signers, keys, policy, tokens }
    })
}

/// The path a token takes in `IdentityService::verify_token`: parse, route, key, signature, claims.
fn check_token(f: &Fixture, keys: &KeySet, token: &[u8]) -> bool {
    let Ok(parsed) = parse_token(token) else {
        return false;
    };
    let _ = parsed.issuer();
    let Some(key) = parsed.kid.as_deref().and_then(|kid| keys.find(kid)) else {
        return false;
    };
    if parsed.verify_signature(&key.key, key.alg).is_err() {
        return false;
    }
    validate_claims(&parsed.claims, &f.policy, NOW).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // Hostile tokens against the fixed key set.
        0 => {
            check_token(f, &f.keys, rest);
        }
        // Hostile claims, validly signed: the claim checks see every shape of JSON.
        1 => {
            let Some((&which, claims)) = rest.split_first() else {
                return;
            };
            let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(claims) else {
                return;
            };
            let signer = &f.signers[usize::from(which) % f.signers.len()];
            if let Ok(token) = signer.sign(&Value::Object(claims)) {
                // A token signed by a key of the set must pass the signature check.
                let parsed = parse_token(token.as_bytes());
                if let Ok(p) = parsed
                    && let Some(key) = f.keys.find(signer.kid())
                {
                    assert!(p.verify_signature(&key.key, key.alg).is_ok(), "own signature refused");
                    let _ = validate_claims(&p.claims, &f.policy, NOW);
                }
            }
        }
        // Hostile JWKS documents: parse, then check every fixture token against them.
        _ => {
            if let Ok(keys) = KeySet::from_jwks_json(rest) {
                for t in &f.tokens {
                    check_token(f, &keys, t.as_bytes());
                }
            }
        }
    }
});
