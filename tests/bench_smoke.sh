#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/bench_smoke.sh - tongban-bench still runs end to end.  A smoke
# test, not a timing test: each subcommand, on a small input, must exit 0
# and end with its JSON line carrying every documented figure as a
# positive number (docs/PERFORMANCE.md holds the measured values).
# node starts two real tongban-node processes and the libcoap echo.
set -u
: "${TB_BUILDDIR:=.}"
B="$TB_BUILDDIR/tongban-bench"
[ -x "$B" ] || { echo "FAIL: $B not built" >&2; exit 1; }
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }

# last_json SUBCOMMAND ARGS...: runs it, prints its last line.
last_json() {
	local out rc=0
	out=$(timeout 300 "$B" "$@" 2>"$W/err") || rc=$?
	[ "$rc" = 0 ] || fail "tongban-bench $* exited $rc: $(tail -n 3 "$W/err")"
	printf '%s\n' "$out" | tail -n 1
}

# positive JSON NAME...: each NAME is a member of JSON with a number > 0.
positive() {
	local json=$1 k v
	shift
	[[ "$json" == \{*\} ]] || fail "last line is not a JSON object: $json"
	for k in "$@"; do
		v=$(printf '%s' "$json" | sed -n "s/.*\"$k\":\([0-9.]*\).*/\1/p")
		[ -n "$v" ] || fail "$k missing in $json"
		awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "$k is not positive: $json"
		checks=$((checks + 1))
	done
}

W=$(mktemp -d "${TMPDIR:-/tmp}/tbbench.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP

j=$(last_json crypto --seconds 1)
positive "$j" open_per_s seal_per_s baseline_verify_per_s ratio envelope_bytes
# SM2/SM3 envelopes against bare OpenSSL SM2 verify
j=$(last_json crypto --seconds 1 --alg sm2)
positive "$j" open_per_s seal_per_s baseline_verify_per_s ratio envelope_bytes
[[ "$j" == *'"alg":"sm2",'* ]] || fail "crypto --alg sm2: alg is not sm2: $j"

j=$(last_json registry --members 300 --runs 1)
positive "$j" members registry_bytes signatures verify_index_ms lookups_per_s
[[ "$j" == *'"members":300,'* ]] || fail "registry: members is not 300: $j"

# --set reaches both nodes: plain JSON exchanges and small batches
j=$(last_json node --messages 400 --set deflate=0 --set batch_max=8)
positive "$j" msgs_per_s p50_ms p99_ms baseline_per_s ratio messages latency_load_per_s \
	sender_cpu_us_per_msg receiver_cpu_us_per_msg both_ways_msgs_per_s drain_msgs_per_s \
	datagrams_per_msg
# zero where the temporary directory is on tmpfs (not counted as storage)
for k in sender_written_kib_per_msg receiver_written_kib_per_msg; do
	[[ "$j" =~ \"$k\":[0-9]+\.[0-9](,|\}) ]] || fail "$k missing in $j"
	checks=$((checks + 1))
done
[[ "$j" == *'"messages":400,'* ]] || fail "node: messages is not 400: $j"
checks=$((checks + 2))

# the journal's bytes per message, each side
j=$(last_json journal --messages 400)
positive "$j" messages sender_bytes_per_msg receiver_bytes_per_msg sender_audit_per_msg \
	receiver_audit_per_msg

# a bad argument is a usage error (exit 2), not a run
rc=0
"$B" node --messages 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "node --messages 1: exit $rc, expected 2"
rc=0
"$B" node --set deflate >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "node --set without =VALUE: exit $rc, expected 2"
rc=0
"$B" journal --rate 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "journal --rate 1: exit $rc, expected 2"
checks=$((checks + 3))
echo "PASS: $checks checks"
