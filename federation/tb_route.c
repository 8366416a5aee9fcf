/* SPDX-License-Identifier: Apache-2.0 */
/* tb_route.c - precomputed (service, region prefix) -> member table. */
#include "tb_route.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../util/tb_err.h"
#include "tb_reg.h"
#include "tb_reg_internal.h"

/*
 * Two open-addressing tables (linear probing, power-of-two sizes, load at
 * most 1/2):
 *   services: code -> dense service number
 *   prefixes: (service number + 1) << 20 | prefix value -> member index
 * A region prefix starts with 1-9, so its decimal value also fixes its
 * length; values stay below 10^6 < 2^20.
 */

struct svc_slot {
	uint64_t hash; /* 0: empty */
	const char *code;
	size_t len;
	uint32_t num;
};

struct pfx_slot {
	uint64_t key; /* 0: empty */
	uint32_t member;
};

struct hop {
	bool ok; /* active and reachable */
	const char *endpoint;
	const char *path[2];
	size_t path_len;
};

struct tb_route {
	const struct tb_reg *reg;
	struct svc_slot *svc;
	size_t svc_mask, nsvc;
	struct pfx_slot *pfx;
	size_t pfx_mask, npfx;
	struct hop *hops; /* per member */
};

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t
str_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h = mix64(h);
	return h == 0 ? 1 : h;
}

static size_t
pow2_at_least(size_t n)
{
	size_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

void
tb_route_free(struct tb_route *rt)
{
	if (rt == NULL)
		return;
	free(rt->svc);
	free(rt->pfx);
	free(rt->hops);
	free(rt);
}

static const struct svc_slot *
svc_find(const struct tb_route *rt, const char *code, size_t n, uint64_t h)
{
	for (size_t i = h & rt->svc_mask;; i = (i + 1) & rt->svc_mask) {
		const struct svc_slot *s = &rt->svc[i];
		if (s->hash == 0)
			return NULL;
		if (s->hash == h && s->len == n && memcmp(s->code, code, n) == 0)
			return s;
	}
}

static uint32_t
prefix_value(const char *s, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint32_t)(s[i] - '0');
	return v;
}

static struct pfx_slot *
pfx_slot(const struct tb_route *rt, uint64_t key)
{
	for (size_t i = mix64(key) & rt->pfx_mask;; i = (i + 1) & rt->pfx_mask) {
		struct pfx_slot *s = &rt->pfx[i];
		if (s->key == 0 || s->key == key)
			return s;
	}
}

struct tb_route *
tb_route_new(const struct tb_reg *reg, struct tb_diag *d)
{
	struct tb_route *rt;
	size_t nsvc_total = 0, npfx_total = 0;

	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		goto nomem;
	rt->reg = reg;
	if ((rt->hops = calloc(reg->nmembers + 1, sizeof(*rt->hops))) == NULL)
		goto nomem;
	for (size_t i = 0; i < reg->nmembers; i++) {
		const struct reg_member *m = &reg->members[i];
		struct hop *h = &rt->hops[i];
		if (m->status != TB_STATUS_ACTIVE)
			continue;
		if (m->endpoints.n > 0) {
			h->ok = true;
			h->endpoint = m->endpoints.v[0];
			h->path[0] = m->id;
			h->path_len = 1;
		} else if (m->parent != NULL) {
			size_t p = tb_reg_find_member(reg, m->parent);
			const struct reg_member *pm = p == TB_REG_NONE ? NULL : &reg->members[p];
			if (pm == NULL || pm->status != TB_STATUS_ACTIVE || pm->endpoints.n == 0)
				continue; /* unreachable: its hub cannot forward */
			h->ok = true;
			h->endpoint = pm->endpoints.v[0];
			h->path[0] = pm->id;
			h->path[1] = m->id;
			h->path_len = 2;
		}
		if (!h->ok)
			continue;
		nsvc_total += m->nservices;
		for (size_t s = 0; s < m->nservices; s++)
			npfx_total += m->services[s].regions.n;
	}
	rt->svc_mask = pow2_at_least(2 * nsvc_total + 1) - 1;
	rt->pfx_mask = pow2_at_least(2 * npfx_total + 1) - 1;
	if ((rt->svc = calloc(rt->svc_mask + 1, sizeof(*rt->svc))) == NULL ||
	    (rt->pfx = calloc(rt->pfx_mask + 1, sizeof(*rt->pfx))) == NULL)
		goto nomem;
	for (size_t i = 0; i < reg->nmembers; i++) {
		const struct reg_member *m = &reg->members[i];
		if (!rt->hops[i].ok)
			continue;
		for (size_t s = 0; s < m->nservices; s++) {
			const struct reg_service *sv = &m->services[s];
			size_t n = strlen(sv->code);
			uint64_t h = str_hash(sv->code, n);
			const struct svc_slot *ss = svc_find(rt, sv->code, n, h);
			uint32_t num;

			if (ss == NULL) {
				size_t j = h & rt->svc_mask;
				while (rt->svc[j].hash != 0)
					j = (j + 1) & rt->svc_mask;
				rt->svc[j].hash = h;
				rt->svc[j].code = sv->code;
				rt->svc[j].len = n;
				rt->svc[j].num = (uint32_t)rt->nsvc++;
				num = rt->svc[j].num;
			} else {
				num = ss->num;
			}
			for (size_t r = 0; r < sv->regions.n; r++) {
				const char *rc = sv->regions.v[r];
				uint64_t key =
				    ((uint64_t)(num + 1) << 20) | prefix_value(rc, strlen(rc));
				struct pfx_slot *ps = pfx_slot(rt, key);
				if (ps->key == 0) {
					ps->key = key;
					ps->member = (uint32_t)i;
					rt->npfx++;
				} else if (m->idnum < reg->members[ps->member].idnum) {
					/* tie-break: the lowest member id wins */
					ps->member = (uint32_t)i;
				}
			}
		}
	}
	return rt;
nomem:
	tb_route_free(rt);
	tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	return NULL;
}

size_t
tb_route_entries(const struct tb_route *rt)
{
	return rt->npfx;
}

int
tb_route_resolve(const struct tb_route *rt, const char *service, const char *region,
                 struct tb_route_result *out)
{
	static const uint32_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
	size_t sn = strnlen(service, 65), rn = strnlen(region, 7);
	const struct svc_slot *ss;
	uint32_t rv;

	if (!tb_service_code_valid(service, sn) || !tb_region_code_valid(region, rn))
		return TB_E_ARG;
	if ((ss = svc_find(rt, service, sn, str_hash(service, sn))) == NULL)
		return TB_E_NO_ROUTE;
	rv = prefix_value(region, rn);
	for (size_t len = rn; len >= 2; len -= 2) {
		uint64_t key = ((uint64_t)(ss->num + 1) << 20) | (rv / pow10[rn - len]);
		const struct pfx_slot *ps = pfx_slot(rt, key);
		if (ps->key == key) {
			const struct hop *h = &rt->hops[ps->member];
			out->member = ps->member;
			out->member_id = rt->reg->members[ps->member].id;
			out->endpoint = h->endpoint;
			out->path[0] = h->path[0];
			out->path[1] = h->path_len > 1 ? h->path[1] : NULL;
			out->path_len = h->path_len;
			out->prefix_len = len;
			return TB_OK;
		}
	}
	return TB_E_NO_ROUTE;
}
