#!/usr/bin/env bash
# The CRIU plugin and the action-script fallback under a real `criu dump`:
#  1. a plain process: the plugin loads, says -ENOTSUP, the dump succeeds;
#  2. an SPM process whose export is refused (no spmd to escrow the key):
#     the plugin aborts the dump and the process runs on, ecalls working;
#  3. the same through `spm checkpoint`: non-zero, points at dump.log;
#  4. the same through `spm criu-action` as a pre-dump action script;
#  5. `criu pre-dump` of an SPM process: refused (it would copy ELRANGE).
# Needs root and CRIU; exit 77 (skipped) without them.
# args: spm plugin-dir sleeper enclave.signed
set -euo pipefail
spm=$1 plugin_dir=$2 sleeper=$3 enclave=$4
criu=${SPM_CRIU:-criu}
[[ $(id -u) == 0 ]] || { echo "skip: needs root"; exit 77; }
command -v "$criu" >/dev/null || { echo "skip: no criu"; exit 77; }
[[ -f $plugin_dir/spm_criu.so ]] || { echo "skip: plugin not built"; exit 77; }

tmp=$(mktemp -d /tmp/spm-plugin-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

export SPM_RUN_DIR=$tmp/run SPM_PLATFORM=$tmp/platform SPM_SPMD_SOCKET=$tmp/no-spmd.sock
"$spm" ca init --dir "$tmp/ca" >/dev/null
"$spm" platform init --platform "$tmp/platform" --ca "$tmp/ca" >/dev/null

wait_for_file() {
    for _ in $(seq 100); do [[ -s $1 ]] && return 0; sleep 0.05; done
    fail "$1 never appeared"
}
count_grows() { # pid count-file
    local before after
    before=$(cat "$2")
    sleep 0.3
    after=$(cat "$2")
    kill -0 "$1" 2>/dev/null || fail "pid $1 died"
    ((after > before)) || fail "pid $1 makes no ecalls any more ($before -> $after)"
}

# 1. Plain process.
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
plain=$!
pids+=("$plain")
"$criu" dump -t "$plain" -D "$tmp" -o plain-dump.log -v4 --libdir "$plugin_dir" ||
    fail "criu dump of a plain process failed with the plugin loaded (see $tmp/plain-dump.log)"
grep -q 'spm: plugin loaded' "$tmp/plain-dump.log" || fail "the plugin was not loaded"
grep -q "plugin: \`spm' hook 10" "$tmp/plain-dump.log" || fail "PAUSE_DEVICES not called"
! ls "$tmp"/spm-export-*.txt >/dev/null 2>&1 || fail "a plain process was recorded as exported"
rm -f "$tmp"/*.img
echo "ok 1: plain process dumped, the plugin stood aside"

# 1b. A stale control socket under a reused pid (a killed SPM process leaves
# its socket file behind): nobody listens, so the process is not an SPM one.
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
reused=$!
pids+=("$reused")
mkdir -p "$SPM_RUN_DIR" "$tmp/d1b" "$tmp/d1c"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$SPM_RUN_DIR/$reused.ctl"
[[ -S $SPM_RUN_DIR/$reused.ctl ]] || fail "could not plant a stale socket"
"$criu" dump -t "$reused" -D "$tmp/d1b" -o dump.log --libdir "$plugin_dir" ||
    fail "a stale control socket made the dump of a plain process fail (see $tmp/d1b/dump.log)"
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
reused=$!
pids+=("$reused")
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$SPM_RUN_DIR/$reused.ctl"
# (This kernel has no soft-dirty tracking: the pre-dump itself fails later,
# after the plugin's hook ran, which is all this checks.)
"$criu" pre-dump -t "$reused" -D "$tmp/d1c" -o pre-dump.log -v4 --libdir "$plugin_dir" \
    >/dev/null 2>&1 || true
grep -q "plugin: \`spm' hook 10" "$tmp/d1c/pre-dump.log" || fail "PAUSE_DEVICES not called at pre-dump"
! grep -q "is an SPM enclave process" "$tmp/d1c/pre-dump.log" ||
    fail "the plugin refused the pre-dump of a plain process with a stale socket"
echo "ok 1b: stale control sockets do not make a process an SPM one (dump and pre-dump)"

# 2. SPM process, export refused: the dump aborts, the process runs on.
setsid "$sleeper" "$enclave" "$tmp/pid" "$tmp/count" </dev/null >"$tmp/sleeper.log" 2>&1 &
pids+=("$!")
wait_for_file "$tmp/pid"
spmpid=$(cat "$tmp/pid")
[[ -S $SPM_RUN_DIR/$spmpid.ctl ]] || fail "no control socket at $SPM_RUN_DIR/$spmpid.ctl"
mkdir "$tmp/d2"
if "$criu" dump -t "$spmpid" -D "$tmp/d2" -o dump.log -v4 --libdir "$plugin_dir"; then
    fail "the dump succeeded although the export was refused"
fi
grep -q "spm: pid $spmpid: its enclaves refused the export" "$tmp/d2/dump.log" ||
    fail "dump.log does not say the export was refused"
count_grows "$spmpid" "$tmp/count"
echo "ok 2: refused export aborted the dump, the process runs on"

# 3. spm checkpoint reports it.
set +e
out=$(SPM_CRIU_PLUGIN_DIR=$plugin_dir "$spm" checkpoint "$spmpid" -D "$tmp/d3" 2>&1)
rc=$?
set -e
((rc != 0)) || fail "spm checkpoint succeeded although the export was refused"
grep -q "backend: sim" <<<"$out" || fail "spm checkpoint does not name the backend"
grep -q "see $tmp/d3/dump.log" <<<"$out" || fail "spm checkpoint does not point at dump.log: $out"
grep -q "refused the export" <<<"$out" || fail "spm checkpoint does not show why: $out"
count_grows "$spmpid" "$tmp/count"
echo "ok 3: spm checkpoint failed cleanly"

# 4. Action script, no plugin (an empty plugin directory).
# CRIU execs the script by path without arguments: spm answers to that name.
mkdir -p "$tmp/empty" "$tmp/d4" "$tmp/bin"
ln -s "$(realpath "$spm")" "$tmp/bin/spm-criu-action"
if "$criu" dump -t "$spmpid" -D "$tmp/d4" -o dump.log --libdir "$tmp/empty" \
    --action-script "$tmp/bin/spm-criu-action"; then
    fail "the dump succeeded although the pre-dump action refused"
fi
grep -q "Pre dump script failed" "$tmp/d4/dump.log" || fail "pre-dump did not abort the dump"
grep -q "spm criu-action: pid $spmpid refused the export" "$tmp/d4/dump.log" ||
    fail "the action script did not run, or did not say why it refused (see $tmp/d4/dump.log)"
count_grows "$spmpid" "$tmp/count"
echo "ok 4: criu-action pre-dump refusal aborted the dump, the process runs on"

# 5. criu pre-dump copies memory while the process runs on; on the simulated
# platform that would include ELRANGE's plaintext, so the plugin refuses it.
mkdir -p "$tmp/d5"
if "$criu" pre-dump -t "$spmpid" -D "$tmp/d5" -o pre-dump.log --libdir "$plugin_dir"; then
    fail "criu pre-dump of an SPM process succeeded (it would copy enclave memory)"
fi
grep -q "spm: pid $spmpid is an SPM enclave process: pre-dump is not supported" \
    "$tmp/d5/pre-dump.log" || fail "the plugin did not refuse the pre-dump (see $tmp/d5/pre-dump.log)"
! grep -rqs SPMCKPT "$tmp/d5" || fail "the pre-dump exported the enclave"
count_grows "$spmpid" "$tmp/count"
echo "ok 5: pre-dump of an SPM process refused, the process runs on"

"$spm" checkpoint --help | grep -q "images written are spent" ||
    fail "checkpoint --help does not say what --leave-running costs"
