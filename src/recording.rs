//! Session recording glue: what a session hands its shard's recorder. Every
//! byte forwarded is recorded *before* it is forwarded, and a recorder that
//! fails ends the session (fail closed: no recording, no access). A full
//! queue slows the session (the `record` future waits), it never drops.

use tollgate_recorder::{
    CommandEvent, DataDirection, Record, RecordBody, RecorderError, SessionEnd, SessionStart,
    ShardRecorder, now_ns,
};

use crate::engine::session::SessionEntry;

/// A session's handle on its shard's recorder (`None`: recording disabled).
pub struct SessionRecording {
    rec: Option<ShardRecorder>,
    session: u64,
}

impl SessionRecording {
    pub fn new(rec: Option<ShardRecorder>, entry: &SessionEntry) -> SessionRecording {
        SessionRecording {
            rec,
            session: entry.id.0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.rec.is_some()
    }

    async fn put(&self, body: RecordBody) -> Result<(), RecorderError> {
        match &self.rec {
            None => Ok(()),
            Some(r) => r
                .record(Record {
                    session: self.session,
                    timestamp_ns: now_ns(),
                    body,
                })
                .await
                .map(|_| ()),
        }
    }

    pub async fn start(&self, start: SessionStart) -> Result<(), RecorderError> {
        self.put(RecordBody::SessionStart(start)).await
    }

    /// Bytes about to be forwarded to the target, copied into the shard's
    /// recording buffer (the caller keeps and reuses its own buffer).
    pub async fn client_data(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.data(DataDirection::ClientToTarget, data).await
    }

    /// Bytes about to be forwarded to the client, after masking.
    pub async fn target_data(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.data(DataDirection::TargetToClient, data).await
    }

    async fn data(&self, direction: DataDirection, data: &[u8]) -> Result<(), RecorderError> {
        match &self.rec {
            None => Ok(()),
            Some(r) => r
                .record_data(self.session, direction, now_ns(), data)
                .await
                .map(|_| ()),
        }
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
                timestamp_ns: now_ns(),
                body: RecordBody::SessionEnd(end),
            })
            .await?;
        r.wait_durable(seq).await
    }
}
