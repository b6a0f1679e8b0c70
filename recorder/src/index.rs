//! The per-shard session index (`sessions.idx`): an append-only file of
//! CRC'd entries, so finding a session does not scan every segment.
//!
//! The index may lag the segments after a crash (it is written after the
//! block it describes is durable); recovery re-derives the missing tail from
//! the last segment and drops entries beyond the recovered end.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::RecorderError;
use crate::format::u32_at;
use crate::fs::FileSystem;

/// File name of the index inside a shard directory.
pub const INDEX_FILE: &str = "sessions.idx";
/// Largest entry body accepted.
pub const MAX_INDEX_ENTRY: usize = 64 << 10;

/// One index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum IndexEntry {
    Start {
        seq: u64,
        session: u64,
        /// Base sequence of the segment holding the start record.
        segment: u64,
        ts_ns: u64,
        subject: String,
        target: String,
        #[serde(default)]
        client_addr: Option<String>,
    },
    End {
        seq: u64,
        session: u64,
        segment: u64,
        ts_ns: u64,
        reason: String,
    },
    /// Retention deleted the segment at `segment`; the next one starts at
    /// `next_base` and links to `chain_head` (hex).
    Pruned {
        segment: u64,
        next_base: u64,
        chain_head: String,
    },
}

impl IndexEntry {
    /// The record sequence an entry describes (none for retention marks).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Start { seq, .. } | Self::End { seq, .. } => Some(*seq),
            Self::Pruned { .. } => None,
        }
    }

    /// Appends the framed entry to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), RecorderError> {
        let body = serde_json::to_vec(self).map_err(|e| RecorderError::Index {
            detail: e.to_string(),
        })?;
        if body.len() > MAX_INDEX_ENTRY {
            return Err(RecorderError::Index {
                detail: format!(
                    "entry of {} bytes above the cap of {MAX_INDEX_ENTRY}",
                    body.len()
                ),
            });
        }
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        Ok(())
    }
}

/// The entries of an index file and where its valid part ends.
#[derive(Debug, Default)]
pub struct IndexContents {
    pub entries: Vec<(u64, IndexEntry)>,
    /// Length of the valid prefix; anything after it is a torn tail or damage.
    pub valid_len: u64,
    pub file_len: u64,
    /// Set when a bad entry has valid data after it (not a torn tail).
    pub damage: Option<(u64, String)>,
}

/// Reads a shard's index; a missing file is an empty index.
pub fn read_index(fs: &dyn FileSystem, path: &Path) -> Result<IndexContents, RecorderError> {
    if !fs.exists(path) {
        return Ok(IndexContents::default());
    }
    let mut data = Vec::new();
    fs.open_read(path)
        .and_then(|mut r| r.read_to_end(&mut data))
        .map_err(|source| RecorderError::Io {
            op: "read index",
            path: path.to_path_buf(),
            source,
        })?;
    let mut out = IndexContents {
        file_len: data.len() as u64,
        ..Default::default()
    };
    let mut at = 0usize;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < 8 {
            break;
        }
        let len = u32_at(rest, 0) as usize;
        if len > MAX_INDEX_ENTRY {
            out.damage = Some((at as u64, format!("entry length {len} above the cap")));
            break;
        }
        if rest.len() < 8 + len {
            break;
        }
        let body = &rest[8..8 + len];
        if crc32c::crc32c(body) != u32_at(rest, 4) {
            if rest.len() > 8 + len {
                out.damage = Some((at as u64, "entry checksum mismatch".into()));
            }
            break;
        }
        match serde_json::from_slice::<IndexEntry>(body) {
            Ok(e) => out.entries.push((at as u64, e)),
            Err(e) => {
                out.damage = Some((at as u64, format!("entry does not parse: {e}")));
                break;
            }
        }
        at += 8 + len;
    }
    out.valid_len = at as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    #[test]
    fn torn_index_tail_is_cut_at_the_last_good_entry() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/s")).unwrap();
        let mut buf = Vec::new();
        let e = IndexEntry::End {
            seq: 3,
            session: 9,
            segment: 0,
            ts_ns: 5,
            reason: "done".into(),
        };
        e.encode_into(&mut buf).unwrap();
        let first = buf.len();
        e.encode_into(&mut buf).unwrap();
        for cut in first..buf.len() {
            fs.write_file(Path::new("/s/i"), &buf[..cut]).unwrap();
            let c = read_index(&fs, Path::new("/s/i")).unwrap();
            assert_eq!(c.entries.len(), 1, "cut {cut}");
            assert_eq!(c.valid_len, first as u64);
            assert!(c.damage.is_none());
        }
        let mut bad = buf.clone();
        bad[10] ^= 1;
        fs.write_file(Path::new("/s/i"), &bad).unwrap();
        let c = read_index(&fs, Path::new("/s/i")).unwrap();
        assert_eq!((c.entries.len(), c.damage.map(|d| d.0)), (0, Some(0)));
    }
}
