//! The `tollgate` binary: command-line front end of the appliance.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tollgate::config::{Config, LogFormat};
use tollgate::snapshot::Snapshot;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Privileged-access gateway for application-to-application traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    admin: tollgate::admin::client::ClientOptions,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and print a summary.
    Check {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
    },
    /// Auditors: list, export, replay and verify session recordings.
    #[command(subcommand)]
    Recordings(tollgate::recordings_cli::RecordingsCommand),
    /// Security engineers: test a policy over SQL or recordings, explain a statement.
    #[command(subcommand)]
    Policy(tollgate::policy_cli::PolicyCommand),
    #[command(flatten)]
    Admin(tollgate::admin::client::AdminCommand),
    /// A fleet's shared control database (`[cluster]`): schema migrations.
    #[command(subcommand)]
    Cluster(tollgate::cluster::cli::ClusterCommand),
    /// Development token issuer: key pairs and short-lived tokens.
    #[command(subcommand)]
    Token(TokenCommand),
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
        /// Once every listener and the admin API listen, write their bound addresses
        /// here as JSON (`{"pid", "admin", "targets": {name: [addr]}}`); with port 0 in
        /// `listen`, this is how a supervisor or test learns the ports.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Write a signing key (PKCS#8 PEM) and its JWKS into a directory.
    Keygen {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// eddsa or es256.
        #[arg(long, default_value = "eddsa")]
        alg: String,
    },
    /// Print a signed token.
    Mint {
        /// The private key written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        sub: String,
        /// Comma-separated groups.
        #[arg(long, value_delimiter = ',', default_value = "")]
        groups: Vec<String>,
        #[arg(long)]
        aud: String,
        #[arg(long, default_value = "https://tollgate.dev.local")]
        iss: String,
        /// Lifetime, e.g. 10m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        ttl: Duration,
        #[arg(long)]
        jti: Option<String>,
    },
}

fn main() -> ExitCode {
    if let Some(code) = tollgate::dist::main_hook::<Cli>() {
        return code;
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                // Build what `run` would put in service: key files, TLS
                // certificates and masking keys must load too.
                match Snapshot::build(Arc::new(c.clone())) {
                    Ok(s) => {
                        s.identity.shutdown();
                        for warning in c.warnings() {
                            eprintln!("warning: {warning}");
                        }
                        print!("{}", c.summary());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}: {e}", config.display());
                        ExitCode::from(2)
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Token(cmd) => token(cmd),
        Command::Cluster(cmd) => tollgate::cluster::cli::run(cmd),
        Command::Run {
            config,
            shards,
            log_format,
            log_level,
            ready_file,
        } => tollgate::app::run(tollgate::app::RunOptions {
            config,
            shards,
            log_format,
            log_level,
            ready_file,
        }),
        Command::Recordings(cmd) => tollgate::recordings_cli::run(cmd),
        Command::Policy(cmd) => tollgate::policy_cli::run(cmd),
        Command::Admin(cmd) => {
            match tollgate::admin::client::run_cli(cmd, cli.admin, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn token(cmd: TokenCommand) -> ExitCode {
    use tollgate::identity::devissuer;
    match cmd {
        TokenCommand::Keygen { dir, alg } => {
            let alg = match alg.parse::<devissuer::DevAlg>() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            match devissuer::keygen(&dir, alg) {
                Ok(k) => {
                    println!("private key: {}", k.private_key.display());
                    println!("jwks:        {}", k.jwks.display());
                    println!("kid:         {}", k.kid);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        TokenCommand::Mint {
            key,
            sub,
            groups,
            aud,
            iss,
            ttl,
            jti,
        } => {
            let params = devissuer::MintParams {
                sub,
                groups: groups.into_iter().filter(|g| !g.is_empty()).collect(),
                aud,
                iss,
                ttl,
                kid: None,
                jti,
            };
            match devissuer::mint(&key, &params) {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
