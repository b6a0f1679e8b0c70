//! Per-shard session registry: ids, what each live session is, and the kill
//! switch that ends it. Lives inside one shard (`Rc`/`Cell`, no locks); other
//! shards and the admin plane reach it through shard messages.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

/// Session id, unique across shards and restarts, and the key of a
/// session's recording: `[prefix: 32 bits | shard: 8 | counter: 24]`. The
/// prefix is the Unix second at which the shard started its current block of
/// 2^24 ids (at boot, then whenever the counter wraps), so two blocks never
/// share a prefix unless a shard used up 16 M ids within one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

pub use crate::config::MAX_SHARDS;

impl SessionId {
    pub fn new(prefix: u32, shard: usize, counter: u32) -> SessionId {
        SessionId(
            (u64::from(prefix) << 32)
                | (((shard & 0xff) as u64) << 24)
                | u64::from(counter & 0xff_ffff),
        )
    }

    /// The shard that owns this session.
    pub fn shard(self) -> usize {
        ((self.0 >> 24) & 0xff) as usize
    }
}

/// Hands out a shard's session ids.
pub struct SessionIds {
    shard: usize,
    prefix: Cell<u32>,
    next: Cell<u32>,
}

impl SessionIds {
    pub fn new(shard: usize) -> SessionIds {
        SessionIds {
            shard,
            prefix: Cell::new(unix_secs()),
            next: Cell::new(0),
        }
    }

    pub fn next(&self) -> SessionId {
        let n = self.next.get();
        if n > 0xff_ffff {
            // A new block: a later second than the last one.
            self.prefix
                .set(unix_secs().max(self.prefix.get().wrapping_add(1)));
            self.next.set(1);
            return SessionId::new(self.prefix.get(), self.shard, 0);
        }
        self.next.set(n + 1);
        SessionId::new(self.prefix.get(), self.shard, n)
    }
}

fn unix_secs() -> u32 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(SessionId)
    }
}

/// Why a session was ended from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    Shutdown,
    Admin,
    Revoked,
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KillReason::Shutdown => "gateway shutting down",
            KillReason::Admin => "ended by an administrator",
            KillReason::Revoked => "identity revoked",
        })
    }
}

/// A one-shot, shard-local signal that a session must end.
#[derive(Default)]
pub struct KillSwitch {
    reason: Cell<Option<KillReason>>,
    wakers: RefCell<Vec<Waker>>,
}

impl KillSwitch {
    pub fn kill(&self, reason: KillReason) {
        if self.reason.get().is_none() {
            self.reason.set(Some(reason));
        }
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn reason(&self) -> Option<KillReason> {
        self.reason.get()
    }

    /// Resolves once [`KillSwitch::kill`] has been called.
    pub fn killed(&self) -> Killed<'_> {
        Killed { switch: self }
    }
}

pub struct Killed<'a> {
    switch: &'a KillSwitch,
}

impl Future for Killed<'_> {
    type Output = KillReason;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<KillReason> {
        match self.switch.reason.get() {
            Some(r) => Poll::Ready(r),
            None => {
                let mut wakers = self.switch.wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// What the registry knows about a live session.
pub struct SessionEntry {
    pub id: SessionId,
    pub target: RefCell<Rc<str>>,
    pub client: SocketAddr,
    pub started: SystemTime,
    /// The caller's identity once verified, for revocation and listing.
    pub identity: RefCell<Option<std::sync::Arc<crate::identity::Identity>>>,
    /// The statement executing now, for operators' session lists.
    pub current_statement: RefCell<Option<String>>,
    pub bytes_up: Cell<u64>,
    pub bytes_down: Cell<u64>,
    pub kill: KillSwitch,
}

/// A shard's live sessions.
#[derive(Default)]
pub struct Registry {
    live: RefCell<HashMap<SessionId, Rc<SessionEntry>>>,
    emptied: RefCell<Vec<Waker>>,
}

impl SessionEntry {
    /// The caller's subject, once authenticated.
    pub fn subject(&self) -> Option<String> {
        self.identity.borrow().as_ref().map(|i| i.subject.clone())
    }
}

impl Registry {
    pub fn insert(&self, entry: Rc<SessionEntry>) {
        self.live.borrow_mut().insert(entry.id, entry);
    }

    pub fn remove(&self, id: SessionId) {
        let mut live = self.live.borrow_mut();
        live.remove(&id);
        if live.is_empty() {
            drop(live);
            for w in self.emptied.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.live.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.borrow().is_empty()
    }

    pub fn get(&self, id: SessionId) -> Option<Rc<SessionEntry>> {
        self.live.borrow().get(&id).cloned()
    }

    /// Kill every session `pred` selects; returns how many.
    pub fn kill_where(&self, reason: KillReason, pred: impl Fn(&SessionEntry) -> bool) -> usize {
        let chosen: Vec<Rc<SessionEntry>> = self
            .live
            .borrow()
            .values()
            .filter(|e| pred(e))
            .cloned()
            .collect();
        for e in &chosen {
            e.kill.kill(reason);
        }
        chosen.len()
    }

    pub fn snapshot(&self) -> Vec<Rc<SessionEntry>> {
        self.live.borrow().values().cloned().collect()
    }

    /// Resolves when no session is live.
    pub fn empty(&self) -> Empty<'_> {
        Empty { registry: self }
    }
}

pub struct Empty<'a> {
    registry: &'a Registry,
}

impl Future for Empty<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.registry.is_empty() {
            Poll::Ready(())
        } else {
            self.registry.emptied.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_round_trips_and_names_its_shard() {
        let id = SessionId::new(0x1234_5678, 7, 42);
        assert_eq!(id.shard(), 7);
        let s = id.to_string();
        assert_eq!(s.len(), 16);
        assert_eq!(s.parse::<SessionId>().unwrap(), id);
        assert_ne!(SessionId::new(1, 7, 42), id);
        assert_ne!(SessionId::new(0x1234_5678, 6, 42), id);
    }

    #[test]
    fn ids_stay_unique_when_the_counter_wraps() {
        let ids = SessionIds::new(3);
        ids.next.set(0xff_fffe);
        let a = ids.next();
        let b = ids.next();
        let c = ids.next();
        assert!(a != b && b != c && a != c);
        assert_eq!(c.shard(), 3);
        assert!(
            c.0 >> 32 > a.0 >> 32,
            "a wrapped counter starts a later prefix"
        );
    }

    #[test]
    fn kill_switch_keeps_the_first_reason() {
        let k = KillSwitch::default();
        assert_eq!(k.reason(), None);
        k.kill(KillReason::Revoked);
        k.kill(KillReason::Shutdown);
        assert_eq!(k.reason(), Some(KillReason::Revoked));
    }
}
