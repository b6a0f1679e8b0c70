//! The SSH gateway end to end: real OpenSSH `sshd` as the upstream, real
//! `ssh`/`scp`/`sftp` (through sshpass) and Paramiko as callers, the token
//! as the SSH password (tests/common/sshgw.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sshgw::{Options, RM_MESSAGE, SshGateway, keygen, pin, sha256, text};

#[test]
fn exec_output_and_exit_status_pass_through() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    let o = g.ssh(&token, "echo hello from $(whoami)");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from root\n");
    let o = g.ssh(&token, "sh -c 'echo oops >&2; exit 3'");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    // A signal is passed on as one: OpenSSH exits 255 for a remote signal.
    let o = g.ssh(&token, "kill -TERM $$");
    assert_eq!(o.status.code(), Some(255), "{}", text(&o));
    // Paramiko: the same token as the password, exec and exit status.
    let out = common::python(
        r#"
import sys, paramiko
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=int(sys.argv[1]), username="deploy", password=sys.argv[2],
          allow_agent=False, look_for_keys=False, timeout=20)
_, out, err = c.exec_command("printf paramiko; exit 7")
print(out.read().decode(), out.channel.recv_exit_status())
c.close()
"#,
        &[&g.port.to_string(), &token],
    );
    assert_eq!(out, "paramiko 7");
}

#[test]
fn bad_tokens_are_refused() {
    let g = SshGateway::start();
    let o = g.ssh("not-a-token", "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("should-not-run"));
    // A valid token of a group the target does not admit.
    let other = g.token("intruder", "other");
    let o = g.ssh(&other, "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("should-not-run"));
    assert_eventually!(
        g.gw.log_count("\"error\":\"authentication:") >= 2,
        std::time::Duration::from_secs(10),
        "no authentication failures logged: {}",
        g.gw.log_text()
    );
    // Nothing reached the host.
    assert!(
        !g.sshd.log_text().contains("Accepted publickey"),
        "{}",
        g.sshd.log_text()
    );
}

#[test]
fn a_blocked_exec_gets_126_and_does_not_run() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    let victim = tempfile::tempdir().unwrap();
    let keep = victim.path().join("keep.txt");
    std::fs::write(&keep, "still here").unwrap();
    let o = g.ssh(&token, &format!("rm   -rf {}", victim.path().display()));
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(RM_MESSAGE),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "still here");
    // The session goes on: the next channel runs.
    let o = g.ssh(&token, "echo after");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "after\n",
        "{}",
        text(&o)
    );
}

#[test]
fn scp_and_sftp_move_10_mb_intact() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    let local = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let src = local.path().join("src.bin");
    let mut data = vec![0u8; 10 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&src, &data).unwrap();
    let want = sha256(&src);
    // scp (OpenSSH 9 speaks sftp underneath) up, then down.
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
    // The legacy scp protocol (an exec of `scp -t`).
    let legacy = remote.path().join("legacy.bin");
    let o = g.sshpass_scp_legacy(&token, &src, &legacy);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256(&legacy), want);
    // sftp with a batch.
    let got = local.path().join("sftp.bin");
    let batch = local.path().join("batch");
    std::fs::write(&batch, format!("get {} {}\n", up.display(), got.display())).unwrap();
    let o = g.sftp(&token, &batch);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha256(&got), want);
    // Recorded as subsystem requests, the bytes capped.
    let export = g.export();
    assert!(export.contains("subsystem sftp"), "{export}");
}

#[test]
fn an_upstream_host_key_not_pinned_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, other) = keygen(dir.path(), "other");
    let g = SshGateway::with(Options {
        pin: Some(&other),
        ..Options::default()
    });
    let token = g.token("ci-job", "ci");
    let o = g.ssh(&token, "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("should-not-run"));
    assert_eventually!(
        g.gw.log_text().contains("host key is not pinned"),
        std::time::Duration::from_secs(10),
        "no host key refusal logged: {}",
        g.gw.log_text()
    );
    assert!(g.gw.log_text().contains(&pin(&g.sshd.host_public)));
    assert!(!g.sshd.log_text().contains("Accepted publickey"));
}

#[test]
fn the_recording_shows_execs_and_never_the_stored_key_or_token() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    let o = g.ssh(&token, "echo recorded-output");
    assert!(o.status.success(), "{}", text(&o));
    let o = g.ssh(&token, "rm -rf /nonexistent-dir");
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    // Session end records are written once each connection closed.
    assert_eventually!(
        g.export().matches("session_end").count() >= 2,
        std::time::Duration::from_secs(10),
        "sessions not ended: {}",
        g.export()
    );
    let export = g.export();
    assert!(export.contains("exec echo recorded-output"), "{export}");
    assert!(export.contains("recorded-output\\n"), "{export}");
    assert!(export.contains("\"ssh.stream\":\"stdout\""), "{export}");
    assert!(export.contains("exec rm -rf /nonexistent-dir"), "{export}");
    assert!(export.contains("no-rm-rf"), "{export}");
    assert!(export.contains("\"protocol\":\"ssh\""), "{export}");
    let all = g.log_and_export();
    let key = std::fs::read_to_string(&g.sshd.client_key).unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!all.contains(line), "the stored key leaked: {line}");
    }
    let sig = token.rsplit('.').next().unwrap();
    assert!(!all.contains(sig), "the caller's token leaked");
}

#[test]
fn a_shell_with_a_pty_and_keyboard_interactive() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    // Paramiko: keyboard-interactive answering the Token prompt, then a
    // shell on a pty; the typed line runs and the exit status comes back.
    let out = common::python(
        r#"
import sys, time, paramiko
t = paramiko.Transport(("127.0.0.1", int(sys.argv[1])))
t.start_client(timeout=20)
t.auth_interactive("deploy", lambda title, instr, prompts: [sys.argv[2] for _ in prompts])
ch = t.open_session()
ch.get_pty(term="xterm", width=80, height=24)
ch.invoke_shell()
ch.sendall(b"echo $((6*7))x; exit 5\n")
buf = b""
while True:
    d = ch.recv(4096)
    if not d:
        break
    buf += d
print("42x" in buf.decode(errors="replace"), ch.recv_exit_status())
t.close()
"#,
        &[&g.port.to_string(), &token],
    );
    assert_eq!(out, "True 5");
    assert_eventually!(
        g.export().contains(": shell\""),
        std::time::Duration::from_secs(10),
        "shell not recorded: {}",
        g.export()
    );
}

#[test]
fn a_revocation_ends_a_live_session_and_refuses_the_next() {
    let g = SshGateway::start();
    let token = g.token("eve", "ci");
    let mut child = g.ssh_spawn(&token, &[], "echo started; sleep 60");
    assert_eventually!(
        g.gw.log_count("session opened") >= 1,
        std::time::Duration::from_secs(20),
        "no session: {}",
        g.gw.log_text()
    );
    let out =
        g.gw.cli(&["revoke", "--subject", "eve", "--reason", "leaked"]);
    assert!(out.status.success(), "{out:?}");
    assert_eventually!(
        child.try_wait().unwrap().is_some(),
        std::time::Duration::from_secs(10),
        "the revoked session is still open"
    );
    let o = g.ssh(&token, "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("should-not-run"));
}

#[test]
fn port_forwarding_is_refused_and_recorded() {
    let g = SshGateway::start();
    let token = g.token("ci-job", "ci");
    // stdio forwarding: a direct-tcpip channel to the host's own sshd.
    let target = format!("127.0.0.1:{}", g.sshd.port);
    let o = g.ssh_with(&token, &["-W", &target], "");
    assert!(!o.status.success(), "{}", text(&o));
    // Remote forwarding with ExitOnForwardFailure.
    let o = g.ssh_with(
        &token,
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "127.0.0.1:0:127.0.0.1:1",
        ],
        "echo should-not-run",
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("should-not-run"));
    assert_eventually!(
        {
            let e = g.export();
            e.contains(&format!("direct-tcpip {target}")) && e.contains("tcpip-forward 127.0.0.1")
        },
        std::time::Duration::from_secs(10),
        "refusals not recorded: {}",
        g.export()
    );
    assert!(g.export().contains("\"verdict\":\"block\""));
}

#[test]
fn a_known_hosts_file_trusts_the_upstream_hashed_or_not() {
    for hashed in [false, true] {
        let g = SshGateway::with(Options {
            known_hosts: Some(hashed),
            ..Options::default()
        });
        let token = g.token("ci-job", "ci");
        let o = g.ssh(&token, "echo known");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "known\n",
            "{}",
            text(&o)
        );
        // Another host key on record: refused.
        let dir = tempfile::tempdir().unwrap();
        let (_, other) = keygen(dir.path(), "other");
        let file = g.gw.dir().join("known_hosts");
        std::fs::write(
            &file,
            format!("[127.0.0.1]:{} {}\n", g.sshd.port, pin(&other)),
        )
        .unwrap();
        let o = g.ssh(&token, "echo should-not-run");
        assert!(!o.status.success(), "{}", text(&o));
    }
}
