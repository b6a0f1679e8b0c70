//! The admin plane: an HTTP/JSON API on its own listener for operators,
//! reviewers and Prometheus — health, metrics, live sessions and kills,
//! revocations, reloads and approvals. See `API.md` for every endpoint.
//!
//! The server depends on the rest of the appliance only through the traits
//! below, which the binary wires to the engine, the identity layer, the
//! recorder and the config loader; tests plug in fakes.

pub mod auth;
pub mod client;
/// `[admin]` settings live below the configuration (no admin → config → admin cycle).
pub use crate::config::admin as config;
pub mod durable;
mod fleet;
pub mod routes;
pub mod server;
pub mod store;
pub mod validate;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::approvals::webhook::{Webhook, WebhookOptions, WebhookStats};
use crate::approvals::{Broker, Notify};
use crate::engine::{Control, KillReason, SessionInfo, SessionSelector, ShardStats};
use crate::metrics::Metrics;
pub use config::AdminConfig;
pub use server::{AdminError, AdminServer};

/// A verified admin-API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub groups: Vec<String>,
}

/// Verifies `Authorization: Bearer` tokens (wired to the identity layer).
pub trait AdminAuth: Send + Sync {
    /// The caller the token proves, or why it proves nothing.
    fn verify(&self, bearer: &str) -> Result<Caller, String>;
}

/// Live sessions across shards. Implemented by [`Control`]; a seam so the
/// admin plane can be tested without an engine.
pub trait SessionControl: Send + Sync {
    fn list_sessions(&self) -> Vec<SessionInfo>;
    /// End the selected sessions; returns how many ended.
    fn kill(&self, which: SessionSelector, reason: KillReason) -> usize;
    /// The engine's per-shard counters, for `/metrics`.
    fn shard_stats(&self) -> &[ShardStats] {
        &[]
    }
}

impl SessionControl for Control {
    fn list_sessions(&self) -> Vec<SessionInfo> {
        Control::list_sessions(self)
    }
    fn kill(&self, which: SessionSelector, reason: KillReason) -> usize {
        Control::kill(self, which, reason)
    }
    fn shard_stats(&self) -> &[ShardStats] {
        &self.shared().stats
    }
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    Subject,
    TokenId,
    Issuer,
}

impl RevocationKind {
    pub fn name(self) -> &'static str {
        match self {
            RevocationKind::Subject => "subject",
            RevocationKind::TokenId => "token_id",
            RevocationKind::Issuer => "issuer",
        }
    }
}

/// One revocation as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Set by the durable store for revocations made through the API (the
    /// handle `DELETE /v1/revocations/{id}` lifts); `None` for entries of
    /// `[identity] revocation_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub kind: RevocationKind,
    pub value: String,
    pub reason: String,
    /// Who revoked (`revocation_file` for the file's entries).
    pub revoked_by: String,
    /// When (milliseconds since the epoch); `None` when unknown (file).
    #[serde(default)]
    pub revoked_ms: Option<u64>,
    /// The revocation lapses at this time (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

/// The identity layer's revocation store.
pub trait RevocationSink: Send + Sync {
    /// Store the revocation durably, then apply it so new sessions are
    /// refused. Returns the revocation as stored (with its id) and further
    /// subjects whose live sessions must end (a token-id or issuer
    /// revocation names no subject itself; the identity layer may know
    /// which subjects it covers). A subject revocation's own subject is
    /// always ended by the admin plane.
    fn revoke(&self, revocation: &Revocation) -> Result<(Revocation, Vec<String>), String>;
    /// Lift the API revocation `id`: `Ok(None)` when there is none.
    fn lift(&self, id: u64) -> Result<Option<Revocation>, String>;
    /// Revocations in force (API and file).
    fn list(&self) -> Vec<Revocation>;
}

/// An in-memory revocation list (tests, and a fallback before the identity
/// layer is wired).
#[derive(Debug, Default)]
pub struct MemoryRevocations(Mutex<Vec<Revocation>>);

impl MemoryRevocations {
    pub fn is_revoked(&self, kind: RevocationKind, value: &str) -> bool {
        self.list()
            .iter()
            .any(|r| r.kind == kind && r.value == value)
    }
}

impl RevocationSink for MemoryRevocations {
    fn revoke(&self, revocation: &Revocation) -> Result<(Revocation, Vec<String>), String> {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stored = revocation.clone();
        stored.id = Some(list.iter().filter_map(|r| r.id).max().unwrap_or(0) + 1);
        list.push(stored.clone());
        Ok((stored, Vec::new()))
    }
    fn lift(&self, id: u64) -> Result<Option<Revocation>, String> {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let found = list.iter().position(|r| r.id == Some(id));
        Ok(found.map(|i| list.remove(i)))
    }
    fn list(&self) -> Vec<Revocation> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Validates and applies a new configuration (SIGHUP does the same).
pub trait Reloader: Send + Sync {
    /// `Ok(summary)` once swapped on every shard; `Err(validation error)`
    /// when refused (the old configuration keeps serving).
    fn reload(&self) -> Result<String, String>;
}

impl<F: Fn() -> Result<String, String> + Send + Sync> Reloader for F {
    fn reload(&self) -> Result<String, String> {
        self()
    }
}

/// One readiness condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyCheck {
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Listeners bound, recorder writable, keys loaded: the binary decides.
pub trait ReadinessProbe: Send + Sync {
    fn checks(&self) -> Vec<ReadyCheck>;
}

impl<F: Fn() -> Vec<ReadyCheck> + Send + Sync> ReadinessProbe for F {
    fn checks(&self) -> Vec<ReadyCheck> {
        self()
    }
}

/// Where admin actions are recorded (the recorder).
pub trait AuditSink: Send + Sync {
    /// `action` is one of kill, revoke, lift, reload, approve, deny.
    fn admin_action(&self, actor: &str, action: &str, object: &str, detail: &str);
}

/// Everything the routes can reach.
pub struct AdminState {
    /// Swapped by a reload (groups, approval settings).
    config: RwLock<AdminConfig>,
    /// The listener's bound address, for the `Host` check.
    bound: OnceLock<SocketAddr>,
    pub control: Arc<dyn SessionControl>,
    pub broker: Broker,
    pub auth: Option<Arc<dyn AdminAuth>>,
    pub revocations: Option<Arc<dyn RevocationSink>>,
    pub reloader: Option<Arc<dyn Reloader>>,
    pub readiness: Option<Arc<dyn ReadinessProbe>>,
    pub audit: Option<Arc<dyn AuditSink>>,
    pub metrics: Option<Arc<Metrics>>,
    pub webhook: RwLock<Option<Arc<WebhookStats>>>,
    /// `[cluster]`: sessions, kills and approvals span the fleet.
    pub fleet: Option<crate::cluster::Cluster>,
}

impl AdminState {
    /// State with only the required parts; add the rest with `with_*`.
    pub fn new(
        config: AdminConfig,
        control: Arc<dyn SessionControl>,
        broker: Broker,
    ) -> AdminState {
        AdminState {
            config: RwLock::new(config),
            bound: OnceLock::new(),
            control,
            broker,
            auth: None,
            revocations: None,
            reloader: None,
            readiness: None,
            audit: None,
            metrics: None,
            webhook: RwLock::new(None),
            fleet: None,
        }
    }
    pub fn with_auth(mut self, auth: Arc<dyn AdminAuth>) -> Self {
        self.auth = Some(auth);
        self
    }
    pub fn with_revocations(mut self, sink: Arc<dyn RevocationSink>) -> Self {
        self.revocations = Some(sink);
        self
    }
    pub fn with_reloader(mut self, reloader: Arc<dyn Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }
    pub fn with_readiness(mut self, probe: Arc<dyn ReadinessProbe>) -> Self {
        self.readiness = Some(probe);
        self
    }
    pub fn with_audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(audit);
        self
    }
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
    pub fn with_fleet(mut self, fleet: crate::cluster::Cluster) -> Self {
        self.fleet = Some(fleet);
        self
    }
    pub fn with_webhook_stats(self, stats: Arc<WebhookStats>) -> Self {
        *self.webhook.write().unwrap_or_else(PoisonError::into_inner) = Some(stats);
        self
    }

    /// The `[admin]` settings in force.
    pub fn config(&self) -> AdminConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_bound(&self, addr: SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// The address the listener is bound to (once started).
    pub fn bound(&self) -> Option<SocketAddr> {
        self.bound.get().copied()
    }

    /// Apply a reloaded `[admin]` table: groups, approval timeout and
    /// webhook take effect for requests from now on. Settings the running
    /// listener cannot take are refused before this by
    /// [`AdminConfig::needs_restart`].
    pub fn apply_config(&self, new: AdminConfig) -> std::io::Result<()> {
        let old = self.config();
        let (notifier, stats) = if new.webhook_url == old.webhook_url {
            (self.broker.notifier(), self.webhook_stats())
        } else {
            start_notifier(&new)?
        };
        self.broker.reconfigure(new.broker_config(), notifier);
        *self.webhook.write().unwrap_or_else(PoisonError::into_inner) = stats;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }

    pub(crate) fn webhook_stats(&self) -> Option<Arc<WebhookStats>> {
        self.webhook
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn audit(&self, actor: &str, action: &str, object: &str, detail: &str) {
        tracing::info!(actor, action, object, detail, "admin action");
        if let Some(a) = &self.audit {
            a.admin_action(actor, action, object, detail);
        }
    }
}

/// Build the approval broker (and its webhook notifier, when configured)
/// from `[admin]`. The broker is shared: hand clones to the sessions.
pub fn start_broker(config: &AdminConfig) -> std::io::Result<(Broker, Option<Arc<WebhookStats>>)> {
    let (notifier, stats) = start_notifier(config)?;
    Ok((Broker::new(config.broker_config(), notifier)?, stats))
}

type Notifier = (Option<Arc<dyn Notify>>, Option<Arc<WebhookStats>>);

/// The webhook notifier `[admin] webhook_url` names, if any.
fn start_notifier(config: &AdminConfig) -> std::io::Result<Notifier> {
    Ok(match &config.webhook_url {
        Some(url) => {
            let hook = Webhook::start(url.clone(), WebhookOptions::default())?;
            let stats = hook.stats();
            (Some(Arc::new(hook) as Arc<dyn Notify>), Some(stats))
        }
        None => (None, None),
    })
}

#[cfg(test)]
mod tests;
