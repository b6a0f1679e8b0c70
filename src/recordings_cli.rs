//! `tollgate recordings ...`: what auditors run against a recording
//! directory or a bucket (`--from s3://...`, see `objstore::cli`) — list,
//! export (JSON Lines), replay, verify, and the seal key. SSH terminal
//! sessions also export as asciicast and replay as a terminal
//! (`recordings_cli/asciicast.rs`).

mod asciicast;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use tollgate_recorder::{RecordingDir, Selection, SessionFilter};

use crate::objstore::cli::StoreArgs;

#[derive(Subcommand)]
pub enum RecordingsCommand {
    /// List recorded sessions (newest last).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per session.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
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
        #[command(flatten)]
        store: StoreArgs,
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
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check CRCs, the hash chain, seals, checkpoints, the session index and
    /// signatures; non-zero exit on any problem. With --from: every host's
    /// signed manifest chain and every segment it lists (present, same
    /// SHA-256, in order), and nothing unlisted.
    Verify {
        /// Ed25519 public key (base64, as written by `keygen`) to check seal and checkpoint signatures.
        /// With --from it may be given once per host key.
        #[arg(long)]
        key: Vec<PathBuf>,
        #[arg(long, env = "TOLLGATE_RECORDINGS", default_value = crate::config::DEFAULT_RECORDING_DIR)]
        dir: PathBuf,
        /// With --from: the file keeping each host's newest manifest version
        /// seen, so a later rollback is named (default: in the cache).
        #[arg(long, requires = "from")]
        state: Option<PathBuf>,
        /// With --from: also cross-check the fleet's segment catalog in the
        /// control database this config file's `[cluster]` names (a segment
        /// the catalog names but the bucket lacks, one the catalog lacks, a
        /// size or SHA-256 that differs from the manifests).
        #[arg(long, value_name = "CONFIG", requires = "from")]
        catalog: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the fleet's uploaded segments from the catalog in the control
    /// database (`[cluster]` of --config): per host, newest first. The
    /// signed manifests in the bucket stay the source of truth; `verify
    /// --from ... --catalog` checks that the two agree.
    Catalog {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
        /// Only this host's segments (its `[recorder.upload] host_id`).
        #[arg(long)]
        host: Option<String>,
        /// Segments uploaded at most this long ago (e.g. 2h).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// One JSON object per segment.
        #[arg(long)]
        json: bool,
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

/// The directories to read: `dir`, or each host's cache of the bucket.
fn recording_dirs(
    store: &StoreArgs,
    dir: &std::path::Path,
) -> Result<Vec<(Option<String>, PathBuf)>, String> {
    if !store.is_set() {
        return Ok(vec![(None, dir.to_path_buf())]);
    }
    Ok(store
        .fetch()?
        .into_iter()
        .map(|(h, d)| (Some(h), d))
        .collect())
}

/// The directory of `dirs` (one per host) that holds `session`; the first
/// when none does (its reader then says the session is not there).
fn session_dir(dirs: &[(Option<String>, PathBuf)], session: u64) -> &std::path::Path {
    dirs.iter()
        .find(|(_, d)| RecordingDir::open(d).find_session(session).is_ok())
        .or(dirs.first())
        .map_or(std::path::Path::new("."), |(_, d)| d.as_path())
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
        RecordingsCommand::List {
            filter,
            json,
            store,
        } => {
            let dirs = recording_dirs(&store, &filter.dir)?;
            let mut sessions = Vec::new();
            for (host, dir) in &dirs {
                for s in RecordingDir::open(dir)
                    .list_sessions(&filter.filter())
                    .map_err(|e| e.to_string())?
                {
                    sessions.push((host.as_deref(), s));
                }
            }
            sessions.sort_by_key(|(_, s)| s.start_ns);
            if !json {
                if store.is_set() {
                    let _ = write!(out, "{:<20}  ", "HOST");
                }
                let _ = writeln!(
                    out,
                    "{:<16}  {:<27}  {:<24}  {:<16}  CLIENT",
                    "SESSION", "STARTED", "IDENTITY", "TARGET"
                );
            }
            for (host, s) in sessions {
                if json {
                    let v = serde_json::json!({
                        "host": host,
                        "session": format!("{:016x}", s.session),
                        "shard": s.shard,
                        "identity": s.subject,
                        "target": s.target,
                        "client": s.client_addr,
                        "started": tollgate_recorder::format_time(s.start_ns),
                    });
                    let _ = writeln!(out, "{v}");
                } else {
                    if let Some(h) = host {
                        let _ = write!(out, "{h:<20}  ");
                    }
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
            store,
        } => {
            if format == "asciicast" {
                let Some(session) = session.filter(|_| !all) else {
                    return Err("--format asciicast exports one SESSION".into());
                };
                let id = parse_session(&session)?;
                let dirs = recording_dirs(&store, &filter.dir)?;
                let dir = RecordingDir::open(session_dir(&dirs, id));
                asciicast::export(&dir, id, channel, &mut out)?;
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
            let dirs = recording_dirs(&store, &filter.dir)?;
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
            // A session lives on one host: the hosts without it are skipped.
            let mut records = 0;
            let mut found = false;
            let mut last_err = None;
            for (_, dir) in &dirs {
                match RecordingDir::open(dir).export(
                    selection,
                    &filter.filter(),
                    &mut out,
                    Some(&mut progress),
                    Some(&mut decoder),
                ) {
                    Ok(summary) => {
                        records += summary.records;
                        found = true;
                    }
                    Err(e @ tollgate_recorder::RecorderError::SessionNotFound { .. }) => {
                        last_err = Some(e.to_string())
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            if !found && let Some(e) = last_err {
                return Err(e);
            }
            if tty {
                eprintln!("\rexported {records} records");
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
            store,
        } => {
            let id = parse_session(&session)?;
            let dirs = recording_dirs(&store, &dir)?;
            if !records && !realtime {
                let pace = asciicast::Pace { speed, max_idle };
                let recordings = RecordingDir::open(session_dir(&dirs, id));
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
            let mut last_err = format!("session {session} not found");
            for (_, dir) in &dirs {
                match RecordingDir::open(dir).replay(id, &mut out, realtime, Some(&mut decoder)) {
                    Ok(_) => return Ok(ExitCode::SUCCESS),
                    Err(e @ tollgate_recorder::RecorderError::SessionNotFound { .. }) => {
                        last_err = e.to_string()
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err(last_err)
        }
        RecordingsCommand::Catalog {
            config,
            host,
            since,
            limit,
            json,
        } => {
            catalog(&config, host, since, limit, json, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Verify {
            key,
            dir,
            state,
            catalog,
            store,
        } => {
            let keys = key
                .iter()
                .map(|k| tollgate_recorder::load_public_key(k).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            if store.is_set() {
                let ok = store.verify(&keys, state.as_deref(), catalog.as_deref(), &mut out)?;
                return Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            if catalog.is_some() {
                return Err("--catalog cross-checks a bucket: give --from s3://...".into());
            }
            if keys.len() > 1 {
                return Err("a local directory is checked with one --key".into());
            }
            let key = keys.into_iter().next();
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

/// `recordings catalog`: one line (or JSON object) per uploaded segment.
fn catalog(
    config: &std::path::Path,
    host: Option<String>,
    since: Option<Duration>,
    limit: usize,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let cluster = crate::cluster::cli::cluster_of(config)?;
    let since_ms = since.map(|d| {
        SystemTime::now()
            .checked_sub(d)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    });
    let filter = crate::objstore::catalog::CatalogFilter {
        host,
        since_ms,
        limit: limit.clamp(1, crate::cluster::catalog::MAX_ROWS),
        ..Default::default()
    };
    let rows = crate::cluster::cli::read_catalog(&cluster, &filter)?;
    if !json {
        let _ = writeln!(
            out,
            "{:<20}  {:<27}  {:>8}  {:>12}  {:<6}  OBJECT",
            "HOST", "UPLOADED", "MANIFEST", "BYTES", "LOCAL"
        );
    }
    for r in rows {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            let _ = writeln!(
                out,
                "{:<20}  {:<27}  {:>8}  {:>12}  {:<6}  s3://{}/{}",
                r.host,
                tollgate_recorder::format_time(r.uploaded_ms.saturating_mul(1_000_000)),
                r.manifest_version,
                r.size,
                if r.local_deleted_ms.is_some() {
                    "gone"
                } else {
                    "kept"
                },
                r.bucket,
                r.object_key
            );
        }
    }
    Ok(())
}
