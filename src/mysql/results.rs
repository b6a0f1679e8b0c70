//! The server's answers, relayed to the client: result sets (text rows for
//! `COM_QUERY`, binary rows for `COM_STMT_EXECUTE`) masked by column name
//! and content detectors, multi-results followed to the last, the answer to
//! `COM_STMT_PREPARE`, single-packet answers, and `LOAD DATA LOCAL`.
//!
//! A masked value of a string column is replaced (lengths re-encoded); a
//! masked value of any other type (numbers, dates) becomes NULL, since a
//! client would fail to read a masked string as its type. Integer values of
//! the binary protocol are scanned as their decimal text.

use bytes::BytesMut;
use tollgate_codecs::mysql::{
    BinaryRow, ColumnDefinition, EndOfRows, HEADER_LEN, Layout, OkPacket, Packet, PrepareOk,
    QueryResponse, TextRow, binary_layout, caps, column_flag, column_type as ty, is_end_of_rows,
    is_err, packet_extent, status, write_packet,
};

use super::io::{Peer, code, err_packet};
use super::relay::Relay;
use crate::pipeline::EndReason;
use crate::policy::mask::{ColumnAction, MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// Bytes gathered for the client before a write in the middle of a result.
const FLUSH_AT: usize = 256 << 10;

/// Masking for one session: the target's policy and the caller's plan.
pub(super) struct Masker<'a> {
    policy: &'a MaskPolicy,
    groups: &'a [String],
    plan: ResultPlan,
    pub scratch: MaskScratch,
}

/// The columns of a result: names (masking plans), types (binary rows).
pub(super) struct Columns {
    names: Vec<Vec<u8>>,
    cols: Vec<Column>,
    types: Vec<u8>,
}

/// A column of the result being relayed.
struct Column {
    column_type: u8,
    unsigned: bool,
}

/// The shape of the rows being relayed, and whether masking applies.
struct Rows<'c> {
    cols: &'c [Column],
    types: &'c [u8],
    binary: bool,
    active: bool,
}

/// Where a pass over the buffered rows stopped.
enum Batch {
    /// The rows ended: the end's status flags, `None` after an ERR.
    End(Option<u16>),
    /// The output buffer is full: flush, then go on.
    Flush,
    /// The next packet is not whole yet: read more.
    Short,
    /// The next packet spans chunks: take it the slow way.
    Joined,
}

/// Most columns one result may announce (a protocol error above it).
const MAX_COLUMNS: usize = u16::MAX as usize;

/// The announced column count of a result, refused above [`MAX_COLUMNS`].
fn column_count(columns: u64) -> Result<usize, EndReason> {
    usize::try_from(columns)
        .ok()
        .filter(|&n| n <= MAX_COLUMNS)
        .ok_or_else(|| Peer::Upstream.protocol(format!("column count {columns}")))
}

/// Types a masked string may stand in for.
fn textual(t: u8) -> bool {
    matches!(
        t,
        ty::VARCHAR
            | ty::VAR_STRING
            | ty::STRING
            | ty::TINY_BLOB
            | ty::MEDIUM_BLOB
            | ty::LONG_BLOB
            | ty::BLOB
            | ty::ENUM
            | ty::SET
            | ty::JSON
    )
}

/// A binary integer value as its decimal text, formatted in `buf` (no
/// allocation per value: integer columns are the common case).
fn integer_text<'b>(buf: &'b mut itoa::Buffer, value: &[u8], unsigned: bool) -> Option<&'b str> {
    let mut b = [0u8; 8];
    let n = value.len();
    if !(1..=8).contains(&n) {
        return None;
    }
    b[..n].copy_from_slice(value);
    if unsigned {
        return Some(buf.format(u64::from_le_bytes(b)));
    }
    let negative = value[n - 1] & 0x80 != 0;
    if negative {
        b[n..].fill(0xFF);
    }
    Some(buf.format(i64::from_le_bytes(b)))
}

impl<'a> Masker<'a> {
    pub fn new(policy: &'a MaskPolicy, groups: &'a [String]) -> Self {
        Masker {
            policy,
            groups,
            plan: ResultPlan::default(),
            scratch: MaskScratch::default(),
        }
    }

    /// Plans one result; false when nothing in it can be masked.
    fn plan(&mut self, names: &[Vec<u8>]) -> bool {
        self.policy.plan_result(
            names.iter().map(|n| n.as_slice()),
            self.groups,
            &mut self.plan,
        );
        !self.plan.is_noop()
    }

    /// The replacement of one value (`Some(None)`: NULL), if it is masked.
    fn mask(
        &mut self,
        i: usize,
        c: &Column,
        value: &[u8],
        binary: bool,
    ) -> Option<Option<Vec<u8>>> {
        if self.plan.column(i) == ColumnAction::Clear {
            return None;
        }
        let layout = if binary {
            binary_layout(c.column_type).ok()?
        } else {
            Layout::LengthEncoded
        };
        let mut digits = itoa::Buffer::new();
        let scanned: &[u8] = match layout {
            Layout::LengthEncoded => value,
            Layout::Fixed(_) if matches!(c.column_type, ty::FLOAT | ty::DOUBLE) => {
                return self.whole_only(i);
            }
            Layout::Fixed(_) => integer_text(&mut digits, value, c.unsigned)?.as_bytes(),
            Layout::Temporal(_) => return self.whole_only(i),
        };
        match self
            .policy
            .mask_value(&self.plan, i, scanned, &mut self.scratch)
        {
            MaskOutcome::Unchanged => None,
            MaskOutcome::Null => Some(None),
            MaskOutcome::Replaced(b) if textual(c.column_type) => Some(Some(b.to_vec())),
            MaskOutcome::Replaced(_) => Some(None),
        }
    }

    /// A value with no text to scan (floats, dates in binary): NULL when
    /// its column is masked by name.
    fn whole_only(&mut self, i: usize) -> Option<Option<Vec<u8>>> {
        match self.plan.column(i) {
            ColumnAction::Whole { .. } => {
                self.scratch.counters.by_column += 1;
                Some(None)
            }
            _ => None,
        }
    }

    /// A row with its masked values replaced, or `None` when none is.
    fn row(
        &mut self,
        payload: &[u8],
        columns: &[Column],
        types: &[u8],
        binary: bool,
    ) -> Result<Option<BytesMut>, EndReason> {
        let mut out = BytesMut::new();
        let encoded = if binary {
            let row = BinaryRow::parse(payload, types).map_err(|e| Peer::Upstream.protocol(e))?;
            let reps = self.replacements(row.values(), columns, true);
            if reps.is_empty() {
                return Ok(None);
            }
            row.encode_replacing(&mut out, &as_refs(&reps))
        } else {
            let row =
                TextRow::parse(payload, columns.len()).map_err(|e| Peer::Upstream.protocol(e))?;
            let reps = self.replacements(row.values(), columns, false);
            if reps.is_empty() {
                return Ok(None);
            }
            row.encode_replacing(&mut out, &as_refs(&reps))
        };
        encoded.map_err(|e| Peer::Upstream.protocol(e))?;
        Ok(Some(out))
    }

    /// The masked values of a row, by column index (`None`: NULL).
    fn replacements<'v>(
        &mut self,
        values: impl Iterator<Item = Option<&'v [u8]>>,
        columns: &[Column],
        binary: bool,
    ) -> Vec<(usize, Option<Vec<u8>>)> {
        let mut reps = Vec::new();
        for (i, v) in values.enumerate() {
            if let (Some(v), Some(c)) = (v, columns.get(i))
                && let Some(r) = self.mask(i, c, v, binary)
            {
                reps.push((i, r));
            }
        }
        reps
    }
}

/// Replacements as the row encoders take them.
fn as_refs(reps: &[(usize, Option<Vec<u8>>)]) -> Vec<(usize, Option<&[u8]>)> {
    reps.iter().map(|(i, r)| (*i, r.as_deref())).collect()
}

impl Relay<'_> {
    /// Queue a packet for the client: as it came, or with a new payload,
    /// renumbered once the gateway changed the packet count.
    fn emit(&mut self, p: &Packet, payload: Option<&[u8]>) {
        self.emit_parts(p.seq, p.next_seq(), &p.raw, &p.payload, payload);
    }

    /// [`Relay::emit`] for a packet read in place: its first and next
    /// sequence ids, its bytes as they came and its payload.
    fn emit_parts(&mut self, seq: u8, next_seq: u8, raw: &[u8], old: &[u8], new: Option<&[u8]>) {
        match (new, self.renumber) {
            (None, None) => self.out.extend_from_slice(raw),
            (Some(pl), None) => {
                let next = write_packet(&mut self.out, seq, pl);
                if next != next_seq {
                    self.renumber = Some(next);
                }
            }
            (pl, Some(at)) => {
                let next = write_packet(&mut self.out, at, pl.unwrap_or(old));
                self.renumber = Some(next);
            }
        }
    }

    async fn upstream_packet(&mut self) -> Result<Packet, EndReason> {
        let reads = self.up_r.reads;
        let p = self.up_r.packet().await?;
        // Rows cut from bytes already buffered are not news to the idle
        // timer; a socket read is (one clock read per read, not per row).
        if self.up_r.reads != reads {
            self.live.last_activity.set(std::time::Instant::now());
        }
        Ok(p)
    }

    /// The answer to COM_QUERY or COM_STMT_EXECUTE, every result of it;
    /// the columns of the cursor it opened, if it did (an execute with a
    /// cursor type answers column definitions and no rows: `fetch_answer`
    /// relays them later).
    pub(super) async fn results(&mut self, binary: bool) -> Result<Option<Columns>, EndReason> {
        self.renumber = None;
        let mut cursor = None;
        loop {
            let p = self.upstream_packet().await?;
            let first = QueryResponse::parse(&p.payload, self.caps)
                .map_err(|e| Peer::Upstream.protocol(e))?;
            let more = match first {
                QueryResponse::Ok(ok) => {
                    let flags = ok.status;
                    self.inspector.status(flags);
                    self.emit(&p, None);
                    flags & status::MORE_RESULTS_EXISTS != 0
                }
                QueryResponse::Err(_) => {
                    self.emit(&p, None);
                    false
                }
                QueryResponse::LocalInfile { .. } => self.local_infile(&p).await?,
                QueryResponse::ResultSet { columns } => {
                    self.emit(&p, None);
                    let (cols, eof) = self.column_definitions(columns).await?;
                    match eof {
                        // Without DEPRECATE_EOF a cursor is announced by the
                        // EOF after the definitions; no rows follow.
                        Some(flags) if binary && flags & status::CURSOR_EXISTS != 0 => {
                            cursor = Some(cols);
                            false
                        }
                        _ => {
                            let end = self.rows(&cols, binary).await?;
                            // With DEPRECATE_EOF: an end of rows right away.
                            if binary && end.is_some_and(|f| f & status::CURSOR_EXISTS != 0) {
                                cursor = Some(cols);
                            }
                            end.is_some_and(|f| f & status::MORE_RESULTS_EXISTS != 0)
                        }
                    }
                }
            };
            if !more {
                break;
            }
        }
        self.flush().await?;
        Ok(cursor)
    }

    /// The column definitions of one result (and the EOF after them
    /// without DEPRECATE_EOF: its status flags).
    async fn column_definitions(
        &mut self,
        columns: u64,
    ) -> Result<(Columns, Option<u16>), EndReason> {
        // The count is the upstream's word: refuse one no server sends
        // (MySQL and MariaDB stop at 4096 columns a table) before it sizes
        // anything, and let the vectors grow with what really arrives.
        let n = column_count(columns)?;
        let mut c = Columns {
            names: Vec::with_capacity(n.min(64)),
            cols: Vec::with_capacity(n.min(64)),
            types: Vec::with_capacity(n.min(64)),
        };
        for _ in 0..n {
            let p = self.upstream_packet().await?;
            let def =
                ColumnDefinition::parse(&p.payload).map_err(|e| Peer::Upstream.protocol(e))?;
            c.names.push(def.name.to_vec());
            c.types.push(def.column_type);
            c.cols.push(Column {
                column_type: def.column_type,
                unsigned: def.flags & column_flag::UNSIGNED != 0,
            });
            self.emit(&p, None);
        }
        let mut eof = None;
        if self.caps & caps::DEPRECATE_EOF == 0 {
            let p = self.upstream_packet().await?;
            eof = Some(
                EndOfRows::parse(&p.payload, self.caps)
                    .map_err(|e| Peer::Upstream.protocol(e))?
                    .status(),
            );
            self.emit(&p, None);
        }
        Ok((c, eof))
    }

    /// Rows up to the end of one result, masked by `c`'s names: the end's
    /// status flags, `None` after an ERR.
    async fn rows(&mut self, c: &Columns, binary: bool) -> Result<Option<u16>, EndReason> {
        let active = match &mut self.masker {
            Some(m) => m.plan(&c.names),
            None => false,
        };
        let rows = Rows {
            cols: &c.cols,
            types: &c.types,
            binary,
            active,
        };
        loop {
            match self.buffered_rows(&rows)? {
                Batch::End(end) => return Ok(end),
                Batch::Flush => self.flush().await?,
                Batch::Short => {
                    self.up_r.fill().await?;
                    self.live.last_activity.set(std::time::Instant::now());
                }
                Batch::Joined => {
                    // A row of 16 MiB or more: cut and joined the slow way.
                    let r = self.upstream_packet().await?;
                    if let Some(end) = self.row(&rows, r.seq, r.next_seq(), &r.raw, &r.payload)? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    /// Relays every whole row packet already buffered from the upstream,
    /// read in place (no per-row `Bytes`), up to the end of the rows, a
    /// full output buffer, or a packet not yet whole.
    fn buffered_rows(&mut self, rows: &Rows<'_>) -> Result<Batch, EndReason> {
        let buf = std::mem::take(&mut self.up_r.buf);
        let mut at = 0;
        let batch = loop {
            let ext = match packet_extent(&buf[at..], self.up_r.cap) {
                Ok(Some(e)) if e.chunks == 1 => e,
                Ok(Some(_)) => break Ok(Batch::Joined),
                Ok(None) => break Ok(Batch::Short),
                Err(e) => break Err(Peer::Upstream.protocol(e)),
            };
            let raw = &buf[at..at + ext.len];
            at += ext.len;
            match self.row(rows, ext.seq, ext.next_seq(), raw, &raw[HEADER_LEN..]) {
                Ok(Some(end)) => break Ok(Batch::End(end)),
                Ok(None) if self.out.len() >= FLUSH_AT => break Ok(Batch::Flush),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        self.up_r.buf = buf;
        bytes::Buf::advance(&mut self.up_r.buf, at);
        self.up_r.release();
        batch
    }

    /// One packet of the rows part: a row (masked as planned), or the ERR
    /// or end-of-rows packet that ends it (`Some` of what
    /// [`Batch::End`] carries).
    fn row(
        &mut self,
        rows: &Rows<'_>,
        seq: u8,
        next_seq: u8,
        raw: &[u8],
        payload: &[u8],
    ) -> Result<Option<Option<u16>>, EndReason> {
        if is_err(payload) {
            self.emit_parts(seq, next_seq, raw, payload, None);
            return Ok(Some(None));
        }
        if is_end_of_rows(payload) {
            let flags = EndOfRows::parse(payload, self.caps)
                .map_err(|e| Peer::Upstream.protocol(e))?
                .status();
            self.inspector.status(flags);
            self.emit_parts(seq, next_seq, raw, payload, None);
            return Ok(Some(Some(flags)));
        }
        let masked = match (&mut self.masker, rows.active) {
            (Some(m), true) => m.row(payload, rows.cols, rows.types, rows.binary)?,
            _ => None,
        };
        self.emit_parts(seq, next_seq, raw, payload, masked.as_deref());
        Ok(None)
    }

    /// The answer to COM_STMT_FETCH: binary rows of the cursor whose
    /// columns are `cursor`, masked as an execute's; the cursor's columns
    /// back while it stays open. Without a cursor seen open only an ERR
    /// passes: rows the gateway cannot mask end the session.
    pub(super) async fn fetch_answer(
        &mut self,
        cursor: Option<Columns>,
    ) -> Result<Option<Columns>, EndReason> {
        self.renumber = None;
        let Some(c) = cursor else {
            let p = self.upstream_packet().await?;
            if !is_err(&p.payload) {
                return Err(Peer::Upstream
                    .protocol("rows fetched from a cursor tollgate did not see opened"));
            }
            self.emit(&p, None);
            self.flush().await?;
            return Ok(None);
        };
        let end = self.rows(&c, true).await?;
        self.flush().await?;
        // After an ERR the cursor may still be open: its columns stay.
        let open =
            end.is_none_or(|f| f & status::CURSOR_EXISTS != 0 && f & status::LAST_ROW_SENT == 0);
        Ok(open.then_some(c))
    }

    /// The server asks for a local file. Off (the default): the server gets
    /// an empty file, its answer is dropped and the client reads an ERR.
    /// On: the client's file goes to the server through the recorder.
    async fn local_infile(&mut self, p: &Packet) -> Result<bool, EndReason> {
        if !self.my.local_infile {
            let mut b = BytesMut::new();
            write_packet(&mut b, p.next_seq(), &[]);
            self.send_upstream(b.freeze()).await?;
            let answer = self.upstream_packet().await?;
            let more = OkPacket::parse(&answer.payload, self.caps)
                .is_ok_and(|o| o.status & status::MORE_RESULTS_EXISTS != 0);
            let seq = self.renumber.unwrap_or(p.seq);
            let (c, state) = code::LOCAL_INFILE;
            let msg = "LOAD DATA LOCAL INFILE is not allowed through tollgate on this target";
            self.renumber = Some(err_packet(&mut self.out, seq, c, state, msg));
            if more {
                // The rest of a multi-statement would follow an ERR the
                // client takes as the end: end the session instead.
                return Err(EndReason::Refused(
                    "LOAD DATA LOCAL inside a multi-statement".into(),
                ));
            }
            return Ok(false);
        }
        self.emit(p, None);
        self.flush().await?;
        loop {
            let c = self.client_r.packet().await?;
            self.live.last_activity.set(std::time::Instant::now());
            let done = c.payload.is_empty();
            self.send_upstream(c.raw.clone()).await?;
            if done {
                return Ok(true);
            }
        }
    }

    /// The answer to COM_STMT_PREPARE: the statement id when it succeeded.
    pub(super) async fn prepare_answer(&mut self) -> Result<Option<u32>, EndReason> {
        self.renumber = None;
        let p = self.upstream_packet().await?;
        if is_err(&p.payload) {
            self.emit(&p, None);
            self.flush().await?;
            return Ok(None);
        }
        let ok = PrepareOk::parse(&p.payload).map_err(|e| Peer::Upstream.protocol(e))?;
        self.emit(&p, None);
        let eof = self.caps & caps::DEPRECATE_EOF == 0;
        for count in [ok.params, ok.columns] {
            for _ in 0..count {
                let d = self.upstream_packet().await?;
                self.emit(&d, None);
            }
            if count > 0 && eof {
                let d = self.upstream_packet().await?;
                self.emit(&d, None);
            }
        }
        self.flush().await?;
        Ok(Some(ok.stmt_id))
    }

    /// A one-packet answer (OK, ERR, EOF).
    pub(super) async fn simple_answer(&mut self) -> Result<(), EndReason> {
        self.renumber = None;
        let p = self.upstream_packet().await?;
        if let Ok(ok) = OkPacket::parse(&p.payload, self.caps)
            && p.header() == 0
        {
            self.inspector.status(ok.status);
        }
        self.emit(&p, None);
        self.flush().await
    }

    /// COM_FIELD_LIST: column definitions until EOF or ERR.
    pub(super) async fn field_list(&mut self) -> Result<(), EndReason> {
        self.renumber = None;
        loop {
            let p = self.upstream_packet().await?;
            self.emit(&p, None);
            if is_err(&p.payload) || is_end_of_rows(&p.payload) {
                return self.flush().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_column_count_is_capped_before_it_sizes_anything() {
        assert_eq!(column_count(3).ok(), Some(3));
        assert_eq!(column_count(MAX_COLUMNS as u64).ok(), Some(MAX_COLUMNS));
        // A lying upstream (lenenc up to 2^64 - 1): a protocol error, not an
        // allocation of that many entries.
        for n in [MAX_COLUMNS as u64 + 1, 1 << 40, u64::MAX] {
            assert!(matches!(
                column_count(n),
                Err(EndReason::UpstreamProtocol(_))
            ));
        }
    }

    #[test]
    fn binary_integers_read_as_their_decimal_text() {
        assert_eq!(
            integer_text(&mut itoa::Buffer::new(), &[0xFF], false),
            Some("-1")
        );
        assert_eq!(
            integer_text(&mut itoa::Buffer::new(), &[0xFF], true),
            Some("255")
        );
        assert_eq!(
            integer_text(
                &mut itoa::Buffer::new(),
                &4111111111111111i64.to_le_bytes(),
                false
            ),
            Some("4111111111111111")
        );
        assert_eq!(
            integer_text(&mut itoa::Buffer::new(), &[0x00, 0x80], false),
            Some("-32768")
        );
        assert!(integer_text(&mut itoa::Buffer::new(), &[], false).is_none());
    }
}
