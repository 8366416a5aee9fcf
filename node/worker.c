/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c - a job thread for the event loop (see worker.h).
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../util/tb_err.h"
#include "../util/tb_thread.h"
#include "log.h"

struct tb_worker {
	tb_work_fn run, done;
	void *ctx;
	int nice_delta;
	const char *what; /* for messages */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tb_work *todo, **todo_tail, *ready, **ready_tail;
	bool stop;
	int efd; /* eventfd: the thread tells the loop that jobs are ready */
	struct event *ev;
};

static void *
worker_main(void *arg)
{
	struct tb_worker *w = arg;
	uint64_t one = 1;

	/* Below the event loop: when both cores are busy, the loop's round
	 * trips come first.  (A hint: if it fails, the thread runs as is.) */
	if (tb_thread_lower_priority(w->nice_delta) != 0)
		log_debug("%s thread: priority hint refused: %s", w->what, strerror(errno));
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->todo == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->todo == NULL)
			break; /* stopping, and every queued job has run */
		struct tb_work *x = w->todo;
		if ((w->todo = x->next) == NULL)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->mu);
		x->next = NULL;
		if (x->run != NULL)
			x->run(x->ctx, x);
		else
			w->run(w->ctx, x);
		pthread_mutex_lock(&w->mu);
		*w->ready_tail = x;
		w->ready_tail = &x->next;
		/* a full eventfd counter (impossible here) would only mean the
		 * loop is already signalled */
		if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warnx("%s: cannot signal the loop: %s", w->what, strerror(errno));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_worker *w = arg;
	struct tb_work *list;
	uint64_t c;

	(void)what;
	if (read(fd, &c, sizeof(c)) < 0 && errno != EAGAIN)
		log_warnx("%s: eventfd: %s", w->what, strerror(errno));
	pthread_mutex_lock(&w->mu);
	list = w->ready;
	w->ready = NULL;
	w->ready_tail = &w->ready;
	pthread_mutex_unlock(&w->mu);
	while (list != NULL) {
		struct tb_work *x = list;
		list = x->next;
		if (x->done != NULL)
			x->done(x->ctx, x);
		else
			w->done(w->ctx, x);
	}
}

struct tb_worker *
tb_worker_start(struct event_base *base, int nice_delta, tb_work_fn run, tb_work_fn done, void *ctx,
                const char *what, struct tb_diag *d)
{
	struct tb_worker *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "%s", what);
		return NULL;
	}
	w->run = run;
	w->done = done;
	w->ctx = ctx;
	w->nice_delta = nice_delta;
	w->what = what;
	w->todo_tail = &w->todo;
	w->ready_tail = &w->ready;
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: eventfd: %s", what, strerror(errno));
		free(w);
		return NULL;
	}
	if ((w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, ready_cb, w)) == NULL ||
	    event_add(w->ev, NULL) != 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "%s event", what);
		goto fail;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot start the %s thread", what);
		goto fail;
	}
	return w;
fail:
	if (w->ev != NULL)
		event_free(w->ev);
	close(w->efd);
	free(w);
	return NULL;
}

void
tb_worker_push(struct tb_worker *w, struct tb_work *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = job;
	w->todo_tail = &job->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
tb_worker_stop(struct tb_worker *w, tb_work_fn leftover)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	for (struct tb_work *x = w->ready, *nx; x != NULL; x = nx) {
		nx = x->next;
		if (x->leftover != NULL)
			x->leftover(x->ctx, x);
		else
			leftover(w->ctx, x);
	}
	event_free(w->ev);
	close(w->efd);
	free(w);
}
