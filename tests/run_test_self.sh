#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/run_test_self.sh - tests/run_test.sh keeps its promises: a test
# that exits 75 (a port taken) is run again, at most 5 times; one that
# leaves a process behind fails and the process is killed; exit codes
# pass through; a signal to run_test.sh stops the test's processes.
: "${TB_SRCDIR:=.}"
R="$TB_SRCDIR/tests/run_test.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/tbrt.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
checks=0
fail() { echo "FAIL: $*" >&2; [ -f "$W/out" ] && sed 's/^/  /' "$W/out" >&2; exit 1; }
eq() { checks=$((checks + 1)); [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }

# script NAME BODY: an executable sh script $W/NAME
script() { printf '#!/bin/sh\n%s\n' "$2" >"$W/$1" && chmod +x "$W/$1"; }
# run SCRIPT: runs it under run_test.sh; RC, output in $W/out
run() { RC=0; sh "$R" "$W/$1" >"$W/out" 2>&1 || RC=$?; }
# dead PIDFILE: the process whose pid is in PIDFILE is gone (within 2 s)
dead() {
	i=0
	while kill -0 "$(cat "$1")" 2>/dev/null; do
		[ $i -lt 20 ] || return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# exit 75 twice, then pass: three runs, passes
script clash2 "echo x >>'$W/runs'; [ \$(wc -l <'$W/runs') -ge 3 ] || exit 75; exit 0"
run clash2
eq "75, 75, 0: exit" 0 "$RC"
eq "75, 75, 0: runs" 3 "$(wc -l <"$W/runs")"
grep -q "attempt 3 of 5" "$W/out" || fail "no note of the third attempt"
checks=$((checks + 1))

# always 75: five runs, then a failure (not 75)
rm -f "$W/runs"
script clash "echo x >>'$W/runs'; exit 75"
run clash
eq "always 75: exit" 1 "$RC"
eq "always 75: runs" 5 "$(wc -l <"$W/runs")"

# codes pass through: 0, 1, 77 (skip)
for c in 0 1 77; do
	script "code$c" "exit $c"
	run "code$c"
	eq "exit $c passes through" "$c" "$RC"
done

# a passing test that leaves a process behind fails; the process is killed
script leave "sleep 300 >/dev/null 2>&1 & echo \$! >'$W/left'; exit 0"
run leave
eq "a process left behind: exit" 1 "$RC"
grep -q "left processes behind" "$W/out" || fail "no word of the process left behind"
dead "$W/left" || fail "the process left behind still runs"
checks=$((checks + 2))

# SIGTERM to run_test.sh: the test and what it started are stopped
script hang "sleep 300 >/dev/null 2>&1 & echo \$! >'$W/child'; sleep 300"
sh "$R" "$W/hang" >"$W/out" 2>&1 &
rt=$!
i=0
while [ ! -s "$W/child" ]; do
	[ $i -lt 50 ] || fail "the hanging test did not start"
	sleep 0.1
	i=$((i + 1))
done
kill -TERM "$rt"
RC=0
wait "$rt" || RC=$?
eq "run_test.sh on SIGTERM: exit" 1 "$RC"
dead "$W/child" || fail "the test's child still runs after SIGTERM to run_test.sh"
checks=$((checks + 1))
echo "PASS: $checks checks"
