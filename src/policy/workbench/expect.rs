//! Expectation files for `tollgate policy test --expect`: which verdict each
//! statement must get, in a format a reviewer reads in a diff.
//!
//! ```text
//! # VERDICT[:RULE]   STATEMENT (on one line; whitespace runs count as one space)
//! allow              SELECT * FROM orders WHERE id = 1
//! block:no-drop      DROP TABLE orders
//! approve            GRANT SELECT ON orders TO analyst
//! ```
//!
//! Blank lines and lines starting with `#` are ignored. Without `:RULE`
//! any rule may decide. Every statement of the input must have an
//! expectation, and every expectation must meet a statement of the input:
//! either way round is a difference.

use std::collections::HashMap;

use serde::Serialize;

use super::{Judged, WorkbenchError};

const VERDICTS: [&str; 4] = ["allow", "audit", "approve", "block"];

/// A verdict, and optionally the rule that must decide it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Expectation {
    fn met_by(&self, j: &Judged) -> bool {
        self.verdict == j.verdict && self.rule.as_ref().is_none_or(|r| *r == j.rule)
    }

    fn head(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{}:{rule}", self.verdict),
            None => self.verdict.clone(),
        }
    }
}

/// The key a statement is expected under: its text with whitespace runs
/// collapsed and a trailing `;` dropped.
pub fn statement_key(statement: &str) -> String {
    let joined = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches([';', ' ']).to_string()
}

/// A parsed expectation file.
#[derive(Debug, Default)]
pub struct ExpectFile {
    /// In file order: key, expectation, line.
    entries: Vec<(String, Expectation, usize)>,
    index: HashMap<String, usize>,
}

impl ExpectFile {
    pub fn parse(text: &str) -> Result<ExpectFile, WorkbenchError> {
        let mut file = ExpectFile::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| WorkbenchError::Expect {
                line: n + 1,
                reason,
            };
            let (head, statement) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("expected `VERDICT[:RULE] STATEMENT`".into()))?;
            let (verdict, rule) = match head.split_once(':') {
                Some((v, r)) if !r.is_empty() => (v, Some(r.to_string())),
                Some(_) => return Err(bad(format!("empty rule in {head:?}"))),
                None => (head, None),
            };
            if !VERDICTS.contains(&verdict) {
                return Err(bad(format!(
                    "unknown verdict {verdict:?} (allow, audit, approve or block)"
                )));
            }
            let key = statement_key(statement);
            let expectation = Expectation {
                verdict: verdict.to_string(),
                rule,
            };
            if let Some(&i) = file.index.get(&key) {
                if file.entries[i].1 != expectation {
                    return Err(bad(format!(
                        "the statement already has a different expectation on line {}",
                        file.entries[i].2
                    )));
                }
                continue;
            }
            file.index.insert(key.clone(), file.entries.len());
            file.entries.push((key, expectation, n + 1));
        }
        Ok(file)
    }

    /// An expectation file that pins every result (`--emit-expect`).
    pub fn render(results: &[Judged]) -> String {
        let mut out =
            String::from("# tollgate policy test expectations: VERDICT[:RULE]  STATEMENT\n");
        let mut seen = std::collections::HashSet::new();
        for j in results {
            let key = statement_key(&j.statement);
            if key.is_empty() || !seen.insert(key.clone()) {
                continue;
            }
            let head = format!("{}:{}", j.verdict, j.rule);
            out.push_str(&format!("{head:<32} {key}\n"));
        }
        out
    }
}

/// One difference between expectations and results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub statement: String,
    /// Where the statement is in the input (a line or a session), if it is.
    pub at: Option<String>,
    pub expected: Option<Expectation>,
    pub actual: Option<Expectation>,
}

impl Difference {
    /// The diff-like lines of this difference.
    pub fn render(&self) -> String {
        let mut out = format!(
            "@@ {} @@\n",
            self.at.as_deref().unwrap_or("not in the input")
        );
        match &self.expected {
            Some(e) => out.push_str(&format!("-{:<32} {}\n", e.head(), self.statement)),
            None => out.push_str(&format!("-{:<32} {}\n", "(no expectation)", self.statement)),
        }
        if let Some(a) = &self.actual {
            out.push_str(&format!("+{:<32} {}\n", a.head(), self.statement));
        }
        out
    }
}

/// Where a result sits in the input.
pub fn location(j: &Judged) -> String {
    match (j.line, j.session) {
        (Some(line), _) => format!("line {line}"),
        (None, Some(s)) => format!("session {s}"),
        _ => "input".into(),
    }
}

/// Differences between `file` and `results`, in input order, then the
/// expectations no statement met.
pub fn compare(file: &ExpectFile, results: &[Judged]) -> Vec<Difference> {
    let mut used = vec![false; file.entries.len()];
    let mut diffs = Vec::new();
    for j in results {
        let key = statement_key(&j.statement);
        if key.is_empty() {
            continue;
        }
        let expected = file.index.get(&key).map(|&i| {
            used[i] = true;
            &file.entries[i].1
        });
        if expected.is_some_and(|e| e.met_by(j)) {
            continue;
        }
        diffs.push(Difference {
            statement: key,
            at: Some(location(j)),
            expected: expected.cloned(),
            actual: Some(Expectation {
                verdict: j.verdict.to_string(),
                rule: Some(j.rule.clone()),
            }),
        });
    }
    for ((key, e, _), used) in file.entries.iter().zip(used) {
        if !used {
            diffs.push(Difference {
                statement: key.clone(),
                at: None,
                expected: Some(e.clone()),
                actual: None,
            });
        }
    }
    diffs
}

/// Differences between what was recorded and today's verdicts (export
/// input, `--expect-recorded`): the rule is compared only when the
/// recording names one.
pub fn compare_recorded(results: &[Judged]) -> Vec<Difference> {
    results
        .iter()
        .filter_map(|j| {
            let recorded = j.recorded.as_ref()?;
            if recorded.met_by(j) {
                return None;
            }
            Some(Difference {
                statement: statement_key(&j.statement),
                at: Some(location(j)),
                expected: Some(recorded.clone()),
                actual: Some(Expectation {
                    verdict: j.verdict.to_string(),
                    rule: Some(j.rule.clone()),
                }),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn judged(statement: &str, verdict: &'static str, rule: &str) -> Judged {
        Judged {
            statement: statement.into(),
            line: Some(1),
            session: None,
            subject: "ci".into(),
            classes: vec![],
            verdict,
            rule: rule.into(),
            message: None,
            shadow: None,
            masking: None,
            recorded: None,
        }
    }

    #[test]
    fn parses_verdicts_rules_and_comments() {
        let f = ExpectFile::parse(
            "# c\n\nallow   SELECT  1\nblock:no-drop DROP TABLE t;\napprove GRANT x TO y\n",
        )
        .unwrap();
        assert_eq!(f.entries.len(), 3);
        assert_eq!(f.entries[1].1.rule.as_deref(), Some("no-drop"));
        assert_eq!(f.entries[1].0, "DROP TABLE t");
        for bad in ["deny SELECT 1", "allow", "block: DROP TABLE t"] {
            assert!(ExpectFile::parse(bad).is_err(), "{bad}");
        }
        assert!(ExpectFile::parse("allow SELECT 1\nblock SELECT  1\n").is_err());
    }

    #[test]
    fn differences_cover_wrong_missing_and_unmet() {
        let f = ExpectFile::parse("allow SELECT 1\nblock:no-drop DROP TABLE t\nblock TRUNCATE t\n")
            .unwrap();
        let results = vec![
            judged("SELECT   1", "allow", "unmatched"),
            judged("DROP TABLE t", "block", "other-rule"),
            judged("DELETE FROM t", "allow", "unmatched"),
        ];
        let d = compare(&f, &results);
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(d[0].statement, "DROP TABLE t");
        assert!(d[1].expected.is_none());
        assert!(d[2].actual.is_none() && d[2].statement == "TRUNCATE t");
        let text = d[0].render();
        assert!(
            text.contains("-block:no-drop") && text.contains("+block:other-rule"),
            "{text}"
        );
        let rendered = ExpectFile::render(&results);
        let again = ExpectFile::parse(&rendered).unwrap();
        assert!(compare(&again, &results).is_empty(), "{rendered}");
    }
}
