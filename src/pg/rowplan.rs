//! The masking plan of one result: which columns are masked by name, how
//! each value is read (text, typed, array, record, JSON), and what happens
//! to columns whose origin the gateway cannot establish.
//!
//! Column names come from the RowDescription (or the Describe answer the
//! shape tracker kept). A column renamed or computed from a masked one
//! (`ssn AS x`, `upper(email)`, `array_agg(ssn)`, `email || ''`) no longer
//! carries the masked name, so the statement's text is read with the SQL
//! lexer: when it names an identifier a column glob matches, every result
//! column the server reports as an expression (table OID 0) or that the
//! statement names as an alias is masked whole with that rule (or, with
//! `unknown_origin = "refuse"`, the session is refused). A plain table
//! column keeps its name-only treatment.

use tollgate_codecs::sql::{Dialect, Kw, PgMode, Token, TokenKind, tokenize};

use super::shapes::{Column, ResultShape};
use super::values::Kind;
use crate::policy::mask::{ColumnAction, MaskPolicy, ResultPlan, UnknownOrigin, UnknownShape};

/// How the rows of the current result are masked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowMode {
    /// Nothing in these rows can be masked.
    #[default]
    Off,
    /// By the plan and the column kinds.
    Mask,
    /// Shape unknown: every value NULL.
    AllNull,
}

/// A result's plan, reused across results (its vectors keep their capacity).
#[derive(Debug, Default)]
pub struct RowPlan {
    pub plan: ResultPlan,
    pub kinds: Vec<Kind>,
    pub mode: RowMode,
    tokens: Vec<Token>,
}

/// Why a result is refused (the message the client sees).
#[derive(Debug, thiserror::Error)]
pub enum ResultRefusal {
    #[error(
        "tollgate cannot tell the row shape of {what}, so it cannot mask it; \
         describe the statement first (masking.unknown_shape = \"refuse\")"
    )]
    UnknownShape { what: String },
    #[error(
        "tollgate cannot tell where result column \"{column}\" comes from and the \
         statement references masked column \"{referenced}\" (masking.unknown_origin = \"refuse\")"
    )]
    UnknownOrigin { column: String, referenced: String },
    #[error(
        "tollgate cannot tell which columns this COPY sends, so it cannot mask them \
         by name: {why}"
    )]
    Copy { why: String },
}

impl RowPlan {
    /// Plans the result that starts now.
    pub fn start(
        &mut self,
        m: &MaskPolicy,
        groups: &[String],
        shape: ResultShape,
        standard_conforming_strings: bool,
    ) -> Result<(), ResultRefusal> {
        self.kinds.clear();
        let (columns, sql) = match shape {
            ResultShape::Unknown { what } => {
                m.plan_caller(groups, &mut self.plan);
                if self.plan.is_noop() && !m.has_column_rules(&self.plan) {
                    // Nothing this caller could have masked anyway.
                    self.mode = RowMode::Off;
                    return Ok(());
                }
                return match m.unknown_shape() {
                    UnknownShape::MaskAll => {
                        self.mode = RowMode::AllNull;
                        Ok(())
                    }
                    UnknownShape::Refuse => Err(ResultRefusal::UnknownShape { what }),
                };
            }
            ResultShape::Known { columns, sql } => (columns, sql),
        };
        m.plan_result(columns.iter().map(|c| &*c.name), groups, &mut self.plan);
        self.kinds
            .extend(columns.iter().map(|c| Kind::of(c.type_oid, c.format)));
        self.derived(m, &columns, sql.as_deref(), standard_conforming_strings)?;
        let json_keys = m.has_column_rules(&self.plan)
            && self.kinds.iter().any(|k| matches!(k, Kind::Json { .. }));
        self.mode = if self.plan.is_noop() && !json_keys {
            RowMode::Off
        } else {
            RowMode::Mask
        };
        Ok(())
    }

    /// Masks whole the columns derived from a masked column the statement
    /// references (see the module doc).
    fn derived(
        &mut self,
        m: &MaskPolicy,
        columns: &[Column],
        sql: Option<&[u8]>,
        standard_conforming_strings: bool,
    ) -> Result<(), ResultRefusal> {
        let Some(any_rule) = m.first_column_rule(&self.plan) else {
            return Ok(());
        };
        let mut aliases: Vec<Vec<u8>> = Vec::new();
        let referenced = match sql {
            Some([]) => return Ok(()),
            Some(sql) => self.references(m, sql, standard_conforming_strings, &mut aliases),
            // A text too long to keep (or to lex) may name any column.
            None => Some((any_rule, "(statement text not kept)".to_string())),
        };
        let Some((rule, name)) = referenced else {
            return Ok(());
        };
        for (i, c) in columns.iter().enumerate() {
            if matches!(self.plan.column(i), ColumnAction::Whole { .. }) {
                continue;
            }
            let lower = c.name.to_ascii_lowercase();
            let plain = c.table_oid != 0 && c.column_id > 0 && !aliases.contains(&lower);
            if plain {
                continue;
            }
            match m.unknown_origin() {
                UnknownOrigin::Mask => m.mask_column_whole(&mut self.plan, i, rule),
                UnknownOrigin::Refuse => {
                    return Err(ResultRefusal::UnknownOrigin {
                        column: String::from_utf8_lossy(&c.name).into_owned(),
                        referenced: name,
                    });
                }
            }
        }
        Ok(())
    }

    /// The first masked column `sql` names (its rule and name), and the
    /// names it gives as aliases (after `AS`, or right after a masked name).
    fn references(
        &mut self,
        m: &MaskPolicy,
        sql: &[u8],
        standard_conforming_strings: bool,
        aliases: &mut Vec<Vec<u8>>,
    ) -> Option<(u8, String)> {
        let dialect = Dialect::Postgres(PgMode {
            standard_conforming_strings,
        });
        self.tokens.clear();
        if tokenize(sql, dialect, &mut self.tokens).is_err() {
            let rule = m.first_column_rule(&self.plan)?;
            return Some((rule, "(statement text not lexed)".to_string()));
        }
        let mut referenced: Option<(u8, String)> = None;
        let mut prev_masked = false;
        let mut prev_as = false;
        for tok in &self.tokens {
            let ident = match tok.kind {
                TokenKind::Word => Some(tok.text(sql).to_ascii_lowercase()),
                TokenKind::QuotedIdent => Some(unquote(tok.text(sql))),
                _ => None,
            };
            let is_as = tok.kind == TokenKind::Word && tok.kw == Kw::As;
            if let Some(id) = &ident
                && !is_as
            {
                if prev_as || prev_masked {
                    aliases.push(id.clone());
                }
                // A name after AS is an alias being defined (`'x' AS ssn`),
                // not a reference to the masked column.
                let rule = if prev_as {
                    None
                } else {
                    m.column_rule(&self.plan, id)
                };
                if let Some(rule) = rule
                    && referenced.is_none()
                {
                    referenced = Some((rule, String::from_utf8_lossy(id).into_owned()));
                }
                prev_masked = rule.is_some();
            } else {
                prev_masked = false;
            }
            prev_as = is_as;
        }
        referenced
    }
}

/// What the masking plan reads from a statement's text alone, for
/// `tollgate policy test`: the first masked column the statement names for
/// a caller in `groups` (its rule's name and the column). Result columns
/// derived from it are masked whole (or refused, per `unknown_origin`);
/// which columns that is depends on the result the server describes.
pub fn masked_reference(
    m: &MaskPolicy,
    groups: &[String],
    sql: &[u8],
    standard_conforming_strings: bool,
) -> Option<(String, String)> {
    let mut rp = RowPlan::default();
    m.plan_caller(groups, &mut rp.plan);
    m.first_column_rule(&rp.plan)?;
    let mut aliases = Vec::new();
    let (rule, column) = rp.references(m, sql, standard_conforming_strings, &mut aliases)?;
    Some((m.rule_name(rule).unwrap_or("?").to_string(), column))
}

/// `"Ssn"` → `Ssn` (quoted identifiers keep their case; `""` is a quote).
fn unquote(q: &[u8]) -> Vec<u8> {
    let inner = q
        .strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .unwrap_or(q);
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        out.push(inner[i]);
        i += if inner[i] == b'"' && inner.get(i + 1) == Some(&b'"') {
            2
        } else {
            1
        };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::policy::mask::MaskingConfig;

    fn policy() -> MaskPolicy {
        let cfg: MaskingConfig =
            toml::from_str("[[rules]]\nname = 'n'\ncolumns = ['ssn']\nstyle = 'redact'\n").unwrap();
        MaskPolicy::new(&cfg, None).unwrap()
    }

    #[test]
    fn references_and_aliases_come_from_the_token_stream() {
        let m = policy();
        let mut rp = RowPlan::default();
        m.plan_caller(&[], &mut rp.plan);
        let mut aliases = Vec::new();
        let r = rp.references(
            &m,
            br#"select ssn as x, upper("SSN") y, 'ssn' from t"#,
            true,
            &mut aliases,
        );
        assert_eq!(r.map(|r| r.1).as_deref(), Some("ssn"));
        assert_eq!(aliases, vec![b"x".to_vec()]);
        aliases.clear();
        let r = rp.references(
            &m,
            b"select 'ssn', name /* ssn */ from t",
            true,
            &mut aliases,
        );
        assert!(r.is_none(), "strings and comments are not references");
        let r = rp.references(&m, b"select '123' as ssn from t", true, &mut aliases);
        assert!(r.is_none(), "an alias is not a reference");
        aliases.clear();
        let r = rp.references(&m, b"select ssn x from t", true, &mut aliases);
        assert!(r.is_some());
        assert_eq!(aliases, vec![b"x".to_vec()]);
    }
}
