# bench/scripts/pg-percentiles.awk — latency percentiles for compare-pg.sh.
# Input: one latency in µs per line, sorted ascending (sort -n).
# Output: "n<TAB>p50<TAB>p99<TAB>mean", nearest-rank percentiles.
function rank(q,    i) { i = int(q * n); if (i < q * n) i++; if (i < 1) i = 1; return v[i] }
NF > 0 { v[++n] = $1 + 0; sum += $1 }
END {
    if (n == 0) { print "0\t-\t-\t-"; exit 1 }
    printf "%d\t%d\t%d\t%.1f\n", n, rank(0.50), rank(0.99), sum / n
}
