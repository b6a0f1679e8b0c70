//! The engine: one pinned thread per core, each with its own io_uring runtime
//! (compio), its own SO_REUSEPORT listeners and its own sessions. A
//! connection lives and dies on the shard that accepted it. Shards share only
//! read-mostly state ([`Shared`]) and receive [`ShardCommand`]s from the main
//! thread (shutdown, kills).

pub mod dispatch;
pub mod listener;
pub mod session;
pub(crate) mod shard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, allowed_cpus};
pub use crate::metrics::ShardStats;
use crate::snapshot::Snapshot;
pub use dispatch::Protocols;
pub use listener::ListenError;
pub use session::{KillReason, SessionId};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("no adapter serves the {protocol} protocol of listener {addr}")]
    NoAdapter {
        protocol: crate::config::Protocol,
        addr: SocketAddr,
    },
    #[error("cannot start shard {shard}: {source}")]
    Shard {
        shard: usize,
        #[source]
        source: std::io::Error,
    },
}

/// State every shard can read.
pub struct Shared {
    /// The configuration the engine started with (listeners, engine limits).
    pub config: Arc<Config>,
    /// The configuration in service; reload replaces it for new sessions.
    pub snapshot: std::sync::RwLock<Arc<crate::snapshot::Snapshot>>,
    /// The adapter serving each protocol.
    pub protocols: Protocols,
    /// Live client connections across all shards (the global cap).
    pub active: AtomicUsize,
    pub stats: Vec<ShardStats>,
    /// Each shard's recorder (empty when recording is disabled).
    pub recorders: Vec<tollgate_recorder::ShardRecorder>,
    /// Held statements and access requests wait here for reviewers.
    pub broker: crate::approvals::Broker,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once shutdown began (readiness turns false).
    pub draining: std::sync::atomic::AtomicBool,
}

/// What the engine runs with.
pub struct EngineParts {
    pub snapshot: Arc<Snapshot>,
    pub recorders: Vec<tollgate_recorder::ShardRecorder>,
    pub broker: crate::approvals::Broker,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The protocol adapters (`crate::pipeline::protocols()`).
    pub protocols: Protocols,
}

/// A live session as listed to operators (a copy; the shard keeps the real one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub shard: usize,
    pub target: String,
    pub client: String,
    /// Caller identity (subject), once authenticated.
    pub subject: Option<String>,
    /// Start time, milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// The statement currently executing, when the protocol knows it.
    pub current_statement: Option<String>,
}

/// Which live sessions a kill applies to.
#[derive(Debug, Clone)]
pub enum SessionSelector {
    Id(SessionId),
    Subject(String),
    /// Every session whose identity a revocation matches.
    Revoked(crate::identity::Revocation),
    All,
}

impl Shared {
    /// The snapshot in service now.
    pub fn current_snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Messages from the main thread and the admin plane to a shard.
#[derive(Debug, Clone)]
pub enum ShardCommand {
    /// Stop accepting; end live sessions at `deadline` if they have not ended.
    Shutdown { deadline: Instant },
    /// End the selected sessions; replies with how many were ended.
    Kill {
        which: SessionSelector,
        reason: KillReason,
        reply: Option<std::sync::mpsc::Sender<usize>>,
    },
    /// Reply with this shard's live sessions.
    ListSessions {
        reply: std::sync::mpsc::Sender<Vec<SessionInfo>>,
    },
}

struct ShardHandle {
    thread: JoinHandle<()>,
    commands: async_channel::Sender<ShardCommand>,
}

/// A running engine.
pub struct Engine {
    shared: Arc<Shared>,
    shards: Vec<ShardHandle>,
    control: Control,
    /// The address each listener (by index in `config.listeners`) is bound to.
    bound: Vec<SocketAddr>,
}

/// A cloneable, thread-safe handle for the control plane (admin API,
/// revocation watchers): it talks to shards only through their inboxes.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
    inboxes: Vec<async_channel::Sender<ShardCommand>>,
}

/// How long a control request waits for a shard before giving up on it.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

impl Control {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn shard_count(&self) -> usize {
        self.inboxes.len()
    }

    /// Send a command to every shard.
    pub fn broadcast(&self, cmd: ShardCommand) {
        for inbox in &self.inboxes {
            // A shard that already exited has nothing left to do.
            let _ = inbox.try_send(cmd.clone());
        }
    }

    /// A revocation ends the revoked identity's live sessions on every shard
    /// at once (the callback runs on the revoking thread: it only posts to
    /// the shards' inboxes).
    fn subscribe_revocations(&self, snapshot: &Snapshot) {
        let kill = self.clone();
        snapshot
            .identity
            .revocations()
            .subscribe(Box::new(move |rev| {
                kill.broadcast(ShardCommand::Kill {
                    which: SessionSelector::Revoked(rev.clone()),
                    reason: KillReason::Revoked,
                    reply: None,
                });
            }));
    }

    /// Put a new snapshot in service for new sessions on every shard (live
    /// sessions keep theirs). Revocations made through the old identity
    /// service carry over.
    pub fn replace_snapshot(&self, new: Arc<Snapshot>) {
        let old = self.shared.current_snapshot();
        for r in old.identity.revocations().list() {
            if !new.identity.revocations().list().contains(&r) {
                new.identity.revocations().revoke(r);
            }
        }
        self.subscribe_revocations(&new);
        match self.shared.snapshot.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Whether the engine is serving (not draining).
    pub fn is_serving(&self) -> bool {
        !self.shared.draining.load(Ordering::Relaxed)
    }

    /// Live sessions across every shard (a shard that does not answer within
    /// two seconds is left out rather than stalling the caller).
    pub fn list_sessions(&self) -> Vec<SessionInfo> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = 0;
        for inbox in &self.inboxes {
            if inbox
                .try_send(ShardCommand::ListSessions { reply: tx.clone() })
                .is_ok()
            {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        let mut out = Vec::new();
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(mut v) => out.append(&mut v),
                Err(_) => break,
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// End the selected sessions on every shard; returns how many ended.
    pub fn kill(&self, which: SessionSelector, reason: KillReason) -> usize {
        let (tx, rx) = std::sync::mpsc::channel();
        let targets: Vec<&async_channel::Sender<ShardCommand>> = match &which {
            SessionSelector::Id(id) => self.inboxes.get(id.shard()).into_iter().collect(),
            _ => self.inboxes.iter().collect(),
        };
        let mut asked = 0;
        for inbox in targets {
            let cmd = ShardCommand::Kill {
                which: which.clone(),
                reason,
                reply: Some(tx.clone()),
            };
            if inbox.try_send(cmd).is_ok() {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        let mut total = 0;
        for _ in 0..asked {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(n) => total += n,
                Err(_) => break,
            }
        }
        total
    }
}

impl Engine {
    /// Bind every listener on every shard and start the shards.
    ///
    /// All binding happens here, before any shard runs, so a bad address or
    /// a port held by another process is an error at start-up, not a log line.
    pub fn start(parts: EngineParts) -> Result<Engine, EngineError> {
        let EngineParts {
            snapshot,
            recorders,
            broker,
            metrics,
            protocols,
        } = parts;
        let config = snapshot.config.clone();
        for spec in &config.listeners {
            if protocols.get(spec.protocol).is_none() {
                return Err(EngineError::NoAdapter {
                    protocol: spec.protocol,
                    addr: spec.addr,
                });
            }
            listener::ensure_port_free(spec.addr)?;
        }
        let n = config.engine.shards;
        let (per_shard, bound) =
            listener::bind_all(&config.listeners, n, config.engine.listen_backlog)?;
        let shared = Arc::new(Shared {
            stats: (0..n).map(|_| ShardStats::default()).collect(),
            config: config.clone(),
            snapshot: std::sync::RwLock::new(snapshot),
            protocols,
            active: AtomicUsize::new(0),
            recorders,
            broker,
            metrics,
            draining: Default::default(),
        });
        let cpus = allowed_cpus();
        let mut shards = Vec::with_capacity(n);
        for (id, listeners) in per_shard.into_iter().enumerate() {
            let (tx, rx) = async_channel::unbounded();
            // More shards than CPUs is allowed (tests, oversubscription) but
            // then pinning would stack them: only pin when each gets its own.
            let cpu = (n <= cpus.len()).then(|| cpus[id]);
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tollgate-shard-{id}"))
                .spawn(move || shard::run(id, cpu, shared, listeners, rx))
                .map_err(|source| EngineError::Shard { shard: id, source })?;
            shards.push(ShardHandle {
                thread,
                commands: tx,
            });
        }
        let control = Control {
            shared: shared.clone(),
            inboxes: shards.iter().map(|s| s.commands.clone()).collect(),
        };
        control.subscribe_revocations(&shared.current_snapshot());
        Ok(Engine {
            shared,
            shards,
            control,
            bound,
        })
    }

    /// The address each listener is bound to, by index in `config.listeners`: the
    /// kernel's port where the configuration asked for port 0.
    pub fn bound_addrs(&self) -> &[SocketAddr] {
        &self.bound
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The snapshot new sessions start with.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.current_snapshot()
    }

    /// A handle for the control plane.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stop accepting everywhere; live sessions get `grace` to finish.
    pub fn shutdown(&self, grace: Duration) {
        self.shared.draining.store(true, Ordering::Relaxed);
        self.control.broadcast(ShardCommand::Shutdown {
            deadline: Instant::now() + grace,
        });
    }

    /// Whether every shard thread has exited.
    pub fn is_finished(&self) -> bool {
        self.shards.iter().all(|s| s.thread.is_finished())
    }

    /// Wait for every shard to exit.
    pub fn join(self) {
        for s in self.shards {
            if s.thread.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
    }
}
