//! The cluster agent: one thread, a tokio current-thread runtime, two
//! connections to the control database (one `LISTEN`s, one queries). It
//! heartbeats, writes this host's live sessions, applies what other hosts
//! decided (revocations, approval decisions, kill requests) on notification
//! and again every `reconcile` interval, writes the segment catalog the
//! uploader queues (`catalog.rs`), and answers the admin plane. When
//! the database is down or slow (a query past `query_timeout`) it says so in
//! the status, answers calls with "unavailable" at once, and reconnects
//! with backoff (100 ms doubling to 5 s), reconciling first thing.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio_postgres::{AsyncMessage, Client};
use tracing::{error, info, warn};

use super::rows::{self, APPROVAL_COLUMNS, REVOCATION_COLUMNS, SESSION_COLUMNS};
use super::schema::{self, SchemaError};
use super::tls::MakeRustls;
use super::{ClusterStatus, Decision, FleetDecideError, QUEUE, RemoteKill, Req, Shared, epoch_ms};
use crate::admin::Revocation as AdminRevocation;
use crate::approvals::{ApprovalState, Broker, DecideError, Reviewer};
use crate::config::cluster::ClusterConfig;
use crate::engine::{Control, KillReason, SessionId, SessionSelector};
use crate::identity;

/// Every host listens here (revocations).
pub const FLEET_CHANNEL: &str = "tollgate_fleet";
/// The database clock, in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
/// A password file larger than this is refused.
const MAX_PASSWORD_FILE: u64 = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Rows read at once: the control database is shared infrastructure, but
/// what it returns is still bounded before this host holds it.
const MAX_REVOCATIONS: usize = crate::admin::store::MAX_ENTRIES;
const MAX_LISTED: usize = 10_000;
/// How long a kill for another host waits for that host to confirm.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// This host's channel: kill requests and decisions for its approvals.
pub fn host_channel(host_id: &str) -> String {
    format!("tollgate_host_{host_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cluster: {0}")]
    Schema(#[from] SchemaError),
    #[error("cluster: {0}")]
    Other(String),
}

/// What start-up established before the engine accepts: the schema is
/// right, this host is registered, the fleet's revocations are read.
pub struct Prepared {
    pub(crate) shared: Arc<Shared>,
    rx: async_channel::Receiver<Req>,
    instance: String,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn db_err(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// A query with the configured deadline.
pub(super) async fn q<T>(
    d: Duration,
    f: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(d, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(db_err(&e)),
        Err(_) => Err(format!(
            "a control database query took longer than {}",
            humantime::format_duration(d)
        )),
    }
}

fn read_password(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, String> {
    let bad = |e: std::io::Error| format!("password_file {}: {e}", path.display());
    let len = std::fs::metadata(path).map_err(bad)?.len();
    if len > MAX_PASSWORD_FILE {
        return Err(format!(
            "password_file {} is {len} bytes, more than {MAX_PASSWORD_FILE}",
            path.display()
        ));
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(bad)?);
    let line = text.lines().next().unwrap_or("");
    Ok(zeroize::Zeroizing::new(line.to_string()))
}

struct Conn {
    client: Client,
    /// Notifications; closed when the connection ends.
    notices: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

async fn connect(cfg: &ClusterConfig, host_id: &str) -> Result<Conn, String> {
    let mut pg = cfg.pg_config().map_err(|e| e.to_string())?;
    if let Some(p) = &cfg.password_file {
        let pw = read_password(p)?;
        pg.password(pw.as_bytes());
    }
    pg.connect_timeout(cfg.query_timeout);
    pg.application_name(format!("tollgate {host_id}"));
    let tls = crate::identity::mtls::client_config(cfg.ca_file.as_deref(), None)
        .map_err(|e| format!("ca_file: {e}"))?;
    let (client, mut connection) = q(cfg.query_timeout * 2, pg.connect(MakeRustls(tls))).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    warn!(error = %db_err(&e), "control database connection lost");
                    return;
                }
                None => return,
            }
        }
    });
    Ok(Conn {
        client,
        notices: rx,
    })
}

/// Claim `host_id` for this instance: refused while another instance
/// holds it with a fresh heartbeat (two hosts with one id would eat each
/// other's registry rows).
async fn register(
    client: &Client,
    cfg: &ClusterConfig,
    host_id: &str,
    instance: &str,
) -> Result<bool, String> {
    let rows = q(
        cfg.query_timeout,
        client.query(
            "INSERT INTO tollgate_hosts (host_id, instance) VALUES ($1, $2)
             ON CONFLICT (host_id) DO UPDATE
               SET instance = EXCLUDED.instance, heartbeat_at = now(),
                   started_at = CASE WHEN tollgate_hosts.instance = EXCLUDED.instance
                                     THEN tollgate_hosts.started_at ELSE now() END
               WHERE tollgate_hosts.instance = EXCLUDED.instance
                  OR tollgate_hosts.heartbeat_at < now() - make_interval(secs => $3)
             RETURNING host_id",
            &[&host_id, &instance, &cfg.host_timeout.as_secs_f64()],
        ),
    )
    .await?;
    Ok(!rows.is_empty())
}

async fn load_revocations(
    client: &Client,
    cfg: &ClusterConfig,
) -> Result<Vec<AdminRevocation>, String> {
    let rows = q(
        cfg.query_timeout,
        client.query(
            &format!(
                "SELECT {REVOCATION_COLUMNS} FROM tollgate_revocations
                 WHERE lifted_ms IS NULL AND (until_ms IS NULL OR until_ms > {NOW_MS})
                 ORDER BY id LIMIT {MAX_REVOCATIONS}"
            ),
            &[],
        ),
    )
    .await?;
    rows.iter().map(rows::revocation).collect()
}

/// Start-up, before the engine accepts (fail closed: a host that cannot
/// read the fleet's revocations does not serve).
pub fn prepare(cfg: &ClusterConfig) -> Result<Prepared, PrepareError> {
    let host_id = cfg.host_id();
    let instance = format!("{:016x}", rand::random::<u64>());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PrepareError::Other(e.to_string()))?;
    let revocations = rt.block_on(async {
        let mut conn = connect(cfg, &host_id)
            .await
            .map_err(|e| PrepareError::Other(format!("control database: {e}")))?;
        if cfg.migrate_on_start {
            let (from, to) = schema::migrate(&mut conn.client).await?;
            if from != to {
                info!(from, to, "control database schema migrated");
            }
        } else {
            schema::check(&conn.client).await?;
        }
        if !register(&conn.client, cfg, &host_id, &instance)
            .await
            .map_err(PrepareError::Other)?
        {
            return Err(PrepareError::Other(format!(
                "host_id {host_id:?} is held by another running tollgate (fresh heartbeat): \
                 give each host its own [cluster] host_id"
            )));
        }
        // Rows an earlier run of this host left (it died without cleaning up).
        q(
            cfg.query_timeout,
            conn.client.execute(
                "DELETE FROM tollgate_sessions WHERE host_id = $1",
                &[&host_id],
            ),
        )
        .await
        .map_err(PrepareError::Other)?;
        load_revocations(&conn.client, cfg)
            .await
            .map_err(PrepareError::Other)
    })?;
    let (tx, rx) = async_channel::bounded(QUEUE);
    let shared = Arc::new(Shared {
        host_id: host_id.clone(),
        config: cfg.clone(),
        status: Mutex::new(ClusterStatus {
            host_id,
            connected: true,
            since_ms: epoch_ms(SystemTime::now()),
            last_error: None,
        }),
        revocations: Mutex::new(revocations),
        catalog: Mutex::new(super::catalog::CatalogPos::default()),
        tx,
        stopped: std::sync::atomic::AtomicBool::new(false),
    });
    Ok(Prepared {
        shared,
        rx,
        instance,
    })
}

pub(crate) fn spawn(p: Prepared, control: Control, broker: Broker) -> std::io::Result<()> {
    let applied = applied_map(
        &p.shared
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let agent = Agent {
        ctx: Arc::new(Ctx {
            shared: p.shared,
            instance: p.instance,
            control,
            broker,
        }),
        rx: p.rx,
        applied,
        synced: None,
    };
    std::thread::Builder::new()
        .name("tollgate-cluster".into())
        .spawn(move || {
            let shared = agent.ctx.shared.clone();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(agent.run()),
                Err(e) => error!(error = %e, "cluster agent cannot start its runtime"),
            }
            shared
                .stopped
                .store(true, std::sync::atomic::Ordering::Release);
        })?;
    Ok(())
}

type RevKey = (&'static str, String);

fn applied_map(list: &[AdminRevocation]) -> HashMap<RevKey, identity::Revocation> {
    list.iter()
        .map(|r| {
            (
                (r.kind.name(), r.value.clone()),
                crate::admin::durable::to_identity(r),
            )
        })
        .collect()
}

struct Ctx {
    shared: Arc<Shared>,
    instance: String,
    control: Control,
    broker: Broker,
}

impl Ctx {
    fn cfg(&self) -> &ClusterConfig {
        &self.shared.config
    }
    fn qt(&self) -> Duration {
        self.shared.config.query_timeout
    }
    fn host(&self) -> &str {
        &self.shared.host_id
    }

    fn set_status(&self, connected: bool, error: Option<String>) {
        let mut s = self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if s.connected != connected {
            s.since_ms = epoch_ms(SystemTime::now());
            if connected {
                info!("control database connected");
            } else {
                warn!(
                    error = error.as_deref().unwrap_or(""),
                    "control database unreachable: cluster degraded"
                );
            }
        }
        s.connected = connected;
        if error.is_some() || connected {
            s.last_error = error;
        }
    }
}

struct Agent {
    ctx: Arc<Ctx>,
    rx: async_channel::Receiver<Req>,
    /// The fleet revocations put in force in the identity layer.
    applied: HashMap<RevKey, identity::Revocation>,
    /// The session ids last written to the registry (`None`: unknown, write).
    synced: Option<HashSet<String>>,
}

impl Agent {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let err = match self.serve(&mut backoff).await {
                Ok(()) => return,
                Err(e) => e,
            };
            self.ctx.set_status(false, Some(err.clone()));
            self.synced = None;
            super::catalog::forget_position(&self.ctx.shared.catalog);
            let until = tokio::time::Instant::now() + backoff;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    r = self.rx.recv() => match r {
                        Ok(req) => refuse(req, &err),
                        Err(_) => return,
                    },
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Connect and serve until the connection breaks (`Err`) or the
    /// process stops (`Ok`).
    async fn serve(&mut self, backoff: &mut Duration) -> Result<(), String> {
        let ctx = self.ctx.clone();
        let cfg = ctx.cfg();
        let query = connect(cfg, ctx.host()).await?;
        let listen = connect(cfg, ctx.host()).await?;
        match tokio::time::timeout(ctx.qt(), schema::check(&query.client)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("the schema check timed out".into()),
        }
        q(
            ctx.qt(),
            listen.client.batch_execute(&format!(
                "LISTEN {FLEET_CHANNEL}; LISTEN \"{}\"",
                host_channel(ctx.host())
            )),
        )
        .await?;
        if !register(&query.client, cfg, ctx.host(), &ctx.instance).await? {
            return Err(format!(
                "host_id {:?} was taken by another tollgate while this one was away",
                ctx.host()
            ));
        }
        ctx.set_status(true, None);
        *backoff = BACKOFF_MIN;
        let client = Arc::new(query.client);
        let _listen_client = listen.client;
        let mut closed = query.notices;
        let mut notes = listen.notices;
        self.reconcile(&client).await?;
        let mut heartbeat = tokio::time::interval(cfg.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(cfg.reconcile);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await;
        loop {
            tokio::select! {
                n = notes.recv() => {
                    let Some((channel, payload)) = n else {
                        return Err("the LISTEN connection closed".into());
                    };
                    self.on_notice(&client, &channel, &payload).await?;
                }
                n = closed.recv() => {
                    if n.is_none() {
                        return Err("the query connection closed".into());
                    }
                }
                _ = heartbeat.tick() => self.heartbeat(&client).await?,
                _ = reconcile.tick() => self.reconcile(&client).await?,
                r = self.rx.recv() => match r {
                    Ok(req) => {
                        if let Err(e) = self.handle(&client, req).await {
                            if client.is_closed() {
                                return Err(e);
                            }
                            warn!(error = %e, "control database request failed");
                        }
                    }
                    Err(_) => {
                        // Stopping: this host's sessions have ended (drain).
                        let _ = q(
                            ctx.qt(),
                            client.execute("DELETE FROM tollgate_sessions WHERE host_id = $1", &[&ctx.host()]),
                        )
                        .await;
                        return Ok(());
                    }
                },
            }
        }
    }

    async fn on_notice(
        &mut self,
        client: &Arc<Client>,
        channel: &str,
        payload: &str,
    ) -> Result<(), String> {
        if channel == FLEET_CHANNEL {
            if payload == "revocations" {
                self.reload_revocations(client).await?;
            }
            return Ok(());
        }
        if let Some(id) = payload.strip_prefix("approval:") {
            if let Ok(id) = id.parse::<i64>() {
                self.apply_decisions(client, &[id]).await?;
            }
        } else if payload == "command" {
            self.run_commands(client).await?;
        }
        Ok(())
    }

    /// Re-read what notifications may have missed: revocations, decisions
    /// for requests waiting here (and requests the database lost), kill
    /// requests.
    async fn reconcile(&mut self, client: &Arc<Client>) -> Result<(), String> {
        self.reload_revocations(client).await?;
        let pending = self.ctx.broker.pending();
        if !pending.is_empty() {
            for v in &pending {
                insert_approval(&self.ctx, client, v).await?;
            }
            let ids: Vec<i64> = pending.iter().map(|v| i64_of(v.id)).collect();
            self.apply_decisions(client, &ids).await?;
        }
        self.run_commands(client).await?;
        self.load_grants(client).await?;
        super::catalog::load_position(&self.ctx.shared.catalog, client, self.ctx.qt()).await
    }

    /// Grants given on other hosts, so a subject approved with a grant is
    /// not asked again on this host either (within one `reconcile`).
    async fn load_grants(&self, client: &Client) -> Result<(), String> {
        let rows = q(
            self.ctx.qt(),
            client.query(
                &format!(
                    "SELECT id, requester, target, kind, decided_by, reason, grant_expires_ms
                     FROM tollgate_approvals
                     WHERE state = 'approved' AND grant_expires_ms > {NOW_MS} AND host_id <> $1
                     LIMIT {MAX_LISTED}"
                ),
                &[&self.ctx.host()],
            ),
        )
        .await?;
        for row in rows {
            let (Ok(id), Ok(subject), Ok(target), Ok(kind), Ok(by), Ok(reason), Ok(expires)) = (
                row.try_get::<_, i64>(0),
                row.try_get::<_, String>(1),
                row.try_get::<_, String>(2),
                row.try_get::<_, String>(3),
                row.try_get::<_, Option<String>>(4),
                row.try_get::<_, Option<String>>(5),
                row.try_get::<_, i64>(6),
            ) else {
                continue;
            };
            let kind = match kind.as_str() {
                "statement" => crate::approvals::ApprovalKind::Statement,
                "access" => crate::approvals::ApprovalKind::Access,
                _ => continue,
            };
            let (Ok(id), Ok(expires)) = (u64::try_from(id), u64::try_from(expires)) else {
                continue;
            };
            if self.ctx.broker.add_fleet_grant(
                id,
                &subject,
                &target,
                kind,
                by.as_deref().unwrap_or("?"),
                reason.as_deref().unwrap_or(""),
                expires,
            ) {
                info!(approval = id, subject, target, "fleet grant applied");
            }
        }
        Ok(())
    }

    async fn reload_revocations(&mut self, client: &Client) -> Result<(), String> {
        let list = load_revocations(client, self.ctx.cfg()).await?;
        let new = applied_map(&list);
        let store = self
            .ctx
            .control
            .shared()
            .current_snapshot()
            .identity
            .revocations()
            .clone();
        for (k, rev) in &new {
            if self.applied.get(k) != Some(rev) {
                info!(target_ = %rev.target, "fleet revocation applied");
                // Subscribers end the matching live sessions on every shard.
                store.revoke(rev.clone());
            }
        }
        for (k, rev) in &self.applied {
            if !new.contains_key(k) {
                info!(target_ = %rev.target, "fleet revocation lifted");
                store.unrevoke(&rev.target);
            }
        }
        self.applied = new;
        *self
            .ctx
            .shared
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = list;
        Ok(())
    }

    async fn apply_decisions(&self, client: &Client, ids: &[i64]) -> Result<(), String> {
        let rows = q(
            self.ctx.qt(),
            client.query(
                "SELECT id, state, decided_by, reason, grant_expires_ms FROM tollgate_approvals
                 WHERE id = ANY($1) AND host_id = $2 AND state IN ('approved', 'denied')",
                &[&ids, &self.ctx.host()],
            ),
        )
        .await?;
        for row in rows {
            let (Ok(id), Ok(state), Ok(by), Ok(reason), Ok(grant)) = (
                row.try_get::<_, i64>(0),
                row.try_get::<_, String>(1),
                row.try_get::<_, Option<String>>(2),
                row.try_get::<_, Option<String>>(3),
                row.try_get::<_, Option<i64>>(4),
            ) else {
                warn!("unreadable approval row in the control database");
                continue;
            };
            let Ok(id) = u64::try_from(id) else { continue };
            let grant = grant.and_then(|g| u64::try_from(g).ok());
            if self.ctx.broker.apply_decision(
                id,
                state == "approved",
                by.as_deref().unwrap_or("?"),
                reason.as_deref().unwrap_or(""),
                grant,
            ) {
                info!(approval = id, state, "fleet decision applied");
            }
        }
        Ok(())
    }

    async fn run_commands(&self, client: &Client) -> Result<(), String> {
        let rows = q(
            self.ctx.qt(),
            client.query(
                "SELECT id, kind, session_id FROM tollgate_commands
                 WHERE host_id = $1 AND done_at IS NULL ORDER BY id LIMIT 1000",
                &[&self.ctx.host()],
            ),
        )
        .await?;
        for row in rows {
            let (Ok(id), Ok(kind), Ok(session)) = (
                row.try_get::<_, i64>(0),
                row.try_get::<_, String>(1),
                row.try_get::<_, String>(2),
            ) else {
                continue;
            };
            let killed = match (kind.as_str(), session.parse::<SessionId>()) {
                ("kill", Ok(sid)) => {
                    let control = self.ctx.control.clone();
                    tokio::task::spawn_blocking(move || {
                        control.kill(SessionSelector::Id(sid), KillReason::Admin)
                    })
                    .await
                    .unwrap_or(0)
                }
                _ => 0,
            };
            info!(command = id, kind, session, killed, "fleet command done");
            q(
                self.ctx.qt(),
                client.execute(
                    "UPDATE tollgate_commands SET done_at = now(), result = $2 WHERE id = $1",
                    &[&id, &i64_of(killed as u64)],
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// Heartbeat, this host's sessions, and the sweep of dead hosts' rows.
    async fn heartbeat(&mut self, client: &Client) -> Result<(), String> {
        let ctx = self.ctx.clone();
        let n = q(
            ctx.qt(),
            client.execute(
                "UPDATE tollgate_hosts SET heartbeat_at = now() WHERE host_id = $1 AND instance = $2",
                &[&ctx.host(), &ctx.instance],
            ),
        )
        .await?;
        if n == 0 && !register(client, ctx.cfg(), ctx.host(), &ctx.instance).await? {
            return Err(format!(
                "host_id {:?} was taken by another tollgate",
                ctx.host()
            ));
        }
        let control = ctx.control.clone();
        let local = tokio::task::spawn_blocking(move || control.list_sessions())
            .await
            .unwrap_or_default();
        let ids: HashSet<String> = local.iter().map(|s| s.id.clone()).collect();
        if self.synced.as_ref() != Some(&ids) {
            let config = ctx.control.shared().current_snapshot();
            let protocol = |target: &str| {
                config
                    .config
                    .targets
                    .iter()
                    .find(|t| t.name == target)
                    .map_or_else(String::new, |t| t.protocol.to_string())
            };
            let id_list: Vec<&str> = local.iter().map(|s| s.id.as_str()).collect();
            let shards: Vec<i32> = local
                .iter()
                .map(|s| i32::try_from(s.shard).unwrap_or(-1))
                .collect();
            let subjects: Vec<Option<&str>> = local.iter().map(|s| s.subject.as_deref()).collect();
            let targets: Vec<&str> = local.iter().map(|s| s.target.as_str()).collect();
            let protocols: Vec<String> = local.iter().map(|s| protocol(&s.target)).collect();
            let clients: Vec<&str> = local.iter().map(|s| s.client.as_str()).collect();
            let started: Vec<i64> = local.iter().map(|s| i64_of(s.started_ms)).collect();
            q(
                ctx.qt(),
                client.execute(
                    "DELETE FROM tollgate_sessions WHERE host_id = $1 AND NOT (session_id = ANY($2))",
                    &[&ctx.host(), &id_list],
                ),
            )
            .await?;
            q(
                ctx.qt(),
                client.execute(
                    "INSERT INTO tollgate_sessions (host_id, session_id, shard, subject, target, protocol, client, started_ms)
                     SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[])
                     ON CONFLICT DO NOTHING",
                    &[&ctx.host(), &id_list, &shards, &subjects, &targets, &protocols, &clients, &started],
                ),
            )
            .await?;
            self.synced = Some(ids);
        }
        q(
            ctx.qt(),
            client.execute(
                "DELETE FROM tollgate_sessions WHERE host_id NOT IN
                   (SELECT host_id FROM tollgate_hosts WHERE heartbeat_at >= now() - make_interval(secs => $1))",
                &[&ctx.cfg().host_timeout.as_secs_f64()],
            ),
        )
        .await?;
        Ok(())
    }

    async fn handle(&mut self, client: &Arc<Client>, req: Req) -> Result<(), String> {
        let ctx = self.ctx.clone();
        let qt = ctx.qt();
        match req {
            Req::ApprovalOpened(v) => insert_approval(&ctx, client, &v).await?,
            Req::ApprovalClosed(id, state) => {
                q(
                    qt,
                    client.execute(
                        &format!(
                            "UPDATE tollgate_approvals SET state = $2, decided_ms = {NOW_MS}
                             WHERE id = $1 AND state = 'pending'"
                        ),
                        &[&i64_of(id), &rows::state_name(state)],
                    ),
                )
                .await?;
            }
            Req::Audit {
                actor,
                action,
                object,
                detail,
            } => {
                q(
                    qt,
                    client.execute(
                        "INSERT INTO tollgate_audit (host_id, actor, action, object, detail)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[&ctx.host(), &actor, &action, &object, &detail],
                    ),
                )
                .await?;
            }
            Req::Catalog(w) => super::catalog::write(&ctx.shared.catalog, client, qt, w).await?,
            Req::CatalogList(filter, reply) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let r = super::catalog::list(&client, ctx.qt(), &filter).await;
                    let _ = reply.try_send(r);
                });
            }
            Req::Revoke(r, reply) => {
                let res = self.revoke(client, &r).await;
                let _ = reply.try_send(res);
            }
            Req::Lift(id, by, reply) => {
                let res = self.lift(client, id, &by).await;
                let _ = reply.try_send(res);
            }
            // The rest answer from a task of their own, so a slow one (a
            // kill waiting for its host) holds up nothing else.
            Req::RemoteSessions(reply) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let _ = reply.try_send(remote_sessions(&ctx, &client).await);
                });
            }
            Req::Kill {
                host,
                session,
                by,
                reply,
            } => {
                let client = client.clone();
                tokio::spawn(async move {
                    let r = kill_remote(&ctx, &client, host.as_deref(), &session, &by).await;
                    let _ = reply.try_send(r);
                });
            }
            Req::Approvals(reply) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let _ = reply.try_send(pending_approvals(&ctx, &client).await);
                });
            }
            Req::Approval(id, reply) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let _ = reply.try_send(approval(&ctx, &client, id).await);
                });
            }
            Req::Decide(d, reply) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let r = match decide(&ctx, &client, &d).await {
                        Ok(r) => Ok(r),
                        Err(e) => Ok(Err(FleetDecideError::Unavailable(e))),
                    };
                    let _ = reply.try_send(r);
                });
            }
        }
        Ok(())
    }

    async fn revoke(
        &mut self,
        client: &Client,
        r: &AdminRevocation,
    ) -> Result<AdminRevocation, String> {
        let row = q(
            self.ctx.qt(),
            client.query_one(
                &format!(
                    "WITH r AS (
                       INSERT INTO tollgate_revocations (kind, value, reason, revoked_by, host_id, revoked_ms, until_ms)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)
                       ON CONFLICT (kind, value) WHERE lifted_ms IS NULL DO UPDATE
                         SET reason = EXCLUDED.reason, revoked_by = EXCLUDED.revoked_by,
                             host_id = EXCLUDED.host_id, revoked_ms = EXCLUDED.revoked_ms,
                             until_ms = EXCLUDED.until_ms
                       RETURNING {REVOCATION_COLUMNS})
                     SELECT r.*, pg_notify('{FLEET_CHANNEL}', 'revocations') FROM r"
                ),
                &[
                    &r.kind.name(),
                    &r.value,
                    &r.reason,
                    &r.revoked_by,
                    &self.ctx.host(),
                    &i64_of(r.revoked_ms.unwrap_or_else(|| epoch_ms(SystemTime::now()))),
                    &r.until_ms.map(i64_of),
                ],
            ),
        )
        .await?;
        let stored = rows::revocation(&row)?;
        // In force here before the reply (the others hear the NOTIFY).
        self.reload_revocations(client).await?;
        Ok(stored)
    }

    async fn lift(
        &mut self,
        client: &Client,
        id: u64,
        by: &str,
    ) -> Result<Option<AdminRevocation>, String> {
        let rows = q(
            self.ctx.qt(),
            client.query(
                &format!(
                    "WITH r AS (
                       UPDATE tollgate_revocations SET lifted_ms = {NOW_MS}, lifted_by = $2
                       WHERE id = $1 AND lifted_ms IS NULL AND (until_ms IS NULL OR until_ms > {NOW_MS})
                       RETURNING {REVOCATION_COLUMNS})
                     SELECT r.*, pg_notify('{FLEET_CHANNEL}', 'revocations') FROM r"
                ),
                &[&i64_of(id), &by],
            ),
        )
        .await?;
        let lifted = rows.first().map(rows::revocation).transpose()?;
        self.reload_revocations(client).await?;
        Ok(lifted)
    }
}

/// The answer to a request made while the database is unreachable.
fn refuse(req: Req, why: &str) {
    let e = || format!("control database unavailable: {why}");
    match req {
        // Re-inserted by the reconcile after reconnecting (while pending).
        Req::ApprovalOpened(_) => {}
        // A pending row past its deadline reads as timed out anyway.
        Req::ApprovalClosed(..) => {}
        Req::Audit {
            actor,
            action,
            object,
            ..
        } => warn!(
            actor,
            action,
            object,
            "admin action not written to the fleet audit (control database unavailable); it is in this host's recording"
        ),
        Req::Revoke(_, r) => {
            let _ = r.try_send(Err(e()));
        }
        Req::Lift(_, _, r) => {
            let _ = r.try_send(Err(e()));
        }
        Req::RemoteSessions(r) => {
            let _ = r.try_send(Err(e()));
        }
        Req::Kill { reply, .. } => {
            let _ = reply.try_send(Err(e()));
        }
        Req::Approvals(r) => {
            let _ = r.try_send(Err(e()));
        }
        Req::Approval(_, r) => {
            let _ = r.try_send(Err(e()));
        }
        Req::Decide(_, r) => {
            let _ = r.try_send(Ok(Err(FleetDecideError::Unavailable(why.to_string()))));
        }
        // Sent again from the bucket once the agent knows the catalog's
        // position again (a new epoch): nothing is lost.
        Req::Catalog(_) => {}
        Req::CatalogList(_, r) => {
            let _ = r.try_send(Err(e()));
        }
    }
}

async fn insert_approval(
    ctx: &Ctx,
    client: &Client,
    v: &crate::approvals::ApprovalView,
) -> Result<(), String> {
    q(
        ctx.qt(),
        client.execute(
            "INSERT INTO tollgate_approvals (id, host_id, kind, state, session_id, requester,
                requester_groups, target, statement, rule, reviewer_groups, created_ms, expires_ms)
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO NOTHING",
            &[
                &i64_of(v.id),
                &ctx.host(),
                &rows::approval_kind_name(v.kind),
                &v.session_id,
                &v.requester,
                &v.requester_groups,
                &v.target,
                &v.statement,
                &v.rule,
                &v.reviewer_groups,
                &i64_of(v.created_ms),
                &i64_of(v.expires_ms),
            ],
        ),
    )
    .await
    .map(|_| ())
}

async fn remote_sessions(ctx: &Ctx, client: &Client) -> Result<Vec<serde_json::Value>, String> {
    let rows = q(
        ctx.qt(),
        client.query(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM tollgate_sessions JOIN tollgate_hosts USING (host_id)
                 WHERE host_id <> $1 AND heartbeat_at >= now() - make_interval(secs => $2)
                 ORDER BY host_id, started_ms LIMIT {MAX_LISTED}"
            ),
            &[&ctx.host(), &ctx.cfg().host_timeout.as_secs_f64()],
        ),
    )
    .await?;
    rows.iter().map(rows::session).collect()
}

async fn kill_remote(
    ctx: &Ctx,
    client: &Client,
    host: Option<&str>,
    session: &str,
    by: &str,
) -> Result<RemoteKill, String> {
    let rows = q(
        ctx.qt(),
        client.query(
            "SELECT host_id FROM tollgate_sessions JOIN tollgate_hosts USING (host_id)
             WHERE session_id = $1 AND ($2::text IS NULL OR host_id = $2) AND host_id <> $3
               AND heartbeat_at >= now() - make_interval(secs => $4)",
            &[
                &session,
                &host,
                &ctx.host(),
                &ctx.cfg().host_timeout.as_secs_f64(),
            ],
        ),
    )
    .await?;
    let hosts: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    let owner = match hosts.as_slice() {
        [] => return Ok(RemoteKill::NotFound),
        [one] => one.clone(),
        _ => return Ok(RemoteKill::Ambiguous(hosts)),
    };
    let row = q(
        ctx.qt(),
        client.query_one(
            "WITH c AS (
               INSERT INTO tollgate_commands (host_id, kind, session_id, requested_by, requested_from)
               VALUES ($1, 'kill', $2, $3, $4) RETURNING id)
             SELECT c.id, pg_notify($5, 'command') FROM c",
            &[&owner, &session, &by, &ctx.host(), &host_channel(&owner)],
        ),
    )
    .await?;
    let id: i64 = row.try_get(0).map_err(|e| db_err(&e))?;
    let deadline = tokio::time::Instant::now() + KILL_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let done = q(
            ctx.qt(),
            client.query_opt(
                "SELECT result FROM tollgate_commands WHERE id = $1 AND done_at IS NOT NULL",
                &[&id],
            ),
        )
        .await?;
        if let Some(row) = done {
            let killed: Option<i64> = row.try_get(0).map_err(|e| db_err(&e))?;
            return Ok(RemoteKill::Done {
                host: owner,
                killed: killed.unwrap_or(0),
            });
        }
    }
    Ok(RemoteKill::Sent { host: owner })
}

async fn pending_approvals(
    ctx: &Ctx,
    client: &Client,
) -> Result<Vec<crate::approvals::ApprovalView>, String> {
    let rows = q(
        ctx.qt(),
        client.query(
            &format!(
                "SELECT {APPROVAL_COLUMNS}, {NOW_MS} FROM tollgate_approvals
                 WHERE state = 'pending' AND expires_ms > {NOW_MS} ORDER BY created_ms LIMIT {MAX_LISTED}"
            ),
            &[],
        ),
    )
    .await?;
    rows.iter()
        .map(|r| {
            let now: i64 = r.try_get(17).map_err(|e| db_err(&e))?;
            rows::approval(r, now).map(|(v, _)| v)
        })
        .collect()
}

async fn approval(
    ctx: &Ctx,
    client: &Client,
    id: u64,
) -> Result<Option<crate::approvals::ApprovalView>, String> {
    let row = q(
        ctx.qt(),
        client.query_opt(
            &format!("SELECT {APPROVAL_COLUMNS}, {NOW_MS} FROM tollgate_approvals WHERE id = $1"),
            &[&i64_of(id)],
        ),
    )
    .await?;
    row.map(|r| {
        let now: i64 = r.try_get(17).map_err(|e| db_err(&e))?;
        rows::approval(&r, now).map(|(v, _)| v)
    })
    .transpose()
}

/// Decide exactly once: the permission checks read the row (its requester
/// and reviewer groups never change), then one conditional UPDATE ...
/// WHERE state = 'pending' picks the single winner; a loser is told who won.
async fn decide(
    ctx: &Ctx,
    client: &Client,
    d: &Decision,
) -> Result<Result<crate::approvals::ApprovalView, FleetDecideError>, String> {
    let Some(view) = approval(ctx, client, d.id).await? else {
        return Ok(Err(FleetDecideError::Decide(DecideError::NotFound {
            id: d.id,
        })));
    };
    if view.state != ApprovalState::Pending {
        return Ok(Err(FleetDecideError::Lost {
            id: d.id,
            state: rows::state_name(view.state).to_string(),
            by: view.decided_by.unwrap_or_else(|| "tollgate".into()),
        }));
    }
    if view.requester == d.subject {
        return Ok(Err(FleetDecideError::Decide(DecideError::OwnRequest {
            id: d.id,
            subject: d.subject.clone(),
        })));
    }
    let reviewer = Reviewer {
        subject: &d.subject,
        groups: &d.groups,
        local_operator: d.local_operator,
    };
    if !Broker::may_review(&view, &reviewer) {
        return Ok(Err(FleetDecideError::Decide(DecideError::NotReviewer {
            id: d.id,
            subject: d.subject.clone(),
        })));
    }
    let (state, reason) = if d.approve {
        (
            "approved",
            d.reason.clone().unwrap_or_else(|| "approved".into()),
        )
    } else {
        (
            "denied",
            d.reason.clone().unwrap_or_else(|| "denied".into()),
        )
    };
    let grant_ms: Option<i64> = if d.approve {
        d.grant.map(|g| i64_of(epoch_ms(SystemTime::now() + g)))
    } else {
        None
    };
    let won = q(
        ctx.qt(),
        client.query_opt(
            &format!(
                "WITH u AS (
                   UPDATE tollgate_approvals
                   SET state = $2, decided_by = $3, reason = $4, decided_ms = {NOW_MS}, grant_expires_ms = $5
                   WHERE id = $1 AND state = 'pending' AND expires_ms > {NOW_MS}
                   RETURNING {APPROVAL_COLUMNS})
                 SELECT u.*, {NOW_MS}, pg_notify('tollgate_host_' || u.host_id, 'approval:' || u.id::text) FROM u"
            ),
            &[&i64_of(d.id), &state, &d.subject, &reason, &grant_ms],
        ),
    )
    .await?;
    match won {
        Some(row) => {
            let now: i64 = row.try_get(17).map_err(|e| db_err(&e))?;
            let (view, host) = rows::approval(&row, now)?;
            if host == ctx.host() {
                // The request waits here: no need to wait for the NOTIFY.
                ctx.broker.apply_decision(
                    view.id,
                    d.approve,
                    &d.subject,
                    &reason,
                    view.grant_expires_ms,
                );
            }
            Ok(Ok(view))
        }
        None => {
            let after = approval(ctx, client, d.id).await?;
            let (state, by) = after.map_or(("gone".to_string(), "?".to_string()), |v| {
                (
                    rows::state_name(v.state).to_string(),
                    v.decided_by.unwrap_or_else(|| "tollgate".into()),
                )
            });
            Ok(Err(FleetDecideError::Lost {
                id: d.id,
                state,
                by,
            }))
        }
    }
}

/// A query connection for the CLI (`tollgate cluster migrate`).
pub(super) async fn connect_client(cfg: &ClusterConfig) -> Result<Client, String> {
    connect(cfg, &cfg.host_id())
        .await
        .map(|c| c.client)
        .map_err(|e| format!("control database: {e}"))
}
