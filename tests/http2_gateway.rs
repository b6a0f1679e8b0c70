//! HTTP/2 from callers (ALPN `h2`, `http2 = true`) through the HTTP
//! gateway to nginx over HTTP/1.1: curl `--http2` and Python `httpx`
//! (`http2=True`) as callers; several streams at once on one connection
//! with one of them blocked by a rule; a masked JSON answer; the caller's
//! token never reaching nginx or the recording; 10 MB each way under flow
//! control; hostile frames (a bad preface, an oversized header list,
//! CONNECT) refused without harm to the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::httpgw::{HttpGateway, Options, SECRET};
use common::python;

const HTTP2: &str = "http2 = true\n";

const RULES: &str = r#"
[[target.http.rules]]
name = "no-blocked-items"
path = "/items/blocked/**"
action = "block"
"#;

const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-key"
columns = ["ssn"]
style = "partial"
keep = 4
[[target.masking.rules]]
name = "email-content"
detectors = ["email"]
style = "redact"
replacement = "[redacted]"
"#;

fn start(tables: &str) -> HttpGateway {
    HttpGateway::with(Options {
        http: HTTP2,
        tables,
        tls: true,
        ..Options::default()
    })
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

fn ca(g: &HttpGateway) -> String {
    g.ca.as_ref().unwrap().display().to_string()
}

/// curl over HTTP/2 (`--http2`, nghttp2); the output ends with the
/// protocol version curl used.
fn curl2(g: &HttpGateway, args: &[&str]) -> (bool, String) {
    let cafile = ca(g);
    let mut all = vec![
        "--http2",
        "--cacert",
        &cafile,
        "-w",
        "\\nversion=%{http_version}",
    ];
    all.extend_from_slice(args);
    g.curl(&all)
}

#[test]
fn curl_over_http2_gets_the_stored_credential_and_never_the_token() {
    let g = start(RULES);
    let t = g.token("ci-bot", "ci");
    let (ok, out) = curl2(&g, &["-H", &bearer(&t), &g.url("/items/a")]);
    assert!(ok, "{out}\n{}", g.gw.log_text());
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.contains("item GET /items/a"), "{out}");
    assert!(out.ends_with("version=2"), "{out}");
    let access = g.nginx.access_lines(1);
    assert!(
        access.contains(&format!("auth=[Bearer {SECRET}]")),
        "{access}"
    );
    assert!(access.contains("via=[2 tollgate]"), "{access}");
    assert!(
        !access.contains(&t),
        "the caller's token reached nginx: {access}"
    );
    // A body with its length.
    let (ok, out) = curl2(
        &g,
        &[
            "-H",
            &bearer(&t),
            "-X",
            "PUT",
            "--data-binary",
            "hello over h2",
            &g.url("/dav/h2.txt"),
        ],
    );
    assert!(
        ok && out.starts_with("HTTP/2 201"),
        "{out}\n{}",
        g.gw.log_text()
    );
    assert_eq!(
        std::fs::read_to_string(g.nginx.www.join("dav/h2.txt")).unwrap(),
        "hello over h2"
    );
    // A caller without a token is refused on its stream.
    let (ok, out) = curl2(&g, &[&g.url("/items/a")]);
    assert!(ok && out.starts_with("HTTP/2 401"), "{out}");
    assert_eventually!(
        g.log_and_export().contains("PUT /dav/h2.txt"),
        Duration::from_secs(10),
        "the PUT is not recorded"
    );
    let seen = g.log_and_export();
    assert!(!seen.contains(&t), "the token is in the log or recording");
    assert!(
        !seen.contains(SECRET),
        "the credential is in the log or recording"
    );
    assert!(
        seen.contains("2 tollgate"),
        "the recording does not mark h2: {seen}"
    );
    assert!(seen.contains("hello over h2"), "{seen}");
}

const HTTPX_STREAMS: &str = r#"
import asyncio, json, sys, httpx
port, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
async def main():
    async with httpx.AsyncClient(http2=True, verify=ca,
            base_url=f"https://127.0.0.1:{port}",
            headers={"authorization": f"Bearer {token}"}) as c:
        paths = [f"/items/{i}" for i in range(8)] + ["/items/blocked/x"]
        rs = await asyncio.gather(*[c.get(p) for p in paths])
        out = [[r.http_version, r.status_code, r.headers.get("content-type", ""), r.text] for r in rs]
        after = await c.get("/items/after")
        out.append([after.http_version, after.status_code, "", after.text])
        print(json.dumps(out))
asyncio.run(main())
"#;

#[test]
fn httpx_streams_at_once_on_one_connection_one_blocked() {
    let g = start(RULES);
    let t = g.token("ci-bot", "ci");
    let out = python(HTTPX_STREAMS, &[&g.port.to_string(), &ca(&g), &t]);
    let rs: Vec<(String, u16, String, String)> = serde_json::from_str(&out).unwrap();
    assert_eq!(rs.len(), 10, "{out}");
    for (i, (version, status, _, text)) in rs[..8].iter().enumerate() {
        assert_eq!(version, "HTTP/2", "{out}");
        assert_eq!(*status, 200, "{out}");
        assert_eq!(text, &format!("item GET /items/{i}\n"), "{out}");
    }
    let (_, status, ctype, text) = &rs[8];
    assert_eq!(*status, 403, "{out}");
    assert_eq!(ctype, "application/problem+json", "{out}");
    let problem: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(problem["rule"], "no-blocked-items", "{text}");
    // The connection goes on after the refusal.
    assert_eq!(rs[9].1, 200, "{out}");
    let access = g.nginx.access_lines(9);
    assert!(!access.contains("/items/blocked"), "{access}");
    assert_eventually!(
        g.log_and_export().contains("GET /items/after"),
        Duration::from_secs(10),
        "the last request is not recorded"
    );
    let seen = g.log_and_export();
    // All ten requests were one connection: one session.
    assert_eq!(
        seen.matches("\"type\":\"session_start\"").count(),
        1,
        "{seen}"
    );
    assert!(seen.contains("no-blocked-items"), "{seen}");
    assert!(!seen.contains(&t));
}

const HTTPX_GET: &str = r#"
import json, sys, httpx
port, ca, token, path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with httpx.Client(http2=True, verify=ca) as c:
    r = c.get(f"https://127.0.0.1:{port}{path}", headers={"authorization": f"Bearer {token}"})
    print(json.dumps([r.http_version, r.status_code, r.text]))
"#;

#[test]
fn a_json_answer_is_masked_over_http2() {
    let g = start(MASKING);
    std::fs::write(
        g.nginx.www.join("dav/people.json"),
        r#"{"people":[{"name":"Ann","ssn":"123-45-6789","email":"ann@example.com"}]}"#,
    )
    .unwrap();
    let t = g.token("ci-bot", "ci");
    let out = python(
        HTTPX_GET,
        &[&g.port.to_string(), &ca(&g), &t, "/dav/people.json"],
    );
    let (version, status, text): (String, u16, String) = serde_json::from_str(&out).unwrap();
    assert_eq!((version.as_str(), status), ("HTTP/2", 200), "{out}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["people"][0]["ssn"], "***-**-6789", "{text}");
    assert_eq!(v["people"][0]["email"], "[redacted]", "{text}");
    assert_eq!(v["people"][0]["name"], "Ann", "{text}");
    assert_eventually!(
        g.log_and_export().contains("GET /dav/people.json"),
        Duration::from_secs(10),
        "not recorded"
    );
    let seen = g.log_and_export();
    assert!(!seen.contains("ann@example.com"), "{seen}");
    assert!(!seen.contains("123-45-6789"), "{seen}");
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn ten_megabytes_each_way_under_flow_control() {
    let g = start("");
    let t = g.token("ci-bot", "ci");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    // Not all zeros, not one repeated byte: a pattern over 10 MB.
    let data: Vec<u8> = (0..10_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&big, &data).unwrap();
    // Up: curl streams it with `-T` (a content-length), the gateway
    // releases window only as nginx takes it.
    let (ok, out) = curl2(
        &g,
        &[
            "-H",
            &bearer(&t),
            "-T",
            &big.display().to_string(),
            &g.url("/dav/big.bin"),
        ],
    );
    assert!(ok && out.starts_with("HTTP/2 201"), "{out}");
    let stored = g.nginx.www.join("dav/big.bin");
    assert_eq!(sha256(&stored), sha256(&big));
    // Down, twice on one connection: with a length, and chunked (nginx's
    // sub_filter drops the length).
    let got = dir.path().join("got.bin");
    let got2 = dir.path().join("got2.bin");
    let (ok, out) = curl2(
        &g,
        &[
            "-H",
            &bearer(&t),
            "-o",
            &got.display().to_string(),
            &g.url("/dav/big.bin"),
            "-o",
            &got2.display().to_string(),
            &g.url("/chunked/big.bin"),
        ],
    );
    assert!(ok, "{out}");
    // `curl -i` writes the head into the file before the body.
    for file in [&got, &got2] {
        let all = std::fs::read(file).unwrap();
        let at = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        assert!(all.starts_with(b"HTTP/2 200"), "{out}");
        assert!(
            all[at + 4..] == data[..],
            "{} differs ({out})",
            file.display()
        );
    }
}

/// Raw HTTP/2 over TLS with Python's `h2` (installed with httpx[http2]).
const RAW_H2: &str = r#"
import socket, ssl, sys
import h2.connection, h2.config, h2.events
port, ca, token, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="localhost")
s.settimeout(20)
assert s.selected_alpn_protocol() == "h2"
if mode == "bad-preface":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 100)
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    # Whatever came back (at most a GOAWAY), the connection was closed.
    print("closed", len(got))
    sys.exit(0)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
c.initiate_connection()
s.sendall(c.data_to_send())
if mode == "big-headers":
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", "/items/x"),
               ("authorization", "Bearer " + token)] + [(f"x-pad-{i}", "v" * 4000) for i in range(40)]
elif mode == "connect":
    headers = [(":method", "CONNECT"), (":authority", "127.0.0.1:5432"), ("authorization", "Bearer " + token)]
c.send_headers(1, headers, end_stream=(mode != "connect"))
s.sendall(c.data_to_send())
outcome = []
while not outcome:
    d = s.recv(65536)
    if not d:
        outcome.append("eof")
        break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.ResponseReceived):
            outcome.append("status " + dict(e.headers)[b":status"].decode())
        elif isinstance(e, h2.events.StreamReset):
            outcome.append("reset")
        elif isinstance(e, h2.events.ConnectionTerminated):
            outcome.append("goaway")
    s.sendall(c.data_to_send())
print(outcome[0])
"#;

#[test]
fn hostile_frames_are_refused_and_the_gateway_goes_on() {
    let g = start("");
    let t = g.token("ci-bot", "ci");
    let port = g.port.to_string();
    let cafile = ca(&g);
    let out = python(RAW_H2, &[&port, &cafile, &t, "bad-preface"]);
    assert!(out.starts_with("closed"), "{out}");
    // 160 KB of header fields against the 32 KiB cap.
    let out = python(RAW_H2, &[&port, &cafile, &t, "big-headers"]);
    assert!(
        ["status 431", "reset", "goaway", "eof"].contains(&out.as_str()),
        "{out}"
    );
    let out = python(RAW_H2, &[&port, &cafile, &t, "connect"]);
    assert!(
        ["status 405", "reset", "goaway"].contains(&out.as_str()),
        "{out}"
    );
    // None of it reached nginx, and the gateway still serves.
    let (ok, out) = curl2(&g, &["-H", &bearer(&t), &g.url("/items/ok")]);
    assert!(ok && out.starts_with("HTTP/2 200"), "{out}");
    let access = g.nginx.access_lines(1);
    assert_eq!(access.lines().count(), 1, "{access}");
    assert!(!g.gw.log_text().contains("panicked"));
}

#[test]
fn without_http2_tls_callers_keep_http11() {
    let g = HttpGateway::with(Options {
        tls: true,
        ..Options::default()
    });
    let t = g.token("ci-bot", "ci");
    let (ok, out) = curl2(&g, &["-H", &bearer(&t), &g.url("/items/a")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
}
