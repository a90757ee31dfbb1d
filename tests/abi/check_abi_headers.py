#!/usr/bin/env python3
"""Checks the headers whose structs cross a trust boundary (enclave ABI,
Migration Enclave ABI, checkpoint image, hardware layouts, spmd's wire
messages, the sealed escrow state, quotes): every struct defined there has
a _Static_assert on its size, and no struct has implicit padding (each
header is compiled alone with -Wpadded -Werror), so no byte of one crosses
a boundary uninitialised or differs between compilers.

    check_abi_headers.py CC SOURCE_ROOT HEADER...
"""
import os
import re
import subprocess
import sys
import tempfile

cc, root, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
failed = False
struct_re = re.compile(r'^\s*(?:typedef\s+)?struct\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{', re.M)
for header in headers:
    path = os.path.abspath(os.path.join(root, header))
    text = open(path).read()
    # Comments may mention "struct x {"; drop them first.
    code = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    code = re.sub(r'//[^\n]*', '', code)
    names = struct_re.findall(code)
    bad = False
    for name in names:
        if not re.search(r'_Static_assert\s*\(\s*sizeof\s*\(\s*struct\s+' + name + r'\s*\)', code):
            print(f'{header}: struct {name} has no _Static_assert on its size')
            bad = True
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'abi_check.c')
        with open(src, 'w') as f:
            f.write(f'#include "{path}"\n')
        cmd = [cc, '-std=c11', '-D_GNU_SOURCE', '-fsyntax-only', '-Wpadded', '-Werror=padded',
               '-I', os.path.join(root, 'include'), '-I', os.path.join(root, 'src'),
               '-I', os.path.join(root, 'src', 'host'), src]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f'{header}: does not compile alone without padding:\n{r.stderr}')
            bad = True
    if not bad:
        print(f'{header}: {len(names)} structs, each size-asserted and unpadded')
    failed = failed or bad
sys.exit(1 if failed else 0)
