//! SCRAM-SHA-256 client computations (RFC 5802/7677) and tls-server-end-point channel binding (RFC 5929).

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::{AuthError, wipe};

/// libpq's nonce size (18 random bytes, 24 base64 characters).
const NONCE_BYTES: usize = 18;

/// The `tls-server-end-point` binding of a server certificate (RFC 5929 §4.1):
/// its DER hashed with the hash of its signature algorithm, SHA-256 when that
/// is MD5 or SHA-1. Certificates signed without a hash (Ed25519) have no binding.
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, AuthError> {
    use x509_parser::signature_algorithm::SignatureAlgorithm;

    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| AuthError::Certificate {
            what: format!("not a DER certificate: {e}"),
        })?;
    let alg = &cert.signature_algorithm;
    let oid = match SignatureAlgorithm::try_from(alg) {
        Ok(SignatureAlgorithm::RSASSA_PSS(params)) => params.hash_algorithm_oid().to_id_string(),
        _ => alg.algorithm.to_id_string(),
    };
    let hash = match oid.as_str() {
        // md5/sha1/sha256 with RSA, ECDSA with SHA-1/SHA-256, DSA with SHA-1/SHA-256,
        // and the bare hash OIDs a PSS signature names.
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10040.4.3"
        | "2.16.840.1.101.3.4.3.2"
        | "1.3.14.3.2.26"
        | "2.16.840.1.101.3.4.2.1" => &digest::SHA256,
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" | "2.16.840.1.101.3.4.2.2" => {
            &digest::SHA384
        }
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" | "2.16.840.1.101.3.4.2.3" => {
            &digest::SHA512
        }
        other => {
            return Err(AuthError::Certificate {
                what: format!("signature algorithm {other} has no binding hash"),
            });
        }
    };
    Ok(digest::digest(hash, cert_der).as_ref().to_vec())
}

/// SCRAM keys derived from the password, salt and iteration count. PBKDF2 is
/// the expensive part of a login and a role's salt changes only when its
/// password does, so the session may keep these next to the [`Password`]
/// they came from (and drop them with it) to skip PBKDF2 on later logins.
/// As sensitive as the password: `Debug` hides them, drop wipes them.
#[derive(Clone)]
pub struct ScramKeys {
    pub(super) salt: Vec<u8>,
    pub(super) iterations: u32,
    pub(super) client_key: [u8; 32],
    pub(super) server_key: [u8; 32],
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScramKeys {{ iterations: {}, .. }}", self.iterations)
    }
}

impl Drop for ScramKeys {
    fn drop(&mut self) {
        wipe(&mut self.client_key);
        wipe(&mut self.server_key);
    }
}

impl ScramKeys {
    pub(super) fn derive(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            password,
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        wipe(&mut salted);
        let mut keys = ScramKeys {
            salt: salt.to_vec(),
            iterations: iterations.get(),
            client_key: [0; 32],
            server_key: [0; 32],
        };
        keys.client_key
            .copy_from_slice(hmac::sign(&key, b"Client Key").as_ref());
        keys.server_key
            .copy_from_slice(hmac::sign(&key, b"Server Key").as_ref());
        keys
    }
}

/// The client side of one SCRAM-SHA-256 exchange (RFC 5802 §3), without I/O.
pub(super) struct ScramClient {
    pub(super) gs2_header: &'static str,
    /// Bytes after the gs2 header in the `c=` attribute (the certificate hash for -PLUS).
    pub(super) cbind_data: Vec<u8>,
    pub(super) client_first_bare: String,
    pub(super) nonce: String,
    /// AuthMessage and ServerKey, kept between client-final and server-final.
    pub(super) pending: Option<(String, [u8; 32])>,
}

impl ScramClient {
    pub(super) fn new(
        gs2_header: &'static str,
        cbind_data: Vec<u8>,
        user: &str,
        nonce: String,
    ) -> Self {
        let client_first_bare = format!("n={user},r={nonce}");
        ScramClient {
            gs2_header,
            cbind_data,
            client_first_bare,
            nonce,
            pending: None,
        }
    }

    pub(super) fn client_first(&self) -> String {
        format!("{}{}", self.gs2_header, self.client_first_bare)
    }

    /// Answers server-first-message with client-final-message.
    pub(super) fn client_final(
        &mut self,
        server_first: &[u8],
        password: &[u8],
        max_iterations: u32,
        cache: &mut Option<ScramKeys>,
    ) -> Result<String, AuthError> {
        let bad = |what| AuthError::MalformedScram { what };
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| bad("server-first-message is not UTF-8"))?;
        let mut attrs = server_first.split(',');
        let mut attr = |name: &'static str, what: &'static str| {
            attrs
                .next()
                .and_then(|a| a.strip_prefix(name))
                .ok_or(bad(what))
        };
        let nonce = attr("r=", "server-first-message has no nonce")?;
        let salt = attr("s=", "server-first-message has no salt")?;
        let iterations = attr("i=", "server-first-message has no iteration count")?;
        if attrs.next().is_some() {
            return Err(bad("garbage at the end of server-first-message"));
        }
        if nonce.len() <= self.nonce.len()
            || !nonce.starts_with(&self.nonce)
            || !nonce.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AuthError::NonceMismatch);
        }
        let salt = B64.decode(salt).map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() {
            return Err(bad("empty salt"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations > max_iterations {
            return Err(AuthError::TooManyIterations {
                iterations,
                max: max_iterations,
            });
        }
        let iterations = NonZeroU32::new(iterations).ok_or(bad("iteration count is zero"))?;

        let keys = match cache.take() {
            Some(k) if k.salt == salt && k.iterations == iterations.get() => k,
            _ => ScramKeys::derive(password, &salt, iterations),
        };
        let mut cbind = self.gs2_header.as_bytes().to_vec();
        cbind.extend_from_slice(&self.cbind_data);
        let without_proof = format!("c={},r={nonce}", B64.encode(&cbind));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);

        let stored_key = digest::digest(&digest::SHA256, &keys.client_key);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let mut proof = keys.client_key;
        proof
            .iter_mut()
            .zip(signature.as_ref())
            .for_each(|(p, s)| *p ^= s);
        let client_final = format!("{without_proof},p={}", B64.encode(proof));
        wipe(&mut proof);

        self.pending = Some((auth_message, keys.server_key));
        *cache = Some(keys);
        Ok(client_final)
    }

    /// Checks server-final-message: the server proves it holds our verifier.
    pub(super) fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), AuthError> {
        let bad = |what| AuthError::MalformedScram { what };
        let (auth_message, server_key) = self
            .pending
            .take()
            .ok_or(bad("server-final-message out of order"))?;
        if let Some(e) = server_final.strip_prefix(b"e=") {
            let message = String::from_utf8_lossy(e)
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            return Err(AuthError::ServerError { message });
        }
        let sig = server_final
            .strip_prefix(b"v=")
            .ok_or(bad("server-final-message has no verifier"))?;
        if sig.contains(&b',') {
            return Err(bad("garbage at the end of server-final-message"));
        }
        let sig = B64
            .decode(sig)
            .map_err(|_| bad("server signature is not base64"))?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &server_key);
        hmac::verify(&key, auth_message.as_bytes(), &sig)
            .map_err(|_| AuthError::ServerSignatureMismatch)
    }
}

pub(super) fn new_nonce() -> Result<String, AuthError> {
    let mut raw = [0u8; NONCE_BYTES];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| AuthError::Random)?;
    Ok(B64.encode(raw))
}
