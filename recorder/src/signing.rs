//! Ed25519 keys for sealing segments: generation, loading, signing, checking.

use std::path::Path;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::RecorderError;

/// Writes a new PKCS#8 (DER) private key to `private_path` and its public
/// key, base64 on one line, to `public_path`. Returns the raw public key.
pub fn keygen(private_path: &Path, public_path: &Path) -> Result<Vec<u8>, RecorderError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| RecorderError::Key {
        path: private_path.to_path_buf(),
        detail: "key generation failed".into(),
    })?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| RecorderError::Key {
        path: private_path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_private(private_path, pkcs8.as_ref())?;
    let public = pair.public_key().as_ref().to_vec();
    let text = format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(&public)
    );
    std::fs::write(public_path, text)
        .map_err(RecorderError::io("write public key", public_path))?;
    Ok(public)
}

fn write_private(path: &Path, der: &[u8]) -> Result<(), RecorderError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(RecorderError::io("create private key", path))?;
    f.write_all(der)
        .and_then(|_| f.sync_all())
        .map_err(RecorderError::io("write private key", path))
}

/// Strips PEM armour if present, else returns the bytes as they are.
fn unarmour(data: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(data) else {
        return data.to_vec();
    };
    if !text.trim_start().starts_with("-----BEGIN") {
        return data.to_vec();
    }
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|_| data.to_vec())
}

/// Loads a PKCS#8 Ed25519 private key (DER or PEM).
pub fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair, RecorderError> {
    let data = std::fs::read(path).map_err(RecorderError::io("read signing key", path))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&unarmour(&data)).map_err(|e| RecorderError::Key {
        path: path.to_path_buf(),
        detail: format!("not an Ed25519 PKCS#8 key: {e}"),
    })
}

/// Loads a public key: 32 raw bytes, or base64 text of them.
pub fn load_public_key(path: &Path) -> Result<Vec<u8>, RecorderError> {
    let data = std::fs::read(path).map_err(RecorderError::io("read public key", path))?;
    if data.len() == 32 {
        return Ok(data);
    }
    let text = String::from_utf8_lossy(&data);
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(k) if k.len() == 32 => Ok(k),
        _ => Err(RecorderError::Key {
            path: path.to_path_buf(),
            detail: "expected 32 raw bytes or their base64".into(),
        }),
    }
}

/// Signs `message`.
pub(crate) fn sign(key: &Ed25519KeyPair, message: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(key.sign(message).as_ref());
    out
}

/// True when `signature` is `public_key`'s signature of `message`.
pub(crate) fn signature_valid(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_keys_sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k"), dir.path().join("k.pub"));
        let raw = keygen(&private, &public).unwrap();
        assert_eq!(load_public_key(&public).unwrap(), raw);
        let key = load_signing_key(&private).unwrap();
        let sig = sign(&key, b"chain head");
        assert!(signature_valid(&raw, b"chain head", &sig));
        assert!(!signature_valid(&raw, b"chain heaD", &sig));
        assert!(
            keygen(&private, &public).is_err(),
            "keygen must not overwrite a key"
        );
    }
}
