#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_pg_burst.sh - a burst both ways through a member run as a
# pair on one PostgreSQL journal while one process of the pair is killed
# with -9 (issue 22, point 4).
#
# 371300 runs as processes A and B on a PostgreSQL server of the test's
# own, both endpoints listed for 371300 (A first); 320300 is the peer on
# SQLite.  BURST_N messages (default 4000: the issue's 2,000 each way;
# 2000 in a sanitizer build) are submitted in bulk, half
# 320300 -> 371300 and half A -> 320300, and A is killed with -9 at a
# random moment (0-0.9 s after it took its first submissions); 200 more
# 320300 -> 371300 follow the kill.  Asserts:
#   - every message delivered (receipt verified at its sender) and
#     stored exactly once at its receiver: 320300's journal and the
#     pair's database each hold every id once, nothing else;
#   - the peer reached B within 5 s of the kill (15 s in a sanitizer
#     build): the first message B stored from 320300 after the kill;
#   - B sent what A had taken but not delivered: A's lease on it ended
#     (PROTOCOL.md 9.6, TB_JOURNAL_LEASE_S).
# About 25 s on an idle machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"

pg_node_skip sqlite3
# the issue's 2,000 each way; a sanitizer build (several times slower)
# 1,000 each way
N=4000
if nl_sanitized; then
	N=2000
fi
N=${BURST_N:-$N}
HALF=$((N / 2))
nl_init
trap 'pg_stop; nl_cleanup' EXIT
pg_node_fed
nl_clone 371300 371300b
nl_endpoints 371300 371300b
nl_start 371300
nl_start 371300b
nl_start 320300

# bulk submissions of up to 200 control.ping messages, FROM -> TO; with
# QUIET set, a refused or unanswered one ends them (the process is dead)
body200() {
	local to=$1 body='[' i
	for ((i = 0; i < 200; i++)); do
		[ $i -gt 0 ] && body+=','
		body+="{\"type\":\"control.ping\",\"to\":\"$to\",\"ttl\":3600}"
	done
	printf '%s]' "$body"
}
B320=$(body200 320300)
B371=$(body200 371300)
submit() {
	local from=$1 to=$2 left=$3 k body
	while [ "$left" -gt 0 ]; do
		k=$((left > 200 ? 200 : left))
		if [ "$to" = 320300 ]; then body=$B320; else body=$B371; fi
		[ "$k" = 200 ] || nl_fail "BURST_N must be a multiple of 400"
		nl_http "$from" POST /v1/messages "$body" >"$W/submit.$from.out"
		case $NL_HTTP_STATUS in
		2??) ;;
		*) [ -n "${QUIET:-}" ] && return 0
		   nl_fail "bulk submit of $k $from -> $to" "2xx" "$NL_HTTP_STATUS $(cat "$W/submit.$from.out")" ;;
		esac
		left=$((left - k))
	done
}

submit 320300 371300 "$HALF" &
SUB1=$!
QUIET=1 submit 371300 320300 "$HALF" &
SUB2=$!
# a random moment once A has taken its first submissions
a_took() { [ "$(pg_sql "SELECT count(*) FROM outbound")" -gt 0 ]; }
nl_wait 30 "A taking submissions" a_took
sleep "0.$((RANDOM % 10))"
nl_kill9 371300
KILL_MS=$(date +%s%3N)
wait $SUB1 || nl_fail "the submissions to 371300"
# and 200 more after the kill: the peer has to find B for these
submit 320300 371300 200
HALF=$((HALF + 200))
# A's submissions end with A: those it answered 2xx are journalled
wait $SUB2 2>/dev/null
A_SUBMITTED=$(pg_sql "SELECT count(*) FROM outbound")
echo "A took $A_SUBMITTED of its $HALF before it was killed"
[ "$A_SUBMITTED" -gt 0 ] || nl_fail "A took some submissions before it died" "> 0" "$A_SUBMITTED"

BOUND=5000
SLOW=
if nl_sanitized; then
	BOUND=15000
	SLOW=1
fi
WAIT=${SLOW:+240}
WAIT=${WAIT:-120}
peer_done() { [ "$(nl_metric 320300 'tongban_messages_out_total{result="delivered"}')" -ge "$HALF" ]; }
pair_done() { [ "$(pg_sql "SELECT count(*) FROM outbound WHERE state = 0")" -eq 0 ]; }
nl_wait "$WAIT" "320300 confirms its $HALF" peer_done
nl_wait "$WAIT" "371300's database has every message it took delivered" pair_done
nl_eq "320300 counts each delivery once" "$HALF" \
	"$(nl_metric 320300 'tongban_messages_out_total{result="delivered"}')"
nl_eq "every message A took delivered" "$A_SUBMITTED" \
	"$(pg_sql "SELECT count(*) FROM outbound WHERE state = 1")"
nl_eq "371300's database stored each message from 320300 once" "$HALF" \
	"$(pg_sql "SELECT count(*) FROM inbound WHERE sender = '320300'")"
nl_eq "320300 stored each message from 371300 once" "$A_SUBMITTED" \
	"$(sqlite3 "$F/320300/journal.db" "SELECT count(*) FROM inbound WHERE sender = '371300'")"
nl_eq "no message of 371300 missing at 320300" 0 \
	"$(sqlite3 "$F/320300/journal.db" "SELECT count(*) FROM inbound WHERE sender = '371300'" |
		awk -v a="$A_SUBMITTED" '{ print a - $1 }')"

# the switch: the first message B stored from 320300 after the kill (the
# log's UTC ISO times compare as strings)
kill_iso=$(date -u -d "@$((KILL_MS / 1000)).$(printf %03d $((KILL_MS % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
ts=$(grep 'message received: .*peer=320300 .*outcome=stored' "$W/371300b.log" |
	awk -v k="$kill_iso" '$1 >= k { print $1; exit }')
first=
[ -n "$ts" ] && first=$(($(date -u -d "$ts" +%s%3N) - KILL_MS))
echo "B stored the first message from 320300 ${first:-never} ms after A was killed"
NL_CHECKS=$((NL_CHECKS + 1))
[ -n "$first" ] && [ "$first" -le "$BOUND" ] ||
	nl_fail "320300 reached B within $BOUND ms of the kill" "<= $BOUND" "${first:-never}"
nl_has "320300 logged the switch" "peer 371300: endpoint 1 of 2 failed" "$(cat "$W/320300.log")"
nl_done
