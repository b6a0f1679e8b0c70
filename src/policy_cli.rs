//! `tollgate policy test|explain`: the policy workbench for security
//! engineers (see `policy::workbench`). Exit status: 0 as expected, 1 a
//! difference from the expectations, 2 the workbench could not run.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tollgate_codecs::sql::MySqlMode;

use crate::policy::workbench::expect::{self, Difference, ExpectFile};
use crate::policy::workbench::explain::{ExplainDialect, Explained, explain};
use crate::policy::workbench::{
    Bench, CallerSpec, Judged, LexOptions, WorkbenchError, is_export, parse_export, read_input,
    split_sql,
};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Judge a SQL file (or a `recordings export`) with a target's policy,
    /// as a session would, without connecting to the target.
    Test(TestArgs),
    /// Show how tollgate reads one SQL string, and why each rule matches.
    Explain(ExplainArgs),
}

#[derive(Args)]
pub struct PolicyTarget {
    #[arg(long, short, env = "TOLLGATE_CONFIG")]
    config: Option<PathBuf>,
    /// The target whose policy and masking apply.
    #[arg(long)]
    target: Option<String>,
    /// The caller: SUBJECT[,GROUP...]. For an export, overrides the
    /// recorded callers.
    #[arg(long = "as", value_name = "SUBJECT[,GROUPS]")]
    caller: Option<String>,
}

#[derive(Args)]
pub struct LexArgs {
    /// standard_conforming_strings as the server reports it.
    #[arg(long, value_enum, default_value = "on")]
    standard_conforming_strings: OnOff,
    /// The client_encoding the caller sets at start-up (the encodings the
    /// gateway refuses are refused here too).
    #[arg(long)]
    client_encoding: Option<String>,
    /// Judge each statement as pipelined behind the previous one (the
    /// lexical mode unsettled), as the relay judges a batch.
    #[arg(long)]
    pipelined: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Args)]
pub struct TestArgs {
    #[command(flatten)]
    target: PolicyTarget,
    #[command(flatten)]
    lex: LexArgs,
    /// A SQL file, a `tollgate recordings export` (detected), or `-` for stdin.
    input: PathBuf,
    /// Expected verdicts (`VERDICT[:RULE] STATEMENT` per line); any
    /// difference exits 1 with a diff.
    #[arg(long, conflicts_with = "expect_recorded")]
    expect: Option<PathBuf>,
    /// For an export: the verdicts recorded at the time are the expectations.
    #[arg(long)]
    expect_recorded: bool,
    /// Print an expectation file that pins today's verdicts.
    #[arg(long, conflicts_with_all = ["expect", "json"])]
    emit_expect: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    Postgres,
    Mysql,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The SQL string.
    sql: String,
    #[arg(long, value_enum, default_value = "postgres")]
    dialect: DialectArg,
    #[command(flatten)]
    lex: LexArgs,
    /// MySQL sql_mode has ANSI_QUOTES.
    #[arg(long)]
    ansi_quotes: bool,
    /// MySQL sql_mode has NO_BACKSLASH_ESCAPES.
    #[arg(long)]
    no_backslash_escapes: bool,
    /// List every token.
    #[arg(long)]
    tokens: bool,
    #[command(flatten)]
    target: PolicyTarget,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    let out = &mut std::io::stdout().lock();
    let result = match cmd {
        PolicyCommand::Test(a) => test(a, out),
        PolicyCommand::Explain(a) => run_explain(a, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn lex_options(a: &LexArgs) -> LexOptions {
    LexOptions {
        standard_conforming_strings: matches!(a.standard_conforming_strings, OnOff::On),
        client_encoding: a.client_encoding.clone(),
        pipelined: a.pipelined,
    }
}

/// The target's compiled policy, when --config and --target are given.
fn bench(t: &PolicyTarget) -> Result<Option<Bench>, WorkbenchError> {
    match (&t.config, &t.target) {
        (Some(config), Some(target)) => Bench::load(config, target).map(Some),
        (None, None) => Ok(None),
        _ => Err(WorkbenchError::Config(
            "--config and --target go together".into(),
        )),
    }
}

fn write_err(e: std::io::Error) -> WorkbenchError {
    WorkbenchError::Read {
        what: "standard output".into(),
        reason: e.to_string(),
    }
}

fn test(a: TestArgs, out: &mut dyn Write) -> Result<ExitCode, WorkbenchError> {
    let bench = bench(&a.target)?
        .ok_or_else(|| WorkbenchError::Config("policy test needs --config and --target".into()))?;
    let lex = lex_options(&a.lex);
    let caller = a.target.caller.as_deref().map(CallerSpec::parse);
    let input = read_input(&a.input)?;
    let (units, skipped) = if is_export(&input) {
        parse_export(&input, &bench.target)?
    } else {
        if a.expect_recorded {
            return Err(WorkbenchError::Config(
                "--expect-recorded needs a recordings export as input".into(),
            ));
        }
        (split_sql(&input, &lex), 0)
    };
    let results = bench.run(&units, caller.as_ref(), &lex)?;
    if a.emit_expect {
        out.write_all(ExpectFile::render(&results).as_bytes())
            .map_err(write_err)?;
        return Ok(ExitCode::SUCCESS);
    }
    let diffs = match &a.expect {
        Some(path) => {
            let bytes = read_input(path)?;
            let text = String::from_utf8(bytes).map_err(|_| WorkbenchError::Expect {
                line: 0,
                reason: "not UTF-8".into(),
            })?;
            Some(expect::compare(&ExpectFile::parse(&text)?, &results))
        }
        None if a.expect_recorded => Some(expect::compare_recorded(&results)),
        None => None,
    };
    if a.json {
        let doc = serde_json::json!({
            "target": bench.target,
            "skipped_other_targets": skipped,
            "results": results,
            "differences": diffs,
            "ok": diffs.as_ref().is_none_or(Vec::is_empty),
        });
        writeln!(out, "{doc:#}").map_err(write_err)?;
    } else {
        print_results(out, &results).map_err(write_err)?;
        if skipped > 0 {
            writeln!(
                out,
                "({skipped} recorded commands on other targets skipped)"
            )
            .map_err(write_err)?;
        }
        if let Some(d) = &diffs {
            print_diffs(out, d, a.expect.as_deref()).map_err(write_err)?;
        }
    }
    Ok(match diffs {
        Some(d) if !d.is_empty() => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// One line per statement, with shadow, masking and recorded notes under it.
fn print_results(out: &mut dyn Write, results: &[Judged]) -> std::io::Result<()> {
    for j in results {
        writeln!(
            out,
            "{:<12} {:<8} {:<24} {:<32} {}",
            expect::location(j),
            j.verdict,
            j.rule,
            j.classes.join(","),
            one_line(&j.statement, 100)
        )?;
        if let Some(s) = &j.shadow {
            writeln!(
                out,
                "{:13}shadow: would {} (rule {})",
                "",
                s.verdict,
                s.rule.as_deref().unwrap_or("?")
            )?;
        }
        if let Some(m) = &j.masking {
            writeln!(
                out,
                "{:13}masking: result columns derived from {:?} are masked whole (rule {})",
                "", m.column, m.rule
            )?;
        }
        if let Some(r) = &j.recorded {
            writeln!(
                out,
                "{:13}recorded: {}{}",
                "",
                r.verdict,
                r.rule
                    .as_deref()
                    .map(|r| format!(" (rule {r})"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

fn print_diffs(
    out: &mut dyn Write,
    diffs: &[Difference],
    expect: Option<&std::path::Path>,
) -> std::io::Result<()> {
    if diffs.is_empty() {
        return writeln!(out, "policy test: every statement got its expected verdict");
    }
    writeln!(out, "policy test: {} difference(s)", diffs.len())?;
    match expect {
        Some(p) => writeln!(out, "--- expected ({})", p.display())?,
        None => writeln!(out, "--- recorded")?,
    }
    writeln!(out, "+++ actual")?;
    for d in diffs {
        out.write_all(d.render().as_bytes())?;
    }
    Ok(())
}

fn one_line(s: &str, max: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &joined[..at]),
        None => joined,
    }
}

fn run_explain(a: ExplainArgs, out: &mut dyn Write) -> Result<ExitCode, WorkbenchError> {
    let bench = bench(&a.target)?;
    let caller = a.target.caller.as_deref().map(CallerSpec::parse);
    let policy = match (&bench, &caller) {
        (Some(b), Some(c)) => Some((b, c)),
        (Some(_), None) => return Err(WorkbenchError::NoCaller),
        _ => None,
    };
    let how = match a.dialect {
        DialectArg::Postgres => ExplainDialect::Postgres(lex_options(&a.lex)),
        DialectArg::Mysql => ExplainDialect::MySql(MySqlMode {
            ansi_quotes: a.ansi_quotes,
            backslash_escapes: !a.no_backslash_escapes,
            server_version: 0,
            mariadb: false,
        }),
    };
    let e = explain(a.sql.as_bytes(), &how, a.tokens, policy)?;
    if a.json {
        let doc = serde_json::to_string_pretty(&e).map_err(|e| WorkbenchError::Read {
            what: "explanation".into(),
            reason: e.to_string(),
        })?;
        writeln!(out, "{doc}").map_err(write_err)?;
    } else {
        print_explained(out, &e).map_err(write_err)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_explained(out: &mut dyn Write, e: &Explained) -> std::io::Result<()> {
    writeln!(out, "dialect: {}", e.dialect)?;
    for s in &e.statements {
        let nested = s
            .parent
            .map(|p| format!(" (inside #{p})"))
            .unwrap_or_default();
        writeln!(
            out,
            "#{} bytes {}..{}{nested}: {}",
            s.index,
            s.start,
            s.end,
            one_line(&s.text, 100)
        )?;
        writeln!(out, "  selectors: {}", s.selectors.join(", "))?;
        if !s.relations.is_empty() {
            writeln!(out, "  relations: {}", s.relations.join(", "))?;
        }
        if !s.functions.is_empty() {
            writeln!(out, "  functions: {}", s.functions.join(", "))?;
        }
        for t in s.tokens.iter().flatten() {
            let kw = t
                .keyword
                .as_deref()
                .map(|k| format!(" [{k}]"))
                .unwrap_or_default();
            writeln!(
                out,
                "  token {}..{} {} {:?}{kw}",
                t.start, t.end, t.kind, t.text
            )?;
        }
        for r in s.rules.iter().flatten() {
            writeln!(
                out,
                "  rule {:<24} {:<8}{} {}: {}",
                r.rule,
                r.action.as_str(),
                if r.shadow { " shadow" } else { "" },
                if r.matched { "MATCH" } else { "no" },
                r.why
            )?;
        }
    }
    if let Some(v) = &e.verdict {
        writeln!(
            out,
            "verdict: {} (decided by {}){}",
            v.verdict,
            v.rule,
            v.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )?;
        if let Some(s) = &v.shadow {
            writeln!(
                out,
                "shadow: would {} (rule {})",
                s.verdict,
                s.rule.as_deref().unwrap_or("?")
            )?;
        }
    }
    Ok(())
}
