#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_lifecycle.sh - the registry's lifecycle on one node (issue 18
# points 1 and 4; docs/ADMIN.md "Operating states"), city 320300 of a dev
# federation, its hub not running (it needs none here):
# * a registry valid 10 days: one warning line at start, /healthz 200
#   "degraded" naming it; the line is not repeated every tick
#   (rate-limited: hourly, and at each change);
# * `tongban registry install` of one valid 2 days: applied by the
#   running node (no SIGHUP), an error-level line at once;
# * install refuses (one line, non-zero): one signature short, older
#   serial, expired, missing file, no --node;
# * a refused registry on SIGHUP leaves the one in force and its last good
#   copy (journal.db.registry); a restart with the refused file, and with
#   an older one, starts on the last good copy;
# * a registry expiring while the node runs: "entering recovery" at its
#   valid_until, /healthz 503 "recovery", a submission 202 "held":
#   "node.recovery" and queued; a newer registry installed: "leaving
#   recovery", /healthz 200;
# * journal unwritable (chattr +i on its WAL): /healthz 503 "journal",
#   writable again: 200;
# * clocks (faketime): the node 100 s slow accepts a registry issued "now"
#   within clock_skew 300; with clock_skew 60 one issued "now" is kept
#   (202 "pending", /healthz "degraded" naming it) and applied by itself
#   once the node's clock reaches issued - clock_skew;
# * faketime +340 days: the node certificate (365 days) within the
#   warning window: a warning line and /healthz "degraded: certificate".
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320000,320300,371300
C=320300
CONF=$F/$C/node.conf
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"
LOG=$W/$C.log

# mkreg OUT SET_ARGS...: a copy of the previous registry made ($PREV,
# starting with the federation's), changed by `registry set`, signed 2 of 2
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
serial_of() { sed -n 's/.*"serial":\([0-9]*\).*/\1/p' "$1"; }
served_serial() { nl_http $C GET /v1/registry | sed -n 's/.*"serial":\([0-9]*\).*/\1/p'; }
# health: /healthz's body to stdout (NL_HTTP_STATUS stays with the
# caller: call it as "health >FILE" or read $W/h.body)
health() { nl_http $C GET /healthz >"$W/h.body"; cat "$W/h.body"; }
# post BODY: POST /v1/messages; body in $W/p.body, status in NL_HTTP_STATUS
post() { nl_http $C POST /v1/messages "$1" >"$W/p.body"; }
# start_any [WRAPPER...]: starts the city, waits for its API (any health)
start_any() {
	"$@" "$TBN" -c "$CONF" >>"$LOG" 2>&1 &
	echo $! >"$W/pids/$C"
	nl_wait 20 "node $C answering /healthz" eval 'kill -0 $(nl_pid $C) && health >/dev/null && [ "$NL_HTTP_STATUS" != 0 ]'
}
lines() { grep -c "$1" "$LOG"; }
# fake OFFSET: the node's clock moved (libfaketime, through env so that
# the pid is the node's: SIGHUP and SIGTERM reach it; an ASan build is
# told that its runtime need not come first)
FAKELIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
fake() { echo env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 LD_PRELOAD=$FAKELIB FAKETIME=$1; }
[ -f "$FAKELIB" ] || { echo "SKIP: libfaketime not installed"; exit 77; }
install() { "$TB" registry install --node "$CONF" "$1" 2>"$W/inst.err"; }

# ---- near expiry: a warning line, degraded ----
mkreg "$W/r2.json" --valid-days 10
cp "$W/r2.json" "$F/$C/registry.json"
start_any
health >/dev/null
body=$(cat "$W/h.body")
nl_eq "/healthz near expiry: 200" 200 "$NL_HTTP_STATUS"
nl_has "/healthz degraded" '"status":"degraded"' "$body"
nl_has "/healthz names the registry" 'registry serial 2 expires in' "$body"
nl_wait 5 "a warning line" eval "grep -q 'warn: registry serial 2 expires in [0-9]* days' '$LOG'"
sleep 3 # three ticks
nl_eq "the warning is not repeated every tick" 1 "$(lines 'registry serial 2 expires in')"

# ---- install: applied by the running node, error level under 3 days ----
mkreg "$W/r3.json" --valid-days 2
out=$(install "$W/r3.json") || nl_fail "registry install r3" "exit 0" "$(cat "$W/inst.err")"
nl_has "install says the node applied it" "installed serial 3 in $F/$C/registry.json; the node applied it (state ok)" "$out"
nl_eq "served serial 3" 3 "$(served_serial)"
# (2 days to the second when the node applies it within the second the
# registry was made, 47 h and some minutes otherwise)
nl_wait 5 "an error-level line under 3 days" eval "grep -q -E 'error: registry serial 3 expires in (2 days|4[0-9] h)' '$LOG'"
cmp -s "$W/r3.json" "$F/$C/journal.db.registry" || nl_fail "the last good copy is serial 3"
cmp -s "$W/r3.json" "$F/$C/registry.json" || nl_fail "the registry file is serial 3"

# ---- install refuses bad input: one line on stderr, non-zero ----
# refused WHAT STATUS TEXT ARGS...
refused() {
	local what=$1 want=$2 text=$3 rc=0
	shift 3
	"$TB" registry install "$@" >"$W/inst.out" 2>"$W/inst.err" || rc=$?
	nl_eq "install $what: exit status" "$want" "$rc"
	nl_eq "install $what: one line on stderr" 1 "$(wc -l <"$W/inst.err")"
	nl_has "install $what: says why" "$text" "$(cat "$W/inst.err")"
}
cp "$W/r3.json" "$W/short.json"
"$TB" registry set "$W/short.json" --valid-days 20 >/dev/null
"$TB" registry sign "$W/short.json" $CA1 >/dev/null
refused "one signature short" 1 reg.threshold --node "$CONF" "$W/short.json"
refused "older serial" 1 "reg.serial-not-newer: serial 2, the node holds 3" --node "$CONF" "$W/r2.json"
cp "$W/r3.json" "$W/old.json"
"$TB" registry set "$W/old.json" --valid-days 1 --now $(($(date +%s) - 3 * 86400)) >/dev/null
"$TB" registry sign "$W/old.json" $CA1 >/dev/null && "$TB" registry sign "$W/old.json" $CA2 >/dev/null
refused "expired" 1 reg.expired --node "$CONF" "$W/old.json"
refused "missing file" 3 "$W/none.json" --node "$CONF" "$W/none.json"
refused "no --node" 2 "--node CONFIG is required" "$W/r3.json"
nl_eq "refusals leave serial 3 in force" 3 "$(served_serial)"
cmp -s "$W/r3.json" "$F/$C/registry.json" || nl_fail "refusals leave the registry file"

# ---- a registry refused on SIGHUP: the last good one stays, a restart works ----
cp "$W/short.json" "$F/$C/registry.json"
n0=$(lines 'SIGHUP: registry not reloaded')
kill -HUP "$(nl_pid $C)"
nl_wait 5 "SIGHUP refuses the registry" eval '[ "$(lines "SIGHUP: registry not reloaded")" -gt '"$n0"' ]'
nl_has "the refusal names the copy kept" "keeping serial 3 (its copy: $F/$C/journal.db.registry): reg.threshold" "$(grep 'SIGHUP: registry not reloaded' "$LOG" | tail -n 1)"
nl_eq "serial 3 in force" 3 "$(served_serial)"
cmp -s "$W/r3.json" "$F/$C/journal.db.registry" || nl_fail "the last good copy is still serial 3"
nl_stop $C
start_any
nl_has "restart on a refused file: the last good copy" "registry file $F/$C/registry.json refused (reg.threshold" "$(cat "$LOG")"
nl_eq "restart on a refused file: serial 3" 3 "$(served_serial)"
health >/dev/null
nl_eq "restart on a refused file: healthy" 200 "$NL_HTTP_STATUS"
nl_stop $C
cp "$W/r2.json" "$F/$C/registry.json"
start_any
nl_has "restart on an older file: the last good copy" "holds serial 2, the last good copy $F/$C/journal.db.registry serial 3: using the last good copy" "$(cat "$LOG")"
nl_eq "restart on an older file: serial 3" 3 "$(served_serial)"

# ---- expiry while running: recovery, queued, and out of it ----
now=$(date +%s)
PREV=$W/r3.json
mkreg "$W/r4.json" --valid-days 1 --now $((now - 86400 + 25)) # valid 25 s more
install "$W/r4.json" >/dev/null || nl_fail "registry install r4" "exit 0" "$(cat "$W/inst.err")"
nl_eq "serial 4 in force" 4 "$(served_serial)"
nl_wait 60 "entering recovery at valid_until" eval "grep -q 'error: entering recovery: registry serial 4 expired at' '$LOG'"
health >/dev/null
body=$(cat "$W/h.body")
nl_eq "/healthz in recovery: 503" 503 "$NL_HTTP_STATUS"
nl_has "/healthz says recovery" '"status":"recovery"' "$body"
post '{"type":"control.ping","to":"371300"}'
body=$(cat "$W/p.body")
nl_eq "submission in recovery: 202" 202 "$NL_HTTP_STATUS"
nl_has "the answer says why it waits" '"held":"node.recovery"' "$body"
id=$(printf '%s' "$body" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
nl_has "its status: queued, held" '"state":"queued"' "$(nl_status $C "$id")"
nl_has "its status names the state" '"held":"node.recovery"' "$(nl_status $C "$id")"
nl_has "the registry summary names the state" '"state":"recovery"' "$(nl_http $C GET /v1/registry)"
mkreg "$W/r5.json" --valid-days 60
out=$(install "$W/r5.json") || nl_fail "registry install r5" "exit 0" "$(cat "$W/inst.err")"
nl_has "install out of recovery" "the node applied it (state ok)" "$out"
nl_has "leaving recovery logged" "leaving recovery: registry serial 5" "$(cat "$LOG")"
health >/dev/null
body=$(cat "$W/h.body")
nl_eq "/healthz after recovery: 200 ok" "200 {\"status\":\"ok\"}" "$NL_HTTP_STATUS $body"
nl_eq "recovery entered once" 1 "$(lines 'entering recovery')"

# ---- journal unwritable ----
if chattr +i "$F/$C/journal.db-wal" 2>/dev/null; then
	trap 'chattr -i "$F/$C/journal.db-wal" 2>/dev/null; nl_cleanup' EXIT
	nl_wait 15 "/healthz 503 with the journal not writable" eval 'health >/dev/null; grep -q "\"status\":\"journal\"" "$W/h.body" && [ "$NL_HTTP_STATUS" = 503 ]'
	nl_has "a line says so" "error: journal not writable: $F/$C/journal.db-wal" "$(cat "$LOG")"
	chattr -i "$F/$C/journal.db-wal"
	nl_wait 15 "/healthz 200 with the journal writable again" eval 'health >/dev/null && [ "$NL_HTTP_STATUS" = 200 ]'
else
	echo "note: chattr +i not available here: journal writability check skipped"
fi
nl_stop $C

# ---- clocks: 100 s slow (faketime) ----
now=$(date +%s)
mkreg "$W/r6.json" --valid-days 60 --now $((now - 60)) # 40 s ahead of the node
start_any $(fake -100)
out=$(install "$W/r6.json") || nl_fail "install r6 on a slow node" "exit 0" "$(cat "$W/inst.err")"
nl_has "40 s ahead, within clock_skew 300: applied" "the node applied it (state ok)" "$out"
printf 'clock_skew = 60\n' >>"$CONF"
kill -HUP "$(nl_pid $C)"
nl_wait 5 "clock_skew 60 applied" eval "grep -q 'clock_skew 60' '$LOG'"
mkreg "$W/r7.json" --valid-days 60 # issued now: 100 s ahead of the node
out=$(install "$W/r7.json") || nl_fail "install r7 on a slow node" "exit 0" "$(cat "$W/inst.err")"
nl_has "100 s ahead, beyond clock_skew 60: kept" "the node keeps it until it is valid" "$out"
nl_eq "serial 6 still in force" 6 "$(served_serial)"
health >/dev/null
body=$(cat "$W/h.body")
nl_has "/healthz names the registry waiting" "registry serial 7 waits until" "$body"
nl_has "the log says it is kept" "registry serial 7 is not valid yet" "$(cat "$LOG")"
nl_wait 75 "serial 7 applied by itself" eval '[ "$(served_serial)" = 7 ]'
nl_has "applied line" "registry serial 7 applied" "$(cat "$LOG")"
nl_stop $C

# ---- the certificate near its expiry (faketime +340 days) ----
PREV=$W/r7.json
mkreg "$W/r8.json" --valid-days 400
cp "$W/r8.json" "$F/$C/registry.json"
start_any $(fake +340d)
health >/dev/null
body=$(cat "$W/h.body")
nl_eq "/healthz 340 days on: 200" 200 "$NL_HTTP_STATUS"
nl_has "degraded: the certificate" "certificate expires in 2" "$body"
nl_wait 5 "a certificate warning line" eval "grep -q 'warn: certificate .*node-chain.pem expires in 2' '$LOG'"
nl_stop $C
nl_done
