//! Structured logs: `tracing` events to stderr, human-readable or JSON lines.
//! Thread names are always included so an operator can tell which shard
//! (`tollgate-shard-N`) handled a connection.
//!
//! Human lines escape control characters in every field: peer-supplied
//! values (user, database, application_name, token subjects, SQL) must not
//! be able to start a forged log line or drive a terminal. JSON lines are
//! already quoted by the JSON encoder.

use std::fmt::{self, Write as _};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use crate::config::LogFormat;

/// Install the global subscriber. `filter` uses `RUST_LOG` syntax; the
/// `TOLLGATE_LOG` environment variable overrides it.
pub fn init(format: LogFormat, filter: &str) {
    let filter = std::env::var("TOLLGATE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_thread_names(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second init (tests, or `run` after `check`) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.fmt_fields(human_fields()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The field formatter of human lines: `name=value`, space-separated, the
/// message bare, every value with its control characters escaped.
pub fn human_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field, value| {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() != "message" {
            write!(w, "{}=", field.name())?;
        }
        write_escaped(w, &text)
    })
    .delimited(" ")
}

/// `text` with C0, DEL and C1 control characters (newline, CR, ESC…)
/// written as Rust escapes (`\n`, `\u{1b}`), everything else as is.
fn write_escaped(w: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(w, "{}", c.escape_default())?;
        } else {
            w.write_char(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Human log lines written by `emit` with the production formatter.
    fn human_log(emit: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(human_fields())
            .finish();
        tracing::subscriber::with_default(sub, emit);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_forged_line_in_a_peer_field_stays_on_its_line() {
        let user = "x\n2026-12-01T00:00:00Z  INFO FORGED admin login subject=root\r\u{1b}[2J\u{9b}";
        let log = human_log(|| {
            tracing::warn!(user = %user, database = user, "caller authentication failed");
        });
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(!log.contains('\r') && !log.contains('\u{1b}') && !log.contains('\u{9b}'));
        assert!(
            log.contains(r"user=x\n2026-12-01T00:00:00Z  INFO FORGED"),
            "{log}"
        );
        assert!(log.contains("caller authentication failed user="), "{log}");
    }

    #[test]
    fn ordinary_fields_read_as_before() {
        let log = human_log(|| tracing::info!(session = %"00ab", bytes = 42u64, "session closed"));
        assert!(
            log.trim_end()
                .ends_with("session closed session=00ab bytes=42"),
            "{log}"
        );
    }
}
