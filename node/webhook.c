/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook.c - pushes received messages to the city's own system: with
 * `webhook = http://127.0.0.1:PORT/PATH`, every message in the inbox is
 * POSTed there as JSON; a 2xx answer acknowledges it, anything else is
 * retried with exponential backoff.  The inbox is the queue, so pushes
 * survive restarts.
 */
#include "webhook.h"
#include "inbound.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_err.h"
#include "journal.h"
#include "log.h"

#define WEBHOOK_BATCH 32
#define WEBHOOK_MAX_BACKOFF_MS 60000

struct tb_webhook {
	struct evhttp_uri *uri;
	struct evhttp_connection *conn;
	struct event *timer;
	int inflight;
	int64_t backoff_ms;
	char (*sent)[33]; /* ids pushed and not yet answered */
	size_t nsent;
};

struct push {
	struct tb_node *n;
	char id[33];
};

static void schedule(struct tb_node *n, int64_t ms);

static bool
in_flight(const struct tb_webhook *w, const char *id)
{
	for (size_t i = 0; i < w->nsent; i++)
		if (strcmp(w->sent[i], id) == 0)
			return true;
	return false;
}

static void
forget(struct tb_webhook *w, const char *id)
{
	for (size_t i = 0; i < w->nsent; i++)
		if (strcmp(w->sent[i], id) == 0) {
			memmove(w->sent[i], w->sent[w->nsent - 1], 33);
			w->nsent--;
			return;
		}
}

static void
done_cb(struct evhttp_request *req, void *arg)
{
	struct push *p = arg;
	struct tb_node *n = p->n;
	struct tb_webhook *w = n->webhook;
	int code = req ? evhttp_request_get_response_code(req) : 0;

	w->inflight--;
	forget(w, p->id);
	if (code >= 200 && code < 300) {
		if (tb_journal_inbox_ack(n->journal, p->id) != TB_OK)
			log_warnx("webhook: cannot acknowledge %s", p->id);
		w->backoff_ms = 0;
		schedule(n, 0);
	} else {
		w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 500;
		if (w->backoff_ms > WEBHOOK_MAX_BACKOFF_MS)
			w->backoff_ms = WEBHOOK_MAX_BACKOFF_MS;
		log_warnx("webhook: %s answered %d for %s; retrying in %lld ms",
		          evhttp_uri_get_host(w->uri), code, p->id, (long long)w->backoff_ms);
		schedule(n, w->backoff_ms);
	}
	free(p);
}

static int
push_one(void *ctx, int64_t seq, const struct tb_journal_msg *m)
{
	struct tb_node *n = ctx;
	struct tb_webhook *w = n->webhook;
	struct evhttp_request *req;
	struct evbuffer *out;
	struct push *p;
	char path[1024], hostport[300];
	const char *q;

	(void)seq;
	if (in_flight(w, m->id) || w->inflight >= WEBHOOK_BATCH)
		return TB_OK;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TB_E_NOMEM;
	p->n = n;
	snprintf(p->id, sizeof(p->id), "%s", m->id);
	if ((req = evhttp_request_new(done_cb, p)) == NULL) {
		free(p);
		return TB_E_NOMEM;
	}
	out = evhttp_request_get_output_buffer(req);
	evbuffer_add_printf(out, "{\"id\":\"%s\",\"from\":\"%s\",\"type\":\"%s\"", m->id, m->from,
	                    m->type);
	if (m->service)
		evbuffer_add_printf(out, ",\"service\":\"%s\"", m->service);
	if (m->corr)
		evbuffer_add_printf(out, ",\"corr\":\"%s\"", m->corr);
	evbuffer_add_printf(out, ",\"digest\":\"%s\",\"envelope\":", m->digest);
	evbuffer_add(out, m->envelope, m->envelope_len);
	evbuffer_add(out, "}", 1);
	snprintf(hostport, sizeof(hostport), "%s:%d", evhttp_uri_get_host(w->uri),
	         evhttp_uri_get_port(w->uri) > 0 ? evhttp_uri_get_port(w->uri) : 80);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	q = evhttp_uri_get_query(w->uri);
	snprintf(path, sizeof(path), "%s%s%s",
	         evhttp_uri_get_path(w->uri) && *evhttp_uri_get_path(w->uri)
	             ? evhttp_uri_get_path(w->uri)
	             : "/",
	         q ? "?" : "", q ? q : "");
	if (evhttp_make_request(w->conn, req, EVHTTP_REQ_POST, path) != 0) {
		free(p);
		return TB_E_IO;
	}
	char(*v)[33] = realloc(w->sent, (w->nsent + 1) * sizeof(*v));
	if (v != NULL) {
		w->sent = v;
		snprintf(v[w->nsent++], 33, "%s", m->id);
	}
	w->inflight++;
	return TB_OK;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_node *n = arg;

	(void)fd;
	(void)what;
	if (n->draining || n->webhook->inflight >= WEBHOOK_BATCH)
		return;
	if (tb_journal_inbox_list(n->journal, WEBHOOK_BATCH, 0, push_one, n) != TB_OK)
		log_warnx("webhook: inbox unreadable");
	schedule(n, 1000); /* and look again for new messages */
}

static void
schedule(struct tb_node *n, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (n->webhook != NULL)
		evtimer_add(n->webhook->timer, &tv);
}

/* Inbound consumer: new messages may be in the inbox; push soon. */
static void
kick(void *ctx, bool relayed)
{
	struct tb_node *n = ctx;

	(void)relayed;
	if (n->webhook != NULL && n->webhook->backoff_ms == 0)
		schedule(n, 0);
}

int
tb_webhook_check(const char *url, struct tb_diag *d)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	int rc = TB_OK;

	if (u == NULL || evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "http") != 0 || host == NULL)
		rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "webhook: %s is not an http:// URL",
		                 url);
	else if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0 &&
	         strcmp(host, "::1") != 0)
		rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                 "webhook: must be on this machine (loopback), not %s", host);
	if (u != NULL)
		evhttp_uri_free(u);
	return rc;
}

int
tb_webhook_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_inbound_consumer c = {NULL, kick, NULL, n};
	struct tb_webhook *w;
	const char *host;

	if (n->cfg.webhook[0] == '\0')
		return TB_OK;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	n->webhook = w;
	if ((w->uri = evhttp_uri_parse(n->cfg.webhook)) == NULL ||
	    evhttp_uri_get_scheme(w->uri) == NULL ||
	    strcmp(evhttp_uri_get_scheme(w->uri), "http") != 0 ||
	    (host = evhttp_uri_get_host(w->uri)) == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "webhook: %s is not an http:// URL",
		                   n->cfg.webhook);
	if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0 &&
	    strcmp(host, "::1") != 0)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "webhook: must be on this machine (loopback), not %s", host);
	w->conn = evhttp_connection_base_new(
	    n->base, NULL, host,
	    (ev_uint16_t)(evhttp_uri_get_port(w->uri) > 0 ? evhttp_uri_get_port(w->uri) : 80));
	if (w->conn == NULL || (w->timer = evtimer_new(n->base, timer_cb, n)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "webhook setup");
	evhttp_connection_set_timeout(w->conn, 10);
	tb_inbound_add_consumer(n, &c);
	schedule(n, 0);
	log_info("webhook: pushing received messages to %s", n->cfg.webhook);
	return TB_OK;
}

void
tb_webhook_stop(struct tb_node *n)
{
	struct tb_webhook *w = n->webhook;

	if (w == NULL)
		return;
	if (w->timer)
		event_free(w->timer);
	if (w->conn)
		evhttp_connection_free(w->conn);
	if (w->uri)
		evhttp_uri_free(w->uri);
	free(w->sent);
	free(w);
	n->webhook = NULL;
}
