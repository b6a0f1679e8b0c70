//! Memory and progress limits of PostgreSQL sessions: the `[limits]` table,
//! a memory budget per session and one for the whole process.
//!
//! What is charged: the part of a session's read buffers above
//! [`FREE_CAPACITY`] each. The working buffer every connection has is
//! bounded by `engine.max_connections`; what a budget must stop is a peer
//! that declares a large message and makes the gateway hold it. Frames that
//! need no whole-frame inspection (CopyData, large Bind) pass through in
//! pieces (`pg::stream`) and cost no more than a read; whole frames that the
//! gateway must inspect (Query, Parse, FunctionCall, DataRow, masked COPY
//! rows) are charged for as long as they are buffered.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;

/// Read-buffer capacity per direction that is not charged to a budget.
pub const FREE_CAPACITY: usize = 64 * 1024;

pub const DEFAULT_SESSION_MEMORY: usize = 160 << 20;
pub const DEFAULT_GLOBAL_MEMORY: usize = 2 << 30;
pub const DEFAULT_MAX_STATEMENT: usize = 64 << 20;
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// PostgreSQL's own ceiling on a message body (`PQ_LARGE_MESSAGE_LIMIT`, 1 GB - 1).
const MAX_STATEMENT_CEILING: usize = (1 << 30) - 1;

/// The `[limits]` table (sizes in bytes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest Query or Parse message a client may send.
    pub max_statement: usize,
    /// What one session may hold of whole messages in its read buffers.
    pub session_memory: usize,
    /// What all sessions of the process together may hold.
    pub global_memory: usize,
    /// Time a client message has to arrive whole once its first byte came.
    #[serde(with = "humantime_serde")]
    pub frame_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_statement: DEFAULT_MAX_STATEMENT,
            session_memory: DEFAULT_SESSION_MEMORY,
            global_memory: DEFAULT_GLOBAL_MEMORY,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
        }
    }
}

/// A `[limits]` setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limits.{field}: {message}")]
pub struct LimitsConfigError {
    pub field: &'static str,
    pub message: String,
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), LimitsConfigError> {
        let err = |field, message: String| Err(LimitsConfigError { field, message });
        if !(1024..=MAX_STATEMENT_CEILING).contains(&self.max_statement) {
            return err(
                "max_statement",
                format!("must be between 1024 and {MAX_STATEMENT_CEILING} bytes"),
            );
        }
        if self.session_memory < self.max_statement {
            return err(
                "session_memory",
                format!(
                    "{} is below max_statement ({}): such a statement could never be read",
                    self.session_memory, self.max_statement
                ),
            );
        }
        if self.global_memory < self.session_memory {
            return err(
                "global_memory",
                format!(
                    "{} is below session_memory ({})",
                    self.global_memory, self.session_memory
                ),
            );
        }
        if self.frame_timeout.is_zero() {
            return err("frame_timeout", "must be above zero".into());
        }
        Ok(())
    }

    /// The frame caps of messages a client sends under these limits.
    pub fn frontend_caps(&self) -> tollgate_codecs::pg::Caps {
        tollgate_codecs::pg::Caps::frontend(&tollgate_codecs::pg::Limits {
            sql: u32::try_from(self.max_statement).unwrap_or(u32::MAX),
            ..Default::default()
        })
    }
}

/// Waits until a new connection has bytes to read (or is closed), holding
/// no buffer meanwhile: an io_uring read would need one for as long as the
/// client stays silent.
pub async fn first_bytes(sock: &compio::net::TcpStream) -> std::io::Result<()> {
    sock.to_poll_fd()?.read_ready().await
}

/// Closed sessions on this shard after which freed heap is given back.
const TRIM_EVERY: u32 = 1024;
/// With no session left on the shard, fewer closures are worth a trim.
const TRIM_WHEN_QUIET: u32 = 32;

thread_local! {
    /// (live sessions, sessions closed since the last trim) of this shard.
    static SHARD_SESSIONS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// Held for the life of one session on a shard thread. glibc keeps what
/// sessions freed in its per-thread arenas and does not give it back
/// (10,000 idle connections closed left ~280 MB resident; `malloc_trim`
/// brought it to ~12 MB, bench/README.md): after many closures, or once
/// the shard has no session left, the shard gives it back.
#[derive(Debug)]
pub struct SessionSlot(());

impl SessionSlot {
    pub fn open() -> SessionSlot {
        SHARD_SESSIONS.with(|c| {
            let (live, closed) = c.get();
            c.set((live.saturating_add(1), closed));
        });
        SessionSlot(())
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let trim = SHARD_SESSIONS.with(|c| {
            let (live, closed) = c.get();
            let (live, closed) = (live.saturating_sub(1), closed.saturating_add(1));
            let trim = closed >= TRIM_EVERY || (live == 0 && closed >= TRIM_WHEN_QUIET);
            c.set((live, if trim { 0 } else { closed }));
            trim
        });
        if trim {
            trim_heap();
        }
    }
}

/// Returns the free pages of every malloc arena to the kernel.
#[allow(unsafe_code)]
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it takes each arena's lock
    // itself and only releases pages that hold no allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes charged by every session of the process (whole messages buffered).
static GLOBAL_HELD: AtomicUsize = AtomicUsize::new(0);

/// What all sessions hold now, for metrics and tests.
pub fn global_held() -> usize {
    GLOBAL_HELD.load(Ordering::Relaxed)
}

/// A budget was reached: the work that needed the memory is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error(
        "a message of {wanted} bytes would take this session's buffers to {total} bytes, above its memory budget of {max} bytes"
    )]
    Session {
        wanted: usize,
        total: usize,
        max: usize,
    },
    #[error(
        "the gateway is holding too much for all sessions (global memory budget of {max} bytes); a message of {wanted} bytes is refused"
    )]
    Global { wanted: usize, max: usize },
}

/// One session's charge against its own budget and the process's. Both
/// relay directions of a session share one (they run on one task).
#[derive(Debug)]
pub struct SessionBudget {
    session_max: usize,
    global_max: usize,
    /// Charge of each direction (client reader, upstream reader).
    held: [Cell<usize>; 2],
}

/// Which reader's buffer a charge is for.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    FromClient = 0,
    FromUpstream = 1,
}

impl SessionBudget {
    pub fn new(cfg: &LimitsConfig) -> SessionBudget {
        SessionBudget {
            session_max: cfg.session_memory,
            global_max: cfg.global_memory,
            held: [Cell::new(0), Cell::new(0)],
        }
    }

    /// Sets one direction's charge for a buffer of `capacity` bytes. Growth
    /// above either budget is refused and charges nothing; shrinking always
    /// succeeds.
    pub fn charge(&self, dir: Direction, capacity: usize) -> Result<(), OverBudget> {
        let new = capacity.saturating_sub(FREE_CAPACITY);
        let cell = &self.held[dir as usize];
        let old = cell.get();
        if new <= old {
            GLOBAL_HELD.fetch_sub(old - new, Ordering::Relaxed);
            cell.set(new);
            return Ok(());
        }
        let other = self.held[1 - dir as usize].get();
        let total = other + new;
        if total > self.session_max {
            return Err(OverBudget::Session {
                wanted: capacity,
                total,
                max: self.session_max,
            });
        }
        let delta = new - old;
        let before = GLOBAL_HELD.fetch_add(delta, Ordering::Relaxed);
        if before + delta > self.global_max {
            GLOBAL_HELD.fetch_sub(delta, Ordering::Relaxed);
            return Err(OverBudget::Global {
                wanted: capacity,
                max: self.global_max,
            });
        }
        cell.set(new);
        Ok(())
    }

    /// Lowers one direction's charge to a buffer of `capacity` bytes (never
    /// raises it: growth goes through [`SessionBudget::charge`]).
    pub fn release_to(&self, dir: Direction, capacity: usize) {
        let new = capacity.saturating_sub(FREE_CAPACITY);
        let cell = &self.held[dir as usize];
        let old = cell.get();
        if new < old {
            GLOBAL_HELD.fetch_sub(old - new, Ordering::Relaxed);
            cell.set(new);
        }
    }

    /// What this session holds now.
    pub fn held(&self) -> usize {
        self.held.iter().map(Cell::get).sum()
    }
}

impl Drop for SessionBudget {
    fn drop(&mut self) {
        GLOBAL_HELD.fetch_sub(self.held(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(session: usize, global: usize) -> LimitsConfig {
        LimitsConfig {
            max_statement: 1024,
            session_memory: session,
            global_memory: global,
            ..Default::default()
        }
    }

    // One test touches the process-wide counter, so nothing else races it.
    #[test]
    fn budgets_refuse_growth_and_give_back_what_they_held() {
        let base = global_held();
        let a = SessionBudget::new(&cfg(1 << 20, 3 << 20));
        a.charge(Direction::FromClient, FREE_CAPACITY).unwrap();
        assert_eq!(a.held(), 0, "the working buffer is free");
        a.charge(Direction::FromClient, FREE_CAPACITY + 600_000)
            .unwrap();
        let e = a
            .charge(Direction::FromUpstream, FREE_CAPACITY + 600_000)
            .unwrap_err();
        assert!(matches!(e, OverBudget::Session { .. }), "{e}");
        assert_eq!(a.held(), 600_000, "a refused growth charges nothing");
        let others: Vec<SessionBudget> = (0..4)
            .map(|_| SessionBudget::new(&cfg(1 << 20, 3 << 20)))
            .collect();
        let mut refused = 0;
        for b in &others {
            if let Err(e) = b.charge(Direction::FromClient, FREE_CAPACITY + 900_000) {
                assert!(matches!(e, OverBudget::Global { .. }), "{e}");
                refused += 1;
            }
        }
        assert_eq!(refused, 2, "3 MiB hold 600 kB + two of 900 kB");
        a.charge(Direction::FromClient, 0).unwrap();
        assert_eq!(a.held(), 0);
        drop(others);
        drop(a);
        assert_eq!(global_held(), base);
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = LimitsConfig::default();
        assert!(c.validate().is_ok());
        c.session_memory = c.max_statement - 1;
        assert_eq!(c.validate().unwrap_err().field, "session_memory");
        c = LimitsConfig {
            frame_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "frame_timeout");
        c = LimitsConfig {
            global_memory: 1,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "global_memory");
    }
}
