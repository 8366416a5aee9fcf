#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_audit_head.sh - an audit log that cannot be cut short
# unnoticed (issue 18, point 10), on real nodes: a city sends to a city
# only its hub reaches (so the hub relays), then
#   - the hub's chain holds what it relayed (id, from, to, digest), every
#     chain holds start, registry-applied, config-reloaded (SIGHUP), stop;
#   - `tongban audit verify` checks the chain against the signed head
#     beside the journal and verifies its signature from the registry;
#   - deleting the newest entries (sqlite3) is reported "truncated:
#     entries N..M missing", exit 1 (it said "intact" before);
#   - copying an older journal back is reported the same way, and a node
#     started on it records an audit-gap entry that verify reports; so
#     does a node whose newest entries are deleted while it runs;
#   - a head whose seq was edited fails its signature;
#   - `tongban audit export` is verified by an independent verifier
#     written from docs/PROTOCOL.md ("Audit chain") alone: shell, od,
#     sha256sum and openssl, no code of ours; and it notices an edit.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3 shell"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "SKIP: no openssl"; exit 77; }
export LC_ALL=C
nl_init
# nl_devfed with a member only its hub reaches: 320300 -> 411400 is
# relayed by 410000
NL_MEMBERS=320000,320300,410000,411400
F="$W/fed"
"$TB" dev-federation --dir "$F" --members "$NL_MEMBERS" --private 411400 \
	--base-port "$NL_BASE" >"$W/devfed.out" 2>&1 || { cat "$W/devfed.out" >&2; nl_fail "dev-federation"; }
for m in 320000 320300 410000 411400; do sed -i '/^responder *=/d' "$F/$m/node.conf"; done

J() { echo "$F/$1/journal.db"; }
verify() { "$TB" audit verify --node "$(nl_conf "$1")"; }
last_seq() { sqlite3 "$(J "$1")" "SELECT max(seq) FROM audit"; }

# the independent verifier (docs/PROTOCOL.md, "Audit chain"): xverify
. "${TB_SRCDIR:-.}/tests/audit_xverify.sh"

for m in 320000 410000 411400 320300; do nl_start "$m"; done
# the city's first messages may wait for the hubs' sessions
ids=""
for i in 1 2 3; do ids="$ids $(nl_send 320300 411400 case.submit hukou.transfer)"; done
for id in $ids; do nl_wait 60 "message $id delivered through the hub" nl_delivered 320300 "$id"; done

# 1. the hub's chain names what it relayed: id, from, to, digest
for id in $ids; do
	row=$(sqlite3 "$(J 410000)" "SELECT dir, peer, detail, length(digest) FROM audit
		WHERE msgid = '$id' AND event = 'relayed'")
	nl_eq "hub 410000 audited the relay of $id (dir|to|from|digest)" "o|411400|from=320300|64" "$row"
done

# 2. SIGHUP and the registry it applies are in the chain; verify checks
# the head and its signature
cp "$F/registry.json" "$W/r2.json"
"$TB" registry set "$W/r2.json" --valid-days 40 >/dev/null &&
	"$TB" registry sign "$W/r2.json" --key "$F/ca-320000/ca.key" --cert "$F/ca-320000/ca.crt" >/dev/null &&
	"$TB" registry sign "$W/r2.json" --key "$F/ca-410000/ca.key" --cert "$F/ca-410000/ca.crt" >/dev/null ||
	nl_fail "preparing a newer registry"
serial=$("$TB" registry show "$W/r2.json" | sed -n 's/^serial //p')
cp "$W/r2.json" "$F/320300/registry.json"
kill -HUP "$(nl_pid 320300)"
admin() { sqlite3 "$(J 320300)" "SELECT detail FROM audit WHERE dir = 'a' AND event = '$1'"; }
nl_wait 20 "config-reloaded in 320300's chain" sh -c "sqlite3 '$(J 320300)' \
	\"SELECT 1 FROM audit WHERE dir = 'a' AND event = 'config-reloaded'\" | grep -q 1"
nl_wait 20 "registry-applied in 320300's chain" sh -c "sqlite3 '$(J 320300)' \
	\"SELECT 1 FROM audit WHERE dir = 'a' AND event = 'registry-applied'\" | grep -q 1"
nl_has "registry-applied names the serial" "serial=$serial " "$(admin registry-applied)"
nl_has "start names the version and the serial in force" "version=" "$(admin start)"
out=$(verify 320300 2>&1) || nl_fail "audit verify of a live node" "exit 0" "$out"
nl_has "signature checked against the registry" "signature verified" "$out"
nl_eq "head file beside the journal, 0600" 600 "$(stat -c %a "$(J 320300).audit-head")"
show=$("$TB" audit show --node "$(nl_conf 320300)")
nl_has "show: a table" "SEQ" "$show"
nl_has "show: start, with the registry serial" " start " "$show"
nl_has "show: the registry serial" "serial=" "$show"
nl_eq "show --json: one line per entry" "$(last_seq 320300)" \
	"$("$TB" audit show --json --node "$(nl_conf 320300)" | grep -c '^{"at":')"
nl_eq "show --since" 2 "$("$TB" audit show --json --since "$(($(last_seq 320300) - 1))" \
	--node "$(nl_conf 320300)" | wc -l)"

# 3. the export verifies by PROTOCOL.md alone, and an edit is noticed
openssl pkey -in "$F/320300/node.key" -pubout -out "$W/320300.pub" 2>/dev/null || nl_fail "public key"
"$TB" audit export --node "$(nl_conf 320300)" --output "$W/export.jsonl" || nl_fail "audit export"
res=$(xverify "$W/export.jsonl" "$W/320300.pub")
nl_eq "independent verifier on the export" "ok $(($(wc -l <"$W/export.jsonl") - 1))" "$res"
sed '2s/"at":\([0-9]*\)/"at":1\1/' "$W/export.jsonl" >"$W/edited.jsonl"
nl_eq "independent verifier on an edited export" "entry 2: hash" "$(xverify "$W/edited.jsonl" "$W/320300.pub")"
"$TB" audit export --node "$(nl_conf 410000)" >"$W/hub.jsonl" || nl_fail "export to stdout"
openssl pkey -in "$F/410000/node.key" -pubout -out "$W/410000.pub" 2>/dev/null
res=$(xverify "$W/hub.jsonl" "$W/410000.pub")
case $res in "ok "*) nl_ok ;; *) nl_fail "independent verifier on the hub's export" "ok" "$res" ;; esac

# 3b. the newest entries deleted under the running node, which then
# appends under the same numbers: recorded as a gap before the next head
nl_wait 10 "the head has caught up" sh -c "\"$TB\" audit verify --node '$(nl_conf 320300)' | grep -q -v 'newer entries'"
n=$(last_seq 320300)
sqlite3 -cmd '.timeout 5000' "$(J 320300)" "DELETE FROM audit WHERE seq > $((n - 2))" || nl_fail "sqlite3 delete"
for i in 1 2; do
	id=$(nl_send 320300 411400 case.submit hukou.transfer)
	nl_wait 60 "message $id delivered" nl_delivered 320300 "$id"
done
nl_wait 10 "the node notices the changed chain" grep -q "gone or changed while running" "$W/320300.log"
nl_has "the gap entry names the head it lost" "head-mismatch seq=$n " \
	"$(sqlite3 "$(J 320300)" "SELECT detail FROM audit WHERE event = 'audit-gap'")"
out=$(verify 320300 2>&1) || nl_fail "verify after a recorded gap" "exit 0" "$out"
nl_has "verify reports the recorded gap" "records a gap" "$out"

# 4. stop: "stop" is the last entry; keep a copy of this journal
nl_stop 320300
nl_eq "stop recorded last" "a|stop" "$(sqlite3 "$(J 320300)" "SELECT dir, event FROM audit ORDER BY seq DESC LIMIT 1")"
cp "$(J 320300)" "$W/older.db"
old=$(last_seq 320300)
nl_start 320300
id=$(nl_send 320300 411400 case.submit hukou.transfer)
nl_wait 60 "message $id delivered" nl_delivered 320300 "$id"
nl_stop 320300
out=$(verify 320300 2>&1) || nl_fail "verify after a clean stop" "exit 0" "$out"
n=$(last_seq 320300)

# 5. the newest entries deleted: reported, exit 1 (was "intact")
cp "$(J 320300)" "$W/full.db"
sqlite3 "$(J 320300)" "DELETE FROM audit WHERE seq > $((n - 2))" || nl_fail "sqlite3 delete"
rc=0
out=$(verify 320300 2>&1) || rc=$?
nl_eq "truncated chain: exit status" 1 "$rc"
nl_has "truncated chain: the missing entries named" "truncated: entries $((n - 1))..$n missing" "$out"
cp "$W/full.db" "$(J 320300)"

# 6. an older journal copied back: reported the same way
cp "$W/older.db" "$(J 320300)"
rc=0
out=$(verify 320300 2>&1) || rc=$?
nl_eq "older journal: exit status" 1 "$rc"
nl_has "older journal: the missing entries named" "truncated: entries $((old + 1))..$n missing" "$out"
# ... and a node started on it records the gap before anything else
nl_start 320300
nl_has "the node says so at start" "behind its signed head" "$(cat "$W/320300.log")"
nl_eq "audit-gap recorded right after the old chain" "audit-gap|missing=$((old + 1))-$n" \
	"$(sqlite3 "$(J 320300)" "SELECT event, substr(detail, 1, instr(detail, ' ') - 1) FROM audit WHERE seq = $((old + 1))")"
rc=0
out=$(verify 320300 2>&1) || rc=$?
nl_eq "verify after the recorded gap: exit 0" 0 "$rc"
nl_has "verify reports the recorded gap" "records a gap" "$out"
nl_stop 320300

# 7. a head edited to name more entries fails its signature
h="$(J 320300).audit-head"
sed 's/"seq":\([0-9]*\)/"seq":9\1/' "$h" >"$W/head.edit" && cp "$W/head.edit" "$h"
rc=0
out=$(verify 320300 2>&1) || rc=$?
nl_eq "edited head: exit status" 1 "$rc"
nl_has "edited head: its signature" "audit.head-signature" "$out"
# a missing head, with entries, is not "intact" either
rm -f "$h"
rc=0
out=$(verify 320300 2>&1) || rc=$?
nl_eq "no head: exit status" 1 "$rc"
nl_has "no head: said" "audit.no-head" "$out"
nl_done
