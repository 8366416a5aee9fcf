#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_diskfull.sh - backpressure instead of a retry storm when a
# receiver's journal disk is full (issue 24, point 3).
#
# The receiver 371300 keeps its journal on a small tmpfs (mounted here;
# without root, or where mount is refused, the test is skipped: exit 77).
# The tmpfs is filled with a filler file, and the sender 320300 submits
# a message a second.  While the disk is full:
# * the receiver answers every exchange 5.03 journal.full with Max-Age
#   full_retry, logs the condition once, /healthz answers 503 "journal"
#   with why ("journal disk full ..."), tongban_journal_full is 1;
# * the sender makes at most one attempt per backoff step: its attempts
#   (the times of its "message sent" lines to the receiver, one exchange
#   each, from its log) come at least full_retry apart (less 200 ms for
#   the clocks' rounding), number at most the period / full_retry + 2,
#   and each was refused (tongban_messages_in_total{result="refused"} at
#   the receiver); without Max-Age the backoff alone (20 ms doubling)
#   would try about 8 times in the first full_retry seconds; it logs the
#   peer's condition once.
# A submission through the receiver's own API is answered 503
# journal.full.  Then the filler is removed: every message is delivered exactly once
# (each id once in the receiver's inbox), /healthz is 200 ok again, both
# nodes log the end once, with the count of refused messages.
# TIME IS SCALED: the issue's 60 s of submissions are 24 s here, with the
# tunables scaled by 1/10 as in node_backoff.sh (retry_min_ms 20,
# retry_max_ms 6000, breaker_open_ms 1000) and full_retry 4 (default 30).
# About 45 s on an idle machine; DISKFULL_SECS=60 runs the issue's full
# minute of submissions (by hand).
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
S=320300
R=371300
nl_devfed $S,$R
SECS=${DISKFULL_SECS:-24}
AGE=4

[ "$(id -u)" = 0 ] || { echo "SKIP: mounting a tmpfs needs root"; exit 77; }
MNT=$W/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=6m tongban-diskfull "$MNT" 2>"$W/mount.err" ||
	{ echo "SKIP: cannot mount a tmpfs: $(cat "$W/mount.err")"; exit 77; }
trap 'umount -l "$MNT" 2>/dev/null; nl_cleanup' EXIT

for m in $S $R; do
	printf 'retry_min_ms = 20\nretry_max_ms = 6000\nbreaker_open_ms = 1000\n' >>"$(nl_conf "$m")"
done
sed -i "s|^journal = .*|journal = $MNT/journal.db|" "$(nl_conf $R)"
printf 'full_retry = %d\n' "$AGE" >>"$(nl_conf $R)"
nl_start $R
nl_start $S

# a message before the disk fills: the path works
id0=$(nl_send $S $R case.submit hukou.transfer) || exit 1
nl_wait 30 "the first message delivered" nl_delivered $S "$id0"

# fill the tmpfs: large blocks, then small ones for what is left
dd if=/dev/zero of="$MNT/filler" bs=1M >/dev/null 2>&1
dd if=/dev/zero of="$MNT/filler2" bs=4k >/dev/null 2>&1
echo "filled: $(df -k "$MNT" | tail -n 1)"

refused() { nl_metric $R 'tongban_messages_in_total{result="refused"}'; }
# the time of day in ms (UTC), as the log's timestamps give it
tod_ms() { date -u +%H:%M:%S.%3N | awk -F'[:.]' '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'; }
r0=$(refused)
from=$(tod_ms)
ids=()
t0=$(date +%s)
while [ $(($(date +%s) - t0)) -lt "$SECS" ]; do
	ids+=("$(nl_send $S $R case.submit hukou.transfer)") || exit 1
	sleep 1
done
# the sender's attempts meanwhile: its "message sent" lines to the
# receiver, those of one exchange within the same few ms
times=$(grep "message sent: .* peer=$R " "$W/$S.log" |
	awk -F'[T:.Z ]' -v from="$from" '{ t = (($2 * 60 + $3) * 60 + $4) * 1000 + $5; if (t >= from) print t }' |
	awk 'NR == 1 || $1 - last > 100 { print } { last = $1 }')
attempts=$(printf '%s\n' $times | grep -c .)
refusals=$(($(refused) - r0))
echo "in $SECS s: ${#ids[@]} messages submitted; $attempts attempts at (ms of day): $(echo $times); $refusals exchanges refused"

NL_CHECKS=$((NL_CHECKS + 1))
[ "$attempts" -ge 2 ] || nl_fail "the sender kept trying while the disk was full" ">= 2 attempts" "$attempts"
max=$((SECS / AGE + 2))
[ "$attempts" -le "$max" ] || nl_fail "attempts while the receiver's disk was full (Max-Age $AGE s)" "<= $max" "$attempts at $(echo $times)"
# every attempt refused (the last may still be under way)
[ "$refusals" -ge $((attempts - 1)) ] && [ "$refusals" -le "$attempts" ] ||
	nl_fail "each attempt refused by the full receiver" "$((attempts - 1))..$attempts refusals" "$refusals"
# consecutive attempts at least Max-Age apart (less 200 ms of rounding)
prev=
for t in $times; do
	if [ -n "$prev" ] && [ $((t - prev)) -lt $((AGE * 1000 - 200)) ]; then
		nl_fail "no attempt before the receiver's Max-Age ($AGE s) elapsed" ">= $((AGE * 1000 - 200)) ms between attempts" "$(echo $times)"
	fi
	prev=$t
done
nl_ok

# the receiver: /healthz, the metrics, one line
nl_http $R GET /healthz >"$W/h.body"
health=$(cat "$W/h.body")
nl_eq "receiver /healthz status while full" 503 "$NL_HTTP_STATUS"
nl_has "receiver /healthz says journal" '"status":"journal"' "$health"
nl_has "receiver /healthz says why" 'journal disk full since' "$health"
nl_eq "tongban_journal_full while full" 1 "$(nl_metric $R tongban_journal_full)"
nl_eq "one line when the condition starts" 1 "$(grep -c 'journal disk full' "$W/$R.log")"
nl_has "the line says what peers are told" "5.03 journal.full, Max-Age $AGE s" "$(grep 'journal disk full' "$W/$R.log")"
# the sender: one line about the peer, nothing delivered meanwhile
nl_eq "the sender logs the peer's condition once" 1 "$(grep -c "peer $R cannot take messages now" "$W/$S.log")"
nl_has "the sender names the reason" "journal.full" "$(grep "peer $R cannot take messages now" "$W/$S.log")"
nl_eq "no failure lines about the peer besides" 0 "$(grep -c "peer $R: .*failed attempts\|peer $R: bad_answer" "$W/$S.log")"
full_refused=$(nl_metric $R tongban_journal_full_refused_total)
# a local submission at the full receiver: 503 journal.full
nl_http $R POST /v1/messages "{\"type\":\"case.submit\",\"to\":\"$S\",\"body\":$(cat "$(nl_case_body)")}" >"$W/sub.body"
nl_eq "a submission at the full node: HTTP status" 503 "$NL_HTTP_STATUS"
nl_has "a submission at the full node: the reason" '"error":"journal.full"' "$(cat "$W/sub.body")"

# space returns
rm -f "$MNT/filler" "$MNT/filler2"
for id in "${ids[@]}"; do
	nl_wait 40 "message $id delivered after space returned" nl_delivered $S "$id"
done
nl_wait 15 "receiver /healthz ok again" nl_healthy $R
nl_has "receiver /healthz says ok" '"status":"ok"' "$(nl_http $R GET /healthz)"
nl_eq "tongban_journal_full after" 0 "$(nl_metric $R tongban_journal_full)"
# exactly once: every id once in the inbox, nothing else
nl_inbox_ids $R | sort >"$W/inbox"
printf '%s\n' "$id0" "${ids[@]}" | sort >"$W/sent"
nl_eq "inbox: each message once" "$(cat "$W/sent")" "$(cat "$W/inbox")"
nl_eq "one line when the condition ends" 1 "$(grep -c 'journal disk has room again' "$W/$R.log")"
end=$(grep 'journal disk has room again' "$W/$R.log")
# the count in the line is at least what /metrics said before (and no
# more than was refused in all: a refusal may land after that reading)
n=$(printf '%s' "$end" | sed -n 's/.*: \([0-9]*\) message(s) refused meanwhile.*/\1/p')
all=$(nl_metric $R tongban_journal_full_refused_total)
NL_CHECKS=$((NL_CHECKS + 1))
[ -n "$n" ] && [ "$n" -ge "$full_refused" ] && [ "$n" -le "$all" ] ||
	nl_fail "the end line counts the refused messages" "$full_refused..$all" "$end"
nl_eq "the sender logs the end once" 1 "$(grep -c "peer $R takes messages again" "$W/$S.log")"
nl_done
