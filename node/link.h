/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.h - the estimate of a link to one peer (docs/PROTOCOL.md 9.6,
 * "Adapting to the link"): round-trip time smoothed as in RFC 6298, the
 * share of round trips lost, the bytes a message costs, and from them
 * the batch size (AIMD: halved on a lost exchange, one more per
 * answered one, capped so that an exchange fits well inside the answer
 * timeout) and libcoap's retransmission parameters for the peer's
 * sessions.  Pure arithmetic on struct tb_link, which the caller owns
 * (outbound.c keeps one per peer in struct tb_peer); any thread.
 */
#ifndef TB_LINK_H
#define TB_LINK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of one CoAP block (SZX 6), what one round trip carries. */
#define TB_LINK_BLOCK 1024
/* An exchange is sized to last at most this share of answer_timeout. */
#define TB_LINK_TIMEOUT_SHARE 8
/* The batch size of a peer not heard from yet. */
#define TB_LINK_BATCH_START 8
/* Pipelining on a long link.  Block-wise transfers are stop-and-wait
 * (one block a round trip per session), so past TB_LINK_PIPE_RTT_MS of
 * round trip a peer's exchanges are cut to what fits in one block
 * (TB_LINK_PIPE_FILL of it, at the request bytes a message has cost) and
 * several of them are outstanding on each session (tb_link_window,
 * libcoap's NSTART): a lost datagram then delays one small exchange by a
 * retransmission, not a batch's whole train of blocks (PROTOCOL.md 9.6,
 * "Several exchanges on one session"). */
#define TB_LINK_PIPE_RTT_MS 20
/* The window of each session: TB_LINK_PIPE_INFLIGHT exchanges shared by
 * the peer's sessions that are up, at least TB_LINK_PIPE_MIN and at most
 * TB_LINK_PIPE_DEPTH a session (libcoap's NSTART): while loss or
 * reordering stalls most handshakes, the few sessions up carry more */
#define TB_LINK_PIPE_DEPTH 128
#define TB_LINK_PIPE_MIN 16
#define TB_LINK_PIPE_INFLIGHT 512
/* Sessions up that carry a pipelined link: no more are opened then */
#define TB_LINK_PIPE_UP 8
#define TB_LINK_PIPE_FILL 0.9
/* A batch's request bytes besides its messages (deflated: the array, the
 * batch signature its envelopes share), as measured on control.ping
 * batches of 8 to 24 */
#define TB_LINK_PIPE_OVERHEAD 320
/* ACK_TIMEOUT bounds for a peer with a round-trip estimate (ms); without
 * one libcoap's default (RFC 7252: 2 s) stays.  libcoap 4.3.1 silently
 * ignores an ACK_TIMEOUT under 1 s (coap_session_set_ack_timeout wants an
 * integer part > 0): a shorter estimate is met with ACK_RANDOM_FACTOR
 * instead (tb_link_ack_random_factor). */
#define TB_LINK_RTO_MIN_MS 1000
#define TB_LINK_RTO_MAX_MS 2000
/* RFC 7252's MAX_TRANSMIT_WAIT with its defaults, ms: no tuning makes a
 * request's retransmissions last longer. */
#define TB_LINK_TRANSMIT_WAIT_MS 93000

struct tb_link {
	double srtt_ms, rttvar_ms; /* one round trip (RFC 6298); srtt 0: no sample yet */
	double round_ms;           /* a round trip as exchanges see it, retransmissions
	                            * included (moving average) */
	double loss;               /* share of round trips lost, 0..1 (moving average) */
	double bytes_per_msg;      /* request and answer bytes per message (average) */
	double hs_rtt_ms;          /* the least round trip seen in handshakes, drifting
	                            * up a quarter of the way per longer one (0: none) */
	double min_rtt_ms;         /* the least round trip an exchange showed, drifting
	                            * up 1/32 of the way per longer one (0: none) */
	double req_per_msg;        /* request bytes one more message adds to a batch,
	                            * as sent (average) */
	double batch;              /* the batch size, 1..batch_max */
	double ssthresh;           /* past it the batch grows by one per answer */
	int rejected;              /* round-trip samples in a row left out (Karn) */
	double min_rejected_ms;    /* the shortest of them */
	uint64_t samples;          /* exchanges measured */
	uint64_t lost;             /* exchanges lost (no answer in time) */
};

/* A link not measured yet. */
void tb_link_init(struct tb_link *l);
/* An exchange of count messages was answered after dur_ms, having moved
 * bytes (request body and answer body, as sent): updates the estimate and
 * grows the batch (batch_max: the configured cap).  dur_ms < 0: its time
 * says nothing of the link (it waited for a handshake); only the batch
 * grows. */
void tb_link_answered(struct tb_link *l, size_t count, size_t bytes, int64_t dur_ms, int batch_max);
/* An exchange of count messages goes out with a request body of bytes
 * (as sent): the request bytes one more message costs (beyond
 * TB_LINK_PIPE_OVERHEAD; single envelopes are not counted). */
void tb_link_sent(struct tb_link *l, size_t count, size_t bytes);
/* A handshake with the peer took rtt_ms a round trip (half the time from
 * the first ClientHello to the server's certificate). */
void tb_link_handshake(struct tb_link *l, int64_t rtt_ms);
/* The first retransmission timeout of a DTLS handshake with the peer,
 * ms: TB_LINK_HS_RTX_ROUNDS of the round trips handshakes showed, within
 * TB_LINK_HS_RTX_MIN_MS..TB_LINK_HS_RTX_MAX_MS; TB_LINK_HS_RTX_START_MS
 * before any (libcoap sets GnuTLS's to 1 s, and acts on it up to 1 s
 * late).  GnuTLS doubles it per retransmission, and gives up after
 * TB_LINK_HS_TOTAL_MS (libcoap's). */
#define TB_LINK_HS_RTX_ROUNDS 2
#define TB_LINK_HS_RTX_MIN_MS 200
#define TB_LINK_HS_RTX_MAX_MS 1000
#define TB_LINK_HS_RTX_START_MS 250
#define TB_LINK_HS_TOTAL_MS 60000
int64_t tb_link_hs_retransmit_ms(const struct tb_link *l);
/* Whether the peer's exchanges are pipelined (above): its round trips
 * are TB_LINK_PIPE_RTT_MS or longer: the exchanges' (srtt), the least of
 * them, and the least seen in handshakes.  An exchange's time includes the receiver's
 * work on it, which a busy receiver makes long on a short link too: there
 * small exchanges would only cost it more commits; a handshake's is a
 * signature or two. */
int tb_link_pipelined(const struct tb_link *l);
/* Exchanges that may be outstanding on one session to the peer at once
 * while up sessions are up: TB_LINK_PIPE_INFLIGHT / up within
 * TB_LINK_PIPE_MIN..TB_LINK_PIPE_DEPTH when pipelined, else 1. */
int tb_link_window(const struct tb_link *l, int up);
/* An exchange got no answer in time (or libcoap gave up on it): the
 * batch is halved, the loss estimate rises. */
void tb_link_lost(struct tb_link *l);
/* The round trips an exchange of bytes (request and answer) takes. */
int tb_link_rounds(size_t bytes);
/* How many messages the next exchange carries: the batch, at most
 * batch_max, at most what fits in 1/TB_LINK_TIMEOUT_SHARE of
 * answer_timeout_s at the round trips seen, and when pipelined at most
 * what fits in one block (at least 1). */
size_t tb_link_batch(const struct tb_link *l, int batch_max, int64_t answer_timeout_s);
/* The ACK_TIMEOUT for the peer's sessions, ms: srtt + 4 rttvar within
 * TB_LINK_RTO_MIN_MS..TB_LINK_RTO_MAX_MS; before any exchange was
 * answered TB_LINK_HS_RTO_ROUNDS handshake round trips (hs_rtt_ms) stand
 * for it; 0 without either (keep libcoap's default). */
#define TB_LINK_HS_RTO_ROUNDS 3
int64_t tb_link_ack_timeout_ms(const struct tb_link *l);
/* ACK_RANDOM_FACTOR for the peer's sessions, in thousandths: 1500 (RFC
 * 7252), less when the estimate is under TB_LINK_RTO_MIN_MS, so that a
 * first retransmission comes at most 1.5 times the estimate after the
 * transmission, or at TB_LINK_RTO_MIN_MS (1000: no randomising, the
 * least RFC 7252 allows); 0 without an estimate (keep libcoap's). */
int tb_link_ack_random_factor(const struct tb_link *l);
/* MAX_RETRANSMIT for the peer's sessions: 4 (RFC 7252) up to 8, the
 * fewest that make losing all of a block's transmissions rarer than one
 * in a thousand at the estimated loss, as long as the retransmissions
 * end within TB_LINK_TRANSMIT_WAIT_MS at the ACK timeout in use. */
int tb_link_max_retransmit(const struct tb_link *l);

#endif
