//! The caller's login: the gateway greets as a MySQL 8 server (TLS,
//! plugin auth with length-encoded client data, connect attributes,
//! `caching_sha2_password` by default), refuses a plaintext caller before
//! asking for any secret (unless the listener is loopback and the target
//! allows plaintext), routes by the database in the login packet, and reads
//! the token: from `mysql_clear_password` if the client names it, else as
//! caching_sha2's full authentication (0x01 0x04) over TLS, else after an
//! AuthSwitch to `mysql_clear_password`. One trailing NUL is stripped.

use bytes::BytesMut;
use compio::net::TcpStream;
use tollgate_codecs::mysql::{
    AuthSwitchRequest, ClientHead, Greeting, HandshakeResponse, Limits, Packet, UTF8MB4_GENERAL_CI,
    auth_more_data, caps, encode_packet, status,
};

use super::io::{PacketReader, Peer, code, err_packet, send};
use crate::pipeline::{Admission, Caller, EndReason, Session};
use crate::tls::{Conn, WriteHalf};

/// What the greeting says the server is. Clients pick features by it (a
/// MySQL 8 version makes some ask for collations MariaDB lacks, such as
/// `utf8mb4_0900_ai_ci`); the statements' executable comments are judged
/// by the upstream's own version.
pub(crate) const SERVER_VERSION: &[u8] = b"5.7.99-tollgate";

/// Capabilities the gateway offers callers (TLS is added when the listener
/// has a certificate). Each is one the codec relays on both sides.
pub(crate) const OFFERED: u32 = caps::CLIENT_MYSQL
    | caps::FOUND_ROWS
    | caps::LONG_FLAG
    | caps::CONNECT_WITH_DB
    | caps::LOCAL_FILES
    | caps::PROTOCOL_41
    | caps::INTERACTIVE
    | caps::IGNORE_SIGPIPE
    | caps::TRANSACTIONS
    | caps::RESERVED
    | caps::SECURE_CONNECTION
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::PLUGIN_AUTH
    | caps::CONNECT_ATTRS
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::SESSION_TRACK
    | caps::DEPRECATE_EOF;

const CACHING_SHA2: &[u8] = b"caching_sha2_password";
const CLEAR_PASSWORD: &[u8] = b"mysql_clear_password";

/// A caller after its login packet, before the upstream login.
pub(crate) struct MyClient {
    pub reader: PacketReader,
    pub writer: WriteHalf,
    /// The sequence id of the next packet to the client in the login.
    pub seq: u8,
    /// The capabilities agreed with the caller.
    pub capabilities: u32,
    pub charset: u8,
    pub max_packet: u32,
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The id the greeting gave the caller (what its KILL names).
    pub greeting_id: u32,
}

impl MyClient {
    /// Send an ERR packet in the login exchange.
    pub async fn refuse(&mut self, (c, state): (u16, &[u8; 5]), message: &str) {
        let mut out = BytesMut::new();
        self.seq = err_packet(&mut out, self.seq, c, state, message);
        let _ = send(&mut self.writer, &mut out, Peer::Client).await;
    }
}

/// A nonce of 20 bytes without NUL.
fn nonce() -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..20).map(|_| rng.random_range(1..=127u8)).collect()
}

fn strip_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

/// Greeting, TLS, routing and the caller's token.
pub(crate) async fn front_door(
    s: &Session<'_>,
    greeting_id: u32,
    sock: TcpStream,
) -> Result<Option<Admission<MyClient>>, EndReason> {
    let snapshot = s.snapshot;
    let targets = &s.listener.targets;
    let tls_config = targets
        .iter()
        .find_map(|t| snapshot.targets[*t].tls.clone());
    let (reader, mut writer) = Conn::plain(sock.clone()).split();
    let nonce = nonce();
    let offered = OFFERED | if tls_config.is_some() { caps::SSL } else { 0 };
    let mut out = BytesMut::new();
    let greeting = Greeting {
        server_version: SERVER_VERSION,
        connection_id: greeting_id,
        nonce: nonce.clone(),
        capabilities: offered,
        mariadb_capabilities: 0,
        charset: UTF8MB4_GENERAL_CI,
        status: status::AUTOCOMMIT,
        auth_plugin: CACHING_SHA2,
    };
    encode_packet(&mut out, 0, |o| greeting.encode(o)).map_err(|e| Peer::Client.protocol(e))?;
    send(&mut writer, &mut out, Peer::Client).await?;
    let login_cap = Limits::default().login;
    let mut reader = PacketReader::new(reader, BytesMut::new(), login_cap, Peer::Client);
    let Some(first) = reader.packet_or_eof().await? else {
        return Ok(None);
    };
    first.check_seq(1).map_err(|e| Peer::Client.protocol(e))?;
    let mut tls = None;
    let login = if ClientHead::is_ssl_request(&first.payload) {
        ClientHead::parse_ssl_request(&first.payload).map_err(|e| Peer::Client.protocol(e))?;
        let Some(cfg) = tls_config else {
            return Err(EndReason::Refused("SSLRequest without TLS offered".into()));
        };
        // Clients start the TLS handshake right after SSLRequest (it has
        // no answer): what was read past it is the start of the handshake,
        // given to TLS, never read as plaintext.
        let early = reader.buf.split().to_vec();
        let conn = Conn::accept_after(sock.clone(), cfg, early)
            .await
            .map_err(|e| Peer::Client.io(e))?;
        tls = Some(conn.tls_summary().unwrap_or_else(|| "TLS".into()));
        let (r, w) = conn.split();
        writer = w;
        reader = PacketReader::new(r, BytesMut::new(), login_cap, Peer::Client);
        let p = reader.packet().await?;
        p.check_seq(2).map_err(|e| Peer::Client.protocol(e))?;
        p
    } else {
        first
    };
    let mut client = MyClient {
        reader,
        writer,
        seq: login.next_seq(),
        capabilities: 0,
        charset: UTF8MB4_GENERAL_CI,
        max_packet: 0,
        attrs: Vec::new(),
        greeting_id,
    };
    admit(s, &mut client, &login, tls.is_some(), &nonce)
        .await
        .map(|(target, caller, user)| {
            Some(Admission {
                client,
                target,
                caller,
                tls,
                user: Some(user),
            })
        })
}

/// The login packet: routing, the TLS gate, then the token.
async fn admit(
    s: &Session<'_>,
    client: &mut MyClient,
    login: &Packet,
    encrypted: bool,
    nonce: &[u8],
) -> Result<(usize, Caller, String), EndReason> {
    let resp = match HandshakeResponse::parse(&login.payload) {
        Ok(r) => r,
        Err(e) => {
            client.refuse(code::BAD_HANDSHAKE, "Bad handshake").await;
            return Err(Peer::Client.protocol(e));
        }
    };
    let Some(target) = route(s, resp.database) else {
        let msg = format!(
            "Unknown database '{}'",
            String::from_utf8_lossy(resp.database.unwrap_or_default())
        );
        client.refuse(code::BAD_DB, &msg).await;
        return Err(EndReason::Refused(msg));
    };
    let config = &s.snapshot.config.targets[target];
    *s.entry.target.borrow_mut() = std::rc::Rc::from(config.name.as_str());
    let loopback = s.listener.addr.ip().is_loopback();
    let plaintext_ok = config.allow_plaintext && loopback;
    if !(encrypted || plaintext_ok) {
        client
            .refuse(
                code::TLS_REQUIRED,
                "this target requires an encrypted connection (ssl-mode=REQUIRED)",
            )
            .await;
        return Err(EndReason::Refused(
            "plaintext client on a TLS-only target".into(),
        ));
    }
    if resp.head.capabilities & caps::PLUGIN_AUTH == 0 {
        client
            .refuse(
                code::BAD_HANDSHAKE,
                "a client with plugin authentication is required",
            )
            .await;
        return Err(EndReason::Refused(
            "client without CLIENT_PLUGIN_AUTH".into(),
        ));
    }
    client.capabilities = resp.head.capabilities & (OFFERED | caps::SSL);
    client.charset = resp.head.charset;
    client.max_packet = resp.head.max_packet;
    client.attrs = resp
        .attrs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let user = String::from_utf8_lossy(resp.user).into_owned();
    let token = read_token(client, &resp, encrypted, nonce).await?;
    Ok((target, Caller::Token(token), user))
}

/// The caller's token: in the login packet under `mysql_clear_password`,
/// else after caching_sha2's "perform full authentication" (over TLS), else
/// after a switch to `mysql_clear_password`.
async fn read_token(
    client: &mut MyClient,
    resp: &HandshakeResponse<'_>,
    encrypted: bool,
    nonce: &[u8],
) -> Result<Vec<u8>, EndReason> {
    let mut out = BytesMut::new();
    match resp.auth_plugin {
        Some(CLEAR_PASSWORD) => return Ok(strip_nul(resp.auth_response).to_vec()),
        Some(CACHING_SHA2) if encrypted => {
            client.seq = encode_packet(&mut out, client.seq, |o| {
                auth_more_data::encode(o, &[auth_more_data::PERFORM_FULL_AUTH]);
                Ok(())
            })
            .map_err(|e| Peer::Client.protocol(e))?;
        }
        _ => {
            let switch = AuthSwitchRequest {
                plugin: CLEAR_PASSWORD,
                data: nonce,
            };
            client.seq = encode_packet(&mut out, client.seq, |o| switch.encode(o))
                .map_err(|e| Peer::Client.protocol(e))?;
        }
    }
    send(&mut client.writer, &mut out, Peer::Client).await?;
    read_secret(client).await
}

/// The client's next auth packet: the secret and a NUL.
async fn read_secret(client: &mut MyClient) -> Result<Vec<u8>, EndReason> {
    let p = client.reader.packet().await?;
    p.check_seq(client.seq)
        .map_err(|e| Peer::Client.protocol(e))?;
    client.seq = p.next_seq();
    Ok(strip_nul(&p.payload).to_vec())
}

/// The target the caller's database names; with none named, the listener's
/// only target.
fn route(s: &Session<'_>, database: Option<&[u8]>) -> Option<usize> {
    let targets = &s.listener.targets;
    match database {
        Some(db) => targets.iter().copied().find(|t| {
            s.snapshot.config.targets[*t]
                .mysql
                .as_ref()
                .is_some_and(|m| m.database.as_bytes() == db)
        }),
        None if targets.len() == 1 => targets.first().copied(),
        None => None,
    }
}
