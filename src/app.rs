//! `tollgate run`: puts a configuration in service — recorder, engine,
//! approval broker, admin plane — and handles signals (TERM/INT drain, HUP
//! reload) until the engine stops.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use tollgate_recorder::{AdminAction, Record, RecordBody, Recorder, ShardRecorder, now_ns};
use tracing::{error, info, warn};

use crate::admin::durable::{DurableRevocations, state_dir};
use crate::admin::store::RevocationStore;
use crate::admin::{AdminAuth, AdminServer, AdminState, AuditSink, Caller, ReadyCheck, Reloader};
use crate::config::{Config, LogFormat};
use crate::engine::{Engine, EngineParts};
use crate::identity::{IdentityService, TokenCache};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

/// Overrides from the command line.
pub struct RunOptions {
    pub config: PathBuf,
    pub shards: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub log_level: String,
    /// Where to write the [`crate::ready::ReadyReport`] once everything listens.
    pub ready_file: Option<PathBuf>,
}

pub fn run(opts: RunOptions) -> ExitCode {
    let mut config = match Config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(n) = opts.shards {
        config.engine.shards = if n == 0 {
            crate::config::allowed_cpus().len().max(1)
        } else {
            n.min(crate::config::MAX_SHARDS)
        };
    }
    crate::telemetry::init(
        opts.log_format.unwrap_or(config.engine.log_format),
        &opts.log_level,
    );
    for moved in &config.deprecations {
        warn!("{moved}");
    }
    let config = Arc::new(config);
    let snapshot = match Snapshot::build(config.clone()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!(error = %e, "cannot put the configuration in service");
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // `[cluster]`: the schema is right, this host registered and the
    // fleet's revocations in force before any listener accepts.
    let prepared = match &config.cluster {
        None => None,
        Some(c) => match crate::cluster::prepare(c) {
            Ok(p) => {
                let n = crate::cluster::Cluster::restore_into(&p, snapshot.identity.revocations());
                info!(host = %c.host_id(), revocations = n, "cluster: control database ready");
                Some(p)
            }
            Err(e) => {
                error!(error = %e, "cannot join the fleet");
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let revocation_store = match open_revocation_store(&config, &snapshot) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot restore the admin revocations");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = Arc::new(Metrics::new(config.engine.shards));
    // Recorder first: without it (when configured) nobody gets in.
    let recorder_config = config.recorder.clone().map(|mut rc| {
        let m = metrics.clone();
        rc.fsync_observer = Some(tollgate_recorder::FsyncObserver(Arc::new(
            move |shard, d| {
                if (shard as usize) < m.shard_count() {
                    m.shard(shard as usize).fsync(d);
                }
            },
        )));
        rc
    });
    let recorder = match &recorder_config {
        None => {
            warn!("recording is disabled ([recorder] enabled = false): sessions are not recorded");
            None
        }
        Some(rc) => match Recorder::open(rc, config.engine.shards as u32) {
            Ok(r) => Some(r),
            Err(e) => {
                error!(error = %e, dir = %rc.dir.display(), "cannot open the recorder");
                eprintln!("error: recorder: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let fleet = prepared.as_ref().map(crate::cluster::Cluster::new);
    let uploader = match (&config.upload, &recorder_config) {
        (Some(u), Some(rc)) => {
            let key = rc.signing_key.clone().unwrap_or_default();
            let catalog = fleet.as_ref().map(|f| {
                if f.host_id() != u.host_id {
                    warn!(
                        cluster_host = f.host_id(),
                        upload_host = %u.host_id,
                        "[cluster] host_id and [recorder.upload] host_id differ: the segment catalog names this host's uploads by the latter"
                    );
                }
                f.catalog_link(&u.host_id)
            });
            match crate::objstore::uploader::Uploader::start(
                u.clone(),
                rc.dir.clone(),
                &key,
                catalog,
            ) {
                Ok(up) => {
                    metrics.attach_upload(up.status());
                    Some(up)
                }
                Err(e) => {
                    error!(error = %e, "cannot start the recording uploader");
                    eprintln!("error: recorder.upload: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    let upload_status = uploader.as_ref().map(|u| u.status());
    let recorders: Vec<ShardRecorder> = match &recorder {
        None => Vec::new(),
        Some(r) => (0..config.engine.shards as u32)
            .filter_map(|i| r.shard(i).ok())
            .collect(),
    };
    let (broker, webhook) = match crate::admin::start_broker(&config.admin) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: approvals: {e}");
            return ExitCode::FAILURE;
        }
    };
    metrics.attach_recorders(recorders.clone());
    if let Some(f) = &fleet {
        broker.set_mirror(Arc::new(f.clone()));
    }
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let engine = match Engine::start(EngineParts {
        snapshot,
        recorders: recorders.clone(),
        broker: broker.clone(),
        metrics: metrics.clone(),
        protocols: crate::pipeline::protocols(),
    }) {
        Ok(e) => e,
        Err(e) => {
            error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let control = engine.control();
    if let Some(p) = prepared
        && let Err(e) = crate::cluster::Cluster::start(p, control.clone(), broker.clone())
    {
        error!(error = %e, "cannot start the cluster agent");
        eprintln!("error: cluster: {e}");
        engine.shutdown(Duration::ZERO);
        engine.join();
        return ExitCode::FAILURE;
    }
    let reloader = Arc::new(ConfigReloader {
        path: opts.config.clone(),
        control: control.clone(),
        lock: Mutex::new(()),
        admin: OnceLock::new(),
    });
    let mut state = AdminState::new(config.admin.clone(), Arc::new(control.clone()), broker)
        .with_auth(Arc::new(TokenAuth {
            control: control.clone(),
            cache: Mutex::new(None),
        }))
        .with_revocations(match &fleet {
            Some(f) => Arc::new(crate::cluster::FleetRevocations {
                cluster: f.clone(),
                control: control.clone(),
            }) as Arc<dyn crate::admin::RevocationSink>,
            None => Arc::new(DurableRevocations::new(control.clone(), revocation_store)),
        })
        .with_reloader(reloader.clone())
        .with_readiness(Arc::new({
            let control = control.clone();
            let recorders = recorders.clone();
            let fleet = fleet.clone();
            move || {
                let mut checks = readiness(&control, &recorders);
                if let Some(u) = &upload_status {
                    // Degraded, not unready: sessions keep recording to disk.
                    let (_degraded, detail) = u.ready_detail();
                    checks.push(ReadyCheck {
                        name: "upload".into(),
                        ok: true,
                        detail,
                    });
                }
                if let Some(f) = &fleet {
                    // Reported, never failing readiness: see README, "Running a fleet".
                    checks.push(ReadyCheck {
                        name: "cluster".into(),
                        ok: true,
                        detail: crate::cluster::ready_detail(&f.status()),
                    });
                }
                checks
            }
        }))
        .with_audit(Arc::new(RecorderAudit {
            recorders: recorders.clone(),
            fleet: fleet.clone(),
        }))
        .with_metrics(metrics);
    if let Some(w) = webhook {
        state = state.with_webhook_stats(w);
    }
    if let Some(f) = &fleet {
        state = state.with_fleet(f.clone());
    }
    let state = Arc::new(state);
    let _ = reloader.admin.set(Arc::downgrade(&state));
    let admin = match AdminServer::start(state) {
        Ok(a) => a,
        Err(e) => {
            error!(error = %e, "cannot start the admin API");
            eprintln!("error: admin: {e}");
            engine.shutdown(Duration::ZERO);
            engine.join();
            return ExitCode::FAILURE;
        }
    };
    let report = crate::ready::ReadyReport::new(&config, engine.bound_addrs(), admin.local_addr());
    info!(addresses = %report.to_json(), "bound addresses");
    if let Some(Err(e)) = opts.ready_file.as_deref().map(|p| report.write_file(p)) {
        error!(error = %e, "cannot report readiness");
        eprintln!("error: {e}");
        engine.shutdown(Duration::ZERO);
        engine.join();
        admin.shutdown();
        return ExitCode::FAILURE;
    }
    crate::service_manager::ready("serving");
    info!(
        shards = config.engine.shards,
        targets = config.targets.len(),
        admin = %admin.local_addr(),
        recording = recorder.is_some(),
        version = env!("CARGO_PKG_VERSION"),
        "tollgate ready"
    );
    serve_until_stopped(
        &engine,
        &mut signals,
        &reloader,
        config.engine.shutdown_grace,
    );
    engine.join();
    admin.shutdown();
    if let Some(r) = recorder
        && let Err(e) = r.shutdown()
    {
        error!(error = %e, "recorder did not close cleanly");
    }
    // After the recorder sealed its last segments: one more pass ships them.
    if let Some(u) = uploader {
        u.shutdown(UPLOAD_SHUTDOWN_GRACE);
    }
    // After the uploader: its last pass queued catalog rows the agent
    // writes before it stops (what it cannot, the next start re-sends).
    if let Some(f) = &fleet {
        f.shutdown(CLUSTER_SHUTDOWN_GRACE);
    }
    info!("tollgate stopped");
    ExitCode::SUCCESS
}

/// Serve until a signal stops the engine and every shard has stopped; SIGHUP
/// reloads. A shard that has not stopped `SHARD_STOP_SLACK` after the grace
/// cannot end its sessions: the process exits then, and the kernel closes
/// every client and upstream connection.
fn serve_until_stopped(
    engine: &Engine,
    signals: &mut signal_hook::iterator::Signals,
    reloader: &ConfigReloader,
    grace: Duration,
) {
    let mut stopping = false;
    // When shards must have stopped by: past it, the process exits anyway.
    let mut stop_by: Option<Instant> = None;
    loop {
        for sig in signals.pending() {
            if sig == signal_hook::consts::SIGHUP {
                crate::service_manager::reloading();
                match reloader.reload() {
                    Ok(summary) => info!(%summary, "configuration reloaded (SIGHUP)"),
                    Err(e) => error!(error = %e, "reload refused; the running configuration stays"),
                }
                crate::service_manager::reloaded("serving");
            } else if !stopping {
                info!(
                    signal = sig,
                    grace_ms = grace.as_millis() as u64,
                    "shutting down: no new connections, draining live sessions"
                );
                crate::service_manager::stopping();
                engine.shutdown(grace);
                stopping = true;
                stop_by = Some(Instant::now() + grace + SHARD_STOP_SLACK);
            } else {
                warn!(signal = sig, "second signal: closing live sessions now");
                engine.shutdown(Duration::ZERO);
                let sooner = Instant::now() + SHARD_STOP_SLACK;
                stop_by = Some(stop_by.map_or(sooner, |t| t.min(sooner)));
            }
        }
        if engine.is_finished() {
            break;
        }
        if stop_by.is_some_and(|t| Instant::now() >= t) {
            error!(
                grace_ms = grace.as_millis() as u64,
                "shards did not stop after the shutdown grace: exiting with sessions still open"
            );
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a stopping gateway gives the uploader for its last pass (what
/// it does not finish, the next start uploads).
const UPLOAD_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping gateway waits for the cluster agent to write what is
/// queued (catalog rows, audit) and remove this host's session rows.
const CLUSTER_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long past the shutdown grace the shards get to end what they killed
/// (a shard waits 5 s for killed sessions to unwind) before the process
/// exits without them.
const SHARD_STOP_SLACK: Duration = Duration::from_secs(10);

fn readiness(control: &crate::engine::Control, recorders: &[ShardRecorder]) -> Vec<ReadyCheck> {
    let shards = control.shard_count();
    let listening = control.is_serving();
    let recorder_ok = recorders.iter().all(ShardRecorder::is_healthy);
    let snapshot = control.shared().current_snapshot();
    let keys = snapshot.identity.wait_for_keys(Duration::ZERO);
    vec![
        ReadyCheck {
            name: "listeners".into(),
            ok: listening,
            detail: format!("{shards} shards"),
        },
        ReadyCheck {
            name: "recorder".into(),
            ok: recorder_ok,
            detail: if recorders.is_empty() {
                "disabled".into()
            } else {
                String::new()
            },
        },
        ReadyCheck {
            name: "keys".into(),
            ok: keys,
            detail: String::new(),
        },
    ]
}

/// Admin tokens are verified by the identity layer of the configuration in
/// service (with a cache of its own, off the shards).
struct TokenAuth {
    control: crate::engine::Control,
    cache: Mutex<Option<(usize, TokenCache)>>,
}

impl AdminAuth for TokenAuth {
    fn verify(&self, bearer: &str) -> Result<Caller, String> {
        let snapshot = self.control.shared().current_snapshot();
        let service: &Arc<IdentityService> = &snapshot.identity;
        let key = Arc::as_ptr(service) as usize;
        let mut slot = self
            .cache
            .lock()
            .map_err(|_| "internal error".to_string())?;
        if slot.as_ref().is_none_or(|(k, _)| *k != key) {
            *slot = Some((key, service.new_cache()));
        }
        let Some((_, cache)) = slot.as_mut() else {
            return Err("internal error".into());
        };
        let now = SystemTime::now();
        let id = service
            .verify_token(bearer.as_bytes(), cache, now)
            .map_err(|e| e.to_string())?;
        if service.revocations().is_revoked(&id, now) {
            return Err("identity revoked".into());
        }
        Ok(Caller {
            subject: id.subject.clone(),
            groups: id.groups.clone(),
        })
    }
}

/// Admin actions go into shard 0's recording (session 0), and under
/// `[cluster]` into the fleet's audit table too.
struct RecorderAudit {
    recorders: Vec<ShardRecorder>,
    fleet: Option<crate::cluster::Cluster>,
}

impl AuditSink for RecorderAudit {
    fn admin_action(&self, actor: &str, action: &str, object: &str, detail: &str) {
        if let Some(f) = &self.fleet {
            f.audit(actor, action, object, detail);
        }
        let Some(r) = self.recorders.first() else {
            return;
        };
        let rec = Record {
            session: 0,
            timestamp_ns: now_ns(),
            body: RecordBody::Admin(AdminAction {
                actor: actor.to_string(),
                action: action.to_string(),
                object: object.to_string(),
                detail: (!detail.is_empty()).then(|| detail.to_string()),
            }),
        };
        if let Err(e) = r.try_record(rec) {
            error!(error = %e, actor, action, object, "admin action could not be recorded");
        }
    }
}

/// Reload: validate the file, build the new snapshot, refuse changes that
/// need a restart, then swap it in for new sessions on every shard at once
/// (sessions keep the snapshot they started with).
struct ConfigReloader {
    path: PathBuf,
    control: crate::engine::Control,
    lock: Mutex<()>,
    /// The admin plane, whose `[admin]` settings a reload applies too.
    admin: OnceLock<Weak<AdminState>>,
}

impl Reloader for ConfigReloader {
    fn reload(&self) -> Result<String, String> {
        let _one_at_a_time = self
            .lock
            .lock()
            .map_err(|_| "reload in progress".to_string())?;
        let admin = self.admin.get().and_then(Weak::upgrade);
        reload(&self.path, &self.control, admin.as_deref())
    }
}

fn reload(
    path: &Path,
    control: &crate::engine::Control,
    admin: Option<&AdminState>,
) -> Result<String, String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    // Compare with what is in service: the start-up config, with the
    // `[admin]` table a previous reload applied.
    let mut old = (*control.shared().config).clone();
    if let Some(a) = admin {
        old.admin = a.config();
    }
    let why = needs_restart(&old, &new);
    if !why.is_empty() {
        return Err(format!(
            "{} changed: restart tollgate to apply; nothing was reloaded",
            why.join(", ")
        ));
    }
    let summary = format!(
        "{} targets, {} issuers",
        new.targets.len(),
        new.identity.issuers.len()
    );
    let admin_config = new.admin.clone();
    let snapshot = Snapshot::build(Arc::new(new)).map_err(|e| e.to_string())?;
    control.replace_snapshot(Arc::new(snapshot));
    if let Some(a) = admin {
        a.apply_config(admin_config)
            .map_err(|e| format!("[admin] not applied (the rest was): {e}"))?;
    }
    Ok(summary)
}

/// Changes a running engine cannot take: its listeners and shards are bound
/// at start, the recorder is opened once, the admin listener bound once.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut why = Vec::new();
    if old.engine != new.engine {
        why.push("[engine]".to_string());
    }
    if old.listeners != new.listeners {
        why.push("listen addresses or their targets".into());
    }
    let old_names: Vec<&str> = old.targets.iter().map(|t| t.name.as_str()).collect();
    let new_names: Vec<&str> = new.targets.iter().map(|t| t.name.as_str()).collect();
    if old_names != new_names {
        why.push("the list of targets (added, removed or reordered)".into());
    }
    // Every field of the recorder config is plain data (the fsync observer is
    // never set in a loaded file), so the Debug forms compare the settings.
    if old.cluster != new.cluster {
        why.push("[cluster]".into());
    }
    if format!("{:?}", old.recorder) != format!("{:?}", new.recorder) {
        why.push("[recorder]".into());
    }
    why.extend(
        old.admin
            .needs_restart(&new.admin)
            .into_iter()
            .map(String::from),
    );
    why
}

/// Open the durable store of API revocations and put what it holds in force
/// in the start-up snapshot, before any listener accepts.
fn open_revocation_store(
    config: &Config,
    snapshot: &Snapshot,
) -> Result<Option<RevocationStore>, crate::admin::store::StoreError> {
    let Some(dir) = state_dir(config) else {
        warn!(
            "no [admin] state_dir and no recorder: revocations through the admin API are refused"
        );
        return Ok(None);
    };
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let store = RevocationStore::open(&dir, now)?;
    let restored = DurableRevocations::restore(&store, snapshot.identity.revocations());
    info!(path = %store.path().display(), restored, "admin revocations restored");
    Ok(Some(store))
}
