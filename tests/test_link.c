/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link.c - node/link: the batch grows on answers (doubling, then
 * by one past the last loss), halves on a lost exchange and never
 * leaves 1..batch_max; on a slow link it is cut to what fits in a
 * quarter of the answer timeout; the round-trip estimate follows RFC
 * 6298 and leaves out samples with retransmissions in them (Karn); the
 * ACK timeout is srtt + 4 rttvar within its bounds; MAX_RETRANSMIT rises
 * with the loss, never past RFC 7252's MAX_TRANSMIT_WAIT.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "node/link.h"

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
	/* 2 s a round trip, 256 bytes a message: 7.5 s (a quarter of 30 s)
	 * holds 3.75 round trips, so (3.75 + 1) blocks of 1024 bytes */
	tb_link_answered(&l, 4, 4 * 256, 2000, 128);
	assert_int_equal(tb_link_batch(&l, 128, 30), 19);
	/* a longer answer timeout lets more through */
	assert_true(tb_link_batch(&l, 128, 300) > 100);
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
	for (int i = 0; i < 50; i++)
		tb_link_answered(&l, 1, 100, 400, 128);
	assert_true(l.srtt_ms > 399 && l.srtt_ms < 401);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS + 100);
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
	/* loopback: the lower bound */
	tb_link_init(&l);
	tb_link_answered(&l, 1, 100, 2, 128);
	assert_int_equal(tb_link_ack_timeout_ms(&l), TB_LINK_RTO_MIN_MS);
	assert_int_equal(tb_link_rounds(100), 1);
	assert_int_equal(tb_link_rounds(2048), 1);
	assert_int_equal(tb_link_rounds(5000), 4);
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
	tb_link_answered(&l, 1, 100, 2, 128); /* ACK timeout 300 ms */
	l.loss = 0.01;
	assert_int_equal(tb_link_max_retransmit(&l), 4);
	l.loss = 0.44; /* 25 % each way */
	/* 0.44^9 < 0.001, but 300 ms * (2^8 - 1) * 1.5 > 93 s: 6 */
	assert_int_equal(tb_link_max_retransmit(&l), 6);
	for (int m = 4; m <= 8; m++)
		assert_true(m == 4 || 300.0 * ((1 << (m + 1)) - 1) * 1.5 <= 93000 ||
		            tb_link_max_retransmit(&l) < m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aimd),
	    cmocka_unit_test(test_slow_link_cap),
	    cmocka_unit_test(test_rtt),
	    cmocka_unit_test(test_retransmit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
