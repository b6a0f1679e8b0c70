#!/usr/bin/env bash
# bench/compare-mysql.sh — MariaDB comparison with sysbench: direct vs tollgate
# vs haproxy (TCP mode).
#
# It starts a throwaway MariaDB 10.11 (mariadb-install-db and mariadbd as the
# mysql user, in a temp dir, on a free port, TLS with a CA made here by
# openssl), loads `sysbench oltp_read_only prepare` (TABLES tables of
# TABLE_SIZE rows) directly, and then, in interleaved rounds (each round runs
# every relay once, in a rotating order; only the relay under test is alive),
# runs `sysbench TEST --threads=THREADS --time=DURATION` for each TEST and
# reports per relay: TPS, queries/s, p95 latency (sysbench's own percentile),
# the ratio of TPS to direct, and the CPU µs per query of the relay process
# and of mariadbd (utime+stime from /proc/PID/stat around each run, the
# THREADS logins included).
#
# Transport (--tls on, default: TLS everywhere a client connects):
#   direct:   sysbench -> MariaDB, TLS (--mysql-ssl=on), mysql_native_password.
#   haproxy:  sysbench -> haproxy (TCP, nbthread 1) -> MariaDB; the same TLS
#             session end to end (haproxy does not see inside it).
#   tollgate: sysbench -> tollgate, TLS terminated by the gateway (token as
#             the password: caching_sha2 full authentication over TLS);
#             tollgate -> MariaDB in plaintext on loopback (no
#             [target.upstream_tls]), native password from the stored
#             credential. So MariaDB does no TLS work on this path, and the
#             gateway does one TLS session per client.
#   tollgate-uptls: as tollgate, and TLS to MariaDB too ([target.upstream_tls]
#             verify-full): two TLS sessions per client, as in production.
#   tollgate-bare: as tollgate without rules, masking or recording (what the
#             gateway costs before its policy work).
# --tls off: every client in plaintext on loopback (tollgate's loopback
# listener admits it and switches the client to mysql_clear_password, which
# the script preloads in libmariadb; the token travels in the clear): the
# like-for-like comparison without TLS on any path.
# tollgate runs with token auth, command rules, masking rules (no sysbench
# column is named like one; every text and binary row still goes through the
# detectors) and recording on, SHARDS shards (default 1, as haproxy nbthread 1).
# sysbench uses server-side prepared statements (--db-ps-mode=auto, binary
# rows) unless --ps-mode disable (text protocol, COM_QUERY).
# sysbench 1.0's --mysql-ssl=on reads cacert.pem, client-cert.pem and
# client-key.pem from its working directory: the script makes them there.
#
# Plots (--no-plots skips them): after sysbench, each relay of each round also
# runs `tollgate-load mysql point-select` (THREADS sessions for DURATION,
# --protocol prepared, or text with --ps-mode disable; same TLS as sysbench)
# into load/RELAY-rROUND.json, drawn as report.html and report.svg (latency
# by percentile and throughput over time, one line per relay and round).
#
# Usage: bench/compare-mysql.sh [--rounds 3] [--relays direct,tollgate,haproxy]
#            [--tests oltp_point_select,oltp_read_only] [--duration 15]
#            [--threads 16] [--tables 4] [--table-size 10000] [--warmup 2]
#            [--tls on|off] [--ps-mode auto|disable] [--shards 1] [--nice 0]
#            [--results DIR] [--bin-dir DIR] [--no-build] [--no-plots]
# Relays: direct tollgate tollgate-uptls tollgate-bare haproxy. Durations in seconds.
# --bin-dir takes the tollgate (and tollgate-load) binaries from DIR instead of building them.
# Every option also reads from the environment (ROUNDS, RELAYS, TESTS, ...).
# Raw sysbench output, runs.tsv and the configs go to the results dir; the
# Markdown table of medians is printed and saved as summary.md.
# Exit status: 0 when every run succeeded, 1 otherwise (a failed run is
# reported with sysbench's error and the relay's log, and the others go on).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
RELAYS=${RELAYS:-direct,tollgate,haproxy}
TESTS=${TESTS:-oltp_point_select,oltp_read_only}
DURATION=${DURATION:-15}
THREADS=${THREADS:-16}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
WARMUP=${WARMUP:-2}
TLS=${TLS:-on}
PS_MODE=${PS_MODE:-auto}
SHARDS=${SHARDS:-1}
# The nice value for everything the script starts (MariaDB, relays, sysbench):
# on a shared machine -10 keeps other people's builds from taking the relay's
# CPU mid-run.
NICE=${NICE:-0}
BUILD=${BUILD:-1}
PLOTS=${PLOTS:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/bench/scripts
RESULTS=${RESULTS:-$REPO/target/compare-mysql/$(date -u +%Y%m%dT%H%M%SZ)}
ARGS=("$@")

die() { echo "compare-mysql: $*" >&2; exit 1; }
log() { echo "compare-mysql: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --tests) TESTS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --tables) TABLES=$2; shift 2 ;;
        --table-size) TABLE_SIZE=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --tls) TLS=$2; shift 2 ;;
        --ps-mode) PS_MODE=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-plots) PLOTS=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

IFS=',' read -r -a RELAY_LIST <<<"$RELAYS"
IFS=',' read -r -a TEST_LIST <<<"$TESTS"
[ "${#RELAY_LIST[@]}" -gt 0 ] || die "no relays given"
for r in "${RELAY_LIST[@]}"; do
    case "$r" in direct|tollgate|tollgate-uptls|tollgate-bare|haproxy) ;; *) die "unknown relay '$r'" ;; esac
done
for t in "${TEST_LIST[@]}"; do
    case "$t" in oltp_point_select|oltp_read_only) ;; *) die "unknown test '$t'" ;; esac
done
for v in ROUNDS DURATION THREADS TABLES TABLE_SIZE SHARDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$NICE" =~ ^-?[0-9]+$ ]] && [ "$NICE" -ge -20 ] && [ "$NICE" -le 19 ] || die "--nice must be -20..19"
case "$TLS" in on|off) ;; *) die "--tls is on or off" ;; esac
case "$PS_MODE" in auto|disable) ;; *) die "--ps-mode is auto or disable" ;; esac
[ "$TLS" = on ] || [[ ",$RELAYS," != *",tollgate-uptls,"* ]] || die "tollgate-uptls needs --tls on"
has_relay() { [[ ",$RELAYS," == *",$1,"* ]]; }
has_tollgate() { [[ ",$RELAYS," == *",tollgate"* ]]; }
[ "$(id -u)" = 0 ] || die "run as root: MariaDB runs as the mysql user"
for t in sysbench mariadb-install-db mariadbd mariadb openssl setpriv getconf; do
    command -v "$t" >/dev/null || die "$t is required (Debian: sysbench mariadb-server mariadb-client openssl)"
done
has_relay haproxy && ! command -v haproxy >/dev/null && die "haproxy is required for the haproxy relay"
id mysql >/dev/null 2>&1 || die "no mysql user (the mariadb-server package creates it)"
CLK_TCK=$(getconf CLK_TCK)

# --- processes we start (all stopped on exit), ports, CPU counters -----------
# shellcheck source=scripts/common.sh
source "$SCRIPTS/common.sh"

mkdir -p "$RESULTS/raw" "$RESULTS/config"
RESULTS=$(cd "$RESULTS" && pwd)
CONF=$RESULTS/config
if has_tollgate || [ "$PLOTS" = 1 ]; then
    BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}
    if [ "$BUILD" = 1 ]; then
        log "building the release gateway and load tool"
        (cd "$REPO" && cargo build --release -p tollgate -p tollgate-bench --bin tollgate --bin tollgate-load) ||
            die "cargo build failed"
    fi
    # A copy kept with the results: what was measured, safe from later builds.
    mkdir -p "$RESULTS/bin"
    cp "$BIN_DIR/tollgate" "$RESULTS/bin/" || die "no tollgate binary in $BIN_DIR"
    TOLLGATE=$RESULTS/bin/tollgate
    if [ "$PLOTS" = 1 ]; then
        cp "$BIN_DIR/tollgate-load" "$RESULTS/bin/" || die "no tollgate-load binary in $BIN_DIR (or --no-plots)"
        LOAD_TOOL=$RESULTS/bin/tollgate-load
        mkdir -p "$RESULTS/load"
    fi
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 ${ARGS[*]}"
    echo "settings: rounds=$ROUNDS relays=$RELAYS tests=$TESTS duration=${DURATION}s threads=$THREADS tables=$TABLES table_size=$TABLE_SIZE warmup=${WARMUP}s tls=$TLS ps_mode=$PS_MODE shards=$SHARDS nice=$NICE"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) CPUs"
    echo "kernel: $(uname -sr)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "mariadb: $(mariadbd --version)"
    echo "sysbench: $(sysbench --version)"
    has_relay haproxy && echo "haproxy: $(haproxy -v | head -n 1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

if [ "$NICE" != 0 ]; then renice -n "$NICE" -p $$ >/dev/null || die "renice $NICE failed"; fi

# --- certificates: one CA; MariaDB and tollgate share the server cert --------
WORK=$(mktemp -d /tmp/compare-mysql.XXXXXX)
chmod 755 "$WORK"
PKI=$WORK/pki
mkdir -p "$PKI"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
    openssl req -newkey rsa:2048 -nodes -keyout client-key.pem -out client.csr -subj /CN=sysbench
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile client.ext -out client-cert.pem
    cp ca.pem cacert.pem
) >"$RESULTS/pki.log" 2>&1 || die "openssl failed (see $RESULTS/pki.log)"
# sysbench runs in this directory: --mysql-ssl=on opens these three by name.
SB_CWD=$WORK/sysbench
mkdir -p "$SB_CWD"
cp "$PKI/cacert.pem" "$PKI/client-cert.pem" "$PKI/client-key.pem" "$SB_CWD/"

# --- MariaDB -------------------------------------------------------------------
DB_DIR=$WORK/db
mkdir -p "$DB_DIR"
cp "$PKI/server.pem" "$PKI/server.key" "$DB_DIR/"
chown -R mysql:mysql "$DB_DIR"
DB_PORT=$(free_port)
DB_USER=bench
DB=sbtest
PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
as_mysql() { setpriv --reuid=mysql --regid=mysql --clear-groups -- "$@"; }
log "mariadb-install-db (MariaDB on port $DB_PORT)"
as_mysql mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$RESULTS/install.log" 2>&1 || die "mariadb-install-db failed (see $RESULTS/install.log)"
touch "$RESULTS/mariadb.log" && chown mysql:mysql "$RESULTS/mariadb.log"
# setpriv execs mariadbd, so $! is the server (its CPU is read from /proc).
setpriv --reuid=mysql --regid=mysql --clear-groups -- mariadbd --no-defaults --datadir="$DB_DIR/data" --port="$DB_PORT" --bind-address=127.0.0.1 \
    --socket="$DB_DIR/mysqld.sock" --pid-file="$DB_DIR/mysqld.pid" --skip-name-resolve \
    --max-connections=500 --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=0 \
    --ssl-cert="$DB_DIR/server.pem" --ssl-key="$DB_DIR/server.key" --ssl-ca="$PKI/ca.pem" \
    --log-error="$RESULTS/mariadb.log" >"$RESULTS/mariadbd.out" 2>&1 &
DB_PID=$!
wait_port "$DB_PORT" "$DB_PID" "$RESULTS/mariadb.log"
root_sql() { mariadb --no-defaults -uroot --socket="$DB_DIR/mysqld.sock" -N -B -e "$1"; }
# ssl_accepts: TLS handshakes MariaDB has accepted so far (shows which runs used TLS to it).
ssl_accepts() { root_sql "SHOW GLOBAL STATUS LIKE 'Ssl_accepts'" | cut -f2; }
for i in $(seq 100); do root_sql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
root_sql "CREATE DATABASE $DB;
    CREATE USER $DB_USER@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$PASSWORD');
    GRANT ALL ON $DB.* TO $DB_USER@'%';" || die "creating the bench account failed"

SSL_ARGS=()
[ "$TLS" = on ] && SSL_ARGS=(--mysql-ssl=on)
# Without TLS the gateway switches the client to mysql_clear_password. sysbench's
# threads connect at once, and libmariadb loading that plugin in two threads at
# the same time fails one of them ("Plugin mysql_clear_password could not be
# loaded: it is already loaded"): load it at library start instead.
PRELOAD=
[ "$TLS" = off ] && PRELOAD=mysql_clear_password
# sysbench_run OUT TEST ARGS...: sysbench against the current relay.
sysbench_run() {
    local out=$1 test=$2
    shift 2
    (cd "$SB_CWD" && LIBMYSQL_PLUGINS=$PRELOAD sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$CONN_PORT" \
        --mysql-user="$CONN_USER" --mysql-password="$CONN_PASSWORD" --mysql-db="$DB" "${SSL_ARGS[@]}" \
        --tables="$TABLES" --table-size="$TABLE_SIZE" --db-ps-mode="$PS_MODE" "$@") >"$out" 2>&1
}
log "sysbench prepare: $TABLES tables of $TABLE_SIZE rows"
CONN_PORT=$DB_PORT CONN_USER=$DB_USER CONN_PASSWORD=$PASSWORD
sysbench_run "$RESULTS/prepare.log" oltp_read_only --threads="$TABLES" prepare ||
    die "sysbench prepare failed (see $RESULTS/prepare.log)"
if [ "$TLS" = on ]; then
    # The direct path really is TLS: the server says which cipher this session got.
    root_sql "SELECT 1" >/dev/null
    cipher=$(cd "$SB_CWD" && mariadb --no-defaults -h127.0.0.1 -P"$DB_PORT" -u"$DB_USER" -p"$PASSWORD" --ssl \
        --ssl-ca=cacert.pem -N -B -e "SHOW SESSION STATUS LIKE 'Ssl_cipher'" | cut -f2)
    [ -n "$cipher" ] || die "the direct path did not negotiate TLS"
    echo "direct TLS cipher: $cipher" >>"$RESULTS/machine.txt"
fi

# --- relay configs -------------------------------------------------------------
TG_PORT=$(free_port)
HAP_PORT=$(free_port)
TOKEN=
if has_tollgate; then
    "$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "tollgate token keygen failed"
    # A fresh token for every relay start: the gateway admits lifetimes up to 1 h.
    mint() {
        "$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub bench \
            --groups bench --aud tollgate --iss https://bench.local --ttl 1h || die "tollgate token mint failed"
    }
    TOKEN=$(mint)
    printf '%s\n' "$PASSWORD" >"$WORK/upstream.pw"
    chmod 600 "$WORK/upstream.pw"
    printf '[]\n' >"$WORK/revocations.json"
    # tollgate_config VARIANT: rules + masking + recording; uptls adds upstream TLS.
    tollgate_config() {
        local variant=$1
        cat <<EOF
[engine]
shards = $SHARDS
log_format = "json"

[identity]
revocation_file = "$WORK/revocations.json"

[[identity.issuer]]
name = "bench"
issuer = "https://bench.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

EOF
        if [ "$variant" = bare ]; then
            printf '[recorder]\nenabled = false\n\n'
        else
            printf '[recorder]\ndir = "%s"\n\n' "$WORK/recordings-$variant"
        fi
        cat <<EOF
[[target]]
name = "$DB"
protocol = "mysql"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$DB_PORT"

[target.mysql]
database = "$DB"

[target.credential]
user = "$DB_USER"
password_file = "$WORK/upstream.pw"

[target.access]
groups = ["bench"]
EOF
        if [ "$TLS" = on ]; then
            printf '\n[target.tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$PKI/server.pem" "$PKI/server.key"
        fi
        if [ "$variant" = uptls ]; then
            printf '\n[target.upstream_tls]\nmode = "verify-full"\nca_file = "%s"\n' "$PKI/ca.pem"
        fi
        [ "$variant" = bare ] && return 0
        cat <<'EOF'

[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where"]

[[target.policy.rules]]
name = "no-server-files"
action = "block"
message = "server file functions are not allowed"
functions = ["load_file", "sys_exec", "sys_eval"]

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
    for v in full uptls bare; do
        tollgate_config "$v" >"$CONF/tollgate-$v.toml"
        "$TOLLGATE" check --config "$CONF/tollgate-$v.toml" >"$RESULTS/tollgate-check-$v.log" 2>&1 ||
            { cat "$RESULTS/tollgate-check-$v.log" >&2; die "tollgate check rejected the $v config"; }
    done
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

listen mysql
    bind 127.0.0.1:$HAP_PORT
    server db 127.0.0.1:$DB_PORT
EOF
fi

# start_relay NAME: sets RELAY_PID (empty for direct) and CONN_PORT/USER/PASSWORD.
start_relay() {
    local name=$1 logf=$RESULTS/$1.log
    RELAY_PID=
    RELAY_LOG=
    CONN_USER=$DB_USER
    CONN_PASSWORD=$PASSWORD
    case "$name" in
        direct)
            CONN_PORT=$DB_PORT
            return 0
            ;;
        tollgate|tollgate-uptls|tollgate-bare)
            local variant=${name#tollgate}
            variant=${variant#-}
            variant=${variant:-full}
            env TOLLGATE_LOG=info "$TOLLGATE" run --config "$CONF/tollgate-$variant.toml" >>"$logf" 2>&1 &
            CONN_PORT=$TG_PORT
            CONN_USER=bench-ci
            TOKEN=$(mint)
            CONN_PASSWORD=$TOKEN
            ;;
        haproxy)
            haproxy -db -f "$CONF/haproxy.cfg" >>"$logf" 2>&1 &
            CONN_PORT=$HAP_PORT
            ;;
    esac
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    RELAY_LOG=$logf
    wait_port "$CONN_PORT" "$RELAY_PID" "$logf"
}

# plot_run ROUND RELAY: tollgate-load's point selects -> load/RELAY-rROUND.json.
# The password (the token through tollgate) goes in TOLLGATE_TOKEN, not argv.
plot_run() {
    local round=$1 relay=$2 out query protocol=prepared
    out=$RESULTS/load/$relay-r$round.json
    [ "$PS_MODE" = disable ] && protocol=text
    # Without TLS the gateway switches the client to mysql_clear_password.
    query='ssl-mode=REQUIRED'
    [ "$TLS" = off ] && query='ssl-mode=DISABLED&enable_cleartext_plugin=true'
    if ! TOLLGATE_TOKEN=$CONN_PASSWORD "$LOAD_TOOL" mysql point-select --protocol "$protocol" \
        --dsn "mysql://$CONN_USER@127.0.0.1:$CONN_PORT/$DB?$query" \
        --connections "$THREADS" --duration "${DURATION}s" --warmup 1s \
        --json --no-progress >"$out" 2>"$out.err"; then
        report_failure "$relay" "tollgate-load point-select (round $round)" "$out.err"
        rm -f "$out"
        return 0
    fi
    rm -f "$out.err"
    log "  $relay tollgate-load: $(sed -n 's/.*"req_per_s":\([0-9.]*\).*"p99":\([0-9]*\).*/\1 op\/s, p99 \2 µs/p' "$out")"
}

FAILED=0
report_failure() {
    local relay=$1 what=$2 out=$3
    FAILED=1
    {
        echo "compare-mysql: FAILED: $relay $what (sysbench output: $out)"
        tail -n 15 "$out" | sed 's/^/  sysbench: /'
        if [ -n "${RELAY_LOG:-}" ]; then
            echo "  last lines of $RELAY_LOG:"
            tail -n 15 "$RELAY_LOG" | sed 's/^/  log: /'
        fi
    } | tee -a "$RESULTS/failures.txt" >&2
}

# bench_run ROUND RELAY TEST: one measured run; a row in runs.tsv.
bench_run() {
    local round=$1 relay=$2 test=$3 out load rb=0 ra=0 db_b db_a tps qps p95 queries errs cpu=- dbcpu tls_b tls_a
    out=$RESULTS/raw/r$round-$relay-$test.txt
    read -r load _ </proc/loadavg
    tls_b=$(ssl_accepts)
    local th_b= th_a=
    [ -n "$RELAY_PID" ] && th_b=$(thread_stats "$RELAY_PID") && rb=$(cpu_ticks "$RELAY_PID")
    db_b=$(cpu_ticks "$DB_PID")
    if ! sysbench_run "$out" "$test" --threads="$THREADS" --time="$DURATION" --percentile=95 run; then
        report_failure "$relay" "$test (round $round)" "$out"
        printf '%s\t%s\t%s\tFAIL\t-\t-\t-\t-\t-\t-\t%s\t-\n' "$round" "$relay" "$test" "$load" >>"$RESULTS/runs.tsv"
        return 0
    fi
    [ -n "$RELAY_PID" ] && ra=$(cpu_ticks "$RELAY_PID") && th_a=$(thread_stats "$RELAY_PID")
    db_a=$(cpu_ticks "$DB_PID")
    tls_a=$(ssl_accepts)
    tps=$(sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' "$out")
    qps=$(sed -n 's/^ *queries: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' "$out")
    queries=$(sed -n 's/^ *total: *\([0-9]*\)$/\1/p' "$out" | head -n 1)
    p95=$(sed -n 's/^ *95th percentile: *\([0-9.]*\)/\1/p' "$out")
    errs=$(sed -n 's/^ *ignored errors: *\([0-9]*\).*/\1/p' "$out")
    [ -n "$tps" ] && [ -n "$queries" ] && [ "$queries" -gt 0 ] ||
        { report_failure "$relay" "$test: no result in output" "$out"; return 0; }
    [ "${errs:-0}" = 0 ] || report_failure "$relay" "$test: $errs ignored errors" "$out"
    [ -n "$RELAY_PID" ] && cpu=$(awk -v t=$((ra - rb)) -v hz="$CLK_TCK" -v n="$queries" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    dbcpu=$(awk -v t=$((db_a - db_b)) -v hz="$CLK_TCK" -v n="$queries" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$relay" "$test" "$tps" "$qps" "$queries" \
        "$p95" "${errs:-0}" "$cpu" "$dbcpu" "$load" $((tls_a - tls_b - TLS_SELF)) >>"$RESULTS/runs.tsv"
    if [ -n "$RELAY_PID" ]; then
        awk -v r="$round" -v relay="$relay" -v t="$test" -v n="$queries" -v hz="$CLK_TCK" '
            NR == FNR { c[$1] = $2; s[$1] = $3; next }
            { printf "%s\t%s\t%s\t%s\t%.2f\t%.2f\n", r, relay, t, $1, ($2 - c[$1]) * 1e6 / hz / n, ($3 - s[$1]) / n }
        ' <(echo "$th_b") <(echo "$th_a") >>"$RESULTS/threads.tsv"
    fi
    log "  $relay $test: $tps tps, $qps q/s, p95 $p95 ms, relay CPU $cpu µs/query, mariadbd $dbcpu µs/query, $((tls_a - tls_b - TLS_SELF)) TLS logins at MariaDB (load $load)"
}

printf 'round\trelay\ttest\ttps\tqps\tqueries\tp95_ms\terrors\trelay_cpu_us_per_query\tdb_cpu_us_per_query\tload1\tdb_tls_logins\n' \
    >"$RESULTS/runs.tsv"
printf 'round\trelay\ttest\tthread\tcpu_us_per_query\tsleeps_per_query\n' >"$RESULTS/threads.tsv"
# What one ssl_accepts call adds itself (the root CLI's own session), taken off each run's count.
a=$(ssl_accepts); b=$(ssl_accepts); TLS_SELF=$((b - a))
n=${#RELAY_LIST[@]}
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        relay=${RELAY_LIST[$(((i + round - 1) % n))]}
        log "round $round/$ROUNDS: $relay (load $(cut -d' ' -f1 /proc/loadavg))"
        start_relay "$relay"
        if [ "$WARMUP" -gt 0 ] && ! sysbench_run "$RESULTS/raw/r$round-$relay-warmup.txt" oltp_point_select \
            --threads="$THREADS" --time="$WARMUP" run; then
            report_failure "$relay" "warm-up (round $round)" "$RESULTS/raw/r$round-$relay-warmup.txt"
        fi
        for test in "${TEST_LIST[@]}"; do bench_run "$round" "$relay" "$test"; done
        if [ "$PLOTS" = 1 ]; then plot_run "$round" "$relay"; fi
        if [ -n "$RELAY_PID" ]; then stop_pid "$RELAY_PID"; fi
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
for v in full uptls bare; do
    [ -d "$WORK/recordings-$v" ] && echo "tollgate recordings ($v): $(du -sh "$WORK/recordings-$v" | cut -f1)" >>"$RESULTS/machine.txt"
done

if [ "$PLOTS" = 1 ] && compgen -G "$RESULTS/load/*.json" >/dev/null; then
    for ext in html svg; do
        "$LOAD_TOOL" plot "$RESULTS"/load/*.json -o "$RESULTS/report.$ext" \
            --title "tollgate-load mysql point-select: $RELAYS" ||
            report_failure plot "tollgate-load plot ($ext)" /dev/null
    done
fi

awk -f "$SCRIPTS/mysql-summary.awk" -v relays="$RELAYS" -v tests="$TESTS" "$RESULTS/runs.tsv" "$RESULTS/threads.tsv" |
    tee "$RESULTS/summary.md"
log "results in $RESULTS"
[ "$FAILED" = 0 ] || die "some runs failed (see $RESULTS/failures.txt)"
