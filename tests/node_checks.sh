#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_checks.sh - `tongban-node -n` checks what the node will use,
# and start-up runs the same checks: each bad configuration of issue 18
# makes both `-n` and a start exit 1 with its one line
# "file:line: key: why" on stderr (every failure found, not the first):
# * member_id is not the certificate's subject serialNumber;
# * the key does not match the certificate;
# * a JSON file (the trust anchor) given as root;
# * the node's own certificate has expired (faketime: a year on), with the
#   cert.* reason of the chain check;
# * a world-readable key and token (two lines, one run);
# * the DTLS port held by another socket (one with SO_REUSEADDR, as
#   libcoap's own), the API port held: errno named (EADDRINUSE).
# And what is only a warning: a registry that has expired (faketime
# +40 d; the dev registry is valid 30 days) is "registry expired: ...
# the node will start in recovery".
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
# faketime preloads itself: an ASan build must not insist on coming first
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
nl_init
nl_devfed 320300,371300
conf=$F/320300/node.conf
bad=$F/320300/bad.conf
n() { grep -n "^$1 = " "$conf" | cut -d: -f1; }
edit() { sed "$1" "$conf" >"$bad"; }

# both WHAT EXPECTED [WRAPPER...]: -n on $bad, then a start on it, each
# exits 1 with EXPECTED in a failure line on stderr
both() {
	local what=$1 want=$2 rc mode
	shift 2
	for mode in -n start; do
		rc=0
		if [ "$mode" = -n ]; then
			"$@" "$TBN" -n -c "$bad" >"$W/out" 2>"$W/err" || rc=$?
		else
			"$NL_TIMEOUT" 20 "$@" "$TBN" -c "$bad" >"$W/out" 2>"$W/err" || rc=$?
		fi
		nl_eq "$mode exits 1: $what ($(grep -v warning "$W/err" | head -n 3))" 1 "$rc"
		nl_has "$mode names it: $what" "tongban-node: $want" "$(grep '^tongban-node: ' "$W/err" | grep -v '^tongban-node: warning: ')"
		[ ! -s "$W/out" ] || nl_fail "$mode printed on stdout for a refused config" "nothing" "$(cat "$W/out")"
	done
}

out=$("$TBN" -n -c "$conf" 2>&1) || nl_fail "tongban-node -n on a good config" "exit 0" "$out"
nl_has "-n on a good config" "configuration OK" "$out"

edit "s|^member_id = .*|member_id = 371300|"
both "member_id is not the certificate's" \
	"$bad:$(n member_id): member_id: 371300 is not the certificate's serialNumber (320300 in $F/320300/node-chain.pem)"

edit "s|^key = .*|key = ../371300/node.key|"
both "key does not match the certificate" \
	"$bad:$(n cert): cert: $F/320300/node-chain.pem does not certify the key in $F/320300/../371300/node.key"

edit "s|^root = .*|root = ../trust.json|"
both "a JSON file as root" "$bad:$(n root): root: $F/320300/../trust.json is not a PEM certificate"

cp "$conf" "$bad"
both "own certificate expired" "$bad:$(n cert): cert: $F/320300/node-chain.pem: cert.expired: " \
	faketime -f +400d

# both modes at once: two lines in one run
cp "$conf" "$bad"
chmod 644 "$F/320300/node.key" "$F/320300/api.token"
both "world-readable key" "$bad:$(n key): key: $F/320300/node.key is open to group or others (mode 0644): chmod 600 it"
nl_has "and the token in the same run" \
	"tongban-node: $bad:$(n api_token_file): api_token_file: $F/320300/api.token is open to group or others (mode 0644): chmod 600 it" \
	"$(cat "$W/err")"
chmod 600 "$F/320300/node.key" "$F/320300/api.token"

# hold PORT with a socket of TYPE (udp: with SO_REUSEADDR; tcp: listening)
# until the file $W/release exists
hold() {
	perl -MSocket -e '
		my ($type, $port, $flag) = @ARGV;
		socket(my $s, PF_INET, $type eq "udp" ? SOCK_DGRAM : SOCK_STREAM, 0) or die "socket: $!\n";
		setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!\n";
		bind($s, sockaddr_in($port, inet_aton("127.0.0.1"))) or die "bind: $!\n";
		listen($s, 5) if $type eq "tcp";
		open(my $f, ">", "$flag.held"); close($f);
		for (1 .. 600) { last if -e $flag; select(undef, undef, undef, 0.1) }' "$1" "$2" "$W/release" &
	nl_wait 10 "port $2 held" test -e "$W/release.held"
}
release() { touch "$W/release"; wait "$1" 2>/dev/null; rm -f "$W/release" "$W/release.held"; }

cp "$conf" "$bad"
hold udp "$(nl_port 320300)"
pid=$!
both "the DTLS port held" \
	"$bad:$(n listen): listen: cannot listen on 127.0.0.1:$(nl_port 320300): Address already in use (EADDRINUSE)"
release "$pid"
hold tcp "$(nl_api_port 320300)"
pid=$!
both "the API port held" \
	"$bad:$(n api): api: cannot bind the local API on 127.0.0.1:$(nl_api_port 320300): Address already in use (EADDRINUSE)"
release "$pid"

# an expired registry (dev registries last 90 days) is a warning: the
# node starts in recovery (the
# registry lifecycle's state), -n says so
faketime -f +100d "$TBN" -n -c "$conf" >"$W/out" 2>"$W/err"
nl_has "-n warns of an expired registry" \
	"tongban-node: warning: $conf:$(n registry): registry: registry expired: $F/320300/registry.json (serial 1) expired on " \
	"$(cat "$W/err")"
nl_has "... and that the node will start in recovery" "the node will start in recovery" "$(cat "$W/err")"
nl_eq "-n: the expired registry is no failure of the checks" "" \
	"$(grep '^tongban-node: /' "$W/err")"
nl_done
