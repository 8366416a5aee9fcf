/* SPDX-License-Identifier: Apache-2.0 */
/* transport.c - libcoap (CoAP over DTLS, GnuTLS) on the libevent loop. */
#include "transport.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <gnutls/dtls.h>

#include "../certs/tb_key.h"
#include "../certs/tb_cert.h"
#include "../federation/tb_reg.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "../util/tb_port.h"
#include "flood.h"
#include "log.h"

/* App data of a server session whose certificate check_peer refused (so
 * that event_cb does not count the refusal twice). */
static const char refused_peer[] = "";

static void refused(struct tb_node *n, coap_session_t *s, const char *why);
static struct tb_peer *peer_of_session(struct tb_node *n, coap_session_t *s, int *slot);
static struct tb_peer *find_peer(struct tb_node *n, const char *id, bool create);
static void client_refused(struct tb_node *n, coap_session_t *s, const char *why);
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
	char why[160];
	bool server = coap_session_get_type(s) == COAP_SESSION_TYPE_SERVER;

	(void)cn;
	if (!validated) {
		snprintf(why, sizeof(why), "certificate chain not valid (depth %u)", depth);
		goto refuse;
	}
	if (depth > 0)
		return 1; /* a CA of the chain, already validated */
	if ((member = tb_node_peer_member(n, der, len, why, sizeof(why))) == NULL)
		goto refuse;
	log_peer_key(s, member, der, len); /* once per handshake */
	if (!server) {
		/* we dialled a particular member: the server must be it */
		const char *want = coap_session_get_app_data(s);
		if (want != NULL && strcmp(want, member) != 0) {
			snprintf(why, sizeof(why), "expected member %s, server is %s", want,
			         member);
			goto refuse;
		}
	}
	coap_session_set_app_data(s, (void *)member);
	{
		/* for GET /v1/peers: the handshake's last check passed, with a
		 * peer this node sends to (libcoap 4.3.1 raises no event for a
		 * DTLS session that is up; a session is set up one handshake) */
		struct tb_peer *p = find_peer(n, member, false);
		int slot;
		if (p != NULL)
			p->last_handshake = tb_now();
		/* we dialled: two round trips since the first ClientHello
		 * (the cookie's, then the server's first flight), the
		 * server's time for them a signature (link.h) */
		if (!server && p != NULL && peer_of_session(n, s, &slot) == p) {
			tb_link_handshake(&p->link, (tb_now_ms() - p->opened_ms[slot]) / 2);
			/* the exchange that waits for the session goes out with
			 * the timeouts of what is known of the path by now */
			tb_transport_tune(s, &p->link);
		}
	}
	return 1;
refuse:
	n->m.handshake_refused++;
	if (server) {
		coap_session_set_app_data(s, (void *)refused_peer);
		refused(n, s, why);
	} else {
		client_refused(n, s, why);
	}
	return 0;
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
static void flush_refusals(struct tb_node *n, int64_t now_ms);
static bool probing(const struct tb_node *n, const struct tb_peer *p);

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

/* Reads and drops the datagrams at the head of the listening socket that
 * flood.c refuses, before libcoap reads them (a peek at the source and
 * the first bytes, then a read of the refused one).  False when nothing
 * is left there for libcoap: at most SCREEN_MAX are dropped a round. */
#define SCREEN_MAX 1024
static bool
screen(struct tb_node *n)
{
	uint8_t head[16];
	struct sockaddr_storage sa;
	int64_t now = tb_now_ms();

	for (int i = 0; i < SCREEN_MAX; i++) {
		socklen_t len = sizeof(sa);
		ssize_t k = recvfrom(n->dtls_fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT,
		                     (struct sockaddr *)&sa, &len);
		if (k < 0) /* empty; another error is libcoap's to see */
			return errno != EAGAIN && errno != EWOULDBLOCK;
		if (tb_flood_admit(n->flood, (struct sockaddr *)&sa, len, head, (size_t)k, now))
			return true;
		(void)!recv(n->dtls_fd, head, 1, MSG_DONTWAIT); /* the rest is discarded */
	}
	return false;
}

/* Screens the listening socket when it is among the k ready events, and
 * leaves its event out when nothing is left on it for libcoap (whose read
 * of an empty socket logs a warning).  The event's data is libcoap 4.3.1's
 * coap_socket_t, whose first member is the descriptor.  The new count. */
static int
screen_events(struct tb_node *n, struct epoll_event *ev, int k)
{
	int j = 0;

	if (n->flood == NULL || n->dtls_fd < 0)
		return k;
	for (int i = 0; i < k; i++) {
		if (ev[i].data.ptr != NULL && *(const int *)ev[i].data.ptr == n->dtls_fd &&
		    !screen(n))
			continue;
		ev[j++] = ev[i];
	}
	return j;
}

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
			/* only libcoap's timer (data NULL) was ready: nothing more */
			for (int i = 0; i < k && !sockets; i++)
				sockets = ev[i].data.ptr != NULL;
			k = screen_events(n, ev, k);
			coap_io_do_epoll(n->coap, ev, (size_t)k);
			if (!sockets)
				break;
		}
	flush_refusals(n, tb_now_ms());
	tb_flood_flush(n->flood, tb_now_ms(), false);
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
	int slot;
	struct tb_peer *p = peer_of_session(n, s, &slot);

	(void)mid;
	/* A client session's handshake failed: one failed attempt of its
	 * peer.  libcoap 4.3.1 raises COAP_EVENT_DTLS_CLOSED in both cases
	 * below; only the nack of the request that waited for the session
	 * tells them apart (and every session carries a request: none is
	 * opened without one).  A refusal by check_peer was counted already,
	 * in the same epoch. */
	if (p != NULL && r == COAP_NACK_TLS_FAILED &&
	    tb_now_ms() - p->opened_ms[slot] >= TB_HS_TIMEOUT_MS) {
		/* no alert: its flights went unanswered (a lossy link); while
		 * the peer answers exchanges on other sessions that is the
		 * link's loss, not an outage: no backoff */
		p->hs_failed[slot] = true;
		if (tb_transport_failover(n, p, p->slot_ep[slot], "a handshake timed out")) {
			p->fails[TB_PF_UNREACHABLE]++;
		} else if (p->last_answer_ms != 0 && tb_now_ms() - p->last_answer_ms < TB_LINK_ALIVE_MS &&
		           p->failures == 0) {
			p->fails[TB_PF_UNREACHABLE]++;
			log_debug("peer %s: a DTLS handshake timed out (the link loses datagrams)",
			          p->id);
		} else {
			tb_peer_failed(n, p, p->slot_epoch[slot], TB_PF_UNREACHABLE,
			               "the DTLS handshake timed out (flights lost on the way)");
		}
	} else if (p != NULL && r == COAP_NACK_TLS_FAILED) {
		/* its session is released soon (retire); ICMP_ISSUE may also
		 * end an established session, so it is not marked */
		p->hs_failed[slot] = true;
		tb_peer_failed(n, p, p->slot_epoch[slot], TB_PF_REFUSED,
		               "the DTLS handshake ended with an alert (the peer refused this "
		               "node's certificate, or its own was not acceptable here)");
	} else if (p != NULL && r == COAP_NACK_ICMP_ISSUE) {
		if (tb_transport_failover(n, p, p->slot_ep[slot], "port unreachable"))
			p->fails[TB_PF_UNREACHABLE]++;
		else
			tb_peer_failed(n, p, p->slot_epoch[slot], TB_PF_UNREACHABLE,
			               "port unreachable (ICMP)");
	}
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

/* The peer and slot of client session s, or NULL. */
static struct tb_peer *
peer_of_session(struct tb_node *n, coap_session_t *s, int *slot)
{
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		for (int i = 0; i < (int)n->cfg.peer_sessions; i++)
			if (p->sessions[i] == s) {
				*slot = i;
				return p;
			}
	return NULL;
}

static int
event_cb(coap_session_t *s, const coap_event_t ev)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));
	bool server = coap_session_get_type(s) == COAP_SESSION_TYPE_SERVER;
	bool failed = ev == COAP_EVENT_DTLS_ERROR || ev == COAP_EVENT_DTLS_CLOSED ||
	              ev == COAP_EVENT_SESSION_FAILED;

	if (ev == COAP_EVENT_SERVER_SESSION_NEW)
		tb_flood_session_new(n->flood, s, tb_now_ms());
	else if (ev == COAP_EVENT_SERVER_SESSION_DEL)
		tb_flood_session_del(n->flood, s);
	if (failed && server && coap_session_get_state(s) == COAP_SESSION_STATE_HANDSHAKE &&
	    coap_session_get_app_data(s) == NULL) {
		/* GnuTLS refused the chain (unknown CA, expired, no
		 * certificate) before check_peer was asked */
		n->m.handshake_refused++;
		refused(n, s,
		        "DTLS handshake failed (certificate missing or not valid for this "
		        "federation)");
	}
	if (failed) {
		/* the session keeps its reference until its next use finds it
		 * dead (tb_transport_session): no release inside a callback */
		int slot;
		struct tb_peer *p = peer_of_session(n, s, &slot);
		if (p != NULL) {
			log_debug("session %d to %s closed (event %d)", slot, p->id, (int)ev);
			p->inflight[slot] = 0;
			p->large[slot] = false;
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

/* A flood fills the default receive buffer (about 270 datagrams) within
 * milliseconds, and the kernel then drops the members' datagrams too,
 * which CoAP resends only seconds later: the listening socket gets
 * RCVBUF_WANT, within net.core.rmem_max (ADMIN.md, floods). */
#define RCVBUF_WANT (4 << 20)
static void
rcvbuf(int fd)
{
	int want = RCVBUF_WANT, got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) != 0)
		got = 0;
	if (got < want) /* Linux reports twice what it was given */
		log_info("the DTLS socket's receive buffer is %d KiB, not %d: a flood may make the "
		         "kernel drop members' datagrams (raise net.core.rmem_max)",
		         got / 2048, want / 1024);
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
	tb_log_attach_coap(); /* its log through ours, at our level */
	coap_dtls_set_log_level(LOG_WARNING);
	if (!coap_dtls_is_supported())
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "libcoap has no DTLS support");
	if ((n->coap = coap_new_context(NULL)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "coap_new_context");
	coap_set_app_data(n->coap, n);
	coap_context_set_block_mode(n->coap, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	coap_context_set_max_idle_sessions(n->coap, 256);
	/* flood.c keeps the half-open handshakes under TB_FLOOD_HALFOPEN_MAX,
	 * dropping the oldest; libcoap's own cap (100 by default), which
	 * refuses every new one instead, is set out of its way */
	coap_context_set_max_handshake_sessions(n->coap, 2 * TB_FLOOD_HALFOPEN_MAX);
	n->dtls_fd = -1;
	if ((n->flood = tb_flood_new()) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "flood limits");
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
	    coap_new_endpoint(n->coap, &addr, COAP_PROTO_DTLS) == NULL) {
		char who[96];
		bool known = tb_port_holder(SOCK_DGRAM, &addr.addr.sa, addr.size, who, sizeof(who));
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot listen on %s:%d: %s%s%s",
		                   n->cfg.listen_host, n->cfg.listen_port,
		                   tb_errno_text(err != 0 ? err : errno, why, sizeof(why)),
		                   known ? ", held by " : "", known ? who : "");
	}
	if (tb_port_exclusive(&addr.addr.sa, addr.size) != TB_OK)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS,
		                   "cannot make the DTLS socket on %s:%d exclusive",
		                   n->cfg.listen_host, n->cfg.listen_port);
	/* without it datagrams reach libcoap unscreened (logged) */
	if ((n->dtls_fd = tb_port_bound_fd(&addr.addr.sa, addr.size)) < 0)
		log_warnx("the DTLS socket was not found: no per-source flood limits");
	else {
		rcvbuf(n->dtls_fd);
		tb_flood_set_socket(n->flood, n->dtls_fd);
	}
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
	free(n->refusals);
	n->refusals = NULL;
	free(n->retired); /* their sessions go with the context */
	n->retired = NULL;
	n->nretired = 0;
	if (n->coap != NULL)
		coap_free_context(n->coap);
	n->coap = NULL;
	id_free(n->dtls_id); /* after the sessions that used them */
	n->dtls_id = NULL;
	tb_flood_flush(n->flood, tb_now_ms(), true); /* the counts held back */
	tb_flood_free(n->flood);                     /* after the sessions it points to */
	n->flood = NULL;
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
	tb_link_init(&p->link);
	p->window = 1; /* until a delivery round sets it (outbound.c) */
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
/* A session whose handshake failed never carried a CoAP message (its
 * requests were nacked "not transmitted"): released after this instead,
 * so that a failing peer does not pile up one socket per attempt. */
#define RETIRE_FAILED_MS 5000

static void
retire(struct tb_node *n, coap_session_t *s, bool handshake_failed)
{
	struct tb_retired *v;

	if ((v = realloc(n->retired, (n->nretired + 1) * sizeof(*v))) == NULL)
		return; /* kept by libcoap until the context is freed */
	n->retired = v;
	v[n->nretired].s = s;
	v[n->nretired].since_ms =
	    tb_now_ms() - (handshake_failed ? RETIRE_MS - RETIRE_FAILED_MS : 0);
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

/* The endpoint a new session to p goes to: the first whose breaker is
 * closed, else the one whose breaker closes first. */
static int
choose_ep(const struct tb_peer *p, int64_t now_ms)
{
	int best = 0;

	for (int i = 0; i < p->nep; i++) {
		if (p->ep_open_until_ms[i] <= now_ms)
			return i;
		if (p->ep_open_until_ms[i] < p->ep_open_until_ms[best])
			best = i;
	}
	return best;
}

bool
tb_transport_failover(struct tb_node *n, struct tb_peer *p, int ep, const char *why)
{
	int64_t now = tb_now_ms();
	bool was_open;
	int next;

	if (p == NULL || p->nep < 2 || ep < 0 || ep >= p->nep)
		return false;
	was_open = p->ep_open_until_ms[ep] > now;
	p->ep_open_until_ms[ep] = now + n->cfg.breaker_open_ms;
	next = choose_ep(p, now);
	if (p->ep_open_until_ms[next] > now)
		return false; /* every endpoint failed: the peer's backoff decides */
	if (!was_open)
		log_warnx("peer %s: endpoint %d of %d failed (%s); new sessions go to endpoint %d "
		          "for at least %lld ms",
		          p->id, ep + 1, p->nep, why, next + 1, (long long)n->cfg.breaker_open_ms);
	return true;
}

/* The DTLS handshake's first retransmission timeout, from the round
 * trips handshakes with the peer showed (link.h): GnuTLS's timer, which
 * libcoap sets to 1 s for every session whatever the path. */
static void
tune_handshake(coap_session_t *s, const struct tb_link *l)
{
	coap_tls_library_t lib;
	void *tls = coap_session_get_tls(s, &lib);
	int64_t ms = tb_link_hs_retransmit_ms(l);

	if (tls != NULL && lib == COAP_TLS_LIBRARY_GNUTLS)
		gnutls_dtls_set_timeouts((gnutls_session_t)tls, (unsigned)ms,
		                         TB_LINK_HS_TOTAL_MS);
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
		retire(n, p->sessions[slot], p->hs_failed[slot]);
		p->sessions[slot] = NULL;
		p->inflight[slot] = 0;
		p->large[slot] = false;
	}
	/* no handshake while this member may not exchange (in recovery
	 * only the registry is fetched, regsync.c) */
	if (n->state != TB_NODE_OK && n->state != TB_NODE_RECOVERY) {
		tb_diag_set(d, tb_node_state_err(n), TB_DIAG_NOPOS, "node is %s",
		            tb_node_state_name(n->state));
		return NULL;
	}
	if (p->sessions[slot] != NULL)
		return p->sessions[slot];
	/* a failing peer: no new session before its backoff ends, and one
	 * probe at a time */
	if (p->failures > 0 && (!tb_peer_ready(p, tb_now_ms()) || probing(n, p))) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS,
		            "peer %s: waiting %lld ms after %d failed attempts", hop,
		            (long long)(p->open_until_ms - tb_now_ms()), p->failures);
		return NULL;
	}
	int ep = choose_ep(p, tb_now_ms()), nep;
	if (tb_node_next_hop_ep(n, hop, ep, hop2, sizeof(hop2), &addr, &nep, d) != TB_OK)
		return NULL;
	p->nep = nep > TB_REG_MAX_ENDPOINTS ? TB_REG_MAX_ENDPOINTS : nep;
	p->slot_ep[slot] = ep < p->nep ? ep : 0;
	fill_pki(n, &pki);
	p->sessions[slot] =
	    coap_new_client_session_pki(n->coap, NULL, &addr, COAP_PROTO_DTLS, &pki);
	if (p->sessions[slot] == NULL) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot open a DTLS session to %s", hop);
		return NULL;
	}
	tune_handshake(p->sessions[slot], &p->link);
	p->slot_epoch[slot] = p->epoch;
	p->opened_ms[slot] = tb_now_ms();
	p->hs_failed[slot] = false;
	/* a pipelined link has several exchanges outstanding (link.h) */
	coap_session_set_nstart(p->sessions[slot], TB_LINK_PIPE_DEPTH);
	coap_session_set_app_data(p->sessions[slot], (void *)tb_node_intern(n, hop2));
	p->stale[slot] = false;
	return p->sessions[slot];
}

void
tb_transport_tune(coap_session_t *s, const struct tb_link *l)
{
	int64_t ack = tb_link_ack_timeout_ms(l);

	if (s == NULL || ack == 0)
		return;
	coap_session_set_ack_timeout(s, (coap_fixed_point_t){(uint16_t)(ack / 1000),
	                                                     (uint16_t)(ack % 1000)});
	int f = tb_link_ack_random_factor(l);
	coap_session_set_ack_random_factor(s, (coap_fixed_point_t){(uint16_t)(f / 1000),
	                                                           (uint16_t)(f % 1000)});
	/* a handshake keeps libcoap's MAX_RETRANSMIT: its DTLS timeouts
	 * count against it too */
	if (coap_session_get_state(s) == COAP_SESSION_STATE_ESTABLISHED)
		coap_session_set_max_retransmit(s, (uint16_t)tb_link_max_retransmit(l));
}

void
tb_transport_drop_slot(struct tb_node *n, const char *id, int slot, coap_session_t *s)
{
	struct tb_peer *p = find_peer(n, id, false);

	if (p == NULL || slot < 0 || slot >= (int)n->cfg.peer_sessions || p->sessions[slot] != s ||
	    s == NULL)
		return;
	lost(n, s);
	retire(n, s, false);
	p->sessions[slot] = NULL;
	p->inflight[slot] = 0;
	p->large[slot] = false;
}

void
tb_transport_drop_peer(struct tb_node *n, const char *id)
{
	struct tb_peer *p = find_peer(n, id, false);

	for (int i = 0; p != NULL && i < (int)n->cfg.peer_sessions; i++)
		if (p->sessions[i] != NULL) {
			lost(n, p->sessions[i]);
			retire(n, p->sessions[i], false);
			p->sessions[i] = NULL;
			p->inflight[i] = 0;
			p->large[i] = false;
		}
}

/* ---- per-peer backoff, circuit breaker and rate-limited reports ---- */

const char *
tb_peer_fail_name(enum tb_peer_fail why)
{
	static const char *const names[TB_PF_N] = {"handshake_refused", "unreachable", "timeout",
	                                           "bad_answer"};

	return (unsigned)why < TB_PF_N ? names[why] : "unknown";
}

int64_t
tb_backoff_ms(const struct tb_config *c, int failures)
{
	int64_t ms = c->retry_min_ms;
	uint32_t r = 0;

	for (int i = 1; i < failures && ms < c->retry_max_ms; i++)
		ms *= 2;
	if (ms > c->retry_max_ms)
		ms = c->retry_max_ms;
	if (tb_random(&r, sizeof(r)) != TB_OK)
		r = 0; /* no jitter then: still a valid backoff */
	/* +-25 %, so that peers recovering together are not hit together */
	return ms * 3 / 4 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
}

/* The window of the rate-limited lines: a peer is retried at most once
 * per retry_max_ms once its backoff is at its longest, so at most one
 * line per retry_max_ms tells of it (at least one a second). */
static int64_t
report_window(const struct tb_node *n)
{
	return n->cfg.retry_max_ms > 1000 ? n->cfg.retry_max_ms : 1000;
}

/* Writes the failure line of p (a first one, or a count). */
static void
peer_line(struct tb_node *n, struct tb_peer *p, uint64_t count, int64_t span_s, int64_t now_ms)
{
	int64_t wait = p->open_until_ms > now_ms ? p->open_until_ms - now_ms : 0;

	if (span_s == 0 && count <= 1)
		log_warnx("peer %s: %s; next attempt in %lld ms", p->id, p->report.why,
		          (long long)wait);
	else
		log_warnx("peer %s: %llu failed attempts in the last %lld s (%d in a row%s): %s; "
		          "next attempt in %lld ms",
		          p->id, (unsigned long long)count, (long long)span_s, p->failures,
		          p->failures >= TB_BREAKER_AFTER ? ", circuit open" : "", p->report.why,
		          (long long)wait);
}

void
tb_peer_failed(struct tb_node *n, struct tb_peer *p, uint32_t epoch, enum tb_peer_fail why,
               const char *detail)
{
	int64_t now_ms = tb_now_ms(), delay;
	uint64_t count;
	int64_t span;

	p->up = false;
	if (epoch != p->epoch)
		return; /* started before the last failure counted: the same one */
	p->fails[why]++;
	snprintf(p->report.why, sizeof(p->report.why), "%s%s%s",
	         why == TB_PF_REFUSED ? "handshake refused" : tb_peer_fail_name(why),
	         detail != NULL ? ": " : "", detail != NULL ? detail : "");
	{
		/* a new failed attempt: the backoff grows; an attempt that
		 * started before the last counted failure is the same outage */
		p->epoch++;
		p->failures++;
		/* a refusal is the peer's trust decision, which only a new
		 * registry changes: the circuit opens at once */
		if (why == TB_PF_REFUSED && p->failures < TB_BREAKER_AFTER)
			p->failures = TB_BREAKER_AFTER;
		delay = tb_backoff_ms(&n->cfg, p->failures);
		if (p->failures >= TB_BREAKER_AFTER && delay < n->cfg.breaker_open_ms)
			delay = n->cfg.breaker_open_ms;
		p->open_until_ms = now_ms + delay;
	}
	if (!p->report_held && tb_report_event(&p->report, now_ms, report_window(n), &count, &span))
		peer_line(n, p, count, span, now_ms);
}

int64_t
tb_peer_hold_until(const struct tb_peer *p, int64_t now_ms, int64_t max_age_s, uint32_t rnd)
{
	int64_t ms, at;

	if (max_age_s < 0)
		return p->open_until_ms;
	ms = (max_age_s > TB_MAX_AGE_CAP ? TB_MAX_AGE_CAP : max_age_s) * 1000;
	at = now_ms + ms + (int64_t)(rnd % (uint32_t)(ms / 4 + 1));
	return at > p->open_until_ms ? at : p->open_until_ms;
}

void
tb_peer_succeeded(struct tb_node *n, struct tb_peer *p)
{
	uint64_t count;
	int64_t span;

	if (p->failures > 0) {
		int64_t now_ms = tb_now_ms();
		if (tb_report_flush(&p->report, now_ms, 0, &count, &span))
			log_warnx("peer %s: %llu failed attempts in the last %lld s: %s", p->id,
			          (unsigned long long)count, (long long)span, p->report.why);
		log_info("peer %s: reachable again after %d failed attempts", p->id, p->failures);
		p->report.last_ms = 0; /* a new outage is told of at once */
	}
	p->failures = 0;
	p->open_until_ms = 0;
	p->up = true;
	p->last_success = tb_now();
}

bool
tb_peer_ready(const struct tb_peer *p, int64_t now_ms)
{
	return p->open_until_ms <= now_ms;
}

/* True when a session of p is still in its handshake (a probe). */
static bool
probing(const struct tb_node *n, const struct tb_peer *p)
{
	for (int i = 0; i < (int)n->cfg.peer_sessions; i++)
		if (p->sessions[i] != NULL) {
			coap_session_state_t st = coap_session_get_state(p->sessions[i]);
			if (st == COAP_SESSION_STATE_HANDSHAKE ||
			    st == COAP_SESSION_STATE_CONNECTING || st == COAP_SESSION_STATE_CSM)
				return true;
		}
	return false;
}

bool
tb_transport_waiting(struct tb_node *n, const char *id)
{
	struct tb_peer *p = find_peer(n, id, false);

	return p != NULL && p->failures > 0 && (!tb_peer_ready(p, tb_now_ms()) || probing(n, p));
}

/* ---- refusals of peers' handshakes, and clocks: rate-limited lines ---- */

#define REFUSAL_KEYS 64 /* sources remembered; the least recent is reused */

struct tb_refusals {
	struct {
		char key[48 + 160]; /* address, reason */
		char host[48];
		struct tb_report r;
	} v[REFUSAL_KEYS];
	int64_t flush_ms;           /* when held-back counts were last looked at */
	struct tb_report own_clock; /* this node's clock against its peers' */
};

static struct tb_refusals *
refusals(struct tb_node *n)
{
	if (n->refusals == NULL)
		n->refusals = calloc(1, sizeof(*n->refusals));
	return n->refusals; /* NULL out of memory: lines are then not limited */
}

/* A server session's handshake refused for why: one line per source
 * (address and reason) and minute, with the count held back. */
static void
refused(struct tb_node *n, coap_session_t *s, const char *why)
{
	const coap_address_t *a = coap_session_get_addr_remote(s);
	char host[NI_MAXHOST] = "?", key[sizeof(((struct tb_refusals *)0)->v[0].key)];
	struct tb_refusals *t = refusals(n);
	int64_t now_ms = tb_now_ms(), span;
	uint64_t count;
	size_t k, lru = 0;

	if (a != NULL &&
	    getnameinfo(&a->addr.sa, a->size, host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(host, sizeof(host), "?");
	if (t == NULL) {
		log_warnx("handshake refused from %s: %s", host, why);
		return;
	}
	snprintf(key, sizeof(key), "%s %s", host, why);
	for (k = 0; k < REFUSAL_KEYS; k++) {
		if (strcmp(t->v[k].key, key) == 0)
			break;
		if (t->v[k].r.last_ms < t->v[lru].r.last_ms)
			lru = k;
	}
	if (k == REFUSAL_KEYS) {
		k = lru;
		memset(&t->v[k], 0, sizeof(t->v[k]));
		snprintf(t->v[k].key, sizeof(t->v[k].key), "%s", key);
		snprintf(t->v[k].host, sizeof(t->v[k].host), "%s", host);
	}
	if (!tb_report_event(&t->v[k].r, now_ms, TB_FLOOD_LOG_WINDOW_MS, &count, &span))
		return;
	if (span == 0)
		log_warnx("handshake refused from %s: %s", host, why);
	else
		log_warnx("handshake refused from %s: %s (%llu times in the last %lld s)", host,
		          why, (unsigned long long)count, (long long)span);
}

/* The held-back counts whose window ended: one line each. */
static void
flush_refusals(struct tb_node *n, int64_t now_ms)
{
	struct tb_refusals *t = n->refusals;
	uint64_t count;
	int64_t span;

	if (t == NULL || now_ms - t->flush_ms < 1000)
		return;
	t->flush_ms = now_ms;
	for (size_t k = 0; k < REFUSAL_KEYS; k++)
		if (tb_report_flush(&t->v[k].r, now_ms, TB_FLOOD_LOG_WINDOW_MS, &count, &span))
			log_warnx("handshake refused from %s: %s (%llu times in the last %lld s)",
			          t->v[k].host, t->v[k].key + strlen(t->v[k].host) + 1,
			          (unsigned long long)count, (long long)span);
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		if (tb_report_flush(&p->report, now_ms, report_window(n), &count, &span))
			peer_line(n, p, count, span, now_ms);
}

/* A client session's peer certificate refused here: a failed attempt. */
static void
client_refused(struct tb_node *n, coap_session_t *s, const char *why)
{
	int slot;
	struct tb_peer *p = peer_of_session(n, s, &slot);
	char detail[200];

	snprintf(detail, sizeof(detail), "its certificate was refused here: %s", why);
	if (p != NULL)
		tb_peer_failed(n, p, p->slot_epoch[slot], TB_PF_REFUSED, detail);
	else
		log_warnx("handshake refused: %s", detail);
}

void
tb_peer_clock(struct tb_node *n, struct tb_peer *p, int64_t offset, uint64_t skewed)
{
	struct tb_refusals *t = refusals(n);
	int64_t now_ms = tb_now_ms(), span, half = n->cfg.clock_skew / 2;
	uint64_t count;
	size_t known = 0, ahead = 0, behind = 0;

	p->has_offset = true;
	p->clock_offset = offset;
	p->skewed_receipts += skewed;
	if (skewed > 0) {
		p->skew_report.pending += skewed - 1;
		if (tb_report_event(&p->skew_report, now_ms, report_window(n), &count, &span))
			log_warnx(
			    "peer %s: clock skew: its time is %lld, ours %lld: %lld s %s ours "
			    "(allowed %lld s); %llu receipt(s)%s accepted despite their time "
			    "(signed by the peer for our messages: not resent)",
			    p->id, (long long)(tb_now() + offset), (long long)tb_now(),
			    (long long)(offset < 0 ? -offset : offset),
			    offset < 0 ? "behind" : "ahead of", (long long)n->cfg.clock_skew,
			    (unsigned long long)count, span > 0 ? " since the last line" : "");
	}
	/* this node's own clock: off when most peers agree it is */
	for (struct tb_peer *q = n->peers; q != NULL; q = q->next) {
		if (!q->has_offset)
			continue;
		known++;
		ahead += q->clock_offset < -half; /* we are ahead of q */
		behind += q->clock_offset > half;
	}
	if (t != NULL && known >= 2 && (2 * ahead > known || 2 * behind > known) &&
	    tb_report_event(&t->own_clock, now_ms, report_window(n) * 10, &count, &span))
		log_warnx("this node's clock differs from %zu of %zu peers' by more than %lld s "
		          "(half the allowed clock_skew): it is %s theirs; check its time "
		          "synchronisation",
		          2 * ahead > known ? ahead : behind, known, (long long)half,
		          2 * ahead > known ? "ahead of" : "behind");
}
