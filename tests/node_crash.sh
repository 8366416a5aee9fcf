#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_crash.sh - no loss and no duplicate across a SIGKILL.
# 1. 320300 sends a burst of 1,000 messages to 371300; 371300 is killed
#    with SIGKILL in the middle of the burst and restarted.  Within 120 s
#    every message is "delivered" with a receipt and 371300's inbox holds
#    exactly the 1,000 ids, each once.
# 2. 320300 sends a burst to 341300 and is itself killed with SIGKILL in
#    the middle of it; after its restart every id it printed before the
#    kill is delivered, exactly once.
# 3. 320300 holds messages it has sent but has no receipts for (341300 is
#    stopped) when it is killed: its restart makes exactly those due at
#    once (not when their hold in the journal ends, TB_FRESH_HOLD_S =
#    5 + answer_timeout + 2 s later), and they are delivered exactly once.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300,341300
# The waits after a crash are the test's, not the defaults (an exchange
# left unanswered is tried again after 30 s, a failing peer rests 10 s):
# what is checked is that nothing is lost or doubled, not how long the
# defaults wait.  The retry backoff too.
for m in 320300 371300 341300; do
	cat >>"$(nl_conf "$m")" <<-EOF
		answer_timeout = 3
		breaker_open_ms = 1000
		retry_min_ms = 100
		retry_max_ms = 1000
	EOF
done
for m in 320300 371300 341300; do nl_start "$m"; done
N=${NL_CRASH_N:-1000}

# inbox_depth ID: the node's count of unacknowledged received messages
inbox_depth() { nl_metric "$1" tongban_inbox_depth; }
queue_empty() { [ "$(nl_metric "$1" tongban_queue_depth)" = 0 ]; }

# receipted FROM ID: FROM reports ID delivered, with its receipt
receipted() {
	case "$(nl_status "$1" "$2" 2>/dev/null)" in *'"state":"delivered"'*'"receipt":{'*) return 0 ;; esac
	return 1
}

# all_delivered FROM IDFILE: every id in IDFILE is delivered, with its
# receipt (checks only the ones not yet seen so; keeps $W/pending)
all_delivered() {
	local id left=()
	[ -f "$W/pending" ] || cp "$2" "$W/pending"
	while read -r id; do
		receipted "$1" "$id" || left+=("$id")
	done <"$W/pending"
	printf '%s\n' "${left[@]}" | grep . >"$W/pending.new"
	mv "$W/pending.new" "$W/pending"
	[ ! -s "$W/pending" ]
}

# ---- 1. receiver killed mid-burst ----
: >"$W/ids1"
for i in $(seq 1 "$N"); do
	nl_send 320300 371300 case.submit hukou.transfer >>"$W/ids1"
	if [ "$i" = $((N * 3 / 10)) ]; then
		nl_kill9 371300
		echo "killed 371300 after $(inbox_depth 320300 >/dev/null; wc -l <"$W/ids1") submissions"
	fi
	if [ "$i" = $((N * 6 / 10)) ]; then
		nl_start 371300
		echo "restarted 371300"
	fi
done
nl_eq "ids submitted" "$N" "$(sort -u "$W/ids1" | wc -l)"
start=$(date +%s)
rm -f "$W/pending"
nl_wait 120 "320300's queue drained after the receiver's crash" queue_empty 320300
nl_wait 10 "all $N messages delivered after the receiver's crash" all_delivered 320300 "$W/ids1"
echo "phase 1: all delivered $(($(date +%s) - start)) s after the burst"
nl_eq "371300 inbox: exactly $N distinct ids" "$(sort "$W/ids1")" "$(nl_inbox_ids 371300 | sort -u)"
nl_eq "371300 inbox: no duplicate rows" "$N" "$(nl_inbox_ids 371300 | wc -l)"
nl_eq "371300 inbox depth" "$N" "$(inbox_depth 371300)"
out=$("$TB" audit verify --node "$(nl_conf 371300)" 2>&1) || nl_fail "audit verify 371300 after SIGKILL" "exit 0" "$out"

# ---- 2. sender killed mid-burst ----
# The receiver is paused (SIGSTOP) while the first half is submitted, so
# that a backlog is in flight when the sender dies: some envelopes reach
# 341300 whose receipts 320300 never records, and are sent again after
# the restart (341300 must answer with the original receipt, not store
# them twice).
N2=$((N / 2))
: >"$W/ids2"
kill -STOP "$(nl_pid 341300)"
for i in $(seq 1 $((N2 / 2))); do
	nl_send 320300 341300 case.submit hukou.transfer >>"$W/ids2"
done
kill -CONT "$(nl_pid 341300)"
sleep 0.2
nl_kill9 320300
printed=$(wc -l <"$W/ids2")
echo "killed 320300 after $printed submissions ($(inbox_depth 341300) of them received)"
# submissions while it is down fail and print no id
rc=0
"$TB" send --node "$(nl_conf 320300)" --to 341300 --type case.submit >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || nl_fail "tongban send to a dead node must fail"
nl_start 320300
for i in $(seq 1 $((N2 - printed))); do
	nl_send 320300 341300 case.submit hukou.transfer >>"$W/ids2"
done
start=$(date +%s)
rm -f "$W/pending"
nl_wait 120 "320300's queue drained after its crash" queue_empty 320300
nl_wait 10 "all messages delivered after the sender's crash" all_delivered 320300 "$W/ids2"
echo "phase 2: all delivered $(($(date +%s) - start)) s after restart"
nl_eq "341300 inbox: every id once" "$(sort "$W/ids2")" "$(nl_inbox_ids 341300 | sort)"
nl_eq "341300 inbox depth" "$N2" "$(inbox_depth 341300)"
dup=$(nl_metric 341300 'tongban_messages_in_total{result="duplicate"}')
echo "341300 answered $dup re-sent envelope(s) with their original receipt"

# ---- 3. messages held by the sender when it dies ----
N3=20
: >"$W/ids3"
kill -STOP "$(nl_pid 341300)"
for i in $(seq 1 "$N3"); do
	nl_send 320300 341300 case.submit hukou.transfer >>"$W/ids3"
done
sleep 0.3 # sent from memory, unanswered
nl_kill9 320300
kill -CONT "$(nl_pid 341300)"
logged=$(wc -c <"$W/320300.log")
nl_start 320300
start=$(date +%s)
released=$(tail -c +$((logged + 1)) "$W/320300.log" | grep 'due again after the restart')
# All N3 when they were all sent from memory before the kill.  On a loaded
# machine the submissions can outlast answer_timeout: the first exchange
# then times out, the peer counts as failing and is probed one exchange at
# a time (issue 18), so the rest go back to the journal's queue and some
# are tried from there; those carry a last error and are due after their
# answer timeout, not released.
r=$(printf '%s\n' "$released" | sed -n 's/.* \([0-9][0-9]*\) queued message(s) due again after the restart.*/\1/p')
NL_CHECKS=$((NL_CHECKS + 1))
[ "${r:-0}" -ge 1 ] && [ "${r:-0}" -le "$N3" ] ||
	nl_fail "320300's restart releases the messages it held" "1..$N3 queued message(s) due again" "$released"
rm -f "$W/pending"
# (the log line above shows they were made due at once; with the test's
# answer_timeout their hold would end 10 s after they were queued anyway)
nl_wait 25 "held messages delivered after the restart" \
	all_delivered 320300 "$W/ids3"
echo "phase 3: all delivered $(($(date +%s) - start)) s after restart"
nl_eq "341300 inbox: phase 3 ids once each" "$N3" \
	"$(nl_inbox_ids 341300 | grep -cFx -f "$W/ids3")"

for m in 320300 371300 341300; do
	out=$("$TB" audit verify --node "$(nl_conf "$m")" 2>&1) || nl_fail "audit verify $m" "exit 0" "$out"
done
for m in 320300 371300 341300; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done
nl_done
