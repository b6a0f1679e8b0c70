//! A throwaway MariaDB 10.11 server for end-to-end tests: `mariadb-install-db`
//! as the `mysql` user into a temp dir, a free port, TLS on with a test CA,
//! and accounts for each auth plugin. One server per test binary; a
//! watchdog stops it when the test process exits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Server {
    pub port: u16,
    /// The CA that signed the server certificate (SAN 127.0.0.1, localhost).
    pub ca: PathBuf,
    pub dir: PathBuf,
    pub socket: PathBuf,
}

/// Accounts every server has (all with host `%`, database `app` granted).
pub const NATIVE_USER: &str = "native_user";
pub const NATIVE_PASSWORD: &str = "native pw é";
pub const ED25519_USER: &str = "ed_user";
pub const ED25519_PASSWORD: &str = "ed25519 secret ü";
/// A native-password account the server only admits over TLS.
pub const TLS_USER: &str = "tls_user";
pub const TLS_PASSWORD: &str = "tls-only pw";
pub const DATABASE: &str = "app";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn as_mysql(script: &str) -> Output {
    run(Command::new("su").args(["mysql", "-s", "/bin/sh", "-c", script]))
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The shared server for this test binary, started on first use.
pub fn server() -> &'static Server {
    SERVER.get_or_init(Server::start)
}

impl Server {
    fn start() -> Server {
        for bin in ["mariadb-install-db", "mariadbd", "mariadb"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {bin}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "{bin} is missing (tests/deps.sh installs mariadb-server and mariadb-client)"
            );
        }
        let dir = std::env::temp_dir().join(format!("tollgate-mariadb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let ca = super::pki::Ca::new(&dir, "mariadb-ca");
        let (crt, key) = ca.server(&dir, "mariadb-server");
        run(Command::new("chown").args(["-R", "mysql:mysql"]).arg(&dir));
        as_mysql(&format!(
            "mariadb-install-db --no-defaults --datadir={} --auth-root-authentication-method=normal \
             --skip-test-db >{}/install.log 2>&1",
            data.display(),
            dir.display()
        ));
        let port = super::free_port();
        let socket = dir.join("mysqld.sock");
        // The watchdog: mariadbd runs as long as this test process does.
        let me = std::process::id();
        let script = format!(
            "mariadbd --no-defaults --datadir={data} --port={port} --bind-address=127.0.0.1 \
             --socket={socket} --pid-file={dir}/mysqld.pid --skip-name-resolve \
             --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --max-allowed-packet=64M \
             --local-infile=1 --ssl-cert={crt} --ssl-key={key} --log-error={dir}/error.log & db=$!; \
             while [ -d /proc/{me} ] && kill -0 $db 2>/dev/null; do sleep 0.5; done; \
             kill -TERM $db 2>/dev/null; wait $db; rm -rf {dir}",
            data = data.display(),
            socket = socket.display(),
            dir = dir.display(),
            crt = crt.display(),
            key = key.display(),
        );
        // The watchdog outlives this call by design, so it is never waited for.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("su")
            .args(["mysql", "-s", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Server {
            port,
            ca: ca.cert.clone(),
            dir,
            socket,
        };
        crate::assert_eventually!(
            s.try_sql("SELECT 1").is_some(),
            Duration::from_secs(60),
            "MariaDB did not start; log:\n{}",
            s.error_log()
        );
        s.sql(&format!(
            "INSTALL SONAME 'auth_ed25519';
             CREATE DATABASE {DATABASE};
             CREATE USER {NATIVE_USER}@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{NATIVE_PASSWORD}');
             CREATE USER {ED25519_USER}@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED25519_PASSWORD}');
             CREATE USER {TLS_USER}@'%' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL;
             GRANT ALL ON {DATABASE}.* TO {NATIVE_USER}@'%', {ED25519_USER}@'%', {TLS_USER}@'%';
             GRANT FILE ON *.* TO {NATIVE_USER}@'%';"
        ));
        s
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn cli(&self, sql: &str) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "--no-defaults",
            "-uroot",
            "-N",
            "-B",
            "--default-character-set=utf8mb4",
        ])
        .arg(format!("--socket={}", self.socket.display()))
        .args(["-e", sql]);
        cmd
    }

    /// Runs SQL as root over the unix socket (the direct path); None on failure.
    pub fn try_sql(&self, sql: &str) -> Option<String> {
        let out = self.cli(sql).stdin(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn sql(&self, sql: &str) -> String {
        let out = self.cli(sql).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "direct SQL failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
