#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/links.sh - delivery through bad links (issue 24, point 2): two
# nodes with the DEFAULT configuration, 320300 -> tests/udp_relay ->
# 371300, in three scenarios, each printing its figures:
#
#   throughput  N messages on a clean link (through the relay, nothing
#               impaired), then with 100 +-20 ms each way and no loss (a
#               reference), then on 5 % loss, 100 +-20 ms each way;
#               target: the lossy rate at least 0.5 of the clean one.
#               The jitter keeps each session's datagrams in order (the
#               relay's inorder=1: a queue's jitter; reordering is a rate
#               of its own, not asked for here); a last run repeats the
#               lossy one with jitter drawn per datagram, which reverses
#               datagrams sent within 40 ms of each other about half the
#               time (DTLS handshakes stall on that, PERFORMANCE.md).
#               N defaults to 10000 here: a throughput needs a run long
#               enough to have one; with 600 the clean run takes 0.7 s,
#               less than the lossy link's first three round trips
#               (the DTLS handshake), and even the lossless 100 ms
#               reference comes out at 0.44 of it
#   lossy       N messages at 25 % loss, 200 +-150 ms each way;
#               target: all confirmed (receipt verified) within 300 s
#   partition   the link is cut for 60 s; N messages submitted during the
#               cut; target: all confirmed within 30 s of the heal
#               (PARTITION_PROFILE: the link's profile outside the cut,
#               default clean; e.g. "loss=25 delay=200 jitter=150")
#
# Every scenario also checks exactly once: the receiver's inbox holds N
# distinct messages.
#
# Usage (from a build tree, or with TB_BUILDDIR/TB_SRCDIR set):
#   bench/links.sh [throughput|lossy|partition|all] [N]
#   (N: 10000 for throughput, 600 for lossy and partition)
# Environment: LL_SEED (the relay's seed, 1), NL_KEEP=1 keeps the files,
# LINKS_SET="key=value ..." adds node.conf lines (default: none).
set -u
: "${TB_BUILDDIR:=.}"
: "${TB_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
export TB_BUILDDIR TB_SRCDIR
WHAT=${1:-all}
N=${2:-}
SELF=$0

case "$WHAT" in
throughput | lossy | partition | all) ;;
*)
	echo "usage: bench/links.sh [throughput|lossy|partition|all] [MESSAGES]" >&2
	exit 2
	;;
esac
case "$N" in *[!0-9]*) echo "bench/links.sh: MESSAGES must be a number" >&2; exit 2 ;; esac

if [ "$WHAT" = all ]; then
	for s in throughput lossy partition; do "$SELF" "$s" $N || exit 1; done
	exit 0
fi
if [ -z "$N" ]; then
	N=600
	[ "$WHAT" = throughput ] && N=10000
fi

. "$TB_SRCDIR/tests/node_lib.sh"
. "$TB_SRCDIR/tests/links_lib.sh"

# run SCENARIO_TEXT LIMIT_S: one run of N messages; prints its line and
# sets RUN_MS (time to all confirmed, from the submission).
run() {
	local scen=$1 limit=$2 label=$3
	nl_init
	printf '%b\n' "$scen" >"$W/scenario"
	# shellcheck disable=SC2086
	ll_setup "$W/scenario" ${LINKS_SET:-}
	ll_mark
	ll_submit "$N"
	ll_wait "$N" "$limit" || echo "  only $LL_GOT of $N confirmed within $limit s"
	RUN_MS=$LL_WAITED_MS
	report "$label"
	ll_check_once "$N"
	nl_cleanup
	trap - EXIT
}

report() {
	local batch srtt loss
	batch=$(ll_peer_metric tongban_peer_batch_size)
	srtt=$(ll_peer_metric tongban_peer_rtt_seconds)
	loss=$(ll_peer_metric tongban_peer_loss_ratio)
	kill -USR1 "$LL_RELAY" 2>/dev/null
	sleep 0.3
	printf '%-34s %5d msgs  %8.1f s  %7.1f msg/s  (%s/%s confirmed; peer batch %s, rtt %s s, loss %s; relay %s)\n' \
		"$1" "$N" "$(echo "$RUN_MS / 1000" | bc -l)" "$(echo "$N * 1000 / $RUN_MS" | bc -l)" \
		"$LL_GOT" "$N" "${batch:-?}" "${srtt:-?}" "${loss:-?}" "$(tr -d '\n ' <"$W/relay.stats" 2>/dev/null | head -c 300)"
}

case "$WHAT" in
throughput)
	run "0 loss=0" 300 "clean link"
	clean=$RUN_MS
	run "0 delay=100 jitter=20 inorder=1" 300 "no loss, 100+-20 ms (reference)"
	run "0 loss=5 delay=100 jitter=20 inorder=1" 300 "5 % loss, 100+-20 ms"
	lossy=$RUN_MS
	run "0 loss=5 delay=100 jitter=20" 300 "5 % loss, 100+-20 ms, reordering"
	printf 'throughput ratio (lossy / clean): %.2f (target >= 0.5); with the jitter reordering datagrams: %.2f\n' \
		"$(echo "$clean / $lossy" | bc -l)" "$(echo "$clean / $RUN_MS" | bc -l)"
	;;
lossy)
	run "0 loss=25 delay=200 jitter=150" 300 "25 % loss, 200+-150 ms"
	;;
partition)
	nl_init
	printf '0 %s\n2 partition\n62 heal\n' "${PARTITION_PROFILE:-loss=0}" >"$W/scenario"
	# shellcheck disable=SC2086
	ll_setup "$W/scenario" ${LINKS_SET:-}
	sleep 3 # inside the cut (it starts 2 s after the relay)
	ll_submit "$N"
	# the heal: 62 s after the relay started (ll_setup's mark)
	while [ "$(ll_ms)" -lt 62000 ]; do sleep 0.2; done
	ll_mark
	ll_wait "$N" 120 || echo "  only $LL_GOT of $N confirmed within 120 s of the heal"
	RUN_MS=$LL_WAITED_MS
	report "60 s cut (${PARTITION_PROFILE:-clean}), after heal"
	ll_check_once "$N"
	;;
esac
