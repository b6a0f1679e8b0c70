//! Framed reading for PostgreSQL sessions and the session's error type.

use std::io;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::pg::{self, Caps, Frame, PgError};

use crate::limits::{Direction, FREE_CAPACITY, OverBudget, SessionBudget};
use crate::tls::{ReadHalf, WriteHalf};

/// How a PostgreSQL session went wrong, and on which side.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client: {0}")]
    ClientIo(io::Error),
    #[error("client sent a malformed message: {0}")]
    ClientProtocol(PgError),
    #[error("client closed the connection")]
    ClientClosed,
    #[error("upstream: {0}")]
    UpstreamIo(io::Error),
    #[error("upstream sent a malformed message: {0}")]
    UpstreamProtocol(PgError),
    #[error("upstream closed the connection")]
    UpstreamClosed,
    #[error("{0}")]
    Refused(String),
    /// A message would take the session or the process above its memory
    /// budget (`[limits]`): the client is told 53200 and the session ends.
    #[error("out of memory: {0}")]
    OutOfMemory(OverBudget),
}

/// Which peer a reader reads from (for error attribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Client,
    Upstream,
}

impl Peer {
    fn io(self, e: io::Error) -> SessionError {
        match self {
            Peer::Client => SessionError::ClientIo(e),
            Peer::Upstream => SessionError::UpstreamIo(e),
        }
    }
    fn protocol(self, e: PgError) -> SessionError {
        match self {
            Peer::Client => SessionError::ClientProtocol(e),
            Peer::Upstream => SessionError::UpstreamProtocol(e),
        }
    }
    fn closed(self) -> SessionError {
        match self {
            Peer::Client => SessionError::ClientClosed,
            Peer::Upstream => SessionError::UpstreamClosed,
        }
    }
}

/// A read half with its buffer and the caps of the direction it reads.
pub struct FrameReader {
    pub half: ReadHalf,
    pub buf: BytesMut,
    pub caps: Caps,
    pub peer: Peer,
    /// The session's memory budget, charged for what whole messages need
    /// beyond the working buffer (none during start-up).
    budget: Option<(Rc<SessionBudget>, Direction)>,
}

impl FrameReader {
    pub fn new(half: ReadHalf, buf: BytesMut, caps: Caps, peer: Peer) -> FrameReader {
        FrameReader {
            half,
            buf,
            caps,
            peer,
            budget: None,
        }
    }

    /// Charge what this reader's buffer needs for whole messages to `budget`.
    pub fn with_budget(mut self, budget: Rc<SessionBudget>, dir: Direction) -> FrameReader {
        self.budget = Some((budget, dir));
        self
    }

    /// After a read has been handled: a buffer that grew for a large
    /// message is given back once it is empty (the allocator gets it when
    /// the forwarded bytes have been written), and the charge follows.
    pub fn settle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > FREE_CAPACITY {
            self.buf = BytesMut::new();
        }
        if let Some((b, dir)) = &self.budget {
            b.release_to(*dir, self.buf.capacity());
        }
    }

    /// Read more bytes into the buffer; EOF is an error here (a PostgreSQL
    /// peer always says goodbye with Terminate or an error first).
    pub async fn fill(&mut self) -> Result<(), SessionError> {
        match self.half.read_into(&mut self.buf).await {
            Ok(0) => Err(self.peer.closed()),
            Ok(_) => Ok(()),
            Err(e) => Err(self.peer.io(e)),
        }
    }

    /// Like [`FrameReader::fill`] but a clean EOF returns `Ok(false)`.
    pub async fn fill_or_eof(&mut self) -> Result<bool, SessionError> {
        match self.half.read_into(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(self.peer.io(e)),
        }
    }

    /// The next whole frame.
    pub async fn frame(&mut self) -> Result<Frame, SessionError> {
        loop {
            match pg::next_frame(&mut self.buf, &self.caps) {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => self.fill().await?,
                Err(e) => return Err(self.peer.protocol(e)),
            }
        }
    }

    /// Length of the next frame at `offset` of the buffer, once it is whole.
    /// While it is not, the buffer gets the capacity for the rest of it (the
    /// length has already passed the cap for its type).
    pub fn frame_len_at(&mut self, offset: usize) -> Result<Option<usize>, SessionError> {
        match pg::frame_len(&self.buf[offset..], &self.caps).map_err(|e| self.peer.protocol(e))? {
            Some(len) if self.buf.len() - offset >= len => Ok(Some(len)),
            Some(len) => {
                if let Some((b, dir)) = &self.budget {
                    b.charge(*dir, offset + len)
                        .map_err(SessionError::OutOfMemory)?;
                }
                self.buf.reserve(offset + len - self.buf.len());
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

/// Write a message built in `out` to a write half, clearing `out`.
pub async fn send(w: &mut WriteHalf, out: &mut BytesMut, peer: Peer) -> Result<(), SessionError> {
    if out.is_empty() {
        return Ok(());
    }
    let bytes: Bytes = out.split().freeze();
    w.write_all(bytes).await.map_err(|e| peer.io(e))
}
