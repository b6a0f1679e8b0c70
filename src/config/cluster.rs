//! `[cluster]`: a fleet of gateways sharing control state (approvals,
//! revocations, the live-session registry, kill requests, the admin audit)
//! in one PostgreSQL database. Absent: one host, local files, as before.
//!
//! ```toml
//! [cluster]
//! database_url = "postgres://tollgate@db.internal:5432/tollgate_control?sslmode=require"
//! password_file = "/etc/tollgate/control-db.pw"
//! ca_file = "/etc/tollgate/control-db-ca.pem"   # default: the web PKI roots
//! host_id = "gw-1"                               # default: the host name
//! heartbeat = "2s"
//! host_timeout = "10s"
//! reconcile = "5s"
//! ```
//!
//! Transport rule (decided, and what `tollgate check` prints): off
//! loopback the connection must be TLS with the server's certificate
//! verified (`sslmode=require`; the connector always verifies the chain and
//! the host name); plaintext only to a loopback address or a unix socket.
//! A password in the URL is refused: it would sit in a world-readable
//! config and in every error that quotes the URL.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use tokio_postgres::config::{Host, SslMode};

/// The `[cluster]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A libpq-style URL or key=value string, without a password.
    pub database_url: String,
    /// The control database password (first line), read at each connect.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA certificates the control database's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Unique per host; default: the host name.
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A host whose heartbeat is older than this is dead: its sessions are
    /// left out of the fleet list and swept.
    #[serde(default = "default_host_timeout", with = "humantime_serde")]
    pub host_timeout: Duration,
    /// How often the full revocation list (and pending decisions, kill
    /// requests) is re-read, whatever notifications said.
    #[serde(default = "default_reconcile", with = "humantime_serde")]
    pub reconcile: Duration,
    /// The longest one control-database query may take before the
    /// connection is declared broken and made again.
    #[serde(default = "default_query_timeout", with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Create or migrate the schema at start (an advisory lock keeps two
    /// starting hosts from racing). Off: `tollgate cluster migrate` first.
    #[serde(default = "default_true")]
    pub migrate_on_start: bool,
}

fn default_heartbeat() -> Duration {
    Duration::from_secs(2)
}
fn default_host_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_reconcile() -> Duration {
    Duration::from_secs(5)
}
fn default_query_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_true() -> bool {
    true
}

/// The longest host id (it becomes part of a NOTIFY channel name, at most 63 bytes).
pub const MAX_HOST_ID: usize = 48;

/// A field of `[cluster]` that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster.{field}: {message}")]
pub struct ClusterConfigError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> ClusterConfigError {
    ClusterConfigError {
        field,
        message: message.into(),
    }
}

/// How the agent reaches the control database (what `check` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS, server certificate and host name verified.
    VerifiedTls,
    /// Plaintext to a loopback address.
    LoopbackPlaintext,
    /// A unix socket.
    UnixSocket,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::VerifiedTls => "TLS, certificate and host name verified",
            Transport::LoopbackPlaintext => "plaintext on loopback",
            Transport::UnixSocket => "unix socket",
        })
    }
}

/// Whether `id` may name a host: 1..=48 of `[A-Za-z0-9._-]`.
pub fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_HOST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// This machine's host name, cut to a valid host id.
pub fn default_host_id() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let id: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_HOST_ID)
        .collect();
    if id.is_empty() { "tollgate".into() } else { id }
}

impl ClusterConfig {
    /// The host id in force (configured, else the host name).
    pub fn host_id(&self) -> String {
        self.host_id.clone().unwrap_or_else(default_host_id)
    }

    /// The parsed URL (validated by [`ClusterConfig::validate`]).
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, ClusterConfigError> {
        tokio_postgres::Config::from_str(&self.database_url).map_err(|e| {
            // The message of a parse error never quotes the URL.
            err("database_url", format!("not a PostgreSQL URL: {e}"))
        })
    }

    /// Check the table; returns the transport in use.
    pub fn validate(&self) -> Result<Transport, ClusterConfigError> {
        let pg = self.pg_config()?;
        if pg.get_password().is_some() {
            return Err(err(
                "database_url",
                "holds a password: put it in password_file instead",
            ));
        }
        if pg.get_user().is_none() {
            return Err(err("database_url", "names no user"));
        }
        let hosts = pg.get_hosts();
        if hosts.is_empty() {
            return Err(err("database_url", "names no host"));
        }
        let mut transport = Transport::UnixSocket;
        for h in hosts {
            match h {
                Host::Unix(_) => {}
                Host::Tcp(name) => {
                    let loopback = name == "localhost"
                        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                    if pg.get_ssl_mode() == SslMode::Require {
                        transport = Transport::VerifiedTls;
                    } else if loopback {
                        if transport != Transport::VerifiedTls {
                            transport = Transport::LoopbackPlaintext;
                        }
                    } else {
                        return Err(err(
                            "database_url",
                            format!(
                                "host {name:?} is not loopback: add sslmode=require (TLS with the \
                                 certificate verified against ca_file or the web PKI roots)"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(id) = &self.host_id
            && !valid_host_id(id)
        {
            return Err(err(
                "host_id",
                format!("must be 1..={MAX_HOST_ID} of A-Z a-z 0-9 . _ -"),
            ));
        }
        let secs = |d: Duration| d.as_secs_f64();
        if self.heartbeat < Duration::from_millis(100) || self.heartbeat > Duration::from_secs(60) {
            return Err(err("heartbeat", "must be between 100ms and 60s"));
        }
        if self.host_timeout < self.heartbeat * 2 {
            return Err(err(
                "host_timeout",
                format!(
                    "must be at least twice the heartbeat ({}s)",
                    secs(self.heartbeat)
                ),
            ));
        }
        if self.reconcile < Duration::from_millis(100) || self.reconcile > Duration::from_secs(300)
        {
            return Err(err("reconcile", "must be between 100ms and 5m"));
        }
        if self.query_timeout < Duration::from_millis(100)
            || self.query_timeout > Duration::from_secs(60)
        {
            return Err(err("query_timeout", "must be between 100ms and 60s"));
        }
        Ok(transport)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> ClusterConfig {
        toml::from_str(&format!("database_url = {url:?}")).unwrap()
    }

    #[test]
    fn plaintext_only_on_loopback_or_a_socket_and_never_a_password_in_the_url() {
        assert_eq!(
            cfg("postgres://tg@127.0.0.1:5432/c").validate(),
            Ok(Transport::LoopbackPlaintext)
        );
        assert_eq!(
            cfg("host=/run/postgresql user=tg dbname=c").validate(),
            Ok(Transport::UnixSocket)
        );
        assert_eq!(
            cfg("postgres://tg@db.internal/c?sslmode=require").validate(),
            Ok(Transport::VerifiedTls)
        );
        let e = cfg("postgres://tg@db.internal/c").validate().unwrap_err();
        assert!(e.message.contains("sslmode=require"), "{e}");
        let e = cfg("postgres://tg@db.internal/c?sslmode=prefer")
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "database_url");
        let e = cfg("postgres://tg:hunter2@127.0.0.1/c")
            .validate()
            .unwrap_err();
        assert!(e.message.contains("password_file"), "{e}");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn host_ids_and_intervals_are_checked() {
        let mut c = cfg("postgres://tg@127.0.0.1/c");
        c.host_id = Some("gw 1".into());
        assert_eq!(c.validate().unwrap_err().field, "host_id");
        c.host_id = Some("gw-1.eu".into());
        assert!(c.validate().is_ok());
        c.host_timeout = Duration::from_secs(3);
        assert_eq!(c.validate().unwrap_err().field, "host_timeout");
        assert!(valid_host_id(&default_host_id()));
    }
}
