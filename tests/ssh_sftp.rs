//! The sftp subsystem decoded and judged by path, end to end: real OpenSSH
//! `sshd` (internal-sftp) upstream, real `scp`/`sftp` through sshpass and
//! Paramiko's SFTPClient as callers, the server's filesystem checked
//! directly, and the recording exported (tests/common/sshgw.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::sshgw::{Options, SshGateway, sha256, text};

const DENIED: &str = "writes under denied/ are not allowed through tollgate";

/// A gateway whose sftp rules deny writes under `<remote>/denied` (and
/// audit reads under `<remote>/audited`), keeping 4 KiB of each file.
fn gateway(remote: &Path) -> SshGateway {
    let r = remote.display();
    let ssh = format!(
        r#"record_sftp_file_bytes = 4096
[[target.ssh.sftp_rules]]
name = "denied-writes"
path = "{r}/denied{{,/**}}"
operations = ["write", "remove", "rename", "mkdir", "rmdir", "setstat", "symlink", "link"]
action = "block"
message = "{DENIED}"
[[target.ssh.sftp_rules]]
name = "root-denied"
path = "/root/tollgate-denied*"
action = "block"
[[target.ssh.sftp_rules]]
name = "audited-reads"
path = "{r}/audited/**"
operations = ["read"]
action = "audit"
"#
    );
    SshGateway::with(Options {
        ssh: &ssh,
        ..Options::default()
    })
}

/// `n` bytes that do not compress.
fn noise(path: &Path, n: usize) {
    let mut data = vec![0u8; n];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(path, &data).unwrap();
}

/// The export's command records: (statement, verdict).
fn statements(export: &str) -> Vec<(String, String)> {
    export
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let s = v.get("statement")?.as_str()?.to_string();
            let verdict = v.get("verdict")?.as_str()?.to_string();
            Some((s, verdict))
        })
        .collect()
}

fn find<'a>(st: &'a [(String, String)], needle: &str) -> &'a (String, String) {
    st.iter()
        .find(|(s, _)| s.contains(needle))
        .unwrap_or_else(|| panic!("no statement with {needle:?} in {st:#?}"))
}

#[test]
fn scp_moves_100_mb_both_ways_through_the_decoding_relay() {
    let remote = tempfile::tempdir().unwrap();
    let g = gateway(remote.path());
    let token = g.token("ci-job", "ci");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src.bin");
    noise(&src, 100 << 20);
    let want = sha256(&src);
    let up = remote.path().join("up.bin");
    let o = g.scp(
        &token,
        &src.display().to_string(),
        &format!(":{}", up.display()),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256(&up), want);
    let down = local.path().join("down.bin");
    let o = g.scp(
        &token,
        &format!(":{}", up.display()),
        &down.display().to_string(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256(&down), want);
    // Each CLOSE records the file's size and the SHA-256 of all of it,
    // with the first 4 KiB kept.
    let export = g.export();
    let st = statements(&export);
    let closes: Vec<_> = st
        .iter()
        .filter(|(s, _)| s.contains(&format!("sftp close {}", up.display())))
        .collect();
    assert_eq!(closes.len(), 2, "{closes:#?}");
    let written = format!("written 104857600 bytes, sha256 {want}, first 4096 bytes recorded");
    let read = format!("read 104857600 bytes, sha256 {want}, first 4096 bytes recorded");
    assert!(closes[0].0.contains(&written), "{closes:#?}");
    assert!(closes[1].0.contains(&read), "{closes:#?}");
    assert!(
        export.contains("\"ssh.stream\":\"file-written\""),
        "{export}"
    );
    assert!(export.contains("\"ssh.stream\":\"file-read\""), "{export}");
}

#[test]
fn sftp_batch_operations_reach_the_disk_and_denied_ones_do_not() {
    let remote = tempfile::tempdir().unwrap();
    let r = remote.path();
    std::fs::create_dir(r.join("denied")).unwrap();
    std::fs::write(r.join("denied/keep.txt"), "keep").unwrap();
    let g = gateway(r);
    let token = g.token("ci-job", "ci");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("a.txt");
    std::fs::write(&src, "hello sftp\n").unwrap();
    let got = local.path().join("got.txt");
    let batch = local.path().join("batch");
    let rd = r.display();
    std::fs::write(
        &batch,
        format!(
            "mkdir {rd}/dir\nput {src} {rd}/dir/a.txt\nrename {rd}/dir/a.txt {rd}/dir/b.txt\n\
             get {rd}/dir/b.txt {got}\nput {src} {rd}/dir/gone.txt\nrm {rd}/dir/gone.txt\n\
             put {src} {rd}/dir/c.txt\n",
            src = src.display(),
            got = got.display()
        ),
    )
    .unwrap();
    let o = g.sftp(&token, &batch);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(r.join("dir/b.txt")).unwrap(),
        "hello sftp\n"
    );
    assert!(!r.join("dir/a.txt").exists());
    assert!(!r.join("dir/gone.txt").exists());
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "hello sftp\n");
    // A write under the denied path: refused, nothing on disk.
    std::fs::write(
        &batch,
        format!("put {} {rd}/denied/new.txt\n", src.display()),
    )
    .unwrap();
    let o = g.sftp(&token, &batch);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
    assert!(!r.join("denied/new.txt").exists());
    // `..` does not get around it.
    std::fs::write(
        &batch,
        format!("put {} {rd}/dir/../denied/dots.txt\n", src.display()),
    )
    .unwrap();
    let o = g.sftp(&token, &batch);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!r.join("denied/dots.txt").exists());
    // Rename into the denied path: refused, the file stays where it was.
    std::fs::write(&batch, format!("rename {rd}/dir/c.txt {rd}/denied/c.txt\n")).unwrap();
    let o = g.sftp(&token, &batch);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(r.join("dir/c.txt").exists());
    assert!(!r.join("denied/c.txt").exists());
    // Remove and mkdir there too; reading is still allowed.
    std::fs::write(&batch, format!("rm {rd}/denied/keep.txt\n")).unwrap();
    assert!(!g.sftp(&token, &batch).status.success());
    std::fs::write(&batch, format!("mkdir {rd}/denied/sub\n")).unwrap();
    assert!(!g.sftp(&token, &batch).status.success());
    assert!(!r.join("denied/sub").exists());
    let kept = local.path().join("keep.txt");
    std::fs::write(
        &batch,
        format!("get {rd}/denied/keep.txt {}\n", kept.display()),
    )
    .unwrap();
    let o = g.sftp(&token, &batch);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(r.join("denied/keep.txt")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "keep");
    // Recorded: each operation with its path and verdict.
    let st = statements(&g.export());
    assert_eq!(find(&st, &format!("sftp mkdir {rd}/dir")).1, "allow");
    assert_eq!(find(&st, &format!("sftp write {rd}/dir/a.txt")).1, "allow");
    assert_eq!(
        find(&st, &format!("sftp rename {rd}/dir/a.txt {rd}/dir/b.txt")).1,
        "allow"
    );
    assert_eq!(
        find(&st, &format!("sftp remove {rd}/dir/gone.txt")).1,
        "allow"
    );
    assert_eq!(
        find(&st, &format!("sftp write {rd}/denied/new.txt")).1,
        "block"
    );
    assert_eq!(
        find(&st, &format!("sftp write {rd}/denied/dots.txt")).1,
        "block"
    );
    assert_eq!(
        find(
            &st,
            &format!("sftp rename {rd}/dir/c.txt {rd}/denied/c.txt")
        )
        .1,
        "block"
    );
    assert_eq!(
        find(&st, &format!("sftp remove {rd}/denied/keep.txt")).1,
        "block"
    );
    assert_eq!(
        find(&st, &format!("sftp read {rd}/denied/keep.txt")).1,
        "allow"
    );
    let close = find(&st, &format!("sftp close {rd}/dir/a.txt"));
    let digest = sha256(&src);
    assert!(
        close.0.contains(&format!(
            "written 11 bytes, sha256 {digest}, first 11 bytes recorded"
        )),
        "{close:?}"
    );
}

#[test]
fn paramiko_sees_the_rules_message_and_relative_paths_fail_closed() {
    let remote = tempfile::tempdir().unwrap();
    let r = remote.path();
    std::fs::create_dir(r.join("denied")).unwrap();
    std::fs::create_dir(r.join("audited")).unwrap();
    std::fs::write(r.join("audited/report.txt"), "audited bytes").unwrap();
    let g = gateway(r);
    let token = g.token("ci-job", "ci");
    // In root's home (the session's directory), named for this run so that
    // nothing left by another run can stand in for it.
    let rel = format!("tollgate-denied-rel-{}", std::process::id());
    let out = common::python(
        r#"
import sys, paramiko
port, token, remote, rel = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
t = paramiko.Transport(("127.0.0.1", port))
t.connect(username="deploy", password=token)
s = paramiko.SFTPClient.from_transport(t)
def attempt(name, f):
    try:
        f()
        print(name, "ok")
    except IOError as e:
        print(name, "refused:", e)
# Relative before the session's directory is known: refused.
attempt("relative-mkdir", lambda: s.mkdir("tollgate-relative"))
with s.open(remote + "/ok.txt", "w") as f:
    f.write(b"paramiko bytes")
attempt("denied-write", lambda: s.open(remote + "/denied/p.txt", "w"))
attempt("denied-rename", lambda: s.rename(remote + "/ok.txt", remote + "/denied/ok.txt"))
attempt("denied-posix-rename", lambda: s.posix_rename(remote + "/ok.txt", remote + "/denied/ok.txt"))
attempt("denied-symlink", lambda: s.symlink("/etc/passwd", remote + "/denied/link"))
print("listing", sorted(s.listdir(remote)))
print("audited", s.open(remote + "/audited/report.txt").read().decode())
attempt("rename", lambda: s.rename(remote + "/ok.txt", remote + "/moved.txt"))
attempt("remove", lambda: s.remove(remote + "/moved.txt"))
# Relative paths after REALPATH "." are judged against the answer.
print("home", s.normalize("."))
attempt("relative-mkdir-home", lambda: s.mkdir(rel))
s.close()
t.close()
"#,
        &[&g.port.to_string(), &token, &r.display().to_string(), &rel],
    );
    let lines: Vec<&str> = out.lines().collect();
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    assert!(
        line("relative-mkdir").contains("relative sftp path"),
        "{out}"
    );
    assert!(line("denied-write").contains(DENIED), "{out}");
    assert!(line("denied-rename").contains(DENIED), "{out}");
    assert!(line("denied-posix-rename").contains(DENIED), "{out}");
    assert!(line("denied-symlink").contains(DENIED), "{out}");
    assert!(line("listing").contains("'ok.txt'"), "{out}");
    assert_eq!(line("audited"), "audited audited bytes");
    assert_eq!(line("rename"), "rename ok");
    assert_eq!(line("remove"), "remove ok");
    assert_eq!(line("home"), "home /root");
    assert!(
        line("relative-mkdir-home").contains("blocked by rule root-denied"),
        "{out}"
    );
    assert!(!Path::new("/root").join(&rel).exists());
    assert!(!r.join("denied/p.txt").exists());
    assert!(!r.join("denied/ok.txt").exists());
    assert!(!r.join("denied/link").exists());
    assert!(!r.join("moved.txt").exists());
    let st = statements(&g.export());
    let audited = find(
        &st,
        &format!("sftp read {}/audited/report.txt", r.display()),
    );
    assert_eq!(audited.1, "audit");
    assert_eq!(find(&st, "sftp mkdir tollgate-relative").1, "block");
    assert_eq!(find(&st, &format!("sftp mkdir /root/{rel}")).1, "block");
}

#[test]
fn targets_without_sftp_rules_relay_sftp_unchanged_and_approve_is_refused() {
    // No sftp keys: the bytes pass through, no sftp statements.
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let src = local.path().join("a.txt");
    std::fs::write(&src, "plain").unwrap();
    let batch = local.path().join("batch");
    let dst = remote.path().join("a.txt");
    std::fs::write(&batch, format!("put {} {}\n", src.display(), dst.display())).unwrap();
    let o = g.sftp(&token, &batch);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "plain");
    let export = g.export();
    assert!(export.contains("subsystem sftp"), "{export}");
    assert!(!export.contains("sftp write"), "{export}");
    // `approve` on an sftp rule does not pass `tollgate check`.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.toml");
    let text = std::fs::read_to_string(&g.gw.config).unwrap().replace(
        "[[target.ssh.rules]]",
        "[[target.ssh.sftp_rules]]\nname = \"held\"\npath = \"/etc/**\"\naction = \"approve\"\n\
         [[target.ssh.rules]]",
    );
    std::fs::write(&cfg, text).unwrap();
    let o = g.gw.cli(&["check", "--config", cfg.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{said}");
    assert!(said.contains("approve is not supported for sftp"), "{said}");
}
