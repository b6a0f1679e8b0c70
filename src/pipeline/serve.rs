//! The pipeline's driver: one session from accept to its end record, the
//! same for every protocol.

use std::cell::Cell;
use std::time::Instant;

use compio::net::TcpStream;
use futures_util::future::{Either, select};
use tollgate_recorder::{SessionEnd, SessionStart};
use tracing::{info, warn};

use super::{Admission, EndReason, Live, Protocol, Rejection, Relayed, Session, Target, steps};
use crate::config::ListenerSpec;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::Identity;
use crate::metrics::AuthOutcome;
use crate::recording::SessionRecording;
use crate::tls::close_socket;

/// A verified client, routed to its target.
struct Admitted<C> {
    client: C,
    target: usize,
    identity: Option<std::sync::Arc<Identity>>,
    tls: Option<String>,
}

/// Serve one accepted connection to its end.
pub(super) async fn serve<P: Protocol>(
    p: &P,
    ctx: &ShardCtx,
    listener: &ListenerSpec,
    entry: &SessionEntry,
    client: TcpStream,
) {
    // Counts the shard's live sessions so it can give freed heap back.
    let _slot = crate::limits::SessionSlot::open();
    let snapshot = ctx.snapshot();
    let Some(&first) = listener.targets.first() else {
        return;
    };
    let s = Session {
        ctx,
        snapshot: &snapshot,
        entry,
        listener,
    };
    // Before routing the target is not known: the listener's first target's
    // timeout bounds start-up and authentication.
    let auth_timeout = snapshot.config.targets[first].auth_timeout;
    let started = Instant::now();
    let front = std::pin::pin!(compio::time::timeout(
        auth_timeout,
        admit(p, &s, client.clone())
    ));
    let admitted = match select(front, entry.kill.killed()).await {
        Either::Left((Ok(Ok(Some(a))), _)) => a,
        Either::Left((Ok(Ok(None)), _)) | Either::Right(_) => {
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
    };
    let target = Target {
        index: admitted.target,
        config: &snapshot.config.targets[admitted.target],
        rt: &snapshot.targets[admitted.target],
    };
    let reason = run(p, &s, &target, admitted).await;
    close_socket(&client);
    info!(
        shard = ctx.id,
        session = %entry.id,
        target = %target.config.name,
        subject = entry.subject().as_deref().unwrap_or("-"),
        reason = %reason,
        bytes_up = entry.bytes_up.get(),
        bytes_down = entry.bytes_down.get(),
        duration_ms = started.elapsed().as_millis() as u64,
        "session closed"
    );
}

/// Start-up by the protocol, then identity and access by the pipeline.
async fn admit<P: Protocol>(
    p: &P,
    s: &Session<'_>,
    client: TcpStream,
) -> Result<Option<Admitted<P::Client>>, EndReason> {
    let Some(Admission {
        mut client,
        target,
        caller,
        tls,
        user,
    }) = p.front_door(s, client).await?
    else {
        return Ok(None);
    };
    let config = &s.snapshot.config.targets[target];
    *s.entry.target.borrow_mut() = std::rc::Rc::from(config.name.as_str());
    let metrics = s.ctx.shared.metrics.shard(s.ctx.id);
    let rt = &s.snapshot.targets[target];
    let identity = match steps::identify(s.ctx, s.snapshot, rt, &caller) {
        Ok(id) => id,
        Err(failure) => {
            metrics.auth_refused(failure.outcome());
            super::authlog::failed(
                &s.entry.id,
                s.entry.client,
                &config.name,
                user.as_deref().unwrap_or("-"),
                &failure,
            );
            p.reject(&mut client, Rejection::Authentication).await;
            return Err(EndReason::Authentication(failure.to_string()));
        }
    };
    if identity.is_some() {
        metrics.auth(AuthOutcome::Ok);
    }
    *s.entry.identity.borrow_mut() = identity.clone();
    Ok(Some(Admitted {
        client,
        target,
        identity,
        tls,
    }))
}

/// From a verified client to the session's end record.
async fn run<P: Protocol>(
    p: &P,
    s: &Session<'_>,
    t: &Target<'_>,
    admitted: Admitted<P::Client>,
) -> EndReason {
    let Admitted {
        mut client,
        identity,
        tls,
        ..
    } = admitted;
    let entry = s.entry;
    if t.config.require_approval_to_connect
        && let Err(why) = steps::access_window(s.ctx, t.config, entry, identity.as_deref()).await
    {
        p.reject(&mut client, Rejection::Access(&why.to_string()))
            .await;
        return why;
    }
    let upstream = match login(p, s, t, &mut client).await {
        Ok(u) => u,
        Err(reason) => return reason,
    };
    info!(
        shard = s.ctx.id,
        session = %entry.id,
        target = %t.config.name,
        subject = identity.as_ref().map_or("-", |i| i.subject.as_str()),
        groups = ?identity.as_ref().map_or(&[][..], |i| &i.groups[..]),
        issuer = identity.as_ref().map_or("-", |i| i.issuer.as_str()),
        client = %entry.client,
        upstream_auth = p.upstream_auth(&upstream),
        "session opened"
    );
    let recording = SessionRecording::new(s.ctx.recorder(), entry.id.0);
    let start = SessionStart {
        subject: identity.as_ref().map_or("-".into(), |i| i.subject.clone()),
        groups: identity.as_ref().map_or(Vec::new(), |i| i.groups.clone()),
        issuer: identity.as_ref().map(|i| i.issuer.clone()),
        target: t.config.name.clone(),
        client_addr: Some(entry.client.to_string()),
        tls_version: tls,
        protocol: Some(P::NAME.into()),
        ..Default::default()
    };
    let started = Instant::now();
    let reason = match recording.start(start).await {
        Err(e) => {
            warn!(session = %entry.id, error = %e, "cannot record: session refused");
            p.reject(&mut client, Rejection::Recorder).await;
            EndReason::RecorderFailed(e.to_string())
        }
        Ok(()) => {
            let live = Live {
                identity: identity.as_ref(),
                recording: &recording,
                last_activity: &Cell::new(Instant::now()),
                frame_clock: &super::FrameClock::default(),
            };
            relay_watched(p, s, t, client, upstream, &live).await
        }
    };
    let end = SessionEnd {
        reason: reason.to_string(),
        bytes_client_to_target: entry.bytes_up.get(),
        bytes_target_to_client: entry.bytes_down.get(),
        duration_ns: started.elapsed().as_nanos() as u64,
    };
    if let Err(e) = recording.end(end).await {
        warn!(session = %entry.id, error = %e, "session end not recorded");
    }
    reason
}

/// Log in upstream unless the session is killed first.
async fn login<P: Protocol>(
    p: &P,
    s: &Session<'_>,
    t: &Target<'_>,
    client: &mut P::Client,
) -> Result<P::Upstream, EndReason> {
    let outcome = {
        let login = std::pin::pin!(p.login(s, t, client));
        match select(login, s.entry.kill.killed()).await {
            Either::Left((Ok(up), _)) => return Ok(up),
            Either::Left((Err(e), _)) => Err(e),
            Either::Right((k, _)) => Ok(k),
        }
    };
    match outcome {
        Err(e) => {
            ShardStats::add(&s.ctx.stats().upstream_failures, 1);
            warn!(session = %s.entry.id, target = %t.config.name, upstream = %t.config.upstream, error = %e, "upstream connect or login failed");
            p.reject(client, Rejection::UpstreamLogin).await;
            Err(EndReason::UpstreamLogin(e))
        }
        Ok(k) => {
            p.reject(client, Rejection::Killed(k)).await;
            Err(EndReason::Killed(k))
        }
    }
}

/// The protocol's relay under the watchdog (idle timeout, kills). The
/// client is told why only once the relay is dropped, so nothing follows
/// the goodbye.
async fn relay_watched<P: Protocol>(
    p: &P,
    s: &Session<'_>,
    t: &Target<'_>,
    client: P::Client,
    upstream: P::Upstream,
    live: &Live<'_>,
) -> EndReason {
    let last_word = p.last_word(&client);
    let Relayed { reason, goodbye } = {
        let relay = std::pin::pin!(p.relay(s, t, client, upstream, live));
        let watchdog = std::pin::pin!(steps::watchdog(
            s.entry,
            live.last_activity,
            t.config.idle_timeout,
            live.frame_clock,
            s.snapshot.config.limits.frame_timeout
        ));
        match select(relay, watchdog).await {
            Either::Left((r, _)) => r,
            Either::Right((stop, _)) => Relayed {
                reason: stop.into(),
                goodbye: p.goodbye_for(stop),
            },
        }
    };
    if let Some(why) = goodbye {
        p.say_goodbye(last_word, why).await;
    }
    reason
}
