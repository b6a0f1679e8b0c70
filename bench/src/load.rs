//! The load generator: connections spread over threads, each thread one compio
//! runtime, each connection one task sending requests back to back (closed
//! model) or on a fixed schedule (open model, `--rate`).
//!
//! Timing rules, so the numbers mean what the summary says:
//! - All threads connect first, then start together; connection set-up is not
//!   part of any latency.
//! - Requests that start during the warm-up are not recorded.
//! - With a duration, a request counts when it starts after the warm-up and
//!   completes before the deadline; the measured window is exactly the duration.
//! - With `--rate`, latency runs from the time the request was *due*, not the
//!   time it was sent: a stalled server delays every request queued behind it,
//!   and those delays are in the histogram (no coordinated omission).
//! - A request in flight longer than `--timeout` is abandoned, counted as a
//!   timeout, and its connection replaced.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use compio::net::TcpStream;
use compio::runtime::JoinHandle;
use hdrhistogram::Histogram;

use crate::exchange::{Buffers, RequestError};
use crate::report::{ErrorCounts, Progress};

/// Pause before reconnecting after a failure, so a dead target is probed, not hammered.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);
/// How often each thread checks for stuck requests and reports progress.
const WATCHDOG_TICK: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Threads report more often than the line is printed, so it is never a second stale.
const THREAD_REPORT_EVERY: Duration = Duration::from_millis(250);
/// Per-second buckets kept for a count-mode run: a day's worth.
const MAX_SECONDS: usize = 86_400;
/// Latencies are recorded in µs; anything above an hour is clamped.
const HIST_MAX_US: u64 = 3_600_000_000;

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Run for this long after the warm-up.
    After(Duration),
    /// Complete this many requests after the warm-up, all connections together.
    Count(u64),
}

/// Everything a run needs; validated by the command line before it gets here.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    pub size: usize,
    pub connections: usize,
    pub threads: usize,
    pub stop: Stop,
    pub warmup: Duration,
    /// Requests per second over all connections; `None` is the closed model.
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub verify: bool,
    /// Called about once a second with the progress so far (on the main thread).
    pub progress: bool,
}

/// What a run measured, all threads merged.
pub struct Outcome {
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    pub errors: ErrorCounts,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The measured window: the duration, or warm-up end to last completion for a count.
    pub measured: Duration,
    /// Requests completed in each second of the window.
    pub per_second: Vec<u64>,
}

pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; a failure here is a bug in them.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Runs the plan; `on_progress` sees the merged progress about once a second.
pub fn run(plan: Plan, mut on_progress: impl FnMut(&Progress)) -> anyhow::Result<Outcome> {
    let plan = Arc::new(plan);
    let gate = Arc::new(StartGate::new(plan.threads + 1));
    let (tx, rx) = mpsc::channel::<ThreadProgress>();
    let mut workers = Vec::with_capacity(plan.threads);
    for thread in 0..plan.threads {
        let conns: Vec<usize> = (thread..plan.connections).step_by(plan.threads).collect();
        let (plan, gate, tx) = (Arc::clone(&plan), Arc::clone(&gate), tx.clone());
        let worker = std::thread::Builder::new()
            .name(format!("load-{thread}"))
            .spawn(move || run_thread(thread, &plan, conns, &gate, &tx))
            .context("spawning a load thread")?;
        workers.push(worker);
    }
    drop(tx);

    let start = gate.open();
    let warm_end = start + plan.warmup;
    let deadline = match plan.stop {
        Stop::After(duration) => Some(warm_end + duration),
        Stop::Count(_) => None,
    };
    let mut latest: Vec<Option<ThreadProgress>> = (0..plan.threads).map(|_| None).collect();
    let mut next_print = Instant::now() + PROGRESS_EVERY;
    loop {
        match rx.recv_timeout(WATCHDOG_TICK) {
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
            on_progress(&merge_progress(&latest, now, start, warm_end, deadline));
        }
    }

    let mut outcome = Outcome {
        latency_us: new_histogram(),
        requests: 0,
        errors: ErrorCounts::default(),
        bytes_sent: 0,
        bytes_received: 0,
        measured: Duration::ZERO,
        per_second: Vec::new(),
    };
    let mut last_completion: Option<Instant> = None;
    for worker in workers {
        let stats = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        outcome
            .latency_us
            .add(&stats.latency_us)
            .context("merging latency histograms")?;
        outcome.requests += stats.requests;
        outcome.errors.add(&stats.errors);
        outcome.bytes_sent += stats.bytes_sent;
        outcome.bytes_received += stats.bytes_received;
        last_completion = last_completion.max(stats.last_completion);
        add_per_second(&mut outcome.per_second, &stats.per_second);
    }
    if let Stop::After(duration) = plan.stop {
        // Every second of the window has a bucket, the empty ones too.
        let seconds = (duration.as_secs_f64().ceil() as usize).min(MAX_SECONDS);
        outcome.per_second.resize(seconds, 0);
    }
    outcome.measured = match plan.stop {
        Stop::After(duration) => duration,
        Stop::Count(_) => last_completion.map_or(Duration::ZERO, |last| last - warm_end),
    };
    Ok(outcome)
}

fn add_per_second(sum: &mut Vec<u64>, more: &[u64]) {
    if sum.len() < more.len() {
        sum.resize(more.len(), 0);
    }
    for (total, n) in sum.iter_mut().zip(more) {
        *total += n;
    }
}

fn merge_progress(
    latest: &[Option<ThreadProgress>],
    now: Instant,
    start: Instant,
    warm_end: Instant,
    deadline: Option<Instant>,
) -> Progress {
    let mut hist = new_histogram();
    let mut requests = 0;
    let mut errors = 0;
    let mut req_per_s = 0.0;
    for update in latest.iter().flatten() {
        // Same bounds on every side, so adding cannot fail; if it did, the
        // progress line would only be less complete.
        let _ = hist.add(&update.latency_us);
        requests += update.requests;
        errors += update.errors;
        // Each thread's rate over its own snapshot time, so a snapshot that is
        // a few hundred milliseconds old does not drag the rate down.
        let until = deadline.map_or(update.at, |d| update.at.min(d));
        if until > warm_end {
            req_per_s += update.requests as f64 / (until - warm_end).as_secs_f64();
        }
    }
    Progress {
        elapsed: now - start,
        // Until a snapshot from after the warm-up arrives there is no rate to show.
        warming_up: now < warm_end || latest.iter().flatten().all(|u| u.at <= warm_end),
        requests,
        errors,
        req_per_s,
        p99_us: (!hist.is_empty()).then(|| hist.value_at_quantile(0.99)),
    }
}

/// Lets every thread connect before the clock starts, then starts them together.
struct StartGate {
    connected: Barrier,
    released: Barrier,
    start: OnceLock<Instant>,
}

impl StartGate {
    fn new(parties: usize) -> Self {
        Self {
            connected: Barrier::new(parties),
            released: Barrier::new(parties),
            start: OnceLock::new(),
        }
    }

    /// Main thread: wait until every worker has connected, then set the start.
    fn open(&self) -> Instant {
        self.connected.wait();
        let start = *self.start.get_or_init(Instant::now);
        self.released.wait();
        start
    }

    /// Worker thread: report connected, wait for the start.
    fn wait(&self) -> Instant {
        self.connected.wait();
        self.released.wait();
        self.start.get().copied().unwrap_or_else(Instant::now)
    }
}

struct ThreadProgress {
    thread: usize,
    at: Instant,
    requests: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

struct ThreadStats {
    latency_us: Histogram<u64>,
    requests: u64,
    errors: ErrorCounts,
    bytes_sent: u64,
    bytes_received: u64,
    last_completion: Option<Instant>,
    per_second: Vec<u64>,
}

fn run_thread(
    thread: usize,
    plan: &Arc<Plan>,
    conns: Vec<usize>,
    gate: &StartGate,
    progress: &Sender<ThreadProgress>,
) -> anyhow::Result<ThreadStats> {
    let runtime = match crate::runtime::build() {
        Ok(runtime) => runtime,
        Err(err) => {
            // Still pass the gate, or the other threads would wait forever.
            gate.wait();
            return Err(err).context("starting the io_uring runtime");
        }
    };
    runtime.block_on(async move {
        let mut errors = ErrorCounts::default();
        let mut streams = Vec::with_capacity(conns.len());
        for _ in &conns {
            match connect(plan.addr).await {
                Ok(stream) => streams.push(Some(stream)),
                Err(_) => {
                    errors.connect += 1;
                    streams.push(None);
                }
            }
        }
        let start = gate.wait();
        let shared = Rc::new(Shared::new(plan, start, &conns, errors));
        for (idx, stream) in streams.into_iter().enumerate() {
            shared.spawn_connection(idx, stream);
        }
        shared.watch(thread, progress).await;
        let stats = shared.stats.borrow().snapshot();
        Ok(stats)
    })
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One connection's state that outlives its task (a stuck task is replaced).
struct Slot {
    conn: usize,
    handle: RefCell<Option<JoinHandle<()>>>,
    in_flight_since: Cell<Option<Instant>>,
    /// Count mode: requests this connection still owes.
    remaining: Cell<u64>,
    /// Open model: when the next request is due.
    next_due: Cell<Instant>,
    seq: Cell<u64>,
    finished: Cell<bool>,
}

/// Per-thread state shared by the connection tasks; single-threaded, so plain cells.
struct Shared {
    plan: Arc<Plan>,
    warm_end: Instant,
    deadline: Option<Instant>,
    /// Open model: time between two requests of one connection.
    interval: Option<Duration>,
    slots: Vec<Slot>,
    stats: RefCell<ThreadStats>,
}

impl Shared {
    fn new(plan: &Arc<Plan>, start: Instant, conns: &[usize], errors: ErrorCounts) -> Self {
        let warm_end = start + plan.warmup;
        let connections = plan.connections as u64;
        let interval = plan
            .rate
            .map(|rate| Duration::from_secs_f64(plan.connections as f64 / rate));
        let slots = conns
            .iter()
            .map(|&conn| {
                let owed = match plan.stop {
                    Stop::Count(total) => {
                        total / connections + u64::from((conn as u64) < total % connections)
                    }
                    Stop::After(_) => 0,
                };
                // Stagger the schedule so the connections do not fire in bursts.
                let offset = interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(conn as f64 / plan.connections as f64)
                });
                Slot {
                    conn,
                    handle: RefCell::new(None),
                    in_flight_since: Cell::new(None),
                    remaining: Cell::new(owed),
                    next_due: Cell::new(start + offset),
                    seq: Cell::new(0),
                    finished: Cell::new(false),
                }
            })
            .collect();
        Self {
            plan: Arc::clone(plan),
            warm_end,
            deadline: match plan.stop {
                Stop::After(duration) => Some(warm_end + duration),
                Stop::Count(_) => None,
            },
            interval,
            slots,
            stats: RefCell::new(ThreadStats {
                latency_us: new_histogram(),
                requests: 0,
                errors,
                bytes_sent: 0,
                bytes_received: 0,
                last_completion: None,
                per_second: Vec::new(),
            }),
        }
    }

    fn spawn_connection(self: &Rc<Self>, idx: usize, stream: Option<TcpStream>) {
        let handle = compio::runtime::spawn(Rc::clone(self).drive(idx, stream));
        *self.slots[idx].handle.borrow_mut() = Some(handle);
    }

    /// Whether connection `idx` has nothing left to do.
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

    /// A failure or a success that counts against a count-mode quota.
    fn consume_quota(&self, idx: usize, started: Instant) {
        if started >= self.warm_end {
            let slot = &self.slots[idx];
            slot.remaining.set(slot.remaining.get().saturating_sub(1));
        }
    }

    /// The connection task: (re)connect, send requests until done.
    async fn drive(self: Rc<Self>, idx: usize, mut stream: Option<TcpStream>) {
        let slot = &self.slots[idx];
        let mut buffers = Buffers::new(self.plan.size, self.plan.verify);
        let size = self.plan.size as u64;
        loop {
            if self.is_done(idx, Instant::now()) {
                break;
            }
            let live = match stream.take() {
                Some(live) => live,
                None => {
                    let began = Instant::now();
                    slot.in_flight_since.set(Some(began));
                    let connected = connect(self.plan.addr).await;
                    slot.in_flight_since.set(None);
                    match connected {
                        Ok(live) => live,
                        Err(_) => {
                            self.stats.borrow_mut().errors.connect += 1;
                            self.consume_quota(idx, began);
                            compio::time::sleep(RECONNECT_BACKOFF).await;
                            continue;
                        }
                    }
                }
            };
            let due = match self.interval {
                Some(interval) => {
                    let due = slot.next_due.get();
                    slot.next_due.set(due + interval);
                    if due > Instant::now() {
                        compio::time::sleep_until(due).await;
                    }
                    Some(due)
                }
                None => None,
            };
            let sent_at = Instant::now();
            let started = due.unwrap_or(sent_at);
            // The connection number in the high bits makes every stamp unique
            // across connections, so a relay mixing up two streams is caught.
            let counter = slot.seq.get();
            slot.seq.set(counter.wrapping_add(1));
            let seq = ((slot.conn as u64) << 40) ^ counter;
            slot.in_flight_since.set(Some(sent_at));
            let result = buffers.exchange(&live, seq).await;
            slot.in_flight_since.set(None);
            let done = Instant::now();
            let in_window = started >= self.warm_end && self.deadline.is_none_or(|d| done <= d);
            match result {
                Ok(()) => {
                    if in_window {
                        let mut stats = self.stats.borrow_mut();
                        let micros =
                            u64::try_from((done - started).as_micros()).unwrap_or(u64::MAX);
                        stats.latency_us.saturating_record(micros.max(1));
                        stats.requests += 1;
                        stats.bytes_sent += size;
                        stats.bytes_received += size;
                        stats.last_completion = stats.last_completion.max(Some(done));
                        let second = (done - self.warm_end).as_secs() as usize;
                        if second < MAX_SECONDS {
                            if stats.per_second.len() <= second {
                                stats.per_second.resize(second + 1, 0);
                            }
                            stats.per_second[second] += 1;
                        }
                    }
                    self.consume_quota(idx, started);
                    stream = Some(live);
                }
                Err(err) => {
                    self.stats.borrow_mut().errors.count(&err);
                    self.consume_quota(idx, started);
                    drop(live);
                    compio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
        slot.finished.set(true);
    }

    /// Replaces stuck connections and reports progress until every connection is done.
    async fn watch(self: &Rc<Self>, thread: usize, progress: &Sender<ThreadProgress>) {
        let mut next_report = Instant::now() + THREAD_REPORT_EVERY;
        loop {
            compio::time::sleep(WATCHDOG_TICK).await;
            let now = Instant::now();
            for (idx, slot) in self.slots.iter().enumerate() {
                if slot.finished.get() {
                    continue;
                }
                let Some(since) = slot.in_flight_since.get() else {
                    continue;
                };
                if now - since < self.plan.timeout {
                    continue;
                }
                // Dropping the handle cancels the stuck task and closes its socket.
                drop(slot.handle.borrow_mut().take());
                slot.in_flight_since.set(None);
                self.stats.borrow_mut().errors.timeout += 1;
                self.consume_quota(idx, since);
                if self.is_done(idx, now) {
                    slot.finished.set(true);
                } else {
                    self.spawn_connection(idx, None);
                }
            }
            if self.plan.progress && now >= next_report {
                next_report = now + THREAD_REPORT_EVERY;
                let stats = self.stats.borrow();
                // The main thread only prints; a closed channel is harmless.
                let _ = progress.send(ThreadProgress {
                    thread,
                    at: now,
                    requests: stats.requests,
                    errors: stats.errors.total(),
                    latency_us: stats.latency_us.clone(),
                });
            }
            if self.slots.iter().all(|slot| slot.finished.get()) {
                break;
            }
        }
    }
}

impl ErrorCounts {
    fn count(&mut self, err: &RequestError) {
        match err {
            RequestError::Eof => self.eof += 1,
            RequestError::Mismatch => self.mismatch += 1,
            RequestError::Io(io) => match io.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => self.reset += 1,
                io::ErrorKind::TimedOut => self.timeout += 1,
                _ => self.other += 1,
            },
        }
    }
}

impl ThreadStats {
    fn snapshot(&self) -> Self {
        Self {
            latency_us: self.latency_us.clone(),
            requests: self.requests,
            errors: self.errors,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            last_completion: self.last_completion,
            per_second: self.per_second.clone(),
        }
    }
}
