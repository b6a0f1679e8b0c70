//! X11 forwarding's cookie, without I/O. OpenSSH's client never sends its
//! X server's real cookie: it sends a random one in `x11-req`, and swaps
//! the real one in when an `x11` channel's connection setup arrives with
//! the random one. tollgate does the same once more: the host gets a
//! cookie of tollgate's own (random, per `x11-req`), and each `x11`
//! channel's setup from the host must carry it; tollgate puts back the
//! cookie the caller sent before the bytes reach the caller. So the host
//! never learns what the caller sent (a client that sends its real cookie
//! keeps it from the host), and an X connection with any other cookie is
//! refused at the gateway.
//!
//! The setup (X11 protocol, "Connection Setup"): byte order (`B` or `l`),
//! a pad byte, major and minor version (u16 each), the lengths of the
//! authorization protocol name and data (u16 each), two pad bytes, then
//! the name and the data, each padded to 4 bytes.

/// The longest authorization name or data accepted (an MIT cookie is 16
/// bytes, its name 18).
pub const MAX_AUTH_FIELD: usize = 256;

/// The cookies of one `x11-req`.
#[derive(Clone)]
pub struct X11Cookies {
    /// The authorization protocol (`MIT-MAGIC-COOKIE-1`).
    pub protocol: String,
    /// What the caller sent (binary).
    pub caller: Vec<u8>,
    /// What tollgate sent the host instead.
    pub host: Vec<u8>,
}

impl std::fmt::Debug for X11Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cookies are credentials: never in a log.
        f.debug_struct("X11Cookies")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// What became of a setup.
#[derive(Debug, PartialEq, Eq)]
pub enum Setup {
    /// Not all of it yet.
    More,
    /// The setup with the caller's cookie in place of the host's, and how
    /// many input bytes it replaced (the rest of the input follows as is).
    Rewritten { bytes: Vec<u8>, used: usize },
    /// Not to be relayed: why.
    Refused(&'static str),
}

/// Parse a hex cookie from `x11-req` (at most [`MAX_AUTH_FIELD`] bytes).
pub fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 2 * MAX_AUTH_FIELD {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Equal without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl X11Cookies {
    /// Check and rewrite the setup at the start of `buf` (the host's first
    /// bytes on an `x11` channel).
    pub fn rewrite(&self, buf: &[u8]) -> Setup {
        let Some(head) = buf.get(..12) else {
            return Setup::More;
        };
        let big = match head[0] {
            b'B' => true,
            b'l' => false,
            _ => return Setup::Refused("not an X11 connection setup"),
        };
        let u16_at = |i: usize| {
            let b = [head[i], head[i + 1]];
            usize::from(if big {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        };
        let (name_len, data_len) = (u16_at(6), u16_at(8));
        if name_len > MAX_AUTH_FIELD || data_len > MAX_AUTH_FIELD {
            return Setup::Refused("an authorization field too long");
        }
        let used = 12 + pad4(name_len) + pad4(data_len);
        if buf.len() < used {
            return Setup::More;
        }
        let name = &buf[12..12 + name_len];
        let data_at = 12 + pad4(name_len);
        let data = &buf[data_at..data_at + data_len];
        if name != self.protocol.as_bytes() || !same(data, &self.host) {
            return Setup::Refused("the cookie is not the one tollgate gave the host");
        }
        let Ok(caller_len) = u16::try_from(self.caller.len()) else {
            return Setup::Refused("the caller's cookie is too long");
        };
        let mut out = Vec::with_capacity(data_at + pad4(self.caller.len()));
        out.extend_from_slice(&buf[..data_at]);
        let len = if big {
            caller_len.to_be_bytes()
        } else {
            caller_len.to_le_bytes()
        };
        out[8..10].copy_from_slice(&len);
        out.extend_from_slice(&self.caller);
        out.resize(data_at + pad4(self.caller.len()), 0);
        Setup::Rewritten { bytes: out, used }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn setup(big: bool, name: &[u8], data: &[u8]) -> Vec<u8> {
        let u16b = |v: usize| {
            if big {
                (v as u16).to_be_bytes()
            } else {
                (v as u16).to_le_bytes()
            }
        };
        let mut b = vec![if big { b'B' } else { b'l' }, 0];
        b.extend_from_slice(&u16b(11));
        b.extend_from_slice(&u16b(0));
        b.extend_from_slice(&u16b(name.len()));
        b.extend_from_slice(&u16b(data.len()));
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(name);
        b.resize(12 + pad4(name.len()), 0);
        b.extend_from_slice(data);
        b.resize(12 + pad4(name.len()) + pad4(data.len()), 0);
        b
    }

    fn cookies() -> X11Cookies {
        X11Cookies {
            protocol: "MIT-MAGIC-COOKIE-1".into(),
            caller: vec![0xca; 16],
            host: vec![0x05; 16],
        }
    }

    #[test]
    fn the_hosts_cookie_is_swapped_for_the_callers_in_both_byte_orders() {
        for big in [true, false] {
            let c = cookies();
            let mut input = setup(big, b"MIT-MAGIC-COOKIE-1", &c.host);
            let whole = input.len();
            input.extend_from_slice(b"next request");
            assert_eq!(c.rewrite(&input[..20]), Setup::More);
            let Setup::Rewritten { bytes, used } = c.rewrite(&input) else {
                panic!("refused");
            };
            assert_eq!(used, whole);
            assert_eq!(bytes, setup(big, b"MIT-MAGIC-COOKIE-1", &c.caller));
        }
    }

    #[test]
    fn another_cookie_or_no_setup_is_refused() {
        let c = cookies();
        let wrong = setup(true, b"MIT-MAGIC-COOKIE-1", &[0x06; 16]);
        assert!(matches!(c.rewrite(&wrong), Setup::Refused(_)));
        // The caller's own cookie is not the host's.
        let callers = setup(true, b"MIT-MAGIC-COOKIE-1", &c.caller);
        assert!(matches!(c.rewrite(&callers), Setup::Refused(_)));
        assert!(matches!(
            c.rewrite(b"GET / HTTP/1.1\r\n"),
            Setup::Refused(_)
        ));
        let long = setup(true, &[b'x'; 300], &c.host);
        assert!(matches!(c.rewrite(&long), Setup::Refused(_)));
    }

    #[test]
    fn hex_cookies_parse_within_bounds() {
        assert_eq!(parse_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(to_hex(&[0, 255, 16]), "00ff10");
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex(&"a".repeat(2 * MAX_AUTH_FIELD + 2)), None);
    }
}
