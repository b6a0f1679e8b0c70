//! The catalog of uploaded recording segments in the control database
//! (schema version 2): the agent's writes (queued by the uploader through
//! [`CatalogLink`]), its position (the newest manifest version up to which
//! this host's rows have no gap), and the readers' query.
//!
//! Every write is idempotent: a manifest version is keyed by (host,
//! version), a segment by (host, object key), so a version sent again
//! after an outage or a crash writes nothing twice.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::Client;
use tracing::info;

use super::agent::{db_err, q};
use super::{Req, Shared};
use crate::objstore::catalog::{CatalogFilter, CatalogManifest, CatalogRow, CatalogSink};

/// Most rows one read returns (a cross-check that would need more says so).
pub const MAX_ROWS: usize = 500_000;

/// The database clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// What the agent knows of this host's catalog position.
#[derive(Debug, Default)]
pub(crate) struct CatalogPos {
    /// The uploader's host id (its folder in the bucket); `None`: this
    /// host uploads nothing, the agent keeps no position.
    pub host: Option<String>,
    pub epoch: u64,
    /// `None` until read (again) from the database.
    pub through: Option<u64>,
}

/// The uploader's handle on the agent (see [`CatalogSink`]).
pub struct CatalogLink {
    pub(crate) shared: Arc<Shared>,
}

impl CatalogSink for CatalogLink {
    fn position(&self) -> Option<(u64, u64)> {
        let pos = self
            .shared
            .catalog
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pos.through.map(|t| (pos.epoch, t))
    }

    fn record(&self, manifest: CatalogManifest) -> bool {
        self.shared
            .tx
            .try_send(Req::Catalog(CatalogWrite::Manifest(Box::new(manifest))))
            .is_ok()
    }

    fn local_copies(&self, host: &str, bucket: &str, keys: Vec<String>) -> bool {
        self.shared
            .tx
            .try_send(Req::Catalog(CatalogWrite::LocalCopies {
                host: host.to_string(),
                bucket: bucket.to_string(),
                keys,
            }))
            .is_ok()
    }
}

/// What the uploader queues to the agent.
pub(crate) enum CatalogWrite {
    Manifest(Box<CatalogManifest>),
    LocalCopies {
        host: String,
        bucket: String,
        keys: Vec<String>,
    },
}

fn lock(pos: &Mutex<CatalogPos>) -> std::sync::MutexGuard<'_, CatalogPos> {
    pos.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The position is read again at the agent's next reconcile (and the
/// uploader, seeing a new epoch, sends again from there).
pub(crate) fn forget_position(pos: &Mutex<CatalogPos>) {
    lock(pos).through = None;
}

/// After a (re)connect or a failed write: where this host's catalog
/// stands; a new epoch tells the uploader to send from there.
pub(crate) async fn load_position(
    pos: &Mutex<CatalogPos>,
    client: &Client,
    qt: Duration,
) -> Result<(), String> {
    let host = {
        let p = lock(pos);
        match (&p.host, p.through) {
            (Some(h), None) => h.clone(),
            _ => return Ok(()),
        }
    };
    let through = advance(client, qt, &host).await?;
    let mut p = lock(pos);
    p.through = Some(through);
    p.epoch += 1;
    info!(
        host,
        through,
        epoch = p.epoch,
        "segment catalog position read"
    );
    Ok(())
}

/// Writes what the uploader queued; a failure forgets the position.
pub(crate) async fn write(
    pos: &Mutex<CatalogPos>,
    client: &Client,
    qt: Duration,
    w: CatalogWrite,
) -> Result<(), String> {
    let res = match &w {
        CatalogWrite::Manifest(m) => record(client, qt, m).await.map(|through| {
            let mut p = lock(pos);
            if p.host.as_deref() == Some(m.host.as_str())
                && let Some(t) = p.through
            {
                p.through = Some(t.max(through));
            }
        }),
        CatalogWrite::LocalCopies { host, bucket, keys } => {
            local_copies(client, qt, host, bucket, keys)
                .await
                .map(|_| ())
        }
    };
    res.map_err(|e| {
        forget_position(pos);
        match &w {
            CatalogWrite::Manifest(m) => {
                format!("catalog: manifest version {} of {}: {e}", m.version, m.host)
            }
            CatalogWrite::LocalCopies { host, .. } => {
                format!("catalog: local copies of {host}: {e}")
            }
        }
    })
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Moves `host`'s position past every version now present without a gap;
/// returns it.
pub(crate) async fn advance(client: &Client, qt: Duration, host: &str) -> Result<u64, String> {
    q(
        qt,
        client.execute(
            "INSERT INTO tollgate_catalog_hosts (host_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&host],
        ),
    )
    .await?;
    // The end of the run of versions that starts right after the position
    // (when the next version is there at all).
    let row = q(
        qt,
        client.query_one(
            "UPDATE tollgate_catalog_hosts h SET complete_through = coalesce((
                 SELECT min(a.version) FROM tollgate_catalog_manifests a
                 WHERE a.host_id = h.host_id AND a.version > h.complete_through
                   AND EXISTS (SELECT 1 FROM tollgate_catalog_manifests c
                               WHERE c.host_id = h.host_id AND c.version = h.complete_through + 1)
                   AND NOT EXISTS (SELECT 1 FROM tollgate_catalog_manifests b
                                   WHERE b.host_id = a.host_id AND b.version = a.version + 1)
               ), h.complete_through)
             WHERE host_id = $1 RETURNING complete_through",
            &[&host],
        ),
    )
    .await?;
    let through: i64 = row.try_get(0).map_err(|e| db_err(&e))?;
    u64::try_from(through).map_err(|_| format!("negative catalog position {through}"))
}

/// Writes one manifest version and its segments (one statement: both or
/// neither), then advances the position; returns it.
pub(crate) async fn record(
    client: &Client,
    qt: Duration,
    m: &CatalogManifest,
) -> Result<u64, String> {
    let segs = &m.segments;
    let keys: Vec<&str> = segs.iter().map(|s| s.object_key.as_str()).collect();
    let shards: Vec<i32> = segs
        .iter()
        .map(|s| i32::try_from(s.shard).unwrap_or(i32::MAX))
        .collect();
    let bases: Vec<i64> = segs.iter().map(|s| i64_of(s.base_seq)).collect();
    let nexts: Vec<i64> = segs.iter().map(|s| i64_of(s.next_seq)).collect();
    let sizes: Vec<i64> = segs.iter().map(|s| i64_of(s.size)).collect();
    let shas: Vec<&str> = segs.iter().map(|s| s.sha256.as_str()).collect();
    let opened: Vec<Option<i64>> = segs.iter().map(|s| s.opened_ms.map(i64_of)).collect();
    let sealed: Vec<Option<i64>> = segs.iter().map(|s| s.sealed_ms.map(i64_of)).collect();
    let bytes: i64 = sizes.iter().sum();
    let count = i32::try_from(segs.len()).unwrap_or(i32::MAX);
    q(
        qt,
        client.execute(
            "WITH m AS (
               INSERT INTO tollgate_catalog_manifests
                 (host_id, version, bucket, manifest_key, sha256, segments, bytes, uploaded_ms)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1)
             INSERT INTO tollgate_segments (host_id, bucket, object_key, shard, base_seq, next_seq,
                 size, sha256, manifest_version, opened_ms, sealed_ms, uploaded_ms)
             SELECT $1, $3, u.k, u.sh, u.b, u.n, u.sz, u.h, $2, u.o, u.se, $8
             FROM unnest($9::text[], $10::int4[], $11::int8[], $12::int8[], $13::int8[],
                         $14::text[], $15::int8[], $16::int8[]) AS u(k, sh, b, n, sz, h, o, se)
             ON CONFLICT (host_id, object_key) DO NOTHING",
            &[
                &m.host,
                &i64_of(m.version),
                &m.bucket,
                &m.manifest_key,
                &m.sha256,
                &count,
                &bytes,
                &i64_of(m.uploaded_ms),
                &keys,
                &shards,
                &bases,
                &nexts,
                &sizes,
                &shas,
                &opened,
                &sealed,
            ],
        ),
    )
    .await?;
    advance(client, qt, &m.host).await
}

/// Marks `host`'s rows in `bucket` whose key is not in `keys` (the
/// uploaded segments still on its disk) as deleted locally.
pub(crate) async fn local_copies(
    client: &Client,
    qt: Duration,
    host: &str,
    bucket: &str,
    keys: &[String],
) -> Result<u64, String> {
    q(
        qt,
        client.execute(
            &format!(
                "UPDATE tollgate_segments SET local_deleted_ms = {NOW_MS}
                 WHERE host_id = $1 AND bucket = $2 AND local_deleted_ms IS NULL
                   AND NOT (object_key = ANY($3))"
            ),
            &[&host, &bucket, &keys],
        ),
    )
    .await
}

pub const ROW_COLUMNS: &str = "host_id, bucket, object_key, shard, base_seq, next_seq, size, \
     sha256, manifest_version, opened_ms, sealed_ms, uploaded_ms, local_deleted_ms";

/// The rows `f` selects: per host, newest upload first.
pub async fn list(
    client: &Client,
    qt: Duration,
    f: &CatalogFilter,
) -> Result<Vec<CatalogRow>, String> {
    let limit = i64_of(f.limit.min(MAX_ROWS) as u64);
    let rows = q(
        qt,
        client.query(
            &format!(
                "SELECT {ROW_COLUMNS} FROM tollgate_segments
                 WHERE ($1::text IS NULL OR host_id = $1)
                   AND ($2::bigint IS NULL OR uploaded_ms >= $2)
                   AND ($3::text IS NULL OR bucket = $3)
                   AND ($4::text IS NULL OR starts_with(object_key, $4))
                 ORDER BY host_id, uploaded_ms DESC, object_key DESC
                 LIMIT $5"
            ),
            &[
                &f.host,
                &f.since_ms.map(i64_of),
                &f.bucket,
                &f.key_prefix,
                &limit,
            ],
        ),
    )
    .await?;
    rows.iter().map(row).collect()
}

/// A row another host wrote is peer data: every field is checked.
fn row(r: &tokio_postgres::Row) -> Result<CatalogRow, String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let u = |v: i64| u64::try_from(v).map_err(|_| format!("negative value {v} in the catalog"));
    let shard: i32 = r.try_get(3).map_err(e)?;
    let opened: Option<i64> = r.try_get(9).map_err(e)?;
    let sealed: Option<i64> = r.try_get(10).map_err(e)?;
    let deleted: Option<i64> = r.try_get(12).map_err(e)?;
    Ok(CatalogRow {
        host: r.try_get(0).map_err(e)?,
        bucket: r.try_get(1).map_err(e)?,
        object_key: r.try_get(2).map_err(e)?,
        shard: u32::try_from(shard).map_err(|_| format!("shard {shard} in the catalog"))?,
        base_seq: u(r.try_get(4).map_err(e)?)?,
        next_seq: u(r.try_get(5).map_err(e)?)?,
        size: u(r.try_get(6).map_err(e)?)?,
        sha256: r.try_get(7).map_err(e)?,
        manifest_version: u(r.try_get(8).map_err(e)?)?,
        opened_ms: opened.map(u).transpose()?,
        sealed_ms: sealed.map(u).transpose()?,
        uploaded_ms: u(r.try_get(11).map_err(e)?)?,
        local_deleted_ms: deleted.map(u).transpose()?,
    })
}
