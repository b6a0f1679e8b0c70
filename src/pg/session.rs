//! The PostgreSQL session: start-up (TLS negotiation, routing by database,
//! the token from the password message), upstream login with the stored
//! credential, then the inspected relay ([`super::relay`]). The session
//! pipeline drives these steps (`super::adapter`).
//!
//! See `LIFECYCLE.md` beside this file for the states and what the client
//! sees in each failure.

use bytes::BytesMut;
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use tollgate_codecs::pg::{
    self, Authentication, BackendKeyData, Caps, ErrorFields, Limits, StartupPacket,
    TransactionStatus, tag,
};
use tracing::{info, warn};

use super::auth::{AuthPolicy, AuthStep, ChannelBinding, Password, UpstreamAuth};
use super::cancel::{CancelMap, CancelTarget};
use super::io::{FrameReader, Peer, SessionError, send};
use crate::config::{SecretSource, TargetConfig};
use crate::engine::session::SessionEntry;
use crate::pipeline::{Admission, Caller};
use crate::snapshot::{Snapshot, TargetRuntime};
use crate::tls::Conn;

/// SQLSTATEs the gateway itself produces.
pub mod sqlstate {
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const UNKNOWN_DATABASE: &str = "3D000";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const CANNOT_CONNECT: &str = "08001";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
}

/// What the client sees for any authentication failure: one generic line.
/// The precise reason goes to the log (and the audit record), never to the
/// client, so a caller cannot probe which check failed.
pub const AUTH_FAILED: &str = "authentication failed";

/// A client after start-up, before upstream login.
pub(crate) struct PgClient {
    pub reader: crate::tls::ReadHalf,
    pub writer: crate::tls::WriteHalf,
    pub buf: BytesMut,
    /// Start-up parameters passed on to the upstream's start-up message.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Start-up: encryption, routing by database, the token from the password
/// message (the pipeline verifies it). `Ok(None)`: the connection was a
/// cancel request (handled) or the client went away politely.
pub(crate) async fn front_door(
    cancels: &CancelMap,
    snapshot: &Snapshot,
    targets: &[usize],
    entry: &SessionEntry,
    sock: TcpStream,
) -> Result<Option<Admission<PgClient>>, SessionError> {
    let caps = Caps::frontend(&Limits::default());
    // No buffer until the client has sent something: an idle connection
    // holds only its socket (the first read reserves what it needs).
    crate::limits::first_bytes(&sock)
        .await
        .map_err(SessionError::ClientIo)?;
    let mut buf = BytesMut::new();
    let tls_config = targets
        .iter()
        .find_map(|t| snapshot.targets[*t].tls.clone());
    // The start-up packet, after at most one encryption negotiation each.
    let (mut reader, mut writer) = Conn::plain(sock.clone()).split();
    let mut tls_summary: Option<String> = None;
    let mut ssl_asked = false;
    let mut gss_asked = false;
    let frame = loop {
        let mut fr = FrameReader::new(reader, buf, caps.clone(), Peer::Client);
        let frame = loop {
            match pg::next_startup_frame(&mut fr.buf, &fr.caps) {
                Ok(Some(f)) => break f,
                Ok(None) => {
                    if !fr.fill_or_eof().await? {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    let mut out = BytesMut::new();
                    super::ending::protocol_fatal(&mut out, &e);
                    let _ = send(&mut writer, &mut out, Peer::Client).await;
                    return Err(SessionError::ClientProtocol(e));
                }
            }
        };
        buf = fr.buf;
        reader = fr.half;
        match frame.code() {
            pg::SSL_REQUEST_CODE if !ssl_asked && tls_summary.is_none() => {
                ssl_asked = true;
                if !buf.is_empty() {
                    // Bytes after SSLRequest but before our answer would be
                    // read as plaintext and then trusted as if encrypted.
                    return Err(SessionError::Refused(
                        "client sent data after SSLRequest before the TLS handshake".into(),
                    ));
                }
                match &tls_config {
                    Some(cfg) => {
                        let mut s = &sock;
                        let compio::BufResult(r, _) = s.write_all(&b"S"[..]).await;
                        r.map_err(SessionError::ClientIo)?;
                        let conn = Conn::accept(sock.clone(), cfg.clone())
                            .await
                            .map_err(SessionError::ClientIo)?;
                        tls_summary = Some(conn.tls_summary().unwrap_or_else(|| "TLS".into()));
                        (reader, writer) = conn.split();
                    }
                    None => {
                        let mut s = &sock;
                        let compio::BufResult(r, _) = s.write_all(&b"N"[..]).await;
                        r.map_err(SessionError::ClientIo)?;
                    }
                }
            }
            pg::GSSENC_REQUEST_CODE if !gss_asked && tls_summary.is_none() => {
                // PostgreSQL without GSSAPI answers 'N' and the client goes
                // on with SSL or plaintext.
                gss_asked = true;
                let mut s = &sock;
                let compio::BufResult(r, _) = s.write_all(&b"N"[..]).await;
                r.map_err(SessionError::ClientIo)?;
            }
            _ => break frame,
        }
    };
    let packet = match frame.parse() {
        Ok(p) => p,
        Err(e) => {
            let mut out = BytesMut::new();
            super::ending::protocol_fatal(&mut out, &e);
            let _ = send(&mut writer, &mut out, Peer::Client).await;
            return Err(SessionError::ClientProtocol(e));
        }
    };
    let startup = match packet {
        StartupPacket::CancelRequest(c) => {
            cancel(cancels, c.pid, c.secret_key).await;
            return Ok(None);
        }
        StartupPacket::Startup(s) => s,
        _ => {
            let mut out = BytesMut::new();
            fatal(
                &mut out,
                sqlstate::PROTOCOL_VIOLATION,
                "unsupported start-up request",
            );
            let _ = send(&mut writer, &mut out, Peer::Client).await;
            return Err(SessionError::Refused("unsupported start-up request".into()));
        }
    };
    let mut out = BytesMut::new();
    let database = startup
        .database()
        .or_else(|| startup.user())
        .unwrap_or_default();
    let Some(&target_idx) = targets.iter().find(|t| {
        snapshot.config.targets[**t]
            .postgres
            .as_ref()
            .is_some_and(|p| p.database.as_bytes() == database)
    }) else {
        let msg = format!(
            "database \"{}\" does not exist",
            String::from_utf8_lossy(database)
        );
        fatal(&mut out, sqlstate::UNKNOWN_DATABASE, &msg);
        let _ = send(&mut writer, &mut out, Peer::Client).await;
        return Err(SessionError::Refused(msg));
    };
    let target = &snapshot.config.targets[target_idx];
    *entry.target.borrow_mut() = std::rc::Rc::from(target.name.as_str());
    if tls_summary.is_none() && !target.allow_plaintext {
        fatal(
            &mut out,
            sqlstate::INVALID_AUTHORIZATION,
            "this target requires an encrypted connection (sslmode=require)",
        );
        let _ = send(&mut writer, &mut out, Peer::Client).await;
        return Err(SessionError::Refused(
            "plaintext client on a TLS-only target".into(),
        ));
    }
    if startup
        .get(b"replication")
        .is_some_and(|v| !matches!(v, b"false" | b"off" | b"no" | b"0"))
    {
        fatal(
            &mut out,
            sqlstate::FEATURE_NOT_SUPPORTED,
            "replication connections are not allowed through tollgate",
        );
        let _ = send(&mut writer, &mut out, Peer::Client).await;
        return Err(SessionError::Refused("replication connection".into()));
    }
    // Newer protocol minors and _pq_ options: say what we speak, like
    // PostgreSQL does, before authentication.
    let options: Vec<&[u8]> = startup.protocol_options().map(|(k, _)| k).collect();
    if startup.minor_version() > 0 || !options.is_empty() {
        pg::encode_negotiate_protocol_version(&mut out, 0, &options)
            .map_err(SessionError::ClientProtocol)?;
    }
    let params: Vec<(Vec<u8>, Vec<u8>)> = startup
        .params()
        .filter(|(k, _)| {
            !matches!(*k, b"user" | b"database" | b"replication") && !k.starts_with(b"_pq_.")
        })
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    if let Some(why) = super::lexmode::startup_refusal(&params) {
        fatal(&mut out, sqlstate::FEATURE_NOT_SUPPORTED, &why);
        let _ = send(&mut writer, &mut out, Peer::Client).await;
        return Err(SessionError::Refused(why));
    }
    let user = String::from_utf8_lossy(startup.user().unwrap_or_default()).into_owned();
    // The token is the password.
    pg::encode_authentication_cleartext_password(&mut out);
    send(&mut writer, &mut out, Peer::Client).await?;
    let mut fr = FrameReader::new(reader, buf, caps, Peer::Client);
    let token = match read_password(&mut fr).await {
        Ok(t) => t,
        Err(e) => {
            password_refusal(&mut out, &e);
            let _ = send(&mut writer, &mut out, Peer::Client).await;
            return Err(e);
        }
    };
    Ok(Some(Admission {
        client: PgClient {
            reader: fr.half,
            writer,
            buf: fr.buf,
            params,
        },
        target: target_idx,
        caller: Caller::Token(token),
        tls: tls_summary,
        user: Some(user),
    }))
}

/// The token from the client's password message.
async fn read_password(fr: &mut FrameReader) -> Result<Vec<u8>, SessionError> {
    let pw = fr.frame().await?;
    if pw.tag() != tag::PASSWORD {
        return Err(SessionError::Refused(format!(
            "expected a password message, got message type {}",
            pw.tag().escape_ascii()
        )));
    }
    let token = pg::PasswordMessage::parse(&pw).map_err(SessionError::ClientProtocol)?;
    Ok(token.password.to_vec())
}

/// What the client reads when its password message cannot be accepted: a
/// token above the cap is an authentication failure (`28P01`, as
/// documented), anything else not a password message a protocol violation.
fn password_refusal(out: &mut BytesMut, e: &SessionError) {
    match e {
        SessionError::ClientProtocol(pg::PgError::MessageTooLarge {
            tag: tag::PASSWORD, ..
        }) => fatal(out, sqlstate::INVALID_PASSWORD, AUTH_FAILED),
        SessionError::ClientProtocol(pe) => super::ending::protocol_fatal(out, pe),
        SessionError::Refused(why) => fatal(out, sqlstate::PROTOCOL_VIOLATION, why),
        _ => {}
    }
}

/// An ErrorResponse with severity FATAL.
pub(crate) fn fatal(out: &mut BytesMut, code: &str, message: &str) {
    // Encoding fails only on NUL bytes, which our messages never contain.
    let _ = pg::encode_error_response(out, &ErrorFields::fatal(code, message));
}

/// Forward a client's CancelRequest to the upstream that runs its query.
async fn cancel(cancels: &CancelMap, pid: i32, secret: &[u8]) {
    let Some(t) = cancels.lookup(pid, secret) else {
        info!(pid, "cancel request with an unknown key ignored");
        return;
    };
    let mut out = BytesMut::new();
    if pg::encode_cancel_request(&mut out, t.pid, &t.secret).is_err() {
        return;
    }
    let connect = TcpStream::connect(t.upstream.as_str());
    match compio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(mut s)) => {
            let _ = s.set_nodelay(true);
            let compio::BufResult(r, _) = s.write_all(out.freeze()).await;
            info!(session = %t.session, ok = r.is_ok(), "cancel request forwarded to the upstream");
        }
        _ => warn!(session = %t.session, "cancel request: upstream unreachable"),
    }
}

/// The stored password for a target, read fresh for each login so a rotated
/// secret needs no restart. Its bytes are never logged.
pub(crate) fn read_secret(source: &SecretSource) -> Result<Password, String> {
    match source {
        SecretSource::File(path) => {
            let mut bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the credential file {}: {e}", path.display()))?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            if bytes.is_empty() {
                return Err(format!("the credential file {} is empty", path.display()));
            }
            Ok(Password::new(bytes))
        }
        SecretSource::Env(var) => std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(|v| Password::new(v.into_encoded_bytes()))
            .ok_or_else(|| format!("the credential variable {var} is not set")),
    }
}

/// The upstream after login.
pub(crate) struct UpstreamReady {
    pub reader: crate::tls::ReadHalf,
    pub writer: crate::tls::WriteHalf,
    pub buf: BytesMut,
    /// ParameterStatus and NoticeResponse frames to replay to the client.
    pub greeting: BytesMut,
    pub key: Option<(i32, Vec<u8>)>,
    pub status: TransactionStatus,
    pub method: &'static str,
}

/// Connect to the upstream and log in with the stored credential.
pub(crate) async fn login_upstream(
    target: &TargetConfig,
    rt: &TargetRuntime,
    params: &[(Vec<u8>, Vec<u8>)],
) -> Result<UpstreamReady, String> {
    let credential = target
        .credential
        .as_ref()
        .ok_or_else(|| "no credential configured".to_string())?;
    let settings = target
        .postgres
        .as_ref()
        .ok_or_else(|| "not a postgres target".to_string())?;
    let password = read_secret(&credential.source)?;
    let sock = crate::relay::connect_upstream(target)
        .await
        .map_err(|e| format!("connect to {}: {e}", target.upstream))?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = BytesMut::new();
    let (conn, binding) = match &rt.upstream_tls {
        None => (Conn::plain(sock), ChannelBinding::None),
        Some((cfg, name)) => {
            pg::encode_ssl_request(&mut out);
            let mut s = &sock;
            let compio::BufResult(r, _) = s.write_all(out.split().freeze()).await;
            r.map_err(|e| format!("upstream: {e}"))?;
            let mut one = Conn::plain(sock.clone()).split().0;
            let mut answer = BytesMut::with_capacity(1);
            match one.read_into(&mut answer).await {
                Ok(1) if answer[0] == b'S' => {}
                Ok(_) => return Err("the upstream refused TLS".into()),
                Err(e) => return Err(format!("upstream: {e}")),
            }
            let conn = Conn::connect(sock, cfg.clone(), name.clone())
                .await
                .map_err(|e| format!("upstream TLS: {e}"))?;
            let binding = conn
                .peer_certificates()
                .and_then(|c| c.first().cloned())
                .and_then(|c| super::auth::tls_server_end_point(&c).ok())
                .map_or(ChannelBinding::None, ChannelBinding::TlsServerEndPoint);
            (conn, binding)
        }
    };
    let mut startup_params: Vec<(&[u8], &[u8])> = vec![
        (b"user", credential.user.as_bytes()),
        (b"database", settings.upstream_database.as_bytes()),
    ];
    for (k, v) in params {
        startup_params.push((k, v));
    }
    pg::encode_startup_message(&mut out, 0, startup_params)
        .map_err(|e| format!("encoding the start-up message: {e}"))?;
    let (reader, mut writer) = conn.split();
    send(&mut writer, &mut out, Peer::Upstream)
        .await
        .map_err(|e| e.to_string())?;
    let mut fr = FrameReader::new(
        reader,
        std::mem::take(&mut buf),
        Caps::backend(&Limits::default()),
        Peer::Upstream,
    );
    let mut auth = UpstreamAuth::new(
        credential.user.as_bytes(),
        password,
        binding,
        AuthPolicy::default(),
    );
    let mut greeting = BytesMut::new();
    let mut key = None;
    let mut method = "";
    loop {
        let f = fr.frame().await.map_err(|e| e.to_string())?;
        match f.tag() {
            tag::AUTHENTICATION => {
                let msg = Authentication::parse(&f).map_err(|e| format!("upstream: {e}"))?;
                match auth
                    .step(&msg, &mut out)
                    .map_err(|e| format!("upstream login: {e}"))?
                {
                    AuthStep::Respond => send(&mut writer, &mut out, Peer::Upstream)
                        .await
                        .map_err(|e| e.to_string())?,
                    AuthStep::Wait => {}
                    AuthStep::Done(m) => method = auth_method_name(m),
                }
            }
            tag::ERROR_RESPONSE => {
                let e = pg::ErrorResponse::parse(&f).map_err(|e| e.to_string())?;
                return Err(format!(
                    "upstream refused the login: {} {}",
                    String::from_utf8_lossy(e.code().unwrap_or_default()),
                    String::from_utf8_lossy(e.message().unwrap_or_default())
                ));
            }
            tag::PARAMETER_STATUS | tag::NOTICE_RESPONSE => greeting.extend_from_slice(f.bytes()),
            tag::BACKEND_KEY_DATA => {
                let k = BackendKeyData::parse(&f).map_err(|e| format!("upstream: {e}"))?;
                key = Some((k.pid, k.secret_key.to_vec()));
            }
            tag::NEGOTIATE_PROTOCOL_VERSION => {}
            tag::READY_FOR_QUERY => {
                let z = pg::ReadyForQuery::parse(&f).map_err(|e| format!("upstream: {e}"))?;
                if method.is_empty() {
                    return Err("upstream ready before authentication completed".into());
                }
                return Ok(UpstreamReady {
                    reader: fr.half,
                    writer,
                    buf: fr.buf,
                    greeting,
                    key,
                    status: z.status,
                    method,
                });
            }
            other => {
                return Err(format!(
                    "unexpected message {:?} from the upstream during login",
                    other as char
                ));
            }
        }
    }
}

fn auth_method_name(m: super::auth::AuthMethod) -> &'static str {
    use super::auth::AuthMethod::*;
    match m {
        Trust => "trust",
        Cleartext => "cleartext",
        Md5 => "md5",
        ScramSha256 => "scram-sha-256",
        ScramSha256Plus => "scram-sha-256-plus",
    }
}

/// Register the client's cancel key and return it.
pub(crate) fn cancel_key(
    cancels: &CancelMap,
    target: &TargetConfig,
    upstream_key: &Option<(i32, Vec<u8>)>,
    session: &str,
) -> Option<(i32, [u8; 4])> {
    let (pid, secret) = upstream_key.as_ref()?;
    Some(cancels.register(CancelTarget {
        upstream: target.upstream.clone(),
        pid: *pid,
        secret: secret.clone(),
        session: session.to_string(),
    }))
}
