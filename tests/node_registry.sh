#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_registry.sh - registry distribution and configuration checks.
# * A newer registry (re-signed 2-of-2 by the province CAs) published at
#   hub 320000 (file + SIGHUP) reaches the observing city 320300 within
#   5 s: its registry file and its served serial change.
# * An invalid one (one signature short, or tampered) and an older one are
#   refused, and the registry in force is kept.
# * After member 371300 is set "revoked" and that is published, 371300's
#   next handshake to 320300 is refused and its message is not delivered.
# * tongban-node -n: "configuration OK" for a good config; broken configs
#   give "file:line: message" and a non-zero exit.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320000,320300,371300
for m in 320000 320300 371300; do nl_start "$m"; done
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"

serial_of() { sed -n 's/.*"serial":\([0-9]*\).*/\1/p' "$1"; }
served_serial() { nl_http "$1" GET /v1/registry | sed -n 's/.*"serial":\([0-9]*\).*/\1/p'; }
city_has() { [ "$(serial_of "$F/320300/registry.json")" = "$1" ] && [ "$(served_serial 320300)" = "$1" ]; }
reg() { "$TB" registry "$@" >/dev/null 2>"$W/reg.err" || nl_fail "tongban registry $*" "exit 0" "$(cat "$W/reg.err")"; }

# publish FILE: the hub's registry file, then SIGHUP
publish() {
	cp "$1" "$F/320000/registry.json"
	kill -HUP "$(nl_pid 320000)"
}

nl_eq "city starts with serial 1" 1 "$(served_serial 320300)"
# let the city establish its observation of the hub (it re-checks every 3 s)
sleep 1

# ---- a newer registry reaches the city within 5 s ----
cp "$F/registry.json" "$W/r2.json"
reg set "$W/r2.json" --valid-days 20
reg sign "$W/r2.json" $CA1
reg sign "$W/r2.json" $CA2
nl_eq "new registry serial" 2 "$(serial_of "$W/r2.json")"
"$TB" registry verify "$W/r2.json" --trust "$F/trust.json" >/dev/null || nl_fail "r2 verifies"
t0=$(date +%s%N)
publish "$W/r2.json"
nl_wait 10 "hub 320000 applies serial 2" eval '[ "$(served_serial 320000)" = 2 ]'
nl_wait 5 "registry serial 2 at the observing city 320300" city_has 2
ms=$((($(date +%s%N) - t0) / 1000000))
echo "serial 2 reached 320300 in $ms ms"
NL_CHECKS=$((NL_CHECKS + 1))
[ "$ms" -le 5000 ] || nl_fail "propagation time" "<= 5000 ms" "$ms ms"
cmp -s "$W/r2.json" "$F/320300/registry.json" || nl_fail "city's registry file is the published one"
if nl_have_coap_client; then
	nl_coap "$F/371300" get /fed/status 320300
	nl_has "/fed/status of 320300 names serial 2" '"registry_serial":2' "$(nl_coap_body)"
fi

# ---- invalid and older registries are refused, the current one kept ----
cp "$W/r2.json" "$W/r3bad.json"
reg set "$W/r3bad.json" --valid-days 21
reg sign "$W/r3bad.json" $CA1 # 1 of 2 required signatures
hup_refusals=$(grep -c 'registry not reloaded' "$W/320000.log")
publish "$W/r3bad.json"
nl_wait 5 "hub refuses a registry one signature short" \
	eval '[ "$(grep -c "registry not reloaded" "$W/320000.log")" -gt '"$hup_refusals"' ]'
nl_has "hub names the reason" reg.threshold "$(grep 'registry not reloaded' "$W/320000.log" | tail -n 1)"
nl_eq "hub keeps serial 2" 2 "$(served_serial 320000)"

cp "$W/r3bad.json" "$W/r3tampered.json"
reg sign "$W/r3tampered.json" $CA2
sed -i 's/"name":"Member 320300"/"name":"Member 320301"/' "$W/r3tampered.json"
hup_refusals=$(grep -c 'registry not reloaded' "$W/320000.log")
publish "$W/r3tampered.json"
nl_wait 5 "hub refuses a tampered registry" \
	eval '[ "$(grep -c "registry not reloaded" "$W/320000.log")" -gt '"$hup_refusals"' ]'
nl_has "tampered: reason" reg.bad-signature "$(grep 'registry not reloaded' "$W/320000.log" | tail -n 1)"

# no "sigs" member at all (required, [] when unsigned): refused, and the
# hub lives on (it crashed the parser: regression)
sed 's/,"sigs":\[[^]]*\]//' "$W/r3bad.json" >"$W/r3nosigs.json"
nl_has "test setup: no sigs member" '"serial"' "$(grep -v '"sigs"' "$W/r3nosigs.json")"
hup_refusals=$(grep -c 'registry not reloaded' "$W/320000.log")
publish "$W/r3nosigs.json"
nl_wait 5 "hub refuses a registry without sigs" \
	eval '[ "$(grep -c "registry not reloaded" "$W/320000.log")" -gt '"$hup_refusals"' ]'
nl_has "no sigs: reason" field.missing "$(grep 'registry not reloaded' "$W/320000.log" | tail -n 1)"
kill -0 "$(nl_pid 320000)" || nl_fail "hub alive after a registry without sigs"

hup_refusals=$(grep -c 'registry not reloaded' "$W/320000.log")
publish "$F/registry.json" # serial 1: older
nl_wait 5 "hub refuses an older registry" \
	eval '[ "$(grep -c "registry not reloaded" "$W/320000.log")" -gt '"$hup_refusals"' ]'
nl_has "older: reason" reg.serial-not-newer "$(grep 'registry not reloaded' "$W/320000.log" | tail -n 1)"
# the city too refuses an older one offered to it directly
cp "$F/registry.json" "$F/320300/registry.json"
kill -HUP "$(nl_pid 320300)"
nl_wait 5 "city refuses an older registry on SIGHUP" eval 'grep -q "registry not reloaded" "$W/320300.log"'
sleep 1
nl_eq "hub still serves serial 2" 2 "$(served_serial 320000)"
nl_eq "city keeps serial 2" 2 "$(served_serial 320300)"
cp "$W/r2.json" "$F/320300/registry.json"

# ---- revocation of a member reaches the city; its handshake is refused ----
id=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
nl_wait 15 "371300 -> 320300 delivered before the revocation" nl_delivered 371300 "$id"
cp "$W/r2.json" "$W/r4.json"
reg set "$W/r4.json" --member 371300 --status revoked
reg sign "$W/r4.json" $CA1
reg sign "$W/r4.json" $CA2
nl_eq "revoking registry serial" 3 "$(serial_of "$W/r4.json")"
publish "$W/r4.json"
nl_wait 5 "registry serial 3 at 320300" city_has 3
refused=$(grep -c 'handshake refused' "$W/320300.log")
# 371300 still believes itself active (it does not observe 320000)
kill -HUP "$(nl_pid 371300)" # no-op: its file is unchanged
id2=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
if nl_have_coap_client; then
	nl_coap "$F/371300" get /fed/status 320300
	nl_eq "revoked member's handshake: no answer" "" "$NL_CODE"
fi
nl_wait 15 "320300 logs the revoked member's refused handshake" \
	eval '[ "$(grep -c "handshake refused" "$W/320300.log")" -gt '"$refused"' ]'
nl_has "refusal names the status" "member 371300 is revoked" "$(grep 'handshake refused' "$W/320300.log" | tail -n 1)"
sleep 2
NL_CHECKS=$((NL_CHECKS + 1))
! nl_delivered 371300 "$id2" || nl_fail "a revoked member's message is not delivered" "not delivered" "$(nl_status 371300 "$id2")"
nl_eq "nothing from the revoked member after revocation" "$id" "$(nl_inbox_ids 320300)"

for m in 320000 320300 371300; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done

# ---- tongban-node -n ----
conf=$F/320300/node.conf
BAD=$F/320300/bad.conf # beside node.conf: the files it names are found
out=$("$TBN" -n -c "$conf" 2>&1) || nl_fail "tongban-node -n on a good config" "exit 0" "$out"
nl_has "tongban-node -n on a good config" "configuration OK" "$out"
# check_bad NAME EXPECTED_TEXT: the config $BAD is refused
check_bad() {
	local rc=0
	out=$("$TBN" -n -c "$BAD" 2>&1) || rc=$?
	[ "$rc" != 0 ] || nl_fail "$1: tongban-node -n exits non-zero" "non-zero" "0: $out"
	nl_has "$1: message" "$2" "$out"
	# (beside warnings, such as the registry's expiry within 30 days)
	nl_eq "$1: one line" 1 "$(printf '%s\n' "$out" | grep -v -c '^tongban-node: warning: ')"
	case "$out" in *"configuration OK"*) nl_fail "$1: not OK" ;; esac
}
mk() { sed "$1" "$conf" >"$BAD"; }
mk 's/^listen = .*/listen = 127.0.0.1:99999/'
check_bad "port out of range" "$BAD:3: listen"
mk '3a\
frobnicate = yes'
check_bad "unknown key" "$BAD:4: unknown key 'frobnicate'"
mk '3a\
this line has no equals sign'
check_bad "no '='" "$BAD:4:"
mk 's/^member_id = .*/member_id = 32030/'
check_bad "bad member id" "$BAD:2: member_id"
mk '$a\
max_message_size = 12'
check_bad "integer out of range" "$BAD:$(($(wc -l <"$conf") + 1)): max_message_size"
mk '$a\
peer_sessions = 65'
check_bad "peer_sessions above the sessions a node can keep" "$BAD:$(($(wc -l <"$conf") + 1)): peer_sessions"
mk '$a\
peer_sessions = 0'
check_bad "peer_sessions zero" "peer_sessions"
mk '$a\
listen = 127.0.0.1:1'
check_bad "key set twice" "set twice"
mk '/^cert = /d'
check_bad "required key missing" "required key 'cert'"
mk 's/^key = .*/key = nonexistent.key/'
check_bad "missing key file" "nonexistent.key"
mk 's/^api = .*/api = 0.0.0.0:1/'
check_bad "API not on loopback" "loopback"
nl_done
