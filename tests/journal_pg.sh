#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/journal_pg.sh - the journal unit tests (tests/test_journal) against
# the PostgreSQL backend, on a server of the test's own (tests/pg_lib.sh).
# test_journal runs its backend-independent tests and the PostgreSQL ones
# when TB_TEST_PG_URI names a database (which it empties per test).
# Skipped (77) when the PostgreSQL 15 binaries are absent or when this
# build has no libpq.  About 15 s on an idle machine.
: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
. "$TB_SRCDIR/tests/ports.sh"
. "$TB_SRCDIR/tests/pg_lib.sh"

if ! grep -q '^#define HAVE_LIBPQ 1' "$TB_BUILDDIR/config.h" 2>/dev/null; then
	echo "SKIP: built without libpq (no PostgreSQL journal)"
	exit 77
fi
[ -x "$TB_BUILDDIR/tests/test_journal" ] || { echo "SKIP: tests/test_journal not built (cmocka)"; exit 77; }
pg_have || { echo "SKIP: $PG_WHY"; exit 77; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tbpg.XXXXXX") || exit 1
chmod 755 "$W"
trap 'pg_stop; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
if ! pg_start "$W/pg"; then
	# the port was taken between tests/ports.sh's look and the bind
	grep -q 'Address already in use' "$W/pg/server.log" 2>/dev/null && exit 75
	exit 1
fi
TB_TEST_PG_URI=$PG_URI "$TB_BUILDDIR/tests/test_journal"
