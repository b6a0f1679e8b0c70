//! The fleet's control database for the `[cluster]` tests (cluster.rs,
//! cluster_catalog.rs): one PostgreSQL of its own per test process (a test
//! may stop and start it), the role the hosts log in as, a database per
//! test, and the `[cluster]` table that points a host at it over verified
//! TLS.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::pg::Cluster;

pub const CTL_ROLE: &str = "tollgate_ctl";
pub const CTL_PASSWORD: &str = "Ctl-S3cret-never-logged";

/// The control database server: one cluster for the tests that leave it
/// running, a database per test.
pub fn control() -> &'static Cluster {
    static C: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let c = Cluster::extra("ctl");
        c.sql(
            "postgres",
            &format!("CREATE ROLE {CTL_ROLE} LOGIN PASSWORD '{CTL_PASSWORD}'"),
        );
        c
    })
}

/// One test's control database `ctl_<name>`.
pub struct ControlDb {
    pub ctl: &'static Cluster,
    pub db: String,
    /// [`CTL_PASSWORD`] in a file, as `password_file` reads it.
    pub password_file: PathBuf,
}

impl ControlDb {
    /// Makes the database (and the role, when a test made its own server)
    /// and writes the password file into `dir`.
    pub fn new(ctl: &'static Cluster, name: &str, dir: &Path) -> ControlDb {
        if ctl
            .try_sql(
                "postgres",
                &format!("select 1 from pg_roles where rolname = '{CTL_ROLE}'"),
            )
            .as_deref()
            != Some("1")
        {
            ctl.sql(
                "postgres",
                &format!("CREATE ROLE {CTL_ROLE} LOGIN PASSWORD '{CTL_PASSWORD}'"),
            );
        }
        let db = format!("ctl_{name}");
        ctl.sql(
            "postgres",
            &format!("CREATE DATABASE {db} OWNER {CTL_ROLE}"),
        );
        let password_file = dir.join("ctl.pw");
        std::fs::write(&password_file, format!("{CTL_PASSWORD}\n")).unwrap();
        ControlDb {
            ctl,
            db,
            password_file,
        }
    }

    /// The `[cluster]` table of host `host_id` logging in as `user`: fast
    /// heartbeats, a 2 s host timeout, a 1 s query timeout.
    pub fn section(&self, host_id: &str, user: &str, reconcile: &str) -> String {
        format!(
            r#"
[cluster]
database_url = "postgres://{user}@127.0.0.1:{port}/{db}?sslmode=require"
password_file = "{pw}"
ca_file = "{ca}"
host_id = "{host_id}"
heartbeat = "300ms"
host_timeout = "2s"
reconcile = "{reconcile}"
query_timeout = "1s"
"#,
            port = self.ctl.port,
            db = self.db,
            pw = self.password_file.display(),
            ca = self.ctl.ca.display(),
        )
    }

    pub fn sql(&self, sql: &str) -> String {
        self.ctl.sql(&self.db, sql)
    }
}
