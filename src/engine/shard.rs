//! One shard: a pinned thread running a compio runtime with its own
//! listeners, sessions and command inbox.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use compio::driver::ProactorBuilder;
use compio::net::{TcpListener, TcpStream};
use compio::runtime::RuntimeBuilder;
use futures_util::FutureExt;
use futures_util::future::{Either, select};
use tracing::{debug, error, info, warn};

use super::session::{KillReason, KillSwitch, Registry, SessionEntry, SessionId};
use super::{SessionInfo, SessionSelector, ShardCommand, ShardStats, Shared};

/// Everything a session on this shard can reach.
pub(crate) struct ShardCtx {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub registry: Registry,
    /// Fires when the shard stops accepting (shutdown).
    pub stop_accepting: KillSwitch,
    ids: super::session::SessionIds,
    refusals: RefusalLog,
    /// Verified tokens, for the identity service they came from.
    tokens: RefCell<Option<(usize, crate::identity::TokenCache)>>,
}

impl ShardCtx {
    /// This shard's recorder, when recording is on.
    pub fn recorder(&self) -> Option<tollgate_recorder::ShardRecorder> {
        self.shared.recorders.get(self.id).cloned()
    }

    /// The configuration snapshot a new session starts with.
    pub fn snapshot(&self) -> Arc<crate::snapshot::Snapshot> {
        self.shared.current_snapshot()
    }

    /// This shard's token cache for `snapshot`'s identity service (a new
    /// service after a reload starts a new cache).
    pub fn token_cache(
        &self,
        snapshot: &crate::snapshot::Snapshot,
    ) -> std::cell::RefMut<'_, crate::identity::TokenCache> {
        let key = Arc::as_ptr(&snapshot.identity) as usize;
        let mut slot = self.tokens.borrow_mut();
        if slot.as_ref().is_none_or(|(k, _)| *k != key) {
            *slot = Some((key, snapshot.identity.new_cache()));
        }
        std::cell::RefMut::map(slot, |s| match s {
            Some((_, c)) => c,
            None => unreachable!("filled above"),
        })
    }

    pub fn stats(&self) -> &ShardStats {
        &self.shared.stats[self.id]
    }
}

/// Thread entry point.
pub(super) fn run(
    id: usize,
    cpu: Option<usize>,
    shared: Arc<Shared>,
    listeners: Vec<(usize, std::net::TcpListener)>,
    commands: async_channel::Receiver<ShardCommand>,
) {
    let mut proactor = ProactorBuilder::new();
    // One thread submits to this ring and completions are reaped only when
    // we wait: measured ~25% less CPU per request (RUNTIME.md).
    proactor.single_issuer(true).defer_taskrun(true);
    let mut builder = RuntimeBuilder::new();
    builder.with_proactor(proactor);
    if let Some(cpu) = cpu {
        builder.thread_affinity(HashSet::from([cpu]));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            error!(shard = id, error = %e, "cannot create the io_uring runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let ctx = Rc::new(ShardCtx {
            id,
            shared,
            registry: Registry::default(),
            stop_accepting: KillSwitch::default(),
            ids: super::session::SessionIds::new(id),
            refusals: RefusalLog::default(),
            tokens: RefCell::new(None),
        });
        let mut accepting = Vec::new();
        for (spec, std_listener) in listeners {
            let addr = std_listener.local_addr().ok();
            match TcpListener::from_std(std_listener) {
                Ok(l) => {
                    let names: Vec<&str> = ctx.shared.config.listeners[spec]
                        .targets
                        .iter()
                        .map(|t| ctx.shared.config.targets[*t].name.as_str())
                        .collect();
                    info!(shard = id, ?cpu, targets = ?names, listen = ?addr, "listening");
                    accepting.push(compio::runtime::spawn(accept_loop(ctx.clone(), spec, l)));
                }
                Err(e) => error!(shard = id, error = %e, "cannot register listener"),
            }
        }
        let deadline = control_loop(&ctx, commands).await;
        ctx.stop_accepting.kill(KillReason::Shutdown);
        for task in accepting {
            let _ = task.await;
        }
        drain(&ctx, deadline).await;
        info!(shard = id, "shard stopped");
    });
}

/// Handle commands until shutdown; returns the drain deadline.
async fn control_loop(ctx: &ShardCtx, commands: async_channel::Receiver<ShardCommand>) -> Instant {
    loop {
        match commands.recv().await {
            Ok(ShardCommand::Shutdown { deadline }) => return deadline,
            Ok(ShardCommand::Kill {
                which,
                reason,
                reply,
            }) => {
                let now = SystemTime::now();
                let n = ctx.registry.kill_where(reason, |e| match &which {
                    SessionSelector::Id(id) => e.id == *id,
                    SessionSelector::Subject(s) => e
                        .identity
                        .borrow()
                        .as_ref()
                        .is_some_and(|i| i.subject == *s),
                    SessionSelector::Revoked(r) => e
                        .identity
                        .borrow()
                        .as_ref()
                        .is_some_and(|i| r.matches(i, now)),
                    SessionSelector::All => true,
                });
                if let Some(reply) = reply {
                    let _ = reply.send(n);
                }
            }
            Ok(ShardCommand::ListSessions { reply }) => {
                let list = ctx
                    .registry
                    .snapshot()
                    .iter()
                    .map(|e| SessionInfo {
                        id: e.id.to_string(),
                        shard: ctx.id,
                        target: e.target.borrow().to_string(),
                        client: e.client.to_string(),
                        subject: e.subject(),
                        started_ms: e
                            .started
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64),
                        bytes_up: e.bytes_up.get(),
                        bytes_down: e.bytes_down.get(),
                        current_statement: e.current_statement.borrow().clone(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            // The engine handle is gone: nobody can stop us any more, so stop now.
            Err(_) => return Instant::now(),
        }
    }
}

/// Let live sessions finish until `deadline`, then end them.
async fn drain(ctx: &ShardCtx, deadline: Instant) {
    let live = ctx.registry.len();
    if live > 0 {
        info!(shard = ctx.id, live, "draining live sessions");
        let wait = deadline.saturating_duration_since(Instant::now());
        if compio::time::timeout(wait, ctx.registry.empty())
            .await
            .is_err()
        {
            let n = ctx.registry.kill_where(KillReason::Shutdown, |_| true);
            warn!(
                shard = ctx.id,
                sessions = n,
                "shutdown grace expired: closing live sessions"
            );
            // Killed sessions shut their sockets down and unwind promptly.
            let _ = compio::time::timeout(Duration::from_secs(5), ctx.registry.empty()).await;
        }
    }
}

async fn accept_loop(ctx: Rc<ShardCtx>, spec: usize, listener: TcpListener) {
    loop {
        let accepted = {
            let accept = std::pin::pin!(listener.accept());
            match select(accept, ctx.stop_accepting.killed()).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => break,
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(shard = ctx.id, error = %e, "accept failed");
                compio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        admit(&ctx, spec, stream, peer);
    }
    let _ = listener.close().await;
}

/// Apply the connection caps, then start the session on this shard.
fn admit(ctx: &Rc<ShardCtx>, spec: usize, stream: TcpStream, peer: SocketAddr) {
    let engine = &ctx.shared.config.engine;
    let stats = ctx.stats();
    let before = ctx.shared.active.fetch_add(1, Ordering::AcqRel);
    if before >= engine.max_connections {
        ctx.shared.active.fetch_sub(1, Ordering::AcqRel);
        ShardStats::add(&stats.refused_global_cap, 1);
        ctx.refusals.log(
            ctx.id,
            peer,
            "global connection cap",
            engine.max_connections,
        );
        return;
    }
    if ctx.registry.len() >= engine.max_connections_per_shard {
        ctx.shared.active.fetch_sub(1, Ordering::AcqRel);
        ShardStats::add(&stats.refused_shard_cap, 1);
        ctx.refusals.log(
            ctx.id,
            peer,
            "shard connection cap",
            engine.max_connections_per_shard,
        );
        return;
    }
    // Fail closed: a shard that cannot record takes no new sessions.
    if let Some(rec) = ctx.shared.recorders.get(ctx.id)
        && !rec.is_healthy()
    {
        ctx.shared.active.fetch_sub(1, Ordering::AcqRel);
        ShardStats::add(&stats.refused_recorder, 1);
        ctx.refusals.log(ctx.id, peer, "recorder failed", 0);
        return;
    }
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY on a client socket");
    }
    let listener = &ctx.shared.config.listeners[spec];
    // A listener with one target knows it now; a shared postgres listener
    // learns it from the start-up message.
    let target_name: Rc<str> = match listener.targets.as_slice() {
        [one] => Rc::from(ctx.shared.config.targets[*one].name.as_str()),
        _ => Rc::from("-"),
    };
    let entry = Rc::new(SessionEntry {
        id: ctx.ids.next(),
        target: RefCell::new(target_name),
        client: peer,
        started: SystemTime::now(),
        identity: Default::default(),
        current_statement: Default::default(),
        bytes_up: Cell::new(0),
        bytes_down: Cell::new(0),
        kill: KillSwitch::default(),
    });
    ctx.registry.insert(entry.clone());
    ShardStats::add(&stats.accepted, 1);
    ShardStats::add(&stats.active, 1);
    let ctx = ctx.clone();
    compio::runtime::spawn(async move {
        let _guard = SessionGuard {
            ctx: &ctx,
            id: entry.id,
        };
        let listener = &ctx.shared.config.listeners[spec];
        let Some(adapter) = ctx.shared.protocols.get(listener.protocol) else {
            // Engine::start refuses a listener without an adapter.
            error!(shard = ctx.id, protocol = %listener.protocol, "no adapter for this protocol");
            return;
        };
        let serve = adapter.serve(&ctx, listener, &entry, stream);
        // A bug in one session must not take the shard (and every other
        // session on it) down: contain it, log it, close that session.
        if std::panic::AssertUnwindSafe(serve)
            .catch_unwind()
            .await
            .is_err()
        {
            error!(shard = ctx.id, session = %entry.id, "session task panicked; connection closed");
        }
    })
    .detach();
}

/// Releases a session's slot in every counter however the session ends.
struct SessionGuard<'a> {
    ctx: &'a ShardCtx,
    id: SessionId,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.ctx.registry.remove(self.id);
        self.ctx.shared.active.fetch_sub(1, Ordering::AcqRel);
        self.ctx.stats().active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Refusals are logged, but at most once a second per shard with a count of
/// the ones folded in, so a connection flood cannot flood the log as well.
#[derive(Default)]
struct RefusalLog {
    last: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl RefusalLog {
    fn log(&self, shard: usize, peer: SocketAddr, reason: &str, cap: usize) {
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed.set(self.suppressed.get() + 1);
            return;
        }
        self.last.set(Some(now));
        let suppressed = self.suppressed.replace(0);
        warn!(shard, client = %peer, reason, cap, suppressed, "connection refused");
    }
}
