# bench/scripts/pg-summary.awk — the Markdown tables of compare-pg.sh.
# Usage: awk -f pg-summary.awk -v relays=a,b -v modes=simple,extended tps.tsv latency.tsv [threads.tsv]
# tps.tsv:     round relay mode tps transactions failed relay_cpu_us_per_txn load1
# latency.tsv: round relay n p50_us p99_us mean_us load1
# threads.tsv: round relay mode thread cpu_us_per_txn sleeps_per_txn
# Medians over rounds; ratios and added latency are against the relay `direct`.
function median(key,    n, i, j, t, v) {
    n = count[key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = vals[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, value) { if (value == "-" || value == "" || value == "FAIL") return; vals[key, ++count[key]] = value + 0 }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "–" : sprintf("%.2f×", a / b) }
function num(v, fmt) { return (v == "") ? "–" : sprintf(fmt, v) }
function added(a, b) { return (a == "" || b == "") ? "–" : sprintf("%+d", a - b) }
FNR == 1 { file++; next }
file == 1 {
    key = $2 SUBSEP $3
    add(key SUBSEP "tps", $4); add(key SUBSEP "cpu", $7); add("load", $8)
    runs[key]++
    if ($4 == "FAIL") fails[key]++
}
file == 2 {
    add($2 SUBSEP "p50", $4); add($2 SUBSEP "p99", $5); add($2 SUBSEP "mean", $6); add("load", $7)
    latruns[$2]++; nlat++
}
file == 3 {
    k = $2 SUBSEP $3 SUBSEP $4
    if (!(k in seen)) { seen[k] = 1; order[++nth] = k }
    add(k SUBSEP "cpu", $5); add(k SUBSEP "sleeps", $6)
}
END {
    nr = split(relays, R, ","); nm = split(modes, M, ",")
    printf "### Throughput: pgbench -S, median tps over rounds\n\n"
    printf "| relay |"
    for (j = 1; j <= nm; j++) printf " -M %s tps | vs direct | relay CPU µs/txn |", M[j]
    printf "\n| --- |"
    for (j = 1; j <= nm; j++) printf " ---: | ---: | ---: |"
    printf "\n"
    for (i = 1; i <= nr; i++) {
        r = R[i]; printf "| %s |", r
        for (j = 1; j <= nm; j++) {
            k = r SUBSEP M[j]
            t = median(k SUBSEP "tps"); d = median("direct" SUBSEP M[j] SUBSEP "tps")
            f = (fails[k] > 0) ? sprintf(" (%d/%d failed)", fails[k], runs[k]) : ""
            printf " %s%s | %s | %s |", num(t, "%.0f"), f, (r == "direct") ? "1.00×" : ratio(t, d), num(median(k SUBSEP "cpu"), "%.1f")
        }
        printf "\n"
    }
    if (nlat > 0) latency_table()
    if (nth > 0) {
        printf "\n### Relay CPU by thread (median per transaction of the throughput runs; sleeps = voluntary context switches)\n\n"
        printf "| relay | mode | thread | CPU µs/txn | sleeps/txn |\n| --- | --- | --- | ---: | ---: |\n"
        for (i = 1; i <= nth; i++) {
            split(order[i], p, SUBSEP)
            c = median(order[i] SUBSEP "cpu")
            if (c < 0.05) continue
            printf "| %s | %s | %s | %s | %s |\n", p[1], p[2], p[3], num(c, "%.1f"), num(median(order[i] SUBSEP "sleeps"), "%.2f")
        }
    }
    printf "\nMedian 1-minute load average at the start of the runs: %.2f\n", median("load")
}
function latency_table(    i, r, p50, p99, d50, d99) {
    printf "\n### Latency: 1 client, pgbench -S -M simple, per-transaction µs (median of per-round percentiles)\n\n"
    printf "| relay | p50 µs | p99 µs | mean µs | added p50 µs | added p99 µs |\n| --- | ---: | ---: | ---: | ---: | ---: |\n"
    d50 = median("direct" SUBSEP "p50"); d99 = median("direct" SUBSEP "p99")
    for (i = 1; i <= nr; i++) {
        r = R[i]
        if (!(r in latruns)) continue
        p50 = median(r SUBSEP "p50"); p99 = median(r SUBSEP "p99")
        printf "| %s | %s | %s | %s | %s | %s |\n", r, num(p50, "%d"), num(p99, "%d"),
            num(median(r SUBSEP "mean"), "%.1f"),
            (r == "direct") ? "–" : added(p50, d50), (r == "direct") ? "–" : added(p99, d99)
    }
}
