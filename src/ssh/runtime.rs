//! The SSH side of a shard: russh needs tokio, so each shard thread that
//! serves SSH starts (lazily, on its first SSH connection) one tokio
//! current-thread runtime on a thread of its own, pinned to the same CPUs as
//! the shard. The compio shard accepts the connection and hands the socket
//! over; the two sides talk through `tokio::sync` channels, which either
//! runtime can await.

use std::cell::OnceCell;
use std::io;

use tokio::runtime::Handle;

thread_local! {
    /// This shard's SSH runtime, once started.
    static RUNTIME: OnceCell<Handle> = const { OnceCell::new() };
}

/// The calling shard's SSH runtime, started on first use.
pub fn handle() -> io::Result<Handle> {
    RUNTIME.with(|cell| {
        if let Some(h) = cell.get() {
            return Ok(h.clone());
        }
        let h = start()?;
        let _ = cell.set(h.clone());
        Ok(h)
    })
}

fn start() -> io::Result<Handle> {
    // The shard's own CPU set (one core when shards are pinned).
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
    let name = std::thread::current()
        .name()
        .map_or_else(|| "tollgate-ssh".to_string(), |n| format!("{n}-ssh"));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name(name).spawn(move || {
        if let Some(set) = cpus {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let _ = tx.send(Ok(rt.handle().clone()));
        // Lives as long as the process: sessions are spawned onto it.
        rt.block_on(std::future::pending::<()>());
    })?;
    rx.recv()
        .map_err(|_| io::Error::other("the SSH runtime thread did not start"))?
}
