//! Checking the parsed file: `[engine]`, `[recorder]`, and the line
//! numbers every error carries.

use std::time::Duration;

use super::raw::{RawEngine, RawRecorder};
use super::{
    ConfigError, DEFAULT_BACKLOG, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_RECORDING_DIR, DEFAULT_SHUTDOWN_GRACE, EngineConfig, MAX_BUFFER_SIZE, MAX_SHARDS,
    MIN_BUFFER_SIZE, allowed_cpus,
};

pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(super) struct Validator<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Validator<'_> {
    pub(super) fn invalid(&self, path: &[Seg<'_>], field: &str, message: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: locate_line(self.text, path),
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    pub(super) fn engine(&self, raw: Option<RawEngine>) -> Result<EngineConfig, ConfigError> {
        let raw = raw.unwrap_or_default();
        let at = |k| [Seg::Key("engine"), Seg::Key(k)];
        let cpus = allowed_cpus().len().max(1);
        let shards = match raw.shards {
            None | Some(0) => cpus,
            Some(n) if n > MAX_SHARDS => {
                return Err(self.invalid(&at("shards"), "engine.shards", "at most 256 shards"));
            }
            Some(n) => n,
        };
        let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(self.invalid(
                &at("max_connections"),
                "engine.max_connections",
                "must be at least 1",
            ));
        }
        let max_connections_per_shard = raw.max_connections_per_shard.unwrap_or(max_connections);
        if max_connections_per_shard == 0 {
            return Err(self.invalid(
                &at("max_connections_per_shard"),
                "engine.max_connections_per_shard",
                "must be at least 1",
            ));
        }
        let buffer_size = raw.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE);
        if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&buffer_size) {
            return Err(self.invalid(
                &at("buffer_size"),
                "engine.buffer_size",
                &format!("must be between {MIN_BUFFER_SIZE} and {MAX_BUFFER_SIZE} bytes"),
            ));
        }
        let listen_backlog = raw.listen_backlog.unwrap_or(DEFAULT_BACKLOG);
        if listen_backlog == 0 {
            return Err(self.invalid(
                &at("listen_backlog"),
                "engine.listen_backlog",
                "must be at least 1",
            ));
        }
        Ok(EngineConfig {
            shards,
            max_connections,
            max_connections_per_shard,
            shutdown_grace: raw.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            log_format: raw.log_format.unwrap_or_default(),
            listen_backlog,
            buffer_size,
        })
    }

    /// `[recorder]` and its `[recorder.upload]`.
    pub(super) fn recorder(
        &self,
        raw: Option<RawRecorder>,
    ) -> Result<
        (
            Option<tollgate_recorder::RecorderConfig>,
            Option<crate::objstore::UploadConfig>,
        ),
        ConfigError,
    > {
        use tollgate_recorder::{Durability, RecorderConfig};
        let raw = match raw {
            Some(r) if r.enabled == Some(false) => {
                if r.upload.is_some() {
                    return Err(self.invalid(
                        &[Seg::Key("recorder"), Seg::Key("upload")],
                        "recorder.upload",
                        "recording is disabled: there is nothing to upload",
                    ));
                }
                return Ok((None, None));
            }
            Some(r) => r,
            None => RawRecorder::default(),
        };
        let mut c = RecorderConfig::new(raw.dir.unwrap_or_else(|| DEFAULT_RECORDING_DIR.into()));
        if let Some(v) = raw.zstd_level {
            c.zstd_level = v;
        }
        c.durability = match raw.durability.as_deref() {
            None | Some("batch") => Durability::Batch,
            Some("always") => Durability::Always,
            Some("before_forward") => Durability::BeforeForward,
            Some("interval") => Durability::Interval(
                raw.durability_interval
                    .unwrap_or(Duration::from_millis(100)),
            ),
            Some(other) => {
                return Err(self.invalid(
                    &[Seg::Key("recorder"), Seg::Key("durability")],
                    "recorder.durability",
                    &format!("{other:?}: expected before_forward, always, batch or interval"),
                ));
            }
        };
        if let Some(v) = raw.block_size {
            c.block_size = v;
        }
        if let Some(v) = raw.block_max_delay {
            c.block_max_delay = v;
        }
        if let Some(v) = raw.queue_capacity {
            c.queue_capacity = v;
        }
        if let Some(v) = raw.queue_bytes {
            c.queue_bytes = v;
        }
        if let Some(v) = raw.segment_max_bytes {
            c.segment_max_bytes = v;
        }
        if let Some(v) = raw.segment_max_age {
            c.segment_max_age = v;
        }
        if let Some(v) = raw.checkpoint_interval {
            c.checkpoint_interval = v;
        }
        c.retention_max_age = raw.retention_max_age;
        c.retention_max_bytes = raw.retention_max_bytes;
        if let Some(v) = raw.retention_check_interval {
            c.retention_check_interval = v;
        }
        c.signing_key = raw.signing_key;
        let upload = match raw.upload {
            None => None,
            Some(u) => {
                let u = crate::objstore::UploadConfig::from_raw(u).map_err(|(field, msg)| {
                    self.invalid(
                        &[Seg::Key("recorder"), Seg::Key("upload"), Seg::Key(field)],
                        &format!("recorder.upload.{field}"),
                        &msg,
                    )
                })?;
                // The manifest is signed with the seal key: without one,
                // nothing in the bucket could prove completeness.
                if c.signing_key.is_none() {
                    return Err(self.invalid(
                        &[Seg::Key("recorder"), Seg::Key("upload")],
                        "recorder.upload",
                        "needs recorder.signing_key (the manifest is signed with it)",
                    ));
                }
                c.delete_uploaded = u.delete_local_after_upload;
                c.keep_until_uploaded = true;
                Some(u)
            }
        };
        if let Err(e) = c.validate() {
            let field = match &e {
                tollgate_recorder::RecorderError::Config { field, .. } => field.to_string(),
                _ => "recorder".to_string(),
            };
            return Err(self.invalid(
                &[Seg::Key("recorder"), Seg::Key(&field)],
                &format!("recorder.{field}"),
                &e.to_string(),
            ));
        }
        Ok((Some(c), upload))
    }
}

/// The 1-based line of the value at `path`, or of the nearest ancestor that
/// exists (a missing field is reported at its table).
pub(super) fn locate_line(text: &str, path: &[Seg<'_>]) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 1;
    };
    let mut span = root.span();
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for seg in path {
        let next = match (seg, table, array) {
            (Seg::Key(k), Some(t), _) => t.get(*k),
            (Seg::Index(i), _, Some(a)) => a.get(*i),
            _ => None,
        };
        let Some(v) = next else { break };
        span = v.span();
        table = None;
        array = None;
        match v.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    text[..span.start.min(text.len())].matches('\n').count() + 1
}
