//! The producer side of a shard's recorder: sessions stage records through
//! [`ShardRecorder`] (sequence assignment, backpressure, durability waits,
//! health); the writer thread on the other end lives in `writer.rs`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::Instant;

use crate::error::RecorderError;
use crate::format::{MAX_RECORD_BODY, RECORD_HEADER_LEN};
use crate::index::IndexEntry;
use crate::record::{Record, RecordKind, encode_data_into};
use crate::recovery::index_entry_for;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked; the data is plain.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wake sessions from the writer thread, holding no lock: a waker of a
/// session on another thread may block until that thread runs (compio
/// queues a cross-thread wake-up in a bounded queue the shard drains and
/// spins while it is full), and the shard may itself be waiting for a lock
/// of ours. Waking under `durable_waiters` froze a whole shard once more
/// than a queue's worth of sessions ended at once (issue 13).
fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// A shard's state as the engine and the admin plane see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecorderHealth {
    pub shard: u32,
    pub healthy: bool,
    /// Why the shard failed, when it did.
    pub error: Option<String>,
    /// Sequence the next record will get.
    pub next_seq: u64,
    /// Every record below this sequence is durable.
    pub durable_seq: u64,
    pub queue_len: usize,
    pub queue_capacity: usize,
    pub blocks_written: u64,
    pub raw_bytes: u64,
    pub disk_bytes: u64,
    pub segments_sealed: u64,
    /// The writer has nothing staged and waits for the first producer to wake it.
    pub writer_idle: bool,
}

/// Records waiting for the writer: already encoded, in sequence order. The
/// session's own thread encodes into it under an (almost always
/// uncontended) lock, and the writer takes the whole buffer at once, so a
/// record costs one copy and no cross-thread hand-off or wake-up of its own:
/// the writer is woken at most when a block's worth is staged or when the
/// first record of an idle period arrives.
pub(crate) struct Staging {
    pub(crate) raw: Vec<u8>,
    /// Sequence of the first staged record.
    pub(crate) first_seq: u64,
    pub(crate) count: usize,
    /// Index entries (session start / end) of staged records.
    pub(crate) index: Vec<IndexEntry>,
    /// When the oldest staged record arrived (the block deadline runs from it).
    pub(crate) since: Option<Instant>,
    /// No more records: shutting down or failed.
    pub(crate) closed: bool,
    /// The writer is parked with nothing staged and needs a wake-up to start
    /// a block's deadline.
    pub(crate) writer_idle: bool,
    /// The writer has been woken for a full block already.
    pub(crate) full_signalled: bool,
}

impl Staging {
    pub(crate) fn next_seq(&self) -> u64 {
        self.first_seq + self.count as u64
    }
}

pub(crate) struct Shared {
    pub(crate) shard: u32,
    /// Records staged before producers are slowed.
    pub(crate) capacity: usize,
    /// Bytes staged before producers are slowed (one record always fits).
    pub(crate) capacity_bytes: usize,
    /// The writer is woken once this many bytes are staged (0: every record),
    /// if the oldest record's block deadline has not woken it already.
    pub(crate) wake_at: usize,
    /// Sessions wait for their records' fsync before forwarding
    /// (`before_forward` / `always`).
    pub(crate) strict: bool,
    pub(crate) staging: Mutex<Staging>,
    pub(crate) writer: OnceLock<Thread>,
    pub(crate) durable_next: AtomicU64,
    pub(crate) failed: AtomicBool,
    pub(crate) failure: Mutex<Option<String>>,
    pub(crate) durable_waiters: Mutex<Vec<(u64, Waker)>>,
    pub(crate) space_wanted: AtomicBool,
    pub(crate) space_waiters: Mutex<Vec<Waker>>,
    pub(crate) blocks_written: AtomicU64,
    pub(crate) raw_bytes: AtomicU64,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) segments_sealed: AtomicU64,
}

impl Shared {
    pub(crate) fn failed_error(&self) -> RecorderError {
        let reason = lock(&self.failure)
            .clone()
            .unwrap_or_else(|| "unknown".into());
        RecorderError::Failed {
            shard: self.shard,
            reason,
        }
    }

    pub(crate) fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }

    /// Refuses further records and wakes the writer to drain what is staged.
    pub(crate) fn close(&self) {
        lock(&self.staging).closed = true;
        self.wake_writer();
    }

    pub(crate) fn mark_durable(&self, next: u64) {
        self.durable_next.store(next, Ordering::Release);
        let due: Vec<Waker> = {
            let mut waiters = lock(&self.durable_waiters);
            let (due, rest) = std::mem::take(&mut *waiters)
                .into_iter()
                .partition(|(seq, _)| *seq < next);
            *waiters = rest;
            due.into_iter().map(|(_, w)| w).collect()
        };
        wake_all(due);
    }

    pub(crate) fn wake_space_waiters(&self) {
        if self.space_wanted.swap(false, Ordering::SeqCst) {
            let waiters = std::mem::take(&mut *lock(&self.space_waiters));
            wake_all(waiters);
        }
    }

    pub(crate) fn fail(&self, err: &RecorderError) {
        tracing::error!(shard = self.shard, error = %err, "session recorder failed; new sessions are refused");
        *lock(&self.failure) = Some(err.to_string());
        self.failed.store(true, Ordering::SeqCst);
        {
            let mut st = lock(&self.staging);
            st.closed = true;
            // Nothing staged will be written now; free it.
            st.raw = Vec::new();
            st.index.clear();
        }
        let waiters = std::mem::take(&mut *lock(&self.durable_waiters));
        wake_all(waiters.into_iter().map(|(_, w)| w));
        self.space_wanted.store(true, Ordering::SeqCst);
        self.wake_space_waiters();
    }

    /// Stages a record of the writer's own (a checkpoint) behind what is
    /// staged, whatever the queue bounds: the writer cannot wait on itself.
    pub(crate) fn stage_own(&self, record: &Record) -> Result<u64, RecorderError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(self.failed_error());
        }
        let mut st = lock(&self.staging);
        let seq = st.next_seq();
        record.encode_into(&mut st.raw)?;
        st.count += 1;
        if st.count == 1 {
            st.since = Some(Instant::now());
        }
        Ok(seq)
    }

    fn enqueue(&self, item: Item<'_>) -> Enqueue {
        if self.failed.load(Ordering::SeqCst) {
            return Enqueue::Refused(self.failed_error());
        }
        let len = item.data_len();
        if len > MAX_RECORD_BODY {
            return Enqueue::Refused(RecorderError::RecordTooLarge {
                len,
                max: MAX_RECORD_BODY,
            });
        }
        let mut st = lock(&self.staging);
        if st.closed {
            drop(st);
            return Enqueue::Refused(if self.failed.load(Ordering::SeqCst) {
                self.failed_error()
            } else {
                RecorderError::Closed { shard: self.shard }
            });
        }
        if st.count > 0
            && (st.count >= self.capacity
                || st.raw.len() + RECORD_HEADER_LEN + len > self.capacity_bytes)
        {
            // Whatever the thresholds, a full queue gets the writer going.
            let wake = !std::mem::replace(&mut st.full_signalled, true);
            drop(st);
            if wake {
                self.wake_writer();
            }
            return Enqueue::Full;
        }
        let seq = st.next_seq();
        let encoded = match item {
            Item::Record(r) => {
                let e = r.encode_into(&mut st.raw);
                if e.is_ok()
                    && let Some(entry) = index_entry_for(seq, 0, r)
                {
                    st.index.push(entry);
                }
                e
            }
            Item::Data {
                kind,
                session,
                timestamp_ns,
                data,
            } => encode_data_into(&mut st.raw, kind, session, timestamp_ns, data),
        };
        if let Err(e) = encoded {
            return Enqueue::Refused(RecorderError::Format(e));
        }
        st.count += 1;
        let mut wake = false;
        if st.count == 1 {
            st.since = Some(Instant::now());
            wake = std::mem::take(&mut st.writer_idle);
        }
        if st.raw.len() >= self.wake_at && !st.full_signalled {
            st.full_signalled = true;
            wake = true;
        }
        drop(st);
        if wake {
            self.wake_writer();
        }
        Enqueue::Queued(seq)
    }
}

#[derive(Clone, Copy)]
enum Item<'a> {
    Record(&'a Record),
    Data {
        kind: RecordKind,
        session: u64,
        timestamp_ns: u64,
        data: &'a [u8],
    },
}

impl Item<'_> {
    fn data_len(&self) -> usize {
        match self {
            Item::Record(r) => r.data_len(),
            Item::Data { data, .. } => data.len(),
        }
    }
}

enum Enqueue {
    Queued(u64),
    Full,
    Refused(RecorderError),
}

/// Which way forwarded bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirection {
    /// Client → target (`ClientData`).
    ClientToTarget,
    /// Target → client (`TargetData`).
    TargetToClient,
}

/// The producer side of one shard's recorder: cheap to clone, usable from
/// any async runtime (it only needs a `Waker`).
#[derive(Clone)]
pub struct ShardRecorder {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ShardRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRecorder")
            .field("shard", &self.shared.shard)
            .finish()
    }
}

impl ShardRecorder {
    pub fn shard(&self) -> u32 {
        self.shared.shard
    }

    /// True when the durability mode wants each forwarded frame's record
    /// durable before the frame is forwarded (`before_forward`, `always`).
    pub fn waits_before_forward(&self) -> bool {
        self.shared.strict
    }

    /// False once a write or fsync failed; the engine then refuses sessions.
    pub fn is_healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::SeqCst)
    }

    pub fn health(&self) -> RecorderHealth {
        let s = &self.shared;
        let (next_seq, queue_len, writer_idle) = {
            let st = lock(&s.staging);
            (st.next_seq(), st.count, st.writer_idle)
        };
        RecorderHealth {
            shard: s.shard,
            healthy: self.is_healthy(),
            error: lock(&s.failure).clone(),
            next_seq,
            durable_seq: s.durable_next.load(Ordering::Acquire),
            queue_len,
            queue_capacity: s.capacity,
            blocks_written: s.blocks_written.load(Ordering::Relaxed),
            raw_bytes: s.raw_bytes.load(Ordering::Relaxed),
            disk_bytes: s.disk_bytes.load(Ordering::Relaxed),
            segments_sealed: s.segments_sealed.load(Ordering::Relaxed),
            writer_idle,
        }
    }

    /// Queues `record` without waiting; returns its sequence number, or
    /// `QueueFull` when the writer is behind.
    pub fn try_record(&self, record: Record) -> Result<u64, RecorderError> {
        match self.shared.enqueue(Item::Record(&record)) {
            Enqueue::Queued(seq) => Ok(seq),
            Enqueue::Full => Err(RecorderError::QueueFull {
                shard: self.shared.shard,
                capacity: self.shared.capacity,
            }),
            Enqueue::Refused(e) => Err(e),
        }
    }

    /// Queues `record`, waiting while the queue is full (backpressure: the
    /// caller slows down, nothing is dropped). Returns its sequence number.
    pub async fn record(&self, record: Record) -> Result<u64, RecorderError> {
        self.put(Item::Record(&record)).await
    }

    /// Records forwarded bytes, copied straight into the shard's staging
    /// buffer (no allocation, no `Bytes` kept alive): the relays' hot path.
    /// Waits like [`ShardRecorder::record`] when the queue is full.
    pub async fn record_data(
        &self,
        session: u64,
        direction: DataDirection,
        timestamp_ns: u64,
        data: &[u8],
    ) -> Result<u64, RecorderError> {
        let kind = match direction {
            DataDirection::ClientToTarget => RecordKind::ClientData,
            DataDirection::TargetToClient => RecordKind::TargetData,
        };
        self.put(Item::Data {
            kind,
            session,
            timestamp_ns,
            data,
        })
        .await
    }

    async fn put(&self, item: Item<'_>) -> Result<u64, RecorderError> {
        let shared = &self.shared;
        // The fast path: no future state, no waker clone.
        match shared.enqueue(item) {
            Enqueue::Queued(seq) => return Ok(seq),
            Enqueue::Refused(e) => return Err(e),
            Enqueue::Full => {}
        }
        poll_fn(|cx| {
            // Register before retrying so space freed in between wakes us.
            lock(&shared.space_waiters).push(cx.waker().clone());
            shared.space_wanted.store(true, Ordering::SeqCst);
            match shared.enqueue(item) {
                Enqueue::Queued(seq) => Poll::Ready(Ok(seq)),
                Enqueue::Refused(e) => Poll::Ready(Err(e)),
                Enqueue::Full => Poll::Pending,
            }
        })
        .await
    }

    /// Resolves once record `seq` (and every one before it) is durable.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), RecorderError> {
        let s = &self.shared;
        poll_fn(|cx| {
            let check = || {
                if s.durable_next.load(Ordering::Acquire) > seq {
                    Some(Ok(()))
                } else if s.failed.load(Ordering::SeqCst) {
                    Some(Err(s.failed_error()))
                } else {
                    None
                }
            };
            if let Some(r) = check() {
                return Poll::Ready(r);
            }
            lock(&s.durable_waiters).push((seq, cx.waker().clone()));
            check().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    fn shared() -> &'static Shared {
        Box::leak(Box::new(Shared {
            shard: 0,
            capacity: 1,
            capacity_bytes: 1 << 20,
            wake_at: 0,
            strict: false,
            staging: Mutex::new(Staging {
                raw: Vec::new(),
                first_seq: 0,
                count: 0,
                index: Vec::new(),
                since: None,
                closed: false,
                writer_idle: false,
                full_signalled: false,
            }),
            writer: OnceLock::new(),
            durable_next: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            durable_waiters: Mutex::new(Vec::new()),
            space_wanted: AtomicBool::new(false),
            space_waiters: Mutex::new(Vec::new()),
            blocks_written: AtomicU64::new(0),
            raw_bytes: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            segments_sealed: AtomicU64::new(0),
        }))
    }

    /// A session's waker that notes whether the writer still held a waiter
    /// lock when it woke it (a compio waker may then block the writer on a
    /// shard that is itself waiting for that lock).
    struct Probe {
        shared: &'static Shared,
        woken: AtomicUsize,
        under_lock: AtomicUsize,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let free = self.shared.durable_waiters.try_lock().is_ok()
                && self.shared.space_waiters.try_lock().is_ok();
            if !free {
                self.under_lock.fetch_add(1, Ordering::SeqCst);
            }
            self.woken.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe(shared: &'static Shared) -> (Arc<Probe>, Waker) {
        let p = Arc::new(Probe {
            shared,
            woken: AtomicUsize::new(0),
            under_lock: AtomicUsize::new(0),
        });
        (p.clone(), Waker::from(p))
    }

    #[test]
    fn the_writer_wakes_durability_waiters_holding_no_lock() {
        let s = shared();
        let (p, w) = probe(s);
        lock(&s.durable_waiters).extend((0..100).map(|seq| (seq, w.clone())));
        s.mark_durable(70);
        assert_eq!(p.woken.load(Ordering::SeqCst), 70);
        assert_eq!(p.under_lock.load(Ordering::SeqCst), 0);
        assert_eq!(lock(&s.durable_waiters).len(), 30, "later ones still wait");
        s.fail(&RecorderError::Closed { shard: 0 });
        assert_eq!(p.woken.load(Ordering::SeqCst), 100);
        assert_eq!(p.under_lock.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_writer_wakes_space_waiters_holding_no_lock() {
        let s = shared();
        let (p, w) = probe(s);
        lock(&s.space_waiters).extend((0..100).map(|_| w.clone()));
        s.space_wanted.store(true, Ordering::SeqCst);
        s.wake_space_waiters();
        assert_eq!(p.woken.load(Ordering::SeqCst), 100);
        assert_eq!(p.under_lock.load(Ordering::SeqCst), 0);
        assert!(lock(&s.space_waiters).is_empty());
    }
}
