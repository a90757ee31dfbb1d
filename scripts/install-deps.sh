#!/usr/bin/env bash
# Installs everything SPM needs on Debian 12, from Debian's archive only, then
# a CRIU >= 4.2 (scripts/setup-criu.sh). Idempotent: with everything present it
# only checks, in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
    SUDO="sudo"
fi

packages=(
    build-essential pkg-config meson ninja-build python3
    libssl-dev openssl libbearssl-dev libcmocka-dev
    clang llvm libclang-rt-14-dev clang-format clang-tidy cppcheck valgrind
    redis-tools iproute2 nftables
    # Simulated hosts and plain-CRIU migration (scripts/hosts.sh,
    # scripts/plain-migrate.sh, tests/migrate): captures, address
    # announcements, image transfer over the link, a reference TCP service.
    tcpdump iputils-arping iputils-ping socat redis-server util-linux
    # bench/run draws its plots with gnuplot.
    gnuplot-nox
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
$SUDO bash scripts/setup-criu.sh
# CRIU loads every plugin in this directory by default (it checks that the
# directory exists); scripts/build.sh installs spm_criu.so there.
$SUDO mkdir -p "${SPM_CRIU_PLUGIN_INSTALL_DIR:-/usr/lib/criu}"
echo "install-deps: all dependencies present"
