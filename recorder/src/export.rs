//! Export (JSON Lines, one object per record) and replay (a session as a
//! person reads it).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::RecorderError;
use crate::reader::{Progress, RecordRef, RecordingDir, Selection, SessionFilter};
use crate::record::RecordKind;

/// Which way data flowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToTarget,
    TargetToClient,
}

/// Turns protocol bytes into extra JSON fields of an exported data record
/// (a protocol gateway decodes queries, row descriptions, rows). Decoders
/// keep their own per-session state, since messages span records.
pub trait Decoder {
    /// A session's start record was read (before any of its data records):
    /// `protocol` is its `SessionStart.protocol`, so a decoder can pick the
    /// protocol's decoding for that session.
    fn session_start(&mut self, _session: u64, _protocol: Option<&str>) {}

    fn decode(
        &mut self,
        session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    );
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub records: u64,
}

/// Formats unix nanoseconds as RFC 3339 UTC with microseconds.
pub fn format_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn direction(kind: RecordKind) -> Option<Direction> {
    match kind {
        RecordKind::ClientData => Some(Direction::ClientToTarget),
        RecordKind::TargetData => Some(Direction::TargetToClient),
        _ => None,
    }
}

/// Builds the JSON object of one record.
fn record_json(r: &RecordRef<'_>, decoder: &mut Option<&mut dyn Decoder>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("shard".into(), r.shard.into());
    m.insert("seq".into(), r.seq.into());
    m.insert("session".into(), r.session.into());
    m.insert("ts_ns".into(), r.timestamp_ns.into());
    m.insert("time".into(), format_time(r.timestamp_ns).into());
    m.insert("type".into(), r.kind.name().into());
    if let Some(dir) = direction(r.kind) {
        m.insert("len".into(), r.body.len().into());
        match std::str::from_utf8(r.body) {
            Ok(text) => {
                m.insert("encoding".into(), "utf8".into());
                m.insert("data".into(), text.into());
            }
            Err(_) => {
                m.insert("encoding".into(), "base64".into());
                m.insert(
                    "data".into(),
                    base64::engine::general_purpose::STANDARD
                        .encode(r.body)
                        .into(),
                );
            }
        }
        if let Some(d) = decoder.as_deref_mut() {
            d.decode(r.session, dir, r.body, &mut m);
        }
    } else {
        match serde_json::from_slice::<Map<String, Value>>(r.body) {
            Ok(fields) => {
                if r.kind == RecordKind::SessionStart
                    && let Some(d) = decoder.as_deref_mut()
                {
                    let protocol = fields.get("protocol").and_then(Value::as_str);
                    d.session_start(r.session, protocol);
                }
                for (k, v) in fields {
                    m.entry(k).or_insert(v);
                }
            }
            Err(e) => {
                m.insert("decode_error".into(), e.to_string().into());
            }
        }
    }
    m
}

impl RecordingDir {
    /// Writes the selected records as JSON Lines to `out`.
    pub fn export(
        &self,
        selection: Selection,
        filter: &SessionFilter,
        out: &mut dyn Write,
        progress: Option<&mut dyn FnMut(Progress)>,
        mut decoder: Option<&mut dyn Decoder>,
    ) -> Result<ExportSummary, RecorderError> {
        let mut summary = ExportSummary::default();
        self.for_each_record(selection, filter, progress, &mut |r| {
            let m = record_json(r, &mut decoder);
            serde_json::to_writer(&mut *out, &m).map_err(|e| RecorderError::Output(e.into()))?;
            out.write_all(b"\n").map_err(RecorderError::Output)?;
            summary.records += 1;
            Ok(())
        })?;
        out.flush().map_err(RecorderError::Output)?;
        Ok(summary)
    }

    /// Writes session `session` as readable text. With `realtime`, waits
    /// between records as long as the session did (at most 5 s per gap).
    /// With a `decoder`, data records are shown as it reads them (an HTTP
    /// request line, a WebSocket message, `kubectl exec` output) where it
    /// reads anything, else as their bytes.
    pub fn replay(
        &self,
        session: u64,
        out: &mut dyn Write,
        realtime: bool,
        mut decoder: Option<&mut dyn Decoder>,
    ) -> Result<ExportSummary, RecorderError> {
        let mut summary = ExportSummary::default();
        let mut first_ns = None;
        let mut prev_ns = 0u64;
        self.for_each_record(
            Selection::Session(session),
            &SessionFilter::default(),
            None,
            &mut |r| {
                let start = *first_ns.get_or_insert(r.timestamp_ns);
                if realtime && summary.records > 0 {
                    let gap = Duration::from_nanos(r.timestamp_ns.saturating_sub(prev_ns))
                        .min(Duration::from_secs(5));
                    out.flush().map_err(RecorderError::Output)?;
                    std::thread::sleep(gap);
                }
                prev_ns = r.timestamp_ns;
                let offset = r.timestamp_ns.saturating_sub(start) as f64 / 1e9;
                let decoded = decoded_fields(r, &mut decoder);
                match decoded {
                    Some(fields) => write_decoded_line(out, r, offset, &fields),
                    None => write_replay_line(out, r, offset),
                }
                .map_err(RecorderError::Output)?;
                summary.records += 1;
                Ok(())
            },
        )?;
        out.flush().map_err(RecorderError::Output)?;
        Ok(summary)
    }
}

fn field<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("-")
}

/// A data record as the decoder reads it (`None`: not a data record, no
/// decoder, or nothing it read); a start record tells the decoder the
/// session's protocol.
fn decoded_fields(
    r: &RecordRef<'_>,
    decoder: &mut Option<&mut dyn Decoder>,
) -> Option<Map<String, Value>> {
    let d = decoder.as_deref_mut()?;
    if r.kind == RecordKind::SessionStart {
        let start = serde_json::from_slice::<Map<String, Value>>(r.body).ok();
        let protocol = start
            .as_ref()
            .and_then(|m| m.get("protocol"))
            .and_then(Value::as_str);
        d.session_start(r.session, protocol);
        return None;
    }
    let dir = direction(r.kind)?;
    let mut fields = Map::new();
    d.decode(r.session, dir, r.body, &mut fields);
    (!fields.is_empty()).then_some(fields)
}

/// `name=value` pairs, strings escaped like [`printable`] text, each value
/// cut at 512 bytes.
fn write_decoded_line(
    out: &mut dyn Write,
    r: &RecordRef<'_>,
    offset_s: f64,
    fields: &Map<String, Value>,
) -> std::io::Result<()> {
    let when = format_time(r.timestamp_ns);
    let arrow = if r.kind == RecordKind::ClientData {
        ">> client"
    } else {
        "<< target"
    };
    write!(
        out,
        "{when} +{offset_s:.3}s {arrow}  {:>6} B ",
        r.body.len()
    )?;
    for (k, v) in fields {
        let shown = match v {
            Value::String(s) => printable(s.as_bytes()),
            other => {
                let text = other.to_string();
                printable(text.as_bytes())
            }
        };
        write!(out, " {k}={shown}")?;
    }
    writeln!(out)
}

fn write_replay_line(out: &mut dyn Write, r: &RecordRef<'_>, offset_s: f64) -> std::io::Result<()> {
    let when = format_time(r.timestamp_ns);
    let obj = || serde_json::from_slice::<Map<String, Value>>(r.body).unwrap_or_default();
    match r.kind {
        RecordKind::ClientData => writeln!(
            out,
            "{when} +{offset_s:.3}s >> client  {:>6} B  {}",
            r.body.len(),
            printable(r.body)
        ),
        RecordKind::TargetData => writeln!(
            out,
            "{when} +{offset_s:.3}s << target  {:>6} B  {}",
            r.body.len(),
            printable(r.body)
        ),
        RecordKind::SessionStart => {
            let m = obj();
            let groups = m
                .get("groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            writeln!(
                out,
                "{when} +{offset_s:.3}s session {} started: {} [{groups}] (issuer {}) -> {} from {} tls {}",
                r.session,
                field(&m, "subject"),
                field(&m, "issuer"),
                field(&m, "target"),
                field(&m, "client_addr"),
                field(&m, "tls_version"),
            )
        }
        RecordKind::Command => {
            let m = obj();
            writeln!(
                out,
                "{when} +{offset_s:.3}s !! command {} (rule {}, approval {}): {}",
                field(&m, "verdict"),
                field(&m, "rule"),
                field(&m, "approval"),
                field(&m, "statement"),
            )
        }
        RecordKind::Admin => {
            let m = obj();
            writeln!(
                out,
                "{when} +{offset_s:.3}s admin {} {} {} {}",
                field(&m, "actor"),
                field(&m, "action"),
                field(&m, "object"),
                field(&m, "detail")
            )
        }
        RecordKind::Checkpoint => {
            let m = obj();
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            writeln!(
                out,
                "{when} +{offset_s:.3}s recorder checkpoint {} at sequence {} (segment {}, host {})",
                field(&m, "event"),
                n("seq"),
                n("segment"),
                field(&m, "host"),
            )
        }
        RecordKind::SessionEnd => {
            let m = obj();
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            writeln!(
                out,
                "{when} +{offset_s:.3}s session {} ended: {} (client->target {} B, target->client {} B, {:.3}s)",
                r.session,
                field(&m, "reason"),
                n("bytes_client_to_target"),
                n("bytes_target_to_client"),
                n("duration_ns") as f64 / 1e9,
            )
        }
    }
}

/// Text where the bytes are mostly printable (escaping the rest), a short
/// hex summary otherwise; at most 512 characters.
pub fn printable(data: &[u8]) -> String {
    const MAX: usize = 512;
    let shown = &data[..data.len().min(MAX)];
    let printable = shown
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ' || **b == b'\n' || **b == b'\t')
        .count();
    let mut s = String::new();
    if !shown.is_empty() && printable * 10 >= shown.len() * 8 {
        s.push('"');
        for &b in shown {
            match b {
                b'\n' => s.push_str("\\n"),
                b'\t' => s.push_str("\\t"),
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b' ' => s.push(' '),
                b if b.is_ascii_graphic() => s.push(b as char),
                b => s.push_str(&format!("\\x{b:02x}")),
            }
        }
        s.push('"');
    } else {
        s.push_str("hex ");
        for b in &data[..data.len().min(32)] {
            s.push_str(&format!("{b:02x}"));
        }
    }
    if data.len() > shown.len() || (s.starts_with("hex") && data.len() > 32) {
        s.push_str(&format!(" … ({} bytes)", data.len()));
    }
    s
}

/// Exports from `dir` as JSON Lines (see [`RecordingDir::export`]).
pub fn export(
    dir: &Path,
    selection: Selection,
    filter: &SessionFilter,
    out: &mut impl Write,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<ExportSummary, RecorderError> {
    RecordingDir::open(dir).export(selection, filter, out, progress, None)
}

/// Replays `session` from `dir` (see [`RecordingDir::replay`]).
pub fn replay(
    dir: &Path,
    session: u64,
    out: &mut impl Write,
    realtime: bool,
) -> Result<ExportSummary, RecorderError> {
    RecordingDir::open(dir).replay(session, out, realtime, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_time(951_782_400_000_000_000 + 1_500),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            format_time(1_790_000_000_123_456_789),
            "2026-09-21T14:13:20.123456Z"
        );
    }

    #[test]
    fn printable_escapes_text_and_summarises_binary() {
        assert_eq!(printable(b"SELECT 1;\n"), "\"SELECT 1;\\n\"");
        assert_eq!(printable(&[0, 1, 2, 255]), "hex 000102ff");
        assert!(printable(&[7u8; 100]).ends_with("(100 bytes)"));
    }
}
