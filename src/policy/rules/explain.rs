//! Why each rule did or did not match a statement (`tollgate policy
//! explain`). The criteria are checked by the same matchers `evaluate`
//! uses (`rule_matches`' globs, keyword automaton, regex), one at a time so
//! the first that fails can be named; the verdict itself always comes from
//! `Policy::evaluate`, never from this trace.

use tollgate_codecs::sql::{Classified, Statement, StatementClass};

use super::{ActionKind, Caller, CompiledRule, Policy, Work};

/// One rule's outcome for one statement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub action: ActionKind,
    pub shadow: bool,
    /// Whether every criterion held.
    pub matched: bool,
    /// The first criterion that failed, or what matching meant.
    pub why: String,
}

impl Policy {
    /// Every rule's outcome for statement `s` of `c`, in rule order.
    pub fn trace(&self, c: &Classified<'_>, s: &Statement, caller: &Caller<'_>) -> Vec<RuleTrace> {
        let mut work = Work::default();
        work.reset(self, caller);
        work.begin_statement();
        self.rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let failed = if !work.applies[index] {
                    Some("not for this caller (subjects/groups)".to_string())
                } else {
                    self.first_failed(rule, index, c, s, &mut work)
                };
                RuleTrace {
                    rule: rule.name.clone(),
                    action: rule.action,
                    shadow: rule.shadow,
                    matched: failed.is_none(),
                    why: failed.unwrap_or_else(|| "every criterion matched".into()),
                }
            })
            .collect()
    }

    /// The first criterion of `rule` the statement fails, described.
    fn first_failed(
        &self,
        rule: &CompiledRule,
        index: usize,
        c: &Classified<'_>,
        s: &Statement,
        work: &mut Work,
    ) -> Option<String> {
        if s.class == StatementClass::Unknown {
            return (!rule.names_unknown).then(|| {
                "the statement is unclassified and the rule does not name `unknown`".into()
            });
        }
        if !rule.selectors.is_empty() && !rule.selectors.iter().any(|sel| sel.matches(s)) {
            return Some("no selector in classes/preset names this statement".into());
        }
        if rule.has_functions && !work.function_hit(self, c, s, index) {
            return Some("no called function matches `functions`".into());
        }
        if rule.has_relations && !work.relation_hit(self, c, s, index) {
            return Some("no referenced relation matches `relations`".into());
        }
        if rule.has_keywords && !work.keyword_hit(self, c, s, index) {
            return Some("no keyword of `keywords` in the normalized text".into());
        }
        if let Some(regex) = &rule.regex {
            work.ensure_normalized(c, s);
            if !regex.is_match(&work.normalized) {
                return Some("`regex` does not match the normalized text".into());
            }
        }
        // Same answer as the evaluator's matcher (kept in step by a test).
        debug_assert!(self.rule_matches(rule, index, c, s, work));
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::rules::{EvalScratch, PolicyConfig, PreparedVerdicts};
    use tollgate_codecs::sql::{Classifier, Dialect};

    fn policy(toml_text: &str) -> Policy {
        let cfg: PolicyConfig = toml::from_str(toml_text).unwrap();
        Policy::compile(&cfg).unwrap()
    }

    const RULES: &str = r#"
[[rules]]
name = "ops-only"
action = "allow"
groups = ["ops"]
[[rules]]
name = "no-cards"
action = "block"
relations = ["payments.*"]
[[rules]]
name = "watch-truncate"
action = "block"
classes = ["truncate"]
shadow = true
[[rules]]
name = "no-drop"
action = "block"
classes = ["drop"]
"#;

    #[test]
    fn names_the_first_failed_criterion_of_every_rule() {
        let p = policy(RULES);
        let caller = Caller {
            subject: "ci",
            groups: &[],
        };
        let mut classifier = Classifier::new();
        let c = classifier.classify(b"DROP TABLE payments.cards", Dialect::POSTGRES);
        let s = c.statements()[0];
        let t = p.trace(&c, &s, &caller);
        assert_eq!(t.len(), 4);
        assert!(!t[0].matched && t[0].why.contains("caller"), "{t:?}");
        assert!(t[1].matched, "{t:?}");
        assert!(!t[2].matched && t[2].why.contains("selector"), "{t:?}");
        assert!(t[3].matched, "{t:?}");
    }

    #[test]
    fn the_trace_agrees_with_evaluate_on_the_deciding_rule() {
        let p = policy(RULES);
        let groups = ["ops".to_string()];
        for (sql, groups) in [
            ("DROP TABLE t", &[][..]),
            ("TRUNCATE t", &[][..]),
            ("SELECT * FROM payments.cards", &[][..]),
            ("SELECT 1", &groups[..]),
            ("SELECT 1", &[][..]),
        ] {
            let caller = Caller {
                subject: "ci",
                groups,
            };
            let v = p.evaluate(
                sql.as_bytes(),
                Dialect::POSTGRES,
                &caller,
                &mut EvalScratch::new(),
                &mut PreparedVerdicts::new(),
            );
            let mut classifier = Classifier::new();
            let c = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
            let t = p.trace(&c, &c.statements()[0], &caller);
            let first = t
                .iter()
                .find(|r| r.matched && !r.shadow)
                .map(|r| r.rule.as_str());
            let decided = match v.decided_by {
                super::super::DecidedBy::Rule { name, .. } => Some(name),
                _ => None,
            };
            assert_eq!(first, decided, "{sql}");
        }
    }
}
