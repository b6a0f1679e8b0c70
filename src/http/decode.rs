//! `tollgate recordings export` for HTTP sessions. The relay records each
//! request head (as sent upstream, without the injected credential and the
//! caller's token), each response head, and the first bytes of each body as
//! separate data records: a record that parses as a head is shown as one
//! (`http.request` / `http.response` and `http.headers`), anything else as
//! body text (`http.body`, cut at 4 KiB).

use bytes::BytesMut;
use serde_json::{Map, Value, json};
use tollgate_codecs::http::h1::{Fields, Limits, parse_request_head, parse_response_head};
use tollgate_recorder::{Decoder, Direction};

const MAX_VALUE: usize = 4096;

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(&b[..b.len().min(MAX_VALUE)]).into_owned())
}

fn headers(f: &Fields) -> Value {
    Value::Array(
        f.iter()
            .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
            .collect(),
    )
}

#[derive(Default)]
pub struct HttpDecoder;

impl Decoder for HttpDecoder {
    fn decode(
        &mut self,
        _session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        let limits = Limits::default();
        let mut buf = BytesMut::from(data);
        match direction {
            Direction::ClientToTarget => {
                if let Ok(Some(h)) = parse_request_head(&mut buf, &limits) {
                    fields.insert(
                        "http.request".into(),
                        json!(format!("{} {}", h.method(), h.target())),
                    );
                    fields.insert("http.headers".into(), headers(h.fields()));
                    return;
                }
            }
            Direction::TargetToClient => {
                if let Ok(Some(h)) = parse_response_head(&mut buf, &limits) {
                    fields.insert("http.response".into(), json!(h.status()));
                    fields.insert("http.headers".into(), headers(h.fields()));
                    return;
                }
            }
        }
        fields.insert("http.body".into(), text(data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(direction: Direction, data: &[u8]) -> Map<String, Value> {
        let mut fields = Map::new();
        HttpDecoder.decode(1, direction, data, &mut fields);
        fields
    }

    #[test]
    fn heads_and_bodies_are_told_apart() {
        let f = decoded(
            Direction::ClientToTarget,
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nVia: 1.1 tollgate\r\n\r\n",
        );
        assert_eq!(f["http.request"], json!("GET /a?b=1"));
        assert_eq!(f["http.headers"][1], json!(["Via", "1.1 tollgate"]));
        let f = decoded(
            Direction::TargetToClient,
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        assert_eq!(f["http.response"], json!(204));
        let f = decoded(Direction::ClientToTarget, b"{\"a\": 1}");
        assert_eq!(f["http.body"], json!("{\"a\": 1}"));
    }
}
