//! Tampered recordings through the binary (issue 11 item 7): a gateway
//! records relayed sessions over several sealed, signed segments and stops
//! cleanly; then, each on a fresh copy, the last sealed segment is cut by
//! 200 bytes, the last segment file is deleted, an index entry is edited
//! (CRC recomputed), index entries are dropped, and the first segment is
//! deleted with a forged retention mark. `tollgate recordings verify` must
//! exit non-zero and name the problem each time.
//!
//! The tamperings use only the file formats (and the recorder crate's own
//! index framing), so `TOLLGATE_TEST_BIN` can point this test at another
//! build of the binary to show how that build fares.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tollgate_recorder::fs::RealFs;
use tollgate_recorder::index::{IndexEntry, read_index};

fn bin() -> String {
    std::env::var("TOLLGATE_TEST_BIN").unwrap_or_else(|_| tollgate_bin().to_owned())
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A cleanly stopped gateway's recording: one shard, small segments, signed.
struct Recorded {
    tmp: tempfile::TempDir,
    public: PathBuf,
}

impl Recorded {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("seal.key");
        let public = tmp.path().join("seal.pub");
        let out = Command::new(bin())
            .args(["recordings", "keygen", "--private"])
            .arg(&key)
            .arg("--public")
            .arg(&public)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let rec = tmp.path().join("rec");
        let echo = Echo::start();
        let port = free_port();
        let cfg = format!(
            "[recorder]\ndir = \"{}\"\nsigning_key = \"{}\"\nblock_size = 512\nsegment_max_bytes = 4096\n\n[engine]\nshards = 1\n{}",
            rec.display(),
            key.display(),
            tcp_target("echo", port, echo.addr, "")
        );
        let mut gw = start_gateway(tmp.path(), &cfg);
        for i in 0..12 {
            let mut s = connect(port);
            for j in 0..20 {
                let msg = format!("session {i} statement {j}: SELECT * FROM t WHERE id = {j}\n");
                assert_eq!(roundtrip(&mut s, msg.as_bytes()), msg.as_bytes());
            }
        }
        let term = Command::new("kill")
            .args(["-TERM", &gw.0.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = wait_exit(&mut gw.0);
        assert!(status.success(), "gateway stop: {status}");
        let r = Self { tmp, public };
        let ok = r.verify(&r.rec());
        assert!(ok.status.success(), "{}", text(&ok));
        r
    }

    fn rec(&self) -> PathBuf {
        self.tmp.path().join("rec")
    }

    /// A fresh copy of the recording to tamper with.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.tmp.path().join(name);
        let ok = Command::new("cp")
            .arg("-a")
            .arg(self.rec())
            .arg(&to)
            .status()
            .unwrap();
        assert!(ok.success());
        to
    }

    fn verify(&self, dir: &Path) -> Output {
        Command::new(bin())
            .args(["recordings", "verify", "--dir"])
            .arg(dir)
            .arg("--key")
            .arg(&self.public)
            .output()
            .unwrap()
    }

    /// verify must fail and its report contain every one of `needles`.
    fn fails(&self, dir: &Path, what: &str, needles: &[&str]) {
        let out = self.verify(dir);
        let report = text(&out);
        assert!(!out.status.success(), "{what} passed verify:\n{report}");
        for n in needles {
            assert!(report.contains(n), "{what}: {n:?} not in:\n{report}");
        }
    }
}

/// A gateway process, killed if the test ends before it stops.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tollgate run` (this test's binary) on `cfg`, ready.
fn start_gateway(dir: &Path, cfg: &str) -> Proc {
    let path = dir.join("tollgate.toml");
    let admin = free_port();
    std::fs::write(
        &path,
        format!("[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n{cfg}"),
    )
    .unwrap();
    let log = dir.join("tollgate.log");
    let child = Command::new(bin())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .env("TOLLGATE_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let child = Proc(child);
    assert_eventually!(
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tollgate ready")),
        std::time::Duration::from_secs(30),
        "gateway never became ready: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    child
}

/// Waits (bounded) for a stopping gateway to exit.
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "gateway did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("shard-0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn rewrite_index(dir: &Path, edit: impl FnOnce(&mut Vec<IndexEntry>)) {
    let path = dir.join("shard-0").join("sessions.idx");
    let mut entries: Vec<IndexEntry> = read_index(&RealFs, &path)
        .unwrap()
        .entries
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    edit(&mut entries);
    let mut out = Vec::new();
    for e in &entries {
        e.encode_into(&mut out).unwrap();
    }
    std::fs::write(&path, out).unwrap();
}

#[test]
fn tampered_tails_indexes_and_retention_fail_verify_through_the_binary() {
    let r = Recorded::new();
    assert!(segments(&r.rec()).len() >= 4, "want several segments");

    // 1. The last sealed segment cut by 200 bytes.
    let d = r.copy("cut");
    let last = segments(&d).pop().unwrap();
    let data = std::fs::read(&last).unwrap();
    std::fs::write(&last, &data[..data.len() - 200]).unwrap();
    r.fails(&d, "a cut last segment", &[&file_name(&last), "Truncated"]);

    // 2. The last segment file deleted.
    let d = r.copy("deleted");
    let last = segments(&d).pop().unwrap();
    std::fs::remove_file(&last).unwrap();
    r.fails(&d, "a deleted last segment", &[&file_name(&last)]);

    // 3. A session's subject renamed in the index, CRC recomputed.
    let d = r.copy("renamed");
    rewrite_index(&d, |entries| {
        for e in entries.iter_mut() {
            if let IndexEntry::Start { subject, .. } = e {
                *subject = "someone-else".into();
                break;
            }
        }
    });
    let listed = Command::new(bin())
        .args(["recordings", "list", "--dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(text(&listed).contains("someone-else"), "{}", text(&listed));
    r.fails(&d, "a renamed subject", &["BadIndex", "someone-else"]);

    // 4. Index entries dropped (the third session's start and end).
    let d = r.copy("dropped");
    rewrite_index(&d, |entries| {
        let third = entries
            .iter()
            .filter_map(|e| match e {
                IndexEntry::Start { session, .. } => Some(*session),
                _ => None,
            })
            .nth(2)
            .unwrap();
        entries.retain(|e| {
            !matches!(e, IndexEntry::Start { session, .. } | IndexEntry::End { session, .. } if *session == third)
        });
    });
    r.fails(
        &d,
        "dropped index entries",
        &["BadIndex", "no entry for session"],
    );

    // 5. The first segment deleted, with a retention mark forged for it.
    let d = r.copy("pruned");
    let segs = segments(&d);
    let second = std::fs::read(&segs[1]).unwrap();
    let next_base = u64::from_le_bytes(second[16..24].try_into().unwrap());
    let prev_hash = hex(&second[32..64]);
    std::fs::remove_file(&segs[0]).unwrap();
    let idx = d.join("shard-0").join("sessions.idx");
    let mut out = std::fs::read(&idx).unwrap();
    IndexEntry::Pruned {
        segment: 0,
        next_base,
        chain_head: prev_hash,
    }
    .encode_into(&mut out)
    .unwrap();
    std::fs::write(&idx, out).unwrap();
    r.fails(
        &d,
        "a deleted first segment with a forged retention mark",
        &["MissingSegment", &file_name(&segs[1])],
    );
}
