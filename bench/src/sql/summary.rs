//! What `tollgate-load pg` and `mysql` print: the human summary and the JSON object.
//!
//! The JSON field names are a stable interface (`bench/compare-pg.sh` and
//! `tollgate-load plot` read them); add fields, never rename or remove them.
//! The fields shared with the TCP modes (`requests`, `req_per_s`,
//! `latency_us`, ...) mean the same there.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::driver::{Outcome, Plan};
use super::{OpCounts, SqlErrors};
use crate::report::{Latency, per_second};
use crate::units::group_thousands;

/// Quantiles of the latency curve: dense in the tail, where relays differ.
const CURVE_QUANTILES: [f64; 16] = [
    0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999,
    0.999999, 1.0,
];

/// One point of the latency-by-percentile curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct CurvePoint {
    /// 0 to 100.
    pub percentile: f64,
    pub us: u64,
}

/// The gateway compared with the direct path of the same run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VsDirect {
    /// Gateway req/s divided by direct req/s.
    pub req_per_s_ratio: f64,
    /// Gateway p50 (p99) minus direct p50 (p99), µs; negative when faster.
    pub added_p50_us: i64,
    pub added_p99_us: i64,
}

/// One path's measurement, and (top level only) the direct path's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlSummary {
    pub tool: &'static str,
    pub version: &'static str,
    /// `"pg"` or `"mysql"`.
    pub mode: &'static str,
    pub workload: &'static str,
    /// pg: `simple`, `extended`, `prepared`; mysql: `text`, `prepared`.
    pub protocol: &'static str,
    /// `"gateway"` (`--dsn`) or `"direct"` (`--direct`).
    pub path: &'static str,
    /// `host:port` of the DSN.
    pub addr: String,
    pub connections: usize,
    pub threads: usize,
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Operations completed in the window (one statement each; `connect`: one session).
    pub requests: u64,
    pub ops: OpCounts,
    pub req_per_s: f64,
    pub errors: SqlErrors,
    pub errors_total: u64,
    /// The text of the last error seen, for diagnosis.
    pub last_error: Option<String>,
    pub latency_us: Latency,
    pub latency_curve_us: Vec<CurvePoint>,
    /// Operations completed in each second of the window.
    pub per_second: Vec<u64>,
    /// Sessions opened in the whole run (warm-up, reconnects and `connect` included).
    pub sessions: u64,
    /// Statements the set-up sent (each one transaction).
    pub setup_statements: u64,
    /// Statements prepared by the sessions (`--protocol prepared`).
    pub prepared_statements: u64,
    pub direct: Option<Box<SqlSummary>>,
    pub vs_direct: Option<VsDirect>,
}

/// What the summary needs besides the outcome.
pub struct RunInfo<'a> {
    pub mode: &'static str,
    pub workload: &'static str,
    pub protocol: &'static str,
    pub path: &'static str,
    pub addr: String,
    pub plan: &'a Plan,
    pub setup_statements: u64,
}

pub fn curve(hist: &Histogram<u64>) -> Vec<CurvePoint> {
    if hist.is_empty() {
        return Vec::new();
    }
    CURVE_QUANTILES
        .iter()
        .map(|&q| CurvePoint {
            percentile: (q * 100.0 * 10_000.0).round() / 10_000.0,
            us: hist.value_at_quantile(q),
        })
        .collect()
}

pub fn summarise(info: RunInfo<'_>, outcome: &Outcome) -> SqlSummary {
    SqlSummary {
        tool: "tollgate-load",
        version: env!("CARGO_PKG_VERSION"),
        mode: info.mode,
        workload: info.workload,
        protocol: info.protocol,
        path: info.path,
        addr: info.addr,
        connections: info.plan.connections,
        threads: info.plan.threads,
        target_rate: info.plan.rate,
        warmup_s: info.plan.warmup.as_secs_f64(),
        duration_s: outcome.measured.as_secs_f64(),
        requests: outcome.requests,
        ops: outcome.ops,
        req_per_s: per_second(outcome.requests as f64, outcome.measured),
        errors: outcome.errors,
        errors_total: outcome.errors.total(),
        last_error: outcome.last_error.clone(),
        latency_us: Latency::from_histogram(&outcome.latency_us),
        latency_curve_us: curve(&outcome.latency_us),
        per_second: outcome.per_second.clone(),
        sessions: outcome.sessions,
        setup_statements: info.setup_statements,
        prepared_statements: outcome.prepared,
        direct: None,
        vs_direct: None,
    }
}

impl SqlSummary {
    /// Attaches the direct path's run and the comparison.
    pub fn with_direct(mut self, direct: SqlSummary) -> Self {
        self.vs_direct = Some(VsDirect {
            req_per_s_ratio: if direct.req_per_s > 0.0 {
                self.req_per_s / direct.req_per_s
            } else {
                0.0
            },
            added_p50_us: self.latency_us.p50 as i64 - direct.latency_us.p50 as i64,
            added_p99_us: self.latency_us.p99 as i64 - direct.latency_us.p99 as i64,
        });
        self.direct = Some(Box::new(direct));
        self
    }

    /// Whether not a single operation succeeded while some failed (target down).
    pub fn failed(&self) -> bool {
        let here = self.requests == 0 && self.errors_total > 0;
        here || self.direct.as_ref().is_some_and(|d| d.failed())
    }
}

/// The human summary: per path what ran and the lines an SRE reads.
pub fn human(summary: &SqlSummary) -> String {
    let mut out = path_lines(summary);
    if let Some(direct) = &summary.direct {
        out.push_str(&path_lines(direct));
    }
    if let Some(vs) = &summary.vs_direct {
        let _ = writeln!(
            out,
            "gateway vs direct: {:.2}× the operations/s, p50 {:+} µs, p99 {:+} µs",
            vs.req_per_s_ratio, vs.added_p50_us, vs.added_p99_us
        );
    }
    out
}

fn path_lines(s: &SqlSummary) -> String {
    let mut out = String::new();
    let model = match s.target_rate {
        Some(rate) => format!(
            "open model at {} op/s",
            group_thousands(rate.round() as u64)
        ),
        None => "closed model".to_owned(),
    };
    let _ = writeln!(
        out,
        "{} {} — {} {}, {} sessions, {} threads, {} protocol, {}",
        s.mode, s.workload, s.path, s.addr, s.connections, s.threads, s.protocol, model
    );
    let _ = writeln!(
        out,
        "  duration    {:.3} s measured (after {:.3} s warm-up)",
        s.duration_s, s.warmup_s
    );
    let e = &s.errors;
    // HTTP runs count GET, POST and PUT in the select, insert and update slots.
    let names = if s.mode == "http" {
        ["GET", "POST", "PUT", "connect"]
    } else {
        ["select", "insert", "update", "connect"]
    };
    let _ = writeln!(
        out,
        "  operations  {} ok ({} {}, {} {}, {} {}, {} {}), {} errors (connect {}, server {}, closed {}, wrong result {}, timeout {}, other {})",
        group_thousands(s.requests),
        names[0],
        s.ops.select,
        names[1],
        s.ops.insert,
        names[2],
        s.ops.update,
        names[3],
        s.ops.connect,
        group_thousands(s.errors_total),
        e.connect,
        e.server,
        e.closed,
        e.wrong_result,
        e.timeout,
        e.other
    );
    if let Some(last) = &s.last_error {
        let _ = writeln!(out, "  last error  {last}");
    }
    let _ = writeln!(
        out,
        "  throughput  {} op/s",
        group_thousands(s.req_per_s.round() as u64)
    );
    let l = &s.latency_us;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::load::new_histogram;

    fn run(path: &'static str, ops: u64, p50: u64) -> SqlSummary {
        let mut hist = new_histogram();
        for _ in 0..ops {
            hist.record(p50).unwrap();
        }
        let plan = Plan {
            workload: super::super::Workload::Select1,
            connections: 2,
            threads: 1,
            stop: crate::load::Stop::Count(ops),
            warmup: std::time::Duration::ZERO,
            rate: None,
            timeout: std::time::Duration::from_secs(5),
            rows: 10,
            progress: false,
        };
        let outcome = Outcome {
            latency_us: hist,
            requests: ops,
            ops: OpCounts {
                select: ops,
                ..OpCounts::default()
            },
            errors: SqlErrors::default(),
            last_error: None,
            per_second: vec![ops],
            sessions: 2,
            prepared: 0,
            measured: std::time::Duration::from_secs(1),
        };
        let info = RunInfo {
            mode: "pg",
            workload: "select1",
            protocol: "simple",
            path,
            addr: "127.0.0.1:6432".to_owned(),
            plan: &plan,
            setup_statements: 0,
        };
        summarise(info, &outcome)
    }

    #[test]
    fn gateway_and_direct_are_compared_in_json_and_text() {
        let summary = run("gateway", 800, 200).with_direct(run("direct", 1000, 100));
        let vs = summary.vs_direct.unwrap();
        assert_eq!(vs.req_per_s_ratio, 0.8);
        assert_eq!((vs.added_p50_us, vs.added_p99_us), (100, 100));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["protocol"], "simple");
        assert_eq!(json["direct"]["path"], "direct");
        assert!(json["direct"]["direct"].is_null());
        let text = human(&summary);
        assert!(text.starts_with("pg select1 — gateway 127.0.0.1:6432, 2 sessions, 1 threads, simple protocol, closed model"), "{text}");
        assert!(text.contains("pg select1 — direct"), "{text}");
        assert!(
            text.contains("gateway vs direct: 0.80× the operations/s, p50 +100 µs, p99 +100 µs"),
            "{text}"
        );
        assert!(!summary.failed());
    }

    #[test]
    fn curve_runs_from_min_to_max_through_the_tail() {
        let mut hist = new_histogram();
        for value in 1..=10_000 {
            hist.record(value).unwrap();
        }
        let points = curve(&hist);
        assert_eq!(points.first().unwrap().us, 1);
        // The histogram keeps 3 significant digits: the top bucket's highest value.
        assert_eq!(points.last().unwrap().us, hist.max());
        assert!((10_000..=10_010).contains(&hist.max()));
        let p99 = points.iter().find(|p| p.percentile == 99.0).unwrap();
        assert!((9_890..=9_910).contains(&p99.us), "{p99:?}");
        assert!(points.windows(2).all(|w| w[0].us <= w[1].us));
        assert!(curve(&new_histogram()).is_empty());
    }
}
