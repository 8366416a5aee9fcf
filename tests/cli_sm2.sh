#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_sm2.sh - SM2 on the command line (issue 21 point 2):
# * a trust anchor whose registry authorities are bare SM2 public keys
#   (`trust new --authority A.pub`; SM2 keys have no certificates);
# * a member whose message-signing key is SM2 (`registry add --sign-cert
#   sign.pub`), listed with use "sign";
# * `registry sign` with SM2 authority keys (--cert the authority's PUBLIC
#   KEY PEM; a key that does not match it is refused), `registry verify`
#   ok with 2 of 2 sm2 signatures, reg.threshold with one, and a tampered
#   registry refused;
# * an envelope sealed with the SM2 key opens with its public key, not
#   with another; its digest is SM3 (`msg digest` = openssl dgst -sm3 of
#   the signed bytes);
# * a CA or a DTLS node key cannot be sm2 (one line, exit 2).
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30300 \
	>"$W/devfed.out" 2>&1 || tb_fail "dev-federation" "exit 0" "$(tail -n 3 "$W/devfed.out")"
F=$W/fed
for a in a1 a2 m; do
	tb_run 0 key gen --alg sm2 --out "$W/$a.key"
	tb_run 0 key pub "$W/$a.key"
	cp "$W/out" "$W/$a.pub"
done
tb_run 0 trust new --root "$F/root.crt" --authority "$W/a1.pub" --authority "$W/a2.pub" \
	--threshold 2 --out "$W/trust.json" --federation tongban-dev
tb_run 0 trust show "$W/trust.json"
tb_expect_out_has "sm2 a1"
tb_expect_out_has "sm2 a2"
R=$W/reg.json
tb_run 0 registry new --federation tongban-dev --out "$R"
tb_run 0 registry add "$R" --cert "$F/320300/node.crt" --sign-cert "$W/m.pub" --role city \
	--trust "$W/trust.json" --chain "$F/ca-320000/ca.crt" --endpoint coaps://127.0.0.1:30300 --service hukou.transfer=3203
tb_run 0 registry show "$R"
tb_expect_out_has "  key $("$TB" key id "$W/m.pub") sign"
tb_expect_out_has "  key $("$TB" key id "$F/320300/node.crt") tls"
tb_run 1 registry sign "$R" --key "$W/a1.key" --cert "$W/a2.pub"
tb_expect_err "does not match"
tb_run 0 registry sign "$R" --key "$W/a1.key" --cert "$W/a1.pub"
tb_run 1 registry verify "$R" --trust "$W/trust.json"
tb_expect_err reg.threshold
tb_run 0 registry sign "$R" --key "$W/a2.key" --cert "$W/a2.pub"
tb_run 0 registry verify "$R" --trust "$W/trust.json"
tb_expect_out_has "(2 of 2 signatures)"
[ "$(grep -o '"alg":"sm2"' "$R" | wc -l)" = 2 ] || tb_fail "registry signatures" "2 sm2" "$(grep -o '"alg":"[a-z0-9]*"' "$R")"
sed 's/"hukou.transfer"/"pension.transfer"/' "$R" >"$W/tampered.json"
! cmp -s "$R" "$W/tampered.json" || tb_fail "tampering" "a changed service" "no change"
tb_run 1 registry verify "$W/tampered.json" --trust "$W/trust.json"
tb_expect_err reg.bad-signature
# an envelope sealed with the SM2 member key
tb_run 0 msg new --type control.ping --from 320300 --to 371300 --service control.ping
cp "$W/out" "$W/env.json"
tb_run 0 msg seal --key "$W/m.key" "$W/env.json"
cp "$W/out" "$W/sealed.json"
tb_expect_out_has '"sig":{"alg":"sm2"'
tb_run 0 msg open --pub "$W/m.pub" "$W/sealed.json"
tb_run 1 msg open --pub "$W/a1.pub" "$W/sealed.json"
tb_run 0 msg digest "$W/sealed.json"
dg=$(cat "$W/out")
# the signed bytes: the canonical envelope without sig, as msg new printed
# it canonically
tb_run 0 canon "$W/env.json"
printf '%s' "$(cat "$W/out")" >"$W/signed"
want=$(openssl dgst -sm3 -r "$W/signed" | cut -c1-64)
tb_expect_eq "msg digest of an sm2 envelope is SM3 of its signed bytes" "$want" "$dg"
# CA and DTLS keys stay off sm2
tb_run 2 ca init --dir "$W/ca" --name X --alg sm2
tb_expect_err "cannot be sm2"
tb_run 2 node init --dir "$W/n" --id 320300 --name X --endpoint coaps://127.0.0.1:30300 --alg sm2
tb_expect_err "cannot be sm2"
tb_done
