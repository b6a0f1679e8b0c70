//! The preset tables checked against each other, the classifier and README.

use super::*;
use crate::sql::{Classifier, Dialect};

fn dialect_and_sql(example: &str) -> (Dialect, &str) {
    match example.strip_prefix("my:") {
        Some(sql) => (Dialect::MYSQL, sql),
        None => (Dialect::POSTGRES, example),
    }
}

/// Whether some statement of `example` matches `selector`.
fn example_matches(example: &str, selector: Selector) -> bool {
    let (dialect, sql) = dialect_and_sql(example);
    let mut classifier = Classifier::new();
    let classified = classifier.classify(sql.as_bytes(), dialect);
    classified.statements().iter().any(|s| selector.matches(s))
}

fn member_selectors() -> Vec<(&'static str, Selector)> {
    MEMBERS
        .iter()
        .map(|m| {
            let selector = Selector::parse(m.selector)
                .unwrap_or_else(|| panic!("member {} is no selector", m.selector));
            (m.selector, selector)
        })
        .collect()
}

#[test]
fn every_member_is_a_selector_in_a_preset_and_its_example_matches() {
    let mut seen = std::collections::HashSet::new();
    for member in MEMBERS {
        assert!(seen.insert(member.selector), "{} twice", member.selector);
        assert!(
            member.presets().count() > 0,
            "{} in no preset",
            member.selector
        );
        let selector = Selector::parse(member.selector).unwrap();
        assert!(
            example_matches(member.example, selector),
            "example of {} does not match: {}",
            member.selector,
            member.example
        );
    }
}

/// A new class cannot be added without a decision (`class_info` is an
/// exhaustive match); here the decision is checked against `MEMBERS`.
#[test]
fn every_class_is_decided_and_the_decision_agrees_with_the_members() {
    let members = member_selectors();
    for class in StatementClass::ALL {
        let info = class_info(*class);
        let (dialect, sql) = dialect_and_sql(info.example);
        let mut classifier = Classifier::new();
        let got = classifier.classify(sql.as_bytes(), dialect);
        assert_eq!(
            got.statements().first().map(|s| s.class),
            Some(*class),
            "example of {class}: {sql}"
        );
        let whole = members.iter().any(|(name, _)| *name == class.as_str());
        let some_form = members.iter().any(|(_, s)| {
            base_classes(*s) == class_slice(*class) && !matches!(s, Selector::Class(_))
        });
        match info.membership {
            Membership::Whole => assert!(whole, "{class} is Whole but not a member"),
            Membership::Partial => {
                assert!(!whole && some_form, "{class} is Partial but no member form")
            }
            Membership::Benign(why) => {
                assert!(!why.is_empty());
                assert!(
                    !whole && !some_form,
                    "{class} is Benign but has member forms"
                );
            }
        }
    }
}

#[test]
fn every_feature_is_a_member_or_benign() {
    let members: Vec<&str> = MEMBERS.iter().map(|m| m.selector).collect();
    for name in Selector::feature_names() {
        let member = members.contains(&name);
        let benign = BENIGN_FEATURES.iter().any(|(n, _)| *n == name);
        assert!(
            member != benign,
            "feature {name}: member {member}, benign {benign}"
        );
    }
    for (name, _) in BENIGN_FEATURES {
        assert!(Selector::feature_names().any(|n| n == *name), "{name}");
    }
}

#[test]
fn every_create_and_alter_object_is_a_member_or_benign() {
    let members: Vec<&str> = MEMBERS.iter().map(|m| m.selector).collect();
    for (class, benign) in [("create", BENIGN_CREATE), ("alter", BENIGN_ALTER)] {
        for kind in ObjectKind::ALL {
            let name = format!("{class}_{kind}");
            let member = members.contains(&name.as_str());
            assert!(
                member != benign.contains(kind),
                "{name}: member {member}, benign {}",
                benign.contains(kind)
            );
        }
    }
}

#[test]
fn presets_have_their_issue_statements() {
    let matches = |preset: Preset, sql: &str| {
        let selectors = preset.selectors();
        let mut classifier = Classifier::new();
        let got = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
        got.statements()
            .iter()
            .any(|s| selectors.iter().any(|sel| sel.matches(s)))
    };
    for sql in [
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v",
        "DO $$ BEGIN DROP TABLE t; END $$",
        "DO $$ BEGIN EXECUTE 'DR' || 'OP TABLE t'; END $$",
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM t $$",
        "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM t $$",
        "CALL p()",
        "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM t",
        "CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN TRUNCATE t; RETURN NULL; END $$",
        "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION tf()",
        "DROP SCHEMA app CASCADE",
        "DROP OWNED BY app",
        "ALTER TABLE t DROP COLUMN c",
        "DELETE FROM t WHERE true",
        "UPDATE t SET v = 0 WHERE 'a' = 'a'",
        "COPY t TO PROGRAM 'rm -rf /'",
        "SELECT lo_unlink(16403)",
        "ALTER SYSTEM SET archive_command = 'x'",
        "CREATE EXTENSION plpython3u",
    ] {
        assert!(
            matches(Preset::Destructive, sql),
            "destructive misses {sql}"
        );
    }
    for sql in [
        "GRANT ALL ON t TO public",
        "REVOKE ALL ON t FROM app",
        "CREATE USER u SUPERUSER",
        "ALTER ROLE app CREATEROLE",
        "DROP ROLE app",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'",
        "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO public",
        "ALTER TABLE t OWNER TO mallory",
        "REASSIGN OWNED BY app TO mallory",
    ] {
        assert!(matches(Preset::Privilege, sql), "privilege misses {sql}");
    }
    for sql in [
        "COPY t TO '/tmp/x'",
        "COPY t TO PROGRAM 'curl h'",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_read_binary_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "SELECT lo_export(1, '/tmp/x')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT dblink_exec('host=h', 'x')",
        "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw",
        "CREATE USER MAPPING FOR public SERVER s",
        "CREATE FOREIGN TABLE f (a int) SERVER s",
    ] {
        assert!(
            matches(Preset::Exfiltration, sql),
            "exfiltration misses {sql}"
        );
    }
}

#[test]
fn missing_members_are_named_and_coverage_follows_classes() {
    let parse = |names: &[&str]| -> Vec<Selector> {
        names.iter().map(|n| Selector::parse(n).unwrap()).collect()
    };
    let partial = parse(&["drop_table", "truncate", "delete_without_where"]);
    let missing = Preset::Destructive.missing_from(&partial);
    assert!(missing.contains(&"drop"));
    assert!(missing.contains(&"tautological_where"));
    assert!(missing.contains(&"do"));
    assert!(!missing.contains(&"truncate"));
    assert!(Preset::Destructive.touched_by(&partial));
    // `drop` covers every drop_<object> member; `copy_program` its subsets.
    let broad = parse(&["drop", "copy_program", "delete", "update"]);
    let missing = Preset::Privilege.missing_from(&broad);
    assert!(!missing.contains(&"drop_role") && !missing.contains(&"drop_policy"));
    let missing = Preset::Destructive.missing_from(&broad);
    assert!(!missing.contains(&"copy_to_program"));
    assert!(!missing.contains(&"tautological_where"), "{missing:?}");
    assert!(missing.contains(&"merge_delete"));
    let everything: Vec<Selector> = Preset::Destructive.selectors();
    assert!(Preset::Destructive.missing_from(&everything).is_empty());
    assert!(!Preset::Exfiltration.touched_by(&parse(&["select"])));
}

/// README.md lists every class, feature and preset member: the section
/// between the markers is `readme_tables()`. Run with
/// `TOLLGATE_BLESS_README=1` to rewrite it after changing the tables.
#[test]
fn readme_lists_every_class_and_preset_member() {
    const BEGIN: &str = "<!-- presets:begin (generated by codecs/src/sql/presets.rs) -->\n";
    const END: &str = "<!-- presets:end -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (head, rest) = readme
        .split_once(BEGIN)
        .expect("README has no presets:begin marker");
    let (section, tail) = rest
        .split_once(END)
        .expect("README has no presets:end marker");
    let want = readme_tables();
    if section != want && std::env::var_os("TOLLGATE_BLESS_README").is_some() {
        std::fs::write(path, format!("{head}{BEGIN}{want}{END}{tail}")).unwrap();
        return;
    }
    assert_eq!(
        section, want,
        "README presets section is stale; rerun with TOLLGATE_BLESS_README=1"
    );
    for class in StatementClass::ALL {
        assert!(
            section.contains(&format!("| `{}` |", class.as_str())),
            "{class}"
        );
    }
    for name in Selector::feature_names() {
        assert!(section.contains(&format!("`{name}`")), "{name}");
    }
    for preset in Preset::ALL {
        assert!(
            readme.contains(&format!("preset = \"{}\"", preset.as_str())),
            "{preset:?}"
        );
    }
}
