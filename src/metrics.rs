//! Prometheus metrics without locks on the data path. Each shard owns one
//! [`ShardMetrics`] (relaxed atomics, single writer, cache-line aligned so
//! shards never share a line); a scrape reads them all and renders the text
//! exposition format with a `shard` label. Histograms have fixed buckets so an
//! observation is one bucket search and three atomic adds, no allocation.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_recorder::ShardRecorder;

use crate::identity::AuthError;
use crate::policy::mask::{Builtin, MaskCounters};

/// Counters one shard writes and anyone may read (relaxed atomics: each has a
/// single writer, so there is no contention on the data path).
#[derive(Debug, Default)]
pub struct ShardStats {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    pub refused_global_cap: AtomicU64,
    pub refused_shard_cap: AtomicU64,
    pub refused_recorder: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub bytes_client_to_upstream: AtomicU64,
    pub bytes_upstream_to_client: AtomicU64,
}

impl ShardStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Bucket bounds for latencies in microseconds (added latency per statement,
/// fsync): 5 µs .. 1 s.
pub const LATENCY_US_BUCKETS: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];

/// A fixed-bucket histogram of integer observations (one unit, e.g. µs),
/// rendered in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Non-cumulative counts; the last slot is the overflow (+Inf) bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
    /// How many observation units make one second (1e6 for µs).
    units_per_second: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64], units_per_second: f64) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
            units_per_second,
        }
    }

    /// A histogram of microsecond observations.
    pub fn micros() -> Histogram {
        Histogram::new(LATENCY_US_BUCKETS, 1e6)
    }

    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration_us(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render_series(&self, e: &mut Exposition, name: &str, labels: &[(&str, &str)]) {
        // Read the buckets first and derive count from them so a scrape that
        // races an observation still shows `+Inf == count`.
        let mut cumulative = 0u64;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let le = format_float(*bound as f64 / self.units_per_second);
            e.sample_with(
                name,
                "_bucket",
                labels,
                Some(("le", &le)),
                cumulative as f64,
            );
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        e.sample_with(
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            cumulative as f64,
        );
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.units_per_second;
        e.sample_with(name, "_sum", labels, None, sum);
        e.sample_with(name, "_count", labels, None, cumulative as f64);
    }
}

/// Builds a text exposition: families are opened with HELP/TYPE and their
/// samples must follow before the next family starts.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Open a family. `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_with(name, "", labels, None, value);
    }

    fn sample_with(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (i, (k, v)) in all.enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_float(value));
        self.out.push('\n');
    }

    /// A whole histogram family with one series per label set.
    pub fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, &'a Histogram)>,
    ) {
        self.family(name, "histogram", help);
        for (labels, h) in series {
            h.render_series(self, name, &labels);
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn format_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Declares a closed set of label values backed by an array of counters.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const COUNT: usize = $name::ALL.len();
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}

label_enum!(
    /// How a caller's authentication ended.
    AuthOutcome {
        Ok => "ok",
        Malformed => "malformed",
        BadSignature => "bad_signature",
        Expired => "expired",
        NotYetValid => "not_yet_valid",
        WrongIssuer => "wrong_issuer",
        WrongAudience => "wrong_audience",
        UnknownKey => "unknown_key",
        Revoked => "revoked",
        NotAdmitted => "not_admitted",
        Other => "other",
    }
);

label_enum!(
    /// What policy decided for a statement.
    StatementVerdict {
        Allow => "allow",
        Block => "block",
        Approve => "approve",
        Audit => "audit",
    }
);

label_enum!(
    /// What made a value masked.
    Detector {
        Column => "column",
        Email => "email",
        PaymentCard => "payment_card",
        NationalId => "national_id",
        Phone => "phone",
        Iban => "iban",
        Secret => "secret",
        Custom => "custom",
    }
);

label_enum!(
    /// Why a connection was refused after accept, beyond the engine's caps
    /// (and the recorder: see `render_shard_families`).
    RefuseReason {
        Unauthenticated => "unauthenticated",
        NotAdmitted => "not_admitted",
        Revoked => "revoked",
    }
);

impl AuthOutcome {
    /// The outcome a token or certificate failure is counted under.
    pub fn of_error(e: &AuthError) -> AuthOutcome {
        match e {
            AuthError::TooLarge { .. }
            | AuthError::Malformed { .. }
            | AuthError::BadBase64 { .. }
            | AuthError::MissingClaim { .. }
            | AuthError::BadClaim { .. }
            | AuthError::GroupsMissing { .. }
            | AuthError::GroupsMalformed { .. } => AuthOutcome::Malformed,
            AuthError::BadSignature | AuthError::AlgorithmNotAllowed { .. } => {
                AuthOutcome::BadSignature
            }
            AuthError::Expired { .. } | AuthError::LifetimeTooLong { .. } => AuthOutcome::Expired,
            AuthError::NotYetValid { .. } | AuthError::IssuedInFuture { .. } => {
                AuthOutcome::NotYetValid
            }
            AuthError::WrongIssuer { .. } => AuthOutcome::WrongIssuer,
            AuthError::WrongAudience => AuthOutcome::WrongAudience,
            AuthError::UnknownKid { .. } | AuthError::NoKeys { .. } => AuthOutcome::UnknownKey,
            AuthError::Revoked { .. } => AuthOutcome::Revoked,
            AuthError::NoClientCertificate | AuthError::BadCertificate { .. } => AuthOutcome::Other,
        }
    }
}

impl RefuseReason {
    /// Why a connection whose caller failed authentication was refused.
    pub fn of_auth(outcome: AuthOutcome) -> RefuseReason {
        match outcome {
            AuthOutcome::Revoked => RefuseReason::Revoked,
            AuthOutcome::NotAdmitted => RefuseReason::NotAdmitted,
            _ => RefuseReason::Unauthenticated,
        }
    }
}

impl Detector {
    /// The family a masking detector's count goes to: the built-in
    /// detectors by what they find, everything else as `custom`.
    pub fn of_builtin(b: Builtin) -> Detector {
        match b {
            Builtin::Email => Detector::Email,
            Builtin::Card => Detector::PaymentCard,
            Builtin::UsSsn => Detector::NationalId,
            Builtin::Iban => Detector::Iban,
            Builtin::Phone => Detector::Phone,
            Builtin::Jwt
            | Builtin::Bearer
            | Builtin::AwsAccessKey
            | Builtin::GcpApiKey
            | Builtin::GithubToken
            | Builtin::SlackToken
            | Builtin::PrivateKey => Detector::Secret,
            Builtin::Ipv4 => Detector::Custom,
        }
    }
}

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// One shard's counters. Written only by that shard (relaxed atomics);
/// aligned to two cache lines so neighbouring shards never false-share.
#[repr(align(128))]
#[derive(Debug)]
pub struct ShardMetrics {
    auth: [AtomicU64; AuthOutcome::COUNT],
    statements: [AtomicU64; StatementVerdict::COUNT],
    masked: [AtomicU64; Detector::COUNT],
    refused: [AtomicU64; RefuseReason::COUNT],
    pub statement_latency: Histogram,
    recorder_queue_depth: AtomicU64,
    recorder_bytes: AtomicU64,
    pub fsync_latency: Histogram,
    /// What shadow rules would have stopped (see `shadow`).
    pub shadow: shadow::ShadowCounters,
}

impl Default for ShardMetrics {
    fn default() -> ShardMetrics {
        ShardMetrics {
            auth: counters(),
            statements: counters(),
            masked: counters(),
            refused: counters(),
            statement_latency: Histogram::micros(),
            recorder_queue_depth: AtomicU64::new(0),
            recorder_bytes: AtomicU64::new(0),
            fsync_latency: Histogram::micros(),
            shadow: shadow::ShadowCounters::default(),
        }
    }
}

impl ShardMetrics {
    pub fn auth(&self, outcome: AuthOutcome) {
        self.auth[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn statement(&self, verdict: StatementVerdict) {
        self.statements[verdict as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn masked(&self, detector: Detector, values: u64) {
        self.masked[detector as usize].fetch_add(values, Ordering::Relaxed);
    }
    pub fn refused(&self, reason: RefuseReason) {
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
    /// A caller refused at authentication: counted by outcome and as a
    /// refused connection.
    pub fn auth_refused(&self, outcome: AuthOutcome) {
        self.auth(outcome);
        self.refused(RefuseReason::of_auth(outcome));
    }
    /// Add a session's masking counters (by column, by detector).
    pub fn masked_counts(&self, c: &MaskCounters) {
        if c.by_column > 0 {
            self.masked(Detector::Column, c.by_column);
        }
        for (i, n) in c.by_detector.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let d = Builtin::ALL
                .get(i)
                .map_or(Detector::Custom, |b| Detector::of_builtin(*b));
            self.masked(d, *n);
        }
    }
    /// Time tollgate itself added to one statement (inspection, masking, recording).
    pub fn statement_added_latency(&self, d: Duration) {
        self.statement_latency.observe_duration_us(d);
    }
    pub fn set_recorder_queue_depth(&self, depth: u64) {
        self.recorder_queue_depth.store(depth, Ordering::Relaxed);
    }
    pub fn recorder_bytes(&self, n: u64) {
        self.recorder_bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn fsync(&self, d: Duration) {
        self.fsync_latency.observe_duration_us(d);
    }
    pub fn auth_count(&self, outcome: AuthOutcome) -> u64 {
        self.auth[outcome as usize].load(Ordering::Relaxed)
    }
    pub fn statement_count(&self, verdict: StatementVerdict) -> u64 {
        self.statements[verdict as usize].load(Ordering::Relaxed)
    }
}

/// Every shard's metrics; shard `i` writes only `shard(i)`.
#[derive(Debug)]
pub struct Metrics {
    shards: Box<[ShardMetrics]>,
    /// Each shard's recorder: its queue depth and bytes written are read at
    /// scrape time, so the data path pays nothing for them.
    recorders: OnceLock<Vec<ShardRecorder>>,
    /// The recording uploader's counters, when `[recorder.upload]` is set.
    upload: OnceLock<std::sync::Arc<crate::objstore::uploader::UploadStatus>>,
}

impl Metrics {
    pub fn new(shards: usize) -> Metrics {
        Metrics {
            shards: (0..shards).map(|_| ShardMetrics::default()).collect(),
            recorders: OnceLock::new(),
            upload: OnceLock::new(),
        }
    }

    /// The uploader whose backlog and counters `/metrics` reports (once).
    pub fn attach_upload(&self, status: std::sync::Arc<crate::objstore::uploader::UploadStatus>) {
        let _ = self.upload.set(status);
    }

    /// The recorders whose queue depth and bytes `/metrics` reports (once;
    /// the recorder is not replaced while running).
    pub fn attach_recorders(&self, recorders: Vec<ShardRecorder>) {
        let _ = self.recorders.set(recorders);
    }

    /// This shard's metrics. Panics only on a shard index the engine never
    /// created (a programming error, not input).
    pub fn shard(&self, shard: usize) -> &ShardMetrics {
        &self.shards[shard]
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Render the engine's per-shard stats together with these metrics.
    /// `engine` may be shorter or longer than the shard metrics (tests).
    pub fn render(&self, engine: &[ShardStats], e: &mut Exposition) {
        for r in self.recorders.get().map_or(&[][..], Vec::as_slice) {
            let Some(m) = self.shards.get(r.shard() as usize) else {
                continue;
            };
            let h = r.health();
            m.set_recorder_queue_depth(h.queue_len as u64);
            m.recorder_bytes.store(h.disk_bytes, Ordering::Relaxed);
        }
        render_shard_families(engine, &self.shards, e);
        if let Some(u) = self.upload.get() {
            u.render(e);
        }
    }
}

#[cfg(test)]
pub(crate) mod checker;
mod render;
pub mod shadow;

pub use render::render_shard_families;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inf_equals_count() {
        let h = Histogram::micros();
        for v in [0, 5, 6, 999, 1_000_000, 5_000_000] {
            h.observe(v);
        }
        let mut e = Exposition::new();
        e.histogram("x_seconds", "h", [(vec![("shard", "0")], &h)]);
        let text = e.finish();
        let series = checker::check(&text).unwrap();
        assert_eq!(series["x_seconds_count{shard=\"0\"}"], 6.0);
        // 0 and 5 fall in le=5µs; 6 in 10µs; 999 in 1ms; 1 s in le=1; 5 s only +Inf.
        assert_eq!(series["x_seconds_bucket{shard=\"0\",le=\"0.000005\"}"], 2.0);
        assert_eq!(series["x_seconds_bucket{shard=\"0\",le=\"0.00001\"}"], 3.0);
        assert_eq!(series["x_seconds_bucket{shard=\"0\",le=\"0.001\"}"], 4.0);
        assert_eq!(series["x_seconds_bucket{shard=\"0\",le=\"1\"}"], 5.0);
        assert_eq!(series["x_seconds_bucket{shard=\"0\",le=\"+Inf\"}"], 6.0);
        assert!((series["x_seconds_sum{shard=\"0\"}"] - 6.00101).abs() < 1e-9);
    }

    #[test]
    fn full_render_passes_the_format_checker_and_counts_match() {
        let engine: Vec<ShardStats> = (0..2).map(|_| ShardStats::default()).collect();
        engine[1].accepted.store(7, Ordering::Relaxed);
        engine[0].refused_shard_cap.store(2, Ordering::Relaxed);
        engine[1].refused_recorder.store(4, Ordering::Relaxed);
        let m = Metrics::new(2);
        m.shard(0).auth(AuthOutcome::Expired);
        m.shard(0).auth(AuthOutcome::Expired);
        m.shard(1).statement(StatementVerdict::Block);
        m.shard(1).masked(Detector::Email, 3);
        m.shard(0).refused(RefuseReason::Revoked);
        m.shard(1)
            .statement_added_latency(Duration::from_micros(12));
        m.shard(0).fsync(Duration::from_millis(3));
        m.shard(0).set_recorder_queue_depth(9);
        let mut e = Exposition::new();
        m.render(&engine, &mut e);
        let text = e.finish();
        let s = checker::check(&text).unwrap();
        assert_eq!(s["tollgate_connections_accepted_total{shard=\"1\"}"], 7.0);
        assert_eq!(
            s["tollgate_connections_refused_total{shard=\"0\",reason=\"shard_cap\"}"],
            2.0
        );
        assert_eq!(
            s["tollgate_connections_refused_total{shard=\"0\",reason=\"revoked\"}"],
            1.0
        );
        // Connections refused because the recorder had failed (issue 13:
        // counted but never exported before).
        assert_eq!(
            s["tollgate_connections_refused_total{shard=\"1\",reason=\"recorder\"}"],
            4.0
        );
        assert_eq!(
            s["tollgate_auth_total{shard=\"0\",outcome=\"expired\"}"],
            2.0
        );
        assert_eq!(
            s["tollgate_statements_total{shard=\"1\",verdict=\"block\"}"],
            1.0
        );
        assert_eq!(
            s["tollgate_masked_values_total{shard=\"1\",detector=\"email\"}"],
            3.0
        );
        assert_eq!(
            s["tollgate_statement_added_latency_seconds_count{shard=\"1\"}"],
            1.0
        );
        assert_eq!(s["tollgate_recorder_fsync_seconds_count{shard=\"0\"}"], 1.0);
        assert_eq!(s["tollgate_recorder_queue_depth{shard=\"0\"}"], 9.0);
    }

    #[test]
    fn auth_refusals_count_the_outcome_and_the_refused_connection() {
        let m = Metrics::new(1);
        let s = m.shard(0);
        s.auth_refused(AuthOutcome::of_error(&AuthError::Malformed { what: "x" }));
        s.auth_refused(AuthOutcome::of_error(&AuthError::Revoked {
            rule: "r".into(),
        }));
        s.auth_refused(AuthOutcome::NotAdmitted);
        s.auth_refused(AuthOutcome::of_error(&AuthError::Expired {
            exp: 1,
            now: 2,
        }));
        let mut e = Exposition::new();
        m.render(&[], &mut e);
        let c = checker::check(&e.finish()).unwrap();
        let auth = |o: &str| c[&format!("tollgate_auth_total{{shard=\"0\",outcome=\"{o}\"}}")];
        let refused = |r: &str| {
            c[&format!("tollgate_connections_refused_total{{shard=\"0\",reason=\"{r}\"}}")]
        };
        assert_eq!(
            [
                auth("malformed"),
                auth("revoked"),
                auth("not_admitted"),
                auth("expired"),
                auth("ok")
            ],
            [1.0, 1.0, 1.0, 1.0, 0.0]
        );
        assert_eq!(refused("unauthenticated"), 2.0);
        assert_eq!(refused("revoked"), 1.0);
        assert_eq!(refused("not_admitted"), 1.0);
    }

    #[test]
    fn masking_counters_land_on_their_detector_family() {
        let m = Metrics::new(1);
        let mut counters = MaskCounters {
            by_column: 4,
            ..MaskCounters::default()
        };
        counters.by_detector[Builtin::Email.id().index()] = 2;
        counters.by_detector[Builtin::Card.id().index()] = 1;
        counters.by_detector[Builtin::UsSsn.id().index()] = 1;
        counters.by_detector[Builtin::Jwt.id().index()] = 1;
        counters.by_detector[Builtin::PrivateKey.id().index()] = 1;
        // The first custom detector sits after the built-ins.
        counters.by_detector[Builtin::COUNT] = 3;
        m.shard(0).masked_counts(&counters);
        let mut e = Exposition::new();
        m.render(&[], &mut e);
        let c = checker::check(&e.finish()).unwrap();
        let d = |name: &str| {
            c[&format!("tollgate_masked_values_total{{shard=\"0\",detector=\"{name}\"}}")]
        };
        assert_eq!(d("column"), 4.0);
        assert_eq!(d("email"), 2.0);
        assert_eq!(d("payment_card"), 1.0);
        assert_eq!(d("national_id"), 1.0);
        assert_eq!(d("secret"), 2.0);
        assert_eq!(d("custom"), 3.0);
        assert_eq!(d("phone"), 0.0);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::new();
        e.family("t", "gauge", "help with \\ and\nnewline");
        e.sample("t", &[("v", "a\"b\\c\nd")], 1.5);
        let text = e.finish();
        assert!(text.contains(r#"t{v="a\"b\\c\nd"} 1.5"#), "{text}");
        checker::check(&text).unwrap();
    }

    #[test]
    fn shard_metrics_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<ShardMetrics>() >= 128);
    }
}
