/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inbound.c - the CoAP resources: POST /fed/msg (the inbound pipeline),
 * GET /fed/status, GET /fed/registry (observable).  docs/PROTOCOL.md
 * section 9.
 */
#include "flows.h"
#include "inbound.h"
#include "outbound.h"
#include "transport.h"
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../federation/tb_policy.h"
#include "../federation/tb_reg.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_deflate.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "journal.h"
#include "lifecycle.h"
#include "log.h"

#define MAX_BATCH 256

/* The answer given to a block-wise request, kept for its last block's
 * retransmission (PROTOCOL.md 9.2): libcoap 4.3.1 frees the reassembly
 * once the body is whole and keeps no answer, so when that answer is lost
 * the client's retransmitted last block would arrive alone, as if a
 * fragment of a new body.  It is answered with these bytes instead. */
#define REPLAY_SLOTS 16
#define REPLAY_KEEP_MS 300000 /* about CoAP's EXCHANGE_LIFETIME (247 s) */
struct replay {
	const coap_session_t *s; /* compared, never dereferenced */
	coap_mid_t mid;
	uint8_t token[8];
	size_t token_len;
	coap_pdu_code_t code;
	uint16_t cf;
	int maxage;
	int64_t at_ms;
	struct tb_buf body; /* as sent (deflated when it went deflated) */
};

/* The stage's state (the loop's only). */
struct tb_inbound {
	coap_resource_t *res_registry;
	struct tb_inbound_consumer *consumers; /* tb_inbound_add_consumer */
	size_t nconsumers;
	uint8_t sigcache[64][32]; /* verified signature tags (batch roots) */
	size_t sigcache_next;
	struct replay replay[REPLAY_SLOTS]; /* a ring */
	size_t replay_next;
};

/* A small ring of verified signature tags: a batch arrives together, so
 * its root is verified once and found here for the other envelopes. */
static bool
sig_known(void *ctx, const uint8_t tag[32])
{
	struct tb_node *n = ctx;

	for (size_t i = 0; i < sizeof(n->in->sigcache) / sizeof(n->in->sigcache[0]); i++)
		if (memcmp(n->in->sigcache[i], tag, 32) == 0)
			return true;
	return false;
}

static void
sig_remember(void *ctx, const uint8_t tag[32])
{
	struct tb_node *n = ctx;

	memcpy(n->in->sigcache[n->in->sigcache_next], tag, 32);
	n->in->sigcache_next =
	    (n->in->sigcache_next + 1) % (sizeof(n->in->sigcache) / sizeof(n->in->sigcache[0]));
}

/* CoAP response code for each refusal class (PROTOCOL.md 9.3). */
static coap_pdu_code_t
code_for(int err)
{
	switch (err) {
	case TB_E_TOO_LARGE: return COAP_RESPONSE_CODE(413);
	case TB_E_SIG_MISSING:
	case TB_E_SIG_ALG:
	case TB_E_SIG_KEYID:
	case TB_E_SIG_BAD:
	case TB_E_SIG_PROOF: return COAP_RESPONSE_CODE(401);
	case TB_E_EXPIRED:
	case TB_E_NOT_YET_VALID: return COAP_RESPONSE_CODE(412);
	case TB_E_TYPE_UNKNOWN: return COAP_RESPONSE_CODE(422);
	case TB_E_FLOW_STATE:
	case TB_E_FLOW_UNMATCHED: return COAP_RESPONSE_CODE(409);
	case TB_E_HOPS:
	case TB_E_NO_ROUTE:
	case TB_E_SERVICE:
	case TB_E_FORBIDDEN: return COAP_RESPONSE_CODE(403);
	case TB_E_CONTENT_FORMAT: return COAP_RESPONSE_CODE(415);
	case TB_E_INCOMPLETE: return COAP_RESPONSE_CODE(408);
	case TB_E_ENCODING: return COAP_RESPONSE_CODE(400);
	case TB_E_DRAINING:
	case TB_E_JOURNAL_FULL:
	case TB_E_JOURNAL_DOWN:
	case TB_E_RECOVERY:
	case TB_E_MEMBER_SUSPENDED:
	case TB_E_MEMBER_REVOKED: return COAP_RESPONSE_CODE(503);
	case TB_E_NOMEM:
	case TB_E_IO:
	case TB_E_CRYPTO: return COAP_RESPONSE_CODE(500);
	default: return COAP_RESPONSE_CODE(400);
	}
}

/* Appends {"error":reason,"detail":...[,"id":...]} to out. */
static void
error_json(struct tb_buf *out, const struct tb_diag *d, const char *id)
{
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *o = doc ? tb_json_new_object(doc) : NULL;
	bool detail =
	    d->detail[0] != '\0' && tb_utf8_valid((const uint8_t *)d->detail, strlen(d->detail));

	/* (tb_json_set refuses a NULL value, so one check covers both calls) */
	if (o == NULL ||
	    tb_json_set(doc, o, "error",
	                tb_json_new_string(doc, tb_err_reason(d->code),
	                                   strlen(tb_err_reason(d->code)))) != TB_OK ||
	    (detail &&
	     tb_json_set(doc, o, "detail", tb_json_new_string(doc, d->detail, strlen(d->detail))) !=
	         TB_OK) ||
	    (id != NULL &&
	     tb_json_set(doc, o, "id", tb_json_new_string(doc, id, strlen(id))) != TB_OK))
		tb_buf_adds(out, "{\"error\":\"nomem\"}");
	else if (tb_json_canon(o, NULL, out) != TB_OK) {
		/* out of memory: out's sticky error tells its consumer */
	}
	tb_json_doc_free(doc);
}

static void
release_buf(coap_session_t *s, void *p)
{
	(void)s;
	struct tb_buf *b = p;
	tb_buf_free(b);
	free(b);
}

/* Whether req's body came in several blocks: a Block1 transfer carries
 * Size1 (PROTOCOL.md 9.2; libcoap 4.3.1 reassembles only with it), which
 * libcoap leaves on the PDU it hands over whole. */
static bool
came_in_blocks(const coap_pdu_t *req)
{
	coap_opt_iterator_t oi;

	return coap_check_option(req, COAP_OPTION_SIZE1, &oi) != NULL;
}

/* The replay slot of the request with req's session, MID and token, or
 * NULL. */
static struct replay *
replay_find(struct tb_inbound *in, const coap_session_t *s, const coap_pdu_t *req)
{
	coap_bin_const_t tok = coap_pdu_get_token(req);
	int64_t now = tb_now_ms();

	for (size_t i = 0; i < REPLAY_SLOTS; i++) {
		struct replay *p = &in->replay[i];
		if (p->s == s && p->mid == coap_pdu_get_mid(req) && p->token_len == tok.length &&
		    memcmp(p->token, tok.s, tok.length) == 0 && now - p->at_ms < REPLAY_KEEP_MS)
			return p;
	}
	return NULL;
}

/* Keeps the answer (code, content-format cf, Max-Age maxage, bytes b)
 * to block-wise request req for its last block's retransmission. */
static void
replay_keep(struct tb_node *n, const coap_session_t *s, const coap_pdu_t *req,
            coap_pdu_code_t code, uint16_t cf, int maxage, const struct tb_buf *b)
{
	coap_bin_const_t tok = coap_pdu_get_token(req);
	struct replay *p = &n->in->replay[n->in->replay_next];

	if (tok.length > sizeof(p->token) || !came_in_blocks(req))
		return;
	n->in->replay_next = (n->in->replay_next + 1) % REPLAY_SLOTS;
	tb_buf_reset(&p->body);
	if (tb_buf_add(&p->body, b->data, b->len) != TB_OK) {
		tb_buf_free(&p->body);
		p->s = NULL;
		return;
	}
	p->s = s;
	p->mid = coap_pdu_get_mid(req);
	memcpy(p->token, tok.s, tok.length);
	p->token_len = tok.length;
	p->code = code;
	p->cf = cf;
	p->maxage = maxage;
	p->at_ms = tb_now_ms();
}

/* The answer when the real one cannot be built whole (it is not sent in
 * part): 5.00 with the error object of PROTOCOL.md 9, from static bytes
 * (nothing to allocate); the sender retries. */
static void
respond_nomem(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
              coap_pdu_t *resp)
{
	static const char text[] = "{\"error\":\"nomem\"}";

	coap_pdu_set_code(resp, COAP_RESPONSE_CODE(500));
	coap_add_data_large_response(r, s, req, resp, q, COAP_MEDIATYPE_APPLICATION_JSON, -1, 0,
	                             sizeof(text) - 1, (const uint8_t *)text, NULL, NULL);
}

/* Answers with code and a JSON body (copied), deflated when the request
 * asked for it (Accept: 11050) and it is worth it; with a Max-Age option
 * of maxage seconds unless it is -1. */
static void
respond_age(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
            coap_pdu_t *resp, coap_pdu_code_t code, const struct tb_buf *body, bool deflate,
            int maxage)
{
	struct tb_buf *copy = malloc(sizeof(*copy));
	struct tb_diag d;
	uint16_t cf = COAP_MEDIATYPE_APPLICATION_JSON;

	if (copy == NULL || tb_buf_error(body) != TB_OK) {
		free(copy);
		respond_nomem(r, s, req, q, resp);
		return;
	}
	coap_pdu_set_code(resp, code);
	tb_buf_init(copy);
	if (deflate && body->len > 64 && tb_deflate(body->data, body->len, copy, &d) == TB_OK) {
		cf = TB_CF_JSON_DEFLATE;
	} else {
		tb_buf_reset(copy);
		if (tb_buf_add(copy, body->data, body->len) != TB_OK) {
			tb_buf_free(copy);
			free(copy);
			respond_nomem(r, s, req, q, resp);
			return;
		}
	}
	replay_keep(coap_get_app_data(coap_session_get_context(s)), s, req, code, cf, maxage, copy);
	coap_add_data_large_response(r, s, req, resp, q, cf, maxage, 0, copy->len, copy->data,
	                             release_buf, copy);
}

static void
respond_as(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
           coap_pdu_t *resp, coap_pdu_code_t code, const struct tb_buf *body, bool deflate)
{
	respond_age(r, s, req, q, resp, code, body, deflate, -1);
}

static void
respond(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
        coap_pdu_t *resp, coap_pdu_code_t code, const struct tb_buf *body)
{
	respond_as(r, s, req, q, resp, code, body, false);
}

static void
respond_error(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
              coap_pdu_t *resp, const struct tb_diag *d)
{
	struct tb_buf b;

	tb_buf_init(&b);
	error_json(&b, d, NULL);
	respond(r, s, req, q, resp, code_for(d->code), &b);
	tb_buf_free(&b);
}

/* Answers a retransmitted last block of a block-wise request with the
 * answer kept for it (replay_keep); false when none is kept. */
static bool
replay(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
       const coap_string_t *q, coap_pdu_t *resp)
{
	struct replay *p = replay_find(n->in, s, req);
	struct tb_buf *copy;

	if (p == NULL || (copy = malloc(sizeof(*copy))) == NULL)
		return false;
	tb_buf_init(copy);
	if (tb_buf_add(copy, p->body.data, p->body.len) != TB_OK) {
		tb_buf_free(copy);
		free(copy);
		return false;
	}
	n->m.answers_replayed++;
	log_debug("answered a retransmitted last block (MID %d) with its kept answer",
	          (int)p->mid);
	coap_pdu_set_code(resp, p->code);
	coap_add_data_large_response(r, s, req, resp, q, p->cf, p->maxage, 0, copy->len,
	                             copy->data, release_buf, copy);
	return true;
}

/* A request refused as a whole (format, size, draining, journal): counted
 * once with the refused envelopes. */
static void
refuse_whole(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
             const coap_string_t *q, coap_pdu_t *resp, const struct tb_diag *d)
{
	n->m.in_refused++;
	log_info("refused a request: %s%s%s", tb_err_reason(d->code), d->detail[0] ? ": " : "",
	         d->detail);
	respond_error(r, s, req, q, resp, d);
}

/* The journal's last failure as the exchange's refusal: journal.full
 * when its disk has no room, journal.unavailable when its database
 * cannot be reached (PostgreSQL), else io. */
static int
journal_err(const struct tb_node *n)
{
	int code = tb_journal_diag(n->journal)->code;

	return code == TB_E_JOURNAL_FULL || code == TB_E_JOURNAL_DOWN ? code : TB_E_IO;
}

/* An exchange of count envelopes the journal had no room for: 5.03
 * journal.full with Max-Age full_retry, the sender's cue to hold every
 * message for this node that long (PROTOCOL.md 9.6); lifecycle.c keeps
 * the condition (one log line, /healthz, the count), not one line per
 * refusal. */
static void
refuse_full(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
            const coap_string_t *q, coap_pdu_t *resp, const struct tb_diag *d, size_t count)
{
	struct tb_buf b;

	n->m.in_refused++;
	tb_lifecycle_store_full(n, count, d->detail);
	tb_buf_init(&b);
	error_json(&b, d, NULL);
	respond_age(r, s, req, q, resp, COAP_RESPONSE_CODE(503), &b, false,
	            (int)n->cfg.full_retry);
	tb_buf_free(&b);
}

/* An exchange refused because the journal's database cannot be reached
 * (PostgreSQL down or out of reach): 5.03 journal.unavailable with
 * Max-Age full_retry, the same cue as journal.full (PROTOCOL.md 9.6), so
 * that senders back off instead of retrying into the outage; each
 * refusal is logged (refuse_whole) and counted (n->m.in_down). */
static void
refuse_down(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
            const coap_string_t *q, coap_pdu_t *resp, const struct tb_diag *d, size_t count)
{
	struct tb_buf b;

	n->m.in_refused++;
	n->m.in_down += count;
	log_info("refused a request: %s: %s", tb_err_reason(d->code), d->detail);
	tb_buf_init(&b);
	error_json(&b, d, NULL);
	respond_age(r, s, req, q, resp, COAP_RESPONSE_CODE(503), &b, false, (int)n->cfg.full_retry);
	tb_buf_free(&b);
}

/* One envelope of an exchange and what became of it. */
struct item {
	struct tb_env *env;
	struct tb_env *receipt;
	struct tb_diag d;
	struct tb_buf out;     /* receipt bytes or error JSON */
	struct tb_buf fwd;     /* K_RELAY: the envelope with this hub on its path */
	struct tb_buf compact; /* the receipt without its proof (9.3) */
	int kind;
	bool dup;
	char digest[65];
	char id[33]; /* the id, when readable (also of a refused envelope) */
};

enum {
	K_LOCAL,  /* for this node's own systems: the inbox */
	K_RELAY,  /* for a member this hub serves: forwarded */
	K_RETURN, /* a recipient's receipt for a message this node sent via a hub */
};

/* Checks beyond the envelope itself, and what to do with it: the carrier
 * (DTLS peer) must be the sender or the last relay; an envelope for this
 * node goes to its inbox (policy permitting) or, when it is a recipient's
 * receipt travelling back through a hub, settles a message we sent; a hub
 * relays envelopes for the members it serves, adding itself to the path. */
static int
route_item(struct tb_node *n, struct item *it, const char *peer, struct tb_diag *d)
{
	struct tb_env *e = it->env;
	const char *to = tb_env_to(e), *me = n->cfg.member_id;
	size_t plen = tb_env_path_len(e), mi;
	const char *carrier = plen > 0 ? tb_env_path_at(e, plen - 1) : tb_env_from(e);
	char hop[16];
	coap_address_t addr;
	int rc;

	/* the carrier is the sender, or for a relayed message its last relay */
	if (peer == NULL || strcmp(peer, carrier) != 0)
		return tb_diag_set(d, TB_E_FORBIDDEN, TB_DIAG_NOPOS,
		                   "%s %s does not match the DTLS peer %s",
		                   plen > 0 ? "last relay" : "sender", carrier, peer ? peer : "(none)");
	if (to != NULL && strcmp(to, me) == 0) {
		if (strcmp(tb_env_type(e), "receipt") == 0 && tb_env_corr(e) != NULL && plen > 0) {
			it->kind = K_RETURN;
			return TB_OK;
		}
		it->kind = K_LOCAL;
		/* a request must be for a service this member offers */
		if (tb_env_service(e) != NULL && tb_flow_role(tb_env_type(e)) == TB_FLOW_REQUEST &&
		    !tb_node_offers(n, me, tb_env_service(e)))
			return tb_diag_set(d, TB_E_SERVICE, TB_DIAG_NOPOS,
			                   "%s does not offer service %s", me, tb_env_service(e));
		if (tb_env_service(e) != NULL && n->reg != NULL) {
			struct tb_policy_decision pd;
			if (tb_policy_check(n->reg, tb_env_from(e), tb_env_service(e), &pd) !=
			        TB_OK ||
			    !pd.allow)
				return tb_diag_set(d, TB_E_FORBIDDEN, TB_DIAG_NOPOS,
				                   "policy denies %s calling %s (rule %ld)",
				                   tb_env_from(e), tb_env_service(e), pd.rule);
		}
		return TB_OK;
	}
	if (to == NULL || (mi = tb_reg_find_member(n->reg, me)) == TB_REG_NONE ||
	    tb_reg_member_role(n->reg, mi) != TB_ROLE_HUB)
		return tb_diag_set(d, TB_E_FORBIDDEN, TB_DIAG_NOPOS, "addressed to %s, not to %s",
		                   to ? to : "(route)", me);
	/* a hub relays: the next hop must be another node, not back */
	if (tb_node_next_hop(n, to, hop, sizeof(hop), &addr, d) != TB_OK)
		return d->code;
	if (strcmp(hop, me) == 0)
		return tb_diag_set(d, TB_E_HOPS, TB_DIAG_NOPOS, "%s has no endpoint to relay to",
		                   to);
	if (strcmp(hop, carrier) == 0)
		return tb_diag_set(d, TB_E_HOPS, TB_DIAG_NOPOS, "relay loop back to %s", carrier);
	if ((rc = tb_env_add_hop(e, me)) != TB_OK)
		return tb_diag_set(d, rc == TB_E_HOPS ? TB_E_HOPS : rc, TB_DIAG_NOPOS,
		                   "cannot relay: hop limit %d reached or loop", tb_env_hops(e));
	it->kind = K_RELAY;
	return tb_env_serialize(e, &it->fwd) == TB_OK
	           ? TB_OK
	           : tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
}

static struct tb_env *
make_receipt(struct tb_node *n, struct tb_env *e, const char *digest, const char *status,
             struct tb_diag *d)
{
	struct tb_env_fields f;
	char body[160];

	snprintf(body, sizeof(body), "{\"digest\":\"%s\",\"received\":%lld,\"status\":\"%s\"}",
	         digest, (long long)tb_now(), status);
	memset(&f, 0, sizeof(f));
	f.type = "receipt";
	f.from = n->cfg.member_id;
	f.to = tb_env_from(e);
	f.corr = tb_env_id(e);
	f.body = (const uint8_t *)body;
	f.body_len = strlen(body);
	f.created = tb_now();
	f.ttl = TB_ENV_DEFAULT_TTL;
	f.hops = TB_ENV_MAX_HOPS;
	return tb_env_create(&f, d);
}

/* Queues a relayed envelope (this hub now on its path) for its
 * recipient under the original id, in the exchange's transaction. */
static bool
relay_queue(struct tb_node *n, const struct tb_env *e, const struct tb_journal_msg *in,
            const struct tb_buf *fwd, bool *relayed)
{
	struct tb_journal_msg m = *in;

	m.to = tb_env_to(e);
	m.receipt = NULL;
	m.receipt_len = 0;
	m.envelope = fwd->data;
	m.envelope_len = fwd->len;
	/* queued with its audit entry, or neither */
	int rc = tb_journal_outbound_put_audit(n->journal, &m, tb_now(), tb_now(), "relayed");
	if (rc == TB_OK) {
		*relayed = true;
		return true;
	}
	if (rc == TB_E_REPLAY) /* already queued by an earlier copy */
		return true;
	log_warnx("relay of %s to %s not queued: %s", m.id, m.to,
	          tb_journal_diag(n->journal)->detail);
	return false;
}

/* A recipient's receipt that came back through a hub: it settles the
 * message this node sent when it names that message, comes from its
 * recipient and carries its digest. */
static void
settle_return(struct tb_node *n, const struct tb_env *r, const uint8_t *bytes, size_t len)
{
	struct tb_journal_status st;
	const struct tb_json *dg = tb_json_get(tb_env_body(r), "digest");
	const char *dgs = dg ? tb_json_string(dg, NULL) : NULL;
	const char *corr = tb_env_corr(r);

	if (tb_journal_outbound_status(n->journal, corr, &st, NULL) != TB_OK ||
	    strcmp(st.from, n->cfg.member_id) != 0 || strcmp(st.to, tb_env_from(r)) != 0 ||
	    dgs == NULL || strcmp(dgs, st.digest) != 0) {
		log_warnx("receipt %s from %s names no message of ours; ignored", tb_env_id(r),
		          tb_env_from(r));
		return;
	}
	if (st.state != TB_JOURNAL_QUEUED)
		return;
	/* recorded with its audit entry, or not at all (the receipt comes
	 * again: the recipient answers the resent message with it) */
	bool fresh;
	if (tb_journal_outbound_delivered_audit(n->journal, corr, bytes, len, tb_now(), st.digest,
	                                        st.to, &fresh) != TB_OK) {
		log_warnx("delivery of %s not recorded: %s", corr,
		          tb_journal_diag(n->journal)->detail);
		return;
	}
	if (!fresh) /* delivered between the status read and now */
		return;
	tb_log_msg(TB_MSG_DELIVERED, corr, st.to, st.type,
	           "receipt verified, returned through a hub");
	for (size_t k = 0; k < n->in->nconsumers; k++)
		if (n->in->consumers[k].returned != NULL)
			n->in->consumers[k].returned(n->in->consumers[k].ctx, corr, st.type,
			                             st.corr);
}

/* Whether the request's query asks for a compact answer (9.3). */
static bool
wants_compact(const coap_string_t *q)
{
	size_t k = strlen(TB_COMPACT_QUERY);

	for (size_t i = 0; q != NULL && i + k <= q->length;) {
		size_t e = i;
		while (e < q->length && q->s[e] != '&')
			e++;
		if (e - i == k && memcmp(q->s + i, TB_COMPACT_QUERY, k) == 0)
			return true;
		i = e + 1;
	}
	return false;
}

/* Why a body starting with '[' is no batch (PROTOCOL.md 9.3): its JSON
 * fault (2.1; one level deeper than an envelope allows), else well-formed
 * JSON that is not an array of 1..MAX_BATCH objects: batch.invalid. */
static void
batch_fault(const uint8_t *data, size_t len, struct tb_diag *d)
{
	const struct tb_json_limits lim = {len, TB_ENV_MAX_DEPTH + 1};
	struct tb_json_doc *doc = tb_json_parse(data, len, &lim, d);

	if (doc != NULL)
		tb_diag_set(d, TB_E_BATCH, TB_DIAG_NOPOS,
		            "a batch is a JSON array of 1..%d envelope objects", MAX_BATCH);
	tb_json_doc_free(doc);
}

/* The body of a POST /fed/msg as count envelopes at data + offs[i],
 * lens[i] (inflated into plain when it came deflated; *batch when it is
 * an array).  false when the request is refused as a whole (answered). */
static bool
read_body(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
          const coap_string_t *q, coap_pdu_t *resp, struct tb_buf *plain, struct tb_diag *d,
          const uint8_t **datap, size_t *offs, size_t *lens, int *countp, bool *batchp)
{
	const uint8_t *data = NULL;
	size_t len = 0, off = 0, total = 0;
	long cf;
	int count;
	bool batch;

	if (n->draining) {
		tb_diag_set(d, TB_E_DRAINING, TB_DIAG_NOPOS, "node is shutting down");
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	if (!tb_node_exchanging(n)) {
		/* recovery, suspended, revoked: no message is taken; the sender
		 * keeps it and tries again later (PROTOCOL.md 9.3) */
		tb_diag_set(d, tb_node_state_err(n), TB_DIAG_NOPOS, "%s",
		            tb_err_str(tb_node_state_err(n)));
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	cf = tb_coap_uint_option(req, COAP_OPTION_CONTENT_FORMAT);
	if (cf != COAP_MEDIATYPE_APPLICATION_JSON && cf != TB_CF_JSON_DEFLATE) {
		tb_diag_set(d, TB_E_CONTENT_FORMAT, TB_DIAG_NOPOS,
		            "content-format must be application/json (50) or its deflate "
		            "coding (11050)");
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	coap_get_data_large(req, &len, &data, &off, &total);
	if (off != 0 || len < total) {
		/* one block of a body libcoap holds no transfer for: the last
		 * block again, its answer lost (answered again, byte for byte),
		 * or a stray block (4.08: the sender sends the body again) */
		if (replay(n, r, s, req, q, resp))
			return false;
		tb_diag_set(d, TB_E_INCOMPLETE, TB_DIAG_NOPOS,
		            "block at offset %zu of a body not being received", off);
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	if (total > (size_t)n->cfg.max_message_size || len > (size_t)n->cfg.max_message_size) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "%zu bytes, limit %lld", total,
		            (long long)n->cfg.max_message_size);
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	/* the limit holds for the inflated body too, checked while inflating */
	if (cf == TB_CF_JSON_DEFLATE && data != NULL &&
	    tb_inflate(data, len, (size_t)n->cfg.max_message_size, plain, d) != TB_OK) {
		if (d->code == TB_E_TOO_LARGE)
			snprintf(d->detail, sizeof(d->detail),
			         "body inflates to more than %lld bytes",
			         (long long)n->cfg.max_message_size);
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	if (cf == TB_CF_JSON_DEFLATE && data != NULL) {
		data = plain->data;
		len = plain->len;
	}
	if (data == NULL || len == 0) {
		tb_diag_set(d, TB_E_JSON_SYNTAX, 0, "empty body");
		refuse_whole(n, r, s, req, q, resp, d);
		return false;
	}
	batch = false;
	for (size_t i = 0; i < len; i++)
		if (data[i] != ' ' && data[i] != '\n' && data[i] != '\r' && data[i] != '\t') {
			batch = data[i] == '[';
			break;
		}
	if (batch) {
		count = tb_env_split_batch(data, len, offs, lens, MAX_BATCH);
		if (count < 1) {
			batch_fault(data, len, d);
			refuse_whole(n, r, s, req, q, resp, d);
			return false;
		}
	} else {
		count = 1;
		offs[0] = 0;
		lens[0] = len;
	}
	*datap = data;
	*countp = count;
	*batchp = batch;
	return true;
}

/* The id of an envelope that failed to open, when it can be read
 * (PROTOCOL.md 9.3): the element is I-JSON (2.1), an object, and its "id"
 * is a string of 32 lowercase hex digits; else id is left empty. */
static void
readable_id(const uint8_t *data, size_t len, char id[33])
{
	struct tb_json_doc *doc = tb_json_parse(data, len, NULL, NULL);
	const struct tb_json *v = doc ? tb_json_get(tb_json_root(doc), "id") : NULL;
	size_t n = 0;
	const char *s = v ? tb_json_string(v, &n) : NULL;

	if (s != NULL && n == 32 && tb_hex_valid(s, n))
		memcpy(id, s, 33);
	tb_json_doc_free(doc);
}

/* Opens each envelope of the exchange, routes it and makes its receipt
 * (rc_envs[0..return) receive them, for one batch signature). */
static int
open_items(struct tb_node *n, const char *peer, const uint8_t *data, const size_t *offs,
           const size_t *lens, int count, struct item *it, struct tb_env **rc_envs)
{
	int nrc = 0;

	struct tb_env_open_opts o = {tb_node_lookup_sign,  n,         tb_now(),
	                             n->cfg.clock_skew,    sig_known, sig_remember,
	                             &n->m.recanonicalised};
	for (int i = 0; i < count; i++) {
		uint8_t dg[32];
		tb_buf_init(&it[i].out);
		tb_buf_init(&it[i].fwd);
		tb_buf_init(&it[i].compact);
		tb_diag_clear(&it[i].d);
		if (tb_env_open(data + offs[i], lens[i], &o, &it[i].env, &it[i].d) != TB_OK) {
			readable_id(data + offs[i], lens[i], it[i].id);
			continue;
		}
		memcpy(it[i].id, tb_env_id(it[i].env), 33);
		if (route_item(n, &it[i], peer, &it[i].d) != TB_OK)
			continue;
		if (tb_env_digest(it[i].env, dg) != TB_OK) {
			tb_diag_set(&it[i].d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			continue;
		}
		tb_hex_encode(dg, 32, it[i].digest);
		if ((it[i].receipt = make_receipt(n, it[i].env, it[i].digest,
		                                  it[i].kind == K_RELAY ? "relayed" : "accepted",
		                                  &it[i].d)) == NULL)
			continue;
		rc_envs[nrc++] = it[i].receipt;
	}
	return nrc;
}

/* Journals one opened envelope (envelope, envelope_len: as received)
 * with its receipt, inside the exchange's transaction: a new message to
 * the inbox after its flow checks, a relay to the journal's queue first
 * (*relayed), a retransmission answered with its original receipt.
 * False when the message was stored without its audit entry (or left in
 * the inbox): the exchange must then be rolled back whole. */
static bool
journal_item(struct tb_node *n, struct item *it, const uint8_t *envelope, size_t envelope_len,
             const char *peer, bool *relayed)
{
	struct tb_journal_msg m;
	struct tb_buf orig;
	int jr;

	if (it->receipt == NULL)
		return true;
	if (tb_env_serialize(it->receipt, &it->out) != TB_OK) {
		tb_diag_set(&it->d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		tb_env_free(it->receipt);
		it->receipt = NULL;
		return true;
	}
	memset(&m, 0, sizeof(m));
	m.id = tb_env_id(it->env);
	m.from = tb_env_from(it->env);
	m.to = n->cfg.member_id;
	m.type = tb_env_type(it->env);
	m.service = tb_env_service(it->env);
	m.corr = tb_env_corr(it->env);
	m.digest = it->digest;
	m.created = tb_env_created(it->env);
	m.expires = tb_env_expires(it->env);
	m.envelope = envelope;
	m.envelope_len = envelope_len;
	m.receipt = it->out.data;
	m.receipt_len = it->out.len;
	tb_buf_init(&orig);
	/* flows (body, pairing, case lifecycle) for a new message to this
	 * node's systems; a retransmission gets its original receipt */
	if (it->kind == K_LOCAL &&
	    tb_journal_inbound_receipt(n->journal, m.id, &orig) == TB_E_NOTFOUND &&
	    tb_flows_inbound(n, it->env, &it->d) != TB_OK) {
		tb_env_free(it->receipt);
		it->receipt = NULL;
		tb_buf_free(&orig);
		return true;
	}
	/* a hub queues the relay first: if that fails, nothing is
	 * recorded and the sender is told to retry (io), rather than
	 * answered "relayed" for a message that was not kept */
	tb_buf_reset(&orig);
	if (it->kind == K_RELAY &&
	    tb_journal_inbound_receipt(n->journal, m.id, &orig) == TB_E_NOTFOUND &&
	    !relay_queue(n, it->env, &m, &it->fwd, relayed)) {
		tb_diag_set(&it->d, journal_err(n), TB_DIAG_NOPOS, "relay not queued");
		tb_env_free(it->receipt);
		it->receipt = NULL;
		tb_buf_free(&orig);
		return true;
	}
	tb_buf_reset(&orig);
	jr = tb_journal_inbound_put(n->journal, &m, &orig);
	if (jr == TB_E_REPLAY && orig.len == 0) {
		/* the id was used before for a different message: a replay
		 * or a forgery, never a retransmission */
		tb_diag_set(&it->d, TB_E_REPLAY, TB_DIAG_NOPOS,
		            "id %s already used for another message", m.id);
		tb_env_free(it->receipt);
		it->receipt = NULL;
	} else if (jr == TB_E_REPLAY) {
		it->dup = true;
		tb_buf_reset(&it->out);
		if (tb_buf_add(&it->out, orig.data, orig.len) != TB_OK) {
			tb_diag_set(&it->d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			tb_env_free(it->receipt);
			it->receipt = NULL;
		}
	} else if (jr != TB_OK) {
		tb_diag_set(&it->d, journal_err(n), TB_DIAG_NOPOS, "journal write failed: %s",
		            tb_journal_diag(n->journal)->detail);
		tb_env_free(it->receipt);
		it->receipt = NULL;
	} else if (tb_journal_audit_append(n->journal, 'i', m.id, m.digest, peer, tb_now(),
	                                   it->kind == K_RELAY ? "relay-received" : "received") !=
	               TB_OK ||
	           /* not for this city's systems: kept for idempotency only */
	           (it->kind != K_LOCAL && tb_journal_inbox_ack(n->journal, m.id) != TB_OK)) {
		tb_buf_free(&orig);
		return false;
	} else if (it->kind == K_RETURN) {
		settle_return(n, it->env, m.envelope, m.envelope_len);
	}
	tb_buf_free(&orig);
	return true;
}

/* The exchange's duplicate lookups in one round trip, and the case
 * states its flows read in another, inside its transaction
 * (tb_journal_inbound_prefetch, tb_flows_prefetch); false when the
 * journal failed.  Without memory the lookups are made one by one. */
static bool
prefetch_items(struct tb_node *n, const struct item *it, int count)
{
	const char **ids = calloc(count > 0 ? (size_t)count : 1, sizeof(*ids));
	const struct tb_env **local = calloc(count > 0 ? (size_t)count : 1, sizeof(*local));
	size_t k = 0, nl = 0;
	int rc = TB_OK;

	for (int i = 0; ids != NULL && local != NULL && i < count; i++) {
		if (it[i].receipt == NULL)
			continue;
		ids[k++] = tb_env_id(it[i].env);
		if (it[i].kind == K_LOCAL) /* the ones whose flows run */
			local[nl++] = it[i].env;
	}
	if (k > 0)
		rc = tb_journal_inbound_prefetch(n->journal, ids, k);
	if ((rc == TB_OK || rc == TB_E_ARG) && nl > 0) /* TB_E_ARG: an id it cannot look up */
		rc = tb_flows_prefetch(n->journal, n->cfg.member_id, local, nl, false);
	free(ids);
	free(local);
	return rc == TB_OK || rc == TB_E_ARG;
}

/* Journals the exchange's envelopes in one transaction (journal_item).
 * False when nothing of it is kept (d says why; the sender retries):
 * the journal failed, or had no room for one of them (the whole
 * exchange is then refused with journal.full, not its envelopes one by
 * one: the others would not fit either). */
static bool
journal_all(struct tb_node *n, struct item *it, int count, const uint8_t *data,
            const size_t *offs, const size_t *lens, const char *peer, bool *relayed,
            struct tb_diag *d)
{
	bool stored = false;

	if (tb_journal_begin(n->journal) != TB_OK) {
		tb_diag_set(d, journal_err(n), TB_DIAG_NOPOS, "journal unavailable: %s",
		            tb_journal_diag(n->journal)->detail);
		return false;
	}
	if (!prefetch_items(n, it, count)) {
		tb_diag_set(d, journal_err(n), TB_DIAG_NOPOS, "journal unavailable: %s",
		            tb_journal_diag(n->journal)->detail);
		if (tb_journal_rollback(n->journal) != TB_OK)
			log_warnx("journal rollback: %s", tb_journal_diag(n->journal)->detail);
		return false;
	}
	for (int i = 0; i < count; i++) {
		if (!journal_item(n, &it[i], data + offs[i], lens[i], peer, relayed))
			tb_diag_set(d, journal_err(n), TB_DIAG_NOPOS, "journal write failed: %s",
			            tb_journal_diag(n->journal)->detail);
		else if (it[i].receipt == NULL && it[i].d.code == TB_E_JOURNAL_FULL)
			*d = it[i].d;
		else
			continue;
		/* nothing of the exchange is kept */
		if (tb_journal_rollback(n->journal) != TB_OK)
			log_warnx("journal rollback: %s", tb_journal_diag(n->journal)->detail);
		return false;
	}
	if (tb_journal_commit(n->journal) != TB_OK) {
		tb_diag_set(d, journal_err(n), TB_DIAG_NOPOS, "journal commit failed: %s",
		            tb_journal_diag(n->journal)->detail);
		return false;
	}
	for (int i = 0; i < count; i++)
		stored = stored || (it[i].receipt != NULL && !it[i].dup);
	if (stored) /* the disk had room for it */
		tb_lifecycle_store_ok(n);
	return true;
}

/* After the exchange's commit: what arrived goes to the consumers, and is
 * counted and logged. */
static void
hand_on(struct tb_node *n, struct item *it, int count, bool relayed, const char *peer)
{
	/* the consumers: relays to send, messages for local systems */
	for (size_t k = 0; k < n->in->nconsumers; k++)
		if (n->in->consumers[k].committed != NULL)
			n->in->consumers[k].committed(n->in->consumers[k].ctx, relayed);
	for (int i = 0; i < count; i++)
		for (size_t k = 0; k < n->in->nconsumers; k++)
			if (it[i].receipt != NULL && !it[i].dup && it[i].kind == K_LOCAL &&
			    n->in->consumers[k].received != NULL)
				n->in->consumers[k].received(n->in->consumers[k].ctx, it[i].env);
	for (int i = 0; i < count; i++) {
		if (it[i].receipt != NULL)
			tb_log_msg(TB_MSG_RECEIVED, tb_env_id(it[i].env), tb_env_from(it[i].env),
			           tb_env_type(it[i].env), "%s",
			           it[i].dup                ? "duplicate"
			           : it[i].kind == K_RELAY  ? "relayed"
			           : it[i].kind == K_RETURN ? "receipt returned"
			                                    : "stored");
		if (it[i].receipt != NULL)
			it[i].dup ? n->m.in_dup++ : n->m.in_ok++;
		else
			n->m.in_refused++;
		if (it[i].receipt == NULL) {
			const char *id = it[i].id;
			log_info("refused message %s from peer %s: %s%s%s", id[0] ? id : "-",
			         peer ? peer : "-", tb_err_reason(it[i].d.code),
			         it[i].d.detail[0] ? ": " : "", it[i].d.detail);
		}
	}
}

/* The answer to a batch: a JSON array, element i the receipt or error of
 * envelope i. */
static void
answer_batch(struct tb_node *n, coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
             const coap_string_t *q, coap_pdu_t *resp, struct item *it, int count, int nrc,
             bool accept_deflate)
{
	struct tb_buf body;

	tb_buf_init(&body);
	/* A sender that rebuilds proofs gets the receipts of this exchange
	 * without them, when all members of their batch are in the answer
	 * (none was dropped after sealing or answered as a duplicate). */
	bool compact = nrc > 1 && wants_compact(q);
	int fresh = 0;
	for (int i = 0; compact && i < count; i++)
		fresh += it[i].receipt != NULL && !it[i].dup;
	compact = compact && fresh == nrc;
	for (int i = 0; compact && i < count; i++) {
		if (it[i].receipt == NULL)
			continue;
		compact = tb_env_serialize_compact(it[i].receipt, &it[i].compact) == TB_OK;
	}
	tb_buf_addc(&body, '[');
	for (int i = 0; i < count; i++) {
		if (i > 0)
			tb_buf_addc(&body, ',');
		if (it[i].receipt != NULL && compact)
			tb_buf_add(&body, it[i].compact.data, it[i].compact.len);
		else if (it[i].receipt != NULL)
			tb_buf_add(&body, it[i].out.data, it[i].out.len);
		else
			error_json(&body, &it[i].d, it[i].id[0] ? it[i].id : NULL);
	}
	tb_buf_addc(&body, ']');
	if (compact)
		n->m.compact_answers++;
	respond_as(r, s, req, q, resp, COAP_RESPONSE_CODE(204), &body, accept_deflate);
	tb_buf_free(&body);
}

static void
hnd_post_msg(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
             coap_pdu_t *resp)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));
	const char *peer = coap_session_get_app_data(s);
	const uint8_t *data = NULL;
	size_t offs[MAX_BATCH], lens[MAX_BATCH];
	struct item *it = NULL;
	struct tb_env *rc_envs[MAX_BATCH];
	struct tb_diag d;
	struct tb_buf plain; /* the inflated body of an 11050 request */
	int count = 0, nrc = 0;
	bool batch, relayed = false, accept_deflate;

	tb_diag_clear(&d);
	tb_buf_init(&plain);
	accept_deflate = tb_coap_uint_option(req, COAP_OPTION_ACCEPT) == TB_CF_JSON_DEFLATE;
	if (!read_body(n, r, s, req, q, resp, &plain, &d, &data, offs, lens, &count, &batch))
		goto out;
	if ((it = calloc((size_t)count, sizeof(*it))) == NULL) {
		tb_diag_set(&d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		refuse_whole(n, r, s, req, q, resp, &d);
		goto out;
	}
	nrc = open_items(n, peer, data, offs, lens, count, it, rc_envs);
	/* one signature for all receipts of this exchange */
	if (nrc > 0 && tb_env_seal_batch(rc_envs, (size_t)nrc, n->sign_key, &d) != TB_OK) {
		refuse_whole(n, r, s, req, q, resp, &d);
		goto out;
	}
	if (!journal_all(n, it, count, data, offs, lens, peer, &relayed, &d)) {
		if (d.code == TB_E_JOURNAL_FULL)
			refuse_full(n, r, s, req, q, resp, &d, (size_t)count);
		else if (d.code == TB_E_JOURNAL_DOWN)
			refuse_down(n, r, s, req, q, resp, &d, (size_t)count);
		else
			refuse_whole(n, r, s, req, q, resp, &d);
		goto out;
	}
	hand_on(n, it, count, relayed, peer);
	if (!batch) {
		if (it[0].receipt == NULL) {
			respond_error(r, s, req, q, resp, &it[0].d);
		} else {
			respond_as(r, s, req, q, resp,
			           it[0].dup ? COAP_RESPONSE_CODE(204) : COAP_RESPONSE_CODE(201),
			           &it[0].out, accept_deflate);
		}
		goto out;
	}
	answer_batch(n, r, s, req, q, resp, it, count, nrc, accept_deflate);
out:
	for (int i = 0; it != NULL && i < count; i++) {
		tb_env_free(it[i].env);
		tb_env_free(it[i].receipt);
		tb_buf_free(&it[i].out);
		tb_buf_free(&it[i].fwd);
		tb_buf_free(&it[i].compact);
	}
	free(it);
	tb_buf_free(&plain);
}

static void
hnd_get_status(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
               coap_pdu_t *resp)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));
	struct tb_buf b;
	int64_t pending = 0;

	tb_buf_init(&b);
	if (tb_journal_outbound_pending(n->journal, &pending) != TB_OK) {
		struct tb_diag d;
		tb_diag_set(&d, TB_E_IO, TB_DIAG_NOPOS, "journal: %s",
		            tb_journal_diag(n->journal)->detail);
		respond_error(r, s, req, q, resp, &d);
		return;
	}
	tb_buf_printf(
	    &b,
	    "{\"federation\":\"%s\",\"member\":\"%s\",\"queue\":%lld,\"registry_serial\":%llu,"
	    "\"software\":\"tongban-node %s\",\"time\":%lld,\"v\":%d}",
	    tb_reg_federation(n->reg), n->cfg.member_id, (long long)pending,
	    (unsigned long long)tb_reg_serial(n->reg), PACKAGE_VERSION, (long long)tb_now(),
	    TB_PROTO_VERSION);
	respond(r, s, req, q, resp, COAP_RESPONSE_CODE(205), &b);
	tb_buf_free(&b);
}

static void
hnd_get_registry(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req,
                 const coap_string_t *q, coap_pdu_t *resp)
{
	struct tb_node *n = coap_get_app_data(coap_session_get_context(s));

	respond(r, s, req, q, resp, COAP_RESPONSE_CODE(205), &n->reg_bytes);
}

/* A new registry is served: its observers are told. */
static void
registry_applied(void *ctx, const struct tb_reg *reg)
{
	struct tb_node *n = ctx;

	(void)reg;
	coap_resource_notify_observers(n->in->res_registry, NULL);
}

void
tb_inbound_add_consumer(struct tb_node *n, const struct tb_inbound_consumer *c)
{
	struct tb_inbound_consumer *v =
	    realloc(n->in->consumers, (n->in->nconsumers + 1) * sizeof(*v));

	if (v == NULL)
		abort(); /* setup only */
	n->in->consumers = v;
	n->in->consumers[n->in->nconsumers++] = *c;
}

void
tb_inbound_free(struct tb_node *n)
{
	if (n->in == NULL)
		return;
	for (size_t i = 0; i < REPLAY_SLOTS; i++)
		tb_buf_free(&n->in->replay[i].body);
	free(n->in->consumers);
	free(n->in);
	n->in = NULL;
}

int
tb_inbound_init(struct tb_node *n)
{
	coap_resource_t *r;

	if ((n->in = calloc(1, sizeof(*n->in))) == NULL)
		return TB_E_NOMEM;
	for (size_t i = 0; i < REPLAY_SLOTS; i++)
		tb_buf_init(&n->in->replay[i].body);

	if ((r = coap_resource_init(coap_make_str_const("fed/msg"), 0)) == NULL)
		return TB_E_NOMEM;
	coap_register_request_handler(r, COAP_REQUEST_POST, hnd_post_msg);
	coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const("\"tongban.msg\""), 0);
	coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("\"50 11050\""), 0);
	coap_add_resource(n->coap, r);
	if ((r = coap_resource_init(coap_make_str_const("fed/status"), 0)) == NULL)
		return TB_E_NOMEM;
	coap_register_request_handler(r, COAP_REQUEST_GET, hnd_get_status);
	coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const("\"tongban.status\""), 0);
	coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
	coap_add_resource(n->coap, r);
	if ((r = coap_resource_init(coap_make_str_const("fed/registry"), 0)) == NULL)
		return TB_E_NOMEM;
	coap_register_request_handler(r, COAP_REQUEST_GET, hnd_get_registry);
	coap_resource_set_get_observable(r, 1);
	coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const("\"tongban.registry\""), 0);
	coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
	/* libcoap prints ";obs" for an observable resource itself */
	coap_add_resource(n->coap, r);
	n->in->res_registry = r;
	tb_node_on_registry(n, registry_applied, n);
	return TB_OK;
}
