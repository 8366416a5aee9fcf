/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_devfed.c - `tongban dev-federation`: a complete test federation on
 * 127.0.0.1 in one command (root CA, province CAs, member keys and
 * certificates, a threshold-signed registry, a trust anchor, one config
 * per member, and identities for negative tests).  For tests, demos and
 * integration testers; never for production (keys are unencrypted).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../certs/tb_ca.h"
#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_env.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

#define MAX_MEMBERS 64
#define MAX_PROV 16

/* The sample services of the reference region (interop/huaihai.json):
 * cities serve the city ones for their prefecture, hubs the province
 * ones for their province. */
static const struct {
	const char *code;
	bool province;
} services[] = {
    {"hukou.transfer", false},
    {"pension.transfer", false},
    {"medical.offsite-filing", true},
    {"housing-fund.transfer", false},
    {"business-license.change", false},
    {"driving-license.renew", false},
    {"control.ping", false},
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: tongban dev-federation --dir DIR --members ID,ID,... [--base-port N]\n"
	           "                              [--private ID,ID,...] [--alg p256|sm2]\n\n"
	           "Creates a test federation under DIR: root CA (DIR/root), one CA per\n"
	           "province (DIR/ca-PPPPPP), per member DIR/ID/{node.key,node.crt,chain.crt,\n"
	           "node.conf,registry.json,api.token}, DIR/registry.json signed 2-of-n by the\n"
	           "province CAs (1-of-1 with one province), DIR/trust.json, DIR/root.crt,\n"
	           "DIR/cas.pem (root and province CAs, what nodes trust for DTLS),\n"
	           "DIR/fixtures.json (demo residents, licences and case rules; every node's\n"
	           "reference responder answers from it),\n"
	           "and negative identities "
	           "DIR/testids/{expired,revoked,foreign,nonmember}/node.{key,crt}\n"
	           "(expired: the first member's id, validity in the past; revoked: listed in\n"
	           "the registry's revoked keys; foreign: another root; nonmember: valid chain,\n"
	           "not in the registry).\n"
	           "Member i listens on 127.0.0.1:(N+i) (default N 5700); its local API on\n"
	           "127.0.0.1:(N+1000+i).  A member id ending in 0000 is a province hub, the\n"
	           "parent of the other members of its province.  A --private city has no\n"
	           "endpoint in the registry: others reach it through its hub, whose config\n"
	           "lists it in private_endpoints (DIR/HUB/private.txt).\n"
	           "--alg sm2 signs every message, receipt and registry in SM2/SM3: each\n"
	           "member gets an SM2 message-signing key DIR/ID/sign.key (sign_key in its\n"
	           "node.conf, listed with use \"sign\"; its P-256 node.key stays for DTLS),\n"
	           "and each province an SM2 registry authority key DIR/ca-PPPPPP/authority.\n"
	           "{key,pub}, which trust.json lists and which sign the registry.\n");
}

static int
mkdirs(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return cli_fail(EX_TB_IO, "%s: %s", path, strerror(errno));
	return EX_TB_OK;
}

static int
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	struct tb_diag d;
	return tb_file_write(path, p, n, mode, 0, &d) == TB_OK ? EX_TB_OK : cli_fail_diag(&d);
}

static int
append_file(struct tb_buf *b, const char *path)
{
	struct tb_diag d;
	return tb_file_read(path, 1 << 20, b, &d) == TB_OK ? EX_TB_OK : cli_fail_diag(&d);
}

/* Makes DIR/sub/node.{key,crt} for member id, issued by ca. */
static int
make_identity(const char *dir, const char *id, const char *name, int port, struct tb_ca *ca,
              int64_t not_before, int64_t not_after)
{
	char path[1200], ep[64];
	struct tb_key *key = NULL;
	struct tb_csr *csr = NULL;
	struct tb_buf crt;
	struct tb_diag d;
	int rc = EX_TB_OK;

	tb_buf_init(&crt);
	snprintf(ep, sizeof(ep), "coaps://127.0.0.1:%d", port);
	snprintf(path, sizeof(path), "%s/node.key", dir);
	if ((key = tb_key_generate(TB_ALG_P256, &d)) == NULL ||
	    tb_key_save(key, path, NULL, &d) != TB_OK ||
	    (csr = tb_csr_new(key, id, name, "tongban-dev", ep, &d)) == NULL ||
	    tb_ca_issue_window(ca, csr, not_before, not_after, &crt, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/node.crt", dir);
	rc = write_file(path, crt.data, crt.len, 0644);
out:
	tb_key_free(key);
	tb_csr_free(csr);
	tb_buf_free(&crt);
	return rc;
}

/* True when id is in the comma-separated list. */
static bool
is_listed(const char *list, const char *id)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		if (n == strlen(id) && strncmp(p, id, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static int
spki_of(const char *certpath, struct tb_buf *spki, uint8_t kid[TB_KEYID_LEN])
{
	struct tb_diag d;
	struct tb_cert *c = tb_cert_load(certpath, &d);
	struct tb_pub *p = c ? tb_cert_pub(c, &d) : NULL;
	int rc = EX_TB_OK;

	if (p == NULL || tb_pub_spki(p, spki) != TB_OK)
		rc = cli_fail_diag(&d);
	else if (kid != NULL)
		tb_cert_key_id(c, kid);
	tb_pub_free(p);
	tb_cert_free(c);
	return rc;
}

/* What the steps of dev-federation share. */
struct devfed {
	const char *dir, *privlist;
	char ids[MAX_MEMBERS][8], provs[MAX_PROV][8];
	size_t nids, nprov;
	long long base;
	int64_t now;
	struct tb_ca *root, *pca[MAX_PROV], *foreign;
	struct tb_reg *reg;
	struct tb_trust *trust;
	struct tb_buf b, spki[MAX_MEMBERS];
	enum tb_alg alg; /* of message and registry signatures: p256 or sm2 */
};

/* A new SM2 key at DIR/base.key (and its public key at DIR/base.pub when
 * pub_too); its SPKI appended to spki. */
static int
make_sm2_key(const char *dir, const char *base, bool pub_too, struct tb_buf *spki)
{
	char path[1200];
	struct tb_key *key;
	struct tb_pub *pub = NULL;
	struct tb_buf pem;
	struct tb_diag d;
	int rc = EX_TB_OK;

	tb_buf_init(&pem);
	snprintf(path, sizeof(path), "%s/%s.key", dir, base);
	if ((key = tb_key_generate(TB_ALG_SM2, &d)) == NULL || tb_key_save(key, path, NULL, &d)) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	if ((pub = tb_key_pub(key)) == NULL || tb_pub_spki(pub, spki) != TB_OK ||
	    tb_pub_pem(pub, &pem) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "cannot export an SM2 public key");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.pub", dir, base);
	if (pub_too)
		rc = write_file(path, pem.data, pem.len, 0644);
out:
	tb_buf_free(&pem);
	tb_pub_free(pub);
	tb_key_free(key);
	return rc;
}

/* The options and the member list into f (f->dir stays NULL after
 * --help). */
static int
parse_args(struct devfed *f, int argc, char **argv, const struct option *opts, const char **members)
{
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': f->dir = optarg; break;
		case 'm': *members = optarg; break;
		case 'P': f->privlist = optarg; break;
		case 'a':
			f->alg = tb_alg_from_name(optarg);
			if (f->alg != TB_ALG_P256 && f->alg != TB_ALG_SM2)
				return cli_usage_error("--alg must be p256 or sm2, not '%s'",
				                       optarg);
			break;
		case 'p':
			if (cli_parse_i64(optarg, &f->base) != 0 || f->base < 1024 ||
			    f->base > 60000)
				return cli_usage_error("--base-port must be 1024..60000");
			break;
		case 'h':
			usage(stdout);
			f->dir = NULL;
			return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (f->dir == NULL || *members == NULL || optind != argc)
		return cli_usage_error("--dir and --members are required");
	for (const char *p = *members; *p;) {
		size_t n = strcspn(p, ",");
		if (!tb_member_id_valid(p, n))
			return cli_usage_error("'%.*s' is not a 6-digit member id", (int)n, p);
		if (f->nids == MAX_MEMBERS)
			return cli_usage_error("at most %d members", MAX_MEMBERS);
		snprintf(f->ids[f->nids], sizeof(f->ids[f->nids]), "%.*s", (int)n, p);
		for (size_t i = 0; i < f->nids; i++)
			if (strcmp(f->ids[i], f->ids[f->nids]) == 0)
				return cli_usage_error("member %s listed twice", f->ids[i]);
		f->nids++;
		p += n;
		if (*p == ',')
			p++;
	}
	return EX_TB_OK;
}

/* DIR/root, a CA per province (DIR/ca-PPPPPP), DIR/root.crt, DIR/cas.pem. */
static int
make_cas(struct devfed *f)
{
	const char *dir = f->dir;
	char(*ids)[8] = f->ids;
	char(*provs)[8] = f->provs;
	size_t nids = f->nids;
	struct tb_ca **pca = f->pca;
	char path[1200], path2[1200];
	struct tb_diag d;
	int rc = EX_TB_OK;

	/* root and province CAs */
	struct tb_ca_spec rs = {"Tongban dev federation root", NULL, TB_ALG_P256, 3650};
	snprintf(path, sizeof(path), "%s/root", dir);
	if (tb_ca_create(path, &rs, NULL, NULL, &d) != TB_OK ||
	    (f->root = tb_ca_open(path, NULL, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		return rc;
	}
	snprintf(path2, sizeof(path2), "%s/root.crt", dir);
	snprintf(path, sizeof(path), "%s/root/ca.crt", dir);
	tb_buf_reset(&f->b);
	if ((rc = append_file(&f->b, path)) != EX_TB_OK ||
	    (rc = write_file(path2, f->b.data, f->b.len, 0644)))
		return rc;
	for (size_t i = 0; i < nids; i++) {
		char prov[8];
		size_t k;
		snprintf(prov, sizeof(prov), "%.2s0000", ids[i]);
		for (k = 0; k < f->nprov; k++)
			if (strcmp(provs[k], prov) == 0)
				break;
		if (k < f->nprov)
			continue;
		if (f->nprov == MAX_PROV) {
			rc = cli_fail(EX_TB_USAGE, "too many provinces");
			return rc;
		}
		snprintf(provs[f->nprov], sizeof(provs[f->nprov]), "%s", prov);
		char name[64];
		snprintf(name, sizeof(name), "Province %s CA", prov);
		struct tb_ca_spec ps = {name, prov, TB_ALG_P256, 3650};
		snprintf(path, sizeof(path), "%s/ca-%s", dir, prov);
		if (tb_ca_create(path, &ps, NULL, f->root, &d) != TB_OK ||
		    (pca[f->nprov] = tb_ca_open(path, NULL, &d)) == NULL) {
			rc = cli_fail_diag(&d);
			return rc;
		}
		f->nprov++;
	}
	/* cas.pem: root and province CAs, for DTLS peers that present only
	 * their own certificate (OpenSSL clients do) */
	tb_buf_reset(&f->b);
	snprintf(path, sizeof(path), "%s/root.crt", dir);
	if ((rc = append_file(&f->b, path)))
		return rc;
	for (size_t i = 0; i < f->nprov; i++) {
		snprintf(path, sizeof(path), "%s/ca-%s/ca.crt", dir, provs[i]);
		if ((rc = append_file(&f->b, path)))
			return rc;
	}
	snprintf(path, sizeof(path), "%s/cas.pem", dir);
	if ((rc = write_file(path, f->b.data, f->b.len, 0644)))
		return rc;
	return rc;
}

/* DIR/ID/chain.crt (the province CA) and node-chain.pem (leaf and CA, for
 * DTLS). */
static int
write_chains(struct devfed *f, const char *mdir, const char *prov)
{
	const char *dir = f->dir;
	char path[1200], path2[1200];
	int rc;

	tb_buf_reset(&f->b);
	snprintf(path, sizeof(path), "%s/ca-%s/ca.crt", dir, prov);
	snprintf(path2, sizeof(path2), "%s/chain.crt", mdir);
	if ((rc = append_file(&f->b, path)) || (rc = write_file(path2, f->b.data, f->b.len, 0644)))
		return rc;
	tb_buf_reset(&f->b);
	snprintf(path, sizeof(path), "%s/node.crt", mdir);
	if ((rc = append_file(&f->b, path)))
		return rc;
	snprintf(path, sizeof(path), "%s/ca-%s/ca.crt", dir, prov);
	snprintf(path2, sizeof(path2), "%s/node-chain.pem", mdir);
	if ((rc = append_file(&f->b, path)) || (rc = write_file(path2, f->b.data, f->b.len, 0644)))
		return rc;
	return EX_TB_OK;
}

/* The sample services a member offers for its region (regions[0]): a
 * hub the province ones, a city the city ones, both control.ping.  sv
 * holds at most 8; returns how many were filled. */
static size_t
member_services(bool hub, const char **regions, struct tb_reg_service_spec *sv)
{
	size_t ns = 0;

	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]) && ns < 8; s++)
		if (services[s].province == hub || strcmp(services[s].code, "control.ping") == 0) {
			sv[ns].code = services[s].code;
			sv[ns].regions = regions;
			sv[ns].nregions = 1;
			ns++;
		}
	return ns;
}

/* Each member's identity and chain under DIR/ID, and its registry entry. */
static int
add_members(struct devfed *f)
{
	const char *dir = f->dir;
	const char *privlist = f->privlist;
	char(*ids)[8] = f->ids;
	char(*provs)[8] = f->provs;
	size_t nids = f->nids;
	long long base = f->base;
	int64_t now = f->now;
	struct tb_buf *spki = f->spki;
	struct tb_ca **pca = f->pca;
	char path[1200];
	struct tb_diag d;
	int rc = EX_TB_OK;

	/* members */
	/* valid 90 days, as `registry new` makes them: a fresh federation is
	 * not already inside the nodes' 30-day expiry warning */
	if ((f->reg = tb_reg_new("tongban-dev", now - 60, now + 90 * 86400, &d)) == NULL) {
		rc = cli_fail_diag(&d);
		return rc;
	}
	/* hubs first: a city's parent must already be in the registry,
	 * whatever the order of --members (ports follow that order) */
	for (size_t step = 0; step < 2 * nids; step++) {
		size_t i = step % nids;
		char prov[8], mdir[1100], name[64], ep[64], region[8];
		const char *eps[1] = {ep};
		bool hub = strcmp(ids[i] + 2, "0000") == 0;
		if (hub != (step < nids))
			continue;
		size_t k, ns = 0;
		struct tb_reg_service_spec sv[8];
		const char *regions[1] = {region};
		snprintf(prov, sizeof(prov), "%.2s0000", ids[i]);
		for (k = 0; k < f->nprov && strcmp(provs[k], prov) != 0; k++)
			;
		snprintf(mdir, sizeof(mdir), "%s/%s", dir, ids[i]);
		snprintf(name, sizeof(name), "Member %.6s", ids[i]);
		snprintf(ep, sizeof(ep), "coaps://127.0.0.1:%lld", base + (long long)i);
		if ((rc = mkdirs(mdir)) != EX_TB_OK ||
		    (rc = make_identity(mdir, ids[i], name, (int)(base + (long long)i), pca[k],
		                        now - 300, now + 365 * 86400)) != EX_TB_OK)
			return rc;
		if ((rc = write_chains(f, mdir, prov)) != EX_TB_OK)
			return rc;
		snprintf(path, sizeof(path), "%s/node.crt", mdir);
		if ((rc = spki_of(path, &spki[i], NULL)))
			return rc;
		snprintf(region, sizeof(region), "%.*s", hub ? 2 : 4, ids[i]);
		ns = member_services(hub, regions, sv);
		struct tb_reg_key_spec ks[2] = {{spki[i].data, spki[i].len, TB_USE_BOTH}};
		struct tb_buf sm2spki;
		tb_buf_init(&sm2spki);
		if (f->alg == TB_ALG_SM2) { /* DTLS keeps P-256; messages are signed in SM2 */
			if ((rc = make_sm2_key(mdir, "sign", true, &sm2spki)) != EX_TB_OK) {
				tb_buf_free(&sm2spki);
				return rc;
			}
			ks[0].use = TB_USE_TLS;
			ks[1] = (struct tb_reg_key_spec){sm2spki.data, sm2spki.len, TB_USE_SIGN};
		}
		bool parent_present = false;
		for (size_t j = 0; j < nids; j++)
			parent_present |= !hub && strcmp(ids[j], prov) == 0;
		bool priv = is_listed(privlist, ids[i]);
		if (priv && (hub || !parent_present)) {
			tb_buf_free(&sm2spki);
			rc = cli_usage_error("--private %s: only a city whose hub is a member",
			                     ids[i]);
			return rc;
		}
		/* a private member has no endpoint in the registry: it is reached
		 * through its hub, which alone knows its address */
		struct tb_reg_member_spec ms = {ids[i],
		                                name,
		                                parent_present ? prov : NULL,
		                                hub ? TB_ROLE_HUB : TB_ROLE_CITY,
		                                TB_STATUS_ACTIVE,
		                                eps,
		                                priv ? 0 : 1,
		                                ks,
		                                f->alg == TB_ALG_SM2 ? 2 : 1,
		                                sv,
		                                ns};
		rc = tb_reg_add_member(f->reg, &ms, &d) != TB_OK ? cli_fail_diag(&d) : EX_TB_OK;
		tb_buf_free(&sm2spki);
		if (rc != EX_TB_OK)
			return rc;
	}
	if (tb_reg_set_policy_default(f->reg, true) != TB_OK)
		rc = cli_fail(EX_TB_INTERNAL, "registry policy not set");
	return rc;
}

/* DIR/testids: the negative identities (the revoked one is revoked in
 * the registry). */
static int
make_testids(struct devfed *f)
{
	const char *dir = f->dir;
	char(*ids)[8] = f->ids;
	long long base = f->base;
	int64_t now = f->now;
	struct tb_ca **pca = f->pca;
	char path[1200];
	struct tb_diag d;
	int rc = EX_TB_OK;

	/* negative identities */
	snprintf(path, sizeof(path), "%s/testids", dir);
	if ((rc = mkdirs(path)))
		return rc;
	{
		const char *kinds[] = {"revoked", "nonmember"};
		for (int k = 0; k < 2; k++) {
			snprintf(path, sizeof(path), "%s/testids/%s", dir, kinds[k]);
			if ((rc = mkdirs(path)) ||
			    (rc = make_identity(path, k == 0 ? "999901" : "999902", kinds[k],
			                        (int)base + 990 + k, pca[0], now - 300,
			                        now + 365 * 86400)))
				return rc;
		}
		struct tb_buf rs2;
		uint8_t kid[TB_KEYID_LEN];
		tb_buf_init(&rs2);
		snprintf(path, sizeof(path), "%s/testids/revoked/node.crt", dir);
		rc = spki_of(path, &rs2, kid);
		tb_buf_free(&rs2);
		if (rc || tb_reg_revoke_key(f->reg, kid, &d) != TB_OK) {
			rc = rc ? rc : cli_fail_diag(&d);
			return rc;
		}
		struct tb_ca_spec fs = {"Foreign root", NULL, TB_ALG_P256, 3650};
		snprintf(path, sizeof(path), "%s/testids/foreign-ca", dir);
		if (tb_ca_create(path, &fs, NULL, NULL, &d) != TB_OK ||
		    (f->foreign = tb_ca_open(path, NULL, &d)) == NULL) {
			rc = cli_fail_diag(&d);
			return rc;
		}
		snprintf(path, sizeof(path), "%s/testids/foreign", dir);
		if ((rc = mkdirs(path)) ||
		    (rc = make_identity(path, ids[0], "foreign", (int)base + 993, f->foreign,
		                        now - 300, now + 365 * 86400)))
			return rc;
		/* expired: a member's own identity, valid only in the past */
		snprintf(path, sizeof(path), "%s/testids/expired", dir);
		if ((rc = mkdirs(path)) ||
		    (rc = make_identity(path, ids[0], "expired", (int)base + 994, pca[0],
		                        now - 10 * 86400, now - 86400)))
			return rc;
	}
	return rc;
}

/* DIR/trust.json: root and province CA keys as registry authorities, k
 * of them needed. */
static int
make_trust(struct devfed *f, unsigned k)
{
	const char *dir = f->dir;
	char(*provs)[8] = f->provs;
	char path[1200];
	struct tb_diag d;
	int rc = EX_TB_OK;

	if ((f->trust = tb_trust_new("tongban-dev", &d)) == NULL) {
		rc = cli_fail_diag(&d);
		return rc;
	}
	{
		uint8_t kid[TB_KEYID_LEN];
		struct tb_buf rpem, tmp;
		tb_buf_init(&rpem);
		tb_buf_init(&tmp);
		snprintf(path, sizeof(path), "%s/root.crt", dir);
		rc = append_file(&rpem, path);
		if (!rc)
			rc = spki_of(path, &tmp, kid);
		if (!rc && tb_trust_set_root(f->trust, (const char *)rpem.data, rpem.len, kid,
		                             &d) != TB_OK)
			rc = cli_fail_diag(&d);
		for (size_t i = 0; !rc && i < f->nprov; i++) {
			tb_buf_reset(&tmp);
			snprintf(path, sizeof(path), "%s/ca-%s/ca.crt", dir, provs[i]);
			if (f->alg == TB_ALG_SM2) /* a bare SM2 authority key */
				snprintf(path, sizeof(path), "%s/ca-%s", dir, provs[i]);
			if ((rc = f->alg == TB_ALG_SM2 ? make_sm2_key(path, "authority", true, &tmp)
			                               : spki_of(path, &tmp, NULL)) == EX_TB_OK &&
			    tb_trust_add_authority(f->trust, tmp.data, tmp.len, provs[i], &d) !=
			        TB_OK)
				rc = cli_fail_diag(&d);
		}
		tb_buf_free(&rpem);
		tb_buf_free(&tmp);
		if (rc)
			return rc;
	}
	if (tb_trust_set_threshold(f->trust, k, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		return rc;
	}
	tb_buf_reset(&f->b);
	snprintf(path, sizeof(path), "%s/trust.json", dir);
	if (tb_trust_serialize(f->trust, &f->b, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		return rc;
	}
	if ((rc = write_file(path, f->b.data, f->b.len, 0644)))
		return rc;
	return rc;
}

/* DIR/registry.json, signed with k province CA keys (also left in f->b
 * for the members' copies). */
static int
sign_registry(struct devfed *f, unsigned k)
{
	const char *dir = f->dir;
	char(*provs)[8] = f->provs;
	char path[1200];
	struct tb_diag d;
	int rc = EX_TB_OK;

	/* sign the registry with k province CA keys */
	for (unsigned i = 0; i < k; i++) {
		struct tb_key *ak;
		snprintf(path, sizeof(path), "%s/ca-%s/%s.key", dir, provs[i],
		         f->alg == TB_ALG_SM2 ? "authority" : "ca");
		if ((ak = tb_key_load(path, NULL, &d)) == NULL ||
		    tb_reg_sign(f->reg, ak, &d) != TB_OK) {
			tb_key_free(ak);
			rc = cli_fail_diag(&d);
			return rc;
		}
		tb_key_free(ak);
	}
	tb_buf_reset(&f->b);
	if (tb_reg_serialize(f->reg, &f->b) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		return rc;
	}
	snprintf(path, sizeof(path), "%s/registry.json", dir);
	if ((rc = write_file(path, f->b.data, f->b.len, 0644)))
		return rc;
	return rc;
}

/* DIR/fixtures.json, for every node's reference responder. */
static int
write_fixtures(struct devfed *f)
{
	const char *dir = f->dir;
	int64_t now = f->now;
	char path[1200];
	int rc = EX_TB_OK;

	/* fixtures for the reference responder: the same demo residents,
	 * enterprises and licences known everywhere; idhashes are SHA-256 of
	 * made-up labels (a real federation uses HMAC with its id-hash key) */
	{
		char h[4][65], fx[4096];
		const char *labels[4] = {"tongban-demo-person-1", "tongban-demo-person-2",
		                         "tongban-demo-enterprise-1", "tongban-demo-unknown"};
		for (int li = 0; li < 4; li++) {
			uint8_t dg[32];
			tb_sha256(labels[li], strlen(labels[li]), dg);
			tb_hex_encode(dg, 32, h[li]);
		}
		int fl = snprintf(
		    fx, sizeof(fx),
		    "{\"people\":["
		    "{\"idhash\":\"%s\",\"kind\":\"person\",\"assurance\":\"high\","
		    "\"attributes\":{\"resident_of\":\"registered\"}},"
		    "{\"idhash\":\"%s\",\"kind\":\"person\",\"assurance\":\"substantial\"},"
		    "{\"idhash\":\"%s\",\"kind\":\"enterprise\",\"assurance\":\"high\"}],"
		    "\"licences\":["
		    "{\"id\":\"BL-0001\",\"type\":\"business-license\",\"holder_idhash\":\"%s\","
		    "\"issued\":%lld,\"valid_until\":%lld,\"status\":\"valid\","
		    "\"fields\":{\"scope\":\"retail\",\"capital\":\"500000\"}},"
		    "{\"id\":\"DL-0001\",\"type\":\"driving-license\",\"holder_idhash\":\"%s\","
		    "\"issued\":%lld,\"valid_until\":%lld,\"status\":\"valid\","
		    "\"fields\":{\"class\":\"C1\"}}],"
		    "\"cases\":{\"default\":{\"decision\":\"accept\",\"outcome\":\"approved\"},"
		    "\"pension.transfer\":{\"decision\":\"reject\","
		    "\"reason\":\"the applicant's pension account is not yet closed\"}}}\n",
		    h[0], h[1], h[2], h[2], (long long)now - 86400 * 365,
		    (long long)now + 86400 * 365 * 4, h[0], (long long)now - 86400 * 30,
		    (long long)now + 86400 * 365 * 6);
		snprintf(path, sizeof(path), "%s/fixtures.json", dir);
		if ((rc = write_file(path, fx, (size_t)fl, 0644)))
			return rc;
	}
	return rc;
}

/* Per member: its registry copy, API token, private.txt (a hub) and
 * node.conf. */
static int
write_configs(struct devfed *f)
{
	const char *dir = f->dir;
	const char *privlist = f->privlist;
	char(*ids)[8] = f->ids;
	size_t nids = f->nids;
	long long base = f->base;
	char path[1200];
	int rc = EX_TB_OK;

	/* per-member registry copy, token and config */
	for (size_t i = 0; i < nids; i++) {
		char conf[2048], tok[33];
		uint8_t rnd[16];
		char up[16] = "";
		snprintf(path, sizeof(path), "%s/%s/registry.json", dir, ids[i]);
		if ((rc = write_file(path, f->b.data, f->b.len, 0644)))
			return rc;
		/* a token from bytes the CSPRNG did not give would be guessable */
		if (tb_random(rnd, sizeof(rnd)) != TB_OK)
			return cli_fail(EX_TB_INTERNAL, "no random bytes for the API token of %s",
			                ids[i]);
		tb_hex_encode(rnd, sizeof(rnd), tok);
		snprintf(path, sizeof(path), "%s/%s/api.token", dir, ids[i]);
		if ((rc = write_file(path, tok, 32, 0600)))
			return rc;
		if (strcmp(ids[i] + 2, "0000") != 0)
			for (size_t j = 0; j < nids; j++)
				if (strncmp(ids[j], ids[i], 2) == 0 &&
				    strcmp(ids[j] + 2, "0000") == 0)
					snprintf(up, sizeof(up), "%.6s", ids[j]);
		/* a hub lists the private members it serves */
		char privs[4096] = "";
		size_t pl = 0;
		if (strcmp(ids[i] + 2, "0000") == 0)
			for (size_t j = 0; j < nids; j++)
				if (strncmp(ids[j], ids[i], 2) == 0 && is_listed(privlist, ids[j]))
					pl += (size_t)snprintf(privs + pl, sizeof(privs) - pl,
					                       "%.6s coaps://127.0.0.1:%lld\n",
					                       ids[j], base + (long long)j);
		if (pl > 0) {
			snprintf(path, sizeof(path), "%s/%s/private.txt", dir, ids[i]);
			if ((rc = write_file(path, privs, pl, 0644)))
				return rc;
		}
		int n = snprintf(
		    conf, sizeof(conf),
		    "# tongban-node configuration for member %s (dev federation)\n"
		    "member_id = %s\nlisten = 127.0.0.1:%lld\n"
		    "cert = node-chain.pem\nkey = node.key\nroot = ../cas.pem\n"
		    "trust = ../trust.json\nregistry = registry.json\njournal = journal.db\n"
		    "api = 127.0.0.1:%lld\napi_token_file = api.token\n"
		    "responder = ../fixtures.json\n%s%s%s%s%s",
		    ids[i], ids[i], base + (long long)i, base + 1000 + (long long)i,
		    up[0] ? "registry_upstream = " : "", up, up[0] ? "\n" : "",
		    pl > 0 ? "private_endpoints = private.txt\n" : "",
		    f->alg == TB_ALG_SM2 ? "sign_key = sign.key\n" : "");
		snprintf(path, sizeof(path), "%s/%s/node.conf", dir, ids[i]);
		if ((rc = write_file(path, conf, (size_t)n, 0644)))
			return rc;
	}
	return rc;
}

int
cmd_devfed(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"members", required_argument, NULL, 'm'},
	                                     {"base-port", required_argument, NULL, 'p'},
	                                     {"private", required_argument, NULL, 'P'},
	                                     {"alg", required_argument, NULL, 'a'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	struct devfed *f = calloc(1, sizeof(*f));
	const char *members = NULL;
	int rc = EX_TB_OK;

	if (f == NULL)
		return cli_fail(EX_TB_INTERNAL, "out of memory");
	f->privlist = "";
	f->alg = TB_ALG_P256;
	f->base = 5700;
	f->now = (int64_t)time(NULL);
	tb_buf_init(&f->b);
	for (size_t i = 0; i < MAX_MEMBERS; i++)
		tb_buf_init(&f->spki[i]);
	rc = parse_args(f, argc, argv, opts, &members);
	if (rc != EX_TB_OK || f->dir == NULL)
		goto out;
	/* hubs first in the registry; the registry signed once all is in it */
	unsigned k;
	if ((rc = mkdirs(f->dir)) != EX_TB_OK || (rc = make_cas(f)) != EX_TB_OK ||
	    (rc = add_members(f)) != EX_TB_OK)
		goto out;
	if (tb_reg_set_policy_default(f->reg, true) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "registry policy not set");
		goto out;
	}
	if ((rc = make_testids(f)) != EX_TB_OK)
		goto out;
	/* trust anchor: root + province CA keys as registry authorities */
	k = f->nprov >= 2 ? 2 : 1;
	if ((rc = make_trust(f, k)) != EX_TB_OK || (rc = sign_registry(f, k)) != EX_TB_OK ||
	    (rc = write_fixtures(f)) != EX_TB_OK || (rc = write_configs(f)) != EX_TB_OK)
		goto out;
	printf("dev federation: %zu members, %zu provinces, registry signed %u-of-%zu%s, in %s\n",
	       f->nids, f->nprov, k, f->nprov, f->alg == TB_ALG_SM2 ? " (sm2)" : "", f->dir);
out:
	tb_ca_free(f->root);
	tb_ca_free(f->foreign);
	for (size_t i = 0; i < f->nprov; i++)
		tb_ca_free(f->pca[i]);
	tb_reg_free(f->reg);
	tb_trust_free(f->trust);
	tb_buf_free(&f->b);
	for (size_t i = 0; i < MAX_MEMBERS; i++)
		tb_buf_free(&f->spki[i]);
	free(f);
	return rc;
}
