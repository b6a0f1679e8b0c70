//! The control database's schema: versioned migrations compiled into the
//! binary, applied in order under an advisory lock (two hosts starting at
//! once do not race), each recorded in `tollgate_schema_version`. A database
//! whose version is newer than this binary knows is refused: an older
//! tollgate writing rows a newer one reads differently would corrupt the
//! fleet's state.

use tokio_postgres::Client;

/// The schema version this binary reads and writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Arbitrary, fixed: the advisory lock migrations hold.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465; // "tollgate"

/// Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: hosts and their heartbeats, the live-session registry, revocations,
    // approvals (with grants), commands for another host, the admin audit.
    r#"
CREATE TABLE tollgate_hosts (
    host_id      text PRIMARY KEY,
    instance     text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tollgate_sessions (
    host_id    text NOT NULL,
    session_id text NOT NULL,
    shard      integer NOT NULL,
    subject    text,
    target     text NOT NULL,
    protocol   text NOT NULL,
    client     text NOT NULL,
    started_ms bigint NOT NULL,
    PRIMARY KEY (host_id, session_id)
);
CREATE TABLE tollgate_revocations (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('subject', 'token_id', 'issuer')),
    value      text NOT NULL,
    reason     text NOT NULL,
    revoked_by text NOT NULL,
    host_id    text NOT NULL,
    revoked_ms bigint NOT NULL,
    until_ms   bigint,
    lifted_ms  bigint,
    lifted_by  text
);
CREATE UNIQUE INDEX tollgate_revocations_in_force
    ON tollgate_revocations (kind, value) WHERE lifted_ms IS NULL;
CREATE TABLE tollgate_approvals (
    id               bigint PRIMARY KEY,
    host_id          text NOT NULL,
    kind             text NOT NULL,
    state            text NOT NULL,
    session_id       text NOT NULL,
    requester        text NOT NULL,
    requester_groups text[] NOT NULL,
    target           text NOT NULL,
    statement        text NOT NULL,
    rule             text NOT NULL,
    reviewer_groups  text[] NOT NULL,
    created_ms       bigint NOT NULL,
    expires_ms       bigint NOT NULL,
    decided_by       text,
    reason           text,
    decided_ms       bigint,
    grant_expires_ms bigint
);
CREATE INDEX tollgate_approvals_pending ON tollgate_approvals (state, expires_ms);
CREATE TABLE tollgate_commands (
    id             bigserial PRIMARY KEY,
    host_id        text NOT NULL,
    kind           text NOT NULL,
    session_id     text NOT NULL,
    requested_by   text NOT NULL,
    requested_from text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    done_at        timestamptz,
    result         bigint
);
CREATE INDEX tollgate_commands_open ON tollgate_commands (host_id) WHERE done_at IS NULL;
CREATE TABLE tollgate_audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    host_id text NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    object  text NOT NULL,
    detail  text NOT NULL
);
"#,
    // 2: the catalog of uploaded recording segments (an index of the signed
    // manifests in the bucket, which stay the source of truth): each
    // confirmed manifest version, each segment it lists (one row per host
    // and object key: a version sent twice writes nothing twice), and per
    // host the newest version up to which the catalog has no gap.
    r#"
CREATE TABLE tollgate_catalog_manifests (
    host_id      text NOT NULL,
    version      bigint NOT NULL CHECK (version > 0),
    bucket       text NOT NULL,
    manifest_key text NOT NULL,
    sha256       text NOT NULL,
    segments     integer NOT NULL,
    bytes        bigint NOT NULL,
    uploaded_ms  bigint NOT NULL,
    cataloged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, version)
);
CREATE TABLE tollgate_catalog_hosts (
    host_id          text PRIMARY KEY,
    complete_through bigint NOT NULL DEFAULT 0
);
CREATE TABLE tollgate_segments (
    host_id          text NOT NULL,
    object_key       text NOT NULL,
    bucket           text NOT NULL,
    shard            integer NOT NULL,
    base_seq         bigint NOT NULL,
    next_seq         bigint NOT NULL,
    size             bigint NOT NULL,
    sha256           text NOT NULL,
    manifest_version bigint NOT NULL,
    opened_ms        bigint,
    sealed_ms        bigint,
    uploaded_ms      bigint NOT NULL,
    local_deleted_ms bigint,
    cataloged_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, object_key)
);
CREATE INDEX tollgate_segments_newest ON tollgate_segments (host_id, uploaded_ms DESC);
CREATE INDEX tollgate_segments_since ON tollgate_segments (uploaded_ms DESC);
"#,
];

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the control database's schema is version {found}, newer than this tollgate knows \
         ({SCHEMA_VERSION}): upgrade tollgate on this host (nothing was changed)"
    )]
    Newer { found: i32 },
    #[error(
        "the control database's schema is version {found}, older than {SCHEMA_VERSION}: run `tollgate cluster migrate`"
    )]
    Older { found: i32 },
    #[error("control database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// The version recorded in the database (0: no schema yet).
pub async fn current_version(client: &Client) -> Result<i32, SchemaError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('tollgate_schema_version') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM tollgate_schema_version", &[])
        .await?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Bring the schema to [`SCHEMA_VERSION`]; returns (from, to). Idempotent.
pub async fn migrate(client: &mut Client) -> Result<(i32, i32), SchemaError> {
    let tx = client.transaction().await?;
    // Held until commit: a second host migrating waits, then finds it done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tollgate_schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let from: Option<i32> = tx
        .query_one("SELECT max(version) FROM tollgate_schema_version", &[])
        .await?
        .get(0);
    let from = from.unwrap_or(0);
    if from > SCHEMA_VERSION {
        return Err(SchemaError::Newer { found: from });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO tollgate_schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok((from, SCHEMA_VERSION))
}

/// Refuse to run against a schema this binary does not read.
pub async fn check(client: &Client) -> Result<(), SchemaError> {
    match current_version(client).await? {
        v if v == SCHEMA_VERSION => Ok(()),
        v if v > SCHEMA_VERSION => Err(SchemaError::Newer { found: v }),
        v => Err(SchemaError::Older { found: v }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_migration_per_version() {
        assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    }
}
