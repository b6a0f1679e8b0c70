//! Statement classifier: splits a SQL string into statements and says what
//! each one does (class, object kind, flags), which relations it names and
//! which functions it calls.
//!
//! A `Classifier` owns every buffer it needs and reuses them, so classifying
//! allocates nothing once the buffers have grown to the size of the traffic.
//! Statements reference the input by span and the name lists by index.
//!
//! Two passes per statement over the token slice between semicolons:
//! - the *head* (head.rs) reads the leading keywords (through WITH, EXPLAIN,
//!   PREPARE) into a class and object kind, and marks the names it consumed;
//! - the *features* pass walks every token once: WHERE at the statement's
//!   own paren depth, relations after FROM/JOIN/INTO/USING/REFERENCES,
//!   function calls (a name followed by `(`), and data-modifying statements
//!   nested in parentheses, which become statements of their own.

use super::class::{Flags, ObjectKind, StatementClass};
use super::keywords::Kw;
use super::lexer::{Dialect, Token, TokenKind, tokenize_split};

/// How deep data-modifying statements may nest in one another before the
/// outer statement is `Unknown` (hostile input must not recurse unboundedly).
pub const MAX_NESTING: u32 = 8;

/// `Statement::parent` of a top-level statement.
pub const NO_PARENT: u32 = u32::MAX;

/// A half-open range of offsets or indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        // Offsets come from the lexer, which caps input at u32::MAX bytes.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn is_empty(self) -> bool {
        self.start >= self.end
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One classified statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Statement {
    pub class: StatementClass,
    pub object: ObjectKind,
    pub flags: Flags,
    /// Bytes of the input this statement covers.
    pub span: Span,
    /// Tokens (indices into `Classified::tokens`) this statement covers.
    pub tokens: Span,
    /// The prepared-statement name of PREPARE/EXECUTE/DEALLOCATE (raw bytes
    /// of the name token; see `push_ident` to normalize it). Empty if none.
    pub name: Span,
    /// MySQL `PREPARE name FROM '<body>'`: the string literal token. Empty
    /// when the body is not a literal (`FROM @var`).
    pub body: Span,
    /// Indices into the relation list.
    pub relations: Span,
    /// Indices into the function list.
    pub functions: Span,
    /// Index of the enclosing statement, or `NO_PARENT`.
    pub parent: u32,
}

impl Statement {
    pub fn has(&self, flag: Flags) -> bool {
        self.flags.contains(flag)
    }
}

/// Normalized names (relations or functions) in one reused byte buffer.
#[derive(Debug, Default)]
pub(crate) struct NameList {
    text: Vec<u8>,
    /// (start, end, start of the last dotted part) into `text`.
    items: Vec<(u32, u32, u32)>,
}

impl NameList {
    fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Appends a dotted name made of the tokens in `parts` (identifiers,
    /// dots, and `*`), normalized.
    fn push(&mut self, sql: &[u8], parts: &[Token], mysql: bool) {
        let start = self.text.len();
        let mut bare = start;
        for token in parts {
            match token.kind {
                TokenKind::Dot => {
                    self.text.push(b'.');
                    bare = self.text.len();
                }
                _ => push_ident(token.text(sql), mysql, &mut self.text),
            }
        }
        self.items
            .push((start as u32, self.text.len() as u32, bare as u32));
    }

    pub(crate) fn get(&self, index: usize) -> Option<Name<'_>> {
        let &(start, end, bare) = self.items.get(index)?;
        Some(Name {
            full: self.text.get(start as usize..end as usize)?,
            bare: self.text.get(bare as usize..end as usize)?,
        })
    }
}

/// A normalized, possibly qualified name: `full` is `schema.name`, `bare`
/// its last part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name<'a> {
    pub full: &'a [u8],
    pub bare: &'a [u8],
}

/// Appends an identifier token's normalized spelling to `out`: quotes and
/// doubled quotes removed; unquoted words lowercased (PostgreSQL folds them);
/// in MySQL every name is lowercased, since it compares most names without
/// case. PostgreSQL quoted names keep their case.
pub fn push_ident(raw: &[u8], mysql: bool, out: &mut Vec<u8>) {
    let (body, quote, lower) = match raw.first() {
        Some(&q @ (b'"' | b'`')) if raw.len() >= 2 => (&raw[1..raw.len() - 1], q, mysql),
        Some(b'u' | b'U') if raw.len() >= 4 && raw[1] == b'&' => {
            (&raw[3..raw.len() - 1], b'"', false)
        }
        _ => {
            // Bare words, nearly every name: one reservation and a folding
            // copy (an exact-size iterator) instead of a push per byte.
            out.extend(raw.iter().map(u8::to_ascii_lowercase));
            return;
        }
    };
    let mut prev_quote = false;
    for &b in body {
        if quote != 0 && b == quote && !prev_quote {
            prev_quote = true;
            continue;
        }
        prev_quote = false;
        out.push(if lower { b.to_ascii_lowercase() } else { b });
    }
}

/// The reusable classifier. Keep one per shard (or session) and call
/// `classify` for every SQL string.
#[derive(Debug, Default)]
pub struct Classifier {
    tokens: Vec<Token>,
    /// Indices of the `;` tokens, from the lexer: the statement boundaries.
    semicolons: Vec<u32>,
    statements: Vec<Statement>,
    relations: NameList,
    functions: NameList,
}

/// The result of one `classify` call, borrowing the classifier's buffers.
#[derive(Clone, Copy, Debug)]
pub struct Classified<'a> {
    sql: &'a [u8],
    tokens: &'a [Token],
    statements: &'a [Statement],
    relations: &'a NameList,
    functions: &'a NameList,
}

impl<'a> Classified<'a> {
    /// Every statement: top-level ones in order, each followed by the
    /// statements nested in it.
    pub fn statements(&self) -> &'a [Statement] {
        self.statements
    }

    pub fn sql(&self) -> &'a [u8] {
        self.sql
    }

    /// The tokens of a statement.
    pub fn tokens(&self, statement: &Statement) -> &'a [Token] {
        self.tokens
            .get(statement.tokens.range())
            .unwrap_or_default()
    }

    /// The input bytes of a span (statement, name or body).
    pub fn text(&self, span: Span) -> &'a [u8] {
        self.sql.get(span.range()).unwrap_or_default()
    }

    /// Relations the statement (and statements nested in it) names.
    pub fn relations(&self, statement: &Statement) -> impl Iterator<Item = Name<'a>> + 'a {
        let list = self.relations;
        statement.relations.range().filter_map(move |i| list.get(i))
    }

    /// Functions the statement (and statements nested in it) calls.
    pub fn functions(&self, statement: &Statement) -> impl Iterator<Item = Name<'a>> + 'a {
        let list = self.functions;
        statement.functions.range().filter_map(move |i| list.get(i))
    }
}

impl Classifier {
    pub fn new() -> Classifier {
        Classifier::default()
    }

    /// Classifies every statement of `sql`. Empty statements (`;;`, only
    /// comments) produce nothing.
    pub fn classify<'a>(&'a mut self, sql: &'a [u8], dialect: Dialect) -> Classified<'a> {
        self.statements.clear();
        self.relations.clear();
        self.functions.clear();
        if tokenize_split(sql, dialect, &mut self.tokens, &mut self.semicolons).is_err() {
            self.tokens.clear();
            self.statements.push(Statement {
                span: Span::new(0, sql.len().min(u32::MAX as usize)),
                parent: NO_PARENT,
                ..Statement::default()
            });
        } else {
            let mut pass = Pass {
                sql,
                mysql: dialect.is_mysql(),
                tokens: &mut self.tokens,
                out: &mut self.statements,
                relations: &mut self.relations,
                functions: &mut self.functions,
                call_pending: false,
            };
            let n = pass.tokens.len();
            let mut start = 0;
            for &semicolon in &self.semicolons {
                let semicolon = semicolon as usize;
                if semicolon > start {
                    pass.statement(start, semicolon, 0, NO_PARENT);
                }
                start = semicolon + 1;
            }
            if n > start {
                pass.statement(start, n, 0, NO_PARENT);
            }
            super::features::annotate(sql, &self.tokens, &mut self.statements, &self.functions);
        }
        Classified {
            sql,
            tokens: &self.tokens,
            statements: &self.statements,
            relations: &self.relations,
            functions: &self.functions,
        }
    }
}

/// What the head of a statement says.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Head {
    pub class: StatementClass,
    pub object: ObjectKind,
    pub flags: Flags,
    pub name: Span,
    pub body: Span,
}

impl Head {
    pub(crate) fn of(class: StatementClass) -> Head {
        Head {
            class,
            ..Head::default()
        }
    }

    pub(crate) fn with(class: StatementClass, object: ObjectKind) -> Head {
        Head {
            class,
            object,
            ..Head::default()
        }
    }
}

/// Token marks.
pub(crate) const MARK_CONSUMED: u8 = 1;

/// One classify call's working state.
pub(crate) struct Pass<'a> {
    pub sql: &'a [u8],
    pub mysql: bool,
    pub tokens: &'a mut [Token],
    out: &'a mut Vec<Statement>,
    relations: &'a mut NameList,
    functions: &'a mut NameList,
    /// Set when a relation list ended at a table function's `(`.
    call_pending: bool,
}

impl Pass<'_> {
    #[inline]
    pub(crate) fn kind(&self, i: usize, end: usize) -> Option<TokenKind> {
        if i < end {
            self.tokens.get(i).map(|t| t.kind)
        } else {
            None
        }
    }

    /// The keyword at `i` (only bare words are keywords).
    #[inline]
    pub(crate) fn kw(&self, i: usize, end: usize) -> Kw {
        match self.tokens.get(i) {
            Some(t) if i < end && t.kind == TokenKind::Word => t.kw,
            _ => Kw::None,
        }
    }

    pub(crate) fn is_op(&self, i: usize, end: usize, op: &[u8]) -> bool {
        self.kind(i, end) == Some(TokenKind::Operator) && self.tokens[i].text(self.sql) == op
    }

    pub(crate) fn is_name(&self, i: usize, end: usize) -> bool {
        matches!(
            self.kind(i, end),
            Some(TokenKind::Word | TokenKind::QuotedIdent)
        )
    }

    /// Index of the `)` matching the `(` at `open`, or `end`.
    pub(crate) fn matching_paren(&self, open: usize, end: usize) -> usize {
        let mut depth = 0usize;
        for i in open..end {
            match self.tokens[i].kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
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

    /// End (exclusive) of a dotted name starting at `i`: `a`, `a.b`, `"a".b.c`,
    /// `db.*`. Returns `i` when there is no name.
    pub(crate) fn name_end(&self, i: usize, end: usize) -> usize {
        let part = |p: &Self, j: usize| p.is_name(j, end) || p.is_op(j, end, b"*");
        if !part(self, i) {
            return i;
        }
        let mut j = i + 1;
        while self.kind(j, end) == Some(TokenKind::Dot) && part(self, j + 1) {
            j += 2;
        }
        j
    }

    pub(crate) fn mark(&mut self, from: usize, to: usize) {
        for t in &mut self.tokens[from..to] {
            if !matches!(t.kind, TokenKind::LParen | TokenKind::RParen) {
                t.mark = MARK_CONSUMED;
            }
        }
    }

    pub(crate) fn record_relation(&mut self, from: usize, to: usize) {
        self.relations
            .push(self.sql, &self.tokens[from..to], self.mysql);
    }

    pub(crate) fn record_function(&mut self, from: usize, to: usize) {
        self.functions
            .push(self.sql, &self.tokens[from..to], self.mysql);
    }

    /// Classifies tokens `[start, end)` as one statement (and any statements
    /// nested in it). Returns its index.
    pub(crate) fn statement(&mut self, start: usize, end: usize, depth: u32, parent: u32) -> usize {
        let index = self.out.len();
        let first = self.tokens[start];
        let last = self.tokens[end - 1];
        let mut statement = Statement {
            span: Span {
                start: first.start,
                end: last.end,
            },
            tokens: Span::new(start, end),
            parent,
            flags: if parent == NO_PARENT {
                Flags::default()
            } else {
                Flags::NESTED
            },
            ..Statement::default()
        };
        self.out.push(statement);
        let relations_start = self.relations.len();
        let functions_start = self.functions.len();
        // Error tokens end the token stream, so only the last can be one.
        let broken = matches!(last.kind, TokenKind::Unterminated | TokenKind::Ambiguous);
        if !broken {
            let head = self.head(start, end, depth);
            let (feature_flags, ok) = self.features(start, end, depth, index, head.class);
            statement.class = if ok {
                head.class
            } else {
                StatementClass::Unknown
            };
            statement.object = head.object;
            statement.flags.insert(head.flags | feature_flags);
            statement.name = head.name;
            statement.body = head.body;
        }
        statement.relations = Span::new(relations_start, self.relations.len());
        statement.functions = Span::new(functions_start, self.functions.len());
        self.out[index] = statement;
        index
    }

    /// Walks every token of `[start, end)`. Returns feature flags and false
    /// when the statement cannot be trusted (nesting too deep, an identifier
    /// whose spelling we cannot decode).
    fn features(
        &mut self,
        start: usize,
        end: usize,
        depth: u32,
        index: usize,
        class: StatementClass,
    ) -> (Flags, bool) {
        let mut flags = Flags::default();
        let mut ok = true;
        self.call_pending = false;
        let mut base = 0u32;
        while self.kind(start + base as usize, end) == Some(TokenKind::LParen) {
            base += 1;
        }
        let mut paren_depth = 0u32;
        // Bit d set: the paren at depth d holds a function's arguments, where
        // FROM is an argument keyword (EXTRACT(x FROM y)), not a relation.
        let mut call_parens = 0u64;
        let mut next_paren_is_call = false;
        let grant = matches!(class, StatementClass::Grant | StatementClass::Revoke);
        let mut i = start;
        while i < end {
            let token = self.tokens[i];
            if token.kind == TokenKind::QuotedIdent && self.undecodable_ident(i, end) {
                ok = false;
            }
            if token.mark != 0 {
                i += 1;
                continue;
            }
            match token.kind {
                TokenKind::LParen => {
                    if self.nested_statement_at(i + 1, end) {
                        let close = self.matching_paren(i, end);
                        if depth + 1 >= MAX_NESTING {
                            ok = false;
                        } else if close > i + 1 {
                            let nested = self.statement(i + 1, close, depth + 1, index as u32);
                            // An unreadable inner statement makes the outer one unreadable.
                            ok &= self.out[nested].class != StatementClass::Unknown;
                        }
                        i = close + 1;
                        next_paren_is_call = false;
                        continue;
                    }
                    paren_depth += 1;
                    if paren_depth < 64 {
                        let bit = 1u64 << paren_depth;
                        if next_paren_is_call {
                            call_parens |= bit;
                        } else {
                            call_parens &= !bit;
                        }
                    }
                    next_paren_is_call = false;
                    i += 1;
                }
                TokenKind::RParen => {
                    paren_depth = paren_depth.saturating_sub(1);
                    i += 1;
                }
                TokenKind::Word | TokenKind::QuotedIdent => {
                    let in_call = paren_depth < 64 && call_parens & (1u64 << paren_depth) != 0;
                    let top = paren_depth <= base;
                    // Only the keywords matched below need the (rarer)
                    // keyword-used-as-a-name check; every other word takes
                    // the name path either way.
                    let kw = match token.kw {
                        Kw::Where | Kw::From | Kw::Join | Kw::References | Kw::Using | Kw::Into
                            if token.kind == TokenKind::Word && !self.keyword_is_name(i, end) =>
                        {
                            token.kw
                        }
                        _ => Kw::None,
                    };
                    match kw {
                        Kw::Where if top => {
                            flags.insert(Flags::HAS_WHERE);
                            i += 1;
                        }
                        Kw::From
                            if !in_call
                                && !grant
                                && self.kw(i.wrapping_sub(1), end) != Kw::Distinct =>
                        {
                            i = self.relation_list(i + 1, end);
                            next_paren_is_call = std::mem::take(&mut self.call_pending);
                        }
                        Kw::Join | Kw::References if !grant => {
                            i = self.relation_list_one(i + 1, end);
                            next_paren_is_call = std::mem::take(&mut self.call_pending);
                        }
                        Kw::Using
                            if matches!(class, StatementClass::Delete | StatementClass::Merge)
                                && self.is_name(i + 1, end) =>
                        {
                            i = self.relation_list(i + 1, end);
                            next_paren_is_call = std::mem::take(&mut self.call_pending);
                        }
                        Kw::Into if !grant => {
                            let mut j = i + 1;
                            if matches!(self.kw(j, end), Kw::Outfile | Kw::Dumpfile) {
                                flags.insert(Flags::INTO_OUTFILE);
                                i = j + 1;
                                continue;
                            }
                            while matches!(
                                self.kw(j, end),
                                Kw::Temporary | Kw::Temp | Kw::Unlogged | Kw::Table
                            ) {
                                j += 1;
                            }
                            let name_end = self.name_end(j, end);
                            if name_end > j {
                                self.record_relation(j, name_end);
                                if class == StatementClass::Select && top {
                                    flags.insert(Flags::SELECT_INTO);
                                }
                            }
                            i = name_end.max(j);
                        }
                        _ => {
                            // Token `i` is a name, so only a dot can make it longer.
                            let name_end = if self.kind(i + 1, end) == Some(TokenKind::Dot) {
                                self.name_end(i, end)
                            } else {
                                i + 1
                            };
                            if self.kind(name_end, end) == Some(TokenKind::LParen)
                                && self.is_call(i, name_end, end)
                            {
                                self.record_function(i, name_end);
                                next_paren_is_call = true;
                            }
                            i = name_end.max(i + 1);
                        }
                    }
                }
                _ => {
                    i += 1;
                }
            }
        }
        (flags, ok)
    }

    /// Whether the name `[i, name_end)` followed by `(` is a function call
    /// rather than a keyword construct (`IN (`, `VALUES (`), a type modifier
    /// after `::`, or a column list.
    fn is_call(&self, i: usize, name_end: usize, end: usize) -> bool {
        // `x::varchar(10)`, `CAST(x AS numeric(10, 2))`, `AS alias(col)`.
        if self.is_op(i.wrapping_sub(1), end, b"::") || self.kw(i.wrapping_sub(1), end) == Kw::As {
            return false;
        }
        if name_end > i + 1 {
            return true;
        }
        !matches!(
            self.kw(i, end),
            Kw::In
                | Kw::Exists
                | Kw::Values
                | Kw::As
                | Kw::Any
                | Kw::All
                | Kw::Some
                | Kw::Array
                | Kw::Row
                | Kw::Over
                | Kw::Filter
                | Kw::Within
                | Kw::Using
                | Kw::On
                | Kw::And
                | Kw::Or
                | Kw::Not
                | Kw::Is
                | Kw::Into
                | Kw::From
                | Kw::Join
                | Kw::Where
                | Kw::Table
                | Kw::Returning
                | Kw::With
                | Kw::Select
                | Kw::Insert
                | Kw::Update
                | Kw::Delete
                | Kw::When
                | Kw::Then
                | Kw::Else
                | Kw::Set
                | Kw::Key
                | Kw::Primary
                | Kw::Unique
                | Kw::Check
                | Kw::Constraint
                | Kw::Foreign
                | Kw::References
                | Kw::Partition
                | Kw::Window
                | Kw::By
                | Kw::Lateral
                | Kw::Only
                | Kw::Of
                | Kw::To
                | Kw::Default
                | Kw::Index
                | Kw::Like
                | Kw::Between
                | Kw::Union
                | Kw::Except
                | Kw::Intersect
                | Kw::Interval
                | Kw::Do
                | Kw::Limit
                | Kw::Offset
                | Kw::Having
                | Kw::Order
                | Kw::Group
        )
    }

    /// PostgreSQL `U&"..."` with escapes (or a UESCAPE clause) spells a name
    /// we would have to decode; rather than guess, the statement is Unknown.
    fn undecodable_ident(&self, i: usize, end: usize) -> bool {
        let text = self.tokens[i].text(self.sql);
        if !matches!(text.first(), Some(b'u' | b'U')) {
            return false;
        }
        text.contains(&b'\\')
            || (self.kind(i + 1, end) == Some(TokenKind::Word)
                && self.tokens[i + 1]
                    .text(self.sql)
                    .eq_ignore_ascii_case(b"uescape"))
    }

    /// Whether `(` followed by the tokens at `i` opens a data-modifying
    /// statement (or a WITH that may hold one).
    fn nested_statement_at(&self, i: usize, end: usize) -> bool {
        match self.kw(i, end) {
            Kw::Delete => self.kw(i + 1, end) == Kw::From,
            Kw::Insert | Kw::Merge => self.kw(i + 1, end) == Kw::Into,
            Kw::Update => self.update_target_at(i + 1, end),
            Kw::With => {
                self.kw(i + 1, end) == Kw::Recursive
                    || (self.is_name(i + 1, end)
                        && (self.kw(i + 2, end) == Kw::As
                            || self.kind(i + 2, end) == Some(TokenKind::LParen)))
            }
            _ => false,
        }
    }

    /// Reads `name [AS alias] [, name ...]` (FROM lists, UPDATE targets)
    /// starting at `i`; a name followed by `(` is a table function and is
    /// recorded as a function. Returns the index after the list.
    pub(crate) fn relation_list(&mut self, mut i: usize, end: usize) -> usize {
        loop {
            i = self.relation_list_one(i, end);
            if self.kind(i, end) == Some(TokenKind::Comma) && self.is_name(i + 1, end) {
                i += 1;
            } else {
                return i;
            }
        }
    }

    /// One relation (or table function) with its optional alias.
    fn relation_list_one(&mut self, mut i: usize, end: usize) -> usize {
        // Only `ONLY (t)` and `t *` need the full form; plain names take
        // the path below.
        if (self.kw(i, end) == Kw::Only || self.is_op(i + 1, end, b"*"))
            && let Some(target) = self.relation_expr(i, end)
            && target.end > target.name_end
        {
            // `ONLY (t)` or `t *`: the name, then the alias as below.
            self.record_relation(target.name_start, target.name_end);
            return self.relation_alias(target.end, end);
        }
        while self.relation_modifier(i, end) {
            i += 1;
        }
        if self.kind(i, end) == Some(TokenKind::Word)
            && matches!(
                self.tokens[i].kw,
                Kw::Select | Kw::Values | Kw::Where | Kw::Set | Kw::With | Kw::Table
            )
            && !self.unreserved_relation_name(i, end)
        {
            return i;
        }
        let name_end = self.name_end(i, end);
        if name_end == i {
            return i;
        }
        if self.kind(name_end, end) == Some(TokenKind::LParen) {
            // Leave the `(` for the caller's walk, which tracks depth.
            self.record_function(i, name_end);
            self.call_pending = true;
            return name_end;
        }
        self.record_relation(i, name_end);
        let mut j = name_end;
        if self.is_op(j, end, b"*") {
            j += 1;
        }
        self.relation_alias(j, end)
    }

    /// An optional alias (`[AS] x [(cols)]`) after a relation ending at `j`.
    fn relation_alias(&mut self, mut j: usize, end: usize) -> usize {
        let name_end = j;
        if self.kw(j, end) == Kw::As {
            j += 1;
            if self.is_name(j, end) {
                j += 1;
            }
        } else if self.kind(j, end) == Some(TokenKind::QuotedIdent)
            || (self.kind(j, end) == Some(TokenKind::Word) && self.tokens[j].kw == Kw::None)
        {
            j += 1;
        }
        if j > name_end && self.kind(j, end) == Some(TokenKind::LParen) {
            // Column aliases: `t AS x(a, b)`.
            j = (self.matching_paren(j, end) + 1).min(end);
        }
        j
    }
}

mod shape;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
