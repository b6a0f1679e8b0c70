//! systemd's readiness protocol end to end: the real binary, `$NOTIFY_SOCKET` pointing at
//! a datagram socket this test listens on (what systemd does for `Type=notify`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Echo, Gateway, connect_to, roundtrip, tcp_target, tollgate_bin};

/// The next notification, or a panic after `within`.
fn next(sock: &UnixDatagram, within: Duration, g: &Gateway) -> String {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => panic!(
            "no notification within {within:?} ({e}); log:\n{}",
            g.log_text()
        ),
    }
}

fn fields(msg: &str) -> Vec<&str> {
    msg.lines().collect()
}

/// Starts a gateway with one tcp target and `NOTIFY_SOCKET=notify`.
fn spawn(notify: &std::path::Path, upstream: std::net::SocketAddr) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tollgate.toml");
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[recorder]\ndir = \"{}\"\n[engine]\nshards = 2\n{}",
        dir.path().join("recordings").display(),
        tcp_target("echo", 0, upstream, "")
    );
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("tollgate.log");
    let ready_file = dir.path().join("ready.json");
    let child = Command::new(tollgate_bin())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&cfg)
        .arg("--ready-file")
        .arg(&ready_file)
        .env("NOTIFY_SOCKET", notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Gateway {
        child,
        recordings: dir.path().join("recordings"),
        dir,
        config: cfg,
        log,
        admin_port: 0,
        ready_file,
        ready: None,
    }
}

#[test]
fn ready_after_listeners_accept_reloading_around_sighup_stopping_on_sigterm() {
    let echo = Echo::start();
    let sock_dir = tempfile::tempdir().unwrap();
    let path = sock_dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut g = spawn(&path, echo.addr);

    // The first thing systemd hears is READY=1, and by then everything accepts.
    let msg = next(&sock, Duration::from_secs(30), &g);
    assert!(fields(&msg).contains(&"READY=1"), "{msg:?}");
    assert!(
        g.ready_file.exists(),
        "READY=1 came before the listeners were reported"
    );
    g.wait_ready();
    let mut c = connect_to(g.addr("echo"));
    assert_eq!(
        roundtrip(&mut c, b"through the gateway"),
        b"through the gateway"
    );
    drop(c);
    std::net::TcpStream::connect(("127.0.0.1", g.admin_port)).expect("admin API accepts");

    // SIGHUP: RELOADING=1 (with the monotonic time systemd ≥ 253 matches), then READY=1
    // once the reload is over.
    g.signal("HUP");
    let msg = next(&sock, Duration::from_secs(30), &g);
    let f = fields(&msg);
    assert!(f.contains(&"RELOADING=1"), "{msg:?}");
    assert!(
        f.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{msg:?}"
    );
    let msg = next(&sock, Duration::from_secs(30), &g);
    assert!(fields(&msg).contains(&"READY=1"), "{msg:?}");
    assert_eq!(
        g.log_events("configuration reloaded (SIGHUP)").len(),
        1,
        "READY=1 after the reload finished; log:\n{}",
        g.log_text()
    );

    // SIGTERM: STOPPING=1 as the drain starts, then a clean exit.
    g.signal("TERM");
    let msg = next(&sock, Duration::from_secs(30), &g);
    assert!(fields(&msg).contains(&"STOPPING=1"), "{msg:?}");
    let status = g.wait_exit(Duration::from_secs(30)).expect("gateway exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_unreachable_notify_socket_is_logged_and_the_gateway_serves() {
    let echo = Echo::start();
    let sock_dir = tempfile::tempdir().unwrap();
    let mut g = spawn(&sock_dir.path().join("nobody-listens"), echo.addr);
    g.wait_ready();
    let mut c = connect_to(g.addr("echo"));
    assert_eq!(roundtrip(&mut c, b"still serving"), b"still serving");
    assert_eventually!(
        g.log_count("cannot notify the service manager") >= 1,
        Duration::from_secs(10),
        "no warning about the notify socket; log:\n{}",
        g.log_text()
    );
}

/// The configuration the Debian package installs as /etc/tollgate/tollgate.toml starts:
/// `tollgate check` (the unit's ExecStartPre) accepts it and says no target is defined.
#[test]
fn packaged_default_config_passes_check() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/tollgate.toml");
    let out = Command::new(tollgate_bin())
        .args(["check", "--config", cfg])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(tollgate::config::NO_TARGETS_WARNING),
        "{stderr}"
    );
}
