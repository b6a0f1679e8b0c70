//! What a classified statement is: its class, the kind of object it acts
//! on, and feature flags, each with the stable snake_case name that policy
//! rules and audit records use.

macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        #[repr(u8)]
        $vis enum $name {
            #[default]
            $($variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable snake_case name used in policy files and records.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value a snake_case name stands for.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// The class of a statement, from its leading keywords. `Unknown` (the
    /// first, default value) is anything the classifier could not place:
    /// an unrecognised head, a lexer error, nesting past the limit.
    pub enum StatementClass {
        Unknown = "unknown",
        Select = "select",
        Insert = "insert",
        Update = "update",
        Delete = "delete",
        Merge = "merge",
        Replace = "replace",
        Copy = "copy",
        LoadData = "load_data",
        Load = "load",
        Create = "create",
        Alter = "alter",
        Drop = "drop",
        Truncate = "truncate",
        Rename = "rename",
        Grant = "grant",
        Revoke = "revoke",
        Set = "set",
        Reset = "reset",
        Show = "show",
        Use = "use",
        Explain = "explain",
        Describe = "describe",
        Prepare = "prepare",
        Execute = "execute",
        Deallocate = "deallocate",
        Begin = "begin",
        Commit = "commit",
        Rollback = "rollback",
        Savepoint = "savepoint",
        Release = "release",
        Vacuum = "vacuum",
        Analyze = "analyze",
        Checkpoint = "checkpoint",
        Reindex = "reindex",
        Cluster = "cluster",
        Comment = "comment",
        SecurityLabel = "security_label",
        Refresh = "refresh",
        Lock = "lock",
        Unlock = "unlock",
        Listen = "listen",
        Notify = "notify",
        Unlisten = "unlisten",
        Discard = "discard",
        Do = "do",
        Call = "call",
        Declare = "declare",
        Fetch = "fetch",
        Move = "move",
        Close = "close",
        Import = "import",
        ReassignOwned = "reassign_owned",
        Handler = "handler",
        Flush = "flush",
        Kill = "kill",
        Install = "install",
        Uninstall = "uninstall",
        Optimize = "optimize",
        Repair = "repair",
        CheckTable = "check_table",
        Checksum = "checksum",
        Purge = "purge",
        Shutdown = "shutdown",
        Restart = "restart",
        Clone = "clone",
        Xa = "xa",
        Help = "help",
        Signal = "signal",
        GetDiagnostics = "get_diagnostics",
        Binlog = "binlog",
        CacheIndex = "cache_index",
        Replication = "replication",
    }
}

named_enum! {
    /// What a create/alter/drop (or grant, comment, reindex, set...) acts on.
    pub enum ObjectKind {
        None = "none",
        Other = "other",
        Database = "database",
        Schema = "schema",
        Table = "table",
        Index = "index",
        View = "view",
        MaterializedView = "materialized_view",
        Function = "function",
        Procedure = "procedure",
        Role = "role",
        Extension = "extension",
        Sequence = "sequence",
        Trigger = "trigger",
        EventTrigger = "event_trigger",
        Event = "event",
        Type = "type",
        Domain = "domain",
        Policy = "policy",
        Rule = "rule",
        Server = "server",
        ForeignTable = "foreign_table",
        ForeignDataWrapper = "foreign_data_wrapper",
        UserMapping = "user_mapping",
        Tablespace = "tablespace",
        Publication = "publication",
        Subscription = "subscription",
        Collation = "collation",
        Conversion = "conversion",
        Language = "language",
        Operator = "operator",
        Aggregate = "aggregate",
        Statistics = "statistics",
        TextSearch = "text_search",
        Cast = "cast",
        Transform = "transform",
        AccessMethod = "access_method",
        DefaultPrivileges = "default_privileges",
        LargeObject = "large_object",
        Owned = "owned",
        System = "system",
        Instance = "instance",
        Plugin = "plugin",
        Transaction = "transaction",
    }
}

/// Feature bits of a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

impl Flags {
    /// A WHERE at the statement's own level (not in a subquery, string or
    /// comment).
    pub const HAS_WHERE: Flags = Flags(1);
    /// Began with a WITH clause.
    pub const WITH: Flags = Flags(1 << 1);
    /// A data-modifying statement nested inside another (a CTE body, a
    /// `COPY (...)` query); `parent` says which.
    pub const NESTED: Flags = Flags(1 << 2);
    /// `EXPLAIN ANALYZE <stmt>`: the class is the explained statement's,
    /// because it runs.
    pub const EXPLAIN_ANALYZE: Flags = Flags(1 << 3);
    /// PostgreSQL `PREPARE name AS <stmt>`: the class is the body's.
    pub const PREPARE: Flags = Flags(1 << 4);
    pub const COPY_TO: Flags = Flags(1 << 5);
    pub const COPY_FROM: Flags = Flags(1 << 6);
    /// COPY ... PROGRAM (a shell command on the database host).
    pub const PROGRAM: Flags = Flags(1 << 7);
    /// COPY ... STDIN/STDOUT (through the client connection).
    pub const STDIO: Flags = Flags(1 << 8);
    /// COPY to/from a file on the database host.
    pub const FILE: Flags = Flags(1 << 9);
    /// `SELECT ... INTO table` (creates a table in PostgreSQL).
    pub const SELECT_INTO: Flags = Flags(1 << 10);
    /// MySQL `SELECT ... INTO OUTFILE/DUMPFILE`.
    pub const INTO_OUTFILE: Flags = Flags(1 << 11);
    /// MySQL `SET GLOBAL/PERSIST` or `@@global.`: server-wide settings.
    pub const GLOBAL: Flags = Flags(1 << 12);
    /// MySQL `LOAD DATA LOCAL` (the server reads a client file).
    pub const LOCAL: Flags = Flags(1 << 13);
    /// Changes how later statements are lexed (`standard_conforming_strings`,
    /// `sql_mode`): the session must update its dialect.
    pub const LEXICAL_MODE: Flags = Flags(1 << 14);
    /// `CREATE OR REPLACE`.
    pub const OR_REPLACE: Flags = Flags(1 << 15);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for class in StatementClass::ALL {
            assert_eq!(StatementClass::from_name(class.as_str()), Some(*class));
            assert!(seen.insert(class.as_str()), "duplicate {class}");
        }
        for kind in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(StatementClass::from_name("drop_database"), None);
        assert!(
            StatementClass::ALL.len() <= 128,
            "class sets are u128 bitmaps"
        );
    }
}
