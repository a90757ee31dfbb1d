#!/usr/bin/env bash
# The main job: installs what is missing, builds, provisions this host's
# simulated SGX platform if it has none, then runs the kvs enclave service,
# drives it with redis-cli and redis-benchmark, and stops it, printing what
# happened. Run as root (the platform lives in /var/lib/spm).
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

log=$(mktemp)
"$kvs" --enclave "$enclave" --platform "$platform_dir" --port "$port" 2>"$log" &
kvs_pid=$!
trap 'kill $kvs_pid 2>/dev/null || true; rm -f "$log"' EXIT
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

kill -TERM $kvs_pid
wait $kvs_pid || true
trap 'rm -f "$log"' EXIT
tail -1 "$log"
echo "demo: done"
