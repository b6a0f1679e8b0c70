//! What a recording holds: the record types and their compact binary encoding.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::format::{FormatError, MAX_RECORD_BODY, RECORD_HEADER_LEN, u32_at, u64_at};

/// One recorded event of a session (or of the admin plane, session id 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub session: u64,
    /// Unix time in nanoseconds.
    pub timestamp_ns: u64,
    pub body: RecordBody,
}

/// The event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    SessionStart(SessionStart),
    /// Bytes the client sent, as forwarded to the target.
    ClientData(Bytes),
    /// Bytes the target sent, as forwarded to the client (after masking).
    TargetData(Bytes),
    Command(CommandEvent),
    Admin(AdminAction),
    SessionEnd(SessionEnd),
    /// A signed chain-head checkpoint or retention deletion, written by the
    /// recorder itself (session id 0).
    Checkpoint(Checkpoint),
}

/// Who connected to what, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    pub target: String,
    #[serde(default)]
    pub client_addr: Option<String>,
    #[serde(default)]
    pub tls_version: Option<String>,
    #[serde(default)]
    pub tls_cipher: Option<String>,
    #[serde(default)]
    pub tls_client_cert: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A classified command and what policy decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEvent {
    pub statement: String,
    /// `allow`, `block` or `approve`.
    pub verdict: String,
    #[serde(default)]
    pub rule: Option<String>,
    /// For held commands: `approved`, `denied`, `timeout`, with the reviewer.
    #[serde(default)]
    pub approval: Option<String>,
    /// Shadow mode: the verdict the policy would have given (`block`,
    /// `approve`) had the shadow rule enforced. Absent in records written
    /// before it existed and when no shadow rule applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_verdict: Option<String>,
    /// The shadow rule (or default) behind `shadow_verdict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_rule: Option<String>,
}

/// Something an administrator did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAction {
    pub actor: String,
    pub action: String,
    pub object: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// How and when a session closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub reason: String,
    pub bytes_client_to_target: u64,
    pub bytes_target_to_client: u64,
    pub duration_ns: u64,
}

/// The kind byte of a raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    SessionStart = 1,
    ClientData = 2,
    TargetData = 3,
    Command = 4,
    Admin = 5,
    SessionEnd = 6,
    Checkpoint = 7,
}

impl RecordKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::SessionStart,
            2 => Self::ClientData,
            3 => Self::TargetData,
            4 => Self::Command,
            5 => Self::Admin,
            6 => Self::SessionEnd,
            7 => Self::Checkpoint,
            _ => return None,
        })
    }

    /// The name used in exports.
    pub fn name(self) -> &'static str {
        match self {
            Self::SessionStart => "session_start",
            Self::ClientData => "client_data",
            Self::TargetData => "target_data",
            Self::Command => "command",
            Self::Admin => "admin",
            Self::SessionEnd => "session_end",
            Self::Checkpoint => "checkpoint",
        }
    }
}

impl RecordBody {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::SessionStart(_) => RecordKind::SessionStart,
            Self::ClientData(_) => RecordKind::ClientData,
            Self::TargetData(_) => RecordKind::TargetData,
            Self::Command(_) => RecordKind::Command,
            Self::Admin(_) => RecordKind::Admin,
            Self::SessionEnd(_) => RecordKind::SessionEnd,
            Self::Checkpoint(_) => RecordKind::Checkpoint,
        }
    }
}

impl Record {
    /// An upper bound on the encoded size, used to refuse oversized records
    /// before they are queued.
    pub fn data_len(&self) -> usize {
        match &self.body {
            RecordBody::ClientData(b) | RecordBody::TargetData(b) => b.len(),
            _ => 0,
        }
    }

    /// Appends the raw encoding (header + body) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let kind = self.body.kind();
        if let RecordBody::ClientData(b) | RecordBody::TargetData(b) = &self.body {
            return encode_data_into(out, kind, self.session, self.timestamp_ns, b);
        }
        let start = out.len();
        push_header(out, kind, self.session, self.timestamp_ns, 0);
        let body_start = out.len();
        let written = self.encode_meta(out);
        if let Err(e) = written {
            out.truncate(start);
            return Err(FormatError::Invalid {
                field: "record body",
                detail: e.to_string(),
            });
        }
        let body_len = out.len() - body_start;
        if body_len > MAX_RECORD_BODY {
            out.truncate(start);
            return Err(FormatError::TooLarge {
                field: "record body",
                len: body_len as u64,
                max: MAX_RECORD_BODY as u64,
            });
        }
        out[body_start - 4..body_start].copy_from_slice(&(body_len as u32).to_le_bytes());
        Ok(())
    }

    /// The JSON body of a non-data record.
    fn encode_meta(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match &self.body {
            RecordBody::ClientData(_) | RecordBody::TargetData(_) => Ok(()),
            RecordBody::SessionStart(s) => serde_json::to_writer(&mut *out, s),
            RecordBody::Command(c) => serde_json::to_writer(&mut *out, c),
            RecordBody::Admin(a) => serde_json::to_writer(&mut *out, a),
            RecordBody::SessionEnd(e) => serde_json::to_writer(&mut *out, e),
            RecordBody::Checkpoint(c) => serde_json::to_writer(&mut *out, c),
        }
    }
}

fn push_header(out: &mut Vec<u8>, kind: RecordKind, session: u64, ts_ns: u64, len: u32) {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0] = kind as u8;
    h[1..9].copy_from_slice(&session.to_le_bytes());
    h[9..17].copy_from_slice(&ts_ns.to_le_bytes());
    h[17..21].copy_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h);
}

/// Appends a data record (`ClientData` / `TargetData`) straight from the
/// forwarded bytes: the relay's hot path, one copy, no allocation.
pub fn encode_data_into(
    out: &mut Vec<u8>,
    kind: RecordKind,
    session: u64,
    timestamp_ns: u64,
    data: &[u8],
) -> Result<(), FormatError> {
    if data.len() > MAX_RECORD_BODY {
        return Err(FormatError::TooLarge {
            field: "record body",
            len: data.len() as u64,
            max: MAX_RECORD_BODY as u64,
        });
    }
    out.reserve(RECORD_HEADER_LEN + data.len());
    push_header(out, kind, session, timestamp_ns, data.len() as u32);
    out.extend_from_slice(data);
    Ok(())
}

/// A record as it lies in a decompressed block, borrowed from the payload.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub kind: RecordKind,
    pub session: u64,
    pub timestamp_ns: u64,
    pub body: &'a [u8],
}

impl RawRecord<'_> {
    /// Decodes the body into an owned [`Record`].
    pub fn to_record(&self) -> Result<Record, FormatError> {
        fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, FormatError> {
            serde_json::from_slice(b).map_err(|e| FormatError::Invalid {
                field: "record body",
                detail: e.to_string(),
            })
        }
        let body = match self.kind {
            RecordKind::ClientData => RecordBody::ClientData(Bytes::copy_from_slice(self.body)),
            RecordKind::TargetData => RecordBody::TargetData(Bytes::copy_from_slice(self.body)),
            RecordKind::SessionStart => RecordBody::SessionStart(parse(self.body)?),
            RecordKind::Command => RecordBody::Command(parse(self.body)?),
            RecordKind::Admin => RecordBody::Admin(parse(self.body)?),
            RecordKind::SessionEnd => RecordBody::SessionEnd(parse(self.body)?),
            RecordKind::Checkpoint => RecordBody::Checkpoint(parse(self.body)?),
        };
        Ok(Record {
            session: self.session,
            timestamp_ns: self.timestamp_ns,
            body,
        })
    }
}

/// Iterates the records of a decompressed block payload.
pub struct RawRecords<'a> {
    payload: &'a [u8],
    at: usize,
}

impl<'a> RawRecords<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Self { payload, at: 0 }
    }
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = Result<RawRecord<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.payload[self.at..];
        if rest.is_empty() {
            return None;
        }
        if rest.len() < RECORD_HEADER_LEN {
            self.at = self.payload.len();
            return Some(Err(FormatError::Truncated {
                need: RECORD_HEADER_LEN as u64,
                have: rest.len() as u64,
            }));
        }
        let Some(kind) = RecordKind::from_u8(rest[0]) else {
            self.at = self.payload.len();
            return Some(Err(FormatError::Invalid {
                field: "record kind",
                detail: rest[0].to_string(),
            }));
        };
        let len = u32_at(rest, 17) as usize;
        if len > MAX_RECORD_BODY || len > rest.len() - RECORD_HEADER_LEN {
            self.at = self.payload.len();
            return Some(Err(FormatError::Truncated {
                need: len as u64,
                have: (rest.len() - RECORD_HEADER_LEN) as u64,
            }));
        }
        self.at += RECORD_HEADER_LEN + len;
        Some(Ok(RawRecord {
            kind,
            session: u64_at(rest, 1),
            timestamp_ns: u64_at(rest, 9),
            body: &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len],
        }))
    }
}

/// Unix time now, in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let bodies = vec![
            RecordBody::SessionStart(SessionStart {
                subject: "svc-billing".into(),
                groups: vec!["payments".into()],
                target: "pg-main".into(),
                client_addr: Some("10.0.0.1:5000".into()),
                ..Default::default()
            }),
            RecordBody::ClientData(Bytes::from_static(b"SELECT 1")),
            RecordBody::TargetData(Bytes::from_static(&[0, 159, 146, 150])),
            RecordBody::Command(CommandEvent {
                statement: "drop table t".into(),
                verdict: "block".into(),
                rule: Some("no-drop".into()),
                approval: None,
                shadow_verdict: None,
                shadow_rule: None,
            }),
            RecordBody::Admin(AdminAction {
                actor: "alice".into(),
                action: "kill".into(),
                object: "session 4".into(),
                detail: None,
            }),
            RecordBody::SessionEnd(SessionEnd {
                reason: "client closed".into(),
                bytes_client_to_target: 8,
                bytes_target_to_client: 4,
                duration_ns: 99,
            }),
        ];
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Record {
                session: 4,
                timestamp_ns: 1000 + i as u64,
                body,
            })
            .collect()
    }

    #[test]
    fn records_round_trip_through_raw_encoding() {
        let mut buf = Vec::new();
        let recs = samples();
        for r in &recs {
            r.encode_into(&mut buf).unwrap();
        }
        let back: Vec<Record> = RawRecords::new(&buf)
            .map(|r| r.unwrap().to_record().unwrap())
            .collect();
        assert_eq!(back, recs);
    }

    #[test]
    fn command_shadow_fields_are_optional_and_round_trip() {
        // A record written before the shadow fields existed still reads.
        let old: CommandEvent =
            serde_json::from_str(r#"{"statement":"x","verdict":"allow","rule":null}"#).unwrap();
        assert_eq!(old.shadow_verdict, None);
        let plain = serde_json::to_string(&old).unwrap();
        assert!(!plain.contains("shadow"), "{plain}");
        let shadowed = CommandEvent {
            shadow_verdict: Some("block".into()),
            shadow_rule: Some("watch-drops".into()),
            ..old
        };
        let text = serde_json::to_string(&shadowed).unwrap();
        assert!(text.contains(r#""shadow_verdict":"block""#), "{text}");
        assert_eq!(
            serde_json::from_str::<CommandEvent>(&text).unwrap(),
            shadowed
        );
    }

    #[test]
    fn truncated_payload_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        samples()[1].encode_into(&mut buf).unwrap();
        for cut in 1..buf.len() {
            let items: Vec<_> = RawRecords::new(&buf[..cut]).collect();
            assert!(
                items.iter().any(|r| r.is_err()),
                "cut at {cut} decoded cleanly"
            );
        }
    }
}
