#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotently), builds, and runs
# every unit, corpus and end-to-end test against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/deps.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast
