#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_ports.sh - a node refuses a port another process holds, and
# says so in words the tests look for (tests/ports.sh: a test that loses
# its ports to another run is run again, not failed).
# 1. A second node on the DTLS port of a running one exits 1 with
#    "cannot listen on HOST:PORT: Address already in use".  (libcoap binds
#    with SO_REUSEADDR, with which Linux let the second node share the
#    UDP port without a word before the node checked.)
#    The refusal names errno (EADDRINUSE); at start-up it is the check
#    of -n, with the configuration line: "node.conf:N: listen: ...", and
#    the process holding the port: "held by pid N (tongban-node)".
# 1b. Any program binding the running node's DTLS port with SO_REUSEADDR
#    (as libcoap does) is refused too: the node clears the option on its
#    socket once bound (tb_port_exclusive).
# 2. One on the running node's API port: "cannot bind the local API on
#    HOST:PORT: Address already in use".
# 3. The running node is unharmed: it still answers on both.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init 3
nl_devfed 320300,371300
nl_start 320300

# second CONF: starts a node on CONF; it must exit 1 within 10 s; its
# stderr in $W/second.err
second() {
	local rc=0
	"$NL_TIMEOUT" 10 "$TBN" -c "$1" >/dev/null 2>"$W/second.err" || rc=$?
	nl_eq "a node on a taken port exits 1 ($(tail -n 1 "$W/second.err"))" 1 "$rc"
}

# same identity and journal directory as 371300, the DTLS port of 320300
mkdir "$F/dup"
cp -r "$F/371300/." "$F/dup/"
sed -i "s/^listen = .*/listen = 127.0.0.1:$(nl_port 320300)/" "$F/dup/node.conf"
second "$F/dup/node.conf"
nl_has "the reason names the DTLS port" \
	"cannot listen on 127.0.0.1:$(nl_port 320300): Address already in use (EADDRINUSE)" "$(cat "$W/second.err")"
nl_has "the reason names the process holding the port (pid and command)" \
	"held by pid $(nl_pid 320300) (tongban-node)" "$(cat "$W/second.err")"
nl_has "the reason names the configuration line" \
	"$F/dup/node.conf:$(grep -n '^listen = ' "$F/dup/node.conf" | cut -d: -f1): listen: " "$(cat "$W/second.err")"
# a socket with SO_REUSEADDR, as libcoap's own, on the running node's port
rc=0
out=$(perl -MSocket -e '
	socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!\n";
	setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!\n";
	bind($s, sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or die "bind: $!\n";
	print "bound\n"' "$(nl_port 320300)" 2>&1) || rc=$?
nl_eq "an SO_REUSEADDR bind of the node's DTLS port is refused ($out)" "bind: Address already in use" "$out"
# which a test takes for a port clash: exit 75, run again (tests/ports.sh)
rc=0
(tp_clash "$W/second.err") 2>/dev/null || rc=$?
nl_eq "tp_clash on the refusal" 75 "$rc"

# its own DTLS port, the API port of 320300
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$(nl_port 371300)/" \
	-e "s/^api = .*/api = 127.0.0.1:$(nl_api_port 320300)/" "$F/dup/node.conf"
second "$F/dup/node.conf"
nl_has "the reason names the API port" \
	"cannot bind the local API on 127.0.0.1:$(nl_api_port 320300): Address already in use" \
	"$(cat "$W/second.err")"
rc=0
(tp_clash "$W/second.err") 2>/dev/null || rc=$?
nl_eq "tp_clash on the refusal" 75 "$rc"
rc=0
(tp_clash "$W/320300.log") || rc=$?
nl_eq "tp_clash on a log without one" 0 "$rc"

# 320300 still answers: its API, and over DTLS (a message to 371300 and
# its receipt)
nl_healthy 320300 || nl_fail "320300 answers /healthz after the others tried its ports"
nl_ok
nl_start 371300
id=$(nl_send 371300 320300 control.ping) || exit 1
nl_wait 20 "ping 371300 -> 320300 delivered" nl_delivered 371300 "$id"
for m in 320300 371300; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done
nl_done
