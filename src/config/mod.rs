//! Configuration: one TOML file, parsed strictly, validated once into a typed
//! [`Config`]. `tollgate check` and `tollgate run` go through the same
//! [`Config::load`], so a file that passes `check` is a file `run` accepts.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod admin;
pub mod mysql;

use crate::identity::{AccessConfig, IdentityConfig};
use crate::policy::mask::MaskingConfig;

/// A configuration error that names the file, the line (when known) and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The wire protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A byte relay: no inspection, identity from mTLS (or explicitly none, on loopback).
    Tcp,
    /// PostgreSQL v3: token in, stored credential out, policy on every message.
    Postgres,
    /// MySQL/MariaDB: token in, stored credential out, policy on every
    /// command (`[target.mysql]`, `crate::mysql`).
    Mysql,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Postgres => f.write_str("postgres"),
            Protocol::Mysql => f.write_str("mysql"),
        }
    }
}

/// `[engine]`: the shards and the limits that protect the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    shards: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_shard: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    log_format: Option<LogFormat>,
    listen_backlog: Option<u32>,
    buffer_size: Option<usize>,
}

/// `[[target]]`: one upstream and how callers reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    protocol: Protocol,
    listen: Vec<String>,
    upstream: String,
    #[serde(default)]
    unauthenticated: bool,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
    /// postgres: the database name callers ask for (routing key); default = `name`.
    database: Option<String>,
    /// postgres: the database on the upstream; default = `database`.
    upstream_database: Option<String>,
    /// The credential only the gateway holds.
    credential: Option<RawCredential>,
    /// Client-facing TLS.
    tls: Option<RawTls>,
    /// Accept plaintext clients; default: only when every listen address is loopback.
    allow_plaintext: Option<bool>,
    upstream_tls: Option<RawUpstreamTls>,
    #[serde(default, with = "humantime_serde")]
    auth_timeout: Option<Duration>,
    /// Who may use this target (default: nobody).
    access: Option<AccessConfig>,
    /// Result masking.
    masking: Option<MaskingConfig>,
    /// Command rules.
    policy: Option<crate::policy::rules::PolicyConfig>,
    /// Who may approve held statements and access requests here (default:
    /// `[admin] reviewer_groups`).
    #[serde(default)]
    reviewer_groups: Vec<String>,
    /// Every connection waits for a reviewer unless an access window granted
    /// earlier covers the caller (just-in-time access).
    #[serde(default)]
    require_approval_to_connect: bool,
    /// mysql: the MySQL target's own settings.
    mysql: Option<mysql::RawMysql>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    user: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    mode: UpstreamTlsMode,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
}

/// `[recorder]`: the session log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecorder {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
    zstd_level: Option<i32>,
    durability: Option<String>,
    #[serde(default, with = "humantime_serde")]
    durability_interval: Option<Duration>,
    block_size: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    block_max_delay: Option<Duration>,
    queue_capacity: Option<usize>,
    queue_bytes: Option<usize>,
    segment_max_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    segment_max_age: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    checkpoint_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    retention_max_age: Option<Duration>,
    retention_max_bytes: Option<u64>,
    signing_key: Option<PathBuf>,
}

/// What `check` says of a configuration without targets (the packaged default).
pub const NO_TARGETS_WARNING: &str =
    "no [[target]] defined: only the admin API is served until one is added";

pub const DEFAULT_RECORDING_DIR: &str = "/var/lib/tollgate/recordings";

/// How the gateway talks TLS to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTlsMode {
    Disable,
    /// TLS with the certificate verified against `ca_file` (or the web PKI roots) and the host name.
    VerifyFull,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    engine: Option<RawEngine>,
    identity: Option<IdentityConfig>,
    recorder: Option<RawRecorder>,
    admin: Option<admin::AdminConfig>,
    limits: Option<crate::limits::LimitsConfig>,
    #[serde(default)]
    target: Vec<RawTarget>,
}

/// Validated engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Number of shards (one pinned thread + io_uring each). `0` was resolved
    /// to the number of CPUs this process may run on.
    pub shards: usize,
    /// Global cap on live client connections across all shards.
    pub max_connections: usize,
    /// Cap per shard; one busy shard cannot take the whole global budget.
    pub max_connections_per_shard: usize,
    /// How long live sessions may run on after SIGTERM before they are closed.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub listen_backlog: u32,
    /// Relay buffer per direction per connection.
    pub buffer_size: usize,
}

/// A validated target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub name: String,
    pub protocol: Protocol,
    pub listen: Vec<SocketAddr>,
    /// Host and port as written; resolved at connect time so DNS changes apply.
    pub upstream: String,
    pub unauthenticated: bool,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Time a client has to finish start-up and authentication.
    pub auth_timeout: Duration,
    /// postgres: the database name callers connect to.
    pub database: String,
    pub upstream_database: String,
    pub credential: Option<Credential>,
    pub tls: Option<TlsFiles>,
    pub allow_plaintext: bool,
    pub upstream_tls: Option<UpstreamTls>,
    /// Who may use this target; empty admits nobody.
    pub access: AccessConfig,
    pub masking: Option<MaskingConfig>,
    /// Command rules (the default blocks what cannot be classified).
    pub policy: crate::policy::rules::PolicyConfig,
    pub reviewer_groups: Vec<String>,
    pub require_approval_to_connect: bool,
    /// `Some` exactly for mysql targets.
    pub mysql: Option<mysql::MysqlTarget>,
}

impl TargetConfig {
    /// The database name that routes a caller to this target on a listener
    /// several targets of its protocol share (`None`: not shareable).
    pub fn routing_key(&self) -> Option<&str> {
        match self.protocol {
            Protocol::Postgres => Some(&self.database),
            Protocol::Mysql => self.mysql.as_ref().map(|m| m.database.as_str()),
            Protocol::Tcp => None,
        }
    }
}

/// Where the stored upstream credential lives. The secret itself is read
/// when a session needs it (so rotation needs no restart) and never kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    pub mode: UpstreamTlsMode,
    pub ca_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// One listen address and the targets reachable through it (several
/// postgres targets may share one, routed by database name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub targets: Vec<usize>,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages and reloads).
    pub path: PathBuf,
    pub engine: EngineConfig,
    pub identity: IdentityConfig,
    /// `None`: recording explicitly disabled (`[recorder] enabled = false`).
    pub recorder: Option<tollgate_recorder::RecorderConfig>,
    pub admin: admin::AdminConfig,
    /// Message sizes, memory budgets, frame timeout (`[limits]`).
    pub limits: crate::limits::LimitsConfig,
    pub targets: Vec<TargetConfig>,
    pub listeners: Vec<ListenerSpec>,
}

/// Session ids give a shard 8 bits (see `engine::session::SessionId`).
pub const MAX_SHARDS: usize = 256;
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BACKLOG: u32 = 4096;
pub const DEFAULT_BUFFER_SIZE: usize = 32 * 1024;
const MAX_BUFFER_SIZE: usize = 16 * 1024 * 1024;
const MIN_BUFFER_SIZE: usize = 1024;

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parse and validate configuration text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let v = Validator { file: &file, text };
        let engine = v.engine(raw.engine)?;
        let recorder = v.recorder(raw.recorder)?;
        let admin = raw.admin.unwrap_or_default();
        if let Err(e) = admin.validate() {
            return Err(v.invalid(
                &[Seg::Key("admin"), Seg::Key(e.field)],
                &format!("admin.{}", e.field),
                &e.message,
            ));
        }
        let limits = raw.limits.unwrap_or_default();
        if let Err(e) = limits.validate() {
            return Err(v.invalid(
                &[Seg::Key("limits"), Seg::Key(e.field)],
                &format!("limits.{}", e.field),
                &e.message,
            ));
        }
        let identity = raw.identity.unwrap_or_default();
        if let Err(e) = identity.validate() {
            return Err(v.invalid(&[Seg::Key("identity")], "identity", &e.to_string()));
        }
        // No [[target]] is valid: the packaged default config starts with the admin API
        // only, and `warnings()` says so.
        let mut targets = Vec::with_capacity(raw.target.len());
        for (i, t) in raw.target.into_iter().enumerate() {
            let target = v.target(i, t)?;
            if let Some(prev) = targets
                .iter()
                .find(|p: &&TargetConfig| p.name == target.name)
            {
                return Err(v.invalid(
                    &[Seg::Key("target"), Seg::Index(i), Seg::Key("name")],
                    "name",
                    &format!("duplicate target name {:?}", prev.name),
                ));
            }
            for addr in &target.listen {
                let clash = targets.iter().find(|p: &&TargetConfig| {
                    p.listen.contains(addr)
                        && !(p.protocol == target.protocol
                            && p.routing_key().is_some()
                            && p.routing_key() != target.routing_key())
                });
                if let Some(p) = clash {
                    let why = if p.protocol == target.protocol && p.routing_key().is_some() {
                        format!(
                            "{addr} already routes database {:?} to target {:?}",
                            p.routing_key().unwrap_or_default(),
                            p.name
                        )
                    } else {
                        format!("{addr} is already the listener of target {:?}", p.name)
                    };
                    return Err(v.invalid(
                        &[Seg::Key("target"), Seg::Index(i), Seg::Key("listen")],
                        &format!("target[{i}].listen"),
                        &why,
                    ));
                }
            }
            let mtls_ca = identity.mtls.as_ref().and_then(|m| m.ca_file.as_ref());
            if target.protocol == Protocol::Tcp && target.tls.is_some() && mtls_ca.is_none() {
                return Err(v.invalid(
                    &[Seg::Key("target"), Seg::Index(i), Seg::Key("tls")],
                    &format!("target[{i}].tls"),
                    "a tcp target with TLS authenticates callers by client certificate: \
                     configure [identity.mtls] ca_file",
                ));
            }
            if target.protocol != Protocol::Tcp && identity.issuers.is_empty() {
                return Err(v.invalid(
                    &[Seg::Key("target"), Seg::Index(i), Seg::Key("protocol")],
                    &format!("target[{i}].protocol"),
                    &format!(
                        "{} callers authenticate with tokens: configure at least one \
                         [[identity.issuer]]",
                        target.protocol
                    ),
                ));
            }
            targets.push(target);
        }
        let mut listeners: Vec<ListenerSpec> = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            for addr in &t.listen {
                match listeners.iter_mut().find(|l| l.addr == *addr) {
                    Some(l) => l.targets.push(i),
                    None => listeners.push(ListenerSpec {
                        addr: *addr,
                        protocol: t.protocol,
                        targets: vec![i],
                    }),
                }
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            engine,
            identity,
            recorder,
            admin,
            limits,
            targets,
            listeners,
        })
    }

    /// A short human summary, printed by `tollgate check`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: ok\n  shards: {}\n  max connections: {} (per shard {})\n  shutdown grace: {}\n",
            self.path.display(),
            self.engine.shards,
            self.engine.max_connections,
            self.engine.max_connections_per_shard,
            humantime::format_duration(self.engine.shutdown_grace),
        );
        s.push_str(&format!("  targets: {}\n", self.targets.len()));
        for t in &self.targets {
            let listen: Vec<String> = t.listen.iter().map(|a| a.to_string()).collect();
            s.push_str(&format!(
                "    {} ({}) listen {} -> upstream {}{}\n",
                t.name,
                t.protocol,
                listen.join(", "),
                t.upstream,
                if t.unauthenticated {
                    " [unauthenticated]"
                } else {
                    ""
                },
            ));
        }
        s.push_str(&format!(
            "  rule presets: version {}\n",
            tollgate_codecs::sql::PRESET_VERSION
        ));
        s
    }

    /// Advice that does not make the configuration invalid, one line each,
    /// printed by `tollgate check` (today: policies that block part of a
    /// rule preset by name).
    pub fn warnings(&self) -> Vec<String> {
        let none = self
            .targets
            .is_empty()
            .then(|| NO_TARGETS_WARNING.to_string());
        none.into_iter()
            .chain(self.targets.iter().flat_map(|t| {
                crate::policy::rules::preset_warnings(&t.policy)
                    .into_iter()
                    .map(move |w| format!("target {:?}: {w}", t.name))
            }))
            .collect()
    }
}

/// Number of CPUs this process may run on, from the kernel's view of our
/// affinity mask (honours `taskset` and cpusets).
pub fn allowed_cpus() -> Vec<usize> {
    let from_status = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| parse_cpu_list(l.trim()))
        })
        .filter(|v| !v.is_empty());
    from_status.unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).collect()
    })
}

/// Parse a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Validator<'_> {
    fn invalid(&self, path: &[Seg<'_>], field: &str, message: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: locate_line(self.text, path),
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    fn engine(&self, raw: Option<RawEngine>) -> Result<EngineConfig, ConfigError> {
        let raw = raw.unwrap_or(RawEngine {
            shards: None,
            max_connections: None,
            max_connections_per_shard: None,
            shutdown_grace: None,
            log_format: None,
            listen_backlog: None,
            buffer_size: None,
        });
        let at = |k| [Seg::Key("engine"), Seg::Key(k)];
        let cpus = allowed_cpus().len().max(1);
        let shards = match raw.shards {
            None | Some(0) => cpus,
            Some(n) if n > MAX_SHARDS => {
                return Err(self.invalid(&at("shards"), "engine.shards", "at most 256 shards"));
            }
            Some(n) => n,
        };
        let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(self.invalid(
                &at("max_connections"),
                "engine.max_connections",
                "must be at least 1",
            ));
        }
        let max_connections_per_shard = raw.max_connections_per_shard.unwrap_or(max_connections);
        if max_connections_per_shard == 0 {
            return Err(self.invalid(
                &at("max_connections_per_shard"),
                "engine.max_connections_per_shard",
                "must be at least 1",
            ));
        }
        let buffer_size = raw.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE);
        if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&buffer_size) {
            return Err(self.invalid(
                &at("buffer_size"),
                "engine.buffer_size",
                &format!("must be between {MIN_BUFFER_SIZE} and {MAX_BUFFER_SIZE} bytes"),
            ));
        }
        let listen_backlog = raw.listen_backlog.unwrap_or(DEFAULT_BACKLOG);
        if listen_backlog == 0 {
            return Err(self.invalid(
                &at("listen_backlog"),
                "engine.listen_backlog",
                "must be at least 1",
            ));
        }
        Ok(EngineConfig {
            shards,
            max_connections,
            max_connections_per_shard,
            shutdown_grace: raw.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            log_format: raw.log_format.unwrap_or_default(),
            listen_backlog,
            buffer_size,
        })
    }

    fn recorder(
        &self,
        raw: Option<RawRecorder>,
    ) -> Result<Option<tollgate_recorder::RecorderConfig>, ConfigError> {
        use tollgate_recorder::{Durability, RecorderConfig};
        let raw = match raw {
            Some(r) if r.enabled == Some(false) => return Ok(None),
            Some(r) => r,
            None => RawRecorder {
                enabled: None,
                dir: None,
                zstd_level: None,
                durability: None,
                durability_interval: None,
                block_size: None,
                block_max_delay: None,
                queue_capacity: None,
                queue_bytes: None,
                segment_max_bytes: None,
                segment_max_age: None,
                checkpoint_interval: None,
                retention_max_age: None,
                retention_max_bytes: None,
                signing_key: None,
            },
        };
        let mut c = RecorderConfig::new(raw.dir.unwrap_or_else(|| DEFAULT_RECORDING_DIR.into()));
        if let Some(v) = raw.zstd_level {
            c.zstd_level = v;
        }
        c.durability = match raw.durability.as_deref() {
            None | Some("batch") => Durability::Batch,
            Some("always") => Durability::Always,
            Some("before_forward") => Durability::BeforeForward,
            Some("interval") => Durability::Interval(
                raw.durability_interval
                    .unwrap_or(Duration::from_millis(100)),
            ),
            Some(other) => {
                return Err(self.invalid(
                    &[Seg::Key("recorder"), Seg::Key("durability")],
                    "recorder.durability",
                    &format!("{other:?}: expected before_forward, always, batch or interval"),
                ));
            }
        };
        if let Some(v) = raw.block_size {
            c.block_size = v;
        }
        if let Some(v) = raw.block_max_delay {
            c.block_max_delay = v;
        }
        if let Some(v) = raw.queue_capacity {
            c.queue_capacity = v;
        }
        if let Some(v) = raw.queue_bytes {
            c.queue_bytes = v;
        }
        if let Some(v) = raw.segment_max_bytes {
            c.segment_max_bytes = v;
        }
        if let Some(v) = raw.segment_max_age {
            c.segment_max_age = v;
        }
        if let Some(v) = raw.checkpoint_interval {
            c.checkpoint_interval = v;
        }
        c.retention_max_age = raw.retention_max_age;
        c.retention_max_bytes = raw.retention_max_bytes;
        c.signing_key = raw.signing_key;
        if let Err(e) = c.validate() {
            let field = match &e {
                tollgate_recorder::RecorderError::Config { field, .. } => field.to_string(),
                _ => "recorder".to_string(),
            };
            return Err(self.invalid(
                &[Seg::Key("recorder"), Seg::Key(&field)],
                &format!("recorder.{field}"),
                &e.to_string(),
            ));
        }
        Ok(Some(c))
    }

    fn target(&self, i: usize, raw: RawTarget) -> Result<TargetConfig, ConfigError> {
        let at = |k| [Seg::Key("target"), Seg::Index(i), Seg::Key(k)];
        let field = |k: &str| format!("target[{i}].{k}");
        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            return Err(self.invalid(
                &at("name"),
                &field("name"),
                "must be 1-64 characters of letters, digits, '-', '_' or '.'",
            ));
        }
        if raw.listen.is_empty() {
            return Err(self.invalid(
                &at("listen"),
                &field("listen"),
                "at least one listen address is required",
            ));
        }
        let mut listen = Vec::with_capacity(raw.listen.len());
        for l in &raw.listen {
            let addr: SocketAddr = l.parse().map_err(|_| {
                self.invalid(
                    &at("listen"),
                    &field("listen"),
                    &format!("{l:?} is not an IP:port socket address"),
                )
            })?;
            // Port 0: the kernel picks the port at start-up (tests, sidecars); the bound
            // address is logged ("bound addresses") and written to `run --ready-file`.
            if listen.contains(&addr) {
                return Err(self.invalid(
                    &at("listen"),
                    &field("listen"),
                    &format!("{l:?} is listed twice"),
                ));
            }
            listen.push(addr);
        }
        match raw.upstream.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            }
            _ => {
                return Err(self.invalid(
                    &at("upstream"),
                    &field("upstream"),
                    &format!("{:?} is not host:port", raw.upstream),
                ));
            }
        }
        let all_loopback = listen.iter().all(|a| a.ip().is_loopback());
        // Fail closed: a relay with no identity is only tolerable where only
        // this host can reach it.
        if raw.protocol != Protocol::Tcp && raw.unauthenticated {
            return Err(self.invalid(
                &at("unauthenticated"),
                &field("unauthenticated"),
                &format!(
                    "{} targets always authenticate callers by token",
                    raw.protocol
                ),
            ));
        }
        let mysql = match raw.protocol {
            Protocol::Mysql => Some(
                mysql::validate(&raw.name, raw.mysql.clone())
                    .map_err(|(k, why)| self.invalid(&at("mysql"), &field(k), &why))?,
            ),
            _ if raw.mysql.is_some() => {
                return Err(self.invalid(
                    &at("mysql"),
                    &field("mysql"),
                    "[target.mysql] is for protocol = \"mysql\" targets",
                ));
            }
            _ => None,
        };
        if raw.protocol == Protocol::Tcp && raw.tls.is_some() && raw.unauthenticated {
            return Err(self.invalid(
                &at("unauthenticated"),
                &field("unauthenticated"),
                "a tcp target with [target.tls] authenticates callers by client certificate; \
                 remove `unauthenticated`",
            ));
        }
        if raw.protocol == Protocol::Tcp && raw.tls.is_none() {
            if !raw.unauthenticated {
                return Err(self.invalid(
                    &at("protocol"),
                    &field("unauthenticated"),
                    "a tcp target needs caller identity: configure [target.tls] with \
                     [identity.mtls] ca_file (mTLS), or say `unauthenticated = true`, which is \
                     only accepted on loopback listen addresses",
                ));
            }
            if let Some(a) = listen.iter().find(|a| !a.ip().is_loopback()) {
                return Err(self.invalid(
                    &at("unauthenticated"),
                    &field("unauthenticated"),
                    &format!("unauthenticated targets may only listen on loopback, not {a}"),
                ));
            }
        }
        let connect_timeout = raw.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if connect_timeout.is_zero() {
            return Err(self.invalid(
                &at("connect_timeout"),
                &field("connect_timeout"),
                "must be greater than zero",
            ));
        }
        let idle_timeout = raw.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT);
        if idle_timeout.is_zero() {
            return Err(self.invalid(
                &at("idle_timeout"),
                &field("idle_timeout"),
                "must be greater than zero",
            ));
        }
        let auth_timeout = raw.auth_timeout.unwrap_or(DEFAULT_AUTH_TIMEOUT);
        if auth_timeout.is_zero() {
            return Err(self.invalid(
                &at("auth_timeout"),
                &field("auth_timeout"),
                "must be greater than zero",
            ));
        }
        let database = raw.database.clone().unwrap_or_else(|| raw.name.clone());
        if database.is_empty() || database.len() > 63 || database.contains('\0') {
            return Err(self.invalid(
                &at("database"),
                &field("database"),
                "must be 1-63 bytes without NUL",
            ));
        }
        let upstream_database = raw
            .upstream_database
            .clone()
            .unwrap_or_else(|| database.clone());
        let credential = match raw.credential {
            None if raw.protocol != Protocol::Tcp => {
                return Err(self.invalid(
                    &at("name"),
                    &field("credential"),
                    &format!(
                        "a {} target needs [target.credential] (user and password_file or \
                         password_env): the gateway logs in with it",
                        raw.protocol
                    ),
                ));
            }
            None => None,
            Some(c) => {
                let source = match (c.password_file, c.password_env) {
                    (Some(f), None) => SecretSource::File(f),
                    (None, Some(e)) if !e.is_empty() => SecretSource::Env(e),
                    _ => {
                        return Err(self.invalid(
                            &at("credential"),
                            &format!("target[{i}].credential"),
                            "exactly one of password_file or password_env is required",
                        ));
                    }
                };
                if c.user.is_empty() {
                    return Err(self.invalid(
                        &at("credential"),
                        &format!("target[{i}].credential.user"),
                        "must not be empty",
                    ));
                }
                Some(Credential {
                    user: c.user,
                    source,
                })
            }
        };
        let tls = raw.tls.map(|t| TlsFiles {
            cert_file: t.cert_file,
            key_file: t.key_file,
        });
        let allow_plaintext = raw.allow_plaintext.unwrap_or(all_loopback);
        if raw.protocol != Protocol::Tcp && !allow_plaintext && tls.is_none() {
            return Err(self.invalid(
                &at("listen"),
                &field("tls"),
                "this target accepts no plaintext clients (non-loopback listener, or \
                 allow_plaintext = false) and has no [target.tls]: nobody could connect",
            ));
        }
        let access = raw.access.unwrap_or_default();
        if let Err(e) = crate::identity::AccessPolicy::compile(&access, &field("access")) {
            return Err(self.invalid(&at("access"), &field("access"), &e.to_string()));
        }
        if let Some(m) = &raw.masking
            && let Err(e) = m.validate()
        {
            return Err(self.invalid(&at("masking"), &field("masking"), &e.to_string()));
        }
        if raw.require_approval_to_connect && raw.protocol == Protocol::Tcp {
            return Err(self.invalid(
                &at("require_approval_to_connect"),
                &field("require_approval_to_connect"),
                "approval to connect is available on postgres and mysql targets",
            ));
        }
        let policy = raw.policy.unwrap_or_default();
        if let Err(e) = policy.validate() {
            return Err(self.invalid(&at("policy"), &field("policy"), &e.to_string()));
        }
        let upstream_tls = raw.upstream_tls.map(|u| UpstreamTls {
            mode: u.mode,
            ca_file: u.ca_file,
            server_name: u.server_name,
        });
        Ok(TargetConfig {
            name: raw.name,
            protocol: raw.protocol,
            listen,
            upstream: raw.upstream,
            unauthenticated: raw.unauthenticated,
            connect_timeout,
            idle_timeout,
            auth_timeout,
            database,
            upstream_database,
            credential,
            tls,
            allow_plaintext,
            upstream_tls,
            access,
            masking: raw.masking,
            policy,
            reviewer_groups: raw.reviewer_groups,
            require_approval_to_connect: raw.require_approval_to_connect,
            mysql,
        })
    }
}

/// The 1-based line of the value at `path`, or of the nearest ancestor that
/// exists (a missing field is reported at its table).
fn locate_line(text: &str, path: &[Seg<'_>]) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 1;
    };
    let mut span = root.span();
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for seg in path {
        let next = match (seg, table, array) {
            (Seg::Key(k), Some(t), _) => t.get(*k),
            (Seg::Index(i), _, Some(a)) => a.get(*i),
            _ => None,
        };
        let Some(v) = next else { break };
        span = v.span();
        table = None;
        array = None;
        match v.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("t.toml"))
    }

    const OK: &str = r#"
[engine]
shards = 2
max_connections = 10

[[target]]
name = "echo"
protocol = "tcp"
listen = ["127.0.0.1:7000"]
upstream = "127.0.0.1:7001"
unauthenticated = true
idle_timeout = "5m"
"#;

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("expected an error for:\n{s}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_config_parses_with_defaults() {
        let c = parse(OK).unwrap();
        assert_eq!(c.engine.shards, 2);
        assert_eq!(c.engine.max_connections, 10);
        assert_eq!(c.engine.max_connections_per_shard, 10);
        assert_eq!(c.engine.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        let t = &c.targets[0];
        assert_eq!(t.listen, vec!["127.0.0.1:7000".parse().unwrap()]);
        assert_eq!(t.idle_timeout, Duration::from_secs(300));
        assert_eq!(t.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(c.summary().contains("echo (tcp) listen 127.0.0.1:7000"));
    }

    #[test]
    fn zero_shards_means_every_allowed_cpu() {
        let c = parse(&OK.replace("shards = 2", "shards = 0")).unwrap();
        assert_eq!(c.engine.shards, allowed_cpus().len());
    }

    #[test]
    fn unknown_field_is_rejected_with_its_line() {
        let e = err(&OK.replace("idle_timeout", "idle_timout"));
        assert!(e.contains("t.toml"), "{e}");
        assert!(e.contains("idle_timout"), "{e}");
        assert!(e.contains("line 12"), "{e}");
    }

    #[test]
    fn unknown_engine_field_is_rejected() {
        let e = err(&OK.replace("max_connections = 10", "max_conections = 10"));
        assert!(e.contains("max_conections"), "{e}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let e = err(&OK.replace("shards = 2", "shards = = 2"));
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn no_targets_is_valid_with_a_warning() {
        let c = parse("[engine]\nshards = 1\n").unwrap();
        assert!(c.targets.is_empty() && c.listeners.is_empty());
        assert_eq!(c.warnings(), vec![NO_TARGETS_WARNING.to_string()]);
        assert!(parse(OK).unwrap().warnings().is_empty());
    }

    #[test]
    fn too_many_shards() {
        let e = err(&OK.replace("shards = 2", "shards = 5000"));
        assert!(e.contains("t.toml:3: engine.shards: at most 256"), "{e}");
    }

    #[test]
    fn zero_caps() {
        let e = err(&OK.replace("max_connections = 10", "max_connections = 0"));
        assert!(e.contains("engine.max_connections"), "{e}");
        let e = err(&OK.replace(
            "max_connections = 10",
            "max_connections = 10\nmax_connections_per_shard = 0",
        ));
        assert!(e.contains("engine.max_connections_per_shard"), "{e}");
        let e = err(&OK.replace("shards = 2", "shards = 2\nlisten_backlog = 0"));
        assert!(e.contains("engine.listen_backlog"), "{e}");
    }

    #[test]
    fn buffer_size_bounds() {
        let e = err(&OK.replace("shards = 2", "shards = 2\nbuffer_size = 10"));
        assert!(e.contains("engine.buffer_size"), "{e}");
    }

    #[test]
    fn bad_duration() {
        let e = err(&OK.replace("\"5m\"", "\"5 parsecs\""));
        assert!(e.contains("idle_timeout"), "{e}");
        let e = err(&OK.replace("\"5m\"", "\"0s\""));
        assert!(e.contains("t.toml:12: target[0].idle_timeout"), "{e}");
        let e = err(&OK.replace("idle_timeout = \"5m\"", "connect_timeout = \"0s\""));
        assert!(e.contains("target[0].connect_timeout"), "{e}");
    }

    #[test]
    fn bad_name() {
        let e = err(&OK.replace("\"echo\"", "\"has space\""));
        assert!(e.contains("t.toml:7: target[0].name"), "{e}");
        let e = err(&OK.replace("\"echo\"", "\"\""));
        assert!(e.contains("target[0].name"), "{e}");
    }

    #[test]
    fn duplicate_names_and_listeners() {
        let second = OK.split("[[target]]").nth(1).unwrap();
        let dup = format!("{OK}\n[[target]]{}", second.replace("7000", "7100"));
        assert!(err(&dup).contains("duplicate target name"));
        let clash = format!("{OK}\n[[target]]{}", second.replace("\"echo\"", "\"two\""));
        let e = err(&clash);
        assert!(e.contains("target[1].listen"), "{e}");
        assert!(e.contains("already the listener of target \"echo\""), "{e}");
    }

    #[test]
    fn bad_listen() {
        let e = err(&OK.replace("\"127.0.0.1:7000\"", "\"localhost:7000\""));
        assert!(e.contains("t.toml:9: target[0].listen"), "{e}");
        assert!(parse(&OK.replace("127.0.0.1:7000", "127.0.0.1:0")).is_ok());
        let e = err(&OK.replace("[\"127.0.0.1:7000\"]", "[]"));
        assert!(e.contains("at least one listen"), "{e}");
        let e = err(&OK.replace(
            "[\"127.0.0.1:7000\"]",
            "[\"127.0.0.1:7000\", \"127.0.0.1:7000\"]",
        ));
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn bad_upstream() {
        for bad in ["127.0.0.1", ":5432", "db:notaport", "db:0"] {
            let e = err(&OK.replace("127.0.0.1:7001", bad));
            assert!(e.contains("target[0].upstream"), "{bad}: {e}");
        }
        assert!(parse(&OK.replace("127.0.0.1:7001", "db.internal:5432")).is_ok());
    }

    #[test]
    fn unknown_protocol() {
        let e = err(&OK.replace("\"tcp\"", "\"gopher\""));
        assert!(e.contains("gopher"), "{e}");
    }

    #[test]
    fn tcp_requires_explicit_unauthenticated() {
        let e = err(&OK.replace("unauthenticated = true\n", ""));
        assert!(e.contains("target[0].unauthenticated"), "{e}");
        assert!(e.contains("t.toml:8"), "{e}");
    }

    #[test]
    fn unauthenticated_only_on_loopback() {
        let e = err(&OK.replace("127.0.0.1:7000", "0.0.0.0:7000"));
        assert!(
            e.contains("only listen on loopback, not 0.0.0.0:7000"),
            "{e}"
        );
        assert!(parse(&OK.replace("127.0.0.1:7000", "[::1]:7000")).is_ok());
    }

    const PG: &str = r#"
[[identity.issuer]]
name = "dev"
issuer = "https://dev.example"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/jwks.json"

[[target]]
name = "payments"
protocol = "postgres"
listen = ["127.0.0.1:6432"]
upstream = "127.0.0.1:5432"
[target.credential]
user = "app"
password_file = "/etc/tollgate/payments.pw"
"#;

    #[test]
    fn postgres_target_defaults() {
        let c = parse(PG).unwrap();
        let t = &c.targets[0];
        assert_eq!(t.database, "payments");
        assert_eq!(t.upstream_database, "payments");
        assert!(
            t.allow_plaintext,
            "loopback listeners accept plaintext by default"
        );
        assert_eq!(
            t.credential,
            Some(Credential {
                user: "app".into(),
                source: SecretSource::File("/etc/tollgate/payments.pw".into())
            })
        );
        assert_eq!(c.listeners.len(), 1);
    }

    #[test]
    fn postgres_targets_share_a_listener_by_database() {
        let target = format!("[[target]]{}", PG.split("[[target]]").nth(1).unwrap());
        let two = format!(
            "{PG}{}",
            target.replace("\"payments\"\nprotocol", "\"ledger\"\nprotocol")
        );
        let c = parse(&two).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].targets, vec![0, 1]);
        let same_db = format!(
            "{PG}{}",
            target.replace(
                "name = \"payments\"",
                "name = \"other\"\ndatabase = \"payments\""
            )
        );
        let e = err(&same_db);
        assert!(e.contains("already routes database \"payments\""), "{e}");
    }

    #[test]
    fn postgres_needs_a_credential_with_one_source() {
        let e = err(&PG.replace(
            "[target.credential]\nuser = \"app\"\npassword_file = \"/etc/tollgate/payments.pw\"\n",
            "",
        ));
        assert!(e.contains("target[0].credential"), "{e}");
        let e = err(&PG.replace(
            "password_file = \"/etc/tollgate/payments.pw\"",
            "password_file = \"/x\"\npassword_env = \"PW\"",
        ));
        assert!(
            e.contains("exactly one of password_file or password_env"),
            "{e}"
        );
        let e = err(&PG.replace("user = \"app\"", "user = \"\""));
        assert!(e.contains("credential.user"), "{e}");
    }

    #[test]
    fn postgres_needs_an_issuer() {
        let target = format!("[[target]]{}", PG.split("[[target]]").nth(1).unwrap());
        let e = err(&target);
        assert!(e.contains("[[identity.issuer]]"), "{e}");
    }

    #[test]
    fn access_and_masking_are_validated() {
        let e = err(&format!("{PG}[target.access]\nsubjects = [\"\"]\n"));
        assert!(e.contains("target[0].access"), "{e}");
        let e = err(&format!("{PG}[target.access]\nsubject = [\"ci\"]\n"));
        assert!(e.contains("subject"), "{e}");
        let e = err(&format!(
            "{PG}[[target.masking.rules]]\nname = \"x\"\ncolumns = [\"ssn\"]\nstyle = \"hash\"\n"
        ));
        assert!(e.contains("target[0].masking"), "{e}");
    }

    #[test]
    fn postgres_off_loopback_needs_tls() {
        let e = err(&PG.replace("127.0.0.1:6432", "0.0.0.0:6432"));
        assert!(e.contains("target[0].tls"), "{e}");
        let ok = PG.replace("127.0.0.1:6432", "0.0.0.0:6432")
            + "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
        let c = parse(&ok).unwrap();
        assert!(!c.targets[0].allow_plaintext);
        let e = err(&PG.replace("upstream = ", "unauthenticated = true\nupstream = "));
        assert!(e.contains("always authenticate"), "{e}");
    }

    #[test]
    fn tcp_with_tls_requires_mtls_and_no_unauthenticated() {
        let tls = "[target.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n";
        let with_tls = format!("{}{tls}", OK.replace("unauthenticated = true\n", ""));
        let e = err(&with_tls);
        assert!(e.contains("[identity.mtls] ca_file"), "{e}");
        let mtls = "[identity.mtls]\nca_file = \"/ca.pem\"\n";
        let ok = format!(
            "{mtls}{}",
            with_tls.replace("127.0.0.1:7000", "0.0.0.0:7000")
        );
        let c = parse(&ok).unwrap();
        assert!(!c.targets[0].unauthenticated);
        let e = err(&format!("{mtls}{}{tls}", OK));
        assert!(e.contains("remove `unauthenticated`"), "{e}");
    }

    #[test]
    fn recorder_section() {
        let c = parse(OK).unwrap();
        assert_eq!(
            c.recorder.as_ref().unwrap().dir,
            Path::new(DEFAULT_RECORDING_DIR)
        );
        let c = parse(&format!("[recorder]\nenabled = false\n{OK}")).unwrap();
        assert!(c.recorder.is_none());
        let c = parse(&format!(
            "[recorder]\ndir = \"/r\"\ndurability = \"interval\"\ndurability_interval = \"50ms\"\nzstd_level = 3\n{OK}"
        ))
        .unwrap();
        let r = c.recorder.unwrap();
        assert_eq!(r.zstd_level, 3);
        assert_eq!(
            r.durability,
            tollgate_recorder::Durability::Interval(Duration::from_millis(50))
        );
        let e = err(&format!("[recorder]\ndurability = \"sometimes\"\n{OK}"));
        assert!(e.contains("t.toml:2: recorder.durability"), "{e}");
        let e = err(&format!("[recorder]\nblock_size = 0\n{OK}"));
        assert!(e.contains("recorder.block_size"), "{e}");
        let r = parse(&format!(
            "[recorder]\ndurability = \"before_forward\"\ncheckpoint_interval = \"2s\"\n{OK}"
        ))
        .unwrap()
        .recorder
        .unwrap();
        assert!(r.durability.waits_before_forward());
        assert_eq!(r.checkpoint_interval, Duration::from_secs(2));
        let e = err(&format!("[recorder]\ncheckpoint_interval = \"0s\"\n{OK}"));
        assert!(e.contains("recorder.checkpoint_interval"), "{e}");
    }

    #[test]
    fn policy_is_validated_in_place() {
        let c = parse(PG).unwrap();
        assert_eq!(
            c.targets[0].policy,
            crate::policy::rules::PolicyConfig::default()
        );
        let e = err(&format!(
            "{PG}[[target.policy.rules]]\nname = \"x\"\naction = \"block\"\nclasses = [\"no_such_class\"]\n"
        ));
        assert!(e.contains("target[0].policy"), "{e}");
        assert!(e.contains("no_such_class"), "{e}");
    }

    #[test]
    fn admin_section_off_loopback_needs_tls() {
        let e = err(&format!("[admin]\nlisten = \"0.0.0.0:9090\"\n{OK}"));
        assert!(e.contains("admin."), "{e}");
    }

    #[test]
    fn cpu_list_parsing() {
        assert_eq!(parse_cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("x,2"), vec![2]);
    }
}
