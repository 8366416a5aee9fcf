/* SPDX-License-Identifier: Apache-2.0 */
/* test_thread.c - scheduling hints (util/tb_thread). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/tb_thread.h"

static int
own_nice(void)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

struct result {
	int before, rc, after;
};

static void *
lower(void *arg)
{
	struct result *r = arg;

	r->before = own_nice();
	r->rc = tb_thread_lower_priority(3);
	r->after = own_nice();
	return NULL;
}

/* The calling thread's nice value rises by delta; the others' do not. */
static void
test_lower_priority(void **state)
{
	struct result r;
	pthread_t t;
	int main_before = own_nice();

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, lower, &r), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.before, main_before);
	if (main_before + 3 > 19) {
		skip(); /* already at the bottom: nothing to lower */
	}
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.after, r.before + 3);
	assert_int_equal(own_nice(), main_before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lower_priority),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
