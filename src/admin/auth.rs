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
//!
//! A web page in an operator's browser can also reach 127.0.0.1, so the
//! loopback trust holds only for requests a browser cannot make: any request
//! carrying `Origin` (or a cross-site `Sec-Fetch-Site`) is refused, the
//! `Host` must name the loopback listener itself (which defeats DNS
//! rebinding), and every POST must be `application/json` (a cross-site
//! JSON POST needs a CORS preflight, which this API never grants).

use super::AdminState;
use super::routes::AdminRequest;
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
        self.local || self.in_any(&state.config().admin_groups)
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
pub enum AdminRefusal {
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: known caller, not allowed (or a request a browser made).
    #[error("{0}")]
    Forbidden(String),
    /// 415: a POST that is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

/// The token of an `Authorization: Bearer` header.
fn bearer(req: &AdminRequest) -> Result<Option<&str>, AdminRefusal> {
    let mut values = req.header_values("authorization");
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AdminRefusal::Unauthenticated(
            "more than one Authorization header".into(),
        ));
    }
    let v = std::str::from_utf8(v)
        .map_err(|_| AdminRefusal::Unauthenticated("Authorization is not UTF-8".into()))?;
    let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AdminRefusal::Unauthenticated(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok(Some(token))
}

/// Establish who is calling.
pub fn authenticate(
    state: &AdminState,
    req: &AdminRequest,
    loopback: bool,
) -> Result<Principal, AdminRefusal> {
    match bearer(req)? {
        Some(token) => {
            let auth = state.auth.as_ref().ok_or_else(|| {
                AdminRefusal::Unauthenticated("token verification is not configured".into())
            })?;
            let caller = auth
                .verify(token)
                .map_err(|e| AdminRefusal::Unauthenticated(format!("invalid token: {e}")))?;
            Ok(Principal {
                subject: caller.subject,
                groups: caller.groups,
                local: false,
            })
        }
        None if loopback => Ok(Principal::local_operator()),
        None => Err(AdminRefusal::Unauthenticated(
            "this admin listener requires Authorization: Bearer <token>".into(),
        )),
    }
}

/// Check the principal against what the endpoint needs.
pub fn authorize(state: &AdminState, who: &Principal, need: Need) -> Result<(), AdminRefusal> {
    let ok = match need {
        Need::Public => true,
        Need::Admin => who.is_admin(state),
        Need::Reviewer => {
            who.is_admin(state)
                || who.in_any(&state.config().reviewer_groups)
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
        Err(AdminRefusal::Forbidden(format!(
            "{} is not in {what}",
            who.subject
        )))
    }
}

/// Refuse what a browser could have sent (see the module comment). Health
/// probes are not checked: they change nothing and reveal nothing.
pub fn browser_refusal(
    state: &AdminState,
    req: &AdminRequest,
    loopback: bool,
) -> Result<(), AdminRefusal> {
    if req.header_values("origin").next().is_some() {
        return Err(AdminRefusal::Forbidden(
            "requests from web pages (with an Origin header) are refused".into(),
        ));
    }
    if req
        .header_values("sec-fetch-site")
        .any(|v| !v.eq_ignore_ascii_case(b"none"))
    {
        return Err(AdminRefusal::Forbidden(
            "requests from web pages (Sec-Fetch-Site) are refused".into(),
        ));
    }
    if req.method == "POST" && !is_json(req) {
        return Err(AdminRefusal::UnsupportedMediaType(
            "POST bodies must be Content-Type: application/json".into(),
        ));
    }
    if loopback {
        let mut hosts = req.header_values("host");
        let host = match (hosts.next(), hosts.next()) {
            (Some(h), None) => h,
            _ => {
                return Err(AdminRefusal::Forbidden(
                    "exactly one Host header is required".into(),
                ));
            }
        };
        if !host_is_listener(host, state.bound()) {
            return Err(AdminRefusal::Forbidden(format!(
                "Host {:?} does not name this loopback listener",
                String::from_utf8_lossy(host)
            )));
        }
    }
    Ok(())
}

fn is_json(req: &AdminRequest) -> bool {
    let mut values = req.header_values("content-type");
    let (Some(v), None) = (values.next(), values.next()) else {
        return false;
    };
    let media = v.split(|&b| b == b';').next().unwrap_or_default();
    media.trim_ascii().eq_ignore_ascii_case(b"application/json")
}

/// Whether `Host` names the loopback listener: `localhost`, a loopback
/// address, with the listener's port when one is given.
fn host_is_listener(host: &[u8], bound: Option<std::net::SocketAddr>) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let (name, port) = match host.rsplit_once(':') {
        // `[::1]:9090` or `127.0.0.1:9090`, but not the bare `[::1]`.
        Some((n, p)) if !p.ends_with(']') && !p.is_empty() => (n, Some(p)),
        _ => (host, None),
    };
    let name_ok = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(super::config::is_loopback);
    let port_ok = match (port, bound) {
        (None, _) => true,
        (Some(p), Some(b)) => p.parse::<u16>().is_ok_and(|p| p == b.port()),
        (Some(p), None) => p.parse::<u16>().is_ok(),
    };
    name_ok && port_ok
}

#[cfg(test)]
mod host_tests {
    use super::host_is_listener;

    #[test]
    fn only_the_loopback_listener_is_a_valid_host() {
        let bound = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9090)));
        for ok in [
            "127.0.0.1:9090",
            "localhost:9090",
            "LOCALHOST",
            "[::1]:9090",
            "[::1]",
            "127.0.0.1",
        ] {
            assert!(host_is_listener(ok.as_bytes(), bound), "{ok}");
        }
        for bad in [
            "evil.example:9090",
            "127.0.0.1:9091",
            "127.0.0.1.evil.example",
            "10.0.0.1:9090",
            "localhost:x",
            "",
        ] {
            assert!(!host_is_listener(bad.as_bytes(), bound), "{bad}");
        }
    }
}
