//! Retention: deleting a shard's oldest sealed segments beyond a maximum
//! age or total size, or once uploaded to object storage. The active (last) segment is never deleted, and each
//! deletion is first written as a signed checkpoint (and noted in the
//! session index) so `verify` can tell retention from a removed segment.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use ring::signature::Ed25519KeyPair;

use crate::checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointEvent, append_checkpoint};
use crate::error::RecorderError;
use crate::format::{SEGMENT_HEADER_LEN, SegmentHeader};
use crate::fs::{AppendFile, FileSystem};
use crate::index::{INDEX_FILE, IndexEntry};
use crate::recovery::list_segments;

/// What to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete sealed segments whose newest data is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest sealed segments while the shard holds more.
    pub max_bytes: Option<u64>,
    /// Delete the oldest sealed segments that carry an upload mark
    /// ([`uploaded_mark_path`]): the uploader confirmed and verified them
    /// in object storage and a manifest lists them.
    pub delete_uploaded: bool,
    /// Recordings go to object storage: a segment without an upload mark
    /// is never deleted, however old or large (age and size retention wait
    /// for the uploader; the audit trail is never thinned before it has a
    /// copy elsewhere).
    pub keep_until_uploaded: bool,
}

/// Suffix of the mark the uploader writes next to a segment it confirmed.
pub const UPLOADED_MARK_SUFFIX: &str = ".uploaded";

/// The upload mark of the segment at `segment` (`<name>.seg.uploaded`).
pub fn uploaded_mark_path(segment: &Path) -> std::path::PathBuf {
    let mut name = segment.as_os_str().to_os_string();
    name.push(UPLOADED_MARK_SUFFIX);
    name.into()
}

/// What retention removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Base sequences of the deleted segments.
    pub deleted: Vec<u64>,
    pub bytes_freed: u64,
    /// The signed retention checkpoints written, one per deleted segment.
    pub checkpoints: Vec<Checkpoint>,
}

pub(crate) fn read_segment_header(
    fs: &dyn FileSystem,
    path: &Path,
) -> Result<SegmentHeader, RecorderError> {
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    fs.open_read(path)
        .and_then(|mut r| r.read_exact(&mut buf))
        .map_err(RecorderError::io("read segment header", path))?;
    Ok(SegmentHeader::decode(&buf)?)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Applies `policy` to one shard directory at time `now_ns`. `index` is the
/// shard's open index when the writer calls this; otherwise it is opened.
///
/// Each deletion is first written, signed with `key` when there is one, to
/// the shard's checkpoint file (`checkpoints`, or opened here): `verify`
/// accepts a shard that no longer starts at sequence 0 only on such a
/// checkpoint. The outcome lists them so the writer can chain them into the
/// log as well.
pub fn apply_retention(
    fs: &dyn FileSystem,
    shard_dir: &Path,
    policy: &RetentionPolicy,
    now_ns: u64,
    index: Option<&mut dyn AppendFile>,
    checkpoints: Option<&mut dyn AppendFile>,
    key: Option<&Ed25519KeyPair>,
) -> Result<RetentionOutcome, RecorderError> {
    let mut out = RetentionOutcome::default();
    if policy.max_age.is_none() && policy.max_bytes.is_none() && !policy.delete_uploaded {
        return Ok(out);
    }
    let segs = list_segments(fs, shard_dir)?;
    let mut sizes = Vec::with_capacity(segs.len());
    for (_, path) in &segs {
        sizes.push(fs.len(path).map_err(RecorderError::io("stat", path))?);
    }
    let mut total: u64 = sizes.iter().sum();
    let index_path = shard_dir.join(INDEX_FILE);
    let mut own_index: Option<Box<dyn AppendFile>> = None;
    let mut index = index;
    let cp_path = shard_dir.join(CHECKPOINT_FILE);
    let mut own_cp: Option<Box<dyn AppendFile>> = None;
    let mut checkpoints = checkpoints;
    // The last segment has no successor and is the active one: never deleted.
    for i in 0..segs.len().saturating_sub(1) {
        let (base, path) = &segs[i];
        let next = read_segment_header(fs, &segs[i + 1].1)?;
        // The next segment was created when this one was sealed.
        let too_old = policy
            .max_age
            .is_some_and(|age| u128::from(now_ns.saturating_sub(next.created_ns)) > age.as_nanos());
        let too_big = policy.max_bytes.is_some_and(|max| total > max);
        let upload_mark = uploaded_mark_path(path);
        let marked = fs.exists(&upload_mark);
        let uploaded = policy.delete_uploaded && marked;
        if !too_old && !too_big && !uploaded {
            break;
        }
        if policy.keep_until_uploaded && !marked {
            // Oldest first, as the uploader goes: nothing after it is marked
            // for deletion before it is.
            tracing::warn!(
                segment = %path.display(),
                "retention: a segment past retention_max_* is kept until it is uploaded"
            );
            break;
        }
        let mark = IndexEntry::Pruned {
            segment: *base,
            next_base: next.base_seq,
            chain_head: hex(&next.prev_hash),
        };
        let mut buf = Vec::new();
        mark.encode_into(&mut buf)?;
        let file: &mut dyn AppendFile = match index.as_deref_mut() {
            Some(f) => f,
            None => own_index
                .get_or_insert(
                    fs.open_append(&index_path)
                        .map_err(RecorderError::io("open index", &index_path))?,
                )
                .as_mut(),
        };
        file.append(&buf)
            .and_then(|()| file.sync())
            .map_err(RecorderError::io("append index", &index_path))?;
        let cp = Checkpoint::new(
            next.shard,
            CheckpointEvent::Prune,
            next.base_seq,
            &next.prev_hash,
            *base,
            key,
        );
        let cp_file: &mut dyn AppendFile = match checkpoints.as_deref_mut() {
            Some(f) => f,
            None => own_cp
                .get_or_insert(
                    fs.open_append(&cp_path)
                        .map_err(RecorderError::io("open checkpoints", &cp_path))?,
                )
                .as_mut(),
        };
        append_checkpoint(cp_file, &cp_path, &cp)?;
        out.checkpoints.push(cp);
        fs.remove(path)
            .map_err(RecorderError::io("remove segment", path))?;
        if fs.exists(&upload_mark) {
            fs.remove(&upload_mark)
                .map_err(RecorderError::io("remove upload mark", &upload_mark))?;
        }
        tracing::info!(segment = %path.display(), bytes = sizes[i], uploaded, "retention deleted a sealed segment");
        total -= sizes[i];
        out.deleted.push(*base);
        out.bytes_freed += sizes[i];
    }
    if !out.deleted.is_empty() {
        fs.sync_dir(shard_dir)
            .map_err(RecorderError::io("sync", shard_dir))?;
    }
    Ok(out)
}
