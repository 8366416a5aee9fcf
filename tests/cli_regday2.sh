#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_regday2.sh - the registry's day-2 commands and their refusals.
# * add refuses without --trust/--ca (usage, says which flag), refuses a
#   certificate of a foreign CA (cert.unknown-issuer) and one whose province
#   CA is not given (--chain hint); accepts it with --chain or a chain file.
# * add-key / remove-key: a rotation with two keys valid at once, then the
#   old dropped; remove-member; refusals (reg.unknown-member, reg.reference).
# * diff OLD NEW: one line per change and "N changes"; --json the same
#   changes as one JSON document (checked with `tongban canon`, the
#   project's own parser); of two trust anchors: threshold, authorities.
# * sign --trust refuses a key that is no authority (reg.unknown-signer)
#   and signs with one; show/verify/trust show --json parse as JSON.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30400 \
	>"$W/devfed.out" 2>&1 || tb_fail "dev-federation" "exit 0" "$(tail -n 3 "$W/devfed.out")"
F=$W/fed
R=$W/reg.json
cp "$F/registry.json" "$W/old.json"
cp "$F/registry.json" "$R"
json() { "$TB" canon <"$W/out" >/dev/null 2>&1 || tb_fail "$TB_LAST: JSON" "valid JSON" "$(head -c 300 "$W/out")"; }

# a new city of Jiangsu, certified by its province CA
"$TB" node init --dir "$W/n" --id 320800 --name "Huai'an" --endpoint coaps://127.0.0.1:30499 >/dev/null &&
	"$TB" ca issue --dir "$F/ca-320000" --csr "$W/n/node.csr" --out "$W/n/node.crt" >/dev/null ||
	tb_fail "node init + ca issue 320800" "exit 0" "failed"
cat "$W/n/node.crt" "$F/ca-320000/ca.crt" >"$W/n/node-chain.pem"
ADD="registry add $R --role city --endpoint coaps://127.0.0.1:30499 --service hukou.transfer=3208"

tb_run 2 $ADD --cert "$W/n/node.crt"
tb_expect_err "--trust TRUST.json or --ca ROOT.crt is required"
tb_run 2 $ADD --cert "$W/n/node.crt" --trust "$F/trust.json" --ca "$F/root.crt"
tb_expect_err "give one of --trust and --ca"
tb_run 1 $ADD --cert "$W/n/node.crt" --trust "$F/trust.json"
tb_expect_err "cert.unknown-issuer"
tb_expect_err "give its province CA's certificate with --chain"
# the foreign CA's certificate for a member: refused even with the chain
tb_run 1 $ADD --cert "$F/testids/foreign/node.crt" --name Foreign --trust "$F/trust.json" \
	--chain "$F/ca-320000/ca.crt"
tb_expect_err "cert.unknown-issuer"
tb_run 1 $ADD --cert "$F/testids/foreign/node.crt" --name Foreign --ca "$F/testids/foreign-ca/ca.crt"
tb_expect_err "reg.duplicate-member"
tb_run 0 $ADD --cert "$W/n/node-chain.pem" --trust "$F/trust.json"
tb_expect_out_has "added 320800 (Huai'an), serial 2, 3 members"
cp "$R" "$W/added.json"
tb_run 1 registry add "$W/old.json" --role city --endpoint coaps://127.0.0.1:1 \
	--cert "$W/n/node.crt" --ca "$F/root.crt" --chain "$F/ca-370000/ca.crt"
tb_expect_err "cert.unknown-issuer"

# rotation: the new key beside the old one, then the old removed
"$TB" node init --dir "$W/k2" --id 320800 --name "Huai'an" --endpoint coaps://127.0.0.1:30499 >/dev/null &&
	"$TB" ca issue --dir "$F/ca-320000" --csr "$W/k2/node.csr" --out "$W/k2/node.crt" >/dev/null ||
	tb_fail "second key for 320800" "exit 0" "failed"
old=$("$TB" key id "$W/n/node.crt")
new=$("$TB" key id "$W/k2/node.crt")
tb_run 2 registry add-key "$R" --cert "$W/k2/node.crt"
tb_expect_err "--trust TRUST.json or --ca ROOT.crt is required"
tb_run 1 registry add-key "$R" --cert "$F/testids/foreign/node.crt" --trust "$F/trust.json"
tb_expect_err "cert.unknown-issuer"
tb_run 1 registry add-key "$R" --cert "$F/testids/nonmember/node.crt" --ca "$F/root.crt" \
	--chain "$F/ca-320000/ca.crt"
tb_expect_err "reg.unknown-member"
tb_run 0 registry add-key "$R" --cert "$W/k2/node.crt" --use sign --trust "$F/trust.json" \
	--chain "$F/ca-320000/ca.crt"
tb_expect_out_has "serial 3, key added"
tb_run 0 registry show "$R"
tb_expect_out_has "  key $old both"
tb_expect_out_has "  key $new sign"
tb_run 0 registry diff "$W/added.json" "$R"
tb_expect_out_has "serial 2 -> 3 (0 signatures on the new one)"
tb_expect_out_has "+ key 320800: $new sign"
tb_expect_out_has "1 changes"
tb_run 0 registry remove-key "$R" --cert "$W/n/node.crt"
tb_expect_out_has "serial 4, key removed"
tb_run 1 registry remove-key "$R" --kid "$new"
tb_expect_err "field.value"
tb_run 2 registry remove-key "$R" --kid xyz
tb_expect_err "--kid must be 64 lowercase hex digits"
tb_run 2 registry remove-key "$R"
tb_expect_err "give one of --cert and --kid"

# remove-member; a hub named as parent cannot go
tb_run 1 registry remove-member "$R" --member 999999
tb_expect_err "reg.unknown-member"
tb_run 2 registry remove-member "$R"
tb_expect_err "--member is required"
tb_run 0 registry set "$R" --member 371300 --status suspended
tb_run 0 registry remove-member "$R" --member 320300
tb_expect_out_has "removed 320300, serial 6, 2 members"

# diff OLD NEW: every kind of change made above, readable and as JSON
tb_run 0 registry diff "$W/old.json" "$R"
tb_expect_out_has "serial 1 -> 6 (0 signatures on the new one)"
tb_expect_out_has "- member 320300: city"
tb_expect_out_has "+ member 320800: city \"Huai'an\" parent=- status=active, 1 keys, 1 endpoints, 1 services"
tb_expect_out_has "+ key 320800: $new sign"
tb_expect_out_has "+ endpoint 320800: coaps://127.0.0.1:30499"
tb_expect_out_has "+ service 320800: hukou.transfer=3208"
tb_expect_out_has "~ status 371300: active -> suspended"
tb_expect_out_has "6 changes"
tb_run 0 registry diff "$W/old.json" "$W/old.json"
tb_expect_out_has "no changes"
tb_run 0 registry diff --json "$W/old.json" "$R"
json
tb_expect_out_has '{"op":"changed","what":"status","member":"371300","old":"active","new":"suspended"}'
tb_expect_out_has '"old_serial":1,"new_serial":6'
[ "$(grep -o '"op":' "$W/out" | wc -l)" -eq 6 ] || tb_fail "diff --json: changes" "6" "$(cat "$W/out")"
tb_run 2 registry diff "$R"
tb_expect_err "two REG files expected: OLD NEW"

# sign: with --trust only an authority of the anchor
tb_run 1 registry sign "$R" --key "$F/root/ca.key" --cert "$F/root.crt" --trust "$F/trust.json"
tb_expect_err "reg.unknown-signer"
tb_run 1 registry sign "$R" --key "$F/testids/foreign-ca/ca.key" \
	--cert "$F/testids/foreign-ca/ca.crt" --trust "$F/trust.json"
tb_expect_err "is not an authority of $F/trust.json"
tb_run 0 registry show "$R"
tb_expect_out_has "signatures 0"
tb_run 0 registry sign "$R" --key "$F/ca-320000/ca.key" --cert "$F/ca-320000/ca.crt" --trust "$F/trust.json"
tb_expect_out_has "signed serial 6 as authority"
tb_expect_out_has "1 signatures, 2 needed"
tb_run 0 registry sign "$R" --key "$F/ca-370000/ca.key" --cert "$F/ca-370000/ca.crt"
tb_expect_out_has "not checked against a trust anchor"

# --json on verify, show and trust show
tb_run 0 registry verify --json "$R" --trust "$F/trust.json"
json
tb_expect_out_has '{"ok":true,"federation":"tongban-dev","serial":6,"members":2,'
tb_run 1 registry verify --json "$W/added.json" --trust "$F/trust.json"
json
tb_expect_out_has '{"ok":false,"reason":"reg.threshold"'
tb_run 0 registry show --json "$R"
json
tb_expect_out_has '"id":"320800","role":"city","name":"Huai'"'"'an","parent":null,"status":"active"'
tb_run 0 trust show --json "$F/trust.json"
json
fp=$("$TB" cert show "$F/root.crt" | sed -n 's/^fingerprint: *//p')
tb_expect_out_has "\"fingerprint\":\"$fp\""
tb_run 0 trust show "$F/trust.json"
tb_expect_out_has "root_fingerprint sha256:$fp"
tb_expect_out_has "root CN=Tongban dev federation root"
# diff of two trust anchors: what the registry does not hold
tb_run 0 trust new --root "$F/root.crt" --authority "$F/ca-320000/ca.crt" --threshold 1 \
	--federation tongban-dev --out "$W/t1.json"
tb_run 0 registry diff "$F/trust.json" "$W/t1.json"
tb_expect_out_has "~ threshold: 2 -> 1"
tb_expect_out_has "- authority: $("$TB" key id "$F/ca-370000/ca.crt") 370000"
tb_expect_out_has "2 changes"
tb_run 0 registry diff --json "$F/trust.json" "$W/t1.json"
json
tb_expect_out_has '"trust":true'
tb_run 1 registry diff "$F/trust.json" "$R"
tb_expect_err "is a trust anchor, $R is not"
echo "PASS: $TB_CHECKS checks"
