//! Statement heads: the leading keywords that say what a statement is.
//!
//! `Pass::head` reads through WITH clauses, EXPLAIN and PREPARE to the
//! statement that will run, and reads the object kind of DDL. Names the head
//! consumes (the table of `DROP TABLE t`, the function of `CREATE FUNCTION
//! f(..)`) are marked so the features pass does not read them again as
//! calls; relation names among them are recorded.

use super::class::{Flags, ObjectKind, StatementClass as C};
use super::classify::{Head, MAX_NESTING, Pass, Span};
use super::keywords::Kw;
use super::lexer::TokenKind;

impl Pass<'_> {
    /// The head of the statement whose tokens are `[start, end)`.
    pub(crate) fn head(&mut self, start: usize, end: usize, depth: u32) -> Head {
        if depth >= MAX_NESTING {
            return Head::of(C::Unknown);
        }
        let mut i = start;
        // `(SELECT 1)` is a statement in both dialects.
        while self.kind(i, end) == Some(TokenKind::LParen) {
            i += 1;
        }
        let next = self.kw(i + 1, end);
        match self.kw(i, end) {
            Kw::Select | Kw::Values => Head::of(C::Select),
            Kw::Table => {
                self.names(i + 1, end, true, &[]);
                Head::with(C::Select, ObjectKind::Table)
            }
            Kw::Insert => Head::of(C::Insert),
            Kw::Replace => Head::of(C::Replace),
            Kw::Delete => Head::of(C::Delete),
            Kw::Merge => Head::of(C::Merge),
            Kw::Update => {
                let list_start = i + 1;
                let list_end = self.relation_list(list_start, end);
                self.mark(list_start, list_end);
                Head::with(C::Update, ObjectKind::Table)
            }
            Kw::With => self.with_head(i, end, depth),
            Kw::Create => self.ddl_head(C::Create, i + 1, end),
            Kw::Alter => self.ddl_head(C::Alter, i + 1, end),
            Kw::Drop => self.ddl_head(C::Drop, i + 1, end),
            Kw::Truncate => {
                let mut j = i + 1;
                if next == Kw::Table {
                    j += 1;
                }
                self.names(j, end, true, &[]);
                Head::with(C::Truncate, ObjectKind::Table)
            }
            Kw::Copy => self.copy_head(i + 1, end),
            Kw::Grant => self.grant_head(C::Grant, i + 1, end),
            Kw::Revoke => self.grant_head(C::Revoke, i + 1, end),
            Kw::Set => self.set_head(i + 1, end),
            Kw::Reset => {
                let mut head = Head::of(C::Reset);
                if next == Kw::All || self.lexical_setting(i + 1, end) {
                    head.flags.insert(Flags::LEXICAL_MODE);
                }
                head
            }
            Kw::Show => Head::of(C::Show),
            Kw::Use => Head::with(C::Use, ObjectKind::Database),
            Kw::Explain | Kw::Describe | Kw::Desc => self.explain_head(i + 1, end, depth),
            Kw::Prepare => self.prepare_head(i + 1, end, depth),
            Kw::Execute => Head {
                name: self.name_span(i + 1, end),
                ..Head::of(C::Execute)
            },
            Kw::Deallocate => {
                let j = if next == Kw::Prepare { i + 2 } else { i + 1 };
                Head {
                    name: self.name_span(j, end),
                    ..Head::of(C::Deallocate)
                }
            }
            Kw::Begin => Head::with(C::Begin, ObjectKind::Transaction),
            Kw::Start if next == Kw::Transaction => Head::with(C::Begin, ObjectKind::Transaction),
            Kw::Start | Kw::Stop | Kw::Change => Head::of(C::Replication),
            Kw::Commit | Kw::End => Head::with(C::Commit, ObjectKind::Transaction),
            Kw::Rollback | Kw::Abort => Head::with(C::Rollback, ObjectKind::Transaction),
            Kw::Savepoint => Head::of(C::Savepoint),
            Kw::Release => Head::of(C::Release),
            Kw::Vacuum => self.maintenance_head(C::Vacuum, i + 1, end),
            Kw::Analyze | Kw::Analyse => self.maintenance_head(C::Analyze, i + 1, end),
            Kw::Optimize => self.maintenance_head(C::Optimize, i + 1, end),
            Kw::Repair => self.maintenance_head(C::Repair, i + 1, end),
            Kw::Check => self.maintenance_head(C::CheckTable, i + 1, end),
            Kw::Checksum => self.maintenance_head(C::Checksum, i + 1, end),
            Kw::Cluster => self.maintenance_head(C::Cluster, i + 1, end),
            Kw::Checkpoint => Head::of(C::Checkpoint),
            Kw::Reindex => {
                let mut j = i + 1;
                if self.kind(j, end) == Some(TokenKind::LParen) {
                    j = self.matching_paren(j, end) + 1;
                }
                let (object, _) = self.object_kind(j, end);
                Head::with(C::Reindex, object)
            }
            Kw::Comment if next == Kw::On => {
                let (object, _) = self.object_kind(i + 2, end);
                Head::with(C::Comment, object)
            }
            Kw::Security if next == Kw::Label => Head::of(C::SecurityLabel),
            Kw::Refresh => {
                let (object, j) = self.object_kind(i + 1, end);
                let j = self.skip(j, end, &[Kw::Concurrently]);
                self.names(j, end, true, &[]);
                Head::with(C::Refresh, object)
            }
            Kw::Lock => {
                let j = self.skip(i + 1, end, &[Kw::Table, Kw::Tables]);
                if self.kw(j, end) == Kw::Instance {
                    return Head::with(C::Lock, ObjectKind::Instance);
                }
                self.names(j, end, true, &[]);
                Head::with(C::Lock, ObjectKind::Table)
            }
            Kw::Unlock => Head::of(C::Unlock),
            Kw::Listen => Head::of(C::Listen),
            Kw::Notify => Head::of(C::Notify),
            Kw::Unlisten => Head::of(C::Unlisten),
            Kw::Discard => {
                let mut head = Head::of(C::Discard);
                if next == Kw::All {
                    head.flags.insert(Flags::LEXICAL_MODE);
                }
                head
            }
            Kw::Do => Head::of(C::Do),
            Kw::Call => Head::with(C::Call, ObjectKind::Procedure),
            Kw::Declare => Head::of(C::Declare),
            Kw::Fetch => Head::of(C::Fetch),
            Kw::Move => Head::of(C::Move),
            Kw::Close => Head::of(C::Close),
            Kw::Import => Head::of(C::Import),
            Kw::Reassign if next == Kw::Owned => Head::of(C::ReassignOwned),
            Kw::Handler => {
                self.names(i + 1, end, true, &[]);
                Head::with(C::Handler, ObjectKind::Table)
            }
            Kw::Flush => Head::of(C::Flush),
            Kw::Kill => Head::of(C::Kill),
            Kw::Rename => {
                let (object, j) = self.object_kind(i + 1, end);
                if object == ObjectKind::Table {
                    self.names(j, end, true, &[Kw::To]);
                }
                Head::with(C::Rename, object)
            }
            Kw::Install => Head::with(C::Install, ObjectKind::Plugin),
            Kw::Uninstall => Head::with(C::Uninstall, ObjectKind::Plugin),
            Kw::Purge => Head::of(C::Purge),
            Kw::Shutdown => Head::of(C::Shutdown),
            Kw::Restart => Head::of(C::Restart),
            Kw::Clone => Head::of(C::Clone),
            Kw::Xa => Head::with(C::Xa, ObjectKind::Transaction),
            Kw::Help => Head::of(C::Help),
            Kw::Signal | Kw::Resignal => Head::of(C::Signal),
            Kw::Get => Head::of(C::GetDiagnostics),
            Kw::Binlog => Head::of(C::Binlog),
            Kw::Cache => Head::of(C::CacheIndex),
            Kw::Load => match next {
                Kw::Data | Kw::Xml => {
                    let mut head = Head::of(C::LoadData);
                    for j in i + 2..end {
                        match self.kw(j, end) {
                            Kw::Local => head.flags.insert(Flags::LOCAL),
                            Kw::Infile => break,
                            _ => {}
                        }
                    }
                    head
                }
                Kw::Index => Head::of(C::CacheIndex),
                _ => Head::of(C::Load),
            },
            _ => Head::of(C::Unknown),
        }
    }

    /// Skips any of `words` from `i`.
    pub(crate) fn skip(&self, mut i: usize, end: usize, words: &[Kw]) -> usize {
        while self.kw(i, end) != Kw::None && words.contains(&self.kw(i, end)) {
            i += 1;
        }
        i
    }

    fn name_span(&self, i: usize, end: usize) -> Span {
        if self.is_name(i, end) {
            let t = self.tokens[i];
            Span {
                start: t.start,
                end: t.end,
            }
        } else {
            Span::default()
        }
    }

    /// Reads a comma-separated list of names from `i`, marking them and,
    /// when `record`, recording them as relations. After each name, tokens
    /// up to the next comma are skipped (aliases, lock modes, CASCADE); a
    /// keyword in `also_after` (`RENAME a TO b`) introduces another name.
    pub(crate) fn names(&mut self, mut i: usize, end: usize, record: bool, also_after: &[Kw]) {
        loop {
            i = self.skip(i, end, &[Kw::Only, Kw::If, Kw::Not, Kw::Exists]);
            let name_end = self.name_end(i, end);
            if name_end == i {
                return;
            }
            if record {
                self.record_relation(i, name_end);
            }
            self.mark(i, name_end);
            i = name_end;
            loop {
                match self.kind(i, end) {
                    None => return,
                    Some(TokenKind::Comma) => {
                        i += 1;
                        break;
                    }
                    Some(TokenKind::LParen) => i = self.matching_paren(i, end) + 1,
                    Some(TokenKind::Word) if also_after.contains(&self.tokens[i].kw) => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (...) [, ...]
    /// <statement>`: the class is the main statement's. CTE bodies that
    /// modify data become nested statements in the features pass.
    fn with_head(&mut self, i: usize, end: usize, depth: u32) -> Head {
        let mut j = self.skip(i + 1, end, &[Kw::Recursive]);
        let mut paren_depth = 0usize;
        let mut expect_name = true;
        while j < end {
            let token = self.tokens[j];
            match token.kind {
                TokenKind::LParen => paren_depth += 1,
                TokenKind::RParen => paren_depth = paren_depth.saturating_sub(1),
                TokenKind::Comma if paren_depth == 0 => expect_name = true,
                TokenKind::Word | TokenKind::QuotedIdent if paren_depth == 0 => {
                    if expect_name {
                        expect_name = false;
                    } else if token.kind == TokenKind::Word
                        && matches!(
                            token.kw,
                            Kw::Select
                                | Kw::Values
                                | Kw::Table
                                | Kw::Insert
                                | Kw::Update
                                | Kw::Delete
                                | Kw::Merge
                                | Kw::Replace
                        )
                    {
                        let mut head = self.head(j, end, depth + 1);
                        head.flags.insert(Flags::WITH);
                        return head;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        Head::of(C::Unknown)
    }

    /// EXPLAIN/DESCRIBE. `EXPLAIN ANALYZE` runs the statement, so it takes
    /// the explained statement's class; plain EXPLAIN is `explain`; MySQL's
    /// `DESCRIBE t` / `EXPLAIN t` is `describe`.
    fn explain_head(&mut self, mut j: usize, end: usize, depth: u32) -> Head {
        let mut analyze = false;
        loop {
            match self.kw(j, end) {
                Kw::Analyze | Kw::Analyse => {
                    analyze = true;
                    j += 1;
                }
                Kw::Verbose => j += 1,
                Kw::Format => {
                    j += 1;
                    if self.is_op(j, end, b"=") {
                        j += 1;
                    }
                    j += 1;
                }
                _ if self.kind(j, end) == Some(TokenKind::LParen) => {
                    let close = self.matching_paren(j, end);
                    for k in j + 1..close {
                        if matches!(self.kw(k, end), Kw::Analyze | Kw::Analyse) {
                            let off = matches!(self.kw(k + 1, end), Kw::False | Kw::Off)
                                || (self.kind(k + 1, end) == Some(TokenKind::Number)
                                    && self.tokens[k + 1].text(self.sql) == b"0");
                            analyze |= !off;
                        }
                    }
                    j = close + 1;
                }
                _ => break,
            }
        }
        let inner = self.head(j, end, depth + 1);
        if inner.class == C::Unknown {
            if self.is_name(j, end) && self.kw(j, end) == Kw::None {
                self.names(j, end, true, &[]);
                return Head::with(C::Describe, ObjectKind::Table);
            }
            return Head::of(if analyze { C::Unknown } else { C::Explain });
        }
        if analyze {
            let mut head = inner;
            head.flags.insert(Flags::EXPLAIN_ANALYZE);
            head
        } else {
            Head::of(C::Explain)
        }
    }

    /// PostgreSQL `PREPARE name [(types)] AS <stmt>` takes the body's class;
    /// MySQL `PREPARE name FROM '<sql>'` is `prepare` with the literal as
    /// `body`, for the policy to classify.
    fn prepare_head(&mut self, i: usize, end: usize, depth: u32) -> Head {
        if self.kw(i, end) == Kw::Transaction {
            return Head::with(C::Commit, ObjectKind::Transaction);
        }
        let name = self.name_span(i, end);
        if name.is_empty() {
            return Head::of(C::Unknown);
        }
        self.mark(i, i + 1);
        let mut j = i + 1;
        if self.kind(j, end) == Some(TokenKind::LParen) {
            j = self.matching_paren(j, end) + 1;
        }
        match self.kw(j, end) {
            Kw::As => {
                let mut head = self.head(j + 1, end, depth + 1);
                head.flags.insert(Flags::PREPARE);
                head.name = name;
                head
            }
            Kw::From => {
                self.mark(j, j + 1);
                let mut head = Head::of(C::Prepare);
                head.name = name;
                if self.kind(j + 1, end) == Some(TokenKind::String) && j + 2 == end {
                    let t = self.tokens[j + 1];
                    head.body = Span {
                        start: t.start,
                        end: t.end,
                    };
                }
                head
            }
            _ => Head::of(C::Unknown),
        }
    }

    /// COPY: direction, PROGRAM / STDIN / STDOUT / file, and the table.
    fn copy_head(&mut self, i: usize, end: usize) -> Head {
        let mut head = Head::with(C::Copy, ObjectKind::Table);
        let mut j = i;
        if self.kind(j, end) == Some(TokenKind::LParen) {
            j = self.matching_paren(j, end) + 1;
        } else {
            let name_end = self.name_end(j, end);
            if name_end > j {
                self.record_relation(j, name_end);
                self.mark(j, name_end);
            }
            j = name_end;
        }
        while j < end {
            match self.kind(j, end) {
                Some(TokenKind::LParen) => j = self.matching_paren(j, end) + 1,
                Some(TokenKind::Word) if matches!(self.tokens[j].kw, Kw::From | Kw::To) => {
                    head.flags.insert(if self.tokens[j].kw == Kw::To {
                        Flags::COPY_TO
                    } else {
                        Flags::COPY_FROM
                    });
                    self.mark(j, j + 1);
                    match self.kw(j + 1, end) {
                        Kw::Program => head.flags.insert(Flags::PROGRAM),
                        Kw::Stdin | Kw::Stdout => head.flags.insert(Flags::STDIO),
                        _ => head.flags.insert(Flags::FILE),
                    }
                    self.mark(j + 1, j + 2);
                    return head;
                }
                _ => j += 1,
            }
        }
        head
    }

    /// CREATE / ALTER / DROP: modifiers, object kind, then the object's name.
    fn ddl_head(&mut self, class: C, mut j: usize, end: usize) -> Head {
        let mut head = Head::of(class);
        let mut steps = 0;
        while j < end && steps < 16 {
            steps += 1;
            match self.kw(j, end) {
                Kw::Or if self.kw(j + 1, end) == Kw::Replace => {
                    head.flags.insert(Flags::OR_REPLACE);
                    j += 2;
                }
                Kw::Temporary
                | Kw::Temp
                | Kw::Unlogged
                | Kw::Global
                | Kw::Local
                | Kw::Unique
                | Kw::Trusted
                | Kw::Procedural
                | Kw::Fulltext
                | Kw::Spatial
                | Kw::Online
                | Kw::Offline
                | Kw::Recursive
                | Kw::Constraint
                | Kw::Undefined => j += 1,
                Kw::Aggregate if self.kw(j + 1, end) == Kw::Function => j += 1,
                Kw::Definer | Kw::Algorithm => {
                    // DEFINER = user[@host] / ALGORITHM = x
                    j += 1;
                    if self.is_op(j, end, b"=") {
                        j += 1;
                    }
                    j += 1;
                    if self.kind(j, end) == Some(TokenKind::LParen) {
                        j = self.matching_paren(j, end) + 1;
                    }
                    if self.kind(j, end) == Some(TokenKind::Operator)
                        && self.tokens[j].text(self.sql).starts_with(b"@")
                    {
                        j += if self.tokens[j].text(self.sql) == b"@" {
                            2
                        } else {
                            1
                        };
                    }
                }
                Kw::Sql if self.kw(j + 1, end) == Kw::Security => j += 3,
                Kw::Default if self.kw(j + 1, end) == Kw::Conversion => j += 1,
                Kw::Prepare if class == C::Drop => {
                    return Head {
                        name: self.name_span(j + 1, end),
                        ..Head::of(C::Deallocate)
                    };
                }
                _ => break,
            }
        }
        let (object, after) = self.object_kind(j, end);
        head.object = object;
        let name_at = self.skip(after, end, &[Kw::Concurrently, Kw::If, Kw::Not, Kw::Exists]);
        match object {
            ObjectKind::Table
            | ObjectKind::View
            | ObjectKind::MaterializedView
            | ObjectKind::ForeignTable
            | ObjectKind::Sequence => {
                if class == C::Drop {
                    self.names(name_at, end, true, &[]);
                } else {
                    let name_end = self.name_end(name_at, end);
                    if name_end > name_at {
                        self.record_relation(name_at, name_end);
                        self.mark(name_at, name_end);
                    }
                }
            }
            ObjectKind::Index | ObjectKind::Trigger | ObjectKind::Policy | ObjectKind::Rule => {
                let name_end = self.name_end(name_at, end);
                self.mark(name_at, name_end);
                // The table follows ON (CREATE INDEX i ON t, CREATE TRIGGER .. ON t).
                if let Some(on) = (name_end..end).find(|&k| self.kw(k, end) == Kw::On) {
                    let t = self.skip(on + 1, end, &[Kw::Only]);
                    let t_end = self.name_end(t, end);
                    if t_end > t {
                        self.record_relation(t, t_end);
                        self.mark(on, t_end);
                    }
                }
            }
            ObjectKind::None | ObjectKind::System => {}
            _ => {
                // Define, not call: `CREATE FUNCTION f(...)` is no call of f.
                let name_end = self.name_end(name_at, end);
                self.mark(name_at, name_end);
            }
        }
        head
    }

    /// The object kind named at `i` (one or more words) and the index after
    /// it. Unrecognised words give `Other`; nothing gives `None`.
    pub(crate) fn object_kind(&self, i: usize, end: usize) -> (ObjectKind, usize) {
        use ObjectKind as O;
        let next = self.kw(i + 1, end);
        let (object, len) = match self.kw(i, end) {
            Kw::Database | Kw::Databases => (O::Database, 1),
            // In MySQL a schema is a database.
            Kw::Schema | Kw::Schemas if self.mysql => (O::Database, 1),
            Kw::Schema | Kw::Schemas => (O::Schema, 1),
            Kw::Table | Kw::Tables => (O::Table, 1),
            Kw::Index => (O::Index, 1),
            Kw::View => (O::View, 1),
            Kw::Materialized if next == Kw::View => (O::MaterializedView, 2),
            Kw::Function | Kw::Functions | Kw::Routine | Kw::Routines => (O::Function, 1),
            Kw::Procedure | Kw::Procedures => (O::Procedure, 1),
            Kw::User if next == Kw::Mapping => (O::UserMapping, 2),
            Kw::Role | Kw::User | Kw::Group => (O::Role, 1),
            Kw::Extension => (O::Extension, 1),
            Kw::Sequence | Kw::Sequences => (O::Sequence, 1),
            Kw::Trigger => (O::Trigger, 1),
            Kw::Event if next == Kw::Trigger => (O::EventTrigger, 2),
            Kw::Event => (O::Event, 1),
            Kw::Type => (O::Type, 1),
            Kw::Domain => (O::Domain, 1),
            Kw::Policy => (O::Policy, 1),
            Kw::Rule => (O::Rule, 1),
            Kw::Server => (O::Server, 1),
            Kw::Foreign if next == Kw::Table => (O::ForeignTable, 2),
            Kw::Foreign if next == Kw::Data => (O::ForeignDataWrapper, 3),
            Kw::Tablespace => (O::Tablespace, 1),
            Kw::Publication => (O::Publication, 1),
            Kw::Subscription => (O::Subscription, 1),
            Kw::Collation => (O::Collation, 1),
            Kw::Conversion => (O::Conversion, 1),
            Kw::Language => (O::Language, 1),
            Kw::Operator => (O::Operator, 1),
            Kw::Aggregate => (O::Aggregate, 1),
            Kw::Statistics => (O::Statistics, 1),
            Kw::Text if next == Kw::Search => (O::TextSearch, 3),
            Kw::Cast => (O::Cast, 1),
            Kw::Transform => (O::Transform, 1),
            Kw::Access if next == Kw::Method => (O::AccessMethod, 2),
            Kw::Default if next == Kw::Privileges => (O::DefaultPrivileges, 2),
            Kw::Large if next == Kw::Object => (O::LargeObject, 2),
            Kw::Owned => (O::Owned, 1),
            Kw::System => (O::System, 1),
            Kw::Instance => (O::Instance, 1),
            Kw::Plugin | Kw::Component => (O::Plugin, 1),
            _ if self.kind(i, end).is_some() => (O::Other, 0),
            _ => (O::None, 0),
        };
        (object, (i + len).min(end.max(i)))
    }

    /// GRANT/REVOKE: `... ON [kind] names TO|FROM ...` or role membership.
    fn grant_head(&mut self, class: C, i: usize, end: usize) -> Head {
        let mut paren_depth = 0usize;
        for j in i..end {
            match self.tokens[j].kind {
                TokenKind::LParen => paren_depth += 1,
                TokenKind::RParen => paren_depth = paren_depth.saturating_sub(1),
                TokenKind::Word if paren_depth == 0 => match self.tokens[j].kw {
                    Kw::On => {
                        let mut k = j + 1;
                        if self.kw(k, end) == Kw::All && self.kw(k + 1, end) == Kw::Tables {
                            return Head::with(class, ObjectKind::Schema);
                        }
                        let (object, after) = self.object_kind(k, end);
                        let object = match object {
                            ObjectKind::Other => ObjectKind::Table,
                            other => {
                                k = after;
                                other
                            }
                        };
                        let names_end = (k..end)
                            .find(|&t| matches!(self.kw(t, end), Kw::To | Kw::From))
                            .unwrap_or(end);
                        self.names(k, names_end, object == ObjectKind::Table, &[]);
                        return Head::with(class, object);
                    }
                    Kw::To | Kw::From => return Head::with(class, ObjectKind::Role),
                    _ => {}
                },
                _ => {}
            }
        }
        Head::with(class, ObjectKind::Role)
    }

    /// Whether the word at `i` names a setting that changes lexing.
    fn lexical_setting(&self, i: usize, end: usize) -> bool {
        if !self.is_name(i, end) {
            return false;
        }
        let text = self.tokens[i].text(self.sql);
        text.eq_ignore_ascii_case(b"standard_conforming_strings")
            || text.eq_ignore_ascii_case(b"sql_mode")
            || text.eq_ignore_ascii_case(b"backslash_quote")
    }

    /// SET: roles and session authorization, server-wide (GLOBAL/PERSIST)
    /// settings, transaction modes, settings that change lexing.
    fn set_head(&mut self, i: usize, end: usize) -> Head {
        let mut head = Head::with(C::Set, ObjectKind::Other);
        let first = self.skip(i, end, &[Kw::Session, Kw::Local]);
        match self.kw(first, end) {
            Kw::Role | Kw::Authorization | Kw::Password => head.object = ObjectKind::Role,
            Kw::Transaction => head.object = ObjectKind::Transaction,
            Kw::Session if self.kw(first + 1, end) == Kw::Authorization => {
                head.object = ObjectKind::Role;
            }
            _ => {}
        }
        let mut j = i;
        while j < end {
            match self.kw(j, end) {
                Kw::Global | Kw::Persist | Kw::PersistOnly if !self.user_variable(j, end) => {
                    head.flags.insert(Flags::GLOBAL)
                }
                _ if self.is_op(j, end, b"@@") => {
                    if matches!(
                        self.kw(j + 1, end),
                        Kw::Global | Kw::Persist | Kw::PersistOnly
                    ) {
                        head.flags.insert(Flags::GLOBAL);
                    }
                }
                _ => {}
            }
            if self.lexical_setting(j, end) {
                head.flags.insert(Flags::LEXICAL_MODE);
            }
            j += 1;
        }
        head
    }

    /// MySQL `@global`: a user variable that happens to be spelled like the
    /// scope keyword (the `@` directly against the word; `@ global` stays
    /// flagged, the cautious reading).
    fn user_variable(&self, j: usize, end: usize) -> bool {
        self.mysql
            && j > 0
            && self.is_op(j - 1, end, b"@")
            && self.tokens[j - 1].end == self.tokens[j].start
    }

    /// VACUUM / ANALYZE / CLUSTER / OPTIMIZE / REPAIR / CHECK / CHECKSUM:
    /// option words and an option list, then table names.
    fn maintenance_head(&mut self, class: C, mut j: usize, end: usize) -> Head {
        loop {
            match self.kw(j, end) {
                Kw::Full
                | Kw::Freeze
                | Kw::Verbose
                | Kw::Analyze
                | Kw::Analyse
                | Kw::Local
                | Kw::Table
                | Kw::Tables
                | Kw::Quick => j += 1,
                _ if self.kind(j, end) == Some(TokenKind::LParen) => {
                    j = self.matching_paren(j, end) + 1;
                }
                _ if self.is_name(j, end)
                    && self.tokens[j]
                        .text(self.sql)
                        .eq_ignore_ascii_case(b"no_write_to_binlog") =>
                {
                    j += 1;
                }
                _ => break,
            }
        }
        self.names(j, end, true, &[]);
        Head::with(class, ObjectKind::Table)
    }
}
