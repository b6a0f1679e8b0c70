//! Judging one statement: the first matching rule, with shadow rules and
//! the shadow policy mode turning what they would refuse into a reported
//! shadow verdict (see `RuleConfig::shadow`, `PolicyMode`).

use tollgate_codecs::sql::{Classified, Statement, StatementClass};

use super::{ActionKind, CompiledRule, Policy, PolicyMode, StoredDecider, Work};

impl Policy {
    /// The name a verdict shows for what decided it.
    pub(super) fn decider_name(&self, d: StoredDecider) -> &str {
        match d {
            StoredDecider::Rule(i) => self
                .rules
                .get(i as usize)
                .map_or("unclassified", |r| r.name.as_str()),
            StoredDecider::Unclassified => "unclassified",
            StoredDecider::Unmatched => "unmatched",
            StoredDecider::Empty => "empty",
        }
    }

    /// The policy's mode (`enforce` or `shadow`).
    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    /// One statement's verdict as enforced: shadow rules and shadow mode
    /// turn what would stop it into a recorded shadow verdict and an audit.
    pub(super) fn judge(
        &self,
        c: &Classified<'_>,
        s: &Statement,
        work: &mut Work,
    ) -> (ActionKind, StoredDecider) {
        let (mut judged, shadow_hit) = self.judge_rules(c, s, work);
        let mut would = shadow_hit.filter(|h| h.0 > judged.0);
        if self.mode == PolicyMode::Shadow && judged.0 > ActionKind::Audit {
            would = Some(would.map_or(judged, |h| if h.0 > judged.0 { h } else { judged }));
            judged.0 = ActionKind::Audit;
        }
        if let Some(hit) = would
            && work.shadow.is_none_or(|best| hit.0 > best.0)
        {
            work.shadow = Some(hit);
        }
        judged
    }

    /// The first non-shadow rule matching one statement (or the default
    /// that applies), and the first shadow rule that matched before it.
    fn judge_rules(
        &self,
        c: &Classified<'_>,
        s: &Statement,
        work: &mut Work,
    ) -> (
        (ActionKind, StoredDecider),
        Option<(ActionKind, StoredDecider)>,
    ) {
        work.begin_statement();
        let mut shadow = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if !work.applies[index] || !self.rule_matches(rule, index, c, s, work) {
                continue;
            }
            let decided = (rule.action, StoredDecider::Rule(index as u32));
            if !rule.shadow {
                return (decided, shadow);
            }
            shadow.get_or_insert(decided);
        }
        if s.class == StatementClass::Unknown {
            return ((self.unclassified, StoredDecider::Unclassified), shadow);
        }
        ((self.unmatched, StoredDecider::Unmatched), shadow)
    }

    /// Whether every criterion of `rule` holds for the statement. An
    /// unclassified statement matches only rules that name `unknown`.
    pub(super) fn rule_matches(
        &self,
        rule: &CompiledRule,
        index: usize,
        c: &Classified<'_>,
        s: &Statement,
        work: &mut Work,
    ) -> bool {
        if s.class == StatementClass::Unknown {
            return rule.names_unknown;
        }
        if !rule.selectors.is_empty() && !rule.selectors.iter().any(|sel| sel.matches(s)) {
            return false;
        }
        if rule.has_functions && !work.function_hit(self, c, s, index) {
            return false;
        }
        if rule.has_relations && !work.relation_hit(self, c, s, index) {
            return false;
        }
        if rule.has_keywords && !work.keyword_hit(self, c, s, index) {
            return false;
        }
        if let Some(regex) = &rule.regex {
            work.ensure_normalized(c, s);
            if !regex.is_match(&work.normalized) {
                return false;
            }
        }
        true
    }
}
