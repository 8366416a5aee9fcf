/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_worker.c - node/worker: jobs run on the thread in the order
 * pushed and come back on the loop; jobs carrying their own functions and
 * context share the thread and its queue with the worker's own; stopping
 * runs what is queued and releases what the loop has not taken back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "node/worker.h"
#include "util/tb_err.h"

#define MAXJ 16

struct job {
	struct tb_work work; /* first */
	int id;
};

/* What happened, in order; written by both threads under mu. */
struct trace {
	pthread_mutex_t mu;
	pthread_t loop;
	struct event_base *base;
	char ran[MAXJ][8], done[MAXJ][8], left[MAXJ][8];
	int nran, ndone, nleft, expect;
	bool ran_off_loop, done_on_loop;
};

/* Each kind of job says which functions handled it: "A3" is job 3 run by
 * the worker's own functions (context a), "B3" by the job's (context b). */
struct kind {
	struct trace *t;
	char tag;
};

static void
note(struct kind *k, struct tb_work *w, char (*v)[8], int *n)
{
	struct job *j = (struct job *)w;

	pthread_mutex_lock(&k->t->mu);
	if (*n < MAXJ)
		snprintf(v[(*n)++], 8, "%c%d", k->tag, j->id);
	pthread_mutex_unlock(&k->t->mu);
}

static void
run_fn(void *ctx, struct tb_work *w)
{
	struct kind *k = ctx;

	note(k, w, k->t->ran, &k->t->nran);
	if (pthread_equal(pthread_self(), k->t->loop))
		k->t->ran_off_loop = false;
}

static void
done_fn(void *ctx, struct tb_work *w)
{
	struct kind *k = ctx;

	note(k, w, k->t->done, &k->t->ndone);
	if (!pthread_equal(pthread_self(), k->t->loop))
		k->t->done_on_loop = false;
	if (k->t->ndone == k->t->expect)
		event_base_loopbreak(k->t->base);
}

static void
left_fn(void *ctx, struct tb_work *w)
{
	struct kind *k = ctx;

	note(k, w, k->t->left, &k->t->nleft);
}

static void
trace_init(struct trace *t, struct event_base *base)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->loop = pthread_self();
	t->base = base;
	t->ran_off_loop = t->done_on_loop = true;
}

/* Jobs i of ids[] are of kind B (their own functions) when b[i]. */
static void
make_jobs(struct job *jobs, int n, const bool *b, struct kind *kb)
{
	memset(jobs, 0, (size_t)n * sizeof(*jobs));
	for (int i = 0; i < n; i++) {
		jobs[i].id = i + 1;
		if (b[i]) {
			jobs[i].work.run = run_fn;
			jobs[i].work.done = done_fn;
			jobs[i].work.leftover = left_fn;
			jobs[i].work.ctx = kb;
		}
	}
}

/* A loop, its trace, the two kinds of job and a worker whose own
 * functions are kind A's.  It stays where it is (the kinds point into
 * it). */
struct fixture {
	struct event_base *base;
	struct trace t;
	struct kind ka, kb;
	struct tb_worker *w;
};

static void
fixture_start(struct fixture *f)
{
	struct tb_diag d;

	f->base = event_base_new();
	assert_non_null(f->base);
	trace_init(&f->t, f->base);
	f->ka = (struct kind){&f->t, 'A'};
	f->kb = (struct kind){&f->t, 'B'};
	f->w = tb_worker_start(f->base, 0, run_fn, done_fn, &f->ka, "test", &d);
	assert_non_null(f->w);
}

/* After tb_worker_stop. */
static void
fixture_end(struct fixture *f)
{
	pthread_mutex_destroy(&f->t.mu);
	event_base_free(f->base);
}

static void
test_order_and_kinds(void **state)
{
	struct fixture f;
	struct job jobs[6];
	static const bool b[6] = {false, true, true, false, true, false};
	static const char *const want[6] = {"A1", "B2", "B3", "A4", "B5", "A6"};
	struct timeval guard = {10, 0};

	(void)state;
	fixture_start(&f);
	make_jobs(jobs, 6, b, &f.kb);
	f.t.expect = 6;
	for (int i = 0; i < 6; i++)
		tb_worker_push(f.w, &jobs[i].work);
	/* the guard ends a hung test instead of hanging it */
	event_base_loopexit(f.base, &guard);
	event_base_dispatch(f.base);
	assert_int_equal(f.t.nran, 6);
	assert_int_equal(f.t.ndone, 6);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(f.t.ran[i], want[i]);
		assert_string_equal(f.t.done[i], want[i]);
	}
	assert_true(f.t.ran_off_loop);
	assert_true(f.t.done_on_loop);
	tb_worker_stop(f.w, left_fn);
	assert_int_equal(f.t.nleft, 0);
	fixture_end(&f);
}

static void
test_stop_leftovers(void **state)
{
	struct fixture f;
	struct job jobs[4];
	static const bool b[4] = {true, false, true, false};
	int ran = 0;

	(void)state;
	fixture_start(&f);
	make_jobs(jobs, 4, b, &f.kb);
	for (int i = 0; i < 4; i++)
		tb_worker_push(f.w, &jobs[i].work);
	/* the loop never runs: the jobs run, and come back only as leftovers,
	 * each to its own kind's function */
	for (int k = 0; k < 1000 && ran < 4; k++) {
		usleep(5000);
		pthread_mutex_lock(&f.t.mu);
		ran = f.t.nran;
		pthread_mutex_unlock(&f.t.mu);
	}
	tb_worker_stop(f.w, left_fn);
	assert_int_equal(f.t.nran, 4);
	assert_int_equal(f.t.ndone, 0);
	assert_int_equal(f.t.nleft, 4);
	assert_string_equal(f.t.left[0], "B1");
	assert_string_equal(f.t.left[1], "A2");
	assert_string_equal(f.t.left[2], "B3");
	assert_string_equal(f.t.left[3], "A4");
	fixture_end(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_kinds),
	    cmocka_unit_test(test_stop_leftovers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
