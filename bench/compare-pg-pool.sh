#!/usr/bin/env bash
# bench/compare-pg-pool.sh — a new connection per transaction (pgbench -C -S)
# and prepared statements over kept connections (pgbench -M prepared -S):
# direct vs pgbouncer (session / transaction mode) vs tollgate with
# [target.postgres.pool] (session / transaction mode) vs tollgate without a
# pool, in interleaved rounds (each round runs every relay once per
# workload, in a rotating order; only the relay under test is alive).
#
# A throwaway PostgreSQL 15 cluster (as the postgres user, temp dir, free
# port, SCRAM over TCP) gets `pgbench -i -s SCALE`; each run is
#   pgbench -n -C -S -c CLIENTS -j CLIENTS -T DURATION          (workload connect)
#   pgbench -n -M prepared -S -c CLIENTS -j CLIENTS -T DURATION (workload prepared)
# Relays: direct, pgbouncer (session), pgbouncer-tx (pool_mode =
# transaction; `max_prepared_statements = 200` where pgbouncer >= 1.21,
# older ones fail the prepared workload), tollgate-pool (session),
# tollgate-tx (mode = "transaction"), tollgate (no pool).
# (one thread per client: pgbench connects synchronously, so with fewer
# threads a client waiting for a pooled connection would hold up the ones
# whose goodbye frees it, against any session pool). The pools (pgbouncer's
# default_pool_size, tollgate's size) are POOL connections. tollgate runs
# with token auth, no rules, no masking and recording off (what a connection
# costs, not what inspection costs: compare-pg.sh measures that), SHARDS
# shards. A relay's CPU (utime+stime of its process) around each run gives
# its CPU µs per connection+transaction; the server's logins during the run
# (log_connections) show the reuse.
#
# Usage: bench/compare-pg-pool.sh [--rounds 3] [--duration 10] [--clients 8]
#            [--pool 8] [--scale 1] [--shards 1] [--relays direct,pgbouncer,tollgate-pool,tollgate]
#            [--workloads connect] [--results DIR] [--bin-dir DIR]
# --bin-dir: take DIR/tollgate instead of building the release binary.
# Every option also reads from the environment (ROUNDS, DURATION, ...).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
POOL=${POOL:-8}
SCALE=${SCALE:-1}
SHARDS=${SHARDS:-1}
RELAYS=${RELAYS:-direct,pgbouncer,tollgate-pool,tollgate}
WORKLOADS=${WORKLOADS:-connect}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${RESULTS:-$REPO/target/compare-pg-pool/$(date -u +%Y%m%dT%H%M%SZ)}
BIN_DIR=${BIN_DIR:-}
ARGS=("$@")

die() { echo "compare-pg-pool: $*" >&2; exit 1; }
log() { echo "compare-pg-pool: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --pool) POOL=$2; shift 2 ;;
        --scale) SCALE=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --workloads) WORKLOADS=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
IFS=',' read -r -a RELAY_LIST <<<"$RELAYS"
for r in "${RELAY_LIST[@]}"; do
    case "$r" in direct|pgbouncer|pgbouncer-tx|tollgate-pool|tollgate-tx|tollgate) ;; *) die "unknown relay '$r'" ;; esac
done
IFS=',' read -r -a WORKLOAD_LIST <<<"$WORKLOADS"
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in connect|prepared) ;; *) die "unknown workload '$w'" ;; esac
done
# pgbench's arguments for a workload.
workload_args() {
    case "$1" in
        connect) echo "-C -S" ;;
        prepared) echo "-M prepared -S" ;;
    esac
}
for v in ROUNDS DURATION CLIENTS POOL SCALE SHARDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer"
done
[ "$(id -u)" = 0 ] || die "run as root: the cluster and pgbouncer run as the postgres user"
[ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is not installed ($PG_BIN)"
for t in pgbench pgbouncer psql setpriv; do command -v "$t" >/dev/null || die "$t is required"; done

# shellcheck source=scripts/common.sh
source "$REPO/bench/scripts/common.sh"
DB_STOP_SIGNAL=INT
as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }

mkdir -p "$RESULTS/raw"
RESULTS=$(cd "$RESULTS" && pwd)
if [ -z "$BIN_DIR" ]; then
    log "building the release gateway"
    (cd "$REPO" && cargo build --release -p tollgate --bin tollgate) || die "cargo build failed"
    BIN_DIR=${CARGO_TARGET_DIR:-$REPO/target}/release
fi
mkdir -p "$RESULTS/bin"
cp "$BIN_DIR/tollgate" "$RESULTS/bin/" || die "no tollgate binary in $BIN_DIR"
TOLLGATE=$RESULTS/bin/tollgate
CLK_TCK=$(getconf CLK_TCK)
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 ${ARGS[*]}"
    echo "settings: rounds=$ROUNDS duration=${DURATION}s clients=$CLIENTS pool=$POOL scale=$SCALE shards=$SHARDS relays=$RELAYS workloads=$WORKLOADS"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) CPUs"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "postgres: $("$PG_BIN/postgres" --version); pgbouncer: $(pgbouncer --version | head -n 1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

# --- PostgreSQL ---------------------------------------------------------------
WORK=$(mktemp -d /tmp/compare-pg-pool.XXXXXX)
chmod 755 "$WORK"
PG_DIR=$WORK/pg
mkdir -p "$PG_DIR"
chown postgres:postgres "$PG_DIR"
PG_PORT=$(free_port)
ROLE=bench
DB=bench
PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
log "initdb (PostgreSQL on port $PG_PORT)"
as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$RESULTS/initdb.log" 2>&1 ||
    die "initdb failed (see $RESULTS/initdb.log)"
cat >"$PG_DIR/data/postgresql.auto.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_connections = on
password_encryption = 'scram-sha-256'
EOF
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$PG_DIR/data/pg_hba.conf"
chown postgres:postgres "$PG_DIR/data/postgresql.auto.conf" "$PG_DIR/data/pg_hba.conf"
PG_LOG=$RESULTS/postgres.log
setpriv --reuid=postgres --regid=postgres --clear-groups -- \
    "$PG_BIN/postgres" -D "$PG_DIR/data" >"$PG_LOG" 2>&1 &
DB_PID=$!
wait_port "$PG_PORT" "$DB_PID" "$PG_LOG"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"; }
for i in $(seq 100); do psql_admin -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql_admin -d postgres -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
psql_admin -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
pgbench -i -q -s "$SCALE" -h "$PG_DIR" -p "$PG_PORT" -U "$ROLE" "$DB" >"$RESULTS/pgbench-init.log" 2>&1 ||
    die "pgbench -i failed (see $RESULTS/pgbench-init.log)"
logins() { grep -c "connection authorized: user=$ROLE" "$PG_LOG" || true; }

# --- relays ---------------------------------------------------------------------
TG_PORT=$(free_port)
PGB_PORT=$(free_port)
"$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "token keygen failed"
TOKEN=$("$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub bench \
    --groups bench --aud tollgate --iss https://bench.local --ttl 55m) || die "token mint failed"
printf '%s\n' "$PASSWORD" >"$WORK/upstream.pw"
chmod 600 "$WORK/upstream.pw"
printf '[]\n' >"$WORK/revocations.json"
tollgate_config() {
    cat <<EOF
[engine]
shards = $SHARDS
log_format = "json"

[recorder]
enabled = false

[identity]
revocation_file = "$WORK/revocations.json"

[[identity.issuer]]
name = "bench"
issuer = "https://bench.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

[[target]]
name = "$DB"
protocol = "postgres"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$PG_PORT"

[target.credential]
user = "$ROLE"
password_file = "$WORK/upstream.pw"

[target.access]
groups = ["bench"]
EOF
    if [ "$1" = pool ]; then printf '\n[target.postgres.pool]\nsize = %s\n' "$POOL"; fi
    if [ "$1" = tx ]; then
        printf '\n[target.postgres.pool]\nmode = "transaction"\nsize = %s\ncheckout_timeout = "30s"\n' "$POOL"
    fi
}
tollgate_config pool >"$RESULTS/tollgate-pool.toml"
tollgate_config tx >"$RESULTS/tollgate-tx.toml"
tollgate_config none >"$RESULTS/tollgate.toml"
for v in tollgate-pool tollgate-tx tollgate; do
    "$TOLLGATE" check --config "$RESULTS/$v.toml" >/dev/null || die "tollgate check rejected $v.toml"
done
mkdir -p "$WORK/pgbouncer"
printf '"%s" "%s"\n' "$ROLE" "$PASSWORD" >"$WORK/pgbouncer/userlist.txt"
cat >"$WORK/pgbouncer/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/pgbouncer/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = $POOL
server_reset_query = DISCARD ALL
server_tls_sslmode = disable
client_tls_sslmode = disable
logfile = $WORK/pgbouncer/pgbouncer.log
ignore_startup_parameters = extra_float_digits
EOF
# Transaction mode: the same, another port; protocol-level prepared
# statements where this pgbouncer has them (>= 1.21).
PGB_TX_PORT=$(free_port)
sed -e "s/^listen_port = .*/listen_port = $PGB_TX_PORT/" -e 's/^pool_mode = .*/pool_mode = transaction/' \
    -e "s|^logfile = .*|logfile = $WORK/pgbouncer/pgbouncer-tx.log|" \
    "$WORK/pgbouncer/pgbouncer.ini" >"$WORK/pgbouncer/pgbouncer-tx.ini"
if pgbouncer --version | head -n 1 | awk '{ split($2, v, "."); exit !(v[1] > 1 || v[2] >= 21) }'; then
    echo "max_prepared_statements = 200" >>"$WORK/pgbouncer/pgbouncer-tx.ini"
fi
cp "$WORK/pgbouncer/pgbouncer.ini" "$WORK/pgbouncer/pgbouncer-tx.ini" "$RESULTS/"
chown -R postgres:postgres "$WORK/pgbouncer"
chmod 600 "$WORK/pgbouncer/userlist.txt"

# start RELAY: sets RELAY_PID (empty for direct), PORT and PW.
start() {
    RELAY_PID=
    case "$1" in
        direct) PORT=$PG_PORT; PW=$PASSWORD ;;
        pgbouncer)
            # setpriv itself, not a function's subshell: $! must be the
            # process that becomes pgbouncer, whose CPU is read.
            setpriv --reuid=postgres --regid=postgres --clear-groups -- \
                pgbouncer "$WORK/pgbouncer/pgbouncer.ini" >"$RESULTS/raw/pgbouncer.out" 2>&1 &
            RELAY_PID=$!; PORT=$PGB_PORT; PW=$PASSWORD ;;
        pgbouncer-tx)
            setpriv --reuid=postgres --regid=postgres --clear-groups -- \
                pgbouncer "$WORK/pgbouncer/pgbouncer-tx.ini" >"$RESULTS/raw/pgbouncer-tx.out" 2>&1 &
            RELAY_PID=$!; PORT=$PGB_TX_PORT; PW=$PASSWORD ;;
        tollgate-pool|tollgate-tx|tollgate)
            "$TOLLGATE" run --config "$RESULTS/$1.toml" >"$RESULTS/raw/$1.log" 2>&1 &
            RELAY_PID=$!; PORT=$TG_PORT; PW=$TOKEN ;;
    esac
    if [ -n "$RELAY_PID" ]; then
        PIDS+=("$RELAY_PID")
        wait_port "$PORT" "$RELAY_PID" "$RESULTS/raw/$1.log"
    fi
}

TSV=$RESULTS/runs.tsv
printf 'round\tworkload\trelay\ttps\tcpu_us_per_tx\tserver_logins\tload1\n' >"$TSV"
FAILED=0
for round in $(seq "$ROUNDS"); do
  for workload in "${WORKLOAD_LIST[@]}"; do
    # shellcheck disable=SC2207
    WARGS=($(workload_args "$workload"))
    n=${#RELAY_LIST[@]}
    for i in $(seq 0 $((n - 1))); do
        relay=${RELAY_LIST[$(((i + round - 1) % n))]}
        start "$relay"
        # Warm-up: the token cache, the pools, the server's caches.
        PGPASSWORD=$PW pgbench -n "${WARGS[@]}" -c "$CLIENTS" -j "$CLIENTS" -T 2 -h 127.0.0.1 -p "$PORT" \
            -U "$ROLE" "$DB" >/dev/null 2>&1 || true
        before_cpu=0
        [ -n "$RELAY_PID" ] && before_cpu=$(cpu_ticks "$RELAY_PID")
        before_logins=$(logins)
        out=$RESULTS/raw/round$round-$workload-$relay.txt
        if ! PGPASSWORD=$PW PGSSLMODE=disable pgbench -n "${WARGS[@]}" -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
            -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$DB" >"$out" 2>&1; then
            log "round $round $workload $relay failed:"; tail -n 5 "$out" >&2; FAILED=1
        fi
        tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n 1)
        txs=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
        cpu=-
        if [ -n "$RELAY_PID" ] && [ -n "$txs" ] && [ "$txs" -gt 0 ]; then
            after=$(cpu_ticks "$RELAY_PID")
            cpu=$(awk -v a="$after" -v b="$before_cpu" -v t="$txs" -v hz="$CLK_TCK" \
                'BEGIN { printf "%.1f", (a - b) / hz * 1e6 / t }')
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$workload" "$relay" "${tps:-0}" "$cpu" \
            "$(($(logins) - before_logins))" "$(cut -d' ' -f1 /proc/loadavg)" >>"$TSV"
        log "round $round $workload $relay: tps ${tps:-0}, cpu µs/tx $cpu"
        [ -n "$RELAY_PID" ] && stop_pid "$RELAY_PID"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"

# --- summary: medians per relay ----------------------------------------------------
{
    echo "| workload | relay | TPS (median run) | relay CPU µs per tx (same run) | server logins (same run) | TPS of each round |"
    echo "|---|---|---:|---:|---:|---|"
    for workload in "${WORKLOAD_LIST[@]}"; do
    for relay in "${RELAY_LIST[@]}"; do
        awk -F'\t' -v r="$relay" -v w="$workload" 'NR > 1 && $3 == r && $2 == w { print $4, $5, $6 }' "$TSV" | sort -n |
            awk -v r="$relay" -v w="$workload" '{ tps[NR] = $1; cpu[NR] = $2; lg[NR] = $3; all = all (all ? ", " : "") $1 }
                END { m = int((NR + 1) / 2); printf "| %s | %s | %s | %s | %s | %s |\n", w, r, tps[m], cpu[m], lg[m], all }'
    done
    done
} | tee "$RESULTS/summary.md"
cat "$RESULTS/machine.txt"
log "results in $RESULTS"
exit "$FAILED"
