//! A fleet of three tollgate processes (own ports, admin listeners and
//! host ids) sharing control state in a real PostgreSQL (`[cluster]`, over
//! verified TLS), in front of a target PostgreSQL, driven with real psql and
//! the `tollgate` CLI: approvals asked on one host and decided on another,
//! revocations and kills across hosts, a dead host leaving the fleet list,
//! reviewers racing, the control database going away under load, and the
//! schema's migrations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::control::{CTL_PASSWORD, CTL_ROLE, ControlDb, control};
use common::pg::{Cluster, cluster};
use common::pggw::mint;
use common::{Gateway, tollgate_bin};
use serde_json::Value;

/// Inserts wait for a reviewer.
const RULES: &str = r#"
[[target.policy.rules]]
name = "held-needs-review"
action = "approve"
message = "writes to held need a reviewer"
classes = ["insert"]
"#;

struct Fleet {
    /// Where the control database lives.
    ctl: &'static Cluster,
    ctl_db: String,
    control_db: ControlDb,
    dir: tempfile::TempDir,
    key: PathBuf,
    jwks: PathBuf,
    target_db: String,
    target_role: String,
    reconcile: &'static str,
    approval_timeout: &'static str,
}

struct Host {
    gw: Gateway,
    port: u16,
    id: String,
}

impl Fleet {
    /// A control database `ctl_<name>` on `ctl`, a target database with a
    /// table `held`, a signing key every host trusts.
    fn new(ctl: &'static Cluster, name: &str) -> Fleet {
        let target_db = format!("db_{name}");
        let target_role = format!("app_{name}");
        cluster().create_db(&target_db, &target_role, &format!("Stored-{name}-pw"));
        cluster().sql(
            &target_db,
            &format!("create table held (id int); alter table held owner to {target_role}"),
        );
        let dir = tempfile::tempdir().unwrap();
        let control_db = ControlDb::new(ctl, name, dir.path());
        let keys = dir.path().join("keys");
        let out = Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::write(dir.path().join("target.pw"), format!("Stored-{name}-pw\n")).unwrap();
        Fleet {
            ctl,
            ctl_db: control_db.db.clone(),
            control_db,
            key: keys.join("tollgate-dev-key.pem"),
            jwks: keys.join("tollgate-dev-jwks.json"),
            dir,
            target_db,
            target_role,
            reconcile: "1s",
            approval_timeout: "30s",
        }
    }

    fn config(&self, host_id: &str, user: &str) -> String {
        format!(
            r#"[engine]
shards = 2

[admin]
listen = "127.0.0.1:0"
reviewer_groups = ["reviewers"]
approval_timeout = "{timeout}"

{cluster}

[identity]
[[identity.issuer]]
name = "test"
issuer = "{iss}"
audience = ["{aud}"]
jwks_file = "{jwks}"

[[target]]
name = "{db}"
protocol = "postgres"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{up}"
[target.credential]
user = "{role}"
password_file = "{tpw}"
[target.access]
groups = ["ci"]
{RULES}
"#,
            timeout = self.approval_timeout,
            cluster = self.control_db.section(host_id, user, self.reconcile),
            iss = common::pggw::ISS,
            aud = common::pggw::AUD,
            jwks = self.jwks.display(),
            db = self.target_db,
            up = cluster().port,
            role = self.target_role,
            tpw = self.dir.path().join("target.pw").display(),
        )
    }

    fn host(&self, host_id: &str) -> Host {
        self.host_as(host_id, CTL_ROLE)
    }

    fn host_as(&self, host_id: &str, user: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tollgate.toml");
        std::fs::write(&cfg, self.config(host_id, user)).unwrap();
        let mut gw = Gateway::spawn_in(dir, cfg);
        gw.wait_ready();
        let port = gw.port(&self.target_db);
        Host {
            gw,
            port,
            id: host_id.into(),
        }
    }

    fn token(&self, sub: &str) -> String {
        mint(&self.key, sub, "ci", "10m", None)
    }

    fn ctl_sql(&self, sql: &str) -> String {
        self.ctl.sql(&self.ctl_db, sql)
    }

    fn target_sql(&self, sql: &str) -> String {
        cluster().sql(&self.target_db, sql)
    }

    fn psql_cmd(&self, h: &Host, token: &str, sql: &str) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(h.port.to_string())
            .args(["-U", "ci-job", "-d", &self.target_db, "-c", sql])
            .env("PGPASSWORD", token)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    fn psql(&self, h: &Host, token: &str, sql: &str) -> (bool, String) {
        let out = self.psql_cmd(h, token, sql).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn psql_spawn(&self, h: &Host, token: &str, sql: &str) -> Child {
        self.psql_cmd(h, token, sql)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A psql on `h` whose `pg_sleep` the target is running.
    fn sleeping_session(&self, h: &Host, token: &str, secs: u32) -> Child {
        let sql = format!("select pg_sleep({secs})");
        let child = self.psql_spawn(h, token, &sql);
        assert_eventually!(
            self.target_sql(&format!(
                "select count(*) from pg_stat_activity where query = '{sql}' and datname = current_database()"
            )) == "1",
            Duration::from_secs(15),
            "the sleep never started on the target"
        );
        child
    }
}

impl Host {
    fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = self.gw.cli(args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, out) = self.cli(&all);
        assert!(ok, "tollgate {args:?} on {} failed: {out}", self.id);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn readyz(&self) -> Value {
        let out = Command::new("curl")
            .args([
                "-s",
                &format!("http://127.0.0.1:{}/readyz", self.gw.admin_port),
            ])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn cluster_check(&self) -> String {
        self.readyz()["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "cluster"))
            .map(|c| c["detail"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }
}

fn exited_within(child: &mut Child, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.try_wait().unwrap().is_some()
}

/// Poll `f` until it yields a value; panic saying `what` after `d`.
fn wait_for<T>(what: &str, d: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + d;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pending approval requests the fleet shows through `h`.
fn pending(h: &Host) -> Vec<Value> {
    h.cli_json(&["approvals", "list"])["approvals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn an_approval_asked_on_host_1_is_approved_through_host_3s_cli() {
    let f = Fleet::new(control(), "approve");
    let h1 = f.host("h1");
    let h2 = f.host("h2");
    let h3 = f.host("h3");
    let mut held = f.psql_spawn(&h1, &f.token("alice"), "insert into held values (42)");
    let list = wait_for(
        "host 3 never saw host 1's request",
        Duration::from_secs(15),
        || Some(pending(&h3)).filter(|l| !l.is_empty()),
    );
    let id = list[0]["id"].as_u64().unwrap().to_string();
    assert_eq!(list[0]["requester"], "alice");
    assert_eq!(f.target_sql("select count(*) from held"), "0");
    // The requester never decides, even as a reviewer on another host.
    let own = mint(&f.key, "alice", "reviewers", "10m", None);
    let (ok, out) = h3.cli(&["approvals", "approve", &id, "--token", &own]);
    assert!(!ok && out.contains("alice requested approval"), "{out}");
    let (ok, out) = h3.cli(&[
        "approvals",
        "approve",
        &id,
        "--reason",
        "checked",
        "--grant-minutes",
        "10",
    ]);
    assert!(ok, "{out}");
    assert!(exited_within(&mut held, Duration::from_secs(10)));
    let out = held.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(f.target_sql("select id from held"), "42");
    // Recorded once, by whom, from which host.
    assert_eq!(
        f.ctl_sql(&format!(
            "select state || ' ' || decided_by from tollgate_approvals where id = {id}"
        )),
        "approved local-admin"
    );
    // The audit row is queued to the agent: it lands a moment later.
    assert_eventually!(
        f.ctl_sql(&format!(
            "select host_id || ' ' || action || ' ' || actor from tollgate_audit \
             where object = 'approval/{id}' order by id"
        )) == "h3 approve alice\nh3 approve local-admin",
        Duration::from_secs(5),
        "no audit row for the approval"
    );
    // The grant holds on every host: alice's next insert through host 2 is
    // not held, once host 2 has read the grant (its next reconcile).
    wait_for(
        "host 2 never learned the grant",
        Duration::from_secs(10),
        || {
            h2.cli_json(&["approvals", "grants"])["grants"]
                .as_array()
                .filter(|g| !g.is_empty())
                .cloned()
        },
    );
    let (ok, out) = f.psql(&h2, &f.token("alice"), "insert into held values (43)");
    assert!(ok, "{out}");
    assert_eq!(f.target_sql("select count(*) from held"), "2");
    // Deciding again is refused and says who won.
    let (ok, out) = h1.cli(&["approvals", "deny", &id, "--reason", "late"]);
    assert!(!ok);
    assert!(out.contains("already approved by local-admin"), "{out}");
}

#[test]
fn a_revocation_on_host_2_ends_a_live_session_on_host_1_within_a_second() {
    let mut f = Fleet::new(control(), "revoke");
    // Only the notification can be this fast: the reconcile is far away.
    f.reconcile = "60s";
    let h1 = f.host("h1");
    let h2 = f.host("h2");
    let mut live = f.sleeping_session(&h1, &f.token("mallory"), 60);
    let (ok, out) = h2.cli(&["revoke", "--subject", "mallory", "--reason", "leaked"]);
    assert!(ok, "{out}");
    let t = Instant::now();
    assert!(
        exited_within(&mut live, Duration::from_secs(1)),
        "the session on host 1 was still live {:?} after the revocation on host 2",
        t.elapsed()
    );
    // New sessions are refused on every host.
    let (ok, out) = f.psql(&h1, &f.token("mallory"), "select 1");
    assert!(!ok && out.contains("authentication failed"), "{out}");
    let (ok, _) = f.psql(&h2, &f.token("mallory"), "select 1");
    assert!(!ok);
    let (ok, _) = f.psql(&h1, &f.token("bob"), "select 1");
    assert!(ok);
    // Lifted on host 1, it lifts everywhere.
    let list = h1.cli_json(&["revocations", "list"]);
    let id = list["revocations"][0]["id"].as_u64().unwrap().to_string();
    let (ok, out) = h1.cli(&["revocations", "lift", &id]);
    assert!(ok, "{out}");
    assert_eventually!(
        f.psql(&h2, &f.token("mallory"), "select 1").0,
        Duration::from_secs(5),
        "the lift never reached host 2"
    );
}

#[test]
fn the_fleet_list_shows_every_host_a_kill_reaches_another_host_and_a_dead_host_leaves() {
    let f = Fleet::new(control(), "fleetlist");
    let mut h1 = f.host("h1");
    let h2 = f.host("h2");
    let mut a = f.sleeping_session(&h1, &f.token("carol"), 60);
    let mut b = f.sleeping_session(&h1, &f.token("dave"), 61);
    let sessions = wait_for(
        "host 2 does not list host 1's two sessions",
        Duration::from_secs(10),
        || {
            h2.cli_json(&["sessions", "list"])["sessions"]
                .as_array()
                .cloned()
                .filter(|s| s.len() == 2)
        },
    );
    assert!(sessions.iter().all(|s| s["host"] == "h1"), "{sessions:?}");
    let (ok, table) = h2.cli(&["sessions", "list"]);
    assert!(
        ok && table.contains("HOST") && table.contains("h1"),
        "{table}"
    );
    // Kill carol's session from host 2.
    let carol = sessions.iter().find(|s| s["subject"] == "carol").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out) = h2.cli(&["sessions", "kill", &carol]);
    assert!(ok, "{out}");
    assert!(exited_within(&mut a, Duration::from_secs(5)));
    // kill -9 host 1: its remaining session leaves the list after the timeout.
    h1.gw.child.kill().unwrap();
    h1.gw.child.wait().unwrap();
    assert_eventually!(
        h2.cli_json(&["sessions", "list"])["sessions"]
            .as_array()
            .is_some_and(|s| s.is_empty()),
        Duration::from_secs(10),
        "host 1's sessions outlived it"
    );
    assert_eventually!(
        f.ctl_sql("select count(*) from tollgate_sessions where host_id = 'h1'") == "0",
        Duration::from_secs(10),
        "host 1's rows were never swept"
    );
    // Its gateway gone, dave's psql ended too.
    assert!(exited_within(&mut b, Duration::from_secs(5)));
}

#[test]
fn reviewers_racing_on_one_approval_record_exactly_one_decision() {
    let f = Fleet::new(control(), "race");
    let hosts = [f.host("h1"), f.host("h2"), f.host("h3")];
    let mut held = f.psql_spawn(&hosts[0], &f.token("erin"), "insert into held values (7)");
    let list = wait_for("no request", Duration::from_secs(15), || {
        Some(pending(&hosts[1])).filter(|l| !l.is_empty())
    });
    let id = list[0]["id"].as_u64().unwrap().to_string();
    // 24 reviewers, 8 on each host, released at once: every request is
    // connected and written before any is answered.
    let won = AtomicUsize::new(0);
    let told = AtomicUsize::new(0);
    let gate = std::sync::Barrier::new(24);
    std::thread::scope(|s| {
        for i in 0..24 {
            let (h, id, won, told, gate) = (&hosts[i % 3], &id, &won, &told, &gate);
            s.spawn(move || {
                let action = if i % 2 == 0 { "approve" } else { "deny" };
                let body = format!("{{\"reason\": \"reviewer {i}\"}}");
                let req = format!(
                    "POST /v1/approvals/{id}/{action} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len(),
                    port = h.gw.admin_port,
                );
                let mut sock = std::net::TcpStream::connect(("127.0.0.1", h.gw.admin_port)).unwrap();
                gate.wait();
                sock.write_all(req.as_bytes()).unwrap();
                let mut reply = String::new();
                sock.read_to_string(&mut reply).unwrap();
                if reply.starts_with("HTTP/1.1 200") {
                    won.fetch_add(1, Ordering::SeqCst);
                } else {
                    assert!(reply.starts_with("HTTP/1.1 409") && reply.contains("already"), "{reply}");
                    told.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(won.load(Ordering::SeqCst), 1);
    assert_eq!(told.load(Ordering::SeqCst), 23);
    assert_eventually!(
        f.ctl_sql(&format!(
            "select count(*) from tollgate_audit where object = 'approval/{id}'"
        )) == "1",
        Duration::from_secs(5),
        "not one audit row for the decision"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        f.ctl_sql(&format!(
            "select count(*) from tollgate_audit where object = 'approval/{id}'"
        )),
        "1"
    );
    assert_eq!(
        f.ctl_sql(&format!(
            "select count(*) from tollgate_approvals where id = {id} and decided_by is not null"
        )),
        "1"
    );
    assert!(exited_within(&mut held, Duration::from_secs(10)));
}

#[test]
fn the_control_database_stopped_under_load_leaves_the_data_path_alone_and_hosts_reconcile() {
    // Its own control cluster: this test stops it.
    let ctl: &'static Cluster = Box::leak(Box::new(Cluster::extra("down")));
    ctl.sql(
        "postgres",
        &format!("CREATE ROLE {CTL_ROLE} LOGIN PASSWORD '{CTL_PASSWORD}'"),
    );
    let mut f = Fleet::new(ctl, "down");
    f.approval_timeout = "3s";
    // Host 1 logs in as its own role, so it alone can be cut off later.
    ctl.sql(
        "postgres",
        &format!(
            "CREATE ROLE tollgate_h1 LOGIN PASSWORD '{CTL_PASSWORD}' IN ROLE {CTL_ROLE};
             ALTER ROLE tollgate_h1 SET role = '{CTL_ROLE}'"
        ),
    );
    let h2 = f.host("h2");
    let h1 = f.host_as("h1", "tollgate_h1");
    let (ok, out) = h2.cli(&["revoke", "--subject", "known-bad"]);
    assert!(ok, "{out}");
    assert_eventually!(
        !f.psql(&h1, &f.token("known-bad"), "select 1").0,
        Duration::from_secs(5),
        "host 1 never applied the revocation"
    );
    // Load: a loop of psql sessions through host 1.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok_n, fail_n) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok_n, fail_n) = (stop.clone(), ok_n.clone(), fail_n.clone());
        let cmd_token = f.token("loader");
        let port = h1.port;
        let db = f.target_db.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let out = Command::new("psql")
                    .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .args(["-U", "ci-job", "-d", &db, "-c", "select count(*) from held"])
                    .env("PGPASSWORD", &cmd_token)
                    .env("PGSSLMODE", "disable")
                    .output()
                    .unwrap();
                if out.status.success() {
                    ok_n.fetch_add(1, Ordering::SeqCst);
                } else {
                    fail_n.fetch_add(1, Ordering::SeqCst);
                    eprintln!("load failure: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
        })
    };
    let live = f.sleeping_session(&h1, &f.token("steady"), 120);
    ctl.stop();
    assert_eventually!(
        h1.cluster_check().starts_with("degraded"),
        Duration::from_secs(10),
        "readyz never said degraded: {}",
        h1.readyz()
    );
    assert_eq!(h1.readyz()["ready"], true, "{}", h1.readyz());
    // A revocation already known keeps applying.
    assert!(!f.psql(&h1, &f.token("known-bad"), "select 1").0);
    // A statement needing approval cannot be asked: denied at its timeout.
    let t = Instant::now();
    let (ok, out) = f.psql(&h1, &f.token("frank"), "insert into held values (1)");
    assert!(!ok, "{out}");
    assert!(t.elapsed() >= Duration::from_secs(2), "{out}");
    assert_eq!(f.target_sql("select count(*) from held where id = 1"), "0");
    // Revoking needs the database: refused, not silently local.
    let (ok, out) = h1.cli(&["revoke", "--subject", "someone"]);
    assert!(!ok && out.contains("not stored"), "{out}");
    let before = ok_n.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        ok_n.load(Ordering::SeqCst) > before,
        "the data path stalled"
    );
    ctl.start_again();
    assert_eventually!(
        h1.cluster_check().starts_with("connected"),
        Duration::from_secs(15),
        "host 1 never reconnected: {}",
        h1.readyz()
    );
    // Cut host 1 off alone; a revocation made meanwhile on host 2 applies
    // once host 1 is back, through its reconcile.
    ctl.sql(
        "postgres",
        "ALTER ROLE tollgate_h1 NOLOGIN;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'tollgate_h1'",
    );
    assert_eventually!(
        h1.cluster_check().starts_with("degraded"),
        Duration::from_secs(10),
        "host 1 did not notice it was cut off"
    );
    let (ok, out) = h2.cli(&["revoke", "--subject", "steady"]);
    assert!(ok, "{out}");
    let mut live = live;
    ctl.sql("postgres", "ALTER ROLE tollgate_h1 LOGIN");
    assert!(
        exited_within(&mut live, Duration::from_secs(15)),
        "host 1 never applied the revocation made while it was away; log:\n{}",
        h1.gw.log_text()
    );
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(
        fail_n.load(Ordering::SeqCst),
        0,
        "sessions failed while the control database was down"
    );
    assert!(ok_n.load(Ordering::SeqCst) > 5);
    // The password never reached a log.
    assert!(!h1.gw.log_text().contains(CTL_PASSWORD));
    assert!(!h2.gw.log_text().contains(CTL_PASSWORD));
}

#[test]
fn migrate_twice_is_idempotent_and_a_newer_schema_is_refused() {
    let f = Fleet::new(control(), "migrate");
    let cfg = f.dir.path().join("migrate.toml");
    std::fs::write(&cfg, f.config("m1", CTL_ROLE)).unwrap();
    let migrate = || {
        let out = Command::new(tollgate_bin())
            .args(["cluster", "migrate", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = migrate();
    assert!(ok && out.contains("from version 0 to 2"), "{out}");
    let (ok, out) = migrate();
    assert!(ok && out.contains("already at version 2"), "{out}");
    assert_eq!(
        f.ctl_sql("select count(*) from tollgate_schema_version"),
        "2"
    );
    let out = Command::new(tollgate_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "cluster: host m1 (control database: TLS, certificate and host name verified)"
        ),
        "{text}"
    );
    f.ctl_sql("insert into tollgate_schema_version (version) values (99)");
    let (ok, out) = migrate();
    assert!(
        !ok && out.contains("version 99, newer than this tollgate knows"),
        "{out}"
    );
    let mut gw = Gateway::spawn(&f.config("m2", CTL_ROLE));
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .expect("started on a newer schema");
    assert!(!status.success());
    assert!(
        gw.log_text().contains("newer than this tollgate knows"),
        "{}",
        gw.log_text()
    );
}

/// Not a test (it asserts nothing on time): the measurements for
/// bench/README.md, run on demand with
/// `cargo test --test cluster -- --ignored --nocapture measure_`.
/// Revocation latency across hosts: a session on host 1, a revocation
/// POSTed to host 2's admin API, the time until host 1's session is gone
/// (its psql exits), N times.
#[test]
#[ignore]
fn measure_revocation_latency_across_hosts() {
    let mut f = Fleet::new(control(), "revlat");
    f.reconcile = "60s";
    let h1 = f.host("h1");
    let h2 = f.host("h2");
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let sub = format!("victim{i}");
        let mut live = f.sleeping_session(&h1, &f.token(&sub), 100 + i as u32);
        let body = format!("{{\"subject\":\"{sub}\"}}");
        let url = format!("http://127.0.0.1:{}/v1/revocations", h2.gw.admin_port);
        let t = Instant::now();
        let out = Command::new("curl")
            .args([
                "-s",
                "-f",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .args(["-d", &body, &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(exited_within(&mut live, Duration::from_secs(10)));
        samples.push(t.elapsed());
    }
    samples.sort();
    let pct =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "revocation latency across hosts, N={n}: p50 {:?} p99 {:?} max {:?} (from the POST on host 2 to host 1's session gone)",
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1]
    );
}

/// Statements/s of one host with and without `[cluster]`, same target,
/// same build, interleaved rounds: pgbench `select 1` over 8 connections.
#[test]
#[ignore]
fn measure_statements_per_second_with_and_without_cluster() {
    let f = Fleet::new(control(), "tps");
    let with = f.host("h1");
    let _other = f.host("h2");
    // The same configuration without `[cluster]`.
    let text = f.config("h0", CTL_ROLE);
    let start = text.find("[cluster]").unwrap();
    let end = text.find("[identity]").unwrap();
    let plain_cfg = format!("{}{}", &text[..start], &text[end..]);
    let mut without = Gateway::start(&plain_cfg);
    without.wait_ready();
    let without_port = without.port(&f.target_db);
    let script = f.dir.path().join("select1.sql");
    std::fs::write(&script, "select 1;\n").unwrap();
    let token = f.token("bench");
    let secs = std::env::var("SECS").unwrap_or_else(|_| "10".into());
    let run = |port: u16| -> f64 {
        let out = Command::new("pgbench")
            .args([
                "-n", "-c", "8", "-j", "2", "-T", &secs, "-M", "simple", "-f",
            ])
            .arg(&script)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "ci-job",
                &f.target_db,
            ])
            .env("PGPASSWORD", &token)
            .env("PGSSLMODE", "disable")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    for round in 0..3 {
        let a = run(without_port);
        let b = run(with.port);
        println!(
            "round {round}: without [cluster] {a:.0} tps, with [cluster] {b:.0} tps ({:.3}x)",
            b / a
        );
    }
}
