//! Acknowledged MySQL statements survive a crash, as PostgreSQL's do
//! (tests/recording_crash_e2e.rs): PyMySQL clients insert through the
//! gateway as fast as they can, each logging the statements whose OK it
//! received; the gateway is killed with SIGKILL under that load, restarted
//! (recovery), stopped, and its recording exported with the CLI. With
//! `durability = "before_forward"` every acknowledged statement is in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A child process, killed if the test ends before it exits.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Restarts the gateway on `config` (recovering the recording), waits
/// until it is ready, and stops it cleanly.
fn restart_and_stop(config: &Path, dir: &Path) {
    let log = dir.join("restart.log");
    let mut gw = Proc(
        Command::new(tollgate_bin())
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .env("TOLLGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert_eventually!(
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tollgate ready")),
        Duration::from_secs(30),
        "restarted gateway never became ready: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let ok = Command::new("kill")
        .args(["-TERM", &gw.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(wait_exit(&mut gw.0).success());
}

/// (client, n) of every INSERT the export holds (as the decoded command
/// or as client→target data).
fn recorded_statements(rec: &Path) -> HashSet<(u64, u64)> {
    let out = Command::new(tollgate_bin())
        .args(["recordings", "export", "--all", "--dir"])
        .arg(rec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let needle = "INSERT INTO acked(client, n) VALUES (";
    let mut got = HashSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        for part in line.split(needle).skip(1) {
            let nums: Vec<u64> = part
                .split(')')
                .next()
                .unwrap_or("")
                .split(", ")
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [c, n] = nums[..] {
                got.insert((c, n));
            }
        }
    }
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
    let mut driver = Proc(
        Command::new(python_bin())
            .arg("-c")
            .arg(DRIVER)
            .arg(g.port.to_string())
            .arg(&token)
            .arg(&g.ca)
            .arg("8")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(driver.0.stdout.take().unwrap()).lines();
    let first = lines.next().map(|l| l.unwrap());
    assert_eq!(
        first.as_deref(),
        Some("warm"),
        "the clients never got going"
    );
    // Under load: SIGKILL, no chance to flush or seal anything.
    g.gw.signal("KILL");
    assert!(g.gw.wait_exit(Duration::from_secs(20)).is_some());
    assert!(wait_exit(&mut driver.0).success());
    let acked: Vec<(u64, u64)> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|x| x.parse::<u64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    assert!(acked.len() >= 3000, "{} acknowledged", acked.len());
    // What the clients were told is what MariaDB holds (at least).
    let rows: usize = g.direct("SELECT COUNT(*) FROM app.acked").parse().unwrap();
    assert!(rows >= acked.len(), "{rows} rows, {} acked", acked.len());

    restart_and_stop(&g.gw.config, g.gw.dir());
    let verify = Command::new(tollgate_bin())
        .args(["recordings", "verify", "--dir"])
        .arg(rec.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
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
