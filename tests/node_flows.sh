#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_flows.sh - the message flows of PROTOCOL.md 10 end to end
# between real nodes of a dev federation with the reference responder
# (DIR/fixtures.json): hubs 320000, 410000, 370000; cities 320300
# (Jiangsu), 371300 (Shandong) and 411400 (Henan, --private: reached only
# through hub 410000).  Every family is run between cities of different
# provinces twice: directly (320300 -> 371300) and through a hub
# (371300 -> 411400, receipt carries relay.path [410000]):
#   identity.verify -> identity.result (match / no-match)
#   licence.query -> licence.present; `tongban licence check` passes on the
#     presented licence and fails (licence.digest / sig.bad) on a tampered copy
#   licence.verify -> licence.status (valid / unknown for a wrong digest)
#   case.submit -> case.accept -> case.result approved; pension.transfer ->
#     case.reject; case.query -> case.state; control.ping -> control.pong
# Every request's receipt verifies with the receiver's certificate.
# Refusals (PROTOCOL.md 10.3, 10.4, 10.6; api.c http_code):
#   local API: second case.result (409 flow.state), case.update on an unknown
#     case (409 flow.state), identity.result with a corr naming nothing and an
#     answer to a request sent to someone else (409 flow.unmatched), bodies
#     breaking their schema (400 body.invalid, detail = path and rule), a
#     member that does not exist (400 route.none); `tongban route resolve`
#     for a service nobody offers: route.none.
#   wire (coap-client-openssl, hand-sealed envelopes): 4.00 body.invalid,
#     4.09 flow.unmatched (answer to another member's request, request with
#     corr), 4.09 flow.state (case.result before case.accept).
#   POST /v1/inbox/ID/reply (bash /dev/tcp, bearer token): 202 for an error
#     answer to an already answered ping, which the requester then refuses
#     (flow.unmatched, "already answered": a second final answer); 409
#     flow.state, 400 body.invalid, 404 unknown id, 401 without token.
# A service a member does not list in the registry is still delivered when
# addressed with --to (the dev federation's access policy allows by
# default; 9.3 step 4): not a refusal, so only route.none is tested.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
NL_MEMBERS=320000,410000,370000,320300,371300,411400
F="$W/fed"
"$TB" dev-federation --dir "$F" --members "$NL_MEMBERS" --base-port "$NL_BASE" \
	--private 411400 >"$W/devfed.out" 2>&1 || { cat "$W/devfed.out" >&2; nl_fail "dev-federation"; }
grep -q '^responder *= *\.\./fixtures.json' "$F/371300/node.conf" || nl_fail "responder configured"
for m in ${NL_MEMBERS//,/ }; do nl_start "$m"; done
T0=$(date +%s)

P1=$(sed 's/.*"people":\[{"idhash":"\([0-9a-f]*\)".*/\1/' "$F/fixtures.json")
E1=$(grep -o '"idhash":"[0-9a-f]*","kind":"enterprise"' "$F/fixtures.json" | cut -d'"' -f4)
UNKNOWN=$(printf 'nobody' | sha256sum | cut -c1-64)
[ ${#P1} = 64 ] && [ ${#E1} = 64 ] || nl_fail "fixture idhashes" "64 hex" "$P1 / $E1"

N=0
# fl_body JSON: writes JSON to a fresh file, prints its name
fl_body() {
	N=$((N + 1))
	printf '%s' "$1" >"$W/b$N.json"
	echo "$W/b$N.json"
}

# fl_send FROM TO TYPE SERVICE BODY [CORR]: prints the id (exit 0 expected)
fl_send() {
	local out
	out=$("$TB" send --node "$(nl_conf "$1")" --to "$2" --type "$3" ${4:+--service "$4"} \
		${6:+--corr "$6"} --body "$(fl_body "$5")" 2>&1) ||
		nl_fail "tongban send $1 -> $2 $3" "exit 0" "$out"
	printf '%s\n' "$out"
}

# fl_refused WHAT FROM TO TYPE SERVICE BODY CORR HTTP TOKEN [DETAIL]
fl_refused() {
	local what=$1 out rc=0
	shift
	out=$("$TB" send --node "$(nl_conf "$1")" --to "$2" --type "$3" ${4:+--service "$4"} \
		${6:+--corr "$6"} --body "$(fl_body "$5")" 2>&1) || rc=$?
	[ "$rc" != 0 ] || nl_fail "$what: refused" "HTTP $7 $8" "accepted: $out"
	nl_has "$what: HTTP status" "node answered $7:" "$out"
	nl_has "$what: reason" "\"error\":\"$8\"" "$out"
	[ $# -lt 9 ] || nl_has "$what: detail" "$9" "$out"
}

# fl_exchange FROM TO TYPE SERVICE BODY [HUB]: sends, waits for delivery,
# verifies the receipt (receiver's certificate; relay.path [HUB] or none).
# Sets ID.
fl_exchange() {
	local st path
	ID=$(fl_send "$1" "$2" "$3" "$4" "$5") || exit 1
	nl_wait 20 "$3 $ID $1 -> $2 delivered" nl_delivered "$1" "$ID"
	st=$(nl_status "$1" "$ID")
	printf '%s' "$st" | sed -n 's/.*"receipt":\({.*}\)}$/\1/p' >"$W/receipt.json"
	out=$("$TB" msg open --pub "$F/$2/node.crt" "$W/receipt.json" 2>&1) ||
		nl_fail "receipt of $3 $ID verifies with $2's certificate" "exit 0" "$out"
	nl_has "receipt of $3 answers it" "\"corr\":\"$ID\"" "$out"
	nl_has "receipt of $3 from the receiver" "\"from\":\"$2\"" "$out"
	path=$(sed -n 's/.*"relay":{"path":\[\([^]]*\)\]}.*/\1/p' "$W/receipt.json" | tr -d '"')
	nl_eq "relay.path of the receipt of $3 $1 -> $2" "${6:-}" "$path"
}

fl_answer_line() { nl_inbox "$1" | grep "\"type\":\"$3\"" | grep "\"corr\":\"$2\"" | head -n 1; }
fl_has_answer() { [ -n "$(fl_answer_line "$@")" ]; }

# fl_answer AT REQ TYPE: waits for the TYPE answering REQ in AT's inbox,
# checks it verifies with the answerer's certificate; sets ANS (its body)
# and ANS_ID, and acknowledges it.
fl_answer() {
	local line from
	nl_wait 20 "$3 answering $2 in $1's inbox" fl_has_answer "$1" "$2" "$3"
	line=$(fl_answer_line "$1" "$2" "$3")
	ANS_ID=$(printf '%s' "$line" | sed -n 's/^{"seq":[0-9]*,"id":"\([0-9a-f]*\)".*/\1/p')
	from=$(printf '%s' "$line" | sed -n 's/^{"seq":[0-9]*,"id":"[0-9a-f]*","from":"\([0-9]*\)".*/\1/p')
	printf '%s' "$line" | sed -n 's/.*"envelope":\({.*}\)}$/\1/p' >"$W/answer.json"
	"$TB" msg open --pub "$F/$from/node.crt" "$W/answer.json" >/dev/null 2>&1 ||
		nl_fail "$3 $ANS_ID verifies with $from's certificate"
	ANS=$(sed -n 's/^{"body":\(.*\),"corr":"[0-9a-f]*","created".*/\1/p' "$W/answer.json")
	"$TB" inbox --node "$(nl_conf "$1")" --ack "$ANS_ID" >/dev/null || nl_fail "inbox --ack $ANS_ID"
}

# fl_coap_post AS TARGET FILE: POSTs FILE to TARGET's /fed/msg with AS's cert
fl_coap_post() {
	nl_have_coap_client || return 1
	nl_coap "$F/$1" post /fed/msg "$2" "$3" -t 50
}

# fl_seal FROM TO TYPE BODY [CORR]: hand-made envelope signed by FROM; file
fl_seal() {
	N=$((N + 1))
	"$TB" msg new --type "$3" --from "$1" --to "$2" ${5:+--corr "$5"} --body "$(fl_body "$4")" |
		"$TB" msg seal --key "$F/$1/node.key" >"$W/env$N.json" || nl_fail "msg new/seal $3"
	echo "$W/env$N.json"
}

# fl_wire WHAT AS TARGET ENVFILE CODE TOKEN [DETAIL]
fl_wire() {
	fl_coap_post "$2" "$3" "$4"
	nl_eq "$1: CoAP code" "$5" "$NL_CODE"
	nl_has "$1: error token" "\"error\":\"$6\"" "$(nl_coap_body)"
	[ $# -lt 7 ] || nl_has "$1: detail" "$7" "$(nl_coap_body)"
}

# ---- the families, direct and through a hub ----
for pair in "320300 371300 -" "371300 411400 410000"; do
	read -r A B HUB <<<"$pair"
	[ "$HUB" = - ] && HUB=
	what="$A -> $B${HUB:+ via $HUB}"

	# identity
	fl_exchange "$A" "$B" identity.verify hukou.transfer \
		"{\"subject\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"purpose\":\"hukou.transfer\"}" "$HUB"
	fl_answer "$A" "$ID" identity.result
	nl_eq "identity.result $what (fixture resident)" \
		'{"assurance":"high","attributes":{"resident_of":"registered"},"result":"match"}' "$ANS"
	fl_exchange "$A" "$B" identity.verify hukou.transfer \
		"{\"subject\":{\"idhash\":\"$UNKNOWN\",\"kind\":\"person\"},\"purpose\":\"hukou.transfer\"}" "$HUB"
	fl_answer "$A" "$ID" identity.result
	nl_eq "identity.result $what (unknown idhash)" '{"result":"no-match"}' "$ANS"

	# licences
	fl_exchange "$A" "$B" licence.query business-license.change \
		"{\"holder\":{\"idhash\":\"$E1\"},\"licence\":\"business-license\"}" "$HUB"
	fl_answer "$A" "$ID" licence.present
	printf '%s' "$ANS" | sed -n 's/^{"licences":\[\(.*\)\]}$/\1/p' >"$W/licence.json"
	nl_has "licence.present $what: issuer is $B" "\"issuer\":\"$B\"" "$(cat "$W/licence.json")"
	out=$("$TB" licence check --registry "$F/registry.json" "$W/licence.json" 2>&1) ||
		nl_fail "licence check of the licence $B presented" "exit 0" "$out"
	nl_ok
	sed 's/"scope":"retail"/"scope":"wholesale"/' "$W/licence.json" >"$W/tampered.json"
	cmp -s "$W/licence.json" "$W/tampered.json" && nl_fail "tampering the licence copy"
	rc=0
	out=$("$TB" licence check --registry "$F/registry.json" "$W/tampered.json" 2>&1) || rc=$?
	[ "$rc" != 0 ] || nl_fail "licence check of a tampered licence fails" "non-zero exit" "$out"
	case $out in *licence.digest* | *sig.bad*) nl_ok ;; *) nl_fail "tampered licence reason" "licence.digest or sig.bad" "$out" ;; esac
	# the issuer revoked or suspended in the registry: its licences are not valid
	for st in revoked suspended; do
		cp "$F/registry.json" "$W/reg-$st.json"
		"$TB" registry set "$W/reg-$st.json" --member "$B" --status $st >/dev/null ||
			nl_fail "registry set $B $st"
		rc=0
		out=$("$TB" licence check --registry "$W/reg-$st.json" "$W/licence.json" 2>&1) || rc=$?
		[ "$rc" = 1 ] || nl_fail "licence check, issuer $st: exit 1" 1 "$rc: $out"
		nl_has "licence check, issuer $st" "licence.issuer-$st" "$out"
	done
	LID=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$W/licence.json")
	LDIG=$(sed 's/.*"digest":"\([0-9a-f]*\)".*/\1/' "$W/licence.json")
	fl_exchange "$A" "$B" licence.verify business-license.change \
		"{\"licence_id\":\"$LID\",\"digest\":\"$LDIG\"}" "$HUB"
	fl_answer "$A" "$ID" licence.status
	nl_has "licence.status $what" "\"licence_id\":\"$LID\",\"status\":\"valid\"" "$ANS"
	fl_exchange "$A" "$B" licence.verify business-license.change \
		"{\"licence_id\":\"$LID\",\"digest\":\"$UNKNOWN\"}" "$HUB"
	fl_answer "$A" "$ID" licence.status
	nl_has "licence.status $what, wrong digest" '"status":"unknown"' "$ANS"

	# cases
	CASE="C-$B-$RANDOM"
	fl_exchange "$A" "$B" case.submit hukou.transfer \
		"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"$CASE\",\"materials\":[{\"sha256\":\"$UNKNOWN\",\"size\":4096,\"name\":\"photo.jpg\"}],\"mode\":\"proxy\",\"service\":\"hukou.transfer\"}" "$HUB"
	SUB=$ID
	fl_answer "$A" "$SUB" case.accept
	nl_eq "case.accept $what" "{\"case_id\":\"$CASE\"}" "$ANS"
	fl_answer "$A" "$SUB" case.result
	nl_eq "case.result $what" "{\"case_id\":\"$CASE\",\"outcome\":\"approved\"}" "$ANS"
	fl_refused "second case.result $B -> $A" "$B" "$A" case.result hukou.transfer \
		"{\"case_id\":\"$CASE\",\"outcome\":\"denied\"}" "$SUB" 409 flow.state
	fl_refused "case.update on an unknown case $B -> $A" "$B" "$A" case.update hukou.transfer \
		"{\"case_id\":\"NO-SUCH-$CASE\",\"status\":\"review\"}" "$SUB" 409 flow.state
	fl_exchange "$A" "$B" case.query hukou.transfer "{\"case_id\":\"$CASE\"}" "$HUB"
	fl_answer "$A" "$ID" case.state
	nl_eq "case.state $what" "{\"case_id\":\"$CASE\",\"state\":\"completed\"}" "$ANS"
	fl_exchange "$A" "$B" case.query hukou.transfer "{\"case_id\":\"NEVER-$CASE\"}" "$HUB"
	fl_answer "$A" "$ID" case.state
	nl_eq "case.state $what (unknown case)" "{\"case_id\":\"NEVER-$CASE\",\"state\":\"unknown\"}" "$ANS"
	PCASE="P-$B-$RANDOM"
	fl_exchange "$A" "$B" case.submit pension.transfer \
		"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"$PCASE\",\"materials\":[],\"mode\":\"online\",\"service\":\"pension.transfer\"}" "$HUB"
	fl_answer "$A" "$ID" case.reject
	nl_has "case.reject $what (pension.transfer)" "{\"case_id\":\"$PCASE\",\"reason\":\"" "$ANS"
	fl_refused "case.accept after case.reject $B -> $A" "$B" "$A" case.accept pension.transfer \
		"{\"case_id\":\"$PCASE\"}" "$ID" 409 flow.state
	# an answer naming another existing case than the one its corr submitted
	fl_refused "case.update with another case's id $B -> $A" "$B" "$A" case.update pension.transfer \
		"{\"case_id\":\"$CASE\",\"status\":\"review\"}" "$ID" 409 flow.unmatched

	# control
	fl_exchange "$A" "$B" control.ping "" '{}' "$HUB"
	PING=$ID
	[ "$A" = 320300 ] && PING1=$ID
	fl_answer "$A" "$PING" control.pong
	nl_eq "control.pong $what" '{}' "$ANS"
done
# no recipient given: the node routes by service and region (PROTOCOL.md 8.1)
printf '{"purpose":"hukou.transfer","subject":{"idhash":"%s","kind":"person"}}' "$P1" >"$W/routed.json"
RID=$("$TB" send --node "$(nl_conf 320300)" --region 371302 --service hukou.transfer \
	--type identity.verify --body "$W/routed.json") || nl_fail "send routed by region" "an id" "$RID"
nl_wait 20 "routed identity.verify $RID delivered" nl_delivered 320300 "$RID"
nl_has "routed message went to Linyi" '"from":"371300"' "$(nl_status 320300 "$RID")"
out=$("$TB" send --node "$(nl_conf 320300)" --region 110000 --service hukou.transfer \
	--type control.ping 2>&1) && nl_fail "send to a region nobody serves" "refused" "$out"
nl_has "region nobody serves" '"error":"route.none"' "$out"
# a request for a service the recipient does not offer (cities do not
# offer the province-served medical.offsite-filing): refused at the API
fl_refused "request for a service 371300 does not offer" 320300 371300 identity.verify \
	medical.offsite-filing "{\"purpose\":\"medical.offsite-filing\",\"subject\":{\"idhash\":\"$P1\",\"kind\":\"person\"}}" \
	"" 422 service.not-offered
# the private city answers out through the registry endpoint of 320300
fl_exchange 411400 320300 control.ping "" '{}'
fl_answer 411400 "$ID" control.pong
echo "# families: $(( $(date +%s) - T0 )) s"

# ---- refusals at the local API ----
fl_refused "identity.result with a corr naming nothing" 371300 320300 identity.result hukou.transfer \
	'{"result":"no-match"}' 0123456789abcdef0123456789abcdef 409 flow.unmatched
REQ=$(fl_send 320300 371300 identity.verify hukou.transfer \
	"{\"subject\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"purpose\":\"hukou.transfer\"}")
nl_wait 20 "identity.verify $REQ delivered" nl_delivered 320300 "$REQ"
fl_refused "answer by 411400 to a request 320300 sent to 371300" 411400 320300 identity.result \
	hukou.transfer '{"result":"no-match"}' "$REQ" 409 flow.unmatched
fl_refused "request with corr" 371300 320300 control.ping "" '{}' "$REQ" 409 flow.unmatched
fl_refused "identity.verify, bad idhash" 320300 371300 identity.verify hukou.transfer \
	'{"subject":{"idhash":"ABC","kind":"person"},"purpose":"hukou.transfer"}' "" 400 body.invalid \
	'body.subject.idhash: must be 64 lowercase hex digits'
fl_refused "licence.query, unknown member" 320300 411400 licence.query business-license.change \
	"{\"holder\":{\"idhash\":\"$E1\"},\"licence\":\"business-license\",\"extra\":1}" "" 400 body.invalid \
	'body.extra: unknown member'
fl_refused "case.submit without materials" 371300 411400 case.submit hukou.transfer \
	"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"X1\",\"mode\":\"online\",\"service\":\"hukou.transfer\"}" \
	"" 400 body.invalid 'body.materials: required'
fl_refused "case.submit joint without parties" 320300 371300 case.submit hukou.transfer \
	"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"X2\",\"materials\":[],\"mode\":\"joint\",\"service\":\"hukou.transfer\"}" \
	"" 400 body.invalid 'body.parties'
fl_refused "send to a member that does not exist" 320300 999999 control.ping "" '{}' "" 400 route.none
rc=0
out=$("$TB" route resolve --registry "$F/registry.json" --service no.such-service --region 3713 2>&1) || rc=$?
[ "$rc" != 0 ] || nl_fail "route resolve of a service nobody offers" "non-zero exit" "$out"
nl_has "route resolve of a service nobody offers" "route.none" "$out"

# ---- refusals over the wire (hand-sealed envelopes) ----
if nl_have_coap_client; then
	fl_wire "wire: identity.verify with a bad idhash" 371300 320300 \
		"$(fl_seal 371300 320300 identity.verify '{"subject":{"idhash":"zz","kind":"person"},"purpose":"hukou.transfer"}')" \
		4.00 body.invalid 'body.subject.idhash'
	fl_wire "wire: licence.query without licence" 320300 371300 \
		"$(fl_seal 320300 371300 licence.query "{\"holder\":{\"idhash\":\"$E1\"}}")" \
		4.00 body.invalid 'body.licence: required'
	fl_wire "wire: answer by 320000 to a request 320300 sent to 371300" 320000 320300 \
		"$(fl_seal 320000 320300 identity.result '{"result":"no-match"}' "$REQ")" 4.09 flow.unmatched
	fl_wire "wire: identity.result, corr naming nothing" 371300 320300 \
		"$(fl_seal 371300 320300 identity.result '{"result":"no-match"}' 00000000000000000000000000000000)" \
		4.09 flow.unmatched
	fl_wire "wire: request with corr" 371300 320300 \
		"$(fl_seal 371300 320300 control.ping '{}' "$REQ")" 4.09 flow.unmatched
	# a case.result answering the ping 320300 sent to 371300: not a case.submit
	fl_wire "wire: case.result answering a control.ping" 371300 320300 \
		"$(fl_seal 371300 320300 case.result '{"case_id":"W1","outcome":"approved"}' "$PING")" 4.09 flow.unmatched
	# the handler's lifecycle: a second case.submit of an existing case
	CW="W-$RANDOM"
	CWB="{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"$CW\",\"materials\":[],\"mode\":\"online\",\"service\":\"hukou.transfer\"}"
	fl_coap_post 320000 371300 "$(fl_seal 320000 371300 case.submit "$CWB")"
	nl_eq "wire: hand-sealed case.submit accepted" 2.01 "$NL_CODE"
	fl_wire "wire: case.submit of an existing case" 320000 371300 \
		"$(fl_seal 320000 371300 case.submit "$CWB")" 4.09 flow.state 'case.submit'
else
	echo "# coap-client-openssl not installed: wire refusals skipped"
fi
# the submitter's lifecycle at the local API: the same case id twice (the
# detail depends on how far the case got: already exists / completed)
CASE2="D-$RANDOM"
SUB2=$(fl_send 320300 371300 case.submit hukou.transfer \
	"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"$CASE2\",\"materials\":[],\"mode\":\"online\",\"service\":\"hukou.transfer\"}")
fl_refused "case.submit of an existing case" 320300 371300 case.submit hukou.transfer \
	"{\"applicant\":{\"idhash\":\"$P1\",\"kind\":\"person\"},\"case_id\":\"$CASE2\",\"materials\":[],\"mode\":\"online\",\"service\":\"hukou.transfer\"}" \
	"" 409 flow.state 'case.submit'
fl_answer 320300 "$SUB2" case.result

# ---- the reply endpoint (POST /v1/inbox/ID/reply) ----
# fl_http ID METHOD PATH BODY: nl_http in this shell; the answer in $out
fl_http() { nl_http "$@" >"$W/http.out"; out=$(cat "$W/http.out"); }
fl_http 371300 POST "/v1/inbox/$PING1/reply" '{"type":"error","body":{"reason":"control.busy","detail":"test"}}'
nl_eq "reply endpoint: error answering ping $PING1 (HTTP)" 202 "$NL_HTTP_STATUS"
RID=$(printf '%s' "$out" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
[ ${#RID} = 32 ] || nl_fail "reply endpoint: id of the reply" "32 hex" "$out"
fl_failed() { nl_status "$1" "$2" 2>/dev/null | grep -q '"state":"failed"'; }
nl_wait 20 "reply $RID refused by 320300" fl_failed 371300 "$RID"
st=$(nl_status 371300 "$RID")
nl_has "second final answer refused over the wire" 'flow.unmatched' "$st"
nl_has "second final answer: reason" 'already answered' "$st"
fl_http 411400 POST "/v1/inbox/$SUB/reply" "{\"type\":\"case.update\",\"body\":{\"case_id\":\"$CASE\",\"status\":\"review\"}}"
nl_eq "reply endpoint: case.update after the result (HTTP)" 409 "$NL_HTTP_STATUS"
nl_has "reply endpoint: case.update after the result" '"error":"flow.state"' "$out"
fl_http 411400 POST "/v1/inbox/$SUB/reply" "{\"type\":\"case.update\",\"body\":{\"case_id\":\"$CASE\"}}"
nl_eq "reply endpoint: case.update without status (HTTP)" 400 "$NL_HTTP_STATUS"
nl_has "reply endpoint: case.update without status" 'body.status: required' "$out"
fl_http 411400 POST "/v1/inbox/$SUB/reply" '{"type":"case.update","type":"case.update"}'
nl_eq "reply endpoint: duplicate member (HTTP)" 400 "$NL_HTTP_STATUS"
nl_has "reply endpoint: duplicate member" '"error":"json.duplicate-key"' "$out"
fl_http 411400 POST "/v1/inbox/$SUB/reply" '{"type":'
nl_eq "reply endpoint: malformed JSON (HTTP)" 400 "$NL_HTTP_STATUS"
nl_has "reply endpoint: malformed JSON" '"error":"json.syntax"' "$out"
fl_http 411400 POST "/v1/inbox/ffffffffffffffffffffffffffffffff/reply" '{"type":"error","body":{"reason":"x"}}'
nl_eq "reply endpoint: unknown id (HTTP)" 404 "$NL_HTTP_STATUS"
resp=$("$NL_TIMEOUT" 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
	printf "POST /v1/inbox/%s/reply HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}" "$1" >&3; head -n 1 <&3' \
	"$(nl_api_port 411400)" "$SUB" 2>/dev/null)
nl_has "reply endpoint without the bearer token" " 401" "$resp"

for m in ${NL_MEMBERS//,/ }; do
	out=$("$TB" audit verify --node "$(nl_conf "$m")" 2>&1) || nl_fail "audit verify $m" "exit 0" "$out"
done
echo "# total: $(( $(date +%s) - T0 )) s after start"
nl_done
