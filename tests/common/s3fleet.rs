//! Gateways recording to a real Garage: seal keys, `[recorder.upload]`
//! lines, the auditor's `recordings ... --from s3://` and the bucket's
//! objects, plus the session and restart helpers the object-storage tests
//! (recordings_s3.rs, cluster_catalog.rs) share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::garage::{AUDITOR_ID, BUCKET, Garage, REGION, WRITER_ID};
use super::pggw::PgGateway;
use super::tollgate_bin;

/// Keys, config lines and helpers shared by one test's gateways.
pub struct S3Fleet {
    pub garage: Garage,
    pub keys: tempfile::TempDir,
    pub prefix: String,
}

impl S3Fleet {
    pub fn new(prefix: &str) -> S3Fleet {
        let garage = Garage::start();
        let keys = tempfile::tempdir().unwrap();
        let out = Command::new(tollgate_bin())
            .args(["recordings", "keygen", "--private"])
            .arg(keys.path().join("seal.key"))
            .arg("--public")
            .arg(keys.path().join("seal.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        S3Fleet {
            garage,
            keys,
            prefix: prefix.into(),
        }
    }

    pub fn public_key(&self) -> PathBuf {
        self.keys.path().join("seal.pub")
    }

    pub fn url(&self) -> String {
        format!("s3://{BUCKET}/{}", self.prefix)
    }

    /// `[recorder]` lines for a gateway uploading as `host`: small, fast
    /// segments so a test sees several sealed and uploaded.
    pub fn recorder_lines(&self, host: &str) -> String {
        format!(
            r#"signing_key = "{key}"
segment_max_age = "1s"
block_max_delay = "5ms"
retention_check_interval = "200ms"
checkpoint_interval = "1s"
[recorder.upload]
url = "{url}"
endpoint = "{endpoint}"
region = "{REGION}"
access_key_id = "{WRITER_ID}"
secret_access_key_file = "{secret}"
host_id = "{host}"
scan_interval = "200ms"
max_backoff = "1s"
request_timeout = "10s"
"#,
            key = self.keys.path().join("seal.key").display(),
            url = self.url(),
            endpoint = self.garage.endpoint(),
            secret = self.garage.secret_file("writer").display(),
        )
    }

    pub fn gateway(&self, name: &str, host: &str) -> PgGateway {
        self.gateway_with(name, host, "")
    }

    /// A gateway with more tables in its config (e.g. `[cluster]`).
    pub fn gateway_with(&self, name: &str, host: &str, tables: &str) -> PgGateway {
        PgGateway::builder()
            .recorder(&self.recorder_lines(host))
            .tables(tables)
            .shards(1)
            .start(name)
    }

    /// `tollgate recordings <args> --from <url>` as the read-only auditor.
    pub fn recordings(&self, args: &[&str], cache: &Path) -> Output {
        Command::new(tollgate_bin())
            .arg("recordings")
            .args(args)
            .args(["--from", &self.url(), "--endpoint", &self.garage.endpoint()])
            .args(["--region", REGION, "--cache"])
            .arg(cache)
            .env("AWS_ACCESS_KEY_ID", AUDITOR_ID)
            .env("AWS_SECRET_ACCESS_KEY", super::garage::AUDITOR_SECRET)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `verify --from` with the seal key; (passed, stdout).
    pub fn verify(&self, cache: &Path, state: &Path) -> (bool, String) {
        let key = self.public_key();
        let state = state.display().to_string();
        let out = self.recordings(
            &["verify", "--key", key.to_str().unwrap(), "--state", &state],
            cache,
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Keys under `<prefix>/<host>/`.
    pub fn objects(&self, host: &str) -> Vec<(String, u64)> {
        self.garage
            .writer()
            .list(&format!("{}/{host}/", self.prefix))
            .unwrap()
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect()
    }

    pub fn segment_keys(&self, host: &str) -> Vec<String> {
        self.objects(host)
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(".seg"))
            .collect()
    }

    pub fn manifest_versions(&self, host: &str) -> usize {
        self.objects(host)
            .iter()
            .filter(|(k, _)| k.contains("/manifest/"))
            .count()
    }
}

/// Runs `n` psql sessions, each with its own marker in a comment.
pub fn sessions(gw: &PgGateway, tag: &str, n: usize) -> Vec<String> {
    let token = gw.token("svc-upload", "ci", "10m");
    (0..n)
        .map(|i| {
            let marker = format!("marker_{tag}_{i}");
            let (ok, _, err) = gw.psql(&token, &format!("select 1 /* {marker} */"));
            assert!(ok, "{err}");
            marker
        })
        .collect()
}

/// Sealed segments on disk (not the active one) with no upload mark.
pub fn local_segments(gw: &PgGateway) -> Vec<PathBuf> {
    let shard = gw.gw.recordings.join("shard-0");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&shard)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    v.sort();
    v
}

/// Waits until the writer sealed the active segment and opened a new one
/// (`segment_max_age` is 1 s): the next sessions land in a new segment.
pub fn wait_for_roll(gw: &PgGateway) {
    let newest = || local_segments(gw).last().cloned();
    let before = newest();
    crate::assert_eventually!(
        newest() > before,
        Duration::from_secs(20),
        "the segment never rolled; log:\n{}",
        gw.gw.log_text()
    );
}

pub fn stop(gw: &mut PgGateway) {
    gw.gw.signal("TERM");
    assert!(
        gw.gw.wait_exit(Duration::from_secs(30)).is_some(),
        "gateway did not stop; log:\n{}",
        gw.gw.log_text()
    );
}

/// Starts the same gateway again (same config and recording directory).
pub fn restart(gw: &mut PgGateway) {
    let _ = std::fs::remove_file(&gw.gw.ready_file);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&gw.gw.log)
        .unwrap();
    gw.gw.child = Command::new(tollgate_bin())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&gw.gw.config)
        .arg("--ready-file")
        .arg(&gw.gw.ready_file)
        .env("TOLLGATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    gw.gw.wait_ready();
    gw.port = gw.gw.port(&gw.db);
}

pub fn admin_get(gw: &PgGateway, path: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(format!("http://127.0.0.1:{}{path}", gw.gw.admin_port))
        .call()
        .map(|mut r| r.body_mut().read_to_string().unwrap_or_default())
        .unwrap_or_default()
}

pub fn metric(gw: &PgGateway, name: &str) -> Option<f64> {
    admin_get(gw, "/metrics")
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
