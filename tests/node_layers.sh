#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/node_layers.sh - the daemon's files call one another in one
# direction only (node/node.h describes the pipeline).  Reads which file of
# node/libtbnode.a defines each function and which files use it (nm), and
# fails on any use of a file at the same layer or above: a stage that must
# tell an upper one does so through a function registered at setup.
# Run by `make check` (TB_BUILDDIR set by the Makefile); by hand:
#   TB_BUILDDIR=build sh tests/node_layers.sh
set -u
LIB="${TB_BUILDDIR:-.}/node/libtbnode.a"
NM="${NM:-nm}"
if ! command -v "$NM" >/dev/null 2>&1; then
	echo "SKIP: no nm"
	exit 77
fi
[ -f "$LIB" ] || { echo "FAIL: $LIB not built"; exit 1; }

# Layers, lowest first; a file may use files of lower layers only.
#   0 logging:     log
#   1 the base:    config, journal (journal.c and its PostgreSQL half,
#                  journal_pg.c: one unit), worker, archive (where pruned
#                  messages go); coaplog (libcoap's log through log);
#                  link (a peer's link estimate); apiconn (the local
#                  API's connections: limits, cap, timeouts); flood
#                  (per-source limits on the DTLS port)
#   1.5            audit (the chain's signed head and admin events: uses
#                  the journal; node.c and the stages record events in it)
#   2 the state:   node (registry, keys, routes, clocks)
#   3 below the stages: transport (CoAP/DTLS), flows (flow checks),
#                  apimsg (the local API's messages), lifecycle (the
#                  registry's expiry over time, health), retain (the
#                  journal's retention thread)
#   4 the stages:  inbound (transport -> inbound -> journal),
#                  outbound (-> transport), regsync (-> transport)
#   5 above them:  ingest and answers (the thread feeding and settling
#                  outbound), webhook and responder (inbound's consumers)
#   6 the top:     api (-> ingest -> outbound)
LAYERS='log 0
config 1
journal 1
worker 1
coaplog 1
apiconn 1
flood 1
link 1
audit 1.5
archive 1
node 2
transport 3
flows 3
apimsg 3
lifecycle 3
retain 3
inbound 4
outbound 4
regsync 4
ingest 5
answers 5
webhook 5
responder 5
api 6'

"$NM" -A "$LIB" 2>/dev/null | awk -v layers="$LAYERS" '
function unit(s) { sub(/^.*:libtbnode_a-/, "", s); sub(/\.o:.*$/, "", s); sub(/^journal_pg$/, "journal", s); return s }
BEGIN {
	n = split(layers, l, "\n")
	for (i = 1; i <= n; i++) { split(l[i], f, " "); rank[f[1]] = f[2] }
}
{
	u = unit($1)
	if (!(u in rank)) { printf "FAIL: node/%s.c has no layer in tests/node_layers.sh\n", u; bad = 1 }
	if (NF == 3 && $2 ~ /^[TDRBC]$/) def[$3] = u
	if (NF == 3 && $2 == "U") use[++nu] = u " " $3
}
END {
	for (i = 1; i <= nu; i++) {
		split(use[i], p, " ")
		if (!(p[2] in def) || def[p[2]] == p[1]) continue
		edges++
		if (rank[def[p[2]]] >= rank[p[1]]) {
			printf "FAIL: node/%s.c (layer %d) calls %s of node/%s.c (layer %d)\n",
			    p[1], rank[p[1]], p[2], def[p[2]], rank[def[p[2]]]
			bad = 1
		}
	}
	if (edges < 20) { printf "FAIL: only %d uses between files found\n", edges; bad = 1 }
	if (!bad) printf "ok: %d uses between node/ files, all downwards\n", edges
	exit bad
}'
