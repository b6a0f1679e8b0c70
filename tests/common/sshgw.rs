//! OpenSSH `sshd` as an SSH upstream (started as root in a temp dir on a
//! free port, root's key only, StrictModes and PAM off, X11 forwarding on
//! with its own Xauthority file) and a tollgate with
//! an `ssh` target in front of it logging in with a key the test generated,
//! for the SSH gateway tests. Callers: OpenSSH `ssh`/`scp`/`sftp` through
//! `sshpass` (the token is the password) and Paramiko.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::pggw::{AUD, ISS};
use super::{Gateway, free_port, tollgate_bin};

/// An ed25519 key pair made by `ssh-keygen`: (private key file, public line).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (tests/deps.sh installs openssh-client)");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

/// `algorithm base64` of a public key line (without the comment).
pub fn pin(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct Sshd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The host key's public line, to pin.
    pub host_public: String,
    /// The key tollgate logs in with (the stored credential).
    pub client_key: PathBuf,
    pub log: PathBuf,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let (host_key, host_public) = keygen(d, "host_ed25519");
        let (client_key, client_public) = keygen(d, "tollgate_ed25519");
        std::fs::write(d.join("authorized_keys"), format!("{client_public}\n")).unwrap();
        let port = free_port();
        let conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\nLogLevel VERBOSE\n\
             X11Forwarding yes\nX11UseLocalhost yes\nXAuthLocation /usr/bin/xauth\n\
             SetEnv XAUTHORITY={d}/Xauthority\n",
            hk = host_key.display(),
            d = d.display(),
        );
        let conf_path = d.join("sshd_config");
        std::fs::write(&conf_path, conf).unwrap();
        let log = d.join("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("sshd (tests/deps.sh installs openssh-server)");
        crate::assert_eventually!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Duration::from_secs(10),
            "sshd did not listen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Sshd {
            child,
            dir,
            port,
            host_public,
            client_key,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the test gateway is set up beyond the defaults.
#[derive(Default)]
pub struct Options<'a> {
    /// Extra lines of `[target.ssh]`.
    pub ssh: &'a str,
    /// Pin this key instead of sshd's own.
    pub pin: Option<&'a str>,
    /// Trust sshd's key through a known_hosts file instead of a pin;
    /// `true`: its host names hashed (`ssh-keygen -H`).
    pub known_hosts: Option<bool>,
    /// Extra `[identity.*]` tables (`[identity.ssh]`).
    pub identity: &'a str,
    /// A second ssh target on the same listener, to the same sshd: its
    /// name and the extra lines of its `[target.ssh]`.
    pub second_target: Option<(&'a str, &'a str)>,
}

pub struct SshGateway {
    pub gw: Gateway,
    pub sshd: Sshd,
    pub port: u16,
    /// The token signing key.
    pub key: PathBuf,
}

/// The rule every test gateway has.
pub const RM_MESSAGE: &str = "rm -rf is not allowed through tollgate";

impl SshGateway {
    pub fn start() -> SshGateway {
        SshGateway::with(Options::default())
    }

    pub fn with(o: Options<'_>) -> SshGateway {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        let (gw_host_key, _) = keygen(dir.path(), "gw_host_ed25519");
        let keys = dir.path().join("keys");
        let out = Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let trust = match o.known_hosts {
            None => format!(
                "upstream_host_key = \"{}\"",
                pin(o.pin.unwrap_or(&sshd.host_public))
            ),
            Some(hashed) => {
                let file = dir.path().join("known_hosts");
                let line = format!("[127.0.0.1]:{} {}\n", sshd.port, pin(&sshd.host_public));
                std::fs::write(&file, line).unwrap();
                if hashed {
                    let out = Command::new("ssh-keygen")
                        .arg("-H")
                        .arg("-f")
                        .arg(&file)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{out:?}");
                    let text = std::fs::read_to_string(&file).unwrap();
                    assert!(text.starts_with("|1|"), "{text}");
                }
                format!("upstream_known_hosts = \"{}\"", file.display())
            }
        };
        let cfg = format!(
            r#"
[engine]
shards = 1

[[identity.issuer]]
name = "test"
issuer = "{ISS}"
audience = ["{AUD}"]
jwks_file = "{jwks}"
{identity}
[[target]]
name = "web"
protocol = "ssh"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{upport}"
[target.access]
groups = ["ci"]
[target.ssh]
host_key = "{host_key}"
user = "root"
private_key_file = "{client_key}"
{trust}
{ssh}
[[target.ssh.rules]]
name = "no-rm-rf"
command = "rm -rf *"
action = "block"
message = "{RM_MESSAGE}"
"#,
            jwks = keys.join("tollgate-dev-jwks.json").display(),
            upport = sshd.port,
            host_key = gw_host_key.display(),
            client_key = sshd.client_key.display(),
            ssh = o.ssh,
            identity = o.identity,
        );
        let cfg = match o.second_target {
            None => cfg,
            Some((name, ssh)) => format!(
                r#"{cfg}
[[target]]
name = "{name}"
protocol = "ssh"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{upport}"
[target.access]
groups = ["ci"]
[target.ssh]
host_key = "{host_key}"
user = "root"
private_key_file = "{client_key}"
{trust}
{ssh}
"#,
                upport = sshd.port,
                host_key = gw_host_key.display(),
                client_key = sshd.client_key.display(),
            ),
        };
        let cfg_path = dir.path().join("tollgate.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let mut gw = Gateway::spawn_logging(dir, cfg_path, "json");
        gw.wait_ready();
        let port = gw.port("web");
        SshGateway {
            gw,
            sshd,
            port,
            key: keys.join("tollgate-dev-key.pem"),
        }
    }

    pub fn token(&self, sub: &str, groups: &str) -> String {
        super::pggw::mint(&self.key, sub, groups, "10m", None)
    }

    /// Options every OpenSSH caller gets: password only, no host key file.
    fn client_opts(&self) -> Vec<String> {
        [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "PreferredAuthentications=password",
            "PubkeyAuthentication=no",
            "NumberOfPasswordPrompts=1",
            "LogLevel=ERROR",
            "ConnectTimeout=20",
            // `sftp -b` turns batch mode on (no password); the first value wins.
            "BatchMode=no",
        ]
        .iter()
        .flat_map(|o| ["-o".to_string(), o.to_string()])
        .collect()
    }

    /// `sshpass -e <tool> ...` with the token in `SSHPASS`.
    fn sshpass(&self, token: &str, tool: &str, args: &[String]) -> Output {
        Command::new("timeout")
            .args(["120", "sshpass", "-e", tool])
            .args(self.client_opts())
            .args(args)
            .env("SSHPASS", token)
            .stdin(Stdio::null())
            .output()
            .expect("sshpass (tests/deps.sh installs it)")
    }

    /// `ssh deploy@gateway <command>`.
    pub fn ssh(&self, token: &str, command: &str) -> Output {
        let args = vec![
            "-p".to_string(),
            self.port.to_string(),
            "deploy@127.0.0.1".to_string(),
            command.to_string(),
        ];
        self.sshpass(token, "ssh", &args)
    }

    /// `scp` between `from` and `to`; a remote side is written `:path`.
    pub fn scp(&self, token: &str, from: &str, to: &str) -> Output {
        let remote = |s: &str| match s.strip_prefix(':') {
            Some(p) => format!("deploy@127.0.0.1:{p}"),
            None => s.to_string(),
        };
        let args = vec![
            "-q".to_string(),
            "-P".to_string(),
            self.port.to_string(),
            remote(from),
            remote(to),
        ];
        self.sshpass(token, "scp", &args)
    }

    /// `sftp -b batch`.
    pub fn sftp(&self, token: &str, batch: &Path) -> Output {
        let args = vec![
            "-q".to_string(),
            "-b".to_string(),
            batch.display().to_string(),
            "-P".to_string(),
            self.port.to_string(),
            "deploy@127.0.0.1".to_string(),
        ];
        self.sshpass(token, "sftp", &args)
    }

    /// The gateway's log and the recordings export.
    pub fn log_and_export(&self) -> String {
        format!("{}\n{}", self.gw.log_text(), self.export())
    }

    pub fn export(&self) -> String {
        let export = self.gw.cli(&["recordings", "export", "--all"]);
        assert!(export.status.success(), "{export:?}");
        String::from_utf8_lossy(&export.stdout).into_owned()
    }
}

/// SHA-256 of a file, by `sha256sum`.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl SshGateway {
    /// `scp -O` (the legacy protocol: an exec of `scp -t` upstream).
    pub fn sshpass_scp_legacy(&self, token: &str, from: &Path, to: &Path) -> Output {
        let args = vec![
            "-q".to_string(),
            "-O".to_string(),
            "-P".to_string(),
            self.port.to_string(),
            from.display().to_string(),
            format!("deploy@127.0.0.1:{}", to.display()),
        ];
        self.sshpass(token, "scp", &args)
    }
}

impl SshGateway {
    /// `ssh` with extra options and a command, running in the background.
    pub fn ssh_spawn(&self, token: &str, extra: &[&str], command: &str) -> Child {
        Command::new("sshpass")
            .arg("-e")
            .arg("ssh")
            .args(self.client_opts())
            .args(extra)
            .args(["-p", &self.port.to_string(), "deploy@127.0.0.1", command])
            .env("SSHPASS", token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `ssh` with extra options (no command when `command` is empty).
    pub fn ssh_with(&self, token: &str, extra: &[&str], command: &str) -> Output {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["-p".to_string(), self.port.to_string()]);
        args.push("deploy@127.0.0.1".to_string());
        if !command.is_empty() {
            args.push(command.to_string());
        }
        self.sshpass(token, "ssh", &args)
    }
}
