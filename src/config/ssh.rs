//! `[target.ssh]`: the keys only an SSH target has, and what an ssh target
//! requires of the keys every target shares.
//!
//! - `host_key`: the gateway's own host key (OpenSSH private key file) that
//!   callers see.
//! - The upstream login: `private_key_file` with `user` (the key is re-read
//!   per login, so rotation needs no restart), or `[target.credential]`
//!   (`user` + `password_file`/`password_env`) for a password login.
//! - `upstream_host_key`: the upstream's host key(s), pinned
//!   (`"ssh-ed25519 AAAA..."`), and/or `upstream_known_hosts`: an OpenSSH
//!   known_hosts file (its entries for the upstream's host and port, read at
//!   each login); any other key is refused. Never trusted on first use.
//! - `rules`: globs on the whole `exec` command line, first match wins.
//! - `sftp_rules`, `sftp_default_action`, `record_sftp_file_bytes`: the
//!   sftp subsystem judged by path (`ssh_sftp.rs`).

use std::path::PathBuf;

use serde::Deserialize;

use super::http::RuleAction;
use super::raw::RawTarget;
use super::target::TargetCheck;
use super::{ConfigError, TargetConfig};

pub(super) const CALLERS_BY_CERTIFICATE: bool = false;

/// One pinned key or several (during a host key rotation).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[target.ssh]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    host_key: Option<PathBuf>,
    user: Option<String>,
    private_key_file: Option<PathBuf>,
    upstream_host_key: Option<OneOrMany>,
    upstream_known_hosts: Option<PathBuf>,
    /// `allow` (default) or `deny`: interactive shells.
    shell: Option<ShellMode>,
    /// Bytes recorded per channel and direction; default 65536.
    record_channel_bytes: Option<usize>,
    #[serde(default)]
    rules: Vec<RawRule>,
    default_action: Option<RuleAction>,
    #[serde(default)]
    sftp_rules: Vec<super::ssh_sftp::RawSftpRule>,
    sftp_default_action: Option<RuleAction>,
    record_sftp_file_bytes: Option<usize>,
    /// Terminal sessions and forwarding (`ssh_session.rs`).
    record_pty_bytes: Option<u64>,
    typed_lines: Option<super::ssh_session::TypedLines>,
    #[serde(default)]
    allow_forwarding: Vec<String>,
    permit_open: Option<Vec<String>>,
    permit_streamlocal: Option<Vec<String>>,
    secret_prompts: Option<Vec<String>>,
}

/// Whether callers may open an interactive shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellMode {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    /// Glob on the whole command line (`*` matches anything, `/` included).
    command: String,
    action: RuleAction,
    /// What a blocked caller reads on stderr; default `blocked by rule NAME`.
    message: Option<String>,
}

/// A validated exec rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshRule {
    pub name: String,
    pub command: String,
    pub action: RuleAction,
    pub message: String,
}

/// How the gateway logs in upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamLogin {
    /// `private_key_file` with `user`.
    Key { user: String, file: PathBuf },
    /// `[target.credential]` (user and password source).
    Password,
}

/// A validated `[target.ssh]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host_key: PathBuf,
    pub login: UpstreamLogin,
    /// `algorithm base64` of each pinned key.
    pub upstream_host_keys: Vec<String>,
    /// An OpenSSH known_hosts file, read at each login.
    pub upstream_known_hosts: Option<PathBuf>,
    pub shell: ShellMode,
    pub record_channel_bytes: usize,
    pub rules: Vec<SshRule>,
    pub default_action: RuleAction,
    pub sftp: super::ssh_sftp::SftpConfig,
    pub terminal: super::ssh_session::SshTerminal,
    pub forwarding: super::ssh_session::SshForwarding,
}

/// Most bytes a recording may keep per channel and direction.
const MAX_RECORD_CHANNEL: usize = 64 << 20;

/// Checks `[target.ssh]`; the error names the field.
pub(super) fn validate(
    raw: Option<RawSsh>,
    has_credential: bool,
) -> Result<SshTarget, (&'static str, String)> {
    let raw = raw.ok_or(("ssh", "an ssh target needs [target.ssh]".to_string()))?;
    let host_key = raw.host_key.ok_or((
        "ssh.host_key",
        "the gateway's host key file is required".to_string(),
    ))?;
    let login = match (raw.private_key_file, raw.user, has_credential) {
        (Some(file), Some(user), false) if !user.is_empty() => UpstreamLogin::Key { user, file },
        (None, None, true) => UpstreamLogin::Password,
        _ => {
            return Err((
                "ssh.private_key_file",
                "log in upstream with either private_key_file and user in [target.ssh], \
                 or [target.credential] (user and password), not both"
                    .into(),
            ));
        }
    };
    let pins = match raw.upstream_host_key {
        None => Vec::new(),
        Some(OneOrMany::One(k)) => vec![k],
        Some(OneOrMany::Many(v)) => v,
    };
    if pins.is_empty() && raw.upstream_known_hosts.is_none() {
        return Err((
            "ssh.upstream_host_key",
            "pin the upstream's host key (\"ssh-ed25519 AAAA...\") or name an \
             upstream_known_hosts file: it is never trusted on first use"
                .into(),
        ));
    }
    let mut upstream_host_keys = Vec::with_capacity(pins.len());
    for p in &pins {
        let mut words = p.split_ascii_whitespace();
        match (words.next(), words.next()) {
            (Some(alg), Some(b64)) if russh::keys::parse_public_key_base64(b64).is_ok() => {
                upstream_host_keys.push(format!("{alg} {b64}"));
            }
            _ => {
                return Err((
                    "ssh.upstream_host_key",
                    format!("{p:?} is not a public key line (\"ssh-ed25519 AAAA...\")"),
                ));
            }
        }
    }
    let record_channel_bytes = raw.record_channel_bytes.unwrap_or(64 << 10);
    if record_channel_bytes > MAX_RECORD_CHANNEL {
        return Err((
            "ssh.record_channel_bytes",
            format!("at most {MAX_RECORD_CHANNEL}"),
        ));
    }
    let (terminal, forwarding) = super::ssh_session::validate(super::ssh_session::RawSession {
        record_pty_bytes: raw.record_pty_bytes,
        typed_lines: raw.typed_lines,
        allow_forwarding: raw.allow_forwarding,
        permit_open: raw.permit_open,
        permit_streamlocal: raw.permit_streamlocal,
        secret_prompts: raw.secret_prompts,
    })?;
    let mut rules = Vec::with_capacity(raw.rules.len());
    for r in raw.rules {
        if r.name.is_empty() || r.name.len() > 128 {
            return Err(("ssh.rules", "a rule needs a name of 1-128 bytes".into()));
        }
        crate::ssh::rules::compile(&r.command)
            .map_err(|e| ("ssh.rules", format!("rule {:?}: {e}", r.name)))?;
        let message = r
            .message
            .unwrap_or_else(|| format!("blocked by rule {}", r.name));
        rules.push(SshRule {
            name: r.name,
            command: r.command,
            action: r.action,
            message,
        });
    }
    let sftp = super::ssh_sftp::validate(
        raw.sftp_rules,
        raw.sftp_default_action,
        raw.record_sftp_file_bytes,
    )?;
    Ok(SshTarget {
        host_key,
        login,
        upstream_host_keys,
        upstream_known_hosts: raw.upstream_known_hosts,
        shell: raw.shell.unwrap_or(ShellMode::Allow),
        record_channel_bytes,
        rules,
        default_action: raw.default_action.unwrap_or(RuleAction::Allow),
        sftp,
        terminal,
        forwarding,
    })
}

pub(super) fn finish(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &mut TargetConfig,
) -> Result<(), ConfigError> {
    let s = validate(raw.ssh.take(), t.credential.is_some()).map_err(|(field, why)| {
        let key = field.trim_start_matches("ssh.");
        if key == "ssh" {
            c.err("ssh", field, &why)
        } else {
            c.err_in(&["ssh", key], field, &why)
        }
    })?;
    if t.unauthenticated {
        return Err(c.err(
            "unauthenticated",
            "unauthenticated",
            "ssh targets always authenticate callers by token",
        ));
    }
    if t.tls.is_some() {
        return Err(c.err(
            "tls",
            "tls",
            "ssh encrypts with its own host key ([target.ssh] host_key); remove [target.tls]",
        ));
    }
    t.ssh = Some(s);
    Ok(())
}

/// Callers need a way in: token issuers, or `[identity.ssh]` (user
/// certificate CAs, listed keys).
pub(super) fn with_identity(
    c: &TargetCheck<'_>,
    _t: &TargetConfig,
    identity: &crate::identity::IdentityConfig,
) -> Result<(), ConfigError> {
    if identity.issuers.is_empty() && identity.ssh.is_none() {
        return Err(c.err(
            "protocol",
            "protocol",
            "ssh callers authenticate with a token ([[identity.issuer]]) or a user \
             certificate or listed key ([identity.ssh]): configure at least one",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    const SSH: &str = r#"
[[identity.issuer]]
name = "idp"
issuer = "https://idp.test"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/jwks.json"

[[target]]
name = "web-1"
protocol = "ssh"
listen = ["127.0.0.1:2222"]
upstream = "web-1:22"
[target.ssh]
host_key = "/etc/tollgate/ssh_host_ed25519_key"
user = "deploy"
private_key_file = "/etc/tollgate/web-1.key"
upstream_host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
[[target.ssh.rules]]
name = "no-rm"
command = "rm -rf *"
action = "block"
"#;

    fn parse(s: &str) -> Result<super::super::Config, String> {
        super::super::Config::parse(s, std::path::Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn ssh_targets_validate_through_the_config() {
        let c = parse(SSH).unwrap();
        let s = c.targets[0].ssh.as_ref().unwrap();
        assert_eq!(s.rules[0].message, "blocked by rule no-rm");
        assert_eq!(s.record_channel_bytes, 65536);
        // No pin; a bad pin; both key and credential; neither; tls.
        let no_pin = SSH
            .lines()
            .filter(|l| !l.starts_with("upstream_host_key"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse(&no_pin).unwrap_err().contains("never trusted on"));
        let bad = SSH.replace("ssh-ed25519 AAAAC3", "ssh-ed25519 xx");
        assert!(parse(&bad).unwrap_err().contains("not a public key"));
        let both = format!("{SSH}[target.credential]\nuser = \"x\"\npassword_file = \"/p\"\n");
        assert!(parse(&both).unwrap_err().contains("not both"));
        let e = parse(&SSH.replace("\"ssh\"", "\"tcp\"")).unwrap_err();
        assert!(e.contains("[target.ssh] is for ssh targets"), "{e}");
        let e = parse(&SSH.replace("[target.ssh]", "unauthenticated = true\n[target.ssh]"))
            .unwrap_err();
        assert!(e.contains("always authenticate"), "{e}");
    }

    #[test]
    fn ssh_targets_share_a_listener_by_name_and_host_key() {
        let second = SSH
            .split("[[target]]")
            .nth(1)
            .unwrap()
            .replace("\"web-1\"", "\"web-2\"");
        let two = format!("{SSH}[[target]]{second}");
        let c = parse(&two).unwrap();
        assert_eq!(c.targets.len(), 2);
        // Another host key on the same listener: the key is shown before
        // the user name that routes is read.
        let other_key = format!(
            "{SSH}[[target]]{}",
            second.replace("ssh_host_ed25519_key", "other_host_key")
        );
        let e = parse(&other_key).unwrap_err();
        assert!(e.contains("the same [target.ssh] host_key"), "{e}");
        // Without any issuer, [identity.ssh] alone lets callers in.
        let no_issuer = SSH.split("[[target]]").nth(1).unwrap();
        let e = parse(&format!("[[target]]{no_issuer}")).unwrap_err();
        assert!(e.contains("[identity.ssh]"), "{e}");
        let ca =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ca";
        let with_ca = format!("[identity.ssh]\nca_keys = [\"{ca}\"]\n[[target]]{no_issuer}");
        parse(&with_ca).unwrap();
        let bad_ca = with_ca.replace("AAAAC3", "xx");
        let e = parse(&bad_ca).unwrap_err();
        assert!(e.contains("identity.ssh.ca_keys"), "{e}");
    }
}
