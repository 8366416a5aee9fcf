/*
 * ingest.c - POST /v1/messages off the event loop.  The loop only copies
 * the request body and queues it; one ingest thread parses it, resolves
 * routes, seals the messages with one batch signature and journals them
 * (fsync) on a journal handle and signing-key copy of its own; the loop
 * then answers the HTTP request, starts the latency clocks and schedules
 * delivery.  So a burst of submissions no longer stops the loop from
 * moving CoAP blocks and receipts.
 *
 * Shared with the loop: the registry and route table (read under
 * n->reg_lock, which the loop takes for writing when it replaces them),
 * and n->cfg's fixed keys.  The journal file is shared through SQLite,
 * which serialises the two handles' write transactions.
 */
#include "node.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_err.h"
#include "../util/tb_thread.h"
#include "journal.h"
#include "log.h"

#define API_BULK_MAX 1000
#define INGEST_NICE 5 /* added to the thread's nice value */

struct job {
	struct evhttp_request *req; /* loop only; answered exactly once */
	char *raw;                  /* request body (owned) */
	size_t len;
	int64_t t0_ms; /* arrival, for the latency histogram */
	/* results, written by the worker */
	int code;
	char *reply; /* JSON text (cJSON allocator) */
	char (*ids)[33];
	size_t count; /* ids accepted (0 on refusal) */
	struct job *next;
};

struct tb_ingest {
	struct tb_node *n;
	struct tb_journal *j; /* the worker's own handle */
	struct tb_key *key;   /* the worker's own copy of the signing key */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, **todo_tail, *done, **done_tail;
	bool stop;
	int efd; /* eventfd: the worker tells the loop that jobs are done */
	struct event *ev;
	size_t queued; /* loop: jobs handed over and not yet answered */
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
run_job(struct tb_ingest *g, struct job *x)
{
	struct tb_node *n = g->n;
	struct tb_diag d;
	struct tb_json_doc *doc =
	    tb_json_parse((const uint8_t *)x->raw, x->len, &tb_api_json_limits, &d);
	const struct tb_json *o = doc ? tb_json_root(doc) : NULL, *m;
	struct tb_env_fields *f = NULL;
	size_t count = 0, bad = 0;
	bool bulk = o != NULL && tb_json_kind(o) == TB_JSON_ARRAY;
	cJSON *r = NULL, *arr;
	const char *why;
	int rc;

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
	if (f == NULL || x->ids == NULL) {
		refuse(x, 503, "nomem", NULL);
		goto out;
	}
	m = bulk ? tb_json_first(o) : o;
	for (size_t i = 0; i < count; i++, m = bulk ? tb_json_next(m) : NULL) {
		if ((why = tb_api_fields(m, NULL, &f[i])) != NULL) {
			char detail[96];
			snprintf(detail, sizeof(detail), "message %zu: %s", i, why);
			refuse(x, 400,
			       strcmp(why, "type") == 0 || strcmp(why, "to") == 0 ? "field.missing"
			                                                          : "field.type",
			       detail);
			goto out;
		}
	}
	pthread_rwlock_rdlock(&n->reg_lock);
	rc = tb_outbound_store(n, g->j, g->key, f, count, x->ids, &bad, &d);
	pthread_rwlock_unlock(&n->reg_lock);
	if (rc != TB_OK) {
		char detail[220];
		snprintf(detail, sizeof(detail), "message %zu: %s", bad, d.detail);
		refuse(x, tb_api_http_code(d.code), tb_err_reason(d.code),
		       bulk ? detail : d.detail);
		goto out;
	}
	x->count = count;
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
	if (cJSON_AddStringToObject(r, "state", "queued") != NULL)
		x->reply = cJSON_PrintUnformatted(r);
out:
	cJSON_Delete(r);
	free(f);
	tb_json_doc_free(doc);
	free(x->raw);
	x->raw = NULL;
}

static void *
ingest_main(void *arg)
{
	struct tb_ingest *g = arg;
	uint64_t one = 1;

	/* Below the event loop: the loop's round trips set every exchange's
	 * latency, and when both cores are busy it should get one first.  A
	 * slower intake is back-pressure on submitters, not a growing queue.
	 * (A hint: if it fails, the thread runs as before.) */
	(void)tb_thread_lower_priority(INGEST_NICE);
	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (g->todo == NULL && !g->stop)
			pthread_cond_wait(&g->cv, &g->mu);
		if (g->todo == NULL)
			break; /* stopping, and every queued job is done */
		struct job *x = g->todo;
		if ((g->todo = x->next) == NULL)
			g->todo_tail = &g->todo;
		pthread_mutex_unlock(&g->mu);
		x->next = NULL;
		run_job(g, x);
		pthread_mutex_lock(&g->mu);
		*g->done_tail = x;
		g->done_tail = &x->next;
		/* a full eventfd counter (impossible here) would only mean the
		 * loop is already signalled */
		if (write(g->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warnx("ingest: cannot signal the loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* ---- the loop's side ---- */

static void
free_job(struct job *x)
{
	free(x->raw);
	cJSON_free(x->reply);
	free(x->ids);
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
	if (x->reply != NULL)
		tb_api_reply(x->req, x->code, x->reply, strlen(x->reply));
	else
		tb_api_reply(x->req, 503, "{\"error\":\"nomem\"}", 17);
	x->req = NULL;
	if (n == NULL)
		return; /* shutting down: no delivery to schedule */
	for (size_t i = 0; i < x->count; i++)
		tb_latency_start(n, x->ids[i], x->t0_ms);
	if (x->count > 0)
		tb_outbound_schedule(n, 0);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_ingest *g = arg;
	struct job *list;
	uint64_t c;

	(void)what;
	if (read(fd, &c, sizeof(c)) < 0 && errno != EAGAIN)
		log_warnx("ingest: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&g->mu);
	list = g->done;
	g->done = NULL;
	g->done_tail = &g->done;
	pthread_mutex_unlock(&g->mu);
	while (list != NULL) {
		struct job *x = list;
		list = x->next;
		answer(g->n, x);
		g->queued--;
		free_job(x);
	}
}

int
tb_ingest_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_ingest *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "ingest");
	g->n = n;
	g->efd = -1;
	g->todo_tail = &g->todo;
	g->done_tail = &g->done;
	n->ingest = g;
	if ((g->j = tb_journal_open_ex(n->cfg.journal, TB_JOURNAL_NO_CHECKPOINTS, d)) == NULL)
		return d->code;
	if ((g->key = tb_key_load(n->cfg.sign_key[0] ? n->cfg.sign_key : n->cfg.key, NULL, d)) ==
	    NULL)
		return d->code;
	if ((g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "eventfd: %s", strerror(errno));
	if ((g->ev = event_new(n->base, g->efd, EV_READ | EV_PERSIST, done_cb, g)) == NULL ||
	    event_add(g->ev, NULL) != 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "ingest event");
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (pthread_create(&g->thread, NULL, ingest_main, g) != 0) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot start the ingest thread");
	}
	g->started = true;
	return TB_OK;
}

void
tb_ingest_submit(struct tb_node *n, struct evhttp_request *req, char *raw, size_t len)
{
	struct tb_ingest *g = n->ingest;
	struct job *x = calloc(1, sizeof(*x));

	if (x == NULL || g == NULL || !g->started) {
		free(x);
		free(raw);
		tb_api_reply(req, 503, "{\"error\":\"nomem\"}", 17);
		return;
	}
	x->req = req;
	x->raw = raw;
	x->len = len;
	x->t0_ms = tb_now_ms();
	pthread_mutex_lock(&g->mu);
	*g->todo_tail = x;
	g->todo_tail = &x->next;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	g->queued++;
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
	if (g->started) {
		/* the worker finishes what is queued (those messages are
		 * journalled and will be delivered) and exits */
		pthread_mutex_lock(&g->mu);
		g->stop = true;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
	}
	/* answers the loop had no turn to send: queued now, they go nowhere
	 * once the API closes its connections, but each request is released
	 * (a detached one only by its answer) */
	for (struct job *x = g->done, *nx; x != NULL; x = nx) {
		nx = x->next;
		answer(NULL, x);
		free_job(x);
	}
	if (g->ev != NULL)
		event_free(g->ev);
	if (g->efd >= 0)
		close(g->efd);
	tb_key_free(g->key);
	tb_journal_close(g->j);
	free(g);
	n->ingest = NULL;
}
