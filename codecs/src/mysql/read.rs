//! A bounds-checked cursor over a payload and the writers for MySQL's
//! integer and string encodings; every read is fallible, nothing panics.

use bytes::{BufMut, BytesMut};

use super::error::MySqlError;

/// Length-encoded integer prefixes.
const LENENC_2: u8 = 0xFC;
const LENENC_3: u8 = 0xFD;
const LENENC_8: u8 = 0xFE;
/// NULL in a text row; never a valid length-encoded integer.
pub const NULL_VALUE: u8 = 0xFB;

#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    packet: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(packet: &'static str, buf: &'a [u8]) -> Self {
        Reader { buf, packet }
    }

    pub fn err(&self, what: &'static str) -> MySqlError {
        MySqlError::Malformed {
            packet: self.packet,
            what,
        }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MySqlError> {
        if n > self.buf.len() {
            return Err(self.err(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The rest of the payload.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, MySqlError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, MySqlError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, MySqlError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian unsigned integer of `n` (<= 8) bytes.
    pub fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, MySqlError> {
        let b = self.take(n, what)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    }

    /// A length-encoded integer. 0xFB (NULL) and 0xFF are not integers.
    pub fn lenenc(&mut self, what: &'static str) -> Result<u64, MySqlError> {
        match self.u8(what)? {
            b @ 0..=0xFA => Ok(u64::from(b)),
            LENENC_2 => self.uint(2, what),
            LENENC_3 => self.uint(3, what),
            LENENC_8 => self.uint(8, what),
            _ => Err(self.err(what)),
        }
    }

    /// A length-encoded string: the length is checked against what is left
    /// in the payload before it is used.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], MySqlError> {
        let len = self.lenenc(what)?;
        let len = usize::try_from(len).map_err(|_| self.err(what))?;
        self.take(len, what)
    }

    /// A length-encoded string, or `None` for the NULL marker 0xFB.
    pub fn lenenc_or_null(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, MySqlError> {
        if self.peek() == Some(NULL_VALUE) {
            self.buf = &self.buf[1..];
            return Ok(None);
        }
        self.lenenc_bytes(what).map(Some)
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub fn nul_str(&mut self, what: &'static str) -> Result<&'a [u8], MySqlError> {
        let Some(end) = memchr::memchr(0, self.buf) else {
            return Err(self.err(what));
        };
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// A NUL-terminated string, or the rest of the payload when no NUL ends
    /// it (servers and clients disagree on the last field of some packets).
    pub fn nul_str_or_rest(&mut self) -> &'a [u8] {
        match memchr::memchr(0, self.buf) {
            Some(end) => {
                let s = &self.buf[..end];
                self.buf = &self.buf[end + 1..];
                s
            }
            None => self.rest(),
        }
    }
}

/// Bytes a length-encoded integer `n` takes.
pub fn lenenc_len(n: u64) -> usize {
    match n {
        0..0xFB => 1,
        0xFB..0x1_0000 => 3,
        0x1_0000..0x100_0000 => 4,
        _ => 9,
    }
}

pub fn put_lenenc(out: &mut BytesMut, n: u64) {
    match n {
        0..0xFB => out.put_u8(n as u8),
        0xFB..0x1_0000 => {
            out.put_u8(LENENC_2);
            out.put_u16_le(n as u16);
        }
        0x1_0000..0x100_0000 => {
            out.put_u8(LENENC_3);
            out.put_uint_le(n, 3);
        }
        _ => {
            out.put_u8(LENENC_8);
            out.put_u64_le(n);
        }
    }
}

pub fn put_lenenc_bytes(out: &mut BytesMut, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A NUL-terminated string; refuses one with a NUL inside.
pub fn put_nul_str(out: &mut BytesMut, s: &[u8], what: &'static str) -> Result<(), MySqlError> {
    if memchr::memchr(0, s).is_some() {
        return Err(MySqlError::InteriorNul { what });
    }
    out.extend_from_slice(s);
    out.put_u8(0);
    Ok(())
}
