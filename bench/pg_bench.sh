#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/pg_bench.sh [MESSAGES] - tongban-bench node on SQLite journals and
# then on PostgreSQL journals (a database per member on a server of its
# own, tests/pg_lib.sh; synchronous_commit on, the default), in the same
# run, for docs/PERFORMANCE.md.  Run from the build directory:
#   ../bench/pg_bench.sh 20000
: "${TB_BUILDDIR:=$PWD}" "${TB_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
export TB_BUILDDIR TB_SRCDIR
. "$TB_SRCDIR/tests/ports.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"
n=${1:-20000}
pg_have || { echo "pg_bench: $PG_WHY" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tbpgbench.XXXXXX") || exit 1
chmod 755 "$W"
trap 'pg_stop; rm -rf "$W"' EXIT
pg_start "$W/pg" || exit 1
pg_psql postgres -c "CREATE DATABASE tb320300" -c "CREATE DATABASE tb371300" >/dev/null || exit 1
uri="postgresql://tongban@127.0.0.1:$PG_PORT/tb%m?sslmode=disable"
echo "== SQLite journals"
PATH="$TB_BUILDDIR:$PATH" "$TB_BUILDDIR/tongban-bench" node --messages "$n"
echo "== PostgreSQL journals ($("$PG_BIN/postgres" --version))"
PATH="$TB_BUILDDIR:$PATH" "$TB_BUILDDIR/tongban-bench" node --messages "$n" --set "journal = $uri"
