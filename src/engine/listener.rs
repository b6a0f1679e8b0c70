//! Listener sockets: one per shard per address, bound with SO_REUSEPORT so the
//! kernel spreads connections across shards, with a real backlog (compio's
//! `TcpListener::bind` would give SO_REUSEADDR and a backlog of 128).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Why a listen address cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "{addr} is already in use by another process (is another tollgate running?); refusing to \
         share the port"
    )]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Refuse to start when anything already listens on `addr`.
///
/// SO_REUSEPORT would let a second tollgate (same user) bind next to the first
/// and silently split the traffic, so we first bind *without* it: that bind
/// fails when any socket listens on the port, whatever its options.
pub fn ensure_port_free(addr: SocketAddr) -> Result<(), ListenError> {
    let probe = new_socket(addr).map_err(|source| ListenError::Bind { addr, source })?;
    probe
        .set_reuse_address(true)
        .map_err(|source| ListenError::Bind { addr, source })?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(ListenError::InUse { addr }),
        Err(source) => Err(ListenError::Bind { addr, source }),
    }
}

/// Listeners of one shard: (index in the listener list, socket).
pub type ShardListeners = Vec<(usize, std::net::TcpListener)>;

/// Binds every listener on each of `shards` shards. A port-0 address is bound by the
/// first shard and the kernel's port then reused by the others, so all shards share one
/// port per listener; returns the sockets per shard and each listener's bound address.
pub fn bind_all(
    specs: &[crate::config::ListenerSpec],
    shards: usize,
    backlog: u32,
) -> Result<(Vec<ShardListeners>, Vec<SocketAddr>), ListenError> {
    let mut bound: Vec<SocketAddr> = specs.iter().map(|s| s.addr).collect();
    let mut per_shard = Vec::with_capacity(shards);
    for _ in 0..shards {
        let mut mine = Vec::with_capacity(specs.len());
        for (li, addr) in bound.iter_mut().enumerate() {
            let l = bind_shard_listener(*addr, backlog)?;
            if addr.port() == 0 {
                *addr = l.local_addr().map_err(|source| ListenError::Bind {
                    addr: *addr,
                    source,
                })?;
            }
            mine.push((li, l));
        }
        per_shard.push(mine);
    }
    Ok((per_shard, bound))
}

/// Bind one shard's listener for `addr`.
pub fn bind_shard_listener(
    addr: SocketAddr,
    backlog: u32,
) -> Result<std::net::TcpListener, ListenError> {
    let wrap = |source| ListenError::Bind { addr, source };
    let socket = new_socket(addr).map_err(wrap)?;
    socket.set_reuse_address(true).map_err(wrap)?;
    socket.set_reuse_port(true).map_err(wrap)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(wrap)?;
    }
    socket.set_nonblocking(true).map_err(wrap)?;
    socket.bind(&addr.into()).map_err(wrap)?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).map_err(wrap)?;
    Ok(socket.into())
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_cloexec(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_detected_even_with_reuseport() {
        let first = bind_shard_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = first.local_addr().unwrap();
        match ensure_port_free(addr) {
            Err(ListenError::InUse { addr: a }) => assert_eq!(a, addr),
            other => panic!("expected InUse, got {other:?}"),
        }
        // Our own shards may still join each other on the port.
        let second = bind_shard_listener(addr, 16).unwrap();
        drop((first, second));
        ensure_port_free(addr).unwrap();
    }

    #[test]
    fn port_zero_is_bound_once_and_shared_by_every_shard() {
        let spec = crate::config::ListenerSpec {
            addr: "127.0.0.1:0".parse().unwrap(),
            protocol: crate::config::Protocol::Tcp,
            targets: vec![0],
        };
        let (per_shard, bound) = bind_all(&[spec.clone(), spec], 3, 16).unwrap();
        assert_eq!(bound.len(), 2);
        assert!(bound.iter().all(|a| a.port() != 0));
        assert_ne!(bound[0], bound[1], "two listeners, two ports");
        assert_eq!(per_shard.len(), 3);
        for shard in &per_shard {
            for (li, l) in shard {
                assert_eq!(l.local_addr().unwrap(), bound[*li]);
            }
        }
    }
}
