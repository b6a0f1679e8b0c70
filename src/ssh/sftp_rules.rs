//! `[[target.ssh.sftp_rules]]` compiled, and the path normalisation every
//! judged sftp path goes through first.
//!
//! Paths are judged lexically: made absolute against the session's
//! directory (the server's answer to the client's `REALPATH "."`; a
//! relative path before that answer is refused), `.` and empty segments
//! dropped, `..` taken back (never above `/`). The bytes are matched as
//! sent (not required to be UTF-8); a path with a NUL is refused. What the
//! server's filesystem makes of a path (symlinks already on it) is not
//! seen: a rule on `/etc/**` does not stop `/tmp/link-to-etc/passwd`. The
//! README says so; SYMLINK and hardlink requests are judged on both paths.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use crate::config::http::RuleAction;
use crate::config::ssh_sftp::{SftpConfig, SftpOp};

/// Compile one path glob: `*` within a segment, `**` across them.
pub fn compile(path: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(path)
        .literal_separator(true)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

/// Why a path cannot be judged.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// Relative, and the session's directory is not known yet.
    UnknownDirectory,
    /// It holds a NUL byte.
    Nul,
}

/// `path` made absolute against `cwd` and normalised lexically.
pub fn normalise(path: &[u8], cwd: Option<&[u8]>) -> Result<Vec<u8>, PathError> {
    if path.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let base: &[u8] = if path.first() == Some(&b'/') {
        b""
    } else {
        cwd.ok_or(PathError::UnknownDirectory)?
    };
    for seg in base.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')) {
        match seg {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

struct Rule {
    name: String,
    path: GlobMatcher,
    operations: Vec<SftpOp>,
    action: RuleAction,
    message: String,
}

/// A target's sftp rules, compiled once per configuration snapshot.
pub struct SftpRules {
    rules: Vec<Rule>,
    default_action: RuleAction,
    /// Decode the subsystem at all.
    pub decode: bool,
    pub record_file_bytes: usize,
}

/// What the rules say of one operation on one (normalised) path.
#[derive(Debug, PartialEq, Eq)]
pub struct SftpVerdict<'a> {
    pub action: RuleAction,
    /// `None`: the default action.
    pub rule: Option<&'a str>,
    pub message: Option<&'a str>,
}

impl SftpRules {
    pub fn compile(c: &SftpConfig) -> Result<SftpRules, String> {
        let mut rules = Vec::with_capacity(c.rules.len());
        for r in &c.rules {
            rules.push(Rule {
                name: r.name.clone(),
                path: compile(&r.path).map_err(|e| format!("sftp rule {:?}: {e}", r.name))?,
                operations: r.operations.clone(),
                action: r.action,
                message: r.message.clone(),
            });
        }
        Ok(SftpRules {
            rules,
            default_action: c.default_action,
            decode: c.decode,
            record_file_bytes: c.record_file_bytes,
        })
    }

    /// Judge `op` on a normalised absolute path.
    pub fn judge(&self, op: SftpOp, path: &[u8]) -> SftpVerdict<'_> {
        let p = Path::new(OsStr::from_bytes(path));
        for r in &self.rules {
            if r.operations.contains(&op) && r.path.is_match(p) {
                return SftpVerdict {
                    action: r.action,
                    rule: Some(&r.name),
                    message: Some(&r.message),
                };
            }
        }
        SftpVerdict {
            action: self.default_action,
            rule: None,
            message: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::ssh_sftp::SftpRule;

    #[test]
    fn paths_normalise_before_they_are_judged() {
        let n = |p: &str, cwd: Option<&str>| {
            normalise(p.as_bytes(), cwd.map(str::as_bytes)).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(n("/etc/../etc/passwd", None).unwrap(), "/etc/passwd");
        assert_eq!(n("//etc///passwd/", None).unwrap(), "/etc/passwd");
        assert_eq!(n("/../../etc/./shadow", None).unwrap(), "/etc/shadow");
        assert_eq!(n("/", None).unwrap(), "/");
        assert_eq!(n("x/../../etc", Some("/root")).unwrap(), "/etc");
        assert_eq!(n(".", Some("/root")).unwrap(), "/root");
        assert_eq!(n("notes.txt", None), Err(PathError::UnknownDirectory));
        assert_eq!(n("/etc/pass\0wd", None), Err(PathError::Nul));
    }

    #[test]
    fn rules_match_operations_and_globs_first_match_wins() {
        let rule = |name: &str, path: &str, ops: &[SftpOp], action| SftpRule {
            name: name.into(),
            path: path.into(),
            operations: ops.to_vec(),
            action,
            message: format!("no {name}"),
        };
        let c = SftpConfig {
            decode: true,
            rules: vec![
                rule(
                    "etc-ro",
                    "/etc/**",
                    &[SftpOp::Write, SftpOp::Remove],
                    RuleAction::Block,
                ),
                rule("one-level", "/srv/*", &SftpOp::ALL, RuleAction::Audit),
            ],
            default_action: RuleAction::Allow,
            record_file_bytes: 0,
        };
        let r = SftpRules::compile(&c).unwrap();
        let j = |op, p: &str| r.judge(op, p.as_bytes());
        assert_eq!(j(SftpOp::Write, "/etc/passwd").action, RuleAction::Block);
        assert_eq!(
            j(SftpOp::Write, "/etc/ssh/sshd_config").rule,
            Some("etc-ro")
        );
        assert_eq!(j(SftpOp::Write, "/etc/passwd").message, Some("no etc-ro"));
        assert_eq!(j(SftpOp::Read, "/etc/passwd").action, RuleAction::Allow);
        assert_eq!(j(SftpOp::Write, "/etcetera").action, RuleAction::Allow);
        assert_eq!(j(SftpOp::Stat, "/srv/a").action, RuleAction::Audit);
        // `*` stays within its segment.
        assert_eq!(j(SftpOp::Stat, "/srv/a/b").rule, None);
        // Bytes that are not UTF-8 still match.
        assert_eq!(
            r.judge(SftpOp::Write, b"/etc/\xff").action,
            RuleAction::Block
        );
    }
}
