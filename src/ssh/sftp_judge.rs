//! The compio side of an sftp request (`sftp.rs` asks): the target's sftp
//! rules on each of its paths, the strictest verdict of them (block, then
//! audit, then allow), recorded as the session's statement with it.

use super::SftpJudge;
use crate::config::http::RuleAction;
use crate::pipeline::Target;
use crate::pipeline::statement::{Decision, StatementScope, StepError};

/// `Ok(Err(message))`: refused.
pub(super) async fn judge(
    target: &Target<'_>,
    scope: &StatementScope<'_>,
    statement: &str,
    judge: SftpJudge,
) -> Result<Result<(), String>, StepError> {
    let d = match judge {
        SftpJudge::Record => Decision::Allow,
        SftpJudge::Refused(message) => Decision::Block {
            message,
            rule: "sftp".into(),
        },
        SftpJudge::Paths(op, paths) => match target.rt.ssh.as_ref() {
            // Not an ssh target's runtime: nothing to judge with.
            None => Decision::Block {
                message: "blocked by rule default".into(),
                rule: "default".into(),
            },
            Some(rt) => {
                let mut d = Decision::Allow;
                for p in &paths {
                    let v = rt.sftp.judge(op, p);
                    let rule = v.rule.unwrap_or("default").to_string();
                    match v.action {
                        // `tollgate check` refuses approve for sftp; a
                        // snapshot that has one anyway blocks.
                        RuleAction::Block | RuleAction::Approve => {
                            let message = v
                                .message
                                .map(str::to_string)
                                .unwrap_or_else(|| format!("blocked by rule {rule}"));
                            d = Decision::Block { message, rule };
                            break;
                        }
                        RuleAction::Audit if d == Decision::Allow => d = Decision::Audit { rule },
                        RuleAction::Audit | RuleAction::Allow => {}
                    }
                }
                d
            }
        },
    };
    scope.note(statement, &d, None, None).await?;
    Ok(match d {
        Decision::Allow | Decision::Audit { .. } => Ok(()),
        Decision::Block { message, .. } | Decision::Approve { message, .. } => Err(message),
    })
}
