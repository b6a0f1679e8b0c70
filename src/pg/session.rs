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
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
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
    /// The client was already told why it is refused (a full pool).
    pub told: bool,
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
    let tls_config = targets
        .iter()
        .find_map(|t| snapshot.targets[*t].tls.clone());
    let Some(mut door) = open(sock, tls_config, &caps).await? else {
        return Ok(None);
    };
    let mut out = BytesMut::new();
    let packet = match door.frame.parse() {
        Ok(p) => p,
        Err(e) => {
            super::ending::protocol_fatal(&mut out, &e);
            let _ = send(&mut door.writer, &mut out, Peer::Client).await;
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
            let why = "unsupported start-up request";
            let (w, code) = (&mut door.writer, sqlstate::PROTOCOL_VIOLATION);
            return Err(refuse(w, &mut out, code, why, why.into()).await);
        }
    };
    let plaintext = door.tls.is_none();
    let target = route(snapshot, targets, &startup, plaintext, &mut door.writer).await?;
    let t = &snapshot.config.targets[target];
    *entry.target.borrow_mut() = std::rc::Rc::from(t.name.as_str());
    let params = parameters(&startup, &mut out, &mut door.writer).await?;
    let user = String::from_utf8_lossy(startup.user().unwrap_or_default()).into_owned();
    // The token is the password.
    pg::encode_authentication_cleartext_password(&mut out);
    send(&mut door.writer, &mut out, Peer::Client).await?;
    let mut fr = FrameReader::new(door.reader, door.buf, caps, Peer::Client);
    let token = match read_password(&mut fr).await {
        Ok(t) => t,
        Err(e) => {
            password_refusal(&mut out, &e);
            let _ = send(&mut door.writer, &mut out, Peer::Client).await;
            return Err(e);
        }
    };
    Ok(Some(Admission {
        client: PgClient {
            reader: fr.half,
            writer: door.writer,
            buf: fr.buf,
            params,
            told: false,
        },
        target,
        caller: Caller::Token(token),
        tls: door.tls,
        user: Some(user),
    }))
}

/// Write a FATAL error to the client; the session's end reason.
async fn refuse(
    writer: &mut crate::tls::WriteHalf,
    out: &mut BytesMut,
    code: &str,
    message: &str,
    reason: String,
) -> SessionError {
    fatal(out, code, message);
    let _ = send(writer, out, Peer::Client).await;
    SessionError::Refused(reason)
}

/// A connection past its encryption negotiation, with its start-up packet.
struct Door {
    reader: crate::tls::ReadHalf,
    writer: crate::tls::WriteHalf,
    buf: BytesMut,
    /// The TLS version and cipher, when encrypted.
    tls: Option<String>,
    frame: pg::StartupFrame,
}

/// Read start-up packets, answering at most one SSLRequest (TLS when a
/// target on this listener has it) and one GSSENCRequest (never), until the
/// one that starts the session. `Ok(None)`: the client went away.
async fn open(
    sock: TcpStream,
    tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
    caps: &Caps,
) -> Result<Option<Door>, SessionError> {
    let (mut reader, mut writer) = Conn::plain(sock.clone()).split();
    let mut buf = BytesMut::new();
    let mut tls: Option<String> = None;
    let (mut ssl_asked, mut gss_asked) = (false, false);
    loop {
        let mut fr = FrameReader::new(reader, buf, caps.clone(), Peer::Client);
        let Some(frame) = startup_frame(&mut fr, &mut writer).await? else {
            return Ok(None);
        };
        (buf, reader) = (fr.buf, fr.half);
        match frame.code() {
            pg::SSL_REQUEST_CODE if !ssl_asked && tls.is_none() => {
                ssl_asked = true;
                if !buf.is_empty() {
                    // Bytes after SSLRequest but before our answer would be
                    // read as plaintext and then trusted as if encrypted.
                    return Err(SessionError::Refused(
                        "client sent data after SSLRequest before the TLS handshake".into(),
                    ));
                }
                let Some(cfg) = &tls_config else {
                    answer(&sock, b"N").await?;
                    continue;
                };
                answer(&sock, b"S").await?;
                let conn = Conn::accept(sock.clone(), cfg.clone())
                    .await
                    .map_err(SessionError::ClientIo)?;
                tls = Some(conn.tls_summary().unwrap_or_else(|| "TLS".into()));
                (reader, writer) = conn.split();
            }
            pg::GSSENC_REQUEST_CODE if !gss_asked && tls.is_none() => {
                // PostgreSQL without GSSAPI answers 'N' and the client goes
                // on with SSL or plaintext.
                gss_asked = true;
                answer(&sock, b"N").await?;
            }
            _ => {
                return Ok(Some(Door {
                    reader,
                    writer,
                    buf,
                    tls,
                    frame,
                }));
            }
        }
    }
}

/// The one-byte answer to an encryption request, on the plain socket.
async fn answer(sock: &TcpStream, byte: &'static [u8; 1]) -> Result<(), SessionError> {
    let mut s = sock;
    let compio::BufResult(r, _) = s.write_all(&byte[..]).await;
    r.map_err(SessionError::ClientIo)
}

/// The next start-up packet; `Ok(None)` at a clean end of stream.
async fn startup_frame(
    fr: &mut FrameReader,
    writer: &mut crate::tls::WriteHalf,
) -> Result<Option<pg::StartupFrame>, SessionError> {
    loop {
        match pg::next_startup_frame(&mut fr.buf, &fr.caps) {
            Ok(Some(f)) => return Ok(Some(f)),
            Ok(None) => {
                if !fr.fill_or_eof().await? {
                    return Ok(None);
                }
            }
            Err(e) => {
                let mut out = BytesMut::new();
                super::ending::protocol_fatal(&mut out, &e);
                let _ = send(writer, &mut out, Peer::Client).await;
                return Err(SessionError::ClientProtocol(e));
            }
        }
    }
}

/// The target the client's database names on this listener, if the client
/// may reach it the way it came (encrypted or not).
async fn route(
    snapshot: &Snapshot,
    targets: &[usize],
    startup: &pg::StartupMessage<'_>,
    plaintext: bool,
    writer: &mut crate::tls::WriteHalf,
) -> Result<usize, SessionError> {
    let mut out = BytesMut::new();
    let database = startup
        .database()
        .or_else(|| startup.user())
        .unwrap_or_default();
    let Some(&target) = targets.iter().find(|t| {
        snapshot.config.targets[**t]
            .postgres
            .as_ref()
            .is_some_and(|p| p.database.as_bytes() == database)
    }) else {
        let msg = format!(
            "database \"{}\" does not exist",
            String::from_utf8_lossy(database)
        );
        let code = sqlstate::UNKNOWN_DATABASE;
        return Err(refuse(writer, &mut out, code, &msg, msg.clone()).await);
    };
    if plaintext && !snapshot.config.targets[target].allow_plaintext {
        let msg = "this target requires an encrypted connection (sslmode=require)";
        let (code, why) = (
            sqlstate::INVALID_AUTHORIZATION,
            "plaintext client on a TLS-only target",
        );
        return Err(refuse(writer, &mut out, code, msg, why.into()).await);
    }
    Ok(target)
}

/// The start-up parameters passed on to the upstream, once the client's
/// request is one the gateway serves; a NegotiateProtocolVersion into
/// `out` when the client asked for more than it speaks.
async fn parameters(
    startup: &pg::StartupMessage<'_>,
    out: &mut BytesMut,
    writer: &mut crate::tls::WriteHalf,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, SessionError> {
    if startup
        .get(b"replication")
        .is_some_and(|v| !matches!(v, b"false" | b"off" | b"no" | b"0"))
    {
        let msg = "replication connections are not allowed through tollgate";
        let code = sqlstate::FEATURE_NOT_SUPPORTED;
        return Err(refuse(writer, out, code, msg, "replication connection".into()).await);
    }
    // Newer protocol minors and _pq_ options: say what we speak, like
    // PostgreSQL does, before authentication.
    let options: Vec<&[u8]> = startup.protocol_options().map(|(k, _)| k).collect();
    if startup.minor_version() > 0 || !options.is_empty() {
        pg::encode_negotiate_protocol_version(out, 0, &options)
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
        let code = sqlstate::FEATURE_NOT_SUPPORTED;
        return Err(refuse(writer, out, code, &why, why.clone()).await);
    }
    Ok(params)
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
    if t.pid == 0 {
        // Transaction mode, between transactions: nothing runs.
        info!(session = %t.session, "cancel request while no query runs: ignored");
        return;
    }
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
    /// Held from the target's pool (`[target.postgres.pool]`): the relay
    /// gives the connection back when the caller leaves it idle.
    pub pool: Option<super::pool::Lease>,
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
    let password = read_secret(&credential.source)?;
    login_with(target, rt, params, password).await
}

/// A connection from the target's pool: an idle one logged in with the
/// same parameters and the credential the file holds now, or a new login.
pub(crate) async fn login_pooled(
    target: &TargetConfig,
    rt: &TargetRuntime,
    params: &[(Vec<u8>, Vec<u8>)],
    cfg: &crate::config::PoolConfig,
    shard_share: (usize, usize),
) -> Result<UpstreamReady, super::pool::CheckoutError> {
    use super::pool::{CheckoutError, ConnKey, checkout};
    let (Some(credential), Some(settings)) = (&target.credential, &target.postgres) else {
        return Err(CheckoutError::Login("no credential configured".into()));
    };
    let password = read_secret(&credential.source).map_err(CheckoutError::Login)?;
    let key = ConnKey::new(
        target,
        &credential.user,
        &settings.upstream_database,
        rt.upstream_tls.is_some(),
        params,
    );
    let login = |pw| login_with(target, rt, params, pw);
    checkout(target, cfg, shard_share, key, password, login).await
}

/// Connect and log in with `password`.
async fn login_with(
    target: &TargetConfig,
    rt: &TargetRuntime,
    params: &[(Vec<u8>, Vec<u8>)],
    password: Password,
) -> Result<UpstreamReady, String> {
    let (Some(credential), Some(settings)) = (&target.credential, &target.postgres) else {
        return Err("not a postgres target with a credential".into());
    };
    let (conn, binding) = connect(target, rt).await?;
    let mut out = BytesMut::new();
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
    let fr = FrameReader::new(
        reader,
        BytesMut::with_capacity(16 * 1024),
        Caps::backend(&Limits::default()),
        Peer::Upstream,
    );
    let auth = UpstreamAuth::new(
        credential.user.as_bytes(),
        password,
        binding,
        AuthPolicy::default(),
    );
    log_in(fr, writer, auth).await
}

/// Connect to the upstream, with TLS when the target says so (then with
/// the server certificate's channel binding for SCRAM).
async fn connect(
    target: &TargetConfig,
    rt: &TargetRuntime,
) -> Result<(Conn, ChannelBinding), String> {
    let sock = crate::relay::connect_upstream(target)
        .await
        .map_err(|e| format!("connect to {}: {e}", target.upstream))?;
    let Some((cfg, name)) = &rt.upstream_tls else {
        return Ok((Conn::plain(sock), ChannelBinding::None));
    };
    let mut out = BytesMut::new();
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
    Ok((conn, binding))
}

/// The upstream's side of the login, after our start-up message: the
/// authentication exchange, then the greeting up to ReadyForQuery.
async fn log_in(
    mut fr: FrameReader,
    mut writer: crate::tls::WriteHalf,
    mut auth: UpstreamAuth,
) -> Result<UpstreamReady, String> {
    let mut out = BytesMut::new();
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
                    pool: None,
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
