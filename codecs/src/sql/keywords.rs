//! SQL keyword recognition: maps a word token to a `Kw` without allocating.
//!
//! The lexer looks up every bare word once, so this is on the hot path. A
//! word of at most 16 bytes is loaded as one little-endian `u128`, folded to
//! lowercase with a single OR (every identifier byte is a letter, a digit,
//! `_` or `$`, and OR 0x20 lowercases letters while keeping the others
//! distinct), hashed, and looked up in an open-addressing table built at
//! compile time: one multiply and usually one compare per word.

/// Identifier bytes are never 0, so the packed form implies the length.
const fn fold_mask(len: usize) -> u128 {
    let mut mask = 0u128;
    let mut i = 0;
    while i < len {
        mask |= 0x20 << (8 * i);
        i += 1;
    }
    mask
}

const fn keep_mask(len: usize) -> u128 {
    if len >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * len)) - 1
    }
}

/// `fold_mask(len)` and `keep_mask(len)` for len 0..=16, so the hot path
/// does a table load instead of a loop.
const FOLD: [u128; 17] = {
    let mut t = [0u128; 17];
    let mut len = 0;
    while len <= 16 {
        t[len] = fold_mask(len);
        len += 1;
    }
    t
};

const KEEP: [u128; 17] = {
    let mut t = [0u128; 17];
    let mut len = 0;
    while len <= 16 {
        t[len] = keep_mask(len);
        len += 1;
    }
    t
};

const HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080_8080_8080;

/// Packs and folds a keyword's text at compile time.
const fn pack(text: &[u8]) -> u128 {
    let mut packed = 0u128;
    let mut i = 0;
    while i < text.len() {
        packed |= ((text[i] | 0x20) as u128) << (8 * i);
        i += 1;
    }
    packed
}

const TABLE_BITS: u32 = 9;
const TABLE_SIZE: usize = 1 << TABLE_BITS;

#[inline]
const fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - TABLE_BITS)) as usize
}

macro_rules! keywords {
    ($($name:ident = $text:literal,)*) => {
        /// A keyword the classifier cares about. `None` is every other word.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        #[repr(u8)]
        pub enum Kw {
            #[default]
            None = 0,
            $($name,)*
        }

        const KEYWORDS: &[(&[u8], Kw)] = &[$(($text, Kw::$name),)*];

        impl Kw {
            /// The keyword's lowercase spelling (`""` for `None`).
            pub fn as_str(self) -> &'static str {
                match self {
                    Kw::None => "",
                    $(Kw::$name => match std::str::from_utf8($text) {
                        Ok(text) => text,
                        Err(_) => "",
                    },)*
                }
            }
        }
    };
}

/// Folded keys (0 marks an empty slot) and, in parallel, their keywords;
/// split so the probed array stays small (8 KiB).
static TABLE: ([u128; TABLE_SIZE], [Kw; TABLE_SIZE]) = {
    let mut keys = [0u128; TABLE_SIZE];
    let mut kws = [Kw::None; TABLE_SIZE];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let (text, kw) = KEYWORDS[k];
        assert!(text.len() >= 2 && text.len() <= 16, "keyword length");
        let key = pack(text);
        let mut i = slot(key);
        while keys[i] != 0 {
            assert!(keys[i] != key, "duplicate keyword");
            i = (i + 1) % TABLE_SIZE;
        }
        keys[i] = key;
        kws[i] = kw;
        k += 1;
    }
    (keys, kws)
};

impl Kw {
    /// The keyword a word spells (case-insensitively), or `Kw::None`.
    /// `word` must consist of identifier bytes, as the lexer's words do.
    #[inline]
    pub fn lookup(word: &[u8]) -> Kw {
        let len = word.len();
        if !(2..=16).contains(&len) {
            return Kw::None;
        }
        let mut buf = [0u8; 16];
        buf[..len].copy_from_slice(word);
        Kw::find(u128::from_le_bytes(buf), len)
    }

    /// `lookup(&sql[start..end])`, loading 16 bytes at once when the input
    /// has them.
    #[inline]
    pub fn lookup_in(sql: &[u8], start: usize, end: usize) -> Kw {
        let len = end.wrapping_sub(start);
        // No keyword has one letter (aliases like `u`, `o` are common).
        if !(2..=16).contains(&len) {
            return Kw::None;
        }
        match sql.get(start..start + 16) {
            Some(bytes) => {
                let mut buf = [0u8; 16];
                buf.copy_from_slice(bytes);
                Kw::find(u128::from_le_bytes(buf) & KEEP[len], len)
            }
            // Near the end of the input: load the 16 bytes ending at `end`
            // and shift the word down, rather than copying it.
            None => match end.checked_sub(16).and_then(|from| sql.get(from..end)) {
                Some(bytes) => {
                    let mut buf = [0u8; 16];
                    buf.copy_from_slice(bytes);
                    Kw::find(u128::from_le_bytes(buf) >> (8 * (16 - len)), len)
                }
                None => sql.get(start..end).map_or(Kw::None, Kw::lookup),
            },
        }
    }

    #[inline]
    fn find(raw: u128, len: usize) -> Kw {
        if raw & HIGH_BITS != 0 {
            return Kw::None;
        }
        let key = raw | FOLD[len];
        let (keys, kws) = &TABLE;
        let mut i = slot(key);
        loop {
            let k = keys[i];
            if k == key {
                return kws[i];
            }
            if k == 0 {
                return Kw::None;
            }
            i = (i + 1) % TABLE_SIZE;
        }
    }
}

keywords! {
    // Statement heads.
    Select = b"select", Insert = b"insert", Update = b"update", Delete = b"delete",
    Merge = b"merge", Copy = b"copy", Create = b"create", Alter = b"alter", Drop = b"drop",
    Truncate = b"truncate", Grant = b"grant", Revoke = b"revoke", Set = b"set",
    Reset = b"reset", Show = b"show", Use = b"use", Explain = b"explain",
    Describe = b"describe", Desc = b"desc", Prepare = b"prepare", Execute = b"execute",
    Deallocate = b"deallocate", Begin = b"begin", Start = b"start", Commit = b"commit",
    End = b"end", Rollback = b"rollback", Abort = b"abort", Savepoint = b"savepoint",
    Release = b"release", Vacuum = b"vacuum", Analyze = b"analyze", Analyse = b"analyse",
    Checkpoint = b"checkpoint", Reindex = b"reindex", Cluster = b"cluster",
    Comment = b"comment", Security = b"security", Label = b"label", Refresh = b"refresh",
    Lock = b"lock", Unlock = b"unlock", Listen = b"listen", Notify = b"notify",
    Unlisten = b"unlisten", Discard = b"discard", Do = b"do", Call = b"call",
    Declare = b"declare", Fetch = b"fetch", Move = b"move", Close = b"close",
    Import = b"import", Reassign = b"reassign", Owned = b"owned", Handler = b"handler",
    Flush = b"flush", Kill = b"kill", Rename = b"rename", Install = b"install",
    Uninstall = b"uninstall", Optimize = b"optimize", Repair = b"repair", Check = b"check",
    Checksum = b"checksum", Purge = b"purge", Shutdown = b"shutdown", Restart = b"restart",
    Clone = b"clone", Xa = b"xa", Help = b"help", Signal = b"signal", Resignal = b"resignal",
    Get = b"get", Binlog = b"binlog", Cache = b"cache", Change = b"change", Stop = b"stop",
    Load = b"load", Values = b"values", Table = b"table", With = b"with", Replace = b"replace",
    // Clause words.
    Recursive = b"recursive", As = b"as", Not = b"not", Materialized = b"materialized",
    From = b"from", Where = b"where", Join = b"join", Into = b"into", Using = b"using",
    References = b"references", On = b"on", Only = b"only", Lateral = b"lateral", To = b"to",
    Program = b"program", Stdin = b"stdin", Stdout = b"stdout", Data = b"data", Xml = b"xml",
    Infile = b"infile", Local = b"local", Concurrent = b"concurrent",
    LowPriority = b"low_priority", Ignore = b"ignore", Outfile = b"outfile",
    Dumpfile = b"dumpfile", Is = b"is", Distinct = b"distinct", In = b"in", Any = b"any",
    All = b"all", Some = b"some", Exists = b"exists", Array = b"array", Row = b"row",
    Over = b"over", Filter = b"filter", Within = b"within", Key = b"key",
    Primary = b"primary", Partition = b"partition", Window = b"window", By = b"by",
    And = b"and", Or = b"or", When = b"when", Then = b"then", Else = b"else", Case = b"case",
    Returning = b"returning", Of = b"of", For = b"for", Unique = b"unique",
    Constraint = b"constraint", Default = b"default", If = b"if", Cascade = b"cascade",
    Format = b"format", Verbose = b"verbose", False = b"false", Off = b"off",
    Full = b"full", Freeze = b"freeze", Cursor = b"cursor", Quick = b"quick",
    Interval = b"interval", Nulls = b"nulls", Like = b"like", Between = b"between",
    Union = b"union", Except = b"except", Intersect = b"intersect", Order = b"order",
    Group = b"group", Having = b"having", Limit = b"limit", Offset = b"offset",
    // Object kinds.
    Database = b"database", Schema = b"schema", Index = b"index", View = b"view",
    Function = b"function", Procedure = b"procedure", Role = b"role", User = b"user",
    Extension = b"extension", Sequence = b"sequence", Trigger = b"trigger", Type = b"type",
    Domain = b"domain", Policy = b"policy", Rule = b"rule", Server = b"server",
    Foreign = b"foreign", Wrapper = b"wrapper", Tablespace = b"tablespace",
    Publication = b"publication", Subscription = b"subscription", Event = b"event",
    Collation = b"collation", Conversion = b"conversion", Language = b"language",
    Operator = b"operator", Aggregate = b"aggregate", Statistics = b"statistics",
    Text = b"text", Search = b"search", Cast = b"cast", Transform = b"transform",
    Access = b"access", Method = b"method", Mapping = b"mapping", Privileges = b"privileges",
    Large = b"large", Object = b"object", Routine = b"routine", System = b"system",
    Instance = b"instance", Plugin = b"plugin", Component = b"component", Tables = b"tables",
    Logfile = b"logfile", Databases = b"databases", Schemas = b"schemas",
    Functions = b"functions", Procedures = b"procedures", Sequences = b"sequences",
    Routines = b"routines", Password = b"password", Names = b"names",
    // Modifiers skipped before an object kind.
    Temporary = b"temporary", Temp = b"temp", Unlogged = b"unlogged", Global = b"global",
    Concurrently = b"concurrently", Trusted = b"trusted", Procedural = b"procedural",
    Definer = b"definer", Algorithm = b"algorithm", Sql = b"sql", Fulltext = b"fulltext",
    Spatial = b"spatial", Online = b"online", Offline = b"offline", Session = b"session",
    Authorization = b"authorization", Transaction = b"transaction", Work = b"work",
    Persist = b"persist", PersistOnly = b"persist_only", Slave = b"slave",
    Replica = b"replica", Master = b"master", Replication = b"replication",
    Prepared = b"prepared", Atomic = b"atomic",
    CurrentUser = b"current_user", Undefined = b"undefined", Invoker = b"invoker",
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_folds_case_and_rejects_non_keywords() {
        assert_eq!(Kw::lookup(b"SeLeCt"), Kw::Select);
        assert_eq!(Kw::lookup(b"drop"), Kw::Drop);
        assert_eq!(Kw::lookup(b"DROP_DATE"), Kw::None);
        assert_eq!(Kw::lookup(b"dro"), Kw::None);
        assert_eq!(Kw::lookup(b""), Kw::None);
        assert_eq!(Kw::lookup(b"low_priority"), Kw::LowPriority);
        assert_eq!(Kw::lookup("sélect".as_bytes()), Kw::None);
        assert_eq!(Kw::lookup(b"a_very_long_identifier_name"), Kw::None);
        // 16 bytes is the longest packable word; one more never matches.
        assert_eq!(Kw::lookup(b"selectselectselec"), Kw::None);
    }

    #[test]
    fn every_keyword_is_found_anywhere_in_the_input() {
        for &(text, kw) in KEYWORDS {
            let upper = text.to_ascii_uppercase();
            assert_eq!(Kw::lookup(&upper), kw);
            // Followed by more input (16-byte load) and at the very end.
            let mut sql = b"x ".to_vec();
            sql.extend_from_slice(&upper);
            let end = sql.len();
            assert_eq!(Kw::lookup_in(&sql, 2, end), kw);
            sql.extend_from_slice(b" abcdefghijklmnopqrstuvwxyz");
            assert_eq!(Kw::lookup_in(&sql, 2, end), kw);
            // A prefix or a longer word is not the keyword.
            assert_ne!(Kw::lookup_in(&sql, 2, end - 1), kw);
            assert_ne!(Kw::lookup_in(&sql, 2, end + 1), kw);
        }
    }

    #[test]
    fn every_keyword_round_trips() {
        for kw in [
            Kw::Select,
            Kw::Concurrently,
            Kw::PersistOnly,
            Kw::Xa,
            Kw::Do,
        ] {
            assert_eq!(Kw::lookup(kw.as_str().as_bytes()), kw);
            assert_eq!(Kw::lookup(kw.as_str().to_uppercase().as_bytes()), kw);
        }
    }
}
