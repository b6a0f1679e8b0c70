//! The session pipeline every protocol shares. A protocol implements
//! [`Protocol`] (its start-up, how it reads the caller's secret, its
//! upstream login, its refusals and its relay); the pipeline owns the rest:
//! identity, access rules and the access window, timeouts, kills, the
//! session's recording (start and end records), metrics and the log lines.
//! See `README.md` beside this file.

mod authlog;
pub mod decode;
pub mod end;
mod frame_clock;
mod serve;
pub mod statement;
pub mod steps;

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use compio::net::TcpStream;

pub use end::{EndReason, Stop};
pub use frame_clock::FrameClock;
pub use steps::{AuthFailure, Caller};

use crate::config::{ListenerSpec, Protocol as ProtocolName, TargetConfig};
use crate::engine::dispatch::{ServeSession, SessionFuture};
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::engine::{KillReason, Protocols};
use crate::identity::Identity;
use crate::recording::SessionRecording;
use crate::snapshot::{Snapshot, TargetRuntime};

/// The adapters of every protocol this build serves: what `app.rs` hands
/// the engine.
pub fn protocols() -> Protocols {
    Protocols::default()
        .with(
            ProtocolName::Tcp,
            Arc::new(Adapter(crate::relay::TcpProtocol)),
        )
        .with(
            ProtocolName::Postgres,
            Arc::new(Adapter(crate::pg::adapter::PgProtocol::default())),
        )
        .with(
            ProtocolName::Mysql,
            Arc::new(Adapter(crate::mysql::adapter::MysqlProtocol::default())),
        )
        .with(
            ProtocolName::Http,
            Arc::new(Adapter(crate::http::adapter::HttpProtocol)),
        )
        .with(
            ProtocolName::Ssh,
            Arc::new(Adapter(crate::ssh::adapter::SshProtocol)),
        )
}

/// One session as every step sees it.
pub(crate) struct Session<'a> {
    pub ctx: &'a ShardCtx,
    pub snapshot: &'a Arc<Snapshot>,
    pub entry: &'a SessionEntry,
    pub listener: &'a ListenerSpec,
}

/// The target a session was routed to.
pub struct Target<'a> {
    pub index: usize,
    pub config: &'a TargetConfig,
    pub rt: &'a TargetRuntime,
}

/// A client past start-up, with what it presented, not yet verified.
pub struct Admission<C> {
    pub client: C,
    /// Index into the configuration's targets.
    pub target: usize,
    pub caller: Caller,
    /// The client's TLS version and cipher, when encrypted.
    pub tls: Option<String>,
    /// The user name the client asked for, for the log (never trusted).
    pub user: Option<String>,
}

/// What the relay gets from the pipeline.
pub struct Live<'a> {
    pub identity: Option<&'a Arc<Identity>>,
    pub recording: &'a SessionRecording,
    /// Set on every frame or buffer moved; the watchdog's idle clock.
    pub last_activity: &'a Cell<Instant>,
    /// When the client message in progress started (`[limits]
    /// frame_timeout`); the protocol marks its messages' progress.
    pub frame_clock: &'a FrameClock,
}

/// How a relay ended, and what (if anything) the client should be told.
pub struct Relayed<G> {
    pub reason: EndReason,
    pub goodbye: Option<G>,
}

/// Why the pipeline refuses a client before its relay starts; the protocol
/// writes it in its own terms (or just closes).
#[derive(Debug, Clone, Copy)]
pub enum Rejection<'a> {
    /// Token, revocation or access rules: one generic line.
    Authentication,
    /// The access window was denied (the reason is the reviewer's).
    Access(&'a str),
    /// The gateway could not log in to the upstream.
    UpstreamLogin,
    /// The recorder cannot record this session.
    Recorder,
    /// Killed while logging in.
    Killed(KillReason),
}

/// What a protocol implements. Every method runs on the session's shard.
pub(crate) trait Protocol: Send + Sync + 'static {
    /// The client connection after start-up (halves, buffers, options).
    type Client;
    /// The upstream connection after login.
    type Upstream;
    /// A handle to the client's write side that outlives the relay.
    type LastWord;
    /// What the client is told when the gateway ends the session.
    type Goodbye;

    /// The protocol's name in session-start records.
    const NAME: &'static str;

    /// Start-up: encryption, routing to a target, the caller's secret.
    /// `Ok(None)`: nothing to serve (a cancel request, a polite close).
    fn front_door(
        &self,
        s: &Session<'_>,
        client: TcpStream,
    ) -> impl Future<Output = Result<Option<Admission<Self::Client>>, EndReason>>;

    /// Tell the client why it is refused before its relay started.
    fn reject(&self, client: &mut Self::Client, why: Rejection<'_>) -> impl Future<Output = ()>;

    /// Connect and log in to the target's upstream with the stored credential.
    fn login(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: &mut Self::Client,
    ) -> impl Future<Output = Result<Self::Upstream, String>>;

    /// How the upstream accepted the login, for the `session opened` line.
    fn upstream_auth(&self, _upstream: &Self::Upstream) -> &'static str {
        "-"
    }

    /// Keep a way to write to the client once the relay is dropped.
    fn last_word(&self, client: &Self::Client) -> Self::LastWord;

    /// Relay (and inspect) until either side ends the session. The
    /// pipeline's watchdog may drop this future at any await.
    fn relay(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: Self::Client,
        upstream: Self::Upstream,
        live: &Live<'_>,
    ) -> impl Future<Output = Relayed<Self::Goodbye>>;

    /// What to tell the client when the watchdog ends the session.
    fn goodbye_for(&self, stop: Stop) -> Option<Self::Goodbye>;

    /// Tell the client why, after the relay was dropped.
    fn say_goodbye(&self, w: Self::LastWord, why: Self::Goodbye) -> impl Future<Output = ()>;
}

/// A [`Protocol`] as the engine calls it.
pub(crate) struct Adapter<P>(pub P);

impl<P: Protocol> ServeSession for Adapter<P> {
    fn serve<'a>(
        &'a self,
        ctx: &'a ShardCtx,
        listener: &'a ListenerSpec,
        entry: &'a SessionEntry,
        client: TcpStream,
    ) -> SessionFuture<'a> {
        Box::pin(serve::serve(&self.0, ctx, listener, entry, client))
    }
}
