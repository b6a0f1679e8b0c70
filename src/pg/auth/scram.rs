//! SCRAM-SHA-256 on `postgres-protocol` (SASLprep, proofs, server signature), with this
//! gateway's policy checks around it, and tls-server-end-point channel binding (RFC 5929).
//!
//! The exchange itself is `postgres_protocol::authentication::sasl::ScramSha256`, the client
//! rust-postgres ships: it normalises the password with SASLprep exactly as PostgreSQL does
//! (and uses the bytes as they are when they are not valid SASLprep, as PostgreSQL does).
//! What stays here is what that crate does not decide for us: the configurable PBKDF2
//! iteration cap (checked before any PBKDF2 runs), a nonce the server must extend, a
//! non-empty salt, a non-zero iteration count, and typed errors for the log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use postgres_protocol::authentication::sasl::{self, ScramSha256};
use ring::digest;

use super::AuthError;

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

/// How a SCRAM exchange binds to the channel (the gs2 header it sends).
pub(super) enum Binding {
    /// `n,,`: no TLS certificate to bind to.
    Unsupported,
    /// `y,,`: we could bind, the server did not offer -PLUS.
    Unrequested,
    /// `p=tls-server-end-point,,` with the server certificate's hash.
    TlsServerEndPoint(Vec<u8>),
}

/// The client side of one SCRAM-SHA-256 exchange, without I/O.
pub(super) struct ScramClient {
    inner: ScramSha256,
    /// The nonce we sent, read back from client-first-message: the server must extend it.
    nonce: String,
}

impl ScramClient {
    pub(super) fn new(password: &[u8], binding: Binding) -> Self {
        let binding = match binding {
            Binding::Unsupported => sasl::ChannelBinding::unsupported(),
            Binding::Unrequested => sasl::ChannelBinding::unrequested(),
            Binding::TlsServerEndPoint(hash) => sasl::ChannelBinding::tls_server_end_point(hash),
        };
        let inner = ScramSha256::new(password, binding);
        // client-first-message is `<gs2 header>n=,r=<nonce>`; the nonce holds no comma.
        let nonce = std::str::from_utf8(inner.message())
            .ok()
            .and_then(|first| first.rsplit_once(",r="))
            .map(|(_, n)| n.to_owned())
            .unwrap_or_default();
        ScramClient { inner, nonce }
    }

    /// client-first-message, for SASLInitialResponse.
    pub(super) fn client_first(&self) -> Vec<u8> {
        self.inner.message().to_vec()
    }

    /// Answers server-first-message with client-final-message.
    pub(super) fn client_final(
        &mut self,
        server_first: &[u8],
        max_iterations: u32,
    ) -> Result<Vec<u8>, AuthError> {
        check_server_first(server_first, &self.nonce, max_iterations)?;
        self.inner
            .update(server_first)
            .map_err(|e| AuthError::ScramRejected {
                reason: e.to_string(),
            })?;
        Ok(self.inner.message().to_vec())
    }

    /// Checks server-final-message: the server proves it holds our verifier.
    pub(super) fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), AuthError> {
        let bad = |what| AuthError::MalformedScram { what };
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
        B64.decode(sig)
            .map_err(|_| bad("server signature is not base64"))?;
        // Well formed, so the only way left for the crate to refuse is a wrong signature.
        self.inner
            .finish(server_final)
            .map_err(|_| AuthError::ServerSignatureMismatch)
    }
}

/// Policy checks on server-first-message before the crate runs PBKDF2 on it: the
/// iteration count is the upstream's to choose, and PBKDF2 runs on a shard's thread.
fn check_server_first(msg: &[u8], our_nonce: &str, max: u32) -> Result<(), AuthError> {
    let bad = |what| AuthError::MalformedScram { what };
    let msg = std::str::from_utf8(msg).map_err(|_| bad("server-first-message is not UTF-8"))?;
    let mut attrs = msg.split(',');
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
    // The server must add its own part: a nonce equal to ours would let a replayed
    // exchange through, which the crate alone does not refuse.
    if our_nonce.is_empty() || nonce.len() <= our_nonce.len() || !nonce.starts_with(our_nonce) {
        return Err(AuthError::NonceMismatch);
    }
    let salt = B64.decode(salt).map_err(|_| bad("salt is not base64"))?;
    if salt.is_empty() {
        return Err(bad("empty salt"));
    }
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| bad("iteration count is not a number"))?;
    if iterations == 0 {
        return Err(bad("iteration count is zero"));
    }
    if iterations > max {
        return Err(AuthError::TooManyIterations { iterations, max });
    }
    Ok(())
}
