/*
 * api.h - the local HTTP/JSON API.
 */
#ifndef TB_API_H
#define TB_API_H

#include "node.h"

int tb_api_start(struct tb_node *n, struct tb_diag *d);
void tb_api_stop(struct tb_node *n);
#endif
