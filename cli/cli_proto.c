/* SPDX-License-Identifier: Apache-2.0 */
/* cli_proto.c - `tongban canon`, `tongban key`, `tongban msg`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_key.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

#define INPUT_MAX (16u << 20)

static char subname[160];

/* Sets cli_cmd to "tongban GROUP SUB" for messages. */
static void
enter_sub(const char *group, const char *sub)
{
	snprintf(subname, sizeof(subname), "tongban %s %s", group, sub);
	cli_cmd = subname;
}

static int
write_out(const void *p, size_t n)
{
	if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)
		return cli_stdout_error(strerror(errno));
	return EX_TB_OK;
}

/* ---- canon ---- */

static void
canon_usage(FILE *f)
{
	fprintf(f, "Usage: tongban canon [FILE]\n\n"
	           "Print the RFC 8785 (JCS) canonical form of the JSON text in FILE (or\n"
	           "standard input) without a trailing newline.  The input must be I-JSON:\n"
	           "valid UTF-8, no duplicate member names, no lone surrogates, numbers in\n"
	           "double range; at most 16 MiB and 512 levels of nesting.\n");
}

int
cmd_canon(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	struct tb_buf in, out;
	struct tb_json_doc *doc;
	struct tb_diag d;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			canon_usage(stdout);
			return EX_TB_OK;
		}
		return cli_usage_error("unknown option");
	}
	if (argc - optind > 1)
		return cli_usage_error("at most one FILE");
	tb_buf_init(&in);
	tb_buf_init(&out);
	if (tb_file_read(optind < argc ? argv[optind] : NULL, INPUT_MAX, &in, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((doc = tb_json_parse(in.data, in.len, NULL, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_json_canon(tb_json_root(doc), NULL, &out) != TB_OK)
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
	else
		rc = write_out(out.data, out.len);
	tb_json_doc_free(doc);
out:
	tb_buf_free(&in);
	tb_buf_free(&out);
	return rc;
}

/* ---- key ---- */

static void
key_usage(FILE *f)
{
	fprintf(f,
	        "Usage: tongban key gen --alg ed25519|p256|sm2 --out KEY.pem [--pass-file FILE]\n"
	        "       tongban key pub [--pass-file FILE] KEY.pem\n"
	        "       tongban key id PEM\n\n"
	        "gen  writes a new private key (PKCS#8 PEM, mode 0600; encrypted with\n"
	        "     AES-256 when --pass-file names a file whose first line is the password).\n"
	        "     Refuses to overwrite an existing file.  sm2 is SM2 with SM3\n"
	        "     (GB/T 32918.2), for message, receipt and registry signatures.\n"
	        "pub  prints the public key (PEM) of a private key.\n"
	        "id   prints the key id (SHA-256 of the SubjectPublicKeyInfo, 64 hex digits)\n"
	        "     of a private key, public key or certificate.\n");
}

static int
key_gen(int argc, char **argv)
{
	static const struct option opts[] = {{"alg", required_argument, NULL, 'a'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"pass-file", required_argument, NULL, 'p'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *alg = NULL, *outp = NULL, *passf = NULL;
	struct tb_key *key;
	struct tb_diag d;
	char *pass;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a': alg = optarg; break;
		case 'o': outp = optarg; break;
		case 'p': passf = optarg; break;
		case 'h': key_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (alg == NULL || outp == NULL)
		return cli_usage_error("--alg and --out are required");
	if (tb_alg_from_name(alg) == TB_ALG_NONE)
		return cli_usage_error("--alg must be ed25519, p256 or sm2, not '%s'", alg);
	if (access(outp, F_OK) == 0)
		return cli_fail(EX_TB_IO, "%s: file exists; refusing to overwrite a key", outp);
	pass = cli_read_pass(passf, &rc);
	if (rc != EX_TB_OK)
		return rc;
	if ((key = tb_key_generate(tb_alg_from_name(alg), &d)) == NULL) {
		cli_free_pass(pass);
		return cli_fail_diag(&d);
	}
	rc = tb_key_save(key, outp, pass, &d) == TB_OK ? EX_TB_OK : cli_fail_diag(&d);
	tb_key_free(key);
	cli_free_pass(pass);
	return rc;
}

static int
key_pub(int argc, char **argv, bool id_only)
{
	static const struct option opts[] = {{"pass-file", required_argument, NULL, 'p'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *passf = NULL;
	struct tb_key *key = NULL;
	struct tb_pub *pub = NULL;
	struct tb_diag d;
	struct tb_buf out, raw;
	char *pass;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': passf = optarg; break;
		case 'h': key_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one key file expected");
	pass = cli_read_pass(passf, &rc);
	if (rc != EX_TB_OK)
		return rc;
	tb_buf_init(&out);
	tb_buf_init(&raw);
	if (id_only) {
		/* a private key, a public key or a certificate */
		if (tb_file_read(argv[optind], 65536, &raw, &d) != TB_OK) {
			rc = cli_fail_diag(&d);
			goto out;
		}
		if (memmem(raw.data, raw.len, "PRIVATE KEY", 11) != NULL)
			key = tb_key_import(raw.data, raw.len, pass, &d);
		else
			pub = tb_pub_import(raw.data, raw.len, &d);
		if (key == NULL && pub == NULL) {
			tb_diag_prefix(&d, argv[optind]);
			rc = cli_fail_diag(&d);
			goto out;
		}
		uint8_t id[TB_KEYID_LEN];
		char hex[65];
		if (key != NULL)
			tb_key_id(key, id);
		else
			tb_pub_id(pub, id);
		tb_hex_encode(id, sizeof(id), hex);
		printf("%s\n", hex);
		rc = EX_TB_OK;
		goto out;
	}
	if ((key = tb_key_load(argv[optind], pass, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((pub = tb_key_pub(key)) == NULL || tb_pub_pem(pub, &out) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "cannot export the public key");
		goto out;
	}
	rc = write_out(out.data, out.len);
out:
	tb_pub_free(pub);
	tb_key_free(key);
	cli_free_pass(pass);
	tb_buf_free(&out);
	tb_buf_wipe(&raw);
	return rc;
}

int
cmd_key(int argc, char **argv)
{
	if (argc < 2) {
		key_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		key_usage(stdout);
		return EX_TB_OK;
	}
	enter_sub("key", argv[1]);
	if (strcmp(argv[1], "gen") == 0)
		return key_gen(argc - 1, argv + 1);
	if (strcmp(argv[1], "pub") == 0)
		return key_pub(argc - 1, argv + 1, false);
	if (strcmp(argv[1], "id") == 0)
		return key_pub(argc - 1, argv + 1, true);
	cli_cmd = "tongban key";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}

/* ---- msg ---- */

static void
msg_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: tongban msg new --type TYPE --from ID (--to ID | --route-service CODE\n"
	    "                       --route-region CODE) [--service CODE] [--corr ID]\n"
	    "                       [--body FILE] [--ttl SECONDS] [--hops N] [--created TIME]\n"
	    "       tongban msg seal --key KEY.pem [--pass-file FILE] [FILE]\n"
	    "       tongban msg open --pub PUB_OR_CERT.pem [--now TIME] [--skew SECONDS] [FILE]\n"
	    "       tongban msg digest [FILE]\n"
	    "       tongban msg types\n\n"
	    "new     prints a fresh unsigned envelope (random 128-bit id; created now or\n"
	    "        at TIME in Unix seconds; expires after --ttl, default 86400 s).\n"
	    "seal    signs the envelope in FILE (or standard input) and prints it.\n"
	    "open    verifies a sealed envelope against the given public key or\n"
	    "        certificate, its validity window (clock skew default 300 s) and\n"
	    "        structure; prints it on success, else one line with the reason.\n"
	    "digest  prints the message digest (SHA-256 of the signed bytes, hex; SM3\n"
	    "        for an envelope signed with sm2).\n"
	    "types   lists the message types of protocol v1.\n");
}

static int
msg_new(int argc, char **argv)
{
	static const struct option opts[] = {{"type", required_argument, NULL, 't'},
	                                     {"from", required_argument, NULL, 'f'},
	                                     {"to", required_argument, NULL, 'T'},
	                                     {"service", required_argument, NULL, 's'},
	                                     {"route-service", required_argument, NULL, 'S'},
	                                     {"route-region", required_argument, NULL, 'R'},
	                                     {"corr", required_argument, NULL, 'c'},
	                                     {"body", required_argument, NULL, 'b'},
	                                     {"ttl", required_argument, NULL, 'l'},
	                                     {"hops", required_argument, NULL, 'H'},
	                                     {"created", required_argument, NULL, 'C'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	struct tb_env_fields f;
	const char *bodyf = NULL;
	struct tb_buf body, out;
	struct tb_env *env = NULL;
	struct tb_diag d;
	long long v;
	int c, rc;

	memset(&f, 0, sizeof(f));
	f.created = (int64_t)time(NULL);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': f.type = optarg; break;
		case 'f': f.from = optarg; break;
		case 'T': f.to = optarg; break;
		case 's': f.service = optarg; break;
		case 'S': f.route_service = optarg; break;
		case 'R': f.route_region = optarg; break;
		case 'c': f.corr = optarg; break;
		case 'b': bodyf = optarg; break;
		case 'l':
			if (cli_parse_i64(optarg, &v) != 0 || v < 1 || v > TB_ENV_MAX_LIFETIME)
				return cli_usage_error("--ttl must be 1..%d seconds",
				                       TB_ENV_MAX_LIFETIME);
			f.ttl = v;
			break;
		case 'H':
			if (cli_parse_i64(optarg, &v) != 0 || v < 1 || v > TB_ENV_MAX_HOPS)
				return cli_usage_error("--hops must be 1..%d", TB_ENV_MAX_HOPS);
			f.hops = (int)v;
			break;
		case 'C':
			if (cli_parse_i64(optarg, &v) != 0 || v < 1)
				return cli_usage_error("--created must be Unix seconds");
			f.created = v;
			break;
		case 'h': msg_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (f.type == NULL || f.from == NULL)
		return cli_usage_error("--type and --from are required");
	if (f.to == NULL && f.route_service == NULL)
		return cli_usage_error("--to or --route-service/--route-region is required");
	if ((f.route_service == NULL) != (f.route_region == NULL))
		return cli_usage_error("--route-service and --route-region go together");
	tb_buf_init(&body);
	tb_buf_init(&out);
	if (bodyf != NULL) {
		if (tb_file_read(bodyf, TB_ENV_MAX_SIZE, &body, &d) != TB_OK) {
			rc = cli_fail_diag(&d);
			goto out;
		}
		f.body = body.data;
		f.body_len = body.len;
	}
	if ((env = tb_env_create(&f, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_env_serialize(env, &out) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if (tb_buf_addc(&out, '\n') != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	rc = write_out(out.data, out.len);
out:
	tb_env_free(env);
	tb_buf_free(&body);
	tb_buf_free(&out);
	return rc;
}

static int
msg_seal(int argc, char **argv)
{
	static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
	                                     {"pass-file", required_argument, NULL, 'p'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *keyf = NULL, *passf = NULL;
	struct tb_key *key = NULL;
	struct tb_env *env = NULL;
	struct tb_buf in, out;
	struct tb_diag d;
	char *pass = NULL;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': keyf = optarg; break;
		case 'p': passf = optarg; break;
		case 'h': msg_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (keyf == NULL)
		return cli_usage_error("--key is required");
	if (argc - optind > 1)
		return cli_usage_error("at most one FILE");
	tb_buf_init(&in);
	tb_buf_init(&out);
	pass = cli_read_pass(passf, &rc);
	if (rc != EX_TB_OK)
		goto out;
	if ((key = tb_key_load(keyf, pass, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_file_read(optind < argc ? argv[optind] : NULL, TB_ENV_MAX_SIZE, &in, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((env = tb_env_parse(in.data, in.len, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_env_seal(env, key, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_env_serialize(env, &out) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if (tb_buf_addc(&out, '\n') != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	rc = write_out(out.data, out.len);
out:
	tb_env_free(env);
	tb_key_free(key);
	cli_free_pass(pass);
	tb_buf_free(&in);
	tb_buf_free(&out);
	return rc;
}

static const struct tb_pub *
one_key_lookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	const struct tb_pub *pub = ctx;
	uint8_t id[TB_KEYID_LEN];

	(void)from;
	tb_pub_id(pub, id);
	return memcmp(id, kid, TB_KEYID_LEN) == 0 ? pub : NULL;
}

static int
msg_open(int argc, char **argv)
{
	static const struct option opts[] = {{"pub", required_argument, NULL, 'p'},
	                                     {"now", required_argument, NULL, 'n'},
	                                     {"skew", required_argument, NULL, 's'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *pubf = NULL;
	struct tb_pub *pub = NULL;
	struct tb_env *env = NULL;
	struct tb_env_open_opts o;
	struct tb_buf in, out;
	struct tb_diag d;
	long long v;
	int c, rc;

	memset(&o, 0, sizeof(o));
	o.now = (int64_t)time(NULL);
	o.skew = TB_ENV_DEFAULT_SKEW;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pubf = optarg; break;
		case 'n':
			if (cli_parse_i64(optarg, &v) != 0 || v < 0)
				return cli_usage_error("--now must be Unix seconds");
			o.now = v;
			break;
		case 's':
			if (cli_parse_i64(optarg, &v) != 0 || v < 0 || v > 86400)
				return cli_usage_error("--skew must be 0..86400 seconds");
			o.skew = v;
			break;
		case 'h': msg_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (pubf == NULL)
		return cli_usage_error("--pub is required");
	if (argc - optind > 1)
		return cli_usage_error("at most one FILE");
	tb_buf_init(&in);
	tb_buf_init(&out);
	if ((pub = tb_pub_load(pubf, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_file_read(optind < argc ? argv[optind] : NULL, TB_ENV_MAX_SIZE, &in, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	o.lookup = one_key_lookup;
	o.ctx = pub;
	if (tb_env_open(in.data, in.len, &o, &env, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_env_serialize(env, &out) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if (tb_buf_addc(&out, '\n') != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	rc = write_out(out.data, out.len);
out:
	tb_env_free(env);
	tb_pub_free(pub);
	tb_buf_free(&in);
	tb_buf_free(&out);
	return rc;
}

static int
msg_digest(int argc, char **argv)
{
	struct tb_buf in;
	struct tb_env *env = NULL;
	struct tb_diag d;
	uint8_t dg[32];
	char hex[65];
	int rc;

	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		msg_usage(stdout);
		return EX_TB_OK;
	}
	if (argc > 2)
		return cli_usage_error("at most one FILE");
	tb_buf_init(&in);
	if (tb_file_read(argc > 1 ? argv[1] : NULL, TB_ENV_MAX_SIZE, &in, &d) != TB_OK)
		rc = cli_fail_diag(&d);
	else if ((env = tb_env_parse(in.data, in.len, &d)) == NULL)
		rc = cli_fail_diag(&d);
	else if (tb_env_digest(env, dg) != TB_OK)
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
	else {
		tb_hex_encode(dg, 32, hex);
		printf("%s\n", hex);
		rc = EX_TB_OK;
	}
	tb_env_free(env);
	tb_buf_free(&in);
	return rc;
}

int
cmd_msg(int argc, char **argv)
{
	if (argc < 2) {
		msg_usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		msg_usage(stdout);
		return EX_TB_OK;
	}
	enter_sub("msg", argv[1]);
	if (strcmp(argv[1], "new") == 0)
		return msg_new(argc - 1, argv + 1);
	if (strcmp(argv[1], "seal") == 0)
		return msg_seal(argc - 1, argv + 1);
	if (strcmp(argv[1], "open") == 0)
		return msg_open(argc - 1, argv + 1);
	if (strcmp(argv[1], "digest") == 0)
		return msg_digest(argc - 1, argv + 1);
	if (strcmp(argv[1], "types") == 0) {
		for (const char *const *t = tb_msgtype_all(); *t != NULL; t++)
			printf("%s\n", *t);
		return EX_TB_OK;
	}
	cli_cmd = "tongban msg";
	return cli_usage_error("unknown subcommand '%s'", argv[1]);
}
