//! What a run prints: the live progress line, the human summary and the JSON
//! object for scripts.
//!
//! The JSON field names are a stable interface (scripts such as
//! `bench/compare-tcp.sh` read them); add fields, never rename or remove them.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::units::{format_size, group_thousands};

/// Failures by kind. Connect failures and timeouts are counted over the whole
/// run, warm-up included; so are request failures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// Connection attempts that failed (refused, unreachable, ...).
    pub connect: u64,
    /// Connections reset or aborted by the peer mid-request.
    pub reset: u64,
    /// The peer closed before the whole echo came back.
    pub eof: u64,
    /// The echo differed from what was sent.
    pub mismatch: u64,
    /// Requests (or connection attempts) in flight longer than `--timeout`.
    pub timeout: u64,
    /// Any other I/O error.
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.eof + self.mismatch + self.timeout + self.other
    }

    pub fn add(&mut self, other: &Self) {
        self.connect += other.connect;
        self.reset += other.reset;
        self.eof += other.eof;
        self.mismatch += other.mismatch;
        self.timeout += other.timeout;
        self.other += other.other;
    }
}

/// The state of a run so far, for the live line.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub elapsed: Duration,
    pub warming_up: bool,
    pub requests: u64,
    pub errors: u64,
    pub req_per_s: f64,
    pub p99_us: Option<u64>,
}

/// The live line, written over itself with `\r` on a terminal.
pub fn progress_line(progress: &Progress) -> String {
    let mut line = format!("[{:>5.1}s] ", progress.elapsed.as_secs_f64());
    if progress.warming_up {
        line.push_str("warming up");
    } else {
        let _ = write!(
            line,
            "{} req/s  {} requests",
            group_thousands(progress.req_per_s.round() as u64),
            group_thousands(progress.requests)
        );
        if let Some(p99) = progress.p99_us {
            let _ = write!(line, "  p99 {} µs", group_thousands(p99));
        }
    }
    let _ = write!(line, "  errors {}", group_thousands(progress.errors));
    line
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn from_histogram(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self {
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        Self {
            min: hist.min(),
            mean: hist.mean(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        }
    }
}

/// The end-of-run summary; serialised as-is for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Always `"tollgate-load"`.
    pub tool: &'static str,
    pub version: &'static str,
    /// `"tcp ping"` or `"tcp bulk"`.
    pub mode: &'static str,
    pub addr: String,
    pub connections: usize,
    pub threads: usize,
    /// Bytes per request (ping: message; bulk: transfer), each way.
    pub size: u64,
    /// `--rate` (requests/s, all connections) or `null` for the closed model.
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    /// The measured window in seconds.
    pub duration_s: f64,
    /// Requests completed (echo received in full and checked) in the window.
    pub requests: u64,
    pub errors: ErrorCounts,
    pub errors_total: u64,
    pub req_per_s: f64,
    /// Payload bytes sent / received in the window (each request: `size` each way).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Echoed payload per second, one direction, MB = 10^6 bytes.
    pub mb_per_s: f64,
    /// The same in MiB (2^20 bytes) per second.
    pub mib_per_s: f64,
    pub latency_us: Latency,
    /// `[{percentile, us}]` from 0 to 100, the tail dense (for plots).
    pub latency_curve_us: Vec<crate::sql::summary::CurvePoint>,
    /// Requests completed in each second of the window (for plots).
    pub per_second: Vec<u64>,
}

/// The human summary: what ran, then the three lines an SRE reads.
pub fn human_summary(summary: &Summary) -> String {
    let mut out = String::new();
    let model = match summary.target_rate {
        Some(rate) => format!(
            "open model at {} req/s",
            group_thousands(rate.round() as u64)
        ),
        None => "closed model".to_owned(),
    };
    let _ = writeln!(
        out,
        "{} {} — {} connection{}, {} each way, {} thread{}, {}",
        summary.mode,
        summary.addr,
        summary.connections,
        plural(summary.connections),
        format_size(summary.size),
        summary.threads,
        plural(summary.threads),
        model
    );
    let _ = writeln!(
        out,
        "  duration    {:.3} s measured (after {:.3} s warm-up)",
        summary.duration_s, summary.warmup_s
    );
    let e = &summary.errors;
    let _ = writeln!(
        out,
        "  requests    {} ok, {} errors (connect {}, reset {}, eof {}, mismatch {}, timeout {}, other {})",
        group_thousands(summary.requests),
        group_thousands(summary.errors_total),
        e.connect,
        e.reset,
        e.eof,
        e.mismatch,
        e.timeout,
        e.other
    );
    let _ = writeln!(
        out,
        "  throughput  {} req/s, {:.1} MB/s ({:.1} MiB/s) echoed, each direction",
        group_thousands(summary.req_per_s.round() as u64),
        summary.mb_per_s,
        summary.mib_per_s
    );
    let l = &summary.latency_us;
    let _ = writeln!(
        out,
        "  latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.1}, min {})",
        group_thousands(l.p50),
        group_thousands(l.p90),
        group_thousands(l.p99),
        group_thousands(l.p999),
        group_thousands(l.max),
        l.mean,
        group_thousands(l.min)
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Rates over the measured window; zero (not NaN) when nothing was measured.
pub fn per_second(amount: f64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs > 0.0 { amount / secs } else { 0.0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::load::new_histogram;

    fn sample_summary() -> Summary {
        let mut hist = new_histogram();
        for value in 1..=1000 {
            hist.record(value).unwrap();
        }
        Summary {
            tool: "tollgate-load",
            version: "0.1.0",
            mode: "tcp ping",
            addr: "127.0.0.1:7001".to_owned(),
            connections: 32,
            threads: 1,
            size: 64,
            target_rate: None,
            warmup_s: 1.0,
            duration_s: 2.0,
            requests: 1000,
            errors: ErrorCounts {
                connect: 1,
                reset: 2,
                ..ErrorCounts::default()
            },
            errors_total: 3,
            req_per_s: per_second(1000.0, Duration::from_secs(2)),
            bytes_sent: 64_000,
            bytes_received: 64_000,
            mb_per_s: per_second(64_000.0, Duration::from_secs(2)) / 1e6,
            mib_per_s: per_second(64_000.0, Duration::from_secs(2)) / 1_048_576.0,
            latency_us: Latency::from_histogram(&hist),
            latency_curve_us: crate::sql::summary::curve(&hist),
            per_second: vec![500, 500],
        }
    }

    #[test]
    fn json_has_the_documented_field_names_and_values() {
        let json: serde_json::Value = serde_json::to_value(sample_summary()).unwrap();
        assert_eq!(json["tool"], "tollgate-load");
        assert_eq!(json["mode"], "tcp ping");
        assert_eq!(json["requests"], 1000);
        assert_eq!(json["req_per_s"], 500.0);
        assert_eq!(json["mb_per_s"], 0.032);
        assert_eq!(json["errors"]["connect"], 1);
        assert_eq!(json["errors"]["reset"], 2);
        assert_eq!(json["errors_total"], 3);
        assert!(json["target_rate"].is_null());
        // 3 significant digits: quantiles of 1..=1000 land within 0.1 %.
        assert_eq!(json["latency_us"]["p50"], 500);
        assert_eq!(json["latency_us"]["p90"], 900);
        assert_eq!(json["latency_us"]["p99"], 990);
        assert_eq!(json["latency_us"]["p999"], 999);
        assert_eq!(json["latency_us"]["max"], 1000);
        assert_eq!(json["latency_us"]["min"], 1);
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "addr",
            "connections",
            "threads",
            "size",
            "warmup_s",
            "duration_s",
            "bytes_sent",
            "bytes_received",
            "mib_per_s",
            "version",
        ] {
            assert!(keys.contains(&key), "missing {key}");
        }
    }

    #[test]
    fn human_summary_shows_counts_rates_and_percentiles() {
        let text = human_summary(&sample_summary());
        assert!(text.starts_with("tcp ping 127.0.0.1:7001 — 32 connections, 64 B each way"));
        assert!(text.contains("1,000 ok, 3 errors (connect 1, reset 2, eof 0"));
        assert!(text.contains("500 req/s, 0.0 MB/s"));
        assert!(text.contains("p50 500  p90 900  p99 990  p99.9 999  max 1,000"));
        assert!(text.contains("closed model"));
    }

    #[test]
    fn open_model_is_named_with_its_rate() {
        let mut summary = sample_summary();
        summary.target_rate = Some(20_000.0);
        summary.connections = 1;
        let text = human_summary(&summary);
        assert!(text.contains("1 connection, "));
        assert!(text.contains("open model at 20,000 req/s"));
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let latency = Latency::from_histogram(&new_histogram());
        assert_eq!(latency.p99, 0);
        assert_eq!(latency.max, 0);
    }

    #[test]
    fn rates_over_an_empty_window_are_zero() {
        assert_eq!(per_second(10.0, Duration::ZERO), 0.0);
        assert_eq!(per_second(10.0, Duration::from_millis(500)), 20.0);
    }

    #[test]
    fn progress_line_during_and_after_warmup() {
        let mut progress = Progress {
            elapsed: Duration::from_millis(500),
            warming_up: true,
            requests: 0,
            errors: 0,
            req_per_s: 0.0,
            p99_us: None,
        };
        assert_eq!(progress_line(&progress), "[  0.5s] warming up  errors 0");
        progress.warming_up = false;
        progress.elapsed = Duration::from_secs(3);
        progress.requests = 250_000;
        progress.req_per_s = 125_000.4;
        progress.p99_us = Some(1_234);
        progress.errors = 2;
        assert_eq!(
            progress_line(&progress),
            "[  3.0s] 125,000 req/s  250,000 requests  p99 1,234 µs  errors 2"
        );
    }
}
