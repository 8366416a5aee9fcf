/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link.c - node/link: the batch grows on answers (doubling, then
 * by one past the last loss), halves on a lost exchange and never
 * leaves 1..batch_max; on a slow link it is cut to what fits in a
 * quarter of the answer timeout; the round-trip estimate follows RFC
 * 6298 and leaves out samples with retransmissions in them (Karn); the
 * ACK timeout is srtt + 4 rttvar within its bounds, never under the 1 s libcoap 4.3.1 accepts, with
 * ACK_RANDOM_FACTOR made smaller instead, and libcoap's session takes
 * both; MAX_RETRANSMIT rises with the loss, never past RFC 7252's
 * MAX_TRANSMIT_WAIT.  A long link (round trips of exchanges and
 * handshakes all past TB_LINK_PIPE_RTT_MS) is pipelined: exchanges of one
 * block, loss not shrinking them, a window of them a session; a short
 * link with a busy receiver is not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coap3/coap.h>

#include "node/link.h"
#include "node/transport.h"

static void
test_aimd(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	assert_int_equal(tb_link_batch(&l, 128, 30), TB_LINK_BATCH_START);
	assert_int_equal(tb_link_batch(&l, 4, 30), 4);
	/* a fast link: the batch doubles per batch answered, up to the cap */
	tb_link_answered(&l, 8, 8 * 300, 10, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 16);
	for (int i = 0; i < 10; i++)
		tb_link_answered(&l, 16, 16 * 300, 10, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 128);
	/* losses halve it, down to 1 */
	tb_link_lost(&l);
	assert_int_equal(tb_link_batch(&l, 128, 30), 64);
	for (int i = 0; i < 10; i++)
		tb_link_lost(&l);
	assert_int_equal(tb_link_batch(&l, 128, 30), 1);
	assert_int_equal(l.lost, 11);
	/* then it grows by one per answer */
	tb_link_answered(&l, 1, 300, 10, 128);
	tb_link_answered(&l, 2, 600, 10, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 3);
}

static void
test_slow_link_cap(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	l.batch = 128;
	/* 2 s a round trip, 256 bytes a message: 3.75 s (an eighth of 30 s,
	 * TB_LINK_TIMEOUT_SHARE) holds 1.875 round trips, so (1.875 + 1)
	 * blocks of 1024 bytes: 11.5 messages */
	tb_link_answered(&l, 4, 4 * 256, 2000, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 11);
	/* a longer answer timeout lets more through: 37.5 s, 19.75 blocks */
	assert_int_equal(tb_link_batch(&l, 128, 300), 79);
}

/* A long link is pipelined: small exchanges, several a session. */
static void
test_pipelined(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	assert_false(tb_link_pipelined(&l));
	assert_int_equal(tb_link_window(&l, 1), 1);
	/* 100 ms a round trip in a handshake: pipelined before any
	 * exchange's round trip, at half the starting batch */
	tb_link_handshake(&l, 100);
	assert_true(tb_link_pipelined(&l));
	assert_int_equal(tb_link_window(&l, 1), TB_LINK_PIPE_DEPTH);
	/* the sessions up share TB_LINK_PIPE_INFLIGHT, within the bounds */
	assert_int_equal(tb_link_window(&l, 0), TB_LINK_PIPE_DEPTH);
	assert_int_equal(tb_link_window(&l, 8), TB_LINK_PIPE_INFLIGHT / 8);
	assert_int_equal(tb_link_window(&l, 64), TB_LINK_PIPE_MIN);
	assert_true(TB_LINK_PIPE_INFLIGHT / 8 > TB_LINK_PIPE_MIN &&
	            TB_LINK_PIPE_INFLIGHT / 8 < TB_LINK_PIPE_DEPTH);
	assert_int_equal(tb_link_batch(&l, 128, 30), TB_LINK_BATCH_START / 2);
	/* request bytes a message adds: 110 beyond the batch's overhead; one
	 * block at TB_LINK_PIPE_FILL holds (921.6 - 320) / 110 = 5.5: 5 */
	tb_link_sent(&l, 8, TB_LINK_PIPE_OVERHEAD + 8 * 110);
	tb_link_sent(&l, 1, 5000); /* a single envelope: not counted */
	assert_int_equal(tb_link_batch(&l, 128, 30), 5);
	assert_int_equal(tb_link_batch(&l, 3, 30), 3);
	tb_link_answered(&l, 5, 2000, 200, 128);
	assert_true(tb_link_pipelined(&l));
	/* losses do not shrink an exchange of one block */
	for (int i = 0; i < 5; i++)
		tb_link_lost(&l);
	assert_int_equal(tb_link_batch(&l, 128, 30), 5);
	/* more per message: fewer in an exchange */
	for (int i = 0; i < 20; i++)
		tb_link_sent(&l, 4, TB_LINK_PIPE_OVERHEAD + 4 * 200);
	assert_int_equal(tb_link_batch(&l, 128, 30), 3); /* 601.6 / 200 */
}

/* A short link whose receiver is busy is not pipelined: its exchanges
 * take long, but one of them, or a handshake, was quick. */
static void
test_busy_short_link(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	tb_link_handshake(&l, 50); /* a handshake queued behind others */
	for (int i = 0; i < 4; i++)
		tb_link_answered(&l, 4, 4 * 100, 300, 128);
	assert_true(tb_link_pipelined(&l));
	tb_link_answered(&l, 4, 4 * 100, 2, 128);
	assert_true(l.srtt_ms >= TB_LINK_PIPE_RTT_MS);
	assert_false(tb_link_pipelined(&l)); /* the 2 ms exchange */
	tb_link_init(&l);
	for (int i = 0; i < 4; i++)
		tb_link_answered(&l, 4, 4 * 100, 300, 128);
	assert_false(tb_link_pipelined(&l)); /* no handshake timed */
	tb_link_handshake(&l, 60);
	assert_true(tb_link_pipelined(&l));
	tb_link_handshake(&l, 3); /* a quick handshake later */
	assert_false(tb_link_pipelined(&l));
	assert_int_equal(tb_link_window(&l, 1), 1);
	/* the path gets longer: the least round trips follow, slowly */
	for (int i = 0; i < 4; i++)
		tb_link_handshake(&l, 100);
	assert_true(l.hs_rtt_ms > 69 && l.hs_rtt_ms < 70); /* 3 + 97 (1 - 0.75^4) */
	assert_true(tb_link_pipelined(&l));
}

/* An exchange that waited for a handshake says nothing of the link: the
 * batch does not grow on it before a round trip was measured. */
static void
test_handshake_answers(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	tb_link_answered(&l, 8, 8 * 300, -1, 128);
	tb_link_answered(&l, 8, 8 * 300, -1, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), TB_LINK_BATCH_START);
	tb_link_answered(&l, 8, 8 * 300, 10, 128);
	tb_link_answered(&l, 16, 16 * 300, -1, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 32);
}

static void
test_rtt(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	assert_int_equal(tb_link_ack_timeout_ms(&l), 0);
	tb_link_answered(&l, 1, 100, 400, 128); /* one round trip of 400 ms */
	assert_true(l.srtt_ms > 399 && l.srtt_ms < 401);
	assert_true(l.rttvar_ms > 199 && l.rttvar_ms < 201);
	assert_int_equal(tb_link_ack_timeout_ms(&l), 1200);
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
	for (int i = 0; i < 50; i++)
		tb_link_answered(&l, 1, 100, 400, 128);
	assert_true(l.srtt_ms > 399 && l.srtt_ms < 401);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1000);
	/* an estimate over 1 s: RFC 7252's factor */
	l.srtt_ms = 900;
	l.rttvar_ms = 100;
	assert_int_equal(tb_link_ack_timeout_ms(&l), 1300);
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
	l.srtt_ms = 400;
	l.rttvar_ms = 0;
	/* a sample with a retransmission in it is left out (Karn), and
	 * counted as loss */
	tb_link_answered(&l, 1, 100, 3000, 128);
	assert_true(l.srtt_ms > 399 && l.srtt_ms < 401);
	assert_true(l.loss > 0.05);
	/* a path that got slower for good is followed, gradually (each
	 * sample taken at most twice the estimate) */
	for (int i = 0; i < 400; i++)
		tb_link_answered(&l, 1, 100, 3000, 128);
	assert_true(l.srtt_ms > 1000);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MAX_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
	/* loopback: the lower bound */
	tb_link_init(&l);
	assert_int_equal(tb_link_ack_random_factor(&l), 0);
	tb_link_answered(&l, 1, 100, 2, 128);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1000);
	assert_int_equal(tb_link_rounds(100), 1);
	assert_int_equal(tb_link_rounds(2048), 1);
	assert_int_equal(tb_link_rounds(5000), 4);
}

/* Before any exchange is answered the handshakes' round trips stand for
 * the estimate: GnuTLS's first handshake retransmission and the first
 * exchanges' ACK_TIMEOUT (libcoap's 1 s and 2-3 s otherwise). */
static void
test_handshake_estimate(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	/* nothing known yet */
	assert_int_equal(tb_link_hs_retransmit_ms(&l), TB_LINK_HS_RTX_START_MS);
	assert_int_equal(tb_link_ack_timeout_ms(&l), 0);
	assert_int_equal(tb_link_ack_random_factor(&l), 0);
	/* handshakes of 230 ms round trips: the next flight's timer 460 ms;
	 * an exchange's first retransmission three round trips (690 ms)
	 * after its transmission: ACK_TIMEOUT 1 s (the least libcoap
	 * takes), randomised up to 1.035 (1.5 * 690 / 1000) */
	tb_link_handshake(&l, 230);
	assert_int_equal(tb_link_hs_retransmit_ms(&l), 460);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1035);
	/* a long path: both bounded */
	tb_link_init(&l);
	tb_link_handshake(&l, 900);
	assert_int_equal(tb_link_hs_retransmit_ms(&l), TB_LINK_HS_RTX_MAX_MS);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MAX_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
	/* loopback: the least timer */
	tb_link_init(&l);
	tb_link_handshake(&l, 1);
	assert_int_equal(tb_link_hs_retransmit_ms(&l), TB_LINK_HS_RTX_MIN_MS);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS);
	assert_int_equal(tb_link_ack_random_factor(&l), 1000);
	/* an exchange answered: its round trip takes over (400 ms, var 200:
	 * 1.2 s) */
	tb_link_init(&l);
	tb_link_handshake(&l, 100);
	tb_link_answered(&l, 1, 100, 400, 128);
	assert_int_equal(tb_link_ack_timeout_ms(&l), 1200);
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
}

static void
test_retransmit(void **state)
{
	struct tb_link l;

	(void)state;
	tb_link_init(&l);
	l.loss = 0.5;
	/* no estimate: libcoap's 2 s ACK timeout, so RFC 7252's 4 */
	assert_int_equal(tb_link_max_retransmit(&l), 4);
	tb_link_answered(&l, 1, 100, 2, 128); /* ACK timeout 1 s, factor 1 */
	l.loss = 0.01;
	assert_int_equal(tb_link_max_retransmit(&l), 4);
	l.loss = 0.44; /* 25 % each way */
	/* 0.44^9 < 0.001, but 1 s * (2^7 - 1) > 93 s: 5 */
	assert_int_equal(tb_link_max_retransmit(&l), 5);
	for (int m = 4; m <= 8; m++)
		assert_true(m == 4 || 1000.0 * ((1 << (m + 1)) - 1) <= 93000 ||
		            tb_link_max_retransmit(&l) < m);
	/* at RFC 7252's factor the bound is 1.5 times as long: 4 */
	l.srtt_ms = 1000;
	l.rttvar_ms = 100;
	assert_int_equal(tb_link_ack_random_factor(&l), 1500);
	assert_int_equal(tb_link_max_retransmit(&l), 4);
}

/* libcoap's session takes what tb_transport_tune sets (4.3.1 ignored a
 * sub-second ACK_TIMEOUT silently: the sessions kept 2 s). */
static void
test_tune_session(void **state)
{
	struct tb_link l;
	coap_address_t dst;
	coap_context_t *ctx;
	coap_session_t *s;
	coap_fixed_point_t v;

	(void)state;
	coap_startup();
	ctx = coap_new_context(NULL);
	assert_non_null(ctx);
	coap_address_init(&dst);
	dst.addr.sin.sin_family = AF_INET;
	dst.addr.sin.sin_port = htons(9); /* nothing is sent */
	dst.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.size = sizeof(dst.addr.sin);
	s = coap_new_client_session(ctx, NULL, &dst, COAP_PROTO_UDP);
	assert_non_null(s);
	tb_link_init(&l);
	for (int i = 0; i < 50; i++) /* 400 ms: srtt + 4 rttvar under 1 s */
		tb_link_answered(&l, 1, 100, 400, 128);
	tb_transport_tune(s, &l);
	v = coap_session_get_ack_timeout(s);
	assert_int_equal(v.integer_part * 1000 + v.fractional_part, TB_LINK_RTO_MIN_MS);
	v = coap_session_get_ack_random_factor(s);
	assert_int_equal(v.integer_part * 1000 + v.fractional_part, 1000);
	/* a slow path: 2 s, RFC 7252's factor */
	for (int i = 0; i < 400; i++)
		tb_link_answered(&l, 1, 100, 3000, 128);
	tb_transport_tune(s, &l);
	v = coap_session_get_ack_timeout(s);
	assert_int_equal(v.integer_part * 1000 + v.fractional_part, TB_LINK_RTO_MAX_MS);
	v = coap_session_get_ack_random_factor(s);
	assert_int_equal(v.integer_part * 1000 + v.fractional_part, 1500);
	coap_session_release(s);
	coap_free_context(ctx);
	coap_cleanup();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aimd),
	    cmocka_unit_test(test_slow_link_cap),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_busy_short_link),
	    cmocka_unit_test(test_handshake_answers),
	    cmocka_unit_test(test_rtt),
	    cmocka_unit_test(test_handshake_estimate),
	    cmocka_unit_test(test_retransmit),
	    cmocka_unit_test(test_tune_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
