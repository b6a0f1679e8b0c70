//! Packets in and out of a MySQL connection half: reads capped by the
//! codec's limits, errors as the pipeline's end reasons, ERR packets.

use bytes::BytesMut;
use tollgate_codecs::mysql::{
    ErrPacket, HEADER_LEN, MAX_CHUNK, MySqlError, Packet, com, encode_packet, next_packet,
};

use std::rc::Rc;

use crate::limits::{Direction, SessionBudget};
use crate::pipeline::EndReason;
use crate::tls::{ReadHalf, WriteHalf};

/// Which side a packet or an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    Client,
    Upstream,
}

impl Peer {
    pub fn io(self, e: std::io::Error) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientIo(e.to_string()),
            Peer::Upstream => EndReason::UpstreamIo(e.to_string()),
        }
    }

    pub fn protocol(self, e: impl std::fmt::Display) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientProtocol(e.to_string()),
            Peer::Upstream => EndReason::UpstreamProtocol(e.to_string()),
        }
    }

    pub fn closed(self) -> EndReason {
        match self {
            Peer::Client => EndReason::ClientClosed,
            Peer::Upstream => EndReason::UpstreamClosed,
        }
    }
}

/// A read half with its buffer and the cap on one logical packet.
pub(crate) struct PacketReader {
    pub half: ReadHalf,
    pub buf: BytesMut,
    pub cap: usize,
    pub peer: Peer,
    /// The session's memory budget, once the session relays: the buffer's
    /// capacity is charged after every read, so a packet announced large
    /// and trickled in (up to `cap`) holds no more than the budget allows.
    pub budget: Option<(Rc<SessionBudget>, Direction)>,
    /// Socket reads so far: a caller that wants to know whether bytes
    /// arrived (activity for the idle timer) compares it around a call,
    /// instead of reading the clock for every packet of a result.
    pub reads: u64,
}

impl PacketReader {
    pub fn new(half: ReadHalf, buf: BytesMut, cap: usize, peer: Peer) -> PacketReader {
        PacketReader {
            half,
            buf,
            cap,
            peer,
            budget: None,
            reads: 0,
        }
    }

    /// The next whole packet; EOF is an error.
    pub async fn packet(&mut self) -> Result<Packet, EndReason> {
        match self.packet_or_eof().await? {
            Some(p) => Ok(p),
            None => Err(self.peer.closed()),
        }
    }

    /// The next whole packet, or `None` at a clean EOF between packets.
    /// Charges the buffer's capacity after a read to the session's budget.
    pub fn charge(&self) -> Result<(), EndReason> {
        match &self.budget {
            Some((b, dir)) => b
                .charge(*dir, self.buf.capacity())
                .map_err(|e| EndReason::OutOfMemory(e.to_string())),
            None => Ok(()),
        }
    }

    /// Lowers the charge once a packet has been cut off the buffer.
    pub fn release(&self) {
        if let Some((b, dir)) = &self.budget {
            b.release_to(*dir, self.buf.capacity());
        }
    }

    pub async fn packet_or_eof(&mut self) -> Result<Option<Packet>, EndReason> {
        loop {
            match next_packet(&mut self.buf, self.cap) {
                Ok(Some(p)) => {
                    self.release();
                    return Ok(Some(p));
                }
                Ok(None) => {}
                Err(e) => return Err(self.peer.protocol(e)),
            }
            if !self.fill_or_eof().await? {
                return Ok(None);
            }
        }
    }

    /// One more socket read into the buffer (which holds no whole packet);
    /// EOF is an error.
    pub async fn fill(&mut self) -> Result<(), EndReason> {
        if self.fill_or_eof().await? {
            Ok(())
        } else {
            Err(self.peer.closed())
        }
    }

    /// One more socket read; false at a clean EOF between packets.
    async fn fill_or_eof(&mut self) -> Result<bool, EndReason> {
        match self.half.read_into(&mut self.buf).await {
            Ok(0) if self.buf.is_empty() => return Ok(false),
            Ok(0) => return Err(self.peer.closed()),
            Ok(_) => self.reads += 1,
            Err(e) => return Err(self.peer.io(e)),
        }
        self.charge()?;
        Ok(true)
    }
}

/// The cap on the client command at the front of `buf`: `max_statement`
/// (`[limits]`, as PostgreSQL's Query and Parse) for a statement's text
/// (COM_QUERY, COM_STMT_PREPARE), `cap` for any other command. Until the
/// command byte is in, `cap`.
pub(crate) fn command_cap(buf: &[u8], cap: usize, max_statement: usize) -> usize {
    match buf.get(HEADER_LEN) {
        Some(&(com::QUERY | com::STMT_PREPARE)) => max_statement,
        _ => cap,
    }
}

/// The sequence id of an answer to the packet at the front of `buf`, whose
/// headers add up to more than `cap`: one past the header that crossed it
/// (what the client, still sending, expects next).
pub(crate) fn seq_past_cap(buf: &[u8], cap: usize) -> u8 {
    let (mut at, mut total, mut seq) = (0usize, 0usize, 0u8);
    while let Some(h) = buf.get(at..at + HEADER_LEN) {
        let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        seq = h[3];
        total += len;
        if total > cap || len < MAX_CHUNK {
            break;
        }
        at += HEADER_LEN + len;
    }
    seq.wrapping_add(1)
}

/// Write what `out` holds to `w`, clearing `out`.
pub(crate) async fn send(
    w: &mut WriteHalf,
    out: &mut BytesMut,
    peer: Peer,
) -> Result<(), EndReason> {
    if out.is_empty() {
        return Ok(());
    }
    w.write_all(out.split().freeze())
        .await
        .map_err(|e| peer.io(e))
}

/// What a MySQL client shows of an error message (`MYSQL_ERRMSG_SIZE`).
const MAX_MESSAGE: usize = 500;

/// Appends an ERR packet with sequence id `seq`; returns the next id.
pub(crate) fn err_packet(
    out: &mut BytesMut,
    seq: u8,
    code: u16,
    sqlstate: &[u8; 5],
    message: &str,
) -> u8 {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let err = ErrPacket {
        code,
        sqlstate: Some(*sqlstate),
        message: &message.as_bytes()[..end],
    };
    encode_packet(out, seq, |o| {
        err.encode(o);
        Ok::<(), MySqlError>(())
    })
    .unwrap_or(seq)
}

/// Error codes and SQLSTATEs the gateway writes.
pub(crate) mod code {
    /// ER_TABLEACCESS_DENIED_ERROR: what a blocked statement reads.
    pub const BLOCKED: (u16, &[u8; 5]) = (1142, b"42000");
    /// ER_ACCESS_DENIED_ERROR: any authentication failure.
    pub const ACCESS_DENIED: (u16, &[u8; 5]) = (1045, b"28000");
    /// ER_DBACCESS_DENIED_ERROR: a database this session is not routed to.
    pub const DB_ACCESS_DENIED: (u16, &[u8; 5]) = (1044, b"42000");
    /// ER_BAD_DB_ERROR: no target for the database asked for.
    pub const BAD_DB: (u16, &[u8; 5]) = (1049, b"42000");
    /// ER_SECURE_TRANSPORT_REQUIRED: a plaintext caller on a TLS target.
    pub const TLS_REQUIRED: (u16, &[u8; 5]) = (3159, b"HY000");
    /// ER_HANDSHAKE_ERROR: a login packet that cannot be read.
    pub const BAD_HANDSHAKE: (u16, &[u8; 5]) = (1043, b"08S01");
    /// ER_UNKNOWN_COM_ERROR: a command the gateway does not pass.
    pub const UNKNOWN_COMMAND: (u16, &[u8; 5]) = (1047, b"08S01");
    /// ER_SPECIFIC_ACCESS_DENIED_ERROR: COM_CHANGE_USER, KILL of another's.
    pub const NOT_ALLOWED: (u16, &[u8; 5]) = (1227, b"42000");
    /// ER_NO_SUCH_THREAD.
    pub const NO_SUCH_THREAD: (u16, &[u8; 5]) = (1094, b"HY000");
    /// ER_UNKNOWN_STMT_HANDLER.
    pub const UNKNOWN_STATEMENT: (u16, &[u8; 5]) = (1243, b"HY000");
    /// ER_MAX_PREPARED_STMT_COUNT_REACHED.
    pub const TOO_MANY_STATEMENTS: (u16, &[u8; 5]) = (1461, b"42000");
    /// ER_CONNECTION_KILLED.
    pub const KILLED: (u16, &[u8; 5]) = (1927, b"70100");
    /// ER_CLIENT_INTERACTION_TIMEOUT.
    pub const IDLE: (u16, &[u8; 5]) = (4031, b"HY000");
    /// ER_OUT_OF_RESOURCES: the session's or the gateway's memory budget.
    pub const OUT_OF_MEMORY: (u16, &[u8; 5]) = (1041, b"HY000");
    /// ER_UNKNOWN_ERROR: the gateway cannot serve the session (a code of
    /// the server's range: clients read 2xxx codes as their own failures).
    pub const UNAVAILABLE: (u16, &[u8; 5]) = (1105, b"HY000");
    /// ER_NET_PACKET_TOO_LARGE: a statement above `[limits] max_statement`.
    pub const TOO_LARGE: (u16, &[u8; 5]) = (1153, b"08S01");
    /// ER_NOT_ALLOWED_COMMAND: LOAD DATA LOCAL while it is off.
    pub const LOCAL_INFILE: (u16, &[u8; 5]) = (1148, b"42000");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_capped_by_max_statement_other_commands_by_the_codec() {
        let q = [0x10, 0, 0, 0, com::QUERY, b'S'];
        assert_eq!(command_cap(&q, 64, 8), 8);
        let p = [0x10, 0, 0, 0, com::STMT_PREPARE];
        assert_eq!(command_cap(&p, 64, 8), 8);
        let e = [0x10, 0, 0, 0, com::STMT_SEND_LONG_DATA];
        assert_eq!(command_cap(&e, 64, 8), 64);
        // The command byte not in yet: the looser cap until it is.
        assert_eq!(command_cap(&q[..4], 64, 8), 64);
    }

    #[test]
    fn the_answer_to_a_packet_over_the_cap_follows_the_header_that_crossed_it() {
        // One packet of 3 bytes, cap 2: the client sent seq 0, reads 1.
        assert_eq!(seq_past_cap(&[3, 0, 0, 0, 1, 2, 3], 2), 1);
        // A full chunk (seq 5) then one more header (seq 6) crossing it.
        let mut b = vec![0xff, 0xff, 0xff, 5];
        b.resize(4 + MAX_CHUNK, 0);
        b.extend_from_slice(&[1, 0, 0, 6]);
        assert_eq!(seq_past_cap(&b, MAX_CHUNK), 7);
    }
}
