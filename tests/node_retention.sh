#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_retention.sh - a journal that does not grow without bound
# (issue 18, point 9).  A soak of 30 s at 1,000 msg/s (what the issue's
# operator ran; the achieved rate is printed and must be at least half;
# a sanitizer build is asked for 250 msg/s, see below)
# between two real nodes, through tongban-bench journal: messages with a
# ttl of 4 s, retention 2 s, clock_skew 1 s, archive_dir set, and a city
# acknowledging the receiver's inbox every 100 ms (POST /v1/inbox/ack).
# The issue's durations (30 days' retention, a day's ttl) are scaled down
# to seconds; the pruning rule is the same.
#
# The bound, per journal file, stated and derived:
#   a message stays until ttl + clock_skew (replay rule) and retention
#   after it finished have passed, plus up to one pruning round
#   (retention / 2 = 1 s) and the acknowledgement lag (0.1 s) -- say
#   W = 4 + 1 + 2 + 2 = 9 s of traffic, and 3 s more for a loaded
#   machine's lag in pruning and acknowledging (make check runs other
#   tests beside this one): RATE * 12 messages held, RATE the rate asked;
#   a message held costs at most 4.6 KiB with its audit entries
#   (measured: `tongban-bench journal`, 3.9 KiB sender, 4.4 KiB receiver,
#   see docs/PERFORMANCE.md);
#   what is kept for good: audit entries (about 275 B each; what the
#   chain keeps is the audit part's decision), counted at 320 B, and the
#   flow table's row per case (about 40 B; each message here is a case of
#   its own), counted at 64 B;
#   plus 8 MiB (free pages kept for reuse, schema, the trees' slack):
#     BOUND = RATE * 12 * 4.6 KiB + AUDIT * 320 B + SENT * 64 B + 8 MiB
#   which at 1,000 msg/s for 30 s is about 82 MiB on the sender (2 audit
#   entries a message) and 73 MiB on the receiver (1) -- where keeping
#   every message would take over 120 MiB.  The test checks that too:
#   SENT * 4 KiB > BOUND, so it cannot pass without pruning.
#   A sanitizer build (ASan, TSan: several times slower) is asked for
#   250 msg/s, its bound computed the same way; if it cannot reach even
#   that premise, the test is skipped there, never passed.
#   The -wal file: checkpoints cap it at 16,000 pages (64 MiB) plus one
#   commit, so under 72 MiB.
# And: every message pruned is in the archive (archived + left = all), an
# archived line carries the message's exact envelope, and both audit
# chains verify after the pruning.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3 shell"; exit 77; }
nl_init
B="$TB_BUILDDIR/tongban-bench"
RATE=1000 SECS=30 SAN=0
if nl_sanitized; then
	RATE=250 SAN=1
fi
D="$W/soak"
out=$(timeout 240 "$B" journal --soak "$SECS" --rate "$RATE" --ttl 4 --retention 2 --archive \
	--dir "$D" 2>"$W/bench.err") || nl_fail "tongban-bench journal --soak" "exit 0" "$(tail -n 5 "$W/bench.err")"
printf '%s\n' "$out" | sed -n '1,3p'
j=$(printf '%s\n' "$out" | tail -n 1)
num() { printf '%s' "$j" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
sent=$(num sent) secs=$(num seconds) rate=$(num msgs_per_s)
# at least half the rate asked (a sanitizer build: see the premise)
floor=$((RATE / 2))
[ "$SAN" = 1 ] && floor=1
awk -v r="$rate" -v f=$floor 'BEGIN { exit !(r >= f) }' ||
	nl_fail "the soak's rate (the machine is too loaded)" ">= $floor msg/s" "$rate msg/s"
nl_ok
awk -v d="$(num sender_delivered)" -v s="$sent" 'BEGIN { exit !(d >= s) }' ||
	nl_fail "every message delivered" "$sent" "$(num sender_delivered)"
nl_ok

# bound RATE AUDIT: bytes, as derived above
bound() {
	awk -v r="$1" -v a="$2" -v s="$sent" \
		'BEGIN { printf "%d", r * 12 * 4.6 * 1024 + a * 320 + s * 64 + 8 * 1048576 }'
}
for side in sender receiver; do
	b=$(bound "$RATE" "$(num ${side}_audit)")
	if ! awk -v s="$sent" -v b="$b" 'BEGIN { exit !(s * 4096 > b) }'; then
		if [ "$SAN" = 1 ]; then
			echo "SKIP: a sanitizer build sent $sent messages at $rate msg/s: too few to exceed the bound"
			exit 77
		fi
		nl_fail "$side: keeping every message would exceed the bound (the test's premise)" "> $b" "$((${sent%.*} * 4096))"
	fi
	db=$(num ${side}_max_db) wal=$(num ${side}_max_wal)
	awk -v v="$db" -v b="$b" 'BEGIN { exit !(v < b) }' ||
		nl_fail "$side journal.db stays under the bound" "< $b bytes" "$db bytes"
	nl_ok
	awk -v v="$wal" 'BEGIN { exit !(v < 72 * 1048576) }' ||
		nl_fail "$side journal.db-wal stays under 72 MiB" "< 75497472" "$wal"
	nl_ok
	echo "$side: largest journal.db $db B (bound $b B), -wal $wal B"
done

# every pruned message is in the archive, once
A=$D/320300 R=$D/371300
arch() { cat "$1"/archive/*.jsonl.gz | gzip -dc; }
arch "$A" >"$W/a.jsonl" || nl_fail "sender's archive reads as gzip"
arch "$R" >"$W/r.jsonl" || nl_fail "receiver's archive reads as gzip"
stats_a=$("$TB" journal stats --journal "$A/journal.db") || nl_fail "journal stats (sender)"
stats_r=$("$TB" journal stats --journal "$R/journal.db") || nl_fail "journal stats (receiver)"
sf() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
out_rows=$(($(sf "$stats_a" queued) + $(sf "$stats_a" delivered) + $(sf "$stats_a" failed)))
in_rows=$(($(sf "$stats_r" inbox) + $(sf "$stats_r" inbound_acked)))
a_out=$(grep -c '"dir":"out"' "$W/a.jsonl")
r_in=$(grep -c '"dir":"in"' "$W/r.jsonl")
# the sender sent the soak's messages and one warm-up message
nl_eq "sender: archived + left = every message sent" $((${sent%.*} + 1)) $((a_out + out_rows))
nl_eq "receiver: archived + left = every message received" $((${sent%.*} + 1)) $((r_in + in_rows))
[ "$a_out" -gt $((${sent%.*} / 2)) ] || nl_fail "most of the sender's messages were pruned" "> $((${sent%.*} / 2))" "$a_out"
nl_ok
nl_eq "no message archived twice (sender)" "$a_out" "$(grep '"dir":"out"' "$W/a.jsonl" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' | sort -u | wc -l)"
nl_eq "no message archived twice (receiver)" "$r_in" "$(grep '"dir":"in"' "$W/r.jsonl" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' | sort -u | wc -l)"

# one archived line: the documented members, and the exact envelope
line=$(grep '"dir":"in"' "$W/r.jsonl" | head -n 1)
for k in v id dir peer type digest state at envelope receipt; do
	nl_has "archive line has \"$k\"" "\"$k\":" "$line"
done
nl_has "an acknowledged message" '"state":"acked"' "$line"
b64() { local s; s=$(printf '%s' "$1" | tr '_-' '/+'); while [ $((${#s} % 4)) != 0 ]; do s="$s="; done; printf '%s' "$s" | base64 -d; }
id=$(printf '%s' "$line" | sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')
env=$(b64 "$(printf '%s' "$line" | sed 's/.*"envelope":"\([A-Za-z0-9_-]*\)".*/\1/')")
nl_has "the archived envelope is the message's" "\"id\":\"$id\"" "$env"
digest=$(printf '%s' "$line" | sed 's/.*"digest":"\([0-9a-f]*\)".*/\1/')
printf '%s' "$env" >"$W/env.json"
nl_eq "the archived envelope's digest (tongban msg digest) is the line's" "$digest" "$("$TB" msg digest "$W/env.json")"
nl_eq "the audit chain names the archived message's digest" 1 \
	"$(sqlite3 "$R/journal.db" "SELECT count(*) FROM audit WHERE msgid = '$id' AND digest = '$digest'")"
nl_eq "archive files are private" 600 "$(stat -c %a "$(ls "$R"/archive/*.jsonl.gz | head -n 1)")"

# the audit chains verify after the pruning
for m in "$A" "$R"; do
	o=$("$TB" audit verify --journal "$m/journal.db" 2>&1) || nl_fail "audit chain of $m after pruning" "exit 0" "$o"
	nl_ok
done
nl_done
