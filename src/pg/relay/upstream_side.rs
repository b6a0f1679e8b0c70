//! The upstream → client direction of the inspected PostgreSQL relay:
//! masking rows, filtering the responses to injected messages, tracking the
//! transaction state and the lexical mode. Moved out of `relay.rs` as is.

use super::*;

impl UpstreamSide<'_> {
    pub(super) async fn run(mut self) -> Result<(), SessionError> {
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
            segments.extend(self.passing.take(&mut self.reader.buf));
            while !self.passing.active() {
                let len = match stream::next(&mut self.reader, pos, |t| {
                    stream::upstream_streamable(t, masking.is_some(), copy_out || copy.active())
                })? {
                    Next::Whole(len) => len,
                    Next::Partial => break,
                    Next::Large(_, len) => {
                        let (buf, passing) = (&mut self.reader.buf, &mut self.passing);
                        passing.start(buf, &mut segments, &mut pos, len, false);
                        break;
                    }
                };
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
            self.reader.settle();
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
    ) -> Result<(), ResultRefusal> {
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
        why: ResultRefusal,
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
