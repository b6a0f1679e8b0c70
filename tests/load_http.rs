//! End-to-end: `tollgate-load http` through a real tollgate HTTP target to a
//! real nginx (tests/common/httpgw.rs), and `--direct` to the same nginx,
//! every workload briefly; the `--json` report parsed and checked against
//! nginx's access log (requests by method, the injected credential on the
//! gateway's requests only); a bad token fails every request with exit
//! status 2; `tollgate-load plot` draws the results. No timing is asserted.
//!
//! The load tool is the workspace's `tollgate-load` binary, built next to
//! `tollgate` (`cargo build --workspace`, as tests/run.sh does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::httpgw::{HttpGateway, Options, SECRET};
use common::pggw::ISS;
use common::*;
use serde_json::Value;

fn load_bin() -> PathBuf {
    let bin = Path::new(tollgate_bin()).with_file_name("tollgate-load");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tollgate-bench` (tests/run.sh builds the workspace)",
        bin.display()
    );
    bin
}

/// `tollgate-load http ARGS --url URL` with tokens minted from the gateway's dev key.
fn run_load(url: &str, args: &[&str]) -> Output {
    Command::new(load_bin())
        .env_remove("TOLLGATE_TOKEN")
        .env_remove("TOLLGATE_LOAD_URL")
        .arg("http")
        .args(args)
        .args(["--url", url, "--json", "--timeout", "20s"])
        .output()
        .unwrap()
}

fn minted<'a>(g: &'a HttpGateway, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend([
        "--token-key",
        g.key.to_str().unwrap(),
        "--iss",
        ISS,
        "--groups",
        "ci",
        "--sub",
        "load-job",
    ]);
    all
}

/// A successful run's JSON.
fn load_http(g: &HttpGateway, url: &str, args: &[&str]) -> Value {
    let out = run_load(url, &minted(g, args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tollgate-load failed ({:?}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(SECRET));
    let json: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!(json["tool"], "tollgate-load");
    assert_eq!(json["mode"], "http");
    json
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The run is clean and its counts add up.
fn check_run(json: &Value, workload: &str, protocol: &str, count: u64) {
    assert_eq!(json["workload"], workload, "{json}");
    assert_eq!(json["protocol"], protocol, "{json}");
    assert_eq!(u(&json["requests"]), count, "{json}");
    assert_eq!(u(&json["errors_total"]), 0, "{json}");
    let ops = &json["ops"];
    let by_kind = u(&ops["select"]) + u(&ops["insert"]) + u(&ops["update"]) + u(&ops["connect"]);
    assert_eq!(by_kind, count, "{json}");
    let per_second: u64 = json["per_second"].as_array().unwrap().iter().map(u).sum();
    assert_eq!(per_second, count, "{json}");
    let curve = json["latency_curve_us"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["us"], json["latency_us"]["max"]);
}

/// nginx's log lines with `needle`.
fn logged(g: &HttpGateway, needle: &str) -> usize {
    g.nginx
        .access()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Every workload through the gateway and directly, checked against what
/// nginx saw; the results then drawn by `tollgate-load plot`.
#[test]
fn every_workload_through_the_gateway_and_direct_then_plotted() {
    let g = HttpGateway::start("", "");
    let url = g.url("/items/load");
    let direct = format!("http://127.0.0.1:{}/items/load", g.nginx.port);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expected_lines = 0;
    for (workload, count) in [("get", 120), ("post", 60), ("mixed", 200), ("connect", 30)] {
        let json = load_http(
            &g,
            &url,
            &[
                workload,
                "--count",
                &count.to_string(),
                "--connections",
                "3",
                "--threads",
                "2",
                "--body-size",
                "3000",
                "--direct",
                &direct,
            ],
        );
        check_run(&json, workload, "http", count);
        assert_eq!(json["path"], "gateway");
        let d = &json["direct"];
        assert_eq!(d["path"], "direct");
        assert_eq!(d["addr"], format!("127.0.0.1:{}", g.nginx.port));
        check_run(d, workload, "http", count);
        assert!(json["vs_direct"]["req_per_s_ratio"].as_f64().unwrap() > 0.0);
        let ops = &json["ops"];
        match workload {
            "get" => assert_eq!(u(&ops["select"]), count),
            "post" => assert_eq!(u(&ops["insert"]), count),
            "mixed" => assert!(u(&ops["select"]) > u(&ops["insert"]) && u(&ops["update"]) > 0),
            _ => {
                assert_eq!(u(&ops["connect"]), count);
                // A connection per request, each its own session.
                assert!(u(&json["sessions"]) >= count, "{json}");
            }
        }
        if workload != "connect" {
            // Connections open before the clock and none broke.
            assert_eq!(u(&json["sessions"]), 3, "{json}");
        }
        // nginx saw every request of both paths: the gateway's with the
        // injected credential, the direct ones with no Authorization.
        expected_lines += 2 * count as usize;
        let access = g.nginx.access_lines(expected_lines);
        assert_eq!(access.lines().count(), expected_lines, "{access}");
        let methods = |m: &str| logged(&g, &format!("{m} /items/load "));
        let (gets, posts, puts) = (methods("GET"), methods("POST"), methods("PUT"));
        assert_eq!(gets + posts + puts, expected_lines);
        if workload == "post" {
            assert_eq!(posts, 2 * count as usize);
        }
        let name = dir.path().join(format!("{workload}-run.json"));
        std::fs::write(&name, json.to_string()).unwrap();
        files.push(name);
    }
    let access = g.nginx.access();
    assert_eq!(
        logged(&g, &format!("auth=[Bearer {SECRET}]")),
        expected_lines / 2,
        "{access}"
    );
    // nginx logs an absent header as "-".
    assert_eq!(logged(&g, "auth=[-]"), expected_lines / 2, "{access}");
    plot(&files);
}

/// `tollgate-load plot` renders the runs as SVG (XML-valid) and HTML.
fn plot(files: &[PathBuf]) {
    let dir = files[0].parent().unwrap();
    for ext in ["svg", "html"] {
        let output = dir.join(format!("report.{ext}"));
        let out = Command::new(load_bin())
            .arg("plot")
            .args(files)
            .arg("-o")
            .arg(&output)
            .args(["--title", "http runs"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&output).unwrap();
        assert!(text.contains("get-run") && text.contains("connect-run"));
        assert!(text.contains("Latency by percentile") && text.contains("Throughput over time"));
        if ext == "svg" {
            let root = python(
                "import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().tag)",
                &[output.to_str().unwrap()],
            );
            assert_eq!(root, "{http://www.w3.org/2000/svg}svg");
        } else {
            assert!(text.starts_with("<!DOCTYPE html>"));
            // The table names each run's mode, workload and protocol.
            assert!(text.contains("http mixed (http)"), "{text}");
        }
    }
}

#[test]
fn chunked_and_bodiless_responses_are_read_whole_on_kept_connections() {
    let g = HttpGateway::start("", "");
    std::fs::write(g.nginx.www.join("dav/big.txt"), "zzz".repeat(20_000)).unwrap();
    for path in ["/chunked/big.txt", "/empty", "/dav/big.txt"] {
        let json = load_http(
            &g,
            &g.url(path),
            &[
                "get",
                "--count",
                "60",
                "--connections",
                "2",
                "--threads",
                "1",
            ],
        );
        // A body not read to its end would have made the next response on
        // the same connection malformed: check_run wants 0 errors.
        check_run(&json, "get", "http", 60);
        assert_eq!(u(&json["sessions"]), 2, "{path}: {json}");
    }
}

#[test]
fn a_bad_token_fails_every_request_and_the_exit_status_is_2() {
    let g = HttpGateway::start("", "");
    let out = run_load(
        &g.url("/items/x"),
        &[
            "get",
            "--token",
            "not-a-token",
            "--count",
            "5",
            "--connections",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json["requests"]), 0, "{json}");
    assert!(u(&json["errors"]["server"]) >= 5, "{json}");
    let last = json["last_error"].as_str().unwrap();
    assert!(last.contains("HTTP 401"), "{json}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no operation succeeded on the gateway path")
            && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    // Nothing reached nginx.
    assert_eq!(g.nginx.access(), "");
}

#[test]
fn a_token_of_a_group_without_access_fails_too() {
    let g = HttpGateway::start("", "");
    let token = g.token("intruder", "nobody");
    let out = Command::new(load_bin())
        .env("TOLLGATE_TOKEN", &token)
        .args([
            "http",
            "post",
            "--count",
            "3",
            "--connections",
            "1",
            "--json",
        ])
        .args(["--url", &g.url("/items/x")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&json["requests"]), 0, "{json}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    assert_eq!(g.nginx.access(), "");
}

#[test]
fn token_header_and_tls_as_the_target_is_configured() {
    let g = HttpGateway::with(Options {
        http: "token_header = \"Proxy-Authorization\"",
        tls: true,
        ..Options::default()
    });
    let ca = g.ca.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let direct = format!("https://127.0.0.1:{}/items/tls", g.nginx.port);
    let args = minted(
        &g,
        &[
            "mixed",
            "--token-header",
            "Proxy-Authorization",
            "--token-per-session",
            "--count",
            "40",
            "--connections",
            "2",
            "--direct",
            &direct,
            "--ca",
            ca,
        ],
    );
    let out = run_load(&g.url("/items/tls"), &args);
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_run(&json, "mixed", "https", 40);
    check_run(&json["direct"], "mixed", "https", 40);
    g.nginx.access_lines(80);
    assert_eq!(logged(&g, &format!("auth=[Bearer {SECRET}]")), 40);
    // The token header is the target's: in Authorization the gateway refuses it.
    let out = run_load(
        &g.url("/items/tls"),
        &minted(&g, &["get", "--count", "2", "--ca", ca]),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // An https URL without a CA to verify it is a usage error.
    let out = run_load(&g.url("/"), &["get", "--token", "x"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
}
