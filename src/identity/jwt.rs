//! JWT parsing, signature checking and claim validation, with precise internal errors.
//!
//! What a client sees: whatever the reason, [`AuthError::client_message`] is the same short
//! text, `authentication failed`. The precise variant goes to the log and the audit record
//! only, so a prober learns nothing about which check failed (expired vs. unknown key vs.
//! revoked).
//!
//! Order of checks, cheapest and least trusting first: size cap (before any parsing),
//! character set, three parts, header and payload JSON, routing by `iss`, algorithm
//! (the key's, never the header's), `kid`, signature, then the claims.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::identity::config::IssuerConfig;

/// Re-exported for the algorithm names and key holder callers build keys with.
pub use jsonwebtoken;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why an identity was refused. Internal detail: clients only ever see [`AuthError::client_message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("token is {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("malformed token: {what}")]
    Malformed { what: &'static str },
    #[error("token {part} is not valid base64url")]
    BadBase64 { part: &'static str },
    #[error("no issuer is configured for iss {issuer:?}")]
    WrongIssuer { issuer: String },
    #[error("algorithm {alg:?} is not allowed ({})", allowed_text(allowed))]
    AlgorithmNotAllowed {
        alg: String,
        allowed: Option<Algorithm>,
    },
    #[error("issuer {issuer:?} has no key {}", kid_text(kid))]
    UnknownKid { issuer: String, kid: Option<String> },
    #[error("issuer {issuer:?} has no usable keys (not fetched yet, or stale)")]
    NoKeys { issuer: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("token audience is not one of this gateway's audiences")]
    WrongAudience,
    #[error("token lifetime {lifetime:?} exceeds the maximum {max:?}")]
    LifetimeTooLong { lifetime: Duration, max: Duration },
    #[error("required claim `{claim}` is missing")]
    MissingClaim { claim: &'static str },
    #[error("claim `{claim}` has the wrong type")]
    BadClaim { claim: &'static str },
    #[error("groups claim `{claim}` is missing and required")]
    GroupsMissing { claim: String },
    #[error("groups claim `{claim}` is not an array of strings")]
    GroupsMalformed { claim: String },
    #[error("identity is revoked ({rule})")]
    Revoked { rule: String },
    #[error("no client certificate was presented")]
    NoClientCertificate,
    #[error("client certificate unusable: {reason}")]
    BadCertificate { reason: String },
}

impl AuthError {
    /// The only text a client is shown, for every variant: precise reasons help attackers
    /// probe (which kid exists, whether a subject is revoked), so they stay in the log.
    pub fn client_message(&self) -> &'static str {
        "authentication failed"
    }
}

/// The per-issuer rules a token's claims must satisfy, in the units the check uses.
#[derive(Debug, Clone)]
pub struct ClaimPolicy {
    pub issuer: String,
    pub audience: Vec<String>,
    pub leeway_s: i64,
    pub max_lifetime: Duration,
    pub groups_claim: String,
    pub groups_required: bool,
}

impl ClaimPolicy {
    pub fn from_config(cfg: &IssuerConfig) -> Self {
        Self {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            leeway_s: secs_i64(cfg.leeway),
            max_lifetime: cfg.max_lifetime,
            groups_claim: cfg.groups_claim.clone(),
            groups_required: cfg.groups_required,
        }
    }
}

fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    // Any critical extension (e.g. RFC 7797 `b64: false`) changes what the signature covers;
    // we implement none, so a token that declares one is refused.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A token split and decoded, not yet trusted.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    signing_input: &'a [u8],
    signature: &'a str,
}

/// Splits and decodes a compact JWS. Does no verification.
pub fn parse_token(token: &[u8]) -> Result<ParsedToken<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let mut dots = [0usize; 2];
    let mut ndots = 0;
    for (i, &b) in token.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
            b'.' => {
                if ndots == 2 {
                    return Err(AuthError::Malformed {
                        what: "more than three parts",
                    });
                }
                dots[ndots] = i;
                ndots += 1;
            }
            _ => return Err(AuthError::BadBase64 { part: "text" }),
        }
    }
    if ndots != 2 {
        return Err(AuthError::Malformed {
            what: "not three dot-separated parts",
        });
    }
    let header_b64 = &token[..dots[0]];
    let payload_b64 = &token[dots[0] + 1..dots[1]];
    let signature = &token[dots[1] + 1..];
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(AuthError::Malformed {
            what: "empty header or payload",
        });
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| AuthError::BadBase64 { part: "header" })?;
    let payload_json = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| AuthError::BadBase64 { part: "payload" })?;
    let header: RawHeader =
        serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed {
            what: "header is not a JSON JWS header",
        })?;
    if header.crit.is_some() {
        return Err(AuthError::Malformed {
            what: "critical header extensions are not supported",
        });
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload_json).map_err(|_| AuthError::Malformed {
            what: "payload is not a JSON object",
        })?;
    // The character scan above admitted only ASCII, so this cannot fail; map it anyway.
    let signature =
        std::str::from_utf8(signature).map_err(|_| AuthError::BadBase64 { part: "signature" })?;
    Ok(ParsedToken {
        alg: header.alg,
        kid: header.kid,
        claims,
        signing_input: &token[..dots[1]],
        signature,
    })
}

impl ParsedToken<'_> {
    /// The unverified `iss`, used only to pick which issuer's keys and rules apply.
    pub fn issuer(&self) -> Result<&str, AuthError> {
        match self.claims.get("iss") {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(AuthError::BadClaim { claim: "iss" }),
            None => Err(AuthError::MissingClaim { claim: "iss" }),
        }
    }

    /// Checks the signature with `key` under `alg`, the algorithm the key allows; the header's
    /// `alg` must name that same algorithm.
    pub fn verify_signature(&self, key: &DecodingKey, alg: Algorithm) -> Result<(), AuthError> {
        if self.alg != alg_name(alg) {
            return Err(AuthError::AlgorithmNotAllowed {
                alg: self.alg.clone(),
                allowed: Some(alg),
            });
        }
        if self.signature.is_empty() {
            return Err(AuthError::BadSignature);
        }
        crate::identity::jws::verify(self.signature, self.signing_input, key, alg)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// The JOSE name of an algorithm.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // The enum is non-exhaustive; an algorithm added upstream is unknown here and so
        // matches no token header.
        _ => "unsupported",
    }
}

/// Claims that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidClaims {
    pub subject: String,
    pub groups: Vec<String>,
    pub token_id: Option<String>,
    pub exp: i64,
}

/// Validates time, audience, lifetime, subject and groups. `iss` was matched by routing and
/// is re-checked here so this function stands on its own.
pub fn validate_claims(
    claims: &Map<String, Value>,
    policy: &ClaimPolicy,
    now: i64,
) -> Result<ValidClaims, AuthError> {
    match claims.get("iss") {
        Some(Value::String(s)) if *s == policy.issuer => {}
        Some(Value::String(s)) => return Err(AuthError::WrongIssuer { issuer: s.clone() }),
        Some(_) => return Err(AuthError::BadClaim { claim: "iss" }),
        None => return Err(AuthError::MissingClaim { claim: "iss" }),
    }
    let leeway = policy.leeway_s;
    let exp = numeric_date(claims, "exp")?.ok_or(AuthError::MissingClaim { claim: "exp" })?;
    if now >= exp.saturating_add(leeway) {
        return Err(AuthError::Expired { exp, now });
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(AuthError::NotYetValid { nbf, now });
    }
    let iat = numeric_date(claims, "iat")?.ok_or(AuthError::MissingClaim { claim: "iat" })?;
    if now.saturating_add(leeway) < iat {
        return Err(AuthError::IssuedInFuture { iat, now });
    }
    if exp < iat {
        return Err(AuthError::BadClaim { claim: "exp" });
    }
    let lifetime = Duration::from_secs(u64::try_from(exp - iat).unwrap_or(u64::MAX));
    if lifetime > policy.max_lifetime {
        return Err(AuthError::LifetimeTooLong {
            lifetime,
            max: policy.max_lifetime,
        });
    }
    check_audience(claims, &policy.audience)?;
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(AuthError::BadClaim { claim: "sub" }),
        None => return Err(AuthError::MissingClaim { claim: "sub" }),
    };
    let token_id = match claims.get("jti") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(AuthError::BadClaim { claim: "jti" }),
        None => None,
    };
    let groups = extract_groups(claims, &policy.groups_claim, policy.groups_required)?;
    Ok(ValidClaims {
        subject,
        groups,
        token_id,
        exp,
    })
}

/// RFC 7519 NumericDate: integer or fractional seconds; fractions are floored.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, AuthError> {
    // 2^53: beyond it floats lose whole seconds and no real token goes there.
    const MAX: f64 = 9_007_199_254_740_992.0;
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                if (0..=MAX as i64).contains(&i) {
                    return Ok(Some(i));
                }
                return Err(AuthError::BadClaim { claim });
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && (0.0..=MAX).contains(&f) => Ok(Some(f.floor() as i64)),
                _ => Err(AuthError::BadClaim { claim }),
            }
        }
        Some(_) => Err(AuthError::BadClaim { claim }),
    }
}

fn check_audience(claims: &Map<String, Value>, accepted: &[String]) -> Result<(), AuthError> {
    let ok = match claims.get("aud") {
        Some(Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(Value::Array(items)) => {
            let mut any = false;
            for item in items {
                match item {
                    Value::String(a) => any |= accepted.iter().any(|x| x == a),
                    _ => return Err(AuthError::BadClaim { claim: "aud" }),
                }
            }
            any
        }
        Some(_) => return Err(AuthError::BadClaim { claim: "aud" }),
        None => return Err(AuthError::MissingClaim { claim: "aud" }),
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::WrongAudience)
    }
}

/// Finds a claim by name: the whole string as one top-level key first (so URL-named claims
/// such as `https://example.com/groups`, which contain dots, work), then as a dotted path
/// through nested objects (`realm_access.roles`).
pub fn find_claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    if !path.contains('.') {
        return None;
    }
    let mut segments = path.split('.');
    let mut current = claims.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

fn extract_groups(
    claims: &Map<String, Value>,
    path: &str,
    required: bool,
) -> Result<Vec<String>, AuthError> {
    match find_claim(claims, path) {
        None | Some(Value::Null) => {
            if required {
                Err(AuthError::GroupsMissing {
                    claim: path.to_owned(),
                })
            } else {
                Ok(Vec::new())
            }
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(AuthError::GroupsMalformed {
                    claim: path.to_owned(),
                }),
            })
            .collect(),
        // A bare string is refused rather than guessed at (space-separated? one group?).
        Some(_) => Err(AuthError::GroupsMalformed {
            claim: path.to_owned(),
        }),
    }
}

/// The key's algorithm, as a sentence for refusal logs (not Rust Debug).
fn allowed_text(allowed: &Option<Algorithm>) -> String {
    match allowed {
        Some(a) => format!("the key allows only {a:?}"),
        None => "the key names no algorithm".to_string(),
    }
}

/// The token's key id, as a sentence for refusal logs (not Rust Debug).
fn kid_text(kid: &Option<String>) -> String {
    match kid {
        Some(k) => format!("with kid \"{}\"", k.escape_debug()),
        None => "matching a token without a kid".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: "https://ci.example".into(),
            audience: vec!["tollgate".into()],
            leeway_s: 30,
            max_lifetime: Duration::from_secs(3600),
            groups_claim: "groups".into(),
            groups_required: false,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn base() -> Value {
        json!({"iss": "https://ci.example", "aud": "tollgate", "sub": "job-1", "iat": 1000, "exp": 1600, "groups": ["ci"], "jti": "t1"})
    }

    #[test]
    fn valid_claims_pass() {
        let c = validate_claims(&claims(base()), &policy(), 1200).unwrap();
        assert_eq!(c.subject, "job-1");
        assert_eq!(c.groups, vec!["ci".to_owned()]);
        assert_eq!(c.token_id.as_deref(), Some("t1"));
        assert_eq!(c.exp, 1600);
    }

    #[test]
    fn time_checks_use_leeway() {
        assert!(validate_claims(&claims(base()), &policy(), 1629).is_ok());
        assert_eq!(
            validate_claims(&claims(base()), &policy(), 1630).unwrap_err(),
            AuthError::Expired {
                exp: 1600,
                now: 1630
            }
        );
        let mut v = base();
        v["nbf"] = json!(1100);
        assert!(validate_claims(&claims(v.clone()), &policy(), 1070).is_ok());
        assert!(matches!(
            validate_claims(&claims(v), &policy(), 1069),
            Err(AuthError::NotYetValid { .. })
        ));
        let mut v = base();
        v["iat"] = json!(1500);
        assert!(matches!(
            validate_claims(&claims(v), &policy(), 1200),
            Err(AuthError::IssuedInFuture { .. })
        ));
    }

    #[test]
    fn required_claims_and_types() {
        for (claim, name) in [
            ("exp", "exp"),
            ("iat", "iat"),
            ("sub", "sub"),
            ("aud", "aud"),
        ] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                validate_claims(&claims(v), &policy(), 1200).unwrap_err(),
                AuthError::MissingClaim { claim: name }
            );
        }
        let mut v = base();
        v["exp"] = json!("1600");
        assert_eq!(
            validate_claims(&claims(v), &policy(), 1200).unwrap_err(),
            AuthError::BadClaim { claim: "exp" }
        );
        let mut v = base();
        v["exp"] = json!(1600.9);
        assert_eq!(
            validate_claims(&claims(v), &policy(), 1200).unwrap().exp,
            1600
        );
    }

    #[test]
    fn lifetime_and_audience() {
        let mut v = base();
        v["exp"] = json!(1000 + 3601);
        assert_eq!(
            validate_claims(&claims(v), &policy(), 1200).unwrap_err(),
            AuthError::LifetimeTooLong {
                lifetime: Duration::from_secs(3601),
                max: Duration::from_secs(3600)
            }
        );
        let mut v = base();
        v["aud"] = json!(["other", "tollgate"]);
        assert!(validate_claims(&claims(v), &policy(), 1200).is_ok());
        let mut v = base();
        v["aud"] = json!(["other"]);
        assert_eq!(
            validate_claims(&claims(v), &policy(), 1200).unwrap_err(),
            AuthError::WrongAudience
        );
    }

    #[test]
    fn groups_paths() {
        let c = claims(json!({
            "https://example.com/groups": ["a"],
            "realm_access": {"roles": ["b", "c"]},
            "bad": "admin",
            "mixed": ["x", 1],
        }));
        assert_eq!(
            extract_groups(&c, "https://example.com/groups", true).unwrap(),
            vec!["a".to_owned()]
        );
        assert_eq!(
            extract_groups(&c, "realm_access.roles", true).unwrap(),
            vec!["b".to_owned(), "c".to_owned()]
        );
        assert_eq!(
            extract_groups(&c, "nope", false).unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            extract_groups(&c, "nope", true),
            Err(AuthError::GroupsMissing { .. })
        ));
        assert!(matches!(
            extract_groups(&c, "bad", false),
            Err(AuthError::GroupsMalformed { .. })
        ));
        assert!(matches!(
            extract_groups(&c, "mixed", false),
            Err(AuthError::GroupsMalformed { .. })
        ));
        assert!(matches!(
            extract_groups(&c, "realm_access", false),
            Err(AuthError::GroupsMalformed { .. })
        ));
    }

    #[test]
    fn parse_rejects_shape_errors() {
        assert!(matches!(
            parse_token(b"abc"),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            parse_token(b"a.b.c.d"),
            Err(AuthError::Malformed { .. })
        ));
        assert!(matches!(
            parse_token(b"a b.c.d"),
            Err(AuthError::BadBase64 { .. })
        ));
        assert!(matches!(
            parse_token(b"a=.b.c"),
            Err(AuthError::BadBase64 { .. })
        ));
        assert!(matches!(
            parse_token(b"a.b.c"),
            Err(AuthError::BadBase64 { .. })
        ));
        let big = vec![b'a'; MAX_TOKEN_LEN + 1];
        assert_eq!(
            parse_token(&big).unwrap_err(),
            AuthError::TooLarge {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            }
        );
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","crit":["b64"],"b64":false}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        assert!(matches!(
            parse_token(format!("{h}.{p}.sig").as_bytes()),
            Err(AuthError::Malformed { .. })
        ));
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"k"}"#);
        let t = format!("{h}.{p}.sig");
        let parsed = parse_token(t.as_bytes()).unwrap();
        assert_eq!(parsed.issuer().unwrap(), "x");
        assert_eq!(parsed.kid.as_deref(), Some("k"));
    }

    #[test]
    fn client_message_is_generic() {
        assert_eq!(
            AuthError::BadSignature.client_message(),
            "authentication failed"
        );
        assert_eq!(
            AuthError::Revoked {
                rule: "subject x".into()
            }
            .client_message(),
            "authentication failed"
        );
    }
}
