/*
 * node.h - the daemon's internal map: one struct tb_node that owns the
 * event loop, libcoap context, keys, registry, journal and local API, and
 * the functions of each node/ file grouped by file.  Only node/ includes
 * this.  One libevent loop runs the node; beside it run the journal's
 * checkpoint thread (journal.c) and the ingest thread that seals and
 * journals local API submissions (ingest.c, which lists what it shares).
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

struct tb_reg;
struct tb_route;
struct tb_trust;
struct tb_journal;
struct tb_inbound_consumer;
struct tb_webhook;
struct tb_env;
struct tb_env_fields;
struct tb_json;
struct tb_json_limits;
struct evhttp;
struct evhttp_request;

struct tb_ingest;
struct tb_answers;
struct tb_answer;
struct tb_outbound;
struct tb_inbound;
struct tb_regsync;
struct tb_transport_client;
struct tb_env_open_opts;
struct cJSON;

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
	struct event *coap_ev, *coap_timer;
	coap_context_t *coap;
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
	struct tb_outbound *out;    /* the outbound stage (outbound.c) */
	struct tb_inbound *in;      /* the inbound stage (inbound.c) */
	struct tb_regsync *sync;    /* the upstream observation (regsync.c), or NULL */
	char api_token[128];
	struct tb_peer *peers;
	struct tb_transport_client *clients; /* registered at setup (transport.c) */
	size_t nclients;
	struct tb_retired {
		coap_session_t *s;
		int64_t since_ms;
	} * retired; /* sessions given up, released later (transport.c) */
	size_t nretired;
	char **interned; /* member id strings handed to sessions */
	size_t ninterned;
	bool draining;
	struct tb_metrics m;
	struct tb_webhook *webhook; /* push to the city's system, or NULL */
	/* hub: members without registry endpoints that only this hub reaches */
	struct tb_private_ep {
		char id[8];
		char uri[120];
	} * privs;
	size_t nprivs;
	/* called when a registry is applied (tb_node_on_registry) */
	struct tb_reg_hook {
		void (*fn)(void *ctx, const struct tb_reg *reg);
		void *ctx;
	} * reg_hooks;
	size_t nreg_hooks;
	/* pubkey cache for message verification, rebuilt with the registry */
	struct tb_pub **pubs;
	size_t *pub_base; /* index in pubs of each member's first key */
	size_t npubs;
};

/* node.c */
const char *tb_node_intern(struct tb_node *n, const char *id);
int64_t tb_now(void);     /* Unix seconds */
int64_t tb_now_ms(void);  /* monotonic milliseconds */
int64_t tb_wall_ms(void); /* Unix milliseconds */
struct tb_node *tb_node_new(const char *config_path, struct tb_diag *d);
void tb_node_free(struct tb_node *n);
/* Loads, verifies and applies a registry document (borrowed bytes);
 * refuses one not newer than the current (unless it is the first). */
int tb_node_apply_registry(struct tb_node *n, const uint8_t *doc, size_t len, bool persist,
                           struct tb_diag *d);
/* Registers fn to be called (on the loop) with each registry applied
 * after this, once it is in force; setup only (out of memory aborts). */
void tb_node_on_registry(struct tb_node *n, void (*fn)(void *ctx, const struct tb_reg *reg),
                         void *ctx);
/* The public key with this id of active member `from` for message
 * signatures; NULL when none (tb_env_open lookup). */
const struct tb_pub *tb_node_lookup_sign(void *ctx, const char *from, const uint8_t *kid);
/* Checks a DTLS peer certificate (DER) against the registry: the member
 * id it belongs to (interned, owned by the node), or NULL. */
const char *tb_node_peer_member(struct tb_node *n, const uint8_t *der, size_t len);
/* True when member offers service in the current registry. */
bool tb_node_offers(const struct tb_node *n, const char *member, const char *service);
/* The member serving service for region under the current registry
 * (copied into member, 16 bytes); TB_E_NO_ROUTE when none. */
int tb_node_route(struct tb_node *n, const char *service, const char *region, char *member,
                  struct tb_diag *d);
/* First endpoint host/port for the next hop towards member `to`. */
int tb_node_next_hop(struct tb_node *n, const char *to, char *hop, size_t hoplen,
                     coap_address_t *addr, struct tb_diag *d);

#endif
