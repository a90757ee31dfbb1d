#!/usr/bin/env bash
# Plain-CRIU live migration, stop-and-copy, of a process tree between two
# simulated hosts (scripts/hosts.sh), done the way an operator would without
# SPM. It is the baseline SPM's migration is measured against, and the proof
# that the network part (established TCP connections, a moving service
# address) works on these hosts.
#
# usage: plain-migrate.sh PID FROM TO [--images DIR] [--service-ip IP]...
#                         [--port PORT] [--json] [--keep-images]
#
#   PID            root of the process tree; it must run in host FROM's
#                  network namespace, in its own session (no --shell-job)
#   --images DIR   work directory (default: a new one under /tmp, removed
#                  at the end unless --keep-images); DIR/dump is what FROM
#                  dumps, DIR/recv what TO received over the link
#   --service-ip   address to move from FROM to TO (repeatable; default:
#                  every service address, 10.77.0.100-253, FROM holds)
#   --port         TCP port of the image transfer on TO (default 7707)
#   --json         print the report as one JSON object
#
# Steps: a receiver (socat | tar -x) listens in TO; `criu dump
# --tcp-established --network-lock nftables --skip-in-flight` runs inside
# FROM's network namespace (nsenter --net, so CRIU sees the process in its
# own netns and does not try to dump the namespace); the service addresses
# leave FROM and CRIU's network-lock table there is deleted; tar | socat in
# FROM sends the images to TO across the veth link; a guard table in TO
# drops TCP to the service addresses while they are added there (a client's
# retransmission reaching TO before the sockets are restored would be
# answered with a reset); `criu restore -d` inside TO's netns recreates the
# tree (same PIDs) in TO's namespace; the guard goes. If the restore fails,
# the tree is restored back on FROM with the addresses.
#
# Downtime is measured from the moment CRIU freezes the tree (the dump
# log's first "Seized task", placed on the wall clock by counting back from
# the moment `criu dump` returned) to the moment the restored tree runs in
# TO and the guard is gone (wall clock after `criu restore -d` returned and
# the guard table was deleted). It includes the transfer: this is
# stop-and-copy. It is an upper bound: the process starts and exits around
# the two clock readings add up to about 15 ms. A client sees a little more: its retransmission timer
# decides when it next tries (tests/migrate/resp_probe.py measures that).
#
# CRIU is run with --libdir on an empty directory so no installed plugin
# (SPM's spm_criu.so in /usr/lib/criu) is loaded: this is plain CRIU.
set -euo pipefail

HOSTS=${SPM_HOSTS_SCRIPT:-$(dirname "$(readlink -f "$0")")/hosts.sh}

die() {
    echo "plain-migrate: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

now_ns() { date +%s%N; }
ms_between() { echo $((($2 - $1) / 1000000)); }

PID=
FROM=
TO=
IMAGES=
KEEP=0
JSON=0
PORT=7707
SERVICE_IPS=()
positional=()
while [ $# -gt 0 ]; do
    case $1 in
    --images)
        IMAGES=${2:?--images needs a directory}
        KEEP=1
        shift 2
        ;;
    --service-ip)
        SERVICE_IPS+=("${2:?--service-ip needs an address}")
        shift 2
        ;;
    --port)
        PORT=${2:?--port needs a number}
        shift 2
        ;;
    --json)
        JSON=1
        shift
        ;;
    --keep-images)
        KEEP=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        positional+=("$1")
        shift
        ;;
    esac
done
[ ${#positional[@]} -eq 3 ] || die "usage: plain-migrate.sh PID FROM TO [--images DIR] [--json] (see --help)"
PID=${positional[0]}
FROM=${positional[1]}
TO=${positional[2]}
[[ $PID =~ ^[0-9]+$ ]] || die "PID '$PID' is not a number"
if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "bad --port '$PORT'"
fi
[ "$FROM" != "$TO" ] || die "FROM and TO are the same host '$FROM'"

[ "$(id -u)" -eq 0 ] || die "needs root (uid is $(id -u))"
for tool in criu nft socat tar nsenter ip; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
FROM_NS=/run/netns/spm-$FROM
TO_NS=/run/netns/spm-$TO
[ -e "$FROM_NS" ] || die "no host '$FROM' (scripts/hosts.sh up $FROM)"
[ -e "$TO_NS" ] || die "no host '$TO' (scripts/hosts.sh up $TO)"
[ -d "/proc/$PID" ] || die "no process $PID"
netns_inode() { stat -L -c %i "$1"; }
[ "$(netns_inode "/proc/$PID/ns/net")" == "$(netns_inode "$FROM_NS")" ] ||
    die "process $PID is not in host $FROM's network namespace"
TO_IP=$("$HOSTS" ip "$TO")

in_from() { nsenter --net="$FROM_NS" -- "$@"; }
in_to() { nsenter --net="$TO_NS" -- "$@"; }

if [ ${#SERVICE_IPS[@]} -eq 0 ]; then
    while read -r addr; do
        addr=${addr%/*}
        [[ $addr =~ ^10\.77\.0\.([0-9]+)$ ]] || continue
        [ "${BASH_REMATCH[1]}" -ge 100 ] && [ "${BASH_REMATCH[1]}" -le 253 ] && SERVICE_IPS+=("$addr")
    done < <(in_from ip -4 -o addr show dev eth0 | awk '{print $4}')
fi

if [ -z "$IMAGES" ]; then
    IMAGES=$(mktemp -d /tmp/spm-plain-migrate.XXXXXX)
fi
mkdir -p "$IMAGES"
[ -z "$(ls -A "$IMAGES" 2>/dev/null)" ] || die "images directory $IMAGES is not empty"
DUMP_DIR=$IMAGES/dump
RECV_DIR=$IMAGES/recv
NO_PLUGINS=$IMAGES/no-plugins
mkdir -p "$DUMP_DIR" "$RECV_DIR" "$NO_PLUGINS"
CRIU_COMMON=(--tcp-established --network-lock nftables --libdir "$NO_PLUGINS" -v4)

GUARD=spm_plain_migrate
RECEIVER_PID=
GUARD_SET=0
STAGE=start
RESULT=1

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    if [ -n "$RECEIVER_PID" ] && kill -0 "$RECEIVER_PID" 2>/dev/null; then
        kill -TERM "$RECEIVER_PID" 2>/dev/null || true
        wait "$RECEIVER_PID" 2>/dev/null || true
    fi
    if [ $GUARD_SET -eq 1 ]; then
        in_to nft delete table inet "$GUARD" 2>/dev/null || true
    fi
    if [ $RESULT -ne 0 ]; then
        echo "plain-migrate: failed at stage '$STAGE'; logs in $IMAGES" >&2
        local log
        for log in "$DUMP_DIR/dump.log" "$RECV_DIR/restore.log" "$DUMP_DIR/rollback.log"; do
            [ -s "$log" ] || continue
            echo "--- last lines of $log:" >&2
            grep -E 'Error|error|fail' "$log" | tail -n 8 >&2 || true
        done
    elif [ $KEEP -eq 0 ]; then
        rm -rf "$IMAGES"
    fi
}
trap cleanup EXIT

# CRIU's nft tables in a namespace (CRIU 4.2 names them CRIU-<run id>).
criu_tables() {
    nsenter --net="$1" -- nft list tables 2>/dev/null | awk '$2 == "inet" && $3 ~ /^CRIU-/ {print $3}' | sort
}

# 1. The receiver in TO, before anything is frozen.
STAGE=receiver
in_to socat -u "TCP-LISTEN:$PORT,bind=$TO_IP,reuseaddr" "EXEC:tar -x -C $RECV_DIR" \
    </dev/null 2>"$IMAGES/receiver.log" &
RECEIVER_PID=$!
for ((i = 0; i < 100; i++)); do
    in_to ss -Htln "sport = :$PORT" | grep -q . && break
    kill -0 "$RECEIVER_PID" 2>/dev/null || die "the receiver in $TO failed: $(cat "$IMAGES/receiver.log")"
    sleep 0.02
done
tables_before=$(criu_tables "$FROM_NS")

# 2. Dump inside FROM's network namespace.
STAGE=dump
t_dump0=$(now_ns)
in_from criu dump -t "$PID" -D "$DUMP_DIR" -o dump.log --skip-in-flight "${CRIU_COMMON[@]}" ||
    die "criu dump of $PID failed (the process runs on in $FROM): $(grep -E 'Error' "$DUMP_DIR/dump.log" | tail -n 3)"
t_dump1=$(now_ns)

# 3. The addresses leave FROM; CRIU's lock table there has done its job
#    (it dropped the connections' packets until the addresses were gone).
STAGE=release-from
for addr in "${SERVICE_IPS[@]}"; do
    "$HOSTS" service-ip del "$FROM" "$addr"
done
for table in $(comm -13 <(echo "$tables_before") <(criu_tables "$FROM_NS")); do
    in_from nft delete table inet "$table"
done

# 4. The images cross the link: tar in FROM's netns, streamed to TO.
STAGE=transfer
t_xfer0=$(now_ns)
link_rx0=$(cat "/sys/class/net/spmv-$FROM/statistics/rx_bytes")
# shellcheck disable=SC2016 # expanded by the inner shell
in_from bash -c 'set -o pipefail; tar -C "$1" -cf - . | socat -u STDIN "TCP:$2:$3,retry=50,interval=0.02"' \
    sh "$DUMP_DIR" "$TO_IP" "$PORT" || die "sending the images from $FROM to $TO failed"
wait "$RECEIVER_PID" || die "the receiver in $TO failed: $(cat "$IMAGES/receiver.log")"
RECEIVER_PID=
t_xfer1=$(now_ns)
link_rx1=$(cat "/sys/class/net/spmv-$FROM/statistics/rx_bytes")
image_bytes=$(du -sb "$DUMP_DIR" | awk '{print $1}')
recv_bytes=$(du -sb "$RECV_DIR" | awk '{print $1}')
link_bytes=$((link_rx1 - link_rx0))
# The receiver's copy must be whole and must really have crossed the link.
[ "$recv_bytes" -eq "$image_bytes" ] || die "received $recv_bytes bytes of images, dumped $image_bytes"
[ "$link_bytes" -ge "$((image_bytes / 2))" ] ||
    die "only $link_bytes bytes crossed spmv-$FROM for $image_bytes bytes of images"

# rollback: the restore in TO failed; bring the tree back where it was.
rollback() {
    STAGE=rollback
    for addr in "${SERVICE_IPS[@]}"; do
        "$HOSTS" service-ip del "$TO" "$addr" || true
        "$HOSTS" service-ip add "$FROM" "$addr" || true
    done
    if in_from criu restore -d -D "$DUMP_DIR" -o rollback.log "${CRIU_COMMON[@]}"; then
        echo "plain-migrate: restore in $TO failed; process $PID restored back in $FROM" >&2
    else
        echo "plain-migrate: restore in $TO failed and so did the rollback in $FROM: process $PID is lost (images kept in $IMAGES)" >&2
        KEEP=1
    fi
}

# 5. Guard, addresses, restore inside TO's network namespace.
STAGE=restore
# A restored PID must be free: the dumped tree's zombies must have been
# reaped by their parent.
for ((i = 0; i < 200; i++)); do
    [ -e "/proc/$PID" ] || break
    sleep 0.01
done
[ ! -e "/proc/$PID" ] || { rollback; die "pid $PID is still taken after the dump (an unreaped zombie?): cannot restore"; }
ip_set=$(
    IFS=,
    echo "${SERVICE_IPS[*]}"
)
if [ ${#SERVICE_IPS[@]} -gt 0 ]; then
    in_to nft -f - <<EOF
table inet $GUARD {
    chain input {
        type filter hook input priority -10; policy accept;
        ip daddr { $ip_set } meta l4proto tcp drop
    }
}
EOF
    GUARD_SET=1
fi
for addr in "${SERVICE_IPS[@]}"; do
    "$HOSTS" service-ip add "$TO" "$addr"
done
t_rst0=$(now_ns)
if ! in_to criu restore -d -D "$RECV_DIR" -o restore.log "${CRIU_COMMON[@]}"; then
    in_to nft delete table inet "$GUARD" 2>/dev/null || true
    GUARD_SET=0
    rollback
    die "criu restore in $TO failed: $(grep -E 'Error' "$RECV_DIR/restore.log" | tail -n 3)"
fi
t_rst1=$(now_ns)
if [ $GUARD_SET -eq 1 ]; then
    in_to nft delete table inet "$GUARD"
    GUARD_SET=0
fi
t_done=$(now_ns)

STAGE=verify
[ -d "/proc/$PID" ] || die "criu restore returned but process $PID does not exist"
[ "$(netns_inode "/proc/$PID/ns/net")" == "$(netns_inode "$TO_NS")" ] ||
    die "restored process $PID is not in host $TO's network namespace"

# Freeze start. CRIU's log lines carry the time since criu started, e.g.
# "(00.018786) Seized task 1021, state 1": the first "Seized task" is when
# the tree stops. criu's own start is some milliseconds after t_dump0 (the
# launcher, the loader), so the freeze is placed back from the end instead:
# t_dump1 minus the log's time from the seize to its last line. That is
# exact to within criu's exit (under a millisecond). Without such lines,
# the start of criu dump is used (an overestimate by criu's start-up).
log_us() {
    sed -n "s/^(\([0-9]*\)\.\([0-9]\{6\}\)).*$1.*/\1 \2/p" "$DUMP_DIR/dump.log" 2>/dev/null |
        ${2:-head} -n 1 | awk '{ print $1 * 1000000 + $2 }'
}
seize_us=$(log_us 'Seized task' head)
end_us=$(log_us '' tail)
if [ -n "$seize_us" ] && [ -n "$end_us" ] && [ "$end_us" -ge "$seize_us" ]; then
    t_freeze=$((t_dump1 - (end_us - seize_us) * 1000))
    freeze_source="dump log (first 'Seized task', counted back from the end of criu dump)"
else
    t_freeze=$t_dump0
    freeze_source="start of criu dump (no 'Seized task' line in the log)"
fi

dump_ms=$(ms_between "$t_dump0" "$t_dump1")
xfer_ms=$(ms_between "$t_xfer0" "$t_xfer1")
restore_ms=$(ms_between "$t_rst0" "$t_rst1")
total_ms=$(ms_between "$t_dump0" "$t_done")
downtime_ms=$(ms_between "$t_freeze" "$t_done")
image_mb=$(awk -v b="$image_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
link_mb=$(awk -v b="$link_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
ips_json=$(printf '"%s",' "${SERVICE_IPS[@]}")
ips_json="[${ips_json%,}]"
[ ${#SERVICE_IPS[@]} -gt 0 ] || ips_json="[]"

RESULT=0
if [ $JSON -eq 1 ]; then
    printf '{"pid":%d,"from":"%s","to":"%s","service_ips":%s,"dump_ms":%d,"transfer_ms":%d,"transfer_mb":%s,"link_mb":%s,"restore_ms":%d,"total_ms":%d,"downtime_ms":%d,"downtime_from":"%s","images":"%s"}\n' \
        "$PID" "$FROM" "$TO" "$ips_json" "$dump_ms" "$xfer_ms" "$image_mb" "$link_mb" \
        "$restore_ms" "$total_ms" "$downtime_ms" "$freeze_source" "$( ((KEEP)) && echo "$IMAGES" || echo "")"
else
    echo "plain-migrate: pid $PID moved from host $FROM to host $TO (service addresses: ${SERVICE_IPS[*]:-none})"
    echo "  dump      $dump_ms ms"
    echo "  transfer  $xfer_ms ms ($image_mb MB of images; $link_mb MB crossed spmv-$FROM)"
    echo "  restore   $restore_ms ms"
    echo "  total     $total_ms ms"
    echo "  downtime  $downtime_ms ms (freeze start from the $freeze_source, to restored and unguarded)"
    ((KEEP)) && echo "  images    $IMAGES"
fi
exit 0
