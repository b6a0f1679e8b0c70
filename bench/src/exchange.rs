//! One request on a connection: send `size` bytes, read the echo back, check it.
//!
//! Small messages go out with one send and come back with one exact read: the
//! cheapest path, so the load tool costs little per request. Larger transfers
//! are sent and read at the same time in chunks, because a sequential
//! write-then-read deadlocks once the message exceeds what the socket buffers
//! on both sides can hold.
//!
//! Every request carries its sequence number in its first bytes, so an echo
//! that replays stale bytes (a relay reusing a buffer wrongly) is caught as a
//! mismatch rather than counted as a success.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;

use compio::buf::{BufResult, IntoInner as _, IoBuf};
use compio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;

/// Messages up to this size take the one-send, one-read path.
pub const SMALL_MAX: usize = 64 * 1024;
/// Chunk size for large transfers, in both directions.
const CHUNK: usize = 256 * 1024;
/// How many leading bytes carry the sequence number.
const STAMP_LEN: usize = 8;

/// How a request failed; the summary counts each kind separately.
#[derive(Debug)]
pub enum RequestError {
    /// The peer closed before the whole echo arrived.
    Eof,
    /// The echo arrived but differs from what was sent.
    Mismatch,
    Io(io::Error),
}

impl From<io::Error> for RequestError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            Self::Eof
        } else {
            Self::Io(err)
        }
    }
}

/// The reusable buffers of one connection: allocated once, reused for every request.
pub struct Buffers {
    size: usize,
    verify: bool,
    /// Small path: the message itself. Large path: one chunk of the pattern.
    send: Vec<u8>,
    recv: Vec<u8>,
    /// Large path only: an unstamped copy of the pattern to check the echo against.
    pattern: Vec<u8>,
}

impl Buffers {
    pub fn new(size: usize, verify: bool) -> Self {
        let chunk = if size <= SMALL_MAX { size } else { CHUNK };
        let pattern = fill_pattern(chunk);
        Self {
            size,
            verify,
            send: pattern.clone(),
            recv: Vec::with_capacity(chunk),
            pattern: if size > SMALL_MAX {
                pattern
            } else {
                Vec::new()
            },
        }
    }

    /// Sends one message stamped with `seq` and waits for its full echo.
    pub async fn exchange(&mut self, stream: &TcpStream, seq: u64) -> Result<(), RequestError> {
        if self.size <= SMALL_MAX {
            self.exchange_small(stream, seq).await
        } else {
            self.exchange_large(stream, seq).await
        }
    }

    async fn exchange_small(&mut self, stream: &TcpStream, seq: u64) -> Result<(), RequestError> {
        stamp(&mut self.send, seq);
        let mut writer = stream;
        let BufResult(sent, send) = writer.write_all(std::mem::take(&mut self.send)).await;
        self.send = send;
        sent?;
        let mut reader = stream;
        let mut recv = std::mem::take(&mut self.recv);
        // compio fills from the buffer's length up to its capacity: start empty.
        recv.clear();
        let BufResult(read, recv) = reader.read_exact(recv.slice(..self.size)).await;
        self.recv = recv.into_inner();
        read?;
        if self.verify && self.recv != self.send {
            return Err(RequestError::Mismatch);
        }
        Ok(())
    }

    async fn exchange_large(&mut self, stream: &TcpStream, seq: u64) -> Result<(), RequestError> {
        let size = self.size;
        let send = std::mem::take(&mut self.send);
        let recv = std::mem::take(&mut self.recv);
        let pattern = &self.pattern;
        let verify = self.verify;
        let (send, recv, result) = try_join(
            send_pattern(stream, send, size, seq),
            receive_checked(stream, recv, pattern, size, seq, verify),
        )
        .await;
        self.send = send;
        self.recv = recv;
        // A failed side may leave its buffer behind inside the dropped future; the
        // connection is discarded after an error, so re-create the buffers.
        if self.send.len() != self.pattern.len() || self.recv.capacity() < CHUNK {
            self.send = self.pattern.clone();
            self.recv = Vec::with_capacity(CHUNK);
        }
        result
    }
}

/// Writes `size` bytes: the pattern chunk over and over, the first chunk stamped.
async fn send_pattern(
    stream: &TcpStream,
    mut chunk: Vec<u8>,
    size: usize,
    seq: u64,
) -> (Vec<u8>, Result<(), RequestError>) {
    let mut writer = stream;
    let pristine: [u8; STAMP_LEN] = leading(&chunk);
    stamp(&mut chunk, seq);
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(chunk.len());
        let BufResult(sent, slice) = writer.write_all(chunk.slice(..len)).await;
        chunk = slice.into_inner();
        if offset == 0 {
            let n = chunk.len().min(STAMP_LEN);
            chunk[..n].copy_from_slice(&pristine[..n]);
        }
        if let Err(err) = sent {
            return (chunk, Err(err.into()));
        }
        offset += len;
    }
    (chunk, Ok(()))
}

/// Reads `size` bytes and checks each piece against the pattern.
async fn receive_checked(
    stream: &TcpStream,
    mut buf: Vec<u8>,
    pattern: &[u8],
    size: usize,
    seq: u64,
    verify: bool,
) -> (Vec<u8>, Result<(), RequestError>) {
    let mut reader = stream;
    let mut offset = 0;
    let mut intact = true;
    while offset < size {
        buf.clear();
        let want = (size - offset).min(buf.capacity());
        let BufResult(read, slice) = reader.read(buf.slice(..want)).await;
        buf = slice.into_inner();
        match read {
            Ok(0) => return (buf, Err(RequestError::Eof)),
            Ok(n) => {
                // Keep reading after a mismatch: stopping would leave the echo
                // unread and the sender blocked.
                if verify && intact {
                    intact = piece_matches(pattern, seq, offset, &buf[..n]);
                }
                offset += n;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (buf, Err(err.into())),
        }
    }
    let result = if intact {
        Ok(())
    } else {
        Err(RequestError::Mismatch)
    };
    (buf, result)
}

/// Whether `data`, found at `offset` of a transfer stamped with `seq`, is what
/// [`send_pattern`] sent there.
pub fn piece_matches(pattern: &[u8], seq: u64, offset: usize, data: &[u8]) -> bool {
    if pattern.is_empty() {
        return data.is_empty();
    }
    let stamp_bytes = seq.to_le_bytes();
    let mut pos = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let at = pos % pattern.len();
        let len = rest.len().min(pattern.len() - at);
        let (piece, tail) = rest.split_at(len);
        let mut expected = &pattern[at..at + len];
        let mut piece = piece;
        // Only the transfer's very first bytes carry the stamp.
        if pos < STAMP_LEN {
            let stamped = (STAMP_LEN - pos).min(len);
            if piece[..stamped] != stamp_bytes[pos..pos + stamped] {
                return false;
            }
            piece = &piece[stamped..];
            expected = &expected[stamped..];
        }
        if piece != expected {
            return false;
        }
        pos += len;
        rest = tail;
    }
    true
}

/// Writes `seq` over the first bytes of `buf` (fewer when `buf` is shorter).
fn stamp(buf: &mut [u8], seq: u64) {
    let n = buf.len().min(STAMP_LEN);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

fn leading(buf: &[u8]) -> [u8; STAMP_LEN] {
    let mut out = [0; STAMP_LEN];
    let n = buf.len().min(STAMP_LEN);
    out[..n].copy_from_slice(&buf[..n]);
    out
}

/// A deterministic, non-repeating-looking byte pattern (xorshift), so an echo
/// that shifts or drops bytes cannot match by accident.
pub fn fill_pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Runs the send and the receive side together and returns when both are done,
/// or as soon as one fails (the connection is then discarded, so abandoning the
/// other side's operation loses nothing).
async fn try_join<A, B>(send: A, recv: B) -> (Vec<u8>, Vec<u8>, Result<(), RequestError>)
where
    A: Future<Output = (Vec<u8>, Result<(), RequestError>)>,
    B: Future<Output = (Vec<u8>, Result<(), RequestError>)>,
{
    let mut send = pin!(send);
    let mut recv = pin!(recv);
    let mut send_out: Option<Vec<u8>> = None;
    let mut recv_out: Option<Vec<u8>> = None;
    poll_fn(|cx| {
        if send_out.is_none()
            && let Poll::Ready((buf, result)) = send.as_mut().poll(cx)
        {
            if let Err(err) = result {
                return Poll::Ready((buf, Vec::new(), Err(err)));
            }
            send_out = Some(buf);
        }
        if recv_out.is_none()
            && let Poll::Ready((buf, result)) = recv.as_mut().poll(cx)
        {
            if let Err(err) = result {
                return Poll::Ready((send_out.take().unwrap_or_default(), buf, Err(err)));
            }
            recv_out = Some(buf);
        }
        match (send_out.take(), recv_out.take()) {
            (Some(s), Some(r)) => Poll::Ready((s, r, Ok(()))),
            (s, r) => {
                send_out = s;
                recv_out = r;
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What `send_pattern` puts on the wire, built the slow way.
    fn wire_bytes(pattern: &[u8], seq: u64, size: usize) -> Vec<u8> {
        let mut out: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
        stamp(&mut out, seq);
        out
    }

    #[test]
    fn pieces_of_a_correct_echo_match_however_they_are_cut() {
        let pattern = fill_pattern(100);
        let wire = wire_bytes(&pattern, 42, 350);
        for cut in [1, 3, 7, 8, 9, 64, 100, 101, 350] {
            let mut offset = 0;
            for piece in wire.chunks(cut) {
                assert!(
                    piece_matches(&pattern, 42, offset, piece),
                    "cut {cut} at {offset}"
                );
                offset += piece.len();
            }
        }
    }

    #[test]
    fn a_wrong_stamp_or_a_flipped_byte_is_caught() {
        let pattern = fill_pattern(100);
        let wire = wire_bytes(&pattern, 42, 350);
        assert!(!piece_matches(&pattern, 41, 0, &wire));
        let mut flipped = wire.clone();
        flipped[250] ^= 1;
        assert!(!piece_matches(&pattern, 42, 0, &flipped));
        // A shifted stream (one byte lost) does not match either.
        assert!(!piece_matches(&pattern, 42, 8, &wire[9..]));
    }

    #[test]
    fn stamp_fits_short_messages() {
        let mut one = vec![0u8; 1];
        stamp(&mut one, 0x0102);
        assert_eq!(one, [0x02]);
        let mut long = vec![0u8; 10];
        stamp(&mut long, u64::MAX);
        assert_eq!(&long[..8], &[0xff; 8]);
        assert_eq!(&long[8..], &[0, 0]);
    }
}
