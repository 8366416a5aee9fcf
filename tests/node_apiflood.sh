#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_apiflood.sh - the local API refuses early (issue 24 point 5):
# a client without a token cannot exhaust the node's memory, its file
# descriptors, its CPU or its log through the local HTTP API.
#
#  1. A 100 MB request line, and a 100 MB header line, streamed by
#     tests/api_flood (never built in memory), are refused (400, or the
#     connection reset) after at most a few MB were taken by the
#     kernel's buffers, and the node's VmRSS grows by at most 1 MB.
#  2. A slow client (one header byte every 500 ms) is closed after
#     api_timeout.  SCALED: api_timeout is 3 s here (default 30 s).
#  3. 20,000 idle connections (10,000 under sanitizers; two processes of
#     half each; fewer if the hard open-file limit does not allow it, said
#     in the output) against a node whose `ulimit -n` is 1024, so its cap
#     is 512: the node keeps 512, closes the longest idle for each new
#     one, answers /healthz on a new connection within 100 ms (3 of 5
#     tries; 500 ms under sanitizers), uses little CPU while they are
#     held, and its log stays under 1 MB with the closings counted in one
#     line.
#  4. The open-file limit itself: api_max_connections 4000 with `ulimit
#     -n` 256 and 5,000 connections.  accept fails with EMFILE: it pauses
#     (counted in tongban_api_accept_paused_total{reason="fd_limit"})
#     instead of spinning, the cap drops below the limit, /healthz still
#     answers, and the log stays small (libevent's "Error from accept()
#     call" never appears).
# Takes about 40 s on a loaded 2-core machine (load 10), most of it the
# 25,000 TCP handshakes; 80 s under ASan.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300
FL="$TB_BUILDDIR/tests/api_flood"
[ -x "$FL" ] || nl_fail "tests/api_flood not built"
ID=320300
P=$(nl_api_port $ID)
CONF=$(nl_conf $ID)
SAN=0
if nl_sanitized; then
	SAN=1
fi
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$(nl_pid $ID)/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(nl_pid $ID)/stat"; }
metric() { nl_metric $ID "$1"; }
# start ID with `ulimit -n N` (the node's own open-file limit)
start_limited() { nl_start $ID sh -c "ulimit -n $1 && exec \"\$@\"" sh; }

# --- 1. oversized request line and header line --------------------------
echo "api_timeout = 3" >>"$CONF"
nl_start $ID
before=$(rss)
for what in line header; do
	out=$("$FL" "$what" "$P" 100) || nl_fail "api_flood $what"
	sent=${out#sent=}
	sent=${sent%% *}
	status=${out##*status=}
	# the node stops reading at 16 KiB; what it did not read fills the
	# kernel's socket buffers (a few MB on loopback) and no more
	[ "$sent" -lt $((32 * 1024 * 1024)) ] ||
		nl_fail "a 100 MB $what was refused early" "under 32 MiB sent" "$out"
	case $status in 400 | 413 | 0) nl_ok ;; *) nl_fail "the $what refused" "400, 413 or a reset" "$out" ;; esac
done
after=$(rss)
[ $((after - before)) -le 1024 ] ||
	nl_fail "VmRSS grew by at most 1 MB" "<= 1024 kB" "$before kB -> $after kB"
nl_ok
nl_healthy $ID || nl_fail "/healthz after the long lines"
# a request just under the limit is still served
hdr=$(head -c 12000 /dev/zero | tr '\0' a)
code=$(exec 3<>"/dev/tcp/127.0.0.1/$P" && printf 'GET /healthz HTTP/1.0\r\nX-Big: %s\r\n\r\n' "$hdr" >&3 &&
	head -n 1 <&3 | cut -d' ' -f2)
nl_eq "a 12 KB header is within the limit" 200 "$code"

# --- 2. a slow client is timed out ----------------------------------------
out=$("$FL" slow "$P" 500 20) || nl_fail "api_flood slow"
secs=${out#closed_after=}
secs=${secs%.*}
[ "$secs" -ge 2 ] && [ "$secs" -le 10 ] ||
	nl_fail "a slow client closed after api_timeout (3 s)" "2..10 s" "$out"
nl_ok
nl_wait 5 "the slow client logged with a count" \
	grep -q "local API: 0 idle connections closed .*, 1 slow clients timed out after 3s" "$W/$ID.log"
nl_stop $ID

# --- 3. 20,000 idle connections ------------------------------------------
sed -i '/^api_timeout/d' "$CONF"
N=20000
# under sanitizers (three times slower here) 10,000: the same shedding,
# within the time budget of the sanitizer stages
[ "$SAN" = 0 ] || N=10000
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1100 ]; then
	# the node runs with `ulimit -n 1024` below, the flood needs more
	echo "parts 3 and 4 not run: the hard open-file limit is $hard (under 1100)"
	nl_done
	exit 0
fi
[ "$hard" = unlimited ] || [ $((2 * (hard - 100))) -ge $N ] || N=$((2 * (hard - 100)))
echo "$(date +%T) holding $N idle connections"
start_limited 1024
nl_eq "the cap is half the open-file limit" 512 "$(metric tongban_api_connections_max)"
"$FL" idle "$P" "$N" 90 >"$W/idle.out" 2>&1 &
FPID=$!
nl_wait 150 "$N connections opened" grep -q "^connected=" "$W/idle.out"
[ "$(sed -n 's/^connected=//p' "$W/idle.out")" -ge $((N * 99 / 100)) ] ||
	nl_fail "the flood connected" "$N" "$(cat "$W/idle.out")"
# the client counts a handshake the node's full accept queue has not
# taken yet: wait until the node has accepted them (held or closed)
accepted_ge() {
	local m
	m=$(nl_http $ID GET /metrics) || return 1
	printf '%s\n' "$m" | awk -v n="$1" '
		/^tongban_api_connections / { s += $2 }
		/^tongban_api_connections_closed_total/ { s += $2 }
		END { exit !(s >= n) }'
}
nl_wait 60 "the node accepted $N connections" accepted_ge $((N * 99 / 100))
echo "$(date +%T) accepted"
limit=100
[ "$SAN" = 0 ] || limit=500
fast=0 all=""
for i in 1 2 3 4 5; do
	out=$("$FL" get "$P" /healthz)
	all="$all $out;"
	ms=${out##*ms=}
	case $out in status=200*) [ "${ms%.*}" -lt "$limit" ] && fast=$((fast + 1)) ;; esac
done
[ "$fast" -ge 3 ] || nl_fail "/healthz within $limit ms with $N idle connections" "3 of 5" "$all"
nl_ok
echo "/healthz with $N idle connections:$all"
t0=$(cpu_ticks)
sleep 2
t1=$(cpu_ticks)
# not spinning: under 0.5 s of CPU in 2 s (clock ticks are 1/100 s)
[ $((t1 - t0)) -lt 50 ] || nl_fail "the node idle with the connections held" "< 50 ticks in 2 s" "$((t1 - t0))"
nl_ok
open=$(metric tongban_api_connections)
[ "$open" -le 512 ] || nl_fail "at most the cap held" "<= 512" "$open"
[ "$(metric 'tongban_api_connections_closed_total{reason="cap"}')" -ge $((N * 99 / 100 - 512)) ] ||
	nl_fail "the longest idle closed for new ones" ">= $((N * 99 / 100 - 512))" \
		"$(metric 'tongban_api_connections_closed_total{reason="cap"}')"
size=$(wc -c <"$W/$ID.log")
[ "$size" -lt 1048576 ] || nl_fail "log under 1 MB" "< 1048576" "$size"
lines=$(grep -c "local API: .* idle connections closed to admit new ones" "$W/$ID.log")
[ "$lines" -ge 1 ] && [ "$lines" -le 3 ] || nl_fail "one line with a count a minute" "1..3" "$lines"
nl_stop $ID
kill "$FPID" 2>/dev/null
wait "$FPID" 2>/dev/null

# --- 4. the open-file limit ----------------------------------------------
echo "$(date +%T) the open-file limit"
echo "api_max_connections = 4000" >>"$CONF"
start_limited 256
"$FL" idle "$P" 5000 60 >"$W/idle2.out" 2>&1 &
FPID=$!
nl_wait 150 "5000 connections opened" grep -q "^connected=" "$W/idle2.out"
paused=$(metric 'tongban_api_accept_paused_total{reason="fd_limit"}')
[ "${paused:-0}" -ge 1 ] || nl_fail "accept paused at the open-file limit" ">= 1" "${paused:-none}"
cap=$(metric tongban_api_connections_max)
[ "$cap" -lt 256 ] || nl_fail "the cap lowered below the open-file limit" "< 256" "$cap"
ok=0
for i in 1 2 3 4 5; do
	out=$("$FL" get "$P" /healthz)
	case $out in status=200*) ok=$((ok + 1)) ;; esac
done
[ "$ok" -ge 4 ] || nl_fail "/healthz answered at the open-file limit" "4 of 5" "$ok"
t0=$(cpu_ticks)
sleep 2
t1=$(cpu_ticks)
[ $((t1 - t0)) -lt 50 ] || nl_fail "accept not spinning at the open-file limit" "< 50 ticks in 2 s" "$((t1 - t0))"
nl_ok
grep -q "Error from accept" "$W/$ID.log" && nl_fail "libevent's accept error lines" "none" \
	"$(grep -c "Error from accept" "$W/$ID.log") lines"
size=$(wc -c <"$W/$ID.log")
[ "$size" -lt 1048576 ] || nl_fail "log under 1 MB" "< 1048576" "$size"
nl_ok
kill "$FPID" 2>/dev/null
wait "$FPID" 2>/dev/null
nl_stop $ID
nl_done
