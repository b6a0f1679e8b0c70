//! Signed checkpoints of a shard's chain head: the anchor `verify` needs to
//! prove the end of the log (and the segments before it) was not removed.
//!
//! The writer appends a checkpoint to `<dir>/shard-<N>/checkpoints.log`, a
//! file it only ever appends to and fsyncs, when it starts (the recovered
//! head), when it creates a segment, when it seals one, when retention
//! deletes one, and every `checkpoint_interval` while records arrive. The
//! interval and retention checkpoints are also written into the log itself
//! as chained records (kind 7), so the two places vouch for each other.
//!
//! # Checkpoint file entry
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | body length `L` (≤ 4 KiB) |
//! | 4 | 4 | CRC32C of the body |
//! | 8 | L | JSON object ([`Checkpoint`]) |
//!
//! A signature covers [`Checkpoint::signed_message`], a fixed binary form
//! of every field, so it does not depend on how the JSON is spelled.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};

use crate::error::RecorderError;
use crate::format::{Hash, u32_at};
use crate::fs::{AppendFile, FileSystem};
use crate::retention::hex;

/// File name of the checkpoint file inside a shard directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.log";
/// Largest checkpoint body accepted.
pub const MAX_CHECKPOINT: usize = 4 << 10;
/// Longest host name kept in a checkpoint.
const MAX_HOST: usize = 255;
/// Domain separation for checkpoint signatures (seals sign other bytes).
const SIGNED_MAGIC: &[u8; 8] = b"TGCKPT01";

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointEvent {
    /// The writer started; `seq`/`head` are what recovery found.
    Start,
    /// Segment `segment` was created; its header links to `head`.
    Open,
    /// Records arrived since the last checkpoint and the interval passed.
    Interval,
    /// Segment `segment` was sealed at `seq` with chain head `head`.
    Seal,
    /// Retention deleted segment `segment`; the next one starts at `seq`
    /// and links to `head`.
    Prune,
}

impl CheckpointEvent {
    fn code(self) -> u8 {
        match self {
            Self::Start => 1,
            Self::Open => 2,
            Self::Interval => 3,
            Self::Seal => 4,
            Self::Prune => 5,
        }
    }
}

/// One checkpoint: "on `host`, at `time_ns`, every record of shard `shard`
/// below `seq` was written and fsynced, and the chain head there was `head`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub shard: u32,
    pub event: CheckpointEvent,
    pub seq: u64,
    /// The chain head at `seq`, hex.
    pub head: String,
    /// Base sequence of the segment the event is about (the active one for
    /// `start`/`interval`).
    pub segment: u64,
    pub time_ns: u64,
    pub host: String,
    /// Ed25519 signature (base64) of [`Checkpoint::signed_message`], when
    /// the recorder has a signing key.
    #[serde(default)]
    pub signature: Option<String>,
}

impl Checkpoint {
    /// Builds and (with a key) signs a checkpoint.
    pub(crate) fn new(
        shard: u32,
        event: CheckpointEvent,
        seq: u64,
        head: &Hash,
        segment: u64,
        key: Option<&Ed25519KeyPair>,
    ) -> Self {
        let mut host = hostname();
        host.truncate(MAX_HOST);
        let mut cp = Self {
            shard,
            event,
            seq,
            head: hex(head),
            segment,
            time_ns: crate::record::now_ns(),
            host,
            signature: None,
        };
        if let Some(key) = key {
            let sig = crate::signing::sign(key, &cp.signed_message());
            cp.signature = Some(base64::engine::general_purpose::STANDARD.encode(sig));
        }
        cp
    }

    /// The bytes a signature covers: every field in a fixed binary layout.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(96 + self.head.len() + self.host.len());
        m.extend_from_slice(SIGNED_MAGIC);
        m.extend_from_slice(&self.shard.to_le_bytes());
        m.push(self.event.code());
        m.extend_from_slice(&self.seq.to_le_bytes());
        m.extend_from_slice(&(self.head.len() as u32).to_le_bytes());
        m.extend_from_slice(self.head.as_bytes());
        m.extend_from_slice(&self.segment.to_le_bytes());
        m.extend_from_slice(&self.time_ns.to_le_bytes());
        m.extend_from_slice(&(self.host.len() as u32).to_le_bytes());
        m.extend_from_slice(self.host.as_bytes());
        m
    }

    /// `Some(valid)` when signed, `None` when not.
    pub fn signature_valid(&self, public_key: &[u8]) -> Option<bool> {
        let sig = self.signature.as_ref()?;
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            return Some(false);
        };
        Some(crate::signing::signature_valid(
            public_key,
            &self.signed_message(),
            &sig,
        ))
    }

    /// The JSON body (also the body of an in-log checkpoint record).
    pub fn to_json(&self) -> Result<Vec<u8>, RecorderError> {
        let body = serde_json::to_vec(self).map_err(|e| RecorderError::Index {
            detail: format!("checkpoint: {e}"),
        })?;
        if body.len() > MAX_CHECKPOINT {
            return Err(RecorderError::Index {
                detail: format!("checkpoint of {} bytes above the cap", body.len()),
            });
        }
        Ok(body)
    }

    /// Parses a JSON body (bounded by the caller).
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        if body.len() > MAX_CHECKPOINT {
            return Err(format!("checkpoint of {} bytes above the cap", body.len()));
        }
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

/// The machine's name, for checkpoints (best effort: `HOSTNAME`, then
/// `/etc/hostname`, then `unknown`).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Appends `cp` to the checkpoint file and fsyncs it.
pub(crate) fn append_checkpoint(
    file: &mut dyn AppendFile,
    path: &Path,
    cp: &Checkpoint,
) -> Result<(), RecorderError> {
    let body = cp.to_json()?;
    let mut buf = Vec::with_capacity(8 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    buf.extend_from_slice(&body);
    file.append(&buf)
        .and_then(|()| file.sync())
        .map_err(RecorderError::io("append checkpoint", path))
}

/// A checkpoint file as read back.
#[derive(Debug, Default)]
pub struct CheckpointFile {
    pub exists: bool,
    /// (offset, checkpoint) of each good entry.
    pub entries: Vec<(u64, Checkpoint)>,
    /// Where and why reading stopped early (a torn or damaged entry).
    pub damage: Option<(u64, String)>,
    /// The damage is an incomplete last entry (a crash while appending).
    pub torn_tail: bool,
}

/// Reads a shard's checkpoint file; a missing file has no entries.
pub fn read_checkpoints(fs: &dyn FileSystem, path: &Path) -> Result<CheckpointFile, RecorderError> {
    let mut out = CheckpointFile::default();
    if !fs.exists(path) {
        return Ok(out);
    }
    out.exists = true;
    let mut data = Vec::new();
    fs.open_read(path)
        .and_then(|mut r| r.read_to_end(&mut data))
        .map_err(RecorderError::io("read checkpoints", path))?;
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        let len = if rest.len() >= 8 {
            u32_at(rest, 0) as usize
        } else {
            0
        };
        if rest.len() < 8 || (len <= MAX_CHECKPOINT && rest.len() < 8 + len) {
            out.damage = Some((at as u64, "incomplete last entry".into()));
            out.torn_tail = true;
            break;
        }
        if len > MAX_CHECKPOINT {
            out.damage = Some((at as u64, format!("entry length {len} above the cap")));
            break;
        }
        let body = &rest[8..8 + len];
        if crc32c::crc32c(body) != u32_at(rest, 4) {
            out.damage = Some((at as u64, "entry checksum mismatch".into()));
            break;
        }
        match Checkpoint::from_json(body) {
            Ok(cp) => out.entries.push((at as u64, cp)),
            Err(e) => {
                out.damage = Some((at as u64, format!("entry does not parse: {e}")));
                break;
            }
        }
        at += 8 + len;
    }
    Ok(out)
}

/// The writer's side: the open checkpoint file and when the next interval
/// checkpoint is due.
pub(crate) struct Checkpointer {
    shard: u32,
    file: Box<dyn AppendFile>,
    path: PathBuf,
    key: Option<Arc<Ed25519KeyPair>>,
    interval: Duration,
    last: Instant,
    /// `seq` of the last checkpoint written.
    covered: u64,
    /// Sequence of the in-log record of the last interval checkpoint: when
    /// it is the only record since, nothing new needs a checkpoint.
    own_record: Option<u64>,
}

impl Checkpointer {
    pub(crate) fn open(
        fs: &dyn FileSystem,
        shard_dir: &Path,
        shard: u32,
        key: Option<Arc<Ed25519KeyPair>>,
        interval: Duration,
    ) -> Result<Self, RecorderError> {
        let path = shard_dir.join(CHECKPOINT_FILE);
        let existing = read_checkpoints(fs, &path)?;
        if let Some((offset, detail)) = existing.damage {
            // A torn last entry is what a crash mid-append leaves: its bytes
            // were never acknowledged, so they are cut (nothing complete is
            // ever rewritten). Damage before the end is not ours to mend.
            if !existing.torn_tail {
                return Err(RecorderError::Corrupt {
                    shard,
                    path,
                    offset,
                    detail,
                });
            }
            tracing::warn!(shard, path = %path.display(), offset, "cutting a torn checkpoint entry");
            fs.truncate(&path, offset)
                .map_err(RecorderError::io("truncate checkpoints", &path))?;
        }
        let file = fs
            .open_append(&path)
            .map_err(RecorderError::io("open checkpoints", &path))?;
        Ok(Self {
            shard,
            file,
            path,
            key,
            interval,
            last: Instant::now(),
            covered: 0,
            own_record: None,
        })
    }

    /// Writes a checkpoint to the file (fsynced) and returns it. The caller
    /// has made everything below `seq` durable.
    pub(crate) fn write(
        &mut self,
        event: CheckpointEvent,
        seq: u64,
        head: &Hash,
        segment: u64,
    ) -> Result<Checkpoint, RecorderError> {
        let cp = Checkpoint::new(self.shard, event, seq, head, segment, self.key.as_deref());
        append_checkpoint(self.file.as_mut(), &self.path, &cp)?;
        self.last = Instant::now();
        self.covered = seq;
        Ok(cp)
    }

    /// Notes the sequence the in-log copy of the last checkpoint got.
    pub(crate) fn logged_at(&mut self, seq: u64) {
        self.own_record = Some(seq);
    }

    /// Time until an interval checkpoint would be due.
    pub(crate) fn due_in(&self) -> Duration {
        self.interval.saturating_sub(self.last.elapsed())
    }

    /// True when records other than the last checkpoint's own were
    /// written since it.
    pub(crate) fn pending(&self, written_next: u64) -> bool {
        let only_own = self.own_record == Some(self.covered) && written_next == self.covered + 1;
        written_next > self.covered && !only_own
    }

    /// True when the interval passed and a checkpoint is [`pending`](Self::pending).
    pub(crate) fn interval_due(&self, written_next: u64) -> bool {
        self.due_in().is_zero() && self.pending(written_next)
    }

    pub(crate) fn file_mut(&mut self) -> &mut dyn AppendFile {
        self.file.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    #[test]
    fn checkpoints_round_trip_and_signatures_cover_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("k"), dir.path().join("k.pub"));
        let raw = crate::signing::keygen(&private, &public).unwrap();
        let key = crate::signing::load_signing_key(&private).unwrap();
        let cp = Checkpoint::new(2, CheckpointEvent::Seal, 77, &[3; 32], 40, Some(&key));
        assert_eq!(cp.signature_valid(&raw), Some(true));
        let mut forged = cp.clone();
        forged.seq = 78;
        assert_eq!(forged.signature_valid(&raw), Some(false));
        let mut forged = cp.clone();
        forged.event = CheckpointEvent::Prune;
        assert_eq!(forged.signature_valid(&raw), Some(false));

        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/s")).unwrap();
        let path = Path::new("/s/c");
        let mut f = fs.open_append(path).unwrap();
        append_checkpoint(f.as_mut(), path, &cp).unwrap();
        append_checkpoint(f.as_mut(), path, &cp).unwrap();
        let back = read_checkpoints(&fs, path).unwrap();
        assert_eq!(back.entries.len(), 2);
        assert_eq!(back.entries[1].1, cp);
        assert!(back.damage.is_none());
    }
}
