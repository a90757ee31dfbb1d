#!/usr/bin/env bash
# Fault injection for spm migrate (real CRIU, real namespaces, real spmds):
# a migration a->b is broken at every point spmd can fail on purpose
# (SPMD_FAULT, src/daemon/migrate.c) and by three faults from outside (the
# link cut for real during a 64 MiB transfer, the destination spmd SIGKILLed
# during the transfer, criu dump SIGKILLed as soon as it appears, during the
# enclave export, and after it seized the process). After each one the
# operator's recovery runs (restart what died, without the fault; the link
# back; spm recover on a and b until nothing is pending) and the test asserts
# what the protocol promises: exactly one runnable copy of the process, on
# the host that owns the key (a while the key never left a's ME; b once b's
# ME stored the TRANSFER), serving every value, its counter going on exactly,
# no stopped copy anywhere and no journal left pending.
#
# Each case starts from fresh host state (platforms, spmd state, a new kvs
# on its own service address) so a failing case cannot taint the next; all
# cases run and the test fails if any failed. One summary line per case.
# FAULT_CASES="name ..." runs only those (names as in CASES below);
# MIGRATE_KEEP=1 keeps the work directory (a failed case's logs in
# failed-NAME/); FAULT_DEBUG=1 lists the hosts' listening sockets per case.
set -euo pipefail
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require redis-cli python3

# mig_fail, with what explains a migration failure: both spmds' logs, the
# migration's and the recoveries' output (run in a case's subshell it ends
# that case only).
mig_fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$MIGRATE_WORK"/a/spmd.log "$MIGRATE_WORK"/b/spmd.log "$MIGRATE_WORK"/kvs.log \
        "$MIGRATE_WORK"/migrate.out "$MIGRATE_WORK"/migrate.err "$MIGRATE_WORK"/recover.out; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f:" >&2
        tail -n 25 "$f" | sed 's/^/    /' >&2
    done
    exit 1
}

spm_setup
mig_hosts_up a b # once: hosts created here are removed by the parent's cleanup
# The CRIU configuration of case criu-killed-after-lock: its action script
# kills criu (the script's parent) once the dump is written.
KILL_AT_POST_DUMP=$(echo 'kill -KILL "$PPID"' | spm_criu_action_conf kill-at-post-dump post-dump)

CASES=(
    none
    src-crash-after-leaving
    src-crash-after-transfer
    src-crash-before-go
    dest-crash-after-store
    dest-crash-on-go
    dest-restore-fail
    link-cut-transfer
    link-cut-handover
    real-link-cut
    dest-sigkill-transfer
    src-sigkill-transfer
    dest-criu-restore-killed
    criu-dump-killed
    criu-killed-in-export
    criu-killed-after-seize
    criu-killed-after-lock
)
if [ -n "${FAULT_CASES:-}" ]; then
    read -r -a CASES <<<"$FAULT_CASES"
fi

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

# spmd_alive NAME: host NAME's spmd runs (a zombie does not).
spmd_alive() {
    local pid=${SPMD_PID[$1]:-} state
    [ -n "$pid" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# spmd_restart NAME: (re)starts NAME's spmd with whatever SPM_HOST_FAULT_<NAME>
# says now. spm_spmd_start waits for "accepting peers" in a log it appends
# to, so the old log is moved aside first or an earlier start's line would
# be taken for this one's.
spmd_restart() {
    local name=$1 n=0
    if spmd_alive "$name"; then
        spm_spmd_kill "$name"
        cr_wait_gone "${SPMD_PID[$name]}" 10 || mig_fail "spmd of $name does not die"
    fi
    while [ -e "$MIGRATE_WORK/$name/spmd.log.$n" ]; do n=$((n + 1)); done
    [ ! -e "$MIGRATE_WORK/$name/spmd.log" ] || mv "$MIGRATE_WORK/$name/spmd.log" "$MIGRATE_WORK/$name/spmd.log.$n"
    spm_spmd_start "$name"
}

# host_fresh NAME: a new platform, TLS identity, spmd state and spmd.
host_fresh() {
    local name=$1 dir=$MIGRATE_WORK/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    "$CR_SPM" platform init --platform "$dir/platform" --ca "$SPM_PROVISIONING_CA" >/dev/null ||
        mig_fail "platform init for host $name failed"
    "$CR_SPM" host-cert --dir "$MIGRATE_WORK/cluster-ca" --name "host-$name" \
        --ip "$(spm_host_ip "$name")" --out "$dir/tls" >/dev/null || mig_fail "host-cert for $name failed"
    spmd_restart "$name"
}

# kvs_processes: every kvs process in host a or b (pid state host), one a line.
kvs_processes() {
    local pid host
    for pid in $(pgrep -f -- "$CR_KVS --enclave" || true); do
        host=$(mig_pid_host "$pid")
        case $host in a | b) echo "$pid $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) $host" ;; esac
    done
}

# recover_until_settled: spm recover on a, then b, until both say nothing is
# pending (a destination copy waits for its source to settle first).
# Sets RECOVER_ROUNDS.
recover_until_settled() {
    local round ok host status
    RECOVER_ROUNDS=0
    for round in $(seq 1 12); do
        RECOVER_ROUNDS=$round
        ok=1
        for host in a b; do
            status=0
            spm_in "$host" "$CR_SPM" recover --socket "$MIGRATE_WORK/$host/spmd.sock" \
                >"$MIGRATE_WORK/recover.last" 2>&1 || status=$?
            sed "s/^/    [$host round $round] /" "$MIGRATE_WORK/recover.last" | grep -v '^\s*$' || true
            cat "$MIGRATE_WORK/recover.last" >>"$MIGRATE_WORK/recover.out"
            [ $status -eq 0 ] || ok=0
        done
        [ $ok -eq 0 ] || return 0
        sleep 1
    done
    mig_fail "spm recover still reports pending migrations after $RECOVER_ROUNDS rounds"
}

# assert_one_copy HOST IP KEYS TAG COUNTER: the kvs runs in HOST only, not
# stopped, no other kvs process in a or b (running, stopped or zombie), the
# service address on HOST only, every value there, INCR gives COUNTER+1.
assert_one_copy() {
    local want=$1 ip=$2 keys=$3 tag=$4 counter=$5 other procs
    spm_assert_one_copy "$KVS_PID" "$want"
    procs=$(kvs_processes)
    [ "$procs" == "$KVS_PID R $want" ] || [ "$procs" == "$KVS_PID S $want" ] ||
        mig_fail "kvs processes in a/b are [${procs//$'\n'/; }], want only pid $KVS_PID running in $want"
    other=$([ "$want" == a ] && echo b || echo a)
    mig_host_has_ip "$want" "$ip" || mig_fail "the service address $ip is not on $want"
    if mig_host_has_ip "$other" "$ip"; then mig_fail "the service address $ip is also on $other"; fi
    spm_kvs_data check "$ip" "$keys" "$tag" || mig_fail "values lost or wrong after recovery"
    local got
    got=$(redis-cli -h "$ip" INCR ctr) || mig_fail "INCR failed"
    [ "$got" == "$((counter + 1))" ] || mig_fail "INCR ctr gave [$got], want $((counter + 1))"
    # A second copy that appeared late (a delayed GO, a restore racing the
    # recovery) would show now.
    sleep 1
    spm_assert_one_copy "$KVS_PID" "$want"
    procs=$(kvs_processes)
    [ "$(wc -l <<<"$procs")" == 1 ] || mig_fail "a second kvs appeared: [${procs//$'\n'/; }]"
}

# wait_for_file_line FILE REGEX SECONDS
wait_for_file_line() {
    local i
    for ((i = 0; i < $3 * 200; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.005
    done
    return 1
}

# kill_criu_when now|export|seized|restore: SIGKILLs the `criu dump` of
# $KVS_PID (found by its command line, in a tight loop) as soon as it
# appears, or once the plugin's export request is being served (an accepted
# connection on the process's control socket), or once CRIU has seized the
# process (state t); restore: the first `criu restore` on any host, as soon
# as it appears.
# Writes inject.done and, in inject.state, the process's state then.
kill_criu_when() {
    python3 - "$1" "$KVS_PID" "$SPM_RUN_DIR/$KVS_PID.ctl" "$MIGRATE_WORK" <<'EOF'
import os, signal, sys, time
mode, pid, ctl, work = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]
deadline = time.time() + 120
def find_criu():
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
        except OSError:
            continue
        # criu may run through a wrapper (sh, then ld.so --library-path
        # DIR .../criu): "...criu dump -t PID" anywhere in argv.
        for i in range(1, len(argv) - 1):
            if mode != "restore" and argv[i - 1].endswith(b"criu") and argv[i:i + 3] == [b"dump", b"-t", pid]:
                return int(d)
            if mode == "restore" and argv[i - 1].endswith(b"criu") and argv[i] == b"restore":
                return int(d)
def state():
    try:
        return open("/proc/%s/stat" % pid.decode()).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
def export_served():
    # An accepted (connected, state 03) socket bound to the control path:
    # the control thread serves a request, and only the plugin sends one.
    try:
        lines = open("/proc/%s/net/unix" % pid.decode()).read().splitlines()[1:]
    except OSError:
        return False
    return any(l.split()[5] == "03" and l.split()[-1] == ctl for l in lines if len(l.split()) >= 8)
criu = None
while criu is None and time.time() < deadline:
    criu = find_criu()
while criu and time.time() < deadline:
    if not os.path.exists("/proc/%d" % criu):
        sys.exit("criu ended before the moment to kill it came (%s)" % mode)
    if mode in ("now", "restore") or (mode == "export" and export_served()) or (mode == "seized" and state() == "t"):
        break
    time.sleep(0.0005)
if criu is None or time.time() >= deadline:
    sys.exit("criu %s was not seen" % ("restore" if mode == "restore" else "dump"))
try:
    start = int(open("/proc/%d/stat" % criu).read().rsplit(")", 1)[1].split()[19])
    age = "%dms" % ((float(open("/proc/uptime").read().split()[0]) - start / os.sysconf("SC_CLK_TCK")) * 1000)
except (OSError, ValueError, IndexError):
    age = "?"
try:
    os.kill(criu, signal.SIGKILL)
except ProcessLookupError:
    sys.exit("criu ended just before the kill (%s)" % mode)
t = time.time()
# The process's state then (S/R running, t seized by CRIU) and criu's age.
open(work + "/inject.state", "w").write("%s criu_age=%s" % (state(), age))
open(work + "/inject.done", "w").write("%f" % t)
EOF
}

# One case, in a subshell (its own fail ends only it). Writes the pids the
# parent must clean up and the summary line into files.
run_case() {
    local name=$1 index=$2
    CASE_IP=10.77.0.$((110 + index))
    local ip=$CASE_IP fault_host='' fault='' expect='' keys=256 inject='' criu_config=''
    case $name in
    # A control: no fault, the key and the process move to b.
    none) expect=b ;;
    # The source ME marked LEAVING, then spmd a died before TRANSFER left:
    # b's ME never received the key, RESOLVE answers ABORTED (and b's ME
    # refuses that TRANSFER forever), the entry is ESCROWED again: a.
    src-crash-after-leaving) fault_host=a fault=$name expect=a ;;
    # TRANSFER stored at b and ACKed; spmd a died before its ME saw the ACK
    # (still LEAVING): RESOLVE finds b HELD the hand-over id: LEFT, GO: b.
    src-crash-after-transfer) fault_host=a fault=$name expect=b ;;
    # a's ME is LEFT and the journal says handed-over; spmd a died before
    # GO: recovery only sends GO: b.
    src-crash-before-go) fault_host=a fault=$name expect=b ;;
    # b's ME stored K durably, then spmd b died before the ACK: the
    # migration is in doubt until b is back; RESOLVE says HELD: b.
    dest-crash-after-store) fault_host=b fault=$name expect=b ;;
    # Key handed over (a's ME LEFT); spmd b died on GO, its copy stopped:
    # recovery resumes it there: b.
    dest-crash-on-go) fault_host=b fault=$name expect=b ;;
    # criu restore fails at b before any key moved: b discards, a restores
    # from its images: a.
    dest-restore-fail) fault_host=b fault=$name expect=a ;;
    # The connection dies half-way through the images: no restore at b, the
    # key never left: a.
    link-cut-transfer) fault_host=a fault=$name expect=a ;;
    # TRANSFER was written to the connection before it was cut: b's ME
    # stored it (the frame is read before the FIN), RESOLVE says HELD: b.
    link-cut-handover) fault_host=a fault=$name expect=b ;;
    # The bridge port of b goes down during the images of a 64 MiB kvs and
    # stays down until spm migrate gave up: a's connection counts as dead
    # once its data goes unacknowledged for SPM_TLS_DEAD_PEER_MS (10 s),
    # well before the 30 s send deadline; nothing was restored at b, the
    # key never left: a. The link comes back for the recovery, which
    # discards b's half-received images.
    real-link-cut) inject=link expect=a keys=4096 ;;
    # spmd b SIGKILLed during the images: a's send fails, b cannot be told
    # to discard (nothing runs there), the key never left: a.
    dest-sigkill-transfer) inject=kill-dest expect=a keys=4096 ;;
    # spmd a SIGKILLed during the images: spm migrate loses its daemon,
    # the process is dumped (gone) at a and b holds half its images; the key
    # never left a's ME. Restarting spmd a and spm recover bring the
    # process back in place and make b discard what it received: a.
    src-sigkill-transfer) inject=kill-src expect=a keys=4096 ;;
    # The real criu restore at b SIGKILLed as soon as it starts (where
    # dest-restore-fail only injects a failure): the restore fails before
    # any key moved, b discards, a rolls back: a.
    dest-criu-restore-killed) inject=kill-criu-restore expect=a keys=4096 ;;
    # criu dump killed as soon as it appears, or while the plugin's export
    # request is served (the process exports on, its enclave ends up
    # exported with K escrowed at a), or after CRIU seized the process: the
    # dump fails, the key never left, the process lives on and spmd resumes
    # it in place: a.
    criu-dump-killed) inject=kill-criu-now expect=a keys=4096 ;;
    criu-killed-in-export) inject=kill-criu-export expect=a keys=4096 ;;
    criu-killed-after-seize) inject=kill-criu-seized expect=a keys=4096 ;;
    # criu killed by a CRIU action script at post-dump: the process is
    # dumped, its connections locked (CRIU's nft table) and their sockets in
    # repair mode, and nobody undoes either but spmd: a.
    criu-killed-after-lock) criu_config=$KILL_AT_POST_DUMP expect=a keys=4096 ;;
    *) mig_fail "unknown case $name" ;;
    esac
    # before: where the process is right after spm migrate returned, before
    # any recovery (T@b: stopped copy at b waiting for the key; run@X:
    # running in X); evidence: what shows the fault really fired (spmd logs,
    # spm migrate's output).
    local before evidence
    case $name in
    none) before=run@b evidence='migration report' ;;
    src-crash-*) before=T@b evidence="injected fault $name" ;;
    dest-crash-*) before=T@b evidence="injected fault $name" ;;
    dest-restore-fail) before=run@a evidence='criu restore of pid [0-9]+ failed here.*rolled back' ;;
    link-cut-transfer) before=run@a evidence='sending [^ ]+ to host-b failed.*rolled back' ;;
    link-cut-handover) before=run@b evidence='injected fault: link cut after the key was sent' ;;
    real-link-cut) before=run@a evidence='sending [^ ]+ to host-b failed.*rolled back' ;;
    dest-sigkill-transfer) before=run@a evidence='(sending [^ ]+ to host-b failed|connection to host-b lost).*rolled back' ;;
    # The dump ended the process (its images are at a): nothing runs until
    # the recovery restores it from them.
    src-sigkill-transfer) before=gone@gone evidence='spmd closed the connection before the end' ;;
    dest-criu-restore-killed) before=run@a evidence='criu restore of pid [0-9]+ failed here.*rolled back' ;;
    criu-*) before=run@a evidence='criu dump of pid [0-9]+ failed' ;;
    esac
    local tag="case$index-$name" counter=$((1000 + index * 7))
    echo "KVS_PID=" >"$MIGRATE_WORK/case.pids"
    # shellcheck disable=SC2317 # run by the trap below
    save_pids() {
        {
            echo "KVS_PID=${KVS_PID:-}"
            echo "SPMD_A=${SPMD_PID[a]:-}"
            echo "SPMD_B=${SPMD_PID[b]:-}"
            echo "CASE_IP=$CASE_IP"
        } >"$MIGRATE_WORK/case.pids"
    }
    trap save_pids EXIT
    cr_log "=== case $index: $name (expect the process on $expect)"

    unset SPM_HOST_FAULT_A SPM_HOST_FAULT_B SPM_HOST_CRIU_CONFIG_A
    [ -z "$fault" ] || export "SPM_HOST_FAULT_${fault_host^^}=$fault"
    [ -z "$criu_config" ] || export SPM_HOST_CRIU_CONFIG_A=$criu_config
    host_fresh a
    host_fresh b
    : >"$MIGRATE_WORK/kvs.log"
    rm -f "$MIGRATE_WORK"/recover.out "$MIGRATE_WORK"/migrate.* "$MIGRATE_WORK"/inject.*
    spm_kvs_start a "$ip"
    spm_kvs_data load "$ip" "$keys" "$tag" >/dev/null || mig_fail "loading the kvs failed"
    redis-cli -h "$ip" INCRBY ctr $((counter - 3)) >/dev/null
    local i
    for i in 1 2 3; do redis-cli -h "$ip" INCR ctr >/dev/null; done
    [ "$(redis-cli -h "$ip" GET ctr)" == "$counter" ] || mig_fail "counter not at $counter before"

    local injector=
    case $inject in
    link)
        (wait_for_file_line "$MIGRATE_WORK/migrate.out" '^  transfer ' 120 &&
            ip link set spmv-b down && now >"$MIGRATE_WORK/inject.done") &
        injector=$!
        ;;
    kill-dest)
        (wait_for_file_line "$MIGRATE_WORK/migrate.out" '^  transfer ' 120 &&
            kill -KILL "${SPMD_PID[b]}" && now >"$MIGRATE_WORK/inject.done") &
        injector=$!
        ;;
    kill-src)
        (wait_for_file_line "$MIGRATE_WORK/migrate.out" '^  transfer ' 120 &&
            kill -KILL "${SPMD_PID[a]}" && now >"$MIGRATE_WORK/inject.done") &
        injector=$!
        ;;
    kill-criu-*)
        kill_criu_when "${inject#kill-criu-}" &
        injector=$!
        ;;
    esac

    # A connection held across a dump that dies must work after it: the
    # killed criu's lock table is gone and its sockets out of repair mode.
    case $name in criu-*) exec 4<>"/dev/tcp/$ip/6379" ;; esac
    local t0 t_migrated t_settled
    t0=$(now)
    spm_migrate a "$KVS_PID" b --move-ip "$ip/24"
    t_migrated=$(now)
    local migrate_status=$MIGRATE_STATUS
    if [ -n "$injector" ]; then
        kill "$injector" 2>/dev/null || true
        wait "$injector" 2>/dev/null || true
        if [ ! -e "$MIGRATE_WORK/inject.done" ]; then
            # The injector lost a race with the migration (a loaded machine):
            # not a verdict on spmd; the parent runs the case again.
            echo "MISSED: the injection ($inject) did not happen during the migration (status $migrate_status)"
            exit 3
        fi
    fi
    cr_log "spm migrate exited $migrate_status after $(elapsed "$t0" "$t_migrated") s"
    # A cut link is noticed by TCP in about 10 s, not at the 30 s deadline
    # of the send (which, with the discard attempt after it, took 35 s).
    if [ "$name" == real-link-cut ] &&
        python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 25)' "$(elapsed "$t0" "$t_migrated")"; then
        mig_fail "the cut link was noticed only after $(elapsed "$t0" "$t_migrated") s"
    fi
    local seen state host
    state=$(awk '{print $3}' "/proc/$KVS_PID/stat" 2>/dev/null || echo gone)
    host=$(mig_pid_host "$KVS_PID")
    case $state in T | t) seen=T@$host ;; R | S | D) seen=run@$host ;; *) seen=$state@$host ;; esac
    [ "$seen" == "$before" ] ||
        mig_fail "right after spm migrate the process is $seen, expected $before"
    # (grep on the files: `cat | grep -q` fails under pipefail when grep
    # stops reading early.)
    grep -sqE "$evidence" "$MIGRATE_WORK"/a/spmd.log* "$MIGRATE_WORK"/b/spmd.log* \
        "$MIGRATE_WORK"/migrate.out "$MIGRATE_WORK"/migrate.err ||
        mig_fail "no sign that the fault fired (looked for /$evidence/)"
    case $name in
    none) [ "$migrate_status" -eq 0 ] || mig_fail "a migration without fault failed" ;;
    # These cannot end well in one go: the source died, or the process
    # came back to a.
    src-crash-* | src-sigkill-transfer | dest-restore-fail | dest-criu-restore-killed | \
        link-cut-transfer | dest-sigkill-transfer | real-link-cut | criu-*)
        [ "$migrate_status" -ne 0 ] || mig_fail "spm migrate reported success despite $name"
        ;;
    esac

    # Recovery, as an operator would: restart what died (without the
    # fault), bring the link back, spm recover until settled.
    unset SPM_HOST_FAULT_A SPM_HOST_FAULT_B SPM_HOST_CRIU_CONFIG_A
    local restarted=
    for host in a b; do
        if ! spmd_alive "$host"; then
            spmd_restart "$host"
            restarted+="$host"
        fi
    done
    ip link set spmv-b up
    recover_until_settled
    # Recovery time: until the one copy runs where it should.
    spm_assert_one_copy "$KVS_PID" "$expect"
    t_settled=$(now)
    assert_one_copy "$expect" "$ip" "$keys" "$tag" "$counter"
    case $name in
    criu-*)
        local reply='' locks
        locks=$(mig_nft_tables a | awk '$2 ~ /^CRIU-/ {print $2}' | tr '\n' ' ')
        [ -z "$locks" ] || mig_fail "the killed dump's lock table is still in host a: $locks"
        printf 'PING\r\n' >&4
        IFS= read -r -t 10 reply <&4 || true
        [ "${reply%$'\r'}" == "+PONG" ] ||
            mig_fail "a connection held across the killed dump got [$reply] after it"
        exec 4<&-
        ;;
    esac
    # Every journal on both hosts ended in a final phase (read from the
    # files, not from spmd's own account of them).
    local journals='' j phase
    for host in a b; do
        for j in "$MIGRATE_WORK/$host"/state/migrations/*/journal; do
            [ -e "$j" ] || continue
            phase=$(sed -n 's/^phase=//p' "$j")
            case $phase in done | kept | failed | discarded | running) ;;
            *) mig_fail "journal $j is still at phase '$phase' after recovery" ;;
            esac
            journals+="${journals:+,}$host:$phase"
        done
    done
    local extra=
    [ ! -s "$MIGRATE_WORK/inject.state" ] || extra=" kvs_state_at_kill=$(cat "$MIGRATE_WORK/inject.state")"
    echo "CASE $name: PASS copy=$expect before=$seen migrate_status=$migrate_status migrate_s=$(elapsed "$t0" "$t_migrated") restarted=${restarted:-none} journals=$journals recover_rounds=$RECOVER_ROUNDS recover_s=$(elapsed "$t_migrated" "$t_settled")$extra" |
        tee "$MIGRATE_WORK/case.summary"
}

# Parent side of a case's end: whatever the case left (its kvs wherever it
# runs, both spmds, the link, the service address, CRIU's network-lock
# tables) goes.
case_teardown() {
    local KVS_PID='' SPMD_A='' SPMD_B='' CASE_IP='' pid ns line
    # shellcheck disable=SC1091
    source "$MIGRATE_WORK/case.pids"
    ip link set spmv-b up 2>/dev/null || true
    for pid in $KVS_PID $(kvs_processes | awk '{print $1}'); do
        kill -KILL "$pid" 2>/dev/null || true
        cr_wait_gone "$pid" 10 || echo "warning: kvs pid $pid still present" >&2
    done
    for pid in $SPMD_A $SPMD_B; do
        kill -KILL "$pid" 2>/dev/null || true
        cr_wait_gone "$pid" 10 || echo "warning: spmd pid $pid still present" >&2
    done
    for ns in a b; do
        [ -z "${FAULT_DEBUG:-}" ] || { echo "DEBUG $ns:"; nsenter --net=/run/netns/spm-$ns ss -ltnp; }
        if [ -n "$CASE_IP" ]; then
            line=$(nsenter --net="/run/netns/spm-$ns" ip -4 -o addr show dev eth0 | awk -v ip="$CASE_IP" '$4 ~ "^"ip"/" {print $4}')
            [ -z "$line" ] || nsenter --net="/run/netns/spm-$ns" ip addr del "$line" dev eth0 || true
        fi
        for line in $(mig_nft_tables "$ns" | awk '$2 ~ /^CRIU/ {print $1 "/" $2}'); do
            echo "    note: host $ns still had CRIU's network-lock table ${line#*/}; removing it"
            nsenter --net="/run/netns/spm-$ns" nft delete table "${line%/*}" "${line#*/}" || true
        done
    done
}

SUMMARY=()
FAILED=0
index=0
for name in "${CASES[@]}"; do
    index=$((index + 1))
    rm -f "$MIGRATE_WORK/case.summary" "$MIGRATE_WORK/case.pids"
    start=$(now)
    for attempt in 1 2 3; do
        rm -f "$MIGRATE_WORK/case.summary" "$MIGRATE_WORK/case.pids"
        set +e
        (run_case "$name" "$index")
        status=$?
        set -e
        [ ! -e "$MIGRATE_WORK/case.pids" ] || case_teardown
        [ "$status" -eq 3 ] || break
        cr_log "case $name: the injection missed its moment (attempt $attempt of 3)"
    done
    if [ "$status" -ne 0 ] || [ ! -s "$MIGRATE_WORK/case.summary" ]; then
        FAILED=$((FAILED + 1))
        SUMMARY+=("CASE $name: FAIL after $(elapsed "$start" "$(now)") s (see FAIL above)")
        # Keep the logs of a failed case next to the others.
        mkdir -p "$MIGRATE_WORK/failed-$name"
        cp -a "$MIGRATE_WORK"/a "$MIGRATE_WORK"/b "$MIGRATE_WORK"/*.out "$MIGRATE_WORK"/*.err \
            "$MIGRATE_WORK"/kvs.log "$MIGRATE_WORK/failed-$name/" 2>/dev/null || true
    else
        SUMMARY+=("$(cat "$MIGRATE_WORK/case.summary") attempts=$attempt")
    fi
done

echo "=== summary (${#CASES[@]} cases, $FAILED failed)"
printf '%s\n' "${SUMMARY[@]}"
[ $FAILED -eq 0 ] || mig_fail "$FAILED of ${#CASES[@]} fault cases failed"
cr_log "PASS"
