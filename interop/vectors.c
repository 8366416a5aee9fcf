/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vectors.c - the vectors suite: runs the committed conformance vectors
 * (interop/vectors/, schema in its README.md) through this library.
 * Other implementations run the same files through theirs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../certs/tb_key.h"
#include "../federation/tb_licence.h"
#include "../federation/tb_policy.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_route.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "interop.h"

#define MAX_FILES 256
#define MAX_VKEYS 16

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.json names of dir (caller frees); -1 when unreadable. */
static int
list_json(const char *dir, char **names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && n < MAX_FILES) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(*names), cmp);
	return n;
}

static struct tb_json_doc *
load(const char *path, struct tb_buf *b, char *why, size_t cap)
{
	struct tb_diag d;
	struct tb_json_doc *doc;
	char msg[200];

	tb_buf_reset(b);
	if (tb_file_read(path, 64u << 20, b, &d) != TB_OK ||
	    (doc = tb_json_parse(b->data, b->len, NULL, &d)) == NULL) {
		snprintf(why, cap, "%s: %s", path, tb_diag_format(&d, msg, sizeof(msg)));
		return NULL;
	}
	return doc;
}

static const char *
sget(const struct tb_json *o, const char *k)
{
	const struct tb_json *v = tb_json_get(o, k);
	return v && tb_json_kind(v) == TB_JSON_STRING ? tb_json_string(v, NULL) : NULL;
}

static int64_t
iget(const struct tb_json *o, const char *k)
{
	int64_t x = 0;
	const struct tb_json *v = tb_json_get(o, k);
	/* absent or not an integer: 0, as the vector format says */
	if (v == NULL || !tb_json_integer(v, &x))
		return 0;
	return x;
}

/* "input" (a string) or "input_b64" (base64url bytes) into out. */
static bool
input(const struct tb_json *o, struct tb_buf *out)
{
	const struct tb_json *v;
	size_t n;
	const char *s;

	tb_buf_reset(out);
	if ((v = tb_json_get(o, "input")) != NULL && tb_json_kind(v) == TB_JSON_STRING) {
		s = tb_json_string(v, &n);
		return tb_buf_add(out, s, n) == TB_OK;
	}
	if ((s = sget(o, "input_b64")) != NULL) {
		size_t len = strlen(s), got = 0;
		if (tb_buf_reserve(out, len) != TB_OK ||
		    !tb_b64url_decode(s, len, out->data, len, &got))
			return false;
		out->len = got;
		return true;
	}
	return false;
}

struct vkey {
	char member[8];
	uint8_t kid[TB_KEYID_LEN];
	struct tb_pub *pub;
};
struct vkeys {
	struct vkey k[MAX_VKEYS];
	size_t n;
};

static const struct tb_pub *
vlookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	struct vkeys *ks = ctx;
	for (size_t i = 0; i < ks->n; i++)
		if (strcmp(ks->k[i].member, from) == 0 &&
		    memcmp(ks->k[i].kid, kid, TB_KEYID_LEN) == 0)
			return ks->k[i].pub;
	return NULL;
}

/* A vector's "keys" ({member: [{"alg","kid","spki"[,"use"]}]}) into ks. */
static void
load_keys(const struct tb_json *keys, struct vkeys *ks)
{
	for (const struct tb_json *m = tb_json_first(keys); m != NULL; m = tb_json_next(m))
		for (const struct tb_json *k = tb_json_first(m); k != NULL && ks->n < MAX_VKEYS;
		     k = tb_json_next(k)) {
			const char *spki = sget(k, "spki"), *use = sget(k, "use");
			uint8_t der[1024];
			size_t dl = 0;
			/* a "tls" key never verifies a message (PROTOCOL.md 7.1) */
			if (spki == NULL || (use != NULL && strcmp(use, "tls") == 0) ||
			    !tb_b64url_decode(spki, strlen(spki), der, sizeof(der), &dl) ||
			    (ks->k[ks->n].pub = tb_pub_import_spki(der, dl, NULL)) == NULL)
				continue;
			snprintf(ks->k[ks->n].member, 8, "%s", tb_json_key(m, NULL));
			tb_pub_id(ks->k[ks->n].pub, ks->k[ks->n].kid);
			ks->n++;
		}
}

/* A sender's verdict on a receipt for its message (PROTOCOL.md 9.3, 9.7):
 * its time checked once, a receipt refused for its time alone opened
 * again at its own created time; then it must name the message. */
static const char *
receipt_verdict(const struct tb_buf *in, struct tb_env_open_opts *o, const char *msgid,
                const char *digest)
{
	struct tb_env *r = NULL, *p;
	const char *corr, *dg, *verdict;
	int rc = tb_env_open(in->data, in->len, o, &r, NULL);

	if ((rc == TB_E_EXPIRED || rc == TB_E_NOT_YET_VALID) &&
	    (p = tb_env_parse(in->data, in->len, NULL)) != NULL) {
		o->now = tb_env_created(p);
		tb_env_free(p);
		rc = tb_env_open(in->data, in->len, o, &r, NULL);
	}
	if (rc != TB_OK)
		return tb_err_reason(rc);
	corr = tb_env_corr(r);
	dg = sget(tb_env_body(r), "digest");
	verdict = strcmp(tb_env_type(r), "receipt") == 0 && corr != NULL && msgid != NULL &&
	                  strcmp(corr, msgid) == 0 && dg != NULL && digest != NULL &&
	                  strcmp(dg, digest) == 0
	              ? "delivered"
	              : "receipt.mismatch";
	tb_env_free(r);
	return verdict;
}

static void
run_receipt(struct ti *t, const char *path, const char *id)
{
	struct tb_buf b, in;
	struct tb_json_doc *doc;
	const struct tb_json *root;
	struct vkeys ks = {.n = 0};
	const char *expect, *got = "a readable vector";
	double t0 = ti_now();
	char why[300] = "";

	tb_buf_init(&b);
	tb_buf_init(&in);
	if ((doc = load(path, &b, why, sizeof(why))) != NULL &&
	    (expect = sget(root = tb_json_root(doc), "expect")) != NULL && input(root, &in)) {
		struct tb_env_open_opts o = {vlookup, &ks,  iget(root, "now"), iget(root, "skew"),
		                             NULL,    NULL, NULL};
		load_keys(tb_json_get(root, "keys"), &ks);
		got = receipt_verdict(&in, &o, sget(root, "message_id"), sget(root, "message_digest"));
		ti_result(t, "vectors", id, strcmp(expect, got) == 0, expect, got, ti_now() - t0);
	} else {
		ti_result(t, "vectors", id, false, got, why, ti_now() - t0);
	}
	for (size_t i = 0; i < ks.n; i++)
		tb_pub_free(ks.k[i].pub);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&in);
}

static void
run_envelope(struct ti *t, const char *path, const char *id)
{
	struct tb_buf b, in;
	struct tb_json_doc *doc;
	const struct tb_json *root, *keys;
	struct vkeys ks;
	char why[300] = "", got[300];
	const char *expect;
	struct tb_env *env = NULL;
	struct tb_diag d;
	double t0 = ti_now();
	int rc;

	tb_buf_init(&b);
	tb_buf_init(&in);
	ks.n = 0;
	if ((doc = load(path, &b, why, sizeof(why))) == NULL)
		goto out;
	root = tb_json_root(doc);
	expect = sget(root, "expect");
	keys = tb_json_get(root, "keys");
	if (expect == NULL || keys == NULL || !input(root, &in)) {
		snprintf(why, sizeof(why), "vector lacks expect, keys or input");
		goto out;
	}
	load_keys(keys, &ks);
	struct tb_env_open_opts o = {vlookup, &ks, iget(root, "now"), iget(root, "skew"), NULL,
	                             NULL,    NULL};
	rc = tb_env_open(in.data, in.len, &o, &env, &d);
	if (rc != TB_OK) {
		if (strcmp(tb_err_reason(rc), expect) != 0)
			snprintf(why, sizeof(why), "%s (%s)", tb_err_reason(rc), d.detail);
	} else if (strcmp(expect, "ok") != 0) {
		snprintf(why, sizeof(why), "ok");
	} else {
		uint8_t dg[32];
		char hex[65];
		const char *want = sget(root, "digest");
		if (tb_env_digest(env, dg) != TB_OK) {
			snprintf(why, sizeof(why), "ok, but no digest (out of memory)");
		} else {
			tb_hex_encode(dg, 32, hex);
			if (want != NULL && strcmp(want, hex) != 0)
				snprintf(why, sizeof(why), "ok, but digest %s", hex);
		}
	}
	snprintf(got, sizeof(got), "%s", why);
	ti_result(t, "vectors", id, why[0] == '\0', expect, got, ti_now() - t0);
	goto done;
out:
	ti_result(t, "vectors", id, false, "a readable vector", why, ti_now() - t0);
done:
	tb_env_free(env);
	for (size_t i = 0; i < ks.n; i++)
		tb_pub_free(ks.k[i].pub);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&in);
}

static void
run_registry(struct ti *t, const char *dir, const char *path, const char *id)
{
	struct tb_buf b, in, tb;
	struct tb_json_doc *doc;
	const struct tb_json *root;
	struct tb_trust *trust = NULL;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	char why[300] = "", tpath[1400];
	const char *expect, *tname;
	double t0 = ti_now();
	int rc;

	tb_buf_init(&b);
	tb_buf_init(&in);
	tb_buf_init(&tb);
	if ((doc = load(path, &b, why, sizeof(why))) == NULL) {
		ti_result(t, "vectors", id, false, "a readable vector", why, 0);
		goto out;
	}
	root = tb_json_root(doc);
	expect = sget(root, "expect");
	tname = sget(root, "trust");
	snprintf(tpath, sizeof(tpath), "%s/%s", dir, tname ? tname : "trust.json");
	if (expect == NULL || !input(root, &in) || tb_file_read(tpath, 1 << 20, &tb, &d) != TB_OK ||
	    (trust = tb_trust_parse(tb.data, tb.len, &d)) == NULL) {
		ti_result(t, "vectors", id, false, "a readable vector and trust anchor", tpath, 0);
		goto out;
	}
	if ((reg = tb_reg_parse(in.data, in.len, &d)) == NULL)
		rc = d.code;
	else
		rc = tb_reg_verify(reg, trust, iget(root, "now"), (uint64_t)iget(root, "previous"),
		                   NULL, &d);
	if (strcmp(rc == TB_OK ? "ok" : tb_err_reason(rc), expect) != 0)
		snprintf(why, sizeof(why), "%s%s%s", rc == TB_OK ? "ok" : tb_err_reason(rc),
		         rc == TB_OK ? "" : ": ", rc == TB_OK ? "" : d.detail);
	ti_result(t, "vectors", id, why[0] == '\0', expect, why, ti_now() - t0);
out:
	tb_reg_free(reg);
	tb_trust_free(trust);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&in);
	tb_buf_free(&tb);
}

static void
run_routes(struct ti *t, const char *path, const char *base)
{
	struct tb_buf b, rb;
	struct tb_json_doc *doc;
	const struct tb_json *root, *c;
	struct tb_reg *reg = NULL;
	struct tb_route *rt = NULL;
	struct tb_diag d;
	char why[300] = "", id[400], exp[300];
	int i = 0;

	tb_buf_init(&b);
	tb_buf_init(&rb);
	if ((doc = load(path, &b, why, sizeof(why))) == NULL ||
	    tb_json_get(root = tb_json_root(doc), "registry") == NULL ||
	    tb_json_canon(tb_json_get(root, "registry"), NULL, &rb) != TB_OK ||
	    (reg = tb_reg_parse(rb.data, rb.len, &d)) == NULL ||
	    (rt = tb_route_new(reg, &d)) == NULL) {
		snprintf(id, sizeof(id), "vec.route.%s", base);
		if (ti_want(t, id))
			ti_result(t, "vectors", id, false, "a readable route vector", path, 0);
		goto out;
	}
	for (c = tb_json_first(tb_json_get(root, "cases")); c != NULL; c = tb_json_next(c)) {
		struct tb_route_result r;
		const struct tb_json *x = tb_json_get(c, "expect"), *p;
		const char *svc = sget(c, "service"), *region = sget(c, "region");
		double t0 = ti_now();
		int rc;
		char got[300];

		snprintf(id, sizeof(id), "vec.route.%s.%d", base, ++i);
		if (!ti_want(t, id))
			continue;
		rc = tb_route_resolve(rt, svc ? svc : "", region ? region : "", &r);
		if (rc != TB_OK)
			snprintf(got, sizeof(got), "%s", tb_err_reason(rc));
		else
			snprintf(got, sizeof(got), "%s via %s path %s%s%s", r.member_id, r.endpoint,
			         r.path[0], r.path_len > 1 ? " " : "",
			         r.path_len > 1 ? r.path[1] : "");
		if (x != NULL && tb_json_kind(x) == TB_JSON_STRING) {
			snprintf(exp, sizeof(exp), "%s", tb_json_string(x, NULL));
		} else if (x != NULL) {
			p = tb_json_get(x, "path");
			const struct tb_json *p0 = tb_json_first(p),
			                     *p1 = p0 ? tb_json_next(p0) : NULL;
			snprintf(exp, sizeof(exp), "%s via %s path %s%s%s", sget(x, "member"),
			         sget(x, "endpoint"), p0 ? tb_json_string(p0, NULL) : "",
			         p1 ? " " : "", p1 ? tb_json_string(p1, NULL) : "");
		} else {
			snprintf(exp, sizeof(exp), "(no expect)");
		}
		ti_result(t, "vectors", id, strcmp(exp, got) == 0, exp, got, ti_now() - t0);
	}
out:
	tb_route_free(rt);
	tb_reg_free(reg);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&rb);
}

static void
run_jcs(struct ti *t, const char *vdir, const char *name)
{
	char ip[1100], op[1100], id[200], why[300] = "";
	struct tb_buf in, out, canon;
	struct tb_json_doc *doc = NULL;
	struct tb_diag d;
	double t0 = ti_now();
	size_t l = strlen(name) - 5;

	snprintf(id, sizeof(id), "vec.jcs.%.*s", (int)l, name);
	if (!ti_want(t, id))
		return;
	tb_buf_init(&in);
	tb_buf_init(&out);
	tb_buf_init(&canon);
	snprintf(ip, sizeof(ip), "%s/jcs/input/%s", vdir, name);
	snprintf(op, sizeof(op), "%s/jcs/output/%s", vdir, name);
	if (tb_file_read(ip, 1 << 20, &in, &d) != TB_OK ||
	    tb_file_read(op, 1 << 20, &out, &d) != TB_OK)
		snprintf(why, sizeof(why), "unreadable %.130s or %.130s", ip, op);
	else if ((doc = tb_json_parse(in.data, in.len, NULL, &d)) == NULL)
		snprintf(why, sizeof(why), "%s: %s", tb_err_reason(d.code), d.detail);
	else if (tb_json_canon(tb_json_root(doc), NULL, &canon) != TB_OK || canon.len != out.len ||
	         memcmp(canon.data, out.data, out.len) != 0)
		ti_printable(canon.data, canon.len, why, sizeof(why));
	ti_result(t, "vectors", id, why[0] == '\0', "the bytes of output/NAME.json", why,
	          ti_now() - t0);
	tb_json_doc_free(doc);
	tb_buf_free(&in);
	tb_buf_free(&out);
	tb_buf_free(&canon);
}

static void
run_numbers(struct ti *t, const char *vdir)
{
	char path[1100], line[512], why[300] = "";
	const char *id = "vec.numbers";
	FILE *f;
	size_t n = 0;
	double t0 = ti_now();

	if (!ti_want(t, id))
		return;
	snprintf(path, sizeof(path), "%s/numbers.txt", vdir);
	if ((f = fopen(path, "r")) == NULL) {
		ti_result(t, "vectors", id, false, "readable numbers.txt", path, 0);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL && !why[0]) {
		unsigned long long bits;
		char want[64], fmt[32];
		double v;
		if (line[0] == '#' || sscanf(line, "%llx %63s", &bits, want) != 2)
			continue;
		memcpy(&v, &bits, sizeof(v));
		tb_json_fmt_number(v, fmt);
		n++;
		if (strcmp(fmt, want) != 0)
			snprintf(why, sizeof(why), "%016llx -> %s, want %s", bits, fmt, want);
	}
	fclose(f);
	if (!why[0] && n == 0)
		snprintf(why, sizeof(why), "no vectors in %.250s", path);
	ti_result(t, "vectors", id, why[0] == '\0', "every line's ES6 form", why, ti_now() - t0);
}

/* licences/NAME.json: each case's licence checked against the registry
 * (PROTOCOL.md 10.5) at its "now"; the token (or "ok") must be "expect". */
static void
run_licences(struct ti *t, const char *path, const char *base)
{
	struct tb_buf b, rb;
	struct tb_json_doc *doc;
	const struct tb_json *root, *c;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	char why[300] = "", id[400];
	int i = 0;

	tb_buf_init(&b);
	tb_buf_init(&rb);
	if ((doc = load(path, &b, why, sizeof(why))) == NULL ||
	    tb_json_get(root = tb_json_root(doc), "registry") == NULL ||
	    tb_json_canon(tb_json_get(root, "registry"), NULL, &rb) != TB_OK ||
	    (reg = tb_reg_parse(rb.data, rb.len, &d)) == NULL) {
		snprintf(id, sizeof(id), "vec.licences.%s", base);
		if (ti_want(t, id))
			ti_result(t, "vectors", id, false, "a readable licence vector", path, 0);
		goto out;
	}
	for (c = tb_json_first(tb_json_get(root, "cases")); c != NULL; c = tb_json_next(c)) {
		const char *in = sget(c, "input"), *exp = sget(c, "expect");
		struct tb_json_doc *ld = NULL;
		double t0 = ti_now();
		int rc;

		snprintf(id, sizeof(id), "vec.licences.%s.%d", base, ++i);
		if (!ti_want(t, id))
			continue;
		if (in == NULL || (ld = tb_json_parse((const uint8_t *)in, strlen(in), NULL, &d)) == NULL)
			rc = in == NULL ? TB_E_ARG : d.code;
		else
			rc = tb_licence_check(reg, tb_json_root(ld), iget(c, "now"), &d);
		tb_json_doc_free(ld);
		ti_result(t, "vectors", id,
		          exp != NULL && strcmp(exp, rc == TB_OK ? "ok" : tb_err_reason(rc)) == 0,
		          exp ? exp : "(no expect)", rc == TB_OK ? "ok" : tb_err_reason(rc),
		          ti_now() - t0);
	}
out:
	tb_reg_free(reg);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&rb);
}

/* policies/NAME.json: "allow|deny rule N|default|not-a-member|inactive",
 * or the refusal token, for each case (PROTOCOL.md 8.2). */
static void
run_policies(struct ti *t, const char *path, const char *base)
{
	struct tb_buf b, rb;
	struct tb_json_doc *doc;
	const struct tb_json *root, *c;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	char why[300] = "", id[400];
	int i = 0;

	tb_buf_init(&b);
	tb_buf_init(&rb);
	if ((doc = load(path, &b, why, sizeof(why))) == NULL ||
	    tb_json_get(root = tb_json_root(doc), "registry") == NULL ||
	    tb_json_canon(tb_json_get(root, "registry"), NULL, &rb) != TB_OK ||
	    (reg = tb_reg_parse(rb.data, rb.len, &d)) == NULL) {
		snprintf(id, sizeof(id), "vec.policies.%s", base);
		if (ti_want(t, id))
			ti_result(t, "vectors", id, false, "a readable policy vector", path, 0);
		goto out;
	}
	for (c = tb_json_first(tb_json_get(root, "cases")); c != NULL; c = tb_json_next(c)) {
		const char *from = sget(c, "from"), *svc = sget(c, "service"),
		           *exp = sget(c, "expect");
		struct tb_policy_decision pd;
		double t0 = ti_now();
		char got[64];
		int rc;

		snprintf(id, sizeof(id), "vec.policies.%s.%d", base, ++i);
		if (!ti_want(t, id))
			continue;
		rc = tb_policy_check(reg, from ? from : "", svc ? svc : "", &pd);
		if (rc != TB_OK)
			snprintf(got, sizeof(got), "%s", tb_err_reason(rc));
		else if (pd.rule >= 0)
			snprintf(got, sizeof(got), "%s rule %ld", pd.allow ? "allow" : "deny", pd.rule);
		else
			snprintf(got, sizeof(got), "%s %s", pd.allow ? "allow" : "deny",
			         pd.rule == TB_POLICY_DEFAULT      ? "default"
			         : pd.rule == TB_POLICY_NOT_MEMBER ? "not-a-member"
			                                           : "inactive");
		ti_result(t, "vectors", id, exp != NULL && strcmp(exp, got) == 0,
		          exp ? exp : "(no expect)", got, ti_now() - t0);
	}
out:
	tb_reg_free(reg);
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	tb_buf_free(&rb);
}

int
ti_suite_vectors(struct ti *t)
{
	static const char *const subs[] = {"envelopes", "registries", "routes", "licences",
	                                    "policies",  "receipts"};
	char *names[MAX_FILES], dir[1100], path[1200], id[300];
	int n;

	snprintf(dir, sizeof(dir), "%s/jcs/input", t->vectors);
	if ((n = list_json(dir, names)) < 0) {
		fprintf(stderr, "tongban-interop: cannot read the vectors in %s\n", t->vectors);
		return TI_EX_SETUP;
	}
	for (int i = 0; i < n; i++) {
		run_jcs(t, t->vectors, names[i]);
		free(names[i]);
	}
	run_numbers(t, t->vectors);
	for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
		snprintf(dir, sizeof(dir), "%s/%s", t->vectors, subs[s]);
		if ((n = list_json(dir, names)) < 0) {
			fprintf(stderr, "tongban-interop: cannot read %s\n", dir);
			return TI_EX_SETUP;
		}
		for (int i = 0; i < n; i++) {
			size_t l = strlen(names[i]) - 5;
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			snprintf(id, sizeof(id), "vec.%s.%.*s", subs[s], (int)l, names[i]);
			if (s == 2)
				run_routes(t, path, id + strlen("vec.routes."));
			else if (s == 3)
				run_licences(t, path, id + strlen("vec.licences."));
			else if (s == 4)
				run_policies(t, path, id + strlen("vec.policies."));
			else if (s == 5 && ti_want(t, id))
				run_receipt(t, path, id);
			else if (strncmp(names[i], "trust", 5) != 0 && ti_want(t, id)) {
				if (s == 0)
					run_envelope(t, path, id);
				else
					run_registry(t, dir, path, id);
			}
			free(names[i]);
		}
	}
	return 0;
}
