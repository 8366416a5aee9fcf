#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_rnd.sh - whichever call of the CSPRNG fails, `tongban
# dev-federation` fails with it (issue 17: the API tokens were made from
# random bytes nobody checked, so a failure gave a guessable token and
# exit 0).  tests/fail_rnd.so (LD_PRELOAD) makes the k-th gnutls_rnd()
# call fail, for k = 1, 2, ... until a run makes fewer calls than k:
# every run with a failure injected must exit non-zero.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
SO="$TB_BUILDDIR/tests/fail_rnd.so"
[ -f "$SO" ] || { echo "SKIP: $SO not built"; exit 77; }
# the sanitizer runtime wants to come first; this library needs none
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS

k=1
while [ "$k" -le 400 ]; do
	rm -rf "$W/fed" "$W/mark"
	rc=0
	TB_RND_FAIL=$k TB_RND_MARK="$W/mark" LD_PRELOAD="$SO" \
		"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30300 \
		>"$W/out" 2>"$W/err" || rc=$?
	[ -f "$W/mark" ] || break # fewer than k calls: every one has failed once
	TB_CHECKS=$((TB_CHECKS + 1))
	[ "$rc" != 0 ] || tb_fail "dev-federation with random call $k failing" "exit non-zero" \
		"exit 0 ($(ls "$W/fed"/*/api.token 2>/dev/null | wc -l) API tokens written)"
	[ "$rc" -lt 126 ] || tb_fail "dev-federation with random call $k failing" "an error exit" "exit $rc"
	k=$((k + 1))
done
[ "$k" -gt 1 ] || tb_fail "fault injection" "gnutls_rnd interposed" "no call failed"
[ "$k" -le 400 ] || tb_fail "random calls of dev-federation" "at most 400" "more"
# and without a failure it succeeds
rm -rf "$W/fed"
rc=0
"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30300 >"$W/out" 2>&1 || rc=$?
tb_expect_eq "dev-federation without failures" 0 "$rc"
echo "($((k - 1)) random calls each failed once)"
tb_done
