//! The session steps every protocol shares: who the caller is, whether it
//! may use the target, the just-in-time access window, and the watchdog.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::{Either, select};
use rustls::pki_types::CertificateDer;
use tracing::info;

use super::end::{EndReason, Stop};
use crate::approvals::{ApprovalOutcome, ApprovalRequest};
use crate::config::TargetConfig;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::{AuthError, Identity};
use crate::metrics::AuthOutcome;
use crate::snapshot::{Snapshot, TargetRuntime};

/// What the caller presented, as the protocol read it.
pub enum Caller {
    /// A token (a PostgreSQL password message, an HTTP bearer...).
    Token(Vec<u8>),
    /// The client certificate chain of an mTLS handshake.
    Certificate(Vec<CertificateDer<'static>>),
    /// An OpenSSH user certificate whose key the caller proved it holds.
    SshCertificate(Box<russh::keys::Certificate>),
    /// A plain SSH public key the caller proved it holds.
    SshKey(Box<russh::keys::PublicKey>),
    /// Nothing: a target configured `unauthenticated` (loopback only).
    Anonymous,
}

/// Why a caller was not let in (for the log and the audit record only: the
/// client reads one generic line, so it cannot probe which check failed).
#[derive(Debug)]
pub enum AuthFailure {
    Credential(AuthError),
    Revoked,
    NotAdmitted(String),
}

impl AuthFailure {
    pub fn outcome(&self) -> AuthOutcome {
        match self {
            AuthFailure::Credential(e) => AuthOutcome::of_error(e),
            AuthFailure::Revoked => AuthOutcome::Revoked,
            AuthFailure::NotAdmitted(_) => AuthOutcome::NotAdmitted,
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthFailure::Credential(e) => write!(f, "{e}"),
            AuthFailure::Revoked => f.write_str("identity revoked"),
            AuthFailure::NotAdmitted(why) => write!(f, "not admitted: {why}"),
        }
    }
}

/// Verify what the caller presented, check revocations and the target's
/// access rules. `Ok(None)`: an anonymous caller on a target that allows it
/// (the protocol only produces [`Caller::Anonymous`] for such targets).
pub(crate) fn identify(
    ctx: &ShardCtx,
    snapshot: &Snapshot,
    rt: &TargetRuntime,
    caller: &Caller,
) -> Result<Option<Arc<Identity>>, AuthFailure> {
    let now = SystemTime::now();
    let identity = match caller {
        Caller::Anonymous => return Ok(None),
        Caller::Token(token) => {
            let mut cache = ctx.token_cache(snapshot);
            snapshot
                .identity
                .verify_token(token, &mut cache, now)
                .map_err(AuthFailure::Credential)?
        }
        Caller::Certificate(chain) => snapshot
            .identity
            .identity_from_certificate(chain, now)
            .map_err(AuthFailure::Credential)?,
        Caller::SshCertificate(cert) => snapshot
            .identity
            .identity_from_ssh_certificate(cert, now)
            .map_err(AuthFailure::Credential)?,
        Caller::SshKey(key) => snapshot
            .identity
            .identity_from_ssh_key(key, now)
            .map_err(AuthFailure::Credential)?,
    };
    if snapshot.identity.revocations().is_revoked(&identity, now) {
        return Err(AuthFailure::Revoked);
    }
    let decision = rt.access.decide(&identity);
    if !decision.is_admitted() {
        return Err(AuthFailure::NotAdmitted(decision.to_string()));
    }
    Ok(Some(identity))
}

/// Just-in-time access: the connection waits for a reviewer unless an
/// access window granted earlier covers this identity on this target.
pub(crate) async fn access_window(
    ctx: &ShardCtx,
    target: &TargetConfig,
    entry: &SessionEntry,
    identity: Option<&Identity>,
) -> Result<(), EndReason> {
    let Some(identity) = identity else {
        // Nobody to grant a window to: fail closed.
        return Err(EndReason::AccessDenied(
            "access approval needs an authenticated caller".into(),
        ));
    };
    let pending = ctx.shared.broker.request_access(ApprovalRequest {
        session_id: entry.id.to_string(),
        requester: identity.subject.clone(),
        requester_groups: identity.groups.clone(),
        target: target.name.clone(),
        statement: String::new(),
        rule: "require_approval_to_connect".into(),
        reviewer_groups: target.reviewer_groups.clone(),
    });
    if pending.id != 0 {
        info!(session = %entry.id, subject = %identity.subject, approval = pending.id, "connection held for access approval");
        *entry.current_statement.borrow_mut() = Some("[awaiting access approval]".into());
    }
    let decision = std::pin::pin!(pending.decision());
    let decision = match select(decision, entry.kill.killed()).await {
        Either::Left((d, _)) => d,
        Either::Right((k, _)) => return Err(EndReason::Killed(k)),
    };
    *entry.current_statement.borrow_mut() = None;
    match decision {
        ApprovalOutcome::Approved { by, .. } => {
            info!(session = %entry.id, by = %by, "access approved");
            Ok(())
        }
        ApprovalOutcome::Denied { by, reason } => Err(EndReason::AccessDenied(format!(
            "access denied by {by}: {reason}"
        ))),
        ApprovalOutcome::TimedOut => Err(EndReason::AccessDenied(
            "access was not approved in time".into(),
        )),
    }
}

/// Resolves when the session must stop: nothing moved for `idle`, or a
/// kill (shutdown, operator, revocation).
pub async fn watchdog(
    entry: &SessionEntry,
    last_activity: &Cell<Instant>,
    idle: Duration,
    frame_clock: &super::FrameClock,
    frame_timeout: Duration,
) -> Stop {
    let idle = std::pin::pin!(idle_timer(last_activity, idle));
    let stalled = std::pin::pin!(frame_clock.expired(frame_timeout));
    let timers = std::pin::pin!(select(idle, stalled));
    match select(timers, entry.kill.killed()).await {
        Either::Left((Either::Left(_), _)) => Stop::IdleTimeout,
        Either::Left((Either::Right(_), _)) => Stop::FrameTimeout,
        Either::Right((k, _)) => Stop::Killed(k),
    }
}

/// Resolves once nothing has moved for `idle`.
pub async fn idle_timer(last_activity: &Cell<Instant>, idle: Duration) {
    loop {
        let due = last_activity.get() + idle;
        let now = Instant::now();
        if now >= due {
            return;
        }
        compio::time::sleep(due - now).await;
    }
}
