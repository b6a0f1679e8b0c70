//! `[[target.ssh.sftp_rules]]` and the keys around them: the `sftp`
//! subsystem decoded and each operation judged by path.
//!
//! - `sftp_rules`: `path` (a glob on the normalised absolute path: `*`
//!   stays within one `/` segment, `**` crosses them), `operations` (any
//!   of [`SftpOp`]'s names; default all), `action` (`allow`, `audit`,
//!   `block`), `message`. First match wins; `sftp_default_action` (default
//!   `allow`) otherwise.
//! - `record_sftp_file_bytes`: how many bytes of each file read or written
//!   the recording keeps (default 65536); the whole file's length and
//!   SHA-256 are recorded at its CLOSE either way.
//!
//! The relay decodes sftp only when `sftp_rules` are configured or
//! `record_sftp_file_bytes` is set; otherwise the subsystem's bytes pass
//! through as any channel's do. `approve` is refused: an sftp request held
//! for a reviewer would hold every channel of the connection (the SSH
//! server handles a connection's messages in order).

use serde::Deserialize;

use super::http::RuleAction;

/// What an sftp request does to a path, as the rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SftpOp {
    /// OPEN for reading.
    Read,
    /// OPEN for writing, appending, creating or truncating.
    Write,
    Remove,
    /// RENAME and posix-rename: judged on both paths.
    Rename,
    Mkdir,
    Rmdir,
    /// OPENDIR.
    List,
    /// STAT, LSTAT, REALPATH, READLINK, statvfs, expand-path.
    Stat,
    /// SETSTAT, FSETSTAT, lsetstat.
    Setstat,
    /// SYMLINK: judged on both paths.
    Symlink,
    /// hardlink@openssh.com: judged on both paths.
    Link,
}

impl SftpOp {
    pub const ALL: [SftpOp; 11] = [
        SftpOp::Read,
        SftpOp::Write,
        SftpOp::Remove,
        SftpOp::Rename,
        SftpOp::Mkdir,
        SftpOp::Rmdir,
        SftpOp::List,
        SftpOp::Stat,
        SftpOp::Setstat,
        SftpOp::Symlink,
        SftpOp::Link,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SftpOp::Read => "read",
            SftpOp::Write => "write",
            SftpOp::Remove => "remove",
            SftpOp::Rename => "rename",
            SftpOp::Mkdir => "mkdir",
            SftpOp::Rmdir => "rmdir",
            SftpOp::List => "list",
            SftpOp::Stat => "stat",
            SftpOp::Setstat => "setstat",
            SftpOp::Symlink => "symlink",
            SftpOp::Link => "link",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSftpRule {
    name: String,
    path: String,
    operations: Option<Vec<SftpOp>>,
    action: RuleAction,
    message: Option<String>,
}

/// A validated sftp rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpRule {
    pub name: String,
    pub path: String,
    pub operations: Vec<SftpOp>,
    pub action: RuleAction,
    pub message: String,
}

/// A validated target's sftp settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SftpConfig {
    /// Decode the subsystem (rules configured or file recording asked for).
    pub decode: bool,
    pub rules: Vec<SftpRule>,
    pub default_action: RuleAction,
    pub record_file_bytes: usize,
}

/// Most bytes a recording may keep per file.
const MAX_RECORD_FILE: usize = 64 << 20;

/// Checks the sftp keys; the error names the field.
pub(super) fn validate(
    raw: Vec<RawSftpRule>,
    default_action: Option<RuleAction>,
    record_file_bytes: Option<usize>,
) -> Result<SftpConfig, (&'static str, String)> {
    let approve = "approve is not supported for sftp: a held sftp request would hold every \
                   channel of the SSH connection; use block or audit";
    if default_action == Some(RuleAction::Approve) {
        return Err(("ssh.sftp_default_action", approve.into()));
    }
    if record_file_bytes.is_some_and(|n| n > MAX_RECORD_FILE) {
        return Err((
            "ssh.record_sftp_file_bytes",
            format!("at most {MAX_RECORD_FILE}"),
        ));
    }
    let mut rules = Vec::with_capacity(raw.len());
    for r in raw {
        if r.name.is_empty() || r.name.len() > 128 {
            return Err((
                "ssh.sftp_rules",
                "a rule needs a name of 1-128 bytes".into(),
            ));
        }
        if r.action == RuleAction::Approve {
            return Err(("ssh.sftp_rules", format!("rule {:?}: {approve}", r.name)));
        }
        if !r.path.starts_with('/') {
            return Err((
                "ssh.sftp_rules",
                format!(
                    "rule {:?}: path {:?} must be absolute: paths are judged normalised \
                     and absolute",
                    r.name, r.path
                ),
            ));
        }
        crate::ssh::sftp_rules::compile(&r.path)
            .map_err(|e| ("ssh.sftp_rules", format!("rule {:?}: {e}", r.name)))?;
        let operations = match r.operations {
            Some(ops) if ops.is_empty() => {
                return Err((
                    "ssh.sftp_rules",
                    format!(
                        "rule {:?}: operations is empty (leave it out for all)",
                        r.name
                    ),
                ));
            }
            Some(ops) => ops,
            None => SftpOp::ALL.to_vec(),
        };
        let message = r
            .message
            .unwrap_or_else(|| format!("blocked by rule {}", r.name));
        rules.push(SftpRule {
            name: r.name,
            path: r.path,
            operations,
            action: r.action,
            message,
        });
    }
    Ok(SftpConfig {
        decode: !rules.is_empty() || record_file_bytes.is_some(),
        rules,
        default_action: default_action.unwrap_or(RuleAction::Allow),
        record_file_bytes: record_file_bytes.unwrap_or(64 << 10),
    })
}
