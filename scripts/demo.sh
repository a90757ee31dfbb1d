#!/usr/bin/env bash
# The main job: installs what is missing, builds, provisions this host's
# simulated SGX platform if it has none, starts spmd (the Migration Enclave),
# runs the kvs enclave service, drives it with redis-cli and
# redis-benchmark, checkpoints it with CRIU and restores it (the enclave's
# data, counters and signing key come back), and stops it, printing what happened. Run as root (the
# platform lives in /var/lib/spm).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh

spm=build/src/cli/spm
kvs=build/examples/kvs/kvs
enclave=build/examples/kvs/kvs_enclave.signed
ca_dir=${SPM_CA:-/var/lib/spm/ca}
platform_dir=${SPM_PLATFORM:-/var/lib/spm/platform}
port=${SPM_DEMO_PORT:-6390}

if [ ! -f "$ca_dir/ca.crt" ]; then
    "$spm" ca init --dir "$ca_dir"
fi
if [ ! -d "$platform_dir" ] || [ -z "$(ls -A "$platform_dir" 2>/dev/null)" ]; then
    "$spm" platform init --platform "$platform_dir" --ca "$ca_dir"
fi
echo "== platform"
"$spm" platform show --platform "$platform_dir"
echo "== enclave image"
inspect=$("$spm" inspect "$enclave")
head -12 <<<"$inspect"

work=$(mktemp -d /tmp/spm-demo.XXXXXX)
log=$work/kvs.log
kvs_pid= spmd_pid=
cleanup() {
    [ -n "$kvs_pid" ] && kill "$kvs_pid" 2>/dev/null || true
    [ -n "$spmd_pid" ] && kill "$spmd_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# spmd with a fresh escrow for this run; the enclave process finds it
# through SPM_SPMD_SOCKET.
export SPM_SPMD_SOCKET=$work/spmd.sock
build/src/daemon/spmd --platform "$platform_dir" --state "$work/spmd-state" \
    --socket "$SPM_SPMD_SOCKET" --me build/src/enclaves/me/me_enclave.signed \
    >"$work/spmd.log" 2>&1 &
spmd_pid=$!
for _ in $(seq 100); do
    grep -q "ready on" "$work/spmd.log" && break
    kill -0 $spmd_pid 2>/dev/null || { cat "$work/spmd.log"; echo "demo: spmd failed" >&2; exit 1; }
    sleep 0.1
done
echo "== spmd"
grep "ready on" "$work/spmd.log"

# Its own session and no terminal, as a service runs, so CRIU can dump it.
setsid "$kvs" --enclave "$enclave" --platform "$platform_dir" --port "$port" \
    </dev/null >/dev/null 2>"$log" &
kvs_pid=$!
disown "$kvs_pid" # CRIU ends this process at the dump; no job-control notice
for _ in $(seq 100); do
    grep -q "serving on" "$log" && break
    kill -0 $kvs_pid 2>/dev/null || { cat "$log"; echo "demo: kvs failed to start" >&2; exit 1; }
    sleep 0.1
done
cat "$log"

cli() { redis-cli -p "$port" "$@"; }
echo "== redis-cli against the enclave (port $port)"
echo "PING -> $(cli PING)"
echo "SET greeting hello -> $(cli SET greeting 'hello from inside the enclave')"
echo "GET greeting -> $(cli GET greeting)"
echo "INCR visits x3 -> $(cli INCR visits) $(cli INCR visits) $(cli INCR visits)"
pub=$(cli KVS.PUBKEY)
echo "KVS.PUBKEY -> ${pub:0:32}... (the private key never leaves the enclave)"
echo "KVS.SIGN 'demo' -> $(cli KVS.SIGN demo | cut -c1-32)..."

echo "== redis-benchmark: SET, GET, INCR; 50 clients, 100000 requests each"
cli FLUSHALL >/dev/null
redis-benchmark -p "$port" -t set,get,incr -n 100000 -c 50 -q | tr '\r' '\n' | grep "requests per second"
echo "INCR counter after the benchmark: $(cli GET counter:__rand_int__) (100000 INCRs sent)"
echo "keys held in enclave memory: $(cli DBSIZE)"

echo "== checkpoint: the enclave encrypts itself, spmd's Migration Enclave escrows the key, CRIU dumps"
cli SET greeting 'hello from before the checkpoint' >/dev/null
incr_before=$(cli GET counter:__rand_int__)
keys_before=$(cli DBSIZE)
"$spm" checkpoint "$kvs_pid" -D "$work/img"
grep -lqs SPMCKPT "$work"/img/pages-*.img ||
    { echo "demo: no encrypted enclave checkpoint in the images" >&2; exit 1; }
echo "the enclave is in the images only as AES-256-GCM ciphertext; its key is in spmd's escrow"
echo "(tests/cr searches every image byte for the enclave's secrets)"
echo "== restore: CRIU restores the process, the enclave proves itself to the ME and gets its key once"
"$spm" restore -D "$work/img"
echo "GET greeting -> $(cli GET greeting)"
echo "INCR counter: $(cli GET counter:__rand_int__) (was $incr_before); keys: $(cli DBSIZE) (was $keys_before)"
sig=$(cli KVS.SIGN after-restore | cut -c1-32)
[ "$(cli KVS.PUBKEY)" = "$pub" ] || { echo "demo: the signing key changed" >&2; exit 1; }
echo "KVS.SIGN after restore -> $sig... with the same public key as before"

kill -TERM "$kvs_pid"
kvs_pid=
echo "(restoring these images again would be refused: a checkpoint resumes exactly once;"
echo " tests/security/ shows it, with tampered, older and rolled-back copies too)"
echo "demo: done"
