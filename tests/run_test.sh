#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/run_test.sh - runs one scripted test for `make check`
# (SH_LOG_COMPILER in Makefile.am):
#
#   tests/run_test.sh tests/node_x.sh
#
# The test runs in a session, and so a process group, of its own (setsid),
# so that everything it starts can be found again.  When it ends, passed
# or not, whatever it left in its group is killed; a test that left a
# process behind fails (a test stops what it starts).  On SIGINT, SIGTERM
# or SIGHUP the whole group is stopped (SIGTERM, then SIGKILL).
#
# Exit status 75 means "a port this test was given was taken by someone
# else before its process could bind it" (tests/ports.sh): the test is run
# again, on new ports, up to 5 times in all.
test=$1
shift
[ -n "$test" ] || { echo "usage: run_test.sh TEST [ARGS...]" >&2; exit 99; }
pgf=$(mktemp "${TMPDIR:-/tmp}/tbrun.XXXXXX") || exit 99

# the test's process group, once it has written it
group() { cat "$pgf" 2>/dev/null; }

# signal SIG: SIG to the test's whole group (quietly none when it is gone)
signal() {
	_g=$(group)
	[ -n "$_g" ] && kill -s "$1" -- "-$_g" 2>/dev/null
}

# gone: true when no process of the group is left (waits up to 2 s for
# processes that are exiting)
gone() {
	_i=0
	while signal 0; do
		[ $_i -lt 20 ] || return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	return 0
}

trap 'signal TERM; gone || signal KILL; rm -f "$pgf"; exit 1' INT TERM HUP

attempt=1
while :; do
	: >"$pgf"
	setsid -w sh -c 'echo $$ >"$0" && exec "$@"' "$pgf" "$test" "$@" &
	wait $!
	rc=$?
	if ! gone; then
		echo "FAIL: $test left processes behind (killed now):" >&2
		ps -o pid=,pgid=,args= -e 2>/dev/null | awk -v g="$(group)" '$2 == g' >&2
		signal KILL
		[ "$rc" = 0 ] && rc=1
	fi
	[ "$rc" = 75 ] && [ $attempt -lt 5 ] || break
	attempt=$((attempt + 1))
	echo "# $test: a port it was given was taken; running it again on other ports (attempt $attempt of 5)"
done
rm -f "$pgf"
[ "$rc" = 75 ] && { echo "FAIL: $test: ports taken on each of 5 attempts" >&2; rc=1; }
exit "$rc"
