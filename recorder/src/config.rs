//! Recorder settings. The appliance's TOML config (humantime durations,
//! `deny_unknown_fields`) maps onto this struct; `validate` names the field.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::RecorderError;
use crate::format::MAX_BLOCK_RAW;

/// When records become durable, and what waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The guarantee of `BeforeForward` (a session waits for its records'
    /// fsync before forwarding), with every record in a block of its own.
    /// Kept for existing configurations; `BeforeForward` costs less.
    Always,
    /// Strict: a session's bytes are forwarded only once the block holding
    /// their record is fsynced. The writer starts a block as soon as a
    /// record arrives and every session staged meanwhile shares the next
    /// fsync (group commit across the shard's sessions). Nothing a peer has
    /// received can be missing from the recording after a crash.
    BeforeForward,
    /// Every block is fsynced as it is written (the default); forwarding
    /// does not wait, so a crash loses at most the records of the last
    /// `block_max_delay` plus one block write and fsync.
    Batch,
    /// Blocks are written as they fill and fsynced at this interval.
    Interval(Duration),
}

impl Durability {
    /// True when sessions wait for their records' fsync before forwarding.
    pub fn waits_before_forward(self) -> bool {
        matches!(self, Self::Always | Self::BeforeForward)
    }
}

/// How one recorder (all its shards) behaves.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Root directory; shard N writes into `<dir>/shard-<N>/`.
    pub dir: PathBuf,
    /// A block is written once this many raw bytes are pending.
    pub block_size: usize,
    /// ... or once its first record has waited this long.
    pub block_max_delay: Duration,
    pub zstd_level: i32,
    pub durability: Durability,
    /// Records queued per shard before producers are slowed.
    pub queue_capacity: usize,
    /// Encoded bytes queued per shard before producers are slowed (a single
    /// record larger than this is still taken, alone).
    pub queue_bytes: usize,
    /// A segment is sealed once it reaches this size ...
    pub segment_max_bytes: u64,
    /// ... or this age (if it holds at least one block).
    pub segment_max_age: Duration,
    /// Sealed segments whose data is older than this are deleted.
    pub retention_max_age: Option<Duration>,
    /// The oldest sealed segments are deleted while a shard holds more.
    pub retention_max_bytes: Option<u64>,
    /// Sealed segments the uploader marked as confirmed in object storage
    /// are deleted (by the writer's retention pass, so the deletion is
    /// checkpointed and `verify` tells it from a removal).
    pub delete_uploaded: bool,
    /// Recordings are uploaded: age and size retention delete only
    /// segments the uploader confirmed (see `RetentionPolicy`).
    pub keep_until_uploaded: bool,
    /// How often the writer applies retention.
    pub retention_check_interval: Duration,
    /// Ed25519 PKCS#8 key (DER or PEM) that signs segment seals.
    pub signing_key: Option<PathBuf>,
    /// Told how long each segment fsync took, per shard (for metrics).
    pub fsync_observer: Option<FsyncObserver>,
    /// A signed checkpoint of the chain head is written (to the shard's
    /// checkpoint file and into the log) at most this often while records
    /// arrive; besides, one is written at start, at each segment's creation
    /// and seal, and at each retention deletion.
    pub checkpoint_interval: Duration,
}

/// A callback for fsync latencies: `(shard, duration)`. Runs on the writer
/// thread, so it must be cheap (an atomic histogram update).
#[derive(Clone)]
pub struct FsyncObserver(pub std::sync::Arc<dyn Fn(u32, Duration) + Send + Sync>);

impl std::fmt::Debug for FsyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FsyncObserver")
    }
}

impl RecorderConfig {
    /// Defaults: 64 KiB / 5 ms blocks, zstd 1, `batch`, 128 MiB / 1 h segments.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            block_size: 64 << 10,
            block_max_delay: Duration::from_millis(5),
            zstd_level: 1,
            durability: Durability::Batch,
            queue_capacity: 4096,
            queue_bytes: 16 << 20,
            segment_max_bytes: 128 << 20,
            segment_max_age: Duration::from_secs(3600),
            retention_max_age: None,
            retention_max_bytes: None,
            delete_uploaded: false,
            keep_until_uploaded: false,
            retention_check_interval: Duration::from_secs(60),
            signing_key: None,
            fsync_observer: None,
            checkpoint_interval: Duration::from_secs(10),
        }
    }

    pub fn validate(&self) -> Result<(), RecorderError> {
        let bad = |field, detail: String| Err(RecorderError::Config { field, detail });
        if self.block_size == 0 || self.block_size > MAX_BLOCK_RAW / 2 {
            return bad(
                "block_size",
                format!("{} is outside 1..={}", self.block_size, MAX_BLOCK_RAW / 2),
            );
        }
        if self.block_max_delay.is_zero() {
            return bad("block_max_delay", "must be above zero".into());
        }
        if !(-7..=19).contains(&self.zstd_level) {
            return bad(
                "zstd_level",
                format!("{} is outside -7..=19", self.zstd_level),
            );
        }
        if let Durability::Interval(d) = self.durability
            && d.is_zero()
        {
            return bad("durability", "interval must be above zero".into());
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be above zero".into());
        }
        if self.queue_bytes < self.block_size {
            return bad(
                "queue_bytes",
                format!(
                    "{} is below block_size {}: a block could never fill",
                    self.queue_bytes, self.block_size
                ),
            );
        }
        if self.segment_max_bytes < 4096 {
            return bad(
                "segment_max_bytes",
                format!("{} is below 4096", self.segment_max_bytes),
            );
        }
        if self.segment_max_age.is_zero() {
            return bad("segment_max_age", "must be above zero".into());
        }
        if self.checkpoint_interval.is_zero() {
            return bad("checkpoint_interval", "must be above zero".into());
        }
        if self.retention_check_interval.is_zero() {
            return bad("retention_check_interval", "must be above zero".into());
        }
        if let Some(max) = self.retention_max_bytes
            && max < self.segment_max_bytes
        {
            return bad(
                "retention_max_bytes",
                format!(
                    "{max} is below segment_max_bytes ({})",
                    self.segment_max_bytes
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        RecorderConfig::new("/r").validate().unwrap();
        let mut c = RecorderConfig::new("/r");
        c.zstd_level = 40;
        assert!(matches!(
            c.validate(),
            Err(RecorderError::Config {
                field: "zstd_level",
                ..
            })
        ));
        let mut c = RecorderConfig::new("/r");
        c.durability = Durability::Interval(Duration::ZERO);
        assert!(matches!(
            c.validate(),
            Err(RecorderError::Config {
                field: "durability",
                ..
            })
        ));
    }
}
