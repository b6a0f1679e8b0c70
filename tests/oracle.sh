#!/usr/bin/env bash
# The SQL differential oracle (codecs/oracle): tollgate's lexer and
# classifier against PostgreSQL 15's own parser (libpg_query). Its own
# workspace and target dir, so the C build never slows the main one.
# Bounded: TOLLGATE_ORACLE_SECONDS (default 30) of generated statements
# after the fixed corpora. Needs libclang and protoc (tests/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../codecs/oracle"
# libpg_query's C build is cached per machine outside the checkout (as
# tests/fuzz.sh does), so only the first run on a machine pays for it.
export CARGO_TARGET_DIR="${TOLLGATE_BUILD_CACHE:-$HOME/.cache/tollgate}/oracle"
export TOLLGATE_ORACLE_SECONDS="${TOLLGATE_ORACLE_SECONDS:-30}"
exec timeout 900 cargo test --release --locked -- --nocapture
