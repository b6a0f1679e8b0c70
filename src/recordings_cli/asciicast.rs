//! An SSH session's pty channel as a terminal stream: `recordings export
//! --format asciicast` (asciicast v2: a header line with the size, start
//! time and TERM, then `[t, "o", text]` for output, `"i"` for input and
//! `"r"` for a window change `"COLSxROWS"`, `t` in seconds from the pty
//! request) and `recordings replay`'s terminal playback (`--speed`,
//! `--max-idle`; `--no-wait` writes the paced stream as asciicast instead
//! of sleeping, for scripts and tests).
//!
//! Times are the records' own timestamps (the session's monotonic clock,
//! nanoseconds). Terminal output may split a UTF-8 character across
//! records: each stream carries its incomplete tail into the next record;
//! bytes that are not UTF-8 become U+FFFD, so every line is valid JSON.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_recorder::record::RecordKind;
use tollgate_recorder::{RecorderError, RecordingDir, Selection, SessionFilter};

use crate::ssh::{RECORD_HEADER, Stream, pty};

/// What the walk over a session hands on.
pub enum Item<'a> {
    /// The pty request: once, before any event.
    Header {
        cols: u32,
        rows: u32,
        term: &'a str,
        start_ns: u64,
    },
    /// `code` is `o`, `i` or `r`; `t_ns` counts from the pty request.
    Event {
        t_ns: u64,
        code: &'static str,
        data: String,
    },
}

/// Bytes to text across record boundaries.
#[derive(Default)]
pub struct Utf8Carry {
    tail: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `data` after the previous tail; an incomplete character
    /// at its end waits for the next call.
    pub fn push(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.tail);
        bytes.extend_from_slice(data);
        let mut out = String::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // `good` is valid by the error's word.
                    out.push_str(&String::from_utf8_lossy(good));
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        None => {
                            // At most 3 bytes: an incomplete character.
                            self.tail = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// What is left at the end of the stream.
    pub fn finish(&mut self) -> String {
        if self.tail.is_empty() {
            String::new()
        } else {
            self.tail.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// Walk `session`'s pty channel (`channel`, or the first with a pty):
/// `Ok(None)` when the session has none (or is not SSH).
pub fn walk(
    dir: &RecordingDir,
    session: u64,
    channel: Option<u32>,
    emit: &mut dyn FnMut(Item<'_>) -> std::io::Result<()>,
) -> Result<Option<u32>, String> {
    let mut ssh = false;
    let mut chosen: Option<(u32, u64)> = None;
    let mut out = Utf8Carry::default();
    let mut input = Utf8Carry::default();
    let mut last_ns = 0u64;
    dir.for_each_record(
        Selection::Session(session),
        &SessionFilter::default(),
        None,
        &mut |r| {
            if r.kind == RecordKind::SessionStart {
                let start = serde_json::from_slice::<Value>(r.body).unwrap_or_default();
                ssh = start.get("protocol").and_then(Value::as_str) == Some("ssh");
                return Ok(());
            }
            if !ssh || !matches!(r.kind, RecordKind::ClientData | RecordKind::TargetData) {
                return Ok(());
            }
            let (Some(head), Some(body)) =
                (r.body.get(..RECORD_HEADER), r.body.get(RECORD_HEADER..))
            else {
                return Ok(());
            };
            let ch = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let Some(stream) = Stream::from_u8(head[4]) else {
                return Ok(());
            };
            let io = RecorderError::Output;
            let start_ns = match chosen {
                Some((c, start)) if c == ch => start,
                Some(_) => return Ok(()),
                None if stream == Stream::Pty && channel.is_none_or(|c| c == ch) => {
                    let Some((cols, rows, term)) = pty::parse_pty_record(body) else {
                        return Ok(());
                    };
                    chosen = Some((ch, r.timestamp_ns));
                    emit(Item::Header {
                        cols,
                        rows,
                        term: &term,
                        start_ns: r.timestamp_ns,
                    })
                    .map_err(io)?;
                    return Ok(());
                }
                None => return Ok(()),
            };
            let t_ns = r.timestamp_ns.saturating_sub(start_ns);
            last_ns = t_ns;
            let (code, data) = match stream {
                Stream::Stdout | Stream::Stderr => ("o", out.push(body)),
                Stream::Stdin => ("i", input.push(body)),
                Stream::Resize => match pty::parse_pty_record(body) {
                    Some((cols, rows, _)) => ("r", format!("{cols}x{rows}")),
                    None => return Ok(()),
                },
                // A second pty request on the channel: refused by the host.
                // File contents belong to sftp channels, never a pty's.
                Stream::Pty | Stream::FileWritten | Stream::FileRead => return Ok(()),
            };
            if data.is_empty() {
                return Ok(());
            }
            emit(Item::Event { t_ns, code, data }).map_err(io)
        },
    )
    .map_err(|e| e.to_string())?;
    if chosen.is_some() {
        for (code, carry) in [("o", &mut out), ("i", &mut input)] {
            let data = carry.finish();
            if !data.is_empty() {
                emit(Item::Event {
                    t_ns: last_ns,
                    code,
                    data,
                })
                .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(chosen.map(|(c, _)| c))
}

/// The header line of an asciicast v2 file.
fn header_line(cols: u32, rows: u32, term: &str, start_ns: u64) -> String {
    json!({
        "version": 2,
        "width": cols,
        "height": rows,
        "timestamp": start_ns / 1_000_000_000,
        "env": {"TERM": term},
    })
    .to_string()
}

/// One event line, `t` in seconds with microseconds.
fn event_line(t_s: f64, code: &str, data: &str) -> String {
    let t = (t_s * 1e6).round() / 1e6;
    json!([t, code, data]).to_string()
}

/// Write the session's pty channel as asciicast v2.
pub fn export(
    dir: &RecordingDir,
    session: u64,
    channel: Option<u32>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let found = walk(dir, session, channel, &mut |item| match item {
        Item::Header {
            cols,
            rows,
            term,
            start_ns,
        } => writeln!(out, "{}", header_line(cols, rows, term, start_ns)),
        Item::Event { t_ns, code, data } => {
            writeln!(out, "{}", event_line(t_ns as f64 / 1e9, code, &data))
        }
    })?;
    out.flush().map_err(|e| e.to_string())?;
    match found {
        Some(_) => Ok(()),
        None => Err(no_pty(session, channel)),
    }
}

fn no_pty(session: u64, channel: Option<u32>) -> String {
    match channel {
        Some(c) => format!("session {session:016x} has no SSH pty channel {c}"),
        None => format!("session {session:016x} has no SSH pty channel"),
    }
}

/// Replay pacing: gaps capped at `max_idle`, then divided by `speed`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub speed: f64,
    pub max_idle: Option<f64>,
}

impl Pace {
    pub fn check(&self) -> Result<(), String> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err("--speed must be a number above 0".into());
        }
        if self.max_idle.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
            return Err("--max-idle must be a number of seconds above 0".into());
        }
        Ok(())
    }
}

/// Paced times: each record's offset from the previous, capped and scaled.
struct Pacer {
    pace: Pace,
    last_ns: u64,
    at_s: f64,
}

impl Pacer {
    fn at(&mut self, t_ns: u64) -> f64 {
        let mut gap = t_ns.saturating_sub(self.last_ns) as f64 / 1e9;
        self.last_ns = t_ns;
        if let Some(m) = self.pace.max_idle {
            gap = gap.min(m);
        }
        self.at_s += gap / self.pace.speed;
        self.at_s
    }
}

/// Play the session's pty channel: its output written as the terminal got
/// it, paced; with `no_wait`, the paced stream written as asciicast at
/// once. `Ok(false)`: the session has no pty channel (nothing written).
pub fn play(
    dir: &RecordingDir,
    session: u64,
    channel: Option<u32>,
    pace: Pace,
    no_wait: bool,
    out: &mut dyn Write,
) -> Result<bool, String> {
    pace.check()?;
    let mut pacer = Pacer {
        pace,
        last_ns: 0,
        at_s: 0.0,
    };
    let began = Instant::now();
    let found = walk(dir, session, channel, &mut |item| match item {
        Item::Header {
            cols,
            rows,
            term,
            start_ns,
        } => {
            if no_wait {
                writeln!(out, "{}", header_line(cols, rows, term, start_ns))?;
            }
            Ok(())
        }
        Item::Event { t_ns, code, data } => {
            let at = pacer.at(t_ns);
            if no_wait {
                return writeln!(out, "{}", event_line(at, code, &data));
            }
            if code != "o" {
                return Ok(());
            }
            let due = began + Duration::from_secs_f64(at);
            let now = Instant::now();
            if due > now {
                out.flush()?;
                std::thread::sleep(due - now);
            }
            out.write_all(data.as_bytes())
        }
    })?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_records_is_carried_over() {
        let euro = "€".as_bytes();
        let mut c = Utf8Carry::default();
        assert_eq!(c.push(&[b'a', euro[0]]), "a");
        assert_eq!(c.push(&euro[1..2]), "");
        assert_eq!(c.push(&[euro[2], b'b']), "€b");
        // Not UTF-8 at all: replaced, never dropped silently.
        assert_eq!(c.push(&[0xff, b'x']), "\u{fffd}x");
        // A tail left at the end of the stream.
        assert_eq!(c.push(&euro[..2]), "");
        assert_eq!(c.finish(), "\u{fffd}");
        assert_eq!(c.finish(), "");
        // Control characters stay valid JSON.
        let line = event_line(0.5, "o", "\x1b[1m\u{0}\"\\");
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v[2], "\x1b[1m\u{0}\"\\");
    }

    #[test]
    fn pacing_caps_idle_gaps_then_scales() {
        let mut p = Pacer {
            pace: Pace {
                speed: 2.0,
                max_idle: Some(1.0),
            },
            last_ns: 0,
            at_s: 0.0,
        };
        assert_eq!(p.at(500_000_000), 0.25);
        // A 10 s pause counts as 1 s, at twice the speed.
        assert_eq!(p.at(10_500_000_000), 0.75);
        assert!((p.at(10_700_000_000) - 0.85).abs() < 1e-9);
        assert!(
            Pace {
                speed: 0.0,
                max_idle: None
            }
            .check()
            .is_err()
        );
        assert!(
            Pace {
                speed: 1.0,
                max_idle: Some(-1.0)
            }
            .check()
            .is_err()
        );
    }
}
