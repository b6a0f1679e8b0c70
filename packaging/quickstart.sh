#!/usr/bin/env bash
# Quickstart: builds tollgate, starts a real upstream and the gateway on free
# loopback ports, and shows traffic going through it. Run as root on Debian;
# installs what it needs. Everything lives under a temp dir and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d /tmp/tollgate-quickstart.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

say "building (release)"
cargo build --release --locked -p tollgate -p tollgate-bench 2>&1 | tail -n 2
bin=target/release

up=$(free_port); gw=$(free_port)
say "starting an echo upstream on 127.0.0.1:$up"
"$bin/tollgate-load" echo --listen "127.0.0.1:$up" >"$work/echo.log" 2>&1 & pids+=($!)
wait_port "$up"

cat >"$work/tollgate.toml" <<TOML
[engine]
shards = 2
shutdown_grace = "5s"

[[target]]
name = "echo"
protocol = "tcp"
listen = ["127.0.0.1:$gw"]
upstream = "127.0.0.1:$up"
unauthenticated = true      # tcp without mTLS: loopback only
idle_timeout = "1m"
TOML
say "tollgate check"
"$bin/tollgate" check --config "$work/tollgate.toml"
say "starting tollgate on 127.0.0.1:$gw"
"$bin/tollgate" run --config "$work/tollgate.toml" 2>"$work/tollgate.log" & pids+=($!)
wait_port "$gw"

say "a session through the gateway"
printf 'hello through tollgate\n' | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)
print(s.makefile("rb").read().decode(), end="")' "$gw"

say "load: 64 B ping-pong, 8 connections, 3 s"
"$bin/tollgate-load" tcp ping --addr "127.0.0.1:$gw" --connections 8 --size 64 --duration 3s

say "the gateway's log"
tail -n 6 "$work/tollgate.log"
echo; echo "files: $work"
