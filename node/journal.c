/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c - the durable journal over SQLite (see journal.h).
 *
 * Every change the interface offers is a single SQL statement, and SQLite
 * makes each statement atomic, so a call that fails inside the caller's
 * batch leaves nothing half-done and the batch can go on.  The only
 * multi-statement writes (audit append: read head, insert; prune: two
 * deletes) take their own transaction when the caller has none open.
 */
#include "node/journal.h"
#include "node/journal_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/tb_key.h"
#include "util/tb_enc.h"
#include "util/tb_thread.h"

/* 'TBJ1' in PRAGMA application_id: marks the file as ours, so a journal
 * path pointing at another program's SQLite database is refused instead of
 * having our tables added to it. */
#define JOURNAL_APP_ID 0x54424a31

/* Long enough to ride out a checkpoint or an `audit verify` reader, short
 * enough that a wedged second writer shows up as an error, not a hang. */
#define JOURNAL_BUSY_MS 5000

#define AUDIT_TAG "tongban-audit-v1"
/* Entry 1 of a chain hashed with SM3 (journal.h, tb_audit_hash). */
#define AUDIT_CHAIN_EVENT "chain"

/* The audit table's columns (schema 3: dir 'a' for the node's own
 * events, and detail). */
#define AUDIT_COLS                                                                                 \
	" seq INTEGER PRIMARY KEY CHECK (seq > 0),"                                                \
	" prev TEXT NOT NULL,"                                                                     \
	" dir TEXT NOT NULL CHECK (dir IN ('i', 'o', 'a')),"                                       \
	" msgid TEXT NOT NULL, digest TEXT NOT NULL, peer TEXT NOT NULL,"                          \
	" at INTEGER NOT NULL, event TEXT NOT NULL,"                                               \
	" hash TEXT NOT NULL, detail TEXT NOT NULL DEFAULT ''"
#define TB_JOURNAL_PATH_MAX 4096
/* journal_size_limit: what the WAL is cut back to after a restart */
#define JOURNAL_WAL_LIMIT_STR "67108864"

static const char schema_sql[] =
    /* seq is the arrival order and the inbox cursor; AUTOINCREMENT so a
     * pruned seq is never handed out again and cursors stay valid. */
    "CREATE TABLE inbound ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL,"
    " service TEXT, corr TEXT, digest TEXT NOT NULL,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " envelope BLOB NOT NULL, receipt BLOB NOT NULL,"
    " acked INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),"
    /* schema 3: when the city collected it; retention counts from here */
    " acked_at INTEGER);"
    /* Partial indexes: the inbox scan and the prune touch only the rows
     * they concern, however large the remembered history grows. */
    "CREATE INDEX inbound_inbox ON inbound (seq) WHERE acked = 0;"
    "CREATE INDEX inbound_prune ON inbound (expires) WHERE acked = 1;"
    /* Small rows: a message's state changes two or three times (sent,
     * delivered or failed), and each change rewrites the pages holding
     * its row.  The envelope and the receipt, written once each, live in
     * the side tables below (schema 2). */
    "CREATE TABLE outbound ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL,"
    " service TEXT, corr TEXT, digest TEXT NOT NULL,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"
    " last_error TEXT, reason TEXT, done_at INTEGER);"
    "CREATE INDEX outbound_due ON outbound (next_attempt, seq) WHERE state = 0;"
    "CREATE INDEX outbound_prune ON outbound (expires) WHERE state <> 0;"
    /* seq is assigned by us (head + 1), not AUTOINCREMENT: it is hashed,
     * so it must be known before the insert. */
    "CREATE TABLE audit (" AUDIT_COLS ");";

/* Schema 2: the outbound envelope and receipt, apart from the state row
 * (deleted with it). */
static const char side_sql[] =
    "CREATE TABLE IF NOT EXISTS outbound_env ("
    " seq INTEGER PRIMARY KEY REFERENCES outbound (seq) ON DELETE CASCADE,"
    " envelope BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbound_receipt ("
    " seq INTEGER PRIMARY KEY REFERENCES outbound (seq) ON DELETE CASCADE,"
    " receipt BLOB NOT NULL);";

/* Schema 1 kept both in the outbound row: moved out, columns dropped. */
static const char migrate_v2_sql[] =
    "INSERT INTO outbound_env (seq, envelope) SELECT seq, envelope FROM outbound;"
    "INSERT INTO outbound_receipt (seq, receipt)"
    " SELECT seq, receipt FROM outbound WHERE receipt IS NOT NULL;"
    "ALTER TABLE outbound DROP COLUMN envelope;"
    "ALTER TABLE outbound DROP COLUMN receipt;";

/* Schema 2 -> 3: the audit table rebuilt with admin entries allowed and a
 * detail column (SQLite cannot change a CHECK constraint in place); the
 * entries and their hashes are copied as they are. */
static const char migrate_v3_sql[] =
    "CREATE TABLE audit_v3 (" AUDIT_COLS ");"
    "INSERT INTO audit_v3 (seq, prev, dir, msgid, digest, peer, at, event, hash)"
    " SELECT seq, prev, dir, msgid, digest, peer, at, event, hash FROM audit;"
    "DROP TABLE audit;"
    "ALTER TABLE audit_v3 RENAME TO audit;";
/* Schema 3 -> 4: the time an inbound message was acknowledged, which the
 * retention counts from.  Messages acknowledged before the upgrade count
 * from the upgrade (?1, now): none is pruned sooner than retention after
 * the first start of a build that prunes by it. */
static const char migrate_v4_sql[] = "ALTER TABLE inbound ADD COLUMN acked_at INTEGER;";
static const char migrate_v4_fill_sql[] = "UPDATE inbound SET acked_at = ?1 WHERE acked = 1";

/* Message flows (docs/PROTOCOL.md section 10): requests this node sent
 * that a final answer closed, and the state of each case by (requester,
 * handler, case id). */
static const char flows_sql[] =
    "CREATE TABLE IF NOT EXISTS closed_requests ("
    " id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS cases ("
    " requester TEXT NOT NULL, handler TEXT NOT NULL, case_id TEXT NOT NULL,"
    " state INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " PRIMARY KEY (requester, handler, case_id)) WITHOUT ROWID;";

enum sid {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_UNIT,
	ST_UNIT_UNDO,
	ST_UNIT_END,
	ST_IN_PUT,
	ST_IN_RECEIPT,
	ST_IN_EXISTS,
	ST_INBOX_LIST,
	ST_INBOX_ACK,
	ST_INBOX_COUNT,
	ST_OUT_PUT,
	ST_OUT_PUT_ENV,
	ST_OUT_DUE,
	ST_OUT_DELIVERED,
	ST_OUT_RECEIPT,
	ST_OUT_RETRY,
	ST_OUT_FAILED,
	ST_OUT_RESCHEDULE,
	ST_OUT_RELEASE,
	ST_OUT_STATUS,
	ST_OUT_PENDING,
	ST_OUT_NEXT,
	ST_OUT_QUEUED_BY,
	ST_PRUNE_IN,
	ST_PRUNE_OUT,
	ST_AUDIT_HEAD,
	ST_AUDIT_ADD,
	ST_AUDIT_AT,
	ST_AUDIT_FIRST,
	ST_REQ_CLOSED,
	ST_REQ_CLOSE,
	ST_CASE_GET,
	ST_CASE_SET,
	ST_IN_GET,
	ST_OUT_ENV,
	ST_SYNC_NORMAL,
	ST_SYNC_FULL,
	ST_RETIRE_IN,
	ST_RETIRE_OUT,
	ST_DEL_IN,
	ST_DEL_OUT,
	ST__COUNT
};

#define MSG_COLS "id, sender, recipient, type, service, corr, digest, created, expires, envelope"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    /* prepared once: tb_journal_begin_nosync switches around a transaction */
    [ST_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
    [ST_SYNC_FULL] = "PRAGMA synchronous = FULL",
    [ST_ROLLBACK] = "ROLLBACK",
    /* a state change with its audit entry (unit_begin/unit_end) */
    [ST_UNIT] = "SAVEPOINT tb_unit",
    [ST_UNIT_UNDO] = "ROLLBACK TO tb_unit",
    [ST_UNIT_END] = "RELEASE tb_unit",
    /* ON CONFLICT on the id only: any other constraint failure is a real
     * error, which INSERT OR IGNORE would swallow. */
    [ST_IN_PUT] = "INSERT INTO inbound (" MSG_COLS ", receipt)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                  " ON CONFLICT (id) DO NOTHING",
    [ST_IN_RECEIPT] = "SELECT receipt, digest, sender FROM inbound WHERE id = ?1",
    [ST_IN_EXISTS] = "SELECT 1 FROM inbound WHERE id = ?1",
    [ST_INBOX_LIST] = "SELECT seq, " MSG_COLS ", receipt FROM inbound"
                      " WHERE acked = 0 AND seq > ?1 ORDER BY seq LIMIT ?2",
    [ST_INBOX_ACK] = "UPDATE inbound SET acked = 1, acked_at = ?2 WHERE id = ?1 AND acked = 0",
    [ST_INBOX_COUNT] = "SELECT count(*) FROM inbound WHERE acked = 0",
    /* ?10, the envelope, goes to outbound_env (ST_OUT_PUT_ENV) */
    [ST_OUT_PUT] = "INSERT INTO outbound (id, sender, recipient, type, service, corr, digest,"
                   " created, expires, next_attempt)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11)"
                   " ON CONFLICT (id) DO NOTHING",
    [ST_OUT_PUT_ENV] = "INSERT INTO outbound_env (seq, envelope) VALUES (?1, ?2)",
    [ST_OUT_DUE] = "SELECT o.id, o.sender, o.recipient, o.type, o.service, o.corr, o.digest,"
                   " o.created, o.expires, e.envelope, o.attempts, o.next_attempt,"
                   " o.last_error FROM outbound o JOIN outbound_env e ON e.seq = o.seq"
                   " WHERE o.state = 0 AND o.next_attempt <= ?1"
                   " ORDER BY o.next_attempt, o.seq LIMIT ?2",
    [ST_OUT_DELIVERED] = "UPDATE outbound SET state = 1, done_at = ?2,"
                         " attempts = max(attempts, 1) WHERE id = ?1 AND state = 0",
    /* not UPDATE ... RETURNING: that materialises into a temporary table */
    [ST_OUT_RECEIPT] = "INSERT INTO outbound_receipt (seq, receipt)"
                       " SELECT seq, ?2 FROM outbound WHERE id = ?1",
    [ST_OUT_RETRY] = "UPDATE outbound SET attempts = attempts + 1, next_attempt = ?2,"
                     " last_error = ?3 WHERE id = ?1 AND state = 0",
    [ST_OUT_RESCHEDULE] = "UPDATE outbound SET next_attempt = ?2 WHERE id = ?1 AND state = 0",
    [ST_OUT_RELEASE] = "UPDATE outbound SET next_attempt = ?1"
                       " WHERE state = 0 AND last_error IS NULL AND next_attempt > ?1",
    [ST_OUT_FAILED] = "UPDATE outbound SET state = 2, reason = ?2, done_at = ?3"
                      " WHERE id = ?1 AND state = 0",
    [ST_OUT_STATUS] = "SELECT o.state, o.attempts, o.next_attempt, o.done_at, o.last_error,"
                      " o.reason, r.receipt, o.sender, o.recipient, o.type, o.digest, o.corr"
                      " FROM outbound o LEFT JOIN outbound_receipt r ON r.seq = o.seq"
                      " WHERE o.id = ?1",
    [ST_OUT_PENDING] = "SELECT count(*) FROM outbound WHERE state = 0",
    [ST_OUT_NEXT] = "SELECT min(next_attempt) FROM outbound WHERE state = 0",
    [ST_OUT_QUEUED_BY] = "SELECT recipient, count(*) FROM outbound WHERE state = 0"
                         " GROUP BY recipient ORDER BY recipient",
    [ST_PRUNE_IN] = "DELETE FROM inbound WHERE acked = 1 AND expires < ?1",
    [ST_PRUNE_OUT] = "DELETE FROM outbound WHERE state <> 0 AND expires < ?1",
    [ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [ST_AUDIT_ADD] = "INSERT INTO audit (seq, prev, dir, msgid, digest, peer, at, event, hash,"
                     " detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_AUDIT_AT] = "SELECT hash FROM audit WHERE seq = ?1",
    [ST_AUDIT_FIRST] = "SELECT dir, event, detail FROM audit WHERE seq = 1",
    [ST_REQ_CLOSED] = "SELECT 1 FROM closed_requests WHERE id = ?1",
    [ST_REQ_CLOSE] = "INSERT OR IGNORE INTO closed_requests (id, at) VALUES (?1, ?2)",
    [ST_CASE_GET] = "SELECT state FROM cases WHERE requester = ?1 AND handler = ?2 AND"
                    " case_id = ?3",
    [ST_CASE_SET] = "INSERT INTO cases (requester, handler, case_id, state, updated)"
                    " VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER), ?5)"
                    " ON CONFLICT (requester, handler, case_id) DO UPDATE SET"
                    " state = excluded.state, updated = excluded.updated",
    [ST_IN_GET] = "SELECT sender, type, service, corr, digest, acked, envelope FROM inbound"
                  " WHERE id = ?1",
    /* retention: finished messages past both bounds (?1 expiry, ?2 the
     * time they finished), oldest first; the partial prune indexes hold
     * exactly the finished ones */
    [ST_RETIRE_IN] = "SELECT seq, id, digest, sender, type, coalesce(acked_at, expires),"
                     " envelope, receipt FROM inbound WHERE acked = 1 AND expires < ?1"
                     " AND coalesce(acked_at, expires) <= ?2 ORDER BY seq LIMIT ?3",
    [ST_RETIRE_OUT] = "SELECT o.seq, o.id, o.digest, o.recipient, o.type, o.done_at, e.envelope,"
                      " r.receipt, o.state FROM outbound o"
                      " LEFT JOIN outbound_env e ON e.seq = o.seq"
                      " LEFT JOIN outbound_receipt r ON r.seq = o.seq"
                      " WHERE o.state <> 0 AND o.expires < ?1 AND coalesce(o.done_at, 0) <= ?2"
                      " ORDER BY o.seq LIMIT ?3",
    [ST_DEL_IN] = "DELETE FROM inbound WHERE seq = ?1",
    /* the envelope and receipt rows go with it (ON DELETE CASCADE) */
    [ST_DEL_OUT] = "DELETE FROM outbound WHERE seq = ?1",
    [ST_OUT_ENV] = "SELECT e.envelope FROM outbound o JOIN outbound_env e ON e.seq = o.seq"
                   " WHERE o.id = ?1",
};

/* WAL frames after which a checkpoint is due: SQLite's own default. */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_NICE 10 /* added to the checkpoint thread's nice value */

/*
 * Checkpoints (copying WAL frames into the database file, and its fsync)
 * run on a thread of their own with its own connection, so that the
 * node's loop never stalls for one: the WAL hook of the loop's
 * connection only signals the thread.  PASSIVE checkpoints never block
 * the writer.
 */
struct checkpointer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, due, stop;
	uint64_t done; /* checkpoints run (tb_journal_checkpoints) */
	char *path;
};

struct tb_journal {
	sqlite3 *db;
	/* a postgresql:// journal: every call goes to journal_pg.c (db unused) */
	struct tb_jpg *pg;
	char *uri;
	sqlite3_stmt *st[ST__COUNT];
	struct checkpointer ck;
	bool in_tx;   /* between a successful begin and commit/rollback */
	bool lazy;    /* synchronous=NORMAL until the transaction ends */
	bool aborted; /* SQLite rolled the caller's transaction back itself */
	int abort_code; /* why: TB_E_JOURNAL_FULL (no room), else TB_E_IO */
	/* The audit chain's head as this connection's open transaction left
	 * it: inside BEGIN IMMEDIATE no other connection can append, so only
	 * the first append of a transaction reads it from the table. */
	bool head_cached;
	int64_t head_seq;
	uint8_t head_hash[32];
	/* the hash a new chain starts with; the chain's own once entry 1 has
	 * been read (it never changes after that) */
	enum tb_audit_hash audit_new;
	bool chain_known;
	enum tb_audit_hash chain_hash;
	/* entries appended since the last durable commit: the head hook is
	 * told the new head after the next one (tb_journal_set_head_hook) */
	bool audit_touched;
	tb_journal_head_fn on_head;
	void *on_head_ctx;
	struct tb_diag diag;
};

/* ---- helpers ---- */

/* Maps the connection's last SQLite error to a tb_err and records it. */
static int
db_fail(sqlite3 *db, struct tb_diag *d, const char *what)
{
	int code = sqlite3_errcode(db), err;

	switch (code) {
	case SQLITE_NOMEM: err = TB_E_NOMEM; break;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT: err = TB_E_JOURNAL_CORRUPT; break;
	/* no room: SQLite's own verdict, or a write the kernel refused for
	 * want of space (an I/O error whose errno is ENOSPC, EDQUOT, or
	 * EFBIG for a file-size limit) */
	case SQLITE_FULL: err = TB_E_JOURNAL_FULL; break;
	case SQLITE_IOERR: {
		int e = sqlite3_system_errno(db);
		err = e == ENOSPC || e == EDQUOT || e == EFBIG ? TB_E_JOURNAL_FULL : TB_E_IO;
		break;
	}
	default: err = TB_E_IO; break;
	}
	return tb_diag_set(d, err, TB_DIAG_NOPOS, "%s: %s", what, sqlite3_errmsg(db));
}

static int
jfail(struct tb_journal *j, const char *what)
{
	/* After SQLITE_FULL, IOERR, NOMEM or BUSY inside a transaction SQLite
	 * may roll the whole transaction back.  Remember it: later calls would
	 * otherwise run in autocommit and be stored piecemeal, outside the
	 * batch the caller believes is open. */
	int rc = db_fail(j->db, &j->diag, what);

	if (j->in_tx && sqlite3_get_autocommit(j->db)) {
		j->aborted = true;
		j->abort_code = rc == TB_E_JOURNAL_FULL ? rc : TB_E_IO;
	}
	return rc;
}

static int
jarg(struct tb_journal *j, const char *what)
{
	return tb_diag_set(&j->diag, TB_E_ARG, TB_DIAG_NOPOS, "%s", what);
}

/* Entry check for every operation: clears the diag, refuses to work inside
 * a transaction SQLite has already abandoned. */
static int
ready(struct tb_journal *j)
{
	if (j == NULL)
		return TB_E_ARG;
	tb_diag_clear(&j->diag);
	if (j->aborted)
		return tb_diag_set(&j->diag, j->abort_code ? j->abort_code : TB_E_IO, TB_DIAG_NOPOS,
		                   "transaction was aborted by an earlier error; roll it back");
	return TB_OK;
}

/* The cached statement id, reset and unbound, ready to bind. */
static sqlite3_stmt *
st(struct tb_journal *j, enum sid id)
{
	sqlite3_stmt *s = j->st[id];

	/* reset returns the previous step's error, already handled there */
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
	return s;
}

/* Steps a statement that returns no rows; resets it. */
static int
run(struct tb_journal *j, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		rc = jfail(j, what);
		(void)sqlite3_reset(s);
		return rc;
	}
	(void)sqlite3_reset(s);
	return TB_OK;
}

static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	/* SQLITE_STATIC: every statement is stepped before the call returns,
	 * while the caller's borrowed strings are still alive. */
	return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int
bind_blob(sqlite3_stmt *s, int i, const uint8_t *p, size_t n)
{
	/* zeroblob keeps a NOT NULL column satisfied for an empty value */
	if (n == 0)
		return sqlite3_bind_zeroblob(s, i, 0);
	return sqlite3_bind_blob64(s, i, p, n, SQLITE_STATIC);
}

static int
col_buf(sqlite3_stmt *s, int i, struct tb_buf *out)
{
	/* blob before bytes, as SQLite's documentation requires */
	const void *p = sqlite3_column_blob(s, i);
	int n = sqlite3_column_bytes(s, i);

	tb_buf_reset(out);
	if (n <= 0)
		return tb_buf_reserve(out, 0);
	return tb_buf_add(out, p, (size_t)n);
}

static const char *
col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
is_hex(const char *s, size_t n)
{
	return s != NULL && strlen(s) == n && tb_hex_valid(s, n);
}

static bool
nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Checks the fields every journalled message needs; what = "inbound"... */
static int
check_msg(struct tb_journal *j, const struct tb_journal_msg *m, bool need_receipt)
{
	if (m == NULL)
		return jarg(j, "message is NULL");
	if (!is_hex(m->id, 32))
		return jarg(j, "id is not 32 lowercase hex digits");
	if (!is_hex(m->digest, 64))
		return jarg(j, "digest is not 64 lowercase hex digits");
	if (!nonempty(m->from) || !nonempty(m->to) || !nonempty(m->type))
		return jarg(j, "from, to and type are required");
	if (m->envelope == NULL || m->envelope_len == 0)
		return jarg(j, "envelope is empty");
	if (need_receipt && (m->receipt == NULL || m->receipt_len == 0))
		return jarg(j, "receipt is empty");
	return TB_OK;
}

static int
bind_msg(sqlite3_stmt *s, const struct tb_journal_msg *m)
{
	if (bind_text(s, 1, m->id) != SQLITE_OK || bind_text(s, 2, m->from) != SQLITE_OK ||
	    bind_text(s, 3, m->to) != SQLITE_OK || bind_text(s, 4, m->type) != SQLITE_OK ||
	    bind_text(s, 5, m->service) != SQLITE_OK || bind_text(s, 6, m->corr) != SQLITE_OK ||
	    bind_text(s, 7, m->digest) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 8, m->created) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 9, m->expires) != SQLITE_OK ||
	    bind_blob(s, 10, m->envelope, m->envelope_len) != SQLITE_OK)
		return -1;
	return 0;
}

/* Reads MSG_COLS starting at column c into m (pointers into the row). */
static void
row_msg(sqlite3_stmt *s, int c, struct tb_journal_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->id = col_text(s, c + 0);
	m->from = col_text(s, c + 1);
	m->to = col_text(s, c + 2);
	m->type = col_text(s, c + 3);
	m->service = col_text(s, c + 4);
	m->corr = col_text(s, c + 5);
	m->digest = col_text(s, c + 6);
	m->created = sqlite3_column_int64(s, c + 7);
	m->expires = sqlite3_column_int64(s, c + 8);
	m->envelope = sqlite3_column_blob(s, c + 9);
	m->envelope_len = (size_t)sqlite3_column_bytes(s, c + 9);
}

static int audit_head(struct tb_journal *j, int64_t *seq, uint8_t hash[32]);

/* After a durable commit that appended audit entries: the head hook
 * learns the chain's committed head: the transaction's own newest entry
 * when it is known (cached), else read back (a savepoint undone inside
 * the transaction, or entries of an earlier lazy one).  Lazy commits wait
 * for the next durable one: the head must never name an entry a crash
 * could still lose. */
static void
head_committed(struct tb_journal *j, bool cached, int64_t cached_seq, const uint8_t cached_hash[32])
{
	int64_t seq;
	uint8_t hash[32];

	if (!j->audit_touched || j->lazy || j->on_head == NULL)
		return;
	j->audit_touched = false;
	/* the transaction's own newest entry is the head it committed (it
	 * held the write lock): no need to read it back */
	if (cached)
		j->on_head(j->on_head_ctx, cached_seq, cached_hash);
	else if (audit_head(j, &seq, hash) == TB_OK)
		j->on_head(j->on_head_ctx, seq, hash);
}

/* A multi-statement write joins the caller's transaction or opens its
 * own; *own says which, for tx_end. */
static int
tx_own(struct tb_journal *j, bool *own)
{
	int rc;

	*own = false;
	if (j->in_tx)
		return TB_OK;
	if ((rc = run(j, st(j, ST_BEGIN), "begin")) != TB_OK)
		return rc;
	*own = true;
	return TB_OK;
}

static int
tx_end(struct tb_journal *j, bool own, int rc)
{
	int rc2;

	if (!own)
		return rc;
	if (rc == TB_OK) {
		if ((rc2 = run(j, st(j, ST_COMMIT), "commit")) == TB_OK) {
			head_committed(j, false, 0, NULL);
			return TB_OK;
		}
		rc = rc2;
	}
	if (!sqlite3_get_autocommit(j->db))
		(void)run(j, st(j, ST_ROLLBACK), "rollback");
	j->audit_touched = false;
	return rc;
}

/* Runs a pragma/query returning one integer.  For open-time checks. */
static int
query_int(sqlite3 *db, const char *sql, int64_t *v, struct tb_diag *d)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, d, sql);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = db_fail(db, d, sql);
		sqlite3_finalize(s);
		return rc;
	}
	*v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return TB_OK;
}

static int
exec(sqlite3 *db, const char *sql, struct tb_diag *d)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, d, "schema");
	return TB_OK;
}

/*
 * Refuses files that are not our journal: a newer schema (we would
 * misread it), another application's database (application_id set to
 * something else, or tables without our version).  *version gets the
 * schema version (0: an empty database, to be initialised).
 */
static int
check_identity(sqlite3 *db, const char *path, int64_t *version, struct tb_diag *d)
{
	int64_t app, ntables;
	int rc;

	/* The first read of the file: a non-SQLite file fails here with
	 * SQLITE_NOTADB, mapped to TB_E_JOURNAL_CORRUPT. */
	if ((rc = query_int(db, "PRAGMA user_version", version, d)) != TB_OK)
		return rc;
	if ((rc = query_int(db, "PRAGMA application_id", &app, d)) != TB_OK)
		return rc;
	if (app != 0 && app != JOURNAL_APP_ID)
		return tb_diag_set(d, TB_E_JOURNAL_CORRUPT, TB_DIAG_NOPOS,
		                   "%s: SQLite database of another application (id %#" PRIx64 ")",
		                   path, app);
	if (*version > TB_JOURNAL_SCHEMA)
		return tb_diag_set(d, TB_E_JOURNAL_VERSION, TB_DIAG_NOPOS,
		                   "%s: schema %" PRId64 ", this build reads up to %d", path,
		                   *version, TB_JOURNAL_SCHEMA);
	if (*version == 0) {
		rc = query_int(db, "SELECT count(*) FROM sqlite_master", &ntables, d);
		if (rc != TB_OK)
			return rc;
		if (ntables != 0)
			return tb_diag_set(d, TB_E_JOURNAL_CORRUPT, TB_DIAG_NOPOS,
			                   "%s: SQLite database without a journal schema", path);
	} else if (app != JOURNAL_APP_ID) {
		return tb_diag_set(d, TB_E_JOURNAL_CORRUPT, TB_DIAG_NOPOS,
		                   "%s: not a Tongban journal", path);
	}
	return TB_OK;
}

/* Schema 3 -> 4, inside create_schema's transaction. */
static int
migrate_v4(sqlite3 *db, struct tb_diag *d)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = exec(db, migrate_v4_sql, d)) != TB_OK)
		return rc;
	if (sqlite3_prepare_v2(db, migrate_v4_fill_sql, -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 1, (int64_t)time(NULL)) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_DONE)
		rc = db_fail(db, d, "schema 4");
	sqlite3_finalize(s);
	return rc;
}

/* Schema 1 -> 2: envelopes and receipts move to side tables. */
static int
migrate_v2(sqlite3 *db, struct tb_diag *d)
{
	int rc = exec(db, side_sql, d);

	return rc != TB_OK ? rc : exec(db, migrate_v2_sql, d);
}

/* Schema 2 -> 3: the audit table rebuilt. */
static int
migrate_v3(sqlite3 *db, struct tb_diag *d)
{
	return exec(db, migrate_v3_sql, d);
}

/* The versioned migrations: entry v-1 brings a journal at schema v to
 * v+1, in create_schema's one transaction (all or nothing).  A new
 * journal is created at TB_JOURNAL_SCHEMA directly. */
static int (*const migrations[TB_JOURNAL_SCHEMA - 1])(sqlite3 *, struct tb_diag *) = {
    migrate_v2,
    migrate_v3,
    migrate_v4,
};

static int
create_schema(sqlite3 *db, const char *path, struct tb_diag *d)
{
	char sql[128];
	int64_t version;
	int rc;

	if ((rc = exec(db, "BEGIN IMMEDIATE", d)) != TB_OK)
		return rc;
	/* Re-read under the write lock: another process may have created the
	 * schema between our first look and now. */
	if ((rc = check_identity(db, path, &version, d)) != TB_OK)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d;",
	         TB_JOURNAL_SCHEMA, JOURNAL_APP_ID);
	if (version == 0 &&
	    ((rc = exec(db, schema_sql, d)) != TB_OK || (rc = exec(db, side_sql, d)) != TB_OK))
		goto fail;
	for (int64_t v = version; v > 0 && v < TB_JOURNAL_SCHEMA; v++)
		if ((rc = migrations[v - 1](db, d)) != TB_OK)
			goto fail;
	if (version < TB_JOURNAL_SCHEMA && (rc = exec(db, sql, d)) != TB_OK)
		goto fail;
	/* the message-flow tables came later than schema 1 */
	if ((rc = exec(db, flows_sql, d)) != TB_OK)
		goto fail;
	if ((rc = exec(db, "COMMIT", d)) != TB_OK)
		goto fail;
	return TB_OK;
fail:
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ---- background checkpoints ---- */

static void *
checkpoint_main(void *arg)
{
	struct checkpointer *c = arg;
	sqlite3 *db = NULL;

	/* Checkpoints can wait; the writers' threads cannot (a hint: if the
	 * system refuses, the thread runs as is, which only costs the
	 * writers some CPU; nothing to report). */
	if (tb_thread_lower_priority(CHECKPOINT_NICE) != 0) {
		/* ignored, as said */
	}

	/* the connection reads the schema once, which opens it in WAL mode;
	 * until then a checkpoint call is a no-op */
	if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	        SQLITE_OK ||
	    sqlite3_busy_timeout(db, JOURNAL_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
		/* without it the WAL only grows until the next open; say so */
		fprintf(stderr, "journal: checkpoint connection: %s\n",
		        db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->due && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->due = false;
		pthread_mutex_unlock(&c->mu);
		int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&c->mu);
		if (rc == SQLITE_OK)
			c->done++;
	}
	pthread_mutex_unlock(&c->mu);
	sqlite3_close(db);
	return NULL;
}

/* After each commit on any handle of the file (the primary and its
 * secondaries): pages now in the WAL. */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer *c = arg;

	/* A writer restarts the WAL from its start only when it begins after
	 * a checkpoint has copied everything; under sustained load the two
	 * keep overlapping and the file grows.  Past this bound the loop's
	 * own connection checkpoints and waits for readers, once. */
	if (pages >= CHECKPOINT_PAGES * 16) {
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	} else if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&c->mu);
		c->due = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static int
checkpointer_start(struct tb_journal *j, const char *path, struct tb_diag *d)
{
	struct checkpointer *c = &j->ck;

	if ((c->path = strdup(path)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "journal path");
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot start the checkpoint thread");
	c->started = true;
	/* replaces SQLite's automatic checkpoint on commit */
	sqlite3_wal_hook(j->db, wal_hook, c);
	return TB_OK;
}

static void
checkpointer_stop(struct tb_journal *j)
{
	struct checkpointer *c = &j->ck;

	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		c->started = false;
	}
	free(c->path);
	c->path = NULL;
}

uint64_t
tb_journal_checkpoints(struct tb_journal *j)
{
	uint64_t n;

	if (j == NULL || !j->ck.started)
		return 0;
	pthread_mutex_lock(&j->ck.mu);
	n = j->ck.done;
	pthread_mutex_unlock(&j->ck.mu);
	return n;
}

/* ---- lifetime ---- */

/* The journal and its -wal and -shm files hold message bodies: readable
 * by the node's user only.  A missing journal is created empty with mode
 * 0600 before SQLite opens it, and SQLite gives the -wal and -shm files
 * it creates the journal's mode.  Files an older build left readable by
 * others lose those bits. */
static int
private_files(const char *path, struct tb_diag *d)
{
	static const char *const ext[] = {"", "-wal", "-shm"};
	char p[TB_JOURNAL_PATH_MAX + 8];
	struct stat sb;
	int fd;

	if (strlen(path) >= TB_JOURNAL_PATH_MAX)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "journal path too long");
	/* Only a missing file is opened here: closing a descriptor of a file
	 * drops every POSIX lock the process holds on it, those of the
	 * SQLite connections already open on it too (a secondary handle is
	 * opened beside the primary), and another process could then take
	 * itself for the last user and delete the WAL under them. */
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT)
			return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", path,
			                   strerror(errno));
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", path,
			                   strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, ext[i]);
		if (stat(p, &sb) == 0 && (sb.st_mode & 077) != 0 &&
		    chmod(p, sb.st_mode & 07700) != 0)
			return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: chmod: %s", p,
			                   strerror(errno));
	}
	return TB_OK;
}

/* Busy handler of every journal connection: the node's writers (the
 * event loop and the API's ingest thread) each hold the write lock for a
 * few milliseconds, so waiting in SQLite's default steps (1, 2, 5, 10 ms
 * and up) would idle the loop far longer than the lock is held.  Polls
 * every 50 us for the first millisecond, then every 500 us, up to
 * JOURNAL_BUSY_MS in all. */
static int
busy_wait(void *arg, int count)
{
	struct timespec ts = {0, count < 20 ? 50000 : 500000};

	(void)arg;
	if (count >= 20 + JOURNAL_BUSY_MS * 2)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

void
tb_journal_library_init(void)
{
	/* SQLITE_MISUSE once SQLite is initialised: then it stays as it is */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct tb_journal *
tb_journal_open(const char *path, struct tb_diag *d)
{
	return tb_journal_open_ex(path, 0, d);
}

/* The rest of tb_journal_open_ex for a postgresql:// journal (no files,
 * no checkpoints: the flags do not apply); frees j on failure. */
static struct tb_journal *
open_pg(struct tb_journal *j, const char *uri, struct tb_diag *d)
{
	if ((j->uri = strdup(uri)) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "journal uri");
		goto fail;
	}
	if ((j->pg = tb_jpg_open(uri, &j->diag, d)) == NULL)
		goto fail;
	return j;
fail:
	tb_journal_close(j);
	return NULL;
}

struct tb_journal *
tb_journal_open_ex(const char *path, unsigned flags, struct tb_diag *d)
{
	struct tb_journal *j = NULL;
	sqlite3_stmt *s = NULL;
	const char *mode;
	int64_t version;
	int rc;

	tb_diag_clear(d);
	if (path == NULL || path[0] == '\0') {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "journal path is empty");
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "journal handle");
		return NULL;
	}
	tb_diag_clear(&j->diag);
	if (tb_jpg_is_uri(path))
		return open_pg(j, path, d);
	if (private_files(path, d) != TB_OK)
		goto fail;
	/* NOMUTEX: one thread uses the handle, SQLite's locking is wasted. */
	rc = sqlite3_open_v2(
	    path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (j->db == NULL)
			tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "sqlite3_open_v2");
		else
			tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", path,
			            sqlite3_errmsg(j->db));
		goto fail;
	}
	if (sqlite3_busy_handler(j->db, busy_wait, NULL) != SQLITE_OK) {
		db_fail(j->db, d, "busy_handler");
		goto fail;
	}
	if (check_identity(j->db, path, &version, d) != TB_OK)
		goto fail;
	/* New journals give the pages that pruning frees back to the file
	 * system (tb_journal_vacuum); the mode can only be chosen before the
	 * first table is created.  Older journals reuse their free pages. */
	if (version == 0 && exec(j->db, "PRAGMA auto_vacuum = INCREMENTAL", d) != TB_OK)
		goto fail;

	/* WAL: readers (audit verify, status) never block the writer, and a
	 * commit is one sequential append + fsync.  The mode is stored in the
	 * file; setting it must happen outside a transaction. */
	if (sqlite3_prepare_v2(j->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		db_fail(j->db, d, "journal_mode");
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(s, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: cannot enable WAL (mode %s)", path,
		            mode ? mode : "?");
		goto fail;
	}
	sqlite3_finalize(s);
	s = NULL;
	/* FULL, not WAL's usual NORMAL: NORMAL can lose the last commits on
	 * power loss, and a receipt sent for a lost message breaks the
	 * delivery promise.  Batching pays for the fsync per commit. */
	if (exec(j->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", d) != TB_OK)
		goto fail;
	/* The WAL file is cut back to this size whenever it restarts from
	 * its beginning, so a burst does not leave it large for good. */
	if (exec(j->db, "PRAGMA journal_size_limit = " JOURNAL_WAL_LIMIT_STR, d) != TB_OK)
		goto fail;
	if (version < TB_JOURNAL_SCHEMA && create_schema(j->db, path, d) != TB_OK)
		goto fail;

	for (int i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(j->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i],
		                       NULL) != SQLITE_OK) {
			db_fail(j->db, d, stmt_sql[i]);
			goto fail;
		}
	}
	if (flags & TB_JOURNAL_NO_CHECKPOINTS) {
		/* another handle's thread checkpoints: none from this one */
		(void)sqlite3_wal_autocheckpoint(j->db, 0);
	} else if (checkpointer_start(j, path, d) != TB_OK) {
		goto fail;
	}
	return j;
fail:
	sqlite3_finalize(s);
	tb_journal_close(j);
	return NULL;
}

struct tb_journal *
tb_journal_open_secondary(struct tb_journal *primary, struct tb_diag *d)
{
	struct tb_journal *j;

	if (primary != NULL && primary->pg != NULL) {
		/* its own connection */
		if ((j = tb_journal_open_ex(primary->uri, 0, d)) != NULL)
			j->audit_new = primary->audit_new;
		return j;
	}
	if (primary == NULL || !primary->ck.started) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no primary journal with checkpoints");
		return NULL;
	}
	if ((j = tb_journal_open_ex(primary->ck.path, TB_JOURNAL_NO_CHECKPOINTS, d)) != NULL) {
		sqlite3_wal_hook(j->db, wal_hook, &primary->ck);
		/* its entries extend the same chain: the same head hook */
		j->on_head = primary->on_head;
		j->on_head_ctx = primary->on_head_ctx;
		j->audit_new = primary->audit_new;
	}
	return j;
}

void
tb_journal_close(struct tb_journal *j)
{
	if (j == NULL)
		return;
	tb_jpg_close(j->pg);
	free(j->uri);
	checkpointer_stop(j);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(j->st[i]);
	/* An open transaction is rolled back by sqlite3_close: a batch the
	 * caller never committed was never answered, so dropping it is right. */
	if (j->db != NULL)
		sqlite3_close(j->db);
	free(j);
}

const struct tb_diag *
tb_journal_diag(const struct tb_journal *j)
{
	return &j->diag;
}

/* ---- group commit ---- */

/* Back to synchronous=FULL after a lazy transaction; rc is the outcome
 * so far, which a failure to restore overrides.  Until it is restored,
 * lazy stays set and tb_journal_begin() tries again before it opens a
 * durable transaction, or refuses to. */
static int
end_lazy(struct tb_journal *j, int rc)
{
	if (!j->lazy)
		return rc;
	if (run(j, st(j, ST_SYNC_FULL), "synchronous=FULL") != TB_OK)
		return tb_diag_set(&j->diag, TB_E_IO, TB_DIAG_NOPOS,
		                   "cannot restore synchronous=FULL after a lazy commit");
	j->lazy = false;
	return rc;
}

/* Opens a transaction; lazy ones commit without fsync (synchronous=
 * NORMAL, which SQLite lets change only outside a transaction).  A
 * durable one first restores FULL if an earlier lazy one could not. */
static int
begin(struct tb_journal *j, bool lazy)
{
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (j->pg != NULL) {
		if (j->in_tx)
			return jarg(j, "transaction already open");
		if ((rc = tb_jpg_begin(j->pg, lazy)) == TB_OK) {
			j->in_tx = true;
			j->lazy = lazy;
		}
		return rc;
	}
	if (j->in_tx)
		return jarg(j, "transaction already open");
	if (lazy) {
		/* In WAL mode synchronous=NORMAL commits without fsync; the
		 * next synchronous=FULL commit syncs the WAL, these frames
		 * included. */
		if ((rc = run(j, st(j, ST_SYNC_NORMAL), "synchronous=NORMAL")) != TB_OK)
			return rc;
		j->lazy = true;
	} else if ((rc = end_lazy(j, TB_OK)) != TB_OK) {
		return rc;
	}
	if ((rc = run(j, st(j, ST_BEGIN), "begin")) != TB_OK)
		return end_lazy(j, rc);
	j->in_tx = true;
	j->head_cached = false;
	return TB_OK;
}

int
tb_journal_ping(struct tb_journal *j)
{
	if (j == NULL)
		return TB_E_ARG;
	tb_diag_clear(&j->diag);
	return j->pg != NULL ? tb_jpg_ping(j->pg) : TB_OK;
}

int
tb_journal_begin(struct tb_journal *j)
{
	return begin(j, false);
}

int
tb_journal_begin_nosync(struct tb_journal *j)
{
	return begin(j, true);
}

int
tb_journal_commit(struct tb_journal *j)
{
	bool was_lazy, cached;
	int rc;

	if (j == NULL)
		return TB_E_ARG;
	was_lazy = j->lazy;
	tb_diag_clear(&j->diag);
	if (j->pg != NULL) {
		int64_t seq = 0;
		uint8_t hash[32];
		bool wrote;

		rc = tb_jpg_commit(j->pg);
		j->in_tx = j->lazy = false;
		/* the head the commit wrote, not read back */
		wrote = rc == TB_OK && tb_jpg_committed_head(j->pg, &seq, hash);
		if (rc != TB_OK)
			j->audit_touched = false;
		else if (!was_lazy)
			head_committed(j, wrote, seq, hash);
		return rc;
	}
	if (!j->in_tx)
		return jarg(j, "no transaction open");
	if (j->aborted) {
		rc = tb_diag_set(&j->diag, j->abort_code ? j->abort_code : TB_E_IO, TB_DIAG_NOPOS,
		                 "transaction was aborted by an earlier error; nothing stored");
		goto done;
	}
	if ((rc = run(j, st(j, ST_COMMIT), "commit")) == TB_OK)
		goto done;
	/* A failed COMMIT (e.g. SQLITE_BUSY) may leave the transaction open;
	 * the contract is all or nothing, so close it. */
	if (!sqlite3_get_autocommit(j->db))
		(void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
done:
	cached = j->head_cached;
	j->in_tx = false;
	j->aborted = false;
	j->head_cached = false;
	rc = end_lazy(j, rc);
	if (rc != TB_OK)
		j->audit_touched = false;
	else if (!was_lazy)
		head_committed(j, cached, j->head_seq, j->head_hash);
	return rc;
}

int
tb_journal_rollback(struct tb_journal *j)
{
	int rc = TB_OK;

	if (j == NULL)
		return TB_E_ARG;
	tb_diag_clear(&j->diag);
	if (j->pg != NULL) {
		j->in_tx = j->lazy = j->audit_touched = false;
		return tb_jpg_rollback(j->pg);
	}
	if (!j->in_tx)
		return jarg(j, "no transaction open");
	if (!sqlite3_get_autocommit(j->db))
		rc = run(j, st(j, ST_ROLLBACK), "rollback");
	j->in_tx = false;
	j->aborted = false;
	j->head_cached = false;
	j->audit_touched = false;
	return end_lazy(j, rc);
}

/* ---- inbound ---- */

/* Fetches inbound id's receipt into out (may be NULL: existence only).
 * With match, the receipt is only handed out when the stored message has
 * the same digest and sender: an id reused by a different message is a
 * replay or forgery attempt, not a retransmission, and gets no receipt. */
static int
inbound_receipt(struct tb_journal *j, const char *id, struct tb_buf *out,
                const struct tb_journal_msg *match)
{
	const char *dg, *from;

	sqlite3_stmt *s = st(j, ST_IN_RECEIPT);
	int rc;

	if (bind_text(s, 1, id) != SQLITE_OK)
		return jfail(j, "bind");
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "inbound %s", id);
	} else if (rc != SQLITE_ROW) {
		rc = jfail(j, "inbound receipt");
	} else {
		rc = TB_OK;
		dg = col_text(s, 1);
		from = col_text(s, 2);
		if (match != NULL &&
		    (dg == NULL || from == NULL || strcmp(dg, match->digest) != 0 ||
		     strcmp(from, match->from) != 0))
			rc = tb_diag_set(&j->diag, TB_E_REPLAY, TB_DIAG_NOPOS,
			                 "inbound %s: id reused by a different message", id);
		else if (out != NULL && col_buf(s, 0, out) != TB_OK)
			rc = tb_diag_set(&j->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "receipt");
	}
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_inbound_put(struct tb_journal *j, const struct tb_journal_msg *m,
                       struct tb_buf *orig_receipt)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (orig_receipt != NULL)
		tb_buf_reset(orig_receipt);
	if ((rc = check_msg(j, m, true)) != TB_OK)
		return rc;
	if (j->pg != NULL)
		return tb_jpg_inbound_put(j->pg, m, orig_receipt);
	s = st(j, ST_IN_PUT);
	if (bind_msg(s, m) != 0 || bind_blob(s, 11, m->receipt, m->receipt_len) != SQLITE_OK)
		return jfail(j, "bind");
	if ((rc = run(j, s, "inbound put")) != TB_OK)
		return rc;
	if (sqlite3_changes(j->db) == 1)
		return TB_OK;
	/* The id was there already: answer the duplicate with the receipt
	 * sent the first time (the same transaction, so it is there). */
	if ((rc = inbound_receipt(j, m->id, orig_receipt, m)) != TB_OK)
		return rc;
	return tb_diag_set(&j->diag, TB_E_REPLAY, TB_DIAG_NOPOS, "inbound %s", m->id);
}

int
tb_journal_inbound_receipt(struct tb_journal *j, const char *id, struct tb_buf *out)
{
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (out == NULL || !is_hex(id, 32))
		return jarg(j, "bad id or output");
	if (j->pg != NULL)
		return tb_jpg_inbound_receipt(j->pg, id, out);
	return inbound_receipt(j, id, out, NULL);
}

/* The checks both prefetches make: a transaction open, n ids each 32
 * hex digits (id(v, i) the i-th of v). */
static int
prefetch_args(struct tb_journal *j, const void *v, size_t n,
              const char *(*id)(const void *v, size_t i))
{
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!j->in_tx || (n > 0 && v == NULL))
		return jarg(j, "prefetch outside a transaction");
	for (size_t i = 0; i < n; i++)
		if (!is_hex(id(v, i), 32))
			return jarg(j, "bad id");
	return TB_OK;
}

static const char *
id_of_ptrs(const void *v, size_t i)
{
	return ((const char *const *)v)[i];
}

static const char *
id_of_arrays(const void *v, size_t i)
{
	return ((const char(*)[33])v)[i];
}

int
tb_journal_inbound_prefetch(struct tb_journal *j, const char *const *ids, size_t n)
{
	int rc = prefetch_args(j, ids, n, id_of_ptrs);

	if (rc != TB_OK)
		return rc;
	return j->pg != NULL ? tb_jpg_inbound_prefetch(j->pg, ids, n) : TB_OK;
}

/* ---- inbox ---- */

/* SQLite's LIMIT: a negative value means none. */
static int64_t
sql_limit(size_t limit)
{
	return limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
}

int
tb_journal_inbox_list(struct tb_journal *j, size_t limit, int64_t after_seq, tb_journal_inbox_cb cb,
                      void *ctx)
{
	struct tb_journal_msg m;
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (cb == NULL)
		return jarg(j, "callback is NULL");
	if (j->pg != NULL)
		return tb_jpg_inbox_list(j->pg, limit, after_seq, cb, ctx);
	s = st(j, ST_INBOX_LIST);
	if (sqlite3_bind_int64(s, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, sql_limit(limit)) != SQLITE_OK)
		return jfail(j, "bind");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_msg(s, 1, &m);
		m.receipt = sqlite3_column_blob(s, 11);
		m.receipt_len = (size_t)sqlite3_column_bytes(s, 11);
		if ((rc = cb(ctx, sqlite3_column_int64(s, 0), &m)) != 0) {
			(void)sqlite3_reset(s);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		rc = jfail(j, "inbox list");
	else
		rc = TB_OK;
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_inbox_ack(struct tb_journal *j, const char *id)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!is_hex(id, 32))
		return jarg(j, "id is not 32 lowercase hex digits");
	if (j->pg != NULL)
		return tb_jpg_inbox_ack(j->pg, id);
	s = st(j, ST_INBOX_ACK);
	if (bind_text(s, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, (int64_t)time(NULL)) != SQLITE_OK)
		return jfail(j, "bind");
	if ((rc = run(j, s, "inbox ack")) != TB_OK)
		return rc;
	if (sqlite3_changes(j->db) == 1)
		return TB_OK;
	/* Nothing changed: acknowledged before (fine), or unknown. */
	return inbound_receipt(j, id, NULL, NULL);
}

/* Runs a cached one-integer query. NULL result -> TB_E_NOTFOUND. */
static int
count_query(struct tb_journal *j, enum sid id, int64_t *n, const char *what)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (n == NULL)
		return jarg(j, "output is NULL");
	s = st(j, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		rc = jfail(j, what);
	} else if (sqlite3_column_type(s, 0) == SQLITE_NULL) {
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "%s: none", what);
	} else {
		*n = sqlite3_column_int64(s, 0);
		rc = TB_OK;
	}
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_inbox_count(struct tb_journal *j, int64_t *n)
{
	if (j != NULL && j->pg != NULL && n != NULL) {
		tb_diag_clear(&j->diag);
		return tb_jpg_inbox_count(j->pg, n);
	}
	return count_query(j, ST_INBOX_COUNT, n, "inbox count");
}

/* ---- outbound ---- */

const char *
tb_journal_state_name(enum tb_journal_state s)
{
	switch (s) {
	case TB_JOURNAL_QUEUED: return "queued";
	case TB_JOURNAL_DELIVERED: return "delivered";
	case TB_JOURNAL_FAILED: return "failed";
	}
	return "unknown";
}

int
tb_journal_outbound_put(struct tb_journal *j, const struct tb_journal_msg *m, int64_t next_attempt)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if ((rc = check_msg(j, m, false)) != TB_OK)
		return rc;
	if (j->pg != NULL)
		return tb_jpg_outbound_put(j->pg, m, next_attempt);
	s = st(j, ST_OUT_PUT);
	if (bind_msg(s, m) != 0 || sqlite3_bind_int64(s, 11, next_attempt) != SQLITE_OK)
		return jfail(j, "bind");
	if ((rc = run(j, s, "outbound put")) != TB_OK)
		return rc;
	if (sqlite3_changes(j->db) != 1)
		return tb_diag_set(&j->diag, TB_E_REPLAY, TB_DIAG_NOPOS, "outbound %s", m->id);
	s = st(j, ST_OUT_PUT_ENV);
	if (sqlite3_bind_int64(s, 1, sqlite3_last_insert_rowid(j->db)) != SQLITE_OK ||
	    bind_blob(s, 2, m->envelope, m->envelope_len) != SQLITE_OK)
		return jfail(j, "bind");
	return run(j, s, "outbound put");
}

int
tb_journal_outbound_due(struct tb_journal *j, int64_t now, size_t limit, tb_journal_out_cb cb,
                        void *ctx)
{
	struct tb_journal_out o;
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (cb == NULL)
		return jarg(j, "callback is NULL");
	if (j->pg != NULL)
		return tb_jpg_outbound_due(j->pg, now, limit, false, cb, ctx);
	s = st(j, ST_OUT_DUE);
	if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, sql_limit(limit)) != SQLITE_OK)
		return jfail(j, "bind");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&o, 0, sizeof(o));
		row_msg(s, 0, &o.msg);
		o.state = TB_JOURNAL_QUEUED;
		o.attempts = sqlite3_column_int64(s, 10);
		o.next_attempt = sqlite3_column_int64(s, 11);
		o.last_error = col_text(s, 12);
		if ((rc = cb(ctx, &o)) != 0) {
			(void)sqlite3_reset(s);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		rc = jfail(j, "outbound due");
	else
		rc = TB_OK;
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_outbound_claim(struct tb_journal *j, int64_t now, size_t limit, tb_journal_out_cb cb,
                          void *ctx)
{
	int rc;

	if (j == NULL || j->pg == NULL)
		return tb_journal_outbound_due(j, now, limit, cb, ctx);
	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (cb == NULL)
		return jarg(j, "callback is NULL");
	return tb_jpg_outbound_due(j->pg, now, limit, true, cb, ctx);
}

bool
tb_journal_shared(const struct tb_journal *j)
{
	return j != NULL && j->pg != NULL;
}

int
tb_journal_outbound_extend(struct tb_journal *j, const char (*ids)[33], size_t n, int64_t until)
{
	int rc;

	if (j == NULL || j->pg == NULL || n == 0)
		return TB_OK;
	if ((rc = ready(j)) != TB_OK)
		return rc;
	return tb_jpg_outbound_extend(j->pg, ids, n, until);
}

/* After an UPDATE ... WHERE state = queued changed nothing: says why. */
static int
not_queued(struct tb_journal *j, const char *id, enum tb_journal_state *state)
{
	struct tb_journal_status stt;
	int rc = tb_journal_outbound_status(j, id, &stt, NULL);

	if (rc != TB_OK)
		return rc;
	*state = stt.state;
	return tb_diag_set(&j->diag, TB_E_JOURNAL_STATE, TB_DIAG_NOPOS, "outbound %s is %s", id,
	                   tb_journal_state_name(stt.state));
}

int
tb_journal_outbound_prefetch(struct tb_journal *j, const char (*ids)[33], size_t n)
{
	int rc = prefetch_args(j, ids, n, id_of_arrays);

	if (rc != TB_OK)
		return rc;
	return j->pg != NULL ? tb_jpg_outbound_prefetch(j->pg, ids, n) : TB_OK;
}

int
tb_journal_outbound_put_new(struct tb_journal *j, const struct tb_journal_msg *m,
                            int64_t next_attempt)
{
	int rc;

	if (j == NULL || j->pg == NULL)
		return tb_journal_outbound_put(j, m, next_attempt);
	if ((rc = ready(j)) != TB_OK)
		return rc;
	if ((rc = check_msg(j, m, false)) != TB_OK)
		return rc;
	return tb_jpg_outbound_put_new(j->pg, m, next_attempt);
}

int
tb_journal_outbound_delivered(struct tb_journal *j, const char *id, const uint8_t *receipt,
                              size_t receipt_len, int64_t at, bool *fresh)
{
	enum tb_journal_state state;
	bool fresh_;
	sqlite3_stmt *s;
	int rc;

	if (fresh == NULL)
		fresh = &fresh_;
	*fresh = false;
	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!is_hex(id, 32) || (receipt == NULL && receipt_len != 0))
		return jarg(j, "bad id or receipt");
	if (j->pg != NULL)
		return tb_jpg_outbound_delivered(j->pg, id, receipt, receipt_len, at, fresh);
	s = st(j, ST_OUT_DELIVERED);
	if (bind_text(s, 1, id) != SQLITE_OK || sqlite3_bind_int64(s, 2, at) != SQLITE_OK)
		return jfail(j, "bind");
	if ((rc = run(j, s, "outbound delivered")) != TB_OK)
		return rc;
	if (sqlite3_changes(j->db) == 1) {
		if (receipt_len != 0) {
			s = st(j, ST_OUT_RECEIPT);
			if (bind_text(s, 1, id) != SQLITE_OK ||
			    bind_blob(s, 2, receipt, receipt_len) != SQLITE_OK)
				return jfail(j, "bind");
			if ((rc = run(j, s, "outbound receipt")) != TB_OK)
				return rc;
		}
		*fresh = true;
		return TB_OK;
	}
	rc = not_queued(j, id, &state);
	if (rc == TB_E_JOURNAL_STATE && state == TB_JOURNAL_DELIVERED) {
		/* a second receipt for a delivered message: keep the first */
		tb_diag_clear(&j->diag);
		return TB_OK;
	}
	return rc;
}

/* The statement sid for the row of queued message id, with id bound as
 * ?1 after checking the handle and the id; the caller binds the rest.
 * NULL with *rc set on failure. */
static sqlite3_stmt *
queued_stmt(struct tb_journal *j, enum sid sid, const char *id, int *rc)
{
	sqlite3_stmt *s;

	if ((*rc = ready(j)) != TB_OK)
		return NULL;
	if (!is_hex(id, 32)) {
		*rc = jarg(j, "id is not 32 lowercase hex digits");
		return NULL;
	}
	if (j->pg != NULL)
		return NULL; /* *rc is TB_OK: the caller hands the call on */
	s = st(j, sid);
	if (bind_text(s, 1, id) != SQLITE_OK) {
		*rc = jfail(j, "bind");
		return NULL;
	}
	return s;
}

/* Runs s, an UPDATE of queued id's row; when it changed nothing, says
 * why (TB_E_NOTFOUND, or TB_E_JOURNAL_STATE: not queued any more). */
static int
update_queued(struct tb_journal *j, sqlite3_stmt *s, const char *id, const char *what)
{
	enum tb_journal_state state;
	int rc;

	if ((rc = run(j, s, what)) != TB_OK)
		return rc;
	if (sqlite3_changes(j->db) == 1)
		return TB_OK;
	return not_queued(j, id, &state);
}

int
tb_journal_outbound_retry(struct tb_journal *j, const char *id, int64_t next_attempt,
                          const char *last_error)
{
	int rc;
	sqlite3_stmt *s = queued_stmt(j, ST_OUT_RETRY, id, &rc);

	if (s == NULL)
		return rc != TB_OK ? rc : tb_jpg_outbound_retry(j->pg, id, next_attempt, last_error);
	if (sqlite3_bind_int64(s, 2, next_attempt) != SQLITE_OK ||
	    bind_text(s, 3, last_error) != SQLITE_OK)
		return jfail(j, "bind");
	return update_queued(j, s, id, "outbound retry");
}

int
tb_journal_outbound_reschedule(struct tb_journal *j, const char *id, int64_t next_attempt)
{
	int rc;
	sqlite3_stmt *s = queued_stmt(j, ST_OUT_RESCHEDULE, id, &rc);

	if (s == NULL)
		return rc != TB_OK ? rc : tb_jpg_outbound_reschedule(j->pg, id, next_attempt);
	if (sqlite3_bind_int64(s, 2, next_attempt) != SQLITE_OK)
		return jfail(j, "bind");
	return update_queued(j, s, id, "outbound reschedule");
}

int
tb_journal_outbound_release_held(struct tb_journal *j, int64_t now, int64_t *n)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (j->pg != NULL)
		return tb_jpg_outbound_release_held(j->pg, now, n);
	s = st(j, ST_OUT_RELEASE);
	if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
		return jfail(j, "bind");
	if ((rc = run(j, s, "outbound release")) != TB_OK)
		return rc;
	if (n != NULL)
		*n = sqlite3_changes(j->db);
	return TB_OK;
}

int
tb_journal_outbound_failed(struct tb_journal *j, const char *id, const char *reason, int64_t at)
{
	int rc;
	sqlite3_stmt *s = queued_stmt(j, ST_OUT_FAILED, id, &rc);

	if (s == NULL)
		return rc != TB_OK ? rc : tb_jpg_outbound_failed(j->pg, id, reason, at);
	if (bind_text(s, 2, reason) != SQLITE_OK || sqlite3_bind_int64(s, 3, at) != SQLITE_OK)
		return jfail(j, "bind");
	return update_queued(j, s, id, "outbound failed");
}

int
tb_journal_outbound_status(struct tb_journal *j, const char *id, struct tb_journal_status *out,
                           struct tb_buf *receipt)
{
	sqlite3_stmt *s;
	int64_t state, done_at;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!is_hex(id, 32) || out == NULL)
		return jarg(j, "bad id or output");
	memset(out, 0, sizeof(*out));
	if (receipt != NULL)
		tb_buf_reset(receipt);
	if (j->pg != NULL)
		return tb_jpg_outbound_status(j->pg, id, out, receipt);
	s = st(j, ST_OUT_STATUS);
	if (bind_text(s, 1, id) != SQLITE_OK)
		return jfail(j, "bind");
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "outbound %s", id);
		goto done;
	}
	if (rc != SQLITE_ROW) {
		rc = jfail(j, "outbound status");
		goto done;
	}
	rc = TB_OK;
	state = sqlite3_column_int64(s, 0);
	out->state = (enum tb_journal_state)state;
	out->attempts = sqlite3_column_int64(s, 1);
	out->next_attempt = sqlite3_column_int64(s, 2);
	done_at = sqlite3_column_int64(s, 3);
	if (state == TB_JOURNAL_DELIVERED)
		out->delivered_at = done_at;
	else if (state == TB_JOURNAL_FAILED)
		out->failed_at = done_at;
	copy_str(out->last_error, sizeof(out->last_error), col_text(s, 4));
	copy_str(out->reason, sizeof(out->reason), col_text(s, 5));
	copy_str(out->from, sizeof(out->from), col_text(s, 7));
	copy_str(out->to, sizeof(out->to), col_text(s, 8));
	copy_str(out->type, sizeof(out->type), col_text(s, 9));
	copy_str(out->digest, sizeof(out->digest), col_text(s, 10));
	copy_str(out->corr, sizeof(out->corr), col_text(s, 11));
	if (receipt != NULL && col_buf(s, 6, receipt) != TB_OK)
		rc = tb_diag_set(&j->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "receipt");
done:
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_outbound_pending(struct tb_journal *j, int64_t *n)
{
	if (j != NULL && j->pg != NULL && n != NULL) {
		tb_diag_clear(&j->diag);
		return tb_jpg_outbound_pending(j->pg, n);
	}
	return count_query(j, ST_OUT_PENDING, n, "outbound pending");
}

int
tb_journal_outbound_next_due(struct tb_journal *j, int64_t *when)
{
	if (j != NULL && j->pg != NULL && when != NULL) {
		tb_diag_clear(&j->diag);
		return tb_jpg_outbound_next_due(j->pg, when);
	}
	return count_query(j, ST_OUT_NEXT, when, "outbound next due");
}

int
tb_journal_outbound_queued_by(struct tb_journal *j, tb_journal_count_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (cb == NULL)
		return jarg(j, "callback is NULL");
	s = st(j, ST_OUT_QUEUED_BY);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *to = (const char *)sqlite3_column_text(s, 0);
		if ((rc = cb(ctx, to ? to : "", sqlite3_column_int64(s, 1))) != 0) {
			(void)sqlite3_reset(s);
			return rc;
		}
	}
	rc = rc == SQLITE_DONE ? TB_OK : jfail(j, "outbound queued by recipient");
	(void)sqlite3_reset(s);
	return rc;
}

/* ---- prune ---- */

int
tb_journal_prune(struct tb_journal *j, int64_t now, int64_t keep_after_expiry, size_t *removed)
{
	int64_t bound;
	size_t n = 0;
	bool own;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (removed != NULL)
		*removed = 0;
	if (keep_after_expiry < 0)
		return jarg(j, "keep_after_expiry is negative");
	/* Saturate: a bound below any time prunes nothing, never wraps. */
	if (__builtin_sub_overflow(now, keep_after_expiry, &bound))
		return TB_OK;
	if (j->pg != NULL)
		return tb_jpg_prune(j->pg, bound, removed);
	if ((rc = tx_own(j, &own)) != TB_OK)
		return rc;
	for (enum sid id = ST_PRUNE_IN; id <= ST_PRUNE_OUT; id++) {
		sqlite3_stmt *s = st(j, id);

		if (sqlite3_bind_int64(s, 1, bound) != SQLITE_OK) {
			rc = jfail(j, "bind");
			break;
		}
		if ((rc = run(j, s, "prune")) != TB_OK)
			break;
		n += (size_t)sqlite3_changes(j->db);
	}
	rc = tx_end(j, own, rc);
	if (rc == TB_OK && removed != NULL)
		*removed = n;
	return rc;
}

/* ---- retention ---- */

/* Lists the finished messages of one direction (sid ST_RETIRE_IN or
 * _OUT) into the archive a (may be NULL) and their seqs into seqs[*n..]. */
static int
retire_list(struct tb_journal *j, enum sid sid, int64_t exp_bound, int64_t done_bound,
            size_t limit, const struct tb_journal_archiver *a, int64_t *seqs, size_t *n)
{
	struct tb_journal_retired r;
	sqlite3_stmt *s = st(j, sid);
	bool in = sid == ST_RETIRE_IN;
	int rc;

	if (sqlite3_bind_int64(s, 1, exp_bound) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, done_bound) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, sql_limit(limit)) != SQLITE_OK)
		return jfail(j, "bind");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.dir = in ? 'i' : 'o';
		r.id = col_text(s, 1);
		r.digest = col_text(s, 2);
		r.peer = col_text(s, 3);
		r.type = col_text(s, 4);
		r.at = sqlite3_column_int64(s, 5);
		r.envelope = sqlite3_column_blob(s, 6);
		r.envelope_len = (size_t)sqlite3_column_bytes(s, 6);
		r.receipt = sqlite3_column_blob(s, 7);
		r.receipt_len = (size_t)sqlite3_column_bytes(s, 7);
		r.state = in ? "acked"
		             : tb_journal_state_name((enum tb_journal_state)sqlite3_column_int64(s, 8));
		if (a != NULL && (rc = a->put(a->ctx, &r)) != TB_OK) {
			/* r's strings live in the row: say why before the reset */
			rc = tb_diag_set(&j->diag, rc, TB_DIAG_NOPOS, "archive: message %s",
			                 r.id ? r.id : "?");
			(void)sqlite3_reset(s);
			return rc;
		}
		seqs[(*n)++] = sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE)
		rc = jfail(j, "retention list");
	else
		rc = TB_OK;
	(void)sqlite3_reset(s);
	return rc;
}

/* Deletes the listed rows: seqs[0..nin) inbound, the rest outbound. */
static int
retire_delete(struct tb_journal *j, const int64_t *seqs, size_t nin, size_t n)
{
	bool own;
	int rc;

	if ((rc = tx_own(j, &own)) != TB_OK)
		return rc;
	for (size_t i = 0; i < n && rc == TB_OK; i++) {
		sqlite3_stmt *s = st(j, i < nin ? ST_DEL_IN : ST_DEL_OUT);
		if (sqlite3_bind_int64(s, 1, seqs[i]) != SQLITE_OK)
			rc = jfail(j, "bind");
		else
			rc = run(j, s, "retention delete");
	}
	return tx_end(j, own, rc);
}

int
tb_journal_retire(struct tb_journal *j, int64_t now, int64_t retention, int64_t keep_after_expiry,
                  size_t limit, const struct tb_journal_archiver *a, size_t *removed)
{
	int64_t exp_bound, done_bound, *seqs = NULL;
	size_t n = 0, nin;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (removed != NULL)
		*removed = 0;
	if (retention < 0 || keep_after_expiry < 0 || limit == 0 || limit > (1u << 20) ||
	    (a != NULL && (a->put == NULL || a->sync == NULL)))
		return jarg(j, "retention: negative bound, bad limit or archiver");
	/* Saturate: a bound below any time prunes nothing, never wraps. */
	if (__builtin_sub_overflow(now, keep_after_expiry, &exp_bound) ||
	    __builtin_sub_overflow(now, retention, &done_bound))
		return TB_OK;
	if (j->pg != NULL)
		return tb_jpg_retire(j->pg, exp_bound, done_bound, limit, a, removed);
	if ((seqs = calloc(2 * limit, sizeof(*seqs))) == NULL)
		return tb_diag_set(&j->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "retention");
	/* Listed outside a transaction: the rows are final (acknowledged,
	 * delivered or failed) and past bounds that only move forward, so
	 * nothing can make them ineligible before they are deleted, and the
	 * writers are not held up while the archive compresses and syncs. */
	if ((rc = retire_list(j, ST_RETIRE_IN, exp_bound, done_bound, limit, a, seqs, &n)) != TB_OK)
		goto out;
	nin = n;
	if ((rc = retire_list(j, ST_RETIRE_OUT, exp_bound, done_bound, limit, a, seqs, &n)) !=
	    TB_OK)
		goto out;
	if (n == 0)
		goto out;
	/* archived durably before anything is deleted: a crash in between
	 * archives a message twice, never loses one */
	if (a != NULL && (rc = a->sync(a->ctx)) != TB_OK) {
		rc = tb_diag_set(&j->diag, rc, TB_DIAG_NOPOS, "archive: cannot sync");
		goto out;
	}
	if ((rc = retire_delete(j, seqs, nin, n)) == TB_OK && removed != NULL)
		*removed = n;
out:
	free(seqs);
	return rc;
}

/* One integer from a pragma on the handle's connection. */
static int
pragma_int(struct tb_journal *j, const char *sql, int64_t *v)
{
	int rc = query_int(j->db, sql, v, &j->diag);

	return rc;
}

int
tb_journal_vacuum(struct tb_journal *j, int64_t *freed)
{
	int64_t mode, pages, free_pages, n;
	char sql[64];
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (j->pg != NULL) {
		/* PostgreSQL's autovacuum gives dead rows' space back to
		 * the tables; the node has nothing to do */
		if (freed != NULL)
			*freed = 0;
		return j->in_tx ? jarg(j, "vacuum inside a transaction") : TB_OK;
	}
	if (freed != NULL)
		*freed = 0;
	if (j->in_tx)
		return jarg(j, "vacuum inside a transaction");
	if ((rc = pragma_int(j, "PRAGMA auto_vacuum", &mode)) != TB_OK ||
	    (rc = pragma_int(j, "PRAGMA page_count", &pages)) != TB_OK ||
	    (rc = pragma_int(j, "PRAGMA freelist_count", &free_pages)) != TB_OK)
		return rc;
	/* 2: INCREMENTAL.  Once more than a quarter of the file is free, it
	 * shrinks to keep free an eighth of what is in use, for the messages
	 * to come. */
	if (mode != 2 || free_pages * 4 <= pages)
		return TB_OK;
	n = free_pages - (pages - free_pages) / 8;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%" PRId64 ")", n);
	if (sqlite3_exec(j->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return jfail(j, "incremental vacuum");
	if (freed != NULL)
		*freed = n;
	return TB_OK;
}

/* ---- backup and figures ---- */

/* A read-only connection on the journal at path, checked to be one of
 * schema *version (NULL: not wanted). */
static int
open_readonly(const char *path, sqlite3 **db, int64_t *versionp, struct tb_diag *d)
{
	int64_t version;
	int rc;

	*db = NULL;
	if (path == NULL || path[0] == '\0')
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "journal path is empty");
	/* without OPEN_CREATE: a missing journal is an error, not created */
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return *db != NULL ? tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", path,
		                                 sqlite3_errmsg(*db))
		                   : tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "sqlite3_open_v2");
	if (sqlite3_busy_timeout(*db, JOURNAL_BUSY_MS) != SQLITE_OK)
		return db_fail(*db, d, "busy_timeout");
	if ((rc = check_identity(*db, path, &version, d)) != TB_OK)
		return rc;
	if (version == 0)
		return tb_diag_set(d, TB_E_JOURNAL_CORRUPT, TB_DIAG_NOPOS, "%s: empty database",
		                   path);
	if (versionp != NULL)
		*versionp = version;
	return TB_OK;
}

/* Copies src into the new file out (created 0600 by the caller). */
static int
backup_copy(sqlite3 *src, const char *out, struct tb_diag *d)
{
	sqlite3 *dst = NULL;
	sqlite3_stmt *s = NULL;
	sqlite3_backup *b;
	const char *ok;
	int64_t version;
	int rc;

	if (sqlite3_open_v2(out, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = dst != NULL ? tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", out,
		                               sqlite3_errmsg(dst))
		                 : tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "sqlite3_open_v2");
		goto out;
	}
	if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		rc = db_fail(dst, d, "backup");
		goto out;
	}
	/* All pages in one step: one read transaction on the source, so the
	 * copy is the journal as of one commit.  In WAL mode the node's
	 * writes go on meanwhile; a step may only wait for a checkpoint. */
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
		sqlite3_sleep(10);
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE) {
		rc = db_fail(dst, d, "backup");
		goto out;
	}
	/* The copy must open as a journal: check it before saying "done". */
	if ((rc = check_identity(dst, out, &version, d)) != TB_OK)
		goto out;
	if (sqlite3_prepare_v2(dst, "PRAGMA quick_check(1)", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		rc = db_fail(dst, d, "quick_check");
		goto out;
	}
	if ((ok = (const char *)sqlite3_column_text(s, 0)) == NULL || strcmp(ok, "ok") != 0)
		rc = tb_diag_set(d, TB_E_JOURNAL_CORRUPT, TB_DIAG_NOPOS, "%s: %s", out,
		                 ok ? ok : "quick_check failed");
out:
	sqlite3_finalize(s);
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == TB_OK)
		rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: close", out);
	return rc;
}

int
tb_journal_backup(const char *path, const char *out, struct tb_diag *d)
{
	sqlite3 *src = NULL;
	int fd, rc;

	if (tb_jpg_is_uri(path))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "a PostgreSQL journal is backed up with PostgreSQL's own tools: "
		                   "pg_dump -Fc (docs/ADMIN.md)");
	tb_diag_clear(d);
	if (out == NULL || out[0] == '\0')
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "backup path is empty");
	if ((rc = open_readonly(path, &src, NULL, d)) != TB_OK)
		goto done;
	/* O_EXCL: never overwrite (another backup, or the live journal) */
	if ((fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", out, strerror(errno));
		goto done;
	}
	close(fd);
	if ((rc = backup_copy(src, out, d)) != TB_OK) {
		char p[TB_JOURNAL_PATH_MAX + 8];
		(void)unlink(out);
		snprintf(p, sizeof(p), "%s-wal", out);
		(void)unlink(p);
		snprintf(p, sizeof(p), "%s-shm", out);
		(void)unlink(p);
	}
done:
	sqlite3_close(src);
	return rc;
}

int
tb_journal_stats(const char *path, struct tb_journal_stats *st, struct tb_diag *d)
{
	static const char *const sql[] = {
	    "SELECT count(*) FROM inbound WHERE acked = 0",
	    "SELECT count(*) FROM inbound WHERE acked = 1",
	    "SELECT count(*) FROM outbound WHERE state = 0",
	    "SELECT count(*) FROM outbound WHERE state = 1",
	    "SELECT count(*) FROM outbound WHERE state = 2",
	    "SELECT count(*) FROM audit",
	    "PRAGMA page_size",
	    "PRAGMA page_count",
	    "PRAGMA freelist_count",
	};
	int64_t v[sizeof(sql) / sizeof(sql[0])];
	sqlite3 *db = NULL;
	int rc;

	if (tb_jpg_is_uri(path))
		return tb_jpg_stats(path, st, d);
	tb_diag_clear(d);
	if (st == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "output is NULL");
	memset(st, 0, sizeof(*st));
	if ((rc = open_readonly(path, &db, NULL, d)) != TB_OK)
		goto out;
	/* one read transaction: the figures are of one moment */
	if ((rc = exec(db, "BEGIN", d)) != TB_OK)
		goto out;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc == TB_OK; i++)
		rc = query_int(db, sql[i], &v[i], d);
	(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != TB_OK)
		goto out;
	st->inbox = v[0];
	st->inbound_acked = v[1];
	st->queued = v[2];
	st->delivered = v[3];
	st->failed = v[4];
	st->audit = v[5];
	st->bytes = v[6] * v[7];
	st->free_bytes = v[6] * v[8];
out:
	sqlite3_close(db);
	return rc;
}

/* ---- audit chain ---- */

static int
put_lp(struct tb_buf *b, const char *s)
{
	size_t n = strlen(s);
	uint8_t len[4];

	if (n > UINT32_MAX)
		return TB_E_ARG;
	len[0] = (uint8_t)(n >> 24);
	len[1] = (uint8_t)(n >> 16);
	len[2] = (uint8_t)(n >> 8);
	len[3] = (uint8_t)n;
	if (tb_buf_add(b, len, 4) != TB_OK || tb_buf_add(b, s, n) != TB_OK)
		return TB_E_NOMEM;
	return TB_OK;
}

static void
be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

int
tb_journal_audit_hash(int64_t seq, const uint8_t prev[32], char dir, const char *msgid,
                      const char *digest_hex, const char *peer, int64_t at, const char *event,
                      uint8_t out[32])
{
	return tb_journal_audit_hash_ex(seq, prev, dir, msgid, digest_hex, peer, at, event, "",
	                                out);
}

int
tb_journal_audit_hash_ex(int64_t seq, const uint8_t prev[32], char dir, const char *msgid,
                         const char *digest_hex, const char *peer, int64_t at, const char *event,
                         const char *detail, uint8_t out[32])
{
	return tb_journal_audit_hash_h(TB_AUDIT_SHA256, seq, prev, dir, msgid, digest_hex, peer, at,
	                               event, detail, out);
}

const char *
tb_journal_audit_hash_name(enum tb_audit_hash h)
{
	return h == TB_AUDIT_SM3 ? "sm3" : "sha256";
}

int
tb_journal_audit_chain_hash(char dir, const char *event, const char *detail, enum tb_audit_hash *h)
{
	*h = TB_AUDIT_SHA256;
	if (dir != 'a' || event == NULL || strcmp(event, AUDIT_CHAIN_EVENT) != 0)
		return TB_OK;
	if (detail != NULL && strcmp(detail, "hash=sm3") == 0)
		*h = TB_AUDIT_SM3;
	else if (detail == NULL || strcmp(detail, "hash=sha256") != 0)
		return TB_E_AUDIT;
	return TB_OK;
}

void
tb_journal_set_audit_hash(struct tb_journal *j, enum tb_audit_hash h)
{
	if (j != NULL)
		j->audit_new = h;
}

int
tb_journal_audit_hash_h(enum tb_audit_hash h, int64_t seq, const uint8_t prev[32], char dir,
                        const char *msgid, const char *digest_hex, const char *peer, int64_t at,
                        const char *event, const char *detail, uint8_t out[32])
{
	struct tb_buf b;
	uint8_t n8[8], d8 = (uint8_t)dir;
	int rc = TB_E_NOMEM;

	if (prev == NULL || msgid == NULL || digest_hex == NULL || peer == NULL || event == NULL ||
	    detail == NULL || out == NULL)
		return TB_E_ARG;
	tb_buf_init(&b);
	if (tb_buf_add(&b, AUDIT_TAG, strlen(AUDIT_TAG)) != TB_OK)
		goto fail;
	be64(n8, (uint64_t)seq);
	if (tb_buf_add(&b, n8, 8) != TB_OK || tb_buf_add(&b, prev, 32) != TB_OK ||
	    tb_buf_add(&b, &d8, 1) != TB_OK)
		goto fail;
	if ((rc = put_lp(&b, msgid)) != TB_OK || (rc = put_lp(&b, digest_hex)) != TB_OK ||
	    (rc = put_lp(&b, peer)) != TB_OK)
		goto fail;
	be64(n8, (uint64_t)at);
	if (tb_buf_add(&b, n8, 8) != TB_OK) {
		rc = TB_E_NOMEM;
		goto fail;
	}
	if ((rc = put_lp(&b, event)) != TB_OK)
		goto fail;
	/* schema 3: a detail is hashed when there is one, so every entry
	 * written before it keeps its hash */
	if (detail[0] != '\0' && (rc = put_lp(&b, detail)) != TB_OK)
		goto fail;
	if (h == TB_AUDIT_SM3)
		tb_sm3_hash(b.data, b.len, out);
	else
		tb_sha256(b.data, b.len, out);
	rc = TB_OK;
fail:
	tb_buf_free(&b);
	return rc;
}

/* The chain head as of the current transaction: seq 0 and zero hash when
 * empty. */
static int
audit_head(struct tb_journal *j, int64_t *seq, uint8_t hash[32])
{
	sqlite3_stmt *s;
	const char *hex;
	int rc;

	if (j->pg != NULL)
		return tb_jpg_audit_head(j->pg, seq, hash);
	s = st(j, ST_AUDIT_HEAD);
	rc = sqlite3_step(s);

	*seq = 0;
	memset(hash, 0, 32);
	if (rc == SQLITE_DONE) {
		rc = TB_OK;
	} else if (rc != SQLITE_ROW) {
		rc = jfail(j, "audit head");
	} else {
		*seq = sqlite3_column_int64(s, 0);
		hex = col_text(s, 1);
		rc = TB_OK;
		/* Extending a chain whose head is damaged would hide the damage
		 * behind a valid-looking link. */
		if (hex == NULL || strlen(hex) != 64 || !tb_hex_decode(hex, 64, hash, 32))
			rc = tb_diag_set(&j->diag, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "audit head %" PRId64 " has a malformed hash", *seq);
	}
	(void)sqlite3_reset(s);
	return rc;
}

static int audit_add(struct tb_journal *j, char dir, const char *msgid, const char *digest_hex,
                     const char *peer, int64_t at, const char *event, const char *detail);

/* Printable ASCII without '"' and '\\', at most max bytes: what an entry's
 * free-text fields may hold, so that exported lines need no escapes. */
static bool
audit_text(const char *s, size_t max)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e ||
		    s[n] == '"' || s[n] == '\\')
			return false;
	return true;
}

/* Whether the fields make an entry: message entries ('i', 'o') name a
 * message and a peer; the node's own ('a') may leave those empty. */
static bool
audit_fields_ok(char dir, const char *msgid, const char *digest_hex, const char *peer,
                const char *event, const char *detail)
{
	if (!audit_text(msgid, 32) || !audit_text(digest_hex, 64) || !audit_text(peer, 64) ||
	    !audit_text(event, 64) || !audit_text(detail, TB_JOURNAL_AUDIT_DETAIL_MAX) ||
	    event[0] == '\0')
		return false;
	if (dir == 'a')
		return (msgid[0] == '\0' || is_hex(msgid, 32)) &&
		       (digest_hex[0] == '\0' || is_hex(digest_hex, 64));
	return (dir == 'i' || dir == 'o') && is_hex(msgid, 32) && is_hex(digest_hex, 64) &&
	       peer[0] != '\0';
}

int
tb_journal_audit_append(struct tb_journal *j, char dir, const char *msgid, const char *digest_hex,
                        const char *peer, int64_t at, const char *event)
{
	return audit_add(j, dir, msgid, digest_hex, peer, at, event, "");
}

int
tb_journal_audit_admin(struct tb_journal *j, int64_t at, const char *event, const char *detail)
{
	return audit_add(j, 'a', "", "", "", at, event, detail != NULL ? detail : "");
}

/* Inserts entry seq after prev, hashed with h; its hash into hash. */
static int
audit_insert(struct tb_journal *j, enum tb_audit_hash h, int64_t seq, const uint8_t prev[32],
             char dir, const char *msgid, const char *digest_hex, const char *peer, int64_t at,
             const char *event, const char *detail, uint8_t hash[32])
{
	char prev_hex[65], hash_hex[65];
	char dirs[2] = {dir, '\0'};
	sqlite3_stmt *s;
	int rc;

	if ((rc = tb_journal_audit_hash_h(h, seq, prev, dir, msgid, digest_hex, peer, at, event,
	                                  detail, hash)) != TB_OK)
		return tb_diag_set(&j->diag, rc, TB_DIAG_NOPOS, "audit hash");
	tb_hex_encode(prev, 32, prev_hex);
	tb_hex_encode(hash, 32, hash_hex);
	s = st(j, ST_AUDIT_ADD);
	if (sqlite3_bind_int64(s, 1, seq) != SQLITE_OK || bind_text(s, 2, prev_hex) != SQLITE_OK ||
	    bind_text(s, 3, dirs) != SQLITE_OK || bind_text(s, 4, msgid) != SQLITE_OK ||
	    bind_text(s, 5, digest_hex) != SQLITE_OK || bind_text(s, 6, peer) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 7, at) != SQLITE_OK || bind_text(s, 8, event) != SQLITE_OK ||
	    bind_text(s, 9, hash_hex) != SQLITE_OK || bind_text(s, 10, detail) != SQLITE_OK)
		return jfail(j, "bind");
	return run(j, s, "audit append");
}

/* The hash of the chain whose head is seq (SQLite): a new chain's when it
 * is empty, else its entry 1's, read once per handle. */
static int
audit_chain_of(struct tb_journal *j, int64_t seq, enum tb_audit_hash *h)
{
	const char *dir;
	sqlite3_stmt *s;
	int rc;

	*h = j->audit_new;
	if (seq == 0)
		return TB_OK;
	if (j->chain_known) {
		*h = j->chain_hash;
		return TB_OK;
	}
	s = st(j, ST_AUDIT_FIRST);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		dir = col_text(s, 0);
		if (tb_journal_audit_chain_hash(dir != NULL ? dir[0] : '?', col_text(s, 1),
		                                col_text(s, 2), h) != TB_OK) {
			rc = tb_diag_set(&j->diag, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "audit entry 1 names an unknown chain hash");
		} else {
			j->chain_known = true;
			j->chain_hash = *h;
			rc = TB_OK;
		}
	} else if (rc == SQLITE_DONE) {
		/* entry 1 is gone (verify reports it): new entries hash as a
		 * new chain would */
		rc = TB_OK;
	} else {
		rc = jfail(j, "audit entry 1");
	}
	(void)sqlite3_reset(s);
	return rc;
}

static int
audit_add(struct tb_journal *j, char dir, const char *msgid, const char *digest_hex,
          const char *peer, int64_t at, const char *event, const char *detail)
{
	uint8_t prev[32], hash[32];
	enum tb_audit_hash h;
	int64_t seq;
	bool own;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!audit_fields_ok(dir, msgid, digest_hex, peer, event, detail))
		return jarg(j, "audit entry: bad dir, msgid, digest, peer, event or detail");
	if (strcmp(event, AUDIT_CHAIN_EVENT) == 0)
		return jarg(j, "audit entry: the \"chain\" entry is the journal's own");
	if (j->pg != NULL) {
		rc = tb_jpg_audit_add(j->pg, j->audit_new, &j->chain_known, &j->chain_hash, dir,
		                      msgid, digest_hex, peer, at, event, detail, &seq, hash);
		if (rc == TB_OK) {
			j->audit_touched = true;
			if (!j->in_tx) /* committed on its own */
				head_committed(j, true, seq, hash);
		}
		return rc;
	}
	if ((rc = tx_own(j, &own)) != TB_OK)
		return rc;
	if (!own && j->head_cached) {
		seq = j->head_seq;
		memcpy(prev, j->head_hash, 32);
	} else if ((rc = audit_head(j, &seq, prev)) != TB_OK) {
		goto done;
	}
	if (seq == INT64_MAX) {
		rc = tb_diag_set(&j->diag, TB_E_AUDIT, TB_DIAG_NOPOS, "audit chain is full");
		goto done;
	}
	if ((rc = audit_chain_of(j, seq, &h)) != TB_OK)
		goto done;
	/* an SM3 chain says so in its entry 1, before anything else */
	if (seq == 0 && h == TB_AUDIT_SM3) {
		if ((rc = audit_insert(j, h, 1, prev, 'a', "", "", "", at, AUDIT_CHAIN_EVENT,
		                       "hash=sm3", hash)) != TB_OK)
			goto done;
		seq = 1;
		memcpy(prev, hash, 32);
	}
	seq++;
	rc = audit_insert(j, h, seq, prev, dir, msgid, digest_hex, peer, at, event, detail, hash);
	if (rc == TB_OK)
		j->audit_touched = true;
	if (rc == TB_OK && !own) {
		j->head_cached = true;
		j->head_seq = seq;
		memcpy(j->head_hash, hash, 32);
	}
done:
	return tx_end(j, own, rc);
}

int
tb_journal_audit_chain(struct tb_journal *j, enum tb_audit_hash *h)
{
	uint8_t hash[32];
	int64_t seq;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (h == NULL)
		return jarg(j, "output is NULL");
	if (j->pg != NULL)
		return tb_jpg_audit_chain(j->pg, j->audit_new, &j->chain_known, &j->chain_hash, h);
	if ((rc = audit_head(j, &seq, hash)) != TB_OK)
		return rc;
	return audit_chain_of(j, seq, h);
}

/* ---- state changes with their audit entry ---- */

/* Opens a unit of work that is kept whole or undone whole: a savepoint
 * inside the caller's transaction, or a transaction of its own (*own). */
static int
unit_begin(struct tb_journal *j, bool *own)
{
	int rc;

	*own = !j->in_tx;
	if (*own)
		return tb_journal_begin(j);
	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (j->pg != NULL)
		return tb_jpg_unit(j->pg, TB_JPG_SAVEPOINT);
	return run(j, st(j, ST_UNIT), "savepoint");
}

/* unit_end inside a transaction on PostgreSQL: undoing the savepoint
 * also lifts the abort an error in the unit caused. */
static int
unit_end_pg(struct tb_journal *j, int rc)
{
	struct tb_diag why = j->diag;
	int rc2;

	if (rc != TB_OK && tb_jpg_unit(j->pg, TB_JPG_UNDO) != TB_OK) {
		j->diag = why; /* the transaction stays aborted: the batch is lost */
		return rc;
	}
	rc2 = tb_jpg_unit(j->pg, TB_JPG_RELEASE);
	if (rc == TB_OK)
		return rc2;
	j->diag = why;
	return rc;
}

/* Keeps the unit when rc is TB_OK, else undoes it; returns rc (or the
 * error that kept it from being kept), with j's diag saying why. */
static int
unit_end(struct tb_journal *j, bool own, int rc)
{
	struct tb_diag why = j->diag;
	int rc2;

	if (own) {
		if (rc == TB_OK)
			return tb_journal_commit(j);
		if (tb_journal_rollback(j) != TB_OK) {
			/* the handle is out of the transaction either way
			 * (tb_journal_rollback clears it); the error to report
			 * is rc, the step's */
		}
		j->diag = why;
		return rc;
	}
	if (j->pg != NULL)
		return unit_end_pg(j, rc);
	if (rc != TB_OK) {
		/* the cached head may be one this unit wrote */
		j->head_cached = false;
		if (run(j, st(j, ST_UNIT_UNDO), "rollback to savepoint") != TB_OK) {
			j->aborted = true; /* a part of the unit may remain: the batch is lost */
			j->abort_code = rc == TB_E_JOURNAL_FULL ? rc : TB_E_IO;
			j->diag = why;
		}
	}
	if ((rc2 = run(j, st(j, ST_UNIT_END), "release savepoint")) != TB_OK) {
		j->head_cached = false;
		if (rc == TB_OK)
			return rc2;
		j->diag = why;
	}
	return rc;
}

int
tb_journal_outbound_put_audit(struct tb_journal *j, const struct tb_journal_msg *m,
                              int64_t next_attempt, int64_t at, const char *event)
{
	char from[32] = "";
	bool own;
	int rc;

	if (m == NULL || event == NULL || m->from == NULL)
		return TB_E_ARG;
	/* a hub's relay names where the message came from as well */
	if (strcmp(event, "relayed") == 0 &&
	    (size_t)snprintf(from, sizeof(from), "from=%s", m->from) >= sizeof(from))
		return jarg(j, "relay: sender too long");
	if ((rc = unit_begin(j, &own)) != TB_OK)
		return rc;
	if ((rc = tb_journal_outbound_put(j, m, next_attempt)) == TB_OK)
		rc = audit_add(j, 'o', m->id, m->digest, m->to, at, event, from);
	return unit_end(j, own, rc);
}

int
tb_journal_outbound_delivered_audit(struct tb_journal *j, const char *id, const uint8_t *receipt,
                                    size_t receipt_len, int64_t at, const char *digest_hex,
                                    const char *peer, bool *fresh)
{
	bool own, fresh_;
	int rc;

	if (fresh == NULL)
		fresh = &fresh_;
	*fresh = false;
	/* on PostgreSQL, a row the transaction prefetched needs no unit:
	 * its change is answered from the state read and sent with the
	 * batch's others, the entry is written at the commit; should the
	 * entry fail, the transaction is lost whole, never the change kept
	 * without it */
	if (j->pg != NULL && j->in_tx && tb_jpg_outbound_known(j->pg, id)) {
		if ((rc = tb_journal_outbound_delivered(j, id, receipt, receipt_len, at, fresh)) ==
		        TB_OK &&
		    *fresh &&
		    (rc = tb_journal_audit_append(j, 'o', id, digest_hex, peer, at, "delivered")) !=
		        TB_OK) {
			tb_jpg_lose(j->pg);
			*fresh = false;
		}
		return rc;
	}
	if ((rc = unit_begin(j, &own)) != TB_OK)
		return rc;
	if ((rc = tb_journal_outbound_delivered(j, id, receipt, receipt_len, at, fresh)) == TB_OK &&
	    *fresh)
		rc = tb_journal_audit_append(j, 'o', id, digest_hex, peer, at, "delivered");
	if (rc != TB_OK)
		*fresh = false;
	return unit_end(j, own, rc);
}

int
tb_journal_outbound_failed_audit(struct tb_journal *j, const char *id, const char *reason,
                                 int64_t at, const char *digest_hex, const char *peer)
{
	bool own;
	int rc;

	if ((rc = unit_begin(j, &own)) != TB_OK)
		return rc;
	if ((rc = tb_journal_outbound_failed(j, id, reason, at)) == TB_OK)
		rc = tb_journal_audit_append(j, 'o', id, digest_hex, peer, at, "failed");
	return unit_end(j, own, rc);
}

int
tb_journal_audit_head(struct tb_journal *j, int64_t *seq, char hash_hex[65])
{
	uint8_t hash[32];
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (seq == NULL || hash_hex == NULL)
		return jarg(j, "output is NULL");
	if ((rc = audit_head(j, seq, hash)) != TB_OK)
		return rc;
	tb_hex_encode(hash, 32, hash_hex);
	return TB_OK;
}

int
tb_journal_audit_hash_at(struct tb_journal *j, int64_t seq, char hash_hex[65])
{
	sqlite3_stmt *s;
	const char *h;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (hash_hex == NULL)
		return jarg(j, "output is NULL");
	if (j->pg != NULL)
		return tb_jpg_audit_hash_at(j->pg, seq, hash_hex);
	s = st(j, ST_AUDIT_AT);
	if (sqlite3_bind_int64(s, 1, seq) != SQLITE_OK)
		return jfail(j, "bind");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && (h = col_text(s, 0)) != NULL && strlen(h) == 64) {
		memcpy(hash_hex, h, 65);
		rc = TB_OK;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "no audit entry %" PRId64,
		                 seq);
	} else {
		rc = jfail(j, "audit entry");
	}
	(void)sqlite3_reset(s);
	return rc;
}

/* The columns of an entry as read back; schema 2 files had no detail. */
#define AUDIT_SELECT_V3                                                                            \
	"SELECT seq, prev, dir, msgid, digest, peer, at, event, hash, detail FROM audit"
#define AUDIT_SELECT_V2 "SELECT seq, prev, dir, msgid, digest, peer, at, event, hash, '' FROM audit"

void
tb_journal_audit_walk_init(struct tb_journal_audit_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->next = 1;
	w->h = TB_AUDIT_SHA256;
}

bool
tb_journal_audit_walk_next(struct tb_journal_audit_walk *w, const struct tb_journal_audit_entry *e,
                           char *why, size_t whylen)
{
	uint8_t stored_prev[32], stored_hash[32], hash[32];
	enum tb_audit_hash h = w->h;

	if (e->seq != w->next) {
		snprintf(why, whylen, "entry %" PRId64 " is missing", w->next);
		return false;
	}
	if (e->prev == NULL || strlen(e->prev) != 64 ||
	    !tb_hex_decode(e->prev, 64, stored_prev, 32) ||
	    !tb_ct_equal(stored_prev, w->prev, 32)) {
		snprintf(why, whylen, "entry %" PRId64 ": prev does not match the previous hash",
		         e->seq);
		return false;
	}
	/* entry 1 fixes the chain's hash; no later entry may change it */
	if (e->seq == 1 && tb_journal_audit_chain_hash(e->dir, e->event, e->detail, &h) != TB_OK) {
		snprintf(why, whylen, "entry 1 names an unknown chain hash");
		return false;
	}
	if (e->seq > 1 && e->dir == 'a' && e->event != NULL &&
	    strcmp(e->event, AUDIT_CHAIN_EVENT) == 0) {
		snprintf(why, whylen,
		         "entry %" PRId64 ": a chain's hash is set by its entry 1 only", e->seq);
		return false;
	}
	if (tb_journal_audit_hash_h(h, e->seq, w->prev, e->dir, e->msgid, e->digest, e->peer, e->at,
	                            e->event, e->detail, hash) != TB_OK ||
	    e->hash == NULL || strlen(e->hash) != 64 ||
	    !tb_hex_decode(e->hash, 64, stored_hash, 32) || !tb_ct_equal(stored_hash, hash, 32)) {
		snprintf(why, whylen, "entry %" PRId64 ": contents do not match its %s hash",
		         e->seq, tb_journal_audit_hash_name(h));
		return false;
	}
	w->h = h;
	w->next++;
	memcpy(w->prev, hash, 32);
	return true;
}

/* An entry from a row of AUDIT_SELECT_*: false when a field is NULL. */
static bool
audit_row(sqlite3_stmt *s, struct tb_journal_audit_entry *e)
{
	const char *dir;

	memset(e, 0, sizeof(*e));
	e->seq = sqlite3_column_int64(s, 0);
	e->prev = col_text(s, 1);
	dir = col_text(s, 2);
	e->dir = dir != NULL && strlen(dir) == 1 ? dir[0] : '?';
	e->msgid = col_text(s, 3);
	e->digest = col_text(s, 4);
	e->peer = col_text(s, 5);
	e->at = sqlite3_column_int64(s, 6);
	e->event = col_text(s, 7);
	e->hash = col_text(s, 8);
	e->detail = col_text(s, 9);
	return e->prev != NULL && e->msgid != NULL && e->digest != NULL && e->peer != NULL &&
	       e->event != NULL && e->hash != NULL && e->detail != NULL;
}

/* Opens the journal at path read-only (verifying must never change what
 * it verifies; WAL lets it read a consistent snapshot while the node
 * writes) and prepares the entry query for its schema, from seq since
 * on, in order.  *db and *s are the caller's to finalize and close. */
static int
audit_open_ro(const char *path, int64_t since, sqlite3 **db, sqlite3_stmt **s, struct tb_diag *d)
{
	int64_t version;
	int rc;

	*s = NULL;
	if ((rc = open_readonly(path, db, &version, d)) != TB_OK)
		return rc;
	if (sqlite3_prepare_v2(*db,
	                       version >= 3 ? AUDIT_SELECT_V3 " WHERE seq >= ?1 ORDER BY seq"
	                                    : AUDIT_SELECT_V2 " WHERE seq >= ?1 ORDER BY seq",
	                       -1, s, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(*s, 1, since) != SQLITE_OK)
		return db_fail(*db, d, "audit");
	return TB_OK;
}

int
tb_journal_audit_verify(const char *path, int64_t *first_bad_seq, int64_t *entries,
                        struct tb_diag *d)
{
	struct tb_journal_audit_walk w;
	struct tb_journal_audit_entry e;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char why[96];
	int rc;

	if (tb_jpg_is_uri(path))
		return tb_jpg_audit_verify(path, first_bad_seq, entries, d);
	tb_diag_clear(d);
	if (first_bad_seq != NULL)
		*first_bad_seq = 0;
	if (entries != NULL)
		*entries = 0;
	tb_journal_audit_walk_init(&w);
	if ((rc = audit_open_ro(path, 1, &db, &s, d)) != TB_OK)
		goto done;
	/* One statement is one read transaction: the whole chain is read
	 * from a single snapshot even while the node appends. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!audit_row(s, &e)) {
			snprintf(why, sizeof(why), "entry %" PRId64 " has a NULL field", w.next);
			goto bad;
		}
		if (!tb_journal_audit_walk_next(&w, &e, why, sizeof(why)))
			goto bad;
		if (entries != NULL)
			*entries = w.next - 1;
	}
	if (rc != SQLITE_DONE) {
		rc = db_fail(db, d, "audit");
		goto done;
	}
	rc = TB_OK;
	goto done;
bad:
	if (first_bad_seq != NULL)
		*first_bad_seq = w.next;
	rc = tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS, "%s", why);
done:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return rc;
}

int
tb_journal_audit_list(const char *path, int64_t since, tb_journal_audit_cb cb, void *ctx,
                      struct tb_diag *d)
{
	struct tb_journal_audit_entry e;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int rc;

	tb_diag_clear(d);
	if (cb == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no callback");
	if (tb_jpg_is_uri(path))
		return tb_jpg_audit_list(path, since, cb, ctx, d);
	if ((rc = audit_open_ro(path, since, &db, &s, d)) != TB_OK)
		goto fail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!audit_row(s, &e)) {
			rc = tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "entry %" PRId64 " has a NULL field", e.seq);
			goto fail;
		}
		if ((rc = cb(ctx, &e)) != 0)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = db_fail(db, d, "audit");
		goto fail;
	}
	rc = TB_OK;
fail:
	sqlite3_finalize(s);
	sqlite3_close(db);
	return rc;
}

void
tb_journal_set_head_hook(struct tb_journal *j, tb_journal_head_fn fn, void *ctx)
{
	if (j == NULL)
		return;
	j->on_head = fn;
	j->on_head_ctx = ctx;
}

/* ---- message flows ---- */

/* Runs one statement with up to four text binds and one optional int64
 * bind (at index ni, 0 for none); on a row, *out gets column 0. */
static int
flow_exec(struct tb_journal *j, enum sid id, const char *const *t, int nt, int ni, int64_t iv,
          int64_t *out, bool *row)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (j->pg != NULL)
		return tb_jpg_flow(j->pg,
		                   id == ST_REQ_CLOSED  ? TB_JPG_REQ_CLOSED
		                   : id == ST_REQ_CLOSE ? TB_JPG_REQ_CLOSE
		                   : id == ST_CASE_GET  ? TB_JPG_CASE_GET
		                                        : TB_JPG_CASE_SET,
		                   t, nt, ni, iv, out, row);
	s = st(j, id);
	for (int i = 0; i < nt; i++)
		if (bind_text(s, i + 1, t[i]) != SQLITE_OK)
			return jfail(j, "bind");
	if (ni > 0 && sqlite3_bind_int64(s, ni, iv) != SQLITE_OK)
		return jfail(j, "bind");
	rc = sqlite3_step(s);
	if (row != NULL)
		*row = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW && out != NULL)
		*out = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = jfail(j, "flow statement");
		(void)sqlite3_reset(s);
		return rc;
	}
	(void)sqlite3_reset(s);
	return TB_OK;
}

int
tb_journal_request_closed(struct tb_journal *j, const char *id, bool *closed)
{
	const char *t[1] = {id};
	return flow_exec(j, ST_REQ_CLOSED, t, 1, 0, 0, NULL, closed);
}

int
tb_journal_request_close(struct tb_journal *j, const char *id, int64_t at)
{
	const char *t[1] = {id};
	return flow_exec(j, ST_REQ_CLOSE, t, 1, 2, at, NULL, NULL);
}

int
tb_journal_case_get(struct tb_journal *j, const char *requester, const char *handler,
                    const char *case_id, int *state)
{
	const char *t[3] = {requester, handler, case_id};
	int64_t v = 0;
	bool row = false;
	int rc = flow_exec(j, ST_CASE_GET, t, 3, 0, 0, &v, &row);

	*state = row ? (int)v : 0;
	return rc;
}

int
tb_journal_case_prefetch(struct tb_journal *j, const char *const *req, const char *const *hnd,
                         const char *const *cid, size_t n)
{
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!j->in_tx || (n > 0 && (req == NULL || hnd == NULL || cid == NULL)))
		return jarg(j, "prefetch outside a transaction");
	for (size_t i = 0; i < n; i++)
		if (req[i] == NULL || hnd[i] == NULL || cid[i] == NULL)
			return jarg(j, "case key");
	return j->pg != NULL ? tb_jpg_case_prefetch(j->pg, req, hnd, cid, n) : TB_OK;
}

int
tb_journal_case_set(struct tb_journal *j, const char *requester, const char *handler,
                    const char *case_id, int state, int64_t at)
{
	const char *t[4] = {requester, handler, case_id, NULL};
	char st[16];
	int rc;

	snprintf(st, sizeof(st), "%d", state);
	t[3] = st;
	rc = flow_exec(j, ST_CASE_SET, t, 4, 5, at, NULL, NULL);
	return rc;
}

int
tb_journal_inbound_get(struct tb_journal *j, const char *id, struct tb_journal_inbound *out,
                       struct tb_buf *envelope)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!is_hex(id, 32) || out == NULL)
		return jarg(j, "bad id or output");
	memset(out, 0, sizeof(*out));
	if (j->pg != NULL)
		return tb_jpg_inbound_get(j->pg, id, out, envelope);
	s = st(j, ST_IN_GET);
	if (bind_text(s, 1, id) != SQLITE_OK) {
		rc = jfail(j, "bind");
		goto done;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "inbound %s", id);
		goto done;
	}
	if (rc != SQLITE_ROW) {
		rc = jfail(j, "inbound get");
		goto done;
	}
	rc = TB_OK;
	copy_str(out->from, sizeof(out->from), col_text(s, 0));
	copy_str(out->type, sizeof(out->type), col_text(s, 1));
	copy_str(out->service, sizeof(out->service), col_text(s, 2));
	copy_str(out->corr, sizeof(out->corr), col_text(s, 3));
	copy_str(out->digest, sizeof(out->digest), col_text(s, 4));
	out->acked = sqlite3_column_int64(s, 5) != 0;
	if (envelope != NULL) {
		tb_buf_reset(envelope);
		if (col_buf(s, 6, envelope) != TB_OK)
			rc = tb_diag_set(&j->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "envelope");
	}
done:
	(void)sqlite3_reset(s);
	return rc;
}

int
tb_journal_outbound_envelope(struct tb_journal *j, const char *id, struct tb_buf *out)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = ready(j)) != TB_OK)
		return rc;
	if (!is_hex(id, 32) || out == NULL)
		return jarg(j, "bad id or output");
	tb_buf_reset(out);
	if (j->pg != NULL)
		return tb_jpg_outbound_envelope(j->pg, id, out);
	s = st(j, ST_OUT_ENV);
	if (bind_text(s, 1, id) != SQLITE_OK)
		return jfail(j, "bind");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = col_buf(s, 0, out) == TB_OK
		         ? TB_OK
		         : tb_diag_set(&j->diag, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	else if (rc == SQLITE_DONE)
		rc = tb_diag_set(&j->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "outbound %s", id);
	else
		rc = jfail(j, "outbound envelope");
	(void)sqlite3_reset(s);
	return rc;
}
