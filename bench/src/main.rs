//! `tollgate-load`: the bundled load tool SREs use to size a tollgate host.
//!
//! `echo` is an upstream to relay to; `tcp ping` measures small-message
//! latency and request rate; `tcp bulk` measures transfer throughput. See
//! `tollgate-load --help` for the options and the JSON fields.

mod echo;
mod exchange;
mod http;
mod load;
mod plot;
mod report;
mod runtime;
mod sql;
mod units;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::load::{Plan, Stop};
use crate::report::{Latency, Summary, human_summary, per_second, progress_line};

const JSON_HELP: &str = "\
JSON OUTPUT (--json): one object on stdout, fields stable across releases:
  tool, version            \"tollgate-load\", the tool's version
  mode                     \"tcp ping\" or \"tcp bulk\"
  addr, connections, threads, size (bytes per request, each way)
  target_rate              --rate in requests/s, or null (closed model)
  warmup_s, duration_s     warm-up, and the measured window, in seconds
  requests                 requests completed in the window (full echo, checked)
  errors                   {connect, reset, eof, mismatch, timeout, other}
  errors_total             their sum (whole run, warm-up included)
  req_per_s                requests / duration_s
  bytes_sent, bytes_received   payload in the window
  mb_per_s, mib_per_s      echoed payload per second, one direction
                           (MB = 10^6 bytes, MiB = 2^20 bytes)
  latency_us               {min, mean, p50, p90, p99, p999, max} in µs
                           (HdrHistogram, 3 significant digits)
  latency_curve_us         [{percentile, us}] from 0 to 100 (for plots)
  per_second               requests completed in each second of the window

EXIT STATUS: 0 when the run completed; 2 when no request succeeded; 1 on a usage
or set-up error.";

#[derive(Parser, Debug)]
#[command(
    name = "tollgate-load",
    version,
    about = "Load generator and echo upstream for sizing a tollgate host",
    after_long_help = JSON_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an echo server (the upstream behind the gateway under test).
    Echo(EchoArgs),
    /// Drive load over plain TCP against an echo server, directly or through a relay.
    Tcp {
        #[command(subcommand)]
        mode: TcpMode,
    },
    /// Drive SQL load over the PostgreSQL protocol through tollgate (and optionally directly).
    #[command(after_long_help = sql::cli::PG_HELP)]
    Pg(Box<sql::cli::PgArgs>),
    /// Drive SQL load over the MySQL protocol through tollgate (and optionally directly to MySQL/MariaDB).
    #[command(after_long_help = sql::cli::MYSQL_HELP)]
    Mysql(Box<sql::cli::MysqlArgs>),
    /// Drive HTTP load through tollgate's HTTP gateway (and optionally directly to the upstream).
    #[command(after_long_help = http::cli::HTTP_HELP)]
    Http(Box<http::cli::HttpArgs>),
    /// Draw result files (--json output) as latency and throughput charts (.html or .svg).
    Plot(plot::PlotArgs),
}

#[derive(Subcommand, Debug)]
enum TcpMode {
    /// Small messages back and forth: request rate and latency.
    Ping(PingArgs),
    /// Large transfers sent and echoed back at the same time: throughput.
    Bulk(BulkArgs),
}

#[derive(Args, Debug)]
struct EchoArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// Threads, each with its own runtime and SO_REUSEPORT listener [default: CPUs available].
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Address to connect to: the echo server, or a relay in front of it.
    #[arg(long)]
    addr: SocketAddr,
    /// Threads driving the connections [default: CPUs available, at most one per connection].
    #[arg(long)]
    threads: Option<usize>,
    /// Time to run before recording [default: 1s with --duration, 0 otherwise].
    #[arg(long, value_parser = parse_duration_arg)]
    warmup: Option<Duration>,
    /// Open model: send this many requests per second in total, on a fixed schedule;
    /// latency is measured from when each request was due.
    #[arg(long)]
    rate: Option<f64>,
    /// Abandon a request (and its connection) in flight longer than this.
    #[arg(long, default_value = "5s", value_parser = parse_duration_arg)]
    timeout: Duration,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Do not compare the echo with what was sent.
    #[arg(long)]
    no_verify: bool,
    /// No live progress line, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args, Debug)]
struct PingArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Message size (64, 4KiB, 1MB, ...).
    #[arg(long, default_value = "64", value_parser = parse_size_arg)]
    size: u64,
    /// Measure for this long (after the warm-up) [default: 10s].
    #[arg(long, value_parser = parse_duration_arg, conflicts_with = "count")]
    duration: Option<Duration>,
    /// Measure this many requests in total over all connections.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Args, Debug)]
struct BulkArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Concurrent connections, each with one transfer in flight.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Bytes per transfer, sent and echoed back (1MiB, 100MB, ...).
    #[arg(long, default_value = "1MiB", value_parser = parse_size_arg)]
    size: u64,
    /// Transfers in total over all connections [default: 1].
    #[arg(long, conflicts_with = "duration")]
    repeat: Option<u64>,
    /// Repeat transfers for this long (after the warm-up) instead.
    #[arg(long, value_parser = parse_duration_arg)]
    duration: Option<Duration>,
}

fn parse_size_arg(input: &str) -> Result<u64, String> {
    units::parse_size(input).map_err(|e| e.to_string())
}

fn parse_duration_arg(input: &str) -> Result<Duration, String> {
    units::parse_duration(input).map_err(|e| e.to_string())
}

/// Largest message or transfer: far above any sensible run, low enough that
/// counters in bytes cannot overflow.
const MAX_SIZE: u64 = 1 << 40;
const MAX_CONNECTIONS: usize = 1_000_000;

/// Turns the parsed options into a plan, refusing values that cannot run.
fn build_plan(
    mode: &'static str,
    common: &CommonArgs,
    connections: usize,
    size: u64,
    stop: Stop,
) -> anyhow::Result<Plan> {
    if connections == 0 || connections > MAX_CONNECTIONS {
        bail!("--connections must be between 1 and {MAX_CONNECTIONS}, got {connections}");
    }
    if size == 0 || size > MAX_SIZE {
        bail!("--size must be between 1 B and 1 TiB, got {size} B");
    }
    let size = usize::try_from(size)?;
    if let Some(rate) = common.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests per second, got {rate}");
    }
    match stop {
        Stop::Count(0) => bail!(
            "{} must be at least 1",
            if mode == "tcp bulk" {
                "--repeat"
            } else {
                "--count"
            }
        ),
        Stop::After(Duration::ZERO) => bail!("--duration must be longer than 0s"),
        _ => {}
    }
    if common.timeout.is_zero() {
        bail!("--timeout must be longer than 0s");
    }
    let threads = match common.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
    .min(connections);
    let warmup = common.warmup.unwrap_or(match stop {
        Stop::After(_) => Duration::from_secs(1),
        Stop::Count(_) => Duration::ZERO,
    });
    Ok(Plan {
        addr: common.addr,
        size,
        connections,
        threads,
        stop,
        warmup,
        rate: common.rate,
        timeout: common.timeout,
        verify: !common.no_verify,
        progress: !common.no_progress && std::io::stderr().is_terminal(),
    })
}

fn summarise(mode: &'static str, plan: &Plan, outcome: &load::Outcome) -> Summary {
    let received = outcome.bytes_received as f64;
    Summary {
        tool: "tollgate-load",
        version: env!("CARGO_PKG_VERSION"),
        mode,
        addr: plan.addr.to_string(),
        connections: plan.connections,
        threads: plan.threads,
        size: plan.size as u64,
        target_rate: plan.rate,
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s: outcome.measured.as_secs_f64(),
        requests: outcome.requests,
        errors: outcome.errors,
        errors_total: outcome.errors.total(),
        req_per_s: per_second(outcome.requests as f64, outcome.measured),
        bytes_sent: outcome.bytes_sent,
        bytes_received: outcome.bytes_received,
        mb_per_s: per_second(received, outcome.measured) / 1e6,
        mib_per_s: per_second(received, outcome.measured) / 1_048_576.0,
        latency_us: Latency::from_histogram(&outcome.latency_us),
        latency_curve_us: sql::summary::curve(&outcome.latency_us),
        per_second: outcome.per_second.clone(),
    }
}

fn run_load(mode: &'static str, plan: Plan, json: bool) -> anyhow::Result<ExitCode> {
    let live = plan.progress;
    let outcome = load::run(plan.clone(), |progress| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", progress_line(progress));
        let _ = err.flush();
    })?;
    if live {
        eprint!("\r\x1b[K");
    }
    let summary = summarise(mode, &plan, &outcome);
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", human_summary(&summary));
    }
    Ok(if summary.requests == 0 && summary.errors_total > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    if let Some(code) = tollgate::dist::main_hook::<Cli>() {
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo(args) => {
            let threads = args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if threads == 0 {
                Err(anyhow::anyhow!("--threads must be at least 1"))
            } else {
                echo::serve(args.listen, threads).map(|()| ExitCode::SUCCESS)
            }
        }
        Command::Pg(args) => sql::cli::run_pg(*args),
        Command::Mysql(args) => sql::cli::run_mysql(*args),
        Command::Http(args) => http::cli::run_http(*args),
        Command::Plot(args) => plot::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Tcp {
            mode: TcpMode::Ping(args),
        } => {
            let stop = match (args.count, args.duration) {
                (Some(count), _) => Stop::Count(count),
                (None, Some(duration)) => Stop::After(duration),
                (None, None) => Stop::After(Duration::from_secs(10)),
            };
            build_plan("tcp ping", &args.common, args.connections, args.size, stop)
                .and_then(|plan| run_load("tcp ping", plan, args.common.json))
        }
        Command::Tcp {
            mode: TcpMode::Bulk(args),
        } => {
            let stop = match (args.repeat, args.duration) {
                (_, Some(duration)) => Stop::After(duration),
                (repeat, None) => Stop::Count(repeat.unwrap_or(1)),
            };
            build_plan("tcp bulk", &args.common, args.connections, args.size, stop)
                .and_then(|plan| run_load("tcp bulk", plan, args.common.json))
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tollgate-load: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tollgate-load").chain(args.iter().copied()))
    }

    fn ping(args: &[&str]) -> PingArgs {
        let mut full = vec!["tcp", "ping"];
        full.extend_from_slice(args);
        match parse(&full).unwrap().command {
            Command::Tcp {
                mode: TcpMode::Ping(ping),
            } => ping,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn ping_defaults_and_units() {
        let args = ping(&["--addr", "127.0.0.1:7001"]);
        assert_eq!(args.connections, 32);
        assert_eq!(args.size, 64);
        assert_eq!(args.common.timeout, Duration::from_secs(5));
        let args = ping(&[
            "--addr",
            "127.0.0.1:7001",
            "--size",
            "4KiB",
            "--duration",
            "1m30s",
            "--warmup",
            "500ms",
        ]);
        assert_eq!(args.size, 4096);
        assert_eq!(args.duration, Some(Duration::from_secs(90)));
        assert_eq!(args.common.warmup, Some(Duration::from_millis(500)));
    }

    #[test]
    fn duration_and_count_exclude_each_other() {
        let err = parse(&[
            "tcp",
            "ping",
            "--addr",
            "127.0.0.1:1",
            "--count",
            "5",
            "--duration",
            "1s",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn bad_units_are_usage_errors() {
        let err = parse(&["tcp", "ping", "--addr", "127.0.0.1:1", "--size", "64XB"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err =
            parse(&["tcp", "bulk", "--addr", "127.0.0.1:1", "--duration", "soon"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn plan_warmup_follows_the_stop_rule_and_threads_are_capped() {
        let args = ping(&[
            "--addr",
            "127.0.0.1:7001",
            "--connections",
            "2",
            "--threads",
            "8",
        ]);
        let plan = build_plan(
            "tcp ping",
            &args.common,
            2,
            64,
            Stop::After(Duration::from_secs(1)),
        )
        .unwrap();
        assert_eq!(plan.threads, 2);
        assert_eq!(plan.warmup, Duration::from_secs(1));
        let plan = build_plan("tcp ping", &args.common, 2, 64, Stop::Count(10)).unwrap();
        assert_eq!(plan.warmup, Duration::ZERO);
    }

    #[test]
    fn plan_refuses_values_that_cannot_run() {
        let args = ping(&["--addr", "127.0.0.1:7001"]);
        let ten = Stop::After(Duration::from_secs(10));
        assert!(build_plan("tcp ping", &args.common, 0, 64, ten).is_err());
        assert!(build_plan("tcp ping", &args.common, 1, 0, ten).is_err());
        assert!(build_plan("tcp ping", &args.common, 1, 64, Stop::Count(0)).is_err());
        assert!(build_plan("tcp ping", &args.common, 1, 64, Stop::After(Duration::ZERO)).is_err());
        let args = ping(&["--addr", "127.0.0.1:7001", "--rate=-5"]);
        assert!(build_plan("tcp ping", &args.common, 1, 64, ten).is_err());
        let args = ping(&["--addr", "127.0.0.1:7001", "--threads", "0"]);
        assert!(build_plan("tcp ping", &args.common, 1, 64, ten).is_err());
    }
}
