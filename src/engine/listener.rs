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
}
