//! `tollgate_statements_shadow_total{shard,rule,verdict}`: statements a
//! shadow rule (or a policy in shadow mode) would have blocked or held.
//!
//! The rule label comes from configuration, so the label set is open: the
//! counters sit in a small map behind a mutex, one per shard. Only that
//! shard writes it and only when a shadow verdict happens (rare by design,
//! off the allow path); a scrape takes the lock briefly. Distinct rule
//! names are capped so reloads that rename rules cannot grow it without end.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Exposition;

/// Most distinct (rule, verdict) series one shard keeps; later ones are
/// counted under the rule name `other`.
pub const MAX_SHADOW_SERIES: usize = 1024;

/// Longest rule name kept as a label (config names are short; this bounds
/// the memory of a pathological one).
const MAX_RULE_LABEL: usize = 128;

/// One shard's shadow counters.
#[derive(Debug, Default)]
pub struct ShadowCounters {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl ShadowCounters {
    /// Counts one statement `rule` would have given `verdict`.
    pub fn add(&self, rule: &str, verdict: &'static str) {
        // A poisoned lock only means a panic elsewhere mid-update; the
        // counts are still usable.
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut rule = &rule[..rule.floor_char_boundary(MAX_RULE_LABEL)];
        if counts.len() >= MAX_SHADOW_SERIES && !counts.contains_key(&(rule.to_string(), verdict)) {
            rule = "other";
        }
        *counts.entry((rule.to_string(), verdict)).or_insert(0) += 1;
    }

    /// The count for one series (tests).
    pub fn get(&self, rule: &str, verdict: &'static str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .get(&(rule.to_string(), verdict))
            .copied()
            .unwrap_or(0)
    }
}

/// Renders the family for every shard (the family header even when empty,
/// so dashboards find it before the first shadow verdict).
pub fn render<'a>(e: &mut Exposition, shards: impl Iterator<Item = (usize, &'a ShadowCounters)>) {
    let name = "tollgate_statements_shadow_total";
    e.family(
        name,
        "counter",
        "Statements a shadow rule or a policy in shadow mode would have blocked or held, by rule and the verdict it would have given.",
    );
    for (shard, c) in shards {
        let counts = c.counts.lock().unwrap_or_else(|p| p.into_inner());
        let shard = shard.to_string();
        for ((rule, verdict), n) in counts.iter() {
            e.sample(
                name,
                &[("shard", &shard), ("rule", rule), ("verdict", verdict)],
                *n as f64,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_escaped_rule_labels_and_the_series_cap_holds() {
        let c = ShadowCounters::default();
        c.add("watch \"drops\"", "block");
        c.add("watch \"drops\"", "block");
        for i in 0..MAX_SHADOW_SERIES + 10 {
            c.add(&format!("r{i}"), "approve");
        }
        assert_eq!(c.get("watch \"drops\"", "block"), 2);
        assert_eq!(c.get("other", "approve"), 11);
        let mut e = Exposition::new();
        render(&mut e, [(0usize, &c)].into_iter());
        let text = e.finish();
        let s = crate::metrics::checker::check(&text).unwrap();
        assert!(!s.is_empty());
        assert!(
            text.contains(r#"rule="watch \"drops\"",verdict="block"} 2"#),
            "{text}"
        );
    }
}
