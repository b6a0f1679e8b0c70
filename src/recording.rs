//! Session recording glue: what a session hands its shard's recorder. Every
//! byte forwarded is recorded *before* it is forwarded, and a recorder that
//! fails ends the session (fail closed: no recording, no access). A full
//! queue slows the session (the `record` future waits), it never drops.

use std::time::Instant;

use tollgate_recorder::{
    CommandEvent, DataDirection, Record, RecordBody, RecorderError, SessionEnd, SessionStart,
    ShardRecorder, now_ns,
};

/// The most bytes one data record carries (well under the recorder's cap).
const DATA_RECORD_MAX: usize = 4 << 20;

/// A session's handle on its shard's recorder (`None`: recording disabled).
pub struct SessionRecording {
    rec: Option<ShardRecorder>,
    session: u64,
    /// The session's clock: wall time at its start, advanced by the monotonic
    /// clock, so a relay that already read the time for its idle timer does
    /// not read it again per record, and a wall-clock step mid-session cannot
    /// reorder its records.
    base: (Instant, u64),
}

impl SessionRecording {
    /// `session` is the session id's value (the recording's key).
    pub fn new(rec: Option<ShardRecorder>, session: u64) -> SessionRecording {
        SessionRecording {
            rec,
            session,
            base: (Instant::now(), now_ns()),
        }
    }

    /// The record timestamp (Unix nanoseconds) of the instant `at`.
    pub fn stamp(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.base.0).as_nanos();
        self.base
            .1
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    pub fn enabled(&self) -> bool {
        self.rec.is_some()
    }

    /// The ticket for record `seq`: one to wait on in the strict durability
    /// mode, a no-op otherwise.
    fn ticket(&self, seq: u64) -> Durable<'_> {
        Durable {
            wait: self
                .rec
                .as_ref()
                .filter(|r| r.waits_before_forward())
                .map(|r| (r, seq)),
        }
    }

    async fn put(&self, body: RecordBody) -> Result<(), RecorderError> {
        match &self.rec {
            None => Ok(()),
            Some(r) => r
                .record(Record {
                    session: self.session,
                    timestamp_ns: self.stamp(Instant::now()),
                    body,
                })
                .await
                .map(|_| ()),
        }
    }

    pub async fn start(&self, start: SessionStart) -> Result<(), RecorderError> {
        self.put(RecordBody::SessionStart(start)).await
    }

    /// Bytes read at `at` and about to be forwarded to the target, copied
    /// into the shard's recording buffer (the caller keeps its own buffer).
    /// The bytes may be forwarded once the returned ticket resolves.
    pub async fn client_data(
        &self,
        at: Instant,
        data: &[u8],
    ) -> Result<Durable<'_>, RecorderError> {
        self.data(DataDirection::ClientToTarget, at, data).await
    }

    /// Bytes read at `at` and about to be forwarded to the client, after
    /// masking. The bytes may be forwarded once the returned ticket resolves.
    pub async fn target_data(
        &self,
        at: Instant,
        data: &[u8],
    ) -> Result<Durable<'_>, RecorderError> {
        self.data(DataDirection::TargetToClient, at, data).await
    }

    /// As [`SessionRecording::target_data`], waiting on the ticket too.
    pub async fn target_data_durable(&self, at: Instant, data: &[u8]) -> Result<(), RecorderError> {
        self.target_data(at, data).await?.forwardable().await
    }

    async fn data(
        &self,
        direction: DataDirection,
        at: Instant,
        data: &[u8],
    ) -> Result<Durable<'_>, RecorderError> {
        let Some(r) = &self.rec else {
            return Ok(Durable::NONE);
        };
        // One read can carry more than a record may hold (a 64 MiB value,
        // or many frames read at once from a fast peer): record it as
        // consecutive data records, which replay as the same byte stream.
        // The last piece's sequence number covers them all.
        let stamp = self.stamp(at);
        let mut seq = None;
        for piece in data.chunks(DATA_RECORD_MAX) {
            seq = Some(r.record_data(self.session, direction, stamp, piece).await?);
        }
        Ok(seq.map_or(Durable::NONE, |seq| self.ticket(seq)))
    }

    pub async fn command(&self, ev: CommandEvent) -> Result<(), RecorderError> {
        self.put(RecordBody::Command(ev)).await
    }

    /// Record the end and wait until the whole session is durable.
    pub async fn end(&self, end: SessionEnd) -> Result<(), RecorderError> {
        let Some(r) = &self.rec else { return Ok(()) };
        let seq = r
            .record(Record {
                session: self.session,
                timestamp_ns: self.stamp(Instant::now()),
                body: RecordBody::SessionEnd(end),
            })
            .await?;
        r.wait_durable(seq).await
    }
}

/// A durability ticket: in `durability = "before_forward"` (or `always`)
/// the relay awaits it before forwarding the recorded bytes, so nothing
/// reaches a peer before its record is fsynced. Many sessions' tickets are
/// served by one fsync (the shard writer's group commit). A later ticket
/// covers every earlier record of the shard.
#[must_use = "the strict durability mode needs the ticket awaited before forwarding"]
#[derive(Clone, Copy)]
pub struct Durable<'a> {
    wait: Option<(&'a ShardRecorder, u64)>,
}

impl Durable<'_> {
    /// Nothing to wait for.
    pub const NONE: Durable<'static> = Durable { wait: None };

    /// Resolves once the record is durable (at once outside the strict
    /// mode); an error when the recorder failed meanwhile.
    pub async fn forwardable(self) -> Result<(), RecorderError> {
        match self.wait {
            None => Ok(()),
            Some((r, seq)) => r.wait_durable(seq).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps_follow_the_monotonic_clock_from_the_session_start() {
        let start = Instant::now();
        let r = SessionRecording {
            rec: None,
            session: 1,
            base: (start, 1_000_000_000),
        };
        assert_eq!(r.stamp(start), 1_000_000_000);
        assert_eq!(
            r.stamp(start + Duration::from_micros(1500)),
            1_000_000_000 + 1_500_000
        );
        // An instant before the base (a read timed just before the session
        // was set up) never goes back past the start.
        if let Some(earlier) = start.checked_sub(Duration::from_millis(1)) {
            assert_eq!(r.stamp(earlier), 1_000_000_000);
        }
    }
}
