//! Messages from frames (RFC 6455 §5.4): fragment reassembly for the
//! recorder, with a cap on what is kept of each message.

use bytes::{Bytes, BytesMut};

use super::{FrameEvent, Opcode, WsError};

/// One complete message. `data` holds at most the assembler's cap; the bytes
/// past it are counted in `dropped`, never buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Text, Binary, Close, Ping or Pong (never Continuation).
    pub opcode: Opcode,
    pub data: Bytes,
    pub dropped: u64,
}

/// Feeds on a [`super::FrameDecoder`]'s events and yields messages.
#[derive(Debug, Clone)]
pub struct MessageAssembler {
    max_message: usize,
    /// The opcode of the fragmented data message open, if any.
    open: Option<Opcode>,
    data: BytesMut,
    dropped: u64,
    /// The frame being read: its opcode (Continuation resolved) and FIN.
    frame: Option<(Opcode, bool)>,
    control: BytesMut,
}

impl MessageAssembler {
    /// `max_message`: bytes of each data message kept (a recording cap).
    pub fn new(max_message: usize) -> MessageAssembler {
        MessageAssembler {
            max_message,
            open: None,
            data: BytesMut::new(),
            dropped: 0,
            frame: None,
            control: BytesMut::new(),
        }
    }

    /// Take one decoder event; a message comes back at the end of its last
    /// frame.
    pub fn push(&mut self, event: &FrameEvent) -> Result<Option<Message>, WsError> {
        match event {
            FrameEvent::Header(h) => {
                let opcode = match (h.opcode, self.open) {
                    (Opcode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
                    (Opcode::Continuation, Some(op)) => op,
                    (op, _) if op.is_control() => op,
                    (_, Some(_)) => return Err(WsError::MessageInterleaved),
                    (op, None) => {
                        self.open = Some(op);
                        op
                    }
                };
                self.frame = Some((opcode, h.fin));
                Ok(None)
            }
            FrameEvent::Payload(p) => {
                match self.frame {
                    // Control payloads are at most 125 bytes (decoder-checked).
                    Some((op, _)) if op.is_control() => self.control.extend_from_slice(p),
                    _ => {
                        let room = self.max_message.saturating_sub(self.data.len());
                        let keep = room.min(p.len());
                        self.data.extend_from_slice(&p[..keep]);
                        self.dropped += (p.len() - keep) as u64;
                    }
                }
                Ok(None)
            }
            FrameEvent::End => self.end_frame(),
        }
    }

    fn end_frame(&mut self) -> Result<Option<Message>, WsError> {
        let Some((opcode, fin)) = self.frame.take() else {
            return Ok(None);
        };
        if opcode.is_control() {
            let data = self.control.split().freeze();
            if opcode == Opcode::Close {
                parse_close(&data)?;
            }
            return Ok(Some(Message {
                opcode,
                data,
                dropped: 0,
            }));
        }
        if !fin {
            return Ok(None);
        }
        self.open = None;
        Ok(Some(Message {
            opcode,
            data: self.data.split().freeze(),
            dropped: std::mem::take(&mut self.dropped),
        }))
    }
}

/// A Close payload: empty, or a status code and a UTF-8 reason. Codes that
/// may not be sent (below 1000, 1004-1006, 1015, 1016-2999, 5000 and up)
/// are refused (RFC 6455 §7.4).
pub fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, WsError> {
    let [hi, lo, reason @ ..] = payload else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(WsError::BadClose)
        };
    };
    let code = u16::from_be_bytes([*hi, *lo]);
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(WsError::BadClose);
    }
    let reason = std::str::from_utf8(reason).map_err(|_| WsError::BadClose)?;
    Ok(Some((code, reason)))
}
