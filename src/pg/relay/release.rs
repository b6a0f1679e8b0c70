//! A pooled connection's way back (`crate::pg::pool`, session mode).
//!
//! When the caller leaves (Terminate, or EOF) with the server idle — every
//! batch answered, the last ReadyForQuery 'I', no extended-protocol message
//! since the last Sync, nothing passing in pieces — the client side does
//! not forward the Terminate: it sends the reset query (unrecorded: the
//! recording shows only the caller's traffic) and the upstream side, which
//! keeps reading, swallows the answer. Only a reset answered without error
//! and with ReadyForQuery 'I', and nothing after it, returns the connection
//! to the pool; in every other case it is closed as without a pool.
//!
//! The upstream side is never dropped in the middle of a read while the
//! connection may be reused: a cancelled read could lose bytes the server
//! sent, and the next caller would read a stream out of step.

use super::*;
use crate::pg::pool::Lease;

/// Where a pooled connection stands on its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Release {
    /// Not (yet) asked for.
    No,
    /// The reset query is sent; its answer is being read.
    Requested,
    /// The reset went through: the connection may be reused.
    Done,
}

/// How long the reset's answer may take before the connection is closed.
const RESET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// After the client side ended: if it asked for a release, let the upstream
/// side read the reset's answer to its end.
pub(super) async fn await_reset<F>(flow: &RefCell<Flow>, u2c: F)
where
    F: std::future::Future<Output = Result<(), SessionError>>,
{
    if flow.borrow().release != Release::Requested {
        return;
    }
    let _ = compio::time::timeout(RESET_WAIT, u2c).await;
}

impl ClientSide<'_> {
    /// The caller leaves: whether its connection can be reset and reused.
    pub(super) fn releasable(&self, batches: u64, open: bool) -> bool {
        if self.reset.is_none() || open || self.passing.active() {
            return false;
        }
        let flow = self.flow.borrow();
        flow.idle && flow.ready_seen == batches && flow.injections.is_empty()
    }

    /// Send the reset query in place of the caller's Terminate.
    pub(super) async fn start_release(&mut self) -> Result<(), SessionError> {
        let Some(reset) = self.reset else {
            return Ok(());
        };
        let mut out = BytesMut::new();
        pg::encode_query(&mut out, reset.as_bytes()).map_err(SessionError::ClientProtocol)?;
        self.flow.borrow_mut().release = Release::Requested;
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        send(writer, &mut out, Peer::Upstream).await
    }
}

impl UpstreamSide<'_> {
    /// Whether the reset was sent: what the server says now is not the
    /// caller's.
    pub(super) fn releasing(&self) -> bool {
        self.pooled && self.flow.borrow().release == Release::Requested
    }

    /// Read the answer to the reset query (nothing of it reaches the
    /// client or the recording); the connection is reusable if it ends in
    /// ReadyForQuery 'I' without an error and nothing follows.
    pub(super) async fn drain_reset(&mut self) -> Result<(), SessionError> {
        let mut failed = false;
        loop {
            while let Some(f) = pg::next_frame(&mut self.reader.buf, &self.reader.caps)
                .map_err(SessionError::UpstreamProtocol)?
            {
                match f.tag() {
                    tag::ERROR_RESPONSE => failed = true,
                    tag::PARAMETER_STATUS => {
                        let frame = f.bytes().clone();
                        self.flow.borrow_mut().statuses.push(frame);
                    }
                    tag::READY_FOR_QUERY => {
                        let idle = f.body().first() == Some(&b'I');
                        if !failed && idle && self.reader.buf.is_empty() {
                            self.flow.borrow_mut().release = Release::Done;
                        }
                        return Ok(());
                    }
                    _ => {}
                }
            }
            self.reader.fill().await?;
        }
    }

    /// A ParameterStatus relayed on a pooled connection: kept for the next
    /// caller's greeting.
    pub(super) fn note_status(&self, pos: usize, len: usize) {
        if self.pooled {
            let frame = Bytes::copy_from_slice(&self.reader.buf[pos..pos + len]);
            self.flow.borrow_mut().statuses.push(frame);
        }
    }
}

/// What goes back to the pool when the relay is over.
pub(super) struct Back<'a> {
    pub lease: Lease,
    pub flow: &'a RefCell<Flow>,
    pub reader: FrameReader,
    pub writer: WriteHalf,
    pub greeting: BytesMut,
    pub key: Option<(i32, Vec<u8>)>,
    pub method: &'static str,
}

impl Back<'_> {
    /// Into the pool if the reset went through; else dropped (closed).
    pub fn give_back(self) {
        let flow = self.flow.borrow();
        if flow.release != Release::Done {
            return;
        }
        let mut reader = self.reader;
        reader.settle();
        let buf = if reader.buf.capacity() > 64 * 1024 {
            BytesMut::new()
        } else {
            std::mem::take(&mut reader.buf)
        };
        let greeting = updated_greeting(&self.greeting, &flow.statuses);
        self.lease.give_back(
            reader.half,
            self.writer,
            buf,
            greeting,
            self.key,
            self.method,
        );
    }
}

/// The greeting's ParameterStatus frames with the later ones applied (a
/// later value of a name replaces the earlier); notices are dropped (they
/// were the login's).
fn updated_greeting(greeting: &[u8], later: &[Bytes]) -> BytesMut {
    let caps = Caps::backend(&Limits::default());
    let mut frames: Vec<(Vec<u8>, Bytes)> = Vec::new();
    let mut apply = |f: &pg::Frame| {
        if f.tag() != tag::PARAMETER_STATUS {
            return;
        }
        let Ok(p) = pg::ParameterStatus::parse_body(f.body()) else {
            return;
        };
        match frames.iter_mut().find(|(n, _)| n == p.name) {
            Some(slot) => slot.1 = f.bytes().clone(),
            None => frames.push((p.name.to_vec(), f.bytes().clone())),
        }
    };
    let mut buf = BytesMut::from(greeting);
    while let Ok(Some(f)) = pg::next_frame(&mut buf, &caps) {
        apply(&f);
    }
    for b in later {
        let mut buf = BytesMut::from(&b[..]);
        if let Ok(Some(f)) = pg::next_frame(&mut buf, &caps) {
            apply(&f);
        }
    }
    let mut out = BytesMut::with_capacity(greeting.len());
    for (_, f) in frames {
        out.extend_from_slice(&f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, value: &str) -> Bytes {
        let mut b = BytesMut::new();
        pg::encode_parameter_status(&mut b, name.as_bytes(), value.as_bytes()).unwrap();
        b.freeze()
    }

    #[test]
    fn the_next_greeting_follows_what_the_server_reported() {
        let mut greeting = BytesMut::new();
        greeting.extend_from_slice(&status("DateStyle", "ISO, MDY"));
        greeting.extend_from_slice(&status("standard_conforming_strings", "on"));
        let later = [
            status("standard_conforming_strings", "off"),
            status("application_name", "x"),
            status("standard_conforming_strings", "on"),
            status("DateStyle", "German"),
        ];
        let got = updated_greeting(&greeting, &later);
        let mut want = BytesMut::new();
        want.extend_from_slice(&status("DateStyle", "German"));
        want.extend_from_slice(&status("standard_conforming_strings", "on"));
        want.extend_from_slice(&status("application_name", "x"));
        assert_eq!(got, want);
        assert!(!param_is(&got, b"standard_conforming_strings", b"off"));
    }
}
