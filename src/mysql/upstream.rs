//! The upstream login with the target's stored credential, read fresh for
//! each login (rotation by file needs no restart): native password,
//! caching_sha2 (fast and full path, the full path over TLS only), MariaDB
//! ed25519; TLS with verification when `[target.upstream_tls]` says so.

use bytes::{Bytes, BytesMut};
use compio::io::AsyncWriteExt;
use tollgate_codecs::mysql::{Limits, LoginConfig, LoginStep, OkPacket, UpstreamLogin, caps};

use super::front::MyClient;
use super::io::{PacketReader, Peer};
use crate::config::TargetConfig;
use crate::snapshot::TargetRuntime;
use crate::tls::{Conn, WriteHalf};

/// Capabilities that shape packets both ways: caller and upstream must
/// agree on them, or bytes relayed unchanged would be misread.
const LAYOUT: u32 = caps::PROTOCOL_41
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::SESSION_TRACK
    | caps::DEPRECATE_EOF;

/// The upstream after login.
pub(crate) struct MyUpstream {
    pub reader: PacketReader,
    pub writer: WriteHalf,
    pub capabilities: u32,
    pub connection_id: u32,
    pub server_version: Vec<u8>,
    /// The final OK's payload, replayed to the caller.
    pub ok: Bytes,
    pub status: u16,
}

/// Connect and log in with the stored credential.
pub(crate) async fn login(
    target: &TargetConfig,
    rt: &TargetRuntime,
    client: &MyClient,
) -> Result<MyUpstream, String> {
    let credential = target
        .credential
        .as_ref()
        .ok_or_else(|| "no credential configured".to_string())?;
    let my = target
        .mysql
        .as_ref()
        .ok_or_else(|| "not a mysql target".to_string())?;
    let password = crate::pg::session::read_secret(&credential.source)?;
    let sock = crate::relay::connect_upstream(target)
        .await
        .map_err(|e| format!("connect to {}: {e}", target.upstream))?;
    let mut wanted =
        client.capabilities & !(caps::SSL | caps::CONNECT_WITH_DB | caps::CONNECT_ATTRS);
    if !my.local_infile {
        wanted &= !caps::LOCAL_FILES;
    }
    let cfg = LoginConfig {
        user: credential.user.as_bytes(),
        password: password.expose(),
        database: Some(my.upstream_database.as_bytes()),
        tls: rt.upstream_tls.is_some(),
        capabilities: wanted,
        charset: client.charset,
        max_packet: client.max_packet,
        attrs: client
            .attrs
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect(),
    };
    let mut login = UpstreamLogin::new(cfg);
    let cap = Limits::default().login;
    let (r, mut writer) = Conn::plain(sock.clone()).split();
    let mut reader = PacketReader::new(r, BytesMut::with_capacity(16 << 10), cap, Peer::Upstream);
    let mut out = BytesMut::new();
    let greeting = reader.packet().await.map_err(|e| e.to_string())?;
    let mut step = login
        .greeting(&greeting, &mut out)
        .map_err(|e| e.to_string())?;
    if step == LoginStep::StartTls {
        let Some((tls, name)) = &rt.upstream_tls else {
            return Err("TLS asked without a TLS configuration".into());
        };
        let mut s = &sock;
        let compio::BufResult(r, _) = s.write_all(out.split().freeze()).await;
        r.map_err(|e| format!("upstream: {e}"))?;
        if !reader.buf.is_empty() {
            return Err("the upstream sent data before the TLS handshake".into());
        }
        let conn = Conn::connect(sock, tls.clone(), name.clone())
            .await
            .map_err(|e| format!("upstream TLS: {e}"))?;
        let (r, w) = conn.split();
        writer = w;
        reader = PacketReader::new(r, BytesMut::with_capacity(16 << 10), cap, Peer::Upstream);
        step = login.tls_established(&mut out).map_err(|e| e.to_string())?;
    }
    let ok = authenticate(&mut login, &mut reader, &mut writer, &mut out, step).await?;
    let capabilities = login.capabilities();
    if capabilities & LAYOUT != client.capabilities & LAYOUT {
        return Err(format!(
            "the upstream and the caller agree on different protocol features \
             (upstream {:#x}, caller {:#x})",
            capabilities & LAYOUT,
            client.capabilities & LAYOUT
        ));
    }
    let status = OkPacket::parse(&ok, capabilities)
        .map(|o| o.status)
        .map_err(|e| format!("upstream: {e}"))?;
    reader.cap = Limits::default().response;
    Ok(MyUpstream {
        reader,
        writer,
        capabilities,
        connection_id: login.connection_id(),
        server_version: login.server_version().to_vec(),
        ok,
        status,
    })
}

/// Answer the server's auth packets until it says OK; its payload.
async fn authenticate(
    login: &mut UpstreamLogin<'_>,
    reader: &mut PacketReader,
    writer: &mut WriteHalf,
    out: &mut BytesMut,
    mut step: LoginStep,
) -> Result<Bytes, String> {
    loop {
        if step == LoginStep::StartTls {
            return Err("the upstream asked for TLS twice".into());
        }
        if !out.is_empty() {
            writer
                .write_all(out.split().freeze())
                .await
                .map_err(|e| format!("upstream: {e}"))?;
        }
        let p = reader.packet().await.map_err(|e| e.to_string())?;
        step = login.packet(&p, out).map_err(|e| e.to_string())?;
        if step == LoginStep::Done {
            return Ok(p.payload);
        }
    }
}
