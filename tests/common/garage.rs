//! A real S3-compatible server for the object-storage tests: Garage
//! (installed by tests/deps.sh), one node in a temp dir on free ports,
//! a single-node layout, one bucket and two keys: a writer (read + write,
//! what an appliance gets) and an auditor (read only). A missing `garage`
//! fails the test: nothing here is skipped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Keys imported into Garage (its format: `GK` + 24 hex; 64 hex secret).
pub const WRITER_ID: &str = "GK0123456789abcdef01234567";
pub const WRITER_SECRET: &str = "1111111111111111111111111111111111111111111111111111111111111111";
pub const AUDITOR_ID: &str = "GKfedcba9876543210fedcba98";
pub const AUDITOR_SECRET: &str = "2222222222222222222222222222222222222222222222222222222222222222";
pub const BUCKET: &str = "recordings";
pub const REGION: &str = "garage";

pub struct Garage {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub s3_port: u16,
    child: Option<Child>,
    pub log: PathBuf,
}

/// The `garage` binary: on PATH or in ~/.cargo/bin.
pub fn garage_bin() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("garage"))
        .chain([Path::new(&home).join(".cargo/bin/garage")])
        .collect::<Vec<_>>();
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("garage is not installed: run tests/deps.sh (cargo install garage --version 2.5.0 --locked)")
}

impl Garage {
    /// Starts a node, lays it out, makes the bucket and both keys.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..64)
            .map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char)
            .collect();
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{secret}"
"#,
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
            ),
        )
        .unwrap();
        let log = dir.path().join("garage.log");
        let mut g = Garage {
            dir,
            config,
            s3_port,
            child: None,
            log,
        };
        g.spawn();
        let id = g.wait_node_id();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        g.cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "writer",
            WRITER_ID,
            WRITER_SECRET,
        ]);
        g.cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "auditor",
            AUDITOR_ID,
            AUDITOR_SECRET,
        ]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", BUCKET, "--key", "writer",
        ]);
        g.cli(&["bucket", "allow", "--read", BUCKET, "--key", "auditor"]);
        g.wait_s3();
        g
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Runs `garage -c <config> <args>`; panics with its output on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "garage {args:?} failed: {text}\nlog:\n{}",
            self.log_text()
        );
        text
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The node's id, once the server answers over RPC (`node id` alone is
    /// local: it answers before the server listens).
    fn wait_node_id(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .arg("status")
                .output()
                .unwrap()
                .status
                .success();
            if !up {
                assert!(
                    Instant::now() < deadline,
                    "garage never answered; log:\n{}",
                    self.log_text()
                );
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let out = Command::new(garage_bin())
                .arg("-c")
                .arg(&self.config)
                .args(["node", "id", "-q"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !text.is_empty() {
                return text.split('@').next().unwrap().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "garage never answered; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the S3 port answers with the bucket listable.
    fn wait_s3(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let b = self.writer();
        while b.list("").is_err() {
            assert!(
                Instant::now() < deadline,
                "garage S3 API never came up; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn bucket(&self, id: &str, secret: &str) -> tollgate::objstore::Bucket {
        tollgate::objstore::Bucket::new(
            Some(&self.endpoint()),
            BUCKET,
            REGION,
            tollgate::objstore::Credentials {
                access_key_id: id.into(),
                secret_access_key: secret.into(),
            },
            Duration::from_secs(30),
        )
        .unwrap()
    }

    pub fn writer(&self) -> tollgate::objstore::Bucket {
        self.bucket(WRITER_ID, WRITER_SECRET)
    }

    pub fn auditor(&self) -> tollgate::objstore::Bucket {
        self.bucket(AUDITOR_ID, AUDITOR_SECRET)
    }

    /// Stops the server (SIGKILL: as if the store went away).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_s3();
    }

    /// Writes the secret of `who` to a file and returns its path.
    pub fn secret_file(&self, who: &str) -> PathBuf {
        let (path, secret) = match who {
            "writer" => (self.dir.path().join("writer.secret"), WRITER_SECRET),
            _ => (self.dir.path().join("auditor.secret"), AUDITOR_SECRET),
        };
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        path
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
