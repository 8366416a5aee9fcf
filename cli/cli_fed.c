/* SPDX-License-Identifier: Apache-2.0 */
/* cli_fed.c - `tongban trust`, `registry`, `route`, `policy` (federation/). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "../certs/tb_ca.h"
#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_policy.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_route.h"
#include "../federation/tb_trust.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

#define MAX_LIST 64

static char subname[160];

static void
enter_sub(const char *group, const char *sub)
{
	snprintf(subname, sizeof(subname), "tongban %s %s", group, sub);
	cli_cmd = subname;
}

/* The clock lives here, not in federation/: --now overrides it (tests). */
static int
parse_now(const char *s, int64_t *now)
{
	long long v;

	if (s == NULL) {
		*now = (int64_t)time(NULL);
		return EX_TB_OK;
	}
	if (cli_parse_i64(s, &v) != 0 || v < 0)
		return cli_usage_error("--now must be Unix seconds, not '%s'", s);
	*now = v;
	return EX_TB_OK;
}

/* Value of attribute attr ("CN", "O") in an RFC 4514 DN, unescaped. */
static bool
dn_attr(const char *dn, const char *attr, char *out, size_t outlen)
{
	size_t al = strlen(attr);
	const char *p = dn;

	while (*p != '\0') {
		if (strncmp(p, attr, al) == 0 && p[al] == '=') {
			size_t n = 0;
			for (p += al + 1; *p != '\0' && *p != ','; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (n + 1 < outlen)
					out[n++] = *p;
			}
			out[n] = '\0';
			return n > 0;
		}
		/* next attribute: skip to an unescaped ',' or '+' */
		while (*p != '\0' && *p != ',' && *p != '+') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			p++;
		}
		if (*p != '\0')
			p++;
		while (*p == ' ')
			p++;
	}
	return false;
}

static struct tb_reg *
load_reg(const char *path, int *rc)
{
	struct tb_buf b;
	struct tb_diag d;
	struct tb_reg *reg = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, TB_REG_MAX_SIZE, &b, &d) != TB_OK) {
		*rc = cli_fail_diag(&d);
		goto out;
	}
	if ((reg = tb_reg_parse(b.data, b.len, &d)) == NULL) {
		tb_diag_prefix(&d, path);
		*rc = cli_fail_diag(&d);
	}
out:
	tb_buf_free(&b);
	return reg;
}

static struct tb_trust *
load_trust(const char *path, int *rc)
{
	struct tb_buf b;
	struct tb_diag d;
	struct tb_trust *t = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, TB_TRUST_MAX_SIZE, &b, &d) != TB_OK) {
		*rc = cli_fail_diag(&d);
		goto out;
	}
	if ((t = tb_trust_parse(b.data, b.len, &d)) == NULL) {
		tb_diag_prefix(&d, path);
		*rc = cli_fail_diag(&d);
	}
out:
	tb_buf_free(&b);
	return t;
}

static int
save_reg(const struct tb_reg *reg, const char *path, bool exclusive)
{
	struct tb_buf b;
	struct tb_diag d;
	int rc = EX_TB_OK;

	tb_buf_init(&b);
	if (tb_reg_serialize(reg, &b) != TB_OK || tb_buf_addc(&b, '\n') != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if (tb_file_write(path, b.data, b.len, 0644, exclusive, &d) != TB_OK)
		rc = cli_fail_diag(&d);
out:
	tb_buf_free(&b);
	return rc;
}

/* ---- trust ---- */

static void
trust_usage(FILE *f)
{
	fprintf(f,
	        "Usage: tongban trust new --root ROOT.crt --authority AUTH.crt [--authority ...]\n"
	        "                         --threshold K --out TRUST.json [--federation NAME]\n"
	        "       tongban trust show [--json] TRUST.json\n\n"
	        "new   writes a node's trust anchor for registries: the federation root\n"
	        "      certificate and the registry authorities (the public keys of the\n"
	        "      AUTH certificates, e.g. the province CAs), of which K distinct ones\n"
	        "      must sign a registry (1 <= K <= number of authorities).  An\n"
	        "      AUTH file may be a bare PUBLIC KEY PEM instead (an sm2 authority,\n"
	        "      named by its file name).  The federation name defaults to the\n"
	        "      root's O, else its CN; when that is not a federation name (1-64\n"
	        "      of a-z 0-9 . -) pass --federation NAME.  Refuses to overwrite\n"
	        "      TRUST.json.\n"
	        "show  prints the federation, the pinned root's subject and SHA-256\n"
	        "      fingerprint, the threshold and the authorities; --json: one object\n"
	        "      (federation, root {subject, fingerprint, key_id}, threshold,\n"
	        "      authorities [{key_id, alg, name}]).\n"
	        "Exit status: 0 done, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

/* True when path holds a bare "PUBLIC KEY" PEM block (no certificate):
 * how an SM2 key, which has no certificate here, is given. */
static bool
bare_pub(const char *path)
{
	struct tb_buf b;
	struct tb_diag d;
	bool yes = false;

	tb_buf_init(&b);
	if (tb_file_read(path, 64 * 1024, &b, &d) == TB_OK)
		yes = memmem(b.data, b.len, "-----BEGIN PUBLIC KEY-----", 26) != NULL &&
		      memmem(b.data, b.len, "-----BEGIN CERTIFICATE-----", 27) == NULL;
	tb_buf_free(&b);
	return yes;
}

/* Each --authority certificate's key, named by its CN, into t; or a bare
 * public key PEM (an SM2 authority), named by its file name. */
static int
add_authorities(struct tb_trust *t, const char *const *auth, size_t nauth)
{
	struct tb_cert *ac = NULL;
	struct tb_pub *pub = NULL;
	struct tb_buf der;
	struct tb_diag d;
	char name[256];
	int rc = EX_TB_OK;

	tb_buf_init(&der);
	for (size_t i = 0; i < nauth; i++) {
		if (bare_pub(auth[i])) { /* e.g. an SM2 authority: no certificate */
			const char *b = strrchr(auth[i], '/');
			if ((pub = tb_pub_load(auth[i], &d)) == NULL) {
				rc = cli_fail_diag(&d);
				goto out;
			}
			snprintf(name, sizeof(name), "%s", b != NULL ? b + 1 : auth[i]);
			if (strrchr(name, '.') != NULL)
				*strrchr(name, '.') = '\0';
		} else if ((ac = tb_cert_load(auth[i], &d)) == NULL ||
		           (pub = tb_cert_pub(ac, &d)) == NULL) {
			tb_diag_prefix(&d, auth[i]);
			rc = cli_fail_diag(&d);
			goto out;
		} else if (!dn_attr(tb_cert_subject(ac), "CN", name, sizeof(name)))
			snprintf(name, sizeof(name), "%s", tb_cert_subject(ac));
		tb_buf_reset(&der);
		if (tb_pub_spki(pub, &der) != TB_OK) {
			rc = cli_fail(EX_TB_INTERNAL, "%s: cannot export the public key", auth[i]);
			goto out;
		}
		if (tb_trust_add_authority(t, der.data, der.len, name, &d) != TB_OK) {
			tb_diag_prefix(&d, auth[i]);
			rc = cli_fail_diag(&d);
			goto out;
		}
		tb_pub_free(pub);
		tb_cert_free(ac);
		pub = NULL;
		ac = NULL;
	}
out:
	tb_pub_free(pub);
	tb_cert_free(ac);
	tb_buf_free(&der);
	return rc;
}

static int
trust_new(int argc, char **argv)
{
	static const struct option opts[] = {{"root", required_argument, NULL, 'r'},
	                                     {"authority", required_argument, NULL, 'a'},
	                                     {"threshold", required_argument, NULL, 'k'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"federation", required_argument, NULL, 'f'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *root = NULL, *outp = NULL, *fed = NULL, *auth[MAX_LIST];
	size_t nauth = 0;
	long long k = 0;
	struct tb_cert *rc_cert = NULL;
	struct tb_trust *t = NULL;
	struct tb_buf pem, out;
	struct tb_diag d;
	char fedbuf[128];
	uint8_t kid[TB_KEYID_LEN];
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': root = optarg; break;
		case 'a':
			if (nauth == MAX_LIST)
				return cli_usage_error("at most %d --authority", MAX_LIST);
			auth[nauth++] = optarg;
			break;
		case 'k':
			if (cli_parse_i64(optarg, &k) != 0 || k < 1)
				return cli_usage_error("--threshold must be a positive number");
			break;
		case 'o': outp = optarg; break;
		case 'f': fed = optarg; break;
		case 'h': trust_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (root == NULL || nauth == 0 || k == 0 || outp == NULL)
		return cli_usage_error("--root, --authority, --threshold and --out are required");
	if ((size_t)k > nauth)
		return cli_usage_error("--threshold %lld exceeds the %zu authorities", k, nauth);
	tb_buf_init(&pem);
	tb_buf_init(&out);
	if ((rc_cert = tb_cert_load(root, &d)) == NULL) {
		tb_diag_prefix(&d, root);
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (fed == NULL) {
		if (!dn_attr(tb_cert_subject(rc_cert), "O", fedbuf, sizeof(fedbuf)) &&
		    !dn_attr(tb_cert_subject(rc_cert), "CN", fedbuf, sizeof(fedbuf))) {
			rc = cli_usage_error(
			    "cannot take a federation name from %s; give --federation", root);
			goto out;
		}
		fed = fedbuf;
	}
	if ((t = tb_trust_new(fed, &d)) == NULL) {
		if (fed == fedbuf && d.code == TB_E_FIELD_VALUE)
			rc = cli_fail(
			    EX_TB_USAGE,
			    "the root's name \"%s\" is not a federation name (1-64 of "
			    "a-z 0-9 . -): pass --federation NAME, e.g. --federation huaihai",
			    fedbuf);
		else
			rc = cli_fail_diag(&d);
		goto out;
	}
	tb_cert_key_id(rc_cert, kid);
	if (tb_cert_pem(rc_cert, &pem) != TB_OK ||
	    tb_trust_set_root(t, (const char *)pem.data, pem.len, kid, &d) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "cannot store the root certificate");
		goto out;
	}
	if ((rc = add_authorities(t, auth, nauth)) != EX_TB_OK)
		goto out;
	if (tb_trust_set_threshold(t, (unsigned)k, &d) != TB_OK ||
	    tb_trust_serialize(t, &out, &d) != TB_OK || tb_buf_addc(&out, '\n') != TB_OK ||
	    tb_file_write(outp, out.data, out.len, 0644, 1, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	printf("trust anchor for %s: %zu authorities, threshold %lld\n", fed, nauth, k);
out:
	tb_cert_free(rc_cert);
	tb_trust_free(t);
	tb_buf_free(&pem);
	tb_buf_free(&out);
	return rc;
}

static void
json_hex(const uint8_t *v, size_t n)
{
	char hex[2 * 64 + 1];

	tb_hex_encode(v, n, hex);
	cli_json_str(stdout, hex);
}

static int
trust_show(int argc, char **argv)
{
	struct tb_trust *t;
	struct tb_cert *root = NULL;
	struct tb_diag d;
	const char *pem;
	int rc = EX_TB_OK;
	bool json;
	char hex[2 * TB_KEYID_LEN + 1];
	uint8_t kid[TB_KEYID_LEN], fpr[32];

	if ((rc = cli_json_args(argc, argv, trust_usage, &json, "TRUST.json")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if ((t = load_trust(argv[optind], &rc)) == NULL)
		return rc;
	pem = tb_trust_root_pem(t);
	if (pem == NULL || (root = tb_cert_import((const uint8_t *)pem, strlen(pem), &d)) == NULL) {
		rc =
		    cli_fail(EX_TB_REFUSED, "%s: the root certificate is unreadable", argv[optind]);
		goto out;
	}
	tb_cert_fingerprint(root, fpr);
	tb_cert_key_id(root, kid);
	if (json) {
		printf("{\"federation\":");
		cli_json_str(stdout, tb_trust_federation(t));
		printf(",\"root\":{\"subject\":");
		cli_json_str(stdout, tb_cert_subject(root));
		printf(",\"fingerprint\":");
		json_hex(fpr, sizeof(fpr));
		printf(",\"key_id\":");
		json_hex(kid, sizeof(kid));
		printf("},\"threshold\":%u,\"authorities\":[", tb_trust_threshold(t));
	} else {
		tb_hex_encode(fpr, sizeof(fpr), hex);
		printf("federation %s\nroot %s\nroot_fingerprint sha256:%s\nthreshold %u of %zu\n",
		       tb_trust_federation(t), tb_cert_subject(root), hex, tb_trust_threshold(t),
		       tb_trust_count(t));
	}
	for (size_t i = 0; i < tb_trust_count(t); i++) {
		const char *alg = tb_alg_name(tb_pub_alg(tb_trust_pub(t, i)));
		tb_trust_kid(t, i, kid);
		if (json) {
			printf("%s{\"key_id\":", i == 0 ? "" : ",");
			json_hex(kid, sizeof(kid));
			printf(",\"alg\":\"%s\",\"name\":", alg);
			cli_json_str(stdout, tb_trust_name(t, i));
			printf("}");
			continue;
		}
		tb_hex_encode(kid, TB_KEYID_LEN, hex);
		printf("authority %s %s %s\n", hex, alg, tb_trust_name(t, i));
	}
	if (json)
		printf("]}\n");
out:
	tb_cert_free(root);
	tb_trust_free(t);
	return rc;
}

int
cmd_trust(int argc, char **argv)
{
	if (argc < 2) {
		trust_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		trust_usage(stdout);
		return EX_TB_OK;
	}
	enter_sub("trust", argv[1]);
	if (strcmp(argv[1], "new") == 0)
		return trust_new(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return trust_show(argc - 1, argv + 1);
	cli_cmd = "tongban trust";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- registry ---- */

static void
registry_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tongban registry new --federation NAME --out REG [--valid-days N] [--now T]\n"
	    "       tongban registry add REG --cert CERT [--sign-cert CERT] --role city|hub\n"
	    "                    (--trust TRUST.json | --ca ROOT.crt) [--chain CA.crt]...\n"
	    "                    [--parent HUB_ID] [--endpoint URI]... [--name NAME]\n"
	    "                    [--service CODE=PREFIX[,PREFIX]...]... [--status S]\n"
	    "       tongban registry add-key REG --cert CERT [--use tls|sign|both]\n"
	    "                    (--trust TRUST.json | --ca ROOT.crt) [--chain CA.crt]...\n"
	    "       tongban registry remove-key REG (--cert CERT | --kid HEX)\n"
	    "       tongban registry remove-member REG --member ID\n"
	    "       tongban registry set REG [--member ID [--status active|suspended|revoked]\n"
	    "                    [--endpoint URI]...]\n"
	    "                    [--valid-days N [--now T]]\n"
	    "       tongban registry revoke REG (--cert CERT | --kid HEX)\n"
	    "       tongban registry key REG (--add CERT [--use tls|sign|both] |\n"
	    "                    --remove CERT | --remove-kid HEX)\n"
	    "                    [--trust TRUST.json | --ca ROOT.crt] [--chain CA.crt]...\n"
	    "       tongban registry policy REG [--default allow|deny] [--clear]\n"
	    "                    [--rule 'effect=allow|deny;services=*|CODE,..;ids=ID,..;\n"
	    "                            roles=city,hub;regions=PREFIX,..']...\n"
	    "       tongban registry sign REG --key KEY --cert CERT [--trust TRUST.json]\n"
	    "                    [--pass-file FILE]\n"
	    "       tongban registry verify REG --trust TRUST.json [--previous OLDREG] [--now T]\n"
	    "                    [--json]\n"
	    "       tongban registry show [--json] REG\n"
	    "       tongban registry diff [--json] OLD NEW\n"
	    "       tongban registry install --node CONFIG REG\n\n"
	    "new     an empty registry, serial 1, valid from now for N days (default 90).\n"
	    "add     a member: id from the certificate's subject serialNumber, name from\n"
	    "        its CN (or --name), key from the certificate (use \"both\"; with\n"
	    "        --sign-cert, \"tls\" for --cert and \"sign\" for --sign-cert, which\n"
	    "        may be a bare PUBLIC KEY PEM: an sm2 message-signing key).  A\n"
	    "        member without --endpoint is reached through its --parent hub.\n"
	    "        The certificates must chain to the federation root, the root of\n"
	    "        --trust's anchor or --ca's certificate (one is required), through\n"
	    "        the province CA certificates given with --chain or following the\n"
	    "        member's in its file; else refused (cert.unknown-issuer, ...).\n"
	    "add-key lists a certificate's key (checked as for add) under the member\n"
	    "        its subject serialNumber names, use \"both\" unless --use says: a\n"
	    "        rotation lists the new key beside the old (both valid), then\n"
	    "remove-key drops the old one (by certificate or key id; not a member's\n"
	    "        last key).\n"
	    "remove-member drops a member and its keys (not a hub others name as\n"
	    "        parent: reg.reference).  To stop a member at once, revoke or\n"
	    "        suspend it with set/revoke instead.\n"
	    "set     a member's status and/or a new validity window.\n"
	    "revoke  lists a certificate's key id as revoked.\n"
	    "key     the first spelling of add-key (--add) and remove-key (--remove,\n"
	    "        --remove-kid), kept for scripts; it checks the chain only with\n"
	    "        --trust or --ca and otherwise says so on stderr.\n"
	    "policy  sets the access policy's default, drops (--clear) or appends rules.\n"
	    "        Rules are evaluated first match first (docs/PROTOCOL.md 8.2).\n"
	    "sign    adds one authority's signature (the key must match CERT, or the\n"
	    "        PUBLIC KEY PEM given as --cert for an sm2 authority).  With\n"
	    "        --trust it refuses a key that is not one of the anchor's\n"
	    "        authorities (reg.unknown-signer) or a registry of another\n"
	    "        federation (reg.federation); without, it says it did not check.\n"
	    "verify  checks the registry against a trust anchor: prints\n"
	    "        \"ok serial N, M members, valid ... (K of N signatures)\" or one line\n"
	    "        naming the reason: reg.threshold, reg.unknown-signer,\n"
	    "        reg.duplicate-signer, reg.bad-signature (tampered), reg.expired,\n"
	    "        reg.not-yet-valid, reg.serial-not-newer (with --previous),\n"
	    "        reg.duplicate-member, reg.duplicate-key, reg.key-id, reg.limit,\n"
	    "        reg.federation, json.* / field.* (malformed).  --json: one object,\n"
	    "        {\"ok\":true, federation, serial, members, issued, valid_until,\n"
	    "        signatures, threshold} or {\"ok\":false, reason, detail}.\n"
	    "show    prints the registry in readable form; --json: one object\n"
	    "        (federation, serial, issued, valid_until, members [{id, role, name,\n"
	    "        parent, status, endpoints, keys [{key_id, use, revoked}], services\n"
	    "        [{code, regions}]}], revoked_keys, policy {default, rules},\n"
	    "        signatures [{key_id, alg}]).\n"
	    "diff    what NEW changes against OLD, what each authority approves by\n"
	    "        signing it: one line per change, \"+ WHAT [MEMBER]: NEW\",\n"
	    "        \"- WHAT [MEMBER]: OLD\" or \"~ WHAT [MEMBER]: OLD -> NEW\", WHAT one of\n"
	    "        member, name, role, parent, status, endpoint, key, revoked, service,\n"
	    "        rule, policy_default, issued, valid_until, revoked_count, federation;\n"
	    "        then \"N changes\" or \"no changes\".  --json: {old_serial,\n"
	    "        new_serial, new_signatures, changes [{op: added|removed|changed,\n"
	    "        what, member, old, new}]}.  Given two trust anchors it compares\n"
	    "        what the registry does not hold: root (fingerprint), threshold,\n"
	    "        authority, federation ({\"trust\":true, changes} with --json).\n"
	    "install verifies REG for the node of CONFIG (its trust anchor, a serial\n"
	    "        above the node's), replaces the node's registry file atomically and\n"
	    "        has the running node apply it (tongban registry install --help).\n\n"
	    "Every edit (add, add-key, remove-key, remove-member, set, revoke, key,\n"
	    "policy) removes all signatures and adds 1\n"
	    "to the serial.  --now T replaces the clock (Unix seconds).\n"
	    "Exit status: 0 done, 1 refused, 2 usage, 3 I/O error, 4 internal error.\n");
}

static int
registry_new(int argc, char **argv)
{
	static const struct option opts[] = {{"federation", required_argument, NULL, 'f'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"valid-days", required_argument, NULL, 'v'},
	                                     {"now", required_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *fed = NULL, *outp = NULL, *nows = NULL;
	long long days = 90;
	int64_t now;
	struct tb_reg *reg;
	struct tb_diag d;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fed = optarg; break;
		case 'o': outp = optarg; break;
		case 'v':
			if (cli_parse_i64(optarg, &days) != 0 || days < 1 || days > 36500)
				return cli_usage_error("--valid-days must be 1-36500");
			break;
		case 'n': nows = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (fed == NULL || outp == NULL)
		return cli_usage_error("--federation and --out are required");
	if ((rc = parse_now(nows, &now)) != EX_TB_OK)
		return rc;
	if ((reg = tb_reg_new(fed, now, now + days * 86400, &d)) == NULL)
		return cli_fail_diag(&d);
	rc = save_reg(reg, outp, true);
	tb_reg_free(reg);
	return rc;
}

/* Reads a certificate's member id, CN and SPKI. */
static int
cert_info(const char *path, char id[TB_MEMBER_ID_MAX], char *cn, size_t cnlen, struct tb_buf *spki)
{
	struct tb_cert *cert;
	struct tb_pub *pub = NULL;
	struct tb_diag d;
	int rc = EX_TB_OK;

	if ((cert = tb_cert_load(path, &d)) == NULL || (pub = tb_cert_pub(cert, &d)) == NULL) {
		tb_diag_prefix(&d, path);
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (id != NULL && tb_cert_member_id(cert, id) != TB_OK) {
		rc = cli_fail(EX_TB_REFUSED, "%s: no member id (subject serialNumber)", path);
		goto out;
	}
	if (cn != NULL && !dn_attr(tb_cert_subject(cert), "CN", cn, cnlen))
		cn[0] = '\0';
	if (tb_pub_spki(pub, spki) != TB_OK)
		rc = cli_fail(EX_TB_INTERNAL, "%s: cannot export the public key", path);
out:
	tb_pub_free(pub);
	tb_cert_free(cert);
	return rc;
}

/* The --service CODE=PREFIX[,PREFIX...] arguments into svcs (svcbuf and
 * regs hold their strings, the caller's to free). */
static int
parse_services(const char **svcarg, size_t nsvc, struct tb_reg_service_spec *svcs, char **svcbuf,
               const char ***regs)
{
	int rc = EX_TB_OK;

	for (size_t i = 0; i < nsvc; i++) {
		char *eq, *p;
		size_t n = 1;
		if ((svcbuf[i] = strdup(svcarg[i])) == NULL) {
			rc = cli_fail(EX_TB_INTERNAL, "out of memory");
			return rc;
		}
		if ((eq = strchr(svcbuf[i], '=')) == NULL || eq[1] == '\0') {
			rc = cli_usage_error("--service wants CODE=PREFIX[,PREFIX...], not '%s'",
			                     svcarg[i]);
			return rc;
		}
		*eq = '\0';
		for (p = eq + 1; *p != '\0'; p++)
			n += *p == ',';
		if ((regs[i] = calloc(n, sizeof(char *))) == NULL) {
			rc = cli_fail(EX_TB_INTERNAL, "out of memory");
			return rc;
		}
		svcs[i].code = svcbuf[i];
		svcs[i].regions = regs[i];
		svcs[i].nregions = 0;
		for (p = strtok(eq + 1, ","); p != NULL; p = strtok(NULL, ","))
			regs[i][svcs[i].nregions++] = p;
	}
	return rc;
}

/* Where a member's certificate must chain to: the federation root (from
 * --trust's anchor or --ca) through the province CAs (--chain, or the
 * certificates after the first in the member's own file). */
struct chain_opts {
	const char *trust, *ca, *chains[MAX_LIST];
	size_t nchains;
};

static const char chain_required[] =
    "--trust TRUST.json or --ca ROOT.crt is required: the certificate must chain to the "
    "federation root (give its province CA's certificate with --chain unless the file "
    "holds it after the member's)";

/* Each certificate of a PEM file into v (at most max); *n counts them. */
static int
load_all_certs(const char *path, struct tb_cert **v, size_t max, size_t *n)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	struct tb_buf b;
	struct tb_diag d;
	const uint8_t *p;
	int rc = EX_TB_OK;

	tb_buf_init(&b);
	if (tb_file_read(path, 1 << 20, &b, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	p = memmem(b.data, b.len, begin, sizeof(begin) - 1);
	if (p == NULL) /* DER, or not a certificate: the loader says which */
		p = b.data;
	while (p != NULL && *n < max) {
		if ((v[*n] = tb_cert_import(p, b.len - (size_t)(p - b.data), &d)) == NULL) {
			tb_diag_prefix(&d, path);
			rc = cli_fail_diag(&d);
			goto out;
		}
		(*n)++;
		p = memmem(p + 1, b.len - (size_t)(p + 1 - b.data), begin, sizeof(begin) - 1);
	}
out:
	tb_buf_free(&b);
	return rc;
}

/* The federation root from --trust or --ca into store. */
static int
chain_root(const struct chain_opts *co, struct tb_castore *store)
{
	struct tb_cert *root = NULL;
	struct tb_trust *t = NULL;
	struct tb_diag d;
	int rc = EX_TB_OK;

	if (co->trust != NULL) {
		const char *pem;
		if ((t = load_trust(co->trust, &rc)) == NULL)
			return rc;
		pem = tb_trust_root_pem(t);
		root = pem != NULL ? tb_cert_import((const uint8_t *)pem, strlen(pem), &d) : NULL;
		if (root == NULL)
			rc = cli_fail(EX_TB_REFUSED, "%s: the root certificate is unreadable",
			              co->trust);
	} else if ((root = tb_cert_load(co->ca, &d)) == NULL) {
		tb_diag_prefix(&d, co->ca);
		rc = cli_fail_diag(&d);
	}
	if (rc == EX_TB_OK && tb_castore_add_ca(store, root, &d) != TB_OK)
		rc = cli_fail_diag(&d);
	tb_cert_free(root);
	tb_trust_free(t);
	return rc;
}

/* Refuses (cert.unknown-issuer ...) a member certificate in path that
 * does not chain to the federation root now. */
static int
chain_check(const struct chain_opts *co, const char *path)
{
	struct tb_cert *v[MAX_LIST + 8];
	struct tb_castore *store;
	struct tb_diag d;
	size_t n = 0;
	int rc;

	if ((store = tb_castore_new()) == NULL)
		return cli_fail(EX_TB_INTERNAL, "out of memory");
	if ((rc = chain_root(co, store)) != EX_TB_OK ||
	    (rc = load_all_certs(path, v, 8, &n)) != EX_TB_OK)
		goto out;
	for (size_t i = 0; i < co->nchains && rc == EX_TB_OK; i++)
		rc = load_all_certs(co->chains[i], v, sizeof(v) / sizeof(v[0]), &n);
	if (rc != EX_TB_OK)
		goto out;
	tb_diag_clear(&d);
	if (tb_chain_verify(store, v[0], (const struct tb_cert *const *)v + 1, n - 1, TB_USAGE_NODE,
	                    (int64_t)time(NULL), &d) != TB_OK) {
		char line[512];
		tb_diag_prefix(&d, path);
		rc = cli_fail(EX_TB_REFUSED, "%s (not certified by the federation root%s)",
		              tb_diag_format(&d, line, sizeof(line)),
		              co->nchains == 0 && n == 1 ? "; give its province CA's certificate "
		                                           "with --chain"
		                                         : "");
	}
out:
	for (size_t i = 0; i < n; i++)
		tb_cert_free(v[i]);
	tb_castore_free(store);
	return rc;
}

/* Exactly one of --trust and --ca (add, add-key). */
static int
chain_given(const struct chain_opts *co)
{
	if ((co->trust == NULL) == (co->ca == NULL))
		return co->trust == NULL ? cli_usage_error("%s", chain_required)
		                         : cli_usage_error("give one of --trust and --ca");
	return EX_TB_OK;
}

/* --trust, --ca, --chain of add and add-key; 0 when c was one of them. */
static int
chain_opt(struct chain_opts *co, int c, const char *arg)
{
	switch (c) {
	case 'T': co->trust = arg; return 0;
	case 'A': co->ca = arg; return 0;
	case 'H':
		if (co->nchains == MAX_LIST)
			return cli_usage_error("too many --chain");
		co->chains[co->nchains++] = arg;
		return 0;
	}
	return -1;
}

/* The member id, common name and key of cert, and of scert (NULL: none),
 * which must be the same member's; both must chain as co says. */
static int
member_keys(const struct chain_opts *co, const char *cert, const char *scert, char *id, char *id2,
            char *cn, size_t cnlen, struct tb_buf *spki1, struct tb_buf *spki2)
{
	int rc = EX_TB_OK;

	/* a bare SM2 signing key has no certificate to chain */
	if ((rc = chain_check(co, cert)) != EX_TB_OK ||
	    (scert != NULL && !bare_pub(scert) && (rc = chain_check(co, scert)) != EX_TB_OK))
		return rc;
	if ((rc = cert_info(cert, id, cn, cnlen, spki1)) != EX_TB_OK)
		return rc;
	if (scert != NULL && bare_pub(scert)) { /* an SM2 signing key: no certificate */
		struct tb_diag d;
		struct tb_pub *p = tb_pub_load(scert, &d);
		if (p == NULL)
			return cli_fail_diag(&d);
		rc = tb_pub_spki(p, spki2) == TB_OK
		         ? EX_TB_OK
		         : cli_fail(EX_TB_INTERNAL, "%s: cannot export the public key", scert);
		tb_pub_free(p);
		return rc;
	}
	if (scert != NULL) {
		if ((rc = cert_info(scert, id2, NULL, 0, spki2)) != EX_TB_OK)
			return rc;
		if (strcmp(id, id2) != 0) {
			rc = cli_fail(EX_TB_REFUSED, "%s is for member %s, %s for %s", cert, id,
			              scert, id2);
			return rc;
		}
	}
	return rc;
}

/* Adds the member of spec to the registry in regp and saves it. */
static int
add_and_save(const char *regp, const struct tb_reg_member_spec *spec)
{
	struct tb_reg *reg;
	struct tb_diag d;
	int rc = EX_TB_OK;

	if ((reg = load_reg(regp, &rc)) == NULL)
		return rc;
	if (tb_reg_add_member(reg, spec, &d) != TB_OK)
		rc = cli_fail_diag(&d);
	else if ((rc = save_reg(reg, regp, false)) == EX_TB_OK)
		printf("added %s (%s), serial %llu, %zu members\n", spec->id, spec->name,
		       (unsigned long long)tb_reg_serial(reg), tb_reg_member_count(reg));
	tb_reg_free(reg);
	return rc;
}

/* A member's key specs: its certificate's key for DTLS and signing, or
 * with a separate signing key (sep) the first for DTLS, the second for
 * signing.  The specs borrow the buffers. */
static void
key_specs(struct tb_reg_key_spec keys[2], const struct tb_buf *s1, const struct tb_buf *s2,
          bool sep)
{
	keys[0].spki = s1->data;
	keys[0].spki_len = s1->len;
	keys[0].use = sep ? TB_USE_TLS : TB_USE_BOTH;
	keys[1].spki = s2->data;
	keys[1].spki_len = s2->len;
	keys[1].use = TB_USE_SIGN;
}

static int
registry_add(int argc, char **argv)
{
	static const struct option opts[] = {{"cert", required_argument, NULL, 'c'},
	                                     {"sign-cert", required_argument, NULL, 's'},
	                                     {"role", required_argument, NULL, 'r'},
	                                     {"parent", required_argument, NULL, 'p'},
	                                     {"endpoint", required_argument, NULL, 'e'},
	                                     {"service", required_argument, NULL, 'S'},
	                                     {"name", required_argument, NULL, 'n'},
	                                     {"status", required_argument, NULL, 't'},
	                                     {"trust", required_argument, NULL, 'T'},
	                                     {"ca", required_argument, NULL, 'A'},
	                                     {"chain", required_argument, NULL, 'H'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	struct chain_opts co;
	const char *cert = NULL, *scert = NULL, *role = NULL, *parent = NULL, *name = NULL;
	const char *status = "active", *eps[MAX_LIST], *svcarg[MAX_LIST];
	size_t neps = 0, nsvc = 0;
	struct tb_reg_service_spec svcs[MAX_LIST];
	char *svcbuf[MAX_LIST];
	const char **regs[MAX_LIST];
	struct tb_reg_key_spec keys[2];
	struct tb_reg_member_spec spec;
	struct tb_buf spki1, spki2;
	char id[TB_MEMBER_ID_MAX], id2[TB_MEMBER_ID_MAX], cn[256];
	int c, rc = EX_TB_OK;

	memset(&co, 0, sizeof(co));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = chain_opt(&co, c, optarg)) >= 0) {
			if (rc != 0)
				return rc;
			continue;
		}
		rc = EX_TB_OK;
		switch (c) {
		case 'c': cert = optarg; break;
		case 's': scert = optarg; break;
		case 'r': role = optarg; break;
		case 'p': parent = optarg; break;
		case 'e':
			if (neps == MAX_LIST)
				return cli_usage_error("too many --endpoint");
			eps[neps++] = optarg;
			break;
		case 'S':
			if (nsvc == MAX_LIST)
				return cli_usage_error("too many --service");
			svcarg[nsvc++] = optarg;
			break;
		case 'n': name = optarg; break;
		case 't': status = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (cert == NULL || role == NULL)
		return cli_usage_error("--cert and --role are required");
	if ((rc = chain_given(&co)) != EX_TB_OK)
		return rc;
	if (tb_reg_role_from_name(role) == 0)
		return cli_usage_error("--role must be city or hub");
	if (tb_reg_status_from_name(status) == 0)
		return cli_usage_error("--status must be active, suspended or revoked");
	memset(svcbuf, 0, sizeof(svcbuf));
	memset(regs, 0, sizeof(regs));
	tb_buf_init(&spki1);
	tb_buf_init(&spki2);
	if ((rc = parse_services(svcarg, nsvc, svcs, svcbuf, regs)) != EX_TB_OK)
		goto out;
	if ((rc = member_keys(&co, cert, scert, id, id2, cn, sizeof(cn), &spki1, &spki2)) !=
	    EX_TB_OK)
		goto out;
	key_specs(keys, &spki1, &spki2, scert != NULL);
	memset(&spec, 0, sizeof(spec));
	spec.id = id;
	spec.name = name != NULL ? name : cn[0] != '\0' ? cn : id;
	spec.parent = parent;
	spec.role = tb_reg_role_from_name(role);
	spec.status = tb_reg_status_from_name(status);
	spec.endpoints = eps;
	spec.nendpoints = neps;
	spec.keys = keys;
	spec.nkeys = scert != NULL ? 2 : 1;
	spec.services = svcs;
	spec.nservices = nsvc;
	rc = add_and_save(argv[optind], &spec);
out:
	for (size_t i = 0; i < nsvc; i++) {
		free(svcbuf[i]);
		free(regs[i]);
	}
	tb_buf_free(&spki1);
	tb_buf_free(&spki2);
	return rc;
}

static int
registry_set(int argc, char **argv)
{
	static const struct option opts[] = {{"member", required_argument, NULL, 'm'},
	                                     {"status", required_argument, NULL, 's'},
	                                     {"endpoint", required_argument, NULL, 'e'},
	                                     {"valid-days", required_argument, NULL, 'v'},
	                                     {"now", required_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *member = NULL, *status = NULL, *nows = NULL;
	const char *eps[TB_REG_MAX_ENDPOINTS];
	size_t neps = 0;
	long long days = 0;
	int64_t now;
	struct tb_reg *reg;
	struct tb_diag d;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': member = optarg; break;
		case 's': status = optarg; break;
		case 'e':
			if (neps == TB_REG_MAX_ENDPOINTS)
				return cli_usage_error("too many --endpoint");
			eps[neps++] = optarg;
			break;
		case 'v':
			if (cli_parse_i64(optarg, &days) != 0 || days < 1 || days > 36500)
				return cli_usage_error("--valid-days must be 1-36500");
			break;
		case 'n': nows = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (member != NULL && status == NULL && neps == 0)
		return cli_usage_error("--member needs --status or --endpoint");
	if (member == NULL && (status != NULL || neps > 0))
		return cli_usage_error("--status and --endpoint need --member");
	if (member == NULL && days == 0)
		return cli_usage_error(
		    "nothing to set: --member with --status or --endpoint, or --valid-days");
	if (status != NULL && tb_reg_status_from_name(status) == 0)
		return cli_usage_error("--status must be active, suspended or revoked");
	if ((rc = parse_now(nows, &now)) != EX_TB_OK)
		return rc;
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		return rc;
	if ((status != NULL &&
	     tb_reg_set_status(reg, member, tb_reg_status_from_name(status), &d) != TB_OK) ||
	    (neps > 0 && tb_reg_set_endpoints(reg, member, eps, neps, &d) != TB_OK) ||
	    (days > 0 && tb_reg_set_validity(reg, now, now + days * 86400, &d) != TB_OK)) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((rc = save_reg(reg, argv[optind], false)) == EX_TB_OK)
		printf("serial %llu\n", (unsigned long long)tb_reg_serial(reg));
out:
	tb_reg_free(reg);
	return rc;
}

static int
registry_revoke(int argc, char **argv)
{
	static const struct option opts[] = {{"cert", required_argument, NULL, 'c'},
	                                     {"kid", required_argument, NULL, 'k'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *cert = NULL, *kidhex = NULL;
	uint8_t kid[TB_KEYID_LEN];
	struct tb_reg *reg;
	struct tb_diag d;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': kidhex = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if ((cert == NULL) == (kidhex == NULL))
		return cli_usage_error("give one of --cert and --kid");
	if (kidhex != NULL && !tb_hex_decode(kidhex, strlen(kidhex), kid, TB_KEYID_LEN))
		return cli_usage_error("--kid must be 64 lowercase hex digits");
	if (cert != NULL) {
		struct tb_cert *cc = tb_cert_load(cert, &d);
		if (cc == NULL) {
			tb_diag_prefix(&d, cert);
			return cli_fail_diag(&d);
		}
		tb_cert_key_id(cc, kid);
		tb_cert_free(cc);
	}
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		return rc;
	if (tb_reg_revoke_key(reg, kid, &d) != TB_OK)
		rc = cli_fail_diag(&d);
	else if ((rc = save_reg(reg, argv[optind], false)) == EX_TB_OK)
		printf("serial %llu, %zu revoked keys\n", (unsigned long long)tb_reg_serial(reg),
		       tb_reg_revoked_count(reg));
	tb_reg_free(reg);
	return rc;
}

/* The key id of the certificate in path. */
static int
cert_kid(const char *path, uint8_t kid[TB_KEYID_LEN])
{
	struct tb_diag d;
	struct tb_cert *cc = tb_cert_load(path, &d);

	if (cc == NULL) {
		tb_diag_prefix(&d, path);
		return cli_fail_diag(&d);
	}
	tb_cert_key_id(cc, kid);
	tb_cert_free(cc);
	return EX_TB_OK;
}

/* A key added to (add: a certificate) or removed from (rm: a certificate,
 * or rmkid) its member in regp. */
static int
key_do(const char *regp, const char *add, const char *use, const char *rm, const char *rmkid,
       const struct chain_opts *co)
{
	char id[TB_MEMBER_ID_MAX];
	uint8_t kid[TB_KEYID_LEN];
	struct tb_reg_key_spec k;
	struct tb_buf spki;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	int rc = EX_TB_OK;

	if (tb_key_use_from_name(use) == 0)
		return cli_usage_error("--use must be tls, sign or both");
	if (rmkid != NULL && !tb_hex_decode(rmkid, strlen(rmkid), kid, TB_KEYID_LEN))
		return cli_usage_error("--%s must be 64 lowercase hex digits",
		                       strcmp(cli_cmd, "tongban registry key") == 0 ? "remove-kid"
		                                                                    : "kid");
	tb_buf_init(&spki);
	if (add != NULL && (co->trust != NULL || co->ca != NULL) &&
	    (rc = chain_check(co, add)) != EX_TB_OK)
		goto out;
	if (add != NULL && (rc = cert_info(add, id, NULL, 0, &spki)) != EX_TB_OK)
		goto out;

	if (rm != NULL && (rc = cert_kid(rm, kid)) != EX_TB_OK)
		goto out;
	if ((reg = load_reg(regp, &rc)) == NULL)
		goto out;
	k.spki = spki.data;
	k.spki_len = spki.len;
	k.use = tb_key_use_from_name(use);
	if ((add != NULL ? tb_reg_add_key(reg, id, &k, &d) : tb_reg_remove_key(reg, kid, &d)) !=
	    TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((rc = save_reg(reg, regp, false)) != EX_TB_OK)
		goto out;
	printf("serial %llu, key %s\n", (unsigned long long)tb_reg_serial(reg),
	       add != NULL ? "added" : "removed");
	if (add != NULL && co->trust == NULL && co->ca == NULL)
		fprintf(stderr,
		        "%s: note: %s was not checked against the federation root (give --trust "
		        "TRUST.json or --ca ROOT.crt)\n",
		        cli_cmd, add);
out:
	tb_buf_free(&spki);
	tb_reg_free(reg);
	return rc;
}

/* `registry key`: the first spelling of add-key and remove-key, kept for
 * scripts; it checks the chain only when --trust or --ca is given. */
static int
registry_key(int argc, char **argv)
{
	static const struct option opts[] = {{"add", required_argument, NULL, 'a'},
	                                     {"use", required_argument, NULL, 'u'},
	                                     {"remove", required_argument, NULL, 'r'},
	                                     {"remove-kid", required_argument, NULL, 'k'},
	                                     {"trust", required_argument, NULL, 'T'},
	                                     {"ca", required_argument, NULL, 'A'},
	                                     {"chain", required_argument, NULL, 'H'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *add = NULL, *use = "both", *rm = NULL, *rmkid = NULL;
	struct chain_opts co;
	int c, rc;

	memset(&co, 0, sizeof(co));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = chain_opt(&co, c, optarg)) >= 0) {
			if (rc != 0)
				return rc;
			continue;
		}
		switch (c) {
		case 'a': add = optarg; break;
		case 'u': use = optarg; break;
		case 'r': rm = optarg; break;
		case 'k': rmkid = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if ((add != NULL) + (rm != NULL) + (rmkid != NULL) != 1)
		return cli_usage_error("give one of --add, --remove and --remove-kid");
	if (co.trust != NULL && co.ca != NULL)
		return cli_usage_error("give one of --trust and --ca");
	return key_do(argv[optind], add, use, rm, rmkid, &co);
}

static int
registry_add_key(int argc, char **argv)
{
	static const struct option opts[] = {{"cert", required_argument, NULL, 'c'},
	                                     {"use", required_argument, NULL, 'u'},
	                                     {"trust", required_argument, NULL, 'T'},
	                                     {"ca", required_argument, NULL, 'A'},
	                                     {"chain", required_argument, NULL, 'H'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *cert = NULL, *use = "both";
	struct chain_opts co;
	int c, rc;

	memset(&co, 0, sizeof(co));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = chain_opt(&co, c, optarg)) >= 0) {
			if (rc != 0)
				return rc;
			continue;
		}
		switch (c) {
		case 'c': cert = optarg; break;
		case 'u': use = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (cert == NULL)
		return cli_usage_error("--cert is required (the certificate of the new key)");
	if ((rc = chain_given(&co)) != EX_TB_OK)
		return rc;
	return key_do(argv[optind], cert, use, NULL, NULL, &co);
}

static int
registry_remove_key(int argc, char **argv)
{
	static const struct option opts[] = {{"cert", required_argument, NULL, 'c'},
	                                     {"kid", required_argument, NULL, 'k'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *cert = NULL, *kidhex = NULL;
	struct chain_opts co;
	int c;

	memset(&co, 0, sizeof(co));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': kidhex = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if ((cert == NULL) == (kidhex == NULL))
		return cli_usage_error("give one of --cert and --kid");
	return key_do(argv[optind], NULL, "both", cert, kidhex, &co);
}

static int
registry_remove_member(int argc, char **argv)
{
	static const struct option opts[] = {{"member", required_argument, NULL, 'm'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *member = NULL;
	struct tb_reg *reg;
	struct tb_diag d;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': member = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (member == NULL)
		return cli_usage_error("--member is required");
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		return rc;
	if (tb_reg_remove_member(reg, member, &d) != TB_OK)
		rc = cli_fail_diag(&d);
	else if ((rc = save_reg(reg, argv[optind], false)) == EX_TB_OK)
		printf("removed %s, serial %llu, %zu members\n", member,
		       (unsigned long long)tb_reg_serial(reg), tb_reg_member_count(reg));
	tb_reg_free(reg);
	return rc;
}

static int
registry_policy(int argc, char **argv)
{
	static const struct option opts[] = {{"default", required_argument, NULL, 'd'},
	                                     {"clear", no_argument, NULL, 'c'},
	                                     {"rule", required_argument, NULL, 'r'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *def = NULL, *rules[MAX_LIST];
	size_t nrules = 0;
	bool clear = false;
	struct tb_reg *reg;
	struct tb_diag d;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': def = optarg; break;
		case 'c': clear = true; break;
		case 'r':
			if (nrules == MAX_LIST)
				return cli_usage_error("too many --rule");
			rules[nrules++] = optarg;
			break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (def != NULL && strcmp(def, "allow") != 0 && strcmp(def, "deny") != 0)
		return cli_usage_error("--default must be allow or deny");
	if (def == NULL && !clear && nrules == 0)
		return cli_usage_error("nothing to do: --default, --clear or --rule");
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		return rc;
	if ((def != NULL && tb_reg_set_policy_default(reg, strcmp(def, "allow") == 0) != TB_OK) ||
	    (clear && tb_reg_clear_policy_rules(reg) != TB_OK)) {
		rc = cli_fail(EX_TB_REFUSED, "cannot edit the policy");
		goto out;
	}
	for (size_t i = 0; i < nrules; i++)
		if (tb_reg_add_policy_rule(reg, rules[i], &d) != TB_OK) {
			rc = cli_fail_diag(&d);
			goto out;
		}
	if ((rc = save_reg(reg, argv[optind], false)) == EX_TB_OK)
		printf("serial %llu, %zu rules, default %s\n",
		       (unsigned long long)tb_reg_serial(reg), tb_policy_rule_count(reg),
		       tb_policy_default_allow(reg) ? "allow" : "deny");
out:
	tb_reg_free(reg);
	return rc;
}

/* A signature by key kid counts under anchor t for reg. */
static int
signer_check(const struct tb_trust *t, const char *trustp, const struct tb_reg *reg,
             const uint8_t kid[TB_KEYID_LEN], const char *certp)
{
	if (strcmp(tb_trust_federation(t), tb_reg_federation(reg)) != 0)
		return cli_fail(
		    EX_TB_REFUSED,
		    "reg.federation: the registry is for %s, the trust anchor %s for %s",
		    tb_reg_federation(reg), trustp, tb_trust_federation(t));
	if (tb_trust_find(t, kid) == (size_t)-1)
		return cli_fail(EX_TB_REFUSED,
		                "reg.unknown-signer: the key of %s is not an authority of %s (see "
		                "'tongban trust show %s'); its signature would not count",
		                certp, trustp, trustp);
	return EX_TB_OK;
}

static int
registry_sign(int argc, char **argv)
{
	static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
	                                     {"cert", required_argument, NULL, 'c'},
	                                     {"pass-file", required_argument, NULL, 'p'},
	                                     {"trust", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *keyp = NULL, *certp = NULL, *passf = NULL, *trustp = NULL;
	struct tb_trust *t = NULL;
	struct tb_key *key = NULL;
	struct tb_cert *cert = NULL;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	uint8_t k1[TB_KEYID_LEN], k2[TB_KEYID_LEN];
	char *pass = NULL;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keyp = optarg; break;
		case 'c': certp = optarg; break;
		case 'p': passf = optarg; break;
		case 't': trustp = optarg; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (keyp == NULL || certp == NULL)
		return cli_usage_error("--key and --cert are required");
	if (trustp != NULL && (t = load_trust(trustp, &rc)) == NULL)
		return rc;
	pass = cli_key_pass(keyp, passf, &rc);
	if (rc != EX_TB_OK)
		goto out;
	if ((key = tb_key_load(keyp, pass, &d)) == NULL) {
		tb_diag_prefix(&d, keyp);
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (bare_pub(certp)) { /* an SM2 authority's public key: no certificate */
		struct tb_pub *p = tb_pub_load(certp, &d);
		if (p == NULL) {
			rc = cli_fail_diag(&d);
			goto out;
		}
		tb_pub_id(p, k2);
		tb_pub_free(p);
	} else if ((cert = tb_cert_load(certp, &d)) == NULL) {
		tb_diag_prefix(&d, certp);
		rc = cli_fail_diag(&d);
		goto out;
	} else {
		tb_cert_key_id(cert, k2);
	}
	tb_key_id(key, k1);
	if (memcmp(k1, k2, TB_KEYID_LEN) != 0) {
		rc = cli_fail(EX_TB_REFUSED, "key: %s does not match the key of %s", keyp, certp);
		goto out;
	}
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		goto out;
	if (t != NULL && (rc = signer_check(t, trustp, reg, k1, certp)) != EX_TB_OK)
		goto out;
	if (tb_reg_sign(reg, key, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((rc = save_reg(reg, argv[optind], false)) != EX_TB_OK)
		goto out;
	if (t != NULL)
		printf("signed serial %llu as authority %u of %zu; %zu signatures, %u needed\n",
		       (unsigned long long)tb_reg_serial(reg), (unsigned)tb_trust_find(t, k1) + 1,
		       tb_trust_count(t), tb_reg_sig_count(reg), tb_trust_threshold(t));
	else
		printf("signed serial %llu; %zu signatures (not checked against a trust anchor: "
		       "give --trust TRUST.json to refuse a key that is no authority)\n",
		       (unsigned long long)tb_reg_serial(reg), tb_reg_sig_count(reg));
out:
	tb_trust_free(t);
	tb_reg_free(reg);
	tb_cert_free(cert);
	tb_key_free(key);
	cli_free_pass(pass);
	return rc;
}

static void
fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

static int
registry_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"trust", required_argument, NULL, 't'}, {"previous", required_argument, NULL, 'p'},
	    {"now", required_argument, NULL, 'n'},   {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},        {0, 0, 0, 0}};
	const char *trustp = NULL, *prevp = NULL, *nows = NULL;
	bool json = false;
	struct tb_trust *t = NULL;
	struct tb_reg *reg = NULL, *prev = NULL;
	struct tb_diag d;
	size_t good;
	int64_t now;
	char t1[32], t2[32];
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': trustp = optarg; break;
		case 'p': prevp = optarg; break;
		case 'n': nows = optarg; break;
		case 'j': json = true; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (trustp == NULL)
		return cli_usage_error("--trust is required");
	if ((rc = parse_now(nows, &now)) != EX_TB_OK)
		return rc;
	if ((t = load_trust(trustp, &rc)) == NULL)
		goto out;
	/* the previous registry was verified when it was accepted; only
	 * its serial matters here */
	if (prevp != NULL && (prev = load_reg(prevp, &rc)) == NULL)
		goto out;
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		goto out;
	if (tb_reg_verify(reg, t, now, prev != NULL ? tb_reg_serial(prev) : 0, &good, &d) !=
	    TB_OK) {
		if (json) {
			printf("{\"ok\":false,\"reason\":\"%s\",\"detail\":",
			       tb_err_reason(d.code));
			cli_json_str(stdout, d.detail);
			printf("}\n");
		}
		rc = cli_fail_diag(&d);
		goto out;
	}
	fmt_time(tb_reg_issued(reg), t1);
	fmt_time(tb_reg_valid_until(reg), t2);
	if (json)
		printf("{\"ok\":true,\"federation\":");
	if (json)
		cli_json_str(stdout, tb_reg_federation(reg));
	if (json)
		printf(",\"serial\":%llu,\"members\":%zu,\"issued\":\"%s\",\"valid_until\":\"%s\","
		       "\"signatures\":%zu,\"threshold\":%u}\n",
		       (unsigned long long)tb_reg_serial(reg), tb_reg_member_count(reg), t1, t2,
		       good, tb_trust_threshold(t));
	else
		printf("ok serial %llu, %zu members, valid %s to %s (%zu of %u signatures)\n",
		       (unsigned long long)tb_reg_serial(reg), tb_reg_member_count(reg), t1, t2,
		       good, tb_trust_threshold(t));
out:
	tb_reg_free(reg);
	tb_reg_free(prev);
	tb_trust_free(t);
	return rc;
}

/* One member as a JSON object. */
static void
member_json(const struct tb_reg *reg, size_t m)
{
	const char *parent = tb_reg_member_parent(reg, m);
	uint8_t kid[TB_KEYID_LEN];

	printf("{\"id\":\"%s\",\"role\":\"%s\",\"name\":", tb_reg_member_id(reg, m),
	       tb_reg_role_name(tb_reg_member_role(reg, m)));
	cli_json_str(stdout, tb_reg_member_name(reg, m));
	printf(",\"parent\":");
	if (parent != NULL)
		cli_json_str(stdout, parent);
	else
		printf("null");
	printf(",\"status\":\"%s\",\"endpoints\":[",
	       tb_reg_status_name(tb_reg_member_status(reg, m)));
	for (size_t i = 0; i < tb_reg_endpoint_count(reg, m); i++) {
		printf("%s", i ? "," : "");
		cli_json_str(stdout, tb_reg_endpoint(reg, m, i));
	}
	printf("],\"keys\":[");
	for (size_t k = 0; k < tb_reg_key_count(reg, m); k++) {
		enum tb_key_use use;
		tb_reg_key(reg, m, k, kid, &use, NULL, NULL);
		printf("%s{\"key_id\":", k ? "," : "");
		json_hex(kid, TB_KEYID_LEN);
		printf(",\"use\":\"%s\",\"revoked\":%s}", tb_key_use_name(use),
		       tb_reg_key_revoked(reg, kid) ? "true" : "false");
	}
	printf("],\"services\":[");
	for (size_t sv = 0; sv < tb_reg_service_count(reg, m); sv++) {
		printf("%s{\"code\":", sv ? "," : "");
		cli_json_str(stdout, tb_reg_service_code(reg, m, sv));
		printf(",\"regions\":[");
		for (size_t r = 0; r < tb_reg_region_count(reg, m, sv); r++)
			printf("%s\"%s\"", r ? "," : "", tb_reg_region(reg, m, sv, r));
		printf("]}");
	}
	printf("]}");
}

static int
registry_show_json(const struct tb_reg *reg)
{
	struct tb_buf b;
	char t1[32], t2[32];
	uint8_t kid[TB_KEYID_LEN];
	int rc = EX_TB_OK;

	tb_buf_init(&b);
	fmt_time(tb_reg_issued(reg), t1);
	fmt_time(tb_reg_valid_until(reg), t2);
	printf("{\"federation\":");
	cli_json_str(stdout, tb_reg_federation(reg));
	printf(",\"serial\":%llu,\"issued\":\"%s\",\"valid_until\":\"%s\",\"members\":[",
	       (unsigned long long)tb_reg_serial(reg), t1, t2);
	for (size_t m = 0; m < tb_reg_member_count(reg); m++) {
		printf("%s", m ? "," : "");
		member_json(reg, m);
	}
	printf("],\"revoked_keys\":%zu,\"policy\":{\"default\":\"%s\",\"rules\":[",
	       tb_reg_revoked_count(reg), tb_policy_default_allow(reg) ? "allow" : "deny");
	for (size_t i = 0; i < tb_policy_rule_count(reg); i++) {
		tb_buf_reset(&b);
		if (tb_policy_rule_text(reg, i, &b) != TB_OK) {
			rc = cli_fail(EX_TB_INTERNAL, "out of memory");
			break;
		}
		printf("%s", i ? "," : "");
		cli_json_str(stdout, (const char *)b.data);
	}
	printf("]},\"signatures\":[");
	for (size_t i = 0; i < tb_reg_sig_count(reg); i++) {
		enum tb_alg alg;
		tb_reg_sig(reg, i, kid, &alg);
		printf("%s{\"key_id\":", i ? "," : "");
		json_hex(kid, TB_KEYID_LEN);
		printf(",\"alg\":\"%s\"}", tb_alg_name(alg));
	}
	printf("]}\n");
	tb_buf_free(&b);
	return rc;
}

static int
registry_show(int argc, char **argv)
{
	struct tb_reg *reg;
	struct tb_buf b;
	char t1[32], t2[32], hex[2 * TB_KEYID_LEN + 1];
	uint8_t kid[TB_KEYID_LEN];
	int rc = EX_TB_OK;
	bool json;

	if ((rc = cli_json_args(argc, argv, registry_usage, &json, "REG file")) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if ((reg = load_reg(argv[optind], &rc)) == NULL)
		return rc;
	if (json) {
		rc = registry_show_json(reg);
		tb_reg_free(reg);
		return rc;
	}
	tb_buf_init(&b);
	fmt_time(tb_reg_issued(reg), t1);
	fmt_time(tb_reg_valid_until(reg), t2);
	printf("federation %s\nserial %llu\nissued %s\nvalid_until %s\nmembers %zu\n",
	       tb_reg_federation(reg), (unsigned long long)tb_reg_serial(reg), t1, t2,
	       tb_reg_member_count(reg));
	for (size_t m = 0; m < tb_reg_member_count(reg); m++) {
		const char *parent = tb_reg_member_parent(reg, m);
		printf("member %s %s %s parent=%s status=%s\n", tb_reg_member_id(reg, m),
		       tb_reg_role_name(tb_reg_member_role(reg, m)), tb_reg_member_name(reg, m),
		       parent != NULL ? parent : "-",
		       tb_reg_status_name(tb_reg_member_status(reg, m)));
		for (size_t i = 0; i < tb_reg_endpoint_count(reg, m); i++)
			printf("  endpoint %s\n", tb_reg_endpoint(reg, m, i));
		for (size_t k = 0; k < tb_reg_key_count(reg, m); k++) {
			enum tb_key_use use;
			tb_reg_key(reg, m, k, kid, &use, NULL, NULL);
			tb_hex_encode(kid, TB_KEYID_LEN, hex);
			printf("  key %s %s%s\n", hex, tb_key_use_name(use),
			       tb_reg_key_revoked(reg, kid) ? " REVOKED" : "");
		}
		for (size_t s = 0; s < tb_reg_service_count(reg, m); s++) {
			printf("  service %s", tb_reg_service_code(reg, m, s));
			for (size_t r = 0; r < tb_reg_region_count(reg, m, s); r++)
				printf("%c%s", r == 0 ? ' ' : ',', tb_reg_region(reg, m, s, r));
			printf("\n");
		}
	}
	printf("revoked_keys %zu\npolicy default %s\n", tb_reg_revoked_count(reg),
	       tb_policy_default_allow(reg) ? "allow" : "deny");
	for (size_t i = 0; i < tb_policy_rule_count(reg); i++) {
		tb_buf_reset(&b);
		if (tb_policy_rule_text(reg, i, &b) == TB_OK)
			printf("rule %zu %s\n", i, (const char *)b.data);
	}
	printf("signatures %zu\n", tb_reg_sig_count(reg));
	for (size_t i = 0; i < tb_reg_sig_count(reg); i++) {
		enum tb_alg alg;
		tb_reg_sig(reg, i, kid, &alg);
		tb_hex_encode(kid, TB_KEYID_LEN, hex);
		printf("sig %s %s\n", hex, tb_alg_name(alg));
	}
	tb_buf_free(&b);
	tb_reg_free(reg);
	return rc;
}

/* ---- registry diff ---- */

/* One change: printed as a line "+|-|~ WHAT[ MEMBER]: OLD -> NEW", or as
 * a JSON object {"op","what","member","old","new"} in an array. */
struct diff {
	bool json;
	size_t n;
};

static void
json_or_null(const char *v)
{
	if (v != NULL)
		cli_json_str(stdout, v);
	else
		printf("null");
}

static void
change(struct diff *df, const char *what, const char *member, const char *old, const char *new)
{
	const char *op = old == NULL ? "added" : new == NULL ? "removed" : "changed";

	df->n++;
	if (df->json) {
		printf("%s{\"op\":\"%s\",\"what\":\"%s\",\"member\":", df->n > 1 ? "," : "", op,
		       what);
		json_or_null(member);
		printf(",\"old\":");
		json_or_null(old);
		printf(",\"new\":");
		json_or_null(new);
		printf("}");
		return;
	}
	printf("%c %s%s%s",
	       old == NULL   ? '+'
	       : new == NULL ? '-'
	                     : '~',
	       what, member != NULL ? " " : "", member != NULL ? member : "");
	if (old != NULL && new != NULL)
		printf(": %s -> %s\n", old, new);
	else
		printf(": %s\n", old != NULL ? old : new);
}

/* Member m of reg in one line (role, name, parent, status, counts). */
static void
member_line(const struct tb_reg *reg, size_t m, char *out, size_t n)
{
	const char *parent = tb_reg_member_parent(reg, m);

	snprintf(out, n, "%s \"%s\" parent=%s status=%s, %zu keys, %zu endpoints, %zu services",
	         tb_reg_role_name(tb_reg_member_role(reg, m)), tb_reg_member_name(reg, m),
	         parent != NULL ? parent : "-", tb_reg_status_name(tb_reg_member_status(reg, m)),
	         tb_reg_key_count(reg, m), tb_reg_endpoint_count(reg, m),
	         tb_reg_service_count(reg, m));
}

/* Service sv of member m as "CODE=PREFIX,PREFIX" (NUL-terminated in b). */
static void
service_line(const struct tb_reg *reg, size_t m, size_t sv, struct tb_buf *b)
{
	const char *code = tb_reg_service_code(reg, m, sv);

	tb_buf_reset(b);
	if (tb_buf_add(b, code, strlen(code)) != TB_OK)
		goto fail;
	for (size_t r = 0; r < tb_reg_region_count(reg, m, sv); r++) {
		const char *x = tb_reg_region(reg, m, sv, r);
		if (tb_buf_addc(b, r == 0 ? '=' : ',') != TB_OK ||
		    tb_buf_add(b, x, strlen(x)) != TB_OK)
			goto fail;
	}
	if (tb_buf_addc(b, '\0') == TB_OK)
		return;
fail:
	tb_buf_reset(b);
}

/* Key k of member m as "HEX USE" into out (80 bytes). */
static void
key_line(const struct tb_reg *reg, size_t m, size_t k, char *out, uint8_t kid[TB_KEYID_LEN],
         enum tb_key_use *use)
{
	char hex[2 * TB_KEYID_LEN + 1];

	tb_reg_key(reg, m, k, kid, use, NULL, NULL);
	tb_hex_encode(kid, TB_KEYID_LEN, hex);
	snprintf(out, 80, "%s %s", hex, tb_key_use_name(*use));
}

/* Keys of member id (index a in A, b in B) that B drops, re-uses, adds;
 * a key whose revocation differs is a "revoked" change. */
static void
diff_keys(struct diff *df, const char *id, const struct tb_reg *A, size_t a, const struct tb_reg *B,
          size_t b)
{
	char la[80], lb[80];
	uint8_t kid[TB_KEYID_LEN];
	enum tb_key_use ua, ub;
	size_t om, ok;

	for (size_t k = 0; k < tb_reg_key_count(A, a); k++) {
		key_line(A, a, k, la, kid, &ua);
		if (tb_reg_find_key(B, kid, &om, &ok) != TB_OK || om != b) {
			change(df, "key", id, la, NULL);
			continue;
		}
		key_line(B, b, ok, lb, kid, &ub);
		if (ua != ub)
			change(df, "key", id, la, lb);
		if (tb_reg_key_revoked(A, kid) != tb_reg_key_revoked(B, kid))
			change(df, "revoked", id, tb_reg_key_revoked(A, kid) ? la : NULL,
			       tb_reg_key_revoked(B, kid) ? lb : NULL);
	}
	for (size_t k = 0; k < tb_reg_key_count(B, b); k++) {
		key_line(B, b, k, lb, kid, &ub);
		if (tb_reg_find_key(A, kid, &om, &ok) != TB_OK || om != a)
			change(df, "key", id, NULL, lb);
	}
}

/* A's endpoints not in B's: removed (added: B's not in A's, A and B
 * swapped by the caller). */
static void
diff_endpoints(struct diff *df, const char *id, const struct tb_reg *A, size_t a,
               const struct tb_reg *B, size_t b, bool added)
{
	for (size_t i = 0; i < tb_reg_endpoint_count(A, a); i++) {
		const char *e = tb_reg_endpoint(A, a, i);
		bool found = false;
		for (size_t j = 0; j < tb_reg_endpoint_count(B, b) && !found; j++)
			found = strcmp(e, tb_reg_endpoint(B, b, j)) == 0;
		if (!found)
			change(df, "endpoint", id, added ? NULL : e, added ? e : NULL);
	}
}

/* Same for services (a changed region list is one removed, one added). */
static void
diff_services(struct diff *df, const char *id, const struct tb_reg *A, size_t a,
              const struct tb_reg *B, size_t b, bool added)
{
	struct tb_buf x, y;

	tb_buf_init(&x);
	tb_buf_init(&y);
	for (size_t i = 0; i < tb_reg_service_count(A, a); i++) {
		bool found = false;
		service_line(A, a, i, &x);
		for (size_t j = 0; b != TB_REG_NONE && j < tb_reg_service_count(B, b) && !found;
		     j++) {
			service_line(B, b, j, &y);
			found = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
		}
		if (!found && x.len > 0)
			change(df, "service", id, added ? NULL : (const char *)x.data,
			       added ? (const char *)x.data : NULL);
	}
	tb_buf_free(&x);
	tb_buf_free(&y);
}

/* A member in both: its fields one by one. */
static void
diff_member(struct diff *df, const struct tb_reg *A, size_t a, const struct tb_reg *B, size_t b)
{
	const char *id = tb_reg_member_id(A, a), *pa, *pb;

	if (strcmp(tb_reg_member_name(A, a), tb_reg_member_name(B, b)) != 0)
		change(df, "name", id, tb_reg_member_name(A, a), tb_reg_member_name(B, b));
	if (tb_reg_member_role(A, a) != tb_reg_member_role(B, b))
		change(df, "role", id, tb_reg_role_name(tb_reg_member_role(A, a)),
		       tb_reg_role_name(tb_reg_member_role(B, b)));
	pa = tb_reg_member_parent(A, a);
	pb = tb_reg_member_parent(B, b);
	if ((pa == NULL) != (pb == NULL) || (pa != NULL && strcmp(pa, pb) != 0))
		change(df, "parent", id, pa != NULL ? pa : "-", pb != NULL ? pb : "-");
	if (tb_reg_member_status(A, a) != tb_reg_member_status(B, b))
		change(df, "status", id, tb_reg_status_name(tb_reg_member_status(A, a)),
		       tb_reg_status_name(tb_reg_member_status(B, b)));
	diff_endpoints(df, id, A, a, B, b, false);
	diff_endpoints(df, id, B, b, A, a, true);
	diff_keys(df, id, A, a, B, b);
	diff_services(df, id, A, a, B, b, false);
	diff_services(df, id, B, b, A, a, true);
}

/* A's policy rules not in B's: removed (added with A and B swapped). */
static void
diff_rules(struct diff *df, const struct tb_reg *A, const struct tb_reg *B, bool added)
{
	struct tb_buf x, y;

	tb_buf_init(&x);
	tb_buf_init(&y);
	for (size_t i = 0; i < tb_policy_rule_count(A); i++) {
		bool found = false;
		tb_buf_reset(&x);
		if (tb_policy_rule_text(A, i, &x) != TB_OK)
			break;
		for (size_t j = 0; j < tb_policy_rule_count(B) && !found; j++) {
			tb_buf_reset(&y);
			found = tb_policy_rule_text(B, j, &y) == TB_OK &&
			        strcmp((const char *)x.data, (const char *)y.data) == 0;
		}
		if (!found)
			change(df, "rule", NULL, added ? NULL : (const char *)x.data,
			       added ? (const char *)x.data : NULL);
	}
	tb_buf_free(&x);
	tb_buf_free(&y);
}

/* The registry-wide fields: federation, validity, policy default,
 * revoked count, signatures. */
static void
diff_head(struct diff *df, const struct tb_reg *A, const struct tb_reg *B)
{
	char x[64], y[64];

	if (strcmp(tb_reg_federation(A), tb_reg_federation(B)) != 0)
		change(df, "federation", NULL, tb_reg_federation(A), tb_reg_federation(B));
	if (tb_reg_issued(A) != tb_reg_issued(B)) {
		fmt_time(tb_reg_issued(A), x);
		fmt_time(tb_reg_issued(B), y);
		change(df, "issued", NULL, x, y);
	}
	if (tb_reg_valid_until(A) != tb_reg_valid_until(B)) {
		fmt_time(tb_reg_valid_until(A), x);
		fmt_time(tb_reg_valid_until(B), y);
		change(df, "valid_until", NULL, x, y);
	}
	if (tb_policy_default_allow(A) != tb_policy_default_allow(B))
		change(df, "policy_default", NULL, tb_policy_default_allow(A) ? "allow" : "deny",
		       tb_policy_default_allow(B) ? "allow" : "deny");
	if (tb_reg_revoked_count(A) != tb_reg_revoked_count(B)) {
		snprintf(x, sizeof(x), "%zu", tb_reg_revoked_count(A));
		snprintf(y, sizeof(y), "%zu", tb_reg_revoked_count(B));
		change(df, "revoked_count", NULL, x, y);
	}
}

static void
diff_members(struct diff *df, const struct tb_reg *A, const struct tb_reg *B)
{
	char line[512];

	for (size_t a = 0; a < tb_reg_member_count(A); a++) {
		size_t b = tb_reg_find_member(B, tb_reg_member_id(A, a));
		if (b != TB_REG_NONE) {
			diff_member(df, A, a, B, b);
			continue;
		}
		member_line(A, a, line, sizeof(line));
		change(df, "member", tb_reg_member_id(A, a), line, NULL);
	}
	for (size_t b = 0; b < tb_reg_member_count(B); b++) {
		size_t k;
		if (tb_reg_find_member(A, tb_reg_member_id(B, b)) != TB_REG_NONE)
			continue;
		member_line(B, b, line, sizeof(line));
		change(df, "member", tb_reg_member_id(B, b), NULL, line);
		for (k = 0; k < tb_reg_key_count(B, b); k++) {
			uint8_t kid[TB_KEYID_LEN];
			enum tb_key_use use;
			key_line(B, b, k, line, kid, &use);
			change(df, "key", tb_reg_member_id(B, b), NULL, line);
		}
		for (k = 0; k < tb_reg_endpoint_count(B, b); k++)
			change(df, "endpoint", tb_reg_member_id(B, b), NULL,
			       tb_reg_endpoint(B, b, k));
		diff_services(df, tb_reg_member_id(B, b), B, b, B, TB_REG_NONE, true);
	}
}

/* path as a trust anchor, or NULL (quietly: it may be a registry). */
static struct tb_trust *
try_trust(const char *path)
{
	struct tb_buf b;
	struct tb_trust *t = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, TB_TRUST_MAX_SIZE, &b, NULL) == TB_OK)
		t = tb_trust_parse(b.data, b.len, NULL);
	tb_buf_free(&b);
	return t;
}

/* Root fingerprint of anchor t as hex into out (65 bytes); "?" if unreadable. */
static void
root_fpr(const struct tb_trust *t, char *out)
{
	const char *pem = tb_trust_root_pem(t);
	struct tb_cert *c =
	    pem != NULL ? tb_cert_import((const uint8_t *)pem, strlen(pem), NULL) : NULL;
	uint8_t f[32];

	snprintf(out, 65, "?");
	if (c != NULL) {
		tb_cert_fingerprint(c, f);
		tb_hex_encode(f, sizeof(f), out);
	}
	tb_cert_free(c);
}

/* Two trust anchors: federation, root, threshold, authorities. */
static void
diff_trust(struct diff *df, const struct tb_trust *A, const struct tb_trust *B)
{
	char x[80], y[80];
	uint8_t kid[TB_KEYID_LEN];

	if (strcmp(tb_trust_federation(A), tb_trust_federation(B)) != 0)
		change(df, "federation", NULL, tb_trust_federation(A), tb_trust_federation(B));
	root_fpr(A, x);
	root_fpr(B, y);
	if (strcmp(x, y) != 0)
		change(df, "root", NULL, x, y);
	if (tb_trust_threshold(A) != tb_trust_threshold(B)) {
		snprintf(x, sizeof(x), "%u", tb_trust_threshold(A));
		snprintf(y, sizeof(y), "%u", tb_trust_threshold(B));
		change(df, "threshold", NULL, x, y);
	}
	for (int pass = 0; pass < 2; pass++) {
		const struct tb_trust *P = pass == 0 ? A : B, *Q = pass == 0 ? B : A;
		for (size_t i = 0; i < tb_trust_count(P); i++) {
			tb_trust_kid(P, i, kid);
			if (tb_trust_find(Q, kid) != (size_t)-1)
				continue;
			tb_hex_encode(kid, TB_KEYID_LEN, x);
			snprintf(x + 64, sizeof(x) - 64, " %s", tb_trust_name(P, i));
			change(df, "authority", NULL, pass == 0 ? x : NULL, pass == 0 ? NULL : x);
		}
	}
}

static int
trust_diff(struct diff *df, const struct tb_trust *A, const struct tb_trust *B)
{
	if (df->json)
		printf("{\"trust\":true,\"changes\":[");
	diff_trust(df, A, B);
	if (df->json)
		printf("]}\n");
	else if (df->n == 0)
		printf("no changes\n");
	else
		printf("%zu changes\n", df->n);
	return EX_TB_OK;
}

static int
registry_diff(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	struct diff df = {false, 0};
	struct tb_reg *A = NULL, *B = NULL;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': df.json = true; break;
		case 'h': registry_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("two REG files expected: OLD NEW");
	{
		struct tb_trust *ta = try_trust(argv[optind]), *tb = NULL;
		if (ta != NULL && (tb = try_trust(argv[optind + 1])) != NULL)
			rc = trust_diff(&df, ta, tb);
		else if (ta != NULL)
			rc = cli_fail(EX_TB_REFUSED, "%s is a trust anchor, %s is not",
			              argv[optind], argv[optind + 1]);
		tb_trust_free(ta);
		tb_trust_free(tb);
		if (ta != NULL)
			return rc;
	}
	if ((A = load_reg(argv[optind], &rc)) == NULL ||
	    (B = load_reg(argv[optind + 1], &rc)) == NULL)
		goto out;
	if (df.json)
		printf(
		    "{\"old_serial\":%llu,\"new_serial\":%llu,\"new_signatures\":%zu,\"changes\":[",
		    (unsigned long long)tb_reg_serial(A), (unsigned long long)tb_reg_serial(B),
		    tb_reg_sig_count(B));
	else
		printf("serial %llu -> %llu (%zu signatures on the new one)\n",
		       (unsigned long long)tb_reg_serial(A), (unsigned long long)tb_reg_serial(B),
		       tb_reg_sig_count(B));
	diff_head(&df, A, B);
	diff_members(&df, A, B);
	diff_rules(&df, A, B, false);
	diff_rules(&df, B, A, true);
	if (df.json)
		printf("]}\n");
	else if (df.n == 0)
		printf("no changes\n");
	else
		printf("%zu changes\n", df.n);
out:
	tb_reg_free(A);
	tb_reg_free(B);
	return rc;
}

int
cmd_registry(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {{"new", registry_new},
	            {"add", registry_add},
	            {"set", registry_set},
	            {"revoke", registry_revoke},
	            {"key", registry_key},
	            {"policy", registry_policy},
	            {"add-key", registry_add_key},
	            {"remove-key", registry_remove_key},
	            {"remove-member", registry_remove_member},
	            {"diff", registry_diff},
	            {"sign", registry_sign},
	            {"verify", registry_verify},
	            {"show", registry_show},
	            {"install", registry_install}};

	if (argc < 2) {
		registry_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		registry_usage(stdout);
		return EX_TB_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0) {
			enter_sub("registry", argv[1]);
			return subs[i].fn(argc - 1, argv + 1);
		}
	cli_cmd = "tongban registry";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- route ---- */

static void
route_usage(FILE *f)
{
	fprintf(f, "Usage: tongban route resolve --registry REG --service CODE --region CODE\n"
	           "                             [--trust TRUST.json [--now T]] [--json]\n\n"
	           "Prints the member that serves SERVICE for REGION (2, 4 or 6 digits) on the\n"
	           "first line, then \"endpoint URI\" (the first hop's first endpoint) and\n"
	           "\"path HOP...\" (the parent hub first when the member has no endpoint of\n"
	           "its own).  The longest matching region prefix wins; among equally long\n"
	           "ones the lowest member id; suspended and revoked members never route.\n"
	           "With --trust the registry is verified first.  \"no route\" and exit 1\n"
	           "when nobody serves it.  --json prints one object instead: service,\n"
	           "region, member, endpoint, path (member null when there is no route).\n"
	           "Exit status: 0 found, 1 no route or refused, 2 usage, 3 I/O, 4 internal.\n");
}

/* Prints o as one line of JSON and frees it. */
static int
print_json(cJSON *o)
{
	char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	if (s == NULL)
		return cli_fail(EX_TB_INTERNAL, "out of memory");
	printf("%s\n", s);
	cJSON_free(s);
	return EX_TB_OK;
}

/* route resolve --json: the route found, or member null. */
static int
route_json(const char *svc, const char *region, const struct tb_route_result *res)
{
	cJSON *o = cJSON_CreateObject(), *path;

	cJSON_AddStringToObject(o, "service", svc);
	cJSON_AddStringToObject(o, "region", region);
	if (res == NULL) {
		cJSON_AddNullToObject(o, "member");
		return print_json(o);
	}
	cJSON_AddStringToObject(o, "member", res->member_id);
	cJSON_AddStringToObject(o, "endpoint", res->endpoint);
	path = cJSON_AddArrayToObject(o, "path");
	for (size_t i = 0; i < res->path_len; i++)
		cJSON_AddItemToArray(path, cJSON_CreateString(res->path[i]));
	return print_json(o);
}

/* Loads REG, verifying it when trustp is given. */
static struct tb_reg *
load_checked(const char *regp, const char *trustp, const char *nows, int *rc)
{
	struct tb_reg *reg;
	struct tb_trust *t;
	struct tb_diag d;
	int64_t now;

	if ((*rc = parse_now(nows, &now)) != EX_TB_OK)
		return NULL;
	if ((reg = load_reg(regp, rc)) == NULL || trustp == NULL)
		return reg;
	if ((t = load_trust(trustp, rc)) == NULL) {
		tb_reg_free(reg);
		return NULL;
	}
	if (tb_reg_verify(reg, t, now, 0, NULL, &d) != TB_OK) {
		tb_diag_prefix(&d, regp);
		*rc = cli_fail_diag(&d);
		tb_reg_free(reg);
		reg = NULL;
	}
	tb_trust_free(t);
	return reg;
}

static int
route_resolve(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"registry", required_argument, NULL, 'r'}, {"service", required_argument, NULL, 's'},
	    {"region", required_argument, NULL, 'g'},   {"trust", required_argument, NULL, 't'},
	    {"now", required_argument, NULL, 'n'},      {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},           {0, 0, 0, 0}};
	const char *regp = NULL, *svc = NULL, *region = NULL, *trustp = NULL, *nows = NULL;
	bool json = false;
	struct tb_reg *reg;
	struct tb_route *rt = NULL;
	struct tb_route_result res;
	struct tb_diag d;
	int c, rc = EX_TB_OK, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': regp = optarg; break;
		case 's': svc = optarg; break;
		case 'g': region = optarg; break;
		case 't': trustp = optarg; break;
		case 'n': nows = optarg; break;
		case 'J': json = true; break;
		case 'h': route_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (regp == NULL || svc == NULL || region == NULL)
		return cli_usage_error("--registry, --service and --region are required");
	if ((reg = load_checked(regp, trustp, nows, &rc)) == NULL)
		return rc;
	if ((rt = tb_route_new(reg, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	err = tb_route_resolve(rt, svc, region, &res);
	if (err == TB_E_ARG) {
		rc = cli_usage_error(
		    "--service must be a service code and --region 2, 4 or 6 digits");
	} else if (err != TB_OK) {
		if (json && route_json(svc, region, NULL) != EX_TB_OK)
			goto out;
		rc = cli_fail(EX_TB_REFUSED, "route.none: no route for %s in %s", svc, region);
	} else if (json) {
		rc = route_json(svc, region, &res);
	} else {
		printf("%s\nendpoint %s\npath", res.member_id, res.endpoint);
		for (size_t i = 0; i < res.path_len; i++)
			printf(" %s", res.path[i]);
		printf("\n");
	}
out:
	tb_route_free(rt);
	tb_reg_free(reg);
	return rc;
}

int
cmd_route(int argc, char **argv)
{
	if (argc < 2) {
		route_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		route_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "resolve") == 0) {
		enter_sub("route", argv[1]);
		return route_resolve(argc - 1, argv + 1);
	}
	cli_cmd = "tongban route";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- policy ---- */

static void
policy_usage(FILE *f)
{
	fprintf(f, "Usage: tongban policy check --registry REG --from MEMBER_ID --service CODE\n"
	           "                            [--trust TRUST.json [--now T]] [--json]\n\n"
	           "Answers whether MEMBER_ID may call SERVICE under the registry's access\n"
	           "policy: prints \"allow\" or \"deny\" and what decided (\"rule N: TEXT\",\n"
	           "\"default\", \"not a member\" or \"member is suspended/revoked\").\n"
	           "--json prints one object instead: from, service, allow, by (\"rule\",\n"
	           "\"default\", \"not-member\" or \"status\"), and rule and rule_text, or\n"
	           "status.\n"
	           "Exit status: 0 allow, 1 deny or refused, 2 usage, 3 I/O, 4 internal.\n");
}

/* policy check --json: the decision and what made it. */
static int
policy_json(const struct tb_reg *reg, const char *from, const char *svc,
            const struct tb_policy_decision *dec)
{
	cJSON *o = cJSON_CreateObject();
	struct tb_buf b;

	cJSON_AddStringToObject(o, "from", from);
	cJSON_AddStringToObject(o, "service", svc);
	cJSON_AddBoolToObject(o, "allow", dec->allow);
	if (dec->rule >= 0) {
		tb_buf_init(&b);
		if (tb_policy_rule_text(reg, (size_t)dec->rule, &b) != TB_OK) {
			tb_buf_free(&b);
			cJSON_Delete(o);
			return cli_fail(EX_TB_INTERNAL, "out of memory");
		}
		cJSON_AddStringToObject(o, "by", "rule");
		cJSON_AddNumberToObject(o, "rule", (double)dec->rule);
		cJSON_AddStringToObject(o, "rule_text", (const char *)b.data);
		tb_buf_free(&b);
	} else if (dec->rule == TB_POLICY_DEFAULT) {
		cJSON_AddStringToObject(o, "by", "default");
	} else if (dec->rule == TB_POLICY_NOT_MEMBER) {
		cJSON_AddStringToObject(o, "by", "not-member");
	} else {
		cJSON_AddStringToObject(o, "by", "status");
		cJSON_AddStringToObject(
		    o, "status",
		    tb_reg_status_name(tb_reg_member_status(reg, tb_reg_find_member(reg, from))));
	}
	return print_json(o);
}

static int
policy_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"registry", required_argument, NULL, 'r'}, {"from", required_argument, NULL, 'f'},
	    {"service", required_argument, NULL, 's'},  {"trust", required_argument, NULL, 't'},
	    {"now", required_argument, NULL, 'n'},      {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},           {0, 0, 0, 0}};
	const char *regp = NULL, *from = NULL, *svc = NULL, *trustp = NULL, *nows = NULL;
	bool json = false;
	struct tb_policy_decision dec;
	struct tb_reg *reg;
	struct tb_buf b;
	int c, rc = EX_TB_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': regp = optarg; break;
		case 'f': from = optarg; break;
		case 's': svc = optarg; break;
		case 't': trustp = optarg; break;
		case 'n': nows = optarg; break;
		case 'J': json = true; break;
		case 'h': policy_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (regp == NULL || from == NULL || svc == NULL)
		return cli_usage_error("--registry, --from and --service are required");
	if ((reg = load_checked(regp, trustp, nows, &rc)) == NULL)
		return rc;
	tb_buf_init(&b);
	if (tb_policy_check(reg, from, svc, &dec) != TB_OK) {
		rc = cli_usage_error("--from must be a member id and --service a service code");
		goto out;
	}
	if (json) {
		if ((rc = policy_json(reg, from, svc, &dec)) == EX_TB_OK && !dec.allow)
			rc = EX_TB_REFUSED;
		goto out;
	}
	printf("%s ", dec.allow ? "allow" : "deny");
	if (dec.rule >= 0) {
		if (tb_policy_rule_text(reg, (size_t)dec.rule, &b) != TB_OK) {
			rc = cli_fail(EX_TB_INTERNAL, "out of memory");
			goto out;
		}
		printf("rule %ld: %s\n", dec.rule, (const char *)b.data);
	} else if (dec.rule == TB_POLICY_DEFAULT) {
		printf("default\n");
	} else if (dec.rule == TB_POLICY_NOT_MEMBER) {
		printf("not a member\n");
	} else {
		printf("member is %s\n", tb_reg_status_name(tb_reg_member_status(
		                             reg, tb_reg_find_member(reg, from))));
	}
	rc = dec.allow ? EX_TB_OK : EX_TB_REFUSED;
out:
	tb_buf_free(&b);
	tb_reg_free(reg);
	return rc;
}

int
cmd_policy(int argc, char **argv)
{
	if (argc < 2) {
		policy_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		policy_usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "check") == 0) {
		enter_sub("policy", argv[1]);
		return policy_check(argc - 1, argv + 1);
	}
	cli_cmd = "tongban policy";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}
