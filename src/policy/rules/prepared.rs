//! Per-session memory of prepared statements' verdicts, so `EXECUTE name`
//! (SQL) or a protocol Bind/Execute is judged by what was prepared.
//!
//! A session owns one `PreparedVerdicts`. SQL `PREPARE` / `DEALLOCATE` /
//! `DISCARD ALL` are staged by `Policy::evaluate` and applied once the
//! string's fate is known: at once when it is allowed or audited, never when
//! it is blocked, and on `resolve_pending` when it waits for approval (a
//! refused approval must not leave a name pointing at a verdict the server
//! never saw). Protocol-level prepares (PostgreSQL Parse, MySQL
//! COM_STMT_PREPARE) are recorded by the session with `remember`.

use std::collections::HashMap;

use super::ClassSet;
use super::config::ActionKind;

/// Most names one session may remember; beyond it new names are not
/// recorded, so executing them gets the unclassified default (fail closed).
pub const MAX_PREPARED: usize = 4096;

/// What decided a verdict, without borrowing the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredDecider {
    Rule(u32),
    Unclassified,
    Unmatched,
    Empty,
}

/// A remembered verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredVerdict {
    pub action: ActionKind,
    pub decider: StoredDecider,
    pub classes: ClassSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Remember(Box<[u8]>, StoredVerdict),
    Forget(Box<[u8]>),
    ForgetAll,
}

/// A session's prepared-statement verdicts. Clone and compare serve a
/// session that judges one string under two lexical modes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PreparedVerdicts {
    by_name: HashMap<Box<[u8]>, StoredVerdict>,
    pending: Vec<Pending>,
}

impl PreparedVerdicts {
    pub fn new() -> Self {
        Self::default()
    }

    /// The verdict remembered for `name` (normalized as the server would:
    /// see `tollgate_codecs::sql::push_ident` for SQL names; protocol names
    /// are used as sent).
    pub fn lookup(&self, name: &[u8]) -> Option<StoredVerdict> {
        self.by_name.get(name).copied()
    }

    /// Records a protocol-level prepare at once.
    pub fn remember(&mut self, name: &[u8], verdict: StoredVerdict) {
        self.apply(Pending::Remember(name.into(), verdict));
    }

    /// Forgets a protocol-level prepared statement (Close / COM_STMT_CLOSE).
    pub fn forget(&mut self, name: &[u8]) {
        self.by_name.remove(name);
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Whether an evaluated string's PREPAREs wait for `resolve_pending`.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Applies (`forwarded`) or drops the changes staged by the last
    /// evaluation that needed approval.
    pub fn resolve_pending(&mut self, forwarded: bool) {
        let pending = std::mem::take(&mut self.pending);
        if forwarded {
            for op in pending {
                self.apply(op);
            }
        }
    }

    pub(crate) fn begin(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn stage_remember(&mut self, name: &[u8], verdict: StoredVerdict) {
        self.pending.push(Pending::Remember(name.into(), verdict));
    }

    pub(crate) fn stage_forget(&mut self, name: &[u8]) {
        self.pending.push(Pending::Forget(name.into()));
    }

    pub(crate) fn stage_forget_all(&mut self) {
        self.pending.push(Pending::ForgetAll);
    }

    /// Settles staged changes for a string whose verdict is `action`.
    pub(crate) fn finish(&mut self, action: ActionKind) {
        match action {
            ActionKind::Allow | ActionKind::Audit => self.resolve_pending(true),
            ActionKind::Block => self.resolve_pending(false),
            ActionKind::Approve => {}
        }
    }

    fn apply(&mut self, op: Pending) {
        match op {
            Pending::Remember(name, verdict) => {
                if self.by_name.len() < MAX_PREPARED || self.by_name.contains_key(&name) {
                    self.by_name.insert(name, verdict);
                } else {
                    // Full: make sure a stale entry cannot vouch for the name.
                    self.by_name.remove(&name);
                }
            }
            Pending::Forget(name) => {
                self.by_name.remove(&name);
            }
            Pending::ForgetAll => self.by_name.clear(),
        }
    }
}
