/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_route.h - the route table: (service, region) -> member, via hubs
 * (docs/PROTOCOL.md section 8.1).
 *
 * Built once from a verified registry; a lookup is a few hash probes
 * (6-, 4- then 2-digit prefix of the region) with the winner of every
 * (service, prefix) pair chosen at build time.  Pure: no I/O, no clock.
 *
 * Thread-safety: a built table is read-only: lookups may run in
 * several threads at once, as long as the registry stays unedited.
 *
 * Ownership: tb_route_new returns a table the caller frees with
 * tb_route_free (NULL allowed); it borrows the registry.
 */
#ifndef TB_ROUTE_H
#define TB_ROUTE_H

#include <stddef.h>

#include "../util/tb_err.h"

struct tb_reg;
struct tb_route;
struct tb_diag;

/* The answer to one lookup.  Strings are borrowed from the registry. */
struct tb_route_result {
	size_t member;         /* index of the serving member in the registry */
	const char *member_id; /* the member that serves the request */
	const char *endpoint;  /* first endpoint of the first hop */
	const char *path[2];   /* hops: [member] or [parent hub, member] */
	size_t path_len;       /* 1 or 2 */
	size_t prefix_len;     /* digits of the region prefix that matched */
};

/* Builds the table.  reg is borrowed and must outlive the table (and stay
 * unedited).  NULL on memory error (d says so).  Caller frees. */
TB_MUST_CHECK struct tb_route *tb_route_new(const struct tb_reg *reg, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_route_free(struct tb_route *rt);

/*
 * Resolves service (a service code) for region (2, 4 or 6 digits), both
 * NUL-terminated.  0 with *out filled; TB_E_NO_ROUTE when no active,
 * reachable member serves it; TB_E_ARG when either code is malformed.
 */
TB_MUST_CHECK int tb_route_resolve(const struct tb_route *rt, const char *service,
                                   const char *region, struct tb_route_result *out);

/* Number of (service, prefix) entries in the table. */
size_t tb_route_entries(const struct tb_route *rt);

#endif
