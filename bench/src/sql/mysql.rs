//! The MySQL/MariaDB backend of `tollgate-load mysql`, on `mysql_async` (the
//! maintained async client, on the tokio runtimes the driver already runs).
//!
//! Why this crate passes the project's rules: built with `rustls-tls` +
//! `ring` + `tls12` (no aws-lc, no OpenSSL) and `minimal-rust` (miniz, no
//! zlib C code), it adds no crypto library next to ring; its RSA for
//! caching_sha2 *without* TLS is mysql_common's own code on `num-bigint` (no
//! `rsa` crate: `cargo deny --locked check licenses bans sources` passes with
//! deny.toml unchanged). Through tollgate that path is never taken: the
//! gateway greets with `caching_sha2_password`, answers the fast path with
//! "perform full authentication", and `mysql_async` then sends the password
//! (the token) in the clear inside TLS, as the README's MySQL section expects.
//! A URL without TLS reaches the gateway's refusal (3159) before any secret.
//!
//! Protocols: `text` (COM_QUERY with the values in the text) and `prepared`
//! (COM_STMT_PREPARE once per session, then COM_STMT_EXECUTE: the binary
//! protocol). The client's start-up queries are switched off (socket
//! discovery, `@@max_allowed_packet`, `@@wait_timeout`), so a session is its
//! login and nothing more.

use anyhow::{Context as _, bail};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts, Statement};

use super::{Backend, Op, OpError, Password, SetupReport, Workload};

/// The keyed table of `point-select` and `mixed` (the names pg uses).
pub const ACCOUNTS: &str = super::pg::ACCOUNTS;
/// The table `insert` and `mixed` append to.
pub const INSERTS: &str = super::pg::INSERTS;

const SELECT1: &str = "SELECT 1";
const POINT_SELECT: &str = "SELECT balance FROM tollgate_load_accounts WHERE id = ?";
const INSERT: &str = "INSERT INTO tollgate_load_inserts (session, seq) VALUES (?, ?)";
const UPDATE: &str = "UPDATE tollgate_load_accounts SET balance = balance + ? WHERE id = ?";
/// Rows per INSERT of the set-up (portable: no MariaDB sequence engine, no
/// recursive CTE limits).
const FILL_BATCH: u32 = 1_000;
/// The client's cap on one packet it reads (our rows are tiny).
const MAX_PACKET: usize = 16 << 20;

/// Which protocol each operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MyProtocol {
    /// COM_QUERY with the values in the text.
    Text,
    /// Statements prepared once per session, then COM_STMT_EXECUTE (binary protocol).
    Prepared,
}

impl MyProtocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Prepared => "prepared",
        }
    }
}

/// One path: a parsed URL and how its sessions log in.
pub struct MyBackend {
    opts: Opts,
    password: Password,
    protocol: MyProtocol,
    workload: Workload,
}

/// The MySQL clients' `--ssl-mode`, read from the URL's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disabled,
    Required,
    VerifyCa,
    VerifyIdentity,
}

/// Takes `ssl-mode` and `ssl-ca` out of the URL (mysql_async knows neither
/// the mode names nor a CA file) and builds the TLS options they say.
fn split_url(dsn: &str) -> anyhow::Result<(String, Option<SslOpts>)> {
    let mut url = url::Url::parse(dsn).context("not a mysql:// URL")?;
    if url.scheme() != "mysql" {
        bail!("not a mysql:// URL");
    }
    let (mut mode, mut ca, mut kept) = (None, None, Vec::new());
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "ssl_mode" => mode = Some(value.to_ascii_uppercase()),
            "ssl-ca" | "ssl_ca" => ca = Some(value.into_owned()),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    let mode = match (mode.as_deref(), &ca) {
        (None, None) => SslMode::Disabled,
        (None, Some(_)) => SslMode::VerifyIdentity,
        (Some("DISABLED"), _) => SslMode::Disabled,
        (Some("REQUIRED" | "PREFERRED"), _) => SslMode::Required,
        (Some("VERIFY_CA"), _) => SslMode::VerifyCa,
        (Some("VERIFY_IDENTITY"), _) => SslMode::VerifyIdentity,
        (Some(other), _) => {
            bail!("ssl-mode={other} is not one of DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY")
        }
    };
    if mode == SslMode::VerifyCa && ca.is_none() {
        bail!("ssl-mode=VERIFY_CA needs ssl-ca=FILE (the CA to trust)");
    }
    let roots = match &ca {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("ssl-ca {path}"))?;
            vec![pem.into()]
        }
        None => Vec::new(),
    };
    let ssl = match mode {
        SslMode::Disabled => None,
        SslMode::Required => Some(SslOpts::default().with_danger_accept_invalid_certs(true)),
        SslMode::VerifyCa | SslMode::VerifyIdentity => Some(
            SslOpts::default()
                .with_disable_built_in_roots(ca.is_some())
                .with_root_certs(roots)
                .with_danger_skip_domain_validation(mode == SslMode::VerifyCa),
        ),
    };
    Ok((url.into(), ssl))
}

impl MyBackend {
    pub fn new(
        dsn: &str,
        password: Password,
        protocol: MyProtocol,
        workload: Workload,
    ) -> anyhow::Result<Self> {
        let (url, ssl) = split_url(dsn)?;
        let opts = Opts::from_url(&url).map_err(|e| anyhow::anyhow!("not a MySQL URL ({e})"))?;
        let opts = OptsBuilder::from_opts(opts)
            .ssl_opts(ssl)
            .prefer_socket(false)
            .max_allowed_packet(Some(MAX_PACKET))
            .wait_timeout(Some(28_800))
            .into();
        Ok(Self {
            opts,
            password,
            protocol,
            workload,
        })
    }

    /// Uses `password` when the URL has none (the direct path's MYSQL_PWD).
    pub fn default_password(&mut self, password: Option<String>) {
        if let (None, Some(password)) = (self.opts.pass(), password) {
            self.password = Password::Token(password);
        }
    }

    fn host_port(&self) -> String {
        format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port())
    }

    async fn open(&self) -> Result<Conn, OpError> {
        let opts = match self.password.for_session()? {
            Some(password) => OptsBuilder::from_opts(self.opts.clone())
                .pass(Some(password))
                .into(),
            None => self.opts.clone(),
        };
        Conn::new(opts).await.map_err(|e| OpError::Connect {
            reason: describe(&e),
        })
    }
}

/// The error's text with the server's code and SQLSTATE when there is one.
fn describe(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Server(e) => format!("{} ({}) {}", e.code, e.state, e.message),
        other => other.to_string(),
    }
}

fn op_error(err: mysql_async::Error) -> OpError {
    match err {
        mysql_async::Error::Server(e) => OpError::Server {
            code: format!("{} ({})", e.code, e.state),
            message: e.message,
        },
        mysql_async::Error::Io(_) => OpError::Closed,
        other => OpError::Other {
            reason: other.to_string(),
        },
    }
}

/// Statements of a prepared-protocol session.
#[derive(Default)]
struct Prepared {
    select1: Option<Statement>,
    point: Option<Statement>,
    insert: Option<Statement>,
    update: Option<Statement>,
}

pub struct MySession {
    conn: Conn,
    protocol: MyProtocol,
    prepared: Prepared,
    prepared_count: u64,
}

impl Backend for MyBackend {
    type Session = MySession;

    fn addr(&self) -> String {
        self.host_port()
    }

    async fn connect(&self, _session: u32) -> Result<MySession, OpError> {
        let conn = self.open().await?;
        let mut session = MySession {
            conn,
            protocol: self.protocol,
            prepared: Prepared::default(),
            prepared_count: 0,
        };
        if self.protocol == MyProtocol::Prepared && self.workload != Workload::Connect {
            session.prepare(self.workload).await?;
        }
        Ok(session)
    }

    async fn setup(&self, workload: Workload, rows: u32) -> Result<SetupReport, OpError> {
        let mut statements = Vec::new();
        if workload.needs_accounts() {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {ACCOUNTS} (id INT PRIMARY KEY, balance BIGINT NOT NULL, filler VARCHAR(84) NOT NULL)"
            ));
            let mut first = 1;
            while first <= rows {
                let last = rows.min(first + FILL_BATCH - 1);
                let values: Vec<String> = (first..=last)
                    .map(|id| format!("({id},0,REPEAT('x',84))"))
                    .collect();
                statements.push(format!(
                    "INSERT IGNORE INTO {ACCOUNTS} (id, balance, filler) VALUES {}",
                    values.join(",")
                ));
                first = last + 1;
            }
        }
        if workload.needs_inserts() {
            statements.push(format!(
                "CREATE TABLE IF NOT EXISTS {INSERTS} (id BIGINT AUTO_INCREMENT PRIMARY KEY, session INT NOT NULL, seq BIGINT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
            ));
        }
        if statements.is_empty() {
            return Ok(SetupReport::default());
        }
        let mut conn = self.open().await?;
        for statement in &statements {
            conn.query_drop(statement).await.map_err(op_error)?;
        }
        let _ = conn.disconnect().await;
        Ok(SetupReport {
            statements: statements.len() as u64,
        })
    }
}

impl MySession {
    async fn prepare(&mut self, workload: Workload) -> Result<(), OpError> {
        let wanted = [
            (SELECT1, workload == Workload::Select1),
            (POINT_SELECT, workload.needs_accounts()),
            (INSERT, workload.needs_inserts()),
            (UPDATE, workload == Workload::Mixed),
        ];
        let mut prepared = [None, None, None, None];
        for ((sql, wanted), slot) in wanted.into_iter().zip(&mut prepared) {
            if wanted {
                self.prepared_count += 1;
                *slot = Some(self.conn.prep(sql).await.map_err(op_error)?);
            }
        }
        let [select1, point, insert, update] = prepared;
        self.prepared = Prepared {
            select1,
            point,
            insert,
            update,
        };
        Ok(())
    }

    async fn text(&mut self, op: Op) -> Result<u64, mysql_async::Error> {
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
        match op {
            Op::Select1 | Op::PointSelect { .. } => {
                let rows: Vec<Row> = self.conn.query(sql).await?;
                Ok(rows.len() as u64)
            }
            Op::Insert { .. } | Op::Update { .. } => {
                self.conn.query_drop(sql).await?;
                Ok(self.conn.affected_rows())
            }
        }
    }

    async fn prepared_op(&mut self, op: Op) -> Result<u64, OpError> {
        let missing = || OpError::Other {
            reason: "statement not prepared".to_owned(),
        };
        let p = &self.prepared;
        let conn = &mut self.conn;
        let result = match op {
            Op::Select1 => {
                let stmt = p.select1.as_ref().ok_or_else(missing)?;
                conn.exec::<Row, _, _>(stmt, ())
                    .await
                    .map(|r| r.len() as u64)
            }
            Op::PointSelect { id } => {
                let stmt = p.point.as_ref().ok_or_else(missing)?;
                conn.exec::<Row, _, _>(stmt, (id,))
                    .await
                    .map(|r| r.len() as u64)
            }
            Op::Insert { session, seq } => {
                let stmt = p.insert.as_ref().ok_or_else(missing)?;
                conn.exec_drop(stmt, (session, seq))
                    .await
                    .map(|()| conn.affected_rows())
            }
            Op::Update { id, delta } => {
                let stmt = p.update.as_ref().ok_or_else(missing)?;
                conn.exec_drop(stmt, (delta, id))
                    .await
                    .map(|()| conn.affected_rows())
            }
        };
        result.map_err(op_error)
    }
}

impl super::Session for MySession {
    async fn run(&mut self, op: Op) -> Result<(), OpError> {
        let rows = match self.protocol {
            MyProtocol::Text => self.text(op).await.map_err(op_error)?,
            MyProtocol::Prepared => self.prepared_op(op).await?,
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
        // COM_QUIT, then the socket closes: the server sees the session end.
        let _ = self.conn.disconnect().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ssl_options_are_taken_out_of_the_url() {
        let (url, ssl) =
            split_url("mysql://u@h:3307/app?ssl-mode=required&tcp_nodelay=true").unwrap();
        assert_eq!(url, "mysql://u@h:3307/app?tcp_nodelay=true");
        assert!(ssl.unwrap().accept_invalid_certs());
        let (url, ssl) = split_url("mysql://u@h/app").unwrap();
        assert_eq!(url, "mysql://u@h/app");
        assert!(ssl.is_none());
        assert!(split_url("mysql://u@h/app?ssl-mode=VERIFY_CA").is_err());
        assert!(split_url("mysql://u@h/app?ssl-mode=sometimes").is_err());
        assert!(split_url("postgres://u@h/app").is_err());
        // ssl-ca alone verifies the chain and the name, with only that CA.
        let dir = std::env::temp_dir().join(format!("tollgate-load-ca-{}", std::process::id()));
        std::fs::write(&dir, b"-----BEGIN CERTIFICATE-----\n").unwrap();
        let (_, ssl) = split_url(&format!("mysql://u@h/app?ssl-ca={}", dir.display())).unwrap();
        let ssl = ssl.unwrap();
        assert!(ssl.disable_built_in_roots() && !ssl.skip_domain_validation());
        assert_eq!(ssl.root_certs().len(), 1);
        let _ = std::fs::remove_file(&dir);
    }
}
