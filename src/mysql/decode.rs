//! `tollgate recordings export` for MySQL sessions: the commands a client
//! sent (statements with their text), and what came back: OK, ERR, column
//! names and text-protocol rows (as recorded, so after masking). Binary
//! rows (of an execute or a cursor's fetch) are shown as such, without
//! their values.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use tollgate_codecs::mysql::{
    ColumnDefinition, Command, ErrPacket, MAX_COLUMNS, QueryResponse, TextRow, caps,
    is_end_of_rows, is_err, next_packet,
};
use tollgate_recorder::{Decoder, Direction};

const MAX_VALUE: usize = 4096;
/// What the decoder reads the session's packets with.
const CAPS: u32 = caps::PROTOCOL_41 | caps::SESSION_TRACK | caps::DEPRECATE_EOF;

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(&b[..b.len().min(MAX_VALUE)]).into_owned())
}

/// Where a session's answer is.
#[derive(Debug, Clone, Default)]
enum State {
    #[default]
    Idle,
    Columns {
        left: u64,
        total: usize,
        names: Vec<Value>,
        binary: bool,
    },
    Rows {
        columns: usize,
        binary: bool,
    },
    /// The client sends a file (LOAD DATA LOCAL) until an empty packet.
    Infile,
}

#[derive(Default)]
pub struct MyDecoder {
    sessions: HashMap<u64, (State, bool)>,
}

impl Decoder for MyDecoder {
    fn decode(
        &mut self,
        session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        let mut buf = bytes::BytesMut::from(data);
        let mut out = Vec::new();
        let (state, binary) = self.sessions.entry(session).or_default();
        while let Ok(Some(p)) = next_packet(&mut buf, usize::MAX) {
            let m = match direction {
                Direction::ClientToTarget if matches!(state, State::Infile) => {
                    if p.payload.is_empty() {
                        *state = State::Idle;
                        json!({"type": "local_infile_end"})
                    } else {
                        json!({"type": "local_infile_data", "data": text(&p.payload)})
                    }
                }
                Direction::ClientToTarget => {
                    let Ok(c) = Command::parse(&p.payload, CAPS) else {
                        continue;
                    };
                    *binary = matches!(c, Command::StmtExecute(_) | Command::StmtFetch { .. });
                    // A fetch is answered by rows of the cursor (or an ERR).
                    *state = match c {
                        Command::StmtFetch { .. } => State::Rows {
                            columns: 0,
                            binary: true,
                        },
                        _ => State::Idle,
                    };
                    command(&c)
                }
                Direction::TargetToClient => match answer(state, *binary, &p.payload) {
                    Some(m) => m,
                    None => continue,
                },
            };
            out.push(m);
        }
        if !out.is_empty() {
            fields.insert("mysql".into(), Value::Array(out));
        }
    }
}

fn command(c: &Command<'_>) -> Value {
    match c {
        Command::Query { sql } => json!({"type": "query", "sql": text(sql)}),
        Command::StmtPrepare { sql } => json!({"type": "prepare", "sql": text(sql)}),
        Command::StmtExecute(e) => json!({"type": "execute", "statement": e.stmt_id}),
        Command::StmtFetch { stmt_id, rows } => {
            json!({"type": "fetch", "statement": stmt_id, "rows": rows})
        }
        Command::InitDb { schema } => json!({"type": "init_db", "schema": text(schema)}),
        Command::Quit => json!({"type": "quit"}),
        other => json!({"type": "command", "code": other.code()}),
    }
}

fn answer(state: &mut State, binary: bool, payload: &[u8]) -> Option<Value> {
    match std::mem::take(state) {
        State::Idle => match QueryResponse::parse(payload, CAPS).ok()? {
            QueryResponse::Ok(ok) => Some(json!({"type": "ok", "affected_rows": ok.affected_rows})),
            QueryResponse::Err(e) => Some(err(&e)),
            QueryResponse::LocalInfile { filename } => {
                *state = State::Infile;
                Some(json!({"type": "local_infile", "file": text(filename)}))
            }
            QueryResponse::ResultSet { columns } if columns <= MAX_COLUMNS => {
                *state = State::Columns {
                    left: columns,
                    total: columns as usize,
                    names: Vec::new(),
                    binary,
                };
                None
            }
            QueryResponse::ResultSet { .. } => None,
        },
        State::Columns {
            left,
            total,
            mut names,
            binary,
        } => {
            let def = ColumnDefinition::parse(payload).ok()?;
            names.push(text(def.name));
            if left > 1 {
                *state = State::Columns {
                    left: left - 1,
                    total,
                    names,
                    binary,
                };
                return None;
            }
            *state = State::Rows {
                columns: total,
                binary,
            };
            Some(json!({"type": "columns", "columns": names}))
        }
        State::Infile => {
            *state = State::Infile;
            None
        }
        State::Rows { columns, binary } => {
            if is_err(payload) {
                return ErrPacket::parse(payload).ok().map(|e| err(&e));
            }
            if is_end_of_rows(payload) {
                return Some(json!({"type": "end_of_rows"}));
            }
            *state = State::Rows { columns, binary };
            if binary {
                return Some(json!({"type": "binary_row"}));
            }
            let row = TextRow::parse(payload, columns).ok()?;
            let values: Vec<Value> = row.values().map(|v| v.map_or(Value::Null, text)).collect();
            Some(json!({"type": "row", "values": values}))
        }
    }
}

fn err(e: &ErrPacket<'_>) -> Value {
    json!({
        "type": "error",
        "code": e.code,
        "sqlstate": e.sqlstate.map(|s| String::from_utf8_lossy(&s).into_owned()),
        "message": text(e.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use tollgate_codecs::mysql::{encode_column_count, encode_text_row, write_packet};

    #[test]
    fn a_query_and_its_rows_decode() {
        let mut d = MyDecoder::default();
        let mut f = Map::new();
        let mut b = BytesMut::new();
        write_packet(&mut b, 0, b"\x03select 1");
        d.decode(1, Direction::ClientToTarget, &b, &mut f);
        assert!(f["mysql"].to_string().contains("select 1"), "{f:?}");
        let mut b = BytesMut::new();
        let mut p = BytesMut::new();
        encode_column_count(&mut p, 1);
        write_packet(&mut b, 1, &p);
        let def = ColumnDefinition {
            catalog: b"def",
            schema: b"",
            table: b"",
            org_table: b"",
            name: b"card",
            org_name: b"",
            charset: 45,
            length: 10,
            column_type: 253,
            flags: 0,
            decimals: 0,
            default_values: None,
        };
        let mut p = BytesMut::new();
        def.encode(&mut p);
        write_packet(&mut b, 2, &p);
        let mut p = BytesMut::new();
        encode_text_row(&mut p, [Some(&b"****"[..])].into_iter(), &[]);
        write_packet(&mut b, 3, &p);
        write_packet(&mut b, 4, b"\xfe\x00\x00\x02\x00\x00\x00");
        let mut f = Map::new();
        d.decode(1, Direction::TargetToClient, &b, &mut f);
        let s = f["mysql"].to_string();
        assert!(
            s.contains("card") && s.contains("****") && s.contains("end_of_rows"),
            "{s}"
        );
    }

    #[test]
    fn a_fetch_answer_decodes_as_rows_not_as_ok_packets() {
        let mut d = MyDecoder::default();
        let mut f = Map::new();
        let mut b = BytesMut::new();
        write_packet(&mut b, 0, &[0x1c, 1, 0, 0, 0, 2, 0, 0, 0]);
        d.decode(1, Direction::ClientToTarget, &b, &mut f);
        assert!(f["mysql"].to_string().contains("\"fetch\""), "{f:?}");
        // A binary row starts with 0x00, as an OK does.
        let mut b = BytesMut::new();
        write_packet(&mut b, 1, b"\x00\x00\x01\x07");
        write_packet(&mut b, 2, b"\xfe\x00\x00\x42\x00\x00\x00");
        let mut f = Map::new();
        d.decode(1, Direction::TargetToClient, &b, &mut f);
        let s = f["mysql"].to_string();
        assert!(s.contains("binary_row") && s.contains("end_of_rows"), "{s}");
        assert!(!s.contains("\"ok\""), "{s}");
    }
}
