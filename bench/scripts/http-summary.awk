# bench/scripts/http-summary.awk — the Markdown table of compare-http.sh.
# Usage: awk -f http-summary.awk -v relays=a,b -v workloads=w1,w2 runs.tsv
# runs.tsv: round relay workload req_per_s p50_us p99_us requests errors relay_cpu_us_per_req nginx_cpu_us_per_req load1 recording_bytes_per_req
# Medians over rounds; ratios are against the relay `direct`, taken per round.
function median(key,    n, i, j, t, v) {
    n = count[key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) v[i] = vals[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, value) { if (value == "-" || value == "" || value == "FAIL") return; vals[key, ++count[key]] = value + 0 }
function num(v, fmt) { return (v == "") ? "–" : sprintf(fmt, v) }
FNR == 1 { next }
{
    key = $2 SUBSEP $3
    add(key SUBSEP "rps", $4); add(key SUBSEP "p50", $5); add(key SUBSEP "p99", $6)
    add(key SUBSEP "cpu", $9); add(key SUBSEP "nginx", $10); add("load", $11); add(key SUBSEP "rec", $12)
    runs[key]++
    if ($4 == "FAIL") fails[key]++
    else { errors[key] += $8; rps_of[$1, $2, $3] = $4; p50_of[$1, $2, $3] = $5; p99_of[$1, $2, $3] = $6 }
}
END {
    nr = split(relays, R, ","); nw = split(workloads, W, ",")
    # Per-round comparisons with direct (each pair ran seconds apart).
    for (k in rps_of) {
        split(k, p, SUBSEP)
        d = rps_of[p[1], "direct", p[3]]
        if (d == "" || d <= 0) continue
        add(p[2] SUBSEP p[3] SUBSEP "ratio", rps_of[k] / d)
        add(p[2] SUBSEP p[3] SUBSEP "add50", p50_of[k] - p50_of[p[1], "direct", p[3]])
        add(p[2] SUBSEP p[3] SUBSEP "add99", p99_of[k] - p99_of[p[1], "direct", p[3]])
    }
    for (j = 1; j <= nw; j++) {
        if (W[j] ~ /^wrk-/) printf "### wrk %s: median over rounds\n\n", substr(W[j], 5)
        else printf "### tollgate-load http %s: median over rounds\n\n", W[j]
        printf "| relay | requests/s | vs direct | p50 µs | p99 µs | added p50 µs | added p99 µs | relay CPU µs/request | requests per relay CPU-second | nginx CPU µs/request | recording bytes/request | errors |\n"
        printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for (i = 1; i <= nr; i++) {
            k = R[i] SUBSEP W[j]
            f = (fails[k] > 0) ? sprintf(" (%d/%d failed)", fails[k], runs[k]) : ""
            direct = (R[i] == "direct")
            cpu = median(k SUBSEP "cpu")
            printf "| %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", R[i], num(median(k SUBSEP "rps"), "%.0f"), f,
                direct ? "1.00×" : num(median(k SUBSEP "ratio"), "%.2f×"),
                num(median(k SUBSEP "p50"), "%d"), num(median(k SUBSEP "p99"), "%d"),
                direct ? "0" : num(median(k SUBSEP "add50"), "%+d"), direct ? "0" : num(median(k SUBSEP "add99"), "%+d"),
                num(cpu, "%.1f"), (cpu > 0) ? sprintf("%.0f", 1e6 / cpu) : "–", num(median(k SUBSEP "nginx"), "%.1f"),
                num(median(k SUBSEP "rec"), "%d"), errors[k]
        }
        printf "\n"
    }
    printf "Median 1-minute load average at the start of the runs: %.2f\n", median("load")
}
