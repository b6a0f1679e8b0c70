#!/usr/bin/env bash
# Instructions (and cycles, where the CPU's counters are visible) per
# statement for the classify bench workload, for any commits, each built the
# same way (release profile, thin LTO) from its own codecs crate with the
# harness in bench/insns. Deterministic, so it can compare commits on a noisy
# shared VM where wall-clock numbers move 2x from hour to hour.
#
#   bench/insns.sh [--criterion ROUNDS] [REV ...]
#       REV: a commit, or "worktree" (the default): the checkout's files,
#       committed or not. --criterion: also build the harness's criterion
#       bench (bench/insns/benches/classify.rs: the lex/classify part of the
#       root's classify bench) for every REV and run the builds one after
#       another, ROUNDS times, printing statements/s and the load average.
#
# Environment: INSNS_DIR (scratch, default /tmp/tollgate-insns; delete it when
# done), MODES (default "lex classify classify_batch"), N1/N2 (iterations of
# the 20-statement mix, default 100/1100).
#
# Method: the harness runs the mix N1 and N2 times; (count(N2) - count(N1)) /
# ((N2 - N1) * 20) is the cost of one statement without start-up or warm-up.
# Counts come from valgrind's callgrind (instructions executed, exact; with
# its cache and branch simulation, an estimate of cycles: Ir + 10 per L1 miss
# or mispredicted branch + 100 per last-level miss, KCachegrind's formula)
# and, when `perf stat` can read the hardware counters (not on the
# development VM, which hides them), perf's instructions and cycles.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${INSNS_DIR:-/tmp/tollgate-insns}
modes=${MODES:-lex classify classify_batch}
n1=${N1:-100}
n2=${N2:-1100}
statements=$(( (n2 - n1) * 20 ))
rounds=0
if [ "${1:-}" = --criterion ]; then
    rounds=${2:?--criterion needs a number of rounds}
    shift 2
fi
revs=("$@")
[ ${#revs[@]} -gt 0 ] || revs=(worktree)
mkdir -p "$dir/bin" "$dir/out"

perf_ok=no
if command -v perf >/dev/null &&
    perf stat -x, -e instructions,cycles true 2>&1 >/dev/null | grep -q '^[0-9]'; then
    perf_ok=yes
fi

# Materialises REV's workspace under $dir/src/NAME, adds the harness and
# builds it; the binary is left at $dir/bin/NAME.
build() {
    local rev=$1 name=$2 src=$dir/src/$2
    rm -rf "$src" && mkdir -p "$src"
    if [ "$rev" = worktree ]; then
        (cd "$root" && git ls-files -co --exclude-standard -z -- Cargo.toml Cargo.lock codecs src bench recorder |
            tar -c --null -T - -f -) | tar -x -C "$src"
    else
        git -C "$root" archive "$rev" | tar -x -C "$src"
    fi
    rm -rf "$src/bench/insns"
    mkdir -p "$src/bench/insns"
    cp -r "$root/bench/insns/Cargo.toml" "$root/bench/insns/src" "$root/bench/insns/benches" \
        "$src/bench/insns/"
    # The commit's own dependency versions (memchr, bytes, ...).
    cp "$src/Cargo.lock" "$src/bench/insns/Cargo.lock"
    (cd "$src/bench/insns" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$dir/target" \
        cargo build --release --offline --quiet)
    cp "$dir/target/release/tollgate-insns" "$dir/bin/$name"
    if [ "$rounds" -gt 0 ]; then
        local exe
        exe=$(cd "$src/bench/insns" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$dir/target" \
            cargo bench --offline --no-run --message-format=json 2>/dev/null |
            grep -o '"executable":"[^"]*/classify-[^"]*"' | cut -d'"' -f4 | tail -n 1)
        cp "$exe" "$dir/bin/$name-criterion"
    fi
}

# Prints "Ir estimated-cycles" of one callgrind run.
callgrind_counts() {
    local out=$dir/out/cg.$$
    valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes \
        --callgrind-out-file="$out" "$@" >/dev/null 2>&1
    awk '/^events:/ { for (i = 2; i <= NF; i++) col[$i] = i - 1 }
         /^(summary|totals):/ {
             for (i = 2; i <= NF; i++) v[i - 1] = $i
             ir = v[col["Ir"]]
             l1 = v[col["I1mr"]] + v[col["D1mr"]] + v[col["D1mw"]]
             ll = v[col["ILmr"]] + v[col["DLmr"]] + v[col["DLmw"]]
             bm = v[col["Bcm"]] + v[col["Bim"]]
             printf "%d %d\n", ir, ir + 10 * (l1 + bm) + 100 * ll
             exit
         }' "$out"
    rm -f "$out"
}

# Prints "instructions cycles" of one perf stat run.
perf_counts() {
    perf stat -x, -e instructions:u,cycles:u "$@" 2>&1 >/dev/null |
        awk -F, '/instructions/ { i = $1 } /cycles/ { c = $1 } END { printf "%d %d\n", i, c }'
}

per_statement() { awk -v a="$1" -v b="$2" -v n="$statements" 'BEGIN { printf "%.0f", (b - a) / n }'; }

for rev in "${revs[@]}"; do
    name=$rev
    [ "$rev" = worktree ] || name=$(git -C "$root" rev-parse --short "$rev")
    echo "building $rev ..." >&2
    build "$rev" "$name"
done

printf '%-10s %-15s %12s %14s' rev mode "Ir/stmt" "est.cyc/stmt"
[ $perf_ok = yes ] && printf ' %12s %12s' "perf insn" "perf cycles"
printf '\n'
for rev in "${revs[@]}"; do
    name=$rev
    [ "$rev" = worktree ] || name=$(git -C "$root" rev-parse --short "$rev")
    for mode in $modes; do
        read -r ir1 ce1 < <(callgrind_counts "$dir/bin/$name" "$mode" "$n1")
        read -r ir2 ce2 < <(callgrind_counts "$dir/bin/$name" "$mode" "$n2")
        printf '%-10s %-15s %12s %14s' "$name" "$mode" "$(per_statement "$ir1" "$ir2")" \
            "$(per_statement "$ce1" "$ce2")"
        if [ $perf_ok = yes ]; then
            read -r pi1 pc1 < <(perf_counts "$dir/bin/$name" "$mode" "$n1")
            read -r pi2 pc2 < <(perf_counts "$dir/bin/$name" "$mode" "$n2")
            printf ' %12s %12s' "$(per_statement "$pi1" "$pi2")" "$(per_statement "$pc1" "$pc2")"
        fi
        printf '\n'
    done
done

# Criterion, alternating the builds so that each round sees the same load.
for round in $(seq 1 "$rounds"); do
    for rev in "${revs[@]}"; do
        name=$rev
        [ "$rev" = worktree ] || name=$(git -C "$root" rev-parse --short "$rev")
        load=$(cut -d' ' -f1 /proc/loadavg)
        (cd "$dir" && CRITERION_HOME="$dir/criterion" "$dir/bin/$name-criterion" \
            --bench 'classify/(lex|classify)$' --warm-up-time 1 --measurement-time 3 \
            --discard-baseline 2>&1) |
            awk -v r="$round" -v n="$name" -v l="$load" '
                /^classify\// { id = $1 }
                /thrpt:/ && !(id in v) { v[id] = $(NF - 3) " " $(NF - 2) }
                END { printf "round %s %-10s lex %s  classify %s  (load %s)\n", r, n, v["classify/lex"], v["classify/classify"], l }'
    done
done
