//! Runs SQL sessions over threads: one current-thread tokio runtime per
//! thread, one task per session, operations back to back (closed model) or on
//! a fixed schedule (open model, `--rate`).
//!
//! The timing rules are those of the TCP modes (see `crate::load`): sessions
//! open before the clock starts (except in `connect`, where opening one is the
//! operation); operations that start in the warm-up are not recorded; with
//! `--rate` latency runs from when the operation was due (no coordinated
//! omission). Completions are also counted per second of the window, for the
//! throughput-over-time plot.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use super::{Backend, OpCounts, OpError, Session, SplitMix, SqlErrors, Workload};
use crate::load::{Stop, new_histogram};
use crate::report::Progress;

const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);
const REPORT_EVERY: Duration = Duration::from_millis(250);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Per-second buckets kept for a count-mode run: a day's worth.
const MAX_SECONDS: usize = 86_400;

/// Everything a run needs; validated by the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub connections: usize,
    pub threads: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub timeout: Duration,
    /// Size of the keyed table (ids are drawn from 1..=rows).
    pub rows: u32,
    pub progress: bool,
}

/// What a run measured, all threads merged.
pub struct Outcome {
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    pub ops: OpCounts,
    pub errors: SqlErrors,
    /// The last error's text (no credentials: drivers do not echo passwords).
    pub last_error: Option<String>,
    /// Operations completed in each second of the window.
    pub per_second: Vec<u64>,
    /// Sessions opened (set-up and reconnects; `connect` operations included).
    pub sessions: u64,
    /// Statements prepared by the sessions (prepared protocol).
    pub prepared: u64,
    pub measured: Duration,
}

struct ThreadStats {
    latency_us: Histogram<u64>,
    requests: u64,
    ops: OpCounts,
    errors: SqlErrors,
    last_error: Option<String>,
    per_second: Vec<u64>,
    sessions: u64,
    prepared: u64,
    last_completion: Option<Instant>,
}

impl ThreadStats {
    fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            requests: 0,
            ops: OpCounts::default(),
            errors: SqlErrors::default(),
            last_error: None,
            per_second: Vec::new(),
            sessions: 0,
            prepared: 0,
            last_completion: None,
        }
    }

    fn fail(&mut self, err: &OpError) {
        self.errors.count(err);
        self.last_error = Some(err.to_string());
    }
}

struct ThreadProgress {
    thread: usize,
    at: Instant,
    requests: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

/// Runs the plan against `backend`; `on_progress` sees the merged progress once a second.
pub fn run<B: Backend>(
    backend: Arc<B>,
    plan: Plan,
    mut on_progress: impl FnMut(&Progress),
) -> anyhow::Result<Outcome> {
    let plan = Arc::new(plan);
    let gate = Arc::new((Barrier::new(plan.threads + 1), OnceLock::new()));
    let (tx, rx) = mpsc::channel::<ThreadProgress>();
    let mut workers = Vec::with_capacity(plan.threads);
    for thread in 0..plan.threads {
        let sessions: Vec<u32> = (thread..plan.connections)
            .step_by(plan.threads)
            .map(|s| s as u32)
            .collect();
        let (plan, gate, tx, backend) = (
            Arc::clone(&plan),
            Arc::clone(&gate),
            tx.clone(),
            Arc::clone(&backend),
        );
        let worker = std::thread::Builder::new()
            .name(format!("sql-load-{thread}"))
            .spawn(move || run_thread(thread, backend, &plan, sessions, &gate, &tx))
            .context("spawning a load thread")?;
        workers.push(worker);
    }
    drop(tx);
    gate.0.wait();
    let start = *gate.1.get_or_init(Instant::now);
    gate.0.wait();
    let warm_end = start + plan.warmup;
    let mut latest: Vec<Option<ThreadProgress>> = (0..plan.threads).map(|_| None).collect();
    let mut next_print = Instant::now() + PROGRESS_EVERY;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(update) => {
                let thread = update.thread;
                latest[thread] = Some(update);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if plan.progress && now >= next_print {
            next_print = now + PROGRESS_EVERY;
            on_progress(&merge_progress(&latest, now, start, warm_end));
        }
    }
    merge(workers, &plan, warm_end)
}

type Worker = std::thread::JoinHandle<anyhow::Result<ThreadStats>>;

fn merge(workers: Vec<Worker>, plan: &Plan, warm_end: Instant) -> anyhow::Result<Outcome> {
    let mut all = ThreadStats::new();
    for worker in workers {
        let stats = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        all.latency_us
            .add(&stats.latency_us)
            .context("merging latency histograms")?;
        all.requests += stats.requests;
        all.ops.add(&stats.ops);
        all.errors.add(&stats.errors);
        all.last_error = stats.last_error.or(all.last_error);
        if all.per_second.len() < stats.per_second.len() {
            all.per_second.resize(stats.per_second.len(), 0);
        }
        for (sum, n) in all.per_second.iter_mut().zip(&stats.per_second) {
            *sum += n;
        }
        all.sessions += stats.sessions;
        all.prepared += stats.prepared;
        all.last_completion = all.last_completion.max(stats.last_completion);
    }
    let measured = match plan.stop {
        Stop::After(duration) => duration,
        Stop::Count(_) => all.last_completion.map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(warm_end)
        }),
    };
    if let Stop::After(duration) = plan.stop {
        // A run of 2.5 s has three buckets; the last holds half a second.
        let seconds = duration.as_secs_f64().ceil() as usize;
        all.per_second.resize(seconds.min(MAX_SECONDS), 0);
    }
    Ok(Outcome {
        latency_us: all.latency_us,
        requests: all.requests,
        ops: all.ops,
        errors: all.errors,
        last_error: all.last_error,
        per_second: all.per_second,
        sessions: all.sessions,
        prepared: all.prepared,
        measured,
    })
}

fn merge_progress(
    latest: &[Option<ThreadProgress>],
    now: Instant,
    start: Instant,
    warm_end: Instant,
) -> Progress {
    let mut hist = new_histogram();
    let (mut requests, mut errors, mut req_per_s) = (0, 0, 0.0);
    for update in latest.iter().flatten() {
        // Same bounds everywhere: adding cannot fail, and the line is only advisory.
        let _ = hist.add(&update.latency_us);
        requests += update.requests;
        errors += update.errors;
        if update.at > warm_end {
            req_per_s += update.requests as f64 / (update.at - warm_end).as_secs_f64();
        }
    }
    Progress {
        elapsed: now - start,
        warming_up: now < warm_end || latest.iter().flatten().all(|u| u.at <= warm_end),
        requests,
        errors,
        req_per_s,
        p99_us: (!hist.is_empty()).then(|| hist.value_at_quantile(0.99)),
    }
}

fn run_thread<B: Backend>(
    thread: usize,
    backend: Arc<B>,
    plan: &Arc<Plan>,
    sessions: Vec<u32>,
    gate: &(Barrier, OnceLock<Instant>),
    progress: &Sender<ThreadProgress>,
) -> anyhow::Result<ThreadStats> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            // Pass the gate anyway, or every other thread waits forever.
            gate.0.wait();
            gate.0.wait();
            return Err(err).context("starting a tokio runtime");
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut stats = ThreadStats::new();
        let mut open = Vec::with_capacity(sessions.len());
        for &session in &sessions {
            open.push(if plan.workload == Workload::Connect {
                None
            } else {
                connect(&*backend, session, plan.timeout, &mut stats).await
            });
        }
        gate.0.wait();
        let start = gate.1.get().copied().unwrap_or_else(Instant::now);
        gate.0.wait();
        let shared = Rc::new(Shared::new(backend, plan, start, &sessions, stats));
        let mut handles = Vec::with_capacity(open.len());
        for (idx, session) in open.into_iter().enumerate() {
            handles.push(tokio::task::spawn_local(
                Rc::clone(&shared).drive(idx, session),
            ));
        }
        shared.report(thread, progress).await;
        for handle in handles {
            handle.await.context("a session task failed")?;
        }
        let stats = shared.stats.replace(ThreadStats::new());
        Ok(stats)
    })
}

/// Opens a session within the timeout, counting the attempt.
async fn connect<B: Backend>(
    backend: &B,
    session: u32,
    timeout: Duration,
    stats: &mut ThreadStats,
) -> Option<B::Session> {
    match tokio::time::timeout(timeout, backend.connect(session)).await {
        Ok(Ok(opened)) => {
            stats.sessions += 1;
            stats.prepared += opened.prepared();
            Some(opened)
        }
        Ok(Err(err)) => {
            stats.fail(&err);
            None
        }
        Err(_) => {
            stats.errors.timeout += 1;
            stats.last_error = Some("opening a session timed out".to_owned());
            None
        }
    }
}

struct Slot {
    session: u32,
    remaining: Cell<u64>,
    next_due: Cell<Instant>,
    seq: Cell<u64>,
}

/// Per-thread state shared by the session tasks; single-threaded, so plain cells.
struct Shared<B: Backend> {
    backend: Arc<B>,
    plan: Arc<Plan>,
    warm_end: Instant,
    deadline: Option<Instant>,
    interval: Option<Duration>,
    slots: Vec<Slot>,
    finished: Cell<usize>,
    stats: RefCell<ThreadStats>,
}

impl<B: Backend> Shared<B> {
    fn new(
        backend: Arc<B>,
        plan: &Arc<Plan>,
        start: Instant,
        sessions: &[u32],
        stats: ThreadStats,
    ) -> Self {
        let warm_end = start + plan.warmup;
        let total = plan.connections as u64;
        let interval = plan
            .rate
            .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate));
        let slots = sessions
            .iter()
            .map(|&session| {
                let owed = match plan.stop {
                    Stop::Count(n) => n / total + u64::from(u64::from(session) < n % total),
                    Stop::After(_) => 0,
                };
                // Stagger the schedules so sessions do not fire in bursts.
                let offset = interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(f64::from(session) / plan.connections as f64)
                });
                Slot {
                    session,
                    remaining: Cell::new(owed),
                    next_due: Cell::new(start + offset),
                    seq: Cell::new(0),
                }
            })
            .collect();
        Self {
            backend,
            plan: Arc::clone(plan),
            warm_end,
            deadline: match plan.stop {
                Stop::After(duration) => Some(warm_end + duration),
                Stop::Count(_) => None,
            },
            interval,
            slots,
            finished: Cell::new(0),
            stats: RefCell::new(stats),
        }
    }

    fn is_done(&self, idx: usize, now: Instant) -> bool {
        let slot = &self.slots[idx];
        match self.deadline {
            Some(deadline) => {
                let due = if self.interval.is_some() {
                    slot.next_due.get().max(now)
                } else {
                    now
                };
                due >= deadline
            }
            None => now >= self.warm_end && slot.remaining.get() == 0,
        }
    }

    fn consume_quota(&self, idx: usize, started: Instant) {
        if started >= self.warm_end {
            let slot = &self.slots[idx];
            slot.remaining.set(slot.remaining.get().saturating_sub(1));
        }
    }

    /// Waits for the next due time in the open model; returns when the operation "started".
    async fn pace(&self, idx: usize) -> Instant {
        let Some(interval) = self.interval else {
            return Instant::now();
        };
        let slot = &self.slots[idx];
        let due = slot.next_due.get();
        slot.next_due.set(due + interval);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        due
    }

    /// The session task: (re)open, run operations until done.
    async fn drive(self: Rc<Self>, idx: usize, mut session: Option<B::Session>) {
        let slot = &self.slots[idx];
        let mut rng = SplitMix::new(0x5EED ^ (u64::from(slot.session) << 32));
        let connect_only = self.plan.workload == Workload::Connect;
        while !self.is_done(idx, Instant::now()) {
            if session.is_none() && !connect_only {
                let began = Instant::now();
                session = self.reopen(slot.session).await;
                if session.is_none() {
                    self.consume_quota(idx, began);
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                    continue;
                }
            }
            let started = self.pace(idx).await;
            let seq = slot.seq.get();
            slot.seq.set(seq + 1);
            let op = self
                .plan
                .workload
                .next_op(&mut rng, slot.session, seq, self.plan.rows);
            let result = if connect_only {
                self.connect_and_close(slot.session).await
            } else if let Some(open) = session.as_mut() {
                match tokio::time::timeout(self.plan.timeout, open.run(op)).await {
                    Ok(result) => result.map_err(Some),
                    Err(_) => Err(None),
                }
            } else {
                continue;
            };
            let done = Instant::now();
            self.consume_quota(idx, started);
            self.record(started, done, op, &result);
            if let Err(err) = result {
                // A timeout leaves the protocol state unknown: replace the session.
                if err.as_ref().is_none_or(OpError::breaks_session) && !connect_only {
                    session = None;
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
        if let Some(open) = session {
            open.close().await;
        }
        self.finished.set(self.finished.get() + 1);
    }

    /// Replaces a broken session. The counts go through a local record so no
    /// borrow of the shared one is held across the await.
    async fn reopen(&self, session: u32) -> Option<B::Session> {
        let mut local = ThreadStats::new();
        let opened = connect(&*self.backend, session, self.plan.timeout, &mut local).await;
        let mut stats = self.stats.borrow_mut();
        stats.errors.add(&local.errors);
        stats.sessions += local.sessions;
        stats.prepared += local.prepared;
        if local.last_error.is_some() {
            stats.last_error = local.last_error;
        }
        opened
    }

    /// The `connect` operation: open a session, then close it cleanly.
    async fn connect_and_close(&self, session: u32) -> Result<(), Option<OpError>> {
        let opened = tokio::time::timeout(self.plan.timeout, self.backend.connect(session)).await;
        match opened {
            Ok(Ok(open)) => {
                self.stats.borrow_mut().sessions += 1;
                // The close is part of the operation: the server sees the
                // session end before the next one starts.
                let _ = tokio::time::timeout(self.plan.timeout, open.close()).await;
                Ok(())
            }
            Ok(Err(err)) => Err(Some(err)),
            Err(_) => Err(None),
        }
    }

    /// Counts one finished operation; `Err(None)` is a timeout.
    fn record(
        &self,
        started: Instant,
        done: Instant,
        op: super::Op,
        result: &Result<(), Option<OpError>>,
    ) {
        let mut stats = self.stats.borrow_mut();
        match result {
            Ok(()) => {
                let in_window = started >= self.warm_end && self.deadline.is_none_or(|d| done <= d);
                if !in_window {
                    return;
                }
                let micros = u64::try_from((done - started).as_micros()).unwrap_or(u64::MAX);
                stats.latency_us.saturating_record(micros.max(1));
                stats.requests += 1;
                stats.ops.count(op, self.plan.workload);
                stats.last_completion = stats.last_completion.max(Some(done));
                let second = (done - self.warm_end).as_secs() as usize;
                if second < MAX_SECONDS {
                    if stats.per_second.len() <= second {
                        stats.per_second.resize(second + 1, 0);
                    }
                    stats.per_second[second] += 1;
                }
            }
            Err(Some(err)) => stats.fail(err),
            Err(None) => {
                stats.errors.timeout += 1;
                stats.last_error = Some(format!(
                    "an operation took longer than {:?}",
                    self.plan.timeout
                ));
            }
        }
    }

    /// Sends progress snapshots until every session task of this thread is done.
    async fn report(&self, thread: usize, progress: &Sender<ThreadProgress>) {
        while self.finished.get() < self.slots.len() {
            tokio::time::sleep(REPORT_EVERY).await;
            if self.plan.progress {
                let stats = self.stats.borrow();
                // The main thread only prints; a closed channel is harmless.
                let _ = progress.send(ThreadProgress {
                    thread,
                    at: Instant::now(),
                    requests: stats.requests,
                    errors: stats.errors.total(),
                    latency_us: stats.latency_us.clone(),
                });
            }
        }
    }
}
