//! The client → upstream direction of the inspected PostgreSQL relay:
//! every statement (Query, Parse, FunctionCall) judged before a byte of it
//! reaches the target, a blocked one replaced by a statement that makes the
//! target raise the gateway's error, the batch counted so the upstream side
//! can drop the answers to what the gateway injected.

use super::*;

/// Where the client side is in its batch. Batches are counted in the
/// ReadyForQuery messages they produce: one per Query, one per Sync.
#[derive(Default)]
struct Batch {
    n: u64,
    parses: u32,
    binds: u32,
    closes: u32,
    /// A Bind or Execute since the last Sync: it may change the lexical
    /// mode before the server parses what follows in the same batch.
    ran: bool,
    /// After a blocked statement the batch is void until Sync, as the
    /// server would treat it after an error.
    skipping: bool,
    /// An extended-protocol (or COPY) message since the last Sync: the
    /// server may hold state the caller left half-done.
    open: bool,
    /// An extended-protocol message since the last Sync (transaction
    /// mode: the connection is held until the Sync is answered).
    ext: bool,
}

impl ClientSide<'_> {
    pub(super) async fn run(&mut self, inspector: &mut Inspector<'_>) -> Result<(), SessionError> {
        let mut b = Batch::default();
        let mut segments: Vec<Bytes> = Vec::with_capacity(4);
        let mut terminate = false;
        let mut release = false;
        loop {
            // Transaction mode: a connection is held while this read's
            // messages are handled.
            let mut holding = false;
            if let Err(e) = self.reader.fill().await {
                // A caller that just closes leaves its connection as one
                // that says Terminate does.
                if matches!(e, SessionError::ClientClosed)
                    && self.reader.buf.is_empty()
                    && self.releasable(b.n, b.open)
                {
                    self.start_release().await?;
                }
                return Err(e);
            }
            self.last_activity.set(Instant::now());
            let mut pos = 0;
            // Whether a message completed in this read (the frame clock).
            let mut progressed = self.passing.active();
            segments.extend(self.passing.take(&mut self.reader.buf));
            progressed &= !self.passing.active();
            let masking = self.flow.borrow().shapes.is_some();
            while !self.passing.active() {
                let whole_streams = masking || self.tx.is_some();
                let len = match stream::next(&mut self.reader, pos, |t| {
                    stream::client_streamable(t, whole_streams)
                })? {
                    Next::Whole(len) => {
                        progressed = true;
                        len
                    }
                    Next::Partial => break,
                    Next::Large(t, len) => {
                        if t == tag::BIND && !b.skipping {
                            b.binds += 1;
                            b.ran = true;
                        }
                        b.open = true;
                        if self.tx.is_some() && !holding {
                            holding = true;
                            self.hold().await?;
                        }
                        let (buf, passing) = (&mut self.reader.buf, &mut self.passing);
                        passing.start(buf, &mut segments, &mut pos, len, b.skipping);
                        self.publish(b.n, b.ext);
                        break;
                    }
                };
                let t = self.reader.buf[pos];
                // A Flush with no extended-protocol message since the last
                // Sync asks for nothing: the server flushed all it had with
                // its ReadyForQuery. In transaction mode it takes no
                // connection (psycopg's pipeline sends one after its Sync;
                // taking a connection for it held that connection, open,
                // until the caller's next Sync).
                let idle_flush =
                    t == tag::FLUSH && !b.ext && self.tx.is_some() && !holding && !self.holds();
                if self.tx.is_some() && !holding && t != tag::TERMINATE && !idle_flush {
                    holding = true;
                    self.hold().await?;
                }
                let action = if idle_flush || (b.skipping && t != tag::SYNC) {
                    Action::Drop
                } else if t == tag::TERMINATE && self.tx.is_some() {
                    // The server connection is not this caller's to end.
                    terminate = true;
                    Action::Drop
                } else if t == tag::TERMINATE {
                    terminate = true;
                    // A pooled connection left idle is reset, not ended.
                    release = self.releasable(b.n, b.open);
                    if release { Action::Drop } else { Action::Keep }
                } else {
                    self.on_frame(inspector, &mut b, t, &mut pos, len, &mut segments)
                        .await?
                };
                // A Flush leaves nothing half-done on the server: it opens
                // no batch (one after a Sync would keep a pooled
                // connection from going back).
                if !matches!(
                    t,
                    tag::QUERY | tag::SYNC | tag::FUNCTION_CALL | tag::TERMINATE | tag::FLUSH
                ) {
                    b.open = true;
                }
                if matches!(
                    t,
                    tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE
                ) {
                    b.ext = true;
                }
                track_client(self.flow, &self.reader.buf[pos..pos + len], &action)?;
                let action = self.rename(&self.reader.buf[pos..pos + len], action)?;
                self.publish(b.n, b.ext);
                cut(&mut self.reader.buf, &mut segments, &mut pos, len, action);
                if terminate {
                    break;
                }
            }
            if pos > 0 {
                segments.push(self.reader.buf.split_to(pos).freeze());
            }
            if progressed {
                self.frame_clock.progress();
            }
            // Pieces of a long message go to the connection held too.
            holding |= self.tx.is_some() && !segments.is_empty();
            self.forward(&mut segments).await?;
            if holding {
                self.unhold();
            }
            self.frame_clock
                .mark(self.passing.active() || !self.reader.buf.is_empty());
            self.reader.settle();
            if terminate {
                if release {
                    self.start_release().await?;
                }
                return Ok(());
            }
        }
    }

    /// One whole client frame at `*pos..*pos + len` of the read buffer.
    async fn on_frame(
        &mut self,
        inspector: &mut Inspector<'_>,
        b: &mut Batch,
        t: u8,
        pos: &mut usize,
        len: usize,
        segments: &mut Vec<Bytes>,
    ) -> Result<Action, SessionError> {
        match t {
            tag::QUERY | tag::PARSE => {
                let decision = self.judge(inspector, b, t, pos, len, segments).await?;
                let frame = &self.reader.buf[*pos..*pos + len];
                let (decision, copy_probe) = copy_columns(self.flow, t, frame, decision)?;
                if t == tag::QUERY {
                    self.query_action(b, decision, copy_probe, frame)
                } else {
                    self.parse_action(b, decision, copy_probe, frame)
                }
            }
            tag::BIND => {
                b.binds += 1;
                b.ran = true;
                Ok(Action::Keep)
            }
            tag::EXECUTE => {
                b.ran = true;
                Ok(Action::Keep)
            }
            tag::CLOSE => {
                b.closes += 1;
                Ok(Action::Keep)
            }
            tag::SYNC => {
                *b = Batch {
                    n: b.n + 1,
                    ..Batch::default()
                };
                Ok(Action::Keep)
            }
            tag::FUNCTION_CALL => {
                // Answered with one ReadyForQuery, like a Query.
                b.n += 1;
                self.function_call(inspector, &self.reader.buf[*pos..*pos + len])
                    .await
            }
            tag::DESCRIBE | tag::FLUSH | tag::COPY_DATA | tag::COPY_DONE | tag::COPY_FAIL => {
                Ok(Action::Keep)
            }
            other => Err(SessionError::Refused(format!(
                "unexpected message {:?} from the client",
                pg::TagName(other)
            ))),
        }
    }

    /// The verdict on a Query or Parse; a statement held for approval
    /// waits here, after everything before it was sent.
    async fn judge(
        &mut self,
        inspector: &mut Inspector<'_>,
        b: &Batch,
        t: u8,
        pos: &mut usize,
        len: usize,
        segments: &mut Vec<Bytes>,
    ) -> Result<Decision, SessionError> {
        let started = Instant::now();
        {
            let flow = self.flow.borrow();
            inspector.standard_conforming_strings = flow.standard_conforming_strings;
            inspector.mode_settled = !b.ran && flow.ready_seen >= b.n;
        }
        let (decision, statement) = {
            let body = &self.reader.buf[*pos + pg::HEADER_LEN..*pos + len];
            let sql = if t == tag::QUERY {
                strip_nul(body)
            } else {
                pg::Parse::parse_body(body)
                    .map_err(SessionError::ClientProtocol)?
                    .query
            };
            let d = inspector.judge(sql);
            // Transaction mode: session state would reach other callers.
            let d = match self.tx {
                Some(_) if !matches!(d, Decision::Block { .. }) => {
                    let dialect = lexmode::pg_dialect(inspector.standard_conforming_strings);
                    match crate::pg::txmode::refusal(sql, dialect, &mut Vec::new()) {
                        Some(message) => Decision::Block {
                            message,
                            rule: crate::pg::txmode::RULE.into(),
                        },
                        None => d,
                    }
                }
                _ => d,
            };
            (d, shown(sql))
        };
        let decision = match decision {
            Decision::Approve { message, rule } => {
                // Everything before this statement goes on; the
                // statement itself waits for a reviewer.
                if *pos > 0 {
                    segments.push(self.reader.buf.split_to(*pos).freeze());
                    *pos = 0;
                }
                self.frame_clock.progress();
                self.forward(segments).await?;
                let d = self.await_approval(&statement, &message, &rule).await?;
                inspector.approved(matches!(d, Decision::Allow | Decision::Audit { .. }));
                d
            }
            d => {
                self.note(&statement, &d, None, inspector.shadow.as_ref())
                    .await?;
                d
            }
        };
        self.ctx
            .shared
            .metrics
            .shard(self.ctx.id)
            .statement_added_latency(started.elapsed());
        Ok(decision)
    }

    /// What reaches the upstream for a judged Query (`frame`).
    fn query_action(
        &self,
        b: &mut Batch,
        decision: Decision,
        copy_probe: Option<Bytes>,
        frame: &[u8],
    ) -> Result<Action, SessionError> {
        b.n += 1;
        match decision {
            Decision::Block { message, rule } if rule == UNCLASSIFIED => {
                let body = &frame[pg::HEADER_LEN..];
                let (bytes, p) = probed_error(strip_nul(body), &message, &rule, true)?;
                self.flow.borrow_mut().injections.push_back(Injection {
                    batch: b.n - 1,
                    parses_before: 0,
                    binds_before: 0,
                    probe: Some(Probe {
                        closes_before: 0,
                        refusal: p,
                    }),
                });
                Ok(Action::Replace(bytes))
            }
            Decision::Block { message, rule } => {
                let mut out = BytesMut::new();
                pg::encode_query(&mut out, raise_sql(&message, &rule).as_bytes())
                    .map_err(SessionError::ClientProtocol)?;
                Ok(Action::Replace(out.freeze()))
            }
            _ => Ok(match copy_probe {
                // Its Sync is answered first.
                Some(probe) => {
                    b.n += 1;
                    Action::Replace(probe)
                }
                None => Action::Keep,
            }),
        }
    }

    /// What reaches the upstream for a judged Parse (`frame`).
    fn parse_action(
        &self,
        b: &mut Batch,
        decision: Decision,
        copy_probe: Option<Bytes>,
        frame: &[u8],
    ) -> Result<Action, SessionError> {
        let Decision::Block { message, rule } = decision else {
            b.parses += 1;
            return Ok(match copy_probe {
                Some(probe) => {
                    b.parses += 1;
                    b.closes += 1;
                    Action::Replace(probe)
                }
                None => Action::Keep,
            });
        };
        b.skipping = true;
        let (bytes, probe) = if rule == UNCLASSIFIED {
            let sql = pg::Parse::parse_body(&frame[pg::HEADER_LEN..])
                .map_err(SessionError::ClientProtocol)?
                .query;
            let (bytes, _) = probed_error(sql, &message, &rule, false)?;
            let probe = Probe {
                closes_before: b.closes,
                refusal: None,
            };
            (bytes, Some(probe))
        } else {
            (injected_error(&message, &rule)?, None)
        };
        self.flow.borrow_mut().injections.push_back(Injection {
            batch: b.n,
            parses_before: b.parses,
            binds_before: b.binds,
            probe,
        });
        Ok(Action::Replace(bytes))
    }

    /// A fast-path call (`frame`): judged as the statement it stands for;
    /// refused with the server raising our error in its place.
    async fn function_call(
        &self,
        inspector: &mut Inspector<'_>,
        frame: &[u8],
    ) -> Result<Action, SessionError> {
        let oid = pg::FunctionCall::parse_body(&frame[pg::HEADER_LEN..])
            .map_err(SessionError::ClientProtocol)?
            .function_oid;
        let d = inspector.judge_function_call(oid);
        let statement = crate::pg::fastpath::shown(oid);
        self.note(&statement, &d, None, inspector.shadow.as_ref())
            .await?;
        match d {
            Decision::Allow | Decision::Audit { .. } => Ok(Action::Keep),
            Decision::Block { message, rule } | Decision::Approve { message, rule } => {
                // The server answers our statement with the error and
                // ReadyForQuery the client waits for, and aborts a
                // transaction block as a failed call would.
                let mut out = BytesMut::new();
                pg::encode_query(&mut out, raise_sql(&message, &rule).as_bytes())
                    .map_err(SessionError::ClientProtocol)?;
                Ok(Action::Replace(out.freeze()))
            }
        }
    }

    /// Record, then send, what is ready for the upstream.
    async fn forward(&mut self, segments: &mut Vec<Bytes>) -> Result<(), SessionError> {
        if segments.is_empty() {
            return Ok(());
        }
        let Some(writer) = self.writer.as_mut() else {
            return self.forward_tx(segments).await;
        };
        forward(
            writer,
            segments,
            self.recording,
            self.last_activity.get(),
            Peer::Upstream,
            &self.entry.bytes_up,
            &self.ctx.stats().bytes_client_to_upstream,
        )
        .await
    }

    /// The pipeline's statement step for this session.
    fn scope(&self) -> StatementScope<'_> {
        StatementScope {
            ctx: self.ctx,
            entry: self.entry,
            target: self.target,
            identity: self.identity,
            recording: self.recording,
        }
    }

    /// Hold a statement for a reviewer; the answer as an allow or a block.
    async fn await_approval(
        &self,
        statement: &str,
        message: &str,
        rule: &str,
    ) -> Result<Decision, SessionError> {
        self.scope()
            .await_approval(statement, message, rule)
            .await
            .map_err(|e| SessionError::Refused(e.to_string()))
    }

    /// Count, log and record a judged statement.
    async fn note(
        &self,
        statement: &str,
        d: &Decision,
        approval: Option<String>,
        shadow: Option<&ShadowVerdict>,
    ) -> Result<(), SessionError> {
        self.scope()
            .note(statement, d, approval, shadow)
            .await
            .map_err(|e| SessionError::Refused(e.to_string()))
    }
}
