//! Structured logs: `tracing` events to stderr, human-readable or JSON lines.
//! Thread names are always included so an operator can tell which shard
//! (`tollgate-shard-N`) handled a connection.

use tracing_subscriber::EnvFilter;

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
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
