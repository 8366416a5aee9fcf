/*
 * flows.c - message flows at the node (docs/PROTOCOL.md section 10):
 * body schemas, answers matched to open requests, the case lifecycle on
 * both sides, and the reference responder that answers requests from a
 * fixtures file so that demos and tests need no outside system.
 */
#include "node.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../federation/tb_reg.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "journal.h"
#include "log.h"

/* The case a case.* message moves: (requester, handler, case id). */
static void
case_key(const char *type, const char *from, const char *to, const char **req, const char **hnd)
{
	if (strcmp(type, "case.submit") == 0 || strcmp(type, "case.query") == 0) {
		*req = from;
		*hnd = to;
	} else {
		*req = to;
		*hnd = from;
	}
}

/* Case lifecycle step for a message from -> to; applied to the journal
 * (inside the caller's transaction) when allowed. */
static int
case_step(struct tb_journal *j, const char *type, const struct tb_json *body, const char *from,
          const char *to, struct tb_diag *d)
{
	const char *req, *hnd, *cid = tb_flow_case_id(body);
	int cur;
	enum tb_case_state next;
	int rc;

	if (!tb_flow_case_moves(type) || cid == NULL)
		return TB_OK;
	case_key(type, from, to, &req, &hnd);
	if (tb_journal_case_get(j, req, hnd, cid, &cur) != TB_OK)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "journal: case state");
	if ((rc = tb_flow_case_next((enum tb_case_state)cur, type, &next, d)) != TB_OK)
		return rc;
	if (tb_journal_case_set(j, req, hnd, cid, (int)next, tb_now()) != TB_OK)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "journal: case state");
	return TB_OK;
}

/* True when the case a case.* message names exists (an unknown case is
 * the lifecycle's to refuse, with flow.state). */
static bool
case_known(struct tb_journal *j, const char *type, const struct tb_json *body, const char *from,
           const char *to)
{
	const char *req, *hnd, *cid = tb_flow_case_id(body);
	int cur = 0;

	if (cid == NULL)
		return false;
	case_key(type, from, to, &req, &hnd);
	return tb_journal_case_get(j, req, hnd, cid, &cur) == TB_OK && cur != 0;
}

/* A case answer must name the case of the case.submit its corr names
 * (the request is ours when receiving, the peer's when sending). */
static int
same_case(struct tb_journal *j, const char *corr, const struct tb_json *body, bool ours,
          struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_env *sub = NULL;
	struct tb_journal_inbound in;
	const char *want = NULL, *got = tb_flow_case_id(body);
	int rc = TB_OK, jr;

	tb_buf_init(&b);
	jr = ours ? tb_journal_outbound_envelope(j, corr, &b)
	          : tb_journal_inbound_get(j, corr, &in, &b);
	if (jr == TB_OK && (sub = tb_env_parse(b.data, b.len, NULL)) != NULL)
		want = tb_flow_case_id(tb_env_body(sub));
	if (want == NULL || got == NULL || strcmp(want, got) != 0)
		rc = tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
		                 "case_id %.64s is not the case of request %s",
		                 got ? got : "(none)", corr);
	tb_env_free(sub);
	tb_buf_free(&b);
	return rc;
}

int
tb_flows_inbound(struct tb_node *n, const struct tb_env *e, struct tb_diag *d)
{
	const char *type = tb_env_type(e), *corr = tb_env_corr(e), *from = tb_env_from(e);
	enum tb_flow_role role = tb_flow_role(type);
	int rc;

	if ((rc = tb_flow_check_body(type, tb_env_body(e), d)) != TB_OK)
		return rc;
	if (role == TB_FLOW_ANSWER) {
		struct tb_journal_status st;
		bool closed = false;
		if (corr == NULL)
			return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
			                   "%s needs corr, the id of the request it answers", type);
		if (tb_journal_outbound_status(n->journal, corr, &st, NULL) != TB_OK ||
		    strcmp(st.from, n->cfg.member_id) != 0 || strcmp(st.to, from) != 0 ||
		    !tb_flow_answers(type, st.type))
			return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
			                   "%s %s answers no request of ours to %s", type, corr,
			                   from);
		if (tb_journal_request_closed(n->journal, corr, &closed) != TB_OK)
			return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "journal: requests");
		if (closed)
			return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
			                   "request %s was already answered", corr);
		if (tb_flow_case_moves(type) &&
		    case_known(n->journal, type, tb_env_body(e), from, n->cfg.member_id) &&
		    (rc = same_case(n->journal, corr, tb_env_body(e), true, d)) != TB_OK)
			return rc;
	} else if (corr != NULL) {
		return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
		                   "%s answers nothing: corr not allowed", type);
	}
	if ((rc = case_step(n->journal, type, tb_env_body(e), from, n->cfg.member_id, d)) != TB_OK)
		return rc;
	if (role == TB_FLOW_ANSWER && tb_flow_is_final(type) &&
	    tb_journal_request_close(n->journal, corr, tb_now()) != TB_OK)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "journal: requests");
	return TB_OK;
}

int
tb_flows_outbound(struct tb_node *n, struct tb_journal *j, const struct tb_env *e,
                  struct tb_diag *d)
{
	const char *type = tb_env_type(e), *corr = tb_env_corr(e), *to = tb_env_to(e);
	const char *svc = tb_env_service(e);
	enum tb_flow_role role = tb_flow_role(type);
	int rc;

	if ((rc = tb_flow_check_body(type, tb_env_body(e), d)) != TB_OK)
		return rc;
	/* refused here what the recipient would refuse: a request for a
	 * service it does not offer */
	if (role == TB_FLOW_REQUEST && svc != NULL && to != NULL && !tb_node_offers(n, to, svc))
		return tb_diag_set(d, TB_E_SERVICE, TB_DIAG_NOPOS, "%s does not offer service %s",
		                   to, svc);
	if (role == TB_FLOW_ANSWER) {
		struct tb_journal_inbound in;
		if (corr == NULL)
			return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
			                   "%s needs corr, the id of the request it answers", type);
		if (tb_journal_inbound_get(j, corr, &in, NULL) != TB_OK ||
		    strcmp(in.from, to) != 0 || !tb_flow_answers(type, in.type))
			return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
			                   "%s %s answers no request %s sent to us", type, corr,
			                   to);
		if (tb_flow_case_moves(type) &&
		    case_known(j, type, tb_env_body(e), n->cfg.member_id, to) &&
		    (rc = same_case(j, corr, tb_env_body(e), false, d)) != TB_OK)
			return rc;
	} else if (corr != NULL) {
		return tb_diag_set(d, TB_E_FLOW_UNMATCHED, TB_DIAG_NOPOS,
		                   "%s answers nothing: corr not allowed", type);
	}
	return case_step(j, type, tb_env_body(e), n->cfg.member_id, to, d);
}

/* ---- the reference responder ---- */

struct tb_responder {
	cJSON *fx; /* the fixtures document */
};

int
tb_responder_load(struct tb_node *n, struct tb_diag *d)
{
	struct tb_buf b;
	cJSON *fx;

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
	if ((n->responder = calloc(1, sizeof(*n->responder))) == NULL) {
		cJSON_Delete(fx);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	n->responder->fx = fx;
	return TB_OK;
}

void
tb_responder_free(struct tb_responder *r)
{
	if (r == NULL)
		return;
	cJSON_Delete(r->fx);
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

void
tb_responder_handle(struct tb_node *n, const struct tb_env *e)
{
	const cJSON *fx = n->responder ? n->responder->fx : NULL;
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
			log_warnx("responder: no answer to %s: %s", id, /* not a wrong state */
			          tb_journal_diag(n->journal)->detail);
			cJSON_Delete(req);
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

void
tb_responder_delivered(struct tb_node *n, const char *type, const char *corr)
{
	struct tb_journal_inbound in;
	struct tb_buf env;
	struct tb_env *sub = NULL;
	cJSON *a;

	if (n->responder == NULL || strcmp(type, "case.accept") != 0 || corr == NULL)
		return;
	tb_buf_init(&env);
	if (tb_journal_inbound_get(n->journal, corr, &in, &env) == TB_OK &&
	    (sub = tb_env_parse(env.data, env.len, NULL)) != NULL) {
		const struct tb_json *body = tb_env_body(sub);
		const struct tb_json *sv = tb_json_get(body, "service");
		const cJSON *rule =
		    case_rule(n->responder->fx, sv ? tb_json_string(sv, NULL) : NULL);
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

void
tb_responder_note(struct tb_node *n, const char *type, const char *corr)
{
	char(*v)[33];

	if (n->responder == NULL || strcmp(type, "case.accept") != 0 || corr == NULL || !*corr)
		return;
	if ((v = realloc(n->pending_results, (n->npending_results + 1) * sizeof(*v))) == NULL)
		return;
	n->pending_results = v;
	snprintf(v[n->npending_results++], 33, "%s", corr);
}

void
tb_responder_run_pending(struct tb_node *n)
{
	size_t k = n->npending_results;

	n->npending_results = 0;
	for (size_t i = 0; i < k; i++)
		tb_responder_delivered(n, "case.accept", n->pending_results[i]);
}
