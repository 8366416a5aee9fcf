/*
 * answers.h - answers to outbound exchanges settled off the loop.
 */
#ifndef TB_ANSWERS_H
#define TB_ANSWERS_H

#include "node.h"

struct tb_answer;

int tb_answers_start(struct tb_node *n, struct tb_diag *d);
/* Queues a (owned) for the thread; without one, settles it on the loop. */
void tb_answers_submit(struct tb_node *n, struct tb_answer *a);
/* Settles what is queued, then stops the thread. */
void tb_answers_stop(struct tb_node *n);

#endif
