#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_flood.sh - floods cost little (issue 24 point 4).  Member
# 371300 is flooded by tests/flood from 127.0.0.2 (another source than
# its members on 127.0.0.1), one process:
# 1. cookie-echo: ClientHellos whose cookie is echoed, then silence, at
#    20 a second (the rate that locked every new member out with libcoap's
#    default cap of 100 half-open handshakes); after 6 s of it (120 half-
#    open attempts) member 320300 opens 10 new DTLS sessions, one fresh
#    coap-client process each: all succeed, each within 2 s.
# 2. garbage, then 3. ClientHellos, each at the rate one process makes
#    (as fast as it can): 320300 delivers messages to 371300 meanwhile,
#    one at a time, each within 2 s, and the p95 is under 2 s.
# 4. 371300's log: one flood line per source and kind a minute, with the
#    counts held back written at exit; the log under 64 KiB.  The flooding
#    source is blocked (its datagrams dropped by a kernel filter) once it
#    has sent its burst of refused datagrams.
# Scaled down from the issue's 60 s floods: 12 s of cookie echoes,
# 10 s each of garbage and ClientHellos (the full 60 s runs and the CPU per
# refused datagram: bench/flood.sh, docs/PERFORMANCE.md).  A sanitizer
# build (ASan, TSan: several times slower) gets 6 s instead of 2 s.
# Takes about 50 s on an idle machine.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_have_coap_client || { echo "SKIP: coap-client-openssl not installed"; exit 77; }
FLOOD="$TB_BUILDDIR/tests/flood"
[ -x "$FLOOD" ] || { echo "FAIL: tests/flood not built in $TB_BUILDDIR" >&2; exit 1; }
nl_init
nl_devfed 320300,371300
BOUND_MS=2000
if nl_sanitized; then
	BOUND_MS=6000
fi
nl_start 371300
nl_start 320300
TO=127.0.0.1:$(nl_port 371300)
ms() { echo $(($(date +%s%N) / 1000000)); }
# bench/flood.sh sets the full durations (60 s)
COOKIE_SECS=${FLOOD_COOKIE_SECS:-12} SECS=${FLOOD_SECS:-10}
T0=$(date +%s)
cpu() { awk '{ print $14 + $15 }' "/proc/$(nl_pid 371300)/stat"; }

# 1. cookie-echo flood: new handshakes of a member go through
cpu0=$(cpu)
"$FLOOD" cookie --to "$TO" --rate 20 --duration "$COOKIE_SECS" >"$W/flood1.out" 2>&1 &
FPID=$!
sleep 6
for i in $(seq 1 10); do
	t0=$(ms)
	nl_coap "$F/320300" get /fed/registry 371300 "" -t 20
	dt=$(($(ms) - t0))
	[ "$NL_CODE" = 2.05 ] ||
		nl_fail "new session $i during the cookie-echo flood" "2.05" "${NL_CODE:-no answer} ($(tail -n 3 "$W/coap.log"))"
	[ "$dt" -le "$BOUND_MS" ] ||
		nl_fail "new session $i during the cookie-echo flood within $BOUND_MS ms" "<= $BOUND_MS" "$dt ms"
	echo "# new session $i: ${dt} ms"
	nl_ok
done
wait "$FPID"
cpu1=$(cpu)
cat "$W/flood1.out"
echoed=$(sed -n 's/.*cookies echoed \([0-9]*\).*/\1/p' "$W/flood1.out")
echo "# cookie-echo flood: node CPU $(((cpu1 - cpu0) * 10)) ms for ${echoed:-0} half-open handshakes" \
	"($(awk -v c="$((cpu1 - cpu0))" -v n="${echoed:-1}" 'BEGIN { printf "%.2f", c * 10 / n }') ms each)"
# the premise: the flood did leave half-open handshakes behind, more than
# libcoap's default cap, and the node cut them (oldest first)
[ "${echoed:-0}" -gt $((COOKIE_SECS * 10)) ] || nl_fail "cookie-echo flood: cookies echoed" "> $((COOKIE_SECS * 10))" "${echoed:-none}"
nl_ok
nl_has "half-open handshakes dropped, told of" "flood: from 127.0.0.2: " \
	"$(grep 'half-open DTLS handshake(s) dropped' "$W/371300.log")"

# deliver MIN [PID]: messages one at a time, each polled until delivered,
# at least MIN and then while PID runs (at most 60); prints the latencies
# (ms) one a line: the sender's own, from acceptance to the verified
# receipt ("message delivered: ... ms=N"), which the test's polling (a
# process each time, slow on a loaded machine) does not inflate
deliver() {
	local i=0 id t0 end
	while [ $i -lt "$1" ] || { [ -n "${2:-}" ] && [ $i -lt 60 ] && kill -0 "$2" 2>/dev/null; }; do
		i=$((i + 1))
		t0=$(ms)
		id=$(nl_send 320300 371300 case.submit hukou.transfer) || nl_fail "submit $i"
		end=$((t0 + 30000))
		until nl_delivered 320300 "$id"; do
			[ "$(ms)" -lt "$end" ] || nl_fail "message $i delivered within 30 s"
			sleep 0.05
		done
		nl_wait 5 "message $i's delivered line" grep -q "message delivered: id=$id " "$W/320300.log"
		sed -n "s/.*message delivered: id=$id .* ms=\([0-9]*\) .*/\1/p" "$W/320300.log" | tail -n 1
	done
}

# p95 of the latencies in FILE under the bound, and every one under 15 s
check_p95() {
	local p95
	p95=$(sort -n "$2" | awk '{ v[NR] = $1 } END { i = int(NR * 0.95 + 0.999); print v[i] }')
	echo "# $1: latencies $(sort -n "$2" | tr '\n' ' ')ms, p95 $p95 ms"
	[ "$p95" -le "$BOUND_MS" ] || nl_fail "$1: p95 delivery latency" "<= $BOUND_MS ms" "$p95 ms"
	nl_ok
}

deliver 3 >"$W/lat0" # a session to 371300, before the floods
for mode in garbage hello; do
	cpu0=$(cpu)
	"$FLOOD" "$mode" --to "$TO" --duration "$SECS" >"$W/flood-$mode.out" 2>&1 &
	FPID=$!
	sleep 1
	deliver 10 "$FPID" >"$W/lat-$mode"
	wait "$FPID"
	cpu1=$(cpu)
	cat "$W/flood-$mode.out"
	sent=$(sed -n 's/.*: sent \([0-9]*\) .*/\1/p' "$W/flood-$mode.out")
	[ "${sent:-0}" -gt 1000 ] || nl_fail "$mode flood: datagrams sent" "> 1000" "${sent:-none}"
	echo "# $mode flood: node CPU $(((cpu1 - cpu0) * 10)) ms for $sent datagrams" \
		"($(awk -v c="$((cpu1 - cpu0))" -v n="$sent" 'BEGIN { printf "%.2f", c * 10000 / n }') us each)"
	check_p95 "$mode flood" "$W/lat-$mode"
done

# 4. the log: counts written at exit, one line per source and kind
nl_stop 371300
L="$W/371300.log"
size=$(stat -c %s "$L")
[ "$size" -le 65536 ] || nl_fail "371300's log under 64 KiB" "<= 65536" "$size bytes"
echo "# 371300's log: $size bytes"
nl_ok
for kind in 'new DTLS handshake(s) refused' 'datagram(s) refused' 'half-open DTLS handshake(s) dropped' \
	'refused datagrams a second: all its datagrams dropped by the kernel'; do
	n=$(grep -c "flood: from 127.0.0.2: [0-9]* .*$kind" "$L")
	# the first at once, the count at the end of each minute and at exit
	most=$((2 + ($(date +%s) - T0) / 60))
	[ "$n" -ge 1 ] && [ "$n" -le "$most" ] || nl_fail "flood lines '$kind' from 127.0.0.2" "1 to $most" "$n"
	nl_ok
done
# handshakes refused (a certificate's fault) are counted per source too,
# and a half-open handshake cut to make room is none of them
# (the cut ones were over 100: the refusals counted must be far fewer)
n=$(grep 'handshake refused from 127.0.0.2' "$L" |
	awk '{ if (match($0, /\(([0-9]+) times in the last/)) { sub(/.*\(/, ""); n += $1 } else n++ } END { print n + 0 }')
[ "$n" -le 20 ] || nl_fail "handshakes from 127.0.0.2 counted as refused" "<= 20" "$n"
nl_ok
# libcoap's line per refused handshake (an alert, a certificate missing)
# is debug: the node's own lines above tell of them, counted
n=$(grep -c 'warn: libcoap: ' "$L")
[ "$n" -le 5 ] || nl_fail "libcoap warning lines" "<= 5" "$n: $(grep 'warn: libcoap: ' "$L" | head -n 3)"
nl_ok
# the counts: the refused datagrams before the source was blocked (its
# burst, and a second's worth after each block), and the blocks
nl_has "refused datagrams counted" "datagram(s) refused (neither a ClientHello nor of a DTLS session) in the last" \
	"$(grep 'flood: from 127.0.0.2' "$L")"
max=$(grep 'flood: from 127.0.0.2: [0-9]* datagram' "$L" | sed -n 's/.*127.0.0.2: \([0-9]*\) .*/\1/p' | sort -n | tail -n 1)
[ "${max:-0}" -ge 100 ] || nl_fail "a count of refused datagrams" ">= 100" "${max:-none}"
nl_ok
grep 'flood:\|DTLS socket\|handshake refused from\|libcoap' "$L" | sed 's/^/# /'
nl_done
