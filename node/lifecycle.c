/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lifecycle.c - the node's lifecycle over time: expiry, the registry kept
 * until valid, warnings ahead of expiry, the journal probe, /healthz.
 */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../federation/tb_reg.h"
#include "journal.h"
#include "log.h"

#define TICK_S 1
#define PROBE_MS 10000          /* journal writability probe */
#define REPEAT_MS (3600 * 1000) /* a standing warning is repeated hourly */
#define ERROR_S (3 * 86400)     /* warnings become errors 3 days ahead */
#define MIN_FREE (1024 * 1024)  /* the journal's filesystem: bytes free */
#define ROOM_PROBE (64 * 1024)  /* a full disk's probe writes this much */

/* What was last said about one expiry (registry or certificate). */
struct warned {
	int level;     /* 0 nothing, 1 warn, 2 error, 3 expired */
	int64_t what;  /* the registry serial / the notAfter it was about */
	int64_t at_ms; /* when (monotonic) */
};

struct tb_lifecycle {
	struct event *tick;
	struct warned reg, cert;
	int64_t probe_ms; /* next journal probe */
	bool journal_ok;
	char journal_why[TB_CONF_PATH_MAX + 200];
	/* the journal's disk is full (tb_lifecycle_store_full) */
	bool full;
	int64_t full_since;     /* Unix s */
	int64_t full_since_ms;  /* monotonic */
	uint64_t full_free;     /* bytes free when it was last found full */
	uint64_t full_refused;  /* messages refused since full_since */
	char full_why[TB_CONF_PATH_MAX + 200];
};

/* "9 days", "5 h 03 min", "12 min" */
static void
fmt_left(int64_t s, char *out, size_t len)
{
	if (s >= 2 * 86400)
		snprintf(out, len, "%lld days", (long long)(s / 86400));
	else if (s >= 3600)
		snprintf(out, len, "%lld h %02lld min", (long long)(s / 3600),
		         (long long)(s % 3600 / 60));
	else
		snprintf(out, len, "%lld min", (long long)((s + 59) / 60));
}

static int
level_of(const struct tb_node *n, int64_t until, int64_t now)
{
	if (now >= until)
		return 3;
	if (until - now <= ERROR_S)
		return 2;
	return until - now <= n->cfg.registry_warn_days * 86400 ? 1 : 0;
}

/* True when a line about this expiry is due: its level or subject
 * changed, or an hour has passed since the last one. */
static bool
due(struct warned *w, int level, int64_t what)
{
	int64_t now = tb_now_ms();

	if (level == w->level && what == w->what && (level == 0 || now - w->at_ms < REPEAT_MS))
		return false;
	w->level = level;
	w->what = what;
	w->at_ms = now;
	return level > 0;
}

static void
warn_expiry(struct tb_node *n, int64_t now)
{
	struct tb_lifecycle *l = n->life;
	int64_t until = tb_reg_valid_until(n->reg);
	int lv = level_of(n, until, now);
	char left[32], t[24];

	/* an expired registry is the recovery state's to report */
	if (due(&l->reg, lv == 3 ? 0 : lv, (int64_t)tb_reg_serial(n->reg))) {
		fmt_left(until - now, left, sizeof(left));
		tb_fmt_utc(until, t);
		tb_log(lv == 2 ? TB_LOG_ERROR : TB_LOG_WARN,
		       "registry serial %llu expires in %s (%s): a newer one must reach this node "
		       "before then, or it stops exchanging messages",
		       (unsigned long long)tb_reg_serial(n->reg), left, t);
	}
	lv = level_of(n, n->cert_not_after, now);
	if (due(&l->cert, lv, n->cert_not_after)) {
		tb_fmt_utc(n->cert_not_after, t);
		if (lv == 3) {
			log_errorx(
			    "certificate %s expired at %s: peers refuse this node's handshakes",
			    n->cfg.cert, t);
		} else {
			fmt_left(n->cert_not_after - now, left, sizeof(left));
			tb_log(lv == 2 ? TB_LOG_ERROR : TB_LOG_WARN,
			       "certificate %s expires in %s (%s): renew it before then",
			       n->cfg.cert, left, t);
		}
	}
}

/* Whether the journal can take writes: its file, its WAL (when there is
 * one) and its directory (SQLite creates files there) are writable, and
 * its filesystem has room.  access() honours read-only mounts and
 * immutable files, also for root. */
static bool
journal_writable(const char *path, char *why, size_t len, bool *full)
{
	char wal[TB_CONF_PATH_MAX + 8], dir[TB_CONF_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct statvfs v;

	/* a postgresql:// journal has no file here: its failures show as
	 * failed transactions */
	if (strstr(path, "://") != NULL)
		return true;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if (access(path, W_OK) != 0) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		return false;
	}
	if (access(wal, F_OK) == 0 && access(wal, W_OK) != 0) {
		snprintf(why, len, "%s: %s", wal, strerror(errno));
		return false;
	}
	if (access(dir, W_OK) != 0) {
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return false;
	}
	if (statvfs(dir, &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize < MIN_FREE) {
		snprintf(why, len, "%s: %llu KiB free on its filesystem", dir,
		         (unsigned long long)((uint64_t)v.f_bavail * v.f_frsize / 1024));
		*full = true;
		return false;
	}
	return true;
}

/* Bytes free for the journal's files (UINT64_MAX when unknown). */
static uint64_t
journal_free(const char *path)
{
	char dir[TB_CONF_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct statvfs v;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
	if (statvfs(dir, &v) != 0)
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Whether the journal's disk has room again: more free than when it was
 * last found full (by a megabyte, so that a refusal of a large batch
 * does not end at once), and a file of ROOM_PROBE bytes beside the
 * journal can be written and synced. */
static bool
room_again(const struct tb_node *n)
{
	char probe[TB_CONF_PATH_MAX + 16];
	static const char zero[4096];
	uint64_t avail = journal_free(n->cfg.journal);
	bool ok = true;
	int fd;

	if (avail != UINT64_MAX && avail < MIN_FREE + n->life->full_free)
		return false;
	snprintf(probe, sizeof(probe), "%s.room", n->cfg.journal);
	if ((fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return false;
	for (size_t i = 0; ok && i < ROOM_PROBE / sizeof(zero); i++)
		ok = write(fd, zero, sizeof(zero)) == (ssize_t)sizeof(zero);
	ok = ok && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	if (unlink(probe) != 0)
		log_warnx("%s: %s", probe, strerror(errno));
	return ok;
}

/* The condition starts: one line (it ends in end_full). */
static void
start_full(struct tb_node *n, const char *why)
{
	struct tb_lifecycle *l = n->life;
	uint64_t avail = journal_free(n->cfg.journal);

	l->full_free = avail == UINT64_MAX ? 0 : avail;
	snprintf(l->full_why, sizeof(l->full_why), "%s", why);
	if (l->full)
		return;
	l->full = true;
	l->full_since = tb_now();
	l->full_since_ms = tb_now_ms();
	l->full_refused = 0;
	log_errorx("journal disk full: %s: peers' messages are refused (5.03 journal.full, "
	           "Max-Age %lld s) and submissions answered 503 until space returns",
	           why, (long long)n->cfg.full_retry);
}

static void
end_full(struct tb_node *n, const char *how)
{
	struct tb_lifecycle *l = n->life;

	if (!l->full)
		return;
	l->full = false;
	log_info("journal disk has room again (%s) after %lld s: %llu message(s) refused "
	         "meanwhile, their senders retry them",
	         how, (long long)((tb_now_ms() - l->full_since_ms + 500) / 1000),
	         (unsigned long long)l->full_refused);
}

void
tb_lifecycle_store_full(struct tb_node *n, size_t count, const char *detail)
{
	n->m.in_full += count;
	if (n->life == NULL)
		return;
	start_full(n, detail);
	n->life->full_refused += count;
}

void
tb_lifecycle_store_ok(struct tb_node *n)
{
	/* under MIN_FREE the probe would find it full again: not yet */
	if (n->life != NULL && n->life->full && journal_free(n->cfg.journal) >= MIN_FREE)
		end_full(n, "a message was stored");
}

bool
tb_lifecycle_journal_full(const struct tb_node *n)
{
	return n->life != NULL && n->life->full;
}

static void
probe_journal(struct tb_node *n)
{
	struct tb_lifecycle *l = n->life;
	char why[sizeof(l->journal_why)];
	bool ok, full = false;

	/* a full disk is probed every tick until it has room */
	if (l->full && room_again(n))
		end_full(n, "probed");
	/* a journal on a database server is asked every tick (one round
	 * trip): its outage is told on /healthz within a second */
	if (strstr(n->cfg.journal, "://") != NULL) {
		ok = tb_journal_ping(n->journal) == TB_OK;
		snprintf(why, sizeof(why), "%s", ok ? "" : tb_journal_diag(n->journal)->detail);
	} else if (tb_now_ms() < l->probe_ms) {
		return;
	} else {
		l->probe_ms = tb_now_ms() + PROBE_MS;
		ok = journal_writable(n->cfg.journal, why, sizeof(why), &full);
	}
	if (full) {
		/* no room is the full-disk condition's, told of there */
		start_full(n, why);
		ok = true;
	}
	if (!ok && (l->journal_ok || strcmp(why, l->journal_why) != 0))
		log_errorx("journal not writable: %s: submissions and received messages cannot "
		           "be kept",
		           why);
	else if (ok && !l->journal_ok)
		log_info("journal writable again");
	l->journal_ok = ok;
	snprintf(l->journal_why, sizeof(l->journal_why), "%s", ok ? "" : why);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tb_node *n = arg;
	int64_t now = tb_now();

	(void)fd;
	(void)what;
	tb_node_apply_pending(n);
	tb_node_update_state(n); /* expiry: into recovery */
	warn_expiry(n, now);
	probe_journal(n);
}

int
tb_lifecycle_start(struct tb_node *n, struct tb_diag *d)
{
	struct timeval tv = {TICK_S, 0};

	if ((n->life = calloc(1, sizeof(*n->life))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "lifecycle");
	n->life->journal_ok = true;
	if ((n->life->tick = event_new(n->base, -1, EV_PERSIST, tick_cb, n)) == NULL ||
	    evtimer_add(n->life->tick, &tv) != 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "lifecycle timer");
	tb_node_save_last_good(n);
	tick_cb(-1, 0, n);
	return TB_OK;
}

void
tb_lifecycle_stop(struct tb_node *n)
{
	if (n->life == NULL)
		return;
	if (n->life->tick != NULL)
		event_free(n->life->tick);
	free(n->life);
	n->life = NULL;
}

bool
tb_lifecycle_journal_writable(const struct tb_node *n)
{
	return n->life == NULL || n->life->journal_ok;
}

/* Appends "; " and the formatted text to why. */
static void add_why(char *why, size_t wlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
add_why(char *why, size_t wlen, const char *fmt, ...)
{
	size_t at = strlen(why);
	va_list ap;

	if (at > 0 && at + 2 < wlen) {
		memcpy(why + at, "; ", 3);
		at += 2;
	}
	if (at + 1 >= wlen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + at, wlen - at, fmt, ap);
	va_end(ap);
}

/* The causes that stop the node or make it lose what it accepts. */
static const char *
failing(const struct tb_node *n, int64_t now, char *why, size_t wlen)
{
	const char *status = NULL;
	char t[24];

	switch (n->state) {
	case TB_NODE_OK: break;
	case TB_NODE_RECOVERY:
		tb_fmt_utc(now >= tb_reg_valid_until(n->reg) ? tb_reg_valid_until(n->reg)
		                                             : tb_reg_issued(n->reg),
		           t);
		add_why(why, wlen, "registry serial %llu %s %s, fetching a newer one",
		        (unsigned long long)tb_reg_serial(n->reg),
		        now >= tb_reg_valid_until(n->reg) ? "expired at" : "is not valid before",
		        t);
		status = "recovery";
		break;
	case TB_NODE_SUSPENDED:
	case TB_NODE_REVOKED:
		add_why(why, wlen, "member %s is %s in registry serial %llu", n->cfg.member_id,
		        tb_node_state_name(n->state), (unsigned long long)tb_reg_serial(n->reg));
		status = tb_node_state_name(n->state);
		break;
	}
	if (now >= n->cert_not_after) {
		tb_fmt_utc(n->cert_not_after, t);
		add_why(why, wlen, "certificate expired at %s", t);
		status = status ? status : "certificate";
	}
	if (n->life != NULL && !n->life->journal_ok) {
		add_why(why, wlen, "journal not writable: %s", n->life->journal_why);
		status = status ? status : "journal";
	}
	if (n->life != NULL && n->life->full) {
		tb_fmt_utc(n->life->full_since, t);
		add_why(why, wlen,
		        "journal disk full since %s (%s): %llu message(s) refused, peers retry "
		        "after %lld s",
		        t, n->life->full_why, (unsigned long long)n->life->full_refused,
		        (long long)n->cfg.full_retry);
		status = status ? status : "journal";
	}
	return status;
}

enum tb_health
tb_lifecycle_health(const struct tb_node *n, char *status, size_t slen, char *why, size_t wlen)
{
	int64_t now = tb_now(), window = n->cfg.registry_warn_days * 86400;
	int64_t reg_until = tb_reg_valid_until(n->reg);
	const char *s;
	char left[32], t[24];

	why[0] = '\0';
	if ((s = failing(n, now, why, wlen)) != NULL) {
		snprintf(status, slen, "%s", s);
		return TB_HEALTH_FAILING;
	}
	if (reg_until - now <= window) {
		fmt_left(reg_until - now, left, sizeof(left));
		tb_fmt_utc(reg_until, t);
		add_why(why, wlen, "registry serial %llu expires in %s (%s)",
		        (unsigned long long)tb_reg_serial(n->reg), left, t);
	}
	if (n->cert_not_after - now <= window) {
		fmt_left(n->cert_not_after - now, left, sizeof(left));
		tb_fmt_utc(n->cert_not_after, t);
		add_why(why, wlen, "certificate expires in %s (%s)", left, t);
	}
	if (n->pending.len > 0) {
		tb_fmt_utc(n->pending_issued - n->cfg.clock_skew, t);
		add_why(why, wlen,
		        "registry serial %llu waits until %s (issued ahead of this clock)",
		        (unsigned long long)n->pending_serial, t);
	}
	snprintf(status, slen, "%s", why[0] ? "degraded" : "ok");
	return why[0] ? TB_HEALTH_DEGRADED : TB_HEALTH_OK;
}
