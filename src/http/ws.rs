//! The WebSocket phase of an HTTP connection, after the upstream's `101`:
//! frames relayed both ways as they arrive (a frame's payload is never held
//! whole; a control frame, at most 125 bytes, is held until its end so a
//! bad one is not passed on), each decoded by the codec on the way, which
//! enforces masking direction (client frames masked, server frames not),
//! control-frame rules, RSV bits, opcodes and the frame cap. Messages are
//! reassembled, capped, for the recording only: one record per message
//! ([`super::wsrec`]), written before the message's last bytes are
//! forwarded (a message longer than one read has its first bytes forwarded
//! before). With a Kubernetes channel sub-protocol each message's channel
//! byte is checked before it is forwarded (unknown channel, or a channel of
//! the other side: refused).
//!
//! A violation fails the connection: Close 1002 (1009 for a frame over the
//! cap, 1007 for a bad close payload) to both sides where the stream is
//! between frames, then both connections are closed.

use std::cell::Cell;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use tollgate_codecs::websocket::k8s::{Channel, ChannelProtocol, decode_channel_message};
use tollgate_codecs::websocket::{
    FrameDecoder, FrameEvent, FrameHeader, Message, MessageAssembler, Opcode, Sender, WsError,
    encode_close, encode_frame_header, mask_payload,
};

use super::io::{Meter, Peer, Side};
use super::wsrec;
use crate::pipeline::{EndReason, FrameClock};
use crate::recording::SessionRecording;
use crate::tls::{ReadHalf, WriteHalf};

/// What the relay needs to know of the negotiated connection.
pub(crate) struct WsSetup {
    pub k8s: Option<ChannelProtocol>,
    pub max_frame: u64,
    pub keep: usize,
}

/// How one direction ended without a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// A Close frame passed: nothing more may follow from this peer.
    Closed,
    /// The peer closed its connection.
    Eof,
}

/// Why one direction failed.
#[derive(Debug)]
enum Fault {
    /// The reading peer broke the protocol.
    Protocol(Peer, WsError),
    Io(Peer, String),
    Recorder(String),
}

/// One direction's decoding state.
struct Pump<'a> {
    from: Peer,
    decoder: FrameDecoder,
    assembler: MessageAssembler,
    k8s: Option<ChannelProtocol>,
    /// The control frame being read, held until its end.
    control: Option<(FrameHeader, BytesMut)>,
    /// The data frame being forwarded and the payload bytes passed so far.
    data: Option<(FrameHeader, u64)>,
    /// Bytes of the open data message so far (the channel byte is its first).
    message_len: u64,
    out: BytesMut,
    /// The written stream is between frames (a Close may be written).
    boundary: &'a Cell<bool>,
    recording: &'a SessionRecording,
    clock: Option<&'a FrameClock>,
    closed: bool,
}

fn sender(p: Peer) -> Sender {
    match p {
        Peer::Client => Sender::Client,
        Peer::Upstream => Sender::Server,
    }
}

fn to(p: Peer) -> Peer {
    match p {
        Peer::Client => Peer::Upstream,
        Peer::Upstream => Peer::Client,
    }
}

impl Pump<'_> {
    /// Take every event the buffer holds, appending what to forward to `out`.
    async fn events(&mut self, buf: &mut BytesMut) -> Result<(), Fault> {
        while !self.closed {
            let Some(ev) = self
                .decoder
                .decode(buf)
                .map_err(|e| Fault::Protocol(self.from, e))?
            else {
                return Ok(());
            };
            let message = self
                .assembler
                .push(&ev)
                .map_err(|e| Fault::Protocol(self.from, e))?;
            match ev {
                FrameEvent::Header(h) => self.header(h)?,
                FrameEvent::Payload(p) => self.payload(p)?,
                FrameEvent::End => self.end()?,
            }
            if let Some(m) = message {
                self.message(&m).await?;
            }
        }
        Ok(())
    }

    fn header(&mut self, h: FrameHeader) -> Result<(), Fault> {
        if h.opcode.is_control() {
            self.control = Some((h, BytesMut::with_capacity(h.len as usize)));
            return Ok(());
        }
        if self.k8s.is_some() && h.opcode == Opcode::Text {
            return Err(Fault::Protocol(self.from, WsError::Channel("text message")));
        }
        encode_frame_header(&h, &mut self.out).map_err(|e| Fault::Protocol(self.from, e))?;
        self.data = Some((h, 0));
        Ok(())
    }

    fn payload(&mut self, p: Bytes) -> Result<(), Fault> {
        if let Some((_, held)) = &mut self.control {
            held.extend_from_slice(&p);
            return Ok(());
        }
        let Some((h, offset)) = &mut self.data else {
            return Ok(());
        };
        if let (Some(proto), 0, Some(&first)) = (self.k8s, self.message_len, p.first()) {
            check_channel(proto, sender(self.from), first)
                .map_err(|e| Fault::Protocol(self.from, e))?;
        }
        let start = self.out.len();
        self.out.extend_from_slice(&p);
        if let Some(key) = h.mask {
            mask_payload(&mut self.out[start..], key, *offset);
        }
        *offset += p.len() as u64;
        self.message_len += p.len() as u64;
        Ok(())
    }

    fn end(&mut self) -> Result<(), Fault> {
        if let Some((h, held)) = self.control.take() {
            encode_frame_header(&h, &mut self.out).map_err(|e| Fault::Protocol(self.from, e))?;
            let start = self.out.len();
            self.out.extend_from_slice(&held);
            if let Some(key) = h.mask {
                mask_payload(&mut self.out[start..], key, 0);
            }
        } else if let Some((h, _)) = self.data.take()
            && h.fin
        {
            self.message_len = 0;
        }
        if let Some(c) = self.clock {
            c.progress();
        }
        Ok(())
    }

    /// A whole message: checked (Kubernetes channels) and recorded.
    async fn message(&mut self, m: &Message) -> Result<(), Fault> {
        if let Some(proto) = self.k8s {
            decode_channel_message(proto, sender(self.from), m)
                .map_err(|e| Fault::Protocol(self.from, e))?;
        }
        if m.opcode == Opcode::Close {
            self.closed = true;
        }
        if !self.recording.enabled() {
            return Ok(());
        }
        let rec = wsrec::message(m.opcode, m.data.len() as u64 + m.dropped, &m.data);
        let at = Instant::now();
        let r = match self.from {
            Peer::Client => self.recording.client_data(at, &rec).await,
            Peer::Upstream => self.recording.target_data(at, &rec).await,
        };
        r.map_err(|e| Fault::Recorder(e.to_string()))?
            .forwardable()
            .await
            .map_err(|e| Fault::Recorder(e.to_string()))
    }

    /// Forward what the last events produced.
    async fn flush(&mut self, w: &mut WriteHalf) -> Result<(), Fault> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.boundary.set(false);
        w.write_all(self.out.split().freeze())
            .await
            .map_err(|e| Fault::Io(to(self.from), e.to_string()))?;
        self.boundary.set(self.data.is_none());
        Ok(())
    }
}

/// A channel byte `from` may start a message with.
fn check_channel(proto: ChannelProtocol, from: Sender, b: u8) -> Result<(), WsError> {
    if b == 255 && proto == ChannelProtocol::V5 {
        return Ok(());
    }
    match Channel::from_u8(b) {
        None => Err(WsError::Channel("unknown channel")),
        Some(c) if c.writer() != from => Err(WsError::Channel("channel written by the wrong side")),
        Some(_) => Ok(()),
    }
}

async fn pump(
    mut p: Pump<'_>,
    r: &mut ReadHalf,
    buf: &mut BytesMut,
    meter: Meter<'_>,
    w: &mut WriteHalf,
) -> Result<Stop, Fault> {
    loop {
        p.events(buf).await?;
        p.flush(w).await?;
        if p.closed {
            return Ok(Stop::Closed);
        }
        if let Some(c) = p.clock {
            c.mark(!p.decoder.at_frame_boundary() || !buf.is_empty());
        }
        let n = r
            .read_into(buf)
            .await
            .map_err(|e| Fault::Io(p.from, e.to_string()))?;
        if n == 0 {
            return Ok(Stop::Eof);
        }
        meter.add(n);
    }
}

/// Relay frames between the caller and the upstream until the close
/// handshake, an EOF or a violation.
pub(crate) async fn relay(
    client: &mut Side,
    client_meter: Meter<'_>,
    up: &mut Side,
    up_meter: Meter<'_>,
    recording: &SessionRecording,
    clock: &FrameClock,
    setup: &WsSetup,
) -> EndReason {
    // Whether each written stream is between frames: to the upstream, to
    // the caller.
    let (up_boundary, client_boundary) = (Cell::new(true), Cell::new(true));
    let new = |from: Peer| Pump {
        from,
        decoder: FrameDecoder::new(sender(from), setup.max_frame),
        assembler: MessageAssembler::new(setup.keep),
        k8s: setup.k8s,
        control: None,
        data: None,
        message_len: 0,
        out: BytesMut::new(),
        boundary: if from == Peer::Client {
            &up_boundary
        } else {
            &client_boundary
        },
        recording,
        clock: (from == Peer::Client).then_some(clock),
        closed: false,
    };
    let fault = {
        let Side {
            r: cr,
            w: cw,
            buf: cbuf,
            ..
        } = &mut *client;
        let Side {
            r: ur,
            w: uw,
            buf: ubuf,
            ..
        } = &mut *up;
        let upward = std::pin::pin!(pump(new(Peer::Client), cr, cbuf, client_meter, uw));
        let downward = std::pin::pin!(pump(new(Peer::Upstream), ur, ubuf, up_meter, cw));
        match select(upward, downward).await {
            Either::Left((Ok(Stop::Closed), rest)) | Either::Right((Ok(Stop::Closed), rest)) => {
                match rest.await {
                    Ok(_) => return EndReason::Closed,
                    Err(f) => f,
                }
            }
            Either::Left((Ok(Stop::Eof), _)) => return EndReason::ClientClosed,
            Either::Right((Ok(Stop::Eof), _)) => return EndReason::UpstreamClosed,
            Either::Left((Err(f), _)) | Either::Right((Err(f), _)) => f,
        }
    };
    match fault {
        Fault::Io(peer, e) => peer.io(std::io::Error::other(e)),
        Fault::Recorder(e) => EndReason::RecorderFailed(e),
        Fault::Protocol(peer, e) => {
            fail(client, &client_boundary, up, &up_boundary, &e).await;
            peer.protocol(format!("websocket: {e}"))
        }
    }
}

/// Close both sides with the error's code where a frame may be written.
async fn fail(
    client: &mut Side,
    client_boundary: &Cell<bool>,
    up: &mut Side,
    up_boundary: &Cell<bool>,
    e: &WsError,
) {
    let reason = format!("tollgate: {e}");
    let mut out = BytesMut::new();
    if client_boundary.get() && encode_close(Some(e.close_code()), &reason, None, &mut out).is_ok()
    {
        let _ = client.write(out.split().freeze()).await;
    }
    if up_boundary.get()
        && encode_close(
            Some(e.close_code()),
            &reason,
            Some(rand::random::<[u8; 4]>()),
            &mut out,
        )
        .is_ok()
    {
        let _ = up.write(out.split().freeze()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_bytes_by_protocol_and_side() {
        let (v4, v5) = (ChannelProtocol::V4, ChannelProtocol::V5);
        assert!(check_channel(v5, Sender::Client, 0).is_ok());
        assert!(check_channel(v5, Sender::Client, 4).is_ok());
        assert!(check_channel(v5, Sender::Server, 1).is_ok());
        assert!(check_channel(v5, Sender::Client, 255).is_ok());
        assert!(check_channel(v4, Sender::Client, 255).is_err());
        assert!(check_channel(v5, Sender::Client, 1).is_err());
        assert!(check_channel(v5, Sender::Server, 0).is_err());
        assert!(check_channel(v5, Sender::Server, 9).is_err());
    }
}
