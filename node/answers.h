/* SPDX-License-Identifier: Apache-2.0 */
/*
 * answers.h - settles the outbound stage's answers off the loop: the
 * settler registered with tb_outbound_set_settler, running
 * tb_outbound_settle on a thread of its own (at the loop's priority: the
 * ingest thread is niced, and a settlement waiting behind submissions
 * holds its messages) and tb_outbound_settled back on the loop.  Calls outbound.c and worker.c.  Loop only (the settling
 * itself runs on the thread).
 */
#ifndef TB_ANSWERS_H
#define TB_ANSWERS_H

#include "node.h"
#include "../util/tb_err.h"

struct tb_journal;
struct tb_worker;

/* Settles outbound's answers (tb_outbound_set_settler) on a thread of its
 * own with its own journal handle (tb_journal_open_secondary of
 * n->journal, which must be open); on failure d says why and, if the
 * thread did not start, answers are settled on the loop. */
TB_MUST_CHECK int tb_answers_start(struct tb_node *n, struct tb_diag *d);
/* Settles what is queued, then stops the thread. */
void tb_answers_stop(struct tb_node *n);

#endif
