#!/usr/bin/env bash
# bench/compare-ssh.sh — SSH through tollgate vs straight to sshd.
#
# One OpenSSH sshd (as root, a temp dir, internal-sftp) and one release
# tollgate in front of it (an ssh target with sftp rules, so sftp is
# decoded and judged, and the session recorder on). In interleaved rounds
# (each round runs both paths, in alternating order) it measures:
#   scp up/down: one SIZE MiB file (modern scp: sftp underneath), MiB/s;
#     the copies are checked by SHA-256 against the source.
#   exec: EXECS sequential `ssh host true` sessions (connect, key exchange,
#     authentication, exec, exit), each timed; p50/p99 per path.
# Direct logs in with a key; through tollgate the caller's password is a
# token (verified per session) and tollgate logs in upstream with the key.
# Both callers offer only curve25519-sha256 key exchange: OpenSSH's default
# (sntrup761x25519, which russh does not offer) costs the direct path
# hundreds of ms per session on a loaded machine and would flatter tollgate.
# The gateway's CPU (utime+stime of its process) over each phase is reported
# per MiB and per exec session.
#
# Usage: bench/compare-ssh.sh [--size MIB] [--execs N] [--rounds N]
#            [--results DIR] [--no-build] [--bin-dir DIR] [--no-sftp]
# --no-sftp: the target without sftp rules (the subsystem relayed byte for
# byte, recorded like any channel), to separate the decoder's cost.
# --size 1024 (1 GiB) and --execs 1000 by default; shrink them on a busy
# machine. Needs sshd, ssh, scp and sshpass (tests/deps.sh installs them)
# and root (sshd). Prints a Markdown summary; raw numbers go to the results
# dir (per-exec times in exec-*.txt, one line per phase in runs.tsv).
set -euo pipefail

SIZE=${SIZE:-1024}
EXECS=${EXECS:-1000}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
SFTP=${SFTP:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${RESULTS:-$REPO/target/compare-ssh/$(date -u +%Y%m%dT%H%M%SZ)}

die() { echo "compare-ssh: $*" >&2; exit 1; }
log() { echo "compare-ssh: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE=$2; shift 2 ;;
        --execs) EXECS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-sftp) SFTP=0; shift ;;
        --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$SIZE" =~ ^[1-9][0-9]*$ ]] || die "--size must be a positive number of MiB"
[[ "$EXECS" =~ ^[1-9][0-9]*$ ]] || die "--execs must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
for tool in sshd ssh scp sshpass ssh-keygen sha256sum; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || die "$tool is missing (tests/deps.sh)"
done
[ "$(id -u)" = 0 ] || die "sshd runs as root here: run as root"

# shellcheck source=scripts/common.sh
. "$REPO/bench/scripts/common.sh"

if [ "$BUILD" = 1 ]; then
    log "building release"
    (cd "$REPO" && cargo build --release -p tollgate -p tollgate-bench) >&2 || die "build failed"
fi
TOLLGATE=${BIN_DIR:-$REPO/target/release}/tollgate
[ -x "$TOLLGATE" ] || die "no $TOLLGATE (build it or pass --bin-dir)"

mkdir -p "$RESULTS"
WORK=$(mktemp -d)
mkdir -p /run/sshd

# --- sshd ----------------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host" -C host
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client" -C client
cp "$WORK/client.pub" "$WORK/authorized_keys"
SSHD_PORT=$(free_port)
cat >"$WORK/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $WORK/host
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
MaxStartups 100
LogLevel ERROR
EOF
/usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
DB_PID=$!
wait_port "$SSHD_PORT" "$DB_PID" "$WORK/sshd.log"

# --- tollgate ------------------------------------------------------------------
TG_PORT=$(free_port)
ADMIN_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$WORK/gw_host" -C gw
"$TOLLGATE" token keygen --dir "$WORK/keys" >/dev/null || die "tollgate token keygen failed"
mint() {
    "$TOLLGATE" token mint --key "$WORK/keys/tollgate-dev-key.pem" --sub bench \
        --groups bench --aud tollgate --iss https://bench.local --ttl 1h || die "tollgate token mint failed"
}
cat >"$WORK/tollgate.toml" <<EOF
[engine]
shards = 1

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

[recorder]
dir = "$WORK/recordings"

[[identity.issuer]]
name = "bench"
issuer = "https://bench.local"
audience = ["tollgate"]
jwks_file = "$WORK/keys/tollgate-dev-jwks.json"

[[target]]
name = "host"
protocol = "ssh"
listen = ["127.0.0.1:$TG_PORT"]
upstream = "127.0.0.1:$SSHD_PORT"
[target.access]
groups = ["bench"]
[target.ssh]
host_key = "$WORK/gw_host"
user = "root"
private_key_file = "$WORK/client"
upstream_host_key = "$(cut -d' ' -f1,2 "$WORK/host.pub")"
[[target.ssh.rules]]
name = "no-rm-rf"
command = "rm -rf *"
action = "block"
EOF
[ "$SFTP" = 0 ] || cat >>"$WORK/tollgate.toml" <<EOF
[[target.ssh.sftp_rules]]
name = "etc-read-only"
path = "/etc/**"
operations = ["write", "remove", "rename", "mkdir", "rmdir", "setstat", "symlink", "link"]
action = "block"
EOF
"$TOLLGATE" check --config "$WORK/tollgate.toml" >"$RESULTS/tollgate-check.log" 2>&1 ||
    { cat "$RESULTS/tollgate-check.log" >&2; die "tollgate check rejected the config"; }
"$TOLLGATE" run --config "$WORK/tollgate.toml" >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID")
wait_port "$TG_PORT" "$TG_PID" "$WORK/tollgate.log"
SSHPASS=$(mint)
export SSHPASS

COMMON=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o ConnectTimeout=20 -o KexAlgorithms=curve25519-sha256)
DIRECT=(-o IdentitiesOnly=yes -o IdentityFile="$WORK/client" -o PasswordAuthentication=no)
GATED=(-o PreferredAuthentications=password -o PubkeyAuthentication=no -o BatchMode=no)

# scp_to PATH SRC DST PORT: scp with PATH's options ("direct" or "tollgate").
run_scp() {
    local path=$1 port=$2 src=$3 dst=$4
    if [ "$path" = direct ]; then
        scp -q "${COMMON[@]}" "${DIRECT[@]}" -P "$port" "$src" "$dst"
    else
        sshpass -e scp -q "${COMMON[@]}" "${GATED[@]}" -P "$port" "$src" "$dst"
    fi
}
run_ssh() {
    local path=$1 port=$2
    shift 2
    if [ "$path" = direct ]; then
        ssh "${COMMON[@]}" "${DIRECT[@]}" -p "$port" root@127.0.0.1 "$@"
    else
        sshpass -e ssh "${COMMON[@]}" "${GATED[@]}" -p "$port" root@127.0.0.1 "$@"
    fi
}
port_of() { if [ "$1" = direct ]; then echo "$SSHD_PORT"; else echo "$TG_PORT"; fi; }
now_ns() { date +%s%N; }

log "making a $SIZE MiB source file"
head -c "$((SIZE << 20))" /dev/urandom >"$WORK/src.bin"
WANT=$(sha256sum "$WORK/src.bin" | cut -d' ' -f1)
mkdir -p "$WORK/remote"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "args: --size $SIZE --execs $EXECS --rounds $ROUNDS$([ "$SFTP" = 1 ] || echo ' --no-sftp')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
    echo "kernel: $(uname -r)"
    echo "openssh: $(ssh -V 2>&1)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"

printf 'round\tpath\tphase\tseconds\tmib_per_s\tp50_ms\tp99_ms\tgateway_cpu_ms\tload1\n' >"$RESULTS/runs.tsv"
# phase ROUND PATH NAME SECONDS RATE P50 P99 CPU_TICKS
row() {
    local ticks=$8 hz
    hz=$(getconf CLK_TCK)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
        "$(awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1000 / hz }')" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS/runs.tsv"
}

# percentile FILE P: the P-th percentile (nearest rank) of a column of numbers.
percentile() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'; }

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=(direct tollgate); else order=(tollgate direct); fi
    for path in "${order[@]}"; do
        port=$(port_of "$path")
        # scp up.
        rm -f "$WORK/remote/up.bin" "$WORK/down.bin"
        c0=$(cpu_ticks "$TG_PID"); t0=$(now_ns)
        run_scp "$path" "$port" "$WORK/src.bin" "root@127.0.0.1:$WORK/remote/up.bin" || die "$path scp up failed"
        t1=$(now_ns); c1=$(cpu_ticks "$TG_PID")
        [ "$(sha256sum "$WORK/remote/up.bin" | cut -d' ' -f1)" = "$WANT" ] || die "$path scp up: SHA-256 differs"
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        row "$round" "$path" scp-up "$s" "$(awk -v m="$SIZE" -v s="$s" 'BEGIN { printf "%.1f", m / s }')" - - "$((c1 - c0))"
        # scp down.
        c0=$(cpu_ticks "$TG_PID"); t0=$(now_ns)
        run_scp "$path" "$port" "root@127.0.0.1:$WORK/remote/up.bin" "$WORK/down.bin" || die "$path scp down failed"
        t1=$(now_ns); c1=$(cpu_ticks "$TG_PID")
        [ "$(sha256sum "$WORK/down.bin" | cut -d' ' -f1)" = "$WANT" ] || die "$path scp down: SHA-256 differs"
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        row "$round" "$path" scp-down "$s" "$(awk -v m="$SIZE" -v s="$s" 'BEGIN { printf "%.1f", m / s }')" - - "$((c1 - c0))"
        # exec sessions.
        times="$RESULTS/exec-$path-$round.txt"
        : >"$times"
        c0=$(cpu_ticks "$TG_PID"); t0=$(now_ns)
        for _ in $(seq "$EXECS"); do
            a=$(now_ns)
            run_ssh "$path" "$port" true </dev/null || die "$path ssh true failed"
            b=$(now_ns)
            echo $(((b - a) / 1000)) >>"$times"
        done
        t1=$(now_ns); c1=$(cpu_ticks "$TG_PID")
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        row "$round" "$path" exec "$s" - \
            "$(awk -v u="$(percentile "$times" 50)" 'BEGIN { printf "%.2f", u / 1000 }')" \
            "$(awk -v u="$(percentile "$times" 99)" 'BEGIN { printf "%.2f", u / 1000 }')" "$((c1 - c0))"
        log "round $round $path done"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
echo "recordings: $(du -sh "$WORK/recordings" | cut -f1)" >>"$RESULTS/machine.txt"

# --- summary: medians over rounds ---------------------------------------------
cat "$RESULTS/exec-direct-"*.txt >"$WORK/exec-direct.all"
cat "$RESULTS/exec-tollgate-"*.txt >"$WORK/exec-tollgate.all"
awk -F'\t' -v size="$SIZE" -v execs="$EXECS" \
    -v dp50="$(percentile "$WORK/exec-direct.all" 50)" -v dp99="$(percentile "$WORK/exec-direct.all" 99)" \
    -v tp50="$(percentile "$WORK/exec-tollgate.all" 50)" -v tp99="$(percentile "$WORK/exec-tollgate.all" 99)" '
NR == 1 { next }
{ key = $2 "/" $3; n[key]++; v[key, n[key]] = ($3 == "exec") ? $4 : $5; cpu[key] += $8; cnt[key]++ }
function median(k,   i, j, t, a, m) {
    m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
    printf "| phase | direct | tollgate | ratio | tollgate CPU |\n|---|---|---|---|---|\n"
    split("scp-up scp-down", ph, " ")
    for (i = 1; i <= 2; i++) {
        p = ph[i]; d = median("direct/" p); t = median("tollgate/" p)
        printf "| %s (%d MiB) | %.1f MiB/s | %.1f MiB/s | %.2fx | %.2f ms/MiB |\n", p, size, d, t, t / d, cpu["tollgate/" p] / cnt["tollgate/" p] / size
    }
    printf "| exec p50 | %.2f ms | %.2f ms | %+.2f ms | %.2f ms/session |\n", dp50 / 1000, tp50 / 1000, (tp50 - dp50) / 1000, cpu["tollgate/exec"] / cnt["tollgate/exec"] / execs
    printf "| exec p99 | %.2f ms | %.2f ms | %+.2f ms | |\n", dp99 / 1000, tp99 / 1000, (tp99 - dp99) / 1000
}' "$RESULTS/runs.tsv" | tee "$RESULTS/summary.md"
cat "$RESULTS/machine.txt"
