//! The start-up report: where every target and the admin API actually listen, once all shards do.
//!
//! With `listen = ["127.0.0.1:0"]` the kernel picks the ports, so whoever started tollgate
//! (a test harness, a supervisor, a sidecar) learns them here instead of guessing a free
//! port beforehand, which races with every other process on the machine. The report is one
//! log line (`bound addresses`) and, with `run --ready-file PATH`, a JSON file written
//! (atomically: a temp file renamed into place) after every listener is bound and
//! listening and the admin API is up:
//!
//! ```json
//! {"pid": 4242, "admin": "127.0.0.1:39001",
//!  "targets": {"pg-main": ["127.0.0.1:40123"], "echo": ["127.0.0.1:40124"]}}
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;

/// What the ready file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    pub pid: u32,
    pub admin: SocketAddr,
    /// Target name → the addresses it is reachable on.
    pub targets: BTreeMap<String, Vec<SocketAddr>>,
}

/// Why the ready file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the ready file {path}: {source}")]
pub struct ReadyFileError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl ReadyReport {
    /// `bound` is each listener's bound address, by index in `config.listeners`.
    pub fn new(config: &Config, bound: &[SocketAddr], admin: SocketAddr) -> Self {
        let mut targets: BTreeMap<String, Vec<SocketAddr>> = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), Vec::new()))
            .collect();
        for (spec, addr) in config.listeners.iter().zip(bound) {
            for &t in &spec.targets {
                if let Some(list) = config.targets.get(t).and_then(|t| targets.get_mut(&t.name)) {
                    list.push(*addr);
                }
            }
        }
        ReadyReport {
            pid: std::process::id(),
            admin,
            targets,
        }
    }

    pub fn to_json(&self) -> String {
        // Only strings, numbers and addresses: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Writes the report to `path` through a temp file and a rename, so a reader never
    /// sees half a file.
    pub fn write_file(&self, path: &Path) -> Result<(), ReadyFileError> {
        let err = |source| ReadyFileError {
            path: path.to_owned(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_json()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn report_maps_targets_to_bound_addresses_and_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("t.toml");
        let text = "[[target]]\nname = \"a\"\nprotocol = \"tcp\"\nlisten = [\"127.0.0.1:0\"]\n\
                    upstream = \"127.0.0.1:9\"\nunauthenticated = true\n\
                    [[target]]\nname = \"b\"\nprotocol = \"tcp\"\nlisten = [\"127.0.0.2:0\"]\n\
                    upstream = \"127.0.0.1:9\"\nunauthenticated = true\n";
        let config = Config::parse(text, &cfg_path).unwrap();
        let bound: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.2:4002".parse().unwrap(),
        ];
        let report = ReadyReport::new(&config, &bound, "127.0.0.1:5000".parse().unwrap());
        let path = dir.path().join("ready.json");
        report.write_file(&path).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["admin"], "127.0.0.1:5000");
        assert_eq!(v["targets"]["a"][0], "127.0.0.1:4001");
        assert_eq!(v["targets"]["b"][0], "127.0.0.2:4002");
        assert_eq!(v["pid"], std::process::id());
        assert!(!dir.path().join("ready.json.tmp").exists());
    }
}
