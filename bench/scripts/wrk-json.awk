# bench/scripts/wrk-json.awk — wrk's text report (run with --latency) as the
# one-line JSON fields compare-http.sh reads from tollgate-load:
# req_per_s, requests, errors_total (socket errors and non-2xx/3xx
# answers), p50 and p99 in µs.
# Usage: awk -f wrk-json.awk wrk-output.txt
function us(v,    n) {
    n = v + 0
    if (v ~ /us$/) return n
    if (v ~ /ms$/) return n * 1000
    if (v ~ /s$/) return n * 1000000
    return n
}
/^ +50% / { p50 = us($2) }
/^ +99% / { p99 = us($2) }
/ requests in / { requests = $1 }
/^ +Socket errors:/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
/^ +Non-2xx or 3xx responses:/ { errors += $NF }
/^Requests\/sec:/ { rps = $2 }
END {
    if (rps == "" || requests == "") { print "wrk-json.awk: no wrk report" > "/dev/stderr"; exit 1 }
    printf "{\"tool\":\"wrk\",\"req_per_s\":%s,\"requests\":%d,\"errors_total\":%d,\"p50\":%.0f,\"p99\":%.0f}\n", rps, requests, errors, p50, p99
}
