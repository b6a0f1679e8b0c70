//! What the HTTP relay records after a protocol switch (a `101`), in place
//! of the bytes that crossed: one record per WebSocket message (its opcode,
//! whole length and first bytes up to the target's cap, unmasked and
//! reassembled from its fragments), and for an unrecorded tunnel (SPDY) one
//! record at its start and one at its end with the byte counts.
//!
//! Layout of a record's data: the magic `\0tgw`, a kind byte, then
//! - `M`: opcode (u8), the message's whole length (u64 BE), the kept bytes;
//! - `S`: the tunnel's protocol name;
//! - `E`: bytes client → upstream and upstream → client (u64 BE each).
//!
//! The export ([`super::decode`]) reads these once it has seen a session's
//! `101` head.

use tollgate_codecs::websocket::Opcode;

const MAGIC: &[u8; 4] = b"\0tgw";

/// One recorded item after a protocol switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchedRecord<'a> {
    Message {
        opcode: Opcode,
        length: u64,
        kept: &'a [u8],
    },
    TunnelStart {
        protocol: &'a [u8],
    },
    TunnelEnd {
        up: u64,
        down: u64,
    },
    /// An HTTP body's kept bytes.
    Body {
        kept: &'a [u8],
    },
    /// An HTTP body cut for the recording: its whole length and SHA-256.
    BodyDigest {
        length: u64,
        sha256: &'a [u8],
    },
}

/// The record of one message of `length` bytes of which `kept` were kept.
pub fn message(opcode: Opcode, length: u64, kept: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(kept.len() + 14);
    v.extend_from_slice(MAGIC);
    v.push(b'M');
    v.push(opcode.as_u8());
    v.extend_from_slice(&length.to_be_bytes());
    v.extend_from_slice(kept);
    v
}

/// The kept first bytes of an HTTP body (tagged, so that an export never
/// reads body bytes as a request or response head).
pub fn body(kept: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(kept.len() + 5);
    v.extend_from_slice(MAGIC);
    v.push(b'B');
    v.extend_from_slice(kept);
    v
}

/// After a body cut for the recording: its whole length and SHA-256.
pub fn body_digest(length: u64, sha256: &[u8]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.push(b'D');
    v.extend_from_slice(&length.to_be_bytes());
    v.extend_from_slice(sha256);
    v
}

pub fn tunnel_start(protocol: &[u8]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.push(b'S');
    v.extend_from_slice(protocol);
    v
}

pub fn tunnel_end(up: u64, down: u64) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.push(b'E');
    v.extend_from_slice(&up.to_be_bytes());
    v.extend_from_slice(&down.to_be_bytes());
    v
}

fn u64_at(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Read a record written by this module; `None` for anything else.
pub fn parse(data: &[u8]) -> Option<SwitchedRecord<'_>> {
    let rest = data.strip_prefix(MAGIC)?;
    let (&kind, rest) = rest.split_first()?;
    match kind {
        b'M' => {
            let (&op, rest) = rest.split_first()?;
            Some(SwitchedRecord::Message {
                opcode: Opcode::from_u8(op).ok()?,
                length: u64_at(rest)?,
                kept: rest.get(8..)?,
            })
        }
        b'S' => Some(SwitchedRecord::TunnelStart { protocol: rest }),
        b'B' => Some(SwitchedRecord::Body { kept: rest }),
        b'D' => Some(SwitchedRecord::BodyDigest {
            length: u64_at(rest)?,
            sha256: rest.get(8..40).filter(|_| rest.len() == 40)?,
        }),
        b'E' => Some(SwitchedRecord::TunnelEnd {
            up: u64_at(rest)?,
            down: u64_at(rest.get(8..)?)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_records_read_back_and_a_short_digest_is_none() {
        assert_eq!(
            parse(&body(b"\0tgwDx")),
            Some(SwitchedRecord::Body { kept: b"\0tgwDx" })
        );
        let sha = [7u8; 32];
        assert_eq!(
            parse(&body_digest(99, &sha)),
            Some(SwitchedRecord::BodyDigest {
                length: 99,
                sha256: &sha
            })
        );
        let d = body_digest(99, &sha);
        assert_eq!(parse(&d[..d.len() - 1]), None);
    }

    #[test]
    fn records_read_back() {
        let m = message(Opcode::Text, 10, b"hello");
        assert_eq!(
            parse(&m),
            Some(SwitchedRecord::Message {
                opcode: Opcode::Text,
                length: 10,
                kept: b"hello"
            })
        );
        assert_eq!(
            parse(&tunnel_end(3, 4)),
            Some(SwitchedRecord::TunnelEnd { up: 3, down: 4 })
        );
        assert_eq!(
            parse(&tunnel_start(b"SPDY/3.1")),
            Some(SwitchedRecord::TunnelStart {
                protocol: b"SPDY/3.1"
            })
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse(b"\0tgwM\x01\0\0"), None);
    }
}
