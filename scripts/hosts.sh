#!/usr/bin/env bash
# Simulated hosts for SPM's migration tests and demo: each "host" is a
# network namespace spm-NAME joined by a veth pair to the bridge spmbr0 in
# the root namespace. The root namespace plays the clients' and operator's
# network (10.77.0.254); host NAME gets 10.77.0.N (a=1, b=2, c=3, ...);
# service addresses (10.77.0.100 and up) move between hosts with the
# workload. Processes are started in a host with `nsenter --net` so they
# keep the machine's mount namespace (`ip netns exec` gives a private one,
# and CRIU then cannot dump them: CRIU.md).
#
# usage: hosts.sh up [NAMES...]          create hosts (default: a b c); idempotent
#        hosts.sh down [--kill] [NAMES...]  remove the named hosts (default: all
#                                        spm-* hosts), the bridge when none is left
#        hosts.sh exec NAME CMD...       run CMD in host NAME's network namespace
#        hosts.sh ip NAME                print host NAME's address
#        hosts.sh mac NAME               print host NAME's eth0 MAC address
#        hosts.sh service-ip add|del NAME IP
#        hosts.sh capture start IFACE|NAME FILE
#        hosts.sh capture stop [IFACE|NAME]
set -euo pipefail

BRIDGE=spmbr0
SUBNET_PREFIX=10.77.0
BRIDGE_IP=$SUBNET_PREFIX.254
STATE_DIR=${SPM_HOSTS_STATE_DIR:-/run/spm-hosts}

die() {
    echo "hosts.sh: $*" >&2
    exit 1
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "network namespaces need root (uid is $(id -u))"
    command -v ip >/dev/null || die "ip is missing (Debian: iproute2)"
    command -v nsenter >/dev/null || die "nsenter is missing (Debian: util-linux)"
}

# host_index NAME: a=1 ... z=26. Host names are single lowercase letters so
# that the address and the interface names follow from the name alone.
host_index() {
    local name=$1
    [[ $name =~ ^[a-z]$ ]] || die "host name '$name' must be one lowercase letter (a=10.77.0.1, b=10.77.0.2, ...)"
    local code
    code=$(printf '%d' "'$name")
    echo $((code - 96))
}

netns_of() { echo "spm-$1"; }
veth_of() { echo "spmv-$1"; }
host_ip() { echo "$SUBNET_PREFIX.$(host_index "$1")"; }
# A fixed, locally administered MAC per host makes captures and neighbour
# tables readable (02:77:00:00:00:NN).
host_mac() { printf '02:77:00:00:00:%02x\n' "$(host_index "$1")"; }

host_exists() { [ -e "/run/netns/$(netns_of "$1")" ]; }

in_host() {
    local name=$1
    shift
    nsenter --net="/run/netns/$(netns_of "$name")" -- "$@"
}

bridge_up() {
    if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    # No STP delay: a port forwards as soon as it is attached.
    ip link set dev "$BRIDGE" type bridge forward_delay 0 stp_state 0
    ip addr replace "$BRIDGE_IP/24" dev "$BRIDGE"
    ip link set dev "$BRIDGE" up
}

host_up() {
    local name=$1
    local ns veth ip mac
    ns=$(netns_of "$name")
    veth=$(veth_of "$name")
    ip=$(host_ip "$name")
    mac=$(host_mac "$name")
    if ! host_exists "$name"; then
        # A root-side veth left from a namespace that was removed while a
        # process still held it would make the new pair fail: drop it.
        ip link del "$veth" 2>/dev/null || true
        ip netns add "$ns"
    fi
    if ! ip link show dev "$veth" >/dev/null 2>&1; then
        ip link add "$veth" type veth peer name eth0 netns "$ns"
    fi
    ip link set dev "$veth" master "$BRIDGE"
    ip link set dev "$veth" up
    in_host "$name" ip link set dev lo up
    in_host "$name" ip link set dev eth0 address "$mac"
    in_host "$name" ip addr replace "$ip/24" dev eth0
    in_host "$name" ip link set dev eth0 up
    in_host "$name" ip route replace default via "$BRIDGE_IP" dev eth0
    echo "host $name: netns $ns, $ip/24 (eth0 $mac), root side $veth on $BRIDGE"
}

cmd_up() {
    need_root
    local names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(a b c)
    local name
    for name in "${names[@]}"; do
        host_index "$name" >/dev/null
    done
    mkdir -p "$STATE_DIR"
    bridge_up
    for name in "${names[@]}"; do
        host_up "$name"
    done
}

# cmd_down [--kill] [NAMES...]: removes the named hosts (default: every
# spm-* host), then the bridge once no host is left on it.
cmd_down() {
    need_root
    local kill=0
    if [ "${1:-}" == "--kill" ]; then
        kill=1
        shift
    fi
    local names=("$@") ns name pids
    if [ ${#names[@]} -eq 0 ]; then
        cmd_capture_stop "" || true
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^spm-[a-z]$' || true); do
            names+=("${ns#spm-}")
        done
    fi
    for name in "${names[@]}"; do
        host_index "$name" >/dev/null
        ns=$(netns_of "$name")
        [ -e "/run/netns/$ns" ] || continue
        [ -z "$(ls "$STATE_DIR"/capture-"$(veth_of "$name")".pid 2>/dev/null)" ] ||
            cmd_capture_stop "$name" || true
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "$pids" ]; then
            if [ $kill -eq 1 ]; then
                echo "host $name: killing processes still inside: $pids"
                # shellcheck disable=SC2086
                kill -KILL $pids 2>/dev/null || true
            else
                echo "host $name: warning: processes still inside keep its network alive: $pids (down --kill ends them)" >&2
            fi
        fi
        # nft tables (CRIU's network locks, plain-migrate's guards) live in
        # the namespace and go with it; delete them explicitly in case a
        # process keeps the namespace alive.
        local table
        for table in $(in_host "$name" nft list tables 2>/dev/null | awk '{print $2 " " $3}' | tr ' ' '/' || true); do
            in_host "$name" nft delete table "${table%%/*}" "${table#*/}" 2>/dev/null || true
        done
        ip netns del "$ns"
        ip link del "$(veth_of "$name")" 2>/dev/null || true
        echo "host $name: removed"
    done
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -q '^spm-[a-z]$'; then
        return 0
    fi
    if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
        ip link del "$BRIDGE"
        echo "bridge $BRIDGE: removed"
    fi
    rm -rf "$STATE_DIR"
}

cmd_exec() {
    need_root
    [ $# -ge 2 ] || die "usage: hosts.sh exec NAME CMD..."
    local name=$1
    shift
    host_exists "$name" || die "no host '$name' (run: hosts.sh up $name)"
    exec nsenter --net="/run/netns/$(netns_of "$name")" -- "$@"
}

valid_service_ip() {
    local ip=$1
    [[ $ip =~ ^10\.77\.0\.([0-9]+)$ ]] || return 1
    local last=${BASH_REMATCH[1]}
    [ "$last" -ge 100 ] && [ "$last" -le 253 ]
}

# forget_stale_neighbour IP MAC: wherever a neighbour entry for IP names
# another MAC (root namespace and every host), delete it so the next packet
# resolves IP afresh. The gratuitous ARP normally updates these entries, but
# Linux ignores it within the entry's locktime (1 s) of the last update,
# which is exactly when a migration announces the moved address.
forget_stale_neighbour() {
    local ip=$1 mac=$2 line ns
    line=$(ip neigh show to "$ip" dev "$BRIDGE" 2>/dev/null || true)
    if [ -n "$line" ] && ! grep -qi "lladdr $mac" <<<"$line"; then
        ip neigh del "$ip" dev "$BRIDGE" 2>/dev/null || true
    fi
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^spm-[a-z]$' || true); do
        line=$(nsenter --net="/run/netns/$ns" ip neigh show to "$ip" dev eth0 2>/dev/null || true)
        if [ -n "$line" ] && ! grep -qi "lladdr $mac" <<<"$line"; then
            nsenter --net="/run/netns/$ns" ip neigh del "$ip" dev eth0 2>/dev/null || true
        fi
    done
}

cmd_service_ip() {
    need_root
    [ $# -eq 3 ] || die "usage: hosts.sh service-ip add|del NAME IP"
    local action=$1 name=$2 ip=$3
    host_exists "$name" || die "no host '$name' (run: hosts.sh up $name)"
    valid_service_ip "$ip" || die "service address '$ip' is not in 10.77.0.100-10.77.0.253"
    case $action in
    add)
        in_host "$name" ip addr replace "$ip/32" dev eth0
        # Announce the new owner: unsolicited ARP (iputils-arping) updates
        # every neighbour cache on the bridge. arping always lingers a
        # second for replies, which a migration must not wait for, so it
        # runs detached and the entries here are corrected synchronously
        # below. One packet only: it is sent at once, whereas a second one
        # a second later could announce this host after the address has
        # already moved on (a fast migration back), pointing clients at the
        # wrong host.
        if command -v arping >/dev/null; then
            in_host "$name" setsid arping -q -U -c 1 -w 1 -I eth0 -s "$ip" "$ip" \
                </dev/null >/dev/null 2>&1 &
        else
            echo "hosts.sh: warning: arping missing (Debian: iputils-arping); only flushing neighbour entries" >&2
        fi
        forget_stale_neighbour "$ip" "$(host_mac "$name")"
        ;;
    del)
        in_host "$name" ip addr del "$ip/32" dev eth0 2>/dev/null || true
        ;;
    *) die "service-ip: unknown action '$action' (add or del)" ;;
    esac
}

# capture_iface ARG: a host name stands for its root-side veth.
capture_iface() {
    local arg=$1
    if [[ $arg =~ ^[a-z]$ ]] && host_exists "$arg"; then
        veth_of "$arg"
    else
        echo "$arg"
    fi
}

cmd_capture_start() {
    need_root
    [ $# -eq 2 ] || die "usage: hosts.sh capture start IFACE|NAME FILE"
    command -v tcpdump >/dev/null || die "tcpdump is missing (Debian: tcpdump)"
    local iface file
    iface=$(capture_iface "$1")
    file=$2
    ip link show dev "$iface" >/dev/null 2>&1 || die "no interface '$iface' in the root namespace"
    mkdir -p "$STATE_DIR"
    local pidfile=$STATE_DIR/capture-$iface.pid
    if [ -f "$pidfile" ] && kill -0 "$(<"$pidfile")" 2>/dev/null; then
        die "a capture on $iface is already running (pid $(<"$pidfile"))"
    fi
    local log=$STATE_DIR/capture-$iface.log
    # -U: write each packet as it comes, so a stop never loses the tail.
    setsid tcpdump -n -U -i "$iface" -w "$file" </dev/null >"$log" 2>&1 &
    local pid=$!
    echo "$pid" >"$pidfile"
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$log" 2>/dev/null && {
            echo "capture on $iface -> $file (tcpdump pid $pid)"
            return 0
        }
        kill -0 "$pid" 2>/dev/null || die "tcpdump on $iface failed: $(cat "$log")"
        sleep 0.05
    done
    die "tcpdump on $iface not listening after 5 s: $(cat "$log")"
}

# cmd_capture_stop [IFACE|NAME]: stops one capture, or all of them.
cmd_capture_stop() {
    local only=""
    [ -n "${1:-}" ] && only=$(capture_iface "$1")
    local pidfile pid iface stopped=0
    for pidfile in "$STATE_DIR"/capture-*.pid; do
        [ -f "$pidfile" ] || continue
        iface=${pidfile##*/capture-}
        iface=${iface%.pid}
        [ -z "$only" ] || [ "$iface" == "$only" ] || continue
        pid=$(<"$pidfile")
        # SIGINT lets tcpdump flush and close the file; only the PID this
        # script recorded is signalled.
        if kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null || true
            local i
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
            done
            if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
        rm -f "$pidfile" "$STATE_DIR/capture-$iface.log"
        stopped=$((stopped + 1))
        echo "capture on $iface stopped"
    done
    [ -z "$only" ] || [ $stopped -gt 0 ] || die "no capture running on $only"
}

main() {
    [ $# -ge 1 ] || die "usage: hosts.sh up|down|exec|ip|mac|service-ip|capture ... (see the header)"
    local cmd=$1
    shift
    case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    exec) cmd_exec "$@" ;;
    ip)
        [ $# -eq 1 ] || die "usage: hosts.sh ip NAME"
        host_ip "$1"
        ;;
    mac)
        [ $# -eq 1 ] || die "usage: hosts.sh mac NAME"
        host_mac "$1"
        ;;
    service-ip) cmd_service_ip "$@" ;;
    capture)
        [ $# -ge 1 ] || die "usage: hosts.sh capture start IFACE FILE | capture stop [IFACE]"
        local sub=$1
        shift
        case $sub in
        start) cmd_capture_start "$@" ;;
        stop)
            need_root
            cmd_capture_stop "$@"
            ;;
        *) die "capture: unknown subcommand '$sub' (start or stop)" ;;
        esac
        ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$cmd' (up, down, exec, ip, mac, service-ip, capture)" ;;
    esac
}

main "$@"
