//! A tollgate in front of the shared MariaDB test server
//! (`mariadb::server()`), with a development issuer and a TLS listener, for
//! the MySQL gateway tests; and the clients that use it (the `mariadb` CLI,
//! PyMySQL, mysql-connector-python, the codec's own wire client).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::mariadb::{self, server};
use super::pggw::{AUD, ISS};
use super::{Gateway, tollgate_bin};

pub struct MyGateway {
    pub gw: Gateway,
    pub port: u16,
    /// The CA of the gateway's listener certificate.
    pub ca: PathBuf,
    pub key: PathBuf,
    pub password: String,
    /// The stored credential's file (rewrite it to rotate).
    pub password_file: PathBuf,
    pub revocation_file: PathBuf,
}

pub struct Builder {
    user: String,
    password: String,
    target_extra: String,
    tables: String,
    mysql: String,
    upstream_tls: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            user: mariadb::NATIVE_USER.into(),
            password: mariadb::NATIVE_PASSWORD.into(),
            target_extra: String::new(),
            tables: String::new(),
            mysql: String::new(),
            upstream_tls: true,
        }
    }
}

impl Builder {
    /// The stored credential the gateway logs in with.
    pub fn credential(mut self, user: &str, password: &str) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }
    /// Lines in the `[[target]]` table itself.
    pub fn target(mut self, extra: &str) -> Self {
        self.target_extra.push_str(extra);
        self.target_extra.push('\n');
        self
    }
    /// Whole tables after the target (`[target.policy]`, `[target.masking]`).
    pub fn tables(mut self, extra: &str) -> Self {
        self.tables.push_str(extra);
        self.tables.push('\n');
        self
    }
    /// Lines in `[target.mysql]`.
    pub fn mysql(mut self, extra: &str) -> Self {
        self.mysql.push_str(extra);
        self.mysql.push('\n');
        self
    }
    pub fn plain_upstream(mut self) -> Self {
        self.upstream_tls = false;
        self
    }

    pub fn start(self) -> MyGateway {
        let db = server();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let out = Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let ca = super::pki::Ca::new(dir.path(), "gw-ca");
        let (crt, key) = ca.server(dir.path(), "gw");
        let pwfile = dir.path().join("upstream.pw");
        std::fs::write(&pwfile, format!("{}\n", self.password)).unwrap();
        let revocation_file = dir.path().join("revocations.json");
        std::fs::write(&revocation_file, "[]").unwrap();
        let upstream_tls = if self.upstream_tls {
            format!(
                "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\n",
                db.ca.display()
            )
        } else {
            String::new()
        };
        let cfg = format!(
            r#"
[engine]
shards = 1

[identity]
revocation_file = "{revfile}"
[[identity.issuer]]
name = "test"
issuer = "{ISS}"
audience = ["{AUD}"]
jwks_file = "{jwks}"

[[target]]
name = "app"
protocol = "mysql"
listen = ["127.0.0.1:0"]
upstream = "127.0.0.1:{upport}"
{target_extra}
[target.credential]
user = "{user}"
password_file = "{pwfile}"
[target.tls]
cert_file = "{crt}"
key_file = "{key}"
{upstream_tls}
[target.access]
groups = ["ci"]
[target.mysql]
database = "{database}"
{mysql}
{tables}
"#,
            revfile = revocation_file.display(),
            jwks = keys.join("tollgate-dev-jwks.json").display(),
            upport = db.port,
            target_extra = self.target_extra,
            user = self.user,
            pwfile = pwfile.display(),
            crt = crt.display(),
            key = key.display(),
            database = mariadb::DATABASE,
            mysql = self.mysql,
            tables = self.tables,
        );
        let cfg_path = dir.path().join("tollgate.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let mut gw = Gateway::spawn_logging(dir, cfg_path, "json");
        gw.wait_ready();
        let port = gw.port("app");
        MyGateway {
            gw,
            port,
            ca: ca.cert.clone(),
            key: keys.join("tollgate-dev-key.pem"),
            password: self.password,
            password_file: pwfile,
            revocation_file,
        }
    }
}

impl MyGateway {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn start() -> MyGateway {
        Builder::default().start()
    }

    pub fn token(&self, sub: &str, groups: &str) -> String {
        super::pggw::mint(&self.key, sub, groups, "10m", None)
    }

    /// The `mariadb` CLI through the gateway (TLS verified against the
    /// gateway's CA): (success, stdout, stderr).
    pub fn cli(&self, token: &str, extra: &[&str], sql: &str) -> (bool, String, String) {
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-u",
                "ci-job",
                "-N",
                "-B",
            ])
            .arg(format!("-P{}", self.port))
            .arg(format!("--ssl-ca={}", self.ca.display()))
            .args(["--ssl", "--ssl-verify-server-cert", "--connect-timeout=10"])
            .args(extra)
            .args(["-e", sql])
            .env("MYSQL_PWD", token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// Run a Python snippet with PyMySQL / mysql-connector-python; `PORT`,
    /// `TOKEN`, `CA` are in its environment. Returns (success, stdout, stderr).
    pub fn python(&self, token: &str, code: &str) -> (bool, String, String) {
        let out = Command::new(super::python_bin())
            .arg("-c")
            .arg(code)
            .env("PORT", self.port.to_string())
            .env("TOKEN", token)
            .env("CA", &self.ca)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// Root SQL on the server directly (the state the tests check).
    pub fn direct(&self, sql: &str) -> String {
        server().sql(sql)
    }
}

/// PyMySQL connection prologue: `c` is a connection through the gateway.
pub const PYMYSQL: &str = r#"
import os, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(os.environ["PORT"]), user="ci-job",
    password=os.environ["TOKEN"], database="app", ssl={"ca": os.environ["CA"]},
    autocommit=True, connect_timeout=10)
cur = c.cursor()
"#;

/// mysql-connector-python (pure Python), prepared statements on.
pub const CONNECTOR: &str = r#"
import os, mysql.connector
c = mysql.connector.connect(host="127.0.0.1", port=int(os.environ["PORT"]), user="ci-job",
    password=os.environ["TOKEN"], database="app", ssl_ca=os.environ["CA"],
    ssl_verify_cert=True, use_pure=True, autocommit=True, connection_timeout=10)
cur = c.cursor(prepared=True)
"#;
