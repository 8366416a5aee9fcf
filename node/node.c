/* SPDX-License-Identifier: Apache-2.0 */
/* node.c - the node's state: keys, trust anchor, registry, journal. */
#include "node.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_cert.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_route.h"
#include "../federation/tb_trust.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "audit.h"
#include "journal.h"
#include "log.h"

int64_t
tb_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
tb_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
tb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A registry's message-signing keys, imported once, so that opening an
 * envelope costs one table probe instead of a key import: pubs[base[m] + k]
 * is key k of member m (NULL when it is not a signing key). */
struct pubtab {
	struct tb_pub **pubs;
	size_t *base;
	size_t n;
};

const char *
tb_node_state_name(enum tb_node_state s)
{
	switch (s) {
	case TB_NODE_OK:
		return "ok";
	case TB_NODE_RECOVERY:
		return "recovery";
	case TB_NODE_SUSPENDED:
		return "suspended";
	case TB_NODE_REVOKED:
		return "revoked";
	}
	return "unknown";
}

bool
tb_node_exchanging(const struct tb_node *n)
{
	return n->state == TB_NODE_OK;
}

int
tb_node_state_err(const struct tb_node *n)
{
	switch (n->state) {
	case TB_NODE_OK:
		return 0;
	case TB_NODE_RECOVERY:
		return TB_E_RECOVERY;
	case TB_NODE_SUSPENDED:
		return TB_E_MEMBER_SUSPENDED;
	case TB_NODE_REVOKED:
		return TB_E_MEMBER_REVOKED;
	}
	return TB_E_ARG;
}

static void
pubtab_free(struct pubtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		tb_pub_free(t->pubs[i]);
	free(t->pubs);
	free(t->base);
	memset(t, 0, sizeof(*t));
}

static void
free_pubs(struct tb_node *n)
{
	struct pubtab t = {n->pubs, n->pub_base, n->npubs};

	pubtab_free(&t);
	n->pubs = NULL;
	n->pub_base = NULL;
	n->npubs = 0;
}

static int
pubtab_build(struct pubtab *t, const struct tb_reg *reg)
{
	size_t total = 0, at = 0;

	memset(t, 0, sizeof(*t));
	if ((t->base = calloc(tb_reg_member_count(reg) + 1, sizeof(*t->base))) == NULL)
		return TB_E_NOMEM;
	for (size_t m = 0; m < tb_reg_member_count(reg); m++) {
		t->base[m] = total;
		total += tb_reg_key_count(reg, m);
	}
	if (total == 0)
		return TB_OK;
	if ((t->pubs = calloc(total, sizeof(*t->pubs))) == NULL) {
		pubtab_free(t);
		return TB_E_NOMEM;
	}
	t->n = total;
	for (size_t m = 0; m < tb_reg_member_count(reg); m++)
		for (size_t k = 0; k < tb_reg_key_count(reg, m); k++, at++) {
			uint8_t kid[TB_KEYID_LEN];
			enum tb_key_use use;
			const uint8_t *spki;
			size_t len;
			tb_reg_key(reg, m, k, kid, &use, &spki, &len);
			if (use & TB_USE_SIGN)
				t->pubs[at] = tb_pub_import_spki(spki, len, NULL);
		}
	return TB_OK;
}

const struct tb_pub *
tb_node_lookup_sign(void *ctx, const char *from, const uint8_t *kid)
{
	struct tb_node *n = ctx;
	size_t m, k;
	enum tb_key_use use;
	uint8_t id[TB_KEYID_LEN];
	const uint8_t *spki;
	size_t len;

	if (n->reg == NULL || tb_reg_find_key(n->reg, kid, &m, &k) != TB_OK)
		return NULL;
	if (strcmp(tb_reg_member_id(n->reg, m), from) != 0 ||
	    tb_reg_member_status(n->reg, m) != TB_STATUS_ACTIVE || tb_reg_key_revoked(n->reg, kid))
		return NULL;
	tb_reg_key(n->reg, m, k, id, &use, &spki, &len);
	if (!(use & TB_USE_SIGN))
		return NULL;
	size_t i = n->pub_base[m] + k;
	return i < n->npubs ? n->pubs[i] : NULL;
}

const char *
tb_node_intern(struct tb_node *n, const char *id)
{
	char **v;

	for (size_t i = 0; i < n->ninterned; i++)
		if (strcmp(n->interned[i], id) == 0)
			return n->interned[i];
	if ((v = realloc(n->interned, (n->ninterned + 1) * sizeof(*v))) == NULL)
		return NULL;
	n->interned = v;
	if ((v[n->ninterned] = strdup(id)) == NULL)
		return NULL;
	return v[n->ninterned++];
}

const char *
tb_node_peer_member(struct tb_node *n, const uint8_t *der, size_t len, char *why, size_t whylen)
{
	struct tb_cert *c;
	uint8_t kid[TB_KEYID_LEN];
	size_t m, k;
	enum tb_key_use use;
	const uint8_t *spki;
	size_t slen;
	char hex[65];

	snprintf(why, whylen, "certificate not readable");
	if (n->reg == NULL || (c = tb_cert_import(der, len, NULL)) == NULL)
		return NULL;
	tb_cert_key_id(c, kid);
	tb_cert_free(c);
	tb_hex_encode(kid, sizeof(kid), hex);
	if (tb_reg_key_revoked(n->reg, kid)) {
		snprintf(why, whylen, "certificate key %.16s... is revoked", hex);
		return NULL;
	}
	if (tb_reg_find_key(n->reg, kid, &m, &k) != TB_OK) {
		snprintf(why, whylen, "certificate key %.16s... is not in the registry", hex);
		return NULL;
	}
	if (tb_reg_member_status(n->reg, m) != TB_STATUS_ACTIVE) {
		snprintf(why, whylen, "member %s is %s", tb_reg_member_id(n->reg, m),
		         tb_reg_status_name(tb_reg_member_status(n->reg, m)));
		return NULL;
	}
	tb_reg_key(n->reg, m, k, kid, &use, &spki, &slen);
	if (!(use & TB_USE_TLS)) {
		snprintf(why, whylen, "key of %s is not a TLS key", tb_reg_member_id(n->reg, m));
		return NULL;
	}
	return tb_node_intern(n, tb_reg_member_id(n->reg, m));
}

void
tb_fmt_utc(int64_t t, char out[24])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 24, "%lld", (long long)t);
}

/* Where now falls in a registry's validity window. */
enum reg_time { REG_CURRENT, REG_AHEAD, REG_EXPIRED };

/* Verifies reg's signatures, key ids and serial (greater than prev when
 * prev is not 0) under the trust anchor, and places now in its window:
 * one issued up to clock_skew after now is current, since the issuer's
 * clock may run that far ahead of ours (PROTOCOL.md 7.4). */
static int
reg_check(const struct tb_node *n, const struct tb_reg *reg, uint64_t prev, int64_t now,
          enum reg_time *when, struct tb_diag *d)
{
	int64_t from = tb_reg_issued(reg), until = tb_reg_valid_until(reg);
	/* tb_reg_verify judges everything but the window at a time inside
	 * it (an empty window is still refused there) */
	int64_t at = now < from ? from : now >= until ? until - 1 : now;
	int rc = tb_reg_verify(reg, n->trust, at, prev, NULL, d);

	if (rc != TB_OK)
		return rc;
	if (now >= until)
		*when = REG_EXPIRED;
	else if (from - n->cfg.clock_skew > now)
		*when = REG_AHEAD;
	else
		*when = REG_CURRENT;
	return TB_OK;
}

void
tb_node_save_last_good(struct tb_node *n)
{
	char path[TB_CONF_PATH_MAX + 16];
	struct tb_buf old;
	struct tb_diag d;

	tb_config_last_registry(&n->cfg, path, sizeof(path));
	tb_buf_init(&old);
	if (tb_file_read(path, TB_REG_MAX_SIZE, &old, &d) != TB_OK || old.len != n->reg_bytes.len ||
	    memcmp(old.data, n->reg_bytes.data, old.len) != 0) {
		if (tb_file_write(path, n->reg_bytes.data, n->reg_bytes.len, 0644, 0, &d) != TB_OK)
			log_warnx("registry: the last good copy %s was not written: %s", path,
			          d.detail);
	}
	tb_buf_free(&old);
}

/* Puts reg (its document doc, borrowed) in force; takes reg, also on
 * failure. */
static int
install(struct tb_node *n, struct tb_reg *reg, const uint8_t *doc, size_t len, struct tb_diag *d)
{
	struct tb_route *rt;
	struct tb_buf copy;
	struct pubtab keys, old;
	char until[24];
	int rc;

	if ((rt = tb_route_new(reg, d)) == NULL) {
		tb_reg_free(reg);
		return d->code;
	}
	/* the bytes served at /fed/registry are copied before anything is
	 * replaced, so a memory error leaves the old registry whole */
	tb_buf_init(&copy);
	if (tb_buf_add(&copy, doc, len) != TB_OK) {
		tb_route_free(rt);
		tb_reg_free(reg);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	/* the key table of the new registry, built aside: a failure leaves
	 * the old registry and its keys in force together */
	if ((rc = pubtab_build(&keys, reg)) != TB_OK) {
		tb_route_free(rt);
		tb_buf_free(&copy);
		tb_reg_free(reg);
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "registry keys");
	}
	/* the ingest thread resolves routes against these (ingest.c), the
	 * answers thread looks keys up in them to settle answers (answers.c) */
	pthread_rwlock_wrlock(&n->reg_lock);
	tb_route_free(n->route);
	n->route = rt;
	tb_reg_free(n->reg);
	n->reg = reg;
	old = (struct pubtab){n->pubs, n->pub_base, n->npubs};
	n->pubs = keys.pubs;
	n->pub_base = keys.base;
	n->npubs = keys.n;
	pthread_rwlock_unlock(&n->reg_lock);
	pubtab_free(&old);
	tb_buf_free(&n->reg_bytes);
	n->reg_bytes = copy;
	if (n->pending.len > 0 && n->pending_serial <= tb_reg_serial(reg))
		tb_buf_reset(&n->pending); /* overtaken */
	tb_fmt_utc(tb_reg_valid_until(reg), until);
	log_info("registry serial %llu applied: %zu members, valid until %s",
	         (unsigned long long)tb_reg_serial(reg), tb_reg_member_count(reg), until);
	tb_node_update_state(n);
	/* the stages that keep something derived from the registry (transport:
	 * sessions; outbound: due messages; inbound: observers) */
	for (size_t i = 0; i < n->nreg_hooks; i++)
		n->reg_hooks[i].fn(n->reg_hooks[i].ctx, reg);
	return TB_OK;
}

/* Keeps reg (not valid yet, verified, newer) to apply when it is. */
static int
keep_pending(struct tb_node *n, const struct tb_reg *reg, const uint8_t *doc, size_t len,
             bool persist, struct tb_diag *d)
{
	int64_t at = tb_reg_issued(reg) - n->cfg.clock_skew, ahead = tb_reg_issued(reg) - tb_now();
	char when[24];

	tb_fmt_utc(at, when);
	if (n->pending.len > 0 && n->pending_serial >= tb_reg_serial(reg))
		return tb_diag_set(d, TB_E_REG_NOT_YET_VALID, TB_DIAG_NOPOS,
		                   "serial %llu waits already (serial %llu kept)",
		                   (unsigned long long)tb_reg_serial(reg),
		                   (unsigned long long)n->pending_serial);
	if (persist && tb_file_write(n->cfg.registry, doc, len, 0644, 0, d) != TB_OK)
		return d->code;
	tb_buf_reset(&n->pending);
	if (tb_buf_add(&n->pending, doc, len) != TB_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	n->pending_serial = tb_reg_serial(reg);
	n->pending_issued = tb_reg_issued(reg);
	log_warnx("registry serial %llu is not valid yet: issued %lld s ahead of this node's clock "
	          "(clock_skew %lld); kept, applied at %s by this clock",
	          (unsigned long long)n->pending_serial, (long long)ahead,
	          (long long)n->cfg.clock_skew, when);
	return tb_diag_set(d, TB_E_REG_NOT_YET_VALID, TB_DIAG_NOPOS,
	                   "issued %lld s ahead of this node's clock (clock_skew %lld): kept, "
	                   "applied at %s",
	                   (long long)ahead, (long long)n->cfg.clock_skew, when);
}

int
tb_node_apply_registry(struct tb_node *n, const uint8_t *doc, size_t len, bool persist,
                       struct tb_diag *d)
{
	struct tb_reg *reg;
	enum reg_time when;
	char until[24];
	int rc;

	if ((reg = tb_reg_parse(doc, len, d)) == NULL)
		return d->code;
	rc = reg_check(n, reg, n->reg ? tb_reg_serial(n->reg) : 0, tb_now(), &when, d);
	if (rc == TB_OK && when == REG_EXPIRED) {
		tb_fmt_utc(tb_reg_valid_until(reg), until);
		rc = tb_diag_set(d, TB_E_REG_EXPIRED, TB_DIAG_NOPOS, "serial %llu expired at %s",
		                 (unsigned long long)tb_reg_serial(reg), until);
	} else if (rc == TB_OK && when == REG_AHEAD) {
		rc = keep_pending(n, reg, doc, len, persist, d);
	} else if (rc == TB_OK && persist) {
		rc = tb_file_write(n->cfg.registry, doc, len, 0644, 0, d);
	}
	if (rc != TB_OK) {
		tb_reg_free(reg);
		return rc;
	}
	if ((rc = install(n, reg, doc, len, d)) == TB_OK && n->life != NULL)
		tb_node_save_last_good(n); /* not at start-up: -n writes nothing */
	return rc;
}

enum tb_reload
tb_node_reload_registry(struct tb_node *n, const char *who, struct tb_diag *d)
{
	struct tb_buf b;
	enum tb_reload r = TB_RELOAD_REFUSED;
	char line[300], path[TB_CONF_PATH_MAX + 16];

	tb_diag_clear(d);
	tb_buf_init(&b);
	if (tb_file_read(n->cfg.registry, TB_REG_MAX_SIZE, &b, d) == TB_OK &&
	    b.len == n->reg_bytes.len && memcmp(b.data, n->reg_bytes.data, b.len) == 0) {
		r = TB_RELOAD_UNCHANGED;
		log_info("%s: registry unchanged (serial %llu)", who,
		         (unsigned long long)tb_reg_serial(n->reg));
	} else if (d->code == TB_OK && n->pending.len > 0 && b.len == n->pending.len &&
	           memcmp(b.data, n->pending.data, b.len) == 0) {
		r = TB_RELOAD_PENDING;
		tb_diag_set(d, TB_E_REG_NOT_YET_VALID, TB_DIAG_NOPOS,
		            "serial %llu is kept until it is valid",
		            (unsigned long long)n->pending_serial);
	} else if (d->code == TB_OK &&
	           tb_node_apply_registry(n, b.data, b.len, false, d) == TB_OK) {
		r = TB_RELOAD_APPLIED;
	} else if (d->code == TB_E_REG_NOT_YET_VALID && n->pending.len > 0 &&
	           n->pending.len == b.len && memcmp(b.data, n->pending.data, b.len) == 0) {
		r = TB_RELOAD_PENDING;
	} else {
		tb_config_last_registry(&n->cfg, path, sizeof(path));
		log_warnx("%s: registry not reloaded, keeping serial %llu (its copy: %s): %s", who,
		          (unsigned long long)tb_reg_serial(n->reg), path,
		          tb_diag_format(d, line, sizeof(line)));
	}
	tb_buf_free(&b);
	return r;
}

void
tb_node_apply_pending(struct tb_node *n)
{
	struct tb_buf b;
	struct tb_diag d;
	char line[300];
	uint64_t serial = n->pending_serial;

	if (n->pending.len == 0 || tb_now() < n->pending_issued - n->cfg.clock_skew)
		return;
	b = n->pending; /* taken: applying it must not find it pending */
	tb_buf_init(&n->pending);
	if (tb_node_apply_registry(n, b.data, b.len, false, &d) != TB_OK)
		log_warnx("registry serial %llu, kept until valid, is refused now: %s",
		          (unsigned long long)serial, tb_diag_format(&d, line, sizeof(line)));
	tb_buf_free(&b);
}

/* The state the registry in force gives this node now. */
static enum tb_node_state
state_of(const struct tb_node *n, int64_t now)
{
	size_t m = tb_reg_find_member(n->reg, n->cfg.member_id);

	if (m == TB_REG_NONE || tb_reg_member_status(n->reg, m) == TB_STATUS_REVOKED)
		return TB_NODE_REVOKED;
	if (tb_reg_member_status(n->reg, m) == TB_STATUS_SUSPENDED)
		return TB_NODE_SUSPENDED;
	if (now >= tb_reg_valid_until(n->reg) || tb_reg_issued(n->reg) - n->cfg.clock_skew > now)
		return TB_NODE_RECOVERY;
	return TB_NODE_OK;
}

size_t
tb_node_registry_sources(const struct tb_node *n, char (*ids)[16], size_t max)
{
	size_t k = 0;

	if (n->cfg.registry_upstream[0] != '\0' && k < max)
		snprintf(ids[k++], 16, "%s", n->cfg.registry_upstream);
	for (size_t m = 0; n->reg != NULL && m < tb_reg_member_count(n->reg) && k < max; m++) {
		const char *id = tb_reg_member_id(n->reg, m);
		if (tb_reg_member_role(n->reg, m) != TB_ROLE_HUB ||
		    tb_reg_member_status(n->reg, m) != TB_STATUS_ACTIVE ||
		    tb_reg_endpoint_count(n->reg, m) == 0 || strcmp(id, n->cfg.member_id) == 0 ||
		    strcmp(id, n->cfg.registry_upstream) == 0)
			continue;
		snprintf(ids[k++], 16, "%s", id);
	}
	return k;
}

/* The one line that says why the node stopped exchanging, or that it
 * exchanges again. */
static void
log_state(const struct tb_node *n, enum tb_node_state old, enum tb_node_state s)
{
	unsigned long long serial = tb_reg_serial(n->reg);
	char t[24], src[8][16], list[160] = "";
	size_t k, len = 0;
	int64_t until = tb_reg_valid_until(n->reg);

	switch (s) {
	case TB_NODE_RECOVERY:
		k = tb_node_registry_sources(n, src, 8);
		for (size_t i = 0; i < k && len < sizeof(list); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
			                        i ? ", " : "", src[i]);
		tb_fmt_utc(tb_now() >= until ? until : tb_reg_issued(n->reg), t);
		log_errorx(
		    "entering recovery: registry serial %llu %s %s; no messages are exchanged, "
		    "submissions are queued; fetching a newer registry from %s",
		    serial, tb_now() >= until ? "expired at" : "is not valid before", t,
		    k ? list
		      : "nowhere (no upstream, no hub): install one with `tongban "
		        "registry install`");
		break;
	case TB_NODE_SUSPENDED:
		log_errorx("member %s is suspended in registry serial %llu: no messages are "
		           "exchanged, queued messages are kept",
		           n->cfg.member_id, serial);
		break;
	case TB_NODE_REVOKED:
		log_errorx(
		    "member %s is %s registry serial %llu: no messages are exchanged, queued "
		    "messages fail (member.revoked)",
		    n->cfg.member_id,
		    tb_reg_find_member(n->reg, n->cfg.member_id) == TB_REG_NONE ? "not listed in"
		                                                                : "revoked in",
		    serial);
		break;
	case TB_NODE_OK:
		tb_fmt_utc(until, t);
		log_info(
		    "leaving %s: registry serial %llu, valid until %s, is in force; exchanging "
		    "messages again",
		    tb_node_state_name(old), serial, t);
		break;
	}
}

void
tb_node_update_state(struct tb_node *n)
{
	enum tb_node_state old = n->state, s = state_of(n, tb_now());

	if (s == old)
		return;
	pthread_rwlock_wrlock(&n->reg_lock);
	n->state = s;
	pthread_rwlock_unlock(&n->reg_lock);
	log_state(n, old, s);
	if (s == TB_NODE_RECOVERY || old == TB_NODE_RECOVERY)
		tb_audit_recovery(n, s == TB_NODE_RECOVERY, s == TB_NODE_RECOVERY
		                                                ? "registry expired or not yet valid"
		                                                : "a valid registry is in force");
	if (s != TB_NODE_RECOVERY && old != TB_NODE_RECOVERY)
		tb_audit_event(n, "state-changed", "from=%s to=%s serial=%llu", tb_node_state_name(old),
		               tb_node_state_name(s), (unsigned long long)tb_reg_serial(n->reg));
	for (size_t i = 0; i < n->nstate_hooks; i++)
		n->state_hooks[i].fn(n->state_hooks[i].ctx, old, s);
}

void
tb_node_on_state(struct tb_node *n,
                 void (*fn)(void *ctx, enum tb_node_state old, enum tb_node_state now), void *ctx)
{
	struct tb_state_hook *v = realloc(n->state_hooks, (n->nstate_hooks + 1) * sizeof(*v));

	if (v == NULL)
		abort(); /* setup only */
	n->state_hooks = v;
	v[n->nstate_hooks].fn = fn;
	v[n->nstate_hooks++].ctx = ctx;
}

void
tb_node_on_registry(struct tb_node *n, void (*fn)(void *ctx, const struct tb_reg *reg), void *ctx)
{
	struct tb_reg_hook *v = realloc(n->reg_hooks, (n->nreg_hooks + 1) * sizeof(*v));

	if (v == NULL)
		abort(); /* setup only */
	n->reg_hooks = v;
	v[n->nreg_hooks].fn = fn;
	v[n->nreg_hooks++].ctx = ctx;
}

bool
tb_node_offers(const struct tb_node *n, const char *member, const char *service)
{
	size_t m = n->reg ? tb_reg_find_member(n->reg, member) : TB_REG_NONE;

	for (size_t i = 0; m != TB_REG_NONE && i < tb_reg_service_count(n->reg, m); i++)
		if (strcmp(tb_reg_service_code(n->reg, m, i), service) == 0)
			return true;
	return false;
}

int
tb_node_route(struct tb_node *n, const char *service, const char *region, char *member,
              struct tb_diag *d)
{
	struct tb_route_result r;
	int rc;

	if (n->route == NULL)
		return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS, "no registry");
	if ((rc = tb_route_resolve(n->route, service, region, &r)) != TB_OK)
		return tb_diag_set(d, rc == TB_E_NO_ROUTE ? TB_E_NO_ROUTE : TB_E_FIELD_VALUE,
		                   TB_DIAG_NOPOS, "no member serves %s for region %s", service,
		                   region);
	snprintf(member, 16, "%s", r.member_id);
	return TB_OK;
}

static int
parse_endpoint(const char *uri, coap_address_t *addr, struct tb_diag *d)
{
	char host[256], port[8];
	const char *h, *p, *e;
	struct addrinfo hints, *res = NULL;

	if (strncasecmp(uri, "coaps://", 8) != 0) /* schemes are case-insensitive */
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "endpoint %s is not coaps://", uri);
	h = uri + 8;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL || e[1] != ':')
			return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "bad endpoint %s", uri);
		snprintf(host, sizeof(host), "%.*s", (int)(e - h - 1), h + 1);
		p = e + 2;
	} else {
		e = strrchr(h, ':');
		if (e == NULL)
			return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "endpoint %s has no port",
			                   uri);
		snprintf(host, sizeof(host), "%.*s", (int)(e - h), h);
		p = e + 1;
	}
	snprintf(port, sizeof(port), "%.*s", (int)strcspn(p, "/"), p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "cannot resolve %s", uri);
	coap_address_init(addr);
	addr->size = res->ai_addrlen;
	memcpy(&addr->addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return TB_OK;
}

int
tb_node_next_hop(struct tb_node *n, const char *to, char *hop, size_t hoplen, coap_address_t *addr,
                 struct tb_diag *d)
{
	int nep;

	return tb_node_next_hop_ep(n, to, 0, hop, hoplen, addr, &nep, d);
}

int
tb_node_next_hop_ep(struct tb_node *n, const char *to, int ep, char *hop, size_t hoplen,
                    coap_address_t *addr, int *nep, struct tb_diag *d)
{
	size_t m, first = 0;
	int count = 0;

	*nep = 1;

	if (n->reg == NULL || (m = tb_reg_find_member(n->reg, to)) == TB_REG_NONE)
		return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS, "no route: %s is not a member",
		                   to);
	if (tb_reg_member_status(n->reg, m) != TB_STATUS_ACTIVE)
		return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS, "no route: %s is %s", to,
		                   tb_reg_status_name(tb_reg_member_status(n->reg, m)));
	if (tb_reg_endpoint_count(n->reg, m) == 0) {
		/* reachable only through its parent hub; the hub itself dials
		 * it at the private endpoint it was configured with */
		const char *parent = tb_reg_member_parent(n->reg, m);
		if (parent != NULL && strcmp(parent, n->cfg.member_id) == 0) {
			for (size_t i = 0; i < n->nprivs; i++)
				if (strcmp(n->privs[i].id, to) == 0) {
					snprintf(hop, hoplen, "%s", to);
					return parse_endpoint(n->privs[i].uri, addr, d);
				}
			return tb_diag_set(
			    d, TB_E_NO_ROUTE, TB_DIAG_NOPOS,
			    "no route: %s has no endpoint and is not in private_endpoints", to);
		}
		if (parent == NULL || (m = tb_reg_find_member(n->reg, parent)) == TB_REG_NONE ||
		    tb_reg_endpoint_count(n->reg, m) == 0 ||
		    tb_reg_member_status(n->reg, m) != TB_STATUS_ACTIVE)
			return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS,
			                   "no route: %s has no endpoint and no usable hub", to);
	}
	snprintf(hop, hoplen, "%s", tb_reg_member_id(n->reg, m));
	/* the coaps endpoints in order (PROTOCOL.md 7.1); others are skipped */
	for (size_t i = 0; i < tb_reg_endpoint_count(n->reg, m); i++)
		if (strncasecmp(tb_reg_endpoint(n->reg, m, i), "coaps://", 8) == 0 && count++ == 0)
			first = i;
	if (count == 0)
		return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS,
		                   "no route: %s has no coaps endpoint", hop);
	*nep = count;
	ep = ep < 0 ? 0 : ep % count;
	for (size_t i = first; i < tb_reg_endpoint_count(n->reg, m); i++)
		if (strncasecmp(tb_reg_endpoint(n->reg, m, i), "coaps://", 8) == 0 && ep-- == 0)
			return parse_endpoint(tb_reg_endpoint(n->reg, m, i), addr, d);
	return tb_diag_set(d, TB_E_NO_ROUTE, TB_DIAG_NOPOS, "no route: %s has no coaps endpoint",
	                   hop);
}

/* private_endpoints: "MEMBER_ID URI" per line, '#' comments. */
static int
load_privates(struct tb_node *n, struct tb_diag *d)
{
	struct tb_buf b;
	int rc, lineno = 0;

	if (n->cfg.private_endpoints[0] == '\0')
		return TB_OK;
	tb_buf_init(&b);
	if ((rc = tb_file_read(n->cfg.private_endpoints, 1 << 20, &b, d)) != TB_OK)
		goto out;
	for (char *line = (char *)b.data, *nl; line != NULL && *line != '\0'; line = nl) {
		char id[16], uri[160];
		struct tb_private_ep *v;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		lineno++;
		if (strchr(line, '#') != NULL)
			*strchr(line, '#') = '\0';
		if (sscanf(line, "%15s %159s", id, uri) != 2)
			continue;
		if (strlen(id) != 6 || strspn(id, "0123456789") != 6 ||
		    strncmp(uri, "coaps://", 8) != 0 || strlen(uri) >= sizeof(v->uri)) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
			                 "%s:%d: expected MEMBER_ID coaps://HOST:PORT",
			                 n->cfg.private_endpoints, lineno);
			goto out;
		}
		if ((v = realloc(n->privs, (n->nprivs + 1) * sizeof(*v))) == NULL) {
			rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			goto out;
		}
		n->privs = v;
		snprintf(v[n->nprivs].id, sizeof(v->id), "%s", id);
		snprintf(v[n->nprivs].uri, sizeof(v->uri), "%s", uri);
		n->nprivs++;
	}
out:
	tb_buf_free(&b);
	return rc;
}

static int
load_token(struct tb_node *n, struct tb_diag *d)
{
	struct tb_buf b;
	int rc;

	tb_buf_init(&b);
	if ((rc = tb_file_read(n->cfg.api_token_file, 1024, &b, d)) == TB_OK) {
		size_t len = strcspn((const char *)b.data, "\r\n");
		if (len < 16 || len >= sizeof(n->api_token))
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
			                 "%s: token must be 16..127 characters",
			                 n->cfg.api_token_file);
		else
			snprintf(n->api_token, sizeof(n->api_token), "%.*s", (int)len, b.data);
	}
	tb_buf_wipe(&b);
	return rc;
}

/* A registry file read at start-up. */
struct cand {
	const char *path;
	struct tb_buf b;
	struct tb_reg *reg; /* NULL when it is missing or does not verify */
	enum reg_time when;
	struct tb_diag d;
};

static void
cand_load(struct tb_node *n, struct cand *c, const char *path, bool optional)
{
	c->path = path;
	c->reg = NULL;
	tb_buf_init(&c->b);
	tb_diag_clear(&c->d);
	if (optional && access(path, F_OK) != 0)
		return;
	if (tb_file_read(path, TB_REG_MAX_SIZE, &c->b, &c->d) != TB_OK ||
	    (c->reg = tb_reg_parse(c->b.data, c->b.len, &c->d)) == NULL)
		return;
	if (reg_check(n, c->reg, 0, tb_now(), &c->when, &c->d) != TB_OK) {
		tb_reg_free(c->reg);
		c->reg = NULL;
	}
}

/* The better of two candidates: one usable before one issued ahead,
 * then the higher serial (an expired one included: it puts the node in
 * recovery rather than roll back). */
static bool
cand_better(const struct cand *a, const struct cand *b)
{
	if (a->reg == NULL || b->reg == NULL)
		return a->reg != NULL;
	if ((a->when == REG_AHEAD) != (b->when == REG_AHEAD))
		return b->when == REG_AHEAD;
	return tb_reg_serial(a->reg) > tb_reg_serial(b->reg);
}

/* Start-up: the registry file, or the last good copy when the file is
 * refused or older; one not valid yet beside it is kept pending.  Only
 * when neither verifies does the node refuse to start. */
static int
load_registry(struct tb_node *n, struct tb_diag *d)
{
	char gpath[TB_CONF_PATH_MAX + 16], why[300];
	struct cand c[2];
	int best, rc;

	tb_config_last_registry(&n->cfg, gpath, sizeof(gpath));
	cand_load(n, &c[0], n->cfg.registry, false);
	cand_load(n, &c[1], gpath, true);
	best = cand_better(&c[1], &c[0]) ? 1 : 0;
	if (c[best].reg == NULL) {
		*d = c[0].d;
		tb_diag_prefix(d, n->cfg.registry);
		rc = d->code;
		goto out;
	}
	if (best == 1 && c[0].reg == NULL)
		log_warnx("registry file %s refused (%s): using the last good copy %s, serial %llu",
		          c[0].path, tb_diag_format(&c[0].d, why, sizeof(why)), gpath,
		          (unsigned long long)tb_reg_serial(c[1].reg));
	else if (best == 1)
		log_warnx("registry file %s holds serial %llu, the last good copy %s serial %llu: "
		          "using the last good copy",
		          c[0].path, (unsigned long long)tb_reg_serial(c[0].reg), gpath,
		          (unsigned long long)tb_reg_serial(c[1].reg));
	rc = install(n, c[best].reg, c[best].b.data, c[best].b.len, d);
	c[best].reg = NULL; /* taken */
	/* the other one, issued ahead and newer: applied when it is valid */
	struct cand *o = &c[1 - best];
	if (rc == TB_OK && o->reg != NULL && o->when == REG_AHEAD &&
	    tb_reg_serial(o->reg) > tb_reg_serial(n->reg)) {
		struct tb_diag pd;
		(void)keep_pending(n, o->reg, o->b.data, o->b.len, false, &pd); /* logs */
	}
out:
	for (int i = 0; i < 2; i++) {
		tb_reg_free(c[i].reg);
		tb_buf_free(&c[i].b);
	}
	return rc;
}

struct tb_node *
tb_node_new(const char *config_path, struct tb_diag *d)
{
	struct tb_node *n = calloc(1, sizeof(*n));
	struct tb_buf b;
	struct tb_cert *cert;
	enum tb_log_level lvl;

	tb_buf_init(&b);
	if (n == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	tb_buf_init(&n->reg_bytes);
	tb_buf_init(&n->pending);
	pthread_rwlock_init(&n->reg_lock, NULL);
	n->config_path = config_path;
	if (tb_config_load(config_path, &n->cfg, d) != TB_OK)
		goto fail;
	if (!tb_log_level_parse(n->cfg.log_level, &lvl)) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: log_level: unknown level",
		            config_path);
		goto fail;
	}
	tb_log_set_level(lvl);
	tb_log_set_format(tb_log_format_of(n->cfg.log_format));
	n->sign_key = tb_key_load(n->cfg.sign_key[0] ? n->cfg.sign_key : n->cfg.key, NULL, d);
	if (n->sign_key == NULL)
		goto fail;
	tb_key_id(n->sign_key, n->sign_kid);
	if ((cert = tb_cert_load(n->cfg.cert, d)) == NULL) {
		tb_diag_prefix(d, n->cfg.cert);
		goto fail;
	}
	n->cert_not_after = tb_cert_not_after(cert);
	tb_cert_free(cert);
	if (tb_file_read(n->cfg.trust, 1 << 20, &b, d) != TB_OK)
		goto fail;
	if ((n->trust = tb_trust_parse(b.data, b.len, d)) == NULL) {
		tb_diag_prefix(d, n->cfg.trust);
		goto fail;
	}
	if (load_registry(n, d) != TB_OK)
		goto fail;
	if (tb_reg_find_member(n->reg, n->cfg.member_id) == TB_REG_NONE) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "member %s is not in the registry",
		            n->cfg.member_id);
		goto fail;
	}
	if (load_token(n, d) != TB_OK || load_privates(n, d) != TB_OK)
		goto fail;
	tb_buf_free(&b);
	return n;
fail:
	tb_buf_free(&b);
	tb_node_free(n);
	return NULL;
}

void
tb_node_set_sign_key(struct tb_node *n, struct tb_key *key)
{
	tb_audit_key_rotated(n, key); /* heads are signed with it from now */
	tb_key_free(n->sign_key);
	n->sign_key = key;
	tb_key_id(key, n->sign_kid);
}

void
tb_node_free(struct tb_node *n)
{
	if (n == NULL)
		return;
	tb_key_free(n->sign_key);
	tb_trust_free(n->trust);
	tb_route_free(n->route);
	tb_reg_free(n->reg);
	free_pubs(n);
	tb_buf_free(&n->reg_bytes);
	tb_buf_free(&n->pending);
	free(n->state_hooks);
	for (size_t i = 0; i < n->ninterned; i++)
		free(n->interned[i]);
	free(n->interned);
	tb_journal_close(n->journal);
	free(n->privs);
	free(n->clients);
	free(n->reg_hooks);
	memset(n->api_token, 0, sizeof(n->api_token));
	pthread_rwlock_destroy(&n->reg_lock);
	free(n);
}
