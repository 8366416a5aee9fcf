/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retain.h - the journal's retention: finished messages are pruned once
 * `retention` seconds have passed since they finished (and the replay
 * rule allows), archived first when `archive_dir` is set, and the freed
 * pages are given back (tb_journal_retire, tb_journal_vacuum).  The work
 * runs on a thread of its own with its own journal handle, so the loop
 * never waits for the compression or the deletes; the loop's timer hands
 * it one job at a time, every retention / 2 seconds (1 .. 60).
 *
 * Thread-safety: start and stop on the loop's thread; the rest is
 * internal (the job carries copies of the settings it needs).
 */
#ifndef TB_RETAIN_H
#define TB_RETAIN_H

#include "../util/tb_err.h"

struct tb_node;
struct tb_retain;
struct tb_diag;

/* Starts the thread and the timer on n's loop; n->journal (the primary
 * handle) must stay open until tb_retain_stop().  NULL with d set. */
TB_MUST_CHECK struct tb_retain *tb_retain_start(struct tb_node *n, struct tb_diag *d);
/* Finishes a running job, stops the thread, frees r.  NULL allowed. */
void tb_retain_stop(struct tb_retain *r);

#endif
