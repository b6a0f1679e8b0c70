//! Acknowledged statements survive a crash (issue 11 item 8): psycopg2
//! clients insert through the gateway as fast as they can, each logging the
//! statements whose response it received; the gateway is killed with
//! SIGKILL under that load, restarted (recovery), stopped, and its
//! recording exported. With `durability = "before_forward"` every
//! acknowledged statement is in the export; with `batch` only a tail of
//! each session may be missing (the documented loss window), never a
//! statement in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::crash::{
    collect_inserts, read_acked, restart_and_stop, start_load, verified_export, wait_exit,
};

use common::pggw::PgGateway;
use common::*;

/// Clients that insert until the gateway goes away (or 60 s pass), print
/// `warm` once 8000 statements were acknowledged in all, and at the end
/// write `client n` for every acknowledged statement to the output file.
const DRIVER: &str = r#"
import sys, threading, time, psycopg2
conninfo, clients, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
acked = [[] for _ in range(clients)]
total = [0]
lock = threading.Lock()
deadline = time.monotonic() + 60
def run(c):
    try:
        conn = psycopg2.connect(conninfo)
        conn.autocommit = True
        cur = conn.cursor()
        i = 0
        while time.monotonic() < deadline:
            cur.execute("INSERT INTO acked(client, n) VALUES (%d, %d) RETURNING id" % (c, i))
            cur.fetchone()
            acked[c].append(i)
            i += 1
            with lock:
                total[0] += 1
                if total[0] == 8000:
                    print("warm", flush=True)
    except Exception as e:
        print("client %d stopped: %s" % (c, str(e).strip().splitlines()[0] if str(e).strip() else e), file=sys.stderr)
threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
with open(out, "w") as f:
    for c in range(clients):
        for n in acked[c]:
            f.write("%d %d\n" % (c, n))
print("done", flush=True)
"#;

/// The binary under test; `TOLLGATE_TEST_BIN` runs the restart and the
/// reads with another build (to show how that build fares).
fn bin() -> String {
    std::env::var("TOLLGATE_TEST_BIN").unwrap_or_else(|_| tollgate_bin().to_owned())
}

/// (client, n) of every INSERT the export holds as client→target data.
fn recorded_statements(rec: &Path) -> HashSet<(u64, u64)> {
    let mut got = HashSet::new();
    for line in verified_export(&bin(), rec).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "client_data" && v["encoding"] == "utf8" {
            collect_inserts(v["data"].as_str().unwrap_or(""), &mut got);
        }
    }
    got
}

/// Per client, the acknowledged statement numbers missing from the export.
type Lost = BTreeMap<u64, Vec<u64>>;

/// Runs the load, kills the gateway under it, restarts it and returns, per
/// client, the acknowledged statement numbers that the export lacks, and
/// how many statements were acknowledged in all.
fn crash_under_load(name: &str, durability: &str) -> (Lost, Vec<(u64, u64)>) {
    let rec = tempfile::tempdir().unwrap();
    let g = PgGateway::builder()
        .shards(2)
        .tables(&format!(
            "[recorder]\ndir = \"{}\"\ndurability = \"{durability}\"\n",
            rec.path().display()
        ))
        .start(name);
    g.direct(&format!(
        "CREATE TABLE acked(id bigserial PRIMARY KEY, client int, n int); ALTER TABLE acked OWNER TO {}",
        g.role
    ));
    let token = g.token("ci-job", "ci", "10m");
    let out = g.gw.dir().join("acked.txt");
    let conninfo = g.conninfo(&token);
    let mut driver = start_load(DRIVER, [conninfo.as_ref(), "8".as_ref(), out.as_os_str()]);
    // Under load: SIGKILL, no chance to flush or seal anything.
    g.gw.signal("KILL");
    let mut gw = g;
    assert!(gw.gw.wait_exit(Duration::from_secs(20)).is_some());
    assert!(wait_exit(&mut driver.0).success());
    let acked = read_acked(&out);
    assert!(acked.len() >= 8000, "{} acknowledged", acked.len());

    restart_and_stop(&bin(), &gw.gw.config, gw.gw.dir());
    let recorded = recorded_statements(rec.path());
    let mut missing = Lost::new();
    for &(c, n) in &acked {
        if !recorded.contains(&(c, n)) {
            missing.entry(c).or_default().push(n);
        }
    }
    eprintln!(
        "{durability}: {} statements acknowledged, {} missing from the recording after kill -9",
        acked.len(),
        missing.values().map(Vec::len).sum::<usize>()
    );
    (missing, acked)
}

#[test]
fn before_forward_loses_no_acknowledged_statement_on_kill_9() {
    let (missing, _) = crash_under_load("crash_strict", "before_forward");
    assert!(
        missing.is_empty(),
        "acknowledged but not recorded: {missing:?}"
    );
}

#[test]
fn batch_loses_at_most_a_tail_of_each_session_on_kill_9() {
    let (missing, acked) = crash_under_load("crash_batch", "batch");
    for (client, lost) in &missing {
        let last = acked
            .iter()
            .filter(|(c, _)| c == client)
            .map(|(_, n)| *n)
            .max()
            .unwrap();
        // Statements are numbered 0.. per client: a lost tail is the last
        // `lost.len()` of them, in order.
        let first_lost = last + 1 - lost.len() as u64;
        assert_eq!(
            lost,
            &(first_lost..=last).collect::<Vec<_>>(),
            "client {client} lost statements in the middle"
        );
    }
}

#[test]
fn always_loses_no_acknowledged_statement_on_kill_9() {
    // `always` promises each record fsynced before the session proceeds:
    // it is held to the strict mode's guarantee.
    let (missing, _) = crash_under_load("crash_always", "always");
    assert!(
        missing.is_empty(),
        "acknowledged but not recorded: {missing:?}"
    );
}
