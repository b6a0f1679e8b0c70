//! Generic response packets: OK (0x00, or 0xFE ending a result set under
//! CLIENT_DEPRECATE_EOF), ERR (0xFF, with SQLSTATE) and EOF (0xFE).

use bytes::{BufMut, BytesMut};

use super::consts::{caps, status};
use super::error::MySqlError;
use super::frame::MAX_CHUNK;
use super::read::{Reader, put_lenenc, put_lenenc_bytes};

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xFE;
pub const ERR_HEADER: u8 = 0xFF;

/// Whether a payload read where rows (or column definitions) may come is the
/// end marker of that list: EOF, or OK with header 0xFE under
/// CLIENT_DEPRECATE_EOF. A row can start with 0xFE only as the 8-byte length
/// of a value of 16 MiB or more, so its payload is never this short; this is
/// the test MySQL's own client makes.
pub fn is_end_of_rows(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < MAX_CHUNK
}

/// Whether a payload is an ERR packet.
pub fn is_err(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR_HEADER)
}

/// An OK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket<'a> {
    /// 0x00, or 0xFE when it ends a result set under CLIENT_DEPRECATE_EOF.
    pub header: u8,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: &'a [u8],
    /// Raw session-state-change block (CLIENT_SESSION_TRACK and
    /// SERVER_SESSION_STATE_CHANGED), re-emitted unchanged.
    pub session_state: &'a [u8],
}

impl<'a> OkPacket<'a> {
    /// Parses an OK packet as the negotiated `capabilities` lay it out.
    pub fn parse(payload: &'a [u8], capabilities: u32) -> Result<OkPacket<'a>, MySqlError> {
        let mut r = Reader::new("OK", payload);
        let header = r.u8("header")?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(r.err("header is neither 0x00 nor 0xFE"));
        }
        let affected_rows = r.lenenc("affected rows")?;
        let last_insert_id = r.lenenc("last insert id")?;
        let (status, warnings) = if capabilities & caps::PROTOCOL_41 != 0 {
            (r.u16("status flags")?, r.u16("warnings")?)
        } else if capabilities & caps::TRANSACTIONS != 0 {
            (r.u16("status flags")?, 0)
        } else {
            (0, 0)
        };
        let (info, session_state) = if capabilities & caps::SESSION_TRACK != 0 {
            // Servers omit the info string entirely when it is empty.
            let info = if r.is_empty() {
                &[][..]
            } else {
                r.lenenc_bytes("info")?
            };
            let state = if status & status::SESSION_STATE_CHANGED != 0 {
                r.lenenc_bytes("session state changes")?
            } else {
                &[][..]
            };
            (info, state)
        } else {
            (r.rest(), &[][..])
        };
        Ok(OkPacket {
            header,
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info,
            session_state,
        })
    }

    pub fn encode(&self, out: &mut BytesMut, capabilities: u32) {
        out.put_u8(self.header);
        put_lenenc(out, self.affected_rows);
        put_lenenc(out, self.last_insert_id);
        if capabilities & caps::PROTOCOL_41 != 0 {
            out.put_u16_le(self.status);
            out.put_u16_le(self.warnings);
        } else if capabilities & caps::TRANSACTIONS != 0 {
            out.put_u16_le(self.status);
        }
        if capabilities & caps::SESSION_TRACK != 0 {
            let state = self.status & status::SESSION_STATE_CHANGED != 0;
            if !self.info.is_empty() || state {
                put_lenenc_bytes(out, self.info);
            }
            if state {
                put_lenenc_bytes(out, self.session_state);
            }
        } else {
            out.extend_from_slice(self.info);
        }
    }
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    pub code: u16,
    /// Five characters; absent in errors sent before capabilities are agreed.
    pub sqlstate: Option<[u8; 5]>,
    pub message: &'a [u8],
}

impl<'a> ErrPacket<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<ErrPacket<'a>, MySqlError> {
        let mut r = Reader::new("ERR", payload);
        if r.u8("header")? != ERR_HEADER {
            return Err(r.err("header is not 0xFF"));
        }
        let code = r.u16("error code")?;
        let sqlstate = if r.peek() == Some(b'#') {
            r.u8("sqlstate marker")?;
            let s = r.take(5, "sqlstate")?;
            Some([s[0], s[1], s[2], s[3], s[4]])
        } else {
            None
        };
        Ok(ErrPacket {
            code,
            sqlstate,
            message: r.rest(),
        })
    }

    /// The payload; the SQLSTATE marker is written when there is one (every
    /// client after the handshake expects it under CLIENT_PROTOCOL_41).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(ERR_HEADER);
        out.put_u16_le(self.code);
        if let Some(s) = self.sqlstate {
            out.put_u8(b'#');
            out.extend_from_slice(&s);
        }
        out.extend_from_slice(self.message);
    }
}

/// An EOF packet (CLIENT_PROTOCOL_41 layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

impl EofPacket {
    pub fn parse(payload: &[u8]) -> Result<EofPacket, MySqlError> {
        let mut r = Reader::new("EOF", payload);
        if r.u8("header")? != EOF_HEADER {
            return Err(r.err("header is not 0xFE"));
        }
        if r.is_empty() {
            // Pre-4.1 EOF: the header alone.
            return Ok(EofPacket::default());
        }
        let warnings = r.u16("warnings")?;
        let status = r.u16("status flags")?;
        if !r.is_empty() {
            return Err(r.err("trailing bytes"));
        }
        Ok(EofPacket { warnings, status })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(EOF_HEADER);
        out.put_u16_le(self.warnings);
        out.put_u16_le(self.status);
    }
}

/// The end of a row list, whichever form it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOfRows<'a> {
    Eof(EofPacket),
    Ok(OkPacket<'a>),
}

impl<'a> EndOfRows<'a> {
    /// Reads the end marker as the negotiated capabilities have it.
    pub fn parse(payload: &'a [u8], capabilities: u32) -> Result<EndOfRows<'a>, MySqlError> {
        if capabilities & caps::DEPRECATE_EOF != 0 {
            OkPacket::parse(payload, capabilities).map(EndOfRows::Ok)
        } else {
            EofPacket::parse(payload).map(EndOfRows::Eof)
        }
    }

    /// Server status: `MORE_RESULTS_EXISTS` says another result follows.
    pub fn status(&self) -> u16 {
        match self {
            EndOfRows::Eof(e) => e.status,
            EndOfRows::Ok(o) => o.status,
        }
    }
}
