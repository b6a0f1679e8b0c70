//! gRPC through the HTTP gateway over HTTP/2: Python `grpcio` as the caller
//! (TLS, ALPN h2) and as the upstream (h2c), a service defined in the test
//! with raw-bytes methods (tests/common/grpc_upstream.py). Unary and
//! streaming calls relayed, a call blocked by a rule on its path answered
//! the gRPC way (PERMISSION_DENIED with the rule in the message), a 6 MB
//! answer under flow control, the caller's token replaced by the stored
//! credential, and messages in the recording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::httpgw::{HttpGateway, Options, SECRET};
use common::{free_port, python, python_bin};

struct GrpcUpstream {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl GrpcUpstream {
    fn start() -> GrpcUpstream {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        std::fs::write(&log, "").unwrap();
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/grpc_upstream.py");
        let child = Command::new(python_bin())
            .arg(script)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        assert_eventually!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Duration::from_secs(20),
            "grpc upstream did not listen: {}",
            std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
        );
        GrpcUpstream {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RULES: &str = r#"
[[target.http.rules]]
name = "no-secrets"
methods = ["POST"]
path = "/test.Echo/Secret"
action = "block"
"#;

const CLIENT: &str = r#"
import json, sys, grpc
port, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
ch = grpc.secure_channel(f"localhost:{port}", creds,
                         options=[("grpc.max_receive_message_length", 64 << 20)])
md = [("authorization", f"Bearer {token}")]
out = {}
out["unary"] = ch.unary_unary("/test.Echo/Unary")(b"hi", metadata=md).decode()
out["stream"] = [m.decode() for m in ch.stream_stream("/test.Echo/Stream")(iter([b"a", b"b", b"c"]), metadata=md)]
try:
    ch.unary_unary("/test.Echo/Secret")(b"x", metadata=md)
    out["secret"] = "answered"
except grpc.RpcError as e:
    out["secret"] = [str(e.code()), e.details()]
big = ch.unary_unary("/test.Echo/Big")(str(6 << 20).encode(), metadata=md)
out["big"] = [len(big), big == bytes(range(256)) * ((6 << 20) // 256)]
try:
    ch.unary_unary("/test.Echo/Unary")(b"x", metadata=[("authorization", "Bearer nope")])
    out["badtoken"] = "answered"
except grpc.RpcError as e:
    out["badtoken"] = str(e.code())
print(json.dumps(out))
"#;

#[test]
fn grpc_calls_are_judged_by_path_relayed_and_recorded() {
    let up = GrpcUpstream::start();
    let g = HttpGateway::with(Options {
        http: "http2 = true\n",
        tables: RULES,
        tls: true,
        upstream: Some(up.port),
        plain_upstream: true,
        ..Options::default()
    });
    let t = g.token("ci-bot", "ci");
    let ca = g.ca.as_ref().unwrap().display().to_string();
    let out = python(CLIENT, &[&g.port.to_string(), &ca, &t]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["unary"], "echo:hi", "{out}");
    assert_eq!(
        v["stream"],
        serde_json::json!(["s:a", "s:b", "s:c"]),
        "{out}"
    );
    assert_eq!(
        v["secret"],
        serde_json::json!(["StatusCode.PERMISSION_DENIED", "blocked by rule no-secrets"]),
        "{out}"
    );
    assert_eq!(v["big"], serde_json::json!([6 << 20, true]), "{out}");
    assert_eq!(v["badtoken"], "StatusCode.UNAUTHENTICATED", "{out}");
    let calls = up.calls();
    assert!(
        calls.contains(&format!("unary auth=[Bearer {SECRET}] via=[2 tollgate]")),
        "{calls}"
    );
    assert!(calls.contains("stream auth=[Bearer"), "{calls}");
    assert!(!calls.contains("Secret") && !calls.contains(&t), "{calls}");
    assert_eq!(calls.lines().count(), 3, "{calls}");
    assert_eventually!(
        g.log_and_export().contains("POST /test.Echo/Big"),
        Duration::from_secs(10),
        "the calls are not recorded"
    );
    let seen = g.log_and_export();
    assert!(seen.contains("no-secrets"), "{seen}");
    assert!(seen.contains("\"http.body\":\"echo:hi\""), "{seen}");
    assert!(seen.contains("grpc-status: 0"), "{seen}");
    assert!(!seen.contains(&t), "the token is in the log or recording");
    assert!(
        !seen.contains(SECRET),
        "the credential is in the log or recording"
    );
}
