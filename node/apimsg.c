/*
 * apimsg.c - the local API's messages, shared by the request handlers
 * (api.c) and the ingest thread (ingest.c): message request objects in,
 * JSON replies and error objects out.
 */
#include "apimsg.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
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

int
tb_api_http_code(int err)
{
	switch (err) {
	case TB_E_IO:
	case TB_E_NOMEM:
	case TB_E_CRYPTO: return 503;
	case TB_E_FLOW_STATE:
	case TB_E_FLOW_UNMATCHED: return 409;
	case TB_E_SERVICE: return 422;
	default: return 400;
	}
}

const struct tb_json_limits tb_api_json_limits = {256 * 1024, TB_ENV_MAX_DEPTH + 1};

/* The member's string (NUL-terminated; one holding a NUL counts as not
 * a string), or NULL. */
static const char *
jstr(const struct tb_json *o, const char *k)
{
	const struct tb_json *v = tb_json_get(o, k);
	size_t n;
	const char *s;

	if (v == NULL || tb_json_kind(v) != TB_JSON_STRING)
		return NULL;
	s = tb_json_string(v, &n);
	return memchr(s, '\0', n) == NULL ? s : NULL;
}

const char *
tb_api_fields(const struct tb_json *o, const char *default_to, struct tb_env_fields *f)
{
	const struct tb_json *v, *body;

	memset(f, 0, sizeof(*f));
	if (o == NULL || tb_json_kind(o) != TB_JSON_OBJECT)
		return "each message must be a JSON object";
	f->type = jstr(o, "type");
	f->to = jstr(o, "to");
	f->service = jstr(o, "service");
	f->corr = jstr(o, "corr");
	if ((v = tb_json_get(o, "ttl")) != NULL && tb_json_kind(v) == TB_JSON_NUMBER)
		f->ttl = (int64_t)tb_json_number(v);
	if ((v = tb_json_get(o, "hops")) != NULL && tb_json_kind(v) == TB_JSON_NUMBER)
		f->hops = (int)tb_json_number(v);
	if (f->type == NULL)
		return "type";
	if (f->to == NULL && tb_json_get(o, "to") == NULL)
		f->to = default_to;
	/* without "to", "region" (with "service") asks the node to route */
	if (f->to == NULL && (f->route_region = jstr(o, "region")) != NULL)
		f->route_service = f->service;
	if (f->to == NULL && (f->route_region == NULL || f->route_service == NULL))
		return "to";
	body = tb_json_get(o, "body");
	if (body != NULL) {
		if (tb_json_kind(body) != TB_JSON_OBJECT)
			return "body must be an object";
		f->body_json = body;
	}
	return NULL;
}
