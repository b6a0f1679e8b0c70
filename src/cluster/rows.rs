//! Rows of the control database to the admin plane's types and back. A row
//! another host wrote is peer data: every conversion is checked, none
//! panics.

use serde_json::{Value, json};
use tokio_postgres::Row;

use crate::admin::{Revocation, RevocationKind};
use crate::approvals::{ApprovalKind, ApprovalState, ApprovalView};

pub const REVOCATION_COLUMNS: &str = "id, kind, value, reason, revoked_by, revoked_ms, until_ms";

pub const APPROVAL_COLUMNS: &str = "id, kind, state, session_id, requester, requester_groups, \
     target, statement, rule, reviewer_groups, created_ms, expires_ms, decided_by, reason, \
     decided_ms, grant_expires_ms, host_id";

pub const SESSION_COLUMNS: &str =
    "host_id, session_id, shard, subject, target, protocol, client, started_ms";

fn u64_of(v: i64) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("negative value {v} in the control database"))
}

pub fn kind_of(s: &str) -> Result<RevocationKind, String> {
    match s {
        "subject" => Ok(RevocationKind::Subject),
        "token_id" => Ok(RevocationKind::TokenId),
        "issuer" => Ok(RevocationKind::Issuer),
        other => Err(format!("unknown revocation kind {other:?}")),
    }
}

pub fn revocation(row: &Row) -> Result<Revocation, String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let id: i64 = row.try_get(0).map_err(e)?;
    let kind: String = row.try_get(1).map_err(e)?;
    let revoked_ms: i64 = row.try_get(5).map_err(e)?;
    let until_ms: Option<i64> = row.try_get(6).map_err(e)?;
    Ok(Revocation {
        id: Some(u64_of(id)?),
        kind: kind_of(&kind)?,
        value: row.try_get(2).map_err(e)?,
        reason: row.try_get(3).map_err(e)?,
        revoked_by: row.try_get(4).map_err(e)?,
        revoked_ms: Some(u64_of(revoked_ms)?),
        until_ms: until_ms.map(u64_of).transpose()?,
    })
}

pub fn approval_kind_name(k: ApprovalKind) -> &'static str {
    match k {
        ApprovalKind::Statement => "statement",
        ApprovalKind::Access => "access",
    }
}

pub fn state_name(s: ApprovalState) -> &'static str {
    match s {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Denied => "denied",
        ApprovalState::TimedOut => "timed_out",
        ApprovalState::Cancelled => "cancelled",
    }
}

pub fn state_of(s: &str) -> Result<ApprovalState, String> {
    Ok(match s {
        "pending" => ApprovalState::Pending,
        "approved" => ApprovalState::Approved,
        "denied" => ApprovalState::Denied,
        "timed_out" => ApprovalState::TimedOut,
        "cancelled" => ApprovalState::Cancelled,
        other => return Err(format!("unknown approval state {other:?}")),
    })
}

/// An approval row; a pending one past its deadline reads as timed out.
pub fn approval(row: &Row, now_ms: i64) -> Result<(ApprovalView, String), String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let id: i64 = row.try_get(0).map_err(e)?;
    let kind: String = row.try_get(1).map_err(e)?;
    let state: String = row.try_get(2).map_err(e)?;
    let created_ms: i64 = row.try_get(10).map_err(e)?;
    let expires_ms: i64 = row.try_get(11).map_err(e)?;
    let decided_ms: Option<i64> = row.try_get(14).map_err(e)?;
    let grant: Option<i64> = row.try_get(15).map_err(e)?;
    let mut state = state_of(&state)?;
    if state == ApprovalState::Pending && expires_ms <= now_ms {
        state = ApprovalState::TimedOut;
    }
    let view = ApprovalView {
        id: u64_of(id)?,
        kind: match kind.as_str() {
            "statement" => ApprovalKind::Statement,
            "access" => ApprovalKind::Access,
            other => return Err(format!("unknown approval kind {other:?}")),
        },
        state,
        session_id: row.try_get(3).map_err(e)?,
        requester: row.try_get(4).map_err(e)?,
        requester_groups: row.try_get(5).map_err(e)?,
        target: row.try_get(6).map_err(e)?,
        statement: row.try_get(7).map_err(e)?,
        rule: row.try_get(8).map_err(e)?,
        reviewer_groups: row.try_get(9).map_err(e)?,
        created_ms: u64_of(created_ms)?,
        expires_ms: u64_of(expires_ms)?,
        decided_by: row.try_get(12).map_err(e)?,
        reason: row.try_get(13).map_err(e)?,
        decided_ms: decided_ms.map(u64_of).transpose()?,
        grant_expires_ms: grant.map(u64_of).transpose()?,
    };
    let host: String = row.try_get(16).map_err(e)?;
    Ok((view, host))
}

/// A registry row as `GET /v1/sessions` shows it.
pub fn session(row: &Row) -> Result<Value, String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let host: String = row.try_get(0).map_err(e)?;
    let id: String = row.try_get(1).map_err(e)?;
    let shard: i32 = row.try_get(2).map_err(e)?;
    let subject: Option<String> = row.try_get(3).map_err(e)?;
    let target: String = row.try_get(4).map_err(e)?;
    let protocol: String = row.try_get(5).map_err(e)?;
    let client: String = row.try_get(6).map_err(e)?;
    let started_ms: i64 = row.try_get(7).map_err(e)?;
    Ok(json!({
        "host": host, "id": id, "shard": shard, "subject": subject, "target": target,
        "protocol": protocol, "client": client, "started_ms": started_ms,
    }))
}
