#!/bin/sh
# `spm ca init --reuse` and `spm ca pin-source`, as the build uses them: a
# CA is made once and then kept (same certificate, key still 0600), a key
# others can read or a key of another CA is refused, and pin-source accepts
# only one CA certificate in canonical PEM.
# usage: test_ca_cli.sh SPM
set -eu
spm=$1
dir=$(mktemp -d /tmp/spm-ca-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$spm" ca init --reuse --dir "$dir/ca" --cn "cli test CA" >/dev/null || fail "first init --reuse"
[ "$(stat -c %a "$dir/ca/ca.key")" = 600 ] || fail "ca.key is not mode 0600"
cp "$dir/ca/ca.crt" "$dir/first.crt"
"$spm" ca init --reuse --dir "$dir/ca" >/dev/null || fail "second init --reuse"
cmp -s "$dir/ca/ca.crt" "$dir/first.crt" || fail "--reuse replaced the CA"
if "$spm" ca init --dir "$dir/ca" >/dev/null 2>&1; then fail "init without --reuse overwrote"; fi

chmod 0644 "$dir/ca/ca.key"
if "$spm" ca init --reuse --dir "$dir/ca" >/dev/null 2>&1; then fail "kept a readable key"; fi
chmod 0600 "$dir/ca/ca.key"
"$spm" ca init --dir "$dir/other" >/dev/null
cp "$dir/other/ca.key" "$dir/ca/ca.key"
if "$spm" ca init --reuse --dir "$dir/ca" >/dev/null 2>&1; then fail "kept a key of another CA"; fi

"$spm" ca pin-source --cert "$dir/first.crt" --out "$dir/pin.c" || fail "pin-source"
grep -q 'spm_provisioning_root_pem\[\] =' "$dir/pin.c" || fail "pin.c lacks the root"
first_line=$(sed -n 2p "$dir/first.crt")
grep -qF "\"$first_line\\n\"" "$dir/pin.c" || fail "pin.c lacks the certificate's base64"
cc -fsyntax-only -x c "$dir/pin.c" || fail "pin.c does not compile"

sed 's/$/\r/' "$dir/first.crt" > "$dir/crlf.crt"
if "$spm" ca pin-source --cert "$dir/crlf.crt" --out "$dir/x.c" 2>/dev/null; then
    fail "pinned a CRLF certificate"
fi
{ echo "text before"; cat "$dir/first.crt"; } > "$dir/text.crt"
if "$spm" ca pin-source --cert "$dir/text.crt" --out "$dir/x.c" 2>/dev/null; then
    fail "pinned a certificate with text around it"
fi
"$spm" platform init --platform "$dir/platform" --ca "$dir/other" >/dev/null 2>&1 || fail "platform init"
if "$spm" ca pin-source --cert "$dir/platform/attest.crt" --out "$dir/x.c" 2>/dev/null; then
    fail "pinned a leaf certificate"
fi
[ ! -e "$dir/x.c" ] || fail "a refused pin-source wrote its output"
echo "ok"
