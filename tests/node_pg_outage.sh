#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_pg_outage.sh - PostgreSQL stopped in the middle of a burst
# (issue 22, point 4), then hung: member 371300's journal is a database
# on a server of the test's own (tests/pg_lib.sh), 320300 keeps SQLite.
#
# The burst: both sides submit bulks of 10 case.submit to each other as
# fast as the API takes them until each has BURST acknowledged (default
# 600 each way) and the outage is over.  Once a third of each side's
# burst is in, the server is stopped (`pg_ctl stop -m fast`) for OUTAGE_S
# (the issue's 20 s; 8 s in a sanitizer build) and started again.  While
# it is down, 371300 stays up; its local API answers submissions 503
# "journal.unavailable"; /healthz answers 503 "journal" saying the
# database cannot be reached (never libpq's pipeline-mode complaint);
# 320300's exchanges are answered 5.03 journal.unavailable with Max-Age
# full_retry and 320300 holds its messages for it (its log says so, and
# its attempts during the outage stay within OUTAGE_S / full_retry plus
# its parallel exchanges).  Afterwards every submission answered 202 on
# either side is delivered and stored by its receiver exactly once;
# every answer was 202 or 503; the audit chain verifies.
#
# Then the server hangs instead (its postmaster stopped with SIGSTOP,
# 371300's session ended): a reconnection gets no answer, as from a host
# that drops packets.  For HUNG_S (8) s /healthz answers within 1 s
# each time (3 s in a sanitizer build): reconnecting never blocks the
# node's loop.  Then it recovers and takes a submission again.
# Scaled: retry_max_ms 2000, breaker_open_ms 1000, full_retry 3, so
# that the peer's hold after the outage stays short.  About 55 s on an
# idle machine (TB_PG_OUTAGE_S, TB_PG_BURST override).
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"

pg_node_skip sqlite3
nl_init
SLOW=
if nl_sanitized; then
	SLOW=1
fi
OUTAGE_S=${TB_PG_OUTAGE_S:-${SLOW:+8}}
OUTAGE_S=${OUTAGE_S:-20}
BURST=${TB_PG_BURST:-${SLOW:+300}}
BURST=${BURST:-600}
FULL_RETRY=3
HUNG_S=8
HEALTH_MS=${SLOW:+3000}
HEALTH_MS=${HEALTH_MS:-1000}
LOADERS=()
PM=
trap '[ -n "$PM" ] && kill -CONT "$PM" 2>/dev/null; for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null; done; pg_stop; nl_cleanup' EXIT
pg_node_fed
for m in 320300 371300; do
	printf 'retry_min_ms = 100\nretry_max_ms = 2000\nbreaker_open_ms = 1000\nfull_retry = %d\n' \
		"$FULL_RETRY" >>"$(nl_conf "$m")"
done
nl_start 320300
nl_start 371300
SQ="$F/320300/journal.db"

# bulk TO TAG: ten case.submit requests to TO, fresh case ids
bulk() {
	local i sep=""
	printf '['
	for ((i = 0; i < 10; i++)); do
		printf '%s{"type":"case.submit","to":"%s","service":"hukou.transfer","body":{"applicant":{"idhash":"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0","kind":"person"},"case_id":"c%s-%d","materials":[],"mode":"online","service":"hukou.transfer"}}' \
			"$sep" "$1" "$2" "$i"
		sep=,
	done
	printf ']'
}

# burst FROM TO: bulks as fast as FROM's API takes them until BURST are
# acknowledged and $W/resumed exists (or $W/stop); answer k goes to
# $W/load.FROM/k.out with its status in k.status, the count acknowledged
# so far to $W/acked.FROM.n; $W/done.FROM at the end
burst() {
	local k=0 acked=0 n
	mkdir -p "$W/load.$1"
	while [ ! -e "$W/stop" ] && { [ "$acked" -lt "$BURST" ] || [ ! -e "$W/resumed" ]; }; do
		k=$((k + 1))
		nl_http "$1" POST /v1/messages "$(bulk "$2" "$1-$k")" >"$W/load.$1/$k.out"
		echo "${NL_HTTP_STATUS:-0}" >"$W/load.$1/$k.status"
		if [ "${NL_HTTP_STATUS:-0}" = 202 ]; then
			n=$(grep -o '[0-9a-f]\{32\}' "$W/load.$1/$k.out" | wc -l)
			acked=$((acked + n))
			echo "$acked" >"$W/acked.$1.n"
		else
			sleep 0.2 # refused: the journal is down
		fi
	done
	touch "$W/done.$1"
}
burst 371300 320300 &
LOADERS+=($!)
burst 320300 371300 &
LOADERS+=($!)

# mid-burst: a third of each side's burst acknowledged
third() { [ "$(cat "$W/acked.$1.n" 2>/dev/null || echo 0)" -ge $((BURST / 3)) ]; }
nl_wait 60 "a third of 371300's burst acknowledged" third 371300
nl_wait 60 "a third of 320300's burst acknowledged" third 320300
echo "# database stopped with $(cat "$W/acked.371300.n") + $(cat "$W/acked.320300.n") of 2 x $BURST acknowledged, for $OUTAGE_S s"
pid=$(nl_pid 371300)
pg_stop
t0=$(date +%s)
# the API refuses with a reason while the database is down
nl_wait 10 "a submission to 371300 refused 503 while the database is down" \
	grep -l '"journal.unavailable"' -r "$W/load.371300"
for _ in $(seq 20); do
	nl_http 371300 GET /healthz >"$W/health"
	[ "$NL_HTTP_STATUS" = 503 ] && break
	sleep 0.3
done
h=$(cat "$W/health")
echo "# /healthz while the database is down: $NL_HTTP_STATUS $h"
nl_eq "/healthz status while the database is down" 503 "$NL_HTTP_STATUS"
nl_has "/healthz names the journal" '"status":"journal"' "$h"
nl_has "/healthz says the database cannot be reached" "postgresql" "$h"
nl_has "/healthz says the database cannot be reached" "cannot reach the database" "$h"
r=$(grep -h '"journal.unavailable"' "$W"/load.371300/*.out | head -n 1)
echo "# a submission while the database is down: $r"
# the transaction failed, not one message of the bulk: no "message N:"
case $r in
*'"detail":"message '*) nl_fail "the refusal blames no one message of the bulk" "journal: ..." "$r" ;;
*) nl_ok ;;
esac
# the peer's exchanges: 5.03 journal.unavailable with Max-Age, held for it
nl_wait 15 "320300 holds its messages for 371300 (5.03 journal.unavailable, Max-Age)" \
	grep -q 'peer 371300 cannot take messages now (journal.unavailable' "$W/320300.log"
grep -h 'peer 371300 cannot take messages now' "$W/320300.log" | head -n 1 | cut -c1-240 | sed 's/^/# /'
sleep $((OUTAGE_S - ($(date +%s) - t0)))
kill -0 "$pid" 2>/dev/null || nl_fail "371300 still running after ${OUTAGE_S} s without its database"
nl_ok
# the peer's attempts during the outage: bounded by the Max-Age hold
tries=$(grep -c 'refused a request: journal.unavailable' "$W/371300.log")
bound=$((OUTAGE_S / FULL_RETRY + 8))
echo "# 320300's exchanges refused by 371300 during the ${OUTAGE_S} s outage: $tries (bound $bound)"
[ "$tries" -ge 1 ] && [ "$tries" -le "$bound" ] ||
	nl_fail "320300's attempts during the outage bounded by its hold" "1..$bound" "$tries"
nl_ok
m=$(nl_metric 371300 tongban_journal_unavailable_refused_total)
[ "${m:-0}" -ge 1 ] || nl_fail "tongban_journal_unavailable_refused_total counts the refused envelopes" ">= 1" "${m:-none}"
nl_ok
! grep -q 'pipeline mode' "$W/371300.log" ||
	nl_fail "371300's log blames the database's absence, not pipeline mode" "" \
		"$(grep -m1 'pipeline mode' "$W/371300.log")"
nl_ok
pg_resume || nl_fail "PostgreSQL starts again"
touch "$W/resumed"
nl_wait 20 "/healthz of 371300 ok again after the database came back" nl_healthy 371300
nl_wait 120 "both bursts complete after the outage" test -e "$W/done.371300" -a -e "$W/done.320300"
wait "${LOADERS[@]}"
LOADERS=()
[ "$(nl_pid 371300)" = "$pid" ] && kill -0 "$pid" || nl_fail "371300 ran through the outage (same process)"
nl_ok

# every answer was 202 or 503; the 202's ids are the acknowledged ones
for m in 320300 371300; do
	bad=$(cat "$W"/load.$m/*.status | grep -cv '^20[02]$\|^503$')
	nl_eq "answers of $m other than 202 and 503" 0 "$bad"
	for f in "$W"/load.$m/*.status; do
		[ "$(cat "$f")" = 202 ] && grep -o '[0-9a-f]\{32\}' "${f%.status}.out"
	done | sort >"$W/acked.$m"
	echo "# $m: $(wc -l <"$W/acked.$m") acknowledged, $(grep -c '^503$' "$W"/load.$m/*.status | awk -F: '{s += $2} END {print s}') requests refused 503"
done
[ "$(grep -lc . "$W/acked.371300" "$W/acked.320300" | wc -l)" = 2 ] ||
	nl_fail "both sides had submissions acknowledged"
refused=$(cat "$W"/load.371300/*.status | grep -c '^503$')
[ "$refused" -ge 1 ] || nl_fail "371300 refused submissions while the database was down" ">= 1" "$refused"

# in_list FILE: the ids of FILE as an SQL list
in_list() { sed "s/.*/'&'/" "$1" | paste -sd, -; }
n371=$(wc -l <"$W/acked.371300")
n320=$(wc -l <"$W/acked.320300")
nl_wait 60 "every acknowledged message of 371300 delivered" bash -c \
	"[ \"\$1\" = \"\$(PGPASSFILE=\$2 \$3 -X -A -t -h \$4 -p \$5 -U tongban -d tongban -c \"SELECT count(*) FROM outbound WHERE state = 1 AND id IN (\$(sed \"s/.*/'&'/\" \$6 | paste -sd, -))\")\" ]" \
	_ "$n371" "$PGPASSFILE" "$PG_BIN/psql" "$PG_SOCK" "$PG_PORT" "$W/acked.371300"
nl_wait 60 "every acknowledged message of 320300 delivered" bash -c \
	"[ \"\$1\" = \"\$(sqlite3 -readonly \"\$2\" \"SELECT count(*) FROM outbound WHERE state = 1 AND id IN (\$(sed \"s/.*/'&'/\" \$3 | paste -sd, -))\")\" ]" \
	_ "$n320" "$SQ" "$W/acked.320300"
# stored by the receiver exactly once: each id one row, nothing else
nl_eq "371300's messages in 320300's journal" "$n371" \
	"$(sqlite3 -readonly "$SQ" "SELECT count(*) FROM inbound WHERE sender = '371300' AND id IN ($(in_list "$W/acked.371300"))")"
nl_eq "320300's messages in 371300's database" "$n320" \
	"$(pg_sql "SELECT count(*) FROM inbound WHERE sender = '320300' AND id IN ($(in_list "$W/acked.320300"))")"
nl_eq "inbound rows at 320300 (nothing unacknowledged, nothing twice)" "$n371" \
	"$(sqlite3 -readonly "$SQ" "SELECT count(*) FROM inbound")"
nl_eq "inbound rows at 371300 (nothing unacknowledged, nothing twice)" "$n320" \
	"$(pg_sql "SELECT count(*) FROM inbound")"
# a 503 was not stored: every outbound row of 371300 was acknowledged
nl_eq "outbound rows at 371300 (the refused ones were not kept)" "$n371" \
	"$(pg_sql "SELECT count(*) FROM outbound")"
out=$("$TB" audit verify --node "$(nl_conf 371300)" 2>&1) ||
	nl_fail "371300's audit chain verifies after the outage" "exit 0" "$out"
nl_ok

# The server hangs: its postmaster stopped (SIGSTOP), 371300's session
# ended by its backend's exit.  A reconnection then connects but gets no
# answer, as from a host that drops packets, until connect_timeout.
backends=$(pg_sql "SELECT pid FROM pg_stat_activity WHERE usename = 'tongban' AND pid <> pg_backend_pid()")
PM=$(head -n 1 "$PG_DIR/data/postmaster.pid")
kill -STOP "$PM"
for b in $backends; do kill -TERM "$b"; done
worst=0
t0=$(date +%s)
while [ $(($(date +%s) - t0)) -lt "$HUNG_S" ]; do
	s0=$(date +%s%3N)
	nl_http 371300 GET /healthz >"$W/health" || NL_HTTP_STATUS=none
	ms=$(($(date +%s%3N) - s0))
	[ "$ms" -gt "$worst" ] && worst=$ms
	st=$NL_HTTP_STATUS
	sleep 0.3
done
h=$(cat "$W/health")
echo "# /healthz while the server hangs: slowest answer $worst ms; the last: $st $h"
[ "$worst" -le "$HEALTH_MS" ] ||
	nl_fail "/healthz answers within $HEALTH_MS ms while the database hangs" "<= $HEALTH_MS" "$worst"
nl_ok
nl_eq "/healthz status while the database hangs" 503 "$st"
nl_has "/healthz says the database cannot be reached" "cannot reach the database" "$h"
kill -CONT "$PM"
PM=
nl_wait 30 "/healthz of 371300 ok again after the server hung" nl_healthy 371300
# the ingest thread's session died idle: its BEGIN finds that out and
# makes it again (a loaded machine may need a second submission)
for i in 1 2 3 4 5; do
	nl_http 371300 POST /v1/messages "$(bulk 320300 "after$i")" >"$W/after.out"
	[ "$NL_HTTP_STATUS" = 202 ] && break
	sleep 1
done
echo "# submissions after the hang until one was taken: $i"
[ "$NL_HTTP_STATUS" = 202 ] ||
	nl_fail "371300 takes a submission again after the hang" 202 \
		"$NL_HTTP_STATUS $(cat "$W/after.out")"
nl_ok
nl_done
