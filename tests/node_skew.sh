#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_skew.sh - clocks are a diagnosed condition, not a retry loop
# (issue 18, point 4), with libfaketime.
#
# * 341300 runs 10 minutes ahead (clock_skew is 300 s everywhere): it
#   stores 320300's messages, and its receipts, "created" 600 s ahead,
#   fail 320300's time check.  They are signed by 341300 and name the
#   digests of 320300's messages: 320300 accepts them as delivery, each
#   message is sent at most twice (attempts), 341300 stores each once,
#   320300 logs a clock skew line naming the peer's offset and counts
#   the receipts in tongban_clock_skew_receipts_total, and
#   tongban_peer_clock_offset_seconds{peer="341300"} is about 600.
# * 371300 runs 10 minutes ahead too, sending to 321300 and 370400, whose
#   clocks are right (they allow 900 s of skew, so that they take its
#   messages): both peers' receipts say 371300's clock is 600 s ahead of
#   theirs, more than half its clock_skew, so 371300 warns that its own
#   clock differs from most peers'.
# * /fed/status carries the node's time.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -r "$FT" ] || { echo "SKIP: libfaketime not installed"; exit 77; }
nl_init
nl_devfed 320300,341300,371300,321300,370400
for m in 321300 370400; do printf 'clock_skew = 900\n' >>"$(nl_conf "$m")"; done
# (an ASan build wants its runtime first among the preloaded libraries:
# libfaketime before it is fine, so the check is turned off)
ahead() {
	nl_start "$1" env LD_PRELOAD="$FT" FAKETIME=+600 FAKETIME_DONT_FAKE_MONOTONIC=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}
nl_start 320300
ahead 341300
ahead 371300
nl_start 321300
nl_start 370400

# ---- a receiver 10 minutes ahead ----
ids=()
for i in 1 2 3; do ids+=("$(nl_send 320300 341300 case.submit hukou.transfer)") || exit 1; done
for id in "${ids[@]}"; do
	nl_wait 30 "$id delivered despite the receiver's clock" nl_delivered 320300 "$id"
done
sleep 3 # anything resent would show by now
for id in "${ids[@]}"; do
	a=$(nl_status 320300 "$id" | sed -n 's/.*"attempts":\([0-9]*\).*/\1/p')
	NL_CHECKS=$((NL_CHECKS + 1))
	[ "${a:-99}" -le 2 ] || nl_fail "$id sent at most twice" "attempts <= 2" "$(nl_status 320300 "$id")"
	nl_eq "$id stored once by 341300" 1 "$(nl_inbox_ids 341300 | grep -c "$id")"
done
skewed=$(nl_metric 320300 tongban_clock_skew_receipts_total)
NL_CHECKS=$((NL_CHECKS + 1))
[ "${skewed:-0}" -ge 3 ] || nl_fail "receipts counted as clock skew" ">= 3" "${skewed:-none}"
off=$(nl_metric 320300 'tongban_peer_clock_offset_seconds{peer="341300"}')
NL_CHECKS=$((NL_CHECKS + 1))
[ "${off:-0}" -ge 590 ] && [ "${off:-0}" -le 610 ] || nl_fail "341300's clock offset" "about 600" "${off:-none}"
line=$(grep 'clock skew' "$W/320300.log" | head -n 1)
nl_has "320300 logs the clock skew" "peer 341300: clock skew: its time is" "$line"
nl_has "the line names the offset" "ahead of ours" "$line"
NL_CHECKS=$((NL_CHECKS + 1))
[ "$(grep -c 'clock skew' "$W/320300.log")" -le 2 ] || nl_fail "clock skew lines rate-limited" "<= 2" "$(grep 'clock skew' "$W/320300.log")"
! grep -q "this node's clock differs" "$W/320300.log" ||
	nl_fail "320300 does not blame its own clock (one peer of one only, and that peer is off)"

# ---- this node's own clock off: most peers say so ----
a=$(nl_send 371300 321300 case.submit hukou.transfer) || exit 1
b=$(nl_send 371300 370400 case.submit hukou.transfer) || exit 1
nl_wait 30 "371300 -> 321300 delivered" nl_delivered 371300 "$a"
nl_wait 30 "371300 -> 370400 delivered" nl_delivered 371300 "$b"
nl_wait 10 "371300 warns of its own clock" grep -q "this node's clock differs from 2 of 2 peers" "$W/371300.log"
nl_has "it is ahead" "it is ahead of theirs" "$(grep "this node's clock differs" "$W/371300.log")"

if nl_have_coap_client; then
	nl_coap "$F/320300" get /fed/status 341300
	t=$(nl_coap_body | sed -n 's/.*"time":\([0-9]*\).*/\1/p')
	d=$((${t:-0} - $(date +%s)))
	NL_CHECKS=$((NL_CHECKS + 1))
	[ "$d" -ge 590 ] && [ "$d" -le 610 ] || nl_fail "/fed/status time of 341300" "about now + 600" "${t:-none} ($(nl_coap_body))"
fi
nl_done
