//! SQL load, independent of the wire protocol: the workloads, what one
//! operation is, how failures are counted, and the driver that runs sessions
//! over threads. `pg` speaks PostgreSQL through `tokio-postgres`, `mysql`
//! MySQL/MariaDB through `mysql_async`; each implements the
//! [`Backend`]/[`Session`] pair and reuses the rest.

pub mod cli;
pub mod driver;
pub mod mysql;
pub mod pg;
pub mod summary;
pub mod tls;

use std::future::Future;
use std::path::Path;
use std::time::SystemTime;

use tollgate::identity::devissuer::{MintParams, SigningKey, mint_with};

use serde::Serialize;

/// What each operation of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `SELECT 1`: the relay's per-statement floor.
    Select1,
    /// One row by primary key from a table the tool creates (`--rows` rows).
    PointSelect,
    /// One row inserted into a table the tool creates.
    Insert,
    /// 80 % point selects, 10 % updates by primary key, 10 % inserts.
    Mixed,
    /// A new session per operation (identity + upstream login), then closed.
    Connect,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::Select1 => "select1",
            Self::PointSelect => "point-select",
            Self::Insert => "insert",
            Self::Mixed => "mixed",
            Self::Connect => "connect",
        }
    }

    /// Whether the run needs the keyed table (`point-select`, `mixed`).
    pub fn needs_accounts(self) -> bool {
        matches!(self, Self::PointSelect | Self::Mixed)
    }

    /// Whether the run needs the insert table (`insert`, `mixed`).
    pub fn needs_inserts(self) -> bool {
        matches!(self, Self::Insert | Self::Mixed)
    }

    /// The next operation of a session. `rows` is the keyed table's size.
    pub fn next_op(self, rng: &mut SplitMix, session: u32, seq: u64, rows: u32) -> Op {
        let id = |rng: &mut SplitMix| 1 + (rng.next() % u64::from(rows.max(1))) as i32;
        match self {
            Self::Select1 | Self::Connect => Op::Select1,
            Self::PointSelect => Op::PointSelect { id: id(rng) },
            Self::Insert => Op::Insert { session, seq },
            Self::Mixed => match rng.next() % 10 {
                0 => Op::Insert { session, seq },
                1 => Op::Update {
                    id: id(rng),
                    delta: 1,
                },
                _ => Op::PointSelect { id: id(rng) },
            },
        }
    }
}

/// One statement the session sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Select1,
    PointSelect { id: i32 },
    Insert { session: u32, seq: u64 },
    Update { id: i32, delta: i32 },
}

/// Statements completed in the window, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    pub select: u64,
    pub insert: u64,
    pub update: u64,
    /// Sessions opened and closed as the operation (`connect`).
    pub connect: u64,
}

impl OpCounts {
    pub fn count(&mut self, op: Op, workload: Workload) {
        match (workload, op) {
            (Workload::Connect, _) => self.connect += 1,
            (_, Op::Select1 | Op::PointSelect { .. }) => self.select += 1,
            (_, Op::Insert { .. }) => self.insert += 1,
            (_, Op::Update { .. }) => self.update += 1,
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.select += other.select;
        self.insert += other.insert;
        self.update += other.update;
        self.connect += other.connect;
    }
}

/// Why an operation (or the connection under it) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("connect: {reason}")]
    Connect { reason: String },
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
    #[error("the connection closed")]
    Closed,
    #[error("unexpected result: {what}")]
    WrongResult { what: String },
    #[error("{reason}")]
    Other { reason: String },
}

impl OpError {
    /// Whether the session is unusable after this error and must be replaced.
    pub fn breaks_session(&self) -> bool {
        !matches!(self, Self::Server { .. } | Self::WrongResult { .. })
    }
}

/// Failures by kind, over the whole run (warm-up included).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SqlErrors {
    /// Sessions that could not be opened (refused, authentication failed, ...).
    pub connect: u64,
    /// The server (or the gateway) answered with an error.
    pub server: u64,
    /// The connection closed or broke mid-operation.
    pub closed: u64,
    /// A result of the wrong shape (a point select that found no row, ...).
    pub wrong_result: u64,
    /// Operations (or session set-ups) that took longer than `--timeout`.
    pub timeout: u64,
    pub other: u64,
}

impl SqlErrors {
    pub fn total(&self) -> u64 {
        self.connect + self.server + self.closed + self.wrong_result + self.timeout + self.other
    }

    pub fn add(&mut self, other: &Self) {
        self.connect += other.connect;
        self.server += other.server;
        self.closed += other.closed;
        self.wrong_result += other.wrong_result;
        self.timeout += other.timeout;
        self.other += other.other;
    }

    pub fn count(&mut self, err: &OpError) {
        match err {
            OpError::Connect { .. } => self.connect += 1,
            OpError::Server { .. } => self.server += 1,
            OpError::Closed => self.closed += 1,
            OpError::WrongResult { .. } => self.wrong_result += 1,
            OpError::Other { .. } => self.other += 1,
        }
    }
}

/// What the set-up before the measured run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SetupReport {
    /// Statements the set-up sent (each its own transaction).
    pub statements: u64,
}

/// A way to open sessions to one path (the gateway, or the direct DSN).
/// Shared by every load thread; sessions stay on the thread that opened them.
pub trait Backend: Send + Sync + 'static {
    type Session: Session;

    /// `host:port` for the summary (never the password).
    fn addr(&self) -> String;

    /// Opens session number `session` (stable across reconnects).
    fn connect(&self, session: u32) -> impl Future<Output = Result<Self::Session, OpError>>;

    /// Creates and fills the tables `workload` needs, idempotently.
    fn setup(
        &self,
        workload: Workload,
        rows: u32,
    ) -> impl Future<Output = Result<SetupReport, OpError>>;
}

/// One open session.
pub trait Session: 'static {
    /// Runs one operation and checks the shape of its result.
    fn run(&mut self, op: Op) -> impl Future<Output = Result<(), OpError>>;

    /// Statements prepared when the session opened (the prepared protocol).
    fn prepared(&self) -> u64;

    /// Ends the session cleanly (a Terminate the server sees).
    fn close(self) -> impl Future<Output = ()>;
}

/// Where the password of each session comes from.
pub enum Password {
    /// From the DSN (or none): the direct path.
    FromDsn,
    /// The same token (or the direct path's password) for every session.
    Token(String),
    /// A fresh token (new `jti`) for every session.
    MintPerSession(Box<SigningKey>, MintParams),
}

impl Password {
    /// Mints once from `key_file` (or keeps the key for per-session tokens).
    pub fn from_key(
        key_file: &Path,
        params: MintParams,
        per_session: bool,
    ) -> anyhow::Result<Self> {
        let key = SigningKey::from_pem_file(key_file)?;
        if per_session {
            return Ok(Self::MintPerSession(Box::new(key), params));
        }
        Ok(Self::Token(mint_with(&key, &params, SystemTime::now())?))
    }

    /// The password of the next session; `None` keeps the DSN's.
    pub fn for_session(&self) -> Result<Option<String>, OpError> {
        match self {
            Self::FromDsn => Ok(None),
            Self::Token(token) => Ok(Some(token.clone())),
            Self::MintPerSession(key, params) => mint_with(key, params, SystemTime::now())
                .map(Some)
                .map_err(|e| OpError::Other {
                    reason: format!("minting a token: {e}"),
                }),
        }
    }
}

/// A small, fast, seedable generator (SplitMix64): ids and the mixed draw
/// need no cryptographic quality, and a seed per session keeps runs repeatable.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_draws_the_documented_shares() {
        let mut rng = SplitMix::new(7);
        let mut counts = OpCounts::default();
        for seq in 0..10_000 {
            let op = Workload::Mixed.next_op(&mut rng, 0, seq, 100);
            if let Op::PointSelect { id } | Op::Update { id, .. } = op {
                assert!((1..=100).contains(&id), "{id}");
            }
            counts.count(op, Workload::Mixed);
        }
        // 80/10/10 within a few percent over 10,000 draws.
        assert!((7_700..8_300).contains(&counts.select), "{counts:?}");
        assert!((800..1_200).contains(&counts.insert), "{counts:?}");
        assert!((800..1_200).contains(&counts.update), "{counts:?}");
    }

    #[test]
    fn connect_counts_sessions_not_statements() {
        let mut counts = OpCounts::default();
        counts.count(Op::Select1, Workload::Connect);
        counts.count(Op::Select1, Workload::Select1);
        assert_eq!((counts.connect, counts.select), (1, 1));
    }
}
