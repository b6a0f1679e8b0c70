//! The producer side of a shard's recorder: sessions queue records through
//! [`ShardRecorder`] (sequence assignment, backpressure, durability waits,
//! health); the writer thread on the other end lives in `writer.rs`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use async_channel::{Sender, TrySendError};

use crate::error::RecorderError;
use crate::format::MAX_RECORD_BODY;
use crate::record::Record;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked; the data is plain.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
}

pub(crate) struct Shared {
    pub(crate) shard: u32,
    pub(crate) capacity: usize,
    /// Held while a record is assigned its sequence and queued, so queue
    /// order is sequence order even with producers on several threads.
    pub(crate) next_seq: Mutex<u64>,
    pub(crate) tx: Sender<(u64, Record)>,
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

    pub(crate) fn mark_durable(&self, next: u64) {
        self.durable_next.store(next, Ordering::Release);
        let mut waiters = lock(&self.durable_waiters);
        waiters.retain(|(seq, w)| {
            if *seq < next {
                w.wake_by_ref();
                false
            } else {
                true
            }
        });
    }

    pub(crate) fn wake_space_waiters(&self) {
        if self.space_wanted.swap(false, Ordering::SeqCst) {
            for w in lock(&self.space_waiters).drain(..) {
                w.wake();
            }
        }
    }

    pub(crate) fn fail(&self, err: &RecorderError) {
        tracing::error!(shard = self.shard, error = %err, "session recorder failed; new sessions are refused");
        *lock(&self.failure) = Some(err.to_string());
        self.failed.store(true, Ordering::SeqCst);
        self.tx.close();
        for (_, w) in lock(&self.durable_waiters).drain(..) {
            w.wake();
        }
        self.space_wanted.store(true, Ordering::SeqCst);
        self.wake_space_waiters();
    }
}

enum Enqueue {
    Queued(u64),
    Full(Record),
    Refused(RecorderError),
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

    /// False once a write or fsync failed; the engine then refuses sessions.
    pub fn is_healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::SeqCst)
    }

    pub fn health(&self) -> RecorderHealth {
        let s = &self.shared;
        RecorderHealth {
            shard: s.shard,
            healthy: self.is_healthy(),
            error: lock(&s.failure).clone(),
            next_seq: *lock(&s.next_seq),
            durable_seq: s.durable_next.load(Ordering::Acquire),
            queue_len: s.tx.len(),
            queue_capacity: s.capacity,
            blocks_written: s.blocks_written.load(Ordering::Relaxed),
            raw_bytes: s.raw_bytes.load(Ordering::Relaxed),
            disk_bytes: s.disk_bytes.load(Ordering::Relaxed),
            segments_sealed: s.segments_sealed.load(Ordering::Relaxed),
        }
    }

    fn enqueue(&self, record: Record) -> Enqueue {
        let s = &self.shared;
        if s.failed.load(Ordering::SeqCst) {
            return Enqueue::Refused(s.failed_error());
        }
        let len = record.data_len();
        if len > MAX_RECORD_BODY {
            return Enqueue::Refused(RecorderError::RecordTooLarge {
                len,
                max: MAX_RECORD_BODY,
            });
        }
        let mut next = lock(&s.next_seq);
        let seq = *next;
        match s.tx.try_send((seq, record)) {
            Ok(()) => {
                *next += 1;
                Enqueue::Queued(seq)
            }
            Err(TrySendError::Full((_, record))) => Enqueue::Full(record),
            Err(TrySendError::Closed(_)) if s.failed.load(Ordering::SeqCst) => {
                Enqueue::Refused(s.failed_error())
            }
            Err(TrySendError::Closed(_)) => {
                Enqueue::Refused(RecorderError::Closed { shard: s.shard })
            }
        }
    }

    /// Queues `record` without waiting; returns its sequence number, or
    /// `QueueFull` when the writer is behind.
    pub fn try_record(&self, record: Record) -> Result<u64, RecorderError> {
        match self.enqueue(record) {
            Enqueue::Queued(seq) => Ok(seq),
            Enqueue::Full(_) => Err(RecorderError::QueueFull {
                shard: self.shared.shard,
                capacity: self.shared.capacity,
            }),
            Enqueue::Refused(e) => Err(e),
        }
    }

    /// Queues `record`, waiting while the queue is full (backpressure: the
    /// caller slows down, nothing is dropped). Returns its sequence number.
    pub async fn record(&self, record: Record) -> Result<u64, RecorderError> {
        let mut pending = Some(record);
        poll_fn(|cx| {
            let Some(record) = pending.take() else {
                return Poll::Ready(Err(RecorderError::Closed {
                    shard: self.shared.shard,
                }));
            };
            let record = match self.enqueue(record) {
                Enqueue::Queued(seq) => return Poll::Ready(Ok(seq)),
                Enqueue::Refused(e) => return Poll::Ready(Err(e)),
                Enqueue::Full(record) => record,
            };
            // Register before retrying so a slot freed in between wakes us.
            lock(&self.shared.space_waiters).push(cx.waker().clone());
            self.shared.space_wanted.store(true, Ordering::SeqCst);
            match self.enqueue(record) {
                Enqueue::Queued(seq) => Poll::Ready(Ok(seq)),
                Enqueue::Refused(e) => Poll::Ready(Err(e)),
                Enqueue::Full(record) => {
                    pending = Some(record);
                    Poll::Pending
                }
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
