# SPDX-License-Identifier: Apache-2.0
# tests/node_lib.sh - helpers for the multi-node integration tests (bash).
#
#   . "${TB_SRCDIR:-.}/tests/node_lib.sh"
#   nl_init                        # $W scratch dir, $NL_BASE; every node and
#                                  # job started is killed, $W removed on exit
#   nl_devfed 320300,371300        # dev federation in $F (ports NL_BASE+i)
#   nl_start 371300                # start its node, wait for /healthz
#   id=$(nl_send 320300 371300 case.submit hukou.transfer)
#   nl_wait 20 "delivered" nl_delivered 320300 "$id"
#   nl_coap 320300 post /fed/msg 371300 FILE   # NL_CODE, $W/coap.body
#
# Ports: nl_init [SPAN] draws a random NL_BASE (tests/ports.sh): the
# loopback ports NL_BASE..NL_BASE+SPAN-1 (DTLS, member i on NL_BASE+i) and
# NL_BASE+1000.. (local API) were free for UDP and TCP; SPAN is 10 unless
# given.  No fixed ports, so that any number of runs can share a machine.
# When a node cannot start because one of its ports was taken meanwhile,
# the test exits 75 and tests/run_test.sh runs it again on a new block.
# No curl, jq or python: the node's API is reached with `tongban` and, for
# raw HTTP (/healthz, /metrics), with bash's /dev/tcp.  Every wait is
# bounded.  Failures print what was expected and what happened.

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
. "$TB_SRCDIR/tests/ports.sh"
NL_CHECKS=0
NL_TIMEOUT=${NL_TIMEOUT:-timeout}

# nl_cleanup: kills every background job still running (the nodes, fake
# peers, sinks, subshells) with what it started, and reaps them.  (Jobs,
# not $W/pids: a pid there may be reaped already, and reused since.)
nl_cleanup() {
	local pid
	for pid in $(jobs -p); do
		tp_kill_tree "$pid"
	done
	wait 2>/dev/null
	if [ -n "${NL_KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}

# nl_sanitized: true when tongban-node is a sanitizer build (ASan, UBSan,
# TSan), several times slower: tests scale their bounds and loads by it.
# Usable before nl_init.
nl_sanitized() {
	{ nm -a "$TB_BUILDDIR/tongban-node" 2>/dev/null; ldd "$TB_BUILDDIR/tongban-node" 2>/dev/null; } |
		grep -q -E 'libasan|libubsan|libtsan|__asan_init|__ubsan_|__tsan_init'
}

# nl_init [SPAN]: scratch dir, tools, a free port block, cleanup trap.
# (A SPAN above 100 is a fixed base port, as tests once gave: ignored.)
nl_init() {
	local span=${1:-10}
	TB="$TB_BUILDDIR/tongban"
	TBN="$TB_BUILDDIR/tongban-node"
	[ -x "$TB" ] && [ -x "$TBN" ] || { echo "FAIL: tongban/tongban-node not built in $TB_BUILDDIR" >&2; exit 1; }
	[ "$span" -le 100 ] || span=10
	NL_BASE=$(tp_block "$span") || exit 1
	W=$(mktemp -d "${TMPDIR:-/tmp}/tbnode.XXXXXX") || exit 1
	mkdir -p "$W/pids"
	trap nl_cleanup EXIT
	trap 'exit 1' INT TERM HUP
}

nl_have_coap_client() { command -v coap-client-openssl >/dev/null 2>&1; }

# nl_fail WHAT [EXPECTED GOT]; exits 75 instead when a log shows that a
# port was taken (tests/ports.sh): the failure is then no test's.
nl_fail() {
	tp_clash "$W"/*.log
	{
		echo "FAIL: $1"
		[ $# -ge 3 ] && { echo "  expected: $2"; echo "  got:      $3"; }
		for f in "$W"/*.log; do
			[ -f "$f" ] || continue
			echo "  --- last lines of $(basename "$f")"
			tail -n 8 "$f" | sed 's/^/    /'
		done
	} >&2
	exit 1
}

nl_ok() { NL_CHECKS=$((NL_CHECKS + 1)); }

# nl_eq WHAT EXPECTED GOT
nl_eq() {
	NL_CHECKS=$((NL_CHECKS + 1))
	[ "$2" = "$3" ] || nl_fail "$1" "$2" "$3"
}

# nl_has WHAT NEEDLE HAYSTACK
nl_has() {
	NL_CHECKS=$((NL_CHECKS + 1))
	case "$3" in *"$2"*) ;; *) nl_fail "$1" "contains '$2'" "$(printf '%s' "$3" | head -c 400)" ;; esac
}

# nl_done: fails when a node's log holds a sanitizer report (ASan, UBSan,
# LSan, TSan builds), else prints the number of checks.
nl_done() {
	local f
	for f in "$W"/*.log; do
		[ -f "$f" ] || continue
		if grep -q -E 'runtime error:|(ERROR|WARNING): (Address|Leak|Memory|Thread)Sanitizer' "$f"; then
			grep -E -A 12 'runtime error:|(ERROR|WARNING): [A-Za-z]*Sanitizer' "$f" | head -n 40 >&2
			nl_fail "sanitizer report in $(basename "$f")"
		fi
	done
	echo "PASS: $NL_CHECKS checks"
}

# nl_devfed ID,ID,...: dev federation in $F with base port $NL_BASE;
# with NL_ALG=sm2 every message, receipt and registry is signed in SM2
# (dev-federation --alg sm2; tests/node_sm2.sh).
nl_devfed() {
	NL_MEMBERS=$1
	F="$W/fed"
	"$TB" dev-federation --dir "$F" --members "$1" --base-port "$NL_BASE" \
		${NL_ALG:+--alg "$NL_ALG"} >"$W/devfed.out" 2>&1 ||
		{ cat "$W/devfed.out" >&2; nl_fail "dev-federation --members $1"; }
	# these tests are about delivery: no reference responder answering
	# (and consuming) requests, so that an inbox holds what was sent
	local m
	for m in ${1//,/ }; do sed -i '/^responder *=/d' "$F/$m/node.conf"; done
}

# nl_clone ID NEW: a second process of member ID, known to the nl_*
# helpers as NEW: a copy of ID's directory (its keys, registry file and
# configuration) with listen and api ports of its own.
nl_clone() {
	mkdir "$F/$2"
	cp -a "$F/$1/." "$F/$2/"
	NL_MEMBERS="$NL_MEMBERS,$2"
	sed -i "s/^listen *=.*/listen = 127.0.0.1:$(nl_port "$2")/; s/^api *=.*/api = 127.0.0.1:$(nl_api_port "$2")/" \
		"$(nl_conf "$2")"
}

# nl_endpoints ID NEW: the registry lists ID's endpoints as ID's process,
# then NEW's (nl_clone), signed again by the province authorities of the
# dev federation and installed as every process's registry file; the new
# registry stays in $W/reg2.json.
nl_endpoints() {
	local r="$W/reg2.json" ca m reg out
	cp "$F/registry.json" "$r"
	out=$("$TB" registry set "$r" --member "$1" --endpoint "coaps://127.0.0.1:$(nl_port "$1")" \
		--endpoint "coaps://127.0.0.1:$(nl_port "$2")" 2>&1) || nl_fail "registry set --endpoint" "exit 0" "$out"
	for ca in "$F"/ca-*; do
		out=$("$TB" registry sign "$r" --key "$ca/ca.key" --cert "$ca/ca.crt" 2>&1) ||
			nl_fail "registry sign by ${ca##*/}" "exit 0" "$out"
	done
	for m in ${NL_MEMBERS//,/ }; do
		reg=$(sed -n 's/^registry *= *//p' "$(nl_conf "$m")")
		case $reg in /*) ;; *) reg="$F/$m/$reg" ;; esac
		cp "$r" "$reg"
	done
}

# nl_sigpub ID: the file holding ID's message-signing public key: its
# node certificate, or its SM2 sign.pub under NL_ALG=sm2.
nl_sigpub() {
	if [ "${NL_ALG:-}" = sm2 ]; then echo "$F/$1/sign.pub"; else echo "$F/$1/node.crt"; fi
}

# nl_signkey ID: ID's message-signing private key file (node.key, or
# sign.key under NL_ALG=sm2).
nl_signkey() {
	if [ "${NL_ALG:-}" = sm2 ]; then echo "$F/$1/sign.key"; else echo "$F/$1/node.key"; fi
}

# nl_index ID: position of ID in the member list (0-based).
nl_index() {
	local i=0 m
	for m in ${NL_MEMBERS//,/ }; do
		[ "$m" = "$1" ] && { echo $i; return 0; }
		i=$((i + 1))
	done
	echo "nl_index: $1 is not a member" >&2
	return 1
}

nl_port() { echo $((NL_BASE + $(nl_index "$1"))); }
nl_api_port() { echo $((NL_BASE + 1000 + $(nl_index "$1"))); }
nl_conf() { echo "$F/$1/node.conf"; }

# nl_http ID METHOD PATH [BODY]: raw HTTP/1.0 to the node's local API with
# its bearer token; prints the body, sets NL_HTTP_STATUS (0: no answer).
nl_http() {
	local port tok resp body=${4:-}
	port=$(nl_api_port "$1") || return 1
	tok=$(cat "$F/$1/api.token")
	NL_HTTP_STATUS=0
	resp=$("$NL_TIMEOUT" 10 bash -c '
		exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
		if [ -n "$4" ]; then
			printf "%s %s HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" "$1" "$2" "$3" "${#4}" "$4" >&3
		else
			printf "%s %s HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n" "$1" "$2" "$3" >&3
		fi
		cat <&3' "$port" "$2" "$3" "$tok" "$body" 2>/dev/null) || return 1
	NL_HTTP_STATUS=$(printf '%s' "$resp" | head -n 1 | cut -d' ' -f2)
	printf '%s' "$resp" | sed '1,/^\r*$/d'
}

nl_healthy() {
	nl_http "$1" GET /healthz >/dev/null 2>&1 && [ "$NL_HTTP_STATUS" = 200 ]
}

# nl_metric ID NAME: value of one metric line (first match) from /metrics.
nl_metric() {
	nl_http "$1" GET /metrics | awk -v n="$2" 'index($0, n) == 1 { print $NF; exit }'
}

# nl_wait SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds.
nl_wait() {
	local secs=$1 what=$2 end
	shift 2
	end=$(($(date +%s) + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || nl_fail "$what within $secs s"
		sleep 0.2
	done
	NL_CHECKS=$((NL_CHECKS + 1))
}

# nl_start ID [WRAPPER...]: starts the node (log $W/ID.log, appended),
# waits for /healthz ($NL_START_TIMEOUT s, default 20).
nl_start() {
	local id=$1
	shift
	if [ -f "$W/pids/$id" ]; then
		kill -0 "$(nl_pid "$id")" 2>/dev/null && nl_fail "nl_start $id: it is running already (pid $(nl_pid "$id"))"
		{ wait "$(nl_pid "$id")"; } 2>/dev/null
	fi
	"$@" "$TBN" -c "$F/$id/node.conf" >>"$W/$id.log" 2>&1 &
	echo $! >"$W/pids/$id"
	nl_wait "${NL_START_TIMEOUT:-20}" "node $id answering /healthz" nl_start_ok "$id"
}

nl_start_ok() {
	kill -0 "$(cat "$W/pids/$1")" 2>/dev/null || { tp_clash "$W/$1.log"; nl_fail "node $1 exited during start"; }
	nl_healthy "$1"
}

nl_pid() { cat "$W/pids/$1"; }

# nl_stop ID [SIGNAL]: signals the node and reaps it (bounded, 30 s);
# sets NL_EXIT to its exit status.
nl_stop() {
	local pid sig=${2:-TERM} i
	pid=$(nl_pid "$1")
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid"
		{ wait "$pid"; } 2>/dev/null
		rm -f "$W/pids/$1"
		nl_fail "node $1 did not exit within 30 s of SIG$sig"
	fi
	NL_EXIT=0
	{ wait "$pid"; } 2>/dev/null || NL_EXIT=$?
	rm -f "$W/pids/$1"
}

nl_kill9() { nl_stop "$1" KILL; }

# nl_case_body [SERVICE]: writes a valid case.submit body (PROTOCOL.md
# 10) with a fresh case id to a new file under $W; prints its name.
nl_case_body() {
	local cid="t$(date +%s%N)$RANDOM" f
	f="$W/body.$cid.json"
	printf '{"applicant":{"idhash":"%s","kind":"person"},"case_id":"%s","materials":[],"mode":"online","service":"%s"}' \
		6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0 "$cid" "${1:-hukou.transfer}" >"$f"
	echo "$f"
}

# nl_send FROM TO TYPE [SERVICE]: submits through FROM's API, prints the id
# (a case.submit gets a valid body with a fresh case id).
nl_send() {
	local out body=()
	[ "$3" = case.submit ] && body=(--body "$(nl_case_body "${4:-}")")
	out=$("$TB" send --node "$(nl_conf "$1")" --to "$2" --type "$3" ${4:+--service "$4"} "${body[@]}" 2>&1) ||
		nl_fail "tongban send $1 -> $2 ($3)" "exit 0" "$out"
	[ "$3" = case.submit ] && rm -f "${body[1]}"
	printf '%s\n' "$out"
}

nl_status() { "$TB" status --node "$(nl_conf "$1")" "$2"; }

# nl_delivered FROM ID: true when FROM reports ID delivered.
nl_delivered() { nl_status "$1" "$2" 2>/dev/null | grep -q '"state":"delivered"'; }

# nl_receipt FROM ID: the receipt JSON of a delivered message.
nl_receipt() { nl_status "$1" "$2" | sed -n 's/.*"receipt":\({.*}\)}$/\1/p'; }

# nl_inbox ID: one line per inbox message ({"seq":...,"envelope":{...}}).
nl_inbox() {
	"$TB" inbox --node "$(nl_conf "$1")" | sed 's/^{"messages":\[//; s/\]}$//; s/},{"seq":/}\n{"seq":/g' |
		grep '^{"seq":'
}

# nl_inbox_ids ID: the ids in ID's inbox, one a line.
nl_inbox_ids() { nl_inbox "$1" | sed -n 's/^{"seq":[0-9]*,"id":"\([0-9a-f]*\)".*/\1/p'; }

# nl_inbox_envelope ID MSGID: the envelope of MSGID in ID's inbox.
nl_inbox_envelope() { nl_inbox "$1" | grep "\"id\":\"$2\",\"from\"" | sed -n 's/.*"envelope":\({.*}\)}$/\1/p'; }

# nl_coap CERTDIR METHOD PATH TARGET_ID [FILE [EXTRA...]]: one request with
# coap-client-openssl using CERTDIR/node.{crt,key} (CERTDIR "-": no
# certificate).  Sets NL_CODE ("2.01", "4.03"..., "" when no answer);
# the payload is in $W/coap.body, the client's log in $W/coap.log.
nl_coap() {
	local dir=$1 method=$2 path=$3 target=$4 file=${5:-} cert=()
	shift 4
	[ $# -gt 0 ] && shift
	[ "$dir" = - ] || cert=(-c "$dir/node.crt" -j "$dir/node.key")
	rm -f "$W/coap.body" "$W/coap.out"
	"$NL_TIMEOUT" 20 coap-client-openssl -v 7 -B 5 "${cert[@]}" -R "$F/root.crt" -m "$method" \
		${file:+-f "$file"} -o "$W/coap.out" "$@" \
		"coaps://127.0.0.1:$(nl_port "$target")$path" >"$W/coap.log" 2>&1
	# the last response: a separate response (PROTOCOL.md 9.2 allows one)
	# is followed by the client's own empty ACK (code 0.00), which is not it
	NL_CODE=$(sed -n 's/^v:1 t:[A-Z]* c:\([2-5]\.[0-9][0-9]\) .*/\1/p' "$W/coap.log" | tail -n 1)
	if [ -f "$W/coap.out" ]; then
		cp "$W/coap.out" "$W/coap.body"
	else
		# error answers are printed as "C.DD payload"
		sed -n 's/^[45]\.[0-9][0-9] //p' "$W/coap.log" | tail -n 1 | tr -d '\n' >"$W/coap.body"
	fi
}

# nl_zlib IN OUT: IN as one zlib stream (RFC 1950), the deflate content
# coding of content-format 11050, made with tools every Debian has: gzip's
# raw deflate data between a zlib header and an Adler-32 trailer.
nl_zlib() {
	printf '\170\001' >"$2"
	gzip -n -c "$1" | tail -c +11 | head -c -8 >>"$2"
	perl -e 'local $/; open(F, "<:raw", $ARGV[0]) or die; my $d = <F>;
		my ($a, $b) = (1, 0);
		for my $c (unpack("C*", $d)) { $a = ($a + $c) % 65521; $b = ($b + $a) % 65521 }
		print pack("N", ($b << 16) | $a)' "$1" >>"$2"
}

nl_coap_body() { cat "$W/coap.body" 2>/dev/null; }
