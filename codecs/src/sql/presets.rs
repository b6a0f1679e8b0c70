//! Rule presets: `destructive`, `privilege` and `exfiltration`, each a set
//! of statement selectors, versioned with the classifier.
//!
//! Complete by construction: `class_info` is an exhaustive match over
//! `StatementClass` (a new class does not compile until it is given a
//! membership: whole class in presets, partly through the selectors of
//! `MEMBERS`, or benign with a reason), every feature selector is either in
//! `MEMBERS` or in `BENIGN_FEATURES`, and every CREATE/ALTER object kind is
//! either a member or in `BENIGN_CREATE` / `BENIGN_ALTER`. The unit tests
//! enumerate all of them, classify every example, and check the tables
//! agree with each other.

use super::class::{ObjectKind, StatementClass};
use super::selector::{Feature, Selector};

/// Bumped whenever a preset's membership changes, so an operator can see
/// which preset definitions a build enforces (`tollgate check` prints it).
pub const PRESET_VERSION: u32 = 1;

/// A named preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Removes or rewrites data or schema, including every way to run SQL
    /// the gateway cannot see (DO, routine/rule/trigger bodies, CALL,
    /// COPY ... PROGRAM, extensions, ALTER SYSTEM).
    Destructive,
    /// Changes who may do what: grants, roles, session identity, security
    /// definer routines, default privileges, ownership, row security.
    Privilege,
    /// Moves data or files past the gateway: server files, programs, other
    /// servers (dblink, foreign data wrappers, publications).
    Exfiltration,
}

impl Preset {
    pub const ALL: &'static [Preset] =
        &[Preset::Destructive, Preset::Privilege, Preset::Exfiltration];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Destructive => "destructive",
            Preset::Privilege => "privilege",
            Preset::Exfiltration => "exfiltration",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.iter().copied().find(|p| p.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The selector names this preset is made of, in table order.
    pub fn member_names(self) -> impl Iterator<Item = &'static str> {
        MEMBERS
            .iter()
            .filter(move |m| m.presets & self.bit() != 0)
            .map(|m| m.selector)
    }

    /// The compiled selectors of this preset.
    pub fn selectors(self) -> Vec<Selector> {
        self.member_names().filter_map(Selector::parse).collect()
    }

    /// Members of this preset that none of `selectors` covers (names, in
    /// table order): what a rule naming `selectors` would let through.
    pub fn missing_from(self, selectors: &[Selector]) -> Vec<&'static str> {
        self.member_names()
            .filter(|name| Selector::parse(name).is_none_or(|member| !covered(selectors, member)))
            .collect()
    }

    /// Whether `selectors` cover at least one member of this preset.
    pub fn touched_by(self, selectors: &[Selector]) -> bool {
        self.selectors()
            .iter()
            .any(|member| selectors.iter().any(|s| covers(*s, *member)))
    }
}

const D: u8 = 1 << Preset::Destructive as u8;
const P: u8 = 1 << Preset::Privilege as u8;
const E: u8 = 1 << Preset::Exfiltration as u8;

/// One preset member: a selector, the presets it belongs to, an example
/// PostgreSQL statement it matches (MySQL where marked `my:`), and what it
/// means.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub selector: &'static str,
    presets: u8,
    pub example: &'static str,
    pub what: &'static str,
}

impl Member {
    pub fn presets(&self) -> impl Iterator<Item = Preset> + '_ {
        Preset::ALL
            .iter()
            .copied()
            .filter(|p| self.presets & p.bit() != 0)
    }
}

const fn m(
    selector: &'static str,
    presets: u8,
    example: &'static str,
    what: &'static str,
) -> Member {
    Member {
        selector,
        presets,
        example,
        what,
    }
}

/// Every selector that is in a preset. The one table of preset membership
/// (kept one member per line, to be read down like the README table).
#[rustfmt::skip]
pub const MEMBERS: &[Member] = &[
    // Removing or rewriting data and schema.
    m("drop", D, "DROP SCHEMA app CASCADE", "any DROP (tables, schemas, DROP OWNED BY, ...)"),
    m("truncate", D, "TRUNCATE accounts", "TRUNCATE"),
    m("delete_without_where", D, "DELETE FROM accounts", "DELETE with no WHERE"),
    m("update_without_where", D, "UPDATE accounts SET balance = 0", "UPDATE with no WHERE"),
    m("tautological_where", D, "DELETE FROM accounts WHERE 1 = 1", "DELETE/UPDATE whose WHERE does not depend on the row"),
    m("merge_delete", D, "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", "MERGE that deletes matched rows"),
    m("merge_update", D, "MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET v = 0", "MERGE that updates matched rows"),
    m("alter_drop", D, "ALTER TABLE accounts DROP COLUMN balance", "ALTER ... DROP (column, constraint, default, member)"),
    m("alter_column_type", D, "ALTER TABLE t ALTER COLUMN v TYPE int USING 0", "ALTER TABLE ... TYPE (rewrites every row)"),
    m("create_or_replace", D, "CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE OR REPLACE (replaces a definition)"),
    m("lo_unlink", D, "SELECT lo_unlink(16403)", "removes a large object"),
    m("alter_system", D, "ALTER SYSTEM SET archive_command = 'sh x'", "ALTER SYSTEM (server configuration)"),
    m("set_global", D, "my:SET GLOBAL read_only = 0", "MySQL SET GLOBAL/PERSIST"),
    m("purge", D, "my:PURGE BINARY LOGS BEFORE NOW()", "MySQL PURGE (removes logs)"),
    m("clone", D, "my:CLONE LOCAL DATA DIRECTORY = '/tmp/x'", "MySQL CLONE"),
    m("replication", D, "my:CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h'", "MySQL replication control"),
    m("create_subscription", D | E, "CREATE SUBSCRIPTION s CONNECTION 'host=h' PUBLICATION p", "pulls another server's rows into local tables"),
    m("alter_subscription", D | E, "ALTER SUBSCRIPTION s REFRESH PUBLICATION", "changes a subscription"),
    // Running SQL or code the gateway cannot see.
    m("do", D, "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", "anonymous code block"),
    m("call", D, "CALL wipe()", "CALL of a procedure"),
    m("create_function", D, "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'", "defines a function body"),
    m("create_procedure", D, "CREATE PROCEDURE p() LANGUAGE sql AS 'DELETE FROM t'", "defines a procedure body"),
    m("create_rule", D, "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM t", "query rewrite rule"),
    m("create_trigger", D, "CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f()", "trigger (runs a function on writes)"),
    m("create_event_trigger", D, "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", "event trigger"),
    m("create_extension", D | E, "CREATE EXTENSION dblink", "runs an extension's install script"),
    m("alter_extension", D, "ALTER EXTENSION x UPDATE", "runs an extension's update script"),
    m("create_language", D, "CREATE LANGUAGE plperlu", "adds a procedural language"),
    m("create_aggregate", D, "CREATE AGGREGATE a (int) (SFUNC = f, STYPE = int)", "aggregate calling routines on every row"),
    m("create_operator", D, "CREATE OPERATOR === (FUNCTION = f, LEFTARG = int, RIGHTARG = int)", "operator bound to a routine"),
    m("create_cast", D, "CREATE CAST (int AS text) WITH FUNCTION f(int)", "cast bound to a routine"),
    m("load", D, "LOAD 'plpgsql'", "loads a shared library"),
    m("install", D, "my:INSTALL PLUGIN p SONAME 'p.so'", "MySQL plugin install"),
    m("uninstall", D, "my:UNINSTALL PLUGIN p", "MySQL plugin removal"),
    m("binlog", D, "my:BINLOG 'AAAA'", "MySQL BINLOG (replays events)"),
    m("copy_program", D | E, "COPY t TO PROGRAM 'sh -c x'", "COPY ... PROGRAM (a shell command)"),
    m("copy_to_program", D | E, "COPY t TO PROGRAM 'curl -d @- h'", "COPY ... TO PROGRAM"),
    m("copy_from_program", D | E, "COPY t FROM PROGRAM 'cat /etc/passwd'", "COPY ... FROM PROGRAM"),
    // Privileges.
    m("grant", P, "GRANT ALL ON accounts TO public", "GRANT (privileges or role membership)"),
    m("revoke", P, "REVOKE SELECT ON accounts FROM auditor", "REVOKE"),
    m("create_role", P, "CREATE ROLE admin2 SUPERUSER LOGIN", "CREATE ROLE/USER/GROUP"),
    m("alter_role", P, "ALTER ROLE app SUPERUSER", "ALTER ROLE/USER/GROUP"),
    m("drop_role", P, "DROP ROLE auditor", "DROP ROLE/USER/GROUP"),
    m("set_role", P, "SET ROLE postgres", "SET ROLE / SET SESSION AUTHORIZATION"),
    m("set_config_role", P, "SELECT set_config('role', 'postgres', false)", "set_config of the role or session authorization"),
    m("security_definer", P, "ALTER FUNCTION f() SECURITY DEFINER", "routine running with its owner's rights"),
    m("alter_default_privileges", P, "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO public", "default privileges"),
    m("ownership_change", P, "ALTER TABLE accounts OWNER TO mallory", "ALTER ... OWNER TO"),
    m("reassign_owned", P, "REASSIGN OWNED BY app TO mallory", "REASSIGN OWNED"),
    m("security_label", P, "SECURITY LABEL ON TABLE t IS 'x'", "SECURITY LABEL"),
    m("create_policy", P, "CREATE POLICY p ON t USING (true)", "row security policy"),
    m("alter_policy", P, "ALTER POLICY p ON t USING (true)", "row security policy change"),
    m("drop_policy", P, "DROP POLICY p ON t", "row security policy removal"),
    m("row_security_off", P, "ALTER TABLE t DISABLE ROW LEVEL SECURITY", "turns row security off"),
    // Exfiltration.
    m("copy_file", E, "COPY t TO '/tmp/t.csv'", "COPY to or from a server file"),
    m("copy_to_file", D | E, "COPY t TO '/var/lib/postgresql/x'", "COPY ... TO a server file (writes it)"),
    m("copy_from_file", E, "COPY t FROM '/etc/passwd'", "COPY ... FROM a server file"),
    m("server_file_read", E, "SELECT pg_read_file('/etc/passwd')", "pg_read_file, pg_read_binary_file, pg_ls_dir, pg_stat_file, lo_import, ..."),
    m("server_file_write", D | E, "SELECT lo_export(16403, '/tmp/x')", "lo_export, pg_file_write, pg_file_rename, pg_file_unlink"),
    m("dblink", E, "SELECT * FROM dblink('host=h', 'select 1') AS x(a int)", "dblink functions"),
    m("create_server", E, "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", "foreign server"),
    m("alter_server", E, "ALTER SERVER s OPTIONS (SET host 'h')", "foreign server change"),
    m("create_user_mapping", E, "CREATE USER MAPPING FOR public SERVER s", "user mapping"),
    m("alter_user_mapping", E, "ALTER USER MAPPING FOR public SERVER s OPTIONS (ADD user 'u')", "user mapping change"),
    m("create_foreign_table", E, "CREATE FOREIGN TABLE f (a int) SERVER s", "foreign table"),
    m("alter_foreign_table", E, "ALTER FOREIGN TABLE f OPTIONS (ADD table_name 'x')", "foreign table change"),
    m("create_foreign_data_wrapper", E, "CREATE FOREIGN DATA WRAPPER w", "foreign data wrapper"),
    m("alter_foreign_data_wrapper", E, "ALTER FOREIGN DATA WRAPPER w OPTIONS (ADD x '1')", "foreign data wrapper change"),
    m("import", E, "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO app", "IMPORT FOREIGN SCHEMA"),
    m("create_publication", E, "CREATE PUBLICATION p FOR ALL TABLES", "publishes tables to subscribers"),
    m("alter_publication", E, "ALTER PUBLICATION p ADD TABLE accounts", "publication change"),
    m("into_outfile", E, "my:SELECT * FROM t INTO OUTFILE '/tmp/x'", "MySQL INTO OUTFILE/DUMPFILE"),
    m("load_data", E, "my:LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "MySQL LOAD DATA"),
];

/// Feature selectors in no preset, and why.
pub const BENIGN_FEATURES: &[(&str, &str)] = &[
    (
        "copy_to",
        "COPY ... TO STDOUT goes through the gateway; files and programs are members",
    ),
    (
        "copy_from",
        "COPY ... FROM STDIN goes through the gateway; files and programs are members",
    ),
    ("copy_to_stdout", "through the gateway, recorded"),
    ("copy_from_stdin", "through the gateway, recorded"),
    (
        "explain_analyze",
        "the statement takes the explained statement's class",
    ),
    ("select_into", "creates a new table"),
    (
        "load_data_local",
        "MySQL reads a client file the client sends",
    ),
    (
        "lexical_mode_change",
        "handled by the lexer, not a preset matter",
    ),
    (
        "with_cte",
        "a shape; nested data-modifying statements are judged themselves",
    ),
    (
        "nested",
        "a shape; nested data-modifying statements are judged themselves",
    ),
];

/// Object kinds whose CREATE is in no preset (creating runs no code and
/// removes nothing; CREATE OR REPLACE is the `create_or_replace` member).
pub const BENIGN_CREATE: &[ObjectKind] = &[
    ObjectKind::None,
    ObjectKind::Other,
    ObjectKind::Database,
    ObjectKind::Schema,
    ObjectKind::Table,
    ObjectKind::Index,
    ObjectKind::View,
    ObjectKind::MaterializedView,
    ObjectKind::Sequence,
    ObjectKind::Event,
    ObjectKind::Type,
    ObjectKind::Domain,
    ObjectKind::Tablespace,
    ObjectKind::Collation,
    ObjectKind::Conversion,
    ObjectKind::Statistics,
    ObjectKind::TextSearch,
    ObjectKind::Transform,
    ObjectKind::AccessMethod,
    ObjectKind::DefaultPrivileges,
    ObjectKind::LargeObject,
    ObjectKind::Owned,
    ObjectKind::System,
    ObjectKind::Instance,
    ObjectKind::Plugin,
    ObjectKind::Transaction,
];

/// Object kinds whose ALTER is in no preset as a whole: the dangerous ALTER
/// forms are the `alter_drop`, `alter_column_type`, `ownership_change`,
/// `security_definer` and `row_security_off` features, for every kind.
pub const BENIGN_ALTER: &[ObjectKind] = &[
    ObjectKind::None,
    ObjectKind::Other,
    ObjectKind::Database,
    ObjectKind::Schema,
    ObjectKind::Table,
    ObjectKind::Index,
    ObjectKind::View,
    ObjectKind::MaterializedView,
    ObjectKind::Function,
    ObjectKind::Procedure,
    ObjectKind::Sequence,
    ObjectKind::Trigger,
    ObjectKind::EventTrigger,
    ObjectKind::Event,
    ObjectKind::Type,
    ObjectKind::Domain,
    ObjectKind::Rule,
    ObjectKind::Tablespace,
    ObjectKind::Collation,
    ObjectKind::Conversion,
    ObjectKind::Language,
    ObjectKind::Operator,
    ObjectKind::Aggregate,
    ObjectKind::Statistics,
    ObjectKind::TextSearch,
    ObjectKind::Cast,
    ObjectKind::Transform,
    ObjectKind::AccessMethod,
    ObjectKind::LargeObject,
    ObjectKind::Owned,
    ObjectKind::Instance,
    ObjectKind::Plugin,
    ObjectKind::Transaction,
];

/// How a statement class relates to the presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// The whole class is a member of these presets (its name is in
    /// `MEMBERS`).
    Whole,
    /// Some forms are members, through `<class>_<object>` or feature
    /// selectors in `MEMBERS`.
    Partial,
    /// In no preset, with the reason.
    Benign(&'static str),
}

/// A statement class's membership and an example statement
/// (`my:` marks a MySQL one).
#[derive(Clone, Copy, Debug)]
pub struct ClassInfo {
    pub membership: Membership,
    pub example: &'static str,
}

const fn whole(example: &'static str) -> ClassInfo {
    ClassInfo {
        membership: Membership::Whole,
        example,
    }
}

const fn partial(example: &'static str) -> ClassInfo {
    ClassInfo {
        membership: Membership::Partial,
        example,
    }
}

const fn benign(example: &'static str, why: &'static str) -> ClassInfo {
    ClassInfo {
        membership: Membership::Benign(why),
        example,
    }
}

const READS: &str = "reads or inspects; calls of dangerous functions are features in any statement";
const SESSION: &str = "session or transaction control";
const MAINTENANCE: &str = "maintenance that keeps the data";

/// Every statement class's preset membership. Exhaustive on purpose: a new
/// class does not compile until someone decides.
pub fn class_info(class: StatementClass) -> ClassInfo {
    use StatementClass as C;
    match class {
        C::Unknown => benign(
            "SELECT 'unterminated",
            "decided by the policy's `unclassified` action (default block)",
        ),
        C::Select => benign("SELECT * FROM accounts", READS),
        C::Insert => benign("INSERT INTO accounts VALUES (11, 'x', 1)", "adds rows"),
        C::Update => partial("UPDATE accounts SET balance = 0 WHERE id = 1"),
        C::Delete => partial("DELETE FROM accounts WHERE id = 1"),
        C::Merge => partial(
            "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
        ),
        C::Replace => benign("my:REPLACE INTO t VALUES (1)", "MySQL keyed upsert"),
        C::Copy => partial("COPY accounts TO STDOUT"),
        C::LoadData => whole("my:LOAD DATA INFILE '/etc/passwd' INTO TABLE t"),
        C::Load => whole("LOAD 'plpgsql'"),
        C::Create => partial("CREATE TABLE t (id int)"),
        C::Alter => partial("ALTER TABLE t ADD COLUMN note text"),
        C::Drop => whole("DROP TABLE t"),
        C::Truncate => whole("TRUNCATE t"),
        C::Rename => benign("my:RENAME TABLE a TO b", "renames; nothing removed"),
        C::Grant => whole("GRANT SELECT ON t TO app"),
        C::Revoke => whole("REVOKE SELECT ON t FROM app"),
        C::Set => partial("SET search_path = app"),
        C::Reset => benign("RESET ALL", "returns to the login's settings"),
        C::Show => benign("SHOW search_path", READS),
        C::Use => benign("my:USE app", SESSION),
        C::Explain => benign("EXPLAIN SELECT 1", "plans without running"),
        C::Describe => benign("my:DESCRIBE t", READS),
        C::Prepare => benign(
            "my:PREPARE s FROM 'SELECT 1'",
            "the prepared body is judged by its own class",
        ),
        C::Execute => benign(
            "EXECUTE s",
            "judged by the verdict remembered for the prepared statement",
        ),
        C::Deallocate => benign("DEALLOCATE s", SESSION),
        C::Begin => benign("BEGIN", SESSION),
        C::Commit => benign("COMMIT", SESSION),
        C::Rollback => benign("ROLLBACK", SESSION),
        C::Savepoint => benign("SAVEPOINT a", SESSION),
        C::Release => benign("RELEASE SAVEPOINT a", SESSION),
        C::Vacuum => benign("VACUUM t", MAINTENANCE),
        C::Analyze => benign("ANALYZE t", MAINTENANCE),
        C::Checkpoint => benign("CHECKPOINT", MAINTENANCE),
        C::Reindex => benign("REINDEX TABLE t", MAINTENANCE),
        C::Cluster => benign("CLUSTER t USING t_pkey", MAINTENANCE),
        C::Comment => benign("COMMENT ON TABLE t IS 'x'", "documentation"),
        C::SecurityLabel => whole("SECURITY LABEL ON TABLE t IS 'x'"),
        C::Refresh => benign(
            "REFRESH MATERIALIZED VIEW v",
            "recomputes from its definition",
        ),
        C::Lock => benign("LOCK TABLE t", SESSION),
        C::Unlock => benign("my:UNLOCK TABLES", SESSION),
        C::Listen => benign("LISTEN c", SESSION),
        C::Notify => benign("NOTIFY c", SESSION),
        C::Unlisten => benign("UNLISTEN c", SESSION),
        C::Discard => benign("DISCARD ALL", SESSION),
        C::Do => whole("DO $$ BEGIN NULL; END $$"),
        C::Call => whole("CALL p()"),
        C::Declare => benign("DECLARE c CURSOR FOR SELECT 1", READS),
        C::Fetch => benign("FETCH 1 FROM c", READS),
        C::Move => benign("MOVE 1 IN c", READS),
        C::Close => benign("CLOSE c", SESSION),
        C::Import => whole("IMPORT FOREIGN SCHEMA public FROM SERVER s INTO app"),
        C::ReassignOwned => whole("REASSIGN OWNED BY a TO b"),
        C::Handler => benign("my:HANDLER t OPEN", READS),
        C::Flush => benign("my:FLUSH TABLES", MAINTENANCE),
        C::Kill => benign(
            "my:KILL 42",
            "ends a session, touches no data: name `kill` in a rule",
        ),
        C::Install => whole("my:INSTALL PLUGIN p SONAME 'p.so'"),
        C::Uninstall => whole("my:UNINSTALL PLUGIN p"),
        C::Optimize => benign("my:OPTIMIZE TABLE t", MAINTENANCE),
        C::Repair => benign("my:REPAIR TABLE t", MAINTENANCE),
        C::CheckTable => benign("my:CHECK TABLE t", MAINTENANCE),
        C::Checksum => benign("my:CHECKSUM TABLE t", READS),
        C::Purge => whole("my:PURGE BINARY LOGS BEFORE NOW()"),
        C::Shutdown => benign(
            "my:SHUTDOWN",
            "availability, not data: name `shutdown` in a rule",
        ),
        C::Restart => benign(
            "my:RESTART",
            "availability, not data: name `restart` in a rule",
        ),
        C::Clone => whole("my:CLONE LOCAL DATA DIRECTORY = '/tmp/x'"),
        C::Xa => benign("my:XA START 'x'", SESSION),
        C::Help => benign("my:HELP 'select'", READS),
        C::Signal => benign("my:SIGNAL SQLSTATE '45000'", "raises an error"),
        C::GetDiagnostics => benign("my:GET DIAGNOSTICS @n = NUMBER", READS),
        C::Binlog => whole("my:BINLOG 'AAAA'"),
        C::CacheIndex => benign("my:CACHE INDEX t IN c", MAINTENANCE),
        C::Replication => whole("my:STOP REPLICA"),
    }
}

/// The classes a selector is confined to: a statement it matches always
/// has one of these classes. Empty: any class (function features).
fn base_classes(selector: Selector) -> &'static [StatementClass] {
    use super::class::Flags;
    use StatementClass as C;
    match selector {
        Selector::Class(C::Prepare) => &[],
        Selector::Class(class) => class_slice(class),
        Selector::ClassObject(class, _) => class_slice(class),
        Selector::Feature(feature) => match feature {
            Feature::DeleteWithoutWhere => &[C::Delete],
            Feature::UpdateWithoutWhere => &[C::Update],
            Feature::Copy(_) => &[C::Copy],
            Feature::SelectInto => &[C::Select],
            Feature::SetGlobal => &[C::Set],
            Feature::LoadDataLocal => &[C::LoadData],
            Feature::CreateOrReplace => &[C::Create],
            Feature::Flagged(f) if f == Flags::TAUTOLOGY => &[C::Delete, C::Update],
            Feature::Flagged(f) if f == Flags::MERGE_DELETE || f == Flags::MERGE_UPDATE => {
                &[C::Merge]
            }
            Feature::Flagged(f)
                if f == Flags::ALTER_DROP
                    || f == Flags::ALTER_TYPE
                    || f == Flags::OWNER_CHANGE
                    || f == Flags::ROW_SECURITY_OFF =>
            {
                &[C::Alter]
            }
            Feature::Flagged(f) if f == Flags::SECURITY_DEFINER => &[C::Create, C::Alter],
            _ => &[],
        },
    }
}

fn class_slice(class: StatementClass) -> &'static [StatementClass] {
    StatementClass::ALL
        .iter()
        .position(|c| *c == class)
        .and_then(|i| StatementClass::ALL.get(i..=i))
        .unwrap_or_default()
}

/// Whether every statement `member` matches is matched by one of
/// `selectors` (`delete` and `update` together cover `tautological_where`).
pub fn covered(selectors: &[Selector], member: Selector) -> bool {
    if selectors.iter().any(|s| covers(*s, member)) {
        return true;
    }
    let base = base_classes(member);
    !base.is_empty()
        && base
            .iter()
            .all(|c| *c != StatementClass::Prepare && selectors.contains(&Selector::Class(*c)))
}

/// Whether every statement `inner` matches is also matched by `outer`.
pub fn covers(outer: Selector, inner: Selector) -> bool {
    if outer == inner {
        return true;
    }
    match (outer, inner) {
        (Selector::Class(StatementClass::Prepare), _) => false,
        (Selector::Class(class), _) => {
            let base = base_classes(inner);
            !base.is_empty() && base.iter().all(|c| *c == class)
        }
        (Selector::Feature(Feature::Copy(outer)), Selector::Feature(Feature::Copy(inner))) => {
            inner.contains(outer)
        }
        _ => false,
    }
}

/// The README section listing every class, feature and preset member,
/// generated from the tables above (a test keeps README.md equal to it).
pub fn readme_tables() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Preset definitions version {PRESET_VERSION}.\n");
    let _ = writeln!(out, "| selector | presets | example | what |");
    let _ = writeln!(out, "|---|---|---|---|");
    for member in MEMBERS {
        let presets: Vec<&str> = member.presets().map(Preset::as_str).collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            member.selector,
            presets.join(", "),
            example_text(member.example),
            member.what
        );
    }
    let _ = writeln!(
        out,
        "\nStatement classes (`classes = [\"<class>\"]`, or `<class>_<object>`):\n"
    );
    let _ = writeln!(out, "| class | presets | example |");
    let _ = writeln!(out, "|---|---|---|");
    for class in StatementClass::ALL {
        let info = class_info(*class);
        let membership = match info.membership {
            Membership::Whole => {
                let presets: Vec<&str> = MEMBERS
                    .iter()
                    .filter(|m| m.selector == class.as_str())
                    .flat_map(|m| m.presets().map(Preset::as_str))
                    .collect();
                presets.join(", ")
            }
            Membership::Partial => "some forms (see above)".to_string(),
            Membership::Benign(why) => format!("none: {why}"),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            class.as_str(),
            membership,
            example_text(info.example)
        );
    }
    let _ = writeln!(out, "\nFeatures in no preset:\n");
    let _ = writeln!(out, "| feature | why |");
    let _ = writeln!(out, "|---|---|");
    for (name, why) in BENIGN_FEATURES {
        let _ = writeln!(out, "| `{name}` | {why} |");
    }
    out
}

/// An example as a README table cell: `my:` becomes a `(MySQL)` note;
/// `|` would end the cell.
fn example_text(example: &str) -> String {
    match example.strip_prefix("my:") {
        Some(sql) => format!("`{}` (MySQL)", sql.replace('|', "\\|")),
        None => format!("`{}`", example.replace('|', "\\|")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
