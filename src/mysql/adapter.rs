//! MySQL/MariaDB on the session pipeline: what `crate::pipeline::Protocol`
//! asks of a protocol, answered with the login (`front`, `upstream`) and
//! the command relay (`relay`) in this folder. The pipeline does identity,
//! access, the access window, recording, timeouts and kills.

use std::collections::HashMap;

use bytes::BytesMut;
use compio::net::TcpStream;
use tollgate_codecs::mysql::write_packet;

use super::front::{MyClient, front_door};
use super::io::{code, err_packet};
use super::judge::{MyInspector, lexer_mode};
use super::kill::KillMap;
use super::relay::Relay;
use super::results::Masker;
use super::upstream::{MyUpstream, login};
use crate::engine::KillReason;
use crate::limits::{Direction, SessionBudget};
use crate::pipeline::statement::StatementScope;
use crate::pipeline::{
    Admission, EndReason, Live, Protocol, Rejection, Relayed, Session, Stop, Target,
};
use crate::tls::LastWord;
use tracing::warn;

/// The MySQL adapter. It owns the KILL map, shared by every shard.
#[derive(Default)]
pub(crate) struct MysqlProtocol {
    kills: KillMap,
}

/// What the client reads when the gateway ends its session.
pub(crate) enum Goodbye {
    Idle,
    Stalled,
    Killed(KillReason),
    /// The session's memory budget (or the gateway's) would be exceeded.
    OutOfMemory(String),
}

/// What a caller reads for any authentication failure: one generic line.
pub const AUTH_FAILED: &str = "Access denied: authentication failed";

impl Protocol for MysqlProtocol {
    type Client = MyClient;
    type Upstream = MyUpstream;
    type LastWord = LastWord;
    type Goodbye = Goodbye;
    const NAME: &'static str = "mysql";

    async fn front_door(
        &self,
        s: &Session<'_>,
        client: TcpStream,
    ) -> Result<Option<Admission<MyClient>>, EndReason> {
        front_door(s, self.kills.next_id(), client).await
    }

    async fn reject(&self, client: &mut MyClient, why: Rejection<'_>) {
        let (c, message) = match why {
            Rejection::Authentication => (code::ACCESS_DENIED, AUTH_FAILED.to_string()),
            Rejection::Access(why) => (code::ACCESS_DENIED, why.to_string()),
            Rejection::UpstreamLogin => (
                code::UNAVAILABLE,
                "tollgate could not log in to the target".to_string(),
            ),
            Rejection::Recorder => (
                code::UNAVAILABLE,
                "tollgate cannot record this session".to_string(),
            ),
            Rejection::Killed(k) => (code::KILLED, k.to_string()),
        };
        client.refuse(c, &message).await;
    }

    async fn login(
        &self,
        _s: &Session<'_>,
        target: &Target<'_>,
        client: &mut MyClient,
    ) -> Result<MyUpstream, String> {
        login(target.config, target.rt, client).await
    }

    fn upstream_auth(&self, _upstream: &MyUpstream) -> &'static str {
        "mysql"
    }

    fn last_word(&self, client: &MyClient) -> LastWord {
        client.writer.last_word()
    }

    async fn relay(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        client: MyClient,
        upstream: MyUpstream,
        live: &Live<'_>,
    ) -> Relayed<Goodbye> {
        let refused = |why: &str| Relayed {
            reason: EndReason::Refused(why.to_string()),
            goodbye: None,
        };
        let (Some(identity), Some(my)) = (live.identity, target.config.mysql.as_ref()) else {
            return refused("a mysql session needs an identity and [target.mysql]");
        };
        let MyClient {
            reader: mut client_r,
            writer: mut client_w,
            seq,
            greeting_id,
            ..
        } = client;
        let MyUpstream {
            reader: mut up_r,
            writer: up_w,
            capabilities: caps,
            connection_id,
            server_version,
            ok,
            status,
        } = upstream;
        // The login's OK, in the caller's numbering.
        let mut out = BytesMut::new();
        write_packet(&mut out, seq, &ok);
        if let Err(e) = client_w.write_all(out.freeze()).await {
            return Relayed {
                reason: EndReason::ClientIo(e.to_string()),
                goodbye: None,
            };
        }
        client_r.cap = tollgate_codecs::mysql::Limits::default().command;
        // Both directions' buffers under the session's budget ([limits]).
        let budget = std::rc::Rc::new(SessionBudget::new(&s.snapshot.config.limits));
        client_r.budget = Some((budget.clone(), Direction::FromClient));
        up_r.budget = Some((budget, Direction::FromUpstream));
        let _registered = self.kills.register(
            greeting_id,
            &target.config.name,
            &identity.subject,
            connection_id,
        );
        let parts = Parts {
            s,
            target,
            live,
            identity,
            my,
            kills: &self.kills,
        };
        let mut relay = parts.relay(
            client_r,
            client_w,
            up_r,
            up_w,
            caps,
            &server_version,
            status,
        );
        let reason = relay.run().await;
        if let Some(m) = &relay.masker {
            s.ctx
                .shared
                .metrics
                .shard(s.ctx.id)
                .masked_counts(&m.scratch.counters);
        }
        let goodbye = match &reason {
            EndReason::OutOfMemory(e) => {
                warn!(session = %s.entry.id, reason = %e, "session ended: memory budget");
                Some(Goodbye::OutOfMemory(e.clone()))
            }
            _ => None,
        };
        Relayed { reason, goodbye }
    }

    fn goodbye_for(&self, stop: Stop) -> Option<Goodbye> {
        Some(match stop {
            Stop::IdleTimeout => Goodbye::Idle,
            Stop::FrameTimeout => Goodbye::Stalled,
            Stop::Killed(k) => Goodbye::Killed(k),
        })
    }

    async fn say_goodbye(&self, w: LastWord, why: Goodbye) {
        let ((c, state), message) = match why {
            Goodbye::Idle => (code::IDLE, "tollgate: idle timeout".to_string()),
            Goodbye::Stalled => (
                code::IDLE,
                "tollgate: a client packet did not complete in time".to_string(),
            ),
            Goodbye::Killed(k) => (code::KILLED, format!("tollgate: {k}")),
            Goodbye::OutOfMemory(e) => (code::OUT_OF_MEMORY, format!("tollgate: {e}")),
        };
        let mut out = BytesMut::new();
        err_packet(&mut out, 0, c, state, &message);
        let _ = w.send(out.freeze()).await;
    }
}

/// What a session's relay is made of, besides its connections.
struct Parts<'a> {
    s: &'a Session<'a>,
    target: &'a Target<'a>,
    live: &'a Live<'a>,
    identity: &'a crate::identity::Identity,
    my: &'a crate::config::mysql::MysqlTarget,
    kills: &'a KillMap,
}

impl<'a> Parts<'a> {
    #[allow(clippy::too_many_arguments)]
    fn relay(
        self,
        client_r: super::io::PacketReader,
        client_w: crate::tls::WriteHalf,
        up_r: super::io::PacketReader,
        up_w: crate::tls::WriteHalf,
        caps: u32,
        server_version: &[u8],
        status: u16,
    ) -> Relay<'a> {
        let rt = self.target.rt;
        let mode = lexer_mode(server_version, status);
        Relay {
            scope: StatementScope {
                ctx: self.s.ctx,
                entry: self.s.entry,
                target: self.target.config,
                identity: self.identity,
                recording: self.live.recording,
            },
            live: self.live,
            my: self.my,
            kills: self.kills,
            client_r,
            max_statement: self.s.snapshot.config.limits.max_statement,
            client_w,
            up_r,
            up_w,
            caps,
            inspector: MyInspector::new(&rt.policy, self.identity, mode),
            statements: HashMap::new(),
            last_prepared: None,
            mariadb: mode.mariadb,
            masker: rt
                .masking
                .as_ref()
                .map(|m| Masker::new(m, &self.identity.groups)),
            out: BytesMut::new(),
            renumber: None,
        }
    }
}
