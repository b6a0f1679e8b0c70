//! End-to-end recording through the binary: a relayed tcp session and a
//! PostgreSQL session are recorded, listed, exported (JSON Lines), replayed
//! and verified with `tollgate recordings`; the stored credential appears in
//! no recording; a tampered recording fails `verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::pggw::PgGateway;
use common::*;

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn jsonl(o: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_relayed_tcp_session_is_recorded_exported_replayed_and_verified() {
    let echo = Echo::start();
    let gw = Gateway::start(&format!(
        "[engine]\nshards = 2\n{}",
        tcp_target("echo", 0, echo.addr, "")
    ));
    let port = gw.port("echo");
    let mut s = connect(port);
    assert_eq!(roundtrip(&mut s, b"hello recorder\n"), b"hello recorder\n");
    let mut binary = vec![0u8, 159, 146, 150];
    binary.extend_from_slice(b"after binary");
    s.write_all(&binary).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (back, _) = read_until_closed(&mut s);
    assert_eq!(back, binary);
    // The session end is recorded durably before the session finishes.
    assert_eventually!(
        {
            let o = gw.cli(&["recordings", "list", "--json"]);
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"target\":\"echo\"")
        },
        std::time::Duration::from_secs(10),
        "session never listed"
    );
    let list = jsonl(&gw.cli(&["recordings", "list", "--json", "--target", "echo"]));
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["session"].as_str().unwrap().to_string();
    let records = jsonl(&gw.cli(&["recordings", "export", &id]));
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r["session"].as_u64().map(|n| format!("{n:016x}")) == Some(id.clone()))
    );
    assert_eq!(kinds.first(), Some(&"session_start"), "{records:?}");
    assert_eq!(kinds.last(), Some(&"session_end"), "{records:?}");
    let client_bytes: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "client_data")
        .collect();
    assert!(
        client_bytes.iter().any(|r| r["data"] == "hello recorder\n"),
        "{records:?}"
    );
    // Non-UTF-8 data is base64 and says so.
    assert!(
        client_bytes.iter().any(|r| r["encoding"] == "base64"),
        "{records:?}"
    );
    let end = records.last().unwrap();
    assert_eq!(
        end["bytes_client_to_target"],
        15 + binary.len() as u64,
        "{end}"
    );
    let replay = gw.cli(&["recordings", "replay", &id]);
    assert!(replay.status.success(), "{}", text(&replay));
    assert!(String::from_utf8_lossy(&replay.stdout).contains("hello recorder"));
    let verify = gw.cli(&["recordings", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

/// Export decodes a session by the protocol its start record names: bytes
/// relayed by a `tcp` target that happen to look like a PostgreSQL Query are
/// not presented as a query (before, every session was decoded as PostgreSQL).
#[test]
fn a_tcp_session_is_not_decoded_as_postgres() {
    let echo = Echo::start();
    let gw = Gateway::start(&tcp_target("echo", 0, echo.addr, ""));
    let mut s = connect(gw.port("echo"));
    let sql = b"select 'not a query'\0";
    let mut frame = vec![b'Q'];
    frame.extend_from_slice(&(sql.len() as i32 + 4).to_be_bytes());
    frame.extend_from_slice(sql);
    assert_eq!(roundtrip(&mut s, &frame), frame);
    s.shutdown(Shutdown::Write).unwrap();
    let _ = read_until_closed(&mut s);
    assert_eventually!(
        {
            let o = gw.cli(&["recordings", "export", "--all"]);
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("session_end")
        },
        std::time::Duration::from_secs(10),
        "session end never recorded"
    );
    let records = jsonl(&gw.cli(&["recordings", "export", "--all"]));
    let start = records.iter().find(|r| r["type"] == "session_start");
    assert_eq!(
        start.map(|r| &r["protocol"]),
        Some(&serde_json::json!("tcp"))
    );
    assert!(
        records.iter().any(|r| r["type"] == "client_data"),
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r.get("pg").is_none()),
        "tcp data decoded as PostgreSQL: {records:?}"
    );
}

#[test]
fn a_postgres_session_exports_its_statements_and_masked_results_and_no_credential() {
    let g = PgGateway::builder()
        .tables(
            "[[target.masking.rules]]\nname = \"ssn\"\ncolumns = [\"ssn\"]\nstyle = \"redact\"\nreplacement = \"[ssn]\"\n\
             [[target.policy.rules]]\nname = \"no-truncate\"\naction = \"block\"\nmessage = \"no truncate\"\nclasses = [\"truncate\"]\n",
        )
        .start("recpg");
    g.direct(&format!(
        "create table people (name text, ssn text); insert into people values ('Alice', '123-45-6789'); alter table people owner to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    let (_, out, _) = g.psql_script(&t, "select name, ssn from people;\ntruncate people;\n");
    assert_eq!(out, "Alice|[ssn]");
    let gw = &g.gw;
    assert_eventually!(
        jsonl(&gw.cli(&["recordings", "list", "--json", "--identity", "ci-job"])).len() == 1,
        std::time::Duration::from_secs(10),
        "session not listed"
    );
    let id = jsonl(&gw.cli(&["recordings", "list", "--json"]))[0]["session"]
        .as_str()
        .unwrap()
        .to_string();
    let export = gw.cli(&["recordings", "export", &id]);
    let all = String::from_utf8_lossy(&export.stdout).into_owned();
    let records = jsonl(&export);
    let start = &records[0];
    assert_eq!(start["type"], "session_start");
    assert_eq!(start["subject"], "ci-job");
    // Exact statements with their verdicts.
    let commands: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["type"] == "command")
        .map(|r| {
            (
                r["statement"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        commands.contains(&("select name, ssn from people;".into(), "allow".into())),
        "{commands:?}"
    );
    assert!(
        commands.contains(&("truncate people;".into(), "block".into())),
        "{commands:?}"
    );
    // Decoded results: the masked value, never the clear one.
    let rows: Vec<&serde_json::Value> = records
        .iter()
        .filter_map(|r| r["pg"].as_array())
        .flatten()
        .filter(|m| m["type"] == "data_row")
        .collect();
    assert!(
        rows.iter()
            .any(|m| m["values"] == serde_json::json!(["Alice", "[ssn]"])),
        "{rows:?}"
    );
    assert!(!all.contains("123-45-6789"), "clear value in the recording");
    // Neither the token's signature nor the stored credential is recorded
    // as data (the token is the start-up password, consumed by the gateway).
    assert!(
        !all.contains(&g.password),
        "stored credential in the recording"
    );
    assert!(!all.contains(&t), "caller token in the recording");
    // And not in the raw segment files either.
    let mut raw = Vec::new();
    for entry in walk(&gw.recordings) {
        raw.extend(std::fs::read(entry).unwrap());
    }
    assert!(
        !raw.windows(g.password.len())
            .any(|w| w == g.password.as_bytes())
    );
}

#[test]
fn verify_names_a_tampered_segment() {
    let echo = Echo::start();
    let gw = Gateway::start(
        &format!(
            "[engine]\nshards = 1\n[recorder]\ndir = \"RECDIR\"\nzstd_level = 1\n{}",
            tcp_target("echo", 0, echo.addr, "")
        )
        .replace(
            "RECDIR",
            &std::env::temp_dir()
                .join(format!("tg-rec-{}", std::process::id()))
                .display()
                .to_string(),
        ),
    );
    let port = gw.port("echo");
    let dir = std::env::temp_dir().join(format!("tg-rec-{}", std::process::id()));
    for i in 0..3 {
        let mut s = connect(port);
        assert_eq!(
            roundtrip(&mut s, format!("session {i}").as_bytes()),
            format!("session {i}").as_bytes()
        );
    }
    // A clean stop seals the segment: from then on any change is damage.
    let mut gw = gw;
    gw.signal("TERM");
    assert!(
        gw.wait_exit(std::time::Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
    let tollgate = |args: &[&str]| {
        std::process::Command::new(tollgate_bin())
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    let ok = tollgate(&["recordings", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let seg = walk(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let bad = tollgate(&["recordings", "verify"]);
    assert!(!bad.status.success(), "a flipped byte passed verify");
    let report = text(&bad);
    assert!(
        report.contains(&seg.file_name().unwrap().to_string_lossy().to_string()),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
