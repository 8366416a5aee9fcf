/* SPDX-License-Identifier: Apache-2.0 */
/* test_ca.c - certs/tb_ca: endpoints, CSRs, issuing, revocation, CRLs,
 * chain validation with each failure reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/tb_ca.h"
#include "certs/tb_cert.h"
#include "certs/tb_key.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

struct fixture {
	char dir[64];
	struct tb_ca *root, *prov, *other;
	struct tb_key *key;
	struct tb_cert *node, *node2, *rootc, *provc, *otherc;
};

static const char *
sub(const struct fixture *f, const char *name)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
	return buf[i];
}

static struct tb_cert *
issue(struct tb_ca *ca, struct tb_key *key, const char *id, unsigned days)
{
	struct tb_csr *csr = tb_csr_new(key, id, "City", NULL, "coaps://10.0.0.1:5684", NULL);
	struct tb_buf pem;
	struct tb_cert *c = NULL;

	assert_non_null(csr);
	tb_buf_init(&pem);
	if (tb_ca_issue(ca, csr, days, &pem, NULL) == TB_OK)
		c = tb_cert_import(pem.data, pem.len, NULL);
	tb_buf_free(&pem);
	tb_csr_free(csr);
	assert_non_null(c);
	return c;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tb_ca_spec rs = {"Root", NULL, TB_ALG_P256, 100};
	struct tb_ca_spec ps = {"Shandong", "370000", TB_ALG_ED25519, 50};
	struct tb_ca_spec os = {"Other", NULL, TB_ALG_P256, 100};
	struct tb_diag d;

	assert_int_equal(tb_crypto_init(), TB_OK);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tbcaXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(tb_ca_create(sub(f, "root"), &rs, NULL, NULL, &d), TB_OK);
	assert_non_null(f->root = tb_ca_open(sub(f, "root"), NULL, &d));
	assert_int_equal(tb_ca_create(sub(f, "prov"), &ps, "pw", f->root, &d), TB_OK);
	assert_null(tb_ca_open(sub(f, "prov"), NULL, &d)); /* encrypted */
	assert_int_equal(d.code, TB_E_KEY);
	assert_non_null(f->prov = tb_ca_open(sub(f, "prov"), "pw", &d));
	assert_int_equal(tb_ca_create(sub(f, "other"), &os, NULL, NULL, &d), TB_OK);
	assert_non_null(f->other = tb_ca_open(sub(f, "other"), NULL, &d));
	assert_non_null(f->key = tb_key_generate(TB_ALG_P256, &d));
	f->node = issue(f->prov, f->key, "370800", 10);
	f->node2 = issue(f->prov, f->key, "371300", 10);
	assert_non_null(f->rootc = tb_cert_load(sub(f, "root/ca.crt"), &d));
	assert_non_null(f->provc = tb_cert_load(sub(f, "prov/ca.crt"), &d));
	assert_non_null(f->otherc = tb_cert_load(sub(f, "other/ca.crt"), &d));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	tb_cert_free(f->node);
	tb_cert_free(f->node2);
	tb_cert_free(f->rootc);
	tb_cert_free(f->provc);
	tb_cert_free(f->otherc);
	tb_key_free(f->key);
	tb_ca_free(f->root);
	tb_ca_free(f->prov);
	tb_ca_free(f->other);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void
test_endpoint_parse(void **state)
{
	static const struct {
		const char *uri;
		int rc;
		const char *host;
		unsigned port;
	} cases[] = {
	    {"coaps://xuzhou.example:5684", TB_OK, "xuzhou.example", 5684},
	    {"coaps://10.1.2.3:1", TB_OK, "10.1.2.3", 1},
	    {"coaps://[2001:db8::1]:65535", TB_OK, "2001:db8::1", 65535},
	    {"coap://x:5684", TB_E_ARG, NULL, 0},
	    {"coaps://x", TB_E_ARG, NULL, 0},
	    {"coaps://:5684", TB_E_ARG, NULL, 0},
	    {"coaps://x:0", TB_E_ARG, NULL, 0},
	    {"coaps://x:65536", TB_E_ARG, NULL, 0},
	    {"coaps://x:56a", TB_E_ARG, NULL, 0},
	    {"coaps://x:-1", TB_E_ARG, NULL, 0},
	    {"coaps://a b:1", TB_E_ARG, NULL, 0},
	    {"coaps://a..b:1", TB_E_ARG, NULL, 0},
	    {"coaps://[zz]:1", TB_E_ARG, NULL, 0},
	    {"coaps://[::1:1", TB_E_ARG, NULL, 0},
	    {"coaps://x/y:1", TB_E_ARG, NULL, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64];
		unsigned port = 0;
		assert_int_equal(tb_endpoint_parse(cases[i].uri, host, sizeof(host), &port),
		                 cases[i].rc);
		if (cases[i].rc == TB_OK) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
}

static void
test_csr_new_refuses(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *id, *name, *ep;
	} cases[] = {
	    {"012345", "X", "coaps://x:1"},    {"37080", "X", "coaps://x:1"},
	    {"37080x", "X", "coaps://x:1"},    {"370800", "", "coaps://x:1"},
	    {"370800", "a\tb", "coaps://x:1"}, {"370800", "X", "http://x:1"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb_diag d;
		assert_null(tb_csr_new(f->key, cases[i].id, cases[i].name, NULL, cases[i].ep, &d));
		assert_int_equal(d.code, TB_E_ARG);
	}
}

static void
test_csr_roundtrip_and_tamper(void **state)
{
	struct fixture *f = *state;
	struct tb_csr *csr, *back;
	struct tb_buf pem;
	gnutls_x509_crq_t crq;
	gnutls_datum_t in, der = {0};
	struct tb_diag d;

	assert_non_null(csr = tb_csr_new(f->key, "340600", "Huaibei", "huaihai",
	                                 "coaps://huaibei.example:5684", &d));
	assert_string_equal(tb_csr_member_id(csr), "340600");
	tb_buf_init(&pem);
	assert_int_equal(tb_csr_pem(csr, &pem), TB_OK);
	assert_non_null(back = tb_csr_import(pem.data, pem.len, &d));
	assert_string_equal(tb_csr_subject(back), "serialNumber=340600,CN=Huaibei,O=huaihai");
	tb_csr_free(back);
	/* flip a bit of the signed subject: the self-signature must fail */
	in.data = pem.data;
	in.size = (unsigned)pem.len;
	assert_int_equal(gnutls_x509_crq_init(&crq), 0);
	assert_int_equal(gnutls_x509_crq_import(crq, &in, GNUTLS_X509_FMT_PEM), 0);
	assert_int_equal(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_DER, &der), 0);
	gnutls_x509_crq_deinit(crq);
	uint8_t *hit = memmem(der.data, der.size, "Huaibei", 7);
	assert_non_null(hit);
	hit[0] ^= 0x20; /* "huaibei" */
	assert_null(tb_csr_import(der.data, der.size, &d));
	assert_int_equal(d.code, TB_E_CERT_BAD_SIG);
	/* a wrong-type file */
	assert_null(tb_csr_import((const uint8_t *)"-----BEGIN X509 CRL-----\n", 25, &d));
	assert_int_equal(d.code, TB_E_CSR);
	assert_null(tb_csr_import((const uint8_t *)"", 0, &d));
	assert_int_equal(d.code, TB_E_CSR);
	gnutls_free(der.data);
	tb_buf_free(&pem);
	tb_csr_free(csr);
}

static struct tb_castore *
trust_of(const struct tb_cert *anchor)
{
	struct tb_castore *t = tb_castore_new();
	assert_non_null(t);
	assert_int_equal(tb_castore_add_ca(t, anchor, NULL), TB_OK);
	return t;
}

static void
test_chain_verify_reasons(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct tb_castore *root = trust_of(f->rootc), *other = trust_of(f->otherc);
	const struct tb_cert *prov[] = {f->provc};
	const struct tb_cert *both[] = {f->otherc, f->provc};
	struct {
		const struct tb_castore *t;
		const struct tb_cert *cert;
		const struct tb_cert *const *chain;
		size_t n;
		enum tb_usage usage;
		int64_t at;
		int want;
	} cases[] = {
	    {root, f->node, prov, 1, TB_USAGE_NODE, now, TB_OK},
	    {root, f->node, both, 2, TB_USAGE_NODE, now, TB_OK}, /* unrelated extra */
	    {root, f->node, NULL, 0, TB_USAGE_NODE, now, TB_E_CERT_UNKNOWN_ISSUER},
	    {other, f->node, prov, 1, TB_USAGE_NODE, now, TB_E_CERT_UNKNOWN_ISSUER},
	    {other, f->rootc, NULL, 0, TB_USAGE_CA, now, TB_E_CERT_SELF_SIGNED},
	    {root, f->node, prov, 1, TB_USAGE_NODE, now + 11 * 86400, TB_E_CERT_EXPIRED},
	    {root, f->node, prov, 1, TB_USAGE_NODE, now - 86400, TB_E_CERT_NOT_YET_VALID},
	    {root, f->provc, NULL, 0, TB_USAGE_NODE, now, TB_E_CERT_USAGE},
	    {root, f->provc, NULL, 0, TB_USAGE_CA, now, TB_OK},
	    {root, f->node, prov, 1, TB_USAGE_CA, now, TB_E_CERT_USAGE},
	    {root, f->node, prov, 1, TB_USAGE_ANY, now, TB_OK},
	    {root, f->rootc, NULL, 0, TB_USAGE_CA, now, TB_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb_diag d;
		tb_diag_clear(&d);
		int rc = tb_chain_verify(cases[i].t, cases[i].cert, cases[i].chain, cases[i].n,
		                         cases[i].usage, cases[i].at, &d);
		if (rc != cases[i].want)
			fail_msg("case %zu: got %s (%s), want %s", i, tb_err_reason(rc), d.detail,
			         tb_err_reason(cases[i].want));
	}
	tb_castore_free(root);
	tb_castore_free(other);
}

static void
test_revoke_and_crl(void **state)
{
	struct fixture *f = *state;
	int64_t now = (int64_t)time(NULL);
	struct tb_castore *t = trust_of(f->rootc);
	const struct tb_cert *prov[] = {f->provc};
	struct tb_buf pem;
	struct tb_crl *crl;
	struct tb_diag d;

	assert_int_equal(
	    tb_ca_revoke(f->prov, f->node2, tb_crl_reason_from_name("superseded"), now, &d), TB_OK);
	assert_int_equal(tb_ca_revoke(f->prov, f->node2, 0, now, &d), TB_E_CERT_REVOKED);
	assert_int_equal(tb_ca_revoke(f->other, f->node, 0, now, &d), TB_E_CERT_UNKNOWN_ISSUER);
	assert_int_equal(tb_ca_revoke(f->prov, f->node, 99, now, &d), TB_E_ARG);
	tb_buf_init(&pem);
	assert_int_equal(tb_ca_crl(f->prov, 7, now, &pem, &d), TB_OK);
	assert_non_null(crl = tb_crl_import(pem.data, pem.len, &d));
	assert_int_equal(tb_crl_count(crl), 1);
	assert_int_equal(tb_castore_add_crl(t, crl, &d), TB_OK);
	assert_int_equal(tb_chain_verify(t, f->node2, prov, 1, TB_USAGE_NODE, now, &d),
	                 TB_E_CERT_REVOKED);
	assert_int_equal(tb_chain_verify(t, f->node, prov, 1, TB_USAGE_NODE, now, &d), TB_OK);
	/* past its next update the CRL vouches for nothing */
	assert_int_equal(tb_chain_verify(t, f->node, prov, 1, TB_USAGE_NODE, now + 8 * 86400, &d),
	                 TB_E_CRL);
	tb_crl_free(crl);
	tb_castore_free(t);
	/* garbage is not a CRL */
	assert_null(tb_crl_import((const uint8_t *)"junk", 4, &d));
	assert_int_equal(d.code, TB_E_CRL);
	tb_buf_free(&pem);
}

static void
test_reason_names(void **state)
{
	(void)state;
	for (int r = 0; r <= 10; r++) {
		const char *n = tb_crl_reason_name(r);
		if (n != NULL)
			assert_int_equal(tb_crl_reason_from_name(n), r);
	}
	assert_int_equal(tb_crl_reason_from_name("keyCompromise"), 1);
	assert_int_equal(tb_crl_reason_from_name("nope"), -1);
	assert_int_equal(tb_crl_reason_from_name(NULL), -1);
}

static void
test_create_refuses(void **state)
{
	struct fixture *f = *state;
	struct tb_ca_spec again = {"Root", NULL, TB_ALG_P256, 10};
	struct tb_ca_spec badid = {"X", "0123", TB_ALG_P256, 10};
	struct tb_ca_spec nodays = {"X", NULL, TB_ALG_P256, 0};
	struct tb_diag d;

	assert_int_equal(tb_ca_create(sub(f, "root"), &again, NULL, NULL, &d), TB_E_IO);
	assert_int_equal(tb_ca_create(sub(f, "x1"), &badid, NULL, NULL, &d), TB_E_ARG);
	assert_int_equal(tb_ca_create(sub(f, "x2"), &nodays, NULL, NULL, &d), TB_E_ARG);
	assert_null(tb_ca_open(sub(f, "nonexistent"), NULL, &d));
	assert_int_equal(d.code, TB_E_IO);
}

/* The division policy: province 370000 issues 37xxxx only (not through
 * tb_ca_issue_window, for test identities); the root any id.  A window
 * past the CA's expiry is refused by tb_ca_check_until with that date.
 * A CSR's key id is the issued certificate's. */
static void
test_division_and_validity(void **state)
{
	struct fixture *f = *state;
	struct tb_csr *csr =
	    tb_csr_new(f->key, "320300", "Xuzhou", NULL, "coaps://10.0.0.2:1", NULL);
	char div[TB_MEMBER_ID_MAX];
	uint8_t k1[TB_KEYID_LEN], k2[TB_KEYID_LEN];
	struct tb_buf pem;
	struct tb_diag d;
	int64_t end = tb_cert_not_after(f->provc);

	assert_non_null(csr);
	tb_buf_init(&pem);
	tb_ca_division(f->prov, div);
	assert_string_equal(div, "37");
	tb_ca_division(f->root, div);
	assert_string_equal(div, "");
	assert_int_equal(tb_ca_check_request(f->prov, csr, &d), TB_E_CA_PREFIX);
	assert_non_null(strstr(d.detail, "37*, not 320300"));
	assert_int_equal(tb_ca_issue(f->prov, csr, 10, &pem, &d), TB_E_CA_PREFIX);
	assert_int_equal(pem.len, 0);
	assert_int_equal(tb_ca_check_request(f->root, csr, &d), TB_OK);
	assert_int_equal(tb_ca_issue_window(f->prov, csr, end - 86400, end, &pem, &d), TB_OK);
	assert_int_equal(tb_ca_check_until(f->prov, end, &d), TB_OK);
	assert_int_equal(tb_ca_check_until(f->prov, end + 1, &d), TB_E_CA_VALIDITY);
	assert_non_null(strstr(d.detail, "would have been cut to"));
	assert_int_equal(tb_csr_key_id(csr, k1), TB_OK);
	tb_key_id(f->key, k2);
	assert_memory_equal(k1, k2, TB_KEYID_LEN);
	assert_int_equal(tb_csr_alg(csr), TB_ALG_P256);
	tb_buf_free(&pem);
	tb_csr_free(csr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_endpoint_parse),
	    cmocka_unit_test(test_csr_new_refuses),
	    cmocka_unit_test(test_csr_roundtrip_and_tamper),
	    cmocka_unit_test(test_chain_verify_reasons),
	    cmocka_unit_test(test_revoke_and_crl),
	    cmocka_unit_test(test_reason_names),
	    cmocka_unit_test(test_create_refuses),
	    cmocka_unit_test(test_division_and_validity),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
