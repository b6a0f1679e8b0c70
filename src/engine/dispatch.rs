//! How the engine hands an accepted connection to its protocol without
//! naming one: the application builds a [`Protocols`] registry at start-up
//! (see `crate::pipeline::protocols`) and the engine looks the listener's
//! protocol up in it for each connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use compio::net::TcpStream;

use super::session::SessionEntry;
use super::shard::ShardCtx;
use crate::config::{ListenerSpec, Protocol};

/// A session's future: shard-local, so neither `Send` nor `'static`.
pub(crate) type SessionFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Serves one accepted connection of one protocol to its end.
pub(crate) trait ServeSession: Send + Sync {
    fn serve<'a>(
        &'a self,
        ctx: &'a ShardCtx,
        listener: &'a ListenerSpec,
        entry: &'a SessionEntry,
        client: TcpStream,
    ) -> SessionFuture<'a>;
}

/// The protocols the engine can serve, each with its adapter.
#[derive(Clone, Default)]
pub struct Protocols {
    adapters: Vec<(Protocol, Arc<dyn ServeSession>)>,
}

impl Protocols {
    /// Register `adapter` for `protocol` (a later one replaces an earlier one).
    pub(crate) fn with(mut self, protocol: Protocol, adapter: Arc<dyn ServeSession>) -> Protocols {
        self.adapters.retain(|(p, _)| *p != protocol);
        self.adapters.push((protocol, adapter));
        self
    }

    /// The adapter for `protocol` (a handful of entries: a scan beats a map).
    pub(crate) fn get(&self, protocol: Protocol) -> Option<&Arc<dyn ServeSession>> {
        self.adapters
            .iter()
            .find(|(p, _)| *p == protocol)
            .map(|(_, a)| a)
    }
}

impl std::fmt::Debug for Protocols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.adapters.iter().map(|(p, _)| p))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configurable_protocol_has_an_adapter_and_an_empty_registry_has_none() {
        assert!(Protocols::default().get(Protocol::Tcp).is_none());
        let all = crate::pipeline::protocols();
        for p in Protocol::ALL {
            assert!(all.get(p).is_some(), "{p} has no adapter");
        }
    }
}
