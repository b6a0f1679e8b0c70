//! Test helpers: a tiny `block_on`, record builders, and a reader that
//! collects a directory's records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use bytes::Bytes;
use tollgate_recorder::fs::FileSystem;
use tollgate_recorder::{
    Durability, Record, RecordBody, RecorderConfig, RecordingDir, Selection, SessionEnd,
    SessionFilter, SessionStart,
};

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs a future to completion on this thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    }));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A waker that only remembers it was woken.
pub struct FlagWaker(pub AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits (bounded) until `cond` holds; a condition, not a timing check.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..20_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("gave up waiting for {what}");
}

pub fn config(dir: &Path) -> RecorderConfig {
    let mut c = RecorderConfig::new(dir);
    c.durability = Durability::Batch;
    c
}

pub fn start(session: u64, ts: u64, subject: &str, target: &str) -> Record {
    Record {
        session,
        timestamp_ns: ts,
        body: RecordBody::SessionStart(SessionStart {
            subject: subject.into(),
            groups: vec!["ops".into()],
            target: target.into(),
            client_addr: Some("10.1.2.3:40000".into()),
            tls_version: Some("TLSv1.3".into()),
            ..Default::default()
        }),
    }
}

pub fn client(session: u64, ts: u64, data: &[u8]) -> Record {
    Record {
        session,
        timestamp_ns: ts,
        body: RecordBody::ClientData(Bytes::copy_from_slice(data)),
    }
}

pub fn target(session: u64, ts: u64, data: &[u8]) -> Record {
    Record {
        session,
        timestamp_ns: ts,
        body: RecordBody::TargetData(Bytes::copy_from_slice(data)),
    }
}

pub fn end(session: u64, ts: u64) -> Record {
    Record {
        session,
        timestamp_ns: ts,
        body: RecordBody::SessionEnd(SessionEnd {
            reason: "client closed".into(),
            bytes_client_to_target: 1,
            bytes_target_to_client: 2,
            duration_ns: 3,
        }),
    }
}

/// Every record of the directory as (shard, seq, record), in shard/seq order.
pub fn read_all(fs: Arc<dyn FileSystem>, dir: &Path) -> Vec<(u32, u64, Record)> {
    let mut out = Vec::new();
    let reader = RecordingDir::with_fs(fs, dir);
    reader
        .for_each_record(Selection::All, &SessionFilter::default(), None, &mut |r| {
            let raw = tollgate_recorder::record::RawRecord {
                kind: r.kind,
                session: r.session,
                timestamp_ns: r.timestamp_ns,
                body: r.body,
            };
            out.push((r.shard, r.seq, raw.to_record().unwrap()));
            Ok(())
        })
        .unwrap();
    out
}
