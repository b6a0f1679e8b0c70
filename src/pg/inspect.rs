//! Statement judgement for a PostgreSQL session: the target's command policy
//! (rules over classified SQL) applied to every statement the client sends,
//! with the session's prepared statements remembered so `EXECUTE name` is
//! judged by what was prepared.

use tollgate_codecs::sql::{Dialect, PgMode};

use crate::identity::Identity;
use crate::policy::rules::{Action, Caller, DecidedBy, EvalScratch, PreparedVerdicts};
use crate::snapshot::TargetRuntime;

/// What happens to one statement, with what the record and the client need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed, and flagged in the record.
    Audit {
        rule: String,
    },
    /// Refused: the client gets SQLSTATE 42501 with `message`.
    Block {
        message: String,
        rule: String,
    },
    /// Held until a reviewer decides.
    Approve {
        message: String,
        rule: String,
    },
}

impl Decision {
    pub fn verdict(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Audit { .. } => "audit",
            Decision::Block { .. } => "block",
            Decision::Approve { .. } => "approve",
        }
    }

    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Audit { rule }
            | Decision::Block { rule, .. }
            | Decision::Approve { rule, .. } => Some(rule),
        }
    }
}

pub struct Inspector<'a> {
    rt: &'a TargetRuntime,
    identity: &'a Identity,
    scratch: EvalScratch,
    prepared: PreparedVerdicts,
    /// Tracked from the upstream's ParameterStatus: decides how `\` in
    /// string literals lexes.
    pub standard_conforming_strings: bool,
}

fn decided_by(d: DecidedBy<'_>) -> String {
    match d {
        DecidedBy::Rule { name, .. } => name.to_string(),
        DecidedBy::Unclassified => "unclassified".into(),
        DecidedBy::Unmatched => "unmatched".into(),
        DecidedBy::Empty => "empty".into(),
    }
}

impl<'a> Inspector<'a> {
    pub fn new(rt: &'a TargetRuntime, identity: &'a Identity) -> Self {
        Inspector {
            rt,
            identity,
            scratch: EvalScratch::new(),
            prepared: PreparedVerdicts::new(),
            standard_conforming_strings: true,
        }
    }

    /// Judge one SQL string (all its statements; the strictest wins).
    pub fn judge(&mut self, sql: &[u8]) -> Decision {
        let caller = Caller {
            subject: &self.identity.subject,
            groups: &self.identity.groups,
        };
        let dialect = Dialect::Postgres(PgMode {
            standard_conforming_strings: self.standard_conforming_strings,
        });
        let v =
            self.rt
                .policy
                .evaluate(sql, dialect, &caller, &mut self.scratch, &mut self.prepared);
        let rule = decided_by(v.decided_by);
        let decision = match v.action {
            Action::Allow => Decision::Allow,
            Action::Audit => Decision::Audit { rule },
            Action::Block { message } => Decision::Block {
                message: message.to_string(),
                rule,
            },
            Action::Approve { message } => Decision::Approve {
                message: message.to_string(),
                rule,
            },
        };
        // Staged PREPAREs take effect once we know the string goes through.
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

    /// Something that carries no SQL (a fast-path function call): the
    /// target's `unclassified` default decides.
    pub fn judge_unclassified(&mut self, what: &str) -> Decision {
        match self.rt.policy.unclassified_action() {
            crate::policy::rules::ActionKind::Allow => Decision::Allow,
            crate::policy::rules::ActionKind::Audit => Decision::Audit {
                rule: "unclassified".into(),
            },
            _ => Decision::Block {
                message: format!("{what} is not allowed through tollgate"),
                rule: "unclassified".into(),
            },
        }
    }
}
