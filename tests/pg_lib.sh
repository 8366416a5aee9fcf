# SPDX-License-Identifier: Apache-2.0
# tests/pg_lib.sh - a PostgreSQL 15 server of a test's own (bash).
#
#   . "${TB_SRCDIR:-.}/tests/ports.sh"
#   . "${TB_SRCDIR:-.}/tests/pg_lib.sh"
#   pg_have || { echo "SKIP: $PG_WHY"; exit 77; }
#   pg_start "$W/pg"              # initdb + pg_ctl start; sets PG_URI,
#                                 # PGPASSFILE (exported), PG_PORT, PG_SOCK
#   ... tongban-node with journal = $PG_URI ...
#   pg_stop                       # also safe to call twice; put it in
#                                 # the test's EXIT trap
#   pg_resume                     # the same server started again
#   pg_sql "SELECT 1"             # psql as the journal's role, one value
#
# The server runs from Debian's postgresql-15 binaries
# (/usr/lib/postgresql/15/bin, or $PG_BIN) in DIR, as the calling user or,
# when that is root (which PostgreSQL refuses), as "nobody" via runuser.
# It listens on 127.0.0.1 on a port from tests/ports.sh and on a unix
# socket in DIR.  The journal's role "tongban" has a password
# (scram-sha-256 for every connection); libpq reads it from the password
# file PGPASSFILE, never from the URI, as docs/ADMIN.md tells operators to.
# The database is "tongban".  Nothing outside DIR is touched.

: "${PG_BIN:=/usr/lib/postgresql/15/bin}"
PG_DIR= PG_URI= PG_PORT= PG_SOCK= PG_WHY=

# pg_have: true when initdb, pg_ctl and psql are there; else PG_WHY says.
pg_have() {
	local t
	for t in initdb pg_ctl postgres psql; do
		if [ ! -x "$PG_BIN/$t" ]; then
			PG_WHY="$PG_BIN/$t not found (apt-get install postgresql-15)"
			return 1
		fi
	done
	if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null 2>&1; then
		PG_WHY="running as root and runuser is missing"
		return 1
	fi
	return 0
}

# pg_as CMD...: CMD as the server's user
pg_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u nobody -- "$@"
	else
		"$@"
	fi
}

# pg_start DIR: a new cluster in DIR (created), started; PG_URI names the
# journal database.  Fails (returns 1, with the server's log on stderr)
# when it does not come up within 60 s.
pg_start() {
	PG_DIR=$1
	mkdir -p "$PG_DIR" || return 1
	PG_PORT=$(tp_block 1) || return 1
	PG_SOCK=$PG_DIR
	printf '%s\n' "tb-$$-$RANDOM$RANDOM" >"$PG_DIR/pw"
	[ "$(id -u)" = 0 ] && chown -R nobody "$PG_DIR"
	chmod 700 "$PG_DIR"
	if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U tongban --pwfile="$PG_DIR/pw" \
		--auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
		echo "pg_start: initdb failed:" >&2
		cat "$PG_DIR/initdb.log" >&2
		return 1
	fi
	if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c fsync=on" \
		start >/dev/null 2>&1; then
		echo "pg_start: server did not start:" >&2
		cat "$PG_DIR/server.log" >&2
		return 1
	fi
	# the password file libpq reads (0600, the reader's own)
	printf '*:*:*:tongban:%s\n' "$(cat "$PG_DIR/pw")" >"$PG_DIR/pgpass"
	chmod 600 "$PG_DIR/pgpass"
	export PGPASSFILE="$PG_DIR/pgpass"
	PG_URI="postgresql://tongban@127.0.0.1:$PG_PORT/tongban?sslmode=disable"
	pg_psql postgres -c "CREATE DATABASE tongban" >/dev/null || return 1
	return 0
}

# pg_psql DB ARGS...: psql as the journal's role on DB, over the socket
pg_psql() {
	local db=$1
	shift
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U tongban -d "$db" "$@"
}

# pg_sql SQL: the first value SQL returns, on the journal database
pg_sql() {
	pg_psql tongban -A -t -c "$1"
}

# pg_resume: starts the server pg_start made again (after pg_stop)
pg_resume() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1" start >/dev/null 2>&1
}

# pg_stop: stops the server (fast: in-flight transactions roll back)
pg_stop() {
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1
	return 0
}

# For node tests (after tests/node_lib.sh).  pg_node_skip [sqlite3]: exits
# 77 (skip) without libpq in the build or without the server's binaries,
# or, when asked, without the sqlite3 shell.
pg_node_skip() {
	grep -q '^#define HAVE_LIBPQ 1' "$TB_BUILDDIR/config.h" 2>/dev/null ||
		{ echo "SKIP: built without libpq"; exit 77; }
	pg_have || { echo "SKIP: $PG_WHY"; exit 77; }
	[ "${1:-}" != sqlite3 ] || command -v sqlite3 >/dev/null 2>&1 ||
		{ echo "SKIP: no sqlite3 shell"; exit 77; }
}

# pg_node_start: the server in $W/pg (after nl_init; $W opened to the
# server's user); exits 75 (port taken, run again) or fails the test when
# it does not come up.  The caller's EXIT trap calls pg_stop.
pg_node_start() {
	chmod 755 "$W"
	if ! pg_start "$W/pg"; then
		grep -q 'Address already in use' "$W/pg/server.log" 2>/dev/null && exit 75
		nl_fail "PostgreSQL server starts"
	fi
}

# pg_node_fed: the server started (pg_node_start) and a development
# federation of 320300 and 371300, 371300 journalling on the server.
pg_node_fed() {
	pg_node_start
	nl_devfed 320300,371300
	pg_node_journal 371300
}

# pg_node_journal ID: member ID's node journals on the server.
pg_node_journal() {
	sed -i '/^journal *=/d' "$(nl_conf "$1")"
	echo "journal = $PG_URI" >>"$(nl_conf "$1")"
}
