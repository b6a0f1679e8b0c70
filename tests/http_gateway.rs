//! The HTTP gateway end to end: nginx as the upstream, curl, Python
//! `requests` and raw sockets as callers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::httpgw::{HttpGateway, SECRET};
use common::{connect, python, read_until_closed};

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

/// Read one response with a Content-Length body (or none) off `s`.
fn read_response(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let len = if head.starts_with("HTTP/1.1 304") || head.contains("X-Head: 1") {
                0
            } else {
                len
            };
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "closed mid-response: {head}");
                buf.extend_from_slice(&chunk[..n]);
            }
            let whole: Vec<u8> = buf.drain(..end + 4 + len).collect();
            return String::from_utf8_lossy(&whole).to_string();
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn token_in_credential_out_and_never_leaked() {
    let g = HttpGateway::start("", "");
    let t = g.token("ci-job", "ci");
    // No token, a bad token, a token of a group without access: one 401.
    let other = g.token("intruder", "nobody");
    for args in [
        vec![g.url("/")],
        vec!["-H".into(), bearer("not-a-jwt"), g.url("/")],
        vec!["-H".into(), bearer(&other), g.url("/")],
        vec![
            "-H".into(),
            "Authorization: Basic Y2k6eA==".into(),
            g.url("/"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, out) = g.curl(&args);
        assert!(out.starts_with("HTTP/1.1 401"), "{out}");
        assert!(
            out.contains("WWW-Authenticate: Bearer error=\"invalid_token\""),
            "{out}"
        );
        assert!(out.contains("authentication failed"), "{out}");
    }
    assert_eq!(g.nginx.access(), "", "a refused request reached nginx");
    let (ok, out) = g.curl(&["-H", &bearer(&t), &g.url("/items/7?q=1")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("item GET /items/7"), "{out}");
    assert!(out.contains("Via: 1.1 tollgate"), "{out}");
    let access = g.nginx.access_lines(1);
    assert!(
        access.contains(&format!("auth=[Bearer {SECRET}]")),
        "{access}"
    );
    assert!(
        access.contains("xff=[127.0.0.1]") && access.contains("via=[1.1 tollgate]"),
        "{access}"
    );
    assert!(
        !access.contains(&t),
        "the caller's token reached nginx: {access}"
    );
    assert!(!out.contains(SECRET));
    assert_eventually!(
        g.log_and_export().contains("GET /items/7?q=1"),
        Duration::from_secs(10),
        "the request is not recorded: {}",
        g.log_and_export()
    );
    let seen = g.log_and_export();
    assert!(
        seen.contains("\"http.response\":200") || seen.contains("\"http.response\": 200"),
        "{seen}"
    );
    assert!(
        !seen.contains(SECRET),
        "the credential leaked into the log or recording"
    );
    assert!(
        !seen.contains(&t),
        "the token leaked into the log or recording"
    );
    assert!(
        seen.contains("authentication failed") || seen.contains("invalid"),
        "reason in the log"
    );
}

#[test]
fn keep_alive_pipelining_head_and_identity_binding() {
    let g = HttpGateway::start("", "");
    let t = g.token("ci-job", "ci");
    // Python requests reuses one connection for its session.
    let out = python(
        "import sys, requests\ns = requests.Session()\nh = {'Authorization': 'Bearer ' + sys.argv[2]}\n\
         print(' '.join(str(s.get(sys.argv[1] + '/items/%d' % i, headers=h).status_code) for i in range(5)))",
        &[&g.url(""), &t],
    );
    assert_eq!(out, "200 200 200 200 200");
    assert_eq!(
        g.gw.log_events("session opened").len(),
        1,
        "one connection for five requests"
    );
    // Pipelined: HEAD, 204, GET in one write, answered in order.
    let mut s = connect(g.port);
    let auth = bearer(&t);
    let reqs = format!(
        "HEAD /items/1 HTTP/1.1\r\nHost: x\r\nX-Head: 1\r\n{auth}\r\n\r\n\
         GET /empty HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n\
         GET /items/3 HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n"
    );
    s.write_all(reqs.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut first = String::new();
    // HEAD: a Content-Length and no body; read the head only.
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        first = String::from_utf8_lossy(&buf[..end + 4]).to_string();
        buf.drain(..end + 4);
    }
    assert!(
        first.starts_with("HTTP/1.1 200") && first.contains("Content-Length"),
        "{first}"
    );
    let second = read_response(&mut s, &mut buf);
    assert!(second.starts_with("HTTP/1.1 204"), "{second}");
    let third = read_response(&mut s, &mut buf);
    assert!(
        third.starts_with("HTTP/1.1 200") && third.ends_with("item GET /items/3\n"),
        "{third}"
    );
    // Another subject's token on the bound connection: 401 and closed.
    let u = g.token("someone-else", "ci");
    let req = format!(
        "GET /items/44 HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n",
        bearer(&u)
    );
    s.write_all(req.as_bytes()).unwrap();
    let (rest, _) = read_until_closed(&mut s);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 401"), "{rest}");
    assert!(!g.nginx.access().contains("/items/44"));
    assert_eventually!(
        g.gw.log_text().contains("someone-else"),
        Duration::from_secs(10),
        "the reason is not logged: {}",
        g.gw.log_text()
    );
}

#[test]
fn chunked_upload_and_download_and_expect_continue() {
    let g = HttpGateway::start("record_body_bytes = 64", "");
    let t = g.token("ci-job", "ci");
    // 3 MiB uploaded chunked (a generator body), then read back chunked.
    let out = python(
        "import sys, requests, hashlib\n\
         h = {'Authorization': 'Bearer ' + sys.argv[2]}\n\
         data = bytes((i * 7 + i // 251) % 256 for i in range(3 << 20))\n\
         def gen():\n    for i in range(0, len(data), 65536):\n        yield data[i:i+65536]\n\
         r = requests.put(sys.argv[1] + '/dav/blob.bin', data=gen(), headers=h)\n\
         back = requests.get(sys.argv[1] + '/chunked/blob.bin', headers=h)\n\
         print(r.status_code, back.status_code, back.headers.get('Transfer-Encoding'), \
               hashlib.sha256(back.content).hexdigest() == hashlib.sha256(data).hexdigest())",
        &[&g.url(""), &t],
    );
    assert_eq!(out, "201 200 chunked True");
    let stored = std::fs::read(g.nginx.www.join("dav/blob.bin")).unwrap();
    assert_eq!(stored.len(), 3 << 20);
    assert!(
        g.nginx.access_lines(2).contains("PUT /dav/blob.bin"),
        "{}",
        g.nginx.access()
    );
    // curl -T sends Expect: 100-continue; the gateway answers it.
    let file = g.nginx.dir.path().join("upload.txt");
    std::fs::write(&file, "zzz uploaded with expect\n".repeat(50_000)).unwrap();
    let (ok, out) = g.curl(&[
        "-H",
        &bearer(&t),
        "-H",
        "Expect: 100-continue",
        "-T",
        file.to_str().unwrap(),
        &g.url("/dav/up.txt"),
    ]);
    assert!(
        ok && out.contains("HTTP/1.1 100 Continue") && out.contains("HTTP/1.1 201"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(g.nginx.www.join("dav/up.txt")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert_eventually!(
        g.log_and_export().contains("PUT /dav/blob.bin"),
        Duration::from_secs(10),
        "the upload is not recorded"
    );
    let seen = g.log_and_export();
    // Bodies are recorded up to record_body_bytes (64) per message (the
    // export shows each record raw and decoded: twice).
    let recorded = seen.matches("zzz uploaded with expect").count();
    assert!((4..=6).contains(&recorded), "{recorded} copies recorded");
    assert!(!seen.contains(SECRET) && !seen.contains(&t));
}

#[test]
fn a_rule_blocks_delete_with_problem_json() {
    let rules = "[[target.http.rules]]\nname = \"no-delete\"\nmethods = [\"DELETE\"]\n\
                 path = \"/dav/{file}\"\naction = \"block\"\n\
                 [[target.http.rules]]\nname = \"watch-items\"\npath = \"/items/**\"\naction = \"audit\"\n";
    let g = HttpGateway::start("", rules);
    let t = g.token("ci-job", "ci");
    std::fs::write(g.nginx.www.join("dav/keep.txt"), "keep").unwrap();
    let (_, out) = g.curl(&["-X", "DELETE", "-H", &bearer(&t), &g.url("/dav/keep.txt")]);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        out.contains("application/problem+json") && out.contains("no-delete"),
        "{out}"
    );
    assert!(g.nginx.www.join("dav/keep.txt").exists());
    assert!(!g.nginx.access().contains("DELETE"));
    let (ok, out) = g.curl(&["-H", &bearer(&t), &g.url("/items/9")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    let log = g.gw.log_text();
    assert!(
        log.contains("statement blocked") && log.contains("statement audited"),
        "{log}"
    );
}

/// A path rule cannot be walked around by a path the upstream normalises
/// differently: each such path is refused with 400 before the rules, and
/// nginx (which would have served `/dav/keep.txt` for most of them) never
/// sees the request.
#[test]
fn paths_the_upstream_would_read_otherwise_are_refused_before_the_rules() {
    let rules = "[[target.http.rules]]\nname = \"no-delete\"\nmethods = [\"DELETE\"]\n\
                 path = \"/dav/{file}\"\naction = \"block\"\n";
    let g = HttpGateway::start("", rules);
    let t = g.token("ci-job", "ci");
    std::fs::write(g.nginx.www.join("dav/keep.txt"), "keep").unwrap();
    let auth = bearer(&t);
    for path in [
        "//dav/keep.txt",
        "/dav//keep.txt",
        "/dav/./keep.txt",
        "/x/../dav/keep.txt",
        "/%64av/keep.txt",
        "/dav%2Fkeep.txt",
        "/dav;a=b/keep.txt",
        "/dav\\keep.txt",
    ] {
        let mut s = connect(g.port);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let raw = format!("DELETE {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n");
        s.write_all(raw.as_bytes()).unwrap();
        let (out, _) = read_until_closed(&mut s);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
    }
    assert!(g.nginx.www.join("dav/keep.txt").exists());
    assert!(!g.nginx.access().contains("DELETE"), "{}", g.nginx.access());
    // The path in normal form meets its rule.
    let (_, out) = g.curl(&["-X", "DELETE", "-H", &auth, &g.url("/dav/keep.txt")]);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    // The log line follows the close the client saw: wait for it.
    assert_eventually!(
        g.gw.log_text().contains("request path refused"),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
}

/// Each of these is refused with 400 (or the codec's status) and the
/// connection closed; nothing reaches nginx.
#[test]
fn smuggling_bytes_are_refused_and_closed() {
    let g = HttpGateway::start("", "");
    let t = g.token("ci-job", "ci");
    let auth = bearer(&t);
    let cases = [
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
        ),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{auth}\r\nX-A: 1\r\n folded\r\n\r\n"),
        format!("GET / HTTP/1.1\nHost: x\r\n{auth}\r\n\r\n"),
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\n{auth}\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        ),
    ];
    for (i, raw) in cases.iter().enumerate() {
        let mut s = connect(g.port);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let (out, _) = read_until_closed(&mut s);
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.starts_with("HTTP/1.1 400") || out.starts_with("HTTP/1.1 501"),
            "case {i}: {out}"
        );
        assert!(out.contains("Connection: close"), "case {i}: {out}");
    }
    // The same after a good request on a live connection.
    let mut s = connect(g.port);
    let good = format!("GET /items/1 HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n");
    let bad = format!(
        "POST / HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(format!("{good}{bad}").as_bytes()).unwrap();
    let (out, _) = read_until_closed(&mut s);
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("HTTP/1.1 400"),
        "{out}"
    );
    g.nginx.access_lines(1);
    assert_eq!(g.nginx.access().lines().count(), 1, "{}", g.nginx.access());
}

/// A named header carries the stored secret; rewriting its file rotates it
/// for the next connection without a restart. The token comes in
/// `Proxy-Authorization`, so the caller's own `Authorization` passes.
#[test]
fn named_header_credential_rotates_and_token_header_is_configurable() {
    let g = HttpGateway::start(
        "token_header = \"Proxy-Authorization\"\ncredential_header = \"X-Api-Key\"\n\
         credential_scheme = \"raw\"",
        "",
    );
    let t = g.token("ci-job", "ci");
    let proxy = format!("Proxy-Authorization: Bearer {t}");
    let (ok, out) = g.curl(&["-H", &proxy, "-H", "Authorization: Caller own", &g.url("/")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    std::fs::write(&g.secret_file, "rotated-key-2\n").unwrap();
    let (ok, out) = g.curl(&["-H", &proxy, &g.url("/items/2")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    let access = g.nginx.access_lines(2);
    let lines: Vec<&str> = access.lines().collect();
    assert!(
        lines[0].contains(&format!("key=[{SECRET}]")) && lines[0].contains("auth=[Caller own]"),
        "{access}"
    );
    assert!(lines[1].contains("key=[rotated-key-2]"), "{access}");
    assert!(!access.contains(&t), "{access}");
    let (_, out) = g.curl(&["-H", &bearer(&t), &g.url("/")]);
    assert!(
        out.starts_with("HTTP/1.1 401"),
        "a token in the wrong header: {out}"
    );
    // A secret that would end the header line is refused, not sent.
    std::fs::write(&g.secret_file, "evil\r\nX-Injected: 1\n").unwrap();
    let (_, out) = g.curl(&["-H", &proxy, &g.url("/items/3")]);
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    assert!(!g.nginx.access().contains("/items/3"));
}

/// TLS from the caller (curl verifies the gateway) and to nginx (the
/// gateway verifies it), with Basic credentials injected.
#[test]
fn tls_both_ways_with_basic_credential() {
    let g = HttpGateway::with(common::httpgw::Options {
        http: "credential_scheme = \"basic\"\nforwarded = true",
        tls: true,
        ..Default::default()
    });
    let t = g.token("ci-job", "ci");
    let ca = g.ca.clone().unwrap();
    let (ok, out) = g.curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &bearer(&t),
        &g.url("/items/5"),
    ]);
    assert!(
        ok && out.starts_with("HTTP/1.1 200") && out.contains("item GET /items/5"),
        "{out}"
    );
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{SECRET}"));
    assert!(
        g.nginx
            .access_lines(1)
            .contains(&format!("auth=[Basic {basic}]")),
        "{}",
        g.nginx.access()
    );
    let fwd = format!(
        "fwd=[for=127.0.0.1;proto=https;host=\\x22127.0.0.1:{}\\x22]",
        g.port
    ); // nginx writes '"' as \x22;
    assert!(g.nginx.access().contains(&fwd), "{}", g.nginx.access());
    let opened = g.gw.log_events("session opened");
    assert_eq!(opened.len(), 1);
    // Plaintext to a TLS listener gets nothing.
    let (ok, _) = g.curl(&["-H", &bearer(&t), &g.url("/").replace("https", "http")]);
    assert!(!ok);
}

/// A request a rule holds waits for a reviewer (`tollgate approvals
/// approve`); nothing reaches nginx until then.
#[test]
fn a_held_request_goes_on_once_approved() {
    let rules = "[[target.http.rules]]\nname = \"puts-need-review\"\nmethods = [\"PUT\"]\n\
                 path = \"/dav/**\"\naction = \"approve\"\n\n\
                 [admin]\nlisten = \"127.0.0.1:0\"\nreviewer_groups = [\"reviewers\"]\n";
    let g = HttpGateway::start("", rules);
    let t = g.token("ci-job", "ci");
    let rita = g.token("rita", "reviewers");
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            g.curl(&[
                "-X",
                "PUT",
                "--data-binary",
                "reviewed",
                "-H",
                &bearer(&t),
                &g.url("/dav/held.txt"),
            ])
        });
        let id = std::cell::RefCell::new(String::new());
        assert_eventually!(
            {
                let out = g.gw.cli(&["approvals", "list", "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                *id.borrow_mut() = v["approvals"][0]["id"]
                    .as_u64()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                !id.borrow().is_empty()
            },
            Duration::from_secs(20),
            "no approval request appeared"
        );
        assert!(
            !g.nginx.access().contains("held.txt"),
            "sent before approval"
        );
        let id = id.into_inner();
        let out = g.gw.cli(&["approvals", "approve", &id, "--token", &rita]);
        assert!(out.status.success(), "{out:?}");
        let (ok, out) = held.join().unwrap();
        assert!(ok && out.contains("HTTP/1.1 201"), "{out}");
    });
    assert_eq!(
        std::fs::read_to_string(g.nginx.www.join("dav/held.txt")).unwrap(),
        "reviewed"
    );
}

/// nginx closes an idle kept-alive connection; the caller's next request on
/// its own (still open) connection is sent again on a new one.
#[test]
fn an_upstream_closing_an_idle_connection_is_reconnected() {
    let g = HttpGateway::with(common::httpgw::Options {
        nginx_keepalive: Some("1s"),
        ..Default::default()
    });
    let t = g.token("ci-job", "ci");
    let mut s = connect(g.port);
    let req = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n", bearer(&t));
    let mut buf = Vec::new();
    s.write_all(req("/items/1").as_bytes()).unwrap();
    assert!(read_response(&mut s, &mut buf).starts_with("HTTP/1.1 200"));
    // Wait until nginx has dropped its side (its access log shows the
    // first request; the close follows keepalive_timeout).
    std::thread::sleep(Duration::from_millis(2500));
    s.write_all(req("/items/2").as_bytes()).unwrap();
    let second = read_response(&mut s, &mut buf);
    assert!(second.ends_with("item GET /items/2\n"), "{second}");
    assert_eq!(g.gw.log_events("session opened").len(), 1);
    assert_eventually!(
        g.gw.log_text().contains("request sent again"),
        Duration::from_secs(10),
        "the retry is not logged"
    );
}

/// `[target.upstream_tls] cert_file/key_file`: the gateway presents its
/// client certificate to an upstream that asks for one (nginx
/// `ssl_verify_client`); without it the upstream refuses. The caller
/// presents nothing but its token.
#[test]
fn a_client_certificate_goes_to_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::pki::Ca::new(dir.path(), "up-ca");
    let (nc, nk) = ca.server(dir.path(), "nginx");
    let (cc, ck) = ca.issue(
        dir.path(),
        "tollgate-gw",
        vec![rcgen::SanType::DnsName("tollgate-gw".try_into().unwrap())],
        false,
    );
    let nginx = common::httpgw::Nginx::start_with(Some((&nc, &nk)), Some(&ca.cert), "75s");
    let mtls = |cert: bool| {
        let mut t = format!(
            "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\n",
            ca.cert.display()
        );
        if cert {
            t += &format!(
                "cert_file = \"{}\"\nkey_file = \"{}\"\n",
                cc.display(),
                ck.display()
            );
        }
        t
    };
    for (cert, want) in [(true, "200"), (false, "403")] {
        let target = mtls(cert);
        let g = HttpGateway::with(common::httpgw::Options {
            target: &target,
            upstream: Some(nginx.port),
            ..Default::default()
        });
        let t = g.token("ci-job", "ci");
        let (ok, out) = g.curl(&["-H", &bearer(&t), &g.url("/mtls/x")]);
        assert!(ok, "{out}");
        assert!(out.starts_with(&format!("HTTP/1.1 {want}")), "{out}");
        if cert {
            assert!(out.contains("client CN=tollgate-gw"), "{out}");
        }
    }
}

/// `identity = "mtls"`: the caller is its client certificate (SPIFFE ID
/// mapped to groups by `[identity.mtls]`), no token needed on any request
/// of the connection; no certificate, or one outside the access groups,
/// gets nothing from the upstream.
#[test]
fn mtls_callers_identify_by_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let clients = common::pki::Ca::new(dir.path(), "client-ca");
    let (cc, ck) = clients.spiffe_client(dir.path(), "job", "spiffe://test/ci/job-1");
    let (oc, ok_) = clients.spiffe_client(dir.path(), "other", "spiffe://test/web/x");
    let tables = format!(
        "[identity.mtls]\nca_file = \"{}\"\n[[identity.mtls.map]]\npattern = \"spiffe://test/ci/*\"\n\
         groups = [\"ci\"]\n",
        clients.cert.display()
    );
    let g = HttpGateway::with(common::httpgw::Options {
        http: "identity = \"mtls\"",
        tables: &tables,
        tls: true,
        ..Default::default()
    });
    let ca = g.ca.as_ref().unwrap().display().to_string();
    let url = g.url("/items/1");
    let (ok, out) = g.curl(&[
        "--cacert",
        &ca,
        "--cert",
        cc.to_str().unwrap(),
        "--key",
        ck.to_str().unwrap(),
        &url,
        &g.url("/items/2"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
    let log = g.nginx.access_lines(2);
    assert!(log.contains(&format!("auth=[Bearer {SECRET}]")), "{log}");
    assert!(g.gw.log_text().contains("spiffe://test/ci/job-1"));
    // No certificate: the handshake fails, nothing upstream.
    let (ok, out) = g.curl(&["--cacert", &ca, &url]);
    assert!(!ok, "{out}");
    // A certificate whose identity has no access.
    let (_, out) = g.curl(&[
        "--cacert",
        &ca,
        "--cert",
        oc.to_str().unwrap(),
        "--key",
        ok_.to_str().unwrap(),
        &url,
    ]);
    // The same generic 401 as a token without access (the reason is logged).
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    assert_eq!(g.nginx.access().lines().count(), 2, "{}", g.nginx.access());
}

/// A body longer than `record_body_bytes` is recorded as its first bytes
/// and then its whole length and SHA-256; body bytes are tagged, so a body
/// that looks like a request head is never exported as a request.
#[test]
fn a_body_past_the_cap_is_recorded_by_digest_and_never_read_as_a_head() {
    let g = HttpGateway::start("record_body_bytes = 64", "");
    let t = g.token("ci-job", "ci");
    let file = g.nginx.dir.path().join("forge.bin");
    let mut body = b"GET /forged HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    body.extend((0..200_000u32).map(|i| (i * 31 % 251) as u8));
    std::fs::write(&file, &body).unwrap();
    let (ok, out) = g.curl(&[
        "-H",
        &bearer(&t),
        "--data-binary",
        &format!("@{}", file.display()),
        "-X",
        "PUT",
        &g.url("/dav/forge.bin"),
    ]);
    assert!(ok && out.contains("HTTP/1.1 201"), "{out}");
    // A short body is kept whole: no digest for it.
    let (ok, out) = g.curl(&[
        "-H",
        &bearer(&t),
        "--data-binary",
        "GET /short HTTP/1.1\r\n\r\n",
        "-X",
        "PUT",
        &g.url("/dav/short.txt"),
    ]);
    assert!(ok && out.contains("HTTP/1.1 201"), "{out}");
    let sum = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let hex = sum.split_whitespace().next().unwrap();
    assert_eventually!(
        g.log_and_export().contains("PUT /dav/short.txt"),
        Duration::from_secs(10),
        "the second upload is not recorded"
    );
    let seen = g.log_and_export();
    assert!(
        seen.contains(&format!("\"http.body_sha256\":\"{hex}\"")),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("\"http.body_length\":{}", body.len())),
        "{seen}"
    );
    assert_eq!(seen.matches("\"http.body_sha256\"").count(), 1, "{seen}");
    assert!(!seen.contains("\"http.request\":\"GET /forged"), "{seen}");
    assert!(!seen.contains("\"http.request\":\"GET /short"), "{seen}");
    assert!(seen.contains("\"http.body\":\"GET /forged"), "{seen}");
}
