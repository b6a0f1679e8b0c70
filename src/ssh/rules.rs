//! `[target.ssh] rules` compiled: a glob on the whole `exec` command line
//! (`*` matches any run of characters, `/` and spaces included), first
//! match wins. The line is judged with runs of whitespace collapsed to one
//! space and the ends trimmed, so `rm  -rf /x` meets a rule written
//! `rm -rf *`. This is best effort: a shell can always be made to run what a
//! glob on its command line does not see (quoting, variables, `sh -c`); the
//! README says so.

use globset::{GlobBuilder, GlobMatcher};

use crate::config::http::RuleAction;
use crate::config::ssh::SshTarget;

/// Compile one command glob.
pub fn compile(command: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(command)
        .literal_separator(false)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

struct Rule {
    name: String,
    command: GlobMatcher,
    action: RuleAction,
    message: String,
}

/// A target's exec rules, compiled once per configuration snapshot.
pub struct SshRules {
    rules: Vec<Rule>,
    default_action: RuleAction,
}

/// What the rules say of one command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub action: RuleAction,
    /// `None`: the default action.
    pub rule: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// The command line as the rules see it: whitespace runs collapsed.
pub fn normal_line(command: &str) -> String {
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl SshRules {
    pub fn compile(s: &SshTarget) -> Result<SshRules, String> {
        let mut rules = Vec::with_capacity(s.rules.len());
        for r in &s.rules {
            rules.push(Rule {
                name: r.name.clone(),
                command: compile(&r.command).map_err(|e| format!("rule {:?}: {e}", r.name))?,
                action: r.action,
                message: r.message.clone(),
            });
        }
        Ok(SshRules {
            rules,
            default_action: s.default_action,
        })
    }

    /// Judge a command line (already [`normal_line`]d).
    pub fn judge(&self, line: &str) -> Verdict<'_> {
        for r in &self.rules {
            if r.command.is_match(line) {
                return Verdict {
                    action: r.action,
                    rule: Some(&r.name),
                    message: Some(&r.message),
                };
            }
        }
        Verdict {
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
    use crate::config::ssh::{ShellMode, SshRule, UpstreamLogin};

    fn rules(list: &[(&str, &str, RuleAction)]) -> SshRules {
        let s = SshTarget {
            host_key: "/k".into(),
            login: UpstreamLogin::Password,
            upstream_host_keys: vec![],
            upstream_known_hosts: None,
            shell: ShellMode::Allow,
            record_channel_bytes: 0,
            rules: list
                .iter()
                .map(|(n, c, a)| SshRule {
                    name: n.to_string(),
                    command: c.to_string(),
                    action: *a,
                    message: format!("no {n}"),
                })
                .collect(),
            default_action: RuleAction::Allow,
            sftp: Default::default(),
            terminal: Default::default(),
            forwarding: Default::default(),
        };
        SshRules::compile(&s).unwrap()
    }

    #[test]
    fn globs_judge_the_whole_line() {
        let r = rules(&[
            ("rm", "rm -rf *", RuleAction::Block),
            ("mkfs", "mkfs*", RuleAction::Block),
            ("restart", "systemctl restart *", RuleAction::Approve),
        ]);
        let j = |c: &str| r.judge(&normal_line(c));
        assert_eq!(j("rm -rf /").rule, Some("rm"));
        assert_eq!(j("  rm   -rf  /tmp/x ").rule, Some("rm"));
        assert_eq!(j("rm -rf /").message, Some("no rm"));
        assert_eq!(j("mkfs.ext4 /dev/sda").action, RuleAction::Block);
        assert_eq!(j("systemctl restart nginx").action, RuleAction::Approve);
        assert_eq!(j("echo rm -rf /").action, RuleAction::Allow);
        assert_eq!(j("ls -l").rule, None);
    }
}
