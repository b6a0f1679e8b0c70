//! The configuration file as written: serde's view, before validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{LogFormat, Protocol, UpstreamTlsMode, admin};
use crate::identity::{AccessConfig, IdentityConfig};
use crate::policy::mask::MaskingConfig;

/// `[engine]`: the shards and the limits that protect the host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub(super) shards: Option<usize>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_connections_per_shard: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub(super) shutdown_grace: Option<Duration>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) listen_backlog: Option<u32>,
    pub(super) buffer_size: Option<usize>,
}

/// `[[target]]`: one upstream and how callers reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) name: String,
    pub(super) protocol: Protocol,
    pub(super) listen: Vec<String>,
    pub(super) upstream: String,
    #[serde(default)]
    pub(super) unauthenticated: bool,
    #[serde(default, with = "humantime_serde")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) idle_timeout: Option<Duration>,
    /// Deprecated place of `[target.postgres] database` (still read, with a warning).
    pub(super) database: Option<String>,
    /// Deprecated place of `[target.postgres] upstream_database`.
    pub(super) upstream_database: Option<String>,
    /// `[target.postgres]`: checked by `postgres.rs`.
    pub(super) postgres: Option<super::postgres::RawPostgres>,
    /// `[target.mysql]`: checked by `mysql.rs`.
    pub(super) mysql: Option<super::mysql::RawMysql>,
    /// `[target.http]`: checked by `http.rs`.
    pub(super) http: Option<super::http::RawHttp>,
    /// `[target.ssh]`: checked by `ssh.rs`.
    pub(super) ssh: Option<super::ssh::RawSsh>,
    /// The credential only the gateway holds.
    pub(super) credential: Option<RawCredential>,
    /// Client-facing TLS.
    pub(super) tls: Option<RawTls>,
    /// Accept plaintext clients; default: only when every listen address is loopback.
    pub(super) allow_plaintext: Option<bool>,
    pub(super) upstream_tls: Option<RawUpstreamTls>,
    #[serde(default, with = "humantime_serde")]
    pub(super) auth_timeout: Option<Duration>,
    /// Who may use this target (default: nobody).
    pub(super) access: Option<AccessConfig>,
    /// Result masking.
    pub(super) masking: Option<MaskingConfig>,
    /// Command rules.
    pub(super) policy: Option<crate::policy::rules::PolicyConfig>,
    /// Who may approve held statements and access requests here (default:
    /// `[admin] reviewer_groups`).
    #[serde(default)]
    pub(super) reviewer_groups: Vec<String>,
    /// Every connection waits for a reviewer unless an access window granted
    /// earlier covers the caller (just-in-time access).
    #[serde(default)]
    pub(super) require_approval_to_connect: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredential {
    pub(super) user: String,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert_file: PathBuf,
    pub(super) key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstreamTls {
    pub(super) mode: UpstreamTlsMode,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) server_name: Option<String>,
    /// A client certificate chain and key presented to the upstream.
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
}

/// `[recorder]`: the session log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecorder {
    pub(super) enabled: Option<bool>,
    pub(super) dir: Option<PathBuf>,
    pub(super) zstd_level: Option<i32>,
    pub(super) durability: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) durability_interval: Option<Duration>,
    pub(super) block_size: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub(super) block_max_delay: Option<Duration>,
    pub(super) queue_capacity: Option<usize>,
    pub(super) queue_bytes: Option<usize>,
    pub(super) segment_max_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub(super) segment_max_age: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) checkpoint_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) retention_max_age: Option<Duration>,
    pub(super) retention_max_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub(super) retention_check_interval: Option<Duration>,
    pub(super) signing_key: Option<PathBuf>,
    /// `[recorder.upload]`: sealed segments to object storage.
    pub(super) upload: Option<crate::objstore::RawUpload>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) engine: Option<RawEngine>,
    pub(super) identity: Option<IdentityConfig>,
    pub(super) recorder: Option<RawRecorder>,
    pub(super) admin: Option<admin::AdminConfig>,
    pub(super) limits: Option<crate::limits::LimitsConfig>,
    pub(super) cluster: Option<super::cluster::ClusterConfig>,
    #[serde(default)]
    pub(super) target: Vec<RawTarget>,
}
