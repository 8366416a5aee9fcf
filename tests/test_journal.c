/* SPDX-License-Identifier: Apache-2.0 */
/* test_journal.c - the durable journal (node/journal): stores, queue state
 * machine, replay cache, prune, audit chain, crash safety. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#include "certs/tb_key.h"
#include "node/journal.h"
#include "node/journal_pg.h"
#include "util/tb_enc.h"

#ifdef HAVE_LIBPQ
#include <libpq-fe.h>
#endif

/* TB_TEST_PG_URI (tests/journal_pg.sh): a PostgreSQL database the tests
 * that hold for both backends run against; open_ok() empties it once per
 * test (per fresh path) and opens the URI instead of the file. */
static const char *pg_uri;

static char tmpdir[64];
static int dbcount;

/* A fresh database path in the test directory. */
static void
newpath(char *out, size_t n)
{
	snprintf(out, n, "%s/j%d.db", tmpdir, ++dbcount);
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
group_setup(void **state)
{
	const char *base = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tbjournal.XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* A message numbered n: id and digest derive from n, the envelope and
 * receipt bytes too, so any mix-up between rows shows. */
struct tmsg {
	char id[33];
	char digest[65];
	char from[16];
	uint8_t env[48];
	uint8_t rcpt[24];
	struct tb_journal_msg m;
};

static void
mkmsg(struct tmsg *t, unsigned n, int64_t expires)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%032x", n);
	snprintf(t->digest, sizeof(t->digest), "%064x", n * 7u + 1);
	snprintf(t->from, sizeof(t->from), "peer-%u", n % 3);
	for (size_t i = 0; i < sizeof(t->env); i++)
		t->env[i] = (uint8_t)(n + i);
	for (size_t i = 0; i < sizeof(t->rcpt); i++)
		t->rcpt[i] = (uint8_t)(n * 3 + i);
	t->m.id = t->id;
	t->m.from = t->from;
	t->m.to = "city-0101";
	t->m.type = "request";
	t->m.service = (n % 2) ? "permits" : NULL;
	t->m.corr = NULL;
	t->m.digest = t->digest;
	t->m.created = 1000 + n;
	t->m.expires = expires;
	t->m.envelope = t->env;
	t->m.envelope_len = sizeof(t->env);
	t->m.receipt = t->rcpt;
	t->m.receipt_len = sizeof(t->rcpt);
}

#ifdef HAVE_LIBPQ
/* Empties the test database: every table dropped with the schema. */
static void
pg_reset(void)
{
	PGconn *c = PQconnectdb(pg_uri);
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", pg_uri, PQerrorMessage(c));
	r = PQexec(c, "SET client_min_messages = warning;"
	              "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("reset: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* One SQL statement on the test database; its first value as an integer
 * (0 for none). */
static int64_t
pg_int(const char *sql)
{
	PGconn *c = PQconnectdb(pg_uri);
	PGresult *r = PQexec(c, sql);
	int64_t v = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}
#endif

static struct tb_journal *
open_ok(const char *path)
{
	static char last[128];
	struct tb_diag d;
	struct tb_journal *j;

#ifdef HAVE_LIBPQ
	if (pg_uri != NULL) {
		if (strcmp(path, last) != 0)
			pg_reset();
		snprintf(last, sizeof(last), "%s", path);
		path = pg_uri;
	}
#else
	(void)last;
#endif
	j = tb_journal_open(path, &d);

	if (j == NULL)
		fail_msg("open %s: %s (%d)", path, d.detail, d.code);
	return j;
}

/* Runs SQL on the file with a separate raw connection (the tamperer). */
static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v;

#ifdef HAVE_LIBPQ
	if (pg_uri != NULL) /* a test run on both backends: the same SQL */
		return pg_int(sql);
#endif
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* ---- lifetime ---- */

static void
test_open_schema_reopen(void **state)
{
	char path[128];
	struct tb_journal *j;
	sqlite3 *db;
	sqlite3_stmt *s;

	(void)state;
	tb_journal_close(NULL);
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_journal_close(j);
	assert_int_equal(raw_int(path, "PRAGMA user_version"), TB_JOURNAL_SCHEMA);
	assert_int_equal(raw_int(path, "PRAGMA application_id"), 0x54424a31);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* reopening an existing journal does not re-create anything */
	j = open_ok(path);
	tb_journal_close(j);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A schema-1 journal (envelope and receipt inside the outbound row), as
 * written by tongban 0.1.0 before schema 2, with one delivered and one
 * queued message. */
static const char schema1_sql[] =
    "PRAGMA user_version = 1; PRAGMA application_id = 1413630513;"
    "CREATE TABLE inbound (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL, service TEXT,"
    " corr TEXT, digest TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " envelope BLOB NOT NULL, receipt BLOB NOT NULL,"
    " acked INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)));"
    "CREATE INDEX inbound_inbox ON inbound (seq) WHERE acked = 0;"
    "CREATE INDEX inbound_prune ON inbound (expires) WHERE acked = 1;"
    "CREATE TABLE outbound (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL, service TEXT,"
    " corr TEXT, digest TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " envelope BLOB NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,"
    " last_error TEXT, reason TEXT, done_at INTEGER, receipt BLOB);"
    "CREATE INDEX outbound_due ON outbound (next_attempt, seq) WHERE state = 0;"
    "CREATE INDEX outbound_prune ON outbound (expires) WHERE state <> 0;"
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY CHECK (seq > 0), prev TEXT NOT NULL,"
    " dir TEXT NOT NULL CHECK (dir IN ('i', 'o')), msgid TEXT NOT NULL, digest TEXT NOT NULL,"
    " peer TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, hash TEXT NOT NULL);"
    "INSERT INTO outbound (id, sender, recipient, type, digest, created, expires, envelope,"
    " state, next_attempt, done_at, receipt) VALUES"
    " ('11111111111111111111111111111111', '320300', '371300', 'identity.verify',"
    "  '" D64 "', 100, 4000000000, X'7b2261223a317d', 1, 100, 150, X'7b2272223a327d'),"
    " ('22222222222222222222222222222222', '320300', '371300', 'identity.verify',"
    "  '" D64 "', 100, 4000000000, X'7b2262223a337d', 0, 100, NULL, NULL);";

static int
due_one(void *ctx, const struct tb_journal_out *o)
{
	struct tb_buf *b = ctx;

	tb_buf_add(b, o->msg.envelope, o->msg.envelope_len);
	tb_buf_addc(b, '|');
	tb_buf_add(b, o->msg.id, strlen(o->msg.id));
	tb_buf_addc(b, ';');
	return 0;
}

/* A schema-1 file is migrated to schema 2 when opened: nothing lost,
 * queue and receipts as before, and the old columns gone. */
static void
test_open_migrates_schema1(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_journal_status st;
	struct tb_buf b;

	(void)state;
	newpath(path, sizeof(path));
	raw_exec(path, schema1_sql);
	j = open_ok(path);
	assert_int_equal(raw_int(path, "PRAGMA user_version"), TB_JOURNAL_SCHEMA);
	tb_buf_init(&b);
	assert_int_equal(tb_journal_outbound_status(j, "11111111111111111111111111111111", &st, &b),
	                 TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_DELIVERED);
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "{\"r\":2}", 7);
	assert_int_equal(tb_journal_outbound_status(j, "22222222222222222222222222222222", &st, &b),
	                 TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_QUEUED);
	assert_int_equal(b.len, 0);
	tb_buf_reset(&b);
	assert_int_equal(tb_journal_outbound_due(j, 200, 0, due_one, &b), TB_OK);
	tb_buf_addc(&b, '\0');
	assert_string_equal((char *)b.data, "{\"b\":3}|22222222222222222222222222222222;");
	tb_journal_close(j);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('outbound')"
	                               " WHERE name IN ('envelope', 'receipt')"),
	                 0);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_env"), 2);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_receipt"), 1);
	/* and a second open leaves it alone */
	tb_journal_close(open_ok(path));
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_env"), 2);
	tb_buf_free(&b);
}

/* Queues outbound message id (320300 -> 371300, type) with envelope
 * bytes blob; the journal's return code. */
static int
put_blob(struct tb_journal *j, const char *id, const char *type, const uint8_t *blob, size_t len)
{
	struct tb_journal_msg m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.from = "320300";
	m.to = "371300";
	m.type = type;
	m.digest = D64;
	m.created = 100;
	m.expires = 4000000000;
	m.envelope = blob;
	m.envelope_len = len;
	return tb_journal_outbound_put(j, &m, 100);
}

/* Checkpoints happen on the journal's own thread: commits that fill the
 * WAL past 1,000 pages get one without running it themselves, and the
 * database file then holds the data. */
/* About 1,500 pages: 30 transactions of 50 messages of 4,000 bytes of
 * fill, ids first to first + 1,499. */
static void
put_pages(struct tb_journal *j, int first, char fill)
{
	char id[33];
	uint8_t blob[4000];

	memset(blob, fill, sizeof(blob));
	for (int k = 0; k < 30; k++) {
		assert_int_equal(tb_journal_begin(j), TB_OK);
		for (int i = 0; i < 50; i++) {
			snprintf(id, sizeof(id), "%032d", first + k * 50 + i);
			assert_int_equal(put_blob(j, id, "identity.verify", blob, sizeof(blob)),
			                 TB_OK);
		}
		assert_int_equal(tb_journal_commit(j), TB_OK);
	}
}

/* Waits (up to 5 s) for j's checkpoint thread to run one after before. */
static void
wait_checkpoint(struct tb_journal *j, uint64_t before)
{
	for (int w = 0; w < 500 && tb_journal_checkpoints(j) == before; w++)
		usleep(10000);
	assert_true(tb_journal_checkpoints(j) > before);
}

static void
test_checkpoint_background(void **state)
{
	char path[128];
	struct tb_journal *j;
	uint64_t before;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	before = tb_journal_checkpoints(j);
	/* about 1,500 pages: more than one checkpoint's worth */
	put_pages(j, 1, 'x');
	wait_checkpoint(j, before);
	/* the database file itself (not only the WAL) now holds the rows */
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 100 * 4096); /* before: the schema pages only */
	int64_t pending = 0;
	assert_int_equal(tb_journal_outbound_pending(j, &pending), TB_OK);
	assert_int_equal(pending, 1500);
	tb_journal_close(j);
}

/* Commits on a secondary handle wake the primary's checkpoint thread: a
 * node whose loop writes nothing (its messages sent from memory) still
 * gets its WAL copied back.  A plain TB_JOURNAL_NO_CHECKPOINTS handle does
 * not, and a secondary needs a primary with a checkpoint thread. */
static void
test_checkpoint_secondary(void **state)
{
	char path[128];
	struct tb_journal *j, *s, *plain;
	struct tb_diag d;
	uint64_t before;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_null(tb_journal_open_secondary(NULL, &d));
	assert_int_equal(d.code, TB_E_ARG);
	assert_non_null(plain = tb_journal_open_ex(path, TB_JOURNAL_NO_CHECKPOINTS, &d));
	assert_null(tb_journal_open_secondary(plain, &d));
	assert_int_equal(d.code, TB_E_ARG);
	/* about 1,500 pages through the plain handle: no checkpoint */
	before = tb_journal_checkpoints(j);
	put_pages(plain, 1, 'y');
	usleep(100000);
	assert_int_equal(tb_journal_checkpoints(j), before);
	tb_journal_close(plain);
	/* and as many through a secondary: the primary's thread checkpoints */
	assert_non_null(s = tb_journal_open_secondary(j, &d));
	put_pages(s, 5000, 'y');
	wait_checkpoint(j, before);
	int64_t pending = 0;
	assert_int_equal(tb_journal_outbound_pending(s, &pending), TB_OK);
	assert_int_equal(pending, 3000);
	tb_journal_close(s);
	tb_journal_close(j);
}

/* Two handles on one file written from two threads, as the node's loop
 * and ingest thread do: every transaction of both lands, and the audit
 * chain stays one unbroken chain (each entry links to the head the other
 * handle may just have moved). */
struct writer_arg {
	const char *path;
	int rc; /* first failure, TB_OK if none */
};

static void *
second_writer(void *p)
{
	struct writer_arg *a = p;
	struct tb_diag d;
	struct tb_journal *j = tb_journal_open_ex(a->path, TB_JOURNAL_NO_CHECKPOINTS, &d);
	char id[33];
	uint8_t blob[1400];

	a->rc = j ? TB_OK : d.code;
	memset(blob, 'e', sizeof(blob));
	for (int k = 0; j != NULL && a->rc == TB_OK && k < 40; k++) {
		if ((a->rc = tb_journal_begin(j)) != TB_OK)
			break;
		for (int i = 0; i < 25 && a->rc == TB_OK; i++) {
			snprintf(id, sizeof(id), "%032x", 0x10000 + k * 25 + i);
			if ((a->rc = put_blob(j, id, "case.submit", blob, sizeof(blob))) == TB_OK)
				a->rc = tb_journal_audit_append(j, 'o', id, D64, "371300", 100,
				                                "queued");
		}
		if (a->rc == TB_OK)
			a->rc = tb_journal_commit(j);
		else if (tb_journal_rollback(j) != TB_OK) {
			/* a->rc holds the round's first error, which the test reports */
		}
	}
	tb_journal_close(j);
	return NULL;
}

static void
test_two_writers(void **state)
{
	char path[128], id[33];
	struct tb_journal *j;
	struct writer_arg a;
	pthread_t t;
	int64_t bad = -1, n = 0, pending = 0;
	struct tb_diag d;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	a.path = path;
	a.rc = TB_OK;
	assert_int_equal(pthread_create(&t, NULL, second_writer, &a), 0);
	for (int k = 0; k < 40; k++) {
		assert_int_equal(k % 2 ? tb_journal_begin(j) : tb_journal_begin_nosync(j), TB_OK);
		for (int i = 0; i < 25; i++) {
			snprintf(id, sizeof(id), "%032x", 0x20000 + k * 25 + i);
			assert_int_equal(
			    tb_journal_audit_append(j, 'i', id, D64, "371300", 100, "stored"),
			    TB_OK);
		}
		assert_int_equal(tb_journal_commit(j), TB_OK);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, TB_OK);
	assert_int_equal(tb_journal_outbound_pending(j, &pending), TB_OK);
	assert_int_equal(pending, 1000);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 2000);
	assert_int_equal(bad, 0);
}

static void
test_open_errors(void **state)
{
	char path[128];
	struct tb_diag d;
	int64_t bad, n;
	FILE *f;

	(void)state;
	assert_null(tb_journal_open(NULL, &d));
	assert_int_equal(d.code, TB_E_ARG);
	assert_null(tb_journal_open("/nonexistent-tongban-dir/sub/j.db", &d));
	assert_int_equal(d.code, TB_E_IO);
	assert_true(strlen(d.detail) > 0);

	/* a file that is not SQLite */
	newpath(path, sizeof(path));
	assert_non_null(f = fopen(path, "w"));
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database, just text\n", f);
	fclose(f);
	assert_null(tb_journal_open(path, &d));
	assert_int_equal(d.code, TB_E_JOURNAL_CORRUPT);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_JOURNAL_CORRUPT);

	/* another application's SQLite database: not adopted */
	newpath(path, sizeof(path));
	raw_exec(path, "CREATE TABLE t(x)");
	assert_null(tb_journal_open(path, &d));
	assert_int_equal(d.code, TB_E_JOURNAL_CORRUPT);
	newpath(path, sizeof(path));
	raw_exec(path, "PRAGMA application_id = 1234");
	assert_null(tb_journal_open(path, &d));
	assert_int_equal(d.code, TB_E_JOURNAL_CORRUPT);

	/* a journal written by a future schema is refused, not misread */
	newpath(path, sizeof(path));
	tb_journal_close(open_ok(path));
	raw_exec(path, "PRAGMA user_version = 99");
	assert_null(tb_journal_open(path, &d));
	assert_int_equal(d.code, TB_E_JOURNAL_VERSION);
	assert_string_equal(tb_err_reason(d.code), "journal.version");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_JOURNAL_VERSION);

	/* verify of a missing file */
	newpath(path, sizeof(path));
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_IO);
}

/* ---- inbound and inbox ---- */

static void
test_inbound_duplicate_original_receipt(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg a, dup, bad;
	struct tb_buf r;
	int64_t n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&a, 1, 5000);
	assert_int_equal(tb_journal_inbound_put(j, &a.m, &r), TB_OK);
	assert_int_equal(r.len, 0);

	/* same id, different receipt: refused, the first receipt returned */
	mkmsg(&dup, 1, 5000);
	memset(dup.rcpt, 0xee, sizeof(dup.rcpt));
	assert_int_equal(tb_journal_inbound_put(j, &dup.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, sizeof(a.rcpt));
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 1);

	/* the same id on a different message: refused, and no receipt */
	mkmsg(&bad, 1, 5000);
	bad.m.digest = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, 0);
	assert_non_null(strstr(tb_journal_diag(j)->detail, "different message"));
	mkmsg(&bad, 1, 5000);
	bad.m.from = "someone-else";
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, 0);

	/* and inside a batch too, even when the first copy is in it */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	mkmsg(&dup, 2, 5000);
	assert_int_equal(tb_journal_inbound_put(j, &dup.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &dup.m, &r), TB_E_REPLAY);
	assert_memory_equal(r.data, dup.rcpt, sizeof(dup.rcpt));
	assert_int_equal(tb_journal_inbound_put(j, &a.m, &r), TB_E_REPLAY);
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 2);

	assert_int_equal(tb_journal_inbound_receipt(j, a.id, &r), TB_OK);
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_inbound_receipt(j, "0000000000000000000000000000abcd", &r),
	                 TB_E_NOTFOUND);
	assert_string_equal(tb_err_reason(TB_E_NOTFOUND), "not-found");

	/* malformed messages */
	mkmsg(&bad, 9, 5000);
	bad.m.id = "0000000000000000000000000000ABCD";
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_ARG);
	mkmsg(&bad, 9, 5000);
	bad.m.digest = "00";
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_ARG);
	mkmsg(&bad, 9, 5000);
	bad.m.from = NULL;
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_ARG);
	mkmsg(&bad, 9, 5000);
	bad.m.receipt_len = 0;
	assert_int_equal(tb_journal_inbound_put(j, &bad.m, &r), TB_E_ARG);
	assert_int_equal(tb_journal_diag(j)->code, TB_E_ARG);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 2);

	tb_buf_free(&r);
	tb_journal_close(j);
}

struct seen {
	int n;
	int stop_after;
	int64_t seq[16];
	char id[16][33];
	int service_null[16];
};

static int
collect(void *ctx, int64_t seq, const struct tb_journal_msg *m)
{
	struct seen *s = ctx;
	struct tmsg want;
	unsigned k;

	if (s->n >= 16)
		return -1;
	s->seq[s->n] = seq;
	snprintf(s->id[s->n], 33, "%s", m->id);
	s->service_null[s->n] = m->service == NULL;
	/* every field comes back as stored */
	if (sscanf(m->id, "%x", &k) != 1)
		return -1;
	mkmsg(&want, k, m->expires);
	if (strcmp(m->digest, want.digest) != 0 || strcmp(m->from, want.from) != 0 ||
	    m->envelope_len != sizeof(want.env) ||
	    memcmp(m->envelope, want.env, sizeof(want.env)) ||
	    m->receipt_len != sizeof(want.rcpt) ||
	    memcmp(m->receipt, want.rcpt, sizeof(want.rcpt)) || m->created != want.m.created ||
	    (m->service == NULL) != (want.m.service == NULL))
		return -2;
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void
test_inbox_order_ack(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t[6];
	struct seen s;
	int64_t n;
	/* arrival order differs from numeric id order on purpose */
	static const unsigned order[6] = {40, 10, 30, 20, 60, 50};

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	for (int i = 0; i < 6; i++) {
		mkmsg(&t[i], order[i], 9000);
		assert_int_equal(tb_journal_inbound_put(j, &t[i].m, NULL), TB_OK);
	}
	memset(&s, 0, sizeof(s));
	assert_int_equal(tb_journal_inbox_list(j, 0, 0, collect, &s), TB_OK);
	assert_int_equal(s.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(s.id[i], t[i].id);
		if (i > 0)
			assert_true(s.seq[i] > s.seq[i - 1]);
	}

	assert_int_equal(tb_journal_inbox_ack(j, t[1].id), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, t[1].id), TB_OK); /* idempotent */
	assert_int_equal(tb_journal_inbox_ack(j, "ffffffffffffffffffffffffffffffff"),
	                 TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbox_ack(j, "nothex"), TB_E_ARG);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 5);

	/* paging with the seq cursor: 2 + 2 + 1, skipping the acked one */
	int64_t cursor = 0;
	int got = 0;
	const int want_idx[5] = {0, 2, 3, 4, 5};
	for (int page = 0; page < 4; page++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(tb_journal_inbox_list(j, 2, cursor, collect, &s), TB_OK);
		for (int i = 0; i < s.n; i++)
			assert_string_equal(s.id[i], t[want_idx[got + i]].id);
		got += s.n;
		if (s.n == 0)
			break;
		cursor = s.seq[s.n - 1];
	}
	assert_int_equal(got, 5);

	/* a callback's non-zero return stops the listing and is returned */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(tb_journal_inbox_list(j, 0, 0, collect, &s), 7);
	assert_int_equal(s.n, 2);
	/* the acked message is still the replay cache: a duplicate is refused */
	assert_int_equal(tb_journal_inbound_put(j, &t[1].m, NULL), TB_E_REPLAY);
	tb_journal_close(j);
}

/* ---- outbound ---- */

static void
test_outbound_state_machine(void **state)
{
	char path[128];
	struct tb_journal *j;
	bool fresh;
	struct tb_journal_status st;
	struct tmsg a, b;
	struct tb_buf r;
	const uint8_t rc1[] = "receipt-one", rc2[] = "receipt-two";
	const char *none = "0123456789abcdef0123456789abcdef";

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&a, 100, 9000);
	mkmsg(&b, 101, 9000);
	assert_int_equal(tb_journal_outbound_put(j, &a.m, 10), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &a.m, 10), TB_E_REPLAY);
	assert_int_equal(tb_journal_outbound_put(j, &b.m, 10), TB_OK);

	assert_int_equal(tb_journal_outbound_status(j, a.id, &st, &r), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_QUEUED);
	assert_int_equal(st.attempts, 0);
	assert_int_equal(st.next_attempt, 10);
	assert_int_equal(r.len, 0);
	assert_string_equal(st.last_error, "");

	assert_int_equal(tb_journal_outbound_retry(j, a.id, 20, "timeout"), TB_OK);
	assert_int_equal(tb_journal_outbound_retry(j, a.id, 40, "dtls handshake failed"), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, a.id, &st, NULL), TB_OK);
	assert_int_equal(st.attempts, 2);
	assert_int_equal(st.next_attempt, 40);
	assert_string_equal(st.last_error, "dtls handshake failed");

	fresh = false;
	assert_int_equal(tb_journal_outbound_delivered(j, a.id, rc1, sizeof(rc1), 45, &fresh),
	                 TB_OK);
	assert_true(fresh);
	assert_int_equal(tb_journal_outbound_status(j, a.id, &st, &r), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_DELIVERED);
	assert_string_equal(tb_journal_state_name(st.state), "delivered");
	assert_int_equal(st.delivered_at, 45);
	assert_int_equal(st.failed_at, 0);
	assert_int_equal(r.len, sizeof(rc1));
	assert_memory_equal(r.data, rc1, sizeof(rc1));
	/* a late second receipt: accepted, the first one kept, and not fresh
	 * (the node counts and logs the delivery once) */
	assert_int_equal(tb_journal_outbound_delivered(j, a.id, rc2, sizeof(rc2), 50, &fresh),
	                 TB_OK);
	assert_false(fresh);
	assert_int_equal(tb_journal_outbound_status(j, a.id, &st, &r), TB_OK);
	assert_memory_equal(r.data, rc1, sizeof(rc1));
	assert_int_equal(st.delivered_at, 45);
	/* delivered is final */
	assert_int_equal(tb_journal_outbound_retry(j, a.id, 60, "x"), TB_E_JOURNAL_STATE);
	assert_int_equal(tb_journal_outbound_failed(j, a.id, "x", 60), TB_E_JOURNAL_STATE);

	assert_int_equal(tb_journal_outbound_failed(j, b.id, "expired after 7 attempts", 70),
	                 TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, b.id, &st, &r), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_FAILED);
	assert_string_equal(tb_journal_state_name(st.state), "failed");
	assert_string_equal(st.reason, "expired after 7 attempts");
	assert_int_equal(st.failed_at, 70);
	assert_int_equal(r.len, 0);
	/* failed is final too */
	assert_int_equal(tb_journal_outbound_delivered(j, b.id, rc1, sizeof(rc1), 80, NULL),
	                 TB_E_JOURNAL_STATE);
	assert_int_equal(tb_journal_outbound_retry(j, b.id, 90, NULL), TB_E_JOURNAL_STATE);

	assert_int_equal(tb_journal_outbound_status(j, none, &st, &r), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_retry(j, none, 1, NULL), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_delivered(j, none, NULL, 0, 1, NULL), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_failed(j, none, NULL, 1), TB_E_NOTFOUND);
	assert_string_equal(tb_journal_state_name(TB_JOURNAL_QUEUED), "queued");
	assert_string_equal(tb_journal_state_name((enum tb_journal_state)9), "unknown");

	/* long reasons are truncated, not overflowed */
	char longmsg[400];
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	mkmsg(&b, 102, 9000);
	assert_int_equal(tb_journal_outbound_put(j, &b.m, 1), TB_OK);
	assert_int_equal(tb_journal_outbound_retry(j, b.id, 2, longmsg), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, b.id, &st, NULL), TB_OK);
	assert_int_equal(strlen(st.last_error), sizeof(st.last_error) - 1);

	tb_buf_free(&r);
	tb_journal_close(j);
}

struct due {
	int n;
	char id[8][33];
	int64_t attempts[8];
};

static int
collect_due(void *ctx, const struct tb_journal_out *o)
{
	struct due *d = ctx;

	if (d->n >= 8 || o->state != TB_JOURNAL_QUEUED || o->msg.envelope_len != 48)
		return -1;
	snprintf(d->id[d->n], 33, "%s", o->msg.id);
	d->attempts[d->n] = o->attempts;
	d->n++;
	return 0;
}

static void
test_outbound_due_next(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t[5];
	struct due d;
	int64_t when, n;
	static const int64_t next[5] = {30, 10, 20, 10, 100}; /* A..E */

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_outbound_next_due(j, &when), TB_E_NOTFOUND);
	for (int i = 0; i < 5; i++) {
		mkmsg(&t[i], 200 + i, 9000);
		assert_int_equal(tb_journal_outbound_put(j, &t[i].m, next[i]), TB_OK);
	}
	assert_int_equal(tb_journal_outbound_pending(j, &n), TB_OK);
	assert_int_equal(n, 5);
	assert_int_equal(tb_journal_outbound_next_due(j, &when), TB_OK);
	assert_int_equal(when, 10);

	/* due at 25: B(10) then D(10, queued after B) then C(20) */
	memset(&d, 0, sizeof(d));
	assert_int_equal(tb_journal_outbound_due(j, 25, 0, collect_due, &d), TB_OK);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.id[0], t[1].id);
	assert_string_equal(d.id[1], t[3].id);
	assert_string_equal(d.id[2], t[2].id);
	memset(&d, 0, sizeof(d));
	assert_int_equal(tb_journal_outbound_due(j, 25, 2, collect_due, &d), TB_OK);
	assert_int_equal(d.n, 2);
	memset(&d, 0, sizeof(d));
	assert_int_equal(tb_journal_outbound_due(j, 9, 0, collect_due, &d), TB_OK);
	assert_int_equal(d.n, 0);

	/* B retried to 50, D delivered, C failed: A(30) is next */
	assert_int_equal(tb_journal_outbound_retry(j, t[1].id, 50, "busy"), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, t[3].id, NULL, 0, 11, NULL), TB_OK);
	assert_int_equal(tb_journal_outbound_failed(j, t[2].id, "refused", 12), TB_OK);
	assert_int_equal(tb_journal_outbound_next_due(j, &when), TB_OK);
	assert_int_equal(when, 30);
	assert_int_equal(tb_journal_outbound_pending(j, &n), TB_OK);
	assert_int_equal(n, 3);
	memset(&d, 0, sizeof(d));
	assert_int_equal(tb_journal_outbound_due(j, 1000, 0, collect_due, &d), TB_OK);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.id[0], t[0].id); /* 30 */
	assert_string_equal(d.id[1], t[1].id); /* 50, one attempt */
	assert_int_equal(d.attempts[1], 1);
	assert_string_equal(d.id[2], t[4].id); /* 100 */
	tb_journal_close(j);
}

/* tb_journal_outbound_queued_by: collects "to=count" pairs. */
static int
collect_queued(void *ctx, const char *to, int64_t queued)
{
	char *out = ctx;

	snprintf(out + strlen(out), 256 - strlen(out), "%s=%lld;", to, (long long)queued);
	return 0;
}

/* Queue depth per recipient (GET /v1/peers): queued messages only, by
 * recipient, in id order; a callback's non-zero stops the listing. */
static void
test_outbound_queued_by(void **state)
{
	char path[128], out[256] = "";
	struct tb_journal *j;
	struct tmsg t[6];
	static const char *const to[6] = {"371300", "320300", "371300",
	                                  "411400", "371300", "411400"};

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_outbound_queued_by(j, collect_queued, out), TB_OK);
	assert_string_equal(out, "");
	assert_int_equal(tb_journal_outbound_queued_by(j, NULL, out), TB_E_ARG);
	for (int i = 0; i < 6; i++) {
		mkmsg(&t[i], 300 + i, 9000);
		t[i].m.to = to[i];
		assert_int_equal(tb_journal_outbound_put(j, &t[i].m, 10), TB_OK);
	}
	/* one to 371300 delivered, the one to 320300 failed: not queued */
	assert_int_equal(tb_journal_outbound_delivered(j, t[2].id, NULL, 0, 11, NULL), TB_OK);
	assert_int_equal(tb_journal_outbound_failed(j, t[1].id, "refused", 12), TB_OK);
	assert_int_equal(tb_journal_outbound_queued_by(j, collect_queued, out), TB_OK);
	assert_string_equal(out, "371300=2;411400=2;");
	tb_journal_close(j);
}

/* tb_journal_library_init (called in main, before SQLite started) turned
 * SQLite's memory statistics off: nothing is counted while a journal is
 * open and working; a second call, now that SQLite runs, changes
 * nothing. */
static void
test_library_init(void **state)
{
	char path[128];
	struct tb_journal *j;
	sqlite3_int64 cur = -1, hi = -1;
	struct tmsg t;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&t, 400, 9000);
	assert_int_equal(tb_journal_outbound_put(j, &t.m, 1), TB_OK);
	assert_int_equal(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0), SQLITE_OK);
	assert_int_equal(cur, 0);
	tb_journal_library_init();
	int64_t pending = 0;
	assert_int_equal(tb_journal_outbound_pending(j, &pending), TB_OK);
	assert_int_equal(pending, 1);
	tb_journal_close(j);
}

/* Messages a sender holds in memory: journalled with a first attempt far
 * ahead, handed back (reschedule) or released after a restart. */
static void
test_outbound_held(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_journal_status st;
	struct tmsg t[4];
	struct due d;
	int64_t n, when;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	/* A, B, C held until 135; D an ordinary message due at 100 */
	for (int i = 0; i < 4; i++) {
		mkmsg(&t[i], 300 + i, 9000);
		assert_int_equal(tb_journal_outbound_put(j, &t[i].m, i < 3 ? 135 : 100), TB_OK);
	}
	memset(&d, 0, sizeof(d));
	assert_int_equal(tb_journal_outbound_due(j, 110, 0, collect_due, &d), TB_OK);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.id[0], t[3].id);

	/* A handed back: due at 105 without a failed attempt counted */
	assert_int_equal(tb_journal_outbound_reschedule(j, t[0].id, 105), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, t[0].id, &st, NULL), TB_OK);
	assert_int_equal(st.attempts, 0);
	assert_int_equal(st.next_attempt, 105);
	assert_string_equal(st.last_error, "");
	/* B failed once (backoff to 200); C delivered from memory: one attempt */
	assert_int_equal(tb_journal_outbound_retry(j, t[1].id, 200, "timeout"), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, t[2].id, NULL, 0, 111, NULL), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, t[2].id, &st, NULL), TB_OK);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(tb_journal_outbound_reschedule(j, t[2].id, 1), TB_E_JOURNAL_STATE);
	char none[33];
	memset(none, 'f', 32);
	none[32] = '\0';
	assert_int_equal(tb_journal_outbound_reschedule(j, none, 1), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_reschedule(j, "nothex", 1), TB_E_ARG);

	/* a restart at 112: only a never-tried message due later is released
	 * (none left: A is due at 105, B has failed once) */
	assert_int_equal(tb_journal_outbound_release_held(j, 112, &n), TB_OK);
	assert_int_equal(n, 0);
	/* E held until 150, then a restart at 120 releases it, and only it */
	mkmsg(&t[3], 310, 9000);
	assert_int_equal(tb_journal_outbound_put(j, &t[3].m, 150), TB_OK);
	assert_int_equal(tb_journal_outbound_release_held(j, 120, &n), TB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tb_journal_outbound_status(j, t[3].id, &st, NULL), TB_OK);
	assert_int_equal(st.next_attempt, 120);
	assert_int_equal(tb_journal_outbound_status(j, t[1].id, &st, NULL), TB_OK);
	assert_int_equal(st.next_attempt, 200);
	assert_int_equal(tb_journal_outbound_next_due(j, &when), TB_OK);
	assert_int_equal(when, 100);
	assert_int_equal(tb_journal_outbound_release_held(j, 120, NULL), TB_OK);
	tb_journal_close(j);
}

/* ---- prune ---- */

static void
test_prune(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg m1, m2, m3, o1, o2, o3;
	struct tb_journal_status st;
	struct tb_buf r;
	size_t removed = 99;
	int64_t n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&m1, 1, 100);  /* acked, expires 100 */
	mkmsg(&m2, 2, 100);  /* never acked */
	mkmsg(&m3, 3, 1000); /* acked, expires later */
	mkmsg(&o1, 11, 100); /* delivered */
	mkmsg(&o2, 12, 100); /* still queued */
	mkmsg(&o3, 13, 100); /* failed */
	assert_int_equal(tb_journal_inbound_put(j, &m1.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &m2.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &m3.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, m1.id), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, m3.id), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o1.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o2.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o3.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, o1.id, (const uint8_t *)"{}", 2, 50, NULL),
	                 TB_OK);
	assert_int_equal(tb_journal_outbound_failed(j, o3.id, "x", 50), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'i', m1.id, m1.digest, "p", 1, "received"),
	                 TB_OK);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_env"), 3);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_receipt"), 1);

	/* bound 150 - 60 = 90: nothing has expired before it yet */
	assert_int_equal(tb_journal_prune(j, 150, 60, &removed), TB_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(tb_journal_prune(j, 150, -1, &removed), TB_E_ARG);
	/* no wrap-around on absurd inputs */
	assert_int_equal(tb_journal_prune(j, INT64_MIN, INT64_MAX, &removed), TB_OK);
	assert_int_equal(removed, 0);

	/* bound 200 - 60 = 140: m1, o1, o3 go */
	assert_int_equal(tb_journal_prune(j, 200, 60, &removed), TB_OK);
	assert_int_equal(removed, 3);
	assert_int_equal(tb_journal_inbound_receipt(j, m1.id, &r), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbound_receipt(j, m2.id, &r), TB_OK); /* unacked: kept */
	assert_int_equal(tb_journal_inbound_receipt(j, m3.id, &r), TB_OK); /* unexpired: kept */
	assert_int_equal(tb_journal_outbound_status(j, o1.id, &st, NULL), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_status(j, o2.id, &st, NULL), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, o3.id, &st, NULL), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 1);
	/* the id of m1 is forgotten: from here only the expiry check refuses
	 * a replay of it, which is why the bound trails the expiry */
	assert_int_equal(tb_journal_inbound_put(j, &m1.m, NULL), TB_OK);
	/* the pruned messages' envelopes and receipts went with them */
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_env"), 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_receipt"), 0);
	/* the audit chain is never pruned */
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 1);
	tb_buf_free(&r);
}

/* ---- retention ---- */

/* An archive that records what it is handed (ids and states, in order)
 * and can be told to fail put() or sync(). */
struct tarch {
	char log[4096];
	int puts, syncs;
	int fail_put_at; /* 1-based put that fails; 0: none */
	bool fail_sync;
};

static int
tarch_put(void *ctx, const struct tb_journal_retired *r)
{
	struct tarch *a = ctx;
	size_t l = strlen(a->log);

	if (++a->puts == a->fail_put_at)
		return TB_E_IO;
	snprintf(a->log + l, sizeof(a->log) - l, "%c%.4s:%s:%s:%zu:%zu;", r->dir, r->id + 28,
	         r->state, r->peer, r->envelope_len, r->receipt_len);
	return TB_OK;
}

static int
tarch_sync(void *ctx)
{
	struct tarch *a = ctx;

	a->syncs++;
	return a->fail_sync ? TB_E_IO : TB_OK;
}

/* Finished messages are pruned once retention has passed since they
 * finished and they expired before the replay bound; archived first, and
 * kept whole when the archive fails. */
static void
test_retire(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg i1, i2, i3, o1, o2, o3;
	struct tarch ar;
	struct tb_journal_archiver a = {tarch_put, tarch_sync, &ar};
	struct tb_journal_status st;
	struct tb_buf r;
	size_t removed = 99;
	int64_t now = (int64_t)time(NULL), n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&i1, 1, now - 100);  /* acked now, expired */
	mkmsg(&i2, 2, now - 100);  /* never acked */
	mkmsg(&i3, 3, now + 1000); /* acked, not expired: the replay cache needs it */
	mkmsg(&o1, 11, now - 100); /* delivered at now - 50 */
	mkmsg(&o2, 12, now - 100); /* queued */
	mkmsg(&o3, 13, now - 100); /* failed at now - 10 */
	assert_int_equal(tb_journal_inbound_put(j, &i1.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &i2.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &i3.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, i1.id), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, i3.id), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o1.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o2.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o3.m, 0), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, o1.id, (const uint8_t *)"{\"r\":1}", 7,
	                                               now - 50, NULL),
	                 TB_OK);
	assert_int_equal(tb_journal_outbound_failed(j, o3.id, "x", now - 10), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'o', o1.id, o1.digest, "p", now, "delivered"),
	                 TB_OK);

	/* bad arguments */
	assert_int_equal(tb_journal_retire(j, now, -1, 0, 10, NULL, &removed), TB_E_ARG);
	assert_int_equal(tb_journal_retire(j, now, 0, -1, 10, NULL, &removed), TB_E_ARG);
	assert_int_equal(tb_journal_retire(j, now, 0, 0, 0, NULL, &removed), TB_E_ARG);
	assert_int_equal(tb_journal_retire(j, INT64_MIN, INT64_MAX, 0, 10, NULL, &removed), TB_OK);
	assert_int_equal(removed, 0);

	/* retention 30 s: only o1 finished that long ago */
	memset(&ar, 0, sizeof(ar));
	assert_int_equal(tb_journal_retire(j, now, 30, 0, 10, &a, &removed), TB_OK);
	assert_int_equal(removed, 1);
	assert_string_equal(ar.log, "o000b:delivered:city-0101:48:7;");
	assert_int_equal(ar.syncs, 1);
	assert_int_equal(tb_journal_outbound_status(j, o1.id, &st, NULL), TB_E_NOTFOUND);

	/* the archive fails: nothing is deleted, whichever step failed */
	memset(&ar, 0, sizeof(ar));
	ar.fail_put_at = 2;
	assert_int_equal(tb_journal_retire(j, now + 5, 0, 0, 10, &a, &removed), TB_E_IO);
	assert_int_equal(removed, 0);
	assert_int_equal(ar.syncs, 0);
	memset(&ar, 0, sizeof(ar));
	ar.fail_sync = true;
	assert_int_equal(tb_journal_retire(j, now + 5, 0, 0, 10, &a, &removed), TB_E_IO);
	assert_int_equal(removed, 0);
	assert_int_equal(tb_journal_inbound_receipt(j, i1.id, &r), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, o3.id, &st, NULL), TB_OK);

	/* retention 0: i1 (acked, expired) and o3 (failed) go; i2 is not
	 * acknowledged, i3 not expired, o2 queued; limit 1 of each */
	memset(&ar, 0, sizeof(ar));
	assert_int_equal(tb_journal_retire(j, now + 5, 0, 0, 1, &a, &removed), TB_OK);
	assert_int_equal(removed, 2);
	assert_string_equal(ar.log, "i0001:acked:peer-1:48:24;o000d:failed:city-0101:48:0;");
	assert_int_equal(tb_journal_retire(j, now + 5, 0, 0, 1, &a, &removed), TB_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(tb_journal_inbound_receipt(j, i1.id, &r), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbound_receipt(j, i2.id, &r), TB_OK);
	assert_int_equal(tb_journal_inbound_receipt(j, i3.id, &r), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, o2.id, &st, NULL), TB_OK);
	/* the replay bound: i3 stays until it expired keep seconds ago */
	assert_int_equal(tb_journal_retire(j, now + 1000, 0, 5, 10, NULL, &removed), TB_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(tb_journal_retire(j, now + 1006, 0, 5, 10, NULL, &removed), TB_OK);
	assert_int_equal(removed, 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_env"), 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM outbound_receipt"), 0);
	tb_journal_close(j);
	/* the audit chain is not pruned and still verifies */
	assert_int_equal(tb_journal_audit_verify(pg_uri != NULL ? pg_uri : path, NULL, &n, NULL),
	                 TB_OK);
	assert_int_equal(n, 1);
	tb_buf_free(&r);
}

/* A new journal gives pruned pages back to the file system. */
static void
test_vacuum(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t;
	uint8_t big[4000];
	size_t removed;
	int64_t freed = 0, now = (int64_t)time(NULL), before, after;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(raw_int(path, "PRAGMA auto_vacuum"), 2);
	memset(big, 'x', sizeof(big));
	assert_int_equal(tb_journal_begin(j), TB_OK);
	for (unsigned i = 1; i <= 500; i++) {
		mkmsg(&t, i, now - 10);
		t.m.envelope = big;
		t.m.envelope_len = sizeof(big);
		assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
		assert_int_equal(tb_journal_inbox_ack(j, t.id), TB_OK);
	}
	assert_int_equal(tb_journal_commit(j), TB_OK);
	before = raw_int(path, "PRAGMA page_count");
	/* the time after the acks: on a loaded machine the loop may cross a
	 * second, and a message acked after now is not retired at now */
	assert_int_equal(tb_journal_retire(j, (int64_t)time(NULL), 0, 0, 1000, NULL, &removed),
	                 TB_OK);
	assert_int_equal(removed, 500);
	assert_int_equal(tb_journal_vacuum(j, &freed), TB_OK);
	assert_true(freed > 0);
	after = raw_int(path, "PRAGMA page_count");
	assert_true(after * 4 < before);
	/* a second call finds little to free */
	assert_int_equal(tb_journal_vacuum(j, &freed), TB_OK);
	assert_int_equal(freed, 0);
	tb_journal_close(j);
}

/* The journal and its -wal and -shm files are the node user's only,
 * also when an older build left them readable by others. */
static void
test_file_modes(void **state)
{
	static const char *const ext[] = {"", "-wal", "-shm"};
	char path[128], p[160];
	struct tb_journal *j;
	struct stat sb;
	mode_t old = umask(022);

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		assert_int_equal(stat(p, &sb), 0);
		if ((sb.st_mode & 0777) != 0600)
			fail_msg("%s: mode %o", p, (unsigned)(sb.st_mode & 0777));
	}
	tb_journal_close(j);
	assert_int_equal(chmod(path, 0644), 0);
	j = open_ok(path);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		assert_int_equal(stat(p, &sb), 0);
		if ((sb.st_mode & 0777) != 0600)
			fail_msg("reopened %s: mode %o", p, (unsigned)(sb.st_mode & 0777));
	}
	tb_journal_close(j);
	umask(old);
}

/* A backup taken while a handle holds everything in the WAL (no
 * checkpoint yet) has every committed message, is 0600, one file, and
 * opens as a journal; an existing target is refused. */
static void
test_backup(void **state)
{
	char path[128], out[160], p[200];
	struct tb_journal *j, *c;
	struct tb_journal_stats st;
	struct tb_diag d;
	struct tmsg t;
	struct stat sb;
	int64_t n;

	(void)state;
	newpath(path, sizeof(path));
	snprintf(out, sizeof(out), "%s.bak", path);
	j = open_ok(path);
	for (unsigned i = 1; i <= 20; i++) {
		mkmsg(&t, i, 5000);
		assert_int_equal(tb_journal_outbound_put_audit(j, &t.m, 0, 1, "queued"), TB_OK);
	}
	/* the data is in the WAL: a copy of the main file alone has none */
	assert_int_equal(stat(path, &sb), 0);
	snprintf(p, sizeof(p), "%s-wal", path);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(sb.st_size > 0);
	/* an uncommitted batch is not in the copy */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	mkmsg(&t, 99, 5000);
	assert_int_equal(tb_journal_outbound_put(j, &t.m, 0), TB_OK);
	assert_int_equal(tb_journal_backup(path, out, &d), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(stat(out, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s-wal", out);
	assert_int_equal(stat(p, &sb), -1);
	assert_int_equal(tb_journal_stats(out, &st, &d), TB_OK);
	assert_int_equal(st.queued, 20);
	assert_int_equal(st.audit, 20);
	assert_true(st.bytes > 0);
	assert_int_equal(tb_journal_audit_verify(out, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 20);
	c = open_ok(out);
	assert_int_equal(tb_journal_outbound_pending(c, &n), TB_OK);
	assert_int_equal(n, 20);
	tb_journal_close(c);
	/* refused: an existing target (left as it was), a missing source,
	 * something that is not a journal */
	assert_int_equal(tb_journal_backup(path, out, &d), TB_E_IO);
	assert_non_null(strstr(d.detail, "exists"));
	assert_int_equal(tb_journal_stats(out, &st, &d), TB_OK);
	snprintf(p, sizeof(p), "%s/none.db", tmpdir);
	snprintf(out, sizeof(out), "%s/b2.db", tmpdir);
	assert_int_equal(tb_journal_backup(p, out, &d), TB_E_IO);
	assert_int_equal(stat(out, &sb), -1);
	snprintf(p, sizeof(p), "%s/other.db", tmpdir);
	raw_exec(p, "CREATE TABLE t (x)");
	assert_int_equal(tb_journal_backup(p, out, &d), TB_E_JOURNAL_CORRUPT);
	assert_int_equal(stat(out, &sb), -1);
	snprintf(out, sizeof(out), "%s/nodir/b.db", tmpdir);
	assert_int_equal(tb_journal_backup(path, out, &d), TB_E_IO);
	tb_journal_close(j);
}

/* Schema 2 -> 3: messages acknowledged before the upgrade count their
 * retention from it. */
static void
test_migrate_v3(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t;
	size_t removed;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&t, 1, now - 100);
	assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, t.id), TB_OK);
	tb_journal_close(j);
	/* back to schema 2, as an older build wrote it */
	raw_exec(path, "ALTER TABLE inbound DROP COLUMN acked_at; PRAGMA user_version = 2;");
	j = open_ok(path);
	assert_int_equal(raw_int(path, "PRAGMA user_version"), TB_JOURNAL_SCHEMA);
	assert_true(raw_int(path, "SELECT acked_at FROM inbound") >= now);
	assert_int_equal(tb_journal_retire(j, now + 100, 3600, 0, 10, NULL, &removed), TB_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(tb_journal_retire(j, now + 3700, 3600, 0, 10, NULL, &removed), TB_OK);
	assert_int_equal(removed, 1);
	tb_journal_close(j);
}

/* ---- audit ---- */

/* The documented serialization, rebuilt byte by byte as an oracle. */
static void
oracle_hash(int64_t seq, const uint8_t prev[32], char dir, const char *msgid, const char *dg,
            const char *peer, int64_t at, const char *event, uint8_t out[32])
{
	uint8_t b[1024];
	size_t o = 0;
	const char *strs[3] = {msgid, dg, peer};

	memcpy(b, "tongban-audit-v1", 16);
	o = 16;
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)((uint64_t)seq >> (8 * i));
	memcpy(b + o, prev, 32);
	o += 32;
	b[o++] = (uint8_t)dir;
	for (int k = 0; k < 3; k++) {
		uint32_t n = (uint32_t)strlen(strs[k]);
		b[o++] = (uint8_t)(n >> 24);
		b[o++] = (uint8_t)(n >> 16);
		b[o++] = (uint8_t)(n >> 8);
		b[o++] = (uint8_t)n;
		memcpy(b + o, strs[k], n);
		o += n;
	}
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)((uint64_t)at >> (8 * i));
	uint32_t n = (uint32_t)strlen(event);
	b[o++] = (uint8_t)(n >> 24);
	b[o++] = (uint8_t)(n >> 16);
	b[o++] = (uint8_t)(n >> 8);
	b[o++] = (uint8_t)n;
	memcpy(b + o, event, n);
	o += n;
	tb_sha256(b, o, out);
}

static const char *const events[5] = {"received", "queued", "delivered", "failed", "received"};

/* A journal with a 5-entry chain; returns the head hash in head. */
static void
make_chain(char *path, size_t n, char head[65])
{
	struct tb_journal *j;
	struct tmsg t;
	int64_t seq;

	newpath(path, n);
	j = open_ok(path);
	for (unsigned i = 0; i < 5; i++) {
		mkmsg(&t, 500 + i, 9000);
		assert_int_equal(tb_journal_audit_append(j, i % 2 ? 'o' : 'i', t.id, t.digest,
		                                         t.from, 1000 + i, events[i]),
		                 TB_OK);
	}
	assert_int_equal(tb_journal_audit_head(j, &seq, head), TB_OK);
	assert_int_equal(seq, 5);
	tb_journal_close(j);
}

static void
test_audit_chain(void **state)
{
	char path[128], head[65], hex[65];
	uint8_t prev[32] = {0}, h[32], h2[32];
	struct tb_journal *j;
	struct tb_diag d;
	struct tmsg t;
	int64_t bad = -1, n = -1, seq;

	(void)state;
	/* empty chain */
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_audit_head(j, &seq, head), TB_OK);
	assert_int_equal(seq, 0);
	assert_string_equal(head,
	                    "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(tb_journal_audit_append(j, 'x', "00", "00", "p", 0, "e"), TB_E_ARG);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 0);

	make_chain(path, sizeof(path), head);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 5);
	/* the head equals the chain recomputed with the independent oracle */
	for (unsigned i = 0; i < 5; i++) {
		mkmsg(&t, 500 + i, 9000);
		oracle_hash(i + 1, prev, i % 2 ? 'o' : 'i', t.id, t.digest, t.from, 1000 + i,
		            events[i], h);
		assert_int_equal(tb_journal_audit_hash(i + 1, prev, i % 2 ? 'o' : 'i', t.id,
		                                       t.digest, t.from, 1000 + i, events[i], h2),
		                 TB_OK);
		assert_memory_equal(h, h2, 32);
		memcpy(prev, h, 32);
	}
	tb_hex_encode(prev, 32, hex);
	assert_string_equal(hex, head);
	/* field boundaries matter: moving a byte between fields changes it */
	assert_int_equal(tb_journal_audit_hash(1, prev, 'i', "ab", "c", "p", 0, "e", h), TB_OK);
	assert_int_equal(tb_journal_audit_hash(1, prev, 'i', "a", "bc", "p", 0, "e", h2), TB_OK);
	assert_memory_not_equal(h, h2, 32);

	/* an altered field */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "UPDATE audit SET peer = 'mallory' WHERE seq = 3");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 3);
	assert_int_equal(n, 2);
	assert_string_equal(tb_err_reason(d.code), "audit.broken");

	/* an altered timestamp */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "UPDATE audit SET at = at + 1 WHERE seq = 5");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 5);

	/* an entry rewritten with a matching hash: its successor's link breaks */
	make_chain(path, sizeof(path), head);
	{
		char sql[512], prevhex[65], hashhex[65];
		sqlite3 *db;
		sqlite3_stmt *s;
		uint8_t p2[32];

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
		                                    "SELECT prev, msgid, digest, at FROM audit "
		                                    "WHERE seq = 2",
		                                    -1, &s, NULL),
		                 SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		snprintf(prevhex, sizeof(prevhex), "%s", sqlite3_column_text(s, 0));
		assert_true(tb_hex_decode(prevhex, 64, p2, 32));
		assert_int_equal(
		    tb_journal_audit_hash(2, p2, 'o', (const char *)sqlite3_column_text(s, 1),
		                          (const char *)sqlite3_column_text(s, 2), "mallory",
		                          sqlite3_column_int64(s, 3), "queued", h),
		    TB_OK);
		sqlite3_finalize(s);
		tb_hex_encode(h, 32, hashhex);
		snprintf(sql, sizeof(sql),
		         "UPDATE audit SET peer = 'mallory', hash = '%s' WHERE seq = 2", hashhex);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 3);

	/* a deleted entry is a gap */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "DELETE FROM audit WHERE seq = 2");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 2);
	assert_int_equal(n, 1);
	assert_non_null(strstr(d.detail, "missing"));
	/* ... and so is the first one */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "DELETE FROM audit WHERE seq = 1");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 1);
	/* a malformed stored hash */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "UPDATE audit SET hash = 'zz' WHERE seq = 4");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 4);
	/* the live node refuses to extend a damaged head */
	j = open_ok(path);
	mkmsg(&t, 1, 1);
	raw_exec(path, "UPDATE audit SET hash = 'zz' WHERE seq = 5");
	assert_int_equal(tb_journal_audit_append(j, 'i', t.id, t.digest, "p", 1, "received"),
	                 TB_E_AUDIT);
	tb_journal_close(j);

	/* the documented limit: a truncated tail verifies; the head kept
	 * elsewhere is what exposes it */
	make_chain(path, sizeof(path), head);
	raw_exec(path, "DELETE FROM audit WHERE seq = 5");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 4);
	j = open_ok(path);
	assert_int_equal(tb_journal_audit_head(j, &seq, hex), TB_OK);
	assert_int_equal(seq, 4);
	assert_string_not_equal(hex, head);
	tb_journal_close(j);
}

/* verify runs beside a live writer (WAL), seeing committed entries only */
static void
test_audit_verify_while_open(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t;
	int64_t n = 0;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&t, 1, 9000);
	assert_int_equal(tb_journal_audit_append(j, 'i', t.id, t.digest, "p", 1, "received"),
	                 TB_OK);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'o', t.id, t.digest, "p", 2, "queued"), TB_OK);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 2);
	tb_journal_close(j);
}

/* ---- persistence, batches, transactions ---- */

static void
test_reopen_persistence(void **state)
{
	char path[128], head[65], head2[65];
	struct tb_journal *j;
	struct tb_journal_status st;
	struct tmsg a, o;
	struct tb_buf r;
	int64_t n, seq;

	(void)state;
	newpath(path, sizeof(path));
	tb_buf_init(&r);
	j = open_ok(path);
	mkmsg(&a, 1, 9000);
	mkmsg(&o, 2, 9000);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &a.m, NULL), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'i', a.id, a.digest, a.from, 5, "received"),
	                 TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o.m, 77), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'o', o.id, o.digest, "city-2", 5, "queued"),
	                 TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_outbound_retry(j, o.id, 88, "later"), TB_OK);
	assert_int_equal(tb_journal_audit_head(j, &seq, head), TB_OK);
	tb_journal_close(j);

	j = open_ok(path);
	assert_int_equal(tb_journal_inbound_put(j, &a.m, &r), TB_E_REPLAY);
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tb_journal_outbound_status(j, o.id, &st, NULL), TB_OK);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(st.next_attempt, 88);
	assert_string_equal(st.last_error, "later");
	assert_int_equal(tb_journal_outbound_next_due(j, &n), TB_OK);
	assert_int_equal(n, 88);
	assert_int_equal(tb_journal_audit_head(j, &seq, head2), TB_OK);
	assert_int_equal(seq, 2);
	assert_string_equal(head, head2);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 2);
	tb_buf_free(&r);
}

/* Appends in a transaction build on each other; a rolled-back
 * transaction's appends leave no trace on the next one's links. */
static void
test_audit_in_transactions(void **state)
{
	char path[128], id[33];
	struct tb_journal *j;
	struct tb_diag d;
	int64_t bad = -1, n = 0;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	for (int round = 0; round < 4; round++) {
		assert_int_equal(round % 2 ? tb_journal_begin_nosync(j) : tb_journal_begin(j),
		                 TB_OK);
		for (int i = 0; i < 3; i++) {
			snprintf(id, sizeof(id), "%032x", 0x30000 + round * 3 + i);
			assert_int_equal(
			    tb_journal_audit_append(j, 'o', id, D64, "371300", 100, "queued"),
			    TB_OK);
		}
		if (round == 1) {
			assert_int_equal(tb_journal_rollback(j), TB_OK);
		} else {
			assert_int_equal(tb_journal_commit(j), TB_OK);
		}
		/* and one outside any transaction */
		snprintf(id, sizeof(id), "%032x", 0x40000 + round);
		assert_int_equal(tb_journal_audit_append(j, 'i', id, D64, "371300", 100, "stored"),
		                 TB_OK);
	}
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(bad, 0);
	assert_int_equal(n, 3 * 3 + 4);
}

/* Schema 3: admin entries ('a') with a detail, hashed as documented (the
 * oracle's bytes followed by lp(detail)); bad fields refused; a schema-1
 * chain keeps verifying after the migration and is extended by it. */
static void
test_audit_admin(void **state)
{
	char path[128], head[65];
	uint8_t prev[32] = {0}, h[32], want[32], b[512];
	struct tb_journal *j;
	struct tmsg t;
	int64_t n = -1, seq;
	size_t o;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_audit_admin(j, 7, "start", "version=0.1.0 serial=3"), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 8, "stop", NULL), TB_OK);
	/* free text is printable ASCII without quote or backslash */
	assert_int_equal(tb_journal_audit_admin(j, 9, "x", "a\"b"), TB_E_ARG);
	assert_int_equal(tb_journal_audit_admin(j, 9, "x", "a\\b"), TB_E_ARG);
	assert_int_equal(tb_journal_audit_admin(j, 9, "x", "a\nb"), TB_E_ARG);
	assert_int_equal(tb_journal_audit_admin(j, 9, "", "d"), TB_E_ARG);
	/* message entries still need a message and a peer */
	assert_int_equal(tb_journal_audit_append(j, 'i', "", D64, "p", 1, "received"), TB_E_ARG);
	assert_int_equal(tb_journal_audit_append(j, 'a', "", "", "", 1, "start"), TB_OK);
	assert_int_equal(tb_journal_audit_head(j, &seq, head), TB_OK);
	assert_int_equal(seq, 3);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 3);
	/* entry 1 by the documented bytes */
	memcpy(b, "tongban-audit-v1", 16);
	o = 16;
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)((uint64_t)1 >> (8 * i));
	memcpy(b + o, prev, 32);
	o += 32;
	b[o++] = 'a';
	memset(b + o, 0, 12); /* three empty strings */
	o += 12;
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)((uint64_t)7 >> (8 * i));
	memcpy(b + o, "\0\0\0\5start\0\0\0\26version=0.1.0 serial=3", 4 + 5 + 4 + 22);
	o += 4 + 5 + 4 + 22;
	tb_sha256(b, o, want);
	assert_int_equal(tb_journal_audit_hash_ex(1, prev, 'a', "", "", "", 7, "start",
	                                          "version=0.1.0 serial=3", h),
	                 TB_OK);
	assert_memory_equal(h, want, 32);
	/* an empty detail is not hashed: the schema-1/2 hash */
	oracle_hash(2, prev, 'o', "ab", "cd", "p", 1, "e", want);
	assert_int_equal(tb_journal_audit_hash_ex(2, prev, 'o', "ab", "cd", "p", 1, "e", "", h),
	                 TB_OK);
	assert_memory_equal(h, want, 32);
	/* the detail is covered */
	raw_exec(path, "UPDATE audit SET detail = 'version=0.1.0 serial=4' WHERE seq = 1");
	assert_int_equal(tb_journal_audit_verify(path, NULL, NULL, NULL), TB_E_AUDIT);

	/* schema 1 with a chain: migrated, still verifying, extended */
	newpath(path, sizeof(path));
	raw_exec(path, schema1_sql);
	{
		char sql[512], hx[65];
		mkmsg(&t, 900, 9000);
		oracle_hash(1, prev, 'i', t.id, t.digest, "371300", 5, "received", h);
		for (int i = 0; i < 32; i++)
			snprintf(hx + 2 * i, 3, "%02x", h[i]);
		snprintf(sql, sizeof(sql),
		         "INSERT INTO audit VALUES (1, '%064d', 'i', '%s', '%s', '371300', 5,"
		         " 'received', '%s')",
		         0, t.id, t.digest, hx);
		raw_exec(path, sql);
	}
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 1);
	j = open_ok(path);
	assert_int_equal(raw_int(path, "PRAGMA user_version"), TB_JOURNAL_SCHEMA);
	assert_int_equal(tb_journal_audit_admin(j, 6, "start", "serial=1"), TB_OK);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 2);
}

/* The documented bytes of an entry (PROTOCOL.md 11.2) with its detail,
 * hashed with SM3 (sm3) or SHA-256: the oracle for either chain. */
static void
oracle_hash_h(bool sm3, int64_t seq, const uint8_t prev[32], char dir, const char *msgid,
              const char *dg, const char *peer, int64_t at, const char *event, const char *detail,
              uint8_t out[32])
{
	const char *strs[5] = {msgid, dg, peer, event, detail};
	uint8_t b[1024];
	size_t o = 0;

	memcpy(b, "tongban-audit-v1", 16);
	o = 16;
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)((uint64_t)seq >> (8 * i));
	memcpy(b + o, prev, 32);
	o += 32;
	b[o++] = (uint8_t)dir;
	for (int k = 0; k < 5; k++) {
		uint32_t n = (uint32_t)strlen(strs[k]);
		if (k == 3) /* at comes before the event */
			for (int i = 7; i >= 0; i--)
				b[o++] = (uint8_t)((uint64_t)at >> (8 * i));
		if (k == 4 && n == 0)
			break; /* an empty detail is left out */
		b[o++] = (uint8_t)(n >> 24);
		b[o++] = (uint8_t)(n >> 16);
		b[o++] = (uint8_t)(n >> 8);
		b[o++] = (uint8_t)n;
		memcpy(b + o, strs[k], n);
		o += n;
	}
	if (sm3)
		tb_sm3_hash(b, o, out);
	else
		tb_sha256(b, o, out);
}

/* Issue 21: a chain started under an sm2 key is SM3 (PROTOCOL.md 11.2):
 * entry 1 is ('a', "chain", "hash=sm3"), every entry (entry 1 too) is
 * SM3 of the documented bytes, recomputed here; a handle that would start
 * SHA-256 chains extends it with SM3 all the same (a chain keeps its
 * hash); a rolled-back first append leaves no entry.  Runs on both
 * backends.  test_audit_sm3_verify (SQLite: the verifier reads files):
 * verify passes, and refuses a tampered entry, an entry 1 rewritten to
 * claim SHA-256 (the downgrade), a "chain" entry later on, an unknown
 * hash name; a SHA-256 chain stays SHA-256 under an SM3 handle. */
static void
test_audit_sm3(void **state)
{
	static const char *const ev[4] = {"chain", "start", "received", "queued"};
	static const char *const det[4] = {"hash=sm3", "version=1 serial=2", "", ""};
	static const char dirs[4] = {'a', 'a', 'i', 'o'};
	char path[128], head[65], hex[65], want_hex[65];
	uint8_t prev[32] = {0}, h[32];
	struct tb_journal *j, *k;
	enum tb_audit_hash ch;
	struct tmsg t[4];
	int64_t seq;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_journal_set_audit_hash(j, TB_AUDIT_SM3);
	assert_int_equal(tb_journal_audit_chain(j, &ch), TB_OK);
	assert_int_equal(ch, TB_AUDIT_SM3);
	/* the marker is the journal's own */
	assert_int_equal(tb_journal_audit_admin(j, 1, "chain", "hash=sm3"), TB_E_ARG);
	/* a first append rolled back leaves the chain empty */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 1, "start", NULL), TB_OK);
	assert_int_equal(tb_journal_rollback(j), TB_OK);
	assert_int_equal(tb_journal_audit_head(j, &seq, head), TB_OK);
	assert_int_equal(seq, 0);
	assert_int_equal(tb_journal_audit_admin(j, 50, "start", det[1]), TB_OK);
	mkmsg(&t[2], 700, 9000);
	mkmsg(&t[3], 701, 9000);
	assert_int_equal(tb_journal_audit_append(j, 'i', t[2].id, t[2].digest, "p", 51, ev[2]),
	                 TB_OK);
	tb_journal_close(j);
	/* a handle that would start SHA-256 chains keeps this one SM3 */
	k = open_ok(path);
	assert_int_equal(tb_journal_audit_chain(k, &ch), TB_OK);
	assert_int_equal(ch, TB_AUDIT_SM3);
	assert_int_equal(tb_journal_audit_append(k, 'o', t[3].id, t[3].digest, "p", 52, ev[3]),
	                 TB_OK);
	assert_int_equal(tb_journal_audit_head(k, &seq, head), TB_OK);
	assert_int_equal(seq, 4);
	for (int i = 0; i < 4; i++) {
		bool msg = dirs[i] != 'a';
		oracle_hash_h(true, i + 1, prev, dirs[i], msg ? t[i].id : "",
		              msg ? t[i].digest : "", msg ? "p" : "", i == 0 ? 50 : 49 + i, ev[i],
		              det[i], h);
		tb_hex_encode(h, 32, want_hex);
		assert_int_equal(tb_journal_audit_hash_at(k, i + 1, hex), TB_OK);
		assert_string_equal(hex, want_hex);
		/* and not the SHA-256 of the same bytes */
		oracle_hash_h(false, i + 1, prev, dirs[i], msg ? t[i].id : "",
		              msg ? t[i].digest : "", msg ? "p" : "", i == 0 ? 50 : 49 + i, ev[i],
		              det[i], h);
		tb_hex_encode(h, 32, want_hex);
		assert_string_not_equal(hex, want_hex);
		assert_true(tb_hex_decode(hex, 64, prev, 32));
	}
	assert_string_equal(hex, head);
	tb_journal_close(k);
}

/* test_audit_sm3's refusals, by the verifier (which reads SQLite files). */
static void
test_audit_sm3_verify(void **state)
{
	char path[128], head[65], hex[65];
	uint8_t prev[32] = {0}, h[32];
	struct tb_journal *j;
	enum tb_audit_hash ch;
	struct tmsg t;
	struct tb_diag d;
	int64_t bad, n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_journal_set_audit_hash(j, TB_AUDIT_SM3);
	mkmsg(&t, 702, 9000);
	assert_int_equal(tb_journal_audit_admin(j, 50, "start", "version=1 serial=2"), TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'i', t.id, t.digest, "p", 51, "received"),
	                 TB_OK);
	assert_int_equal(tb_journal_audit_append(j, 'o', t.id, t.digest, "p", 52, "queued"), TB_OK);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 4);
	/* a tampered entry */
	raw_exec(path, "UPDATE audit SET peer = 'mallory' WHERE seq = 3");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 3);
	assert_non_null(strstr(d.detail, "sm3"));
	raw_exec(path, "UPDATE audit SET peer = 'p' WHERE seq = 3");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	/* entry 1 rewritten to say SHA-256, with its SHA-256 hash: entry 2's
	 * link still holds, but entry 2 no longer recomputes */
	{
		char sql[256];
		memset(prev, 0, 32);
		oracle_hash_h(false, 1, prev, 'a', "", "", "", 50, "chain", "hash=sha256", h);
		tb_hex_encode(h, 32, hex);
		snprintf(sql, sizeof(sql),
		         "UPDATE audit SET detail = 'hash=sha256', hash = '%s' WHERE seq = 1;"
		         "UPDATE audit SET prev = '%s' WHERE seq = 2",
		         hex, hex);
		raw_exec(path, sql);
	}
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 2);
	/* an unknown hash name: refused by verify and by the writer */
	raw_exec(path, "UPDATE audit SET detail = 'hash=md5' WHERE seq = 1");
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(d.detail, "unknown chain hash"));
	j = open_ok(path);
	assert_int_equal(tb_journal_audit_admin(j, 60, "stop", NULL), TB_E_AUDIT);
	tb_journal_close(j);

	/* a SHA-256 chain stays SHA-256 under a handle that starts SM3 ones,
	 * and a "chain" entry after entry 1 is refused by verify */
	make_chain(path, sizeof(path), head);
	j = open_ok(path);
	tb_journal_set_audit_hash(j, TB_AUDIT_SM3);
	assert_int_equal(tb_journal_audit_chain(j, &ch), TB_OK);
	assert_int_equal(ch, TB_AUDIT_SHA256);
	assert_int_equal(tb_journal_audit_admin(j, 60, "key-rotated", "alg=sm2"), TB_OK);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 6);
	{
		char sql[512];
		assert_true(tb_hex_decode(head, 64, prev, 32));
		/* head is entry 5's hash: a forged entry 6 "chain hash=sm3" */
		oracle_hash_h(true, 6, prev, 'a', "", "", "", 60, "chain", "hash=sm3", h);
		tb_hex_encode(h, 32, hex);
		snprintf(sql, sizeof(sql),
		         "UPDATE audit SET event = 'chain', detail = 'hash=sm3', hash = '%s'"
		         " WHERE seq = 6",
		         hex);
		raw_exec(path, sql);
	}
	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_E_AUDIT);
	assert_int_equal(bad, 6);
	assert_non_null(strstr(d.detail, "entry 1 only"));
}

struct heads {
	int calls;
	int64_t seq;
	uint8_t hash[32];
};

static void
record_head(void *ctx, int64_t seq, const uint8_t hash[32])
{
	struct heads *h = ctx;

	h->calls++;
	h->seq = seq;
	memcpy(h->hash, hash, 32);
}

/* The head hook hears of every durable commit that added entries, with
 * the committed head; not of rollbacks, nor of lazy commits until the
 * next durable one; and a secondary handle inherits it. */
static void
test_audit_head_hook(void **state)
{
	char path[128], hex[65], got[65];
	struct heads h = {0};
	struct tb_journal *j, *j2;
	int64_t seq;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_journal_set_head_hook(j, record_head, &h);
	assert_int_equal(tb_journal_audit_admin(j, 1, "start", NULL), TB_OK);
	assert_int_equal(h.calls, 1);
	assert_int_equal(h.seq, 1);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 2, "a", NULL), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 2, "b", NULL), TB_OK);
	assert_int_equal(h.calls, 1); /* not before the commit */
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(h.calls, 2);
	assert_int_equal(h.seq, 3);
	assert_int_equal(tb_journal_audit_head(j, &seq, hex), TB_OK);
	tb_hex_encode(h.hash, 32, got);
	assert_string_equal(got, hex);
	/* rolled back: nothing to tell */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 3, "c", NULL), TB_OK);
	assert_int_equal(tb_journal_rollback(j), TB_OK);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(h.calls, 2);
	/* lazy: told at the next durable commit */
	assert_int_equal(tb_journal_begin_nosync(j), TB_OK);
	assert_int_equal(tb_journal_audit_admin(j, 4, "d", NULL), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(h.calls, 2);
	assert_int_equal(tb_journal_audit_admin(j, 5, "e", NULL), TB_OK);
	assert_int_equal(h.calls, 3);
	assert_int_equal(h.seq, 5);
	/* a secondary handle extends the same chain and reports too */
	j2 = tb_journal_open_secondary(j, NULL);
	assert_non_null(j2);
	assert_int_equal(tb_journal_audit_admin(j2, 6, "f", NULL), TB_OK);
	assert_int_equal(h.calls, 4);
	assert_int_equal(h.seq, 6);
	tb_journal_close(j2);
	/* a unit undone inside the transaction: the head is read back */
	{
		struct tmsg t;
		mkmsg(&t, 77, 9000);
		assert_int_equal(tb_journal_outbound_put(j, &t.m, 1), TB_OK);
		assert_int_equal(tb_journal_begin(j), TB_OK);
		assert_int_equal(tb_journal_audit_admin(j, 7, "g", NULL), TB_OK);
		assert_int_equal(tb_journal_outbound_put_audit(j, &t.m, 1, 7, "queued"),
		                 TB_E_REPLAY);
		assert_int_equal(tb_journal_commit(j), TB_OK);
	}
	assert_int_equal(h.calls, 5);
	assert_int_equal(h.seq, 7);
	assert_int_equal(tb_journal_audit_head(j, &seq, hex), TB_OK);
	tb_hex_encode(h.hash, 32, got);
	assert_string_equal(got, hex);
	tb_journal_close(j);
}

struct listed {
	int n;
	int64_t first, last;
	char detail[64];
};

static int
list_one(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct listed *l = ctx;

	if (l->n++ == 0) {
		l->first = e->seq;
		snprintf(l->detail, sizeof(l->detail), "%c %s %s", e->dir, e->event, e->detail);
	}
	l->last = e->seq;
	return 0;
}

/* Listing from a seq on, in order, read-only. */
static void
test_audit_list(void **state)
{
	char path[128], head[65];
	struct listed l = {0};

	(void)state;
	make_chain(path, sizeof(path), head);
	{
		struct tb_journal *j = open_ok(path);
		assert_int_equal(tb_journal_audit_admin(j, 9, "stop", "why=test"), TB_OK);
		tb_journal_close(j);
	}
	assert_int_equal(tb_journal_audit_list(path, 4, list_one, &l, NULL), TB_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.first, 4);
	assert_int_equal(l.last, 6);
	memset(&l, 0, sizeof(l));
	assert_int_equal(tb_journal_audit_list(path, 6, list_one, &l, NULL), TB_OK);
	assert_string_equal(l.detail, "a stop why=test");
	memset(&l, 0, sizeof(l));
	assert_int_equal(tb_journal_audit_list(path, 7, list_one, &l, NULL), TB_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(tb_journal_audit_list("/nonexistent/x.db", 1, list_one, &l, NULL),
	                 TB_E_IO);
	/* one entry's hash, by number */
	{
		struct tb_journal *j = open_ok(path);
		char hex[65], headhex[65];
		int64_t seq;
		assert_int_equal(tb_journal_audit_head(j, &seq, headhex), TB_OK);
		assert_int_equal(tb_journal_audit_hash_at(j, 6, hex), TB_OK);
		assert_string_equal(hex, headhex);
		assert_int_equal(tb_journal_audit_hash_at(j, 5, hex), TB_OK);
		assert_string_equal(hex, head);
		assert_int_equal(tb_journal_audit_hash_at(j, 7, hex), TB_E_NOTFOUND);
		tb_journal_close(j);
	}
}

/* The audit head's seq (how many entries the chain holds). */
static int64_t
head_seq(struct tb_journal *j)
{
	int64_t seq = -1;
	char hash[65];

	assert_int_equal(tb_journal_audit_head(j, &seq, hash), TB_OK);
	return seq;
}

static enum tb_journal_state
state_of(struct tb_journal *j, const char *id)
{
	struct tb_journal_status st;

	assert_int_equal(tb_journal_outbound_status(j, id, &st, NULL), TB_OK);
	return st.state;
}

/*
 * A state change and its audit entry are kept both or neither: a change
 * that fails writes no entry (a failed message is never logged as
 * delivered), and an entry that cannot be written undoes the change, in
 * a transaction of their own or inside the caller's.  The audit step is
 * made to fail for real by a peer the chain refuses (empty).
 */
static void
test_audited_state_changes(void **state)
{
	char path[128];
	struct tb_journal *j;
	bool fresh;
	struct tmsg a, b, c;
	struct tb_journal_status st;
	struct tb_diag d;
	int64_t bad = -1, n = 0;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&a, 0x51, 5000);
	mkmsg(&b, 0x52, 5000);
	mkmsg(&c, 0x53, 5000);

	/* queued with its entry */
	assert_int_equal(tb_journal_outbound_put_audit(j, &a.m, 100, 100, "queued"), TB_OK);
	assert_int_equal(head_seq(j), 1);
	/* an entry refused: the message is not queued either */
	assert_int_equal(tb_journal_outbound_put_audit(j, &b.m, 100, 100, ""), TB_E_ARG);
	assert_int_equal(tb_journal_diag(j)->code, TB_E_ARG);
	assert_int_equal(tb_journal_outbound_status(j, b.id, &st, NULL), TB_E_NOTFOUND);
	assert_int_equal(head_seq(j), 1);

	/* a failed message: "delivered" is refused and not logged */
	assert_int_equal(
	    tb_journal_outbound_failed_audit(j, a.id, "expired", 110, a.digest, "371300"), TB_OK);
	assert_int_equal(head_seq(j), 2);
	assert_int_equal(tb_journal_outbound_delivered_audit(j, a.id, a.rcpt, sizeof(a.rcpt), 120,
	                                                     a.digest, "371300", NULL),
	                 TB_E_JOURNAL_STATE);
	assert_int_equal(state_of(j, a.id), TB_JOURNAL_FAILED);
	assert_int_equal(head_seq(j), 2);
	/* nor failed twice */
	assert_int_equal(
	    tb_journal_outbound_failed_audit(j, a.id, "again", 121, a.digest, "371300"),
	    TB_E_JOURNAL_STATE);
	assert_int_equal(head_seq(j), 2);

	/* the entry of a delivery refused: the delivery is undone */
	assert_int_equal(tb_journal_outbound_put_audit(j, &c.m, 100, 100, "queued"), TB_OK);
	assert_int_equal(head_seq(j), 3);
	assert_int_equal(
	    tb_journal_outbound_delivered_audit(j, c.id, c.rcpt, sizeof(c.rcpt), 130, c.digest, "", NULL),
	    TB_E_ARG);
	assert_int_equal(state_of(j, c.id), TB_JOURNAL_QUEUED);
	assert_int_equal(head_seq(j), 3);

	/* the same inside the caller's transaction, which carries on */
	assert_int_equal(tb_journal_begin_nosync(j), TB_OK);
	assert_int_equal(
	    tb_journal_outbound_delivered_audit(j, c.id, c.rcpt, sizeof(c.rcpt), 140, c.digest, "", NULL),
	    TB_E_ARG);
	assert_int_equal(state_of(j, c.id), TB_JOURNAL_QUEUED);
	assert_int_equal(tb_journal_outbound_failed_audit(j, c.id, "x", 141, c.digest, ""),
	                 TB_E_ARG);
	assert_int_equal(state_of(j, c.id), TB_JOURNAL_QUEUED);
	assert_int_equal(tb_journal_outbound_delivered_audit(j, c.id, c.rcpt, sizeof(c.rcpt), 142,
	                                                     c.digest, "371300", &fresh),
	                 TB_OK);
	assert_true(fresh);
	/* a second answer for it (the message went out again meanwhile): TB_OK,
	 * not fresh, and no second "delivered" entry */
	assert_int_equal(tb_journal_outbound_delivered_audit(j, c.id, c.rcpt, sizeof(c.rcpt), 143,
	                                                     c.digest, "371300", &fresh),
	                 TB_OK);
	assert_false(fresh);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, c.id, &st, NULL), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_DELIVERED);
	assert_int_equal(st.delivered_at, 142);
	assert_int_equal(head_seq(j), 4);
	tb_journal_close(j);

	assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
	assert_int_equal(n, 4);
	/* the entries are the events that happened, in order */
	assert_int_equal(raw_int(path, "SELECT count(*) FROM audit WHERE event = 'delivered'"), 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM audit WHERE event = 'failed'"), 1);
	assert_int_equal(raw_int(path, "SELECT count(*) FROM audit WHERE event = 'queued'"), 2);
}

/* ---- a VFS that counts fsyncs of write-ahead logs ---- */

/* The default VFS with a byte after each file: whether it is a WAL.  A
 * file keeps the default VFS's methods (which differ by kind of file),
 * copied with xSync counted. */
#define COUNT_KINDS 4
static sqlite3_vfs count_vfs, *real_vfs;
static sqlite3_io_methods count_methods[COUNT_KINDS];
static const sqlite3_io_methods *real_methods[COUNT_KINDS];
static int wal_syncs;

static int
count_sync(sqlite3_file *f, int flags)
{
	for (int i = 0; i < COUNT_KINDS; i++) {
		if (f->pMethods != &count_methods[i])
			continue;
		if (*((char *)f + real_vfs->szOsFile))
			wal_syncs++;
		return real_methods[i]->xSync(f, flags);
	}
	return SQLITE_IOERR_FSYNC;
}

static int
count_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	int rc = real_vfs->xOpen(real_vfs, name, f, flags, out);

	(void)v;
	*((char *)f + real_vfs->szOsFile) = (flags & SQLITE_OPEN_WAL) != 0;
	if (rc != SQLITE_OK || f->pMethods == NULL)
		return rc;
	for (int i = 0; i < COUNT_KINDS; i++) {
		if (real_methods[i] == NULL) {
			real_methods[i] = f->pMethods;
			count_methods[i] = *f->pMethods;
			count_methods[i].xSync = count_sync;
		}
		if (real_methods[i] == f->pMethods) {
			f->pMethods = &count_methods[i];
			return rc;
		}
	}
	return rc; /* a fifth kind: not counted */
}

/* A lazy transaction commits without syncing the WAL; durable ones
 * before and after it (committed or rolled back) sync it. */
static void
test_lazy_commit(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_diag d;
	struct tmsg t;
	int before;

	(void)state;
	real_vfs = sqlite3_vfs_find(NULL);
	count_vfs = *real_vfs;
	count_vfs.zName = "tb-count";
	count_vfs.szOsFile = real_vfs->szOsFile + 8;
	count_vfs.xOpen = count_open;
	assert_int_equal(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
	newpath(path, sizeof(path));
	/* no checkpointer thread: its syncs would count too */
	j = tb_journal_open_ex(path, TB_JOURNAL_NO_CHECKPOINTS, &d);
	assert_non_null(j);
	assert_non_null(real_methods[0]); /* the files went through count_open */
	int lazy_syncs = 0;
	for (int round = 0; round < 20; round++) {
		before = wal_syncs;
		assert_int_equal(tb_journal_begin(j), TB_OK);
		mkmsg(&t, (unsigned)round * 2, 9000);
		assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
		assert_int_equal(tb_journal_commit(j), TB_OK);
		assert_true(wal_syncs > before);

		before = wal_syncs;
		assert_int_equal(tb_journal_begin_nosync(j), TB_OK);
		assert_int_equal(tb_journal_begin_nosync(j), TB_E_ARG);
		assert_int_equal(tb_journal_begin(j), TB_E_ARG);
		mkmsg(&t, (unsigned)round * 2 + 1, 9000);
		assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
		if (round % 5 == 1) {
			assert_int_equal(tb_journal_rollback(j), TB_OK);
		} else {
			assert_int_equal(tb_journal_commit(j), TB_OK);
		}
		lazy_syncs += wal_syncs - before;
	}
	/* SQLite syncs the WAL once of its own when it first appends to
	 * it after opening; no lazy commit syncs otherwise */
	assert_in_range(lazy_syncs, 0, 1);
	tb_journal_close(j);
	assert_int_equal(sqlite3_vfs_unregister(&count_vfs), SQLITE_OK);
	assert_int_equal(sqlite3_vfs_register(real_vfs, 1), SQLITE_OK);
	memset(real_methods, 0, sizeof(real_methods));
	/* the lazy commits are there all the same */
	j = open_ok(path);
	int64_t n;
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 36); /* 20 durable, 16 lazy committed */
	tb_journal_close(j);
}

static void
test_transactions(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t;
	int64_t n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	assert_int_equal(tb_journal_commit(j), TB_E_ARG);
	assert_int_equal(tb_journal_rollback(j), TB_E_ARG);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_begin(j), TB_E_ARG);
	for (unsigned i = 0; i < 10; i++) {
		mkmsg(&t, i, 9000);
		assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
		assert_int_equal(
		    tb_journal_audit_append(j, 'i', t.id, t.digest, t.from, 1, "received"), TB_OK);
	}
	assert_int_equal(tb_journal_rollback(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 0);

	/* a batch of 100 in one transaction, then the close of an open one
	 * drops it */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	for (unsigned i = 0; i < 100; i++) {
		mkmsg(&t, i, 9000);
		assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
		assert_int_equal(
		    tb_journal_audit_append(j, 'i', t.id, t.digest, t.from, 1, "received"), TB_OK);
	}
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 100);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	mkmsg(&t, 1000, 9000);
	assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
	tb_journal_close(j);
	j = open_ok(path);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 100);
	tb_journal_close(j);
	assert_int_equal(tb_journal_audit_verify(path, NULL, &n, NULL), TB_OK);
	assert_int_equal(n, 100);
}

/* No room for the journal: a write refused for the file-size limit
 * (EFBIG, as ENOSPC on a full disk; a short write is SQLITE_FULL) fails
 * the transaction with TB_E_JOURNAL_FULL, the reason senders are given
 * (journal.full), not TB_E_IO; nothing of it is kept, and the journal
 * takes writes again once there is room. */
static void
test_full(void **state)
{
	char path[128], wal[140];
	struct tb_journal *j;
	struct tmsg t;
	struct rlimit old, lim;
	struct stat st;
	int64_t n;
	int rc = TB_OK;
	unsigned i;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 * 1024;
	if (stat(wal, &st) == 0 && (rlim_t)st.st_size + 64 * 1024 > lim.rlim_cur)
		lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(tb_journal_begin(j), TB_OK);
	for (i = 0; i < 20000 && rc == TB_OK; i++) {
		mkmsg(&t, i, 9000);
		rc = tb_journal_inbound_put(j, &t.m, NULL);
		if (rc == TB_OK)
			rc = tb_journal_audit_append(j, 'i', t.id, t.digest, t.from, 1, "received");
	}
	if (rc == TB_OK)
		rc = tb_journal_commit(j);
	else
		assert_int_equal(tb_journal_diag(j)->code, TB_E_JOURNAL_FULL);
	assert_int_equal(rc, TB_E_JOURNAL_FULL);
	if (tb_journal_diag(j)->code == TB_E_JOURNAL_FULL)
		assert_string_equal(tb_err_reason(tb_journal_diag(j)->code), "journal.full");
	/* a failed commit closed the transaction (TB_E_ARG now); a failed
	 * put leaves it to be rolled back */
	rc = tb_journal_rollback(j);
	assert_true(rc == TB_OK || rc == TB_E_ARG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 0);
	/* room again */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	mkmsg(&t, 1, 9000);
	assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 1);
	tb_journal_close(j);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Measured, not asserted: machines differ.  Each message is one inbound
 * put (1 KiB envelope, 200-byte receipt) plus one audit entry, 100 per
 * committed (fsynced) transaction; 10,000 messages, enough for the WAL
 * to reach its auto-checkpoint a few times. */
static void
test_throughput(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg t;
	const unsigned batches = 100, per = 100;
	double t0, dt, c0, cdt = 0;

	(void)state;
	static uint8_t env[1024], rcpt[200]; /* a typical sealed request and receipt */

	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&t, 0, 9000);
	memset(env, 'e', sizeof(env));
	memset(rcpt, 'r', sizeof(rcpt));
	t.m.envelope = env;
	t.m.envelope_len = sizeof(env);
	t.m.receipt = rcpt;
	t.m.receipt_len = sizeof(rcpt);
	t0 = now_s();
	for (unsigned b = 0; b < batches; b++) {
		assert_int_equal(tb_journal_begin(j), TB_OK);
		for (unsigned i = 0; i < per; i++) {
			unsigned k = b * per + i;
			snprintf(t.id, sizeof(t.id), "%032x", k);
			assert_int_equal(tb_journal_inbound_put(j, &t.m, NULL), TB_OK);
			assert_int_equal(
			    tb_journal_audit_append(j, 'i', t.id, t.digest, t.from, k, "received"),
			    TB_OK);
		}
		c0 = now_s();
		assert_int_equal(tb_journal_commit(j), TB_OK);
		cdt += now_s() - c0;
	}
	dt = now_s() - t0;
	printf("# journal: inbound %u msgs in %u transactions of %u: %.3f s, %.0f msgs/s "
	       "(commit+fsync %.2f ms/txn)\n",
	       batches * per, batches, per, dt, batches * per / dt, cdt * 1000 / batches);
	/* outbound: put + audit, then delivered + audit */
	t0 = now_s();
	for (unsigned b = 0; b < batches; b++) {
		assert_int_equal(tb_journal_begin(j), TB_OK);
		for (unsigned i = 0; i < per; i++) {
			unsigned k = b * per + i;
			snprintf(t.id, sizeof(t.id), "%032x", k);
			assert_int_equal(tb_journal_outbound_put(j, &t.m, k), TB_OK);
			assert_int_equal(
			    tb_journal_audit_append(j, 'o', t.id, t.digest, "x", k, "queued"),
			    TB_OK);
		}
		assert_int_equal(tb_journal_commit(j), TB_OK);
	}
	dt = now_s() - t0;
	printf("# journal: outbound %u msgs in transactions of %u: %.0f msgs/s\n", batches * per,
	       per, batches * per / dt);
	tb_journal_close(j);
}

/* ---- crash safety ---- */

#define CRASH_BATCH 20

/* The child: commits batches of CRASH_BATCH inbound messages (each with
 * its audit entry) and reports each batch number after commit returns. */
static void
crash_child(const char *path, int wfd)
{
	struct tb_journal *j = tb_journal_open(path, NULL);
	struct tmsg t;

	if (j == NULL)
		_exit(2);
	for (uint32_t b = 0;; b++) {
		if (tb_journal_begin(j) != TB_OK)
			_exit(3);
		for (unsigned i = 0; i < CRASH_BATCH; i++) {
			mkmsg(&t, b * CRASH_BATCH + i, 9000);
			if (tb_journal_inbound_put(j, &t.m, NULL) != TB_OK ||
			    tb_journal_audit_append(j, 'i', t.id, t.digest, t.from, b,
			                            "received") != TB_OK)
				_exit(4);
		}
		if (tb_journal_commit(j) != TB_OK)
			_exit(5);
		if (write(wfd, &b, sizeof(b)) != (ssize_t)sizeof(b))
			_exit(6);
	}
}

static void
test_crash_kill(void **state)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	const char *env = getenv("TB_JOURNAL_SEED");

	(void)state;
	if (env != NULL)
		seed = (unsigned)strtoul(env, NULL, 10);
	printf("# crash test seed %u (TB_JOURNAL_SEED to repeat)\n", seed);
	srand(seed);
	for (int round = 0; round < 6; round++) {
		char path[128];
		int fds[2], status;
		uint32_t b, last = 0, reports = 0, target;
		struct tb_journal *j;
		struct tb_buf r;
		struct tb_diag d;
		pid_t pid;
		int64_t n, bad;
		uint32_t complete = 0;

		newpath(path, sizeof(path));
		assert_int_equal(pipe(fds), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(path, fds[1]);
		}
		close(fds[1]);
		target = 1 + (uint32_t)(rand() % 40);
		while (reports < target && read(fds[0], &b, sizeof(b)) == (ssize_t)sizeof(b)) {
			last = b;
			reports++;
		}
		assert_int_equal(reports, target);
		/* land the kill anywhere inside the next batch or its commit */
		usleep((useconds_t)(rand() % 3000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* reports written before the kill are still in the pipe */
		while (read(fds[0], &b, sizeof(b)) == (ssize_t)sizeof(b))
			last = b;
		close(fds[0]);

		j = open_ok(path);
		tb_buf_init(&r);
		for (uint32_t bb = 0; bb <= last + 2; bb++) {
			unsigned present = 0;
			for (unsigned i = 0; i < CRASH_BATCH; i++) {
				char id[33];
				snprintf(id, sizeof(id), "%032x", bb * CRASH_BATCH + i);
				int rc = tb_journal_inbound_receipt(j, id, &r);
				assert_true(rc == TB_OK || rc == TB_E_NOTFOUND);
				if (rc == TB_OK) {
					struct tmsg t;
					mkmsg(&t, bb * CRASH_BATCH + i, 9000);
					assert_int_equal(r.len, sizeof(t.rcpt));
					assert_memory_equal(r.data, t.rcpt, r.len);
					present++;
				}
			}
			/* all or nothing per batch; everything reported is there;
			 * at most the one batch after it committed unreported */
			assert_true(present == 0 || present == CRASH_BATCH);
			if (bb <= last)
				assert_int_equal(present, CRASH_BATCH);
			if (bb > last + 1)
				assert_int_equal(present, 0);
			if (present)
				complete++;
		}
		assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
		assert_int_equal(n, (int64_t)complete * CRASH_BATCH);
		tb_journal_close(j);
		tb_buf_free(&r);
		assert_int_equal(tb_journal_audit_verify(path, &bad, &n, &d), TB_OK);
		assert_int_equal(n, (int64_t)complete * CRASH_BATCH);
		printf("# crash round %d: killed after %u reported batches, %u on disk\n", round,
		       last + 1, complete);
	}
}

/* Single lookups and the message-flow tables (both backends). */
static void
test_lookups_flows(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_journal_inbound in;
	struct tb_buf b;
	struct tmsg m, o;
	bool closed = true;
	int st = -1;

	(void)state;
	tb_buf_init(&b);
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&m, 1, 5000);
	mkmsg(&o, 2, 5000);
	assert_int_equal(tb_journal_inbound_put(j, &m.m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbound_get(j, m.id, &in, &b), TB_OK);
	assert_string_equal(in.from, m.from);
	assert_string_equal(in.digest, m.digest);
	assert_false(in.acked);
	assert_int_equal(b.len, sizeof(m.env));
	assert_memory_equal(b.data, m.env, sizeof(m.env));
	assert_int_equal(tb_journal_inbox_ack(j, m.id), TB_OK);
	assert_int_equal(tb_journal_inbound_get(j, m.id, &in, NULL), TB_OK);
	assert_true(in.acked);
	assert_int_equal(tb_journal_inbound_get(j, o.id, &in, NULL), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_outbound_put(j, &o.m, 1), TB_OK);
	assert_int_equal(tb_journal_outbound_envelope(j, o.id, &b), TB_OK);
	assert_memory_equal(b.data, o.env, sizeof(o.env));
	assert_int_equal(tb_journal_outbound_envelope(j, m.id, &b), TB_E_NOTFOUND);

	assert_int_equal(tb_journal_request_closed(j, o.id, &closed), TB_OK);
	assert_false(closed);
	assert_int_equal(tb_journal_request_close(j, o.id, 10), TB_OK);
	assert_int_equal(tb_journal_request_close(j, o.id, 11), TB_OK);
	assert_int_equal(tb_journal_request_closed(j, o.id, &closed), TB_OK);
	assert_true(closed);
	assert_int_equal(tb_journal_case_get(j, "a", "b", "c1", &st), TB_OK);
	assert_int_equal(st, 0);
	assert_int_equal(tb_journal_case_set(j, "a", "b", "c1", 2, 10), TB_OK);
	assert_int_equal(tb_journal_case_set(j, "a", "b", "c1", 3, 11), TB_OK);
	assert_int_equal(tb_journal_case_get(j, "a", "b", "c1", &st), TB_OK);
	assert_int_equal(st, 3);
	tb_journal_close(j);
	tb_buf_free(&b);
}

#ifdef HAVE_LIBPQ
/* PostgreSQL: the schema is created at its version, a newer one refused;
 * a server that cannot be reached is TB_E_IO saying so. */
static void
test_pg_schema(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_diag d;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_journal_close(j);
	assert_int_equal(pg_int("SELECT max(version) FROM tb_schema"), TB_JOURNAL_PG_SCHEMA);
	/* a second open finds it made: nothing changes */
	j = open_ok(path);
	tb_journal_close(j);
	assert_int_equal(pg_int("SELECT count(*) FROM tb_schema"), 1);
	pg_int("UPDATE tb_schema SET version = 99");
	assert_null(tb_journal_open(pg_uri, &d));
	assert_int_equal(d.code, TB_E_JOURNAL_VERSION);
	assert_non_null(strstr(d.detail, "schema 99"));
	pg_int("UPDATE tb_schema SET version = 1");

	assert_null(tb_journal_open("postgresql://tongban:secret@127.0.0.1:1/none", &d));
	assert_int_equal(d.code, TB_E_IO);
	assert_non_null(strstr(d.detail, "cannot connect"));
	assert_null(strstr(d.detail, "secret"));
}

/* Two handles on one database, as two node processes of one member: a
 * message stored through one is a duplicate through the other, answered
 * with the first receipt; what one has not committed the other does not
 * see; queue changes made by one are seen by the other. */
static void
test_pg_two_processes(void **state)
{
	char path[128];
	struct tb_journal *a, *b;
	struct tmsg m1, m2, bad;
	struct tb_journal_status stt;
	struct tb_buf r;
	int64_t n;

	(void)state;
	tb_buf_init(&r);
	newpath(path, sizeof(path));
	a = open_ok(path);
	b = open_ok(path);
	mkmsg(&m1, 1, 5000);
	mkmsg(&m2, 2, 5000);
	assert_int_equal(tb_journal_inbound_put(a, &m1.m, &r), TB_OK);
	assert_int_equal(tb_journal_inbound_put(b, &m1.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, sizeof(m1.rcpt));
	assert_memory_equal(r.data, m1.rcpt, sizeof(m1.rcpt));
	/* the same id with another digest: no receipt */
	mkmsg(&bad, 1, 5000);
	bad.m.digest = m2.digest;
	assert_int_equal(tb_journal_inbound_put(b, &bad.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, 0);

	/* uncommitted on a: b sees nothing; committed: b sees it */
	assert_int_equal(tb_journal_begin(a), TB_OK);
	assert_int_equal(tb_journal_outbound_put(a, &m2.m, 10), TB_OK);
	assert_int_equal(tb_journal_outbound_pending(b, &n), TB_OK);
	assert_int_equal(n, 0);
	assert_int_equal(tb_journal_commit(a), TB_OK);
	assert_int_equal(tb_journal_outbound_pending(b, &n), TB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(tb_journal_outbound_delivered(b, m2.id, m2.rcpt, sizeof(m2.rcpt), 20, NULL),
	                 TB_OK);
	assert_int_equal(tb_journal_outbound_status(a, m2.id, &stt, &r), TB_OK);
	assert_int_equal(stt.state, TB_JOURNAL_DELIVERED);
	assert_int_equal(stt.delivered_at, 20);
	assert_memory_equal(r.data, m2.rcpt, sizeof(m2.rcpt));
	/* a rolled-back put leaves nothing */
	assert_int_equal(tb_journal_begin(a), TB_OK);
	mkmsg(&m2, 3, 5000);
	assert_int_equal(tb_journal_inbound_put(a, &m2.m, NULL), TB_OK);
	assert_int_equal(tb_journal_rollback(a), TB_OK);
	assert_int_equal(tb_journal_inbound_receipt(b, m2.id, &r), TB_E_NOTFOUND);
	tb_journal_close(a);
	tb_journal_close(b);
	tb_buf_free(&r);
}

/* What the PostgreSQL backend leaves to PostgreSQL is refused saying
 * what to use (backup: pg_dump); stats and vacuum answer. */
static void
test_pg_unsupported(void **state)
{
	char path[128];
	struct tb_journal_stats st;
	struct tb_journal *j;
	struct tb_diag d;
	struct tb_buf b;
	struct tmsg m;
	int64_t freed = 9;

	(void)state;
	tb_buf_init(&b);
	newpath(path, sizeof(path));
	j = open_ok(path);
	mkmsg(&m, 1, 5000);
	assert_int_equal(tb_journal_outbound_put(j, &m.m, 1), TB_OK);
	assert_int_equal(tb_journal_backup(pg_uri, "/nonexistent/x", &d), TB_E_ARG);
	assert_non_null(strstr(d.detail, "pg_dump"));
	assert_int_equal(tb_journal_vacuum(j, &freed), TB_OK);
	assert_int_equal(freed, 0);
	assert_int_equal(tb_journal_stats(pg_uri, &st, &d), TB_OK);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.inbox + st.delivered + st.failed + st.audit, 0);
	assert_true(st.bytes > 0);
	/* audit verify is carried over: the chain there verifies */
	assert_int_equal(tb_journal_audit_verify(pg_uri, NULL, NULL, NULL), TB_OK);
	tb_journal_close(j);
	tb_buf_free(&b);
}

struct pg_list {
	int n;
	int64_t first;
	char last_hash[65];
};

static int
pg_list_cb(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct pg_list *l = ctx;

	if (l->n++ == 0)
		l->first = e->seq;
	snprintf(l->last_hash, sizeof(l->last_hash), "%s", e->hash);
	return 0;
}

static int
pg_count_cb(void *ctx, const struct tb_journal_out *o)
{
	(void)o;
	++*(int *)ctx;
	return 0;
}

/* Statements whose answer nobody waits for (savepoints, flow rows: sent
 * in pipeline mode; audit rows: written at commit) lose their
 * transaction whole when they fail, whichever call is told: the commit
 * reports nothing stored, and nothing is. */
static void
test_pg_deferred_lost(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg a, b;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	pg_int("ALTER TABLE audit ADD CONSTRAINT no_boom CHECK (event <> 'boom')");
	pg_int("ALTER TABLE cases ADD CONSTRAINT small CHECK (state < 100)");
	mkmsg(&a, 1, 5000);
	mkmsg(&b, 2, 5000);
	/* an audit row that fails, written at the commit */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &a.m, 1, 10, "boom"), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &b.m, 1, 10, "queued"), TB_OK);
	assert_int_not_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 0);
	assert_int_equal(pg_int("SELECT count(*) FROM audit"), 0);
	/* a flow row that fails after an audited unit was answered TB_OK;
	 * the next call that waits is told */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &a.m, 1, 10, "queued"), TB_OK);
	if (tb_journal_case_set(j, "320300", "371300", "c1", 200, 10) == TB_OK)
		assert_int_not_equal(tb_journal_outbound_put_audit(j, &b.m, 1, 10, "queued"),
		                     TB_OK);
	assert_int_not_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 0);
	assert_int_equal(pg_int("SELECT count(*) FROM cases"), 0);
	/* the handle carries on */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &b.m, 1, 10, "queued"), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 1);
	assert_int_equal(pg_int("SELECT count(*) FROM audit"), 1);
	tb_journal_close(j);
}

/* The server ends the journal's session in the middle of a transaction
 * whose statements are pipelined (pg_terminate_backend: what a fast
 * shutdown does): the failure, the rollback after it and the calls until
 * the session is made again say the database cannot be reached
 * (TB_E_JOURNAL_DOWN), never libpq's complaint about pipeline mode; the
 * next transaction reconnects and stores. */
static void
test_pg_conn_lost(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg a, b;
	const struct tb_diag *d;
	int rc = TB_E_IO;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	d = tb_journal_diag(j);
	mkmsg(&a, 1, 5000);
	mkmsg(&b, 2, 5000);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(tb_journal_begin(j), TB_OK);
		assert_int_equal(tb_journal_outbound_put_audit(j, &a.m, 1, 10, "queued"), TB_OK);
		/* a flow row: sent, its answer not waited for (pipeline mode) */
		assert_int_equal(tb_journal_case_set(j, "320300", "371300", "c1", 1, 10), TB_OK);
		assert_int_equal(pg_int("SELECT count(pg_terminate_backend(pid)) FROM "
		                        "pg_stat_activity WHERE pid <> pg_backend_pid() AND "
		                        "datname = current_database() AND "
		                        "backend_type = 'client backend'"),
		                 1);
		usleep(100 * 1000);
		rc = tb_journal_outbound_put_audit(j, &b.m, 1, 10, "queued");
		if (round == 0) {
			/* as inbound.c does: the exchange's write failed, rolled back */
			assert_int_not_equal(rc, TB_OK);
			assert_int_equal(d->code, TB_E_JOURNAL_DOWN);
			assert_null(strstr(d->detail, "pipeline"));
			rc = tb_journal_rollback(j);
			if (rc != TB_OK) {
				assert_int_equal(d->code, TB_E_JOURNAL_DOWN);
				assert_null(strstr(d->detail, "pipeline"));
			}
		} else {
			/* or told at the commit */
			assert_int_not_equal(rc == TB_OK ? tb_journal_commit(j) : rc, TB_OK);
			assert_int_equal(d->code, TB_E_JOURNAL_DOWN);
			assert_null(strstr(d->detail, "pipeline"));
			assert_non_null(strstr(d->detail, "cannot reach the database"));
			if (rc != TB_OK && tb_journal_rollback(j) != TB_OK)
				assert_null(strstr(d->detail, "pipeline"));
		}
		assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 0);
		/* the session is made again (without blocking: a few calls) */
		for (int i = 0; i < 200 && (rc = tb_journal_begin(j)) != TB_OK; i++) {
			assert_int_equal(d->code, TB_E_JOURNAL_DOWN);
			assert_null(strstr(d->detail, "pipeline"));
			usleep(20 * 1000);
		}
		assert_int_equal(rc, TB_OK);
		assert_int_equal(tb_journal_rollback(j), TB_OK);
	}
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &a.m, 1, 10, "queued"), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 1);
	tb_journal_close(j);
}

#endif

/* A batch's lookups prefetched in one round trip (both backends): the
 * receipt lookups answer as without it, a duplicate in the batch is
 * still told, and a delivery counts once. */
static void
test_prefetch(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg a, b, o1, o2;
	const char *ids[3];
	struct tb_buf r;
	int64_t n;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&a, 1, 5000);
	mkmsg(&b, 2, 5000);
	assert_int_equal(tb_journal_inbound_put(j, &a.m, NULL), TB_OK);
	ids[0] = a.id;
	ids[1] = b.id;
	ids[2] = "not-an-id";
	assert_int_equal(tb_journal_inbound_prefetch(j, ids, 2), TB_E_ARG); /* no transaction */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_inbound_prefetch(j, ids, 3), TB_E_ARG);
	assert_int_equal(tb_journal_inbound_prefetch(j, ids, 2), TB_OK);
	assert_int_equal(tb_journal_inbound_receipt(j, a.id, &r), TB_OK);
	assert_int_equal(r.len, sizeof(a.rcpt));
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_inbound_receipt(j, b.id, &r), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbound_put(j, &b.m, NULL), TB_OK);
	/* the copy in the same batch: found now, answered with the receipt */
	assert_int_equal(tb_journal_inbound_receipt(j, b.id, &r), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &b.m, &r), TB_E_REPLAY);
	assert_int_equal(r.len, sizeof(b.rcpt));
	assert_int_equal(tb_journal_inbound_put(j, &a.m, &r), TB_E_REPLAY);
	assert_memory_equal(r.data, a.rcpt, sizeof(a.rcpt));
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 2);

	/* a row put before a unit that is undone stays (on PostgreSQL it
	 * waited to be sent with others when the unit began) */
	mkmsg(&o1, 21, 5000);
	mkmsg(&o2, 22, 5000);
	assert_int_equal(tb_journal_outbound_put(j, &o2.m, 1), TB_OK);
	ids[0] = o1.id;
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_inbound_prefetch(j, ids, 1), TB_OK);
	assert_int_equal(tb_journal_inbound_put(j, &o1.m, NULL), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(j, &o2.m, 1, 10, "queued"), TB_E_REPLAY);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	assert_int_equal(n, 3);

	/* the rows sent together (PostgreSQL) hold the bytes as given */
	mkmsg(&b, 2, 5000);
	assert_int_equal(tb_journal_inbound_receipt(j, b.id, &r), TB_OK);
	assert_memory_equal(r.data, b.rcpt, sizeof(b.rcpt));
	struct tb_journal_inbound ig;
	assert_int_equal(tb_journal_inbound_get(j, b.id, &ig, &r), TB_OK);
	assert_int_equal(r.len, sizeof(b.env));
	assert_memory_equal(r.data, b.env, sizeof(b.env));
	assert_string_equal(ig.from, b.from);

	tb_buf_free(&r);
	tb_journal_close(j);
}

/* Outbound: the states of an answered batch read (and locked) once, each
 * delivery counted and audited once, a new message's row (both backends). */
static void
test_prefetch_outbound(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tmsg a, b, o1, o2;
	char oids[3][33];
	struct tb_journal_status st;
	struct tb_buf r;
	bool fresh;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&a, 1, 5000);
	/* outbound: states read (and locked) once, each delivery counted once */
	mkmsg(&o1, 11, 5000);
	mkmsg(&o2, 12, 5000);
	mkmsg(&b, 13, 5000);
	assert_int_equal(tb_journal_outbound_put(j, &o1.m, 1), TB_OK);
	assert_int_equal(tb_journal_outbound_put(j, &o2.m, 1), TB_OK);
	snprintf(oids[0], 33, "%s", o1.id);
	snprintf(oids[1], 33, "%s", o2.id);
	snprintf(oids[2], 33, "%s", b.id); /* unknown */
	assert_int_equal(tb_journal_begin_nosync(j), TB_OK);
	assert_int_equal(tb_journal_outbound_prefetch(j, oids, 3), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, o1.id, a.rcpt, 5, 50, &fresh), TB_OK);
	assert_true(fresh);
	assert_int_equal(tb_journal_outbound_delivered(j, o1.id, b.rcpt, 7, 51, &fresh), TB_OK);
	assert_false(fresh);
	assert_int_equal(tb_journal_outbound_failed(j, o2.id, "refused", 52), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered(j, o2.id, a.rcpt, 5, 53, &fresh),
	                 TB_E_JOURNAL_STATE);
	assert_false(fresh);
	assert_int_equal(tb_journal_outbound_delivered(j, b.id, a.rcpt, 5, 53, &fresh),
	                 TB_E_NOTFOUND);
	/* a new message's row, sent without waiting on PostgreSQL */
	assert_int_equal(tb_journal_outbound_put_new(j, &b.m, 1), TB_OK);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_outbound_status(j, o1.id, &st, &r), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_DELIVERED);
	assert_int_equal(st.delivered_at, 50);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.data, a.rcpt, 5);
	assert_int_equal(tb_journal_outbound_status(j, o2.id, &st, NULL), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_FAILED);
	assert_int_equal(tb_journal_outbound_status(j, b.id, &st, NULL), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_QUEUED);
	/* the rows sent together (PostgreSQL) hold the bytes as given */
	assert_int_equal(tb_journal_outbound_envelope(j, b.id, &r), TB_OK);
	assert_int_equal(r.len, sizeof(b.env));
	assert_memory_equal(r.data, b.env, sizeof(b.env));
	/* a delivery with its audit entry, of a prefetched row: once */
	int64_t seq0, seq1;
	char hh[65];
	mkmsg(&o1, 31, 5000);
	assert_int_equal(tb_journal_outbound_put(j, &o1.m, 1), TB_OK);
	snprintf(oids[0], 33, "%s", o1.id);
	assert_int_equal(tb_journal_audit_head(j, &seq0, hh), TB_OK);
	assert_int_equal(tb_journal_begin_nosync(j), TB_OK);
	assert_int_equal(tb_journal_outbound_prefetch(j, oids, 1), TB_OK);
	assert_int_equal(tb_journal_outbound_delivered_audit(j, o1.id, a.rcpt, 5, 60, o1.digest,
	                                                     "peer-1", &fresh),
	                 TB_OK);
	assert_true(fresh);
	assert_int_equal(tb_journal_outbound_delivered_audit(j, o1.id, a.rcpt, 5, 61, o1.digest,
	                                                     "peer-1", &fresh),
	                 TB_OK);
	assert_false(fresh);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_audit_head(j, &seq1, hh), TB_OK);
	assert_int_equal(seq1, seq0 + 1);
	assert_int_equal(tb_journal_outbound_status(j, o1.id, &st, NULL), TB_OK);
	assert_int_equal(st.state, TB_JOURNAL_DELIVERED);
	assert_int_equal(st.delivered_at, 60);

	tb_buf_free(&r);
	tb_journal_close(j);
}

/* Case states read once for a batch and kept current by its sets (both
 * backends). */
static void
test_prefetch_cases(void **state)
{
	char path[128];
	struct tb_journal *j;
	struct tb_buf r;

	(void)state;
	newpath(path, sizeof(path));
	j = open_ok(path);
	tb_buf_init(&r);
	/* case states: read once, kept current by the sets (a case id
	 * with quotes and a backslash, as an array element) */
	const char *rq[3] = {"320300", "320300", "320300"}, *hd[3] = {"371300", "371300", "371300"},
	           *ci[3] = {"c\"1\\ {x,y}", "c2", "c2"};
	int cs = -1;
	assert_int_equal(tb_journal_case_set(j, rq[0], hd[0], ci[0], 2, 10), TB_OK);
	assert_int_equal(tb_journal_case_prefetch(j, rq, hd, ci, 3), TB_E_ARG); /* no transaction */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_case_prefetch(j, rq, hd, ci, 3), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[0], hd[0], ci[0], &cs), TB_OK);
	assert_int_equal(cs, 2);
	assert_int_equal(tb_journal_case_get(j, rq[1], hd[1], ci[1], &cs), TB_OK);
	assert_int_equal(cs, 0);
	assert_int_equal(tb_journal_case_set(j, rq[1], hd[1], ci[1], 3, 11), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[1], hd[1], ci[1], &cs), TB_OK);
	assert_int_equal(cs, 3);
	assert_int_equal(tb_journal_case_set(j, rq[0], hd[0], ci[0], 4, 12), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[0], hd[0], ci[0], &cs), TB_OK);
	assert_int_equal(cs, 4);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[1], hd[1], ci[1], &cs), TB_OK);
	assert_int_equal(cs, 3);
	assert_int_equal(tb_journal_case_get(j, rq[0], hd[0], ci[0], &cs), TB_OK);
	assert_int_equal(cs, 4);
	/* a set of a prefetched case is written before a statement that
	 * could read it, and only once (the last state) */
	assert_int_equal(tb_journal_begin(j), TB_OK);
	assert_int_equal(tb_journal_case_prefetch(j, rq, hd, ci, 2), TB_OK);
	assert_int_equal(tb_journal_case_set(j, rq[1], hd[1], ci[1], 5, 13), TB_OK);
	assert_int_equal(tb_journal_case_set(j, rq[1], hd[1], ci[1], 6, 14), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[1], hd[1], "c3", &cs), TB_OK);
	assert_int_equal(cs, 0);
	assert_int_equal(tb_journal_commit(j), TB_OK);
	assert_int_equal(tb_journal_case_get(j, rq[1], hd[1], ci[1], &cs), TB_OK);
	assert_int_equal(cs, 6);
	tb_buf_free(&r);
	tb_journal_close(j);
}

#ifdef HAVE_LIBPQ
/* PostgreSQL: an inbound row put on a prefetch's "absent" while another
 * process stores the same id fails the transaction whole, so the id is
 * stored once and the sender's retry finds it; a new outbound row whose
 * id is taken after all does the same. */
static void
test_pg_prefetch_race(void **state)
{
	char path[128];
	struct tb_journal *a, *b;
	struct tmsg m, o;
	const char *ids[1];
	struct tb_buf r;

	(void)state;
	newpath(path, sizeof(path));
	a = open_ok(path);
	b = open_ok(path);
	tb_buf_init(&r);
	mkmsg(&m, 7, 5000);
	ids[0] = m.id;
	assert_int_equal(tb_journal_begin(a), TB_OK);
	assert_int_equal(tb_journal_inbound_prefetch(a, ids, 1), TB_OK);
	assert_int_equal(tb_journal_inbound_put(b, &m.m, NULL), TB_OK); /* committed */
	assert_int_equal(tb_journal_inbound_receipt(a, m.id, &r), TB_E_NOTFOUND);
	assert_int_equal(tb_journal_inbound_put(a, &m.m, &r), TB_OK);
	assert_int_not_equal(tb_journal_commit(a), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM inbound"), 1);
	/* the retry */
	assert_int_equal(tb_journal_begin(a), TB_OK);
	assert_int_equal(tb_journal_inbound_prefetch(a, ids, 1), TB_OK);
	assert_int_equal(tb_journal_inbound_receipt(a, m.id, &r), TB_OK);
	assert_int_equal(tb_journal_inbound_put(a, &m.m, &r), TB_E_REPLAY);
	assert_memory_equal(r.data, m.rcpt, sizeof(m.rcpt));
	assert_int_equal(tb_journal_commit(a), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM inbound"), 1);

	mkmsg(&o, 8, 5000);
	assert_int_equal(tb_journal_outbound_put(b, &o.m, 1), TB_OK);
	assert_int_equal(tb_journal_begin(a), TB_OK);
	assert_int_equal(tb_journal_outbound_put_new(a, &o.m, 1), TB_OK);
	assert_int_not_equal(tb_journal_commit(a), TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM outbound"), 1);
	tb_buf_free(&r);
	tb_journal_close(a);
	tb_journal_close(b);
}

/* Leases: two handles (two processes) listing due messages never get
 * the same one; what one listed and never settled (it died) is due for
 * the other once the lease has passed. */
static void
test_pg_lease(void **state)
{
	char path[128];
	struct tb_journal *a, *b;
	struct tmsg m;
	int64_t later = (int64_t)time(NULL) + TB_JPG_LEASE_S + 1;
	int na = 0, nb = 0, n = 0;

	(void)state;
	newpath(path, sizeof(path));
	a = open_ok(path);
	b = open_ok(path);
	for (unsigned i = 1; i <= 4; i++) {
		mkmsg(&m, i, later + 100);
		assert_int_equal(tb_journal_outbound_put(a, &m.m, 5), TB_OK);
	}
	assert_int_equal(tb_journal_outbound_claim(a, 10, 3, pg_count_cb, &na), TB_OK);
	assert_int_equal(tb_journal_outbound_claim(b, 10, 0, pg_count_cb, &nb), TB_OK);
	assert_int_equal(na, 3);
	assert_int_equal(nb, 1);
	n = 0;
	assert_int_equal(tb_journal_outbound_claim(a, 10, 0, pg_count_cb, &n), TB_OK);
	assert_int_equal(n, 0);
	/* a "dies": after the lease b finds all four due */
	tb_journal_close(a);
	n = 0;
	assert_int_equal(tb_journal_outbound_claim(b, later, 0, pg_count_cb, &n), TB_OK);
	assert_int_equal(n, 4);
	tb_journal_close(b);
}

/* The head hook's view: the newest committed head. */
static void
pg_head_seen(void *ctx, int64_t seq, const uint8_t hash[32])
{
	(void)hash;
	*(int64_t *)ctx = seq;
}

/* The audit chain on PostgreSQL: one chain for two handles (two
 * processes) appending in turn, every link and hash recomputed; an
 * audited change that fails inside a batch is undone whole and the batch
 * goes on; the head hook hears durable heads. */
static void
test_pg_audit(void **state)
{
	char path[128], hex[65], prev_hex[65], head[65];
	struct tb_journal *a, *b;
	struct tmsg m[6];
	int64_t seq, heard = 0;
	uint8_t prev[32] = {0}, h[32];

	(void)state;
	newpath(path, sizeof(path));
	a = open_ok(path);
	b = open_ok(path);
	tb_journal_set_head_hook(a, pg_head_seen, &heard);
	for (unsigned i = 0; i < 6; i++) {
		struct tb_journal *j = (i % 2) ? b : a;

		mkmsg(&m[i], 10 + i, 5000);
		assert_int_equal(tb_journal_audit_append(j, 'i', m[i].id, m[i].digest, m[i].from,
		                                         100 + i, "received"),
		                 TB_OK);
	}
	assert_int_equal(heard, 5); /* a's last own append */
	assert_int_equal(tb_journal_audit_head(b, &seq, head), TB_OK);
	assert_int_equal(seq, 6);
	for (int64_t s = 1; s <= 6; s++) {
		const struct tmsg *t = &m[s - 1];

		assert_int_equal(tb_journal_audit_hash_at(a, s, hex), TB_OK);
		assert_int_equal(tb_journal_audit_hash_ex(s, prev, 'i', t->id, t->digest, t->from,
		                                          100 + s - 1, "received", "", h),
		                 TB_OK);
		tb_hex_encode(h, 32, prev_hex);
		assert_string_equal(hex, prev_hex);
		memcpy(prev, h, 32);
	}
	assert_string_equal(hex, head);
	assert_int_equal(tb_journal_audit_hash_at(a, 7, hex), TB_E_NOTFOUND);
	/* listed by URI, as the node's start-up and the CLI list it */
	{
		struct pg_list l = {0};

		assert_int_equal(tb_journal_audit_list(pg_uri, 3, pg_list_cb, &l, NULL), TB_OK);
		assert_int_equal(l.n, 4);
		assert_int_equal(l.first, 3);
		assert_string_equal(l.last_hash, head);
	}

	/* a batch: one audited put kept, a failing one undone, commit */
	assert_int_equal(tb_journal_begin(a), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(a, &m[0].m, 1, 200, "queued"), TB_OK);
	assert_int_equal(tb_journal_outbound_put_audit(a, &m[0].m, 1, 200, "queued"), TB_E_REPLAY);
	assert_int_equal(tb_journal_outbound_failed_audit(a, m[1].id, "x", 201, m[1].digest, "p"),
	                 TB_E_NOTFOUND);
	assert_int_equal(tb_journal_commit(a), TB_OK);
	assert_int_equal(heard, 7);
	assert_int_equal(pg_int("SELECT count(*) FROM audit"), 7);
	assert_int_equal(tb_journal_outbound_delivered_audit(b, m[0].id, NULL, 0, 202, m[0].digest,
	                                                     "city-0101", NULL),
	                 TB_OK);
	assert_int_equal(pg_int("SELECT count(*) FROM audit WHERE event = 'delivered'"), 1);
	/* a rolled-back batch leaves no entry */
	assert_int_equal(tb_journal_begin(b), TB_OK);
	assert_int_equal(tb_journal_audit_admin(b, 300, "test", "rolled back"), TB_OK);
	assert_int_equal(tb_journal_rollback(b), TB_OK);
	assert_int_equal(pg_int("SELECT max(seq) FROM audit"), 8);
	tb_journal_close(a);
	tb_journal_close(b);
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_schema_reopen),
	    cmocka_unit_test(test_open_migrates_schema1),
	    cmocka_unit_test(test_checkpoint_background),
	    cmocka_unit_test(test_checkpoint_secondary),
	    cmocka_unit_test(test_two_writers),
	    cmocka_unit_test(test_open_errors),
	    cmocka_unit_test(test_inbound_duplicate_original_receipt),
	    cmocka_unit_test(test_inbox_order_ack),
	    cmocka_unit_test(test_outbound_state_machine),
	    cmocka_unit_test(test_audited_state_changes),
	    cmocka_unit_test(test_outbound_due_next),
	    cmocka_unit_test(test_outbound_held),
	    cmocka_unit_test(test_library_init),
	    cmocka_unit_test(test_prune),
	    cmocka_unit_test(test_retire),
	    cmocka_unit_test(test_vacuum),
	    cmocka_unit_test(test_file_modes),
	    cmocka_unit_test(test_backup),
	    cmocka_unit_test(test_migrate_v3),
	    cmocka_unit_test(test_audit_chain),
	    cmocka_unit_test(test_audit_verify_while_open),
	    cmocka_unit_test(test_reopen_persistence),
	    cmocka_unit_test(test_transactions),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_lazy_commit),
	    cmocka_unit_test(test_audit_in_transactions),
	    cmocka_unit_test(test_audit_admin),
	    cmocka_unit_test(test_audit_sm3),
	    cmocka_unit_test(test_audit_sm3_verify),
	    cmocka_unit_test(test_audit_head_hook),
	    cmocka_unit_test(test_audit_list),
	    cmocka_unit_test(test_outbound_queued_by),
	    cmocka_unit_test(test_throughput),
	    cmocka_unit_test(test_crash_kill),
	    cmocka_unit_test(test_lookups_flows),
	    cmocka_unit_test(test_prefetch),
	    cmocka_unit_test(test_prefetch_outbound),
	    cmocka_unit_test(test_prefetch_cases),
	};

	/* as tongban-node does, before SQLite starts (test_library_init) */
	tb_journal_library_init();
	pg_uri = getenv("TB_TEST_PG_URI");
	if (pg_uri != NULL && pg_uri[0] != '\0') {
#ifdef HAVE_LIBPQ
		/* the tests whose contract holds for both backends, and the
		 * PostgreSQL backend's own */
		const struct CMUnitTest pg_tests[] = {
		    cmocka_unit_test(test_inbound_duplicate_original_receipt),
		    cmocka_unit_test(test_inbox_order_ack),
		    cmocka_unit_test(test_outbound_state_machine),
		    cmocka_unit_test(test_outbound_due_next),
		    cmocka_unit_test(test_outbound_held),
		    cmocka_unit_test(test_lookups_flows),
		    cmocka_unit_test(test_retire),
		    cmocka_unit_test(test_pg_schema),
		    cmocka_unit_test(test_pg_two_processes),
		    cmocka_unit_test(test_pg_unsupported),
		    cmocka_unit_test(test_pg_audit),
		    cmocka_unit_test(test_audit_sm3),
		    cmocka_unit_test(test_pg_lease),
		    cmocka_unit_test(test_pg_deferred_lost),
		    cmocka_unit_test(test_pg_conn_lost),
		    cmocka_unit_test(test_prefetch),
		    cmocka_unit_test(test_prefetch_outbound),
		    cmocka_unit_test(test_prefetch_cases),
		    cmocka_unit_test(test_pg_prefetch_race),
		};
		return cmocka_run_group_tests_name("journal on PostgreSQL", pg_tests, group_setup,
		                                   group_teardown);
#else
		fprintf(stderr, "TB_TEST_PG_URI given, but built without libpq\n");
		return 77;
#endif
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
