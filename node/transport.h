/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.h - the lowest stage: libcoap (CoAP over DTLS, GnuTLS) on the
 * libevent loop.  Owns the context, the listening endpoint, the client
 * sessions per peer (struct tb_peer, whose delivery fields outbound.c
 * keeps) and the DTLS peer check against the registry.  Calls only
 * node.c; what it must tell the stages above (answers, nacks, lost
 * sessions) goes to the clients they register (struct
 * tb_transport_client).  Inbound requests reach inbound.c's resources
 * through libcoap.  Loop only.
 */
#ifndef TB_TRANSPORT_H
#define TB_TRANSPORT_H

#include "link.h"
#include "log.h"
#include "node.h"
#include "../federation/tb_reg.h"
#include "../util/tb_err.h"

/* CoAP content-format: application/json with the deflate content coding
 * (IANA CoAP Content-Formats registry); PROTOCOL.md 9.2 */
#define TB_CF_JSON_DEFLATE 11050
/* Uri-Query of a batch POST /fed/msg whose sender rebuilds the receipts'
 * Merkle paths, so that the answer may leave them out (PROTOCOL.md 9.3).
 * One letter: every block repeats the request's options, and a few more
 * bytes make libcoap halve the block size (measured: 11 more bytes did) */
#define TB_COMPACT_QUERY "c"

/* A client handshake that fails this long after it began, ms, timed out
 * (its flights got no answer on a lossy link) rather than ended with the
 * peer's alert: it counts as "unreachable", not "handshake_refused". */
#define TB_HS_TIMEOUT_MS 4000
/* A peer that answered an exchange this recently, ms, is reachable: a
 * handshake or exchange lost meanwhile is the link's loss (struct
 * tb_link), not an outage that starts the backoff. */
#define TB_LINK_ALIVE_MS 60000

/* Consecutive failures that open a peer's circuit (breaker_open_ms). */
#define TB_BREAKER_AFTER 5

/* Why an attempt to reach a peer failed (the reason label of
 * tongban_peer_failures_total, docs/ADMIN.md). */
enum tb_peer_fail {
	TB_PF_REFUSED,     /* the DTLS handshake was refused: an alert from
	                    * the peer, or its certificate refused here */
	TB_PF_UNREACHABLE, /* no DTLS session: the handshake got no answer,
	                    * or the port was unreachable */
	TB_PF_TIMEOUT,     /* an exchange got no answer (answer_timeout, or
	                    * libcoap gave up on it) */
	TB_PF_ANSWER,      /* the peer answered with a server error, or not
	                    * with valid receipts */
	TB_PF_N
};
/* "handshake_refused", "unreachable", "timeout", "bad_answer". */
const char *tb_peer_fail_name(enum tb_peer_fail why);

/* Per-peer outbound state (delivery, backoff, circuit breaker, what
 * /metrics shows).  Up to peer_sessions DTLS sessions are kept to a
 * peer: one block-wise exchange runs per session, so parallel sessions
 * carry parallel exchanges.
 *
 * Backoff (docs/PROTOCOL.md "Retries"): every failed attempt to reach
 * the peer (tb_peer_failed) counts one consecutive failure k; no new
 * session and no exchange is started before open_until_ms, k failures
 * after the first: retry_min_ms * 2^(k-1), at most retry_max_ms, with
 * +-25 % jitter; from BREAKER_AFTER failures on (at once for a refused
 * handshake) at least breaker_open_ms (the circuit is open).  While k > 0
 * one attempt at a time probes the peer.  Attempts under way when a
 * failure is counted (the same epoch) do not count again.  A success
 * (tb_peer_succeeded) resets k. */
struct tb_peer {
	char id[16];
	coap_session_t *sessions[TB_PEER_SESSIONS_MAX];
	int inflight[TB_PEER_SESSIONS_MAX];        /* exchanges awaiting an answer, per session */
	bool large[TB_PEER_SESSIONS_MAX];          /* a block-wise one among them: at most one
	                                            * (libcoap reassembles a session's Block1
	                                            * transfers per resource) */
	int settling; /* exchanges answered, their answers not yet settled (answers.c):
	               * a failing peer's probe is under way until then */
	int settling_5xx; /* of them, answers 5.xx: whether the peer asks to be left
	                   * alone for a Max-Age is not known until settled */
	uint32_t slot_epoch[TB_PEER_SESSIONS_MAX]; /* epoch its session was opened in */
	bool hs_failed[TB_PEER_SESSIONS_MAX];      /* its session's handshake failed */
	bool stale[TB_PEER_SESSIONS_MAX];          /* set up with an identity since rotated */
	int64_t opened_ms[TB_PEER_SESSIONS_MAX];   /* monotonic: when its handshake began */
	/* The member's endpoints (PROTOCOL.md 9.6, "Several endpoints"): a
	 * new session goes to the first whose breaker is closed */
	int slot_ep[TB_PEER_SESSIONS_MAX]; /* the endpoint its session went to */
	int nep;                           /* coaps endpoints, as last seen */
	int64_t ep_open_until_ms[TB_REG_MAX_ENDPOINTS]; /* monotonic: failed, not chosen
	                                                  * before then */
	bool drop;             /* release all sessions at the next delivery round */
	int failures;          /* consecutive failures */
	uint32_t epoch;        /* counted failures so far (see above) */
	int64_t open_until_ms; /* no new attempt before then (monotonic) */
	/* for /metrics (tb_outbound_metrics) */
	bool up;                      /* the last attempt succeeded */
	int64_t last_success;         /* Unix s, 0: none since start */
	int64_t last_handshake;       /* Unix s of the last DTLS handshake completed
	                               * with the peer, either way; 0: none */
	uint64_t fails[TB_PF_N];      /* failed attempts by reason, since start */
	bool has_offset;              /* clock_offset known */
	int64_t clock_offset;         /* the peer's clock minus ours, s (its receipts) */
	uint64_t skewed_receipts;     /* receipts accepted despite their time */
	struct tb_report report;      /* rate limit of the failure lines */
	bool report_held;             /* the failure being counted is told of by its
	                               * caller (a peer that cannot store, outbound.c) */
	/* the peer answered 5.xx with Max-Age: it cannot take messages now
	 * (journal.full); told of once, with a count when it clears */
	bool busy;
	int64_t busy_since_ms, busy_line_ms; /* monotonic: start, last line */
	uint64_t busy_refusals;              /* its refusals since the last line */
	char busy_why[96];                   /* its reason, "journal.full: ..." */
	struct tb_report skew_report; /* and of the clock skew lines */
	/* outbound.c: the link's estimate (batch size, retransmission
	 * parameters of the sessions: tb_transport_tune) */
	struct tb_link link;
	int64_t last_answer_ms; /* monotonic: the last exchange answered (0: none) */
	int up_sessions; /* its sessions up, as of the last delivery round */
	int window;      /* exchanges a session that is up may have outstanding,
	                  * from them (tb_link_window; 1 until a round set it) */
	bool backlog; /* messages to it waited for room in the last delivery round:
	               * while none do, its stragglers are hedged sooner (outbound.c) */
	struct tb_peer *next;
};

/* Backoff after `failures` consecutive failures (>= 1), in ms, with
 * jitter (the breaker left out): retry_min_ms * 2^(failures-1), at most
 * retry_max_ms, +-25 %.  Any thread (c read under reg_lock). */
int64_t tb_backoff_ms(const struct tb_config *c, int failures);
/* Counts a failed attempt of epoch `epoch` (the peer's epoch when the
 * attempt started) with reason why and detail (copied; may be NULL),
 * sets the next attempt's time and writes the rate-limited log line. */
void tb_peer_failed(struct tb_node *n, struct tb_peer *p, uint32_t epoch, enum tb_peer_fail why,
                    const char *detail);
/* The later of p's next attempt and max_age_s seconds (a 5.xx answer's
 * Max-Age, PROTOCOL.md 9.6) after now_ms, plus up to 25 % of max_age_s
 * of jitter taken from rnd (so that the senders a peer held do not come
 * back together): the new p->open_until_ms.  max_age_s is capped at
 * TB_MAX_AGE_CAP.  Pure: any thread. */
#define TB_MAX_AGE_CAP 3600
int64_t tb_peer_hold_until(const struct tb_peer *p, int64_t now_ms, int64_t max_age_s,
                           uint32_t rnd);
/* Endpoint ep of p failed (the port unreachable, a handshake or exchange
 * without an answer): its breaker opens for breaker_open_ms.  True when
 * p has another endpoint whose breaker is closed: new sessions go there
 * at once, and the failure is no failed attempt of the peer (no backoff).
 * False with a single endpoint. */
bool tb_transport_failover(struct tb_node *n, struct tb_peer *p, int ep, const char *why);
/* An attempt succeeded: the backoff is reset, the peer is up. */
void tb_peer_succeeded(struct tb_node *n, struct tb_peer *p);
/* True when a new attempt to p may start at monotonic time now_ms. */
bool tb_peer_ready(const struct tb_peer *p, int64_t now_ms);
/* True when member id's peer is waiting out its backoff, or a probe of
 * it is under way: a caller (regsync.c) need not ask for a session. */
bool tb_transport_waiting(struct tb_node *n, const char *id);
/* Records the peer's clock offset (its time minus ours, s) learnt from
 * a receipt; skewed counts the receipts accepted despite their time
 * (logged, rate-limited).  Warns (rate-limited) when most peers' clocks
 * differ from ours by more than half clock_skew. */
void tb_peer_clock(struct tb_node *n, struct tb_peer *p, int64_t offset, uint64_t skewed);

/* A stage that sends requests through the transport (outbound.c,
 * regsync.c) and is told what becomes of them: registered at setup,
 * since libcoap takes one handler of each kind per context.  Any
 * function may be NULL; each runs on the loop, inside libcoap. */
struct tb_transport_client {
	/* recv answers a request this client sent: true when it did (the
	 * answer is then offered to no other client) */
	bool (*response)(void *ctx, coap_session_t *s, const coap_pdu_t *sent,
	                 const coap_pdu_t *recv);
	/* libcoap gave up on sent (offered to every client) */
	void (*nack)(void *ctx, coap_session_t *s, const coap_pdu_t *sent, coap_nack_reason_t r);
	/* s closed, failed or was retired: nothing more arrives on it */
	void (*lost)(void *ctx, coap_session_t *s);
	void *ctx;
};
#define TB_TRANSPORT_CLIENTS 4
/* Registers c (copied); more than TB_TRANSPORT_CLIENTS is a bug, and
 * out of memory at setup is fatal (both abort). */
void tb_transport_add_client(struct tb_node *n, const struct tb_transport_client *c);

TB_MUST_CHECK int tb_transport_start(struct tb_node *n, struct tb_diag *d);
void tb_transport_stop(struct tb_node *n);
/* Re-reads cert, key and root (n->cfg's paths) for the DTLS sessions set
 * up from now on (SIGHUP rotation): sessions peers open get the new
 * certificate at once, our client sessions when next idle (exchanges in
 * flight finish on the old ones).  *changed false when the files hold
 * what is in use.  The caller checks the files first (tb_config_check);
 * on failure the identity in use is kept. */
TB_MUST_CHECK int tb_transport_set_identity(struct tb_node *n, bool *changed, struct tb_diag *d);
/* Re-arms libcoap's timer after work was queued outside its callbacks. */
void tb_transport_kick(struct tb_node *n);
/* The value of pdu's option num as an unsigned integer (Content-Format,
 * Accept), or -1 when it is absent. */
long tb_coap_uint_option(const coap_pdu_t *pdu, coap_option_num_t num);
/* The (cached) client session to peer member `to`, or NULL: none is
 * opened while the node's state forbids it (suspended, revoked; in
 * recovery only regsync.c asks) or while the peer waits out its backoff
 * (tb_transport_waiting). */
TB_MUST_CHECK coap_session_t *tb_transport_session(struct tb_node *n, const char *to, int slot,
                                                   struct tb_diag *d);
void tb_transport_drop_peer(struct tb_node *n, const char *to);
/* Sets s's CoAP retransmission parameters (ACK_TIMEOUT, ACK_RANDOM_FACTOR,
 * and once its handshake is done MAX_RETRANSMIT, which also bounds the
 * handshake's DTLS timeouts) from the link estimate l of its peer
 * (link.h); without an estimate libcoap's defaults (RFC 7252) stay. */
void tb_transport_tune(coap_session_t *s, const struct tb_link *l);
/* Releases retired sessions old enough to have no transfer left. */
void tb_transport_reap(struct tb_node *n);
/* Releases slot's session of peer id if it is still s (outside libcoap
 * callbacks only). */
void tb_transport_drop_slot(struct tb_node *n, const char *id, int slot, coap_session_t *s);
/* The peer record for member id (created on first use); NULL on memory error. */
TB_MUST_CHECK struct tb_peer *tb_transport_peer(struct tb_node *n, const char *id);

#endif
