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

grep -q '^#define HAVE_LIBPQ 1' "$TB_BUILDDIR/config.h" 2>/dev/null ||
	{ echo "SKIP: built without libpq"; exit 77; }
pg_have || { echo "SKIP: $PG_WHY"; exit 77; }
nl_init
chmod 755 "$W"
trap 'pg_stop; nl_cleanup' EXIT
if ! pg_start "$W/pg"; then
	grep -q 'Address already in use' "$W/pg/server.log" 2>/dev/null && exit 75
	nl_fail "PostgreSQL server starts"
fi
nl_devfed 320300,371300
sed -i '/^journal *=/d' "$(nl_conf 371300)"
echo "journal = $PG_URI" >>"$(nl_conf 371300)"
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
id=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
nl_wait 30 "message $id delivered after the database came back" nl_delivered 371300 "$id"
id=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 30 "message $id to 371300 delivered after the database came back" nl_delivered 320300 "$id"
nl_eq "inbound rows after the database came back" 4 "$(pg_sql "SELECT count(*) FROM inbound")"

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
