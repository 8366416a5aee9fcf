#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_peers.sh - seeing the federation from a node (issue 19,
# point 4): GET /v1/peers and `tongban peers`, `tongban reply`, and the
# exit status of `tongban status` for a failed message.
#
# Four cities; 320300 (A) is the node looked at.  371300 (B) runs and
# exchanges with A over DTLS: A's view of it has a recent handshake and
# success and a closed circuit.  341300 (C) is suspended in the registry
# A and B hold.  411400 (D) never runs: A queues messages to it, which
# stay queued, and its circuit opens after five failed attempts.  A runs
# with retry_min_ms 50, retry_max_ms 200 (so that the five failures come
# within a second or two) and breaker_open_ms 120000 (so that the circuit
# stays open while the test looks).  B answers a ping of A with
# `tongban reply`; a second answer to the same (closed) ping is refused by
# A, so B's `tongban status` of it ends "failed" with exit 1.
# About 15 s on an idle machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300,341300,411400
A=320300 B=371300 C=341300 D=411400
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"
reg() { "$TB" registry "$@" >/dev/null 2>"$W/reg.err" || nl_fail "tongban registry $*" "exit 0" "$(cat "$W/reg.err")"; }
cp "$F/registry.json" "$W/r2.json"
reg set "$W/r2.json" --member "$C" --status suspended
reg sign "$W/r2.json" $CA1
reg sign "$W/r2.json" $CA2
cp "$W/r2.json" "$F/$A/registry.json"
cp "$W/r2.json" "$F/$B/registry.json"
printf 'retry_min_ms = 50\nretry_max_ms = 200\nbreaker_open_ms = 120000\n' >>"$(nl_conf "$A")"
nl_start "$A"
nl_start "$B"

# tb_peers ID [ARGS]: `tongban peers` of node ID; output in $out, exit in $rc
tb_peers() {
	local id=$1
	shift
	rc=0
	out=$("$TB" peers --node "$(nl_conf "$id")" "$@" 2>"$W/err") || rc=$?
}
# peer MEMBER: MEMBER's object in the last --json output
peer() { printf '%s' "$out" | sed 's/{"id":/\n{"id":/g' | grep "^{\"id\":\"$1\""; }
# field MEMBER NAME: the value of NAME in MEMBER's object (strings unquoted)
field() { peer "$1" | sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"'; }

# ---- B: a message delivered, so a handshake and a success
id=$(nl_send "$A" "$B" control.ping)
nl_wait 30 "ping $id delivered to $B" nl_delivered "$A" "$id"
t0=$(date +%s)
tb_peers "$A" --json
nl_eq "tongban peers --json: exit" 0 "$rc"
nl_has "GET /v1/peers: this node" "\"member\":\"$A\"" "$out"
nl_has "GET /v1/peers: the registry's serial" '"serial":2' "$out"
for m in $A $B $C $D; do nl_has "GET /v1/peers lists $m" "{\"id\":\"$m\"" "$out"; done
nl_has "$A's own entry" '"self":true' "$(peer "$A")"
nl_eq "$B: status" active "$(field "$B" status)"
nl_has "$B: endpoint" "coaps://127.0.0.1:$(nl_port "$B")" "$(peer "$B")"
nl_eq "$B: circuit" closed "$(field "$B" circuit)"
nl_eq "$B: queued" 0 "$(field "$B" queued)"
for f in last_handshake last_success; do
	v=$(field "$B" $f)
	NL_CHECKS=$((NL_CHECKS + 1))
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -le "$t0" ] && [ "$v" -ge $((t0 - 60)) ] ||
		nl_fail "$B: $f is recent" "Unix time in [$((t0 - 60)), $t0]" "$v"
done

# ---- C: suspended in the registry
nl_eq "$C: status" suspended "$(field "$C" status)"
nl_eq "$C: never reached" null "$(field "$C" last_success)"

# ---- D: unreachable, messages queue and the circuit opens
for i in 1 2 3; do nl_send "$A" "$D" control.ping >/dev/null; done
d_open() { tb_peers "$A" --json && [ "$(field "$D" circuit)" = open ]; }
nl_wait 60 "circuit to $D open" d_open
tb_peers "$A" --json
nl_eq "$D: queued" 3 "$(field "$D" queued)"
nl_eq "$D: never reached" null "$(field "$D" last_handshake)"
NL_CHECKS=$((NL_CHECKS + 1))
f=$(field "$D" failures)
b=$(field "$D" backoff_s)
[ "$f" -ge 5 ] || nl_fail "$D: consecutive failures" ">= 5" "$f"
# breaker_open_ms is 120 s: most of it is left
[ "${b%.*}" -ge 30 ] && [ "${b%.*}" -le 120 ] || nl_fail "$D: backoff_s" "30..120" "$b"
nl_has "$D: why" '"last_error":"unreachable' "$(peer "$D")"
# the same over the API directly, with and without the token
body=$(nl_http "$A" GET /v1/peers)
nl_eq "GET /v1/peers: HTTP status" 200 "$NL_HTTP_STATUS"
nl_has "GET /v1/peers: D's queue" "\"queued\":3" "$(printf '%s' "$body" | sed 's/{"id":/\n{"id":/g' | grep "^{\"id\":\"$D\"")"
port=$(nl_api_port "$A")
st=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "GET /v1/peers HTTP/1.0\r\n\r\n" >&3; head -n 1 <&3' "$port")
nl_has "GET /v1/peers without the token" " 401 " "$st"

# ---- the table
tb_peers "$A"
nl_eq "tongban peers: exit" 0 "$rc"
nl_has "table header" "MEMBER" "$out"
row() { printf '%s\n' "$out" | grep "^$1 "; }
nl_has "table: $B handshake" "s ago" "$(row "$B")"
nl_has "table: $B circuit" "closed" "$(row "$B")"
nl_has "table: $C status" "suspended" "$(row "$C")"
nl_has "table: $D circuit" "open (" "$(row "$D")"
nl_has "table: $D queue" " 3  open" "$(row "$D")"
nl_has "table: this node" "(this node)" "$(row "$A")"

# ---- tongban reply, and status exit codes
ping=$(nl_send "$A" "$B" control.ping)
has_ping() { nl_inbox_ids "$B" | grep -qx "$1"; }
nl_wait 30 "ping $ping in $B's inbox" has_ping "$ping"
printf '{}' >"$W/empty.json"
rep() {
	rc=0
	out=$("$TB" reply --node "$(nl_conf "$B")" "$@" 2>"$W/err") || rc=$?
}
rep --type control.pong --body "$W/empty.json" "$ping"
nl_eq "tongban reply: exit" 0 "$rc"
NL_CHECKS=$((NL_CHECKS + 1))
[[ "$out" =~ ^[0-9a-f]{32}$ ]] || nl_fail "tongban reply prints the answer's id" "32 hex digits" "$out"
pong=$out
nl_wait 30 "pong $pong delivered" nl_delivered "$B" "$pong"
rc=0
"$TB" status --node "$(nl_conf "$B")" "$pong" >"$W/out" 2>"$W/err" || rc=$?
nl_eq "tongban status of a delivered message: exit" 0 "$rc"
# A holds the pong: an answer from B to its ping, corr = the ping
in_a() { nl_inbox "$A" | grep "\"id\":\"$pong\""; }
nl_wait 30 "pong in $A's inbox" in_a
nl_has "the pong answers the ping" "\"corr\":\"$ping\"" "$(in_a)"
nl_has "the pong comes from $B" "\"from\":\"$B\"" "$(in_a)"
# a second answer to the closed ping: A refuses it, B's status says failed
rep --type control.pong --body "$W/empty.json" "$ping"
nl_eq "second tongban reply: exit (the node queues it)" 0 "$rc"
pong2=$out
failed() { nl_status "$B" "$pong2" 2>/dev/null | grep -q '"state":"failed"'; }
nl_wait 30 "second pong $pong2 refused by $A" failed
rc=0
"$TB" status --node "$(nl_conf "$B")" "$pong2" >"$W/out" 2>"$W/err" || rc=$?
nl_eq "tongban status of a failed message: exit" 1 "$rc"
nl_has "tongban status of a failed message still prints it" '"state":"failed"' "$(cat "$W/out")"
rc=0
"$TB" status --node "$(nl_conf "$A")" "$(nl_send "$A" "$D" control.ping)" >"$W/out" 2>&1 || rc=$?
nl_eq "tongban status of a queued message: exit" 0 "$rc"
# refusals and usage
rep --type control.pong --body "$W/empty.json" 0123456789abcdef0123456789abcdef
nl_eq "tongban reply to an unknown id: exit" 1 "$rc"
nl_has "tongban reply to an unknown id: why" "no inbound message with that id" "$(cat "$W/err")"
rep --type control.pong "$ping" extra
nl_eq "tongban reply with two ids: exit" 2 "$rc"
rep "$ping"
nl_eq "tongban reply without --type: exit" 2 "$rc"
nl_has "tongban reply without --type: why" "--type is required" "$(cat "$W/err")"
rc=0
"$TB" peers >/dev/null 2>"$W/err" || rc=$?
nl_eq "tongban peers without --node: exit" 2 "$rc"
nl_stop "$B"
rc=0
"$TB" peers --node "$(nl_conf "$B")" >/dev/null 2>"$W/err" || rc=$?
nl_eq "tongban peers of a stopped node: exit" 3 "$rc"
nl_has "tongban peers of a stopped node: why" "is tongban-node running?" "$(cat "$W/err")"
nl_done
