//! Runs the labelled masking corpora in `tests/corpus/mask/` (format in its
//! README) and prints precision and recall per detector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;

use tollgate::policy::mask::{MaskPolicy, MaskingConfig, ResultPlan, Span};

/// The custom detector that `employee_id.txt` exercises.
const CUSTOM: &str = r#"
[[custom]]
name = "employee_id"
regex = '\bEMP-[0-9]{6}\b'
anchor = "EMP-"
"#;

/// Minimum cases of each kind per corpus file.
const MIN_CASES: usize = 15;

struct Case {
    line: usize,
    text: Vec<u8>,
    expected: Vec<(usize, usize)>,
    positive: bool,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => panic!("unknown escape \\{other}"),
            None => out.push('\\'),
        }
    }
    out
}

/// Strips `[[`/`]]` markers, returning the text and the marked byte ranges.
fn strip_markers(s: &str) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut text = Vec::new();
    let mut spans = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("[[") {
        text.extend_from_slice(&rest.as_bytes()[..open]);
        let close = rest[open..].find("]]").expect("unclosed [[") + open;
        let start = text.len();
        text.extend_from_slice(&rest.as_bytes()[open + 2..close]);
        spans.push((start, text.len()));
        rest = &rest[close + 2..];
    }
    text.extend_from_slice(rest.as_bytes());
    (text, spans)
}

fn parse(corpus: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, raw) in corpus.lines().enumerate() {
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (positive, body) = match raw.split_at(2) {
            ("+ ", body) => (true, body),
            ("- ", body) => (false, body),
            _ => panic!("line {}: expected `+ ` or `- `: {raw:?}", i + 1),
        };
        let (text, expected) = strip_markers(&unescape(body));
        assert_eq!(
            positive,
            !expected.is_empty(),
            "line {}: `+` cases mark spans, `-` cases do not",
            i + 1
        );
        cases.push(Case {
            line: i + 1,
            text,
            expected,
            positive,
        });
    }
    cases
}

#[derive(Default)]
struct Score {
    tp: usize,
    fp: usize,
    fn_: usize,
    positives: usize,
    negatives: usize,
}

impl Score {
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
}

fn run_corpus(detector: &str, corpus: &str, failures: &mut String) -> Score {
    let config = format!(
        "{CUSTOM}\n[[rules]]\nname = \"only\"\ndetectors = [\"{detector}\"]\nstyle = \"redact\"\n"
    );
    let config: MaskingConfig = toml::from_str(&config).unwrap();
    let policy = MaskPolicy::new(&config, None).unwrap();
    let mut plan = ResultPlan::default();
    policy.plan_caller(&[], &mut plan);
    let mut spans: Vec<Span> = Vec::new();
    let mut score = Score::default();
    for case in parse(corpus) {
        if case.positive {
            score.positives += 1;
        } else {
            score.negatives += 1;
        }
        policy.find(&plan, &case.text, &mut spans);
        let found: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end)).collect();
        for want in &case.expected {
            if found.contains(want) {
                score.tp += 1;
            } else {
                score.fn_ += 1;
            }
        }
        for got in &found {
            if !case.expected.contains(got) {
                score.fp += 1;
            }
        }
        if found != case.expected {
            let show = |r: &[(usize, usize)]| {
                r.iter()
                    .map(|&(s, e)| String::from_utf8_lossy(&case.text[s..e]).into_owned())
                    .collect::<Vec<_>>()
            };
            let _ = writeln!(
                failures,
                "{detector}.txt:{}: expected {:?}, found {:?}",
                case.line,
                show(&case.expected),
                show(&found)
            );
        }
    }
    score
}

#[test]
fn masking_corpora_precision_and_recall() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mask");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut failures = String::new();
    let mut seen = Vec::new();
    println!(
        "{:<16} {:>6} {:>6} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "detector", "+cases", "-cases", "tp", "fp", "fn", "precision", "recall"
    );
    for path in &files {
        let detector = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let corpus = std::fs::read_to_string(path).unwrap();
        let s = run_corpus(&detector, &corpus, &mut failures);
        println!(
            "{:<16} {:>6} {:>6} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            detector,
            s.positives,
            s.negatives,
            s.tp,
            s.fp,
            s.fn_,
            s.precision(),
            s.recall()
        );
        if s.positives < MIN_CASES || s.negatives < MIN_CASES {
            let _ = writeln!(
                failures,
                "{detector}.txt: needs at least {MIN_CASES} cases of each kind"
            );
        }
        seen.push(detector);
    }
    for b in tollgate::policy::mask::Builtin::ALL {
        if !seen.iter().any(|d| d == b.name()) {
            let _ = writeln!(failures, "no corpus for built-in detector {}", b.name());
        }
    }
    // Every detector is held to precision = recall = 1.0 on its corpus: the
    // corpora are the specification, so a miss is a bug or a spec change.
    assert!(failures.is_empty(), "corpus mismatches:\n{failures}");
}

#[test]
fn markers_and_escapes_parse() {
    let cases = parse("# c\n\n+ a [[b]] c [[d\\te]]\n- x\\\\n\n");
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].text, b"a b c d\te");
    assert_eq!(cases[0].expected, [(2, 3), (6, 9)]);
    assert_eq!(cases[1].text, b"x\\n");
    assert!(!cases[1].positive);
}
