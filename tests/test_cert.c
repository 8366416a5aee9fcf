/* SPDX-License-Identifier: Apache-2.0 */
/* test_cert.c - certs/tb_cert: parsing, member ids, accessors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/tb_ca.h"
#include "certs/tb_cert.h"
#include "certs/tb_cert_internal.h"
#include "certs/tb_key.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

/* A root CA, a province CA and a node certificate, made once. */
struct fixture {
	char dir[64];
	struct tb_key *node_key;
	struct tb_buf node_pem;
	struct tb_cert *root, *prov, *node;
};

/* dir/a or dir/a/b in one of four rotating buffers (a test helper). */
static char *
cat3(const char *dir, const char *a, const char *b)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	if (b != NULL)
		snprintf(buf[i], sizeof(buf[i]), "%s/%s/%s", dir, a, b);
	else
		snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, a);
	return buf[i];
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tb_ca_spec rs = {"Test Root", NULL, TB_ALG_P256, 10};
	struct tb_ca_spec ps = {"Jiangsu", "320000", TB_ALG_P256, 5};
	struct tb_ca *root, *prov;
	struct tb_csr *csr;
	struct tb_diag d;

	assert_int_equal(tb_crypto_init(), TB_OK);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tbcertXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(tb_ca_create(cat3(f->dir, "root", NULL), &rs, NULL, NULL, &d), TB_OK);
	assert_non_null(root = tb_ca_open(cat3(f->dir, "root", NULL), NULL, &d));
	assert_int_equal(tb_ca_create(cat3(f->dir, "prov", NULL), &ps, NULL, root, &d), TB_OK);
	assert_non_null(prov = tb_ca_open(cat3(f->dir, "prov", NULL), NULL, &d));
	assert_non_null(f->node_key = tb_key_generate(TB_ALG_P256, &d));
	assert_non_null(csr = tb_csr_new(f->node_key, "320300", "Xuzhou", "huaihai",
	                                 "coaps://xuzhou.example:5684", &d));
	tb_buf_init(&f->node_pem);
	assert_int_equal(tb_ca_issue(prov, csr, 30, &f->node_pem, &d), TB_OK);
	assert_non_null(f->node = tb_cert_import(f->node_pem.data, f->node_pem.len, &d));
	assert_non_null(f->root = tb_cert_load(cat3(f->dir, "root", "ca.crt"), &d));
	assert_non_null(f->prov = tb_cert_load(cat3(f->dir, "prov", "ca.crt"), &d));
	tb_csr_free(csr);
	tb_ca_free(prov);
	tb_ca_free(root);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	tb_cert_free(f->node);
	tb_cert_free(f->prov);
	tb_cert_free(f->root);
	tb_key_free(f->node_key);
	tb_buf_free(&f->node_pem);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
test_member_id_ok(void **state)
{
	static const struct {
		const char *id;
		bool ok;
	} cases[] = {
	    {"320300", true},  {"100000", true},    {"999999", true},  {"012345", false},
	    {"32030", false},  {"3203000", false},  {"32030a", false}, {"", false},
	    {" 32030", false}, {"320300\n", false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(tb_member_id_ok(cases[i].id), cases[i].ok);
	assert_false(tb_member_id_ok(NULL));
}

static void
test_accessors(void **state)
{
	struct fixture *f = *state;
	char id[TB_MEMBER_ID_MAX], serial[TB_CERT_SERIAL_HEX_MAX], desc[32];
	uint8_t a[TB_KEYID_LEN], b[TB_KEYID_LEN];
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(tb_cert_member_id(f->node, id), TB_OK);
	assert_string_equal(id, "320300");
	assert_string_equal(tb_cert_subject(f->node), "serialNumber=320300,CN=Xuzhou,O=huaihai");
	assert_string_equal(tb_cert_issuer(f->node), "serialNumber=320000,CN=Jiangsu");
	assert_string_equal(tb_cert_subject(f->root), "CN=Test Root");
	/* the key id is the same SPKI hash tb_key computes */
	tb_cert_key_id(f->node, a);
	tb_key_id(f->node_key, b);
	assert_memory_equal(a, b, TB_KEYID_LEN);
	assert_false(tb_cert_is_ca(f->node));
	assert_true(tb_cert_is_ca(f->prov));
	assert_true(tb_cert_is_ca(f->root));
	assert_true(tb_cert_is_self_signed(f->root));
	assert_false(tb_cert_is_self_signed(f->prov));
	assert_false(tb_cert_is_self_signed(f->node));
	assert_true(tb_cert_not_before(f->node) <= now);
	/* asked for 30 days, clamped to the 5-day province CA */
	assert_int_equal(tb_cert_not_after(f->node), tb_cert_not_after(f->prov));
	assert_true(tb_cert_not_after(f->prov) > now + 4 * 86400);
	assert_int_equal(tb_cert_serial_hex(f->node, serial), TB_OK);
	assert_int_equal(strlen(serial), 32);
	assert_string_equal(tb_cert_key_desc(f->node, desc, sizeof(desc)), "p256");
	/* the root has no member id; the province CA has its hub's */
	assert_int_equal(tb_cert_member_id(f->root, id), TB_E_CERT);
	assert_string_equal(id, "");
	assert_int_equal(tb_cert_member_id(f->prov, id), TB_OK);
	assert_string_equal(id, "320000");
}

static void
test_pub_and_pem(void **state)
{
	struct fixture *f = *state;
	struct tb_pub *pub;
	struct tb_buf pem;
	struct tb_cert *again;
	uint8_t a[TB_KEYID_LEN], b[TB_KEYID_LEN], fa[32], fb[32];
	uint8_t sig[TB_SIG_LEN];

	assert_non_null(pub = tb_cert_pub(f->node, NULL));
	assert_int_equal(tb_pub_alg(pub), TB_ALG_P256);
	tb_pub_id(pub, a);
	tb_cert_key_id(f->node, b);
	assert_memory_equal(a, b, TB_KEYID_LEN);
	assert_int_equal(tb_key_sign(f->node_key, "hi", 2, sig), TB_OK);
	assert_true(tb_pub_verify(pub, "hi", 2, sig));
	tb_pub_free(pub);
	tb_buf_init(&pem);
	assert_int_equal(tb_cert_pem(f->node, &pem), TB_OK);
	assert_non_null(again = tb_cert_import(pem.data, pem.len, NULL));
	tb_cert_fingerprint(f->node, fa);
	tb_cert_fingerprint(again, fb);
	assert_memory_equal(fa, fb, 32);
	tb_cert_free(again);
	tb_buf_free(&pem);
}

static void
test_import_garbage(void **state)
{
	struct fixture *f = *state;
	static const char key_pem[] =
	    "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
	static const char csr_pem[] =
	    "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
	static const char bad_b64[] =
	    "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
	static const uint8_t der_junk[] = {0x30, 0x82, 0xff, 0xff, 0x01};
	struct {
		const uint8_t *p;
		size_t n;
		int code;
	} cases[] = {
	    {(const uint8_t *)"", 0, TB_E_CERT},
	    {(const uint8_t *)key_pem, sizeof(key_pem) - 1, TB_E_CERT},
	    {(const uint8_t *)csr_pem, sizeof(csr_pem) - 1, TB_E_CERT},
	    {(const uint8_t *)bad_b64, sizeof(bad_b64) - 1, TB_E_CERT},
	    {der_junk, sizeof(der_junk), TB_E_CERT},
	    {f->node_pem.data, f->node_pem.len / 2, TB_E_CERT}, /* truncated */
	    {f->node_pem.data, 2u << 20, TB_E_TOO_LARGE},       /* length checked first */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb_diag d;
		tb_diag_clear(&d);
		assert_null(tb_cert_import(cases[i].p, cases[i].n, &d));
		assert_int_equal(d.code, cases[i].code);
	}
}

static void
test_load_errors(void **state)
{
	struct fixture *f = *state;
	struct tb_diag d;

	assert_null(tb_cert_load("/nonexistent/x.crt", &d));
	assert_int_equal(d.code, TB_E_IO);
	/* a key file is named as the wrong type, with its path */
	assert_null(tb_cert_load(cat3(f->dir, "root", "ca.key"), &d));
	assert_int_equal(d.code, TB_E_CERT);
	assert_non_null(strstr(d.detail, "ca.key"));
	assert_non_null(strstr(d.detail, "PRIVATE KEY"));
	tb_cert_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_member_id_ok), cmocka_unit_test(test_accessors),
	    cmocka_unit_test(test_pub_and_pem),  cmocka_unit_test(test_import_garbage),
	    cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
