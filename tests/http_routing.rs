//! Several http targets on one listener, told apart by `Host` (and over
//! TLS by the name the client asks for): each host reaches its own
//! upstream with its own credential, an unknown host gets `421`, a
//! connection stays with the host it was opened for, and over TLS each
//! host presents its own certificate and a `Host` other than the SNI name
//! is refused. Real nginx upstream, real curl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use common::httpgw::{HttpGateway, Nginx, Options};
use common::{connect, read_until_closed};

/// The gateway's log once it holds `needle` (a refusal is logged after
/// the caller read its answer).
fn log_with(g: &HttpGateway, needle: &str) -> String {
    assert_eventually!(
        g.gw.log_text().contains(needle),
        std::time::Duration::from_secs(10),
        "no {needle:?} in the log: {}",
        g.gw.log_text()
    );
    g.gw.log_text()
}

const BILLING_SECRET: &str = "billing-api-key-7f3a";

/// A second target, `billing` (host `billing.test`), on the first one's
/// listener, sending its key as `X-Api-Key`; `tls`: its certificate.
fn billing(
    dir: &std::path::Path,
    upstream: u16,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> String {
    billing_routed(dir, upstream, tls, "host = \"billing.test\"")
}

/// `billing` routed by `route` (its `host` or `path_prefix` line).
fn billing_routed(
    dir: &std::path::Path,
    upstream: u16,
    tls: Option<(&std::path::Path, &std::path::Path)>,
    route: &str,
) -> String {
    let secret = dir.join("billing.secret");
    std::fs::write(&secret, BILLING_SECRET).unwrap();
    let tls = tls.map_or(String::new(), |(c, k)| {
        format!(
            "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            c.display(),
            k.display()
        )
    });
    format!(
        "[[target]]\nname = \"billing\"\nprotocol = \"http\"\nlisten = [\"127.0.0.1:0\"]\n\
         upstream = \"127.0.0.1:{upstream}\"\n[target.credential]\nuser = \"svc\"\n\
         password_file = \"{}\"\n{tls}[target.access]\ngroups = [\"ci\"]\n[target.http]\n\
         {route}\ncredential_header = \"X-Api-Key\"\ncredential_scheme = \"raw\"\n",
        secret.display()
    )
}

#[test]
fn hosts_pick_their_target_and_a_connection_keeps_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(None, "75s");
    let tables = billing(dir.path(), nginx.port, None);
    let g = HttpGateway::with(Options {
        http: "host = \"api.test\"",
        tables: &tables,
        upstream: Some(nginx.port),
        ..Options::default()
    });
    let t = g.token("ci-job", "ci");
    let auth = format!("Authorization: Bearer {t}");
    let url = g.url("/items/1");

    let (ok, out) = g.curl(&["-H", "Host: api.test", "-H", &auth, &url]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    let (ok, out) = g.curl(&["-H", "Host: BILLING.test:8080", "-H", &auth, &url]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    let log = nginx.access_lines(2);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains("auth=[Bearer ") && lines[0].contains("key=[-]"),
        "{log}"
    );
    assert!(
        lines[1].contains("auth=[-]") && lines[1].contains(&format!("key=[{BILLING_SECRET}]")),
        "{log}"
    );

    // A host no target answers for, and none at all (HTTP/1.0).
    let (_, out) = g.curl(&["-H", "Host: other.test", "-H", &auth, &url]);
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    let mut s = connect(g.port);
    s.write_all(format!("GET /items/1 HTTP/1.0\r\n{auth}\r\n\r\n").as_bytes())
        .unwrap();
    let (got, _) = read_until_closed(&mut s);
    assert!(
        got.starts_with(b"HTTP/1.1 421"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // A kept-alive connection opened for api.test cannot reach billing.
    let mut s = connect(g.port);
    s.write_all(
        format!(
            "GET /items/2 HTTP/1.1\r\nHost: api.test\r\n{auth}\r\n\r\n\
             GET /items/3 HTTP/1.1\r\nHost: billing.test\r\n{auth}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let (got, _) = read_until_closed(&mut s);
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("item GET /items/2"), "{got}");
    assert!(got.contains("HTTP/1.1 421"), "{got}");
    assert!(!nginx.access().contains("/items/3"), "{}", nginx.access());
    let log = log_with(&g, "a request for target");
    let why = r#"a request for target \"billing\" on a connection for \"api\""#;
    assert!(log.contains(why), "{log}");
}

#[test]
fn over_tls_each_host_has_its_certificate_and_sni_must_match_host() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(None, "75s");
    let ca = common::pki::Ca::new(dir.path(), "billing-ca");
    let (cert, key) = ca.issue(
        dir.path(),
        "billing",
        vec![rcgen::SanType::DnsName("billing.test".try_into().unwrap())],
        true,
    );
    let tables = billing(dir.path(), nginx.port, Some((&cert, &key)));
    let g = HttpGateway::with(Options {
        http: "host = \"localhost\"",
        tables: &tables,
        tls: true,
        plain_upstream: true,
        upstream: Some(nginx.port),
        ..Options::default()
    });
    // The caller trusts both CAs: which certificate it gets is checked by
    // curl's name verification.
    let bundle = dir.path().join("bundle.pem");
    let cas = std::fs::read_to_string(g.ca.as_ref().unwrap()).unwrap()
        + &std::fs::read_to_string(&ca.cert).unwrap();
    std::fs::write(&bundle, cas).unwrap();
    let bundle = bundle.display().to_string();
    let t = g.token("ci-job", "ci");
    let auth = format!("Authorization: Bearer {t}");
    let resolve = |host: &str| format!("{host}:{}:127.0.0.1", g.port);
    let url = |host: &str| format!("https://{host}:{}/items/1", g.port);

    for host in ["localhost", "billing.test"] {
        let (ok, out) = g.curl(&[
            "--cacert",
            &bundle,
            "--resolve",
            &resolve(host),
            "-H",
            &auth,
            &url(host),
        ]);
        assert!(ok && out.starts_with("HTTP/1.1 200"), "{host}: {out}");
    }
    let log = nginx.access_lines(2);
    assert!(log.contains(&format!("key=[{BILLING_SECRET}]")), "{log}");

    // SNI billing.test, Host localhost: refused, nothing upstream.
    let (_, out) = g.curl(&[
        "--cacert",
        &bundle,
        "--resolve",
        &resolve("billing.test"),
        "-H",
        "Host: localhost",
        "-H",
        &auth,
        &url("billing.test"),
    ]);
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    assert_eq!(nginx.access().lines().count(), 2, "{}", nginx.access());
    let log = log_with(&g, "on a TLS connection for");
    assert!(log.contains("billing.test"), "{log}");
}

/// `path_prefix`: targets on one listener by path, the longest prefix
/// (whole segments) first; a path no target holds gets 404; a kept-alive
/// connection stays with its first request's target.
#[test]
fn path_prefixes_pick_their_target_longest_first() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(None, "75s");
    let tables = billing_routed(
        dir.path(),
        nginx.port,
        None,
        "path_prefix = \"/items/billing/\"",
    );
    let g = HttpGateway::with(Options {
        http: "path_prefix = \"/items\"",
        tables: &tables,
        upstream: Some(nginx.port),
        ..Options::default()
    });
    let t = g.token("ci-job", "ci");
    let auth = format!("Authorization: Bearer {t}");
    for (path, status) in [
        ("/items/1", "200"),
        ("/items/billing/7", "200"),
        ("/items/billingX", "200"),
        ("/itemsX", "404"),
        ("/", "404"),
    ] {
        let (_, out) = g.curl(&["-H", &auth, &g.url(path)]);
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {out}"
        );
    }
    let log = nginx.access_lines(3);
    let line = |p: &str| log.lines().find(|l| l.contains(p)).unwrap().to_string();
    assert!(line("/items/1 ").contains("auth=[Bearer "), "{log}");
    assert!(
        line("/items/billing/7").contains(&format!("key=[{BILLING_SECRET}]")),
        "{log}"
    );
    assert!(line("/items/billingX").contains("auth=[Bearer "), "{log}");

    let mut s = connect(g.port);
    s.write_all(
        format!(
            "GET /items/2 HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n\
             GET /items/billing/3 HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let (got, _) = read_until_closed(&mut s);
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("HTTP/1.1 200") && got.contains("HTTP/1.1 421"),
        "{got}"
    );
    assert!(
        !nginx.access().contains("/items/billing/3"),
        "{}",
        nginx.access()
    );
}
