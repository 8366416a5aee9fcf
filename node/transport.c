/* transport.c - libcoap (CoAP over DTLS, GnuTLS) on the libevent loop. */
#include "transport.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "../certs/tb_cert.h"
#include "../federation/tb_reg.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "../util/tb_port.h"
#include "log.h"

/* App data of a server session whose certificate check_peer refused (so
 * that event_cb does not count the refusal twice). */
static const char refused_peer[] = "";

/* Debug: which certificate's key a peer presented (a rotation shows). */
static void
log_peer_key(coap_session_t *s, const char *member, const uint8_t *der, size_t len)
{
	char hex[2 * TB_KEYID_LEN + 1];
	uint8_t kid[TB_KEYID_LEN];
	struct tb_cert *c = tb_cert_import(der, len, NULL);

	if (c == NULL)
		return;
	tb_cert_key_id(c, kid);
	tb_cert_free(c);
	tb_hex_encode(kid, sizeof(kid), hex);
	log_debug("DTLS %s session with %s: its certificate's key %.16s...",
	          coap_session_get_type(s) == COAP_SESSION_TYPE_CLIENT ? "client" : "server",
	          member, hex);
}

/* Certificate check for both directions: GnuTLS has validated the chain
 * to the federation root (no self-signed, no expired); here the leaf's
 * key must belong to an active member of the current registry. */
static int
check_peer(const char *cn, const uint8_t *der, size_t len, coap_session_t *s, unsigned depth,
           int validated, void *arg)
{
	struct tb_node *n = arg;
	const char *member;

	(void)cn;
	if (!validated) {
		n->m.handshake_refused++;
		log_warnx("handshake refused: certificate chain not valid (depth %u)", depth);
		return 0;
	}
	if (depth > 0)
		return 1; /* a CA of the chain, already validated */
	if ((member = tb_node_peer_member(n, der, len)) == NULL) {
		n->m.handshake_refused++;
		if (coap_session_get_type(s) == COAP_SESSION_TYPE_SERVER)
			coap_session_set_app_data(s, (void *)refused_peer);
		return 0;
	}
	log_peer_key(s, member, der, len); /* once per handshake */
	if (coap_session_get_type(s) == COAP_SESSION_TYPE_CLIENT) {
		/* we dialled a particular member: the server must be it */
		const char *want = coap_session_get_app_data(s);
		if (want != NULL && strcmp(want, member) != 0) {
			n->m.handshake_refused++;
			log_warnx("handshake refused: expected member %s, server is %s", want,
			          member);
			return 0;
		}
	}
	coap_session_set_app_data(s, (void *)member);
	return 1;
}

/* The DTLS identity: the PEM bytes of cert, key and root handed to
 * libcoap, which keeps pointers to them for every session it sets up
 * (coap_encryption(3)), so an identity replaced by a rotation is kept,
 * as older, until the context is freed. */
struct tb_dtls_id {
	struct tb_buf cert, key, root; /* each NUL-terminated, the NUL counted */
	struct tb_dtls_id *older;
};

static void
id_free(struct tb_dtls_id *id)
{
	while (id != NULL) {
		struct tb_dtls_id *older = id->older;
		tb_buf_free(&id->cert);
		tb_buf_wipe(&id->key);
		tb_buf_free(&id->root);
		free(id);
		id = older;
	}
}

/* Reads the files the configuration names; NULL with d on failure. */
static struct tb_dtls_id *
id_load(const struct tb_config *c, struct tb_diag *d)
{
	struct tb_dtls_id *id = calloc(1, sizeof(*id));

	if (id == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "DTLS identity");
		return NULL;
	}
	tb_buf_init(&id->cert);
	tb_buf_init(&id->key);
	tb_buf_init(&id->root);
	if (tb_file_read(c->cert, 1 << 20, &id->cert, d) != TB_OK ||
	    tb_file_read(c->key, 1 << 20, &id->key, d) != TB_OK ||
	    tb_file_read(c->root, 1 << 20, &id->root, d) != TB_OK ||
	    tb_buf_addc(&id->cert, 0) != TB_OK || tb_buf_addc(&id->key, 0) != TB_OK ||
	    tb_buf_addc(&id->root, 0) != TB_OK) {
		if (d->code == TB_OK)
			tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "DTLS identity");
		id_free(id);
		return NULL;
	}
	return id;
}

static bool
buf_equal(const struct tb_buf *a, const struct tb_buf *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void
fill_pki(struct tb_node *n, coap_dtls_pki_t *pki)
{
	const struct tb_dtls_id *id = n->dtls_id;

	memset(pki, 0, sizeof(*pki));
	pki->version = COAP_DTLS_PKI_SETUP_VERSION;
	pki->verify_peer_cert = 1;
	pki->check_common_ca = 0; /* peers hang under other province CAs */
	pki->allow_self_signed = 0;
	pki->allow_expired_certs = 0;
	pki->cert_chain_validation = 1;
	pki->cert_chain_verify_depth = 2; /* root -> province CA -> node */
	/* Revocation is enforced through the threshold-signed registry
	 * (revoked key ids and member status), which reaches every node in
	 * seconds; CRL files are for outside tools. */
	pki->check_cert_revocation = 0;
	pki->validate_cn_call_back = check_peer;
	pki->cn_call_back_arg = n;
	pki->pki_key.key_type = COAP_PKI_KEY_PEM_BUF;
	pki->pki_key.key.pem_buf.public_cert = id->cert.data;
	pki->pki_key.key.pem_buf.public_cert_len = id->cert.len;
	pki->pki_key.key.pem_buf.private_key = id->key.data;
	pki->pki_key.key.pem_buf.private_key_len = id->key.len;
	pki->pki_key.key.pem_buf.ca_cert = id->root.data;
	pki->pki_key.key.pem_buf.ca_cert_len = id->root.len;
}

int
tb_transport_set_identity(struct tb_node *n, bool *changed, struct tb_diag *d)
{
	struct tb_dtls_id *id = id_load(&n->cfg, d), *cur = n->dtls_id;
	coap_dtls_pki_t pki;

	*changed = false;
	if (id == NULL)
		return d->code;
	if (buf_equal(&id->cert, &cur->cert) && buf_equal(&id->key, &cur->key) &&
	    buf_equal(&id->root, &cur->root)) {
		id_free(id);
		return TB_OK;
	}
	n->dtls_id = id;
	fill_pki(n, &pki);
	if (!coap_context_set_pki(n->coap, &pki)) {
		n->dtls_id = cur;
		fill_pki(n, &pki);
		(void)!coap_context_set_pki(n->coap, &pki); /* the old one loaded before */
		id_free(id);
		return tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS,
		                   "libcoap refused the new DTLS identity");
	}
	id->older = cur;
	/* client sessions take the new identity when next idle (session()) */
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		for (int i = 0; i < TB_PEER_SESSIONS_MAX; i++)
			p->stale[i] = p->sessions[i] != NULL;
	*changed = true;
	return TB_OK;
}

static void coap_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Runs libcoap's pending work and re-arms its timer.
 *
 * Instead of coap_io_process(), which re-arms libcoap's timerfd before
 * every epoll_wait (a timerfd_settime system call each time, 8 % of a
 * busy sender's loop), the ready events are taken from libcoap's epoll
 * descriptor in a few bounded rounds and handed to coap_io_do_epoll();
 * the timed work (retransmissions, block-wise and session timeouts,
 * observe notifications) runs once at the end in coap_io_prepare_epoll(),
 * which also re-arms the timerfd.  Both are libcoap's documented API for
 * applications that run epoll themselves (coap_io(3)). */
#define PUMP_EVENTS 64
#define PUMP_ROUNDS 4
static void
pump(struct tb_node *n)
{
	struct epoll_event ev[PUMP_EVENTS];
	int fd = coap_context_get_coap_fd(n->coap);
	unsigned wait_ms;
	struct timeval tv;
	coap_tick_t now;

	if (fd < 0) /* a libcoap built without epoll */
		coap_io_process(n->coap, COAP_IO_NO_WAIT);
	else
		for (int round = 0; round < PUMP_ROUNDS; round++) {
			int k = epoll_wait(fd, ev, PUMP_EVENTS, 0);
			bool sockets = false;
			if (k <= 0)
				break;
			coap_io_do_epoll(n->coap, ev, (size_t)k);
			/* only libcoap's timer (data NULL) was ready: nothing more */
			for (int i = 0; i < k && !sockets; i++)
				sockets = ev[i].data.ptr != NULL;
			if (!sockets)
				break;
		}
	coap_ticks(&now);
	wait_ms = coap_io_prepare_epoll(n->coap, now);
	if (wait_ms == 0 || wait_ms > 1000)
		wait_ms = 1000;
	tv.tv_sec = wait_ms / 1000;
	tv.tv_usec = (long)(wait_ms % 1000) * 1000;
	evtimer_add(n->coap_timer, &tv);
}

static void
coap_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void
coap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

long
tb_coap_uint_option(const coap_pdu_t *pdu, coap_option_num_t num)
{
	coap_opt_iterator_t oi;
	coap_opt_t *o = coap_check_option(pdu, num, &oi);

	return o == NULL ? -1 : (long)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
}

void
tb_transport_kick(struct tb_node *n)
{
	struct timeval tv = {0, 0};

	if (n->coap_timer != NULL)
		evtimer_add(n->coap_timer, &tv);
}

void
tb_transport_add_client(struct tb_node *n, const struct tb_transport_client *c)
{
	struct tb_transport_client *v;

	/* a fixed set of stages registers at setup */
	if (n->nclients == TB_TRANSPORT_CLIENTS ||
	    (v = realloc(n->clients, (n->nclients + 1) * sizeof(*v))) == NULL)
		abort();
	n->clients = v;
	n->clients[n->nclients++] = *c;
}

/* An answer goes to the client whose request it answers. */
static coap_response_t
response_cb(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv, const coap_mid_t mid)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));

	(void)mid;
	for (size_t i = 0; i < n->nclients; i++)
		if (n->clients[i].response != NULL &&
		    n->clients[i].response(n->clients[i].ctx, s, sent, recv))
			break;
	return COAP_RESPONSE_OK;
}

static void
nack_cb(coap_session_t *s, const coap_pdu_t *sent, coap_nack_reason_t r, const coap_mid_t mid)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));

	(void)mid;
	for (size_t i = 0; i < n->nclients; i++)
		if (n->clients[i].nack != NULL)
			n->clients[i].nack(n->clients[i].ctx, s, sent, r);
}

/* Session s is closed, failed or retired: the clients forget it. */
static void
lost(struct tb_node *n, coap_session_t *s)
{
	for (size_t i = 0; i < n->nclients; i++)
		if (n->clients[i].lost != NULL)
			n->clients[i].lost(n->clients[i].ctx, s);
}

static int
event_cb(coap_session_t *s, const coap_event_t ev)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));

	if ((ev == COAP_EVENT_DTLS_CLOSED || ev == COAP_EVENT_DTLS_ERROR) &&
	    coap_session_get_type(s) == COAP_SESSION_TYPE_SERVER &&
	    coap_session_get_state(s) == COAP_SESSION_STATE_HANDSHAKE &&
	    coap_session_get_app_data(s) == NULL) {
		/* GnuTLS refused the chain (unknown CA, expired, no
		 * certificate) before check_peer was asked */
		n->m.handshake_refused++;
		log_warnx("handshake refused: DTLS handshake failed (certificate missing or not "
		          "valid for this federation)");
	}
	if (ev == COAP_EVENT_DTLS_ERROR || ev == COAP_EVENT_DTLS_CLOSED ||
	    ev == COAP_EVENT_SESSION_FAILED) {
		/* the session keeps its reference until its next use finds it
		 * dead (tb_transport_session): no release inside a callback */
		for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
			for (int i = 0; i < (int)n->cfg.peer_sessions; i++)
				if (p->sessions[i] == s) {
					log_debug("session %d to %s closed (event %d)", i, p->id,
					          (int)ev);
					p->inflight[i] = 0;
				}
		lost(n, s);
	}
	return 0;
}

/* A new registry: client sessions to members no longer active are cut at
 * the next delivery round (this may run inside a libcoap callback);
 * inbound messages are checked against the new registry anyway. */
static void
registry_applied(void *ctx, const struct tb_reg *reg)
{
	struct tb_node *n = ctx;

	for (struct tb_peer *p = n->peers; p != NULL; p = p->next) {
		size_t pm = tb_reg_find_member(reg, p->id);
		if (pm == TB_REG_NONE || tb_reg_member_status(reg, pm) != TB_STATUS_ACTIVE)
			p->drop = true;
	}
}

int
tb_transport_start(struct tb_node *n, struct tb_diag *d)
{
	coap_dtls_pki_t pki;
	coap_address_t addr;
	char port[8];
	struct addrinfo hints, *res = NULL;
	char why[120];
	int err = 0;

	coap_startup();
	coap_set_log_level(LOG_WARNING);
	coap_dtls_set_log_level(LOG_WARNING);
	if (!coap_dtls_is_supported())
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "libcoap has no DTLS support");
	if ((n->coap = coap_new_context(NULL)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "coap_new_context");
	coap_set_app_data(n->coap, n);
	coap_context_set_block_mode(n->coap, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	coap_context_set_max_idle_sessions(n->coap, 256);
	coap_context_set_session_timeout(n->coap, 300);
	coap_register_event_handler(n->coap, event_cb);
	coap_register_response_handler(n->coap, response_cb);
	coap_register_nack_handler(n->coap, nack_cb);
	if ((n->dtls_id = id_load(&n->cfg, d)) == NULL)
		return d->code;
	fill_pki(n, &pki);
	if (!coap_context_set_pki(n->coap, &pki))
		return tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS,
		                   "cannot load DTLS identity (cert %s, key %s, root %s)",
		                   n->cfg.cert, n->cfg.key, n->cfg.root);
	snprintf(port, sizeof(port), "%d", n->cfg.listen_port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if (getaddrinfo(n->cfg.listen_host, port, &hints, &res) != 0 || res == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "listen: bad address %s",
		                   n->cfg.listen_host);
	coap_address_init(&addr);
	addr.size = res->ai_addrlen;
	memcpy(&addr.addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	/* libcoap binds with SO_REUSEADDR, which lets a second UDP socket
	 * share the port silently: a port another socket holds is refused
	 * before, and the endpoint's socket loses SO_REUSEADDR after, so
	 * that a later bind of the port fails too (tb_port_exclusive) */
	if (!tb_port_free(SOCK_DGRAM, &addr.addr.sa, addr.size, &err) ||
	    coap_new_endpoint(n->coap, &addr, COAP_PROTO_DTLS) == NULL)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot listen on %s:%d: %s",
		                   n->cfg.listen_host, n->cfg.listen_port,
		                   tb_errno_text(err != 0 ? err : errno, why, sizeof(why)));
	if (tb_port_exclusive(&addr.addr.sa, addr.size) != TB_OK)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS,
		                   "cannot make the DTLS socket on %s:%d exclusive",
		                   n->cfg.listen_host, n->cfg.listen_port);
	n->coap_ev = event_new(n->base, coap_context_get_coap_fd(n->coap), EV_READ | EV_PERSIST,
	                       coap_fd_cb, n);
	n->coap_timer = evtimer_new(n->base, coap_timer_cb, n);
	if (n->coap_ev == NULL || n->coap_timer == NULL || event_add(n->coap_ev, NULL) != 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "event setup");
	tb_node_on_registry(n, registry_applied, n);
	tb_transport_kick(n);
	log_info("member %s listening on coaps://%s:%d", n->cfg.member_id, n->cfg.listen_host,
	         n->cfg.listen_port);
	return TB_OK;
}

void
tb_transport_stop(struct tb_node *n)
{
	if (n->coap_ev != NULL)
		event_free(n->coap_ev);
	if (n->coap_timer != NULL)
		event_free(n->coap_timer);
	n->coap_ev = n->coap_timer = NULL;
	for (struct tb_peer *p = n->peers, *q; p != NULL; p = q) {
		q = p->next;
		free(p);
	}
	n->peers = NULL;
	free(n->retired); /* their sessions go with the context */
	n->retired = NULL;
	n->nretired = 0;
	if (n->coap != NULL)
		coap_free_context(n->coap);
	n->coap = NULL;
	id_free(n->dtls_id); /* after the sessions that used them */
	n->dtls_id = NULL;
	coap_cleanup();
}

static struct tb_peer *
find_peer(struct tb_node *n, const char *id, bool create)
{
	struct tb_peer *p;

	for (p = n->peers; p != NULL; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	if (!create || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->next = n->peers;
	n->peers = p;
	return p;
}

/*
 * Sessions we stop using are not released at once: libcoap 4.3.1 may still
 * hold queued PDUs and block transfers that point at them (releasing such
 * a session was seen to make libcoap read freed memory).  They are kept
 * until every retransmission must have ended, then released; whatever is
 * left is freed with the context at exit.
 */
#define RETIRE_MS (2 * 93 * 1000) /* twice CoAP's MAX_TRANSMIT_WAIT */

static void
retire(struct tb_node *n, coap_session_t *s)
{
	struct tb_retired *v;

	if ((v = realloc(n->retired, (n->nretired + 1) * sizeof(*v))) == NULL)
		return; /* kept by libcoap until the context is freed */
	n->retired = v;
	v[n->nretired].s = s;
	v[n->nretired].since_ms = tb_now_ms();
	n->nretired++;
}

void
tb_transport_reap(struct tb_node *n)
{
	size_t k = 0;
	int64_t now = tb_now_ms();

	for (size_t i = 0; i < n->nretired; i++) {
		if (now - n->retired[i].since_ms >= RETIRE_MS)
			coap_session_release(n->retired[i].s);
		else
			n->retired[k++] = n->retired[i];
	}
	n->nretired = k;
}

struct tb_peer *
tb_transport_peer(struct tb_node *n, const char *id)
{
	return find_peer(n, id, true);
}

coap_session_t *
tb_transport_session(struct tb_node *n, const char *hop, int slot, struct tb_diag *d)
{
	struct tb_peer *p = find_peer(n, hop, true);
	coap_dtls_pki_t pki;
	coap_address_t addr;
	char hop2[16];

	if (p == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (p->sessions[slot] != NULL &&
	    (coap_session_get_state(p->sessions[slot]) == COAP_SESSION_STATE_NONE ||
	     (p->stale[slot] && p->inflight[slot] == 0))) {
		/* closed or failed, or idle and set up with an identity since
		 * rotated (tb_transport_set_identity): replace it */
		lost(n, p->sessions[slot]);
		retire(n, p->sessions[slot]);
		p->sessions[slot] = NULL;
		p->inflight[slot] = 0;
	}
	if (p->sessions[slot] != NULL)
		return p->sessions[slot];
	if (tb_node_next_hop(n, hop, hop2, sizeof(hop2), &addr, d) != TB_OK)
		return NULL;
	fill_pki(n, &pki);
	p->sessions[slot] =
	    coap_new_client_session_pki(n->coap, NULL, &addr, COAP_PROTO_DTLS, &pki);
	if (p->sessions[slot] == NULL) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot open a DTLS session to %s", hop);
		return NULL;
	}
	coap_session_set_app_data(p->sessions[slot], (void *)tb_node_intern(n, hop2));
	p->stale[slot] = false;
	return p->sessions[slot];
}

void
tb_transport_drop_slot(struct tb_node *n, const char *id, int slot, coap_session_t *s)
{
	struct tb_peer *p = find_peer(n, id, false);

	if (p == NULL || slot < 0 || slot >= (int)n->cfg.peer_sessions || p->sessions[slot] != s ||
	    s == NULL)
		return;
	lost(n, s);
	retire(n, s);
	p->sessions[slot] = NULL;
	p->inflight[slot] = 0;
}

void
tb_transport_drop_peer(struct tb_node *n, const char *id)
{
	struct tb_peer *p = find_peer(n, id, false);

	for (int i = 0; p != NULL && i < (int)n->cfg.peer_sessions; i++)
		if (p->sessions[i] != NULL) {
			lost(n, p->sessions[i]);
			retire(n, p->sessions[i]);
			p->sessions[i] = NULL;
			p->inflight[i] = 0;
		}
}
