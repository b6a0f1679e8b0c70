//! Refusal reasons in the log read as sentences, not Rust `Debug` output.
#![allow(clippy::unwrap_used)]

use super::authz::{AccessDecision, Refused};
use super::jwt::AuthError;

#[test]
fn token_refusals_read_as_sentences() {
    let e = AuthError::UnknownKid {
        issuer: "https://issuer.test".into(),
        kid: Some("nope".into()),
    };
    assert_eq!(
        e.to_string(),
        r#"issuer "https://issuer.test" has no key with kid "nope""#
    );
    let e = AuthError::UnknownKid {
        issuer: "i".into(),
        kid: None,
    };
    assert!(!e.to_string().contains("None"), "{e}");
    let e = AuthError::AlgorithmNotAllowed {
        alg: "HS256".into(),
        allowed: None,
    };
    assert!(!e.to_string().contains("None"), "{e}");
}

#[test]
fn access_refusals_read_as_sentences() {
    let d = AccessDecision::Refuse(Refused::NoMatch);
    assert_eq!(d.to_string(), "refused: no subject or group rule matches");
}
