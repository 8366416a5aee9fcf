/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apimsg.c - the local API's messages, shared by the request handlers
 * (api.c) and the ingest thread (ingest.c): message request objects in,
 * JSON replies and error objects out.
 */
#include "apimsg.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_err.h"

void
tb_api_send(struct evhttp_request *req, int code, const char *reason, const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

void
tb_api_reply(struct evhttp_request *req, int code, const char *body, size_t len)
{
	tb_api_send(req, code, NULL, body, len);
}

char *
tb_api_error_text(const char *reason_token, const char *detail)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	if (o != NULL && cJSON_AddStringToObject(o, "error", reason_token) != NULL &&
	    (detail == NULL || *detail == '\0' || cJSON_AddStringToObject(o, "detail", detail)))
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

void
tb_api_add_held(cJSON *r, int err)
{
	char detail[200];

	if (err == TB_OK)
		return;
	snprintf(detail, sizeof(detail),
	         "%s: the message is queued and sent once this node "
	         "exchanges messages again",
	         tb_err_str(err));
	if (cJSON_AddStringToObject(r, "held", tb_err_reason(err)) != NULL)
		(void)cJSON_AddStringToObject(r, "detail", detail); /* out of memory: no detail */
}

int
tb_api_http_code(int err)
{
	switch (err) {
	case TB_E_IO:
	case TB_E_NOMEM:
	case TB_E_JOURNAL_FULL:
	case TB_E_JOURNAL_DOWN:
	case TB_E_CRYPTO: return 503;
	case TB_E_FLOW_STATE:
	case TB_E_FLOW_UNMATCHED: return 409;
	case TB_E_SERVICE: return 422;
	case TB_E_MEMBER_REVOKED: return 403;
	default: return 400;
	}
}

const struct tb_json_limits tb_api_json_limits = {256 * 1024, TB_ENV_MAX_DEPTH + 1};

/* One message request (man/tongban-node.8, POST /v1/messages): the
 * schema engine's table, so a member the node does not know is refused
 * (field.unknown) instead of being ignored. */
static const struct tb_field s_msg[] = {
    {.name = "type", .t = TB_ST_STR, .req = true, .max = 64, .pred = tb_msgtype_valid,
     .what = "a version 1 message type", .code = TB_E_TYPE_UNKNOWN},
    TB_F("to", TB_ST_MEMBER, false),
    TB_F("service", TB_ST_CODE, false),
    TB_F("region", TB_ST_REGION, false),
    TB_F_HEX("corr", false, 2 * TB_MSGID_LEN),
    TB_F_INT("ttl", false, 1, TB_ENV_MAX_LIFETIME),
    TB_F_INT("hops", false, 1, TB_ENV_MAX_HOPS),
    TB_F_OBJ("body", false, NULL, NULL), /* its type's schema: tb_flow, when sealed */
    TB_F_END};
static const struct tb_field s_msg_root = TB_F_OBJ(NULL, true, s_msg, NULL);

static const char *
str_of(const struct tb_json *o, const char *k)
{
	const struct tb_json *v = tb_json_get(o, k);
	return v != NULL ? tb_json_string(v, NULL) : NULL;
}

int
tb_api_fields(const struct tb_json *o, const char *default_to, struct tb_env_fields *f,
              struct tb_diag *d)
{
	static const struct tb_schema_opts opts = {.root = ""};
	const struct tb_json *v;
	int64_t x;
	int rc;

	memset(f, 0, sizeof(*f));
	if ((rc = tb_schema_check(&s_msg_root, o, &opts, d)) != TB_OK)
		return rc;
	f->type = str_of(o, "type");
	f->to = str_of(o, "to");
	f->service = str_of(o, "service");
	f->corr = str_of(o, "corr");
	if ((v = tb_json_get(o, "ttl")) != NULL && tb_json_integer(v, &x))
		f->ttl = x;
	if ((v = tb_json_get(o, "hops")) != NULL && tb_json_integer(v, &x))
		f->hops = (int)x;
	if (f->to == NULL)
		f->to = default_to;
	/* without "to", "region" (with "service") asks the node to route */
	if (f->to == NULL && (f->route_region = str_of(o, "region")) != NULL)
		f->route_service = f->service;
	if (f->to == NULL && (f->route_region == NULL || f->route_service == NULL))
		return tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
		                   "to: required (or service and region)");
	f->body_json = tb_json_get(o, "body");
	return TB_OK;
}
