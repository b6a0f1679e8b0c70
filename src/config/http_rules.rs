//! `[[target.http.rules]]`: what a rule may match on (method, path glob,
//! query parameters, header values, the caller's groups, and what a
//! Kubernetes API request asks for) and the checks on each.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::RuleAction;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: String,
    /// Methods (upper case); empty: any.
    #[serde(default)]
    methods: Vec<String>,
    /// Path glob: `*` within a segment, `**` across segments, `{param}`
    /// one segment; default `/**`.
    path: Option<String>,
    /// Query parameter → glob on its decoded value; a parameter given
    /// several times matches when any of its values does.
    #[serde(default)]
    query: BTreeMap<String, String>,
    /// Header name → glob on its value (any of its values).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Top-level field of a JSON request body → glob on its value (a
    /// string as it is, a number, `true`/`false` or `null` as written).
    #[serde(default)]
    json: BTreeMap<String, String>,
    /// The rule applies only to callers in one of these groups.
    #[serde(default)]
    groups: Vec<String>,
    /// What a Kubernetes API request asks for, RBAC style.
    k8s: Option<RawK8s>,
    action: RuleAction,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawK8s {
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
}

/// A Kubernetes condition: each list empty or holding `*` matches
/// anything; `resources` are written as RBAC writes them (`pods` is not
/// `pods/exec`; `pods/*` is every subresource of pods).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sMatch {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
    pub names: Vec<String>,
}

/// A validated rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRule {
    pub name: String,
    pub methods: Vec<String>,
    pub path: String,
    /// `(name, value glob)`, names as written (query names are case-sensitive).
    pub query: Vec<(String, String)>,
    /// `(lower-case name, value glob)`.
    pub headers: Vec<(String, String)>,
    /// `(top-level JSON field, value glob)`.
    pub json: Vec<(String, String)>,
    pub groups: Vec<String>,
    pub k8s: Option<K8sMatch>,
    pub action: RuleAction,
}

impl HttpRule {
    /// Whether the rule needs the request's decoded query.
    pub fn reads_query(&self) -> bool {
        !self.query.is_empty() || self.k8s.is_some()
    }

    /// Whether the rule needs the request's JSON body.
    pub fn reads_json(&self) -> bool {
        !self.json.is_empty()
    }
}

const K8S_VERBS: [&str; 10] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "*",
];

fn header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn value_glob(rule: &str, what: &str, glob: &str) -> Result<(), String> {
    crate::http::rules::compile_value(glob)
        .map(|_| ())
        .map_err(|e| format!("rule {rule:?}: {what}: {e}"))
}

fn k8s(rule: &str, raw: RawK8s) -> Result<K8sMatch, String> {
    let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_ascii_lowercase()).collect();
    let m = K8sMatch {
        verbs: lower(raw.verbs),
        api_groups: raw.api_groups,
        resources: lower(raw.resources),
        namespaces: raw.namespaces,
        names: raw.names,
    };
    if let Some(v) = m.verbs.iter().find(|v| !K8S_VERBS.contains(&v.as_str())) {
        return Err(format!(
            "rule {rule:?}: k8s verb {v:?} is not one the apiserver uses"
        ));
    }
    let bad_resource =
        |r: &String| r.is_empty() || r.split('/').count() > 2 || r.split('/').any(str::is_empty);
    if let Some(r) = m.resources.iter().find(|r| bad_resource(r)) {
        return Err(format!(
            "rule {rule:?}: k8s resource {r:?}: write `resource` or `resource/subresource`"
        ));
    }
    Ok(m)
}

/// Checks the rules; `token_header` is the caller's token header, which a
/// rule may not match on (it never reaches the rules' view of a request).
pub(super) fn validate(raw: Vec<RawRule>, token_header: &str) -> Result<Vec<HttpRule>, String> {
    let mut rules = Vec::with_capacity(raw.len());
    for r in raw {
        if r.name.is_empty() || r.name.len() > 128 {
            return Err("a rule needs a name of 1-128 bytes".into());
        }
        let name = r.name;
        let methods: Vec<String> = r.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        if methods.iter().any(|m| !header_name(m)) {
            return Err(format!("rule {name:?}: bad method"));
        }
        let path = r.path.unwrap_or_else(|| "/**".into());
        if !path.starts_with('/') {
            return Err(format!("rule {name:?}: path must start with /"));
        }
        crate::http::rules::compile_path(&path).map_err(|e| format!("rule {name:?}: {e}"))?;
        for (k, v) in &r.query {
            if k.is_empty() {
                return Err(format!("rule {name:?}: an empty query parameter name"));
            }
            value_glob(&name, &format!("query {k:?}"), v)?;
        }
        for (k, v) in &r.json {
            if k.is_empty() {
                return Err(format!("rule {name:?}: an empty JSON field name"));
            }
            value_glob(&name, &format!("json {k:?}"), v)?;
        }
        let mut headers = Vec::with_capacity(r.headers.len());
        for (k, v) in r.headers {
            let k = k.to_ascii_lowercase();
            if !header_name(&k) {
                return Err(format!("rule {name:?}: bad header name {k:?}"));
            }
            if k == token_header {
                return Err(format!(
                    "rule {name:?}: the caller's token header cannot be matched on"
                ));
            }
            value_glob(&name, &format!("header {k:?}"), &v)?;
            headers.push((k, v));
        }
        if r.groups.iter().any(String::is_empty) {
            return Err(format!("rule {name:?}: an empty group name"));
        }
        let k8s = r.k8s.map(|k| k8s(&name, k)).transpose()?;
        rules.push(HttpRule {
            methods,
            path,
            query: r.query.into_iter().collect(),
            json: r.json.into_iter().collect(),
            headers,
            groups: r.groups,
            k8s,
            action: r.action,
            name,
        });
    }
    Ok(rules)
}
