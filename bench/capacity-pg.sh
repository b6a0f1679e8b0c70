#!/usr/bin/env bash
# bench/capacity-pg.sh — the numbers of tuning/CAPACITY.md, measured with
# tollgate-load on this host: a throwaway PostgreSQL 15 cluster and one
# tollgate (1 shard; rules, masking and recording on, as compare-pg.sh's
# `tollgate` relay), then
#   statements: tollgate-load pg select1 / point-select / mixed, gateway then
#               --direct; the gateway's CPU (utime+stime) over the run gives
#               statements per CPU-second, i.e. per core;
#   sessions:   tollgate-load pg connect --token-per-session (token verify +
#               upstream SCRAM login + recording start per session) -> per core;
#   recording:  bytes the recorder wrote (du of its directory) per 1,000
#               statements of each run, and per GB of COPY output through psql;
#   idle:       the gateway's RSS growth with IDLE sessions open (tollgate-load
#               holding them, one statement per session every 20 s), per session.
# Usage: bench/capacity-pg.sh [--bin-dir DIR] [--duration 10] [--connections 16]
#            [--idle 150] [--copy-mb 200] [--results DIR] [--no-statements]
# DIR holds tollgate and tollgate-load (default target/release; build them with
# `cargo build --release -p tollgate -p tollgate-bench`). Run as root (the
# cluster runs as the postgres user). Everything stops when the script exits.
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
IDLE=${IDLE:-150}
COPY_MB=${COPY_MB:-200}
STATEMENTS=${STATEMENTS:-1}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}
RESULTS=${RESULTS:-$REPO/target/capacity-pg/$(date -u +%Y%m%dT%H%M%SZ)}

die() { echo "capacity-pg: $*" >&2; exit 1; }
log() { echo "capacity-pg: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --copy-mb) COPY_MB=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --no-statements) STATEMENTS=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the cluster runs as the postgres user)"
TOLLGATE=$BIN_DIR/tollgate
LOAD=$BIN_DIR/tollgate-load
[ -x "$TOLLGATE" ] && [ -x "$LOAD" ] || die "no tollgate / tollgate-load in $BIN_DIR"
[ "$IDLE" -le 180 ] || die "--idle must be at most 180 (the cluster's max_connections is 200)"
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)

PIDS=()
WORK=
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a port nobody listens on, away from 5432 and the ephemeral range.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        [ "$p" != 5432 ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            ! [[ " ${TAKEN:-} " == *" $p "* ]] && break
    done
    TAKEN="${TAKEN:-} $p"
    echo "$p"
}
wait_port() {
    local i
    for i in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || die "process $2 exited before listening on $1"
        sleep 0.1
    done
    die "nothing listens on $1 after 30 s"
}
cpu_ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; awk '{ print $12 + $13 }' <<<"$s"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
rec_bytes() { du -sb "$WORK/rec" | cut -f1; }
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/capacity-pg.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/pg" "$WORK/rec"
chown postgres:postgres "$WORK/pg"
PG_PORT=$(free_port)
PASSWORD="cap-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
as_postgres() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }
as_postgres "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$RESULTS/initdb.log" 2>&1 || die "initdb failed"
cat >"$WORK/pg/data/postgresql.auto.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK/pg'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
EOF
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$WORK/pg/data/pg_hba.conf"
chown postgres:postgres "$WORK/pg/data/postgresql.auto.conf" "$WORK/pg/data/pg_hba.conf"
as_postgres "$PG_BIN/postgres" -D "$WORK/pg/data" >"$RESULTS/postgres.log" 2>&1 &
PIDS+=($!)
wait_port "$PG_PORT" "$!"
psql_admin() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$WORK/pg" -p "$PG_PORT" -U postgres "$@"; }
for _ in $(seq 100); do psql_admin -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql_admin -d postgres -c "CREATE ROLE cap LOGIN PASSWORD '$PASSWORD'"
psql_admin -d postgres -c "CREATE DATABASE cap OWNER cap"

"$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null
printf '%s\n' "$PASSWORD" >"$WORK/upstream.pw"
chmod 600 "$WORK/upstream.pw"
printf '[]\n' >"$WORK/revocations.json"
TG_PORT=$(free_port)
cat >"$RESULTS/tollgate.toml" <<EOF
[engine]
shards = 1
log_format = "json"

[identity]
revocation_file = "$WORK/revocations.json"

[[identity.issuer]]
name = "cap"
issuer = "https://capacity.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

[recorder]
dir = "$WORK/rec"

[[target]]
name = "cap"
protocol = "postgres"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$PG_PORT"

[target.credential]
user = "cap"
password_file = "$WORK/upstream.pw"

[target.access]
groups = ["cap"]

[[target.policy.rules]]
name = "no-destructive"
action = "block"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where", "copy_to_program", "alter_system"]

[[target.masking.rules]]
name = "pii-content"
detectors = ["email", "card"]
style = "redact"
replacement = "[redacted]"
EOF
"$TOLLGATE" run --config "$RESULTS/tollgate.toml" >"$RESULTS/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID")
wait_port "$TG_PORT" "$TG_PID"
KEY=(--token-key "$WORK/keys/tollgate-dev-key.pem" --iss https://capacity.local --groups cap)
GW="host=127.0.0.1 port=$TG_PORT dbname=cap user=cap-bench sslmode=disable connect_timeout=10"
DIRECT="host=127.0.0.1 port=$PG_PORT dbname=cap user=cap password=$PASSWORD sslmode=disable connect_timeout=10"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) CPUs"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "binaries: $BIN_DIR"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

printf 'run\tgateway_ops_per_s\tdirect_ops_per_s\tratio\tgateway_cpu_s\tops_per_cpu_s\trec_bytes_per_1000\tload1\n' \
    >"$RESULTS/capacity.tsv"
# measure NAME ARGS...: one tollgate-load pg run; the gateway's CPU and the
# recorder's bytes around it.
measure() {
    local name=$1 t0 t1 r0 r1 load out=$RESULTS/$1.json
    shift
    read -r load _ </proc/loadavg
    t0=$(cpu_ticks "$TG_PID"); r0=$(rec_bytes)
    # No warm-up: the gateway's CPU over the run then belongs to the counted
    # operations (plus the set-up's few statements).
    "$LOAD" pg "$@" --dsn "$GW" "${KEY[@]}" --connections "$CONNECTIONS" --duration "${DURATION}s" \
        --warmup 0s --json --no-progress >"$out" || die "tollgate-load $name failed (see $out)"
    t1=$(cpu_ticks "$TG_PID"); r1=$(rec_bytes)
    python3 - "$out" "$name" "$((t1 - t0))" "$CLK_TCK" "$((r1 - r0))" "$load" >>"$RESULTS/capacity.tsv" <<'PY'
import json, sys
path, name, ticks, hz, rec, load = sys.argv[1:]
r = json.load(open(path))
d = r.get("direct") or {}
cpu = int(ticks) / int(hz)
n = r["requests"]
print("\t".join([name, f'{r["req_per_s"]:.0f}', f'{d.get("req_per_s", 0):.0f}',
                 f'{(r.get("vs_direct") or {}).get("req_per_s_ratio", 0):.2f}', f"{cpu:.2f}",
                 f"{n / cpu:.0f}" if cpu else "-", f"{int(rec) * 1000 / n:.0f}" if n else "-", load]))
PY
    log "$(tail -n 1 "$RESULTS/capacity.tsv")"
}

if [ "$STATEMENTS" = 1 ]; then
    measure select1 select1 --direct "$DIRECT"
    measure point-select point-select --direct "$DIRECT"
    measure point-select-prepared point-select --protocol prepared --direct "$DIRECT"
    measure mixed mixed --protocol extended --direct "$DIRECT"
    measure connect connect --token-per-session --direct "$DIRECT"
fi

# COPY output through the gateway: recorder bytes per GB the client received.
rows=$((COPY_MB * 1000000 / 33))
r0=$(rec_bytes)
got=$(PGPASSWORD=$("$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub cap-bench \
    --groups cap --aud tollgate --iss https://capacity.local --ttl 1h) \
    psql -X -q -h 127.0.0.1 -p "$TG_PORT" -U cap-bench -d cap \
    -c "COPY (SELECT md5(g::text) FROM generate_series(1, $rows) AS g) TO STDOUT" | wc -c)
r1=$(rec_bytes)
awk -v got="$got" -v rec="$((r1 - r0))" 'BEGIN { printf "copy_out\tclient_bytes=%d\trecorded_bytes=%d\trecorded_per_gb=%.0f MB\n", got, rec, rec / got * 1000 }' \
    | tee -a "$RESULTS/capacity.tsv" >&2

# Idle sessions: the gateway's RSS with IDLE sessions open and all but idle.
rss0=$(rss_kib "$TG_PID")
# One statement per session every 20 s: every session stays open for the first
# 20 s of the 30-s window (a session closes once its next statement would be
# due after the end).
"$LOAD" pg select1 --dsn "$GW" "${KEY[@]}" --connections "$IDLE" --threads 1 \
    --rate "$(awk -v n="$IDLE" 'BEGIN { print n / 20 }')" --duration 30s --json --no-progress \
    >"$RESULTS/idle.json" &
idle_pid=$!
PIDS+=("$idle_pid")
for _ in $(seq 600); do
    n=$(psql_admin -d postgres -c "select count(*) from pg_stat_activity where usename = 'cap'")
    echo "$(date +%T.%N) $n" >>"$RESULTS/idle-count.log"
    [ "$n" -ge "$IDLE" ] && break
    sleep 0.1
done
[ "$n" -ge "$IDLE" ] || die "only $n of $IDLE idle sessions opened"
rss1=$(rss_kib "$TG_PID")
awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" 'BEGIN { printf "idle\tsessions=%d\trss_before_kib=%d\trss_with_kib=%d\tper_session_kib=%.1f\n", n, a, b, (b - a) / n }' \
    | tee -a "$RESULTS/capacity.tsv" >&2
wait "$idle_pid" || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
log "results in $RESULTS"
