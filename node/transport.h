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

#include "node.h"
#include "../util/tb_err.h"

/* CoAP content-format: application/json with the deflate content coding
 * (IANA CoAP Content-Formats registry); PROTOCOL.md 9.2 */
#define TB_CF_JSON_DEFLATE 11050
/* Uri-Query of a batch POST /fed/msg whose sender rebuilds the receipts'
 * Merkle paths, so that the answer may leave them out (PROTOCOL.md 9.3).
 * One letter: every block repeats the request's options, and a few more
 * bytes make libcoap halve the block size (measured: 11 more bytes did) */
#define TB_COMPACT_QUERY "c"

/* Per-peer outbound state (delivery, circuit breaker).  Up to
 * peer_sessions DTLS sessions are kept to a peer: one block-wise exchange
 * runs per session, so parallel sessions carry parallel exchanges. */
struct tb_peer {
	char id[16];
	coap_session_t *sessions[TB_PEER_SESSIONS_MAX];
	int inflight[TB_PEER_SESSIONS_MAX]; /* exchanges awaiting an answer, per session */
	bool stale[TB_PEER_SESSIONS_MAX];   /* set up with an identity since rotated */
	bool drop;                          /* release all sessions at the next delivery round */
	int failures;                       /* consecutive failures */
	int64_t open_until_ms;              /* circuit open (no sends) until then */
	struct tb_peer *next;
};

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

#endif
