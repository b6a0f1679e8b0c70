//! Messages that need no whole-frame inspection pass through the relay in
//! pieces, as their bytes arrive, instead of being buffered whole; and the
//! clock that cuts a client message that does not complete in time.
//!
//! Which messages pass in pieces (when declared above [`STREAM_ABOVE`] and
//! not yet whole in the buffer):
//! - CopyData from the client (COPY FROM STDIN): the gateway never looks
//!   inside it;
//! - Bind from the client, on targets without masking: the relay only counts
//!   it. With masking the shape tracker needs the portal, the statement and
//!   the result formats (the last of which follow the parameter values), so
//!   a Bind there is read whole, within the session's memory budget;
//! - CopyData from the server when no content rule masks it (COPY TO STDOUT
//!   for a caller with nothing to mask), and DataRow on targets without
//!   masking.
//!
//! Recording is unchanged in content: every piece is recorded before it is
//! forwarded, so the recording holds the same bytes in the same order; a
//! large message is spread over several data records instead of one.
//! Inside a batch voided by a blocked statement, a passing message is
//! dropped piece by piece as a whole one would be.

use bytes::{Bytes, BytesMut};
use tollgate_codecs::pg::{self, tag};

use super::io::{FrameReader, SessionError};
pub(crate) use crate::pipeline::FrameClock;

/// Messages declared longer than this pass in pieces (those up to it are
/// buffered whole: at most one working buffer).
pub(super) const STREAM_ABOVE: usize = 32 * 1024;

/// What the buffer holds at a position of the read buffer.
pub(super) enum Next {
    /// A whole message of this length.
    Whole(usize),
    /// Part of a message that is read whole; the buffer has room for it.
    Partial,
    /// The start of a long message (type, whole length) that passes in pieces.
    Large(u8, usize),
}

/// Classify the message at `pos` of the reader's buffer. `streamable` says
/// which message types may pass in pieces in this direction right now.
pub(super) fn next(
    reader: &mut FrameReader,
    pos: usize,
    streamable: impl Fn(u8) -> bool,
) -> Result<Next, SessionError> {
    let rest = &reader.buf[pos..];
    if let (Some(&t), Ok(Some(len))) = (rest.first(), pg::frame_len(rest, &reader.caps))
        && len > STREAM_ABOVE
        && rest.len() < len
        && streamable(t)
    {
        return Ok(Next::Large(t, len));
    }
    Ok(match reader.frame_len_at(pos)? {
        Some(len) => Next::Whole(len),
        None => Next::Partial,
    })
}

/// A message passing through in pieces: how much of it is still to come.
#[derive(Debug, Default)]
pub(super) struct Passing {
    remaining: usize,
    dropping: bool,
}

impl Passing {
    pub(super) fn active(&self) -> bool {
        self.remaining > 0
    }

    /// Starts passing the message of `len` bytes at `*pos` of `buf` (more
    /// than `buf` holds from there, as [`next`] found). Kept: it joins the run being
    /// forwarded (`*pos` moves to the end of the buffer). Dropped: the run
    /// before it goes to `segments` and its buffered bytes are discarded.
    pub(super) fn start(
        &mut self,
        buf: &mut BytesMut,
        segments: &mut Vec<Bytes>,
        pos: &mut usize,
        len: usize,
        drop: bool,
    ) {
        let have = buf.len() - *pos;
        self.remaining = len.saturating_sub(have);
        self.dropping = drop;
        if drop {
            if *pos > 0 {
                segments.push(buf.split_to(*pos).freeze());
            }
            buf.clear();
            *pos = 0;
        } else {
            *pos = buf.len();
        }
    }

    /// Takes what `buf` holds of the passing message off its front: the
    /// piece to forward, if it is kept and there is one.
    pub(super) fn take(&mut self, buf: &mut BytesMut) -> Option<Bytes> {
        let n = self.remaining.min(buf.len());
        self.remaining -= n;
        let piece = buf.split_to(n);
        (!self.dropping && n > 0).then(|| piece.freeze())
    }
}

/// Message types of the client that may pass in pieces (see the module doc).
pub(super) fn client_streamable(t: u8, masking: bool) -> bool {
    t == tag::COPY_DATA || (t == tag::BIND && !masking)
}

/// Message types of the server that may pass in pieces (see the module doc).
pub(super) fn upstream_streamable(t: u8, masking: bool, copy_masked: bool) -> bool {
    (t == tag::COPY_DATA && !copy_masked) || (t == tag::DATA_ROW && !masking)
}
