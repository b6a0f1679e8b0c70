#!/usr/bin/env bash
# bench/compare-pg.sh — PostgreSQL comparison with pgbench: direct vs tollgate
# vs pgbouncer (session mode) vs haproxy (TCP mode).
#
# It starts a throwaway PostgreSQL 15 cluster (as the postgres user, in a temp
# dir, on a free port, SCRAM over TCP), loads `pgbench -i -s SCALE`, and then,
# in interleaved rounds (each round runs every relay once, in a rotating order;
# only the relay under test is alive), measures:
#   tps:     pgbench -n -S -c CLIENTS -j JOBS -T DURATION -M MODE, per MODE
#   latency: pgbench -n -S -c 1 -j 1 -T LAT_DURATION -M simple --log, per-
#            transaction latencies -> p50/p99 (and the difference to direct)
#   plots:   tollgate-load pg point-select -c CLIENTS for LAT_DURATION, per
#            relay and round (JSON in load/); the last round's runs are drawn
#            into report.html and report.svg (latency by percentile and
#            throughput over time, one line per relay). --no-plots skips it.
# Every client goes over TCP on 127.0.0.1 with TLS off, SCRAM to PostgreSQL.
# tollgate runs with token auth, command rules and masking rules (which no
# pgbench statement triggers, but every statement is classified and every row
# goes through the detectors) and recording on; the variants tollgate-norec
# (recording off), tollgate-bare (no rules, no masking, no recording) and
# tollgate-strict (recording with durability = "before_forward": every frame
# waits for its record's fsync) can be added to --relays to see what each
# part costs. tollgate-base runs the tollgate binary of --baseline-bin DIR
# (another build, e.g. the commit before a change) with the same config as
# tollgate (its own recording dir): before and after measured in one run;
# tollgate-base-norec, -bare and -strict are the baseline's variants.
#
# Placement (--pin none, default): the kernel places pgbench, PostgreSQL and
# the relay on every CPU, so the relay's CPU comes out of what the database
# and the client could have used: the ratio to direct prices the relay's
# whole cost, as in the measurements quoted in the issue (2 cores: there is
# no core to spare for a dedicated gateway). --pin split runs the relay alone
# on RELAY_CPU, pgbench and PostgreSQL on LOAD_CPU (direct then uses one
# core, and every relay gets one of its own, as on a dedicated gateway host).
# tollgate runs SHARDS shards (default 1: pgbouncer and haproxy nbthread 1 are
# single-threaded too); its shard thread pins itself to the first allowed CPU.
# A relay's CPU time (utime+stime of the process, /proc/PID/stat) around each
# tps run gives its CPU µs per transaction (it includes the 16 logins).
#
# Usage: bench/compare-pg.sh [--rounds 3] [--relays direct,tollgate,pgbouncer,haproxy]
#            [--modes simple,extended] [--duration 15] [--lat-duration 10]
#            [--clients 16] [--jobs 2] [--scale 10] [--pin none|split]
#            [--load-cpu 0] [--relay-cpu 1] [--shards 1] [--warmup 2] [--nice 0] [--perf]
#            [--results DIR] [--bin-dir DIR] [--baseline-bin DIR] [--no-build] [--no-latency] [--no-plots]
# Relays: direct tollgate tollgate-norec tollgate-bare tollgate-strict pgbouncer haproxy,
#         tollgate-base tollgate-base-norec tollgate-base-bare tollgate-base-strict.
# Modes: simple extended prepared (pgbench -M). Durations in seconds.
# --bin-dir takes the tollgate (and tollgate-load) binaries from DIR instead of building them.
# --baseline-bin DIR: DIR/tollgate is the binary of the tollgate-base* relays (never built here).
# Every option also reads from the environment (ROUNDS, RELAYS, MODES, ...).
# Raw pgbench output, per-round TSV and the configs go to the results dir;
# the Markdown table of medians is printed and saved as summary.md.
# Exit status: 0 when every run succeeded, 1 otherwise (a failed run is
# reported with its pgbench error and the gateway's log, and the others go on).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
RELAYS=${RELAYS:-direct,tollgate,pgbouncer,haproxy}
MODES=${MODES:-simple,extended}
DURATION=${DURATION:-15}
LAT_DURATION=${LAT_DURATION:-10}
CLIENTS=${CLIENTS:-16}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
PIN=${PIN:-none}
LOAD_CPU=${LOAD_CPU:-0}
RELAY_CPU=${RELAY_CPU:-1}
SHARDS=${SHARDS:-1}
# An unmeasured run before the measured ones after each relay start: the
# gateway's token cache, PostgreSQL's buffers and plan caches are warm.
WARMUP=${WARMUP:-2}
# The nice value for everything the benchmark starts (cluster, relays,
# pgbench): on a shared machine, -10 keeps other people's builds from taking
# the relay's CPU mid-run (they still get what is left).
NICE=${NICE:-0}
# --perf: profile tollgate (perf record -g, cpu-clock) during its tps runs;
# the profile's overhead lands in those runs' numbers, so use a separate run.
PERF=${PERF:-0}
BUILD=${BUILD:-1}
LATENCY=${LATENCY:-1}
PLOTS=${PLOTS:-1}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/bench/scripts
RESULTS=${RESULTS:-$REPO/target/compare-pg/$(date -u +%Y%m%dT%H%M%SZ)}
ARGS=("$@")

die() { echo "compare-pg: $*" >&2; exit 1; }
log() { echo "compare-pg: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --lat-duration) LAT_DURATION=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --scale) SCALE=$2; shift 2 ;;
        --pin) PIN=$2; shift 2 ;;
        --load-cpu) LOAD_CPU=$2; shift 2 ;;
        --relay-cpu) RELAY_CPU=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --perf) PERF=1; shift ;;
        --results) RESULTS=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        --baseline-bin) BASE_BIN_DIR=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-latency) LATENCY=0; shift ;;
        --no-plots) PLOTS=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

IFS=',' read -r -a RELAY_LIST <<<"$RELAYS"
IFS=',' read -r -a MODE_LIST <<<"$MODES"
[ "${#RELAY_LIST[@]}" -gt 0 ] || die "no relays given"
for r in "${RELAY_LIST[@]}"; do
    case "$r" in direct|tollgate|tollgate-norec|tollgate-bare|tollgate-strict|pgbouncer|haproxy) ;;
        tollgate-base|tollgate-base-norec|tollgate-base-bare|tollgate-base-strict) ;;
        *) die "unknown relay '$r'" ;; esac
done
for m in "${MODE_LIST[@]}"; do
    case "$m" in simple|extended|prepared) ;; *) die "unknown mode '$m'" ;; esac
done
for v in ROUNDS DURATION LAT_DURATION CLIENTS JOBS SCALE SHARDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$NICE" =~ ^-?[0-9]+$ ]] && [ "$NICE" -ge -20 ] && [ "$NICE" -le 19 ] || die "--nice must be -20..19"
case "$PIN" in
    split) [ "$LOAD_CPU" != "$RELAY_CPU" ] || die "--load-cpu and --relay-cpu must differ" ;;
    none) ;;
    *) die "--pin is split or none" ;;
esac
has_relay() { [[ ",$RELAYS," == *",$1,"* ]]; }
has_tollgate() { [[ ",$RELAYS," == *",tollgate"* ]]; }
has_base() { [[ ",$RELAYS," == *",tollgate-base"* ]]; }
BASE_BIN_DIR=${BASE_BIN_DIR:-}
if has_base; then
    [ -n "$BASE_BIN_DIR" ] || die "the tollgate-base relays need --baseline-bin DIR"
    [ -x "$BASE_BIN_DIR/tollgate" ] || die "no tollgate binary in $BASE_BIN_DIR"
fi
[ "$(id -u)" = 0 ] || die "run as root: the cluster and pgbouncer run as the postgres user"

# --- processes we start (all stopped on exit), ports, CPU counters -----------
# shellcheck source=scripts/common.sh
source "$SCRIPTS/common.sh"

# The CPU sets: LOAD_PIN for pgbench and PostgreSQL, RELAY_PIN for the relay.
if [ "$PIN" = split ]; then
    LOAD_PIN=(taskset -c "$LOAD_CPU")
    RELAY_PIN=(taskset -c "$RELAY_CPU")
else
    LOAD_PIN=()
    RELAY_PIN=()
fi
# as_postgres CMD...: exec CMD as the postgres user (no fork: $! is CMD).
as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }

# --- dependencies --------------------------------------------------------------
need=()
[ -x "$PG_BIN/initdb" ] || need+=(postgresql-15)
command -v pgbench >/dev/null || need+=(postgresql-client-15)
has_relay pgbouncer && ! command -v pgbouncer >/dev/null && need+=(pgbouncer)
has_relay haproxy && ! command -v haproxy >/dev/null && need+=(haproxy)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]} (Debian packages)"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        die "apt-get install ${need[*]} failed"
    # The packages start their own services where systemd runs; ours are separate.
fi
if [ "$PERF" = 1 ]; then command -v perf >/dev/null || die "--perf needs perf (linux-perf)"; fi
for t in taskset setpriv getconf; do command -v "$t" >/dev/null || die "$t is required"; done
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql-15 package creates it)"
CLK_TCK=$(getconf CLK_TCK)
CPUS=$(nproc --all)
[ "$LOAD_CPU" -lt "$CPUS" ] && [ "$RELAY_CPU" -lt "$CPUS" ] || die "CPU ids must be below $CPUS"

mkdir -p "$RESULTS/raw" "$RESULTS/load"
RESULTS=$(cd "$RESULTS" && pwd)
if has_tollgate || [ "$PLOTS" = 1 ]; then
    TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
    BIN_DIR=${BIN_DIR:-$TARGET_DIR/release}
    if [ "$BUILD" = 1 ]; then
        log "building the release gateway and load tool"
        (cd "$REPO" && cargo build --release -p tollgate -p tollgate-bench --bin tollgate --bin tollgate-load) ||
            die "cargo build failed"
    fi
    # A copy kept with the results: it is what was measured, and a later build
    # into the same target directory cannot swap it mid-run.
    mkdir -p "$RESULTS/bin"
    if has_tollgate; then
        cp "$BIN_DIR/tollgate" "$RESULTS/bin/" || die "no tollgate binary in $BIN_DIR"
        TOLLGATE=$RESULTS/bin/tollgate
    fi
    if has_base; then
        cp "$BASE_BIN_DIR/tollgate" "$RESULTS/bin/tollgate-base" || die "cannot copy $BASE_BIN_DIR/tollgate"
        BASE_TOLLGATE=$RESULTS/bin/tollgate-base
    fi
    if [ "$PLOTS" = 1 ]; then
        cp "$BIN_DIR/tollgate-load" "$RESULTS/bin/" || die "no tollgate-load binary in $BIN_DIR (or --no-plots)"
        LOAD_TOOL=$RESULTS/bin/tollgate-load
    fi
fi

# --- the machine, for the record -------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 ${ARGS[*]}"
    echo "settings: rounds=$ROUNDS relays=$RELAYS modes=$MODES duration=${DURATION}s lat_duration=${LAT_DURATION}s clients=$CLIENTS jobs=$JOBS scale=$SCALE pin=$PIN load_cpu=$LOAD_CPU relay_cpu=$RELAY_CPU shards=$SHARDS warmup=${WARMUP}s nice=$NICE"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $CPUS CPUs"
    echo "kernel: $(uname -sr)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if has_base; then
        echo "tollgate-base: $BASE_BIN_DIR/tollgate (sha256 $(sha256sum "$BASE_TOLLGATE" | cut -c1-16)…)"
    fi
    echo "postgres: $("$PG_BIN/postgres" --version)"
    echo "pgbench: $(pgbench --version)"
    has_relay pgbouncer && echo "pgbouncer: $(pgbouncer --version | head -n 1)"
    has_relay haproxy && echo "haproxy: $(haproxy -v | head -n 1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

if [ "$NICE" != 0 ]; then renice -n "$NICE" -p $$ >/dev/null || die "renice $NICE failed"; fi

# --- PostgreSQL ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/compare-pg.XXXXXX)
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
password_encryption = 'scram-sha-256'
EOF
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$PG_DIR/data/pg_hba.conf"
chown postgres:postgres "$PG_DIR/data/postgresql.auto.conf" "$PG_DIR/data/pg_hba.conf"
"${LOAD_PIN[@]}" setpriv --reuid=postgres --regid=postgres --clear-groups -- \
    "$PG_BIN/postgres" -D "$PG_DIR/data" >"$RESULTS/postgres.log" 2>&1 &
PG_PID=$!
DB_PID=$PG_PID DB_STOP_SIGNAL=INT
wait_port "$PG_PORT" "$PG_PID" "$RESULTS/postgres.log"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres "$@"; }
for i in $(seq 100); do psql_admin -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql_admin -d postgres -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >/dev/null
psql_admin -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
log "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -h "$PG_DIR" -p "$PG_PORT" -U "$ROLE" "$DB" >"$RESULTS/pgbench-init.log" 2>&1 ||
    die "pgbench -i failed (see $RESULTS/pgbench-init.log)"

# --- relay configs -------------------------------------------------------------------
TG_PORT=$(free_port)
TG_ADMIN_PORT=$(free_port)
PGB_PORT=$(free_port)
HAP_PORT=$(free_port)
CONF=$RESULTS/config
mkdir -p "$CONF"

TOKEN=
if has_tollgate; then
    "$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "tollgate token keygen failed"
    TOKEN=$("$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub bench \
        --groups bench --aud tollgate --iss https://bench.local --ttl 1h) || die "tollgate token mint failed"
    printf '%s\n' "$PASSWORD" >"$WORK/upstream.pw"
    chmod 600 "$WORK/upstream.pw"
    printf '[]\n' >"$WORK/revocations.json"
    # tollgate_config VARIANT: the gateway's config; full = rules + masking + recording.
    tollgate_config() {
        # kind: full, norec, bare or strict; a baseline variant (base, base-bare, ...)
        # is the same config with its own recording directory.
        local variant=$1 kind=${1#base}
        kind=${kind#-}
        kind=${kind:-full}
        cat <<EOF
[engine]
shards = $SHARDS
log_format = "json"

[admin]
listen = "127.0.0.1:$TG_ADMIN_PORT"

[identity]
revocation_file = "$WORK/revocations.json"

[[identity.issuer]]
name = "bench"
issuer = "https://bench.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

EOF
        if [ "$kind" = full ]; then
            printf '[recorder]\ndir = "%s"\n\n' "$WORK/recordings-$variant"
        elif [ "$kind" = strict ]; then
            printf '[recorder]\ndir = "%s"\ndurability = "before_forward"\n\n' "$WORK/recordings-$variant"
        else
            printf '[recorder]\nenabled = false\n\n'
        fi
        cat <<EOF
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
        [ "$kind" = bare ] && return 0
        cat <<'EOF'

[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where", "copy_to_program", "alter_system"]

[[target.policy.rules]]
name = "no-server-files"
action = "block"
message = "server file and process functions are not allowed"
functions = ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_terminate_backend", "lo_import", "lo_export", "dblink*"]

[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn", "*_ssn"]
style = "partial"
keep = 4

[[target.masking.rules]]
name = "email-column"
columns = ["email", "*_email"]
style = "redact"
replacement = "[email]"

[[target.masking.rules]]
name = "pii-content"
detectors = ["email", "card"]
style = "redact"
replacement = "[redacted]"
EOF
    }
    for v in full norec bare strict; do
        tollgate_config "$v" >"$CONF/tollgate-$v.toml"
        "$TOLLGATE" check --config "$CONF/tollgate-$v.toml" >"$RESULTS/tollgate-check-$v.log" 2>&1 ||
            { cat "$RESULTS/tollgate-check-$v.log" >&2; die "tollgate check rejected the $v config"; }
    done
    for v in base base-norec base-bare base-strict; do
        has_relay "tollgate-$v" || continue
        tollgate_config "$v" >"$CONF/tollgate-$v.toml"
        "$BASE_TOLLGATE" check --config "$CONF/tollgate-$v.toml" >"$RESULTS/tollgate-check-$v.log" 2>&1 ||
            { cat "$RESULTS/tollgate-check-$v.log" >&2; die "the baseline binary rejected the $v config"; }
    done
fi

if has_relay pgbouncer; then
    mkdir -p "$WORK/pgbouncer"
    printf '"%s" "%s"\n' "$ROLE" "$PASSWORD" >"$WORK/pgbouncer/userlist.txt"
    cat >"$CONF/pgbouncer.ini" <<EOF
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
default_pool_size = $((CLIENTS + 4))
server_tls_sslmode = disable
client_tls_sslmode = disable
logfile = $WORK/pgbouncer/pgbouncer.log
ignore_startup_parameters = extra_float_digits
EOF
    cp "$CONF/pgbouncer.ini" "$WORK/pgbouncer/"
    chown -R postgres:postgres "$WORK/pgbouncer"
    chmod 600 "$WORK/pgbouncer/userlist.txt"
fi

if has_relay haproxy; then
    cat >"$CONF/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

listen pg
    bind 127.0.0.1:$HAP_PORT
    server pg 127.0.0.1:$PG_PORT
EOF
fi

# start_relay NAME: sets RELAY_PID (empty for direct), and how pgbench connects
# (CONN_PORT, CONN_USER, CONN_PASSWORD).
start_relay() {
    local name=$1 logf
    RELAY_PID=
    CONN_USER=$ROLE
    CONN_PASSWORD=$PASSWORD
    case "$name" in
        direct)
            CONN_PORT=$PG_PORT
            return 0
            ;;
        tollgate*)
            local variant=${name#tollgate} bin=$TOLLGATE
            variant=${variant#-}
            [[ "$variant" == base* ]] && bin=$BASE_TOLLGATE
            logf=$RESULTS/$name.log
            "${RELAY_PIN[@]}" env TOLLGATE_LOG=info "$bin" run \
                --config "$CONF/tollgate-${variant:-full}.toml" >>"$logf" 2>&1 &
            CONN_PORT=$TG_PORT
            CONN_USER=bench-ci
            CONN_PASSWORD=$TOKEN
            ;;
        pgbouncer)
            logf=$RESULTS/pgbouncer.log
            "${RELAY_PIN[@]}" setpriv --reuid=postgres --regid=postgres --clear-groups -- \
                pgbouncer "$WORK/pgbouncer/pgbouncer.ini" >>"$logf" 2>&1 &
            CONN_PORT=$PGB_PORT
            ;;
        haproxy)
            logf=$RESULTS/haproxy.log
            "${RELAY_PIN[@]}" haproxy -db -f "$CONF/haproxy.cfg" >>"$logf" 2>&1 &
            CONN_PORT=$HAP_PORT
            ;;
    esac
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    RELAY_LOG=$logf
    wait_port "$CONN_PORT" "$RELAY_PID" "$logf"
}

# pgbench_run OUT ARGS...: pgbench on LOAD_PIN against the current relay.
pgbench_run() {
    local out=$1
    shift
    PGPASSWORD=$CONN_PASSWORD PGSSLMODE=disable PGCONNECT_TIMEOUT=10 \
        "${LOAD_PIN[@]}" pgbench -n -h 127.0.0.1 -p "$CONN_PORT" -U "$CONN_USER" "$@" "$DB" >"$out" 2>&1
}

FAILED=0
# report_failure RELAY WHAT OUT: the pgbench error and the relay's last log lines.
report_failure() {
    local relay=$1 what=$2 out=$3
    FAILED=1
    {
        echo "compare-pg: FAILED: $relay $what (pgbench output: $out)"
        grep -v '^progress' "$out" | tail -n 15 | sed 's/^/  pgbench: /'
        if [ -n "${RELAY_LOG:-}" ] && [ "$relay" != direct ]; then
            echo "  last lines of $RELAY_LOG:"
            tail -n 15 "$RELAY_LOG" | sed 's/^/  log: /'
        fi
    } | tee -a "$RESULTS/failures.txt" >&2
}

# tps_run ROUND RELAY MODE: one measured tps run; appends a row to tps.tsv.
tps_run() {
    local round=$1 relay=$2 mode=$3 out before=0 after=0 load tps txns failed cpu_us=- th_before= th_after=
    out=$RESULTS/raw/r$round-$relay-$mode.txt
    read -r load _ </proc/loadavg
    if [ -n "$RELAY_PID" ]; then
        th_before=$(thread_stats "$RELAY_PID")
        before=$(cpu_ticks "$RELAY_PID")
    fi
    local perf_pid= perf_data=$RESULTS/raw/r$round-$relay-$mode.perf.data
    if [ "$PERF" = 1 ] && [[ "$relay" == tollgate* ]]; then
        perf record -q -F 999 -g -p "$RELAY_PID" -o "$perf_data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local ok=1
    pgbench_run "$out" -S -M "$mode" -c "$CLIENTS" -j "$JOBS" -T "$DURATION" || ok=0
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$perf_data" --stdio --no-children --sort dso,sym --percent-limit 0.5 -g none \
            >"${perf_data%.data}.txt" 2>/dev/null || log "perf report failed for $perf_data"
    fi
    if [ "$ok" = 0 ]; then
        report_failure "$relay" "-M $mode (round $round)" "$out"
        printf '%s\t%s\t%s\tFAIL\t-\t-\t-\t%s\n' "$round" "$relay" "$mode" "$load" >>"$RESULTS/tps.tsv"
        return 0
    fi
    if [ -n "$RELAY_PID" ]; then
        after=$(cpu_ticks "$RELAY_PID")
        th_after=$(thread_stats "$RELAY_PID")
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    [ -n "$tps" ] && [ -n "$txns" ] || { report_failure "$relay" "-M $mode: no tps in output" "$out"; return 0; }
    [ "${failed:-0}" = 0 ] || report_failure "$relay" "-M $mode: $failed failed transactions" "$out"
    [ -n "$RELAY_PID" ] && [ "$txns" -gt 0 ] &&
        cpu_us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$relay" "$mode" "$tps" "$txns" "${failed:-0}" \
        "$cpu_us" "$load" >>"$RESULTS/tps.tsv"
    # Where the relay's CPU went, by thread: CPU µs and sleeps (voluntary
    # context switches) per transaction.
    if [ -n "$RELAY_PID" ] && [ "$txns" -gt 0 ]; then
        awk -v r="$round" -v relay="$relay" -v m="$mode" -v n="$txns" -v hz="$CLK_TCK" '
            NR == FNR { c[$1] = $2; s[$1] = $3; next }
            { printf "%s\t%s\t%s\t%s\t%.2f\t%.2f\n", r, relay, m, $1, ($2 - c[$1]) * 1e6 / hz / n, ($3 - s[$1]) / n }
        ' <(echo "$th_before") <(echo "$th_after") >>"$RESULTS/threads.tsv"
    fi
    log "  $relay -M $mode: $tps tps, relay CPU ${cpu_us} µs/txn (load $load)"
}

# latency_run ROUND RELAY: one client, per-transaction log -> latency.tsv.
latency_run() {
    local round=$1 relay=$2 out prefix load
    out=$RESULTS/raw/r$round-$relay-latency.txt
    prefix=$RESULTS/raw/r$round-$relay-lat
    rm -f "$prefix".*
    read -r load _ </proc/loadavg
    if ! pgbench_run "$out" -S -M simple -c 1 -j 1 -T "$LAT_DURATION" --log --log-prefix="$prefix"; then
        report_failure "$relay" "latency run (round $round)" "$out"
        return 0
    fi
    # The log's third column is the transaction's latency in µs.
    printf '%s\t%s\t%s\t%s\n' "$round" "$relay" \
        "$(cat "$prefix".* | awk '{ print $3 }' | sort -n | awk -f "$SCRIPTS/pg-percentiles.awk")" \
        "$load" >>"$RESULTS/latency.tsv"
    gzip -f "$prefix".*
    log "  $relay latency: $(tail -n 1 "$RESULTS/latency.tsv" | cut -f3-5 | tr '\t' ' ') (n p50 p99 µs)"
}

# plot_run ROUND RELAY: tollgate-load's point selects -> load/RELAY-rROUND.json.
plot_run() {
    local round=$1 relay=$2 out
    out=$RESULTS/load/$relay-r$round.json
    if ! TOLLGATE_TOKEN=$CONN_PASSWORD "${LOAD_PIN[@]}" "$LOAD_TOOL" pg point-select \
        --dsn "host=127.0.0.1 port=$CONN_PORT user=$CONN_USER dbname=$DB sslmode=disable connect_timeout=10" \
        --connections "$CLIENTS" --threads "$JOBS" --duration "${LAT_DURATION}s" --warmup 1s \
        --json --no-progress >"$out" 2>"$out.err"; then
        report_failure "$relay" "tollgate-load point-select (round $round)" "$out.err"
        rm -f "$out"
        return 0
    fi
    rm -f "$out.err"
    log "  $relay tollgate-load: $(sed -n 's/.*"req_per_s":\([0-9.]*\).*"p99":\([0-9]*\).*/\1 op\/s, p99 \2 µs/p' "$out")"
}

printf 'round\trelay\tmode\ttps\ttransactions\tfailed\trelay_cpu_us_per_txn\tload1\n' >"$RESULTS/tps.tsv"
printf 'round\trelay\tmode\tthread\tcpu_us_per_txn\tsleeps_per_txn\n' >"$RESULTS/threads.tsv"
printf 'round\trelay\tn\tp50_us\tp99_us\tmean_us\tload1\n' >"$RESULTS/latency.tsv"
n=${#RELAY_LIST[@]}
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        relay=${RELAY_LIST[$(((i + round - 1) % n))]}
        log "round $round/$ROUNDS: $relay (load $(cut -d' ' -f1 /proc/loadavg))"
        start_relay "$relay"
        if [ "$WARMUP" -gt 0 ] && ! pgbench_run "$RESULTS/raw/r$round-$relay-warmup.txt" \
            -S -M simple -c "$CLIENTS" -j "$JOBS" -T "$WARMUP"; then
            report_failure "$relay" "warm-up (round $round)" "$RESULTS/raw/r$round-$relay-warmup.txt"
        fi
        for mode in "${MODE_LIST[@]}"; do tps_run "$round" "$relay" "$mode"; done
        if [ "$LATENCY" = 1 ]; then latency_run "$round" "$relay"; fi
        if [ "$PLOTS" = 1 ]; then plot_run "$round" "$relay"; fi
        if [ -n "$RELAY_PID" ]; then stop_pid "$RELAY_PID"; fi
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
if has_relay tollgate && [ -d "$WORK/recordings-full" ]; then
    echo "tollgate recordings: $(du -sh "$WORK/recordings-full" | cut -f1)" >>"$RESULTS/machine.txt"
fi

awk -f "$SCRIPTS/pg-summary.awk" -v relays="$RELAYS" -v modes="$MODES" \
    "$RESULTS/tps.tsv" "$RESULTS/latency.tsv" "$RESULTS/threads.tsv" | tee "$RESULTS/summary.md"
if [ "$PLOTS" = 1 ]; then
    # The last round's run of each relay, named after the relay (the plot's labels).
    mkdir -p "$RESULTS/plots"
    for relay in "${RELAY_LIST[@]}"; do
        [ -f "$RESULTS/load/$relay-r$ROUNDS.json" ] && cp "$RESULTS/load/$relay-r$ROUNDS.json" "$RESULTS/plots/$relay.json"
    done
    if compgen -G "$RESULTS/plots/*.json" >/dev/null; then
        for ext in html svg; do
            "$LOAD_TOOL" plot "$RESULTS"/plots/*.json -o "$RESULTS/report.$ext" \
                --title "PostgreSQL point selects, $CLIENTS sessions, round $ROUNDS of $ROUNDS" ||
                { FAILED=1; log "plotting failed"; }
        done
        log "plots: $RESULTS/report.html, $RESULTS/report.svg"
    fi
fi
log "results in $RESULTS"
[ "$FAILED" = 0 ] || die "some runs failed (see $RESULTS/failures.txt)"
