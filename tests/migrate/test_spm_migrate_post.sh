#!/usr/bin/env bash
# spm migrate --mode post (post-copy through CRIU lazy-pages, its page
# stream tunnelled between the spmds): kvs, the init of its own PID
# namespace, moves from host a to host b under redis-benchmark load.
# Every value, the INCR counters and the signing key arrive, the clients
# finish without an error, an idle connection opened before answers after,
# the source process is gone and exactly one copy runs (in b, under a new
# host pid). The report names the post-copy phase. Then what post-copy must
# refuse or undo: a process that is not the init of its own PID namespace is
# refused before anything happens, and a destination whose restore fails
# leaves the process running on the source with its state.
#
# kvs here is built without sanitizers even in the ASan build (spmd and spm
# keep theirs): CRIU's lazy dump of an ASan process (whose shadow spans
# about 20 TB of address space) grew past 24 GB and was killed for want of
# memory.
set -euo pipefail
CR_KVS=${CR_KVS_UNSANITIZED:?run from meson}
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require redis-cli redis-benchmark python3 unshare
spm_setup
spm_host_up a b
IP=10.77.0.100
IP2=10.77.0.101
cli() { redis-cli -h "$IP" "$@"; }

# 1. A process in the machine's PID namespace: post-copy is refused, with
#    the reason, and it serves on.
spm_kvs_start a "$IP2"
plain_pid=$KVS_PID
redis-cli -h "$IP2" set before refusal >/dev/null
spm_migrate a "$plain_pid" b --mode post --move-ip "$IP2/24"
[ "$MIGRATE_STATUS" -ne 0 ] || mig_fail "post-copy of a process outside its own PID namespace was not refused"
grep -q "init of its own PID namespace" "$MIGRATE_WORK/migrate.err" ||
    mig_fail "the refusal does not say why: $(cat "$MIGRATE_WORK/migrate.err")"
spm_assert_one_copy "$plain_pid" a
[ "$(redis-cli -h "$IP2" get before)" == "refusal" ] || mig_fail "kvs on $IP2 lost its value"
kill "$plain_pid"
cr_log "post-copy of a process outside its own PID namespace: refused, it runs on"

# 2. The real one: kvs as the init of its own PID namespace, 16 MiB of
#    values, under load.
SPM_KVS_PIDNS=1 spm_kvs_start a "$IP"
cr_log "kvs pid $KVS_PID (pid 1 of its own PID namespace) in host a on $IP"
spm_kvs_data load "$IP" 1000 post >/dev/null || mig_fail "loading kvs failed"
for i in $(seq 1 50); do cli incrby "ctr:$i" "$i" >/dev/null; done
pub=$(cli --raw KVS.PUBKEY)
[[ $pub =~ ^04[0-9a-f]{128}$ ]] || mig_fail "KVS.PUBKEY: [$pub]"

# 2a. The destination's restore fails: rolled back, kvs runs on in a.
spm_spmd_kill b
SPM_HOST_FAULT_B=dest-restore-fail spm_spmd_start b
spm_migrate a "$KVS_PID" b --mode post --move-ip "$IP/24"
[ "$MIGRATE_STATUS" -ne 0 ] || mig_fail "the migration succeeded although b's restore failed"
grep -q "rolled back" "$MIGRATE_WORK/migrate.err" ||
    mig_fail "no rollback reported: $(cat "$MIGRATE_WORK/migrate.err")"
spm_assert_one_copy "$KVS_PID" a
mig_host_has_ip a "$IP" || mig_fail "the service address did not come back to a"
[ "$(cli get ctr:50)" == "50" ] || mig_fail "after the rollback ctr:50 is [$(cli get ctr:50)]"
[ "$(cli --raw KVS.PUBKEY)" == "$pub" ] || mig_fail "the signing key changed in the rollback"
cr_log "post-copy with a failing destination restore: rolled back, kvs runs on in a"

# 2b. Under load, for real. While b restores, nothing may answer a client
#     for the service address (an answer from a half-restored host is a
#     reset): a CRIU action script, given to b's spmd in a CRIU
#     configuration file, dials the address from inside b at post-restore
#     (sockets restored, restore not yet returned) and must not get through.
probe_conf=$(spm_criu_action_conf probe post-restore <<EOF
if ! ip -o addr show | grep -q " $IP/"; then
    echo "the service address is not up" >>"$MIGRATE_WORK/probe.out"
elif timeout 0.5 bash -c 'exec 3<>/dev/tcp/$IP/6379' 2>/dev/null; then
    echo "connected" >>"$MIGRATE_WORK/probe.out"
else
    echo "dropped" >>"$MIGRATE_WORK/probe.out"
fi
EOF
)
spm_spmd_kill b
SPM_HOST_CRIU_CONFIG_B=$probe_conf spm_spmd_start b

redis-benchmark -h "$IP" -t incr -n 200000 -c 8 -q >"$MIGRATE_WORK/bench.out" 2>&1 &
BENCH=$!
MIGRATE_PIDS+=("$BENCH")
exec 3<>"/dev/tcp/$IP/6379"
sleep 1
kill -0 "$BENCH" 2>/dev/null || mig_fail "redis-benchmark ended before the migration"
spm_migrate a "$KVS_PID" b --mode post --move-ip "$IP/24" --json
[ "$MIGRATE_STATUS" -eq 0 ] || mig_fail "spm migrate --mode post failed ($MIGRATE_STATUS)"
report=$(tail -n 1 "$MIGRATE_WORK/migrate.out")
new_pid=$(python3 - "$report" "$KVS_PID" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
assert r["ok"] is True and r["mode"] == "post", r
for k in ("total_ms", "downtime_ms", "enclave_bytes", "criu_bytes", "handover_ms"):
    assert isinstance(r[k], (int, float)) and r[k] > 0, k
assert r["downtime_ms"] <= r["total_ms"], r
assert r["enclave_bytes"] > 1000 * 16384, r["enclave_bytes"]
# The sealed state went with the images (shared image buffer), not page by
# page after the restore.
assert r["postcopy_bytes"] < r["enclave_bytes"] // 2, r
assert r["new_pid"] != int(sys.argv[2]), r
sys.stderr.write("report: total %.1f ms, downtime %.1f ms, post-copy %.1f ms more, "
                 "%d B of pages after the restore\n" % (
    r["total_ms"], r["downtime_ms"], r["postcopy_ms"], r["postcopy_bytes"]))
print(r["new_pid"])
EOF
) || mig_fail "the --json report is not what it should be: $report"
grep -q 'phase=post-copy\|post-copy ' "$MIGRATE_WORK/migrate.err" || mig_fail "no post-copy progress was shown"
for ((i = 0; i < 100; i++)); do
    [ -z "$(spm_copies "$KVS_PID")" ] && break
    sleep 0.05
done
[ -z "$(spm_copies "$KVS_PID")" ] || mig_fail "the source copy (pid $KVS_PID) still runs in $(spm_copies "$KVS_PID")"
spm_assert_one_copy "$new_pid" b
MIGRATE_PIDS+=("$new_pid")
spm_assert_clients_moved a b "$IP" "$BENCH"
locks=$(mig_nft_tables a | awk '$2 ~ /^CRIU-/ {print $2}' | tr '\n' ' ')
[ -z "$locks" ] || mig_fail "CRIU lock tables left in host a after the rollback and the move: $locks"
[ "$(cat "$MIGRATE_WORK/probe.out" 2>/dev/null)" == "dropped" ] ||
    mig_fail "during b's restore, a connection to $IP: [$(cat "$MIGRATE_WORK/probe.out" 2>/dev/null || echo "no probe ran")]"

spm_kvs_data check "$IP" 1000 post >/dev/null || mig_fail "values lost in the post-copy migration"
for i in 1 25 50; do
    [ "$(cli get "ctr:$i")" == "$i" ] || mig_fail "counter ctr:$i is [$(cli get "ctr:$i")], want $i"
done
[ "$(cli get counter:__rand_int__)" == "200000" ] ||
    mig_fail "redis-benchmark INCRs: $(cli get counter:__rand_int__) of 200000 arrived"
[ "$(cli --raw KVS.PUBKEY)" == "$pub" ] || mig_fail "the signing key changed"
cr_log "post-copy: state, counters (200000 INCRs exact) and the signing key arrived on b (pid $new_pid)"
cr_log "PASS"
