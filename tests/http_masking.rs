//! Response masking through the HTTP gateway, end to end with nginx as the
//! upstream and curl / Python `requests` as callers: JSON bodies by key
//! names and content detectors (Content-Length and chunked), text bodies by
//! detectors, exempt groups, the body cap (block and pass), a compressed or
//! unparsable answer refused, and no unmasked value in the recording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::httpgw::{HttpGateway, Options};
use common::python;

const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-key"
columns = ["ssn", "*_ssn"]
style = "partial"
keep = 4
exempt_groups = ["auditors"]
[[target.masking.rules]]
name = "pii-content"
detectors = ["email", "us_ssn", "card"]
style = "redact"
replacement = "[redacted]"
exempt_groups = ["auditors"]
"#;

const SSN: &str = "123-45-6789";
const CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "ann@example.com";

fn people() -> String {
    format!(
        r#"{{"people":[{{"name":"Ann","ssn":"{SSN}","contact":{{"email":"{EMAIL}"}},"note":"card {CARD}"}}],"count":1}}"#
    )
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

/// The body of a `curl -i` output.
fn body(out: &str) -> &str {
    out.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn header<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn start(http: &str) -> HttpGateway {
    start_with(http, "")
}

/// `tables`: more tables after the masking rules (`[limits]`).
fn start_with(http: &str, tables: &str) -> HttpGateway {
    let tables = format!("{MASKING}{tables}");
    let g = HttpGateway::with(Options {
        http,
        tables: &tables,
        ..Options::default()
    });
    let dav = g.nginx.www.join("dav");
    std::fs::write(dav.join("people.json"), people()).unwrap();
    std::fs::write(dav.join("broken.json"), format!("{{\"ssn\": \"{SSN}\"")).unwrap();
    std::fs::write(
        dav.join("notes.txt"),
        format!("call Ann, ssn {SSN}, {EMAIL}\n"),
    )
    .unwrap();
    std::fs::write(dav.join("blob.bin"), format!("raw {SSN}")).unwrap();
    // Duplicate keys: a JSON parser keeps the last (serde_json, Python,
    // JavaScript); one keeping the first, or a reader of the text, sees the
    // first. Laid out by hand, as an upstream might.
    std::fs::write(
        dav.join("dup.json"),
        format!(
            "{{\n  \"note\": {{\"contact\": \"{EMAIL}\", \"ssn\": \"{SSN}\"}},\n  \"note\": {{}}\n}}\n"
        ),
    )
    .unwrap();
    g
}

#[test]
fn every_duplicate_of_a_key_is_masked_and_the_layout_kept() {
    let g = start("");
    let t = g.token("ci-job", "ci");
    let (ok, out) = g.curl(&["-H", &bearer(&t), &g.url("/dav/dup.json")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");
    // Before, the body was parsed into a tree that kept only the last
    // `note`, found nothing to mask, and went out as written.
    assert!(
        !body(&out).contains(SSN) && !body(&out).contains(EMAIL),
        "{out}"
    );
    assert_eq!(
        body(&out),
        "{\n  \"note\": {\"contact\": \"[redacted]\", \"ssn\": \"***-**-6789\"},\n  \"note\": {}\n}\n",
        "{out}"
    );
}

#[test]
fn json_and_text_responses_are_masked_by_key_and_content() {
    let g = start("");
    let t = g.token("ci-job", "ci");
    for path in ["/dav/people.json", "/chunked/people.json"] {
        let (ok, out) = g.curl(&[
            "-H",
            &bearer(&t),
            "-H",
            "Accept-Encoding: gzip",
            &g.url(path),
        ]);
        assert!(ok && out.starts_with("HTTP/1.1 200"), "{path}: {out}");
        let doc: serde_json::Value = serde_json::from_str(body(&out)).unwrap();
        let p = &doc["people"][0];
        assert_eq!(p["ssn"], "***-**-6789", "{path}: {out}");
        assert_eq!(p["contact"]["email"], "[redacted]", "{path}: {out}");
        assert_eq!(p["note"], "card [redacted]", "{path}: {out}");
        assert_eq!(p["name"], "Ann");
        assert_eq!(doc["count"], 1);
        // Re-framed with the masked body's length, never chunked.
        assert_eq!(
            header(&out, "content-length"),
            Some(body(&out).len().to_string().as_str())
        );
        assert_eq!(header(&out, "transfer-encoding"), None, "{out}");
    }
    // Text by the detectors.
    let (_, out) = g.curl(&["-H", &bearer(&t), &g.url("/dav/notes.txt")]);
    assert_eq!(
        body(&out),
        "call Ann, ssn [redacted], [redacted]\n",
        "{out}"
    );
    // HEAD has no body to mask.
    let (ok, out) = g.curl(&["-I", "-H", &bearer(&t), &g.url("/dav/people.json")]);
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{out}");

    // Keep-alive with bodies whose length changed: one connection, in order.
    let got = python(
        r#"
import sys, requests
s = requests.Session()
s.headers["Authorization"] = "Bearer " + sys.argv[1]
out = []
for p in ["/dav/people.json", "/dav/notes.txt", "/chunked/people.json", "/dav/people.json"]:
    r = s.get(sys.argv[2] + p, timeout=20)
    masked = "***-**-6789" in r.text and "123-45" not in r.text
    out.append(str(r.status_code) + ":" + ("ok" if masked else r.text))
print(" ".join(out))
"#,
        &[&t, &g.url("")],
    );
    assert_eq!(
        got, "200:ok 200:call Ann, ssn [redacted], [redacted]\n 200:ok 200:ok",
        "{got}"
    );

    // The upstream was asked for identity encoding; nothing unmasked was
    // recorded or logged: the recording holds what the caller read.
    let access = g.nginx.access();
    assert!(
        access.contains("ae=[-]") && !access.contains("ae=[gzip]"),
        "{access}"
    );
    let all = g.log_and_export();
    for secret in [SSN, CARD, EMAIL] {
        assert!(
            !all.contains(secret),
            "{secret} in the log or recording: {all}"
        );
    }
    assert!(
        all.contains("***-**-6789"),
        "the masked answer is not recorded: {all}"
    );

    // Binary passes as it is (detectors read text); an exempt group reads
    // the values.
    let (_, out) = g.curl(&["-H", &bearer(&t), &g.url("/dav/blob.bin")]);
    assert_eq!(body(&out), format!("raw {SSN}"), "{out}");
    let auditor = g.token("audit-1", "ci,auditors");
    let (_, out) = g.curl(&["-H", &bearer(&auditor), &g.url("/dav/people.json")]);
    assert_eq!(body(&out), people(), "{out}");
}

#[test]
fn what_cannot_be_masked_is_refused_or_passed_as_configured() {
    let g = start("mask_body_max = 64\n");
    let t = g.token("ci-job", "ci");
    // Over the cap: refused by default, both Content-Length and chunked.
    for path in ["/dav/people.json", "/chunked/people.json"] {
        let (_, out) = g.curl(&["-H", &bearer(&t), &g.url(path)]);
        assert!(out.starts_with("HTTP/1.1 502"), "{path}: {out}");
        assert!(!out.contains(SSN), "{out}");
    }
    // A body that says JSON but does not parse, while a key rule applies.
    let g2 = start("");
    let t2 = g2.token("ci-job", "ci");
    let (_, out) = g2.curl(&["-H", &bearer(&t2), &g2.url("/dav/broken.json")]);
    assert!(
        out.starts_with("HTTP/1.1 502") && !out.contains(SSN),
        "{out}"
    );
    // A compressed answer the gateway did not ask for cannot be read.
    let (_, out) = g2.curl(&["-H", &bearer(&t2), &g2.url("/gz/people.json")]);
    assert!(
        out.starts_with("HTTP/1.1 502") && !out.contains(SSN),
        "{out}"
    );
    // Log lines are written asynchronously.
    for why in [
        "over mask_body_max",
        "does not parse",
        "compressed response",
    ] {
        let log = || g.gw.log_text() + &g2.gw.log_text();
        assert_eventually!(
            log().contains(why),
            Duration::from_secs(10),
            "{why}: {}",
            log()
        );
    }

    // `pass`: over the cap the body goes through unmasked, and is logged.
    let g3 = start("mask_body_max = 64\nmask_over_cap = \"pass\"\n");
    let t3 = g3.token("ci-job", "ci");
    for path in ["/dav/people.json", "/chunked/people.json"] {
        let (ok, out) = g3.curl(&["-H", &bearer(&t3), &g3.url(path)]);
        assert!(ok && out.starts_with("HTTP/1.1 200"), "{path}: {out}");
        assert_eq!(body(&out), people(), "{path}: {out}");
    }
    // Under the cap it is still masked on the same target.
    let (_, out) = g3.curl(&["-H", &bearer(&t3), &g3.url("/dav/notes.txt")]);
    assert_eq!(
        body(&out),
        "call Ann, ssn [redacted], [redacted]\n",
        "{out}"
    );
    assert_eventually!(
        g3.gw.log_text().contains("passed unmasked"),
        Duration::from_secs(10),
        "{}",
        g3.gw.log_text()
    );

    // A body under the cap but over the session's memory budget: 503.
    let g4 = start_with(
        "",
        "[limits]\nmax_statement = 4096\nsession_memory = 65536\n",
    );
    let big = format!("[{}]", vec![people(); 3000].join(","));
    std::fs::write(g4.nginx.www.join("dav/many.json"), &big).unwrap();
    let t4 = g4.token("ci-job", "ci");
    let (_, out) = g4.curl(&["-H", &bearer(&t4), &g4.url("/dav/many.json")]);
    assert!(
        out.starts_with("HTTP/1.1 503") && !out.contains(SSN),
        "{}",
        &out[..out.len().min(400)]
    );
    assert_eventually!(
        g4.gw.log_text().contains("memory budget"),
        Duration::from_secs(10),
        "{}",
        g4.gw.log_text()
    );
}

/// WebSocket messages are relayed as they arrive, not masked: a caller
/// whose responses are masked may not switch protocols (a way around the
/// masking); an exempt caller may.
#[test]
fn an_upgrade_is_refused_to_a_caller_whose_responses_are_masked() {
    use std::io::Write;
    let g = start("");
    let upgrade = |t: &str| {
        let mut s = common::connect(g.port);
        s.write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\
                 Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        // The head (a refusal closes; another answer keeps the connection).
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let out = upgrade(&g.token("ci-job", "ci"));
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.contains("masks responses"), "{out}");
    assert!(!g.nginx.access().contains("/ws"), "{}", g.nginx.access());
    // An auditor's upgrade reaches the upstream (nginx answers it as a plain GET).
    let out = upgrade(&g.token("auditor", "ci,auditors"));
    assert!(!out.starts_with("HTTP/1.1 403"), "{out}");
    g.nginx.access_lines(1);
    assert!(g.nginx.access().contains("GET /ws"), "{}", g.nginx.access());
}
