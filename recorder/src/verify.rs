//! `verify`: checks every CRC, the hash chain of each shard across all its
//! segments, seals and signatures, and names the shard, segment file and
//! block of every problem.

use std::fmt;
use std::path::Path;

use crate::anchor::{Anchors, IndexCheck};
use crate::block::BlockDecoder;
use crate::checkpoint::CHECKPOINT_FILE;
use crate::error::RecorderError;
use crate::format::{Hash, ZERO_HASH};
use crate::index::{INDEX_FILE, read_index};
use crate::reader::RecordingDir;
use crate::record::{RawRecords, RecordKind};
use crate::recovery::list_segments;
use crate::scan::{ScanItem, ScanStop, SegmentScan};
use crate::signing::signature_valid;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The segment header is unreadable or names another shard/base.
    BadHeader,
    /// A block's header, length or CRC is bad (a changed byte).
    BadBlock,
    /// A block does not link to the one before it (deleted, reordered or
    /// altered blocks).
    BrokenChain,
    /// Sequence numbers skip or repeat.
    SequenceGap,
    /// A block's payload does not decompress or parse.
    Undecodable,
    /// An incomplete block or seal (a truncated file).
    Truncated,
    /// A segment with a later segment after it has no seal.
    Unsealed,
    /// The seal does not match the segment's blocks.
    BadSeal,
    /// A signature does not verify with the given key.
    BadSignature,
    /// A key was given but the seal is unsigned.
    Unsigned,
    /// Segments are missing (a gap in base sequences, or the start of the
    /// shard without a retention record).
    MissingSegment,
    /// The session index is damaged, or says something the chained
    /// session start/end records do not (edited, dropped or forged entries).
    BadIndex,
    /// The checkpoint file is damaged or missing, or a checkpoint in it is
    /// forged, or lacks one the log holds.
    BadCheckpoint,
    /// A signed checkpoint vouches for records the log no longer reaches:
    /// its end (or the last segment) was removed or truncated.
    TailRemoved,
    /// A file could not be read.
    Io,
}

/// One finding, with its exact place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub shard: u32,
    /// Segment (or index) file name.
    pub file: Option<String>,
    /// Index of the block within its segment.
    pub block: Option<u64>,
    /// Byte offset in the file.
    pub offset: Option<u64>,
    pub kind: ProblemKind,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.shard)?;
        if let Some(file) = &self.file {
            write!(f, " {file}")?;
        }
        if let Some(b) = self.block {
            write!(f, " block {b}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        write!(f, ": {:?}: {}", self.kind, self.detail)
    }
}

/// The outcome of [`verify`]. Any problem means the recording cannot be
/// trusted; warnings (a torn tail of the active segment, which a live or
/// crashed writer leaves and recovery cuts) do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub shards: u32,
    pub segments: u64,
    pub blocks: u64,
    pub records: u64,
    pub seals: u64,
    pub signatures_checked: u64,
    pub signatures_unchecked: u64,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} shards, {} segments, {} blocks, {} records, {} seals ({} signatures checked, {} not checked)",
            self.shards,
            self.segments,
            self.blocks,
            self.records,
            self.seals,
            self.signatures_checked,
            self.signatures_unchecked
        )?;
        for p in &self.problems {
            writeln!(f, "PROBLEM {p}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning {w}")?;
        }
        write!(f, "{}", if self.is_ok() { "OK" } else { "FAILED" })
    }
}

struct ShardCheck<'a> {
    report: &'a mut VerifyReport,
    shard: u32,
}

impl ShardCheck<'_> {
    fn problem(
        &mut self,
        file: &str,
        block: Option<u64>,
        offset: Option<u64>,
        kind: ProblemKind,
        detail: String,
    ) {
        self.report.problems.push(Problem {
            shard: self.shard,
            file: Some(file.to_owned()),
            block,
            offset,
            kind,
            detail,
        });
    }
    fn warning(&mut self, file: &str, offset: u64, detail: String) {
        self.report.warnings.push(Problem {
            shard: self.shard,
            file: Some(file.to_owned()),
            block: None,
            offset: Some(offset),
            kind: ProblemKind::Truncated,
            detail,
        });
    }
}

impl RecordingDir {
    /// Verifies every shard. `public_key` (32 raw bytes) checks seal
    /// signatures; without it, signatures are counted as unchecked.
    pub fn verify(&self, public_key: Option<&[u8]>) -> Result<VerifyReport, RecorderError> {
        let mut report = VerifyReport::default();
        let mut decoder = BlockDecoder::new().map_err(RecorderError::io("zstd", &self.dir))?;
        for (shard, shard_dir) in self.shards()? {
            report.shards += 1;
            self.verify_shard(shard, &shard_dir, public_key, &mut decoder, &mut report)?;
        }
        Ok(report)
    }

    fn verify_shard(
        &self,
        shard: u32,
        shard_dir: &Path,
        public_key: Option<&[u8]>,
        decoder: &mut BlockDecoder,
        report: &mut VerifyReport,
    ) -> Result<(), RecorderError> {
        let fs = self.fs.as_ref();
        // Checkpoints, then the index, then the segments: the writer appends
        // in the other order (block, index entry, checkpoint), so on a live
        // recording whatever the first two name is already in the log.
        let mut anchors = Anchors::load(fs, shard_dir, shard, public_key, report)?;
        let index = read_index(fs, &shard_dir.join(INDEX_FILE))?;
        let segs = list_segments(fs, shard_dir)?;
        let mut c = ShardCheck { report, shard };
        if let Some((offset, detail)) = &index.damage {
            c.problem(
                INDEX_FILE,
                None,
                Some(*offset),
                ProblemKind::BadIndex,
                detail.clone(),
            );
        }
        if !anchors.file_exists && !segs.is_empty() {
            c.problem(
                CHECKPOINT_FILE,
                None,
                None,
                ProblemKind::BadCheckpoint,
                "no checkpoint file: the end of the log cannot be proven (removed?)".into(),
            );
        }
        let mut idx = IndexCheck::new(shard, index.entries.into_iter().map(|(_, e)| e));
        let mut end = 0u64;
        // (base, chain head) the next segment must continue from.
        let mut expected: Option<(u64, Hash)> = None;
        for (i, (base, path)) in segs.iter().enumerate() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_owned();
            let is_last = i + 1 == segs.len();
            c.report.segments += 1;
            let mut scan = match SegmentScan::open(fs, path) {
                Ok(s) => s,
                Err(ScanStop::Torn { offset, detail }) if is_last => {
                    c.warning(&name, offset, detail);
                    continue;
                }
                Err(ScanStop::Torn { offset, detail } | ScanStop::Corrupt { offset, detail }) => {
                    c.problem(&name, None, Some(offset), ProblemKind::BadHeader, detail);
                    expected = None;
                    continue;
                }
                Err(ScanStop::Io(e)) => {
                    c.problem(&name, None, None, ProblemKind::Io, e.to_string());
                    expected = None;
                    continue;
                }
            };
            let h = scan.header;
            if h.shard != shard || h.base_seq != *base {
                c.problem(
                    &name,
                    None,
                    Some(0),
                    ProblemKind::BadHeader,
                    format!("header names shard {} base {}", h.shard, h.base_seq),
                );
            }
            match expected {
                Some((exp_base, _)) if exp_base != *base => c.problem(
                    &name,
                    None,
                    Some(0),
                    ProblemKind::MissingSegment,
                    format!("expected a segment starting at sequence {exp_base}, found {base}: segments removed or truncated"),
                ),
                Some((_, exp_head)) if exp_head != h.prev_hash => c.problem(
                    &name,
                    None,
                    Some(0),
                    ProblemKind::BrokenChain,
                    "segment does not link to the end of the previous segment".into(),
                ),
                Some(_) => {}
                None if i == 0 => {
                    let genesis = *base == 0 && h.prev_hash == ZERO_HASH;
                    let retained = anchors.pruned_to(*base, &h.prev_hash);
                    if !genesis && !retained {
                        c.problem(
                            &name,
                            None,
                            Some(0),
                            ProblemKind::MissingSegment,
                            format!("the shard starts at sequence {base} with no retention record: earlier segments removed"),
                        );
                    }
                }
                None => {}
            }
            anchors.boundary(*base, &h.prev_hash, &name, c.report);
            let mut chain = h.prev_hash;
            let mut next_seq = *base;
            let mut blocks = 0u32;
            let mut sealed = None;
            let mut complete = true;
            loop {
                match scan.next_item() {
                    Ok(None) => break,
                    Ok(Some(ScanItem::Block {
                        index,
                        offset,
                        header,
                        hash,
                    })) => {
                        c.report.blocks += 1;
                        if header.prev_hash != chain {
                            c.problem(
                                &name,
                                Some(index),
                                Some(offset),
                                ProblemKind::BrokenChain,
                                format!("block does not link to the block before it (starts at sequence {}, expected {next_seq}): blocks deleted, reordered or altered", header.first_seq),
                            );
                        } else if header.first_seq != next_seq {
                            c.problem(
                                &name,
                                Some(index),
                                Some(offset),
                                ProblemKind::SequenceGap,
                                format!(
                                    "starts at sequence {}, expected {next_seq}",
                                    header.first_seq
                                ),
                            );
                        }
                        match decoder.decompress(&header, scan.payload()) {
                            Ok(raw) => {
                                let mut n = 0u64;
                                let mut bad = None;
                                for r in RawRecords::new(raw) {
                                    match r {
                                        Ok(rec) => {
                                            let seq = header.first_seq + n;
                                            match rec.kind {
                                                RecordKind::SessionStart
                                                | RecordKind::SessionEnd => {
                                                    idx.record(seq, *base, &rec, c.report)
                                                }
                                                RecordKind::Checkpoint => {
                                                    anchors.in_log(&rec, &name, seq, c.report)
                                                }
                                                _ => {}
                                            }
                                            n += 1;
                                        }
                                        Err(e) => bad = Some(e.to_string()),
                                    }
                                }
                                c.report.records += n;
                                if let Some(e) = bad {
                                    c.problem(
                                        &name,
                                        Some(index),
                                        Some(offset),
                                        ProblemKind::Undecodable,
                                        e,
                                    );
                                } else if n != u64::from(header.count) {
                                    c.problem(
                                        &name,
                                        Some(index),
                                        Some(offset),
                                        ProblemKind::Undecodable,
                                        format!("holds {n} records, header says {}", header.count),
                                    );
                                }
                            }
                            Err(e) => c.problem(
                                &name,
                                Some(index),
                                Some(offset),
                                ProblemKind::Undecodable,
                                e.to_string(),
                            ),
                        }
                        chain = hash;
                        next_seq = header.first_seq + u64::from(header.count);
                        blocks += 1;
                        anchors.boundary(next_seq, &chain, &name, c.report);
                    }
                    Ok(Some(ScanItem::Seal { offset, seal })) => {
                        c.report.seals += 1;
                        if seal.block_count != blocks
                            || seal.next_seq != next_seq
                            || seal.chain_head != chain
                        {
                            c.problem(
                                &name,
                                None,
                                Some(offset),
                                ProblemKind::BadSeal,
                                format!("seal covers {} blocks up to sequence {}, segment has {blocks} up to {next_seq} (or a different chain head)", seal.block_count, seal.next_seq),
                            );
                        }
                        match (public_key, &seal.signature) {
                            (Some(key), Some(sig)) => {
                                c.report.signatures_checked += 1;
                                if !signature_valid(
                                    key,
                                    &seal.signed_message(&scan.header_bytes),
                                    sig,
                                ) {
                                    c.problem(
                                        &name,
                                        None,
                                        Some(offset),
                                        ProblemKind::BadSignature,
                                        "seal signature does not verify with the given key".into(),
                                    );
                                }
                            }
                            (Some(_), None) => c.problem(
                                &name,
                                None,
                                Some(offset),
                                ProblemKind::Unsigned,
                                "seal is not signed".into(),
                            ),
                            (None, Some(_)) => c.report.signatures_unchecked += 1,
                            (None, None) => {}
                        }
                        sealed = Some(seal);
                    }
                    Err(ScanStop::Torn { offset, detail }) => {
                        complete = false;
                        if is_last && sealed.is_none() {
                            c.warning(
                                &name,
                                offset,
                                format!("torn tail (recovery will cut it): {detail}"),
                            );
                        } else {
                            c.problem(
                                &name,
                                Some(u64::from(blocks)),
                                Some(offset),
                                ProblemKind::Truncated,
                                detail,
                            );
                        }
                        break;
                    }
                    Err(ScanStop::Corrupt { offset, detail }) => {
                        complete = false;
                        c.problem(
                            &name,
                            Some(u64::from(blocks)),
                            Some(offset),
                            ProblemKind::BadBlock,
                            detail,
                        );
                        break;
                    }
                    Err(ScanStop::Io(e)) => {
                        complete = false;
                        c.problem(&name, None, None, ProblemKind::Io, e.to_string());
                        break;
                    }
                }
            }
            if !is_last && sealed.is_none() {
                c.problem(
                    &name,
                    None,
                    Some(scan.offset),
                    ProblemKind::Unsealed,
                    "segment has no seal but a later segment exists: truncated".into(),
                );
            }
            anchors.segment(*base, sealed.as_ref());
            end = end.max(next_seq);
            // After damage the chain's end is unknown unless a seal said it.
            expected = match sealed {
                Some(seal) => Some((seal.next_seq, seal.chain_head)),
                None if complete => Some((next_seq, chain)),
                None => None,
            };
        }
        let first = segs.first().map(|(b, _)| *b);
        anchors.finish(first, end, c.report);
        idx.finish(first.unwrap_or(0), end, anchors.covered(), c.report);
        Ok(())
    }
}

/// Verifies the recording in `dir` (see [`RecordingDir::verify`]).
pub fn verify(dir: &Path, public_key: Option<&[u8]>) -> Result<VerifyReport, RecorderError> {
    RecordingDir::open(dir).verify(public_key)
}
