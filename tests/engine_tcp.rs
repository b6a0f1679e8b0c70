//! End-to-end: the real `tollgate` binary relaying `tcp` targets in front of
//! echo upstreams on free ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;

/// A config with one tcp target `echo` on a port the kernel picks ([`Gateway::port`]).
fn one_target(extra_engine: &str, extra_target: &str, upstream: std::net::SocketAddr) -> String {
    format!(
        "[engine]\nshards = 2\nshutdown_grace = \"10s\"\n{extra_engine}\n{}",
        tcp_target("echo", 0, upstream, extra_target)
    )
}

/// Deterministic pseudo-random bytes (xorshift), so a mismatch is reproducible.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

#[test]
fn hundred_megabytes_both_ways_arrive_intact() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let data = random_bytes(100 * 1024 * 1024, 0x9e37_79b9_7f4a_7c15);
    let expected = sha256(&data);
    let mut s = connect(port);
    let mut writer = s.try_clone().unwrap();
    let sender = thread::spawn(move || {
        for chunk in data.chunks(1 << 20) {
            writer.write_all(chunk).unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let (back, clean) = read_until_closed(&mut s);
    sender.join().unwrap();
    assert!(clean, "the relay did not end with a clean EOF");
    assert_eq!(back.len(), 100 * 1024 * 1024);
    assert_eq!(sha256(&back), expected, "bytes changed in transit");
}

#[test]
fn client_half_close_still_gets_the_reply() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut s = connect(port);
    s.write_all(b"last words").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (back, clean) = read_until_closed(&mut s);
    assert_eq!(back, b"last words");
    assert!(clean);
}

#[test]
fn upstream_half_close_lets_the_client_keep_sending() {
    // An upstream that greets, shuts its write side, then reads to EOF and
    // reports what it got.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = up.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut c, _) = up.accept().unwrap();
        c.write_all(b"hello, then silence").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        tx.send(got).unwrap();
    });
    let cfg = one_target("", "", addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut s = connect(port);
    let mut greeting = vec![0u8; 19];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting, b"hello, then silence");
    // The client sees the upstream's EOF but its own direction stays open.
    let mut one = [0u8; 1];
    assert_eq!(s.read(&mut one).unwrap(), 0, "expected EOF from upstream");
    s.write_all(b"still talking").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, b"still talking");
}

#[test]
fn refused_upstream_closes_the_client_and_the_gateway_keeps_serving() {
    let (_held, dead_addr) = refusing_addr();
    let echo = Echo::start();
    let cfg = format!(
        "[engine]\nshards = 2\n{}{}",
        tcp_target("dead", 0, dead_addr, ""),
        // Another loopback address: two tcp targets cannot share one listener.
        tcp_target("live", 0, echo.addr, "").replace("127.0.0.1:0", "127.0.0.2:0")
    );
    let gw = Gateway::start(&cfg);
    for _ in 0..3 {
        let mut s = connect(gw.port("dead"));
        let (_, _) = read_until_closed(&mut s);
    }
    let mut s = connect_to(gw.addr("live"));
    assert_eq!(roundtrip(&mut s, b"ping"), b"ping");
    assert_eventually!(
        gw.log_count("upstream connect or login failed") >= 3,
        Duration::from_secs(5),
        "refusals not logged:\n{}",
        gw.log_text()
    );
}

#[test]
fn upstream_vanishing_mid_session_closes_the_client() {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = up.local_addr().unwrap();
    thread::spawn(move || {
        for c in up.incoming() {
            let mut c = c.unwrap();
            let mut buf = [0u8; 5];
            let _ = c.read_exact(&mut buf);
            // Abortive close: RST instead of FIN.
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(c);
        }
    });
    let echo = Echo::start();
    let cfg = format!(
        "[engine]\nshards = 1\n{}{}",
        tcp_target("flaky", 0, addr, ""),
        tcp_target("live", 0, echo.addr, "").replace("127.0.0.1:0", "127.0.0.2:0")
    );
    let gw = Gateway::start(&cfg);
    let mut s = connect(gw.port("flaky"));
    s.write_all(b"hello").unwrap();
    // The gateway closes the client (read_until_closed fails the test if it does not).
    let (_, _) = read_until_closed(&mut s);
    let mut s = connect_to(gw.addr("live"));
    assert_eq!(roundtrip(&mut s, b"still here"), b"still here");
}

#[test]
fn idle_sessions_are_closed_and_busy_ones_are_not() {
    let echo = Echo::start();
    // Wide margins (2 s idle vs a tick every 100 ms) so a loaded CI machine
    // cannot stall the busy session past its timeout.
    let cfg = one_target("", "idle_timeout = \"2s\"", echo.addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut busy = connect(port);
    let mut idle = connect(port);
    // Keep one session busy until the gateway has closed the idle one: every tick is
    // paced by a bounded wait for that close, not by a sleep.
    idle.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut ticks = 0;
    loop {
        assert_eq!(roundtrip(&mut busy, b"tick"), b"tick");
        ticks += 1;
        assert!(ticks < 600, "the idle session was never closed");
        match idle.read(&mut [0u8; 1]) {
            Ok(0) => break,
            Ok(_) => panic!("the idle session received data"),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    assert_eq!(roundtrip(&mut busy, b"tock"), b"tock");
    assert_eventually!(
        gw.log_count("idle timeout") >= 1,
        Duration::from_secs(5),
        "idle close not logged:\n{}",
        gw.log_text()
    );
}

#[test]
fn connections_over_the_cap_are_refused_and_logged() {
    let echo = Echo::start();
    let cfg = one_target("max_connections = 2", "", echo.addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut a = connect(port);
    let mut b = connect(port);
    assert_eq!(roundtrip(&mut a, b"a"), b"a");
    assert_eq!(roundtrip(&mut b, b"b"), b"b");
    let mut c = connect(port);
    let _ = c.write_all(b"c");
    let (got, _) = read_until_closed(&mut c);
    assert!(got.is_empty(), "the refused connection was relayed");
    assert_eventually!(
        gw.log_count("connection refused") >= 1,
        Duration::from_secs(5),
        "refusal not logged:\n{}",
        gw.log_text()
    );
    let refused = gw.log_events("connection refused");
    assert_eq!(refused[0]["reason"], "global connection cap");
    // A freed slot is usable again.
    drop(a);
    assert_eventually!(
        {
            let mut d = connect(port);
            d.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            d.write_all(b"d").is_ok() && {
                let mut one = [0u8; 1];
                matches!(d.read(&mut one), Ok(1))
            }
        },
        Duration::from_secs(10),
        "slot never freed"
    );
    assert_eq!(roundtrip(&mut b, b"b2"), b"b2");
}

#[test]
fn per_shard_cap_is_enforced() {
    let echo = Echo::start();
    let cfg = format!(
        "[engine]\nshards = 1\nmax_connections_per_shard = 1\n{}",
        tcp_target("echo", 0, echo.addr, "")
    );
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut a = connect(port);
    assert_eq!(roundtrip(&mut a, b"a"), b"a");
    let mut b = connect(port);
    let (got, _) = read_until_closed(&mut b);
    assert!(got.is_empty());
    assert_eventually!(
        gw.log_events("connection refused")
            .iter()
            .any(|e| e["reason"] == "shard connection cap"),
        Duration::from_secs(5),
        "shard cap refusal not logged:\n{}",
        gw.log_text()
    );
}

#[test]
fn sigterm_drains_live_sessions_then_exits() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let mut gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut live = connect(port);
    assert_eq!(roundtrip(&mut live, b"before"), b"before");
    gw.signal("TERM");
    assert_eventually!(
        gw.log_count("draining live sessions") >= 1,
        Duration::from_secs(5),
        "no drain logged:\n{}",
        gw.log_text()
    );
    // No new connections once draining.
    assert_eventually!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        Duration::from_secs(5),
        "still accepting after SIGTERM"
    );
    // The live session keeps working during the grace period.
    assert_eq!(roundtrip(&mut live, b"during"), b"during");
    assert!(
        gw.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a live session"
    );
    live.shutdown(Shutdown::Write).unwrap();
    let _ = read_until_closed(&mut live);
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("did not exit after drain");
    assert!(status.success(), "{status:?}");
}

#[test]
fn grace_expiry_closes_lingering_sessions() {
    let echo = Echo::start();
    let cfg = format!(
        "[engine]\nshards = 2\nshutdown_grace = \"500ms\"\n{}",
        tcp_target("echo", 0, echo.addr, "")
    );
    let mut gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut live = connect(port);
    assert_eq!(roundtrip(&mut live, b"x"), b"x");
    gw.signal("TERM");
    let (_, _) = read_until_closed(&mut live);
    let status = gw.wait_exit(Duration::from_secs(10)).expect("did not exit");
    assert!(status.success());
    assert!(gw.log_text().contains("shutdown grace expired"));
}

#[test]
fn both_shards_serve_connections() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let gw = Gateway::start(&cfg);
    let port = gw.port("echo");
    let mut conns: Vec<_> = (0..64).map(|_| connect(port)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let msg = format!("conn {i}");
        assert_eq!(roundtrip(c, msg.as_bytes()), msg.as_bytes());
    }
    assert_eventually!(
        gw.log_events("session opened").len() >= 64,
        Duration::from_secs(5),
        "sessions not logged"
    );
    let threads: HashSet<String> = gw
        .log_events("session opened")
        .iter()
        .map(|e| e["threadName"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        threads,
        HashSet::from([
            "tollgate-shard-0".to_string(),
            "tollgate-shard-1".to_string()
        ]),
        "64 connections should land on both shards"
    );
    // Each shard pinned itself and bound its own listener.
    assert_eq!(gw.log_events("listening").len(), 2);
}

#[test]
fn a_second_gateway_on_the_same_port_refuses_to_start() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let first = Gateway::start(&cfg);
    let port = first.port("echo");
    // The second asks for the port the first was given.
    let mut second = Gateway::spawn(&cfg.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")));
    let status = second
        .wait_exit(Duration::from_secs(10))
        .expect("second instance kept running");
    assert!(!status.success());
    assert!(
        second.log_text().contains("already in use"),
        "{}",
        second.log_text()
    );
    // The first still serves, alone.
    let mut s = connect(port);
    assert_eq!(roundtrip(&mut s, b"one owner"), b"one owner");
}

#[test]
fn check_validates_and_reports_errors_with_file_and_line() {
    let echo = Echo::start();
    let cfg = one_target("", "", echo.addr);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &cfg).unwrap();
    let out = Command::new(tollgate_bin())
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("echo (tcp)"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        cfg.replace(
            "unauthenticated = true",
            "unauthenticated = true\nbogus = 1",
        ),
    )
    .unwrap();
    let out = Command::new(tollgate_bin())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("bogus"), "{err}");
    assert!(err.contains("line 11"), "{err}");
}
