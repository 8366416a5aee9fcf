#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The Huaihai registry end to end with real certificates: four province CAs
# as registry authorities (2 of 4), ten cities and four hubs as members.
# Checks each acceptance point of the registry with exit codes and reason
# tokens: verifies with 2 signatures; fails with 1; fails after any edit
# of a byte; fails when not newer than --previous; fails when expired;
# routes and answers policy questions.
set -eu

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
TB="$TB_BUILDDIR/tongban"
DATA="$TB_SRCDIR/interop/huaihai.json"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT INT TERM
cd "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }
NOW=1767225600 # 2026-01-01T00:00:00Z; every command gets --now where time matters

# expect CODE REASON CMD...: CMD exits CODE and its stderr names REASON
expect() {
	want=$1 reason=$2
	shift 2
	set +e
	"$@" >out 2>err
	got=$?
	set -e
	[ "$got" -eq "$want" ] || { cat err >&2; fail "exit $got, wanted $want: $*"; }
	[ -z "$reason" ] || grep -q -- "$reason" err || { cat err >&2; fail "no '$reason': $*"; }
}

"$TB" ca init --dir root --name "Huaihai Federation Root" >/dev/null || fail "root CA"
for hub in 320000:Jiangsu 370000:Shandong 340000:Anhui 410000:Henan; do
	id=${hub%%:*} name=${hub#*:}
	"$TB" ca init --dir "ca-$id" --name "$name Province CA" --id "$id" --parent root \
		>/dev/null || fail "province CA $id"
	"$TB" node init --dir "node-$id" --id "$id" --name "$name" --org huaihai \
		--endpoint "coaps://hub-$id.huaihai.example:5684" >/dev/null || fail "hub $id"
	"$TB" ca issue --dir "ca-$id" --csr "node-$id/node.csr" --out "$id.crt" >/dev/null ||
		fail "issue hub $id"
done

"$TB" trust new --root root/ca.crt --authority ca-320000/ca.crt --authority ca-370000/ca.crt \
	--authority ca-340000/ca.crt --authority ca-410000/ca.crt --threshold 2 \
	--federation huaihai --out trust.json >/dev/null || fail "trust new"
expect 1 reg.duplicate-signer "$TB" trust new --root root/ca.crt --authority ca-320000/ca.crt \
	--authority ca-320000/ca.crt --threshold 1 --federation huaihai --out t2.json
expect 2 "" "$TB" trust new --root root/ca.crt --authority ca-320000/ca.crt --threshold 2 \
	--federation huaihai --out t3.json

"$TB" registry new --federation huaihai --out reg.json --valid-days 30 --now $NOW >/dev/null ||
	fail "registry new"
for id in 320000 370000 340000 410000; do
	"$TB" registry add reg.json --cert "$id.crt" --role hub --trust trust.json --chain "ca-$id/ca.crt" \
		--endpoint "coaps://hub-$id.huaihai.example:5684" \
		--service "medical.offsite-filing=${id%0000}" >/dev/null || fail "add hub $id"
done
# cities: id hub English-name, one per line of the JSON
sed -n 's/.*"id": *"\([0-9]*\)", *"name": *"[^"]*", *"name_en": *"\([^"]*\)", *"hub": *"\([0-9]*\)".*/\1 \3 \2/p' \
	"$DATA" >cities
[ "$(wc -l <cities)" -eq 10 ] || fail "expected 10 cities in $DATA"
port=5701
while read -r id hub name; do
	"$TB" node init --dir "node-$id" --id "$id" --name "$name" --org huaihai \
		--endpoint "coaps://127.0.0.1:$port" >/dev/null || fail "node init $id"
	"$TB" ca issue --dir "ca-$hub" --csr "node-$id/node.csr" --out "$id.crt" >/dev/null ||
		fail "issue $id"
	p4=$(echo "$id" | cut -c1-4)
	if [ "$id" = 341300 ]; then
		# Suzhou (Anhui) has no endpoint of its own: reached through its hub
		"$TB" registry add reg.json --cert "$id.crt" --role city --parent "$hub" \
			--trust trust.json --chain "ca-$hub/ca.crt" \
			--service "hukou.transfer=$p4" --service "pension.transfer=$p4" \
			>/dev/null || fail "add $id"
	else
		"$TB" registry add reg.json --cert "$id.crt" --role city --parent "$hub" \
			--trust trust.json --chain "ca-$hub/ca.crt" \
			--endpoint "coaps://127.0.0.1:$port" \
			--service "hukou.transfer=$p4" --service "pension.transfer=$p4" \
			>/dev/null || fail "add $id"
	fi
	port=$((port + 1))
done <cities
expect 1 reg.duplicate-member "$TB" registry add reg.json --cert 320300.crt --role city \
	--trust trust.json --chain ca-320000/ca.crt \
	--parent 320000 --endpoint coaps://127.0.0.1:1
"$TB" node init --dir node-321100 --id 321100 --name Zhenjiang --org huaihai \
	--endpoint coaps://127.0.0.1:1 >/dev/null
"$TB" ca issue --dir ca-320000 --csr node-321100/node.csr --out 321100.crt >/dev/null
expect 1 reg.reference "$TB" registry add reg.json --cert 321100.crt --role city \
	--ca root/ca.crt --chain ca-320000/ca.crt --parent 999900 --endpoint coaps://127.0.0.1:1
expect 1 reg.reference "$TB" registry add reg.json --cert 321100.crt --role city \
	--ca root/ca.crt --chain ca-320000/ca.crt

"$TB" registry policy reg.json --default deny \
	--rule 'effect=deny;services=*;ids=371700' \
	--rule 'effect=allow;services=*;roles=hub' \
	--rule 'effect=allow;services=hukou.transfer,pension.transfer;roles=city;regions=32,37,34,41' \
	>/dev/null || fail "policy"

# unsigned, then 1 of 2, then 2 of 2
expect 1 "reg.threshold" "$TB" registry verify reg.json --trust trust.json --now $NOW
"$TB" registry sign reg.json --key ca-320000/ca.key --cert ca-320000/ca.crt >/dev/null ||
	fail "sign 1"
expect 1 "reg.threshold.*1 of 2" "$TB" registry verify reg.json --trust trust.json --now $NOW
expect 1 "key" "$TB" registry sign reg.json --key ca-370000/ca.key --cert ca-320000/ca.crt
"$TB" registry sign reg.json --key ca-370000/ca.key --cert ca-370000/ca.crt >/dev/null ||
	fail "sign 2"
expect 0 "" "$TB" registry verify reg.json --trust trust.json --now $NOW
grep -q "^ok serial [0-9]*, 14 members" out || fail "verify output: $(cat out)"
"$TB" registry show reg.json >show.txt || fail "show"
grep -q "^members 14" show.txt || fail "show members"
grep -q "^signatures 2" show.txt || fail "show signatures"

# an authority outside the trust anchor
"$TB" ca init --dir rogue --name "Rogue CA" >/dev/null
cp reg.json rogue.json
"$TB" registry sign rogue.json --key rogue/ca.key --cert rogue/ca.crt >/dev/null
expect 1 reg.unknown-signer "$TB" registry verify rogue.json --trust trust.json --now $NOW

# a duplicated signature object
sed 's/"sigs":\[\({[^}]*}\)/"sigs":[\1,\1/' reg.json >dupsig.json
expect 1 reg.duplicate-signer "$TB" registry verify dupsig.json --trust trust.json --now $NOW

# any byte changed: every 37th byte of the document, and a few chosen ones
size=$(wc -c <reg.json)
i=1
while [ "$i" -lt "$size" ]; do
	od -An -tu1 -j $((i - 1)) -N1 reg.json | tr -d ' \n' >byte
	b=$(cat byte)
	if [ "$b" -ne 10 ]; then
		nb=$(((b ^ 1) & 127))
		[ "$nb" -ge 32 ] || nb=$((nb + 64))
		head -c $((i - 1)) reg.json >t.json
		printf "\\$(printf %03o "$nb")" >>t.json
		tail -c +$((i + 1)) reg.json >>t.json
		set +e
		"$TB" registry verify t.json --trust trust.json --now $NOW >/dev/null 2>&1
		rc=$?
		set -e
		[ "$rc" -eq 1 ] || fail "byte $i ($b -> $nb) changed: exit $rc"
	fi
	i=$((i + 37))
done
sed 's/"name":"Xuzhou"/"name":"Xuzhoa"/' reg.json >t.json
cmp -s t.json reg.json && fail "name not found to tamper with"
expect 1 reg.bad-signature "$TB" registry verify t.json --trust trust.json --now $NOW
sed 's/"status":"suspended"/"status":"active"/; s/"serial":\([0-9]*\)/"serial":9\1/' reg.json >t.json
expect 1 reg.bad-signature "$TB" registry verify t.json --trust trust.json --now $NOW

# signed bytes are the only truth: a member named "name\u0000evil" is not
# "name"; once verify said "ok" and a node served the unsigned content
sed 's/"name":"Xuzhou"/"name":"Xuzhou","name\\u0000evil":"unsigned"/' reg.json >t.json
cmp -s t.json reg.json && fail "name not found for the NUL member"
expect 1 field.unknown "$TB" registry verify t.json --trust trust.json --now $NOW
sed 's/"threshold":/"threshold\\u0000":1,"threshold":/' trust.json >t-trust.json
cmp -s t-trust.json trust.json && fail "threshold not found for the NUL member"
expect 1 field.unknown "$TB" registry verify reg.json --trust t-trust.json --now $NOW

# validity window
expect 1 reg.expired "$TB" registry verify reg.json --trust trust.json --now $((NOW + 31 * 86400))
expect 1 reg.not-yet-valid "$TB" registry verify reg.json --trust trust.json --now $((NOW - 10))

# rollback: equal and older serials refused, newer accepted
expect 1 reg.serial-not-newer "$TB" registry verify reg.json --trust trust.json --previous reg.json \
	--now $NOW
cp reg.json old.json
"$TB" registry set reg.json --member 371700 --status suspended >/dev/null || fail "suspend"
grep -q '"sigs":\[\]' reg.json || fail "edit must clear signatures"
"$TB" registry sign reg.json --key ca-340000/ca.key --cert ca-340000/ca.crt >/dev/null
"$TB" registry sign reg.json --key ca-410000/ca.key --cert ca-410000/ca.crt >/dev/null
expect 0 "" "$TB" registry verify reg.json --trust trust.json --previous old.json --now $NOW
expect 1 reg.serial-not-newer "$TB" registry verify old.json --trust trust.json \
	--previous reg.json --now $NOW

# malformed and hostile
printf '{"v":1,' >bad.json
expect 1 json.syntax "$TB" registry verify bad.json --trust trust.json --now $NOW
awk 'BEGIN { s = "["; for (i = 0; i < 40; i++) s = s "["; print s }' >deep.json
expect 1 json.depth "$TB" registry verify deep.json --trust trust.json --now $NOW
awk 'BEGIN { printf "{\"v\":1,\"federation\":\"huaihai\",\"serial\":1,\"issued\":0,\"valid_until\":9,\"members\":[{\"id\":\"320300\",\"name\":\""; for (i = 0; i < 1048576; i++) printf "x"; print "\"}],\"revoked_keys\":[],\"policy\":{\"default\":\"deny\",\"rules\":[]}}" }' >big.json
expect 1 reg.limit "$TB" registry verify big.json --trust trust.json --now $NOW

# routing
"$TB" route resolve --registry reg.json --service hukou.transfer --region 320311 \
	--trust trust.json --now $NOW >out || fail "route 320311"
[ "$(head -1 out)" = 320300 ] || fail "route 320311: $(cat out)"
grep -q "^path 320300$" out || fail "path 320311"
"$TB" route resolve --registry reg.json --service hukou.transfer --region 341302 >out ||
	fail "route 341302"
[ "$(head -1 out)" = 341300 ] || fail "route 341302: $(cat out)"
grep -q "^path 340000 341300$" out || fail "path via hub: $(cat out)"
grep -q "^endpoint coaps://hub-340000" out || fail "endpoint via hub: $(cat out)"
"$TB" route resolve --registry reg.json --service medical.offsite-filing --region 370811 >out ||
	fail "route province"
[ "$(head -1 out)" = 370000 ] || fail "province service: $(cat out)"
expect 1 "no route" "$TB" route resolve --registry reg.json --service hukou.transfer \
	--region 371702 # Heze is suspended
expect 1 "no route" "$TB" route resolve --registry reg.json --service hukou.transfer --region 110101
expect 2 "" "$TB" route resolve --registry reg.json --service hukou.transfer --region 3203x1

# access policy
expect 0 "" "$TB" policy check --registry reg.json --from 320300 --service hukou.transfer
grep -q "^allow rule 2" out || fail "policy city: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 320300 --service driving-license.renew
grep -q "^deny default" out || fail "policy default: $(cat out)"
expect 0 "" "$TB" policy check --registry reg.json --from 370000 --service driving-license.renew
grep -q "^allow rule 1" out || fail "policy hub: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 371700 --service hukou.transfer
grep -q "^deny member is suspended" out || fail "policy suspended: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 999900 --service hukou.transfer
grep -q "^deny not a member" out || fail "policy stranger: $(cat out)"

# --json: the same answers as one JSON object (issue 19)
ep=$("$TB" route resolve --registry reg.json --service hukou.transfer --region 341302 |
	sed -n 's/^endpoint //p')
expect 0 "" "$TB" route resolve --registry reg.json --service hukou.transfer --region 341302 \
	--trust trust.json --now $NOW --json
[ "$(cat out)" = '{"service":"hukou.transfer","region":"341302","member":"341300","endpoint":"'"$ep"'","path":["340000","341300"]}' ] ||
	fail "route --json: $(cat out)"
expect 1 "no route" "$TB" route resolve --registry reg.json --service hukou.transfer \
	--region 110101 --json
[ "$(cat out)" = '{"service":"hukou.transfer","region":"110101","member":null}' ] ||
	fail "route --json, no route: $(cat out)"
expect 0 "" "$TB" policy check --registry reg.json --from 320300 --service hukou.transfer --json
grep -q '^{"from":"320300","service":"hukou.transfer","allow":true,"by":"rule","rule":2,"rule_text":"[^"]*"}$' out ||
	fail "policy --json, rule: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 320300 --service driving-license.renew --json
[ "$(cat out)" = '{"from":"320300","service":"driving-license.renew","allow":false,"by":"default"}' ] ||
	fail "policy --json, default: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 371700 --service hukou.transfer --json
[ "$(cat out)" = '{"from":"371700","service":"hukou.transfer","allow":false,"by":"status","status":"suspended"}' ] ||
	fail "policy --json, suspended: $(cat out)"
expect 1 "" "$TB" policy check --registry reg.json --from 999900 --service hukou.transfer --json
[ "$(cat out)" = '{"from":"999900","service":"hukou.transfer","allow":false,"by":"not-member"}' ] ||
	fail "policy --json, stranger: $(cat out)"

for c in trust registry route policy; do
	"$TB" "$c" --help >/dev/null || fail "$c --help"
done
echo "fed_huaihai: ok"
