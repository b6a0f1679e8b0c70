//! The statement step every inspecting protocol shares: once a protocol has
//! read a command's text and the policy judged it, the verdict is counted,
//! logged and recorded here, and a statement the policy holds waits here
//! for a reviewer. What the client reads for a refusal stays the
//! protocol's (a PostgreSQL `RAISE`, a MySQL ERR packet).

use futures_util::future::{Either, select};
use tollgate_recorder::CommandEvent;
use tracing::info;

use crate::approvals::{ApprovalOutcome, ApprovalRequest};
use crate::config::TargetConfig;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::Identity;
use crate::metrics::StatementVerdict;
use crate::policy::rules::{Action, DecidedBy};
use crate::recording::SessionRecording;

/// What happens to one statement, with what the record and the client need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed, and flagged in the record.
    Audit {
        rule: String,
    },
    /// Refused: the client reads `message` in its protocol's terms.
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

/// What decided a verdict, as records and logs name it: the rule, or why
/// no rule did.
pub fn decider_name(d: DecidedBy<'_>) -> String {
    match d {
        DecidedBy::Rule { name, .. } => name.to_string(),
        DecidedBy::Unclassified => "unclassified".into(),
        DecidedBy::Unmatched => "unmatched".into(),
        DecidedBy::Empty => "empty".into(),
    }
}

impl Decision {
    /// The decision for a policy verdict's action, naming what decided it.
    pub fn from_verdict(action: Action<'_>, decided_by: DecidedBy<'_>) -> Decision {
        let rule = decider_name(decided_by);
        match action {
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
        }
    }

    /// Orders decisions from allow to block: a statement judged under
    /// several lexical modes keeps the strictest.
    pub fn strictness(&self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::Audit { .. } => 1,
            Decision::Approve { .. } => 2,
            Decision::Block { .. } => 3,
        }
    }

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

    /// Whether the statement goes on to the upstream.
    pub fn forwards(&self) -> bool {
        matches!(self, Decision::Allow | Decision::Audit { .. })
    }
}

/// What shadow mode let through that the policy would have stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowVerdict {
    /// `block` or `approve` (or `audit` under an allow).
    pub verdict: &'static str,
    pub rule: String,
}

/// The session a statement belongs to, as the step needs it.
pub(crate) struct StatementScope<'a> {
    pub ctx: &'a ShardCtx,
    pub entry: &'a SessionEntry,
    pub target: &'a TargetConfig,
    pub identity: &'a Identity,
    pub recording: &'a SessionRecording,
}

/// Why the statement step could not finish: the session ends with it.
#[derive(Debug)]
pub enum StepError {
    /// The recorder failed: no record, no statement.
    Recorder(String),
    /// Killed while a statement waited for a reviewer.
    Killed(crate::engine::KillReason),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Recorder(e) => write!(f, "recorder failed: {e}"),
            StepError::Killed(k) => write!(f, "{k}"),
        }
    }
}

impl StatementScope<'_> {
    /// Count, log and record a judged statement.
    pub async fn note(
        &self,
        statement: &str,
        d: &Decision,
        approval: Option<String>,
        shadow: Option<&ShadowVerdict>,
    ) -> Result<(), StepError> {
        let m = self.ctx.shared.metrics.shard(self.ctx.id);
        if let Some(s) = shadow {
            observe_shadow(m, &self.entry.id, statement, s);
        }
        match d {
            Decision::Block { rule, .. } => {
                m.statement(StatementVerdict::Block);
                info!(session = %self.entry.id, rule = %rule, statement, "statement blocked");
            }
            Decision::Audit { rule } => {
                m.statement(StatementVerdict::Audit);
                info!(session = %self.entry.id, rule = %rule, statement, "statement audited");
            }
            Decision::Approve { .. } => m.statement(StatementVerdict::Approve),
            Decision::Allow => m.statement(StatementVerdict::Allow),
        }
        *self.entry.current_statement.borrow_mut() = Some(statement.to_string());
        if self.recording.enabled() {
            self.recording
                .command(CommandEvent {
                    statement: statement.to_string(),
                    verdict: d.verdict().to_string(),
                    rule: d.rule().map(str::to_string),
                    approval,
                    shadow_verdict: shadow.map(|s| s.verdict.to_string()),
                    shadow_rule: shadow.map(|s| s.rule.clone()),
                })
                .await
                .map_err(|e| StepError::Recorder(e.to_string()))?;
        }
        Ok(())
    }

    /// Hold a statement for a reviewer; the answer as an allow (`Audit`
    /// under the holding rule) or a block, noted like any verdict.
    pub async fn await_approval(
        &self,
        statement: &str,
        message: &str,
        rule: &str,
    ) -> Result<Decision, StepError> {
        let broker = &self.ctx.shared.broker;
        let pending = broker.request(ApprovalRequest {
            session_id: self.entry.id.to_string(),
            requester: self.identity.subject.clone(),
            requester_groups: self.identity.groups.clone(),
            target: self.target.name.clone(),
            statement: statement.to_string(),
            rule: rule.to_string(),
            reviewer_groups: self.target.reviewer_groups.clone(),
        });
        info!(session = %self.entry.id, rule, approval = pending.id, statement, "statement held for approval");
        *self.entry.current_statement.borrow_mut() =
            Some(format!("[awaiting approval] {statement}"));
        let decision = std::pin::pin!(pending.decision());
        let decision = match select(decision, self.entry.kill.killed()).await {
            Either::Left((d, _)) => d,
            Either::Right((k, _)) => return Err(StepError::Killed(k)),
        };
        let (resolved, outcome) = resolve(decision, message, rule);
        info!(session = %self.entry.id, rule, outcome = %outcome, "approval decided");
        self.note(statement, &resolved, Some(outcome), None).await?;
        Ok(resolved)
    }
}

/// A reviewer's answer as a decision, and the line the record keeps.
fn resolve(decision: ApprovalOutcome, message: &str, rule: &str) -> (Decision, String) {
    match decision {
        ApprovalOutcome::Approved { by, reason } => (
            Decision::Audit {
                rule: rule.to_string(),
            },
            if reason.is_empty() {
                format!("approved by {by}")
            } else {
                format!("approved by {by}: {reason}")
            },
        ),
        ApprovalOutcome::Denied { by, reason } => (
            Decision::Block {
                message: if reason.is_empty() {
                    format!("{message} (denied by {by})")
                } else {
                    format!("denied by {by}: {reason}")
                },
                rule: rule.to_string(),
            },
            format!("denied by {by}: {reason}"),
        ),
        ApprovalOutcome::TimedOut => (
            Decision::Block {
                message: format!("{message} (no reviewer approved it in time)"),
                rule: rule.to_string(),
            },
            "timed out".to_string(),
        ),
    }
}

/// Counts and logs a statement that ran although a shadow rule (or the
/// policy in shadow mode) would have stopped it; the recording carries the
/// same verdict in the command record.
pub fn observe_shadow(
    metrics: &crate::metrics::ShardMetrics,
    session: &dyn std::fmt::Display,
    statement: &str,
    shadow: &ShadowVerdict,
) {
    metrics.shadow.add(&shadow.rule, shadow.verdict);
    info!(
        session = %session,
        rule = %shadow.rule,
        would = shadow.verdict,
        statement,
        "statement passed in shadow mode; the policy would have refused it"
    );
}

/// A statement as shown in logs, lists and records (bounded).
pub fn shown(sql: &[u8]) -> String {
    const MAX: usize = 8192;
    String::from_utf8_lossy(&sql[..sql.len().min(MAX)]).into_owned()
}
