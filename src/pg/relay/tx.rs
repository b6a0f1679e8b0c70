//! Transaction mode (`[target.postgres.pool] mode = "transaction"`): a
//! caller holds a server connection only while it has work on it.
//!
//! The client side takes a connection from the shard's pool when the
//! caller starts work holding none (its first whole message after the
//! last ReadyForQuery 'I' that was given back), and hands its read half to
//! the upstream side over a channel. The upstream side, after relaying a
//! ReadyForQuery 'I' that answers the last ReadyForQuery-producing message
//! the caller sent (pipelined Syncs counted), with no extended-protocol
//! message since the last Sync, nothing passing in pieces and nothing the
//! gateway added still unanswered, *parks* the read half; a parked
//! connection goes back to the pool as soon as the client side is not in
//! the middle of a read of its own (it may be judging a message that will
//! go to this very connection: then it takes the read half back instead).
//!
//! No reset query runs between callers: statements that would leave
//! session state are refused (`crate::pg::txmode`), named prepared
//! statements are renamed per server connection (`crate::pg::txstmts`),
//! and a connection going back is checked for state set where no
//! statement's text showed it (`txcheck.rs`) before the pool has it.
//! The client's cancel key follows the connection it holds, and leads
//! nowhere while it holds none.

use super::*;
use crate::config::PoolConfig;
use crate::pg::cancel::CancelMap;
use crate::pg::pool::{CheckoutError, Lease};
use crate::pg::session::login_pooled;
use crate::pg::txstmts::{Out, Renamer, ServerStatements};

/// What a transaction-mode relay needs to take connections.
pub(super) struct TxEnv<'a> {
    pub target: &'a TargetConfig,
    pub rt: &'a TargetRuntime,
    pub params: &'a [(Vec<u8>, Vec<u8>)],
    pub cfg: &'a PoolConfig,
    pub shard: usize,
    pub share: usize,
    pub cancels: &'a CancelMap,
    pub client_key: Option<(i32, [u8; 4])>,
    pub budget: std::rc::Rc<crate::limits::SessionBudget>,
    /// To the upstream side: the next connection to read, or why there is
    /// none (the client is told, the session ends).
    pub next: async_channel::Sender<Next>,
}

/// What the upstream side reads next.
pub(super) enum Next {
    Reader(Box<FrameReader>),
    Failed { code: &'static str, why: String },
}

/// A held server connection but its read half.
pub(super) struct Held {
    lease: Lease,
    /// `None` while the client side writes to it.
    writer: Option<WriteHalf>,
    greeting: BytesMut,
    key: Option<(i32, Vec<u8>)>,
    method: &'static str,
    statements: ServerStatements,
}

/// Transaction mode's part of the relay's shared state.
#[derive(Default)]
pub(super) struct Tx {
    held: Option<Held>,
    /// The upstream side's read half, parked at an idle point.
    parked: Option<FrameReader>,
    /// The client side is handling a read: what it judges goes to the
    /// connection held now, which must not go back meanwhile.
    pub client_busy: bool,
    /// ReadyForQuery-producing messages the client side has handled.
    pub sent: u64,
    /// An extended-protocol message since the last Sync (or one passing
    /// in pieces).
    pub open: bool,
    pub renamer: Renamer,
}

impl Tx {
    /// The connection the relay starts with (the greeting's).
    pub(super) fn start(
        up_w: WriteHalf,
        lease: Option<Lease>,
        greeting: &BytesMut,
        key: &Option<(i32, Vec<u8>)>,
        method: &'static str,
    ) -> Tx {
        let held = lease.map(|mut lease| Held {
            statements: std::mem::take(&mut lease.statements),
            lease,
            writer: Some(up_w),
            greeting: greeting.clone(),
            key: key.clone(),
            method,
        });
        Tx {
            held,
            ..Tx::default()
        }
    }
}

/// Give a parked connection back to the pool if nothing holds it.
pub(super) fn try_release(flow: &RefCell<Flow>, env: &TxEnv<'_>) {
    let mut f = flow.borrow_mut();
    let (idle, ready_seen, no_injections) = (f.idle, f.ready_seen, f.injections.is_empty());
    let Some(tx) = f.tx.as_mut() else { return };
    let ready = idle
        && no_injections
        && ready_seen == tx.sent
        && !tx.open
        && !tx.client_busy
        && tx.renamer.settled()
        && tx.parked.is_some()
        && tx.held.as_ref().is_some_and(|h| h.writer.is_some());
    if !ready {
        return;
    }
    let (Some(mut reader), Some(held)) = (tx.parked.take(), tx.held.take()) else {
        return;
    };
    reader.settle();
    let buf = if reader.buf.capacity() > 64 * 1024 {
        BytesMut::new()
    } else {
        std::mem::take(&mut reader.buf)
    };
    let Held {
        mut lease,
        writer,
        greeting,
        key,
        method,
        statements,
    } = held;
    let Some(writer) = writer else { return };
    lease.statements = statements;
    if let Some(k) = env.client_key {
        env.cancels.retarget(k, None);
    }
    match &env.cfg.server_check_query {
        Some(q) => super::txcheck::check_then_give_back(
            q.clone(),
            env.target.name.clone(),
            super::txcheck::Returning {
                lease,
                reader: reader.half,
                buf,
                writer,
                greeting,
                key,
                method,
            },
        ),
        None => lease.give_back(reader.half, writer, buf, greeting, key, method),
    }
}

impl UpstreamSide<'_> {
    /// Whether the connection may be parked now (see the module doc).
    pub(super) fn parkable(&self) -> bool {
        if self.passing.active() || !self.reader.buf.is_empty() {
            return false;
        }
        let f = self.flow.borrow();
        f.idle
            && f.injections.is_empty()
            && f.tx
                .as_ref()
                .is_some_and(|tx| f.ready_seen == tx.sent && !tx.open && tx.renamer.settled())
    }

    /// A ParseComplete or CloseComplete that answers what the renaming
    /// added: dropped before anything above sees it.
    pub(super) fn renamer_drops(&self, t: u8) -> bool {
        if !matches!(t, tag::PARSE_COMPLETE | tag::CLOSE_COMPLETE) {
            return false;
        }
        let mut f = self.flow.borrow_mut();
        f.tx.as_mut().is_some_and(|tx| tx.renamer.incoming(t))
    }
}

/// Whether the caller left with answers still to come (then they are
/// awaited, and the connection goes back if it ends idle). A caller that
/// left inside a transaction, everything answered, has its connection
/// closed at once (the server rolls back).
pub(super) fn answers_due(flow: &RefCell<Flow>) -> bool {
    let f = flow.borrow();
    f.tx.as_ref().is_some_and(|tx| {
        tx.held.is_some() && (f.ready_seen < tx.sent || tx.open || !tx.renamer.settled())
    })
}

/// ReadyForQuery in transaction mode: the renaming's batch is over.
pub(super) fn on_ready(flow: &mut Flow) {
    if let Some(tx) = flow.tx.as_mut() {
        let mut none = ServerStatements::default();
        let conn = tx.held.as_mut().map_or(&mut none, |h| &mut h.statements);
        tx.renamer.ready(conn);
    }
}

/// The upstream side in transaction mode: read one connection until it
/// parks, then wait for the next. Ends when the client side is gone.
pub(super) async fn upstream(
    mut side: UpstreamSide<'_>,
    next: async_channel::Receiver<Next>,
    env: &TxEnv<'_>,
) -> Result<(), SessionError> {
    let mut st = side.down();
    loop {
        side.run_with(&mut st, true).await?;
        let flow = side.flow;
        // Park the read half: `side.reader` is moved out until the next.
        if let Some(tx) = flow.borrow_mut().tx.as_mut() {
            tx.parked = Some(side.reader);
        }
        try_release(flow, env);
        match next.recv().await {
            Ok(Next::Reader(r)) => side.reader = *r,
            Ok(Next::Failed { code, why }) => {
                let mut out = BytesMut::new();
                fatal(&mut out, code, &why);
                let _ = send(&mut side.writer, &mut out, Peer::Client).await;
                return Err(SessionError::Refused(why));
            }
            Err(_) => return Ok(()),
        }
    }
}

impl ClientSide<'_> {
    /// Before the client side handles a read's messages, or forwards:
    /// hold a connection (take the parked one back, or one from the pool).
    pub(super) async fn hold(&mut self) -> Result<(), SessionError> {
        let Some(env) = self.tx else { return Ok(()) };
        let (held, parked) = {
            let mut f = self.flow.borrow_mut();
            let Some(tx) = f.tx.as_mut() else {
                return Ok(());
            };
            tx.client_busy = true;
            (tx.held.is_some(), tx.parked.take())
        };
        if held {
            if let Some(r) = parked {
                send_next(env, Next::Reader(Box::new(r)))?;
            }
            return Ok(());
        }
        let up = match login_pooled(
            env.target,
            env.rt,
            env.params,
            env.cfg,
            (env.shard, env.share),
        )
        .await
        {
            Ok(up) => up,
            Err(e) => {
                let (code, why) = match e {
                    CheckoutError::Exhausted => (
                        sqlstate::TOO_MANY_CONNECTIONS,
                        format!(
                            "no upstream connection came free in the pool of target \"{}\" within {}",
                            env.target.name,
                            humantime::format_duration(env.cfg.checkout_timeout)
                        ),
                    ),
                    CheckoutError::Login(e) => {
                        warn!(session = %self.entry.id, error = %e, "transaction mode: upstream login failed");
                        (
                            sqlstate::CONNECTION_FAILURE,
                            "tollgate could not log in to the target".to_string(),
                        )
                    }
                };
                send_next(
                    env,
                    Next::Failed {
                        code,
                        why: why.clone(),
                    },
                )?;
                return Err(SessionError::Refused(why));
            }
        };
        let UpstreamReady {
            reader,
            writer,
            buf,
            greeting,
            key,
            method,
            pool,
            ..
        } = up;
        let Some(mut lease) = pool else {
            return Err(SessionError::Refused(
                "pooled connection without a lease".into(),
            ));
        };
        if let (Some(k), Some((pid, secret))) = (env.client_key, &key) {
            env.cancels.retarget(k, Some((*pid, secret.clone())));
        }
        let held = Held {
            statements: std::mem::take(&mut lease.statements),
            lease,
            writer: Some(writer),
            greeting,
            key,
            method,
        };
        if let Some(tx) = self.flow.borrow_mut().tx.as_mut() {
            tx.held = Some(held);
        }
        let reader = FrameReader::new(
            reader,
            buf,
            Caps::backend(&Limits::default()),
            Peer::Upstream,
        )
        .with_budget(env.budget.clone(), crate::limits::Direction::FromUpstream);
        send_next(env, Next::Reader(Box::new(reader)))
    }

    /// Whether the caller holds a server connection now (in transaction
    /// mode; without a pool it always does).
    pub(super) fn holds(&self) -> bool {
        self.tx.is_none()
            || self
                .flow
                .borrow()
                .tx
                .as_ref()
                .is_some_and(|tx| tx.held.is_some())
    }

    /// The client side is done with a read: a connection parked meanwhile
    /// may go back.
    pub(super) fn unhold(&mut self) {
        let Some(env) = self.tx else { return };
        if let Some(tx) = self.flow.borrow_mut().tx.as_mut() {
            tx.client_busy = false;
        }
        try_release(self.flow, env);
    }

    /// What the client side's batch says now, for the release check.
    pub(super) fn publish(&self, sent: u64, open: bool) {
        if let Some(tx) = self.flow.borrow_mut().tx.as_mut() {
            tx.sent = sent;
            tx.open = open || self.passing.active();
        }
    }

    /// Rename what goes out for one frame (`frame`, the caller's) at the
    /// upstream-facing edge: `action` is what the layers above decided.
    pub(super) fn rename(&self, frame: &[u8], action: Action) -> Result<Action, SessionError> {
        if self.tx.is_none() || matches!(action, Action::Drop) {
            return Ok(action);
        }
        let mut f = self.flow.borrow_mut();
        let Some(tx) = f.tx.as_mut() else {
            return Ok(action);
        };
        let Some(held) = tx.held.as_mut() else {
            return Err(SessionError::Refused(
                "transaction mode: no connection held (rename)".into(),
            ));
        };
        let (renamer, conn) = (&mut tx.renamer, &mut held.statements);
        let before = renamer.reprepares;
        let out = match action {
            Action::Drop => Action::Drop,
            Action::Keep => match renamer.outgoing(frame, true, conn) {
                Ok(Out::Same) => Action::Keep,
                Ok(Out::Replaced(b)) => Action::Replace(b),
                Err(e) => return Err(SessionError::ClientProtocol(e)),
            },
            Action::Replace(b) => {
                let mut all = BytesMut::with_capacity(b.len());
                let mut rest = &b[..];
                while let Some(len) = rest
                    .get(1..pg::HEADER_LEN)
                    .and_then(|l| l.try_into().ok())
                    .map(|l| 1 + u32::from_be_bytes(l) as usize)
                {
                    let Some(one) = rest.get(..len) else { break };
                    // The client's own frame rides in some replacements
                    // (a COPY behind its column probe): only `tollgate_`
                    // names are the gateway's.
                    match renamer.outgoing(one, false, conn) {
                        Ok(Out::Same) => all.extend_from_slice(one),
                        Ok(Out::Replaced(r)) => all.extend_from_slice(&r),
                        Err(e) => return Err(SessionError::ClientProtocol(e)),
                    }
                    rest = &rest[len..];
                }
                Action::Replace(all.freeze())
            }
        };
        let added = renamer.reprepares - before;
        if added > 0 {
            held.lease.count_reprepares(added);
        }
        Ok(out)
    }

    /// Write to the held connection in transaction mode (its write half is
    /// lent for the write).
    pub(super) async fn forward_tx(
        &mut self,
        segments: &mut Vec<Bytes>,
    ) -> Result<(), SessionError> {
        self.hold().await?;
        let mut w = {
            let mut f = self.flow.borrow_mut();
            f.tx.as_mut()
                .and_then(|tx| tx.held.as_mut())
                .and_then(|h| h.writer.take())
                .ok_or_else(|| {
                    SessionError::Refused("transaction mode: no connection held".into())
                })?
        };
        let r = forward(
            &mut w,
            segments,
            self.recording,
            self.last_activity.get(),
            Peer::Upstream,
            &self.entry.bytes_up,
            &self.ctx.stats().bytes_client_to_upstream,
        )
        .await;
        if let Some(h) = self
            .flow
            .borrow_mut()
            .tx
            .as_mut()
            .and_then(|tx| tx.held.as_mut())
        {
            h.writer = Some(w);
        }
        r
    }
}

fn send_next(env: &TxEnv<'_>, n: Next) -> Result<(), SessionError> {
    env.next
        .try_send(n)
        .map_err(|_| SessionError::Refused("transaction mode: the upstream side is gone".into()))
}
