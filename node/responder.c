/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder.c - the reference responder: an optional consumer of the
 * inbound and outbound stages (config key `responder`) that answers
 * identity, licence and case requests from a fixtures file, so that
 * demos and tests need no outside system.  It answers after the
 * receiving exchange is committed, through tb_outbound_submit, and
 * acknowledges what it answered in the inbox.
 */
#include "responder.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "inbound.h"
#include "journal.h"
#include "log.h"
#include "outbound.h"

struct tb_responder {
	struct tb_node *n;
	cJSON *fx; /* the fixtures document */
	/* delivered case.accept messages whose case.result the responder
	 * sends once the delivering transaction is committed */
	char (*pending_results)[33];
	size_t npending_results;
};

int
tb_responder_load(struct tb_node *n, struct tb_responder **rp, struct tb_diag *d)
{
	struct tb_buf b;
	cJSON *fx;

	*rp = NULL;
	if (n->cfg.responder[0] == '\0')
		return TB_OK;
	tb_buf_init(&b);
	if (tb_file_read(n->cfg.responder, 4u << 20, &b, d) != TB_OK) {
		tb_buf_free(&b);
		return d->code;
	}
	fx = cJSON_ParseWithLength((const char *)b.data, b.len);
	tb_buf_free(&b);
	if (!cJSON_IsObject(fx)) {
		cJSON_Delete(fx);
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: not a JSON object",
		                   n->cfg.responder);
	}
	if ((*rp = calloc(1, sizeof(**rp))) == NULL) {
		cJSON_Delete(fx);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	(*rp)->n = n;
	(*rp)->fx = fx;
	return TB_OK;
}

void
tb_responder_free(struct tb_responder *r)
{
	if (r == NULL)
		return;
	cJSON_Delete(r->fx);
	free(r->pending_results);
	free(r);
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *
find_by(const cJSON *arr, const char *k, const char *v)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr)
	{
		const char *s = jstr(e, k);
		if (s != NULL && v != NULL && strcmp(s, v) == 0)
			return e;
	}
	return NULL;
}

/* Sends one answer; body is consumed. */
static void
answer(struct tb_node *n, const char *to, const char *type, const char *corr, const char *service,
       cJSON *body)
{
	struct tb_env_fields f;
	char *text = cJSON_PrintUnformatted(body), id[33];
	struct tb_diag d;

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.to = to;
	f.corr = corr;
	f.service = service;
	f.body = (const uint8_t *)text;
	f.body_len = text ? strlen(text) : 0;
	if (text == NULL || tb_outbound_submit(n, &f, id, &d) != TB_OK)
		log_warnx("responder: cannot answer %s %s: %s", type, corr,
		          text ? d.detail : "nomem");
	else
		log_debug("responder: %s %s -> %s (%s)", type, id, to, corr);
	cJSON_free(text);
	cJSON_Delete(body);
}

/* Signs a fixture licence as this node (the issuer). */
static cJSON *
signed_licence(struct tb_node *n, const cJSON *fxl)
{
	char *text = cJSON_PrintUnformatted(fxl);
	struct tb_json_doc *doc =
	    text ? tb_json_parse((const uint8_t *)text, strlen(text), NULL, NULL) : NULL;
	struct tb_json *l = doc ? tb_json_root(doc) : NULL;
	struct tb_buf b;
	cJSON *out = NULL;

	tb_buf_init(&b);
	if (l != NULL &&
	    tb_json_set(doc, l, "issuer",
	                tb_json_new_string(doc, n->cfg.member_id, strlen(n->cfg.member_id))) ==
	        TB_OK &&
	    tb_flow_licence_sign(doc, l, n->sign_key, NULL) == TB_OK &&
	    tb_json_canon(l, NULL, &b) == TB_OK)
		out = cJSON_ParseWithLength((const char *)b.data, b.len);
	tb_buf_free(&b);
	tb_json_doc_free(doc);
	cJSON_free(text);
	return out;
}

/* The case rules for a service: fixtures.cases[service] or .default. */
static const cJSON *
case_rule(const cJSON *fx, const char *service)
{
	const cJSON *cases = cJSON_GetObjectItemCaseSensitive(fx, "cases"), *r = NULL;

	if (service != NULL)
		r = cJSON_GetObjectItemCaseSensitive(cases, service);
	return r != NULL ? r : cJSON_GetObjectItemCaseSensitive(cases, "default");
}

/* Inbound consumer: answers a request received for this node from the
 * fixtures (after its transaction is committed). */
static void
handle(void *ctx, const struct tb_env *e)
{
	struct tb_responder *r = ctx;
	struct tb_node *n = r->n;
	const cJSON *fx = r->fx;
	const char *type = tb_env_type(e), *from = tb_env_from(e), *id = tb_env_id(e);
	const char *svc = tb_env_service(e);
	const struct tb_json *body = tb_env_body(e);
	struct tb_buf bb;
	cJSON *req = NULL, *a = NULL;

	if (fx == NULL || tb_flow_role(type) != TB_FLOW_REQUEST)
		return;
	tb_buf_init(&bb);
	if (tb_json_canon(body, NULL, &bb) == TB_OK) /* else no answer, as for out of memory */
		req = cJSON_ParseWithLength((const char *)bb.data, bb.len);
	tb_buf_free(&bb);
	if (req == NULL)
		return;
	if (strcmp(type, "identity.verify") == 0) {
		const cJSON *subj = cJSON_GetObjectItemCaseSensitive(req, "subject");
		const cJSON *p = find_by(cJSON_GetObjectItemCaseSensitive(fx, "people"), "idhash",
		                         jstr(subj, "idhash"));
		a = cJSON_CreateObject();
		if (p != NULL) {
			cJSON_AddStringToObject(a, "result", "match");
			cJSON_AddStringToObject(a, "assurance",
			                        jstr(p, "assurance") ? jstr(p, "assurance")
			                                             : "substantial");
			const cJSON *at = cJSON_GetObjectItemCaseSensitive(p, "attributes");
			if (cJSON_IsObject(at))
				cJSON_AddItemToObject(a, "attributes", cJSON_Duplicate(at, 1));
		} else {
			cJSON_AddStringToObject(a, "result", "no-match");
		}
		answer(n, from, "identity.result", id, svc, a);
	} else if (strcmp(type, "licence.query") == 0) {
		const cJSON *holder = cJSON_GetObjectItemCaseSensitive(req, "holder"), *l;
		const char *hid = jstr(holder, "idhash"), *lt = jstr(req, "licence");
		cJSON *arr;
		a = cJSON_CreateObject();
		arr = cJSON_AddArrayToObject(a, "licences");
		cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(fx, "licences"))
		{
			const char *h = jstr(l, "holder_idhash"), *t = jstr(l, "type");
			cJSON *sl;
			if (h && hid && t && lt && strcmp(h, hid) == 0 && strcmp(t, lt) == 0 &&
			    (sl = signed_licence(n, l)) != NULL)
				cJSON_AddItemToArray(arr, sl);
		}
		answer(n, from, "licence.present", id, svc, a);
	} else if (strcmp(type, "licence.verify") == 0) {
		const char *lid = jstr(req, "licence_id"), *dg = jstr(req, "digest");
		const cJSON *l =
		    find_by(cJSON_GetObjectItemCaseSensitive(fx, "licences"), "id", lid);
		cJSON *sl = l ? signed_licence(n, l) : NULL;
		const char *status = "unknown";
		if (sl != NULL && dg != NULL && jstr(sl, "digest") &&
		    strcmp(jstr(sl, "digest"), dg) == 0)
			status = jstr(l, "status") ? jstr(l, "status") : "valid";
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "licence_id", lid ? lid : "");
		cJSON_AddStringToObject(a, "status", status);
		cJSON_AddNumberToObject(a, "checked", (double)tb_now());
		cJSON_Delete(sl);
		answer(n, from, "licence.status", id, svc, a);
	} else if (strcmp(type, "case.submit") == 0) {
		const cJSON *rule = case_rule(fx, jstr(req, "service"));
		const char *cid = jstr(req, "case_id"), *dec = jstr(rule, "decision");
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "case_id", cid ? cid : "");
		if (dec != NULL && strcmp(dec, "reject") == 0) {
			cJSON_AddStringToObject(a, "reason",
			                        jstr(rule, "reason") ? jstr(rule, "reason")
			                                             : "not accepted");
			answer(n, from, "case.reject", id, svc, a);
		} else {
			/* the result follows once the acceptance is delivered */
			answer(n, from, "case.accept", id, svc, a);
		}
	} else if (strcmp(type, "case.query") == 0) {
		const char *cid = jstr(req, "case_id");
		int st = 0;
		if (cid != NULL &&
		    tb_journal_case_get(n->journal, from, n->cfg.member_id, cid, &st) != TB_OK) {
			cJSON_Delete(req); /* no answer rather than a wrong state */
			return;
		}
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "case_id", cid ? cid : "");
		cJSON_AddStringToObject(a, "state", tb_case_state_name((enum tb_case_state)st));
		answer(n, from, "case.state", id, svc, a);
	} else if (strcmp(type, "control.ping") == 0) {
		answer(n, from, "control.pong", id, svc, cJSON_CreateObject());
	}
	cJSON_Delete(req);
	/* answered here: not left for the city's systems to collect */
	if (tb_journal_inbox_ack(n->journal, id) != TB_OK)
		log_warnx("responder: cannot acknowledge %s", id);
}

/* Outbound's delivered hook: a message of type with corr was delivered;
 * the responder's case.result follows its case.accept.  Called outside
 * transactions. */
static void
delivered(void *ctx, const char *type, const char *corr)
{
	struct tb_responder *r = ctx;
	struct tb_node *n = r->n;
	struct tb_journal_inbound in;
	struct tb_buf env;
	struct tb_env *sub = NULL;
	cJSON *a;

	if (strcmp(type, "case.accept") != 0 || corr == NULL)
		return;
	tb_buf_init(&env);
	if (tb_journal_inbound_get(n->journal, corr, &in, &env) == TB_OK &&
	    (sub = tb_env_parse(env.data, env.len, NULL)) != NULL) {
		const struct tb_json *body = tb_env_body(sub);
		const struct tb_json *sv = tb_json_get(body, "service");
		const cJSON *rule = case_rule(r->fx, sv ? tb_json_string(sv, NULL) : NULL);
		const char *out = jstr(rule, "outcome");
		a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "case_id",
		                        tb_flow_case_id(body) ? tb_flow_case_id(body) : "");
		cJSON_AddStringToObject(a, "outcome", out ? out : "approved");
		answer(n, in.from, "case.result", corr, tb_env_service(sub), a);
	}
	tb_env_free(sub);
	tb_buf_free(&env);
}

/* Inbound consumer, inside the exchange's transaction: a message of
 * ours was settled by a receipt that came back through a hub; what
 * delivered() would do waits for the commit (run_pending). */
static void
note(void *ctx, const char *id, const char *type, const char *corr)
{
	struct tb_responder *r = ctx;
	char(*v)[33];

	(void)id;
	if (strcmp(type, "case.accept") != 0 || corr == NULL || !*corr)
		return;
	if ((v = realloc(r->pending_results, (r->npending_results + 1) * sizeof(*v))) == NULL)
		return;
	r->pending_results = v;
	snprintf(v[r->npending_results++], 33, "%s", corr);
}

/* Inbound consumer: the exchange's transaction is committed. */
static void
run_pending(void *ctx, bool relayed)
{
	struct tb_responder *r = ctx;
	size_t k = r->npending_results;

	(void)relayed;
	r->npending_results = 0;
	for (size_t i = 0; i < k; i++)
		delivered(r, "case.accept", r->pending_results[i]);
}

void
tb_responder_start(struct tb_responder *r)
{
	struct tb_inbound_consumer c = {note, run_pending, handle, r};

	if (r == NULL)
		return;
	tb_inbound_add_consumer(r->n, &c);
	tb_outbound_on_delivered(r->n, delivered, r);
}
