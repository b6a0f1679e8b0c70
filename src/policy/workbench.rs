//! The policy workbench behind `tollgate policy test`: judges statements
//! with exactly the code a PostgreSQL session runs (`pg::inspect::Inspector`
//! over the target's compiled policy, the same lexical-mode handling, the
//! masking plan's reading of the text) without connecting to anything.
//!
//! Input is a SQL file (split into statements by the real classifier, each
//! judged as if sent on its own, one after the other, in one session) or a
//! `tollgate recordings export` (JSON Lines, detected by its first line):
//! each recorded command is judged as the string it was, in a session per
//! recorded session, as the recorded caller unless `--as` overrides.

pub mod expect;
pub mod explain;

use std::collections::HashMap;

use serde::Serialize;
use tollgate_codecs::sql::{Classifier, NO_PARENT, Selector, Statement};

use crate::config::{Config, TargetConfig};
use crate::identity::{Identity, IdentitySource};
use crate::pg::inspect::{Decision, Inspector};
use crate::pg::{lexmode, rowplan};
use crate::policy::mask::MaskPolicy;
use crate::policy::rules::Policy;

/// Largest input (SQL file, export, expect file) the workbench reads.
pub const MAX_INPUT: u64 = 256 << 20;

/// Why the workbench could not run (exit status 2, not a verdict).
#[derive(Debug, thiserror::Error)]
pub enum WorkbenchError {
    #[error("{0}")]
    Config(String),
    #[error("no target named {name:?} in the configuration (targets: {known})")]
    NoTarget { name: String, known: String },
    #[error("target {target}: {reason}")]
    Target { target: String, reason: String },
    #[error("{what}: {reason}")]
    Read { what: String, reason: String },
    #[error("{what} is larger than {max} bytes")]
    TooLarge { what: String, max: u64 },
    #[error("recording export line {line}: {reason}")]
    Export { line: usize, reason: String },
    #[error("expect file line {line}: {reason}")]
    Expect { line: usize, reason: String },
    #[error("{0}")]
    Encoding(String),
    #[error("the input names no caller: give --as SUBJECT[,GROUPS]")]
    NoCaller,
}

/// The session state the statements are read under.
#[derive(Clone, Debug)]
pub struct LexOptions {
    /// `standard_conforming_strings` as the server reports it.
    pub standard_conforming_strings: bool,
    /// The client encoding the caller would set at start-up.
    pub client_encoding: Option<String>,
    /// Judge every statement as pipelined behind the one before (the
    /// lexical mode unsettled), as the relay does for a batch.
    pub pipelined: bool,
}

impl Default for LexOptions {
    fn default() -> Self {
        LexOptions {
            standard_conforming_strings: true,
            client_encoding: None,
            pipelined: false,
        }
    }
}

/// A caller: subject and groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallerSpec {
    pub subject: String,
    pub groups: Vec<String>,
}

impl CallerSpec {
    /// `SUBJECT[,GROUP...]`.
    pub fn parse(spec: &str) -> CallerSpec {
        let mut parts = spec.split(',').map(str::trim);
        CallerSpec {
            subject: parts.next().unwrap_or_default().to_string(),
            groups: parts.filter(|g| !g.is_empty()).map(String::from).collect(),
        }
    }

    fn identity(&self) -> Identity {
        Identity {
            subject: self.subject.clone(),
            issuer: String::new(),
            groups: self.groups.clone(),
            token_id: None,
            expires_at: None,
            source: IdentitySource::Token,
        }
    }
}

/// One string to judge.
#[derive(Clone, Debug)]
pub struct Unit {
    pub sql: Vec<u8>,
    /// 1-based line in a SQL file.
    pub line: Option<usize>,
    /// The recorded session (export input).
    pub session: Option<u64>,
    /// The recorded caller (export input).
    pub caller: Option<CallerSpec>,
    /// The verdict recorded at the time (export input).
    pub recorded: Option<expect::Expectation>,
    /// A recorded fast-path function call (`<fast-path call of … (oid N)>`).
    pub function_oid: Option<u32>,
}

/// A target's policy and masking, compiled as `run` compiles them.
pub struct Bench {
    pub target: String,
    pub policy: Policy,
    pub masking: Option<MaskPolicy>,
}

impl Bench {
    /// Loads and validates `config` (as `tollgate check` does) and compiles
    /// the policy and masking of `target`. Identity, TLS and credentials
    /// are not needed and not touched.
    pub fn load(config: &std::path::Path, target: &str) -> Result<Bench, WorkbenchError> {
        let c = Config::load(config).map_err(|e| WorkbenchError::Config(e.to_string()))?;
        Bench::for_target(&c, target)
    }

    pub fn for_target(c: &Config, target: &str) -> Result<Bench, WorkbenchError> {
        let t: &TargetConfig = c.targets.iter().find(|t| t.name == target).ok_or_else(|| {
            WorkbenchError::NoTarget {
                name: target.to_string(),
                known: c
                    .targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        let err = |reason: String| WorkbenchError::Target {
            target: t.name.clone(),
            reason,
        };
        let policy = Policy::compile(&t.policy).map_err(|e| err(format!("policy: {e}")))?;
        let masking = crate::snapshot::masking_for(t).map_err(|e| err(e.to_string()))?;
        Ok(Bench {
            target: t.name.clone(),
            policy,
            masking,
        })
    }

    /// Judges every unit; `caller` overrides the recorded callers.
    pub fn run(
        &self,
        units: &[Unit],
        caller: Option<&CallerSpec>,
        lex: &LexOptions,
    ) -> Result<Vec<Judged>, WorkbenchError> {
        if let Some(enc) = &lex.client_encoding
            && lexmode::encoding_hides_backslash(enc.as_bytes())
        {
            // The relay refuses such a session at start-up; nothing is judged.
            return Err(WorkbenchError::Encoding(lexmode::encoding_refusal(
                enc.as_bytes(),
            )));
        }
        // One inspector (prepared statements, lexical state) per session.
        let mut callers: Vec<CallerSpec> = Vec::new();
        let mut session_of: HashMap<Option<u64>, usize> = HashMap::new();
        let mut unit_session = Vec::with_capacity(units.len());
        for u in units {
            let who = match (caller, &u.caller) {
                (Some(c), _) | (None, Some(c)) => c.clone(),
                (None, None) => return Err(WorkbenchError::NoCaller),
            };
            let next = callers.len();
            let i = *session_of.entry(u.session).or_insert(next);
            if i == next {
                callers.push(who);
            }
            unit_session.push(i);
        }
        let identities: Vec<Identity> = callers.iter().map(CallerSpec::identity).collect();
        let mut inspectors: Vec<Inspector<'_>> = identities
            .iter()
            .map(|id| Inspector::with_policy(&self.policy, id))
            .collect();
        let mut classifier = Classifier::new();
        let mut out = Vec::with_capacity(units.len());
        for (u, &i) in units.iter().zip(&unit_session) {
            let inspector = &mut inspectors[i];
            inspector.standard_conforming_strings = lex.standard_conforming_strings;
            inspector.mode_settled = !lex.pipelined;
            let decision = match u.function_oid {
                Some(oid) => inspector.judge_function_call(oid),
                None => inspector.judge(&u.sql),
            };
            let rule = match &decision {
                Decision::Allow => inspector.allowed_by.clone(),
                d => d.rule().unwrap_or_default().to_string(),
            };
            let message = match &decision {
                Decision::Block { message, .. } | Decision::Approve { message, .. } => {
                    Some(message.clone())
                }
                _ => None,
            };
            let masking = self.masking.as_ref().and_then(|m| {
                rowplan::masked_reference(
                    m,
                    &callers[i].groups,
                    &u.sql,
                    lex.standard_conforming_strings,
                )
                .map(|(rule, column)| MaskNote { rule, column })
            });
            out.push(Judged {
                statement: String::from_utf8_lossy(&u.sql).into_owned(),
                line: u.line,
                session: u.session,
                subject: callers[i].subject.clone(),
                classes: class_names(&mut classifier, &u.sql, lex),
                verdict: decision.verdict(),
                rule,
                message,
                shadow: inspector.shadow.as_ref().map(|s| expect::Expectation {
                    verdict: s.verdict.to_string(),
                    rule: Some(s.rule.clone()),
                }),
                masking,
                recorded: u.recorded.clone(),
            });
        }
        Ok(out)
    }
}

/// A masked column the statement names: result columns derived from it are
/// masked whole by `rule`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaskNote {
    pub rule: String,
    pub column: String,
}

/// One judged string.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    pub statement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    pub subject: String,
    /// Classes (`drop_table`) and features of every statement in it.
    pub classes: Vec<String>,
    pub verdict: &'static str,
    /// The rule that decided, or `unmatched`/`unclassified`/`empty`/
    /// `lexical-state`.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What a shadow rule (or shadow mode) would have done instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<expect::Expectation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masking: Option<MaskNote>,
    /// The verdict recorded at the time (export input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<expect::Expectation>,
}

/// `class[_object]` and feature names of every statement of `sql`.
fn class_names(classifier: &mut Classifier, sql: &[u8], lex: &LexOptions) -> Vec<String> {
    let c = classifier.classify(sql, lexmode::pg_dialect(lex.standard_conforming_strings));
    let mut names = Vec::new();
    for s in c.statements() {
        for n in statement_names(s) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// The selector names that match one statement: its class, its
/// `<class>_<object>`, and its features.
pub fn statement_names(s: &Statement) -> Vec<String> {
    use tollgate_codecs::sql::ObjectKind;
    let mut names = vec![s.class.as_str().to_string()];
    if !matches!(s.object, ObjectKind::None) {
        names.push(format!("{}_{}", s.class.as_str(), s.object.as_str()));
    }
    names.extend(
        Selector::feature_names()
            .filter(|f| Selector::parse(f).is_some_and(|sel| sel.matches(s)))
            .map(String::from),
    );
    names
}

/// Reads a file (or stdin for `-`), capped at `MAX_INPUT`.
pub fn read_input(path: &std::path::Path) -> Result<Vec<u8>, WorkbenchError> {
    use std::io::Read;
    let what = path.display().to_string();
    let read_err = |e: std::io::Error| WorkbenchError::Read {
        what: what.clone(),
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(read_err)?)
    };
    reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(WorkbenchError::TooLarge {
            what,
            max: MAX_INPUT,
        });
    }
    Ok(buf)
}

/// Whether `input` is a `tollgate recordings export` (JSON Lines whose first
/// line is a record object), rather than SQL.
pub fn is_export(input: &[u8]) -> bool {
    let first = input
        .split(|&b| b == b'\n')
        .find(|l| !l.trim_ascii().is_empty());
    first.is_some_and(|l| {
        l.trim_ascii().starts_with(b"{")
            && serde_json::from_slice::<serde_json::Value>(l).is_ok_and(|v| {
                v.get("type").is_some_and(|t| t.is_string())
                    && v.get("session").is_some_and(|s| s.is_u64())
            })
    })
}

/// Splits a SQL file into top-level statements with the real classifier.
pub fn split_sql(input: &[u8], lex: &LexOptions) -> Vec<Unit> {
    let mut classifier = Classifier::new();
    let c = classifier.classify(input, lexmode::pg_dialect(lex.standard_conforming_strings));
    c.statements()
        .iter()
        .filter(|s| s.parent == NO_PARENT)
        .map(|s| {
            let range = s.span.range();
            Unit {
                line: Some(1 + input[..range.start].iter().filter(|&&b| b == b'\n').count()),
                sql: input[range].to_vec(),
                session: None,
                caller: None,
                recorded: None,
                function_oid: None,
            }
        })
        .collect()
}

/// The command records of an export, with their sessions' callers; records
/// of sessions on other targets are skipped (their count is returned).
pub fn parse_export(input: &[u8], target: &str) -> Result<(Vec<Unit>, usize), WorkbenchError> {
    use serde_json::Value;
    let mut sessions: HashMap<u64, (CallerSpec, bool)> = HashMap::new();
    let mut units = Vec::new();
    let mut skipped = 0;
    for (n, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let bad = |reason: String| WorkbenchError::Export {
            line: n + 1,
            reason,
        };
        let v: Value = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        let session = v
            .get("session")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no session id".into()))?;
        match text("type") {
            Some("session_start") => {
                let groups = v
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let caller = CallerSpec {
                    subject: text("subject").unwrap_or_default().to_string(),
                    groups,
                };
                sessions.insert(session, (caller, text("target") == Some(target)));
            }
            Some("command") => {
                let ours = sessions.get(&session);
                if ours.is_some_and(|(_, on_target)| !on_target) {
                    skipped += 1;
                    continue;
                }
                let statement = text("statement").ok_or_else(|| bad("no statement".into()))?;
                units.push(Unit {
                    sql: statement.as_bytes().to_vec(),
                    line: None,
                    session: Some(session),
                    caller: ours.map(|(c, _)| c.clone()),
                    recorded: text("verdict").map(|verdict| expect::Expectation {
                        verdict: verdict.to_string(),
                        rule: text("rule").map(String::from),
                    }),
                    function_oid: fastpath_oid(statement),
                });
            }
            _ => {}
        }
    }
    Ok((units, skipped))
}

/// The oid of a recorded fast-path call (`pg::fastpath::shown`).
fn fastpath_oid(statement: &str) -> Option<u32> {
    let rest = statement.strip_prefix("<fast-path call of ")?;
    let at = rest.rfind("oid ")?;
    let digits: String = rest[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sql_files_split_on_the_lexers_boundaries() {
        let sql = b"SELECT ';' ;\n-- DROP TABLE x;\nDROP TABLE t;\nSELECT $$a;b$$";
        let units = split_sql(sql, &LexOptions::default());
        let texts: Vec<_> = units
            .iter()
            .map(|u| (u.line, String::from_utf8_lossy(&u.sql).into_owned()))
            .collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(texts[1].0, Some(3));
        assert!(texts[1].1.starts_with("DROP TABLE t"), "{texts:?}");
        assert!(texts[2].1.contains("$$a;b$$"), "{texts:?}");
    }

    #[test]
    fn exports_are_detected_and_read_per_session() {
        let export = concat!(
            r#"{"shard":0,"seq":1,"session":7,"type":"session_start","subject":"ci","groups":["ops"],"target":"pg"}"#,
            "\n",
            r#"{"shard":0,"seq":2,"session":7,"type":"command","statement":"DROP TABLE t","verdict":"block","rule":"no-drop"}"#,
            "\n",
            r#"{"shard":0,"seq":3,"session":8,"type":"session_start","subject":"x","groups":[],"target":"other"}"#,
            "\n",
            r#"{"shard":0,"seq":4,"session":8,"type":"command","statement":"SELECT 1","verdict":"allow"}"#,
            "\n",
            r#"{"shard":0,"seq":5,"session":7,"type":"command","statement":"<fast-path call of lo_unlink (oid 964)>","verdict":"block"}"#,
            "\n"
        );
        assert!(is_export(export.as_bytes()));
        assert!(!is_export(b"SELECT 1;\n"));
        assert!(!is_export(b"{not json"));
        let (units, skipped) = parse_export(export.as_bytes(), "pg").unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].caller.as_ref().unwrap().groups, vec!["ops"]);
        assert_eq!(
            units[0].recorded.as_ref().unwrap().rule.as_deref(),
            Some("no-drop")
        );
        assert_eq!(units[1].function_oid, Some(964));
        assert!(parse_export(b"{\"session\":1,\"type\":\"command\"}\n", "pg").is_err());
    }

    #[test]
    fn callers_parse_with_groups() {
        let c = CallerSpec::parse("svc-ci, ops ,dba");
        assert_eq!(c.subject, "svc-ci");
        assert_eq!(c.groups, vec!["ops", "dba"]);
    }
}
