#!/usr/bin/env bash
# bench/capacity-mysql.sh — MySQL capacity figures for tuning/CAPACITY.md:
# statements and new sessions per gateway CPU-second, recording bytes per
# operation, measured with `tollgate-load mysql` (gateway, then --direct).
#
# It starts a throwaway MariaDB 10.11 (as the mysql user, temp dir, free
# port) and one tollgate (SHARDS shards, no rules or masking, recording on:
# the defaults) whose callers use TLS (a CA made here by openssl; the token
# is the password, caching_sha2 full authentication) and whose upstream login
# is mysql_native_password in plaintext on loopback. Then per workload it
# runs `tollgate-load mysql WORKLOAD --connections CONNECTIONS --duration
# DURATION --warmup 0s --direct ...` (direct: the same account, no TLS) and
# reads the gateway's CPU (utime + stime, /proc/PID/stat) and the recorder
# directory's size (du -sb) before and after. The tables are made and filled
# (ROWS rows) by a first, unmeasured run.
#
# Usage: bench/capacity-mysql.sh [--duration 8] [--connections 16] [--rows 1000]
#            [--shards 1] [--results DIR] [--bin-dir DIR]
# --bin-dir: where tollgate and tollgate-load are (default target/release).
# Results: capacity.tsv, each run's JSON, machine.txt (load before and after).
set -euo pipefail

DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-16}
ROWS=${ROWS:-1000}
SHARDS=${SHARDS:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/bench/scripts
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}
RESULTS=${RESULTS:-$REPO/target/capacity-mysql/$(date -u +%Y%m%dT%H%M%SZ)}
ARGS=("$@")

die() { echo "capacity-mysql: $*" >&2; exit 1; }
log() { echo "capacity-mysql: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --rows) ROWS=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for v in DURATION CONNECTIONS ROWS SHARDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer"
done
[ "$(id -u)" = 0 ] || die "run as root: MariaDB runs as the mysql user"
for t in mariadb-install-db mariadbd mariadb openssl setpriv getconf; do
    command -v "$t" >/dev/null || die "$t is required (Debian: mariadb-server mariadb-client openssl)"
done
[ -x "$BIN_DIR/tollgate" ] && [ -x "$BIN_DIR/tollgate-load" ] || die "no tollgate or tollgate-load in $BIN_DIR"
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=scripts/common.sh
source "$SCRIPTS/common.sh"

mkdir -p "$RESULTS/bin"
RESULTS=$(cd "$RESULTS" && pwd)
cp "$BIN_DIR/tollgate" "$BIN_DIR/tollgate-load" "$RESULTS/bin/"
TOLLGATE=$RESULTS/bin/tollgate
LOAD_TOOL=$RESULTS/bin/tollgate-load
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 ${ARGS[*]}"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) CPUs"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "mariadb: $(mariadbd --version)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

WORK=$(mktemp -d /tmp/capacity-mysql.XXXXXX)
chmod 755 "$WORK"
PKI=$WORK/pki
mkdir -p "$PKI"
(
    cd "$PKI"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
) >"$RESULTS/pki.log" 2>&1 || die "openssl failed (see $RESULTS/pki.log)"

DB_DIR=$WORK/db
mkdir -p "$DB_DIR"
chown -R mysql:mysql "$DB_DIR"
DB_PORT=$(free_port)
PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
log "MariaDB on port $DB_PORT"
setpriv --reuid=mysql --regid=mysql --clear-groups -- mariadb-install-db --no-defaults --datadir="$DB_DIR/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$RESULTS/install.log" 2>&1 ||
    die "mariadb-install-db failed (see $RESULTS/install.log)"
touch "$RESULTS/mariadb.log" && chown mysql:mysql "$RESULTS/mariadb.log"
setpriv --reuid=mysql --regid=mysql --clear-groups -- mariadbd --no-defaults --datadir="$DB_DIR/data" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --socket="$DB_DIR/mysqld.sock" --pid-file="$DB_DIR/mysqld.pid" \
    --skip-name-resolve --max-connections=500 --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=0 \
    --log-error="$RESULTS/mariadb.log" >"$RESULTS/mariadbd.out" 2>&1 &
DB_PID=$!
wait_port "$DB_PORT" "$DB_PID" "$RESULTS/mariadb.log"
root_sql() { mariadb --no-defaults -uroot --socket="$DB_DIR/mysqld.sock" -N -B -e "$1"; }
for i in $(seq 100); do root_sql 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
root_sql "CREATE DATABASE bench;
    CREATE USER bench@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$PASSWORD');
    GRANT ALL ON bench.* TO bench@'%';" || die "creating the bench account failed"

TG_PORT=$(free_port)
"$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "tollgate token keygen failed"
printf '%s\n' "$PASSWORD" >"$WORK/upstream.pw"
chmod 600 "$WORK/upstream.pw"
cat >"$RESULTS/tollgate.toml" <<EOF
[engine]
shards = $SHARDS
log_format = "json"

[[identity.issuer]]
name = "bench"
issuer = "https://bench.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

[recorder]
dir = "$WORK/recordings"

[[target]]
name = "bench"
protocol = "mysql"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$DB_PORT"

[target.mysql]
database = "bench"

[target.credential]
user = "bench"
password_file = "$WORK/upstream.pw"

[target.access]
groups = ["bench"]

[target.tls]
cert_file = "$PKI/server.pem"
key_file = "$PKI/server.key"
EOF
"$TOLLGATE" check --config "$RESULTS/tollgate.toml" >"$RESULTS/tollgate-check.log" 2>&1 ||
    { cat "$RESULTS/tollgate-check.log" >&2; die "tollgate check rejected the config"; }
env TOLLGATE_LOG=info "$TOLLGATE" run --config "$RESULTS/tollgate.toml" >"$RESULTS/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID")
wait_port "$TG_PORT" "$TG_PID" "$RESULTS/tollgate.log"

GATEWAY="mysql://bench-ci@127.0.0.1:$TG_PORT/bench?ssl-mode=VERIFY_IDENTITY&ssl-ca=$PKI/ca.pem"
DIRECT="mysql://bench@127.0.0.1:$DB_PORT/bench"
# load NAME ARGS...: tollgate-load mysql through the gateway and directly.
load() {
    local name=$1
    shift
    MYSQL_PWD=$PASSWORD "$LOAD_TOOL" mysql "$@" --dsn "$GATEWAY" --direct "$DIRECT" \
        --token-key "$WORK/keys/tollgate-dev-key.pem" --iss https://bench.local --groups bench \
        --rows "$ROWS" --json --no-progress >"$RESULTS/$name.json" 2>"$RESULTS/$name.err" ||
        { cat "$RESULTS/$name.err" >&2; die "tollgate-load mysql $* failed"; }
}
rec_bytes() { du -sb "$WORK/recordings" 2>/dev/null | cut -f1 || echo 0; }
field() { grep -o "$2[0-9.e+-]*" "$1" | head -n 1 | sed "s/^$2//"; }
direct_field() { sed 's/.*"direct":{//' "$1" | grep -o "$2[0-9.e+-]*" | head -n 1 | sed "s/^$2//"; }

log "filling the tables ($ROWS rows)"
load setup point-select --count 1 --connections 1
printf 'run\tgateway_op_per_s\tdirect_op_per_s\top_per_gateway_cpu_s\trecording_bytes_per_op\tgateway_p50_us\tgateway_p99_us\tdirect_p50_us\tdirect_p99_us\terrors\tload1\n' \
    >"$RESULTS/capacity.tsv"
for run in "point-select-prepared point-select --protocol prepared" \
    "point-select-text point-select --protocol text" \
    "connect connect --token-per-session"; do
    read -r name args <<<"$run"
    read -r load1 _ </proc/loadavg
    cb=$(cpu_ticks "$TG_PID")
    rb=$(rec_bytes)
    # shellcheck disable=SC2086
    load "$name" $args --connections "$CONNECTIONS" --duration "${DURATION}s" --warmup 0s
    ca=$(cpu_ticks "$TG_PID")
    ra=$(rec_bytes)
    f=$RESULTS/$name.json
    ops=$(field "$f" '"requests":')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" \
        "$(field "$f" '"req_per_s":')" "$(direct_field "$f" '"req_per_s":')" \
        "$(awk -v n="$ops" -v t=$((ca - cb)) -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (t > 0) ? n * hz / t : 0 }')" \
        "$(awk -v n="$ops" -v b=$((ra - rb)) 'BEGIN { printf "%.0f", (n > 0) ? b / n : 0 }')" \
        "$(field "$f" '"p50":')" "$(field "$f" '"p99":')" \
        "$(direct_field "$f" '"p50":')" "$(direct_field "$f" '"p99":')" \
        "$(field "$f" '"errors_total":')" "$load1" >>"$RESULTS/capacity.tsv"
    log "  $(tail -n 1 "$RESULTS/capacity.tsv")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
column -t "$RESULTS/capacity.tsv"
log "results in $RESULTS"
