//! The MySQL command relay. The protocol is a conversation: the client
//! sends one command, the server answers it, so the relay reads a command,
//! decides, forwards it and relays its whole answer (`results`) before it
//! reads the next. Pipelined commands wait in the read buffer.
//!
//! - `COM_QUERY` and `COM_STMT_PREPARE` are judged by their text; a
//!   refusal is an ERR 1142 (SQLSTATE 42000) with the rule's message in
//!   place of the whole command (nothing of it reaches the server, so the
//!   session and its transaction go on); a held statement waits for a
//!   reviewer. `COM_STMT_EXECUTE` runs under its prepared text's verdict.
//! - A read-only cursor (`COM_STMT_EXECUTE` with `CURSOR_TYPE_READ_ONLY`)
//!   keeps the columns it announced; each `COM_STMT_FETCH` answer is masked
//!   by them as executed binary rows are. A fetch without a cursor the
//!   gateway saw opened is forwarded for the server to refuse; anything
//!   but its ERR ends the session.
//! - MariaDB's statement id -1 ("the statement prepared last", sent by
//!   pipelining clients right behind their COM_STMT_PREPARE) is resolved
//!   here and rewritten to the real id, so the server runs what was judged.
//! - `KILL` passes only for the caller's own sessions (`kill`).
//! - `COM_INIT_DB` to the routed database passes (as the upstream's name);
//!   another is refused: routing happens at login, under access rules.
//! - `COM_CHANGE_USER` and every command without a text to judge
//!   (statistics, process kill, binlog, bulk execute...) are refused.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::mysql::{
    Command, HEADER_LEN, MySqlError, Packet, StmtExecute, com, encode_packet, next_packet,
};

use super::io::{PacketReader, Peer, code, command_cap, err_packet, seq_past_cap};
use super::judge::MyInspector;
use super::kill::{KillMap, parse_kill};
use super::results::{Columns, Masker};
use crate::config::mysql::MysqlTarget;
use crate::engine::ShardStats;
use crate::pipeline::statement::{Decision, StatementScope, StepError, shown};
use crate::pipeline::{EndReason, Live};
use crate::tls::WriteHalf;

/// Most statements one session may keep prepared (MySQL's default
/// `max_prepared_stmt_count` is server-wide 16382).
const MAX_STATEMENTS: usize = 4096;

/// The rule name of refusals the protocol makes (not the policy).
const PROTOCOL_RULE: &str = "mysql-protocol";

/// MariaDB's id for "the statement this session prepared last".
const LAST_STATEMENT: u32 = u32::MAX;

/// The `COM_STMT_EXECUTE` flag of a read-only cursor (the only cursor
/// type MySQL and MariaDB implement).
const CURSOR_TYPE_READ_ONLY: u8 = 1;

/// A protocol-level prepared statement.
pub(super) struct Prepared {
    pub text: String,
    pub decision: Decision,
    /// The columns of its open cursor, if an execute opened one.
    pub cursor: Option<Columns>,
}

pub(super) struct Relay<'a> {
    pub scope: StatementScope<'a>,
    pub live: &'a Live<'a>,
    pub my: &'a MysqlTarget,
    pub kills: &'a KillMap,
    pub client_r: PacketReader,
    /// `[limits] max_statement`: the cap on COM_QUERY and COM_STMT_PREPARE.
    pub max_statement: usize,
    pub client_w: WriteHalf,
    pub up_r: PacketReader,
    pub up_w: WriteHalf,
    /// The capabilities both sides agreed on.
    pub caps: u32,
    pub inspector: MyInspector<'a>,
    pub statements: HashMap<u32, Prepared>,
    /// The id of the statement prepared last (None after a refused or
    /// failed prepare, as the server forgets it too).
    pub last_prepared: Option<u32>,
    /// Whether the upstream is MariaDB (statement id -1 means the last).
    pub mariadb: bool,
    pub masker: Option<Masker<'a>>,
    /// Bytes for the client, written at the end of each answer (or when
    /// large).
    pub out: BytesMut,
    /// Set when the gateway changed the answer's packet count: every
    /// packet to the client is then written with this sequence id on.
    pub renumber: Option<u8>,
}

/// What the relay does after a command.
pub(super) enum After {
    Next,
    Quit,
}

/// A statement command's packet, with `id` in place of the `stmt_id` it
/// was sent with (every statement command has it right after the command
/// byte, inside the first physical packet).
fn with_id(p: &Packet, stmt_id: u32, id: u32) -> Bytes {
    if stmt_id == id || p.raw.len() < HEADER_LEN + 5 {
        return p.raw.clone();
    }
    let mut b = BytesMut::from(&p.raw[..]);
    b[HEADER_LEN + 1..HEADER_LEN + 5].copy_from_slice(&id.to_le_bytes());
    b.freeze()
}

impl From<StepError> for EndReason {
    fn from(e: StepError) -> EndReason {
        match e {
            StepError::Recorder(e) => EndReason::RecorderFailed(e),
            StepError::Killed(k) => EndReason::Killed(k),
        }
    }
}

impl Relay<'_> {
    pub async fn run(&mut self) -> EndReason {
        loop {
            let p = match self.client_packet().await {
                Ok(Some(p)) => p,
                Ok(None) => return EndReason::ClientClosed,
                Err(e) => return e,
            };
            self.live.frame_clock.progress();
            self.live.last_activity.set(Instant::now());
            if p.seq != 0 {
                return EndReason::ClientProtocol(format!("command with sequence id {}", p.seq));
            }
            let cmd = match Command::parse(&p.payload, self.caps) {
                Ok(c) => c,
                Err(e) => return Peer::Client.protocol(e),
            };
            match self.command(&p, cmd).await {
                Ok(After::Next) => {}
                Ok(After::Quit) => return EndReason::ClientTerminated,
                Err(e) => return e,
            }
        }
    }

    /// The client's next command, or `None` at a clean EOF between
    /// commands. A packet that stays incomplete runs the frame clock (a
    /// trickle of bytes is not progress).
    async fn client_packet(&mut self) -> Result<Option<Packet>, EndReason> {
        loop {
            let r = &mut self.client_r;
            let cap = command_cap(&r.buf, r.cap, self.max_statement);
            match next_packet(&mut r.buf, cap) {
                Ok(Some(p)) => {
                    r.release();
                    return Ok(Some(p));
                }
                Ok(None) => {}
                Err(e @ MySqlError::PacketTooLarge { .. }) => return Err(self.too_large(e).await),
                Err(e) => return Err(Peer::Client.protocol(e)),
            }
            let r = &mut self.client_r;
            self.live.frame_clock.mark(!r.buf.is_empty());
            match r.half.read_into(&mut r.buf).await {
                Ok(0) if r.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(Peer::Client.closed()),
                Ok(_) => {}
                Err(e) => return Err(Peer::Client.io(e)),
            }
            r.charge()?;
        }
    }

    /// A command above its cap ends the session, as PostgreSQL's does,
    /// with the server's own error for it first (ER_NET_PACKET_TOO_LARGE).
    async fn too_large(&mut self, e: MySqlError) -> EndReason {
        let r = &self.client_r;
        let seq = seq_past_cap(&r.buf, command_cap(&r.buf, r.cap, self.max_statement));
        let msg = match e {
            MySqlError::PacketTooLarge { len, max } if max == self.max_statement => format!(
                "tollgate: a statement of {len} bytes or more is above [limits] max_statement \
                 ({max} bytes)"
            ),
            ref e => format!("tollgate: {e}"),
        };
        if let Err(end) = self.send_err(seq, code::TOO_LARGE, &msg).await {
            return end;
        }
        Peer::Client.protocol(e)
    }

    async fn command(&mut self, p: &Packet, cmd: Command<'_>) -> Result<After, EndReason> {
        match cmd {
            Command::Quit => {
                self.send_upstream(p.raw.clone()).await?;
                return Ok(After::Quit);
            }
            Command::Query { sql } => self.query(p, sql).await?,
            Command::StmtPrepare { sql } => self.prepare(p, sql).await?,
            Command::StmtExecute(e) => self.execute(p, &e).await?,
            Command::StmtSendLongData { stmt_id, .. } => {
                // No answer; an unknown statement's data is dropped (the
                // server reports it at execute, where we refuse first).
                if let Some(id) = self.known(stmt_id) {
                    self.send_upstream(with_id(p, stmt_id, id)).await?;
                }
            }
            Command::StmtClose { stmt_id } => {
                let id = self.resolve(stmt_id);
                if let Some(id) = id {
                    self.statements.remove(&id);
                }
                if id == self.last_prepared {
                    self.last_prepared = None;
                }
                if let Some(id) = id {
                    self.send_upstream(with_id(p, stmt_id, id)).await?;
                }
            }
            Command::StmtReset { stmt_id } => match self.known(stmt_id) {
                Some(id) => {
                    // The server closes the statement's cursor.
                    if let Some(st) = self.statements.get_mut(&id) {
                        st.cursor = None;
                    }
                    self.send_upstream(with_id(p, stmt_id, id)).await?;
                    self.simple_answer().await?;
                }
                None => self.unknown_statement(p).await?,
            },
            Command::StmtFetch { stmt_id, .. } => self.fetch(p, stmt_id).await?,
            Command::Ping => self.simple(p).await?,
            Command::Other {
                code: com::SET_OPTION,
                ..
            } => self.simple(p).await?,
            Command::ResetConnection => {
                self.statements.clear();
                self.last_prepared = None;
                self.inspector.reset();
                self.simple(p).await?;
            }
            Command::InitDb { schema } => self.init_db(p, schema).await?,
            Command::FieldList { table, .. } => {
                let text = format!("COM_FIELD_LIST {}", String::from_utf8_lossy(table));
                self.scope.note(&text, &Decision::Allow, None, None).await?;
                self.send_upstream(p.raw.clone()).await?;
                self.field_list().await?;
            }
            Command::ChangeUser(_) => {
                let msg = "COM_CHANGE_USER is not allowed through tollgate: connect again with \
                           a token";
                self.refuse(p, "COM_CHANGE_USER", code::NOT_ALLOWED, msg)
                    .await?;
            }
            Command::Other { code: c, .. } => {
                let msg = format!("command 0x{c:02x} is not allowed through tollgate");
                let shown = format!("command 0x{c:02x}");
                self.refuse(p, &shown, code::UNKNOWN_COMMAND, &msg).await?;
            }
        }
        Ok(After::Next)
    }

    /// Note, hold for a reviewer if the policy says so; the final decision.
    async fn settle(&mut self, statement: &str, d: Decision) -> Result<Decision, EndReason> {
        let started = Instant::now();
        let d = match d {
            Decision::Approve { message, rule } => {
                self.flush().await?;
                self.live.frame_clock.progress();
                let r = self
                    .scope
                    .await_approval(statement, &message, &rule)
                    .await?;
                self.inspector.approved(r.forwards());
                r
            }
            d => {
                self.scope
                    .note(statement, &d, None, self.inspector.shadow.as_ref())
                    .await?;
                d
            }
        };
        self.scope
            .ctx
            .shared
            .metrics
            .shard(self.scope.ctx.id)
            .statement_added_latency(started.elapsed());
        Ok(d)
    }

    async fn query(&mut self, p: &Packet, sql: &[u8]) -> Result<(), EndReason> {
        let statement = shown(sql);
        let d = self.inspector.judge(sql);
        let kills = self.inspector.kills;
        let d = self.settle(&statement, d).await?;
        if let Decision::Block { message, .. } = &d {
            return self.send_err(p.next_seq(), code::BLOCKED, message).await;
        }
        let raw = if kills {
            match self.kill(sql) {
                Ok(raw) => raw,
                Err((c, msg)) => return self.send_err(p.next_seq(), c, &msg).await,
            }
        } else {
            p.raw.clone()
        };
        self.send_upstream(raw).await?;
        self.results(false).await.map(drop)
    }

    /// A KILL the policy let through: only of the caller's own sessions,
    /// rewritten with the upstream's id.
    fn kill(&self, sql: &[u8]) -> Result<Bytes, ((u16, &'static [u8; 5]), String)> {
        let Some((query, n)) = parse_kill(sql).filter(|_| self.inspector.statements == 1) else {
            return Err((
                code::NOT_ALLOWED,
                "through tollgate KILL is written alone as KILL [QUERY|CONNECTION] <id>".into(),
            ));
        };
        let Some(id) = self
            .kills
            .resolve(n, &self.scope.target.name, &self.scope.identity.subject)
        else {
            return Err((code::NO_SUCH_THREAD, format!("Unknown thread id: {n}")));
        };
        let sql = format!("KILL {} {id}", if query { "QUERY" } else { "CONNECTION" });
        let mut b = BytesMut::new();
        let _ = encode_packet(&mut b, 0, |o| {
            Command::Query {
                sql: sql.as_bytes(),
            }
            .encode(o, self.caps)
        });
        Ok(b.freeze())
    }

    async fn prepare(&mut self, p: &Packet, sql: &[u8]) -> Result<(), EndReason> {
        self.last_prepared = None;
        let statement = shown(sql);
        let d = self.inspector.judge(sql);
        let d = if self.inspector.kills && d.forwards() {
            Decision::Block {
                message: "KILL cannot be prepared through tollgate".into(),
                rule: PROTOCOL_RULE.into(),
            }
        } else {
            d
        };
        let d = self.settle(&statement, d).await?;
        if let Decision::Block { message, .. } = &d {
            return self.send_err(p.next_seq(), code::BLOCKED, message).await;
        }
        if self.statements.len() >= MAX_STATEMENTS {
            let msg = format!("more than {MAX_STATEMENTS} prepared statements in one session");
            return self
                .send_err(p.next_seq(), code::TOO_MANY_STATEMENTS, &msg)
                .await;
        }
        self.send_upstream(p.raw.clone()).await?;
        if let Some(id) = self.prepare_answer().await? {
            self.statements.insert(
                id,
                Prepared {
                    text: statement,
                    decision: d,
                    cursor: None,
                },
            );
            self.last_prepared = Some(id);
        }
        Ok(())
    }

    async fn execute(&mut self, p: &Packet, e: &StmtExecute<'_>) -> Result<(), EndReason> {
        if e.flags & !CURSOR_TYPE_READ_ONLY != 0 {
            let msg = "only read-only cursors (CURSOR_TYPE_READ_ONLY) pass through tollgate";
            return self
                .send_err(p.next_seq(), code::UNKNOWN_COMMAND, msg)
                .await;
        }
        let Some(id) = self.known(e.stmt_id) else {
            return self.unknown_statement(p).await;
        };
        let Some(st) = self.statements.get_mut(&id) else {
            return self.unknown_statement(p).await;
        };
        // Executing again closes the statement's cursor, if it had one.
        st.cursor = None;
        let (text, d) = (st.text.clone(), st.decision.clone());
        self.scope.note(&text, &d, None, None).await?;
        self.send_upstream(with_id(p, e.stmt_id, id)).await?;
        let cursor = self.results(true).await?;
        if let Some(st) = self.statements.get_mut(&id) {
            st.cursor = cursor;
        }
        Ok(())
    }

    /// COM_STMT_FETCH: the next rows of a cursor, masked by its columns.
    /// A statement or cursor the gateway does not know goes to the server
    /// all the same, for it to refuse (only its ERR comes back).
    async fn fetch(&mut self, p: &Packet, stmt_id: u32) -> Result<(), EndReason> {
        // MariaDB's -1 with nothing prepared last (here): the server's own
        // "last" may be another statement, so it is not asked.
        let Some(id) = self.resolve(stmt_id) else {
            return self.unknown_statement(p).await;
        };
        let cursor = self.statements.get_mut(&id).and_then(|st| st.cursor.take());
        self.send_upstream(with_id(p, stmt_id, id)).await?;
        let cursor = self.fetch_answer(cursor).await?;
        if let Some(st) = self.statements.get_mut(&id) {
            st.cursor = cursor;
        }
        Ok(())
    }

    /// The id a command's statement id stands for: MariaDB's -1 is the
    /// statement prepared last (`None` when there is none).
    fn resolve(&self, stmt_id: u32) -> Option<u32> {
        if stmt_id == LAST_STATEMENT && self.mariadb {
            self.last_prepared
        } else {
            Some(stmt_id)
        }
    }

    /// [`Self::resolve`], for a statement this session prepared.
    fn known(&self, stmt_id: u32) -> Option<u32> {
        self.resolve(stmt_id)
            .filter(|id| self.statements.contains_key(id))
    }

    pub(super) async fn unknown_statement(&mut self, p: &Packet) -> Result<(), EndReason> {
        self.send_err(
            p.next_seq(),
            code::UNKNOWN_STATEMENT,
            "Unknown prepared statement handler given to tollgate",
        )
        .await
    }

    async fn init_db(&mut self, p: &Packet, schema: &[u8]) -> Result<(), EndReason> {
        let text = format!("COM_INIT_DB {}", String::from_utf8_lossy(schema));
        let routed =
            schema == self.my.database.as_bytes() || schema == self.my.upstream_database.as_bytes();
        if !routed {
            let msg = format!(
                "this session is routed to database '{}': connect again naming '{}' to use it",
                self.my.database,
                String::from_utf8_lossy(schema)
            );
            return self.refuse(p, &text, code::DB_ACCESS_DENIED, &msg).await;
        }
        self.scope.note(&text, &Decision::Allow, None, None).await?;
        let mut b = BytesMut::new();
        let _ = encode_packet(&mut b, 0, |o| {
            Command::InitDb {
                schema: self.my.upstream_database.as_bytes(),
            }
            .encode(o, self.caps)
        });
        self.send_upstream(b.freeze()).await?;
        self.simple_answer().await
    }

    async fn simple(&mut self, p: &Packet) -> Result<(), EndReason> {
        self.send_upstream(p.raw.clone()).await?;
        self.simple_answer().await
    }

    /// Refuse a command the protocol does not pass: noted as a block.
    async fn refuse(
        &mut self,
        p: &Packet,
        shown: &str,
        c: (u16, &[u8; 5]),
        message: &str,
    ) -> Result<(), EndReason> {
        let d = Decision::Block {
            message: message.to_string(),
            rule: PROTOCOL_RULE.into(),
        };
        self.scope.note(shown, &d, None, None).await?;
        self.send_err(p.next_seq(), c, message).await
    }

    /// Answer the client with an ERR packet in place of the server.
    pub(super) async fn send_err(
        &mut self,
        seq: u8,
        (c, state): (u16, &[u8; 5]),
        message: &str,
    ) -> Result<(), EndReason> {
        err_packet(&mut self.out, seq, c, state, message);
        self.flush().await
    }

    /// Record, count, then send a command to the upstream.
    pub(super) async fn send_upstream(&mut self, data: Bytes) -> Result<(), EndReason> {
        let rec = self.scope.recording;
        if rec.enabled() {
            rec.client_data(self.live.last_activity.get(), &data)
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?
                .forwardable()
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
        }
        let n = data.len() as u64;
        let entry = self.scope.entry;
        entry.bytes_up.set(entry.bytes_up.get() + n);
        ShardStats::add(&self.scope.ctx.stats().bytes_client_to_upstream, n);
        self.up_w
            .write_all(data)
            .await
            .map_err(|e| Peer::Upstream.io(e))
    }

    /// Record, count, then send what `out` holds to the client.
    pub(super) async fn flush(&mut self) -> Result<(), EndReason> {
        if self.out.is_empty() {
            return Ok(());
        }
        let data = self.out.split().freeze();
        let rec = self.scope.recording;
        if rec.enabled() {
            rec.target_data(Instant::now(), &data)
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?
                .forwardable()
                .await
                .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
        }
        let n = data.len() as u64;
        let entry = self.scope.entry;
        entry.bytes_down.set(entry.bytes_down.get() + n);
        ShardStats::add(&self.scope.ctx.stats().bytes_upstream_to_client, n);
        self.live.last_activity.set(Instant::now());
        self.client_w
            .write_all(data)
            .await
            .map_err(|e| Peer::Client.io(e))
    }
}
