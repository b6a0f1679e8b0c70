//! Masking JSON response bodies by place (`json_paths`, JSON Pointer
//! globs), end to end: nginx as the upstream, TLS on both sides, curl and
//! Python `requests` as callers, a body of several megabytes sent with
//! Content-Length and chunked (nginx's sub_filter) so it crosses hundreds of
//! TLS records both ways. Every value a pointer names is masked, nothing
//! else in the document changes, and the recording holds the masked body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::httpgw::{HttpGateway, Options};
use common::python;

const MASKING: &str = r#"
[[target.masking.rules]]
name = "dob"
json_paths = ["/accounts/*/owner/dob"]
style = "redact"
replacement = "[dob]"
[[target.masking.rules]]
name = "keys-anywhere"
json_paths = ["/**/api_key", "/meta/owner"]
style = "redact"
replacement = "[key]"
"#;

const ACCOUNTS: usize = 30_000;

/// The upstream's document: `ACCOUNTS` accounts, each with a date of birth
/// and an API key at different depths, and decoys with the same key names
/// at places no pointer names.
fn document() -> String {
    let mut s = String::from("{\"accounts\":[");
    for i in 0..ACCOUNTS {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"id\":{i},\"owner\":{{\"name\":\"Owner {i}\",\"dob\":\"19{:02}-01-02\"}},\
             \"creds\":[{{\"api_key\":\"sk_live_{i:08}\"}}],\"dob\":\"decoy-{i}\"}}",
            i % 100
        ));
    }
    s.push_str("],\"meta\":{\"owner\":{\"dob\":\"1970-01-01\"},\"count\":");
    s.push_str(&ACCOUNTS.to_string());
    s.push_str("},\"api_key\":\"sk_root_0000\"}");
    s
}

fn body(out: &str) -> &str {
    out.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// What the masked document must be, built from the parsed original.
fn expected(doc: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(doc).unwrap();
    for a in v["accounts"].as_array_mut().unwrap() {
        a["owner"]["dob"] = "[dob]".into();
        a["creds"][0]["api_key"] = "[key]".into();
    }
    // /meta/owner is masked whole, an object as any other value.
    v["meta"]["owner"] = "[key]".into();
    v["api_key"] = "[key]".into();
    v
}

#[test]
fn values_named_by_json_pointer_globs_are_masked_in_large_bodies_over_tls() {
    let g = HttpGateway::with(Options {
        http: "mask_body_max = 16777216\n",
        tables: MASKING,
        tls: true,
        ..Options::default()
    });
    let doc = document();
    assert!(doc.len() > 3 << 20, "{} bytes", doc.len());
    std::fs::write(g.nginx.www.join("dav/accounts.json"), &doc).unwrap();
    let want = expected(&doc);
    let ca = g.ca.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let t = g.token("ci-job", "ci");
    let auth = format!("Authorization: Bearer {t}");
    for path in ["/dav/accounts.json", "/chunked/accounts.json"] {
        let (ok, out) = g.curl(&["--cacert", ca, "-H", &auth, &g.url(path)]);
        assert!(
            ok && out.starts_with("HTTP/1.1 200"),
            "{path}: {}",
            &out[..out.len().min(300)]
        );
        let got: serde_json::Value = serde_json::from_str(body(&out)).unwrap();
        if got != want {
            let (g, w) = (got.to_string(), want.to_string());
            let at = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
            let from = at.saturating_sub(80);
            panic!(
                "{path}: the masked document differs at byte {at}:\n got  {}\n want {}",
                &g[from..(at + 80).min(g.len())],
                &w[from..(at + 80).min(w.len())]
            );
        }
        // Masked where it lies: the decoys and every other byte as sent.
        assert!(body(&out).contains("\"dob\":\"decoy-29999\""), "{path}");
        assert!(!body(&out).contains("sk_live_"), "{path}");
    }
    // A second client from another ecosystem, several times on one
    // keep-alive TLS connection.
    let got = python(
        r#"
import sys, requests, json
s = requests.Session()
s.headers["Authorization"] = "Bearer " + sys.argv[1]
out = []
for p in ["/dav/accounts.json", "/chunked/accounts.json", "/dav/accounts.json"]:
    r = s.get(sys.argv[2] + p, timeout=60, verify=sys.argv[3])
    d = r.json()
    out.append("%d:%s:%s" % (r.status_code, d["accounts"][7]["owner"]["dob"], d["api_key"]))
print(" ".join(out))
"#,
        &[&t, &g.url(""), ca],
    );
    assert_eq!(got, "200:[dob]:[key] 200:[dob]:[key] 200:[dob]:[key]");
    let all = g.log_and_export();
    assert!(
        !all.contains("sk_live_0000"),
        "an API key was logged or recorded"
    );
    assert!(
        !all.contains("1970-01-01"),
        "a masked date was logged or recorded"
    );
}
