#!/usr/bin/env bash
# spm migrate of kvs from host a to host b under redis-benchmark load (the
# zdtm protocol across hosts): every value, the INCR counters and the
# enclave's signing key arrive; the source process is gone and the copy
# runs in b's namespace; the clients attached across the move finish with
# exact counts and no error; an idle connection opened before answers
# after; the report (text and --json) names times and bytes. Then the
# attacker's replays: the images kept from the move restored again on the
# source, on a third host c, and on the destination: each refused (status
# 75) while the migrated copy keeps serving.
set -euo pipefail
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require redis-cli redis-benchmark python3 openssl nft
spm_setup
# While a's criu dumps kvs, another dump's network lock appears in host a
# (a CRIU action script at post-dump makes one, as a second migration
# from a would): spmd must drop its own dump's lock table and no other.
OTHER_LOCK=CRIU-00000000-0000-0000-00
SPM_HOST_CRIU_CONFIG_A=$(echo "nft add table inet $OTHER_LOCK" | spm_criu_action_conf other-lock post-dump)
spm_host_up a b c
IP=10.77.0.100
spm_kvs_start a "$IP"
cr_log "kvs pid $KVS_PID in host a on $IP"

cli() { redis-cli -h "$IP" "$@"; }

# State: 2000 keys of 16 KiB (32 MiB), counters, the signing key.
spm_kvs_data load "$IP" 2000 kvs >/dev/null || mig_fail "loading kvs failed"
for i in $(seq 1 100); do cli incrby "ctr:$i" "$i" >/dev/null; done
pub=$(cli --raw KVS.PUBKEY)
[[ $pub =~ ^04[0-9a-f]{128}$ ]] || mig_fail "KVS.PUBKEY: [$pub]"
python3 "$CR_KVS_DER" pubkey "$pub" >"$MIGRATE_WORK/pub.pem" || mig_fail "cannot encode the public key"

# Load across the move: INCRs on 8 connections, plus an idle connection.
redis-benchmark -h "$IP" -t incr -n 400000 -c 8 -q >"$MIGRATE_WORK/bench.out" 2>&1 &
BENCH=$!
MIGRATE_PIDS+=("$BENCH")
exec 3<>"/dev/tcp/$IP/6379"
sleep 1
kill -0 "$BENCH" 2>/dev/null || mig_fail "redis-benchmark ended before the migration"

cr_log "migrating pid $KVS_PID a -> b (keeping a copy of the images for the replays)"
spm_migrate a "$KVS_PID" b --move-ip "$IP/24" --keep-images "$MIGRATE_WORK/kept" --json
[ "$MIGRATE_STATUS" -eq 0 ] || mig_fail "spm migrate failed ($MIGRATE_STATUS)"
report=$(tail -n 1 "$MIGRATE_WORK/migrate.out")
python3 - "$report" <<'EOF' || mig_fail "the --json report is not what it should be: $report"
import json, sys
r = json.loads(sys.argv[1])
assert r["ok"] is True
for k in ("total_ms", "downtime_ms", "enclave_bytes", "criu_bytes", "transfer_ms", "handover_ms"):
    assert isinstance(r[k], (int, float)) and r[k] > 0, k
assert r["downtime_ms"] <= r["total_ms"]
assert r["enclave_bytes"] > 2000 * 16384, r["enclave_bytes"]
assert r["criu_bytes"] >= r["enclave_bytes"]
print("report: total %.1f ms, downtime %.1f ms, enclave %d B, criu %d B" % (
    r["total_ms"], r["downtime_ms"], r["enclave_bytes"], r["criu_bytes"]))
EOF
grep -q 'phase=transfer\|transfer ' "$MIGRATE_WORK/migrate.err" || mig_fail "no transfer progress was shown"

spm_assert_one_copy "$KVS_PID" b
spm_assert_clients_moved a b "$IP" "$BENCH"
cr_log "clients across the move: $SPM_BENCH_RESULT"
locks=$(mig_nft_tables a | awk '$2 ~ /^CRIU-/ {print $2}' | tr '\n' ' ')
[ "$locks" == "$OTHER_LOCK " ] ||
    mig_fail "CRIU lock tables in host a after the move: [$locks], want only the other dump's $OTHER_LOCK"

# Every value, counter and the key, on b.
spm_kvs_data check "$IP" 2000 kvs >/dev/null || mig_fail "values lost in the migration"
for i in 1 50 100; do
    [ "$(cli get "ctr:$i")" == "$i" ] || mig_fail "counter ctr:$i is [$(cli get "ctr:$i")], want $i"
done
[ "$(cli get counter:__rand_int__)" == "400000" ] ||
    mig_fail "redis-benchmark INCRs: $(cli get counter:__rand_int__) of 400000 arrived"
[ "$(cli --raw KVS.PUBKEY)" == "$pub" ] || mig_fail "the signing key changed"
sig=$(cli --raw KVS.SIGN after-migration)
python3 "$CR_KVS_DER" sig "$sig" "$MIGRATE_WORK/sig.der" || mig_fail "bad signature encoding"
printf '%s' after-migration >"$MIGRATE_WORK/msg"
openssl dgst -sha256 -verify "$MIGRATE_WORK/pub.pem" -signature "$MIGRATE_WORK/sig.der" \
    "$MIGRATE_WORK/msg" >/dev/null || mig_fail "a signature made after the migration does not verify"
cr_log "state, counters (400000 INCRs exact) and the signing key arrived on b"

# Replays of the kept images: on the source, on a third host, on the
# destination. Each must be refused by that host's ME (exit 75) and leave
# nothing running; the migrated copy keeps serving throughout. The pid and
# the service address are taken by the running copy, so each replay
# restores into new pid and network namespaces holding the address, as an
# attacker owning that host would arrange; the host's platform and ME are
# what decide.
replay() {
    local host=$1 dir=$MIGRATE_WORK/replay-$1 status=0
    rm -rf "$dir"
    cp -a "$MIGRATE_WORK/kept/images" "$dir"
    SPM_PLATFORM=$MIGRATE_WORK/$host/platform SPM_SPMD_SOCKET=$MIGRATE_WORK/$host/spmd.sock \
        unshare --net --pid --fork --mount-proc -- sh -c \
        'ip link set lo up && ip addr add "$1/32" dev lo && ip route add default dev lo && exec "$2" restore -D "$3"' \
        replay "$IP" "$CR_SPM" "$dir" >"$dir.out" 2>&1 || status=$?
    sed 's/^/    /' "$dir.out" | tail -n 4
    [ $status -ne 0 ] || mig_fail "replay on $host: the images restored again"
    grep -q 'exited with status 75' "$dir.out" || mig_fail "replay on $host: the enclave did not refuse it (status 75)"
    cr_log "replay on host $host refused (status $status)"
}
replay a
replay c
replay b
spm_assert_one_copy "$KVS_PID" b
[ "$(cli get ctr:100)" == "100" ] || mig_fail "the migrated copy stopped serving after the replays"
cr_log "PASS"
