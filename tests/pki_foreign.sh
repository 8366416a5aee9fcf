#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Certificates made by certtool and openssl, judged by `tongban cert
# verify`: good ones pass; expired, not-yet-valid, foreign-CA, revoked,
# wrong-usage, self-signed and tampered ones fail with their own reason.
set -eu

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
TB="$TB_BUILDDIR/tongban"
command -v certtool >/dev/null 2>&1 || { echo "certtool missing: skip"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "openssl missing: skip"; exit 77; }

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

key() { certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$1" 2>/dev/null; }
# tmpl NAME LINES...: a certtool template
tmpl() { f=$1; shift; printf '%s\n' "$@" >"$f"; }
# leaf NAME TEMPLATE [CA]: a leaf key and certificate signed by CA (default ca)
leaf() {
	key "$1.key"
	certtool --generate-certificate --load-privkey "$1.key" --load-ca-privkey "${3:-ca}.key" \
		--load-ca-certificate "${3:-ca}.crt" --template "$2" --outfile "$1.crt" 2>/dev/null
}
# expect NAME EXIT REASON [ARGS...]: tongban cert verify's verdict on NAME.crt
expect() {
	n=$1 want=$2 reason=$3
	shift 3
	set +e
	"$TB" cert verify --ca ca.crt "$@" "$n.crt" >out 2>err
	rc=$?
	set -e
	[ "$rc" -eq "$want" ] || fail "$n: exit $rc, wanted $want: $(cat out err)"
	if [ "$want" -eq 0 ]; then
		grep -qx "ok $reason" out || fail "$n: printed '$(cat out)'"
	else
		[ "$(wc -l <err)" -eq 1 ] || fail "$n: not one line: $(cat err)"
		grep -q "^tongban cert verify: $reason: " err || fail "$n: wanted $reason: $(cat err)"
	fi
}

# A root made by certtool and one made by openssl; a foreign CA.
key ca.key
tmpl ca.tmpl 'cn = "certtool root"' ca cert_signing_key crl_signing_key 'expiration_days = 100'
certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.crt 2>/dev/null
key other.key
tmpl other.tmpl 'cn = "foreign root"' ca cert_signing_key 'expiration_days = 100'
certtool --generate-self-signed --load-privkey other.key --template other.tmpl \
	--outfile other.crt 2>/dev/null

node='dn = "CN=Xuzhou,serialNumber=320300"'
tls='tls_www_server
tls_www_client'
tmpl good.tmpl "$node" signing_key "$tls" 'expiration_days = 30'
tmpl expired.tmpl "$node" signing_key "$tls" \
	'activation_date = "2020-01-01 00:00:00 UTC"' 'expiration_date = "2021-01-01 00:00:00 UTC"'
tmpl future.tmpl "$node" signing_key "$tls" \
	'activation_date = "2040-01-01 00:00:00 UTC"' 'expiration_date = "2041-01-01 00:00:00 UTC"'
tmpl keyenc.tmpl "$node" encryption_key "$tls" 'expiration_days = 30'
tmpl email.tmpl "$node" signing_key email_protection_key 'expiration_days = 30'
tmpl server.tmpl "$node" signing_key tls_www_server 'expiration_days = 30'
tmpl ca2.tmpl 'dn = "CN=sub,serialNumber=320000"' ca cert_signing_key 'expiration_days = 30'

leaf good good.tmpl
leaf expired expired.tmpl
leaf future future.tmpl
# certtool gives EC keys digitalSignature regardless; RSA honours encryption_key
certtool --generate-privkey --key-type rsa --bits 2048 --outfile keyenc.key 2>/dev/null
certtool --generate-certificate --load-privkey keyenc.key --load-ca-privkey ca.key \
	--load-ca-certificate ca.crt --template keyenc.tmpl --outfile keyenc.crt 2>/dev/null
leaf email email.tmpl
leaf server server.tmpl
leaf foreign good.tmpl other
leaf revoked good.tmpl
leaf subca ca2.tmpl
certtool --generate-self-signed --load-privkey good.key --template good.tmpl \
	--outfile selfsigned.crt 2>/dev/null

expect good 0 320300
expect expired 1 cert.expired
expect future 1 cert.not-yet-valid
expect foreign 1 cert.unknown-issuer
expect keyenc 1 cert.usage
expect email 1 cert.usage
expect server 1 cert.usage
expect subca 1 cert.usage
expect subca 0 320000 --usage ca
expect selfsigned 1 cert.self-signed

# Tampered: flip the last byte (inside the signature value).
openssl x509 -in good.crt -outform DER -out good.der
size=$(wc -c <good.der)
head -c $((size - 1)) good.der >bad.der
last=$(tail -c 1 good.der | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(((last + 1) % 256)))" >>bad.der
openssl x509 -inform DER -in bad.der -out badsig.crt
expect badsig 1 cert.bad-signature

# A certtool CRL revoking one of them.
tmpl crl.tmpl 'crl_next_update = 30' 'crl_number = 7'
certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.crt \
	--load-certificate revoked.crt --template crl.tmpl --outfile ca.crl 2>/dev/null
expect revoked 1 cert.revoked --crl ca.crl
expect good 0 320300 --crl ca.crl
# A CRL from an unrelated CA says nothing about this chain and is ignored.
certtool --generate-crl --load-ca-privkey other.key --load-ca-certificate other.crt \
	--template crl.tmpl --outfile other.crl 2>/dev/null
expect good 0 320300 --crl other.crl
# An expired CRL cannot vouch for anything.
tmpl old.tmpl 'crl_this_update_date = "2020-01-01 00:00:00 UTC"' \
	'crl_next_update_date = "2020-02-01 00:00:00 UTC"' 'crl_number = 1'
certtool --generate-crl --load-ca-privkey ca.key --load-ca-certificate ca.crt \
	--template old.tmpl --outfile old.crl 2>/dev/null
expect good 1 crl --crl old.crl

# openssl: a CA, an intermediate and a good node, plus an expired node
# made with `openssl ca` (the only way to set past dates in 3.0).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout oca.key \
	-out oca.crt -subj "/CN=openssl root" -days 30 \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	2>/dev/null
cat >ext.cnf <<'CNF'
[node]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:jining.example
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
[wrong]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout oint.key \
	-out oint.csr -subj "/serialNumber=370000/CN=Shandong" 2>/dev/null
openssl x509 -req -in oint.csr -CA oca.crt -CAkey oca.key -CAcreateserial -days 20 \
	-extfile ext.cnf -extensions inter -out oint.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout onode.key \
	-out onode.csr -subj "/serialNumber=370800/CN=Jining" 2>/dev/null
openssl x509 -req -in onode.csr -CA oint.crt -CAkey oint.key -CAcreateserial -days 10 \
	-extfile ext.cnf -extensions node -out onode.crt 2>/dev/null
openssl x509 -req -in onode.csr -CA oint.crt -CAkey oint.key -CAcreateserial -days 10 \
	-extfile ext.cnf -extensions wrong -out owrong.crt 2>/dev/null
cp oca.crt ca.crt
expect onode 0 370800 --chain oint.crt
expect onode 1 cert.unknown-issuer
expect owrong 1 cert.usage --chain oint.crt
mkdir -p db && : >db/index.txt && echo 1000 >db/serial
cat >ca.cnf <<'CNF'
[ca]
default_ca = d
[d]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
serialNumber = optional
CNF
openssl ca -batch -config ca.cnf -cert oint.crt -keyfile oint.key -in onode.csr \
	-startdate 20200101000000Z -enddate 20210101000000Z -extfile ext.cnf -extensions node \
	-out oexpired.crt 2>/dev/null
expect oexpired 1 cert.expired --chain oint.crt
# the intermediate revoked by the openssl root's CRL
openssl ca -batch -config ca.cnf -cert oca.crt -keyfile oca.key -revoke oint.crt 2>/dev/null
openssl ca -batch -config ca.cnf -cert oca.crt -keyfile oca.key -gencrl -crldays 5 \
	-out oca.crl 2>/dev/null
expect onode 1 cert.revoked --chain oint.crt --crl oca.crl
echo "foreign certificates judged correctly"
