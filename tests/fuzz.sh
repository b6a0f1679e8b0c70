#!/usr/bin/env bash
# A bounded run of every cargo-fuzz target (FUZZ_SECONDS each, default 15), from the
# committed seed corpora. Prints executions per target; any crash fails the run and leaves
# the input under <crate>/fuzz/artifacts/<target>/. Long runs: see tests/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-15}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing (tests/deps.sh installs it)" >&2
    exit 1
fi
# cargo-fuzz wants a nightly compiler; stable acts as one with RUSTC_BOOTSTRAP=1.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
# No sanitizer: the crates forbid `unsafe`, so ASan would find nothing safe Rust does
# not already catch, and it would double the build.
build=(--sanitizer none)

# crate dir : targets
suites=(
    "codecs:pg_frames pg_frontend pg_backend http_request h1_request websocket_frames sftp_packets sql_classify mysql_packets"
    ".:mask_scan jwt_verify recorder_segment"
)
# The instrumented release builds are the slow part (the whole gateway for the
# root crate): they live in a per-machine cache outside the checkout, so a
# machine that has built them once (a developer's, CI's) only rebuilds what
# changed, as for the tools deps.sh installs.
cache="${TOLLGATE_BUILD_CACHE:-$HOME/.cache/tollgate}"
summary=()
for suite in "${suites[@]}"; do
    dir="${suite%%:*}"
    targets="${suite#*:}"
    name=root; [ "$dir" = . ] || name="$dir"
    export CARGO_TARGET_DIR="$cache/fuzz-$name"
    (cd "$dir" && "${fuzz[@]}" build "${build[@]}")
    for t in $targets; do
        corpus="$dir/fuzz/corpus/$t"
        mkdir -p "$corpus"
        log=$(mktemp)
        if ! (cd "$dir" && "${fuzz[@]}" run "${build[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
            -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
            tail -40 "$log" >&2
            echo "fuzz: $t FAILED (input saved under $dir/fuzz/artifacts/$t/)" >&2
            rm -f "$log"
            exit 1
        fi
        execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
        summary+=("$t: ${execs:-?} executions in ${secs}s")
        rm -f "$log"
    done
done
printf 'fuzz: %s\n' "${summary[@]}"
