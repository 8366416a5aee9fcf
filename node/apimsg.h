/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apimsg.h - the local API's messages (apimsg.c): reading a message
 * request object, writing JSON replies and error objects.  Used by the
 * request handlers (api.c) and the ingest thread (ingest.c); the
 * functions that send run on the loop only, the others on any thread.
 */
#ifndef TB_APIMSG_H
#define TB_APIMSG_H

#include <stddef.h>

#include "../util/tb_err.h"

struct cJSON;
struct evhttp_request;
struct tb_diag;
struct tb_env_fields;
struct tb_json;
struct tb_json_limits;

/* Sends a JSON answer (body borrowed) with reason as the HTTP reason
 * phrase (NULL: the standard one). */
void tb_api_send(struct evhttp_request *req, int code, const char *reason, const char *body,
                 size_t len);
/* Sends a JSON answer (body borrowed). */
void tb_api_reply(struct evhttp_request *req, int code, const char *body, size_t len);
/* The API's error object {"error": reason, "detail"?} as JSON text
 * (caller frees with cJSON_free), NULL when out of memory. */
TB_MUST_CHECK char *tb_api_error_text(const char *reason_token, const char *detail);
/* To a 202 answer r (an object): when err (tb_node_state_err) is not 0,
 * "held": its reason token (node.recovery, member.suspended) and
 * "detail": that the message is queued and sent once the node exchanges
 * messages again.  Out of memory leaves r without them. */
void tb_api_add_held(struct cJSON *r, int err);
/* HTTP status for a refused submission (tb_err code). */
int tb_api_http_code(int err);
/* Limits for a message request (POST /v1/messages, reply): 256 KiB, and
 * a message's body no deeper than an envelope allows under the bulk
 * array and the message object. */
extern const struct tb_json_limits tb_api_json_limits;
/* Reads one message request object, parsed by tb_json_parse, into f;
 * strings and the body stay owned by o's document.  default_to (may be
 * NULL) stands in for a missing "to".  0, or the schema's refusal
 * (field.unknown, field.missing, field.type, field.value, type.unknown)
 * with d's detail naming the member. */
TB_MUST_CHECK int tb_api_fields(const struct tb_json *o, const char *default_to,
                                struct tb_env_fields *f, struct tb_diag *d);

#endif
