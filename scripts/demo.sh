#!/usr/bin/env bash
# The main job: installs what is missing, builds, and live-migrates an
# enclave service between two simulated hosts. Each host is a network
# namespace (scripts/hosts.sh) with its own simulated SGX platform (its own
# root secret and attestation key, provisioned by the build's provisioning
# CA), its own TLS identity from one cluster CA, and its own spmd. kvs (a
# Redis-protocol store whose data lives only in enclave memory) runs on
# host a behind the service address 10.77.0.100; redis-benchmark drives it
# from the clients' network; mid-load, `spm migrate` moves it to host b.
# The demo prints the migration report and what the clients saw: requests
# served, errors, and the INCR counter continuing exactly. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh

spm=$PWD/build/src/cli/spm
spmd=$PWD/build/src/daemon/spmd
kvs=$PWD/build/examples/kvs/kvs
enclave=$PWD/build/examples/kvs/kvs_enclave.signed
me=$PWD/build/src/enclaves/me/me_enclave.signed
provisioning_ca=$PWD/build/provisioning-ca
hosts=scripts/hosts.sh
ip=10.77.0.100
incrs=${SPM_DEMO_INCRS:-300000}

work=$(mktemp -d /tmp/spm-demo.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash "$hosts" down --kill a b >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== two hosts: network namespaces spm-a (10.77.0.1) and spm-b (10.77.0.2) on bridge spmbr0"
bash "$hosts" down --kill a b >/dev/null 2>&1 || true
bash "$hosts" up a b >/dev/null
mkdir -p "$work/run"
export SPM_RUN_DIR=$work/run
"$spm" ca init --dir "$work/cluster-ca" >/dev/null
for h in a b; do
    n=$(($(printf '%d' "'$h") - 96))
    "$spm" platform init --platform "$work/$h/platform" --ca "$provisioning_ca" >/dev/null
    "$spm" host-cert --dir "$work/cluster-ca" --name "host-$h" --ip "10.77.0.$n" \
        --out "$work/$h/tls" >/dev/null
    setsid nsenter --net="/run/netns/spm-$h" -- "$spmd" --platform "$work/$h/platform" \
        --state "$work/$h/state" --socket "$work/$h/spmd.sock" --listen "10.77.0.$n" \
        --tls-dir "$work/$h/tls" --name "$h" --me "$me" </dev/null >"$work/$h/spmd.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "accepting peers" "$work/$h/spmd.log" && break
        sleep 0.05
    done
    grep -q "accepting peers" "$work/$h/spmd.log" ||
        { cat "$work/$h/spmd.log"; echo "demo: spmd on host $h failed" >&2; exit 1; }
    echo "host $h: own simulated platform (own root secret and attestation key), spmd on 10.77.0.$n:7786 (TLS 1.3)"
done

echo "== kvs on host a, serving $ip:6379"
bash "$hosts" service-ip add a "$ip" >/dev/null
SPM_PLATFORM=$work/a/platform SPM_SPMD_SOCKET=$work/a/spmd.sock setsid nsenter \
    --net=/run/netns/spm-a -- "$kvs" --enclave "$enclave" --bind "$ip" --port 6379 \
    </dev/null >"$work/kvs.log" 2>&1 &
kvs_pid=$!
disown "$kvs_pid" # CRIU ends this process on host a; no job-control notice
pids+=("$kvs_pid")
for _ in $(seq 100); do
    grep -q "serving on" "$work/kvs.log" && break
    sleep 0.05
done
cat "$work/kvs.log"
cli() { redis-cli -h "$ip" "$@"; }
cli SET greeting "hello from inside the enclave" >/dev/null
pub=$(cli KVS.PUBKEY)
echo "SET greeting, KVS.PUBKEY -> ${pub:0:24}... (the private key never leaves the enclave)"

echo "== redis-benchmark: $incrs INCRs on 20 connections, and SETs on 20 more, from the clients' network"
redis-benchmark -h "$ip" -t incr -n "$incrs" -c 20 -q >"$work/bench-incr.out" 2>&1 &
bench_incr=$!
redis-benchmark -h "$ip" -t set -n "$incrs" -c 20 -d 256 -r 100000 -q >"$work/bench-set.out" 2>&1 &
bench_set=$!
pids+=("$bench_incr" "$bench_set")
sleep 1.5
before=$(cli GET counter:__rand_int__)
echo "under load: INCR counter at $before"

echo "== spm migrate $kvs_pid --to 10.77.0.2 (mid-load)"
nsenter --net=/run/netns/spm-a -- "$spm" migrate "$kvs_pid" --to 10.77.0.2 \
    --move-ip "$ip/24" --socket "$work/a/spmd.sock"

status_incr=0 status_set=0
wait "$bench_incr" || status_incr=$?
wait "$bench_set" || status_set=$?
summary() { tr '\r' '\n' <"$1" | grep -v 'rps=' | grep -v '^[[:space:]]*$' || true; }
echo "== what the clients saw"
echo "INCR clients: exit $status_incr: $(summary "$work/bench-incr.out")"
echo "SET clients:  exit $status_set: $(summary "$work/bench-set.out")"
errors=$(cat "$work/bench-incr.out" "$work/bench-set.out" | tr '\r' '\n' | grep -ciE 'error|reset|refused' || true)
after=$(cli GET counter:__rand_int__)
echo "errors reported by clients: $errors"
echo "INCR counter: $before during the load, $after after it ($incrs sent): every acknowledged INCR counted"
echo "GET greeting -> $(cli GET greeting)"
[ "$(cli KVS.PUBKEY)" = "$pub" ] || { echo "demo: the signing key changed" >&2; exit 1; }
echo "KVS.PUBKEY unchanged; KVS.SIGN 'after' -> $(cli KVS.SIGN after | cut -c1-24)..."
host_of() {
    local ino
    ino=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || { echo gone; return; }
    for h in a b; do
        [ "$(stat -L -c %i "/run/netns/spm-$h")" = "$ino" ] && { echo "host $h"; return; }
    done
    echo elsewhere
}
echo "pid $kvs_pid now runs in: $(host_of "$kvs_pid"); nothing of it is left on host a"
[ "$after" = "$incrs" ] && [ "$status_incr" -eq 0 ] && [ "$status_set" -eq 0 ] && [ "$errors" -eq 0 ] ||
    { echo "demo: the clients did not get every request served" >&2; exit 1; }
echo "(the tests in tests/migrate replay the images on every host, cut links, kill daemons"
echo " mid-hand-over and search every captured packet for the enclave's secrets)"
echo "demo: done"
