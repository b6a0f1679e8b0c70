//! Who is calling the admin API, and may they.
//!
//! The trust boundary is the listener. On a loopback listener a request
//! without a token acts as the local operator (`local-admin`), the way
//! pgbouncer's admin console trusts its unix socket: whoever can reach
//! 127.0.0.1 on the gateway host already controls the host. A request that
//! does carry `Authorization: Bearer` is verified and acts as the token's
//! identity even on loopback, so a reviewer is told apart from the requester.
//! On any other listener (always TLS) every request except the health probes
//! needs a valid token whose groups include an admin group — or, for the
//! approval endpoints, a reviewer group.

use tollgate_codecs::http::Request;

use super::AdminState;
use crate::approvals::{LOCAL_OPERATOR, Reviewer};

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub groups: Vec<String>,
    /// Tokenless caller on the loopback listener.
    pub local: bool,
}

impl Principal {
    pub fn local_operator() -> Principal {
        Principal {
            subject: LOCAL_OPERATOR.to_string(),
            groups: Vec::new(),
            local: true,
        }
    }

    pub fn reviewer(&self) -> Reviewer<'_> {
        Reviewer {
            subject: &self.subject,
            groups: &self.groups,
            local_operator: self.local,
        }
    }

    pub fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }

    /// Local operator or a member of an admin group.
    pub fn is_admin(&self, state: &AdminState) -> bool {
        self.local || self.in_any(&state.config.admin_groups)
    }
}

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Health probes: load balancers carry no token and learn nothing.
    Public,
    Admin,
    /// Admin, or a member of a reviewer group (default or any pending
    /// request's own).
    Reviewer,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: known caller, not allowed.
    #[error("{0}")]
    Forbidden(String),
}

/// The token of an `Authorization: Bearer` header.
fn bearer(req: &Request) -> Result<Option<&str>, Refusal> {
    let mut values = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v);
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::Unauthenticated(
            "more than one Authorization header".into(),
        ));
    }
    let v = std::str::from_utf8(v)
        .map_err(|_| Refusal::Unauthenticated("Authorization is not UTF-8".into()))?;
    let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Refusal::Unauthenticated(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok(Some(token))
}

/// Establish who is calling.
pub fn authenticate(
    state: &AdminState,
    req: &Request,
    loopback: bool,
) -> Result<Principal, Refusal> {
    match bearer(req)? {
        Some(token) => {
            let auth = state.auth.as_ref().ok_or_else(|| {
                Refusal::Unauthenticated("token verification is not configured".into())
            })?;
            let caller = auth
                .verify(token)
                .map_err(|e| Refusal::Unauthenticated(format!("invalid token: {e}")))?;
            Ok(Principal {
                subject: caller.subject,
                groups: caller.groups,
                local: false,
            })
        }
        None if loopback => Ok(Principal::local_operator()),
        None => Err(Refusal::Unauthenticated(
            "this admin listener requires Authorization: Bearer <token>".into(),
        )),
    }
}

/// Check the principal against what the endpoint needs.
pub fn authorize(state: &AdminState, who: &Principal, need: Need) -> Result<(), Refusal> {
    let ok = match need {
        Need::Public => true,
        Need::Admin => who.is_admin(state),
        Need::Reviewer => {
            who.is_admin(state)
                || who.in_any(&state.config.reviewer_groups)
                || state.broker.is_reviewer_group_member(&who.groups)
        }
    };
    if ok {
        Ok(())
    } else {
        let what = match need {
            Need::Reviewer => "an admin or reviewer group",
            _ => "an admin group",
        };
        Err(Refusal::Forbidden(format!(
            "{} is not in {what}",
            who.subject
        )))
    }
}
