//! What PostgreSQL's own parse tree says about a SQL string: for each
//! top-level statement its byte range and the classes tollgate may give it,
//! and every DELETE/UPDATE anywhere in it (CTE bodies, `COPY (..)`,
//! `EXPLAIN`, `PREPARE`) with its target and whether it has a WHERE.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, RangeVar, WithClause};
use tollgate_codecs::sql::StatementClass as C;

/// One top-level statement of the tree.
#[derive(Debug)]
pub struct TreeStatement {
    /// Byte range in the input.
    pub start: usize,
    pub end: usize,
    /// The node's name (`DeleteStmt`), for reports.
    pub node: &'static str,
    /// Classes tollgate may give it without being more permissive than the
    /// tree (`Unknown` always, which the policy blocks); empty when the
    /// statement kind is not compared.
    pub classes: Vec<C>,
}

/// A data-modifying statement found anywhere in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeDml {
    pub class: C,
    /// The target relation's name (unqualified, as the server spells it).
    pub relation: String,
    pub has_where: bool,
}

/// The tree's view of a whole SQL string.
#[derive(Debug, Default)]
pub struct Tree {
    pub statements: Vec<TreeStatement>,
    pub dml: Vec<TreeDml>,
}

/// Parses `sql` with PostgreSQL's parser; `None` when the server would
/// reject it (then nothing in it runs, and there is nothing to compare).
pub fn parse(sql: &str) -> Option<Tree> {
    let parsed = pg_query::parse(sql).ok()?;
    let mut tree = Tree::default();
    for raw in &parsed.protobuf.stmts {
        let node = raw.stmt.as_ref().and_then(|n| n.node.as_ref())?;
        let start = usize::try_from(raw.stmt_location).ok()?;
        let end = match usize::try_from(raw.stmt_len).ok()? {
            0 => sql.len(),
            len => start + len,
        };
        let (name, classes) = classes_of(node);
        tree.statements.push(TreeStatement {
            start,
            end,
            node: name,
            classes,
        });
        collect_dml(node, &mut tree.dml);
    }
    Some(tree)
}

fn inner(node: &Option<Box<protobuf::Node>>) -> Option<&NodeEnum> {
    node.as_ref().and_then(|n| n.node.as_ref())
}

/// The classes tollgate may give a top-level node, and the node's name.
fn classes_of(node: &NodeEnum) -> (&'static str, Vec<C>) {
    let (name, classes): (&'static str, Vec<C>) = match node {
        NodeEnum::SelectStmt(_) => ("SelectStmt", vec![C::Select]),
        NodeEnum::InsertStmt(_) => ("InsertStmt", vec![C::Insert]),
        NodeEnum::UpdateStmt(_) => ("UpdateStmt", vec![C::Update]),
        NodeEnum::DeleteStmt(_) => ("DeleteStmt", vec![C::Delete]),
        NodeEnum::MergeStmt(_) => ("MergeStmt", vec![C::Merge]),
        NodeEnum::TruncateStmt(_) => ("TruncateStmt", vec![C::Truncate]),
        NodeEnum::CopyStmt(_) => ("CopyStmt", vec![C::Copy]),
        NodeEnum::DropStmt(_) => ("DropStmt", vec![C::Drop]),
        NodeEnum::DropdbStmt(_) => ("DropdbStmt", vec![C::Drop]),
        NodeEnum::DropRoleStmt(_) => ("DropRoleStmt", vec![C::Drop]),
        NodeEnum::DropTableSpaceStmt(_) => ("DropTableSpaceStmt", vec![C::Drop]),
        NodeEnum::CreateStmt(_) => ("CreateStmt", vec![C::Create]),
        NodeEnum::CreateFunctionStmt(_) => ("CreateFunctionStmt", vec![C::Create]),
        NodeEnum::GrantStmt(g) => (
            "GrantStmt",
            vec![if g.is_grant { C::Grant } else { C::Revoke }],
        ),
        NodeEnum::DoStmt(_) => ("DoStmt", vec![C::Do]),
        NodeEnum::CallStmt(_) => ("CallStmt", vec![C::Call]),
        NodeEnum::ExplainStmt(e) => {
            let analyze = analyzes(&e.options);
            let mut classes = match inner(&e.query) {
                Some(q) => classes_of(q).1,
                None => Vec::new(),
            };
            if !analyze && !classes.is_empty() {
                // Plain EXPLAIN runs nothing: `explain`, or the statement's
                // own class (stricter), are both faithful.
                classes.push(C::Explain);
            }
            ("ExplainStmt", classes)
        }
        NodeEnum::PrepareStmt(p) => (
            "PrepareStmt",
            inner(&p.query).map(|q| classes_of(q).1).unwrap_or_default(),
        ),
        _ => ("other", Vec::new()),
    };
    (name, classes)
}

/// Appends every DELETE/UPDATE in `node` (and the statements nested in it).
fn collect_dml(node: &NodeEnum, out: &mut Vec<TreeDml>) {
    match node {
        NodeEnum::DeleteStmt(d) => {
            push_dml(
                out,
                C::Delete,
                d.relation.as_ref(),
                d.where_clause.is_some(),
            );
            ctes(d.with_clause.as_ref(), out);
        }
        NodeEnum::UpdateStmt(u) => {
            push_dml(
                out,
                C::Update,
                u.relation.as_ref(),
                u.where_clause.is_some(),
            );
            ctes(u.with_clause.as_ref(), out);
        }
        NodeEnum::InsertStmt(i) => {
            ctes(i.with_clause.as_ref(), out);
            if let Some(s) = inner(&i.select_stmt) {
                collect_dml(s, out);
            }
        }
        NodeEnum::MergeStmt(m) => ctes(m.with_clause.as_ref(), out),
        NodeEnum::SelectStmt(s) => select(s, out),
        NodeEnum::CopyStmt(c) => nested(&c.query, out),
        // Plain EXPLAIN plans without running; EXPLAIN ANALYZE runs.
        NodeEnum::ExplainStmt(e) if analyzes(&e.options) => nested(&e.query, out),
        NodeEnum::PrepareStmt(p) => nested(&p.query, out),
        NodeEnum::CreateTableAsStmt(c) => nested(&c.query, out),
        NodeEnum::DeclareCursorStmt(c) => nested(&c.query, out),
        _ => {}
    }
}

fn nested(node: &Option<Box<protobuf::Node>>, out: &mut Vec<TreeDml>) {
    if let Some(n) = inner(node) {
        collect_dml(n, out);
    }
}

fn select(s: &protobuf::SelectStmt, out: &mut Vec<TreeDml>) {
    ctes(s.with_clause.as_ref(), out);
    for arm in [&s.larg, &s.rarg].into_iter().flatten() {
        select(arm, out);
    }
}

fn ctes(with: Option<&WithClause>, out: &mut Vec<TreeDml>) {
    for cte in with.map(|w| w.ctes.as_slice()).unwrap_or_default() {
        if let Some(NodeEnum::CommonTableExpr(c)) = cte.node.as_ref() {
            nested(&c.ctequery, out);
        }
    }
}

fn push_dml(out: &mut Vec<TreeDml>, class: C, relation: Option<&RangeVar>, has_where: bool) {
    out.push(TreeDml {
        class,
        relation: relation.map(|r| r.relname.clone()).unwrap_or_default(),
        has_where,
    });
}

/// Whether EXPLAIN options turn ANALYZE on (`ANALYZE`, `(ANALYZE)`,
/// `(ANALYZE true)`; not `(ANALYZE off)`, `false`, `0`, `no`).
fn analyzes(options: &[protobuf::Node]) -> bool {
    options.iter().any(|o| match o.node.as_ref() {
        Some(NodeEnum::DefElem(d)) if d.defname == "analyze" => match inner(&d.arg) {
            None => true,
            Some(NodeEnum::String(s)) => !matches!(s.sval.as_str(), "off" | "false" | "no" | "0"),
            Some(NodeEnum::Integer(i)) => i.ival != 0,
            Some(NodeEnum::Boolean(b)) => b.boolval,
            Some(_) => true,
        },
        _ => false,
    })
}
