//! A channel direction's bytes: counted, and recorded up to the channel's
//! cap (within it, forwarded only once recorded).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Event, Stream};

/// Records a direction's bytes up to its cap.
pub(super) struct Meter {
    events: mpsc::Sender<Event>,
    channel: u32,
    stream: Stream,
    /// Shared so a pty request can raise it; this meter is its only other
    /// writer.
    pub(super) left: Arc<AtomicUsize>,
    /// Every byte reported, recorded or not.
    pub(super) moved: Arc<AtomicU64>,
    /// The cap was reached and noted.
    capped: bool,
}

impl Meter {
    pub(super) fn new(
        events: &mpsc::Sender<Event>,
        channel: u32,
        stream: Stream,
        cap: usize,
    ) -> Meter {
        Meter {
            events: events.clone(),
            channel,
            stream,
            left: Arc::new(AtomicUsize::new(cap)),
            moved: Arc::new(AtomicU64::new(0)),
            capped: false,
        }
    }

    /// Report `data`; within the cap it waits until recorded. `false`: the
    /// session is over (recorder failed, relay gone).
    pub(super) async fn record(&mut self, data: &Bytes) -> bool {
        self.record_as(data, data.len()).await
    }

    /// Bytes counted, never recorded, and no cap note (an agent channel).
    pub(super) fn counting_only(mut self) -> Meter {
        self.left.store(0, Ordering::Relaxed);
        self.capped = true;
        self
    }

    /// `len` bytes moved, recorded as `data` (the same bytes with a secret
    /// blanked, an X11 cookie).
    pub(super) async fn record_as(&mut self, data: &Bytes, len: usize) -> bool {
        self.moved.fetch_add(len as u64, Ordering::Relaxed);
        let left = self.left.load(Ordering::Relaxed);
        let keep = left.min(data.len());
        self.left.store(left - keep, Ordering::Relaxed);
        if keep < data.len() && !self.capped {
            // Said once, so a replay shows where the recording stops.
            self.capped = true;
            let what = format!(
                "{} recording cap reached: the rest of this stream is forwarded unrecorded",
                self.stream.name()
            );
            let note = Event::Note {
                channel: self.channel,
                what,
                allowed: true,
            };
            if self.events.send(note).await.is_err() {
                return false;
            }
        }
        let (ack, recorded) = if keep > 0 {
            let (tx, rx) = oneshot::channel();
            (Some((tx, rx)), data.slice(..keep))
        } else {
            (None, Bytes::new())
        };
        let (tx, rx) = match ack {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let ev = Event::Data {
            channel: self.channel,
            stream: self.stream,
            recorded,
            len,
            ack: tx,
        };
        if self.events.send(ev).await.is_err() {
            return false;
        }
        match rx {
            Some(rx) => rx.await.unwrap_or(false),
            None => true,
        }
    }
}
