//! Framing of typed messages: per-type length caps, then `Bytes` slices of the read buffer.

use bytes::{Bytes, BytesMut};

use super::error::PgError;

/// Tag byte plus the four-byte length.
pub const HEADER_LEN: usize = 5;

/// Size limits, in bytes of the declared length (which counts itself but not
/// the tag). The defaults follow PostgreSQL and libpq where they have a limit
/// and stay well under what a shard can hold per connection:
///
/// | field     | default  | messages |
/// |-----------|----------|----------|
/// | `startup` | 10 000   | startup packets (PostgreSQL's own `MAX_STARTUP_PACKET_LENGTH`) |
/// | `sql`     | 1 MiB    | Query `Q`, Parse `P` |
/// | `data`    | 64 MiB   | Bind `B`, FunctionCall `F`, CopyData `d`, DataRow `D`, FunctionCallResponse `V` |
/// | `meta`    | 1 MiB    | RowDescription `T`, ParameterDescription `t`, ErrorResponse `E`, NoticeResponse `N`, NotificationResponse `A`, Copy*Response `G`/`H`/`W`, NegotiateProtocolVersion `v` |
/// | `auth`    | 64 KiB   | PasswordMessage/SASL `p` (a JWT travels here), Authentication `R` |
/// | `small`   | 30 000   | everything else (Describe, Execute, Close, Sync, CommandComplete, ParameterStatus, ReadyForQuery, ...; libpq's limit for backend messages that are not long) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub startup: u32,
    pub sql: u32,
    pub data: u32,
    pub meta: u32,
    pub auth: u32,
    pub small: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            startup: 10_000,
            sql: 1 << 20,
            data: 64 << 20,
            meta: 1 << 20,
            auth: 64 << 10,
            small: 30_000,
        }
    }
}

/// Per-message-type maximum lengths for one direction. A zero entry means the
/// tag does not exist in this direction and is refused as unknown.
/// Built once per configuration and shared; lookups are one array index.
#[derive(Clone, PartialEq, Eq)]
pub struct Caps {
    max: [u32; 256],
    startup: u32,
}

impl std::fmt::Debug for Caps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (tag, max) in self.max.iter().enumerate() {
            if *max != 0 {
                m.entry(&super::error::TagName(tag as u8), max);
            }
        }
        m.finish()
    }
}

impl Caps {
    /// Caps for messages a client sends.
    pub fn frontend(l: &Limits) -> Caps {
        let mut c = Caps {
            max: [0; 256],
            startup: l.startup,
        };
        for t in [b'Q', b'P'] {
            c.max[t as usize] = l.sql;
        }
        for t in [b'B', b'F', b'd'] {
            c.max[t as usize] = l.data;
        }
        c.max[b'p' as usize] = l.auth;
        for t in [b'D', b'E', b'S', b'C', b'H', b'c', b'f', b'X'] {
            c.max[t as usize] = l.small;
        }
        c
    }

    /// Caps for messages a server sends.
    pub fn backend(l: &Limits) -> Caps {
        let mut c = Caps {
            max: [0; 256],
            startup: l.startup,
        };
        for t in [b'D', b'd', b'V'] {
            c.max[t as usize] = l.data;
        }
        for t in [b'T', b't', b'E', b'N', b'A', b'G', b'H', b'W', b'v'] {
            c.max[t as usize] = l.meta;
        }
        c.max[b'R' as usize] = l.auth;
        for t in [
            b'K', b'S', b'Z', b'C', b'I', b'1', b'2', b'3', b'n', b's', b'c',
        ] {
            c.max[t as usize] = l.small;
        }
        c
    }

    /// Overrides one tag's cap (0 makes the tag unknown).
    pub fn with_max(mut self, tag: u8, max: u32) -> Caps {
        self.max[tag as usize] = max;
        self
    }

    /// The cap for `tag`, `None` if the tag is unknown in this direction.
    pub fn max_for(&self, tag: u8) -> Option<u32> {
        match self.max[tag as usize] {
            0 => None,
            m => Some(m),
        }
    }

    /// The cap for startup-phase packets.
    pub fn startup_max(&self) -> u32 {
        self.startup
    }
}

/// One complete typed message, header included, sharing the read buffer's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    tag: u8,
    bytes: Bytes,
}

impl Frame {
    /// Wraps bytes that hold exactly one message (e.g. an encoder's output),
    /// checking that the header's length matches.
    pub fn from_bytes(bytes: Bytes) -> Result<Frame, PgError> {
        let tag = check_whole(&bytes)?;
        Ok(Frame { tag, bytes })
    }

    pub fn tag(&self) -> u8 {
        self.tag
    }

    /// The whole message, header included: what the allow path forwards.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The message body after the five-byte header.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// Length on the wire, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A frame cut without freezing, for rewriting values in place when masking
/// keeps their length (the memory is still shared with the read buffer, but
/// the two views are disjoint so writing is allowed without a copy).
#[derive(Debug, PartialEq, Eq)]
pub struct FrameMut {
    tag: u8,
    bytes: BytesMut,
}

impl FrameMut {
    pub fn tag(&self) -> u8 {
        self.tag
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole message, header included. Changing the header or any length
    /// inside the body is the caller's responsibility to get right.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    pub fn body(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    pub fn freeze(self) -> Frame {
        Frame {
            tag: self.tag,
            bytes: self.bytes.freeze(),
        }
    }
}

fn check_whole(bytes: &[u8]) -> Result<u8, PgError> {
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(PgError::InvalidLength {
            tag: bytes.first().copied().unwrap_or(0),
            len: bytes.len() as i64,
        });
    };
    let tag = header[0];
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len < 4 || len as usize + 1 != bytes.len() {
        return Err(PgError::InvalidLength {
            tag,
            len: len.into(),
        });
    }
    Ok(tag)
}

/// The total length (tag included) of the message at the front of `buf`, once
/// its header is there and passes the caps; `None` while the header is short.
/// The body may still be incomplete.
pub fn frame_len(buf: &[u8], caps: &Caps) -> Result<Option<usize>, PgError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        // Reject an unknown tag on its first byte: a peer speaking another
        // protocol should not get to make us wait for four more.
        if let Some(&tag) = buf.first()
            && caps.max_for(tag).is_none()
        {
            return Err(PgError::UnknownMessage { tag });
        }
        return Ok(None);
    };
    let tag = header[0];
    let max = caps.max_for(tag).ok_or(PgError::UnknownMessage { tag })?;
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len < 4 {
        return Err(PgError::InvalidLength {
            tag,
            len: len.into(),
        });
    }
    let len = len as u32;
    if len > max {
        return Err(PgError::MessageTooLarge { tag, len, max });
    }
    Ok(Some(len as usize + 1))
}

/// Cuts the next typed message off the front of `buf`. `Ok(None)`: more bytes
/// are needed, and `buf` has been given the capacity for the rest of this
/// message (only after its length passed the cap).
pub fn next_frame(buf: &mut BytesMut, caps: &Caps) -> Result<Option<Frame>, PgError> {
    Ok(next_frame_mut(buf, caps)?.map(FrameMut::freeze))
}

/// Like [`next_frame`], without freezing: for in-place masking.
pub fn next_frame_mut(buf: &mut BytesMut, caps: &Caps) -> Result<Option<FrameMut>, PgError> {
    let Some(total) = frame_len(buf, caps)? else {
        return Ok(None);
    };
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let tag = buf[0];
    Ok(Some(FrameMut {
        tag,
        bytes: buf.split_to(total),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps::frontend(&Limits::default())
    }

    #[test]
    fn cuts_frames_and_waits_for_more() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x09abcd\0S\0\0\0\x04X\0\0"[..]);
        let f = next_frame(&mut buf, &caps()).unwrap().unwrap();
        assert_eq!(f.tag(), b'Q');
        assert_eq!(f.body(), b"abcd\0");
        let f = next_frame(&mut buf, &caps()).unwrap().unwrap();
        assert_eq!((f.tag(), f.len()), (b'S', 5));
        assert!(next_frame(&mut buf, &caps()).unwrap().is_none());
        assert_eq!(&buf[..], b"X\0\0");
    }

    #[test]
    fn checks_length_before_reserving() {
        let mut buf = BytesMut::from(&b"Q\x7f\xff\xff\xff"[..]);
        let cap = buf.capacity();
        let err = next_frame(&mut buf, &caps()).unwrap_err();
        assert!(matches!(err, PgError::MessageTooLarge { tag: b'Q', max, .. } if max == 1 << 20));
        assert_eq!(buf.capacity(), cap);
        for len in [0i32, 3, -1, i32::MIN] {
            let mut buf = BytesMut::from(&b"S"[..]);
            buf.extend_from_slice(&len.to_be_bytes());
            assert_eq!(
                next_frame(&mut buf, &caps()).unwrap_err(),
                PgError::InvalidLength {
                    tag: b'S',
                    len: len.into()
                }
            );
        }
    }

    #[test]
    fn refuses_unknown_tags_at_once() {
        let mut buf = BytesMut::from(&b"G"[..]);
        assert_eq!(
            next_frame(&mut buf, &caps()).unwrap_err(),
            PgError::UnknownMessage { tag: b'G' }
        );
        let mut buf = BytesMut::from(&b"G"[..]);
        let backend = Caps::backend(&Limits::default());
        assert!(next_frame(&mut buf, &backend).unwrap().is_none());
    }

    #[test]
    fn reserves_the_rest_of_an_allowed_message() {
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(b"d\0\x01\0\x04");
        let backend = Caps::backend(&Limits::default());
        assert!(next_frame(&mut buf, &backend).unwrap().is_none());
        assert!(buf.capacity() > 0x10004);
    }

    #[test]
    fn frame_from_bytes_checks_the_header() {
        assert!(Frame::from_bytes(Bytes::from_static(b"S\0\0\0\x04")).is_ok());
        assert!(Frame::from_bytes(Bytes::from_static(b"S\0\0\0\x05")).is_err());
        assert!(Frame::from_bytes(Bytes::from_static(b"S\0")).is_err());
    }
}
