//! The client side of MySQL/MariaDB authentication plugins: what a client
//! sends for a password and the server's nonce.
//!
//! - `mysql_native_password`: SHA1(pw) XOR SHA1(nonce ‖ SHA1(SHA1(pw))).
//! - `caching_sha2_password`, fast path: SHA256(pw) XOR
//!   SHA256(SHA256(SHA256(pw)) ‖ nonce); full path: the password and a NUL,
//!   in clear, which this codec only sends over TLS. The other full path
//!   (RSA-OAEP with the server's public key) is refused: ring has no RSA
//!   encryption and the RustCrypto `rsa` crate is banned (deny.toml).
//! - MariaDB `client_ed25519`: an Ed25519 signature of the nonce whose
//!   secret is SHA-512(password) (RFC 8032's key expansion applied to the
//!   password itself rather than to a 32-byte seed). ring signs only from a
//!   32-byte seed, so the expanded key goes through ed25519-dalek's
//!   `hazmat::raw_sign`, the crate's documented API for exactly that.
//! - `mysql_clear_password`: the password and a NUL; over TLS only.

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Signature, VerifyingKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// The plugins the login state machine can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPlugin {
    NativePassword,
    CachingSha2,
    Ed25519,
    ClearPassword,
}

impl AuthPlugin {
    pub fn from_name(name: &[u8]) -> Option<AuthPlugin> {
        Some(match name {
            b"mysql_native_password" => AuthPlugin::NativePassword,
            b"caching_sha2_password" => AuthPlugin::CachingSha2,
            b"client_ed25519" => AuthPlugin::Ed25519,
            b"mysql_clear_password" => AuthPlugin::ClearPassword,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static [u8] {
        match self {
            AuthPlugin::NativePassword => b"mysql_native_password",
            AuthPlugin::CachingSha2 => b"caching_sha2_password",
            AuthPlugin::Ed25519 => b"client_ed25519",
            AuthPlugin::ClearPassword => b"mysql_clear_password",
        }
    }

    /// Nonce bytes the plugin uses (servers may send more, e.g. a NUL).
    pub fn nonce_len(self) -> usize {
        match self {
            AuthPlugin::NativePassword | AuthPlugin::CachingSha2 => 20,
            AuthPlugin::Ed25519 => 32,
            AuthPlugin::ClearPassword => 0,
        }
    }

    /// Whether the plugin hands the password itself to the server, which
    /// is only acceptable over TLS.
    pub fn sends_cleartext(self) -> bool {
        matches!(self, AuthPlugin::ClearPassword)
    }
}

fn xor<const N: usize>(a: [u8; N], b: [u8; N]) -> [u8; N] {
    let mut out = a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

/// `mysql_native_password`'s scramble; empty for an empty password.
pub fn native_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1: [u8; 20] = Sha1::digest(password).into();
    let stage2: [u8; 20] = Sha1::digest(stage1).into();
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(stage2);
    xor(stage1, h.finalize().into()).to_vec()
}

/// `caching_sha2_password`'s fast-path scramble; empty for an empty password.
pub fn caching_sha2_fast(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1: [u8; 32] = Sha256::digest(password).into();
    let stage2: [u8; 32] = Sha256::digest(stage1).into();
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(nonce);
    xor(stage1, h.finalize().into()).to_vec()
}

/// The cleartext answer (caching_sha2's full path over TLS,
/// `mysql_clear_password`): the password and a terminating NUL.
pub fn cleartext(password: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(password.len() + 1);
    v.extend_from_slice(password);
    v.push(0);
    v
}

/// MariaDB `client_ed25519`: the 64-byte signature of `nonce`.
pub fn ed25519_sign(password: &[u8], nonce: &[u8]) -> [u8; 64] {
    let expanded: [u8; 64] = Sha512::digest(password).into();
    let key = ExpandedSecretKey::from_bytes(&expanded);
    let public = VerifyingKey::from(&key);
    let sig: Signature = raw_sign::<Sha512>(&key, nonce, &public);
    sig.to_bytes()
}

/// MariaDB's stored form of an ed25519 password: the public key, base64
/// without padding (what `PASSWORD()` returns under auth_ed25519); lets a
/// test or a rotation check compare a credential with the server's.
pub fn ed25519_public_key(password: &[u8]) -> [u8; 32] {
    let expanded: [u8; 64] = Sha512::digest(password).into();
    VerifyingKey::from(&ExpandedSecretKey::from_bytes(&expanded)).to_bytes()
}

/// The first answer a plugin gives to `nonce` (`None` if the nonce is too
/// short for the plugin). caching_sha2 answers with the fast-path scramble.
pub fn scramble(plugin: AuthPlugin, password: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
    let nonce = nonce.get(..plugin.nonce_len())?;
    Some(match plugin {
        AuthPlugin::NativePassword => native_password(password, nonce),
        AuthPlugin::CachingSha2 => caching_sha2_fast(password, nonce),
        AuthPlugin::Ed25519 => ed25519_sign(password, nonce).to_vec(),
        AuthPlugin::ClearPassword => cleartext(password),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A caching_sha2_password fast-path exchange captured from MySQL 8 and
    /// the MySQL Python connector (password "hola"), as published in
    /// Boost.MySQL's tests: nonce from the greeting, scramble the client sent.
    #[test]
    fn caching_sha2_fast_path_matches_a_captured_exchange() {
        let nonce = [
            0x3e, 0x3b, 0x04, 0x55, 0x04, 0x70, 0x16, 0x3a, 0x4c, 0x15, 0x35, 0x03, 0x15, 0x76,
            0x73, 0x22, 0x46, 0x08, 0x18, 0x01,
        ];
        let sent = [
            0xa1, 0xc1, 0xe1, 0xe9, 0x1b, 0xb6, 0x54, 0x4b, 0xa7, 0x37, 0x4b, 0x9c, 0x56, 0x6d,
            0x69, 0x3e, 0x06, 0xca, 0x07, 0x02, 0x98, 0xac, 0xd1, 0x06, 0x18, 0xc6, 0x90, 0x38,
            0x9d, 0x88, 0xe1, 0x20,
        ];
        assert_eq!(caching_sha2_fast(b"hola", &nonce), sent);
        assert_eq!(
            scramble(AuthPlugin::CachingSha2, b"hola", &nonce).unwrap(),
            sent
        );
        assert!(caching_sha2_fast(b"", &nonce).is_empty());
        assert!(scramble(AuthPlugin::CachingSha2, b"hola", &nonce[..19]).is_none());
    }

    #[test]
    fn ed25519_signature_verifies_under_the_password_public_key() {
        let nonce = [7u8; 32];
        let sig = ed25519_sign(b"secret", &nonce);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            ed25519_public_key(b"secret"),
        );
        assert!(public.verify(&nonce, &sig).is_ok());
        assert!(public.verify(&[8u8; 32], &sig).is_err());
    }

    #[test]
    fn ed25519_matches_rfc8032_when_the_password_is_a_32_byte_seed() {
        // RFC 8032 7.1 TEST 1: with a 32-byte password the MariaDB scheme is
        // plain Ed25519 with that seed, so ring (seeded) must agree.
        let seed = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let ring_key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        assert_eq!(
            ring_key.sign(b"nonce").as_ref(),
            &ed25519_sign(&seed, b"nonce")[..]
        );
    }
}
