#!/usr/bin/env bash
# Builds the libFuzzer harnesses (build-fuzz, clang) and runs them:
#   scripts/fuzz.sh [SECONDS [NAME...]]
# Each named harness (default: all; `meson test -C build-fuzz --list
# --suite fuzz` lists them) replays its regression inputs, then fuzzes for
# SECONDS (default 60) from fuzz/corpus/NAME, two at a time
# ($FUZZ_JOBS). New corpus entries and any crash input stay in
# build-fuzz/fuzz/fuzz-work/NAME; each run adds a line of executions and
# coverage to build-fuzz/fuzz/fuzz-work/stats.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh fuzz
seconds=${1:-60}
shift || true
names=()
for n in "$@"; do names+=("$n"); done
FUZZ_SECONDS=$seconds exec meson test -C build-fuzz --suite fuzz --print-errorlogs \
    --num-processes "${FUZZ_JOBS:-2}" "${names[@]}"
