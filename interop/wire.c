/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.c - the wire and flows suites of tongban-interop: CoAP/DTLS
 * exchanges with a target node, one fresh DTLS session per case, each
 * bounded by a deadline (docs/INTEROP.md lists every case).
 *
 * The runner's own libcoap client context: it shares nothing with the
 * node code.  libcoap 4.3.1 never reports COAP_EVENT_DTLS_CONNECTED for
 * client sessions, so a handshake is judged by its outcome: a response
 * (accepted), or a DTLS error / session failure / NACK / deadline with no
 * response (refused).
 */
#include <coap3/coap.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_deflate.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "interop.h"

#define CF_JSON 50
#define CF_JSON_DEFLATE 11050 /* application/json, deflate coding */
/* The default message: an identity.verify whose body follows its schema
 * (PROTOCOL.md 10.2), so that a node checking bodies accepts it; the
 * rejection cases mutate its "tongban-interop" text. */
#define BASE_TYPE "identity.verify"
#define IDHASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define BASE_BODY                                                                                  \
	"{\"purpose\":\"tongban-interop\",\"subject\":{\"idhash\":\"" IDHASH                       \
	"\",\"kind\":\"person\"}}"
#define MAX_KEYS 512

/* A buffer the suite builds a request from, or reads an answer into, must
 * hold all of it (a piece missing would test something else): out of
 * memory ends the run as a setup failure. */
static void
need_whole(const struct tb_buf *b)
{
	if (tb_buf_error(b) != TB_OK) {
		fprintf(stderr, "tongban-interop: out of memory\n");
		exit(TI_EX_SETUP);
	}
}

/* Random bytes for ids the suite makes up; none: a setup failure. */
static void
need_random(void *p, size_t n)
{
	if (tb_random(p, n) != TB_OK) {
		fprintf(stderr, "tongban-interop: no random bytes\n");
		exit(TI_EX_SETUP);
	}
}

/* A DTLS identity: certificate (with chain) and key files; NULL cert
 * means "present no certificate". */
struct ident {
	char cert[1100], key[1100];
	bool none;
};

/* What one exchange produced. */
struct ex {
	coap_session_t *s;
	bool done;    /* a response arrived */
	bool failed;  /* the session failed (handshake refused, ...) */
	int event;    /* last failure event, -1 none */
	int nack;     /* NACK reason, -1 none */
	int code;     /* response code as class*100+detail */
	int cf;       /* content-format, -1 absent */
	bool observe; /* response carried an Observe option */
	struct tb_buf body;
	bool have_leaf; /* the server presented a leaf certificate */
	uint8_t leaf_kid[TB_KEYID_LEN];
	double secs;
};

struct regkey {
	char member[8];
	uint8_t kid[TB_KEYID_LEN];
	struct tb_pub *pub;
};

struct w {
	struct ti *t;
	coap_context_t *ctx;
	coap_address_t dst;
	struct tb_reg *reg;
	struct tb_trust *trust;
	struct tb_key *as_key, *other_key;
	char target_id[8], other_id[8], cas[1100];
	struct ident me, other, none, foreign, expired, revoked, nonmember;
	struct regkey keys[MAX_KEYS];
	size_t nkeys;
	bool known;               /* running the known-issues cases only */
	const char *flow_service; /* service named by flow cases (NULL: none) */
};

static struct ex *cur;
/* wire.msg.pipelined: two exchanges outstanding on one session, told
 * apart by their tokens (NULL when no such case runs) */
static struct ex *pair_ex[2];
static coap_bin_const_t pair_tok[2];

/* ---- libcoap plumbing ---- */

static coap_response_t
on_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcvd, const coap_mid_t mid)
{
	coap_opt_iterator_t oi;
	coap_opt_t *o;
	const uint8_t *data = NULL;
	size_t len = 0, off = 0, total = 0;
	coap_pdu_code_t c;

	struct ex *e = cur;

	(void)sent;
	(void)mid;
	for (int i = 0; i < 2 && pair_ex[0] != NULL; i++) {
		coap_bin_const_t t = coap_pdu_get_token(rcvd);
		e = pair_ex[i];
		if (coap_binary_equal(&t, &pair_tok[i]))
			break;
		e = NULL;
	}
	if (e == NULL || s != e->s || e->done)
		return COAP_RESPONSE_OK;
	c = coap_pdu_get_code(rcvd);
	if (c == COAP_EMPTY_CODE)
		return COAP_RESPONSE_OK;
	e->code = COAP_RESPONSE_CLASS(c) * 100 + (c & 0x1f);
	o = coap_check_option(rcvd, COAP_OPTION_CONTENT_FORMAT, &oi);
	e->cf = o ? (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) : -1;
	e->observe = coap_check_option(rcvd, COAP_OPTION_OBSERVE, &oi) != NULL;
	if (coap_get_data_large(rcvd, &len, &data, &off, &total) && data != NULL)
		tb_buf_add(&e->body, data, len);
	need_whole(&e->body);
	e->done = true;
	return COAP_RESPONSE_OK;
}

static void
on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason,
        const coap_mid_t mid)
{
	(void)sent;
	(void)mid;
	if (cur != NULL && s == cur->s) {
		cur->nack = (int)reason;
		cur->failed = true;
	}
	for (int i = 0; i < 2; i++)
		if (pair_ex[i] != NULL && s == pair_ex[i]->s) {
			pair_ex[i]->nack = (int)reason;
			pair_ex[i]->failed = true;
		}
}

static int
on_event(coap_session_t *s, const coap_event_t ev)
{
	if (cur == NULL || s != cur->s)
		return 0;
	if (ev == COAP_EVENT_DTLS_ERROR || ev == COAP_EVENT_DTLS_CLOSED ||
	    ev == COAP_EVENT_SESSION_FAILED || ev == COAP_EVENT_SESSION_CLOSED ||
	    ev == COAP_EVENT_TCP_FAILED) {
		cur->event = (int)ev;
		cur->failed = true;
	}
	return 0;
}

/* Records the server's leaf key id; chain validation is GnuTLS's. */
static int
on_cert(const char *cn, const uint8_t *der, size_t len, coap_session_t *s, unsigned depth,
        int validated, void *arg)
{
	(void)cn;
	(void)arg;
	if (cur != NULL && s == cur->s && depth == 0) {
		struct tb_cert *c = tb_cert_import(der, len, NULL);
		if (c != NULL) {
			tb_cert_key_id(c, cur->leaf_kid);
			cur->have_leaf = true;
			tb_cert_free(c);
		}
	}
	return validated ? 1 : 0;
}

static void
fill_pki(const struct w *w, const struct ident *id, coap_dtls_pki_t *pki)
{
	memset(pki, 0, sizeof(*pki));
	pki->version = COAP_DTLS_PKI_SETUP_VERSION;
	pki->verify_peer_cert = 1;
	pki->check_common_ca = 0;
	pki->allow_self_signed = 0;
	pki->allow_expired_certs = 0;
	pki->cert_chain_validation = 1;
	pki->cert_chain_verify_depth = 2;
	pki->check_cert_revocation = 0;
	pki->validate_cn_call_back = on_cert;
	pki->pki_key.key_type = COAP_PKI_KEY_PEM;
	pki->pki_key.key.pem.public_cert = id->none ? NULL : id->cert;
	pki->pki_key.key.pem.private_key = id->none ? NULL : id->key;
	pki->pki_key.key.pem.ca_file = w->cas;
}

struct req {
	const struct ident *id;
	coap_pdu_code_t method;
	const char *path;
	int cf; /* -1: no Content-Format option */
	const uint8_t *data;
	size_t len;
	bool observe;
	int accept;        /* Accept option; 0: none */
	const char *query; /* one Uri-Query option, or NULL */
};

/* One request on a fresh DTLS session, waiting at most the deadline. */
static void
exchange(struct w *w, const struct req *r, struct ex *ex)
{
	coap_dtls_pki_t pki;
	coap_pdu_t *pdu;
	coap_optlist_t *ol = NULL;
	uint8_t tok[8], cfb[4], acb[4], obs[4];
	size_t tl = 0;
	double t0 = ti_now(), deadline = t0 + w->t->timeout_ms / 1000.0;

	memset(ex, 0, sizeof(*ex));
	tb_buf_init(&ex->body);
	ex->event = ex->nack = ex->cf = -1;
	fill_pki(w, r->id, &pki);
	cur = ex;
	ex->s = coap_new_client_session_pki(w->ctx, NULL, &w->dst, COAP_PROTO_DTLS, &pki);
	if (ex->s == NULL) {
		ex->failed = true;
		goto out;
	}
	if ((pdu = coap_new_pdu(COAP_MESSAGE_CON, r->method, ex->s)) == NULL) {
		ex->failed = true;
		goto out;
	}
	coap_session_new_token(ex->s, &tl, tok);
	coap_add_token(pdu, tl, tok);
	if (r->observe)
		coap_insert_optlist(&ol, coap_new_optlist(COAP_OPTION_OBSERVE,
		                                          coap_encode_var_safe(obs, sizeof(obs), 0),
		                                          obs));
	for (const char *p = r->path; *p;) {
		size_t n = strcspn(p, "/");
		coap_insert_optlist(&ol,
		                    coap_new_optlist(COAP_OPTION_URI_PATH, n, (const uint8_t *)p));
		p += n;
		if (*p == '/')
			p++;
	}
	if (r->cf >= 0)
		coap_insert_optlist(
		    &ol,
		    coap_new_optlist(COAP_OPTION_CONTENT_FORMAT,
		                     coap_encode_var_safe(cfb, sizeof(cfb), (unsigned)r->cf), cfb));
	if (r->query != NULL)
		coap_insert_optlist(&ol, coap_new_optlist(COAP_OPTION_URI_QUERY, strlen(r->query),
		                                          (const uint8_t *)r->query));
	if (r->accept > 0)
		coap_insert_optlist(&ol, coap_new_optlist(COAP_OPTION_ACCEPT,
		                                          coap_encode_var_safe(acb, sizeof(acb),
		                                                               (unsigned)r->accept),
		                                          acb));
	coap_add_optlist_pdu(pdu, &ol);
	coap_delete_optlist(ol);
	if (r->len > 0 && !coap_add_data_large_request(ex->s, pdu, r->len, r->data, NULL, NULL)) {
		coap_delete_pdu(pdu);
		ex->failed = true;
		goto out;
	}
	if (coap_send(ex->s, pdu) == COAP_INVALID_MID) {
		ex->failed = true;
		goto out;
	}
	while (!ex->done && !ex->failed && ti_now() < deadline) {
		double left = (deadline - ti_now()) * 1000;
		coap_io_process(w->ctx, left > 100 ? 100 : (left < 1 ? 1 : (unsigned)left));
	}
out:
	if (ex->s != NULL)
		coap_session_release(ex->s);
	cur = NULL;
	coap_io_process(w->ctx, COAP_IO_NO_WAIT);
	ex->secs = ti_now() - t0;
}

static void
ex_free(struct ex *ex)
{
	tb_buf_free(&ex->body);
}

static const char *
event_name(int ev)
{
	switch (ev) {
	case COAP_EVENT_DTLS_ERROR: return "DTLS error";
	case COAP_EVENT_DTLS_CLOSED: return "DTLS closed";
	case COAP_EVENT_SESSION_FAILED: return "session failed";
	case COAP_EVENT_SESSION_CLOSED: return "session closed";
	default: return "session event";
	}
}

/* Appends " [why]" to got (cap bytes) when why says something. */
static void
add_why(char *got, size_t cap, const char *why)
{
	size_t l = strlen(got);

	if (why[0] != '\0' && l < cap)
		snprintf(got + l, cap - l, " [%s]", why);
}

/* Describes what came back, e.g. `4.01 {"error":"sig.bad",...}` or
 * `no response (DTLS error)` or `no response within 5.0 s`. */
static void
describe(const struct w *w, const struct ex *ex, char *out, size_t cap)
{
	char body[200];

	if (ex->done) {
		if (w->t->verbose)
			fprintf(stderr, "# answer %d.%02d, %zu bytes: %.*s\n", ex->code / 100,
			        ex->code % 100, ex->body.len, (int)ex->body.len,
			        (const char *)ex->body.data);
		ti_printable(ex->body.data, ex->body.len, body, sizeof(body));
		snprintf(out, cap, "%d.%02d%s%s", ex->code / 100, ex->code % 100,
		         ex->body.len ? " " : " (no body)", body);
	} else if (ex->event >= 0) {
		snprintf(out, cap, "no response (%s)", event_name(ex->event));
	} else if (ex->nack >= 0) {
		snprintf(out, cap, "no response (NACK %d%s)", ex->nack,
		         ex->nack == COAP_NACK_TLS_FAILED ? ": TLS failed" : "");
	} else if (ex->s == NULL) {
		snprintf(out, cap, "no session (libcoap refused the identity)");
	} else {
		snprintf(out, cap, "no response within %.1f s", w->t->timeout_ms / 1000.0);
	}
}

/* The "error" member of a JSON error body, into tok ("" when none). */
static void
error_token(const struct ex *ex, char *tok, size_t cap)
{
	struct tb_json_doc *doc;
	struct tb_json *e;

	tok[0] = '\0';
	if (ex->body.len == 0)
		return;
	doc = tb_json_parse(ex->body.data, ex->body.len, NULL, NULL);
	if (doc != NULL && tb_json_kind(tb_json_root(doc)) == TB_JSON_OBJECT &&
	    (e = tb_json_get(tb_json_root(doc), "error")) != NULL &&
	    tb_json_kind(e) == TB_JSON_STRING)
		snprintf(tok, cap, "%s", tb_json_string(e, NULL));
	tb_json_doc_free(doc);
}

/* ---- setup ---- */

static const struct tb_pub *
lookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	struct w *w = ctx;

	for (size_t i = 0; i < w->nkeys; i++)
		if (strcmp(w->keys[i].member, from) == 0 &&
		    memcmp(w->keys[i].kid, kid, TB_KEYID_LEN) == 0)
			return w->keys[i].pub;
	return NULL;
}

static bool
exists(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f != NULL)
		fclose(f);
	return f != NULL;
}

static void
set_ident(struct ident *id, const char *dir, const char *sub, const char *certname)
{
	snprintf(id->cert, sizeof(id->cert), "%s/%s/%s", dir, sub, certname);
	snprintf(id->key, sizeof(id->key), "%s/%s/node.key", dir, sub);
	id->none = false;
}

static int setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
setup_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tongban-interop: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return TI_EX_SETUP;
}

static int
load_doc(const char *dir, const char *name, size_t max, struct tb_buf *b)
{
	char path[1100];
	struct tb_diag d;
	char msg[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (tb_file_read(path, max, b, &d) != TB_OK)
		return setup_fail("%s: %s", path, tb_diag_format(&d, msg, sizeof(msg)));
	return 0;
}

static void status_member(struct w *w, char *out, size_t cap);

/* The target's address (--target coaps://HOST:PORT) into w->dst. */
static int
resolve_target(struct w *w)
{
	struct ti *t = w->t;
	coap_uri_t uri;
	struct addrinfo hints, *res = NULL;
	char host[256], port[8];

	/* target address */
	if (coap_split_uri((const uint8_t *)t->target, strlen(t->target), &uri) < 0 ||
	    uri.scheme != COAP_URI_SCHEME_COAPS || uri.host.length == 0 ||
	    uri.host.length >= sizeof(host)) {
		return setup_fail("--target %s: not a coaps://HOST:PORT URI", t->target);
	}
	snprintf(host, sizeof(host), "%.*s", (int)uri.host.length, uri.host.s);
	snprintf(port, sizeof(port), "%u", uri.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		return setup_fail("--target: cannot resolve %s", host);
	}
	coap_address_init(&w->dst);
	w->dst.size = res->ai_addrlen;
	memcpy(&w->dst.addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* The target's member id into w->target_id: --target-id, the registry
 * endpoint, or /fed/status (000000 when none says). */
static void
find_target_id(struct w *w)
{
	struct ti *t = w->t;

	/* the target's member id: option, registry endpoint, /fed/status */
	if (t->target_id != NULL) {
		snprintf(w->target_id, sizeof(w->target_id), "%s", t->target_id);
	} else {
		for (size_t m = 0; m < tb_reg_member_count(w->reg) && !w->target_id[0]; m++)
			for (size_t e = 0; e < tb_reg_endpoint_count(w->reg, m); e++)
				if (strcmp(tb_reg_endpoint(w->reg, m, e), t->target) == 0)
					snprintf(w->target_id, sizeof(w->target_id), "%s",
					         tb_reg_member_id(w->reg, m));
		if (!w->target_id[0])
			status_member(w, w->target_id, sizeof(w->target_id));
	}
	if (!w->target_id[0] || tb_reg_find_member(w->reg, w->target_id) == TB_REG_NONE) {
		/* keep going: the cases will fail, each saying what came back */
		printf("# target member id unknown (not a registry endpoint, no /fed/status); "
		       "cases address member 000000\n");
		snprintf(w->target_id, sizeof(w->target_id), "000000");
	}
}

/* A second member whose key can sign "from" it (wrong-sender case):
 * w->other_key and w->other_id. */
/* A member's message-signing key: DIR/ID/sign.key when there is one (an
 * sm2 federation, dev-federation --alg sm2), else its node.key.  NULL
 * when neither loads (d says why). */
static struct tb_key *
signing_key(const char *fedir, const char *id, struct tb_diag *d)
{
	char path[1100];

	snprintf(path, sizeof(path), "%s/%s/sign.key", fedir, id);
	if (exists(path))
		return tb_key_load(path, NULL, d);
	snprintf(path, sizeof(path), "%s/%s/node.key", fedir, id);
	return tb_key_load(path, NULL, d);
}

static int
find_other_signer(struct w *w)
{
	struct ti *t = w->t;

	/* a second member whose key can sign "from" it (wrong-sender case) */
	for (size_t m = 0; m < tb_reg_member_count(w->reg) && w->other_key == NULL; m++) {
		const char *id = tb_reg_member_id(w->reg, m);
		if (strcmp(id, t->as) == 0 || strcmp(id, w->target_id) == 0)
			continue;
		if ((w->other_key = signing_key(t->fedir, id, NULL)) != NULL)
			snprintf(w->other_id, sizeof(w->other_id), "%s", id);
	}
	if (w->other_key == NULL) {
		if ((w->other_key = signing_key(t->fedir, w->target_id, NULL)) != NULL)
			snprintf(w->other_id, sizeof(w->other_id), "%s", w->target_id);
	}
	if (w->other_key == NULL) {
		return setup_fail("%s: needs the key of a member other than %s", t->fedir, t->as);
	}
	return 0;
}

static int
setup(struct w *w)
{
	struct ti *t = w->t;
	struct tb_buf b;
	struct tb_diag d;
	char path[1100], msg[256];
	int rc;

	tb_buf_init(&b);
	if ((rc = load_doc(t->fedir, "registry.json", TB_REG_MAX_SIZE, &b)) != 0)
		goto out;
	if ((w->reg = tb_reg_parse(b.data, b.len, &d)) == NULL) {
		rc = setup_fail("%s/registry.json: %s", t->fedir,
		                tb_diag_format(&d, msg, sizeof(msg)));
		goto out;
	}
	tb_buf_reset(&b);
	if ((rc = load_doc(t->fedir, "trust.json", TB_TRUST_MAX_SIZE, &b)) != 0)
		goto out;
	if ((w->trust = tb_trust_parse(b.data, b.len, &d)) == NULL) {
		rc =
		    setup_fail("%s/trust.json: %s", t->fedir, tb_diag_format(&d, msg, sizeof(msg)));
		goto out;
	}
	for (size_t m = 0; m < tb_reg_member_count(w->reg); m++)
		for (size_t k = 0; k < tb_reg_key_count(w->reg, m) && w->nkeys < MAX_KEYS; k++) {
			struct regkey *rk = &w->keys[w->nkeys];
			enum tb_key_use use;
			const uint8_t *spki;
			size_t sl;
			tb_reg_key(w->reg, m, k, rk->kid, &use, &spki, &sl);
			if ((rk->pub = tb_pub_import_spki(spki, sl, NULL)) == NULL)
				continue;
			snprintf(rk->member, sizeof(rk->member), "%s", tb_reg_member_id(w->reg, m));
			w->nkeys++;
		}
	if (tb_reg_find_member(w->reg, t->as) == TB_REG_NONE) {
		rc = setup_fail("--as %s: not a member of %s/registry.json", t->as, t->fedir);
		goto out;
	}
	if ((w->as_key = signing_key(t->fedir, t->as, &d)) == NULL) {
		rc = setup_fail("%s/%s: %s", t->fedir, t->as, tb_diag_format(&d, msg, sizeof(msg)));
		goto out;
	}
	snprintf(w->cas, sizeof(w->cas), "%s/cas.pem", t->fedir);
	if (!exists(w->cas))
		snprintf(w->cas, sizeof(w->cas), "%s/root.crt", t->fedir);
	if (!exists(w->cas)) {
		rc = setup_fail("%s: no cas.pem nor root.crt", t->fedir);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s/node-chain.pem", t->fedir, t->as);
	set_ident(&w->me, t->fedir, t->as, exists(path) ? "node-chain.pem" : "node.crt");
	w->none.none = true;
	set_ident(&w->foreign, t->fedir, "testids/foreign", "node.crt");
	set_ident(&w->expired, t->fedir, "testids/expired", "node.crt");
	set_ident(&w->revoked, t->fedir, "testids/revoked", "node.crt");
	set_ident(&w->nonmember, t->fedir, "testids/nonmember", "node.crt");
	if ((rc = resolve_target(w)) != 0)
		goto out;
	/* the client context */
	coap_startup();
	coap_set_log_level(t->verbose ? LOG_WARNING : LOG_EMERG);
	coap_dtls_set_log_level(t->verbose ? LOG_WARNING : LOG_EMERG);
	if (!coap_dtls_is_supported() || (w->ctx = coap_new_context(NULL)) == NULL) {
		rc = setup_fail("libcoap without DTLS support");
		goto out;
	}
	coap_context_set_block_mode(w->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	coap_register_response_handler(w->ctx, on_response);
	coap_register_nack_handler(w->ctx, on_nack);
	coap_register_event_handler(w->ctx, on_event);
	find_target_id(w);
	if ((rc = find_other_signer(w)) != 0)
		goto out;
	if (t->verbose)
		printf("# target %s is member %s; acting as %s; second signer %s\n", t->target,
		       w->target_id, t->as, w->other_id);
	rc = 0;
out:
	tb_buf_free(&b);
	return rc;
}

static void
teardown(struct w *w)
{
	for (size_t i = 0; i < w->nkeys; i++)
		tb_pub_free(w->keys[i].pub);
	tb_reg_free(w->reg);
	tb_trust_free(w->trust);
	tb_key_free(w->as_key);
	tb_key_free(w->other_key);
	if (w->ctx != NULL)
		coap_free_context(w->ctx);
	coap_cleanup();
}

/* ---- envelopes ---- */

struct mk {
	const char *type, *from, *to, *body, *corr, *service;
	int64_t created, ttl;
	int hops;
	const struct tb_key *key; /* NULL: unsealed */
};

/* Builds (and seals) an envelope into out; its id and digest when asked. */
static int
mk_env(struct w *w, const struct mk *m, struct tb_buf *out, char id[33], char digest[65])
{
	struct tb_env_fields f;
	struct tb_env *e;
	struct tb_diag d;
	int rc;

	memset(&f, 0, sizeof(f));
	f.type = m->type ? m->type : BASE_TYPE;
	f.from = m->from ? m->from : w->t->as;
	f.to = m->to ? m->to : w->target_id;
	f.corr = m->corr;
	f.service = m->service;
	f.body = (const uint8_t *)(m->body ? m->body : BASE_BODY);
	f.body_len = strlen((const char *)f.body);
	f.created = m->created ? m->created : (int64_t)time(NULL);
	f.ttl = m->ttl ? m->ttl : 3600;
	f.hops = m->hops ? m->hops : 4;
	if ((e = tb_env_create(&f, &d)) == NULL)
		return d.code;
	if (m->key != NULL && (rc = tb_env_seal(e, m->key, &d)) != TB_OK) {
		tb_env_free(e);
		return rc;
	}
	if (id != NULL)
		snprintf(id, 33, "%s", tb_env_id(e));
	if (digest != NULL) {
		uint8_t dg[32];
		if ((rc = tb_env_digest(e, dg)) != TB_OK) {
			tb_env_free(e);
			return rc;
		}
		tb_hex_encode(dg, 32, digest);
	}
	rc = tb_env_serialize(e, out);
	tb_env_free(e);
	return rc;
}

/* A body of type that follows its schema (PROTOCOL.md 10.2), into out
 * (NUL-terminated); case ids are fresh so that a case.submit opens a new
 * case. */
static void
valid_body(const char *type, struct tb_buf *out)
{
	static const struct {
		const char *type, *body;
	} fixed[] = {
	    {"identity.verify", BASE_BODY},
	    {"identity.result", "{\"result\":\"no-match\"}"},
	    {"licence.query",
	     "{\"holder\":{\"idhash\":\"" IDHASH "\"},\"licence\":\"business-license\"}"},
	    {"licence.present", "{\"licences\":[]}"},
	    {"licence.verify", "{\"digest\":\"" IDHASH "\",\"licence_id\":\"tongban-interop\"}"},
	    {"licence.status",
	     "{\"checked\":0,\"licence_id\":\"tongban-interop\",\"status\":\"unknown\"}"},
	    {"receipt", "{\"digest\":\"" IDHASH "\",\"received\":0,\"status\":\"accepted\"}"},
	    {"error", "{\"reason\":\"tongban-interop\"}"},
	    {"control.registry", "{\"serial\":1}"},
	};
	uint8_t rnd[8];
	char cid[32], hex[17];

	tb_buf_reset(out);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(type, fixed[i].type) == 0) {
			tb_buf_adds(out, fixed[i].body);
			tb_buf_addc(out, 0);
			need_whole(out);
			return;
		}
	need_random(rnd, sizeof(rnd));
	tb_hex_encode(rnd, sizeof(rnd), hex);
	snprintf(cid, sizeof(cid), "ti-%s", hex);
	if (strcmp(type, "case.submit") == 0)
		tb_buf_printf(out,
		              "{\"applicant\":{\"idhash\":\"" IDHASH "\",\"kind\":\"person\"},"
		              "\"case_id\":\"%s\",\"materials\":[],\"mode\":\"online\","
		              "\"service\":\"tongban-interop\"}",
		              cid);
	else if (strcmp(type, "case.reject") == 0)
		tb_buf_printf(out, "{\"case_id\":\"%s\",\"reason\":\"tongban-interop\"}", cid);
	else if (strcmp(type, "case.update") == 0)
		tb_buf_printf(out, "{\"case_id\":\"%s\",\"status\":\"tongban-interop\"}", cid);
	else if (strcmp(type, "case.result") == 0)
		tb_buf_printf(out, "{\"case_id\":\"%s\",\"outcome\":\"approved\"}", cid);
	else if (strcmp(type, "case.state") == 0)
		tb_buf_printf(out, "{\"case_id\":\"%s\",\"state\":\"unknown\"}", cid);
	else if (strncmp(type, "case.", 5) == 0) /* accept, query */
		tb_buf_printf(out, "{\"case_id\":\"%s\"}", cid);
	else
		tb_buf_adds(out, "{}"); /* control.ping, pong, status */
	tb_buf_addc(out, 0);
	need_whole(out);
}

/* Replaces the first occurrence of from by to in b; false when absent. */
static bool
replace(struct tb_buf *b, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	struct tb_buf n;

	for (size_t i = 0; i + fl <= b->len; i++)
		if (memcmp(b->data + i, from, fl) == 0) {
			tb_buf_init(&n);
			tb_buf_add(&n, b->data, i);
			tb_buf_add(&n, to, tl);
			tb_buf_add(&n, b->data + i + fl, b->len - i - fl);
			need_whole(&n);
			tb_buf_reset(b);
			tb_buf_add(b, n.data, n.len);
			tb_buf_free(&n);
			need_whole(b);
			return true;
		}
	return false;
}

/* Checks a receipt (body of a 2.01/2.04, or one element of a batch
 * answer): it opens with the target's registry keys, is a receipt from
 * the target to us answering id, and names digest. */
static bool
check_receipt(struct w *w, const uint8_t *p, size_t n, const char *id, const char *digest,
              char *why, size_t cap)
{
	struct tb_env_open_opts o = {lookup, w, (int64_t)time(NULL), 300, NULL, NULL, NULL};
	struct tb_env *e = NULL;
	struct tb_diag d;
	const struct tb_json *dg;
	char msg[256];
	bool ok = false;

	if (tb_env_open(p, n, &o, &e, &d) != TB_OK) {
		snprintf(why, cap, "receipt does not open: %s",
		         tb_diag_format(&d, msg, sizeof(msg)));
		return false;
	}
	if (strcmp(tb_env_type(e), "receipt") != 0)
		snprintf(why, cap, "answer has type %s, not receipt", tb_env_type(e));
	else if (strcmp(tb_env_from(e), w->target_id) != 0)
		snprintf(why, cap, "receipt from %s, not from the target %s", tb_env_from(e),
		         w->target_id);
	else if (tb_env_to(e) == NULL || strcmp(tb_env_to(e), w->t->as) != 0)
		snprintf(why, cap, "receipt to %s, not to %s",
		         tb_env_to(e) ? tb_env_to(e) : "(none)", w->t->as);
	else if (tb_env_corr(e) == NULL || strcmp(tb_env_corr(e), id) != 0)
		snprintf(why, cap, "receipt corr %s, not the message id %s",
		         tb_env_corr(e) ? tb_env_corr(e) : "(none)", id);
	else if ((dg = tb_json_get(tb_env_body(e), "digest")) == NULL ||
	         tb_json_kind(dg) != TB_JSON_STRING ||
	         strcmp(tb_json_string(dg, NULL), digest) != 0)
		snprintf(why, cap, "receipt body.digest is not the message digest %s", digest);
	else
		ok = true;
	tb_env_free(e);
	return ok;
}

/* ---- case helpers ---- */

/* Cases that fail against our own node because of a node bug, kept out
 * of `wire`/`all` until fixed (docs/INTEROP.md "Known issues"); run them
 * with --suite known. */
static const char *const known_issues[] = {
    NULL,
};

static bool
is_known_issue(const char *id)
{
	for (const char *const *k = known_issues; *k; k++)
		if (strcmp(*k, id) == 0)
			return true;
	return false;
}

static bool
want(struct w *w, const char *id)
{
	if (is_known_issue(id) != w->known)
		return false;
	return ti_want(w->t, id);
}

static void
result(struct w *w, const char *suite, const char *id, bool pass, const char *exp, const char *got,
       double secs)
{
	ti_result(w->t, suite, id, pass, exp, got, secs);
}

/* POSTs bytes to /fed/msg and expects code (and token when not NULL). */
static void
post_expect(struct w *w, const char *suite, const char *id, int cf, const struct tb_buf *b,
            int code, const char *token)
{
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", cf, b->data, b->len, false, 0,
	                NULL};
	struct ex ex;
	char exp[128], got[300], tok[64];

	exchange(w, &r, &ex);
	error_token(&ex, tok, sizeof(tok));
	snprintf(exp, sizeof(exp), "%d.%02d%s%s", code / 100, code % 100, token ? " " : "",
	         token ? token : "");
	describe(w, &ex, got, sizeof(got));
	result(w, suite, id,
	       ex.done && ex.code == code && (token == NULL || strcmp(tok, token) == 0), exp, got,
	       ex.secs);
	ex_free(&ex);
}

/* POSTs a message and expects 2.01 with a valid receipt. */
static void
post_accept(struct w *w, const char *id, const struct mk *m)
{
	struct tb_buf b;
	struct ex ex;
	char mid[33], dg[65], got[400], why[200];
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0,
	                NULL};

	tb_buf_init(&b);
	if (mk_env(w, m, &b, mid, dg) != TB_OK) {
		result(w, "wire", id, false, "an envelope built", "tb_env_create failed", 0);
		tb_buf_free(&b);
		return;
	}
	r.data = b.data;
	r.len = b.len;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (ex.done && ex.code == 201 && ex.cf == CF_JSON &&
	    check_receipt(w, ex.body.data, ex.body.len, mid, dg, why, sizeof(why))) {
		result(w, "wire", id, true, NULL, NULL, ex.secs);
	} else {
		if (ex.done && ex.code == 201 && ex.cf != CF_JSON)
			snprintf(why, sizeof(why), "content-format %d", ex.cf);
		else if (!(ex.done && ex.code == 201))
			why[0] = '\0';
		add_why(got, sizeof(got), why);
		result(w, "wire", id, false, "2.01 + signed receipt naming the digest", got,
		       ex.secs);
	}
	ex_free(&ex);
	tb_buf_free(&b);
}

/* ---- the cases ---- */

static void
status_member(struct w *w, char *out, size_t cap)
{
	struct req r = {&w->me, COAP_REQUEST_CODE_GET, "fed/status", -1, NULL, 0, false, 0, NULL};
	struct ex ex;
	struct tb_json_doc *doc;
	struct tb_json *m;

	exchange(w, &r, &ex);
	if (ex.done && ex.code == 205 &&
	    (doc = tb_json_parse(ex.body.data, ex.body.len, NULL, NULL)) != NULL) {
		if ((m = tb_json_get(tb_json_root(doc), "member")) != NULL &&
		    tb_json_kind(m) == TB_JSON_STRING)
			snprintf(out, cap, "%s", tb_json_string(m, NULL));
		tb_json_doc_free(doc);
	}
	ex_free(&ex);
}

static void
case_tls(struct w *w, const char *id, const struct ident *who, bool accept, const char *what)
{
	struct req r = {who, COAP_REQUEST_CODE_GET, "fed/status", -1, NULL, 0, false, 0, NULL};
	struct ex ex;
	char got[300];

	if (!want(w, id))
		return;
	if (!who->none && (!exists(who->cert) || !exists(who->key))) {
		result(w, "wire", id, false, what, "test identity missing from the federation dir",
		       0);
		return;
	}
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (accept)
		result(w, "wire", id, ex.done && ex.code == 205, what, got, ex.secs);
	else
		result(w, "wire", id, !ex.done, what, got, ex.secs);
	ex_free(&ex);
}

static void
case_server_identity(struct w *w)
{
	const char *id = "wire.tls.server-identity";
	struct req r = {&w->me, COAP_REQUEST_CODE_GET, "fed/status", -1, NULL, 0, false, 0, NULL};
	struct ex ex;
	char got[300], hex[65];
	size_t m, k;
	const char *exp = "server certificate chains to the root, key of the target member";

	if (!want(w, id))
		return;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (!ex.done || !ex.have_leaf) {
		result(w, "wire", id, false, exp, got, ex.secs);
	} else if (tb_reg_find_key(w->reg, ex.leaf_kid, &m, &k) != TB_OK) {
		tb_hex_encode(ex.leaf_kid, 32, hex);
		snprintf(got, sizeof(got), "server key %s is not in the registry", hex);
		result(w, "wire", id, false, exp, got, ex.secs);
	} else if (strcmp(tb_reg_member_id(w->reg, m), w->target_id) != 0) {
		snprintf(got, sizeof(got), "server key belongs to member %s, target is %s",
		         tb_reg_member_id(w->reg, m), w->target_id);
		result(w, "wire", id, false, exp, got, ex.secs);
	} else {
		result(w, "wire", id, true, NULL, NULL, ex.secs);
	}
	ex_free(&ex);
}

static void
case_core(struct w *w)
{
	const char *id = "wire.discovery.core";
	struct req r = {&w->me, COAP_REQUEST_CODE_GET, ".well-known/core", -1, NULL, 0, false, 0,
	                NULL};
	static const char *const need[] = {"</fed/msg>",
	                                   "</fed/status>",
	                                   "</fed/registry>",
	                                   "rt=\"tongban.msg\"",
	                                   "rt=\"tongban.status\"",
	                                   "rt=\"tongban.registry\"",
	                                   "obs"};
	struct ex ex;
	char got[300];
	const char *missing = NULL;

	if (!want(w, id))
		return;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	tb_buf_addc(&ex.body, 0);
	need_whole(&ex.body);
	for (size_t i = 0; ex.done && i < sizeof(need) / sizeof(need[0]) && !missing; i++)
		if (strstr((const char *)ex.body.data, need[i]) == NULL)
			missing = need[i];
	if (missing != NULL) {
		size_t l = strlen(got);
		snprintf(got + l, sizeof(got) - l, " [missing %s]", missing);
	}
	result(w, "wire", id, ex.done && ex.code == 205 && ex.cf == 40 && missing == NULL,
	       "2.05 link-format (ct 40) listing /fed/msg, /fed/status, /fed/registry (obs) with "
	       "their rt",
	       got, ex.secs);
	ex_free(&ex);
}

static void
case_status(struct w *w)
{
	const char *id = "wire.discovery.status";
	struct req r = {&w->me, COAP_REQUEST_CODE_GET, "fed/status", -1, NULL, 0, false, 0, NULL};
	struct ex ex;
	char got[400], why[160] = "";
	struct tb_json_doc *doc = NULL;
	struct tb_json *root, *v;
	int64_t iv;

	if (!want(w, id))
		return;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (ex.done && ex.code == 205 && ex.cf == CF_JSON &&
	    (doc = tb_json_parse(ex.body.data, ex.body.len, NULL, NULL)) != NULL &&
	    tb_json_kind(root = tb_json_root(doc)) == TB_JSON_OBJECT) {
		if ((v = tb_json_get(root, "v")) == NULL || !tb_json_integer(v, &iv) || iv != 1)
			snprintf(why, sizeof(why), "v is not 1");
		else if ((v = tb_json_get(root, "federation")) == NULL ||
		         tb_json_kind(v) != TB_JSON_STRING ||
		         strcmp(tb_json_string(v, NULL), tb_reg_federation(w->reg)) != 0)
			snprintf(why, sizeof(why), "federation is not %s",
			         tb_reg_federation(w->reg));
		else if ((v = tb_json_get(root, "member")) == NULL ||
		         tb_json_kind(v) != TB_JSON_STRING ||
		         strcmp(tb_json_string(v, NULL), w->target_id) != 0)
			snprintf(why, sizeof(why), "member is not %s", w->target_id);
		else if ((v = tb_json_get(root, "registry_serial")) == NULL ||
		         !tb_json_integer(v, &iv) || iv < 1)
			snprintf(why, sizeof(why), "registry_serial is not a positive integer");
		else if ((v = tb_json_get(root, "queue")) == NULL || !tb_json_integer(v, &iv) ||
		         iv < 0)
			snprintf(why, sizeof(why), "queue is not a count");
		else if ((v = tb_json_get(root, "software")) == NULL ||
		         tb_json_kind(v) != TB_JSON_STRING)
			snprintf(why, sizeof(why), "software is not a string");
	} else {
		snprintf(why, sizeof(why), "not a JSON object answer");
	}
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0',
	       "2.05 JSON {federation, member, queue, registry_serial, software, v:1}", got,
	       ex.secs);
	tb_json_doc_free(doc);
	ex_free(&ex);
}

static void
case_registry(struct w *w, bool observe)
{
	const char *id = observe ? "wire.registry.observe" : "wire.registry.get";
	struct req r = {&w->me, COAP_REQUEST_CODE_GET, "fed/registry", -1, NULL, 0, observe, 0,
	                NULL};
	struct ex ex;
	char got[400], why[200] = "", msg[200];
	struct tb_reg *reg = NULL;
	struct tb_diag d;

	if (!want(w, id))
		return;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (!ex.done || ex.code != 205)
		snprintf(why, sizeof(why), "no 2.05");
	else if (ex.cf != CF_JSON)
		snprintf(why, sizeof(why), "content-format %d, not 50", ex.cf);
	else if (observe && !ex.observe)
		snprintf(why, sizeof(why), "no Observe option in the answer");
	else if ((reg = tb_reg_parse(ex.body.data, ex.body.len, &d)) == NULL ||
	         tb_reg_verify(reg, w->trust, (int64_t)time(NULL), 0, NULL, &d) != TB_OK)
		snprintf(why, sizeof(why), "registry does not verify: %s",
		         tb_diag_format(&d, msg, sizeof(msg)));
	else if (tb_reg_serial(reg) < tb_reg_serial(w->reg))
		snprintf(why, sizeof(why), "serial %llu older than the federation's %llu",
		         (unsigned long long)tb_reg_serial(reg),
		         (unsigned long long)tb_reg_serial(w->reg));
	if (why[0] && ex.done) {
		snprintf(got, sizeof(got), "%d.%02d [%s]", ex.code / 100, ex.code % 100, why);
	}
	result(w, "wire", id, why[0] == '\0',
	       observe ? "2.05 with Observe, registry verifying against DIR/trust.json"
	               : "2.05 ct 50, registry verifying against DIR/trust.json",
	       got, ex.secs);
	tb_reg_free(reg);
	ex_free(&ex);
}

static void
case_method(struct w *w, const char *id, coap_pdu_code_t m, const char *path, int code)
{
	struct req r = {&w->me, m, path, -1, NULL, 0, false, 0, NULL};
	struct ex ex;
	char got[300], exp[32];

	if (!want(w, id))
		return;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	snprintf(exp, sizeof(exp), "%d.%02d", code / 100, code % 100);
	result(w, "wire", id, ex.done && ex.code == code, exp, got, ex.secs);
	ex_free(&ex);
}

/* A mutation of the base envelope: how to build it, what must come back. */
struct rej {
	const char *id;
	const char *from, *to; /* text replacements on the canonical sealed form */
	int code;
	const char *token;
	int kind; /* below */
};
enum {
	R_TEXT,
	R_UNSEALED,
	R_OTHERKEY,
	R_EXPIRED,
	R_FUTURE,
	R_WRONG_SENDER,
	R_NOT_ADDRESSED,
	R_PROOF,
	R_TOO_LARGE,
	R_CF_TEXT,
	R_CF_NONE,
	R_EMPTY,
	R_BATCH_BAD,
	R_DEFLATE_BAD,
	R_DEFLATE_BOMB
};

/* A batch member whose proof index is out of its batch (sig.proof). */
static bool
bad_proof(struct w *w, struct tb_buf *b)
{
	struct tb_env *e[2] = {NULL, NULL};
	struct tb_env_fields f;
	bool ok;

	memset(&f, 0, sizeof(f));
	f.type = "control.ping";
	f.from = w->t->as;
	f.to = w->target_id;
	f.created = (int64_t)time(NULL);
	f.ttl = 3600;
	ok = (e[0] = tb_env_create(&f, NULL)) != NULL && (e[1] = tb_env_create(&f, NULL)) != NULL &&
	     tb_env_seal_batch(e, 2, w->as_key, NULL) == TB_OK &&
	     tb_env_serialize(e[0], b) == TB_OK && replace(b, "\"i\":0", "\"i\":2");
	tb_env_free(e[0]);
	tb_env_free(e[1]);
	return ok;
}

/* An envelope of 70 KB (too-large); tb_env_create refuses > 64 KiB, so
 * the text is built by hand. */
static void
too_large(struct w *w, struct tb_buf *b)
{
	struct tb_buf body;

	tb_buf_init(&body);
	tb_buf_adds(&body, "{\"pad\":\"");
	for (int i = 0; i < 70000; i++)
		tb_buf_addc(&body, 'x');
	tb_buf_adds(&body, "\"}");
	tb_buf_addc(&body, 0);
	need_whole(&body);
	tb_buf_printf(b,
	              "{\"body\":%s,\"created\":%lld,\"expires\":%lld,\"from\":\"%s\","
	              "\"hops\":4,\"id\":\"00000000000000000000000000000001\",\"to\":\"%s\","
	              "\"type\":\"control.ping\",\"v\":1}",
	              (const char *)body.data, (long long)time(NULL), (long long)time(NULL) + 3600,
	              w->t->as, w->target_id);
	need_whole(b);
	tb_buf_free(&body);
}

/* A body starting with '[' that is no batch: c->to as given, or (NULL)
 * 257 objects, one more than a batch holds. */
static void
bad_batch(const struct rej *c, struct tb_buf *b)
{
	if (c->to != NULL) {
		tb_buf_adds(b, c->to);
	} else {
		tb_buf_addc(b, '[');
		for (int i = 0; i < 257; i++)
			tb_buf_adds(b, i ? ",{}" : "{}");
		tb_buf_addc(b, ']');
	}
	need_whole(b);
}

static void
case_reject(struct w *w, const struct rej *c)
{
	struct tb_buf b;
	struct mk m;
	int cf = CF_JSON;
	bool ok = true;

	if (!want(w, c->id))
		return;
	tb_buf_init(&b);
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	switch (c->kind) {
	case R_UNSEALED: m.key = NULL; break;
	case R_OTHERKEY: m.key = w->other_key; break;
	case R_EXPIRED:
		m.created = (int64_t)time(NULL) - 2 * 86400;
		m.ttl = 86400;
		break;
	case R_FUTURE: m.created = (int64_t)time(NULL) + 7200; break;
	case R_WRONG_SENDER:
		m.from = w->other_id;
		m.key = w->other_key;
		break;
	case R_NOT_ADDRESSED: m.to = w->other_id; break;
	case R_CF_TEXT: cf = 0; break;
	case R_CF_NONE: cf = -1; break;
	default: break;
	}
	if (c->kind == R_PROOF) {
		ok = bad_proof(w, &b);
	} else if (c->kind == R_TOO_LARGE) {
		too_large(w, &b);
	} else if (c->kind == R_DEFLATE_BAD) {
		/* a good envelope, labelled 11050 but not deflated */
		cf = CF_JSON_DEFLATE;
		ok = mk_env(w, &m, &b, NULL, NULL) == TB_OK;
	} else if (c->kind == R_DEFLATE_BOMB) {
		/* 3 MB of spaces: a few KB on the wire, past any limit inflated */
		struct tb_buf sp;
		tb_buf_init(&sp);
		cf = CF_JSON_DEFLATE;
		ok = tb_buf_reserve(&sp, 3000000) == TB_OK;
		if (ok) {
			memset(sp.data, ' ', 3000000);
			sp.len = 3000000;
			ok = tb_deflate(sp.data, sp.len, &b, NULL) == TB_OK;
		}
		tb_buf_free(&sp);
	} else if (c->kind == R_EMPTY) {
		/* nothing */
	} else if (c->kind == R_BATCH_BAD) {
		bad_batch(c, &b);
	} else {
		ok = mk_env(w, &m, &b, NULL, NULL) == TB_OK;
		if (ok && c->from != NULL && strcmp(c->token, "sig.alg") == 0 &&
		    tb_key_alg(w->as_key) != TB_ALG_P256) {
			/* the signer's own alg replaced by another (an sm2 federation) */
			char own[32];
			snprintf(own, sizeof(own), "\"alg\":\"%s\"",
			         tb_alg_name(tb_key_alg(w->as_key)));
			ok = replace(&b, own,
			             tb_key_alg(w->as_key) == TB_ALG_SM2 ? "\"alg\":\"p256\""
			                                                 : c->to);
		} else if (ok && c->from != NULL) {
			ok = replace(&b, c->from, c->to);
		}
	}
	if (!ok)
		result(w, "wire", c->id, false, "test message built", "could not build it", 0);
	else
		post_expect(w, "wire", c->id, cf, &b, c->code, c->token);
	tb_buf_free(&b);
}

static void
case_duplicate(struct w *w)
{
	const char *id = "wire.msg.duplicate";
	struct tb_buf b;
	struct ex a, x;
	struct mk m;
	char mid[33], dg[65], got[400], why[200] = "";
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0,
	                NULL};

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	tb_buf_init(&b);
	mk_env(w, &m, &b, mid, dg);
	r.data = b.data;
	r.len = b.len;
	exchange(w, &r, &a);
	exchange(w, &r, &x);
	describe(w, &x, got, sizeof(got));
	if (!a.done || a.code != 201)
		snprintf(why, sizeof(why), "first answer not 2.01");
	else if (!x.done || x.code != 204)
		snprintf(why, sizeof(why), "second answer not 2.04");
	else if (a.body.len != x.body.len || memcmp(a.body.data, x.body.data, a.body.len) != 0)
		snprintf(why, sizeof(why), "second receipt differs from the first");
	else if (!check_receipt(w, x.body.data, x.body.len, mid, dg, why, sizeof(why)))
		;
	else
		why[0] = '\0';
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0',
	       "2.01 then 2.04 with the byte-identical original receipt", got, a.secs + x.secs);
	ex_free(&a);
	ex_free(&x);
	tb_buf_free(&b);
}

/* ---- block-wise transfers driven by the case (RFC 7959) ---- */

#define RAW_SZX 2 /* 64-byte blocks: a small envelope takes several */

/* A session whose Block1 transfers are the case's own: libcoap hands the
 * 2.31 answers through instead of sending the next block itself.  NULL
 * when it cannot be made. */
static coap_session_t *
raw_session(struct w *w)
{
	coap_dtls_pki_t pki;
	coap_session_t *s;

	fill_pki(w, &w->me, &pki);
	coap_context_set_block_mode(w->ctx, 0);
	s = coap_new_client_session_pki(w->ctx, NULL, &w->dst, COAP_PROTO_DTLS, &pki);
	coap_context_set_block_mode(w->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	return s;
}

/* A POST to /fed/msg on s with the given MID and token and a JSON
 * content-format (the options before Uri-Query); NULL when it cannot be
 * built. */
static coap_pdu_t *
msg_pdu(coap_session_t *s, coap_mid_t mid, const uint8_t *tok, size_t tl)
{
	uint8_t cfb[4];
	coap_pdu_t *pdu =
	    coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, mid, coap_session_max_pdu_size(s));

	if (pdu != NULL &&
	    (!coap_add_token(pdu, tl, tok) ||
	     !coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"fed") ||
	     !coap_add_option(pdu, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"msg") ||
	     !coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
	                      coap_encode_var_safe(cfb, sizeof(cfb), CF_JSON), cfb))) {
		coap_delete_pdu(pdu);
		return NULL;
	}
	return pdu;
}

/* Block num (64 bytes) of body b as a POST to /fed/msg on s, with the
 * given MID and token, and Size1 (PROTOCOL.md 9.2); NULL when it cannot
 * be built. */
static coap_pdu_t *
block_pdu(coap_session_t *s, coap_mid_t mid, const uint8_t *tok, size_t tl,
          const struct tb_buf *b, unsigned num)
{
	size_t sz = (size_t)1 << (RAW_SZX + 4), off = (size_t)num * sz;
	size_t n = off >= b->len ? 0 : (b->len - off > sz ? sz : b->len - off);
	unsigned more = off + n < b->len;
	uint8_t blk[4], szb[4];
	coap_pdu_t *pdu = msg_pdu(s, mid, tok, tl);

	if (pdu == NULL)
		return NULL;
	if (!coap_add_option(pdu, COAP_OPTION_BLOCK1,
	                     coap_encode_var_safe(blk, sizeof(blk),
	                                          (num << 4) | (more << 3) | RAW_SZX),
	                     blk) ||
	    !coap_add_option(pdu, COAP_OPTION_SIZE1,
	                     coap_encode_var_safe(szb, sizeof(szb), (unsigned)b->len), szb) ||
	    (n > 0 && !coap_add_data(pdu, n, b->data + off))) {
		coap_delete_pdu(pdu);
		return NULL;
	}
	return pdu;
}

/* Sends pdu (NULL: failed) on s and waits for its answer into ex. */
static void
raw_send(struct w *w, coap_session_t *s, coap_pdu_t *pdu, struct ex *ex)
{
	double t0 = ti_now(), deadline = t0 + w->t->timeout_ms / 1000.0;

	memset(ex, 0, sizeof(*ex));
	tb_buf_init(&ex->body);
	ex->event = ex->nack = ex->cf = -1;
	ex->s = s;
	cur = ex;
	if (pdu == NULL || coap_send(s, pdu) == COAP_INVALID_MID)
		ex->failed = true;
	while (!ex->done && !ex->failed && ti_now() < deadline) {
		double left = (deadline - ti_now()) * 1000;
		coap_io_process(w->ctx, left > 100 ? 100 : (left < 1 ? 1 : (unsigned)left));
	}
	cur = NULL;
	ex->secs = ti_now() - t0;
}

/* POST /fed/msg of b on s with token tok and the Uri-Query t=q, in one
 * PDU; NULL when it cannot be built. */
static coap_pdu_t *
pipe_pdu(coap_session_t *s, const uint8_t *tok, size_t tl, const struct tb_buf *b, unsigned q)
{
	char qs[8];
	coap_pdu_t *pdu = msg_pdu(s, (coap_mid_t)coap_new_message_id(s), tok, tl);

	snprintf(qs, sizeof(qs), "t=%04x", q & 0xffff);
	if (pdu != NULL &&
	    (!coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(qs), (const uint8_t *)qs) ||
	     !coap_add_data(pdu, b->len, b->data))) {
		coap_delete_pdu(pdu);
		return NULL;
	}
	return pdu;
}

/* Two exchanges outstanding on one session at once (PROTOCOL.md 9.6,
 * "Several exchanges on one session"): both sent before either answer,
 * each with its own token and `t` query; each answered on its own, 2.01
 * with the receipt of its own message. */
static void
case_pipelined(struct w *w)
{
	const char *id = "wire.msg.pipelined";
	struct tb_buf b[2];
	struct ex x[2];
	struct mk m;
	char mid[2][33], dg[2][65], got[400], why[200] = "";
	uint8_t tok[2][8];
	size_t tl[2] = {0, 0};
	coap_session_t *s;
	double t0 = ti_now(), deadline = t0 + w->t->timeout_ms / 1000.0;

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	for (int i = 0; i < 2; i++) {
		tb_buf_init(&b[i]);
		mk_env(w, &m, &b[i], mid[i], dg[i]);
		memset(&x[i], 0, sizeof(x[i]));
		tb_buf_init(&x[i].body);
		x[i].event = x[i].nack = x[i].cf = -1;
	}
	if ((s = raw_session(w)) == NULL) {
		result(w, "wire", id, false, "a session", "none", 0);
		goto out;
	}
	coap_session_set_nstart(s, 2);
	for (int i = 0; i < 2; i++) {
		coap_session_new_token(s, &tl[i], tok[i]);
		pair_tok[i] = (coap_bin_const_t){tl[i], tok[i]};
		pair_ex[i] = &x[i];
		x[i].s = s;
	}
	for (int i = 0; i < 2; i++) {
		coap_pdu_t *pdu = pipe_pdu(s, tok[i], tl[i], &b[i], (unsigned)i + 1);
		if (pdu == NULL || coap_send(s, pdu) == COAP_INVALID_MID)
			x[i].failed = true;
	}
	while (!(x[0].done && x[1].done) && !x[0].failed && !x[1].failed &&
	       ti_now() < deadline) {
		double left = (deadline - ti_now()) * 1000;
		coap_io_process(w->ctx, left > 100 ? 100 : (left < 1 ? 1 : (unsigned)left));
	}
	pair_ex[0] = pair_ex[1] = NULL;
	for (int i = 0; i < 2 && why[0] == '\0'; i++) {
		describe(w, &x[i], got, sizeof(got));
		if (!x[i].done || x[i].code != 201)
			snprintf(why, sizeof(why), "exchange %d not answered 2.01", i + 1);
		else if (!check_receipt(w, x[i].body.data, x[i].body.len, mid[i], dg[i], why,
		                        sizeof(why)) &&
		         why[0] == '\0')
			snprintf(why, sizeof(why), "exchange %d: not the receipt of its message", i + 1);
	}
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0',
	       "two envelopes posted on one session before either answer (tokens and t= "
	       "queries of their own): each 2.01 with its own receipt",
	       got, ti_now() - t0);
	coap_session_release(s);
	coap_io_process(w->ctx, COAP_IO_NO_WAIT);
out:
	for (int i = 0; i < 2; i++) {
		ex_free(&x[i]);
		tb_buf_free(&b[i]);
	}
}

/* The answer to a block-wise request's last block is lost (PROTOCOL.md
 * 9.2): the client sends that block again, same MID and token, and gets
 * the same answer byte for byte, not a refusal of the lone block. */
static void
case_block_retransmit(struct w *w)
{
	const char *id = "wire.msg.block-retransmit";
	struct tb_buf b;
	struct ex a, x;
	struct mk m;
	char mid[33], dg[65], got[400], why[200] = "";
	uint8_t tok[8];
	size_t tl = 0;
	coap_mid_t last = 0;
	coap_session_t *s;
	unsigned nblk, k;

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	memset(&a, 0, sizeof(a));
	memset(&x, 0, sizeof(x));
	tb_buf_init(&a.body);
	tb_buf_init(&x.body);
	m.key = w->as_key;
	tb_buf_init(&b);
	mk_env(w, &m, &b, mid, dg);
	need_whole(&b);
	nblk = (unsigned)((b.len + 63) / 64);
	if ((s = raw_session(w)) == NULL) {
		result(w, "wire", id, false, "a session", "none", 0);
		tb_buf_free(&b);
		return;
	}
	for (k = 0; k < nblk; k++) {
		ex_free(&a);
		coap_session_new_token(s, &tl, tok);
		last = (coap_mid_t)coap_new_message_id(s);
		raw_send(w, s, block_pdu(s, last, tok, tl, &b, k), &a);
		if (!a.done || a.code != (k + 1 < nblk ? 231 : 201))
			break;
	}
	if (k == nblk) {
		/* libcoap's client drops an answer with the MID it saw last
		 * (as lost-ACK retransmission never meets one): a GET between */
		struct ex st;
		uint8_t t2[8];
		size_t tl2 = 0;
		coap_pdu_t *g = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET,
		                              coap_new_message_id(s), coap_session_max_pdu_size(s));
		coap_session_new_token(s, &tl2, t2);
		if (g != NULL &&
		    (!coap_add_token(g, tl2, t2) ||
		     !coap_add_option(g, COAP_OPTION_URI_PATH, 3, (const uint8_t *)"fed") ||
		     !coap_add_option(g, COAP_OPTION_URI_PATH, 6, (const uint8_t *)"status"))) {
			coap_delete_pdu(g);
			g = NULL;
		}
		raw_send(w, s, g, &st);
		ex_free(&st);
		raw_send(w, s, block_pdu(s, last, tok, tl, &b, nblk - 1), &x);
	}
	describe(w, k == nblk ? &x : &a, got, sizeof(got));
	if (k < nblk)
		snprintf(why, sizeof(why), "block %u of %u not answered %s", k, nblk,
		         k + 1 < nblk ? "2.31" : "2.01");
	else if (!x.done || x.code != 201)
		snprintf(why, sizeof(why), "the last block again not answered 2.01");
	else if (a.body.len != x.body.len || memcmp(a.body.data, x.body.data, a.body.len) != 0)
		snprintf(why, sizeof(why), "the answer differs from the first");
	else if (!check_receipt(w, x.body.data, x.body.len, mid, dg, why, sizeof(why)) &&
	         why[0] == '\0')
		snprintf(why, sizeof(why), "not a valid receipt");
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0',
	       "every block answered (2.31, last 2.01), the last block sent again with its MID "
	       "and token: the same 2.01 and receipt, byte for byte",
	       got, a.secs + x.secs);
	coap_session_release(s);
	coap_io_process(w->ctx, COAP_IO_NO_WAIT);
	ex_free(&a);
	ex_free(&x);
	tb_buf_free(&b);
}

/* A lone block of a body the receiver holds no transfer for: 4.08
 * incomplete (PROTOCOL.md 9.2), so the sender sends the body again. */
static void
case_block_stray(struct w *w)
{
	const char *id = "wire.msg.block-stray";
	struct tb_buf b;
	struct ex x;
	struct mk m;
	char got[400], tok[64];
	uint8_t t[8];
	size_t tl = 0;
	coap_session_t *s;

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	tb_buf_init(&b);
	mk_env(w, &m, &b, NULL, NULL);
	need_whole(&b);
	if ((s = raw_session(w)) == NULL) {
		result(w, "wire", id, false, "a session", "none", 0);
		tb_buf_free(&b);
		return;
	}
	coap_session_new_token(s, &tl, t);
	raw_send(w, s, block_pdu(s, (coap_mid_t)coap_new_message_id(s), t, tl, &b, 1), &x);
	error_token(&x, tok, sizeof(tok));
	describe(w, &x, got, sizeof(got));
	result(w, "wire", id, x.done && x.code == 408 && strcmp(tok, "incomplete") == 0,
	       "4.08 incomplete", got, x.secs);
	coap_session_release(s);
	coap_io_process(w->ctx, COAP_IO_NO_WAIT);
	ex_free(&x);
	tb_buf_free(&b);
}

/* The deflate coding (PROTOCOL.md 9.2): an envelope sent as 11050 with
 * Accept 11050 is accepted; the receipt may come back in either format. */
static void
case_deflate(struct w *w)
{
	const char *id = "wire.msg.deflate";
	struct tb_buf b, z, plain;
	struct ex a;
	struct mk m;
	char mid[33], dg[65], got[400], why[200] = "";
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON_DEFLATE, NULL, 0,
	                false,  CF_JSON_DEFLATE,        NULL};

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	tb_buf_init(&b);
	tb_buf_init(&z);
	tb_buf_init(&plain);
	if (mk_env(w, &m, &b, mid, dg) != TB_OK || tb_deflate(b.data, b.len, &z, NULL) != TB_OK) {
		result(w, "wire", id, false, "test message built", "could not build it", 0);
		goto out;
	}
	r.data = z.data;
	r.len = z.len;
	exchange(w, &r, &a);
	describe(w, &a, got, sizeof(got));
	if (!a.done || a.code != 201)
		snprintf(why, sizeof(why), "answer not 2.01");
	else if (a.cf == CF_JSON_DEFLATE &&
	         tb_inflate(a.body.data, a.body.len, 1u << 20, &plain, NULL) != TB_OK)
		snprintf(why, sizeof(why), "answer in 11050 does not inflate");
	else if (a.cf != CF_JSON_DEFLATE && a.cf != CF_JSON)
		snprintf(why, sizeof(why), "answer content-format %d", a.cf);
	else if (a.cf == CF_JSON_DEFLATE)
		check_receipt(w, plain.data, plain.len, mid, dg, why, sizeof(why));
	else
		check_receipt(w, a.body.data, a.body.len, mid, dg, why, sizeof(why));
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0', "2.01 with a receipt of the envelope (50 or 11050)",
	       got, a.secs);
	ex_free(&a);
out:
	tb_buf_free(&b);
	tb_buf_free(&z);
	tb_buf_free(&plain);
}

/* Same id, different content: a replay, never the original receipt. */
static void
case_replay(struct w *w)
{
	const char *id = "wire.reject.replay";
	struct tb_buf b;
	struct ex a;
	struct mk m;
	char mid[33];
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0,
	                NULL};
	struct tb_env *e = NULL;
	struct tb_diag d;
	bool ok;

	if (!want(w, id))
		return;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	tb_buf_init(&b);
	mk_env(w, &m, &b, mid, NULL);
	r.data = b.data;
	r.len = b.len;
	exchange(w, &r, &a);
	ok = a.done && a.code == 201;
	ex_free(&a);
	/* a second, different message reusing the id, validly signed */
	ok = ok && replace(&b, "tongban-interop", "tongban-interop-replay") &&
	     (e = tb_env_parse(b.data, b.len, &d)) != NULL;
	tb_buf_reset(&b);
	if (ok && tb_env_seal(e, w->as_key, &d) == TB_OK && tb_env_serialize(e, &b) == TB_OK) {
		post_expect(w, "wire", id, CF_JSON, &b, 400, "replay");
	} else {
		result(w, "wire", id, false, "first message 2.01, then 4.00 replay",
		       "first message not accepted (or could not build the replay)", 0);
	}
	tb_env_free(e);
	tb_buf_free(&b);
}

/* A batch of n (at most 8) base envelopes from us under one batch
 * signature, as the text of a JSON array appended to b; their ids and
 * digests go to ids and dgs.  Element `tamper` (-1: none) has its body
 * changed after sealing, so its signature fails.  False when it could
 * not be built. */
static bool
sealed_batch(struct w *w, int n, int tamper, char (*ids)[33], char (*dgs)[65], struct tb_buf *b)
{
	struct tb_env *e[8] = {NULL};
	struct tb_env_fields f;
	bool ok = n > 0 && n <= 8;

	memset(&f, 0, sizeof(f));
	f.type = BASE_TYPE;
	f.from = w->t->as;
	f.to = w->target_id;
	f.body = (const uint8_t *)BASE_BODY;
	f.body_len = strlen(BASE_BODY);
	f.created = (int64_t)time(NULL);
	f.ttl = 3600;
	for (int i = 0; ok && i < n; i++)
		ok = (e[i] = tb_env_create(&f, NULL)) != NULL;
	ok = ok && tb_env_seal_batch(e, (size_t)n, w->as_key, NULL) == TB_OK;
	if (ok) {
		tb_buf_addc(b, '[');
		for (int i = 0; i < n; i++) {
			uint8_t dg[32];
			struct tb_buf one;
			tb_buf_init(&one);
			snprintf(ids[i], 33, "%s", tb_env_id(e[i]));
			if (tb_env_digest(e[i], dg) != TB_OK ||
			    tb_env_serialize(e[i], &one) != TB_OK)
				ok = false;
			tb_hex_encode(dg, 32, dgs[i]);
			if (i == tamper)
				replace(&one, "tongban-interop", "tongban-interoq");
			need_whole(&one);
			if (i > 0)
				tb_buf_addc(b, ',');
			tb_buf_add(b, one.data, one.len);
			tb_buf_free(&one);
		}
		tb_buf_addc(b, ']');
		need_whole(b);
	}
	for (int i = 0; i < n && i < 8; i++)
		tb_env_free(e[i]);
	return ok;
}

static void
case_batch(struct w *w, bool mixed)
{
	const char *id = mixed ? "wire.batch.mixed" : "wire.batch.accept";
	char ids[3][33], dgs[3][65], got[400], why[200] = "";
	struct tb_buf b;
	struct ex ex;
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0,
	                NULL};
	struct tb_json_doc *doc = NULL;

	if (!want(w, id))
		return;
	tb_buf_init(&b);
	(void)sealed_batch(w, 3, mixed ? 1 : -1, ids, dgs, &b);
	r.data = b.data;
	r.len = b.len;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (!ex.done || ex.code != 204)
		snprintf(why, sizeof(why), "not 2.04");
	else if ((doc = tb_json_parse(ex.body.data, ex.body.len, NULL, NULL)) == NULL ||
	         tb_json_kind(tb_json_root(doc)) != TB_JSON_ARRAY ||
	         tb_json_count(tb_json_root(doc)) != 3)
		snprintf(why, sizeof(why), "body is not an array of 3 answers");
	else {
		struct tb_json *el = tb_json_first(tb_json_root(doc));
		for (int i = 0; i < 3 && !why[0]; i++, el = tb_json_next(el)) {
			struct tb_buf one;
			tb_buf_init(&one);
			if (tb_json_canon(el, NULL, &one) != TB_OK)
				need_whole(&one); /* out of memory ends the run */
			if (mixed && i == 1) {
				struct tb_json *er = tb_json_get(el, "error"),
				               *eid = tb_json_get(el, "id");
				/* the id is readable, so it MUST be there (9.3) */
				if (er == NULL || tb_json_kind(er) != TB_JSON_STRING ||
				    strcmp(tb_json_string(er, NULL), "sig.bad") != 0 ||
				    eid == NULL || tb_json_kind(eid) != TB_JSON_STRING ||
				    strcmp(tb_json_string(eid, NULL), ids[1]) != 0)
					snprintf(why, sizeof(why),
					         "element 2 is not {\"error\":\"sig.bad\",\"id\":"
					         "its id}");
			} else if (!check_receipt(w, one.data, one.len, ids[i], dgs[i], why,
			                          sizeof(why))) {
				char tmp[200];
				snprintf(tmp, sizeof(tmp), "element %d: %s", i + 1, why);
				snprintf(why, sizeof(why), "%s", tmp);
			}
			tb_buf_free(&one);
		}
	}
	add_why(got, sizeof(got), why);
	result(w, "wire", id, why[0] == '\0',
	       mixed ? "2.04 [receipt, {error:sig.bad,id}, receipt]" : "2.04 [3 receipts]", got,
	       ex.secs);
	tb_json_doc_free(doc);
	ex_free(&ex);
	tb_buf_free(&b);
}

/* A batch of 4 sent with Uri-Query "c" (PROTOCOL.md 9.3): the answer's
 * receipts come in full or, all four, without their Merkle paths; either
 * way, opened together, each must give a receipt for its message that
 * opens on its own. */
static void
case_batch_compact(struct w *w)
{
	const char *id = "wire.batch.compact";
	enum { N = 4 };
	struct tb_env *out[N] = {NULL};
	struct tb_diag dd[N];
	char ids[N][33], dgs[N][65], got[400], why[200] = "";
	size_t off[N], len[N];
	int compact = 0;
	struct tb_buf b;
	struct ex ex;
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0, "c"};
	struct tb_env_open_opts o = {lookup, w, (int64_t)time(NULL), 300, NULL, NULL, NULL};

	if (!want(w, id))
		return;
	tb_buf_init(&b);
	(void)sealed_batch(w, N, -1, ids, dgs, &b);
	r.data = b.data;
	r.len = b.len;
	exchange(w, &r, &ex);
	describe(w, &ex, got, sizeof(got));
	if (!ex.done || ex.code != 204)
		snprintf(why, sizeof(why), "not 2.04");
	else if (tb_env_split_batch(ex.body.data, ex.body.len, off, len, N) != N)
		snprintf(why, sizeof(why), "body is not an array of %d answers", N);
	else {
		for (int i = 0; i < N; i++)
			compact += memmem(ex.body.data + off[i], len[i], "\"path\"", 6) == NULL;
		tb_env_open_many(ex.body.data, off, len, N, &o, out, dd);
		for (int i = 0; i < N && !why[0]; i++) {
			char msg[160];
			struct tb_buf full;
			tb_buf_init(&full);
			if (out[i] == NULL)
				snprintf(why, sizeof(why), "element %d does not open: %s", i + 1,
				         tb_diag_format(&dd[i], msg, sizeof(msg)));
			else if (tb_env_serialize(out[i], &full) != TB_OK ||
			         !check_receipt(w, full.data, full.len, ids[i], dgs[i], msg,
			                        sizeof(msg)))
				snprintf(why, sizeof(why), "element %d: %s", i + 1, msg);
			tb_buf_free(&full);
		}
		if (!why[0] && compact != 0 && compact != N)
			snprintf(why, sizeof(why), "%d of %d receipts without their path", compact,
			         N);
	}
	{
		size_t l = strlen(got);
		snprintf(got + l, sizeof(got) - l, " [%s]",
		         why[0]    ? why
		         : compact ? "compact receipts"
		                   : "full receipts");
	}
	result(w, "wire", id, why[0] == '\0',
	       "2.04 [4 receipts], full or all without their paths, each verifying alone", got,
	       ex.secs);
	for (int i = 0; i < N; i++)
		tb_env_free(out[i]);
	ex_free(&ex);
	tb_buf_free(&b);
}

/* ---- flows (PROTOCOL.md 10): part of `all` ---- */

/* Sends first_type (a valid body, when not NULL), then type with body
 * (NULL: a valid one; "=": the first message's body) and corr (CORR_NONE,
 * CORR_RANDOM, CORR_FIRST: the first message's id); expects code + token. */
enum { CORR_NONE, CORR_RANDOM, CORR_FIRST };

static void
flow_case(struct w *w, const char *id, const char *first_type, const char *type, const char *body,
          int corr, int code, const char *token)
{
	struct tb_buf b, fb;
	struct mk m;
	char mid[33] = "", rid[33];
	struct ex ex;
	struct req r = {&w->me, COAP_REQUEST_CODE_POST, "fed/msg", CF_JSON, NULL, 0, false, 0,
	                NULL};
	uint8_t rnd[16];

	if (!want(w, id))
		return;
	tb_buf_init(&b);
	tb_buf_init(&fb);
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	/* a request naming a service must name one the target offers; only
	 * the service case names one it does not */
	m.service = w->flow_service;
	if (first_type != NULL) {
		valid_body(first_type, &fb);
		m.type = first_type;
		m.body = (const char *)fb.data;
		mk_env(w, &m, &b, mid, NULL);
		r.data = b.data;
		r.len = b.len;
		exchange(w, &r, &ex);
		if (!(ex.done && ex.code == 201)) {
			char got[300];
			describe(w, &ex, got, sizeof(got));
			result(w, "flows", id, false, "first message (2.01)", got, ex.secs);
			ex_free(&ex);
			goto out;
		}
		ex_free(&ex);
		tb_buf_reset(&b);
	}
	need_random(rnd, sizeof(rnd));
	tb_hex_encode(rnd, sizeof(rnd), rid);
	m.type = type;
	m.corr = corr == CORR_RANDOM ? rid : corr == CORR_FIRST ? mid : NULL;
	if (body != NULL && strcmp(body, "=") == 0) {
		m.body = (const char *)fb.data;
	} else if (body != NULL) {
		m.body = body;
	} else {
		valid_body(type, &fb);
		m.body = (const char *)fb.data;
	}
	mk_env(w, &m, &b, NULL, NULL);
	post_expect(w, "flows", id, CF_JSON, &b, code, token);
out:
	tb_buf_free(&b);
	tb_buf_free(&fb);
}

static void
flows_cases(struct w *w)
{
	/* pairing (10.3): answers whose corr names no request the target sent */
	flow_case(w, "flows.identity.result-unsolicited", NULL, "identity.result", NULL,
	          CORR_RANDOM, 409, "flow.unmatched");
	flow_case(w, "flows.licence.status-unmatched-corr", NULL, "licence.status", NULL,
	          CORR_RANDOM, 409, "flow.unmatched");
	flow_case(w, "flows.case.accept-unmatched-corr", NULL, "case.accept", NULL, CORR_RANDOM,
	          409, "flow.unmatched");
	/* a case.result answering the runner's own case.submit: the target
	 * handles that case and sent no request it could answer */
	flow_case(w, "flows.case.result-before-accept", "case.submit", "case.result", NULL,
	          CORR_FIRST, 409, "flow.unmatched");
	flow_case(w, "flows.request-with-corr", NULL, "identity.verify", NULL, CORR_RANDOM, 409,
	          "flow.unmatched");
	/* lifecycle (10.4): the same case submitted twice */
	flow_case(w, "flows.case.submit-existing", "case.submit", "case.submit", "=", CORR_NONE,
	          409, "flow.state");
	/* body schemas (10.1, 10.2) */
	flow_case(w, "flows.body.identity.verify", NULL, "identity.verify",
	          "{\"purpose\":\"tongban-interop\",\"subject\":{\"idhash\":\"ABC\",\"kind\":"
	          "\"person\"}}",
	          CORR_NONE, 400, "body.invalid");
	flow_case(w, "flows.body.licence.query", NULL, "licence.query",
	          "{\"holder\":{\"idhash\":\"" IDHASH "\"}}", CORR_NONE, 400, "body.invalid");
	flow_case(w, "flows.body.case.submit", NULL, "case.submit",
	          "{\"applicant\":{\"idhash\":\"" IDHASH
	          "\",\"kind\":\"person\"},\"case_id\":\"ti-j\","
	          "\"materials\":[],\"mode\":\"joint\",\"service\":\"tongban-interop\"}",
	          CORR_NONE, 400, "body.invalid");
	flow_case(w, "flows.body.control.ping", NULL, "control.ping",
	          "{\"note\":\"tongban-interop\"}", CORR_NONE, 400, "body.invalid");
	w->flow_service = "tongban-interop"; /* offered by nobody */
	flow_case(w, "flows.service.not-offered", NULL, "identity.verify", NULL, CORR_NONE, 403,
	          "service.not-offered");
	w->flow_service = NULL;
}

/* The rejections, one per class (PROTOCOL.md 9.3). */
static const struct rej rejs[] = {
    {"wire.reject.content-format.text", NULL, NULL, 415, "content-format", R_CF_TEXT},
    {"wire.reject.content-format.missing", NULL, NULL, 415, "content-format", R_CF_NONE},
    {"wire.reject.json.empty", NULL, NULL, 400, "json.syntax", R_EMPTY},
    {"wire.reject.json.syntax", "\"v\":1}", "\"v\":1,}", 400, "json.syntax", R_TEXT},
    {"wire.reject.json.utf8", "tongban-interop", "tongban-\xc0\xaf", 400, "json.utf8", R_TEXT},
    {"wire.reject.json.surrogate", "tongban-interop", "tongban-\\ud800", 400, "json.surrogate",
     R_TEXT},
    {"wire.reject.json.duplicate-key", "\"v\":1}", "\"v\":1,\"v\":1}", 400, "json.duplicate-key",
     R_TEXT},
    {"wire.reject.json.number-range", "\"tongban-interop\"", "1e400", 400, "json.number-range",
     R_TEXT},
    {"wire.reject.json.depth", "\"tongban-interop\"",
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", 400,
     "json.depth", R_TEXT},
    {"wire.reject.version", "\"v\":1}", "\"v\":2}", 400, "version", R_TEXT},
    {"wire.reject.field.unknown", "{\"body\"", "{\"aaa\":1,\"body\"", 400, "field.unknown", R_TEXT},
    {"wire.reject.field.missing", "\"hops\":4,", "", 400, "field.missing", R_TEXT},
    {"wire.reject.field.type", "\"hops\":4", "\"hops\":\"4\"", 400, "field.type", R_TEXT},
    {"wire.reject.field.value", "\"hops\":4", "\"hops\":17", 400, "field.value", R_TEXT},
    {"wire.reject.type.unknown", "\"type\":\"" BASE_TYPE "\"", "\"type\":\"control.frobnicate\"",
     422, "type.unknown", R_TEXT},
    {"wire.reject.sig.missing", NULL, NULL, 401, "sig.missing", R_UNSEALED},
    {"wire.reject.sig.alg", "\"alg\":\"p256\"", "\"alg\":\"ed25519\"", 401, "sig.alg", R_TEXT},
    {"wire.reject.sig.unknown-key", NULL, NULL, 401, "sig.unknown-key", R_OTHERKEY},
    {"wire.reject.sig.bad", "tongban-interop", "tongban-interoq", 401, "sig.bad", R_TEXT},
    {"wire.reject.sig.proof", NULL, NULL, 401, "sig.proof", R_PROOF},
    {"wire.reject.time.expired", NULL, NULL, 412, "time.expired", R_EXPIRED},
    {"wire.reject.time.future", NULL, NULL, 412, "time.future", R_FUTURE},
    {"wire.reject.hops", "\"sig\":",
     "\"relay\":{\"path\":[\"110000\",\"120000\",\"130000\",\"140000\",\"150000\"]},"
     "\"sig\":",
     403, "hops", R_TEXT},
    {"wire.reject.forbidden.wrong-sender", NULL, NULL, 403, "forbidden", R_WRONG_SENDER},
    {"wire.reject.forbidden.not-addressed", NULL, NULL, 403, "forbidden", R_NOT_ADDRESSED},
    {"wire.reject.too-large", NULL, NULL, 413, "too-large", R_TOO_LARGE},
    {"wire.reject.encoding", NULL, NULL, 400, "encoding", R_DEFLATE_BAD},
    {"wire.reject.too-large.inflated", NULL, NULL, 413, "too-large", R_DEFLATE_BOMB},
    /* a body starting with '[': its JSON faults first, then batch.invalid
     * for well-formed JSON that is not 1..256 objects (PROTOCOL.md 9.3) */
    {"wire.batch.malformed", NULL, "[{\"v\":1,]", 400, "json.syntax", R_BATCH_BAD},
    {"wire.batch.not-objects", NULL, "[1,2]", 400, "batch.invalid", R_BATCH_BAD},
    {"wire.batch.empty", NULL, "[]", 400, "batch.invalid", R_BATCH_BAD},
    {"wire.batch.too-many", NULL, NULL, 400, "batch.invalid", R_BATCH_BAD},
};

/* A message large enough to need block-wise transfer (~40 KB). */
static void
case_blockwise(struct w *w, struct mk *m)
{
	if (!want(w, "wire.msg.blockwise"))
		return;
	struct tb_buf body;
	tb_buf_init(&body);
	uint8_t rnd[8];
	char hex[17];
	/* a case.submit of 120 materials with 250-byte names: ~40 KB */
	need_random(rnd, sizeof(rnd));
	tb_hex_encode(rnd, sizeof(rnd), hex);
	tb_buf_printf(&body,
	              "{\"applicant\":{\"idhash\":\"" IDHASH "\",\"kind\":\"person\"},"
	              "\"case_id\":\"ti-bw-%s\",\"materials\":[",
	              hex);
	for (int i = 0; i < 120; i++) {
		tb_buf_printf(&body, "%s{\"name\":\"", i ? "," : "");
		for (int k = 0; k < 250; k++)
			tb_buf_addc(&body, (uint8_t)('a' + (i + k) % 26));
		tb_buf_adds(&body, "\",\"sha256\":\"" IDHASH "\",\"size\":1}");
	}
	tb_buf_adds(&body, "],\"mode\":\"online\",\"service\":\"tongban-interop\"}");
	tb_buf_addc(&body, 0);
	need_whole(&body);
	m->type = "case.submit";
	m->body = (const char *)body.data;
	post_accept(w, "wire.msg.blockwise", m);
	m->type = NULL;
	m->body = NULL;
	tb_buf_free(&body);
}

/* Acceptance: every type of protocol v1 at the envelope level. */
static void
case_accept_types(struct w *w)
{
	struct mk m;
	memset(&m, 0, sizeof(m));
	m.key = w->as_key;
	if (want(w, "wire.msg.accept"))
		post_accept(w, "wire.msg.accept", &m);
	/* requests and notices with a valid body are accepted; an
	 * answer (its corr names no request the target sent) is
	 * refused 4.09 flow.unmatched, a receipt 4.09 too (10.3) */
	struct tb_buf vb;
	tb_buf_init(&vb);
	for (const char *const *ty = tb_msgtype_all(); *ty; ty++) {
		char id[96], rid[33];
		uint8_t rnd[16];
		snprintf(id, sizeof(id), "wire.msg.type.%s", *ty);
		if (!want(w, id))
			continue;
		valid_body(*ty, &vb);
		m.type = *ty;
		m.body = (const char *)vb.data;
		if (tb_flow_role(*ty) == TB_FLOW_ANSWER) {
			struct tb_buf b;
			need_random(rnd, sizeof(rnd));
			tb_hex_encode(rnd, sizeof(rnd), rid);
			m.corr = rid;
			tb_buf_init(&b);
			mk_env(w, &m, &b, NULL, NULL);
			post_expect(w, "wire", id, CF_JSON, &b, 409, "flow.unmatched");
			tb_buf_free(&b);
			m.corr = NULL;
		} else {
			post_accept(w, id, &m);
		}
	}
	tb_buf_free(&vb);
	m.type = NULL;
	m.body = NULL;
	case_blockwise(w, &m);
}

int
ti_suite_wire(struct ti *t, int mode)
{
	struct w w;
	int rc;

	memset(&w, 0, sizeof(w));
	w.t = t;
	w.known = mode == TI_SUITE_KNOWN;
	if (t->list) {
		/* ids only: no setup */
	} else if ((rc = setup(&w)) != 0) {
		teardown(&w);
		return rc;
	}
	if (mode == TI_SUITE_FLOWS) {
		flows_cases(&w);
		teardown(&w);
		return 0;
	}
	/* discovery and resources (PROTOCOL.md 9) */
	case_core(&w);
	case_status(&w);
	case_method(&w, "wire.resource.not-found", COAP_REQUEST_CODE_GET, "fed/no-such-resource",
	            404);
	case_method(&w, "wire.resource.method-not-allowed", COAP_REQUEST_CODE_GET, "fed/msg", 405);
	/* handshakes */
	case_tls(&w, "wire.tls.member", &w.me, true, "handshake accepted, 2.05");
	case_server_identity(&w);
	case_tls(&w, "wire.tls.no-certificate", &w.none, false, "handshake refused");
	case_tls(&w, "wire.tls.foreign-ca", &w.foreign, false, "handshake refused");
	case_tls(&w, "wire.tls.expired", &w.expired, false, "handshake refused");
	case_tls(&w, "wire.tls.revoked", &w.revoked, false, "handshake refused");
	case_tls(&w, "wire.tls.non-member", &w.nonmember, false, "handshake refused");
	case_accept_types(&w);
	case_duplicate(&w);
	case_block_retransmit(&w);
	case_block_stray(&w);
	case_pipelined(&w);
	case_deflate(&w);
	case_batch(&w, false);
	case_batch(&w, true);
	case_batch_compact(&w);
	/* rejections, one per class */
	for (size_t i = 0; i < sizeof(rejs) / sizeof(rejs[0]); i++)
		case_reject(&w, &rejs[i]);
	case_replay(&w);
	/* registry distribution */
	case_registry(&w, false);
	case_registry(&w, true);
	teardown(&w);
	return 0;
}
