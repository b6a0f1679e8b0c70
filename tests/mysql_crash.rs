//! Acknowledged MySQL statements survive a crash, as PostgreSQL's do
//! (tests/recording_crash_e2e.rs): PyMySQL clients insert through the
//! gateway as fast as they can, each logging the statements whose OK it
//! received; the gateway is killed with SIGKILL under that load, restarted
//! (recovery), stopped, and its recording exported with the CLI. With
//! `durability = "before_forward"` every acknowledged statement is in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::crash::{
    collect_inserts, read_acked, restart_and_stop, start_load, verified_export, wait_exit,
};
use common::mygw::MyGateway;
use common::*;

/// Clients that insert until the gateway goes away (or 60 s pass), print
/// `warm` once 3000 statements were acknowledged in all, and at the end
/// write `client n` for every acknowledged statement to the output file.
const DRIVER: &str = r#"
import sys, threading, time, pymysql
port, token, ca, clients, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
acked = [[] for _ in range(clients)]
total = [0]
lock = threading.Lock()
deadline = time.monotonic() + 60
def run(c):
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user="ci-job", password=token,
            database="app", ssl={"ca": ca}, autocommit=True, connect_timeout=10)
        cur = conn.cursor()
        i = 0
        while time.monotonic() < deadline:
            cur.execute("INSERT INTO acked(client, n) VALUES (%d, %d)" % (c, i))
            acked[c].append(i)
            i += 1
            with lock:
                total[0] += 1
                if total[0] == 3000:
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

/// (client, n) of every INSERT the export holds (as the decoded command
/// or as client→target data).
fn recorded_statements(rec: &Path) -> HashSet<(u64, u64)> {
    let mut got = HashSet::new();
    collect_inserts(&verified_export(tollgate_bin(), rec), &mut got);
    got
}

#[test]
fn before_forward_loses_no_acknowledged_mysql_statement_on_kill_9() {
    let rec = tempfile::tempdir().unwrap();
    let mut g = MyGateway::builder()
        .tables(&format!(
            "[recorder]\ndir = \"{}\"\ndurability = \"before_forward\"\n",
            rec.path().display()
        ))
        .start();
    g.direct("CREATE TABLE app.acked (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT, n INT)");
    let token = g.token("ci-job", "ci");
    let out = g.gw.dir().join("acked.txt");
    let port = g.port.to_string();
    let ca = g.ca.as_os_str();
    let args = [
        port.as_ref(),
        token.as_ref(),
        ca,
        "8".as_ref(),
        out.as_os_str(),
    ];
    let mut driver = start_load(DRIVER, args);
    // Under load: SIGKILL, no chance to flush or seal anything.
    g.gw.signal("KILL");
    assert!(g.gw.wait_exit(Duration::from_secs(20)).is_some());
    assert!(wait_exit(&mut driver.0).success());
    let acked = read_acked(&out);
    assert!(acked.len() >= 3000, "{} acknowledged", acked.len());
    // What the clients were told is what MariaDB holds (at least).
    let rows: usize = g.direct("SELECT COUNT(*) FROM app.acked").parse().unwrap();
    assert!(rows >= acked.len(), "{rows} rows, {} acked", acked.len());

    restart_and_stop(tollgate_bin(), &g.gw.config, g.gw.dir());
    let recorded = recorded_statements(rec.path());
    let missing: Vec<_> = acked.iter().filter(|s| !recorded.contains(s)).collect();
    eprintln!(
        "{} statements acknowledged, {} missing from the recording after kill -9",
        acked.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not recorded: {missing:?}"
    );
}
