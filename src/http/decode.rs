//! `tollgate recordings export` for HTTP sessions. The relay records each
//! request head (as sent upstream, without the injected credential and the
//! caller's token), each response head, and the first bytes of each body as
//! separate data records: heads as they were sent (`http.request` /
//! `http.response` and `http.headers`), body bytes tagged
//! ([`super::wsrec::body`]; `http.body`, cut at 4 KiB here), and after a
//! body longer than the recording's cap its whole length and SHA-256
//! (`http.body_length`, `http.body_sha256`). Recordings made before bodies
//! were tagged: a record that parses as a head is shown as one, anything
//! else as a body.
//!
//! After a `101` head the session's records are the relay's own
//! ([`super::wsrec`]): WebSocket messages (`ws.opcode`, `ws.length`,
//! `ws.text` for text, `ws.binary` base64 for binary, `ws.close_code` and
//! `ws.close_reason`, `ws.truncated` when the recording kept less), with a
//! Kubernetes channel sub-protocol as a person reads `kubectl exec`
//! (`k8s.stdin`, `k8s.stdout`, `k8s.stderr` as text, `k8s.error` the status
//! JSON, `k8s.resize`, `k8s.close` the stream closed), or an unrecorded
//! tunnel's start and end (`tunnel`, `tunnel.bytes_up`,
//! `tunnel.bytes_down`).

use std::collections::{HashMap, HashSet};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};
use tollgate_codecs::http::h1::{
    Fields, Limits, ResponseHead, parse_request_head, parse_response_head,
};
use tollgate_codecs::websocket::k8s::{
    Channel, ChannelEvent, ChannelProtocol, decode_channel_message,
};
use tollgate_codecs::websocket::{Message, Opcode, Sender, parse_close};
use tollgate_recorder::{Decoder, Direction};

use super::wsrec::{self, SwitchedRecord};

const MAX_VALUE: usize = 4096;

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(&b[..b.len().min(MAX_VALUE)]).into_owned())
}

fn headers(f: &Fields) -> Value {
    Value::Array(
        f.iter()
            .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
            .collect(),
    )
}

/// What a session's records are after a `101`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switched {
    WebSocket(Option<ChannelProtocol>),
    Tunnel,
}

fn switched(h: &ResponseHead) -> Option<Switched> {
    if h.status() != 101 {
        return None;
    }
    let f = h.fields();
    if f.has_token("upgrade", "websocket") {
        let k8s = f
            .get("sec-websocket-protocol")
            .and_then(ChannelProtocol::from_name);
        Some(Switched::WebSocket(k8s))
    } else {
        Some(Switched::Tunnel)
    }
}

#[derive(Default)]
pub struct HttpDecoder {
    /// Sessions past a `101`.
    switched: HashMap<u64, Switched>,
    /// Sessions whose last request head asked for an upgrade: only then is
    /// a `101` believed (a body shaped like one is not a switch).
    asked: HashSet<u64>,
}

fn opcode_name(op: Opcode) -> &'static str {
    match op {
        Opcode::Continuation => "continuation",
        Opcode::Text => "text",
        Opcode::Binary => "binary",
        Opcode::Close => "close",
        Opcode::Ping => "ping",
        Opcode::Pong => "pong",
    }
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Stdin => "stdin",
        Channel::Stdout => "stdout",
        Channel::Stderr => "stderr",
        Channel::Error => "error",
        Channel::Resize => "resize",
    }
}

/// One message after a `101`, into `fields`.
fn message(
    k8s: Option<ChannelProtocol>,
    direction: Direction,
    opcode: Opcode,
    length: u64,
    kept: &[u8],
    fields: &mut Map<String, Value>,
) {
    fields.insert("ws.opcode".into(), json!(opcode_name(opcode)));
    fields.insert("ws.length".into(), json!(length));
    if (kept.len() as u64) < length {
        fields.insert("ws.truncated".into(), json!(true));
    }
    if let (Some(proto), Opcode::Binary) = (k8s, opcode) {
        let from = match direction {
            Direction::ClientToTarget => Sender::Client,
            Direction::TargetToClient => Sender::Server,
        };
        let m = Message {
            opcode,
            data: Bytes::copy_from_slice(kept),
            dropped: length.saturating_sub(kept.len() as u64),
        };
        match decode_channel_message(proto, from, &m) {
            Ok(Some(ChannelEvent::Data { channel, data })) => {
                let name = format!("k8s.{}", channel_name(channel));
                let v = match channel {
                    Channel::Error | Channel::Resize => {
                        serde_json::from_slice(&data).unwrap_or_else(|_| text(&data))
                    }
                    _ => text(&data),
                };
                fields.insert(name, v);
                return;
            }
            Ok(Some(ChannelEvent::Close { channel })) => {
                fields.insert("k8s.close".into(), json!(channel_name(channel)));
                return;
            }
            Ok(None) => return,
            Err(e) => {
                fields.insert("k8s.refused".into(), json!(e.to_string()));
            }
        }
    }
    match opcode {
        Opcode::Text => {
            fields.insert("ws.text".into(), text(kept));
        }
        Opcode::Close => match parse_close(kept) {
            Ok(Some((code, reason))) => {
                fields.insert("ws.close_code".into(), json!(code));
                fields.insert("ws.close_reason".into(), json!(reason));
            }
            Ok(None) => {}
            Err(_) => {
                fields.insert("ws.close_invalid".into(), json!(true));
            }
        },
        _ => {
            let n = kept.len().min(MAX_VALUE);
            let b = base64::engine::general_purpose::STANDARD.encode(&kept[..n]);
            fields.insert("ws.binary".into(), json!(b));
        }
    }
}

impl HttpDecoder {
    /// A record after a `101`; `false` when it is not one of the relay's.
    fn after_switch(
        &self,
        mode: Switched,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) -> bool {
        match (mode, wsrec::parse(data)) {
            (
                Switched::WebSocket(k8s),
                Some(SwitchedRecord::Message {
                    opcode,
                    length,
                    kept,
                }),
            ) => message(k8s, direction, opcode, length, kept, fields),
            (Switched::Tunnel, Some(SwitchedRecord::TunnelStart { protocol })) => {
                fields.insert("tunnel".into(), json!("start (not recorded)"));
                fields.insert("tunnel.protocol".into(), text(protocol));
            }
            (Switched::Tunnel, Some(SwitchedRecord::TunnelEnd { up, down })) => {
                fields.insert("tunnel".into(), json!("end"));
                fields.insert("tunnel.bytes_up".into(), json!(up));
                fields.insert("tunnel.bytes_down".into(), json!(down));
            }
            _ => return false,
        }
        true
    }
}

impl Decoder for HttpDecoder {
    fn decode(
        &mut self,
        session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        if let Some(&mode) = self.switched.get(&session)
            && self.after_switch(mode, direction, data, fields)
        {
            return;
        }
        // Bodies are tagged (recordings before the tag: told apart from
        // heads by parsing, below).
        match wsrec::parse(data) {
            Some(SwitchedRecord::Body { kept }) => {
                fields.insert("http.body".into(), text(kept));
                return;
            }
            Some(SwitchedRecord::BodyDigest { length, sha256 }) => {
                fields.insert("http.body_length".into(), json!(length));
                let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
                fields.insert("http.body_sha256".into(), json!(hex));
                return;
            }
            _ => {}
        }
        let limits = Limits::default();
        let mut buf = BytesMut::from(data);
        match direction {
            Direction::ClientToTarget => {
                if let Ok(Some(h)) = parse_request_head(&mut buf, &limits) {
                    if h.upgrade().is_some() {
                        self.asked.insert(session);
                    } else {
                        self.asked.remove(&session);
                    }
                    fields.insert(
                        "http.request".into(),
                        json!(format!("{} {}", h.method(), h.target())),
                    );
                    fields.insert("http.headers".into(), headers(h.fields()));
                    return;
                }
            }
            Direction::TargetToClient => {
                if let Ok(Some(h)) = parse_response_head(&mut buf, &limits) {
                    if let Some(mode) = switched(&h)
                        && self.asked.contains(&session)
                    {
                        self.switched.insert(session, mode);
                    }
                    fields.insert("http.response".into(), json!(h.status()));
                    fields.insert("http.headers".into(), headers(h.fields()));
                    return;
                }
            }
        }
        fields.insert("http.body".into(), text(data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(direction: Direction, data: &[u8]) -> Map<String, Value> {
        let mut fields = Map::new();
        HttpDecoder::default().decode(1, direction, data, &mut fields);
        fields
    }

    #[test]
    fn heads_and_bodies_are_told_apart() {
        let f = decoded(
            Direction::ClientToTarget,
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nVia: 1.1 tollgate\r\n\r\n",
        );
        assert_eq!(f["http.request"], json!("GET /a?b=1"));
        assert_eq!(f["http.headers"][1], json!(["Via", "1.1 tollgate"]));
        let f = decoded(
            Direction::TargetToClient,
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!(f["http.response"], json!(204));
        let f = decoded(Direction::ClientToTarget, b"{\"a\": 1}");
        assert_eq!(f["http.body"], json!("{\"a\": 1}"));
    }

    #[test]
    fn websocket_and_kubernetes_messages_after_a_101() {
        let mut d = HttpDecoder::default();
        let mut get = |direction, data: &[u8]| {
            let mut fields = Map::new();
            d.decode(7, direction, data, &mut fields);
            fields
        };
        let up = Direction::ClientToTarget;
        let down = Direction::TargetToClient;
        // Before a 101 a relay-shaped record is body bytes; so is one
        // after a 101 no upgrade request asked for.
        let early = wsrec::message(Opcode::Text, 2, b"hi");
        assert!(get(up, &early).contains_key("http.body"));
        let forged = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        get(up, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(get(down, forged)["http.response"], json!(101));
        assert!(get(up, &early).contains_key("http.body"));
        get(
            up,
            b"GET /exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        get(
            down,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
        );
        let f = get(up, &wsrec::message(Opcode::Binary, 4, b"\x00ls\n"));
        assert_eq!(f["k8s.stdin"], json!("ls\n"));
        let f = get(down, &wsrec::message(Opcode::Binary, 9, b"\x02oops"));
        assert_eq!(f["k8s.stderr"], json!("oops"));
        assert_eq!(f["ws.truncated"], json!(true));
        let status = b"\x03{\"status\":\"Success\"}";
        let f = get(down, &wsrec::message(Opcode::Binary, 21, status));
        assert_eq!(f["k8s.error"]["status"], json!("Success"));
        let f = get(up, &wsrec::message(Opcode::Binary, 2, b"\xff\x00"));
        assert_eq!(f["k8s.close"], json!("stdin"));
        let f = get(up, &wsrec::message(Opcode::Close, 4, b"\x03\xe8ok"));
        assert_eq!(f["ws.close_code"], json!(1000));
        assert_eq!(f["ws.close_reason"], json!("ok"));
    }
}
