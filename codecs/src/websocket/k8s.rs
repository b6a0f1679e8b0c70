//! Kubernetes remote-command channel sub-protocols over WebSocket
//! (`kubectl exec`, `attach`, `cp`): `v4.channel.k8s.io` and
//! `v5.channel.k8s.io`.
//!
//! Each binary message starts with a channel byte: 0 stdin (client to
//! server), 1 stdout, 2 stderr, 3 error (a JSON `metav1.Status` carrying the
//! exit code, server to client), 4 resize (JSON `{"Width":…,"Height":…}`,
//! client to server). v5 adds channel 255, a stream close: a two-byte
//! message `[255, channel]` (kubectl half-closes stdin with it).
//!
//! Refused (fail closed, so a recording cannot hide bytes): text messages
//! (only the base64 variants use them; they are not offered), unknown
//! channels, a channel from the wrong side, a malformed close. An empty
//! message carries no channel and is skipped, as the apiserver does.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Message, Opcode, Sender, WsError};

/// The negotiated sub-protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelProtocol {
    V4,
    V5,
}

impl ChannelProtocol {
    /// From a `Sec-WebSocket-Protocol` value.
    pub fn from_name(name: &[u8]) -> Option<ChannelProtocol> {
        match name {
            b"v4.channel.k8s.io" => Some(ChannelProtocol::V4),
            b"v5.channel.k8s.io" => Some(ChannelProtocol::V5),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChannelProtocol::V4 => "v4.channel.k8s.io",
            ChannelProtocol::V5 => "v5.channel.k8s.io",
        }
    }
}

/// The streams of a remote command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdin,
    Stdout,
    Stderr,
    Error,
    Resize,
}

impl Channel {
    pub fn from_u8(b: u8) -> Option<Channel> {
        Some(match b {
            0 => Channel::Stdin,
            1 => Channel::Stdout,
            2 => Channel::Stderr,
            3 => Channel::Error,
            4 => Channel::Resize,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Channel::Stdin => 0,
            Channel::Stdout => 1,
            Channel::Stderr => 2,
            Channel::Error => 3,
            Channel::Resize => 4,
        }
    }

    /// The side that writes this channel.
    pub fn writer(self) -> Sender {
        match self {
            Channel::Stdin | Channel::Resize => Sender::Client,
            Channel::Stdout | Channel::Stderr | Channel::Error => Sender::Server,
        }
    }
}

/// What one message carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Bytes on a channel (possibly empty); for Error and Resize, JSON.
    Data { channel: Channel, data: Bytes },
    /// v5: the sender closed its side of `channel`.
    Close { channel: Channel },
}

/// The close channel of v5.
const CLOSE: u8 = 255;

/// Decode one complete WebSocket message sent by `from`. `Ok(None)`: a
/// message to skip (empty, or Ping/Pong/Close, which are the WebSocket
/// layer's).
pub fn decode_channel_message(
    protocol: ChannelProtocol,
    from: Sender,
    message: &Message,
) -> Result<Option<ChannelEvent>, WsError> {
    match message.opcode {
        Opcode::Binary => {}
        Opcode::Text => return Err(WsError::Channel("text message")),
        _ => return Ok(None),
    }
    let Some((&first, rest)) = message.data.split_first() else {
        return Ok(None);
    };
    if first == CLOSE && protocol == ChannelProtocol::V5 {
        let [id] = rest else {
            return Err(WsError::Channel("close signal is not [255, channel]"));
        };
        let channel =
            Channel::from_u8(*id).ok_or(WsError::Channel("close of an unknown channel"))?;
        return Ok(Some(ChannelEvent::Close { channel }));
    }
    let channel = Channel::from_u8(first).ok_or(WsError::Channel("unknown channel"))?;
    if channel.writer() != from {
        return Err(WsError::Channel("channel written by the wrong side"));
    }
    Ok(Some(ChannelEvent::Data {
        channel,
        data: message.data.slice(1..),
    }))
}

/// The payload of a binary message carrying `data` on `channel`.
pub fn encode_channel_data(channel: Channel, data: &[u8], out: &mut BytesMut) {
    out.reserve(data.len() + 1);
    out.put_u8(channel.as_u8());
    out.extend_from_slice(data);
}

/// The payload of a v5 close signal for `channel`.
pub fn encode_channel_close(channel: Channel, out: &mut BytesMut) {
    out.extend_from_slice(&[CLOSE, channel.as_u8()]);
}
