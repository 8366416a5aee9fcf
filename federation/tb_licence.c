/* SPDX-License-Identifier: Apache-2.0 */
/* tb_licence.c - a presented licence against the registry (tb_licence.h). */
#include "tb_licence.h"

#include <string.h>

#include "../certs/tb_key.h"
#include "../protocol/tb_flow.h"
#include "tb_reg.h"

struct ctx {
	const struct tb_reg *reg;
	struct tb_pub *pub; /* the last key handed out (owned) */
};

/* The signing key `kid` of member `issuer`, unless revoked. */
static const struct tb_pub *
lookup(void *vc, const char *issuer, const uint8_t kid[TB_KEYID_LEN])
{
	struct ctx *c = vc;
	size_t m, k, len;
	enum tb_key_use use;
	const uint8_t *spki;
	uint8_t id[TB_KEYID_LEN];

	if (tb_reg_find_key(c->reg, kid, &m, &k) != TB_OK ||
	    strcmp(tb_reg_member_id(c->reg, m), issuer) != 0 || tb_reg_key_revoked(c->reg, kid))
		return NULL;
	tb_reg_key(c->reg, m, k, id, &use, &spki, &len);
	if (!(use & TB_USE_SIGN))
		return NULL;
	tb_pub_free(c->pub);
	c->pub = tb_pub_import_spki(spki, len, NULL);
	return c->pub;
}

/* The issuer's status (a member not listed has no key: lookup refused it). */
static int
issuer_status(void *vc, const char *issuer)
{
	const struct ctx *c = vc;
	size_t m = tb_reg_find_member(c->reg, issuer);

	if (m == TB_REG_NONE)
		return TB_OK;
	switch (tb_reg_member_status(c->reg, m)) {
	case TB_STATUS_SUSPENDED:
		return TB_E_LICENCE_ISSUER_SUSPENDED;
	case TB_STATUS_REVOKED:
		return TB_E_LICENCE_ISSUER_REVOKED;
	default:
		return TB_OK;
	}
}

int
tb_licence_check(const struct tb_reg *reg, const struct tb_json *licence, int64_t now,
                 struct tb_diag *d)
{
	struct ctx c = {reg, NULL};
	int rc;

	if (reg == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no registry");
	rc = tb_flow_licence_check(licence, lookup, issuer_status, &c, now, d);
	tb_pub_free(c.pub);
	return rc;
}
