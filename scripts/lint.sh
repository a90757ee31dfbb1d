#!/usr/bin/env bash
# Static analysis: cppcheck and clang-tidy (.clang-tidy) over every C file
# the build compiles (BUILDDIR/compile_commands.json, default build).
#   scripts/lint.sh [BUILDDIR] [--update]
# Fails on any finding not in tests/static/{cppcheck,clang-tidy}.baseline.
# A finding is keyed by file, check and message, not by line, so moving
# code does not make it new; the baselines hold what was judged not to be a
# defect (or is left for later), and --update rewrites them.
set -uo pipefail
cd "$(dirname "$0")/.."
build=build
update=0
for a in "$@"; do
    case "$a" in
    --update) update=1 ;;
    *) build=$a ;;
    esac
done
[ -f "$build/compile_commands.json" ] || bash scripts/build.sh >/dev/null
out=$(mktemp -d /tmp/spm-lint.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Only the project's own sources: not generated files in the build dir.
python3 - "$build/compile_commands.json" "$PWD" >"$out/files" <<'PY'
import json, os, sys
root = sys.argv[2]
seen = set()
for e in json.load(open(sys.argv[1])):
    f = os.path.normpath(os.path.join(e['directory'], e['file']))
    rel = os.path.relpath(f, root)
    if rel.startswith('..') or rel.startswith('build') or not rel.endswith('.c') or rel in seen:
        continue
    seen.add(rel)
    print(rel)
PY
echo "lint: $(wc -l <"$out/files") C files"

grep -v '^#' .cppcheck-suppressions | grep -v '^$' >"$out/cppcheck.supp"
cppcheck --project="$build/compile_commands.json" --enable=warning,portability,performance \
    --inline-suppr --suppressions-list="$out/cppcheck.supp" --quiet -j2 \
    --file-filter="$PWD/*" -i"$PWD/$build" \
    --template='{file}|{id}|{message}' 2>"$out/cppcheck.raw" >/dev/null
grep -E '^[^ ].*\|.*\|' "$out/cppcheck.raw" | sed "s|^$PWD/||" | sort >"$out/cppcheck.txt"

run-clang-tidy-14 -p "$build" -quiet -j 2 $(sed "s|^|$PWD/|" "$out/files") >"$out/tidy.raw" 2>/dev/null
sed 's/\x1b\[[0-9;]*m//g' "$out/tidy.raw" |
    grep -E '^(/|\.\./).*:[0-9]+:[0-9]+: (warning|error): .*\[[A-Za-z0-9.,-]+\]$' |
    sed -E "s|^$PWD/||; s|^\.\./||; s|^$build/\.\./||; s|^([^:]+):[0-9]+:[0-9]+: (warning\|error): (.*) \[([^]]+)\]$|\1\|\4\|\3|" |
    sort -u >"$out/tidy.txt"

status=0
for tool in cppcheck clang-tidy; do
    found=$out/${tool/clang-/}.txt
    [ "$tool" = clang-tidy ] && found=$out/tidy.txt
    baseline=tests/static/$tool.baseline
    if [ $update -eq 1 ]; then
        { echo "# $tool findings judged not to be defects or left for later (scripts/lint.sh)"; cat "$found"; } >"$baseline"
        echo "lint: $baseline rewritten ($(wc -l <"$found") findings)"
        continue
    fi
    new=$(comm -23 "$found" <(grep -v '^#' "$baseline" 2>/dev/null | sort))
    if [ -n "$new" ]; then
        echo "lint: $tool: $(wc -l <<<"$new") new finding(s) (file|check|message):"
        echo "$new"
        status=1
    else
        echo "lint: $tool: nothing new ($(wc -l <"$found") findings, all in $baseline)"
    fi
done
exit $status
