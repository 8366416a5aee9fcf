#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_ingest.sh - POST /v1/messages runs on the node's ingest
# thread (node/ingest.c) while the loop keeps delivering:
# 1. four clients submit bulk requests of 50 at the same time, while the
#    earlier ones are being delivered and while the node applies three
#    newer registries on SIGHUP (the thread resolves routes under the
#    registry lock): every request is answered 202 with 50 distinct ids,
#    and the node ends on the newest registry;
# 2. a client sends a bulk request of 100 and closes its connection
#    without reading the answer: the node stays up (no use of the gone
#    request) and the 100 messages, journalled, are still delivered;
# 3. refusals come back through the thread with their reason: malformed
#    JSON, a message without "to", an empty bulk;
# 4. the receiver's inbox then holds every message exactly once (300),
#    no submission is left waiting (tongban_api_pending 0), both audit
#    chains verify, and both nodes exit 0 on SIGTERM.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300
nl_start 320300
nl_start 371300

# bulk N: a JSON array of N case.submit requests to 371300, fresh case ids
bulk() {
	local i sep=""
	printf '['
	for ((i = 0; i < $1; i++)); do
		printf '%s{"type":"case.submit","to":"371300","service":"hukou.transfer","body":{"applicant":{"idhash":"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0","kind":"person"},"case_id":"c%s-%d","materials":[],"mode":"online","service":"hukou.transfer"}}' \
			"$sep" "$2" "$i"
		sep=,
	done
	printf ']'
}
ids_of() { grep -o '[0-9a-f]\{32\}'; }

# newer registries (serials 2 to 9: re-signed 2-of-2 by the province
# CAs) that 320300 applies, on SIGHUP, while the submissions of step 1
# resolve routes against its registry on the ingest thread and their
# receipts are checked against its keys on the answers thread (both
# under n->reg_lock; a race there fails the sanitizer builds)
LAST=9
prev="$F/registry.json"
for s in $(seq 2 $LAST); do
	cp "$prev" "$W/r$s.json"
	"$TB" registry set "$W/r$s.json" --valid-days $((20 + s)) >/dev/null &&
		"$TB" registry sign "$W/r$s.json" --key "$F/ca-320000/ca.key" --cert "$F/ca-320000/ca.crt" >/dev/null &&
		"$TB" registry sign "$W/r$s.json" --key "$F/ca-370000/ca.key" --cert "$F/ca-370000/ca.crt" >/dev/null ||
		nl_fail "preparing registry serial $s"
	prev="$W/r$s.json"
done

# ---- 1. four concurrent bulk submitters ----
subs=()
(
	for s in $(seq 2 $LAST); do
		sleep 0.08
		cp "$W/r$s.json" "$F/320300/registry.json"
		kill -HUP "$(nl_pid 320300)"
	done
) &
subs+=($!)
for c in 1 2 3 4; do
	(
		nl_http 320300 POST /v1/messages "$(bulk 50 "p$c")" >"$W/answer.$c"
		echo "$NL_HTTP_STATUS" >"$W/status.$c"
	) &
	subs+=($!)
done
wait "${subs[@]}" # (not a bare wait: the nodes are children too)
for c in 1 2 3 4; do
	nl_eq "concurrent bulk $c answered" 202 "$(cat "$W/status.$c")"
	nl_eq "concurrent bulk $c: 50 ids" 50 "$(ids_of <"$W/answer.$c" | sort -u | wc -l)"
	ids_of <"$W/answer.$c" >>"$W/ids"
done
nl_eq "200 distinct ids over the four requests" 200 "$(sort -u "$W/ids" | wc -l)"
served_serial() { nl_http 320300 GET /v1/registry | sed -n 's/.*"serial":\([0-9]*\).*/\1/p'; }
nl_wait 10 "320300 applied registry serial $LAST (SIGHUPs during the submissions)" \
	eval '[ "$(served_serial)" = $LAST ]'

# ---- 2. a client that goes away before the answer ----
port=$(nl_api_port 320300)
tok=$(cat "$F/320300/api.token")
body=$(bulk 100 gone)
"$NL_TIMEOUT" 10 bash -c '
	exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
	printf "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" "$1" "${#2}" "$2" >&3
	exec 3>&-' "$port" "$tok" "$body" || nl_fail "sending the abandoned request"
nl_wait 10 "320300 healthy after the client left" nl_healthy 320300

# ---- 3. refusals through the thread ----
# (nl_http sets NL_HTTP_STATUS: not called inside $(...))
api() { nl_http 320300 POST /v1/messages "$1" >"$W/out"; out=$(cat "$W/out"); }
api '[{"type":'
nl_eq "malformed JSON: status" 400 "$NL_HTTP_STATUS"
nl_has "malformed JSON: reason" '"error":"json.syntax"' "$out"
api '[{"type":"case.submit","service":"hukou.transfer"}]'
nl_eq "message without to: status" 400 "$NL_HTTP_STATUS"
nl_has "message without to: reason" '"error":"field.missing"' "$out"
# the request's members come from the schema table: one it does not
# list is refused, and a name holding U+0000 is not the shorter name
api '[{"type":"control.ping","to":"371300","priority":1}]'
nl_eq "unknown member: status" 400 "$NL_HTTP_STATUS"
nl_has "unknown member: reason" '"error":"field.unknown"' "$out"
api '[{"type":"control.ping","to":"371300","to\u0000":"320000"}]'
nl_eq "NUL in a member name: status" 400 "$NL_HTTP_STATUS"
nl_has "NUL in a member name: reason" '"error":"field.unknown"' "$out"
api '[{"type":"control.ping","to":"371300","hops":99}]'
nl_eq "hops out of range: status" 400 "$NL_HTTP_STATUS"
nl_has "hops out of range: reason" '"error":"field.value"' "$out"
api '[]'
nl_eq "empty bulk: status" 400 "$NL_HTTP_STATUS"
nl_has "empty bulk: reason" '"error":"field.value"' "$out"
# requests are parsed with the envelopes' strict JSON profile
# (docs/PROTOCOL.md 2.1): what no envelope could carry is refused whole
api '[{"type":"case.submit","to":"371300","type":"case.result"}]'
nl_eq "duplicate member: status" 400 "$NL_HTTP_STATUS"
nl_has "duplicate member: reason" '"error":"json.duplicate-key"' "$out"
api "[{\"type\":\"case.submit\",\"to\":\"371300\",\"body\":{\"note\":\"$(printf '\xff')\"}}]"
nl_eq "invalid UTF-8: status" 400 "$NL_HTTP_STATUS"
nl_has "invalid UTF-8: reason" '"error":"json.utf8"' "$out"
deep=$(printf '[%.0s' $(seq 40))$(printf ']%.0s' $(seq 40))
api "[{\"type\":\"case.submit\",\"to\":\"371300\",\"body\":{\"x\":$deep}}]"
nl_eq "body nested too deep: status" 400 "$NL_HTTP_STATUS"
nl_has "body nested too deep: reason" '"error":"json.depth"' "$out"

# ---- 4. everything delivered exactly once ----
inbox_count() { [ "$(nl_inbox_ids 371300 | sort -u | wc -l)" -ge "$1" ]; }
nl_wait 60 "300 messages in 371300's inbox" inbox_count 300
sleep 1 # nothing more may arrive
nl_eq "inbox of 371300: 300 messages, none twice" "300 0" \
	"$(nl_inbox_ids 371300 | wc -l) $(nl_inbox_ids 371300 | sort | uniq -d | wc -l)"
missing=$(sort -u "$W/ids" | comm -23 - <(nl_inbox_ids 371300 | sort -u) | wc -l)
nl_eq "every id answered to the concurrent clients is in the inbox" 0 "$missing"
for id in $(head -n 3 "$W/ids"); do
	nl_wait 20 "message $id delivered with a receipt" nl_delivered 320300 "$id"
done
nl_eq "no submission left waiting on the ingest thread" 0 "$(nl_metric 320300 tongban_api_pending)"
for m in 320300 371300; do
	out=$("$TB" audit verify --node "$(nl_conf "$m")" 2>&1) || nl_fail "audit verify $m" "exit 0" "$out"
	nl_has "audit verify $m" "chain intact" "$out"
done
for m in 320300 371300; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done
nl_done
