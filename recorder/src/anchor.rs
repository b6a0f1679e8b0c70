//! What `verify` checks beyond the chain itself: that the log still reaches
//! every signed checkpoint (nothing cut from its end, no segment removed or
//! truncated), that a shard starting past sequence 0 has a signed retention
//! checkpoint for it, and that the session index says exactly what the
//! chained session start/end records say.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointEvent, read_checkpoints};
use crate::error::RecorderError;
use crate::format::{Hash, Seal};
use crate::fs::FileSystem;
use crate::index::{INDEX_FILE, IndexEntry};
use crate::record::RawRecord;
use crate::recovery::index_entry_for;
use crate::retention::hex;
use crate::verify::{Problem, ProblemKind, VerifyReport};

fn problem(shard: u32, file: &str, kind: ProblemKind, detail: String) -> Problem {
    Problem {
        shard,
        file: Some(file.to_owned()),
        block: None,
        offset: None,
        kind,
        detail,
    }
}

fn describe(cp: &Checkpoint) -> String {
    format!(
        "{} checkpoint of {} on {}",
        format!("{:?}", cp.event).to_lowercase(),
        crate::export::format_time(cp.time_ns),
        cp.host
    )
}

/// The checkpoints of one shard and which of them the log has met.
pub(crate) struct Anchors {
    shard: u32,
    /// Trusted checkpoints (good CRC; good signature when a key is given).
    cps: Vec<Checkpoint>,
    met: Vec<bool>,
    by_seq: BTreeMap<u64, Vec<usize>>,
    /// Segments seen with a seal: base → (next seq, chain head).
    sealed: HashMap<u64, (u64, Hash)>,
    segments: HashSet<u64>,
    /// Every checkpoint read, to find the log's copies in it.
    all: HashSet<(u64, u64, String)>,
    pub(crate) file_exists: bool,
}

impl Anchors {
    /// Reads and checks the checkpoint file of `shard_dir`.
    pub(crate) fn load(
        fs: &dyn FileSystem,
        shard_dir: &std::path::Path,
        shard: u32,
        public_key: Option<&[u8]>,
        report: &mut VerifyReport,
    ) -> Result<Self, RecorderError> {
        let file = read_checkpoints(fs, &shard_dir.join(CHECKPOINT_FILE))?;
        let mut a = Self {
            shard,
            cps: Vec::new(),
            met: Vec::new(),
            by_seq: BTreeMap::new(),
            sealed: HashMap::new(),
            segments: HashSet::new(),
            all: HashSet::new(),
            file_exists: file.exists,
        };
        if let Some((offset, detail)) = file.damage {
            let mut p = problem(shard, CHECKPOINT_FILE, ProblemKind::BadCheckpoint, detail);
            p.offset = Some(offset);
            if file.torn_tail {
                p.detail = format!("torn last entry (a crash while appending): {}", p.detail);
                report.warnings.push(p);
            } else {
                report.problems.push(p);
            }
        }
        for (offset, cp) in file.entries {
            a.all.insert((cp.seq, cp.time_ns, cp.head.clone()));
            if let Some(p) = a.untrusted(&cp, public_key, report) {
                let mut p = problem(shard, CHECKPOINT_FILE, p.0, p.1);
                p.offset = Some(offset);
                report.problems.push(p);
                continue;
            }
            a.by_seq.entry(cp.seq).or_default().push(a.cps.len());
            a.cps.push(cp);
            a.met.push(false);
        }
        Ok(a)
    }

    /// Why a checkpoint cannot be trusted, if it cannot.
    fn untrusted(
        &self,
        cp: &Checkpoint,
        public_key: Option<&[u8]>,
        report: &mut VerifyReport,
    ) -> Option<(ProblemKind, String)> {
        if cp.shard != self.shard {
            return Some((
                ProblemKind::BadCheckpoint,
                format!("{} names shard {}", describe(cp), cp.shard),
            ));
        }
        match (public_key, cp.signature_valid(public_key.unwrap_or(&[]))) {
            (Some(_), Some(true)) => report.signatures_checked += 1,
            (Some(_), Some(false)) => {
                return Some((
                    ProblemKind::BadSignature,
                    format!(
                        "{} at sequence {}: signature does not verify with the given key (forged or altered)",
                        describe(cp),
                        cp.seq
                    ),
                ));
            }
            (Some(_), None) => {
                return Some((
                    ProblemKind::Unsigned,
                    format!("{} at sequence {} is not signed", describe(cp), cp.seq),
                ));
            }
            (None, Some(_)) => report.signatures_unchecked += 1,
            (None, None) => {}
        }
        None
    }

    /// The chain passes `seq` with head `head` (a segment start or the end
    /// of a block).
    pub(crate) fn boundary(
        &mut self,
        seq: u64,
        head: &Hash,
        file: &str,
        report: &mut VerifyReport,
    ) {
        let Some(ids) = self.by_seq.get(&seq) else {
            return;
        };
        let head = hex(head);
        for &i in ids {
            if self.met[i] {
                continue;
            }
            self.met[i] = true;
            if self.cps[i].head != head {
                report.problems.push(problem(
                    self.shard,
                    file,
                    ProblemKind::BrokenChain,
                    format!(
                        "the chain at sequence {seq} is not the one the {} signed: the log was rewritten",
                        describe(&self.cps[i])
                    ),
                ));
            }
        }
    }

    pub(crate) fn segment(&mut self, base: u64, seal: Option<&Seal>) {
        self.segments.insert(base);
        if let Some(s) = seal {
            self.sealed.insert(base, (s.next_seq, s.chain_head));
        }
    }

    /// True when a trusted retention checkpoint says the shard may start at
    /// `base` with `prev_hash` (the segments before it were deleted).
    pub(crate) fn pruned_to(&self, base: u64, prev_hash: &Hash) -> bool {
        let head = hex(prev_hash);
        self.cps
            .iter()
            .any(|c| c.event == CheckpointEvent::Prune && c.seq == base && c.head == head)
    }

    /// A checkpoint record found in the log must be in the checkpoint file.
    pub(crate) fn in_log(
        &self,
        raw: &RawRecord<'_>,
        at: &str,
        seq: u64,
        report: &mut VerifyReport,
    ) {
        match Checkpoint::from_json(raw.body) {
            Ok(cp) if self.all.contains(&(cp.seq, cp.time_ns, cp.head.clone())) => {}
            Ok(cp) => report.problems.push(problem(
                self.shard,
                CHECKPOINT_FILE,
                ProblemKind::BadCheckpoint,
                format!(
                    "the log holds the {} (record {seq} in {at}) but the checkpoint file does not: checkpoint file truncated or replaced",
                    describe(&cp)
                ),
            )),
            Err(e) => report.problems.push(problem(
                self.shard,
                at,
                ProblemKind::Undecodable,
                format!("checkpoint record {seq}: {e}"),
            )),
        }
    }

    /// The highest sequence a trusted checkpoint vouches for.
    pub(crate) fn covered(&self) -> u64 {
        self.cps.iter().map(|c| c.seq).max().unwrap_or(0)
    }

    /// After the scan: every checkpoint at or past the first kept segment
    /// must have been met, and the segments it names must be there.
    pub(crate) fn finish(&self, first_base: Option<u64>, end: u64, report: &mut VerifyReport) {
        let Some(first) = first_base else {
            if let Some(cp) = self.cps.iter().max_by_key(|c| c.seq) {
                report.problems.push(problem(
                    self.shard,
                    CHECKPOINT_FILE,
                    ProblemKind::TailRemoved,
                    format!(
                        "the shard has no segments but the {} vouches for sequence {}: segments removed",
                        describe(cp),
                        cp.seq
                    ),
                ));
            }
            return;
        };
        for (i, cp) in self.cps.iter().enumerate() {
            // What lies before the first kept segment is retention's.
            if cp.seq < first {
                continue;
            }
            report.problems.extend(self.unmet(cp, self.met[i], end));
            report.problems.extend(self.segment_gone(cp, first));
        }
    }

    fn file_for(&self, cp: &Checkpoint) -> String {
        let seg = crate::format::segment_file_name(cp.segment);
        if self.segments.contains(&cp.segment) {
            seg
        } else {
            CHECKPOINT_FILE.to_owned()
        }
    }

    /// The chain must pass the checkpoint's (sequence, head).
    fn unmet(&self, cp: &Checkpoint, met: bool, end: u64) -> Option<Problem> {
        let what = describe(cp);
        let seg = crate::format::segment_file_name(cp.segment);
        let (kind, detail) = if cp.seq > end {
            (
                ProblemKind::TailRemoved,
                format!(
                    "the {what} vouches for sequence {} (segment {seg}) but the log ends at {end}: records after it were removed or truncated",
                    cp.seq
                ),
            )
        } else if !met {
            (
                ProblemKind::BrokenChain,
                format!(
                    "no block ends at sequence {} as the {what} says: the log was rewritten",
                    cp.seq
                ),
            )
        } else {
            return None;
        };
        Some(problem(self.shard, &self.file_for(cp), kind, detail))
    }

    /// The segment a checkpoint says was created (or sealed) must be there
    /// (and sealed as it says).
    fn segment_gone(&self, cp: &Checkpoint, first: u64) -> Option<Problem> {
        if cp.segment < first {
            return None;
        }
        let what = describe(cp);
        let seg = crate::format::segment_file_name(cp.segment);
        let p = |kind, detail| Some(problem(self.shard, &self.file_for(cp), kind, detail));
        match cp.event {
            CheckpointEvent::Open if !self.segments.contains(&cp.segment) => p(
                ProblemKind::MissingSegment,
                format!("the {what} says segment {seg} was created; it is missing"),
            ),
            CheckpointEvent::Seal => match self.sealed.get(&cp.segment) {
                Some((next, head)) if *next == cp.seq && hex(head) == cp.head => None,
                Some(_) => p(
                    ProblemKind::BadSeal,
                    format!("segment {seg}'s seal is not the one the {what} recorded"),
                ),
                None => p(
                    ProblemKind::Truncated,
                    format!(
                        "the {what} says segment {seg} was sealed; it has no seal: truncated or removed"
                    ),
                ),
            },
            _ => None,
        }
    }
}

/// The session index checked against the chained start/end records.
pub(crate) struct IndexCheck {
    shard: u32,
    /// Start/end entries not yet met in the log, by sequence.
    entries: HashMap<u64, IndexEntry>,
    /// (sequence, session) of records the index lacks.
    missing: Vec<(u64, u64)>,
}

impl IndexCheck {
    pub(crate) fn new(shard: u32, entries: impl IntoIterator<Item = IndexEntry>) -> Self {
        let entries = entries
            .into_iter()
            .filter_map(|e| e.seq().map(|s| (s, e)))
            .collect();
        Self {
            shard,
            entries,
            missing: Vec::new(),
        }
    }

    /// A session start or end record at `seq` in segment `segment`.
    pub(crate) fn record(
        &mut self,
        seq: u64,
        segment: u64,
        raw: &RawRecord<'_>,
        report: &mut VerifyReport,
    ) {
        let Ok(record) = raw.to_record() else {
            return; // reported as undecodable by the caller's walk
        };
        let Some(want) = index_entry_for(seq, segment, &record) else {
            return;
        };
        match self.entries.remove(&seq) {
            None => self.missing.push((seq, record.session)),
            Some(got) if got == want => {}
            Some(got) => report.problems.push(problem(
                self.shard,
                INDEX_FILE,
                ProblemKind::BadIndex,
                format!(
                    "the entry for sequence {seq} (session {}) does not match the recorded one: index says {}, the log says {}",
                    record.session,
                    serde_json::to_string(&got).unwrap_or_default(),
                    serde_json::to_string(&want).unwrap_or_default()
                ),
            )),
        }
    }

    /// After the scan. `covered`: what checkpoints vouch for (the index is
    /// fsynced before each one, so it cannot lag below it).
    pub(crate) fn finish(self, first_base: u64, end: u64, covered: u64, report: &mut VerifyReport) {
        let newest = self.entries.keys().max().copied();
        let mut forged: Vec<_> = self
            .entries
            .into_iter()
            .filter(|(seq, _)| *seq >= first_base)
            .collect();
        forged.sort_by_key(|(s, _)| *s);
        for (seq, e) in forged {
            report.problems.push(problem(
                self.shard,
                INDEX_FILE,
                ProblemKind::BadIndex,
                format!(
                    "the entry for sequence {seq} names a record the log does not hold{}: {}",
                    if seq >= end { " (past its end)" } else { "" },
                    serde_json::to_string(&e).unwrap_or_default()
                ),
            ));
        }
        for (seq, session) in self.missing {
            let p = problem(
                self.shard,
                INDEX_FILE,
                ProblemKind::BadIndex,
                format!("no entry for session {session}'s start/end record at sequence {seq}"),
            );
            // Only the tail after the last checkpoint may lag (a crash
            // before the index append); recovery re-derives it.
            if seq < covered || newest.is_some_and(|n| n > seq) {
                report.problems.push(p);
            } else {
                report.warnings.push(Problem {
                    detail: format!("{} (index lags the log; recovery adds it)", p.detail),
                    ..p
                });
            }
        }
    }
}
