//! Transaction mode (`[target.postgres.pool] mode = "transaction"`): named
//! prepared statements across the server connections a caller is given.
//!
//! A caller's statement names never reach the server. Each named Parse is
//! sent under a server name derived from its query text and parameter
//! types (`tollgate_` + 32 hex digits of their SHA-256, as pgbouncer >= 1.21
//! derives its names), so two callers preparing the same text share one
//! server statement and no caller can reach another's by name. Each server
//! connection remembers the names it has prepared ([`ServerStatements`],
//! capped, least recently used closed first), and this module, at the
//! upstream-facing edge of the relay, rewrites what goes out:
//!
//! - Parse of a name: the connection lacks it → Parse under the server
//!   name; it has it → `Close S tollgate_noop` + `Parse tollgate_noop ''`
//!   (the server answers ParseComplete for the caller; the CloseComplete is
//!   the gateway's and dropped). Every answer still comes from the server,
//!   in order, so nothing is synthesized.
//! - Bind / Describe S of a name: the server name; if the connection lacks
//!   it, the statement's Parse goes first and its ParseComplete is dropped
//!   (a re-prepare).
//! - Close S of a name: the caller's mapping is forgotten and `Close S
//!   tollgate_noop` answers CloseComplete (the server statement stays for
//!   other callers; the LRU closes it in time).
//! - The unnamed statement, portals, Execute, and the gateway's own probes
//!   (`tollgate_` names in messages the gateway wrote) pass unchanged.
//!
//! Everything above this edge (policy, shapes for masking, the recording)
//! sees the caller's names only.

use std::collections::{HashMap, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use tollgate_codecs::pg::{self, PgError, tag};

/// Server statements one connection keeps before closing the least
/// recently used (pgbouncer's `max_prepared_statements` default is 200).
pub const MAX_PER_CONNECTION: usize = 256;
/// Named statements one caller may hold at once.
pub const MAX_PER_CALLER: usize = 10_000;
/// The gateway's statement that answers a Parse or Close the server need
/// not see.
pub const NOOP: &[u8] = b"tollgate_noop";
/// Where a Bind/Describe of a name the caller never prepared is pointed
/// (the server answers "does not exist").
const ABSENT: &[u8] = b"tollgate_absent";
/// Names the gateway owns on the server.
const OURS: &[u8] = b"tollgate_";

/// The statements one server connection has prepared (server names),
/// least recently used first out.
#[derive(Debug, Default)]
pub struct ServerStatements {
    used: HashMap<Bytes, u64>,
    tick: u64,
}

impl ServerStatements {
    pub fn has(&self, name: &[u8]) -> bool {
        self.used.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }

    fn touch(&mut self, name: &Bytes) {
        self.tick += 1;
        self.used.insert(name.clone(), self.tick);
    }

    fn remove(&mut self, name: &[u8]) {
        self.used.remove(name);
    }

    /// The least recently used name other than `keep`, removed.
    fn evict(&mut self, keep: &[u8]) -> Option<Bytes> {
        let victim = self
            .used
            .iter()
            .filter(|(n, _)| n.as_ref() != keep)
            .min_by_key(|(_, t)| **t)
            .map(|(n, _)| n.clone())?;
        self.used.remove(&victim);
        Some(victim)
    }
}

/// A caller's named statement.
#[derive(Debug, Clone)]
struct Stmt {
    server: Bytes,
    /// The caller's Parse under the server name (for re-prepares).
    parse: Bytes,
}

/// A Parse sent and not yet answered.
#[derive(Debug)]
struct Pending {
    batch: u64,
    ordinal: u32,
    server: Bytes,
    /// The caller's name when it is the caller's own Parse.
    caller: Option<Vec<u8>>,
}

/// One caller's statements and the bookkeeping of what the gateway added.
#[derive(Debug, Default)]
pub struct Renamer {
    caller: HashMap<Vec<u8>, Stmt>,
    /// Sync/Query/FunctionCall messages sent (each answered by one
    /// ReadyForQuery), and Parse/Close messages sent in the current batch.
    out_batch: u64,
    out_parses: u32,
    out_closes: u32,
    /// Answers to drop: (batch, ParseComplete or CloseComplete, ordinal in
    /// the batch among answers of that kind).
    drops: VecDeque<(u64, u8, u32)>,
    pending: VecDeque<Pending>,
    in_batch: u64,
    in_parses: u32,
    in_closes: u32,
    /// Parses injected because the connection lacked the statement.
    pub reprepares: u64,
}

/// What goes out in place of one frame.
pub enum Out {
    Same,
    Replaced(Bytes),
}

impl Renamer {
    /// One frame (header included) on its way to the server; `caller`
    /// says whether the caller wrote it (else the gateway did).
    pub fn outgoing(
        &mut self,
        frame: &[u8],
        caller: bool,
        conn: &mut ServerStatements,
    ) -> Result<Out, PgError> {
        let Some(&t) = frame.first() else {
            return Ok(Out::Same);
        };
        let body = frame.get(pg::HEADER_LEN..).unwrap_or_default();
        match t {
            tag::QUERY | tag::SYNC | tag::FUNCTION_CALL => {
                self.out_batch += 1;
                self.out_parses = 0;
                self.out_closes = 0;
                Ok(Out::Same)
            }
            tag::PARSE => {
                let p = pg::Parse::parse_body(body)?;
                if p.name.is_empty() || (!caller && p.name.starts_with(OURS)) {
                    self.out_parses += 1;
                    return Ok(Out::Same);
                }
                self.parse(frame, p.name, p.query, body, conn)
                    .map(|b| Out::Replaced(b.freeze()))
            }
            tag::BIND => {
                let b = pg::Bind::parse_body(body)?;
                if b.statement.is_empty() || (!caller && b.statement.starts_with(OURS)) {
                    return Ok(Out::Same);
                }
                let mut out = BytesMut::new();
                let server = self.use_statement(b.statement, conn, &mut out)?;
                renamed(&mut out, tag::BIND, body, 1, &server)?;
                Ok(Out::Replaced(out.freeze()))
            }
            tag::DESCRIBE | tag::CLOSE => {
                let (kind, name) = match t {
                    tag::DESCRIBE => {
                        let d = pg::Describe::parse_body(body)?;
                        (d.kind, d.name)
                    }
                    _ => {
                        let c = pg::Close::parse_body(body)?;
                        (c.kind, c.name)
                    }
                };
                if t == tag::CLOSE {
                    self.out_closes += 1;
                }
                if kind != pg::ObjectKind::Statement
                    || name.is_empty()
                    || (!caller && name.starts_with(OURS))
                {
                    return Ok(Out::Same);
                }
                let mut out = BytesMut::new();
                if t == tag::CLOSE {
                    self.caller.remove(name);
                    pg::encode_close(&mut out, pg::ObjectKind::Statement, NOOP)?;
                } else {
                    let server = self.use_statement(name, conn, &mut out)?;
                    pg::encode_describe(&mut out, pg::ObjectKind::Statement, &server)?;
                }
                Ok(Out::Replaced(out.freeze()))
            }
            _ => Ok(Out::Same),
        }
    }

    /// A caller's named Parse.
    fn parse(
        &mut self,
        _frame: &[u8],
        name: &[u8],
        query: &[u8],
        body: &[u8],
        conn: &mut ServerStatements,
    ) -> Result<BytesMut, PgError> {
        let mut out = BytesMut::new();
        if self.caller.contains_key(name) {
            // The server would say 42P05: make it say so (about our name).
            self.ours_close(&mut out, NOOP)?;
            self.ours_parse(&mut out, NOOP, b"")?;
            self.out_parses += 1;
            pg::encode_parse(&mut out, NOOP, b"", &[])?;
            return Ok(out);
        }
        if self.caller.len() >= MAX_PER_CALLER {
            return Err(PgError::TooLong {
                what: "the named prepared statements of one session in transaction mode",
                len: self.caller.len() + 1,
                max: MAX_PER_CALLER,
            });
        }
        let types = body_after_names(body, 2).unwrap_or_default();
        let server = server_name(query, types);
        let mut parse = BytesMut::new();
        renamed(&mut parse, tag::PARSE, body, 0, &server)?;
        let parse = parse.freeze();
        self.caller.insert(
            name.to_vec(),
            Stmt {
                server: server.clone(),
                parse: parse.clone(),
            },
        );
        if conn.has(&server) {
            conn.touch(&server);
            self.ours_close(&mut out, NOOP)?;
            self.out_parses += 1;
            pg::encode_parse(&mut out, NOOP, b"", &[])?;
            return Ok(out);
        }
        self.make_room(&server, conn, &mut out)?;
        self.out_parses += 1;
        self.pending.push_back(Pending {
            batch: self.out_batch,
            ordinal: self.out_parses,
            server: server.clone(),
            caller: Some(name.to_vec()),
        });
        conn.touch(&server);
        out.extend_from_slice(&parse);
        Ok(out)
    }

    /// The server name for a caller's statement, its Parse first into
    /// `out` when the connection lacks it.
    fn use_statement(
        &mut self,
        name: &[u8],
        conn: &mut ServerStatements,
        out: &mut BytesMut,
    ) -> Result<Bytes, PgError> {
        let Some(stmt) = self.caller.get(name).cloned() else {
            return Ok(if name.starts_with(OURS) {
                Bytes::from_static(ABSENT)
            } else {
                Bytes::copy_from_slice(name)
            });
        };
        if conn.has(&stmt.server) {
            conn.touch(&stmt.server);
            return Ok(stmt.server);
        }
        self.make_room(&stmt.server, conn, out)?;
        self.out_parses += 1;
        self.drops
            .push_back((self.out_batch, tag::PARSE_COMPLETE, self.out_parses));
        self.pending.push_back(Pending {
            batch: self.out_batch,
            ordinal: self.out_parses,
            server: stmt.server.clone(),
            caller: None,
        });
        self.reprepares += 1;
        conn.touch(&stmt.server);
        out.extend_from_slice(&stmt.parse);
        Ok(stmt.server)
    }

    /// Close the connection's least recently used statement when it is full.
    fn make_room(
        &mut self,
        keep: &[u8],
        conn: &mut ServerStatements,
        out: &mut BytesMut,
    ) -> Result<(), PgError> {
        if conn.len() < MAX_PER_CONNECTION {
            return Ok(());
        }
        if let Some(victim) = conn.evict(keep) {
            self.ours_close(out, &victim)?;
        }
        Ok(())
    }

    fn ours_close(&mut self, out: &mut BytesMut, name: &[u8]) -> Result<(), PgError> {
        self.out_closes += 1;
        self.drops
            .push_back((self.out_batch, tag::CLOSE_COMPLETE, self.out_closes));
        pg::encode_close(out, pg::ObjectKind::Statement, name)
    }

    fn ours_parse(&mut self, out: &mut BytesMut, name: &[u8], query: &[u8]) -> Result<(), PgError> {
        self.out_parses += 1;
        self.drops
            .push_back((self.out_batch, tag::PARSE_COMPLETE, self.out_parses));
        pg::encode_parse(out, name, query, &[])
    }

    /// A ParseComplete or CloseComplete from the server: whether it answers
    /// what the gateway added (then it is dropped before anything above
    /// sees it).
    pub fn incoming(&mut self, t: u8) -> bool {
        let ordinal = match t {
            tag::PARSE_COMPLETE => {
                self.in_parses += 1;
                let n = self.in_parses;
                // Confirmed: no longer pending.
                if let Some(i) = self
                    .pending
                    .iter()
                    .position(|p| p.batch == self.in_batch && p.ordinal == n)
                {
                    self.pending.remove(i);
                }
                n
            }
            tag::CLOSE_COMPLETE => {
                self.in_closes += 1;
                self.in_closes
            }
            _ => return false,
        };
        match self
            .drops
            .iter()
            .position(|d| *d == (self.in_batch, t, ordinal))
        {
            Some(i) => {
                self.drops.remove(i);
                true
            }
            None => false,
        }
    }

    /// ReadyForQuery: the batch is over. A Parse it left unanswered failed
    /// (an error skips to Sync): the connection does not have it, and a
    /// caller's own failed Parse leaves no mapping.
    pub fn ready(&mut self, conn: &mut ServerStatements) {
        let done = self.in_batch;
        while self.pending.front().is_some_and(|p| p.batch <= done) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            conn.remove(&p.server);
            if let Some(name) = p.caller
                && self.caller.get(&name).is_some_and(|s| s.server == p.server)
            {
                self.caller.remove(&name);
            }
        }
        self.drops.retain(|d| d.0 > done);
        self.in_batch += 1;
        self.in_parses = 0;
        self.in_closes = 0;
    }

    /// Nothing the gateway added is still unanswered.
    pub fn settled(&self) -> bool {
        self.drops.is_empty() && self.pending.is_empty()
    }
}

/// `tollgate_` + the first 16 bytes of SHA-256(query, NUL, parameter
/// types) in hex.
fn server_name(query: &[u8], types: &[u8]) -> Bytes {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(query);
    ctx.update(&[0]);
    ctx.update(types);
    let d = ctx.finish();
    let mut name = BytesMut::with_capacity(OURS.len() + 32);
    name.extend_from_slice(OURS);
    for b in d.as_ref().iter().take(16) {
        name.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    name.freeze()
}

/// The rest of `body` after its first `n` NUL-terminated strings.
fn body_after_names(body: &[u8], n: usize) -> Option<&[u8]> {
    let mut rest = body;
    for _ in 0..n {
        let end = memchr::memchr(0, rest)?;
        rest = &rest[end + 1..];
    }
    Some(rest)
}

/// `body` of a message of type `t` with its string field number `field`
/// (0: the first) replaced by `name`, framed, into `out`.
fn renamed(
    out: &mut BytesMut,
    t: u8,
    body: &[u8],
    field: usize,
    name: &[u8],
) -> Result<(), PgError> {
    let bad = PgError::Malformed {
        tag: t,
        what: "name",
    };
    let before = body.len() - body_after_names(body, field).ok_or(bad.clone())?.len();
    let after = body_after_names(body, field + 1).ok_or(bad.clone())?;
    let len = 4 + before + name.len() + 1 + after.len();
    let len = u32::try_from(len).map_err(|_| bad)?;
    out.reserve(1 + len as usize);
    out.put_u8(t);
    out.put_u32(len);
    out.extend_from_slice(&body[..before]);
    out.extend_from_slice(name);
    out.put_u8(0);
    out.extend_from_slice(after);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(b: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut buf = BytesMut::from(b);
        let caps = pg::Caps::frontend(&pg::Limits::default());
        let mut v = Vec::new();
        while let Some(f) = pg::next_frame(&mut buf, &caps).unwrap() {
            v.push((f.tag(), f.body().to_vec()));
        }
        v
    }

    fn parse(name: &str, q: &str) -> Bytes {
        let mut b = BytesMut::new();
        pg::encode_parse(&mut b, name.as_bytes(), q.as_bytes(), &[23]).unwrap();
        b.freeze()
    }

    fn bind(stmt: &str) -> Bytes {
        let mut b = BytesMut::new();
        pg::encode_bind(&mut b, b"", stmt.as_bytes(), &[], [Some(&b"1"[..])], &[]).unwrap();
        b.freeze()
    }

    fn sync() -> Bytes {
        let mut b = BytesMut::new();
        pg::encode_sync(&mut b);
        b.freeze()
    }

    fn out(r: &mut Renamer, f: &[u8], conn: &mut ServerStatements) -> Vec<(u8, Vec<u8>)> {
        match r.outgoing(f, true, conn).unwrap() {
            Out::Same => frames(f),
            Out::Replaced(b) => frames(&b),
        }
    }

    #[test]
    fn a_statement_is_prepared_once_per_connection_and_re_prepared_on_another() {
        let mut r = Renamer::default();
        let mut a = ServerStatements::default();
        let sent = out(&mut r, &parse("s1", "select $1"), &mut a);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, tag::PARSE);
        assert!(sent[0].1.starts_with(b"tollgate_"), "caller name renamed");
        assert!(!sent[0].1.starts_with(b"s1\0"));
        let server = sent[0].1[..sent[0].1.iter().position(|b| *b == 0).unwrap()].to_vec();
        assert!(a.has(&server));
        let b1 = out(&mut r, &bind("s1"), &mut a);
        assert_eq!(b1.len(), 1, "the connection has it: no Parse injected");
        assert!(b1[0].1[1..].starts_with(&server));
        out(&mut r, &sync(), &mut a);
        assert!(!r.incoming(tag::PARSE_COMPLETE), "the caller's own answer");
        assert!(!r.incoming(tag::BIND_COMPLETE));
        r.ready(&mut a);
        assert!(a.has(&server) && r.settled());

        // Next transaction on another connection: Bind re-prepares first.
        let mut b = ServerStatements::default();
        let b2 = out(&mut r, &bind("s1"), &mut b);
        assert_eq!(
            b2.iter().map(|f| f.0).collect::<Vec<_>>(),
            [tag::PARSE, tag::BIND]
        );
        assert_eq!(r.reprepares, 1);
        out(&mut r, &sync(), &mut b);
        assert!(
            r.incoming(tag::PARSE_COMPLETE),
            "the injected ParseComplete is dropped"
        );
        r.ready(&mut b);
        assert!(b.has(&server) && r.settled());

        // A second caller preparing the same text on `b` sends no Parse
        // (the server answers a no-op Parse), and only the Close is ours.
        let mut r2 = Renamer::default();
        let p = out(&mut r2, &parse("other", "select $1"), &mut b);
        assert_eq!(
            p.iter().map(|f| f.0).collect::<Vec<_>>(),
            [tag::CLOSE, tag::PARSE]
        );
        assert!(p[1].1.starts_with(b"tollgate_noop\0\0"));
        out(&mut r2, &sync(), &mut b);
        assert!(r2.incoming(tag::CLOSE_COMPLETE));
        assert!(!r2.incoming(tag::PARSE_COMPLETE));
        r2.ready(&mut b);
    }

    #[test]
    fn a_failed_parse_leaves_neither_mapping_nor_statement() {
        let mut r = Renamer::default();
        let mut a = ServerStatements::default();
        out(&mut r, &parse("bad", "selec 1"), &mut a);
        out(&mut r, &sync(), &mut a);
        assert_eq!(a.len(), 1);
        // ErrorResponse, then ReadyForQuery: no ParseComplete came.
        r.ready(&mut a);
        assert!(a.is_empty());
        let b = out(&mut r, &bind("bad"), &mut a);
        assert_eq!(b.len(), 1, "unknown to the caller now: no re-prepare");
        assert!(b[0].1[1..].starts_with(b"bad\0"));
    }

    #[test]
    fn close_forgets_the_callers_name_and_unknown_reserved_names_go_nowhere() {
        let mut r = Renamer::default();
        let mut a = ServerStatements::default();
        out(&mut r, &parse("s", "select 1"), &mut a);
        let mut c = BytesMut::new();
        pg::encode_close(&mut c, pg::ObjectKind::Statement, b"s").unwrap();
        let closed = out(&mut r, &c, &mut a);
        assert_eq!(closed[0].1, b"Stollgate_noop\0");
        assert_eq!(a.len(), 1, "the server statement stays for others");
        let b = out(&mut r, &bind("tollgate_0123"), &mut a);
        assert!(b[0].1[1..].starts_with(b"tollgate_absent\0"));
    }

    #[test]
    fn a_full_connection_closes_its_least_recently_used_statement() {
        let mut r = Renamer::default();
        let mut a = ServerStatements::default();
        for i in 0..MAX_PER_CONNECTION {
            out(
                &mut r,
                &parse(&format!("s{i}"), &format!("select {i}")),
                &mut a,
            );
        }
        out(&mut r, &bind("s0"), &mut a);
        let p = out(&mut r, &parse("new", "select 'new'"), &mut a);
        assert_eq!(
            p.iter().map(|f| f.0).collect::<Vec<_>>(),
            [tag::CLOSE, tag::PARSE]
        );
        assert_eq!(a.len(), MAX_PER_CONNECTION);
        // s1 went (s0 was used since), and comes back on use.
        let b = out(&mut r, &bind("s1"), &mut a);
        assert_eq!(
            b.iter().map(|f| f.0).collect::<Vec<_>>(),
            [tag::CLOSE, tag::PARSE, tag::BIND]
        );
    }
}
