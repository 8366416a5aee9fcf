/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.h - a thread that runs jobs for the event loop, one at a time in
 * the order pushed, and hands each back: run(ctx, job) on the thread,
 * then done(ctx, job) on the loop, woken through an eventfd.  The ingest
 * (ingest.c) and answers (answers.c) threads are such workers.
 *
 * A job is the caller's struct, beginning with struct tb_work; the caller
 * allocates it, and it is the caller's again in done() (or leftover()).
 *
 * Thread-safety: tb_worker_start, tb_worker_push and tb_worker_stop run
 * on the thread of the event loop given to tb_worker_start; run() runs
 * on the worker's thread, one job at a time; done() and leftover() on
 * the loop's.
 */
#ifndef TB_WORKER_H
#define TB_WORKER_H

#include <event2/event.h>

#include "../util/tb_err.h"

struct tb_diag;
struct tb_work;

typedef void (*tb_work_fn)(void *ctx, struct tb_work *job);

/* A job may carry its own functions and context (run, done, leftover and
 * ctx; NULL: the worker's), so that jobs of different kinds share one
 * thread in one queue. */
struct tb_work {
	struct tb_work *next; /* the worker's */
	tb_work_fn run, done, leftover;
	void *ctx;
};

struct tb_worker;

/* Starts the thread, nice_delta nice levels below the caller (a hint),
 * with done() called from base's loop.  NULL with d set on failure. */
TB_MUST_CHECK struct tb_worker *tb_worker_start(struct event_base *base, int nice_delta,
                                                tb_work_fn run, tb_work_fn done, void *ctx,
                                                const char *what, struct tb_diag *d);
/* Queues job for the thread (loop only). */
void tb_worker_push(struct tb_worker *w, struct tb_work *job);
/* Runs what is queued, joins the thread and frees w; the jobs run but
 * not yet handed back (the loop has stopped) go to leftover().  NULL is a
 * no-op. */
void tb_worker_stop(struct tb_worker *w, tb_work_fn leftover);

#endif
