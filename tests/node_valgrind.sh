#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_valgrind.sh - one exchange between two nodes that both run
# under valgrind (memcheck): no invalid access, no use of uninitialised
# memory, no definite leak.  Both are stopped with SIGTERM and must exit 0
# (valgrind exits 99 on an error).  Still-reachable memory of libcoap and
# GnuTLS at exit does not count.  Skipped (77) without valgrind and on a
# sanitizer build.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
TBN0="$TB_BUILDDIR/tongban-node"
if nl_sanitized; then
	echo "SKIP: sanitizer build (valgrind and ASan do not mix)"
	exit 77
fi
nl_init
nl_devfed 320300,371300
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --track-origins=yes --num-callers=30)
NL_START_TIMEOUT=90
for m in 320300 371300; do
	nl_start "$m" "${VG[@]}" --log-file="$W/vg.$m.txt"
done

a=$(nl_send 320300 371300 case.submit hukou.transfer) || exit 1
b=$(nl_send 371300 320300 case.submit hukou.transfer) || exit 1
nl_wait 90 "320300 -> 371300 delivered under valgrind" nl_delivered 320300 "$a"
nl_wait 90 "371300 -> 320300 delivered under valgrind" nl_delivered 371300 "$b"
nl_eq "inbox of 371300" "$a" "$(nl_inbox_ids 371300)"
nl_eq "inbox of 320300" "$b" "$(nl_inbox_ids 320300)"
# a refused envelope and a replay exercise the error and duplicate paths
if nl_have_coap_client; then
	"$TB" msg new --type case.submit --from 320300 --to 371300 --body "$(nl_case_body)" |
		"$TB" msg seal --key "$(nl_signkey 320300)" >"$W/s.json"
	nl_coap "$F/320300" post /fed/msg 371300 "$W/s.json" -t 50
	nl_eq "POST under valgrind" 2.01 "$NL_CODE"
	nl_coap "$F/320300" post /fed/msg 371300 "$W/s.json" -t 50
	nl_eq "replay under valgrind" 2.04 "$NL_CODE"
	sed 's/"to":"371300"/"to":"371301"/' "$W/s.json" >"$W/bad.json"
	nl_coap "$F/320300" post /fed/msg 371300 "$W/bad.json" -t 50
	nl_eq "refusal under valgrind" 4.01 "$NL_CODE"
	nl_coap "$F/testids/foreign" get /fed/status 371300
	nl_eq "refused handshake under valgrind" "" "$NL_CODE"
fi
nl_http 320300 GET /metrics >/dev/null
for m in 320300 371300; do
	nl_stop "$m" TERM
	if [ "$NL_EXIT" != 0 ]; then
		sed 's/^/    /' "$W/vg.$m.txt" | head -n 80 >&2
		nl_fail "$m under valgrind: exit status after SIGTERM" "0" "$NL_EXIT (99: valgrind found errors)"
	fi
	nl_ok
done
nl_done
