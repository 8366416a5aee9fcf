#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_badpeer.sh - a member whose node answers with broken bodies.
# tests/fake_peer stands in for Linyi (371300) with Linyi's own
# certificate: it accepts POST /fed/msg and answers 2.04 either with a
# body marked as deflated (11050) that is no zlib stream, or with no body
# at all.  Xuzhou's node must not crash or count the message delivered;
# it keeps the message queued for retry, and the reason it stores (shown
# by `tongban status`) says what was wrong with the answer.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300
# retry soon, so that the second answer comes within the test
echo "retry_min_ms = 200" >>"$F/320300/node.conf"
[ -n "${BADPEER_DEBUG:-}" ] && echo "log_level = debug" >>"$F/320300/node.conf"
nl_start 320300
FAKE="$TB_BUILDDIR/tests/fake_peer"
[ -x "$FAKE" ] || nl_fail "tests/fake_peer not built in $TB_BUILDDIR"

# fake_peer MODE: Linyi's port, Linyi's certificate; PID in $FAKE_PID
fake() {
	"$FAKE" "$(nl_port 371300)" "$F/371300/node-chain.pem" "$F/371300/node.key" "$F/cas.pem" \
		"$1" "$W/answered" 60 >>"$W/fake.log" 2>&1 &
	FAKE_PID=$!
	echo "$FAKE_PID" >"$W/pids/fake"
}
answered() { [ "$(cat "$W/answered" 2>/dev/null || echo 0)" -ge "$1" ]; }
# has_error ID TEXT: the stored reason of queued message ID mentions TEXT
has_error() {
	local st
	st=$(nl_status 320300 "$1" 2>/dev/null) || return 1
	[[ "$st" == *'"state":"queued"'* && "$st" == *"$2"* ]]
}

# ---- a deflated answer that does not inflate ----
fake corrupt-deflate
id=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 30 "fake peer answered twice (the message was retried)" answered 2
nl_wait 10 "reason of $id names the unreadable answer" has_error "$id" "answer not readable"
st=$(nl_status 320300 "$id")
nl_has "status of $id: still queued" '"state":"queued"' "$st"
case "$st" in *"server error"*) nl_fail "reason of $id" "not a server error" "$st" ;; esac
nl_ok
grep -q "answer of 371300 not readable" "$W/320300.log" ||
	nl_fail "log of 320300" "answer of 371300 not readable" "$(tail -n 5 "$W/320300.log")"
nl_ok
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null

# ---- an answer without a body ----
# (a new peer process knows none of the old DTLS sessions: Xuzhou
# restarts too, so that it does not wait out a dead session first)
nl_stop 320300
rm -f "$W/answered"
fake empty
nl_start 320300
id2=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
nl_wait 30 "fake peer answered the second message" answered 2
nl_wait 10 "reason of $id2 names the empty answer" has_error "$id2" "2.04 without a body"
nl_healthy 320300 || nl_fail "320300 healthy after the broken answers"
nl_ok
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null

nl_stop 320300
nl_eq "320300 exits 0 on SIGTERM" 0 "$NL_EXIT"
nl_done
