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
//!   `"agent"`: the caller's agent is offered to the host (`ssh -A`), its
//!   messages decoded and recorded (`ssh/agent_msg.rs`); `"x11"`: X11
//!   forwarding (`ssh -X`/`-Y`) with a cookie of tollgate's own upstream
//!   (`ssh/x11_auth.rs`); `"streamlocal"`: unix-socket forwarding both ways
//!   (`ssh -L /a.sock:/b.sock`, `ssh -R /b.sock:/a.sock`).
//!   `permit_open = ["db:5432", "web:*"]` limits local destinations,
//!   `permit_streamlocal = ["/run/app.sock", "/run/app/*"]` the host's
//!   socket paths of either direction (absent: any).
//! - `secret_prompts = ["password", ...]`: a typed line is a secret, not a
//!   command, when the host's output just before its Enter is a prompt with
//!   one of these words ending in `:` that did not echo what was typed
//!   (`ssh/prompt.rs`).

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
    /// Words of a secret prompt, lowercase (`ssh/prompt.rs`); empty: off.
    pub secret_prompts: Vec<String>,
}

impl Default for SshTerminal {
    fn default() -> Self {
        SshTerminal {
            record_pty_bytes: DEFAULT_RECORD_PTY,
            typed_lines: TypedLines::Judge,
            secret_prompts: default_secret_prompts(),
        }
    }
}

/// The prompts of sudo, su, passwd, ssh-keygen/ssh-add, git and 2FA
/// modules.
fn default_secret_prompts() -> Vec<String> {
    ["password", "passphrase", "passcode", "verification code"]
        .iter()
        .map(|s| s.to_string())
        .collect()
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
    /// `auth-agent-req@openssh.com` (`ssh -A`).
    pub agent: bool,
    /// `x11-req` (`ssh -X`, `-Y`).
    pub x11: bool,
    /// `direct-streamlocal@openssh.com` and `streamlocal-forward@openssh.com`.
    pub streamlocal: bool,
    /// Empty: any destination.
    pub permit_open: Vec<PermitOpen>,
    /// Socket paths on the host: exact, or a prefix ending in `/*`. Empty:
    /// any.
    pub permit_streamlocal: Vec<String>,
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

    /// Whether a unix socket path on the host may be connected to or
    /// listened on. A relative path, or one with `.`/`..` parts, is never
    /// permitted by a list (it could name anything).
    pub fn permits_socket(&self, path: &str) -> bool {
        if !self.streamlocal {
            return false;
        }
        if self.permit_streamlocal.is_empty() {
            return true;
        }
        let plain = path.starts_with('/')
            && path
                .split('/')
                .skip(1)
                .all(|part| !part.is_empty() && part != "." && part != "..");
        plain
            && self
                .permit_streamlocal
                .iter()
                .any(|p| match p.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix) && !path[prefix.len()..].contains('/'),
                    None => p == path,
                })
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
    pub permit_streamlocal: Option<Vec<String>>,
    pub secret_prompts: Option<Vec<String>>,
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
    let mut f = SshForwarding::default();
    for kind in &raw.allow_forwarding {
        match kind.as_str() {
            "local" | "dynamic" => f.local = true,
            "remote" => f.remote = true,
            "agent" => f.agent = true,
            "x11" => f.x11 = true,
            "streamlocal" => f.streamlocal = true,
            other => {
                return Err((
                    "ssh.allow_forwarding",
                    format!(
                        "{other:?}: \"local\" (ssh -L/-W, and -D, which arrives the same way), \
                         \"remote\" (ssh -R), \"agent\" (ssh -A), \"x11\" (ssh -X/-Y) \
                         or \"streamlocal\" (unix sockets, ssh -L/-R with paths)"
                    ),
                ));
            }
        }
    }
    let local = f.local;
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
    f.permit_open = permit_open;
    f.permit_streamlocal = socket_paths(raw.permit_streamlocal, f.streamlocal)?;
    Ok((
        SshTerminal {
            record_pty_bytes,
            typed_lines: raw.typed_lines.unwrap_or_default(),
            secret_prompts: secret_prompts(raw.secret_prompts)?,
        },
        f,
    ))
}

/// `permit_streamlocal`: absolute paths, each exact or a directory's
/// sockets (`/run/app/*`).
fn socket_paths(
    list: Option<Vec<String>>,
    allowed: bool,
) -> Result<Vec<String>, (&'static str, String)> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let key = "ssh.permit_streamlocal";
    if !allowed {
        return Err((
            key,
            "permit_streamlocal needs allow_forwarding = [\"streamlocal\"]".into(),
        ));
    }
    if list.is_empty() {
        return Err((
            key,
            "an empty list permits nothing: leave \"streamlocal\" out instead".into(),
        ));
    }
    for p in &list {
        let body = p.strip_suffix("/*").unwrap_or(p);
        let plain = body.starts_with('/')
            && body.len() <= 1024
            && body
                .split('/')
                .skip(1)
                .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('*'));
        if !plain {
            return Err((
                key,
                format!("{p:?}: an absolute path without ./.. parts, or one ending in /*"),
            ));
        }
    }
    Ok(list)
}

/// `secret_prompts`: up to 32 words of 1-64 bytes, matched lowercase.
fn secret_prompts(list: Option<Vec<String>>) -> Result<Vec<String>, (&'static str, String)> {
    let Some(list) = list else {
        return Ok(default_secret_prompts());
    };
    if list.len() > 32 {
        return Err(("ssh.secret_prompts", "at most 32 prompts".into()));
    }
    list.into_iter()
        .map(|w| {
            let w = w.trim().to_lowercase();
            if w.is_empty() || w.len() > 64 || w.contains(['\n', '\r']) {
                Err((
                    "ssh.secret_prompts",
                    format!("{w:?}: a word or phrase of 1-64 bytes on one line"),
                ))
            } else {
                Ok(w)
            }
        })
        .collect()
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
            permit_streamlocal: None,
            secret_prompts: None,
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
        let (_, f) = validate(raw(&["agent", "x11"], None)).unwrap();
        assert!(f.agent && f.x11 && !f.streamlocal && !f.local);
        for bad in [
            raw(&["x11-all"], None),
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

    #[test]
    fn streamlocal_paths_are_exact_or_one_directory_and_never_dotted() {
        let (_, f) = validate(raw(&[], None)).unwrap();
        assert!(!f.permits_socket("/run/a.sock"));
        let (_, f) = validate(raw(&["streamlocal"], None)).unwrap();
        assert!(f.permits_socket("/run/a.sock") && f.permits_socket("rel.sock"));
        let mut r = raw(&["streamlocal"], None);
        r.permit_streamlocal = Some(vec!["/run/app.sock".into(), "/run/app/*".into()]);
        let (_, f) = validate(r).unwrap();
        assert!(f.permits_socket("/run/app.sock"));
        assert!(f.permits_socket("/run/app/x.sock"));
        assert!(!f.permits_socket("/run/app/sub/x.sock"));
        assert!(!f.permits_socket("/run/app/../../etc/x.sock"));
        assert!(!f.permits_socket("/run/app//x.sock"));
        assert!(!f.permits_socket("/run/other.sock"));
        assert!(!f.permits_socket("app.sock"));
        for bad in [
            vec![],
            vec!["rel.sock".to_string()],
            vec!["/run/../x".into()],
            vec!["/run/a*b".into()],
        ] {
            let mut r = raw(&["streamlocal"], None);
            r.permit_streamlocal = Some(bad);
            assert_eq!(validate(r).unwrap_err().0, "ssh.permit_streamlocal");
        }
        let mut r = raw(&[], None);
        r.permit_streamlocal = Some(vec!["/run/a.sock".into()]);
        assert!(validate(r).is_err());
    }

    #[test]
    fn secret_prompts_default_and_are_lowercased() {
        let (t, _) = validate(raw(&[], None)).unwrap();
        assert!(t.secret_prompts.contains(&"password".to_string()));
        let mut r = raw(&[], None);
        r.secret_prompts = Some(vec!["Kennwort".into()]);
        assert_eq!(validate(r).unwrap().0.secret_prompts, vec!["kennwort"]);
        let mut r = raw(&[], None);
        r.secret_prompts = Some(vec![" ".into()]);
        assert!(validate(r).is_err());
    }
}
