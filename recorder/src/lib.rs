//! tollgate's segmented, compressed, hash-chained session log.
//!
//! Writing: [`Recorder::open`] recovers every shard directory and starts one
//! writer thread per shard; sessions hand records to their shard's
//! [`ShardRecorder`]. Reading: [`list_sessions`], [`export`], [`replay`] and
//! [`verify`] work on a directory, with or without a running writer.
//! The byte layout is documented in [`format`].

mod anchor;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod format;
pub mod fs;
pub mod index;
pub mod manifest;
pub mod producer;
pub mod record;
mod recovery;
pub mod retention;
mod scan;
pub mod signing;
pub mod writer;

pub use bytes::Bytes;
pub use config::{Durability, FsyncObserver, RecorderConfig};
pub use error::RecorderError;
pub use producer::{DataDirection, RecorderHealth, ShardRecorder};
pub use record::{AdminAction, CommandEvent, Record, RecordBody, SessionEnd, SessionStart, now_ns};
pub use recovery::list_segments;
pub use retention::{
    RetentionOutcome, RetentionPolicy, UPLOADED_MARK_SUFFIX, apply_retention, uploaded_mark_path,
};
pub use signing::{keygen, load_public_key, load_signing_key};
pub use writer::Recorder;
pub mod export;
pub mod reader;

pub use export::{Decoder, Direction, ExportSummary, export, format_time, replay};
pub use reader::{
    Progress, RecordRef, RecordingDir, Selection, SessionFilter, SessionSummary, list_sessions,
};
pub mod verify;

pub use verify::{Problem, ProblemKind, VerifyReport, verify};
