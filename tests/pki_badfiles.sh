#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Garbage, empty, truncated, wrong-type, missing and directory paths as
# every file argument of `tongban ca|node|cert`: each gives one line on
# stderr and exit 1 (refused) or 3 (I/O), never a crash or a success.
set -eu

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
TB="$TB_BUILDDIR/tongban"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$TB" ca init --dir root --name Root >/dev/null
"$TB" ca init --dir prov --name Prov --id 320000 --parent root >/dev/null
"$TB" node init --dir n --id 320300 --name Xuzhou --endpoint coaps://x.example:5684 >/dev/null
"$TB" ca issue --dir prov --csr n/node.csr --out good.crt >/dev/null
"$TB" ca crl --dir prov --out good.crl >/dev/null
echo secret >pw
"$TB" ca init --dir enc --name Enc --id 320000 --parent root --pass-file pw >/dev/null

# The bad inputs.
head -c 3000 /dev/urandom >random.bin
: >empty
head -c 200 good.crt >trunc.crt
head -c 200 n/node.csr >trunc.csr
head -c 150 good.crl >trunc.crl
printf -- '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' >badb64.crt
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' >badb64.csr
printf -- '-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n' >badb64.crl
mkdir adir
BAD="random.bin empty trunc.crt trunc.csr trunc.crl badb64.crt badb64.csr badb64.crl adir missing
n/node.key n/node.csr good.crl good.crt"

n=0
# try CONTEXT EXPECT-OK-FILE-TYPE CMD...: runs CMD with @ replaced by each bad file
try() {
	skip=$1
	shift
	for f in $BAD; do
		[ "$f" = "$skip" ] && continue
		args=""
		for a in "$@"; do
			[ "$a" = @ ] && a=$f
			args="$args $a"
		done
		rm -f out.crt out.crl
		set +e
		# shellcheck disable=SC2086
		"$TB" $args >out 2>err
		rc=$?
		set -e
		n=$((n + 1))
		case $rc in
		1 | 3) ;;
		*) fail "exit $rc for $args: $(cat err)" ;;
		esac
		[ "$(wc -l <err)" -eq 1 ] || fail "not one line for $args: $(cat err)"
		[ -s out ] && fail "output on failure for $args: $(cat out)"
		:
	done
}

try good.crt cert show @
try good.crt cert verify --ca root/ca.crt --chain prov/ca.crt @
try - cert verify --ca @ --chain prov/ca.crt good.crt
try - cert verify --ca root/ca.crt --chain @ good.crt
try good.crl cert verify --ca root/ca.crt --chain prov/ca.crt --crl @ good.crt
try n/node.csr ca issue --dir prov --csr @ --out out.crt
try good.crt ca revoke --dir prov --cert @
try - ca issue --dir enc --csr n/node.csr --out out.crt --pass-file @

# A CA directory whose files are garbage.
for f in random.bin empty trunc.crt good.crl n/node.csr; do
	rm -rf broken && mkdir broken && cp prov/index.txt prov/crlnumber broken/
	cp "$f" broken/ca.crt && cp prov/ca.key broken/ca.key
	try - ca issue --dir broken --csr n/node.csr --out out.crt
	cp prov/ca.crt broken/ca.crt && cp "$f" broken/ca.key
	try - ca crl --dir broken --out out.crl
	try - ca init --dir child --name C --parent broken
done
# ca.key of another CA, and a corrupt index
rm -rf broken && cp -r prov broken && cp root/ca.key broken/ca.key
try - ca issue --dir broken --csr n/node.csr --out out.crt
rm -rf broken && cp -r prov broken && printf 'X\tgarbage\n' >broken/index.txt
try - ca crl --dir broken --out out.crl
# malformed member ids and endpoints are usage-level refusals
for id in 012345 32030 3203000 32030a ""; do
	set +e
	"$TB" node init --dir "id$id" --id "$id" --name X --endpoint coaps://x:1 >/dev/null 2>err
	rc=$?
	set -e
	[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "node init accepted id '$id' ($rc)"
	[ ! -e "id$id/node.key" ] || fail "stray key for id '$id'"
done
for ep in http://x:1 coaps://x coaps://x:0 coaps://x:70000 'coaps://[::1:1' 'coaps://a b:1' coaps://:5684; do
	set +e
	"$TB" node init --dir ep --id 320300 --name X --endpoint "$ep" >/dev/null 2>err
	rc=$?
	set -e
	[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "node init accepted endpoint '$ep' ($rc)"
done
echo "$n bad-file cases refused cleanly"
