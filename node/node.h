/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node.h - the daemon's shared state and the functions of node.c (the
 * registry in force, keys, routes, clocks).  Only node/ includes this.
 *
 * The daemon is a pipeline of stages, one file (and header) each, and
 * each calls only stages below it (tests/node_layers.sh checks it):
 *
 *   received:   transport.c -> inbound.c -> journal (inbox) ;
 *               inbound hands on to its consumers: outbound (relays,
 *               receipts returned through a hub), webhook.c, and the
 *               optional reference responder (responder.c)
 *   sent:       api.c -> ingest.c -> outbound.c -> transport.c ;
 *               answers.c settles outbound's answers off the loop
 *   registry:   regsync.c -> transport.c ; node.c applies it
 *   below them: flows.c (flow checks), apimsg.c (the local API's
 *               messages), lifecycle.c (expiry over time, health),
 *               node.c, journal.c, worker.c, config.c, log.c
 *
 * A lower stage that must tell an upper one calls a function the upper
 * one registered at setup: struct tb_transport_client (answers, nacks,
 * lost sessions), struct tb_inbound_consumer (what arrived),
 * tb_node_on_registry (a new registry), tb_outbound_set_settler and
 * tb_outbound_on_delivered.  tongban-node.c starts the stages, lowest
 * first, and wires them.
 *
 * struct tb_node holds what several stages share; a stage's own state
 * is a struct private to its file (n->out, n->in, n->sync, n->ingest,
 * n->answers, n->webhook), reached only through its header.  One
 * libevent loop runs the node; beside it run the journal's checkpoint
 * thread (journal.c) and the ingest thread, which seals and journals
 * local API submissions (ingest.c) and settles answers (answers.c), and
 * which reads the registry and tunables under reg_lock.
 *
 * Thread-safety: the functions run on the event loop unless their
 * comment names another thread (the ingest thread); what that thread
 * shares with the loop is listed at struct tb_node.  Ownership is stated
 * per function; a struct tb_node owns everything it points to.
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
#include "../util/tb_err.h"

struct tb_reg;
struct tb_route;
struct tb_trust;
struct tb_journal;
struct tb_webhook;
struct evhttp;
struct tb_apiconn;

struct tb_ingest;
struct tb_answers;
struct tb_outbound;
struct tb_inbound;
struct tb_regsync;
struct tb_transport_client;
struct tb_refusals;
struct tb_flood;
struct tb_dtls_id;

#define TB_LAT_BUCKETS 28
#define TB_LAT_SLOTS 65536
extern const double tb_lat_bounds[TB_LAT_BUCKETS];

/* Counters for /metrics (api.c reads them all): in_* and compact_answers,
 * recanonicalised by inbound.c; out_* and the latency by outbound.c;
 * handshake_refused by transport.c; api_requests by api.c.  Loop only. */
struct tb_metrics {
	uint64_t in_ok, in_dup, in_refused, out_delivered, out_failed, out_retries;
	uint64_t out_hedged; /* exchanges whose messages went again on another session */
	uint64_t out_rounds; /* delivery rounds run (outbound.c deliver_cb) */
	uint64_t in_full; /* of in_refused: no room in the journal (lifecycle.c) */
	uint64_t in_down; /* received envelopes refused: the journal's database out of reach */
	uint64_t compact_answers; /* batch answers without the receipts' proofs (9.3) */
	uint64_t answers_replayed; /* kept answers to a retransmitted last block (9.2) */
	uint64_t recanonicalised; /* received envelopes not in the canonical form */
	uint64_t handshake_refused, api_requests;
	uint64_t clock_skew_receipts; /* outbound.c: receipts accepted despite their time */
	uint64_t lat_buckets[28]; /* submit-to-receipt latency, tb_lat_bounds */
	double lat_sum_ms;
	uint64_t lat_count;
};

/* The node's operating state (DESIGN.md "Operating it", docs/ADMIN.md):
 * whether it may exchange messages at all.  node.c sets it when a
 * registry is applied or expires, under reg_lock for writing; every
 * stage reads it (the ingest thread under reg_lock for reading).
 * "degraded" (something nears expiry, a peer is down) is a health
 * condition of an exchanging node, not a state: api.c reports it. */
enum tb_node_state {
	TB_NODE_OK = 0,      /* exchanging */
	TB_NODE_RECOVERY,    /* registry expired: no exchanges, submissions
	                      * queued, fetching a newer registry (TB_E_RECOVERY) */
	TB_NODE_SUSPENDED,   /* own member suspended: no exchanges, queue kept
	                      * (TB_E_MEMBER_SUSPENDED) */
	TB_NODE_REVOKED,     /* own member revoked: no exchanges, queued
	                      * messages fail (TB_E_MEMBER_REVOKED) */
};

struct tb_node {
	/* everyone's, read-only after setup (tunables change under reg_lock) */
	struct tb_config cfg;
	const char *config_path;
	struct event_base *base;
	struct tb_journal *journal; /* the loop's handle */
	bool draining;              /* SIGTERM: refuse new work */
	enum tb_node_state state;   /* see enum tb_node_state */
	struct tb_metrics m;        /* each counter written by one stage */
	/* node.c: identity, trust, the registry in force */
	struct tb_key *sign_key;
	uint8_t sign_kid[TB_KEYID_LEN];
	int64_t cert_not_after; /* the node certificate's notAfter, Unix s
	                         * (set at start and when it is re-read) */
	struct tb_trust *trust;
	/* reg, route and privs are replaced by the loop only, holding
	 * reg_lock for writing; the ingest thread reads them holding it for
	 * reading (the loop's own reads need no lock) */
	pthread_rwlock_t reg_lock;
	struct tb_reg *reg;
	struct tb_route *route;  /* route table of reg */
	struct tb_buf reg_bytes; /* the registry document as served */
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
	/* node.c: a verified registry that is not valid yet by this node's
	 * clock (issued more than clock_skew ahead), kept and applied when it
	 * is (tb_node_apply_pending); empty when none.  Loop only. */
	struct tb_buf pending;
	uint64_t pending_serial;
	int64_t pending_issued;
	/* called when n->state changes (tb_node_on_state) */
	struct tb_state_hook {
		void (*fn)(void *ctx, enum tb_node_state old, enum tb_node_state now);
		void *ctx;
	} * state_hooks;
	size_t nstate_hooks;
	struct tb_lifecycle *life; /* lifecycle.c: timers, warnings, health */
	/* called when a registry is applied (tb_node_on_registry) */
	struct tb_reg_hook {
		void (*fn)(void *ctx, const struct tb_reg *reg);
		void *ctx;
	} * reg_hooks;
	size_t nreg_hooks;
	char **interned; /* member id strings handed to sessions */
	size_t ninterned;
	/* transport.c: the CoAP context (inbound.c adds its resources to it)
	 * and the peers (whose delivery state outbound.c keeps) */
	coap_context_t *coap;
	struct tb_dtls_id *dtls_id; /* transport.c: the DTLS identity in use */
	struct event *coap_ev, *coap_timer;
	struct tb_peer *peers;
	struct tb_transport_client *clients; /* registered at setup */
	size_t nclients;
	struct tb_retired {
		coap_session_t *s;
		int64_t since_ms;
	} * retired; /* sessions given up, released later */
	size_t nretired;
	struct tb_refusals *refusals; /* transport.c: rate-limited refusal and clock lines */
	struct tb_flood *flood;       /* transport.c: per-source limits (flood.h) */
	int dtls_fd;                  /* transport.c: the listening socket (-1: unknown) */
	/* the stages' own state, private to their files */
	struct tb_inbound *in;      /* inbound.c */
	struct tb_outbound *out;    /* outbound.c */
	struct tb_regsync *sync;    /* regsync.c, or NULL */
	struct tb_answers *answers; /* answers.c */
	struct tb_ingest *ingest;   /* ingest.c */
	struct tb_webhook *webhook; /* webhook.c, or NULL */
	struct tb_audit *audit;     /* audit.c: the chain's signed head */
	/* api.c */
	struct evhttp *http;
	struct tb_apiconn *apiconn; /* api.c: its connections (apiconn.h) */
	char api_token[128];
};

/* node.c */
/* "ok", "recovery", "suspended" or "revoked". */
const char *tb_node_state_name(enum tb_node_state s);
/* True when the node may exchange messages (state TB_NODE_OK): outbound
 * and transport attempt no handshake and send nothing otherwise. */
bool tb_node_exchanging(const struct tb_node *n);
/* 0 when exchanging, else the state's error (TB_E_RECOVERY,
 * TB_E_MEMBER_SUSPENDED, TB_E_MEMBER_REVOKED) for callers to report. */
int tb_node_state_err(const struct tb_node *n);
TB_MUST_CHECK const char *tb_node_intern(struct tb_node *n, const char *id);
int64_t tb_now(void);     /* Unix seconds */
int64_t tb_now_ms(void);  /* monotonic milliseconds */
int64_t tb_wall_ms(void); /* Unix milliseconds */
TB_MUST_CHECK struct tb_node *tb_node_new(const char *config_path, struct tb_diag *d);
/* Replaces the loop's message-signing key (takes key; the old one is
 * wiped): receipts and messages sealed on the loop from now on use it.
 * Loop only; the ingest thread's copy is tb_ingest_set_key's. */
void tb_node_set_sign_key(struct tb_node *n, struct tb_key *key);
void tb_node_free(struct tb_node *n);
/* Loads, verifies and applies a registry document (borrowed bytes): it
 * must verify under the trust anchor with a serial higher than the one
 * in force, and this node's clock must be inside its validity window,
 * allowing clock_skew before "issued" (PROTOCOL.md 7.4).  One issued
 * further ahead is kept as n->pending (written to the registry file too
 * when persist) and TB_E_REG_NOT_YET_VALID returned; an expired one is
 * refused.  Applied: written to the registry file when persist, always
 * to the last good copy (tb_config_last_registry), n->state updated,
 * the registry hooks called.  On any refusal the registry in force and
 * its files stay as they were. */
TB_MUST_CHECK int tb_node_apply_registry(struct tb_node *n, const uint8_t *doc, size_t len,
                                         bool persist, struct tb_diag *d);
/* What tb_node_reload_registry did with the registry file. */
enum tb_reload {
	TB_RELOAD_UNCHANGED, /* the registry in force (or the pending one) */
	TB_RELOAD_APPLIED,
	TB_RELOAD_PENDING, /* not valid yet: kept, applied when it is */
	TB_RELOAD_REFUSED, /* d says why; the registry in force is kept */
};
/* Re-reads the configured registry file and applies it (SIGHUP, the
 * API's POST /v1/registry/reload); logs the outcome, prefixed by who
 * ("SIGHUP"). */
enum tb_reload tb_node_reload_registry(struct tb_node *n, const char *who, struct tb_diag *d);
/* Applies n->pending once this node's clock has reached its window. */
void tb_node_apply_pending(struct tb_node *n);
/* Sets n->state from the registry in force, this member's status in it
 * and the clock (expiry enters recovery); logs a change once, at error
 * level for a state that stops exchanges, and calls the state hooks. */
void tb_node_update_state(struct tb_node *n);
/* Registers fn to be called (on the loop) after each change of n->state;
 * setup only (out of memory aborts). */
void tb_node_on_state(struct tb_node *n,
                      void (*fn)(void *ctx, enum tb_node_state old, enum tb_node_state now),
                      void *ctx);
/* Where a node in recovery fetches a newer registry from: the member ids
 * of registry_upstream (first, when set) and of every other active hub
 * with an endpoint in the registry in force, up to max; returns how many
 * were written to ids. */
size_t tb_node_registry_sources(const struct tb_node *n, char (*ids)[16], size_t max);
/* Writes the registry in force to the last good copy if that holds
 * other bytes (start-up; -n writes nothing).  Failure is logged. */
void tb_node_save_last_good(struct tb_node *n);
/* t (Unix seconds) as "2026-12-05T01:02:03Z" (out: 24 bytes). */
void tb_fmt_utc(int64_t t, char out[24]);
/* Registers fn to be called (on the loop) with each registry applied
 * after this, once it is in force; setup only (out of memory aborts). */
void tb_node_on_registry(struct tb_node *n, void (*fn)(void *ctx, const struct tb_reg *reg),
                         void *ctx);
/* The public key with this id of active member `from` for message
 * signatures; NULL when none (tb_env_open lookup). */
const struct tb_pub *tb_node_lookup_sign(void *ctx, const char *from, const uint8_t *kid);
/* Checks a DTLS peer certificate (DER) against the registry: the member
 * id it belongs to (interned, owned by the node), or NULL with the reason
 * in why (whylen bytes; transport.c logs it, rate-limited). */
TB_MUST_CHECK const char *tb_node_peer_member(struct tb_node *n, const uint8_t *der, size_t len,
                                              char *why, size_t whylen);
/* True when member offers service in the current registry. */
bool tb_node_offers(const struct tb_node *n, const char *member, const char *service);
/* The member serving service for region under the current registry
 * (copied into member, 16 bytes); TB_E_NO_ROUTE when none. */
TB_MUST_CHECK int tb_node_route(struct tb_node *n, const char *service, const char *region,
                                char *member, struct tb_diag *d);
/* First endpoint host/port for the next hop towards member `to`. */
TB_MUST_CHECK int tb_node_next_hop(struct tb_node *n, const char *to, char *hop, size_t hoplen,
                                   coap_address_t *addr, struct tb_diag *d);
/* The same with the hop's endpoint ep (0-based among its coaps
 * endpoints, in registry order; taken modulo their number) into addr,
 * and their number into *nep (1 for a private endpoint). */
TB_MUST_CHECK int tb_node_next_hop_ep(struct tb_node *n, const char *to, int ep, char *hop,
                                      size_t hoplen, coap_address_t *addr, int *nep,
                                      struct tb_diag *d);

#endif
