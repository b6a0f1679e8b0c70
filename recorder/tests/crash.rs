//! Crash at every byte of a block write (and of the index entry, seal and
//! next segment header that follow it): recovery keeps everything that was
//! acknowledged durable and the chain stays verifiable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::sync::Arc;

use common::*;
use tollgate_recorder::fs::SimFs;
use tollgate_recorder::{
    Durability, Record, Recorder, RecorderConfig, RecordingDir, SessionFilter,
};

fn cfg() -> RecorderConfig {
    let mut c = config("/rec".as_ref());
    c.durability = Durability::Always;
    // The record under test fills the first segment, so its write also seals
    // the segment and opens the next one.
    c.segment_max_bytes = 4096;
    c
}

fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn prefix() -> Vec<Record> {
    vec![
        start(1, 10, "svc", "db"),
        client(1, 11, &noise(3500)),
        target(1, 12, b"ok"),
    ]
}

/// Opens a recorder on `fs` and writes the acknowledged prefix.
fn write_prefix(fs: &SimFs) -> Recorder {
    let rec = Recorder::open_with_fs(&cfg(), 1, Arc::new(fs.clone())).unwrap();
    let s = rec.shard(0).unwrap();
    for r in prefix() {
        let seq = block_on(s.record(r)).unwrap();
        block_on(s.wait_durable(seq)).unwrap();
    }
    rec
}

#[test]
fn crash_at_every_byte_of_a_block_write_loses_nothing_acknowledged() {
    let dry = SimFs::new();
    let rec = write_prefix(&dry);
    let before = dry.bytes_written();
    let s = rec.shard(0).unwrap();
    let seq = block_on(s.record(end(1, 13))).unwrap();
    block_on(s.wait_durable(seq)).unwrap();
    // Shutting down waits for the index entry, seal and next header; the
    // new segment is empty, so shutdown itself writes nothing more.
    rec.shutdown().unwrap();
    let span = dry.bytes_written() - before;
    assert!(
        span > 68 + 125,
        "the write under test should include a seal and a new segment header ({span} bytes)"
    );

    let mut acked_count = 0;
    for keep_unsynced in [true, false] {
        for k in 0..span {
            let fs = SimFs::new();
            let rec = write_prefix(&fs);
            fs.tear_after(k);
            let s = rec.shard(0).unwrap();
            let seq = block_on(s.record(end(1, 13))).unwrap();
            let acked = block_on(s.wait_durable(seq)).is_ok();
            acked_count += usize::from(acked);
            drop(rec);
            assert!(fs.is_crashed(), "tear at {k} did not crash");

            let image = fs.crash_image(keep_unsynced);
            let rec =
                Recorder::open_with_fs(&cfg(), 1, Arc::new(image.clone())).unwrap_or_else(|e| {
                    panic!("recovery after a tear at byte {k} (keep_unsynced {keep_unsynced}): {e}")
                });
            let s = rec.shard(0).unwrap();
            let after = block_on(s.record(client(2, 20, b"after restart"))).unwrap();
            rec.shutdown().unwrap();

            let got: Vec<Record> = read_all(Arc::new(image.clone()), "/rec".as_ref())
                .into_iter()
                .map(|(_, _, r)| r)
                .collect();
            let mut want = prefix();
            let kept_end = got.len() == 5;
            if acked {
                assert!(kept_end, "tear at {k}: acknowledged record lost");
            }
            if kept_end {
                want.push(end(1, 13));
            }
            want.push(client(2, 20, b"after restart"));
            assert_eq!(got, want, "tear at {k} keep_unsynced {keep_unsynced}");
            assert_eq!(
                after,
                want.len() as u64 - 1,
                "sequence continues after the last kept record"
            );

            let dir = RecordingDir::with_fs(Arc::new(image), "/rec");
            let report = dir.verify(None).unwrap();
            assert!(report.is_ok(), "tear at {k}: {report}");
            let sessions = dir.list_sessions(&SessionFilter::default()).unwrap();
            assert_eq!(sessions.len(), 1);
            assert_eq!(
                sessions[0].end_ns.is_some(),
                kept_end,
                "tear at {k}: index agrees with the segments"
            );
        }
    }
    assert!(
        acked_count > 0,
        "some tear points fall after the block was durable"
    );
}

#[test]
fn write_error_mid_stream_keeps_the_acknowledged_prefix() {
    let fs = SimFs::new();
    let rec = write_prefix(&fs);
    fs.fail_next_write();
    let s = rec.shard(0).unwrap();
    let seq = block_on(s.record(end(1, 13))).unwrap();
    assert!(block_on(s.wait_durable(seq)).is_err());
    assert!(!rec.is_healthy());
    drop(rec);
    let image = fs.crash_image(false);
    let got: Vec<Record> = read_all(Arc::new(image), "/rec".as_ref())
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(got, prefix());
}
