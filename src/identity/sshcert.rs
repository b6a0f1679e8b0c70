//! SSH caller identities (`[identity.ssh]`): OpenSSH user certificates
//! signed by a configured CA, and plain public keys listed for a subject.
//!
//! A certificate is an identity when its CA key is one of `ca_keys`, its
//! signature verifies, it is a user certificate, `now` lies in its validity
//! window (`valid_after <= now < valid_before`, no clock skew allowance:
//! russh refuses a certificate outside it before tollgate sees it, logging
//! "Certificate is expired or not yet valid"; the check here is the second
//! line), it carries no critical option (tollgate does
//! not enforce `force-command` or `source-address`, so it refuses what it
//! cannot honour) and it names at least one principal. The first principal
//! is the subject; groups are the comma list in the `groups_extension`
//! extension (`groups@tollgate` by default); the key id is the identity's
//! token id (so the revocation list can revoke one certificate) and the
//! issuer is `ssh-ca SHA256:...` (the CA key's fingerprint).
//!
//! A plain key is an identity only when `[[identity.ssh.key]]` lists it;
//! its subject and groups are the entry's, its issuer `ssh-key`. A key in
//! `revoked_keys` is neither, whatever certificate or listing it has.
//!
//! russh has already checked that the caller holds the key's private half.

use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey};
use serde::Deserialize;

use crate::identity::config::IdentityConfigError;
use crate::identity::jwt::AuthError;
use crate::identity::{Identity, IdentitySource};

/// Longest subject, group or key id taken from a certificate.
const MAX_NAME: usize = 256;
/// Most groups taken from a certificate's groups extension.
const MAX_GROUPS: usize = 64;
/// Most CA keys and listed keys (a config, not a key store).
const MAX_KEYS: usize = 10_000;

/// `[identity.ssh]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SshIdentityConfig {
    /// Trusted user CA public keys (`"ssh-ed25519 AAAA... comment"`); several during a rotation.
    #[serde(default)]
    pub ca_keys: Vec<String>,
    /// The certificate extension whose value is the comma-separated group list.
    #[serde(default = "default_groups_extension")]
    pub groups_extension: String,
    /// `[[identity.ssh.key]]`: plain public keys listed for a subject.
    #[serde(default, rename = "key")]
    pub keys: Vec<SshKeyConfig>,
    /// Public keys refused whatever vouches for them: a leaked key whose
    /// certificate is still valid, a listed key being withdrawn.
    #[serde(default)]
    pub revoked_keys: Vec<String>,
}

/// `[[identity.ssh.key]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SshKeyConfig {
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Public key lines (`"ssh-ed25519 AAAA... comment"`).
    pub keys: Vec<String>,
}

fn default_groups_extension() -> String {
    "groups@tollgate".to_owned()
}

/// `[identity.ssh]`, parsed.
#[derive(Debug)]
pub struct SshTrust {
    cas: Vec<KeyData>,
    groups_extension: String,
    /// Each listed key and the index of its entry in `subjects`.
    keys: Vec<(KeyData, usize)>,
    subjects: Vec<(String, Vec<String>)>,
    revoked: Vec<KeyData>,
}

/// A public key line's key (`algorithm base64 [comment]`).
fn parse_key_line(line: &str) -> Result<KeyData, String> {
    let b64 = line
        .split_ascii_whitespace()
        .nth(1)
        .ok_or_else(|| format!("{line:?} is not a public key line (\"ssh-ed25519 AAAA...\")"))?;
    let key = russh::keys::parse_public_key_base64(b64)
        .map_err(|e| format!("{line:?} is not a public key line: {e}"))?;
    // russh verifies ed25519 and ECDSA only (its RSA needs the banned `rsa` crate).
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => Ok(key.key_data().clone()),
        other => Err(format!(
            "{other} keys are not supported: use ed25519 or ECDSA"
        )),
    }
}

fn fingerprint(k: &KeyData) -> String {
    k.fingerprint(HashAlg::Sha256).to_string()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn capped(s: &str) -> Result<&str, AuthError> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(AuthError::BadCertificate {
            reason: format!("a name of {} bytes (1-{MAX_NAME} allowed)", s.len()),
        });
    }
    Ok(s)
}

impl SshTrust {
    /// Parse and check `[identity.ssh]`.
    pub fn build(cfg: &SshIdentityConfig) -> Result<SshTrust, IdentityConfigError> {
        let err = |f: &str, why: String| IdentityConfigError::new(format!("identity.ssh.{f}"), why);
        if cfg.ca_keys.len() > MAX_KEYS {
            return Err(err("ca_keys", format!("at most {MAX_KEYS}")));
        }
        let mut cas = Vec::with_capacity(cfg.ca_keys.len());
        for line in &cfg.ca_keys {
            cas.push(parse_key_line(line).map_err(|e| err("ca_keys", e))?);
        }
        if cfg.groups_extension.is_empty() {
            return Err(err("groups_extension", "must not be empty".into()));
        }
        if cfg.revoked_keys.len() > MAX_KEYS {
            return Err(err("revoked_keys", format!("at most {MAX_KEYS}")));
        }
        let mut revoked = Vec::with_capacity(cfg.revoked_keys.len());
        for line in &cfg.revoked_keys {
            revoked.push(parse_key_line(line).map_err(|e| err("revoked_keys", e))?);
        }
        let mut keys: Vec<(KeyData, usize)> = Vec::new();
        let mut subjects = Vec::with_capacity(cfg.keys.len());
        for (i, entry) in cfg.keys.iter().enumerate() {
            let at = |f: &str| format!("key[{i}].{f}");
            if entry.subject.is_empty() || entry.subject.len() > MAX_NAME {
                return Err(err(&at("subject"), format!("1-{MAX_NAME} bytes")));
            }
            if entry.groups.iter().any(String::is_empty) {
                return Err(err(&at("groups"), "empty group name".into()));
            }
            if entry.keys.is_empty() {
                return Err(err(&at("keys"), "list at least one public key".into()));
            }
            for line in &entry.keys {
                let k = parse_key_line(line).map_err(|e| err(&at("keys"), e))?;
                if cas.contains(&k) {
                    return Err(err(&at("keys"), format!("{line:?} is also a CA key")));
                }
                if let Some((_, j)) = keys.iter().find(|(known, _)| *known == k) {
                    return Err(err(
                        &at("keys"),
                        format!("{line:?} is already listed for {:?}", cfg.keys[*j].subject),
                    ));
                }
                keys.push((k, i));
                if keys.len() > MAX_KEYS {
                    return Err(err("key", format!("at most {MAX_KEYS} keys")));
                }
            }
            subjects.push((entry.subject.clone(), entry.groups.clone()));
        }
        Ok(SshTrust {
            cas,
            groups_extension: cfg.groups_extension.clone(),
            keys,
            subjects,
            revoked,
        })
    }

    /// Whether any CA is trusted (then every offered key may be a certificate's).
    pub fn has_cas(&self) -> bool {
        !self.cas.is_empty()
    }

    /// Whether `key` is listed for a subject.
    pub fn lists(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|(k, _)| k == key.key_data())
    }

    /// Whether `cert` names a trusted CA (its signature and the rest are
    /// checked by [`Self::identity_from_certificate`]).
    pub fn names_trusted_ca(&self, cert: &Certificate) -> bool {
        self.cas.contains(cert.signature_key())
    }

    fn not_revoked(&self, key: &KeyData) -> Result<(), AuthError> {
        if self.revoked.contains(key) {
            return Err(AuthError::BadCertificate {
                reason: format!("ssh key {} is in revoked_keys", fingerprint(key)),
            });
        }
        Ok(())
    }

    /// The identity of a listed plain key.
    pub fn identity_from_key(&self, key: &PublicKey) -> Result<Identity, AuthError> {
        self.not_revoked(key.key_data())?;
        let (_, i) = self
            .keys
            .iter()
            .find(|(k, _)| k == key.key_data())
            .ok_or_else(|| AuthError::BadCertificate {
                reason: format!(
                    "ssh key {} is not listed in [identity.ssh]",
                    fingerprint(key.key_data())
                ),
            })?;
        let (subject, groups) = self
            .subjects
            .get(*i)
            .ok_or_else(|| AuthError::BadCertificate {
                reason: "listed key without a subject".into(),
            })?;
        Ok(Identity {
            subject: subject.clone(),
            issuer: "ssh-key".into(),
            groups: groups.clone(),
            token_id: None,
            expires_at: None,
            source: IdentitySource::Certificate,
        })
    }

    /// The identity of an OpenSSH user certificate (see the module's
    /// comment for each check).
    pub fn identity_from_certificate(
        &self,
        cert: &Certificate,
        now: SystemTime,
    ) -> Result<Identity, AuthError> {
        let bad = |reason: String| AuthError::BadCertificate { reason };
        let ca = cert.signature_key();
        if !self.cas.contains(ca) {
            return Err(bad(format!(
                "ssh certificate signed by {}, not a trusted CA",
                fingerprint(ca)
            )));
        }
        cert.verify_signature()
            .map_err(|_| AuthError::BadSignature)?;
        self.not_revoked(cert.public_key())?;
        if cert.cert_type() != CertType::User {
            return Err(bad("a host certificate, not a user certificate".into()));
        }
        let now_s = unix(now);
        if now_s < cert.valid_after() {
            return Err(bad(format!(
                "ssh certificate not valid before {} (now {now_s})",
                cert.valid_after()
            )));
        }
        if now_s >= cert.valid_before() {
            return Err(bad(format!(
                "ssh certificate expired at {} (now {now_s})",
                cert.valid_before()
            )));
        }
        if let Some(name) = cert.critical_options().keys().next() {
            let name: String = name.chars().take(64).collect();
            return Err(bad(format!(
                "ssh certificate has critical option {name:?}, which tollgate does not enforce"
            )));
        }
        let subject = cert
            .valid_principals()
            .first()
            .ok_or_else(|| bad("ssh certificate names no principal".into()))?;
        let subject = capped(subject)?.to_string();
        let mut groups = Vec::new();
        if let Some(list) = cert.extensions().get(&self.groups_extension) {
            for g in list.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                if groups.len() == MAX_GROUPS {
                    return Err(bad(format!("more than {MAX_GROUPS} groups")));
                }
                groups.push(capped(g)?.to_string());
            }
        }
        let token_id = match cert.key_id() {
            "" => None,
            id => Some(capped(id)?.to_string()),
        };
        Ok(Identity {
            subject,
            issuer: format!("ssh-ca {}", fingerprint(ca)),
            groups,
            token_id,
            expires_at: cert.valid_before_time(),
            source: IdentitySource::Certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    fn keygen(dir: &Path, name: &str) -> String {
        let path = dir.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `ssh-keygen -s ca ...` over `user`'s public key; the certificate.
    fn sign(dir: &Path, ca: &str, user: &str, args: &[&str]) -> Certificate {
        let out = Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(dir.join(ca))
            .args(args)
            .arg(dir.join(format!("{user}.pub")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.join(format!("{user}-cert.pub"))).unwrap();
        Certificate::from_openssh(text.trim()).unwrap()
    }

    fn trust(ca: &str) -> SshTrust {
        SshTrust::build(&SshIdentityConfig {
            ca_keys: vec![ca.to_string()],
            groups_extension: default_groups_extension(),
            keys: Vec::new(),
            revoked_keys: Vec::new(),
        })
        .unwrap()
    }

    fn reason(r: Result<Identity, AuthError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn user_certificates_are_checked_before_they_name_anyone() {
        let d = tempfile::tempdir().unwrap();
        let ca = keygen(d.path(), "ca");
        let _ = keygen(d.path(), "rogue");
        let _ = keygen(d.path(), "alice");
        let t = trust(&ca);
        let now = SystemTime::now();
        let ok = sign(
            d.path(),
            "ca",
            "alice",
            &[
                "-I",
                "ticket-42",
                "-n",
                "alice,backup",
                "-V",
                "-5m:+5m",
                "-O",
                "extension:groups@tollgate=ops, ci",
            ],
        );
        let id = t.identity_from_certificate(&ok, now).unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.groups, ["ops", "ci"]);
        assert_eq!(id.token_id.as_deref(), Some("ticket-42"));
        assert!(id.issuer.starts_with("ssh-ca SHA256:"), "{}", id.issuer);
        assert!(t.names_trusted_ca(&ok));
        // valid_after <= now < valid_before.
        let before = UNIX_EPOCH + Duration::from_secs(ok.valid_before());
        assert!(
            t.identity_from_certificate(&ok, before - Duration::from_secs(1))
                .is_ok()
        );
        let e = reason(t.identity_from_certificate(&ok, before));
        assert!(e.contains("expired"), "{e}");
        let after = UNIX_EPOCH + Duration::from_secs(ok.valid_after());
        assert!(t.identity_from_certificate(&ok, after).is_ok());
        let e = reason(t.identity_from_certificate(&ok, after - Duration::from_secs(1)));
        assert!(e.contains("not valid before"), "{e}");
        // Another CA.
        let rogue = sign(d.path(), "rogue", "alice", &["-I", "x", "-n", "alice"]);
        assert!(!t.names_trusted_ca(&rogue));
        let e = reason(t.identity_from_certificate(&rogue, now));
        assert!(e.contains("not a trusted CA"), "{e}");
        // A host certificate from the right CA.
        let host = sign(d.path(), "ca", "alice", &["-h", "-I", "x", "-n", "alice"]);
        let e = reason(t.identity_from_certificate(&host, now));
        assert!(e.contains("host certificate"), "{e}");
        // No principal: OpenSSH reads it as "anyone"; tollgate has no subject.
        let anyone = sign(d.path(), "ca", "alice", &["-I", "x"]);
        let e = reason(t.identity_from_certificate(&anyone, now));
        assert!(e.contains("no principal"), "{e}");
        // A restriction tollgate would not enforce.
        let restricted = sign(
            d.path(),
            "ca",
            "alice",
            &["-I", "x", "-n", "alice", "-O", "source-address=10.0.0.0/8"],
        );
        let e = reason(t.identity_from_certificate(&restricted, now));
        assert!(e.contains("critical option \"source-address\""), "{e}");
    }

    #[test]
    fn a_revoked_key_is_refused_with_a_valid_certificate_and_when_listed() {
        let d = tempfile::tempdir().unwrap();
        let ca = keygen(d.path(), "ca");
        let leaked = keygen(d.path(), "leaked");
        let t = SshTrust::build(&SshIdentityConfig {
            ca_keys: vec![ca],
            groups_extension: default_groups_extension(),
            keys: vec![SshKeyConfig {
                subject: "ci".into(),
                groups: Vec::new(),
                keys: vec![leaked.clone()],
            }],
            revoked_keys: vec![leaked.clone()],
        })
        .unwrap();
        let cert = sign(d.path(), "ca", "leaked", &["-I", "x", "-n", "alice"]);
        let e = reason(t.identity_from_certificate(&cert, SystemTime::now()));
        assert!(e.contains("revoked_keys"), "{e}");
        let e = reason(t.identity_from_key(&PublicKey::from_openssh(&leaked).unwrap()));
        assert!(e.contains("revoked_keys"), "{e}");
    }

    #[test]
    fn a_certificate_whose_signature_was_altered_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let ca = keygen(d.path(), "ca");
        let _ = keygen(d.path(), "alice");
        let t = trust(&ca);
        let cert = sign(d.path(), "ca", "alice", &["-I", "x", "-n", "alice"]);
        // Re-encode with another principal: the CA's signature no longer covers it.
        let text = cert.to_openssh().unwrap();
        let b64 = text.split_whitespace().nth(1).unwrap();
        use base64::Engine;
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let at = raw
            .windows(5)
            .position(|w| w == b"alice")
            .expect("principal in the encoding");
        raw[at] = b'm';
        let forged = Certificate::from_bytes(&raw).unwrap();
        assert_eq!(forged.valid_principals()[0], "mlice");
        let e = reason(t.identity_from_certificate(&forged, SystemTime::now()));
        assert!(e.contains("signature"), "{e}");
    }

    #[test]
    fn plain_keys_name_their_listed_subject_only() {
        let d = tempfile::tempdir().unwrap();
        let listed = keygen(d.path(), "listed");
        let other = keygen(d.path(), "other");
        let t = SshTrust::build(&SshIdentityConfig {
            ca_keys: Vec::new(),
            groups_extension: default_groups_extension(),
            keys: vec![SshKeyConfig {
                subject: "ci-deploy".into(),
                groups: vec!["ci".into()],
                keys: vec![listed.clone()],
            }],
            revoked_keys: Vec::new(),
        })
        .unwrap();
        let k = |line: &str| PublicKey::from_openssh(line).unwrap();
        assert!(!t.has_cas());
        assert!(t.lists(&k(&listed)));
        assert!(!t.lists(&k(&other)));
        let id = t.identity_from_key(&k(&listed)).unwrap();
        assert_eq!(
            (id.subject.as_str(), id.groups.as_slice()),
            ("ci-deploy", &["ci".to_string()][..])
        );
        let e = reason(t.identity_from_key(&k(&other)));
        assert!(e.contains("not listed"), "{e}");
        // A key listed twice, a bad line.
        let twice = SshIdentityConfig {
            ca_keys: Vec::new(),
            groups_extension: default_groups_extension(),
            keys: vec![
                SshKeyConfig {
                    subject: "a".into(),
                    groups: Vec::new(),
                    keys: vec![listed.clone()],
                },
                SshKeyConfig {
                    subject: "b".into(),
                    groups: Vec::new(),
                    keys: vec![listed],
                },
            ],
            revoked_keys: Vec::new(),
        };
        let e = SshTrust::build(&twice).unwrap_err().to_string();
        assert!(e.contains("already listed for \"a\""), "{e}");
        let bad = SshIdentityConfig {
            ca_keys: vec!["ssh-ed25519 notbase64".into()],
            groups_extension: default_groups_extension(),
            keys: Vec::new(),
            revoked_keys: Vec::new(),
        };
        let e = SshTrust::build(&bad).unwrap_err().to_string();
        assert!(e.contains("identity.ssh.ca_keys"), "{e}");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
            .arg(d.path().join("rsa"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let rsa = std::fs::read_to_string(d.path().join("rsa.pub")).unwrap();
        let bad = SshIdentityConfig {
            ca_keys: vec![rsa.trim().to_string()],
            groups_extension: default_groups_extension(),
            keys: Vec::new(),
            revoked_keys: Vec::new(),
        };
        let e = SshTrust::build(&bad).unwrap_err().to_string();
        assert!(e.contains("ssh-rsa keys are not supported"), "{e}");
    }
}
