//! SSH caller identity beyond the token: OpenSSH user certificates made by
//! `ssh-keygen -s` (`[identity.ssh] ca_keys`), plain keys listed for a
//! subject (`[[identity.ssh.key]]`), and `LOGIN+TARGET` routing between two
//! ssh targets on one listener. Real `sshd` upstream, real `ssh` and
//! Paramiko callers (tests/common/sshgw.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::sshgw::{Options, SshGateway, keygen, text};

/// `ssh-keygen -s CA` over `user`'s public key with `args`; the certificate file.
fn sign(dir: &Path, ca: &Path, user: &Path, args: &[&str]) -> PathBuf {
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(args)
        .arg(user.with_extension("pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let name = format!("{}-cert.pub", user.file_name().unwrap().to_string_lossy());
    let cert = dir.join(name);
    assert!(cert.exists(), "{}", cert.display());
    cert
}

/// `ssh -i key [-o CertificateFile=cert] -p port user@gateway command`,
/// public key only, no agent, no other identities.
fn ssh_key(g: &SshGateway, user: &str, key: &Path, cert: Option<&Path>, command: &str) -> Output {
    let mut c = Command::new("timeout");
    c.args(["60", "ssh"]);
    for o in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "PreferredAuthentications=publickey",
        "BatchMode=yes",
        "LogLevel=ERROR",
        "ConnectTimeout=20",
    ] {
        c.args(["-o", o]);
    }
    c.arg("-i").arg(key);
    if let Some(cert) = cert {
        c.arg("-o")
            .arg(format!("CertificateFile={}", cert.display()));
    }
    c.args([
        "-p",
        &g.port.to_string(),
        &format!("{user}@127.0.0.1"),
        command,
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap()
}

/// `sshpass -e ssh` as `user` with the token, publickey offered first when `key` is given.
fn ssh_token(g: &SshGateway, user: &str, token: &str, key: Option<&Path>, command: &str) -> Output {
    let mut c = Command::new("timeout");
    c.args(["60", "sshpass", "-e", "ssh"]);
    let auth = if key.is_some() {
        "PreferredAuthentications=publickey,password"
    } else {
        "PreferredAuthentications=password"
    };
    for o in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        auth,
        "NumberOfPasswordPrompts=1",
        "LogLevel=ERROR",
        "ConnectTimeout=20",
    ] {
        c.args(["-o", o]);
    }
    if let Some(key) = key {
        c.arg("-i").arg(key);
    } else {
        c.args(["-o", "PubkeyAuthentication=no"]);
    }
    c.args([
        "-p",
        &g.port.to_string(),
        &format!("{user}@127.0.0.1"),
        command,
    ])
    .env("SSHPASS", token)
    .stdin(Stdio::null())
    .output()
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A gateway trusting the CA `ca_pub`, with `revoked` in `revoked_keys`
/// (and, when given, listing `listed` for `ci-deploy`).
fn gateway_with(ca_pub: &str, revoked: &str, listed: Option<&str>) -> SshGateway {
    let mut identity =
        format!("[identity.ssh]\nca_keys = [\"{ca_pub}\"]\nrevoked_keys = [\"{revoked}\"]\n");
    if let Some(k) = listed {
        identity.push_str(&format!(
            "[[identity.ssh.key]]\nsubject = \"ci-deploy\"\ngroups = [\"ci\"]\nkeys = [\"{k}\"]\n"
        ));
    }
    SshGateway::with(Options {
        identity: &identity,
        ..Options::default()
    })
}

#[test]
fn a_user_certificate_from_the_trusted_ca_is_the_callers_identity() {
    let d = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(d.path(), "user_ca");
    let (alice, _) = keygen(d.path(), "alice");
    let (_, other) = keygen(d.path(), "other");
    let g = gateway_with(&ca_pub, &other, None);
    let cert = sign(
        d.path(),
        &ca,
        &alice,
        &[
            "-I",
            "alice@laptop-ticket-7",
            "-n",
            "alice",
            "-V",
            "-5m:+10m",
            "-O",
            "extension:groups@tollgate=ci,ops",
        ],
    );
    let o = ssh_key(&g, "deploy", &alice, Some(&cert), "echo cert-$(whoami)");
    assert!(o.status.success(), "{}\n{}", text(&o), g.gw.log_text());
    assert_eq!(stdout(&o), "cert-root\n");
    // The log and the recording name the certificate's subject and CA.
    assert_eventually!(
        g.gw.log_text().contains("\"subject\":\"alice\""),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    let log = g.gw.log_text();
    assert!(log.contains("ssh-ca SHA256:"), "{log}");
    let export = g.export();
    assert!(export.contains("alice"), "{export}");
    assert!(export.contains("exec echo cert-$(whoami)"), "{export}");
    // Paramiko with the same certificate.
    let out = common::python(
        r#"
import sys, paramiko
k = paramiko.Ed25519Key.from_private_key_file(sys.argv[2])
k.load_certificate(sys.argv[3])
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=int(sys.argv[1]), username="deploy", pkey=k,
          allow_agent=False, look_for_keys=False, timeout=20)
_, out, _ = c.exec_command("printf paramiko-cert; exit 5")
print(out.read().decode(), out.channel.recv_exit_status())
c.close()
"#,
        &[
            &g.port.to_string(),
            &alice.display().to_string(),
            &cert.display().to_string(),
        ],
    );
    assert_eq!(out, "paramiko-cert 5");
    // Revoking the certificate's key id refuses it from then on.
    let out = g.gw.cli(&["revoke", "--token-id", "alice@laptop-ticket-7"]);
    assert!(out.status.success(), "{out:?}");
    let o = ssh_key(&g, "deploy", &alice, Some(&cert), "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!stdout(&o).contains("should-not-run"));
    assert_eventually!(
        g.gw.log_text()
            .contains("token id \\\"alice@laptop-ticket-7\\\""),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
}

#[test]
fn expired_untrusted_unadmitted_and_plain_certificate_keys_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (ca, ca_pub) = keygen(d.path(), "user_ca");
    let (rogue_ca, _) = keygen(d.path(), "rogue_ca");
    let (leaked, leaked_pub) = keygen(d.path(), "leaked");
    let g = gateway_with(&ca_pub, &leaked_pub, None);
    let refused = |o: &Output| {
        assert!(!o.status.success(), "{}", text(o));
        assert!(!stdout(o).contains("should-not-run"), "{}", text(o));
    };
    // Expired an hour ago. russh refuses a certificate outside its window
    // before tollgate's own check (which repeats it) and logs why.
    let (old, _) = keygen(d.path(), "old");
    let cert = sign(
        d.path(),
        &ca,
        &old,
        &["-I", "old", "-n", "alice", "-V", "-2h:-1h"],
    );
    refused(&ssh_key(
        &g,
        "deploy",
        &old,
        Some(&cert),
        "echo should-not-run",
    ));
    assert_eventually!(
        g.gw.log_count("Certificate is expired or not yet valid") == 1,
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // Not valid for another hour.
    let (early, _) = keygen(d.path(), "early");
    let cert = sign(
        d.path(),
        &ca,
        &early,
        &["-I", "early", "-n", "alice", "-V", "+1h:+2h"],
    );
    refused(&ssh_key(
        &g,
        "deploy",
        &early,
        Some(&cert),
        "echo should-not-run",
    ));
    assert_eventually!(
        g.gw.log_count("Certificate is expired or not yet valid") == 2,
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // Signed by a CA the gateway does not trust.
    let (mallory, _) = keygen(d.path(), "mallory");
    let cert = sign(
        d.path(),
        &rogue_ca,
        &mallory,
        &["-I", "m", "-n", "alice", "-V", "-5m:+5m"],
    );
    refused(&ssh_key(
        &g,
        "deploy",
        &mallory,
        Some(&cert),
        "echo should-not-run",
    ));
    assert_eventually!(
        g.gw.log_text()
            .contains("signed by a CA [identity.ssh] does not trust"),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // Trusted and valid, but its groups are not the target's.
    let (bob, _) = keygen(d.path(), "bob");
    let cert = sign(
        d.path(),
        &ca,
        &bob,
        &[
            "-I",
            "bob",
            "-n",
            "bob",
            "-V",
            "-5m:+5m",
            "-O",
            "extension:groups@tollgate=other",
        ],
    );
    refused(&ssh_key(
        &g,
        "deploy",
        &bob,
        Some(&cert),
        "echo should-not-run",
    ));
    assert_eventually!(
        g.gw.log_text().contains("not admitted"),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // A valid certificate for a key in revoked_keys.
    let cert = sign(
        d.path(),
        &ca,
        &leaked,
        &["-I", "l", "-n", "alice", "-V", "-5m:+5m"],
    );
    refused(&ssh_key(
        &g,
        "deploy",
        &leaked,
        Some(&cert),
        "echo should-not-run",
    ));
    assert_eventually!(
        g.gw.log_text().contains("is in revoked_keys"),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // Without its certificate the same key is a plain key nobody listed.
    let (carol, _) = keygen(d.path(), "carol");
    refused(&ssh_key(&g, "deploy", &carol, None, "echo should-not-run"));
    // Nothing reached the host but the gateway's own logins (none here).
    assert!(
        !g.sshd.log_text().contains("Accepted publickey"),
        "{}",
        g.sshd.log_text()
    );
}

#[test]
fn only_listed_plain_keys_are_identities_and_others_leave_the_password_open() {
    let d = tempfile::tempdir().unwrap();
    let (_, ca_pub) = keygen(d.path(), "user_ca");
    let (listed, listed_pub) = keygen(d.path(), "listed");
    let (unlisted, _) = keygen(d.path(), "unlisted");
    let (_, other) = keygen(d.path(), "other");
    let g = gateway_with(&ca_pub, &other, Some(&listed_pub));
    let o = ssh_key(&g, "deploy", &listed, None, "echo key-$(whoami)");
    assert!(o.status.success(), "{}\n{}", text(&o), g.gw.log_text());
    assert_eq!(stdout(&o), "key-root\n");
    assert_eventually!(
        g.gw.log_text().contains("\"subject\":\"ci-deploy\""),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    let o = ssh_key(&g, "deploy", &unlisted, None, "echo should-not-run");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!stdout(&o).contains("should-not-run"));
    // The unlisted key is turned away without spending the connection's
    // one attempt: the token that follows on the same connection works.
    let token = g.token("ci-job", "ci");
    let o = ssh_token(
        &g,
        "deploy",
        &token,
        Some(&unlisted),
        "echo token-after-key",
    );
    assert!(o.status.success(), "{}\n{}", text(&o), g.gw.log_text());
    assert_eq!(stdout(&o), "token-after-key\n");
}

#[test]
fn login_plus_target_picks_one_of_two_targets_on_a_listener() {
    let g = SshGateway::with(Options {
        second_target: Some((
            "web-2",
            "[[target.ssh.rules]]\nname = \"no-hostname\"\ncommand = \"hostname*\"\n\
             action = \"block\"\nmessage = \"hostname is not for web-2\"\n",
        )),
        ..Options::default()
    });
    assert_eq!(g.gw.port("web-2"), g.port);
    let token = g.token("ci-job", "ci");
    // Through web (no such rule) the command runs; through web-2 it is blocked.
    let o = ssh_token(&g, "deploy+web", &token, None, "hostname");
    assert!(o.status.success(), "{}\n{}", text(&o), g.gw.log_text());
    let o = ssh_token(&g, "deploy+web-2", &token, None, "hostname");
    assert_eq!(o.status.code(), Some(126), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hostname is not for web-2"),
        "{}",
        text(&o)
    );
    // A '+' in the login part: the last one splits.
    let o = ssh_token(&g, "de+ploy+web", &token, None, "echo plus");
    assert!(o.status.success(), "{}\n{}", text(&o), g.gw.log_text());
    // No such target, and no target at all on a shared listener.
    for user in ["deploy+web-3", "deploy"] {
        let o = ssh_token(&g, user, &token, None, "echo should-not-run");
        assert!(!o.status.success(), "{user}: {}", text(&o));
        assert!(!stdout(&o).contains("should-not-run"));
    }
    assert_eventually!(
        g.gw.log_count("names no target on this listener") >= 2,
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    // The recordings name each session's target.
    let log = g.gw.log_text();
    assert!(log.contains("\"target\":\"web-2\""), "{log}");
}
