//! SSH terminal sessions end to end: a real `ssh -tt` driven through tmux
//! (keys typed with `send-keys`, the screen read with `capture-pane`), the
//! recording exported as asciicast and replayed paced; typed lines judged
//! at Enter; forwarding refused by default and relayed where a target
//! allows it; a revocation ending a live shell. Real `sshd` upstream
//! (tests/common/sshgw.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sshgw::{Options, RM_MESSAGE, SshGateway, text};
use serde_json::Value;

/// OpenSSH options for a caller that types the token as its password.
const SSH_OPTS: &[&str] = &[
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "PreferredAuthentications=password",
    "PubkeyAuthentication=no",
    "NumberOfPasswordPrompts=1",
    "LogLevel=ERROR",
    "ConnectTimeout=20",
];

/// A token in a file, for `sshpass -f`.
fn token_file(g: &SshGateway, sub: &str) -> PathBuf {
    let path = g.gw.dir().join(format!("token-{sub}"));
    std::fs::write(&path, g.token(sub, "ci")).unwrap();
    path
}

/// `sshpass -f TOKEN ssh OPTS EXTRA -p PORT deploy@127.0.0.1 [COMMAND]`.
fn ssh_command(g: &SshGateway, token: &std::path::Path, extra: &[&str], command: &str) -> Command {
    let mut c = Command::new("sshpass");
    c.arg("-f").arg(token).arg("ssh");
    for o in SSH_OPTS {
        c.args(["-o", o]);
    }
    c.args(extra)
        .args(["-p", &g.port.to_string(), "deploy@127.0.0.1"]);
    if !command.is_empty() {
        c.arg(command);
    }
    c
}

/// A tmux server of the test's own, running one session: `ssh -tt` into
/// the gateway's shell.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(g: &SshGateway, token: &std::path::Path, name: &str) -> Tmux {
        let socket = g.gw.dir().join(format!("tmux-{name}"));
        let mut ssh = format!("sshpass -f {} ssh", token.display());
        for o in SSH_OPTS {
            ssh.push_str(&format!(" -o {o}"));
        }
        ssh.push_str(&format!(" -tt -p {} deploy@127.0.0.1", g.port));
        let t = Tmux { socket };
        let o = t.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            &ssh,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .output()
            .expect("tmux (tests/deps.sh installs it)")
    }

    /// Type `keys` (literally) and press Enter.
    fn type_line(&self, keys: &str) {
        let o = self.run(&["send-keys", "-t", "t", "-l", keys]);
        assert!(o.status.success(), "{}", text(&o));
        self.keys(&["Enter"]);
    }

    /// Press named keys (`Enter`, `Up`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        let o = self.run(&args);
        assert!(o.status.success(), "{}", text(&o));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn wait_for(&self, needle: &str) {
        assert_eventually!(
            self.screen().contains(needle),
            Duration::from_secs(20),
            "{needle:?} not on the screen:\n{}",
            self.screen()
        );
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "t"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The one session in the recording, once it ended.
fn ended_session(g: &SshGateway) -> String {
    assert_eventually!(
        g.export().contains("session_end"),
        Duration::from_secs(20),
        "the session did not end: {}",
        g.export()
    );
    let list = g.gw.cli(&["recordings", "list", "--json"]);
    assert!(list.status.success(), "{list:?}");
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    first["session"].as_str().unwrap().to_string()
}

fn lines(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The event lines' `(t, code, data)`.
fn events(cast: &[Value]) -> Vec<(f64, String, String)> {
    cast[1..]
        .iter()
        .map(|e| {
            (
                e[0].as_f64().unwrap(),
                e[1].as_str().unwrap().to_string(),
                e[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_tmux_terminal_session_exports_as_asciicast_and_replays_paced() {
    let g = SshGateway::start();
    let token = token_file(&g, "alice");
    let tmux = Tmux::start(&g, &token, "cast");
    tmux.wait_for("#");
    tmux.type_line("echo pty-$((6*7))-ok");
    tmux.wait_for("pty-42-ok");
    let o = tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert!(o.status.success(), "{}", text(&o));
    // The host sees the new size.
    tmux.type_line("stty size");
    tmux.wait_for("40 120");
    tmux.type_line("exit");
    assert_eventually!(!tmux.alive(), Duration::from_secs(20), "ssh did not exit");
    let session = ended_session(&g);

    let o =
        g.gw.cli(&["recordings", "export", &session, "--format", "asciicast"]);
    let cast = lines(&o);
    let head = &cast[0];
    assert_eq!(head["version"], 2, "{head}");
    assert_eq!(head["width"], 100, "{head}");
    assert_eq!(head["height"], 30, "{head}");
    assert!(
        head["timestamp"].as_u64().unwrap() > 1_600_000_000,
        "{head}"
    );
    assert!(!head["env"]["TERM"].as_str().unwrap().is_empty(), "{head}");
    let ev = events(&cast);
    let output: String = ev
        .iter()
        .filter(|e| e.1 == "o")
        .map(|e| e.2.as_str())
        .collect();
    let input: String = ev
        .iter()
        .filter(|e| e.1 == "i")
        .map(|e| e.2.as_str())
        .collect();
    assert!(output.contains("pty-42-ok"), "{output}");
    assert!(input.contains("echo pty-$((6*7))-ok\r"), "{input}");
    assert!(
        ev.iter().any(|e| e.1 == "r" && e.2 == "120x40"),
        "no resize: {ev:?}"
    );
    assert!(
        ev.windows(2).all(|w| w[0].0 <= w[1].0),
        "times go back: {ev:?}"
    );

    // Twice as fast: every time halved (to the microsecond the export keeps).
    let o = g.gw.cli(&[
        "recordings",
        "replay",
        &session,
        "--speed",
        "2",
        "--no-wait",
    ]);
    let fast = lines(&o);
    assert_eq!(fast[0], cast[0]);
    let fast = events(&fast);
    assert_eq!(fast.len(), ev.len());
    for (a, b) in ev.iter().zip(&fast) {
        assert!((a.0 / 2.0 - b.0).abs() < 1e-5, "{a:?} vs {b:?}");
        assert_eq!((&a.1, &a.2), (&b.1, &b.2));
    }
    // Idle pauses capped.
    let o = g.gw.cli(&[
        "recordings",
        "replay",
        &session,
        "--max-idle",
        "0.05",
        "--no-wait",
    ]);
    let capped = events(&lines(&o));
    assert!(
        capped.windows(2).all(|w| w[1].0 - w[0].0 <= 0.05 + 1e-5),
        "{capped:?}"
    );
    assert!(capped.last().unwrap().0 <= ev.last().unwrap().0);
    // Played in the terminal: the output bytes as the caller got them.
    let o = g.gw.cli(&[
        "recordings",
        "replay",
        &session,
        "--speed",
        "50",
        "--max-idle",
        "0.1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("pty-42-ok"),
        "{}",
        text(&o)
    );
    // The record listing is still there, the pty request decoded.
    let o = g.gw.cli(&["recordings", "replay", &session, "--records"]);
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listing.contains("ssh.stream=\"pty\""), "{listing}");
    assert!(listing.contains("ssh.cols=\"100\""), "{listing}");
}

#[test]
fn a_terminal_is_recorded_past_the_channel_cap_and_split_characters_survive() {
    // Exec channels keep 1 KiB; the terminal keeps 300 kB each way.
    let g = SshGateway::with(Options {
        ssh: "record_channel_bytes = 1024\nrecord_pty_bytes = 300000",
        ..Options::default()
    });
    let token = token_file(&g, "frank");
    let tmux = Tmux::start(&g, &token, "cap");
    tmux.wait_for("#");
    // 50,000 euro signs (150 kB), written as octal escapes so the typed
    // command has none: reads of the pty split some of them.
    tmux.type_line("printf '\\342\\202\\254%.0s' $(seq 1 50000); echo; echo euros-$((1+1))done");
    tmux.wait_for("euros-2done");
    // 400 kB more: past the terminal's cap.
    tmux.type_line("head -c 400000 /dev/zero | tr '\\0' x; echo; echo zeros-$((2*5))");
    tmux.wait_for("zeros-10");
    tmux.type_line("exit");
    assert_eventually!(!tmux.alive(), Duration::from_secs(20), "ssh did not exit");
    let session = ended_session(&g);
    let o =
        g.gw.cli(&["recordings", "export", &session, "--format", "asciicast"]);
    let output: String = events(&lines(&o))
        .iter()
        .filter(|e| e.1 == "o")
        .map(|e| e.2.clone())
        .collect();
    assert_eq!(output.matches('\u{20ac}').count(), 50_000);
    assert!(!output.contains('\u{fffd}'), "a character was broken");
    assert!(output.contains("euros-2done"));
    // The cap is reached in the second burst, and said so.
    assert!(!output.contains("zeros-10"));
    let export = g.export();
    assert!(
        export.contains("stdout recording cap reached"),
        "no cap event: {}",
        export.len()
    );
}

#[test]
fn a_typed_blocked_line_does_not_run_and_says_why() {
    let g = SshGateway::start();
    let token = token_file(&g, "bob");
    let victim = tempfile::tempdir().unwrap();
    let keep = victim.path().join("keep.txt");
    std::fs::write(&keep, "still here").unwrap();
    let tmux = Tmux::start(&g, &token, "typed");
    tmux.wait_for("#");
    let rm = format!("rm -rf {}", victim.path().display());
    tmux.type_line(&rm);
    tmux.wait_for(RM_MESSAGE);
    // The shell is usable after it, and the line did not run.
    tmux.type_line("echo after-$((1+1))");
    tmux.wait_for("after-2");
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "still here");
    // A line recalled from history cannot be followed: run, recorded unjudged.
    tmux.keys(&["Up", "Enter"]);
    assert_eventually!(
        tmux.screen().matches("after-2").count() >= 2,
        Duration::from_secs(20),
        "history line did not run: {}",
        tmux.screen()
    );
    tmux.type_line("exit");
    assert_eventually!(!tmux.alive(), Duration::from_secs(20), "ssh did not exit");
    let _ = ended_session(&g);
    assert!(keep.exists());
    let export = g.export();
    let commands: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "command")
        .collect();
    let verdict = |needle: &str| {
        commands
            .iter()
            .find(|c| c["statement"].as_str().unwrap_or("").contains(needle))
            .map(|c| c["verdict"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no statement {needle:?}: {commands:?}"))
    };
    assert_eq!(verdict(&format!("typed {rm}")), "block");
    assert_eq!(verdict("typed echo after-$((1+1))"), "allow");
    assert_eq!(
        verdict("typed (edited with keys tollgate does not follow)"),
        "audit"
    );
    // What the caller read is in the recording too.
    assert!(
        export.contains(&format!("[tollgate] {RM_MESSAGE}")),
        "{export}"
    );
}

#[test]
fn strict_typed_lines_refuse_a_line_tollgate_cannot_follow() {
    let g = SshGateway::with(Options {
        ssh: "typed_lines = \"strict\"",
        ..Options::default()
    });
    let token = token_file(&g, "carol");
    let tmux = Tmux::start(&g, &token, "strict");
    tmux.wait_for("#");
    tmux.type_line("echo first-$((2+3))");
    tmux.wait_for("first-5");
    tmux.keys(&["Up", "Enter"]);
    tmux.wait_for("cannot follow this line");
    assert_eq!(
        tmux.screen().matches("first-5").count(),
        1,
        "{}",
        tmux.screen()
    );
}

#[test]
fn a_password_typed_at_a_prompt_is_recorded_as_a_secret_not_a_command() {
    let g = SshGateway::start();
    let token = token_file(&g, "pat");
    let tmux = Tmux::start(&g, &token, "secret");
    tmux.wait_for("#");
    // bash's `read -s -p` stands in for sudo (which is not installed and
    // would not ask root): a prompt, echo off, a line typed.
    tmux.type_line("read -s -p 'Password: ' pw; echo \"got-${#pw}-chars\"");
    tmux.wait_for("Password:");
    tmux.type_line("hunter2-secret");
    tmux.wait_for("got-14-chars");
    // An echoed line that ends like a prompt is still a command.
    tmux.type_line("echo password:");
    tmux.type_line("echo done-$((2*4))");
    tmux.wait_for("done-8");
    tmux.type_line("exit");
    assert_eventually!(!tmux.alive(), Duration::from_secs(20), "ssh did not exit");
    let _ = ended_session(&g);
    let export = g.export();
    let commands: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "command")
        .collect();
    let secret = commands
        .iter()
        .find(|c| {
            c["statement"]
                .as_str()
                .unwrap_or("")
                .ends_with("typed (secret at a prompt, 14 bytes)")
        })
        .unwrap_or_else(|| panic!("no secret line: {commands:?}"));
    assert_eq!(secret["verdict"], "audit");
    assert!(
        commands.iter().all(|c| !c.to_string().contains("hunter2")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c["statement"]
            .as_str()
            .unwrap_or("")
            .ends_with("typed echo password:")),
        "{commands:?}"
    );
    // As documented: the pty's input stream in the recording still has it.
    assert!(export.contains("hunter2-secret"));
    assert!(!g.gw.log_text().contains("hunter2"));
}

/// A TCP echo server on a free port (one connection at a time, until the
/// test ends).
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
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
    port
}

#[test]
fn local_forwarding_is_relayed_where_allowed_and_permit_open_narrows_it() {
    let echo = echo_server();
    let other = echo_server();
    let ssh = format!("allow_forwarding = [\"local\"]\npermit_open = [\"127.0.0.1:{echo}\"]");
    let g = SshGateway::with(Options {
        ssh: &ssh,
        ..Options::default()
    });
    let token = token_file(&g, "dave");
    // ssh -L: a local port through the gateway to the echo server.
    let local = common::free_port();
    let mut fwd: Child = ssh_command(
        &g,
        &token,
        &["-N", "-L", &format!("127.0.0.1:{local}:127.0.0.1:{echo}")],
        "",
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert_eventually!(
        TcpStream::connect(("127.0.0.1", local)).is_ok(),
        Duration::from_secs(20),
        "ssh -L did not listen"
    );
    let mut s = TcpStream::connect(("127.0.0.1", local)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"through the tunnel\n").unwrap();
    let mut got = [0u8; 19];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"through the tunnel\n");
    drop(s);
    // Another destination: refused (ssh -W fails), recorded.
    let o = ssh_command(&g, &token, &["-W", &format!("127.0.0.1:{other}")], "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let opened = format!("direct-tcpip 127.0.0.1:{echo} opened");
    let closed = format!(
        "direct-tcpip 127.0.0.1:{echo} closed: 19 bytes caller to host, 19 bytes host to caller"
    );
    let refused = format!("direct-tcpip 127.0.0.1:{other}\"");
    assert_eventually!(
        {
            let e = g.export();
            e.contains(&opened) && e.contains(&closed) && e.contains(&refused)
        },
        Duration::from_secs(20),
        "forward events not recorded: {}",
        g.export()
    );
    let _ = fwd.kill();
    let _ = fwd.wait();
    // The relayed bytes are in the recording.
    assert!(g.export().contains("through the tunnel"));
}

#[test]
fn remote_forwarding_is_relayed_where_allowed() {
    let echo = echo_server();
    let g = SshGateway::with(Options {
        ssh: "allow_forwarding = [\"remote\"]",
        ..Options::default()
    });
    let token = token_file(&g, "gina");
    // ssh -R: the host (this machine's sshd) listens, its connections come
    // back through the gateway to the caller's echo server.
    let remote = common::free_port();
    let mut fwd = ssh_command(
        &g,
        &token,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("127.0.0.1:{remote}:127.0.0.1:{echo}"),
        ],
        "",
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let listening = format!("tcpip-forward 127.0.0.1:{remote} listening");
    assert_eventually!(
        g.export().contains(&listening),
        Duration::from_secs(20),
        "remote forward not set up: {}",
        g.export()
    );
    let mut s = TcpStream::connect(("127.0.0.1", remote)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"back through the host\n").unwrap();
    let mut got = [0u8; 22];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"back through the host\n");
    drop(s);
    let opened = format!("forwarded-tcpip 127.0.0.1:{remote} from 127.0.0.1:");
    let closed = "closed: 22 bytes caller to host, 22 bytes host to caller";
    assert_eventually!(
        {
            let e = g.export();
            e.contains(&opened) && e.contains(closed)
        },
        Duration::from_secs(20),
        "forward events not recorded: {}",
        g.export()
    );
    assert!(g.export().contains("back through the host"));
    let _ = fwd.kill();
    let _ = fwd.wait();
}

#[test]
fn local_forwarding_stays_refused_by_default() {
    let echo = echo_server();
    let g = SshGateway::start();
    let token = token_file(&g, "erin");
    let local = common::free_port();
    let mut fwd = ssh_command(
        &g,
        &token,
        &["-N", "-L", &format!("127.0.0.1:{local}:127.0.0.1:{echo}")],
        "",
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    assert_eventually!(
        TcpStream::connect(("127.0.0.1", local)).is_ok(),
        Duration::from_secs(20),
        "ssh -L did not listen"
    );
    // ssh accepts locally, the gateway refuses the channel: no echo, EOF.
    let mut s = TcpStream::connect(("127.0.0.1", local)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(b"nope\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
    assert_eventually!(
        g.export()
            .contains(&format!("direct-tcpip 127.0.0.1:{echo}\"")),
        Duration::from_secs(20),
        "refusal not recorded: {}",
        g.export()
    );
    assert!(g.export().contains("\"verdict\":\"block\""));
    let _ = fwd.kill();
    let _ = fwd.wait();
}

#[test]
fn a_revocation_ends_a_live_shell_within_a_second() {
    let g = SshGateway::start();
    let token = token_file(&g, "mallory");
    let tmux = Tmux::start(&g, &token, "revoke");
    tmux.wait_for("#");
    tmux.type_line("echo live-$((3*3))");
    tmux.wait_for("live-9");
    let out =
        g.gw.cli(&["revoke", "--subject", "mallory", "--reason", "leaked"]);
    assert!(out.status.success(), "{out:?}");
    let revoked = Instant::now();
    assert_eventually!(
        !tmux.alive(),
        Duration::from_secs(1),
        "the revoked shell is still open after a second: {}",
        tmux.screen()
    );
    println!(
        "revocation ended the live shell after {:?}",
        revoked.elapsed()
    );
}
