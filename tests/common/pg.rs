//! A throwaway PostgreSQL 15 cluster for end-to-end tests: initdb as the
//! `postgres` user (it refuses root) in a temp dir, on a free port, with
//! SCRAM password auth over TCP. One cluster per test binary; a watchdog
//! stops it when the test process exits, so nothing outlives the run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Cluster {
    pub port: u16,
    /// The CA that signed the server's certificate (CN/SAN localhost, 127.0.0.1).
    pub ca: PathBuf,
    pub dir: PathBuf,
    pub socket_dir: PathBuf,
    pub bin: PathBuf,
}

/// The Debian location of PostgreSQL 15's server binaries.
fn pg_bin() -> PathBuf {
    let p = PathBuf::from("/usr/lib/postgresql/15/bin");
    assert!(
        p.join("initdb").exists(),
        "PostgreSQL 15 is not installed (tests/deps.sh installs postgresql-15)"
    );
    p
}

fn as_postgres(cmd: &str) -> Output {
    let out = Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c", cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The shared cluster for this test binary, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start(DEFAULT_MAX_CONNECTIONS))
}

/// Connection slots of a test cluster (a few are reserved to superusers).
const DEFAULT_MAX_CONNECTIONS: u32 = 200;

/// [`cluster`] for a test binary that needs more connections than the
/// default: call it before anything else starts the cluster (it has no
/// effect on a cluster already started).
pub fn cluster_with_max_connections(n: u32) -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start(n))
}

/// [`cluster`] for a test binary that restarts the server
/// ([`Cluster::restart`]): its watchdog follows the test process only, not
/// the postmaster, and stops the server with `pg_ctl`. Call it before
/// anything else starts the cluster.
pub fn restartable_cluster() -> &'static Cluster {
    RESTARTABLE.store(true, std::sync::atomic::Ordering::SeqCst);
    cluster()
}

static RESTARTABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Cluster {
    /// PostgreSQL cannot listen on port 0 and tests reach it over TCP, so a
    /// port is picked free and, should another process take it before the
    /// server binds it (the race of bind-and-release), the cluster is made
    /// again on a fresh port in a fresh directory.
    fn start(max_connections: u32) -> Cluster {
        let restartable = RESTARTABLE.load(std::sync::atomic::Ordering::SeqCst);
        Cluster::start_tagged("", max_connections, restartable)
    }

    /// A second, separate cluster (its own port and directory, `tag` in
    /// its name) that a test may stop and start ([`Cluster::stop`],
    /// [`Cluster::start_again`]) without touching the shared one; stopped
    /// when the test process exits.
    pub fn extra(tag: &str) -> Cluster {
        Cluster::start_tagged(tag, DEFAULT_MAX_CONNECTIONS, true)
    }

    fn start_tagged(tag: &str, max_connections: u32, restartable: bool) -> Cluster {
        for attempt in 0..5 {
            if let Some(c) = Cluster::start_once(tag, attempt, max_connections, restartable) {
                return c;
            }
        }
        panic!("PostgreSQL could not bind a port in 5 attempts");
    }

    /// One try: `None` when the server did not come up on its port (it
    /// could not bind it and exited; the watchdog then removes its directory).
    fn start_once(
        tag: &str,
        attempt: u32,
        max_connections: u32,
        restartable: bool,
    ) -> Option<Cluster> {
        let bin = pg_bin();
        let dir =
            std::env::temp_dir().join(format!("tollgate-pg-{}{tag}-{attempt}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        let data = dir.join("data");
        let socket_dir = dir.clone();
        let port = super::free_port();
        as_postgres(&format!(
            "{}/initdb -D {} -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null",
            bin.display(),
            data.display()
        ));
        // TLS on the server too, so upstream TLS verification and SCRAM
        // channel binding meet a real PostgreSQL.
        let ca = super::pki::Ca::new(&dir, "pg-server-ca");
        let (crt, key) = ca.server(&dir, "pg-server");
        std::fs::copy(&crt, data.join("server.crt")).unwrap();
        std::fs::copy(&key, data.join("server.key")).unwrap();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             max_connections = {max_connections}\nshared_buffers = 64MB\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nlog_connections = on\nlog_line_prefix = '%m [%p] %u@%d '\n\
             logging_collector = off\npassword_encryption = 'scram-sha-256'\n",
            socket_dir.display()
        );
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        // md5 for one role, so the gateway's md5 path meets a real server too.
        let hba = "local all all trust\nhost all md5user 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status()
            .unwrap();
        let log = dir.join("server.log");
        // The watchdog: postgres runs as long as this test process does.
        let me = std::process::id();
        let script = if restartable {
            format!(
                "{bin}/pg_ctl -D {data} -l {log} -w -t 60 start >/dev/null 2>&1; \
                 while [ -d /proc/{me} ]; do sleep 0.5; done; \
                 {bin}/pg_ctl -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
                bin = bin.display(),
                data = data.display(),
                log = log.display(),
                dir = dir.display(),
            )
        } else {
            format!(
                "{bin}/postgres -D {data} >>{log} 2>&1 & pg=$!; \
             while [ -d /proc/{me} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
             kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}",
                bin = bin.display(),
                data = data.display(),
                log = log.display(),
                dir = dir.display(),
            )
        };
        // The watchdog outlives this call by design (it stops the cluster
        // when the test process exits), so it is never waited for.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let c = Cluster {
            port,
            ca: dir.join("pg-server-ca.pem"),
            dir,
            socket_dir,
            bin,
        };
        let up = || c.try_sql("postgres", "select 1").is_some();
        let bind_failed = || {
            let log = c.server_log();
            !c.dir.exists()
                || log.contains("could not bind")
                || log.contains("could not create any TCP/IP sockets")
        };
        crate::assert_eventually!(
            up() || bind_failed(),
            Duration::from_secs(30),
            "PostgreSQL did not start; log:\n{}",
            c.server_log()
        );
        if up() {
            return Some(c);
        }
        eprintln!("PostgreSQL did not bind port {port}, again on another");
        None
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn psql_cmd(&self, db: &str) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db]);
        cmd
    }

    /// Run SQL as the superuser over the unix socket (the direct path, not
    /// through the gateway); None on failure.
    pub fn try_sql(&self, db: &str, sql: &str) -> Option<String> {
        let out = self.psql_cmd(db).arg("-c").arg(sql).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_cmd(db).arg("-c").arg(sql).output().unwrap();
        assert!(
            out.status.success(),
            "direct SQL failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh database owned by a fresh login role with `password`.
    pub fn create_db(&self, db: &str, role: &str, password: &str) {
        self.sql(
            "postgres",
            &format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
        );
        self.sql("postgres", &format!("CREATE DATABASE {db} OWNER {role}"));
    }

    /// `pg_ctl restart` (fast: sessions are ended), waiting until the
    /// server accepts connections again. Only on a [`restartable_cluster`].
    pub fn restart(&self) {
        assert!(RESTARTABLE.load(std::sync::atomic::Ordering::SeqCst));
        as_postgres(&format!(
            "{}/pg_ctl -D {} -l {} -m fast -w -t 60 restart >/dev/null",
            self.bin.display(),
            self.data_dir().display(),
            self.dir.join("server.log").display()
        ));
        crate::assert_eventually!(
            self.try_sql("postgres", "select 1").is_some(),
            Duration::from_secs(30),
            "PostgreSQL did not come back after the restart"
        );
    }

    /// Stop the server (fast: sessions are ended). Only on a cluster made
    /// restartable ([`restartable_cluster`], [`Cluster::extra`]).
    pub fn stop(&self) {
        as_postgres(&format!(
            "{}/pg_ctl -D {} -m fast -w -t 60 stop >/dev/null",
            self.bin.display(),
            self.data_dir().display(),
        ));
    }

    /// Start a server [`Cluster::stop`] stopped, waiting until it accepts.
    pub fn start_again(&self) {
        as_postgres(&format!(
            "{}/pg_ctl -D {} -l {} -w -t 60 start >/dev/null",
            self.bin.display(),
            self.data_dir().display(),
            self.dir.join("server.log").display()
        ));
        crate::assert_eventually!(
            self.try_sql("postgres", "select 1").is_some(),
            Duration::from_secs(30),
            "PostgreSQL did not come back after the start"
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
}
