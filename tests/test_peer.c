/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_peer.c - node/transport's per-peer pacing that needs no network:
 * tb_peer_hold_until, the later of a peer's backoff and a 5.xx answer's
 * Max-Age (PROTOCOL.md 9.6), with its jitter and cap; tb_backoff_ms's
 * bounds beside it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "node/config.h"
#include "node/transport.h"

/* No Max-Age (-1): the backoff's time stands, whatever it is. */
static void
test_hold_none(void **state)
{
	struct tb_peer p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.open_until_ms = 12345;
	assert_int_equal(tb_peer_hold_until(&p, 1000, -1, 7), 12345);
	p.open_until_ms = 0;
	assert_int_equal(tb_peer_hold_until(&p, 1000, -1, 7), 0);
}

/* Max-Age later than the backoff: now + Max-Age plus jitter of at most a
 * quarter of it, never less; every jitter value stays in the bounds. */
static void
test_hold_max_age_wins(void **state)
{
	struct tb_peer p;
	static const uint32_t rnds[] = {0, 1, 2499, 2500, 2501, 7000, 0xffffffffu};

	(void)state;
	memset(&p, 0, sizeof(p));
	p.open_until_ms = 1000 + 200; /* a 200 ms backoff */
	for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
		int64_t at = tb_peer_hold_until(&p, 1000, 10, rnds[i]);
		if (at < 1000 + 10000 || at > 1000 + 12500)
			fail_msg("rnd %u: %lld outside [11000, 13500]", rnds[i], (long long)at);
	}
	assert_int_equal(tb_peer_hold_until(&p, 1000, 10, 0), 11000);
	assert_int_equal(tb_peer_hold_until(&p, 1000, 10, 2500), 13500);
	/* Max-Age 0: no later than the backoff */
	assert_int_equal(tb_peer_hold_until(&p, 1000, 0, 99), 1200);
}

/* The backoff later than Max-Age (a breaker open for a minute): it stands. */
static void
test_hold_backoff_wins(void **state)
{
	struct tb_peer p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.open_until_ms = 5000 + 60000;
	assert_int_equal(tb_peer_hold_until(&p, 5000, 2, 0xffffffffu), 65000);
	assert_int_equal(tb_peer_hold_until(&p, 5000, 30, 0), 65000);
}

/* A Max-Age beyond the cap is cut to TB_MAX_AGE_CAP (an hour). */
static void
test_hold_cap(void **state)
{
	struct tb_peer p;
	int64_t cap = (int64_t)TB_MAX_AGE_CAP * 1000;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(tb_peer_hold_until(&p, 0, 4294967295LL, 0), cap);
	assert_int_equal(tb_peer_hold_until(&p, 0, TB_MAX_AGE_CAP + 1, 0), cap);
	assert_true(tb_peer_hold_until(&p, 0, 1000000, 0xffffffffu) <= cap + cap / 4);
}

/* The backoff: retry_min * 2^(k-1), at most retry_max, +-25 %. */
static void
test_backoff_bounds(void **state)
{
	struct tb_config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.retry_min_ms = 200;
	c.retry_max_ms = 60000;
	for (int k = 1; k <= 20; k++) {
		int64_t base = 200;
		for (int i = 1; i < k && base < 60000; i++)
			base *= 2;
		if (base > 60000)
			base = 60000;
		for (int rep = 0; rep < 20; rep++) {
			int64_t ms = tb_backoff_ms(&c, k);
			if (ms < base * 3 / 4 || ms > base * 5 / 4)
				fail_msg("k %d: %lld outside %lld +-25 %%", k, (long long)ms,
				         (long long)base);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hold_none),        cmocka_unit_test(test_hold_max_age_wins),
	    cmocka_unit_test(test_hold_backoff_wins), cmocka_unit_test(test_hold_cap),
	    cmocka_unit_test(test_backoff_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
