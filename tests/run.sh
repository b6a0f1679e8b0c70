#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotently), builds, and runs
# every unit, corpus and end-to-end test against real servers. Ends with one
# line that totals every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Licenses, banned crates (a second crypto stack next to ring), duplicate versions and
# crate sources (deny.toml). `advisories` needs the RustSec database from GitHub, which this
# machine cannot reach; run `cargo deny check advisories` where it can (tests/README.md).
cargo deny --locked check licenses bans sources
cargo build --workspace --all-targets --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# The Debian package: build from the debug binaries above, lintian, install, start, purge.
tests/package.sh 2>&1 | tee -a "$log" || status=$?
# SQL differential oracle against PostgreSQL's parser (bounded slice).
tests/oracle.sh 2>&1 | tee -a "$log" || status=$?
# A bounded run of every fuzz target (tests/fuzz.sh; FUZZ_SECONDS each).
tests/fuzz.sh 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
