//! Statement features the rule presets need beyond class and object kind:
//! WHERE clauses whose truth does not depend on the row, what a MERGE does
//! to matched rows, ALTER forms that drop or retype, security-definer
//! routines, ownership and row-security changes, and calls of functions
//! that remove data, touch server files or reach other servers.
//!
//! `annotate` runs once per `classify` call after the statements are
//! classified and only looks at statements whose class can carry one of
//! these features, so plain SELECTs without calls cost one match.

use super::class::{Flags, StatementClass as C};
use super::classify::{NameList, Statement};
use super::keywords::Kw;
use super::lexer::{Token, TokenKind};

/// Feature flags set by `annotate`. They use the top bits of `Flags` so
/// flags added from the bottom elsewhere cannot collide with them.
impl Flags {
    /// A top-level WHERE of a DELETE/UPDATE whose truth does not depend on
    /// the row (`WHERE true`, `WHERE 1 = 1`, `WHERE id = id`, `x OR true`).
    pub const TAUTOLOGY: Flags = Flags(1 << 20);
    /// MERGE ... THEN DELETE.
    pub const MERGE_DELETE: Flags = Flags(1 << 21);
    /// MERGE ... THEN UPDATE.
    pub const MERGE_UPDATE: Flags = Flags(1 << 22);
    /// ALTER ... DROP (a column, constraint, default, attribute, member).
    pub const ALTER_DROP: Flags = Flags(1 << 23);
    /// ALTER TABLE ... ALTER [COLUMN] c [SET DATA] TYPE (rewrites every row).
    pub const ALTER_TYPE: Flags = Flags(1 << 24);
    /// CREATE/ALTER FUNCTION/PROCEDURE ... SECURITY DEFINER.
    pub const SECURITY_DEFINER: Flags = Flags(1 << 25);
    /// ALTER ... OWNER TO.
    pub const OWNER_CHANGE: Flags = Flags(1 << 26);
    /// ALTER TABLE ... DISABLE / NO FORCE ROW LEVEL SECURITY.
    pub const ROW_SECURITY_OFF: Flags = Flags(1 << 27);
    /// Calls `lo_unlink` (removes a large object).
    pub const LO_UNLINK: Flags = Flags(1 << 28);
    /// Calls a function that reads or lists files on the database host.
    pub const SERVER_FILE_READ: Flags = Flags(1 << 29);
    /// Calls a function that writes, renames or removes host files.
    pub const SERVER_FILE_WRITE: Flags = Flags(1 << 30);
    /// Calls a dblink function (queries another server).
    pub const DBLINK: Flags = Flags(1 << 31);
    /// `set_config('role' | 'session_authorization', ...)`, or a set_config
    /// whose setting is not a plain literal (it might be one of those).
    pub const SET_CONFIG_ROLE: Flags = Flags(1 << 19);
}

/// Functions that read or list files on the database host (core and
/// adminpack).
const FILE_READ: &[&[u8]] = &[
    b"pg_read_file",
    b"pg_read_binary_file",
    b"pg_ls_dir",
    b"pg_stat_file",
    b"pg_ls_logdir",
    b"pg_ls_waldir",
    b"pg_ls_tmpdir",
    b"pg_ls_archive_statusdir",
    b"pg_ls_logicalsnapdir",
    b"pg_ls_logicalmapdir",
    b"pg_ls_replslotdir",
    b"pg_file_read",
    b"pg_logdir_ls",
    b"lo_import",
];

/// Functions that write, rename or remove files on the database host.
const FILE_WRITE: &[&[u8]] = &[
    b"lo_export",
    b"pg_file_write",
    b"pg_file_rename",
    b"pg_file_unlink",
    b"pg_file_sync",
];

/// How deep parenthesized predicates are followed before giving up (and
/// calling the predicate row-independent: fail closed).
const MAX_PREDICATE_DEPTH: u32 = 16;

/// Sets the feature flags above on every statement that has them.
pub(crate) fn annotate(
    sql: &[u8],
    tokens: &[Token],
    statements: &mut [Statement],
    functions: &NameList,
) {
    for s in statements.iter_mut() {
        let toks = tokens.get(s.tokens.range()).unwrap_or_default();
        let scan = Scan { sql, toks };
        let mut flags = Flags::default();
        match s.class {
            // Without a WHERE, `delete_without_where` applies instead.
            C::Delete | C::Update
                if (s.has(Flags::HAS_WHERE) || scan.where_at().is_some())
                    && scan.tautological_where() =>
            {
                flags.insert(Flags::TAUTOLOGY);
            }
            C::Merge => flags.insert(scan.merge_actions()),
            C::Alter | C::Create => flags.insert(scan.ddl_features(s.class)),
            _ => {}
        }
        if !s.functions.is_empty() {
            flags.insert(called(functions, s, &scan));
        }
        s.flags.insert(flags);
    }
}

/// Flags from the names of the functions a statement calls.
fn called(functions: &NameList, s: &Statement, scan: &Scan<'_>) -> Flags {
    let mut flags = Flags::default();
    for i in s.functions.range() {
        let Some(name) = functions.get(i) else {
            continue;
        };
        let bare = name.bare;
        // Every name below starts with one of these: most calls stop here.
        if !matches!(bare.first(), Some(b'l' | b'p' | b'd' | b's')) {
            continue;
        }
        if bare == b"lo_unlink" {
            flags.insert(Flags::LO_UNLINK);
        } else if FILE_READ.contains(&bare) {
            flags.insert(Flags::SERVER_FILE_READ);
        } else if FILE_WRITE.contains(&bare) {
            flags.insert(Flags::SERVER_FILE_WRITE);
        } else if bare.starts_with(b"dblink") {
            flags.insert(Flags::DBLINK);
        } else if bare == b"set_config" && scan.set_config_role() {
            flags.insert(Flags::SET_CONFIG_ROLE);
        }
    }
    flags
}

/// A statement's tokens, read for features.
struct Scan<'a> {
    sql: &'a [u8],
    toks: &'a [Token],
}

impl Scan<'_> {
    fn kw(&self, i: usize) -> Kw {
        match self.toks.get(i) {
            Some(t) if t.kind == TokenKind::Word => t.kw,
            _ => Kw::None,
        }
    }

    fn kind(&self, i: usize) -> Option<TokenKind> {
        self.toks.get(i).map(|t| t.kind)
    }

    /// Whether token `i` is the bare word `word` (lowercase).
    fn word(&self, i: usize, word: &[u8]) -> bool {
        self.toks.get(i).is_some_and(|t| {
            t.kind == TokenKind::Word && t.text(self.sql).eq_ignore_ascii_case(word)
        })
    }

    fn is_name(&self, i: usize) -> bool {
        matches!(self.kind(i), Some(TokenKind::Word | TokenKind::QuotedIdent))
    }

    /// Indices of the tokens at the statement's own level (outside any
    /// parentheses), in order.
    fn top_level(&self) -> impl Iterator<Item = usize> + '_ {
        let mut depth = 0u32;
        self.toks.iter().enumerate().filter_map(move |(i, t)| {
            match t.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                _ if depth == 0 => return Some(i),
                _ => {}
            }
            None
        })
    }

    /// The first top-level WHERE that is a clause (not a column label
    /// written `AS where`).
    fn where_at(&self) -> Option<usize> {
        self.top_level()
            .find(|&i| self.kw(i) == Kw::Where && self.kw(i.wrapping_sub(1)) != Kw::As)
    }

    /// Whether the statement's WHERE predicate holds for every row alike.
    fn tautological_where(&self) -> bool {
        let Some(at) = self.where_at() else {
            // HAS_WHERE without a clause we can find: fail closed.
            return true;
        };
        let start = at + 1;
        if self.word(start, b"current") && self.kw(start + 1) == Kw::Of {
            return false; // WHERE CURRENT OF cursor: one row.
        }
        let end = self
            .top_level()
            .find(|&i| i > at && matches!(self.kw(i), Kw::Returning | Kw::Order | Kw::Limit))
            .unwrap_or(self.toks.len());
        self.row_independent(start, end, 0)
    }

    /// Whether the predicate `[start, end)` has the same truth for every
    /// row: some OR branch is row-independent.
    fn row_independent(&self, start: usize, end: usize, depth: u32) -> bool {
        if depth >= MAX_PREDICATE_DEPTH || start >= end {
            return true;
        }
        self.any_part(start, end, Kw::Or, |s, e| {
            self.conjunction_independent(s, e, depth)
        })
    }

    /// An AND chain is row-independent when every conjunct is.
    fn conjunction_independent(&self, start: usize, end: usize, depth: u32) -> bool {
        !self.any_part(start, end, Kw::And, |s, e| {
            !self.atom_independent(s, e, depth)
        })
    }

    fn atom_independent(&self, mut start: usize, end: usize, depth: u32) -> bool {
        while start < end && self.kw(start) == Kw::Not {
            start += 1;
        }
        if start >= end {
            return true;
        }
        if self.kind(start) == Some(TokenKind::LParen) && self.close_of(start, end) == end - 1 {
            return self.row_independent(start + 1, end - 1, depth + 1);
        }
        self.self_comparison(start, end) || !self.has_column(start, end)
    }

    /// Whether `test` holds for some part of `[start, end)` split at
    /// top-level `sep` (AND or OR; the AND of `BETWEEN a AND b` does not
    /// split). Parts are visited in order without allocating.
    fn any_part(
        &self,
        start: usize,
        end: usize,
        sep: Kw,
        mut test: impl FnMut(usize, usize) -> bool,
    ) -> bool {
        let mut depth = 0u32;
        let mut from = start;
        let mut between = false;
        for i in start..end {
            match self.kind(i) {
                Some(TokenKind::LParen) => depth += 1,
                Some(TokenKind::RParen) => depth = depth.saturating_sub(1),
                Some(TokenKind::Word) if depth == 0 => match self.kw(i) {
                    Kw::Between => between = true,
                    Kw::And if between => between = false,
                    kw if kw == sep => {
                        if test(from, i) {
                            return true;
                        }
                        from = i + 1;
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        test(from, end)
    }

    /// Index of the `)` closing the `(` at `open`, or `end`.
    fn close_of(&self, open: usize, end: usize) -> usize {
        let mut depth = 0u32;
        for i in open..end {
            match self.kind(i) {
                Some(TokenKind::LParen) => depth += 1,
                Some(TokenKind::RParen) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
        }
        end
    }

    /// `A = A`, `A >= A`, `A <= A`, `A IS NOT DISTINCT FROM A` with the
    /// same token text on both sides.
    fn self_comparison(&self, start: usize, end: usize) -> bool {
        let mut depth = 0u32;
        for i in start..end {
            match self.kind(i) {
                Some(TokenKind::LParen) => depth += 1,
                Some(TokenKind::RParen) => depth = depth.saturating_sub(1),
                Some(TokenKind::Operator) if depth == 0 => {
                    let op = self.toks[i].text(self.sql);
                    if matches!(op, b"=" | b">=" | b"<=") {
                        return self.same_tokens(start, i, i + 1, end);
                    }
                }
                Some(TokenKind::Word)
                    if depth == 0
                        && self.kw(i) == Kw::Is
                        && self.kw(i + 1) == Kw::Not
                        && self.kw(i + 2) == Kw::Distinct
                        && self.kw(i + 3) == Kw::From =>
                {
                    return self.same_tokens(start, i, i + 4, end);
                }
                _ => {}
            }
        }
        false
    }

    fn same_tokens(&self, a: usize, a_end: usize, b: usize, b_end: usize) -> bool {
        a_end > a
            && a_end - a == b_end - b
            && (0..a_end - a).all(|k| {
                let (x, y) = (self.toks[a + k], self.toks[b + k]);
                x.kind == y.kind && x.text(self.sql).eq_ignore_ascii_case(y.text(self.sql))
            })
    }

    /// Whether `[start, end)` refers to a column: a name that is not a
    /// reserved word, literal word, function name, type name, relation of a
    /// subquery's FROM, or alias.
    fn has_column(&self, start: usize, end: usize) -> bool {
        // Bit d set: the paren group at depth d is a subquery.
        let mut subquery = 0u64;
        let mut depth = 0u32;
        let mut i = start;
        while i < end {
            let t = self.toks[i];
            match t.kind {
                TokenKind::LParen => {
                    depth += 1;
                    if depth < 64 {
                        let bit = 1u64 << depth;
                        if matches!(self.kw(i + 1), Kw::Select | Kw::With | Kw::Values) {
                            subquery |= bit;
                        } else {
                            subquery &= !bit;
                        }
                    }
                }
                TokenKind::RParen => depth = depth.saturating_sub(1),
                TokenKind::Word | TokenKind::QuotedIdent => {
                    let in_subquery = depth < 64 && subquery & (1u64 << depth) != 0;
                    if t.kind == TokenKind::Word
                        && matches!(t.kw, Kw::From | Kw::Join)
                        && in_subquery
                        && self.kw(i.wrapping_sub(1)) != Kw::Distinct
                    {
                        i = self.skip_relations(i + 1, end);
                        continue;
                    }
                    if self.is_column_at(i, end) {
                        return true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    /// Skips `name [AS] [alias] [, ...]` after a subquery's FROM/JOIN.
    fn skip_relations(&self, mut i: usize, end: usize) -> usize {
        loop {
            while i < end
                && matches!(
                    self.kind(i),
                    Some(TokenKind::Word | TokenKind::QuotedIdent | TokenKind::Dot)
                )
            {
                if matches!(
                    self.kw(i),
                    Kw::Where | Kw::Join | Kw::On | Kw::Using | Kw::Group | Kw::Order | Kw::Limit
                ) {
                    return i;
                }
                i += 1;
            }
            if self.kind(i) == Some(TokenKind::Comma) && i < end {
                i += 1;
            } else {
                return i;
            }
        }
    }

    /// Whether the name token at `i` is a column reference.
    fn is_column_at(&self, i: usize, end: usize) -> bool {
        let t = self.toks[i];
        let prev = i.wrapping_sub(1);
        // A type (`x::int`, `CAST(x AS int)`), a function name, a typed
        // literal (`date '2020-01-01'`) or a qualified name's later part
        // (already judged at its first part).
        if self.kind(prev) == Some(TokenKind::Dot)
            || (self.kind(prev) == Some(TokenKind::Operator)
                && self.toks[prev].text(self.sql) == b"::")
            || self.kw(prev) == Kw::As
        {
            return false;
        }
        let next_end = {
            let mut j = i + 1;
            while self.kind(j) == Some(TokenKind::Dot) && self.is_name(j + 1) && j + 1 < end {
                j += 2;
            }
            j
        };
        if matches!(
            self.kind(next_end),
            Some(TokenKind::LParen | TokenKind::String)
        ) {
            return false;
        }
        if t.kind == TokenKind::QuotedIdent {
            return true;
        }
        !is_non_column_word(t.kw, t.text(self.sql))
    }

    /// MERGE: which actions matched (or not-matched-by-source) rows get.
    fn merge_actions(&self) -> Flags {
        let mut flags = Flags::default();
        for i in self.top_level() {
            if self.kw(i) == Kw::Then {
                match self.kw(i + 1) {
                    Kw::Delete => flags.insert(Flags::MERGE_DELETE),
                    Kw::Update => flags.insert(Flags::MERGE_UPDATE),
                    _ => {}
                }
            }
        }
        flags
    }

    /// CREATE/ALTER: security definer, and for ALTER the dropping,
    /// retyping, ownership and row-security forms.
    fn ddl_features(&self, class: C) -> Flags {
        let mut flags = Flags::default();
        let alter = class == C::Alter;
        for i in self.top_level().skip(1) {
            match self.kw(i) {
                Kw::Security if self.kw(i + 1) == Kw::Definer => {
                    flags.insert(Flags::SECURITY_DEFINER);
                }
                Kw::Drop if alter => flags.insert(Flags::ALTER_DROP),
                Kw::Type if alter && self.retypes_column(i) => flags.insert(Flags::ALTER_TYPE),
                Kw::To if alter && self.owner_to(i) => {
                    flags.insert(Flags::OWNER_CHANGE);
                }
                Kw::Row
                    if alter
                        && self.word(i + 1, b"level")
                        && self.kw(i + 2) == Kw::Security
                        && (self.word(i.wrapping_sub(1), b"disable")
                            || (self.word(i.wrapping_sub(1), b"force")
                                && self.word(i.wrapping_sub(2), b"no"))) =>
                {
                    flags.insert(Flags::ROW_SECURITY_OFF);
                }
                _ => {}
            }
        }
        flags
    }

    /// `OWNER TO` at `i - 1, i`, not `RENAME [COLUMN] owner TO` (a column,
    /// constraint or attribute named owner).
    fn owner_to(&self, i: usize) -> bool {
        let owner = i.wrapping_sub(1);
        let before = owner.wrapping_sub(1);
        self.word(owner, b"owner")
            && !(self.word(before, b"rename")
                || self.word(before, b"column")
                || self.word(before, b"constraint")
                || self.word(before, b"attribute"))
    }

    /// `ALTER [COLUMN] c TYPE` or `SET DATA TYPE` (not a column named type).
    fn retypes_column(&self, i: usize) -> bool {
        let prev = i.wrapping_sub(1);
        self.kw(prev) == Kw::Data
            || (self.is_name(prev)
                && (self.kw(prev.wrapping_sub(1)) == Kw::Alter
                    || self.word(prev.wrapping_sub(1), b"column")))
    }

    /// Whether a `set_config(` call in the statement may set the role: its
    /// first argument is `'role'` or `'session_authorization'`, or is not a
    /// plain literal.
    fn set_config_role(&self) -> bool {
        (0..self.toks.len()).any(|i| {
            if !self.word(i, b"set_config") || self.kind(i + 1) != Some(TokenKind::LParen) {
                return false;
            }
            let literal = self.kind(i + 2) == Some(TokenKind::String)
                && self.kind(i + 3) == Some(TokenKind::Comma);
            if !literal {
                return true;
            }
            let text = self.toks[i + 2].text(self.sql);
            !text.starts_with(b"'")
                || text.eq_ignore_ascii_case(b"'role'")
                || text.eq_ignore_ascii_case(b"'session_authorization'")
        })
    }
}

/// Words that are never a column in a predicate: reserved words and the
/// SQL value words (`true`, `current_user`, ...), whose value is the same
/// for every row.
fn is_non_column_word(kw: Kw, text: &[u8]) -> bool {
    if matches!(
        kw,
        Kw::Not
            | Kw::Is
            | Kw::And
            | Kw::Or
            | Kw::In
            | Kw::Like
            | Kw::Between
            | Kw::Case
            | Kw::When
            | Kw::Then
            | Kw::Else
            | Kw::End
            | Kw::Distinct
            | Kw::Exists
            | Kw::Any
            | Kw::All
            | Kw::Some
            | Kw::Array
            | Kw::Select
            | Kw::From
            | Kw::Where
            | Kw::As
            | Kw::Interval
            | Kw::Values
            | Kw::Union
            | Kw::Except
            | Kw::Intersect
            | Kw::Order
            | Kw::By
            | Kw::Limit
            | Kw::Offset
            | Kw::Group
            | Kw::Having
            | Kw::False
            | Kw::CurrentUser
            | Kw::Join
            | Kw::On
            | Kw::Using
            | Kw::Lateral
            | Kw::Only
            | Kw::With
            | Kw::Nulls
    ) {
        return true;
    }
    const VALUE_WORDS: &[&[u8]] = &[
        b"true",
        b"null",
        b"unknown",
        b"current_date",
        b"current_time",
        b"current_timestamp",
        b"localtime",
        b"localtimestamp",
        b"session_user",
        b"user",
        b"current_role",
        b"current_catalog",
        b"current_schema",
        b"symmetric",
        b"asymmetric",
        b"ilike",
        b"similar",
        b"escape",
        b"isnull",
        b"notnull",
        b"collate",
        b"at",
        b"zone",
    ];
    VALUE_WORDS.iter().any(|w| text.eq_ignore_ascii_case(w))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sql::{Classifier, Dialect};

    fn flags(sql: &str) -> Flags {
        let mut classifier = Classifier::new();
        let classified = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
        let mut all = Flags::default();
        for s in classified.statements() {
            all.insert(s.flags);
        }
        all
    }

    #[test]
    fn tautological_where_clauses() {
        for sql in [
            "DELETE FROM t WHERE true",
            "DELETE FROM t WHERE TRUE",
            "DELETE FROM t WHERE 1=1",
            "DELETE FROM t WHERE 1 = 1",
            "DELETE FROM t WHERE 'a'='a'",
            "DELETE FROM t WHERE id = id",
            "DELETE FROM t WHERE t.id = t.id",
            "DELETE FROM t WHERE id = 3 OR true",
            "DELETE FROM t WHERE NOT false",
            "DELETE FROM t WHERE NOT NOT true",
            "DELETE FROM t WHERE (id = 1 OR (1 = 1))",
            "DELETE FROM t WHERE 2 > 1",
            "DELETE FROM t WHERE 1 BETWEEN 0 AND 2",
            "DELETE FROM t WHERE 1 IN (1, 2)",
            "DELETE FROM t WHERE 't'::boolean",
            "DELETE FROM t WHERE id IS NOT DISTINCT FROM id",
            "DELETE FROM t WHERE lower(name) = lower(name)",
            "DELETE FROM t WHERE now() IS NOT NULL",
            "DELETE FROM t WHERE current_user = current_user",
            "DELETE FROM t WHERE EXISTS (SELECT 1 FROM s)",
            "DELETE FROM t WHERE $1 = $2",
            "DELETE FROM t WHERE true RETURNING *",
            "UPDATE t SET a = 0 WHERE 1 = 1",
            "UPDATE t SET a = 0 WHERE a = a RETURNING a",
            "WITH x AS (DELETE FROM t WHERE true RETURNING 1) SELECT * FROM x",
            "EXPLAIN ANALYZE DELETE FROM t WHERE 1=1",
        ] {
            assert!(flags(sql).contains(Flags::TAUTOLOGY), "{sql}");
        }
    }

    #[test]
    fn restricting_where_clauses() {
        for sql in [
            "DELETE FROM t WHERE id = 1",
            "DELETE FROM t WHERE id = 1 AND true",
            "DELETE FROM t WHERE data = 'x'",
            "DELETE FROM t WHERE type = 'x' OR key = 2",
            "DELETE FROM t WHERE id BETWEEN 1 AND 5",
            "DELETE FROM t WHERE id IN (SELECT id FROM s)",
            "DELETE FROM t WHERE EXISTS (SELECT 1 FROM s WHERE s.id = t.id)",
            "DELETE FROM t WHERE extract(year FROM created) = 2020",
            "DELETE FROM t WHERE NOT (id = 5)",
            "DELETE FROM t WHERE \"Id\" = 4",
            "DELETE FROM t WHERE created < now() - interval '1 day'",
            "DELETE FROM t WHERE CURRENT OF c",
            "UPDATE t SET a = a + 1 WHERE id = $1",
            "UPDATE t SET a = 1 FROM s WHERE t.id = s.id",
            "DELETE FROM t USING s WHERE t.id = s.id",
            "DELETE FROM t WHERE id = 1 RETURNING id AS where",
        ] {
            assert!(!flags(sql).contains(Flags::TAUTOLOGY), "{sql}");
        }
    }

    #[test]
    fn ddl_and_merge_features() {
        let cases: &[(&str, Flags)] = &[
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                Flags::MERGE_DELETE,
            ),
            (
                "MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET v = 0",
                Flags::MERGE_UPDATE,
            ),
            ("ALTER TABLE t DROP COLUMN c", Flags::ALTER_DROP),
            (
                "ALTER TABLE t ALTER COLUMN c TYPE int USING 0",
                Flags::ALTER_TYPE,
            ),
            (
                "ALTER TABLE t ALTER c SET DATA TYPE text",
                Flags::ALTER_TYPE,
            ),
            ("ALTER TABLE t OWNER TO mallory", Flags::OWNER_CHANGE),
            (
                "ALTER FUNCTION f() SECURITY DEFINER",
                Flags::SECURITY_DEFINER,
            ),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'select 1'",
                Flags::SECURITY_DEFINER,
            ),
            (
                "ALTER TABLE t DISABLE ROW LEVEL SECURITY",
                Flags::ROW_SECURITY_OFF,
            ),
            (
                "ALTER TABLE t NO FORCE ROW LEVEL SECURITY",
                Flags::ROW_SECURITY_OFF,
            ),
            ("SELECT lo_unlink(42)", Flags::LO_UNLINK),
            ("SELECT pg_catalog.pg_ls_dir('.')", Flags::SERVER_FILE_READ),
            ("SELECT lo_export(1, '/tmp/x')", Flags::SERVER_FILE_WRITE),
            ("SELECT * FROM dblink('h', 'q') AS x(a int)", Flags::DBLINK),
            (
                "SELECT set_config('role', 'postgres', false)",
                Flags::SET_CONFIG_ROLE,
            ),
            (
                "SELECT set_config(x, 'postgres', false) FROM s",
                Flags::SET_CONFIG_ROLE,
            ),
        ];
        for (sql, flag) in cases {
            assert!(flags(sql).contains(*flag), "{sql}");
        }
        for sql in [
            "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
            "ALTER TABLE t ADD COLUMN type text",
            "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE t RENAME COLUMN owner TO holder",
            "ALTER TABLE t RENAME owner TO holder",
            "ALTER TYPE pair RENAME ATTRIBUTE owner TO x",
            "SELECT set_config('search_path', '', false)",
            "SELECT pg_catalog.set_config('application_name', 'x', true)",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY INVOKER AS 'select 1'",
        ] {
            let got = flags(sql);
            for flag in [
                Flags::MERGE_DELETE,
                Flags::MERGE_UPDATE,
                Flags::ALTER_DROP,
                Flags::ALTER_TYPE,
                Flags::ROW_SECURITY_OFF,
                Flags::SET_CONFIG_ROLE,
                Flags::SECURITY_DEFINER,
                Flags::OWNER_CHANGE,
            ] {
                assert!(!got.contains(flag), "{sql}: {flag:?}");
            }
        }
    }
}
