//! End-to-end: a `tcp` target behind mTLS. The workload certificate (a
//! SPIFFE ID) is the caller's identity; the target admits by group; a
//! revocation ends the live session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::{Ca, client_config};
use common::*;

const CI_ID: &str = "spiffe://prod.example/ns/ci/runner";
const WEB_ID: &str = "spiffe://prod.example/ns/web/frontend";

struct Setup {
    gw: Gateway,
    port: u16,
    ca: std::path::PathBuf,
    dir: std::path::PathBuf,
    revocations: std::path::PathBuf,
    _echo: Echo,
}

fn setup() -> Setup {
    let echo = Echo::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let ca = Ca::new(&d, "workload-ca");
    let other = Ca::new(&d, "other-ca");
    let (cert, key) = ca.server(&d, "gateway");
    ca.spiffe_client(&d, "ci", CI_ID);
    ca.spiffe_client(&d, "web", WEB_ID);
    other.spiffe_client(&d, "impostor", CI_ID);
    let revocations = d.join("revocations.json");
    std::fs::write(&revocations, "[]").unwrap();
    let cfg = format!(
        r#"
[engine]
shards = 2

[identity]
revocation_file = "{rev}"
[identity.mtls]
ca_file = "{ca}"
[[identity.mtls.map]]
pattern = "spiffe://prod.example/ns/ci/*"
groups = ["ci"]

[[target]]
name = "echo"
protocol = "tcp"
listen = ["127.0.0.1:0"]
upstream = "{up}"
[target.tls]
cert_file = "{cert}"
key_file = "{key}"
[target.access]
groups = ["ci"]
"#,
        rev = revocations.display(),
        ca = ca.cert.display(),
        up = echo.addr,
        cert = cert.display(),
        key = key.display(),
    );
    let cfg_path = d.join("tollgate.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut gw = Gateway::spawn_in(tmp, cfg_path);
    gw.wait_ready();
    let port = gw.port("echo");
    Setup {
        gw,
        port,
        ca: ca.cert.clone(),
        dir: d,
        revocations,
        _echo: echo,
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(s: &Setup, client: Option<&str>) -> Tls {
    let files = client.map(|n| {
        (
            s.dir.join(format!("{n}.pem")),
            s.dir.join(format!("{n}.key")),
        )
    });
    let cfg = client_config(
        &s.ca,
        files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::clone(&cfg), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// Whether an echo round trip works on this connection.
fn echoes(t: &mut Tls, msg: &[u8]) -> bool {
    if t.write_all(msg).and_then(|_| t.flush()).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    t.read_exact(&mut back).is_ok() && back == msg
}

#[test]
fn a_trusted_workload_certificate_in_an_admitted_group_is_relayed() {
    let s = setup();
    let mut t = tls_connect(&s, Some("ci"));
    assert!(echoes(&mut t, b"hello over mTLS"), "{}", s.gw.log_text());
    // Many TLS records each way (16 KiB per record), in lock-step so a
    // blocking test client cannot deadlock on full socket buffers.
    for i in 0..40u8 {
        assert!(echoes(&mut t, &vec![i; 40_000]), "round {i}");
    }
    let opened = s.gw.log_events("session opened");
    assert!(opened.iter().any(|e| e["subject"] == CI_ID), "{opened:?}");
}

#[test]
fn no_certificate_another_ca_or_a_group_not_admitted_is_refused() {
    let s = setup();
    for who in [None, Some("impostor"), Some("web")] {
        let mut t = tls_connect(&s, who);
        assert!(!echoes(&mut t, b"let me in"), "{who:?} was relayed");
    }
    assert_eventually!(
        s.gw.log_text().contains("not admitted"),
        Duration::from_secs(5),
        "group refusal not logged:\n{}",
        s.gw.log_text()
    );
    assert!(s.gw.log_text().contains("TLS handshake failed"));
    // A plaintext client does not get through either.
    let mut plain = connect(s.port);
    let _ = plain.write_all(b"plaintext");
    let (got, _) = read_until_closed(&mut plain);
    assert!(!got.windows(9).any(|w| w == b"plaintext"));
}

#[test]
fn revoking_the_subject_ends_the_live_session_within_a_second() {
    let s = setup();
    let mut t = tls_connect(&s, Some("ci"));
    assert!(echoes(&mut t, b"before"));
    let at = Instant::now();
    std::fs::write(&s.revocations, format!(r#"[{{"subject": "{CI_ID}"}}]"#)).unwrap();
    assert_eventually!(
        !echoes(&mut t, b"x"),
        Duration::from_secs(5),
        "the revoked session still relays"
    );
    println!("revocation ended the mTLS session after {:?}", at.elapsed());
    let mut again = tls_connect(&s, Some("ci"));
    assert!(!echoes(&mut again, b"after"));
}
