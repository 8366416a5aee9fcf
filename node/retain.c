/* SPDX-License-Identifier: Apache-2.0 */
/* retain.c - pruning after the retention, with the archive (retain.h). */
#include "retain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "journal.h"
#include "log.h"
#include "node.h"
#include "worker.h"

/* Not below the loop's priority: pruning must keep pace with the traffic
 * that makes rows, and at nice 10 it fell behind on a loaded machine
 * (twice the rows held in a soak at 1,000 msg/s). */
#define RETAIN_NICE 0
#define RETAIN_LIMIT 1000     /* messages of each direction per transaction */
#define RETAIN_BUDGET_MS 5000 /* one job's work at most; the rest next time */

/* One round, filled on the loop, run on the thread, reported on the loop. */
struct job {
	struct tb_work work;
	/* in */
	int64_t now, retention, keep;
	char dir[TB_CONF_PATH_MAX]; /* archive directory, or empty */
	/* out */
	size_t removed;
	uint64_t archived;
	int64_t freed;
	char file[1200]; /* the archive file written last */
	char err[400];   /* why the round stopped early, or empty */
};

struct tb_retain {
	struct tb_node *n;
	struct tb_journal *j; /* the thread's handle */
	struct tb_worker *w;
	struct event *timer;
	struct job job;
	bool busy; /* job pushed, not yet back */
};

/* One transaction's worth, archived first when the job has a directory. */
static int
retire_once(struct tb_journal *j, struct job *x, size_t *removed)
{
	struct tb_journal_archiver hook;
	struct tb_archive *a = NULL;
	struct tb_diag d;
	int rc;

	tb_diag_clear(&d);
	if (x->dir[0] != '\0') {
		if ((a = tb_archive_open(x->dir, x->now, &d)) == NULL) {
			snprintf(x->err, sizeof(x->err), "%s", d.detail);
			return d.code;
		}
		tb_archive_hook(a, &hook);
	}
	rc = tb_journal_retire(j, x->now, x->retention, x->keep, RETAIN_LIMIT, a ? &hook : NULL,
	                       removed);
	if (rc != TB_OK && a != NULL && tb_archive_error(a)->code != TB_OK)
		snprintf(x->err, sizeof(x->err), "%s (nothing pruned)",
		         tb_archive_error(a)->detail);
	else if (rc != TB_OK)
		snprintf(x->err, sizeof(x->err), "%s", tb_journal_diag(j)->detail);
	else if (a != NULL && *removed > 0) {
		x->archived += tb_archive_count(a);
		snprintf(x->file, sizeof(x->file), "%s", tb_archive_path(a));
	}
	tb_archive_close(a);
	return rc;
}

/* The thread: batches until nothing is left or the time budget is spent,
 * then the free pages back to the file system. */
static void
run_job(void *ctx, struct tb_work *w)
{
	struct tb_retain *r = ctx;
	struct job *x = (struct job *)w;
	int64_t t0 = tb_now_ms();
	size_t removed;

	do {
		removed = 0;
		if (retire_once(r->j, x, &removed) != TB_OK)
			return;
		x->removed += removed;
		/* a full batch of either direction: there may be more */
	} while (removed >= RETAIN_LIMIT && tb_now_ms() - t0 < RETAIN_BUDGET_MS);
	if (tb_journal_vacuum(r->j, &x->freed) != TB_OK)
		snprintf(x->err, sizeof(x->err), "vacuum: %s", tb_journal_diag(r->j)->detail);
}

static void arm(struct tb_retain *r);

/* Back on the loop: the round's outcome in the log, the next one armed. */
static void
job_done(void *ctx, struct tb_work *w)
{
	struct tb_retain *r = ctx;
	struct job *x = (struct job *)w;

	r->busy = false;
	if (x->err[0] != '\0')
		log_warnx("journal: retention: %s (pruned %zu; tried again later)", x->err,
		          x->removed);
	else if (x->archived > 0)
		log_info("journal: pruned %zu messages finished over %lld s ago, archived to %s",
		         x->removed, (long long)x->retention, x->file);
	else if (x->removed > 0)
		log_info("journal: pruned %zu messages finished over %lld s ago", x->removed,
		         (long long)x->retention);
	if (x->freed > 0)
		log_debug("journal: %lld free pages given back", (long long)x->freed);
	arm(r);
}

static void
job_leftover(void *ctx, struct tb_work *w)
{
	(void)ctx;
	(void)w; /* the job is part of struct tb_retain */
}

/* The timer: a round with the settings of now (SIGHUP may change them). */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tb_retain *r = arg;
	struct job *x = &r->job;

	(void)fd;
	(void)what;
	if (r->busy)
		return;
	memset(x, 0, sizeof(*x));
	x->now = tb_now();
	x->retention = r->n->cfg.retention;
	/* the replay rule: an id is remembered while a copy of its message
	 * could still pass the time check (expiry, with the allowed skew) */
	x->keep = r->n->cfg.clock_skew;
	snprintf(x->dir, sizeof(x->dir), "%s", r->n->cfg.archive_dir);
	r->busy = true;
	tb_worker_push(r->w, &x->work);
}

static void
arm(struct tb_retain *r)
{
	int64_t s = r->n->cfg.retention / 2;
	struct timeval tv = {s < 1 ? 1 : s > 60 ? 60 : (time_t)s, 0};

	(void)evtimer_add(r->timer, &tv);
}

struct tb_retain *
tb_retain_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_retain *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "retention");
		return NULL;
	}
	r->n = n;
	if ((r->j = tb_journal_open_secondary(n->journal, d)) == NULL)
		goto fail;
	if ((r->timer = evtimer_new(n->base, on_timer, r)) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "retention timer");
		goto fail;
	}
	if ((r->w = tb_worker_start(n->base, RETAIN_NICE, run_job, job_done, r, "retention", d)) ==
	    NULL)
		goto fail;
	arm(r);
	return r;
fail:
	tb_retain_stop(r);
	return NULL;
}

void
tb_retain_stop(struct tb_retain *r)
{
	if (r == NULL)
		return;
	if (r->timer != NULL)
		event_free(r->timer);
	tb_worker_stop(r->w, job_leftover);
	tb_journal_close(r->j);
	free(r);
}
