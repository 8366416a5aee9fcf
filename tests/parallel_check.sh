#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/parallel_check.sh - the proof that test runs do not collide: two
# full `make check` runs at the same time, in two build trees of this
# source tree on one machine, ROUNDS times in a row (3 unless given).
# Every run must pass, and no process of either tree (a node, a sink, a
# peer) may be left running after a round.  tests/README.
#
#   tests/parallel_check.sh [ROUNDS]        from anywhere; or
#   make check-parallel                     from a build tree (same
#                                           configure options)
#
# Environment: PARALLEL_DIR (where the two trees go; default a new
# directory under ${TMPDIR:-/tmp}, removed when everything passed),
# PARALLEL_JOBS (make -j of each run, default 2), CONFIGURE_FLAGS
# (default --enable-werror).  The source tree must not be configured in
# place (build out of tree, e.g. build/).
# Exit 0 when all 2 x ROUNDS runs passed, 1 otherwise (the failing runs'
# test-suite.log is printed).
set -u
rounds=${1:-3}
jobs=${PARALLEL_JOBS:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
[ ! -f "$src/config.status" ] ||
	{ echo "parallel_check: $src is configured in place; use out-of-tree builds" >&2; exit 2; }
[ -x "$src/configure" ] || (cd "$src" && ./bootstrap >/dev/null) || exit 1
dir=${PARALLEL_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tbparallel.XXXXXX")} || exit 1
mkdir -p "$dir"
say() { echo "parallel_check: $*"; }

for t in a b; do
	mkdir -p "$dir/$t"
	if [ ! -f "$dir/$t/Makefile" ]; then
		say "configuring $dir/$t (${CONFIGURE_FLAGS:---enable-werror})"
		# shellcheck disable=SC2086
		(cd "$dir/$t" && eval "\"$src/configure\" -q ${CONFIGURE_FLAGS:---enable-werror}") ||
			{ say "configure failed in $dir/$t"; exit 1; }
	fi
	say "building $dir/$t"
	make -C "$dir/$t" -s -j"$jobs" all >"$dir/$t.build.log" 2>&1 &&
		make -C "$dir/$t" -s -j"$jobs" check TESTS= >>"$dir/$t.build.log" 2>&1 ||
		{ tail -n 30 "$dir/$t.build.log"; say "build failed in $dir/$t"; exit 1; }
done

# leftovers: processes whose command line names a program of either tree
leftovers() {
	ps -o pid=,args= -e 2>/dev/null | grep -F -e "$dir/a/" -e "$dir/b/" | grep -v -F "grep -F"
}

failed=0
r=1
while [ "$r" -le "$rounds" ]; do
	start=$(date +%s)
	for t in a b; do
		make -C "$dir/$t" -s -j"$jobs" check >"$dir/$t.round$r.log" 2>&1 &
		eval "pid_$t=\$!"
	done
	rc_a=0
	rc_b=0
	# shellcheck disable=SC2154
	wait "$pid_a" || rc_a=$?
	# shellcheck disable=SC2154
	wait "$pid_b" || rc_b=$?
	took=$(($(date +%s) - start))
	for t in a b; do
		eval "rc=\$rc_$t"
		summary=$(grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/$t/test-suite.log" 2>/dev/null |
			tr -s ' ' | tr '\n' ' ')
		if [ "$rc" = 0 ]; then
			say "round $r, tree $t: passed in ${took}s ($summary)"
		else
			say "round $r, tree $t: FAILED (make exit $rc) ($summary)"
			grep -E '^(FAIL|ERROR):' "$dir/$t.round$r.log" | sed 's/^/    /'
			cp "$dir/$t/test-suite.log" "$dir/$t.round$r.test-suite.log" 2>/dev/null
			sed -n '/^FAIL:\|^ERROR:/,/^$/p' "$dir/$t/test-suite.log" 2>/dev/null | head -n 40
			failed=$((failed + 1))
		fi
	done
	left=$(leftovers)
	if [ -n "$left" ]; then
		say "round $r: processes left running:"
		echo "$left" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
	r=$((r + 1))
done

if [ "$failed" = 0 ]; then
	say "PASS: $rounds rounds of two simultaneous make check runs, all passed, nothing left running"
	[ -n "${PARALLEL_DIR:-}" ] || rm -rf "$dir"
	exit 0
fi
say "FAIL: $failed failure(s); logs in $dir"
exit 1
