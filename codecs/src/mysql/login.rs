//! Upstream login as a sans-IO state machine: the gateway feeds it the
//! server's packets and writes out what it puts in the buffer.
//!
//! ```text
//! greeting ──tls──▶ SSLRequest, StartTls ──tls_established──▶ HandshakeResponse41
//!          └──────────────────────────────────────────────▶ HandshakeResponse41
//! then per server packet:
//!   OK                         → Done
//!   ERR                        → LoginError::Server
//!   AuthSwitchRequest (0xFE)   → the new plugin's answer (at most 2 switches)
//!   AuthMoreData 0x01 0x03     → wait (caching_sha2 fast path accepted)
//!   AuthMoreData 0x01 0x04     → password + NUL over TLS, else refused
//! ```
//! Secrets are borrowed, never stored: the caller keeps (and zeroizes) them.

use bytes::BytesMut;

use super::auth::{AuthPlugin, cleartext, scramble};
use super::consts::caps;
use super::error::MySqlError;
use super::frame::{Packet, encode_packet};
use super::handshake::{
    AuthSwitchRequest, ClientHead, Greeting, HandshakeResponse, auth_more_data,
};
use super::response::{ErrPacket, OkPacket};

/// What the gateway logs in with.
#[derive(Debug, Clone)]
pub struct LoginConfig<'a> {
    pub user: &'a [u8],
    pub password: &'a [u8],
    pub database: Option<&'a [u8]>,
    /// Upgrade to TLS before sending anything else; a server without TLS
    /// is refused.
    pub tls: bool,
    /// Capabilities the gateway wants; the result is ANDed with the
    /// server's and with [`caps::CODEC_SUPPORTED`].
    pub capabilities: u32,
    pub charset: u8,
    pub max_packet: u32,
    pub attrs: Vec<(&'a [u8], &'a [u8])>,
}

/// Why an upstream login failed. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Codec(#[from] MySqlError),
    #[error("server refused the login: {code} ({sqlstate}) {message}")]
    Server {
        code: u16,
        sqlstate: String,
        message: String,
    },
    #[error("server does not offer TLS")]
    ServerWithoutTls,
    #[error("server does not speak CLIENT_PROTOCOL_41")]
    ServerTooOld,
    #[error("auth plugin {name} is not supported")]
    UnsupportedPlugin { name: String },
    #[error("{plugin} would send the password in clear without TLS; refused")]
    CleartextWithoutTls { plugin: &'static str },
    #[error(
        "caching_sha2_password full authentication without TLS needs the RSA key exchange, which is not supported"
    )]
    RsaKeyExchange,
    #[error("too many auth plugin switches")]
    TooManySwitches,
    #[error("unexpected packet 0x{header:02x} in login state {state}")]
    UnexpectedPacket { state: &'static str, header: u8 },
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Write the bytes in the buffer (possibly none), then read a packet.
    Continue,
    /// Write the buffer (the SSLRequest), run the TLS handshake, then call
    /// [`UpstreamLogin::tls_established`].
    StartTls,
    /// Logged in; anything in the buffer is still to be written (nothing
    /// today).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Tls,
    Auth,
    Done,
}

/// The login state machine for one upstream connection.
#[derive(Debug)]
pub struct UpstreamLogin<'a> {
    cfg: LoginConfig<'a>,
    state: State,
    /// The sequence id the next packet (either direction) carries.
    seq: u8,
    nonce: Vec<u8>,
    plugin: Option<AuthPlugin>,
    capabilities: u32,
    switches: u8,
    tls_active: bool,
    server_version: Vec<u8>,
    connection_id: u32,
}

impl<'a> UpstreamLogin<'a> {
    pub fn new(cfg: LoginConfig<'a>) -> Self {
        UpstreamLogin {
            cfg,
            state: State::Greeting,
            seq: 0,
            nonce: Vec::new(),
            plugin: None,
            capabilities: 0,
            switches: 0,
            tls_active: false,
            server_version: Vec::new(),
            connection_id: 0,
        }
    }

    /// The capabilities agreed with the server (valid after the greeting).
    pub fn capabilities(&self) -> u32 {
        self.capabilities
    }

    pub fn server_version(&self) -> &[u8] {
        &self.server_version
    }

    /// The nonce of the last greeting or auth switch: COM_CHANGE_USER's
    /// first scramble uses the greeting's.
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// The server's id for this connection (what `KILL` takes).
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// Feeds the server's greeting.
    pub fn greeting(&mut self, p: &Packet, out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        self.expect(State::Greeting, p)?;
        if p.header() == 0xFF {
            return Err(server_error(&p.payload));
        }
        let g = Greeting::parse(&p.payload)?;
        if g.capabilities & caps::PROTOCOL_41 == 0 {
            return Err(LoginError::ServerTooOld);
        }
        if self.cfg.tls && g.capabilities & caps::SSL == 0 {
            return Err(LoginError::ServerWithoutTls);
        }
        let mut want = self.cfg.capabilities
            | caps::PROTOCOL_41
            | caps::SECURE_CONNECTION
            | caps::PLUGIN_AUTH
            | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA;
        want &= !(caps::SSL | caps::CONNECT_WITH_DB | caps::CONNECT_ATTRS);
        if self.cfg.tls {
            want |= caps::SSL;
        }
        if self.cfg.database.is_some() {
            want |= caps::CONNECT_WITH_DB;
        }
        if !self.cfg.attrs.is_empty() {
            want |= caps::CONNECT_ATTRS;
        }
        // CLIENT_MYSQL stays as the server has it, so a MariaDB server does
        // not read the filler as extended capabilities we never set.
        let agreed = want & g.capabilities & caps::CODEC_SUPPORTED;
        self.capabilities = (agreed & !caps::CLIENT_MYSQL) | (g.capabilities & caps::CLIENT_MYSQL);
        self.nonce = g.nonce.clone();
        self.plugin = AuthPlugin::from_name(g.auth_plugin);
        self.server_version = g.server_version.to_vec();
        self.connection_id = g.connection_id;
        self.seq = p.next_seq();
        if self.cfg.tls {
            let head = self.head();
            self.seq = encode_packet(out, self.seq, |o| {
                head.encode_ssl_request(o);
                Ok(())
            })?;
            self.state = State::Tls;
            return Ok(LoginStep::StartTls);
        }
        self.send_response(out)
    }

    /// The TLS handshake after [`LoginStep::StartTls`] succeeded.
    pub fn tls_established(&mut self, out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        if self.state != State::Tls {
            return Err(LoginError::UnexpectedPacket {
                state: "tls",
                header: 0,
            });
        }
        self.tls_active = true;
        self.send_response(out)
    }

    fn head(&self) -> ClientHead {
        ClientHead {
            capabilities: self.capabilities,
            max_packet: self.cfg.max_packet,
            charset: self.cfg.charset,
            mariadb_capabilities: 0,
        }
    }

    fn send_response(&mut self, out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        // An unknown default plugin: answer as mysql_native_password and
        // let the server switch to what the account uses.
        let plugin = match self.plugin {
            Some(p) if !p.sends_cleartext() || self.tls_active => p,
            _ => AuthPlugin::NativePassword,
        };
        self.plugin = Some(plugin);
        let auth =
            scramble(plugin, self.cfg.password, &self.nonce).ok_or(MySqlError::Malformed {
                packet: "greeting",
                what: "nonce too short for the auth plugin",
            })?;
        let resp = HandshakeResponse {
            head: self.head(),
            user: self.cfg.user,
            auth_response: &auth,
            database: self.cfg.database,
            auth_plugin: Some(plugin.name()),
            attrs: self.cfg.attrs.clone(),
        };
        self.seq = encode_packet(out, self.seq, |o| resp.encode(o))?;
        self.state = State::Auth;
        Ok(LoginStep::Continue)
    }

    fn expect(&self, state: State, p: &Packet) -> Result<(), LoginError> {
        if self.state != state {
            return Err(LoginError::UnexpectedPacket {
                state: "out of order",
                header: p.header(),
            });
        }
        p.check_seq(self.seq)?;
        Ok(())
    }

    /// Feeds a server packet after the login packet was sent.
    pub fn packet(&mut self, p: &Packet, out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        self.expect(State::Auth, p)?;
        self.seq = p.next_seq();
        match p.header() {
            0x00 => {
                OkPacket::parse(&p.payload, self.capabilities)?;
                self.state = State::Done;
                Ok(LoginStep::Done)
            }
            0xFF => Err(server_error(&p.payload)),
            0xFE => self.switch(&p.payload, out),
            auth_more_data::HEADER => self.more_data(&p.payload, out),
            header => Err(LoginError::UnexpectedPacket {
                state: "auth",
                header,
            }),
        }
    }

    fn switch(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        self.switches += 1;
        if self.switches > 2 {
            return Err(LoginError::TooManySwitches);
        }
        let req = AuthSwitchRequest::parse(payload)?;
        let plugin =
            AuthPlugin::from_name(req.plugin).ok_or_else(|| LoginError::UnsupportedPlugin {
                name: String::from_utf8_lossy(req.plugin).into_owned(),
            })?;
        if plugin.sends_cleartext() && !self.tls_active {
            return Err(LoginError::CleartextWithoutTls {
                plugin: "mysql_clear_password",
            });
        }
        let answer =
            scramble(plugin, self.cfg.password, req.data).ok_or(MySqlError::Malformed {
                packet: "AuthSwitchRequest",
                what: "nonce too short for the auth plugin",
            })?;
        self.plugin = Some(plugin);
        self.nonce = req.data.to_vec();
        self.seq = encode_packet(out, self.seq, |o| {
            o.extend_from_slice(&answer);
            Ok(())
        })?;
        Ok(LoginStep::Continue)
    }

    fn more_data(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<LoginStep, LoginError> {
        let data = auth_more_data::parse(payload)?;
        if self.plugin != Some(AuthPlugin::CachingSha2) {
            return Err(LoginError::UnexpectedPacket {
                state: "auth more data",
                header: auth_more_data::HEADER,
            });
        }
        match data {
            [auth_more_data::FAST_AUTH_SUCCESS] => Ok(LoginStep::Continue),
            [auth_more_data::PERFORM_FULL_AUTH] if self.tls_active => {
                let answer = cleartext(self.cfg.password);
                self.seq = encode_packet(out, self.seq, |o| {
                    o.extend_from_slice(&answer);
                    Ok(())
                })?;
                Ok(LoginStep::Continue)
            }
            [auth_more_data::PERFORM_FULL_AUTH] => Err(LoginError::RsaKeyExchange),
            _ => Err(LoginError::UnexpectedPacket {
                state: "caching_sha2 more data",
                header: auth_more_data::HEADER,
            }),
        }
    }
}

fn server_error(payload: &[u8]) -> LoginError {
    match ErrPacket::parse(payload) {
        Ok(e) => LoginError::Server {
            code: e.code,
            sqlstate: e
                .sqlstate
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .unwrap_or_default(),
            message: String::from_utf8_lossy(e.message).into_owned(),
        },
        Err(e) => LoginError::Codec(e),
    }
}
