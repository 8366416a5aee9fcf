/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apiconn.c - the local API's connections: counted, capped, timed out
 * (apiconn.h).  libevent 2.1's evhttp has no connection cap and tells no
 * one when it accepts: the connection callback (evhttp_set_bevcb) is the
 * one hook per accepted connection, and it runs before evhttp has made
 * the connection object.  So the bufferevent made there is held by a
 * reference until an event activated there runs, later in the same loop
 * iteration; by then evhttp has set the bufferevent's callbacks, whose
 * argument is the connection, and a close callback on it tells when it
 * goes.  evhttp's own read timeout restarts with every byte, so a client
 * sending a byte now and then is timed out here instead, from the time
 * it became idle, by a sweep each second; only writes get a bufferevent
 * timeout.
 */
#include "apiconn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "../util/tb_port.h"

#define AUTO_MAX 1024
#define AUTO_MIN 8
#define PAUSE_MS 100
/* a cap lowered at the open-file limit returns after this long without
 * another failure */
#define LOWERED_MS 600000
#define LOG_EVERY_MS 60000
/* connections accepted in one go before the loop is let run (libevent
 * accepts until the queue is empty): bounds the connections accepted
 * beyond the cap and the descriptors of closed ones not yet released,
 * and lets a waiting /healthz be answered */
#define BURST_MAX 64

enum conn_state { C_PENDING, C_IDLE, C_BUSY };

struct conn {
	struct conn *prev, *next;
	struct tb_apiconn *owner;
	struct bufferevent *bev;         /* C_PENDING: a reference held */
	struct evhttp_connection *evcon; /* NULL while C_PENDING */
	enum conn_state state;
	int64_t since; /* C_IDLE: monotonic ms it became idle */
};

struct list {
	struct conn *head, *tail;
};

/* The tracker whose listener's accept failed: libevent passes the error
 * callback the listener's own argument, which is evhttp's, so the one
 * local API of the process is found here. */
static struct tb_apiconn *accept_owner;

struct tb_apiconn {
	struct evhttp *http;
	struct evconnlistener *lev;
	struct event *adopt_ev, *sweep_ev, *resume_ev;
	struct list pending, idle, busy; /* idle: oldest first */
	int open, cap, cap_conf;         /* cap_conf: configured or auto */
	int64_t last_fd_pause;           /* monotonic ms */
	int64_t timeout_ms;
	struct timeval write_tv; /* timeout_ms */
	bool paused;             /* for PAUSE_MS (resume_ev) */
	int burst;               /* accepted since the last adopt_cb */
	bool burst_paused;       /* until adopt_cb */
	/* totals for /metrics */
	uint64_t shed_total, timeout_total, slow_total, pause_fd_total;
	/* since the last log line */
	uint64_t shed_n, slow_n, pause_fd_n;
	int64_t last_log; /* monotonic ms, 0: never */
};

static int64_t
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
list_add(struct list *l, struct conn *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static void
list_del(struct list *l, struct conn *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

static struct list *
list_of(struct tb_apiconn *c, struct conn *r)
{
	return r->state == C_PENDING ? &c->pending : r->state == C_IDLE ? &c->idle : &c->busy;
}

static void
set_state(struct tb_apiconn *c, struct conn *r, enum conn_state s)
{
	list_del(list_of(c, r), r);
	r->state = s;
	if (s == C_IDLE)
		r->since = now_ms();
	list_add(list_of(c, r), r);
}

static struct conn *
find(struct list *l, const struct evhttp_connection *evcon)
{
	for (struct conn *r = l->head; r != NULL; r = r->next)
		if (r->evcon == evcon)
			return r;
	return NULL;
}

/* One line with what was closed or refused since the last one, at most
 * once a minute (the sweep writes one that had to wait). */
static void
log_counts(struct tb_apiconn *c)
{
	int64_t now = now_ms();

	if (c->shed_n + c->slow_n + c->pause_fd_n == 0)
		return;
	if (c->last_log != 0 && now - c->last_log < LOG_EVERY_MS)
		return;
	tb_log(TB_LOG_WARN,
	       "local API: %llu idle connections closed to admit new ones (at most %d held), "
	       "%llu slow clients timed out after %llds, accept paused %llu times at the "
	       "open-file limit, since %s; %d open",
	       (unsigned long long)c->shed_n, c->cap, (unsigned long long)c->slow_n,
	       (long long)(c->timeout_ms / 1000), (unsigned long long)c->pause_fd_n,
	       c->last_log == 0 ? "start" : "the last such line", c->open);
	c->shed_n = c->slow_n = c->pause_fd_n = 0;
	c->last_log = now;
}

/* Forgets r and closes its connection (its close callback is detached
 * first, so nothing here depends on evhttp calling it). */
static void
drop(struct tb_apiconn *c, struct conn *r)
{
	struct evhttp_connection *evcon = r->evcon;

	list_del(list_of(c, r), r);
	c->open--;
	free(r);
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	evhttp_connection_free(evcon);
}

/* evhttp frees a connection (closed by the client, answered with
 * Connection: close, timed out, refused as malformed). */
static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *r = arg;
	struct tb_apiconn *c = r->owner;

	(void)evcon;
	list_del(list_of(c, r), r);
	c->open--;
	free(r);
}

static void
pause_accept(struct tb_apiconn *c)
{
	struct timeval tv = {0, PAUSE_MS * 1000};

	if (c->paused)
		return;
	evconnlistener_disable(c->lev);
	c->paused = true;
	evtimer_add(c->resume_ev, &tv);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_apiconn *c = arg;

	(void)fd;
	(void)what;
	c->paused = false;
	c->burst_paused = false;
	evconnlistener_enable(c->lev);
}

/* Closes the longest idle connections until at most cap are open.  A
 * connection accepted when every held one is being answered is the
 * longest idle one once adopted: it is closed at once. */
static void
make_room(struct tb_apiconn *c)
{
	while (c->open > c->cap && c->idle.head != NULL) {
		drop(c, c->idle.head);
		c->shed_total++;
		c->shed_n++;
	}
	log_counts(c);
}

/* evhttp_set_bevcb: called once per accepted connection, before evhttp
 * has made the connection object.  Returns the connection's bufferevent
 * (NULL: evhttp makes one, untracked; only on memory error). */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct tb_apiconn *c = arg;
	struct bufferevent *bev;
	struct conn *r;

	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return bev;
	bufferevent_incref(bev);
	r->owner = c;
	r->bev = bev;
	r->state = C_PENDING;
	list_add(&c->pending, r);
	c->open++;
	event_active(c->adopt_ev, EV_TIMEOUT, 1);
	if (c->open > c->cap)
		make_room(c);
	if (++c->burst >= BURST_MAX && !c->paused && !c->burst_paused) {
		evconnlistener_disable(c->lev);
		c->burst_paused = true;
	}
	return bev;
}

/* Runs after the accept callback: each bufferevent's callback argument is
 * now its connection; a bufferevent whose callbacks were cleared has been
 * freed by evhttp already (its memory was kept by our reference). */
static void
adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_apiconn *c = arg;
	struct conn *r;

	(void)fd;
	(void)what;
	while ((r = c->pending.head) != NULL) {
		void *evcon = NULL;

		bufferevent_getcb(r->bev, NULL, NULL, NULL, &evcon);
		/* an answer the client does not read: evhttp closes it after
		 * timeout_ms without progress.  No read timeout (evhttp's would
		 * restart with each byte, and could cut a request being
		 * answered): sweep_cb times the requests. */
		if (evcon != NULL)
			bufferevent_set_timeouts(r->bev, NULL, &c->write_tv);
		bufferevent_decref(r->bev);
		r->bev = NULL;
		if (evcon == NULL) {
			list_del(&c->pending, r);
			c->open--;
			free(r);
			continue;
		}
		r->evcon = evcon;
		evhttp_connection_set_closecb(r->evcon, on_close, r);
		set_state(c, r, C_IDLE);
	}
	if (c->open > c->cap)
		make_room(c);
	c->burst = 0;
	if (c->burst_paused && !c->paused) {
		c->burst_paused = false;
		evconnlistener_enable(c->lev);
	}
}

/* Each second: closes the connections idle (or sending a request) for
 * timeout_ms, and logs the counts once their minute has passed. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_apiconn *c = arg;
	int64_t now = now_ms();
	struct conn *r;

	(void)fd;
	(void)what;
	while ((r = c->idle.head) != NULL && now - r->since >= c->timeout_ms) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
		/* bytes of a request not yet complete: a slow client, worth a
		 * line; an empty one was a keep-alive connection left idle */
		bool slow = bev != NULL && evbuffer_get_length(bufferevent_get_input(bev)) > 0;

		drop(c, r);
		c->timeout_total++;
		if (slow) {
			c->slow_total++;
			c->slow_n++;
		}
	}
	if (c->cap < c->cap_conf && now - c->last_fd_pause >= LOWERED_MS)
		c->cap = c->cap_conf;
	log_counts(c);
}

/* The answer to a request has been sent: its connection is idle again
 * (evhttp may close it right after, then on_close runs). */
static void
complete_cb(struct evhttp_request *req, void *arg)
{
	struct tb_apiconn *c = arg;
	struct conn *r = find(&c->busy, evhttp_request_get_connection(req));

	if (r != NULL)
		set_state(c, r, C_IDLE);
}

void
tb_apiconn_busy(struct tb_apiconn *c, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *r;

	if (c == NULL || evcon == NULL || (r = find(&c->idle, evcon)) == NULL)
		return;
	set_state(c, r, C_BUSY);
	evhttp_request_set_on_complete_cb(req, complete_cb, c);
}

/* accept() failed with an error libevent does not retry by itself.  Out
 * of file descriptors, retrying at once would spin (libevent would log
 * each failure): pause, lower the cap to what the limit allows with room
 * for the rest of the node, and close the oldest idle connections. */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct tb_apiconn *c = accept_owner;
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (c == NULL || c->lev != lev) {
		evconnlistener_disable(lev);
		return;
	}
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		int lower = c->open - c->open / 4;

		if (lower < AUTO_MIN)
			lower = AUTO_MIN;
		if (lower < c->cap)
			c->cap = lower;
		c->last_fd_pause = now_ms();
		c->pause_fd_total++;
		c->pause_fd_n++;
		while (c->open > c->cap && c->idle.head != NULL) {
			drop(c, c->idle.head);
			c->shed_total++;
			c->shed_n++;
		}
		log_counts(c);
	} else {
		char why[120];
		tb_log(TB_LOG_WARN, "local API: accept: %s", tb_errno_text(err, why, sizeof(why)));
	}
	pause_accept(c);
}

/* libevent's own warnings go to the node's log instead of stderr bare. */
static void
libevent_log(int severity, const char *msg)
{
	enum tb_log_level lv = severity == EVENT_LOG_DEBUG  ? TB_LOG_DEBUG
	                       : severity == EVENT_LOG_MSG  ? TB_LOG_INFO
	                       : severity == EVENT_LOG_WARN ? TB_LOG_WARN
	                                                    : TB_LOG_ERROR;
	tb_log(lv, "libevent: %s", msg);
}

static int
auto_cap(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur / 2 > AUTO_MAX)
		return AUTO_MAX;
	return rl.rlim_cur / 2 < AUTO_MIN ? AUTO_MIN : (int)(rl.rlim_cur / 2);
}

struct tb_apiconn *
tb_apiconn_new(struct event_base *base, struct evhttp *http, struct evconnlistener *lev,
               int max_conns, int timeout_s)
{
	struct tb_apiconn *c;
	struct timeval sec = {1, 0};

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->http = http;
	c->lev = lev;
	c->cap_conf = max_conns > 0 ? max_conns : auto_cap();
	c->cap = c->cap_conf;
	c->timeout_ms = (int64_t)timeout_s * 1000;
	c->write_tv.tv_sec = timeout_s;
	if ((c->adopt_ev = event_new(base, -1, 0, adopt_cb, c)) == NULL ||
	    (c->sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, c)) == NULL ||
	    (c->resume_ev = evtimer_new(base, resume_cb, c)) == NULL ||
	    event_add(c->sweep_ev, &sec) != 0)
		goto fail;
	event_set_log_callback(libevent_log);
	evhttp_set_max_headers_size(http, TB_APICONN_HEADERS_MAX);
	evhttp_set_bevcb(http, bev_cb, c);
	accept_owner = c;
	evconnlistener_set_error_cb(lev, accept_error_cb);
	return c;
fail:
	tb_apiconn_free(c);
	return NULL;
}

int
tb_apiconn_cap(const struct tb_apiconn *c)
{
	return c->cap;
}

void
tb_apiconn_metrics(const struct tb_apiconn *c, struct evbuffer *b)
{
	if (c == NULL)
		return;
	evbuffer_add_printf(
	    b,
	    "# HELP tongban_api_connections local API connections open\n"
	    "# TYPE tongban_api_connections gauge\ntongban_api_connections %d\n"
	    "# HELP tongban_api_connections_max local API connections held at most\n"
	    "# TYPE tongban_api_connections_max gauge\ntongban_api_connections_max %d\n"
	    "# HELP tongban_api_connections_closed_total local API connections the node closed: "
	    "cap (the longest idle, to admit a new one), timeout (no whole request in time)\n"
	    "# TYPE tongban_api_connections_closed_total counter\n"
	    "tongban_api_connections_closed_total{reason=\"cap\"} %llu\n"
	    "tongban_api_connections_closed_total{reason=\"timeout\"} %llu\n"
	    "# HELP tongban_api_accept_paused_total times the local API paused accepting for "
	    "want of file descriptors\n"
	    "# TYPE tongban_api_accept_paused_total counter\n"
	    "tongban_api_accept_paused_total{reason=\"fd_limit\"} %llu\n",
	    c->open, c->cap, (unsigned long long)c->shed_total,
	    (unsigned long long)c->timeout_total, (unsigned long long)c->pause_fd_total);
}

void
tb_apiconn_free(struct tb_apiconn *c)
{
	struct conn *r;

	if (c == NULL)
		return;
	if (accept_owner == c)
		accept_owner = NULL;
	while ((r = c->pending.head) != NULL) {
		bufferevent_decref(r->bev);
		list_del(&c->pending, r);
		free(r);
	}
	/* evhttp_free has run: the others' connections are gone */
	while ((r = c->idle.head) != NULL) {
		list_del(&c->idle, r);
		free(r);
	}
	while ((r = c->busy.head) != NULL) {
		list_del(&c->busy, r);
		free(r);
	}
	if (c->adopt_ev != NULL)
		event_free(c->adopt_ev);
	if (c->sweep_ev != NULL)
		event_free(c->sweep_ev);
	if (c->resume_ev != NULL)
		event_free(c->resume_ev);
	free(c);
}
