/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.h - the sending stage (api/ingest -> outbound -> transport):
 * seals and journals submissions (tb_outbound_store, on the loop or the
 * ingest thread), delivers due messages in batches per next hop over the
 * transport, retries with backoff and a circuit breaker per peer, and
 * settles the answers (tb_outbound_settle off the loop, with answers.c).
 * Owns the exchanges in flight, the memory queue and the latency clocks
 * (struct tb_outbound, private).  Calls transport.c, flows.c, node.c and
 * the journal; tells the settler and the delivered hook registered at
 * setup.  Loop only, except where a function says otherwise.
 */
#ifndef TB_OUTBOUND_H
#define TB_OUTBOUND_H

#include "node.h"
#include "worker.h"
#include "../util/tb_err.h"

struct tb_env_fields;
struct tb_env_open_opts;
struct tb_journal;

/* Largest inflated answer to an exchange (receipts of up to 256
 * envelopes, or error objects) */
#define TB_ANSWER_MAX (4u << 20)

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
	char (*types)[48]; /* for the log; NULL out of memory */
	bool *relayed; /* a message from another member, relayed by this hub */
	int64_t sent_ms;
	size_t bytes;   /* the request body's length, as sent (the link estimate) */
	bool handshake; /* sent while its session's handshake ran (no RTT sample) */
	uint32_t epoch; /* the peer's backoff epoch when it was sent */
	int failures;   /* the peer's consecutive failures then */
	bool hedged;    /* its messages were made due again on another session */
	bool large;     /* its request goes block-wise (tb_peer.large) */
	int ep;         /* the peer's endpoint its session went to (transport.h) */
	int64_t renew_at; /* s: a shared journal's lease on its messages is renewed
	                   * then (TB_JOURNAL_LEASE_S) */
	struct tb_exchange *next;
};

/* An exchange's answer, settled off the loop (answers.c): checked and
 * journalled by tb_outbound_settle on the answers thread, then applied by
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
	int64_t max_age; /* a 5.xx answer's Max-Age, s (the peer cannot take
	                  * messages before then); -1: none */
	char why[96];    /* a 5.xx answer's "reason: detail", set by settle */
	/* results, for the loop */
	bool *delivered; /* per message: receipt verified and journalled */
	size_t ndelivered;
	uint64_t failed, retries;
	uint64_t bad;    /* messages retried for the answer's fault (not a
	                  * valid receipt, receiver's internal error) */
	uint64_t skewed; /* receipts accepted although refused for their time */
	bool has_offset; /* offset known: a receipt of the peer was read */
	int64_t offset;  /* its created time minus ours, s */
	bool relays;     /* receipts queued to go back (a hub) */
	struct {
		char type[48];
		char corr[33];
	} * notes; /* per delivered message: for tb_outbound_on_delivered, or NULL */
};

/* How long a message journalled for sending from memory waits before the
 * journal's queue offers it again: the longest it may wait in memory, plus
 * an exchange's answer timeout (config key answer_timeout), plus 2 s for
 * the clocks' rounding (the journal counts whole seconds), so that it is
 * not sent twice meanwhile. */
#define TB_FRESH_SEND_S 5
#define TB_FRESH_HOLD_S(n) (TB_FRESH_SEND_S + (n)->cfg.answer_timeout + 2)

/* A message journalled and handed to the loop to send from memory, without
 * reading it back from the journal (outbound.c). */
struct tb_fresh {
	char id[33], to[16], digest[65];
	char type[48]; /* for the log */
	int64_t expires;
	int64_t handed_ms; /* when the loop took it over */
	struct tb_buf env; /* its wire form */
};

/* Sets up the stage (its delivery timer, memory queue and latency
 * clocks, on n->base) and registers with the transport for the answers
 * to exchanges. */
TB_MUST_CHECK int tb_outbound_init(struct tb_node *n, struct tb_diag *d);
/* Frees the stage: its timer, the exchanges still awaiting answers and
 * whatever is in the memory queue (the journal has it all). */
void tb_outbound_free(struct tb_node *n);
/* Seals count messages with one batch signature (key) and journals them
 * in one transaction of j (all or none); on failure *bad is the offending
 * index, or TB_OUTBOUND_WHOLE when the journal failed (no one message's
 * fault).  Runs on the loop (j = n->journal) or on the ingest thread (its
 * own handle and key copy, holding reg_lock for reading); it does not
 * schedule delivery.  With fresh (count entries) the messages are held
 * for the loop to send from memory: each is journalled with its first
 * attempt TB_FRESH_HOLD_S(n) ahead (on a shared journal the lease,
 * TB_JOURNAL_LEASE_S) and fresh[i] receives its wire form (owned by the
 * caller, for tb_outbound_hand, or tb_fresh_free). */
#define TB_OUTBOUND_WHOLE ((size_t)-1)
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
/* Registers fn (one, at setup): called on the loop, outside transactions,
 * with the type and corr of each message delivered that has a corr (the
 * reference responder's case.result follows a delivered case.accept). */
void tb_outbound_on_delivered(struct tb_node *n,
                              void (*fn)(void *ctx, const char *type, const char *corr), void *ctx);
/* Inbound consumer functions (struct tb_inbound_consumer, ctx n),
 * registered by tongban-node.c: a receipt that came back through a hub
 * stops message id's latency clock and counts it delivered; relays
 * queued by a hub are sent in a delivery round now. */
void tb_outbound_returned(void *ctx, const char *id, const char *type, const char *corr);
void tb_outbound_relays_queued(void *ctx, bool relayed);
/* Where the loop hands each exchange's answer (owned) to be settled:
 * fn runs tb_outbound_settle, then tb_outbound_settled on the loop
 * (answers.c does it on a thread of its own).  Registered at setup; without
 * one an answer is dropped and its messages are sent again after the
 * answer timeout. */
typedef void (*tb_settler_fn)(void *ctx, struct tb_answer *a);
void tb_outbound_set_settler(struct tb_node *n, tb_settler_fn fn, void *ctx);
/* Answers thread: checks a's receipts (o: key lookup under reg_lock, and
 * the thread's own signature cache) and journals the outcomes in j. */
void tb_outbound_settle(struct tb_node *n, struct tb_journal *j, const struct tb_env_open_opts *o,
                        struct tb_answer *a);
/* Loop: applies a's results (metrics, latency, responder, delivery, the
 * peer's backoff and clock) and frees a with its exchange.  n NULL: only
 * frees (shutting down). */
void tb_outbound_settled(struct tb_node *n, struct tb_answer *a);
/* Loop: appends the per-peer metrics (Prometheus text format, with their
 * # HELP and # TYPE lines) to out: tongban_peer_up,
 * tongban_peer_last_success_seconds, tongban_peer_failures_total{reason},
 * tongban_peer_backoff_seconds, tongban_peer_clock_offset_seconds,
 * tongban_clock_skew_receipts_total and the link estimate:
 * tongban_peer_rtt_seconds, tongban_peer_rtt_variation_seconds,
 * tongban_peer_loss_ratio, tongban_peer_batch_size,
 * tongban_peer_ack_timeout_seconds, tongban_peer_exchanges_lost_total. */
void tb_outbound_metrics(struct tb_node *n, struct tb_buf *out);

/* What this node knows of reaching one peer, for GET /v1/peers (api.c). */
struct tb_peer_view {
	bool known;             /* the node has tried it, or it connected: the
	                         * fields below are set (else all zero) */
	bool up;                /* the last attempt succeeded */
	int64_t last_handshake; /* Unix s, 0: none since start */
	int64_t last_success;   /* Unix s, 0: none since start */
	int failures;           /* consecutive failed attempts */
	const char *circuit;    /* "closed", "backoff", "open" or "half-open"
	                         * (static) */
	double backoff_s;       /* until the next attempt may start, 0: now */
	char last_error[160];   /* the latest failure's reason, "" when none */
};
/* Loop: fills v for member id (borrowed). */
void tb_outbound_peer_view(struct tb_node *n, const char *id, struct tb_peer_view *v);

#endif
