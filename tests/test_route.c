/* SPDX-License-Identifier: Apache-2.0 */
/* test_route.c - route table (federation/tb_route) against a brute-force
 * resolver over thousands of random registries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/tb_reg.h"
#include "federation/tb_route.h"
#include "fed_testutil.h"
#include "util/tb_err.h"

#define NREG 3000
#define NQUERY 60

static const char *const provinces[] = {"11", "32", "37"};
static const char *const services[] = {"a", "b", "hukou.transfer", "nobody"};

/* A random division code of 6 digits from a small space so that prefixes
 * collide often. */
static void
rand_code(uint64_t *s, char out[7], bool hub)
{
	snprintf(out, 7, "%s%02d%02d", provinces[fed_rand(s) % 3], hub ? 0 : (int)(fed_rand(s) % 3),
	         hub ? 0 : (int)(fed_rand(s) % 3));
}

/* A prefix of 2, 4 or 6 digits of a random code. */
static void
rand_prefix(uint64_t *s, char out[7])
{
	char c[7];
	rand_code(s, c, false);
	size_t n = 2 * (1 + fed_rand(s) % 3);
	memcpy(out, c, n);
	out[n] = '\0';
}

static struct tb_reg *
rand_reg(uint64_t *s)
{
	struct tb_reg *reg = tb_reg_new("test", 0, 100, NULL);
	size_t n = 1 + fed_rand(s) % 24;
	uint8_t spki[16];

	assert_non_null(reg);
	for (size_t i = 0; i < n; i++) {
		bool hub = i < 3 && fed_rand(s) % 2 == 0;
		char id[7], regions[4][4][7], parent[7];
		const char *rp[4][4];
		struct tb_reg_service_spec sv[4];
		const char *ep[1];
		char epbuf[40];
		struct tb_reg_key_spec key;
		struct tb_reg_member_spec m;
		size_t nsv = fed_rand(s) % 4;

		rand_code(s, id, hub);
		memset(&m, 0, sizeof(m));
		m.id = id;
		m.name = "x";
		m.role = hub ? TB_ROLE_HUB : TB_ROLE_CITY;
		m.status = fed_rand(s) % 10 < 7 ? TB_STATUS_ACTIVE
		           : fed_rand(s) % 2    ? TB_STATUS_SUSPENDED
		                                : TB_STATUS_REVOKED;
		snprintf(epbuf, sizeof(epbuf), "coaps://m%s", id);
		ep[0] = epbuf;
		m.endpoints = ep;
		m.nendpoints = 1;
		/* a city sometimes hangs off a hub, sometimes without endpoints */
		if (!hub && tb_reg_member_count(reg) > 0 && fed_rand(s) % 2 == 0) {
			size_t h = fed_rand(s) % tb_reg_member_count(reg);
			if (tb_reg_member_role(reg, h) == TB_ROLE_HUB) {
				strcpy(parent, tb_reg_member_id(reg, h));
				m.parent = parent;
				if (fed_rand(s) % 2 == 0)
					m.nendpoints = 0;
			}
		}
		for (size_t j = 0; j < sizeof(spki); j++)
			spki[j] = (uint8_t)fed_rand(s);
		key.spki = spki;
		key.spki_len = sizeof(spki);
		key.use = TB_USE_BOTH;
		m.keys = &key;
		m.nkeys = 1;
		for (size_t k = 0; k < nsv; k++) {
			sv[k].code = services[k == 0 ? fed_rand(s) % 3 : k - 1];
			sv[k].nregions = 1 + fed_rand(s) % 4;
			for (size_t r = 0; r < sv[k].nregions; r++) {
				rand_prefix(s, regions[k][r]);
				rp[k][r] = regions[k][r];
			}
			sv[k].regions = rp[k];
		}
		/* service codes must differ within a member */
		if (nsv >= 2 && strcmp(sv[0].code, sv[1].code) == 0)
			nsv = 1;
		if (nsv >= 3 && (strcmp(sv[0].code, sv[2].code) == 0))
			nsv = 2;
		m.services = sv;
		m.nservices = nsv;
		/* random members: a duplicate id (or parent) is refused, and
		 * only that; anything else is a bug */
		int rc = tb_reg_add_member(reg, &m, NULL);
		assert_true(rc == TB_OK || rc == TB_E_REG_DUP_MEMBER || rc == TB_E_REG_DUP_KEY ||
		            rc == TB_E_REG_REFERENCE);
	}
	return reg;
}

/* The specification, literally: among active members reachable directly
 * or through an active parent with an endpoint, offering service for a
 * prefix of region, the longest prefix wins, then the lowest id. */
static size_t
brute(const struct tb_reg *reg, const char *service, const char *region)
{
	size_t best = TB_REG_NONE, bestlen = 0;

	for (size_t m = 0; m < tb_reg_member_count(reg); m++) {
		if (tb_reg_member_status(reg, m) != TB_STATUS_ACTIVE)
			continue;
		if (tb_reg_endpoint_count(reg, m) == 0) {
			const char *p = tb_reg_member_parent(reg, m);
			size_t pi = p == NULL ? TB_REG_NONE : tb_reg_find_member(reg, p);
			if (pi == TB_REG_NONE ||
			    tb_reg_member_status(reg, pi) != TB_STATUS_ACTIVE ||
			    tb_reg_endpoint_count(reg, pi) == 0)
				continue;
		}
		for (size_t s = 0; s < tb_reg_service_count(reg, m); s++) {
			if (strcmp(tb_reg_service_code(reg, m, s), service) != 0)
				continue;
			for (size_t r = 0; r < tb_reg_region_count(reg, m, s); r++) {
				const char *pre = tb_reg_region(reg, m, s, r);
				size_t n = strlen(pre);
				if (n > strlen(region) || strncmp(pre, region, n) != 0)
					continue;
				if (n > bestlen ||
				    (n == bestlen && strcmp(tb_reg_member_id(reg, m),
				                            tb_reg_member_id(reg, best)) < 0)) {
					best = m;
					bestlen = n;
				}
			}
		}
	}
	return best;
}

static void
test_property(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	size_t found = 0, none = 0, via_hub = 0;

	(void)state;
	for (int i = 0; i < NREG; i++) {
		struct tb_reg *reg = rand_reg(&seed);
		struct tb_route *rt = tb_route_new(reg, NULL);
		assert_non_null(rt);
		for (int q = 0; q < NQUERY; q++) {
			char region[7];
			const char *svc = services[fed_rand(&seed) % 4];
			struct tb_route_result res;
			size_t want;
			int rc;

			rand_prefix(&seed, region);
			want = brute(reg, svc, region);
			rc = tb_route_resolve(rt, svc, region, &res);
			if (want == TB_REG_NONE) {
				assert_int_equal(rc, TB_E_NO_ROUTE);
				none++;
				continue;
			}
			assert_int_equal(rc, TB_OK);
			assert_string_equal(res.member_id, tb_reg_member_id(reg, want));
			assert_int_equal(res.member, want);
			if (tb_reg_endpoint_count(reg, want) > 0) {
				assert_int_equal(res.path_len, 1);
				assert_string_equal(res.path[0], res.member_id);
				assert_string_equal(res.endpoint, tb_reg_endpoint(reg, want, 0));
			} else {
				size_t p = tb_reg_find_member(reg, tb_reg_member_parent(reg, want));
				assert_int_equal(res.path_len, 2);
				assert_string_equal(res.path[0], tb_reg_member_id(reg, p));
				assert_string_equal(res.path[1], res.member_id);
				assert_string_equal(res.endpoint, tb_reg_endpoint(reg, p, 0));
				via_hub++;
			}
			found++;
		}
		tb_route_free(rt);
		tb_reg_free(reg);
	}
	/* the generator must exercise every branch */
	assert_true(found > 10000);
	assert_true(none > 10000);
	assert_true(via_hub > 500);
}

/* Fixed cases: the documented rules one by one. */
static void
add(struct tb_reg *reg, const char *id, enum tb_reg_role role, const char *parent, bool ep,
    enum tb_reg_status st, const char *svc, const char *r1, const char *r2)
{
	static int n;
	uint8_t spki[8] = {1, 2, 3, 4, 5, 6, 7, (uint8_t)++n};
	struct tb_reg_key_spec key = {spki, sizeof(spki), TB_USE_BOTH};
	const char *regs[2] = {r1, r2};
	struct tb_reg_service_spec sv = {svc, regs, r2 != NULL ? 2 : 1};
	char epbuf[32];
	const char *eps[1] = {epbuf};
	struct tb_reg_member_spec m = {id,         "n",  parent, role, st,         eps,
	                               ep ? 1 : 0, &key, 1,      &sv,  svc ? 1 : 0};
	snprintf(epbuf, sizeof(epbuf), "coaps://%s", id);
	assert_int_equal(tb_reg_add_member(reg, &m, NULL), TB_OK);
}

static void
test_cases(void **state)
{
	struct tb_reg *reg = tb_reg_new("test", 0, 100, NULL);
	struct tb_route *rt;
	struct tb_route_result r;
	static const struct {
		const char *svc, *region, *want, *path0;
	} cases[] = {
	    {"s", "320311", "320300", "320300"}, /* 4-digit beats 2-digit */
	    {"s", "3203", "320300", "320300"},
	    {"s", "32", "320000", "320000"},     /* province */
	    {"s", "320711", "320000", "320000"}, /* no city for 3207: the province */
	    {"s", "321311", "321300", "320000"}, /* via its hub */
	    {"s", "370811", "370801", "370801"}, /* tie: lowest id of 370801/370802 */
	    {"s", "371700", NULL, NULL},         /* suspended: nobody else */
	    {"t", "320300", NULL, NULL},         /* unknown service */
	    {"s", "110000", NULL, NULL},
	    {"s", "340600", NULL, NULL}, /* parent suspended: unreachable */
	};

	(void)state;
	add(reg, "320000", TB_ROLE_HUB, NULL, true, TB_STATUS_ACTIVE, "s", "32", NULL);
	add(reg, "340000", TB_ROLE_HUB, NULL, true, TB_STATUS_SUSPENDED, NULL, NULL, NULL);
	add(reg, "320300", TB_ROLE_CITY, "320000", true, TB_STATUS_ACTIVE, "s", "3203", NULL);
	add(reg, "321300", TB_ROLE_CITY, "320000", false, TB_STATUS_ACTIVE, "s", "3213", NULL);
	add(reg, "370802", TB_ROLE_CITY, NULL, true, TB_STATUS_ACTIVE, "s", "3708", NULL);
	add(reg, "370801", TB_ROLE_CITY, NULL, true, TB_STATUS_ACTIVE, "s", "3708", "37");
	add(reg, "371700", TB_ROLE_CITY, NULL, true, TB_STATUS_SUSPENDED, "s", "3717", NULL);
	add(reg, "340600", TB_ROLE_CITY, "340000", false, TB_STATUS_ACTIVE, "s", "3406", NULL);
	assert_non_null(rt = tb_route_new(reg, NULL));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = tb_route_resolve(rt, cases[i].svc, cases[i].region, &r);
		if (cases[i].want == NULL) {
			/* 371700 falls back to the 37 prefix of 370801 */
			if (strcmp(cases[i].region, "371700") == 0) {
				assert_int_equal(rc, TB_OK);
				assert_string_equal(r.member_id, "370801");
				continue;
			}
			assert_int_equal(rc, TB_E_NO_ROUTE);
			continue;
		}
		assert_int_equal(rc, TB_OK);
		assert_string_equal(r.member_id, cases[i].want);
		assert_string_equal(r.path[0], cases[i].path0);
	}
	assert_int_equal(tb_route_resolve(rt, "s", "32031", &r), TB_E_ARG);
	assert_int_equal(tb_route_resolve(rt, "s", "032000", &r), TB_E_ARG);
	assert_int_equal(tb_route_resolve(rt, "*", "320000", &r), TB_E_ARG);
	assert_int_equal(tb_route_resolve(rt, "S", "320000", &r), TB_E_ARG);
	tb_route_free(rt);
	tb_reg_free(reg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_property),
	};
	if (tb_crypto_init() != TB_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
