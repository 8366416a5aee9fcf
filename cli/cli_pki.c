/* SPDX-License-Identifier: Apache-2.0 */
/* cli_pki.c - `tongban ca`, `tongban node`, `tongban cert`: the federation PKI. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_ca.h"
#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

#define MAX_FILES 16

static char subname[160];

static void
enter_sub(const char *group, const char *sub)
{
	snprintf(subname, sizeof(subname), "tongban %s %s", group, sub);
	cli_cmd = subname;
}

static void
fmt_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "@%lld", (long long)t);
}

/* --days N, 1..max */
static int
parse_days(const char *s, unsigned max, unsigned *out)
{
	long long v;

	if (cli_parse_i64(s, &v) != 0 || v < 1 || v > (long long)max)
		return cli_usage_error("--days must be a whole number from 1 to %u, not '%s'", max,
		                       s);
	*out = (unsigned)v;
	return EX_TB_OK;
}

/* ---- ca ---- */

static void
ca_usage(FILE *f)
{
	fprintf(
	    f, "Usage: tongban ca init --dir DIR --name NAME [--id HUB_ID] [--alg p256|ed25519]\n"
	       "                       [--days N] [--pass-file FILE]\n"
	       "                       [--parent PARENT_DIR [--parent-pass-file FILE]]\n"
	       "       tongban ca issue --dir CA_DIR --csr FILE --out CERT [--days N] [--pass-file "
	       "FILE]\n"
	       "                        [--yes]\n"
	       "       tongban ca revoke --dir CA_DIR --cert CERT [--reason R] [--pass-file FILE]\n"
	       "       tongban ca crl --dir CA_DIR --out CRL.pem [--days N] [--pass-file FILE]\n\n"
	       "init    creates a CA in DIR: ca.key (0600), ca.crt, index.txt, crlnumber.\n"
	       "        Without --parent a self-signed root \"CN=NAME\" (default 3650 days);\n"
	       "        with --parent an intermediate (province) CA signed by the CA in\n"
	       "        PARENT_DIR (default 1825 days, path length 0), \"CN=NAME,\n"
	       "        serialNumber=HUB_ID\" when --id is given.  Default algorithm p256.\n"
	       "issue   checks a node CSR (signature, member id, key type) and writes a node\n"
	       "        certificate to CERT (refuses to overwrite): digitalSignature, EKU\n"
	       "        serverAuth+clientAuth, the CSR's subject and DNS/IP/URI names,\n"
	       "        default 365 days (cut to the CA's own expiry; an explicit --days\n"
	       "        past it is refused, ca.validity, naming the CA's expiry).  A CA with\n"
	       "        an id (a province CA, serialNumber=320000) issues only member ids of\n"
	       "        its division (32xxxx; else ca.prefix); the root issues any.  On a\n"
	       "        terminal it shows the request (subject, member id, key id, validity)\n"
	       "        and asks before signing; --yes signs without asking, as it does when\n"
	       "        standard input is not a terminal (scripts).  Prints serial, member id\n"
	       "        and expiry.\n"
	       "revoke  marks a certificate this CA issued as revoked in index.txt.  R is\n"
	       "        one of unspecified (default), keyCompromise, cACompromise,\n"
	       "        affiliationChanged, superseded, cessationOfOperation,\n"
	       "        certificateHold, privilegeWithdrawn.\n"
	       "crl     writes a signed CRL of every revoked serial to CRL.pem (replacing\n"
	       "        it), next update in N days (default 30).\n\n"
	       "--pass-file FILE: the CA key is (or is to be) encrypted with the password\n"
	       "on FILE's first line (PKCS#8, PBES2 AES-256).  Without it an encrypted key's\n"
	       "password is asked for on a terminal (not echoed), else refused.\n"
	       "Exit status: 0 done, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

static int
ca_init(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"id", required_argument, NULL, 'i'},
	                                     {"alg", required_argument, NULL, 'a'},
	                                     {"days", required_argument, NULL, 'D'},
	                                     {"parent", required_argument, NULL, 'P'},
	                                     {"pass-file", required_argument, NULL, 'p'},
	                                     {"parent-pass-file", required_argument, NULL, 'q'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *dir = NULL, *alg = "p256", *parentdir = NULL, *passf = NULL, *ppassf = NULL;
	struct tb_ca_spec spec = {NULL, NULL, TB_ALG_P256, 0};
	struct tb_ca *parent = NULL;
	char *pass = NULL, *ppass = NULL;
	struct tb_diag d;
	int c, rc;

	enter_sub("ca", "init");
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'n': spec.name = optarg; break;
		case 'i': spec.id = optarg; break;
		case 'a': alg = optarg; break;
		case 'D':
			if ((rc = parse_days(optarg, 36500, &spec.days)) != EX_TB_OK)
				return rc;
			break;
		case 'P': parentdir = optarg; break;
		case 'p': passf = optarg; break;
		case 'q': ppassf = optarg; break;
		case 'h': ca_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (dir == NULL || spec.name == NULL)
		return cli_usage_error("--dir and --name are required");
	if ((spec.alg = tb_alg_from_name(alg)) == TB_ALG_NONE)
		return cli_usage_error("--alg must be p256 or ed25519, not '%s'", alg);
	if (ppassf != NULL && parentdir == NULL)
		return cli_usage_error("--parent-pass-file needs --parent");
	if (spec.days == 0)
		spec.days = parentdir != NULL ? TB_CA_SUB_DAYS : TB_CA_ROOT_DAYS;
	pass = cli_read_pass(passf, &rc);
	if (rc != EX_TB_OK)
		return rc;
	if (parentdir != NULL) {
		char kp[4096];
		snprintf(kp, sizeof(kp), "%s/ca.key", parentdir);
		ppass = cli_key_pass(kp, ppassf, &rc);
		if (rc != EX_TB_OK)
			goto out;
	}
	if (parentdir != NULL && (parent = tb_ca_open(parentdir, ppass, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	tb_diag_clear(&d);
	if (tb_ca_create(dir, &spec, pass, parent, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	printf("created %s CA \"CN=%s%s%s\" in %s\n", parent != NULL ? "intermediate" : "root",
	       spec.name, spec.id != NULL ? ", serialNumber=" : "", spec.id != NULL ? spec.id : "",
	       dir);
	rc = EX_TB_OK;
out:
	tb_ca_free(parent);
	cli_free_pass(pass);
	cli_free_pass(ppass);
	return rc;
}

/* Options shared by issue, revoke and crl. */
struct ca_args {
	const char *dir, *passf, *out, *csr, *cert, *reason;
	unsigned days;
	bool yes;
};

static int
ca_parse(int argc, char **argv, struct ca_args *a, const char *allowed)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},  {"pass-file", required_argument, NULL, 'p'},
	    {"out", required_argument, NULL, 'o'},  {"csr", required_argument, NULL, 'c'},
	    {"cert", required_argument, NULL, 'C'}, {"reason", required_argument, NULL, 'r'},
	    {"days", required_argument, NULL, 'D'}, {"yes", no_argument, NULL, 'y'},
	    {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0}};
	int c, rc;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			ca_usage(stdout);
			return -1;
		}
		if (c == '?' || strchr(allowed, c) == NULL)
			return cli_usage_error("unknown option");
		switch (c) {
		case 'd': a->dir = optarg; break;
		case 'p': a->passf = optarg; break;
		case 'o': a->out = optarg; break;
		case 'c': a->csr = optarg; break;
		case 'C': a->cert = optarg; break;
		case 'r': a->reason = optarg; break;
		case 'y': a->yes = true; break;
		case 'D':
			if ((rc = parse_days(optarg, 36500, &a->days)) != EX_TB_OK)
				return rc;
			break;
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (a->dir == NULL)
		return cli_usage_error("--dir is required");
	return EX_TB_OK;
}

static struct tb_ca *
ca_open_cli(const struct ca_args *a, int *rc)
{
	struct tb_ca *ca;
	struct tb_diag d;
	char kp[4096];
	char *pass;

	snprintf(kp, sizeof(kp), "%s/ca.key", a->dir);
	pass = cli_key_pass(kp, a->passf, rc);
	if (*rc != EX_TB_OK)
		return NULL;
	if ((ca = tb_ca_open(a->dir, pass, &d)) == NULL)
		*rc = cli_fail_diag(&d);
	cli_free_pass(pass);
	return ca;
}

/* What ca issue is about to sign, on stderr (it asks there). */
static int
issue_summary(const struct tb_ca *ca, const struct tb_csr *csr, int64_t until)
{
	uint8_t kid[TB_KEYID_LEN];
	char hex[2 * TB_KEYID_LEN + 1], nb[32], na[32];

	if (tb_csr_key_id(csr, kid) != TB_OK)
		return cli_fail(EX_TB_INTERNAL, "cannot read the request's key");
	tb_hex_encode(kid, TB_KEYID_LEN, hex);
	fmt_time((int64_t)time(NULL), nb, sizeof(nb));
	fmt_time(until, na, sizeof(na));
	fprintf(stderr,
	        "Request to sign with \"%s\":\n"
	        "  subject:    %s\n  member id:  %s\n  key id:     %s\n"
	        "  validity:   %s to %s\n",
	        tb_cert_subject(tb_ca_cert(ca)), tb_csr_subject(csr), tb_csr_member_id(csr), hex,
	        nb, na);
	return EX_TB_OK;
}

/* The CA's policy on a request (division, --days), then the operator's
 * yes on a terminal. */
static int
issue_check(const struct tb_ca *ca, const struct tb_csr *csr, const struct ca_args *a)
{
	int64_t until =
	    (int64_t)time(NULL) + (int64_t)(a->days ? a->days : TB_CA_NODE_DAYS) * 86400;
	struct tb_diag d;
	int rc;

	if (tb_ca_check_request(ca, csr, &d) != TB_OK ||
	    (a->days != 0 && tb_ca_check_until(ca, until, &d) != TB_OK))
		return cli_fail_diag(&d);
	if (until > tb_cert_not_after(tb_ca_cert(ca)))
		until = tb_cert_not_after(tb_ca_cert(ca));
	if (a->yes || !isatty(STDIN_FILENO))
		return EX_TB_OK;
	if ((rc = issue_summary(ca, csr, until)) != EX_TB_OK)
		return rc;
	if (!cli_confirm("Sign it? [y/N] "))
		return cli_fail(EX_TB_REFUSED, "not signed (the operator said no)");
	return EX_TB_OK;
}

static int
ca_issue(int argc, char **argv)
{
	struct ca_args a;
	struct tb_ca *ca = NULL;
	struct tb_csr *csr = NULL;
	struct tb_cert *cert = NULL;
	struct tb_buf out;
	struct tb_diag d;
	char serial[TB_CERT_SERIAL_HEX_MAX], when[32];
	int rc;

	enter_sub("ca", "issue");
	if ((rc = ca_parse(argc, argv, &a, "dpocDy")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if (a.csr == NULL || a.out == NULL)
		return cli_usage_error("--csr and --out are required");
	if (access(a.out, F_OK) == 0)
		return cli_fail(EX_TB_IO, "%s: file exists; refusing to overwrite it", a.out);
	tb_buf_init(&out);
	/* The request first: a bad CSR is refused without touching the key. */
	if ((csr = tb_csr_load(a.csr, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((ca = ca_open_cli(&a, &rc)) == NULL)
		goto out;
	tb_diag_clear(&d);
	if ((rc = issue_check(ca, csr, &a)) != EX_TB_OK)
		goto out;
	if (tb_ca_issue(ca, csr, a.days ? a.days : TB_CA_NODE_DAYS, &out, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_file_write(a.out, out.data, out.len, 0644, 1, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((cert = tb_cert_import(out.data, out.len, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_cert_serial_hex(cert, serial) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "certificate serial unreadable");
		goto out;
	}
	fmt_time(tb_cert_not_after(cert), when, sizeof(when));
	printf("issued %s serial %s to \"%s\" until %s\n", tb_csr_member_id(csr), serial,
	       tb_cert_subject(cert), when);
	rc = EX_TB_OK;
out:
	tb_cert_free(cert);
	tb_csr_free(csr);
	tb_ca_free(ca);
	tb_buf_free(&out);
	return rc;
}

static int
ca_revoke(int argc, char **argv)
{
	struct ca_args a;
	struct tb_ca *ca = NULL;
	struct tb_cert *cert = NULL;
	struct tb_diag d;
	char serial[TB_CERT_SERIAL_HEX_MAX];
	int reason = 0, rc;

	enter_sub("ca", "revoke");
	if ((rc = ca_parse(argc, argv, &a, "dpCr")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if (a.cert == NULL)
		return cli_usage_error("--cert is required");
	if (a.reason != NULL && (reason = tb_crl_reason_from_name(a.reason)) < 0)
		return cli_usage_error("unknown --reason '%s'", a.reason);
	if ((cert = tb_cert_load(a.cert, &d)) == NULL)
		return cli_fail_diag(&d);
	if ((ca = ca_open_cli(&a, &rc)) == NULL)
		goto out;
	tb_diag_clear(&d);
	if (tb_ca_revoke(ca, cert, reason, (int64_t)time(NULL), &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_cert_serial_hex(cert, serial) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "certificate serial unreadable");
		goto out;
	}
	printf("revoked serial %s (\"%s\", %s); publish a new CRL with 'tongban ca crl'\n", serial,
	       tb_cert_subject(cert), tb_crl_reason_name(reason));
	rc = EX_TB_OK;
out:
	tb_ca_free(ca);
	tb_cert_free(cert);
	return rc;
}

static int
ca_crl(int argc, char **argv)
{
	struct ca_args a;
	struct tb_ca *ca = NULL;
	struct tb_crl *crl = NULL;
	struct tb_buf out;
	struct tb_diag d;
	int rc;

	enter_sub("ca", "crl");
	if ((rc = ca_parse(argc, argv, &a, "dpoD")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if (a.out == NULL)
		return cli_usage_error("--out is required");
	if (a.days > 3650)
		return cli_usage_error("--days must be at most 3650 for a CRL");
	tb_buf_init(&out);
	if ((ca = ca_open_cli(&a, &rc)) == NULL)
		goto out;
	tb_diag_clear(&d);
	if (tb_ca_crl(ca, a.days ? a.days : TB_CA_CRL_DAYS, (int64_t)time(NULL), &out, &d) !=
	        TB_OK ||
	    tb_file_write(a.out, out.data, out.len, 0644, 0, &d) != TB_OK ||
	    (crl = tb_crl_import(out.data, out.len, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	printf("wrote %s: %zu revoked certificate(s)\n", a.out, tb_crl_count(crl));
	rc = EX_TB_OK;
out:
	tb_crl_free(crl);
	tb_ca_free(ca);
	tb_buf_free(&out);
	return rc;
}

int
cmd_ca(int argc, char **argv)
{
	if (argc < 2) {
		ca_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		ca_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "init") == 0)
		return ca_init(argc - 1, argv + 1);
	if (strcmp(argv[1], "issue") == 0)
		return ca_issue(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return ca_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "crl") == 0)
		return ca_crl(argc - 1, argv + 1);
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- node ---- */

static void
node_usage(FILE *f)
{
	fprintf(f, "Usage: tongban node init --dir DIR --id MEMBER_ID --name NAME\n"
	           "                         --endpoint coaps://HOST:PORT [--org ORG]\n"
	           "                         [--alg p256|ed25519] [--pass-file FILE]\n\n"
	           "Creates a node's key DIR/node.key (mode 0600; DIR is created 0700) and a\n"
	           "certificate request DIR/node.csr with subject\n"
	           "\"[O=ORG,] CN=NAME, serialNumber=MEMBER_ID\" asking for the endpoint's host\n"
	           "(DNS name or IP address) and the endpoint URI as subjectAltNames.  Send\n"
	           "node.csr to the province CA; the key never leaves DIR.  MEMBER_ID is six\n"
	           "digits, the first 1-9 (a GB/T 2260 code).  The default algorithm p256 is\n"
	           "the one DTLS needs; ed25519 suits a separate message-signing key.\n"
	           "--pass-file FILE encrypts node.key with the password on FILE's first line.\n"
	           "Exit status: 0 done, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

static int
node_init(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"id", required_argument, NULL, 'i'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"endpoint", required_argument, NULL, 'e'},
	                                     {"org", required_argument, NULL, 'o'},
	                                     {"alg", required_argument, NULL, 'a'},
	                                     {"pass-file", required_argument, NULL, 'p'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *dir = NULL, *id = NULL, *name = NULL, *ep = NULL, *org = NULL;
	const char *alg = "p256", *passf = NULL;
	char *pass = NULL, *kp = NULL, *cp = NULL;
	struct tb_key *key = NULL;
	struct tb_csr *csr = NULL;
	struct tb_buf pem;
	struct tb_diag d;
	size_t n;
	int c, rc;

	enter_sub("node", "init");
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'i': id = optarg; break;
		case 'n': name = optarg; break;
		case 'e': ep = optarg; break;
		case 'o': org = optarg; break;
		case 'a': alg = optarg; break;
		case 'p': passf = optarg; break;
		case 'h': node_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (dir == NULL || id == NULL || name == NULL || ep == NULL)
		return cli_usage_error("--dir, --id, --name and --endpoint are required");
	if (tb_alg_from_name(alg) == TB_ALG_NONE)
		return cli_usage_error("--alg must be p256 or ed25519, not '%s'", alg);
	tb_buf_init(&pem);
	n = strlen(dir) + 16;
	if ((kp = malloc(n)) == NULL || (cp = malloc(n)) == NULL) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(kp, n, "%s/node.key", dir);
	snprintf(cp, n, "%s/node.csr", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = cli_fail(EX_TB_IO, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (access(kp, F_OK) == 0 || access(cp, F_OK) == 0) {
		rc = cli_fail(EX_TB_IO,
		              "%s already holds node.key or node.csr; refusing to overwrite", dir);
		goto out;
	}
	pass = cli_read_pass(passf, &rc);
	if (rc != EX_TB_OK)
		goto out;
	/* Build the CSR before saving anything so a bad id or endpoint leaves
	 * no stray key behind. */
	if ((key = tb_key_generate(tb_alg_from_name(alg), &d)) == NULL ||
	    (csr = tb_csr_new(key, id, name, org, ep, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_csr_pem(csr, &pem) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "cannot encode the CSR");
		goto out;
	}
	if (tb_key_save(key, kp, pass, &d) != TB_OK ||
	    tb_file_write(cp, pem.data, pem.len, 0644, 1, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	printf("wrote %s and %s for \"%s\"\n", kp, cp, tb_csr_subject(csr));
	rc = EX_TB_OK;
out:
	tb_csr_free(csr);
	tb_key_free(key);
	cli_free_pass(pass);
	tb_buf_free(&pem);
	free(kp);
	free(cp);
	return rc;
}

int
cmd_node(int argc, char **argv)
{
	if (argc < 2) {
		node_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		node_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "init") == 0)
		return node_init(argc - 1, argv + 1);
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- cert ---- */

static void
cert_usage(FILE *f)
{
	fprintf(f, "Usage: tongban cert verify --ca ROOT.crt [--ca ROOT2.crt]...\n"
	           "                           [--chain INTERMEDIATE.crt]... [--crl CRL.pem]...\n"
	           "                           [--usage node|ca|any] [--at UNIX_TIME] CERT\n"
	           "       tongban cert show [--json] CERT\n\n"
	           "verify  checks that CERT chains to a --ca trust anchor through the given\n"
	           "        intermediates, that every signature verifies, that nothing on the\n"
	           "        path is revoked by a given CRL (a CRL from a CA on the path must be\n"
	           "        correctly signed and current), that every certificate on the path\n"
	           "        is within its validity period (now, or --at), and that CERT may be\n"
	           "        used as --usage says (node, the default: not a CA, digitalSignature,\n"
	           "        EKU serverAuth and clientAuth; ca: a CA that may sign certificates;\n"
	           "        any: no usage check).  Prints \"ok MEMBER_ID\" (or \"ok -\" without a\n"
	           "        member id) and exits 0, or prints one line naming the reason and\n"
	           "        exits 1: cert.expired, cert.not-yet-valid, cert.unknown-issuer,\n"
	           "        cert.bad-signature, cert.revoked, cert.usage, cert.self-signed,\n"
	           "        crl (unusable CRL), cert (malformed file).\n"
	           "show    prints subject, member id, issuer, serial, validity, CA flag, key\n"
	           "        algorithm, key id (SHA-256 of the SubjectPublicKeyInfo, as in\n"
	           "        envelopes) and SHA-256 fingerprint; --json: one object with keys\n"
	           "        subject, member_id (null without), issuer, serial, not_before,\n"
	           "        not_after, ca, key, key_id, fingerprint.  A certificate request\n"
	           "        is refused with a pointer to 'tongban csr show'.\n"
	           "Exit status: 0 ok, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

static void
free_certs(struct tb_cert **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tb_cert_free(v[i]);
}

/* --usage node|ca|any. */
static bool
parse_usage(const char *s, enum tb_usage *usage)
{
	if (strcmp(s, "node") == 0)
		*usage = TB_USAGE_NODE;
	else if (strcmp(s, "ca") == 0)
		*usage = TB_USAGE_CA;
	else if (strcmp(s, "any") == 0)
		*usage = TB_USAGE_ANY;
	else
		return false;
	return true;
}

/* Each --crl into the store. */
static int
add_crls(struct tb_castore *t, const char *const *crls, size_t ncrls)
{
	struct tb_diag d;

	for (size_t i = 0; i < ncrls; i++) {
		struct tb_crl *crl = tb_crl_load(crls[i], &d);
		if (crl == NULL || tb_castore_add_crl(t, crl, &d) != TB_OK) {
			tb_crl_free(crl);
			return cli_fail_diag(&d);
		}
		tb_crl_free(crl);
	}
	return EX_TB_OK;
}

static int
cert_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"ca", required_argument, NULL, 'c'},
	                                     {"chain", required_argument, NULL, 'i'},
	                                     {"crl", required_argument, NULL, 'r'},
	                                     {"usage", required_argument, NULL, 'u'},
	                                     {"at", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *cas[MAX_FILES], *chains[MAX_FILES], *crls[MAX_FILES];
	size_t ncas = 0, nchains = 0, ncrls = 0;
	struct tb_cert *anchors[MAX_FILES], *inter[MAX_FILES], *leaf = NULL;
	size_t nanchors = 0, ninter = 0;
	struct tb_castore *t = NULL;
	enum tb_usage usage = TB_USAGE_NODE;
	long long at = (long long)time(NULL);
	char id[TB_MEMBER_ID_MAX];
	struct tb_diag d;
	int c, rc;

	enter_sub("cert", "verify");
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (ncas == MAX_FILES)
				return cli_usage_error("at most %d --ca", MAX_FILES);
			cas[ncas++] = optarg;
			break;
		case 'i':
			if (nchains == MAX_FILES)
				return cli_usage_error("at most %d --chain", MAX_FILES);
			chains[nchains++] = optarg;
			break;
		case 'r':
			if (ncrls == MAX_FILES)
				return cli_usage_error("at most %d --crl", MAX_FILES);
			crls[ncrls++] = optarg;
			break;
		case 'u':
			if (!parse_usage(optarg, &usage))
				return cli_usage_error("--usage must be node, ca or any");
			break;
		case 't':
			if (cli_parse_i64(optarg, &at) != 0 || at < 0)
				return cli_usage_error("--at must be Unix seconds");
			break;
		case 'h': cert_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one CERT expected");
	if (ncas == 0)
		return cli_usage_error("--ca is required (the federation root certificate)");
	if ((t = tb_castore_new()) == NULL)
		return cli_fail(EX_TB_INTERNAL, "out of memory");
	for (size_t i = 0; i < ncas; i++) {
		if ((anchors[nanchors] = tb_cert_load(cas[i], &d)) == NULL) {
			rc = cli_fail_diag(&d);
			goto out;
		}
		if (tb_castore_add_ca(t, anchors[nanchors++], &d) != TB_OK) {
			rc = cli_fail_diag(&d);
			goto out;
		}
	}
	for (size_t i = 0; i < nchains; i++) {
		if ((inter[ninter] = tb_cert_load(chains[i], &d)) == NULL) {
			rc = cli_fail_diag(&d);
			goto out;
		}
		ninter++;
	}
	if ((rc = add_crls(t, crls, ncrls)) != EX_TB_OK)
		goto out;
	if ((leaf = tb_cert_load(argv[optind], &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	tb_diag_clear(&d);
	if (tb_chain_verify(t, leaf, (const struct tb_cert *const *)inter, ninter, usage,
	                    (int64_t)at, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_cert_member_id(leaf, id) != TB_OK)
		snprintf(id, sizeof(id), "-");
	printf("ok %s\n", id);
	rc = EX_TB_OK;
out:
	tb_cert_free(leaf);
	free_certs(anchors, nanchors);
	free_certs(inter, ninter);
	tb_castore_free(t);
	return rc;
}

/* "  key: value" lines, or one JSON object with the same keys. */
struct show {
	bool json;
	int n;
};

static void
show_field(struct show *sh, const char *key, const char *label, const char *val)
{
	if (!sh->json) {
		printf("%-12s %s\n", label, val);
		return;
	}
	printf("%s", sh->n++ == 0 ? "{" : ",");
	cli_json_str(stdout, key);
	putchar(':');
	if (strcmp(val, "-") == 0 && strcmp(key, "member_id") == 0)
		printf("null");
	else if (strcmp(key, "ca") == 0)
		printf("%s", strcmp(val, "yes") == 0 ? "true" : "false");
	else
		cli_json_str(stdout, val);
}

static void
show_end(struct show *sh)
{
	if (sh->json)
		printf("%s}\n", sh->n == 0 ? "{" : "");
}

/* A file that is no certificate but a request: say which command reads it. */
static int
cert_load_fail(const char *path, struct tb_diag *d)
{
	struct tb_diag d2;
	struct tb_csr *csr;

	if (d->code != TB_E_CERT || (csr = tb_csr_load(path, &d2)) == NULL)
		return cli_fail_diag(d);
	tb_csr_free(csr);
	return cli_fail(EX_TB_REFUSED,
	                "%s is a certificate request, not a certificate: use 'tongban csr show %s'",
	                path, path);
}

static int
cert_show(int argc, char **argv)
{
	struct tb_cert *cert;
	struct tb_diag d;
	struct show sh = {false, 0};
	char id[TB_MEMBER_ID_MAX], serial[TB_CERT_SERIAL_HEX_MAX], nb[32], na[32], alg[48];
	char hex[65];
	uint8_t kid[TB_KEYID_LEN], fpr[32];
	int rc;

	enter_sub("cert", "show");
	if ((rc = cli_json_args(argc, argv, cert_usage, &sh.json, "file")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if ((cert = tb_cert_load(argv[optind], &d)) == NULL)
		return cert_load_fail(argv[optind], &d);
	if (tb_cert_member_id(cert, id) != TB_OK)
		snprintf(id, sizeof(id), "-");
	if (tb_cert_serial_hex(cert, serial) != TB_OK)
		snprintf(serial, sizeof(serial), "?");
	fmt_time(tb_cert_not_before(cert), nb, sizeof(nb));
	fmt_time(tb_cert_not_after(cert), na, sizeof(na));
	show_field(&sh, "subject", "subject:", tb_cert_subject(cert));
	show_field(&sh, "member_id", "member id:", id);
	show_field(&sh, "issuer", "issuer:", tb_cert_issuer(cert));
	show_field(&sh, "serial", "serial:", serial);
	show_field(&sh, "not_before", "not before:", nb);
	show_field(&sh, "not_after", "not after:", na);
	show_field(&sh, "ca", "ca:", tb_cert_is_ca(cert) ? "yes" : "no");
	show_field(&sh, "key", "key:", tb_cert_key_desc(cert, alg, sizeof(alg)));
	tb_cert_key_id(cert, kid);
	tb_hex_encode(kid, sizeof(kid), hex);
	show_field(&sh, "key_id", "key id:", hex);
	tb_cert_fingerprint(cert, fpr);
	tb_hex_encode(fpr, sizeof(fpr), hex);
	show_field(&sh, "fingerprint", "fingerprint:", hex);
	show_end(&sh);
	tb_cert_free(cert);
	if (fflush(stdout) != 0)
		return cli_stdout_error(strerror(errno));
	return EX_TB_OK;
}

int
cmd_cert(int argc, char **argv)
{
	if (argc < 2) {
		cert_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cert_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cert_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cert_show(argc - 1, argv + 1);
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- csr ---- */

static void
csr_usage(FILE *f)
{
	fprintf(f, "Usage: tongban csr show [--json] CSR\n\n"
	           "show  checks a certificate request (its self-signature, member id, key\n"
	           "      type) and prints its subject, member id, key algorithm and key id\n"
	           "      (SHA-256 of the SubjectPublicKeyInfo), the values a province CA\n"
	           "      confirms with the member before 'tongban ca issue'; --json: one\n"
	           "      object with keys subject, member_id, key, key_id.\n"
	           "Exit status: 0 ok, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

static int
csr_show(int argc, char **argv)
{
	struct tb_csr *csr;
	struct tb_diag d;
	struct show sh = {false, 0};
	uint8_t kid[TB_KEYID_LEN];
	char hex[2 * TB_KEYID_LEN + 1];
	int rc;

	enter_sub("csr", "show");
	if ((rc = cli_json_args(argc, argv, csr_usage, &sh.json, "file")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if ((csr = tb_csr_load(argv[optind], &d)) == NULL) {
		tb_diag_prefix(&d, argv[optind]);
		return cli_fail_diag(&d);
	}
	if (tb_csr_key_id(csr, kid) != TB_OK) {
		tb_csr_free(csr);
		return cli_fail(EX_TB_REFUSED, "%s: cannot read the requested key", argv[optind]);
	}
	tb_hex_encode(kid, TB_KEYID_LEN, hex);
	show_field(&sh, "subject", "subject:", tb_csr_subject(csr));
	show_field(&sh, "member_id", "member id:", tb_csr_member_id(csr));
	show_field(&sh, "key", "key:", tb_alg_name(tb_csr_alg(csr)));
	show_field(&sh, "key_id", "key id:", hex);
	show_end(&sh);
	tb_csr_free(csr);
	return EX_TB_OK;
}

int
cmd_csr(int argc, char **argv)
{
	if (argc < 2) {
		csr_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		csr_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "show") == 0)
		return csr_show(argc - 1, argv + 1);
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}
