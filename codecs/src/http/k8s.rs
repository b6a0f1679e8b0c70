//! What a Kubernetes API request asks for, read from its method, path and
//! query the way the kube-apiserver reads it before authorization (its
//! `RequestInfoFactory`): API group and version, verb, namespace,
//! resource, subresource and name. Rules can then be written the way RBAC
//! is (`delete` on `namespaces`, `create` on `pods/exec` in `prod`)
//! instead of as path globs.
//!
//! Paths that are not resource requests (`/healthz`, `/version`, `/api`,
//! `/apis/apps`) give `None`. The path is taken as sent; the gateway
//! refuses a path that is not in normal form before this is asked, so a
//! segment here is what the apiserver decodes it to.
//!
//! Verbs follow the apiserver: `get` without a name is `list`, with
//! `watch=true` it is `watch`; `delete` without a name is
//! `deletecollection`; the deprecated `/watch/` and `/proxy/` prefixes give
//! `watch` and `proxy`. One difference, on purpose: a `GET` of the
//! connect subresources `exec`, `attach` and `portforward` (how
//! WebSocket clients open them) is `create`, as the apiserver has
//! authorized it since 1.30, so one rule covers both transports.

/// A resource request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sRequest {
    /// Empty for the core group (`/api/v1`).
    pub api_group: String,
    pub api_version: String,
    pub verb: String,
    /// Empty for a cluster-scoped resource.
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// Subresources a `GET` opens a stream on, authorized as `create`.
const CONNECT_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];

/// Go's `strconv.ParseBool` true values (how the apiserver reads `watch=`).
fn go_true(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

fn method_verb(method: &str) -> Option<&'static str> {
    Some(match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => return None,
    })
}

/// Reads a request; `watch` is whether the decoded query has a true
/// `watch` parameter. `None`: not a resource request.
pub fn parse_request(method: &str, path: &str, watch: bool) -> Option<K8sRequest> {
    let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The gateway refuses such paths first; never read one as a resource.
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let (group, rest) = match parts.first().copied() {
        Some("api") if parts.len() >= 3 => (String::new(), 2),
        Some("apis") if parts.len() >= 4 => (parts[1].to_string(), 3),
        _ => return None,
    };
    let version = parts[rest - 1].to_string();
    parts.drain(..rest);
    let mut verb = match parts[0] {
        "watch" | "proxy" if parts.len() > 1 => {
            let v = parts.remove(0);
            v.to_string()
        }
        _ => method_verb(method)?.to_string(),
    };
    let mut namespace = String::new();
    if parts[0] == "namespaces" && parts.len() > 1 {
        namespace = parts[1].to_string();
        // `namespaces/{ns}/status` and `/finalize` are the namespace's own.
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    let resource = parts[0].to_string();
    let name = parts.get(1).map_or_else(String::new, |s| s.to_string());
    let subresource = match parts.get(2) {
        Some(s) if verb != "proxy" => s.to_string(),
        _ => String::new(),
    };
    if name.is_empty() && verb == "get" {
        verb = if watch { "watch" } else { "list" }.into();
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    if verb == "get" && CONNECT_SUBRESOURCES.contains(&subresource.as_str()) {
        verb = "create".into();
    }
    Some(K8sRequest {
        api_group: group,
        api_version: version,
        verb,
        namespace,
        resource,
        subresource,
        name,
    })
}

/// Whether the decoded query asks for a watch.
pub fn query_watches(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(k, v)| k == "watch" && go_true(v))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(method: &str, path: &str) -> K8sRequest {
        parse_request(method, path, false).unwrap()
    }

    fn verb_ns_res_sub_name(k: &K8sRequest) -> [&str; 5] {
        [&k.verb, &k.namespace, &k.resource, &k.subresource, &k.name].map(String::as_str)
    }

    #[test]
    fn resources_read_as_the_apiserver_reads_them() {
        let cases: &[(&str, &str, [&str; 5])] = &[
            (
                "GET",
                "/api/v1/namespaces/prod/pods",
                ["list", "prod", "pods", "", ""],
            ),
            (
                "GET",
                "/api/v1/namespaces/prod/pods/web-1",
                ["get", "prod", "pods", "", "web-1"],
            ),
            (
                "POST",
                "/api/v1/namespaces/prod/pods/web-1/exec",
                ["create", "prod", "pods", "exec", "web-1"],
            ),
            (
                "GET",
                "/api/v1/namespaces/prod/pods/web-1/exec",
                ["create", "prod", "pods", "exec", "web-1"],
            ),
            (
                "GET",
                "/api/v1/namespaces/prod/pods/web-1/log",
                ["get", "prod", "pods", "log", "web-1"],
            ),
            (
                "DELETE",
                "/api/v1/namespaces/prod",
                ["delete", "prod", "namespaces", "", "prod"],
            ),
            (
                "DELETE",
                "/api/v1/namespaces",
                ["deletecollection", "", "namespaces", "", ""],
            ),
            (
                "PUT",
                "/api/v1/namespaces/prod/finalize",
                ["update", "prod", "namespaces", "finalize", "prod"],
            ),
            ("GET", "/api/v1/nodes/n1", ["get", "", "nodes", "", "n1"]),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/prod/deployments",
                ["deletecollection", "prod", "deployments", "", ""],
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/prod/deployments/web/scale",
                ["patch", "prod", "deployments", "scale", "web"],
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/prod/pods",
                ["watch", "prod", "pods", "", ""],
            ),
            (
                "GET",
                "/api/v1/proxy/namespaces/prod/pods/web-1/a/b",
                ["proxy", "prod", "pods", "", "web-1"],
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                verb_ns_res_sub_name(&r(method, path)),
                *want,
                "{method} {path}"
            );
        }
        let d = r(
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/web/scale",
        );
        assert_eq!(
            (d.api_group.as_str(), d.api_version.as_str()),
            ("apps", "v1")
        );
        assert_eq!(r("GET", "/api/v1/pods").api_group, "");
        let w = parse_request("GET", "/api/v1/namespaces/prod/pods", true).unwrap();
        assert_eq!(w.verb, "watch");
    }

    #[test]
    fn non_resource_paths_and_unknown_methods_are_none() {
        for path in [
            "/",
            "/healthz",
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/openapi/v3",
        ] {
            assert_eq!(parse_request("GET", path, false), None, "{path}");
        }
        assert_eq!(parse_request("OPTIONS", "/api/v1/pods", false), None);
    }

    #[test]
    fn watch_parameter_is_read_as_go_reads_booleans() {
        let p = |v: &str| vec![("watch".to_string(), v.to_string())];
        for v in ["1", "true", "True", "TRUE", "t"] {
            assert!(query_watches(&p(v)), "{v}");
        }
        for v in ["0", "false", "yes", ""] {
            assert!(!query_watches(&p(v)), "{v}");
        }
    }
}
