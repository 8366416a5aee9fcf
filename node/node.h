/*
 * node.h - the daemon's internal map: one struct tb_node that owns the
 * event loop, libcoap context, keys, registry, journal and local API, and
 * the functions of each node/ file grouped by file.  Only node/ includes
 * this.  One libevent loop runs the node; beside it run the journal's
 * checkpoint thread (journal.c) and the ingest thread that seals and
 * journals local API submissions (ingest.c, which lists what it shares).
 *
 * Thread-safety: the functions run on the event loop unless their
 * comment names another thread (the ingest and answers workers); what
 * those threads share with the loop is listed at struct tb_node and in
 * ingest.c.  Ownership is stated per function; a struct tb_node owns
 * everything it points to.
 */
#ifndef TB_NODE_H
#define TB_NODE_H

#include <coap3/coap.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../certs/tb_key.h"
#include "../util/tb_buf.h"
#include "config.h"
#include "worker.h"
#include "../util/tb_err.h"

struct tb_reg;
struct tb_route;
struct tb_trust;
struct tb_journal;
struct tb_responder;
struct tb_webhook;
struct tb_env;
struct tb_env_fields;
struct tb_json;
struct tb_json_limits;
struct evhttp;
struct evhttp_request;
/* CoAP content-format: application/json with the deflate content coding
 * (IANA CoAP Content-Formats registry); PROTOCOL.md 9.2 */
#define TB_CF_JSON_DEFLATE 11050
/* Uri-Query of a batch POST /fed/msg whose sender rebuilds the receipts'
 * Merkle paths, so that the answer may leave them out (PROTOCOL.md 9.3).
 * One letter: every block repeats the request's options, and a few more
 * bytes make libcoap halve the block size (measured: 11 more bytes did) */
#define TB_COMPACT_QUERY "c"
/* Largest inflated answer to an exchange (receipts of up to 256
 * envelopes, or error objects) */
#define TB_ANSWER_MAX (4u << 20)

struct tb_ingest;
struct tb_answers;
struct tb_env_open_opts;
struct cJSON;

/* One outbound POST /fed/msg exchange: which messages it carries. */
struct tb_exchange {
	coap_session_t *session; /* tokens are unique per session only */
	int slot;                /* which of the peer's sessions */
	coap_bin_const_t token;
	uint8_t tokbuf[8];
	char hop[16];
	size_t count;
	char (*ids)[33];
	char (*digests)[65];
	char (*tos)[16];
	bool *relayed; /* a message from another member, relayed by this hub */
	int64_t sent_ms;
	struct tb_exchange *next;
};

/* An exchange's answer, settled off the loop (answers.c): checked and
 * journalled by tb_outbound_settle on the ingest thread, then applied by
 * tb_outbound_settled on the loop, which frees it and the exchange. */
struct tb_answer {
	struct tb_work work;   /* first: the ingest thread's link */
	struct tb_exchange *x; /* owned */
	unsigned code;         /* the answer's CoAP code */
	int cls;               /* its class: 2, 4 or 5 */
	bool deflated;         /* content-format 11050 */
	bool has_data;
	uint8_t *data; /* the body as it came (owned) */
	size_t len;
	/* results, for the loop */
	bool *delivered; /* per message: receipt verified and journalled */
	size_t ndelivered;
	uint64_t failed, retries;
	bool relays; /* receipts queued to go back (a hub) */
	struct {
		char type[48];
		char corr[33];
	} * notes; /* per delivered request: for the responder, or NULL */
};

/* How long a message journalled for sending from memory waits before the
 * journal's queue offers it again: the longest it may wait in memory, plus
 * an exchange's answer timeout, plus 2 s for the clocks' rounding (the
 * journal counts whole seconds), so that it is not sent twice meanwhile. */
#define TB_FRESH_SEND_S 5
#define TB_FRESH_HOLD_S (TB_FRESH_SEND_S + 30 + 2)

/* A message journalled and handed to the loop to send from memory, without
 * reading it back from the journal (outbound.c). */
struct tb_fresh {
	char id[33], to[16], digest[65];
	int64_t expires;
	int64_t handed_ms; /* when the loop took it over */
	struct tb_buf env; /* its wire form */
};

/* Per-peer outbound state (delivery, circuit breaker).  Up to
 * peer_sessions DTLS sessions are kept to a peer: one block-wise exchange
 * runs per session, so parallel sessions carry parallel exchanges. */
struct tb_peer {
	char id[16];
	coap_session_t *sessions[TB_PEER_SESSIONS_MAX];
	int inflight[TB_PEER_SESSIONS_MAX]; /* exchanges awaiting an answer, per session */
	bool drop;                          /* release all sessions at the next delivery round */
	int failures;                       /* consecutive failures */
	int64_t open_until_ms;              /* circuit open (no sends) until then */
	struct tb_peer *next;
};

#define TB_LAT_BUCKETS 28
#define TB_LAT_SLOTS 65536
extern const double tb_lat_bounds[TB_LAT_BUCKETS];

struct tb_metrics {
	uint64_t in_ok, in_dup, in_refused, out_delivered, out_failed, out_retries;
	uint64_t compact_answers; /* batch answers without the receipts' proofs (9.3) */
	uint64_t recanonicalised; /* received envelopes not in the canonical form */
	uint64_t handshake_refused, api_requests;
	uint64_t lat_buckets[28]; /* submit-to-receipt latency, tb_lat_bounds */
	double lat_sum_ms;
	uint64_t lat_count;
};

struct tb_node {
	struct tb_config cfg;
	const char *config_path;
	struct event_base *base;
	struct event *coap_ev, *coap_timer, *deliver_timer, *sigterm_ev, *sighup_ev, *sigint_ev,
	    *prune_timer;
	coap_context_t *coap;
	coap_resource_t *res_registry;
	struct tb_key *sign_key;
	uint8_t sign_kid[TB_KEYID_LEN];
	struct tb_trust *trust;
	/* reg, route and privs are replaced by the loop only, holding
	 * reg_lock for writing; the ingest thread reads them holding it for
	 * reading (the loop's own reads need no lock) */
	pthread_rwlock_t reg_lock;
	struct tb_reg *reg;
	struct tb_route *route;  /* route table of reg */
	struct tb_buf reg_bytes; /* the registry document as served */
	struct tb_journal *journal;
	struct evhttp *http;
	struct tb_ingest *ingest;   /* POST /v1/messages worker (ingest.c) */
	struct tb_answers *answers; /* receipts worker (answers.c) */
	char api_token[128];
	struct tb_peer *peers;
	struct tb_retired {
		coap_session_t *s;
		int64_t since_ms;
	} * retired; /* sessions given up, released later (transport.c) */
	size_t nretired;
	char **interned; /* member id strings handed to sessions */
	size_t ninterned;
	bool draining;
	bool deliver_scheduled;
	struct tb_metrics m;
	/* submit time of recent outbound messages, by id hash (latency) */
	char (*lat_id)[33];
	int64_t *lat_t0;
	uint8_t sigcache[64][32]; /* verified signature tags (batch roots) */
	size_t sigcache_next;
	struct tb_exchange *exchanges;       /* outbound exchanges awaiting answers */
	struct tb_fresh *fresh;              /* journalled messages to send from memory */
	size_t fresh_head, nfresh, capfresh; /* the queue is [fresh_head, nfresh) */
	/* registry observation of the upstream hub (regsync.c) */
	coap_session_t *obs_session;
	uint8_t obs_token[8];
	size_t obs_toklen;
	int64_t obs_last_ms;
	bool obs_ok; /* a notification has arrived on this observation */
	struct event *resync_timer;
	struct tb_responder *responder; /* reference responder, or NULL */
	struct tb_webhook *webhook;     /* push to the city's system, or NULL */
	/* delivered case.accept messages whose case.result the responder
	 * sends once the delivering transaction is committed */
	char (*pending_results)[33];
	size_t npending_results;
	/* hub: members without registry endpoints that only this hub reaches */
	struct tb_private_ep {
		char id[8];
		char uri[120];
	} * privs;
	size_t nprivs;
	/* pubkey cache for message verification, rebuilt with the registry */
	struct tb_pub **pubs;
	size_t *pub_base; /* index in pubs of each member's first key */
	size_t npubs;
};

/* node.c */
/* Verified-signature cache for tb_env_open (batch roots). */
bool tb_node_sig_known(void *ctx, const uint8_t tag[32]);
void tb_node_sig_remember(void *ctx, const uint8_t tag[32]);
TB_MUST_CHECK const char *tb_node_intern(struct tb_node *n, const char *id);
int64_t tb_now(void);     /* Unix seconds */
int64_t tb_now_ms(void);  /* monotonic milliseconds */
int64_t tb_wall_ms(void); /* Unix milliseconds */
TB_MUST_CHECK struct tb_node *tb_node_new(const char *config_path, struct tb_diag *d);
void tb_node_free(struct tb_node *n);
/* Loads, verifies and applies a registry document (borrowed bytes);
 * refuses one not newer than the current (unless it is the first). */
TB_MUST_CHECK int tb_node_apply_registry(struct tb_node *n, const uint8_t *doc, size_t len,
                                         bool persist, struct tb_diag *d);
/* The public key with this id of active member `from` for message
 * signatures; NULL when none (tb_env_open lookup). */
const struct tb_pub *tb_node_lookup_sign(void *ctx, const char *from, const uint8_t *kid);
/* Checks a DTLS peer certificate (DER) against the registry: the member
 * id it belongs to (interned, owned by the node), or NULL. */
TB_MUST_CHECK const char *tb_node_peer_member(struct tb_node *n, const uint8_t *der, size_t len);
/* True when member offers service in the current registry. */
bool tb_node_offers(const struct tb_node *n, const char *member, const char *service);
/* The member serving service for region under the current registry
 * (copied into member, 16 bytes); TB_E_NO_ROUTE when none. */
TB_MUST_CHECK int tb_node_route(struct tb_node *n, const char *service, const char *region,
                                char *member, struct tb_diag *d);
/* First endpoint host/port for the next hop towards member `to`. */
TB_MUST_CHECK int tb_node_next_hop(struct tb_node *n, const char *to, char *hop, size_t hoplen,
                                   coap_address_t *addr, struct tb_diag *d);

/* transport.c */
TB_MUST_CHECK int tb_transport_start(struct tb_node *n, struct tb_diag *d);
void tb_transport_stop(struct tb_node *n);
/* Re-arms libcoap's timer after work was queued outside its callbacks. */
void tb_transport_kick(struct tb_node *n);
/* The value of pdu's option num as an unsigned integer (Content-Format,
 * Accept), or -1 when it is absent. */
long tb_coap_uint_option(const coap_pdu_t *pdu, coap_option_num_t num);
/* The (cached) client session to peer member `to`, or NULL. */
TB_MUST_CHECK coap_session_t *tb_transport_session(struct tb_node *n, const char *to, int slot,
                                                   struct tb_diag *d);
void tb_transport_drop_peer(struct tb_node *n, const char *to);
/* Releases retired sessions old enough to have no transfer left. */
void tb_transport_reap(struct tb_node *n);
/* Releases slot's session of peer id if it is still s (outside libcoap
 * callbacks only). */
void tb_transport_drop_slot(struct tb_node *n, const char *id, int slot, coap_session_t *s);
/* The peer record for member id (created on first use); NULL on memory error. */
TB_MUST_CHECK struct tb_peer *tb_transport_peer(struct tb_node *n, const char *id);

/* inbound.c */
TB_MUST_CHECK int tb_inbound_init(struct tb_node *n);
/* Notifies observers of /fed/registry. */
void tb_inbound_registry_changed(struct tb_node *n);

/* outbound.c */
void tb_outbound_init(struct tb_node *n);
/* Seals count messages with one batch signature (key) and journals them
 * in one transaction of j (all or none); on failure *bad is the offending
 * index.  Runs on the loop (j = n->journal) or on the ingest thread (its
 * own handle and key copy, holding reg_lock for reading); it does not
 * schedule delivery.  With fresh (count entries) the messages are held
 * for the loop to send from memory: each is journalled with its first
 * attempt TB_FRESH_HOLD_S ahead and fresh[i] receives its wire form
 * (owned by the caller, for tb_outbound_hand, or tb_fresh_free). */
TB_MUST_CHECK int tb_outbound_store(struct tb_node *n, struct tb_journal *j, struct tb_key *key,
                                    const struct tb_env_fields *f, size_t count, char (*ids)[33],
                                    size_t *bad, struct tb_fresh *fresh, struct tb_diag *d);
/* Loop: takes over v[0..count) from tb_outbound_store (the array stays the
 * caller's, the envelopes move) for the next delivery rounds; what the
 * memory queue has no room for goes back to the journal's queue. */
void tb_outbound_hand(struct tb_node *n, struct tb_fresh *v, size_t count);
/* Frees the envelopes of v[0..count). */
void tb_fresh_free(struct tb_fresh *v, size_t count);
/* Loop, stopping: forgets the memory queue (the journal keeps it all). */
void tb_outbound_forget(struct tb_node *n);
/* One message sent from the loop (an inbox reply, the reference
 * responder): tb_outbound_store on the loop's journal and key, then its
 * latency clock and delivery; *id receives its id. */
TB_MUST_CHECK int tb_outbound_submit(struct tb_node *n, const struct tb_env_fields *f, char id[33],
                                     struct tb_diag *d);
void tb_latency_start(struct tb_node *n, const char *id, int64_t now_ms);
void tb_latency_done(struct tb_node *n, const char *id);
void tb_outbound_schedule(struct tb_node *n, int64_t delay_ms);
coap_response_t tb_outbound_response(coap_session_t *s, const coap_pdu_t *sent,
                                     const coap_pdu_t *recv, const coap_mid_t mid);
void tb_outbound_nack(coap_session_t *s, const coap_pdu_t *sent, coap_nack_reason_t r,
                      const coap_mid_t mid);
/* Answers thread: checks a's receipts (o: key lookup under reg_lock, and
 * the thread's own signature cache) and journals the outcomes in j. */
void tb_outbound_settle(struct tb_node *n, struct tb_journal *j, const struct tb_env_open_opts *o,
                        struct tb_answer *a);
/* Loop: applies a's results (metrics, latency, responder, delivery) and
 * frees a with its exchange.  n NULL: only frees (shutting down). */
void tb_outbound_settled(struct tb_node *n, struct tb_answer *a);

/* answers.c: answers settled on the ingest thread */
TB_MUST_CHECK int tb_answers_start(struct tb_node *n, struct tb_diag *d);
/* Queues a (owned) for the thread; without one, settles it on the loop. */
void tb_answers_submit(struct tb_node *n, struct tb_answer *a);
/* Settles what is queued, then stops the thread. */
void tb_answers_stop(struct tb_node *n);

/* regsync.c */
TB_MUST_CHECK int tb_regsync_start(struct tb_node *n);
/* True when recv was a registry notification (handled). */
bool tb_regsync_response(struct tb_node *n, coap_session_t *s, const coap_pdu_t *recv);
void tb_regsync_lost(struct tb_node *n, coap_session_t *s);

/* flows.c */
/* Message-flow checks of a received (for this node) / sent envelope,
 * inside the caller's journal transaction: body schema, answer matched to
 * an open request, case lifecycle (applied).  0 or TB_E_BODY,
 * TB_E_FLOW_UNMATCHED, TB_E_FLOW_STATE, TB_E_IO. */
TB_MUST_CHECK int tb_flows_inbound(struct tb_node *n, const struct tb_env *e, struct tb_diag *d);
/* The outbound check reads and writes journal j: the loop's n->journal,
 * or the ingest thread's own handle (it reads only immutable parts of n
 * and the registry, under reg_lock). */
TB_MUST_CHECK int tb_flows_outbound(struct tb_node *n, struct tb_journal *j, const struct tb_env *e,
                                    struct tb_diag *d);
TB_MUST_CHECK int tb_responder_load(struct tb_node *n, struct tb_diag *d);
void tb_responder_free(struct tb_responder *r);
/* Answers a request received for this node from the fixtures (after its
 * transaction is committed). */
void tb_responder_handle(struct tb_node *n, const struct tb_env *e);
/* A message of type with corr was delivered: the responder's case.result
 * follows its case.accept.  Call outside transactions. */
void tb_responder_delivered(struct tb_node *n, const char *type, const char *corr);
/* Queues / runs tb_responder_delivered for deliveries found inside a
 * transaction. */
void tb_responder_note(struct tb_node *n, const char *type, const char *corr);
void tb_responder_run_pending(struct tb_node *n);

/* webhook.c */
/* Refuses a webhook URL that is not http:// on loopback. */
TB_MUST_CHECK int tb_webhook_check(const char *url, struct tb_diag *d);
TB_MUST_CHECK int tb_webhook_start(struct tb_node *n, struct tb_diag *d);
void tb_webhook_stop(struct tb_node *n);
/* New messages are in the inbox: push soon. */
void tb_webhook_kick(struct tb_node *n);

/* api.c */
TB_MUST_CHECK int tb_api_start(struct tb_node *n, struct tb_diag *d);
void tb_api_stop(struct tb_node *n);
/* Sends a JSON answer (body borrowed). */
void tb_api_reply(struct evhttp_request *req, int code, const char *body, size_t len);
/* The API's error object {"error": reason, "detail"?} as JSON text
 * (caller frees with cJSON_free), NULL when out of memory. */
TB_MUST_CHECK char *tb_api_error_text(const char *reason_token, const char *detail);
/* HTTP status for a refused submission (tb_err code). */
int tb_api_http_code(int err);
/* Limits for a message request (POST /v1/messages, reply): 256 KiB, and
 * a message's body no deeper than an envelope allows under the bulk
 * array and the message object. */
extern const struct tb_json_limits tb_api_json_limits;
/* Reads one message request object, parsed by tb_json_parse, into f;
 * strings and the body stay owned by o's document.  default_to (may be
 * NULL) stands in for a missing "to".  NULL, or what is wrong ("type"
 * and "to" name a missing member). */
TB_MUST_CHECK const char *tb_api_fields(const struct tb_json *o, const char *default_to,
                                        struct tb_env_fields *f);
/* ingest.c */
/* Starts the ingest thread with its own journal handle and key copy. */
TB_MUST_CHECK int tb_ingest_start(struct tb_node *n, struct tb_diag *d);
/* Queues a POST /v1/messages body (raw, taken over) for the thread; the
 * answer is sent on the loop once it is journalled or refused. */
void tb_ingest_submit(struct tb_node *n, struct evhttp_request *req, char *raw, size_t len);
/* Requests handed to the thread and not yet answered. */
/* The ingest thread's worker and journal handle, for other jobs that
 * journal off the loop (answers.c); TB_E_ARG if it is not running. */
TB_MUST_CHECK int tb_ingest_thread(struct tb_node *n, struct tb_worker **w, struct tb_journal **j);
size_t tb_ingest_pending(const struct tb_node *n);
/* Lets the thread finish the queued requests, joins it and frees it;
 * answers not yet sent are dropped (their messages stay journalled). */
void tb_ingest_stop(struct tb_node *n);

#endif
