//! `[target.ssh]` keys for terminal sessions and forwarding:
//!
//! - `record_pty_bytes`: bytes recorded per pty channel and direction
//!   (default 1 GiB: in practice the whole terminal session, which is what
//!   an auditor replays; `record_channel_bytes` stays the cap of channels
//!   without a pty: exec output, sftp, forwards).
//! - `typed_lines`: `judge` (default: lines typed into a pty shell are
//!   judged by the exec rules at Enter; a line edited with keys tollgate
//!   does not follow is forwarded and recorded as unjudged), `strict` (such
//!   a line is refused), `off` (typed lines are only recorded as bytes).
//! - `allow_forwarding = ["local"]`: `ssh -L`/`-W`/`-D` (all arrive as
//!   `direct-tcpip` channels; `"dynamic"` is accepted as the same thing),
//!   relayed through the upstream; `"remote"`: `ssh -R` (the host listens,
//!   as its sshd permits, and its connections are relayed to the caller).
//!   Agent and X11 stay refused. `permit_open = ["db:5432", "web:*"]`
//!   limits local destinations (absent: any).

use serde::Deserialize;

/// What happens to lines typed into a pty shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypedLines {
    #[default]
    Judge,
    Strict,
    Off,
}

/// Terminal sessions, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTerminal {
    pub record_pty_bytes: usize,
    pub typed_lines: TypedLines,
}

impl Default for SshTerminal {
    fn default() -> Self {
        SshTerminal {
            record_pty_bytes: DEFAULT_RECORD_PTY,
            typed_lines: TypedLines::Judge,
        }
    }
}

/// One `permit_open` entry: a host and a port (`None`: any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitOpen {
    pub host: String,
    pub port: Option<u32>,
}

/// Forwarding, validated. Default: everything refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshForwarding {
    /// `direct-tcpip` channels (`ssh -L`, `-W`, `-D`).
    pub local: bool,
    /// `tcpip-forward` requests (`ssh -R`).
    pub remote: bool,
    /// Empty: any destination.
    pub permit_open: Vec<PermitOpen>,
}

impl SshForwarding {
    /// Whether a `direct-tcpip` channel to `host:port` may open.
    pub fn permits(&self, host: &str, port: u32) -> bool {
        self.local
            && (self.permit_open.is_empty()
                || self
                    .permit_open
                    .iter()
                    .any(|p| p.host.eq_ignore_ascii_case(host) && p.port.is_none_or(|q| q == port)))
    }
}

const DEFAULT_RECORD_PTY: usize = 1 << 30;
/// Most bytes a recording may keep per pty channel and direction.
const MAX_RECORD_PTY: u64 = 1 << 40;

/// The raw keys, as `[target.ssh]` has them.
pub(super) struct RawSession {
    pub record_pty_bytes: Option<u64>,
    pub typed_lines: Option<TypedLines>,
    pub allow_forwarding: Vec<String>,
    pub permit_open: Option<Vec<String>>,
}

pub(super) fn validate(
    raw: RawSession,
) -> Result<(SshTerminal, SshForwarding), (&'static str, String)> {
    let pty = raw.record_pty_bytes.unwrap_or(DEFAULT_RECORD_PTY as u64);
    if pty > MAX_RECORD_PTY {
        return Err(("ssh.record_pty_bytes", format!("at most {MAX_RECORD_PTY}")));
    }
    let record_pty_bytes = usize::try_from(pty).map_err(|_| {
        (
            "ssh.record_pty_bytes",
            "too large for this machine".to_string(),
        )
    })?;
    let (mut local, mut remote) = (false, false);
    for kind in &raw.allow_forwarding {
        match kind.as_str() {
            "local" | "dynamic" => local = true,
            "remote" => remote = true,
            other => {
                return Err((
                    "ssh.allow_forwarding",
                    format!(
                        "{other:?}: \"local\" (ssh -L/-W, and -D, which arrives the same way) \
                         or \"remote\" (ssh -R); agent and X11 forwarding are always refused"
                    ),
                ));
            }
        }
    }
    let mut permit_open = Vec::new();
    if let Some(list) = raw.permit_open {
        if !local {
            return Err((
                "ssh.permit_open",
                "permit_open needs allow_forwarding = [\"local\"]".into(),
            ));
        }
        if list.is_empty() {
            return Err((
                "ssh.permit_open",
                "an empty list permits nothing: leave allow_forwarding out instead".into(),
            ));
        }
        for e in list {
            let bad = || {
                (
                    "ssh.permit_open",
                    format!("{e:?} is not HOST:PORT or HOST:*"),
                )
            };
            let (host, port) = e.rsplit_once(':').ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.len() > 255 {
                return Err(bad());
            }
            let port = match port {
                "*" => None,
                p => Some(p.parse::<u16>().map_err(|_| bad())?.into()),
            };
            permit_open.push(PermitOpen {
                host: host.to_string(),
                port,
            });
        }
    }
    Ok((
        SshTerminal {
            record_pty_bytes,
            typed_lines: raw.typed_lines.unwrap_or_default(),
        },
        SshForwarding {
            local,
            remote,
            permit_open,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(fwd: &[&str], permit: Option<&[&str]>) -> RawSession {
        RawSession {
            record_pty_bytes: None,
            typed_lines: None,
            allow_forwarding: fwd.iter().map(|s| s.to_string()).collect(),
            permit_open: permit.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn forwarding_is_refused_unless_allowed_and_permit_open_narrows_it() {
        let (t, f) = validate(raw(&[], None)).unwrap();
        assert_eq!(t, SshTerminal::default());
        assert!(!f.permits("db", 5432));
        assert!(!f.remote);
        let (_, f) = validate(raw(&["local"], None)).unwrap();
        assert!(f.permits("anything", 1));
        assert!(!f.remote);
        let (_, f) = validate(raw(&["remote"], None)).unwrap();
        assert!(f.remote && !f.permits("anything", 1));
        let (_, f) = validate(raw(&["dynamic"], Some(&["DB:5432", "web:*", "[::1]:22"]))).unwrap();
        assert!(f.permits("db", 5432));
        assert!(!f.permits("db", 5433));
        assert!(f.permits("web", 8080));
        assert!(f.permits("::1", 22));
        assert!(!f.permits("other", 5432));
        for bad in [
            raw(&["x11"], None),
            raw(&[], Some(&["db:1"])),
            raw(&["local"], Some(&[])),
            raw(&["local"], Some(&["db"])),
            raw(&["local"], Some(&["db:99999"])),
            raw(&["local"], Some(&[":22"])),
        ] {
            assert!(validate(bad).is_err());
        }
        let mut big = raw(&[], None);
        big.record_pty_bytes = Some(MAX_RECORD_PTY + 1);
        assert_eq!(validate(big).unwrap_err().0, "ssh.record_pty_bytes");
    }
}
