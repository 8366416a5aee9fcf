#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_onboard.sh - live onboarding and revocation (PROTOCOL.md 7,
# 9.1, 9.5; docs/ADMIN.md).  A running dev federation (hubs 320000,
# 370000, 410000; cities 320300, 371300, 411400 --private behind 410000)
# gets a new city, Huai'an 320800:
#   PKI: `tongban node init`, `tongban ca issue` from DIR/ca-320000;
#   registry: `tongban registry add` + two `registry sign` with province CA
#   keys, copied to each hub's registry.json and the hubs sent SIGHUP.
# Within 5 s of the publication every other node (hubs and cities, the
# private one too) has delivered a control.ping to 320800 (receipt from
# 320800), and another province's city gets its answer (control.pong).
# Then 320800 is set `revoked` the same way: within 5 s every node refuses
# to send to it (route.none) and refuses its DTLS handshake
# (coap-client-openssl with its certificate gets no answer).
# Prints both propagation times.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
LIMIT_MS=5000
NL_MEMBERS=320000,370000,410000,320300,371300,411400
F="$W/fed"
"$TB" dev-federation --dir "$F" --members "$NL_MEMBERS" --base-port "$NL_BASE" \
	--private 411400 >"$W/devfed.out" 2>&1 || { cat "$W/devfed.out" >&2; nl_fail "dev-federation"; }
OLD=${NL_MEMBERS//,/ }
HUBS="320000 370000 410000"
for m in $OLD; do nl_start "$m"; done
ms() { date +%s%3N; }

# ---- PKI and registry for 320800 ----
NEW=320800
NL_MEMBERS="$NL_MEMBERS,$NEW"
NEWP=$(nl_port $NEW)
out=$("$TB" node init --dir "$F/$NEW" --id $NEW --name "Huai'an" --endpoint "coaps://127.0.0.1:$NEWP" 2>&1) ||
	nl_fail "node init" "exit 0" "$out"
out=$("$TB" ca issue --dir "$F/ca-320000" --csr "$F/$NEW/node.csr" --out "$F/$NEW/node.crt" 2>&1) ||
	nl_fail "ca issue" "exit 0" "$out"
cat "$F/$NEW/node.crt" "$F/ca-320000/ca.crt" >"$F/$NEW/node-chain.pem"
cp "$F/registry.json" "$W/reg1.json"
out=$("$TB" registry add "$W/reg1.json" --cert "$F/$NEW/node-chain.pem" --trust "$F/trust.json" --role city --parent 320000 \
	--endpoint "coaps://127.0.0.1:$NEWP" --service hukou.transfer=3208 2>&1) ||
	nl_fail "registry add" "exit 0" "$out"
for ca in 320000 410000; do
	out=$("$TB" registry sign "$W/reg1.json" --key "$F/ca-$ca/ca.key" --cert "$F/ca-$ca/ca.crt" 2>&1) ||
		nl_fail "registry sign with ca-$ca" "exit 0" "$out"
done
out=$("$TB" registry verify "$W/reg1.json" --trust "$F/trust.json" 2>&1) ||
	nl_fail "the new registry verifies" "exit 0" "$out"
# its node: the configuration of a city of the same province, re-pointed
sed -e "s/^member_id = .*/member_id = $NEW/" -e "s/^listen = .*/listen = 127.0.0.1:$NEWP/" \
	-e "s/^api = .*/api = 127.0.0.1:$(nl_api_port $NEW)/" "$F/320300/node.conf" >"$F/$NEW/node.conf"
cp "$W/reg1.json" "$F/$NEW/registry.json"
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$F/$NEW/api.token")
nl_start $NEW

# publish REGISTRY: copy to each hub, SIGHUP it
publish() {
	local h
	for h in $HUBS; do cp "$1" "$F/$h/registry.json" || nl_fail "copy to $h"; done
	for h in $HUBS; do kill -HUP "$(nl_pid "$h")" || nl_fail "SIGHUP $h"; done
}

# ---- onboarding ----
declare -A PING
t0=$(ms)
publish "$W/reg1.json"
pending="$OLD"
while [ -n "$pending" ]; do
	[ $(($(ms) - t0)) -le $LIMIT_MS ] || nl_fail "320800 reachable from every node within $LIMIT_MS ms" \
		"all delivered" "pending: $pending"
	next=
	for m in $pending; do
		if [ -z "${PING[$m]:-}" ]; then
			# refused (route.none) until m holds the new registry
			PING[$m]=$("$TB" send --node "$(nl_conf "$m")" --to $NEW --type control.ping --body /dev/stdin <<<'{}' 2>/dev/null) ||
				PING[$m]=
			next="$next $m"
		elif ! nl_delivered "$m" "${PING[$m]}"; then
			next="$next $m"
		fi
	done
	pending=${next# }
	[ -z "$pending" ] || sleep 0.05
done
t_on=$(($(ms) - t0))
nl_ok
for m in $OLD; do
	cmp -s "$F/$m/registry.json" "$W/reg1.json" || nl_fail "$m holds the published registry"
	nl_receipt "$m" "${PING[$m]}" >"$W/receipt.json"
	out=$("$TB" msg open --pub "$F/$NEW/node.crt" "$W/receipt.json" 2>&1) ||
		nl_fail "receipt of the ping $m -> $NEW verifies with $NEW's certificate" "exit 0" "$out"
done
echo "# onboarding: every node delivered to $NEW after $t_on ms (limit $LIMIT_MS ms)"
# another province's city gets the answer of the new member's responder
pong() { nl_inbox 371300 | grep '"type":"control.pong"' | grep -q "\"corr\":\"${PING[371300]}\""; }
nl_wait 10 "control.pong from $NEW at 371300" pong
# and the new member reaches a private city through its hub
id=$(nl_send $NEW 411400 control.ping) || exit 1
nl_wait 10 "ping $NEW -> 411400 (via 410000) delivered" nl_delivered $NEW "$id"
nl_has "receipt of $NEW -> 411400 through the hub" '"relay":{"path":["410000"]}' "$(nl_receipt $NEW "$id")"

# ---- revocation ----
nl_have_coap_client || echo "# coap-client-openssl not installed: handshake refusals not checked"
cp "$W/reg1.json" "$W/reg2.json"
out=$("$TB" registry set "$W/reg2.json" --member $NEW --status revoked 2>&1) || nl_fail "registry set" "exit 0" "$out"
for ca in 370000 410000; do
	out=$("$TB" registry sign "$W/reg2.json" --key "$F/ca-$ca/ca.key" --cert "$F/ca-$ca/ca.crt" 2>&1) ||
		nl_fail "registry sign with ca-$ca" "exit 0" "$out"
done
# handshake of the revoked member with m: true when refused (no answer)
hs_refused() {
	nl_coap "$F/$NEW" get /fed/status "$1" "" -B 1
	[ -z "$NL_CODE" ]
}
# before: its handshake is accepted everywhere
if nl_have_coap_client; then
	for m in $OLD; do
		! hs_refused "$m" || nl_fail "$NEW's handshake with $m before the revocation" "2.05" "no answer"
	done
fi
declare -A ROUTE HS
t0=$(ms)
publish "$W/reg2.json"
pending="$OLD"
while [ -n "$pending" ]; do
	[ $(($(ms) - t0)) -le $LIMIT_MS ] || nl_fail "$NEW refused everywhere within $LIMIT_MS ms" \
		"route.none and no handshake" "pending: $pending"
	next=
	for m in $pending; do
		if [ -z "${ROUTE[$m]:-}" ]; then
			out=$("$TB" send --node "$(nl_conf "$m")" --to $NEW --type control.ping --body /dev/stdin <<<'{}' 2>&1) &&
				{ next="$next $m"; continue; }
			case $out in *route.none*) ROUTE[$m]=$(($(ms) - t0)) ;; *) nl_fail "send $m -> revoked $NEW" "route.none" "$out" ;; esac
		fi
		if nl_have_coap_client && [ -z "${HS[$m]:-}" ]; then
			hs_refused "$m" || { next="$next $m"; continue; }
			HS[$m]=$(($(ms) - t0))
		fi
	done
	pending=${next# }
	[ -z "$pending" ] || sleep 0.05
done
t_rev=$(($(ms) - t0))
nl_ok
for m in $OLD; do
	cmp -s "$F/$m/registry.json" "$W/reg2.json" || nl_fail "$m holds the revocation registry"
	echo "# revocation at $m: route.none after ${ROUTE[$m]} ms${HS[$m]:+, handshake refused after ${HS[$m]} ms}"
done
echo "# revocation: refused everywhere after $t_rev ms (limit $LIMIT_MS ms)"
nl_done
