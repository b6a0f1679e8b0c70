//! The untyped startup phase: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage.

use bytes::{Bytes, BytesMut};

use super::error::PgError;
use super::frame::Caps;
use super::read::Reader;

pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Protocol 3.0; newer minor versions add to the low 16 bits.
pub const PROTOCOL_3_0: u32 = 3 << 16;

/// Cancel keys are 4 bytes in protocol 3.0 and up to 256 in 3.2.
pub(crate) const MAX_CANCEL_KEY: usize = 256;

/// One startup-phase packet: length, request code and body, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupFrame {
    bytes: Bytes,
}

/// Cuts the next startup packet off `buf`; `Ok(None)` while it is incomplete.
/// The length is checked against [`Caps::startup_max`] before anything is reserved.
pub fn next_startup_frame(
    buf: &mut BytesMut,
    caps: &Caps,
) -> Result<Option<StartupFrame>, PgError> {
    let Some(len) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*len);
    if len < 8 {
        return Err(PgError::InvalidLength {
            tag: 0,
            len: len.into(),
        });
    }
    let (len, max) = (len as u32, caps.startup_max());
    if len > max {
        return Err(PgError::MessageTooLarge { tag: 0, len, max });
    }
    let len = len as usize;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    Ok(Some(StartupFrame {
        bytes: buf.split_to(len).freeze(),
    }))
}

impl StartupFrame {
    /// The request code (or protocol version for a StartupMessage).
    pub fn code(&self) -> u32 {
        self.bytes
            .get(4..8)
            .and_then(|c| c.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// What follows the request code.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(8..).unwrap_or_default()
    }

    pub fn parse(&self) -> Result<StartupPacket<'_>, PgError> {
        let mut r = Reader::new(0, self.body());
        match self.code() {
            SSL_REQUEST_CODE => r.finish().map(|()| StartupPacket::SslRequest),
            GSSENC_REQUEST_CODE => r.finish().map(|()| StartupPacket::GssEncRequest),
            CANCEL_REQUEST_CODE => {
                let pid = r.i32("cancel request process id")?;
                let key = r.remaining();
                if !(4..=MAX_CANCEL_KEY).contains(&key.len()) {
                    return Err(r.err("cancel request key length"));
                }
                Ok(StartupPacket::CancelRequest(CancelRequest {
                    pid,
                    secret_key: key,
                }))
            }
            code if code >> 16 == 3 => {
                let params = r.remaining();
                validate_params(params)?;
                Ok(StartupPacket::Startup(StartupMessage {
                    minor: code as u16,
                    params,
                }))
            }
            code if code >> 16 == 1234 => Err(PgError::UnknownStartupCode { code }),
            code => Err(PgError::UnsupportedProtocol {
                major: (code >> 16) as u16,
                minor: code as u16,
            }),
        }
    }
}

/// What a startup packet asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    SslRequest,
    GssEncRequest,
    CancelRequest(CancelRequest<'a>),
    Startup(StartupMessage<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelRequest<'a> {
    pub pid: i32,
    pub secret_key: &'a [u8],
}

/// A StartupMessage for protocol 3.`minor`; parameters already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartupMessage<'a> {
    minor: u16,
    params: &'a [u8],
}

fn validate_params(mut body: &[u8]) -> Result<(), PgError> {
    let bad = |what| PgError::Malformed { tag: 0, what };
    loop {
        let mut r = Reader::new(0, body);
        let name = r.cstr("startup parameter list is not terminated")?;
        if name.is_empty() {
            return r
                .finish()
                .map_err(|_| bad("bytes after the startup parameter terminator"));
        }
        r.cstr("startup parameter has no value")?;
        body = r.remaining();
    }
}

impl<'a> StartupMessage<'a> {
    pub fn minor_version(&self) -> u16 {
        self.minor
    }

    /// Name/value pairs in the order the client sent them.
    pub fn params(&self) -> Params<'a> {
        Params {
            r: Reader::new(0, self.params),
        }
    }

    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn user(&self) -> Option<&'a [u8]> {
        self.get(b"user")
    }

    /// PostgreSQL defaults the database to the user name when it is absent.
    pub fn database(&self) -> Option<&'a [u8]> {
        self.get(b"database").or_else(|| self.user())
    }

    pub fn application_name(&self) -> Option<&'a [u8]> {
        self.get(b"application_name")
    }

    /// `_pq_.*` protocol options, which a server that does not know them
    /// names back in NegotiateProtocolVersion.
    pub fn protocol_options(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.params().filter(|(n, _)| n.starts_with(b"_pq_."))
    }
}

/// Iterator over validated startup parameters.
#[derive(Clone)]
pub struct Params<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.r.cstr("").ok().filter(|n| !n.is_empty())?;
        let value = self.r.cstr("").ok()?;
        Some((name, value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::pg::Limits;

    fn one(bytes: &[u8]) -> Result<Option<StartupFrame>, PgError> {
        next_startup_frame(
            &mut BytesMut::from(bytes),
            &Caps::frontend(&Limits::default()),
        )
    }

    #[test]
    fn parses_a_startup_message() {
        let mut p = Vec::new();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&(PROTOCOL_3_0 | 2).to_be_bytes());
        p.extend_from_slice(b"user\0ci\0_pq_.x\0y\0\0");
        let n = p.len() as u32;
        p[..4].copy_from_slice(&n.to_be_bytes());
        let f = one(&p).unwrap().unwrap();
        let StartupPacket::Startup(m) = f.parse().unwrap() else {
            panic!("not startup")
        };
        assert_eq!(m.minor_version(), 2);
        assert_eq!(m.user(), Some(&b"ci"[..]));
        assert_eq!(m.database(), Some(&b"ci"[..]));
        assert_eq!(
            m.protocol_options().collect::<Vec<_>>(),
            vec![(&b"_pq_.x"[..], &b"y"[..])]
        );
    }

    #[test]
    fn refuses_bad_layouts_and_versions() {
        let packet = |code: u32, body: &[u8]| {
            let mut p = ((8 + body.len()) as u32).to_be_bytes().to_vec();
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(body);
            one(&p).unwrap().unwrap()
        };
        assert!(packet(PROTOCOL_3_0, b"user\0ci\0").parse().is_err());
        assert!(packet(PROTOCOL_3_0, b"user\0ci\0\0x").parse().is_err());
        assert!(packet(PROTOCOL_3_0, b"user\0").parse().is_err());
        assert_eq!(
            packet(2 << 16, b"\0").parse().unwrap_err(),
            PgError::UnsupportedProtocol { major: 2, minor: 0 }
        );
        assert!(packet(SSL_REQUEST_CODE, b"x").parse().is_err());
        assert!(
            packet(CANCEL_REQUEST_CODE, b"\0\0\0\x01\0\0")
                .parse()
                .is_err()
        );
        assert_eq!(
            packet(SSL_REQUEST_CODE, b"").parse().unwrap(),
            StartupPacket::SslRequest
        );
        assert_eq!(
            packet(1234 << 16 | 9, b"").parse().unwrap_err(),
            PgError::UnknownStartupCode {
                code: 1234 << 16 | 9
            }
        );
    }

    #[test]
    fn checks_the_length_first() {
        assert!(one(&[0, 0, 0]).unwrap().is_none());
        assert!(matches!(
            one(&[0, 0, 0, 7]),
            Err(PgError::InvalidLength { tag: 0, len: 7 })
        ));
        assert!(matches!(
            one(&[0xff, 0xff, 0xff, 0xff]),
            Err(PgError::InvalidLength { .. })
        ));
        assert!(matches!(
            one(&10_001u32.to_be_bytes()),
            Err(PgError::MessageTooLarge {
                tag: 0,
                len: 10_001,
                max: 10_000
            })
        ));
    }
}
