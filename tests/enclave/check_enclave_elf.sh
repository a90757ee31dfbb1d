#!/usr/bin/env bash
# Checks a built enclave ELF against the trusted-image rules: no syscall or
# sysenter instruction anywhere in executable code, no reachable instruction
# SGX makes fault inside an enclave (CPUID, RDTSC, port I/O, ...:
# check_enclave_insns.py), no undefined symbol, no DT_NEEDED, no interpreter, and only
# R_X86_64_RELATIVE relocations.
# Usage: check_enclave_elf.sh ELF...
set -euo pipefail
fail=0
for elf in "$@"; do
    name=$(basename "$elf")
    if [ ! -s "$elf" ]; then
        echo "FAIL $name: missing or empty"; fail=1; continue
    fi
    # objdump -d disassembles every executable section.
    syscalls=$(objdump -d --no-show-raw-insn "$elf" | grep -E '\s(syscall|sysenter|int\s+\$0x80)\b' || true)
    if [ -n "$syscalls" ]; then
        echo "FAIL $name: $(wc -l <<<"$syscalls") syscall-type instruction(s):"
        head -5 <<<"$syscalls"
        fail=1
    fi
    # No reachable instruction SGX forbids inside an enclave (CPUID, ...).
    if ! python3 "$(dirname "$0")/check_enclave_insns.py" "$elf"; then
        fail=1
    fi
    undefined=$(nm -u "$elf" | grep -v ' w ' || true)
    if [ -n "$undefined" ]; then
        echo "FAIL $name: undefined symbols:"; echo "$undefined" | head -10; fail=1
    fi
    # Captured first: `readelf | grep -q` can fail on SIGPIPE under pipefail.
    dynamic=$(readelf -dW "$elf")
    segments=$(readelf -lW "$elf")
    if grep -q '(NEEDED)' <<<"$dynamic"; then
        echo "FAIL $name: has DT_NEEDED"; fail=1
    fi
    if grep -q INTERP <<<"$segments"; then
        echo "FAIL $name: has an interpreter"; fail=1
    fi
    other=$(readelf -rW "$elf" | awk '/^[0-9a-f]+ +[0-9a-f]+ +R_/ {print $3}' | grep -v '^R_X86_64_RELATIVE$' | sort -u || true)
    if [ -n "$other" ]; then
        echo "FAIL $name: relocations other than R_X86_64_RELATIVE: $other"; fail=1
    fi
    relative=$(readelf -rW "$elf" | grep -c R_X86_64_RELATIVE || true)
    [ $fail -eq 0 ] && echo "ok   $name: syscall-free, no enclave-illegal instructions, no undefined symbols, $relative RELATIVE relocations"
done
exit $fail
