//! Packet framing: 3-byte length, 1-byte sequence id, payloads of 16 MiB - 1
//! continued in further packets. Lengths are capped before they are trusted.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::MySqlError;

/// Length (3 bytes, little-endian) plus sequence id.
pub const HEADER_LEN: usize = 4;
/// The largest payload one physical packet carries; a packet of exactly this
/// length says "the payload continues in the next packet".
pub const MAX_CHUNK: usize = 0xFF_FFFF;

/// One logical packet: one physical packet, or a run of 16 MiB - 1 chunks
/// ended by a shorter one, joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first physical packet.
    pub seq: u8,
    /// Sequence id of the last physical packet; the next packet of the
    /// exchange (either direction) carries `last_seq + 1`.
    pub last_seq: u8,
    /// The payload. For a single physical packet a slice of [`Packet::raw`];
    /// joined (one copy) for a multi-packet payload.
    pub payload: Bytes,
    /// The packet(s) as they came off the wire, headers included: the
    /// allow path forwards these bytes unchanged.
    pub raw: Bytes,
}

impl Packet {
    /// The sequence id the next packet of this exchange must carry.
    pub fn next_seq(&self) -> u8 {
        self.last_seq.wrapping_add(1)
    }

    /// Refuses a packet that does not carry `expected` as its sequence id.
    pub fn check_seq(&self, expected: u8) -> Result<(), MySqlError> {
        if self.seq == expected {
            Ok(())
        } else {
            Err(MySqlError::Sequence {
                expected,
                got: self.seq,
            })
        }
    }

    /// The first payload byte (0 for an empty payload): what kind of
    /// response packet this is (0x00 OK, 0xFE EOF/switch, 0xFF ERR, ...).
    pub fn header(&self) -> u8 {
        self.payload.first().copied().unwrap_or(0)
    }
}

/// Where the next logical packet lies at the front of a buffer, found
/// without cutting it (see [`packet_extent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Sequence id of the first physical packet.
    pub seq: u8,
    /// Sequence id of the last physical packet.
    pub last_seq: u8,
    /// Physical packets it spans (1 unless the payload reaches 16 MiB - 1).
    pub chunks: usize,
    /// The joined payload's length.
    pub payload_len: usize,
    /// Bytes it takes in the buffer, headers included.
    pub len: usize,
}

impl Extent {
    /// The sequence id the next packet of this exchange must carry.
    pub fn next_seq(&self) -> u8 {
        self.last_seq.wrapping_add(1)
    }
}

/// Finds the next logical packet at the front of `buf` without copying or
/// cutting anything, or `Ok(None)` when more bytes are needed: the same
/// checks as [`next_packet`], for callers that read a single-chunk packet
/// in place (`&buf[HEADER_LEN..len]`) and then drop `len` bytes.
pub fn packet_extent(buf: &[u8], max_payload: usize) -> Result<Option<Extent>, MySqlError> {
    let mut at = 0usize;
    let mut total = 0usize;
    let mut chunks = 0usize;
    let first_seq = match buf.get(3) {
        Some(&s) => s,
        None => return Ok(None),
    };
    let last_seq = loop {
        let Some(head) = buf.get(at..at + HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        let seq = head[3];
        let expected = first_seq.wrapping_add(chunks as u8);
        if seq != expected {
            return Err(MySqlError::Sequence { expected, got: seq });
        }
        total += len;
        if total > max_payload {
            return Err(MySqlError::PacketTooLarge {
                len: total,
                max: max_payload,
            });
        }
        at += HEADER_LEN + len;
        chunks += 1;
        if buf.len() < at {
            return Ok(None);
        }
        if len < MAX_CHUNK {
            break seq;
        }
    };
    Ok(Some(Extent {
        seq: first_seq,
        last_seq,
        chunks,
        payload_len: total,
        len: at,
    }))
}

/// Cuts the next logical packet off the front of `buf`, or `Ok(None)` when
/// more bytes are needed. `max_payload` caps the joined payload: the check
/// runs on the headers already received, so a hostile peer announcing
/// chunk after chunk is refused before its payload is buffered in full.
/// Sequence ids inside a multi-packet payload must follow each other.
pub fn next_packet(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Packet>, MySqlError> {
    let Some(Extent {
        seq: first_seq,
        last_seq,
        chunks,
        payload_len: total,
        len: at,
    }) = packet_extent(buf, max_payload)?
    else {
        return Ok(None);
    };
    let raw = buf.split_to(at).freeze();
    let payload = if chunks == 1 {
        raw.slice(HEADER_LEN..)
    } else {
        join_chunks(&raw, total)
    };
    Ok(Some(Packet {
        seq: first_seq,
        last_seq,
        payload,
        raw,
    }))
}

/// The payloads of consecutive, already validated packets, concatenated.
fn join_chunks(raw: &Bytes, total: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(total);
    let mut rest = &raw[..];
    while let Some(head) = rest.get(..HEADER_LEN) {
        let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
        let end = (HEADER_LEN + len).min(rest.len());
        out.extend_from_slice(&rest[HEADER_LEN..end]);
        rest = &rest[end..];
    }
    out.freeze()
}

/// Appends `payload` as packets starting at sequence id `seq`, split into
/// 16 MiB - 1 chunks (with the empty packet that ends a payload whose length
/// is a multiple of the chunk size). Returns the next sequence id.
pub fn write_packet(out: &mut BytesMut, seq: u8, payload: &[u8]) -> u8 {
    let mut seq = seq;
    let mut rest = payload;
    out.reserve(payload.len() + HEADER_LEN * (payload.len() / MAX_CHUNK + 1));
    loop {
        let n = rest.len().min(MAX_CHUNK);
        put_header(out, n, seq);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < MAX_CHUNK {
            return seq;
        }
    }
}

fn put_header(out: &mut BytesMut, len: usize, seq: u8) {
    // `len` is at most MAX_CHUNK, so three bytes hold it.
    out.put_uint_le(len as u64, 3);
    out.put_u8(seq);
}

/// Appends a packet whose payload `f` writes in place, then patches the
/// header (or splits the payload into chunks if it grew past 16 MiB - 1).
/// On error the buffer is left as it was. Returns the next sequence id.
pub fn encode_packet(
    out: &mut BytesMut,
    seq: u8,
    f: impl FnOnce(&mut BytesMut) -> Result<(), MySqlError>,
) -> Result<u8, MySqlError> {
    let start = out.len();
    out.put_bytes(0, HEADER_LEN);
    if let Err(e) = f(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - HEADER_LEN;
    if len < MAX_CHUNK {
        out[start..start + 3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
        out[start + 3] = seq;
        return Ok(seq.wrapping_add(1));
    }
    // Rare (values of 16 MiB and more): one copy to lay out the chunks.
    let payload = out.split_off(start + HEADER_LEN);
    out.truncate(start);
    Ok(write_packet(out, seq, &payload))
}
