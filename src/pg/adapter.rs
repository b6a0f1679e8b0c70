//! PostgreSQL on the session pipeline: what `crate::pipeline::Protocol`
//! asks of a protocol, answered with the start-up, login, refusals and
//! relay in this folder. The pipeline does identity, access, recording,
//! timeouts and kills.

use bytes::BytesMut;
use compio::net::TcpStream;

use super::cancel::CancelMap;
use super::ending::{Ending, say_goodbye};
use super::io::{Peer, SessionError, send};
use super::pool::CheckoutError;
use super::session::{
    AUTH_FAILED, PgClient, UpstreamReady, fatal, front_door, login_pooled, login_upstream, sqlstate,
};
use crate::pipeline::{
    Admission, EndReason, Live, Protocol, Rejection, Relayed, Session, Stop, Target,
};
use crate::tls::LastWord;

/// The PostgreSQL adapter. It owns the cancel keys: a CancelRequest arrives
/// on a new connection, on whichever shard the kernel picks, so the map is
/// shared by every shard.
#[derive(Default)]
pub(crate) struct PgProtocol {
    cancels: CancelMap,
}

impl Protocol for PgProtocol {
    type Client = PgClient;
    type Upstream = UpstreamReady;
    type LastWord = LastWord;
    type Goodbye = Ending;
    const NAME: &'static str = "postgres";

    async fn front_door(
        &self,
        s: &Session<'_>,
        client: TcpStream,
    ) -> Result<Option<Admission<PgClient>>, EndReason> {
        front_door(
            &self.cancels,
            s.snapshot,
            &s.listener.targets,
            s.entry,
            client,
        )
        .await
        .map_err(EndReason::from)
    }

    async fn reject(&self, client: &mut PgClient, why: Rejection<'_>) {
        if client.told {
            return;
        }
        let (code, message) = match why {
            Rejection::Authentication => (sqlstate::INVALID_PASSWORD, AUTH_FAILED),
            Rejection::Access(why) => (sqlstate::INVALID_AUTHORIZATION, why),
            Rejection::UpstreamLogin => (
                sqlstate::CONNECTION_FAILURE,
                "tollgate could not log in to the target",
            ),
            Rejection::Recorder => (
                sqlstate::CONNECTION_FAILURE,
                "tollgate cannot record this session",
            ),
            Rejection::Killed(k) => {
                say_goodbye(client.writer.last_word(), Ending::Killed(k)).await;
                return;
            }
        };
        let mut out = BytesMut::new();
        fatal(&mut out, code, message);
        let _ = send(&mut client.writer, &mut out, Peer::Client).await;
    }

    async fn login(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: &mut PgClient,
    ) -> Result<UpstreamReady, String> {
        let pool = target
            .config
            .postgres
            .as_ref()
            .and_then(|p| p.pool.as_ref());
        let Some(cfg) = pool else {
            return login_upstream(target.config, target.rt, &client.params).await;
        };
        let share = cfg.share(s.ctx.id, s.snapshot.config.engine.shards);
        match login_pooled(
            target.config,
            target.rt,
            &client.params,
            cfg,
            (s.ctx.id, share),
        )
        .await
        {
            Ok(up) => Ok(up),
            Err(CheckoutError::Login(e)) => Err(e),
            Err(CheckoutError::Exhausted) => {
                let why = format!(
                    "no upstream connection came free in the pool of target \"{}\" within {}",
                    target.config.name,
                    humantime::format_duration(cfg.checkout_timeout)
                );
                let mut out = BytesMut::new();
                fatal(&mut out, sqlstate::TOO_MANY_CONNECTIONS, &why);
                let _ = send(&mut client.writer, &mut out, Peer::Client).await;
                client.told = true;
                Err(why)
            }
        }
    }

    fn upstream_auth(&self, upstream: &UpstreamReady) -> &'static str {
        match &upstream.pool {
            Some(lease) if lease.reused => "pooled",
            _ => upstream.method,
        }
    }

    fn last_word(&self, client: &PgClient) -> LastWord {
        client.writer.last_word()
    }

    async fn relay(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: PgClient,
        upstream: UpstreamReady,
        live: &Live<'_>,
    ) -> Relayed<Ending> {
        super::relay::relay(s, target, &self.cancels, client, upstream, live).await
    }

    fn goodbye_for(&self, stop: Stop) -> Option<Ending> {
        Some(match stop {
            Stop::IdleTimeout => Ending::IdleTimeout,
            Stop::FrameTimeout => Ending::FrameTimeout,
            Stop::Killed(k) => Ending::Killed(k),
        })
    }

    async fn say_goodbye(&self, w: LastWord, why: Ending) {
        say_goodbye(w, why).await;
    }
}

impl From<SessionError> for EndReason {
    fn from(e: SessionError) -> EndReason {
        match e {
            SessionError::ClientIo(e) => EndReason::ClientIo(e.to_string()),
            SessionError::ClientProtocol(e) => EndReason::ClientProtocol(e.to_string()),
            SessionError::ClientClosed => EndReason::ClientClosed,
            SessionError::UpstreamIo(e) => EndReason::UpstreamIo(e.to_string()),
            SessionError::UpstreamProtocol(e) => EndReason::UpstreamProtocol(e.to_string()),
            SessionError::UpstreamClosed => EndReason::UpstreamClosed,
            SessionError::Refused(why) => EndReason::Refused(why),
            SessionError::OutOfMemory(e) => EndReason::OutOfMemory(e.to_string()),
        }
    }
}
