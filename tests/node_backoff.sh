#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_backoff.sh - a revoked member left running does not hammer
# its peers (issue 18, point 3).
#
# Member 371300 is revoked in the registry its peers 320300 and 341300
# hold; it keeps its own older registry (it observes no hub), so it still
# believes itself active, and it has messages queued for both.  The
# issue's measure is 10 minutes with the default tunables (retry_min_ms
# 200, retry_max_ms 60000, breaker_open_ms 10000): at most 15 handshake
# attempts per peer, a bounded number of open fds, and at most 12 lines
# about it in each peer's log.  TIME IS SCALED BY 1/10 here: every node
# runs with retry_min_ms 20, retry_max_ms 6000 and breaker_open_ms 1000,
# and the test watches for 60 s, which is the same number of backoff
# steps and of rate-limit windows (one window is retry_max_ms).
#
# Handshakes are counted on the victims' side: each peer's
# tongban_handshake_refused_total.  The fds of 371300 are counted in
# /proc/PID/fd every 2 s.  Afterwards the revoked member's
# per-peer metrics show the peers down with refused handshakes.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300,341300
CA1="--key $F/ca-320000/ca.key --cert $F/ca-320000/ca.crt"
CA2="--key $F/ca-370000/ca.key --cert $F/ca-370000/ca.crt"
reg() { "$TB" registry "$@" >/dev/null 2>"$W/reg.err" || nl_fail "tongban registry $*" "exit 0" "$(cat "$W/reg.err")"; }

SECS=${BACKOFF_SECS:-60}
for m in 320300 371300 341300; do
	printf 'retry_min_ms = 20\nretry_max_ms = 6000\nbreaker_open_ms = 1000\n' >>"$(nl_conf "$m")"
done
# the peers hold a registry revoking 371300; 371300 keeps serial 1
cp "$F/registry.json" "$W/r2.json"
reg set "$W/r2.json" --member 371300 --status revoked
reg sign "$W/r2.json" $CA1
reg sign "$W/r2.json" $CA2
cp "$W/r2.json" "$F/320300/registry.json"
cp "$W/r2.json" "$F/341300/registry.json"
for m in 320300 371300 341300; do nl_start "$m"; done

refused() { nl_metric "$1" tongban_handshake_refused_total; }
fds() { ls "/proc/$(nl_pid 371300)/fd" | wc -l; }
fd0=$(fds)
ids=()
for i in 1 2 3; do
	ids+=("$(nl_send 371300 320300 case.submit hukou.transfer)") || exit 1
	ids+=("$(nl_send 371300 341300 case.submit hukou.transfer)") || exit 1
done
t0=$(date +%s)
maxfd=$fd0
while [ $(($(date +%s) - t0)) -lt "$SECS" ]; do
	f=$(fds)
	[ "$f" -gt "$maxfd" ] && maxfd=$f
	sleep 2
done
r1=$(refused 320300)
r2=$(refused 341300)
l1=$(grep -c 371300 "$W/320300.log")
l2=$(grep -c 371300 "$W/341300.log")
echo "in $SECS s: handshakes refused by 320300: $r1, by 341300: $r2; lines about 371300: $l1, $l2; fds of 371300: $fd0 at start, at most $maxfd"

NL_CHECKS=$((NL_CHECKS + 1))
[ "$r1" -ge 2 ] && [ "$r2" -ge 2 ] || nl_fail "the revoked member kept trying (backoff, not silence)" ">= 2 refusals each" "$r1, $r2"
[ "$r1" -le 15 ] || nl_fail "handshakes of the revoked member at 320300" "<= 15" "$r1"
[ "$r2" -le 15 ] || nl_fail "handshakes of the revoked member at 341300" "<= 15" "$r2"
NL_CHECKS=$((NL_CHECKS + 1))
[ "$l1" -ge 1 ] || nl_fail "320300 says why it refuses" "a line naming 371300" "none"
[ "$l1" -le 12 ] || nl_fail "lines about 371300 in 320300's log" "<= 12" "$l1: $(grep 371300 "$W/320300.log")"
[ "$l2" -le 12 ] || nl_fail "lines about 371300 in 341300's log" "<= 12" "$l2: $(grep 371300 "$W/341300.log")"
nl_has "refusal names the status" "member 371300 is revoked" "$(grep 'handshake refused' "$W/320300.log" | tail -n 1)"
# fds: the start's, plus per peer the session of the attempt under way and
# those of attempts refused in the last 5 s (released then; without that
# release, one per attempt for 186 s: 25 more here)
NL_CHECKS=$((NL_CHECKS + 1))
[ "$maxfd" -le $((fd0 + 12)) ] || nl_fail "open fds of the revoked member" "<= $((fd0 + 12))" "$maxfd"
# the revoked member's own log: rate-limited too
l3=$(grep -c 'peer 320300' "$W/371300.log")
[ "$l3" -le 12 ] || nl_fail "371300's lines about peer 320300" "<= 12" "$l3"
nl_has "371300 says why" "handshake refused" "$(grep 'peer 320300' "$W/371300.log" | head -n 1)"
# per-peer metrics on the revoked member
nl_eq "371300: peer 320300 down" 0 "$(nl_metric 371300 'tongban_peer_up{peer="320300"}')"
f=$(nl_metric 371300 'tongban_peer_failures_total{peer="320300",reason="handshake_refused"}')
NL_CHECKS=$((NL_CHECKS + 1))
[ "${f:-0}" -ge 2 ] || nl_fail "371300 counts refused handshakes of 320300" ">= 2" "${f:-none}"
for id in "${ids[@]}"; do
	! nl_delivered 371300 "$id" || nl_fail "nothing of the revoked member delivered" "queued" "$(nl_status 371300 "$id")"
done
nl_ok
# the per-peer metrics are valid Prometheus text
if command -v promtool >/dev/null 2>&1; then
	{ nl_http 371300 GET /metrics; echo; } >"$W/metrics.txt"
	promtool check metrics <"$W/metrics.txt" >"$W/promtool.out" 2>&1 ||
		nl_fail "promtool check metrics" "no problem" "$(cat "$W/promtool.out")"
	nl_ok
fi
nl_done
