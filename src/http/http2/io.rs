//! The caller's connection as tokio's `AsyncRead`/`AsyncWrite`, which is
//! all the `h2` crate asks of its transport: h2 needs neither tokio's
//! reactor nor its timers nor a spawner, so it runs on the shard's compio
//! runtime without a hop to another thread. Each direction keeps at most one
//! operation of the connection's halves in flight (a boxed future that owns
//! the half while it runs); a write is accepted once it has been handed to
//! the socket half, and the next write, flush or shutdown waits for it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls::{ReadHalf, WriteHalf};

type ReadOp = Pin<Box<dyn Future<Output = (ReadHalf, BytesMut, io::Result<usize>)>>>;
type WriteOp = Pin<Box<dyn Future<Output = (WriteHalf, io::Result<()>)>>>;

enum Reader {
    Idle(ReadHalf, BytesMut),
    Reading(ReadOp),
    /// Only while a transition is under way (or after a panic in one).
    Gone,
}

enum Writer {
    Idle(WriteHalf),
    Writing(WriteOp),
    Gone,
}

/// A caller's connection for `h2`.
pub(crate) struct H2Io {
    reader: Reader,
    writer: Writer,
    /// A write's error, reported by the next call.
    failed: Option<io::Error>,
    eof: bool,
    /// The write half was shut down (or is being).
    shut: bool,
}

impl H2Io {
    /// `early`: bytes already read from the connection (none today: h2
    /// starts right after the TLS handshake).
    pub fn new(r: ReadHalf, w: WriteHalf, early: BytesMut) -> H2Io {
        H2Io {
            reader: Reader::Idle(r, early),
            writer: Writer::Idle(w),
            failed: None,
            eof: false,
            shut: false,
        }
    }

    /// Drive the write in flight to its end.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Writer::Writing(op) = &mut self.writer {
            let (w, r) = ready!(op.as_mut().poll(cx));
            self.writer = Writer::Idle(w);
            if let Err(e) = r {
                self.failed = Some(e);
            }
        }
        match self.failed.take() {
            Some(e) => {
                // Keep failing: the connection is broken for good.
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Poll::Ready(Err(e))
            }
            None => Poll::Ready(Ok(())),
        }
    }
}

// The halves are only ever moved (into the boxed futures and back), never
// pinned in place, so the adapter may move while h2 holds it pinned.
impl Unpin for H2Io {}

fn gone() -> io::Error {
    io::Error::other("h2 transport used after a failed operation")
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.reader, Reader::Gone) {
                Reader::Idle(half, mut buf) => {
                    if !buf.is_empty() {
                        let n = buf.len().min(out.remaining());
                        out.put_slice(&buf[..n]);
                        buf.advance(n);
                        this.reader = Reader::Idle(half, buf);
                        return Poll::Ready(Ok(()));
                    }
                    if this.eof || out.remaining() == 0 {
                        this.reader = Reader::Idle(half, buf);
                        return Poll::Ready(Ok(()));
                    }
                    let mut half = half;
                    this.reader = Reader::Reading(Box::pin(async move {
                        let r = half.read_into(&mut buf).await;
                        (half, buf, r)
                    }));
                }
                Reader::Reading(mut op) => match op.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.reader = Reader::Reading(op);
                        return Poll::Pending;
                    }
                    Poll::Ready((half, buf, r)) => {
                        this.reader = Reader::Idle(half, buf);
                        match r {
                            Ok(0) => this.eof = true,
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => this.eof = true,
                            Err(e) => return Poll::Ready(Err(e)),
                        }
                    }
                },
                Reader::Gone => return Poll::Ready(Err(gone())),
            }
        }
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_written(cx))?;
        let Writer::Idle(mut half) = std::mem::replace(&mut this.writer, Writer::Gone) else {
            return Poll::Ready(Err(gone()));
        };
        let bytes = Bytes::copy_from_slice(data);
        let mut op: WriteOp = Box::pin(async move {
            let r = half.write_all(bytes).await;
            (half, r)
        });
        // Start it now: the socket write is submitted before we return.
        match op.as_mut().poll(cx) {
            Poll::Ready((half, r)) => {
                this.writer = Writer::Idle(half);
                r?;
            }
            Poll::Pending => this.writer = Writer::Writing(op),
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_written(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_written(cx))?;
        if this.shut {
            return Poll::Ready(Ok(()));
        }
        let Writer::Idle(mut half) = std::mem::replace(&mut this.writer, Writer::Gone) else {
            return Poll::Ready(Err(gone()));
        };
        this.shut = true;
        this.writer = Writer::Writing(Box::pin(async move {
            let r = half.shutdown().await;
            (half, r)
        }));
        this.poll_written(cx)
    }
}
