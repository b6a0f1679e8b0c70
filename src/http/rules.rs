//! `[target.http]` rules compiled: method and path glob (`*` within one
//! segment, `**` across segments, `{param}` one segment), first match wins.

use globset::{Glob, GlobBuilder, GlobMatcher};

use tollgate_codecs::http::h1::Fields;
use tollgate_codecs::http::k8s::K8sRequest;

use crate::config::http::{HttpTarget, K8sMatch, RuleAction};

/// A path pattern as globset reads it: `{param}` becomes `*` (one segment);
/// globset's own `{a,b}` alternation is kept when the braces hold a comma.
fn glob_text(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match after.find('}') {
            Some(close) if !after[..close].contains(',') => {
                out.push('*');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Compile one path pattern.
pub fn compile_path(path: &str) -> Result<GlobMatcher, globset::Error> {
    let glob: Glob = GlobBuilder::new(&glob_text(path))
        .literal_separator(true)
        .build()?;
    Ok(glob.compile_matcher())
}

/// Compile a glob on a header or query value: `*` matches any run of
/// bytes, `/` included.
pub fn compile_value(glob: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(glob)
        .literal_separator(false)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

/// What the rules see of a request. `query` is decoded (empty when no
/// rule reads it); `k8s` is what a Kubernetes API request asks for.
pub struct Request<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub fields: &'a Fields,
    pub groups: &'a [String],
    pub k8s: Option<&'a K8sRequest>,
    /// The top-level fields of a JSON object body (`None`: no such body,
    /// or no rule reads one).
    pub json: Option<&'a [(String, serde_json::Value)]>,
}

/// A JSON value as a rule's glob reads it: strings as they are, numbers,
/// booleans and null as written; objects and arrays match nothing.
fn json_scalar(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        Value::Null => Some("null".into()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

struct Rule {
    name: String,
    methods: Vec<String>,
    path: GlobMatcher,
    query: Vec<(String, GlobMatcher)>,
    headers: Vec<(String, GlobMatcher)>,
    json: Vec<(String, GlobMatcher)>,
    groups: Vec<String>,
    k8s: Option<K8sMatch>,
    action: RuleAction,
}

fn any_or(list: &[String], mut hit: impl FnMut(&str) -> bool) -> bool {
    list.is_empty() || list.iter().any(|v| v == "*" || hit(v))
}

/// RBAC's reading of a resource entry: `pods`, `pods/exec`, `pods/*`, `*/scale`.
fn resource_matches(entry: &str, resource: &str, subresource: &str) -> bool {
    match entry.split_once('/') {
        None => subresource.is_empty() && entry == resource,
        Some((r, sub)) => {
            !subresource.is_empty()
                && (r == "*" || r == resource)
                && (sub == "*" || sub == subresource)
        }
    }
}

fn k8s_matches(m: &K8sMatch, k: &K8sRequest) -> bool {
    any_or(&m.verbs, |v| v == k.verb)
        && any_or(&m.api_groups, |g| g == k.api_group)
        && any_or(&m.resources, |r| {
            resource_matches(r, &k.resource, &k.subresource)
        })
        && any_or(&m.namespaces, |n| n == k.namespace)
        && any_or(&m.names, |n| n == k.name)
}

impl Rule {
    fn matches(&self, req: &Request<'_>) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == req.method))
            && self.path.is_match(req.path)
            && (self.groups.is_empty() || self.groups.iter().any(|g| req.groups.contains(g)))
            && self.query.iter().all(|(name, glob)| {
                req.query
                    .iter()
                    .any(|(k, v)| k == name && glob.is_match(v.as_str()))
            })
            && self.headers.iter().all(|(name, glob)| {
                req.fields
                    .get_all(name)
                    .any(|v| std::str::from_utf8(v).is_ok_and(|v| glob.is_match(v)))
            })
            && self.json.iter().all(|(name, glob)| {
                req.json.is_some_and(|fields| {
                    fields.iter().any(|(k, v)| {
                        k == name && json_scalar(v).is_some_and(|s| glob.is_match(s.as_ref()))
                    })
                })
            })
            && match (&self.k8s, req.k8s) {
                (None, _) => true,
                (Some(m), Some(k)) => k8s_matches(m, k),
                (Some(_), None) => false,
            }
    }
}

/// A target's rules, compiled once per configuration snapshot.
pub struct HttpRules {
    rules: Vec<Rule>,
    default_action: RuleAction,
    reads_query: bool,
    reads_json: bool,
}

impl HttpRules {
    pub fn compile(h: &HttpTarget) -> Result<HttpRules, String> {
        let mut rules = Vec::with_capacity(h.rules.len());
        for r in &h.rules {
            let err = |e: globset::Error| format!("rule {:?}: {e}", r.name);
            let values = |list: &[(String, String)]| {
                list.iter()
                    .map(|(k, g)| Ok((k.clone(), compile_value(g).map_err(err)?)))
                    .collect::<Result<Vec<_>, String>>()
            };
            rules.push(Rule {
                name: r.name.clone(),
                methods: r.methods.clone(),
                path: compile_path(&r.path).map_err(err)?,
                query: values(&r.query)?,
                headers: values(&r.headers)?,
                json: values(&r.json)?,
                groups: r.groups.clone(),
                k8s: r.k8s.clone(),
                action: r.action,
            });
        }
        Ok(HttpRules {
            rules,
            default_action: h.default_action,
            reads_query: h.rules.iter().any(|r| r.reads_query()),
            reads_json: h.rules.iter().any(|r| r.reads_json()),
        })
    }

    /// Whether a request's body must be read as JSON for these rules.
    pub fn reads_json(&self) -> bool {
        self.reads_json
    }

    /// Whether a request's query must be decoded for these rules (a query
    /// that cannot be is then refused).
    pub fn reads_query(&self) -> bool {
        self.reads_query
    }

    /// The action for a request and the rule that chose it (`None`: the
    /// default).
    pub fn judge(&self, req: &Request<'_>) -> (RuleAction, Option<&str>) {
        match self.rules.iter().find(|r| r.matches(req)) {
            Some(r) => (r.action, Some(r.name.as_str())),
            None => (self.default_action, None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::http::HttpRule;
    use tollgate_codecs::http::h1::{Limits, parse_request_head};
    use tollgate_codecs::http::k8s;
    use tollgate_codecs::http::query::parse_query;

    fn target(rules: Vec<HttpRule>) -> HttpRules {
        let h = HttpTarget {
            host: None,
            path_prefix: None,
            identity: Default::default(),
            json_body_max: 1 << 16,
            token_header: "authorization".into(),
            credential_header: "authorization".into(),
            credential_scheme: crate::config::http::CredentialScheme::Bearer,
            x_forwarded_for: true,
            forwarded: false,
            via: "tollgate".into(),
            record_body_bytes: 0,
            mask_body_max: 1 << 20,
            mask_over_cap: crate::config::http::OverCap::Block,
            rules,
            default_action: RuleAction::Allow,
            record_message_bytes: 1024,
            websocket_max_frame: 1 << 20,
            allow_unrecorded_spdy: false,
            http2: None,
        };
        HttpRules::compile(&h).unwrap()
    }

    fn rule(name: &str, methods: &[&str], path: &str, action: RuleAction) -> HttpRule {
        HttpRule {
            name: name.into(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            path: path.into(),
            action,
            ..HttpRule::default()
        }
    }

    /// Judge a raw request head as the exchange does.
    fn judge(r: &HttpRules, head: &str, groups: &[&str]) -> (RuleAction, Option<String>) {
        let raw = format!("{head}\r\nHost: x\r\n\r\n");
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        let h = parse_request_head(&mut buf, &Limits::default())
            .unwrap()
            .unwrap();
        let query = parse_query(h.query().unwrap_or("")).unwrap();
        let kr = k8s::parse_request(h.method(), h.path(), k8s::query_watches(&query));
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let req = Request {
            method: h.method(),
            path: h.path(),
            query: &query,
            fields: h.fields(),
            groups: &groups,
            k8s: kr.as_ref(),
            json: None,
        };
        let (a, n) = r.judge(&req);
        (a, n.map(str::to_string))
    }

    #[test]
    fn first_match_wins_on_method_and_path() {
        let r = target(vec![
            rule("no-delete", &["DELETE"], "/items/{id}", RuleAction::Block),
            rule("admin", &[], "/admin/**", RuleAction::Audit),
            rule("one-level", &["GET"], "/v1/*/status", RuleAction::Block),
        ]);
        let name = |head: &str| judge(&r, head, &[]).1;
        assert_eq!(
            name("DELETE /items/7 HTTP/1.1").as_deref(),
            Some("no-delete")
        );
        assert_eq!(
            judge(&r, "DELETE /items/7/sub HTTP/1.1", &[]),
            (RuleAction::Allow, None)
        );
        assert_eq!(name("GET /items/7 HTTP/1.1"), None);
        assert_eq!(
            judge(&r, "POST /admin/a/b HTTP/1.1", &[]).0,
            RuleAction::Audit
        );
        assert_eq!(
            judge(&r, "GET /v1/x/status HTTP/1.1", &[]).0,
            RuleAction::Block
        );
        assert_eq!(
            judge(&r, "GET /v1/x/y/status HTTP/1.1", &[]).0,
            RuleAction::Allow
        );
    }

    #[test]
    fn query_header_and_group_conditions_all_must_hold() {
        let mut q = rule("no-force", &["POST"], "/deploy", RuleAction::Block);
        q.query = vec![("force".into(), "true".into())];
        let mut h = rule("json-only", &["PUT"], "/**", RuleAction::Block);
        h.headers = vec![("content-type".into(), "text/*".into())];
        let mut g = rule("ops-may-purge", &["POST"], "/purge", RuleAction::Allow);
        g.groups = vec!["ops".into()];
        let purge = rule("purge", &["POST"], "/purge", RuleAction::Block);
        let r = target(vec![q, h, g, purge]);
        let j = |head: &str, groups: &[&str]| judge(&r, head, groups).1;
        assert_eq!(
            j("POST /deploy?x=1&force=true HTTP/1.1", &[]).as_deref(),
            Some("no-force")
        );
        // Any of a repeated parameter's values; decoded before matching.
        assert_eq!(
            j("POST /deploy?force=no&force=%74rue HTTP/1.1", &[]).as_deref(),
            Some("no-force")
        );
        assert_eq!(j("POST /deploy?force=false HTTP/1.1", &[]), None);
        assert_eq!(j("POST /deploy HTTP/1.1", &[]), None);
        assert_eq!(
            j("PUT /a HTTP/1.1\r\nContent-Type: text/plain", &[]).as_deref(),
            Some("json-only")
        );
        assert_eq!(
            j("PUT /a HTTP/1.1\r\nContent-Type: application/json", &[]),
            None
        );
        assert_eq!(
            j("POST /purge HTTP/1.1", &["dev", "ops"]).as_deref(),
            Some("ops-may-purge")
        );
        assert_eq!(
            j("POST /purge HTTP/1.1", &["dev"]).as_deref(),
            Some("purge")
        );
    }

    #[test]
    fn kubernetes_conditions_read_as_rbac_reads_them() {
        let k = |verbs: &[&str], resources: &[&str], namespaces: &[&str]| K8sMatch {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            ..K8sMatch::default()
        };
        let mut oncall = rule("oncall-exec", &[], "/**", RuleAction::Allow);
        oncall.groups = vec!["oncall".into()];
        oncall.k8s = Some(k(&["create"], &["pods/exec"], &["prod"]));
        let mut exec = rule("no-exec-prod", &[], "/**", RuleAction::Block);
        exec.k8s = Some(k(&[], &["pods/exec", "pods/attach"], &["prod"]));
        let mut ns = rule("no-namespace-delete", &[], "/**", RuleAction::Block);
        ns.k8s = Some(k(&["delete", "deletecollection"], &["namespaces"], &[]));
        let mut scale = rule("any-scale", &[], "/**", RuleAction::Audit);
        scale.k8s = Some(k(&["*"], &["*/scale"], &[]));
        let r = target(vec![oncall, exec, ns, scale]);
        let j = |head: &str, groups: &[&str]| judge(&r, head, groups).1;
        let exec_post =
            "POST /api/v1/namespaces/prod/pods/web-1/exec?command=sh&stdin=true HTTP/1.1";
        let exec_ws = "GET /api/v1/namespaces/prod/pods/web-1/exec?command=sh HTTP/1.1";
        assert_eq!(j(exec_post, &["oncall"]).as_deref(), Some("oncall-exec"));
        assert_eq!(j(exec_ws, &["oncall"]).as_deref(), Some("oncall-exec"));
        assert_eq!(j(exec_post, &["dev"]).as_deref(), Some("no-exec-prod"));
        assert_eq!(j(exec_ws, &[]).as_deref(), Some("no-exec-prod"));
        assert_eq!(
            j("POST /api/v1/namespaces/dev/pods/web-1/exec HTTP/1.1", &[]),
            None
        );
        // `pods/exec` is not `pods`: reading a pod is not an exec.
        assert_eq!(
            j("GET /api/v1/namespaces/prod/pods/web-1 HTTP/1.1", &[]),
            None
        );
        assert_eq!(
            j("DELETE /api/v1/namespaces/prod HTTP/1.1", &[]).as_deref(),
            Some("no-namespace-delete")
        );
        assert_eq!(
            j("DELETE /api/v1/namespaces HTTP/1.1", &[]).as_deref(),
            Some("no-namespace-delete")
        );
        assert_eq!(j("GET /api/v1/namespaces/prod HTTP/1.1", &[]), None);
        assert_eq!(
            j(
                "PUT /apis/apps/v1/namespaces/a/deployments/w/scale HTTP/1.1",
                &[]
            )
            .as_deref(),
            Some("any-scale")
        );
        // A request that is not a resource request never matches a k8s rule.
        assert_eq!(j("DELETE /healthz HTTP/1.1", &[]), None);
    }
}
