//! Opening a shard after a restart or crash: find where the chain ends, cut
//! a torn tail, and refuse (with the exact place) any damage elsewhere.

use std::path::{Path, PathBuf};

use crate::block::BlockDecoder;
use crate::error::RecorderError;
use crate::format::{Hash, SEGMENT_HEADER_LEN, ZERO_HASH, parse_segment_file_name};
use crate::fs::FileSystem;
use crate::index::IndexEntry;
use crate::record::{RawRecords, Record, RecordBody, RecordKind};
use crate::scan::{ScanItem, ScanStop, SegmentScan};

/// The segments of a shard directory, sorted by base sequence.
pub fn list_segments(
    fs: &dyn FileSystem,
    shard_dir: &Path,
) -> Result<Vec<(u64, PathBuf)>, RecorderError> {
    let mut segs: Vec<(u64, PathBuf)> = fs
        .list(shard_dir)
        .map_err(RecorderError::io("list", shard_dir))?
        .into_iter()
        .filter_map(|name| parse_segment_file_name(&name).map(|base| (base, shard_dir.join(name))))
        .collect();
    segs.sort_by_key(|(base, _)| *base);
    Ok(segs)
}

/// The shard's last segment as recovery left it.
#[derive(Debug)]
pub(crate) struct LastSegment {
    pub path: PathBuf,
    pub header_bytes: [u8; SEGMENT_HEADER_LEN],
    pub created_ns: u64,
    pub len: u64,
    pub blocks: u32,
    pub sealed: bool,
}

#[derive(Debug)]
pub(crate) struct Recovered {
    pub last: Option<LastSegment>,
    pub chain_head: Hash,
    pub next_seq: u64,
    /// Index entries for the session starts/ends found in the last segment.
    pub index_entries: Vec<IndexEntry>,
}

/// Recovers shard `shard` in `shard_dir`.
pub(crate) fn recover_shard(
    fs: &dyn FileSystem,
    shard_dir: &Path,
    shard: u32,
) -> Result<Recovered, RecorderError> {
    let mut segs = list_segments(fs, shard_dir)?;
    let corrupt = |path: &Path, offset, detail: String| RecorderError::Corrupt {
        shard,
        path: path.to_path_buf(),
        offset,
        detail,
    };
    while let Some((base, path)) = segs.pop() {
        let mut scan = match SegmentScan::open(fs, &path) {
            Ok(s) => s,
            // A crash while creating the segment: it holds nothing, drop it.
            Err(ScanStop::Torn { offset, detail }) => {
                tracing::warn!(shard, path = %path.display(), offset, detail, "removing a segment torn while it was created");
                fs.remove(&path)
                    .map_err(RecorderError::io("remove torn segment", &path))?;
                fs.sync_dir(shard_dir)
                    .map_err(RecorderError::io("sync", shard_dir))?;
                continue;
            }
            Err(ScanStop::Corrupt { offset, detail }) => {
                return Err(corrupt(&path, offset, detail));
            }
            Err(ScanStop::Io(e)) => {
                return Err(RecorderError::Io {
                    op: "read segment",
                    path,
                    source: e,
                });
            }
        };
        if scan.header.shard != shard || scan.header.base_seq != base {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "header names shard {} base {}, file is shard {shard} base {base}",
                    scan.header.shard, scan.header.base_seq
                ),
            ));
        }
        let mut chain = scan.header.prev_hash;
        let mut next_seq = base;
        let mut blocks = 0u32;
        let mut sealed = false;
        let mut entries = Vec::new();
        let mut decoder = BlockDecoder::new().map_err(RecorderError::io("zstd", &path))?;
        let end = loop {
            match scan.next_item() {
                Ok(None) => break scan.offset,
                Ok(Some(ScanItem::Block {
                    index,
                    offset,
                    header,
                    hash,
                })) => {
                    if header.prev_hash != chain || header.first_seq != next_seq {
                        return Err(corrupt(
                            &path,
                            offset,
                            format!(
                                "block {index} does not continue the chain (seq {} expected {next_seq})",
                                header.first_seq
                            ),
                        ));
                    }
                    let raw = decoder
                        .decompress(&header, scan.payload())
                        .map_err(|e| corrupt(&path, offset, format!("block {index}: {e}")))?;
                    let mut n = 0u64;
                    for rec in RawRecords::new(raw) {
                        let rec =
                            rec.map_err(|e| corrupt(&path, offset, format!("block {index}: {e}")))?;
                        let seq = header.first_seq + n;
                        n += 1;
                        if matches!(rec.kind, RecordKind::SessionStart | RecordKind::SessionEnd) {
                            let rec = rec.to_record().map_err(|e| {
                                corrupt(&path, offset, format!("block {index}: {e}"))
                            })?;
                            entries.extend(index_entry_for(seq, base, &rec));
                        }
                    }
                    if n != u64::from(header.count) {
                        return Err(corrupt(
                            &path,
                            offset,
                            format!(
                                "block {index} holds {n} records, header says {}",
                                header.count
                            ),
                        ));
                    }
                    chain = hash;
                    next_seq += n;
                    blocks += 1;
                }
                Ok(Some(ScanItem::Seal { offset, seal })) => {
                    if seal.chain_head != chain
                        || seal.next_seq != next_seq
                        || seal.block_count != blocks
                    {
                        return Err(corrupt(
                            &path,
                            offset,
                            "seal does not match the segment's blocks".into(),
                        ));
                    }
                    sealed = true;
                }
                Err(ScanStop::Torn { offset, detail }) => {
                    tracing::warn!(shard, path = %path.display(), offset, detail, "truncating a torn tail");
                    fs.truncate(&path, offset)
                        .map_err(RecorderError::io("truncate torn tail", &path))?;
                    break offset;
                }
                Err(ScanStop::Corrupt { offset, detail }) => {
                    return Err(corrupt(&path, offset, detail));
                }
                Err(ScanStop::Io(e)) => {
                    return Err(RecorderError::Io {
                        op: "read segment",
                        path,
                        source: e,
                    });
                }
            }
        };
        return Ok(Recovered {
            last: Some(LastSegment {
                path,
                header_bytes: scan.header_bytes,
                created_ns: scan.header.created_ns,
                len: end,
                blocks,
                sealed,
            }),
            chain_head: chain,
            next_seq,
            index_entries: entries,
        });
    }
    Ok(Recovered {
        last: None,
        chain_head: ZERO_HASH,
        next_seq: 0,
        index_entries: Vec::new(),
    })
}

/// The index entry a record calls for, if any.
pub(crate) fn index_entry_for(seq: u64, segment: u64, record: &Record) -> Option<IndexEntry> {
    let (session, ts_ns) = (record.session, record.timestamp_ns);
    match &record.body {
        RecordBody::SessionStart(s) => Some(IndexEntry::Start {
            seq,
            session,
            segment,
            ts_ns,
            subject: s.subject.clone(),
            target: s.target.clone(),
            client_addr: s.client_addr.clone(),
        }),
        RecordBody::SessionEnd(e) => Some(IndexEntry::End {
            seq,
            session,
            segment,
            ts_ns,
            reason: e.reason.clone(),
        }),
        _ => None,
    }
}
