/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_registry.c - `tongban-bench registry`: a 10,000-member registry
 * signed by 2 Ed25519 authorities is parsed, verified (both signatures and
 * every key id) and indexed for routing, median of several runs; then
 * route lookups per second on one core over random (service, region)
 * queries.  The last line is one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_route.h"
#include "../federation/tb_trust.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"

int bench_registry(int argc, char **argv);

#define NSVC 20
#define NQ (1u << 20)

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* DER SPKI of a key from its PEM (base64 between the armour lines). */
static int
key_spki(const struct tb_key *key, struct tb_buf *der)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct tb_pub *pub = tb_key_pub(key);
	struct tb_buf pem;
	uint32_t acc = 0;
	int bits = 0, rc = -1;
	const char *p, *end;

	tb_buf_init(&pem);
	if (pub == NULL || tb_pub_pem(pub, &pem) != TB_OK)
		goto out;
	p = strstr((const char *)pem.data, "-----\n");
	end = strstr((const char *)pem.data, "\n-----END");
	if (p == NULL || end == NULL)
		goto out;
	for (p += 6; p < end; p++) {
		const char *q;
		if (*p == '\n' || *p == '=' || (q = strchr(al, *p)) == NULL)
			continue;
		acc = (acc << 6) | (uint32_t)(q - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			tb_buf_addc(der, (uint8_t)(acc >> bits));
		}
	}
	rc = tb_buf_error(der) == TB_OK ? 0 : -1;
out:
	tb_pub_free(pub);
	tb_buf_free(&pem);
	return rc;
}

static const char *
svc_name(unsigned i)
{
	static char names[NSVC][24];
	if (names[i][0] == '\0')
		snprintf(names[i], sizeof(names[i]), "service-%02u.transfer", i);
	return names[i];
}

/* 30 hubs (p0000 for p = 11..40) serving every service for their
 * province, and cities with one endpoint, one Ed25519-shaped key and 3
 * services for their own 4- and 6-digit codes. */
static struct tb_reg *
build(unsigned members, int64_t now, uint64_t *seed)
{
	static const uint8_t ed_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
	                                      0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	struct tb_reg *reg = tb_reg_new("bench", now - 60, now + 86400, NULL);
	unsigned added = 0;

	if (reg == NULL)
		return NULL;
	for (unsigned i = 0; added < members && i < 10 * members; i++) {
		bool hub = i < 30;
		char id[8], r4[8], ep[48], pref[3];
		uint8_t spki[44];
		const char *regs[2] = {r4, id}, *eps[1] = {ep}, *hubregs[1] = {pref};
		struct tb_reg_service_spec sv[NSVC];
		struct tb_reg_key_spec key = {spki, sizeof(spki), TB_USE_BOTH};
		struct tb_reg_member_spec m;
		size_t nsv = 0;

		if (hub)
			snprintf(id, sizeof(id), "%u0000", 11 + i);
		else
			snprintf(id, sizeof(id), "%06u",
			         110100 + (unsigned)(xs(seed) % 300000) * 3);
		if (!hub && strcmp(id + 2, "0000") == 0)
			continue;
		memcpy(r4, id, 4);
		r4[4] = '\0';
		memcpy(pref, id, 2);
		pref[2] = '\0';
		snprintf(ep, sizeof(ep), "coaps://10.%u.%u.%u:5684", (i >> 16) & 255,
		         (i >> 8) & 255, i & 255);
		memcpy(spki, ed_prefix, sizeof(ed_prefix));
		for (size_t j = sizeof(ed_prefix); j < sizeof(spki); j++)
			spki[j] = (uint8_t)xs(seed);
		if (hub) {
			for (unsigned s = 0; s < NSVC; s++)
				sv[nsv++] = (struct tb_reg_service_spec){svc_name(s), hubregs, 1};
		} else {
			unsigned s0 = (unsigned)(xs(seed) % NSVC);
			for (unsigned s = 0; s < 3; s++)
				sv[nsv++] = (struct tb_reg_service_spec){
				    svc_name((s0 + s * 7) % NSVC), regs, 2};
		}
		memset(&m, 0, sizeof(m));
		m.id = id;
		m.name = hub ? "省" : "市";
		m.role = hub ? TB_ROLE_HUB : TB_ROLE_CITY;
		m.status = xs(seed) % 50 == 0 ? TB_STATUS_SUSPENDED : TB_STATUS_ACTIVE;
		m.endpoints = eps;
		m.nendpoints = 1;
		m.keys = &key;
		m.nkeys = 1;
		m.services = sv;
		m.nservices = nsv;
		if (tb_reg_add_member(reg, &m, NULL) == TB_OK)
			added++;
	}
	return reg;
}

/* --members N, --runs N. */
static int
parse_args(int argc, char **argv, unsigned *members, unsigned *runs)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--members") == 0 && i + 1 < argc) {
			(*members) = (unsigned)atoi(argv[++i]);
			if ((*members) < 31 || (*members) > TB_REG_MAX_MEMBERS) {
				fprintf(stderr, "tongban-bench: --members must be 31-%d\n",
				        TB_REG_MAX_MEMBERS);
				return 2;
			}
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			(*runs) = (unsigned)atoi(argv[++i]);
			if ((*runs) < 1 || (*runs) > 31) {
				fprintf(stderr, "tongban-bench: --runs must be 1-31\n");
				return 2;
			}
		} else {
			fprintf(stderr, "tongban-bench: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	return 0;
}

/* NQ queries: mostly members' own codes (hits at 6 or 4 digits), some
 * province-only and some unknown regions. */
static void
make_queries(const struct tb_reg *reg, unsigned members, uint64_t *seed, char (*qsvc)[24],
             char (*qreg)[8])
{
	for (unsigned i = 0; i < NQ; i++) {
		size_t m = xs(seed) % members;
		const char *id = tb_reg_member_id(reg, m);
		snprintf(qsvc[i], sizeof(qsvc[i]), "%s", svc_name((unsigned)(xs(seed) % NSVC)));
		switch (xs(seed) % 4) {
		case 0:
			snprintf(qreg[i], sizeof(qreg[i]), "%.4s%02u", id,
			         (unsigned)(xs(seed) % 100));
			break;
		case 1: snprintf(qreg[i], sizeof(qreg[i]), "%.2s", id); break;
		case 2:
			snprintf(qreg[i], sizeof(qreg[i]), "9%05u", (unsigned)(xs(seed) % 100000));
			break;
		default: snprintf(qreg[i], sizeof(qreg[i]), "%s", id); break;
		}
	}
}

/* Route lookups for a second, on one core: lookups per second. */
static double
time_lookups(const struct tb_route *rt, char (*qsvc)[24], char (*qreg)[8], unsigned *hits)
{
	double t0, dt, lps;

	unsigned long long n = 0;
	t0 = now_s();
	do {
		for (unsigned i = 0; i < NQ; i++) {
			struct tb_route_result res;
			*hits += tb_route_resolve(rt, qsvc[i], qreg[i], &res) == TB_OK;
		}
		n += NQ;
		dt = now_s() - t0;
	} while (dt < 1.0);
	lps = (double)n / dt;
	printf("route lookups: %.0f per second on one core (%llu lookups, %.0f%% found, %zu "
	       "table entries)\n",
	       lps, n, 100.0 * *hits / (double)n, tb_route_entries(rt));
	return lps;
}

int
bench_registry(int argc, char **argv)
{
	unsigned members = 10000, runs = 9;
	uint64_t seed = 0x2545f4914f6cdd1dULL;
	int64_t now = (int64_t)time(NULL);
	struct tb_key *ak[2] = {NULL, NULL};
	struct tb_trust *trust = NULL;
	struct tb_reg *reg = NULL;
	struct tb_route *rt = NULL;
	struct tb_buf text, der;
	double times[32], t0, lps;
	char(*qsvc)[24] = NULL, (*qreg)[8] = NULL;
	unsigned hits = 0;
	int rc = 1;

	if (parse_args(argc, argv, &members, &runs) != 0)
		return 2;
	tb_buf_init(&text);
	tb_buf_init(&der);
	if ((trust = tb_trust_new("bench", NULL)) == NULL)
		goto out;
	for (int i = 0; i < 2; i++) {
		uint8_t kid[TB_KEYID_LEN] = {0};
		tb_buf_reset(&der);
		if ((ak[i] = tb_key_generate(TB_ALG_ED25519, NULL)) == NULL ||
		    key_spki(ak[i], &der) != 0 ||
		    tb_trust_add_authority(trust, der.data, der.len, "authority", NULL) != TB_OK ||
		    tb_trust_set_root(trust, "-", 1, kid, NULL) != TB_OK)
			goto out;
	}
	if (tb_trust_set_threshold(trust, 2, NULL) != TB_OK)
		goto out;
	t0 = now_s();
	if ((reg = build(members, now, &seed)) == NULL || tb_reg_sign(reg, ak[0], NULL) != TB_OK ||
	    tb_reg_sign(reg, ak[1], NULL) != TB_OK || tb_reg_serialize(reg, &text) != TB_OK)
		goto out;
	printf("built and signed %zu members in %.0f ms; %zu bytes\n", tb_reg_member_count(reg),
	       (now_s() - t0) * 1e3, text.len);
	members = (unsigned)tb_reg_member_count(reg);
	tb_reg_free(reg);
	reg = NULL;

	for (unsigned r = 0; r < runs; r++) {
		struct tb_diag d;
		t0 = now_s();
		if ((reg = tb_reg_parse(text.data, text.len, &d)) == NULL ||
		    tb_reg_verify(reg, trust, now, 0, NULL, &d) != TB_OK ||
		    (rt = tb_route_new(reg, &d)) == NULL) {
			char line[256];
			fprintf(stderr, "tongban-bench: %s\n",
			        tb_diag_format(&d, line, sizeof(line)));
			goto out;
		}
		times[r] = (now_s() - t0) * 1e3;
		if (r + 1 < runs) {
			tb_route_free(rt);
			tb_reg_free(reg);
			rt = NULL;
			reg = NULL;
		}
	}
	qsort(times, runs, sizeof(double), cmp_double);
	printf("parse+verify+index: median %.1f ms (min %.1f, max %.1f) over %u runs\n",
	       times[runs / 2], times[0], times[runs - 1], runs);

	/* queries: mostly members' own codes (hits at 6 or 4 digits), some
	 * province-only and some unknown regions */
	if ((qsvc = malloc(NQ * sizeof(*qsvc))) == NULL ||
	    (qreg = malloc(NQ * sizeof(*qreg))) == NULL)
		goto out;
	make_queries(reg, members, &seed, qsvc, qreg);
	lps = time_lookups(rt, qsvc, qreg, &hits);
	printf("{\"bench\":\"registry\",\"members\":%u,\"registry_bytes\":%zu,\"signatures\":2,"
	       "\"verify_index_ms\":%.1f,\"lookups_per_s\":%.0f}\n",
	       members, text.len, times[runs / 2], lps);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "tongban-bench: registry benchmark failed\n");
	free(qsvc);
	free(qreg);
	tb_route_free(rt);
	tb_reg_free(reg);
	tb_trust_free(trust);
	tb_key_free(ak[0]);
	tb_key_free(ak[1]);
	tb_buf_free(&text);
	tb_buf_free(&der);
	return rc;
}
