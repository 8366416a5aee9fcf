/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_reg_internal.h - for federation/ only: the registry model behind
 * struct tb_reg, read by tb_route.c and tb_policy.c.
 */
#ifndef TB_REG_INTERNAL_H
#define TB_REG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/tb_buf.h"
#include "tb_reg.h"

struct strv {
	char **v;
	size_t n;
};

struct reg_key {
	uint8_t kid[TB_KEYID_LEN];
	uint8_t *spki;
	size_t spki_len;
	enum tb_key_use use;
};

struct reg_service {
	char *code;
	struct strv regions;
};

struct reg_member {
	char id[8];
	uint32_t idnum;
	char *name;
	char *parent; /* NULL if none */
	enum tb_reg_role role;
	enum tb_reg_status status;
	struct strv endpoints;
	struct reg_key *keys;
	size_t nkeys;
	struct reg_service *services;
	size_t nservices;
};

struct reg_rule {
	bool allow;
	struct strv services; /* "*" alone: any */
	bool has_from;
	struct strv ids, roles, regions; /* n == 0: list absent */
};

struct reg_sig {
	uint8_t kid[TB_KEYID_LEN];
	enum tb_alg alg;
	uint8_t val[TB_SIG_LEN];
};

struct kid_ent {
	uint8_t kid[TB_KEYID_LEN];
	uint32_t m, k;
};

struct tb_reg {
	char *federation;
	uint64_t serial;
	int64_t issued, valid_until;
	struct reg_member *members;
	size_t nmembers, capmembers;
	uint8_t (*revoked)[TB_KEYID_LEN];
	size_t nrevoked;
	bool policy_allow;
	struct reg_rule *rules;
	size_t nrules;
	struct reg_sig *sigs;
	size_t nsigs;
	bool edited;
	/* the signing input as received: the RFC 8785 form of the parsed
	 * document without "sigs"; emptied by the first edit */
	struct tb_buf received;
	/* indexes, rebuilt after parse and each edit */
	uint32_t *by_id;        /* member indexes sorted by idnum */
	struct kid_ent *by_kid; /* sorted by kid */
	size_t nkids;
	uint8_t (*revoked_sorted)[TB_KEYID_LEN];
};

#endif
