/* SPDX-License-Identifier: Apache-2.0 */
/*
 * answers.h - settles the outbound stage's answers off the loop: the
 * settler registered with tb_outbound_set_settler, running
 * tb_outbound_settle on the ingest thread and tb_outbound_settled back on
 * the loop.  Calls outbound.c and worker.c.  Loop only (the settling
 * itself runs on the thread).
 */
#ifndef TB_ANSWERS_H
#define TB_ANSWERS_H

#include "node.h"
#include "../util/tb_err.h"

struct tb_journal;
struct tb_worker;

/* Settles outbound's answers (tb_outbound_set_settler) on thread, the
 * ingest thread's worker, journalling on j, its journal handle (both
 * borrowed: tb_ingest_thread); thread NULL: settled on the loop. */
TB_MUST_CHECK int tb_answers_start(struct tb_node *n, struct tb_worker *thread,
                                   struct tb_journal *j, struct tb_diag *d);
/* Settles what is queued, then stops the thread. */
void tb_answers_stop(struct tb_node *n);

#endif
