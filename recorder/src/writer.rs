//! The recording path: [`ShardRecorder`] (the producer side sessions use)
//! stages encoded records in a bounded buffer that one writer thread per
//! shard (`tollgate-rec-<N>`) takes whole, compresses into blocks and writes,
//! so the data path never waits on the disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ring::signature::Ed25519KeyPair;

use crate::block::BlockBuilder;
use crate::checkpoint::{Checkpoint, CheckpointEvent, Checkpointer};
use crate::config::{Durability, RecorderConfig};
use crate::error::RecorderError;
use crate::format::{
    Hash, MAX_BLOCK_RAW, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, Seal, SegmentHeader,
    segment_file_name, shard_dir_name,
};
use crate::fs::{AppendFile, FileSystem, RealFs};
use crate::index::{INDEX_FILE, IndexEntry, read_index};
use crate::producer::{RecorderHealth, ShardRecorder, Shared, Staging, lock};
use crate::record::{Record, RecordBody, now_ns};
use crate::recovery::recover_shard;
use crate::retention::{RetentionPolicy, apply_retention};

/// Blocks' worth of staged bytes that wake the writer before the block
/// deadline does.
const BATCH_BLOCKS: usize = 4;

/// All shard writers of one recording directory.
pub struct Recorder {
    shards: Vec<ShardRecorder>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Recorder {
    /// Recovers and starts `shards` writers under `config.dir`.
    pub fn open(config: &RecorderConfig, shards: u32) -> Result<Self, RecorderError> {
        Self::open_with_fs(config, shards, Arc::new(RealFs))
    }

    /// As [`Recorder::open`], through a given file system.
    pub fn open_with_fs(
        config: &RecorderConfig,
        shards: u32,
        fs: Arc<dyn FileSystem>,
    ) -> Result<Self, RecorderError> {
        config.validate()?;
        let key = match &config.signing_key {
            Some(path) => Some(Arc::new(crate::signing::load_signing_key(path)?)),
            None => None,
        };
        let mut out = Self {
            shards: Vec::new(),
            threads: Vec::new(),
        };
        for shard in 0..shards {
            let (producer, thread) = spawn_shard(config, shard, fs.clone(), key.clone())?;
            out.shards.push(producer);
            out.threads.push(thread);
        }
        Ok(out)
    }

    pub fn shard(&self, shard: u32) -> Result<ShardRecorder, RecorderError> {
        self.shards
            .get(shard as usize)
            .cloned()
            .ok_or(RecorderError::NoSuchShard {
                shard,
                shards: self.shards.len() as u32,
            })
    }

    pub fn shards(&self) -> &[ShardRecorder] {
        &self.shards
    }

    pub fn is_healthy(&self) -> bool {
        self.shards.iter().all(ShardRecorder::is_healthy)
    }

    pub fn health(&self) -> Vec<RecorderHealth> {
        self.shards.iter().map(ShardRecorder::health).collect()
    }

    /// Stops accepting records, writes what is queued, seals, and waits for
    /// the writers. Returns the first shard failure, if any.
    pub fn shutdown(mut self) -> Result<(), RecorderError> {
        self.stop();
        match self.shards.iter().find(|s| !s.is_healthy()) {
            Some(s) => Err(s.shared.failed_error()),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        for s in &self.shards {
            s.shared.close();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a recorder writer thread panicked");
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Recovers one shard and starts its writer thread.
fn spawn_shard(
    config: &RecorderConfig,
    shard: u32,
    fs: Arc<dyn FileSystem>,
    key: Option<Arc<Ed25519KeyPair>>,
) -> Result<(ShardRecorder, JoinHandle<()>), RecorderError> {
    let mut writer = ShardWriter::open(config, shard, fs, key)?;
    // Records the writer made before the staging buffer existed (retention
    // at start) go first.
    let (mut own_raw, mut own_count) = (Vec::new(), 0usize);
    for r in writer.own_pending.drain(..) {
        r.encode_into(&mut own_raw)?;
        own_count += 1;
    }
    let shared = Arc::new(Shared {
        shard,
        capacity: config.queue_capacity,
        capacity_bytes: config.queue_bytes,
        // Sessions that wait for durability want their block started at
        // once; whoever else stages meanwhile joins the next fsync.
        wake_at: if config.durability.waits_before_forward() {
            0
        } else {
            // A busy shard fills blocks faster than the deadline: let a few
            // accumulate and make them durable with one fsync, which costs
            // the writer far more than compressing a block does.
            (config.block_size * BATCH_BLOCKS).min(config.queue_bytes)
        },
        strict: config.durability.waits_before_forward(),
        staging: Mutex::new(Staging {
            raw: own_raw,
            first_seq: writer.next_seq,
            count: own_count,
            index: Vec::new(),
            since: (own_count > 0).then(Instant::now),
            closed: false,
            writer_idle: false,
            full_signalled: false,
        }),
        writer: OnceLock::new(),
        durable_next: AtomicU64::new(writer.next_seq),
        failed: AtomicBool::new(false),
        failure: Mutex::new(None),
        durable_waiters: Mutex::new(Vec::new()),
        space_wanted: AtomicBool::new(false),
        space_waiters: Mutex::new(Vec::new()),
        blocks_written: AtomicU64::new(0),
        raw_bytes: AtomicU64::new(0),
        disk_bytes: AtomicU64::new(0),
        segments_sealed: AtomicU64::new(0),
    });
    writer.shared = Some(shared.clone());
    let thread = thread::Builder::new()
        .name(format!("tollgate-rec-{shard}"))
        .spawn(move || writer.run())
        .map_err(RecorderError::io("spawn writer thread", &config.dir))?;
    // A record staged before this is set is still seen: the writer looks at
    // the staging buffer before it first parks.
    let _ = shared.writer.set(thread.thread().clone());
    Ok((ShardRecorder { shared }, thread))
}

struct Active {
    file: Box<dyn AppendFile>,
    path: PathBuf,
    header_bytes: [u8; SEGMENT_HEADER_LEN],
    created_ns: u64,
    len: u64,
    blocks: u32,
}

/// The writer thread's state for one shard.
struct ShardWriter {
    shard: u32,
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    config: RecorderConfig,
    key: Option<Arc<Ed25519KeyPair>>,
    shared: Option<Arc<Shared>>,
    builder: BlockBuilder,
    /// The staging buffer the writer swaps in next (keeps its capacity).
    spare: Vec<u8>,
    /// Draining a backlog: blocks are written as they fill but fsynced once
    /// at the end of the drain (group commit), so a full queue costs one
    /// fsync, not one per block. Acknowledgements still wait for the fsync.
    group_commit: bool,
    pending_index: Vec<IndexEntry>,
    active: Active,
    chain_head: Hash,
    /// Next sequence to put into a block.
    next_seq: u64,
    /// Records below this are written (maybe not yet fsynced).
    written_next: u64,
    synced_next: u64,
    index: Box<dyn AppendFile>,
    index_path: PathBuf,
    index_buf: Vec<u8>,
    /// Index entries appended but not yet fsynced.
    index_dirty: bool,
    last_sync: Instant,
    last_retention: Instant,
    checkpoints: Checkpointer,
    /// The writer's own records (checkpoints) made before `shared` is set.
    own_pending: Vec<Record>,
}

impl ShardWriter {
    fn open(
        config: &RecorderConfig,
        shard: u32,
        fs: Arc<dyn FileSystem>,
        key: Option<Arc<Ed25519KeyPair>>,
    ) -> Result<Self, RecorderError> {
        let dir = config.dir.join(shard_dir_name(shard));
        fs.create_dir_all(&dir)
            .map_err(RecorderError::io("create", &dir))?;
        let rec = recover_shard(fs.as_ref(), &dir, shard)?;
        let checkpoints = Checkpointer::open(
            fs.as_ref(),
            &dir,
            shard,
            key.clone(),
            config.checkpoint_interval,
        )?;
        let mut created = false;
        let active = match rec.last {
            Some(last) if !last.sealed => Active {
                file: fs
                    .open_append(&last.path)
                    .map_err(RecorderError::io("open", &last.path))?,
                path: last.path,
                header_bytes: last.header_bytes,
                created_ns: last.created_ns,
                len: last.len,
                blocks: last.blocks,
            },
            _ => {
                created = true;
                create_segment(fs.as_ref(), &dir, shard, rec.next_seq, rec.chain_head)?
            }
        };
        let index_path = dir.join(INDEX_FILE);
        let index = recover_index(
            fs.as_ref(),
            &index_path,
            shard,
            rec.next_seq,
            &rec.index_entries,
        )?;
        let mut w = Self {
            shard,
            dir,
            fs,
            config: config.clone(),
            key,
            shared: None,
            builder: BlockBuilder::new(config.zstd_level)
                .map_err(RecorderError::io("zstd", &config.dir))?,
            spare: Vec::new(),
            pending_index: Vec::new(),
            active,
            chain_head: rec.chain_head,
            next_seq: rec.next_seq,
            written_next: rec.next_seq,
            synced_next: rec.next_seq,
            index,
            index_path,
            index_buf: Vec::new(),
            index_dirty: true,
            last_sync: Instant::now(),
            group_commit: false,
            last_retention: Instant::now(),
            checkpoints,
            own_pending: Vec::new(),
        };
        let (seq, head, base) = (w.next_seq, w.chain_head, w.active_base());
        if created {
            w.checkpoints
                .write(CheckpointEvent::Open, seq, &head, base)?;
        }
        w.checkpoints
            .write(CheckpointEvent::Start, seq, &head, base)?;
        w.apply_retention()?;
        Ok(w)
    }

    fn shared(&self) -> Option<&Shared> {
        self.shared.as_deref()
    }

    fn run(mut self) {
        let result = self.run_inner();
        let result = result.and_then(|()| self.finish());
        if let (Err(e), Some(shared)) = (result, self.shared()) {
            shared.fail(&e);
        }
    }

    fn run_inner(&mut self) -> Result<(), RecorderError> {
        let Some(shared) = self.shared.clone() else {
            return Ok(());
        };
        loop {
            let mut st = lock(&shared.staging);
            let due = st
                .since
                .is_some_and(|t| t.elapsed() >= self.config.block_max_delay);
            let full = st.full_signalled || st.raw.len() >= shared.wake_at;
            if st.count > 0 && (st.closed || due || full) {
                // Take everything staged at once; producers go on filling the
                // (previously spare) buffer while this one is compressed.
                let mut raw = std::mem::take(&mut self.spare);
                raw.clear();
                std::mem::swap(&mut raw, &mut st.raw);
                let (first_seq, count) = (st.first_seq, st.count);
                st.first_seq += count as u64;
                st.count = 0;
                st.since = None;
                st.full_signalled = false;
                self.pending_index.append(&mut st.index);
                drop(st);
                shared.wake_space_waiters();
                let written = self.write_batch(&raw, first_seq, count);
                // Keep the buffer for the next swap, unless a burst grew it
                // far beyond a normal batch.
                if raw.capacity() <= (self.config.queue_bytes / 4).max(2 * shared.wake_at) {
                    self.spare = raw;
                }
                written?;
                self.tick()?;
                continue;
            }
            if st.closed {
                return Ok(());
            }
            // With a block open, sleep to its deadline; producers wake us
            // early only for a full block. Idle, sleep long and ask the
            // first producer to wake us (the block deadline starts then).
            let wait = match st.since {
                Some(t) => self.config.block_max_delay.saturating_sub(t.elapsed()),
                None => {
                    st.writer_idle = true;
                    Duration::from_millis(500)
                }
            };
            drop(st);
            let wait = wait.min(self.housekeeping_due());
            if !wait.is_zero() {
                thread::park_timeout(wait);
            }
            lock(&shared.staging).writer_idle = false;
            self.tick()?;
        }
    }

    /// Time left until interval durability wants an fsync.
    fn housekeeping_due(&self) -> Duration {
        let mut wait = Duration::from_millis(500);
        if let Durability::Interval(every) = self.config.durability
            && self.written_next > self.synced_next
        {
            wait = wait.min(every.saturating_sub(self.last_sync.elapsed()));
        }
        if self.checkpoints.pending(self.written_next) {
            wait = wait.min(self.checkpoints.due_in());
        }
        wait
    }

    /// Writes `count` staged records (sequences from `first_seq`) as blocks
    /// of about `block_size` (one per record with `always` durability), then
    /// makes them durable with a single fsync (group commit).
    fn write_batch(
        &mut self,
        raw: &[u8],
        first_seq: u64,
        count: usize,
    ) -> Result<(), RecorderError> {
        if first_seq != self.next_seq {
            return Err(self.corrupt_batch(format!(
                "staged sequence {first_seq}, expected {}",
                self.next_seq
            )));
        }
        let always = self.config.durability == Durability::Always;
        let target = self.config.block_size.max(1);
        // One fsync for the whole batch, whoever staged it: sessions waiting
        // for durability (strict modes) share it too.
        self.group_commit = !matches!(self.config.durability, Durability::Interval(_));
        let (mut start, mut at, mut n, mut seq) = (0usize, 0usize, 0u32, first_seq);
        while at < raw.len() {
            let len = raw
                .get(at + 17..at + RECORD_HEADER_LEN)
                .map(|b| RECORD_HEADER_LEN + crate::format::u32_at(b, 0) as usize)
                .filter(|len| at + len <= raw.len())
                .ok_or_else(|| self.corrupt_batch(format!("bad staged record at {at}")))?;
            if n > 0 && at - start + len > MAX_BLOCK_RAW {
                self.write_block(&raw[start..at], seq, n)?;
                (start, seq, n) = (at, seq + u64::from(n), 0);
            }
            at += len;
            n += 1;
            // Close the block once it reaches the target size, unless what
            // is left of the batch is small: no runt blocks.
            let rest = raw.len() - at;
            if always || (at - start >= target && rest >= target / 2) {
                self.write_block(&raw[start..at], seq, n)?;
                (start, seq, n) = (at, seq + u64::from(n), 0);
            }
        }
        if n > 0 {
            self.write_block(&raw[start..], seq, n)?;
        }
        self.group_commit = false;
        let wrote = seq + u64::from(n) - first_seq;
        if wrote != count as u64 {
            return Err(self.corrupt_batch(format!("staged {count} records, found {wrote}")));
        }
        self.next_seq = first_seq + wrote;
        if !matches!(self.config.durability, Durability::Interval(_))
            && self.written_next > self.synced_next
        {
            self.sync()?;
        }
        Ok(())
    }

    fn corrupt_batch(&self, detail: String) -> RecorderError {
        RecorderError::Corrupt {
            shard: self.shard,
            path: self.active.path.clone(),
            offset: self.active.len,
            detail,
        }
    }

    fn tick(&mut self) -> Result<(), RecorderError> {
        if let Durability::Interval(every) = self.config.durability
            && self.written_next > self.synced_next
            && self.last_sync.elapsed() >= every
        {
            self.sync()?;
        }
        let age_ns = now_ns().saturating_sub(self.active.created_ns);
        if self.active.blocks > 0 && u128::from(age_ns) >= self.config.segment_max_age.as_nanos() {
            self.roll()?;
        }
        if self.last_retention.elapsed() >= self.config.retention_check_interval {
            self.last_retention = Instant::now();
            self.apply_retention()?;
        }
        if self.checkpoints.interval_due(self.written_next) {
            self.interval_checkpoint()?;
        }
        Ok(())
    }

    /// Makes everything written durable, anchors the chain head in the
    /// checkpoint file, and chains the same checkpoint into the log.
    fn interval_checkpoint(&mut self) -> Result<(), RecorderError> {
        if self.written_next > self.synced_next {
            self.sync()?;
        }
        let (seq, head, base) = (self.synced_next, self.chain_head, self.active_base());
        let cp = self
            .checkpoints
            .write(CheckpointEvent::Interval, seq, &head, base)?;
        if let Some(at) = self.log_own(cp)? {
            self.checkpoints.logged_at(at);
        }
        Ok(())
    }

    /// Stages one of the writer's own records (a checkpoint) behind what
    /// sessions staged; returns its sequence once it has one.
    fn log_own(&mut self, cp: Checkpoint) -> Result<Option<u64>, RecorderError> {
        let record = Record {
            session: 0,
            timestamp_ns: cp.time_ns,
            body: RecordBody::Checkpoint(cp),
        };
        match self.shared() {
            Some(s) => s.stage_own(&record).map(Some),
            None => {
                self.own_pending.push(record);
                Ok(None)
            }
        }
    }

    /// Appends one block of encoded records to the active segment.
    fn write_block(&mut self, raw: &[u8], first_seq: u64, count: u32) -> Result<(), RecorderError> {
        let block = self
            .builder
            .build(raw, first_seq, count, &self.chain_head)
            .map_err(RecorderError::io("compress", &self.active.path))?;
        let path = &self.active.path;
        self.active
            .file
            .append(block.bytes)
            .map_err(RecorderError::io("append block", path))?;
        let (len, raw_len) = (block.bytes.len() as u64, block.raw_len as u64);
        self.chain_head = block.hash;
        self.written_next = block.first_seq + u64::from(block.count);
        self.active.len += len;
        self.active.blocks += 1;
        if let Some(s) = self.shared() {
            s.blocks_written.fetch_add(1, Ordering::Relaxed);
            s.raw_bytes.fetch_add(raw_len, Ordering::Relaxed);
            s.disk_bytes.fetch_add(len, Ordering::Relaxed);
        }
        // Index entries follow their block, so the index can only lag.
        let base = self.active_base();
        self.index_buf.clear();
        let written_next = self.written_next;
        let upto = self
            .pending_index
            .iter()
            .position(|e| e.seq().is_none_or(|s| s >= written_next))
            .unwrap_or(self.pending_index.len());
        for mut e in self.pending_index.drain(..upto) {
            if let IndexEntry::Start { segment, .. } | IndexEntry::End { segment, .. } = &mut e {
                *segment = base;
            }
            e.encode_into(&mut self.index_buf)?;
        }
        let sync_now =
            !matches!(self.config.durability, Durability::Interval(_)) && !self.group_commit;
        if sync_now {
            self.sync_segment()?;
        }
        if !self.index_buf.is_empty() {
            self.index
                .append(&self.index_buf)
                .map_err(RecorderError::io("append index", &self.index_path))?;
            if sync_now {
                self.index
                    .sync()
                    .map_err(RecorderError::io("sync index", &self.index_path))?;
            } else {
                self.index_dirty = true;
            }
        }
        if self.active.len >= self.config.segment_max_bytes {
            self.roll()?;
        }
        Ok(())
    }

    fn active_base(&self) -> u64 {
        crate::format::u64_at(&self.active.header_bytes, 16)
    }

    fn sync_segment(&mut self) -> Result<(), RecorderError> {
        let started = Instant::now();
        self.active
            .file
            .sync()
            .map_err(RecorderError::io("fsync segment", &self.active.path))?;
        if let Some(o) = &self.config.fsync_observer {
            (o.0)(self.shard, started.elapsed());
        }
        self.last_sync = Instant::now();
        if self.written_next > self.synced_next {
            self.synced_next = self.written_next;
            if let Some(s) = self.shared() {
                s.mark_durable(self.synced_next);
            }
        }
        Ok(())
    }

    /// Makes the segment durable, and the index when it was appended to
    /// since its last fsync (most batches add no index entry: an fsync of an
    /// unchanged file is still a disk flush on most file systems).
    fn sync(&mut self) -> Result<(), RecorderError> {
        self.sync_segment()?;
        if std::mem::take(&mut self.index_dirty) {
            self.index
                .sync()
                .map_err(RecorderError::io("sync index", &self.index_path))?;
        }
        Ok(())
    }

    /// Seals the active segment and opens the next one.
    fn roll(&mut self) -> Result<(), RecorderError> {
        self.seal()?;
        let next = create_segment(
            self.fs.as_ref(),
            &self.dir,
            self.shard,
            self.written_next,
            self.chain_head,
        )?;
        self.active = next;
        let (seq, head, base) = (self.written_next, self.chain_head, self.active_base());
        self.checkpoints
            .write(CheckpointEvent::Open, seq, &head, base)?;
        Ok(())
    }

    fn seal(&mut self) -> Result<(), RecorderError> {
        self.sync()?;
        let mut seal = Seal {
            block_count: self.active.blocks,
            next_seq: self.written_next,
            sealed_ns: now_ns(),
            chain_head: self.chain_head,
            signature: self.key.as_ref().map(|_| [0; 64]),
        };
        if let Some(key) = &self.key {
            seal.signature = Some(crate::signing::sign(
                key,
                &seal.signed_message(&self.active.header_bytes),
            ));
        }
        let path = &self.active.path;
        self.active
            .file
            .append(&seal.encode())
            .map_err(RecorderError::io("append seal", path))?;
        self.active
            .file
            .sync()
            .map_err(RecorderError::io("fsync seal", path))?;
        if let Some(s) = self.shared() {
            s.segments_sealed.fetch_add(1, Ordering::Relaxed);
        }
        let (seq, head, base) = (self.written_next, self.chain_head, self.active_base());
        self.checkpoints
            .write(CheckpointEvent::Seal, seq, &head, base)?;
        Ok(())
    }

    /// On shutdown (everything staged is written): seal a non-empty segment.
    fn finish(&mut self) -> Result<(), RecorderError> {
        if self.active.blocks > 0 {
            self.seal()
        } else {
            self.sync()
        }
    }

    fn apply_retention(&mut self) -> Result<(), RecorderError> {
        let policy = RetentionPolicy {
            max_age: self.config.retention_max_age,
            max_bytes: self.config.retention_max_bytes,
            delete_uploaded: self.config.delete_uploaded,
            keep_until_uploaded: self.config.keep_until_uploaded,
        };
        if policy.max_age.is_none() && policy.max_bytes.is_none() && !policy.delete_uploaded {
            return Ok(());
        }
        let out = apply_retention(
            self.fs.as_ref(),
            &self.dir,
            &policy,
            now_ns(),
            Some(self.index.as_mut()),
            Some(self.checkpoints.file_mut()),
            self.key.as_deref(),
        )?;
        for cp in out.checkpoints {
            self.log_own(cp)?;
        }
        Ok(())
    }
}

/// Creates segment `base` with its header, durably.
fn create_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    shard: u32,
    base: u64,
    prev_hash: Hash,
) -> Result<Active, RecorderError> {
    let path = dir.join(segment_file_name(base));
    let created_ns = now_ns();
    let header_bytes = SegmentHeader {
        shard,
        base_seq: base,
        created_ns,
        prev_hash,
    }
    .encode();
    let mut file = fs
        .open_append(&path)
        .map_err(RecorderError::io("create segment", &path))?;
    file.append(&header_bytes)
        .map_err(RecorderError::io("write segment header", &path))?;
    file.sync()
        .map_err(RecorderError::io("fsync segment", &path))?;
    fs.sync_dir(dir).map_err(RecorderError::io("sync", dir))?;
    Ok(Active {
        file,
        path,
        header_bytes,
        created_ns,
        len: SEGMENT_HEADER_LEN as u64,
        blocks: 0,
    })
}

/// Cuts the index to what the segments hold and appends what it lacks.
fn recover_index(
    fs: &dyn FileSystem,
    path: &Path,
    shard: u32,
    next_seq: u64,
    derived: &[IndexEntry],
) -> Result<Box<dyn AppendFile>, RecorderError> {
    let contents = read_index(fs, path)?;
    if let Some((offset, detail)) = contents.damage {
        return Err(RecorderError::Corrupt {
            shard,
            path: path.to_path_buf(),
            offset,
            detail,
        });
    }
    let beyond = contents
        .entries
        .iter()
        .find(|(_, e)| e.seq().is_some_and(|s| s >= next_seq))
        .map(|(off, _)| *off);
    let keep = beyond.unwrap_or(contents.valid_len);
    if keep < contents.file_len {
        tracing::warn!(shard, path = %path.display(), keep, "cutting the session index back to the recovered recording");
        fs.truncate(path, keep)
            .map_err(RecorderError::io("truncate index", path))?;
    }
    let known = contents
        .entries
        .iter()
        .filter(|(off, _)| *off < keep)
        .filter_map(|(_, e)| e.seq())
        .max();
    let mut buf = Vec::new();
    for e in derived
        .iter()
        .filter(|e| e.seq().is_some_and(|s| known.is_none_or(|k| s > k)))
    {
        e.encode_into(&mut buf)?;
    }
    let mut file = fs
        .open_append(path)
        .map_err(RecorderError::io("open index", path))?;
    if !buf.is_empty() {
        file.append(&buf)
            .map_err(RecorderError::io("append index", path))?;
    }
    file.sync().map_err(RecorderError::io("sync index", path))?;
    Ok(file)
}
