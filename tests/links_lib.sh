# SPDX-License-Identifier: Apache-2.0
# tests/links_lib.sh - two nodes through tests/udp_relay (a lossy,
# delayed, partitioned link in user space), for tests/node_links.sh and
# bench/links.sh.  Sourced after tests/node_lib.sh's nl_init.
#
#   ll_setup SCENARIO_FILE [KEY=VALUE...]   # 320300 -> relay -> 371300
#   ll_submit N                             # N messages 320300 -> 371300
#   ll_wait N SECONDS                       # until N delivered (receipts)
#   ll_check_once N                         # inbox holds N distinct ids
#
# The registry lists 371300 at NL_BASE+1; 371300 listens on NL_BASE+5
# and the relay forwards NL_BASE+1 -> NL_BASE+5.  Both nodes run the
# default configuration plus the KEY=VALUE lines given.  The relay's
# counts go to $W/relay.stats (SIGUSR1, and at exit).

LL_SENDER=320300
LL_RECEIVER=371300

ll_setup() {
	local scen=$1 kv m
	shift
	nl_devfed "$LL_SENDER,$LL_RECEIVER"
	LL_ALT=$((NL_BASE + 5))
	sed -i "s/^listen = .*/listen = 127.0.0.1:$LL_ALT/" "$(nl_conf $LL_RECEIVER)"
	for m in $LL_SENDER $LL_RECEIVER; do
		for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" >>"$(nl_conf $m)"; done
	done
	# the nodes first (slow to start under sanitizers), then the relay,
	# whose scenario clock starts with it: nothing is sent before
	nl_start $LL_RECEIVER
	nl_start $LL_SENDER
	LL_T0=$(date +%s%N)
	"$TB_BUILDDIR/tests/udp_relay" --listen "127.0.0.1:$(nl_port $LL_RECEIVER)" \
		--target "127.0.0.1:$LL_ALT" --scenario "$scen" --seed "${LL_SEED:-1}" \
		--stats-file "$W/relay.stats" --port-file "$W/relay.port" >"$W/relay.log" 2>&1 &
	LL_RELAY=$!
	nl_wait 10 "the relay listening" test -s "$W/relay.port"
}

# ll_ms: milliseconds since the relay started (or since ll_mark).
ll_ms() { echo $((($(date +%s%N) - LL_T0) / 1000000)); }
ll_mark() { LL_T0=$(date +%s%N); }

# ll_submit N: N control.ping messages in bulk requests of up to 200.
ll_submit() {
	local left=$1 k body i
	while [ "$left" -gt 0 ]; do
		k=$((left > 200 ? 200 : left))
		body='['
		for ((i = 0; i < k; i++)); do
			[ $i -gt 0 ] && body+=','
			body+="{\"type\":\"control.ping\",\"to\":\"$LL_RECEIVER\",\"ttl\":3600}"
		done
		body+=']'
		nl_http $LL_SENDER POST /v1/messages "$body" >"$W/submit.out"
		[ "$NL_HTTP_STATUS" = 200 ] || [ "$NL_HTTP_STATUS" = 201 ] || [ "$NL_HTTP_STATUS" = 202 ] ||
			nl_fail "bulk submit of $k" "2xx" "$NL_HTTP_STATUS $(cat "$W/submit.out")"
		left=$((left - k))
	done
}

ll_delivered() { nl_metric $LL_SENDER 'tongban_messages_out_total{result="delivered"}'; }
ll_inbox_n() { nl_metric $LL_RECEIVER 'tongban_messages_in_total{result="accepted"}'; }

# ll_wait N SECONDS: waits until the sender counts N delivered (receipt
# verified); LL_WAITED_MS the time it took from the mark, LL_GOT the count
# at the end.  false when SECONDS passed first.
ll_wait() {
	local n=$1 end=$(($(date +%s) + $2))
	LL_GOT=0
	while :; do
		LL_GOT=$(ll_delivered)
		LL_GOT=${LL_GOT:-0}
		[ "$LL_GOT" -ge "$n" ] && { LL_WAITED_MS=$(ll_ms); return 0; }
		[ "$(date +%s)" -lt "$end" ] || { LL_WAITED_MS=$(ll_ms); return 1; }
		sleep 0.1
	done
}

# ll_check_once N: the receiver's inbox holds N messages, all distinct
# (exactly once); the duplicates it answered are counted, not stored.
ll_check_once() {
	local ids="" page after=0
	# GET /v1/inbox pages by 1000 (after = the last seq seen)
	while :; do
		page=$(nl_http $LL_RECEIVER GET "/v1/inbox?limit=1000&after=$after" |
			sed 's/},{"seq":/}\n{"seq":/g')
		page=$(printf '%s\n' "$page" | sed -n 's/.*{"seq":\([0-9]*\),"id":"\([0-9a-f]*\)".*/\1 \2/p')
		[ -n "$page" ] || break
		ids+=$(printf '%s\n' "$page" | cut -d' ' -f2)$'\n'
		after=$(printf '%s\n' "$page" | tail -n 1 | cut -d' ' -f1)
	done
	nl_eq "messages in the receiver's inbox" "$1" "$(printf '%s\n' "$ids" | grep -c .)"
	nl_eq "distinct ids in the inbox" "$1" "$(printf '%s\n' "$ids" | sort -u | grep -c .)"
}

# ll_peer_metric NAME: the sender's per-peer gauge NAME{peer="371300"}.
ll_peer_metric() { nl_metric $LL_SENDER "$1{peer=\"$LL_RECEIVER\"}"; }
