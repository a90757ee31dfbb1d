#!/usr/bin/env python3
"""Fails when code reachable in an enclave image executes an instruction SGX
forbids inside an enclave (SDM vol. 3D, 37.6.1: CPUID, GETSEC, RDPMC,
descriptor-table and port I/O instructions, VMCALL, ...; RDTSC(P) too,
since SPM's trusted code targets SGX1), or a system call.

Reachable means: from the entry point or from any address the image stores
as a pointer (every function pointer of a static PIE is a RELATIVE
relocation), following every call, jump and address-taking LEA. Libraries
link in more than is called: BearSSL keeps its CPUID probes in the object
files of the AES-NI and PCLMUL code the trusted crypto adapter calls
directly. Those probes are allowed while nothing can reach them, and the
check says so.

    check_enclave_insns.py ELF   (prints one line; exit 1 on a violation)
"""
import re
import subprocess
import sys

ILLEGAL = re.compile(r'^(cpuid|getsec|rdpmc|rdtscp?|sgdt|sidt|sldt|str|lgdt|lidt|lldt|ltr|'
                     r'vmcall|vmfunc|in|out|insb|insw|insl|outsb|outsw|outsl|into|hlt|'
                     r'syscall|sysenter)$')
elf = sys.argv[1]
name = elf.rsplit('/', 1)[-1]
disasm = subprocess.run(['objdump', '-d', '--no-show-raw-insn', elf], capture_output=True,
                        text=True, check=True).stdout

starts = []            # (address, function)
edges = {}             # function -> set of referenced addresses
illegal = []           # (function, address, mnemonic)
fn = None
for line in disasm.splitlines():
    m = re.match(r'^([0-9a-f]+) <(.+)>:$', line)
    if m:
        fn = m.group(2)
        starts.append((int(m.group(1), 16), fn))
        edges.setdefault(fn, set())
        continue
    m = re.match(r'^\s*([0-9a-f]+):\t(\S+)\s*(.*)$', line)
    if not m or fn is None:
        continue
    address, mnemonic, operands = int(m.group(1), 16), m.group(2), m.group(3)
    if ILLEGAL.match(mnemonic) or re.match(r'^int\s+\$0x80', mnemonic + ' ' + operands):
        illegal.append((fn, address, mnemonic))
    for target in re.findall(r'\b([0-9a-f]+) <[^>]+>', operands):
        edges[fn].add(int(target, 16))
starts.sort()


def function_at(address):
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid][0] <= address:
            lo = mid + 1
        else:
            hi = mid
    return starts[lo - 1][1] if lo else None


header = subprocess.run(['readelf', '-hW', elf], capture_output=True, text=True,
                        check=True).stdout
roots = [int(re.search(r'Entry point address:\s+0x([0-9a-f]+)', header).group(1), 16)]
relocs = subprocess.run(['readelf', '-rW', elf], capture_output=True, text=True,
                        check=True).stdout
for line in relocs.splitlines():
    if 'R_X86_64_RELATIVE' in line:
        roots.append(int(line.split()[-1], 16))

reachable = set()
work = [f for f in (function_at(a) for a in roots) if f]
while work:
    f = work.pop()
    if f in reachable:
        continue
    reachable.add(f)
    work.extend(g for g in (function_at(a) for a in edges.get(f, ())) if g and g not in reachable)

bad = [(f, a, m) for f, a, m in illegal if f in reachable]
dead = sorted({f for f, a, m in illegal if f not in reachable})
if bad:
    print(f'FAIL {name}: instruction(s) illegal inside an enclave, in reachable code:')
    for f, a, m in bad[:8]:
        print(f'  {a:x} {m} in {f}')
    sys.exit(1)
print(f'ok   {name}: no reachable enclave-illegal instruction'
      + (f' (unreachable: {", ".join(dead)})' if dead else ''))
