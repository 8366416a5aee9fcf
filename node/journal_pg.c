/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal_pg.c - the journal on PostgreSQL (libpq).  See journal_pg.h for
 * how it stands behind journal.h, and docs/ADMIN.md for the database setup.
 *
 * Every statement is sent with PQexecParams: text parameters, bytea ones
 * in binary, results in binary (bigint columns arrive as 8 big-endian
 * bytes, text as its bytes with libpq's terminating NUL).
 */
#include "config.h"

#include "node/journal_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/tb_enc.h"

bool
tb_jpg_is_uri(const char *s)
{
	return s != NULL &&
	       (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0);
}

#ifndef HAVE_LIBPQ

struct tb_jpg *
tb_jpg_open(const char *uri, struct tb_diag *jdiag, struct tb_diag *d)
{
	(void)uri;
	(void)jdiag;
	tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
	            "journal is a postgresql:// URI, but this tongban-node was built without "
	            "PostgreSQL support (install libpq-dev and run configure again)");
	return NULL;
}

void
tb_jpg_close(struct tb_jpg *p)
{
	(void)p;
}

bool
tb_jpg_committed_head(const struct tb_jpg *p, int64_t *seq, uint8_t hash[32])
{
	(void)p;
	(void)seq;
	(void)hash;
	return false;
}

/* Never reached (no handle exists without libpq); they only link. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define NOPQ { return TB_E_ARG; }
/* clang-format off */
int tb_jpg_unsupported(struct tb_jpg *p, const char *what) NOPQ
int tb_jpg_ping(struct tb_jpg *p) NOPQ
int tb_jpg_begin(struct tb_jpg *p, bool lazy) NOPQ
int tb_jpg_commit(struct tb_jpg *p) NOPQ
int tb_jpg_rollback(struct tb_jpg *p) NOPQ
int tb_jpg_inbound_put(struct tb_jpg *p, const struct tb_journal_msg *m, struct tb_buf *orig_receipt) NOPQ
int tb_jpg_inbound_receipt(struct tb_jpg *p, const char *id, struct tb_buf *out) NOPQ
int tb_jpg_inbox_list(struct tb_jpg *p, size_t limit, int64_t after_seq, tb_journal_inbox_cb cb, void *ctx) NOPQ
int tb_jpg_inbox_ack(struct tb_jpg *p, const char *id) NOPQ
int tb_jpg_inbox_count(struct tb_jpg *p, int64_t *n) NOPQ
int tb_jpg_outbound_put(struct tb_jpg *p, const struct tb_journal_msg *m, int64_t next_attempt) NOPQ
int tb_jpg_outbound_put_new(struct tb_jpg *p, const struct tb_journal_msg *m, int64_t next_attempt) NOPQ
int tb_jpg_inbound_prefetch(struct tb_jpg *p, const char *const *ids, size_t n) NOPQ
int tb_jpg_outbound_prefetch(struct tb_jpg *p, const char (*ids)[33], size_t n) NOPQ
bool tb_jpg_outbound_known(struct tb_jpg *p, const char *id) { (void)p; (void)id; return false; }
void tb_jpg_lose(struct tb_jpg *p) { (void)p; }
int tb_jpg_case_prefetch(struct tb_jpg *p, const char *const *req, const char *const *hnd, const char *const *cid, size_t n) NOPQ
int tb_jpg_outbound_due(struct tb_jpg *p, int64_t now, size_t limit, bool claim, tb_journal_out_cb cb, void *ctx) NOPQ
int tb_jpg_outbound_delivered(struct tb_jpg *p, const char *id, const uint8_t *receipt, size_t receipt_len, int64_t at, bool *fresh) NOPQ
int tb_jpg_outbound_retry(struct tb_jpg *p, const char *id, int64_t next_attempt, const char *last_error) NOPQ
int tb_jpg_outbound_reschedule(struct tb_jpg *p, const char *id, int64_t next_attempt) NOPQ
int tb_jpg_outbound_release_held(struct tb_jpg *p, int64_t now, int64_t *n) NOPQ
int tb_jpg_outbound_extend(struct tb_jpg *p, const char (*ids)[33], size_t n, int64_t until) NOPQ
int tb_jpg_outbound_failed(struct tb_jpg *p, const char *id, const char *reason, int64_t at) NOPQ
int tb_jpg_outbound_status(struct tb_jpg *p, const char *id, struct tb_journal_status *out, struct tb_buf *receipt) NOPQ
int tb_jpg_outbound_pending(struct tb_jpg *p, int64_t *n) NOPQ
int tb_jpg_outbound_next_due(struct tb_jpg *p, int64_t *when) NOPQ
int tb_jpg_unit(struct tb_jpg *p, enum tb_jpg_unit op) NOPQ
int tb_jpg_audit_add(struct tb_jpg *p, enum tb_audit_hash start, bool *known, enum tb_audit_hash *chain, char dir, const char *msgid, const char *digest_hex, const char *peer, int64_t at, const char *event, const char *detail, int64_t *seq, uint8_t hash[32]) NOPQ
int tb_jpg_audit_chain(struct tb_jpg *p, enum tb_audit_hash start, bool *known, enum tb_audit_hash *chain, enum tb_audit_hash *h) NOPQ
int tb_jpg_audit_head(struct tb_jpg *p, int64_t *seq, uint8_t hash[32]) NOPQ
int tb_jpg_audit_hash_at(struct tb_jpg *p, int64_t seq, char hash_hex[65]) NOPQ
int tb_jpg_flow(struct tb_jpg *p, enum tb_jpg_flow which, const char *const *t, int nt, int ni, int64_t iv, int64_t *out, bool *row) NOPQ
int tb_jpg_inbound_get(struct tb_jpg *p, const char *id, struct tb_journal_inbound *out, struct tb_buf *envelope) NOPQ
int tb_jpg_outbound_envelope(struct tb_jpg *p, const char *id, struct tb_buf *out) NOPQ
int tb_jpg_audit_list(const char *uri, int64_t since, tb_journal_audit_cb cb, void *ctx, struct tb_diag *d) NOPQ
int tb_jpg_retire(struct tb_jpg *p, int64_t exp_bound, int64_t done_bound, size_t limit, const struct tb_journal_archiver *a, size_t *removed) NOPQ
int tb_jpg_stats(const char *uri, struct tb_journal_stats *st, struct tb_diag *d) NOPQ
int tb_jpg_prune(struct tb_jpg *p, int64_t bound, size_t *removed) NOPQ
/* clang-format on */

#else /* HAVE_LIBPQ */

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

#ifndef LIBPQ_HAS_PIPELINING
/* libpq 13 has no pipeline mode: every statement waits for its answer
 * (pdefer is prun) */
#define PQ_PIPELINE_OFF 0
#define PQpipelineStatus(c) PQ_PIPELINE_OFF
#endif

#include "util/tb_enc.h"

/* statements prepared on one connection: the SQL's address is the key
 * (every statement is a string literal) */
#define PREP_MAX 64

struct tb_jpg {
	PGconn *conn;
	bool in_tx;
	bool aborted;         /* PostgreSQL aborted the open transaction */
	struct tb_diag *diag; /* the owning journal's */
	const char *prep[PREP_MAX];
	int nprep;
	/* the audit chain's head as this transaction holds it: valid once
	 * the transaction holds the chain's advisory lock (audit_insert) */
	bool head_held;
	int64_t head_seq;
	uint8_t head_hash[32];
	enum tb_audit_hash head_h; /* the chain's hash, with the head */
	/* the chain's hash as journal.c knows it (tb_jpg_audit_add's start,
	 * known, chain), for the appends at the commit */
	enum tb_audit_hash astart;
	bool *aknown;
	enum tb_audit_hash *achain;
	/* statements sent in pipeline mode whose answers are not read yet
	 * (pdefer), and whether one of them failed: the transaction is then
	 * lost whole, whatever savepoint is undone */
	int pending;
	bool lost;
	/* the session is gone: the server ended it, or a pipeline could not
	 * be read to its end (nothing more can be sent on it, not even a
	 * ROLLBACK: the server rolls the transaction back itself) */
	bool broken;
	/* reconnecting without blocking the node's loop (reconnect): an
	 * attempt under way since connect_at, or the next one not before
	 * retry_at (monotonic ms); down_why is the last attempt's failure */
	bool connecting;
	int64_t connect_at, retry_at, connect_ms;
	char down_why[240];
	/* audit entries appended in the open transaction, written at its
	 * commit (audit_flush); marks[] holds the count at each open unit */
	struct aentry **ab;
	size_t nab, capab, marks[8];
	int depth;
	/* the chain's head the last commit wrote, when it appended */
	bool committed;
	int64_t committed_seq;
	uint8_t committed_hash[32];
	/* what a prefetch read in the open transaction (tb_jpg_*_prefetch):
	 * one entry an id, dropped at its end */
	struct pfent *pf;
	size_t npf, cappf;
	/* while audit_flush runs: its rows collected, a column an array
	 * literal, for one INSERT */
	struct tb_buf *arows;
	size_t narows;
	/* new rows collected for one multi-row statement a kind (rows_add),
	 * sent before any other statement and at the latest with the
	 * commit's (rows_flush) */
	struct rows {
		struct tb_buf col[11];
		size_t n;
	} rows[3];
	bool flushing; /* rows_flush runs, or a statement that leaves them */
	/* the rows' extent at each open unit (rows_mark), for its undo */
	struct rmark {
		size_t n[3], len[3][11];
	} rmarks[8];
	size_t ndirty; /* prefetched cases set and not written yet */
};

/* the kinds of rows collected: new outbound messages, new inbound ones,
 * deliveries (id, time, receipt) */
enum { ROWS_OUT, ROWS_IN, ROWS_DLV };
static const int rows_cols[3] = {11, 11, 3};
#define ROWS_WAITING(p) ((p)->rows[0].n + (p)->rows[1].n + (p)->rows[2].n + (p)->ndirty > 0)

/* One prefetched id: inbound ('i': found, with its receipt), outbound
 * ('o': found, locked, with its state) or a case ('c': its key, found,
 * its state).  used: the answer no longer holds (the transaction
 * changed the row); ask the database. */
#define PF_KEY_MAX 160
struct pfent {
	char kind;
	bool found, used;
	bool dirty; /* 'c': set since read, not written yet (rows_flush) */
	int64_t at; /* 'c', dirty: the time of the set */
	int64_t state;
	char id[PF_KEY_MAX]; /* the id, or a case's key (case_pfkey) */
	uint8_t *receipt;
	size_t receipt_len;
};

/* One audit entry waiting for its transaction's commit: the fields, the
 * strings after the struct. */
struct aentry {
	int64_t at;
	char dir;
	const char *msgid, *digest, *peer, *event, *detail;
	char s[];
};

static void
ab_trim(struct tb_jpg *p, size_t keep)
{
	while (p->nab > keep)
		free(p->ab[--p->nab]);
}

/* Forgets what the transaction prefetched, and the rows it collected
 * and did not send. */
static void
pf_clear(struct tb_jpg *p)
{
	for (size_t i = 0; i < p->npf; i++)
		free(p->pf[i].receipt);
	p->npf = 0;
	p->ndirty = 0;
	for (int k = 0; k < 3; k++) {
		for (int c = 0; c < 11; c++)
			tb_buf_reset(&p->rows[k].col[c]);
		p->rows[k].n = 0;
	}
}

/* The prefetched answer for id of kind that still holds, or NULL. */
static struct pfent *
pf_find(struct tb_jpg *p, char kind, const char *id)
{
	if (!p->in_tx)
		return NULL;
	for (size_t i = 0; i < p->npf; i++)
		if (p->pf[i].kind == kind && !p->pf[i].used && strcmp(p->pf[i].id, id) == 0)
			return &p->pf[i];
	return NULL;
}

/*
 * Versioned migrations: entry v-1 brings a database at version v-1 to v,
 * run in one transaction under an advisory lock, so two nodes starting on
 * one database at once migrate it once.  Schema 1 holds what SQLite's
 * schema 4 holds (journal.c), in PostgreSQL's types.
 */
static const char *const migrations[TB_JOURNAL_PG_SCHEMA] = {
    "CREATE TABLE inbound ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL,"
    " service TEXT, corr TEXT, digest TEXT NOT NULL,"
    " created BIGINT NOT NULL, expires BIGINT NOT NULL,"
    " envelope BYTEA NOT NULL, receipt BYTEA NOT NULL,"
    " acked SMALLINT NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),"
    " acked_at BIGINT);"
    "CREATE INDEX inbound_inbox ON inbound (seq) WHERE acked = 0;"
    "CREATE INDEX inbound_prune ON inbound (expires) WHERE acked = 1;"
    "CREATE TABLE outbound ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " sender TEXT NOT NULL, recipient TEXT NOT NULL, type TEXT NOT NULL,"
    " service TEXT, corr TEXT, digest TEXT NOT NULL,"
    " created BIGINT NOT NULL, expires BIGINT NOT NULL,"
    " state SMALLINT NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_attempt BIGINT NOT NULL,"
    " last_error TEXT, reason TEXT, done_at BIGINT);"
    "CREATE INDEX outbound_due ON outbound (next_attempt, seq) WHERE state = 0;"
    "CREATE INDEX outbound_prune ON outbound (expires) WHERE state <> 0;"
    "CREATE TABLE outbound_env ("
    " seq BIGINT PRIMARY KEY REFERENCES outbound (seq) ON DELETE CASCADE,"
    " envelope BYTEA NOT NULL);"
    "CREATE TABLE outbound_receipt ("
    " seq BIGINT PRIMARY KEY REFERENCES outbound (seq) ON DELETE CASCADE,"
    " receipt BYTEA NOT NULL);"
    "CREATE TABLE audit ("
    " seq BIGINT PRIMARY KEY CHECK (seq > 0), prev TEXT NOT NULL,"
    " dir TEXT NOT NULL CHECK (dir IN ('i', 'o', 'a')),"
    " msgid TEXT NOT NULL, digest TEXT NOT NULL, peer TEXT NOT NULL,"
    " at BIGINT NOT NULL, event TEXT NOT NULL,"
    " hash TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE closed_requests (id TEXT PRIMARY KEY, at BIGINT NOT NULL);"
    "CREATE TABLE cases ("
    " requester TEXT NOT NULL, handler TEXT NOT NULL, case_id TEXT NOT NULL,"
    " state BIGINT NOT NULL, updated BIGINT NOT NULL,"
    " PRIMARY KEY (requester, handler, case_id));",
};

/* advisory lock keys: migrations, and the audit chain's head */
#define MIGRATE_LOCK "7630776936488814"
#define AUDIT_LOCK "7630776936488815"

/* The session is down: the server's own word (SQLSTATE class 08,
 * connection exception, or 57P0x: shut down, crashed, not accepting
 * connections yet) or no connection at all. */
static bool
conn_gone(const struct tb_jpg *p, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (p->broken || PQstatus(p->conn) != CONNECTION_OK)
		return true;
	return state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0);
}

/* libpq's message (res's, else the connection's) on one line: one log
 * line, one JSON string. */
static void
one_line(const struct tb_jpg *p, const PGresult *res, char *line, size_t cap)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	size_t n = 0;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(p->conn);
	for (; *msg != '\0' && n < cap - 1; msg++) {
		char c = (*msg == '\n' || *msg == '\t') ? ' ' : *msg;

		if (c != ' ' || (n > 0 && line[n - 1] != ' '))
			line[n++] = c;
	}
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
}

/* Records the connection's error (or res's) in the journal's diag; a
 * lost session marks the handle broken until it is made again. */
static int
pfail(struct tb_jpg *p, PGresult *res, const char *what)
{
	char line[240];

	one_line(p, res, line, sizeof(line));
	if (p->in_tx)
		p->aborted = true;
	/* a lost connection is told apart from a failed statement: the
	 * caller's answer is "retry later" (503 journal.unavailable) */
	if (!conn_gone(p, res))
		return tb_diag_set(p->diag, TB_E_IO, TB_DIAG_NOPOS, "postgresql: %s: %s", what,
		                   line);
	if (!p->broken || p->down_why[0] == '\0')
		snprintf(p->down_why, sizeof(p->down_why), "%s", line);
	p->broken = true;
	return tb_diag_set(p->diag, TB_E_JOURNAL_DOWN, TB_DIAG_NOPOS,
	                   "postgresql: %s: cannot reach the database: %s", what, line);
}

/* The refusal while the session is broken, before it is made again:
 * nothing is sent on it. */
static int
down(struct tb_jpg *p, const char *what)
{
	if (p->in_tx)
		p->aborted = true;
	return tb_diag_set(p->diag, TB_E_JOURNAL_DOWN, TB_DIAG_NOPOS,
	                   "postgresql: %s: cannot reach the database: %s", what,
	                   p->down_why[0] ? p->down_why : "the connection was lost");
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long the call that starts a reconnection may wait for the server
 * (a server that answers at all makes the session in that time), how
 * long each later call while it is under way, and how long after a
 * failed attempt the next one starts (ms). */
#define RECONNECT_WAIT_START_MS 250
#define RECONNECT_WAIT_MS 20
#define RECONNECT_RETRY_MS 250

/* A failed or abandoned attempt: the next one not before
 * RECONNECT_RETRY_MS; the diag says why. */
static int
reconnect_failed(struct tb_jpg *p, const char *why)
{
	p->connecting = false;
	p->broken = true;
	p->retry_at = mono_ms() + RECONNECT_RETRY_MS;
	if (why != NULL)
		snprintf(p->down_why, sizeof(p->down_why), "%s", why);
	else
		one_line(p, NULL, p->down_why, sizeof(p->down_why));
	return down(p, "reconnect");
}

/* Makes the session again without blocking the node's loop: libpq's
 * non-blocking reset (PQresetStart, PQresetPoll), waiting at most
 * RECONNECT_WAIT_START_MS in the call that starts an attempt and
 * RECONNECT_WAIT_MS in each later one; until it is made every call is
 * refused TB_E_JOURNAL_DOWN.  An attempt with no answer
 * within connect_ms (the URI's connect_timeout, else 5 s: a host that
 * drops packets) is abandoned, and a new one starts RECONNECT_RETRY_MS
 * after a failure.  TB_OK once the session is made. */
static int
reconnect(struct tb_jpg *p)
{
	int64_t now = mono_ms(), until = now + RECONNECT_WAIT_MS;

	if (!p->connecting) {
		if (now < p->retry_at)
			return down(p, "reconnect");
		p->nprep = 0; /* a new session: nothing prepared */
		p->pending = 0;
		if (!PQresetStart(p->conn))
			return reconnect_failed(p, NULL);
		p->connecting = true;
		p->connect_at = now;
		until = now + RECONNECT_WAIT_START_MS;
		snprintf(p->down_why, sizeof(p->down_why), "connecting, no answer yet");
	}
	for (;;) {
		PostgresPollingStatusType st = PQresetPoll(p->conn);
		struct pollfd pfd = {.fd = PQsocket(p->conn), .events = POLLIN};

		if (st == PGRES_POLLING_OK)
			break;
		if (st == PGRES_POLLING_FAILED || pfd.fd < 0)
			return reconnect_failed(p, NULL);
		now = mono_ms();
		if (now - p->connect_at >= p->connect_ms) {
			char why[80];

			snprintf(why, sizeof(why), "no answer within %lld s",
			         (long long)(p->connect_ms / 1000));
			return reconnect_failed(p, why);
		}
		if (now >= until)
			return down(p, "reconnect");
		if (st == PGRES_POLLING_WRITING)
			pfd.events = POLLOUT;
		(void)poll(&pfd, 1, (int)(until - now));
	}
	p->connecting = p->broken = false;
	p->down_why[0] = '\0';
	/* the session's settings, as tb_jpg_open set them */
	PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
	return TB_OK;
}

static int
ready(struct tb_jpg *p)
{
	int rc;

	tb_diag_clear(p->diag);
	/* a connection the server dropped (restart, failover) is made again
	 * at the next call outside a transaction (a pipeline left open
	 * there: only after a failure that broke the session); inside one
	 * the transaction is lost anyway and fails */
	if (!p->in_tx &&
	    (p->broken || p->connecting || PQstatus(p->conn) != CONNECTION_OK || p->pending > 0 ||
	     PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF) &&
	    (rc = reconnect(p)) != TB_OK)
		return rc;
	if (p->in_tx && p->broken)
		return down(p, "transaction");
	if (p->aborted || p->lost)
		return tb_diag_set(p->diag, TB_E_IO, TB_DIAG_NOPOS,
		                   "transaction was aborted by an earlier error; roll it back");
	return TB_OK;
}

/* Up to 12 parameters: text unless len[i] > 0 or bin[i] (bytea, binary). */
struct params {
	int n;
	const char *v[12];
	int len[12];
	int fmt[12];
	char num[12][24];
};

static void
p_text(struct params *q, const char *s)
{
	q->v[q->n] = s;
	q->len[q->n] = 0;
	q->fmt[q->n] = 0;
	q->n++;
}

static void
p_int(struct params *q, int64_t v)
{
	snprintf(q->num[q->n], sizeof(q->num[0]), "%" PRId64, v);
	p_text(q, q->num[q->n]);
}

static void
p_blob(struct params *q, const uint8_t *b, size_t n)
{
	/* a NOT NULL bytea gets '' for an empty value, never NULL */
	q->v[q->n] = n ? (const char *)b : "";
	q->len[q->n] = (int)n;
	q->fmt[q->n] = 1;
	q->n++;
}

/* The name sql is prepared under on this connection ("s<index>"), sent
 * to the server the first time; false with the diag set when preparing
 * failed.  name is "" when the table is full, or when sql is not
 * prepared yet and the connection is in pipeline mode (where a
 * synchronous prepare cannot run): the caller then sends sql unprepared.
 * Parsing and planning once per connection, not once per call, is a
 * third of a short statement's time on the server. */
static bool
prepared(struct tb_jpg *p, const char *sql, int nparams, char name[16])
{
	PGresult *res;
	int i;

	name[0] = '\0';
	if (p->broken) {
		(void)down(p, "prepare");
		return false;
	}
	for (i = 0; i < p->nprep; i++)
		if (p->prep[i] == sql)
			break;
	if (i == PREP_MAX)
		return true;
	if (i < p->nprep) {
		snprintf(name, 16, "s%d", i);
		return true;
	}
	if (p->pending > 0)
		return true;
	snprintf(name, 16, "s%d", i);
	res = PQprepare(p->conn, name, sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pfail(p, res, "prepare");
		PQclear(res);
		return false;
	}
	PQclear(res);
	p->prep[p->nprep++] = sql;
	return true;
}

static int prun(struct tb_jpg *p, const char *sql, const struct params *q, int64_t *changed,
                const char *what);
static int rows_flush(struct tb_jpg *p);
static int rows_add(struct tb_jpg *p, int k, const struct tb_journal_msg *m, int64_t next_attempt);
static int rows_delivered(struct tb_jpg *p, const char *id, int64_t at, const uint8_t *receipt,
                          size_t receipt_len);

/* Sends sql with q without waiting (pipeline mode); 0 on failure. */
static int
psend(struct tb_jpg *p, const char *name, const char *sql, const struct params *q)
{
	int n = q ? q->n : 0;

	if (name[0] != '\0')
		return PQsendQueryPrepared(p->conn, name, n, q ? q->v : NULL, q ? q->len : NULL,
		                           q ? q->fmt : NULL, 1);
	return PQsendQueryParams(p->conn, sql, n, NULL, q ? q->v : NULL, q ? q->len : NULL,
	                         q ? q->fmt : NULL, 1);
}

#ifdef LIBPQ_HAS_PIPELINING
/* The next statement's answer in pipeline mode: its first result (the
 * rest dropped), NULL when the connection gave none. */
static PGresult *
pipe_result(struct tb_jpg *p)
{
	PGresult *first = NULL, *r;

	while ((r = PQgetResult(p->conn)) != NULL) {
		if (first == NULL)
			first = r;
		else
			PQclear(r);
	}
	return first;
}

/* Ends a pipeline: a Sync, then the deferred statements' answers and,
 * with last, the answer of the statement sent after them (into *last).
 * A deferred statement that failed loses the transaction (p->lost) and
 * its error is the diag's; TB_OK otherwise (*last may still be an
 * error result, which the caller judges). */
static int
pipe_end(struct tb_jpg *p, PGresult **last, const char *what)
{
	int n = p->pending, rc = TB_OK;
	PGresult *r;

	if (last != NULL)
		*last = NULL;
	p->pending = 0;
	if (!PQpipelineSync(p->conn)) {
		rc = pfail(p, NULL, what);
		goto lost;
	}
	for (int i = 0; i < n; i++) {
		ExecStatusType st;

		if ((r = pipe_result(p)) == NULL) {
			rc = pfail(p, NULL, what);
			goto lost;
		}
		st = PQresultStatus(r);
		if (rc == TB_OK && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			rc = pfail(p, r, what);
		PQclear(r);
	}
	if (last != NULL && (*last = pipe_result(p)) == NULL && rc == TB_OK)
		rc = pfail(p, NULL, what);
	/* the Sync's own answer, then out of pipeline mode */
	if ((r = PQgetResult(p->conn)) != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
		PQclear(r);
		if (!PQexitPipelineMode(p->conn) && rc == TB_OK)
			rc = pfail(p, NULL, what);
	} else if (rc == TB_OK && (last == NULL || *last != NULL)) {
		/* every statement answered, then the session ended in place of
		 * the Sync's answer (a shutdown's FATAL after a COMMIT): what was
		 * answered stands (the COMMIT did commit), the session is broken
		 * and made again by the next call (ready) */
		one_line(p, r, p->down_why, sizeof(p->down_why));
		PQclear(r);
		p->broken = true;
		return TB_OK;
	} else {
		PQclear(r);
		if (rc == TB_OK)
			rc = pfail(p, NULL, what);
	}
	if (rc == TB_OK)
		return TB_OK;
lost:
	if (last != NULL) {
		PQclear(*last);
		*last = NULL;
	}
	if (p->in_tx)
		p->lost = true;
	/* answers missing: the pipeline cannot be left, and a synchronous
	 * statement (a ROLLBACK, a prepare) would be refused by libpq for
	 * that, not for the lost server; nothing more is sent on the session
	 * until it is made again (ready) */
	if (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF && !p->broken) {
		if (p->down_why[0] == '\0')
			snprintf(p->down_why, sizeof(p->down_why), "the connection was lost");
		p->broken = true;
		if (rc == TB_OK || p->diag->code != TB_E_JOURNAL_DOWN)
			rc = down(p, what);
	}
	return rc;
}

/* Sends sql inside a transaction without waiting for its answer, which is
 * read with the next statement that waits (pexec), in the same round
 * trip: for statements whose outcome the caller needs only as "the
 * transaction commits or not" (savepoints, audit appends, flow rows).
 * A failure is then reported by a later call, and the transaction is
 * lost whole (commit answers "nothing stored").  Outside a transaction,
 * or with many answers pending, it waits as prun does. */
#define DEFER_MAX 256
static int
pdefer(struct tb_jpg *p, const char *sql, const struct params *q, const char *what)
{
	char name[16];
	int rc;

	if (!p->flushing && ROWS_WAITING(p) && (rc = rows_flush(p)) != TB_OK)
		return rc;
	if (!p->in_tx || p->pending >= DEFER_MAX)
		return prun(p, sql, q, NULL, what);
	if ((rc = ready(p)) != TB_OK)
		return rc;
	if (!prepared(p, sql, q ? q->n : 0, name))
		return p->diag->code == TB_E_JOURNAL_DOWN ? TB_E_JOURNAL_DOWN : TB_E_IO;
	if (p->pending == 0 && !PQenterPipelineMode(p->conn))
		return pfail(p, NULL, what);
	if (!psend(p, name, sql, q)) {
		rc = pfail(p, NULL, what);
		p->lost = true;
		if (p->pending == 0)
			(void)PQexitPipelineMode(p->conn);
		return rc;
	}
	p->pending++;
	return TB_OK;
}
#else
#define pdefer(p, sql, q, what) prun(p, sql, q, NULL, what)
#endif

/* As pdefer, for a statement on none of the tables whose rows are being
 * collected (rows_add): they are not sent first. */
static int
pdefer_keep(struct tb_jpg *p, const char *sql, const struct params *q, const char *what)
{
	bool was = p->flushing;
	int rc;

	p->flushing = true;
	rc = pdefer(p, sql, q, what);
	p->flushing = was;
	return rc;
}

/* The rows' extent into m, or (undo) the rows cut back to m's. */
static void
rows_mark(struct tb_jpg *p, struct rmark *m, bool undo)
{
	for (int k = 0; k < 3; k++) {
		if (undo)
			p->rows[k].n = m->n[k];
		else
			m->n[k] = p->rows[k].n;
		for (int c = 0; c < 11; c++) {
			if (undo)
				p->rows[k].col[c].len = m->len[k][c];
			else
				m->len[k][c] = p->rows[k].col[c].len;
		}
	}
}

/* Runs sql with q; NULL with the diag set on failure.  The caller PQclears. */
static PGresult *
pexec(struct tb_jpg *p, const char *sql, const struct params *q, const char *what)
{
	int n = q ? q->n : 0;
	char name[16];
	PGresult *res;
	ExecStatusType st;

	if (!p->flushing && ROWS_WAITING(p) && rows_flush(p) != TB_OK)
		return NULL;
	if (!prepared(p, sql, n, name))
		return NULL;
#ifdef LIBPQ_HAS_PIPELINING
	if (p->pending > 0) {
		/* the deferred statements' answers come back with this one's */
		if (!psend(p, name, sql, q)) {
			pfail(p, NULL, what);
			(void)pipe_end(p, NULL, what);
			return NULL;
		}
		if (pipe_end(p, &res, what) != TB_OK)
			return NULL;
	} else
#endif
	    if (name[0] != '\0')
		res = PQexecPrepared(p->conn, name, n, q ? q->v : NULL, q ? q->len : NULL,
		                     q ? q->fmt : NULL, 1);
	else
		res = PQexecParams(p->conn, sql, n, NULL, q ? q->v : NULL, q ? q->len : NULL,
		                   q ? q->fmt : NULL, 1);
	st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pfail(p, res, what);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs a script of several statements (a migration): the simple query
 * protocol, no parameters. */
static int
pscript(struct tb_jpg *p, const char *sql, const char *what)
{
	PGresult *res;
	int rc = TB_OK;

	if (p->broken)
		return down(p, what);
	res = PQexec(p->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = pfail(p, res, what);
	PQclear(res);
	return rc;
}

/* Runs a statement without rows; *changed (may be NULL) gets its count. */
static int
prun(struct tb_jpg *p, const char *sql, const struct params *q, int64_t *changed, const char *what)
{
	PGresult *res = pexec(p, sql, q, what);

	if (res == NULL)
		return p->diag->code == TB_E_JOURNAL_DOWN ? TB_E_JOURNAL_DOWN : TB_E_IO;
	if (changed != NULL)
		*changed = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return TB_OK;
}

static int64_t
g_int(PGresult *r, int row, int col)
{
	const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
	uint64_t v = 0;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return (int64_t)v;
}

static const char *
g_text(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int
g_buf(struct tb_jpg *p, PGresult *r, int row, int col, struct tb_buf *out)
{
	int n = PQgetisnull(r, row, col) ? 0 : PQgetlength(r, row, col);

	tb_buf_reset(out);
	if ((n <= 0 ? tb_buf_reserve(out, 0)
	            : tb_buf_add(out, PQgetvalue(r, row, col), (size_t)n)) != TB_OK)
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "receipt");
	return TB_OK;
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

/* Brings the schema to TB_JOURNAL_PG_SCHEMA, in one transaction. */
static int
migrate(struct tb_jpg *p, const char *uri, struct tb_diag *d)
{
	PGresult *res = NULL;
	int64_t version = 0;
	int rc = TB_E_IO;

	if (prun(p, "BEGIN", NULL, NULL, "begin") != TB_OK ||
	    prun(p, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", NULL, NULL, "lock") !=
	        TB_OK ||
	    prun(p, "CREATE TABLE IF NOT EXISTS tb_schema (version BIGINT NOT NULL)", NULL, NULL,
	         "schema table") != TB_OK ||
	    (res = pexec(p, "SELECT max(version) FROM tb_schema", NULL, "schema version")) == NULL)
		goto fail;
	version = g_int(res, 0, 0);
	PQclear(res);
	if (version > TB_JOURNAL_PG_SCHEMA) {
		rc = tb_diag_set(p->diag, TB_E_JOURNAL_VERSION, TB_DIAG_NOPOS,
		                 "%s: schema %" PRId64 ", this build reads up to %d", uri, version,
		                 TB_JOURNAL_PG_SCHEMA);
		goto fail;
	}
	for (int64_t v = version; v < TB_JOURNAL_PG_SCHEMA; v++) {
		struct params q = {0};

		p_int(&q, v + 1);
		if (pscript(p, migrations[v], "migration") != TB_OK ||
		    prun(p, "DELETE FROM tb_schema", NULL, NULL, "migration") != TB_OK ||
		    prun(p, "INSERT INTO tb_schema (version) VALUES ($1)", &q, NULL, "migration") !=
		        TB_OK)
			goto fail;
	}
	if (prun(p, "COMMIT", NULL, NULL, "commit") != TB_OK)
		goto fail;
	return TB_OK;
fail:
	tb_diag_set(d, p->diag->code ? p->diag->code : rc, TB_DIAG_NOPOS, "%s", p->diag->detail);
	PQclear(PQexec(p->conn, "ROLLBACK"));
	return d ? d->code : rc;
}

/* The connection's connect_timeout in ms (libpq: at least 2 s, 0 or
 * none is no limit): how long a reconnection may wait for an answer
 * (reconnect), 5 s unless the URI says otherwise, never unlimited. */
static int64_t
connect_timeout_ms(PGconn *c)
{
	PQconninfoOption *o = PQconninfo(c), *i;
	int64_t s = 5;

	for (i = o; i != NULL && i->keyword != NULL; i++)
		if (strcmp(i->keyword, "connect_timeout") == 0 && i->val != NULL &&
		    strtoll(i->val, NULL, 10) > 0)
			s = strtoll(i->val, NULL, 10) < 2 ? 2 : strtoll(i->val, NULL, 10);
	PQconninfoFree(o);
	return s * 1000;
}

struct tb_jpg *
tb_jpg_open(const char *uri, struct tb_diag *jdiag, struct tb_diag *d)
{
	struct tb_jpg *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "journal handle");
		return NULL;
	}
	p->diag = jdiag;
	/* a connect_timeout unless the URI sets one: reconnecting runs on
	 * the node's loop, which must not wait forever on an unreachable
	 * host (the URI's own keywords, expanded after, win) */
	{
		const char *const keys[] = {"connect_timeout", "dbname", NULL};
		const char *const vals[] = {"5", uri, NULL};

		p->conn = PQconnectdbParams(keys, vals, 1);
	}
	if (p->conn == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "PQconnectdb");
		goto fail;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		/* libpq's message names host, port and cause; the URI may hold a
		 * password, so it is not repeated */
		pfail(p, NULL, "cannot connect");
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s", jdiag->detail);
		goto fail;
	}
	p->connect_ms = connect_timeout_ms(p->conn);
	if (prun(p, "SET client_min_messages = warning", NULL, NULL, "settings") != TB_OK) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s", jdiag->detail);
		goto fail;
	}
	if (migrate(p, "postgresql journal", d) != TB_OK)
		goto fail;
	tb_diag_clear(jdiag);
	return p;
fail:
	tb_jpg_close(p);
	return NULL;
}

void
tb_jpg_close(struct tb_jpg *p)
{
	if (p == NULL)
		return;
	/* an open transaction is rolled back by the server when the
	 * connection ends: a batch never committed was never answered */
	PQfinish(p->conn);
	ab_trim(p, 0);
	pf_clear(p);
	free(p->ab);
	free(p->pf);
	for (int k = 0; k < 3; k++)
		for (int c = 0; c < 11; c++)
			tb_buf_free(&p->rows[k].col[c]);
	free(p);
}

int
tb_jpg_unsupported(struct tb_jpg *p, const char *what)
{
	return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS,
	                   "%s is not supported by the PostgreSQL journal yet", what);
}

/* ---- the audit entries of the open transaction ---- */

static int
ab_push(struct tb_jpg *p, char dir, const char *msgid, const char *digest, const char *peer,
        int64_t at, const char *event, const char *detail)
{
	const char *f[5] = {msgid, digest, peer, event, detail};
	size_t len[5], total = 0;
	struct aentry *e;
	char *w;

	for (int i = 0; i < 5; i++)
		total += (len[i] = strlen(f[i])) + 1;
	if (p->nab == p->capab) {
		size_t cap = p->capab ? 2 * p->capab : 64;
		struct aentry **n = realloc(p->ab, cap * sizeof(*n));

		if (n == NULL)
			return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "audit entry");
		p->ab = n;
		p->capab = cap;
	}
	if ((e = malloc(sizeof(*e) + total)) == NULL)
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "audit entry");
	e->at = at;
	e->dir = dir;
	w = e->s;
	for (int i = 0; i < 5; i++) {
		const char **to[5] = {&e->msgid, &e->digest, &e->peer, &e->event, &e->detail};

		memcpy(w, f[i], len[i] + 1);
		*to[i] = w;
		w += len[i] + 1;
	}
	p->ab[p->nab++] = e;
	return TB_OK;
}

static const char *arr_end(struct tb_buf *arr);
static int audit_insert(struct tb_jpg *p, char dir, const char *msgid, const char *digest_hex,
                        const char *peer, int64_t at, const char *event, const char *detail,
                        int64_t *seq, uint8_t hash[32]);

/* Writes the transaction's audit entries, just before its COMMIT: the
 * chain's lock is taken here, so it is held for the commit alone, not
 * for the whole batch (two connections of a member, or two processes,
 * take turns for that long); the lock and the head in one round trip,
 * the rows with the COMMIT. */
static int
audit_flush(struct tb_jpg *p)
{
	struct tb_buf cols[10];
	struct params q = {0};
	int64_t seq = 0;
	uint8_t hash[32];
	int rc = TB_OK;

	if (p->nab == 0)
		return TB_OK;
	for (int c = 0; c < 10; c++)
		tb_buf_init(&cols[c]);
	p->arows = cols;
	p->narows = 0;
	for (size_t i = 0; i < p->nab && rc == TB_OK; i++) {
		const struct aentry *e = p->ab[i];

		rc = audit_insert(p, e->dir, e->msgid, e->digest, e->peer, e->at, e->event,
		                  e->detail, &seq, hash);
	}
	p->arows = NULL;
	/* the rows in one statement */
	for (int c = 0; c < 10 && rc == TB_OK && p->narows > 0; c++) {
		const char *lit = arr_end(&cols[c]);

		if (lit == NULL)
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "audit rows");
		else
			p_text(&q, lit);
	}
	if (rc == TB_OK && p->narows > 0)
		rc = pdefer(
		    p,
		    "INSERT INTO audit (seq, prev, dir, msgid, digest, peer, at, event, hash,"
		    " detail) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
		    " $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],"
		    " $10::text[])",
		    &q, "audit append");
	for (int c = 0; c < 10; c++)
		tb_buf_free(&cols[c]);
	if (rc == TB_OK) {
		p->committed_seq = seq;
		memcpy(p->committed_hash, hash, 32);
	}
	return rc;
}

bool
tb_jpg_committed_head(const struct tb_jpg *p, int64_t *seq, uint8_t hash[32])
{
	if (!p->committed)
		return false;
	*seq = p->committed_seq;
	memcpy(hash, p->committed_hash, 32);
	return true;
}

/* ---- transactions ---- */

int
tb_jpg_ping(struct tb_jpg *p)
{
	int rc;

	if (p->in_tx)
		return TB_OK;
	if ((rc = ready(p)) != TB_OK)
		return rc;
	return prun(p, "SELECT 1", NULL, NULL, "ping");
}

int
tb_jpg_begin(struct tb_jpg *p, bool lazy)
{
	int rc;

	if (p->in_tx)
		return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS, "transaction already open");
	/* a session found gone by its BEGIN (the server restarted while it
	 * was idle) is made again at once, and BEGIN tried once more: the
	 * first transaction after a restart is not refused for nothing */
	for (int tries = 0;; tries++) {
		if ((rc = ready(p)) != TB_OK)
			return rc;
		/* a lazy one in the same round trip: both statements in one
		 * simple query, which is itself one implicit transaction
		 * block no longer once BEGIN has run */
		rc = lazy ? pscript(p, "BEGIN; SET LOCAL synchronous_commit = off", "begin")
		          : prun(p, "BEGIN", NULL, NULL, "begin");
		if (rc == TB_OK)
			break;
		if (!p->broken && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			PQclear(PQexec(p->conn, "ROLLBACK"));
		if (!p->broken || tries > 0)
			return rc;
	}
	p->in_tx = true;
	p->aborted = p->head_held = p->lost = p->committed = false;
	ab_trim(p, 0);
	pf_clear(p);
	p->depth = 0;
	return TB_OK;
}

/* After a failed transaction: the deferred answers read, the server's
 * transaction rolled back if it is still open. */
static void
tx_abandon(struct tb_jpg *p)
{
#ifdef LIBPQ_HAS_PIPELINING
	if (p->pending > 0)
		(void)pipe_end(p, NULL, "rollback");
#endif
	if (!p->broken && PQstatus(p->conn) == CONNECTION_OK &&
	    PQpipelineStatus(p->conn) == PQ_PIPELINE_OFF &&
	    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

int
tb_jpg_commit(struct tb_jpg *p)
{
	PGresult *res = NULL;
	int rc = TB_E_IO;

	if (!p->in_tx)
		return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS, "no transaction open");
	if (p->aborted || p->lost) {
		struct tb_diag why = *p->diag;

		tx_abandon(p);
		*p->diag = why;
		rc = tb_diag_set(p->diag, why.code == TB_E_JOURNAL_DOWN ? why.code : TB_E_IO,
		                 TB_DIAG_NOPOS,
		                 "transaction was aborted by an earlier error; nothing stored");
		goto done;
	}
	/* the deferred answers come back with COMMIT's; a COMMIT of a
	 * transaction the server aborted answers ROLLBACK without an error:
	 * checked by its tag */
	if (audit_flush(p) != TB_OK || (res = pexec(p, "COMMIT", NULL, "commit")) == NULL) {
		struct tb_diag why = *p->diag;

		tx_abandon(p);
		*p->diag = why;
		rc = why.code;
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		rc = tb_diag_set(p->diag, TB_E_IO, TB_DIAG_NOPOS,
		                 "postgresql: commit rolled back; nothing stored");
	} else {
		rc = TB_OK;
		p->committed = p->nab > 0;
	}
	PQclear(res);
done:
	p->in_tx = p->aborted = p->head_held = p->lost = false;
	ab_trim(p, 0);
	pf_clear(p);
	p->depth = 0;
	return rc;
}

int
tb_jpg_rollback(struct tb_jpg *p)
{
	int rc;

	if (!p->in_tx)
		return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS, "no transaction open");
#ifdef LIBPQ_HAS_PIPELINING
	if (p->pending > 0)
		(void)pipe_end(p, NULL, "rollback"); /* their failure is undone here */
#endif
	p->aborted = p->lost = false;
	/* a session that is gone took its transaction with it */
	rc = p->broken ? TB_OK : prun(p, "ROLLBACK", NULL, NULL, "rollback");
	p->in_tx = p->aborted = p->head_held = p->lost = false;
	ab_trim(p, 0);
	pf_clear(p);
	p->depth = 0;
	return rc;
}

/* ---- inbound ---- */

static void
p_msg(struct params *q, const struct tb_journal_msg *m)
{
	p_text(q, m->id);
	p_text(q, m->from);
	p_text(q, m->to);
	p_text(q, m->type);
	p_text(q, m->service);
	p_text(q, m->corr);
	p_text(q, m->digest);
	p_int(q, m->created);
	p_int(q, m->expires);
	p_blob(q, m->envelope, m->envelope_len);
}

/* Row columns c..c+9 (MSG_COLS order) into m, borrowed from r. */
static void
g_msg(PGresult *r, int row, int c, struct tb_journal_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->id = g_text(r, row, c);
	m->from = g_text(r, row, c + 1);
	m->to = g_text(r, row, c + 2);
	m->type = g_text(r, row, c + 3);
	m->service = g_text(r, row, c + 4);
	m->corr = g_text(r, row, c + 5);
	m->digest = g_text(r, row, c + 6);
	m->created = g_int(r, row, c + 7);
	m->expires = g_int(r, row, c + 8);
	m->envelope = (const uint8_t *)PQgetvalue(r, row, c + 9);
	m->envelope_len = (size_t)PQgetlength(r, row, c + 9);
}

#define MSG_COLS "id, sender, recipient, type, service, corr, digest, created, expires, envelope"

/* As journal.c's inbound_receipt: out may be NULL; with match, a stored
 * message of another digest or sender is TB_E_REPLAY without a receipt. */
static int
inbound_receipt(struct tb_jpg *p, const char *id, struct tb_buf *out,
                const struct tb_journal_msg *match)
{
	struct params q = {0};
	const char *dg, *from;
	PGresult *r;
	int rc = TB_OK;

	p_text(&q, id);
	r = pexec(p, "SELECT receipt, digest, sender FROM inbound WHERE id = $1", &q,
	          "inbound receipt");
	if (r == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 0) {
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "inbound %s", id);
		goto done;
	}
	dg = g_text(r, 0, 1);
	from = g_text(r, 0, 2);
	if (match != NULL && (dg == NULL || from == NULL || strcmp(dg, match->digest) != 0 ||
	                      strcmp(from, match->from) != 0))
		rc = tb_diag_set(p->diag, TB_E_REPLAY, TB_DIAG_NOPOS,
		                 "inbound %s: id reused by a different message", id);
	else if (out != NULL)
		rc = g_buf(p, r, 0, 0, out);
done:
	PQclear(r);
	return rc;
}

int
tb_jpg_inbound_put(struct tb_jpg *p, const struct tb_journal_msg *m, struct tb_buf *orig_receipt)
{
	struct params q = {0};
	struct pfent *e;
	int64_t n;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_msg(&q, m);
	p_blob(&q, m->receipt, m->receipt_len);
	/* an id the batch's prefetch found absent: the row goes out without
	 * waiting (pipelined); if another process stores a copy meanwhile,
	 * the unique id fails this transaction whole ("nothing stored") and
	 * the sender's retry gets the original receipt */
	if ((e = pf_find(p, 'i', m->id)) != NULL && !e->found) {
		e->used = true;
		return rows_add(p, ROWS_IN, m, 0);
	}
	/* ON CONFLICT on the id: a duplicate arriving at another process of
	 * the member waits for the first insert's transaction, then finds it */
	if ((rc = prun(p,
	               "INSERT INTO inbound (" MSG_COLS ", receipt) VALUES ($1, $2, $3, $4, $5,"
	               " $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
	               &q, &n, "inbound put")) != TB_OK)
		return rc;
	if (n == 1)
		return TB_OK;
	if ((rc = inbound_receipt(p, m->id, orig_receipt, m)) != TB_OK)
		return rc;
	return tb_diag_set(p->diag, TB_E_REPLAY, TB_DIAG_NOPOS, "inbound %s", m->id);
}

int
tb_jpg_inbound_receipt(struct tb_jpg *p, const char *id, struct tb_buf *out)
{
	int rc = ready(p);
	struct pfent *e;

	if (rc != TB_OK)
		return rc;
	if ((e = pf_find(p, 'i', id)) == NULL)
		return inbound_receipt(p, id, out, NULL);
	/* answered by the batch's prefetch, no round trip */
	if (!e->found)
		return tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "inbound %s", id);
	tb_buf_reset(out);
	if ((e->receipt_len == 0 ? tb_buf_reserve(out, 0)
	                         : tb_buf_add(out, e->receipt, e->receipt_len)) != TB_OK)
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "receipt");
	return TB_OK;
}

/* ---- prefetch: a batch's lookups in one round trip ---- */

/* s added to the array literal arr ("{"a","b",... without the closing
 * brace), quoted. */
static int
arr_add(struct tb_buf *arr, const char *s)
{
	int rc = tb_buf_adds(arr, arr->len > 0 ? ",\"" : "{\"");

	for (; *s != '\0' && rc == TB_OK; s++)
		if ((*s != '"' && *s != '\\') || (rc = tb_buf_addc(arr, '\\')) == TB_OK)
			rc = tb_buf_addc(arr, (uint8_t)*s);
	return rc == TB_OK ? tb_buf_addc(arr, '"') : rc;
}

/* The array literal arr closed (reset to "{}" when empty) as text. */
static const char *
arr_end(struct tb_buf *arr)
{
	if (arr->len == 0 && tb_buf_addc(arr, '{') != TB_OK)
		return NULL;
	if (tb_buf_addc(arr, '}') != TB_OK || tb_buf_addc(arr, '\0') != TB_OK)
		return NULL;
	return (const char *)arr->data;
}

/* A NULL element added to the array literal arr. */
static int
arr_null(struct tb_buf *arr)
{
	return tb_buf_adds(arr, arr->len > 0 ? ",NULL" : "{NULL");
}

/* b (n bytes) added to the array literal arr as a bytea element (hex). */
static int
arr_bytes(struct tb_buf *arr, const uint8_t *b, size_t n)
{
	char *hex = malloc(2 * n + 3);
	int rc;

	if (hex == NULL)
		return TB_E_NOMEM;
	memcpy(hex, "\\x", 2);
	tb_hex_encode(b, n, hex + 2);
	hex[2 * n + 2] = '\0';
	rc = arr_add(arr, hex);
	free(hex);
	return rc;
}

/* The rows of a kind, one statement each: its columns are arrays. */
static const char *const rows_sql[3] = {
    [ROWS_OUT] = "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
                 " $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bytea[],"
                 " $11::bigint[]) AS r (id, sender, recipient, type, service, corr, digest,"
                 " created, expires, envelope, next_attempt)),"
                 " o AS (INSERT INTO outbound (id, sender, recipient, type, service, corr,"
                 " digest, created, expires, next_attempt) SELECT id, sender, recipient, type,"
                 " service, corr, digest, created, expires, next_attempt FROM r"
                 " RETURNING seq, id)"
                 " INSERT INTO outbound_env (seq, envelope)"
                 " SELECT o.seq, r.envelope FROM o JOIN r ON r.id = o.id",
    [ROWS_IN] = "INSERT INTO inbound (" MSG_COLS ", receipt) SELECT * FROM unnest($1::text[],"
                " $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
                " $8::bigint[], $9::bigint[], $10::bytea[], $11::bytea[])",
    [ROWS_DLV] = "WITH r AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])"
                 " AS r (id, at, receipt)),"
                 " o AS (UPDATE outbound o SET state = 1, done_at = r.at,"
                 " attempts = greatest(o.attempts, 1) FROM r WHERE o.id = r.id AND o.state = 0"
                 " RETURNING o.seq, r.receipt)"
                 " INSERT INTO outbound_receipt (seq, receipt) SELECT seq, receipt FROM o"
                 " WHERE length(receipt) > 0",
};

/* The prefetched cases set since they were read, in one upsert. */
static int
cases_flush(struct tb_jpg *p)
{
	struct tb_buf col[5];
	struct params q = {0};
	int rc = TB_OK;

	for (int c = 0; c < 5; c++)
		tb_buf_init(&col[c]);
	for (size_t i = 0; i < p->npf && rc == TB_OK; i++) {
		struct pfent *e = &p->pf[i];
		char key[PF_KEY_MAX], num[2][24], *f[3], *sep;

		if (e->kind != 'c' || !e->dirty)
			continue;
		/* the key's three parts (case_pfkey) */
		snprintf(key, sizeof(key), "%s", e->id);
		f[0] = key;
		f[1] = (sep = strchr(f[0], '\x1f')) != NULL ? (*sep = '\0', sep + 1) : NULL;
		f[2] = f[1] && (sep = strchr(f[1], '\x1f')) != NULL ? (*sep = '\0', sep + 1) : NULL;
		if (f[2] == NULL)
			continue;
		snprintf(num[0], sizeof(num[0]), "%" PRId64, e->state);
		snprintf(num[1], sizeof(num[1]), "%" PRId64, e->at);
		if (arr_add(&col[0], f[0]) != TB_OK || arr_add(&col[1], f[1]) != TB_OK ||
		    arr_add(&col[2], f[2]) != TB_OK || arr_add(&col[3], num[0]) != TB_OK ||
		    arr_add(&col[4], num[1]) != TB_OK)
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "cases");
		e->dirty = false;
	}
	p->ndirty = 0;
	for (int c = 0; c < 5 && rc == TB_OK; c++) {
		const char *lit = arr_end(&col[c]);

		if (lit == NULL)
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "cases");
		else
			p_text(&q, lit);
	}
	if (rc == TB_OK)
		rc =
		    pdefer(p,
		           "INSERT INTO cases (requester, handler, case_id, state, updated)"
		           " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],"
		           " $5::bigint[]) ON CONFLICT (requester, handler, case_id) DO UPDATE SET"
		           " state = excluded.state, updated = excluded.updated",
		           &q, "flow statement");
	else
		p->lost = true; /* a set not written: the transaction cannot commit */
	for (int c = 0; c < 5; c++)
		tb_buf_free(&col[c]);
	return rc;
}

/* After a unit's undo: the cases it set may be set back, so none of the
 * prefetched answers is used again (the sets it made and did not write
 * are dropped: the sets before it were written when it began). */
static void
pf_forget_cases(struct tb_jpg *p)
{
	for (size_t i = 0; i < p->npf; i++)
		if (p->pf[i].kind == 'c') {
			p->pf[i].used = true;
			p->pf[i].dirty = false;
		}
	p->ndirty = 0;
}

/* Sends the rows collected (pipelined, as pdefer): a multi-row statement
 * a kind.  A duplicate id among them loses the transaction whole. */
static int
rows_flush(struct tb_jpg *p)
{
	int rc = TB_OK;

	static const char *const what[3] = {"outbound put", "inbound put", "outbound delivered"};

	p->flushing = true;
	for (int k = 0; k < 3 && rc == TB_OK; k++) {
		struct rows *r = &p->rows[k];
		struct params q = {0};

		if (r->n == 0)
			continue;
		for (int c = 0; c < rows_cols[k] && rc == TB_OK; c++) {
			const char *lit = arr_end(&r->col[c]);

			if (lit == NULL)
				rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "rows");
			else
				p_text(&q, lit);
		}
		if (rc == TB_OK)
			rc = pdefer(p, rows_sql[k], &q, what[k]);
		for (int c = 0; c < 11; c++)
			tb_buf_reset(&r->col[c]);
		r->n = 0;
	}
	if (rc == TB_OK && p->ndirty > 0)
		rc = cases_flush(p);
	p->flushing = false;
	return rc;
}

/* m (and next_attempt, or its receipt) collected as a new row of kind k
 * for rows_flush; sent at once when 500 are waiting. */
static int
rows_add(struct tb_jpg *p, int k, const struct tb_journal_msg *m, int64_t next_attempt)
{
	struct rows *r = &p->rows[k];
	char num[3][24];
	const char *txt[7] = {m->id, m->from, m->to, m->type, m->service, m->corr, m->digest};
	int rc = TB_OK;

	snprintf(num[0], sizeof(num[0]), "%" PRId64, m->created);
	snprintf(num[1], sizeof(num[1]), "%" PRId64, m->expires);
	snprintf(num[2], sizeof(num[2]), "%" PRId64, next_attempt);
	for (int c = 0; c < 7 && rc == TB_OK; c++)
		rc = txt[c] == NULL ? arr_null(&r->col[c]) : arr_add(&r->col[c], txt[c]);
	if (rc == TB_OK && (rc = arr_add(&r->col[7], num[0])) == TB_OK &&
	    (rc = arr_add(&r->col[8], num[1])) == TB_OK &&
	    (rc = arr_bytes(&r->col[9], m->envelope, m->envelope_len)) == TB_OK)
		rc = k == ROWS_OUT ? arr_add(&r->col[10], num[2])
		                   : arr_bytes(&r->col[10], m->receipt, m->receipt_len);
	if (rc != TB_OK) {
		/* the columns disagree now: the transaction cannot commit */
		p->lost = true;
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "rows");
	}
	r->n++;
	return r->n >= 500 ? rows_flush(p) : TB_OK;
}

/* A delivery collected for rows_flush (ROWS_DLV). */
static int
rows_delivered(struct tb_jpg *p, const char *id, int64_t at, const uint8_t *receipt,
               size_t receipt_len)
{
	struct rows *r = &p->rows[ROWS_DLV];
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, at);
	if (arr_add(&r->col[0], id) != TB_OK || arr_add(&r->col[1], num) != TB_OK ||
	    arr_bytes(&r->col[2], receipt, receipt_len) != TB_OK) {
		p->lost = true;
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "rows");
	}
	r->n++;
	return r->n >= 500 ? rows_flush(p) : TB_OK;
}

/* A new entry for key (not found yet). */
static int
pf_add(struct tb_jpg *p, char kind, const char *key)
{
	struct pfent *e;

	if (p->npf == p->cappf) {
		size_t cap = p->cappf ? 2 * p->cappf : 64;
		struct pfent *n = realloc(p->pf, cap * sizeof(*n));

		if (n == NULL)
			return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "prefetch");
		p->pf = n;
		p->cappf = cap;
	}
	e = &p->pf[p->npf++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	snprintf(e->id, sizeof(e->id), "%s", key);
	return TB_OK;
}

/* Drops the entries from first on (a prefetch that failed). */
static void
pf_drop(struct tb_jpg *p, size_t first)
{
	while (p->npf > first)
		free(p->pf[--p->npf].receipt);
}

/* Runs sql with q and marks the entries from first on whose key a row
 * names (column 0) found: column 1 is the receipt ('i') or the state.
 * The statements look each key up on its own (a lateral join the
 * planner cannot flatten, hence the LIMIT or the row lock): a plan for
 * "id = ANY($1)", or a join, made while the table was small scans the
 * whole table for the connection's lifetime. */
static int
pf_run(struct tb_jpg *p, size_t first, const struct params *q, const char *sql, const char *what)
{
	PGresult *r;
	int rc = TB_OK;

	if ((r = pexec(p, sql, q, what)) == NULL)
		return TB_E_IO;
	for (int i = 0; i < PQntuples(r) && rc == TB_OK; i++) {
		const char *key = g_text(r, i, 0);

		for (size_t k = first; key != NULL && k < p->npf; k++) {
			struct pfent *e = &p->pf[k];

			if (e->found || strcmp(e->id, key) != 0)
				continue;
			e->found = true;
			if (e->kind != 'i') {
				e->state = g_int(r, i, 1);
			} else if ((e->receipt_len = (size_t)PQgetlength(r, i, 1)) > 0) {
				if ((e->receipt = malloc(e->receipt_len)) == NULL)
					rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS,
					                 "prefetch");
				else
					memcpy(e->receipt, PQgetvalue(r, i, 1), e->receipt_len);
			}
		}
	}
	PQclear(r);
	return rc;
}

/* The checks every prefetch makes first. */
static int
pf_ready(struct tb_jpg *p)
{
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	if (!p->in_tx)
		return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS,
		                   "prefetch outside a transaction");
	return TB_OK;
}

/* ids[0..n) (inbound when in, else outbound) prefetched with sql. */
static int
pf_ids(struct tb_jpg *p, bool in, const char *const *ids, const char (*oids)[33], size_t n,
       const char *sql, const char *what)
{
	size_t first = p->npf;
	struct params q = {0};
	struct tb_buf arr;
	const char *lit;
	int rc;

	if ((rc = pf_ready(p)) != TB_OK || n == 0)
		return rc;
	tb_buf_init(&arr);
	for (size_t i = 0; i < n && rc == TB_OK; i++)
		if ((rc = pf_add(p, in ? 'i' : 'o', in ? ids[i] : oids[i])) == TB_OK &&
		    arr_add(&arr, in ? ids[i] : oids[i]) != TB_OK)
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "prefetch");
	if (rc == TB_OK && (lit = arr_end(&arr)) == NULL)
		rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "prefetch");
	if (rc == TB_OK) {
		p_text(&q, lit);
		rc = pf_run(p, first, &q, sql, what);
	}
	if (rc != TB_OK)
		pf_drop(p, first);
	tb_buf_free(&arr);
	return rc;
}

int
tb_jpg_inbound_prefetch(struct tb_jpg *p, const char *const *ids, size_t n)
{
	return pf_ids(p, true, ids, NULL, n,
	              "SELECT k.id, i.receipt FROM unnest($1::text[]) AS k (id) CROSS JOIN LATERAL"
	              " (SELECT receipt FROM inbound WHERE id = k.id LIMIT 1) AS i",
	              "inbound prefetch");
}

bool
tb_jpg_outbound_known(struct tb_jpg *p, const char *id)
{
	struct pfent *e = pf_find(p, 'o', id);

	return e != NULL && e->found;
}

void
tb_jpg_lose(struct tb_jpg *p)
{
	if (p->in_tx)
		p->lost = true;
}

int
tb_jpg_outbound_prefetch(struct tb_jpg *p, const char (*ids)[33], size_t n)
{
	/* locked in id order (two transactions locking overlapping sets
	 * wait for each other rather than deadlock), so the state read
	 * holds until the commit */
	return pf_ids(p, false, NULL, ids, n,
	              "SELECT k.id, o.state::bigint FROM (SELECT id FROM unnest($1::text[])"
	              " AS u (id) ORDER BY id) AS k CROSS JOIN LATERAL (SELECT state FROM"
	              " outbound WHERE id = k.id FOR UPDATE) AS o",
	              "outbound prefetch");
}

/* A case's key in the prefetch's table: requester, handler and case id
 * joined by unit separators; false when it does not fit. */
static bool
case_pfkey(const char *req, const char *hnd, const char *cid, char key[PF_KEY_MAX])
{
	int n = snprintf(key, PF_KEY_MAX, "%s\x1f%s\x1f%s", req, hnd, cid);

	return n > 0 && n < PF_KEY_MAX;
}

int
tb_jpg_case_prefetch(struct tb_jpg *p, const char *const *req, const char *const *hnd,
                     const char *const *cid, size_t n)
{
	size_t first = p->npf;
	struct params q = {0};
	struct tb_buf arr[3];
	const char *lit[3];
	char key[PF_KEY_MAX];
	int rc;

	if ((rc = pf_ready(p)) != TB_OK || n == 0)
		return rc;
	for (int c = 0; c < 3; c++)
		tb_buf_init(&arr[c]);
	for (size_t i = 0; i < n && rc == TB_OK; i++) {
		if (!case_pfkey(req[i], hnd[i], cid[i], key) || pf_find(p, 'c', key) != NULL)
			continue;
		if ((rc = pf_add(p, 'c', key)) == TB_OK &&
		    (arr_add(&arr[0], req[i]) != TB_OK || arr_add(&arr[1], hnd[i]) != TB_OK ||
		     arr_add(&arr[2], cid[i]) != TB_OK))
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "prefetch");
	}
	for (int c = 0; c < 3 && rc == TB_OK; c++)
		if ((lit[c] = arr_end(&arr[c])) == NULL)
			rc = tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "prefetch");
	if (rc == TB_OK && p->npf > first) {
		for (int c = 0; c < 3; c++)
			p_text(&q, lit[c]);
		rc = pf_run(p, first, &q,
		            "SELECT k.r || chr(31) || k.h || chr(31) || k.c, s.state FROM"
		            " unnest($1::text[], $2::text[], $3::text[]) AS k (r, h, c)"
		            " CROSS JOIN LATERAL (SELECT state FROM cases WHERE requester = k.r"
		            " AND handler = k.h AND case_id = k.c LIMIT 1) AS s",
		            "case prefetch");
	}
	if (rc != TB_OK)
		pf_drop(p, first);
	for (int c = 0; c < 3; c++)
		tb_buf_free(&arr[c]);
	return rc;
}

/* ---- inbox ---- */

int
tb_jpg_inbox_list(struct tb_jpg *p, size_t limit, int64_t after_seq, tb_journal_inbox_cb cb,
                  void *ctx)
{
	struct tb_journal_msg m;
	struct params q = {0};
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_int(&q, after_seq);
	p_int(&q, limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	r = pexec(p,
	          "SELECT seq, " MSG_COLS ", receipt FROM inbound WHERE acked = 0 AND seq > $1"
	          " ORDER BY seq LIMIT $2",
	          &q, "inbox list");
	if (r == NULL)
		return TB_E_IO;
	rc = TB_OK;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		g_msg(r, i, 1, &m);
		m.receipt = (const uint8_t *)PQgetvalue(r, i, 11);
		m.receipt_len = (size_t)PQgetlength(r, i, 11);
		rc = cb(ctx, g_int(r, i, 0), &m);
	}
	PQclear(r);
	return rc;
}

int
tb_jpg_inbox_ack(struct tb_jpg *p, const char *id)
{
	struct params q = {0};
	int64_t n;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_text(&q, id);
	p_int(&q, (int64_t)time(NULL));
	if ((rc = prun(p, "UPDATE inbound SET acked = 1, acked_at = $2 WHERE id = $1 AND acked = 0",
	               &q, &n, "inbox ack")) != TB_OK)
		return rc;
	return n == 1 ? TB_OK : inbound_receipt(p, id, NULL, NULL);
}

/* One bigint (count or min) into *n; NULL -> TB_E_NOTFOUND. */
static int
one_int(struct tb_jpg *p, const char *sql, int64_t *n, const char *what)
{
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	if ((r = pexec(p, sql, NULL, what)) == NULL)
		return TB_E_IO;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "%s: none", what);
	} else {
		*n = g_int(r, 0, 0);
		rc = TB_OK;
	}
	PQclear(r);
	return rc;
}

int
tb_jpg_inbox_count(struct tb_jpg *p, int64_t *n)
{
	return one_int(p, "SELECT count(*) FROM inbound WHERE acked = 0", n, "inbox count");
}

/* ---- outbound ---- */

int
tb_jpg_outbound_put(struct tb_jpg *p, const struct tb_journal_msg *m, int64_t next_attempt)
{
	struct params q = {0};
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_msg(&q, m);
	p_int(&q, next_attempt);
	/* one statement: the state row, and its envelope row when new */
	r = pexec(p,
	          "WITH o AS (INSERT INTO outbound (id, sender, recipient, type, service, corr,"
	          " digest, created, expires, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, $7,"
	          " $8, $9, $11) ON CONFLICT (id) DO NOTHING RETURNING seq)"
	          " INSERT INTO outbound_env (seq, envelope) SELECT seq, $10::bytea FROM o",
	          &q, "outbound put");
	if (r == NULL)
		return TB_E_IO;
	if (strtoll(PQcmdTuples(r), NULL, 10) != 1)
		rc = tb_diag_set(p->diag, TB_E_REPLAY, TB_DIAG_NOPOS, "outbound %s", m->id);
	PQclear(r);
	return rc;
}

int
tb_jpg_outbound_put_new(struct tb_jpg *p, const struct tb_journal_msg *m, int64_t next_attempt)
{
	int rc;

	if (!p->in_tx)
		return tb_jpg_outbound_put(p, m, next_attempt);
	if ((rc = ready(p)) != TB_OK)
		return rc;
	/* a new id: nothing to be told back, so nothing waited for, and the
	 * rows of a bulk go in one statement; a duplicate (which a new id
	 * is not) loses the transaction */
	return rows_add(p, ROWS_OUT, m, next_attempt);
}

int
tb_jpg_outbound_due(struct tb_jpg *p, int64_t now, size_t limit, bool claim, tb_journal_out_cb cb,
                    void *ctx)
{
	struct tb_journal_out o;
	struct params q = {0};
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_int(&q, now);
	p_int(&q, limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	p_int(&q, (int64_t)time(NULL) + TB_JPG_LEASE_S);
	/* A claim: the rows are locked (rows another process is
	 * claiming are skipped, not waited for) and their next attempt moved
	 * to the end of the lease, so that no other process of the member
	 * lists them meanwhile.  The caller's own "sent" mark or outcome
	 * replaces the lease; if the process dies first, the messages are
	 * due again when it ends.  The callback sees the next attempt as it
	 * was. */
	if (!claim) {
		q.n = 2;
		r = pexec(
		    p,
		    "SELECT o.id, o.sender, o.recipient, o.type, o.service, o.corr, o.digest,"
		    " o.created, o.expires, e.envelope, o.attempts, o.next_attempt, o.last_error"
		    " FROM outbound o JOIN outbound_env e ON e.seq = o.seq"
		    " WHERE o.state = 0 AND o.next_attempt <= $1"
		    " ORDER BY o.next_attempt, o.seq LIMIT $2",
		    &q, "outbound due");
	} else
		r = pexec(
		    p,
		    "WITH c AS (SELECT seq, next_attempt AS was FROM outbound"
		    "  WHERE state = 0 AND next_attempt <= $1 ORDER BY next_attempt, seq LIMIT $2"
		    "  FOR UPDATE SKIP LOCKED),"
		    " u AS (UPDATE outbound o SET next_attempt = greatest(o.next_attempt, $3)"
		    "  FROM c WHERE o.seq = c.seq RETURNING o.*, c.was)"
		    " SELECT u.id, u.sender, u.recipient, u.type, u.service, u.corr, u.digest,"
		    " u.created, u.expires, e.envelope, u.attempts, u.was, u.last_error"
		    " FROM u JOIN outbound_env e ON e.seq = u.seq ORDER BY u.was, u.seq",
		    &q, "outbound due");
	if (r == NULL)
		return TB_E_IO;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		memset(&o, 0, sizeof(o));
		g_msg(r, i, 0, &o.msg);
		o.state = TB_JOURNAL_QUEUED;
		o.attempts = g_int(r, i, 10);
		o.next_attempt = g_int(r, i, 11);
		o.last_error = g_text(r, i, 12);
		rc = cb(ctx, &o);
	}
	PQclear(r);
	return rc;
}

/* After an UPDATE of a queued row changed nothing: why. */
static int
not_queued(struct tb_jpg *p, const char *id, enum tb_journal_state *state)
{
	struct tb_journal_status stt;
	int rc = tb_jpg_outbound_status(p, id, &stt, NULL);

	if (rc != TB_OK)
		return rc;
	*state = stt.state;
	return tb_diag_set(p->diag, TB_E_JOURNAL_STATE, TB_DIAG_NOPOS, "outbound %s is %s", id,
	                   tb_journal_state_name(stt.state));
}

static int
update_queued(struct tb_jpg *p, const char *sql, const struct params *q, const char *id,
              const char *what)
{
	enum tb_journal_state state;
	struct pfent *e;
	int64_t n;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	if ((e = pf_find(p, 'o', id)) != NULL)
		e->used = true; /* the state may change here */
	if ((rc = prun(p, sql, q, &n, what)) != TB_OK)
		return rc;
	return n == 1 ? TB_OK : not_queued(p, id, &state);
}

int
tb_jpg_outbound_delivered(struct tb_jpg *p, const char *id, const uint8_t *receipt,
                          size_t receipt_len, int64_t at, bool *fresh)
{
	enum tb_journal_state state;
	struct params q = {0};
	struct pfent *e;
	PGresult *res;
	int rc;

	*fresh = false;
	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_text(&q, id);
	p_int(&q, at);
	p_blob(&q, receipt, receipt_len);
	/* a row the batch's prefetch locked: its state is known, so the
	 * change goes out without waiting, with the batch's others */
	if ((e = pf_find(p, 'o', id)) != NULL && e->found) {
		if (e->state == TB_JOURNAL_DELIVERED)
			return TB_OK;
		if (e->state != TB_JOURNAL_QUEUED)
			return tb_diag_set(p->diag, TB_E_JOURNAL_STATE, TB_DIAG_NOPOS,
			                   "outbound %s is %s", id,
			                   tb_journal_state_name(e->state));
		if ((rc = rows_delivered(p, id, at, receipt, receipt_len)) != TB_OK)
			return rc;
		e->state = TB_JOURNAL_DELIVERED;
		*fresh = true;
		return TB_OK;
	}
	/* the state change and the receipt row in one statement; a row back
	 * means this call moved the message from queued to delivered */
	res =
	    pexec(p,
	          "WITH o AS (UPDATE outbound SET state = 1, done_at = $2,"
	          " attempts = greatest(attempts, 1) WHERE id = $1 AND state = 0 RETURNING seq),"
	          " r AS (INSERT INTO outbound_receipt (seq, receipt) SELECT seq, $3::bytea FROM o"
	          " WHERE length($3::bytea) > 0)"
	          " SELECT seq FROM o",
	          &q, "outbound delivered");
	if (res == NULL)
		return TB_E_IO;
	*fresh = PQntuples(res) == 1;
	PQclear(res);
	if (*fresh)
		return TB_OK;
	rc = not_queued(p, id, &state);
	if (rc == TB_E_JOURNAL_STATE && state == TB_JOURNAL_DELIVERED) {
		tb_diag_clear(p->diag);
		return TB_OK;
	}
	return rc;
}

int
tb_jpg_outbound_retry(struct tb_jpg *p, const char *id, int64_t next_attempt,
                      const char *last_error)
{
	struct params q = {0};

	p_text(&q, id);
	p_int(&q, next_attempt);
	p_text(&q, last_error);
	return update_queued(p,
	                     "UPDATE outbound SET attempts = attempts + 1, next_attempt = $2,"
	                     " last_error = $3 WHERE id = $1 AND state = 0",
	                     &q, id, "outbound retry");
}

int
tb_jpg_outbound_reschedule(struct tb_jpg *p, const char *id, int64_t next_attempt)
{
	struct params q = {0};

	p_text(&q, id);
	p_int(&q, next_attempt);
	return update_queued(p, "UPDATE outbound SET next_attempt = $2 WHERE id = $1 AND state = 0",
	                     &q, id, "outbound reschedule");
}

int
tb_jpg_outbound_extend(struct tb_jpg *p, const char (*ids)[33], size_t n, int64_t until)
{
	struct params q = {0};
	char *arr;
	size_t k = 0;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	/* a text[] literal: the ids are 32 hex digits each */
	if ((arr = malloc(n * 33 + 2)) == NULL)
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "lease ids");
	arr[k++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			arr[k++] = ',';
		memcpy(arr + k, ids[i], 32);
		k += 32;
	}
	arr[k++] = '}';
	arr[k] = '\0';
	p_text(&q, arr);
	p_int(&q, until);
	rc = prun(p,
	          "UPDATE outbound SET next_attempt = $2"
	          " WHERE id = ANY($1::text[]) AND state = 0 AND next_attempt < $2",
	          &q, NULL, "outbound lease");
	free(arr);
	return rc;
}

int
tb_jpg_outbound_release_held(struct tb_jpg *p, int64_t now, int64_t *n)
{
	struct params q = {0};
	int64_t k;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_int(&q, now);
	rc = prun(p,
	          "UPDATE outbound SET next_attempt = $1"
	          " WHERE state = 0 AND last_error IS NULL AND next_attempt > $1",
	          &q, &k, "outbound release");
	if (rc == TB_OK && n != NULL)
		*n = k;
	return rc;
}

int
tb_jpg_outbound_failed(struct tb_jpg *p, const char *id, const char *reason, int64_t at)
{
	struct params q = {0};

	p_text(&q, id);
	p_text(&q, reason);
	p_int(&q, at);
	return update_queued(p,
	                     "UPDATE outbound SET state = 2, reason = $2, done_at = $3"
	                     " WHERE id = $1 AND state = 0",
	                     &q, id, "outbound failed");
}

int
tb_jpg_outbound_status(struct tb_jpg *p, const char *id, struct tb_journal_status *out,
                       struct tb_buf *receipt)
{
	struct params q = {0};
	int64_t done_at;
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_text(&q, id);
	r = pexec(p,
	          "SELECT o.state::bigint, o.attempts, o.next_attempt, o.done_at, o.last_error,"
	          " o.reason, r.receipt, o.sender, o.recipient, o.type, o.digest, o.corr"
	          " FROM outbound o LEFT JOIN outbound_receipt r ON r.seq = o.seq WHERE o.id = $1",
	          &q, "outbound status");
	if (r == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 0) {
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "outbound %s", id);
		goto done;
	}
	out->state = (enum tb_journal_state)g_int(r, 0, 0);
	out->attempts = g_int(r, 0, 1);
	out->next_attempt = g_int(r, 0, 2);
	done_at = g_int(r, 0, 3);
	if (out->state == TB_JOURNAL_DELIVERED)
		out->delivered_at = done_at;
	else if (out->state == TB_JOURNAL_FAILED)
		out->failed_at = done_at;
	copy_str(out->last_error, sizeof(out->last_error), g_text(r, 0, 4));
	copy_str(out->reason, sizeof(out->reason), g_text(r, 0, 5));
	copy_str(out->from, sizeof(out->from), g_text(r, 0, 7));
	copy_str(out->to, sizeof(out->to), g_text(r, 0, 8));
	copy_str(out->type, sizeof(out->type), g_text(r, 0, 9));
	copy_str(out->digest, sizeof(out->digest), g_text(r, 0, 10));
	copy_str(out->corr, sizeof(out->corr), g_text(r, 0, 11));
	if (receipt != NULL)
		rc = g_buf(p, r, 0, 6, receipt);
done:
	PQclear(r);
	return rc;
}

int
tb_jpg_outbound_pending(struct tb_jpg *p, int64_t *n)
{
	return one_int(p, "SELECT count(*) FROM outbound WHERE state = 0", n, "outbound pending");
}

int
tb_jpg_outbound_next_due(struct tb_jpg *p, int64_t *when)
{
	return one_int(p, "SELECT min(next_attempt) FROM outbound WHERE state = 0", when,
	               "outbound next due");
}

/* ---- retention ---- */

/* seqs as a bigint[] literal, "{1,2,3}"; NULL on memory error. */
static char *
seq_array(const int64_t *seqs, size_t n)
{
	char *s = malloc(n * 21 + 3), *w = s;

	if (s == NULL)
		return NULL;
	*w++ = '{';
	for (size_t i = 0; i < n; i++)
		w += sprintf(w, "%s%" PRId64, i ? "," : "", seqs[i]);
	*w++ = '}';
	*w = '\0';
	return s;
}

/* One direction's finished rows into the archive and seqs[*n..]. */
static int
retire_list(struct tb_jpg *p, bool in, int64_t exp_bound, int64_t done_bound, size_t limit,
            const struct tb_journal_archiver *a, int64_t *seqs, size_t *n)
{
	struct tb_journal_retired r;
	struct params q = {0};
	PGresult *res;
	int rc = TB_OK;

	p_int(&q, exp_bound);
	p_int(&q, done_bound);
	p_int(&q, (int64_t)limit);
	res = pexec(p,
	            in ? "SELECT seq, id, digest, sender, type, coalesce(acked_at, expires),"
	                 " envelope, receipt, 0::bigint FROM inbound WHERE acked = 1"
	                 " AND expires < $1 AND coalesce(acked_at, expires) <= $2"
	                 " ORDER BY seq LIMIT $3"
	               : "SELECT o.seq, o.id, o.digest, o.recipient, o.type, o.done_at,"
	                 " e.envelope, r.receipt, o.state::bigint FROM outbound o"
	                 " LEFT JOIN outbound_env e ON e.seq = o.seq"
	                 " LEFT JOIN outbound_receipt r ON r.seq = o.seq"
	                 " WHERE o.state <> 0 AND o.expires < $1 AND coalesce(o.done_at, 0) <= $2"
	                 " ORDER BY o.seq LIMIT $3",
	            &q, "retention list");
	if (res == NULL)
		return TB_E_IO;
	for (int i = 0; i < PQntuples(res) && rc == TB_OK; i++) {
		memset(&r, 0, sizeof(r));
		r.dir = in ? 'i' : 'o';
		r.id = g_text(res, i, 1);
		r.digest = g_text(res, i, 2);
		r.peer = g_text(res, i, 3);
		r.type = g_text(res, i, 4);
		r.at = g_int(res, i, 5);
		r.envelope = (const uint8_t *)PQgetvalue(res, i, 6);
		r.envelope_len = (size_t)PQgetlength(res, i, 6);
		r.receipt = (const uint8_t *)PQgetvalue(res, i, 7);
		r.receipt_len = (size_t)PQgetlength(res, i, 7);
		r.state =
		    in ? "acked" : tb_journal_state_name((enum tb_journal_state)g_int(res, i, 8));
		if (a != NULL && (rc = a->put(a->ctx, &r)) != TB_OK)
			rc = tb_diag_set(p->diag, rc, TB_DIAG_NOPOS, "archive: message %s",
			                 r.id ? r.id : "?");
		else
			seqs[(*n)++] = g_int(res, i, 0);
	}
	PQclear(res);
	return rc;
}

/* Deletes the listed rows (seqs[0..nin) inbound, the rest outbound) in
 * one transaction, or in the caller's. */
static int
retire_delete(struct tb_jpg *p, const int64_t *seqs, size_t nin, size_t n)
{
	char *ain = seq_array(seqs, nin), *aout = seq_array(seqs + nin, n - nin);
	struct params qi = {0}, qo = {0};
	bool own = !p->in_tx;
	int rc = TB_E_NOMEM;

	if (ain == NULL || aout == NULL) {
		tb_diag_set(p->diag, rc, TB_DIAG_NOPOS, "retention");
		goto out;
	}
	p_text(&qi, ain);
	p_text(&qo, aout);
	if (own && (rc = tb_jpg_begin(p, false)) != TB_OK)
		goto out;
	/* the envelope and receipt rows go with outbound (ON DELETE CASCADE) */
	if ((rc = prun(p, "DELETE FROM inbound WHERE seq = ANY($1::bigint[])", &qi, NULL,
	               "retention delete")) == TB_OK)
		rc = prun(p, "DELETE FROM outbound WHERE seq = ANY($1::bigint[])", &qo, NULL,
		          "retention delete");
	if (own && rc == TB_OK) {
		rc = tb_jpg_commit(p);
	} else if (own) {
		struct tb_diag why = *p->diag;

		if (tb_jpg_rollback(p) != TB_OK) {
			/* out of the transaction either way; rc's reason is told */
		}
		*p->diag = why;
	}
out:
	free(ain);
	free(aout);
	return rc;
}

int
tb_jpg_retire(struct tb_jpg *p, int64_t exp_bound, int64_t done_bound, size_t limit,
              const struct tb_journal_archiver *a, size_t *removed)
{
	int64_t *seqs;
	size_t n = 0, nin;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	if ((seqs = calloc(2 * limit, sizeof(*seqs))) == NULL)
		return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS, "retention");
	/* listed outside a transaction, as on SQLite (journal.c): the rows
	 * are final and their bounds only move forward */
	if ((rc = retire_list(p, true, exp_bound, done_bound, limit, a, seqs, &n)) != TB_OK)
		goto out;
	nin = n;
	if ((rc = retire_list(p, false, exp_bound, done_bound, limit, a, seqs, &n)) != TB_OK ||
	    n == 0)
		goto out;
	/* archived durably before anything is deleted */
	if (a != NULL && (rc = a->sync(a->ctx)) != TB_OK) {
		rc = tb_diag_set(p->diag, rc, TB_DIAG_NOPOS, "archive: cannot sync");
		goto out;
	}
	if ((rc = retire_delete(p, seqs, nin, n)) == TB_OK && removed != NULL)
		*removed = n;
out:
	free(seqs);
	return rc;
}

int
tb_jpg_prune(struct tb_jpg *p, int64_t bound, size_t *removed)
{
	struct params q = {0};
	int64_t a = 0, b = 0;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_int(&q, bound);
	if ((rc = prun(p, "DELETE FROM inbound WHERE acked = 1 AND expires < $1", &q, &a,
	               "prune")) != TB_OK ||
	    (rc = prun(p, "DELETE FROM outbound WHERE state <> 0 AND expires < $1", &q, &b,
	               "prune")) != TB_OK)
		return rc;
	if (removed != NULL)
		*removed = (size_t)(a + b);
	return TB_OK;
}

/* ---- units and the audit chain ---- */

int
tb_jpg_unit(struct tb_jpg *p, enum tb_jpg_unit op)
{
	static const char *const sql[] = {
	    [TB_JPG_SAVEPOINT] = "SAVEPOINT tb_unit",
	    [TB_JPG_UNDO] = "ROLLBACK TO SAVEPOINT tb_unit",
	    [TB_JPG_RELEASE] = "RELEASE SAVEPOINT tb_unit",
	};
	int rc;

	if (op != TB_JPG_UNDO && (rc = ready(p)) != TB_OK)
		return rc;
	/* the unit's audit entries (not written yet) are kept or dropped
	 * with it */
	if (op == TB_JPG_SAVEPOINT) {
		if (p->depth == (int)(sizeof(p->marks) / sizeof(p->marks[0])))
			return tb_diag_set(p->diag, TB_E_ARG, TB_DIAG_NOPOS,
			                   "units nested too deep");
		/* the rows collected so far go before the savepoint: an undo
		 * must not take them along */
		if (ROWS_WAITING(p) && (rc = rows_flush(p)) != TB_OK)
			return rc;
		rows_mark(p, &p->rmarks[p->depth], false);
		p->marks[p->depth++] = p->nab;
	} else if (p->depth > 0) {
		p->depth--;
		if (op == TB_JPG_UNDO) {
			ab_trim(p, p->marks[p->depth]);
			rows_mark(p, &p->rmarks[p->depth], true);
			pf_forget_cases(p);
		}
	}
	if (op == TB_JPG_UNDO)
		p->aborted = false;
	/* opening and keeping a unit wait for nothing: their answers come
	 * with the unit's next statement that waits (an undo waits).  The
	 * rows the unit collected (rows_add) and did not send yet are
	 * dropped by its undo, the ones it sent are undone by the server;
	 * after a release they are the transaction's */
	if (op != TB_JPG_UNDO)
		return pdefer_keep(p, sql[op], NULL, "savepoint");
	bool was = p->flushing;
	p->flushing = true;
	rc = prun(p, sql[op], NULL, NULL, "savepoint");
	p->flushing = was;
	return rc;
}

int
tb_jpg_audit_head(struct tb_jpg *p, int64_t *seq, uint8_t hash[32])
{
	const char *hex;
	PGresult *r;
	int rc;

	*seq = 0;
	memset(hash, 0, 32);
	if ((rc = ready(p)) != TB_OK)
		return rc;
	r = pexec(p, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", NULL, "audit head");
	if (r == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 1) {
		*seq = g_int(r, 0, 0);
		hex = g_text(r, 0, 1);
		/* extending a damaged head would hide the damage */
		if (hex == NULL || strlen(hex) != 64 || !tb_hex_decode(hex, 64, hash, 32))
			rc = tb_diag_set(p->diag, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "audit head %" PRId64 " has a malformed hash", *seq);
	}
	PQclear(r);
	return rc;
}

/* The chain's hash when its head is seq: start when empty, else entry
 * 1's (read once; journal.c's audit_chain_of). */
static int
chain_of(struct tb_jpg *p, int64_t seq, enum tb_audit_hash start, bool *known,
         enum tb_audit_hash *chain, enum tb_audit_hash *h)
{
	PGresult *r;
	int rc = TB_OK;

	*h = start;
	if (seq == 0)
		return TB_OK;
	if (*known) {
		*h = *chain;
		return TB_OK;
	}
	r = pexec(p, "SELECT dir, event, detail FROM audit WHERE seq = 1", NULL, "audit entry 1");
	if (r == NULL)
		return TB_E_IO;
	/* entry 1 gone (verify reports it): hashed as a new chain would be */
	if (PQntuples(r) == 1) {
		const char *dir = g_text(r, 0, 0);
		if (tb_journal_audit_chain_hash(dir != NULL ? dir[0] : '?', g_text(r, 0, 1),
		                                g_text(r, 0, 2), h) != TB_OK) {
			rc = tb_diag_set(p->diag, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "audit entry 1 names an unknown chain hash");
		} else {
			*known = true;
			*chain = *h;
		}
	}
	PQclear(r);
	return rc;
}

/* One row, entry seq after prev hashed with h (deferred: a failed append
 * loses the transaction, commit says so, and the chain is appended only
 * by committed transactions); its hash into hash. */
static int
audit_row_insert(struct tb_jpg *p, enum tb_audit_hash h, int64_t seq, const uint8_t prev[32],
                 char dir, const char *msgid, const char *digest_hex, const char *peer, int64_t at,
                 const char *event, const char *detail, uint8_t hash[32])
{
	char prev_hex[65], hash_hex[65], dirs[2] = {dir, '\0'};
	struct params q = {0};
	int rc;

	if ((rc = tb_journal_audit_hash_h(h, seq, prev, dir, msgid, digest_hex, peer, at, event,
	                                  detail, hash)) != TB_OK)
		return tb_diag_set(p->diag, rc, TB_DIAG_NOPOS, "audit hash");
	tb_hex_encode(prev, 32, prev_hex);
	tb_hex_encode(hash, 32, hash_hex);
	p_int(&q, seq);
	if (p->arows != NULL) {
		char ats[24];
		const char *col[10] = {q.num[0], prev_hex, dirs,  msgid,    digest_hex,
		                       peer,     ats,      event, hash_hex, detail};

		snprintf(ats, sizeof(ats), "%" PRId64, at);
		for (int c = 0; c < 10; c++)
			if (arr_add(&p->arows[c], col[c]) != TB_OK)
				return tb_diag_set(p->diag, TB_E_NOMEM, TB_DIAG_NOPOS,
				                   "audit rows");
		p->narows++;
		return TB_OK;
	}
	p_text(&q, prev_hex);
	p_text(&q, dirs);
	p_text(&q, msgid);
	p_text(&q, digest_hex);
	p_text(&q, peer);
	p_int(&q, at);
	p_text(&q, event);
	p_text(&q, hash_hex);
	p_text(&q, detail);
	return pdefer(p,
	              "INSERT INTO audit (seq, prev, dir, msgid, digest, peer, at, event, hash,"
	              " detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	              &q, "audit append");
}

/* The append proper, inside a transaction: the lock, the head and the
 * chain's hash (once per transaction), the row, after the "chain" entry
 * that starts an SM3 chain. */
static int
audit_insert(struct tb_jpg *p, char dir, const char *msgid, const char *digest_hex,
             const char *peer, int64_t at, const char *event, const char *detail, int64_t *seq,
             uint8_t hash[32])
{
	uint8_t prev[32];
	int rc;

	/* one chain for every process: the lock is held to the end of the
	 * transaction, so after the first append in it the head is known
	 * here and neither the lock nor the head is asked for again */
	if (p->head_held) {
		*seq = p->head_seq;
		memcpy(prev, p->head_hash, 32);
	} else if ((rc = pdefer(p, "SELECT pg_advisory_xact_lock(" AUDIT_LOCK ")", NULL,
	                        "audit lock")) != TB_OK ||
	           (rc = tb_jpg_audit_head(p, seq, prev)) != TB_OK ||
	           (rc = chain_of(p, *seq, p->astart, p->aknown, p->achain, &p->head_h)) != TB_OK) {
		return rc;
	}
	if (*seq == INT64_MAX)
		return tb_diag_set(p->diag, TB_E_AUDIT, TB_DIAG_NOPOS, "audit chain is full");
	p->head_held = false;
	if (*seq == 0 && p->head_h == TB_AUDIT_SM3) {
		if ((rc = audit_row_insert(p, p->head_h, 1, prev, 'a', "", "", "", at, "chain",
		                           "hash=sm3", hash)) != TB_OK)
			return rc;
		*seq = 1;
		memcpy(prev, hash, 32);
	}
	(*seq)++;
	if ((rc = audit_row_insert(p, p->head_h, *seq, prev, dir, msgid, digest_hex, peer, at, event,
	                           detail, hash)) != TB_OK)
		return rc;
	p->head_held = p->in_tx;
	p->head_seq = *seq;
	memcpy(p->head_hash, hash, 32);
	return TB_OK;
}

int
tb_jpg_audit_chain(struct tb_jpg *p, enum tb_audit_hash start, bool *known,
                   enum tb_audit_hash *chain, enum tb_audit_hash *h)
{
	uint8_t hash[32];
	int64_t seq;
	int rc;

	if ((rc = tb_jpg_audit_head(p, &seq, hash)) != TB_OK)
		return rc;
	return chain_of(p, seq, start, known, chain, h);
}

int
tb_jpg_audit_add(struct tb_jpg *p, enum tb_audit_hash start, bool *known, enum tb_audit_hash *chain,
                 char dir, const char *msgid, const char *digest_hex, const char *peer, int64_t at,
                 const char *event, const char *detail, int64_t *seq, uint8_t hash[32])
{
	bool own = !p->in_tx;
	struct tb_diag why;
	int rc;

	*seq = 0;
	memset(hash, 0, 32);
	p->astart = start;
	p->aknown = known;
	p->achain = chain;
	if (own && (rc = tb_jpg_begin(p, false)) != TB_OK)
		return rc;
	/* held until the commit (audit_flush): in a transaction the entry's
	 * seq and hash are not known yet (0); on its own they are */
	if ((rc = ready(p)) == TB_OK)
		rc = ab_push(p, dir, msgid, digest_hex, peer, at, event, detail);
	if (!own)
		return rc;
	if (rc == TB_OK) {
		if ((rc = tb_jpg_commit(p)) == TB_OK && !tb_jpg_committed_head(p, seq, hash))
			rc = tb_diag_set(p->diag, TB_E_AUDIT, TB_DIAG_NOPOS,
			                 "audit entry not written");
		return rc;
	}
	why = *p->diag;
	if (tb_jpg_rollback(p) != TB_OK) {
		/* out of the transaction either way; the error is rc's */
	}
	*p->diag = why;
	return rc;
}

int
tb_jpg_audit_hash_at(struct tb_jpg *p, int64_t seq, char hash_hex[65])
{
	struct params q = {0};
	const char *h;
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_int(&q, seq);
	if ((r = pexec(p, "SELECT hash FROM audit WHERE seq = $1", &q, "audit entry")) == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 1 && (h = g_text(r, 0, 0)) != NULL && strlen(h) == 64)
		memcpy(hash_hex, h, 65);
	else
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "no audit entry %" PRId64,
		                 seq);
	PQclear(r);
	return rc;
}

/* ---- message flows, single lookups ---- */

int
tb_jpg_flow(struct tb_jpg *p, enum tb_jpg_flow which, const char *const *t, int nt, int ni,
            int64_t iv, int64_t *out, bool *row)
{
	static const char *const sql[] = {
	    [TB_JPG_REQ_CLOSED] = "SELECT 1::bigint FROM closed_requests WHERE id = $1",
	    [TB_JPG_REQ_CLOSE] = "INSERT INTO closed_requests (id, at) VALUES ($1, $2)"
	                         " ON CONFLICT (id) DO NOTHING",
	    [TB_JPG_CASE_GET] = "SELECT state FROM cases WHERE requester = $1 AND handler = $2"
	                        " AND case_id = $3",
	    [TB_JPG_CASE_SET] = "INSERT INTO cases (requester, handler, case_id, state, updated)"
	                        " VALUES ($1, $2, $3, $4::bigint, $5)"
	                        " ON CONFLICT (requester, handler, case_id) DO UPDATE SET"
	                        " state = excluded.state, updated = excluded.updated",
	};
	char key[PF_KEY_MAX];
	struct params q = {0};
	struct pfent *e;
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	/* a case the transaction prefetched: answered from it, and kept
	 * current by the sets */
	if ((which == TB_JPG_CASE_GET || which == TB_JPG_CASE_SET) &&
	    case_pfkey(t[0], t[1], t[2], key) && (e = pf_find(p, 'c', key)) != NULL) {
		if (which == TB_JPG_CASE_SET) {
			/* written with the others at the next statement */
			e->found = true;
			e->state = strtoll(t[3], NULL, 10);
			e->at = iv;
			p->ndirty += !e->dirty;
			e->dirty = true;
			return TB_OK;
		} else {
			if (row != NULL)
				*row = e->found;
			if (e->found && out != NULL)
				*out = e->state;
			return TB_OK;
		}
	}
	for (int i = 0; i < nt && i < 10; i++)
		p_text(&q, t[i]);
	if (ni > 0)
		p_int(&q, iv);
	/* a row written, nothing read back: deferred (pdefer) */
	if (row == NULL && out == NULL && (which == TB_JPG_REQ_CLOSE || which == TB_JPG_CASE_SET))
		return pdefer_keep(p, sql[which], &q, "flow statement");
	if ((r = pexec(p, sql[which], &q, "flow statement")) == NULL)
		return TB_E_IO;
	if (row != NULL)
		*row = PQntuples(r) > 0;
	if (PQntuples(r) > 0 && out != NULL)
		*out = g_int(r, 0, 0);
	PQclear(r);
	return TB_OK;
}

int
tb_jpg_inbound_get(struct tb_jpg *p, const char *id, struct tb_journal_inbound *out,
                   struct tb_buf *envelope)
{
	struct params q = {0};
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_text(&q, id);
	r = pexec(p,
	          "SELECT sender, type, service, corr, digest, acked::bigint, envelope FROM inbound"
	          " WHERE id = $1",
	          &q, "inbound get");
	if (r == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 0) {
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "inbound %s", id);
		goto done;
	}
	copy_str(out->from, sizeof(out->from), g_text(r, 0, 0));
	copy_str(out->type, sizeof(out->type), g_text(r, 0, 1));
	copy_str(out->service, sizeof(out->service), g_text(r, 0, 2));
	copy_str(out->corr, sizeof(out->corr), g_text(r, 0, 3));
	copy_str(out->digest, sizeof(out->digest), g_text(r, 0, 4));
	out->acked = g_int(r, 0, 5) != 0;
	if (envelope != NULL)
		rc = g_buf(p, r, 0, 6, envelope);
done:
	PQclear(r);
	return rc;
}

int
tb_jpg_outbound_envelope(struct tb_jpg *p, const char *id, struct tb_buf *out)
{
	struct params q = {0};
	PGresult *r;
	int rc;

	if ((rc = ready(p)) != TB_OK)
		return rc;
	p_text(&q, id);
	r = pexec(p,
	          "SELECT e.envelope FROM outbound o JOIN outbound_env e ON e.seq = o.seq"
	          " WHERE o.id = $1",
	          &q, "outbound envelope");
	if (r == NULL)
		return TB_E_IO;
	if (PQntuples(r) == 0)
		rc = tb_diag_set(p->diag, TB_E_NOTFOUND, TB_DIAG_NOPOS, "outbound %s", id);
	else
		rc = g_buf(p, r, 0, 0, out);
	PQclear(r);
	return rc;
}

int
tb_jpg_stats(const char *uri, struct tb_journal_stats *st, struct tb_diag *d)
{
	struct tb_diag pd;
	struct tb_jpg *p;
	PGresult *r = NULL;
	int rc = TB_OK;

	tb_diag_clear(d);
	if (st == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "output is NULL");
	memset(st, 0, sizeof(*st));
	tb_diag_clear(&pd);
	if ((p = tb_jpg_open(uri, &pd, d)) == NULL)
		return d != NULL ? d->code : TB_E_IO;
	/* one statement: the figures are of one moment */
	r = pexec(p,
	          "SELECT (SELECT count(*) FROM inbound WHERE acked = 0),"
	          " (SELECT count(*) FROM inbound WHERE acked = 1),"
	          " (SELECT count(*) FROM outbound WHERE state = 0),"
	          " (SELECT count(*) FROM outbound WHERE state = 1),"
	          " (SELECT count(*) FROM outbound WHERE state = 2),"
	          " (SELECT count(*) FROM audit), pg_database_size(current_database())",
	          NULL, "stats");
	if (r == NULL || PQntuples(r) != 1) {
		rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s", pd.detail);
		goto done;
	}
	st->inbox = g_int(r, 0, 0);
	st->inbound_acked = g_int(r, 0, 1);
	st->queued = g_int(r, 0, 2);
	st->delivered = g_int(r, 0, 3);
	st->failed = g_int(r, 0, 4);
	st->audit = g_int(r, 0, 5);
	st->bytes = g_int(r, 0, 6);
done:
	PQclear(r);
	tb_jpg_close(p);
	return rc;
}

/* One listed row into e (borrowed from r); TB_E_AUDIT for a NULL field. */
static int
audit_row(PGresult *r, int i, struct tb_journal_audit_entry *e, struct tb_diag *d)
{
	const char *dir;

	memset(e, 0, sizeof(*e));
	e->seq = g_int(r, i, 0);
	e->prev = g_text(r, i, 1);
	dir = g_text(r, i, 2);
	e->dir = dir != NULL ? dir[0] : '?';
	e->msgid = g_text(r, i, 3);
	e->digest = g_text(r, i, 4);
	e->peer = g_text(r, i, 5);
	e->at = g_int(r, i, 6);
	e->event = g_text(r, i, 7);
	e->hash = g_text(r, i, 8);
	e->detail = g_text(r, i, 9);
	if (e->prev == NULL || e->msgid == NULL || e->digest == NULL || e->peer == NULL ||
	    e->event == NULL || e->hash == NULL || e->detail == NULL)
		return tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS,
		                   "entry %" PRId64 " has a NULL field", e->seq);
	return TB_OK;
}

int
tb_jpg_audit_list(const char *uri, int64_t since, tb_journal_audit_cb cb, void *ctx,
                  struct tb_diag *d)
{
	struct tb_journal_audit_entry e;
	struct params q = {0};
	struct tb_diag pd;
	struct tb_jpg *p;
	PGresult *r;
	int rc = TB_OK;

	tb_diag_clear(&pd);
	if ((p = tb_jpg_open(uri, &pd, d)) == NULL)
		return d != NULL ? d->code : TB_E_IO;
	p_int(&q, since);
	r = pexec(p,
	          "SELECT seq, prev, dir, msgid, digest, peer, at, event, hash, detail FROM audit"
	          " WHERE seq >= $1 ORDER BY seq",
	          &q, "audit");
	if (r == NULL) {
		rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s", pd.detail);
		goto done;
	}
	for (int i = 0; i < PQntuples(r) && rc == TB_OK; i++)
		if ((rc = audit_row(r, i, &e, d)) == TB_OK)
			rc = cb(ctx, &e);
	PQclear(r);
done:
	tb_jpg_close(p);
	return rc;
}

#endif /* HAVE_LIBPQ */

    /* ---- audit verify (on tb_jpg_audit_list, so with or without libpq) ---- */

    struct verify {
	struct tb_journal_audit_walk w;
	int64_t *entries; /* the caller's, may be NULL */
	int64_t bad;      /* the first entry that failed */
	char why[96];
};

/* Each entry checked by journal.c's walker: its seq, prev and hash, with
 * the chain's hash (SHA-256 or SM3) that entry 1 fixes. */
static int
verify_entry(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct verify *v = ctx;

	if (!tb_journal_audit_walk_next(&v->w, e, v->why, sizeof(v->why))) {
		v->bad = v->w.next;
		return TB_E_AUDIT;
	}
	if (v->entries != NULL)
		*v->entries = e->seq;
	return TB_OK;
}

int
tb_jpg_audit_verify(const char *uri, int64_t *first_bad_seq, int64_t *entries, struct tb_diag *d)
{
	struct verify v = {.entries = entries};
	int rc;

	tb_journal_audit_walk_init(&v.w);
	if (first_bad_seq != NULL)
		*first_bad_seq = 0;
	if (entries != NULL)
		*entries = 0;
	rc = tb_jpg_audit_list(uri, 1, verify_entry, &v, d);
	if (rc == TB_E_AUDIT && v.bad > 0) {
		if (first_bad_seq != NULL)
			*first_bad_seq = v.bad;
		return tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS, "%s", v.why);
	}
	return rc;
}
