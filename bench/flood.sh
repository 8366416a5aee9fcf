#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/flood.sh BUILDDIR - the full-size floods of issue 24 point 4, by
# hand (about 4 minutes): tests/node_flood.sh with 60 s of cookie echoes
# and 60 s each of garbage and ClientHellos at the rate one process makes,
# its figures (delivery latency, the node's CPU per datagram and per
# half-open handshake, its log's size) on stdout for docs/PERFORMANCE.md.
set -u
B=$(cd "${1:?usage: bench/flood.sh BUILDDIR}" && pwd) || exit 2
S=$(cd "$(dirname "$0")/.." && pwd)
FLOOD_COOKIE_SECS=60 FLOOD_SECS=60 TB_BUILDDIR="$B" TB_SRCDIR="$S" \
	bash "$S/tests/node_flood.sh"
