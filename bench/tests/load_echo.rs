//! End-to-end: the real `tollgate-load` binary as echo server and as load
//! generator, talking to each other over loopback on ports the test picks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate-load");

/// An echo server on a free port, killed when the test ends.
struct EchoServer {
    child: Child,
    addr: SocketAddr,
}

impl EchoServer {
    fn start(threads: usize) -> Self {
        let mut child = Command::new(BIN)
            .args(["echo", "--listen", "127.0.0.1:0", "--threads"])
            .arg(threads.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The server prints its bound address once every thread listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Self { child, addr }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the load tool with `--json` and returns its exit code and summary.
fn load_json(args: &[&str]) -> (i32, Value) {
    let output = Command::new(BIN).args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}, stderr {:?}", output.stderr));
    (output.status.code().unwrap_or(-1), json)
}

#[test]
fn ping_by_count_completes_exactly_that_many_requests() {
    let echo = EchoServer::start(2);
    let addr = echo.addr.to_string();
    let (code, json) = load_json(&[
        "tcp",
        "ping",
        "--addr",
        &addr,
        "--connections",
        "4",
        "--threads",
        "2",
        "--size",
        "100",
        "--count",
        "501",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["mode"], "tcp ping");
    assert_eq!(json["requests"], 501);
    assert_eq!(json["errors_total"], 0);
    // Every counted request is in exactly one second of the window.
    let per_second: u64 = json["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 501);
    let curve = json["latency_curve_us"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["us"], json["latency_us"]["max"]);
    assert_eq!(json["bytes_received"], 501 * 100);
    assert_eq!(json["connections"], 4);
    assert_eq!(json["threads"], 2);
    let latency = &json["latency_us"];
    let p50 = latency["p50"].as_u64().unwrap();
    assert!(p50 >= 1 && p50 <= latency["p99"].as_u64().unwrap());
    assert!(latency["p99"].as_u64().unwrap() <= latency["max"].as_u64().unwrap());
    assert!(json["req_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn ping_by_duration_measures_the_window_after_warmup() {
    let echo = EchoServer::start(1);
    let addr = echo.addr.to_string();
    let (code, json) = load_json(&[
        "tcp",
        "ping",
        "--addr",
        &addr,
        "--connections",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--rate",
        "2000",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["duration_s"], 0.3);
    assert_eq!(json["warmup_s"], 0.1);
    assert_eq!(json["target_rate"], 2000.0);
    let requests = json["requests"].as_u64().unwrap();
    // Paced at 2000/s for 0.3 s: never more than the schedule allows.
    assert!(requests > 0 && requests <= 601, "{requests}");
    assert_eq!(json["errors_total"], 0);
}

#[test]
fn bulk_transfers_larger_than_socket_buffers_come_back_intact() {
    let echo = EchoServer::start(1);
    let addr = echo.addr.to_string();
    let (code, json) = load_json(&[
        "tcp",
        "bulk",
        "--addr",
        &addr,
        "--size",
        "3MiB",
        "--connections",
        "2",
        "--repeat",
        "3",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["mode"], "tcp bulk");
    assert_eq!(json["requests"], 3);
    assert_eq!(json["errors"]["mismatch"], 0);
    assert_eq!(json["errors_total"], 0);
    assert_eq!(json["bytes_received"], 3 * 3 * 1_048_576);
    assert!(json["mb_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_refused_target_is_counted_not_a_crash() {
    // Bind and release a port so nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (code, json) = load_json(&[
        "tcp",
        "ping",
        "--addr",
        &addr,
        "--connections",
        "1",
        "--count",
        "3",
    ]);
    assert_eq!(code, 2, "nothing succeeded: {json}");
    assert_eq!(json["requests"], 0);
    assert!(json["errors"]["connect"].as_u64().unwrap() >= 3, "{json}");
}

#[test]
fn echo_finishes_echoing_after_the_client_half_closes() {
    let echo = EchoServer::start(1);
    let mut stream = TcpStream::connect(echo.addr).unwrap();
    let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // Write from a thread: the echo flows back while we send.
    let mut writer = stream.try_clone().unwrap();
    let to_send = sent.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut received = Vec::new();
    // read_to_end returns only once the server closes its side after the echo.
    stream.read_to_end(&mut received).unwrap();
    sender.join().unwrap();
    assert_eq!(received.len(), sent.len());
    assert!(received == sent);
}

#[test]
fn echo_refuses_a_port_already_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["echo", "--listen", &addr, "--threads", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
}
