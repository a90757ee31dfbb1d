#!/usr/bin/env python3
"""Summarizes a perf profile of an SPM process during an enclave export or
import: where its CPU time went, split between the kernel (page faults,
unmapping) and the enclave's own code, whose samples perf cannot name (the
enclave is not a file mapping it knows) and which are named here from the
enclave image's symbol table and ELRANGE's base.

usage: profile.py PERF_DATA ENCLAVE_ELF BASE_HEX TITLE
Prints a small report; the last line is a one-line summary for info rows.
"""
import bisect
import re
import subprocess
import sys


def perf_report(data, *args):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *args],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        rows.append(line)
    return rows


def enclave_symbols(elf):
    out = subprocess.run(["nm", "-n", elf], capture_output=True, text=True, check=True).stdout
    symbols = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tT":
            symbols.append((int(fields[0], 16), fields[2]))
    symbols.sort()
    return symbols


def main():
    data, elf, base_hex, title = sys.argv[1:5]
    base = int(base_hex, 16)
    symbols = enclave_symbols(elf)
    addresses = [a for a, _ in symbols]
    children = {}
    kernel_self = 0.0
    enclave = {}
    user_other = 0.0
    pattern = re.compile(r"^\s*([0-9.]+)%\s+([0-9.]+)%\s+\[([k.])\]\s+(\S+)")
    for line in perf_report(data, "--children", "--sort", "sym"):
        m = pattern.match(line)
        if not m:
            continue
        total, own, space, name = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        children[name] = max(children.get(name, 0.0), total)
        if space == "k":
            kernel_self += own
            continue
        if name.startswith("0x"):
            offset = int(name, 16) - base
            i = bisect.bisect_right(addresses, offset) - 1
            if 0 <= offset < (1 << 40) and i >= 0:
                enclave[symbols[i][1]] = enclave.get(symbols[i][1], 0.0) + own
                continue
        user_other += own
    faults = children.get("asm_exc_page_fault", 0.0)
    unmap = children.get("__x64_sys_munmap", 0.0) + children.get("task_work_run", 0.0)
    enclave_total = sum(enclave.values())
    top = sorted(enclave.items(), key=lambda kv: -kv[1])[:4]
    print(f"{title}: share of the process's CPU samples")
    print(f"  kernel, all                {kernel_self:5.1f} %")
    print(f"    page faults (children)   {faults:5.1f} %")
    print(f"    munmap + deferred frees  {unmap:5.1f} %")
    print(f"  enclave code               {enclave_total:5.1f} %")
    for name, share in top:
        print(f"    {name:<24} {share:5.1f} %")
    print(f"  other user code            {user_other:5.1f} %")
    summary = (f"kernel {kernel_self:.0f}% (page faults {faults:.0f}%, munmap {unmap:.0f}%), "
               f"enclave code {enclave_total:.0f}% ("
               + ", ".join(f"{n} {s:.0f}%" for n, s in top) + ")")
    print(summary)


if __name__ == "__main__":
    main()
