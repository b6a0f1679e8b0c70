//! JWS signature verification on `ring` alone: one crypto stack for TLS, SCRAM binding and tokens.
//!
//! `jsonwebtoken` still supplies the algorithm names and the key holder ([`DecodingKey`]); its
//! crypto backends are left off (`rust_crypto` would bring `rsa`, with the unfixed Marvin
//! timing advisory, plus `p256`, `p384` and `ed25519-dalek` next to `ring`). Key material
//! arrives here already shaped by the JWKS loader: RSA as modulus and exponent, EC as an
//! uncompressed SEC1 point, Ed25519 as the 32-byte public key, HMAC as the secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::{hmac, signature as sig};

/// Why a signature did not verify; callers fold every case into "bad signature".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("signature is not base64url")]
    BadBase64,
    #[error("key family does not match algorithm {alg:?}")]
    KeyMismatch { alg: Algorithm },
    #[error("algorithm {alg:?} is not supported")]
    Unsupported { alg: Algorithm },
    #[error("signature does not verify")]
    Invalid,
}

/// Verifies `signature_b64` (base64url, no padding) over `message` with `key` under `alg`.
pub fn verify(
    signature_b64: &str,
    message: &[u8],
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<(), JwsError> {
    if key.family() != alg.family() {
        return Err(JwsError::KeyMismatch { alg });
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwsError::BadBase64)?;
    match (key.kind(), alg.family()) {
        (DecodingKeyKind::SecretOrDer(secret), AlgorithmFamily::Hmac) => {
            let hash = match alg {
                Algorithm::HS256 => hmac::HMAC_SHA256,
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => return Err(JwsError::Unsupported { alg }),
            };
            // Constant time, unlike comparing a recomputed tag.
            hmac::verify(&hmac::Key::new(hash, secret), message, &signature)
                .map_err(|_| JwsError::Invalid)
        }
        (DecodingKeyKind::RsaModulusExponent { n, e }, AlgorithmFamily::Rsa) => {
            sig::RsaPublicKeyComponents { n, e }
                .verify(rsa_params(alg)?, message, &signature)
                .map_err(|_| JwsError::Invalid)
        }
        (DecodingKeyKind::SecretOrDer(der), AlgorithmFamily::Rsa) => {
            // A PKCS#1 RSAPublicKey, as `DecodingKey::from_rsa_der` holds it.
            sig::UnparsedPublicKey::new(rsa_params(alg)?, der)
                .verify(message, &signature)
                .map_err(|_| JwsError::Invalid)
        }
        (DecodingKeyKind::SecretOrDer(public), AlgorithmFamily::Ec | AlgorithmFamily::Ed) => {
            let params: &'static dyn sig::VerificationAlgorithm = match alg {
                Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                Algorithm::EdDSA => &sig::ED25519,
                _ => return Err(JwsError::Unsupported { alg }),
            };
            sig::UnparsedPublicKey::new(params, public)
                .verify(message, &signature)
                .map_err(|_| JwsError::Invalid)
        }
        _ => Err(JwsError::KeyMismatch { alg }),
    }
}

/// RSA verification parameters: 2048-bit moduli at least, as RFC 7518 §3.3 requires.
fn rsa_params(alg: Algorithm) -> Result<&'static sig::RsaParameters, JwsError> {
    Ok(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return Err(JwsError::Unsupported { alg }),
    })
}
