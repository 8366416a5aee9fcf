/* SPDX-License-Identifier: Apache-2.0 */
/* cli_flow.c - `tongban licence check`: judge a presented licence. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_key.h"
#include "../federation/tb_licence.h"
#include "../federation/tb_reg.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

static void
usage(FILE *f)
{
	fprintf(f, "Usage: tongban licence check --registry REG [--now T] LICENCE.json\n\n"
	           "Checks a presented licence (an element of a licence.present body,\n"
	           "docs/PROTOCOL.md 10.5): its form, digest, the issuing member's signature\n"
	           "(key from the registry) and its status and validity at T (default now).\n"
	           "Prints \"valid\" and the licence id, or one line with the reason\n"
	           "(licence.digest, sig.bad, sig.unknown-key, licence.issuer-suspended,\n"
	           "licence.issuer-revoked, licence.revoked, licence.expired,\n"
	           "licence.not-yet-valid, body.invalid).\n"
	           "Exit status: 0 valid, 1 not valid, 2 usage, 3 I/O error.\n");
}

int
cmd_licence(int argc, char **argv)
{
	static const struct option opts[] = {{"registry", required_argument, NULL, 'r'},
	                                     {"now", required_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *regf = NULL;
	long long now = (long long)time(NULL);
	struct tb_buf rb, lb;
	struct tb_reg *reg = NULL;
	struct tb_json_doc *doc = NULL;
	struct tb_diag d;
	int ch, rc;

	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return EX_TB_OK;
		}
		return cli_usage_error("usage: tongban licence check --registry REG LICENCE.json");
	}
	argc--;
	argv++;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': regf = optarg; break;
		case 'n':
			if (cli_parse_i64(optarg, &now) != 0 || now < 0)
				return cli_usage_error("--now must be Unix seconds");
			break;
		case 'h': usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (regf == NULL || argc - optind != 1)
		return cli_usage_error("--registry and one licence file are required");
	tb_buf_init(&rb);
	tb_buf_init(&lb);
	if (tb_file_read(regf, TB_REG_MAX_SIZE, &rb, &d) != TB_OK ||
	    tb_file_read(argv[optind], 1 << 20, &lb, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((reg = tb_reg_parse(rb.data, rb.len, &d)) == NULL) {
		tb_diag_prefix(&d, regf);
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((doc = tb_json_parse(lb.data, lb.len, NULL, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_licence_check(reg, tb_json_root(doc), now, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	{
		const struct tb_json *id = tb_json_get(tb_json_root(doc), "id");
		printf("valid %s\n", id ? tb_json_string(id, NULL) : "");
	}
	rc = EX_TB_OK;
out:
	tb_json_doc_free(doc);
	tb_reg_free(reg);
	tb_buf_free(&rb);
	tb_buf_free(&lb);
	return rc;
}

/* ---- tongban demo ---- */

int
cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"keep", no_argument, NULL, 'k'},
	                                     {"alg", required_argument, NULL, 'a'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *dir = NULL, *script = NULL, *alg = "p256";
	const char *cands[] = {TB_SRCDIR "/interop/demo.sh", TB_PKGDATADIR "/demo.sh"};
	char self[1024], bindir[1024];
	bool keep = false;
	ssize_t n;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': keep = true; break;
		case 'a': alg = optarg; break;
		case 'h':
			printf("Usage: tongban demo [--dir DIR] [--keep] [--alg p256|sm2]\n\n"
			       "Starts the Huaihai region (4 province hubs, 10 cities) as real\n"
			       "tongban-node processes on 127.0.0.1 and narrates cross-province\n"
			       "flows: identity check, licence query and verification, a case\n"
			       "handled through a hub, a live onboarding, a suspension and a\n"
			       "revocation, with routes, relays, receipts and timings.  Stops\n"
			       "everything at the end unless --keep.  --dir keeps the federation\n"
			       "files in DIR (default: a temporary directory).  --alg sm2 signs\n"
			       "every message, receipt and registry in SM2/SM3 (dev-federation\n"
			       "--alg sm2; DTLS stays P-256).\n"
			       "Exit status: 0 every step passed, 1 a step failed.\n");
			return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (strcmp(alg, "p256") != 0 && strcmp(alg, "sm2") != 0)
		return cli_usage_error("--alg must be p256 or sm2, not '%s'", alg);
	if (setenv("TB_DEMO_ALG", alg, 1) != 0)
		return cli_fail(EX_TB_INTERNAL, "setenv failed");
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]) && script == NULL; i++)
		if (access(cands[i], R_OK) == 0)
			script = cands[i];
	if (script == NULL)
		return cli_fail(EX_TB_IO, "demo script not found (%s)", cands[0]);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return cli_fail(EX_TB_IO, "cannot locate the tongban binary");
	self[n] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", self);
	if (strrchr(bindir, '/') != NULL)
		*strrchr(bindir, '/') = '\0';
	if (dir != NULL && setenv("TB_DEMO_DIR", dir, 1) != 0)
		return cli_fail(EX_TB_INTERNAL, "setenv failed");
	fflush(stdout);
	execl("/bin/bash", "bash", script, bindir, keep ? "--keep" : (char *)NULL, (char *)NULL);
	return cli_fail(EX_TB_IO, "cannot run %s", script);
}
