# bench/scripts/mysql-summary.awk — the Markdown table of compare-mysql.sh.
# Usage: awk -f mysql-summary.awk -v relays=a,b -v tests=t1,t2 runs.tsv [threads.tsv]
# runs.tsv: round relay test tps qps queries p95_ms errors relay_cpu_us_per_query db_cpu_us_per_query load1 db_tls_logins
# threads.tsv: round relay test thread cpu_us_per_query sleeps_per_query
# Medians over rounds; ratios are against the relay `direct`.
function median(key,    n, i, j, t, v) {
    n = count[key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = vals[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, value) { if (value == "-" || value == "" || value == "FAIL") return; vals[key, ++count[key]] = value + 0 }
function num(v, fmt) { return (v == "") ? "–" : sprintf(fmt, v) }
FNR == 1 { file++; next }
file == 2 {
    k = $2 SUBSEP $3 SUBSEP $4
    if (!(k in seen)) { seen[k] = 1; order[++nth] = k }
    add(k SUBSEP "cpu", $5); add(k SUBSEP "sleeps", $6)
    next
}
{
    key = $2 SUBSEP $3
    add(key SUBSEP "tps", $4); add(key SUBSEP "qps", $5); add(key SUBSEP "p95", $7)
    add(key SUBSEP "cpu", $9); add(key SUBSEP "db", $10); add("load", $11); add(key SUBSEP "tls", $12)
    runs[key]++
    if ($4 == "FAIL") fails[key]++
    # Per-round ratio to direct, when both ran: the median of these is the
    # comparable number (each pair ran minutes apart, not hours).
    if ($4 != "FAIL") tps_of[$1, $2, $3] = $4
}
END {
    nr = split(relays, R, ","); nt = split(tests, T, ",")
    for (k in tps_of) {
        split(k, p, SUBSEP)
        d = tps_of[p[1], "direct", p[3]]
        if (d != "" && d > 0) add(p[2] SUBSEP p[3] SUBSEP "ratio", tps_of[k] / d)
    }
    for (j = 1; j <= nt; j++) {
        printf "### sysbench %s: median over rounds\n\n", T[j]
        printf "| relay | TPS | queries/s | vs direct (median of per-round ratios) | p95 ms | relay CPU µs/query | mariadbd CPU µs/query | TLS logins at MariaDB per run |\n"
        printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for (i = 1; i <= nr; i++) {
            k = R[i] SUBSEP T[j]
            f = (fails[k] > 0) ? sprintf(" (%d/%d failed)", fails[k], runs[k]) : ""
            printf "| %s | %s%s | %s | %s | %s | %s | %s | %s |\n", R[i], num(median(k SUBSEP "tps"), "%.0f"), f,
                num(median(k SUBSEP "qps"), "%.0f"),
                (R[i] == "direct") ? "1.00×" : num(median(k SUBSEP "ratio"), "%.2f×"),
                num(median(k SUBSEP "p95"), "%.2f"), num(median(k SUBSEP "cpu"), "%.1f"),
                num(median(k SUBSEP "db"), "%.1f"), num(median(k SUBSEP "tls"), "%d")
        }
        printf "\n"
    }
    if (nth > 0) {
        printf "### Relay CPU by thread (median per query; sleeps = voluntary context switches)\n\n"
        printf "| relay | test | thread | CPU µs/query | sleeps/query |\n| --- | --- | --- | ---: | ---: |\n"
        for (i = 1; i <= nth; i++) {
            split(order[i], p, SUBSEP)
            c = median(order[i] SUBSEP "cpu")
            if (c < 0.05) continue
            printf "| %s | %s | %s | %s | %s |\n", p[1], p[2], p[3], num(c, "%.1f"), num(median(order[i] SUBSEP "sleeps"), "%.2f")
        }
        printf "\n"
    }
    printf "Median 1-minute load average at the start of the runs: %.2f\n", median("load")
}
