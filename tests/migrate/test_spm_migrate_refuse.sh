#!/usr/bin/env bash
# spm migrate to destinations that must be refused: a platform provisioned
# by another CA (quote does not chain), an ME signed by another key
# (identity), a DEBUG ME while the source's policy forbids debug, a host
# certificate from another cluster CA (TLS), and a --to where no spmd
# listens. The orchestrator attests before anything is dumped, so each
# refusal must leave the source exactly as it was: one kvs on host a, the
# same process (same start time, never frozen: no dump phase, its replies
# keep coming during the attempt), the same data, the counter continuing,
# a connection opened before still answering, the service address still on
# a, no checkpoint escrowed (escrow.sealed unchanged), no migration left in
# the source's state; and nothing received or running on the destination.
set -euo pipefail
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require redis-cli python3
spm_setup

# Source host and service address; overridable only so that a developer can
# run this next to hosts someone else uses by hand (the suite never runs
# two migration tests at once).
SRC=${SPM_REFUSE_SOURCE:-a}
IP=${SPM_REFUSE_IP:-10.77.0.100}
UNREACHABLE=10.77.0.9 # host i: this test never brings it up
ERR_EKEYREJECTED=-129 ERR_EACCES=-13 ERR_EPERM=-1

# The refused destinations, one host each.
"$CR_SPM" ca init --dir "$MIGRATE_WORK/other-provisioning-ca" >/dev/null ||
    mig_fail "spm ca init (other provisioning CA) failed"
"$CR_SPM" ca init --dir "$MIGRATE_WORK/other-cluster-ca" >/dev/null ||
    mig_fail "spm ca init (other cluster CA) failed"
# shellcheck disable=SC2034 # read by spm_host_up through ${!name}
SPM_HOST_CA_C=$MIGRATE_WORK/other-provisioning-ca
# shellcheck disable=SC2034
SPM_HOST_ME_D=${FAKE_ME_OTHER_SIGNER:?run from meson}
# shellcheck disable=SC2034
SPM_HOST_ME_E=${FAKE_ME_DEBUG:?run from meson}
# shellcheck disable=SC2034
SPM_HOST_TLS_CA_F=$MIGRATE_WORK/other-cluster-ca
[ ! -e /run/netns/spm-i ] || mig_fail "host i exists: $UNREACHABLE must have no spmd for case 5"
spm_host_up "$SRC" c d e f
# A host that is up (its address answers) but runs no spmd.
mig_hosts_up g

spm_kvs_start "$SRC" "$IP"
cr_log "kvs pid $KVS_PID in host $SRC on $IP"
cli() { redis-cli -h "$IP" "$@"; }
start_time() { awk '{print $22}' "/proc/$1/stat"; }
KVS_START=$(start_time "$KVS_PID")

# Data: 300 keys of 1 KiB, a counter, the enclave's signing key.
python3 - "$IP" <<'EOF' || mig_fail "loading kvs failed"
import socket, sys
s = socket.create_connection((sys.argv[1], 6379), timeout=30)
buf = bytearray()
for i in range(300):
    v = ((b"r%04d-" % i) * 200)[:1024]
    buf += b"*3\r\n$3\r\nSET\r\n$8\r\nkey:%04d\r\n$%d\r\n%s\r\n" % (i, len(v), v)
s.sendall(bytes(buf))
got = b""
while got.count(b"\r\n") < 300:
    got += s.recv(65536)
assert got == b"+OK\r\n" * 300, got[:100]
EOF
COUNTER=$(cli incrby refuse:counter 41)
[ "$COUNTER" == "41" ] || mig_fail "INCRBY gave [$COUNTER]"
PUB=$(cli --raw KVS.PUBKEY)
[[ $PUB =~ ^04[0-9a-f]{128}$ ]] || mig_fail "KVS.PUBKEY: [$PUB]"
# A connection opened before any attempt, used after each one.
exec 3<>"/dev/tcp/$IP/6379"

escrow_digest() { sha256sum "$MIGRATE_WORK/$1/state/escrow.sealed" 2>/dev/null | cut -c1-64; }
migrations_left() { find "$MIGRATE_WORK/$1/state/migrations" -mindepth 1 2>/dev/null | head -n 5; }

# Processes in host NAME's network namespace other than its spmd.
strangers_in() {
    local name=$1 inode pid
    inode=$(mig_netns_inode "$name")
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" == "$inode" ] || continue
        [ "$pid" != "${SPMD_PID[$name]:-}" ] || continue
        echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
    done
}

# Pings kvs every 5 ms on its own connection until the stop file appears;
# prints the slowest reply in ms and the number of replies. A process frozen
# by a dump would show as a gap of the dump's length. The attempt starts
# once the pinger has had replies (it creates the ready file).
start_pinger() {
    rm -f "$MIGRATE_WORK/pinger.stop" "$MIGRATE_WORK/pinger.ready"
    python3 - "$IP" "$MIGRATE_WORK/pinger.stop" "$MIGRATE_WORK/pinger.ready" \
        >"$MIGRATE_WORK/pinger.out" 2>&1 <<'EOF' &
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 6379), timeout=30)
f = s.makefile("rb")
worst, n = 0.0, 0
while not os.path.exists(sys.argv[2]):
    t = time.monotonic()
    s.sendall(b"PING\r\n")
    assert f.readline() == b"+PONG\r\n"
    worst = max(worst, time.monotonic() - t)
    n += 1
    if n == 3:
        open(sys.argv[3], "w").close()
    time.sleep(0.005)
print("%.1f %d" % (worst * 1000, n))
EOF
    PINGER=$!
    MIGRATE_PIDS+=("$PINGER")
    local i
    for ((i = 0; i < 200; i++)); do
        [ ! -e "$MIGRATE_WORK/pinger.ready" ] || return 0
        kill -0 "$PINGER" 2>/dev/null || mig_fail "the pinger ended: $(cat "$MIGRATE_WORK/pinger.out")"
        sleep 0.025
    done
    mig_fail "the pinger got no replies from kvs"
}

stop_pinger() {
    touch "$MIGRATE_WORK/pinger.stop"
    wait "$PINGER" || mig_fail "the pinger lost kvs during the attempt: $(cat "$MIGRATE_WORK/pinger.out")"
    rm -f "$MIGRATE_WORK/pinger.stop"
    read -r WORST_MS PINGS <"$MIGRATE_WORK/pinger.out"
}

# The source after a refusal: everything as it was, and the counter goes on.
assert_source_untouched() {
    local what=$1 got
    spm_assert_one_copy "$KVS_PID" "$SRC"
    [ "$(start_time "$KVS_PID")" == "$KVS_START" ] ||
        mig_fail "$what: pid $KVS_PID is a new process (restored?), not the one that ran before"
    mig_host_has_ip "$SRC" "$IP" || mig_fail "$what: the service address left host $SRC"
    [ "$(escrow_digest "$SRC")" == "$ESCROW_BEFORE" ] ||
        mig_fail "$what: the source's escrow changed (a checkpoint key was escrowed)"
    got=$(migrations_left "$SRC")
    [ -z "$got" ] || mig_fail "$what: the source kept migration state: $got"
    python3 - "$IP" <<'EOF' || mig_fail "$what: kvs lost data"
import socket, sys
s = socket.create_connection((sys.argv[1], 6379), timeout=30)
f = s.makefile("rb")
for i in range(300):
    s.sendall(b"*2\r\n$3\r\nGET\r\n$8\r\nkey:%04d\r\n" % i)
    n = int(f.readline()[1:])
    assert f.read(n + 2)[:-2] == ((b"r%04d-" % i) * 200)[:1024], i
EOF
    got=$(cli incr refuse:counter)
    [ "$got" == "$((COUNTER + 1))" ] || mig_fail "$what: INCR gave [$got], want $((COUNTER + 1))"
    COUNTER=$got
    [ "$(cli --raw KVS.PUBKEY)" == "$PUB" ] || mig_fail "$what: the signing key changed"
    printf 'PING\r\n' >&3
    IFS= read -r -t 10 got <&3 || mig_fail "$what: the connection opened before got no reply"
    [ "${got%$'\r'}" == "+PONG" ] || mig_fail "$what: the connection opened before got [$got]"
}

# The destination after a refusal: nothing received, nothing running.
assert_destination_empty() {
    local what=$1 dest=$2 got
    got=$(strangers_in "$dest")
    [ -z "$got" ] || mig_fail "$what: processes run in host $dest: $got"
    if mig_host_has_ip "$dest" "$IP"; then mig_fail "$what: the service address is on host $dest"; fi
    [ -z "${SPMD_PID[$dest]:-}" ] || kill -0 "${SPMD_PID[$dest]}" 2>/dev/null ||
        mig_fail "$what: host $dest's spmd died"
}

# A destination that refused (or was refused) keeps no live migration
# state: no image files, no journal short of a final phase (a "receiving"
# journal would make its 'spm recover' ask the source forever, and the
# source has none), and its 'spm recover' has nothing pending.
assert_destination_clean() {
    local dest=$1 got status=0 journal phase
    got=$(find "$MIGRATE_WORK/$dest/state/migrations" -type f ! -name journal 2>/dev/null | head -n 5)
    [ -z "$got" ] || mig_fail "host $dest keeps images of a refused migration: $got"
    for journal in "$MIGRATE_WORK/$dest"/state/migrations/*/journal; do
        [ -e "$journal" ] || continue
        phase=$(sed -n 's/^phase=//p' "$journal")
        case $phase in
        discarded | failed) ;;
        *) mig_fail "host $dest keeps a refused migration in phase '$phase': $journal
$(cat "$journal")" ;;
        esac
    done
    spm_in "$dest" "$CR_SPM" recover --json --socket "$MIGRATE_WORK/$dest/spmd.sock" \
        >"$MIGRATE_WORK/recover-$dest.out" 2>&1 || status=$?
    if [ $status -ne 0 ] || ! grep -q '"pending": 0' "$MIGRATE_WORK/recover-$dest.out"; then
        mig_fail "spm recover on host $dest (status $status): $(cat "$MIGRATE_WORK/recover-$dest.out")"
    fi
}

# refuse CASE DEST_HOST TO STATUS PATTERN ATTESTED: one refused attempt.
# STATUS is the -errno spmd reports (empty: any), PATTERN must be in the
# error on stderr, ATTESTED says whether the attestation started (attest
# phase) before the refusal.
refuse() {
    local what=$1 dest=$2 to=$3 want_status=$4 pattern=$5 attest=$6 out err report t0 t1
    cr_log "case $what: migrate pid $KVS_PID $SRC -> $to"
    ESCROW_BEFORE=$(escrow_digest "$SRC")
    [ -n "$ESCROW_BEFORE" ] || mig_fail "host $SRC has no escrow.sealed to compare"
    start_pinger
    t0=$(date +%s%N)
    MIGRATE_STATUS=0
    spm_in "$SRC" "$CR_SPM" migrate "$KVS_PID" --to "$to" --move-ip "$IP/24" --json \
        --socket "$MIGRATE_WORK/$SRC/spmd.sock" >"$MIGRATE_WORK/migrate.out" \
        2>"$MIGRATE_WORK/migrate.err" || MIGRATE_STATUS=$?
    t1=$(date +%s%N)
    stop_pinger
    sed 's/^/    /' "$MIGRATE_WORK/migrate.out" "$MIGRATE_WORK/migrate.err"
    out=$(cat "$MIGRATE_WORK/migrate.out")
    err=$(cat "$MIGRATE_WORK/migrate.err")
    [ "$MIGRATE_STATUS" -ne 0 ] || mig_fail "$what: spm migrate exited 0"
    report=$(tail -n 1 <<<"$out")
    python3 - "$report" "$want_status" <<'EOF' || mig_fail "$what: the --json answer is wrong: $report"
import json, sys
r = json.loads(sys.argv[1])
assert r["ok"] is False
if sys.argv[2]:
    assert r["status"] == int(sys.argv[2]), (r["status"], sys.argv[2])
else:
    assert r["status"] < 0, r["status"]
assert r["error"]
EOF
    grep -qE "^spm migrate: .*($pattern)" <<<"$err" ||
        mig_fail "$what: stderr does not name the reason /$pattern/"
    grep -qE '^  connect ' <<<"$err" || mig_fail "$what: no connect phase was shown"
    if grep -qE '^  (attested|dump|dumped|transfer|restore|handover|resume|rollback) ' <<<"$err"; then
        mig_fail "$what: the migration went past attestation"
    fi
    if [ "$attest" == yes ]; then
        grep -qE '^  attest ' <<<"$err" || mig_fail "$what: refused before attestation started"
    elif grep -qE '^  attest ' <<<"$err"; then
        mig_fail "$what: attestation started although the peer is not ours at TLS"
    fi
    [ "$PINGS" -gt 3 ] || mig_fail "$what: no PING was answered during the attempt"
    awk -v w="$WORST_MS" 'BEGIN { exit !(w < 2000) }' ||
        mig_fail "$what: kvs stopped answering for $WORST_MS ms during the attempt (frozen?)"
    assert_source_untouched "$what"
    [ -z "$dest" ] || assert_destination_empty "$what" "$dest"
    printf '[%s] refused in %d ms; %d PINGs answered meanwhile, slowest %s ms; counter now %s\n' \
        "$what" $(((t1 - t0) / 1000000)) "$PINGS" "$WORST_MS" "$COUNTER"
}

refuse "1 other provisioning CA" c "$(spm_host_ip c)" $ERR_EKEYREJECTED \
    'does not chain to the trusted provisioning root' yes
refuse "2 ME of another signer" d "$(spm_host_ip d)" $ERR_EACCES \
    'Migration Enclave identity is not allowed' yes
refuse "3 DEBUG ME, source forbids debug" e "$(spm_host_ip e)" $ERR_EPERM \
    'DEBUG Migration Enclave and policy forbids debug' yes
refuse "4 host certificate of another cluster CA" f "$(spm_host_ip f)" $ERR_EKEYREJECTED \
    'host certificate is not from our cluster CA' no
# The destination's spmd saw the source's certificate refused as well, or
# the source hung up first; either way it never spoke ME messages.
if grep -qiE 'attest|quote' "$MIGRATE_WORK/f/spmd.log"; then
    mig_fail "case 4: host f's spmd logged attestation: $(grep -iE 'attest|quote' "$MIGRATE_WORK/f/spmd.log")"
fi
refuse "5a nothing at $UNREACHABLE" "" "$UNREACHABLE" "" "cannot reach spmd at $UNREACHABLE:7786" no
refuse "5b host g up, no spmd" g "$(spm_host_ip g)" -111 \
    "cannot reach spmd at $(spm_host_ip g):7786: Connection refused" no
refuse "5c malformed --to" "" "$(spm_host_ip c):99999" -22 "is not HOST\\[:PORT\\]" no
# Nothing arrived later on any destination either, and none of them kept
# state of the refused attempts.
for h in c d e f g; do assert_destination_empty "after all cases" "$h"; done
for h in c d e f; do assert_destination_clean "$h"; done
exec 3<&-
cr_log "PASS"
