/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flows.c - message flows at the node (docs/PROTOCOL.md section 10):
 * body schemas, answers matched to open requests, the case lifecycle on
 * both sides.  The reference responder is in responder.c.
 */
#include "flows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../federation/tb_reg.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_err.h"
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

int
tb_flows_prefetch(struct tb_journal *j, const char *self, const struct tb_env *const *envs,
                  size_t count, bool sending)
{
	const char **req = calloc(count ? count : 1, sizeof(*req));
	const char **hnd = calloc(count ? count : 1, sizeof(*hnd));
	const char **cid = calloc(count ? count : 1, sizeof(*cid));
	size_t k = 0;
	int rc = TB_OK;

	/* without memory the flows read the states one by one */
	for (size_t i = 0; req != NULL && hnd != NULL && cid != NULL && i < count; i++) {
		const struct tb_env *e = envs[i];
		const char *type = e ? tb_env_type(e) : NULL;

		if (type == NULL || !tb_flow_case_moves(type) ||
		    (cid[k] = tb_flow_case_id(tb_env_body(e))) == NULL)
			continue;
		case_key(type, sending ? self : tb_env_from(e), sending ? tb_env_to(e) : self,
		         &req[k], &hnd[k]);
		if (req[k] != NULL && hnd[k] != NULL)
			k++;
	}
	if (k > 0)
		rc = tb_journal_case_prefetch(j, req, hnd, cid, k);
	free(req);
	free(hnd);
	free(cid);
	return rc;
}
