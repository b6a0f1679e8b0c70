//! Grammar shapes the features pass must read exactly, because reading
//! them loosely either hides a statement from judgement or invents a WHERE
//! clause: PostgreSQL's `relation_expr` (`ONLY (t)`, `t *`) and keywords
//! used as names (a column label after `AS`, a field after `.`).

use super::Pass;
use crate::sql::keywords::Kw;
use crate::sql::lexer::TokenKind;

/// A `relation_expr`: where its name is and where the whole form ends.
pub(crate) struct RelationExpr {
    pub name_start: usize,
    pub name_end: usize,
    pub end: usize,
}

impl Pass<'_> {
    /// Whether the keyword token at `i` is used as a name: right after `AS`
    /// (PostgreSQL's `ColLabel` takes any keyword, so `RETURNING 1 AS
    /// where` labels a column) or after `.` (`t.where` is a field).
    pub(crate) fn keyword_is_name(&self, i: usize, end: usize) -> bool {
        match i.checked_sub(1) {
            Some(prev) => {
                self.kind(prev, end) == Some(TokenKind::Dot) || self.kw(prev, end) == Kw::As
            }
            None => false,
        }
    }

    /// Words before a relation that are not its name: `ONLY`, `LATERAL`,
    /// and MySQL's `LOW_PRIORITY`, `IGNORE`, `QUICK`, which PostgreSQL
    /// does not know (`DELETE FROM quick` deletes from a table `quick`).
    pub(crate) fn relation_modifier(&self, i: usize, end: usize) -> bool {
        match self.kw(i, end) {
            Kw::Only | Kw::Lateral => true,
            Kw::LowPriority | Kw::Ignore | Kw::Quick => self.mysql,
            _ => false,
        }
    }

    /// PostgreSQL does not reserve SET or VALUES: where a relation is
    /// expected they name one (`UPDATE set SET ..`, `DELETE FROM values`),
    /// except VALUES opening a row list.
    pub(crate) fn unreserved_relation_name(&self, i: usize, end: usize) -> bool {
        !self.mysql
            && match self.kw(i, end) {
                Kw::Set => true,
                Kw::Values => self.kind(i + 1, end) != Some(TokenKind::LParen),
                _ => false,
            }
    }

    /// PostgreSQL's `relation_expr` at `i`: `name`, `name *`, `ONLY name`,
    /// `ONLY (name)`. `None` when the tokens are not one.
    pub(crate) fn relation_expr(&self, i: usize, end: usize) -> Option<RelationExpr> {
        let only = self.kw(i, end) == Kw::Only;
        let mut j = if only { i + 1 } else { i };
        let parens = only && self.kind(j, end) == Some(TokenKind::LParen);
        if parens {
            j += 1;
        }
        let name_start = j;
        let name_end = self.name_end(j, end);
        if name_end == name_start || self.is_op(name_end - 1, end, b"*") {
            return None;
        }
        let mut after = name_end;
        if parens {
            if self.kind(after, end) != Some(TokenKind::RParen) {
                return None;
            }
            after += 1;
        } else if !only && self.is_op(after, end, b"*") {
            after += 1;
        }
        Some(RelationExpr {
            name_start,
            name_end,
            end: after,
        })
    }

    /// Whether the tokens at `i` (just after `UPDATE`) are an UPDATE
    /// statement's target: `relation_expr [[AS] alias] SET`. A column named
    /// `update` (`(update + 1)`) is not; `(UPDATE t * SET ..)` and
    /// `(UPDATE ONLY (t) SET ..)` are.
    pub(crate) fn update_target_at(&self, i: usize, end: usize) -> bool {
        let Some(target) = self.relation_expr(i, end) else {
            return false;
        };
        let mut j = target.end;
        if self.kw(j, end) == Kw::As {
            j += 1;
        }
        if self.kw(j, end) == Kw::Set {
            return true;
        }
        // An alias, then SET (`SET` itself cannot be a bare alias).
        self.is_name(j, end) && self.kw(j + 1, end) == Kw::Set
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "shape_tests.rs"]
mod tests;
