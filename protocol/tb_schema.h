/*
 * tb_schema.h - one schema engine for every document Tongban reads:
 * envelopes, the registry, the trust anchor, flow bodies, local-API
 * requests (JSON, section "JSON documents"), and the node's configuration
 * file (section "configuration files").
 *
 * A schema is data: a table of field descriptions per object, refusal
 * reasons from the table.  Member names are compared with their lengths
 * (a name holding U+0000 is never taken for a shorter one).
 *
 * Pure: no sockets, files or clocks.  Thread-safety: the tables are
 * constant and the functions reentrant; any number of threads may check
 * documents at once.
 */
#ifndef TB_SCHEMA_H
#define TB_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_diag;
struct tb_json;

/* ---- JSON documents ---- */

/* ---- configuration files (key = value) ---- */

#endif
