# bench/scripts/common.sh — the process and port helpers the compare-*.sh
# scripts share; sourced after the script has defined die() (and log()).
#
# It sets PIDS=() (relays and helpers the script starts: add each with
# PIDS+=("$!")), WORK= (a temp dir removed on exit), DB_PID= and
# DB_STOP_SIGNAL=TERM (the server under the relays, stopped with that signal:
# PostgreSQL's fast shutdown is INT), and the EXIT/INT/TERM traps that stop
# them all. Functions: stop_pid, port_free, free_port, wait_port, cpu_ticks,
# thread_stats. WAIT_PORT_S (default 60) bounds wait_port.

PIDS=()
WORK=
DB_PID=
DB_STOP_SIGNAL=TERM
WAIT_PORT_S=${WAIT_PORT_S:-60}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -n "$DB_PID" ] && kill "-$DB_STOP_SIGNAL" "$DB_PID" 2>/dev/null || true
    for pid in "${PIDS[@]}" $DB_PID; do wait "$pid" 2>/dev/null || true; done
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: TERM, KILL after 5 s, and forget it.
stop_pid() {
    local pid=$1 i kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
    PIDS=("${kept[@]+"${kept[@]}"}")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nobody listens on, in 20000-31999: away from 3306/5432
# and below the ephemeral range (32768+), so no client connection of the run
# can hold it.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        port_free "$p" && ! [[ " ${TAKEN_PORTS:-} " == *" $p "* ]] && break
    done
    TAKEN_PORTS="${TAKEN_PORTS:-} $p"
    echo "$p"
}

# wait_port PORT PID LOG: until PORT accepts; fail (with LOG) if PID dies.
wait_port() {
    local port=$1 pid=$2 logf=$3 i
    for i in $(seq $((WAIT_PORT_S * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$logf" >&2; die "process $pid exited before listening on $port"; }
        sleep 0.1
    done
    tail -n 30 "$logf" >&2
    die "nothing listens on $port after $WAIT_PORT_S s"
}

# cpu_ticks PID: utime+stime of the whole process (all threads), clock ticks.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# thread_stats PID: per thread "name cpu_ticks voluntary_switches", summed
# over threads of the same name (tollgate names its shard and recorder threads).
thread_stats() {
    local t stat comm ticks sw
    for t in /proc/"$1"/task/*; do
        stat=$(<"$t/stat") 2>/dev/null || continue
        comm=${stat#*(}
        comm=${comm%)*}
        stat=${stat##*) }
        ticks=$(awk '{ print $12 + $13 }' <<<"$stat")
        sw=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null || echo 0)
        printf '%s %s %s\n' "${comm// /_}" "$ticks" "${sw:-0}"
    done | awk '{ c[$1] += $2; s[$1] += $3 } END { for (k in c) print k, c[k], s[k] }'
}
