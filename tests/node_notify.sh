#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_notify.sh - tongban-node under systemd (Type=notify), without
# systemd: tests/notify_sink holds a unix datagram socket given to the
# node as NOTIFY_SOCKET, with WATCHDOG_USEC=1 s.  The node sends READY=1
# once it serves (after /healthz answers is fine: both are set up first),
# WATCHDOG=1 every 0.5 s from its loop, RELOADING=1 (with MONOTONIC_USEC)
# then READY=1 again around a SIGHUP, and STOPPING=1 on SIGTERM, then
# exits 0.  Skipped when built without libsystemd.  About 10 s.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
grep -q '^#define HAVE_LIBSYSTEMD 1' "$TB_BUILDDIR/config.h" 2>/dev/null || {
	echo "SKIP: built without libsystemd (no sd_notify)"
	exit 77
}
nl_init
nl_devfed 320300
S=$W/notify
"$TB_BUILDDIR/tests/notify_sink" "$S" >"$W/notify.out" 2>&1 &
for i in $(seq 1 50); do [ -S "$S" ] && break; sleep 0.1; done
[ -S "$S" ] || nl_fail "notify_sink socket" "$S" "$(cat "$W/notify.out")"

nl_start 320300 env NOTIFY_SOCKET="$S" WATCHDOG_USEC=1000000
states() { grep -v '^WATCHDOG=1$' "$W/notify.out" | tr '\n' '|'; }
has_states() { [ "$(states)" = "$1" ]; }
nl_wait 10 "READY=1 from the node" has_states "READY=1|"
nl_has "watchdog logged" "systemd watchdog: WATCHDOG=1 every 500 ms" "$(cat "$W/320300.log")"
n_dog() { grep -c '^WATCHDOG=1$' "$W/notify.out"; }
dogs() { [ "$(n_dog)" -ge "$1" ]; }
d0=$(n_dog)
nl_wait 10 "three WATCHDOG=1 more" dogs $((d0 + 3))

kill -HUP "$(nl_pid 320300)"
reloaded() { states | grep -q -E '^READY=1\|RELOADING=1 MONOTONIC_USEC=[0-9]+\|READY=1\|$'; }
nl_wait 10 "RELOADING=1 (MONOTONIC_USEC) then READY=1 on SIGHUP" reloaded
nl_has "reload logged" "configuration reloaded" "$(cat "$W/320300.log")"
# still serving, still fed
nl_healthy 320300 || nl_fail "node healthy after SIGHUP" "ok" "no"
d1=$(n_dog)
nl_wait 10 "WATCHDOG=1 after the reload" dogs $((d1 + 2))

nl_stop 320300
nl_eq "exit status after SIGTERM" 0 "$NL_EXIT"
stopped() { states | grep -q -E '\|READY=1\|STOPPING=1\|$'; }
nl_wait 5 "STOPPING=1 on SIGTERM" stopped
nl_done
