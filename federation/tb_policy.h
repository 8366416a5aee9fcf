/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_policy.h - access policy: which members may call which services
 * (docs/PROTOCOL.md section 8.2).
 *
 * The policy lives in the registry.  Evaluation: a caller that is not a
 * member, or not active, is denied; otherwise the first rule (in document
 * order) whose services and "from" match decides; otherwise the default.
 *
 * Thread-safety: the functions only read the registry (as tb_reg.h's
 * accessors); output is appended to the caller's buffer.
 */
#ifndef TB_POLICY_H
#define TB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "../util/tb_err.h"

struct tb_reg;
struct tb_buf;

#define TB_POLICY_DEFAULT (-1)    /* no rule matched: the default decided */
#define TB_POLICY_NOT_MEMBER (-2) /* caller is not in the registry */
#define TB_POLICY_INACTIVE (-3)   /* caller is suspended or revoked */

struct tb_policy_decision {
	bool allow;
	long rule; /* index of the deciding rule, or one of the values above */
};

/*
 * Decides whether member from may call service.  0 with *out filled, or
 * TB_E_ARG when from is not a member id or service not a service code.
 */
TB_MUST_CHECK int tb_policy_check(const struct tb_reg *reg, const char *from, const char *service,
                                  struct tb_policy_decision *out);

bool tb_policy_default_allow(const struct tb_reg *reg);
size_t tb_policy_rule_count(const struct tb_reg *reg);
/* Appends rule i in the text form of tb_reg_add_policy_rule(). */
TB_MUST_CHECK int tb_policy_rule_text(const struct tb_reg *reg, size_t i, struct tb_buf *out);

#endif
