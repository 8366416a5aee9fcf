#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_revoked.sh - outbound and transport honour the node's
# operating state (issue 18, point 2's delivery side): registries applied
# at runtime (SIGHUP) suspend, reinstate and revoke this node's own
# member 320300.
# * Suspended: nothing is sent and no handshake is attempted (a message
#   to a running peer stays queued; the failing peer's attempt count
#   stands still); reinstated: the queue goes at once.
# * Revoked: every queued message fails with reason member.revoked, as
#   `tongban status` shows, and so does one submitted afterwards.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300,341300
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"
reg() { "$TB" registry "$@" >/dev/null 2>"$W/reg.err" || nl_fail "tongban registry $*" "exit 0" "$(cat "$W/reg.err")"; }
# newreg FROM TO STATUS: TO is FROM with 320300's status set, re-signed
newreg() {
	cp "$1" "$2"
	reg set "$2" --member 320300 --status "$3"
	reg sign "$2" $CA1
	reg sign "$2" $CA2
}
# apply FILE: 320300's registry file, then SIGHUP; waits for it
apply() {
	local serial
	serial=$(sed -n 's/.*"serial":\([0-9]*\).*/\1/p' "$1")
	cp "$1" "$F/320300/registry.json"
	kill -HUP "$(nl_pid 320300)"
	nl_wait 10 "320300 applies serial $serial" eval \
		'[ "$(nl_http 320300 GET /v1/registry | sed -n "s/.*\"serial\":\([0-9]*\).*/\1/p")" = '"$serial"' ]'
}
state_of() { nl_status 320300 "$1" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'; }
printf 'retry_min_ms = 100\nretry_max_ms = 1000\nbreaker_open_ms = 100\n' >>"$(nl_conf 320300)"
nl_start 320300
nl_start 371300
# 341300 is not running: a message to it stays queued, retried
m1=$(nl_send 320300 341300 case.submit hukou.transfer) || exit 1
M='tongban_peer_failures_total{peer="341300",reason="unreachable"}'
nl_wait 10 "320300 tries the absent peer" eval '[ "$(nl_metric 320300 "$M")" -ge 1 ]'

# ---- suspended: nothing sent, no handshake ----
newreg "$F/registry.json" "$W/r2.json" suspended
apply "$W/r2.json"
sleep 1
tries=$(nl_metric 320300 "$M")
m2=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
sleep 5
nl_eq "suspended: a message to a running peer stays queued" queued "$(state_of "$m2")"
nl_eq "suspended: the absent peer is not tried (retry_max_ms is 1 s)" "$tries" "$(nl_metric 320300 "$M")"
nl_eq "suspended: the first message stays queued" queued "$(state_of "$m1")"

# ---- reinstated: the queue goes at once ----
newreg "$W/r2.json" "$W/r3.json" active
apply "$W/r3.json"
nl_wait 10 "reinstated: queued message delivered promptly" nl_delivered 320300 "$m2"

# ---- revoked: the queue fails with member.revoked ----
newreg "$W/r3.json" "$W/r4.json" revoked
apply "$W/r4.json"
nl_wait 10 "revoked: the queued message failed" eval '[ "$(state_of "$m1")" = failed ]'
nl_has "revoked: reason in tongban status" '"reason":"member.revoked' "$(nl_status 320300 "$m1")"
m3=$("$TB" send --node "$(nl_conf 320300)" --to 371300 --type case.submit --body "$(nl_case_body)" 2>/dev/null)
if [ -n "$m3" ]; then
	nl_wait 10 "revoked: a later submission fails too" eval '[ "$(state_of "$m3")" = failed ]'
	nl_has "revoked: its reason" '"reason":"member.revoked' "$(nl_status 320300 "$m3")"
fi
nl_has "320300 says so at error level" "this member is revoked" "$(cat "$W/320300.log")"
nl_done
