#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_failover.sh - a sender fails over between a member's endpoints
# (issue 22, point 3; PROTOCOL.md 9.6 "Several endpoints").
#
# 371300 runs as two processes, A and B, each with its own DTLS port and
# its own journal (SQLite: the shared PostgreSQL journal is
# node_pg_pair.sh's; here only the sender's side is under test), both
# listed for 371300 in the registry, A first (`tongban registry set
# --member 371300 --endpoint A --endpoint B`, signed again by the two
# province authorities).  320300 sends.
#   - with both up, messages go to A, the first endpoint;
#   - A killed with -9: the next messages are confirmed through B within
#     5 s of their submission (15 s in a sanitizer build), the sender logs
#     the switch once, and counts no backoff (tongban_peer_up stays 1);
#   - every message is stored exactly once, at A or at B.
# About 15 s on an idle machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300,371300
nl_clone 371300 371300b

# the registry: 371300 at A, then B
nl_endpoints 371300 371300b
R="$W/reg2.json"
out=$("$TB" registry verify "$R" --trust "$F/trust.json" 2>&1) || nl_fail "registry verify" "exit 0" "$out"
out=$("$TB" registry show --json "$R")
nl_has "371300 lists A then B" "\"coaps://127.0.0.1:$(nl_port 371300)\",\"coaps://127.0.0.1:$(nl_port 371300b)\"" "$out"
# a bad endpoint is refused with one line and a non-zero exit
rc=0
out=$("$TB" registry set "$R" --member 371300 --endpoint "no-scheme" 2>&1) || rc=$?
[ "$rc" != 0 ] || nl_fail "registry set --endpoint no-scheme fails" "non-zero" "$rc"
nl_has "registry set --endpoint no-scheme says why" "absolute URI" "$out"

nl_start 371300
nl_start 371300b
nl_start 320300

received() { grep -c "message received: id=$2 .*outcome=stored" "$W/$1.log"; }

declare -a FIRST SECOND
for k in 1 2 3; do FIRST+=("$(nl_send 320300 371300 case.submit hukou.transfer)") || exit 1; done
for id in "${FIRST[@]}"; do
	nl_wait 20 "message $id delivered" nl_delivered 320300 "$id"
	nl_eq "$id stored by A, the first endpoint" 1 "$(received 371300 "$id")"
	nl_eq "$id not stored by B" 0 "$(received 371300b "$id")"
done

BOUND=5
if { nm -a "$TBN" 2>/dev/null; ldd "$TBN" 2>/dev/null; } | grep -q -E 'libasan|libtsan|__asan_init|__tsan_init|valgrind'; then
	BOUND=15
fi
nl_kill9 371300
t0=$(date +%s%N)
for k in 1 2 3; do SECOND+=("$(nl_send 320300 371300 case.submit hukou.transfer)") || exit 1; done
for id in "${SECOND[@]}"; do
	nl_wait 60 "message $id delivered after A died" nl_delivered 320300 "$id"
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "confirmed through B ${ms} ms after A was killed"
NL_CHECKS=$((NL_CHECKS + 1))
[ "$ms" -le $((BOUND * 1000)) ] || nl_fail "the sender switched to B within $BOUND s" "<= $((BOUND * 1000)) ms" "$ms ms"
for id in "${SECOND[@]}"; do
	nl_eq "$id stored by B" 1 "$(received 371300b "$id")"
done
nl_eq "the switch logged once" 1 "$(grep -c 'peer 371300: endpoint 1 of 2 failed' "$W/320300.log")"
nl_has "the switch names the next endpoint" "new sessions go to endpoint 2" "$(cat "$W/320300.log")"
nl_eq "no backoff: the peer stays up" 1 "$(nl_metric 320300 'tongban_peer_up{peer="371300"}')"
nl_done
