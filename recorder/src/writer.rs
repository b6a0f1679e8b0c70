//! The recording path: [`ShardRecorder`] (the producer side sessions use)
//! feeds a bounded queue drained by one writer thread per shard
//! (`tollgate-rec-<N>`), so the data path never waits on the disk.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use async_channel::{Receiver, TryRecvError};
use ring::signature::Ed25519KeyPair;

use crate::block::BlockBuilder;
use crate::config::{Durability, RecorderConfig};
use crate::error::RecorderError;
use crate::format::{
    Hash, SEGMENT_HEADER_LEN, Seal, SegmentHeader, segment_file_name, shard_dir_name,
};
use crate::fs::{AppendFile, FileSystem, RealFs};
use crate::index::{INDEX_FILE, IndexEntry, read_index};
use crate::producer::{RecorderHealth, ShardRecorder, Shared};
use crate::record::{Record, now_ns};
use crate::recovery::{index_entry_for, recover_shard};
use crate::retention::{RetentionPolicy, apply_retention};

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
            s.shared.tx.close();
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
    let (tx, rx) = async_channel::bounded(config.queue_capacity);
    let mut writer = ShardWriter::open(config, shard, fs, key)?;
    let shared = Arc::new(Shared {
        shard,
        capacity: config.queue_capacity,
        next_seq: Mutex::new(writer.next_seq),
        tx,
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
        .spawn(move || writer.run(rx))
        .map_err(RecorderError::io("spawn writer thread", &config.dir))?;
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
    pending_since: Option<Instant>,
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
    last_sync: Instant,
    last_retention: Instant,
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
            _ => create_segment(fs.as_ref(), &dir, shard, rec.next_seq, rec.chain_head)?,
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
            pending_since: None,
            pending_index: Vec::new(),
            active,
            chain_head: rec.chain_head,
            next_seq: rec.next_seq,
            written_next: rec.next_seq,
            synced_next: rec.next_seq,
            index,
            index_path,
            index_buf: Vec::new(),
            last_sync: Instant::now(),
            group_commit: false,
            last_retention: Instant::now(),
        };
        w.apply_retention()?;
        Ok(w)
    }

    fn shared(&self) -> Option<&Shared> {
        self.shared.as_deref()
    }

    fn run(mut self, rx: Receiver<(u64, Record)>) {
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let result = self.run_inner(&rx, &waker);
        let result = result.and_then(|()| self.finish());
        if let (Err(e), Some(shared)) = (result, self.shared()) {
            shared.fail(&e);
            rx.close();
        }
    }

    fn run_inner(
        &mut self,
        rx: &Receiver<(u64, Record)>,
        waker: &Waker,
    ) -> Result<(), RecorderError> {
        loop {
            let timeout = self.next_wakeup();
            // With a block already open, sleep through to its deadline without
            // listening on the queue: a listening writer is woken by every
            // producer's send, and on a busy shard those wake-ups cost more
            // than compressing (measured with pgbench: ~0.3 wake-ups per
            // transaction, the largest part of recording's cost). The queue
            // keeps filling meanwhile; a full queue slows producers, as ever.
            let got = if self.pending_since.is_some() && !timeout.is_zero() {
                thread::park_timeout(timeout);
                match rx.try_recv() {
                    Ok(v) => Some(Ok(v)),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Closed) => Some(Err(async_channel::RecvError)),
                }
            } else {
                recv_timeout(rx, timeout, waker)
            };
            match got {
                Some(Ok((seq, record))) => {
                    self.group_commit = self.config.durability == Durability::Batch;
                    self.handle(seq, &record)?;
                    // Drain what is already queued before touching the disk again.
                    loop {
                        match rx.try_recv() {
                            Ok((seq, record)) => self.handle(seq, &record)?,
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Closed) => break,
                        }
                    }
                    self.group_commit = false;
                    if self.written_next > self.synced_next {
                        self.sync()?;
                    }
                }
                Some(Err(_closed)) => return Ok(()),
                None => {}
            }
            if let Some(s) = self.shared() {
                s.wake_space_waiters();
            }
            self.tick()?;
        }
    }

    fn next_wakeup(&self) -> Duration {
        let mut wait = Duration::from_millis(500);
        if let Some(since) = self.pending_since {
            wait = wait.min(self.config.block_max_delay.saturating_sub(since.elapsed()));
        }
        if let Durability::Interval(every) = self.config.durability
            && self.written_next > self.synced_next
        {
            wait = wait.min(every.saturating_sub(self.last_sync.elapsed()));
        }
        wait
    }

    fn handle(&mut self, seq: u64, record: &Record) -> Result<(), RecorderError> {
        if seq != self.next_seq {
            return Err(RecorderError::Corrupt {
                shard: self.shard,
                path: self.active.path.clone(),
                offset: self.active.len,
                detail: format!("queue delivered sequence {seq}, expected {}", self.next_seq),
            });
        }
        self.builder.push(seq, record)?;
        self.next_seq += 1;
        if let Some(e) = index_entry_for(seq, 0, record) {
            self.pending_index.push(e);
        }
        if self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        if self.config.durability == Durability::Always
            || self.builder.raw_len() >= self.config.block_size
        {
            self.flush_block()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), RecorderError> {
        if self
            .pending_since
            .is_some_and(|t| t.elapsed() >= self.config.block_max_delay)
        {
            self.flush_block()?;
        }
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
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), RecorderError> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let block = self
            .builder
            .finish(&self.chain_head)
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
        self.pending_since = None;
        if let Some(s) = self.shared() {
            s.blocks_written.fetch_add(1, Ordering::Relaxed);
            s.raw_bytes.fetch_add(raw_len, Ordering::Relaxed);
            s.disk_bytes.fetch_add(len, Ordering::Relaxed);
        }
        // Index entries follow their block, so the index can only lag.
        let base = self.active_base();
        self.index_buf.clear();
        for mut e in self.pending_index.drain(..) {
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
        if let Some(s) = self.shared() {
            // Producers slowed by a full queue go on as soon as a block is out.
            s.wake_space_waiters();
        }
        if !self.index_buf.is_empty() {
            self.index
                .append(&self.index_buf)
                .map_err(RecorderError::io("append index", &self.index_path))?;
            if sync_now {
                self.index
                    .sync()
                    .map_err(RecorderError::io("sync index", &self.index_path))?;
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

    fn sync(&mut self) -> Result<(), RecorderError> {
        self.sync_segment()?;
        self.index
            .sync()
            .map_err(RecorderError::io("sync index", &self.index_path))
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
        Ok(())
    }

    fn seal(&mut self) -> Result<(), RecorderError> {
        self.flush_block()?;
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
        Ok(())
    }

    /// On shutdown: write what is pending and seal a non-empty segment.
    fn finish(&mut self) -> Result<(), RecorderError> {
        self.flush_block()?;
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
        };
        if policy.max_age.is_none() && policy.max_bytes.is_none() {
            return Ok(());
        }
        apply_retention(
            self.fs.as_ref(),
            &self.dir,
            &policy,
            now_ns(),
            Some(self.index.as_mut()),
        )?;
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

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Receives with a deadline: polls the channel's future, parking the writer
/// thread in between. `None` on timeout.
fn recv_timeout<T>(
    rx: &Receiver<T>,
    timeout: Duration,
    waker: &Waker,
) -> Option<Result<T, async_channel::RecvError>> {
    match rx.try_recv() {
        Ok(v) => return Some(Ok(v)),
        Err(TryRecvError::Closed) => return Some(Err(async_channel::RecvError)),
        Err(TryRecvError::Empty) => {}
    }
    let deadline = Instant::now() + timeout;
    let mut cx = Context::from_waker(waker);
    let mut fut = pin!(rx.recv());
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            return Some(r);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::park_timeout(deadline - now);
    }
}
