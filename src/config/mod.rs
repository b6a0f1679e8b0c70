//! Configuration: one TOML file, parsed strictly, validated once into a typed
//! [`Config`]. `tollgate check` and `tollgate run` go through the same
//! [`Config::load`], so a file that passes `check` is a file `run` accepts.

//!
//! Files: `raw.rs` (the file as serde reads it), `validate.rs` (engine,
//! recorder, line numbers), `target.rs` (the keys every target shares),
//! `protocols.rs` (the protocols and what each adds: `postgres.rs` for
//! `[target.postgres]`, `mysql.rs` for `[target.mysql]`, `http.rs`,
//! `ssh.rs`, `tcp.rs`),
//! `cpus.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod admin;
pub mod cluster;
mod cpus;
pub mod http;
mod http_rules;
pub mod mysql;
pub mod pool;
pub mod postgres;
mod protocols;
mod raw;
pub mod ssh;
pub mod ssh_session;
pub mod ssh_sftp;
mod target;
mod tcp;
mod validate;

pub use cpus::{allowed_cpus, parse_cpu_list};
pub use pool::{PoolConfig, PoolMode};
pub use postgres::PostgresTarget;
pub use protocols::Protocol;

use crate::identity::{AccessConfig, IdentityConfig};
use crate::policy::mask::MaskingConfig;
use raw::RawConfig;
use validate::{Seg, Validator};

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
    /// `[target.postgres]`: set on postgres targets, and only on them.
    pub postgres: Option<PostgresTarget>,
    /// `[target.mysql]`: set on mysql targets, and only on them.
    pub mysql: Option<mysql::MysqlTarget>,
    /// `[target.http]`: set on http targets, and only on them.
    pub http: Option<http::HttpTarget>,
    /// `[target.ssh]`: set on ssh targets, and only on them.
    pub ssh: Option<ssh::SshTarget>,
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
    /// The gateway's client certificate towards the upstream (mTLS).
    pub client_cert: Option<TlsFiles>,
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
    /// `[recorder.upload]`: sealed segments to object storage.
    pub upload: Option<crate::objstore::UploadConfig>,
    pub admin: admin::AdminConfig,
    /// Message sizes, memory budgets, frame timeout (`[limits]`).
    pub limits: crate::limits::LimitsConfig,
    /// `[cluster]`: control state shared with a fleet; `None`: one host.
    pub cluster: Option<cluster::ClusterConfig>,
    pub targets: Vec<TargetConfig>,
    pub listeners: Vec<ListenerSpec>,
    /// Keys read from a deprecated place, one line each naming the new
    /// place (`tollgate check` prints them, `run` logs them as WARN).
    pub deprecations: Vec<String>,
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
pub(crate) const MAX_BUFFER_SIZE: usize = 16 * 1024 * 1024;
pub(crate) const MIN_BUFFER_SIZE: usize = 1024;

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
        let (recorder, upload) = v.recorder(raw.recorder)?;
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
        if let Some(c) = &raw.cluster
            && let Err(e) = c.validate()
        {
            return Err(v.invalid(
                &[Seg::Key("cluster"), Seg::Key(e.field)],
                &format!("cluster.{}", e.field),
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
        let mut deprecations = Vec::new();
        for (i, t) in raw.target.into_iter().enumerate() {
            let target = v.target(i, t, &mut deprecations)?;
            v.fits_beside(i, &target, &targets)?;
            protocols::with_identity(&v, i, &target, &identity)?;
            targets.push(target);
        }
        let listeners = listeners(&targets);
        Ok(Config {
            path: path.to_path_buf(),
            engine,
            identity,
            recorder,
            upload,
            admin,
            limits,
            cluster: raw.cluster,
            targets,
            listeners,
            deprecations,
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
        if let Some(c) = &self.cluster {
            let transport = c
                .validate()
                .map_or_else(|e| e.to_string(), |t| t.to_string());
            s.push_str(&format!(
                "  cluster: host {} (control database: {transport})\n",
                c.host_id()
            ));
        }
        s.push_str(&format!(
            "  rule presets: version {}\n",
            tollgate_codecs::sql::PRESET_VERSION
        ));
        s
    }

    /// Advice that does not make the configuration invalid, one line each,
    /// printed by `tollgate check` (today: keys in a deprecated place, and
    /// policies that block part of a rule preset by name).
    pub fn warnings(&self) -> Vec<String> {
        let none = self
            .targets
            .is_empty()
            .then(|| NO_TARGETS_WARNING.to_string());
        none.into_iter()
            .chain(self.deprecations.iter().cloned())
            .chain(self.targets.iter().flat_map(|t| {
                crate::policy::rules::preset_warnings(&t.policy)
                    .into_iter()
                    .map(move |w| format!("target {:?}: {w}", t.name))
            }))
            .collect()
    }
}

/// The listen addresses, each with the targets it serves (in target order).
fn listeners(targets: &[TargetConfig]) -> Vec<ListenerSpec> {
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
    listeners
}

#[cfg(test)]
mod tests;
