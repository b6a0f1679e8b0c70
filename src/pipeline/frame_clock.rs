//! The frame clock: when the client message now in progress started to
//! arrive. The protocol marks progress as messages complete; the pipeline's
//! watchdog cuts a session whose message does not complete in time
//! (`[limits] frame_timeout`), so a trickle of bytes is not progress.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// When the client message now in progress started to arrive (`None`
/// between messages). A message that does not complete within the frame
/// timeout ends the session: a trickle of bytes is not progress.
#[derive(Debug, Default)]
pub struct FrameClock {
    since: Cell<Option<Instant>>,
}

impl FrameClock {
    /// A message completed: whatever is buffered now starts a new one. Also
    /// called before waits that are not the client's (a reviewer's answer).
    pub fn progress(&self) {
        self.since.set(None);
    }

    /// After a read has been handled and forwarded: `partial` when part of
    /// a message is buffered or a message is passing. The clock starts at
    /// the first read that leaves a message unfinished and runs until one
    /// completes.
    pub fn mark(&self, partial: bool) {
        match (partial, self.since.get()) {
            (true, None) => self.since.set(Some(Instant::now())),
            (false, Some(_)) => self.since.set(None),
            _ => {}
        }
    }

    /// Completes when one message has been in progress for `limit`.
    pub async fn expired(&self, limit: Duration) {
        loop {
            let wait = match self.since.get() {
                Some(t) => match limit.checked_sub(t.elapsed()) {
                    None => return,
                    Some(left) if left.is_zero() => return,
                    Some(left) => left,
                },
                // Nothing in progress: look again within one period, so a
                // message that starts now is cut at most twice `limit` later.
                None => limit,
            };
            compio::time::sleep(wait).await;
        }
    }
}
