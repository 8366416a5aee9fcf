#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_backup.sh - journal files are private, and a running node's
# journal can be backed up and restored (issue 18, point 8):
#   - journal.db, -wal and -shm of a running node are mode 0600;
#   - `cp journal.db` of a running node misses what sits in the WAL;
#     `tongban journal backup` holds every message (counted with
#     `tongban journal stats` and with the sqlite3 shell), is 0600, one
#     file, and its audit chain verifies;
#   - restore (stop, replace, start) as docs/ADMIN.md says, and what it
#     does: a message queued before the backup and delivered after it is
#     sent again and answered as a duplicate (the receiver's original
#     receipt, not a second inbox entry); a message submitted after the
#     backup is unknown to the restored sender; a message received after
#     a receiver's backup is gone from its restored inbox, and the sender,
#     holding its receipt, does not send it again;
#   - bad input: one stderr line and a non-zero exit.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3 shell"; exit 77; }
nl_init
nl_devfed 320300,371300
A=320300 B=371300

jpath() {
	local j
	j=$(sed -n 's/^journal *= *//p' "$(nl_conf "$1")")
	case $j in /*) echo "$j" ;; *) echo "$F/$1/$j" ;; esac
}
# stat_of FILE FIELD: a number from `tongban journal stats --journal FILE`
stat_of() { "$TB" journal stats --journal "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
# one_line CMD...: the command fails with exactly one line on stderr
one_line() {
	local rc=0
	"$@" >"$W/out" 2>"$W/err" || rc=$?
	[ "$rc" != 0 ] || nl_fail "$* fails" "non-zero exit" "exit 0"
	[ "$(wc -l <"$W/err")" = 1 ] || nl_fail "$* says why in one line" "1 line" "$(cat "$W/err")"
	nl_ok
}

nl_start $A
nl_start $B
ids=()
for i in 1 2 3 4 5 6; do ids+=("$(nl_send $A $B case.submit hukou.transfer)") || exit 1; done
for id in "${ids[@]}"; do nl_wait 30 "message $id delivered" nl_delivered $A "$id"; done

# 1. modes of the live journal files
for f in "$(jpath $A)" "$(jpath $A)-wal" "$(jpath $A)-shm" "$(jpath $B)"; do
	nl_eq "mode of $f" 600 "$(stat -c %a "$f")"
done

# 2. cp of the main file alone vs the online backup.  (The nodes
# checkpoint only after 1,000 pages, so six messages are in the WAL.)
cp "$(jpath $A)" "$W/copied.db"
got=$(sqlite3 "$W/copied.db" "SELECT count(*) FROM outbound" 2>&1)
[ "$got" != 6 ] || nl_fail "cp of journal.db misses the WAL (test premise)" "not 6" "$got"
nl_ok
"$TB" journal backup --node "$(nl_conf $A)" "$W/a1.db" >"$W/out" 2>&1 ||
	nl_fail "journal backup of a running node" "exit 0" "$(cat "$W/out")"
nl_ok
nl_eq "backup: delivered messages (tongban journal stats)" 6 "$(stat_of "$W/a1.db" delivered)"
nl_eq "backup: outbound rows (sqlite3)" 6 "$(sqlite3 "$W/a1.db" "SELECT count(*) FROM outbound")"
nl_eq "backup: envelopes (sqlite3)" 6 "$(sqlite3 "$W/a1.db" "SELECT count(*) FROM outbound_env")"
nl_eq "backup mode" 600 "$(stat -c %a "$W/a1.db")"
[ ! -e "$W/a1.db-wal" ] || nl_fail "backup is one file" "no a1.db-wal" "$(ls "$W")"
nl_ok
out=$("$TB" audit verify --journal "$W/a1.db" --chain-only 2>&1) || nl_fail "backup's audit chain verifies" "exit 0" "$out"
# without --chain-only a copy without a head is not called intact
rc=0
out=$("$TB" audit verify --journal "$W/a1.db" 2>&1) || rc=$?
nl_eq "a backup without a head: not intact by itself" 1 "$rc"
nl_has "... saying why" audit.no-head "$out"
nl_ok
nl_has "the node went on running" ok "$(nl_http $A GET /healthz)"

# 3. bad input
one_line "$TB" journal backup --node "$W/none.conf" "$W/x.db"
one_line "$TB" journal backup --node "$(nl_conf $A)" "$W/a1.db"
nl_eq "an existing OUT is left alone" 6 "$(stat_of "$W/a1.db" delivered)"
one_line "$TB" journal backup --node "$(nl_conf $A)" "$W/no/such/dir/x.db"
one_line "$TB" journal backup --node "$(nl_conf $A)"
one_line "$TB" journal backup --journal "$W/copied.db" --node "$(nl_conf $A)" "$W/y.db"
one_line "$TB" journal stats --journal "$W/none.db"
one_line "$TB" journal frobnicate
[ ! -e "$W/x.db" ] && [ ! -e "$W/y.db" ] || nl_fail "no file left by a refused backup" "none" "$(ls "$W")"
nl_ok

# 4. restore of the sender.  x: queued while the receiver is down, so it
# is in the backup as queued, and delivered after the backup.  y:
# submitted after the backup.
nl_stop $B
x=$(nl_send $A $B case.submit hukou.transfer) || exit 1
"$TB" journal backup --node "$(nl_conf $A)" "$W/a2.db" >/dev/null 2>&1 || nl_fail "backup a2"
nl_eq "x is queued in the backup" 1 "$(sqlite3 "$W/a2.db" "SELECT count(*) FROM outbound WHERE id = '$x' AND state = 0")"
nl_start $B
nl_wait 60 "x delivered once the receiver is back" nl_delivered $A "$x"
y=$(nl_send $A $B case.submit hukou.transfer) || exit 1
nl_wait 30 "y delivered" nl_delivered $A "$y"
nl_eq "receiver: received entries of x before the restore" 1 \
	"$(sqlite3 -cmd '.timeout 5000' "$(jpath $B)" "SELECT count(*) FROM audit WHERE msgid = '$x' AND event = 'received'")"
r1=$(nl_receipt $A "$x")
# the restore, as docs/ADMIN.md says
nl_stop $A
j=$(jpath $A)
rm -f "$j" "$j-wal" "$j-shm"
cp "$W/a2.db" "$j"
chmod 600 "$j"
nl_start $A
nl_wait 60 "x delivered again after the restore" nl_delivered $A "$x"
nl_eq "x's receipt after the restore is the receiver's original one" "$r1" "$(nl_receipt $A "$x")"
nl_eq "x is in the receiver's inbox once" 1 "$(nl_inbox_ids $B | grep -c "$x")"
nl_eq "receiver still has one 'received' entry for x" 1 \
	"$(sqlite3 -cmd '.timeout 5000' "$(jpath $B)" "SELECT count(*) FROM audit WHERE msgid = '$x' AND event = 'received'")"
rc=0
nl_status $A "$y" >"$W/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || nl_fail "y (after the backup) is unknown to the restored sender" "an error" "$(cat "$W/out")"
nl_ok
nl_eq "y reached the receiver all the same" 1 "$(nl_inbox_ids $B | grep -c "$y")"

# 5. restore of the receiver: z, received after its backup, is gone from
# its inbox, and the sender does not send it again.
"$TB" journal backup --node "$(nl_conf $B)" "$W/b1.db" >/dev/null 2>&1 || nl_fail "backup b1"
z=$(nl_send $A $B case.submit hukou.transfer) || exit 1
nl_wait 30 "z delivered" nl_delivered $A "$z"
nl_stop $B
j=$(jpath $B)
rm -f "$j" "$j-wal" "$j-shm"
cp "$W/b1.db" "$j"
nl_start $B
sleep 3
nl_eq "z is not in the restored receiver's inbox" 0 "$(nl_inbox_ids $B | grep -c "$z")"
nl_eq "the sender still reports z delivered" delivered \
	"$(nl_status $A "$z" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
for m in $A $B; do
	out=$("$TB" audit verify --node "$(nl_conf $m)" 2>&1) || nl_fail "audit chain of $m after the restores" "exit 0" "$out"
	nl_ok
done
nl_done
