#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_regkey.sh - `tongban registry key`: a rotation's new key is
# listed beside a member's old one, and the old one dropped after.
# * --add CERT lists the certificate's key under the member its subject
#   serialNumber names (use "both", or --use), as a new serial without
#   signatures; two signatures make it verify again.
# * the same key again: refused (reg.duplicate-key); a certificate of a
#   member not in the registry: refused (reg.unknown-member).
# * --remove CERT / --remove-kid HEX drop it; the member's only key is
#   not removed (field.value); a key no member lists: sig.unknown-key.
# * usage errors exit 2 with one line.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30300 \
	>"$W/devfed.out" 2>&1 || tb_fail "dev-federation" "exit 0" "$(tail -n 3 "$W/devfed.out")"
F=$W/fed
R=$W/reg.json
cp "$F/registry.json" "$R"
"$TB" node init --dir "$W/new" --id 320300 --name Xuzhou --endpoint coaps://127.0.0.1:30300 >/dev/null 2>&1 &&
	"$TB" ca issue --dir "$F/ca-320000" --csr "$W/new/node.csr" --out "$W/new/node.crt" >/dev/null 2>&1 ||
	tb_fail "new key and certificate for 320300" "exit 0" "failed"
kid=$("$TB" key id "$W/new/node.crt")
old=$("$TB" key id "$F/320300/node.crt")
keys() { "$TB" registry show "$R" | sed -n "/^member $1 /,/^member /s/^  key \([0-9a-f]*\) \([a-z]*\)$/\1 \2/p"; }

tb_run 0 registry key "$R" --add "$W/new/node.crt" --use sign
grep -q "^serial 2, key added$" "$W/out" || tb_fail "registry key --add" "serial 2, key added" "$(cat "$W/out")"
[ "$(keys 320300)" = "$old both
$kid sign" ] || tb_fail "320300's keys after --add" "old both, new sign" "$(keys 320300)"
tb_run 1 registry verify "$R" --trust "$F/trust.json"
tb_expect_err reg.threshold
for ca in 320000 370000; do
	tb_run 0 registry sign "$R" --key "$F/ca-$ca/ca.key" --cert "$F/ca-$ca/ca.crt"
done
tb_run 0 registry verify "$R" --trust "$F/trust.json"
tb_run 1 registry key "$R" --add "$W/new/node.crt"
tb_expect_err reg.duplicate-key
tb_run 1 registry key "$R" --add "$F/testids/nonmember/node.crt"
tb_expect_err reg.unknown-member
tb_run 0 registry key "$R" --remove "$F/320300/node.crt"
[ "$(keys 320300)" = "$kid sign" ] || tb_fail "320300's keys after --remove" "new sign" "$(keys 320300)"
tb_run 1 registry key "$R" --remove-kid "$kid"
tb_expect_err field.value
tb_run 1 registry key "$R" --remove-kid "$old"
tb_expect_err sig.unknown-key
tb_run 2 registry key "$R"
tb_expect_err "give one of --add, --remove and --remove-kid"
tb_run 2 registry key "$R" --add "$W/new/node.crt" --use all
tb_expect_err "--use must be tls, sign or both"
tb_run 2 registry key "$R" --remove-kid xyz
tb_expect_err "--remove-kid must be 64 lowercase hex digits"
tb_run 2 registry key --add "$W/new/node.crt"
tb_expect_err "exactly one REG file expected"
echo "PASS: $TB_CHECKS checks"
