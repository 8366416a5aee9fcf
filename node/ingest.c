/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.c - POST /v1/messages off the event loop.  The loop only copies
 * the request body and queues it; one ingest thread parses it, resolves
 * routes, seals the messages with one batch signature and journals them
 * (fsync) on a journal handle and signing-key copy of its own; the loop
 * then answers the HTTP request, starts the latency clocks and schedules
 * delivery.  So a burst of submissions no longer stops the loop from
 * moving CoAP blocks and receipts.  The same thread, in the same queue,
 * settles the answers to outbound exchanges (answers.c): one journal
 * connection writes both, so neither waits for the other's write lock
 * nor finds its page cache emptied by the other's commits.
 *
 * Shared with the loop: the registry and route table (read under
 * n->reg_lock, which the loop takes for writing when it replaces them),
 * the thread's signing key (replaced by the loop under the same lock on
 * a rotation, tb_ingest_set_key), and n->cfg's fixed keys.  The journal file is shared through
 * SQLite, which serialises the two handles' write transactions.
 */
#include "apimsg.h"
#include "ingest.h"
#include "outbound.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_err.h"
#include "journal.h"
#include "lifecycle.h"
#include "log.h"
#include "worker.h"

#define API_BULK_MAX 1000
#define INGEST_NICE 5 /* added to the thread's nice value */

struct job {
	struct tb_work work;        /* first: the worker's link */
	struct evhttp_request *req; /* loop only; answered exactly once */
	char *raw;                  /* request body (owned) */
	size_t len;
	int64_t t0_ms; /* arrival, for the latency histogram */
	/* results, written by the worker */
	int code;
	char *reply; /* JSON text (cJSON allocator) */
	char (*ids)[33];
	struct tb_fresh *fresh; /* the messages' wire forms, for the loop to send */
	size_t count;           /* ids accepted (0 on refusal) */
	int64_t full_retry;     /* refused for want of room: Retry-After, s (else 0) */
};

struct tb_ingest {
	struct tb_node *n;
	struct tb_journal *j; /* the worker's own handle */
	struct tb_key *key;   /* the worker's own copy of the signing key */
	struct tb_worker *w;  /* the thread; NULL until started */
	size_t queued;        /* loop: jobs handed over and not yet answered */
};

/* ---- the worker ---- */

static void
refuse(struct job *x, int code, const char *reason, const char *detail)
{
	x->code = code;
	x->reply = tb_api_error_text(reason, detail);
}

/* One request object {"type","to","service","corr","ttl","hops","body"},
 * or an array of up to API_BULK_MAX of them, sealed with one batch
 * signature and journalled in one transaction. */
static void
run_job(void *ctx, struct tb_work *wk)
{
	struct tb_ingest *g = ctx;
	struct job *x = (struct job *)wk;
	struct tb_node *n = g->n;
	struct tb_diag d;
	struct tb_json_doc *doc =
	    tb_json_parse((const uint8_t *)x->raw, x->len, &tb_api_json_limits, &d);
	const struct tb_json *o = doc ? tb_json_root(doc) : NULL, *m;
	struct tb_env_fields *f = NULL;
	size_t count = 0, bad = 0;
	bool bulk = o != NULL && tb_json_kind(o) == TB_JSON_ARRAY;
	cJSON *r = NULL, *arr;
	int rc, held;

	if (doc == NULL) {
		refuse(x, 400, tb_err_reason(d.code), d.detail);
		goto out;
	}
	if (!bulk && tb_json_kind(o) != TB_JSON_OBJECT) {
		refuse(x, 400, "json.syntax", "body must be a JSON object or array");
		goto out;
	}
	count = bulk ? tb_json_count(o) : 1;
	if (count == 0 || count > API_BULK_MAX) {
		refuse(x, 400, "field.value", "1 to 1000 messages per request");
		count = 0;
		goto out;
	}
	f = calloc(count, sizeof(*f));
	x->ids = calloc(count, sizeof(*x->ids));
	x->fresh = calloc(count, sizeof(*x->fresh));
	if (f == NULL || x->ids == NULL || x->fresh == NULL) {
		refuse(x, 503, "nomem", NULL);
		goto out;
	}
	m = bulk ? tb_json_first(o) : o;
	for (size_t i = 0; i < count; i++, m = bulk ? tb_json_next(m) : NULL) {
		if (tb_api_fields(m, NULL, &f[i], &d) != TB_OK) {
			char detail[220];
			snprintf(detail, sizeof(detail), "message %zu: %s", i, d.detail);
			refuse(x, 400, tb_err_reason(d.code), detail);
			goto out;
		}
	}
	pthread_rwlock_rdlock(&n->reg_lock);
	/* a revoked member's messages could only fail: refused at once; in
	 * the other states that stop exchanges they wait (the answer says
	 * why: "held") */
	held = tb_node_state_err(n);
	if (held == TB_E_MEMBER_REVOKED)
		rc = tb_diag_set(&d, held, TB_DIAG_NOPOS, "%s", tb_err_str(held));
	else
		rc = tb_outbound_store(n, g->j, g->key, f, count, x->ids, &bad, x->fresh, &d);
	pthread_rwlock_unlock(&n->reg_lock);
	if (rc != TB_OK) {
		char detail[220];
		snprintf(detail, sizeof(detail), "message %zu: %s", bad, d.detail);
		/* the journal's transaction failing is no one message's fault */
		refuse(x, tb_api_http_code(d.code), tb_err_reason(d.code),
		       bulk && bad != TB_OUTBOUND_WHOLE ? detail : d.detail);
		if (d.code == TB_E_JOURNAL_FULL) {
			pthread_rwlock_rdlock(&n->reg_lock);
			x->full_retry = n->cfg.full_retry;
			pthread_rwlock_unlock(&n->reg_lock);
		}
		goto out;
	}
	x->count = count;
	for (size_t i = 0; i < count; i++)
		tb_log_msg(TB_MSG_ACCEPTED, x->ids[i], x->fresh[i].to, f[i].type, "queued");
	x->code = 202;
	if ((r = cJSON_CreateObject()) == NULL)
		goto out;
	if (bulk) {
		if ((arr = cJSON_AddArrayToObject(r, "ids")) == NULL)
			goto out;
		for (size_t i = 0; i < count; i++) {
			cJSON *s = cJSON_CreateString(x->ids[i]);
			if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
				cJSON_Delete(s);
				goto out;
			}
		}
	} else if (cJSON_AddStringToObject(r, "id", x->ids[0]) == NULL) {
		goto out;
	}
	if (cJSON_AddStringToObject(r, "state", "queued") == NULL)
		goto out;
	tb_api_add_held(r, held);
	x->reply = cJSON_PrintUnformatted(r);
out:
	cJSON_Delete(r);
	free(f);
	tb_json_doc_free(doc);
	free(x->raw);
	x->raw = NULL;
}

/* ---- the loop's side ---- */

static void
free_job(struct job *x)
{
	free(x->raw);
	cJSON_free(x->reply);
	free(x->ids);
	if (x->fresh != NULL)
		tb_fresh_free(x->fresh, x->count);
	free(x->fresh);
	free(x);
}

/* Sends the answer.  When the client has closed its connection in the
 * meantime, libevent has detached the request (no connection) instead of
 * freeing it, because its answer was still owed; evhttp_send_reply() then
 * frees it.  So every queued request is answered exactly once, and never
 * used after that. */
static void
answer(struct tb_node *n, struct job *x)
{
	if (x->full_retry > 0 && n != NULL) {
		/* no room in the journal: the client is told when to come back,
		 * and the node's condition starts (lifecycle.c, /healthz) */
		char s[24];
		snprintf(s, sizeof(s), "%lld", (long long)x->full_retry);
		evhttp_add_header(evhttp_request_get_output_headers(x->req), "Retry-After", s);
		tb_lifecycle_store_full(n, 0, "a submission found no room in the journal");
	}
	if (x->reply != NULL)
		tb_api_reply(x->req, x->code, x->reply, strlen(x->reply));
	else
		tb_api_reply(x->req, 503, "{\"error\":\"nomem\"}", 17);
	x->req = NULL;
	if (n == NULL)
		return; /* shutting down: no delivery to schedule */
	for (size_t i = 0; i < x->count; i++)
		tb_latency_start(n, x->ids[i], x->t0_ms);
	if (x->count > 0) {
		tb_outbound_hand(n, x->fresh, x->count);
		tb_outbound_schedule(n, 0);
	}
}

/* Loop: a job the thread has run. */
static void
job_done(void *ctx, struct tb_work *wk)
{
	struct tb_ingest *g = ctx;
	struct job *x = (struct job *)wk;

	answer(g->n, x);
	g->queued--;
	free_job(x);
}

/* Shutting down: answers the loop had no turn to send go nowhere once
 * the API closes its connections, but each request is released (a
 * detached one only by its answer). */
static void
job_leftover(void *ctx, struct tb_work *wk)
{
	struct job *x = (struct job *)wk;

	(void)ctx;
	answer(NULL, x);
	free_job(x);
}

int
tb_ingest_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_ingest *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "ingest");
	g->n = n;
	n->ingest = g;
	if ((g->j = tb_journal_open_secondary(n->journal, d)) == NULL)
		return d->code;
	if ((g->key = tb_key_load(n->cfg.sign_key[0] ? n->cfg.sign_key : n->cfg.key, NULL, d)) ==
	    NULL)
		return d->code;
	/* a slower intake is back-pressure on submitters, not a growing queue */
	if ((g->w = tb_worker_start(n->base, INGEST_NICE, run_job, job_done, g, "ingest", d)) ==
	    NULL)
		return d->code;
	return TB_OK;
}

void
tb_ingest_submit(struct tb_node *n, struct evhttp_request *req, char *raw, size_t len)
{
	struct tb_ingest *g = n->ingest;
	struct job *x = calloc(1, sizeof(*x));

	if (x == NULL || g == NULL || g->w == NULL) {
		free(x);
		free(raw);
		tb_api_reply(req, 503, "{\"error\":\"nomem\"}", 17);
		return;
	}
	x->req = req;
	x->raw = raw;
	x->len = len;
	x->t0_ms = tb_now_ms();
	tb_worker_push(g->w, &x->work);
	g->queued++;
}

void
tb_ingest_set_key(struct tb_node *n, struct tb_key *key)
{
	struct tb_ingest *g = n->ingest;
	struct tb_key *old;

	if (g == NULL) {
		tb_key_free(key);
		return;
	}
	/* the thread seals holding reg_lock for reading (run_job) */
	pthread_rwlock_wrlock(&n->reg_lock);
	old = g->key;
	g->key = key;
	pthread_rwlock_unlock(&n->reg_lock);
	tb_key_free(old);
}

size_t
tb_ingest_pending(const struct tb_node *n)
{
	return n->ingest ? n->ingest->queued : 0;
}

void
tb_ingest_stop(struct tb_node *n)
{
	struct tb_ingest *g = n->ingest;

	if (g == NULL)
		return;
	/* the thread finishes what is queued (those messages are journalled
	 * and will be delivered) and exits */
	tb_worker_stop(g->w, job_leftover);
	tb_key_free(g->key);
	tb_journal_close(g->j);
	free(g);
	n->ingest = NULL;
}
