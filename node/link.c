/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.c - the estimate of a link to one peer (link.h).
 */
#include "link.h"

#include <math.h>

#define GAIN 0.125    /* RFC 6298's alpha, and the loss average's */
#define BETA 0.25     /* RFC 6298's beta */
#define KARN_MAX 16   /* samples in a row past the RTO, then the least taken */
/* The least round trips follow longer ones slowly (a path that got
 * longer), by this share of the difference a sample */
#define TB_LINK_MIN_DRIFT 32
#define TB_LINK_HS_DRIFT 4
#define LOSS_TARGET 0.001

void
tb_link_init(struct tb_link *l)
{
	*l = (struct tb_link){.batch = TB_LINK_BATCH_START, .ssthresh = 1e9};
}

int
tb_link_rounds(size_t bytes)
{
	/* the request's blocks, then the answer's (its first block comes
	 * with the last request block's acknowledgement): at least one */
	size_t blocks = (bytes + TB_LINK_BLOCK - 1) / TB_LINK_BLOCK;

	return blocks > 1 ? (int)blocks - 1 : 1;
}

/* The round-trip estimate from one exchange's time per round trip.
 * Karn: a sample past the RTO had retransmissions in it and is left
 * out, unless KARN_MAX in a row were (the path itself got slower). */
static void
rtt_sample(struct tb_link *l, double r)
{
	if (l->srtt_ms == 0) {
		l->srtt_ms = r;
		l->rttvar_ms = r / 2;
		return;
	}
	if (r > l->srtt_ms + 4 * l->rttvar_ms) {
		/* the fastest of those left out stands for them */
		if (l->rejected == 0 || r < l->min_rejected_ms)
			l->min_rejected_ms = r;
		if (++l->rejected <= KARN_MAX)
			return;
		/* at most twice the estimate: an exchange that outlived a
		 * partition says little of the path's round trip */
		r = l->min_rejected_ms < 2 * l->srtt_ms ? l->min_rejected_ms : 2 * l->srtt_ms;
	}
	l->rejected = 0;
	l->rttvar_ms = (1 - BETA) * l->rttvar_ms + BETA * fabs(l->srtt_ms - r);
	l->srtt_ms = (1 - GAIN) * l->srtt_ms + GAIN * r;
}

void
tb_link_answered(struct tb_link *l, size_t count, size_t bytes, int64_t dur_ms, int batch_max)
{
	int rounds = tb_link_rounds(bytes);
	double r = (double)(dur_ms > 0 ? dur_ms : 1) / rounds, lost = 0;

	if (count == 0)
		return;
	/* an exchange that waited for a handshake says nothing of the
	 * link; until one has, the batch stays as it started (a long link
	 * is pipelined in small exchanges, link.h, and that is only known
	 * from a round trip) */
	if (dur_ms < 0 && l->samples == 0)
		return;
	if (dur_ms < 0)
		goto grow;
	/* retransmissions: the time past the estimate, in (mean) ACK
	 * timeouts of the sessions; their share of the round trips */
	if (l->srtt_ms > 0) {
		double ack = tb_link_ack_timeout_ms(l) * 1.25;
		double excess = (double)dur_ms - rounds * l->srtt_ms;
		double re = excess > ack / 2 ? excess / ack : 0;
		lost = re / (rounds + re);
	}
	rtt_sample(l, r);
	l->min_rtt_ms = l->min_rtt_ms <= 0 || r < l->min_rtt_ms
	                    ? r
	                    : l->min_rtt_ms + (r - l->min_rtt_ms) / TB_LINK_MIN_DRIFT;
	l->loss = (1 - GAIN) * l->loss + GAIN * lost;
	l->round_ms = l->samples == 0 ? r : 0.75 * l->round_ms + 0.25 * r;
	l->bytes_per_msg = l->samples == 0 ? (double)bytes / count
	                                   : 0.75 * l->bytes_per_msg + 0.25 * (double)bytes / count;
	l->samples++;
grow:
	/* AIMD: doubling (per batch answered) up to ssthresh, then one more */
	l->batch += l->batch < l->ssthresh ? (double)count : 1;
	if (l->batch > batch_max)
		l->batch = batch_max;
}

void
tb_link_sent(struct tb_link *l, size_t count, size_t bytes)
{
	double per;

	/* a single envelope goes in the single form, not in a batch: no
	 * measure of what one more message costs in a batch */
	if (count < 2)
		return;
	per = ((double)bytes - TB_LINK_PIPE_OVERHEAD) / (double)count;
	if (per < 16)
		per = 16;
	l->req_per_msg = l->req_per_msg <= 0 ? per : 0.75 * l->req_per_msg + 0.25 * per;
}

void
tb_link_handshake(struct tb_link *l, int64_t rtt_ms)
{
	double r = rtt_ms > 0 ? (double)rtt_ms : 0.5;

	l->hs_rtt_ms = l->hs_rtt_ms <= 0 || r < l->hs_rtt_ms
	                   ? r
	                   : l->hs_rtt_ms + (r - l->hs_rtt_ms) / TB_LINK_HS_DRIFT;
}

int64_t
tb_link_hs_retransmit_ms(const struct tb_link *l)
{
	double ms = TB_LINK_HS_RTX_ROUNDS * l->hs_rtt_ms;

	if (l->hs_rtt_ms <= 0)
		return TB_LINK_HS_RTX_START_MS;
	return ms < TB_LINK_HS_RTX_MIN_MS   ? TB_LINK_HS_RTX_MIN_MS
	       : ms > TB_LINK_HS_RTX_MAX_MS ? TB_LINK_HS_RTX_MAX_MS
	                                    : (int64_t)ms;
}

int
tb_link_pipelined(const struct tb_link *l)
{
	/* before the first exchange's round trip, the handshakes' alone */
	return (l->srtt_ms == 0 || l->srtt_ms >= TB_LINK_PIPE_RTT_MS) &&
	       (l->min_rtt_ms == 0 || l->min_rtt_ms >= TB_LINK_PIPE_RTT_MS) &&
	       l->hs_rtt_ms >= TB_LINK_PIPE_RTT_MS;
}

int
tb_link_window(const struct tb_link *l, int up)
{
	int w = TB_LINK_PIPE_INFLIGHT / (up > 1 ? up : 1);

	if (!tb_link_pipelined(l))
		return 1;
	return w < TB_LINK_PIPE_MIN ? TB_LINK_PIPE_MIN : w > TB_LINK_PIPE_DEPTH ? TB_LINK_PIPE_DEPTH : w;
}

void
tb_link_lost(struct tb_link *l)
{
	l->lost++;
	l->loss = (1 - GAIN) * l->loss + GAIN;
	l->batch /= 2;
	if (l->batch < 1)
		l->batch = 1;
	l->ssthresh = l->batch;
}

size_t
tb_link_batch(const struct tb_link *l, int batch_max, int64_t answer_timeout_s)
{
	double b = l->batch < batch_max ? l->batch : batch_max;

	if (l->round_ms > 0 && l->bytes_per_msg > 0) {
		/* an exchange should take at most an eighth of the answer
		 * timeout at the round trips seen (its blocks go one a round
		 * trip, and the last of a backlog's exchanges decides when
		 * it is through): its rounds, in messages */
		double rounds = answer_timeout_s * 1000.0 / TB_LINK_TIMEOUT_SHARE / l->round_ms;
		double fit = (rounds + 1) * TB_LINK_BLOCK / l->bytes_per_msg;
		if (fit < b)
			b = fit;
	}
	if (tb_link_pipelined(l)) {
		/* one block: a lost datagram costs that exchange alone, so
		 * loss is no reason to make it smaller (the batch's AIMD does
		 * not apply); before any was sent, half the starting batch */
		double fit = l->req_per_msg > 0 ? (TB_LINK_BLOCK * TB_LINK_PIPE_FILL -
		                                   TB_LINK_PIPE_OVERHEAD) / l->req_per_msg
		                                : TB_LINK_BATCH_START / 2;
		b = fit < batch_max ? fit : batch_max;
	}
	return b < 1 ? 1 : (size_t)b;
}

/* The retransmission timeout the estimate asks for, ms (unbounded); 0
 * without one.  Before any exchange was answered, TB_LINK_HS_RTO_ROUNDS
 * of the handshakes' round trip stand for it: the first exchanges on a
 * session that just came up would otherwise keep libcoap's 2 to 3 s. */
static double
rto_ms(const struct tb_link *l)
{
	if (l->srtt_ms == 0)
		return TB_LINK_HS_RTO_ROUNDS * l->hs_rtt_ms;
	return l->srtt_ms + 4 * l->rttvar_ms;
}

int
tb_link_ack_random_factor(const struct tb_link *l)
{
	double f;

	if (rto_ms(l) <= 0)
		return 0;
	f = 1500 * rto_ms(l) / (double)tb_link_ack_timeout_ms(l);
	return f < 1000 ? 1000 : f > 1500 ? 1500 : (int)f;
}

int64_t
tb_link_ack_timeout_ms(const struct tb_link *l)
{
	double rto = rto_ms(l);

	if (rto <= 0)
		return 0;
	return rto < TB_LINK_RTO_MIN_MS ? TB_LINK_RTO_MIN_MS
	       : rto > TB_LINK_RTO_MAX_MS ? TB_LINK_RTO_MAX_MS
	                                  : (int64_t)rto;
}

int
tb_link_max_retransmit(const struct tb_link *l)
{
	int m = 4;
	/* the longest first timeout: ACK_TIMEOUT times ACK_RANDOM_FACTOR */
	double ack = (double)tb_link_ack_timeout_ms(l) * tb_link_ack_random_factor(l) / 1000;

	while (m < 8 && pow(l->loss, m + 1) > LOSS_TARGET)
		m++;
	/* within RFC 7252's MAX_TRANSMIT_WAIT (93 s), which the release of
	 * retired sessions relies on (transport.c) */
	while (m > 4 && (ack == 0 || ack * ((1 << (m + 1)) - 1) > TB_LINK_TRANSMIT_WAIT_MS))
		m--;
	return m;
}
