/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_licence.h - checking a presented licence against a member registry
 * (docs/PROTOCOL.md 10.5): the issuer's keys, the revoked keys and the
 * issuer's status come from the registry; the rest is tb_flow's.
 *
 * Thread-safety: reentrant; the registry is only read.
 */
#ifndef TB_LICENCE_H
#define TB_LICENCE_H

#include <stdint.h>

#include "../util/tb_err.h"

struct tb_reg;
struct tb_json;

/*
 * Checks licence (borrowed; a licence object as inside licence.present)
 * at Unix time now against reg (borrowed).  Returns 0 when it is
 * authentic and valid, else the first failure, as tb_flow_licence_check
 * (TB_E_SIG_KEYID also for a key in revoked_keys or not usable for
 * signing; TB_E_LICENCE_ISSUER_SUSPENDED / _REVOKED for an issuer not
 * active), with d's detail.
 */
TB_MUST_CHECK int tb_licence_check(const struct tb_reg *reg, const struct tb_json *licence,
                                   int64_t now, struct tb_diag *d);

#endif
