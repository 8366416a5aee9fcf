/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the local HTTP/JSON API for the city's own systems (evhttp on
 * loopback, bearer token).  docs/API.md lists the endpoints.  cJSON reads
 * request bodies here: nothing in them is signed as received.
 */
#include "api.h"
#include "apiconn.h"
#include "apimsg.h"
#include "flood.h"
#include "ingest.h"
#include "lifecycle.h"
#include "outbound.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../federation/tb_reg.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_port.h"
#include "journal.h"
#include "log.h"

#define API_BODY_MAX (256 * 1024)
#define API_BACKLOG 1024

/* process_start_time_seconds: when the node started (tb_api_start, just
 * after the configuration, keys and journal were opened), Unix time */
static double started;

/* Sends a JSON answer with an HTTP reason phrase (apimsg.c). */
static void
reply(struct evhttp_request *req, int code, const char *reason, const char *body, size_t len)
{
	tb_api_send(req, code, reason, body, len);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason_token, const char *detail)
{
	char *s = tb_api_error_text(reason_token, detail);

	reply(req, code, NULL, s ? s : "{}", s ? strlen(s) : 2);
	cJSON_free(s);
}

static void
reply_json(struct evhttp_request *req, int code, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	reply(req, code, NULL, s ? s : "{}", s ? strlen(s) : 2);
	cJSON_free(s);
	cJSON_Delete(o);
}

static bool
authorised(struct tb_node *n, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	size_t tl = strlen(n->api_token);

	if (h == NULL || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != tl)
		return false;
	return tb_ct_equal(h + 7, n->api_token, tl);
}

static char *
body_of(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *p;

	if (n > API_BODY_MAX || (p = malloc(n + 1)) == NULL)
		return NULL;
	evbuffer_copyout(in, p, n);
	p[n] = '\0';
	*len = n;
	return p;
}

/* POST /v1/messages: the body goes to the ingest thread (ingest.c),
 * which answers through the loop once the messages are journalled. */
static void
api_send(struct tb_node *n, struct evhttp_request *req)
{
	size_t len = 0;
	char *raw = body_of(req, &len);

	if (raw == NULL) {
		reply_error(req, 413, "too-large", "request body over 256 KiB");
		return;
	}
	tb_ingest_submit(n, req, raw, len);
}

/* POST /v1/inbox/ack {"ids": [ID, ...]}: acknowledges up to 1,000
 * received messages in one transaction (one fsync, where one request per
 * message costs one each): all of them, or none when one is unknown. */
#define API_ACK_MAX 1000
static void
api_ack_many(struct tb_node *n, struct evhttp_request *req)
{
	size_t len = 0;
	char *raw = body_of(req, &len), msg[80];
	cJSON *doc = raw ? cJSON_ParseWithLength(raw, len) : NULL, *ids, *id;
	int count = 0, rc = TB_OK;

	ids = cJSON_GetObjectItemCaseSensitive(doc, "ids");
	if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) > API_ACK_MAX) {
		reply_error(req, 400, "body.invalid", "expected {\"ids\": [up to 1000 ids]}");
		goto out;
	}
	if (tb_journal_begin(n->journal) != TB_OK) {
		reply_error(req, 503, "io", tb_journal_diag(n->journal)->detail);
		goto out;
	}
	cJSON_ArrayForEach(id, ids) {
		if (!cJSON_IsString(id) || (rc = tb_journal_inbox_ack(n->journal, id->valuestring)) !=
		                               TB_OK)
			break;
		count++;
	}
	if (id != NULL) {
		if (tb_journal_rollback(n->journal) != TB_OK)
			log_warnx("inbox ack: rollback: %s", tb_journal_diag(n->journal)->detail);
		snprintf(msg, sizeof(msg), "%s: ids[%d]",
		         rc == TB_E_NOTFOUND ? "no inbound message with that id" : "bad id", count);
		reply_error(req, rc == TB_E_NOTFOUND ? 404 : 400,
		            rc == TB_E_NOTFOUND ? "not-found" : "body.invalid", msg);
		goto out;
	}
	if (tb_journal_commit(n->journal) != TB_OK) {
		reply_error(req, 503, "io", tb_journal_diag(n->journal)->detail);
		goto out;
	}
	snprintf(msg, sizeof(msg), "{\"acknowledged\":%d}", count);
	reply(req, 200, "OK", msg, strlen(msg));
out:
	cJSON_Delete(doc);
	free(raw);
}

/* POST /v1/inbox/ID/reply {"type", "body"}: answers received message ID
 * (corr = ID, to its sender, same service). */
static void
api_reply(struct tb_node *n, struct evhttp_request *req, const char *id)
{
	struct tb_journal_inbound in;
	struct tb_env_fields f;
	size_t len = 0;
	char *raw = body_of(req, &len), out_id[33];
	struct tb_json_doc *doc = NULL;
	struct tb_diag d;
	cJSON *r;

	if (n->draining) {
		reply_error(req, 503, "draining", "node is shutting down");
		goto out;
	}
	if (raw == NULL) {
		reply_error(req, 413, "too-large", "request body over 256 KiB");
		goto out;
	}
	if (tb_journal_inbound_get(n->journal, id, &in, NULL) != TB_OK) {
		reply_error(req, 404, "not-found", "no inbound message with that id");
		goto out;
	}
	if ((doc = tb_json_parse((const uint8_t *)raw, len, &tb_api_json_limits, &d)) == NULL) {
		reply_error(req, 400, tb_err_reason(d.code), d.detail);
		goto out;
	}
	if (tb_api_fields(tb_json_root(doc), in.from, &f, &d) != TB_OK) {
		reply_error(req, 400, tb_err_reason(d.code), d.detail);
		goto out;
	}
	f.corr = id;
	if (f.service == NULL && in.service[0])
		f.service = in.service;
	if (n->state == TB_NODE_REVOKED) {
		reply_error(req, 403, tb_err_reason(TB_E_MEMBER_REVOKED),
		            tb_err_str(TB_E_MEMBER_REVOKED));
		goto out;
	}
	if (tb_outbound_submit(n, &f, out_id, &d) != TB_OK) {
		reply_error(req, tb_api_http_code(d.code), tb_err_reason(d.code), d.detail);
		goto out;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "id", out_id);
	cJSON_AddStringToObject(r, "state", "queued");
	tb_api_add_held(r, tb_node_state_err(n));
	reply_json(req, 202, r);
out:
	tb_json_doc_free(doc);
	free(raw);
}

static void
api_status(struct tb_node *n, struct evhttp_request *req, const char *id)
{
	struct tb_journal_status st;
	struct tb_buf rc;
	cJSON *r;

	tb_buf_init(&rc);
	if (tb_journal_outbound_status(n->journal, id, &st, &rc) != TB_OK) {
		reply_error(req, 404, "not-found", "no outbound message with that id");
		tb_buf_free(&rc);
		return;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddStringToObject(r, "state", tb_journal_state_name(st.state));
	cJSON_AddNumberToObject(r, "attempts", (double)st.attempts);
	if (st.last_error[0] && st.state == TB_JOURNAL_QUEUED)
		cJSON_AddStringToObject(r, "last_error", st.last_error);
	if (st.state == TB_JOURNAL_QUEUED && tb_node_state_err(n) != TB_OK)
		cJSON_AddStringToObject(r, "held", tb_err_reason(tb_node_state_err(n)));
	if (st.reason[0])
		cJSON_AddStringToObject(r, "reason", st.reason);
	if (st.delivered_at)
		cJSON_AddNumberToObject(r, "delivered_at", (double)st.delivered_at);
	if (rc.len > 0)
		cJSON_AddItemToObject(r, "receipt",
		                      cJSON_ParseWithLength((const char *)rc.data, rc.len));
	tb_buf_free(&rc);
	reply_json(req, 200, r);
}

static int
inbox_item(void *ctx, int64_t seq, const struct tb_journal_msg *m)
{
	cJSON *arr = ctx, *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "seq", (double)seq);
	cJSON_AddStringToObject(o, "id", m->id);
	cJSON_AddStringToObject(o, "from", m->from);
	cJSON_AddStringToObject(o, "type", m->type);
	if (m->service)
		cJSON_AddStringToObject(o, "service", m->service);
	if (m->corr)
		cJSON_AddStringToObject(o, "corr", m->corr);
	cJSON_AddStringToObject(o, "digest", m->digest);
	cJSON_AddItemToObject(o, "envelope",
	                      cJSON_ParseWithLength((const char *)m->envelope, m->envelope_len));
	cJSON_AddItemToArray(arr, o);
	return TB_OK;
}

static void
api_inbox(struct tb_node *n, struct evhttp_request *req)
{
	struct evkeyvalq q;
	const char *lim, *after;
	long limit = 100;
	long long aft = 0;
	cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "messages");

	evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req))
	                           ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req))
	                           : "",
	                       &q);
	if ((lim = evhttp_find_header(&q, "limit")) != NULL)
		limit = strtol(lim, NULL, 10);
	if ((after = evhttp_find_header(&q, "after")) != NULL)
		aft = strtoll(after, NULL, 10);
	if (limit < 1 || limit > 1000)
		limit = 100;
	evhttp_clear_headers(&q);
	if (tb_journal_inbox_list(n->journal, (size_t)limit, aft, inbox_item, arr) != TB_OK) {
		cJSON_Delete(r);
		reply_error(req, 503, "io", "journal unavailable");
		return;
	}
	reply_json(req, 200, r);
}

/* The counters of struct tb_metrics and the journal's gauges (left out
 * when the journal could not give them: q < 0). */
static void
metrics_counters(struct tb_node *n, struct evbuffer *b, int64_t q, int64_t inbox)
{
	evbuffer_add_printf(
	    b,
	    "# HELP tongban_messages_in_total Envelopes received, by result.\n"
	    "# TYPE tongban_messages_in_total counter\n"
	    "tongban_messages_in_total{result=\"accepted\"} %llu\n"
	    "tongban_messages_in_total{result=\"duplicate\"} %llu\n"
	    "tongban_messages_in_total{result=\"refused\"} %llu\n"
	    "# HELP tongban_messages_out_total Envelopes sent, by result.\n"
	    "# TYPE tongban_messages_out_total counter\n"
	    "tongban_messages_out_total{result=\"delivered\"} %llu\n"
	    "tongban_messages_out_total{result=\"failed\"} %llu\n"
	    "# HELP tongban_retries_total Delivery attempts that will be retried.\n"
	    "# TYPE tongban_retries_total counter\n"
	    "tongban_retries_total %llu\n"
	    "# HELP tongban_exchanges_hedged_total Exchanges so slow that their messages were "
	    "sent again on another session.\n"
	    "# TYPE tongban_exchanges_hedged_total counter\n"
	    "tongban_exchanges_hedged_total %llu\n"
	    "# HELP tongban_compact_answers_total Batch answers sent with the receipts' proofs "
	    "left out.\n"
	    "# TYPE tongban_compact_answers_total counter\n"
	    "tongban_compact_answers_total %llu\n"
	    "# HELP tongban_answers_replayed_total Retransmitted last blocks of a block-wise "
	    "request answered with the answer kept for it.\n"
	    "# TYPE tongban_answers_replayed_total counter\n"
	    "tongban_answers_replayed_total %llu\n"
	    "# HELP tongban_envelopes_recanonicalised_total Received envelopes whose text was not "
	    "the canonical form, so that it had to be canonicalised to check them.\n"
	    "# TYPE tongban_envelopes_recanonicalised_total counter\n"
	    "tongban_envelopes_recanonicalised_total %llu\n"
	    "# HELP tongban_delivery_rounds_total Rounds of the delivery loop (what is due read, "
	    "sent, stragglers hedged): a few a second at most when idle.\n"
	    "# TYPE tongban_delivery_rounds_total counter\n"
	    "tongban_delivery_rounds_total %llu\n"
	    "# HELP tongban_handshake_refused_total DTLS peers refused.\n"
	    "# TYPE tongban_handshake_refused_total counter\n"
	    "tongban_handshake_refused_total %llu\n"
	    "# HELP tongban_api_requests_total Requests to the local API, /healthz included.\n"
	    "# TYPE tongban_api_requests_total counter\n"
	    "tongban_api_requests_total %llu\n",
	    (unsigned long long)n->m.in_ok, (unsigned long long)n->m.in_dup,
	    (unsigned long long)n->m.in_refused, (unsigned long long)n->m.out_delivered,
	    (unsigned long long)n->m.out_failed, (unsigned long long)n->m.out_retries,
	    (unsigned long long)n->m.out_hedged,
	    (unsigned long long)n->m.compact_answers, (unsigned long long)n->m.answers_replayed,
	    (unsigned long long)n->m.recanonicalised, (unsigned long long)n->m.out_rounds,
	    (unsigned long long)n->m.handshake_refused, (unsigned long long)n->m.api_requests);
	if (q >= 0)
		evbuffer_add_printf(
		    b,
		    "# HELP tongban_queue_depth Outbound messages awaiting delivery.\n"
		    "# TYPE tongban_queue_depth gauge\n"
		    "tongban_queue_depth %lld\n"
		    "# HELP tongban_inbox_depth Received messages not yet acknowledged.\n"
		    "# TYPE tongban_inbox_depth gauge\n"
		    "tongban_inbox_depth %lld\n",
		    (long long)q, (long long)inbox);
	evbuffer_add_printf(
	    b,
	    "# HELP tongban_api_pending Submissions on the ingest thread, not yet answered.\n"
	    "# TYPE tongban_api_pending gauge\n"
	    "tongban_api_pending %zu\n",
	    tb_ingest_pending(n));
}

/* What the node is and runs on: build, start, certificate, registry,
 * operating state (one-hot over every state). */
static void
metrics_lifecycle(struct tb_node *n, struct evbuffer *b)
{
	static const enum tb_node_state states[] = {TB_NODE_OK, TB_NODE_RECOVERY, TB_NODE_SUSPENDED,
	                                            TB_NODE_REVOKED};

	evbuffer_add_printf(
	    b,
	    "# HELP tongban_build_info The node's version; always 1.\n"
	    "# TYPE tongban_build_info gauge\n"
	    "tongban_build_info{version=\"%s\",protocol=\"%d\"} 1\n"
	    "# HELP process_start_time_seconds When the node process started, Unix time.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %.3f\n"
	    "# HELP tongban_certificate_not_after_seconds The node certificate's notAfter, Unix "
	    "time.\n"
	    "# TYPE tongban_certificate_not_after_seconds gauge\n"
	    "tongban_certificate_not_after_seconds %lld\n"
	    "# HELP tongban_registry_valid_until_seconds The validUntil of the registry in force, "
	    "Unix time.\n"
	    "# TYPE tongban_registry_valid_until_seconds gauge\n"
	    "tongban_registry_valid_until_seconds %lld\n"
	    "# HELP tongban_registry_serial Serial of the registry in force.\n"
	    "# TYPE tongban_registry_serial gauge\n"
	    "tongban_registry_serial %llu\n"
	    "# HELP tongban_node_state The node's operating state: 1 for the state it is in.\n"
	    "# TYPE tongban_node_state gauge\n",
	    PACKAGE_VERSION, TB_PROTO_VERSION, started, (long long)n->cert_not_after,
	    (long long)tb_reg_valid_until(n->reg), (unsigned long long)tb_reg_serial(n->reg));
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		evbuffer_add_printf(b, "tongban_node_state{state=\"%s\"} %d\n",
		                    tb_node_state_name(states[i]), n->state == states[i]);
	evbuffer_add_printf(
	    b,
	    "# HELP tongban_journal_full Whether the journal's disk is full (1): messages from "
	    "peers are refused with 5.03 journal.full.\n"
	    "# TYPE tongban_journal_full gauge\n"
	    "tongban_journal_full %d\n"
	    "# HELP tongban_journal_full_refused_total Received envelopes refused because the "
	    "journal's disk was full.\n"
	    "# TYPE tongban_journal_full_refused_total counter\n"
	    "tongban_journal_full_refused_total %llu\n"
	    "# HELP tongban_journal_unavailable_refused_total Received envelopes refused with "
	    "5.03 journal.unavailable: the journal's database could not be reached.\n"
	    "# TYPE tongban_journal_unavailable_refused_total counter\n"
	    "tongban_journal_unavailable_refused_total %llu\n",
	    tb_lifecycle_journal_full(n) ? 1 : 0, (unsigned long long)n->m.in_full,
	    (unsigned long long)n->m.in_down);
}

/* What the DTLS port's per-source limits refused (flood.h). */
static void
metrics_flood(struct tb_node *n, struct evbuffer *b)
{
	struct tb_flood_stats st = {0};

	if (n->flood != NULL)
		tb_flood_stats(n->flood, &st);
	evbuffer_add_printf(
	    b,
	    "# HELP tongban_dtls_hellos_refused_total ClientHellos refused over a source's rate "
	    "or half-open limit.\n"
	    "# TYPE tongban_dtls_hellos_refused_total counter\n"
	    "tongban_dtls_hellos_refused_total %llu\n"
	    "# HELP tongban_dtls_datagrams_refused_total Datagrams on the DTLS port neither a "
	    "ClientHello nor a session's.\n"
	    "# TYPE tongban_dtls_datagrams_refused_total counter\n"
	    "tongban_dtls_datagrams_refused_total %llu\n"
	    "# HELP tongban_dtls_halfopen_dropped_total Half-open handshakes cut to make room.\n"
	    "# TYPE tongban_dtls_halfopen_dropped_total counter\n"
	    "tongban_dtls_halfopen_dropped_total %llu\n"
	    "# HELP tongban_dtls_sources_blocked_total Flooding sources blocked in the kernel.\n"
	    "# TYPE tongban_dtls_sources_blocked_total counter\n"
	    "tongban_dtls_sources_blocked_total %llu\n",
	    (unsigned long long)st.hello_refused, (unsigned long long)st.dgram_refused,
	    (unsigned long long)st.halfopen_dropped, (unsigned long long)st.blocks);
}

/* The submit-to-receipt latency histogram. */
static void
metrics_latency(struct tb_node *n, struct evbuffer *b)
{
	evbuffer_add_printf(
	    b, "# HELP tongban_delivery_seconds Submit-to-verified-receipt latency per message.\n"
	       "# TYPE tongban_delivery_seconds histogram\n");
	for (int i = 0; i < TB_LAT_BUCKETS; i++)
		evbuffer_add_printf(b, "tongban_delivery_seconds_bucket{le=\"%g\"} %llu\n",
		                    tb_lat_bounds[i] / 1000.0,
		                    (unsigned long long)n->m.lat_buckets[i]);
	evbuffer_add_printf(b, "tongban_delivery_seconds_bucket{le=\"+Inf\"} %llu\n",
	                    (unsigned long long)n->m.lat_count);
	evbuffer_add_printf(
	    b, "tongban_delivery_seconds_sum %g\ntongban_delivery_seconds_count %llu\n",
	    n->m.lat_sum_ms / 1000.0, (unsigned long long)n->m.lat_count);
}

/* GET /metrics: Prometheus text format 0.0.4; every family has its HELP
 * and TYPE (tests/node_logs.sh runs `promtool check metrics` on it);
 * docs/ADMIN.md "Metrics" lists them. */
static void
api_metrics(struct tb_node *n, struct evhttp_request *req)
{
	struct evbuffer *b;
	int64_t q = 0, inbox = 0;

	/* gauges the journal cannot give (its database out of reach) are not
	 * reported as 0 but left out; the rest, which tells of the outage,
	 * is */
	if (tb_journal_outbound_pending(n->journal, &q) != TB_OK ||
	    tb_journal_inbox_count(n->journal, &inbox) != TB_OK) {
		if (tb_journal_diag(n->journal)->code != TB_E_JOURNAL_DOWN) {
			reply_error(req, 500, "io", tb_journal_diag(n->journal)->detail);
			return;
		}
		q = inbox = -1;
	}
	b = evbuffer_new();
	metrics_counters(n, b, q, inbox);
	metrics_lifecycle(n, b);
	metrics_flood(n, b);
	/* METRICS-PEERS: the per-peer gauges (up, last success, handshake
	 * failures by reason, clock offset) kept by outbound.c */
	{
		struct tb_buf peers;
		tb_buf_init(&peers);
		tb_outbound_metrics(n, &peers);
		evbuffer_add(b, peers.data, peers.len);
		tb_buf_free(&peers);
	}
	metrics_latency(n, b);
	tb_apiconn_metrics(n->apiconn, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* GET /healthz: 200 {"status":"ok"}, 200 {"status":"degraded","why"},
 * 503 {"status":<cause>,"why"} (tongban-node(8), LOCAL API). */
static void
api_health(struct tb_node *n, struct evhttp_request *req)
{
	char status[32], why[600];
	enum tb_health h;
	cJSON *r;

	if (n->draining) {
		reply(req, 503, "draining",
		      "{\"status\":\"draining\",\"why\":\"node is shutting down\"}", 51);
		return;
	}
	h = tb_lifecycle_health(n, status, sizeof(status), why, sizeof(why));
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "status", status);
	if (why[0] != '\0')
		cJSON_AddStringToObject(r, "why", why);
	reply_json(req, h == TB_HEALTH_FAILING ? 503 : 200, r);
}

/* GET /v1/registry: the registry in force and the node's state. */
static void
api_registry(struct tb_node *n, struct evhttp_request *req)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "federation", tb_reg_federation(n->reg));
	cJSON_AddNumberToObject(r, "serial", (double)tb_reg_serial(n->reg));
	cJSON_AddNumberToObject(r, "members", (double)tb_reg_member_count(n->reg));
	cJSON_AddNumberToObject(r, "issued", (double)tb_reg_issued(n->reg));
	cJSON_AddNumberToObject(r, "valid_until", (double)tb_reg_valid_until(n->reg));
	cJSON_AddStringToObject(r, "state", tb_node_state_name(n->state));
	if (n->pending.len > 0)
		cJSON_AddNumberToObject(r, "pending_serial", (double)n->pending_serial);
	reply_json(req, 200, r);
}

/* tb_journal_outbound_queued_by: queue depth per recipient into an
 * object keyed by member id. */
static int
queued_item(void *ctx, const char *to, int64_t queued)
{
	cJSON_AddNumberToObject(ctx, to, (double)queued);
	return 0;
}

/* Unix time, or null for "never" (0). */
static void
add_time(cJSON *o, const char *key, int64_t t)
{
	if (t > 0)
		cJSON_AddNumberToObject(o, key, (double)t);
	else
		cJSON_AddNullToObject(o, key);
}

/* One member of the registry in force with this node's view of it. */
static cJSON *
peer_json(struct tb_node *n, size_t m, const cJSON *queued)
{
	const char *id = tb_reg_member_id(n->reg, m), *parent = tb_reg_member_parent(n->reg, m);
	const char *hop;
	cJSON *o = cJSON_CreateObject(), *eps, *q;
	struct tb_peer_view v;

	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", tb_reg_member_name(n->reg, m));
	cJSON_AddStringToObject(o, "role", tb_reg_role_name(tb_reg_member_role(n->reg, m)));
	if (parent != NULL)
		cJSON_AddStringToObject(o, "parent", parent);
	cJSON_AddStringToObject(o, "status", tb_reg_status_name(tb_reg_member_status(n->reg, m)));
	eps = cJSON_AddArrayToObject(o, "endpoints");
	for (size_t i = 0; i < tb_reg_endpoint_count(n->reg, m); i++)
		cJSON_AddItemToArray(eps, cJSON_CreateString(tb_reg_endpoint(n->reg, m, i)));
	if (strcmp(id, n->cfg.member_id) == 0) {
		cJSON_AddBoolToObject(o, "self", true);
		return o;
	}
	/* the member messages to it go to first: its parent hub for a city
	 * without an endpoint of its own, unless that hub is this node (as
	 * tb_node_next_hop decides, without resolving the endpoint) */
	hop = tb_reg_endpoint_count(n->reg, m) == 0 && parent != NULL &&
	              strcmp(parent, n->cfg.member_id) != 0
	          ? parent
	          : id;
	cJSON_AddStringToObject(o, "next_hop", hop);
	q = cJSON_GetObjectItemCaseSensitive(queued, id);
	cJSON_AddNumberToObject(o, "queued", q != NULL ? q->valuedouble : 0);
	/* what governs its messages: the delivery state of the next hop */
	tb_outbound_peer_view(n, hop, &v);
	add_time(o, "last_handshake", v.last_handshake);
	add_time(o, "last_success", v.last_success);
	cJSON_AddStringToObject(o, "circuit", v.circuit);
	cJSON_AddNumberToObject(o, "failures", v.failures);
	cJSON_AddNumberToObject(o, "backoff_s", (double)(int64_t)(v.backoff_s * 1000) / 1000);
	if (v.last_error[0] != '\0')
		cJSON_AddStringToObject(o, "last_error", v.last_error);
	return o;
}

/* GET /v1/peers: every member of the registry in force, with its status
 * there, endpoints, and what this node knows of reaching it (PROTOCOL.md,
 * local API).  The loop's own reads of the registry need no lock. */
static void
api_peers(struct tb_node *n, struct evhttp_request *req)
{
	cJSON *queued = cJSON_CreateObject(), *r, *arr;

	if (tb_journal_outbound_queued_by(n->journal, queued_item, queued) != TB_OK) {
		cJSON_Delete(queued);
		reply_error(req, 503, "io", tb_journal_diag(n->journal)->detail);
		return;
	}
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "member", n->cfg.member_id);
	cJSON_AddStringToObject(r, "federation", tb_reg_federation(n->reg));
	cJSON_AddNumberToObject(r, "serial", (double)tb_reg_serial(n->reg));
	cJSON_AddStringToObject(r, "state", tb_node_state_name(n->state));
	cJSON_AddNumberToObject(r, "now", (double)tb_now());
	arr = cJSON_AddArrayToObject(r, "peers");
	for (size_t m = 0; m < tb_reg_member_count(n->reg); m++)
		cJSON_AddItemToArray(arr, peer_json(n, m, queued));
	cJSON_Delete(queued);
	reply_json(req, 200, r);
}

/* POST /v1/registry/reload: re-reads the registry file (what SIGHUP does
 * for the registry; `tongban registry install` asks it).  200 applied or
 * unchanged, 202 kept until valid, 409 refused; the registry in force
 * and the state in every answer. */
static void
api_registry_reload(struct tb_node *n, struct evhttp_request *req)
{
	static const char *const names[] = {"unchanged", "applied", "pending", "refused"};
	static const int codes[] = {200, 200, 202, 409};
	struct tb_diag d;
	enum tb_reload rl = tb_node_reload_registry(n, "API", &d);
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "result", names[rl]);
	cJSON_AddNumberToObject(r, "serial", (double)tb_reg_serial(n->reg));
	cJSON_AddStringToObject(r, "state", tb_node_state_name(n->state));
	if (rl == TB_RELOAD_REFUSED || rl == TB_RELOAD_PENDING) {
		cJSON_AddStringToObject(r, "error", tb_err_reason(d.code));
		cJSON_AddStringToObject(r, "detail", d.detail);
	}
	reply_json(req, codes[rl], r);
}

static void
dispatch(struct evhttp_request *req, void *arg)
{
	struct tb_node *n = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	n->m.api_requests++;
	tb_apiconn_busy(n->apiconn, req);
	if (path == NULL)
		path = "/";
	if (strcmp(path, "/healthz") == 0 && m == EVHTTP_REQ_GET) {
		api_health(n, req);
		return;
	}
	if (!authorised(n, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer");
		reply_error(req, 401, "unauthorized", "missing or wrong bearer token");
		return;
	}
	if (strcmp(path, "/metrics") == 0 && m == EVHTTP_REQ_GET) {
		api_metrics(n, req);
	} else if (strcmp(path, "/v1/messages") == 0 && m == EVHTTP_REQ_POST) {
		if (n->draining)
			reply_error(req, 503, "draining", "node is shutting down");
		else
			api_send(n, req);
	} else if (strncmp(path, "/v1/messages/", 13) == 0 && m == EVHTTP_REQ_GET) {
		api_status(n, req, path + 13);
	} else if (strcmp(path, "/v1/inbox") == 0 && m == EVHTTP_REQ_GET) {
		api_inbox(n, req);
	} else if (strcmp(path, "/v1/inbox/ack") == 0 && m == EVHTTP_REQ_POST) {
		api_ack_many(n, req);
	} else if (strncmp(path, "/v1/inbox/", 10) == 0 && m == EVHTTP_REQ_POST &&
	           strlen(path) > 14 && strcmp(path + strlen(path) - 4, "/ack") == 0) {
		char id[64];
		snprintf(id, sizeof(id), "%.*s", (int)(strlen(path) - 14), path + 10);
		if (tb_journal_inbox_ack(n->journal, id) != TB_OK)
			reply_error(req, 404, "not-found", "no inbound message with that id");
		else
			reply(req, 200, "OK", "{\"acknowledged\":true}", 21);
	} else if (strncmp(path, "/v1/inbox/", 10) == 0 && m == EVHTTP_REQ_POST &&
	           strlen(path) == 10 + 32 + 6 && strcmp(path + 42, "/reply") == 0) {
		char id[33];
		snprintf(id, sizeof(id), "%.32s", path + 10);
		api_reply(n, req, id);
	} else if (strcmp(path, "/v1/peers") == 0 && m == EVHTTP_REQ_GET) {
		api_peers(n, req);
	} else if (strcmp(path, "/v1/registry") == 0 && m == EVHTTP_REQ_GET) {
		api_registry(n, req);
	} else if (strcmp(path, "/v1/registry/reload") == 0 && m == EVHTTP_REQ_POST) {
		api_registry_reload(n, req);
	} else {
		reply_error(req, 404, "not-found", "no such endpoint");
	}
}

int
tb_api_start(struct tb_node *n, struct tb_diag *d)
{
	struct timespec now;
	struct evhttp_bound_socket *bound;
	char why[120];

	if ((n->http = evhttp_new(n->base)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "evhttp_new");
	evhttp_set_max_body_size(n->http, API_BODY_MAX);
	evhttp_set_allowed_methods(n->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(n->http, dispatch, n);
	if ((bound = evhttp_bind_socket_with_handle(n->http, n->cfg.api_host,
	                                            (ev_uint16_t)n->cfg.api_port)) == NULL)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS,
		                   "cannot bind the local API on %s:%d: %s", n->cfg.api_host,
		                   n->cfg.api_port, tb_errno_text(errno, why, sizeof(why)));
	/* a longer accept queue than evhttp's 128: a burst of connections
	 * then does not drop the operator's handshake (Linux caps it at
	 * net.core.somaxconn; a failure keeps the old length) */
	(void)listen(evhttp_bound_socket_get_fd(bound), API_BACKLOG);
	/* header, connection and time limits (apiconn.h) */
	if ((n->apiconn =
	         tb_apiconn_new(n->base, n->http, evhttp_bound_socket_get_listener(bound),
	                        (int)n->cfg.api_max_connections, (int)n->cfg.api_timeout)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "local API connections");
	clock_gettime(CLOCK_REALTIME, &now);
	started = (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000.0;
	log_info("local API on http://%s:%d (at most %d connections, %llds to send a request)",
	         n->cfg.api_host, n->cfg.api_port, tb_apiconn_cap(n->apiconn),
	         (long long)n->cfg.api_timeout);
	return TB_OK;
}

void
tb_api_stop(struct tb_node *n)
{
	if (n->http != NULL)
		evhttp_free(n->http);
	n->http = NULL;
	/* after evhttp_free: its connections' close callbacks use it */
	tb_apiconn_free(n->apiconn);
	n->apiconn = NULL;
}
