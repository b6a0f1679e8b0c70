//! `tollgate recordings ...`: what auditors run against a recording
//! directory — list, export (JSON Lines), replay, verify, and the seal key.
//! SSH terminal sessions also export as asciicast and replay as a terminal
//! (`recordings_cli/asciicast.rs`).

mod asciicast;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use tollgate_recorder::{RecordingDir, Selection, SessionFilter};

#[derive(Subcommand)]
pub enum RecordingsCommand {
    /// List recorded sessions (newest last).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per session.
        #[arg(long)]
        json: bool,
    },
    /// Export records as JSON Lines: one session, or --all matching the filters.
    Export {
        /// Session id (hex, as listed).
        session: Option<String>,
        #[arg(long, conflicts_with = "session")]
        all: bool,
        #[command(flatten)]
        filter: FilterArgs,
        /// `jsonl`, or `asciicast` (v2: one SSH session's pty channel).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// asciicast: the SSH channel (default: the first with a pty).
        #[arg(long)]
        channel: Option<u32>,
    },
    /// Show a session as a person reads it. An SSH session with a pty plays
    /// as a terminal, paced as recorded (`--records` lists records instead).
    Replay {
        session: String,
        /// Pace the output in real time.
        #[arg(long)]
        realtime: bool,
        /// List the records even for an SSH terminal session.
        #[arg(long)]
        records: bool,
        /// Terminal playback: the SSH channel (default: the first with a pty).
        #[arg(long)]
        channel: Option<u32>,
        /// Terminal playback speed (2 = twice as fast).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Terminal playback: cap each pause at this many seconds.
        #[arg(long)]
        max_idle: Option<f64>,
        /// Terminal playback: write the paced stream as asciicast at once
        /// instead of waiting (for scripts and tests).
        #[arg(long)]
        no_wait: bool,
        #[arg(long, env = "TOLLGATE_RECORDINGS", default_value = crate::config::DEFAULT_RECORDING_DIR)]
        dir: PathBuf,
    },
    /// Check CRCs, the hash chain, seals, checkpoints, the session index and
    /// signatures; non-zero exit on any problem.
    Verify {
        /// Ed25519 public key (base64, as written by `keygen`) to check seal and checkpoint signatures.
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long, env = "TOLLGATE_RECORDINGS", default_value = crate::config::DEFAULT_RECORDING_DIR)]
        dir: PathBuf,
    },
    /// Write an Ed25519 seal-signing key pair.
    Keygen {
        #[arg(long)]
        private: PathBuf,
        #[arg(long)]
        public: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct FilterArgs {
    /// Recording directory (`[recorder] dir`).
    #[arg(long, env = "TOLLGATE_RECORDINGS", default_value = crate::config::DEFAULT_RECORDING_DIR)]
    dir: PathBuf,
    /// Sessions started at most this long ago (e.g. 2h) ...
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// ... and at least this long ago.
    #[arg(long, value_parser = humantime::parse_duration)]
    until: Option<Duration>,
    /// Exact caller subject.
    #[arg(long)]
    identity: Option<String>,
    #[arg(long)]
    target: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> SessionFilter {
        let now = SystemTime::now();
        SessionFilter {
            since: self.since.and_then(|d| now.checked_sub(d)),
            until: self.until.and_then(|d| now.checked_sub(d)),
            identity: self.identity.clone(),
            target: self.target.clone(),
        }
    }
}

fn parse_session(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim(), 16).map_err(|_| format!("{s:?} is not a session id (hex)"))
}

pub fn run(cmd: RecordingsCommand) -> ExitCode {
    match run_inner(cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(cmd: RecordingsCommand) -> Result<ExitCode, String> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cmd {
        RecordingsCommand::List { filter, json } => {
            let dir = RecordingDir::open(&filter.dir);
            let sessions = dir
                .list_sessions(&filter.filter())
                .map_err(|e| e.to_string())?;
            if !json {
                let _ = writeln!(
                    out,
                    "{:<16}  {:<27}  {:<24}  {:<16}  CLIENT",
                    "SESSION", "STARTED", "IDENTITY", "TARGET"
                );
            }
            for s in sessions {
                if json {
                    let v = serde_json::json!({
                        "session": format!("{:016x}", s.session),
                        "shard": s.shard,
                        "identity": s.subject,
                        "target": s.target,
                        "client": s.client_addr,
                        "started": tollgate_recorder::format_time(s.start_ns),
                    });
                    let _ = writeln!(out, "{v}");
                } else {
                    let _ = writeln!(
                        out,
                        "{:016x}  {:<27}  {:<24}  {:<16}  {}",
                        s.session,
                        tollgate_recorder::format_time(s.start_ns),
                        s.subject,
                        s.target,
                        s.client_addr.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Export {
            session,
            all,
            filter,
            format,
            channel,
        } => {
            if format == "asciicast" {
                let Some(session) = session.filter(|_| !all) else {
                    return Err("--format asciicast exports one SESSION".into());
                };
                let dir = RecordingDir::open(&filter.dir);
                asciicast::export(&dir, parse_session(&session)?, channel, &mut out)?;
                return Ok(ExitCode::SUCCESS);
            }
            if format != "jsonl" {
                return Err(format!("unsupported format {format:?} (jsonl, asciicast)"));
            }
            let selection = match (session, all) {
                (Some(s), false) => Selection::Session(parse_session(&s)?),
                (None, true) => Selection::All,
                _ => return Err("name a SESSION or --all".into()),
            };
            let dir = RecordingDir::open(&filter.dir);
            let mut decoder = crate::pipeline::decode::ByProtocol::default();
            let tty = std::io::stderr().is_terminal();
            let mut progress = |p: tollgate_recorder::Progress| {
                if tty {
                    let pct = (p.bytes_done * 100)
                        .checked_div(p.bytes_total)
                        .unwrap_or(100);
                    eprint!("\r{pct:>3}%  {} records", p.records);
                }
            };
            let summary = dir
                .export(
                    selection,
                    &filter.filter(),
                    &mut out,
                    Some(&mut progress),
                    Some(&mut decoder),
                )
                .map_err(|e| e.to_string())?;
            if tty {
                eprintln!("\rexported {} records", summary.records);
            }
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Replay {
            session,
            realtime,
            records,
            channel,
            speed,
            max_idle,
            no_wait,
            dir,
        } => {
            let id = parse_session(&session)?;
            if !records && !realtime {
                let pace = asciicast::Pace { speed, max_idle };
                let recordings = RecordingDir::open(&dir);
                if asciicast::play(&recordings, id, channel, pace, no_wait, &mut out)? {
                    return Ok(ExitCode::SUCCESS);
                }
                if channel.is_some() {
                    return Err(format!(
                        "session {session} has no SSH pty channel {channel:?}"
                    ));
                }
            }
            let mut decoder = crate::pipeline::decode::ByProtocol::default();
            RecordingDir::open(&dir)
                .replay(id, &mut out, realtime, Some(&mut decoder))
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Verify { key, dir } => {
            let key = match key {
                Some(k) => Some(tollgate_recorder::load_public_key(&k).map_err(|e| e.to_string())?),
                None => None,
            };
            let report =
                tollgate_recorder::verify(&dir, key.as_deref()).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "{report}");
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        RecordingsCommand::Keygen { private, public } => {
            tollgate_recorder::keygen(&private, &public).map_err(|e| e.to_string())?;
            let _ = writeln!(
                out,
                "private key: {}\npublic key:  {}",
                private.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
