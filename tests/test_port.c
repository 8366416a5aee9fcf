/* SPDX-License-Identifier: Apache-2.0 */
/* test_port.c - free ports and free port blocks (util/tb_port). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "util/tb_err.h"
#include "util/tb_port.h"

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A socket bound to a kernel-chosen port, with or without SO_REUSEADDR;
 * its port in *port.  A TCP one listens. */
static int
holder(int type, int reuse, int *port)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, type, 0), one = 1;

	assert_true(s >= 0);
	if (reuse)
		assert_int_equal(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return s;
}

/* A port held by another socket is not free, for its own protocol, even
 * when the holder set SO_REUSEADDR (as libcoap's endpoints do); once the
 * holder is closed it is free again. */
static void
test_free_held(void **state)
{
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	(void)state;
	for (size_t t = 0; t < 2; t++) {
		for (int reuse = 0; reuse < 2; reuse++) {
			int port, err = -1, s = holder(types[t], reuse, &port);
			struct sockaddr_in a = loopback(port);
			assert_false(tb_port_free(types[t], (struct sockaddr *)&a, sizeof(a), &err));
			assert_int_equal(err, EADDRINUSE);
			close(s);
			assert_true(tb_port_free(types[t], (struct sockaddr *)&a, sizeof(a), &err));
			assert_int_equal(err, 0);
		}
	}
}

/* Every port of a block is free for both protocols, outside the ephemeral
 * range; binding them all succeeds (TCP as a listening server binds:
 * with SO_REUSEADDR, which passes over a connection in TIME_WAIT; a
 * plain bind failed on one when other tests had just used the port). */
static void
test_block(void **state)
{
	int base = 0, s[40], n = 0;
	(void)state;
	assert_int_equal(tb_port_block(10, 1000, &base), TB_OK);
	assert_true(base >= 10000 && base + 1009 <= 65535);
	for (int i = 0; i < 10; i++) {
		for (int off = 0; off <= 1000; off += 1000) {
			struct sockaddr_in a = loopback(base + off + i);
			for (int type = SOCK_STREAM; type <= SOCK_DGRAM; type++) {
				int on = 1;
				s[n] = socket(AF_INET, type, 0);
				assert_true(s[n] >= 0);
				if (type == SOCK_STREAM)
					assert_int_equal(setsockopt(s[n], SOL_SOCKET, SO_REUSEADDR, &on,
					                            sizeof(on)),
					                 0);
				assert_int_equal(bind(s[n], (struct sockaddr *)&a, sizeof(a)), 0);
				n++;
			}
		}
	}
	for (int i = 0; i < n; i++)
		close(s[i]);
}

static void
test_block_args(void **state)
{
	int base = -1;
	(void)state;
	assert_int_equal(tb_port_block(0, 1000, &base), TB_E_ARG);
	assert_int_equal(tb_port_block(101, 1000, &base), TB_E_ARG);
	assert_int_equal(tb_port_block(10, 5, &base), TB_E_ARG); /* the halves overlap */
	assert_int_equal(tb_port_block(10, 10001, &base), TB_E_ARG);
	assert_int_equal(base, -1);
}

/* A bound socket's SO_REUSEADDR cleared by tb_port_exclusive: a second
 * socket with SO_REUSEADDR shares the port before, and is refused with
 * EADDRINUSE after.  No socket bound to the address: TB_E_IO.  errno is
 * named in tb_errno_text. */
static void
test_exclusive(void **state)
{
	int port, s = holder(SOCK_DGRAM, 1, &port), t, one = 1;
	struct sockaddr_in a = loopback(port);
	char text[120];

	(void)state;
	t = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(t, (struct sockaddr *)&a, sizeof(a)), 0); /* shared */
	close(t);
	assert_int_equal(tb_port_exclusive((struct sockaddr *)&a, sizeof(a)), TB_OK);
	t = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(t, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRINUSE);
	close(t);
	close(s);
	assert_int_equal(tb_port_exclusive((struct sockaddr *)&a, sizeof(a)), TB_E_IO);
	assert_string_equal(tb_errno_text(EADDRINUSE, text, sizeof(text)),
	                    "Address already in use (EADDRINUSE)");
}

/* The holder of a port in use is this process, by pid and command; a
 * free port has none. */
static void
test_holder(void **state)
{
	int types[] = {SOCK_DGRAM, SOCK_STREAM};
	char who[96], want[32];

	(void)state;
	snprintf(want, sizeof(want), "pid %ld (", (long)getpid());
	for (int i = 0; i < 2; i++) {
		int port, s = holder(types[i], 0, &port);
		struct sockaddr_in a = loopback(port);
		assert_true(tb_port_holder(types[i], (struct sockaddr *)&a, sizeof(a), who,
		                           sizeof(who)));
		assert_int_equal(strncmp(who, want, strlen(want)), 0);
		assert_non_null(strstr(who, "test_port"));
		close(s);
		assert_false(tb_port_holder(types[i], (struct sockaddr *)&a, sizeof(a), who,
		                            sizeof(who)));
		assert_string_equal(who, "");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_free_held),
	    cmocka_unit_test(test_block),
	    cmocka_unit_test(test_block_args),
	    cmocka_unit_test(test_exclusive),
	    cmocka_unit_test(test_holder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
