#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_pg.sh - a tongban-node on a PostgreSQL journal (issue 22):
# member 371300's journal is a database on a server of the test's own
# (tests/pg_lib.sh), 320300 keeps SQLite.  Messages both ways are
# delivered with receipts, stored once in the database, and the audit
# chain there grows; a restart of the node keeps everything.  A node
# given a database it cannot reach refuses to start and says why.
# Skipped (77) without postgresql-15 or libpq.  About 30 s on an idle
# machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"

pg_node_skip
nl_init
trap 'pg_stop; nl_cleanup' EXIT
pg_node_fed
nl_start 320300
nl_start 371300

declare -a OUT IN
for k in 1 2 3; do
	OUT[$k]=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
	IN[$k]=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
done
for k in 1 2 3; do
	nl_wait 30 "message ${OUT[$k]} 371300 -> 320300 delivered" nl_delivered 371300 "${OUT[$k]}"
	nl_wait 30 "message ${IN[$k]} 320300 -> 371300 delivered" nl_delivered 320300 "${IN[$k]}"
done
nl_eq "inbound rows in PostgreSQL" 3 "$(pg_sql "SELECT count(*) FROM inbound")"
nl_eq "delivered outbound rows in PostgreSQL" 3 \
	"$(pg_sql "SELECT count(*) FROM outbound WHERE state = 1")"
for k in 1 2 3; do
	nl_eq "${IN[$k]} stored once" 1 "$(pg_sql "SELECT count(*) FROM inbound WHERE id = '${IN[$k]}'")"
done
n=$(pg_sql "SELECT count(*) FROM audit")
[ "$n" -ge 6 ] || nl_fail "audit entries in PostgreSQL" ">= 6" "$n"
nl_ok

# a restart on the same database: the queue and the chain carry on
nl_stop 371300
nl_start 371300
id=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
nl_wait 30 "message $id 371300 -> 320300 delivered after a restart" nl_delivered 371300 "$id"
nl_eq "outbound rows after the restart" 4 "$(pg_sql "SELECT count(*) FROM outbound WHERE state = 1")"
m=$(pg_sql "SELECT count(*) FROM audit")
[ "$m" -gt "$n" ] || nl_fail "audit chain grows after the restart" "> $n" "$m"
nl_ok
if grep -E ' (error|warning): ' "$W/371300.log"; then
	nl_fail "no errors or warnings in 371300's log"
fi
nl_ok

# the database stopped while the node runs: submissions are refused, the
# node stays up; started again: the node reconnects and carries on
pg_stop
body=$(nl_case_body hukou.transfer)
out=$("$TB" send --node "$(nl_conf 371300)" --to 320300 --type case.submit --service hukou.transfer \
	--body "$body" 2>&1) && nl_fail "a submission while the database is down is refused" "non-zero exit" "$out"
echo "# while the database is down: $out"
nl_ok
kill -0 "$(nl_pid 371300)" || nl_fail "node 371300 still running while the database is down"
pg_resume || nl_fail "PostgreSQL starts again"
# the node finds the server again on its own (/healthz), and a handle
# whose last attempt failed tries again 250 ms later (journal_pg.c): a
# submission sooner than that may still be refused 503, a retry's matter
nl_wait 15 "node 371300 healthy after the database came back" nl_healthy 371300
sleep 0.3
id=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
nl_wait 30 "message $id delivered after the database came back" nl_delivered 371300 "$id"
id=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 30 "message $id to 371300 delivered after the database came back" nl_delivered 320300 "$id"
nl_eq "inbound rows after the database came back" 4 "$(pg_sql "SELECT count(*) FROM inbound")"

# tongban journal stats reads the database; backup says to use pg_dump
out=$("$TB" journal stats --journal "$PG_URI" 2>&1) || nl_fail "journal stats on a PostgreSQL URI" "exit 0" "$out"
nl_has "journal stats counts the delivered messages" \
	"\"delivered\":$(pg_sql "SELECT count(*) FROM outbound WHERE state = 1")," "$out"
nl_has "journal stats counts the audit entries" "\"audit\":$(pg_sql "SELECT count(*) FROM audit")," "$out"
rc=0
out=$("$TB" journal backup --journal "$PG_URI" "$W/copy.db" 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && [ ! -e "$W/copy.db" ] ||
	nl_fail "journal backup of a URI: one line, non-zero, nothing written" "exit != 0" "$rc: $out"
nl_has "it names what to use" "pg_dump" "$out"

# retention on PostgreSQL (node/retain.c, as on SQLite): with retention
# 1 s, clock_skew 1 s and an archive, messages of ttl 2 s, once finished
# (delivered; received and acknowledged), leave the database for the
# archive; the issue's 30 days are scaled down to seconds
nl_stop 371300
printf 'retention = 1\nclock_skew = 1\narchive_dir = %s\n' "$W/arch" >>"$(nl_conf 371300)"
mkdir -p "$W/arch"
nl_start 371300
short() {
	printf '{"type":"case.submit","to":"%s","ttl":2,"service":"hukou.transfer","body":{"applicant":{"idhash":"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0","kind":"person"},"case_id":"r%s","materials":[],"mode":"online","service":"hukou.transfer"}}' "$1" "$2"
}
nl_http 371300 POST /v1/messages "$(short 320300 "o$$")" >"$W/r.out"
rout=$(grep -o '[0-9a-f]\{32\}' "$W/r.out")
nl_http 320300 POST /v1/messages "$(short 371300 "i$$")" >"$W/r.out"
rin=$(grep -o '[0-9a-f]\{32\}' "$W/r.out")
[ -n "$rout" ] && [ -n "$rin" ] || nl_fail "two short-lived messages submitted"
nl_wait 30 "short-lived message $rout delivered" nl_delivered 371300 "$rout"
nl_wait 30 "short-lived message $rin delivered" nl_delivered 320300 "$rin"
nl_http 371300 POST /v1/inbox/ack "{\"ids\":[\"$rin\"]}" >/dev/null
nl_eq "the received one acknowledged" 200 "$NL_HTTP_STATUS"
gone() {
	[ "$(pg_sql "SELECT count(*) FROM outbound WHERE id = '$rout'")" = 0 ] &&
		[ "$(pg_sql "SELECT count(*) FROM inbound WHERE id = '$rin'")" = 0 ]
}
nl_wait 30 "both pruned from the database" gone
for id in "$rout" "$rin"; do
	zcat "$W"/arch/* 2>/dev/null | grep -q "$id" || nl_fail "$id in the archive"
done
nl_ok

# the audit chain in the database verifies (tongban audit verify), with
# the node's signed head (beside its registry file) or as a chain alone;
# a URI alone, without a head, is refused with one line saying what to
# give; an entry altered in the database is found
out=$("$TB" audit verify --node "$(nl_conf 371300)" 2>&1) ||
	nl_fail "audit verify --node on a PostgreSQL journal" "exit 0" "$out"
nl_has "audit verify --node" "ok:" "$out"
out=$("$TB" audit verify --journal "$PG_URI" --chain-only 2>&1) ||
	nl_fail "audit verify --journal URI --chain-only" "exit 0" "$out"
nl_has "audit verify --journal URI --chain-only" "chain intact" "$out"
rc=0
out=$("$TB" audit verify --journal "$PG_URI" 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] ||
	nl_fail "audit verify --journal URI without a head: one line, non-zero" "exit != 0" "$rc: $out"
nl_has "it says what to give" "--chain-only" "$out"
pg_sql "UPDATE audit SET event = 'tampered' WHERE seq = 2" >/dev/null
rc=0
out=$("$TB" audit verify --journal "$PG_URI" --chain-only 2>&1) || rc=$?
[ "$rc" != 0 ] || nl_fail "audit verify finds an entry altered in the database" "exit != 0" "$out"
nl_has "the altered entry is named" "first broken entry 2" "$out"

# a database that cannot be reached: the node refuses to start, saying so
nl_stop 371300
sed -i '/^journal *=/d' "$(nl_conf 371300)"
echo "journal = postgresql://tongban@127.0.0.1:1/tongban?connect_timeout=5" >>"$(nl_conf 371300)"
rc=0
out=$("$TBN" -c "$(nl_conf 371300)" 2>&1) || rc=$?
[ "$rc" != 0 ] || nl_fail "node on an unreachable database exits non-zero"
nl_has "its message" "cannot connect" "$out"
nl_done
