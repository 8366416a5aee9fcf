#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_rotate.sh - a node's certificate, key and message-signing
# key rotate on SIGHUP, without a restart and without losing a message
# (issue 18, point 6; docs/ADMIN.md "Rotating a node's certificate and
# keys").
# Xuzhou (320300) gets a new P-256 key and a certificate for it from the
# province CA (`tongban node init`, `tongban ca issue`); the registry
# lists the new key beside the old one (`tongban registry key --add`,
# signed by both authorities) and both nodes are given it.  While 1,000
# messages flow each way (2,000), the new files are put in place of the
# old and 320300 is sent SIGHUP.  Then:
# * every message is delivered exactly once: each receiver's inbox holds
#   exactly the ids its peer was given, each once, and the senders count
#   1,000 delivered each;
# * 320300 logs the rotation (the new certificate's serial);
# * new DTLS sessions present the new certificate: a DTLS client
#   (gnutls-cli) connecting to 320300 afterwards gets it, and Linyi
#   (371300) logs 320300's new key for the sessions 320300 opened since;
# * messages submitted after the rotation are signed with the new key
#   (their envelopes name its key id) and accepted;
# * a rotation that fails the checks of start-up (a key that is not the
#   certificate's) keeps the keys in use: one error line, and messages
#   still flow.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300
# the nodes log which certificate each DTLS session presents
for m in 320300 371300; do echo "log_level = debug" >>"$F/$m/node.conf"; done
for m in 320300 371300; do echo "retry_min_ms = 100" >>"$F/$m/node.conf"; done
nl_start 320300
nl_start 371300

# ---- the new key, certificate and registry ----
R=$W/rot
out=$("$TB" node init --dir "$R" --id 320300 --name "Xuzhou" --endpoint "coaps://127.0.0.1:$(nl_port 320300)" 2>&1) ||
	nl_fail "node init" "exit 0" "$out"
out=$("$TB" ca issue --dir "$F/ca-320000" --csr "$R/node.csr" --out "$R/node.crt" 2>&1) ||
	nl_fail "ca issue" "exit 0" "$out"
cat "$R/node.crt" "$F/ca-320000/ca.crt" >"$R/node-chain.pem"
newkid=$("$TB" key id "$R/node.crt" 2>/dev/null | grep -o '[0-9a-f]\{64\}' | head -n 1)
oldkid=$("$TB" key id "$F/320300/node.crt" 2>/dev/null | grep -o '[0-9a-f]\{64\}' | head -n 1)
[ -n "$newkid" ] && [ "$newkid" != "$oldkid" ] || nl_fail "key ids" "two different" "$oldkid / $newkid"
cp "$F/registry.json" "$W/reg2.json"
out=$("$TB" registry key "$W/reg2.json" --add "$R/node.crt" 2>&1) || nl_fail "registry key --add" "exit 0" "$out"
for ca in 320000 370000; do
	out=$("$TB" registry sign "$W/reg2.json" --key "$F/ca-$ca/ca.key" --cert "$F/ca-$ca/ca.crt" 2>&1) ||
		nl_fail "registry sign ($ca)" "exit 0" "$out"
done
for m in 371300 320300; do
	cp "$W/reg2.json" "$F/$m/registry.json"
	kill -HUP "$(nl_pid "$m")"
	nl_wait 10 "$m applies serial 2" grep -q "registry serial 2 applied" "$W/$m.log"
done
nl_wait 10 "320300: keys unchanged on a SIGHUP without new files" \
	grep -q "SIGHUP: certificate and keys unchanged" "$W/320300.log"

# ---- the burst, and the rotation in its middle ----
# bulk TO TAG N: a JSON array of N case.submit requests to TO
bulk() {
	local i sep=""
	printf '['
	for ((i = 0; i < $3; i++)); do
		printf '%s{"type":"case.submit","to":"%s","service":"hukou.transfer","body":{"applicant":{"idhash":"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0","kind":"person"},"case_id":"%s-%d","materials":[],"mode":"online","service":"hukou.transfer"}}' \
			"$sep" "$1" "$2" "$i"
		sep=,
	done
	printf ']'
}
# submit FROM TO TAG: 100 messages; their ids appended to $W/sent.FROM
submit() {
	local out
	out=$(nl_http "$1" POST /v1/messages "$(bulk "$2" "$3" 100)") || nl_fail "submit $3 to $1"
	case "$out" in *'"state":"queued"'*) ;; *) nl_fail "submit $3 through $1" queued "$out" ;; esac
	printf '%s' "$out" | grep -o '[0-9a-f]\{32\}' >>"$W/sent.$1"
}
: >"$W/sent.320300"
: >"$W/sent.371300"
for b in 0 1 2 3 4; do
	submit 320300 371300 "x$b"
	submit 371300 320300 "l$b"
done
install -m 600 "$R/node.key" "$F/320300/node.key"
cp "$R/node-chain.pem" "$F/320300/node-chain.pem"
cp "$R/node.crt" "$F/320300/node.crt"
kill -HUP "$(nl_pid 320300)"
for b in 5 6 7 8 9; do
	submit 320300 371300 "x$b"
	submit 371300 320300 "l$b"
done
nl_wait 20 "320300 logs the rotation" grep -q "SIGHUP: rotated: new certificate serial" "$W/320300.log"
serial=$("$TB" cert show "$R/node.crt" | sed -n 's/^serial: *//p')
nl_has "the rotation names the new certificate's serial" "serial $serial " "$(grep 'SIGHUP: rotated' "$W/320300.log")"
nl_has "... and the new signing key" "message-signing key ${newkid:0:16}... (new)" "$(grep 'SIGHUP: rotated' "$W/320300.log")"

# ---- every message delivered, once ----
# delivered ID N: ID counts N messages delivered
delivered() { [ "$(nl_metric "$1" 'tongban_messages_out_total{result="delivered"}')" = "$2" ]; }
nl_wait 120 "320300 delivered its 1000" delivered 320300 1000
nl_wait 120 "371300 delivered its 1000" delivered 371300 1000
# inbox_ids ID: every id in ID's inbox (pages of 1000)
inbox_ids() {
	local after=0 page
	while :; do
		page=$(nl_http "$1" GET "/v1/inbox?limit=1000&after=$after")
		printf '%s' "$page" | grep -o '{"seq":[0-9]*,"id":"[0-9a-f]*"' | sed 's/.*"id":"//; s/"$//'
		after=$(printf '%s' "$page" | grep -o '{"seq":[0-9]*' | tail -n 1 | cut -d: -f2)
		[ -n "$after" ] || break
	done
}
for pair in "320300 371300" "371300 320300"; do
	set -- $pair
	nl_eq "ids sent by $1: 1000, all different" 1000 "$(sort -u "$W/sent.$1" | wc -l)"
	inbox_ids "$2" | sort >"$W/inbox.$2"
	nl_eq "$2's inbox holds each id $1 sent, once" "$(sort "$W/sent.$1")" "$(cat "$W/inbox.$2")"
	nl_eq "$2 accepted 1000" 1000 "$(nl_metric "$2" 'tongban_messages_in_total{result="accepted"}')"
done

# ---- new sessions present the new certificate ----
# a DTLS client's handshake with 320300 now
if command -v gnutls-cli >/dev/null 2>&1; then
	"$NL_TIMEOUT" 20 gnutls-cli --udp -p "$(nl_port 320300)" 127.0.0.1 --x509cafile "$F/cas.pem" \
		--x509certfile "$F/371300/node-chain.pem" --x509keyfile "$F/371300/node.key" \
		--verify-hostname 127.0.0.1 --insecure --print-cert </dev/null >"$W/gnutls.out" 2>&1
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$W/gnutls.out" |
		sed -n '1,/-----END CERTIFICATE-----/p' >"$W/presented.pem"
	nl_eq "a new DTLS session with 320300 gets the new certificate" \
		"$(sed -n '/BEGIN/,/END/p' "$R/node.crt")" "$(cat "$W/presented.pem")"
fi
nl_ok
# sessions 320300 opened since: after a pause, so that its sessions are
# idle and replaced, one more message each way
sleep 1
submit 320300 371300 after
id=$(head -n 1 <(tail -n 100 "$W/sent.320300"))
nl_wait 60 "the messages after the rotation delivered" delivered 320300 1100
nl_has "371300 saw 320300's new certificate" \
	"session with 320300: its certificate's key ${newkid:0:16}..." "$(grep 'session with 320300' "$W/371300.log")"
# inbox_find ID MSGID: MSGID's line in ID's inbox (pages of 1000)
inbox_find() {
	local after=0 page
	while :; do
		page=$(nl_http "$1" GET "/v1/inbox?limit=1000&after=$after")
		printf '%s' "$page" | sed 's/},{"seq":/}\n{"seq":/g' | grep "\"id\":\"$2\"" && return 0
		after=$(printf '%s' "$page" | grep -o '{"seq":[0-9]*' | tail -n 1 | cut -d: -f2)
		[ -n "$after" ] || return 1
	done
}
env=$(inbox_find 371300 "$id")
nl_has "a message sealed after the rotation names the new key" "$newkid" "$env"

# ---- a rotation that fails the checks keeps the keys in use ----
install -m 600 "$F/371300/node.key" "$F/320300/node.key"
kill -HUP "$(nl_pid 320300)"
nl_wait 10 "a refused rotation is logged" grep -q "SIGHUP: certificate and keys not rotated" "$W/320300.log"
nl_eq "in one error line" 1 "$(grep -c 'not rotated' "$W/320300.log")"
nl_has "naming the reason" "does not certify the key in" "$(grep 'not rotated' "$W/320300.log")"
submit 320300 371300 refused
nl_wait 60 "messages still flow with the keys kept" delivered 320300 1200
for m in 320300 371300; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done
nl_done
