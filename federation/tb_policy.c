/* SPDX-License-Identifier: Apache-2.0 */
/* tb_policy.c - first-match access policy over the registry. */
#include "tb_policy.h"

#include <string.h>

#include "../protocol/tb_env.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "tb_reg.h"
#include "tb_reg_internal.h"

static bool
in_list(const struct strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

static bool
rule_matches(const struct reg_rule *r, const struct reg_member *m, const char *service)
{
	if (!(r->services.n == 1 && strcmp(r->services.v[0], "*") == 0) &&
	    !in_list(&r->services, service))
		return false;
	if (!r->has_from)
		return true;
	/* every list present must match; within a list any entry may */
	if (r->ids.n > 0 && !in_list(&r->ids, m->id))
		return false;
	if (r->roles.n > 0 && !in_list(&r->roles, tb_reg_role_name(m->role)))
		return false;
	if (r->regions.n > 0) {
		bool hit = false;
		for (size_t i = 0; i < r->regions.n && !hit; i++)
			hit = strncmp(m->id, r->regions.v[i], strlen(r->regions.v[i])) == 0;
		if (!hit)
			return false;
	}
	return true;
}

int
tb_policy_check(const struct tb_reg *reg, const char *from, const char *service,
                struct tb_policy_decision *out)
{
	size_t mi;
	const struct reg_member *m;

	if (from == NULL || service == NULL || !tb_member_id_valid(from, strlen(from)) ||
	    !tb_service_code_valid(service, strlen(service)))
		return TB_E_ARG;
	out->allow = false;
	if ((mi = tb_reg_find_member(reg, from)) == TB_REG_NONE) {
		out->rule = TB_POLICY_NOT_MEMBER;
		return TB_OK;
	}
	m = &reg->members[mi];
	if (m->status != TB_STATUS_ACTIVE) {
		out->rule = TB_POLICY_INACTIVE;
		return TB_OK;
	}
	for (size_t i = 0; i < reg->nrules; i++)
		if (rule_matches(&reg->rules[i], m, service)) {
			out->allow = reg->rules[i].allow;
			out->rule = (long)i;
			return TB_OK;
		}
	out->allow = reg->policy_allow;
	out->rule = TB_POLICY_DEFAULT;
	return TB_OK;
}

bool
tb_policy_default_allow(const struct tb_reg *reg)
{
	return reg->policy_allow;
}

size_t
tb_policy_rule_count(const struct tb_reg *reg)
{
	return reg->nrules;
}

static int
add_list(struct tb_buf *out, const char *key, const struct strv *v)
{
	int rc = tb_buf_printf(out, ";%s=", key);
	for (size_t i = 0; i < v->n && rc == TB_OK; i++)
		rc = tb_buf_printf(out, "%s%s", i > 0 ? "," : "", v->v[i]);
	return rc;
}

int
tb_policy_rule_text(const struct tb_reg *reg, size_t i, struct tb_buf *out)
{
	const struct reg_rule *r = &reg->rules[i];
	int rc = tb_buf_printf(out, "effect=%s", r->allow ? "allow" : "deny");

	if (rc == TB_OK)
		rc = add_list(out, "services", &r->services);
	if (rc == TB_OK && r->ids.n > 0)
		rc = add_list(out, "ids", &r->ids);
	if (rc == TB_OK && r->roles.n > 0)
		rc = add_list(out, "roles", &r->roles);
	if (rc == TB_OK && r->regions.n > 0)
		rc = add_list(out, "regions", &r->regions);
	return rc;
}
