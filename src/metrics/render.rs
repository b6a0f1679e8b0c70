//! The per-shard families of a scrape: the engine's counters (accepted,
//! active, refused by cap, bytes) and the sessions' (refusals, auth,
//! statements, masking, latency, recorder, shadow verdicts).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    AuthOutcome, Detector, Exposition, RefuseReason, ShardMetrics, ShardStats, StatementVerdict,
    shadow,
};

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// All per-shard families. The refused family mixes the engine's caps with
/// the session's reasons, so both sources are rendered here together.
pub fn render_shard_families(engine: &[ShardStats], shards: &[ShardMetrics], e: &mut Exposition) {
    let names: Vec<String> = (0..engine.len().max(shards.len()))
        .map(|i| i.to_string())
        .collect();
    connections(engine, shards, e, &names);
    traffic(engine, e, &names);
    outcomes(shards, e, &names);
    recorder(shards, e, &names);
    shadow::render(e, shards.iter().map(|m| &m.shadow).enumerate());
}

/// One sample per shard of a family with no other label.
fn per_shard<T>(
    e: &mut Exposition,
    (name, kind, help): (&str, &str, &str),
    items: &[T],
    label: &[String],
    value: impl Fn(&T) -> &AtomicU64,
) {
    e.family(name, kind, help);
    for (i, s) in items.iter().enumerate() {
        e.sample(name, &[("shard", label[i].as_str())], load(value(s)));
    }
}

fn connections(
    engine: &[ShardStats],
    shards: &[ShardMetrics],
    e: &mut Exposition,
    label: &[String],
) {
    per_shard(
        e,
        (
            "tollgate_connections_accepted_total",
            "counter",
            "Client connections accepted.",
        ),
        engine,
        label,
        |s| &s.accepted,
    );
    per_shard(
        e,
        (
            "tollgate_connections_active",
            "gauge",
            "Client connections open now.",
        ),
        engine,
        label,
        |s| &s.active,
    );
    e.family(
        "tollgate_connections_refused_total",
        "counter",
        "Client connections refused, by reason.",
    );
    for (i, s) in engine.iter().enumerate() {
        for (reason, v) in [
            ("global_cap", &s.refused_global_cap),
            ("shard_cap", &s.refused_shard_cap),
            ("recorder", &s.refused_recorder),
        ] {
            e.sample(
                "tollgate_connections_refused_total",
                &[("shard", label[i].as_str()), ("reason", reason)],
                load(v),
            );
        }
    }
    for (i, m) in shards.iter().enumerate() {
        for r in RefuseReason::ALL {
            e.sample(
                "tollgate_connections_refused_total",
                &[("shard", label[i].as_str()), ("reason", r.label())],
                load(&m.refused[*r as usize]),
            );
        }
    }
}

fn traffic(engine: &[ShardStats], e: &mut Exposition, label: &[String]) {
    per_shard(
        e,
        (
            "tollgate_upstream_failures_total",
            "counter",
            "Upstream connections that could not be established.",
        ),
        engine,
        label,
        |s| &s.upstream_failures,
    );
    e.family(
        "tollgate_bytes_total",
        "counter",
        "Bytes relayed, by direction.",
    );
    for (i, s) in engine.iter().enumerate() {
        for (dir, v) in [
            ("client_to_upstream", &s.bytes_client_to_upstream),
            ("upstream_to_client", &s.bytes_upstream_to_client),
        ] {
            e.sample(
                "tollgate_bytes_total",
                &[("shard", label[i].as_str()), ("direction", dir)],
                load(v),
            );
        }
    }
}

/// Auth outcomes, statement verdicts, masked values and the latency added.
fn outcomes(shards: &[ShardMetrics], e: &mut Exposition, label: &[String]) {
    let mut per_label = |name: &str,
                         help: &str,
                         key: &str,
                         labels: &[&'static str],
                         pick: &dyn Fn(&ShardMetrics) -> &[AtomicU64]| {
        e.family(name, "counter", help);
        for (i, m) in shards.iter().enumerate() {
            for (j, l) in labels.iter().enumerate() {
                e.sample(
                    name,
                    &[("shard", label[i].as_str()), (key, l)],
                    load(&pick(m)[j]),
                );
            }
        }
    };
    let auth: Vec<&str> = AuthOutcome::ALL.iter().map(|a| a.label()).collect();
    per_label(
        "tollgate_auth_total",
        "Caller authentications, by outcome.",
        "outcome",
        &auth,
        &|m| &m.auth,
    );
    let verdicts: Vec<&str> = StatementVerdict::ALL.iter().map(|v| v.label()).collect();
    per_label(
        "tollgate_statements_total",
        "Statements inspected, by verdict.",
        "verdict",
        &verdicts,
        &|m| &m.statements,
    );
    let detectors: Vec<&str> = Detector::ALL.iter().map(|d| d.label()).collect();
    per_label(
        "tollgate_masked_values_total",
        "Values masked in responses, by detector.",
        "detector",
        &detectors,
        &|m| &m.masked,
    );
    e.histogram(
        "tollgate_statement_added_latency_seconds",
        "Latency tollgate added to each statement.",
        shards
            .iter()
            .enumerate()
            .map(|(i, m)| (vec![("shard", label[i].as_str())], &m.statement_latency)),
    );
}

fn recorder(shards: &[ShardMetrics], e: &mut Exposition, label: &[String]) {
    per_shard(
        e,
        (
            "tollgate_recorder_queue_depth",
            "gauge",
            "Records waiting in the shard's recorder queue.",
        ),
        shards,
        label,
        |m| &m.recorder_queue_depth,
    );
    per_shard(
        e,
        (
            "tollgate_recorder_bytes_total",
            "counter",
            "Bytes written to session recordings.",
        ),
        shards,
        label,
        |m| &m.recorder_bytes,
    );
    e.histogram(
        "tollgate_recorder_fsync_seconds",
        "Recorder fsync latency.",
        shards
            .iter()
            .enumerate()
            .map(|(i, m)| (vec![("shard", label[i].as_str())], &m.fsync_latency)),
    );
}
