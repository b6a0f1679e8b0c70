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
use tracing::{info, warn};

use super::copyout::CopyOut;
use super::ending::Ending;
use super::inspect::{Decision, Inspector};
use super::io::{FrameReader, Peer, SessionError, send};
use super::rowplan::{Refusal, RowMode, RowPlan};
use super::session::{Admitted, UpstreamReady, cancel_key, fatal, login_upstream, sqlstate};
use super::shapes::{Shapes, Step};
use super::texts;
use super::values::{self, Kind, Masked};
use super::{lexmode, probe};
use crate::approvals::{ApprovalRequest, Decision as ApprovalDecision};
use crate::config::TargetConfig;
use crate::engine::ShardStats;
use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;
use crate::identity::Identity;
use crate::metrics::StatementVerdict;
use crate::policy::mask::{MaskOutcome, MaskScratch, ResultPlan};
use crate::recording::{Durable, SessionRecording};
use crate::snapshot::{Snapshot, TargetRuntime};
use crate::tls::WriteHalf;
use tollgate_recorder::{CommandEvent, SessionEnd, SessionStart};

/// Why a session ended, for the log and the audit record.
pub type EndReason = String;

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
}

pub(crate) async fn run(
    ctx: &ShardCtx,
    _snapshot: &Snapshot,
    target: &TargetConfig,
    rt: &TargetRuntime,
    entry: &SessionEntry,
    admitted: Admitted,
) -> EndReason {
    let Admitted {
        reader: client_r,
        writer: mut client_w,
        buf: client_buf,
        identity,
        params,
        tls,
        ..
    } = admitted;
    if target.require_approval_to_connect
        && let Err(why) = access_window(ctx, target, entry, &identity).await
    {
        let mut out = BytesMut::new();
        fatal(&mut out, sqlstate::INVALID_AUTHORIZATION, &why);
        let _ = send(&mut client_w, &mut out, Peer::Client).await;
        return why;
    }
    let login = std::pin::pin!(login_upstream(target, rt, &params));
    let up = match select(login, entry.kill.killed()).await {
        Either::Left((Ok(up), _)) => up,
        Either::Left((Err(e), _)) => {
            ShardStats::add(&ctx.stats().upstream_failures, 1);
            warn!(session = %entry.id, target = %target.name, error = %e, "upstream login failed");
            let mut out = BytesMut::new();
            fatal(
                &mut out,
                sqlstate::CONNECTION_FAILURE,
                "tollgate could not log in to the target",
            );
            let _ = send(&mut client_w, &mut out, Peer::Client).await;
            return format!("upstream login failed: {e}");
        }
        Either::Right((k, _)) => {
            super::ending::say_goodbye(client_w.last_word(), Ending::Killed(k)).await;
            return k.to_string();
        }
    };
    let UpstreamReady {
        reader: up_r,
        writer: up_w,
        buf: up_buf,
        greeting,
        key,
        status,
        method,
    } = up;
    if let Some(why) = lexmode::refused_encoding_in_greeting(&greeting) {
        let mut out = BytesMut::new();
        fatal(&mut out, sqlstate::FEATURE_NOT_SUPPORTED, &why);
        let _ = send(&mut client_w, &mut out, Peer::Client).await;
        return why;
    }
    let session_id = entry.id.to_string();
    let cancel = cancel_key(ctx, target, &key, &session_id);
    let mut out = BytesMut::with_capacity(512 + greeting.len());
    pg::encode_authentication_ok(&mut out);
    out.extend_from_slice(&greeting);
    if let Some((pid, secret)) = cancel {
        let _ = pg::encode_backend_key_data(&mut out, pid, &secret);
    }
    pg::encode_ready_for_query(&mut out, status);
    info!(
        shard = ctx.id,
        session = %entry.id,
        target = %target.name,
        subject = %identity.subject,
        groups = ?identity.groups,
        issuer = %identity.issuer,
        client = %entry.client,
        upstream_auth = method,
        "session opened"
    );
    let recording = SessionRecording::new(ctx.recorder(), entry);
    let start = SessionStart {
        subject: identity.subject.clone(),
        groups: identity.groups.clone(),
        issuer: Some(identity.issuer.clone()),
        target: target.name.clone(),
        client_addr: Some(entry.client.to_string()),
        tls_version: tls,
        protocol: Some("postgres".into()),
        ..Default::default()
    };
    let started = Instant::now();
    // Set when the gateway ends the session (idle timeout, a kill): the
    // client is told why once both relay directions have been dropped, so
    // nothing follows the FATAL.
    let mut ended_by_us = None;
    let last_word = client_w.last_word();
    let reason = if let Err(e) = recording.start(start).await {
        warn!(session = %entry.id, error = %e, "cannot record: session refused");
        out.clear();
        fatal(
            &mut out,
            sqlstate::CONNECTION_FAILURE,
            "tollgate cannot record this session",
        );
        let _ = send(&mut client_w, &mut out, Peer::Client).await;
        format!("recorder failed: {e}")
    } else if let Err(e) = recording.target_data_durable(Instant::now(), &out).await {
        format!("recorder failed: {e}")
    } else if let Err(e) = send(&mut client_w, &mut out, Peer::Client).await {
        e.to_string()
    } else {
        let flow = RefCell::new(Flow {
            injections: VecDeque::new(),
            standard_conforming_strings: !param_is(
                &greeting,
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
        });
        let last_activity = std::cell::Cell::new(Instant::now());
        let mut inspector = Inspector::new(rt, &identity);
        let client_side = ClientSide {
            ctx,
            entry,
            target,
            identity: &identity,
            recording: &recording,
            reader: FrameReader::new(
                client_r,
                client_buf,
                Caps::frontend(&Limits::default()),
                Peer::Client,
            ),
            writer: up_w,
            flow: &flow,
            last_activity: &last_activity,
        };
        let upstream_side = UpstreamSide {
            ctx,
            entry,
            rt,
            identity: &identity,
            recording: &recording,
            reader: FrameReader::new(
                up_r,
                up_buf,
                Caps::backend(&Limits::default()),
                Peer::Upstream,
            ),
            writer: client_w,
            flow: &flow,
            last_activity: &last_activity,
        };
        let c2u = std::pin::pin!(client_side.run(&mut inspector));
        let u2c = std::pin::pin!(upstream_side.run());
        let both = async {
            match select(c2u, u2c).await {
                Either::Left((r, _)) | Either::Right((r, _)) => r,
            }
        };
        let watchdog = async {
            let idle = std::pin::pin!(crate::relay::idle_timer(
                &last_activity,
                target.idle_timeout
            ));
            match select(idle, entry.kill.killed()).await {
                Either::Left(_) => Ending::IdleTimeout,
                Either::Right((k, _)) => Ending::Killed(k),
            }
        };
        let both = std::pin::pin!(both);
        let watchdog = std::pin::pin!(watchdog);
        match select(both, watchdog).await {
            Either::Left((r, _)) => match r {
                Ok(()) => "client terminated".to_string(),
                Err(SessionError::ClientProtocol(e)) => {
                    ended_by_us = Some(super::ending::protocol_error(&e));
                    SessionError::ClientProtocol(e).to_string()
                }
                Err(e) => e.to_string(),
            },
            Either::Right((why, _)) => {
                let reason = why.reason();
                ended_by_us = Some(why);
                reason
            }
        }
    };
    if let Some(why) = ended_by_us {
        super::ending::say_goodbye(last_word, why).await;
    }
    let end = SessionEnd {
        reason: reason.clone(),
        bytes_client_to_target: entry.bytes_up.get(),
        bytes_target_to_client: entry.bytes_down.get(),
        duration_ns: started.elapsed().as_nanos() as u64,
    };
    if let Err(e) = recording.end(end).await {
        warn!(session = %entry.id, error = %e, "session end not recorded");
    }
    if let Some(k) = cancel {
        ctx.shared.cancel.remove(k);
    }
    reason
}

/// Just-in-time access: the connection waits for a reviewer unless an
/// access window granted earlier covers this identity on this target.
async fn access_window(
    ctx: &ShardCtx,
    target: &TargetConfig,
    entry: &SessionEntry,
    identity: &Identity,
) -> Result<(), String> {
    let pending = ctx.shared.broker.request_access(ApprovalRequest {
        session_id: entry.id.to_string(),
        requester: identity.subject.clone(),
        requester_groups: identity.groups.clone(),
        target: target.name.clone(),
        statement: String::new(),
        rule: "require_approval_to_connect".into(),
        reviewer_groups: target.reviewer_groups.clone(),
    });
    if pending.id != 0 {
        info!(session = %entry.id, subject = %identity.subject, approval = pending.id, "connection held for access approval");
        *entry.current_statement.borrow_mut() = Some("[awaiting access approval]".into());
    }
    let decision = std::pin::pin!(pending.decision());
    let decision = match select(decision, entry.kill.killed()).await {
        Either::Left((d, _)) => d,
        Either::Right((k, _)) => return Err(k.to_string()),
    };
    *entry.current_statement.borrow_mut() = None;
    match decision {
        ApprovalDecision::Approved { by, .. } => {
            info!(session = %entry.id, by = %by, "access approved");
            Ok(())
        }
        ApprovalDecision::Denied { by, reason } => Err(format!("access denied by {by}: {reason}")),
        ApprovalDecision::TimedOut => Err("access was not approved in time".into()),
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

struct ClientSide<'a> {
    ctx: &'a ShardCtx,
    entry: &'a SessionEntry,
    target: &'a TargetConfig,
    identity: &'a Arc<Identity>,
    recording: &'a SessionRecording,
    reader: FrameReader,
    writer: WriteHalf,
    flow: &'a RefCell<Flow>,
    last_activity: &'a std::cell::Cell<Instant>,
}

impl ClientSide<'_> {
    async fn run(mut self, inspector: &mut Inspector<'_>) -> Result<(), SessionError> {
        // Batches are counted in the ReadyForQuery messages they produce:
        // one per Query, one per Sync.
        let mut batch: u64 = 0;
        let mut parses_in_batch: u32 = 0;
        let mut binds_in_batch: u32 = 0;
        let mut closes_in_batch: u32 = 0;
        // A Bind or Execute since the last Sync: it may change the lexical
        // mode before the server parses what follows in the same batch.
        let mut ran_in_batch = false;
        let mut skipping = false;
        let mut segments: Vec<Bytes> = Vec::with_capacity(4);
        let mut terminate = false;
        loop {
            self.reader.fill().await?;
            self.last_activity.set(Instant::now());
            let mut pos = 0;
            while let Some(len) = self.reader.frame_len_at(pos)? {
                let t = self.reader.buf[pos];
                let action = if skipping && t != tag::SYNC {
                    // After a blocked statement the batch is void until Sync,
                    // as the server would treat it after an error.
                    Action::Drop
                } else {
                    match t {
                        tag::QUERY | tag::PARSE => {
                            let started = Instant::now();
                            {
                                let flow = self.flow.borrow();
                                inspector.standard_conforming_strings =
                                    flow.standard_conforming_strings;
                                inspector.mode_settled = !ran_in_batch && flow.ready_seen >= batch;
                            }
                            let (decision, statement) = {
                                let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                                let sql = if t == tag::QUERY {
                                    strip_nul(body)
                                } else {
                                    pg::Parse::parse_body(body)
                                        .map_err(SessionError::ClientProtocol)?
                                        .query
                                };
                                (inspector.judge(sql), shown(sql))
                            };
                            let decision = match decision {
                                Decision::Approve { message, rule } => {
                                    // Everything before this statement goes on; the
                                    // statement itself waits for a reviewer.
                                    if pos > 0 {
                                        segments.push(self.reader.buf.split_to(pos).freeze());
                                        pos = 0;
                                    }
                                    self.forward(&mut segments).await?;
                                    let d =
                                        self.await_approval(&statement, &message, &rule).await?;
                                    inspector.approved(matches!(
                                        d,
                                        Decision::Allow | Decision::Audit { .. }
                                    ));
                                    d
                                }
                                d => {
                                    self.note(&statement, &d, None).await?;
                                    d
                                }
                            };
                            self.ctx
                                .shared
                                .metrics
                                .shard(self.ctx.id)
                                .statement_added_latency(started.elapsed());
                            let (decision, copy_probe) = copy_columns(
                                self.flow,
                                t,
                                &self.reader.buf[pos..pos + len],
                                decision,
                            )?;
                            if t == tag::QUERY {
                                batch += 1;
                                match decision {
                                    Decision::Block { message, rule } if rule == UNCLASSIFIED => {
                                        let body =
                                            &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                                        let (bytes, p) =
                                            probed_error(strip_nul(body), &message, &rule, true)?;
                                        self.flow.borrow_mut().injections.push_back(Injection {
                                            batch: batch - 1,
                                            parses_before: 0,
                                            binds_before: 0,
                                            probe: Some(Probe {
                                                closes_before: 0,
                                                refusal: p,
                                            }),
                                        });
                                        Action::Replace(bytes)
                                    }
                                    Decision::Block { message, rule } => {
                                        let mut b = BytesMut::new();
                                        pg::encode_query(
                                            &mut b,
                                            raise_sql(&message, &rule).as_bytes(),
                                        )
                                        .map_err(SessionError::ClientProtocol)?;
                                        Action::Replace(b.freeze())
                                    }
                                    _ => match copy_probe {
                                        // Its Sync is answered first.
                                        Some(b) => {
                                            batch += 1;
                                            Action::Replace(b)
                                        }
                                        None => Action::Keep,
                                    },
                                }
                            } else {
                                match decision {
                                    Decision::Block { message, rule } => {
                                        skipping = true;
                                        let (bytes, probe) = if rule == UNCLASSIFIED {
                                            let body =
                                                &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                                            let sql = pg::Parse::parse_body(body)
                                                .map_err(SessionError::ClientProtocol)?
                                                .query;
                                            let (bytes, _) =
                                                probed_error(sql, &message, &rule, false)?;
                                            let probe = Probe {
                                                closes_before: closes_in_batch,
                                                refusal: None,
                                            };
                                            (bytes, Some(probe))
                                        } else {
                                            (injected_error(&message, &rule)?, None)
                                        };
                                        self.flow.borrow_mut().injections.push_back(Injection {
                                            batch,
                                            parses_before: parses_in_batch,
                                            binds_before: binds_in_batch,
                                            probe,
                                        });
                                        Action::Replace(bytes)
                                    }
                                    _ => {
                                        parses_in_batch += 1;
                                        match copy_probe {
                                            Some(b) => {
                                                parses_in_batch += 1;
                                                closes_in_batch += 1;
                                                Action::Replace(b)
                                            }
                                            None => Action::Keep,
                                        }
                                    }
                                }
                            }
                        }
                        tag::BIND => {
                            binds_in_batch += 1;
                            ran_in_batch = true;
                            Action::Keep
                        }
                        tag::EXECUTE => {
                            ran_in_batch = true;
                            Action::Keep
                        }
                        tag::CLOSE => {
                            closes_in_batch += 1;
                            Action::Keep
                        }
                        tag::SYNC => {
                            skipping = false;
                            batch += 1;
                            parses_in_batch = 0;
                            binds_in_batch = 0;
                            closes_in_batch = 0;
                            ran_in_batch = false;
                            Action::Keep
                        }
                        tag::FUNCTION_CALL => {
                            // Answered with one ReadyForQuery, like a Query.
                            batch += 1;
                            let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                            let oid = pg::FunctionCall::parse_body(body)
                                .map_err(SessionError::ClientProtocol)?
                                .function_oid;
                            let d = inspector.judge_function_call(oid);
                            let statement = super::fastpath::shown(oid);
                            self.note(&statement, &d, None).await?;
                            match d {
                                Decision::Allow | Decision::Audit { .. } => Action::Keep,
                                Decision::Block { message, rule }
                                | Decision::Approve { message, rule } => {
                                    // The server answers our statement with the
                                    // error and ReadyForQuery the client waits
                                    // for, and aborts a transaction block as a
                                    // failed call would.
                                    let mut b = BytesMut::new();
                                    pg::encode_query(&mut b, raise_sql(&message, &rule).as_bytes())
                                        .map_err(SessionError::ClientProtocol)?;
                                    Action::Replace(b.freeze())
                                }
                            }
                        }
                        tag::TERMINATE => {
                            terminate = true;
                            Action::Keep
                        }
                        tag::DESCRIBE
                        | tag::FLUSH
                        | tag::COPY_DATA
                        | tag::COPY_DONE
                        | tag::COPY_FAIL => Action::Keep,
                        other => {
                            return Err(SessionError::Refused(format!(
                                "unexpected message {:?} from the client",
                                pg::TagName(other)
                            )));
                        }
                    }
                };
                track_client(self.flow, &self.reader.buf[pos..pos + len], &action)?;
                cut(&mut self.reader.buf, &mut segments, &mut pos, len, action);
                if terminate {
                    break;
                }
            }
            if pos > 0 {
                segments.push(self.reader.buf.split_to(pos).freeze());
            }
            self.forward(&mut segments).await?;
            if terminate {
                return Ok(());
            }
        }
    }

    /// Record, then send, what is ready for the upstream.
    async fn forward(&mut self, segments: &mut Vec<Bytes>) -> Result<(), SessionError> {
        forward(
            &mut self.writer,
            segments,
            self.recording,
            self.last_activity.get(),
            Peer::Upstream,
            &self.entry.bytes_up,
            &self.ctx.stats().bytes_client_to_upstream,
        )
        .await
    }

    /// Hold a statement for a reviewer; the answer as an allow or a block.
    async fn await_approval(
        &self,
        statement: &str,
        message: &str,
        rule: &str,
    ) -> Result<Decision, SessionError> {
        let broker = &self.ctx.shared.broker;
        let pending = broker.request(ApprovalRequest {
            session_id: self.entry.id.to_string(),
            requester: self.identity.subject.clone(),
            requester_groups: self.identity.groups.clone(),
            target: self.target.name.clone(),
            statement: statement.to_string(),
            rule: rule.to_string(),
            reviewer_groups: self.target.reviewer_groups.clone(),
        });
        info!(session = %self.entry.id, rule, approval = pending.id, statement, "statement held for approval");
        *self.entry.current_statement.borrow_mut() =
            Some(format!("[awaiting approval] {statement}"));
        let decision = std::pin::pin!(pending.decision());
        let decision = match select(decision, self.entry.kill.killed()).await {
            Either::Left((d, _)) => d,
            Either::Right((k, _)) => return Err(SessionError::Refused(k.to_string())),
        };
        let (resolved, outcome) = match decision {
            ApprovalDecision::Approved { by, reason } => (
                Decision::Audit {
                    rule: rule.to_string(),
                },
                format!(
                    "approved by {by}{}",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    }
                ),
            ),
            ApprovalDecision::Denied { by, reason } => (
                Decision::Block {
                    message: if reason.is_empty() {
                        format!("{message} (denied by {by})")
                    } else {
                        format!("denied by {by}: {reason}")
                    },
                    rule: rule.to_string(),
                },
                format!("denied by {by}: {reason}"),
            ),
            ApprovalDecision::TimedOut => (
                Decision::Block {
                    message: format!("{message} (no reviewer approved it in time)"),
                    rule: rule.to_string(),
                },
                "timed out".to_string(),
            ),
        };
        info!(session = %self.entry.id, rule, outcome = %outcome, "approval decided");
        self.note(statement, &resolved, Some(outcome)).await?;
        Ok(resolved)
    }

    /// Count, log and record a judged statement.
    async fn note(
        &self,
        statement: &str,
        d: &Decision,
        approval: Option<String>,
    ) -> Result<(), SessionError> {
        let m = self.ctx.shared.metrics.shard(self.ctx.id);
        match d {
            Decision::Block { rule, .. } => {
                m.statement(StatementVerdict::Block);
                info!(session = %self.entry.id, rule = %rule, statement, "statement blocked");
            }
            Decision::Audit { rule } => {
                m.statement(StatementVerdict::Audit);
                info!(session = %self.entry.id, rule = %rule, statement, "statement audited");
            }
            Decision::Approve { .. } => m.statement(StatementVerdict::Approve),
            Decision::Allow => {
                m.statement(StatementVerdict::Allow);
            }
        }
        *self.entry.current_statement.borrow_mut() = Some(statement.to_string());
        if self.recording.enabled() {
            self.recording
                .command(CommandEvent {
                    statement: statement.to_string(),
                    verdict: d.verdict().to_string(),
                    rule: d.rule().map(str::to_string),
                    approval,
                })
                .await
                .map_err(|e| SessionError::Refused(format!("recorder failed: {e}")))?;
        }
        Ok(())
    }
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

/// A statement as shown in logs, lists and records (bounded).
fn shown(sql: &[u8]) -> String {
    const MAX: usize = 8192;
    String::from_utf8_lossy(&sql[..sql.len().min(MAX)]).into_owned()
}

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

struct UpstreamSide<'a> {
    ctx: &'a ShardCtx,
    entry: &'a SessionEntry,
    rt: &'a TargetRuntime,
    identity: &'a Arc<Identity>,
    recording: &'a SessionRecording,
    reader: FrameReader,
    writer: WriteHalf,
    flow: &'a RefCell<Flow>,
    last_activity: &'a std::cell::Cell<Instant>,
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

impl UpstreamSide<'_> {
    async fn run(mut self) -> Result<(), SessionError> {
        let masking = self.rt.masking.as_ref();
        // The current result's plan (from the shape tracker), and the
        // caller's content plan for COPY rows and server texts.
        let mut rows = RowPlan::default();
        let mut caller = ResultPlan::default();
        if let Some(m) = masking {
            m.plan_caller(&self.identity.groups, &mut caller);
        }
        let mut copy_out = false;
        let mut copy = CopyOut::default();
        let mut scratch = MaskScratch::default();
        let mut ranges: Vec<Option<Range<usize>>> = Vec::new();
        let mut batch: u64 = 0;
        let mut parses_seen: u32 = 0;
        let mut binds_seen: u32 = 0;
        let mut closes_seen: u32 = 0;
        let mut segments: Vec<Bytes> = Vec::with_capacity(4);
        loop {
            if let Err(e) = self.reader.fill().await {
                // The target went away (or spoke garbage) mid-session: tell
                // the client in protocol terms before the connection closes.
                let mut out = BytesMut::new();
                fatal(
                    &mut out,
                    sqlstate::CONNECTION_FAILURE,
                    "the target closed the connection unexpectedly",
                );
                let _ = self.writer.write_all(out.freeze()).await;
                return Err(e);
            }
            self.last_activity.set(Instant::now());
            let mut pos = 0;
            while let Some(len) = self.reader.frame_len_at(pos)? {
                let t = self.reader.buf[pos];
                let probe_drop =
                    (self.flow.borrow_mut().shapes.as_mut()).is_some_and(|s| s.copy_probe_drop(t));
                if let Some(m) = masking
                    && let Err(why) = self.shape_step(m, &mut rows, &mut copy, t, pos, len)
                {
                    return self.refuse_result(&mut segments, pos, why).await;
                }
                let action = match t {
                    tag::DATA_ROW if rows.mode != RowMode::Off => {
                        let m = masking
                            .ok_or(SessionError::Refused("masking plan without policy".into()))?;
                        self.mask_row(m, &rows, pos, len, &mut scratch, &mut ranges)?
                    }
                    tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                        copy_out = masking.is_some() && !caller.is_noop() && !copy.active();
                        Action::Keep
                    }
                    tag::COPY_DATA if copy.active() => {
                        let m = masking
                            .ok_or(SessionError::Refused("masking plan without policy".into()))?;
                        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                        match copy.data(m, body, &mut scratch) {
                            Ok(None) => Action::Keep,
                            Ok(Some(b)) if b.is_empty() => Action::Drop,
                            Ok(Some(b)) => {
                                let mut out = BytesMut::with_capacity(b.len() + 5);
                                pg::encode_copy_data(&mut out, &b)
                                    .map_err(SessionError::UpstreamProtocol)?;
                                Action::Replace(out.freeze())
                            }
                            Err(why) => return self.refuse_result(&mut segments, pos, why).await,
                        }
                    }
                    tag::COPY_DONE if copy.active() => match copy.done() {
                        Ok(()) => Action::Keep,
                        Err(why) => return self.refuse_result(&mut segments, pos, why).await,
                    },
                    tag::COPY_DATA if copy_out => {
                        let m = masking
                            .ok_or(SessionError::Refused("masking plan without policy".into()))?;
                        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                        match m.mask_text(&caller, body, &mut scratch) {
                            MaskOutcome::Unchanged => Action::Keep,
                            MaskOutcome::Replaced(v) => {
                                let mut b = BytesMut::new();
                                pg::encode_copy_data(&mut b, v)
                                    .map_err(SessionError::UpstreamProtocol)?;
                                Action::Replace(b.freeze())
                            }
                            MaskOutcome::Null => {
                                let mut b = BytesMut::new();
                                pg::encode_copy_data(&mut b, b"\\N\n")
                                    .map_err(SessionError::UpstreamProtocol)?;
                                Action::Replace(b.freeze())
                            }
                        }
                    }
                    tag::COPY_DONE | tag::COMMAND_COMPLETE => {
                        copy_out = false;
                        Action::Keep
                    }
                    tag::PARSE_COMPLETE => {
                        parses_seen += 1;
                        self.injected(batch, |i| {
                            i.parses_before + 1 == parses_seen
                                || (i.probe.is_some() && i.parses_before + 2 == parses_seen)
                        })
                    }
                    tag::CLOSE_COMPLETE => {
                        closes_seen += 1;
                        self.injected(batch, |i| {
                            i.probe
                                .as_ref()
                                .is_some_and(|p| p.closes_before + 1 == closes_seen)
                        })
                    }
                    tag::BIND_COMPLETE => {
                        binds_seen += 1;
                        self.injected(batch, |i| i.binds_before + 1 == binds_seen)
                    }
                    tag::ERROR_RESPONSE => {
                        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                        match ours_without_context(body) {
                            Some(b) => Action::Replace(b),
                            None => match self.probe_refusal(batch, body) {
                                Action::Keep => {
                                    server_text(masking, &caller, t, body, &mut scratch)
                                }
                                refused => refused,
                            },
                        }
                    }
                    tag::NOTICE_RESPONSE | tag::NOTIFICATION_RESPONSE => {
                        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                        server_text(masking, &caller, t, body, &mut scratch)
                    }
                    tag::PARAMETER_STATUS => {
                        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
                        if let Ok(p) = pg::ParameterStatus::parse_body(body)
                            && p.name == b"standard_conforming_strings"
                        {
                            self.flow.borrow_mut().standard_conforming_strings = p.value != b"off";
                        }
                        if let Some(why) = lexmode::refused_encoding_status(body) {
                            return self.end_for_encoding(why).await;
                        }
                        Action::Keep
                    }
                    tag::READY_FOR_QUERY => {
                        let mut flow = self.flow.borrow_mut();
                        while flow.injections.front().is_some_and(|i| i.batch <= batch) {
                            flow.injections.pop_front();
                        }
                        batch += 1;
                        flow.ready_seen = batch;
                        parses_seen = 0;
                        binds_seen = 0;
                        closes_seen = 0;
                        rows.mode = RowMode::Off;
                        copy_out = false;
                        *self.entry.current_statement.borrow_mut() = None;
                        Action::Keep
                    }
                    _ => Action::Keep,
                };
                let action = if probe_drop { Action::Drop } else { action };
                cut(&mut self.reader.buf, &mut segments, &mut pos, len, action);
            }
            if pos > 0 {
                segments.push(self.reader.buf.split_to(pos).freeze());
            }
            // Recorded as forwarded (after masking), before it is sent.
            forward(
                &mut self.writer,
                &mut segments,
                self.recording,
                self.last_activity.get(),
                Peer::Client,
                &self.entry.bytes_down,
                &self.ctx.stats().bytes_upstream_to_client,
            )
            .await?;
            if scratch.counters.by_column > 0 || scratch.counters.by_detector.iter().any(|c| *c > 0)
            {
                self.ctx
                    .shared
                    .metrics
                    .shard(self.ctx.id)
                    .masked_counts(&scratch.counters);
                scratch.counters = Default::default();
            }
        }
    }

    /// The gateway's refusal in place of a simple-Query probe's 42601 that
    /// has no position (see `probe`); any other error passes.
    fn probe_refusal(&self, batch: u64, body: &[u8]) -> Action {
        let flow = self.flow.borrow();
        match flow.injections.front() {
            Some(Injection {
                batch: b,
                probe: Some(Probe {
                    refusal: Some(r), ..
                }),
                ..
            }) if *b == batch && probe::is_unpositioned_syntax_error(body) => {
                Action::Replace(r.clone())
            }
            _ => Action::Keep,
        }
    }

    /// The server switched to a client encoding that can hide a backslash
    /// (a path no statement check saw, such as a function): end the session.
    async fn end_for_encoding(&mut self, why: String) -> Result<(), SessionError> {
        warn!(session = %self.entry.id, reason = %why, "session ended: client encoding");
        let mut out = BytesMut::new();
        fatal(&mut out, sqlstate::FEATURE_NOT_SUPPORTED, &why);
        let _ = self.writer.write_all(out.freeze()).await;
        Err(SessionError::Refused(why))
    }

    /// Drop this frame if it answers a message the gateway injected.
    fn injected(&self, batch: u64, is_ours: impl Fn(&Injection) -> bool) -> Action {
        let flow = self.flow.borrow();
        match flow.injections.front() {
            Some(i) if i.batch == batch && is_ours(i) => Action::Drop,
            _ => Action::Keep,
        }
    }

    /// Feeds one upstream message to the shape tracker; plans the result it
    /// starts, if any.
    fn shape_step(
        &self,
        m: &crate::policy::mask::MaskPolicy,
        rows: &mut RowPlan,
        copy: &mut CopyOut,
        t: u8,
        pos: usize,
        len: usize,
    ) -> Result<(), Refusal> {
        let body = &self.reader.buf[pos + pg::HEADER_LEN..pos + len];
        let mut flow = self.flow.borrow_mut();
        let scs = flow.standard_conforming_strings;
        let Some(shapes) = flow.shapes.as_mut() else {
            return Ok(());
        };
        // A malformed response is the frame reader's and the arms' to
        // reject; the tracker only reads well-formed ones.
        match shapes.upstream_message(t, body) {
            Ok(Step::Result(shape)) if t == tag::DATA_ROW || t == tag::ROW_DESCRIPTION => {
                rows.start(m, &self.identity.groups, shape, scs)
            }
            Ok(Step::Copy(shape)) => copy.start(m, &self.identity.groups, shape, body, scs),
            Ok(Step::End) => {
                rows.mode = RowMode::Off;
                copy.end();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Ends the session over a result it may not relay: what was read
    /// before it goes on, then a FATAL error that says why.
    async fn refuse_result(
        &mut self,
        segments: &mut Vec<Bytes>,
        pos: usize,
        why: Refusal,
    ) -> Result<(), SessionError> {
        if pos > 0 {
            segments.push(self.reader.buf.split_to(pos).freeze());
        }
        let mut out = BytesMut::new();
        fatal(&mut out, sqlstate::INSUFFICIENT_PRIVILEGE, &why.to_string());
        segments.push(out.freeze());
        warn!(session = %self.entry.id, reason = %why, "result refused");
        forward(
            &mut self.writer,
            segments,
            self.recording,
            self.last_activity.get(),
            Peer::Client,
            &self.entry.bytes_down,
            &self.ctx.stats().bytes_upstream_to_client,
        )
        .await?;
        Err(SessionError::Refused(why.to_string()))
    }

    fn mask_row(
        &mut self,
        m: &crate::policy::mask::MaskPolicy,
        rows: &RowPlan,
        pos: usize,
        len: usize,
        scratch: &mut MaskScratch,
        ranges: &mut Vec<Option<Range<usize>>>,
    ) -> Result<Action, SessionError> {
        let body_at = pos + pg::HEADER_LEN;
        ranges.clear();
        {
            let body = &self.reader.buf[body_at..pos + len];
            let row = DataRow::parse_body(body).map_err(SessionError::UpstreamProtocol)?;
            ranges.extend(row.value_ranges());
        }
        let mut replacements: Vec<(usize, Option<Vec<u8>>)> = Vec::new();
        for (col, r) in ranges.iter().enumerate() {
            let Some(r) = r else { continue };
            if rows.mode == RowMode::AllNull {
                // Shape unknown: NULL is valid for every type and format.
                scratch.counters.by_column += 1;
                replacements.push((col, None));
                continue;
            }
            let kind = rows.kinds.get(col).copied().unwrap_or(Kind::Text);
            let value = &mut self.reader.buf[body_at + r.start..body_at + r.end];
            match values::mask(m, &rows.plan, col, kind, value, scratch) {
                Masked::Unchanged | Masked::InPlace => {}
                Masked::Replace(v) => replacements.push((col, Some(v))),
                Masked::Null => replacements.push((col, None)),
            }
        }
        if replacements.is_empty() {
            return Ok(Action::Keep);
        }
        let body = &self.reader.buf[body_at..pos + len];
        let row = DataRow::parse_body(body).map_err(SessionError::UpstreamProtocol)?;
        let reps: Vec<(usize, Option<&[u8]>)> = replacements
            .iter()
            .map(|(c, v)| (*c, v.as_deref()))
            .collect();
        let mut b = BytesMut::with_capacity(len + 64);
        pg::encode_data_row_replacing(&mut b, &row, &reps)
            .map_err(SessionError::UpstreamProtocol)?;
        Ok(Action::Replace(b.freeze()))
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
