//! The recorder's error type.

use std::io;
use std::path::PathBuf;

use crate::format::FormatError;

/// Everything that can go wrong while recording or reading a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("shard {shard}: {path} is damaged at offset {offset}: {detail}")]
    Corrupt {
        shard: u32,
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("invalid configuration: {field}: {detail}")]
    Config { field: &'static str, detail: String },
    #[error("record of {len} bytes is above the cap of {max}")]
    RecordTooLarge { len: usize, max: usize },
    #[error("shard {shard} recorder has failed: {reason}")]
    Failed { shard: u32, reason: String },
    #[error("shard {shard} recorder queue is full ({capacity} records)")]
    QueueFull { shard: u32, capacity: usize },
    #[error("shard {shard} recorder is shut down")]
    Closed { shard: u32 },
    #[error("no shard {shard} (recorder has {shards})")]
    NoSuchShard { shard: u32, shards: u32 },
    #[error("session {session} not found in the index")]
    SessionNotFound { session: u64 },
    #[error("format: {0}")]
    Format(#[from] FormatError),
    #[error("session index: {detail}")]
    Index { detail: String },
    #[error("signing key {path}: {detail}")]
    Key { path: PathBuf, detail: String },
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

impl RecorderError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// True when the error is a full disk (ENOSPC).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.raw_os_error() == Some(28) || source.kind() == io::ErrorKind::StorageFull)
    }
}
