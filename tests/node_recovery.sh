#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_recovery.sh - recovery and own status on a running federation
# (issue 18 points 1 and 2; docs/ADMIN.md "Operating states"): hubs
# 320000 and 370000, cities 320300 (upstream 320000) and 371300.
# * 320300 started on an expired registry (serial 2): it starts, in
#   recovery ("entering recovery", /healthz 503), takes a submission (202,
#   "held": "node.recovery", queued) and refuses 371300's message with
#   5.03 node.recovery (371300 keeps it queued and says why); its upstream
#   (serial 1) has nothing newer.  Serial 3 given to the other hub, 370000,
#   by `tongban registry install`: 320300 fetches it from that hub by
#   itself, leaves recovery, and both messages are delivered.
# * A registry expiring while 320300 runs puts it in recovery again; serial
#   5 given to its upstream hub 320000 (`tongban registry install`) reaches
#   it through its observation: out of recovery, the queued message is
#   delivered.
# * Its member suspended (installed on 320300): one error line, /healthz 503
#   "suspended", a submission 202 "held": "member.suspended" stays queued;
#   active again: delivered.  Revoked: one error line, /healthz 503
#   "revoked", a submission refused 403 member.revoked.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320000,370000,320300,371300
C=320300
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"
LOG=$W/$C.log
for m in 320000 370000 371300; do
	printf 'retry_min_ms = 100\nretry_max_ms = 1000\nbreaker_open_ms = 1000\n' >>"$F/$m/node.conf"
done
printf 'retry_min_ms = 100\nretry_max_ms = 1000\nbreaker_open_ms = 1000\n' >>"$F/$C/node.conf"

PREV=$F/registry.json
mkreg() {
	local out=$1
	shift
	cp "$PREV" "$out"
	"$TB" registry set "$out" "$@" >/dev/null 2>"$W/reg.err" || nl_fail "registry set $*" "exit 0" "$(cat "$W/reg.err")"
	"$TB" registry sign "$out" $CA1 >/dev/null && "$TB" registry sign "$out" $CA2 >/dev/null ||
		nl_fail "registry sign $out"
	PREV=$out
}
served_serial() { nl_http "$1" GET /v1/registry | sed -n 's/.*"serial":\([0-9]*\).*/\1/p'; }
health() { nl_http $C GET /healthz >"$W/h.body"; }
# post TO: a control.ping from the city; the answer in $W/p.body
post() { nl_http $C POST /v1/messages "{\"type\":\"control.ping\",\"to\":\"$1\"}" >"$W/p.body"; }
id_of() { sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' "$1"; }
install() {
	"$TB" registry install --node "$F/$1/node.conf" "$2" 2>"$W/inst.err" ||
		nl_fail "registry install on $1" "exit 0" "$(cat "$W/inst.err")"
}
start_city() {
	"$TBN" -c "$F/$C/node.conf" >>"$LOG" 2>&1 &
	echo $! >"$W/pids/$C"
	nl_wait 20 "node $C answering /healthz" eval 'kill -0 $(nl_pid $C) && health && [ "$NL_HTTP_STATUS" != 0 ]'
}
lines() { grep -c "$1" "$LOG"; }

for m in 320000 370000 371300; do nl_start "$m"; done

# ---- started on an expired registry ----
mkreg "$W/r2.json" --valid-days 1 --now $(($(date +%s) - 2 * 86400))
cp "$W/r2.json" "$F/$C/registry.json"
start_city
nl_eq "/healthz on an expired registry: 503" 503 "$NL_HTTP_STATUS"
nl_has "/healthz says recovery" '"status":"recovery"' "$(cat "$W/h.body")"
nl_has "entering recovery, naming where it fetches from" \
	"entering recovery: registry serial 2 expired at" "$(grep 'entering recovery' "$LOG")"
nl_has "both hubs are sources" "fetching a newer registry from 320000, 370000" "$(grep 'entering recovery' "$LOG")"
post 371300
nl_eq "submission in recovery: 202" 202 "$NL_HTTP_STATUS"
nl_has "held: node.recovery" '"held":"node.recovery"' "$(cat "$W/p.body")"
id1=$(id_of "$W/p.body")
id2=$(nl_send 371300 $C control.ping)
nl_wait 15 "371300 is told node.recovery" eval 'nl_status 371300 "$id2" | grep -q "node.recovery"'
nl_has "371300 keeps it queued" '"state":"queued"' "$(nl_status 371300 "$id2")"
sleep 3
nl_has "the city's message stays queued" '"state":"queued"' "$(nl_status $C "$id1")"
nl_eq "the upstream's older registry does not help" 2 "$(served_serial $C)"

# ---- serial 3 at the other hub: fetched by the city ----
mkreg "$W/r3.json" --valid-days 60
out=$(install 370000 "$W/r3.json")
nl_has "hub 370000 applies serial 3" "the node applied it" "$out"
nl_wait 30 "the city fetches serial 3 and leaves recovery" eval '[ "$(served_serial $C)" = 3 ]'
nl_has "leaving recovery logged" "leaving recovery: registry serial 3" "$(cat "$LOG")"
nl_has "from the hub" "registry updated from 370000" "$(cat "$LOG")"
health
nl_eq "/healthz after recovery" 200 "$NL_HTTP_STATUS"
nl_wait 30 "the message queued in recovery is delivered" nl_delivered $C "$id1"
nl_wait 30 "371300's message is delivered" nl_delivered 371300 "$id2"
cmp -s "$W/r3.json" "$F/$C/registry.json" || nl_fail "the city's registry file is serial 3"
cmp -s "$W/r3.json" "$F/$C/journal.db.registry" || nl_fail "the city's last good copy is serial 3"

# ---- expiry while running; serial 5 reaches it through its upstream ----
mkreg "$W/r4.json" --valid-days 1 --now $(($(date +%s) - 86400 + 20))
install $C "$W/r4.json" >/dev/null
nl_wait 60 "recovery at serial 4's expiry" eval "grep -q 'entering recovery: registry serial 4 expired' '$LOG'"
post 371300
nl_has "held again" '"held":"node.recovery"' "$(cat "$W/p.body")"
id3=$(id_of "$W/p.body")
mkreg "$W/r5.json" --valid-days 60
install 320000 "$W/r5.json" >/dev/null
nl_wait 20 "serial 5 reaches the city from its upstream" eval '[ "$(served_serial $C)" = 5 ]'
nl_has "from the upstream" "registry updated from 320000" "$(cat "$LOG")"
nl_eq "left recovery twice" 2 "$(lines 'leaving recovery')"
nl_wait 30 "the message queued in the second recovery is delivered" nl_delivered $C "$id3"

# ---- own member suspended, then active again ----
mkreg "$W/r6.json" --member $C --status suspended
install $C "$W/r6.json" >/dev/null
health
nl_eq "/healthz suspended: 503" 503 "$NL_HTTP_STATUS"
nl_has "/healthz says suspended" '"status":"suspended"' "$(cat "$W/h.body")"
nl_has "an error line" "error: member $C is suspended in registry serial 6" "$(cat "$LOG")"
post 371300
nl_eq "submission while suspended: 202" 202 "$NL_HTTP_STATUS"
nl_has "held: member.suspended" '"held":"member.suspended"' "$(cat "$W/p.body")"
id4=$(id_of "$W/p.body")
sleep 4
nl_has "it stays queued" '"state":"queued"' "$(nl_status $C "$id4")"
nl_eq "the suspension is said once" 1 "$(lines "is suspended in registry")"
mkreg "$W/r7.json" --member $C --status active
install $C "$W/r7.json" >/dev/null
nl_has "leaving suspended" "leaving suspended: registry serial 7" "$(cat "$LOG")"
nl_wait 30 "the message queued while suspended is delivered" nl_delivered $C "$id4"

# ---- own member revoked ----
mkreg "$W/r8.json" --member $C --status revoked
install $C "$W/r8.json" >/dev/null
health
nl_eq "/healthz revoked: 503" 503 "$NL_HTTP_STATUS"
nl_has "/healthz says revoked" '"status":"revoked"' "$(cat "$W/h.body")"
nl_has "an error line" "error: member $C is revoked in registry serial 8" "$(cat "$LOG")"
post 371300
nl_eq "submission while revoked: 403" 403 "$NL_HTTP_STATUS"
nl_has "refused: member.revoked" '"error":"member.revoked"' "$(cat "$W/p.body")"

for m in 320000 370000 371300 $C; do nl_stop "$m"; done
nl_done
