#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh BUILDDIR [--keep] - (run by `tongban demo`) the Huaihai region on 127.0.0.1: four
# province hubs and ten cities as real tongban-node processes, then
# cross-province messages with receipts, a registry update published at
# the hubs, and a revocation.  Exits non-zero if any step fails.
set -u
B=$(cd "${1:-build}" && pwd)
KEEP=${2:-}
T="$B/tongban"
BASE=${TB_DEMO_PORT:-24700}
# TB_DEMO_ALG=sm2 (tongban demo --alg sm2): every message, receipt and
# registry signature in SM2/SM3; DTLS stays P-256
ALG=${TB_DEMO_ALG:-p256}
if [ -n "${TB_DEMO_DIR:-}" ]; then
	W=$TB_DEMO_DIR
	[ ! -e "$W/fed" ] || { echo "demo: $W/fed exists" >&2; exit 2; }
	mkdir -p "$W" || exit 3
else
	W=$(mktemp -d /tmp/tongban-demo.XXXXXX)
fi
PIDS=()
HUBS="320000 370000 340000 410000"
CITIES="320300 320700 321300 370400 370800 371300 371700 340600 341300 411400"

stop() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "$KEEP" ] || rm -rf "$W"
}
trap stop EXIT
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
ms() { date +%s%3N; }
# sigpub ID: the file with ID's message-signing public key
sigpub() { if [ "$ALG" = sm2 ]; then echo "$W/fed/$1/sign.pub"; else echo "$W/fed/$1/node.crt"; fi; }
# authsign REG PROVINCE: the province's registry authority signs REG
authsign() {
	if [ "$ALG" = sm2 ]; then
		"$T" registry sign "$1" --key "$W/fed/ca-$2/authority.key" --cert "$W/fed/ca-$2/authority.pub"
	else
		"$T" registry sign "$1" --key "$W/fed/ca-$2/ca.key" --cert "$W/fed/ca-$2/ca.crt"
	fi > /dev/null || die "registry sign by $2"
}

name() {
	case $1 in
	320000) echo "Jiangsu hub";; 370000) echo "Shandong hub";; 340000) echo "Anhui hub";;
	410000) echo "Henan hub";; 320300) echo "Xuzhou";; 320700) echo "Lianyungang";;
	321300) echo "Suqian";; 370400) echo "Zaozhuang";; 370800) echo "Jining";;
	371300) echo "Linyi";; 371700) echo "Heze";; 340600) echo "Huaibei";;
	341300) echo "Suzhou (Anhui)";; 411400) echo "Shangqiu";; 320800) echo "Huai'an";;
	*) echo "$1";;
	esac
}

# api_port ID: the member's local API port (dev-federation: base+1000+i)
api_port() { sed -n 's/^api = 127.0.0.1://p' "$W/fed/$1/node.conf"; }

wait_healthy() {
	local id=$1 port deadline=$(( $(date +%s) + 15 ))
	port=$(api_port "$id")
	while :; do
		if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
			printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
			if grep -q '"ok"' <&3; then exec 3>&-; return 0; fi
			exec 3>&-
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "node $id did not start (see $W/$id.log)"
		sleep 0.1
	done
}

# send FROM TO TYPE SERVICE BODY: prints the id
send() {
	printf '%s' "$5" > "$W/body.json"
	"$T" send --node "$W/fed/$1/node.conf" --to "$2" --type "$3" --service "$4" \
		--body "$W/body.json"
}

# delivered FROM ID: waits (bounded) until delivered; prints the receipt
delivered() {
	local deadline=$(( $(date +%s) + 20 )) st
	while :; do
		st=$("$T" status --node "$W/fed/$1/node.conf" "$2") || die "status of $2"
		case $st in
		*'"state":"delivered"'*) printf '%s' "$st"; return 0;;
		*'"state":"failed"'*) die "message $2 failed: $st";;
		esac
		[ "$(date +%s)" -lt "$deadline" ] || die "message $2 not delivered: $st"
		sleep 0.05
	done
}

# exchange FROM TO TYPE SERVICE BODY: send, wait, verify the receipt
exchange() {
	local t0 t1 id st
	t0=$(ms)
	id=$(send "$@") || die "send from $1"
	LAST_ID=$id
	st=$(delivered "$1" "$id")
	t1=$(ms)
	printf '   %s (%s) -> %s (%s): %s %s\n' "$(name "$1")" "$1" "$(name "$2")" "$2" "$3" "$id"
	printf '   route: %s\n' "$("$T" route resolve --registry "$W/fed/$1/registry.json" --service "$4" --region "$2" | tr '\n' ' ')"
	local path
	path=$(printf '%s' "$st" | sed -n 's/.*"relay":{"path":\[\([^]]*\)\]}.*/\1/p' | tr -d '"')
	[ -z "$path" ] || printf '   relayed: the receipt came back through hub %s\n' "$path"
	printf '%s' "$st" | sed 's/.*"receipt"://; s/}$//' > "$W/receipt.json"
	"$T" msg open --pub "$(sigpub "$2")" "$W/receipt.json" > /dev/null ||
		die "receipt of $id does not verify with $(name "$2")'s key"
	grep -q "\"alg\":\"$ALG\"" "$W/receipt.json" || die "receipt of $id not signed in $ALG"
	printf '   receipt: signed by %s (%s), verified; digest %s; %d ms submit-to-receipt\n' \
		"$2" "$ALG" "$(sed 's/.*"digest":"\([0-9a-f]*\)".*/\1/' "$W/receipt.json" | cut -c1-16)..." $((t1 - t0))
	printf '   %s\047s reference responder answers it from its records\n' "$(name "$2")"
}

# answer AT REQID TYPE: waits (bounded) for the answer of TYPE to request
# REQID in AT's inbox; prints its body and acknowledges it
answer() {
	local deadline=$(( $(date +%s) + 20 )) inbox line
	while :; do
		inbox=$("$T" inbox --node "$W/fed/$1/node.conf") || die "inbox of $1"
		line=$(printf '%s' "$inbox" | tr '{' '\n' | grep -n "\"type\":\"$3\"" | head -1)
		if printf '%s' "$inbox" | grep -q "\"corr\":\"$2\",\"digest\"" &&
			printf '%s' "$inbox" | grep -q "\"type\":\"$3\""; then
			break
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "no $3 answering $2 at $1"
		sleep 0.05
	done
	# the answer's id and body: the inbox lists id, from, type, ..., envelope
	local id
	id=$(printf '%s' "$inbox" | sed 's/},{"seq"/}\n{"seq"/g' | grep "\"type\":\"$3\"" | grep "\"corr\":\"$2\"" |
		head -1 | sed 's/.*"id":"\([0-9a-f]\{32\}\)","from".*/\1/')
	printf '%s' "$inbox" | sed 's/},{"seq"/}\n{"seq"/g' | grep "\"id\":\"$id\"" | head -1 |
		sed 's/.*"envelope":{"body":\(.*\),"corr":.*/\1/' > "$W/answer.json"
	"$T" inbox --node "$W/fed/$1/node.conf" --ack "$id" > /dev/null || die "ack $id"
}

publish() { # publish REGISTRY: copy to every hub and SIGHUP it
	for h in $HUBS; do cp "$1" "$W/fed/$h/registry.json"; done
	for i in "${!HUBORDER[@]}"; do kill -HUP "${HUBPIDS[$i]}"; done
}

serial_of() { # serial_of ID: the registry serial a node's file holds
	"$T" registry show "$W/fed/$1/registry.json" 2>/dev/null | sed -n 's/^serial *:\? *\([0-9]*\).*/\1/p' | head -1
}

step "1. The Huaihai federation: root CA, 4 province CAs, 14 members, a registry signed 2-of-4"
ALL="$HUBS $CITIES"
# Shangqiu and Suqian are reachable only through their province hubs
"$T" dev-federation --dir "$W/fed" --members "$(echo $ALL | tr ' ' ',')" --base-port "$BASE" \
	--private 411400,321300 --alg "$ALG" || die "dev-federation"
"$T" registry verify "$W/fed/registry.json" --trust "$W/fed/trust.json" || die "registry verify"

step "2. Starting 14 tongban-node processes (DTLS on 127.0.0.1:$BASE-$((BASE + 13)))"
HUBORDER=()
HUBPIDS=()
for id in $ALL; do
	( cd "$W/fed/$id" && exec "$B/tongban-node" -c node.conf ) > "$W/$id.log" 2>&1 &
	PIDS+=($!)
	case " $HUBS " in *" $id "*) HUBORDER+=("$id"); HUBPIDS+=($!);; esac
done
for id in $ALL; do wait_healthy "$id"; done
printf '   all 14 nodes healthy\n'

P1=$(sed 's/.*"people":\[{"idhash":"\([0-9a-f]*\)".*/\1/' "$W/fed/fixtures.json")
E1=$(grep -o '"idhash":"[0-9a-f]*","kind":"enterprise"' "$W/fed/fixtures.json" | cut -d'"' -f4)

step "3. Identity check across provinces: Xuzhou asks Linyi to verify a resident"
exchange 320300 371300 identity.verify hukou.transfer \
	"{\"subject\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"purpose\":\"hukou.transfer\"}"
REQ=$LAST_ID
answer 320300 "$REQ" identity.result
printf '   Linyi answered (identity.result): %s\n' "$(cat "$W/answer.json")"
grep -q '"result":"match"' "$W/answer.json" || die "identity not matched"
printf '   (the personal id travelled only as a keyed hash: %s...)\n' "$(cut -c1-16 <<< "$P1")"

step "4. Licence query: Heze asks Suqian (behind the Jiangsu hub) for an enterprise's business licence"
exchange 371700 321300 licence.query business-license.change \
	"{\"holder\":{\"idhash\":\"$E1\"},\"licence\":\"business-license\"}"
REQ=$LAST_ID
answer 371700 "$REQ" licence.present
sed 's/^{"licences":\[\(.*\)\]}$/\1/' "$W/answer.json" > "$W/licence.json"
printf '   Suqian presented licence %s, issuer %s, status %s\n' \
	"$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$W/licence.json")" \
	"$(sed 's/.*"issuer":"\([^"]*\)".*/\1/' "$W/licence.json")" \
	"$(sed 's/.*"status":"\([^"]*\)".*/\1/' "$W/licence.json")"
v=$("$T" licence check --registry "$W/fed/registry.json" "$W/licence.json") ||
	die "the presented licence does not check"
printf '   Heze checked the presented licence (digest, Suqian\047s signature, validity): %s\n' "$v"
LDIG=$(sed 's/.*"digest":"\([0-9a-f]*\)".*/\1/' "$W/licence.json")
LID=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$W/licence.json")
exchange 371700 321300 licence.verify business-license.change \
	"{\"licence_id\":\"$LID\",\"digest\":\"$LDIG\"}"
answer 371700 "$LAST_ID" licence.status
printf '   Suqian confirms (licence.status): %s\n' "$(cat "$W/answer.json")"
grep -q '"status":"valid"' "$W/answer.json" || die "licence not valid"

step "5. A case filed in Suzhou (Anhui) is handled in Shangqiu (Henan), through the Henan hub"
CASE="SZ-$(date +%Y)-$RANDOM"
exchange 341300 411400 case.submit driving-license.renew \
	"{\"case_id\":\"$CASE\",\"service\":\"driving-license.renew\",\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"mode\":\"proxy\",\"materials\":[{\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",\"size\":4096,\"name\":\"photo.jpg\"}]}"
SUB=$LAST_ID
answer 341300 "$SUB" case.accept
printf '   Shangqiu accepted case %s\n' "$CASE"
answer 341300 "$SUB" case.result
printf '   Shangqiu decided (case.result): %s\n' "$(cat "$W/answer.json")"
printf '{"case_id":"%s","outcome":"denied"}' "$CASE" > "$W/body.json"
if out=$("$T" send --node "$W/fed/411400/node.conf" --to 341300 --type case.result \
	--service driving-license.renew --corr "$SUB" --body "$W/body.json" 2>&1); then
	die "a second case.result was accepted"
fi
printf '   a second result is refused: %s\n' "${out#*: }"

step "6. Live onboarding: Huai'an (320800) joins under the Jiangsu hub"
NEWP=$((BASE + 14))
"$T" node init --dir "$W/fed/320800" --id 320800 --name "Huai'an" \
	--endpoint "coaps://127.0.0.1:$NEWP" > /dev/null || die "node init"
"$T" ca issue --dir "$W/fed/ca-320000" --csr "$W/fed/320800/node.csr" \
	--out "$W/fed/320800/node.crt" > /dev/null || die "ca issue"
cat "$W/fed/320800/node.crt" "$W/fed/ca-320000/ca.crt" > "$W/fed/320800/node-chain.pem"
cp "$W/fed/registry.json" "$W/reg1.json"
SIGNARG=()
if [ "$ALG" = sm2 ]; then # an SM2 message-signing key beside the P-256 DTLS key
	"$T" key gen --alg sm2 --out "$W/fed/320800/sign.key" || die "key gen"
	"$T" key pub "$W/fed/320800/sign.key" > "$W/fed/320800/sign.pub" || die "key pub"
	SIGNARG=(--sign-cert "$W/fed/320800/sign.pub")
fi
"$T" registry add "$W/reg1.json" --cert "$W/fed/320800/node-chain.pem" "${SIGNARG[@]}" --trust "$W/fed/trust.json" --role city --parent 320000 \
	--endpoint "coaps://127.0.0.1:$NEWP" --service hukou.transfer=3208 > /dev/null || die "registry add"
authsign "$W/reg1.json" 320000
authsign "$W/reg1.json" 410000
t0=$(ms)
publish "$W/reg1.json"
deadline=$(( $(date +%s) + 10 ))
for id in $CITIES; do
	while ! cmp -s "$W/fed/$id/registry.json" "$W/reg1.json"; do
		[ "$(date +%s)" -lt "$deadline" ] || die "$(name "$id") did not get the new registry"
		sleep 0.02
	done
done
printf '   registry serial 2 signed by Jiangsu and Henan, published at the hubs: all 10 cities hold it after %d ms\n' $(( $(ms) - t0 ))
sed -e "s/^member_id = .*/member_id = 320800/" -e "s/^listen = .*/listen = 127.0.0.1:$NEWP/" \
	-e "s/^api = .*/api = 127.0.0.1:$((NEWP + 1000))/" "$W/fed/320300/node.conf" > "$W/fed/320800/node.conf"
cp "$W/reg1.json" "$W/fed/320800/registry.json"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/fed/320800/api.token"
chmod 600 "$W/fed/320800/api.token" # the node refuses a token others can read
( cd "$W/fed/320800" && exec "$B/tongban-node" -c node.conf ) > "$W/320800.log" 2>&1 &
PIDS+=($!)
wait_healthy 320800
exchange 371300 320800 identity.verify hukou.transfer \
	"{\"subject\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"purpose\":\"hukou.transfer\"}"

step "7. Live registry update: Jining (370800) suspended, published at the four hubs"
cp "$W/reg1.json" "$W/reg2.json"
"$T" registry set "$W/reg2.json" --member 370800 --status suspended > /dev/null || die "registry set"
authsign "$W/reg2.json" 320000
authsign "$W/reg2.json" 370000
t0=$(ms)
publish "$W/reg2.json"
deadline=$(( $(date +%s) + 10 ))
for id in $CITIES; do
	while ! cmp -s "$W/fed/$id/registry.json" "$W/reg2.json"; do
		[ "$(date +%s)" -lt "$deadline" ] || die "$(name "$id") did not get the new registry"
		sleep 0.02
	done
done
printf '   all 10 cities observed their hub and hold serial 3 after %d ms\n' $(( $(ms) - t0 ))
id=$(send 320300 370800 case.submit hukou.transfer '{"note":"to a suspended member"}' 2>&1) &&
	die "a message to a suspended member was accepted: $id"
printf '   Xuzhou -> Jining now refused: %s\n' "$id"

step "8. Revocation: Jining revoked; its next handshake is refused everywhere"
cp "$W/reg2.json" "$W/reg3.json"
"$T" registry set "$W/reg3.json" --member 370800 --status revoked > /dev/null || die "registry set"
authsign "$W/reg3.json" 340000
authsign "$W/reg3.json" 410000
publish "$W/reg3.json"
deadline=$(( $(date +%s) + 10 ))
while ! cmp -s "$W/fed/371300/registry.json" "$W/reg3.json"; do
	[ "$(date +%s)" -lt "$deadline" ] || die "Linyi did not get the revocation"
	sleep 0.02
done
if command -v coap-client-openssl > /dev/null; then
	out=$(timeout 10 coap-client-openssl -c "$W/fed/370800/node.crt" -j "$W/fed/370800/node.key" \
		-R "$W/fed/root.crt" "coaps://127.0.0.1:$((BASE + 9))/fed/status" 2>&1)
	case $out in *'"member"'*) die "revoked Jining still completes a handshake with Linyi";; esac
	printf '   Jining -> Linyi DTLS handshake: refused (%s)\n' "$(grep -o 'alert [a-z ]*' <<< "$out" | head -1)"
fi
grep -q "handshake refused" "$W/371300.log" && printf '   Linyi logged: %s\n' "$(grep "handshake refused" "$W/371300.log" | tail -1 | cut -d' ' -f3-)"

step "9. Each node's audit chain"
for id in 320300 371300 341300 411400; do
	printf '   %-16s %s\n' "$(name "$id"):" "$("$T" audit verify --node "$W/fed/$id/node.conf")" || die "audit $id"
done

printf '\ndemo: all steps passed\n'
if [ -n "$KEEP" ]; then
	trap - EXIT
	printf 'the nodes keep running (pids %s); federation in %s\n' "${PIDS[*]}" "$W"
fi
