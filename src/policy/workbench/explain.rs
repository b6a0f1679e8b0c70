//! `tollgate policy explain`: the lexer's and classifier's view of one SQL
//! string (statements with byte ranges, tokens, classes, relations,
//! functions, features) and, with a target's policy, the verdict as a
//! session computes it plus why each rule matched or did not.

use serde::Serialize;
use tollgate_codecs::sql::{Classifier, Dialect, Kw, MySqlMode, NO_PARENT, TokenKind};

use super::{Bench, CallerSpec, LexOptions, statement_names};
use crate::policy::rules::explain::RuleTrace;
use crate::policy::rules::{Action, Caller, DecidedBy, EvalScratch, PreparedVerdicts};

/// How to read the string.
#[derive(Clone, Debug)]
pub enum ExplainDialect {
    Postgres(LexOptions),
    MySql(MySqlMode),
}

impl ExplainDialect {
    fn dialect(&self) -> Dialect {
        match self {
            ExplainDialect::Postgres(l) => {
                crate::pg::lexmode::pg_dialect(l.standard_conforming_strings)
            }
            ExplainDialect::MySql(m) => Dialect::MySql(*m),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Explained {
    pub dialect: &'static str,
    pub statements: Vec<StatementView>,
    /// With a policy: the string's verdict, as a session computes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<super::Judged>,
}

#[derive(Debug, Serialize)]
pub struct StatementView {
    pub index: usize,
    /// The enclosing statement (a CTE's DML, EXPLAIN ANALYZE's target,
    /// PREPARE's body), if nested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// Byte range in the input.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub class: &'static str,
    pub object: &'static str,
    /// Every selector name that matches: class, `<class>_<object>`, features.
    pub selectors: Vec<String>,
    pub relations: Vec<String>,
    pub functions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleTrace>>,
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub kind: String,
    pub start: u32,
    pub end: u32,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
}

/// Explains `sql`; `policy` adds the verdict and the rule trace.
pub fn explain(
    sql: &[u8],
    how: &ExplainDialect,
    tokens: bool,
    policy: Option<(&Bench, &CallerSpec)>,
) -> Result<Explained, super::WorkbenchError> {
    let dialect = how.dialect();
    let mut classifier = Classifier::new();
    let c = classifier.classify(sql, dialect);
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let statements = c
        .statements()
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let range = s.span.range();
            StatementView {
                index,
                parent: (s.parent != NO_PARENT).then_some(s.parent as usize),
                start: range.start,
                end: range.end,
                text: lossy(c.text(s.span)),
                class: s.class.as_str(),
                object: s.object.as_str(),
                selectors: statement_names(s),
                relations: c.relations(s).map(|n| lossy(n.full)).collect(),
                functions: c.functions(s).map(|n| lossy(n.full)).collect(),
                tokens: tokens.then(|| {
                    c.tokens(s)
                        .iter()
                        .map(|t| TokenView {
                            kind: format!("{:?}", t.kind),
                            start: t.start,
                            end: t.end,
                            text: lossy(t.text(sql)),
                            keyword: (t.kind == TokenKind::Word && t.kw != Kw::None)
                                .then(|| format!("{:?}", t.kw)),
                        })
                        .collect()
                }),
                rules: policy.map(|(bench, who)| {
                    let caller = Caller {
                        subject: &who.subject,
                        groups: &who.groups,
                    };
                    bench.policy.trace(&c, s, &caller)
                }),
            }
        })
        .collect();
    let verdict = match policy {
        None => None,
        Some((bench, who)) => Some(match how {
            ExplainDialect::Postgres(lex) => {
                let unit = super::Unit {
                    sql: sql.to_vec(),
                    line: None,
                    session: None,
                    caller: None,
                    recorded: None,
                    function_oid: None,
                };
                bench
                    .run(std::slice::from_ref(&unit), Some(who), lex)?
                    .into_iter()
                    .next()
                    .ok_or(super::WorkbenchError::NoCaller)?
            }
            ExplainDialect::MySql(_) => mysql_verdict(bench, who, sql, dialect),
        }),
    };
    Ok(Explained {
        dialect: if dialect.is_mysql() {
            "mysql"
        } else {
            "postgres"
        },
        statements,
        verdict,
    })
}

/// The MySQL dialect has no session glue yet: the verdict is the policy's
/// `evaluate` itself, as a MySQL session will call it.
fn mysql_verdict(bench: &Bench, who: &CallerSpec, sql: &[u8], dialect: Dialect) -> super::Judged {
    let caller = Caller {
        subject: &who.subject,
        groups: &who.groups,
    };
    let v = bench.policy.evaluate(
        sql,
        dialect,
        &caller,
        &mut EvalScratch::new(),
        &mut PreparedVerdicts::new(),
    );
    let rule = match v.decided_by {
        DecidedBy::Rule { name, .. } => name.to_string(),
        DecidedBy::Unclassified => "unclassified".into(),
        DecidedBy::Unmatched => "unmatched".into(),
        DecidedBy::Empty => "empty".into(),
    };
    let message = match v.action {
        Action::Block { message } | Action::Approve { message } => Some(message.to_string()),
        _ => None,
    };
    let mut classes: Vec<String> = v.classes.iter().map(|c| c.as_str().to_string()).collect();
    classes.dedup();
    super::Judged {
        statement: String::from_utf8_lossy(sql).into_owned(),
        line: None,
        session: None,
        subject: who.subject.clone(),
        classes,
        verdict: v.kind().as_str(),
        rule,
        message,
        shadow: v.shadow.map(|s| super::expect::Expectation {
            verdict: s.action.as_str().to_string(),
            rule: Some(s.rule.to_string()),
        }),
        masking: None,
        recorded: None,
    }
}
