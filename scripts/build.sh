#!/usr/bin/env bash
# Configures (once) and builds SPM. `scripts/build.sh` builds ./build;
# `scripts/build.sh asan` builds ./build-asan with ASan+UBSan on host code;
# `scripts/build.sh fuzz` builds ./build-fuzz, the libFuzzer harnesses
# (fuzz/), with clang.
# As root it also installs the CRIU plugin spm_criu.so where CRIU loads
# plugins from by default ($SPM_CRIU_PLUGIN_INSTALL_DIR, default
# /usr/lib/criu), so that every CRIU caller is enclave-aware; the plugin is
# built without sanitizers in both build directories.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
opts=()
cc=${CC:-}
case "${1:-}" in
asan)
    dir=build-asan
    opts=(-Dsanitize=true)
    ;;
fuzz)
    dir=build-fuzz
    opts=(-Dfuzz=true -Dtests=false)
    cc=clang
    ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
    CC=$cc meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "build: $dir ready"

plugin=$dir/src/criu-plugin/spm_criu.so
plugin_dir=${SPM_CRIU_PLUGIN_INSTALL_DIR:-/usr/lib/criu}
if [ "$dir" = build-fuzz ]; then
    : # the fuzz build's plugin is never the one CRIU loads
elif [ "$(id -u)" -eq 0 ] && [ -f "$plugin" ]; then
    mkdir -p "$plugin_dir"
    # Copy, then rename: a CRIU starting meanwhile never loads half a file.
    install -m 0644 "$plugin" "$plugin_dir/.spm_criu.so.new"
    mv -f "$plugin_dir/.spm_criu.so.new" "$plugin_dir/spm_criu.so"
    echo "build: CRIU plugin installed as $plugin_dir/spm_criu.so"
elif [ -f "$plugin" ]; then
    echo "build: not root, CRIU plugin not installed (set SPM_CRIU_PLUGIN_DIR=$PWD/$dir/src/criu-plugin for spm checkpoint/restore)"
fi
