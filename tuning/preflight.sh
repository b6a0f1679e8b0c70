#!/usr/bin/env bash
# Preflight: checks the host settings tollgate depends on and says what to fix.
# Prints one line per check; exits 1 if any check fails. Changes nothing.
set -u
fail=0
ok()   { printf 'ok    %s\n' "$*"; }
warn() { printf 'warn  %s\n' "$*"; }
bad()  { printf 'FAIL  %s\n' "$*"; fail=1; }
sysctl_at_least() {
    local key=$1 want=$2 path="/proc/sys/${1//.//}" have
    have=$(cat "$path" 2>/dev/null) || { warn "$key: not readable"; return; }
    if [ "${have%%[[:space:]]*}" -ge "$want" ] 2>/dev/null; then ok "$key = $have"; else bad "$key = $have (want >= $want; see tuning/90-tollgate.conf)"; fi
}
uring=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)
if [ "$uring" = 0 ]; then ok "io_uring enabled"; else bad "kernel.io_uring_disabled = $uring (tollgate needs io_uring)"; fi
kernel=$(uname -r); major=${kernel%%.*}; rest=${kernel#*.}; minor=${rest%%.*}
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 1 ]; }; then ok "kernel $kernel (DEFER_TASKRUN needs >= 6.1)"; else bad "kernel $kernel: need >= 6.1 for IORING_SETUP_DEFER_TASKRUN"; fi
sysctl_at_least net.core.somaxconn 4096
sysctl_at_least net.ipv4.tcp_max_syn_backlog 4096
sysctl_at_least fs.file-max 1048576
range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo "32768 60999")
lo=${range%%[[:space:]]*}; hi=${range##*[[:space:]]}
if [ $((hi - lo)) -ge 50000 ]; then ok "ip_local_port_range = $lo-$hi"; else warn "ip_local_port_range = $lo-$hi: $((hi - lo)) ports for upstream connections per destination (want >= 50000)"; fi
nofile=$(ulimit -n)
if [ "$nofile" = unlimited ] || [ "$nofile" -ge 65536 ]; then ok "open files (ulimit -n) = $nofile"; else warn "open files (ulimit -n) = $nofile in this shell; the systemd unit sets LimitNOFILE=1048576"; fi
cpus=$(nproc)
ok "$cpus CPUs available: [engine] shards = 0 runs $cpus shards"
irqb=$(pgrep -x irqbalance >/dev/null && echo running || echo absent)
[ "$irqb" = running ] && warn "irqbalance is running: for the last few percent, pin NIC IRQs away from shard CPUs (tuning/README.md)" || ok "irqbalance not running"
exit $fail
