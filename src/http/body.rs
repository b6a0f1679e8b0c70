//! Message bodies relayed as they arrive (never held whole): exactly
//! `Content-Length` bytes, chunked re-encoded chunk by chunk, or up to the
//! upstream's close. The first bytes of each body, up to the target's cap,
//! go to the recording.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkEvent, ChunkedDecoder, Limits, encode_chunk, encode_last_chunk,
};

use super::io::{Meter, Peer, Side};
use crate::pipeline::EndReason;
use crate::recording::SessionRecording;

/// Where a body's first bytes are recorded, and how many more may be; a
/// body longer than that gets its whole length and SHA-256 recorded after
/// it ([`super::wsrec::body_digest`]).
pub(crate) struct BodyRecord<'a> {
    recording: &'a SessionRecording,
    left: usize,
    /// Body bytes seen so far (kept or not).
    seen: u64,
    /// Over every byte seen; `None` when not recording, or when the body's
    /// length says it will be kept whole.
    hash: Option<ring::digest::Context>,
}

impl<'a> BodyRecord<'a> {
    /// Keep up to `cap` bytes of one body framed as `framing`.
    pub(crate) fn new(
        recording: &'a SessionRecording,
        cap: usize,
        framing: BodyFraming,
    ) -> BodyRecord<'a> {
        let kept_whole = matches!(framing, BodyFraming::Length(n) if n <= cap as u64);
        let hash = (recording.enabled() && !kept_whole)
            .then(|| ring::digest::Context::new(&ring::digest::SHA256));
        BodyRecord {
            recording,
            left: cap,
            seen: 0,
            hash,
        }
    }

    pub(crate) async fn note(&mut self, from: Peer, data: &[u8]) -> Result<(), EndReason> {
        if !self.recording.enabled() {
            return Ok(());
        }
        if let Some(hash) = self.hash.as_mut() {
            hash.update(data);
        }
        self.seen += data.len() as u64;
        if self.left == 0 || data.is_empty() {
            return Ok(());
        }
        let part = &data[..data.len().min(self.left)];
        self.left -= part.len();
        self.put(from, &super::wsrec::body(part)).await
    }

    /// The body ended: a body cut for the recording gets its length and
    /// digest recorded. Later calls do nothing.
    pub(crate) async fn finish(&mut self, from: Peer) -> Result<(), EndReason> {
        let Some(hash) = self.hash.take() else {
            return Ok(());
        };
        if self.left > 0 {
            // Kept whole: its bytes are in the recording.
            return Ok(());
        }
        let digest = hash.finish();
        self.put(from, &super::wsrec::body_digest(self.seen, digest.as_ref()))
            .await
    }

    async fn put(&self, from: Peer, record: &[u8]) -> Result<(), EndReason> {
        let at = Instant::now();
        let r = match from {
            Peer::Client => self.recording.client_data(at, record).await,
            Peer::Upstream => self.recording.target_data(at, record).await,
        };
        r.map_err(|e| EndReason::RecorderFailed(e.to_string()))?
            .forwardable()
            .await
            .map_err(|e| EndReason::RecorderFailed(e.to_string()))
    }
}

/// Relay one body from `from` to `to` as `framing` delimits it. A body cut
/// for the recording has its digest recorded before its last bytes (or the
/// last chunk) are sent; a body delimited by the upstream's close has no
/// last bytes to hold, so its digest follows them.
pub(crate) async fn relay(
    from: &mut Side,
    meter: Meter<'_>,
    to: &mut Side,
    framing: BodyFraming,
    rec: &mut BodyRecord<'_>,
) -> Result<(), EndReason> {
    let peer = from.peer;
    relay_framed(from, meter, to, framing, rec).await?;
    rec.finish(peer).await
}

async fn relay_framed(
    from: &mut Side,
    meter: Meter<'_>,
    to: &mut Side,
    framing: BodyFraming,
    rec: &mut BodyRecord<'_>,
) -> Result<(), EndReason> {
    match framing {
        BodyFraming::None | BodyFraming::Tunnel => Ok(()),
        BodyFraming::Length(n) => relay_length(from, meter, to, n, rec).await,
        BodyFraming::Chunked => relay_chunked(from, meter, to, rec).await,
        BodyFraming::CloseDelimited => loop {
            if !from.buf.is_empty() {
                let data = from.buf.split().freeze();
                rec.note(from.peer, &data).await?;
                to.write(data).await?;
            }
            if from.fill(meter).await? == 0 {
                return Ok(());
            }
        },
    }
}

async fn relay_length(
    from: &mut Side,
    meter: Meter<'_>,
    to: &mut Side,
    mut left: u64,
    rec: &mut BodyRecord<'_>,
) -> Result<(), EndReason> {
    while left > 0 {
        if from.buf.is_empty() {
            from.fill_some(meter).await?;
        }
        let take = (from.buf.len() as u64).min(left) as usize;
        let data: Bytes = from.buf.split_to(take).freeze();
        left -= take as u64;
        rec.note(from.peer, &data).await?;
        if left == 0 {
            // The digest is recorded before the body's last bytes go out,
            // so a peer never holds a whole body the recording lacks.
            rec.finish(from.peer).await?;
        }
        to.write(data).await?;
    }
    Ok(())
}

async fn relay_chunked(
    from: &mut Side,
    meter: Meter<'_>,
    to: &mut Side,
    rec: &mut BodyRecord<'_>,
) -> Result<(), EndReason> {
    let decoder = ChunkedDecoder::new(&Limits::default());
    relay_chunks(from, meter, to, decoder, rec).await
}

/// Relay the rest of a chunked body `decoder` has begun reading.
pub(crate) async fn relay_chunks(
    from: &mut Side,
    meter: Meter<'_>,
    to: &mut Side,
    mut decoder: ChunkedDecoder,
    rec: &mut BodyRecord<'_>,
) -> Result<(), EndReason> {
    let mut out = BytesMut::new();
    loop {
        match decoder
            .decode(&mut from.buf)
            .map_err(|e| from.peer.protocol(e))?
        {
            Some(ChunkEvent::Data(d)) => {
                rec.note(from.peer, &d).await?;
                encode_chunk(&d, &mut out);
            }
            Some(ChunkEvent::End(trailers)) => {
                rec.finish(from.peer).await?;
                let t = (!trailers.is_empty()).then_some(&trailers);
                encode_last_chunk(t, &mut out);
                return to.write(out.split().freeze()).await;
            }
            None => {
                // One write per read, not per chunk: a body of many small
                // chunks costs one send for what one read brought.
                if !out.is_empty() {
                    to.write(out.split().freeze()).await?;
                }
                from.fill_some(meter).await?;
            }
        }
    }
}
