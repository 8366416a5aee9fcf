#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Enrols the ten Huaihai cities under their four province CAs with
# `tongban`, then checks every result with certtool and openssl: chain
# verification, one revocation and the CRL that publishes it.
set -eu

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
TB="$TB_BUILDDIR/tongban"
DATA="$TB_SRCDIR/interop/huaihai.json"
command -v certtool >/dev/null 2>&1 || { echo "certtool missing: skip"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "openssl missing: skip"; exit 77; }

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TB" ca init --dir root --name "Huaihai Federation Root" >/dev/null || fail "root CA"
for hub in 320000:Jiangsu 370000:Shandong 340000:Anhui 410000:Henan; do
	id=${hub%%:*} name=${hub#*:}
	"$TB" ca init --dir "ca-$id" --name "$name Province CA" --id "$id" --parent root \
		>/dev/null || fail "province CA $id"
	openssl verify -CAfile root/ca.crt "ca-$id/ca.crt" >/dev/null || fail "openssl: CA $id"
	"$TB" cert verify --usage ca --ca root/ca.crt "ca-$id/ca.crt" >/dev/null ||
		fail "tongban: CA $id"
done

# One city per line of the JSON: id, hub, English name.
sed -n 's/.*"id": *"\([0-9]*\)", *"name": *"[^"]*", *"name_en": *"\([^"]*\)", *"hub": *"\([0-9]*\)".*/\1 \3 \2/p' \
	"$DATA" >cities
[ "$(wc -l <cities)" -eq 10 ] || fail "expected 10 cities in $DATA"

port=5684
while read -r id hub name; do
	host=$(echo "$name" | tr -cd 'A-Za-z' | tr 'A-Z' 'a-z').huaihai.example
	# on the city's machine
	"$TB" node init --dir "node-$id" --id "$id" --name "$name" --org huaihai \
		--endpoint "coaps://$host:$port" >/dev/null || fail "node init $id"
	[ "$(stat -c %a "node-$id/node.key")" = 600 ] || fail "node.key mode $id"
	# at the province CA, with only the CSR
	"$TB" ca issue --dir "ca-$hub" --csr "node-$id/node.csr" --out "$id.crt" >/dev/null ||
		fail "issue $id"
	cat "$id.crt" "ca-$hub/ca.crt" root/ca.crt >"$id.chain"
	certtool --verify-chain --infile "$id.chain" >"$id.ct" 2>&1 || fail "certtool chain $id"
	grep -q "Chain verification output: Verified" "$id.ct" || fail "certtool verdict $id"
	cat "$id.crt" "ca-$hub/ca.crt" >"$id.bundle"
	certtool --verify --load-ca-certificate root/ca.crt --infile "$id.bundle" >/dev/null 2>&1 ||
		fail "certtool --verify $id"
	openssl verify -CAfile root/ca.crt -untrusted "ca-$hub/ca.crt" "$id.crt" >/dev/null ||
		fail "openssl verify $id"
	openssl verify -purpose sslserver -CAfile root/ca.crt -untrusted "ca-$hub/ca.crt" \
		"$id.crt" >/dev/null || fail "openssl sslserver $id"
	openssl verify -purpose sslclient -CAfile root/ca.crt -untrusted "ca-$hub/ca.crt" \
		"$id.crt" >/dev/null || fail "openssl sslclient $id"
	out=$("$TB" cert verify --ca root/ca.crt --chain "ca-$hub/ca.crt" "$id.crt") ||
		fail "tongban verify $id"
	[ "$out" = "ok $id" ] || fail "tongban verify $id said '$out'"
	"$TB" cert show "$id.crt" | grep -q "^member id: *$id\$" || fail "cert show $id"
	# the key id in the certificate is the node key's
	kid=$("$TB" key id "node-$id/node.key")
	"$TB" cert show "$id.crt" | grep -q "^key id: *$kid\$" || fail "key id $id"
	openssl x509 -in "$id.crt" -noout -ext subjectAltName | grep -q "DNS:$host" ||
		fail "SAN $id"
	port=$((port + 1))
done <cities
grep -c '^V' ca-370000/index.txt | grep -qx 4 || fail "Shandong index should list 4"

# Revoke Linyi (371300) and publish Shandong's CRL.
"$TB" ca revoke --dir ca-370000 --cert 371300.crt --reason keyCompromise >/dev/null ||
	fail "revoke"
"$TB" ca crl --dir ca-370000 --out shandong.crl >/dev/null || fail "crl"
cat root/ca.crt ca-370000/ca.crt >trust.pem
openssl crl -in shandong.crl -CAfile trust.pem -verify -noout 2>&1 | grep -q "verify OK" ||
	fail "openssl crl -verify"
openssl crl -in shandong.crl -noout -text | grep -qi "$(openssl x509 -in 371300.crt -noout -serial | cut -d= -f2)" ||
	fail "serial not on the CRL"
if openssl verify -crl_check -CRLfile shandong.crl -CAfile root/ca.crt \
	-untrusted ca-370000/ca.crt 371300.crt >ov 2>&1; then
	fail "openssl accepted a revoked certificate"
fi
grep -q "certificate revoked" ov || fail "openssl reason: $(cat ov)"
openssl verify -crl_check -CRLfile shandong.crl -CAfile root/ca.crt \
	-untrusted ca-370000/ca.crt 370800.crt >/dev/null || fail "openssl: Jining with CRL"
set +e
"$TB" cert verify --ca root/ca.crt --chain ca-370000/ca.crt --crl shandong.crl 371300.crt 2>err
rc=$?
set -e
[ $rc -eq 1 ] && grep -q "cert.revoked" err || fail "tongban revoked: rc=$rc $(cat err)"
"$TB" cert verify --ca root/ca.crt --chain ca-370000/ca.crt --crl shandong.crl 370800.crt \
	>/dev/null || fail "tongban: Jining with CRL"
# certtool agrees too
certtool --verify --load-ca-certificate root/ca.crt --load-crl shandong.crl \
	--infile 371300.bundle >/dev/null 2>&1 && fail "certtool accepted a revoked certificate"

# An encrypted province key: init with --pass-file, issue needs it.
echo "correct horse" >pw
"$TB" ca init --dir ca-enc --name "Encrypted CA" --id 320000 --parent root --pass-file pw \
	>/dev/null || fail "encrypted CA"
grep -q "ENCRYPTED PRIVATE KEY" ca-enc/ca.key || fail "key not encrypted"
if "$TB" ca issue --dir ca-enc --csr node-320300/node.csr --out x.crt 2>/dev/null; then
	fail "issued without the password"
fi
"$TB" ca issue --dir ca-enc --csr node-320300/node.csr --out x.crt --pass-file pw >/dev/null ||
	fail "issue with the password"
echo "all 10 cities enrolled and checked"
