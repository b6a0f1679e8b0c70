//! The admin routes that span the fleet under `[cluster]`: the session list
//! (this host's sessions, fresh, plus the other hosts' from the registry),
//! a kill that reaches the host holding the session, and approvals listed
//! and decided in the control database (exactly one decision wins), and
//! the catalog of the fleet's uploaded recording segments.

use std::time::Duration;

use serde_json::{Value, json};

use super::AdminState;
use super::auth::Principal;
use super::routes::Reply;
use crate::approvals::{Broker, DecideError, ReviewerAnswer};
use crate::cluster::{Cluster, Decision, FleetDecideError, RemoteKill};
use crate::engine::{KillReason, SessionId, SessionSelector};

pub(super) fn sessions(state: &AdminState, fleet: &Cluster) -> Reply {
    let host = fleet.host_id();
    let config = state.control.list_sessions();
    let mut list: Vec<Value> = config
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("host".into(), json!(host));
            }
            v
        })
        .collect();
    let fleet_state = match fleet.remote_sessions() {
        Ok(remote) => {
            list.extend(remote);
            "ok".to_string()
        }
        // The list still answers, with what this host knows, and says so.
        Err(e) => format!("degraded: only this host's sessions ({e})"),
    };
    Reply::json(200, &json!({ "sessions": list, "fleet": fleet_state }))
}

/// `DELETE /v1/sessions/{id}` or `/v1/sessions/{host}:{id}`.
pub(super) fn kill(state: &AdminState, fleet: &Cluster, who: &Principal, raw: &str) -> Reply {
    let (host, id) = match raw.split_once(':') {
        Some((h, i)) => (Some(h), i),
        None => (None, raw),
    };
    if host.is_some_and(|h| !crate::config::cluster::valid_host_id(h)) {
        return Reply::error(400, format!("{raw:?} is not host:session"));
    }
    let Ok(sid) = id.parse::<SessionId>() else {
        return Reply::error(400, format!("{id:?} is not a session id (16 hex digits)"));
    };
    let object = format!("session/{}", raw);
    if host.is_none_or(|h| h == fleet.host_id()) {
        let n = state
            .control
            .kill(SessionSelector::Id(sid), KillReason::Admin);
        if n > 0 || host.is_some() {
            state.audit(&who.subject, "kill", &object, &format!("ended {n}"));
            return if n == 0 {
                Reply::error(404, format!("no live session {sid}"))
            } else {
                Reply::json(200, &json!({ "killed": n, "host": fleet.host_id() }))
            };
        }
    }
    match fleet.kill_remote(host, &sid.to_string(), &who.subject) {
        Ok(RemoteKill::Done { host, killed }) => {
            state.audit(
                &who.subject,
                "kill",
                &object,
                &format!("ended {killed} on {host}"),
            );
            if killed == 0 {
                Reply::error(404, format!("no live session {sid} on {host}"))
            } else {
                Reply::json(200, &json!({ "killed": killed, "host": host }))
            }
        }
        Ok(RemoteKill::Sent { host }) => {
            state.audit(
                &who.subject,
                "kill",
                &object,
                &format!("asked {host}, not confirmed"),
            );
            Reply::json(
                202,
                &json!({ "killed": 0, "host": host, "requested": true }),
            )
        }
        Ok(RemoteKill::NotFound) => {
            state.audit(&who.subject, "kill", &object, "ended 0");
            Reply::error(404, format!("no live session {sid} in the fleet"))
        }
        Ok(RemoteKill::Ambiguous(hosts)) => Reply::error(
            409,
            format!(
                "session {sid} is live on {}: name one as host:{sid}",
                hosts.join(", ")
            ),
        ),
        Err(e) => Reply::error(
            503,
            format!("no live session {sid} on this host, and the fleet cannot be asked: {e}"),
        ),
    }
}

pub(super) fn approvals(state: &AdminState, who: &Principal, id: Option<&str>) -> Reply {
    let Some(fleet) = &state.fleet else {
        return Reply::error(501, "no [cluster]");
    };
    let visible = |v: &crate::approvals::ApprovalView| {
        who.is_admin(state) || Broker::may_review(v, &who.reviewer())
    };
    match id {
        None => match fleet.approvals() {
            Ok(list) => {
                let list: Vec<_> = list.into_iter().filter(|v| visible(v)).collect();
                Reply::json(200, &json!({ "approvals": list }))
            }
            Err(e) => Reply::error(503, format!("control database unavailable: {e}")),
        },
        Some(raw) => {
            let Ok(n) = raw.parse::<u64>() else {
                return Reply::error(404, format!("no approval request {raw}"));
            };
            match fleet.approval(n) {
                Ok(Some(v)) if visible(&v) => Reply::json(200, &json!(v)),
                Ok(_) => Reply::error(404, format!("no approval request {n}")),
                Err(e) => Reply::error(503, format!("control database unavailable: {e}")),
            }
        }
    }
}

pub(super) fn decide(
    state: &AdminState,
    fleet: &Cluster,
    who: &Principal,
    id: u64,
    action: &str,
    verdict: ReviewerAnswer,
    reason: Option<String>,
) -> Reply {
    let object = format!("approval/{id}");
    let (approve, grant) = match verdict {
        ReviewerAnswer::Approve { grant } => (true, grant),
        ReviewerAnswer::Deny => (false, None),
    };
    let max = state.broker.config().max_grant;
    if let Some(g) = grant
        && (g.is_zero() || g > max)
    {
        return Reply::error(
            422,
            DecideError::BadGrant {
                minutes: g.as_secs() / 60,
                max_minutes: max.as_secs() / 60,
            },
        );
    }
    let d = Decision {
        id,
        subject: who.subject.clone(),
        groups: who.groups.clone(),
        local_operator: who.local,
        approve,
        grant: grant.map(|g| g.max(Duration::from_secs(1))),
        reason,
    };
    match fleet.decide(d) {
        Ok(v) => {
            let grant = v
                .grant_expires_ms
                .map(|t| format!(" grant_until_ms={t}"))
                .unwrap_or_default();
            state.audit(
                &who.subject,
                action,
                &object,
                &format!(
                    "requester={} target={} rule={:?} reason={:?}{grant}",
                    v.requester,
                    v.target,
                    v.rule,
                    v.reason.as_deref().unwrap_or("")
                ),
            );
            Reply::json(200, &json!(v))
        }
        Err(e) => {
            let status = match &e {
                FleetDecideError::Decide(DecideError::NotFound { .. }) => 404,
                FleetDecideError::Decide(DecideError::AlreadyDecided { .. })
                | FleetDecideError::Lost { .. } => 409,
                FleetDecideError::Decide(
                    DecideError::OwnRequest { .. } | DecideError::NotReviewer { .. },
                ) => {
                    state.audit(&who.subject, action, &object, &format!("refused: {e}"));
                    403
                }
                FleetDecideError::Decide(DecideError::BadGrant { .. }) => 422,
                FleetDecideError::Unavailable(_) => 503,
            };
            Reply::error(status, e)
        }
    }
}

/// Rows one catalog request returns by default, and at most.
const CATALOG_DEFAULT_LIMIT: usize = 1000;
const CATALOG_MAX_LIMIT: usize = 10_000;

/// `GET /v1/recordings/catalog?host=gw-1&since=2h&limit=100`: the fleet's
/// uploaded segments, per host newest first (`since_ms=` takes an epoch
/// time instead of an age).
pub(super) fn catalog(state: &AdminState, query: &str) -> Reply {
    let Some(fleet) = &state.fleet else {
        return Reply::error(
            501,
            "the segment catalog lives in the control database: this host has no [cluster]",
        );
    };
    let filter = match catalog_filter(query, std::time::SystemTime::now()) {
        Ok(f) => f,
        Err(e) => return Reply::error(400, e),
    };
    match fleet.catalog(filter) {
        Ok(rows) => Reply::json(200, &json!({ "segments": rows })),
        Err(e) => Reply::error(503, format!("the catalog cannot be read now: {e}")),
    }
}

pub(super) fn catalog_filter(
    query: &str,
    now: std::time::SystemTime,
) -> Result<crate::objstore::catalog::CatalogFilter, String> {
    let mut f = crate::objstore::catalog::CatalogFilter {
        limit: CATALOG_DEFAULT_LIMIT,
        ..Default::default()
    };
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "host" if tollgate_recorder::manifest::valid_host_id(&v) => {
                f.host = Some(v.into_owned());
            }
            "host" => return Err(format!("host {v:?} is not a host id")),
            "since" => {
                let d = humantime::parse_duration(&v)
                    .map_err(|e| format!("since {v:?}: {e} (e.g. 2h)"))?;
                f.since_ms = Some(now.checked_sub(d).map_or(0, ms));
            }
            "since_ms" => {
                f.since_ms = Some(
                    v.parse()
                        .map_err(|_| format!("since_ms {v:?} is not milliseconds"))?,
                );
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("limit {v:?} is not a number"))?;
                if n == 0 || n > CATALOG_MAX_LIMIT {
                    return Err(format!("limit must be 1 to {CATALOG_MAX_LIMIT}"));
                }
                f.limit = n;
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (host, since, since_ms, limit)"
                ));
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn catalog_filters_parse_and_bad_ones_are_named() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let f = catalog_filter("", now).unwrap();
        assert_eq!(
            (f.host, f.since_ms, f.limit),
            (None, None, CATALOG_DEFAULT_LIMIT)
        );
        let f = catalog_filter("host=gw-1&since=1h&limit=5", now).unwrap();
        assert_eq!(f.host.as_deref(), Some("gw-1"));
        assert_eq!(f.since_ms, Some(6_400_000));
        assert_eq!(f.limit, 5);
        let f = catalog_filter("since_ms=1234", SystemTime::now()).unwrap();
        assert_eq!(f.since_ms, Some(1234));
        for (q, why) in [
            ("host=..%2Fx", "not a host id"),
            ("since=soon", "since"),
            ("limit=0", "limit must be"),
            ("limit=100001", "limit must be"),
            ("bucket=x", "unknown parameter"),
        ] {
            let e = catalog_filter(q, now).unwrap_err();
            assert!(e.contains(why), "{q}: {e}");
        }
    }
}
