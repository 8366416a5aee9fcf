#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_pg_outage.sh - PostgreSQL stopped under load (issue 22,
# point 4): member 371300's journal is a database on a server of the
# test's own (tests/pg_lib.sh), 320300 keeps SQLite.  Both submit a
# steady load to each other (a bulk of 5 every 0.2 s each) while the
# server is stopped with `pg_ctl stop -m fast` and started again.
# While it is down, 371300 stays up, its local API answers submissions
# 503 with the reason token "journal.unavailable" and /healthz answers
# 503 "journal" saying the database cannot be reached.  Afterwards every
# submission answered 202 on either side is delivered, and stored by its
# receiver exactly once; every answer was 202 or 503.
# Scaled: the issue's 20 s outage is 8 s here (the reconnect is the same
# for any length; the retry tunables are scaled down to retry_max_ms
# 2000 and breaker_open_ms 1000 so that the peer's backoff after 8 s of
# refusals stays short).  About 45 s on an idle machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"

pg_node_skip sqlite3
OUTAGE_S=${TB_PG_OUTAGE_S:-8}
nl_init
LOADERS=()
trap 'for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null; done; pg_stop; nl_cleanup' EXIT
pg_node_start
nl_devfed 320300,371300
pg_node_journal 371300
for m in 320300 371300; do
	printf 'retry_min_ms = 100\nretry_max_ms = 2000\nbreaker_open_ms = 1000\nfull_retry = 2\n' \
		>>"$(nl_conf "$m")"
done
nl_start 320300
nl_start 371300
SQ="$F/320300/journal.db"

# bulk TO TAG: five case.submit requests to TO, fresh case ids
bulk() {
	local i sep=""
	printf '['
	for ((i = 0; i < 5; i++)); do
		printf '%s{"type":"case.submit","to":"%s","service":"hukou.transfer","body":{"applicant":{"idhash":"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0","kind":"person"},"case_id":"c%s-%d","materials":[],"mode":"online","service":"hukou.transfer"}}' \
			"$sep" "$1" "$2" "$i"
		sep=,
	done
	printf ']'
}

# load FROM TO: a bulk every 0.2 s until $W/stop exists; answer k goes
# to $W/FROM.k.out with its status in $W/FROM.k.status
load() {
	local k=0
	mkdir -p "$W/load.$1"
	while [ ! -e "$W/stop" ]; do
		k=$((k + 1))
		nl_http "$1" POST /v1/messages "$(bulk "$2" "$1-$k")" >"$W/load.$1/$k.out"
		echo "${NL_HTTP_STATUS:-0}" >"$W/load.$1/$k.status"
		sleep 0.2
	done
}
load 371300 320300 &
LOADERS+=($!)
load 320300 371300 &
LOADERS+=($!)

sleep 3
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
r=$(grep -h '"journal.unavailable"' "$W"/load.371300/*.out | head -n 1)
echo "# a submission while the database is down: $r"
# the transaction failed, not one message of the bulk: no "message N:"
case $r in
*'"detail":"message '*) nl_fail "the refusal blames no one message of the bulk" "journal: ..." "$r" ;;
*) nl_ok ;;
esac
sleep $((OUTAGE_S - ($(date +%s) - t0)))
kill -0 "$pid" 2>/dev/null || nl_fail "371300 still running after ${OUTAGE_S} s without its database"
nl_ok
pg_resume || nl_fail "PostgreSQL starts again"
nl_wait 20 "/healthz of 371300 ok again after the database came back" nl_healthy 371300
sleep 4
touch "$W/stop"
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
nl_done
