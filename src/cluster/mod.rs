//! `[cluster]`: a fleet of gateways sharing control state in PostgreSQL.
//!
//! One thread per host (`tollgate-cluster`, the "cluster agent") runs a
//! tokio current-thread runtime with two connections to the control
//! database: one that `LISTEN`s (to the fleet's channel and this host's
//! own), one for queries. Everything else talks to it through a bounded
//! channel: the admin plane's threads block on a reply with a deadline;
//! the approval broker and the audit only queue (never wait). The data
//! path never touches it: sessions see revocations through the identity
//! layer's in-memory store the agent keeps current, and approvals through
//! the broker they always used.
//!
//! What is shared, and how it moves:
//! - revocations: a row, then `NOTIFY tollgate_fleet`; every agent re-reads
//!   the list on the notification and every `reconcile` interval;
//! - approvals: the broker mirrors each request into a row; any host's
//!   reviewer decides it with a row lock (`SELECT ... FOR UPDATE`, exactly
//!   one winner), then `NOTIFY tollgate_host_<id>` reaches the waiting host;
//! - kill requests for another host's session: a row + that host's channel;
//! - live sessions: every heartbeat the agent writes this host's sessions
//!   (and its heartbeat); a host whose heartbeat is older than
//!   `host_timeout` is left out of the fleet list and its rows swept;
//! - the admin action audit: a row per action (besides the recording);
//! - the catalog of uploaded recording segments: the uploader queues each
//!   confirmed manifest version (and which segments are still on disk);
//!   the agent writes it idempotently and says up to which version the
//!   catalog is complete, so the uploader re-sends what an outage or a
//!   crash kept from it (`catalog.rs`).

mod agent;
pub mod catalog;
pub mod cli;
mod rows;
pub mod schema;
pub mod tls;

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::admin::Revocation as AdminRevocation;
use crate::approvals::{ApprovalMirror, ApprovalState, ApprovalView, Broker, DecideError};
use crate::config::cluster::ClusterConfig;
use crate::engine::Control;
use crate::identity::Revocations;
use crate::objstore::catalog::{CatalogFilter, CatalogRow, CatalogSink};

pub use agent::{PrepareError, Prepared, prepare};

/// How many requests may wait for the agent; beyond it a fire-and-forget
/// one is dropped (and logged) and a call is refused at once.
const QUEUE: usize = 4096;

type Reply<T> = SyncSender<Result<T, String>>;

/// What a reviewer racing others is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetDecideError {
    #[error("{0}")]
    Decide(DecideError),
    #[error("approval request {id} was already {state} by {by}")]
    Lost { id: u64, state: String, by: String },
    #[error("control database unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of a kill asked for a session this host does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteKill {
    NotFound,
    /// The same session id is live on several hosts: name one (`host:id`).
    Ambiguous(Vec<String>),
    /// The owning host ended `killed` sessions.
    Done {
        host: String,
        killed: i64,
    },
    /// Asked, but the owning host did not confirm in time.
    Sent {
        host: String,
    },
}

/// A reviewer's decision, as sent to the agent.
#[derive(Debug, Clone)]
pub struct Decision {
    pub id: u64,
    pub subject: String,
    pub groups: Vec<String>,
    pub local_operator: bool,
    pub approve: bool,
    pub grant: Option<Duration>,
    pub reason: Option<String>,
}

pub(crate) enum Req {
    ApprovalOpened(Box<ApprovalView>),
    ApprovalClosed(u64, ApprovalState),
    Audit {
        actor: String,
        action: String,
        object: String,
        detail: String,
    },
    Revoke(AdminRevocation, Reply<AdminRevocation>),
    Lift(u64, String, Reply<Option<AdminRevocation>>),
    RemoteSessions(Reply<Vec<Value>>),
    Kill {
        host: Option<String>,
        session: String,
        by: String,
        reply: Reply<RemoteKill>,
    },
    Approvals(Reply<Vec<ApprovalView>>),
    Approval(u64, Reply<Option<ApprovalView>>),
    Decide(Decision, Reply<Result<ApprovalView, FleetDecideError>>),
    Catalog(catalog::CatalogWrite),
    CatalogList(CatalogFilter, Reply<Vec<CatalogRow>>),
}

/// Whether the agent reaches the control database.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub host_id: String,
    pub connected: bool,
    /// Since when connected (or disconnected), milliseconds since the epoch.
    pub since_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub(crate) struct Shared {
    pub host_id: String,
    pub config: ClusterConfig,
    pub status: Mutex<ClusterStatus>,
    /// The fleet's revocations as last read (what this host enforces).
    pub revocations: Mutex<Vec<AdminRevocation>>,
    /// This host's position in the segment catalog.
    pub catalog: Mutex<catalog::CatalogPos>,
    pub tx: async_channel::Sender<Req>,
    /// Set when the agent's thread has finished (or never started).
    pub stopped: std::sync::atomic::AtomicBool,
}

/// A handle on this host's cluster agent; clones share it.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cluster {
    /// The handle on what [`prepare`] established; give it to the broker
    /// ([`Broker::set_mirror`]) before the engine accepts.
    pub fn new(prepared: &Prepared) -> Cluster {
        Cluster {
            shared: prepared.shared.clone(),
        }
    }

    /// Start the agent once the engine runs.
    pub fn start(prepared: Prepared, control: Control, broker: Broker) -> std::io::Result<()> {
        agent::spawn(prepared, control, broker)
    }

    pub fn host_id(&self) -> &str {
        &self.shared.host_id
    }

    pub fn status(&self) -> ClusterStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stop the agent: it writes what is queued, then exits; waits for
    /// that at most `grace`.
    pub fn shutdown(&self, grace: Duration) {
        self.shared.tx.close();
        let deadline = std::time::Instant::now() + grace;
        while !self
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Acquire)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Queue without waiting; a full queue drops (logged).
    fn queue(&self, req: Req) {
        if self.shared.tx.try_send(req).is_err() {
            tracing::warn!(
                "cluster agent queue full or stopped: a control-state update was dropped"
            );
        }
    }

    /// Ask the agent and wait for its answer, at most the query timeout
    /// plus a little (the agent times its own queries out before that).
    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Req) -> Result<T, String> {
        let (tx, rx) = sync_channel(1);
        self.shared
            .tx
            .try_send(make(tx))
            .map_err(|_| "the cluster agent is not accepting requests".to_string())?;
        let wait = self.shared.config.query_timeout * 2 + Duration::from_secs(4);
        rx.recv_timeout(wait)
            .map_err(|_| "the control database did not answer in time".to_string())?
    }

    pub fn revoke(&self, r: &AdminRevocation) -> Result<AdminRevocation, String> {
        self.call(|tx| Req::Revoke(r.clone(), tx))
    }

    pub fn lift(&self, id: u64, by: &str) -> Result<Option<AdminRevocation>, String> {
        self.call(|tx| Req::Lift(id, by.to_string(), tx))
    }

    /// The fleet's revocations as this host last read them.
    pub fn revocations(&self) -> Vec<AdminRevocation> {
        self.shared
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Live sessions of the other hosts whose heartbeat is fresh.
    pub fn remote_sessions(&self) -> Result<Vec<Value>, String> {
        self.call(Req::RemoteSessions)
    }

    /// Kill a session another host holds (`host`: when the caller named it).
    pub fn kill_remote(
        &self,
        host: Option<&str>,
        session: &str,
        by: &str,
    ) -> Result<RemoteKill, String> {
        self.call(|reply| Req::Kill {
            host: host.map(str::to_string),
            session: session.to_string(),
            by: by.to_string(),
            reply,
        })
    }

    /// Pending (unexpired) approval requests of the whole fleet.
    pub fn approvals(&self) -> Result<Vec<ApprovalView>, String> {
        self.call(Req::Approvals)
    }

    pub fn approval(&self, id: u64) -> Result<Option<ApprovalView>, String> {
        self.call(|tx| Req::Approval(id, tx))
    }

    pub fn decide(&self, d: Decision) -> Result<ApprovalView, FleetDecideError> {
        match self.call(|tx| Req::Decide(d, tx)) {
            Ok(r) => r,
            Err(e) => Err(FleetDecideError::Unavailable(e)),
        }
    }

    /// The uploader's way into the catalog, for the uploads of `host` (its
    /// `[recorder.upload] host_id`, the folder its segments are under).
    pub fn catalog_link(&self, host: &str) -> Arc<dyn CatalogSink> {
        self.shared
            .catalog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .host = Some(host.to_string());
        Arc::new(catalog::CatalogLink {
            shared: self.shared.clone(),
        })
    }

    /// The fleet's uploaded segments the catalog lists, per host newest first.
    pub fn catalog(&self, filter: CatalogFilter) -> Result<Vec<CatalogRow>, String> {
        self.call(|tx| Req::CatalogList(filter, tx))
    }

    /// Record an admin action in the fleet's audit table (queued).
    pub fn audit(&self, actor: &str, action: &str, object: &str, detail: &str) {
        self.queue(Req::Audit {
            actor: actor.to_string(),
            action: action.to_string(),
            object: object.to_string(),
            detail: detail.to_string(),
        });
    }

    /// Put the fleet's revocations (as read by [`prepare`]) in force in a
    /// store: the start-up snapshot's, before any listener accepts.
    pub fn restore_into(prepared: &Prepared, into: &Revocations) -> usize {
        let list = prepared
            .shared
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for r in &list {
            into.revoke(crate::admin::durable::to_identity(r));
        }
        list.len()
    }
}

impl ApprovalMirror for Cluster {
    fn opened(&self, view: &ApprovalView) {
        self.queue(Req::ApprovalOpened(Box::new(view.clone())));
    }
    fn closed(&self, id: u64, state: ApprovalState) {
        self.queue(Req::ApprovalClosed(id, state));
    }
}

/// `/readyz`'s line for the cluster. Readiness does not fail on it: a host
/// whose data path works keeps taking sessions (see README, "Running a
/// fleet"); the detail says what is degraded.
pub fn ready_detail(s: &ClusterStatus) -> String {
    if s.connected {
        format!("connected (host {})", s.host_id)
    } else {
        format!(
            "degraded: control database unreachable since {} ms ({}): new approvals are denied at their timeout, revocations known keep applying",
            epoch_ms(SystemTime::now()).saturating_sub(s.since_ms),
            s.last_error.as_deref().unwrap_or("not connected yet")
        )
    }
}

/// The admin plane's revocation sink under `[cluster]`: the control
/// database is the durable store (a revocation is acknowledged once its row
/// is committed and in force on this host; the others hear the NOTIFY).
pub struct FleetRevocations {
    pub cluster: Cluster,
    pub control: Control,
}

impl crate::admin::RevocationSink for FleetRevocations {
    fn revoke(&self, r: &AdminRevocation) -> Result<(AdminRevocation, Vec<String>), String> {
        self.cluster.revoke(r).map(|stored| (stored, Vec::new()))
    }

    fn lift(&self, id: u64) -> Result<Option<AdminRevocation>, String> {
        self.cluster.lift(id, "admin-api")
    }

    fn list(&self) -> Vec<AdminRevocation> {
        let mut out = self.cluster.revocations();
        let now = SystemTime::now();
        let store = self.control.shared().current_snapshot();
        for r in store.identity.revocations().list() {
            if !r.is_in_force(now) {
                continue;
            }
            let (kind, value) = match r.target {
                crate::identity::RevocationTarget::Subject(v) => {
                    (crate::admin::RevocationKind::Subject, v)
                }
                crate::identity::RevocationTarget::TokenId(v) => {
                    (crate::admin::RevocationKind::TokenId, v)
                }
                crate::identity::RevocationTarget::Issuer(v) => {
                    (crate::admin::RevocationKind::Issuer, v)
                }
            };
            if out.iter().any(|o| o.kind == kind && o.value == value) {
                continue;
            }
            out.push(AdminRevocation {
                id: None,
                kind,
                value,
                reason: r.reason.unwrap_or_default(),
                revoked_by: crate::admin::durable::FILE_SOURCE.into(),
                revoked_ms: None,
                until_ms: r.until.map(epoch_ms),
            });
        }
        out
    }
}
