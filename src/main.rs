//! The `tollgate` binary: command-line front end of the appliance.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tollgate::config::{Config, LogFormat};
use tollgate::engine::Engine;
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Privileged-access gateway for application-to-application traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and print a summary.
    Check {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
    },
    /// Run the gateway.
    Run {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
        /// Override `[engine] shards` (0 = one per CPU).
        #[arg(long)]
        shards: Option<usize>,
        /// Override `[engine] log_format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// Log filter (RUST_LOG syntax); TOLLGATE_LOG overrides it.
        #[arg(long, default_value = "info")]
        log_level: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                print!("{}", c.summary());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            config,
            shards,
            log_format,
            log_level,
        } => run(config, shards, log_format, &log_level),
    }
}

fn run(
    path: PathBuf,
    shards: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: &str,
) -> ExitCode {
    let mut config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(n) = shards {
        config.engine.shards = if n == 0 {
            tollgate::config::allowed_cpus().len().max(1)
        } else {
            n
        };
    }
    let format = log_format.unwrap_or(config.engine.log_format);
    tollgate::telemetry::init(format, log_level);
    let config = Arc::new(config);
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let engine = match Engine::start(config.clone()) {
        Ok(e) => e,
        Err(e) => {
            error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    info!(
        shards = config.engine.shards,
        targets = config.targets.len(),
        version = env!("CARGO_PKG_VERSION"),
        "tollgate ready"
    );
    let grace = config.engine.shutdown_grace;
    let mut stopping = false;
    loop {
        for sig in signals.pending() {
            if !stopping {
                info!(
                    signal = sig,
                    grace_ms = grace.as_millis() as u64,
                    "shutting down: no new connections, draining live sessions"
                );
                engine.shutdown(grace);
                stopping = true;
            } else {
                warn!(signal = sig, "second signal: closing live sessions now");
                engine.shutdown(Duration::ZERO);
            }
        }
        if engine.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.join();
    info!("tollgate stopped");
    ExitCode::SUCCESS
}
