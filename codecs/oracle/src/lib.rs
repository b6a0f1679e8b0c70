//! Differential oracle: tollgate's SQL lexer and classifier against
//! PostgreSQL's own scanner and parser (libpg_query, the PostgreSQL 15
//! grammar). For one SQL string it compares
//! - the scanner's tokens: where every bare word and every `;` starts
//!   (a word one side sees and the other does not is a literal, comment or
//!   identifier read differently);
//! - the parse tree's top-level statements: that tollgate starts a
//!   statement inside each one and gives the first the tree's class;
//! - every DELETE/UPDATE in the tree, nested ones included: that tollgate
//!   judges one of the same class on the same table, and never claims a
//!   WHERE the tree does not have.
//!
//! A finding is `Permissive` when tollgate's reading would let through
//! something the tree says is there (a test failure), `Stricter` when it
//! only over-blocks (reported). Strings the server rejects are skipped:
//! nothing in them runs. The parser is the oracle only; the gateway's data
//! path keeps tollgate's own lexer.

pub mod generate;
pub mod tree;

use std::collections::HashMap;

use pg_query::protobuf::Token as PgToken;
use tollgate_codecs::sql::{
    Classified, Classifier, Dialect, Flags, NO_PARENT, Statement, StatementClass, TokenKind,
    tokenize,
};

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
const NAME_MAX: usize = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Tollgate lets through something the tree says is there.
    Permissive,
    /// Tollgate only over-blocks.
    Stricter,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
}

/// The result of checking one SQL string.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The server rejects the string: nothing was compared.
    pub rejected: bool,
    /// Top-level statements the tree had.
    pub statements: usize,
    pub findings: Vec<Finding>,
}

impl Outcome {
    pub fn permissive(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Permissive)
    }

    fn add(&mut self, severity: Severity, what: String) {
        self.findings.push(Finding { severity, what });
    }
}

/// Compares tollgate with PostgreSQL on `sql` (standard_conforming_strings
/// on, the server default and the only mode libpg_query parses in).
pub fn check(classifier: &mut Classifier, sql: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(tree) = tree::parse(sql) else {
        outcome.rejected = true;
        return outcome;
    };
    outcome.statements = tree.statements.len();
    let classified = classifier.classify(sql.as_bytes(), Dialect::POSTGRES);
    compare_tokens(sql, &mut outcome);
    compare_statements(&tree, &classified, &mut outcome);
    compare_dml(&tree, &classified, &mut outcome);
    outcome
}

/// Start offsets of bare words and of `;`, as the server's scanner reads them.
fn pg_starts(sql: &str) -> Option<(Vec<usize>, Vec<usize>)> {
    let scanned = pg_query::scan(sql).ok()?;
    let bytes = sql.as_bytes();
    let (mut words, mut semicolons) = (Vec::new(), Vec::new());
    for t in &scanned.tokens {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        let token = PgToken::from_i32(t.token);
        if token == Some(PgToken::Ascii59) {
            semicolons.push(start);
            continue;
        }
        let keyword = t.keyword_kind != 0;
        let ident = token == Some(PgToken::Ident) && bytes.get(start) != Some(&b'"');
        // `N'..'`: the scanner returns NATIONAL for the `N` and then the
        // literal; tollgate keeps them one literal token.
        let national = end == start + 1
            && matches!(bytes.get(start), Some(b'n' | b'N'))
            && bytes.get(end) == Some(&b'\'');
        if (keyword || ident) && !national {
            words.push(start);
        }
    }
    Some((words, semicolons))
}

fn compare_tokens(sql: &str, outcome: &mut Outcome) {
    let Some((pg_words, pg_semicolons)) = pg_starts(sql) else {
        return;
    };
    let mut tokens = Vec::new();
    if tokenize(sql.as_bytes(), Dialect::POSTGRES, &mut tokens).is_err() {
        return;
    }
    let starts = |kind: TokenKind| -> Vec<usize> {
        tokens
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.start as usize)
            .collect()
    };
    diff_starts(sql, "word", &pg_words, &starts(TokenKind::Word), outcome);
    diff_starts(
        sql,
        "`;`",
        &pg_semicolons,
        &starts(TokenKind::Semicolon),
        outcome,
    );
}

/// Words one side sees and the other does not. A keyword the server sees
/// that tollgate does not is hidden from judgement; one tollgate sees that
/// the server does not is text tollgate reads as code.
fn diff_starts(sql: &str, what: &str, pg: &[usize], ours: &[usize], outcome: &mut Outcome) {
    let only = |a: &[usize], b: &[usize]| -> Vec<usize> {
        a.iter()
            .copied()
            .filter(|x| b.binary_search(x).is_err())
            .collect()
    };
    let snippet = |at: usize| {
        let end = (at + 24).min(sql.len());
        let end = (end..=sql.len())
            .find(|&e| sql.is_char_boundary(e))
            .unwrap_or(sql.len());
        sql.get(at..end).unwrap_or_default().to_string()
    };
    for at in only(pg, ours) {
        outcome.add(
            Severity::Permissive,
            format!(
                "server scans a {what} at {at} ({:?}) that tollgate does not",
                snippet(at)
            ),
        );
    }
    for at in only(ours, pg) {
        outcome.add(
            Severity::Permissive,
            format!(
                "tollgate scans a {what} at {at} ({:?}) that the server does not",
                snippet(at)
            ),
        );
    }
}

fn top_level<'a>(classified: &Classified<'a>) -> impl Iterator<Item = &'a Statement> {
    classified
        .statements()
        .iter()
        .filter(|s| s.parent == NO_PARENT)
}

fn compare_statements(tree: &tree::Tree, classified: &Classified<'_>, outcome: &mut Outcome) {
    for t in &tree.statements {
        let inside: Vec<&Statement> = top_level(classified)
            .filter(|s| (t.start..t.end).contains(&(s.span.start as usize)))
            .collect();
        let Some(first) = inside.first() else {
            outcome.add(
                Severity::Permissive,
                format!(
                    "{} at {}..{} has no statement in tollgate",
                    t.node, t.start, t.end
                ),
            );
            continue;
        };
        if inside.len() > 1 {
            outcome.add(
                Severity::Stricter,
                format!(
                    "{} at {}..{} is {} statements in tollgate",
                    t.node,
                    t.start,
                    t.end,
                    inside.len()
                ),
            );
        }
        if first.class != StatementClass::Unknown
            && !t.classes.is_empty()
            && !t.classes.contains(&first.class)
        {
            outcome.add(
                Severity::Permissive,
                format!(
                    "{} at {}..{} classified {}",
                    t.node, t.start, t.end, first.class
                ),
            );
        }
    }
}

/// Same name as the server resolves it: truncated like the server does.
fn same_name(ours: &[u8], tree: &str) -> bool {
    let tree = tree.as_bytes();
    ours == tree || (ours.len() > NAME_MAX && ours.get(..NAME_MAX) == Some(tree))
}

fn compare_dml(tree: &tree::Tree, classified: &Classified<'_>, outcome: &mut Outcome) {
    if classified
        .statements()
        .iter()
        .any(|s| s.class == StatementClass::Unknown)
    {
        // An unknown statement is blocked: the string fails closed.
        return;
    }
    // (class, table) -> (tree count, tree count without WHERE).
    let mut want: HashMap<(StatementClass, &str), (usize, usize)> = HashMap::new();
    for d in &tree.dml {
        let e = want.entry((d.class, d.relation.as_str())).or_default();
        e.0 += 1;
        e.1 += usize::from(!d.has_where);
    }
    for ((class, table), (count, without_where)) in want {
        let ours: Vec<&Statement> = classified
            .statements()
            .iter()
            .filter(|s| {
                s.class == class && classified.relations(s).any(|n| same_name(n.bare, table))
            })
            .collect();
        let ours_without = ours.iter().filter(|s| !s.has(Flags::HAS_WHERE)).count();
        if ours.len() < count {
            outcome.add(
                Severity::Permissive,
                format!(
                    "{count} {class} on {table:?} in the tree, tollgate judges {}",
                    ours.len()
                ),
            );
        } else if ours_without < without_where {
            outcome.add(
                Severity::Permissive,
                format!(
                    "{without_where} {class} on {table:?} without WHERE in the tree, tollgate sees {ours_without}"
                ),
            );
        } else if ours_without > without_where {
            outcome.add(
                Severity::Stricter,
                format!("tollgate misses a WHERE of {class} on {table:?}"),
            );
        }
    }
}
