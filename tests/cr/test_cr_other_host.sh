#!/usr/bin/env bash
# The restoring side names the host (the plumbing live migration needs):
#  1. the export reply and its record in the image directory name the
#     checkpoint the ME escrowed the key under (refs=LINEAGE:GEN:ID:DIGEST),
#     matching the image's header and a digest computed here;
#  2. `criu restore` with SPM_PLATFORM / SPM_SPMD_SOCKET in CRIU's own
#     environment naming a second, valid host (its own platform and spmd):
#     the process uses them although its own environment names the first
#     host. The second ME holds no key, so the import is refused (-ENOENT)
#     and the process exits 75, its messages naming the second platform and
#     spmd. Nothing is lost:
#  3. a restore naming an unusable platform directory fails the import with
#     a message naming it and keeps the ciphertext and the key; a 'resume'
#     naming the right host then brings the enclave back, data intact;
#  4. deferred import: `spm checkpoint` prints the refs (same lineage, next
#     generation); criu restore --leave-stopped with SPM_IMPORT_DEFERRED=1
#     returns without waiting, the process stays stopped with no enclave
#     mapped and answers nothing; after SIGCONT the queued import runs and
#     status reaches live, data and the parked thread intact;
#  5. without the variables the request is a plain 'resume' and the process
#     keeps the host it had.
set -euo pipefail
# shellcheck source=cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"
A_PLATFORM=$SPM_PLATFORM
A_SPMD=$SPM_SPMD_SOCKET

# Host B: its own platform and spmd (same cluster CA), on the same filesystem.
B=$CR_WORK/hostb
mkdir -p "$B/state"
"$CR_SPM" platform init --platform "$B/platform" --ca "$CR_WORK/ca" >/dev/null ||
    fail "spm platform init for host B failed"
setsid "$CR_SPMD" --state "$B/state" --socket "$B/spmd.sock" --platform "$B/platform" \
    --me "$CR_ME_IMAGE" </dev/null >>"$CR_WORK/spmd-b.log" 2>&1 &
CR_PIDS+=("$!")
for ((i = 0; i < 200; i++)); do
    [ -S "$B/spmd.sock" ] && break
    sleep 0.05
done
[ -S "$B/spmd.sock" ] || fail "host B's spmd did not start (see $CR_WORK/spmd-b.log)"

HEAP=$((4 << 20))
SEED=$(cr_random_seed)
cr_start_host host
PID=$CR_HOST_PID
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap=(0x[0-9a-f]+) '
HEAP_ADDR=${BASH_REMATCH[1]}
cr_expect_reply host "$PID" park '^ok parked$'

# ---- 1. refs in the export record = the image's header ----
cr_criu_dump "$PID" "$CR_WORK/img" || fail "criu dump failed (see $CR_WORK/img/dump.log)"
cr_assert_gone "$PID" "after criu dump"
record=$CR_WORK/img/spm-export-$PID.txt
[ -f "$record" ] || fail "no export record $record"
REF_RE='refs=([0-9a-f]{32}):([0-9]+):([0-9a-f]{32}):([0-9a-f]{64})$'
[[ $(<"$record") =~ ^ok\ enclaves=1\ .*\ $REF_RE ]] ||
    fail "the export record names no single checkpoint ref: $(<"$record")"
LINEAGE=${BASH_REMATCH[1]} GEN=${BASH_REMATCH[2]} CKPT=${BASH_REMATCH[3]} DIGEST=${BASH_REMATCH[4]}
info=$(python3 "$CR_TAMPER" info "$CR_WORK/img") || fail "no checkpoint image in CRIU's pages"
for pair in "lineage_id=$LINEAGE" "generation=$GEN" "checkpoint_id=$CKPT" "header_digest=$DIGEST"; do
    grep -q " $pair\\b" <<<"$info" ||
        fail "the export's ref ($pair) differs from the image header: $info"
done
cr_log "1: export ref $LINEAGE:$GEN:$CKPT:${DIGEST:0:16}... matches the image header and its digest"
cp -a "$CR_WORK/img" "$CR_WORK/img-pristine"

# ---- 2. restore naming host B: the values are used ----
log_lines=$(wc -l <"$CR_WORK/host/err.log")
status=0
SPM_PLATFORM=$B/platform SPM_SPMD_SOCKET=$B/spmd.sock cr_criu_restore "$CR_WORK/img" || status=$?
cr_log "criu restore naming host B: status $status, $CR_CRIU_MS ms"
rlog=$(ls -t "$CR_WORK"/img/restore.*.log | head -n 1)
grep -q "spm: pid $PID: 'resume platform=$B/platform spmd=$B/spmd.sock' queued" "$rlog" ||
    fail "the plugin did not send host B's platform and spmd (see $rlog)"
cr_assert_gone "$PID" "import on host B (whose ME holds no key)"
tail -n +$((log_lines + 1)) "$CR_WORK/host/err.log" >"$CR_WORK/on-b.log"
grep -q "platform $B/platform, spmd $B/spmd.sock) refused at RESTORE_BEGIN: the Migration Enclave holds no key" \
    "$CR_WORK/on-b.log" ||
    fail "the import was not refused by host B's ME for lack of the key: $(cat "$CR_WORK/on-b.log")"
grep -q "status 75" "$CR_WORK/on-b.log" || fail "the process did not exit with status 75"
cr_log "2: import on host B refused by its ME (-ENOENT), the process exited 75"

# ---- 3. an unusable platform: retryable; then the right host ----
rm -rf "$CR_WORK/img" && cp -a "$CR_WORK/img-pristine" "$CR_WORK/img"
SPM_PLATFORM=$CR_WORK/no-such-platform cr_criu_restore "$CR_WORK/img" ||
    fail "criu restore failed (see $CR_WORK/img)"
kill -0 "$PID" 2>/dev/null || fail "a restore naming a missing platform killed the process"
reply=$(cr_control "$PID" "status wait_ms=30000")
[[ $reply =~ ^ok\ state=failed\ .*msg=.*cannot\ open\ the\ SGX\ platform\ at\ $CR_WORK/no-such-platform ]] ||
    fail "status after the import on a missing platform: $reply"
cr_log "3: import on a missing platform failed, naming it: ${reply#*msg=}"
reply=$(cr_control "$PID" "resume platform=$A_PLATFORM spmd=$A_SPMD")
[[ $reply =~ ^ok\ enclaves=1\ bytes=[1-9] ]] || fail "resume naming host A: $reply"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=1$'
cr_log "3: 'resume' naming host A brought the enclave back: $reply"

# ---- 4. deferred import ----
cr_spm_checkpoint "$PID" "$CR_WORK/img2" >"$CR_WORK/img2.out" || fail "spm checkpoint failed"
cat "$CR_WORK/img2.out"
cr_assert_gone "$PID" "after spm checkpoint"
grep -Eq "checkpoint ref: +pid $PID enclave 0 $LINEAGE:$((GEN + 1)):[0-9a-f]{32}:[0-9a-f]{64}$" \
    "$CR_WORK/img2.out" ||
    fail "spm checkpoint does not print the lineage's next checkpoint ($LINEAGE:$((GEN + 1)):...)"
SPM_IMPORT_DEFERRED=1 cr_criu_restore "$CR_WORK/img2" --leave-stopped ||
    fail "criu restore --leave-stopped failed"
cr_log "4: criu restore --leave-stopped with SPM_IMPORT_DEFERRED=1 took $CR_CRIU_MS ms"
((CR_CRIU_MS < 30000)) || fail "criu waited for an import that cannot run while stopped"
rlog=$(ls -t "$CR_WORK"/img2/restore.*.log | head -n 1)
grep -q "spm: pid $PID: import deferred" "$rlog" || fail "the plugin did not defer (see $rlog)"
sleep 0.5
state=$(sed 's/.*) //' "/proc/$PID/stat" | cut -d' ' -f1)
[ "$state" = T ] || fail "the restored process is not stopped (state $state)"
python3 - "$PID" "$CR_BASE" "$CR_SIZE" <<'PY' || fail "ELRANGE holds something while the import waits"
# Only the exported enclave's own hold on ELRANGE may be there: exactly its
# range, inaccessible, anonymous, and without a page in memory.
import sys
pid, base, size = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16)
current = None
for line in open(f"/proc/{pid}/smaps"):
    f = line.split()
    if "-" in f[0] and len(f) >= 5:
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        current = None
        if lo < base + size and hi > base:
            if (lo, hi) != (base, base + size) or f[1] != "---p" or len(f) != 5:
                sys.exit(f"mapping {line.strip()} overlaps ELRANGE")
            current = line.strip()
    elif current and f[0] == "Rss:" and f[1] != "0":
        sys.exit(f"ELRANGE's hold {current} has {f[1]} kB in memory")
PY
if timeout 2 python3 - "$SPM_RUN_DIR/$PID.ctl" <<'PY'; then
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(1)
s.connect(sys.argv[1])
s.sendall(b"status\n")
print(s.recv(4096).decode().strip())
PY
    fail "a stopped process answered 'status'"
fi
state=$(sed 's/.*) //' "/proc/$PID/stat" | cut -d' ' -f1)
[ "$state" = T ] || fail "the process left the stopped state before SIGCONT (state $state)"
cr_log "4: stopped, ELRANGE empty, no answer: the import has not run"
kill -CONT "$PID"
reply=$(cr_control "$PID" "status wait_ms=60000")
[[ $reply =~ ^ok\ state=live\ enclaves=1 ]] || fail "status after SIGCONT: $reply"
cr_log "4: after SIGCONT: $reply"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=2$'
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'

# ---- 5. no variables: a plain resume, the process keeps its host ----
cr_criu_dump "$PID" "$CR_WORK/img3" || fail "criu dump failed (see $CR_WORK/img3/dump.log)"
cr_assert_gone "$PID" "after criu dump"
(
    unset SPM_PLATFORM SPM_SPMD_SOCKET
    cr_criu_restore "$CR_WORK/img3"
) || fail "criu restore without SPM_PLATFORM/SPM_SPMD_SOCKET failed"
rlog=$(ls -t "$CR_WORK"/img3/restore.*.log | head -n 1)
grep -q "spm: pid $PID: 'resume' queued" "$rlog" || fail "not a plain 'resume' (see $rlog)"
reply=$(cr_control "$PID" "status wait_ms=60000")
[[ $reply =~ ^ok\ state=live ]] || fail "status after a plain resume: $reply"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=3$'
cr_scan_clean "images" "$SEED" "$HEAP" "$CR_WORK/img-pristine" "$CR_WORK/img2" "$CR_WORK/img3"
echo "PASS"
