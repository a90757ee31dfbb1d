#!/usr/bin/env bash
# kvs end to end, driven only by stock Redis tools: a fresh CA and simulated
# platform, the signed enclave loaded by the real server on a free port, then
# redis-cli for exact replies, raw sockets for inline commands and protocol
# errors, redis-cli --pipe for hundreds of thousands of keys (table growth),
# values totalling over 64 MiB, redis-benchmark with and without pipelining
# (its INCR count must be exact), KVS.SIGN signatures checked by OpenSSL, and
# a clean exit on SIGTERM. Any mismatch fails the test; kvs is always killed.
# usage: test_kvs_e2e.sh SPM KVS KVS_ENCLAVE.signed KVS_ECDSA_DER.py
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 SPM KVS KVS_ENCLAVE.signed KVS_ECDSA_DER.py" >&2
    exit 2
fi
SPM=$1 KVS=$2 IMAGE=$3 DER_HELPER=$4
for tool in redis-cli redis-benchmark openssl python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (Debian: redis-tools, openssl, python3)"
        exit 77
    fi
done

WORK=$(mktemp -d)
KVS_PID=
cleanup() {
    if [ -n "$KVS_PID" ] && kill -0 "$KVS_PID" 2>/dev/null; then
        kill -KILL "$KVS_PID" 2>/dev/null || true
        wait "$KVS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -s "$WORK/kvs.log" ]; then
        echo "--- kvs stderr:" >&2
        tail -n 20 "$WORK/kvs.log" >&2
    fi
    exit 1
}

# ---- Platform and server ----
"$SPM" ca init --dir "$WORK/ca" >/dev/null || fail "spm ca init failed"
"$SPM" platform init --platform "$WORK/platform" --ca "$WORK/ca" >/dev/null ||
    fail "spm platform init failed"

# --port 0: the kernel picks a free port, which the readiness line reports.
"$KVS" --enclave "$IMAGE" --platform "$WORK/platform" --port 0 2>"$WORK/kvs.log" &
KVS_PID=$!
ready=
for _ in $(seq 300); do
    ready=$(grep -m1 '^kvs: serving on ' "$WORK/kvs.log" || true)
    [ -n "$ready" ] && break
    kill -0 "$KVS_PID" 2>/dev/null || fail "kvs exited before it was ready"
    sleep 0.1
done
[ -n "$ready" ] || fail "kvs not ready after 30 s"
pattern='^kvs: serving on 127\.0\.0\.1:([0-9]+) with 4 threads, enclave MRENCLAVE [0-9a-f]{64}, backend sim$'
[[ $ready =~ $pattern ]] || fail "unexpected readiness line: $ready"
PORT=${BASH_REMATCH[1]}
echo "kvs ready on port $PORT"

cli() {
    redis-cli -p "$PORT" "$@"
}

# expect WANT ARGS...: redis-cli's formatted reply (--no-raw tells (nil) from
# "", errors from strings) must be exactly WANT.
expect() {
    local want=$1 got
    shift
    got=$(cli --no-raw "$@" 2>&1) || true
    [ "$got" == "$want" ] || fail "redis-cli $*: expected [$want], got [$got]"
}

# ---- Commands, exact replies ----
expect 'OK' FLUSHALL
expect 'PONG' PING
expect '"hello world"' PING 'hello world'
expect '"echo"' ECHO echo
expect '(integer) 0' DBSIZE
expect 'OK' SET foo bar
expect '"bar"' GET foo
expect '(nil)' GET missing
expect 'OK' SET empty ''
expect '""' GET empty
expect '(integer) 2' EXISTS foo empty missing
expect '(integer) 2' DBSIZE
expect '(integer) 1' DEL foo missing
expect '(integer) 0' DEL foo
expect '(integer) 1' DBSIZE
expect '(integer) 1' INCR n
expect '(integer) 42' INCRBY n 41
expect '(integer) 41' DECR n
expect '(integer) -59' INCRBY n -100
expect '"-59"' GET n
expect '(error) ERR increment or decrement would overflow' INCRBY n -9223372036854775807
expect '(error) ERR value is not an integer or out of range' INCRBY n 1x
expect 'OK' SET s abc
expect '(error) ERR value is not an integer or out of range' INCR s
expect 'OK' SET s 007
expect '(error) ERR value is not an integer or out of range' INCR s
expect '(error) ERR wrong number of arguments for '"'get'"' command' GET
expect '(error) ERR wrong number of arguments for '"'incr'"' command' INCR a b
expect "(error) ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b c' " NOSUCH a 'b c'
expect '(nil)' SET s new NX
expect '"007"' SET s new GET
expect '"new"' GET s
expect '(nil)' SET fresh v XX
expect '(error) ERR syntax error' SET s v NX XX
expect '(error) ERR kvs does not support key expiry (SET EX/PX/EXAT/PXAT)' SET s v EX 10
expect $'1) "save"\n2) ""' CONFIG GET save
expect '(empty array)' CONFIG GET maxmemory
expect 'OK' FLUSHALL
expect '(integer) 0' DBSIZE

# ---- Raw protocol: inline commands, a protocol error hangs up ----
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'SET "in line" "a\\x41\\n"\r\nGET "in line"\r\n' >&3
replies=()
for _ in 1 2 3 4; do
    IFS= read -r -t 10 line <&3 || fail "no reply to inline commands"
    replies+=("${line%$'\r'}")
done
[ "${replies[*]}" == '+OK $3 aA ' ] || fail "inline replies: [${replies[*]}]"
printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$33554433\r\n' >&3 # one byte over the limit
IFS= read -r -t 10 line <&3 || fail "no reply to an oversized bulk"
[ "${line%$'\r'}" == '-ERR Protocol error: invalid bulk length' ] ||
    fail "oversized bulk: [$line]"
if IFS= read -r -t 10 line <&3; then
    fail "connection still open after a protocol error: [$line]"
fi
exec 3<&-

# ---- Many keys: the table grows through several incremental rehashes ----
expect 'OK' FLUSHALL
python3 - >"$WORK/keys.resp" <<'EOF'
import sys
out = sys.stdout.buffer
for i in range(300000):
    k, v = b"key:%d" % i, b"%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
EOF
pipe_out=$(cli --pipe <"$WORK/keys.resp" 2>&1) || fail "redis-cli --pipe: $pipe_out"
grep -q 'errors: 0, replies: 300000' <<<"$pipe_out" || fail "redis-cli --pipe: $pipe_out"
expect '(integer) 300000' DBSIZE
expect '"123456"' GET key:123456
expect '"299999"' GET key:299999
expect '(integer) 3' DEL key:0 key:1 key:2
expect '(integer) 299997' DBSIZE
expect 'OK' FLUSHALL

# ---- Large values: 3 x 24 MiB, all in enclave memory at once ----
for i in 1 2 3; do
    head -c $((18 << 20)) /dev/urandom | base64 -w0 >"$WORK/value$i"
    expect 'OK' -x SET "big:$i" <"$WORK/value$i"
done
for i in 1 2 3; do
    # To a file, not through head: head exiting early would SIGPIPE redis-cli.
    cli --raw GET "big:$i" >"$WORK/got$i"
    cmp -s -n $((24 << 20)) "$WORK/got$i" "$WORK/value$i" ||
        fail "big:$i did not come back intact"
done
expect '(integer) 3' DBSIZE
expect 'OK' FLUSHALL

# ---- redis-benchmark: completes cleanly, and the INCRs all landed ----
# bench LABEL ARGS...: runs it, fails on any error or warning, prints rates.
bench() {
    local label=$1 out clean
    shift
    out=$(redis-benchmark -p "$PORT" -t set,get,incr -n 20000 -q "$@" 2>&1) ||
        fail "redis-benchmark $* exited with $?: $out"
    clean=$(tr '\r' '\n' <<<"$out" | grep -v 'rps=' | grep -v '^[[:space:]]*$' || true)
    if grep -qiE 'error|warning|fail|refused' <<<"$clean"; then
        fail "redis-benchmark $* reported: $clean"
    fi
    for t in SET GET INCR; do
        grep -qE "^$t: [0-9.]+ requests per second" <<<"$clean" ||
            fail "redis-benchmark $*: no $t result in: $clean"
    done
    echo "redis-benchmark -n 20000 $label:" $(sed -nE 's/^([A-Z]+): ([0-9]+)\.[0-9]+ requests per second.*/\1 \2 req\/s/p' <<<"$clean" | awk 'NR > 1 { printf ", " } { printf "%s", $0 }')
}
bench '(-c 50)'
expect '"20000"' GET 'counter:__rand_int__'
expect 'OK' FLUSHALL
bench '(-c 50 -P 16)' -c 50 -P 16
expect '"20000"' GET 'counter:__rand_int__'

# ---- KVS.PUBKEY / KVS.SIGN, verified by OpenSSL ----
pub=$(cli --raw KVS.PUBKEY)
[[ $pub =~ ^04[0-9a-f]{128}$ ]] || fail "KVS.PUBKEY: [$pub]"
[ "$(cli --raw KVS.PUBKEY)" == "$pub" ] || fail "KVS.PUBKEY changed between calls"
msg="checkpoint me, $(date +%s%N)"
sig=$(cli --raw KVS.SIGN "$msg")
[[ $sig =~ ^[0-9a-f]{128}$ ]] || fail "KVS.SIGN: [$sig]"
python3 "$DER_HELPER" pubkey "$pub" >"$WORK/pub.pem" || fail "cannot encode the public key"
python3 "$DER_HELPER" sig "$sig" "$WORK/sig.der" || fail "cannot encode the signature"
printf '%s' "$msg" >"$WORK/msg"
printf '%s.' "$msg" >"$WORK/wrong-msg"
verify=$(openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig.der" "$WORK/msg" 2>&1) ||
    fail "signature over the message does not verify: $verify"
[ "$verify" == "Verified OK" ] || fail "openssl said: $verify"
if openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/sig.der" "$WORK/wrong-msg" \
    >/dev/null 2>&1; then
    fail "the signature also verifies over a different message"
fi
echo "KVS.SIGN signature verified by openssl; a changed message is rejected"

# ---- Clean exit on SIGTERM ----
kill -TERM "$KVS_PID"
for _ in $(seq 100); do
    kill -0 "$KVS_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$KVS_PID" 2>/dev/null && fail "kvs still running 10 s after SIGTERM"
status=0
wait "$KVS_PID" || status=$?
KVS_PID=
[ "$status" -eq 0 ] || fail "kvs exited with status $status after SIGTERM"
served=$(grep -m1 '^kvs: stopped; served ' "$WORK/kvs.log") || fail "no exit summary from kvs"
echo "$served"
echo "PASS"
