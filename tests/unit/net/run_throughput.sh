#!/bin/sh
# Mints a throw-away CA and host identity with spm, then runs the loopback
# throughput measurement (tls_throughput.c) against it.
set -eu
spm=$1
bench=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/spm-net-bench-XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$spm" ca init --dir "$dir/ca" >/dev/null
"$spm" host-cert --dir "$dir/ca" --name bench --ip 127.0.0.1 --out "$dir/host" >/dev/null
"$bench" "$dir/host" "${SPM_NET_BENCH_MIB:-256}"
