//! `tollgate-load echo`: an upstream that sends back every byte it receives.
//!
//! One compio runtime per thread, each with its own SO_REUSEPORT listener, like
//! the gateway's shards. Half-close is honoured: when the client shuts down its
//! write side, everything received so far is echoed, then the connection's
//! write side is shut down too and the socket closed.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::{TcpListener, TcpSocket, TcpStream};

/// Read buffer per connection: large enough for bulk transfers to move in few reads.
const ECHO_BUFFER: usize = 256 * 1024;
const BACKLOG: i32 = 4096;
/// Pause after a failed accept (such as running out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Starts `threads` echo threads on `listen`, prints the bound address on
/// stdout, and serves until the process is killed.
pub fn serve(listen: SocketAddr, threads: usize) -> anyhow::Result<()> {
    if listen.port() != 0 {
        // Every thread binds with SO_REUSEPORT, which would silently share the
        // port with a stale echo server; a plain bind fails instead.
        std::net::TcpListener::bind(listen)
            .with_context(|| format!("{listen} is already in use"))?;
    }
    let (bound_tx, bound_rx) = mpsc::channel();
    // The first thread resolves port 0; the others join it on the same port.
    let mut addr = listen;
    let mut workers = Vec::with_capacity(threads);
    for thread in 0..threads {
        let tx = bound_tx.clone();
        let worker = std::thread::Builder::new()
            .name(format!("echo-{thread}"))
            .spawn(move || serve_thread(addr, &tx))
            .context("spawning an echo thread")?;
        workers.push(worker);
        match bound_rx.recv() {
            Ok(Ok(bound)) => addr = bound,
            Ok(Err(err)) => return Err(err).with_context(|| format!("listening on {addr}")),
            Err(_) => bail!("echo thread {thread} exited before listening"),
        }
    }
    println!("tollgate-load echo listening on {addr} ({threads} threads)");
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("an echo thread panicked"))??;
    }
    Ok(())
}

fn serve_thread(
    addr: SocketAddr,
    bound: &mpsc::Sender<io::Result<SocketAddr>>,
) -> anyhow::Result<()> {
    let runtime = match crate::runtime::build() {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = bound.send(Err(io::Error::new(err.kind(), err.to_string())));
            return Err(err).context("starting the io_uring runtime");
        }
    };
    runtime.block_on(async move {
        let listener = match listen(addr).await {
            Ok(listener) => listener,
            Err(err) => {
                let _ = bound.send(Err(io::Error::new(err.kind(), err.to_string())));
                return Err(err).context("binding the echo listener");
            }
        };
        let _ = bound.send(listener.local_addr());
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => compio::runtime::spawn(echo(stream)).detach(),
                Err(err) => {
                    eprintln!("tollgate-load echo: accept failed: {err}");
                    compio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    })
}

async fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4().await?
    } else {
        TcpSocket::new_v6().await?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr).await?;
    socket.listen(BACKLOG).await
}

/// Echoes one connection until the client half-closes or fails.
async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(ECHO_BUFFER);
    loop {
        // compio reads into the spare capacity: empty the buffer first.
        buf.clear();
        let BufResult(read, filled) = stream.read(buf).await;
        buf = filled;
        match read {
            Ok(0) => {
                // The client is done sending and has had everything back.
                let _ = stream.shutdown().await;
                return;
            }
            Ok(_) => {
                let BufResult(written, sent) = stream.write_all(buf).await;
                buf = sent;
                if written.is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
