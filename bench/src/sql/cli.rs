//! The `tollgate-load pg` and `mysql` command lines: the options they share
//! (workload, tokens, load model), their checks, and the run (set-up, the
//! gateway path, then the direct path with the same plan) over any [`Backend`].

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use super::driver::{self, Plan};
use super::mysql::{MyBackend, MyProtocol};
use super::pg::{PgBackend, Protocol};
use super::summary::{RunInfo, SqlSummary, human, summarise};
use super::{Backend, Password, Workload};
use crate::load::Stop;
use crate::report::progress_line;
use tollgate::identity::devissuer::MintParams;

/// The long help of a SQL mode; the JSON fields are the same in both.
macro_rules! sql_help {
    ($mode:literal, $protocols:literal, $extra:literal) => {
        concat!(
            "TOKENS: through tollgate the password is a token. Give one with --token (or
TOLLGATE_TOKEN, or --token-file), or let the tool mint one with a development
key (`tollgate token keygen`): --token-key KEY --iss ISSUER [--sub --groups
--aud --ttl]. --token-per-session mints a new one for every session.

JSON OUTPUT (--json): one object on stdout, fields stable across releases:
  tool, version, mode        \"tollgate-load\", the version, \"",
            $mode,
            "\"
  workload, protocol         what ran (select1 | point-select | insert | mixed |
                             connect; ",
            $protocols,
            ")
  path, addr                 \"gateway\" (--dsn) or \"direct\"; host:port
  connections, threads, target_rate (--rate or null), warmup_s, duration_s
  requests                   operations completed in the window (a statement
                             each; connect: a session opened and closed)
  ops                        {select, insert, update, connect} of those
  req_per_s                  requests / duration_s
  errors                     {connect, server, closed, wrong_result, timeout,
                             other} over the whole run; errors_total their sum
  last_error                 the last error's text, or null
  latency_us                 {min, mean, p50, p90, p99, p999, max} µs
  latency_curve_us           [{percentile, us}] from 0 to 100 (for plots)
  per_second                 operations completed in each second of the window
  sessions                   sessions opened in the whole run
  setup_statements           statements of the set-up (tables, rows)
  prepared_statements        statements prepared by sessions (prepared)
  direct                     the same object for --direct, or null
  vs_direct                  {req_per_s_ratio, added_p50_us, added_p99_us} or null

EXIT STATUS: 0 when the run completed; 2 when a path completed no operation
and had errors; 1 on a usage or set-up error.
",
            $extra
        )
    };
}

pub const PG_HELP: &str = sql_help!(
    "pg",
    "simple | extended | prepared",
    "\nTLS: as libpq, sslmode=disable|prefer|require|verify-ca|verify-full and\nsslrootcert=FILE in the DSN (key=value or URL).\n"
);

pub const MYSQL_HELP: &str = sql_help!(
    "mysql",
    "text | prepared",
    "\nTLS: ssl-mode=DISABLED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY and ssl-ca=FILE in the\nURL's query (mysql://user@host:port/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.pem);\nssl-ca alone means VERIFY_IDENTITY. tollgate wants TLS: the token is sent in\nthe clear inside it (caching_sha2 full authentication).\n"
);

#[derive(Args, Debug)]
pub struct PgArgs {
    /// What each operation does.
    #[arg(value_enum)]
    pub workload: Workload,
    /// The path under test, a libpq connection string or URL (the gateway's listener).
    #[arg(long, env = "TOLLGATE_LOAD_DSN")]
    pub dsn: String,
    /// Also run the same load against this DSN (the database directly), after the gateway;
    /// its password comes from the DSN or PGPASSWORD.
    #[arg(long)]
    pub direct: Option<String>,
    #[arg(long, value_enum, default_value = "simple")]
    pub protocol: Protocol,
    /// Rows of the keyed table (point-select, mixed).
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct MysqlArgs {
    /// What each operation does.
    #[arg(value_enum)]
    pub workload: Workload,
    /// The path under test, a mysql:// URL (the gateway's listener): user (only logged by
    /// tollgate), host, port, database, and ssl-mode / ssl-ca in the query.
    #[arg(long, env = "TOLLGATE_LOAD_DSN")]
    pub dsn: String,
    /// Also run the same load against this URL (the server directly), after the gateway;
    /// its password comes from the URL or MYSQL_PWD.
    #[arg(long)]
    pub direct: Option<String>,
    /// Which protocol each operation uses.
    #[arg(long, value_enum, default_value = "text")]
    pub protocol: MyProtocol,
    /// Rows of the keyed table (point-select, mixed).
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// What `pg`, `mysql` and `http` share: the token, the load model, the output.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The token to log in with (prefer TOLLGATE_TOKEN or --token-file: arguments are visible in ps).
    #[arg(long, env = "TOLLGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from this file.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Mint tokens with this development key (PKCS#8 PEM from `tollgate token keygen`).
    #[arg(long, conflicts_with_all = ["token", "token_file"], requires = "iss")]
    pub token_key: Option<PathBuf>,
    /// Issuer of minted tokens.
    #[arg(long)]
    pub iss: Option<String>,
    #[arg(long, default_value = "tollgate")]
    pub aud: String,
    #[arg(long, default_value = "tollgate-load")]
    pub sub: String,
    /// Groups of minted tokens, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    #[arg(long, default_value = "1h", value_parser = crate::parse_duration_arg)]
    pub ttl: Duration,
    /// Mint a new token for every session (so `connect` pays full token verification).
    #[arg(long, requires = "token_key")]
    pub token_per_session: bool,
    /// Concurrent sessions, each with one operation in flight.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Threads driving the sessions [default: CPUs available, at most one per session].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Measure for this long (after the warm-up) [default: 10s].
    #[arg(long, value_parser = crate::parse_duration_arg, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Measure this many operations in total over all sessions.
    #[arg(long)]
    pub count: Option<u64>,
    /// Time to run before recording [default: 1s with --duration, 0 with --count].
    #[arg(long, value_parser = crate::parse_duration_arg)]
    pub warmup: Option<Duration>,
    /// Open model: this many operations per second in total, on a fixed schedule.
    #[arg(long)]
    pub rate: Option<f64>,
    /// An operation (or a session set-up) taking longer than this fails.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration_arg)]
    pub timeout: Duration,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// No live progress line, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

const MAX_CONNECTIONS: usize = 100_000;
const MAX_ROWS: u32 = 100_000_000;

/// The plan of a run of `workload` (`rows`: the keyed table's size).
pub fn plan(args: &LoadArgs, workload: Workload, rows: u32) -> anyhow::Result<Plan> {
    if args.connections == 0 || args.connections > MAX_CONNECTIONS {
        bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
    }
    if rows == 0 || rows > MAX_ROWS {
        bail!("--rows must be between 1 and {MAX_ROWS}");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of operations per second, got {rate}");
    }
    let stop = match (args.count, args.duration) {
        (Some(0), _) => bail!("--count must be at least 1"),
        (Some(count), _) => Stop::Count(count),
        (None, Some(Duration::ZERO)) => bail!("--duration must be longer than 0s"),
        (None, Some(duration)) => Stop::After(duration),
        (None, None) => Stop::After(Duration::from_secs(10)),
    };
    if args.timeout.is_zero() {
        bail!("--timeout must be longer than 0s");
    }
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
    .min(args.connections);
    Ok(Plan {
        workload,
        connections: args.connections,
        threads,
        stop,
        warmup: args.warmup.unwrap_or(match stop {
            Stop::After(_) => Duration::from_secs(1),
            Stop::Count(_) => Duration::ZERO,
        }),
        rate: args.rate,
        timeout: args.timeout,
        rows,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    })
}

/// The gateway path's password (token) source.
pub fn gateway_password(args: &LoadArgs) -> anyhow::Result<Password> {
    if let Some(token) = &args.token {
        return Ok(Password::Token(token.trim().to_owned()));
    }
    if let Some(path) = &args.token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token from {}", path.display()))?;
        return Ok(Password::Token(token.trim().to_owned()));
    }
    if let Some(key) = &args.token_key {
        let params = MintParams {
            sub: args.sub.clone(),
            groups: args.groups.clone(),
            aud: args.aud.clone(),
            iss: args.iss.clone().unwrap_or_default(),
            ttl: args.ttl,
            kid: None,
            jti: None,
        };
        return Password::from_key(key, params, args.token_per_session)
            .with_context(|| format!("minting with {}", key.display()));
    }
    Ok(Password::FromDsn)
}

/// What a run is labelled with besides its backend.
#[derive(Clone, Copy)]
pub struct Label {
    pub mode: &'static str,
    /// The workload's name as the command line spells it.
    pub workload: &'static str,
    pub protocol: &'static str,
}

/// Set-up, then the measured run, of one path.
fn run_path<B: Backend>(
    backend: B,
    addr: String,
    plan: &Plan,
    label: Label,
    path: &'static str,
) -> anyhow::Result<SqlSummary> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Filling the table can take a while: at least a minute, whatever --timeout says.
    let limit = plan.timeout.max(Duration::from_secs(60));
    let setup = tokio::task::LocalSet::new().block_on(&runtime, async {
        tokio::time::timeout(limit, backend.setup(plan.workload, plan.rows)).await
    });
    let setup = setup
        .map_err(|_| anyhow::anyhow!("the set-up on the {path} path timed out"))?
        .with_context(|| format!("set-up on the {path} path ({addr})"))?;
    let live = plan.progress;
    let outcome = driver::run(Arc::new(backend), plan.clone(), |progress| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{path}: {}", progress_line(progress));
        let _ = err.flush();
    })?;
    if live {
        eprint!("\r\x1b[K");
    }
    Ok(summarise(
        RunInfo {
            mode: label.mode,
            workload: label.workload,
            protocol: label.protocol,
            path,
            addr,
            plan,
            setup_statements: setup.statements,
        },
        &outcome,
    ))
}

/// Prints the summary; the exit status says whether a path failed outright,
/// and then stderr says which and why (the JSON on stdout stays one object).
fn report(summary: &SqlSummary, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        print!("{}", human(summary));
    }
    if !summary.failed() {
        return Ok(ExitCode::SUCCESS);
    }
    for run in std::iter::once(summary).chain(summary.direct.as_deref()) {
        if run.requests == 0 && run.errors_total > 0 {
            eprintln!(
                "tollgate-load: no operation succeeded on the {} path ({}): {} errors, the last: {}",
                run.path,
                run.addr,
                run.errors_total,
                run.last_error.as_deref().unwrap_or("(none recorded)")
            );
        }
    }
    Ok(ExitCode::from(2))
}

/// The environment's password for a direct path whose DSN has none, so it
/// need not appear on the command line (libpq's PGPASSWORD, the MySQL
/// clients' MYSQL_PWD).
fn env_password(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|p| !p.is_empty())
}

pub fn run_pg(args: PgArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args.load, args.workload, args.rows)?;
    let (protocol, workload) = (args.protocol, args.workload);
    let gateway = PgBackend::new(&args.dsn, gateway_password(&args.load)?, protocol, workload)
        .context("--dsn")?;
    let direct = args
        .direct
        .as_deref()
        .map(|dsn| {
            let mut direct = PgBackend::new(dsn, Password::FromDsn, protocol, workload)?;
            direct.default_password(env_password("PGPASSWORD"));
            anyhow::Ok(direct)
        })
        .transpose()
        .context("--direct")?;
    let label = Label {
        mode: "pg",
        workload: workload.name(),
        protocol: protocol.name(),
    };
    run_both(&plan, label, gateway, direct, args.load.json)
}

pub fn run_mysql(args: MysqlArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args.load, args.workload, args.rows)?;
    let (protocol, workload) = (args.protocol, args.workload);
    let gateway = MyBackend::new(&args.dsn, gateway_password(&args.load)?, protocol, workload)
        .context("--dsn")?;
    let direct = args
        .direct
        .as_deref()
        .map(|dsn| {
            let mut direct = MyBackend::new(dsn, Password::FromDsn, protocol, workload)?;
            direct.default_password(env_password("MYSQL_PWD"));
            anyhow::Ok(direct)
        })
        .transpose()
        .context("--direct")?;
    let label = Label {
        mode: "mysql",
        workload: workload.name(),
        protocol: protocol.name(),
    };
    run_both(&plan, label, gateway, direct, args.load.json)
}

/// The gateway path, then (with `--direct`) the direct path with the same
/// plan, and the report of both.
pub fn run_both<B: Backend>(
    plan: &Plan,
    label: Label,
    gateway: B,
    direct: Option<B>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let addr = gateway.addr();
    let mut summary = run_path(gateway, addr, plan, label, "gateway")?;
    if let Some(direct) = direct {
        let addr = direct.addr();
        summary = summary.with_direct(run_path(direct, addr, plan, label, "direct")?);
    }
    report(&summary, json)
}
