/*
 * regsync.c - registry distribution: observe (RFC 7641) the upstream
 * hub's /fed/registry; a newer valid registry is persisted, applied
 * without restart, and notified to this node's own observers (relay).
 */
#include "regsync.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

#include "../util/tb_err.h"
#include "log.h"

#define RESYNC_S 3 /* how often a missing observation is re-established */

/* The observation of the upstream hub's registry (the loop's only). */
struct tb_regsync {
	coap_session_t *obs_session;
	uint8_t obs_token[8];
	size_t obs_toklen;
	int64_t obs_last_ms;
	bool obs_ok; /* a notification has arrived on this observation */
	struct event *resync_timer;
};

static void
observe(struct tb_node *n)
{
	struct tb_diag d;
	coap_session_t *s;
	coap_pdu_t *pdu;
	uint8_t obs[4];

	if (n->cfg.registry_upstream[0] == '\0' || n->draining)
		return;
	/* a failing upstream is retried with its backoff (transport.c
	 * tells of it, rate-limited) */
	if (tb_transport_waiting(n, n->cfg.registry_upstream))
		return;
	if ((s = tb_transport_session(n, n->cfg.registry_upstream, 0, &d)) == NULL) {
		log_warnx("registry upstream %s: %s", n->cfg.registry_upstream, d.detail);
		return;
	}
	if ((pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, s)) == NULL)
		return;
	coap_session_new_token(s, &n->sync->obs_toklen, n->sync->obs_token);
	coap_add_token(pdu, n->sync->obs_toklen, n->sync->obs_token);
	coap_add_option(pdu, COAP_OPTION_OBSERVE,
	                coap_encode_var_safe(obs, sizeof(obs), COAP_OBSERVE_ESTABLISH), obs);
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"fed");
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 8, (const uint8_t *)"registry");
	if (coap_send(s, pdu) == COAP_INVALID_MID) {
		n->sync->obs_toklen = 0;
		return;
	}
	n->sync->obs_session = s;
	n->sync->obs_ok = false;
	n->sync->obs_last_ms = tb_now_ms();
	tb_transport_kick(n);
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
}

static bool response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent,
                        const coap_pdu_t *recv);
static void lost_cb(void *ctx, coap_session_t *s);

int
tb_regsync_start(struct tb_node *n)
{
	struct timeval tv = {RESYNC_S, 0};
	struct tb_transport_client c = {response_cb, NULL, lost_cb, n};

	if (n->cfg.registry_upstream[0] == '\0')
		return TB_OK;
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
}

/* Transport client: true when recv was a registry notification
 * (handled). */
static bool
response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
	struct tb_node *n = ctx;
	coap_bin_const_t tok = coap_pdu_get_token(recv);
	const uint8_t *data = NULL;
	size_t len = 0, off, total;
	struct tb_diag d;
	char line[300];

	(void)sent;

	/* tokens are per session: match both */
	if (n->sync->obs_toklen == 0 || s != n->sync->obs_session ||
	    tok.length != n->sync->obs_toklen || memcmp(tok.s, n->sync->obs_token, tok.length) != 0)
		return false;
	n->sync->obs_last_ms = tb_now_ms();
	n->sync->obs_ok = COAP_RESPONSE_CLASS(coap_pdu_get_code(recv)) == 2;
	if (COAP_RESPONSE_CLASS(coap_pdu_get_code(recv)) != 2 ||
	    !coap_get_data_large(recv, &len, &data, &off, &total) || len == 0)
		return true;
	if (len == n->reg_bytes.len && memcmp(data, n->reg_bytes.data, len) == 0)
		return true; /* the registry we hold */
	if (tb_node_apply_registry(n, data, len, true, &d) != TB_OK) {
		if (d.code != TB_E_REG_ROLLBACK)
			log_warnx("registry from %s refused, keeping the current one: %s",
			          n->cfg.registry_upstream, tb_diag_format(&d, line, sizeof(line)));
		return true;
	}
	log_info("registry updated from %s", n->cfg.registry_upstream);
	return true;
}
