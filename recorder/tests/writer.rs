//! Writer behaviour: round trip, several shards at once, backpressure, a full
//! disk, fsync failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};

use common::*;
use tollgate_recorder::fs::{FileSystem, RealFs, SimFs};
use tollgate_recorder::{
    CommandEvent, Durability, Record, RecordBody, Recorder, RecorderError, RecordingDir, Selection,
    SessionFilter,
};

#[test]
fn records_round_trip_through_list_export_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::open(&config(tmp.path()), 2).unwrap();
    let shard = rec.shard(1).unwrap();
    let base = 1_790_000_000_000_000_000u64;
    let binary = [0u8, 0xff, 0xfe, 7, 1, 2];
    let records = vec![
        start(7, base, "svc-billing", "pg-main"),
        client(7, base + 1_000, b"SELECT * FROM invoices;"),
        target(7, base + 2_000, &binary),
        Record {
            session: 7,
            timestamp_ns: base + 3_000,
            body: RecordBody::Command(CommandEvent {
                statement: "DROP TABLE x".into(),
                verdict: "block".into(),
                rule: Some("no-drop".into()),
                approval: None,
                shadow_verdict: None,
                shadow_rule: None,
            }),
        },
        end(7, base + 4_000_000_000),
    ];
    let mut last = 0;
    for r in &records {
        last = block_on(shard.record(r.clone())).unwrap();
    }
    assert_eq!(last, 4);
    block_on(shard.wait_durable(last)).unwrap();
    assert!(shard.health().durable_seq > last);
    rec.shutdown().unwrap();

    let all = read_all(Arc::new(RealFs), tmp.path());
    let got: Vec<Record> = all.iter().map(|(_, _, r)| r.clone()).collect();
    assert_eq!(got, records);
    assert!(all.iter().all(|(s, _, _)| *s == 1));
    assert_eq!(
        all.iter().map(|(_, q, _)| *q).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );

    let sessions = tollgate_recorder::list_sessions(tmp.path(), &SessionFilter::default()).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        (
            sessions[0].session,
            sessions[0].shard,
            sessions[0].subject.as_str()
        ),
        (7, 1, "svc-billing")
    );
    assert_eq!(sessions[0].end_ns, Some(base + 4_000_000_000));
    let none = SessionFilter {
        identity: Some("someone-else".into()),
        ..Default::default()
    };
    assert!(
        tollgate_recorder::list_sessions(tmp.path(), &none)
            .unwrap()
            .is_empty()
    );

    let mut out = Vec::new();
    let mut progress_calls = 0;
    let mut progress = |_p: tollgate_recorder::Progress| progress_calls += 1;
    let summary = tollgate_recorder::export(
        tmp.path(),
        Selection::Session(7),
        &SessionFilter::default(),
        &mut out,
        Some(&mut progress),
    )
    .unwrap();
    assert_eq!(summary.records, 5);
    assert!(progress_calls > 0);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["encoding"], "utf8");
    assert_eq!(lines[1]["data"], "SELECT * FROM invoices;");
    assert_eq!(lines[2]["encoding"], "base64");
    assert_eq!(lines[2]["data"], "AP/+BwEC");
    assert_eq!(lines[3]["verdict"], "block");
    assert_eq!(lines[0]["subject"], "svc-billing");

    let mut text = Vec::new();
    tollgate_recorder::replay(tmp.path(), 7, &mut text, false).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("svc-billing"), "{text}");
    assert!(
        text.contains(">> client") && text.contains("SELECT * FROM invoices;"),
        "{text}"
    );
    assert!(
        text.contains("<< target") && text.contains("hex 00fffe070102"),
        "{text}"
    );
    assert!(text.contains("ended: client closed"), "{text}");
}

#[test]
fn reopening_continues_sequences_and_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let rec = Recorder::open(&config(tmp.path()), 1).unwrap();
        let s = rec.shard(0).unwrap();
        let first = block_on(s.record(start(round, round * 10, "a", "t"))).unwrap();
        assert_eq!(first, round * 2);
        block_on(s.record(end(round, round * 10 + 1))).unwrap();
        rec.shutdown().unwrap();
    }
    let sessions = RecordingDir::open(tmp.path())
        .list_sessions(&SessionFilter::default())
        .unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.session).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(read_all(Arc::new(RealFs), tmp.path()).len(), 6);
}

#[test]
fn all_shards_write_at_once_from_several_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.block_size = 4096;
    cfg.segment_max_bytes = 16 << 10;
    cfg.queue_capacity = 64;
    let rec = Recorder::open(&cfg, 4).unwrap();
    let mut threads = Vec::new();
    // Two producer threads per shard, each with its own sessions.
    for t in 0..8u64 {
        let shard = rec.shard((t % 4) as u32).unwrap();
        threads.push(std::thread::spawn(move || {
            for sess in 0..5u64 {
                let id = t * 100 + sess;
                block_on(shard.record(start(id, 1, &format!("user{t}"), "db"))).unwrap();
                for i in 0..200u64 {
                    let payload =
                        format!("session {id} message {i} {}", "x".repeat((i % 50) as usize));
                    block_on(shard.record(client(id, 2 + i, payload.as_bytes()))).unwrap();
                }
                block_on(shard.record(end(id, 10_000))).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    rec.shutdown().unwrap();
    let all = read_all(Arc::new(RealFs), tmp.path());
    assert_eq!(all.len(), 8 * 5 * 202);
    for shard in 0..4u32 {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|(s, _, _)| *s == shard)
            .map(|(_, q, _)| *q)
            .collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "shard {shard} sequences"
        );
    }
    for t in 0..8u64 {
        for sess in 0..5u64 {
            let id = t * 100 + sess;
            let msgs: Vec<&Record> = all
                .iter()
                .map(|(_, _, r)| r)
                .filter(|r| r.session == id && matches!(r.body, RecordBody::ClientData(_)))
                .collect();
            assert_eq!(msgs.len(), 200);
            for (i, m) in msgs.iter().enumerate() {
                assert_eq!(m.timestamp_ns, 2 + i as u64, "session {id} order");
            }
        }
    }
    assert_eq!(
        tollgate_recorder::list_sessions(tmp.path(), &SessionFilter::default())
            .unwrap()
            .len(),
        40
    );
    let report = tollgate_recorder::verify(tmp.path(), None).unwrap();
    assert!(report.problems.is_empty(), "{report}");
    assert!(report.segments > 4, "segments rolled: {}", report.segments);
}

#[test]
fn full_queue_makes_record_wait_instead_of_dropping() {
    let fs = SimFs::new();
    let mut cfg = config("/rec".as_ref());
    cfg.queue_capacity = 2;
    cfg.durability = Durability::Always;
    let rec = Recorder::open_with_fs(&cfg, 1, Arc::new(fs.clone())).unwrap();
    let shard = rec.shard(0).unwrap();
    fs.hold_writes();
    shard.try_record(client(1, 0, b"r0")).unwrap();
    wait_until("writer blocked on the disk", || fs.writers_waiting() == 1);
    shard.try_record(client(1, 1, b"r1")).unwrap();
    shard.try_record(client(1, 2, b"r2")).unwrap();
    assert!(matches!(
        shard.try_record(client(1, 3, b"r3")),
        Err(RecorderError::QueueFull { .. })
    ));

    let flag = Arc::new(FlagWaker(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut fut = Box::pin(shard.record(client(1, 3, b"r3")));
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert!(!flag.0.load(Ordering::SeqCst));
    fs.release_writes();
    wait_until("producer woken when the queue drains", || {
        flag.0.load(Ordering::SeqCst)
    });
    assert_eq!(block_on(fut).unwrap(), 3);
    block_on(shard.wait_durable(3)).unwrap();
    rec.shutdown().unwrap();
    let bodies: Vec<Record> = read_all(Arc::new(fs), "/rec".as_ref())
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(
        bodies,
        (0..4)
            .map(|i| client(1, i, format!("r{i}").as_bytes()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn full_disk_fails_closed_and_shows_in_health() {
    let fs = SimFs::new();
    let rec = Recorder::open_with_fs(&config("/rec".as_ref()), 1, Arc::new(fs.clone())).unwrap();
    let shard = rec.shard(0).unwrap();
    let seq = block_on(shard.record(client(1, 0, b"fits"))).unwrap();
    block_on(shard.wait_durable(seq)).unwrap();
    fs.enospc_after(10);
    let seq = block_on(shard.record(client(1, 1, &[b'z'; 4000]))).unwrap();
    let err = block_on(shard.wait_durable(seq)).unwrap_err();
    assert!(matches!(err, RecorderError::Failed { .. }), "{err}");
    assert!(!shard.is_healthy());
    assert!(!rec.is_healthy());
    let health = shard.health();
    assert!(
        health.error.as_deref().unwrap().contains("os error 28"),
        "{health:?}"
    );
    assert!(matches!(
        shard.try_record(client(1, 2, b"more")),
        Err(RecorderError::Failed { .. })
    ));
    assert!(matches!(
        block_on(shard.record(client(1, 2, b"more"))),
        Err(RecorderError::Failed { .. })
    ));
    assert!(rec.shutdown().is_err());
    // What was acknowledged is still there after a restart.
    let image: Arc<dyn FileSystem> = Arc::new(fs.crash_image(false));
    let got = read_all(image, "/rec".as_ref());
    assert_eq!(got.len(), 1);
}

#[test]
fn fsync_failure_fails_closed_and_acknowledged_records_survive() {
    let fs = SimFs::new();
    let rec = Recorder::open_with_fs(&config("/rec".as_ref()), 1, Arc::new(fs.clone())).unwrap();
    let shard = rec.shard(0).unwrap();
    let acked = block_on(shard.record(start(1, 0, "u", "t"))).unwrap();
    block_on(shard.wait_durable(acked)).unwrap();
    fs.fail_next_sync();
    let lost = block_on(shard.record(client(1, 1, b"not acknowledged"))).unwrap();
    assert!(block_on(shard.wait_durable(lost)).is_err());
    assert!(!shard.is_healthy());
    drop(rec);
    let image = fs.crash_image(false);
    let rec = Recorder::open_with_fs(&config("/rec".as_ref()), 1, Arc::new(image.clone())).unwrap();
    assert!(rec.is_healthy());
    let s = rec.shard(0).unwrap();
    assert_eq!(block_on(s.record(end(1, 2))).unwrap(), 1);
    rec.shutdown().unwrap();
    let got: Vec<Record> = read_all(Arc::new(image), "/rec".as_ref())
        .into_iter()
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(got, vec![start(1, 0, "u", "t"), end(1, 2)]);
}

#[test]
fn interval_durability_acknowledges_after_the_periodic_fsync() {
    let fs = SimFs::new();
    let mut cfg = config("/rec".as_ref());
    cfg.durability = Durability::Interval(std::time::Duration::from_millis(20));
    let rec = Recorder::open_with_fs(&cfg, 1, Arc::new(fs.clone())).unwrap();
    let s = rec.shard(0).unwrap();
    let mut last = 0;
    for i in 0..50 {
        last = block_on(s.record(client(1, i, b"interval"))).unwrap();
    }
    block_on(s.wait_durable(last)).unwrap();
    // Durable means fsynced: the synced-only image holds every record.
    let image = fs.crash_image(false);
    drop(rec);
    assert_eq!(read_all(Arc::new(image), "/rec".as_ref()).len(), 50);
}

struct UpperCaser;

impl tollgate_recorder::Decoder for UpperCaser {
    fn decode(
        &mut self,
        session: u64,
        direction: tollgate_recorder::Direction,
        data: &[u8],
        fields: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let dir = if direction == tollgate_recorder::Direction::ClientToTarget {
            "c2t"
        } else {
            "t2c"
        };
        fields.insert(
            "decoded".into(),
            format!(
                "{session}:{dir}:{}",
                String::from_utf8_lossy(data).to_uppercase()
            )
            .into(),
        );
    }
}

#[test]
fn export_passes_data_records_through_the_decoder_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::open(&config(tmp.path()), 1).unwrap();
    let s = rec.shard(0).unwrap();
    block_on(s.record(start(3, 0, "u", "t"))).unwrap();
    block_on(s.record(client(3, 1, b"select 1"))).unwrap();
    block_on(s.record(target(3, 2, b"one row"))).unwrap();
    rec.shutdown().unwrap();
    let mut out = Vec::new();
    let mut decoder = UpperCaser;
    RecordingDir::open(tmp.path())
        .export(
            Selection::All,
            &SessionFilter::default(),
            &mut out,
            None,
            Some(&mut decoder),
        )
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].get("decoded").is_none());
    assert_eq!(lines[1]["decoded"], "3:c2t:SELECT 1");
    assert_eq!(lines[2]["decoded"], "3:t2c:ONE ROW");
}
