#!/usr/bin/env bash
# bench/compare-tcp.sh — TCP relay comparison: direct vs tollgate vs haproxy.
#
# On one machine, in interleaved rounds (each round runs every relay once, in a
# rotating order, one relay alive at a time), it measures:
#   ping: 64 B ping-pong on 32 connections (closed model) for PING_DURATION
#   bulk: 1 MiB transfers sent and echoed back on 1 connection for BULK_DURATION
# The relay under test runs alone on RELAY_CPU; the load tool and the echo
# upstream share LOAD_CPU. The relay's own CPU time (utime+stime from
# /proc/<pid>/stat) over each measured run gives CPU µs per request.
#
# Usage: bench/compare-tcp.sh [--rounds N] [--relays direct,tollgate,haproxy]
#            (tollgate-rec, tollgate with its session recorder on, is also a relay;
#            tollgate-rec3 the same at zstd level 3)
#            [--rec-dir DIR]  where those record (default: the results dir; a
#            tmpfs such as /dev/shm shows recording's CPU cost without the disk's)
#            [--load-cpu 0] [--relay-cpu 1] [--ping-duration 5s]
#            [--bulk-duration 5s] [--results DIR] [--no-build]
#            [--echo-port 17001] [--relay-port 17000] [--admin-port 17090] [--bin-dir DIR]
#            [--max-other 10] [--retries 3] [--quiet-wait 120]
# --bin-dir takes tollgate and tollgate-load from DIR instead of building them.
# --max-other/--retries/--quiet-wait: see "shared machine" below.
# Every option also reads from the environment (ROUNDS, RELAYS, LOAD_CPU, ...).
# Prints a Markdown table of medians; raw per-round JSON goes to the results dir.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
RELAYS=${RELAYS:-direct,tollgate,haproxy}
LOAD_CPU=${LOAD_CPU:-0}
RELAY_CPU=${RELAY_CPU:-1}
PING_DURATION=${PING_DURATION:-5s}
BULK_DURATION=${BULK_DURATION:-5s}
# A short unrecorded run before each measured one, so the relay is warm and the
# measured run can start recording at once (CPU is sampled around it).
WARM_DURATION=${WARM_DURATION:-1s}
CONNECTIONS=${CONNECTIONS:-32}
PING_SIZE=${PING_SIZE:-64}
BULK_SIZE=${BULK_SIZE:-1MiB}
ECHO_PORT=${ECHO_PORT:-17001}
RELAY_PORT=${RELAY_PORT:-17000}
ADMIN_PORT=${ADMIN_PORT:-17090}
BUILD=${BUILD:-1}
# On a shared machine other work can land on the relay's CPU mid-run. Before
# each run wait (up to QUIET_WAIT seconds) until both CPUs are idle, and redo a
# run (up to RETRIES times) when other work took more than MAX_OTHER % of the
# relay's CPU during it.
MAX_OTHER=${MAX_OTHER:-10}
RETRIES=${RETRIES:-3}
QUIET_WAIT=${QUIET_WAIT:-120}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Under target/ (git-ignored) unless --results says otherwise.
RESULTS=${RESULTS:-$REPO/target/compare-tcp/$(date -u +%Y%m%dT%H%M%SZ)}

ARGS_GIVEN="$*"
die() { echo "compare-tcp: $*" >&2; exit 1; }
log() { echo "compare-tcp: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --load-cpu) LOAD_CPU=$2; shift 2 ;;
        --relay-cpu) RELAY_CPU=$2; shift 2 ;;
        --ping-duration) PING_DURATION=$2; shift 2 ;;
        --bulk-duration) BULK_DURATION=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --rec-dir) REC_DIR=$2; shift 2 ;;
        --echo-port) ECHO_PORT=$2; shift 2 ;;
        --relay-port) RELAY_PORT=$2; shift 2 ;;
        --admin-port) ADMIN_PORT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        --max-other) MAX_OTHER=$2; shift 2 ;;
        --retries) RETRIES=$2; shift 2 ;;
        --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

IFS=',' read -r -a RELAY_LIST <<<"$RELAYS"
[ "${#RELAY_LIST[@]}" -gt 0 ] || die "no relays given"
for relay in "${RELAY_LIST[@]}"; do
    case "$relay" in direct|tollgate|tollgate-rec|tollgate-rec3|haproxy) ;; *) die "unknown relay '$relay'" ;; esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[ "$LOAD_CPU" != "$RELAY_CPU" ] || die "--load-cpu and --relay-cpu must differ"
has_relay() { [[ ",$RELAYS," == *",$1,"* ]]; }

# --- processes we start, all stopped on exit -------------------------------
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: TERM, then KILL after 5 s; forget it.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=()
    for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
    PIDS=("${kept[@]+"${kept[@]}"}")
}

# wait_port PORT PID: until a connection to PORT succeeds; fail if PID dies.
wait_port() {
    local port=$1 pid=$2 i
    for i in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "process $pid exited before listening on $port"
        sleep 0.05
    done
    die "nothing listens on $port after 10 s"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cpu_ticks PID: utime+stime of the whole process (all threads), clock ticks.
# The command name can contain spaces: parse after the last ')'.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# core_ticks CPU: "busy total" clock ticks of one CPU from /proc/stat; busy
# counts user, nice, system, irq, softirq and steal (time a hypervisor took).
core_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# wait_quiet: until LOAD_CPU and RELAY_CPU were both under 5 % busy for a
# second (nothing of ours runs between measured runs), at most QUIET_WAIT s.
wait_quiet() {
    local waited=0 a b
    while [ "$waited" -lt "$QUIET_WAIT" ]; do
        a="$(core_ticks "$LOAD_CPU") $(core_ticks "$RELAY_CPU")"
        sleep 1
        b="$(core_ticks "$LOAD_CPU") $(core_ticks "$RELAY_CPU")"
        if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
                l = (y[2] - x[2] > 0) ? (y[1] - x[1]) / (y[2] - x[2]) : 0
                r = (y[4] - x[4] > 0) ? (y[3] - x[3]) / (y[4] - x[4]) : 0
                exit !(l < 0.05 && r < 0.05) }'; then
            return 0
        fi
        waited=$((waited + 1))
    done
    log "warning: the CPUs did not go quiet within ${QUIET_WAIT}s; measuring anyway"
}

# check_pinning PID CPU: every thread of PID may only run on CPU.
check_pinning() {
    local pid=$1 cpu=$2 task allowed
    for task in /proc/"$pid"/task/*; do
        allowed=$(awk '/^Cpus_allowed_list/ { print $2 }' "$task/status")
        [ "$allowed" = "$cpu" ] ||
            die "thread $(basename "$task") of $pid may run on CPUs $allowed, not only $cpu"
    done
}

# json_field FILE NAME: a number from the load tool's one-line JSON.
json_field() {
    grep -o "\"$2\":[^,}]*" "$1" | head -n 1 | cut -d: -f2
}

# --- build and tools ---------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN_DIR=${BIN_DIR:-$TARGET_DIR/release}
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    packages=(-p tollgate-bench)
    { has_relay tollgate || has_relay tollgate-rec || has_relay tollgate-rec3; } && packages+=(-p tollgate)
    (cd "$REPO" && cargo build --release "${packages[@]}") || die "cargo build failed"
fi
# Run copies kept with the results: they record exactly what was measured, and a
# later build into the same target directory cannot swap them mid-run.
mkdir -p "$RESULTS/bin"
cp "$BIN_DIR/tollgate-load" "$RESULTS/bin/" || die "tollgate-load not built"
LOAD=$RESULTS/bin/tollgate-load
TOLLGATE=$RESULTS/bin/tollgate
if has_relay tollgate || has_relay tollgate-rec || has_relay tollgate-rec3; then
    cp "$BIN_DIR/tollgate" "$RESULTS/bin/" || die "tollgate not built"
fi
if has_relay haproxy && ! command -v haproxy >/dev/null; then
    log "installing haproxy (Debian package)"
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null ||
        die "apt-get install haproxy failed"
fi
command -v taskset >/dev/null || die "taskset (util-linux) is required"
CLK_TCK=$(getconf CLK_TCK)
CPUS=$(nproc --all)
[ "$LOAD_CPU" -lt "$CPUS" ] && [ "$RELAY_CPU" -lt "$CPUS" ] ||
    die "CPU ids must be below $CPUS"

port_free "$ECHO_PORT" || die "port $ECHO_PORT is in use"
port_free "$RELAY_PORT" || die "port $RELAY_PORT is in use"
port_free "$ADMIN_PORT" || die "port $ADMIN_PORT is in use"

# --- the machine, for the record ---------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 $ARGS_GIVEN"
    echo "settings: --rounds $ROUNDS --relays $RELAYS --load-cpu $LOAD_CPU --relay-cpu $RELAY_CPU --ping-duration $PING_DURATION --bulk-duration $BULK_DURATION --max-other $MAX_OTHER --retries $RETRIES --rec-dir ${REC_DIR:-$RESULTS}"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $CPUS CPUs"
    echo "kernel: $(uname -sr)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    has_relay haproxy && echo "haproxy: $(haproxy -v | head -n 1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

# --- configs -------------------------------------------------------------------
# tollgate_config RECORDER_SECTION: the relay as the issue defines it; `tollgate`
# runs it without the session recorder (the relay alone), `tollgate-rec` with
# recording into the results directory (what a production gateway does).
tollgate_config() {
    cat <<EOF
[engine]
shards = 1

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

$1

[[target]]
name = "echo"
protocol = "tcp"
listen = ["127.0.0.1:$RELAY_PORT"]
upstream = "127.0.0.1:$ECHO_PORT"
unauthenticated = true
EOF
}
tollgate_config $'[recorder]\nenabled = false' >"$RESULTS/tollgate.toml"
REC_DIR=${REC_DIR:-$RESULTS}
mkdir -p "$REC_DIR"
tollgate_config "$(printf '[recorder]\ndir = "%s"' "$REC_DIR/recordings")" >"$RESULTS/tollgate-rec.toml"
tollgate_config "$(printf '[recorder]\ndir = "%s"\nzstd_level = 3' "$REC_DIR/recordings3")" >"$RESULTS/tollgate-rec3.toml"

cat >"$RESULTS/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend relay
    bind 127.0.0.1:$RELAY_PORT
    default_backend echo

backend echo
    server echo 127.0.0.1:$ECHO_PORT
EOF

# --- upstream --------------------------------------------------------------------
taskset -c "$LOAD_CPU" "$LOAD" echo --listen "127.0.0.1:$ECHO_PORT" --threads 1 \
    >"$RESULTS/echo.log" 2>&1 &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
wait_port "$ECHO_PORT" "$ECHO_PID"

# start_relay NAME: starts it pinned on RELAY_CPU; sets RELAY_PID and RELAY_ADDR.
start_relay() {
    local name=$1
    case "$name" in
        direct)
            RELAY_PID=
            RELAY_ADDR=127.0.0.1:$ECHO_PORT
            return 0
            ;;
        tollgate|tollgate-rec|tollgate-rec3)
            port_free "$RELAY_PORT" || die "port $RELAY_PORT still in use"
            taskset -c "$RELAY_CPU" "$TOLLGATE" run --config "$RESULTS/$name.toml" \
                --shards 1 >>"$RESULTS/$name.log" 2>&1 &
            ;;
        haproxy)
            port_free "$RELAY_PORT" || die "port $RELAY_PORT still in use"
            taskset -c "$RELAY_CPU" haproxy -db -f "$RESULTS/haproxy.cfg" \
                >>"$RESULTS/haproxy.log" 2>&1 &
            ;;
    esac
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    RELAY_ADDR=127.0.0.1:$RELAY_PORT
    wait_port "$RELAY_PORT" "$RELAY_PID"
    check_pinning "$RELAY_PID" "$RELAY_CPU"
}

# measured_run ARGS DURATION OUT: one measured run; sets RUN_CPU_TICKS (the
# relay's CPU time, 0 without a relay) and RUN_OTHER_PCT: what else ran on the
# relay's CPU meanwhile (other engineers' builds, the hypervisor), in % of that
# CPU. Softirq work for the relay's packets lands there when the kernel does
# not charge it to the relay itself; in clean runs it stays under a few %.
# rec_ticks PID: utime+stime of the process's recorder writer threads
# (tollgate-rec-N), so recording's writer cost shows apart from the shard's.
rec_ticks() {
    local t stat total=0
    for t in /proc/"$1"/task/*; do
        [[ $(<"$t/comm") == tollgate-rec-* ]] 2>/dev/null || continue
        stat=$(<"$t/stat") 2>/dev/null || continue
        stat=${stat##*) }
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$stat")))
    done
    echo "$total"
}

measured_run() {
    local duration=$1 out=$2 before=0 after=0 core_before core_after rec_before=0 rec_after=0
    shift 2
    [ -n "$RELAY_PID" ] && before=$(cpu_ticks "$RELAY_PID") && rec_before=$(rec_ticks "$RELAY_PID")
    core_before=$(core_ticks "$RELAY_CPU")
    taskset -c "$LOAD_CPU" "$LOAD" "$@" --addr "$RELAY_ADDR" \
        --duration "$duration" --warmup 0s --json --no-progress >"$out" ||
        die "run against $RELAY_ADDR failed (see $out)"
    [ -n "$RELAY_PID" ] && after=$(cpu_ticks "$RELAY_PID") && rec_after=$(rec_ticks "$RELAY_PID")
    core_after=$(core_ticks "$RELAY_CPU")
    RUN_CPU_TICKS=$((after - before))
    RUN_REC_TICKS=$((rec_after - rec_before))
    RUN_OTHER_PCT=$(awk -v b="$core_before" -v a="$core_after" -v r="$RUN_CPU_TICKS" 'BEGIN {
        split(b, x, " "); split(a, y, " "); total = y[2] - x[2]
        printf "%.1f", (total > 0 ? 100 * (y[1] - x[1] - r) / total : 0) }')
}

# measure ROUND RELAY WORKLOAD: once the CPUs are quiet, a warm-up run and the
# measured run (both redone while other work disturbed it, up to RETRIES times);
# appends a row.
measure() {
    local round=$1 relay=$2 workload=$3 out args duration attempt=0
    out="$RESULTS/round$round-$relay-$workload.json"
    case "$workload" in
        ping)
            args=(tcp ping --connections "$CONNECTIONS" --size "$PING_SIZE" --threads 1)
            duration=$PING_DURATION
            ;;
        bulk)
            args=(tcp bulk --connections 1 --size "$BULK_SIZE" --threads 1 --no-verify)
            duration=$BULK_DURATION
            ;;
    esac
    while :; do
        wait_quiet
        taskset -c "$LOAD_CPU" "$LOAD" "${args[@]}" --addr "$RELAY_ADDR" \
            --duration "$WARM_DURATION" --warmup 0s --json --no-progress >/dev/null ||
            die "warm-up run against $relay failed"
        measured_run "$duration" "$out" "${args[@]}"
        awk -v o="$RUN_OTHER_PCT" -v m="$MAX_OTHER" 'BEGIN { exit !(o <= m) }' && break
        [ "$attempt" -lt "$RETRIES" ] || break
        attempt=$((attempt + 1))
        log "$relay $workload: other work took $RUN_OTHER_PCT % of CPU $RELAY_CPU; redoing the run ($attempt/$RETRIES)"
    done
    local requests errors relay_us=-
    requests=$(json_field "$out" requests)
    errors=$(json_field "$out" errors_total)
    [ "$errors" = 0 ] || log "warning: $errors errors in $out"
    [ -n "$RELAY_PID" ] && relay_us=$((RUN_CPU_TICKS * 1000000 / CLK_TCK))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$round" "$relay" "$workload" \
        "$(json_field "$out" req_per_s)" \
        "$(json_field "$out" p50)" "$(json_field "$out" p99)" \
        "$(json_field "$out" mb_per_s)" "$(json_field "$out" duration_s)" \
        "$requests" "$errors" "$relay_us" "$RUN_OTHER_PCT" \
        "$((RUN_REC_TICKS * 1000000 / CLK_TCK))" >>"$RESULTS/rounds.tsv"
}

printf 'round\trelay\tworkload\treq_per_s\tp50_us\tp99_us\tmb_per_s\tduration_s\trequests\terrors\trelay_cpu_us\tother_on_relay_cpu_pct\trecorder_thread_cpu_us\n' \
    >"$RESULTS/rounds.tsv"
n=${#RELAY_LIST[@]}
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        relay=${RELAY_LIST[$(((i + round - 1) % n))]}
        log "round $round/$ROUNDS: $relay (load $(cut -d' ' -f1 /proc/loadavg))"
        start_relay "$relay"
        measure "$round" "$relay" ping
        measure "$round" "$relay" bulk
        if [ -n "$RELAY_PID" ]; then
            stop_pid "$RELAY_PID"
        fi
        for dir in recordings recordings3; do
            if [ -d "$REC_DIR/$dir" ]; then
                # Bulk runs record gigabytes: keep the size, not the bytes.
                printf '%s\t%s\t%s\n' "$round" "$relay" "$(du -sb "$REC_DIR/$dir" | cut -f1)" \
                    >>"$RESULTS/recording-bytes.tsv"
                rm -rf "${REC_DIR:?}/$dir"
            fi
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"

# --- the table of medians ---------------------------------------------------------
awk -F'\t' -v relays="$RELAYS" '
function median(key,    n, i, j, t, v) {
    n = count[key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = vals[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, value) { if (value == "-" || value == "") return; vals[key, ++count[key]] = value + 0 }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "–" : sprintf("%.2f×", a / b) }
function num(v, fmt) { return (v == "") ? "–" : sprintf(fmt, v) }
NR > 1 {
    r = $2; w = $3
    if (w == "ping") {
        add(r SUBSEP "rps", $4); add(r SUBSEP "p50", $5); add(r SUBSEP "p99", $6)
        if ($11 != "-" && $9 > 0) add(r SUBSEP "cpu", $11 / $9)
        if ($11 != "-" && $8 > 0) add(r SUBSEP "util", $11 / ($8 * 10000))
        add(r SUBSEP "other", $12)
    } else {
        add(r SUBSEP "mbs", $7)
        if ($11 != "-" && $7 > 0) { add(r SUBSEP "bulkcpu", $11 / ($7 * $8)) }
    }
}
END {
    n = split(relays, list, ",")
    for (i = 1; i <= n; i++) {
        r = list[i]
        rps[r] = median(r SUBSEP "rps"); p50[r] = median(r SUBSEP "p50"); p99[r] = median(r SUBSEP "p99")
        cpu[r] = median(r SUBSEP "cpu"); util[r] = median(r SUBSEP "util"); other[r] = median(r SUBSEP "other"); mbs[r] = median(r SUBSEP "mbs"); bcpu[r] = median(r SUBSEP "bulkcpu")
    }
    print "| relay | 64 B req/s | vs direct | p50 µs | p99 µs | CPU µs/req | CPU vs haproxy | relay CPU % | other on relay CPU % | 1 MiB bulk MB/s | vs direct | vs haproxy | bulk CPU µs/MB |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= n; i++) {
        r = list[i]
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r,
            num(rps[r], "%.0f"), ratio(rps[r], rps["direct"]), num(p50[r], "%.0f"), num(p99[r], "%.0f"),
            num(cpu[r], "%.2f"), ratio(cpu[r], cpu["haproxy"]), num(util[r], "%.0f"), num(other[r], "%.1f"),
            num(mbs[r], "%.0f"), ratio(mbs[r], mbs["direct"]), ratio(mbs[r], mbs["haproxy"]),
            num(bcpu[r], "%.0f")
    }
}' "$RESULTS/rounds.tsv" | tee "$RESULTS/table.md"
busy_runs=$(awk -F'\t' -v m="$MAX_OTHER" 'NR > 1 && $12 + 0 > m { n++ } END { print n + 0 }' "$RESULTS/rounds.tsv")
if [ "$busy_runs" -gt 0 ]; then
    echo
    echo "warning: in $busy_runs runs, other work took more than $MAX_OTHER % of CPU $RELAY_CPU" \
        "(column other_on_relay_cpu_pct in rounds.tsv): those numbers are not clean." | tee -a "$RESULTS/table.md"
fi
echo
cat "$RESULTS/machine.txt"
echo "raw results: $RESULTS"
