#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_audit.sh - an audit entry that cannot be written fails the
# operation it records (issue 17, point 4).  The journal is the real
# SQLite file; a trigger added with the sqlite3 shell makes its audit
# table refuse entries, as a failing disk would, and is dropped again:
#   - the receiver cannot audit "received": it keeps nothing of the
#     message (not in its inbox) and the sender's copy stays queued;
#   - the sender cannot audit "delivered": the message is not reported
#     delivered (it stays queued and is retried);
#   - the sender cannot audit "queued": the submission is refused;
# and once the trigger is gone each message is delivered once, and both
# audit chains verify.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3 shell"; exit 77; }
nl_init
nl_devfed 320300,371300

# jpath ID: the node's journal file
jpath() {
	local j
	j=$(sed -n 's/^journal *= *//p' "$(nl_conf "$1")")
	case $j in /*) echo "$j" ;; *) echo "$F/$1/$j" ;; esac
}
# refuse ID EVENT: the journal of ID refuses audit entries for EVENT
refuse() {
	sqlite3 -cmd '.timeout 5000' "$(jpath "$1")" \
		"CREATE TRIGGER t_refuse BEFORE INSERT ON audit WHEN NEW.event = '$2'
		 BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END;" ||
		nl_fail "trigger on $1's journal"
}
allow() { sqlite3 -cmd '.timeout 5000' "$(jpath "$1")" "DROP TRIGGER t_refuse;" || nl_fail "drop trigger"; }
# state FROM ID: the message's state in FROM's journal
state() { nl_status "$1" "$2" 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'; }
queued_with() { nl_status "$1" "$2" 2>/dev/null | grep '"state":"queued"' | grep -q "$3"; }

for m in 320300 371300; do nl_start "$m"; done

# 1. the receiver cannot record "received"
refuse 371300 received
id=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 20 "a refused exchange logged by 371300" grep -q 'journal write failed' "$W/371300.log"
sleep 1
nl_eq "message refused by the receiver stays queued" queued "$(state 320300 "$id")"
nl_eq "receiver's inbox without the message" "" "$(nl_inbox_ids 371300 | grep "$id")"
allow 371300
nl_wait 30 "message $id delivered once the receiver can audit" nl_delivered 320300 "$id"
nl_eq "in the receiver's inbox once" 1 "$(nl_inbox_ids 371300 | grep -c "$id")"

# 2. the sender cannot record "delivered"
refuse 320300 delivered
id2=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 20 "receipt of $id2 not recorded" queued_with 320300 "$id2" "delivery not recorded"
nl_has "log says why" "delivery of $id2 not recorded" "$(cat "$W/320300.log")"
nl_eq "not reported delivered" queued "$(state 320300 "$id2")"
allow 320300
nl_wait 30 "message $id2 delivered once the sender can audit" nl_delivered 320300 "$id2"

# 3. the sender cannot record "queued": the submission is refused
refuse 320300 queued
rc=0
out=$("$TB" send --node "$(nl_conf 320300)" --to 371300 --type case.submit \
	--service hukou.transfer --body "$(nl_case_body)" 2>&1) || rc=$?
[ "$rc" != 0 ] || nl_fail "tongban send while the journal refuses audit entries" "a failure" "exit 0: $out"
nl_ok
allow 320300

# every entry is one that happened, and both chains verify
for m in 320300 371300; do
	out=$("$TB" audit verify --journal "$(jpath "$m")" 2>&1) ||
		nl_fail "audit chain of $m verifies" "exit 0" "$out"
	nl_ok
done
nl_eq "one 'delivered' entry per delivered message at the sender" 2 \
	"$(sqlite3 "$(jpath 320300)" "SELECT count(DISTINCT msgid) FROM audit WHERE event = 'delivered'")"
nl_eq "one 'received' entry at the receiver" 2 \
	"$(sqlite3 "$(jpath 371300)" "SELECT count(DISTINCT msgid) FROM audit WHERE event = 'received'")"
nl_done
