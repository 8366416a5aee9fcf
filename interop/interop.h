/* SPDX-License-Identifier: Apache-2.0 */
/*
 * interop.h - tongban-interop, the conformance runner (docs/INTEROP.md).
 *
 * The runner keeps the options and the results; each suite (vectors.c,
 * wire.c) walks its cases, asks ti_want() whether a case is selected and
 * reports each outcome with ti_result().
 */
#ifndef TB_INTEROP_H
#define TB_INTEROP_H

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses (man/tongban-interop.1). */
enum { TI_EX_OK = 0, TI_EX_FAILED = 1, TI_EX_USAGE = 2, TI_EX_SETUP = 3 };

struct ti_rec {
	char *suite, *id, *expected, *got;
	bool pass;
	double secs;
};

struct ti {
	/* options */
	const char *target;    /* coaps://HOST:PORT */
	const char *fedir;     /* dev federation directory */
	const char *as;        /* member id to act as */
	const char *target_id; /* --target-id, or NULL: learnt */
	const char *vectors;   /* vectors directory */
	const char *pattern;   /* --case glob, or NULL */
	int timeout_ms;        /* per wire case */
	bool tap, list, verbose;
	/* results */
	struct ti_rec *recs;
	size_t nrecs, cap, npass, nfail;
};

/* True when case id is selected by --case (and, with --list, prints it
 * and returns false). */
bool ti_want(struct ti *t, const char *id);
/* Records and prints one case's outcome.  expected/got describe a
 * failure (may be NULL on success); they are sanitised for printing. */
void ti_result(struct ti *t, const char *suite, const char *id, bool pass, const char *expected,
               const char *got, double secs);
/* Monotonic seconds. */
double ti_now(void);
/* Copies n bytes of s into out (cap bytes) as printable ASCII: other
 * bytes as \xNN, cut with "..." when too long.  Returns out. */
char *ti_printable(const void *s, size_t n, char *out, size_t cap);

/* Suites.  Return 0, or TI_EX_SETUP after printing why. */
int ti_suite_vectors(struct ti *t);
enum { TI_SUITE_WIRE, TI_SUITE_FLOWS, TI_SUITE_KNOWN };
int ti_suite_wire(struct ti *t, int mode);

#endif
