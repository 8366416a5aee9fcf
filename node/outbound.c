/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.c - sending: seal, journal, deliver in batches per next hop,
 * verify receipts, retry with exponential backoff and jitter until the
 * message expires, with a circuit breaker per peer.
 */
#include "flows.h"
#include "outbound.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../federation/tb_reg.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_deflate.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "journal.h"
#include "log.h"

/* At most one block-wise exchange in flight per peer session: libcoap
 * 4.3.1 reassembles Block1 bodies per session and resource, so two
 * concurrent block-wise POSTs to /fed/msg would corrupt each other ("Data
 * body updated during receipt").  On a short link batching carries the
 * volume, one exchange a session; on a long one several one-block
 * exchanges are in flight on each session (link.h, slot_room). */
#define RELAY_WAIT_S 60 /* a relayed message is resent if no receipt returns */
#define TB_LEASE_RENEW_S 3 /* renew_leases: well within TB_JOURNAL_LEASE_S */
/* The per-peer backoff and circuit breaker are transport.c's (struct
 * tb_peer, tb_peer_failed): every failure path below reports there. */

/* The stage's state, the loop's only (tb_outbound_init). */
struct tb_outbound {
	struct event *deliver_timer;
	struct tb_exchange *exchanges;       /* exchanges awaiting answers */
	struct tb_fresh *fresh;              /* journalled messages to send from memory */
	size_t fresh_head, nfresh, capfresh; /* the queue is [fresh_head, nfresh) */
	/* submit time of recent outbound messages, by id hash (latency) */
	char (*lat_id)[33];
	int64_t *lat_t0;
	tb_settler_fn settler; /* where answers are settled */
	void *settler_ctx;
	/* told of each delivered message, or NULL */
	void (*delivered)(void *ctx, const char *type, const char *corr);
	void *delivered_ctx;
};

static void deliver_cb(evutil_socket_t fd, short what, void *arg);
static bool response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent,
                        const coap_pdu_t *recv);
static void nack_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent, coap_nack_reason_t r);
static void finish_exchange(struct tb_node *n, struct tb_exchange *x);
static void exchange_failed(struct tb_node *n, struct tb_exchange *x, enum tb_peer_fail why,
                            const char *detail);
static void free_exchange(struct tb_exchange *x);

/* A new registry may route messages waiting for a route: a round now. */
static void
registry_applied(void *ctx, const struct tb_reg *reg)
{
	(void)reg;
	tb_outbound_schedule(ctx, 0);
}

/* The node exchanges messages again, or is revoked (its queue fails):
 * a round now. */
static void
state_changed(void *ctx, enum tb_node_state old, enum tb_node_state now)
{
	(void)old;
	if (now == TB_NODE_OK || now == TB_NODE_REVOKED)
		tb_outbound_schedule(ctx, 0);
}

int
tb_outbound_init(struct tb_node *n, struct tb_diag *d)
{
	struct tb_transport_client c = {response_cb, nack_cb, NULL, n};
	struct tb_outbound *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "outbound");
	n->out = o;
	o->lat_id = calloc(TB_LAT_SLOTS, sizeof(*o->lat_id));
	o->lat_t0 = calloc(TB_LAT_SLOTS, sizeof(*o->lat_t0));
	o->deliver_timer = evtimer_new(n->base, deliver_cb, n);
	if (o->lat_id == NULL || o->lat_t0 == NULL || o->deliver_timer == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "outbound");
	tb_transport_add_client(n, &c);
	tb_node_on_registry(n, registry_applied, n);
	tb_node_on_state(n, state_changed, n);
	return TB_OK;
}

void
tb_outbound_free(struct tb_node *n)
{
	struct tb_outbound *o = n->out;

	if (o == NULL)
		return;
	if (o->deliver_timer)
		event_free(o->deliver_timer);
	while (o->exchanges != NULL) {
		struct tb_exchange *x = o->exchanges;
		o->exchanges = x->next;
		free_exchange(x);
	}
	tb_fresh_free(o->fresh + o->fresh_head, o->nfresh - o->fresh_head);
	free(o->fresh);
	free(o->lat_id);
	free(o->lat_t0);
	free(o);
	n->out = NULL;
}
void
tb_outbound_schedule(struct tb_node *n, int64_t delay_ms)
{
	struct timeval tv;

	if (n->out == NULL || n->out->deliver_timer == NULL)
		return;
	if (delay_ms < 0)
		delay_ms = 0;
	tv.tv_sec = (time_t)(delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	/* an earlier deadline wins over a pending later one */
	if (evtimer_pending(n->out->deliver_timer, NULL)) {
		struct timeval when, now;
		evtimer_pending(n->out->deliver_timer, &when);
		event_base_gettimeofday_cached(n->base, &now);
		if (evutil_timercmp(&when, &now, <))
			return;
		struct timeval d;
		evutil_timersub(&when, &now, &d);
		if (evutil_timercmp(&d, &tv, <))
			return;
	}
	evtimer_add(n->out->deliver_timer, &tv);
}

/* Abandons j's transaction.  The handle is outside it afterwards whatever
 * SQLite answers, so a failure is only logged. */
static void
rollback(struct tb_journal *j)
{
	if (tb_journal_rollback(j) != TB_OK)
		log_warnx("journal rollback: %s", tb_journal_diag(j)->detail);
}

/* Counts a failed attempt of queued id and schedules the next at `at`
 * (tb_journal_outbound_retry).  When the journal cannot record it, the
 * message keeps the attempt time it had and is due again then: logged.
 * True when recorded. */
static bool
retry(struct tb_journal *j, const char *id, int64_t at, const char *why)
{
	int rc = tb_journal_outbound_retry(j, id, at, why);

	if (rc != TB_OK && rc != TB_E_JOURNAL_STATE && rc != TB_E_NOTFOUND)
		log_warnx("retry of %s not recorded: %s", id, tb_journal_diag(j)->detail);
	return rc == TB_OK;
}

/* A submission the journal failed (code rc) into d: no room on its disk
 * is told as such (503 journal.full), a database out of reach too (503
 * journal.unavailable), anything else is io.  Returns rc, or the full or
 * unavailable code. */
static int
journal_refusal(struct tb_journal *j, int rc, struct tb_diag *d)
{
	int code = tb_journal_diag(j)->code;

	if (code == TB_E_JOURNAL_FULL || code == TB_E_JOURNAL_DOWN)
		rc = code;
	(void)tb_diag_set(d, rc == TB_E_JOURNAL_FULL || rc == TB_E_JOURNAL_DOWN ? rc : TB_E_IO,
	                  TB_DIAG_NOPOS, "journal: %s",
	                  tb_journal_diag(j)->detail[0] ? tb_journal_diag(j)->detail
	                                                : tb_err_str(rc));
	return rc;
}

/* How long a message held in memory (the fast path) stays claimed in
 * journal j: on a shared journal the lease, renewed while it is sent
 * (renew_leases), so that another process takes over soon after this
 * one dies; else past the latest it may be sent and answered. */
static int64_t
fresh_hold_s(const struct tb_node *n, const struct tb_journal *j)
{
	return tb_journal_shared(j) ? TB_JOURNAL_LEASE_S : TB_FRESH_HOLD_S(n);
}

/* Makes the envelopes of fin[0..count) from this node (made counts them;
 * *bad is the one that failed), each with a recipient (routed: the route
 * table's, when the request named a service and region) and a next hop. */
static int
make_envelopes(struct tb_node *n, const struct tb_env_fields *fin, size_t count,
               struct tb_env **envs, char (*routed)[16], size_t *made, size_t *bad, int64_t now,
               int64_t now_wall_ms, struct tb_diag *d)
{
	int rc;

	for (size_t i = 0; i < count; i++, (*made)++) {
		struct tb_env_fields f = fin[i];
		char hop[16];
		coap_address_t addr;
		*bad = i;
		f.from = n->cfg.member_id;
		f.created = now;
		f.id_ms = now_wall_ms;
		/* no recipient: the route table names the member serving the
		 * service for the region (docs/PROTOCOL.md 8.1) */
		if (f.to == NULL && f.route_service != NULL && f.route_region != NULL) {
			if ((rc = tb_node_route(n, f.route_service, f.route_region, routed[i],
			                        d)) != TB_OK)
				return rc;
			f.to = routed[i];
			if (f.service == NULL)
				f.service = f.route_service;
			f.route_service = f.route_region = NULL;
		}
		if (f.to == NULL)
			return tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
			                   "to (or service and region)");
		if ((rc = tb_node_next_hop(n, f.to, hop, sizeof(hop), &addr, d)) != TB_OK)
			return rc;
		if ((envs[i] = tb_env_create(&f, d)) == NULL)
			return d->code;
	}
	return TB_OK;
}

/* Hands the journalled messages' wire forms (moved out of wire) to fresh,
 * for the loop to send from memory. */
static void
fill_fresh(struct tb_fresh *fresh, size_t count, char (*ids)[33], struct tb_env **envs,
           char (*digests)[65], struct tb_buf *wire)
{
	for (size_t i = 0; fresh != NULL && i < count; i++) {
		struct tb_fresh *x = &fresh[i];
		snprintf(x->id, sizeof(x->id), "%s", ids[i]);
		snprintf(x->to, sizeof(x->to), "%s", tb_env_to(envs[i]));
		snprintf(x->type, sizeof(x->type), "%s", tb_env_type(envs[i]));
		memcpy(x->digest, digests[i], sizeof(x->digest));
		x->expires = tb_env_expires(envs[i]);
		x->env = wire[i]; /* moved */
		tb_buf_init(&wire[i]);
	}
}

/* The bulk's transaction, with the case states its flows read in one
 * round trip (tb_flows_prefetch); rolled back when that fails. */
static int
begin_bulk(struct tb_node *n, struct tb_journal *j, struct tb_env **envs, size_t count)
{
	int rc;

	if ((rc = tb_journal_begin(j)) != TB_OK)
		return rc;
	if ((rc = tb_flows_prefetch(j, n->cfg.member_id, (const struct tb_env *const *)envs, count,
	                            true)) != TB_OK)
		rollback(j);
	return rc;
}

int
tb_outbound_store(struct tb_node *n, struct tb_journal *j, struct tb_key *key,
                  const struct tb_env_fields *fin, size_t count, char (*ids)[33], size_t *bad,
                  struct tb_fresh *fresh, struct tb_diag *d)
{
	struct tb_env **envs = calloc(count ? count : 1, sizeof(*envs));
	char(*routed)[16] = calloc(count ? count : 1, sizeof(*routed));
	struct tb_buf *wire = NULL;
	char(*digests)[65] = NULL;
	int rc = TB_OK;
	size_t made = 0, nwire = 0;
	/* one clock reading: the id's time and created agree */
	int64_t now_wall_ms = tb_wall_ms(), now = now_wall_ms / 1000;

	*bad = 0;
	if (envs == NULL || routed == NULL) {
		free(envs);
		free(routed);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	if ((rc = make_envelopes(n, fin, count, envs, routed, &made, bad, now, now_wall_ms, d)) !=
	    TB_OK)
		goto out;
	/* one signature for the whole submission: a Merkle batch */
	if ((rc = tb_env_seal_batch(envs, count, key, d)) != TB_OK)
		goto out;
	/* the wire form and digest of each, before the write lock is taken:
	 * the transaction holds it only for the journal's own work */
	if ((wire = calloc(count, sizeof(*wire))) == NULL ||
	    (digests = calloc(count, sizeof(*digests))) == NULL) {
		rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		uint8_t dg[32];
		tb_buf_init(&wire[i]);
		nwire = i + 1;
		if ((rc = tb_env_serialize(envs[i], &wire[i])) != TB_OK) {
			*bad = i;
			goto out;
		}
		if ((rc = tb_env_digest(envs[i], dg)) != TB_OK) {
			*bad = i;
			goto out;
		}
		tb_hex_encode(dg, 32, digests[i]);
	}
	if ((rc = begin_bulk(n, j, envs, count)) != TB_OK)
		goto jfail;
	for (size_t i = 0; i < count; i++) {
		struct tb_journal_msg m;
		memset(&m, 0, sizeof(m));
		m.id = tb_env_id(envs[i]);
		m.from = tb_env_from(envs[i]);
		m.to = tb_env_to(envs[i]);
		m.type = tb_env_type(envs[i]);
		m.service = tb_env_service(envs[i]);
		m.corr = tb_env_corr(envs[i]);
		m.digest = digests[i];
		m.created = tb_env_created(envs[i]);
		m.expires = tb_env_expires(envs[i]);
		m.envelope = wire[i].data;
		m.envelope_len = wire[i].len;
		*bad = i;
		if ((rc = tb_flows_outbound(n, j, envs[i], d)) != TB_OK) {
			rollback(j);
			goto out;
		}
		if ((rc = tb_journal_outbound_put_new(
		         j, &m, fresh ? now + fresh_hold_s(n, j) : now)) != TB_OK ||
		    (rc = tb_journal_audit_append(j, 'o', m.id, digests[i], m.to, now, "queued")) !=
		        TB_OK) {
			rollback(j);
			goto jfail;
		}
		snprintf(ids[i], 33, "%s", m.id);
	}
	if ((rc = tb_journal_commit(j)) != TB_OK)
		goto jfail;
	if (fresh != NULL)
		fill_fresh(fresh, count, ids, envs, digests, wire);
	goto out;
jfail:
	*bad = TB_OUTBOUND_WHOLE; /* the journal failed, not one of the messages */
	rc = journal_refusal(j, rc, d);
out:
	for (size_t i = 0; i < made && i < count; i++)
		tb_env_free(envs[i]);
	free(envs);
	free(routed);
	for (size_t i = 0; i < nwire; i++)
		tb_buf_free(&wire[i]);
	free(wire);
	free(digests);
	return rc;
}

int
tb_outbound_submit(struct tb_node *n, const struct tb_env_fields *f, char id[33], struct tb_diag *d)
{
	int64_t now_ms = tb_now_ms();
	char ids[1][33];
	size_t bad;
	struct tb_fresh fr;
	int rc;

	memset(&fr, 0, sizeof(fr));
	tb_buf_init(&fr.env);
	if ((rc = tb_outbound_store(n, n->journal, n->sign_key, f, 1, ids, &bad, &fr, d)) ==
	    TB_OK) {
		memcpy(id, ids[0], 33);
		tb_log_msg(TB_MSG_ACCEPTED, id, fr.to, f->type, "queued");
		tb_latency_start(n, id, now_ms);
		tb_outbound_hand(n, &fr, 1);
		tb_outbound_schedule(n, 0);
	}
	return rc;
}

/* ---- submit-to-receipt latency ---- */

static size_t
lat_slot(const char *id)
{
	uint8_t b[4];
	if (!tb_hex_decode(id, 8, b, 4))
		return 0; /* not an id of ours (they are checked hex): any slot will do */
	return ((size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3]) % TB_LAT_SLOTS;
}

void
tb_latency_start(struct tb_node *n, const char *id, int64_t now_ms)
{
	size_t i = lat_slot(id);
	memcpy(n->out->lat_id[i], id, 32);
	n->out->lat_t0[i] = now_ms;
}

/* Buckets in milliseconds (upper bounds) of the delivery histogram. */
const double tb_lat_bounds[TB_LAT_BUCKETS] = {
    0.5, 1,  2,  3,   4,   5,   6,   8,   10,   12,   15,   20,    25,    30,
    40,  50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10000, 30000, 60000};

void
tb_latency_done(struct tb_node *n, const char *id)
{
	size_t i = lat_slot(id);
	double ms;

	if (memcmp(n->out->lat_id[i], id, 32) != 0)
		return; /* submitted before a restart, or its slot was reused */
	ms = (double)(tb_now_ms() - n->out->lat_t0[i]);
	n->out->lat_id[i][0] = '\0';
	n->m.lat_sum_ms += ms;
	n->m.lat_count++;
	for (int b = 0; b < TB_LAT_BUCKETS; b++)
		if (ms <= tb_lat_bounds[b])
			n->m.lat_buckets[b]++;
}

/* ---- delivery ---- */

struct due {
	struct tb_fresh m; /* id, recipient, digest, expiry, wire form */
	char hop[16];
	bool relayed;   /* from another member: its receipt goes back (relay_back) */
	bool fresh;     /* from the memory queue (m.handed_ms set), not the journal's */
	bool done;      /* sent, or settled in the journal: not to go back to memory */
	int64_t wait_s; /* its peer waits out a backoff: next attempt then */
	int64_t attempts;
};

struct due_list {
	struct tb_node *n;
	struct due *v;
	size_t len, cap;
};

/* A zeroed entry at the end of l, not yet counted; NULL out of memory. */
static struct due *
due_slot(struct due_list *l)
{
	if (l->len == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct due *v = realloc(l->v, nc * sizeof(*v));
		if (v == NULL)
			return NULL;
		l->v = v;
		l->cap = nc;
	}
	memset(&l->v[l->len], 0, sizeof(l->v[l->len]));
	return &l->v[l->len];
}

static int
collect(void *ctx, const struct tb_journal_out *o)
{
	struct due_list *l = ctx;
	struct due *x = due_slot(l);

	if (x == NULL)
		return TB_E_NOMEM;
	snprintf(x->m.id, sizeof(x->m.id), "%s", o->msg.id);
	snprintf(x->m.to, sizeof(x->m.to), "%s", o->msg.to);
	snprintf(x->m.type, sizeof(x->m.type), "%s", o->msg.type);
	snprintf(x->m.digest, sizeof(x->m.digest), "%s", o->msg.digest);
	x->relayed =
	    strcmp(o->msg.from, l->n->cfg.member_id) != 0 && strcmp(o->msg.type, "receipt") != 0;
	x->m.expires = o->msg.expires;
	x->attempts = o->attempts;
	tb_buf_init(&x->m.env);
	if (tb_buf_add(&x->m.env, o->msg.envelope, o->msg.envelope_len) != TB_OK) {
		tb_buf_free(&x->m.env);
		return TB_E_NOMEM;
	}
	l->len++;
	return TB_OK;
}

static struct tb_peer *
peer_of(struct tb_node *n, const char *id)
{
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

/* Exchanges slot of p can take now: up to the link's window (link.h),
 * of which at most one block-wise (large_slot); one while its session is
 * not up (a handshake stalled by loss would hold them all, where one is
 * soon hedged onto a session that is up).  A block-wise exchange does
 * not close its session to one-block ones: on a long link the first
 * exchanges (the starting batch, two blocks) would stall the few
 * sessions up for their round trips. */
static int
slot_room(const struct tb_peer *p, int slot)
{
	int win = p->sessions[slot] != NULL &&
	                  coap_session_get_state(p->sessions[slot]) == COAP_SESSION_STATE_ESTABLISHED
	              ? p->window
	              : 1;
	int room = win - p->inflight[slot];

	return room < 0 ? 0 : room;
}

/* Each peer's sessions up, and from them its window (link.h), for the
 * round. */
static void
set_windows(struct tb_node *n)
{
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next) {
		p->up_sessions = 0;
		for (int slot = 0; slot < (int)n->cfg.peer_sessions; slot++)
			p->up_sessions += p->sessions[slot] != NULL &&
			                  coap_session_get_state(p->sessions[slot]) ==
			                      COAP_SESSION_STATE_ESTABLISHED;
		p->window = tb_link_window(&p->link, p->up_sessions);
	}
}

/* The session slots of p in the order the round's exchanges take them,
 * a slot once for each exchange it can take: first the sessions that
 * are up, breadth first (each one exchange, then on a pipelined link a
 * second each, and so on), then those to be opened, one each (a new
 * session is a handshake, which loss can stall for seconds: what a
 * session that is up can carry goes there).  Returns their number. */
static int
slot_order(const struct tb_node *n, const struct tb_peer *p, int *order)
{
	int nord = 0, slots = (int)n->cfg.peer_sessions;

	for (int lv = 0; lv < p->window; lv++)
		for (int slot = 0; slot < slots; slot++)
			if (p->sessions[slot] != NULL &&
			    coap_session_get_state(p->sessions[slot]) == COAP_SESSION_STATE_ESTABLISHED &&
			    p->inflight[slot] <= lv && lv < p->inflight[slot] + slot_room(p, slot))
				order[nord++] = slot;
	/* a pipelined link with TB_LINK_PIPE_UP sessions up has room enough
	 * in them (link.h): no more handshakes */
	for (int slot = 0;
	     slot < slots && (p->up_sessions < TB_LINK_PIPE_UP || !tb_link_pipelined(&p->link));
	     slot++)
		if ((p->sessions[slot] == NULL ||
		     coap_session_get_state(p->sessions[slot]) != COAP_SESSION_STATE_ESTABLISHED) &&
		    slot_room(p, slot) > 0)
			order[nord++] = slot;
	return nord;
}

/* The slot for a block-wise exchange planned on slot: that one unless
 * it carries a block-wise exchange already (libcoap reassembles a
 * session's Block1 transfers per resource, so two at once would mix),
 * else another with room, an idle one first; -1 when none has. */
static int
large_slot(const struct tb_node *n, const struct tb_peer *p, int slot)
{
	int best = -1;

	if (!p->large[slot] && slot_room(p, slot) > 0)
		return slot;
	for (int i = 0; i < (int)n->cfg.peer_sessions; i++)
		if (!p->large[i] && slot_room(p, i) > 0 &&
		    (best < 0 || p->inflight[i] < p->inflight[best]))
			best = i;
	return best;
}

/* A message's next attempt, in whole seconds from now, after `failures`
 * consecutive failures of its peer (tb_backoff_ms). */
static int64_t
backoff_s(struct tb_node *n, int64_t failures)
{
	int f = failures < 1 ? 1 : failures > 64 ? 64 : (int)failures;

	return (tb_backoff_ms(&n->cfg, f) + 999) / 1000;
}

/* Seconds until peer p's next attempt may start (at least 1). */
static int64_t
peer_wait_s(const struct tb_peer *p)
{
	int64_t ms = p != NULL ? p->open_until_ms - tb_now_ms() : 0;

	return ms > 0 ? (ms + 999) / 1000 : 1;
}

static void
free_exchange(struct tb_exchange *x)
{
	free(x->ids);
	free(x->digests);
	free(x->tos);
	free(x->types);
	free(x->relayed);
	free(x);
}

static void
release_body(coap_session_t *s, void *p)
{
	(void)s;
	tb_buf_free(p);
	free(p);
}

/* Sends up to count due messages to hop in one exchange. */
/* The exchange's record of its messages, and its body (the envelopes,
 * as an array when more than one): true when the body is deflated. */
static bool
fill_exchange(struct tb_node *n, struct tb_exchange *x, struct due **v, size_t count,
              struct tb_buf *body)
{
	struct tb_diag d;

	x->ids = calloc(count, sizeof(*x->ids));
	x->digests = calloc(count, sizeof(*x->digests));
	x->tos = calloc(count, sizeof(*x->tos));
	x->types = calloc(count, sizeof(*x->types));
	x->relayed = calloc(count, sizeof(*x->relayed));
	tb_buf_init(body);
	if (count > 1)
		tb_buf_addc(body, '[');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			tb_buf_addc(body, ',');
		tb_buf_add(body, v[i]->m.env.data, v[i]->m.env.len);
		if (x->ids != NULL && x->digests != NULL && x->tos != NULL && x->relayed != NULL) {
			memcpy(x->ids[i], v[i]->m.id, 33);
			memcpy(x->digests[i], v[i]->m.digest, 65);
			memcpy(x->tos[i], v[i]->m.to, 16);
			if (x->types != NULL)
				memcpy(x->types[i], v[i]->m.type, sizeof(*x->types));
			x->relayed[i] = v[i]->relayed;
		}
	}
	if (count > 1)
		tb_buf_addc(body, ']');
	if (n->cfg.deflate && tb_buf_error(body) == TB_OK) {
		/* about a third of the bytes, so of the blocks and round trips */
		struct tb_buf z;
		tb_buf_init(&z);
		if (tb_deflate(body->data, body->len, &z, &d) == TB_OK && z.len < body->len) {
			tb_buf_free(body);
			*body = z;
			return true;
		} else {
			tb_buf_free(&z);
		}
	}
	return false;
}

/* The options of exchange x's request pdu (its token set): the path, the
 * content-format, `c` for a batch, `t` on a pipelined link, Accept. */
static void
add_options(coap_pdu_t *pdu, const struct tb_exchange *x, bool pipelined, bool deflated)
{
	uint8_t fmt[4];

	coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"fed");
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"msg");
	coap_add_option(
	    pdu, COAP_OPTION_CONTENT_FORMAT,
	    coap_encode_var_safe(fmt, sizeof(fmt),
	                         deflated ? TB_CF_JSON_DEFLATE : COAP_MEDIATYPE_APPLICATION_JSON),
	    fmt);
	if (x->count > 1) /* receipts without their proofs: we rebuild them (9.3) */
		coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(TB_COMPACT_QUERY),
		                (const uint8_t *)TB_COMPACT_QUERY);
	if (pipelined) {
		/* several exchanges outstanding on the session: a query of
		 * their own keeps libcoap's Block2 transfers of their answers
		 * apart (PROTOCOL.md 9.6) */
		char q[8];
		unsigned t = x->token.length > 0 ? x->tokbuf[x->token.length - 1] : 0;
		t |= x->token.length > 1 ? (unsigned)x->tokbuf[x->token.length - 2] << 8 : 0;
		snprintf(q, sizeof(q), "t=%04x", t);
		coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(q), (const uint8_t *)q);
	}
	if (deflated) /* and the receipts come back deflated too */
		coap_add_option(pdu, COAP_OPTION_ACCEPT,
		                coap_encode_var_safe(fmt, sizeof(fmt), TB_CF_JSON_DEFLATE), fmt);
}

/* Sends v[0..count) to hop on session slot slot as one exchange: 0 when
 * sent, -2 when it would go block-wise and no session of hop can take a
 * block-wise exchange now (large_slot), -1 on other failures. */
static int
send_batch(struct tb_node *n, const char *hop, int slot, struct due **v, size_t count)
{
	int rc = -1;
	struct tb_diag d;
	coap_session_t *s;
	coap_pdu_t *pdu = NULL;
	struct tb_buf *body;
	struct tb_exchange *x;
	struct tb_peer *p = peer_of(n, hop);
	bool owned = false, deflated = false;

	if ((x = calloc(1, sizeof(*x))) == NULL || (body = malloc(sizeof(*body))) == NULL) {
		free(x);
		return -1;
	}
	deflated = fill_exchange(n, x, v, count, body);
	x->count = count;
	snprintf(x->hop, sizeof(x->hop), "%s", hop);
	/* on a pipelined link a block-wise request needs a session without
	 * another one (large_slot) */
	x->large = p != NULL && tb_link_pipelined(&p->link) && body->len > TB_LINK_BLOCK;
	if (x->large && (slot = large_slot(n, p, slot)) < 0) {
		log_debug("exchange with %s: %zu bytes wait for a session free of block-wise "
		          "transfers", hop, body->len);
		rc = -2;
		goto fail;
	}
	if ((s = tb_transport_session(n, hop, slot, &d)) == NULL) {
		log_warnx("no session to %s: %s", hop, d.detail);
		goto fail;
	}
	pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, s);
	/* a body not built whole: sent again after the answer timeout */
	if (pdu == NULL || tb_buf_error(body) != TB_OK || x->ids == NULL || x->digests == NULL ||
	    x->tos == NULL || x->relayed == NULL)
		goto fail;
	coap_session_new_token(s, &x->token.length, x->tokbuf);
	x->token.s = x->tokbuf;
	coap_add_token(pdu, x->token.length, x->tokbuf);
	add_options(pdu, x, p != NULL && tb_link_pipelined(&p->link), deflated);
	/* libcoap sends the blocks from body for as long as the transfer
	 * lives (possibly past our giving up on the answer): it owns body
	 * from here and frees it with release_body, also on failure */
	owned = true;
	x->bytes = body->len;
	if (!coap_add_data_large_request(s, pdu, body->len, body->data, release_body, body))
		goto fail;
	x->sent_ms = tb_now_ms();
	x->renew_at = tb_now() + TB_LEASE_RENEW_S;
	x->session = s;
	x->slot = slot;
	x->handshake = coap_session_get_state(s) != COAP_SESSION_STATE_ESTABLISHED;
	/* the retransmission timers follow the peer's round trips (link.h) */
	if (peer_of(n, hop) != NULL)
		tb_transport_tune(s, &peer_of(n, hop)->link);
	if (coap_send(s, pdu) == COAP_INVALID_MID) {
		pdu = NULL;
		goto fail;
	}
	x->next = n->out->exchanges;
	n->out->exchanges = x;
	if (p != NULL) {
		p->inflight[slot]++;
		p->large[slot] = p->large[slot] || x->large;
		tb_link_sent(&p->link, count, x->bytes);
		x->epoch = p->epoch;
		x->failures = p->failures;
		x->ep = p->slot_ep[slot];
	}
	for (size_t i = 0; i < count; i++)
		tb_log_msg(TB_MSG_SENT, v[i]->m.id, v[i]->m.to, v[i]->m.type, "via %s", hop);
	return 0;
fail:
	if (pdu != NULL)
		coap_delete_pdu(pdu);
	if (!owned) {
		tb_buf_free(body);
		free(body);
	}
	free_exchange(x);
	return rc;
}

/* ---- the memory queue ---- */

/* Messages the memory queue may hold (about 2 KB each): past this a
 * submission's messages go to the journal's queue at once. */
#define FRESH_MAX 50000

void
tb_fresh_free(struct tb_fresh *v, size_t count)
{
	for (size_t i = 0; v != NULL && i < count; i++)
		tb_buf_free(&v[i].env);
}

/* Hands messages back to the journal's queue, due now, and frees them;
 * in a transaction of the loop's journal without fsync (after a crash
 * they are due anyway, see tb_journal_outbound_release_held). */
static void
give_back(struct tb_node *n, struct tb_fresh *v, size_t count)
{
	if (count > 0 && tb_journal_begin_nosync(n->journal) == TB_OK) {
		for (size_t i = 0; i < count; i++)
			if (tb_journal_outbound_reschedule(n->journal, v[i].id, tb_now()) != TB_OK)
				log_warnx("%s not handed back now (due at its hold's end): %s",
				          v[i].id, tb_journal_diag(n->journal)->detail);
		if (tb_journal_commit(n->journal) != TB_OK)
			log_warnx("journal commit failed: %s", tb_journal_diag(n->journal)->detail);
	}
	/* even without the update they come back, at their hold's end */
	tb_fresh_free(v, count);
}

void
tb_outbound_hand(struct tb_node *n, struct tb_fresh *v, size_t count)
{
	int64_t now_ms = tb_now_ms();
	size_t room, take;

	/* the sent front is dropped once it is as long as what is left, so
	 * that each message is moved about once */
	if (n->out->fresh_head > 0 && n->out->fresh_head >= n->out->nfresh - n->out->fresh_head) {
		memmove(n->out->fresh, n->out->fresh + n->out->fresh_head,
		        (n->out->nfresh - n->out->fresh_head) * sizeof(*n->out->fresh));
		n->out->nfresh -= n->out->fresh_head;
		n->out->fresh_head = 0;
	}
	size_t live = n->out->nfresh - n->out->fresh_head;
	room = live < FRESH_MAX ? FRESH_MAX - live : 0;
	take = count < room ? count : room;
	if (n->out->nfresh + take > n->out->capfresh) {
		size_t nc = n->out->capfresh ? n->out->capfresh : 256;
		while (nc < n->out->nfresh + take)
			nc *= 2;
		struct tb_fresh *nv = realloc(n->out->fresh, nc * sizeof(*nv));
		if (nv == NULL) {
			take = 0;
		} else {
			n->out->fresh = nv;
			n->out->capfresh = nc;
		}
	}
	for (size_t i = 0; i < take; i++) {
		n->out->fresh[n->out->nfresh] = v[i];
		n->out->fresh[n->out->nfresh++].handed_ms = now_ms;
		tb_buf_init(&v[i].env);
	}
	give_back(n, v + take, count - take);
}

void
tb_outbound_forget(struct tb_node *n)
{
	if (n->out == NULL)
		return;
	tb_fresh_free(n->out->fresh + n->out->fresh_head, n->out->nfresh - n->out->fresh_head);
	free(n->out->fresh);
	n->out->fresh = NULL;
	n->out->nfresh = n->out->capfresh = n->out->fresh_head = 0;
}

/* Messages held in memory longer than TB_FRESH_SEND_S (a peer not taking
 * them) go back to the journal's queue, which paces them from then on. */
static void
age_fresh(struct tb_node *n, int64_t now_ms)
{
	size_t k = n->out->fresh_head;

	while (k < n->out->nfresh && now_ms - n->out->fresh[k].handed_ms > TB_FRESH_SEND_S * 1000)
		k++;
	if (k > n->out->fresh_head) {
		give_back(n, n->out->fresh + n->out->fresh_head, k - n->out->fresh_head);
		n->out->fresh_head = k;
	}
}

/* Moves up to max messages from the front of the memory queue into l. */
static size_t
take_fresh(struct tb_node *n, struct due_list *l, size_t max)
{
	size_t k = 0;

	for (; k < max && n->out->fresh_head < n->out->nfresh; k++) {
		struct due *x = due_slot(l);
		if (x == NULL)
			break;
		x->m = n->out->fresh[n->out->fresh_head++]; /* the envelope moves */
		x->fresh = true;
		l->len++;
	}
	return k;
}

/* Puts the messages of l taken from memory and neither sent nor settled
 * back at the front of the memory queue, in their order (they were taken
 * from just before fresh_head, so the room is normally there). */
static void
put_back(struct tb_node *n, struct due_list *l)
{
	size_t m = 0;

	for (size_t i = 0; i < l->len; i++)
		m += l->v[i].fresh && !l->v[i].done;
	if (m == 0)
		return;
	if (n->out->fresh_head < m) {
		size_t len = n->out->nfresh - n->out->fresh_head, need = len + m;
		if (need > n->out->capfresh) {
			struct tb_fresh *nv = realloc(n->out->fresh, need * sizeof(*nv));
			if (nv == NULL) {
				/* they come back from the journal at their hold's end */
				for (size_t i = 0; i < l->len; i++)
					l->v[i].done = l->v[i].done || l->v[i].fresh;
				return;
			}
			n->out->fresh = nv;
			n->out->capfresh = need;
		}
		memmove(n->out->fresh + m, n->out->fresh + n->out->fresh_head,
		        len * sizeof(*n->out->fresh));
		n->out->fresh_head = m;
		n->out->nfresh = need;
	}
	n->out->fresh_head -= m;
	for (size_t i = 0, k = n->out->fresh_head; i < l->len; i++) {
		struct due *x = &l->v[i];
		if (!x->fresh || x->done)
			continue;
		n->out->fresh[k++] = x->m; /* the envelope moves back */
		tb_buf_init(&x->m.env);
	}
}

/* The loop's journal transaction of a delivery round, opened when the
 * round first has something to record (no fsync: see below). */
static bool
round_tx(struct tb_node *n, bool *open)
{
	if (!*open && tb_journal_begin_nosync(n->journal) == TB_OK)
		*open = true;
	return *open;
}

/* Hedging a straggler.  A block-wise exchange is stop-and-wait, and on a
 * lossy link one of many loses blocks again and again (each retransmission
 * waits twice as long as the one before: 1, 2, 4 s...) while the others
 * have long finished: the last messages of a backlog wait on it.  When an
 * exchange has taken TB_HEDGE_FACTOR times what its size should take at
 * the peer's round trips (at least TB_HEDGE_MIN_MS), and the peer has a
 * free session that is up, its messages are made due again at once: the
 * next round sends them on that session too.  The first answer delivers
 * them; the receiver stores a message once and answers the copy with the
 * original receipt, and the later answer is not counted again
 * (tb_journal_outbound_delivered's fresh).  Each exchange is hedged at
 * most once; idle sessions are what it spends. */
#define TB_HEDGE_MIN_MS 3000
#define TB_HEDGE_HS_MS 1000
#define TB_HEDGE_PIPE_MS 1200
#define TB_HEDGE_FACTOR 2
/* a pipelined exchange's answer is late (hedge_after) past SRTT +
 * 4 RTTVAR, within these many times SRTT; in the tail of a backlog it
 * is hedged then, at least TB_HEDGE_TAIL_MS after it was sent */
#define TB_HEDGE_LATE_MIN 1.5
#define TB_HEDGE_LATE_MAX 2.0
#define TB_HEDGE_TAIL_MS 100

/* Whether p has a session slot other than skip that is up and free. */
static bool
free_session(const struct tb_node *n, const struct tb_peer *p, int skip)
{
	for (int slot = 0; slot < (int)n->cfg.peer_sessions; slot++)
		if (slot != skip && p->sessions[slot] != NULL && slot_room(p, slot) > 0 &&
		    coap_session_get_state(p->sessions[slot]) == COAP_SESSION_STATE_ESTABLISHED)
			return true;
	return false;
}

/* When exchange x to p is a straggler (above), ms after it was sent; -1
 * without an estimate to tell.  One sent on a session whose handshake
 * still runs is one after TB_HEDGE_HS_MS, or four of the round trips
 * handshakes showed if longer (three for a handshake, one for the
 * exchange): loss and reordering stall a DTLS handshake for seconds
 * (PERFORMANCE.md, "Links"), and the sessions already up can carry its
 * messages. */
static int64_t
hedge_after(const struct tb_peer *p, const struct tb_exchange *x)
{
	/* so is one sent before any exchange was answered: no estimate of
	 * exchanges to go by yet, the handshakes' round trips stand for it */
	if ((x->session != NULL && p->sessions[x->slot] == x->session &&
	     coap_session_get_state(x->session) != COAP_SESSION_STATE_ESTABLISHED) ||
	    (p->link.srtt_ms <= 0 && p->link.hs_rtt_ms > 0)) {
		double hs = 4 * p->link.hs_rtt_ms;
		return hs > TB_HEDGE_HS_MS ? (int64_t)hs : TB_HEDGE_HS_MS;
	}
	if (p->link.srtt_ms <= 0)
		return -1;
	double rto = p->link.srtt_ms + 4 * p->link.rttvar_ms;
	/* RFC 6298's first estimates make RTTVAR half a round trip: an
	 * answer is late past 1.5 to 2 round trips on a pipelined link */
	double late = rto < TB_HEDGE_LATE_MIN * p->link.srtt_ms   ? TB_HEDGE_LATE_MIN * p->link.srtt_ms
	              : rto > TB_HEDGE_LATE_MAX * p->link.srtt_ms ? TB_HEDGE_LATE_MAX * p->link.srtt_ms
	                                                          : rto;
	/* nothing else waits for the peer (the tail of a backlog): its
	 * sessions are idle, and a straggler is hedged once its answer is
	 * late rather than after libcoap's own retransmission (1 s at the
	 * least): the last messages of a backlog do not wait out a lost
	 * datagram */
	if (!x->large && !p->backlog && tb_link_pipelined(&p->link))
		return late < TB_HEDGE_TAIL_MS ? TB_HEDGE_TAIL_MS : (int64_t)late;
	if (tb_link_pipelined(&p->link)) {
		/* its answer late past libcoap's first retransmission (1 s at
		 * the least, link.h): that was lost too, and the next comes 2 s
		 * later; a hedge any sooner would mostly copy what that first
		 * retransmission delivers anyway.  One datagram each way is one
		 * round trip late; a block-wise one (a body that deflated to
		 * more than a block) is its round trips late. */
		double rounds = x->large ? tb_link_rounds(x->bytes) + 1 : 1;
		double after = (double)tb_link_ack_timeout_ms(&p->link) + rounds * late;
		return after < TB_HEDGE_PIPE_MS ? TB_HEDGE_PIPE_MS : (int64_t)after;
	}
	/* its blocks at the retransmission timeout (RFC 6298): the round
	 * trips averaged over exchanges (round_ms) grow with the stragglers
	 * themselves, and with a pipeline's queueing */
	double blocks = 2 + (double)x->bytes / TB_LINK_BLOCK;
	int64_t after = (int64_t)(TB_HEDGE_FACTOR * blocks * rto);
	return after < TB_HEDGE_MIN_MS ? TB_HEDGE_MIN_MS : after;
}

/* Hedges the exchanges that straggle (above); the ms until some
 * exchange may need it (the next round then), -1 when none may. */
static int64_t
hedge(struct tb_node *n, int64_t now_ms)
{
	int64_t next = -1;

	for (struct tb_exchange *x = n->out->exchanges; x != NULL; x = x->next) {
		struct tb_peer *p = peer_of(n, x->hop);
		int64_t after, wait;
		if (x->hedged || p == NULL || p->failures > 0 || (after = hedge_after(p, x)) < 0)
			continue;
		/* not yet: look again when it is due; no free session: in a
		 * second */
		wait = now_ms - x->sent_ms < after ? after - (now_ms - x->sent_ms)
		       : !free_session(n, p, x->slot) ? 1000
		                                      : 0;
		if (wait > 0) {
			next = next < 0 || wait < next ? wait : next;
			continue;
		}
		x->hedged = true;
		n->m.out_hedged++;
		log_debug("exchange %d with %s: %zu message(s) unanswered after %lld ms; sent "
		          "again on another session",
		          x->slot, x->hop, x->count, (long long)(now_ms - x->sent_ms));
		for (size_t i = 0; i < x->count; i++) {
			int rc = tb_journal_outbound_reschedule(n->journal, x->ids[i], now_ms / 1000);
			if (rc != TB_OK && rc != TB_E_JOURNAL_STATE && rc != TB_E_NOTFOUND)
				log_warnx("hedge of %s not recorded: %s", x->ids[i],
				          tb_journal_diag(n->journal)->detail);
		}
	}
	return next;
}

/* On a shared journal the messages of a live exchange are held by a
 * lease of TB_JOURNAL_LEASE_S (mark_sent, fresh_hold_s), renewed every
 * TB_LEASE_RENEW_S while the exchange waits for its answer: if this
 * process dies, another process of the member sends them a lease after
 * the last renewal, not an answer timeout after.  True while some
 * exchange lives (a round should come again in a second). */
static bool
renew_leases(struct tb_node *n, int64_t now)
{
	bool live = false;

	if (!tb_journal_shared(n->journal))
		return false;
	for (struct tb_exchange *x = n->out->exchanges; x != NULL; x = x->next) {
		live = true;
		if (now < x->renew_at)
			continue;
		if (tb_journal_outbound_extend(n->journal, (const char(*)[33])x->ids, x->count,
		                               now + TB_JOURNAL_LEASE_S) != TB_OK) {
			log_warnx("lease on %zu message(s) to %s not renewed: %s", x->count, x->hop,
			          tb_journal_diag(n->journal)->detail);
			continue;
		}
		x->renew_at = now + TB_LEASE_RENEW_S;
	}
	return live;
}

/* Before a round: retired sessions released, sessions to members a new
 * registry made inactive dropped, exchanges without an answer forgotten,
 * messages held in memory too long handed back. */
static void
tidy(struct tb_node *n)
{
	tb_transport_reap(n);
	/* peers a new registry made inactive: their sessions go now, outside
	 * any libcoap callback */
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		if (p->drop) {
			p->drop = false;
			tb_transport_drop_peer(n, p->id);
		}
	/* an exchange libcoap neither answered nor gave up on (it normally
	 * nacks first): forget it, its messages are due again */
	for (struct tb_exchange **pp = &n->out->exchanges; *pp != NULL;) {
		struct tb_exchange *x = *pp;
		if (tb_now_ms() - x->sent_ms < n->cfg.answer_timeout * 1000) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		log_warnx("exchange with %s unanswered for %lld s; its %zu message(s) will be resent",
		          x->hop, (long long)n->cfg.answer_timeout, x->count);
		tb_transport_drop_slot(n, x->hop, x->slot, x->session);
		finish_exchange(n, x);
		exchange_failed(n, x, TB_PF_TIMEOUT, "exchange unanswered for answer_timeout");
		free_exchange(x);
	}
	int64_t next = hedge(n, tb_now_ms());
	if (renew_leases(n, tb_now()) && (next < 0 || next > 1000))
		next = 1000;
	if (next >= 0) /* at least 50 ms apart: rounds read the journal */
		tb_outbound_schedule(n, next < 50 ? 50 : next);
	age_fresh(n, tb_now_ms());
}

/* Reads the messages due into l: the journal's first, then the memory
 * queue's. */
static void
read_due(struct tb_node *n, struct due_list *l, int64_t now, size_t bmax)
{
	/* no more than one round of exchanges can carry: reading the whole
	 * queue after every answer would make delivery quadratic */
	/* read only what the free session slots can carry (plus one
	 * exchange's worth for peers without sessions yet) */
	size_t free_slots = 1;
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		for (int i = 0; i < (int)n->cfg.peer_sessions; i++)
			free_slots += (size_t)slot_room(p, i);
	/* the journal's due messages (retries, relays, messages handed back)
	 * first: they have waited longest; then those in memory */
	if (tb_journal_outbound_claim(n->journal, now, bmax * free_slots, collect, l) != TB_OK)
		log_warnx("journal: %s", tb_journal_diag(n->journal)->detail);
	if (l->len < bmax * free_slots)
		take_fresh(n, l, bmax * free_slots - l->len);
}

/* Settles in the journal what cannot be sent this round: expired
 * messages fail, those without a next hop are retried later; the others
 * get their next hop.  false when the round's transaction cannot open. */
static bool
settle_unsendable(struct tb_node *n, struct due_list *l, int64_t now, bool *tx)
{
	for (size_t i = 0; i < l->len; i++) {
		struct due *x = &l->v[i];
		struct tb_diag d;
		coap_address_t addr;
		if (x->m.expires <= now) {
			if (!round_tx(n, tx))
				return false;
			tb_log_msg(TB_MSG_FAILED, x->m.id, x->m.to, x->m.type,
			           "time.expired: not delivered before expiry");
			if (tb_journal_outbound_failed_audit(
			        n->journal, x->m.id, "time.expired: not delivered before expiry",
			        now, x->m.digest, x->m.to) == TB_OK)
				n->m.out_failed++;
			else /* still queued: the next round tries again */
				log_warnx("journal: %s", tb_journal_diag(n->journal)->detail);
		} else if (tb_node_next_hop(n, x->m.to, x->hop, sizeof(x->hop), &addr, &d) !=
		           TB_OK) {
			if (!round_tx(n, tx))
				return false;
			(void)retry(n->journal, x->m.id, now + backoff_s(n, x->attempts), d.detail);
		} else {
			continue; /* x->hop set: to be planned below */
		}
		x->hop[0] = '\0';
		x->done = true; /* the journal has it now */
	}
	return true;
}

/* A backlog for hop is spread over the peer's free session slots: block-
 * wise transfers are stop-and-wait, one block a round trip per session,
 * so on a long link the sessions carry it in parallel, each a part,
 * rather than a few sessions each a full batch (bench/links.sh).  No
 * exchange is cut below TB_SPREAD_MIN envelopes, so that a small backlog
 * does not open a session (a handshake) per message.  The batch size
 * for hop given its link's pmax, from the due list l from index i. */
#define TB_SPREAD_MIN 8
static size_t
spread(const struct tb_node *n, const struct tb_peer *p, const struct due_list *l, size_t i,
       const char *hop, size_t pmax)
{
	size_t due = 0, free_slots = 0, per;

	for (int slot = 0; slot < (int)n->cfg.peer_sessions; slot++)
		free_slots += (size_t)slot_room(p, slot);
	for (size_t k = i; k < l->len; k++)
		due += strcmp(l->v[k].hop, hop) == 0;
	if (free_slots == 0 || due <= pmax)
		return pmax;
	per = (due + free_slots - 1) / free_slots;
	if (per < TB_SPREAD_MIN)
		per = TB_SPREAD_MIN;
	return per < pmax ? per : pmax;
}

/* Plans the round's exchanges into plan[0..*nplanp): exchange c is
 * plan[cuts[c - 1] .. cuts[c]) on session slot slots[c]. */
static void
plan_exchanges(struct tb_node *n, struct due_list *l, size_t bmax, size_t limit, struct due **plan,
               size_t *nplanp, size_t *cuts, int *slots, size_t *ncutsp)
{
	size_t nplan = 0, ncuts = 0;

	/* Plan exchanges per hop within the window, each under the size and
	 * count limits. */
	for (size_t i = 0; i < l->len; i++) {
		char hop[16];
		struct tb_peer *p;
		if (l->v[i].hop[0] == '\0')
			continue;
		snprintf(hop, sizeof(hop), "%s", l->v[i].hop);
		p = tb_transport_peer(n, hop);
		bool open = p != NULL && tb_peer_ready(p, tb_now_ms());
		/* a failing peer gets one probe at a time (transport.h) */
		int exchanges = p == NULL ? 0 : p->failures == 0 ? (int)n->cfg.peer_sessions : 1;
		for (int slot = 0; open && p->failures > 0 && slot < (int)n->cfg.peer_sessions;
		     slot++)
			exchanges -= p->inflight[slot];
		/* the probe's answer is still being settled: whether the peer
		 * takes messages, or asks to be left alone for a Max-Age, is not
		 * known yet (its session slot is free already) */
		if (open && p->failures > 0)
			exchanges -= p->settling;
		/* a 5.xx answer being settled (on the answers thread) may carry
		 * a Max-Age: nothing more to the peer until it is known */
		if (p != NULL && p->settling_5xx > 0)
			exchanges = 0;
		if (p != NULL && !open)
			for (size_t k = i; k < l->len; k++)
				if (strcmp(l->v[k].hop, hop) == 0)
					l->v[k].wait_s = peer_wait_s(p);
		size_t j = i, pmax = bmax;
		/* the batch size this link carries now (link.h) */
		if (p != NULL) {
			pmax = tb_link_batch(&p->link, (int)bmax, n->cfg.answer_timeout);
			if (pmax > bmax)
				pmax = bmax;
			pmax = spread(n, p, l, i, hop, pmax);
		}
		/* at most the windows of the sessions up (link.h), and one
		 * for each of the others */
		int order[TB_PEER_SESSIONS_MAX * (TB_LINK_PIPE_MIN + 1) + TB_LINK_PIPE_INFLIGHT];
		int nord = open ? slot_order(n, p, order) : 0;
		for (int k = 0; k < nord && exchanges > 0; k++) {
			int slot = order[k];
			exchanges--;
			size_t c = 0, bytes = 2;
			for (; j < l->len && c < pmax; j++) {
				if (strcmp(l->v[j].hop, hop) != 0)
					continue;
				if (c > 0 && bytes + l->v[j].m.env.len + 1 > limit)
					break;
				bytes += l->v[j].m.env.len + 1;
				plan[nplan++] = &l->v[j];
				c++;
			}
			if (c == 0)
				break;
			slots[ncuts] = slot;
			cuts[ncuts++] = nplan;
		}
		for (size_t k = i; k < l->len; k++)
			if (strcmp(l->v[k].hop, hop) == 0) {
				if (p != NULL && k >= j)
					p->backlog = true; /* waits for the window */
				l->v[k].hop[0] = '\0'; /* planned, or waits for the window */
			}
	}
	*nplanp = nplan;
	*ncutsp = ncuts;
}

/* Records that the planned messages from the journal's queue are sent,
 * and commits the round's transaction.  false when that fails. */
static bool
mark_sent(struct tb_node *n, struct due_list *l, struct due **plan, size_t nplan, int64_t now,
          bool *tx)
{
	/* Planned messages from the journal's queue wait for their answer,
	 * not for the next round: the answer timeout is their next attempt,
	 * committed without fsync (after a crash they are simply sent again,
	 * and the receiver's idempotency on the message id answers with the
	 * original receipt).  Those from memory need no write: their first
	 * attempt in the journal lies TB_FRESH_HOLD_S(n) after they were
	 * queued, an answer timeout after the latest they may be sent.
	 * now is whole seconds and the exchange times out answer_timeout after
	 * its send in milliseconds: one second more keeps the message from
	 * being due (and sent a second time) while its exchange still lives.
	 * On a shared journal the wait is the lease instead, renewed while
	 * the exchange lives (renew_leases). */
	int64_t hold = tb_journal_shared(n->journal) ? TB_JOURNAL_LEASE_S : n->cfg.answer_timeout + 1;
	for (size_t k = 0; k < nplan; k++) {
		if (plan[k]->fresh)
			continue;
		if (!round_tx(n, tx))
			return false;
		(void)retry(n->journal, plan[k]->m.id, now + hold, "sent, awaiting receipt");
	}
	/* messages to a peer waiting out its backoff wait with it, instead of
	 * being read again every round (no attempt counted) */
	for (size_t k = 0; k < l->len; k++) {
		struct due *x = &l->v[k];
		if (x->wait_s == 0 || x->fresh || x->done || !round_tx(n, tx))
			continue;
		if (tb_journal_outbound_reschedule(n->journal, x->m.id, now + x->wait_s) == TB_OK)
			x->done = true;
	}
	if (*tx) {
		*tx = false;
		if (tb_journal_commit(n->journal) != TB_OK) {
			log_warnx("journal commit failed: %s", tb_journal_diag(n->journal)->detail);
			return false;
		}
	}
	return true;
}

/* Sends each planned exchange; what is sent is done. */
static void
send_planned(struct tb_node *n, struct due **plan, const size_t *cuts, const int *slots,
             size_t ncuts)
{
	for (size_t c = 0, start = 0; c < ncuts; start = cuts[c++]) {
		char hop[16];
		coap_address_t addr;
		struct tb_diag d;
		/* all messages of a cut share the next hop of the first */
		int rc = -1;
		if (tb_node_next_hop(n, plan[start]->m.to, hop, sizeof(hop), &addr, &d) == TB_OK)
			rc = send_batch(n, hop, slots[c], plan + start, cuts[c] - start);
		for (size_t k = start; k < cuts[c]; k++) {
			plan[k]->done = rc == 0;
			/* not sent for want of a session now: due again in a
			 * second, not after the hold mark_sent gave them (those
			 * from memory go back to it, put_back) */
			if (rc == -2 && !plan[k]->fresh &&
			    tb_journal_outbound_reschedule(n->journal, plan[k]->m.id, tb_now() + 1) !=
			        TB_OK)
				log_warnx("%s due at its hold's end: %s", plan[k]->m.id,
				          tb_journal_diag(n->journal)->detail);
		}
	}
	tb_transport_kick(n);
}

#define REVOKED_BATCH 4096 /* queued messages failed per round when revoked */

/* Own member revoked: every queued message fails with member.revoked
 * (docs/ADMIN.md), those in memory and those in the journal's queue. */
static void
fail_revoked(struct tb_node *n)
{
	struct due_list l = {n, NULL, 0, 0};
	int64_t now = tb_now();
	char reason[160];
	size_t failed = 0;

	snprintf(reason, sizeof(reason), "%s: %s", tb_err_reason(TB_E_MEMBER_REVOKED),
	         tb_err_str(TB_E_MEMBER_REVOKED));
	take_fresh(n, &l, n->out->nfresh - n->out->fresh_head);
	/* a bounded number per round, the next round at once */
	if (tb_journal_outbound_due(n->journal, INT64_MAX, REVOKED_BATCH, collect, &l) != TB_OK)
		log_warnx("journal: %s", tb_journal_diag(n->journal)->detail);
	if (l.len > 0 && tb_journal_begin(n->journal) == TB_OK) {
		for (size_t i = 0; i < l.len; i++)
			if (tb_journal_outbound_failed_audit(n->journal, l.v[i].m.id, reason, now,
			                                     l.v[i].m.digest, l.v[i].m.to) == TB_OK)
				failed++;
		if (tb_journal_commit(n->journal) != TB_OK) {
			log_warnx("journal commit failed: %s", tb_journal_diag(n->journal)->detail);
			failed = 0;
		}
	}
	if (failed > 0) {
		n->m.out_failed += failed;
		log_errorx("this member is revoked: %zu queued message(s) failed (%s)", failed,
		           tb_err_reason(TB_E_MEMBER_REVOKED));
	}
	/* what the journal did not record stays queued for the next round;
	 * those taken from memory are in the journal's queue anyway */
	for (size_t i = 0; i < l.len; i++)
		tb_buf_free(&l.v[i].m.env);
	free(l.v);
	if (failed == REVOKED_BATCH)
		tb_outbound_schedule(n, 0);
}

static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_node *n = arg;
	struct due_list l = {n, NULL, 0, 0};
	int64_t now = tb_now(), next;
	size_t bmax = (size_t)n->cfg.batch_max, limit = (size_t)n->cfg.max_message_size - 1024;
	struct due **plan = NULL;
	size_t *cuts = NULL, nplan = 0, ncuts = 0;
	int *slots = NULL;
	bool tx = false;

	(void)fd;
	(void)what;
	if (n->draining)
		return;
	n->m.out_rounds++;
	set_windows(n);
	/* nothing is sent unless the node may exchange: suspended or in
	 * recovery the queue waits (a registry applied, or a state change,
	 * state_changed, starts the next round); revoked it fails */
	if (!tb_node_exchanging(n)) {
		if (n->state == TB_NODE_REVOKED)
			fail_revoked(n);
		return;
	}
	tidy(n);
	read_due(n, &l, now, bmax);
	/* what waits after this round (plan_exchanges); the memory queue's
	 * rest waits for every peer */
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		p->backlog = n->out->fresh_head < n->out->nfresh;
	if (l.len == 0)
		goto done;
	plan = calloc(l.len, sizeof(*plan));
	cuts = calloc(l.len + 1, sizeof(*cuts));
	slots = calloc(l.len + 1, sizeof(*slots));
	if (plan == NULL || cuts == NULL || slots == NULL)
		goto done;
	if (!settle_unsendable(n, &l, now, &tx))
		goto done;
	plan_exchanges(n, &l, bmax, limit, plan, &nplan, cuts, slots, &ncuts);
	if (!mark_sent(n, &l, plan, nplan, now, &tx))
		goto done;
	send_planned(n, plan, cuts, slots, ncuts);
done:
	if (tx)
		rollback(n->journal);
	put_back(n, &l);
	free(plan);
	free(cuts);
	free(slots);
	for (size_t i = 0; i < l.len; i++)
		tb_buf_free(&l.v[i].m.env);
	free(l.v);
	if (n->out->fresh_head < n->out->nfresh)
		/* the rest of the memory queue: as soon as a slot frees, and to
		 * hand back what waits too long */
		tb_outbound_schedule(n, 1000);
	if (tb_journal_outbound_next_due(n->journal, &next) == TB_OK)
		tb_outbound_schedule(n, next <= now ? 1000 : (next - now) * 1000);
	/* a shared journal gets messages from the other processes of the
	 * member, and theirs come due when a process dies: looked at every
	 * second (a query of the due index) */
	if (tb_journal_shared(n->journal))
		tb_outbound_schedule(n, 1000);
}

static struct tb_exchange *
take_exchange(struct tb_node *n, coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
	coap_bin_const_t tok = coap_pdu_get_token(recv ? recv : sent);

	for (struct tb_exchange **pp = &n->out->exchanges; *pp != NULL; pp = &(*pp)->next) {
		struct tb_exchange *x = *pp;
		if (x->session == s && x->token.length == tok.length &&
		    memcmp(x->tokbuf, tok.s, tok.length) == 0) {
			*pp = x->next;
			return x;
		}
	}
	return NULL;
}

/* The peer's side of an exchange that ended: its session slot is free.
 * x stays the caller's. */
static void
finish_exchange(struct tb_node *n, struct tb_exchange *x)
{
	struct tb_peer *p = peer_of(n, x->hop);

	log_debug("exchange %d with %s: %zu message(s), %zu bytes, in %lld ms", x->slot, x->hop,
	          x->count, x->bytes,
	          (long long)(tb_now_ms() - x->sent_ms));
	/* the slot may hold a newer session by now */
	if (p != NULL && p->sessions[x->slot] == x->session && p->inflight[x->slot] > 0) {
		p->inflight[x->slot]--;
		p->large[x->slot] = p->large[x->slot] && !x->large;
	}
}

/* The exchange x failed for why: a failed attempt of its peer (the
 * backoff and circuit breaker, transport.c).  An exchange lost while the
 * peer answered others sent after it is the link's loss, not an outage:
 * it halves the peer's batch (link.h) but starts no backoff, so that the
 * exchanges on the peer's other sessions go on. */
static void
exchange_failed(struct tb_node *n, struct tb_exchange *x, enum tb_peer_fail why, const char *detail)
{
	struct tb_peer *p = peer_of(n, x->hop);

	if (p == NULL)
		return;
	/* a member with several endpoints: that one's breaker opens and the
	 * next sessions go to another (transport.h), no backoff */
	if ((why == TB_PF_TIMEOUT || why == TB_PF_UNREACHABLE) &&
	    tb_transport_failover(n, p, x->ep, detail)) {
		p->fails[why]++;
		return;
	}
	if (why == TB_PF_TIMEOUT)
		tb_link_lost(&p->link);
	if (why == TB_PF_TIMEOUT && p->failures == 0 &&
	    p->last_answer_ms != 0 &&
	    (p->last_answer_ms > x->sent_ms || tb_now_ms() - p->last_answer_ms < TB_LINK_ALIVE_MS)) {
		p->fails[why]++;
		log_debug("exchange with %s lost (%s); batch now %zu", x->hop, detail,
		          tb_link_batch(&p->link, (int)n->cfg.batch_max, n->cfg.answer_timeout));
		return;
	}
	tb_peer_failed(n, p, x->epoch, why, detail);
}

/* An answer to x came: the peer's link estimate learns its time. */
static void
exchange_answered(struct tb_node *n, struct tb_exchange *x, unsigned code, size_t answer_len)
{
	struct tb_peer *p = peer_of(n, x->hop);
	int64_t now = tb_now_ms();

	if (p == NULL)
		return;
	p->last_answer_ms = now;
	/* its time is the handshake's too: no sample of the round trips */
	if (COAP_RESPONSE_CLASS(code) == 2)
		tb_link_answered(&p->link, x->count, x->bytes + answer_len,
		                 x->handshake ? -1 : now - x->sent_ms, (int)n->cfg.batch_max);
}

/* True for an error object whose reason is the receiver's own trouble
 * (io, nomem, crypto, draining): worth retrying, unlike a refusal. */
static bool
transient_error(const uint8_t *p, size_t len)
{
	struct tb_json_doc *doc = tb_json_parse(p, len, NULL, NULL);
	const struct tb_json *e = doc ? tb_json_get(tb_json_root(doc), "error") : NULL;
	const char *r = e ? tb_json_string(e, NULL) : NULL;
	bool yes = r != NULL && (strcmp(r, "io") == 0 || strcmp(r, "nomem") == 0 ||
	                         strcmp(r, "crypto") == 0 || strcmp(r, "draining") == 0);

	tb_json_doc_free(doc);
	return yes;
}

/* True when an answer element is an error object {"error": ...}. */
static bool
is_error_object(const uint8_t *p, size_t len)
{
	struct tb_json_doc *doc = tb_json_parse(p, len, NULL, NULL);
	bool yes = doc != NULL && tb_json_get(tb_json_root(doc), "error") != NULL;

	tb_json_doc_free(doc);
	return yes;
}

/* At a hub: the recipient's receipt for a message relayed here goes back
 * to the message's sender, with this hub on its path (receipts of
 * receipts end here).  Journals it in j; the loop schedules delivery. */
static void
relay_back(struct tb_node *n, struct tb_journal *j, const char *id, const struct tb_env *r_in)
{
	struct tb_journal_status st;
	struct tb_env *r = NULL;
	struct tb_buf b;
	struct tb_journal_msg m;
	uint8_t dg[32];
	char digest[65];

	if (tb_journal_outbound_status(j, id, &st, NULL) != TB_OK ||
	    strcmp(st.from, n->cfg.member_id) == 0 || strcmp(st.type, "receipt") == 0)
		return;
	tb_buf_init(&b);
	/* a copy to extend: the answer's envelope stays as it was stored */
	if (tb_env_serialize(r_in, &b) != TB_OK ||
	    (r = tb_env_parse(b.data, b.len, NULL)) == NULL ||
	    tb_env_add_hop(r, n->cfg.member_id) != TB_OK)
		goto out;
	tb_buf_reset(&b);
	if (tb_env_serialize(r, &b) != TB_OK)
		goto out;
	if (tb_env_digest(r, dg) != TB_OK)
		goto out;
	tb_hex_encode(dg, 32, digest);
	memset(&m, 0, sizeof(m));
	m.id = tb_env_id(r);
	m.from = tb_env_from(r);
	m.to = st.from;
	m.type = "receipt";
	m.corr = tb_env_corr(r);
	m.digest = digest;
	m.created = tb_env_created(r);
	m.expires = tb_env_expires(r);
	m.envelope = b.data;
	m.envelope_len = b.len;
	/* if this fails, the origin sends again and the answer comes back
	 * again (receivers answer duplicates with the original receipt) */
	int rc = tb_journal_outbound_put_audit(j, &m, tb_now(), tb_now(), "relayed");
	if (rc != TB_OK && rc != TB_E_REPLAY)
		log_warnx("receipt %s not relayed back: %s", m.id, tb_journal_diag(j)->detail);
out:
	tb_env_free(r);
	tb_buf_free(&b);
}

/* Checks one answer element for message i, p/len, already opened into r
 * (NULL when it did not open; settle frees it); records the outcome in j
 * and what the loop applies afterwards in a. */
static void
settle(struct tb_node *n, struct tb_journal *j, struct tb_answer *a, size_t i, const uint8_t *p,
       size_t len, struct tb_env *r, int coap_class)
{
	struct tb_exchange *x = a->x;
	const struct tb_json *dg;
	const char *dgs;
	int64_t now = tb_now();
	struct tb_buf full; /* a compact element's full form, as stored */

	tb_buf_init(&full);
	bool receipt = coap_class == 2 && r != NULL && strcmp(tb_env_type(r), "receipt") == 0 &&
	               tb_env_corr(r) != NULL && strcmp(tb_env_corr(r), x->ids[i]) == 0 &&
	               (dg = tb_json_get(tb_env_body(r), "digest")) != NULL &&
	               (dgs = tb_json_string(dg, NULL)) != NULL && strcmp(dgs, x->digests[i]) == 0;
	const struct tb_json *stj = receipt ? tb_json_get(tb_env_body(r), "status") : NULL;
	const char *status = stj ? tb_json_string(stj, NULL) : NULL;

	if (receipt && tb_env_completed(r)) {
		if (tb_env_serialize(r, &full) == TB_OK) {
			p = full.data;
			len = full.len;
		} else {
			receipt = false;
		}
	}
	if (receipt && strcmp(tb_env_from(r), x->tos[i]) == 0) {
		bool fresh;
		/* recorded with its audit entry, or not at all: then it is not
		 * reported delivered, and stays queued (or failed) as it was */
		if (tb_journal_outbound_delivered_audit(j, x->ids[i], p, len, now, x->digests[i],
		                                        x->tos[i], &fresh) != TB_OK) {
			log_warnx("delivery of %s not recorded: %s", x->ids[i],
			          tb_journal_diag(j)->detail);
			if (retry(j, x->ids[i], now + backoff_s(n, 1),
			          "delivery not recorded in the journal"))
				a->retries++;
			goto out;
		}
		/* delivered already by an earlier exchange's answer (the message
		 * went out again while that answer was on its way): counted,
		 * logged and audited then, not twice */
		if (!fresh)
			goto out;
		a->delivered[i] = true;
		a->ndelivered++;
		if (x->relayed[i]) {
			relay_back(n, j, x->ids[i], r);
			a->relays = true;
		}
		if (a->notes != NULL) {
			struct tb_journal_status st;
			if (tb_journal_outbound_status(j, x->ids[i], &st, NULL) == TB_OK &&
			    st.corr[0] != '\0') {
				snprintf(a->notes[i].type, sizeof(a->notes[i].type), "%s", st.type);
				snprintf(a->notes[i].corr, sizeof(a->notes[i].corr), "%s", st.corr);
			}
		}
	} else if (receipt && strcmp(tb_env_from(r), x->hop) == 0 && status != NULL &&
	           strcmp(status, "relayed") == 0) {
		/* the hub took it: the recipient's receipt comes back through
		 * the hub as a message; resend (idempotent) only if it does not */
		char why[64];
		snprintf(why, sizeof(why), "relayed by %s, awaiting the recipient's receipt",
		         x->hop);
		(void)retry(j, x->ids[i], now + RELAY_WAIT_S, why);
	} else if (coap_class != 4 && transient_error(p, len)) {
		a->bad++;
		if (retry(j, x->ids[i], now + backoff_s(n, x->failures + 1),
		          "receiver failed internally; retrying"))
			a->retries++;
	} else if (coap_class == 4 || is_error_object(p, len)) {
		/* refused for good: the same bytes would be refused again */
		char reason[160];
		snprintf(reason, sizeof(reason), "refused by %s: %.*s", x->hop,
		         (int)(len > 120 ? 120 : len), (const char *)p);
		tb_log_msg(TB_MSG_FAILED, x->ids[i], x->tos[i], x->types ? x->types[i] : NULL, "%s",
		           reason);
		if (tb_journal_outbound_failed_audit(j, x->ids[i], reason, now, x->digests[i],
		                                     x->tos[i]) == TB_OK)
			a->failed++;
		else
			log_warnx("failure of %s not recorded: %s", x->ids[i],
			          tb_journal_diag(j)->detail);
	} else {
		a->bad++;
		if (retry(j, x->ids[i], now + backoff_s(n, x->failures + 1),
		          "answer was not a valid receipt"))
			a->retries++;
	}
out:
	tb_env_free(r);
	tb_buf_free(&full);
}

/* Clock skew (docs/PROTOCOL.md "Receipts and clocks"): a receipt refused
 * for its time only (time.future, time.expired) carries the peer's clock,
 * which says nothing of whether it is genuine: it names the digest of our
 * message, which did not exist before we sent it, so it cannot be old, and
 * its signature decides.  o2 receives o at the element's own created
 * time; false when the element does not parse. */
static bool
at_its_time(const uint8_t *p, size_t len, const struct tb_env_open_opts *o,
            struct tb_env_open_opts *o2)
{
	struct tb_env *e = tb_env_parse(p, len, NULL);

	if (e == NULL)
		return false;
	*o2 = *o;
	o2->now = tb_env_created(e);
	tb_env_free(e);
	return true;
}

static bool
time_refused(int code)
{
	return code == TB_E_NOT_YET_VALID || code == TB_E_EXPIRED;
}

/* Opens a single answer (NULL when it does not open), again at its own
 * time when its time alone was refused (a->skewed counts it). */
static struct tb_env *
open_answer(struct tb_answer *a, const uint8_t *p, size_t len, const struct tb_env_open_opts *o)
{
	struct tb_env *r = NULL;
	struct tb_env_open_opts o2;
	struct tb_diag d;

	if (tb_env_open(p, len, o, &r, &d) == TB_OK)
		return r;
	if (!time_refused(d.code) || !at_its_time(p, len, o, &o2) ||
	    tb_env_open(p, len, &o2, &r, NULL) != TB_OK)
		return NULL;
	a->skewed++;
	return r;
}

/* The elements of a batch answer whose time alone was refused, opened
 * again at their own time (a->skewed counts them). */
static void
reopen_skewed(struct tb_answer *a, const uint8_t *data, const size_t *eoff, const size_t *elen,
              size_t ne, const struct tb_env_open_opts *o, struct tb_env **env, struct tb_diag *ed)
{
	struct tb_env_open_opts o2;
	size_t k;

	for (k = 0; k < ne && !(env[k] == NULL && time_refused(ed[k].code)); k++)
		;
	if (k == ne || !at_its_time(data + eoff[k], elen[k], o, &o2))
		return;
	/* one batch, one signature, one time: all are opened again together
	 * (a compact answer's proofs need them all) */
	for (size_t i = 0; i < ne; i++) {
		tb_env_free(env[i]);
		env[i] = NULL;
	}
	tb_env_open_many(data, eoff, elen, ne, &o2, env, ed);
	for (size_t i = 0; i < ne; i++)
		a->skewed += env[i] != NULL;
}

/* What the answer tells of the peer's clock: the created time of its
 * first receipt against ours. */
static void
learn_clock(struct tb_answer *a, const struct tb_env *r, const struct tb_env_open_opts *o)
{
	if (r != NULL && !a->has_offset && strcmp(tb_env_type(r), "receipt") == 0 &&
	    strcmp(tb_env_from(r), a->x->hop) == 0) {
		a->has_offset = true;
		a->offset = tb_env_created(r) - o->now;
	}
}

/* A batch answer: a JSON array, element i for message i; each element is
 * read strictly on its own, the receipts of a compact answer opened
 * together (9.3). */
static void
settle_batch(struct tb_node *n, struct tb_journal *j, const struct tb_env_open_opts *o,
             struct tb_answer *a, const uint8_t *data, size_t len)
{
	struct tb_exchange *x = a->x;
	size_t *eoff = calloc(x->count, sizeof(*eoff)), *elen = calloc(x->count, sizeof(*elen));
	struct tb_env **env = calloc(x->count, sizeof(*env));
	struct tb_diag *ed = calloc(x->count, sizeof(*ed));
	int ne = eoff && elen && env && ed ? tb_env_split_batch(data, len, eoff, elen, (int)x->count)
	                                   : -1;

	if (ne > 0 && a->cls == 2) {
		tb_env_open_many(data, eoff, elen, (size_t)ne, o, env, ed);
		reopen_skewed(a, data, eoff, elen, (size_t)ne, o, env, ed);
	}
	for (size_t i = 0; i < x->count; i++) {
		if ((int)i < ne) {
			learn_clock(a, env[i], o);
			settle(n, j, a, i, data + eoff[i], elen[i], env[i], a->cls);
		} else {
			a->bad++;
			(void)retry(j, x->ids[i], tb_now() + backoff_s(n, x->failures + 1),
			            "malformed batch answer");
		}
	}
	free(eoff);
	free(elen);
	free(env);
	free(ed);
}

/* a->why: a server error's reason token and detail, for the log. */
static void
server_error_why(struct tb_answer *a, const uint8_t *data, size_t len)
{
	struct tb_json_doc *doc = data ? tb_json_parse(data, len, NULL, NULL) : NULL;
	const struct tb_json *e = doc ? tb_json_get(tb_json_root(doc), "error") : NULL;
	const struct tb_json *dt = doc ? tb_json_get(tb_json_root(doc), "detail") : NULL;
	const char *r = e ? tb_json_string(e, NULL) : NULL, *ds = dt ? tb_json_string(dt, NULL) : NULL;

	snprintf(a->why, sizeof(a->why), "%s%s%s", r ? r : "5.xx", ds ? ": " : "", ds ? ds : "");
	tb_json_doc_free(doc);
}

void
tb_outbound_settle(struct tb_node *n, struct tb_journal *j, const struct tb_env_open_opts *o,
                   struct tb_answer *a)
{
	struct tb_exchange *x = a->x;
	const uint8_t *data = a->has_data ? a->data : NULL;
	size_t len = a->len;
	int cls = a->cls;
	struct tb_buf plain; /* an inflated 11050 answer */

	/* why the messages are retried when the answer settles nothing */
	char why[160] = "peer answered with a server error";
	tb_buf_init(&plain);
	if (data == NULL && cls != 5)
		snprintf(why, sizeof(why), "peer answered %d.%02d without a body", cls,
		         a->code & 0x1f);
	if (data != NULL && a->deflated) {
		struct tb_diag d;
		if (tb_inflate(data, len, TB_ANSWER_MAX, &plain, &d) == TB_OK) {
			data = plain.data;
			len = plain.len;
		} else {
			log_warnx("answer of %s not readable: %s", x->hop, d.detail);
			snprintf(why, sizeof(why), "answer not readable: %.130s", d.detail);
			data = NULL;
		}
	}
	/* a 5.xx answer's reason (node.recovery, draining...) is kept for
	 * the message's status */
	if (cls == 5 && data != NULL && len > 0)
		snprintf(why, sizeof(why), "peer answered 5.%02d: %.*s", a->code & 0x1f,
		         (int)(len > 120 ? 120 : len), (const char *)data);
	if (tb_journal_begin_nosync(j) != TB_OK) {
		/* nothing recorded: the messages are due again after the
		 * answer timeout they were given when sent */
		log_warnx("journal: %s", tb_journal_diag(j)->detail);
		tb_buf_free(&plain);
		return;
	}
	/* the batch's states in one round trip, before its receipts are
	 * settled one by one (a failure shows at the commit) */
	if (cls == 2 && data != NULL && tb_journal_outbound_prefetch(j, x->ids, x->count) != TB_OK)
		log_warnx("journal: %s", tb_journal_diag(j)->detail);
	if (cls == 5 || data == NULL) {
		/* not before the answer's Max-Age, if it had one */
		int64_t wait = backoff_s(n, x->failures + 1);
		if (a->max_age > wait)
			wait = a->max_age > TB_MAX_AGE_CAP ? TB_MAX_AGE_CAP : a->max_age;
		server_error_why(a, data, len);
		a->bad = x->count;
		for (size_t i = 0; i < x->count; i++) {
			if (retry(j, x->ids[i], tb_now() + wait, why))
				a->retries++;
		}
	} else if (cls == 4 && (a->code & 0x1f) == 8) {
		/* 4.08 incomplete: the peer got a block of the body without the
		 * rest (PROTOCOL.md 9.2), a transfer cut by loss: the body goes
		 * again, whole; never the messages' refusal */
		a->bad = x->count;
		for (size_t i = 0; i < x->count; i++)
			if (retry(j, x->ids[i], tb_now(), "peer got the body incomplete; sent again"))
				a->retries++;
	} else if (x->count == 1) {
		/* an answer that does not open is settled as "not a receipt" */
		struct tb_env *r = cls == 2 ? open_answer(a, data, len, o) : NULL;
		learn_clock(a, r, o);
		settle(n, j, a, 0, data, len, r, cls);
	} else if (len == 0 || data[0] != '[') {
		/* the exchange was refused as a whole (size, format): not the
		 * messages' fault; retry them, in smaller exchanges */
		a->bad = x->count;
		for (size_t i = 0; i < x->count; i++) {
			if (retry(j, x->ids[i], tb_now() + backoff_s(n, x->failures + 1),
			          "exchange refused as a whole"))
				a->retries++;
		}
		log_warnx("batch of %zu to %s refused as a whole: %.*s", x->count, x->hop,
		          (int)(len > 120 ? 120 : len), (const char *)data);
	} else {
		settle_batch(n, j, o, a, data, len);
	}
	/* Outcomes are committed without waiting for the disk: a delivery
	 * record lost in a crash only means the message is sent again, and
	 * the receiver answers with its original receipt (relays queued
	 * here reach the disk with the next durable commit, before any
	 * answer that depends on them). */
	if (tb_journal_commit(j) != TB_OK) {
		/* nothing was recorded: report nothing delivered or failed; the
		 * messages are due again when their answer timeout ends */
		log_warnx("journal commit failed: %s", tb_journal_diag(j)->detail);
		for (size_t i = 0; i < x->count; i++)
			a->delivered[i] = false;
		a->ndelivered = 0;
		a->failed = a->retries = 0;
		a->relays = false;
	}
	tb_buf_free(&plain);
}

#define BUSY_REPEAT_MS (3600 * 1000) /* a standing condition: a line hourly */

/* Peer p answered a's exchange 5.xx with Max-Age (journal.full): it
 * cannot take messages now.  A failed attempt like any (its backoff
 * grows), and no attempt before the Max-Age has passed, whichever is
 * later (PROTOCOL.md 9.6).  Told of once when it starts, then hourly
 * and when it clears, with the count of its refusals, instead of the
 * failure lines of tb_peer_failed. */
static void
peer_busy(struct tb_node *n, struct tb_peer *p, uint32_t epoch, const struct tb_answer *a)
{
	int64_t now_ms = tb_now_ms();
	uint32_t r = 0;
	char why[64];

	snprintf(why, sizeof(why), "answered %d.%02d with Max-Age %lld", a->cls, a->code & 0x1f,
	         (long long)a->max_age);
	p->report_held = true;
	tb_peer_failed(n, p, epoch, TB_PF_ANSWER, why);
	p->report_held = false;
	if (tb_random(&r, sizeof(r)) != TB_OK)
		r = 0; /* no jitter then */
	p->open_until_ms = tb_peer_hold_until(p, now_ms, a->max_age, r);
	if (!p->busy) {
		p->busy = true;
		p->busy_since_ms = p->busy_line_ms = now_ms;
		p->busy_refusals = 1;
		snprintf(p->busy_why, sizeof(p->busy_why), "%s", a->why);
		log_warnx("peer %s cannot take messages now (%s): its messages wait, the next "
		          "attempt in %lld ms (its Max-Age %lld s, or the backoff if later)",
		          p->id, p->busy_why, (long long)(p->open_until_ms - now_ms),
		          (long long)a->max_age);
		return;
	}
	p->busy_refusals++;
	if (now_ms - p->busy_line_ms >= BUSY_REPEAT_MS) {
		log_warnx("peer %s still cannot take messages (%s): %llu refused attempt(s) in the "
		          "last %lld s",
		          p->id, p->busy_why, (unsigned long long)p->busy_refusals,
		          (long long)((now_ms - p->busy_line_ms + 500) / 1000));
		p->busy_line_ms = now_ms;
		p->busy_refusals = 0;
	}
}

/* An exchange with p settled: a condition peer_busy told of is over. */
static void
peer_not_busy(struct tb_peer *p)
{
	int64_t now_ms = tb_now_ms();

	if (!p->busy)
		return;
	p->busy = false;
	log_info("peer %s takes messages again after %lld s (%s): %llu refused attempt(s) "
	         "since the last line",
	         p->id, (long long)((now_ms - p->busy_since_ms + 500) / 1000), p->busy_why,
	         (unsigned long long)p->busy_refusals);
	p->busy_refusals = 0;
}

void
tb_outbound_settled(struct tb_node *n, struct tb_answer *a)
{
	struct tb_exchange *x = a->x;

	if (n != NULL) {
		struct tb_peer *p = peer_of(n, x->hop);
		/* a failing peer's probe is over: the round after it may start
		 * the next (plan_exchanges) */
		bool probe = p != NULL && p->failures > 0;
		if (p != NULL && p->settling > 0)
			p->settling--;
		if (p != NULL && a->cls == 5 && p->settling_5xx > 0)
			p->settling_5xx--;
		n->m.out_delivered += a->ndelivered;
		n->m.out_failed += a->failed;
		n->m.out_retries += a->retries;
		n->m.clock_skew_receipts += a->skewed;
		/* the peer answered: a success, unless the answer itself was
		 * at fault (a server error, not receipts) */
		if (p != NULL && a->cls == 4 && a->bad > 0) {
			/* refused as a whole: 4.08 incomplete (a block-wise
			 * transfer cut by loss, PROTOCOL.md 9.2) or a body the
			 * peer could not read: the peer answers, so the link's
			 * loss, not an outage; retried smaller */
			tb_link_lost(&p->link);
			p->fails[TB_PF_ANSWER]++;
		} else if (p != NULL && a->cls == 5 && a->max_age >= 0) {
			peer_busy(n, p, x->epoch, a);
		} else if (p != NULL && (a->cls == 5 || a->bad > 0)) {
			char why[64];
			snprintf(why, sizeof(why), "answered %d.%02d, %llu message(s) not settled",
			         a->cls, a->code & 0x1f, (unsigned long long)a->bad);
			tb_peer_failed(n, p, x->epoch, TB_PF_ANSWER, why);
		} else if (p != NULL) {
			peer_not_busy(p);
			tb_peer_succeeded(n, p);
		}
		if (p != NULL && a->has_offset)
			tb_peer_clock(n, p, a->offset, a->skewed);
		for (size_t i = 0; i < x->count; i++) {
			if (!a->delivered[i])
				continue;
			tb_latency_done(n, x->ids[i]);
			tb_log_msg(TB_MSG_DELIVERED, x->ids[i], x->tos[i],
			           x->types ? x->types[i] : NULL, "receipt verified");
			if (a->notes != NULL && a->notes[i].corr[0] != '\0')
				n->out->delivered(n->out->delivered_ctx, a->notes[i].type,
				                  a->notes[i].corr);
		}
		if (a->relays || a->ndelivered < x->count || probe)
			tb_outbound_schedule(n, 0);
	}
	free_exchange(x);
	free(a->delivered);
	free(a->notes);
	free(a->data);
	free(a);
}

void
tb_outbound_on_delivered(struct tb_node *n,
                         void (*fn)(void *ctx, const char *type, const char *corr), void *ctx)
{
	n->out->delivered = fn;
	n->out->delivered_ctx = ctx;
}

void
tb_outbound_returned(void *ctx, const char *id, const char *type, const char *corr)
{
	struct tb_node *n = ctx;

	(void)type;
	(void)corr;
	n->m.out_delivered++;
	tb_latency_done(n, id);
}

void
tb_outbound_relays_queued(void *ctx, bool relayed)
{
	if (relayed)
		tb_outbound_schedule(ctx, 0);
}

void
tb_outbound_set_settler(struct tb_node *n, tb_settler_fn fn, void *ctx)
{
	n->out->settler = fn;
	n->out->settler_ctx = ctx;
}

/* Transport client: an answer to an exchange (true), or to no exchange of
 * this node's (false). */
static bool
response_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
	struct tb_node *n = ctx;
	struct tb_exchange *x;
	struct tb_answer *a = NULL;
	struct tb_peer *p;
	const uint8_t *data = NULL;
	size_t len = 0, off, total;

	if ((x = take_exchange(n, s, sent, recv)) == NULL)
		return false;
	coap_get_data_large(recv, &len, &data, &off, &total);
	if (n->out->settler == NULL || (a = calloc(1, sizeof(*a))) == NULL ||
	    (a->delivered = calloc(x->count, sizeof(*a->delivered))) == NULL ||
	    (n->out->delivered != NULL &&
	     (a->notes = calloc(x->count, sizeof(*a->notes))) == NULL) ||
	    (data != NULL && (a->data = malloc(len ? len : 1)) == NULL)) {
		/* its messages are due again after the answer timeout */
		log_warnx("answer of %s dropped: out of memory", x->hop);
		if (a != NULL) {
			free(a->delivered);
			free(a->notes);
			free(a);
		}
		finish_exchange(n, x);
		free_exchange(x);
		return true;
	}
	a->x = x;
	a->code = coap_pdu_get_code(recv);
	a->cls = COAP_RESPONSE_CLASS(a->code);
	a->deflated = tb_coap_uint_option(recv, COAP_OPTION_CONTENT_FORMAT) == TB_CF_JSON_DEFLATE;
	/* a server error with Max-Age: the peer's own word on when to come
	 * back (journal.full); without the option none is assumed */
	a->max_age = a->cls == 5 ? tb_coap_uint_option(recv, COAP_OPTION_MAXAGE) : -1;
	if ((a->has_data = data != NULL)) {
		memcpy(a->data, data, len);
		a->len = len;
	}
	exchange_answered(n, x, a->code, data != NULL ? total : 0);
	/* the session is free for the next exchange at once; the receipts
	 * are checked and journalled on the ingest thread, and until then a
	 * failing peer's probe is not over (plan_exchanges) */
	finish_exchange(n, x);
	if ((p = peer_of(n, x->hop)) != NULL) {
		p->settling++;
		p->settling_5xx += a->cls == 5;
	}
	n->out->settler(n->out->settler_ctx, a);
	tb_outbound_schedule(n, 0);
	return true;
}

static void
nack_cb(void *ctx, coap_session_t *s, const coap_pdu_t *sent, coap_nack_reason_t r)
{
	struct tb_node *n = ctx;
	struct tb_exchange *x = sent ? take_exchange(n, s, sent, NULL) : NULL;
	int64_t wait;

	if (x == NULL)
		return;
	/* the session is not released here, inside libcoap's callback: a
	 * failed session is found dead and replaced on its next use */
	finish_exchange(n, x);
	/* a failed handshake (TLS_FAILED, ICMP_ISSUE) was counted by the
	 * transport, in this epoch: the call below then counts nothing; a
	 * handshake lost on a lossy link is no lost exchange (link.h) and
	 * the transport's to judge */
	if (r != COAP_NACK_TLS_FAILED)
		exchange_failed(n, x,
		                r == COAP_NACK_ICMP_ISSUE ? TB_PF_UNREACHABLE : TB_PF_TIMEOUT,
		                "no answer (libcoap gave up on the exchange)");
	wait = peer_wait_s(peer_of(n, x->hop));
	log_debug("exchange with %s failed (nack %d): %zu message(s) retried in %lld s", x->hop,
	          (int)r, x->count, (long long)wait);
	if (tb_journal_begin(n->journal) == TB_OK) {
		for (size_t i = 0; i < x->count; i++) {
			if (retry(n->journal, x->ids[i], tb_now() + wait, "no answer from peer"))
				n->m.out_retries++;
		}
		/* if this fails, they are due again when their answer
		 * timeout ends */
		if (tb_journal_commit(n->journal) != TB_OK)
			log_warnx("journal commit failed: %s", tb_journal_diag(n->journal)->detail);
	}
	free_exchange(x);
	tb_outbound_schedule(n, wait * 1000);
}

/* One per-peer metric of the link estimate, with its # HELP and # TYPE. */
static void
link_gauge(struct tb_node *n, struct tb_buf *out, const char *name, const char *type,
           const char *help, double (*get)(const struct tb_node *, const struct tb_peer *))
{
	tb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		tb_buf_printf(out, "%s{peer=\"%s\"} %.6g\n", name, p->id, get(n, p));
}

static double
g_rtt(const struct tb_node *n, const struct tb_peer *p)
{
	(void)n;
	return p->link.srtt_ms / 1000;
}

static double
g_rttvar(const struct tb_node *n, const struct tb_peer *p)
{
	(void)n;
	return p->link.rttvar_ms / 1000;
}

static double
g_loss(const struct tb_node *n, const struct tb_peer *p)
{
	(void)n;
	return p->link.loss;
}

static double
g_batch(const struct tb_node *n, const struct tb_peer *p)
{
	return (double)tb_link_batch(&p->link, (int)n->cfg.batch_max, n->cfg.answer_timeout);
}

static double
g_ack(const struct tb_node *n, const struct tb_peer *p)
{
	int64_t ms = tb_link_ack_timeout_ms(&p->link);

	(void)n;
	return ms > 0 ? (double)ms / 1000 : 2.0; /* libcoap's default, RFC 7252 */
}

static double
g_lost(const struct tb_node *n, const struct tb_peer *p)
{
	(void)n;
	return (double)p->link.lost;
}

/* The link estimates (link.h, docs/ADMIN.md). */
static void
link_metrics(struct tb_node *n, struct tb_buf *out)
{
	link_gauge(n, out, "tongban_peer_rtt_seconds", "gauge",
	           "Smoothed round-trip time to the peer (RFC 6298; 0: not measured yet).",
	           g_rtt);
	link_gauge(n, out, "tongban_peer_rtt_variation_seconds", "gauge",
	           "Round-trip time variation to the peer (RFC 6298).", g_rttvar);
	link_gauge(n, out, "tongban_peer_loss_ratio", "gauge",
	           "Estimated share of round trips to the peer lost (retransmissions, lost "
	           "exchanges), 0..1.",
	           g_loss);
	link_gauge(n, out, "tongban_peer_batch_size", "gauge",
	           "Envelopes the next exchange with the peer carries at most (adapts to the "
	           "link, at most batch_max).",
	           g_batch);
	link_gauge(n, out, "tongban_peer_ack_timeout_seconds", "gauge",
	           "CoAP ACK_TIMEOUT of the sessions to the peer (from its round trips).", g_ack);
	link_gauge(n, out, "tongban_peer_exchanges_lost_total", "counter",
	           "Exchanges with the peer lost: no answer in time, or a body refused "
	           "as damaged on the way.",
	           g_lost);
}

void
tb_outbound_metrics(struct tb_node *n, struct tb_buf *out)
{
	int64_t now_ms = tb_now_ms();

	tb_buf_printf(out, "# HELP tongban_peer_up Whether the last attempt to reach the peer "
	                   "succeeded (1) or failed (0).\n# TYPE tongban_peer_up gauge\n");
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		tb_buf_printf(out, "tongban_peer_up{peer=\"%s\"} %d\n", p->id, p->up ? 1 : 0);
	tb_buf_printf(out, "# HELP tongban_peer_last_success_seconds Unix time of the last "
	                   "successful exchange with the peer (0: none since start).\n"
	                   "# TYPE tongban_peer_last_success_seconds gauge\n");
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		tb_buf_printf(out, "tongban_peer_last_success_seconds{peer=\"%s\"} %lld\n", p->id,
		              (long long)p->last_success);
	tb_buf_printf(out, "# HELP tongban_peer_failures_total Failed attempts to reach the peer, "
	                   "by reason.\n# TYPE tongban_peer_failures_total counter\n");
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		for (int r = 0; r < TB_PF_N; r++)
			tb_buf_printf(
			    out, "tongban_peer_failures_total{peer=\"%s\",reason=\"%s\"} %llu\n",
			    p->id, tb_peer_fail_name((enum tb_peer_fail)r),
			    (unsigned long long)p->fails[r]);
	tb_buf_printf(out, "# HELP tongban_peer_backoff_seconds Time until the next attempt to "
	                   "reach a failing peer (0: none pending).\n"
	                   "# TYPE tongban_peer_backoff_seconds gauge\n");
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		tb_buf_printf(out, "tongban_peer_backoff_seconds{peer=\"%s\"} %.3f\n", p->id,
		              p->open_until_ms > now_ms ? (double)(p->open_until_ms - now_ms) / 1000
		                                        : 0.0);
	tb_buf_printf(out, "# HELP tongban_peer_clock_offset_seconds The peer's clock minus this "
	                   "node's, from its last receipt (whole seconds).\n"
	                   "# TYPE tongban_peer_clock_offset_seconds gauge\n");
	for (struct tb_peer *p = n->peers; p != NULL; p = p->next)
		if (p->has_offset)
			tb_buf_printf(out, "tongban_peer_clock_offset_seconds{peer=\"%s\"} %lld\n",
			              p->id, (long long)p->clock_offset);
	link_metrics(n, out);
	tb_buf_printf(out,
	              "# HELP tongban_clock_skew_receipts_total Receipts accepted although "
	              "their time was outside clock_skew (the peer's clock is off).\n"
	              "# TYPE tongban_clock_skew_receipts_total counter\n"
	              "tongban_clock_skew_receipts_total %llu\n",
	              (unsigned long long)n->m.clock_skew_receipts);
}

/* The circuit, as the backoff rules of struct tb_peer make it: closed
 * (no failure), backoff (failures, waiting), open (the breaker's
 * failures, waiting), half-open (failed before, the next attempt probes). */
void
tb_outbound_peer_view(struct tb_node *n, const char *id, struct tb_peer_view *v)
{
	const struct tb_peer *p = peer_of(n, id);
	int64_t now_ms = tb_now_ms();

	memset(v, 0, sizeof(*v));
	v->circuit = "closed";
	if (p == NULL)
		return;
	v->known = true;
	v->up = p->up;
	v->last_handshake = p->last_handshake;
	v->last_success = p->last_success;
	v->failures = p->failures;
	if (p->failures > 0 && p->open_until_ms > now_ms) {
		v->circuit = p->failures >= TB_BREAKER_AFTER ? "open" : "backoff";
		v->backoff_s = (double)(p->open_until_ms - now_ms) / 1000;
	} else if (p->failures > 0) {
		v->circuit = "half-open";
	}
	if (p->failures > 0 || !p->up)
		snprintf(v->last_error, sizeof(v->last_error), "%s", p->report.why);
}
