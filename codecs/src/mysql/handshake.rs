//! The connection phase: the server's protocol-10 greeting, the client's
//! SSLRequest and HandshakeResponse41, AuthSwitchRequest and AuthMoreData.

use bytes::{BufMut, BytesMut};

use super::consts::caps;
use super::error::MySqlError;
use super::read::{Reader, put_lenenc, put_lenenc_bytes, put_nul_str};

/// Longest auth-plugin name read or written (MySQL's own are < 32 bytes).
pub const MAX_PLUGIN_NAME: usize = 64;
/// The filler of SSLRequest/HandshakeResponse41 after the charset: 23 bytes,
/// of which MariaDB uses the last 4 for its extended capabilities.
const RESPONSE_FILLER: usize = 23;

/// The server's Initial Handshake Packet (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting<'a> {
    pub server_version: &'a [u8],
    pub connection_id: u32,
    /// The whole nonce (part 1 + part 2, without the trailing NUL): 20
    /// bytes from MySQL and MariaDB.
    pub nonce: Vec<u8>,
    pub capabilities: u32,
    /// MariaDB's extended capabilities (reserved bytes 6..10), 0 elsewhere.
    pub mariadb_capabilities: u32,
    pub charset: u8,
    pub status: u16,
    pub auth_plugin: &'a [u8],
}

impl<'a> Greeting<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Greeting<'a>, MySqlError> {
        let mut r = Reader::new("greeting", payload);
        let version = r.u8("protocol version")?;
        if version == 0xFF {
            // The server refused before greeting (too many connections,
            // host blocked): an ERR packet. The caller parses it as one.
            return Err(r.err("ERR packet instead of a greeting"));
        }
        if version != 10 {
            return Err(MySqlError::Unsupported {
                what: "handshake protocol version",
                value: u64::from(version),
            });
        }
        let server_version = r.nul_str("server version")?;
        let connection_id = r.u32("connection id")?;
        let mut nonce = r.take(8, "auth plugin data part 1")?.to_vec();
        r.u8("filler")?;
        let low = u32::from(r.u16("capability flags")?);
        let charset = r.u8("character set")?;
        let status = r.u16("status flags")?;
        let high = u32::from(r.u16("capability flags")?);
        let capabilities = low | high << 16;
        let data_len = usize::from(r.u8("auth plugin data length")?);
        let reserved = r.take(10, "reserved")?;
        let mariadb_capabilities = if capabilities & caps::CLIENT_MYSQL == 0 {
            u32::from_le_bytes([reserved[6], reserved[7], reserved[8], reserved[9]])
        } else {
            0
        };
        if capabilities & caps::SECURE_CONNECTION != 0 {
            // Part 2 is max(13, length - 8) bytes, the last one a NUL.
            let n = data_len.saturating_sub(8).max(13);
            let part2 = r.take(n, "auth plugin data part 2")?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            nonce.extend_from_slice(part2);
        }
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 {
            r.nul_str_or_rest()
        } else {
            b"mysql_native_password"
        };
        if auth_plugin.len() > MAX_PLUGIN_NAME {
            return Err(r.err("auth plugin name too long"));
        }
        Ok(Greeting {
            server_version,
            connection_id,
            nonce,
            capabilities,
            mariadb_capabilities,
            charset,
            status,
            auth_plugin,
        })
    }

    /// The payload of this greeting. The nonce must be 20 bytes (8 + 12),
    /// as every client expects.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), MySqlError> {
        if self.nonce.len() != 20 {
            return Err(MySqlError::InvalidArgument {
                what: "greeting nonce must be 20 bytes",
            });
        }
        if self.nonce.contains(&0) {
            return Err(MySqlError::InteriorNul {
                what: "greeting nonce",
            });
        }
        out.put_u8(10);
        put_nul_str(out, self.server_version, "server version")?;
        out.put_u32_le(self.connection_id);
        out.extend_from_slice(&self.nonce[..8]);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.charset);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        out.put_u8(21);
        out.put_bytes(0, 6);
        if self.capabilities & caps::CLIENT_MYSQL == 0 {
            out.put_u32_le(self.mariadb_capabilities);
        } else {
            out.put_u32_le(0);
        }
        out.extend_from_slice(&self.nonce[8..]);
        out.put_u8(0);
        put_nul_str(out, self.auth_plugin, "auth plugin name")
    }
}

/// The fixed head every client login packet starts with; alone (32 bytes)
/// it is the SSLRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHead {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    /// MariaDB's extended client capabilities (filler bytes 19..23), only
    /// meaningful when `CLIENT_MYSQL` is clear.
    pub mariadb_capabilities: u32,
}

/// Length of an SSLRequest payload.
pub const SSL_REQUEST_LEN: usize = 32;

impl ClientHead {
    fn read(r: &mut Reader<'_>) -> Result<ClientHead, MySqlError> {
        let capabilities = r.u32("capability flags")?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            // The pre-4.1 HandshakeResponse320: no client sends it today.
            return Err(r.err("client without CLIENT_PROTOCOL_41"));
        }
        let max_packet = r.u32("max packet size")?;
        let charset = r.u8("character set")?;
        let filler = r.take(RESPONSE_FILLER, "filler")?;
        let mariadb_capabilities = if capabilities & caps::CLIENT_MYSQL == 0 {
            u32::from_le_bytes([filler[19], filler[20], filler[21], filler[22]])
        } else {
            0
        };
        Ok(ClientHead {
            capabilities,
            max_packet,
            charset,
            mariadb_capabilities,
        })
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u32_le(self.capabilities);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.charset);
        out.put_bytes(0, RESPONSE_FILLER - 4);
        out.put_u32_le(if self.capabilities & caps::CLIENT_MYSQL == 0 {
            self.mariadb_capabilities
        } else {
            0
        });
    }

    /// Whether a client login packet is an SSLRequest: exactly the head,
    /// with CLIENT_SSL set.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == SSL_REQUEST_LEN
            && payload[1] & (caps::SSL >> 8) as u8 != 0
            && payload[1] & (caps::PROTOCOL_41 >> 8) as u8 != 0
    }

    /// Parses an SSLRequest (the 32-byte head alone).
    pub fn parse_ssl_request(payload: &[u8]) -> Result<ClientHead, MySqlError> {
        let mut r = Reader::new("SSLRequest", payload);
        let head = ClientHead::read(&mut r)?;
        if !r.is_empty() || head.capabilities & caps::SSL == 0 {
            return Err(r.err("not an SSLRequest"));
        }
        Ok(head)
    }

    /// The payload of an SSLRequest (`capabilities` must include CLIENT_SSL).
    pub fn encode_ssl_request(&self, out: &mut BytesMut) {
        self.write(out);
    }
}

/// The client's HandshakeResponse41 (login packet), with connect attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    pub head: ClientHead,
    pub user: &'a [u8],
    pub auth_response: &'a [u8],
    pub database: Option<&'a [u8]>,
    pub auth_plugin: Option<&'a [u8]>,
    /// Connect attributes, in the order the client sent them.
    pub attrs: ConnectAttrs<'a>,
}

/// Connect attributes (key, value) as the client sent them.
pub type ConnectAttrs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Most connect attributes read from one packet (clients send < 20).
pub const MAX_CONNECT_ATTRS: usize = 256;

impl<'a> HandshakeResponse<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<HandshakeResponse<'a>, MySqlError> {
        let mut r = Reader::new("HandshakeResponse41", payload);
        let head = ClientHead::read(&mut r)?;
        let caps = head.capabilities;
        let user = r.nul_str("user name")?;
        let auth_response = if caps & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes("auth response")?
        } else if caps & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8("auth response length")?);
            r.take(n, "auth response")?
        } else {
            r.nul_str("auth response")?
        };
        // An empty database or plugin name is the same as none (clients
        // that set the flag write a lone NUL), so both read as `None`.
        let database = if caps & caps::CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(r.nul_str_or_rest()).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if caps & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.nul_str_or_rest()).filter(|p| !p.is_empty())
        } else {
            None
        };
        if auth_plugin.is_some_and(|p| p.len() > MAX_PLUGIN_NAME) {
            return Err(r.err("auth plugin name too long"));
        }
        let attrs = if caps & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
            parse_attrs(&mut r)?
        } else {
            Vec::new()
        };
        Ok(HandshakeResponse {
            head,
            user,
            auth_response,
            database,
            auth_plugin,
            attrs,
        })
    }

    /// The payload of this login packet, laid out for `head.capabilities`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), MySqlError> {
        let caps = self.head.capabilities;
        let start = out.len();
        let r = self.encode_body(out, caps);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_body(&self, out: &mut BytesMut, caps: u32) -> Result<(), MySqlError> {
        self.head.write(out);
        put_nul_str(out, self.user, "user name")?;
        if caps & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(out, self.auth_response);
        } else if caps & caps::SECURE_CONNECTION != 0 {
            let n = u8::try_from(self.auth_response.len()).map_err(|_| MySqlError::TooLong {
                what: "auth response",
                len: self.auth_response.len(),
                max: 255,
            })?;
            out.put_u8(n);
            out.extend_from_slice(self.auth_response);
        } else {
            put_nul_str(out, self.auth_response, "auth response")?;
        }
        if caps & caps::CONNECT_WITH_DB != 0 {
            put_nul_str(out, self.database.unwrap_or_default(), "database")?;
        }
        if caps & caps::PLUGIN_AUTH != 0 {
            put_nul_str(out, self.auth_plugin.unwrap_or_default(), "auth plugin")?;
        }
        if caps & caps::CONNECT_ATTRS != 0 {
            let mut attrs = BytesMut::new();
            for (k, v) in &self.attrs {
                put_lenenc_bytes(&mut attrs, k);
                put_lenenc_bytes(&mut attrs, v);
            }
            put_lenenc(out, attrs.len() as u64);
            out.extend_from_slice(&attrs);
        }
        Ok(())
    }
}

/// Connect attributes: a length-encoded total, then key/value pairs of
/// length-encoded strings that must fill that total exactly.
fn parse_attrs<'a>(r: &mut Reader<'a>) -> Result<ConnectAttrs<'a>, MySqlError> {
    let block = r.lenenc_bytes("connect attributes")?;
    let mut a = Reader::new("HandshakeResponse41", block);
    let mut attrs = Vec::new();
    while !a.is_empty() {
        if attrs.len() == MAX_CONNECT_ATTRS {
            return Err(a.err("too many connect attributes"));
        }
        let k = a.lenenc_bytes("connect attribute key")?;
        let v = a.lenenc_bytes("connect attribute value")?;
        attrs.push((k, v));
    }
    Ok(attrs)
}

/// AuthSwitchRequest (0xFE): the server asks for another auth plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest<'a> {
    pub plugin: &'a [u8],
    /// The plugin's data (a nonce), without the trailing NUL servers add.
    pub data: &'a [u8],
}

impl<'a> AuthSwitchRequest<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<AuthSwitchRequest<'a>, MySqlError> {
        let mut r = Reader::new("AuthSwitchRequest", payload);
        if r.u8("header")? != 0xFE {
            return Err(r.err("header is not 0xFE"));
        }
        if r.is_empty() {
            // A lone 0xFE is the pre-4.1 "old password" switch.
            return Err(r.err("old-password switch (pre-4.1 auth) refused"));
        }
        let plugin = r.nul_str("plugin name")?;
        if plugin.len() > MAX_PLUGIN_NAME {
            return Err(r.err("auth plugin name too long"));
        }
        let data = r.rest();
        let data = data.strip_suffix(&[0]).unwrap_or(data);
        Ok(AuthSwitchRequest { plugin, data })
    }

    /// The payload; the data gets the trailing NUL MySQL servers send.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), MySqlError> {
        out.put_u8(0xFE);
        put_nul_str(out, self.plugin, "auth plugin name")?;
        out.extend_from_slice(self.data);
        out.put_u8(0);
        Ok(())
    }
}

/// AuthMoreData (0x01): plugin-specific bytes during authentication.
pub mod auth_more_data {
    use bytes::{BufMut, BytesMut};

    use super::super::error::MySqlError;

    pub const HEADER: u8 = 0x01;
    /// caching_sha2_password: the fast-path scramble matched the cache.
    pub const FAST_AUTH_SUCCESS: u8 = 0x03;
    /// caching_sha2_password: "perform full authentication" (send the
    /// password over TLS, or ask for the RSA key).
    pub const PERFORM_FULL_AUTH: u8 = 0x04;

    /// The data of an AuthMoreData payload.
    pub fn parse(payload: &[u8]) -> Result<&[u8], MySqlError> {
        match payload.split_first() {
            Some((&HEADER, data)) => Ok(data),
            _ => Err(MySqlError::Malformed {
                packet: "AuthMoreData",
                what: "header is not 0x01",
            }),
        }
    }

    pub fn encode(out: &mut BytesMut, data: &[u8]) {
        out.put_u8(HEADER);
        out.extend_from_slice(data);
    }
}
