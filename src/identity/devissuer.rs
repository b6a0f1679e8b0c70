//! The development issuer behind `tollgate token keygen|mint`: makes the quickstart and the
//! tests independent of an external identity provider. Real deployments use their IdP.
//!
//! `keygen` writes `tollgate-dev-key.pem` (PKCS#8, mode 0600) and `tollgate-dev-jwks.json`
//! (point an issuer's `jwks_file` at it). EdDSA by default (fastest to verify and sign);
//! ES256 also. RSA keys cannot be generated here (ring does not generate RSA) but an
//! existing RSA PKCS#8 key signs RS256 (or RS384/RS512/PS256/... via [`SigningKey::from_pem_with_alg`]).
//! The `kid` is derived from the public key, so `mint` recomputes it from the key file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::identity::jwt::alg_name;

pub const KEY_FILE: &str = "tollgate-dev-key.pem";
pub const JWKS_FILE: &str = "tollgate-dev-jwks.json";

#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a usable private key: {reason}")]
    BadKey { reason: String },
    #[error("algorithm {alg:?} does not fit this key")]
    AlgorithmMismatch { alg: Algorithm },
    #[error("cannot sign: {reason}")]
    Sign { reason: String },
}

/// Algorithms `keygen` can create keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevAlg {
    EdDsa,
    Es256,
}

impl std::str::FromStr for DevAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "eddsa" | "ed25519" => Ok(Self::EdDsa),
            "es256" => Ok(Self::Es256),
            other => Err(format!("unsupported algorithm {other:?} (eddsa, es256)")),
        }
    }
}

enum Inner {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Hmac(ring::hmac::Key),
}

/// A private key that signs tokens (dev issuer and tests).
pub struct SigningKey {
    inner: Inner,
    alg: Algorithm,
    kid: String,
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &[u8]) -> Result<Vec<u8>, DevIssuerError> {
    let bad = |reason: &str| DevIssuerError::BadKey {
        reason: reason.into(),
    };
    let text = std::str::from_utf8(pem).map_err(|_| bad("not UTF-8 PEM"))?;
    let begin = text
        .find("-----BEGIN PRIVATE KEY-----")
        .ok_or_else(|| bad("no PKCS#8 `BEGIN PRIVATE KEY` block"))?;
    let body = &text[begin + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = body
        .find("-----END PRIVATE KEY-----")
        .ok_or_else(|| bad("unterminated PEM block"))?;
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| bad("PEM body is not base64"))
}

fn derive_kid(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12])
}

impl SigningKey {
    /// Loads a PKCS#8 PEM key: Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384, RSA → RS256.
    pub fn from_pem(pem: &[u8]) -> Result<Self, DevIssuerError> {
        Self::from_pkcs8_der(&pem_decode(pem)?)
    }

    /// As [`Self::from_pem`], from the DER bytes.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, DevIssuerError> {
        let der = der.to_vec();
        let rng = SystemRandom::new();
        let (inner, alg) = if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            (Inner::Ed(k), Algorithm::EdDSA)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
        {
            (Inner::Ec(k), Algorithm::ES256)
        } else if let Ok(k) =
            EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, &der, &rng)
        {
            (Inner::Ec(k), Algorithm::ES384)
        } else if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
            (Inner::Rsa(k), Algorithm::RS256)
        } else {
            return Err(DevIssuerError::BadKey {
                reason: "not an Ed25519, P-256, P-384 or RSA PKCS#8 key".into(),
            });
        };
        let mut key = Self {
            inner,
            alg,
            kid: String::new(),
        };
        key.kid = derive_kid(&key.public_bytes());
        Ok(key)
    }

    /// Loads an RSA key for a specific RSA algorithm (RS256/384/512, PS256/384/512).
    pub fn from_pem_with_alg(pem: &[u8], alg: Algorithm) -> Result<Self, DevIssuerError> {
        let mut key = Self::from_pem(pem)?;
        let fits = match key.inner {
            Inner::Rsa(_) => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            _ => alg == key.alg,
        };
        if !fits {
            return Err(DevIssuerError::AlgorithmMismatch { alg });
        }
        key.alg = alg;
        Ok(key)
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, DevIssuerError> {
        let pem = std::fs::read(path).map_err(|source| DevIssuerError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&pem)
    }

    /// An HS256 key (for issuers configured with `hs256_secret_file`).
    pub fn hmac(secret: &[u8], kid: &str) -> Self {
        Self {
            inner: Inner::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret)),
            alg: Algorithm::HS256,
            kid: kid.into(),
        }
    }

    /// A fresh key of the given kind, with its PKCS#8 DER.
    pub fn generate(alg: DevAlg) -> Result<(Self, Vec<u8>), DevIssuerError> {
        let rng = SystemRandom::new();
        let fail = |_| DevIssuerError::Sign {
            reason: "key generation failed".into(),
        };
        let der = match alg {
            DevAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            DevAlg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok((Self::from_pkcs8_der(&der)?, der))
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn with_kid(mut self, kid: &str) -> Self {
        kid.clone_into(&mut self.kid);
        self
    }

    fn public_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ed(k) => k.public_key().as_ref().to_vec(),
            Inner::Ec(k) => k.public_key().as_ref().to_vec(),
            Inner::Rsa(k) => k.public().as_ref().to_vec(),
            Inner::Hmac(_) => Vec::new(),
        }
    }

    /// The public half as a JWK (with `kid` and `alg`); `None` for HMAC keys.
    pub fn public_jwk(&self) -> Option<Value> {
        let enc = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let alg = alg_name(self.alg);
        Some(match &self.inner {
            Inner::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": alg, "use": "sig", "x": enc(k.public_key().as_ref())})
            }
            Inner::Ec(k) => {
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "kid": self.kid, "alg": alg, "use": "sig",
                       "x": enc(&point[1..1 + half]), "y": enc(&point[1 + half..])})
            }
            Inner::Rsa(k) => {
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": self.kid, "alg": alg, "use": "sig", "n": enc(&c.n), "e": enc(&c.e)})
            }
            Inner::Hmac(_) => return None,
        })
    }

    /// A JWKS document holding this key's public half.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.public_jwk().into_iter().collect::<Vec<_>>()})
    }

    /// Signs arbitrary header and claims as a compact JWS. The header is used as given, so
    /// tests can forge mismatched `alg`s; the signature always uses this key's algorithm.
    pub fn sign_compact(&self, header: &Value, claims: &Value) -> Result<String, DevIssuerError> {
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(out)
    }

    /// Signs claims under the standard header `{"alg", "typ": "JWT", "kid"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, DevIssuerError> {
        self.sign_compact(
            &json!({"alg": alg_name(self.alg), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, DevIssuerError> {
        let rng = SystemRandom::new();
        let fail = |_| DevIssuerError::Sign {
            reason: "signing failed".into(),
        };
        match &self.inner {
            Inner::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Inner::Ec(k) => Ok(k.sign(&rng, msg).map_err(fail)?.as_ref().to_vec()),
            Inner::Hmac(k) => Ok(ring::hmac::sign(k, msg).as_ref().to_vec()),
            Inner::Rsa(k) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    alg => return Err(DevIssuerError::AlgorithmMismatch { alg }),
                };
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(padding, &rng, msg, &mut out).map_err(fail)?;
                Ok(out)
            }
        }
    }
}

/// What `keygen` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    pub private_key: PathBuf,
    pub jwks: PathBuf,
    pub kid: String,
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), DevIssuerError> {
    use std::io::Write as _;
    let io = |source| DevIssuerError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let _ = private;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes a new private key and its JWKS into `dir`.
pub fn keygen(dir: &Path, alg: DevAlg) -> Result<KeyFiles, DevIssuerError> {
    let (key, der) = SigningKey::generate(alg)?;
    let private_key = dir.join(KEY_FILE);
    let jwks = dir.join(JWKS_FILE);
    write_file(
        &private_key,
        pem_encode("PRIVATE KEY", &der).as_bytes(),
        true,
    )?;
    let doc = serde_json::to_vec_pretty(&key.jwks()).map_err(|e| DevIssuerError::Sign {
        reason: e.to_string(),
    })?;
    write_file(&jwks, &doc, false)?;
    Ok(KeyFiles {
        private_key,
        jwks,
        kid: key.kid().to_owned(),
    })
}

/// What to put in a minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintParams {
    pub sub: String,
    pub groups: Vec<String>,
    pub aud: String,
    pub iss: String,
    pub ttl: Duration,
    /// Overrides the kid derived from the key.
    pub kid: Option<String>,
    /// Token id; a random one when `None`.
    pub jti: Option<String>,
}

/// Mints a token signed by the key in `key_file`, valid from now for `ttl`.
pub fn mint(key_file: &Path, params: &MintParams) -> Result<String, DevIssuerError> {
    mint_with(
        &SigningKey::from_pem_file(key_file)?,
        params,
        SystemTime::now(),
    )
}

/// Mints a token with an explicit key and clock.
pub fn mint_with(
    key: &SigningKey,
    params: &MintParams,
    now: SystemTime,
) -> Result<String, DevIssuerError> {
    let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let jti = match &params.jti {
        Some(j) => j.clone(),
        None => {
            let mut b = [0u8; 16];
            SystemRandom::new()
                .fill(&mut b)
                .map_err(|_| DevIssuerError::Sign {
                    reason: "no randomness".into(),
                })?;
            URL_SAFE_NO_PAD.encode(b)
        }
    };
    let claims = json!({
        "iss": params.iss, "sub": params.sub, "aud": params.aud, "groups": params.groups,
        "iat": iat, "nbf": iat, "exp": iat + params.ttl.as_secs(), "jti": jti,
    });
    let kid = params.kid.as_deref().unwrap_or(key.kid());
    key.sign_compact(
        &json!({"alg": alg_name(key.alg), "typ": "JWT", "kid": kid}),
        &claims,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::identity::jwks::KeySet;
    use crate::identity::jwt::parse_token;

    #[test]
    fn keygen_then_mint_verifies_against_the_written_jwks() {
        for alg in [DevAlg::EdDsa, DevAlg::Es256] {
            let dir = tempfile::tempdir().unwrap();
            let files = keygen(dir.path(), alg).unwrap();
            let params = MintParams {
                sub: "dev".into(),
                groups: vec!["a".into(), "b".into()],
                aud: "tollgate".into(),
                iss: "https://dev.local".into(),
                ttl: Duration::from_secs(600),
                kid: None,
                jti: None,
            };
            let token = mint(&files.private_key, &params).unwrap();
            let set = KeySet::from_jwks_json(&std::fs::read(&files.jwks).unwrap()).unwrap();
            let parsed = parse_token(token.as_bytes()).unwrap();
            assert_eq!(parsed.kid.as_deref(), Some(files.kid.as_str()));
            let key = set.find(&files.kid).unwrap();
            parsed.verify_signature(&key.key, key.alg).unwrap();
            let exp = parsed.claims["exp"].as_u64().unwrap();
            assert_eq!(exp - parsed.claims["iat"].as_u64().unwrap(), 600);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&files.private_key)
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
    }

    #[test]
    fn dev_alg_names() {
        assert_eq!("EdDSA".parse::<DevAlg>().unwrap(), DevAlg::EdDsa);
        assert_eq!("es256".parse::<DevAlg>().unwrap(), DevAlg::Es256);
        assert!("rs256".parse::<DevAlg>().is_err());
    }
}
