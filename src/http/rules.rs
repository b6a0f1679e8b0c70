//! `[target.http]` rules compiled: method and path glob (`*` within one
//! segment, `**` across segments, `{param}` one segment), first match wins.

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::config::http::{HttpTarget, RuleAction};

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

struct Rule {
    name: String,
    methods: Vec<String>,
    path: GlobMatcher,
    action: RuleAction,
}

/// A target's rules, compiled once per configuration snapshot.
pub struct HttpRules {
    rules: Vec<Rule>,
    default_action: RuleAction,
}

impl HttpRules {
    pub fn compile(h: &HttpTarget) -> Result<HttpRules, String> {
        let mut rules = Vec::with_capacity(h.rules.len());
        for r in &h.rules {
            rules.push(Rule {
                name: r.name.clone(),
                methods: r.methods.clone(),
                path: compile_path(&r.path).map_err(|e| format!("rule {:?}: {e}", r.name))?,
                action: r.action,
            });
        }
        Ok(HttpRules {
            rules,
            default_action: h.default_action,
        })
    }

    /// The action for a request and the rule that chose it (`None`: the
    /// default). `path` is the request's path without its query.
    pub fn judge(&self, method: &str, path: &str) -> (RuleAction, Option<&str>) {
        for r in &self.rules {
            let method_ok = r.methods.is_empty() || r.methods.iter().any(|m| m == method);
            if method_ok && r.path.is_match(path) {
                return (r.action, Some(r.name.as_str()));
            }
        }
        (self.default_action, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::http::HttpRule;

    fn rules(list: &[(&str, &[&str], &str, RuleAction)]) -> HttpRules {
        let h = HttpTarget {
            token_header: "authorization".into(),
            credential_header: "authorization".into(),
            credential_scheme: crate::config::http::CredentialScheme::Bearer,
            x_forwarded_for: true,
            forwarded: false,
            via: "tollgate".into(),
            record_body_bytes: 0,
            rules: list
                .iter()
                .map(|(n, m, p, a)| HttpRule {
                    name: n.to_string(),
                    methods: m.iter().map(|s| s.to_string()).collect(),
                    path: p.to_string(),
                    action: *a,
                })
                .collect(),
            default_action: RuleAction::Allow,
            record_message_bytes: 1024,
            websocket_max_frame: 1 << 20,
            allow_unrecorded_spdy: false,
        };
        HttpRules::compile(&h).unwrap()
    }

    #[test]
    fn first_match_wins_on_method_and_path() {
        let r = rules(&[
            ("no-delete", &["DELETE"], "/items/{id}", RuleAction::Block),
            ("admin", &[], "/admin/**", RuleAction::Audit),
            ("one-level", &["GET"], "/v1/*/status", RuleAction::Block),
        ]);
        assert_eq!(r.judge("DELETE", "/items/7").1, Some("no-delete"));
        assert_eq!(r.judge("DELETE", "/items/7/sub"), (RuleAction::Allow, None));
        assert_eq!(r.judge("GET", "/items/7"), (RuleAction::Allow, None));
        assert_eq!(r.judge("POST", "/admin/a/b").0, RuleAction::Audit);
        assert_eq!(r.judge("GET", "/v1/x/status").0, RuleAction::Block);
        assert_eq!(r.judge("GET", "/v1/x/y/status").0, RuleAction::Allow);
    }
}
