/* SPDX-License-Identifier: Apache-2.0 */
/*
 * answers.c - the answers to outbound exchanges settled off the event
 * loop.  The loop copies an exchange's answer and frees its session slot
 * at once; the answers thread (its own since the ingest thread, which
 * settled them between submissions before, is niced), inflates the answer, opens the receipts (the
 * registry's keys read under n->reg_lock, a signature cache of this module's), journals the
 * outcomes on its journal handle, and hands the results back through an eventfd; the loop then
 * counts them, stops the latency clocks and schedules what follows.  So a burst of answers no
 * longer keeps the loop from moving the blocks of other exchanges.
 *
 * Until an answer is settled its messages are not due in the journal
 * (those sent from memory are held for TB_FRESH_HOLD_S(n), those from the
 * journal's queue were marked "sent, awaiting receipt" for the answer
 * timeout), so nothing is sent twice meanwhile; a crash before the
 * thread's commit means they are sent again and answered with their
 * original receipts.
 */
#include "answers.h"
#include "outbound.h"

#include <stdlib.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../util/tb_err.h"
#include "journal.h"
#include "log.h"
#include "worker.h"

#define SIGCACHE 16 /* batch roots verified lately (one per answer) */

struct tb_answers {
	struct tb_node *n;
	struct tb_journal *j; /* the thread's handle (owned) */
	struct tb_worker *w;  /* the thread (owned); NULL: none */
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
	struct tb_env_open_opts o = {lookup,         w,   tb_now(), n->cfg.clock_skew, cache_known,
	                             cache_remember, NULL};
	tb_outbound_settle(n, w->j, &o, a);
	pthread_rwlock_unlock(&n->reg_lock);
}

/* The thread: settles one answer. */
static void
run(void *ctx, struct tb_work *wk)
{
	settle(ctx, (struct tb_answer *)wk);
}

/* The loop: applies it. */
static void
applied(void *ctx, struct tb_work *wk)
{
	struct tb_answers *w = ctx;

	tb_outbound_settled(w->n, (struct tb_answer *)wk);
}

/* Shutting down: settled but not applied, since the loop has stopped. */
static void
leftover(void *ctx, struct tb_work *wk)
{
	(void)ctx;
	tb_outbound_settled(NULL, (struct tb_answer *)wk);
}

static void submit(void *ctx, struct tb_answer *a);

int
tb_answers_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_answers *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "answers");
	w->n = n;
	n->answers = w;
	if ((w->j = tb_journal_open_secondary(n->journal, d)) == NULL)
		return d->code;
	/* at the loop's priority, not the ingest thread's lower one: an
	 * answer settled late holds its messages and its session's slot */
	if ((w->w = tb_worker_start(n->base, 0, run, applied, w, "answers", d)) == NULL)
		return d->code;
	tb_outbound_set_settler(n, submit, w);
	return TB_OK;
}

/* Outbound's settler: queues a (owned) for the thread; without one,
 * settles it on the loop. */
static void
submit(void *ctx, struct tb_answer *a)
{
	struct tb_answers *w = ctx;
	struct tb_node *n = w->n;

	if (w->w == NULL) {
		/* no thread (not started, or it failed): settle here */
		struct tb_answers local;
		memset(&local, 0, sizeof(local));
		local.n = n;
		local.j = n->journal;
		settle(&local, a);
		tb_outbound_settled(n, a);
		return;
	}
	a->work.run = run;
	a->work.done = applied;
	a->work.leftover = leftover;
	a->work.ctx = w;
	tb_worker_push(w->w, &a->work);
}

void
tb_answers_stop(struct tb_node *n)
{
	struct tb_answers *w = n->answers;

	if (w == NULL)
		return;
	/* the thread settles what is queued (its outcomes are journalled)
	 * and the rest is released; an answer arriving from now on is
	 * dropped, its messages due again later */
	tb_outbound_set_settler(n, NULL, NULL);
	tb_worker_stop(w->w, leftover);
	tb_journal_close(w->j);
	free(w);
	n->answers = NULL;
}
