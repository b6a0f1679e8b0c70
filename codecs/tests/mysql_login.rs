//! The upstream login state machine over scripted server exchanges: the
//! caching_sha2_password paths MySQL 8 takes (no MySQL 8 installs here;
//! the bytes are laid out as MySQL 8.0 sends them), and every refusal.
//! MariaDB logins run against the real server in tests/mysql_codec_e2e.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::mysql::*;

const NONCE: [u8; 20] = [
    0x3e, 0x3b, 0x04, 0x55, 0x04, 0x70, 0x16, 0x3a, 0x4c, 0x15, 0x35, 0x03, 0x15, 0x76, 0x73, 0x22,
    0x46, 0x08, 0x18, 0x01,
];

fn packet(seq: u8, payload: &[u8]) -> Packet {
    let mut b = BytesMut::new();
    write_packet(&mut b, seq, payload);
    next_packet(&mut b, 1 << 20).unwrap().unwrap()
}

fn greeting(plugin: &[u8], ssl: bool) -> Packet {
    let mut b = BytesMut::new();
    let mut capabilities = caps::CODEC_SUPPORTED;
    if !ssl {
        capabilities &= !caps::SSL;
    }
    Greeting {
        server_version: b"8.0.36",
        connection_id: 12,
        nonce: NONCE.to_vec(),
        capabilities,
        mariadb_capabilities: 0,
        charset: 255,
        status: 2,
        auth_plugin: plugin,
    }
    .encode(&mut b)
    .unwrap();
    packet(0, &b)
}

fn config(tls: bool) -> LoginConfig<'static> {
    LoginConfig {
        user: b"svc",
        password: b"hola",
        database: Some(b"app"),
        tls,
        capabilities: caps::CODEC_SUPPORTED,
        charset: UTF8MB4_GENERAL_CI,
        max_packet: 1 << 24,
        attrs: Vec::new(),
    }
}

/// The packets written to `out`, decoded.
fn sent(out: &mut BytesMut) -> Vec<Packet> {
    let mut v = Vec::new();
    while let Some(p) = next_packet(out, 1 << 20).unwrap() {
        v.push(p);
    }
    v
}

fn ok(seq: u8) -> Packet {
    packet(seq, &[0, 0, 0, 2, 0, 0, 0])
}

#[test]
fn caching_sha2_fast_path_sends_the_captured_scramble() {
    let mut login = UpstreamLogin::new(config(false));
    let mut out = BytesMut::new();
    let step = login
        .greeting(&greeting(b"caching_sha2_password", false), &mut out)
        .unwrap();
    assert_eq!(step, LoginStep::Continue);
    let p = sent(&mut out);
    assert_eq!(p[0].seq, 1);
    let resp = HandshakeResponse::parse(&p[0].payload).unwrap();
    assert_eq!(resp.auth_response, caching_sha2_fast(b"hola", &NONCE));
    assert_eq!(resp.auth_plugin, Some(&b"caching_sha2_password"[..]));
    assert_eq!(resp.database, Some(&b"app"[..]));
    // 0x01 0x03 (fast auth success), then OK.
    let step = login.packet(&packet(2, &[0x01, 0x03]), &mut out).unwrap();
    assert_eq!((step, out.len()), (LoginStep::Continue, 0));
    assert_eq!(login.packet(&ok(3), &mut out).unwrap(), LoginStep::Done);
}

#[test]
fn caching_sha2_full_path_sends_the_password_only_over_tls() {
    let mut login = UpstreamLogin::new(config(true));
    let mut out = BytesMut::new();
    let step = login
        .greeting(&greeting(b"caching_sha2_password", true), &mut out)
        .unwrap();
    assert_eq!(step, LoginStep::StartTls);
    let p = sent(&mut out);
    assert_eq!((p[0].seq, p[0].payload.len()), (1, SSL_REQUEST_LEN));
    assert!(ClientHead::is_ssl_request(&p[0].payload));
    login.tls_established(&mut out).unwrap();
    assert_eq!(sent(&mut out)[0].seq, 2);
    // "perform full authentication": the password and a NUL, seq 4.
    login.packet(&packet(3, &[0x01, 0x04]), &mut out).unwrap();
    let p = sent(&mut out);
    assert_eq!((p[0].seq, &p[0].payload[..]), (4, &b"hola\0"[..]));
    assert_eq!(login.packet(&ok(5), &mut out).unwrap(), LoginStep::Done);

    // Without TLS the same request would need the RSA exchange: refused,
    // and nothing is written.
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"caching_sha2_password", true), &mut out)
        .unwrap();
    out.clear();
    assert_eq!(
        login.packet(&packet(2, &[0x01, 0x04]), &mut out),
        Err(LoginError::RsaKeyExchange)
    );
    assert!(out.is_empty());
}

#[test]
fn auth_switches_answer_each_plugin_and_refuse_cleartext_without_tls() {
    // MariaDB default plugin, account on caching_sha2 (MySQL 8 style switch).
    let mut login = UpstreamLogin::new(config(false));
    let mut out = BytesMut::new();
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    let first = sent(&mut out);
    assert_eq!(
        HandshakeResponse::parse(&first[0].payload)
            .unwrap()
            .auth_response,
        native_password(b"hola", &NONCE)
    );
    let mut switch = BytesMut::new();
    AuthSwitchRequest {
        plugin: b"caching_sha2_password",
        data: &[7u8; 20],
    }
    .encode(&mut switch)
    .unwrap();
    login.packet(&packet(2, &switch), &mut out).unwrap();
    let p = sent(&mut out);
    assert_eq!(
        (p[0].seq, p[0].payload.to_vec()),
        (3, caching_sha2_fast(b"hola", &[7u8; 20]))
    );

    // mysql_clear_password without TLS: refused before anything is sent.
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    out.clear();
    let mut switch = BytesMut::new();
    AuthSwitchRequest {
        plugin: b"mysql_clear_password",
        data: b"",
    }
    .encode(&mut switch)
    .unwrap();
    assert!(matches!(
        login.packet(&packet(2, &switch), &mut out),
        Err(LoginError::CleartextWithoutTls { .. })
    ));
    assert!(out.is_empty());

    // An unknown plugin, a lone 0xFE (pre-4.1 switch), an ERR.
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    let mut switch = BytesMut::new();
    AuthSwitchRequest {
        plugin: b"dialog",
        data: b"x",
    }
    .encode(&mut switch)
    .unwrap();
    assert!(matches!(
        login.packet(&packet(2, &switch), &mut out),
        Err(LoginError::UnsupportedPlugin { .. })
    ));
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    assert!(login.packet(&packet(2, &[0xFE]), &mut out).is_err());
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    let mut err = BytesMut::new();
    ErrPacket {
        code: 1045,
        sqlstate: Some(*b"28000"),
        message: b"Access denied",
    }
    .encode(&mut err);
    assert_eq!(
        login.packet(&packet(2, &err), &mut out),
        Err(LoginError::Server {
            code: 1045,
            sqlstate: "28000".into(),
            message: "Access denied".into()
        })
    );
}

#[test]
fn refusals_before_any_secret_is_sent() {
    let mut out = BytesMut::new();
    // TLS wanted, server without it.
    let mut login = UpstreamLogin::new(config(true));
    assert_eq!(
        login.greeting(&greeting(b"caching_sha2_password", false), &mut out),
        Err(LoginError::ServerWithoutTls)
    );
    assert!(out.is_empty());
    // A greeting with the wrong sequence id.
    let mut login = UpstreamLogin::new(config(false));
    let mut g = greeting(b"caching_sha2_password", false);
    g.seq = 3;
    assert!(matches!(
        login.greeting(&g, &mut out),
        Err(LoginError::Codec(MySqlError::Sequence { .. }))
    ));
    // A server reply out of sequence after the login packet.
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"caching_sha2_password", false), &mut out)
        .unwrap();
    assert!(login.packet(&ok(5), &mut out).is_err());
    // Too many switches.
    let mut login = UpstreamLogin::new(config(false));
    login
        .greeting(&greeting(b"mysql_native_password", false), &mut out)
        .unwrap();
    let mut switch = BytesMut::new();
    AuthSwitchRequest {
        plugin: b"mysql_native_password",
        data: &[1u8; 20],
    }
    .encode(&mut switch)
    .unwrap();
    login.packet(&packet(2, &switch), &mut out).unwrap();
    login.packet(&packet(4, &switch), &mut out).unwrap();
    assert_eq!(
        login.packet(&packet(6, &switch), &mut out),
        Err(LoginError::TooManySwitches)
    );
}
