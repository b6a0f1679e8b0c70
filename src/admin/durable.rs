//! The revocation sink the binary uses: every API revocation goes to the
//! durable [`RevocationStore`] first, then to the identity layer's store of
//! the configuration in service (whose subscribers end live sessions on
//! every shard). At start, [`DurableRevocations::restore`] puts what an
//! earlier run stored back in force before any listener accepts.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::store::RevocationStore;
use super::{Revocation, RevocationKind, RevocationSink};
use crate::engine::Control;
use crate::identity::{self, RevocationTarget, Revocations};

/// Who the entries of `[identity] revocation_file` are shown as revoked by.
pub const FILE_SOURCE: &str = "revocation_file";

/// Durable store + identity layer.
pub struct DurableRevocations {
    control: Control,
    /// `None`: no state directory (recording disabled and no
    /// `[admin] state_dir`): API revocations are refused, since a restart
    /// would forget them.
    store: Option<RevocationStore>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn target_of(r: &Revocation) -> RevocationTarget {
    match r.kind {
        RevocationKind::Subject => RevocationTarget::Subject(r.value.clone()),
        RevocationKind::TokenId => RevocationTarget::TokenId(r.value.clone()),
        RevocationKind::Issuer => RevocationTarget::Issuer(r.value.clone()),
    }
}

/// The identity layer's form of an API revocation.
pub fn to_identity(r: &Revocation) -> identity::Revocation {
    let mut rev = identity::Revocation::new(target_of(r));
    rev.reason = Some(r.reason.clone());
    rev.until = r.until_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    rev
}

/// Where the store lives: `[admin] state_dir`, else `<recorder dir>/admin-state`.
pub fn state_dir(config: &crate::config::Config) -> Option<PathBuf> {
    config
        .admin
        .state_dir
        .clone()
        .or_else(|| config.recorder.as_ref().map(|r| r.dir.join("admin-state")))
}

impl DurableRevocations {
    pub fn new(control: Control, store: Option<RevocationStore>) -> DurableRevocations {
        DurableRevocations { control, store }
    }

    /// Put the stored revocations in force in `into` (the start-up
    /// snapshot's store); returns how many.
    pub fn restore(store: &RevocationStore, into: &Revocations) -> usize {
        let entries = store.entries(now_ms());
        for r in &entries {
            into.revoke(to_identity(r));
        }
        entries.len()
    }

    fn identity_store(&self) -> std::sync::Arc<Revocations> {
        self.control
            .shared()
            .current_snapshot()
            .identity
            .revocations()
            .clone()
    }
}

impl RevocationSink for DurableRevocations {
    fn revoke(&self, r: &Revocation) -> Result<(Revocation, Vec<String>), String> {
        let Some(store) = &self.store else {
            return Err("no state directory to keep it in across restarts: set [admin] state_dir (or enable the recorder)".into());
        };
        let stored = store.add(r, now_ms()).map_err(|e| e.to_string())?;
        self.identity_store().revoke(to_identity(&stored));
        Ok((stored, Vec::new()))
    }

    fn lift(&self, id: u64) -> Result<Option<Revocation>, String> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(lifted) = store.remove(id, now_ms()).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        self.identity_store().unrevoke(&target_of(&lifted));
        Ok(Some(lifted))
    }

    fn list(&self) -> Vec<Revocation> {
        let now = now_ms();
        let mut out = self
            .store
            .as_ref()
            .map(|s| s.entries(now))
            .unwrap_or_default();
        let at = SystemTime::now();
        for r in self.identity_store().list() {
            if !r.is_in_force(at) {
                continue;
            }
            let (kind, value) = match r.target {
                RevocationTarget::Subject(v) => (RevocationKind::Subject, v),
                RevocationTarget::TokenId(v) => (RevocationKind::TokenId, v),
                RevocationTarget::Issuer(v) => (RevocationKind::Issuer, v),
            };
            if out.iter().any(|o| o.kind == kind && o.value == value) {
                continue;
            }
            out.push(Revocation {
                id: None,
                kind,
                value,
                reason: r.reason.unwrap_or_default(),
                revoked_by: FILE_SOURCE.into(),
                revoked_ms: None,
                until_ms: r
                    .until
                    .and_then(|u| u.duration_since(UNIX_EPOCH).ok())
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            });
        }
        out
    }
}
