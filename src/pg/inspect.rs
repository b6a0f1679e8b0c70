//! Statement judgement for a PostgreSQL session: the target's command policy
//! (rules over classified SQL) applied to every statement the client sends,
//! with the session's prepared statements remembered so `EXECUTE name` is
//! judged by what was prepared.

use tollgate_codecs::sql::Token;

use super::{fastpath, lexmode};
use crate::identity::Identity;
use crate::policy::rules::{
    Action, ActionKind, Caller, DecidedBy, EvalScratch, Policy, PolicyMode, PreparedVerdicts,
};
use crate::snapshot::TargetRuntime;

/// The rule name shown for refusals that protect the lexical state.
pub const LEXICAL_RULE: &str = "lexical-state";

use crate::pipeline::statement::decider_name;
pub use crate::pipeline::statement::{Decision, ShadowVerdict, observe_shadow};

pub struct Inspector<'a> {
    policy: &'a Policy,
    identity: &'a Identity,
    scratch: EvalScratch,
    prepared: PreparedVerdicts,
    /// Tracked from the upstream's ParameterStatus: decides how `\` in
    /// string literals lexes.
    pub standard_conforming_strings: bool,
    /// False while a statement sent earlier may still change the lexical
    /// state the server reads the next one under (see `lexmode`).
    pub mode_settled: bool,
    tokens: Vec<Token>,
    tokens_other: Vec<Token>,
    value: Vec<u8>,
    /// The shadow verdict of the last string judged, if any.
    pub shadow: Option<ShadowVerdict>,
    /// What decided the last `Allow` (a rule, or `unmatched`/`empty`); the
    /// workbench shows it, the relay does not need it.
    pub allowed_by: String,
}

/// Refusal of a statement that may hide a backslash in a multi-byte
/// character while an earlier statement could still change the encoding.
const UNSETTLED_ENCODING: &str = "tollgate cannot judge this statement until the statements before \
     it have completed (a byte >= 0x81 before a backslash reads differently under some client \
     encodings); send it on its own";

/// Refusal of a PREPARE/DEALLOCATE string that reads differently under the
/// two settings of standard_conforming_strings while the setting may change.
const AMBIGUOUS_PREPARE: &str = "tollgate cannot judge this statement until the statements before \
     it have completed (it prepares or deallocates differently depending on \
     standard_conforming_strings); send it on its own";

/// Order of decisions from least to most strict.
impl<'a> Inspector<'a> {
    pub fn new(rt: &'a TargetRuntime, identity: &'a Identity) -> Self {
        Self::with_policy(&rt.policy, identity)
    }

    /// An inspector for a compiled policy alone (`tollgate policy test`
    /// judges with it exactly as a session does, without a target).
    pub fn with_policy(policy: &'a Policy, identity: &'a Identity) -> Self {
        Inspector {
            policy,
            identity,
            scratch: EvalScratch::new(),
            prepared: PreparedVerdicts::new(),
            standard_conforming_strings: true,
            mode_settled: true,
            tokens: Vec::new(),
            tokens_other: Vec::new(),
            value: Vec::new(),
            shadow: None,
            allowed_by: String::new(),
        }
    }

    /// Judge one SQL string (all its statements; the strictest wins), under
    /// every lexical mode the server may read it in.
    pub fn judge(&mut self, sql: &[u8]) -> Decision {
        self.shadow = None;
        let scs = self.standard_conforming_strings;
        let decision = if let Some(message) = self.sets_backslash_hiding_encoding(sql) {
            self.prepared.resolve_pending(false);
            Decision::Block {
                message,
                rule: LEXICAL_RULE.into(),
            }
        } else if self.mode_settled || !lexmode::mode_may_matter(sql) {
            self.judge_in(sql, scs)
        } else {
            self.judge_every_mode(sql)
        };
        // Staged PREPAREs take effect once we know the string goes through.
        match &decision {
            Decision::Allow | Decision::Audit { .. } => self.prepared.resolve_pending(true),
            Decision::Block { .. } => self.prepared.resolve_pending(false),
            Decision::Approve { .. } => {}
        }
        decision
    }

    /// A refusal if `sql` may switch to a backslash-hiding client encoding,
    /// read under the current mode (and the other one while unsettled).
    fn sets_backslash_hiding_encoding(&mut self, sql: &[u8]) -> Option<String> {
        let scs = self.standard_conforming_strings;
        let both = !self.mode_settled && lexmode::mode_may_matter(sql);
        let modes = [scs, !scs];
        modes[..if both { 2 } else { 1 }].iter().find_map(|&mode| {
            lexmode::sets_backslash_hiding_encoding(
                sql,
                lexmode::pg_dialect(mode),
                &mut self.tokens,
                &mut self.value,
            )
        })
    }

    /// The policy's verdict for `sql` lexed with `standard_conforming_strings`
    /// = `scs`; prepared-statement changes are staged or applied by it.
    fn judge_in(&mut self, sql: &[u8], scs: bool) -> Decision {
        let caller = Caller {
            subject: &self.identity.subject,
            groups: &self.identity.groups,
        };
        let v = self.policy.evaluate(
            sql,
            lexmode::pg_dialect(scs),
            &caller,
            &mut self.scratch,
            &mut self.prepared,
        );
        if let Some(s) = v.shadow
            && self.shadow.as_ref().is_none_or(|k| k.verdict != "block")
        {
            // Under both lexical modes the stricter shadow verdict stays.
            self.shadow = Some(ShadowVerdict {
                verdict: s.action.as_str(),
                rule: s.rule.to_string(),
            });
        }
        if matches!(v.action, Action::Allow) {
            self.allowed_by = decider_name(v.decided_by);
        }
        Decision::from_verdict(v.action, v.decided_by)
    }

    /// A statement pipelined behind one that may change the lexical mode:
    /// judged under both settings of `standard_conforming_strings` when they
    /// read it differently, strictest verdict wins.
    fn judge_every_mode(&mut self, sql: &[u8]) -> Decision {
        if lexmode::multibyte_may_hide_backslash(sql) {
            self.prepared.resolve_pending(false);
            return Decision::Block {
                message: UNSETTLED_ENCODING.into(),
                rule: LEXICAL_RULE.into(),
            };
        }
        if lexmode::same_under_both_modes(sql, &mut self.tokens, &mut self.tokens_other) {
            return self.judge_in(sql, self.standard_conforming_strings);
        }
        let before = self.prepared.clone();
        let on = self.judge_in(sql, true);
        let after_on = std::mem::replace(&mut self.prepared, before.clone());
        let off = self.judge_in(sql, false);
        if after_on != before || self.prepared != before {
            // PREPARE/DEALLOCATE whose names or bodies depend on the mode:
            // the session's memory of prepared statements cannot follow.
            self.prepared = before;
            return Decision::Block {
                message: AMBIGUOUS_PREPARE.into(),
                rule: LEXICAL_RULE.into(),
            };
        }
        if off.strictness() > on.strictness() {
            off
        } else {
            on
        }
    }

    /// A fast-path FunctionCall of function `oid`, judged as its SQL
    /// equivalent (see `fastpath`): only a rule may let it through.
    pub fn judge_function_call(&mut self, oid: u32) -> Decision {
        self.shadow = None;
        let Some(name) = fastpath::function_name(oid) else {
            return self.judge_unclassified(&format!("a fast-path call of function oid {oid}"));
        };
        let mut best: Option<Decision> = None;
        for sql in fastpath::equivalent_sql(name) {
            let caller = Caller {
                subject: &self.identity.subject,
                groups: &self.identity.groups,
            };
            let v = self.policy.evaluate(
                sql.as_bytes(),
                lexmode::pg_dialect(true),
                &caller,
                &mut self.scratch,
                &mut self.prepared,
            );
            if !matches!(v.decided_by, DecidedBy::Rule { .. }) {
                continue;
            }
            let d = Decision::from_verdict(v.action, v.decided_by);
            if best
                .as_ref()
                .is_none_or(|b| d.strictness() > b.strictness())
            {
                best = Some(d);
            }
        }
        best.unwrap_or_else(|| self.judge_unclassified(&format!("a fast-path call of {name}")))
    }

    /// After an approval: apply (or drop) what the held string prepared.
    pub fn approved(&mut self, forwarded: bool) {
        self.prepared.resolve_pending(forwarded);
    }

    /// Something that carries no SQL (a fast-path function call): the
    /// target's `unclassified` default decides.
    pub fn judge_unclassified(&mut self, what: &str) -> Decision {
        let action = self.policy.unclassified_action();
        if self.policy.mode() == PolicyMode::Shadow && action > ActionKind::Audit {
            self.shadow = Some(ShadowVerdict {
                verdict: action.as_str(),
                rule: "unclassified".into(),
            });
            return Decision::Audit {
                rule: "unclassified".into(),
            };
        }
        match action {
            ActionKind::Allow => Decision::Allow,
            ActionKind::Audit => Decision::Audit {
                rule: "unclassified".into(),
            },
            _ => Decision::Block {
                message: format!("{what} is not allowed through tollgate"),
                rule: "unclassified".into(),
            },
        }
    }
}
