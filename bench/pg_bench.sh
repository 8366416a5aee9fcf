#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/pg_bench.sh [MESSAGES] [--pair] - `tongban-bench node --journal
# postgresql` on a PostgreSQL server of its own (tests/pg_lib.sh; a
# database per member, synchronous_commit on, the default): SQLite
# journals and then PostgreSQL journals in the same run, their ratio,
# and with --pair the pair's figure (371300 as two processes on its
# database) against one process, for docs/PERFORMANCE.md.  Run from the
# build directory:
#   ../bench/pg_bench.sh 20000 --pair
: "${TB_BUILDDIR:=$PWD}" "${TB_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
export TB_BUILDDIR TB_SRCDIR
. "$TB_SRCDIR/tests/ports.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"
n=${1:-20000}
shift $(($# > 0 ? 1 : 0))
pg_have || { echo "pg_bench: $PG_WHY" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tbpgbench.XXXXXX") || exit 1
chmod 755 "$W"
trap 'pg_stop; rm -rf "$W"' EXIT
pg_start "$W/pg" || exit 1
pg_psql postgres -c "CREATE DATABASE tb320300" -c "CREATE DATABASE tb371300" >/dev/null || exit 1
echo "server: $("$PG_BIN/postgres" --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# libpq's defaults name the server: the journal URI is postgresql:///tb<member>
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=tongban PGSSLMODE=disable
PATH="$TB_BUILDDIR:$PATH" "$TB_BUILDDIR/tongban-bench" node --messages "$n" --journal postgresql "$@"
