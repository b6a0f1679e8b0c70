//! Unit tests for shadow rules and the shadow policy mode: the enforced
//! verdict is what the rules after a shadow rule decide, and the shadow
//! verdict is reported only when it is stricter.

use super::*;

fn policy(toml_text: &str) -> Policy {
    let config: PolicyConfig = toml::from_str(toml_text).unwrap();
    Policy::compile(&config).unwrap()
}

fn eval<'p>(p: &'p Policy, sql: &str) -> Verdict<'p> {
    let caller = Caller {
        subject: "ci",
        groups: &[],
    };
    p.evaluate(
        sql.as_bytes(),
        Dialect::POSTGRES,
        &caller,
        &mut EvalScratch::new(),
        &mut PreparedVerdicts::new(),
    )
}

const RULES: &str = r#"
[[rules]]
name = "watch-truncate"
action = "block"
classes = ["truncate"]
shadow = true
[[rules]]
name = "watch-drops"
action = "approve"
classes = ["drop"]
shadow = true
[[rules]]
name = "no-drop"
action = "block"
classes = ["drop"]
"#;

#[test]
fn a_shadow_rule_decides_nothing_and_reports_a_stricter_verdict() {
    let p = policy(RULES);
    let v = eval(&p, "TRUNCATE t");
    assert_eq!(v.action, Action::Allow);
    assert_eq!(v.decided_by, DecidedBy::Unmatched);
    assert_eq!(
        v.shadow,
        Some(Shadow {
            action: ActionKind::Block,
            rule: "watch-truncate"
        })
    );
    // The rule after the shadow one enforces; the shadow approve is not
    // stricter than that block, so nothing is reported.
    let v = eval(&p, "DROP TABLE t");
    assert_eq!(v.kind(), ActionKind::Block);
    assert!(matches!(
        v.decided_by,
        DecidedBy::Rule {
            name: "no-drop",
            ..
        }
    ));
    assert_eq!(v.shadow, None);
    assert_eq!(eval(&p, "SELECT 1").shadow, None);
    // The strictest shadow verdict of a multi-statement string is kept.
    let v = eval(&p, "SELECT 1; TRUNCATE t; SELECT 2");
    assert_eq!(v.kind(), ActionKind::Allow);
    assert_eq!(v.shadow.map(|s| s.rule), Some("watch-truncate"));
}

#[test]
fn shadow_mode_audits_what_it_would_refuse_including_the_defaults() {
    let p = policy(&format!("mode = \"shadow\"\n{RULES}"));
    assert_eq!(p.mode(), PolicyMode::Shadow);
    let v = eval(&p, "DROP TABLE t");
    assert_eq!(v.kind(), ActionKind::Audit);
    assert_eq!(
        v.shadow,
        Some(Shadow {
            action: ActionKind::Block,
            rule: "no-drop"
        })
    );
    // Unclassifiable text: the unclassified default (block) is shadowed too.
    let v = eval(&p, "FROBNICATE the database");
    assert_eq!(v.kind(), ActionKind::Audit);
    assert_eq!(v.shadow.map(|s| s.rule), Some("unclassified"));
    assert_eq!(eval(&p, "SELECT 1").kind(), ActionKind::Allow);
    assert_eq!(eval(&p, "SELECT 1").shadow, None);
}

#[test]
fn shadow_is_off_by_default_and_serializes_only_when_set() {
    let config: PolicyConfig =
        toml::from_str("[[rules]]\nname = \"a\"\naction = \"block\"\n").unwrap();
    assert_eq!(config.mode, PolicyMode::Enforce);
    assert!(!config.rules[0].shadow);
    let text = toml::to_string(&config).unwrap();
    assert!(!text.contains("shadow") && !text.contains("mode"), "{text}");
    assert!(toml::from_str::<PolicyConfig>("mode = \"dry\"\n").is_err());
}
