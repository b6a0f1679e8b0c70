//! The SSH agent protocol on a forwarded agent channel
//! (draft-miller-ssh-agent), framed and described for the recording
//! without I/O. What an auditor needs from a forwarded agent is which keys
//! the host was shown and which key signed for it, how much, and towards
//! which next host (OpenSSH's `session-bind@openssh.com` names the next
//! hop's host key): so requests and answers are recorded by type, public
//! keys by SHA-256 fingerprint (as `ssh-keygen -l` prints them), signed
//! data by its length only. Never recorded: the data signed, signatures,
//! key comments, private keys, lock passphrases.
//!
//! Only using the caller's keys is relayed: requests that change the
//! caller's agent (add, remove, lock, smartcard) are refused, so a host
//! cannot plant or wipe keys in the caller's agent through tollgate.

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};

/// The longest agent message either side may send (OpenSSH's
/// `AGENT_MAX_LEN`).
pub const MAX_AGENT_MESSAGE: usize = 256 << 10;

const FAILURE: u8 = 5;
const SUCCESS: u8 = 6;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
const EXTENSION: u8 = 27;
const EXTENSION_FAILURE: u8 = 28;

/// A message longer than [`MAX_AGENT_MESSAGE`].
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong(pub usize);

/// Whole agent messages out of a channel's bytes, one direction.
#[derive(Debug, Default)]
pub struct Frames {
    buf: BytesMut,
}

impl Frames {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message (its length prefix included), `Ok(None)`
    /// while more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, TooLong> {
        let Some(head) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_AGENT_MESSAGE {
            return Err(TooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(4 + len).freeze()))
    }
}

/// What the recording says of a request from the host, and whether it goes
/// on to the caller's agent.
#[derive(Debug, PartialEq, Eq)]
pub struct Described {
    pub what: String,
    pub allowed: bool,
}

/// A string (u32 length, bytes) off `b`.
fn string(b: &mut &[u8]) -> Option<Bytes> {
    if b.len() < 4 {
        return None;
    }
    let len = b.get_u32() as usize;
    let s = b.get(..len)?;
    let out = Bytes::copy_from_slice(s);
    b.advance(len);
    Some(out)
}

/// `SHA256:...` of a public key blob, with its type.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, blob);
    let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref());
    let mut b = blob;
    match string(&mut b) {
        Some(kind) if kind.len() <= 64 && kind.iter().all(|c| c.is_ascii_graphic()) => {
            format!("{} SHA256:{fp}", String::from_utf8_lossy(&kind))
        }
        _ => format!("SHA256:{fp}"),
    }
}

/// A request the host's side sent (`message`: a whole frame).
pub fn describe_request(message: &[u8]) -> Described {
    let Some((&kind, mut body)) = message.get(4..).and_then(|b| b.split_first()) else {
        return refused("an empty message".into());
    };
    match kind {
        REQUEST_IDENTITIES => allowed("request identities".into()),
        SIGN_REQUEST => match (string(&mut body), string(&mut body)) {
            (Some(key), Some(data)) => {
                let flags = if body.len() >= 4 { body.get_u32() } else { 0 };
                allowed(format!(
                    "sign request: key {}, {} bytes of data, flags {flags:#x}",
                    fingerprint(&key),
                    data.len()
                ))
            }
            _ => refused("a malformed sign request".into()),
        },
        EXTENSION => {
            let Some(name) = string(&mut body) else {
                return refused("a malformed extension request".into());
            };
            let name: String = String::from_utf8_lossy(&name).chars().take(64).collect();
            if name == "session-bind@openssh.com" {
                let host = string(&mut body);
                let bound = (string(&mut body), string(&mut body));
                let forwarding = body.first().is_some_and(|b| *b != 0);
                match (host, bound) {
                    (Some(host), (Some(_), Some(_))) => allowed(format!(
                        "session-bind: host key {}{}",
                        fingerprint(&host),
                        if forwarding { ", forwarding" } else { "" }
                    )),
                    _ => refused("a malformed session-bind".into()),
                }
            } else {
                allowed(format!("extension {name}"))
            }
        }
        // Add, remove, remove all, lock, unlock, smartcard keys, constrained
        // adds: they change the caller's agent.
        17..=26 => refused(format!("message type {kind} (changes the caller's agent)")),
        other => refused(format!("unknown message type {other}")),
    }
}

/// An answer the caller's agent sent.
pub fn describe_answer(message: &[u8]) -> String {
    let Some((&kind, mut body)) = message.get(4..).and_then(|b| b.split_first()) else {
        return "an empty answer".into();
    };
    match kind {
        FAILURE => "failure".into(),
        SUCCESS => "success".into(),
        EXTENSION_FAILURE => "extension failure".into(),
        SIGN_RESPONSE => "signature".into(),
        IDENTITIES_ANSWER => {
            if body.len() < 4 {
                return "a malformed identities answer".into();
            }
            let n = body.get_u32();
            let mut keys = Vec::new();
            // The count is the peer's: read only what is there.
            for _ in 0..n.min(64) {
                match (string(&mut body), string(&mut body)) {
                    (Some(key), Some(_comment)) => keys.push(fingerprint(&key)),
                    _ => break,
                }
            }
            format!("identities: {n} keys [{}]", keys.join(", "))
        }
        other => format!("answer type {other}"),
    }
}

fn allowed(what: String) -> Described {
    Described {
        what,
        allowed: true,
    }
}

fn refused(what: String) -> Described {
    Described {
        what,
        allowed: false,
    }
}

/// The answer tollgate gives a refused request itself.
pub const FAILURE_MESSAGE: &[u8] = &[0, 0, 0, 1, FAILURE];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn put_string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        out.push(kind);
        out.extend_from_slice(body);
        out
    }

    fn key_blob() -> Vec<u8> {
        let mut k = Vec::new();
        put_string(&mut k, b"ssh-ed25519");
        put_string(&mut k, &[7u8; 32]);
        k
    }

    #[test]
    fn frames_split_and_join_messages_and_cap_their_length() {
        let mut f = Frames::default();
        let one = frame(REQUEST_IDENTITIES, &[]);
        let two = frame(FAILURE, &[]);
        let mut both = one.clone();
        both.extend_from_slice(&two);
        f.push(&both[..3]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&both[3..]);
        assert_eq!(f.next_message().unwrap().unwrap().as_ref(), &one[..]);
        assert_eq!(f.next_message().unwrap().unwrap().as_ref(), &two[..]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&(MAX_AGENT_MESSAGE as u32 + 1).to_be_bytes());
        assert_eq!(f.next_message(), Err(TooLong(MAX_AGENT_MESSAGE + 1)));
    }

    #[test]
    fn a_sign_request_names_the_key_and_the_length_never_the_data() {
        let mut body = Vec::new();
        put_string(&mut body, &key_blob());
        put_string(&mut body, b"secret session data");
        body.extend_from_slice(&2u32.to_be_bytes());
        let d = describe_request(&frame(SIGN_REQUEST, &body));
        assert!(d.allowed);
        assert!(
            d.what.starts_with("sign request: key ssh-ed25519 SHA256:"),
            "{}",
            d.what
        );
        assert!(
            d.what.ends_with("19 bytes of data, flags 0x2"),
            "{}",
            d.what
        );
        assert!(!d.what.contains("secret"));
        // A length past the end is malformed, not a panic.
        let mut bad = Vec::new();
        bad.extend_from_slice(&1000u32.to_be_bytes());
        assert!(!describe_request(&frame(SIGN_REQUEST, &bad)).allowed);
    }

    #[test]
    fn identities_are_listed_by_fingerprint_without_comments() {
        let mut body = 1u32.to_be_bytes().to_vec();
        put_string(&mut body, &key_blob());
        put_string(&mut body, b"alice@laptop");
        let a = describe_answer(&frame(IDENTITIES_ANSWER, &body));
        assert!(
            a.starts_with("identities: 1 keys [ssh-ed25519 SHA256:"),
            "{a}"
        );
        assert!(!a.contains("alice"));
        // A count larger than the keys present.
        let a = describe_answer(&frame(IDENTITIES_ANSWER, &u32::MAX.to_be_bytes()));
        assert_eq!(a, format!("identities: {} keys []", u32::MAX));
    }

    #[test]
    fn requests_that_change_the_agent_are_refused() {
        for kind in [17u8, 18, 19, 22, 23, 25] {
            assert!(!describe_request(&frame(kind, b"x")).allowed, "{kind}");
        }
        assert!(describe_request(&frame(REQUEST_IDENTITIES, &[])).allowed);
        let mut ext = Vec::new();
        put_string(&mut ext, b"session-bind@openssh.com");
        put_string(&mut ext, &key_blob());
        put_string(&mut ext, b"sid");
        put_string(&mut ext, b"sig");
        ext.push(1);
        let d = describe_request(&frame(EXTENSION, &ext));
        assert!(d.allowed);
        assert!(
            d.what
                .starts_with("session-bind: host key ssh-ed25519 SHA256:")
        );
        assert!(d.what.ends_with(", forwarding"));
    }
}
