/* SPDX-License-Identifier: Apache-2.0 */
/* test_reg.c - registry parse, serialize, sign, verify (federation/tb_reg,
 * federation/tb_trust). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/tb_reg.h"
#include "federation/tb_trust.h"
#include "fed_testutil.h"
#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_enc.h"
#include "util/tb_err.h"

#define T0 1700000000LL
#define NAUTH 4

static struct tb_key *auth[NAUTH + 1]; /* 4 authorities (2 Ed25519, 2 P-256) + a stranger */
static struct tb_key *member_keys[3];

static int
setup_all(void **state)
{
	(void)state;
	if (tb_crypto_init() != TB_OK)
		return -1;
	for (int i = 0; i <= NAUTH; i++)
		if ((auth[i] = tb_key_generate(i % 2 ? TB_ALG_P256 : TB_ALG_ED25519, NULL)) == NULL)
			return -1;
	for (int i = 0; i < 3; i++)
		if ((member_keys[i] = tb_key_generate(TB_ALG_ED25519, NULL)) == NULL)
			return -1;
	return 0;
}

static int
teardown_all(void **state)
{
	(void)state;
	for (int i = 0; i <= NAUTH; i++)
		tb_key_free(auth[i]);
	for (int i = 0; i < 3; i++)
		tb_key_free(member_keys[i]);
	return 0;
}

static struct tb_trust *
make_trust(unsigned k)
{
	struct tb_trust *t = tb_trust_new("huaihai", NULL);
	uint8_t kid[TB_KEYID_LEN] = {0};
	struct tb_buf der;

	assert_non_null(t);
	assert_int_equal(tb_trust_set_root(t, "PEM", 3, kid, NULL), TB_OK);
	for (int i = 0; i < NAUTH; i++) {
		tb_buf_init(&der);
		assert_int_equal(fed_key_spki(auth[i], &der), 0);
		assert_int_equal(tb_trust_add_authority(t, der.data, der.len, "p", NULL), TB_OK);
		tb_buf_free(&der);
	}
	assert_int_equal(tb_trust_set_threshold(t, k, NULL), TB_OK);
	return t;
}

/* A small registry: hub 320000, city 320300 (with a separate signing
 * key), city 321300 reached through its hub. */
static struct tb_reg *
make_reg(void)
{
	struct tb_reg *reg = tb_reg_new("huaihai", T0, T0 + 86400, NULL);
	struct tb_buf der[3];
	const char *r32[] = {"32"}, *r3203[] = {"3203", "320311"}, *r3213[] = {"3213"};
	struct tb_reg_service_spec s_hub = {"medical.offsite-filing", r32, 1};
	struct tb_reg_service_spec s_xz[] = {{"hukou.transfer", r3203, 2},
	                                     {"pension.transfer", r3203, 1}};
	struct tb_reg_service_spec s_sq = {"hukou.transfer", r3213, 1};
	const char *ep_hub[] = {"coaps://hub.example:5684"},
	           *ep_xz[] = {"coaps://127.0.0.1:5701", "coaps://[::1]:5701"};
	struct tb_reg_key_spec k[4];

	assert_non_null(reg);
	for (int i = 0; i < 3; i++) {
		tb_buf_init(&der[i]);
		assert_int_equal(fed_key_spki(member_keys[i], &der[i]), 0);
		k[i].spki = der[i].data;
		k[i].spki_len = der[i].len;
		k[i].use = TB_USE_BOTH;
	}
	struct tb_reg_member_spec hub = {"320000", "江苏省", NULL,  TB_ROLE_HUB, TB_STATUS_ACTIVE,
	                                 ep_hub,   1,        &k[0], 1,           &s_hub,
	                                 1};
	assert_int_equal(tb_reg_add_member(reg, &hub, NULL), TB_OK);
	k[1].use = TB_USE_TLS;
	k[2].use = TB_USE_SIGN;
	struct tb_reg_member_spec xz = {
	    "320300", "徐州市", "320000", TB_ROLE_CITY, TB_STATUS_ACTIVE, ep_xz, 2, &k[1],
	    2,        s_xz,     2};
	assert_int_equal(tb_reg_add_member(reg, &xz, NULL), TB_OK);
	/* an Ed25519 SPKI (RFC 8410 prefix, 32 key bytes) of no key of ours */
	uint8_t spki3[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	memset(spki3 + 12, 0x11, 32);
	k[3].spki = spki3;
	k[3].spki_len = sizeof(spki3);
	k[3].use = TB_USE_BOTH;
	struct tb_reg_member_spec sq = {
	    "321300", "宿迁市", "320000", TB_ROLE_CITY, TB_STATUS_SUSPENDED, NULL, 0, &k[3],
	    1,        &s_sq,    1};
	assert_int_equal(tb_reg_add_member(reg, &sq, NULL), TB_OK);
	assert_int_equal(tb_reg_add_policy_rule(reg, "effect=allow;services=*;roles=hub", NULL),
	                 TB_OK);
	for (int i = 0; i < 3; i++)
		tb_buf_free(&der[i]);
	return reg;
}

static struct tb_reg *
reparse(const struct tb_reg *reg, struct tb_buf *text)
{
	tb_buf_reset(text);
	assert_int_equal(tb_reg_serialize(reg, text), TB_OK);
	return tb_reg_parse(text->data, text->len, NULL);
}

static void
test_sign_verify(void **state)
{
	struct tb_trust *t = make_trust(2);
	struct tb_reg *reg = make_reg(), *r2;
	struct tb_buf text, again;
	struct tb_diag d;
	size_t good;

	(void)state;
	tb_buf_init(&text);
	tb_buf_init(&again);
	assert_int_equal(tb_reg_serial(reg), 1);
	assert_int_equal(tb_reg_verify(reg, t, T0, 0, &good, &d), TB_E_REG_THRESHOLD);
	assert_int_equal(tb_reg_sign(reg, auth[0], NULL), TB_OK);
	assert_int_equal(tb_reg_verify(reg, t, T0, 0, &good, &d), TB_E_REG_THRESHOLD);
	assert_int_equal(good, 1);
	assert_non_null(strstr(d.detail, "1 of 2"));
	/* signing twice with one key replaces, it does not count twice */
	assert_int_equal(tb_reg_sign(reg, auth[0], NULL), TB_OK);
	assert_int_equal(tb_reg_sig_count(reg), 1);
	assert_int_equal(tb_reg_sign(reg, auth[1], NULL), TB_OK); /* P-256 */
	assert_int_equal(tb_reg_verify(reg, t, T0, 0, &good, &d), TB_OK);
	assert_int_equal(good, 2);
	/* a key that is no Ed25519 or P-256 SPKI: reg.key (7.4 step 5) */
	{
		static const uint8_t p256_prefix[27] = {
		    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
		    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
		uint8_t junk[20] = {0x30, 1, 2, 3}, offcurve[91];
		const char *r37[] = {"3713"};
		struct tb_reg_service_spec sv = {"hukou.transfer", r37, 1};
		const char *ep[] = {"coaps://192.0.2.9:5684"};
		memcpy(offcurve, p256_prefix, sizeof(p256_prefix));
		memset(offcurve + 27, 0x01, 64); /* (0x0101.., 0x0101..) is not on P-256 */
		const struct {
			const uint8_t *der;
			size_t len;
		} bad[] = {{junk, sizeof(junk)}, {offcurve, sizeof(offcurve)}};
		for (size_t i = 0; i < 2; i++) {
			struct tb_reg *rb = make_reg();
			struct tb_reg_key_spec ks = {bad[i].der, bad[i].len, TB_USE_SIGN};
			struct tb_reg_member_spec ms = {"371300", "临沂市", NULL, TB_ROLE_CITY,
			                                TB_STATUS_ACTIVE, ep, 1, &ks, 1, &sv, 1};
			assert_int_equal(tb_reg_add_member(rb, &ms, NULL), TB_OK);
			assert_int_equal(tb_reg_sign(rb, auth[0], NULL), TB_OK);
			assert_int_equal(tb_reg_sign(rb, auth[1], NULL), TB_OK);
			assert_int_equal(tb_reg_verify(rb, t, T0, 0, NULL, &d), TB_E_REG_KEY);
			assert_string_equal(tb_err_reason(d.code), "reg.key");
			tb_reg_free(rb);
		}
	}
	/* round trip: parse(serialize(x)) serializes to the same bytes, verifies */
	assert_non_null(r2 = reparse(reg, &text));
	assert_int_equal(tb_reg_serialize(r2, &again), TB_OK);
	assert_int_equal(text.len, again.len);
	assert_memory_equal(text.data, again.data, text.len);
	assert_int_equal(tb_reg_verify(r2, t, T0, 0, NULL, &d), TB_OK);
	assert_int_equal(tb_reg_member_count(r2), 3);
	assert_string_equal(tb_reg_member_name(r2, 1), "徐州市");
	assert_int_equal(tb_reg_key_count(r2, 1), 2);
	/* times */
	assert_int_equal(tb_reg_verify(r2, t, T0 - 1, 0, NULL, &d), TB_E_REG_NOT_YET_VALID);
	assert_int_equal(tb_reg_verify(r2, t, T0 + 86400, 0, NULL, &d), TB_E_REG_EXPIRED);
	assert_int_equal(tb_reg_verify(r2, t, T0 + 86399, 0, NULL, &d), TB_OK);
	/* serial */
	assert_int_equal(tb_reg_verify(r2, t, T0, tb_reg_serial(r2), NULL, &d), TB_E_REG_ROLLBACK);
	assert_int_equal(tb_reg_verify(r2, t, T0, tb_reg_serial(r2) + 1, NULL, &d),
	                 TB_E_REG_ROLLBACK);
	assert_int_equal(tb_reg_verify(r2, t, T0, tb_reg_serial(r2) - 1, NULL, &d), TB_OK);
	/* an edit clears the signatures and bumps the serial once */
	uint64_t s = tb_reg_serial(r2);
	assert_int_equal(tb_reg_set_status(r2, "321300", TB_STATUS_ACTIVE, NULL), TB_OK);
	assert_int_equal(tb_reg_set_status(r2, "320300", TB_STATUS_ACTIVE, NULL), TB_OK);
	assert_int_equal(tb_reg_serial(r2), s + 1);
	assert_int_equal(tb_reg_sig_count(r2), 0);
	assert_int_equal(tb_reg_set_status(r2, "999900", TB_STATUS_ACTIVE, &d), TB_E_REG_MEMBER);
	/* a stranger's signature */
	assert_int_equal(tb_reg_sign(r2, auth[2], NULL), TB_OK);
	assert_int_equal(tb_reg_sign(r2, auth[NAUTH], NULL), TB_OK);
	assert_int_equal(tb_reg_verify(r2, t, T0, 0, NULL, &d), TB_E_REG_SIGNER);
	tb_reg_free(r2);
	/* another federation */
	struct tb_trust *other = tb_trust_new("other", NULL);
	assert_int_equal(tb_reg_verify(reg, other, T0, 0, NULL, &d), TB_E_REG_FEDERATION);
	tb_trust_free(other);
	tb_reg_free(reg);
	tb_trust_free(t);
	tb_buf_free(&text);
	tb_buf_free(&again);
}

/* Flip every byte of a signed registry: nothing verifies any more. */
static void
test_every_byte(void **state)
{
	struct tb_trust *t = make_trust(2);
	struct tb_reg *reg = make_reg(), *r;
	struct tb_buf text;
	size_t hits[8] = {0};

	(void)state;
	tb_buf_init(&text);
	assert_int_equal(tb_reg_sign(reg, auth[0], NULL), TB_OK);
	assert_int_equal(tb_reg_sign(reg, auth[3], NULL), TB_OK);
	assert_int_equal(tb_reg_serialize(reg, &text), TB_OK);
	for (size_t i = 0; i < text.len; i++) {
		for (int bit = 0; bit < 8; bit += 5) {
			struct tb_diag d;
			uint8_t saved = text.data[i];
			text.data[i] ^= (uint8_t)(1u << bit);
			r = tb_reg_parse(text.data, text.len, &d);
			if (r != NULL) {
				int rc = tb_reg_verify(r, t, T0, 0, NULL, &d);
				if (rc == TB_OK)
					fail_msg("byte %zu bit %d changed and still verifies", i,
					         bit);
				hits[rc == TB_E_REG_TAMPERED ? 0 : 1]++;
				tb_reg_free(r);
			} else {
				hits[2]++;
			}
			text.data[i] = saved;
		}
	}
	assert_true(hits[0] > 100); /* most content changes are caught as tampering */
	tb_reg_free(reg);
	tb_trust_free(t);
	tb_buf_free(&text);
}

/* Replaces the first occurrence of from with to in text; returns a new
 * malloc'd string. */
static char *
subst(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	assert_non_null(p);
	out = malloc(strlen(text) + strlen(to) + 1);
	memcpy(out, text, (size_t)(p - text));
	strcpy(out + (p - text), to);
	strcat(out, p + strlen(from));
	return out;
}

static void
test_malformed(void **state)
{
	struct tb_reg *reg = make_reg(), *r;
	struct tb_buf text;
	char kid0[65];
	uint8_t kid[TB_KEYID_LEN];
	static const struct {
		const char *from, *to;
		int code;
	} cases[] = {
	    {"\"v\":1", "\"v\":2", TB_E_VERSION},
	    {"\"v\":1", "\"v\":\"1\"", TB_E_FIELD_TYPE},
	    {"\"v\":1,", "", TB_E_FIELD_MISSING},
	    {"\"v\":1", "\"v\":1,\"extra\":0", TB_E_FIELD_UNKNOWN},
	    /* "v" first, before unknown members (PROTOCOL.md 2.3) */
	    {"\"v\":1", "\"v\":2,\"extra\":0", TB_E_VERSION},
	    {"\"v\":1", "\"v\":\"1\",\"extra\":0", TB_E_FIELD_TYPE},
	    {"\"v\":1", "\"v\":1.5,\"extra\":0", TB_E_FIELD_TYPE},
	    {"\"v\":1,", "\"extra\":0,", TB_E_FIELD_MISSING},
	    {"\"federation\":\"huaihai\"", "\"federation\":\"Huai Hai\"", TB_E_FIELD_VALUE},
	    {"\"serial\":1", "\"serial\":0", TB_E_FIELD_VALUE},
	    {"\"serial\":1", "\"serial\":9007199254740993", TB_E_FIELD_VALUE},
	    {"\"serial\":1", "\"serial\":1.5", TB_E_FIELD_TYPE},
	    {"\"valid_until\":", "\"valid_until\":-", TB_E_FIELD_VALUE},
	    {"\"id\":\"320300\"", "\"id\":\"32030\"", TB_E_FIELD_VALUE},
	    {"\"id\":\"320000\"", "\"id\":\"320300\"", TB_E_REG_DUP_MEMBER},
	    {"\"role\":\"city\"", "\"role\":\"town\"", TB_E_FIELD_VALUE},
	    {"\"status\":\"active\"", "\"status\":\"gone\"", TB_E_FIELD_VALUE},
	    {"\"parent\":\"320000\"", "\"parent\":\"320300\"", TB_E_FIELD_VALUE}, /* itself */
	    {"\"parent\":\"320000\"", "\"parent\":\"370000\"", TB_E_REG_REFERENCE},
	    {"\"code\":\"hukou.transfer\"", "\"code\":\"*\"", TB_E_FIELD_VALUE},
	    {"\"code\":\"pension.transfer\"", "\"code\":\"hukou.transfer\"", TB_E_FIELD_VALUE},
	    {"\"regions\":[\"3203\"", "\"regions\":[\"320\"", TB_E_FIELD_VALUE},
	    {"\"regions\":[\"3213\"]", "\"regions\":[]", TB_E_FIELD_VALUE},
	    {"\"use\":\"tls\"", "\"use\":\"all\"", TB_E_FIELD_VALUE},
	    {"\"endpoints\":[\"coaps://hub.example:5684\"]", "\"endpoints\":[\"hub\"]",
	     TB_E_FIELD_VALUE},
	    /* RFC 3986 3.1: a scheme starts with a letter */
	    {"\"endpoints\":[\"coaps://hub.example:5684\"]", "\"endpoints\":[\"9://b\"]",
	     TB_E_FIELD_VALUE},
	    {"\"endpoints\":[\"coaps://hub.example:5684\"]", "\"endpoints\":[\"+a://b\"]",
	     TB_E_FIELD_VALUE},
	    {"\"endpoints\":[\"coaps://hub.example:5684\"]", "\"endpoints\":[\"co_aps://b\"]",
	     TB_E_FIELD_VALUE},
	    {"\"name\":\"江苏省\"", "\"name\":\"\"", TB_E_FIELD_VALUE},
	    {"\"name\":\"江苏省\"", "\"name\":\"a\\u0000b\"", TB_E_FIELD_VALUE},
	    {"\"default\":\"deny\"", "\"default\":\"maybe\"", TB_E_FIELD_VALUE},
	    {"\"services\":[\"*\"]", "\"services\":[\"*\",\"a\"]", TB_E_FIELD_VALUE},
	    {"\"from\":{\"roles\":[\"hub\"]}", "\"from\":{}", TB_E_FIELD_VALUE},
	    {"\"sigs\":[]", "\"sigs\":[{\"kid\":\"00\",\"alg\":\"ed25519\",\"val\":\"\"}]",
	     TB_E_FIELD_VALUE},
	    {"\"revoked_keys\":[]", "\"revoked_keys\":[\"AB\"]", TB_E_FIELD_VALUE},
	    {"{", "{\"v\":1,", TB_E_JSON_DUPKEY},
	    {"\"members\":[", "\"members\":[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]],",
	     TB_E_JSON_DEPTH},
	};

	(void)state;
	tb_buf_init(&text);
	assert_int_equal(tb_reg_serialize(reg, &text), TB_OK);
	assert_non_null(r = tb_reg_parse(text.data, text.len, NULL));
	tb_reg_free(r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb_diag d;
		char *bad = subst((const char *)text.data, cases[i].from, cases[i].to);
		r = tb_reg_parse((const uint8_t *)bad, strlen(bad), &d);
		if (r != NULL || d.code != cases[i].code)
			fail_msg("case %zu (%s): got %s, wanted %s", i, cases[i].to,
			         r ? "success" : tb_err_reason(d.code),
			         tb_err_reason(cases[i].code));
		free(bad);
	}
	/* "sigs" is required ([] when unsigned), so the model is lossless; its
	 * absence is field.missing (it crashed the parser: regression) */
	{
		char *a = subst((const char *)text.data, ",\"sigs\":[]", "");
		struct tb_diag d;
		assert_null(strstr(a, "\"sigs\""));
		assert_null(tb_reg_parse((const uint8_t *)a, strlen(a), &d));
		assert_int_equal(d.code, TB_E_FIELD_MISSING);
		assert_string_equal(d.detail, "sigs: required");
		free(a);
	}
	/* integers by value (PROTOCOL.md 2.3): "v":1.0 and "serial":1e0 are 1 */
	{
		char *a = subst((const char *)text.data, "\"v\":1", "\"v\":1.0");
		char *b = subst(a, "\"serial\":1", "\"serial\":1e0");
		struct tb_diag d;
		if ((r = tb_reg_parse((const uint8_t *)b, strlen(b), &d)) == NULL)
			fail_msg("integers by value: %s", d.detail);
		tb_reg_free(r);
		free(a);
		free(b);
	}
	/* schemes are case-insensitive (RFC 3986 3.1): COAPS:// and a+b.c-d:// parse */
	{
		static const char *const good[] = {"\"endpoints\":[\"COAPS://hub.example:5684\"]",
		                                   "\"endpoints\":[\"a+b.c-d9://x\"]"};
		for (size_t i = 0; i < 2; i++) {
			char *ok = subst((const char *)text.data,
			                 "\"endpoints\":[\"coaps://hub.example:5684\"]", good[i]);
			struct tb_diag d;
			if ((r = tb_reg_parse((const uint8_t *)ok, strlen(ok), &d)) == NULL)
				fail_msg("%s: %s", good[i], d.detail);
			tb_reg_free(r);
			free(ok);
		}
	}
	/* a key listed twice (the hub's kid copied onto Xuzhou's first key) */
	tb_reg_key(reg, 0, 0, kid, NULL, NULL, NULL);
	tb_hex_encode(kid, TB_KEYID_LEN, kid0);
	{
		uint8_t k1[TB_KEYID_LEN];
		char k1hex[65], to[80], from[80];
		struct tb_diag d;
		tb_reg_key(reg, 1, 0, k1, NULL, NULL, NULL);
		tb_hex_encode(k1, TB_KEYID_LEN, k1hex);
		snprintf(from, sizeof(from), "\"kid\":\"%s\"", k1hex);
		snprintf(to, sizeof(to), "\"kid\":\"%s\"", kid0);
		char *bad = subst((const char *)text.data, from, to);
		assert_null(tb_reg_parse((const uint8_t *)bad, strlen(bad), &d));
		assert_int_equal(d.code, TB_E_REG_DUP_KEY);
		/* a kid that is not the SPKI's hash: parses, then fails verify
		 * even when properly signed */
		k1hex[0] = k1hex[0] == 'a' ? 'b' : 'a';
		snprintf(to, sizeof(to), "\"kid\":\"%s\"", k1hex);
		free(bad);
		bad = subst((const char *)text.data, from, to);
		assert_non_null(r = tb_reg_parse((const uint8_t *)bad, strlen(bad), &d));
		struct tb_trust *t = make_trust(1);
		assert_int_equal(tb_reg_sign(r, auth[0], NULL), TB_OK);
		assert_int_equal(tb_reg_verify(r, t, T0, 0, NULL, &d), TB_E_REG_KEY_ID);
		tb_trust_free(t);
		tb_reg_free(r);
		free(bad);
	}
	tb_reg_free(reg);
	tb_buf_free(&text);
}

static void
test_limits(void **state)
{
	struct tb_buf b;
	struct tb_diag d;
	const char *head = "{\"v\":1,\"federation\":\"x\",\"serial\":1,\"issued\":0,"
	                   "\"valid_until\":9,\"revoked_keys\":[],\"policy\":{\"default\":"
	                   "\"deny\",\"rules\":[]},\"members\":[";

	(void)state;
	tb_buf_init(&b);
	/* 100,001 members: refused by count before any is looked at */
	tb_buf_adds(&b, head);
	for (int i = 0; i <= TB_REG_MAX_MEMBERS; i++)
		tb_buf_adds(&b, i ? ",0" : "0");
	tb_buf_adds(&b, "]}");
	assert_null(tb_reg_parse(b.data, b.len, &d));
	assert_int_equal(d.code, TB_E_REG_LIMIT);
	/* a 1 MiB string */
	tb_buf_reset(&b);
	tb_buf_adds(&b, head);
	tb_buf_adds(&b, "{\"name\":\"");
	for (int i = 0; i < (1 << 20); i++)
		tb_buf_addc(&b, 'x');
	tb_buf_adds(&b, "\"}]}");
	assert_null(tb_reg_parse(b.data, b.len, &d));
	assert_int_equal(d.code, TB_E_REG_LIMIT);
	/* the detail names the limit checked: 2,048 bytes (PROTOCOL.md 7.1) */
	assert_string_equal(d.detail, "a string of 1048576 bytes (at most 2048)");
	/* deep nesting */
	tb_buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		tb_buf_addc(&b, '[');
	assert_null(tb_reg_parse(b.data, b.len, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	/* more than 32 MiB */
	tb_buf_reset(&b);
	assert_int_equal(tb_buf_reserve(&b, TB_REG_MAX_SIZE + 1), TB_OK);
	memset(b.data, ' ', TB_REG_MAX_SIZE + 1);
	assert_null(tb_reg_parse(b.data, TB_REG_MAX_SIZE + 1, &d));
	assert_int_equal(d.code, TB_E_TOO_LARGE);
	/* 17 signatures */
	tb_buf_reset(&b);
	tb_buf_adds(&b, head);
	tb_buf_adds(&b, "],\"sigs\":[");
	for (int i = 0; i <= TB_REG_MAX_SIGS; i++)
		tb_buf_adds(&b, i ? ",{}" : "{}");
	tb_buf_adds(&b, "]}");
	assert_null(tb_reg_parse(b.data, b.len, &d));
	assert_int_equal(d.code, TB_E_REG_LIMIT);
	tb_buf_free(&b);
}

static void
test_trust(void **state)
{
	struct tb_trust *t = make_trust(3), *t2;
	struct tb_buf a, b, der;
	struct tb_diag d;

	(void)state;
	tb_buf_init(&a);
	tb_buf_init(&b);
	tb_buf_init(&der);
	assert_int_equal(tb_trust_serialize(t, &a, NULL), TB_OK);
	assert_non_null(t2 = tb_trust_parse(a.data, a.len, &d));
	assert_int_equal(tb_trust_threshold(t2), 3);
	assert_int_equal(tb_trust_count(t2), NAUTH);
	assert_int_equal(tb_trust_serialize(t2, &b, NULL), TB_OK);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* duplicates and thresholds */
	assert_int_equal(fed_key_spki(auth[0], &der), 0);
	assert_int_equal(tb_trust_add_authority(t2, der.data, der.len, "again", &d),
	                 TB_E_REG_DUP_SIGNER);
	assert_int_equal(tb_trust_set_threshold(t2, 0, &d), TB_E_FIELD_VALUE);
	assert_int_equal(tb_trust_set_threshold(t2, NAUTH + 1, &d), TB_E_FIELD_VALUE);
	char *bad = subst((const char *)a.data, "\"threshold\":3", "\"threshold\":5");
	assert_null(tb_trust_parse((const uint8_t *)bad, strlen(bad), &d));
	assert_int_equal(d.code, TB_E_FIELD_VALUE);
	free(bad);
	/* a member name holding U+0000 is not the shorter name */
	bad = subst((const char *)a.data, "\"threshold\":3", "\"threshold\":3,\"threshold\\u0000\":1");
	assert_null(tb_trust_parse((const uint8_t *)bad, strlen(bad), &d));
	assert_int_equal(d.code, TB_E_FIELD_UNKNOWN);
	free(bad);
	bad = subst((const char *)a.data, "\"name\":", "\"name\\u0000x\":\"y\",\"name\":");
	assert_null(tb_trust_parse((const uint8_t *)bad, strlen(bad), &d));
	assert_int_equal(d.code, TB_E_FIELD_UNKNOWN);
	free(bad);
	tb_trust_free(t);
	tb_trust_free(t2);
	tb_buf_free(&a);
	tb_buf_free(&b);
	tb_buf_free(&der);
}

/*
 * Signed bytes are the only truth: a member name holding U+0000 is not
 * the shorter name (it once was, to a strcmp, so content no authority
 * signed rode along inside a registry that verified).  Each object of the
 * document gets such a member; every one is refused as unknown, signed
 * or not.
 */
static void
test_nul_names(void **state)
{
	struct tb_reg *reg = make_reg(), *r;
	struct tb_trust *t = make_trust(1);
	struct tb_buf text, sb;
	struct tb_diag d;
	static const struct {
		const char *from, *to;
	} cases[] = {
	    {"\"v\":1", "\"v\":1,\"v\\u0000x\":1"},
	    {"\"name\":\"江苏省\"", "\"name\":\"江苏省\",\"name\\u0000evil\":\"x\""},
	    {"\"use\":\"tls\"", "\"use\":\"tls\",\"use\\u0000\":\"sign\""},
	    {"\"code\":\"hukou.transfer\"", "\"code\":\"hukou.transfer\",\"code\\u0000\":\"a\""},
	    {"\"default\":\"deny\"", "\"default\":\"deny\",\"default\\u0000\":\"allow\""},
	    {"\"effect\":\"allow\"", "\"effect\":\"allow\",\"effect\\u0000\":\"deny\""},
	    {"\"from\":{\"roles\":[\"hub\"]", "\"from\":{\"roles\":[\"hub\"],\"ids\\u0000\":[]"},
	    {"\"alg\":", "\"alg\\u0000\":1,\"alg\":"},
	};

	(void)state;
	tb_buf_init(&text);
	tb_buf_init(&sb);
	assert_int_equal(tb_reg_sign(reg, auth[0], NULL), TB_OK);
	assert_int_equal(tb_reg_serialize(reg, &text), TB_OK);
	assert_non_null(r = tb_reg_parse(text.data, text.len, &d));
	assert_int_equal(tb_reg_verify(r, t, T0 + 1, 0, NULL, &d), TB_OK);
	/* the signing input is the received document's canonical form */
	assert_int_equal(tb_reg_signed_bytes(r, &sb), TB_OK);
	assert_true(sb.len > 0 && sb.len < text.len);
	assert_memory_equal(sb.data, text.data, 10);
	tb_reg_free(r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *bad = subst((const char *)text.data, cases[i].from, cases[i].to);
		r = tb_reg_parse((const uint8_t *)bad, strlen(bad), &d);
		if (r != NULL || d.code != TB_E_FIELD_UNKNOWN)
			fail_msg("case %zu (%s): got %s (%s), want field.unknown", i, cases[i].to,
			         r ? "accepted" : tb_err_reason(d.code), r ? "" : d.detail);
		free(bad);
	}
	tb_reg_free(reg);
	tb_trust_free(t);
	tb_buf_free(&text);
	tb_buf_free(&sb);
}

/* remove_member: unknown id, a hub still named as parent, then the
 * cities and the hub; the edit bumps the serial once, drops signatures
 * and the keys (no longer found), and the result reparses. */
static void
test_remove_member(void **state)
{
	struct tb_reg *made = make_reg(), *reg, *r2;
	struct tb_buf text;
	struct tb_diag d;
	uint8_t kid[TB_KEYID_LEN];
	size_t m, k;

	(void)state;
	tb_buf_init(&text);
	/* as an administrator gets it: parsed, serial 1, signed */
	assert_non_null(reg = reparse(made, &text));
	tb_reg_free(made);
	assert_int_equal(tb_reg_sign(reg, auth[0], NULL), TB_OK);
	assert_int_equal(tb_reg_remove_member(reg, "370000", &d), TB_E_REG_MEMBER);
	assert_int_equal(tb_reg_remove_member(reg, "320000", &d), TB_E_REG_REFERENCE);
	assert_non_null(strstr(d.detail, "reached through 320000"));
	assert_int_equal(tb_reg_member_count(reg), 3);
	assert_int_equal(tb_reg_sig_count(reg), 1);
	tb_reg_key(reg, tb_reg_find_member(reg, "320300"), 0, kid, NULL, NULL, NULL);
	assert_int_equal(tb_reg_remove_member(reg, "320300", &d), TB_OK);
	assert_int_equal(tb_reg_find_member(reg, "320300"), TB_REG_NONE);
	assert_int_equal(tb_reg_find_key(reg, kid, &m, &k), TB_E_SIG_KEYID);
	assert_int_equal(tb_reg_sig_count(reg), 0);
	assert_int_equal(tb_reg_serial(reg), 2);
	assert_int_equal(tb_reg_remove_member(reg, "321300", &d), TB_OK);
	assert_int_equal(tb_reg_remove_member(reg, "320000", &d), TB_OK);
	assert_int_equal(tb_reg_member_count(reg), 0);
	assert_int_equal(tb_reg_serial(reg), 2);
	assert_non_null(r2 = reparse(reg, &text));
	assert_int_equal(tb_reg_member_count(r2), 0);
	tb_reg_free(r2);
	tb_reg_free(reg);
	tb_buf_free(&text);
}

/* SM2 throughout (issue 21): bare SM2 authority keys in the trust anchor
 * sign and verify the registry; a member's SM2 key listed for signing is
 * accepted, one listed for DTLS (tls, both) or off the curve is reg.key;
 * a registry edited after the SM2 signatures fails them. */
static void
test_sm2_registry(void **state)
{
	struct tb_key *a[2], *mk;
	struct tb_trust *t = tb_trust_new("huaihai", NULL);
	uint8_t kid[TB_KEYID_LEN] = {0};
	struct tb_buf der, text;
	struct tb_diag d;
	const char *r37[] = {"3713"};
	struct tb_reg_service_spec sv = {"hukou.transfer", r37, 1};
	const char *ep[] = {"coaps://192.0.2.9:5684"};
	size_t good = 0;

	(void)state;
	assert_non_null(t);
	assert_int_equal(tb_trust_set_root(t, "PEM", 3, kid, NULL), TB_OK);
	for (int i = 0; i < 2; i++) {
		assert_non_null(a[i] = tb_key_generate(TB_ALG_SM2, NULL));
		tb_buf_init(&der);
		assert_int_equal(fed_key_spki(a[i], &der), 0);
		assert_int_equal(tb_trust_add_authority(t, der.data, der.len, "sm2", &d), TB_OK);
		tb_buf_free(&der);
	}
	assert_int_equal(tb_trust_set_threshold(t, 2, NULL), TB_OK);
	assert_non_null(mk = tb_key_generate(TB_ALG_SM2, NULL));
	tb_buf_init(&der);
	assert_int_equal(fed_key_spki(mk, &der), 0);
	assert_int_equal(der.len, 91);
	for (int use = TB_USE_TLS; use <= TB_USE_BOTH + 1; use++) {
		struct tb_reg *rb = make_reg();
		struct tb_reg_key_spec ks = {der.data, der.len,
		                             use <= TB_USE_BOTH ? use : TB_USE_SIGN};
		uint8_t off[91];
		if (use > TB_USE_BOTH) { /* the point moved off the curve */
			memcpy(off, der.data, 91);
			off[90] ^= 1;
			ks.spki = off;
		}
		struct tb_reg_member_spec ms = {
		    "371300", "临沂市", NULL, TB_ROLE_CITY, TB_STATUS_ACTIVE, ep, 1, &ks,
		    1,        &sv,      1};
		assert_int_equal(tb_reg_add_member(rb, &ms, NULL), TB_OK);
		assert_int_equal(tb_reg_sign(rb, a[0], NULL), TB_OK);
		assert_int_equal(tb_reg_sign(rb, a[1], NULL), TB_OK);
		if (use == TB_USE_SIGN) {
			assert_int_equal(tb_reg_verify(rb, t, T0, 0, &good, &d), TB_OK);
			assert_int_equal(good, 2);
			/* the signatures are sm2 */
			tb_buf_init(&text);
			assert_int_equal(tb_reg_serialize(rb, &text), TB_OK);
			assert_non_null(memmem(text.data, text.len, "{\"alg\":\"sm2\"", 12));
			/* an edit after signing: both signatures fail */
			char *p = memmem(text.data, text.len, "\"serial\":1", 10);
			assert_non_null(p);
			p[9] = '2';
			struct tb_reg *r2 = tb_reg_parse(text.data, text.len, NULL);
			assert_non_null(r2);
			assert_int_equal(tb_reg_verify(r2, t, T0, 0, &good, &d), TB_E_REG_TAMPERED);
			tb_reg_free(r2);
			tb_buf_free(&text);
		} else {
			assert_int_equal(tb_reg_verify(rb, t, T0, 0, NULL, &d), TB_E_REG_KEY);
		}
		tb_reg_free(rb);
	}
	tb_buf_free(&der);
	tb_key_free(mk);
	tb_key_free(a[0]);
	tb_key_free(a[1]);
	tb_trust_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sign_verify),  cmocka_unit_test(test_every_byte),
	    cmocka_unit_test(test_sm2_registry), cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_limits),       cmocka_unit_test(test_trust),
	    cmocka_unit_test(test_nul_names),    cmocka_unit_test(test_remove_member),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
