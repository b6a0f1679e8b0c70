//! End-to-end: real psql and PostgreSQL 15 through the gateway, with tokens
//! from the development issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::pg::cluster;
use common::*;

const AUD: &str = "tollgate";
const ISS: &str = "https://issuer.test";

/// A gateway in front of one fresh database of the shared cluster.
struct PgGateway {
    gw: Gateway,
    port: u16,
    db: String,
    key: PathBuf,
    password_file: PathBuf,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

impl PgGateway {
    fn start(name: &str, extra_target: &str) -> PgGateway {
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
        let port = free_port();
        let cfg = format!(
            r#"
[engine]
shards = 2

[[identity.issuer]]
name = "test"
issuer = "{ISS}"
audience = ["{AUD}"]
jwks_file = "{jwks}"

[[target]]
name = "{db}"
protocol = "postgres"
listen = ["127.0.0.1:{port}"]
upstream = "127.0.0.1:{upport}"
{extra_target}
[target.credential]
user = "{role}"
password_file = "{pwfile}"
[target.access]
groups = ["ci"]
"#,
            jwks = keys.join("tollgate-dev-jwks.json").display(),
            upport = c.port,
            pwfile = password_file.display(),
        );
        let cfg_path = dir.path().join("tollgate.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let gw = Gateway::spawn_in(dir, cfg_path);
        gw.wait_ready();
        PgGateway {
            gw,
            port,
            db,
            key: keys.join("tollgate-dev-key.pem"),
            password_file,
        }
    }

    fn token(&self, sub: &str, groups: &str, ttl: &str) -> String {
        let out = run(Command::new(tollgate_bin())
            .args(["token", "mint", "--key"])
            .arg(&self.key)
            .args([
                "--sub", sub, "--groups", groups, "--aud", AUD, "--iss", ISS, "--ttl", ttl,
            ]));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// psql through the gateway; returns (success, stdout, stderr).
    fn psql(&self, token: &str, sql: &str) -> (bool, String, String) {
        let out = run(Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "ci-job", "-d", &self.db, "-c", sql])
            .env("PGPASSWORD", token)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("tollgate-dev-key.pem")
}

#[test]
fn a_token_logs_in_and_queries_run() {
    let g = PgGateway::start("basic", "");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select current_user, 40 + 2");
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, format!("app_basic|42"));
    let _ = key_path(Path::new("."));
}
