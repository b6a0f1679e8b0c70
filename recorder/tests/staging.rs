//! The staging path between sessions and the writer: records staged by the
//! session's thread become blocks of about `block_size` (one per record with
//! `always`), forwarded bytes recorded through `record_data` read back like
//! any record, and the byte bound slows producers without dropping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tollgate_recorder::format::{BLOCK_HEADER_LEN, BlockHeader, SEAL_MAGIC, SEGMENT_HEADER_LEN};
use tollgate_recorder::fs::{RealFs, SimFs};
use tollgate_recorder::{
    DataDirection, Durability, Record, RecordBody, Recorder, RecorderError, list_segments,
};

/// (record count, raw length) of every block of shard 0, in order.
fn block_shapes(dir: &Path) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let shard_dir = dir.join("shard-0");
    for (_, seg) in list_segments(&RealFs, &shard_dir).unwrap() {
        let bytes = std::fs::read(&seg).unwrap();
        let mut at = SEGMENT_HEADER_LEN;
        while at < bytes.len() && bytes[at..at + 4] != SEAL_MAGIC {
            let h = BlockHeader::decode(&bytes[at..]).unwrap();
            out.push((h.count, h.raw_len));
            at += BLOCK_HEADER_LEN + h.compressed_len as usize;
        }
    }
    out
}

#[test]
fn staged_records_become_blocks_of_about_block_size() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.block_size = 4096;
    // Only size (and shutdown) close blocks here.
    cfg.block_max_delay = Duration::from_secs(60);
    let rec = Recorder::open(&cfg, 1).unwrap();
    let shard = rec.shard(0).unwrap();
    let mut sent = Vec::new();
    for i in 0..3000u64 {
        let payload = format!("{i:>6} {}", "q".repeat((i % 150) as usize));
        let dir = if i % 2 == 0 {
            DataDirection::ClientToTarget
        } else {
            DataDirection::TargetToClient
        };
        let seq = block_on(shard.record_data(9, dir, 1000 + i, payload.as_bytes())).unwrap();
        assert_eq!(seq, i);
        sent.push(if i % 2 == 0 {
            client(9, 1000 + i, payload.as_bytes())
        } else {
            target(9, 1000 + i, payload.as_bytes())
        });
    }
    rec.shutdown().unwrap();

    let got: Vec<Record> = read_all(Arc::new(RealFs), tmp.path())
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(got, sent);
    let shapes = block_shapes(tmp.path());
    assert_eq!(shapes.iter().map(|s| s.0).sum::<u32>(), 3000);
    assert!(shapes.len() > 20, "{} blocks", shapes.len());
    // No runt blocks (all but the shutdown's last reach half a block) and
    // none far beyond the target: target + half + one record at most.
    let (last, full) = shapes.split_last().unwrap();
    for (count, raw) in full {
        assert!(
            (2048..=4096 + 2048 + 200).contains(raw),
            "block of {count} records, {raw} bytes"
        );
    }
    assert!(last.1 <= 4096 + 2048 + 200);
}

#[test]
fn always_durability_writes_one_block_per_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.durability = Durability::Always;
    let rec = Recorder::open(&cfg, 1).unwrap();
    let shard = rec.shard(0).unwrap();
    let mut last = 0;
    block_on(shard.record(start(3, 1, "svc", "db"))).unwrap();
    for i in 0..40u64 {
        last = block_on(shard.record_data(
            3,
            DataDirection::ClientToTarget,
            2 + i,
            format!("select {i}").as_bytes(),
        ))
        .unwrap();
    }
    // Durable as soon as it is acknowledged, without waiting for a deadline.
    block_on(shard.wait_durable(last)).unwrap();
    rec.shutdown().unwrap();
    let shapes = block_shapes(tmp.path());
    assert_eq!(shapes.len(), 41);
    assert!(shapes.iter().all(|(count, _)| *count == 1));
}

#[test]
fn a_lone_record_waits_no_longer_than_the_block_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.block_max_delay = Duration::from_millis(20);
    let rec = Recorder::open(&cfg, 1).unwrap();
    let shard = rec.shard(0).unwrap();
    // The writer is idle (parked for long); the first staged record must
    // wake it so the block deadline, not the idle sleep, decides.
    wait_until("the writer parked idle", || shard.health().writer_idle);
    let seq = block_on(shard.record_data(1, DataDirection::ClientToTarget, 1, b"x")).unwrap();
    wait_until("the lone record is durable", || {
        shard.health().durable_seq > seq
    });
    let health = shard.health();
    assert_eq!((health.blocks_written, health.queue_len), (1, 0));
    rec.shutdown().unwrap();
}

#[test]
fn the_byte_bound_slows_producers_and_drops_nothing() {
    let fs = SimFs::new();
    let mut cfg = config("/rec".as_ref());
    cfg.durability = Durability::Always;
    cfg.block_size = 4096;
    cfg.queue_bytes = 4096;
    cfg.queue_capacity = 1000;
    let rec = Recorder::open_with_fs(&cfg, 1, Arc::new(fs.clone())).unwrap();
    let shard = rec.shard(0).unwrap();
    fs.hold_writes();
    let kib = vec![b'k'; 1000];
    shard.try_record(client(1, 0, &kib)).unwrap();
    wait_until("writer blocked on the disk", || fs.writers_waiting() == 1);
    // Four 1 KiB records fit in 4 KiB of staging; the fifth would not.
    for i in 1..=4 {
        shard.try_record(client(1, i, &kib)).unwrap();
    }
    assert!(matches!(
        shard.try_record(client(1, 5, &kib)),
        Err(RecorderError::QueueFull { .. })
    ));
    fs.release_writes();
    let seq = block_on(shard.record(client(1, 5, &kib))).unwrap();
    assert_eq!(seq, 5);
    // A record larger than the whole bound still goes through, alone.
    let big = vec![b'b'; 10_000];
    let seq = block_on(shard.record(target(1, 6, &big))).unwrap();
    block_on(shard.wait_durable(seq)).unwrap();
    rec.shutdown().unwrap();
    let got: Vec<Record> = read_all(Arc::new(fs), "/rec".as_ref())
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(got.len(), 7);
    assert!(matches!(&got[6].body, RecordBody::TargetData(b) if b.len() == 10_000));
}

#[test]
fn queue_bytes_below_block_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.queue_bytes = cfg.block_size - 1;
    let err = Recorder::open(&cfg, 1).unwrap_err();
    assert!(err.to_string().contains("queue_bytes"), "{err}");
}

#[test]
fn a_full_queue_wakes_the_writer_before_any_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    // Neither the deadline nor the staged bytes would wake the writer: only
    // the record-count bound can.
    cfg.block_max_delay = Duration::from_secs(3600);
    cfg.queue_capacity = 4;
    let rec = Recorder::open(&cfg, 1).unwrap();
    let shard = rec.shard(0).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (shard, done) = (shard.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 0..50u64 {
                block_on(shard.record(client(1, i, b"tiny"))).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    wait_until("50 records through a 4-record queue", || {
        done.load(std::sync::atomic::Ordering::SeqCst)
    });
    producer.join().unwrap();
    assert!(shard.health().blocks_written >= 10);
    rec.shutdown().unwrap();
    assert_eq!(read_all(Arc::new(RealFs), tmp.path()).len(), 50);
}
