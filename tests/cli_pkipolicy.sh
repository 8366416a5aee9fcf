#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_pkipolicy.sh - the CA's policy and the PKI's inspection and
# error messages (issue 19 points 3 and 5).
# * a province CA (serialNumber=320000) issues only 32xxxx (ca.prefix,
#   naming both ids); the root issues any member id.
# * --days past the CA's own expiry: refused (ca.validity) with the date
#   it would have been cut to; without --days the default is cut quietly.
# * csr show prints subject, member id and key id (the key id equals the
#   issued certificate's); --json parses; cert show on a CSR points to
#   csr show; cert show --json parses and names the same key id.
# * ca issue on a terminal (run under script(1)): shows the request and
#   asks; "n" signs nothing (exit 1), "y" signs; --yes and a non-terminal
#   stdin sign without asking (scripts).
# * an encrypted CA key without --pass-file: not "wrong password" but how
#   to give it (exit 2); on a terminal the password is asked for.
# * trust new on a root whose name is no federation name says to pass
#   --federation NAME.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
cd "$W" || exit 1
json() { "$TB" canon <"$W/out" >/dev/null 2>&1 || tb_fail "$TB_LAST: JSON" "valid JSON" "$(head -c 300 "$W/out")"; }
echo secret >pass
"$TB" ca init --dir root --name "Huaihai Federation Root" >/dev/null &&
	"$TB" ca init --dir js --name "Jiangsu CA" --id 320000 --parent root --days 100 >/dev/null &&
	"$TB" ca init --dir enc --name "Encrypted CA" --id 370000 --parent root --pass-file pass >/dev/null ||
	tb_fail "CAs" "exit 0" "failed"
for m in 320300 371300; do
	"$TB" node init --dir "n$m" --id $m --name "City $m" --endpoint coaps://127.0.0.1:1 >/dev/null ||
		tb_fail "node init $m" "exit 0" "failed"
done

# division prefix
tb_run 1 ca issue --dir js --csr n371300/node.csr --out x.crt
tb_expect_err "ca.prefix"
tb_expect_err "this CA (320000) issues only member ids 32*, not 371300"
[ ! -e x.crt ] || tb_fail "refused request" "no certificate written" "x.crt exists"
tb_run 0 ca issue --dir root --csr n371300/node.csr --out root-371300.crt

# --days past the CA's expiry: refused with the date; default cut
until=$("$TB" cert show js/ca.crt | sed -n 's/^not after: *//p')
tb_run 1 ca issue --dir js --csr n320300/node.csr --out x.crt --days 365
tb_expect_err "ca.validity"
tb_expect_err "would have been cut to $until"
tb_run 0 ca issue --dir js --csr n320300/node.csr --out 320300.crt
tb_expect_out_has "until $until"
tb_run 0 ca issue --dir js --csr n320300/node.csr --out 320300b.crt --days 30 --yes

# csr show / cert show
kid=$("$TB" key id n320300/node.key)
tb_run 0 csr show n320300/node.csr
tb_expect_out_has "subject:     serialNumber=320300,CN=City 320300"
tb_expect_out_has "member id:   320300"
tb_expect_out_has "key id:      $kid"
tb_run 0 csr show --json n320300/node.csr
json
tb_expect_out_has "\"key_id\":\"$kid\""
tb_expect_out_has '"member_id":"320300"'
tb_run 1 cert show n320300/node.csr
tb_expect_err "is a certificate request, not a certificate: use 'tongban csr show n320300/node.csr'"
tb_run 1 csr show 320300.crt
tb_expect_err "csr"
tb_run 2 csr show
tb_expect_err "exactly one file expected"
tb_run 0 cert show --json 320300.crt
json
tb_expect_out_has "\"key_id\":\"$kid\""
tb_expect_out_has '"ca":false'
tb_run 0 cert show --json root/ca.crt
json
tb_expect_out_has '"member_id":null'

# an encrypted key without its password
tb_run 2 ca issue --dir enc --csr n371300/node.csr --out y.crt
tb_expect_err "enc/ca.key: the key is encrypted: give its password with --pass-file FILE"
# any command reading the key: "encrypted", not "wrong password"
tb_run 1 key id enc/ca.key
tb_expect_err "key is encrypted: a password is needed (--pass-file FILE)"
grep -q "wrong password" "$W/err" && tb_fail "no password given" "not 'wrong password'" "$(cat "$W/err")"
echo wrong >wrong
tb_run 1 ca issue --dir enc --csr n371300/node.csr --out y.crt --pass-file wrong
tb_expect_err "wrong password"
tb_run 2 ca init --dir sub2 --name "Sub" --parent enc
tb_expect_err "the key is encrypted"

# on a terminal: asked for the password (not echoed) and the yes
if command -v script >/dev/null 2>&1; then
	printf 'secret\nn\n' | script -qec "\"$TB\" ca issue --dir enc --csr n371300/node.csr --out y.crt" \
		/dev/null >tty.out 2>&1 && tb_fail "ca issue, answered n" "exit 1" "exit 0"
	grep -q "Password for enc/ca.key:" tty.out || tb_fail "password prompt" "Password for enc/ca.key:" "$(cat tty.out)"
	grep -q "key id:     $("$TB" key id n371300/node.key)" tty.out &&
		grep -q "member id:  371300" tty.out && grep -q "Sign it? \[y/N\]" tty.out ||
		tb_fail "the request shown before signing" "member id, key id, Sign it?" "$(cat tty.out)"
	grep -q "not signed" tty.out && [ ! -e y.crt ] || tb_fail "answer n" "not signed, no file" "$(cat tty.out)"
	printf 'secret\ny\n' | script -qec "\"$TB\" ca issue --dir enc --csr n371300/node.csr --out y.crt" \
		/dev/null >tty.out 2>&1 || tb_fail "ca issue, answered y" "exit 0" "$(cat tty.out)"
	grep -q "issued 371300 serial" tty.out && [ -s y.crt ] || tb_fail "answer y" "issued" "$(cat tty.out)"
	TB_CHECKS=$((TB_CHECKS + 2))
else
	echo "# script(1) missing: terminal prompts not tested"
fi

# trust new: the root's CN is no federation name
tb_run 2 trust new --root root/ca.crt --authority js/ca.crt --threshold 1 --out t.json
tb_expect_err "the root's name \"Huaihai Federation Root\" is not a federation name"
tb_expect_err "pass --federation NAME"
tb_run 0 trust new --root root/ca.crt --authority js/ca.crt --threshold 1 --out t.json --federation huaihai
echo "PASS: $TB_CHECKS checks"
