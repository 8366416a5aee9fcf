# SPDX-License-Identifier: Apache-2.0
# tests/ports.sh - ports for the tests that start processes (POSIX sh).
#
#   . "${TB_SRCDIR:-.}/tests/ports.sh"
#   BASE=$(tp_block 4) || exit 1  # loopback UDP and TCP ports BASE..BASE+3
#                                 # and BASE+1000..BASE+1003 were free
#   ... start processes; when one of them exits during its start:
#   tp_clash "$W"/*.log            # exit 75 when a log reports a port taken
#
# No test uses a fixed port: tp_block draws a random block that was free
# when it looked (tests/port_block, util/tb_port.h).  A process that loses
# the race for one of its ports to some other process says so ("cannot
# listen on ...: Address already in use", "cannot bind ...: Address
# already in use"); the test then exits 75, and tests/run_test.sh runs it
# again from the start, on a new block.

# tp_block SPAN [OFFSET]: prints a base port (tests/port_block).
tp_block() {
	"${TB_BUILDDIR:-.}/tests/port_block" "$@"
}

# tp_clash FILE...: exits 75 when one of the files reports a bind that
# failed because the port was taken.
tp_clash() {
	for _tp_f in "$@"; do
		[ -f "$_tp_f" ] || continue
		if grep -q -E '(cannot listen on|cannot bind).*Address already in use' "$_tp_f"; then
			echo "# port taken: $(grep -h -m 1 -E '(cannot listen on|cannot bind).*Address already in use' "$_tp_f")" >&2
			exit 75
		fi
	done
}

# tp_kill_tree PID: SIGKILL to PID and to everything it started (its
# descendants, found with ps).  Each process is stopped before its
# children are looked up, so that none escapes by forking meanwhile.
tp_kill_tree() {
	local _tp_k
	kill -STOP "$1" 2>/dev/null || return 0
	for _tp_k in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		tp_kill_tree "$_tp_k"
	done
	kill -KILL "$1" 2>/dev/null
}
