//! Statement selectors: the names policy rules use in `classes = [...]`.
//!
//! A selector is one of
//! - a class name (`select`, `drop`, `truncate`, `unknown`, ... — see
//!   `StatementClass`); `prepare` also matches a PostgreSQL
//!   `PREPARE .. AS <stmt>`, whose class is its body's;
//! - `<class>_<object>`: a class acting on an object kind (`drop_database`,
//!   `create_role`, `alter_system`, `set_role`, `grant_role`, ...; kinds are
//!   listed in `ObjectKind`);
//! - a feature: `delete_without_where`, `update_without_where`, `copy_to`,
//!   `copy_from`, `copy_program`, `copy_to_program`, `copy_from_program`,
//!   `copy_file`, `copy_to_file`, `copy_from_file`, `copy_to_stdout`,
//!   `copy_from_stdin`, `explain_analyze`, `select_into`, `into_outfile`,
//!   `set_global`, `load_data_local`, `lexical_mode_change`, `with_cte`,
//!   `nested`, and the features of `features.rs`: `tautological_where`,
//!   `merge_delete`, `merge_update`, `alter_drop`, `alter_column_type`,
//!   `create_or_replace`, `security_definer`, `ownership_change`,
//!   `row_security_off`, `set_config_role`, `lo_unlink`, `server_file_read`,
//!   `server_file_write`, `dblink`.

use super::class::{Flags, ObjectKind, StatementClass};
use super::classify::Statement;

/// A compiled statement selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    Class(StatementClass),
    ClassObject(StatementClass, ObjectKind),
    Feature(Feature),
}

/// Features a selector can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    DeleteWithoutWhere,
    UpdateWithoutWhere,
    /// COPY with all of these flags.
    Copy(Flags),
    ExplainAnalyze,
    SelectInto,
    IntoOutfile,
    SetGlobal,
    LoadDataLocal,
    LexicalModeChange,
    WithCte,
    Nested,
    /// A statement carrying this feature flag (see `features.rs`).
    Flagged(Flags),
    /// `CREATE OR REPLACE` (replaces an existing definition).
    CreateOrReplace,
}

const FEATURES: &[(&str, Feature)] = &[
    ("delete_without_where", Feature::DeleteWithoutWhere),
    ("update_without_where", Feature::UpdateWithoutWhere),
    ("copy_to", Feature::Copy(Flags::COPY_TO)),
    ("copy_from", Feature::Copy(Flags::COPY_FROM)),
    ("copy_program", Feature::Copy(Flags::PROGRAM)),
    (
        "copy_to_program",
        Feature::Copy(Flags(Flags::COPY_TO.0 | Flags::PROGRAM.0)),
    ),
    (
        "copy_from_program",
        Feature::Copy(Flags(Flags::COPY_FROM.0 | Flags::PROGRAM.0)),
    ),
    ("copy_file", Feature::Copy(Flags::FILE)),
    (
        "copy_to_file",
        Feature::Copy(Flags(Flags::COPY_TO.0 | Flags::FILE.0)),
    ),
    (
        "copy_from_file",
        Feature::Copy(Flags(Flags::COPY_FROM.0 | Flags::FILE.0)),
    ),
    (
        "copy_to_stdout",
        Feature::Copy(Flags(Flags::COPY_TO.0 | Flags::STDIO.0)),
    ),
    (
        "copy_from_stdin",
        Feature::Copy(Flags(Flags::COPY_FROM.0 | Flags::STDIO.0)),
    ),
    ("explain_analyze", Feature::ExplainAnalyze),
    ("select_into", Feature::SelectInto),
    ("into_outfile", Feature::IntoOutfile),
    ("set_global", Feature::SetGlobal),
    ("load_data_local", Feature::LoadDataLocal),
    ("lexical_mode_change", Feature::LexicalModeChange),
    ("with_cte", Feature::WithCte),
    ("nested", Feature::Nested),
    ("tautological_where", Feature::Flagged(Flags::TAUTOLOGY)),
    ("merge_delete", Feature::Flagged(Flags::MERGE_DELETE)),
    ("merge_update", Feature::Flagged(Flags::MERGE_UPDATE)),
    ("alter_drop", Feature::Flagged(Flags::ALTER_DROP)),
    ("alter_column_type", Feature::Flagged(Flags::ALTER_TYPE)),
    ("create_or_replace", Feature::CreateOrReplace),
    (
        "security_definer",
        Feature::Flagged(Flags::SECURITY_DEFINER),
    ),
    ("ownership_change", Feature::Flagged(Flags::OWNER_CHANGE)),
    (
        "row_security_off",
        Feature::Flagged(Flags::ROW_SECURITY_OFF),
    ),
    ("set_config_role", Feature::Flagged(Flags::SET_CONFIG_ROLE)),
    ("lo_unlink", Feature::Flagged(Flags::LO_UNLINK)),
    (
        "server_file_read",
        Feature::Flagged(Flags::SERVER_FILE_READ),
    ),
    (
        "server_file_write",
        Feature::Flagged(Flags::SERVER_FILE_WRITE),
    ),
    ("dblink", Feature::Flagged(Flags::DBLINK)),
];

impl Selector {
    /// Parses a selector name; `None` if it names nothing.
    pub fn parse(name: &str) -> Option<Selector> {
        if let Some(&(_, feature)) = FEATURES.iter().find(|(n, _)| *n == name) {
            return Some(Selector::Feature(feature));
        }
        if let Some(class) = StatementClass::from_name(name) {
            return Some(Selector::Class(class));
        }
        // `<class>_<object>`; both parts may contain underscores.
        name.match_indices('_').find_map(|(at, _)| {
            let class = StatementClass::from_name(&name[..at])?;
            let object = ObjectKind::from_name(&name[at + 1..])?;
            Some(Selector::ClassObject(class, object))
        })
    }

    /// Every feature name, for documentation and error messages.
    pub fn feature_names() -> impl Iterator<Item = &'static str> {
        FEATURES.iter().map(|(n, _)| *n)
    }

    /// Whether the statement is what this selector names.
    pub fn matches(self, s: &Statement) -> bool {
        use StatementClass as C;
        match self {
            Selector::Class(C::Prepare) => s.class == C::Prepare || s.has(Flags::PREPARE),
            Selector::Class(class) => s.class == class,
            Selector::ClassObject(class, object) => s.class == class && s.object == object,
            Selector::Feature(feature) => match feature {
                Feature::DeleteWithoutWhere => s.class == C::Delete && !s.has(Flags::HAS_WHERE),
                Feature::UpdateWithoutWhere => s.class == C::Update && !s.has(Flags::HAS_WHERE),
                Feature::Copy(flags) => s.class == C::Copy && s.has(flags),
                Feature::ExplainAnalyze => s.has(Flags::EXPLAIN_ANALYZE),
                Feature::SelectInto => s.class == C::Select && s.has(Flags::SELECT_INTO),
                Feature::IntoOutfile => s.has(Flags::INTO_OUTFILE),
                Feature::SetGlobal => s.class == C::Set && s.has(Flags::GLOBAL),
                Feature::LoadDataLocal => s.class == C::LoadData && s.has(Flags::LOCAL),
                Feature::LexicalModeChange => s.has(Flags::LEXICAL_MODE),
                Feature::WithCte => s.has(Flags::WITH),
                Feature::Nested => s.has(Flags::NESTED),
                Feature::Flagged(flag) => s.has(flag),
                Feature::CreateOrReplace => s.class == C::Create && s.has(Flags::OR_REPLACE),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sql::{Classifier, Dialect};

    fn matches(selector: &str, sql: &str) -> bool {
        let selector = Selector::parse(selector).unwrap();
        let mut classifier = Classifier::new();
        let classified = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
        classified.statements().iter().any(|s| selector.matches(s))
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Selector::parse("drop"),
            Some(Selector::Class(StatementClass::Drop))
        );
        assert_eq!(
            Selector::parse("drop_database"),
            Some(Selector::ClassObject(
                StatementClass::Drop,
                ObjectKind::Database
            ))
        );
        assert_eq!(
            Selector::parse("create_foreign_data_wrapper"),
            Some(Selector::ClassObject(
                StatementClass::Create,
                ObjectKind::ForeignDataWrapper
            ))
        );
        assert_eq!(
            Selector::parse("load_data"),
            Some(Selector::Class(StatementClass::LoadData))
        );
        assert!(matches!(
            Selector::parse("copy_to_program"),
            Some(Selector::Feature(_))
        ));
        assert_eq!(Selector::parse("drop_the_bass"), None);
        assert_eq!(Selector::parse(""), None);
    }

    #[test]
    fn matches_statements() {
        assert!(matches("drop_database", "DROP DATABASE x"));
        assert!(!matches("drop_database", "DROP TABLE x"));
        assert!(matches("drop", "DROP TABLE x"));
        assert!(matches("delete_without_where", "DELETE FROM t"));
        assert!(!matches(
            "delete_without_where",
            "DELETE FROM t WHERE a = 1"
        ));
        assert!(matches(
            "update_without_where",
            "EXPLAIN ANALYZE UPDATE t SET a = 1"
        ));
        assert!(matches("copy_to_program", "COPY t TO PROGRAM 'x'"));
        assert!(!matches("copy_to_program", "COPY t FROM PROGRAM 'x'"));
        assert!(matches("copy_program", "COPY t FROM PROGRAM 'x'"));
        assert!(matches("prepare", "PREPARE p AS SELECT 1"));
        assert!(matches("alter_system", "ALTER SYSTEM SET a = 1"));
        assert!(matches(
            "delete",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT 1"
        ));
    }
}
