//! Tampering and damage: `verify` names the shard, segment file and block of
//! a flipped byte, a deleted block, swapped blocks, a truncated sealed
//! segment and a removed segment; recovery refuses damage that is not a
//! torn tail; seals are signed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use tollgate_recorder::format::{
    BLOCK_HEADER_LEN, BlockHeader, SEGMENT_HEADER_LEN, segment_file_name,
};
use tollgate_recorder::fs::RealFs;
use tollgate_recorder::{
    ProblemKind, Recorder, RecorderError, VerifyReport, keygen, list_segments, verify,
};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    public: Vec<u8>,
}

impl Fixture {
    /// One shard, small blocks and segments, every segment sealed and signed.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let public = keygen(&tmp.path().join("seal.key"), &tmp.path().join("seal.pub")).unwrap();
        let mut cfg = config(&dir);
        cfg.block_size = 512;
        cfg.segment_max_bytes = 4096;
        cfg.signing_key = Some(tmp.path().join("seal.key"));
        let rec = Recorder::open(&cfg, 1).unwrap();
        let s = rec.shard(0).unwrap();
        block_on(s.record(start(1, 0, "svc", "db"))).unwrap();
        for i in 0..1500u64 {
            let text = format!(
                "SELECT {i}, md5('{}') FROM t WHERE id = {}",
                i * 7919 % 1000,
                i * 31
            );
            block_on(s.record(client(1, i + 1, text.as_bytes()))).unwrap();
        }
        block_on(s.record(end(1, 10_000))).unwrap();
        rec.shutdown().unwrap();
        Self {
            _tmp: tmp,
            dir,
            public,
        }
    }

    fn shard_dir(&self) -> PathBuf {
        self.dir.join("shard-0")
    }

    fn segments(&self) -> Vec<(u64, PathBuf)> {
        list_segments(&RealFs, &self.shard_dir()).unwrap()
    }

    fn verify(&self) -> VerifyReport {
        verify(&self.dir, Some(&self.public)).unwrap()
    }
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_owned()
}

/// (offset, length) of each block of a segment.
fn blocks(path: &Path) -> Vec<(usize, usize)> {
    let data = std::fs::read(path).unwrap();
    let mut at = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while at + 4 <= data.len() && data[at..at + 4] == *b"TGBK" {
        let h = BlockHeader::decode(&data[at..]).unwrap();
        let len = BLOCK_HEADER_LEN + h.compressed_len as usize;
        out.push((at, len));
        at += len;
    }
    out
}

fn has(report: &VerifyReport, kind: ProblemKind, file: &str, block: Option<u64>) -> bool {
    report.problems.iter().any(|p| {
        p.kind == kind && p.file.as_deref() == Some(file) && (block.is_none() || p.block == block)
    })
}

#[test]
fn an_untouched_recording_verifies_with_its_signatures() {
    let f = Fixture::new();
    let segs = f.segments();
    assert!(
        segs.len() >= 4,
        "fixture should span several segments, has {}",
        segs.len()
    );
    let report = f.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.seals, segs.len() as u64);
    assert_eq!(report.signatures_checked, segs.len() as u64);
    assert_eq!(report.records, 1502);
    let other = keygen(&f.dir.join("other.key"), &f.dir.join("other.pub")).unwrap();
    let wrong = verify(&f.dir, Some(&other)).unwrap();
    assert_eq!(
        wrong
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::BadSignature)
            .count(),
        segs.len()
    );
}

#[test]
fn a_flipped_byte_is_named() {
    let f = Fixture::new();
    let (_, path) = &f.segments()[1];
    let (off, len) = blocks(path)[2];
    let mut data = std::fs::read(path).unwrap();
    data[off + len / 2 + BLOCK_HEADER_LEN / 2] ^= 0x01;
    std::fs::write(path, data).unwrap();
    let report = f.verify();
    assert!(
        has(&report, ProblemKind::BadBlock, &name(path), Some(2)),
        "{report}"
    );
}

#[test]
fn a_deleted_block_is_named() {
    let f = Fixture::new();
    let (_, path) = &f.segments()[1];
    let (off, len) = blocks(path)[2];
    let mut data = std::fs::read(path).unwrap();
    data.drain(off..off + len);
    std::fs::write(path, data).unwrap();
    let report = f.verify();
    assert!(
        has(&report, ProblemKind::BrokenChain, &name(path), Some(2)),
        "{report}"
    );
    assert!(
        has(&report, ProblemKind::BadSeal, &name(path), None),
        "{report}"
    );
}

#[test]
fn swapped_blocks_are_named() {
    let f = Fixture::new();
    let (_, path) = &f.segments()[2];
    let b = blocks(path);
    let ((o1, l1), (o2, l2)) = (b[1], b[2]);
    let data = std::fs::read(path).unwrap();
    let mut out = data[..o1].to_vec();
    out.extend_from_slice(&data[o2..o2 + l2]);
    out.extend_from_slice(&data[o1..o1 + l1]);
    out.extend_from_slice(&data[o2 + l2..]);
    std::fs::write(path, out).unwrap();
    let report = f.verify();
    assert!(
        has(&report, ProblemKind::BrokenChain, &name(path), Some(1)),
        "{report}"
    );
    assert!(
        has(&report, ProblemKind::BrokenChain, &name(path), Some(2)),
        "{report}"
    );
}

#[test]
fn a_truncated_sealed_segment_is_named() {
    let f = Fixture::new();
    let (_, path) = &f.segments()[0];
    let (off, _) = blocks(path)[3];
    let data = std::fs::read(path).unwrap();
    std::fs::write(path, &data[..off + 20]).unwrap();
    let report = f.verify();
    assert!(
        has(&report, ProblemKind::Truncated, &name(path), Some(3)),
        "{report}"
    );
    assert!(
        has(&report, ProblemKind::Unsealed, &name(path), None),
        "{report}"
    );

    // Cut exactly at a block boundary: only the missing seal gives it away.
    std::fs::write(path, &data[..off]).unwrap();
    let report = f.verify();
    assert!(
        has(&report, ProblemKind::Unsealed, &name(path), None),
        "{report}"
    );
}

#[test]
fn a_removed_segment_is_named() {
    let f = Fixture::new();
    let segs = f.segments();
    std::fs::remove_file(&segs[1].1).unwrap();
    let report = f.verify();
    assert!(
        has(
            &report,
            ProblemKind::MissingSegment,
            &name(&segs[2].1),
            None
        ),
        "{report}"
    );

    std::fs::remove_file(&segs[0].1).unwrap();
    let report = f.verify();
    assert!(
        has(
            &report,
            ProblemKind::MissingSegment,
            &name(&segs[2].1),
            None
        ),
        "{report}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("no retention record")),
        "{report}"
    );
}

#[test]
fn recovery_refuses_damage_that_is_not_a_torn_tail() {
    let f = Fixture::new();
    let (_, path) = f.segments().pop().unwrap();
    let (off, _) = blocks(&path)[0];
    let mut data = std::fs::read(&path).unwrap();
    data[off + BLOCK_HEADER_LEN + 3] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    let err = Recorder::open(&config(&f.dir), 1).unwrap_err();
    match err {
        RecorderError::Corrupt {
            path: p, offset, ..
        } => {
            assert_eq!(p, path);
            assert_eq!(offset, off as u64);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn recovery_cuts_a_torn_tail_and_continues_the_chain() {
    let f = Fixture::new();
    let (_, path) = f.segments().pop().unwrap();
    let (off, _) = *blocks(&path).last().unwrap();
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..off + 30]).unwrap();
    let report = f.verify();
    assert!(
        report.is_ok() && !report.warnings.is_empty(),
        "a torn active tail is a warning: {report}"
    );
    let rec = Recorder::open(&config(&f.dir), 1).unwrap();
    let s = rec.shard(0).unwrap();
    block_on(s.record(start(2, 2000, "svc", "db"))).unwrap();
    rec.shutdown().unwrap();
    let report = verify(&f.dir, None).unwrap();
    assert!(report.is_ok() && report.warnings.is_empty(), "{report}");
    let n = blocks(&path).len();
    assert_eq!(
        blocks(&path)[n - 1].0,
        off,
        "the torn block was cut and the new one written in its place"
    );
    let all = read_all(Arc::new(RealFs), &f.dir);
    assert_eq!(all.last().unwrap().2, start(2, 2000, "svc", "db"));
    assert!(f.shard_dir().join(segment_file_name(0)).exists());
}
