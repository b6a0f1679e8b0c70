//! SQL keyword recognition: maps a word token to a `Kw` without allocating.
//!
//! The lexer looks up every bare word once, so this is on the hot path. A
//! word of at most 16 bytes is loaded as one little-endian `u128`, folded to
//! lowercase with a single OR (every identifier byte is a letter, a digit,
//! `_` or `$`, and OR 0x20 lowercases letters while keeping the others
//! distinct), hashed, and looked up in a perfect-hash table built at compile
//! time (hash and displace: the hash's top bits pick a displacement that
//! moves the slot its middle bits name). One compare per word and no branch
//! on the outcome: whether a word is a keyword is unpredictable, and the
//! linear-probing table this replaced paid a mispredicted probe-loop exit
//! on a good share of words.

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

const SLOT_BITS: u32 = 9;
const SLOTS: usize = 1 << SLOT_BITS;
const BUCKET_BITS: u32 = 7;
const BUCKETS: usize = 1 << BUCKET_BITS;
/// Most keywords one displacement bucket may hold (else: another seed).
const BUCKET_CAP: usize = 8;

/// The lookup's latency is on the lexer's critical path after every
/// mispredicted token dispatch, so the mix is one multiply: the high half
/// (bytes 9..16, zero for most words) is folded in with a rotate, and the
/// build rejects any two keywords the fold would confuse.
#[inline]
const fn fold(key: u128) -> u64 {
    (key as u64) ^ ((key >> 64) as u64).rotate_left(29)
}

#[inline]
const fn mix(key: u128, seed: u64) -> u64 {
    fold(key).wrapping_mul(seed)
}

#[inline]
const fn bucket_of(hash: u64) -> usize {
    (hash >> (64 - BUCKET_BITS)) as usize
}

#[inline]
const fn slot_of(hash: u64, displacement: u16) -> usize {
    ((hash >> 32) as usize ^ displacement as usize) & (SLOTS - 1)
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

/// The perfect-hash table. `keys[s]` is the folded key in slot `s` (0 when
/// empty: no word packs to 0) and `kws[s]` its keyword, loaded alongside
/// the key and kept only if the key matches.
struct Table {
    seed: u64,
    displacements: [u16; BUCKETS],
    keys: [u128; SLOTS],
    kws: [Kw; SLOTS],
}

/// Builds the table for one hash seed, or `None` if this seed puts two
/// keywords of a bucket on the same slot or overfills a bucket.
const fn build(seed: u64) -> Option<Table> {
    let mut members = [[0usize; BUCKET_CAP]; BUCKETS];
    let mut sizes = [0usize; BUCKETS];
    let mut k = 0;
    while k < KEYWORDS.len() {
        let key = pack(KEYWORDS[k].0);
        assert!(
            KEYWORDS[k].0.len() >= 2 && KEYWORDS[k].0.len() <= 16,
            "keyword length"
        );
        let hash = mix(key, seed);
        let b = bucket_of(hash);
        if sizes[b] == BUCKET_CAP {
            return None;
        }
        // Same bucket and same base slot: no displacement separates them.
        let mut m = 0;
        while m < sizes[b] {
            let other = pack(KEYWORDS[members[b][m]].0);
            assert!(other != key, "duplicate keyword");
            // Equal folds hash alike under every seed: fail the build, not loop.
            assert!(fold(other) != fold(key), "two keywords fold alike");
            if slot_of(mix(other, seed), 0) == slot_of(hash, 0) {
                return None;
            }
            m += 1;
        }
        members[b][sizes[b]] = k;
        sizes[b] += 1;
        k += 1;
    }
    let mut table = Table {
        seed,
        displacements: [0; BUCKETS],
        keys: [0; SLOTS],
        kws: [Kw::None; SLOTS],
    };
    // Fullest buckets first, while the table is emptiest.
    let mut size = BUCKET_CAP;
    while size > 0 {
        let mut b = 0;
        while b < BUCKETS {
            if sizes[b] == size {
                let mut d = 0;
                loop {
                    if d == SLOTS {
                        return None;
                    }
                    let mut free = true;
                    let mut m = 0;
                    while m < size && free {
                        let key = pack(KEYWORDS[members[b][m]].0);
                        free = table.keys[slot_of(mix(key, seed), d as u16)] == 0;
                        m += 1;
                    }
                    if free {
                        break;
                    }
                    d += 1;
                }
                table.displacements[b] = d as u16;
                let mut m = 0;
                while m < size {
                    let (text, kw) = KEYWORDS[members[b][m]];
                    let key = pack(text);
                    let s = slot_of(mix(key, seed), d as u16);
                    table.keys[s] = key;
                    table.kws[s] = kw;
                    m += 1;
                }
            }
            b += 1;
        }
        size -= 1;
    }
    Some(table)
}

static TABLE: Table = {
    let mut seed = 0xD6E8_FEB8_6659_FD93u64;
    loop {
        if let Some(table) = build(seed) {
            break table;
        }
        // Another odd multiplier; a few tries find one that works.
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C16);
    }
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
        if len <= 8 {
            let mut buf = [0u8; 8];
            buf[..len].copy_from_slice(word);
            return Kw::lookup_short(u64::from_le_bytes(buf), len);
        }
        let mut buf = [0u8; 16];
        buf[..len].copy_from_slice(word);
        Kw::find(u128::from_le_bytes(buf), len)
    }

    /// The keyword spelled by the low `len` bytes (1..=8) of `raw`, which
    /// may hold more input above them: the lexer has the word's first eight
    /// bytes in a register from its identifier scan, and most words are that
    /// short, so this saves reloading them and the 128-bit key arithmetic.
    /// The same table as `find`: a key whose high half is zero folds to its
    /// low half, so the hash is one 64-bit multiply.
    #[inline]
    pub(crate) fn lookup_short(raw: u64, len: usize) -> Kw {
        if len > 8 {
            return Kw::None;
        }
        // Both tables' entries for len <= 8 have a zero high half.
        let raw = raw & KEEP[len] as u64;
        if raw & HIGH_BITS as u64 != 0 {
            return Kw::None;
        }
        let key = raw | FOLD[len] as u64;
        let table = &TABLE;
        let hash = key.wrapping_mul(table.seed);
        let slot = slot_of(hash, table.displacements[bucket_of(hash)]);
        let kw = table.kws[slot];
        if table.keys[slot] == u128::from(key) {
            kw
        } else {
            Kw::None
        }
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
        let table = &TABLE;
        let hash = mix(key, table.seed);
        let slot = slot_of(hash, table.displacements[bucket_of(hash)]);
        let kw = table.kws[slot];
        if table.keys[slot] == key {
            kw
        } else {
            Kw::None
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

    /// The lexer's path: a word's bytes loaded with whatever input follows.
    #[test]
    fn lookup_short_ignores_the_bytes_after_the_word() {
        for &(text, kw) in KEYWORDS.iter().filter(|(t, _)| t.len() <= 8) {
            let mut buf = [b'x'; 8];
            buf[..text.len()].copy_from_slice(&text.to_ascii_uppercase());
            assert_eq!(Kw::lookup_short(u64::from_le_bytes(buf), text.len()), kw);
            if text.len() > 2 {
                assert_ne!(
                    Kw::lookup_short(u64::from_le_bytes(buf), text.len() - 1),
                    kw
                );
            }
        }
        assert_eq!(
            Kw::lookup_short(u64::from_le_bytes(*b"fromfrom"), 9),
            Kw::None
        );
    }

    /// The lexer takes a word's keyword from its first 8-byte load when the
    /// word ends inside it and from a 16-byte lookup otherwise: every
    /// keyword, in any case, at the end of the input or followed by more,
    /// after words of every length, comes out the same.
    #[test]
    fn the_lexer_finds_every_keyword_at_every_offset() {
        use crate::sql::lexer::{Dialect, TokenKind, tokenize};
        let mut tokens = Vec::new();
        for &(text, kw) in KEYWORDS {
            let word = std::str::from_utf8(text).unwrap().to_ascii_uppercase();
            for (pad, tail) in [(0, ""), (1, " x"), (3, "("), (7, ";"), (9, "'a'")] {
                let lead = "a".repeat(pad);
                for (spelled, want) in [(word.clone(), kw), (format!("{word}_"), Kw::None)] {
                    let sql = format!("{lead} {spelled}{tail}");
                    tokenize(sql.as_bytes(), Dialect::POSTGRES, &mut tokens).unwrap();
                    let found = tokens
                        .iter()
                        .find(|t| t.text(sql.as_bytes()) == spelled.as_bytes())
                        .unwrap_or_else(|| panic!("{sql}: {tokens:?}"));
                    assert_eq!((found.kind, found.kw), (TokenKind::Word, want), "{sql}");
                }
            }
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

    /// The perfect hash against a plain search of the keyword list, on
    /// every keyword with one byte changed, cut short or extended, and on
    /// pseudo-random identifiers: a hash slot shared with a keyword must
    /// never make a non-keyword match.
    #[test]
    fn lookup_agrees_with_a_linear_search() {
        let reference = |word: &[u8]| {
            KEYWORDS
                .iter()
                .find(|(text, _)| text.eq_ignore_ascii_case(word))
                .map_or(Kw::None, |&(_, kw)| kw)
        };
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$";
        let mut checked = 0;
        for &(text, _) in KEYWORDS {
            for at in 0..text.len() {
                for &b in alphabet {
                    let mut word = text.to_vec();
                    word[at] = b;
                    assert_eq!(Kw::lookup(&word), reference(&word), "{word:?}");
                    checked += 1;
                }
            }
            for &b in alphabet {
                let mut word = text.to_vec();
                word.push(b);
                assert_eq!(Kw::lookup(&word), reference(&word));
                word.insert(0, b);
                assert_eq!(
                    Kw::lookup(&word[..word.len() - 1]),
                    reference(&word[..word.len() - 1])
                );
            }
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 16) as usize;
            let word: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 4)) as usize + i) % alphabet.len()])
                .collect();
            assert_eq!(Kw::lookup(&word), reference(&word), "{word:?}");
            checked += 1;
        }
        assert!(checked > 200_000);
    }
}
