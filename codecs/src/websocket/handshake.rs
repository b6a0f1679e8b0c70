//! The opening handshake (RFC 6455 §4): checks on the client's upgrade
//! request and the server's 101, and the `Sec-WebSocket-Accept` value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use super::WsError;
use crate::http::h1::{RequestHead, ResponseHead};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    STANDARD.encode(h.finalize())
}

/// A valid upgrade request's key and offered sub-protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade<'a> {
    pub key: &'a [u8],
    /// `Sec-WebSocket-Protocol` elements in the client's order.
    pub protocols: Vec<&'a [u8]>,
}

/// Check a request asks for a WebSocket: GET, HTTP/1.1, `Connection:
/// upgrade`, `Upgrade: websocket`, version 13, one key of 16 base64-coded
/// bytes. Extensions offered are not refused here: the gateway removes
/// `Sec-WebSocket-Extensions` before forwarding (RSV bits are refused).
pub fn check_upgrade_request(head: &RequestHead) -> Result<Upgrade<'_>, WsError> {
    let f = head.fields();
    if head.method() != "GET" || head.minor_version() != 1 {
        return Err(WsError::Handshake("not a GET in HTTP/1.1"));
    }
    if head.upgrade().is_none() || !f.has_token("upgrade", "websocket") {
        return Err(WsError::Handshake(
            "no Connection: upgrade / Upgrade: websocket",
        ));
    }
    if f.get("sec-websocket-version") != Some(b"13") {
        return Err(WsError::Handshake("Sec-WebSocket-Version is not 13"));
    }
    let mut keys = f.get_all("sec-websocket-key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(WsError::Handshake("not exactly one Sec-WebSocket-Key"));
    };
    match STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => {
            return Err(WsError::Handshake(
                "Sec-WebSocket-Key is not 16 base64 bytes",
            ));
        }
    }
    let mut protocols = Vec::new();
    for p in f.get_all("sec-websocket-protocol").flat_map(list) {
        if p.is_empty() || !p.iter().all(|&b| crate::http::is_tchar(b)) {
            return Err(WsError::Handshake(
                "Sec-WebSocket-Protocol is not a token list",
            ));
        }
        protocols.push(p);
    }
    Ok(Upgrade { key, protocols })
}

/// Check an upstream's answer to the upgrade request with `key` and the
/// `offered` sub-protocols: 101, `Upgrade: websocket`, `Connection:
/// upgrade`, the right accept value, no extension, and a sub-protocol (if
/// any) among those offered. Returns the chosen sub-protocol.
pub fn check_upgrade_response<'r>(
    resp: &'r ResponseHead,
    key: &[u8],
    offered: &[&[u8]],
) -> Result<Option<&'r [u8]>, WsError> {
    let f = resp.fields();
    if resp.status() != 101 {
        return Err(WsError::Handshake("status is not 101"));
    }
    if !f.has_token("upgrade", "websocket") || !f.has_token("connection", "upgrade") {
        return Err(WsError::Handshake(
            "no Connection: upgrade / Upgrade: websocket",
        ));
    }
    if f.get("sec-websocket-accept") != Some(accept_key(key).as_bytes()) {
        return Err(WsError::Handshake("wrong Sec-WebSocket-Accept"));
    }
    if f.get("sec-websocket-extensions").is_some() {
        return Err(WsError::Handshake("an extension was negotiated"));
    }
    let mut chosen = f.get_all("sec-websocket-protocol");
    match (chosen.next(), chosen.next()) {
        (None, _) => Ok(None),
        (Some(p), None) if offered.contains(&p) => Ok(Some(p)),
        _ => Err(WsError::Handshake("a sub-protocol that was not offered")),
    }
}

fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}
