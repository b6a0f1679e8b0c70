//! Just-in-time approvals: a statement (or a whole connection) waits while a
//! reviewer — never the requester — approves or denies it through the admin
//! API. The broker is shared by every shard behind one `Mutex`: approvals are
//! control-plane events (a few per minute), not the data path. The waiting
//! side is a plain future over a one-slot channel, so it works on any
//! runtime; a timer thread denies requests nobody answered in time, so no
//! one has to poll.

pub mod webhook;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::metrics::{Exposition, Histogram};

/// Default time a request waits before it is denied.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Longest time-boxed grant a reviewer may give.
pub const MAX_GRANT: Duration = Duration::from_secs(24 * 60 * 60);
/// Statements longer than this are cut (on a char boundary) in listings and
/// notifications; the recording keeps the full text.
pub const MAX_STATEMENT_SHOWN: usize = 4096;
/// Decided requests kept for `GET /v1/approvals/{id}` after the fact.
const RECENT_KEPT: usize = 512;

/// The identity the subject "local-admin" stands for: a caller on the
/// loopback admin listener without a token.
pub const LOCAL_OPERATOR: &str = "local-admin";

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub timeout: Duration,
    /// Used when a request names no reviewer groups of its own.
    pub default_reviewer_groups: Vec<String>,
    pub max_grant: Duration,
    /// Requests beyond this are denied at once (fail closed, bounded memory).
    pub max_pending: usize,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            timeout: DEFAULT_TIMEOUT,
            default_reviewer_groups: Vec::new(),
            max_grant: MAX_GRANT,
            max_pending: 10_000,
        }
    }
}

/// What needs approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// One statement inside a live session.
    Statement,
    /// The connection itself (a target with `require_approval_to_connect`).
    Access,
}

/// A request for approval, filled in by the session.
#[derive(Debug, Clone, Default)]
pub struct ApprovalRequest {
    pub session_id: String,
    /// The caller's subject; this identity can never decide the request.
    pub requester: String,
    pub requester_groups: Vec<String>,
    pub target: String,
    /// The statement text (empty for access requests).
    pub statement: String,
    /// The rule that asked for approval.
    pub rule: String,
    /// Who may decide; empty means the broker's default reviewer groups.
    pub reviewer_groups: Vec<String>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    TimedOut,
    Cancelled,
}

/// A request as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub id: u64,
    pub kind: ApprovalKind,
    pub state: ApprovalState,
    pub session_id: String,
    pub requester: String,
    pub requester_groups: Vec<String>,
    pub target: String,
    pub statement: String,
    pub rule: String,
    pub reviewer_groups: Vec<String>,
    pub created_ms: u64,
    pub expires_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_expires_ms: Option<u64>,
}

/// What the waiting session learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    Approved {
        by: String,
        reason: String,
    },
    Denied {
        by: String,
        reason: String,
    },
    /// Nobody decided in time (or the broker went away): treat as denied.
    TimedOut,
}

/// A reviewer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewerAnswer {
    /// Approve; with a grant, the same identity on the same target needs no
    /// approval of the same kind until the grant expires.
    Approve {
        grant: Option<Duration>,
    },
    Deny,
}

/// Who is deciding.
#[derive(Debug, Clone, Copy)]
pub struct Reviewer<'a> {
    pub subject: &'a str,
    pub groups: &'a [String],
    /// A tokenless caller on the loopback admin listener: trusted as an
    /// operator of this host, may review any request (but is never the
    /// requester of one).
    pub local_operator: bool,
}

/// A time-boxed permission a reviewer gave.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub subject: String,
    pub target: String,
    pub kind: ApprovalKind,
    pub granted_by: String,
    pub reason: String,
    pub approval_id: u64,
    pub created_ms: u64,
    pub expires_ms: u64,
    #[serde(skip)]
    expires: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no approval request {id}")]
    NotFound { id: u64 },
    #[error("approval request {id} is already {state:?}")]
    AlreadyDecided { id: u64, state: ApprovalState },
    #[error("{subject} requested approval {id} and cannot decide it")]
    OwnRequest { id: u64, subject: String },
    #[error("{subject} is not in the reviewer groups of approval {id}")]
    NotReviewer { id: u64, subject: String },
    #[error("grant of {minutes} minutes is out of range (1..={max_minutes})")]
    BadGrant { minutes: u64, max_minutes: u64 },
}

/// Told about each new request (the webhook notifier). Must not block.
pub trait Notify: Send + Sync {
    fn approval_requested(&self, view: &ApprovalView);
}

/// Mirrors requests into the fleet's shared control state (`[cluster]`):
/// told of each new request and of each one this host closed without a
/// reviewer (timed out, withdrawn). Must not block: it only queues.
pub trait ApprovalMirror: Send + Sync {
    fn opened(&self, view: &ApprovalView);
    fn closed(&self, id: u64, state: ApprovalState);
}

/// Counters for `/metrics`.
#[derive(Debug)]
pub struct ApprovalMetrics {
    requested: [AtomicU64; 2],
    approved: AtomicU64,
    denied: AtomicU64,
    timed_out: AtomicU64,
    cancelled: AtomicU64,
    covered_by_grant: AtomicU64,
    refused_full: AtomicU64,
    /// Time from request to decision, in milliseconds.
    pub wait: Histogram,
}

const WAIT_MS_BUCKETS: &[u64] = &[
    250, 1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000,
];

impl Default for ApprovalMetrics {
    fn default() -> ApprovalMetrics {
        ApprovalMetrics {
            requested: [AtomicU64::new(0), AtomicU64::new(0)],
            approved: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            covered_by_grant: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            wait: Histogram::new(WAIT_MS_BUCKETS, 1e3),
        }
    }
}

struct Entry {
    view: ApprovalView,
    created: Instant,
    deadline: Instant,
    tx: async_channel::Sender<ApprovalOutcome>,
}

/// A decision for a waiting session, sent with the broker's lock released:
/// the session's waker may block the sending thread until the session's
/// shard runs (compio queues a wake-up from another thread in a bounded
/// queue), and that shard may be waiting for the broker's lock (issue 13).
struct Answer(async_channel::Sender<ApprovalOutcome>, ApprovalOutcome);

impl Answer {
    fn send(self) {
        // The receiver may be gone already (session ended): nothing to do.
        let _ = self.0.try_send(self.1);
    }
}

#[derive(Default)]
struct State {
    next_id: u64,
    pending: BTreeMap<u64, Entry>,
    recent: VecDeque<ApprovalView>,
    grants: Vec<Grant>,
    stopped: bool,
}

struct Core {
    state: Mutex<State>,
    wake: Condvar,
    /// Swapped by a reload; requests already pending keep what they got.
    config: RwLock<BrokerConfig>,
    metrics: ApprovalMetrics,
    notifier: RwLock<Option<Arc<dyn Notify>>>,
    /// Set with `[cluster]`: requests are decided in the control database.
    mirror: RwLock<Option<Arc<dyn ApprovalMirror>>>,
}

impl Core {
    fn config(&self) -> BrokerConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn mirror(&self) -> Option<Arc<dyn ApprovalMirror>> {
        self.mirror
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Close a pending entry: move it to `recent` and count it. The waiter's
    /// answer is sent once `st` is released (see [`Answer`]).
    fn finish(
        &self,
        st: &mut State,
        mut entry: Entry,
        state: ApprovalState,
        decision: Option<ApprovalOutcome>,
    ) -> (ApprovalView, Option<Answer>) {
        entry.view.state = state;
        entry.view.decided_ms = Some(epoch_ms(SystemTime::now()));
        let counter = match state {
            ApprovalState::Approved => &self.metrics.approved,
            ApprovalState::Denied => &self.metrics.denied,
            ApprovalState::TimedOut => &self.metrics.timed_out,
            ApprovalState::Cancelled | ApprovalState::Pending => &self.metrics.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if state != ApprovalState::Cancelled {
            self.metrics
                .wait
                .observe(u64::try_from(entry.created.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
        if matches!(state, ApprovalState::TimedOut | ApprovalState::Cancelled)
            && let Some(m) = self.mirror()
        {
            m.closed(entry.view.id, state);
        }
        if st.recent.len() == RECENT_KEPT {
            st.recent.pop_front();
        }
        st.recent.push_back(entry.view.clone());
        let answer = decision.map(|d| Answer(entry.tx, d));
        (entry.view, answer)
    }

    fn cancel(&self, id: u64) {
        let mut st = self.lock();
        if let Some(entry) = st.pending.remove(&id) {
            self.finish(&mut st, entry, ApprovalState::Cancelled, None);
        }
    }

    /// Timer thread: deny what expired, sleep until the next deadline.
    fn run_timer(&self) {
        let mut st = self.lock();
        loop {
            if st.stopped {
                return;
            }
            let now = Instant::now();
            let expired: Vec<u64> = st
                .pending
                .iter()
                .filter(|(_, e)| e.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            let mut answers = Vec::new();
            for id in expired {
                if let Some(entry) = st.pending.remove(&id) {
                    tracing::info!(approval = id, "approval request timed out");
                    let (_, answer) = self.finish(
                        &mut st,
                        entry,
                        ApprovalState::TimedOut,
                        Some(ApprovalOutcome::TimedOut),
                    );
                    answers.extend(answer);
                }
            }
            if !answers.is_empty() {
                drop(st);
                answers.into_iter().for_each(Answer::send);
                st = self.lock();
                continue;
            }
            let wall = SystemTime::now();
            st.grants.retain(|g| g.expires > wall);
            let next = st.pending.values().map(|e| e.deadline).min();
            let wait = next.map_or(Duration::from_secs(60), |d| {
                d.saturating_duration_since(now)
            });
            st = self
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.lock().stopped = true;
        self.core.wake.notify_all();
    }
}

/// The approval broker; clones share one set of requests.
#[derive(Clone)]
pub struct Broker {
    handle: Arc<Handle>,
}

/// A request waiting for its decision. Dropping it (the session went away)
/// withdraws the request.
pub struct Pending {
    /// The request id; `0` when no request was needed (a grant covered it,
    /// or the broker refused at once).
    pub id: u64,
    pub expires: SystemTime,
    rx: async_channel::Receiver<ApprovalOutcome>,
    core: Option<Arc<Core>>,
}

impl Pending {
    /// Wait for the decision. Consumes the handle: once decided, the request
    /// is gone.
    pub async fn decision(self) -> ApprovalOutcome {
        self.rx.recv().await.unwrap_or(ApprovalOutcome::TimedOut)
    }

    fn ready(decision: ApprovalOutcome) -> Pending {
        let (tx, rx) = async_channel::bounded(1);
        let _ = tx.try_send(decision);
        Pending {
            id: 0,
            expires: SystemTime::now(),
            rx,
            core: None,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(core) = &self.core {
            core.cancel(self.id);
        }
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Broker {
    /// Start a broker and its timer thread.
    pub fn new(
        config: BrokerConfig,
        notifier: Option<Arc<dyn Notify>>,
    ) -> Result<Broker, std::io::Error> {
        let core = Arc::new(Core {
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            wake: Condvar::new(),
            config: RwLock::new(config),
            metrics: ApprovalMetrics::default(),
            notifier: RwLock::new(notifier),
            mirror: RwLock::new(None),
        });
        let timer_core = core.clone();
        std::thread::Builder::new()
            .name("tollgate-approvals".into())
            .spawn(move || timer_core.run_timer())?;
        Ok(Broker {
            handle: Arc::new(Handle { core }),
        })
    }

    fn core(&self) -> &Core {
        &self.handle.core
    }

    /// The settings in force now.
    pub fn config(&self) -> BrokerConfig {
        self.core().config()
    }

    /// The notifier in use (the webhook), if any.
    pub fn notifier(&self) -> Option<Arc<dyn Notify>> {
        self.core()
            .notifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Apply reloaded settings (reviewer groups, timeout) and notifier to
    /// requests made from now on.
    pub fn reconfigure(&self, config: BrokerConfig, notifier: Option<Arc<dyn Notify>>) {
        let core = self.core();
        *core.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        *core
            .notifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = notifier;
    }

    /// Mirror requests into the fleet (`[cluster]`); set before any
    /// session asks. From then on request ids are random (53 bits, so a
    /// JSON reader keeps them exact) rather than counted, so that ids made
    /// on different hosts do not collide in the shared table.
    pub fn set_mirror(&self, mirror: Arc<dyn ApprovalMirror>) {
        *self
            .core()
            .mirror
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(mirror);
    }

    /// Whether requests are decided in the fleet's control database.
    pub fn is_mirrored(&self) -> bool {
        self.core().mirror().is_some()
    }

    /// Apply a decision a reviewer made in the fleet's control database
    /// (on any host) to the request waiting here. Returns whether a request
    /// was waiting (`false`: already closed here, e.g. timed out).
    pub fn apply_decision(
        &self,
        id: u64,
        approved: bool,
        by: &str,
        reason: &str,
        grant_expires_ms: Option<u64>,
    ) -> bool {
        let core = self.core();
        let mut st = core.lock();
        let Some(mut entry) = st.pending.remove(&id) else {
            return false;
        };
        entry.view.decided_by = Some(by.to_string());
        entry.view.reason = Some(reason.to_string());
        let (state, decision) = if approved {
            if let Some(ms) = grant_expires_ms {
                let expires = UNIX_EPOCH + Duration::from_millis(ms);
                entry.view.grant_expires_ms = Some(ms);
                st.grants.push(Grant {
                    subject: entry.view.requester.clone(),
                    target: entry.view.target.clone(),
                    kind: entry.view.kind,
                    granted_by: by.to_string(),
                    reason: reason.to_string(),
                    approval_id: id,
                    created_ms: epoch_ms(SystemTime::now()),
                    expires_ms: ms,
                    expires,
                });
            }
            (
                ApprovalState::Approved,
                ApprovalOutcome::Approved {
                    by: by.to_string(),
                    reason: reason.to_string(),
                },
            )
        } else {
            (
                ApprovalState::Denied,
                ApprovalOutcome::Denied {
                    by: by.to_string(),
                    reason: reason.to_string(),
                },
            )
        };
        let (_, answer) = core.finish(&mut st, entry, state, Some(decision));
        drop(st);
        if let Some(a) = answer {
            a.send();
        }
        true
    }

    /// A time-boxed grant a reviewer gave on another host of the fleet
    /// (read from the control database), so the same identity is not asked
    /// again on this host either. Idempotent per approval.
    #[allow(clippy::too_many_arguments)]
    pub fn add_fleet_grant(
        &self,
        approval_id: u64,
        subject: &str,
        target: &str,
        kind: ApprovalKind,
        granted_by: &str,
        reason: &str,
        expires_ms: u64,
    ) -> bool {
        let now = SystemTime::now();
        let expires = UNIX_EPOCH + Duration::from_millis(expires_ms);
        if expires <= now {
            return false;
        }
        let mut st = self.core().lock();
        if st.grants.iter().any(|g| g.approval_id == approval_id) {
            return false;
        }
        st.grants.push(Grant {
            subject: subject.to_string(),
            target: target.to_string(),
            kind,
            granted_by: granted_by.to_string(),
            reason: reason.to_string(),
            approval_id,
            created_ms: epoch_ms(now),
            expires_ms,
            expires,
        });
        true
    }

    pub fn metrics(&self) -> &ApprovalMetrics {
        &self.core().metrics
    }

    /// Ask approval for one statement. A live grant for this identity on
    /// this target answers at once without creating a request.
    pub fn request(&self, req: ApprovalRequest) -> Pending {
        self.open(ApprovalKind::Statement, req)
    }

    /// Ask approval to connect at all (a just-in-time access window).
    pub fn request_access(&self, req: ApprovalRequest) -> Pending {
        self.open(ApprovalKind::Access, req)
    }

    fn open(&self, kind: ApprovalKind, req: ApprovalRequest) -> Pending {
        let core = self.core();
        core.metrics.requested[kind as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(g) = self.covering_grant(kind, &req.requester, &req.target, SystemTime::now()) {
            core.metrics
                .covered_by_grant
                .fetch_add(1, Ordering::Relaxed);
            return Pending::ready(ApprovalOutcome::Approved {
                by: g.granted_by,
                reason: format!(
                    "time-boxed grant from approval {}: {}",
                    g.approval_id, g.reason
                ),
            });
        }
        let now = SystemTime::now();
        let (tx, rx) = async_channel::bounded(1);
        let view;
        let id;
        let config = core.config();
        {
            let mut st = core.lock();
            if st.pending.len() >= config.max_pending {
                drop(st);
                core.metrics.refused_full.fetch_add(1, Ordering::Relaxed);
                return Pending::ready(ApprovalOutcome::Denied {
                    by: "tollgate".into(),
                    reason: "too many approval requests pending".into(),
                });
            }
            id = if core.mirror().is_some() {
                loop {
                    let r = rand::random::<u64>() & ((1 << 53) - 1);
                    if r != 0 && !st.pending.contains_key(&r) {
                        break r;
                    }
                }
            } else {
                st.next_id += 1;
                st.next_id - 1
            };
            let reviewer_groups = if req.reviewer_groups.is_empty() {
                config.default_reviewer_groups.clone()
            } else {
                req.reviewer_groups
            };
            view = ApprovalView {
                id,
                kind,
                state: ApprovalState::Pending,
                session_id: req.session_id,
                requester: req.requester,
                requester_groups: req.requester_groups,
                target: req.target,
                statement: cut(&req.statement, MAX_STATEMENT_SHOWN),
                rule: req.rule,
                reviewer_groups,
                created_ms: epoch_ms(now),
                expires_ms: epoch_ms(now + config.timeout),
                decided_by: None,
                reason: None,
                decided_ms: None,
                grant_expires_ms: None,
            };
            let created = Instant::now();
            st.pending.insert(
                id,
                Entry {
                    view: view.clone(),
                    created,
                    deadline: created + config.timeout,
                    tx,
                },
            );
        }
        core.wake.notify_all();
        tracing::info!(approval = id, requester = %view.requester, target = %view.target, "approval requested");
        let notifier = core
            .notifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(n) = notifier {
            n.approval_requested(&view);
        }
        if let Some(m) = core.mirror() {
            m.opened(&view);
        }
        Pending {
            id,
            expires: now + config.timeout,
            rx,
            core: Some(self.handle.core.clone()),
        }
    }

    /// Pending requests, oldest first.
    pub fn pending(&self) -> Vec<ApprovalView> {
        self.core()
            .lock()
            .pending
            .values()
            .map(|e| e.view.clone())
            .collect()
    }

    /// A pending or recently decided request.
    pub fn get(&self, id: u64) -> Option<ApprovalView> {
        let st = self.core().lock();
        st.pending
            .get(&id)
            .map(|e| e.view.clone())
            .or_else(|| st.recent.iter().rev().find(|v| v.id == id).cloned())
    }

    /// Whether `reviewer` may decide `view` (ignoring its state).
    pub fn may_review(view: &ApprovalView, reviewer: &Reviewer<'_>) -> bool {
        reviewer.subject != view.requester
            && (reviewer.local_operator
                || reviewer
                    .groups
                    .iter()
                    .any(|g| view.reviewer_groups.contains(g)))
    }

    /// Whether `groups` name a reviewer of any pending request or the defaults.
    pub fn is_reviewer_group_member(&self, groups: &[String]) -> bool {
        let core = self.core();
        let defaults = core.config().default_reviewer_groups;
        groups.iter().any(|g| defaults.contains(g))
            || core
                .lock()
                .pending
                .values()
                .any(|e| groups.iter().any(|g| e.view.reviewer_groups.contains(g)))
    }

    /// Approve or deny a pending request. Exactly one decision wins; later
    /// ones get [`DecideError::AlreadyDecided`].
    pub fn decide(
        &self,
        id: u64,
        reviewer: &Reviewer<'_>,
        verdict: ReviewerAnswer,
        reason: Option<&str>,
    ) -> Result<ApprovalView, DecideError> {
        let core = self.core();
        let max_grant = core.config().max_grant;
        if let ReviewerAnswer::Approve { grant: Some(d) } = verdict
            && (d.is_zero() || d > max_grant)
        {
            return Err(DecideError::BadGrant {
                minutes: d.as_secs() / 60,
                max_minutes: max_grant.as_secs() / 60,
            });
        }
        let mut st = core.lock();
        let Some(entry) = st.pending.get(&id) else {
            return Err(match st.recent.iter().rev().find(|v| v.id == id) {
                Some(v) => DecideError::AlreadyDecided { id, state: v.state },
                None => DecideError::NotFound { id },
            });
        };
        if entry.view.requester == reviewer.subject {
            return Err(DecideError::OwnRequest {
                id,
                subject: reviewer.subject.to_string(),
            });
        }
        if !Broker::may_review(&entry.view, reviewer) {
            return Err(DecideError::NotReviewer {
                id,
                subject: reviewer.subject.to_string(),
            });
        }
        let Some(mut entry) = st.pending.remove(&id) else {
            return Err(DecideError::NotFound { id });
        };
        let by = reviewer.subject.to_string();
        entry.view.decided_by = Some(by.clone());
        let (state, decision) = match verdict {
            ReviewerAnswer::Approve { grant } => {
                let reason = reason.unwrap_or("approved").to_string();
                if let Some(d) = grant {
                    let now = SystemTime::now();
                    let expires = now + d;
                    entry.view.grant_expires_ms = Some(epoch_ms(expires));
                    st.grants.push(Grant {
                        subject: entry.view.requester.clone(),
                        target: entry.view.target.clone(),
                        kind: entry.view.kind,
                        granted_by: by.clone(),
                        reason: reason.clone(),
                        approval_id: id,
                        created_ms: epoch_ms(now),
                        expires_ms: epoch_ms(expires),
                        expires,
                    });
                }
                entry.view.reason = Some(reason.clone());
                (
                    ApprovalState::Approved,
                    ApprovalOutcome::Approved { by, reason },
                )
            }
            ReviewerAnswer::Deny => {
                let reason = reason.unwrap_or("denied").to_string();
                entry.view.reason = Some(reason.clone());
                (
                    ApprovalState::Denied,
                    ApprovalOutcome::Denied { by, reason },
                )
            }
        };
        let (view, answer) = core.finish(&mut st, entry, state, Some(decision));
        drop(st);
        if let Some(a) = answer {
            a.send();
        }
        Ok(view)
    }

    fn covering_grant(
        &self,
        kind: ApprovalKind,
        subject: &str,
        target: &str,
        now: SystemTime,
    ) -> Option<Grant> {
        self.core()
            .lock()
            .grants
            .iter()
            .find(|g| {
                g.kind == kind && g.subject == subject && g.target == target && g.expires > now
            })
            .cloned()
    }

    /// A live statement grant for this identity on this target, if any.
    pub fn grant_covers(&self, subject: &str, target: &str, now: SystemTime) -> Option<Grant> {
        self.covering_grant(ApprovalKind::Statement, subject, target, now)
    }

    /// A live access window for this identity on this target, if any.
    pub fn access_granted(&self, subject: &str, target: &str, now: SystemTime) -> Option<Grant> {
        self.covering_grant(ApprovalKind::Access, subject, target, now)
    }

    /// Grants that have not expired.
    pub fn grants(&self) -> Vec<Grant> {
        let now = SystemTime::now();
        self.core()
            .lock()
            .grants
            .iter()
            .filter(|g| g.expires > now)
            .cloned()
            .collect()
    }

    /// Approval families for `/metrics` (the broker is shared, so no shard label).
    pub fn render_metrics(&self, e: &mut Exposition) {
        let core = self.core();
        let m = &core.metrics;
        let pending = core.lock().pending.len();
        e.family(
            "tollgate_approvals_pending",
            "gauge",
            "Approval requests waiting for a reviewer.",
        );
        e.sample("tollgate_approvals_pending", &[], pending as f64);
        e.family(
            "tollgate_approvals_requested_total",
            "counter",
            "Approval requests, by kind.",
        );
        for (kind, i) in [("statement", 0), ("access", 1)] {
            e.sample(
                "tollgate_approvals_requested_total",
                &[("kind", kind)],
                m.requested[i].load(Ordering::Relaxed) as f64,
            );
        }
        e.family(
            "tollgate_approvals_decided_total",
            "counter",
            "Approval requests closed, by outcome.",
        );
        for (outcome, c) in [
            ("approved", &m.approved),
            ("denied", &m.denied),
            ("timed_out", &m.timed_out),
            ("cancelled", &m.cancelled),
            ("covered_by_grant", &m.covered_by_grant),
            ("refused_queue_full", &m.refused_full),
        ] {
            e.sample(
                "tollgate_approvals_decided_total",
                &[("outcome", outcome)],
                c.load(Ordering::Relaxed) as f64,
            );
        }
        e.histogram(
            "tollgate_approval_wait_seconds",
            "Time from an approval request to its decision.",
            [(Vec::new(), &m.wait)],
        );
    }
}

#[cfg(test)]
mod tests;
