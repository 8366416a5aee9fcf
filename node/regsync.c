/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regsync.c - registry distribution: observe (RFC 7641) the upstream
 * hub's /fed/registry; a newer valid registry is persisted, applied
 * without restart, and notified to this node's own observers (relay).
 * In recovery (registry expired) the node also asks, in turn, its
 * upstream and every hub of the registry it holds (one GET each
 * FETCH_S), until one of them has a newer registry that verifies.
 * Fetching a registry is not a message exchange: it goes on in every
 * state (the transport must dial for it, PROTOCOL.md 9.5).
 */
#include "regsync.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

#include "../federation/tb_reg.h"
#include "../util/tb_err.h"
#include "log.h"

#define RESYNC_S 3 /* how often a missing observation is re-established */
#define FETCH_S 3  /* in recovery: one registry source asked this often */
#define MAX_SOURCES 32

/* The observation of the upstream hub's registry, and the one fetch in
 * flight in recovery (the loop's only). */
struct tb_regsync {
	coap_session_t *obs_session;
	uint8_t obs_token[8];
	size_t obs_toklen;
	int64_t obs_last_ms;
	bool obs_ok; /* a notification has arrived on this observation */
	struct event *resync_timer;
	coap_session_t *fetch_session;
	uint8_t fetch_token[8];
	size_t fetch_toklen;
	char fetch_from[16];
	size_t fetch_next;    /* index of the next source asked */
	int64_t fetch_ms;     /* when the last fetch was sent */
	uint64_t said_serial; /* the last refusal logged, so a source */
	int said_code;        /* asked again is not logged again */
};

/* GET /fed/registry to member `to` (observe: 0 to establish, -1 for a
 * plain GET); the session and token go to *sp, tok, *toklen. */
static bool
get_registry(struct tb_node *n, const char *to, int observe, coap_session_t **sp, uint8_t tok[8],
             size_t *toklen)
{
	struct tb_diag d;
	coap_session_t *s;
	coap_pdu_t *pdu;
	uint8_t obs[4];

	/* a failing source is retried with its backoff (transport.c tells
	 * of it, rate-limited) */
	if (tb_transport_waiting(n, to))
		return false;
	if ((s = tb_transport_session(n, to, 0, &d)) == NULL) {
		log_debug("registry source %s: %s", to, d.detail);
		return false;
	}
	if ((pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, s)) == NULL)
		return false;
	coap_session_new_token(s, toklen, tok);
	coap_add_token(pdu, *toklen, tok);
	if (observe >= 0)
		coap_add_option(pdu, COAP_OPTION_OBSERVE,
		                coap_encode_var_safe(obs, sizeof(obs), (unsigned)observe), obs);
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"fed");
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 8, (const uint8_t *)"registry");
	if (coap_send(s, pdu) == COAP_INVALID_MID) {
		*toklen = 0;
		return false;
	}
	*sp = s;
	tb_transport_kick(n);
	return true;
}

/* Recovery: asks the next source for its registry. */
static void
fetch(struct tb_node *n)
{
	struct tb_regsync *y = n->sync;
	char src[MAX_SOURCES][16];
	size_t k = tb_node_registry_sources(n, src, MAX_SOURCES);

	if (k == 0 || n->draining || tb_now_ms() - y->fetch_ms < FETCH_S * 1000)
		return;
	y->fetch_ms = tb_now_ms();
	y->fetch_next %= k;
	snprintf(y->fetch_from, sizeof(y->fetch_from), "%s", src[y->fetch_next++]);
	y->fetch_toklen = 0;
	y->fetch_session = NULL;
	if (get_registry(n, y->fetch_from, -1, &y->fetch_session, y->fetch_token, &y->fetch_toklen))
		log_debug("recovery: registry asked of %s", y->fetch_from);
}

static void
observe(struct tb_node *n)
{
	struct tb_regsync *y = n->sync;

	if (n->cfg.registry_upstream[0] == '\0' || n->draining)
		return;
	y->obs_toklen = 0;
	if (!get_registry(n, n->cfg.registry_upstream, COAP_OBSERVE_ESTABLISH, &y->obs_session,
	                  y->obs_token, &y->obs_toklen)) {
		log_warnx("registry upstream %s: cannot ask for its registry",
		          n->cfg.registry_upstream);
		return;
	}
	y->obs_ok = false;
	y->obs_last_ms = tb_now_ms();
}

static void
resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_node *n = arg;

	(void)fd;
	(void)what;
	/* (re)establish when there is no live observation: never answered,
	 * or lost with its session */
	if (n->sync->obs_session != NULL && !n->sync->obs_ok &&
	    tb_now_ms() - n->sync->obs_last_ms > RESYNC_S * 1000) {
		/* ask again; the delivery sessions to the hub stay (a dead
		 * session is replaced by tb_transport_session) */
		n->sync->obs_session = NULL;
		n->sync->obs_toklen = 0;
	}
	if (n->sync->obs_session == NULL || n->sync->obs_toklen == 0)
		observe(n);
	if (n->state == TB_NODE_RECOVERY)
		fetch(n);
}

static bool response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent,
                        const coap_pdu_t *recv);
static void lost_cb(void *ctx, coap_session_t *s);

int
tb_regsync_start(struct tb_node *n)
{
	struct timeval tv = {RESYNC_S, 0};
	struct tb_transport_client c = {response_cb, NULL, lost_cb, n};

	/* also without an upstream: recovery asks the registry's hubs */
	if ((n->sync = calloc(1, sizeof(*n->sync))) == NULL)
		return TB_E_NOMEM;
	tb_transport_add_client(n, &c);
	if ((n->sync->resync_timer = event_new(n->base, -1, EV_PERSIST, resync_cb, n)) == NULL ||
	    evtimer_add(n->sync->resync_timer, &tv) != 0)
		return TB_E_NOMEM;
	observe(n);
	return TB_OK;
}

void
tb_regsync_stop(struct tb_node *n)
{
	if (n->sync == NULL)
		return;
	if (n->sync->resync_timer != NULL)
		event_free(n->sync->resync_timer);
	free(n->sync);
	n->sync = NULL;
}

/* Transport client: the observation's session is gone. */
static void
lost_cb(void *ctx, coap_session_t *s)
{
	struct tb_node *n = ctx;

	if (s == n->sync->obs_session) {
		n->sync->obs_session = NULL;
		n->sync->obs_toklen = 0;
	}
	if (s == n->sync->fetch_session) {
		n->sync->fetch_session = NULL;
		n->sync->fetch_toklen = 0;
	}
}

/* A registry document from member `from`: applied when it is newer and
 * valid.  A refusal is logged once per serial and reason (in recovery
 * the same sources are asked again and again). */
static void
offer(struct tb_node *n, const char *from, const uint8_t *data, size_t len)
{
	struct tb_regsync *y = n->sync;
	struct tb_reg *r;
	struct tb_diag d;
	uint64_t serial = 0;
	char line[300];

	if (len == n->reg_bytes.len && memcmp(data, n->reg_bytes.data, len) == 0)
		return; /* the registry we hold */
	if (len == n->pending.len && memcmp(data, n->pending.data, len) == 0)
		return; /* the one kept until it is valid */
	if (tb_node_apply_registry(n, data, len, true, &d) == TB_OK) {
		log_info("registry updated from %s", from);
		return;
	}
	if (d.code == TB_E_REG_ROLLBACK && n->state != TB_NODE_RECOVERY)
		return; /* an older one: normal while a publication spreads */
	if ((r = tb_reg_parse(data, len, NULL)) != NULL)
		serial = tb_reg_serial(r);
	tb_reg_free(r);
	if (serial == y->said_serial && d.code == y->said_code)
		return;
	y->said_serial = serial;
	y->said_code = d.code;
	log_warnx("registry serial %llu from %s refused, keeping serial %llu: %s",
	          (unsigned long long)serial, from, (unsigned long long)tb_reg_serial(n->reg),
	          tb_diag_format(&d, line, sizeof(line)));
}

/* Transport client: true when recv was a registry notification
 * (handled). */
static bool
response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
	struct tb_node *n = ctx;
	struct tb_regsync *y = n->sync;
	coap_bin_const_t tok = coap_pdu_get_token(recv);
	const uint8_t *data = NULL;
	size_t len = 0, off, total;

	(void)sent;

	/* tokens are per session: match both */
	bool obs = y->obs_toklen != 0 && s == y->obs_session && tok.length == y->obs_toklen &&
	           memcmp(tok.s, y->obs_token, tok.length) == 0;
	bool got = y->fetch_toklen != 0 && s == y->fetch_session && tok.length == y->fetch_toklen &&
	           memcmp(tok.s, y->fetch_token, tok.length) == 0;

	if (!obs && !got)
		return false;
	if (obs) {
		y->obs_last_ms = tb_now_ms();
		y->obs_ok = COAP_RESPONSE_CLASS(coap_pdu_get_code(recv)) == 2;
	} else {
		y->fetch_toklen = 0; /* one answer to a plain GET */
	}
	if (COAP_RESPONSE_CLASS(coap_pdu_get_code(recv)) != 2 ||
	    !coap_get_data_large(recv, &len, &data, &off, &total) || len == 0)
		return true;
	offer(n, obs ? n->cfg.registry_upstream : y->fetch_from, data, len);
	return true;
}
