#!/usr/bin/env bash
# Configures (once) and builds SPM. `scripts/build.sh` builds ./build;
# `scripts/build.sh asan` builds ./build-asan with ASan+UBSan on host code.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
opts=()
if [ "${1:-}" = "asan" ]; then
    dir=build-asan
    opts=(-Dsanitize=true)
fi
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "build: $dir ready"
