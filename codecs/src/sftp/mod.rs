//! SFTP version 3 (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it),
//! sans-IO: the `sftp` subsystem's byte stream cut into packets in either
//! direction ([`frame`]), requests and replies decoded lazily from a
//! packet's bytes ([`Request`], [`Reply`], borrowed slices, no copies), and
//! the one packet a gateway writes itself: a `STATUS` reply
//! ([`encode_status`]).
//!
//! Packet layout: `uint32 length` (of what follows), `byte type`, then for
//! everything but `INIT`/`VERSION` a `uint32 request-id`, then the type's
//! fields. Strings are `uint32 length` + bytes. The length is checked
//! against a cap before anything is buffered for it.

mod packet;

pub use packet::{Extension, Reply, Request};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Packet types (draft 02 §3).
pub mod kind {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// `SSH_FXF_*` open flags.
pub mod pflags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// `SSH_FX_*` status codes.
pub mod status {
    pub const OK: u32 = 0;
    pub const EOF: u32 = 1;
    pub const NO_SUCH_FILE: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 3;
    pub const FAILURE: u32 = 4;
    pub const BAD_MESSAGE: u32 = 5;
    pub const OP_UNSUPPORTED: u32 = 8;
}

/// The default cap on a packet's length field: OpenSSH's own limit
/// (`SFTP_MAX_MSG_LENGTH`, 256 KiB) plus room for a WRITE's header.
pub const MAX_PACKET: usize = 256 * 1024 + 1024;

/// What is wrong with an SFTP byte stream or packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SftpError {
    #[error("sftp packet of {len} bytes exceeds the cap of {max}")]
    PacketTooLarge { len: usize, max: usize },
    #[error("empty sftp packet")]
    Empty,
    #[error("sftp packet type {kind} is truncated at {field}")]
    Truncated { kind: u8, field: &'static str },
    #[error("sftp packet type {kind} has {extra} bytes past its fields")]
    Trailing { kind: u8, extra: usize },
    #[error("sftp packet type {kind} is not a {side}")]
    WrongSide { kind: u8, side: &'static str },
}

/// One whole packet as it crossed (length prefix included), to forward
/// unchanged once judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
}

impl Frame {
    /// The bytes as they crossed, length prefix included.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    /// The packet type.
    pub fn kind(&self) -> u8 {
        // `frame` never yields a packet without its type byte.
        self.raw.get(4).copied().unwrap_or(0)
    }

    /// After the type byte.
    fn body(&self) -> &[u8] {
        self.raw.get(5..).unwrap_or_default()
    }

    /// The request id (every type but INIT and VERSION has one).
    pub fn id(&self) -> Option<u32> {
        match self.kind() {
            kind::INIT | kind::VERSION => None,
            _ => self
                .body()
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        }
    }
}

/// Cut the next whole packet off `buf`; `Ok(None)`: more bytes are needed.
/// A length over `max` (or zero) is an error before anything is buffered.
pub fn frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, SftpError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 {
        return Err(SftpError::Empty);
    }
    if len > max {
        return Err(SftpError::PacketTooLarge { len, max });
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    Ok(Some(Frame {
        raw: buf.split_to(4 + len).freeze(),
    }))
}

/// A `STATUS` reply (`SSH_FXP_STATUS`) with an English message, appended.
pub fn encode_status(id: u32, code: u32, message: &str, out: &mut BytesMut) {
    let len = 1 + 4 + 4 + 4 + message.len() + 4;
    out.reserve(4 + len);
    out.put_u32(len as u32);
    out.put_u8(kind::STATUS);
    out.put_u32(id);
    out.put_u32(code);
    out.put_u32(message.len() as u32);
    out.put_slice(message.as_bytes());
    // Language tag: empty.
    out.put_u32(0);
}

/// Reads a packet's fields in order; every length is checked against what
/// is left before it is used.
pub(crate) struct Fields<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(kind: u8, rest: &'a [u8]) -> Fields<'a> {
        Fields { kind, rest }
    }

    fn short(&self, field: &'static str) -> SftpError {
        SftpError::Truncated {
            kind: self.kind,
            field,
        }
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, SftpError> {
        if self.rest.len() < 4 {
            return Err(self.short(field));
        }
        let mut b = self.rest;
        let v = b.get_u32();
        self.rest = b;
        Ok(v)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, SftpError> {
        if self.rest.len() < 8 {
            return Err(self.short(field));
        }
        let mut b = self.rest;
        let v = b.get_u64();
        self.rest = b;
        Ok(v)
    }

    pub(crate) fn string(&mut self, field: &'static str) -> Result<&'a [u8], SftpError> {
        let len = self.u32(field)? as usize;
        if self.rest.len() < len {
            return Err(self.short(field));
        }
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(s)
    }

    /// The rest, unread (ATTRS and extension data are not decoded field by field).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn end(&self) -> Result<(), SftpError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(SftpError::Trailing {
                kind: self.kind,
                extra: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
