//! A tollgate in front of a fresh database of the shared PostgreSQL cluster,
//! with a development issuer, for the PostgreSQL end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::pg::{Cluster, cluster};
use super::{Gateway, tollgate_bin};

pub const AUD: &str = "tollgate";
pub const ISS: &str = "https://issuer.test";

pub struct PgGateway {
    pub gw: Gateway,
    pub port: u16,
    pub db: String,
    pub role: String,
    pub password: String,
    pub key: PathBuf,
    pub password_file: PathBuf,
    pub revocation_file: PathBuf,
}

#[derive(Default)]
pub struct Builder {
    identity_extra: String,
    issuer_extra: String,
    target_extra: String,
    config_extra: String,
    engine_extra: String,
    shards: Option<usize>,
    human_logs: bool,
    recorder_extra: String,
}

impl Builder {
    /// Lines added to `[[identity.issuer]]` (e.g. `leeway = "1s"`).
    pub fn issuer(mut self, extra: &str) -> Self {
        self.issuer_extra.push_str(extra);
        self.issuer_extra.push('\n');
        self
    }
    /// Lines added to the `[[target]]` table itself (before its sub-tables).
    pub fn target(mut self, extra: &str) -> Self {
        self.target_extra.push_str(extra);
        self.target_extra.push('\n');
        self
    }
    /// Whole tables appended after the target (e.g. `[target.policy]`).
    pub fn tables(mut self, extra: &str) -> Self {
        self.config_extra.push_str(extra);
        self.config_extra.push('\n');
        self
    }
    /// Lines added to `[engine]` (e.g. `shutdown_grace = "1s"`).
    pub fn engine(mut self, extra: &str) -> Self {
        self.engine_extra.push_str(extra);
        self.engine_extra.push('\n');
        self
    }
    /// Human (non-JSON) logs, as an operator reads them.
    pub fn human_logs(mut self) -> Self {
        self.human_logs = true;
        self
    }
    /// Lines added to `[recorder]` (e.g. `queue_capacity = 1`); the
    /// recordings still go to the gateway's temp dir.
    pub fn recorder(mut self, extra: &str) -> Self {
        self.recorder_extra.push_str(extra);
        self.recorder_extra.push('\n');
        self
    }
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    pub fn start(self, name: &str) -> PgGateway {
        let c = cluster();
        let db = format!("db_{name}");
        let role = format!("app_{name}");
        let password = format!("Stored-{name}-S3cret!");
        c.create_db(&db, &role, &password);
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let out = run(Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys));
        assert!(out.status.success(), "{out:?}");
        let password_file = dir.path().join("upstream.pw");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let revocation_file = dir.path().join("revocations.json");
        std::fs::write(&revocation_file, "[]").unwrap();
        let recorder = if self.recorder_extra.is_empty() {
            String::new()
        } else {
            let rec_dir = dir.path().join("recordings");
            format!(
                "[recorder]\ndir = \"{}\"\n{}",
                rec_dir.display(),
                self.recorder_extra
            )
        };
        let cfg = format!(
            r#"{recorder}
[engine]
shards = {shards}
{engine_extra}

[identity]
revocation_file = "{revfile}"
{identity_extra}
[[identity.issuer]]
name = "test"
issuer = "{ISS}"
audience = ["{AUD}"]
jwks_file = "{jwks}"
{issuer_extra}
[[target]]
name = "{db}"
protocol = "postgres"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{upport}"
{target_extra}
[target.credential]
user = "{role}"
password_file = "{pwfile}"
[target.access]
groups = ["ci"]
{config_extra}
"#,
            shards = self.shards.unwrap_or(2),
            engine_extra = self.engine_extra,
            revfile = revocation_file.display(),
            identity_extra = self.identity_extra,
            jwks = keys.join("tollgate-dev-jwks.json").display(),
            issuer_extra = self.issuer_extra,
            target_extra = self.target_extra,
            upport = c.port,
            pwfile = password_file.display(),
            config_extra = self.config_extra,
        );
        let cfg_path = dir.path().join("tollgate.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let format = if self.human_logs { "human" } else { "json" };
        let mut gw = Gateway::spawn_logging(dir, cfg_path, format);
        gw.wait_ready();
        let port = gw.port(&db);
        PgGateway {
            gw,
            port,
            db,
            role,
            password,
            key: keys.join("tollgate-dev-key.pem"),
            password_file,
            revocation_file,
        }
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

impl PgGateway {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn start(name: &str) -> PgGateway {
        Builder::default().start(name)
    }

    pub fn cluster(&self) -> &'static Cluster {
        cluster()
    }

    pub fn token(&self, sub: &str, groups: &str, ttl: &str) -> String {
        self.token_with(sub, groups, ttl, None)
    }

    pub fn token_with(&self, sub: &str, groups: &str, ttl: &str, jti: Option<&str>) -> String {
        mint(&self.key, sub, groups, ttl, jti)
    }

    /// A libpq connection string through the gateway.
    pub fn conninfo(&self, token: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={} user=ci-job password={token} sslmode=disable connect_timeout=10",
            self.port, self.db
        )
    }

    fn psql_cmd(&self, token: &str) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "ci-job", "-d", &self.db])
            .env("PGPASSWORD", token)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// psql -c through the gateway: (success, stdout, stderr).
    pub fn psql(&self, token: &str, sql: &str) -> (bool, String, String) {
        let out = run(self.psql_cmd(token).args(["-c", sql]));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// psql reading a script from stdin (several statements, one session).
    pub fn psql_script(&self, token: &str, script: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = self
            .psql_cmd(token)
            .args(["-v", "ON_ERROR_STOP=0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// A psql process left running with `sql` (for kills and cancels).
    pub fn psql_spawn(&self, token: &str, sql: &str) -> Child {
        self.psql_cmd(token)
            .args(["-c", sql])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Start `sql` in a psql through the gateway and wait until the server
    /// is running it.
    pub fn psql_running(&self, token: &str, sql: &str) -> Child {
        let child = self.psql_spawn(token, sql);
        let probe = format!(
            "select count(*) from pg_stat_activity where query = '{}'",
            sql.replace('\'', "''")
        );
        crate::assert_eventually!(
            self.direct(&probe) == "1",
            std::time::Duration::from_secs(15),
            "the query never started: {sql}"
        );
        child
    }

    /// Direct SQL on this target's database, as the superuser.
    pub fn direct(&self, sql: &str) -> String {
        cluster().sql(&self.db, sql)
    }

    /// How many times the server logged a connection for this target's role.
    pub fn server_logins(&self) -> usize {
        cluster()
            .server_log()
            .matches(&format!("connection authorized: user={} ", self.role))
            .count()
    }
}

/// A token for the test issuer (`AUD`, `ISS`) signed with the development
/// key `key` (`tollgate token mint`).
pub fn mint(key: &Path, sub: &str, groups: &str, ttl: &str, jti: Option<&str>) -> String {
    let mut cmd = Command::new(tollgate_bin());
    cmd.args(["token", "mint", "--key"]).arg(key).args([
        "--sub", sub, "--groups", groups, "--aud", AUD, "--iss", ISS, "--ttl", ttl,
    ]);
    if let Some(j) = jti {
        cmd.args(["--jti", j]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
