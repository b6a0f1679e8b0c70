//! HTTP/1.1 on the session pipeline: the caller's first request head is
//! read at the front door (its bearer token identifies the connection), the
//! upstream is connected with the target's stored credential ready to
//! inject, and [`super::exchange`] relays request after request.
//!
//! A connection is bound to the identity of its first request: each later
//! request must carry a token that verifies to the same subject and issuer,
//! or it is answered `401` and the connection closed.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use compio::net::TcpStream;
use tollgate_codecs::http::h1::{HeadParser, Limits, RequestHead};
use tracing::{info, warn};
use zeroize::Zeroizing;

use super::io::{Peer, Side, answer, malformed, unauthorized};
use crate::config::TargetConfig;
use crate::config::http::{CallerIdentity, CredentialScheme, HttpTarget};
use crate::metrics::AuthOutcome;
use crate::pipeline::{
    Admission, Caller, EndReason, Live, Protocol, Rejection, Relayed, Session, Stop, Target,
};
use crate::snapshot::TargetRuntime;
use crate::tls::{Conn, LastWord};

/// The HTTP adapter.
#[derive(Default)]
pub(crate) struct HttpProtocol;

/// A caller past its first request head.
pub(crate) struct HttpClient {
    pub side: Side,
    pub parser: HeadParser,
    /// The first request, read at the front door, not yet relayed.
    pub first: Option<RequestHead>,
    pub addr: IpAddr,
    /// The caller came over TLS (`Forwarded: proto=https`).
    pub tls: bool,
    /// The name the caller asked for in its TLS handshake.
    pub sni: Option<String>,
    /// An HTTP/2 connection (ALPN `h2`): its streams are relayed by
    /// [`super::http2`], and `side` is unused.
    pub h2: Option<Box<super::http2::H2Front>>,
    /// This client is one HTTP/2 stream of a connection.
    pub stream: bool,
}

/// The upstream connection and the credential header to inject.
pub(crate) struct HttpUpstream {
    pub side: Side,
    pub parser: HeadParser,
    /// The value of the credential header (`None`: no credential configured).
    pub credential: Option<Zeroizing<Vec<u8>>>,
    /// Responses relayed on this connection.
    pub served: u32,
}

/// The bearer token in `head`'s token header: `Bearer <token>` (scheme
/// case-insensitive). `None` when absent or of another scheme.
pub(crate) fn bearer<'h>(head: &'h RequestHead, h: &HttpTarget) -> Option<&'h [u8]> {
    let v = head.fields().get(&h.token_header)?;
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// A request's host: the authority of an absolute-form target, else the
/// `Host` field; lower case, without a port. `None` when absent or given
/// more than once.
pub(crate) fn request_host(head: &RequestHead) -> Option<String> {
    let raw = match head.authority() {
        Some(a) => a.as_bytes(),
        None => {
            let mut all = head.fields().get_all("host");
            let (Some(h), None) = (all.next(), all.next()) else {
                return None;
            };
            h
        }
    };
    let raw = std::str::from_utf8(raw).ok()?.trim();
    // `[v6]:port`, `name:port`, `name`.
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h),
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether `path` is `prefix` or below it (whole segments).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The target a request is for on this listener: among the targets whose
/// `host` is the request's (or that name none) and whose `path_prefix`
/// holds its path (or that have none), the one naming a host before one
/// that does not, then the longest prefix. Over TLS the request's host
/// must be the name the client asked for in its handshake, so one host's
/// connection cannot reach another. `Err`: the status (421 for the host,
/// 404 for the path) and why.
pub(crate) fn route(
    s: &Session<'_>,
    head: &RequestHead,
    sni: Option<&str>,
) -> Result<usize, (u16, String)> {
    let host = request_host(head);
    if let (Some(sni), Some(host)) = (sni, &host)
        && !sni.eq_ignore_ascii_case(host)
    {
        return Err((
            421,
            format!("request for host {host:?} on a TLS connection for {sni:?}"),
        ));
    }
    let http = |t: usize| s.snapshot.config.targets[t].http.as_ref();
    let for_host = |t: &usize| {
        http(*t).is_some_and(|h| h.host.is_none() || h.host.as_deref() == host.as_deref())
    };
    let targets = &s.listener.targets;
    if !targets.iter().any(for_host) {
        return Err((421, format!("no target for host {host:?} on this listener")));
    }
    let path = head.path();
    targets
        .iter()
        .copied()
        .filter(|t| {
            for_host(t)
                && http(*t).is_some_and(|h| h.path_prefix.as_deref().is_none_or(|p| under(path, p)))
        })
        .max_by_key(|t| {
            let h = http(*t);
            (
                h.is_some_and(|h| h.host.is_some()),
                h.and_then(|h| h.path_prefix.as_deref()).map_or(0, str::len),
            )
        })
        .ok_or_else(|| (404, format!("no target for path {path:?} on host {host:?}")))
}

/// The answer to a request no target here takes: `421 Misdirected
/// Request` for the host, `404` for the path.
pub(crate) fn misrouted(status: u16) -> bytes::Bytes {
    match status {
        421 => answer(421, &[], "no target for this host\n", true),
        _ => answer(404, &[], "no target for this path\n", true),
    }
}

/// The TLS settings of a listener: its target's; where several targets
/// share it, each host's certificate is chosen by SNI (a client naming
/// none gets the first target's).
fn listener_tls(s: &Session<'_>, targets: &[usize]) -> Option<Arc<rustls::ServerConfig>> {
    let with_tls: Vec<(usize, &Arc<rustls::ServerConfig>)> = targets
        .iter()
        .filter_map(|t| Some((*t, s.snapshot.targets[*t].tls.as_ref()?)))
        .collect();
    match with_tls.as_slice() {
        [] => None,
        [(_, only)] => Some(Arc::clone(only)),
        [(_, first), ..] => {
            let names = with_tls
                .iter()
                .filter_map(|(t, c)| {
                    let host = s.snapshot.config.targets[*t].http.as_ref()?.host.clone()?;
                    Some((host, Arc::clone(c)))
                })
                .collect();
            Some(crate::tls::by_server_name(first, names))
        }
    }
}

/// Read one request head; `Ok(None)` at a clean EOF between requests. A
/// malformed head is answered with its status and the session ends.
pub(crate) async fn next_head(
    side: &mut Side,
    parser: &mut HeadParser,
    meter: super::io::Meter<'_>,
    clock: Option<&crate::pipeline::FrameClock>,
) -> Result<Option<RequestHead>, EndReason> {
    loop {
        match parser.request(&mut side.buf) {
            Ok(Some(head)) => {
                if let Some(c) = clock {
                    c.progress();
                }
                return Ok(Some(head));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = side.write(malformed(e.status())).await;
                return Err(Peer::Client.protocol(e));
            }
        }
        if side.fill(meter).await? == 0 {
            return if side.buf.is_empty() {
                Ok(None)
            } else {
                Err(EndReason::ClientClosed)
            };
        }
        if let Some(c) = clock {
            c.mark(!side.buf.is_empty());
        }
    }
}

/// Connect to the upstream (TLS when configured, verified) and read the
/// stored credential afresh (rotation needs no restart).
pub(crate) async fn connect(t: &TargetConfig, rt: &TargetRuntime) -> Result<HttpUpstream, String> {
    let credential = stored_credential(t)?;
    let sock = crate::relay::connect_upstream(t)
        .await
        .map_err(|e| format!("connect to {}: {e}", t.upstream))?;
    let conn = match &rt.upstream_tls {
        None => Conn::plain(sock.clone()),
        Some((cfg, name)) => Conn::connect(sock.clone(), cfg.clone(), name.clone())
            .await
            .map_err(|e| format!("upstream TLS: {e}"))?,
    };
    Ok(HttpUpstream {
        side: Side::new(sock, conn, Peer::Upstream),
        parser: HeadParser::new(&Limits::default()),
        credential,
        served: 0,
    })
}

/// The value of the credential header, read afresh from its source
/// (`None`: the target injects none).
pub(crate) fn stored_credential(t: &TargetConfig) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let h = t.http.as_ref().ok_or("not an http target")?;
    Ok(match &t.credential {
        None => None,
        Some(c) => {
            let secret = crate::pg::session::read_secret(&c.source)?;
            let v = credential_value(h.credential_scheme, &c.user, secret.expose());
            // Visible ASCII, space and tab only: a CR or LF would end the
            // header and let the stored secret write fields of its own.
            if !v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                return Err("the stored credential is not a valid header value".into());
            }
            Some(v)
        }
    })
}

fn credential_value(scheme: CredentialScheme, user: &str, secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(secret.len() * 2 + 16));
    match scheme {
        CredentialScheme::Bearer => {
            v.extend_from_slice(b"Bearer ");
            v.extend_from_slice(secret);
        }
        CredentialScheme::Basic => {
            let mut pair = Zeroizing::new(Vec::with_capacity(user.len() + 1 + secret.len()));
            pair.extend_from_slice(user.as_bytes());
            pair.push(b':');
            pair.extend_from_slice(secret);
            v.extend_from_slice(b"Basic ");
            let enc = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*pair));
            v.extend_from_slice(enc.as_bytes());
        }
        CredentialScheme::Raw => v.extend_from_slice(secret),
    }
    v
}

impl Protocol for HttpProtocol {
    type Client = HttpClient;
    type Upstream = HttpUpstream;
    type LastWord = LastWord;
    type Goodbye = ();
    const NAME: &'static str = "http";

    async fn front_door(
        &self,
        s: &Session<'_>,
        sock: TcpStream,
    ) -> Result<Option<Admission<HttpClient>>, EndReason> {
        let targets = &s.listener.targets;
        let tls_config = listener_tls(s, targets);
        let conn = match tls_config {
            None => Conn::plain(sock.clone()),
            Some(cfg) => Conn::accept(sock.clone(), cfg).await.map_err(|e| {
                s.ctx
                    .shared
                    .metrics
                    .shard(s.ctx.id)
                    .auth_refused(AuthOutcome::Other);
                warn!(session = %s.entry.id, client = %s.entry.client, error = %e, "TLS handshake failed");
                EndReason::ClientIo(e.to_string())
            })?,
        };
        if conn.alpn_protocol().as_deref() == Some(b"h2") {
            return super::http2::front_door(s, sock, conn).await;
        }
        let sni = conn.server_name();
        let tls = conn.tls_summary();
        let chain = conn.peer_certificates();
        let mut side = Side::new(sock, conn, Peer::Client);
        let mut parser = HeadParser::new(&Limits::default());
        let idle = std::cell::Cell::new(std::time::Instant::now());
        let meter = super::io::Meter {
            bytes: &s.entry.bytes_up,
            last: &idle,
        };
        let Some(first) = next_head(&mut side, &mut parser, meter, None).await? else {
            return Ok(None);
        };
        let target = match route(s, &first, sni.as_deref()) {
            Ok(t) => t,
            Err((status, why)) => {
                let _ = side.write(misrouted(status)).await;
                return Err(EndReason::Refused(why));
            }
        };
        let Some(h) = s.snapshot.config.targets[target].http.as_ref() else {
            return Err(EndReason::Refused("not an http target".into()));
        };
        let caller = match (h.identity, chain) {
            (CallerIdentity::Token, _) => {
                Caller::Token(bearer(&first, h).map(<[u8]>::to_vec).unwrap_or_default())
            }
            // The listener's verifier required a chain to the mTLS CA.
            (CallerIdentity::Mtls, chain) => Caller::Certificate(chain.unwrap_or_default()),
        };
        Ok(Some(Admission {
            client: HttpClient {
                side,
                parser,
                first: Some(first),
                addr: s.entry.client.ip(),
                tls: tls.is_some(),
                sni,
                h2: None,
                stream: false,
            },
            target,
            caller,
            tls,
            user: None,
        }))
    }

    async fn reject(&self, client: &mut HttpClient, why: Rejection<'_>) {
        let reply = match why {
            Rejection::Authentication => unauthorized(),
            Rejection::Access(_) => answer(403, &[], "access denied\n", true),
            Rejection::UpstreamLogin => {
                answer(502, &[], "tollgate could not reach the target\n", true)
            }
            Rejection::Recorder => answer(503, &[], "tollgate cannot record this session\n", true),
            Rejection::Killed(_) => answer(503, &[], "session ended by tollgate\n", true),
        };
        if let Some(front) = client.h2.as_mut() {
            let status = match why {
                Rejection::Authentication => 401,
                Rejection::Access(_) => 403,
                Rejection::UpstreamLogin => 502,
                Rejection::Recorder | Rejection::Killed(_) => 503,
            };
            super::http2::reject(front, status).await;
            return;
        }
        let _ = client.side.write(reply).await;
        client.side.close();
    }

    async fn login(
        &self,
        _s: &Session<'_>,
        target: &Target<'_>,
        _client: &mut HttpClient,
    ) -> Result<HttpUpstream, String> {
        connect(target.config, target.rt).await
    }

    fn upstream_auth(&self, u: &HttpUpstream) -> &'static str {
        if u.credential.is_some() {
            "injected"
        } else {
            "none"
        }
    }

    fn last_word(&self, client: &HttpClient) -> LastWord {
        client.side.w.last_word()
    }

    async fn relay(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: HttpClient,
        upstream: HttpUpstream,
        live: &Live<'_>,
    ) -> Relayed<()> {
        let reason = match (live.identity, target.config.http.as_ref()) {
            (Some(identity), Some(h)) if client.h2.is_some() => {
                let mut client = client;
                match client.h2.take() {
                    Some(front) => {
                        super::http2::relay(s, target, live, identity, h, client, *front, upstream)
                            .await
                    }
                    None => EndReason::Refused("no HTTP/2 connection".into()),
                }
            }
            (Some(identity), Some(h)) => {
                let mut x = super::exchange::Exchange::new(
                    s,
                    target,
                    live,
                    identity,
                    h,
                    client,
                    Some(upstream),
                );
                let r = x.run().await;
                x.close();
                r
            }
            _ => EndReason::Refused("an http session needs an identity and [target.http]".into()),
        };
        if let EndReason::Authentication(why) = &reason {
            info!(session = %s.entry.id, reason = %why, "request refused: authentication");
        }
        Relayed {
            reason,
            goodbye: None,
        }
    }

    /// A session ended from outside is closed: a word written now could
    /// land in the middle of a response.
    fn goodbye_for(&self, _stop: Stop) -> Option<()> {
        None
    }

    async fn say_goodbye(&self, _w: LastWord, _why: ()) {}
}
