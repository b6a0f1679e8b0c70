//! A response the caller read whole survives a crash in the recording,
//! digest included: Python clients download a body longer than the
//! recording cap through the gateway as fast as they can, each listing the
//! downloads it finished; the gateway is killed with SIGKILL under that
//! load, restarted (recovery), stopped, and its recording exported. With
//! `durability = "before_forward"` every finished download has its request
//! and its body's length and SHA-256 in the export: the last bytes of a
//! body are held until the digest record is durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::crash::{read_acked, restart_and_stop, start_load, verified_export, wait_exit};
use common::httpgw::{HttpGateway, Options};
use common::tollgate_bin;

/// Clients on keep-alive connections GET `PATH?c=C&n=N` until the
/// gateway goes away (or 60 s pass), print `warm` after 400 downloads in
/// all, and at the end write `C N` for every body they read whole.
const DRIVER: &str = r#"
import sys, threading, time, http.client
port, token, clients, size, out, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
acked = [[] for _ in range(clients)]
total = [0]
lock = threading.Lock()
deadline = time.monotonic() + 60
def run(c):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        i = 0
        while time.monotonic() < deadline:
            conn.request("GET", "%s?c=%d&n=%d" % (path, c, i), headers={"Authorization": "Bearer " + token})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or len(body) != size:
                raise Exception("status %d, %d bytes" % (r.status, len(body)))
            acked[c].append(i)
            i += 1
            with lock:
                total[0] += 1
                if total[0] == 400:
                    print("warm", flush=True)
    except Exception as e:
        print("client %d stopped: %s" % (c, e), file=sys.stderr)
threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    for c in range(clients):
        for n in acked[c]:
            f.write("%d %d\n" % (c, n))
print("done", flush=True)
"#;

const SIZE: usize = 96 * 1024;

/// `(c, n)` of the request a `GET PATH?c=C&n=N` record holds.
fn request_of(line: &serde_json::Value) -> Option<(u64, u64)> {
    let req = line["http.request"].as_str()?;
    let q = req.split("?c=").nth(1)?;
    let q = q.split(' ').next()?;
    let (c, n) = q.split_once("&n=")?;
    Some((c.parse().ok()?, n.parse().ok()?))
}

#[test]
fn before_forward_keeps_every_finished_download_with_its_digest_on_kill_9() {
    crash_under_downloads("/dav/big.bin");
}

#[test]
fn before_forward_keeps_every_finished_chunked_download_with_its_digest_on_kill_9() {
    // nginx's sub_filter sends the same file chunked.
    crash_under_downloads("/chunked/big.bin");
}

fn crash_under_downloads(path: &str) {
    let rec = tempfile::tempdir().unwrap();
    let tables = format!(
        "[recorder]\ndir = \"{}\"\ndurability = \"before_forward\"\n",
        rec.path().display()
    );
    let g = HttpGateway::with(Options {
        http: "record_body_bytes = 64",
        tables: &tables,
        ..Options::default()
    });
    let body: Vec<u8> = (0..SIZE as u32).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(g.nginx.www.join("dav/big.bin"), &body).unwrap();
    let sum = std::process::Command::new("sha256sum")
        .arg(g.nginx.www.join("dav/big.bin"))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let hex = sum.split_whitespace().next().unwrap().to_owned();

    let token = g.token("ci-job", "ci");
    let out = g.gw.dir().join("acked.txt");
    let port = g.port.to_string();
    let size = SIZE.to_string();
    let mut driver = start_load(
        DRIVER,
        [
            port.as_ref(),
            token.as_ref(),
            "8".as_ref(),
            size.as_ref(),
            out.as_os_str(),
            path.as_ref(),
        ],
    );
    // Under load: SIGKILL, no chance to flush or seal anything.
    g.gw.signal("KILL");
    let mut g = g;
    assert!(g.gw.wait_exit(Duration::from_secs(20)).is_some());
    assert!(wait_exit(&mut driver.0).success());
    let acked = read_acked(&out);
    assert!(acked.len() >= 400, "{} downloads finished", acked.len());

    restart_and_stop(tollgate_bin(), &g.gw.config, g.gw.dir());
    // Per session, in order: each request, then whether a digest of the
    // whole body followed it before the next request.
    let mut open: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut digested = HashSet::new();
    let mut requested = HashSet::new();
    for line in verified_export(tollgate_bin(), rec.path()).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(session) = v["session"].as_u64() else {
            continue;
        };
        if let Some(req) = request_of(&v) {
            requested.insert(req);
            open.insert(session, req);
        } else if let Some(sha) = v["http.body_sha256"].as_str()
            && let Some(req) = open.remove(&session)
        {
            assert_eq!(sha, hex, "the digest of {req:?}");
            assert_eq!(v["http.body_length"], SIZE, "{line}");
            digested.insert(req);
        }
    }
    let no_request: Vec<_> = acked.iter().filter(|a| !requested.contains(a)).collect();
    let no_digest: Vec<_> = acked.iter().filter(|a| !digested.contains(a)).collect();
    eprintln!(
        "{path}: {} downloads finished; after kill -9 {} lack their request, {} their digest",
        acked.len(),
        no_request.len(),
        no_digest.len()
    );
    assert!(
        no_request.is_empty(),
        "read but not recorded: {no_request:?}"
    );
    assert!(
        no_digest.is_empty(),
        "read whole, but the recording lacks the body's digest: {no_digest:?}"
    );
}
