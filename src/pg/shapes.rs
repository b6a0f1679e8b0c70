//! Row shapes of the prepared statements and portals a session relays, so
//! DataRows are masked by column even when no RowDescription precedes them.
//!
//! Drivers with statement caches (asyncpg, pgjdbc, tokio-postgres, psycopg's
//! prepared statements) describe a statement once and then only Bind and
//! Execute it: the rows of later executions arrive without a description.
//! The client direction tells this tracker every message it forwards
//! ([`Shapes::client_message`]); the upstream direction feeds it every
//! response ([`Shapes::upstream_message`]) and learns, at the start of each
//! result, which columns the rows carry. Responses come back in the order
//! the requests went out, so a queue of pending requests pairs each response
//! with its request; an error voids the requests up to the next Sync, as the
//! server does. State changes take effect when the server confirms them
//! (ParseComplete, BindComplete, CloseComplete), never on the request alone.
//!
//! Lifetimes follow the server's: a statement lives until Close, a
//! re-Parse of the unnamed statement, a simple Query (unnamed only),
//! `DEALLOCATE`/`DISCARD ALL`; a portal until Close, a re-Bind of the unnamed
//! portal, or the end of its transaction (ReadyForQuery idle). SQL-level
//! `PREPARE`/`DECLARE` create objects the gateway never saw described: a
//! shape it does not know is reported as unknown, and masking fails closed.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use tollgate_codecs::pg::{
    self, Bind, Close, CommandComplete, Describe, Execute, ObjectKind, Parse, PgError,
    RowDescription, tag,
};

/// Most statements (and, apart, portals) tracked per session; past it the
/// oldest are forgotten, which only makes their shape unknown (fail closed).
pub const MAX_TRACKED: usize = 1024;
/// Longest statement text kept for the derived-column check; a longer one
/// is not kept, and the check then assumes it references a masked column.
pub const MAX_KEPT_SQL: usize = 64 * 1024;

/// A statement's text as kept: `None` when it was too long to keep.
pub type Sql = Option<Rc<[u8]>>;

fn keep_sql(sql: &[u8]) -> Sql {
    (sql.len() <= MAX_KEPT_SQL).then(|| Rc::from(sql))
}

fn no_sql() -> Sql {
    Some(Rc::from(&[][..]))
}
/// The statement name under which the gateway describes what a
/// `COPY … TO STDOUT` sends (see `copystmt`): reserved, like the syntax
/// probe's. Its responses never reach the client.
pub const COPY_PROBE: &[u8] = b"tollgate_copy_columns";

/// The columns a COPY sends, as described just before it, with the text
/// that was described (for the derived-column check).
#[derive(Clone, Debug)]
pub struct CopyColumns {
    pub columns: Rc<[Column]>,
    pub sql: Sql,
}

/// What the gateway knows of a COPY OUT that starts.
#[derive(Clone, Debug)]
pub struct CopyShape {
    /// `None`: never described (no probe ran, or it failed).
    pub columns: Option<CopyColumns>,
    /// The COPY statement's own text (for its format options).
    pub statement: Sql,
}

/// Most requests awaiting a response (a pipeline deeper than this is cut:
/// the oldest entries are dropped and their results become unknown).
pub const MAX_PENDING: usize = 65_536;

/// One result column as the server described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: Box<[u8]>,
    /// Table OID and attribute number when the column is a plain table
    /// column (0 for expressions).
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// The rows of one result: described columns, or a shape never seen.
#[derive(Clone, Debug)]
pub enum ResultShape {
    Known {
        columns: Rc<[Column]>,
        /// The statement's text, for the reference check (empty if there
        /// is none, `None` if it was too long to keep).
        sql: Sql,
    },
    /// Rows whose columns the gateway cannot name (`what` says why).
    Unknown { what: String },
}

#[derive(Clone, Debug)]
struct Statement {
    sql: Sql,
    /// From Describe (S): names and types; formats are all text there.
    columns: Option<Rc<[Column]>>,
    /// Bumped per Parse, so a portal bound to an older statement of the same
    /// name never picks up the newer one's description.
    generation: u64,
    /// A COPY TO STDOUT statement: the columns described just before it.
    copy: Option<CopyColumns>,
}

#[derive(Clone, Debug)]
struct Portal {
    statement: Box<[u8]>,
    generation: u64,
    sql: Sql,
    /// From Describe (P) (formats included), or the statement's at Bind.
    columns: Option<Rc<[Column]>>,
    /// Bind's result-format codes (0, 1 or one per column).
    formats: Box<[i16]>,
    described: bool,
    copy: Option<CopyColumns>,
}

/// A request waiting for its response.
#[derive(Debug)]
enum Pending {
    Parse {
        name: Box<[u8]>,
        sql: Sql,
    },
    Bind {
        portal: Box<[u8]>,
        statement: Box<[u8]>,
        formats: Box<[i16]>,
    },
    Describe {
        kind: ObjectKind,
        name: Box<[u8]>,
    },
    Execute {
        portal: Box<[u8]>,
    },
    Close {
        kind: ObjectKind,
        name: Box<[u8]>,
    },
    /// `probe`: the Sync the gateway sends after a COPY description ahead
    /// of a simple Query (its ReadyForQuery is not the client's).
    Sync {
        probe: bool,
    },
    /// A simple Query (or a FunctionCall): answered up to ReadyForQuery.
    Simple {
        sql: Sql,
    },
}

/// What an upstream message means for the rows that follow.
#[derive(Debug)]
pub enum Step {
    /// Nothing changes.
    Same,
    /// A result starts: rows that follow have this shape.
    Result(ResultShape),
    /// The current result is over (its rows are not masked any more).
    End,
    /// A COPY OUT starts.
    Copy(CopyShape),
}

/// Per-session tracker; lives in the relay's shared `Flow`.
#[derive(Debug, Default)]
pub struct Shapes {
    statements: HashMap<Box<[u8]>, Statement>,
    portals: HashMap<Box<[u8]>, Portal>,
    pending: VecDeque<Pending>,
    generation: u64,
    /// A result is open (its shape was announced).
    in_result: bool,
    /// The last COPY description, for the COPY right behind it.
    copy_next: Option<CopyColumns>,
    /// The last client-bound message was the Close of a COPY description.
    after_probe_close: bool,
    /// A COPY description ahead of a simple Query failed: its error is the
    /// client's, and the Query's own (the same, or "transaction aborted")
    /// is dropped.
    drop_copy_error: bool,
}

fn to_columns(rd: &RowDescription<'_>) -> Rc<[Column]> {
    rd.fields()
        .map(|f| Column {
            name: f.name.into(),
            table_oid: f.table_oid,
            column_id: f.column_id,
            type_oid: f.type_oid,
            format: f.format,
        })
        .collect()
}

/// Bind's result-format codes applied to a statement's columns.
fn with_formats(columns: &[Column], formats: &[i16]) -> Rc<[Column]> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| Column {
            format: match formats.len() {
                0 => 0,
                1 => formats[0],
                _ => formats.get(i).copied().unwrap_or(0),
            },
            ..c.clone()
        })
        .collect()
}

fn cap<V>(map: &mut HashMap<Box<[u8]>, V>) {
    if map.len() >= MAX_TRACKED
        && let Some(k) = map.keys().next().cloned()
    {
        map.remove(&k);
    }
}

impl Shapes {
    /// A client message the gateway forwards to the upstream (after any
    /// rewrite: call it with what the server will actually receive).
    pub fn client_message(&mut self, t: u8, body: &[u8]) -> Result<(), PgError> {
        let p = match t {
            tag::QUERY => Pending::Simple {
                sql: keep_sql(body.strip_suffix(&[0]).unwrap_or(body)),
            },
            tag::FUNCTION_CALL => Pending::Simple { sql: no_sql() },
            tag::PARSE => {
                let p = Parse::parse_body(body)?;
                Pending::Parse {
                    name: p.name.into(),
                    sql: keep_sql(p.query),
                }
            }
            tag::BIND => {
                let b = Bind::parse_body(body)?;
                Pending::Bind {
                    portal: b.portal.into(),
                    statement: b.statement.into(),
                    formats: b.result_formats.iter().collect(),
                }
            }
            tag::DESCRIBE => {
                let d = Describe::parse_body(body)?;
                Pending::Describe {
                    kind: d.kind,
                    name: d.name.into(),
                }
            }
            tag::EXECUTE => Pending::Execute {
                portal: Execute::parse_body(body)?.portal.into(),
            },
            tag::CLOSE => {
                let c = Close::parse_body(body)?;
                Pending::Close {
                    kind: c.kind,
                    name: c.name.into(),
                }
            }
            tag::SYNC => Pending::Sync {
                probe: self.after_probe_close,
            },
            _ => return Ok(()),
        };
        self.after_probe_close = matches!(
            &p,
            Pending::Close { kind: ObjectKind::Statement, name } if **name == *COPY_PROBE
        );
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(p);
        Ok(())
    }

    /// An upstream message, in order. Says where results start and end.
    pub fn upstream_message(&mut self, t: u8, body: &[u8]) -> Result<Step, PgError> {
        Ok(match t {
            tag::PARSE_COMPLETE => {
                if let Some(Pending::Parse { name, sql }) =
                    self.pop_if(|p| matches!(p, Pending::Parse { .. }))
                {
                    self.generation += 1;
                    cap(&mut self.statements);
                    // The description of a COPY goes to the Parse right
                    // behind it (the COPY's own); a new one voids the last.
                    let copy = if *name == *COPY_PROBE {
                        self.copy_next = None;
                        None
                    } else {
                        self.copy_next.take()
                    };
                    self.statements.insert(
                        name,
                        Statement {
                            sql,
                            columns: None,
                            generation: self.generation,
                            copy,
                        },
                    );
                }
                Step::Same
            }
            tag::BIND_COMPLETE => {
                if let Some(Pending::Bind {
                    portal,
                    statement,
                    formats,
                }) = self.pop_if(|p| matches!(p, Pending::Bind { .. }))
                {
                    let st = self.statements.get(&statement);
                    let portal_state = Portal {
                        generation: st.map_or(0, |s| s.generation),
                        sql: st.map_or_else(no_sql, |s| s.sql.clone()),
                        columns: st
                            .and_then(|s| s.columns.as_deref())
                            .map(|c| with_formats(c, &formats)),
                        copy: st.and_then(|s| s.copy.clone()),
                        statement,
                        formats,
                        described: false,
                    };
                    cap(&mut self.portals);
                    self.portals.insert(portal, portal_state);
                }
                Step::Same
            }
            tag::CLOSE_COMPLETE => {
                if let Some(Pending::Close { kind, name }) =
                    self.pop_if(|p| matches!(p, Pending::Close { .. }))
                {
                    match kind {
                        ObjectKind::Statement => {
                            self.statements.remove(&name);
                        }
                        ObjectKind::Portal => {
                            self.portals.remove(&name);
                        }
                    }
                }
                Step::Same
            }
            tag::ROW_DESCRIPTION => self.row_description(body)?,
            tag::NO_DATA => {
                self.described(Rc::from(Vec::new()));
                Step::Same
            }
            tag::COPY_OUT_RESPONSE if !self.in_result => {
                self.in_result = true;
                Step::Copy(self.copy_shape())
            }
            tag::DATA_ROW | tag::COPY_BOTH_RESPONSE if !self.in_result => {
                self.in_result = true;
                Step::Result(self.executing_shape())
            }
            tag::COMMAND_COMPLETE => {
                if let Ok(cc) = CommandComplete::parse_body(body) {
                    self.command_done(cc.tag);
                }
                self.end_of_execute()
            }
            tag::EMPTY_QUERY_RESPONSE | tag::PORTAL_SUSPENDED => self.end_of_execute(),
            tag::ERROR_RESPONSE => {
                self.in_result = false;
                self.copy_next = None;
                if !matches!(self.pending.front(), Some(Pending::Simple { .. })) {
                    // The server skips everything up to the next Sync.
                    while self.pending.front().is_some_and(|p| {
                        !matches!(p, Pending::Sync { .. } | Pending::Simple { .. })
                    }) {
                        self.pending.pop_front();
                    }
                }
                Step::End
            }
            tag::READY_FOR_QUERY => {
                self.in_result = false;
                while let Some(p) = self.pending.pop_front() {
                    if let Pending::Simple { .. } = p {
                        // A simple Query destroys the unnamed statement and portal.
                        self.statements.remove(&b""[..]);
                        self.portals.remove(&b""[..]);
                        self.copy_next = None;
                        self.drop_copy_error = false;
                        break;
                    }
                    if let Pending::Sync { .. } = p {
                        break;
                    }
                }
                if pg::ReadyForQuery::parse_body(body)
                    .is_ok_and(|r| r.status == pg::TransactionStatus::Idle)
                {
                    // Portals do not outlive their transaction.
                    self.portals.clear();
                }
                Step::End
            }
            _ => Step::Same,
        })
    }

    /// Whether an upstream message (not yet fed to
    /// [`upstream_message`](Self::upstream_message)) answers the gateway's own
    /// COPY description and must not reach the client. Call it first.
    pub fn copy_probe_drop(&mut self, t: u8) -> bool {
        let probe = |name: &[u8]| name == COPY_PROBE;
        match (self.pending.front(), t) {
            (Some(Pending::Parse { name, .. }), tag::PARSE_COMPLETE) => probe(name),
            (
                Some(Pending::Describe {
                    kind: ObjectKind::Statement,
                    name,
                }),
                tag::PARAMETER_DESCRIPTION | tag::ROW_DESCRIPTION | tag::NO_DATA,
            ) => probe(name),
            (
                Some(Pending::Close {
                    kind: ObjectKind::Statement,
                    name,
                }),
                tag::CLOSE_COMPLETE,
            ) => probe(name),
            (Some(Pending::Sync { probe }), tag::READY_FOR_QUERY) => *probe,
            (Some(Pending::Parse { name, .. }), tag::ERROR_RESPONSE) => {
                // The description failed: its error goes to the client. Ahead
                // of a simple Query, that Query's own error is then dropped.
                if probe(name) {
                    self.drop_copy_error = self
                        .pending
                        .iter()
                        .find(|p| matches!(p, Pending::Sync { .. }))
                        .is_some_and(|p| matches!(p, Pending::Sync { probe: true }));
                }
                false
            }
            (Some(Pending::Simple { .. }), tag::ERROR_RESPONSE) => {
                std::mem::take(&mut self.drop_copy_error)
            }
            _ => false,
        }
    }

    /// The columns of the COPY OUT now starting.
    fn copy_shape(&mut self) -> CopyShape {
        match self.pending.front() {
            Some(Pending::Simple { sql }) => CopyShape {
                statement: sql.clone(),
                columns: self.copy_next.take(),
            },
            Some(Pending::Execute { portal }) => match self.portals.get(portal) {
                Some(p) => CopyShape {
                    statement: p.sql.clone(),
                    columns: p.copy.clone(),
                },
                None => CopyShape {
                    statement: None,
                    columns: None,
                },
            },
            _ => CopyShape {
                statement: None,
                columns: None,
            },
        }
    }

    fn pop_if(&mut self, f: impl Fn(&Pending) -> bool) -> Option<Pending> {
        if self.pending.front().is_some_and(f) {
            self.pending.pop_front()
        } else {
            None
        }
    }

    fn row_description(&mut self, body: &[u8]) -> Result<Step, PgError> {
        let rd = RowDescription::parse_body(body)?;
        let columns = to_columns(&rd);
        match self.pending.front() {
            Some(Pending::Describe { .. }) => {
                self.described(columns);
                Ok(Step::Same)
            }
            Some(Pending::Simple { sql }) => {
                let sql = sql.clone();
                self.in_result = true;
                Ok(Step::Result(ResultShape::Known { columns, sql }))
            }
            // A description nobody asked for: trust it for the rows that
            // follow rather than drop what it says.
            _ => {
                self.in_result = true;
                Ok(Step::Result(ResultShape::Known {
                    columns,
                    sql: no_sql(),
                }))
            }
        }
    }

    /// The answer to a Describe: record the shape on its object.
    fn described(&mut self, columns: Rc<[Column]>) {
        let Some(Pending::Describe { kind, name }) =
            self.pop_if(|p| matches!(p, Pending::Describe { .. }))
        else {
            return;
        };
        match kind {
            ObjectKind::Statement => {
                if let Some(s) = self.statements.get_mut(&name) {
                    if *name == *COPY_PROBE {
                        self.copy_next = Some(CopyColumns {
                            columns: columns.clone(),
                            sql: s.sql.clone(),
                        });
                    }
                    s.columns = Some(columns);
                }
            }
            ObjectKind::Portal => {
                if let Some(p) = self.portals.get_mut(&name) {
                    p.columns = Some(columns);
                    p.described = true;
                }
            }
        }
    }

    /// The shape of the rows now arriving (the first row, or COPY OUT).
    fn executing_shape(&mut self) -> ResultShape {
        match self.pending.front() {
            Some(Pending::Execute { portal }) => {
                let Some(p) = self.portals.get(portal) else {
                    return ResultShape::Unknown {
                        what: format!("portal {:?}", String::from_utf8_lossy(portal)),
                    };
                };
                let columns = p.columns.clone().or_else(|| {
                    // Bound before its statement's description came back.
                    let s = self.statements.get(&p.statement)?;
                    (s.generation == p.generation)
                        .then(|| s.columns.as_deref().map(|c| with_formats(c, &p.formats)))
                        .flatten()
                });
                match columns {
                    Some(columns) => ResultShape::Known {
                        columns,
                        sql: p.sql.clone(),
                    },
                    None => ResultShape::Unknown {
                        what: format!(
                            "portal {:?} (statement {:?} was never described)",
                            String::from_utf8_lossy(portal),
                            String::from_utf8_lossy(&p.statement)
                        ),
                    },
                }
            }
            // Rows without a description in a simple query (FETCH from a
            // cursor always sends one; anything else is unexpected).
            _ => ResultShape::Unknown {
                what: "rows without a description".into(),
            },
        }
    }

    fn end_of_execute(&mut self) -> Step {
        self.in_result = false;
        self.pop_if(|p| matches!(p, Pending::Execute { .. }));
        Step::End
    }

    /// SQL-level statements that create or drop statements and portals the
    /// protocol never named: forget what may now be stale.
    fn command_done(&mut self, command: &[u8]) {
        let word = command.split(|b| *b == b' ').next().unwrap_or_default();
        match word {
            b"DEALLOCATE" | b"PREPARE" => self.statements.clear(),
            b"DISCARD" => {
                self.statements.clear();
                self.portals.clear();
            }
            b"DECLARE" | b"CLOSE" => self.portals.clear(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
