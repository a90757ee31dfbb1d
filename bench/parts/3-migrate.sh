#!/usr/bin/env bash
# Part 3: spm migrate (stop, post) vs plain CRIU migration between two namespace hosts.
#
# Runs the migration benchmark of the test tree (tests/migrate/
# bench_migrate_modes.sh, through `meson test --benchmark --suite
# migrate-bench`, so it gets the same two namespace hosts, spmds, CA and
# plain-CRIU script as the migration tests): kvs holding 64 MiB of values,
# the init of its own PID namespace, moved from host a to host b by
#   plain-stop  criu dump, images over TCP, criu restore (no SPM plugin: the
#               enclave's memory is copied as it is)
#   plain-post  the same with criu --lazy-pages and a page server
#   spm-stop    spm migrate --mode stop
#   spm-post    spm migrate --mode post
# in two shapes: "64MiB" (kvs as it is) and "1GiB" (the same kvs made a
# 1 GiB process by 960 MiB of ordinary memory it holds besides: the shape of
# the post-copy target). Every run starts a fresh kvs; each method runs
# once as a warm-up, then BENCH_RUNS times in turn. Total time is from the
# command's start to the process running at b with all its memory there
# (post-copy: until the last page has arrived); downtime is from the freeze
# to the process running at b (for SPM: with its enclave imported). Ratios
# are SPM over plain CRIU in the same mode, within the same run. --quick
# measures only the 64MiB shape.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

configs="64m 1g"
[ "${BENCH_QUICK:-0}" = 1 ] && configs="64m"
methods="plain-stop spm-stop plain-post spm-post"

group_of() { case $1 in 64m) echo 64MiB ;; 1g) echo 1GiB ;; esac; }

plot() {
    local dir=$1 summary=$1/../summary.csv data
    data=$(mktemp)
    for c in $configs; do
        local g
        g=$(group_of "$c")
        awk -F, -v g="$g" '
            $1 == "3-migrate" && $2 == g { med[$3] = $6; lo[$3] = $7; hi[$3] = $8 }
            END {
                n = split("plain_stop spm_stop plain_post spm_post", m, " ")
                for (i = 1; i <= n; i++) {
                    d = m[i] "_downtime"; t = m[i] "_total"
                    label = m[i]
                    sub(/_/, "-", label)
                    printf "%s %s,%s,%s,%s,%s,%s,%s\n", g, label, med[d], lo[d], hi[d], med[t], lo[t], hi[t]
                }
            }' "$summary"
    done >"$data"
    {
        bench_gnuplot_head "$dir/migrate-modes.png" \
            "kvs with 64 MiB of enclave state, host a -> b: downtime and total (median ms, min-max)"
        cat <<EOF2
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set ylabel "ms (log scale: the 1 GiB shape moves 16 times the memory)"
set logscale y
set yrange [100:*]
set xtics rotate by -30
set key outside right top vertical
plot "$data" using 2:3:4:xtic(1) title "downtime", \
     "" using 5:6:7 title "total"
EOF2
    } | gnuplot
    rm -f "$data"
}

run() {
    [ -f "$BENCH_BUILD/build.ninja" ] || bench_die "no build in $BENCH_BUILD"
    meson introspect "$BENCH_BUILD" --benchmarks 2>/dev/null | grep -q migrate-bench ||
        bench_die "$BENCH_BUILD has no migrate-bench benchmark (configure it with -Dtests=true)"
    local rows
    rows=$(mktemp)
    bench_log "migrating kvs ($configs) $((BENCH_RUNS + 1)) times per method (one warm-up)"
    BENCH_RUNS=$BENCH_RUNS BENCH_CONFIGS=$configs BENCH_OUT=$rows \
        meson test -C "$BENCH_BUILD" --benchmark --suite migrate-bench --verbose >&2 ||
        bench_die "the migration benchmark failed (see the log above)"
    bench_info link "veth pair through a bridge between two network namespaces on this machine"
    bench_info process "kvs (4 worker threads, 4 TCS), 4096 values of 16 KiB; 1GiB: plus 960 MiB of ordinary memory"
    python3 - "$rows" "$BENCH_PART" <<'PY'
import csv, sys
rows, part = list(csv.DictReader(open(sys.argv[1]))), sys.argv[2]
group = {"64m": "64MiB", "1g": "1GiB"}
by = {}
for r in rows:
    by.setdefault((r["config"], int(r["run"])), {})[r["method"]] = r
for (config, run), m in sorted(by.items()):
    g = group[config]
    for method, r in m.items():
        key = method.replace("-", "_")
        print(f"sample,{part},{g},{key}_downtime,ms,{run},{float(r['downtime_ms']):.3f}")
        print(f"sample,{part},{g},{key}_total,ms,{run},{float(r['total_ms']):.3f}")
    for mode in ("stop", "post"):
        s, p = m.get("spm-" + mode), m.get("plain-" + mode)
        if s and p:
            for what in ("downtime", "total"):
                ratio = float(s[what + "_ms"]) / float(p[what + "_ms"])
                print(f"sample,{part},{g},spm_{mode}_vs_plain_{what},x,{run},{ratio:.4f}")
PY
    rm -f "$rows"
    case $configs in
    *1g*) bench_target 1GiB spm_post_downtime "<=" 150 \
        "post-copy downtime, 1 GiB process with 64 MiB of enclave state <= 150 ms" ;;
    esac
}

case "${1:-}" in
run) run ;;
plot) plot "$2" ;;
*)
    echo "usage: $0 run | plot DIR (started by bench/run)" >&2
    exit 2
    ;;
esac
