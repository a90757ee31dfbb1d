#!/usr/bin/env bash
# Plain-CRIU live migration, stop-and-copy, of a process tree between two
# simulated hosts (scripts/hosts.sh), done the way an operator would without
# SPM. It is the baseline SPM's migration is measured against, and the proof
# that the network part (established TCP connections, a moving service
# address) works on these hosts.
#
# usage: plain-migrate.sh PID FROM TO [--images DIR] [--service-ip IP]...
#                         [--port PORT] [--json] [--keep-images]
#                         [--lazy-pages [--page-port PORT]]
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
#   --lazy-pages   post-copy instead: only the non-memory images are shipped
#                  before the restore; TO's `criu lazy-pages` daemon pulls
#                  the memory from FROM's `criu dump --lazy-pages` page
#                  server (--page-port, default 7708, on FROM's address)
#                  while the restored tree already runs (userfaultfd). The
#                  source tree stays frozen until every page has moved, so
#                  its PIDs are still taken at restore time: PID must be the
#                  init of its own PID namespace (start it with `unshare
#                  --pid --fork`), which CRIU dumps and restores as a new
#                  one; the restored tree gets a new host PID. Needs
#                  fs.pipe-max-size >= 4 MiB (raised here for the run).
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
# the two clock readings add up to about 15 ms. A client sees a little
# more: its retransmission timer decides when it next tries
# (tests/migrate/resp_probe.py measures that).
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
LAZY=0
PORT=7707
PAGE_PORT=7708
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
    --lazy-pages)
        LAZY=1
        shift
        ;;
    --page-port)
        PAGE_PORT=${2:?--page-port needs a number}
        shift 2
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
for p in "$PORT" "$PAGE_PORT"; do
    if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
        die "bad port '$p'"
    fi
done
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
FROM_IP=$("$HOSTS" ip "$FROM")
nspid=$(awk '/^NSpid:/ { print NF - 1 " " $NF }' "/proc/$PID/status")
# The init of its own PID namespace is restored into a new one: its host
# pid changes (the one inside stays 1).
PIDNS_INIT=0
[ "${nspid% *}" -ge 2 ] && [ "${nspid#* }" -eq 1 ] && PIDNS_INIT=1
if [ $LAZY -eq 1 ]; then
    [ "${nspid% *}" -ge 2 ] && [ "${nspid#* }" -eq 1 ] ||
        die "--lazy-pages needs PID to be the init of its own PID namespace (NSpid: ${nspid#* } at depth ${nspid% *}); start it with unshare --pid --fork: the frozen source keeps its PIDs until every page has moved"
fi

in_from() { nsenter --net="$FROM_NS" -- "$@"; }
in_to() { nsenter --net="$TO_NS" -- "$@"; }

if [ ${#SERVICE_IPS[@]} -eq 0 ]; then
    while read -r addr; do
        addr=${addr%/*}
        [[ $addr =~ ^10\.77\.0\.([0-9]+)$ ]] || continue
        [ "${BASH_REMATCH[1]}" -ge 100 ] && [ "${BASH_REMATCH[1]}" -le 253 ] && SERVICE_IPS+=("$addr")
    done < <(in_from ip -4 -o addr show dev eth0 | awk '{print $4}')
fi

for addr in "${SERVICE_IPS[@]}"; do
    in_from ip -4 -o addr show dev eth0 | grep -q " $addr/" ||
        die "service address $addr is not on host $FROM: nothing to move"
done

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
DUMP_PID=
LAZY_PID=
OLD_PIPE_MAX=
GUARD_SET=0
STAGE=start
RESULT=1

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local p
    for p in "$RECEIVER_PID" "$LAZY_PID" "$DUMP_PID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    [ -z "$OLD_PIPE_MAX" ] || sysctl -qw fs.pipe-max-size="$OLD_PIPE_MAX" || true
    if [ $GUARD_SET -eq 1 ]; then
        in_to nft delete table inet "$GUARD" 2>/dev/null || true
    fi
    if [ $RESULT -ne 0 ]; then
        echo "plain-migrate: failed at stage '$STAGE'; logs in $IMAGES" >&2
        local log
        for log in "$DUMP_DIR/dump.log" "$RECV_DIR/restore.log" "$RECV_DIR/lazy.log" "$DUMP_DIR/rollback.log"; do
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
if [ $LAZY -eq 1 ]; then
    # userfaultfd hands pages over through pipes of up to 4 MiB.
    cur=$(sysctl -n fs.pipe-max-size)
    if [ "$cur" -lt 4194304 ]; then
        OLD_PIPE_MAX=$cur
        sysctl -qw fs.pipe-max-size=4194304
    fi
fi
t_dump0=$(now_ns)
if [ $LAZY -eq 0 ]; then
    in_from criu dump -t "$PID" -D "$DUMP_DIR" -o dump.log --skip-in-flight "${CRIU_COMMON[@]}" ||
        die "criu dump of $PID failed (the process runs on in $FROM): $(grep -E 'Error' "$DUMP_DIR/dump.log" | tail -n 3)"
else
    # The dump writes every image but the memory, then serves the memory
    # from its page server until TO's lazy-pages daemon has it all.
    in_from criu dump -t "$PID" -D "$DUMP_DIR" -o dump.log --skip-in-flight "${CRIU_COMMON[@]}" \
        --lazy-pages --address "$FROM_IP" --port "$PAGE_PORT" </dev/null &
    DUMP_PID=$!
    for ((i = 0; i < 3000; i++)); do
        grep -q 'Starting lazy pages server' "$DUMP_DIR/dump.log" 2>/dev/null && break
        if ! kill -0 "$DUMP_PID" 2>/dev/null; then
            DUMP_PID=
            die "criu dump --lazy-pages of $PID failed: $(grep -E 'Error' "$DUMP_DIR/dump.log" | tail -n 3)"
        fi
        sleep 0.005
    done
    grep -q 'Starting lazy pages server' "$DUMP_DIR/dump.log" || die "criu dump --lazy-pages: no page server after 15 s"
fi
t_dump1=$(now_ns)

# 3. The addresses leave FROM; CRIU's lock table there has done its job
#    (it dropped the connections' packets until the addresses were gone).
STAGE=release-from
for addr in "${SERVICE_IPS[@]}"; do
    "$HOSTS" service-ip del "$FROM" "$addr"
done
# In lazy mode the dump still runs (and holds its lock) until the pages
# have moved: its table goes after that.
release_from_tables() {
    local table
    for table in $(comm -13 <(echo "$tables_before") <(criu_tables "$FROM_NS")); do
        in_from nft delete table inet "$table"
    done
}
[ $LAZY -eq 1 ] || release_from_tables

# 4. The images cross the link: tar in FROM's netns, streamed to TO.
STAGE=transfer
t_xfer0=$(now_ns)
link_rx0=$(cat "/sys/class/net/spmv-$FROM/statistics/rx_bytes")
# shellcheck disable=SC2016 # expanded by the inner shell
in_from bash -c 'set -o pipefail; tar -C "$1" --exclude=./dump.log -cf - . | socat -u STDIN "TCP:$2:$3,retry=50,interval=0.02"' \
    sh "$DUMP_DIR" "$TO_IP" "$PORT" || die "sending the images from $FROM to $TO failed"
wait "$RECEIVER_PID" || die "the receiver in $TO failed: $(cat "$IMAGES/receiver.log")"
RECEIVER_PID=
t_xfer1=$(now_ns)
link_rx1=$(cat "/sys/class/net/spmv-$FROM/statistics/rx_bytes")
# dump.log stays behind (in lazy mode criu is still writing it).
image_bytes=$(du -sb --exclude=dump.log "$DUMP_DIR" | awk '{print $1}')
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
    if [ $LAZY -eq 1 ]; then
        # The source tree is still held by criu dump (its memory was never
        # shipped); what CRIU does with it when interrupted is CRIU's call.
        echo "plain-migrate: lazy restore in $TO failed; stopping criu dump (pid $DUMP_PID) in $FROM: process $PID is $( [ -e "/proc/$PID" ] && echo "still there" || echo "gone")" >&2
        return 0
    fi
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
if [ $LAZY -eq 0 ]; then
    for ((i = 0; i < 200; i++)); do
        [ -e "/proc/$PID" ] || break
        sleep 0.01
    done
    [ ! -e "/proc/$PID" ] || {
        rollback
        die "pid $PID is still taken after the dump (an unreaped zombie?): cannot restore"
    }
fi
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
RESTORE_LAZY=()
if [ $LAZY -eq 1 ]; then
    # The daemon serves the restore's page faults over a socket in the
    # images directory, fetching pages from FROM's page server.
    in_to criu lazy-pages --page-server --address "$FROM_IP" --port "$PAGE_PORT" \
        -D "$RECV_DIR" -o lazy.log -v4 </dev/null &
    LAZY_PID=$!
    for ((i = 0; i < 1000; i++)); do
        [ -S "$RECV_DIR/lazy-pages.socket" ] && break
        kill -0 "$LAZY_PID" 2>/dev/null || die "criu lazy-pages in $TO failed: $(grep Error "$RECV_DIR/lazy.log" | tail -n 3)"
        sleep 0.005
    done
    [ -S "$RECV_DIR/lazy-pages.socket" ] || die "criu lazy-pages in $TO: no socket after 5 s"
    RESTORE_LAZY=(--lazy-pages)
fi
if ! in_to criu restore -d -D "$RECV_DIR" -o restore.log --pidfile "$RECV_DIR/restored.pid" \
    "${RESTORE_LAZY[@]}" "${CRIU_COMMON[@]}"; then
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

# Post-copy: the tree already serves; its memory keeps arriving.
t_all=$t_done
if [ $LAZY -eq 1 ]; then
    STAGE=post-copy
    wait "$LAZY_PID" || die "criu lazy-pages in $TO failed: $(grep Error "$RECV_DIR/lazy.log" | tail -n 3)"
    LAZY_PID=
    wait "$DUMP_PID" || die "criu dump --lazy-pages in $FROM failed at the end: $(grep Error "$DUMP_DIR/dump.log" | tail -n 3)"
    DUMP_PID=
    t_all=$(now_ns)
    release_from_tables
fi

STAGE=verify
NEW_PID=$(cat "$RECV_DIR/restored.pid" 2>/dev/null || true)
[[ $NEW_PID =~ ^[0-9]+$ ]] || die "criu restore wrote no pid file"
[ $LAZY -eq 1 ] || [ $PIDNS_INIT -eq 1 ] || [ "$NEW_PID" -eq "$PID" ] || die "criu restore gave pid $NEW_PID for $PID"
[ -d "/proc/$NEW_PID" ] || die "criu restore returned but process $NEW_PID does not exist"
[ "$(netns_inode "/proc/$NEW_PID/ns/net")" == "$(netns_inode "$TO_NS")" ] ||
    die "restored process $NEW_PID is not in host $TO's network namespace"

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
if [ $LAZY -eq 1 ] && [ -n "$seize_us" ]; then
    # The lazy dump's log runs on after the restore: count from its start
    # (an overestimate by criu's start-up, some milliseconds).
    t_freeze=$((t_dump0 + seize_us * 1000))
    freeze_source="dump log (first 'Seized task', counted from the start of criu dump)"
elif [ -n "$seize_us" ] && [ -n "$end_us" ] && [ "$end_us" -ge "$seize_us" ]; then
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
postcopy_ms=$(ms_between "$t_done" "$t_all")
mode=stop-and-copy
[ $LAZY -eq 0 ] || mode=lazy-pages
image_mb=$(awk -v b="$image_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
link_mb=$(awk -v b="$link_bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
ips_json=$(printf '"%s",' "${SERVICE_IPS[@]}")
ips_json="[${ips_json%,}]"
[ ${#SERVICE_IPS[@]} -gt 0 ] || ips_json="[]"

RESULT=0
if [ $JSON -eq 1 ]; then
    printf '{"mode":"%s","pid":%d,"new_pid":%d,"from":"%s","to":"%s","service_ips":%s,"dump_ms":%d,"transfer_ms":%d,"transfer_mb":%s,"link_mb":%s,"restore_ms":%d,"total_ms":%d,"downtime_ms":%d,"postcopy_ms":%d,"downtime_from":"%s","images":"%s"}\n' \
        "$mode" "$PID" "$NEW_PID" "$FROM" "$TO" "$ips_json" "$dump_ms" "$xfer_ms" "$image_mb" "$link_mb" \
        "$restore_ms" "$total_ms" "$downtime_ms" "$postcopy_ms" "$freeze_source" "$( ((KEEP)) && echo "$IMAGES" || echo "")"
else
    echo "plain-migrate ($mode): pid $PID moved from host $FROM to host $TO as pid $NEW_PID (service addresses: ${SERVICE_IPS[*]:-none})"
    echo "  dump      $dump_ms ms$( ((LAZY)) && echo " (until the non-memory images were written)")"
    echo "  transfer  $xfer_ms ms ($image_mb MB of images; $link_mb MB crossed spmv-$FROM)"
    echo "  restore   $restore_ms ms"
    echo "  total     $total_ms ms"
    echo "  downtime  $downtime_ms ms (freeze start from the $freeze_source, to restored and unguarded)"
    ((LAZY)) && echo "  post-copy $postcopy_ms ms more until every page had moved"
    ((KEEP)) && echo "  images    $IMAGES"
fi
exit 0
