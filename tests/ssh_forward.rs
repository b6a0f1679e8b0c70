//! Agent, X11 and unix-socket forwarding through the SSH gateway, end to
//! end: a real `ssh-agent` and `ssh -A` (the host lists the caller's key
//! and logs in a second hop with it), `ssh -Y` with the caller's cookie in
//! an Xauthority file and a fake X server that checks it, `ssh -L`/`-R`
//! between unix sockets; each refused where the target does not allow it,
//! and recorded either way. Real `sshd` upstream (tests/common/sshgw.rs),
//! which runs on this machine, so "the host" is here too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::sshgw::{Options, SshGateway, keygen, text};
use serde_json::Value;

const SSH_OPTS: &[&str] = &[
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "PreferredAuthentications=password",
    "PubkeyAuthentication=no",
    "NumberOfPasswordPrompts=1",
    "LogLevel=ERROR",
    "ConnectTimeout=20",
];

/// `sshpass -e ssh OPTS EXTRA -p PORT deploy@127.0.0.1 [COMMAND]`, the
/// token in `SSHPASS`, `env` added.
fn ssh(g: &SshGateway, sub: &str, extra: &[&str], command: &str, env: &[(&str, &Path)]) -> Command {
    // No `timeout` wrapper: killing it would leave ssh running.
    let mut c = Command::new("sshpass");
    c.args(["-e", "ssh"]);
    for o in SSH_OPTS {
        c.args(["-o", o]);
    }
    c.args(extra)
        .args(["-p", &g.port.to_string(), "deploy@127.0.0.1"]);
    if !command.is_empty() {
        c.arg(command);
    }
    c.env("SSHPASS", g.token(sub, "ci")).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The recorded statements (`command` lines of the export): (statement,
/// verdict).
fn statements(g: &SshGateway) -> Vec<(String, String)> {
    g.export()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "command")
        .map(|v| {
            (
                v["statement"].as_str().unwrap_or("").to_string(),
                v["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The verdict of the first statement containing `needle`, once recorded.
fn verdict(g: &SshGateway, needle: &str) -> String {
    assert_eventually!(
        statements(g).iter().any(|(s, _)| s.contains(needle)),
        Duration::from_secs(20),
        "no statement {needle:?}: {:#?}",
        statements(g)
    );
    statements(g)
        .into_iter()
        .find(|(s, _)| s.contains(needle))
        .map(|(_, v)| v)
        .unwrap()
}

/// A foreground `ssh-agent` on a socket of its own, holding `key`.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (tests/deps.sh installs openssh-client)");
        assert_eventually!(sock.exists(), Duration::from_secs(10), "no agent socket");
        let o = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        Agent { child, sock }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen -lf` of a public key: `SHA256:...`.
fn fingerprint(public: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn a_forwarded_agent_lists_the_callers_key_and_logs_in_a_second_hop() {
    let g = SshGateway::with(Options {
        ssh: "allow_forwarding = [\"agent\"]",
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "caller_ed25519");
    let fp = fingerprint(&key.with_extension("pub"));
    // The caller's key may log in to the host directly: the second hop.
    let authorized = g.sshd.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&format!("{public}\n"));
    std::fs::write(&authorized, keys).unwrap();
    let agent = Agent::start(dir.path(), &key);
    let hop = format!(
        "ssh-add -l; ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o BatchMode=yes -o LogLevel=ERROR -p {} root@127.0.0.1 echo second-hop-ok",
        g.sshd.port
    );
    let o = ssh(
        &g,
        "alice",
        &["-A"],
        &hop,
        &[("SSH_AUTH_SOCK", &agent.sock)],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&fp),
        "the host did not list the caller's key: {}",
        text(&o)
    );
    assert!(out.contains("second-hop-ok"), "{}", text(&o));
    assert_eq!(verdict(&g, "agent forwarding"), "allow");
    assert_eq!(verdict(&g, "auth-agent host to caller opened"), "allow");
    assert_eq!(verdict(&g, "agent request identities"), "allow");
    assert_eq!(
        verdict(&g, &format!("agent identities: 1 keys [ssh-ed25519 {fp}]")),
        "allow"
    );
    assert_eq!(
        verdict(&g, &format!("agent sign request: key ssh-ed25519 {fp}")),
        "allow"
    );
    // The next hop's host key, from OpenSSH's session-bind.
    let host_fp = fingerprint(&g.sshd.dir.path().join("host_ed25519.pub"));
    assert_eq!(
        verdict(
            &g,
            &format!("agent session-bind: host key ssh-ed25519 {host_fp}")
        ),
        "allow"
    );
    assert_eq!(verdict(&g, "agent signature"), "allow");
    // The agent's bytes (signatures) are not in the recording, nor the key.
    let export = g.export();
    let private = std::fs::read_to_string(&key).unwrap();
    let body = private.lines().nth(1).unwrap();
    assert!(!export.contains(body));
}

#[test]
fn the_host_cannot_change_the_callers_agent() {
    let g = SshGateway::with(Options {
        ssh: "allow_forwarding = [\"agent\"]",
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "caller_ed25519");
    let agent = Agent::start(dir.path(), &key);
    let o = ssh(
        &g,
        "bob",
        &["-A"],
        "ssh-add -D; echo rc=$?; ssh-add -l >/dev/null; echo still=$?",
        &[("SSH_AUTH_SOCK", &agent.sock)],
    )
    .output()
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    // ssh-add -D fails, the key is still in the caller's agent.
    assert!(out.contains("rc=1"), "{}", text(&o));
    assert!(out.contains("still=0"), "{}", text(&o));
    let local = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .unwrap();
    assert!(local.status.success(), "{}", text(&local));
    assert_eq!(
        verdict(&g, "agent message type 19 (changes the caller's agent)"),
        "block"
    );
}

#[test]
fn agent_forwarding_is_refused_by_default_and_recorded() {
    let g = SshGateway::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "caller_ed25519");
    let agent = Agent::start(dir.path(), &key);
    let o = ssh(
        &g,
        "carol",
        &["-A"],
        "ssh-add -l; echo rc=$?",
        &[("SSH_AUTH_SOCK", &agent.sock)],
    )
    .output()
    .unwrap();
    // The session runs; the host has no agent.
    assert!(o.status.success(), "{}", text(&o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(all.contains("rc=2"), "{}", text(&o));
    assert!(
        all.contains("Could not open a connection to your authentication agent"),
        "{}",
        text(&o)
    );
    assert_eq!(verdict(&g, "agent forwarding"), "block");
}

/// A fake X server on display `:N` (TCP 6000+N): reads one connection
/// setup, reports the cookie it carried, answers, then answers "ping!"
/// with "pong!".
fn fake_x_server() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let (display, l) = (100..200)
        .find_map(|n| {
            TcpListener::bind(("127.0.0.1", 6000 + n))
                .ok()
                .map(|l| (n, l))
        })
        .expect("a free X display port");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).is_err() {
                continue;
            }
            let n = u16::from_le_bytes([head[6], head[7]]) as usize;
            let d = u16::from_le_bytes([head[8], head[9]]) as usize;
            let mut rest = vec![0u8; n.div_ceil(4) * 4 + d.div_ceil(4) * 4];
            if s.read_exact(&mut rest).is_err() {
                continue;
            }
            let at = n.div_ceil(4) * 4;
            let _ = tx.send(rest[at..at + d].to_vec());
            let _ = s.write_all(b"X11-SETUP-ACCEPTED");
            let mut ping = [0u8; 5];
            if s.read_exact(&mut ping).is_ok() && &ping == b"ping!" {
                let _ = s.write_all(b"pong!");
            }
        }
    });
    (display, rx)
}

/// An X11 connection setup (little-endian) with an MIT cookie.
fn x_setup(cookie: &[u8]) -> Vec<u8> {
    let name = b"MIT-MAGIC-COOKIE-1";
    let mut b = vec![b'l', 0, 11, 0, 0, 0];
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(&(cookie.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(name);
    b.resize(12 + name.len().div_ceil(4) * 4, 0);
    b.extend_from_slice(cookie);
    b.resize(b.len().div_ceil(4) * 4, 0);
    b
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn x11_reaches_the_callers_x_server_with_its_real_cookie_and_never_shows_it_to_the_host() {
    let g = SshGateway::with(Options {
        ssh: "allow_forwarding = [\"x11\"]",
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (display, cookies) = fake_x_server();
    let real = "00112233445566778899aabbccddeeff";
    let xauth = dir.path().join("caller.xauth");
    let o = Command::new("xauth")
        .arg("-f")
        .arg(&xauth)
        .args([
            "add",
            &format!("127.0.0.1:{display}"),
            "MIT-MAGIC-COOKIE-1",
            real,
        ])
        .output()
        .expect("xauth (tests/deps.sh installs it)");
    assert!(o.status.success(), "{}", text(&o));
    let disp = PathBuf::from(format!("127.0.0.1:{display}"));
    let mut session = ssh(
        &g,
        "dave",
        &["-Y"],
        "echo \"D=$DISPLAY\"; xauth list \"$DISPLAY\"; sleep 60",
        &[("DISPLAY", &disp), ("XAUTHORITY", &xauth)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The host's display and the cookie the host was given.
    let mut lines = BufReader::new(session.stdout.take().unwrap()).lines();
    let (mut host_display, mut host_cookie) = (None, None);
    while host_display.is_none() || host_cookie.is_none() {
        let Some(Ok(line)) = lines.next() else {
            let _ = session.kill();
            panic!(
                "no DISPLAY or cookie on the host: {:?}",
                session.wait_with_output()
            );
        };
        if let Some(d) = line.strip_prefix("D=") {
            host_display = Some(d.to_string());
        } else if line.contains("MIT-MAGIC-COOKIE-1") {
            host_cookie = line.split_whitespace().last().map(str::to_string);
        }
    }
    let host_display = host_display.unwrap();
    let host_cookie = host_cookie.unwrap();
    assert_ne!(host_cookie, real);
    // localhost:10.0 → TCP 6010.
    let n: u16 = host_display
        .rsplit_once(':')
        .and_then(|(_, d)| d.split('.').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("DISPLAY {host_display:?}"));
    // An X client on the host, with the host's cookie.
    let mut x = TcpStream::connect(("127.0.0.1", 6000 + n)).unwrap();
    x.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    x.write_all(&x_setup(&unhex(&host_cookie))).unwrap();
    let mut reply = [0u8; 18];
    x.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"X11-SETUP-ACCEPTED");
    x.write_all(b"ping!").unwrap();
    let mut pong = [0u8; 5];
    x.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"pong!");
    let got = cookies.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        got,
        unhex(real),
        "the X server did not get the caller's real cookie"
    );
    drop(x);
    // Another cookie (even the caller's real one) is refused at the gateway.
    let mut wrong = TcpStream::connect(("127.0.0.1", 6000 + n)).unwrap();
    wrong
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    wrong.write_all(&x_setup(&unhex(real))).unwrap();
    let mut nothing = Vec::new();
    let _ = wrong.read_to_end(&mut nothing);
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(
        verdict(&g, "x11 forwarding (MIT-MAGIC-COOKIE-1, screen 0)"),
        "allow"
    );
    assert_eq!(verdict(&g, "x11 from 127.0.0.1:"), "allow");
    assert_eq!(
        verdict(
            &g,
            "x11 connection refused: the cookie is not the one tollgate gave the host"
        ),
        "block"
    );
    assert!(
        cookies.try_recv().is_err(),
        "a wrong cookie reached the X server"
    );
    let _ = session.kill();
    let _ = session.wait();
    // The bytes are recorded, the caller's cookie not (the host's is in
    // the exec's recorded output: this test printed it).
    let export = g.export();
    assert!(export.contains("pong!"), "{export}");
    assert!(!export.contains(real));
}

#[test]
fn x11_is_refused_by_default_and_recorded() {
    let g = SshGateway::start();
    let dir = tempfile::tempdir().unwrap();
    let xauth = dir.path().join("caller.xauth");
    let o = Command::new("xauth")
        .arg("-f")
        .arg(&xauth)
        .args([
            "add",
            "127.0.0.1:199",
            "MIT-MAGIC-COOKIE-1",
            "00112233445566778899aabbccddeeff",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let disp = PathBuf::from("127.0.0.1:199");
    let o = ssh(
        &g,
        "erin",
        &["-Y"],
        "echo \"D=$DISPLAY.\"",
        &[("DISPLAY", &disp), ("XAUTHORITY", &xauth)],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("D=."),
        "{}",
        text(&o)
    );
    assert_eq!(verdict(&g, "x11 forwarding"), "block");
}

/// A unix-socket echo server at `path`.
fn unix_echo(path: &Path) {
    let l = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
}

fn echo_through(path: &Path, msg: &[u8]) -> Vec<u8> {
    // The socket file exists from ssh's (or sshd's) bind(), a moment before
    // its listen(): a connect in between is refused, so retry that.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {}: {e}", path.display()),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    let _ = s.read_exact(&mut got);
    got
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn unix_sockets_are_forwarded_both_ways_within_permit_streamlocal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (host_sock, other_sock) = (d.join("host.sock"), d.join("other.sock"));
    let (remote_sock, caller_sock) = (d.join("remote.sock"), d.join("caller.sock"));
    unix_echo(&host_sock);
    unix_echo(&other_sock);
    unix_echo(&caller_sock);
    let ssh_cfg = format!(
        "allow_forwarding = [\"streamlocal\"]\npermit_streamlocal = [\"{}\", \"{}\"]",
        host_sock.display(),
        remote_sock.display()
    );
    let g = SshGateway::with(Options {
        ssh: &ssh_cfg,
        ..Options::default()
    });
    // ssh -L local.sock:host.sock
    let local = d.join("local.sock");
    let spec = format!("{}:{}", local.display(), host_sock.display());
    let fwd = ssh(&g, "gina", &["-N", "-L", &spec], "", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eventually!(
        local.exists(),
        Duration::from_secs(20),
        "ssh -L did not listen"
    );
    assert_eq!(
        echo_through(&local, b"over a unix socket\n"),
        b"over a unix socket\n"
    );
    // A path outside the list: refused.
    let local2 = d.join("local2.sock");
    let spec = format!("{}:{}", local2.display(), other_sock.display());
    let fwd2 = ssh(&g, "gina", &["-N", "-L", &spec], "", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eventually!(
        local2.exists(),
        Duration::from_secs(20),
        "ssh -L did not listen"
    );
    let mut s = UnixStream::connect(&local2).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(b"nope\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
    // ssh -R remote.sock:caller.sock: the host listens, its connections
    // come back to the caller's socket.
    let spec = format!("{}:{}", remote_sock.display(), caller_sock.display());
    let rfwd = ssh(
        &g,
        "gina",
        &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &spec],
        "",
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert_eventually!(
        remote_sock.exists(),
        Duration::from_secs(20),
        "ssh -R did not listen"
    );
    assert_eq!(
        echo_through(&remote_sock, b"back from the host\n"),
        b"back from the host\n"
    );
    let h = host_sock.display();
    let r = remote_sock.display();
    assert_eq!(
        verdict(&g, &format!("direct-streamlocal {h} opened")),
        "allow"
    );
    assert_eq!(
        verdict(
            &g,
            &format!(
                "direct-streamlocal {h} closed: 19 bytes caller to host, 19 bytes host to caller"
            )
        ),
        "allow"
    );
    let o = other_sock.display();
    assert_eq!(verdict(&g, &format!("direct-streamlocal {o}")), "block");
    assert_eq!(
        verdict(&g, &format!("streamlocal-forward {r} listening")),
        "allow"
    );
    assert_eq!(
        verdict(&g, &format!("forwarded-streamlocal {r} opened")),
        "allow"
    );
    let export = g.export();
    assert!(export.contains("over a unix socket") && export.contains("back from the host"));
    for c in [fwd, fwd2, rfwd] {
        kill(c);
    }
}

#[test]
fn unix_socket_forwarding_is_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_sock = d.join("host.sock");
    unix_echo(&host_sock);
    let g = SshGateway::start();
    let remote_sock = d.join("remote.sock");
    let spec = format!("{}:{}", remote_sock.display(), host_sock.display());
    let o = ssh(
        &g,
        "hank",
        &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &spec],
        "",
        &[],
    )
    .output()
    .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!remote_sock.exists());
    assert_eq!(
        verdict(
            &g,
            &format!("streamlocal-forward {}", remote_sock.display())
        ),
        "block"
    );
}
