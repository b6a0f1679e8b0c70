//! Tampering and damage: `verify` names the shard, segment file and block of
//! a flipped byte, a deleted block, swapped blocks, a truncated sealed
//! segment and a removed segment; recovery refuses damage that is not a
//! torn tail; seals are signed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use tollgate_recorder::checkpoint::{CHECKPOINT_FILE, CheckpointEvent, read_checkpoints};
use tollgate_recorder::format::{
    BLOCK_HEADER_LEN, BlockHeader, SEGMENT_HEADER_LEN, SegmentHeader, segment_file_name,
};
use tollgate_recorder::fs::RealFs;
use tollgate_recorder::index::{INDEX_FILE, IndexEntry, read_index};
use tollgate_recorder::{
    ProblemKind, RecordBody, Recorder, RecorderError, RecordingDir, SessionFilter, VerifyReport,
    keygen, list_segments, verify,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

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

fn count_checkpoints(f: &Fixture) -> usize {
    read_checkpoints(&RealFs, &f.shard_dir().join(CHECKPOINT_FILE))
        .unwrap()
        .entries
        .len()
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
    let checkpoints = count_checkpoints(&f);
    assert_eq!(
        report.signatures_checked,
        (segs.len() + checkpoints) as u64,
        "every seal and every checkpoint is signed and checked"
    );
    assert_eq!(report.records, 1502);
    let other = keygen(&f.dir.join("other.key"), &f.dir.join("other.pub")).unwrap();
    let wrong = verify(&f.dir, Some(&other)).unwrap();
    let bad = |file_is_checkpoints: bool| {
        wrong
            .problems
            .iter()
            .filter(|p| {
                p.kind == ProblemKind::BadSignature
                    && (p.file.as_deref() == Some(CHECKPOINT_FILE)) == file_is_checkpoints
            })
            .count()
    };
    assert_eq!(bad(false), segs.len());
    assert_eq!(bad(true), checkpoints);
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
    // A writer that dies (no shutdown, no seal) after more records were
    // durable but before another checkpoint: a crash. The lost writer
    // thread stays parked; with hour-long intervals it writes nothing more.
    let mut cfg = config(&f.dir);
    cfg.block_size = 512;
    cfg.checkpoint_interval = std::time::Duration::from_secs(3600);
    cfg.signing_key = Some(f._tmp.path().join("seal.key"));
    let rec = Recorder::open(&cfg, 1).unwrap();
    let s = rec.shard(0).unwrap();
    let mut last = 0;
    for i in 0..40u64 {
        let text = format!("SELECT {i}, 'after the restart' FROM t");
        last = block_on(s.record(client(1, 20_000 + i, text.as_bytes()))).unwrap();
    }
    block_on(s.wait_durable(last)).unwrap();
    std::mem::forget(rec);
    let (_, path) = f.segments().pop().unwrap();
    let (off, _) = *blocks(&path).last().unwrap();
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..off + 30]).unwrap();
    let report = f.verify();
    assert!(
        report.is_ok() && !report.warnings.is_empty(),
        "a torn active tail is a warning: {report}"
    );
    let rec = Recorder::open(&cfg, 1).unwrap();
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

// ---- Issue 11 item 7: the tail, the index and retention are anchored. ----

fn has_kind(report: &VerifyReport, kind: ProblemKind) -> bool {
    report.problems.iter().any(|p| p.kind == kind)
}

/// Rewrites the session index with `edit` applied to its entries, each
/// entry re-framed with a freshly computed CRC (what an editor would do).
fn rewrite_index(f: &Fixture, edit: impl FnOnce(&mut Vec<IndexEntry>)) {
    let path = f.shard_dir().join(INDEX_FILE);
    let mut entries: Vec<IndexEntry> = read_index(&RealFs, &path)
        .unwrap()
        .entries
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    edit(&mut entries);
    let mut out = Vec::new();
    for e in &entries {
        e.encode_into(&mut out).unwrap();
    }
    std::fs::write(&path, out).unwrap();
}

/// Several sessions, so the index has entries in the middle and at the end.
fn sessions_fixture() -> Fixture {
    let f = Fixture::new();
    let mut cfg = config(&f.dir);
    cfg.block_size = 512;
    cfg.segment_max_bytes = 4096;
    cfg.signing_key = Some(f._tmp.path().join("seal.key"));
    let rec = Recorder::open(&cfg, 1).unwrap();
    let s = rec.shard(0).unwrap();
    for sess in 2..6u64 {
        block_on(s.record(start(sess, sess * 100_000, &format!("user-{sess}"), "db"))).unwrap();
        for i in 0..100u64 {
            let text = format!("UPDATE accounts SET n = {i} WHERE id = {sess}");
            block_on(s.record(client(sess, sess * 100_000 + i + 1, text.as_bytes()))).unwrap();
        }
        block_on(s.record(end(sess, sess * 100_000 + 999))).unwrap();
    }
    rec.shutdown().unwrap();
    assert!(f.verify().is_ok(), "{}", f.verify());
    f
}

#[test]
fn truncating_the_last_sealed_segment_by_200_bytes_is_an_error() {
    let f = Fixture::new();
    let (_, path) = f.segments().pop().unwrap();
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() - 200]).unwrap();
    let report = f.verify();
    assert!(!report.is_ok(), "{report}");
    assert!(
        has(&report, ProblemKind::Truncated, &name(&path), None),
        "{report}"
    );
    assert!(has_kind(&report, ProblemKind::TailRemoved), "{report}");
}

#[test]
fn deleting_the_last_segment_file_is_an_error() {
    let f = Fixture::new();
    let segs = f.segments();
    let (_, last) = segs.last().unwrap();
    std::fs::remove_file(last).unwrap();
    let report = f.verify();
    assert!(has_kind(&report, ProblemKind::TailRemoved), "{report}");
    assert!(
        has(&report, ProblemKind::Truncated, &name(last), None)
            || report
                .problems
                .iter()
                .any(|p| p.detail.contains(&name(last))),
        "the missing segment is named: {report}"
    );

    // The same after a restart: the last segment is then a fresh, empty
    // one; its creation was checkpointed, so deleting it shows too.
    let f = Fixture::new();
    let mut cfg = config(&f.dir);
    cfg.signing_key = Some(f._tmp.path().join("seal.key"));
    Recorder::open(&cfg, 1).unwrap().shutdown().unwrap();
    let (_, empty) = f.segments().pop().unwrap();
    std::fs::remove_file(&empty).unwrap();
    let report = f.verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::MissingSegment && p.detail.contains(&name(&empty))),
        "{report}"
    );
}

#[test]
fn an_index_entry_edited_with_its_crc_recomputed_is_an_error() {
    let f = sessions_fixture();
    rewrite_index(&f, |entries| {
        for e in entries.iter_mut() {
            if let IndexEntry::Start {
                session: 3,
                subject,
                ..
            } = e
            {
                *subject = "someone-else".into();
            }
        }
    });
    // The forged subject is what the index now shows ...
    let listed = RecordingDir::open(&f.dir)
        .list_sessions(&SessionFilter::default())
        .unwrap();
    assert!(listed.iter().any(|s| s.subject == "someone-else"));
    // ... and verify tells.
    let report = f.verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::BadIndex
                && p.file.as_deref() == Some(INDEX_FILE)
                && p.detail.contains("someone-else")
                && p.detail.contains("user-3")),
        "{report}"
    );
}

#[test]
fn dropped_index_entries_are_an_error() {
    // One from the middle.
    let f = sessions_fixture();
    rewrite_index(&f, |entries| {
        entries.retain(|e| !matches!(e, IndexEntry::Start { session: 3, .. }))
    });
    let report = f.verify();
    assert!(
        report.problems.iter().any(|p| p.kind == ProblemKind::BadIndex
            && p.detail.contains("no entry for session 3")),
        "{report}"
    );

    // The last ones: the seal's checkpoint vouches for them.
    let f = sessions_fixture();
    rewrite_index(&f, |entries| {
        entries.retain(|e| {
            !matches!(
                e,
                IndexEntry::Start { session: 5, .. } | IndexEntry::End { session: 5, .. }
            )
        })
    });
    let report = f.verify();
    assert!(
        report.problems.iter().any(|p| p.kind == ProblemKind::BadIndex
            && p.detail.contains("no entry for session 5")),
        "{report}"
    );

    // And an entry for a session that never was.
    let f = sessions_fixture();
    rewrite_index(&f, |entries| {
        entries.push(IndexEntry::Start {
            seq: 10,
            session: 99,
            segment: 0,
            ts_ns: 1,
            subject: "ghost".into(),
            target: "db".into(),
            client_addr: None,
        })
    });
    let report = f.verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::BadIndex && p.detail.contains("ghost")),
        "{report}"
    );
}

#[test]
fn deleting_the_first_segment_with_a_forged_retention_record_is_an_error() {
    let f = Fixture::new();
    let segs = f.segments();
    let (base, first) = &segs[0];
    let next = std::fs::read(&segs[1].1).unwrap();
    let next = SegmentHeader::decode(&next).unwrap();
    std::fs::remove_file(first).unwrap();
    // What the old format accepted: a retention mark in the index.
    let path = f.shard_dir().join(INDEX_FILE);
    let mut out = std::fs::read(&path).unwrap();
    IndexEntry::Pruned {
        segment: *base,
        next_base: next.base_seq,
        chain_head: hex(&next.prev_hash),
    }
    .encode_into(&mut out)
    .unwrap();
    std::fs::write(&path, out).unwrap();
    let report = f.verify();
    assert!(
        has(
            &report,
            ProblemKind::MissingSegment,
            &name(&segs[1].1),
            None
        ),
        "{report}"
    );

    // A retention checkpoint forged without the key does not pass either.
    let cp_path = f.shard_dir().join(CHECKPOINT_FILE);
    let mut forged = read_checkpoints(&RealFs, &cp_path).unwrap().entries[0]
        .1
        .clone();
    forged.event = CheckpointEvent::Prune;
    forged.seq = next.base_seq;
    forged.head = hex(&next.prev_hash);
    forged.segment = *base;
    let body = serde_json::to_vec(&forged).unwrap();
    let mut file = std::fs::read(&cp_path).unwrap();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    file.extend_from_slice(&body);
    std::fs::write(&cp_path, file).unwrap();
    let report = f.verify();
    assert!(
        has(
            &report,
            ProblemKind::MissingSegment,
            &name(&segs[1].1),
            None
        ),
        "{report}"
    );
    assert!(
        has(&report, ProblemKind::BadSignature, CHECKPOINT_FILE, None),
        "{report}"
    );
}

#[test]
fn retention_by_the_writer_leaves_a_recording_that_verifies() {
    let f = Fixture::new();
    let before = f.segments().len();
    let mut cfg = config(&f.dir);
    cfg.signing_key = Some(f._tmp.path().join("seal.key"));
    cfg.segment_max_bytes = 4096;
    cfg.retention_max_bytes = Some(3 * 4096);
    Recorder::open(&cfg, 1).unwrap().shutdown().unwrap();
    let after = f.segments();
    assert!(after.len() < before, "{} -> {}", before, after.len());
    assert_ne!(after[0].0, 0);
    let report = f.verify();
    assert!(report.is_ok(), "{report}");
    // The deletions are chained into the log as signed checkpoints too.
    let logged = read_all(Arc::new(RealFs), &f.dir)
        .into_iter()
        .filter(|(_, _, r)| {
            matches!(&r.body, RecordBody::Checkpoint(c) if c.event == CheckpointEvent::Prune)
        })
        .count();
    let filed = read_checkpoints(&RealFs, &f.shard_dir().join(CHECKPOINT_FILE))
        .unwrap()
        .entries
        .iter()
        .filter(|(_, c)| c.event == CheckpointEvent::Prune)
        .count();
    // The restart opened one more segment than the fixture left.
    assert_eq!((logged, filed), (before + 1 - after.len(), logged));
}

#[test]
fn truncating_the_checkpoint_file_is_an_error_while_the_log_holds_its_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut cfg = config(&dir);
    cfg.checkpoint_interval = std::time::Duration::from_millis(1);
    let rec = Recorder::open(&cfg, 1).unwrap();
    let s = rec.shard(0).unwrap();
    block_on(s.record(start(1, 1, "svc", "db"))).unwrap();
    let mut seq = 0;
    for i in 0..50u64 {
        seq = block_on(s.record(client(1, 2 + i, b"select 1"))).unwrap();
        block_on(s.wait_durable(seq)).unwrap();
    }
    wait_until("an interval checkpoint in the log", || {
        s.health().durable_seq > seq + 1
    });
    rec.shutdown().unwrap();
    assert!(verify(&dir, None).unwrap().is_ok());
    let cp_path = dir.join("shard-0").join(CHECKPOINT_FILE);
    let cps = read_checkpoints(&RealFs, &cp_path).unwrap();
    let interval = cps
        .entries
        .iter()
        .find(|(_, c)| c.event == CheckpointEvent::Interval)
        .expect("an interval checkpoint")
        .0;
    let data = std::fs::read(&cp_path).unwrap();
    std::fs::write(&cp_path, &data[..interval as usize]).unwrap();
    let report = verify(&dir, None).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::BadCheckpoint
                && p.detail.contains("checkpoint file does not")),
        "{report}"
    );
    std::fs::remove_file(&cp_path).unwrap();
    let report = verify(&dir, None).unwrap();
    assert!(has_kind(&report, ProblemKind::BadCheckpoint), "{report}");
}
