# shellcheck shell=bash disable=SC2034
# Shared by the CRIU tests (tests/cr, tests/security); sourced, not run.
# Gives each test: a skip (77) when root or a working CRIU >= 4.2 is
# missing, a private work directory with its own CA, platform, spmd state
# and run directory, helpers to start the test host and talk to it, to
# checkpoint/restore with `spm` and with plain `criu`, and a cleanup trap
# that ends every process the test started (by PID) and removes the nft
# tables CRIU may have left behind for those PIDs.
#
# The environment comes from tests/cr/meson.build (CR_*, SPM_BUILD_ROOT).

cr_log() { echo "[$(date +%T.%3N)] $*"; }

cr_skip() {
    echo "SKIP: $*" >&2
    echo "SKIP: $*"
    exit 77
}

# Dumps what helps a reader find out why, then fails.
fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "${CR_WORK:-/nonexistent}"/host*/err.log "${CR_WORK:-/nonexistent}"/spmd*.log \
        "${CR_WORK:-/nonexistent}"/kvs*.log; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f:" >&2
        tail -n 25 "$f" >&2
    done
    exit 1
}

# A piece another engineer is building is not there (yet): say exactly what.
cr_missing() {
    fail "missing piece: $*"
}

cr_require_root_and_criu() {
    [ "$(id -u)" -eq 0 ] || cr_skip "CRIU tests need root (uid is $(id -u))"
    command -v criu >/dev/null || cr_skip "criu is not installed (scripts/setup-criu.sh installs CRIU >= 4.2)"
    local version output
    output=$(criu --version 2>&1) || true
    version=$(sed -n 's/^Version: *//p' <<<"$output")
    [ -n "$version" ] || cr_skip "criu --version printed no version"
    local major=${version%%.*} rest=${version#*.}
    local minor=${rest%%.*}
    if [ "$major" -lt 4 ] || { [ "$major" -eq 4 ] && [ "$minor" -lt 2 ]; }; then
        cr_skip "criu $version is too old: TCP servers need CRIU >= 4.2 (CRIU.md)"
    fi
    local check
    if ! check=$(criu check 2>&1); then
        cr_skip "criu check fails: $check"
    fi
    command -v nft >/dev/null || cr_skip "nft is missing: --network-lock nftables needs it"
    CR_CRIU_VERSION=$version
}

# The pieces under test, found in the build tree. Fails (never skips) when
# one is missing: these tests exist to test them.
cr_find_pieces() {
    : "${SPM_BUILD_ROOT:?}" "${CR_SPM:?}"
    CR_SPMD=${CR_SPMD:-$SPM_BUILD_ROOT/src/daemon/spmd}
    CR_PLUGIN=${CR_PLUGIN:-$SPM_BUILD_ROOT/src/criu-plugin/spm_criu.so}
    CR_ME_IMAGE=${CR_ME_IMAGE:-$SPM_BUILD_ROOT/src/enclaves/me/me_enclave.signed}
    [ -x "$CR_SPMD" ] || cr_missing "spmd is not built at $CR_SPMD (src/daemon)"
    [ -f "$CR_PLUGIN" ] || cr_missing "the CRIU plugin is not built at $CR_PLUGIN (src/criu-plugin)"
    [ -f "$CR_ME_IMAGE" ] || cr_missing "the Migration Enclave is not built at $CR_ME_IMAGE"
    local help
    help=$("$CR_SPM" checkpoint --help 2>&1) ||
        cr_missing "'spm checkpoint --help' fails: $help"
    help=$("$CR_SPM" restore --help 2>&1) ||
        cr_missing "'spm restore --help' fails: $help"
}

CR_PIDS=()   # processes this test started or restored: killed at exit
CR_SPMD_PID=
CR_WORK=

cr_cleanup() {
    local pid
    for pid in "${CR_PIDS[@]}" $CR_SPMD_PID; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        nft delete table inet "CRIU-$pid" 2>/dev/null || true
    done
    for pid in "${CR_PIDS[@]}" $CR_SPMD_PID; do
        cr_wait_gone "$pid" 10 || echo "warning: pid $pid still present after cleanup" >&2
    done
    if [ -n "$CR_WORK" ] && [ -z "${CR_KEEP:-}" ]; then
        rm -rf "$CR_WORK"
    elif [ -n "$CR_WORK" ]; then
        echo "CR_KEEP set: work directory kept at $CR_WORK"
    fi
}

# cr_wait_gone PID SECONDS: true once PID no longer exists (zombies count as
# existing: the PID is still taken for a restore). cr_reaper reaps them.
cr_wait_gone() {
    local pid=$1 seconds=${2:-10} i
    for ((i = 0; i < seconds * 20; i++)); do
        [ -e "/proc/$pid" ] || return 0
        sleep 0.05
    done
    return 1
}

# Private work directory, CA and platform; exports what the tools read.
cr_setup() {
    CR_WORK=$(mktemp -d /tmp/spm-cr.XXXXXX)
    trap cr_cleanup EXIT
    mkdir -p "$CR_WORK/run" "$CR_WORK/plugins" "$CR_WORK/no-plugins"
    "$CR_SPM" ca init --dir "$CR_WORK/ca" >/dev/null || fail "spm ca init failed"
    "$CR_SPM" platform init --platform "$CR_WORK/platform" --ca "$CR_WORK/ca" >/dev/null ||
        fail "spm platform init failed"
    export SPM_PLATFORM=$CR_WORK/platform
    export SPM_RUN_DIR=$CR_WORK/run
    export SPM_SPMD_SOCKET=$CR_WORK/spmd.sock
    CR_SPMD_STATE=$CR_WORK/spmd-state
    mkdir -p "$CR_SPMD_STATE"
    # When scripts/build.sh installed this build's plugin into CRIU's default
    # directory, criu runs with no plugin option at all: that is how runc,
    # podman or an operator's plain `criu dump` find it. Otherwise the
    # build's plugin goes in a private directory handed to every criu run
    # (--libdir replaces the default, so an older installed copy is not what
    # gets tested).
    if cmp -s "$CR_PLUGIN" /usr/lib/criu/spm_criu.so; then
        CR_CRIU_PLUGIN_ARGS=()
        unset SPM_CRIU_PLUGIN_DIR
        cr_log "plugin: the installed /usr/lib/criu/spm_criu.so (this build's), no --libdir"
    else
        ln -s "$CR_PLUGIN" "$CR_WORK/plugins/spm_criu.so"
        CR_CRIU_PLUGIN_ARGS=(--libdir "$CR_WORK/plugins")
        export SPM_CRIU_PLUGIN_DIR=$CR_WORK/plugins
        cr_log "plugin: $CR_PLUGIN via --libdir (the installed copy differs)"
    fi
    cr_log "work directory $CR_WORK, criu $CR_CRIU_VERSION"
}

# cr_start_spmd [LOGNAME]: starts spmd on the test's state and socket.
cr_start_spmd() {
    local log=$CR_WORK/${1:-spmd}.log
    rm -f "$SPM_SPMD_SOCKET"
    setsid "$CR_SPMD" --state "$CR_SPMD_STATE" --socket "$SPM_SPMD_SOCKET" \
        --platform "$SPM_PLATFORM" --me "$CR_ME_IMAGE" </dev/null >>"$log" 2>&1 &
    CR_SPMD_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [ -S "$SPM_SPMD_SOCKET" ] && return 0
        kill -0 "$CR_SPMD_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

cr_stop_spmd() {
    local signal=${1:-TERM}
    [ -n "$CR_SPMD_PID" ] || return 0
    kill "-$signal" "$CR_SPMD_PID" 2>/dev/null || true
    wait "$CR_SPMD_PID" 2>/dev/null || true
    CR_SPMD_PID=
}

# cr_start_host NAME [IMAGE]: the test host, detached, stdio to files, its
# command directory $CR_WORK/NAME. Sets CR_HOST_PID, CR_BASE, CR_SIZE.
cr_start_host() {
    local name=$1 image=${2:-$CR_IMAGE_MAIN}
    local dir=$CR_WORK/$name
    mkdir -p "$dir"
    rm -f "$dir/ready" "$dir/cmd" "$dir/reply"
    setsid "$CR_HOST" --enclave "$image" --platform "$SPM_PLATFORM" --dir "$dir" \
        </dev/null >>"$dir/out.log" 2>>"$dir/err.log" &
    CR_HOST_PID=$!
    CR_PIDS+=("$CR_HOST_PID")
    local i
    for ((i = 0; i < 300; i++)); do
        [ -f "$dir/ready" ] && break
        kill -0 "$CR_HOST_PID" 2>/dev/null || fail "cr_host exited before it was ready"
        sleep 0.05
    done
    [ -f "$dir/ready" ] || fail "cr_host not ready after 15 s"
    local ready
    ready=$(<"$dir/ready")
    [[ $ready =~ ^pid=([0-9]+)\ base=(0x[0-9a-f]+)\ size=(0x[0-9a-f]+)$ ]] ||
        fail "unexpected ready line: $ready"
    CR_BASE=${BASH_REMATCH[2]}
    CR_SIZE=${BASH_REMATCH[3]}
    cr_log "cr_host $name: pid $CR_HOST_PID, ELRANGE $CR_BASE + $CR_SIZE"
}

# cr_host_cmd NAME PID LINE [SECONDS]: sends LINE, prints the reply line.
# Fails if PID dies or no reply comes in time.
cr_host_cmd() {
    local name=$1 pid=$2 line=$3 seconds=${4:-60}
    local dir=$CR_WORK/$name i
    rm -f "$dir/reply"
    if ! { printf '%s\n' "$line" >"$dir/.cmd.tmp" && mv "$dir/.cmd.tmp" "$dir/cmd"; }; then
        echo "error: cannot write the command file in $dir"
        return 0
    fi
    for ((i = 0; i < seconds * 50; i++)); do
        if [ -f "$dir/reply" ]; then
            cat "$dir/reply"
            rm -f "$dir/reply"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: pid $pid is gone (command '$line')"
            return 0
        fi
        sleep 0.02
    done
    echo "error: no reply to '$line' within $seconds s"
}

# cr_expect_reply NAME PID LINE REGEX: the reply must match REGEX.
cr_expect_reply() {
    local reply
    reply=$(cr_host_cmd "$1" "$2" "$3")
    [[ $reply =~ $4 ]] || fail "'$3' to $1 (pid $2): expected /$4/, got [$reply]"
    cr_log "$1: $3 -> $reply"
    CR_REPLY=$reply
}

# 32 random bytes as hex.
cr_random_seed() {
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

# cr_spm_checkpoint PID DIR: `spm checkpoint`, its output to DIR.log and
# stdout; returns its status.
cr_spm_checkpoint() {
    local pid=$1 dir=$2 status=0
    mkdir -p "$dir"
    "$CR_SPM" checkpoint "$pid" -D "$dir" >"$dir.checkpoint.log" 2>&1 || status=$?
    sed 's/^/    spm checkpoint: /' "$dir.checkpoint.log"
    return $status
}

# cr_spm_restore DIR: `spm restore`; returns its status.
cr_spm_restore() {
    local dir=$1 status=0 log
    log=$dir.restore.$(date +%s%N).log
    "$CR_SPM" restore -D "$dir" >"$log" 2>&1 || status=$?
    sed 's/^/    spm restore: /' "$log"
    CR_LAST_RESTORE_LOG=$log
    return $status
}

cr_criu_common=(--tcp-established --network-lock nftables -v4)

# cr_criu_dump PID DIR [EXTRA...]: plain criu with the plugin.
cr_criu_dump() {
    local pid=$1 dir=$2 status=0
    shift 2
    mkdir -p "$dir"
    local start end
    start=$(date +%s%N)
    criu dump -t "$pid" -D "$dir" -o dump.log "${cr_criu_common[@]}" \
        "${CR_CRIU_PLUGIN_ARGS[@]}" "$@" || status=$?
    end=$(date +%s%N)
    CR_CRIU_MS=$(((end - start) / 1000000))
    return $status
}

# cr_criu_restore DIR [EXTRA...]: plain criu restore, detached.
cr_criu_restore() {
    local dir=$1 status=0
    shift
    local start end
    start=$(date +%s%N)
    criu restore -d -D "$dir" -o "restore.$(date +%s%N).log" "${cr_criu_common[@]}" \
        "${CR_CRIU_PLUGIN_ARGS[@]}" "$@" || status=$?
    end=$(date +%s%N)
    CR_CRIU_MS=$(((end - start) / 1000000))
    return $status
}

# cr_control PID REQUEST: one request on the process's control socket
# (control.h), prints the reply line.
CR_CONTROL_REQUEST=$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/../../scripts/control-request.py")
cr_control() {
    "$CR_CONTROL_REQUEST" "$SPM_RUN_DIR/$1.ctl" "$2" 30
}

# cr_assert_gone PID WHAT: after a dump, or a refused restore (nothing may
# run with that state), the PID is gone within 15 s.
cr_assert_gone() {
    local pid=$1 what=$2
    cr_wait_gone "$pid" 15 || fail "$what: pid $pid still runs ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null))"
}

# cr_scan_clean LABEL SEED HEAP PATH...: no window of the secret anywhere.
cr_scan_clean() {
    local label=$1 seed=$2 heap=$3 out status=0
    shift 3
    out=$("$CR_SCAN" --seed "$seed" --heap "$heap" "$@" 2>&1) || status=$?
    sed 's/^/    /' <<<"$out"
    [ $status -eq 0 ] || fail "$label: the secret is visible outside the enclave (scanner status $status)"
    cr_log "scan $label: clean"
}

# cr_scan_found LABEL SEED HEAP PATH...: the secret must be found (the
# scanner can fail); every region named in CR_SCAN_REGIONS must be hit.
cr_scan_found() {
    local label=$1 seed=$2 heap=$3 out status=0 region
    shift 3
    out=$("$CR_SCAN" --expect-found --seed "$seed" --heap "$heap" "$@" 2>&1) || status=$?
    sed 's/^/    /' <<<"$out"
    [ $status -eq 0 ] || fail "$label: the scanner did not find the secret where it must be"
    for region in ${CR_SCAN_REGIONS:-}; do
        [[ $out =~ \(heap\ ([0-9]+),\ globals\ ([0-9]+),\ stack\ ([0-9]+)\)$ ]] ||
            fail "$label: cannot parse the scanner's summary"
        case $region in
        heap) [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "$label: heap secret not found" ;;
        globals) [ "${BASH_REMATCH[2]}" -gt 0 ] || fail "$label: globals secret not found" ;;
        stack) [ "${BASH_REMATCH[3]}" -gt 0 ] || fail "$label: stack secret not found" ;;
        esac
    done
    cr_log "scan $label: secret found, as it must be"
}
