//! Rule presets in policy configuration: `preset = "destructive"` compiles
//! to the preset's selectors, and `tollgate check` warns about policies that
//! block part of a preset by name but leave the rest of it open.

use tollgate_codecs::sql::{Preset, Selector};

use super::config::{ActionKind, PolicyConfig, RuleError};

/// The selectors a rule's `preset` stands for.
pub(crate) fn preset_selectors(rule: &str, preset: &str) -> Result<Vec<Selector>, RuleError> {
    Preset::from_name(preset.trim())
        .map(Preset::selectors)
        .ok_or_else(|| RuleError::UnknownPreset {
            rule: rule.to_string(),
            preset: preset.to_string(),
        })
}

/// Warnings for a policy whose enforcing rules (block or approve) name some
/// members of a preset in `classes` while no enforcing rule uses that
/// preset and members stay uncovered: each says which rules, what is
/// missing, and suggests the preset. Invalid policies give none (their
/// error is reported instead).
pub fn preset_warnings(policy: &PolicyConfig) -> Vec<String> {
    let enforcing = || {
        policy
            .rules
            .iter()
            .filter(|r| matches!(r.action, ActionKind::Block | ActionKind::Approve))
    };
    let mut named = Vec::new();
    for rule in enforcing() {
        for class in &rule.classes {
            if let Some(selector) = Selector::parse(class.trim()) {
                named.push((rule.name.as_str(), selector));
            }
        }
    }
    let selectors: Vec<Selector> = named.iter().map(|(_, s)| *s).collect();
    let mut warnings = Vec::new();
    for preset in Preset::ALL {
        let used = enforcing().any(|r| {
            r.preset
                .as_deref()
                .is_some_and(|p| p.trim() == preset.as_str())
        });
        if used || !preset.touched_by(&selectors) {
            continue;
        }
        let missing = preset.missing_from(&selectors);
        if missing.is_empty() {
            continue;
        }
        let mut rules: Vec<&str> = named
            .iter()
            .filter(|(_, s)| preset.touched_by(std::slice::from_ref(s)))
            .map(|(rule, _)| *rule)
            .collect();
        rules.dedup();
        warnings.push(format!(
            "rule(s) {} block some {} statements by name but not: {}; add a rule with preset = \"{}\" to cover them all",
            rules
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            preset.as_str(),
            missing.join(", "),
            preset.as_str(),
        ));
    }
    warnings
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(toml_rules: &str) -> PolicyConfig {
        toml::from_str(toml_rules).unwrap()
    }

    #[test]
    fn a_partial_destructive_list_is_warned_about() {
        let p = policy(
            "[[rules]]\nname = \"no-drop\"\naction = \"block\"\nclasses = [\"drop_table\", \"truncate\"]\n",
        );
        let w = preset_warnings(&p);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("\"no-drop\""), "{}", w[0]);
        assert!(w[0].contains("destructive"), "{}", w[0]);
        assert!(w[0].contains("merge_delete") && w[0].contains("tautological_where"));
        assert!(w[0].contains("preset = \"destructive\""));
        assert!(!w[0].contains(" truncate,"), "{}", w[0]);
    }

    #[test]
    fn presets_in_use_audit_rules_and_unrelated_rules_are_quiet() {
        for rules in [
            "[[rules]]\nname = \"a\"\naction = \"block\"\nclasses = [\"drop_table\"]\n\
             [[rules]]\nname = \"b\"\naction = \"approve\"\npreset = \"destructive\"\n",
            "[[rules]]\nname = \"a\"\naction = \"audit\"\nclasses = [\"drop_table\"]\n",
            "[[rules]]\nname = \"a\"\naction = \"block\"\nclasses = [\"select\", \"insert\"]\n",
        ] {
            assert!(preset_warnings(&policy(rules)).is_empty(), "{rules}");
        }
    }

    #[test]
    fn an_unknown_preset_is_an_error_naming_the_rule() {
        let p = policy("[[rules]]\nname = \"x\"\naction = \"block\"\npreset = \"everything\"\n");
        assert_eq!(
            p.validate(),
            Err(RuleError::UnknownPreset {
                rule: "x".into(),
                preset: "everything".into()
            })
        );
    }
}
