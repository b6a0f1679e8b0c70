//! Decodes recorded PostgreSQL traffic for `tollgate recordings export`:
//! queries and prepared statements the client sent, and the row
//! descriptions, rows, completions and errors that came back (as forwarded,
//! so masked values stay masked). Recorded data records hold whole frames
//! (the relay forwards and records runs of complete messages).

use serde_json::{Map, Value, json};
use tollgate_codecs::pg::{self, Caps, Limits, tag};
use tollgate_recorder::{Decoder, Direction};

/// Exported values longer than this are cut (the raw record keeps them whole).
const MAX_VALUE: usize = 4096;

pub struct PgDecoder {
    front: Caps,
    back: Caps,
}

impl Default for PgDecoder {
    fn default() -> Self {
        PgDecoder {
            front: Caps::frontend(&Limits::default()),
            back: Caps::backend(&Limits::default()),
        }
    }
}

fn text(b: &[u8]) -> Value {
    let b = &b[..b.len().min(MAX_VALUE)];
    Value::String(String::from_utf8_lossy(b).into_owned())
}

impl Decoder for PgDecoder {
    fn decode(
        &mut self,
        _session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        let caps = match direction {
            Direction::ClientToTarget => &self.front,
            Direction::TargetToClient => &self.back,
        };
        let mut buf = bytes::BytesMut::from(data);
        let mut messages = Vec::new();
        while let Ok(Some(f)) = pg::next_frame(&mut buf, caps) {
            let body = f.body();
            let m = match (direction, f.tag()) {
                (Direction::ClientToTarget, tag::QUERY) => {
                    json!({"type": "query", "sql": text(body.strip_suffix(&[0]).unwrap_or(body))})
                }
                (Direction::ClientToTarget, tag::PARSE) => match pg::Parse::parse_body(body) {
                    Ok(p) => {
                        json!({"type": "parse", "statement": text(p.name), "sql": text(p.query)})
                    }
                    Err(_) => continue,
                },
                (Direction::ClientToTarget, tag::BIND) => json!({"type": "bind"}),
                (Direction::ClientToTarget, tag::EXECUTE) => json!({"type": "execute"}),
                (Direction::ClientToTarget, tag::SYNC) => json!({"type": "sync"}),
                (Direction::ClientToTarget, tag::TERMINATE) => json!({"type": "terminate"}),
                (Direction::ClientToTarget, tag::COPY_DATA) => {
                    json!({"type": "copy_data", "data": text(body)})
                }
                (Direction::TargetToClient, tag::ROW_DESCRIPTION) => {
                    match pg::RowDescription::parse_body(body) {
                        Ok(rd) => {
                            json!({"type": "row_description", "columns": rd.fields().map(|f| text(f.name)).collect::<Vec<_>>()})
                        }
                        Err(_) => continue,
                    }
                }
                (Direction::TargetToClient, tag::DATA_ROW) => match pg::DataRow::parse_body(body) {
                    Ok(row) => {
                        json!({"type": "data_row", "values": row.values().map(|v| v.map_or(Value::Null, text)).collect::<Vec<_>>()})
                    }
                    Err(_) => continue,
                },
                (Direction::TargetToClient, tag::COMMAND_COMPLETE) => {
                    json!({"type": "command_complete", "tag": text(body.strip_suffix(&[0]).unwrap_or(body))})
                }
                (Direction::TargetToClient, tag::ERROR_RESPONSE) => {
                    match pg::ErrorResponse::parse_body(tag::ERROR_RESPONSE, body) {
                        Ok(e) => {
                            json!({"type": "error", "code": text(e.code().unwrap_or_default()), "message": text(e.message().unwrap_or_default())})
                        }
                        Err(_) => continue,
                    }
                }
                (Direction::TargetToClient, tag::COPY_DATA) => {
                    json!({"type": "copy_data", "data": text(body)})
                }
                (Direction::TargetToClient, tag::READY_FOR_QUERY) => json!({"type": "ready"}),
                _ => continue,
            };
            messages.push(m);
        }
        if !messages.is_empty() {
            fields.insert("pg".into(), Value::Array(messages));
        }
    }
}
