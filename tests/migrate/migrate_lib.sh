# shellcheck shell=bash disable=SC2034
# Shared by the migration tests (tests/migrate); sourced, not run. Builds on
# tests/cr/cr_lib.sh (the skip when root or CRIU >= 4.2 is missing, logging,
# cr_wait_gone) and adds the simulated hosts of scripts/hosts.sh: the test
# brings up the hosts it needs, remembers which ones it created, and its
# cleanup removes only those, ends the processes it registered (by PID),
# stops its captures and removes its work directory.
#
# The environment comes from tests/migrate/meson.build (MIGRATE_*, CR_LIB).

# shellcheck source=../cr/cr_lib.sh
source "${CR_LIB:?run from meson}"

MIGRATE_HOSTS_SH=${MIGRATE_HOSTS_SH:-${SPM_SOURCE_ROOT:?}/scripts/hosts.sh}
MIGRATE_PLAIN_SH=${MIGRATE_PLAIN_SH:-$SPM_SOURCE_ROOT/scripts/plain-migrate.sh}
MIGRATE_WORK=
MIGRATE_CREATED_HOSTS=()
MIGRATE_PIDS=()
MIGRATE_CLEANUP_HOOKS=()
MIGRATE_CAPTURES=()
MIGRATE_SERVICE_IPS=() # "HOST IP" the test added; removed at exit wherever they are

mig_fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "${MIGRATE_WORK:-/nonexistent}"/*.log; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f:" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

mig_require() {
    cr_require_root_and_criu
    local tool
    for tool in "$@" nsenter ip socat tar; do
        command -v "$tool" >/dev/null ||
            cr_skip "$tool is not installed (scripts/install-deps.sh installs it)"
    done
    [ -x "$MIGRATE_HOSTS_SH" ] || mig_fail "scripts/hosts.sh missing at $MIGRATE_HOSTS_SH"
    ip link add spm-probe0 type bridge 2>/dev/null ||
        cr_skip "cannot create a bridge here (no CAP_NET_ADMIN or no bridge support)"
    ip link del spm-probe0
}

mig_cleanup() {
    local status=$? hook pid name
    for hook in "${MIGRATE_CLEANUP_HOOKS[@]}"; do
        "$hook" || true
    done
    for name in "${MIGRATE_CAPTURES[@]}"; do
        "$MIGRATE_HOSTS_SH" capture stop "$name" >/dev/null 2>&1 || true
    done
    for pid in "${MIGRATE_PIDS[@]}"; do
        [ -n "$pid" ] || continue
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${MIGRATE_PIDS[@]}"; do
        [ -n "$pid" ] || continue
        cr_wait_gone "$pid" 10 || echo "warning: pid $pid still present after cleanup" >&2
    done
    local entry ns
    for entry in "${MIGRATE_SERVICE_IPS[@]}"; do
        for ns in /run/netns/spm-*; do
            [ -e "$ns" ] || continue
            nsenter --net="$ns" ip addr del "${entry#* }/32" dev eth0 2>/dev/null || true
        done
    done
    for name in "${MIGRATE_CREATED_HOSTS[@]}"; do
        "$MIGRATE_HOSTS_SH" down "$name" >/dev/null || echo "warning: hosts.sh down $name failed" >&2
    done
    if [ -n "$MIGRATE_WORK" ] && [ -z "${MIGRATE_KEEP:-}" ]; then
        rm -rf "$MIGRATE_WORK"
    elif [ -n "$MIGRATE_WORK" ]; then
        echo "MIGRATE_KEEP set: work directory kept at $MIGRATE_WORK"
    fi
    return $status
}

# mig_setup: work directory and the cleanup trap.
mig_setup() {
    MIGRATE_WORK=$(mktemp -d /tmp/spm-migrate.XXXXXX)
    trap mig_cleanup EXIT
    cr_log "work directory $MIGRATE_WORK, criu $CR_CRIU_VERSION"
}

# mig_hosts_up NAMES...: brings the hosts up; those that did not exist are
# removed at exit. A host that existed is reused and left in place.
mig_hosts_up() {
    local name
    for name in "$@"; do
        if [ ! -e "/run/netns/spm-$name" ]; then
            MIGRATE_CREATED_HOSTS+=("$name")
        fi
    done
    "$MIGRATE_HOSTS_SH" up "$@" >"$MIGRATE_WORK/hosts-up.out" 2>&1 ||
        mig_fail "hosts.sh up $* failed: $(cat "$MIGRATE_WORK/hosts-up.out")"
}

# mig_netns_inode NAME: the inode of host NAME's network namespace, to
# compare with /proc/PID/ns/net.
mig_netns_inode() { stat -L -c %i "/run/netns/spm-$1"; }

# mig_pid_host PID: the host whose network namespace PID is in, or
# "root"/"other".
mig_pid_host() {
    local pid=$1 inode ns
    inode=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || {
        echo gone
        return 0
    }
    for ns in /run/netns/spm-*; do
        [ -e "$ns" ] || continue
        if [ "$(stat -L -c %i "$ns")" == "$inode" ]; then
            echo "${ns#/run/netns/spm-}"
            return 0
        fi
    done
    if [ "$(stat -L -c %i /proc/1/ns/net)" == "$inode" ]; then echo root; else echo other; fi
}

# mig_service_ip_free IP: no host holds IP.
mig_service_ip_free() {
    local ip=$1 ns
    for ns in /run/netns/spm-*; do
        [ -e "$ns" ] || continue
        if nsenter --net="$ns" ip -4 -o addr show | grep -q " $ip/"; then
            return 1
        fi
    done
    return 0
}

# mig_host_has_ip NAME IP
mig_host_has_ip() {
    nsenter --net="/run/netns/spm-$1" ip -4 -o addr show dev eth0 | grep -q " $2/"
}

# mig_nft_tables NAME: the nft tables in host NAME (one "family name" a line).
mig_nft_tables() {
    nsenter --net="/run/netns/spm-$1" nft list tables 2>/dev/null | awk '{print $2 " " $3}'
}

# mig_capture_start NAME FILE / mig_capture_stop NAME: tcpdump on host
# NAME's link (root side); a capture still running at exit is stopped.
mig_capture_start() {
    "$MIGRATE_HOSTS_SH" capture start "$1" "$2" >/dev/null || mig_fail "capture on host $1 did not start"
    MIGRATE_CAPTURES+=("$1")
}

mig_capture_stop() {
    "$MIGRATE_HOSTS_SH" capture stop "$1" >/dev/null || mig_fail "capture on host $1 did not stop"
    local kept=() name
    for name in "${MIGRATE_CAPTURES[@]}"; do
        [ "$name" == "$1" ] || kept+=("$name")
    done
    MIGRATE_CAPTURES=("${kept[@]}")
}

# mig_service_ip_add NAME IP: adds a service address to host NAME; it is
# removed from whichever host holds it at exit.
mig_service_ip_add() {
    "$MIGRATE_HOSTS_SH" service-ip add "$1" "$2" || mig_fail "hosts.sh service-ip add $1 $2 failed"
    MIGRATE_SERVICE_IPS+=("$1 $2")
}

# mig_host_is_ours NAME: this test created host NAME (so nothing else runs
# in it).
mig_host_is_ours() {
    local name
    for name in "${MIGRATE_CREATED_HOSTS[@]}"; do
        [ "$name" != "$1" ] || return 0
    done
    return 1
}
