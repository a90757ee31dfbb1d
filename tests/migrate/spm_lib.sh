# shellcheck shell=bash disable=SC2034
# SPM hosts for the migration tests (sourced, not run): on top of
# migrate_lib.sh's network namespaces, each host gets what a real SPM host
# has: its own simulated platform (own root secret and attestation key,
# provisioned by the build's pinned provisioning CA unless the test says
# otherwise), its own TLS host identity from one cluster CA, and its own
# spmd listening for peers inside the host's namespace. Processes share the
# machine's pid namespace and filesystem, as hosts on one machine must; the
# control sockets live in one run directory (pids are unique machine-wide).
#
# Per-host overrides, set before spm_host_up NAME:
#   SPM_HOST_CA_<NAME>=DIR     provision the platform from another CA
#   SPM_HOST_ME_<NAME>=IMAGE   run another Migration Enclave image
#   SPM_HOST_TLS_CA_<NAME>=DIR issue the host certificate from another CA
#   SPM_HOST_FAULT_<NAME>=F    spmd's SPMD_FAULT injection point
#   SPM_HOST_ARGS_<NAME>=...   extra spmd arguments (e.g. --allow-debug)
#   SPM_HOST_CRIU_CONFIG_<NAME>=FILE
#                              a CRIU configuration file for the CRIU runs
#                              of host NAME's spmd (CRIU_CONFIG_FILE), e.g.
#                              an action script that looks in mid-run

# shellcheck source=migrate_lib.sh
source "${MIGRATE_LIB:?run from meson}"

SPM_PROVISIONING_CA=${SPM_PROVISIONING_CA:?run from meson}
declare -A SPMD_PID

spm_host_index() { printf '%d' "$(($(printf '%d' "'$1") - 96))"; }
spm_host_ip() { echo "10.77.0.$(spm_host_index "$1")"; }
spm_in() {
    local name=$1
    shift
    nsenter --net="/run/netns/spm-$name" -- "$@"
}

# spm_setup: work directory, cluster CA, shared run dir, the plugin.
spm_setup() {
    mig_setup
    cr_find_pieces
    CR_WORK=$MIGRATE_WORK
    mkdir -p "$MIGRATE_WORK/run" "$MIGRATE_WORK/plugins"
    export SPM_RUN_DIR=$MIGRATE_WORK/run
    "$CR_SPM" ca init --dir "$MIGRATE_WORK/cluster-ca" >/dev/null || mig_fail "spm ca init failed"
    if cmp -s "$CR_PLUGIN" /usr/lib/criu/spm_criu.so; then
        unset SPM_CRIU_PLUGIN_DIR
    else
        ln -s "$CR_PLUGIN" "$MIGRATE_WORK/plugins/spm_criu.so"
        export SPM_CRIU_PLUGIN_DIR=$MIGRATE_WORK/plugins
    fi
    MIGRATE_CLEANUP_HOOKS+=(spm_cleanup)
}

spm_cleanup() {
    local name
    for name in "${!SPMD_PID[@]}"; do
        kill -KILL "${SPMD_PID[$name]}" 2>/dev/null || true
    done
}

# spm_host_up NAME...: hosts with platform, TLS identity and spmd.
spm_host_up() {
    local name
    mig_hosts_up "$@"
    for name in "$@"; do
        local dir=$MIGRATE_WORK/$name upper
        upper=$(tr a-z A-Z <<<"$name")
        local ca_var=SPM_HOST_CA_$upper tls_var=SPM_HOST_TLS_CA_$upper
        local ca=${!ca_var:-$SPM_PROVISIONING_CA} tls_ca=${!tls_var:-$MIGRATE_WORK/cluster-ca}
        mkdir -p "$dir"
        "$CR_SPM" platform init --platform "$dir/platform" --ca "$ca" >/dev/null ||
            mig_fail "platform init for host $name failed"
        "$CR_SPM" host-cert --dir "$tls_ca" --name "host-$name" --ip "$(spm_host_ip "$name")" \
            --out "$dir/tls" >/dev/null || mig_fail "host-cert for host $name failed"
        spm_spmd_start "$name"
    done
}

# spm_kvs_data load|check IP KEYS TAG: KEYS values of 16 KiB (key:00000 on),
# each one derived from TAG and its index, SET into the kvs on IP; check
# GETs every one back and fails on the first one missing or different.
spm_kvs_data() {
    python3 - "$@" <<'EOF'
import socket, sys
op, ip, keys, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
def value(i):
    return ((b"%s-%05d-" % (tag, i)) * 2000)[:16384]
s = socket.create_connection((ip, 6379), timeout=60)
f = s.makefile("rb")
if op == "load":
    for base in range(0, keys, 512):
        buf = bytearray()
        n = min(512, keys - base)
        for i in range(base, base + n):
            v = value(i)
            buf += b"*3\r\n$3\r\nSET\r\n$9\r\nkey:%05d\r\n$%d\r\n%s\r\n" % (i, len(v), v)
        s.sendall(bytes(buf))
        for i in range(n):
            line = f.readline()
            assert line == b"+OK\r\n", (base + i, line[:80])
else:
    for i in range(keys):
        s.sendall(b"*2\r\n$3\r\nGET\r\n$9\r\nkey:%05d\r\n" % i)
        hdr = f.readline()
        assert hdr.startswith(b"$") and int(hdr[1:]) == 16384, ("key:%05d" % i, hdr[:80])
        v = f.read(16384 + 2)[:-2]
        assert v == value(i), "key:%05d has the wrong value" % i
print("%s %d keys ok" % (op, keys))
EOF
}

# spm_criu_action_conf NAME ACTION: writes a CRIU configuration file,
# $MIGRATE_WORK/NAME.conf, and prints its path; its action script
# ($MIGRATE_WORK/NAME.sh) runs the commands read from stdin when CRIU
# reaches ACTION (post-dump, post-restore, ...) and nothing at any other.
# For SPM_HOST_CRIU_CONFIG_<NAME>: a look into, or a fault in, one CRIU run.
spm_criu_action_conf() {
    local name=$1 action=$2 script=$MIGRATE_WORK/$1.sh
    {
        echo '#!/usr/bin/env bash'
        echo "[ \"\$CRTOOLS_SCRIPT_ACTION\" == $action ] || exit 0"
        cat
    } >"$script"
    chmod +x "$script"
    echo "action-script $script" >"$MIGRATE_WORK/$name.conf"
    echo "$MIGRATE_WORK/$name.conf"
}

# spm_spmd_start NAME: (re)starts host NAME's spmd; waits until it serves.
spm_spmd_start() {
    local name=$1 dir=$MIGRATE_WORK/$1 upper
    upper=$(tr a-z A-Z <<<"$name")
    local me_var=SPM_HOST_ME_$upper fault_var=SPM_HOST_FAULT_$upper args_var=SPM_HOST_ARGS_$upper
    local config_var=SPM_HOST_CRIU_CONFIG_$upper
    local -a extra env=()
    read -r -a extra <<<"${!args_var:-}"
    [ -z "${!config_var:-}" ] || env=("CRIU_CONFIG_FILE=${!config_var}")
    rm -f "$dir/spmd.sock"
    # Only this start's readiness line counts (the log is appended to).
    local seen
    seen=$(grep -c "accepting peers" "$dir/spmd.log" 2>/dev/null || true)
    SPMD_FAULT=${!fault_var:-} env "${env[@]}" setsid nsenter --net="/run/netns/spm-$name" -- \
        ${SPM_TEST_WRAP:+"$SPM_TEST_WRAP"} "$CR_SPMD" \
        --platform "$dir/platform" --state "$dir/state" --socket "$dir/spmd.sock" \
        --listen "$(spm_host_ip "$name")" --tls-dir "$dir/tls" --name "$name" \
        --me "${!me_var:-$CR_ME_IMAGE}" "${extra[@]}" </dev/null >>"$dir/spmd.log" 2>&1 &
    SPMD_PID[$name]=$!
    local i n
    # (Under tests/valgrind/memcheck.sh spmd runs through $SPM_TEST_WRAP
    # and starts far slower.)
    for ((i = 0; i < ${SPM_TEST_WRAP:+30}200; i++)); do
        n=$(grep -c "accepting peers" "$dir/spmd.log" 2>/dev/null || true)
        [ "${n:-0}" -gt "${seen:-0}" ] && return 0
        kill -0 "${SPMD_PID[$name]}" 2>/dev/null || mig_fail "spmd of host $name exited: $(tail -3 "$dir/spmd.log")"
        sleep 0.05
    done
    mig_fail "spmd of host $name did not start"
}

# spm_spmd_kill NAME [SIGNAL]
spm_spmd_kill() {
    kill "-${2:-KILL}" "${SPMD_PID[$1]}" 2>/dev/null || true
    wait "${SPMD_PID[$1]}" 2>/dev/null || true
}

# spm_kvs_start HOST IP: kvs serving on IP:6379 in HOST; sets KVS_PID.
# With SPM_KVS_PIDNS=1 kvs is the init of its own PID namespace (what a
# post-copy migration needs; unshare --pid --fork, and its own session
# inside it, which CRIU needs): KVS_PID is its host pid.
spm_kvs_start() {
    local host=$1 ip=$2 dir=$MIGRATE_WORK/$1 ns
    local -a pidns=()
    [ "${SPM_KVS_PIDNS:-0}" != 1 ] || pidns=(unshare --pid --fork setsid)
    # A run that died may have left the address on some host.
    # (with whatever prefix it was given there: /24 here, /32 by spmd)
    local cidr
    for ns in /run/netns/spm-*; do
        [ -e "$ns" ] || continue
        for cidr in $(nsenter --net="$ns" ip -4 -o addr show dev eth0 2>/dev/null |
            awk -v ip="$ip" '{ split($4, a, "/"); if (a[1] == ip) print $4 }'); do
            nsenter --net="$ns" ip addr del "$cidr" dev eth0 2>/dev/null || true
        done
    done
    mig_service_ip_add "$host" "$ip"
    SPM_PLATFORM=$dir/platform SPM_SPMD_SOCKET=$dir/spmd.sock setsid nsenter \
        --net="/run/netns/spm-$host" -- "${pidns[@]}" "$CR_KVS" --enclave "$CR_KVS_IMAGE" \
        --bind "$ip" --port 6379 </dev/null >>"$MIGRATE_WORK/kvs.log" 2>&1 &
    KVS_PID=$!
    MIGRATE_PIDS+=("$KVS_PID")
    local i seen
    seen=$(grep -c "kvs: serving" "$MIGRATE_WORK/kvs.log" 2>/dev/null || true)
    for ((i = 0; i < 200; i++)); do
        if [ "$(grep -c "kvs: serving" "$MIGRATE_WORK/kvs.log" 2>/dev/null || true)" -gt "${seen:-0}" ]; then
            if [ ${#pidns[@]} -gt 0 ]; then
                # unshare's child is kvs, the namespace's pid 1.
                KVS_PID=$(pgrep -P "$KVS_PID" | head -n 1)
                [ -n "$KVS_PID" ] || mig_fail "kvs in its own PID namespace has no pid"
                MIGRATE_PIDS+=("$KVS_PID")
            fi
            return 0
        fi
        sleep 0.05
    done
    mig_fail "kvs did not start in host $host"
}

# spm_migrate FROM PID TO [ARGS...]: runs spm migrate on host FROM; its
# output is in $MIGRATE_WORK/migrate.out, its status in MIGRATE_STATUS.
spm_migrate() {
    local from=$1 pid=$2 to=$3
    shift 3
    MIGRATE_STATUS=0
    spm_in "$from" "$CR_SPM" migrate "$pid" --to "$(spm_host_ip "$to")" \
        --socket "$MIGRATE_WORK/$from/spmd.sock" "$@" >"$MIGRATE_WORK/migrate.out" \
        2>"$MIGRATE_WORK/migrate.err" || MIGRATE_STATUS=$?
    sed 's/^/    /' "$MIGRATE_WORK/migrate.out" "$MIGRATE_WORK/migrate.err"
}

# spm_recover HOST: spm recover on host HOST (output appended to recover.out).
spm_recover() {
    local status=0
    spm_in "$1" "$CR_SPM" recover --socket "$MIGRATE_WORK/$1/spmd.sock" \
        >>"$MIGRATE_WORK/recover.out" 2>&1 || status=$?
    tail -n 5 "$MIGRATE_WORK/recover.out" | sed 's/^/    /'
    return $status
}

# spm_copies PID: the hosts where PID runs (alive, not a zombie), one a line.
spm_copies() {
    local pid=$1 state
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
    case $state in Z | X | "") return 0 ;; esac
    mig_pid_host "$pid"
}

# spm_assert_one_copy PID HOST: PID runs in HOST and nowhere else, and is
# not stopped (it serves).
spm_assert_one_copy() {
    local pid=$1 want=$2 hosts state
    hosts=$(spm_copies "$pid")
    [ "$hosts" == "$want" ] || mig_fail "pid $pid runs in [${hosts//$'\n'/ }], expected exactly [$want]"
    state=$(awk '{print $3}' "/proc/$pid/stat")
    [ "$state" != "T" ] || mig_fail "pid $pid in $want is stopped, not running"
}

# spm_assert_clients_moved FROM TO IP BENCH_PID: after kvs moved from host
# FROM to host TO, its service address IP is on TO only, the idle
# connection held on fd 3 since before the move answers PING (then fd 3 is
# closed), and redis-benchmark (BENCH_PID, output in $MIGRATE_WORK/bench.out)
# ended cleanly, without an error, failure, refusal or reset. Sets
# SPM_BENCH_RESULT to its summary.
spm_assert_clients_moved() {
    local from=$1 to=$2 ip=$3 bench=$4 line status=0
    mig_host_has_ip "$to" "$ip" || mig_fail "the service address is not on $to"
    if mig_host_has_ip "$from" "$ip"; then mig_fail "the service address is still on $from"; fi
    printf 'PING\r\n' >&3
    IFS= read -r -t 30 line <&3 || mig_fail "the idle connection opened before the migration got no reply"
    [ "${line%$'\r'}" == "+PONG" ] || mig_fail "idle connection got [$line]"
    exec 3<&-
    wait "$bench" || status=$?
    SPM_BENCH_RESULT=$(tr '\r' '\n' <"$MIGRATE_WORK/bench.out" | grep -v 'rps=' | grep -v '^[[:space:]]*$' || true)
    [ $status -eq 0 ] || mig_fail "redis-benchmark exited with $status: $SPM_BENCH_RESULT"
    if grep -qiE 'error|fail|refused|reset' <<<"$SPM_BENCH_RESULT"; then
        mig_fail "redis-benchmark: $SPM_BENCH_RESULT"
    fi
}
