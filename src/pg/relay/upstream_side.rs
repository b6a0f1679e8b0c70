//! The upstream → client direction of the inspected PostgreSQL relay:
//! masking rows, filtering the responses to injected messages, tracking the
//! transaction state and the lexical mode.

use super::*;

/// What the upstream side keeps between frames (and, in transaction mode,
/// across the connections it reads).
#[derive(Default)]
pub(super) struct Down {
    /// The current result's plan (from the shape tracker).
    rows: RowPlan,
    /// The caller's content plan for COPY rows and server texts.
    caller: ResultPlan,
    /// A COPY TO STDOUT whose rows are masked by content.
    copy_out: bool,
    /// A COPY TO STDOUT whose columns are known (masked by name).
    copy: CopyOut,
    scratch: MaskScratch,
    ranges: Vec<Option<Range<usize>>>,
    /// ReadyForQuery messages relayed.
    batch: u64,
    parses_seen: u32,
    binds_seen: u32,
    closes_seen: u32,
}

/// What to do with one upstream frame.
enum Outcome {
    Act(Action),
    /// End the session over a result it may not relay.
    Refuse(ResultRefusal),
    /// End the session over a client encoding (see `end_for_encoding`).
    Encoding(String),
}

impl UpstreamSide<'_> {
    pub(super) async fn run(&mut self) -> Result<(), SessionError> {
        let mut st = self.down();
        self.run_with(&mut st, false).await
    }

    /// The state the upstream side starts with.
    pub(super) fn down(&self) -> Down {
        let mut st = Down::default();
        if let Some(m) = self.rt.masking.as_ref() {
            m.plan_caller(&self.identity.groups, &mut st.caller);
        }
        st
    }

    /// Relay until the session ends, or (`tx`, transaction mode) until the
    /// connection may be parked (`tx.rs`).
    pub(super) async fn run_with(&mut self, st: &mut Down, tx: bool) -> Result<(), SessionError> {
        let st = &mut *st;
        let masking = self.rt.masking.as_ref();
        let mut segments: Vec<Bytes> = Vec::with_capacity(4);
        loop {
            if tx && self.parkable() {
                return Ok(());
            }
            if self.releasing() {
                return self.drain_reset().await;
            }
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
            if self.releasing() {
                return self.drain_reset().await;
            }
            self.last_activity.set(Instant::now());
            let mut pos = 0;
            segments.extend(self.passing.take(&mut self.reader.buf));
            while !self.passing.active() {
                let copying = st.copy_out || st.copy.active();
                let len = match stream::next(&mut self.reader, pos, |t| {
                    stream::upstream_streamable(t, masking.is_some(), copying)
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
                if tx && self.renamer_drops(t) {
                    cut(
                        &mut self.reader.buf,
                        &mut segments,
                        &mut pos,
                        len,
                        Action::Drop,
                    );
                    continue;
                }
                let probe_drop =
                    (self.flow.borrow_mut().shapes.as_mut()).is_some_and(|s| s.copy_probe_drop(t));
                let action = match self.on_frame(st, t, pos, len)? {
                    Outcome::Act(_) if probe_drop => Action::Drop,
                    Outcome::Act(a) => a,
                    Outcome::Refuse(why) => {
                        return self.refuse_result(&mut segments, pos, why).await;
                    }
                    Outcome::Encoding(why) => return self.end_for_encoding(why).await,
                };
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
            self.count_masked(&mut st.scratch);
        }
    }

    /// One whole frame at `pos..pos + len` of the read buffer.
    fn on_frame(
        &mut self,
        st: &mut Down,
        t: u8,
        pos: usize,
        len: usize,
    ) -> Result<Outcome, SessionError> {
        let masking = self.rt.masking.as_ref();
        if let Some(m) = masking
            && let Err(why) = self.shape_step(m, &mut st.rows, &mut st.copy, t, pos, len)
        {
            return Ok(Outcome::Refuse(why));
        }
        let body = pos + pg::HEADER_LEN..pos + len;
        let action = match t {
            tag::DATA_ROW if st.rows.mode != RowMode::Off => {
                let m =
                    masking.ok_or(SessionError::Refused("masking plan without policy".into()))?;
                self.mask_row(m, &st.rows, pos, len, &mut st.scratch, &mut st.ranges)?
            }
            tag::COPY_OUT_RESPONSE
            | tag::COPY_BOTH_RESPONSE
            | tag::COPY_DATA
            | tag::COPY_DONE
            | tag::COMMAND_COMPLETE => return self.copy_frame(st, t, body),
            tag::PARSE_COMPLETE | tag::CLOSE_COMPLETE | tag::BIND_COMPLETE => {
                self.completion(st, t)
            }
            tag::ERROR_RESPONSE => {
                let body = &self.reader.buf[body];
                match ours_without_context(body) {
                    Some(b) => Action::Replace(b),
                    None => match self.probe_refusal(st.batch, body) {
                        Action::Keep => server_text(masking, &st.caller, t, body, &mut st.scratch),
                        refused => refused,
                    },
                }
            }
            tag::NOTICE_RESPONSE | tag::NOTIFICATION_RESPONSE => {
                let body = &self.reader.buf[body];
                server_text(masking, &st.caller, t, body, &mut st.scratch)
            }
            tag::PARAMETER_STATUS => {
                let body = &self.reader.buf[body];
                if let Ok(p) = pg::ParameterStatus::parse_body(body)
                    && p.name == b"standard_conforming_strings"
                {
                    self.flow.borrow_mut().standard_conforming_strings = p.value != b"off";
                }
                if let Some(why) = lexmode::refused_encoding_status(body) {
                    return Ok(Outcome::Encoding(why));
                }
                self.note_status(pos, len);
                Action::Keep
            }
            tag::READY_FOR_QUERY => {
                let idle = self.reader.buf.get(pos + pg::HEADER_LEN) == Some(&b'I');
                self.ready(st, idle);
                Action::Keep
            }
            _ => Action::Keep,
        };
        Ok(Outcome::Act(action))
    }

    /// The COPY messages and CommandComplete: rows of a COPY TO STDOUT are
    /// masked by column (known shape) or by content.
    fn copy_frame(
        &self,
        st: &mut Down,
        t: u8,
        body: Range<usize>,
    ) -> Result<Outcome, SessionError> {
        let masking = self.rt.masking.as_ref();
        let no_policy = || SessionError::Refused("masking plan without policy".into());
        let body = &self.reader.buf[body];
        let encode = |v: &[u8]| -> Result<Action, SessionError> {
            let mut out = BytesMut::with_capacity(v.len() + 5);
            pg::encode_copy_data(&mut out, v).map_err(SessionError::UpstreamProtocol)?;
            Ok(Action::Replace(out.freeze()))
        };
        let action = match t {
            tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                st.copy_out = masking.is_some() && !st.caller.is_noop() && !st.copy.active();
                Action::Keep
            }
            tag::COPY_DATA if st.copy.active() => {
                let m = masking.ok_or_else(no_policy)?;
                match st.copy.data(m, body, &mut st.scratch) {
                    Ok(None) => Action::Keep,
                    Ok(Some(b)) if b.is_empty() => Action::Drop,
                    Ok(Some(b)) => encode(&b)?,
                    Err(why) => return Ok(Outcome::Refuse(why)),
                }
            }
            tag::COPY_DONE if st.copy.active() => match st.copy.done() {
                Ok(()) => Action::Keep,
                Err(why) => return Ok(Outcome::Refuse(why)),
            },
            tag::COPY_DATA if st.copy_out => {
                let m = masking.ok_or_else(no_policy)?;
                match m.mask_text(&st.caller, body, &mut st.scratch) {
                    MaskOutcome::Unchanged => Action::Keep,
                    MaskOutcome::Replaced(v) => encode(v)?,
                    MaskOutcome::Null => encode(b"\\N\n")?,
                }
            }
            tag::COPY_DATA => Action::Keep,
            // CopyDone, CommandComplete.
            _ => {
                st.copy_out = false;
                Action::Keep
            }
        };
        Ok(Outcome::Act(action))
    }

    /// ParseComplete, CloseComplete, BindComplete: dropped when they answer
    /// what the gateway injected.
    fn completion(&self, st: &mut Down, t: u8) -> Action {
        match t {
            tag::PARSE_COMPLETE => {
                st.parses_seen += 1;
                let seen = st.parses_seen;
                self.injected(st.batch, |i| {
                    i.parses_before + 1 == seen
                        || (i.probe.is_some() && i.parses_before + 2 == seen)
                })
            }
            tag::CLOSE_COMPLETE => {
                st.closes_seen += 1;
                let seen = st.closes_seen;
                self.injected(st.batch, |i| {
                    i.probe
                        .as_ref()
                        .is_some_and(|p| p.closes_before + 1 == seen)
                })
            }
            _ => {
                st.binds_seen += 1;
                let seen = st.binds_seen;
                self.injected(st.batch, |i| i.binds_before + 1 == seen)
            }
        }
    }

    /// ReadyForQuery: the batch is over (its injections too).
    fn ready(&self, st: &mut Down, idle: bool) {
        let mut flow = self.flow.borrow_mut();
        flow.idle = idle;
        while flow.injections.front().is_some_and(|i| i.batch <= st.batch) {
            flow.injections.pop_front();
        }
        st.batch += 1;
        flow.ready_seen = st.batch;
        st.parses_seen = 0;
        st.binds_seen = 0;
        st.closes_seen = 0;
        st.rows.mode = RowMode::Off;
        st.copy_out = false;
        tx::on_ready(&mut flow);
        *self.entry.current_statement.borrow_mut() = None;
    }

    /// Hand the values masked since the last read to the shard's metrics.
    fn count_masked(&self, scratch: &mut MaskScratch) {
        if scratch.counters.by_column > 0 || scratch.counters.by_detector.iter().any(|c| *c > 0) {
            self.ctx
                .shared
                .metrics
                .shard(self.ctx.id)
                .masked_counts(&scratch.counters);
            scratch.counters = Default::default();
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
