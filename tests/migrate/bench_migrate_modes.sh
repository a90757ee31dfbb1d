#!/usr/bin/env bash
# Benchmark, not a test (meson test --benchmark --suite migrate-bench; run by
# bench/run as its part 3): kvs holding 64 MiB of values (4096 x 16 KiB), the
# init of its own PID namespace, moved from host a to host b, per mode, next
# to plain CRIU moving the same kind of process over the same link in the
# same run:
#   plain-stop  scripts/plain-migrate.sh (criu dump, tar over TCP, restore)
#   plain-post  scripts/plain-migrate.sh --lazy-pages
#   spm-stop    spm migrate --mode stop
#   spm-post    spm migrate --mode post
# Plain CRIU runs without the SPM plugin: the enclave's memory is copied as
# it is, which is what it costs to move this process with CRIU alone (and
# exactly what SPM exists to avoid). Each run starts a fresh kvs, loads it,
# moves it, reads a value back at b and ends it.
#
# Configurations (BENCH_CONFIGS, default "64m"): 64m is kvs as it is (about
# 70 MB of memory CRIU copies, nearly all of it the enclave's); 1g is the
# same kvs made a 1 GiB process by 960 MiB of ordinary memory it holds
# besides (bench_ballast.so, preloaded), the shape of the post-copy target.
# BENCH_RUNS (default 3) runs per method and configuration, after one
# warm-up run of each that is not counted. Prints one line per run and a
# table of medians (min-max) with each SPM mode's ratio to plain CRIU in the
# same mode; BENCH_OUT=FILE also writes the rows as CSV
# (config,method,run,total_ms,downtime_ms).
set -euo pipefail
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require redis-cli python3 unshare
spm_setup
spm_host_up a b
IP=10.77.0.100
KEYS=4096
RUNS=${BENCH_RUNS:-3}
CONFIGS=${BENCH_CONFIGS:-64m}
ROWS=$MIGRATE_WORK/rows.csv
echo "config,method,run,total_ms,downtime_ms" >"$ROWS"

load() {
    python3 - "$IP" "$KEYS" <<'EOF'
import socket, sys, time
ip, keys = sys.argv[1], int(sys.argv[2])
# The address just moved back to host a: neighbours may still name b.
for attempt in range(100):
    try:
        s = socket.create_connection((ip, 6379), timeout=120)
        break
    except OSError:
        if attempt == 99:
            raise
        time.sleep(0.05)
for base in range(0, keys, 512):
    n = min(512, keys - base)
    buf = bytearray()
    for i in range(base, base + n):
        v = ((b"bench-%05d-" % i) * 1500)[:16384]
        buf += b"*3\r\n$3\r\nSET\r\n$9\r\nkey:%05d\r\n$%d\r\n%s\r\n" % (i, len(v), v)
    s.sendall(bytes(buf))
    got = b""
    while got.count(b"\r\n") < n:
        got += s.recv(65536)
    assert got == b"+OK\r\n" * n, got[:80]
EOF
}

one() {
    local config=$1 method=$2 run=$3 json new_pid
    case $config in
    64m) SPM_KVS_PIDNS=1 spm_kvs_start a "$IP" ;;
    1g)
        [ -f "${BENCH_BALLAST_SO:-}" ] || mig_fail "BENCH_BALLAST_SO does not name bench_ballast.so"
        LD_PRELOAD=$BENCH_BALLAST_SO BENCH_BALLAST_MB=960 BENCH_BALLAST_EXE=$(basename "$CR_KVS") \
            SPM_KVS_PIDNS=1 spm_kvs_start a "$IP"
        ;;
    *) mig_fail "unknown configuration '$config' (64m, 1g)" ;;
    esac
    load || mig_fail "loading 64 MiB into kvs failed"
    case $method in
    plain-stop | plain-post)
        local -a lazy=()
        [ "$method" == plain-stop ] || lazy=(--lazy-pages)
        json=$("$MIGRATE_PLAIN_SH" "$KVS_PID" a b --service-ip "$IP" --json "${lazy[@]}" 2>"$MIGRATE_WORK/plain.err" | tail -n 1) ||
            mig_fail "$method failed: $(tail -n 3 "$MIGRATE_WORK/plain.err")"
        ;;
    spm-stop | spm-post)
        spm_migrate a "$KVS_PID" b --mode "${method#spm-}" --move-ip "$IP/24" --json >/dev/null
        [ "$MIGRATE_STATUS" -eq 0 ] || mig_fail "$method failed: $(tail -n 2 "$MIGRATE_WORK/migrate.err")"
        json=$(tail -n 1 "$MIGRATE_WORK/migrate.out")
        ;;
    esac
    # Both totals run until the last page has arrived: plain CRIU's report
    # counts its post-copy phase apart (postcopy_ms), spm's includes it.
    # spm's phases follow each run's line, to show what bounds it.
    local phases
    read -r total downtime new_pid phases < <(python3 -c '
import json, sys
r, method = json.loads(sys.argv[1]), sys.argv[2]
total = r["total_ms"] + (r.get("postcopy_ms", 0) if method == "plain-post" else 0)
keys = ("export_ms", "dump_ms", "transfer_ms", "restore_ms", "handover_ms", "resume_ms",
        "postcopy_ms")
phases = " ".join("%s=%.0f" % (k[:-3], r[k]) for k in keys if k in r) if method.startswith("spm") else ""
print(total, r["downtime_ms"], r.get("new_pid", 0), phases)' "$json" "$method")
    [ "$new_pid" != 0 ] || new_pid=$KVS_PID
    MIGRATE_PIDS+=("$new_pid")
    [ "$(redis-cli -h "$IP" --raw get key:04095 | head -c 16384 | wc -c)" == 16384 ] ||
        mig_fail "$method: the value is not at b"
    [ "$run" -eq 0 ] || echo "$config,$method,$run,$total,$downtime" >>"$ROWS"
    printf '  %-4s %-10s run %d%s: total %8.1f ms  downtime %8.1f ms%s\n' "$config" "$method" \
        "$run" "$([ "$run" -eq 0 ] && echo ' (warm-up)')" "$total" "$downtime" "${phases:+  ($phases)}"
    kill -KILL "$new_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [ -e "/proc/$new_pid" ] || break
        sleep 0.05
    done
}

for config in $CONFIGS; do
    for ((run = 0; run <= RUNS; run++)); do
        for method in plain-stop spm-stop plain-post spm-post; do
            one "$config" "$method" "$run"
        done
    done
done
[ -z "${BENCH_OUT:-}" ] || cp "$ROWS" "$BENCH_OUT"

python3 - "$ROWS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def stats(config, method, key):
    v = [float(r[key]) for r in rows if r["config"] == config and r["method"] == method]
    return statistics.median(v), min(v), max(v)
for config in dict.fromkeys(r["config"] for r in rows):
    runs = len([r for r in rows if r["config"] == config and r["method"] == "spm-stop"])
    what = "64 MiB of values" if config == "64m" else "64 MiB of values in a 1 GiB process"
    print("\nkvs with %s, host a -> host b, %d runs each (median, min-max):" % (what, runs))
    print("%-11s %-26s %-26s" % ("method", "total ms", "downtime ms"))
    for m in ("plain-stop", "spm-stop", "plain-post", "spm-post"):
        t, d = stats(config, m, "total_ms"), stats(config, m, "downtime_ms")
        print("%-11s %7.1f (%6.1f-%6.1f)     %7.1f (%6.1f-%6.1f)" % (m, *t, *d))
    for mode in ("stop", "post"):
        s, p = stats(config, "spm-" + mode, "downtime_ms")[0], stats(config, "plain-" + mode, "downtime_ms")[0]
        st, pt = stats(config, "spm-" + mode, "total_ms")[0], stats(config, "plain-" + mode, "total_ms")[0]
        print("spm-%s / plain-%s: downtime %.2fx (%+.1f ms), total %.2fx (%+.1f ms)" %
              (mode, mode, s / p, s - p, st / pt, st - pt))
EOF
cr_log "PASS"
