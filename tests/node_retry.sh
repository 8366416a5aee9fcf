#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_retry.sh - successive retries towards a failing peer are
# spaced exponentially (issue 18, point 3: every retry path once passed
# attempt 1 to the backoff, so a failing peer was retried about once a
# second however long it failed).
#
# 320300 sends one message to 371300, which is not running (its port is
# unreachable).  With retry_min_ms 2000 and retry_max_ms 32000 the delays
# are 2, 4, 8, 16, 32 s, each +-25 %.  The attempts are timed from
# 320300's tongban_peer_failures_total{peer="371300",reason="unreachable"},
# sampled every 0.25 s for 70 s: each gap must be longer than the one
# before (by 10 %: jitter and the journal's whole seconds leave at least
# 20 %), the last at least 10 s, and there are at most 7 attempts (the
# bug gave about 70).  Then 371300 starts and the message is delivered
# promptly once its backoff ends, which resets the peer.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300
printf 'retry_min_ms = 2000\nretry_max_ms = 32000\nbreaker_open_ms = 100\n' >>"$(nl_conf 320300)"
nl_start 320300
id=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
M='tongban_peer_failures_total{peer="371300",reason="unreachable"}'
t0=$(date +%s%N)
last=0
times=()
while [ $((($(date +%s%N) - t0) / 1000000)) -lt 70000 ]; do
	v=$(nl_metric 320300 "$M")
	v=${v:-0}
	if [ "$v" -gt "$last" ]; then
		times+=($((($(date +%s%N) - t0) / 1000000)))
		last=$v
	fi
	sleep 0.25
done
echo "attempts at (ms): ${times[*]} (count $last)"
NL_CHECKS=$((NL_CHECKS + 1))
[ "$last" -ge 4 ] || nl_fail "attempts to the unreachable peer in 70 s" ">= 4" "$last"
[ "$last" -le 7 ] || nl_fail "attempts to the unreachable peer in 70 s (exponential backoff)" "<= 7" "$last: ${times[*]}"
prev=0
for ((i = 1; i < ${#times[@]}; i++)); do
	gap=$((times[i] - times[i - 1]))
	if [ "$prev" -gt 0 ] && [ $((gap * 10)) -lt $((prev * 11)) ]; then
		nl_fail "retry gaps grow" "gap $i longer than $prev ms by 10 %" "$gap ms (attempts at ${times[*]})"
	fi
	prev=$gap
done
NL_CHECKS=$((NL_CHECKS + 1))
[ "$prev" -ge 10000 ] || nl_fail "the last gap" ">= 10000 ms" "$prev ms (attempts at ${times[*]})"
! nl_delivered 320300 "$id" || nl_fail "not delivered while the peer is down"
nl_start 371300
nl_wait 60 "delivered once the peer is back (within its backoff of at most 40 s)" nl_delivered 320300 "$id"
nl_eq "peer up again" 1 "$(nl_metric 320300 'tongban_peer_up{peer="371300"}')"
nl_has "320300 tells the peer is back" "peer 371300: reachable again" "$(cat "$W/320300.log")"
nl_done
