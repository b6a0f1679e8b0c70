//! The PostgreSQL session: start-up (TLS negotiation, routing by database),
//! caller authentication by token, upstream login with the stored
//! credential, then the inspected relay ([`super::relay`]).
//!
//! See `LIFECYCLE.md` beside this file for the states and what the client
//! sees in each failure.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use futures_util::future::{Either, select};
use tollgate_codecs::pg::{
    self, Authentication, BackendKeyData, Caps, ErrorFields, Limits, StartupPacket,
    TransactionStatus, tag,
};
use tracing::{info, warn};

use super::auth::{AuthPolicy, AuthStep, ChannelBinding, Password, UpstreamAuth};
use super::cancel::CancelTarget;
use super::io::{FrameReader, Peer, SessionError, send};
use crate::config::{SecretSource, TargetConfig};
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::{AuthError, Identity};
use crate::metrics::AuthOutcome;
use crate::snapshot::{Snapshot, TargetRuntime};
use crate::tls::{Conn, close_socket};

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

/// A client after start-up and authentication, before upstream login.
pub(crate) struct Admitted {
    pub reader: crate::tls::ReadHalf,
    pub writer: crate::tls::WriteHalf,
    pub tls: Option<String>,
    pub buf: BytesMut,
    pub target: usize,
    pub identity: Arc<Identity>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Serve one PostgreSQL client connection to its end.
pub(crate) async fn serve(
    ctx: &ShardCtx,
    targets: &[usize],
    entry: &SessionEntry,
    client: TcpStream,
) {
    let snapshot = ctx.snapshot();
    let Some(&first) = targets.first() else {
        return;
    };
    let auth_timeout = snapshot.config.targets[first].auth_timeout;
    let started = Instant::now();
    let front = std::pin::pin!(compio::time::timeout(
        auth_timeout,
        front_door(ctx, &snapshot, targets, entry, client.clone())
    ));
    let admitted = match select(front, entry.kill.killed()).await {
        Either::Left((Ok(Ok(Some(a))), _)) => a,
        Either::Left((Ok(Ok(None)), _)) => {
            close_socket(&client);
            return;
        }
        Either::Left((Ok(Err(e)), _)) => {
            info!(session = %entry.id, client = %entry.client, error = %e, "start-up failed");
            close_socket(&client);
            return;
        }
        Either::Left((Err(_), _)) => {
            warn!(session = %entry.id, client = %entry.client, "start-up and authentication timed out");
            close_socket(&client);
            return;
        }
        Either::Right(_) => {
            close_socket(&client);
            return;
        }
    };
    let target_idx = admitted.target;
    let target = &snapshot.config.targets[target_idx];
    let rt = &snapshot.targets[target_idx];
    let reason = super::relay::run(ctx, &snapshot, target, rt, entry, admitted).await;
    close_socket(&client);
    info!(
        shard = ctx.id,
        session = %entry.id,
        target = %target.name,
        subject = entry.subject().as_deref().unwrap_or("-"),
        reason = %reason,
        bytes_up = entry.bytes_up.get(),
        bytes_down = entry.bytes_down.get(),
        duration_ms = started.elapsed().as_millis() as u64,
        "session closed"
    );
}

/// Start-up and caller authentication. `Ok(None)`: the connection was a
/// cancel request (handled) or the client went away politely.
async fn front_door(
    ctx: &ShardCtx,
    snapshot: &Snapshot,
    targets: &[usize],
    entry: &SessionEntry,
    sock: TcpStream,
) -> Result<Option<Admitted>, SessionError> {
    let caps = Caps::frontend(&Limits::default());
    let mut buf = BytesMut::with_capacity(8 * 1024);
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
            cancel(ctx, c.pid, c.secret_key).await;
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
    let Some(&target_idx) = targets
        .iter()
        .find(|t| snapshot.config.targets[**t].database.as_bytes() == database)
    else {
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
    let token = token.as_slice();
    let rt = &snapshot.targets[target_idx];
    let identity = match authenticate(ctx, snapshot, rt, token) {
        Ok(id) => id,
        Err(reason) => {
            ctx.shared
                .metrics
                .shard(ctx.id)
                .auth_refused(reason.outcome());
            super::authlog::failed(&entry.id, entry.client, &target.name, &user, &reason);
            fatal(&mut out, sqlstate::INVALID_PASSWORD, AUTH_FAILED);
            let _ = send(&mut writer, &mut out, Peer::Client).await;
            return Err(SessionError::Refused(format!("authentication: {reason}")));
        }
    };
    ctx.shared.metrics.shard(ctx.id).auth(AuthOutcome::Ok);
    *entry.identity.borrow_mut() = Some(identity.clone());
    Ok(Some(Admitted {
        reader: fr.half,
        writer,
        tls: tls_summary,
        buf: fr.buf,
        target: target_idx,
        identity,
        params,
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

/// Why a caller was refused (for the log and the audit record only).
#[derive(Debug)]
enum Refusal {
    Token(AuthError),
    Revoked,
    NotAdmitted(String),
}

impl Refusal {
    fn outcome(&self) -> AuthOutcome {
        match self {
            Refusal::Token(e) => AuthOutcome::of_error(e),
            Refusal::Revoked => AuthOutcome::Revoked,
            Refusal::NotAdmitted(_) => AuthOutcome::NotAdmitted,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Token(e) => write!(f, "{e}"),
            Refusal::Revoked => f.write_str("identity revoked"),
            Refusal::NotAdmitted(why) => write!(f, "not admitted: {why}"),
        }
    }
}

fn authenticate(
    ctx: &ShardCtx,
    snapshot: &Snapshot,
    rt: &TargetRuntime,
    token: &[u8],
) -> Result<Arc<Identity>, Refusal> {
    let now = SystemTime::now();
    let identity = {
        let mut cache = ctx.token_cache(snapshot);
        snapshot
            .identity
            .verify_token(token, &mut cache, now)
            .map_err(Refusal::Token)?
    };
    if snapshot.identity.revocations().is_revoked(&identity, now) {
        return Err(Refusal::Revoked);
    }
    let decision = rt.access.decide(&identity);
    if !decision.is_admitted() {
        return Err(Refusal::NotAdmitted(decision.to_string()));
    }
    Ok(identity)
}

/// An ErrorResponse with severity FATAL.
pub(crate) fn fatal(out: &mut BytesMut, code: &str, message: &str) {
    // Encoding fails only on NUL bytes, which our messages never contain.
    let _ = pg::encode_error_response(out, &ErrorFields::fatal(code, message));
}

/// Forward a client's CancelRequest to the upstream that runs its query.
async fn cancel(ctx: &ShardCtx, pid: i32, secret: &[u8]) {
    let Some(t) = ctx.shared.cancel.lookup(pid, secret) else {
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
        (b"database", target.upstream_database.as_bytes()),
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
    ctx: &ShardCtx,
    target: &TargetConfig,
    upstream_key: &Option<(i32, Vec<u8>)>,
    session: &str,
) -> Option<(i32, [u8; 4])> {
    let (pid, secret) = upstream_key.as_ref()?;
    Some(ctx.shared.cancel.register(CancelTarget {
        upstream: target.upstream.clone(),
        pid: *pid,
        secret: secret.clone(),
        session: session.to_string(),
    }))
}
