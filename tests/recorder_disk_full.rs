//! Fail closed on a full disk: the recording directory is a 256 KiB tmpfs
//! (mounted by the test; a real full disk, not a mock). When the recorder can
//! no longer write, the live session ends, new sessions are refused, and
//! readiness says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::*;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("tg-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn a_full_recording_disk_ends_sessions_and_refuses_new_ones() {
    let fs = Tmpfs::mount("256k");
    let echo = Echo::start();
    let gw = Gateway::start(&format!(
        "[engine]\nshards = 1\n[recorder]\ndir = \"{}\"\n{}",
        fs.0.display(),
        tcp_target("echo", 0, echo.addr, "")
    ));
    let port = gw.port("echo");
    // Incompressible traffic until the recorder hits ENOSPC.
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = random(16 * 1024, 7);
    let mut back = vec![0u8; chunk.len()];
    let mut ended = false;
    for _ in 0..200 {
        if s.write_all(&chunk).is_err() || s.read_exact(&mut back).is_err() {
            ended = true;
            break;
        }
    }
    assert!(ended, "3 MiB went through a 256 KiB recording disk");
    assert_eventually!(
        gw.log_text().contains("recorder failed"),
        Duration::from_secs(5),
        "no recorder failure logged:\n{}",
        gw.log_text()
    );
    // New sessions are refused: closed without reaching the upstream.
    let before = echo.accepted.load(std::sync::atomic::Ordering::SeqCst);
    let mut t = connect(port);
    let _ = t.write_all(b"let me in");
    let (got, _) = read_until_closed(&mut t);
    assert!(got.is_empty());
    assert_eq!(
        echo.accepted.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "a refused session reached the upstream"
    );
    let refused = gw.log_events("connection refused");
    assert!(
        refused.iter().any(|e| e["reason"] == "recorder failed"),
        "{refused:?}"
    );
    // Readiness reports the recorder.
    let ready = ureq::get(&format!("http://127.0.0.1:{}/readyz", gw.admin_port)).call();
    match ready {
        Ok(r) => panic!("ready with a failed recorder: {}", r.status()),
        Err(ureq::Error::StatusCode(code)) => assert_eq!(code, 503),
        Err(e) => panic!("{e}"),
    }
    // ... and /metrics counts the refusal under its own reason.
    let metrics = ureq::get(&format!("http://127.0.0.1:{}/metrics", gw.admin_port))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let refused_for_recorder: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("tollgate_connections_refused_total{")
                && l.contains("reason=\"recorder\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused_for_recorder >= 1.0, "{metrics}");
}
