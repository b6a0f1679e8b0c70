//! A request body read before the rules judge it, when a rule matches on
//! JSON fields: gathered into the caller's buffer (up to
//! `json_body_max`; the relay then forwards it from there, unchanged) and
//! parsed for its top-level fields.
//!
//! Fail closed where an upstream could read what the rules did not: a
//! body labelled JSON (`application/json`, `*/*+json`) must be whole within
//! the cap and parse as one object with no key given twice (parsers
//! disagree on which of two wins), or the request is refused. A body with
//! another or no label is judged by its fields when it parses as such an
//! object (some servers parse JSON whatever the label says), and has none
//! otherwise.

use std::fmt;

use bytes::BytesMut;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde_json::Value;
use tollgate_codecs::http::h1::{BodyFraming, ChunkEvent, ChunkedDecoder, Limits, RequestHead};

use super::io::{Meter, Side};
use super::mask::{is_json, media_type};
use crate::pipeline::EndReason;

/// What the rules get of a body.
pub(crate) enum JsonBody {
    /// The top-level fields of a JSON object body.
    Fields(Vec<(String, Value)>),
    /// Not a JSON object (and not labelled one): no fields.
    None,
    /// Labelled JSON but not readable as the rules need: the status and
    /// why.
    Refused(u16, String),
}

/// The body's media type says JSON (any of its `Content-Type` values: two
/// that disagree could each be believed by someone).
fn labelled_json(head: &RequestHead) -> bool {
    head.fields()
        .get_all("content-type")
        .any(|v| is_json(&media_type(v)))
}

/// Read the request's body into `side.buf` (nothing is consumed) and read
/// its top-level JSON fields.
pub(crate) async fn read(
    side: &mut Side,
    meter: Meter<'_>,
    head: &RequestHead,
    cap: usize,
) -> Result<JsonBody, EndReason> {
    let labelled = labelled_json(head);
    let body = match head.framing() {
        BodyFraming::Length(n) if n <= cap as u64 => {
            let n = n as usize;
            while side.buf.len() < n {
                side.fill_some(meter).await?;
            }
            Some(side.buf[..n].to_vec())
        }
        BodyFraming::Chunked => gather_chunked(side, meter, cap).await?,
        // Over the cap, or read to the close: not gathered.
        _ => None,
    };
    let Some(body) = body else {
        return Ok(if labelled {
            JsonBody::Refused(413, format!("a JSON body over json_body_max ({cap} bytes)"))
        } else {
            JsonBody::None
        });
    };
    Ok(match top_level(&body) {
        Ok(fields) => JsonBody::Fields(fields),
        Err(e) if labelled => JsonBody::Refused(400, format!("JSON body: {e}")),
        Err(_) => JsonBody::None,
    })
}

/// A chunked body's payload once its last chunk is in the buffer; `None`
/// when the payload passes `cap` first.
async fn gather_chunked(
    side: &mut Side,
    meter: Meter<'_>,
    cap: usize,
) -> Result<Option<Vec<u8>>, EndReason> {
    let limits = Limits::default();
    loop {
        // Decode a copy: the buffer itself is relayed as it came.
        let mut copy = BytesMut::from(&side.buf[..]);
        let mut decoder = ChunkedDecoder::new(&limits);
        let mut payload = Vec::new();
        loop {
            match decoder
                .decode(&mut copy)
                .map_err(|e| side.peer.protocol(e))?
            {
                Some(ChunkEvent::Data(d)) => {
                    if payload.len() + d.len() > cap {
                        return Ok(None);
                    }
                    payload.extend_from_slice(&d);
                }
                Some(ChunkEvent::End(_)) => return Ok(Some(payload)),
                None => break,
            }
        }
        side.fill_some(meter).await?;
    }
}

/// One JSON object's top-level fields, a key given twice refused.
pub(crate) fn top_level(body: &[u8]) -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = (&mut de).deserialize_map(TopLevel)?;
    de.end()?;
    Ok(fields)
}

struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(String, Value)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            if fields.iter().any(|(seen, _)| *seen == k) {
                return Err(A::Error::custom(format!("the key {k:?} is given twice")));
            }
            fields.push((k, v));
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_fields_are_read_and_doubles_or_non_objects_refused() {
        let f = top_level(br#"{"env":"prod","n":3,"nested":{"env":"x"}}"#).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0], ("env".into(), Value::String("prod".into())));
        assert!(top_level(br#"{"env":"dev","env":"prod"}"#).is_err());
        assert!(top_level(b"[1,2]").is_err());
        assert!(top_level(br#"{"a":1} {"b":2}"#).is_err());
        assert!(top_level(b"{\"a\":1,}").is_err());
        assert!(top_level(b"\xef\xbb\xbf{}").is_err());
    }
}
