/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tongban-interop - runs the Tongban conformance suite (vectors through
 * this library, wire cases against a target node over CoAP/DTLS) and
 * reports per case, as text, TAP and/or JUnit XML.  docs/INTEROP.md.
 */
#include <fnmatch.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_key.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "interop.h"

#ifndef TB_VECTORS_DIR
#define TB_VECTORS_DIR "interop/vectors"
#endif
#ifndef TB_PKGDATADIR
#define TB_PKGDATADIR "/usr/share/tongban"
#endif

/* The vectors of the source tree the program was built in, else the
 * installed copy (make install: $(pkgdatadir)/vectors). */
static const char *
default_vectors(void)
{
	return access(TB_VECTORS_DIR, R_OK) == 0 ? TB_VECTORS_DIR : TB_PKGDATADIR "/vectors";
}

static void
usage(FILE *f)
{
	fprintf(f,
	        "Usage: tongban-interop [--target coaps://HOST:PORT --federation DIR --as ID]\n"
	        "                       [--suite vectors|wire|all|flows|known] [--case PATTERN]\n"
	        "                       [--junit FILE] [--tap] [--timeout SEC] [--vectors DIR]\n"
	        "                       [--target-id ID] [--list] [-v]\n"
	        "       tongban-interop --help | --version\n\n"
	        "Runs the Tongban protocol conformance suite (docs/INTEROP.md).\n\n"
	        "  --target URI       the node under test, coaps://HOST:PORT (wire, flows)\n"
	        "  --federation DIR   test federation made by `tongban dev-federation` that the\n"
	        "                     target belongs to (DIR/root.crt, DIR/cas.pem,\n"
	        "                     DIR/registry.json, DIR/ID/node.*, DIR/testids/...)\n"
	        "  --as ID            member identity (DIR/ID) the runner acts as\n"
	        "  --target-id ID     the target's member id (default: learnt from the\n"
	        "                     registry endpoint, else from GET /fed/status)\n"
	        "  --suite S          vectors, wire, all = vectors + wire + flows [all];\n"
	        "                     flows (pending issue 6) and known (cases failing on\n"
	        "                     known node bugs) are not part of all\n"
	        "  --case PATTERN     run only cases whose id matches the glob PATTERN\n"
	        "  --timeout SEC      per wire case deadline, seconds [5]\n"
	        "  --vectors DIR      conformance vectors [%s]\n"
	        "  --junit FILE       also write JUnit XML to FILE\n"
	        "  --tap              print TAP (version 13) instead of plain lines\n"
	        "  --list             list the selected case ids, run nothing\n"
	        "  -v, --verbose      print details of passing cases too\n\n"
	        "Each case prints its id and result, on failure expected vs got; the last\n"
	        "line is `N passed, N failed`.\n"
	        "Exit status: 0 all passed, 1 some failed, 2 usage error, 3 setup error\n"
	        "(unreadable federation directory or vectors, bad target; or standard\n"
	        "output could not be written).\n",
	        default_vectors());
}

double
ti_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *
ti_printable(const void *s, size_t n, char *out, size_t cap)
{
	const unsigned char *p = s;
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < n; i++) {
		if (o + 8 >= cap) {
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			out[o++] = (char)p[i];
		} else {
			snprintf(out + o, cap - o, "\\x%02x", p[i]);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}

static char *
dup_printable(const char *s)
{
	char *o;
	size_t cap;

	if (s == NULL)
		return NULL;
	cap = strlen(s) * 4 + 8;
	if (cap > 2048)
		cap = 2048;
	if ((o = malloc(cap)) == NULL)
		return NULL;
	return ti_printable(s, strlen(s), o, cap);
}

bool
ti_want(struct ti *t, const char *id)
{
	if (t->pattern != NULL && fnmatch(t->pattern, id, 0) != 0)
		return false;
	if (t->list) {
		printf("%s\n", id);
		return false;
	}
	return true;
}

void
ti_result(struct ti *t, const char *suite, const char *id, bool pass, const char *expected,
          const char *got, double secs)
{
	struct ti_rec *r;
	size_t n;

	if (t->nrecs == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct ti_rec *nr = realloc(t->recs, nc * sizeof(*nr));
		if (nr == NULL) {
			fprintf(stderr, "tongban-interop: out of memory\n");
			exit(TI_EX_SETUP);
		}
		t->recs = nr;
		t->cap = nc;
	}
	r = &t->recs[t->nrecs++];
	r->suite = strdup(suite);
	r->id = strdup(id);
	r->expected = dup_printable(expected);
	r->got = dup_printable(got);
	r->pass = pass;
	r->secs = secs;
	pass ? t->npass++ : t->nfail++;
	n = t->nrecs;
	if (t->tap) {
		printf("%s %zu - %s\n", pass ? "ok" : "not ok", n, id);
		if (!pass || t->verbose) {
			printf("  ---\n");
			if (r->expected)
				printf("  expected: '%s'\n", r->expected);
			if (r->got)
				printf("  got: '%s'\n", r->got);
			printf("  ...\n");
		}
	} else {
		printf("%-4s %s", pass ? "PASS" : "FAIL", id);
		if (!pass || (t->verbose && r->got))
			printf("  expected: %s  got: %s", r->expected ? r->expected : "-",
			       r->got ? r->got : "-");
		printf("\n");
	}
	fflush(stdout);
}

/* XML 1.0 text: the strings are printable ASCII already (ti_printable). */
static void
xml_text(FILE *f, const char *s)
{
	for (; s != NULL && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(*s, f);
		}
	}
}

static int
write_junit(const struct ti *t, const char *path)
{
	static const char *const suites[] = {"vectors", "wire", "flows"};
	FILE *f = fopen(path, "w");
	double total = 0;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	if (f == NULL)
		return -1;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	for (size_t i = 0; i < t->nrecs; i++)
		total += t->recs[i].secs;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(
	    f,
	    "<testsuites name=\"tongban-interop\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n",
	    t->nrecs, t->nfail, total);
	for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
		size_t n = 0, nf = 0;
		double secs = 0;
		for (size_t i = 0; i < t->nrecs; i++)
			if (strcmp(t->recs[i].suite, suites[s]) == 0) {
				n++;
				nf += !t->recs[i].pass;
				secs += t->recs[i].secs;
			}
		if (n == 0)
			continue;
		fprintf(f,
		        "  <testsuite name=\"%s\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
		        "skipped=\"0\" time=\"%.3f\" timestamp=\"%s\">\n",
		        suites[s], n, nf, secs, stamp);
		for (size_t i = 0; i < t->nrecs; i++) {
			const struct ti_rec *r = &t->recs[i];
			if (strcmp(r->suite, suites[s]) != 0)
				continue;
			fprintf(f, "    <testcase classname=\"tongban-interop.%s\" name=\"",
			        r->suite);
			xml_text(f, r->id);
			fprintf(f, "\" time=\"%.3f\"", r->secs);
			if (r->pass) {
				fprintf(f, "/>\n");
				continue;
			}
			fprintf(f, ">\n      <failure type=\"mismatch\" message=\"expected: ");
			xml_text(f, r->expected ? r->expected : "-");
			fprintf(f, "; got: ");
			xml_text(f, r->got ? r->got : "-");
			fprintf(f, "\">expected: ");
			xml_text(f, r->expected ? r->expected : "-");
			fprintf(f, "\ngot: ");
			xml_text(f, r->got ? r->got : "-");
			fprintf(f, "</failure>\n    </testcase>\n");
		}
		fprintf(f, "  </testsuite>\n");
	}
	fprintf(f, "</testsuites>\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* --timeout SEC, 0.1..600, into milliseconds. */
static bool
parse_timeout(const char *arg, int *ms)
{
	char *end;
	double s = strtod(arg, &end);

	if (*end != '\0' || !(s >= 0.1 && s <= 600))
		return false;
	*ms = (int)(s * 1000);
	return true;
}

/* The closing lines (TAP plan, JUnit file, counts): the exit status. */
static int
finish(struct ti *t, const char *junit, int rc)
{
	if (t->tap)
		printf("1..%zu\n", t->nrecs);
	if (junit != NULL && write_junit(t, junit) != 0) {
		fprintf(stderr, "tongban-interop: cannot write %s\n", junit);
		rc = rc ? rc : TI_EX_SETUP;
	}
	printf("%zu passed, %zu failed\n", t->npass, t->nfail);
	for (size_t i = 0; i < t->nrecs; i++) {
		free(t->recs[i].suite);
		free(t->recs[i].id);
		free(t->recs[i].expected);
		free(t->recs[i].got);
	}
	free(t->recs);
	if (rc != 0)
		return rc;
	return t->nfail > 0 || t->npass == 0 ? TI_EX_FAILED : TI_EX_OK;
}

static int
run(int argc, char **argv)
{
	static const struct option opts[] = {{"target", required_argument, NULL, 't'},
	                                     {"federation", required_argument, NULL, 'f'},
	                                     {"as", required_argument, NULL, 'a'},
	                                     {"target-id", required_argument, NULL, 'T'},
	                                     {"suite", required_argument, NULL, 's'},
	                                     {"case", required_argument, NULL, 'c'},
	                                     {"junit", required_argument, NULL, 'j'},
	                                     {"tap", no_argument, NULL, 'p'},
	                                     {"timeout", required_argument, NULL, 'o'},
	                                     {"vectors", required_argument, NULL, 'V'},
	                                     {"list", no_argument, NULL, 'l'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'r'},
	                                     {0, 0, 0, 0}};
	struct ti t;
	const char *suite = "all", *junit = NULL;
	bool do_vec, do_wire, do_flows, do_known;
	int c, rc = 0;

	memset(&t, 0, sizeof(t));
	t.vectors = default_vectors();
	t.timeout_ms = 5000;
	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		switch (c) {
		case 't': t.target = optarg; break;
		case 'f': t.fedir = optarg; break;
		case 'a': t.as = optarg; break;
		case 'T': t.target_id = optarg; break;
		case 's': suite = optarg; break;
		case 'c': t.pattern = optarg; break;
		case 'j': junit = optarg; break;
		case 'p': t.tap = true; break;
		case 'V': t.vectors = optarg; break;
		case 'l': t.list = true; break;
		case 'v': t.verbose = true; break;
		case 'o':
			if (!parse_timeout(optarg, &t.timeout_ms)) {
				fprintf(stderr,
				        "tongban-interop: --timeout must be 0.1..600 seconds\n");
				return TI_EX_USAGE;
			}
			break;
		case 'h': usage(stdout); return TI_EX_OK;
		case 'r': printf("tongban-interop %s\n", PACKAGE_VERSION); return TI_EX_OK;
		default: fprintf(stderr, "Try 'tongban-interop --help'.\n"); return TI_EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tongban-interop: unexpected argument '%s'\n", argv[optind]);
		return TI_EX_USAGE;
	}
	do_vec = strcmp(suite, "vectors") == 0 || strcmp(suite, "all") == 0;
	do_wire = strcmp(suite, "wire") == 0 || strcmp(suite, "all") == 0;
	do_flows = strcmp(suite, "flows") == 0 || strcmp(suite, "all") == 0;
	do_known = strcmp(suite, "known") == 0;
	if (!do_vec && !do_wire && !do_flows && !do_known) {
		fprintf(stderr,
		        "tongban-interop: --suite must be vectors, wire, flows, known or all\n");
		return TI_EX_USAGE;
	}
	if ((do_wire || do_flows || do_known) && !t.list &&
	    (t.target == NULL || t.fedir == NULL || t.as == NULL)) {
		fprintf(stderr,
		        "tongban-interop: the %s suite needs --target, --federation and "
		        "--as\nTry 'tongban-interop --help'.\n",
		        suite);
		return TI_EX_USAGE;
	}
	if (tb_crypto_init() != 0) {
		fprintf(stderr, "tongban-interop: cannot initialise the crypto library\n");
		return TI_EX_SETUP;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (t.tap && !t.list)
		printf("TAP version 13\n");
	if (do_vec)
		rc = ti_suite_vectors(&t);
	if (rc == 0 && do_wire)
		rc = ti_suite_wire(&t, TI_SUITE_WIRE);
	if (rc == 0 && do_flows)
		rc = ti_suite_wire(&t, TI_SUITE_FLOWS);
	if (rc == 0 && do_known)
		rc = ti_suite_wire(&t, TI_SUITE_KNOWN);
	if (t.list)
		return rc;
	return finish(&t, junit, rc);
}

/* Results that did not reach standard output (a full disk, /dev/full)
 * fail the run: stdio holds output in a buffer, so this shows only when
 * it is flushed, here.  One line on stderr, status 3. */
int
main(int argc, char **argv)
{
	struct tb_diag d;
	int rc = run(argc, argv);

	if (tb_file_close_stdout(&d) != TB_OK) {
		fprintf(stderr, "tongban-interop: cannot write to standard output: %s\n", d.detail);
		return TI_EX_SETUP;
	}
	return rc;
}
