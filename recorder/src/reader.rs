//! Reading recordings: listing sessions from the index, and streaming
//! records out of segments for export and replay, in constant memory.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::block::BlockDecoder;
use crate::error::RecorderError;
use crate::format::parse_shard_dir_name;
use crate::fs::{FileSystem, RealFs};
use crate::index::{INDEX_FILE, IndexEntry, read_index};
use crate::record::{RawRecords, RecordKind};
use crate::recovery::list_segments;
use crate::scan::{ScanItem, ScanStop, SegmentScan};

/// Which sessions to list or export. Times are inclusive bounds; a session
/// matches when its lifetime overlaps `[since, until]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Exact identity subject.
    pub identity: Option<String>,
    /// Exact target name.
    pub target: Option<String>,
}

pub(crate) fn system_time_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl SessionFilter {
    fn bounds(&self) -> (u64, u64) {
        (
            self.since.map_or(0, system_time_ns),
            self.until.map_or(u64::MAX, system_time_ns),
        )
    }

    fn matches(&self, s: &SessionSummary) -> bool {
        let (since, until) = self.bounds();
        s.start_ns <= until
            && s.end_ns.unwrap_or(u64::MAX) >= since
            && self.identity.as_ref().is_none_or(|i| *i == s.subject)
            && self.target.as_ref().is_none_or(|t| *t == s.target)
    }

    fn is_session_specific(&self) -> bool {
        self.identity.is_some() || self.target.is_some()
    }
}

/// One session, as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionSummary {
    pub session: u64,
    pub shard: u32,
    pub subject: String,
    pub target: String,
    pub client_addr: Option<String>,
    pub start_ns: u64,
    pub start_seq: u64,
    /// Base sequence of the segment holding the start.
    pub first_segment: u64,
    pub end_ns: Option<u64>,
    pub end_reason: Option<String>,
    /// Base sequence of the segment holding the end, once ended.
    pub last_segment: Option<u64>,
}

/// A record met while streaming a shard.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub shard: u32,
    pub seq: u64,
    pub kind: RecordKind,
    pub session: u64,
    pub timestamp_ns: u64,
    pub body: &'a [u8],
}

/// Progress of a long read, reported once per block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub records: u64,
}

/// A recording directory opened for reading.
#[derive(Debug, Clone)]
pub struct RecordingDir {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
}

impl RecordingDir {
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Self::with_fs(Arc::new(RealFs), dir)
    }

    pub fn with_fs(fs: Arc<dyn FileSystem>, dir: impl Into<PathBuf>) -> Self {
        Self {
            fs,
            dir: dir.into(),
        }
    }

    /// The shard directories, sorted by shard id.
    pub fn shards(&self) -> Result<Vec<(u32, PathBuf)>, RecorderError> {
        let mut shards: Vec<(u32, PathBuf)> = self
            .fs
            .list(&self.dir)
            .map_err(RecorderError::io("list", &self.dir))?
            .into_iter()
            .filter_map(|name| parse_shard_dir_name(&name).map(|id| (id, self.dir.join(name))))
            .collect();
        shards.sort_by_key(|(id, _)| *id);
        Ok(shards)
    }

    /// Every session in the index, merged across shards, ordered by start.
    pub(crate) fn all_sessions(&self) -> Result<Vec<SessionSummary>, RecorderError> {
        let mut out = Vec::new();
        for (shard, shard_dir) in self.shards()? {
            let first_existing = list_segments(self.fs.as_ref(), &shard_dir)?
                .first()
                .map(|(b, _)| *b);
            let mut by_id: HashMap<u64, SessionSummary> = HashMap::new();
            let mut order = Vec::new();
            for (_, e) in read_index(self.fs.as_ref(), &shard_dir.join(INDEX_FILE))?.entries {
                match e {
                    IndexEntry::Start {
                        seq,
                        session,
                        segment,
                        ts_ns,
                        subject,
                        target,
                        client_addr,
                    } => {
                        order.push(session);
                        by_id.insert(
                            session,
                            SessionSummary {
                                session,
                                shard,
                                subject,
                                target,
                                client_addr,
                                start_ns: ts_ns,
                                start_seq: seq,
                                first_segment: segment,
                                end_ns: None,
                                end_reason: None,
                                last_segment: None,
                            },
                        );
                    }
                    IndexEntry::End {
                        session,
                        segment,
                        ts_ns,
                        reason,
                        ..
                    } => {
                        if let Some(s) = by_id.get_mut(&session) {
                            s.end_ns = Some(ts_ns);
                            s.end_reason = Some(reason);
                            s.last_segment = Some(segment);
                        }
                    }
                    IndexEntry::Pruned { .. } => {}
                }
            }
            for id in order {
                if let Some(s) = by_id.remove(&id) {
                    // Sessions wholly deleted by retention are gone.
                    let gone = first_existing
                        .is_none_or(|first| s.last_segment.is_some_and(|last| last < first));
                    if !gone {
                        out.push(s);
                    }
                }
            }
        }
        out.sort_by_key(|s| (s.start_ns, s.shard, s.start_seq));
        Ok(out)
    }

    /// Sessions matching `filter`, from the index (no segment is read).
    pub fn list_sessions(
        &self,
        filter: &SessionFilter,
    ) -> Result<Vec<SessionSummary>, RecorderError> {
        Ok(self
            .all_sessions()?
            .into_iter()
            .filter(|s| filter.matches(s))
            .collect())
    }

    /// Looks a session up in the index.
    pub fn find_session(&self, session: u64) -> Result<SessionSummary, RecorderError> {
        self.all_sessions()?
            .into_iter()
            .find(|s| s.session == session)
            .ok_or(RecorderError::SessionNotFound { session })
    }

    /// Streams the records of `shard` from segments whose base lies in
    /// `[from_segment, to_segment]` to `visit`. A torn tail in the last
    /// segment (a live or crashed writer) ends the stream; other damage is an
    /// error naming the place.
    pub(crate) fn stream_shard(
        &self,
        shard: u32,
        shard_dir: &Path,
        from_segment: u64,
        to_segment: u64,
        progress: &mut dyn FnMut(u64, u64),
        visit: &mut dyn FnMut(&RecordRef<'_>) -> Result<(), RecorderError>,
    ) -> Result<(), RecorderError> {
        let segs = list_segments(self.fs.as_ref(), shard_dir)?;
        // The segment holding `from_segment`'s records may start before it
        // only if `from_segment` was deleted; start from what exists.
        let selected: Vec<&(u64, PathBuf)> = segs
            .iter()
            .filter(|(b, _)| *b >= from_segment && *b <= to_segment)
            .collect();
        let last_of_shard = segs.last().map(|(b, _)| *b);
        let mut decoder = BlockDecoder::new().map_err(RecorderError::io("zstd", shard_dir))?;
        for (base, path) in selected {
            let corrupt = |offset, detail: String| RecorderError::Corrupt {
                shard,
                path: path.clone(),
                offset,
                detail,
            };
            let mut scan = match SegmentScan::open(self.fs.as_ref(), path) {
                Ok(s) => s,
                Err(ScanStop::Torn { .. }) if Some(*base) == last_of_shard => return Ok(()),
                Err(ScanStop::Torn { offset, detail } | ScanStop::Corrupt { offset, detail }) => {
                    return Err(corrupt(offset, detail));
                }
                Err(ScanStop::Io(e)) => {
                    return Err(RecorderError::Io {
                        op: "read segment",
                        path: path.clone(),
                        source: e,
                    });
                }
            };
            loop {
                match scan.next_item() {
                    Ok(None) | Ok(Some(ScanItem::Seal { .. })) => break,
                    Ok(Some(ScanItem::Block {
                        index,
                        offset,
                        header,
                        ..
                    })) => {
                        let raw = decoder
                            .decompress(&header, scan.payload())
                            .map_err(|e| corrupt(offset, format!("block {index}: {e}")))?;
                        for (i, rec) in RawRecords::new(raw).enumerate() {
                            let rec =
                                rec.map_err(|e| corrupt(offset, format!("block {index}: {e}")))?;
                            visit(&RecordRef {
                                shard,
                                seq: header.first_seq + i as u64,
                                kind: rec.kind,
                                session: rec.session,
                                timestamp_ns: rec.timestamp_ns,
                                body: rec.body,
                            })?;
                        }
                        progress(scan.offset - offset, u64::from(header.count));
                    }
                    Err(ScanStop::Torn { .. }) if Some(*base) == last_of_shard => break,
                    Err(
                        ScanStop::Torn { offset, detail } | ScanStop::Corrupt { offset, detail },
                    ) => return Err(corrupt(offset, detail)),
                    Err(ScanStop::Io(e)) => {
                        return Err(RecorderError::Io {
                            op: "read segment",
                            path: path.clone(),
                            source: e,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Total bytes of the segments that a stream over `[from, to]` reads.
    pub(crate) fn bytes_in(
        &self,
        shard_dir: &Path,
        from: u64,
        to: u64,
    ) -> Result<u64, RecorderError> {
        let mut total = 0;
        for (base, path) in list_segments(self.fs.as_ref(), shard_dir)? {
            if base >= from && base <= to {
                total += self
                    .fs
                    .len(&path)
                    .map_err(RecorderError::io("stat", &path))?;
            }
        }
        Ok(total)
    }

    /// Streams the records selected by `selection` and `filter`, in shard
    /// then sequence order, to `visit`.
    pub fn for_each_record(
        &self,
        selection: Selection,
        filter: &SessionFilter,
        mut progress: Option<&mut dyn FnMut(Progress)>,
        visit: &mut dyn FnMut(&RecordRef<'_>) -> Result<(), RecorderError>,
    ) -> Result<(), RecorderError> {
        let mut state = Progress::default();
        match selection {
            Selection::Session(id) => {
                let s = self.find_session(id)?;
                let shard_dir = self.dir.join(crate::format::shard_dir_name(s.shard));
                // A session's records lie at or after its start record's segment;
                // an unfinished session may run to the end of the shard.
                let (from, to) = (s.first_segment, s.last_segment.unwrap_or(u64::MAX));
                let first = list_segments(self.fs.as_ref(), &shard_dir)?
                    .iter()
                    .map(|(b, _)| *b)
                    .filter(|b| *b <= from)
                    .max()
                    .unwrap_or(from);
                state.bytes_total = self.bytes_in(&shard_dir, first, to)?;
                let mut on_block = |bytes, records| {
                    state.bytes_done += bytes;
                    state.records += records;
                    if let Some(p) = progress.as_deref_mut() {
                        p(state);
                    }
                };
                self.stream_shard(s.shard, &shard_dir, first, to, &mut on_block, &mut |r| {
                    if r.session == id { visit(r) } else { Ok(()) }
                })
            }
            Selection::All => {
                let all = self.all_sessions()?;
                let wanted: HashSet<(u32, u64)> = all
                    .iter()
                    .filter(|s| filter.matches(s))
                    .map(|s| (s.shard, s.session))
                    .collect();
                let known: HashSet<(u32, u64)> = all.iter().map(|s| (s.shard, s.session)).collect();
                let everything = *filter == SessionFilter::default();
                let (since, until) = filter.bounds();
                let shards = self.shards()?;
                for (_, dir) in &shards {
                    state.bytes_total += self.bytes_in(dir, 0, u64::MAX)?;
                }
                for (shard, dir) in shards {
                    let mut on_block = |bytes, records| {
                        state.bytes_done += bytes;
                        state.records += records;
                        if let Some(p) = progress.as_deref_mut() {
                            p(state);
                        }
                    };
                    self.stream_shard(shard, &dir, 0, u64::MAX, &mut on_block, &mut |r| {
                        let key = (r.shard, r.session);
                        let take = everything
                            || wanted.contains(&key)
                            // Records outside any indexed session (admin actions)
                            // are selected by time alone.
                            || (!known.contains(&key) && !filter.is_session_specific() && (since..=until).contains(&r.timestamp_ns));
                        if take { visit(r) } else { Ok(()) }
                    })?;
                }
                Ok(())
            }
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Session(u64),
    All,
}

/// Sessions in `dir` matching `filter`.
pub fn list_sessions(
    dir: &Path,
    filter: &SessionFilter,
) -> Result<Vec<SessionSummary>, RecorderError> {
    RecordingDir::open(dir).list_sessions(filter)
}
