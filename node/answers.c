/*
 * answers.c - the answers to outbound exchanges settled off the event
 * loop.  The loop copies an exchange's answer and frees its session slot
 * at once; one answers thread inflates the answer, opens the receipts
 * (the registry's keys read under n->reg_lock, a signature cache of its
 * own), journals the outcomes on a journal handle of its own, and hands
 * the results back through an eventfd; the loop then counts them, stops
 * the latency clocks and schedules what follows.  So a burst of answers
 * no longer keeps the loop from moving the blocks of other exchanges.
 *
 * Until an answer is settled its messages stay "sent, awaiting receipt"
 * (due again only after the answer timeout), so nothing is sent twice
 * meanwhile; a crash before the thread's commit means they are sent
 * again and answered with their original receipts.
 */
#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../protocol/tb_env.h"
#include "../util/tb_err.h"
#include "../util/tb_thread.h"
#include "journal.h"
#include "log.h"

#define ANSWERS_NICE 5 /* as the ingest thread: below the loop */
#define SIGCACHE 16    /* batch roots verified lately (one per answer) */

struct tb_answers {
	struct tb_node *n;
	struct tb_journal *j; /* the thread's own handle */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tb_answer *todo, **todo_tail, *done, **done_tail;
	bool stop;
	int efd; /* eventfd: the thread tells the loop that answers are settled */
	struct event *ev;
	/* the thread's only */
	uint8_t cache[SIGCACHE][32];
	size_t cache_next;
};

static bool
cache_known(void *ctx, const uint8_t tag[32])
{
	struct tb_answers *w = ctx;

	for (size_t i = 0; i < SIGCACHE; i++)
		if (memcmp(w->cache[i], tag, 32) == 0)
			return true;
	return false;
}

static void
cache_remember(void *ctx, const uint8_t tag[32])
{
	struct tb_answers *w = ctx;

	memcpy(w->cache[w->cache_next], tag, 32);
	w->cache_next = (w->cache_next + 1) % SIGCACHE;
}

static const struct tb_pub *
lookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	struct tb_answers *w = ctx;

	return tb_node_lookup_sign(w->n, from, kid);
}

static void
settle(struct tb_answers *w, struct tb_answer *a)
{
	struct tb_node *n = w->n;

	/* the keys, the registry they come from and the tunables (clock
	 * skew, retry delays) stay put meanwhile: the loop replaces them
	 * under the write lock */
	pthread_rwlock_rdlock(&n->reg_lock);
	struct tb_env_open_opts o = {lookup,        w, tb_now(), n->cfg.clock_skew, cache_known,
	                             cache_remember};
	tb_outbound_settle(n, w->j, &o, a);
	pthread_rwlock_unlock(&n->reg_lock);
}

static void *
answers_main(void *arg)
{
	struct tb_answers *w = arg;
	uint64_t one = 1;

	(void)tb_thread_lower_priority(ANSWERS_NICE);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->todo == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->todo == NULL)
			break; /* stopping, and every queued answer is settled */
		struct tb_answer *a = w->todo;
		if ((w->todo = a->next) == NULL)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->mu);
		a->next = NULL;
		settle(w, a);
		pthread_mutex_lock(&w->mu);
		*w->done_tail = a;
		w->done_tail = &a->next;
		if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warnx("answers: cannot signal the loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_answers *w = arg;
	struct tb_answer *list;
	uint64_t c;

	(void)what;
	if (read(fd, &c, sizeof(c)) < 0 && errno != EAGAIN)
		log_warnx("answers: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	while (list != NULL) {
		struct tb_answer *a = list;
		list = a->next;
		tb_outbound_settled(w->n, a);
	}
}

int
tb_answers_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_answers *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "answers");
	w->n = n;
	w->efd = -1;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	n->answers = w;
	if ((w->j = tb_journal_open_ex(n->cfg.journal, TB_JOURNAL_NO_CHECKPOINTS, d)) == NULL)
		return d->code;
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "eventfd: %s", strerror(errno));
	if ((w->ev = event_new(n->base, w->efd, EV_READ | EV_PERSIST, done_cb, w)) == NULL ||
	    event_add(w->ev, NULL) != 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "answers event");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, answers_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "cannot start the answers thread");
	}
	w->started = true;
	return TB_OK;
}

void
tb_answers_submit(struct tb_node *n, struct tb_answer *a)
{
	struct tb_answers *w = n->answers;

	if (w == NULL || !w->started) {
		/* no thread (not started, or it failed): settle here */
		struct tb_answers local;
		memset(&local, 0, sizeof(local));
		local.n = n;
		local.j = n->journal;
		settle(&local, a);
		tb_outbound_settled(n, a);
		return;
	}
	a->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->todo_tail = a;
	w->todo_tail = &a->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void
tb_answers_stop(struct tb_node *n)
{
	struct tb_answers *w = n->answers;

	if (w == NULL)
		return;
	if (w->started) {
		/* the thread settles what is queued (its outcomes are
		 * journalled) and exits */
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	/* settled but not applied: the loop has stopped; free them */
	for (struct tb_answer *a = w->done, *next; a != NULL; a = next) {
		next = a->next;
		tb_outbound_settled(NULL, a);
	}
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->efd >= 0)
		close(w->efd);
	tb_journal_close(w->j);
	free(w);
	n->answers = NULL;
}
