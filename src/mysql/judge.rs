//! Statement judgement for a MySQL session: the target's policy over the
//! MySQL dialect of the lexer, with executable comments judged as the
//! upstream's version runs them. `ANSI_QUOTES` is not reported by the
//! server, so a string with `"` is judged with it off and on; backslash
//! escapes follow the server's `NO_BACKSLASH_ESCAPES` status flag, and a
//! string that may change `sql_mode` itself is judged under both. The
//! strictest verdict wins.

use tollgate_codecs::mysql::status;
use tollgate_codecs::sql::{Dialect, MySqlMode, StatementClass};

use crate::identity::Identity;
use crate::pipeline::statement::{Decision, ShadowVerdict};
use crate::policy::rules::{Caller, EvalScratch, Policy, PreparedVerdicts};

/// The rule name shown for refusals that protect the lexical state.
const LEXICAL_RULE: &str = "lexical-state";

const AMBIGUOUS_PREPARE: &str = "tollgate cannot judge this statement: it prepares or \
     deallocates differently depending on sql_mode; send it on its own";

pub(crate) struct MyInspector<'a> {
    policy: &'a Policy,
    identity: &'a Identity,
    scratch: EvalScratch,
    prepared: PreparedVerdicts,
    mode: MySqlMode,
    /// The shadow verdict of the last string judged, if any.
    pub shadow: Option<ShadowVerdict>,
    /// Whether the last string judged holds a KILL (prepared bodies too).
    pub kills: bool,
    /// How many statements the last string held.
    pub statements: u32,
}

/// The version the lexer compares `/*!NNNNN` with: `major*10000 +
/// minor*100 + patch` of the upstream's greeting (MariaDB's `5.5.5-`
/// prefix skipped); 0 when unreadable, which makes versioned comments
/// ambiguous (refused by the default policy).
pub(crate) fn lexer_mode(server_version: &[u8], status_flags: u16) -> MySqlMode {
    let text = String::from_utf8_lossy(server_version);
    let mariadb = text.contains("MariaDB");
    let v = text.strip_prefix("5.5.5-").unwrap_or(&text);
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u32>().ok());
    let version = match (parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c))) if b < 100 && c < 100 => {
            a.saturating_mul(10000).saturating_add(b * 100 + c)
        }
        _ => 0,
    };
    MySqlMode {
        ansi_quotes: false,
        backslash_escapes: status_flags & status::NO_BACKSLASH_ESCAPES == 0,
        server_version: version,
        mariadb,
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl<'a> MyInspector<'a> {
    pub fn new(policy: &'a Policy, identity: &'a Identity, mode: MySqlMode) -> Self {
        MyInspector {
            policy,
            identity,
            scratch: EvalScratch::new(),
            prepared: PreparedVerdicts::new(),
            mode,
            shadow: None,
            kills: false,
            statements: 0,
        }
    }

    /// The server's status flags after a response: backslash escapes.
    pub fn status(&mut self, flags: u16) {
        self.mode.backslash_escapes = flags & status::NO_BACKSLASH_ESCAPES == 0;
    }

    /// COM_RESET_CONNECTION / COM_CHANGE_USER: SQL prepared statements go.
    pub fn reset(&mut self) {
        self.prepared = PreparedVerdicts::new();
    }

    /// Judge one command's text (every statement; the strictest wins).
    pub fn judge(&mut self, sql: &[u8]) -> Decision {
        self.shadow = None;
        self.kills = false;
        self.statements = 0;
        let mut modes = vec![self.mode];
        if memchr::memchr(b'"', sql).is_some() {
            modes.push(MySqlMode {
                ansi_quotes: !self.mode.ansi_quotes,
                ..self.mode
            });
        }
        if memchr::memchr(b'\\', sql).is_some() && contains_ignore_case(sql, b"sql_mode") {
            let n = modes.len();
            for i in 0..n {
                modes.push(MySqlMode {
                    backslash_escapes: !modes[i].backslash_escapes,
                    ..modes[i]
                });
            }
        }
        let decision = if modes.len() == 1 {
            self.judge_in(sql, self.mode)
        } else {
            self.judge_every_mode(sql, &modes)
        };
        match &decision {
            Decision::Allow | Decision::Audit { .. } => self.prepared.resolve_pending(true),
            Decision::Block { .. } => self.prepared.resolve_pending(false),
            Decision::Approve { .. } => {}
        }
        decision
    }

    /// After an approval: apply (or drop) what the held string prepared.
    pub fn approved(&mut self, forwarded: bool) {
        self.prepared.resolve_pending(forwarded);
    }

    fn judge_every_mode(&mut self, sql: &[u8], modes: &[MySqlMode]) -> Decision {
        let before = self.prepared.clone();
        let mut best: Option<Decision> = None;
        let mut after: Option<PreparedVerdicts> = None;
        for &mode in modes {
            self.prepared = before.clone();
            let d = self.judge_in(sql, mode);
            match &after {
                None => after = Some(self.prepared.clone()),
                Some(a) if *a != self.prepared => {
                    self.prepared = before;
                    return Decision::Block {
                        message: AMBIGUOUS_PREPARE.into(),
                        rule: LEXICAL_RULE.into(),
                    };
                }
                Some(_) => {}
            }
            if best
                .as_ref()
                .is_none_or(|b| d.strictness() > b.strictness())
            {
                best = Some(d);
            }
        }
        best.unwrap_or(Decision::Allow)
    }

    fn judge_in(&mut self, sql: &[u8], mode: MySqlMode) -> Decision {
        let caller = Caller {
            subject: &self.identity.subject,
            groups: &self.identity.groups,
        };
        let v = self.policy.evaluate(
            sql,
            Dialect::MySql(mode),
            &caller,
            &mut self.scratch,
            &mut self.prepared,
        );
        self.kills |= v.classes.contains(StatementClass::Kill);
        self.statements = self.statements.max(v.statements);
        if let Some(s) = v.shadow
            && self.shadow.as_ref().is_none_or(|k| k.verdict != "block")
        {
            self.shadow = Some(ShadowVerdict {
                verdict: s.action.as_str(),
                rule: s.rule.to_string(),
            });
        }
        Decision::from_verdict(v.action, v.decided_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_the_lexer_compares_them() {
        let m = lexer_mode(b"5.5.5-10.11.6-MariaDB-0+deb12u1", 0);
        assert_eq!((m.server_version, m.mariadb), (101106, true));
        assert!(m.backslash_escapes);
        let m = lexer_mode(b"8.0.36", status::NO_BACKSLASH_ESCAPES);
        assert_eq!((m.server_version, m.mariadb), (80036, false));
        assert!(!m.backslash_escapes);
        assert_eq!(lexer_mode(b"garbage", 0).server_version, 0);
    }
}
