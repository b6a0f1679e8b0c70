//! The PostgreSQL backend of `tollgate-load pg`, on `tokio-postgres`
//! (rust-postgres' maintained async client, already the project's test
//! driver): SCRAM/md5/cleartext logins, the simple protocol, the extended
//! protocol with an unnamed statement per operation (`query_typed`: Parse,
//! Bind, Describe, Execute, Sync in one round trip, as `pgbench -M extended`),
//! and prepared statements (Parse once per session, as `-M prepared`).
//!
//! TLS follows libpq's `sslmode` and `sslrootcert` in the DSN (see `tls`).
//!
//! Through the gateway the password is a token: fixed (`--token`, a file or
//! `TOLLGATE_TOKEN`) or minted from a development key, once per run or once
//! per session (`--token-per-session`, so `connect` measures uncached token
//! verification).

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage, Statement};

use super::tls::{MakeRustls, SslMode, client_config, split_pg_dsn};
use super::{Backend, Op, OpError, Password, SetupReport, Workload};

/// The task that owns a session's socket.
type Connection = tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>;

/// The keyed table of `point-select` and `mixed`.
pub const ACCOUNTS: &str = "tollgate_load_accounts";
/// The table `insert` and `mixed` append to.
pub const INSERTS: &str = "tollgate_load_inserts";

const SELECT1: &str = "SELECT 1";
const POINT_SELECT: &str = "SELECT balance FROM tollgate_load_accounts WHERE id = $1";
const INSERT: &str = "INSERT INTO tollgate_load_inserts (session, seq) VALUES ($1, $2)";
const UPDATE: &str = "UPDATE tollgate_load_accounts SET balance = balance + $1 WHERE id = $2";

/// Which protocol each operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Query messages with the values in the text.
    Simple,
    /// An unnamed statement per operation: Parse/Bind/Describe/Execute/Sync.
    Extended,
    /// Statements prepared once per session, then Bind/Execute/Sync.
    Prepared,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Extended => "extended",
            Self::Prepared => "prepared",
        }
    }
}

/// One path: a parsed DSN and how its sessions log in.
pub struct PgBackend {
    config: Config,
    password: Password,
    protocol: Protocol,
    workload: Workload,
    /// `None` for `sslmode=disable`.
    tls: Option<MakeRustls>,
}

impl PgBackend {
    pub fn new(
        dsn: &str,
        password: Password,
        protocol: Protocol,
        workload: Workload,
    ) -> anyhow::Result<Self> {
        let split = split_pg_dsn(dsn)?;
        let config: Config = split
            .dsn
            .parse()
            .map_err(|e| anyhow::anyhow!("not a PostgreSQL connection string ({e})"))?;
        let tls = match split.mode {
            SslMode::Disable => None,
            mode => Some(MakeRustls(client_config(mode, split.root_cert.as_deref())?)),
        };
        Ok(Self {
            config,
            password,
            protocol,
            workload,
            tls,
        })
    }

    /// Uses `password` when the DSN has none (the direct path's PGPASSWORD).
    pub fn default_password(&mut self, password: Option<String>) {
        if let (None, Some(password)) = (self.config.get_password(), password) {
            self.password = Password::Token(password);
        }
    }

    fn host_port(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    async fn open(&self) -> Result<(Client, Connection), OpError> {
        let mut config = self.config.clone();
        if let Some(password) = self.password.for_session()? {
            config.password(password.as_bytes());
        }
        // The connection future owns the socket; it ends when the client is
        // dropped (after sending Terminate) or the server closes.
        match &self.tls {
            Some(tls) => {
                let (client, connection) =
                    config.connect(tls.clone()).await.map_err(connect_error)?;
                Ok((client, tokio::task::spawn_local(connection)))
            }
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(connect_error)?;
                Ok((client, tokio::task::spawn_local(connection)))
            }
        }
    }
}

fn connect_error(err: tokio_postgres::Error) -> OpError {
    OpError::Connect {
        reason: describe(&err),
    }
}

/// The error's text with the server's SQLSTATE when there is one, else with
/// its causes (tokio-postgres' own text stops at "error performing TLS
/// handshake"; the cause says which certificate check failed).
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} {}", db.code().code(), db.message());
    }
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn op_error(err: tokio_postgres::Error) -> OpError {
    if let Some(db) = err.as_db_error() {
        return OpError::Server {
            code: db.code().code().to_owned(),
            message: db.message().to_owned(),
        };
    }
    if err.is_closed() {
        return OpError::Closed;
    }
    OpError::Other {
        reason: describe(&err),
    }
}

/// Statements of a prepared-protocol session.
struct Prepared {
    select1: Option<Statement>,
    point: Option<Statement>,
    insert: Option<Statement>,
    update: Option<Statement>,
}

pub struct PgSession {
    client: Client,
    connection: Connection,
    protocol: Protocol,
    prepared: Option<Prepared>,
    prepared_count: u64,
}

impl Backend for PgBackend {
    type Session = PgSession;

    fn addr(&self) -> String {
        self.host_port()
    }

    async fn connect(&self, _session: u32) -> Result<PgSession, OpError> {
        let (client, connection) = self.open().await?;
        let mut session = PgSession {
            client,
            connection,
            protocol: self.protocol,
            prepared: None,
            prepared_count: 0,
        };
        if self.protocol == Protocol::Prepared && self.workload != Workload::Connect {
            session.prepare(self.workload).await?;
        }
        Ok(session)
    }

    async fn setup(&self, workload: Workload, rows: u32) -> Result<SetupReport, OpError> {
        let mut statements = Vec::new();
        if workload.needs_accounts() {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {ACCOUNTS} (id integer PRIMARY KEY, balance bigint NOT NULL, filler text NOT NULL)"
            ));
            statements.push(format!(
                "INSERT INTO {ACCOUNTS} SELECT g, 0, repeat('x', 84) FROM generate_series(1, {rows}) AS g ON CONFLICT (id) DO NOTHING"
            ));
            statements.push(format!("ANALYZE {ACCOUNTS}"));
        }
        if workload.needs_inserts() {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {INSERTS} (id bigserial PRIMARY KEY, session integer NOT NULL, seq bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())"
            ));
        }
        if statements.is_empty() {
            return Ok(SetupReport::default());
        }
        let (client, connection) = self.open().await?;
        for statement in &statements {
            client.batch_execute(statement).await.map_err(op_error)?;
        }
        drop(client);
        let _ = connection.await;
        Ok(SetupReport {
            statements: statements.len() as u64,
        })
    }
}

impl PgSession {
    async fn prepare(&mut self, workload: Workload) -> Result<(), OpError> {
        let mut prepare = async |sql: &str, types: &[Type], wanted: bool| {
            if !wanted {
                return Ok(None);
            }
            self.prepared_count += 1;
            self.client
                .prepare_typed(sql, types)
                .await
                .map(Some)
                .map_err(op_error)
        };
        let select1 = prepare(SELECT1, &[], workload == Workload::Select1).await?;
        let point = prepare(POINT_SELECT, &[Type::INT4], workload.needs_accounts()).await?;
        let insert = prepare(INSERT, &[Type::INT4, Type::INT8], workload.needs_inserts()).await?;
        let update = prepare(
            UPDATE,
            &[Type::INT8, Type::INT4],
            workload == Workload::Mixed,
        )
        .await?;
        self.prepared = Some(Prepared {
            select1,
            point,
            insert,
            update,
        });
        Ok(())
    }

    async fn simple(&self, op: Op) -> Result<u64, OpError> {
        let sql = match op {
            Op::Select1 => SELECT1.to_owned(),
            Op::PointSelect { id } => format!("SELECT balance FROM {ACCOUNTS} WHERE id = {id}"),
            Op::Insert { session, seq } => {
                format!("INSERT INTO {INSERTS} (session, seq) VALUES ({session}, {seq})")
            }
            Op::Update { id, delta } => {
                format!("UPDATE {ACCOUNTS} SET balance = balance + {delta} WHERE id = {id}")
            }
        };
        let messages = self.client.simple_query(&sql).await.map_err(op_error)?;
        let mut rows = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::Row(_) => rows += 1,
                SimpleQueryMessage::CommandComplete(n)
                    if !matches!(op, Op::Select1 | Op::PointSelect { .. }) =>
                {
                    rows += n
                }
                _ => {}
            }
        }
        Ok(rows)
    }

    async fn extended(&self, op: Op) -> Result<u64, OpError> {
        let rows = match op {
            Op::Select1 => self.client.query_typed(SELECT1, &[]).await,
            Op::PointSelect { id } => {
                self.client
                    .query_typed(POINT_SELECT, &[(&id, Type::INT4)])
                    .await
            }
            Op::Insert { session, seq } => {
                let (session, seq) = (session as i32, seq as i64);
                return self
                    .client
                    .execute_typed(INSERT, &[(&session, Type::INT4), (&seq, Type::INT8)])
                    .await
                    .map_err(op_error);
            }
            Op::Update { id, delta } => {
                let delta = i64::from(delta);
                return self
                    .client
                    .execute_typed(UPDATE, &[(&delta, Type::INT8), (&id, Type::INT4)])
                    .await
                    .map_err(op_error);
            }
        };
        rows.map(|rows| rows.len() as u64).map_err(op_error)
    }

    async fn prepared_op(&self, op: Op) -> Result<u64, OpError> {
        let missing = || OpError::Other {
            reason: "statement not prepared".to_owned(),
        };
        let prepared = self.prepared.as_ref().ok_or_else(missing)?;
        let result = match op {
            Op::Select1 => {
                let stmt = prepared.select1.as_ref().ok_or_else(missing)?;
                self.client.query(stmt, &[]).await.map(|r| r.len() as u64)
            }
            Op::PointSelect { id } => {
                let stmt = prepared.point.as_ref().ok_or_else(missing)?;
                self.client
                    .query(stmt, &[&id])
                    .await
                    .map(|r| r.len() as u64)
            }
            Op::Insert { session, seq } => {
                let stmt = prepared.insert.as_ref().ok_or_else(missing)?;
                let (session, seq) = (session as i32, seq as i64);
                self.client.execute(stmt, &[&session, &seq]).await
            }
            Op::Update { id, delta } => {
                let stmt = prepared.update.as_ref().ok_or_else(missing)?;
                self.client.execute(stmt, &[&i64::from(delta), &id]).await
            }
        };
        result.map_err(op_error)
    }
}

impl super::Session for PgSession {
    async fn run(&mut self, op: Op) -> Result<(), OpError> {
        let rows = match self.protocol {
            Protocol::Simple => self.simple(op).await?,
            Protocol::Extended => self.extended(op).await?,
            Protocol::Prepared => self.prepared_op(op).await?,
        };
        // Every operation touches exactly one row: SELECT 1, a key in the
        // table, one insert, one update by key.
        if rows != 1 {
            return Err(OpError::WrongResult {
                what: format!("{op:?} touched {rows} rows, expected 1"),
            });
        }
        Ok(())
    }

    fn prepared(&self) -> u64 {
        self.prepared_count
    }

    async fn close(self) {
        // Dropping the client makes the connection task send Terminate; wait
        // until the server has closed the socket so the session is really over.
        drop(self.client);
        let _ = self.connection.await;
    }
}
