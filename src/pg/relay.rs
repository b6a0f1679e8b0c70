//! The inspected PostgreSQL relay: one future per direction.
//!
//! Client → upstream: every statement (Query, Parse, FunctionCall) is judged
//! before a byte of it reaches the target. A blocked statement is replaced by
//! a statement the gateway writes (`DO ... RAISE` with SQLSTATE 42501 and the
//! rule's message), so the target itself produces the error in the right
//! place of the response stream and its transaction state matches what the
//! client sees — inside a transaction, in a pipelined batch, anywhere.
//!
//! Upstream → client: DataRow values are masked by column and content
//! rules (RowDescription gives the columns), COPY TO STDOUT rows by content;
//! the responses to injected extended-protocol messages are filtered out.
//!
//! Frames are inspected in place in the read buffer; runs of unchanged
//! frames are forwarded as slices of it (no copy, no re-encoding), one write
//! per read.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{Either, select};
use tollgate_codecs::pg::{self, Caps, DataRow, ErrorFields, Limits, tag};
use tracing::warn;

use super::cancel::CancelMap;
use super::copyout::CopyOut;
use super::ending::Ending;
use super::inspect::{Decision, Inspector, ShadowVerdict};
use super::io::{FrameReader, Peer, SessionError, send};
use super::rowplan::{ResultRefusal, RowMode, RowPlan};
use super::session::{PgClient, UpstreamReady, cancel_key, fatal, sqlstate};
use super::shapes::{Shapes, Step};
use super::stream::{self, FrameClock, Next, Passing};
use super::texts;
use super::values::{self, Kind, Masked};
use super::{lexmode, probe};
use crate::config::TargetConfig;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::Identity;
use crate::pipeline::statement::StatementScope;
use crate::pipeline::{EndReason, Live, Relayed, Session, Target};
use crate::policy::mask::{MaskOutcome, MaskScratch, ResultPlan};
use crate::recording::{Durable, SessionRecording};
use crate::snapshot::TargetRuntime;
use crate::tls::WriteHalf;

/// Responses to drop from the upstream: those of the Parse/Bind the gateway
/// injected when it blocked an extended-protocol statement.
#[derive(Debug, Clone)]
struct Injection {
    /// The batch (counted in ReadyForQuery messages) it belongs to.
    batch: u64,
    /// ParseComplete / BindComplete messages of that batch before ours.
    parses_before: u32,
    binds_before: u32,
    /// A syntax probe went first (see `probe`).
    probe: Option<Probe>,
}

/// The injected Parse/Close of a syntax probe, before the raising statement.
#[derive(Debug, Clone)]
struct Probe {
    /// CloseComplete messages of the batch before ours.
    closes_before: u32,
    /// For a simple Query: the refusal that replaces an unpositioned 42601.
    refusal: Option<Bytes>,
}

/// State both directions read: the client side writes, the upstream side
/// consumes. Borrowed only between awaits.
struct Flow {
    injections: VecDeque<Injection>,
    /// The upstream's `standard_conforming_strings` (how `\\` lexes).
    standard_conforming_strings: bool,
    /// Row shapes of statements and portals (only when the target masks).
    shapes: Option<Shapes>,
    /// ReadyForQuery messages relayed: the client side compares it with the
    /// batches it sent to know whether the lexical mode is settled.
    ready_seen: u64,
    /// Name rules mask this caller's results: a COPY TO STDOUT has its
    /// columns described first (`copystmt`).
    copy_columns: bool,
    /// The last ReadyForQuery said idle ('I').
    idle: bool,
    /// A pooled connection's way back to the pool (`release.rs`).
    release: Release,
    /// ParameterStatus frames of a pooled connection, as the server sent
    /// them this session: the next caller's greeting follows them.
    statuses: Vec<Bytes>,
    /// Transaction mode's state (`tx.rs`).
    tx: Option<tx::Tx>,
}

impl Flow {
    fn new(rt: &TargetRuntime, identity: &Identity, greeting: &[u8], idle: bool) -> Flow {
        Flow {
            idle,
            release: Release::No,
            statuses: Vec::new(),
            tx: None,
            injections: VecDeque::new(),
            standard_conforming_strings: !param_is(
                greeting,
                b"standard_conforming_strings",
                b"off",
            ),
            shapes: rt.masking.as_ref().map(|_| Shapes::default()),
            ready_seen: 0,
            copy_columns: rt.masking.as_ref().is_some_and(|m| {
                let mut p = ResultPlan::default();
                m.plan_caller(&identity.groups, &mut p);
                m.has_column_rules(&p)
            }),
        }
    }
}

/// Relay an admitted, logged-in session until either side ends it: replay
/// the upstream's greeting, then inspect both directions. The pipeline
/// started the recording and runs the watchdog around this future.
pub(crate) async fn relay(
    s: &Session<'_>,
    t: &Target<'_>,
    cancels: &CancelMap,
    client: PgClient,
    up: UpstreamReady,
    live: &Live<'_>,
) -> Relayed<Ending> {
    let PgClient {
        reader: client_r,
        writer: mut client_w,
        buf: client_buf,
        params,
        ..
    } = client;
    let UpstreamReady {
        reader: up_r,
        writer: up_w,
        buf: up_buf,
        greeting,
        key,
        status,
        method,
        pool,
    } = up;
    let (ctx, entry, target, rt) = (s.ctx, s.entry, t.config, t.rt);
    if let Some(why) = lexmode::refused_encoding_in_greeting(&greeting) {
        let mut out = BytesMut::new();
        fatal(&mut out, sqlstate::FEATURE_NOT_SUPPORTED, &why);
        let _ = send(&mut client_w, &mut out, Peer::Client).await;
        return ended_by(EndReason::Refused(why));
    }
    let Some(identity) = live.identity else {
        // The pipeline admits PostgreSQL callers by token only.
        return ended_by(EndReason::Refused("no caller identity".into()));
    };
    let session_id = entry.id.to_string();
    let cancel = CancelKey::register(cancels, target, &key, &session_id);
    if let Err(reason) = greet(live, &mut client_w, &greeting, cancel.key, status).await {
        return ended_by(reason);
    }
    let idle = status == pg::TransactionStatus::Idle;
    let limits = &s.snapshot.config.limits;
    let budget = std::rc::Rc::new(crate::limits::SessionBudget::new(limits));
    // Transaction mode: the connection is the pool's between transactions.
    let tx_cfg = pool
        .as_ref()
        .and(target.postgres.as_ref())
        .and_then(|p| p.pool.as_ref());
    let tx_cfg = tx_cfg.filter(|c| c.mode == crate::config::PoolMode::Transaction);
    let (next_tx, next_rx) = async_channel::bounded(1);
    let env = tx_cfg.map(|cfg| tx::TxEnv {
        target,
        rt,
        params: &params,
        cfg,
        shard: ctx.id,
        share: cfg.share(ctx.id, s.snapshot.config.engine.shards),
        cancels,
        client_key: cancel.key,
        budget: budget.clone(),
        next: next_tx.clone(),
    });
    let mut flow = Flow::new(rt, identity, &greeting, idle);
    let (up_w, pool) = match &env {
        Some(_) => {
            flow.tx = Some(tx::Tx::start(up_w, pool, &greeting, &key, method));
            (None, None)
        }
        None => (Some(up_w), pool),
    };
    let flow = RefCell::new(flow);
    let mut inspector = Inspector::new(rt, identity);
    let reset = pool.as_ref().map(|l| l.reset_query.clone());
    let mut client_side = ClientSide {
        reset: reset.as_deref(),
        tx: env.as_ref(),
        ctx,
        entry,
        target,
        identity,
        recording: live.recording,
        reader: FrameReader::new(client_r, client_buf, limits.frontend_caps(), Peer::Client)
            .with_budget(budget.clone(), crate::limits::Direction::FromClient),
        writer: up_w,
        flow: &flow,
        last_activity: live.last_activity,
        passing: Passing::default(),
        frame_clock: live.frame_clock,
    };
    let upstream_side = UpstreamSide {
        pooled: pool.is_some(),
        ctx,
        entry,
        rt,
        identity,
        recording: live.recording,
        reader: FrameReader::new(
            up_r,
            up_buf,
            Caps::backend(&Limits::default()),
            Peer::Upstream,
        )
        .with_budget(budget.clone(), crate::limits::Direction::FromUpstream),
        writer: client_w,
        flow: &flow,
        last_activity: live.last_activity,
        passing: Passing::default(),
    };
    if let Some(env) = &env {
        let ended = {
            let c2u = std::pin::pin!(client_side.run(&mut inspector));
            let u2c = std::pin::pin!(tx::upstream(upstream_side, next_rx, env));
            match select(c2u, u2c).await {
                Either::Left((r, u2c)) => {
                    // The caller left: what it sent last may still be
                    // answered; the connection goes back if it ends idle.
                    next_tx.close();
                    if tx::answers_due(&flow) {
                        let _ = compio::time::timeout(TX_LAST_ANSWER, u2c).await;
                    }
                    r
                }
                Either::Right((r, _)) => r,
            }
        };
        drop(cancel);
        return relayed(entry, ended);
    }
    let mut upstream_side = upstream_side;
    let ended = {
        let c2u = std::pin::pin!(client_side.run(&mut inspector));
        let u2c = std::pin::pin!(upstream_side.run());
        match select(c2u, u2c).await {
            Either::Left((r, u2c)) => {
                release::await_reset(&flow, u2c).await;
                r
            }
            Either::Right((r, _)) => r,
        }
    };
    drop(cancel);
    if let (Some(lease), Some(writer)) = (pool, client_side.writer) {
        let back = release::Back {
            lease,
            flow: &flow,
            reader: upstream_side.reader,
            writer,
            greeting,
            key,
            method,
        };
        back.give_back();
    }
    relayed(entry, ended)
}

/// AuthenticationOk, the upstream's greeting, the client's cancel key and
/// ReadyForQuery: recorded (durably), then sent.
async fn greet(
    live: &Live<'_>,
    client_w: &mut WriteHalf,
    greeting: &[u8],
    key: Option<(i32, [u8; 4])>,
    status: pg::TransactionStatus,
) -> Result<(), EndReason> {
    let mut out = BytesMut::with_capacity(512 + greeting.len());
    pg::encode_authentication_ok(&mut out);
    out.extend_from_slice(greeting);
    if let Some((pid, secret)) = key {
        let _ = pg::encode_backend_key_data(&mut out, pid, &secret);
    }
    pg::encode_ready_for_query(&mut out, status);
    live.recording
        .target_data_durable(Instant::now(), &out)
        .await
        .map_err(|e| EndReason::RecorderFailed(e.to_string()))?;
    send(client_w, &mut out, Peer::Client)
        .await
        .map_err(EndReason::from)
}

/// An end the client is told nothing more of.
fn ended_by(reason: EndReason) -> Relayed<Ending> {
    Relayed {
        reason,
        goodbye: None,
    }
}

/// How the relay ended, and what the client is told.
fn relayed(entry: &SessionEntry, ended: Result<(), SessionError>) -> Relayed<Ending> {
    match ended {
        Ok(()) => ended_by(EndReason::ClientTerminated),
        Err(SessionError::ClientProtocol(e)) => Relayed {
            goodbye: Some(super::ending::protocol_error(&e)),
            reason: SessionError::ClientProtocol(e).into(),
        },
        Err(SessionError::OutOfMemory(e)) => {
            warn!(session = %entry.id, reason = %e, "session ended: memory budget");
            Relayed {
                goodbye: Some(super::ending::out_of_memory(&e)),
                reason: SessionError::OutOfMemory(e).into(),
            }
        }
        Err(e) => ended_by(e.into()),
    }
}

/// The client's cancel key while its session lives: removed when the relay
/// ends or is dropped (the watchdog drops it), so a stale key cancels nothing.
struct CancelKey<'a> {
    cancels: &'a CancelMap,
    key: Option<(i32, [u8; 4])>,
}

impl<'a> CancelKey<'a> {
    fn register(
        cancels: &'a CancelMap,
        target: &TargetConfig,
        upstream_key: &Option<(i32, Vec<u8>)>,
        session: &str,
    ) -> CancelKey<'a> {
        CancelKey {
            cancels,
            key: cancel_key(cancels, target, upstream_key, session),
        }
    }
}

impl Drop for CancelKey<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.cancels.remove(k);
        }
    }
}

/// What happens to one frame.
enum Action {
    Keep,
    Drop,
    Replace(Bytes),
}

/// Split `buf` into the segments to write: the unchanged run before `pos`,
/// then (for Drop/Replace) skip the frame at `pos..pos+len`.
fn cut(buf: &mut BytesMut, segments: &mut Vec<Bytes>, pos: &mut usize, len: usize, action: Action) {
    match action {
        Action::Keep => *pos += len,
        Action::Drop | Action::Replace(_) => {
            if *pos > 0 {
                segments.push(buf.split_to(*pos).freeze());
            }
            buf.advance(len);
            *pos = 0;
            if let Action::Replace(b) = action {
                segments.push(b);
            }
        }
    }
}

mod client_side;
mod release;
mod tx;
mod txcheck;
use release::Release;

/// How long a caller's last answers may take after it left, in
/// transaction mode, before its connection is closed instead of returned.
const TX_LAST_ANSWER: std::time::Duration = std::time::Duration::from_secs(10);

/// The client → upstream direction (its methods: `client_side.rs`).
struct ClientSide<'a> {
    /// A pooled connection's reset query: a caller that leaves it idle
    /// has it reset and returned instead of closed.
    reset: Option<&'a str>,
    /// Transaction mode (`tx.rs`): connections are taken per transaction.
    tx: Option<&'a tx::TxEnv<'a>>,
    ctx: &'a ShardCtx,
    entry: &'a SessionEntry,
    target: &'a TargetConfig,
    identity: &'a Arc<Identity>,
    recording: &'a SessionRecording,
    reader: FrameReader,
    /// The upstream's write half (in transaction mode: `None`, the held
    /// connection's is in `flow.tx`).
    writer: Option<WriteHalf>,
    flow: &'a RefCell<Flow>,
    last_activity: &'a std::cell::Cell<Instant>,
    /// A long message passing through in pieces (`stream`).
    passing: Passing,
    frame_clock: &'a FrameClock,
}

/// Record, count, then send the segments ready for one peer: nothing
/// reaches a peer unrecorded, and a failed recorder ends the session.
/// `read_at` is when their bytes were read (the relay's activity clock).
async fn forward(
    writer: &mut WriteHalf,
    segments: &mut Vec<Bytes>,
    recording: &SessionRecording,
    read_at: Instant,
    to: Peer,
    session_bytes: &std::cell::Cell<u64>,
    shard_bytes: &std::sync::atomic::AtomicU64,
) -> Result<(), SessionError> {
    if segments.is_empty() {
        return Ok(());
    }
    let n: usize = segments.iter().map(Bytes::len).sum();
    if recording.enabled() {
        let mut durable = Durable::NONE;
        for seg in segments.iter() {
            let r = match to {
                Peer::Upstream => recording.client_data(read_at, seg).await,
                Peer::Client => recording.target_data(read_at, seg).await,
            };
            durable = r.map_err(|e| SessionError::Refused(format!("recorder failed: {e}")))?;
        }
        // Strict durability: the last record's fsync covers all of them.
        durable
            .forwardable()
            .await
            .map_err(|e| SessionError::Refused(format!("recorder failed: {e}")))?;
    }
    session_bytes.set(session_bytes.get() + n as u64);
    ShardStats::add(shard_bytes, n as u64);
    writer
        .write_all_vectored(std::mem::take(segments))
        .await
        .map_err(|e| match to {
            Peer::Upstream => SessionError::UpstreamIo(e),
            Peer::Client => SessionError::ClientIo(e),
        })
}

use crate::pipeline::statement::shown;

fn strip_nul(body: &[u8]) -> &[u8] {
    body.strip_suffix(&[0]).unwrap_or(body)
}

/// The statement that makes the target raise our error: SQLSTATE 42501,
/// the rule's message, the rule's name as detail.
fn raise_sql(message: &str, rule: &str) -> String {
    let lit = |s: &str| {
        let s: String = s.chars().filter(|c| *c != '\0').collect();
        format!("'{}'", s.replace('\'', "''").replace("$tollgate$", ""))
    };
    format!(
        "DO $tollgate$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = {}, DETAIL = {}; END$tollgate$",
        lit(message),
        lit(&format!("blocked by tollgate rule \"{rule}\"")),
    )
}

/// The rule name of the policy's `unclassified` default.
const UNCLASSIFIED: &str = "unclassified";

/// A syntax probe of `sql` followed by the raising statement (and a Sync for
/// a simple Query), with the refusal that replaces an unpositioned 42601.
fn probed_error(
    sql: &[u8],
    message: &str,
    rule: &str,
    simple: bool,
) -> Result<(Bytes, Option<Bytes>), SessionError> {
    let mut b = BytesMut::new();
    probe::encode_probe(&mut b, sql).map_err(SessionError::ClientProtocol)?;
    b.extend_from_slice(&injected_error(message, rule)?);
    if !simple {
        return Ok((b.freeze(), None));
    }
    pg::encode_sync(&mut b);
    let refusal = probe::refusal(message, rule).map_err(SessionError::ClientProtocol)?;
    Ok((b.freeze(), Some(refusal)))
}

/// Parse + Bind + Execute of the raising statement (unnamed), in place of a
/// blocked Parse; the upstream side drops the ParseComplete/BindComplete.
fn injected_error(message: &str, rule: &str) -> Result<Bytes, SessionError> {
    let mut b = BytesMut::new();
    let sql = raise_sql(message, rule);
    pg::encode_parse(&mut b, b"", sql.as_bytes(), &[]).map_err(SessionError::ClientProtocol)?;
    pg::encode_bind(&mut b, b"", b"", &[], std::iter::empty(), &[])
        .map_err(SessionError::ClientProtocol)?;
    pg::encode_execute(&mut b, b"", 0).map_err(SessionError::ClientProtocol)?;
    Ok(b.freeze())
}

mod upstream_side;

/// The upstream → client direction (its methods: `upstream_side.rs`).
struct UpstreamSide<'a> {
    /// From a pool: the reset's answer is read, not relayed (`release.rs`).
    pooled: bool,
    ctx: &'a ShardCtx,
    entry: &'a SessionEntry,
    rt: &'a TargetRuntime,
    identity: &'a Arc<Identity>,
    recording: &'a SessionRecording,
    reader: FrameReader,
    writer: WriteHalf,
    flow: &'a RefCell<Flow>,
    last_activity: &'a std::cell::Cell<Instant>,
    /// A long message passing through in pieces (`stream`).
    passing: Passing,
}

/// The error our injected statement raised, without the PL/pgSQL context,
/// routine, file and line the server attaches (they describe the gateway's
/// `DO` block, not the client's statement). `None` for any other error.
fn ours_without_context(body: &[u8]) -> Option<Bytes> {
    let e = pg::ErrorResponse::parse_body(tag::ERROR_RESPONSE, body).ok()?;
    if e.code()? != b"42501" || !e.field(b'D')?.starts_with(b"blocked by tollgate rule") {
        return None;
    }
    let mut b = BytesMut::with_capacity(body.len() + 5);
    b.extend_from_slice(&[tag::ERROR_RESPONSE, 0, 0, 0, 0]);
    for (code, value) in e.fields() {
        if matches!(code, b'W' | b'R' | b'F' | b'L' | b'p' | b'q') {
            continue;
        }
        b.extend_from_slice(&[code]);
        b.extend_from_slice(value);
        b.extend_from_slice(&[0]);
    }
    b.extend_from_slice(&[0]);
    let len = u32::try_from(b.len() - 1).ok()?;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    Some(b.freeze())
}

/// Whether the ParameterStatus frames in `greeting` set `name` to `value`.
fn param_is(greeting: &[u8], name: &[u8], value: &[u8]) -> bool {
    let mut buf = BytesMut::from(greeting);
    let caps = Caps::backend(&Limits::default());
    while let Ok(Some(f)) = pg::next_frame(&mut buf, &caps) {
        if f.tag() == tag::PARAMETER_STATUS
            && let Ok(p) = pg::ParameterStatus::parse_body(f.body())
            && p.name == name
        {
            return p.value == value;
        }
    }
    false
}

/// Content masking of an ErrorResponse, NoticeResponse or NotificationResponse.
fn server_text(
    masking: Option<&crate::policy::mask::MaskPolicy>,
    caller: &ResultPlan,
    t: u8,
    body: &[u8],
    scratch: &mut MaskScratch,
) -> Action {
    let Some(m) = masking.filter(|_| !caller.is_noop()) else {
        return Action::Keep;
    };
    let masked = if t == tag::NOTIFICATION_RESPONSE {
        texts::notification(m, caller, body, scratch)
    } else {
        texts::error_or_notice(m, caller, t, body, scratch)
    };
    masked.map_or(Action::Keep, Action::Replace)
}

/// A COPY TO STDOUT from a caller whom name rules mask: the statement goes
/// out behind the description of its columns, or, when the gateway cannot
/// follow it, is blocked (rule `copy-columns`). Other statements and
/// decisions pass unchanged.
fn copy_columns(
    flow: &RefCell<Flow>,
    t: u8,
    frame: &[u8],
    decision: Decision,
) -> Result<(Decision, Option<Bytes>), SessionError> {
    let (wanted, scs) = {
        let f = flow.borrow();
        (f.copy_columns, f.standard_conforming_strings)
    };
    if !wanted || !matches!(decision, Decision::Allow | Decision::Audit { .. }) {
        return Ok((decision, None));
    }
    let body = frame.get(pg::HEADER_LEN..).unwrap_or_default();
    let sql = if t == tag::QUERY {
        strip_nul(body)
    } else {
        pg::Parse::parse_body(body)
            .map_err(SessionError::ClientProtocol)?
            .query
    };
    match super::copystmt::probe_for(sql, scs, t == tag::QUERY, frame) {
        Ok(probe) => Ok((decision, probe)),
        Err(why) => Ok((
            Decision::Block {
                message: format!("tollgate cannot mask this COPY by column name: {why}"),
                rule: "copy-columns".into(),
            },
            None,
        )),
    }
}

/// Tells the shape tracker what the upstream receives in place of one
/// client frame (`frame` includes its header): the frame, the statement
/// the gateway wrote instead, or nothing.
fn track_client(flow: &RefCell<Flow>, frame: &[u8], action: &Action) -> Result<(), SessionError> {
    let mut flow = flow.borrow_mut();
    let Some(shapes) = flow.shapes.as_mut() else {
        return Ok(());
    };
    let mut feed = |f: &[u8]| match (f.first(), f.get(pg::HEADER_LEN..)) {
        (Some(&t), Some(body)) => shapes
            .client_message(t, body)
            .map_err(SessionError::ClientProtocol),
        _ => Ok(()),
    };
    match action {
        Action::Keep => feed(frame),
        Action::Drop => Ok(()),
        Action::Replace(b) => {
            let mut rest = &b[..];
            while let Some(len) = rest
                .get(1..pg::HEADER_LEN)
                .and_then(|l| l.try_into().ok())
                .map(|l| 1 + u32::from_be_bytes(l) as usize)
            {
                let Some(f) = rest.get(..len) else { break };
                feed(f)?;
                rest = &rest[len..];
            }
            Ok(())
        }
    }
}

/// Client-facing error for a statement the gateway refuses itself.
#[allow(dead_code)]
fn refuse(out: &mut BytesMut, message: &str) {
    let _ = pg::encode_error_response(
        out,
        &ErrorFields::error(sqlstate::INSUFFICIENT_PRIVILEGE, message),
    );
}
