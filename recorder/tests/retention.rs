//! Retention by age and by size: the oldest sealed segments go, the active
//! one stays, and what remains still verifies and reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tollgate_recorder::fs::RealFs;
use tollgate_recorder::{
    Recorder, RetentionPolicy, SessionFilter, apply_retention, list_segments, now_ns, verify,
};

/// Ten sessions over several segments, one shard, cleanly shut down.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut cfg = config(&dir);
    cfg.block_size = 1024;
    cfg.segment_max_bytes = 4096;
    let rec = Recorder::open(&cfg, 1).unwrap();
    let s = rec.shard(0).unwrap();
    for sess in 0..10u64 {
        block_on(s.record(start(sess, sess * 1000, "svc", "db"))).unwrap();
        for i in 0..200u64 {
            let text = format!(
                "INSERT INTO audit VALUES ({sess}, {i}, '{}')",
                i * 2_654_435_761 % 100_000
            );
            block_on(s.record(client(sess, sess * 1000 + i + 1, text.as_bytes()))).unwrap();
        }
        block_on(s.record(end(sess, sess * 1000 + 999))).unwrap();
    }
    rec.shutdown().unwrap();
    (tmp, dir)
}

fn segment_bytes(shard_dir: &Path) -> u64 {
    list_segments(&RealFs, shard_dir)
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn retention_by_size_deletes_the_oldest_sealed_segments() {
    let (_tmp, dir) = fixture();
    let shard_dir = dir.join("shard-0");
    let before = list_segments(&RealFs, &shard_dir).unwrap();
    assert!(before.len() >= 5, "{} segments", before.len());
    let sizes: Vec<u64> = before
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .collect();
    let total = segment_bytes(&shard_dir);
    let max = total / 2;
    let policy = RetentionPolicy {
        max_age: None,
        max_bytes: Some(max),
        ..RetentionPolicy::default()
    };
    let out = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    let after = list_segments(&RealFs, &shard_dir).unwrap();
    assert!(!out.deleted.is_empty());
    assert_eq!(
        out.deleted,
        before[..out.deleted.len()]
            .iter()
            .map(|(b, _)| *b)
            .collect::<Vec<_>>(),
        "oldest first"
    );
    assert!(segment_bytes(&shard_dir) <= max);
    assert_eq!(after.last(), before.last(), "the newest segment stays");
    // Deleting one fewer would have left the shard above the limit.
    let freed_but_last = out.bytes_freed - sizes[out.deleted.len() - 1];
    assert!(total - freed_but_last > max);

    let report = verify(&dir, None).unwrap();
    assert!(report.is_ok(), "retention is not tampering: {report}");
    let sessions = tollgate_recorder::list_sessions(&dir, &SessionFilter::default()).unwrap();
    assert!(
        sessions.len() < 10 && !sessions.is_empty(),
        "{} sessions left",
        sessions.len()
    );
    assert_eq!(sessions.last().unwrap().session, 9);
    // What is left still reads, and sequences continue on reopen.
    let rec = Recorder::open(&config(&dir), 1).unwrap();
    let next = block_on(rec.shard(0).unwrap().record(start(99, 99_000, "svc", "db"))).unwrap();
    assert_eq!(next, 10 * 202);
    rec.shutdown().unwrap();
    assert!(
        read_all(Arc::new(RealFs), &dir)
            .iter()
            .any(|(_, _, r)| r.session == 99)
    );
}

#[test]
fn retention_by_age_spares_young_segments_and_the_active_one() {
    let (_tmp, dir) = fixture();
    let shard_dir = dir.join("shard-0");
    let before = list_segments(&RealFs, &shard_dir).unwrap();
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_secs(3600)),
        max_bytes: None,
        ..RetentionPolicy::default()
    };
    let none = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert!(none.deleted.is_empty(), "nothing is an hour old yet");
    let later = now_ns() + 2 * 3600 * 1_000_000_000;
    let out = apply_retention(&RealFs, &shard_dir, &policy, later, None, None, None).unwrap();
    assert_eq!(out.deleted.len(), before.len() - 1);
    let after = list_segments(&RealFs, &shard_dir).unwrap();
    assert_eq!(after, before[before.len() - 1..].to_vec());
    assert!(verify(&dir, None).unwrap().is_ok());
}

#[test]
fn the_writer_applies_retention_when_it_opens() {
    let (_tmp, dir) = fixture();
    let shard_dir = dir.join("shard-0");
    let before = list_segments(&RealFs, &shard_dir).unwrap().len();
    let mut cfg = config(&dir);
    cfg.segment_max_bytes = 4096;
    cfg.retention_max_bytes = Some(8192);
    let rec = Recorder::open(&cfg, 1).unwrap();
    rec.shutdown().unwrap();
    let after = list_segments(&RealFs, &shard_dir).unwrap().len();
    assert!(
        after < before && segment_bytes(&shard_dir) <= 8192 + 4096,
        "{before} -> {after}"
    );
    assert!(verify(&dir, None).unwrap().is_ok());
}

#[test]
fn uploaded_segments_go_only_from_the_oldest_marked_run_and_verify_still_passes() {
    let (_tmp, dir) = fixture();
    let shard_dir = dir.join("shard-0");
    let before = list_segments(&RealFs, &shard_dir).unwrap();
    assert!(before.len() >= 5, "{} segments", before.len());
    let policy = RetentionPolicy {
        delete_uploaded: true,
        ..RetentionPolicy::default()
    };
    // Nothing marked: nothing deleted.
    let none = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert!(none.deleted.is_empty());
    // Marks on segments 0, 1 and 3: 0 and 1 go; 3 waits for 2 (order kept).
    for i in [0, 1, 3] {
        std::fs::write(tollgate_recorder::uploaded_mark_path(&before[i].1), b"").unwrap();
    }
    let out = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert_eq!(out.deleted, vec![before[0].0, before[1].0]);
    assert!(!tollgate_recorder::uploaded_mark_path(&before[0].1).exists());
    assert!(tollgate_recorder::uploaded_mark_path(&before[3].1).exists());
    let after = list_segments(&RealFs, &shard_dir).unwrap();
    assert_eq!(after, before[2..].to_vec());
    // A mark on the active (last) segment never deletes it.
    std::fs::write(
        tollgate_recorder::uploaded_mark_path(&before[before.len() - 1].1),
        b"",
    )
    .unwrap();
    for (_, p) in &before[2..] {
        std::fs::write(tollgate_recorder::uploaded_mark_path(p), b"").unwrap();
    }
    apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert_eq!(
        list_segments(&RealFs, &shard_dir).unwrap(),
        before[before.len() - 1..].to_vec()
    );
    let report = verify(&dir, None).unwrap();
    assert!(
        report.is_ok(),
        "an uploaded segment's deletion is retention, not tampering: {report}"
    );
}

/// With recordings going to object storage, age and size retention wait
/// for the uploader: before, `retention_max_bytes` deleted the oldest
/// segments whether or not they had been uploaded, and the audit trail lost
/// them for good.
#[test]
fn with_uploads_on_size_and_age_retention_delete_only_uploaded_segments() {
    let (_tmp, dir) = fixture();
    let shard_dir = dir.join("shard-0");
    let before = list_segments(&RealFs, &shard_dir).unwrap();
    assert!(before.len() >= 5, "{} segments", before.len());
    let policy = RetentionPolicy {
        max_age: Some(Duration::from_nanos(1)),
        max_bytes: Some(1),
        delete_uploaded: false,
        keep_until_uploaded: true,
    };
    let none = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert!(
        none.deleted.is_empty(),
        "deleted before upload: {:?}",
        none.deleted
    );
    assert_eq!(list_segments(&RealFs, &shard_dir).unwrap(), before);
    // Segments 0 and 1 uploaded, 2 not, 3 uploaded: 0 and 1 go.
    for i in [0, 1, 3] {
        std::fs::write(tollgate_recorder::uploaded_mark_path(&before[i].1), b"").unwrap();
    }
    let out = apply_retention(&RealFs, &shard_dir, &policy, now_ns(), None, None, None).unwrap();
    assert_eq!(out.deleted, vec![before[0].0, before[1].0]);
    assert_eq!(
        list_segments(&RealFs, &shard_dir).unwrap(),
        before[2..].to_vec()
    );
    let report = verify(&dir, None).unwrap();
    assert!(report.is_ok(), "{report}");
}
