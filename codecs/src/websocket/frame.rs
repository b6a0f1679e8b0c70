//! Frames (RFC 6455 §5.2): a streaming decoder and an encoder.

use bytes::{Buf, Bytes, BytesMut};

use super::WsError;

/// Frame opcodes; the reserved ones are refused when decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    pub fn from_u8(b: u8) -> Result<Opcode, WsError> {
        Ok(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => return Err(WsError::ReservedOpcode(other)),
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, Ping, Pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Who sent the frames a decoder reads: client frames must be masked,
/// server frames must not (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

/// A frame's header, as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: Opcode,
    /// The masking key (client frames).
    pub mask: Option<[u8; 4]>,
    /// Payload length, already checked against the decoder's cap.
    pub len: u64,
}

/// What [`FrameDecoder::decode`] found next. Every frame is `Header`, zero
/// or more `Payload`s (unmasked), then `End`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    Header(FrameHeader),
    Payload(Bytes),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
    },
}

/// Decodes the frames one peer sends, across as many reads as it takes.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    from: Sender,
    max_frame: u64,
    state: State,
}

impl FrameDecoder {
    /// `max_frame`: the largest payload accepted in one frame.
    pub fn new(from: Sender, max_frame: u64) -> FrameDecoder {
        FrameDecoder {
            from,
            max_frame,
            state: State::Header,
        }
    }

    /// Between frames (no header or payload half-read).
    pub fn at_frame_boundary(&self) -> bool {
        self.state == State::Header
    }

    /// Consume from the front of `buf` and return the next event, or
    /// `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<FrameEvent>, WsError> {
        match self.state {
            State::Header => {
                let Some(h) = self.header(buf)? else {
                    return Ok(None);
                };
                self.state = State::Payload {
                    remaining: h.len,
                    mask: h.mask,
                    offset: 0,
                };
                Ok(Some(FrameEvent::Header(h)))
            }
            State::Payload { remaining: 0, .. } => {
                self.state = State::Header;
                Ok(Some(FrameEvent::End))
            }
            State::Payload {
                remaining,
                mask,
                offset,
            } => {
                if buf.is_empty() {
                    return Ok(None);
                }
                // Bounded by buf.len(), so it fits in usize.
                let n = remaining.min(buf.len() as u64) as usize;
                let mut piece = buf.split_to(n);
                if let Some(key) = mask {
                    apply_mask(&mut piece, key, offset);
                }
                self.state = State::Payload {
                    remaining: remaining - n as u64,
                    mask,
                    offset: (offset + n) % 4,
                };
                Ok(Some(FrameEvent::Payload(piece.freeze())))
            }
        }
    }

    fn header(&self, buf: &mut BytesMut) -> Result<Option<FrameHeader>, WsError> {
        let [b0, b1, ..] = buf[..] else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_u8(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() && (!fin || len7 > 125) {
            return Err(WsError::BadControlFrame);
        }
        match (self.from, masked) {
            (Sender::Client, false) => return Err(WsError::UnmaskedClientFrame),
            (Sender::Server, true) => return Err(WsError::MaskedServerFrame),
            _ => {}
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < need {
            return Ok(None);
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                u64::from_be_bytes(b)
            }
            _ => u64::from(len7),
        };
        let shortest = match ext {
            2 => len >= 126,
            8 => len > 0xffff && len >> 63 == 0,
            _ => true,
        };
        if !shortest {
            return Err(WsError::BadLength);
        }
        if len > self.max_frame {
            return Err(WsError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let mask = masked.then(|| [buf[need - 4], buf[need - 3], buf[need - 2], buf[need - 1]]);
        buf.advance(need);
        Ok(Some(FrameHeader {
            fin,
            opcode,
            mask,
            len,
        }))
    }
}

/// XOR `data` with the key, `offset` bytes into the payload.
fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// Write one frame. `mask`: the key a client must use (the caller draws it
/// at random); `None` for a server. Refuses a fragmented or over-125-byte
/// control frame.
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    out: &mut BytesMut,
) -> Result<(), WsError> {
    let header = FrameHeader {
        fin,
        opcode,
        mask,
        len: payload.len() as u64,
    };
    out.reserve(payload.len() + 14);
    encode_frame_header(&header, out)?;
    let body = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[body..], key, 0);
    }
    Ok(())
}

/// Write a frame header alone (length in its shortest form), for a relay
/// that streams the payload after it: a decoded header re-encodes to the
/// bytes it came from, and payload pieces re-masked with [`mask_payload`]
/// under the same key do too.
pub fn encode_frame_header(h: &FrameHeader, out: &mut BytesMut) -> Result<(), WsError> {
    if h.opcode.is_control() && (!h.fin || h.len > 125) {
        return Err(WsError::BadControlFrame);
    }
    if h.len >> 63 != 0 {
        return Err(WsError::BadLength);
    }
    out.extend_from_slice(&[u8::from(h.fin) << 7 | h.opcode.as_u8()]);
    let m = if h.mask.is_some() { 0x80 } else { 0 };
    match h.len {
        n if n < 126 => out.extend_from_slice(&[m | n as u8]),
        n if n <= 0xffff => {
            out.extend_from_slice(&[m | 126]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.extend_from_slice(&[m | 127]);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    if let Some(key) = h.mask {
        out.extend_from_slice(&key);
    }
    Ok(())
}

/// Mask (or unmask: XOR is its own inverse) a payload piece that starts
/// `offset` bytes into its frame's payload.
pub fn mask_payload(data: &mut [u8], key: [u8; 4], offset: u64) {
    apply_mask(data, key, (offset % 4) as usize);
}

/// Write a Close frame with `code` and `reason` (reason cut to fit 125
/// bytes at a character boundary); no code writes an empty Close.
pub fn encode_close(
    code: Option<u16>,
    reason: &str,
    mask: Option<[u8; 4]>,
    out: &mut BytesMut,
) -> Result<(), WsError> {
    let mut payload = Vec::with_capacity(125);
    if let Some(c) = code {
        payload.extend_from_slice(&c.to_be_bytes());
        let mut cut = reason.len().min(123);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..cut]);
    }
    encode_frame(true, Opcode::Close, &payload, mask, out)
}
