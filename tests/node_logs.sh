#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_logs.sh - the node's log and /metrics, on two real nodes
# exchanging over DTLS (docs/ADMIN.md "Logs" and "Metrics").
# * log_format = json, log_level = debug: every line either node writes
#   parses as one JSON object (perl's JSON::PP, a parser that is not the
#   node's) with ts, level and msg; libcoap's lines are among them; each
#   message sent has its accepted, sent and delivered events on the
#   sender and its received event on the recipient, with id, peer, type,
#   outcome and ms; a message that expires undelivered has one failed
#   event.
# * JOURNAL_STREAM naming stderr's device:inode: every line starts with
#   its "<N>" priority and has no timestamp; naming another file: none.
# * log_format = text: the format as before ("TIMESTAMP LEVEL: msg"),
#   event lines included; SIGHUP switches text to json.
# * /metrics, scraped with the API token, passes `promtool check
#   metrics`, and its lifecycle gauges hold the certificate's notAfter,
#   the registry's validUntil and serial, the state, the build.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
# JSON::PP is in Debian's perl (perl-modules), which autoconf depends on
perl -MJSON::PP -e 1 2>/dev/null || nl_fail "perl with JSON::PP (Debian package perl)"
nl_devfed 320300,371300
A=320300
B=371300
for m in $A $B; do
	printf 'log_format = json\nlog_level = debug\nretry_min_ms = 100\nretry_max_ms = 1000\n' >>"$(nl_conf $m)"
done

# jsonl FILE: checks every line of FILE is a JSON object with the fixed
# fields; prints "BAD n: why" per bad line, else per line:
# "LEVEL EVENT ID PEER TYPE" (EVENT... "-" for a plain line), or "LIBCOAP".
jsonl() {
	perl -MJSON::PP -ne '
		chomp;
		my $o = eval { JSON::PP->new->utf8->decode($_) };
		if (!defined $o || ref $o ne "HASH") { print "BAD $.: not a JSON object: $_\n"; next }
		for my $k (qw(ts level msg)) {
			defined $o->{$k} && !ref $o->{$k} or do { print "BAD $.: no $k\n"; next };
		}
		$o->{ts} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ or print "BAD $.: ts $o->{ts}\n";
		$o->{level} =~ /^(debug|info|warn|error)$/ or print "BAD $.: level $o->{level}\n";
		if ($o->{msg} =~ /^libcoap: /) { print "LIBCOAP\n"; next }
		if (!defined $o->{event}) { print "$o->{level} - - - -\n"; next }
		for my $k (qw(id peer type outcome)) {
			defined $o->{$k} && $o->{$k} ne "" or print "BAD $.: event without $k\n";
		}
		/"ms":-?\d+[,}]/ or print "BAD $.: ms is not a number\n";
		$o->{id} =~ /^[0-9a-f]{32}$/ or print "BAD $.: id $o->{id}\n";
		print "$o->{level} $o->{event} $o->{id} $o->{peer} $o->{type}\n";
	' "$1"
}

nl_start $A
nl_start $B
id1=$(nl_send $A $B case.submit hukou.transfer)
id2=$(nl_send $A $B case.submit hukou.transfer)
id3=$(nl_send $B $A case.submit hukou.transfer)
nl_wait 60 "$id1 delivered" nl_delivered $A "$id1"
nl_wait 60 "$id2 delivered" nl_delivered $A "$id2"
nl_wait 60 "$id3 delivered" nl_delivered $B "$id3"

# ---- /metrics through promtool, and the lifecycle gauges ----
for m in $A $B; do
	# (nl_http's $(...) drops the body's final newline, which the
	# format requires: put back)
	{
		nl_http $m GET /metrics
		echo
	} >"$W/metrics.$m"
	nl_eq "/metrics status ($m)" 200 "$NL_HTTP_STATUS"
	if ! promtool check metrics <"$W/metrics.$m" >"$W/promtool.$m" 2>&1; then
		nl_fail "promtool check metrics ($m)" "no problem" "$(cat "$W/promtool.$m")"
	fi
	nl_ok
done
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$W/metrics.$A"; }
na=$(date -u -d "$(openssl x509 -noout -enddate -in "$F/$A/node.crt" | cut -d= -f2)" +%s)
nl_eq "certificate notAfter gauge" "$na" "$(metric tongban_certificate_not_after_seconds)"
reg=$(nl_http $A GET /v1/registry)
vu=$(printf '%s' "$reg" | sed -n 's/.*"valid_until":\([0-9]*\).*/\1/p')
serial=$(printf '%s' "$reg" | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
[ -n "$vu" ] && [ -n "$serial" ] || nl_fail "/v1/registry" "valid_until and serial" "$reg"
nl_eq "registry validUntil gauge" "$vu" "$(metric tongban_registry_valid_until_seconds)"
nl_eq "registry serial gauge" "$serial" "$(metric tongban_registry_serial)"
nl_eq "state ok" 1 "$(metric 'tongban_node_state{state="ok"}')"
nl_eq "state revoked" 0 "$(metric 'tongban_node_state{state="revoked"}')"
ver=$("$TBN" --version | cut -d' ' -f2)
nl_eq "build info" 1 "$(metric "tongban_build_info{version=\"$ver\",protocol=\"1\"}")"
st=$(metric process_start_time_seconds)
now=$(date +%s)
[ -n "$st" ] && [ "${st%.*}" -le "$now" ] && [ "${st%.*}" -ge $((now - 300)) ] ||
	nl_fail "process_start_time_seconds" "within the last 300 s of $now" "$st"
nl_ok
nl_eq "delivered counter" 2 "$(metric 'tongban_messages_out_total{result="delivered"}')"
# an idle node runs no delivery round without a reason: the hedging
# check's next time read as a bool scheduled one every 50 ms forever
# (a journal query each, 20 a second, 41 in these 2 s)
r0=$(metric tongban_delivery_rounds_total)
sleep 2
r1=$(nl_http $A GET /metrics | awk '$1 == "tongban_delivery_rounds_total" { print $2 }')
nl_eq "delivery rounds in 2 s idle, at most 4" yes "$([ $((r1 - r0)) -le 4 ] && echo yes || echo "$((r1 - r0))")"

nl_stop $A
nl_stop $B

# ---- json lines ----
for m in $A $B; do
	jsonl "$W/$m.log" >"$W/lines.$m"
	if grep -q '^BAD' "$W/lines.$m"; then
		nl_fail "every line of $m's log a JSON object" "no bad line" "$(grep '^BAD' "$W/lines.$m" | head -5)"
	fi
	nl_ok
	nl_eq "$m logged lines" yes "$([ "$(wc -l <"$W/lines.$m")" -ge 10 ] && echo yes)"
	nl_eq "libcoap lines in $m's log" yes "$(grep -q '^LIBCOAP$' "$W/lines.$m" && echo yes)"
done
# ev NODE EVENT ID PEER: the number of such event lines
ev() { grep -c "^info $2 $3 $4 case.submit$" "$W/lines.$1"; }
for id in $id1 $id2; do
	nl_eq "accepted $id" 1 "$(ev $A accepted "$id" $B)"
	nl_eq "sent $id" yes "$([ "$(ev $A sent "$id" $B)" -ge 1 ] && echo yes)"
	nl_eq "delivered $id" 1 "$(ev $A delivered "$id" $B)"
	nl_eq "received $id" 1 "$(ev $B received "$id" $A)"
done
nl_eq "accepted $id3" 1 "$(ev $B accepted "$id3" $A)"
nl_eq "delivered $id3" 1 "$(ev $B delivered "$id3" $A)"
nl_eq "received $id3" 1 "$(ev $A received "$id3" $B)"
nl_has "delivered outcome" '"outcome":"receipt verified"' "$(grep "\"delivered\",\"id\":\"$id1\"" "$W/$A.log")"
nl_has "received outcome" '"outcome":"stored"' "$(grep "\"received\",\"id\":\"$id1\"" "$W/$B.log")"

# ---- journald: <N> prefixes, no timestamp ----
nl_start $B
sed -i 's/^log_format = json$/log_format = text/; s/^log_level = debug$/log_level = info/' "$(nl_conf $A)"
: >"$W/$A.log"
nl_start $A env JOURNAL_STREAM="$(stat -c %d:%i "$W/$A.log")"
id4=$(nl_send $A $B case.submit hukou.transfer)
sleep 1
nl_stop $A
bad=$(grep -v -E '^<[3467]>(debug|info|warn|error): ' "$W/$A.log" | head -3)
[ -z "$bad" ] || nl_fail "journald lines: <N>level: msg" "every line" "$bad"
nl_ok
nl_has "journald: info priority" "<6>info: message accepted: id=$id4 peer=$B type=case.submit" "$(cat "$W/$A.log")"
nl_eq "journald: no timestamp" 0 "$(grep -c -E '^(<[0-9]>)?[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$W/$A.log")"

# JOURNAL_STREAM naming another file: plain text lines
: >"$W/$A.log"
nl_start $A env JOURNAL_STREAM="$(stat -c %d:%i "$F/$A/node.conf")"
nl_send $A $B case.submit hukou.transfer >/dev/null
sleep 1
# ---- text, then json after SIGHUP ----
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
bad=$(grep -v -E "^$ts (debug|info|warn|error): " "$W/$A.log" | head -3)
[ -z "$bad" ] || nl_fail "text lines: TIMESTAMP level: msg" "every line" "$bad"
nl_ok
nl_has "text: accepted event" "info: message accepted: id=" "$(cat "$W/$A.log")"
nl_eq "text: no libcoap debug at info" 0 "$(grep -c 'libcoap:' "$W/$A.log")"
lines=$(wc -l <"$W/$A.log")
sed -i 's/^log_format = text$/log_format = json/' "$(nl_conf $A)"
kill -HUP "$(nl_pid $A)"
nl_wait 20 "SIGHUP applied" grep -q 'configuration reloaded' "$W/$A.log"
id5=$(nl_send $A $B case.submit hukou.transfer)
nl_wait 60 "$id5 delivered" nl_delivered $A "$id5"
# a message that expires with its recipient down: one failed event
nl_stop $B
id6=$("$TB" send --node "$(nl_conf $A)" --to $B --type case.submit --ttl 2 \
	--body "$(nl_case_body)") || nl_fail "tongban send --ttl 2" "an id" "$id6"
failed() { grep -q "\"event\":\"failed\",\"id\":\"$id6\",\"peer\":\"$B\",\"type\":\"case.submit\",\"ms\":[0-9]*,\"outcome\":\"time.expired" "$W/$A.log"; }
nl_wait 90 "failed event for the expired $id6" failed
nl_stop $A
tail -n +$((lines + 1)) "$W/$A.log" >"$W/after-hup.log"
jsonl "$W/after-hup.log" >"$W/lines.hup"
grep -q '^BAD' "$W/lines.hup" && nl_fail "json after SIGHUP" "no bad line" "$(grep '^BAD' "$W/lines.hup" | head -3)"
nl_eq "json after SIGHUP: delivered $id5" 1 "$(grep -c "^info delivered $id5 $B case.submit$" "$W/lines.hup")"
nl_eq "one failed event for $id6" 1 "$(grep -c "^info failed $id6 $B case.submit$" "$W/lines.hup")"
nl_done
