/* SPDX-License-Identifier: Apache-2.0 */
/* tongban-node.c - the federation daemon: arguments, signals, the loop. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "journal.h"
#include "log.h"
#include "answers.h"
#include "audit.h"
#include "api.h"
#include "inbound.h"
#include "lifecycle.h"
#include "ingest.h"
#include "outbound.h"
#include "regsync.h"
#include "responder.h"
#include "retain.h"
#include "transport.h"
#include "webhook.h"

static void
usage(FILE *f)
{
	fprintf(f, "Usage: tongban-node --config FILE [-n]\n"
	           "       tongban-node --help | --version\n\n"
	           "Runs one Tongban federation node in the foreground.\n\n"
	           "  -c, --config FILE  configuration file (see tongban-node(8))\n"
	           "  -n, --check        check what the node will use (the configuration,\n"
	           "                     identity, registry, file modes, journal, ports),\n"
	           "                     each finding one line; print \"configuration OK\"\n"
	           "                     and exit 0, or exit 1.  Start-up runs the same.\n\n"
	           "Signals: SIGTERM/SIGINT drain in-flight exchanges and exit;\n"
	           "SIGHUP re-reads the registry file and the configuration: the keys\n"
	           "marked (SIGHUP) apply at once, a change to any other needs a restart;\n"
	           "and re-reads the files of cert, key and sign_key (rotation): if they\n"
	           "pass the checks of -n, new DTLS sessions and new signatures use them,\n"
	           "else those in use are kept and an error is logged.\n"
	           "A registry that is refused never replaces the one in force, whose last\n"
	           "good copy is kept beside the journal (JOURNAL.registry) and used at\n"
	           "start when the registry file is refused or older.  An expired registry\n"
	           "puts the node in recovery (tongban-node(8), OPERATING STATES).\n\n"
	           "Configuration keys (KEY = VALUE lines; errors as FILE:LINE: KEY: why):\n");
	tb_config_describe(f);
	fprintf(f, "\nExit status: 0 clean exit or configuration OK, 1 configuration or\n"
	           "startup error, 2 usage error.\n");
}

/* A finding of tb_config_check: failures on stderr, one line each;
 * warnings too under -n (ctx: bool, -n), else in the log. */
static void
print_finding(void *ctx, enum tb_check_sev sev, const char *line)
{
	const bool *check = ctx;

	if (sev == TB_CHECK_FAIL)
		fprintf(stderr, "tongban-node: %s\n", line);
	else if (*check)
		fprintf(stderr, "tongban-node: warning: %s\n", line);
	else
		log_warnx("%s", line);
}

/* systemd's service manager (Type=notify), told through sd_notify:
 * READY=1 once the node listens and its journal is open, RELOADING=1
 * then READY=1 around a SIGHUP, STOPPING=1 when it drains, WATCHDOG=1
 * at half of WATCHDOG_USEC from the loop.  Without NOTIFY_SOCKET (not
 * under systemd), or built without libsystemd, these do nothing. */
static void
notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	(void)sd_notify(0, state);
#else
	(void)state;
#endif
}

/* RELOADING=1 with the CLOCK_MONOTONIC time systemd >= 253 asks for. */
static void
notify_reloading(void)
{
	struct timespec ts;
	char s[80];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		ts.tv_sec = ts.tv_nsec = 0;
	snprintf(s, sizeof(s), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000);
	notify(s);
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

/* The watchdog timer (*evp, NULL when systemd set no watchdog). */
static int
watch_dog(struct tb_node *n, struct event **evp)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;
	struct timeval tv;

	*evp = NULL;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return TB_OK;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	if ((*evp = event_new(n->base, -1, EV_PERSIST, on_watchdog, n)) == NULL ||
	    event_add(*evp, &tv) != 0)
		return TB_E_NOMEM;
	log_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)usec / 1000);
#else
	(void)n;
	(void)on_watchdog;
	*evp = NULL;
#endif
	return TB_OK;
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct tb_node *n = arg;
	struct timeval tv = {2, 0};

	(void)what;
	if (n->draining) {
		event_base_loopbreak(n->base);
		return;
	}
	log_info("signal %d: draining, exiting in 2 s", (int)sig);
	notify("STOPPING=1");
	n->draining = true;
	event_base_loopexit(n->base, &tv);
}

/* SIGHUP: re-reads the configuration.  The keys the table marks
 * reloadable apply at once; a change to any other (sockets, identities,
 * files in use) needs a restart, and is reported and ignored. */
static void
reload_config(struct tb_node *n)
{
	const struct tb_conf_table *t = tb_config_table();
	struct tb_config c;
	struct tb_diag d;
	enum tb_log_level lvl;
	char fixed[256] = "", applied[512] = "", v[64];
	size_t len = 0;

	tb_diag_clear(&d);
	if (tb_config_load(n->config_path, &c, &d) != TB_OK) {
		log_warnx("SIGHUP: configuration not reloaded: %s", d.detail);
		return;
	}
	for (size_t i = 0; i < t->nkeys; i++)
		if (!(t->keys[i].flags & TB_CONF_RELOAD) &&
		    !tb_conf_equal(&t->keys[i], &c, &n->cfg))
			snprintf(fixed + strlen(fixed), sizeof(fixed) - strlen(fixed), " %s",
			         t->keys[i].name);
	if (fixed[0] != '\0')
		log_warnx("SIGHUP: changed keys need a restart, not applied:%s", fixed);
	/* the ingest thread reads tunables under reg_lock */
	pthread_rwlock_wrlock(&n->reg_lock);
	for (size_t i = 0; i < t->nkeys; i++) {
		if (!(t->keys[i].flags & TB_CONF_RELOAD))
			continue;
		tb_conf_copy(&t->keys[i], &n->cfg, &c);
		tb_conf_format(&t->keys[i], &n->cfg, v, sizeof(v));
		len += (size_t)snprintf(applied + len, sizeof(applied) - len, "%s%s %s",
		                        len ? ", " : "", t->keys[i].name, v);
		len = len < sizeof(applied) ? len : sizeof(applied) - 1;
	}
	pthread_rwlock_unlock(&n->reg_lock);
	if (tb_log_level_parse(c.log_level, &lvl))
		tb_log_set_level(lvl);
	tb_log_set_format(tb_log_format_of(c.log_format));
	log_info("SIGHUP: configuration reloaded (%s)", applied);
	tb_audit_event(n, "config-reloaded", "%s", fixed[0] != '\0' ? "restart-needed" : "applied");
}

/* The failures of the checks a rotation must pass: the first, counted. */
struct findings {
	char first[700];
	int fails;
};

static void
collect(void *ctx, enum tb_check_sev sev, const char *line)
{
	struct findings *f = ctx;

	if (sev == TB_CHECK_WARN)
		log_warnx("SIGHUP: %s", line);
	else if (f->fails++ == 0)
		snprintf(f->first, sizeof(f->first), "%s", line);
}

/* The new message-signing key, twice (the loop's and the ingest
 * thread's copies), and the certificate: 0, or d says why. */
static int
load_new(struct tb_node *n, struct tb_key **k1, struct tb_key **k2, struct tb_cert **cert,
         struct tb_diag *d)
{
	const char *path = n->cfg.sign_key[0] != '\0' ? n->cfg.sign_key : n->cfg.key;

	if ((*k1 = tb_key_load(path, NULL, d)) == NULL ||
	    (*k2 = tb_key_load(path, NULL, d)) == NULL ||
	    (*cert = tb_cert_load(n->cfg.cert, d)) == NULL)
		return d->code != TB_OK ? d->code : TB_E_KEY;
	return TB_OK;
}

/* SIGHUP: the certificate, its key and the message-signing key are read
 * again from the files the configuration names (replaced in place: a new
 * path needs a restart, as reload_config says).  They must pass the
 * checks of start-up against the registry in force, else those in use
 * are kept and one error line says why.  New DTLS sessions use the new
 * certificate; exchanges in flight finish on their sessions. */
static void
rotate_keys(struct tb_node *n)
{
	struct findings f = {"", 0};
	struct tb_config c;
	struct tb_key *k1 = NULL, *k2 = NULL;
	struct tb_cert *cert = NULL;
	uint8_t kid[TB_KEYID_LEN];
	char line[300], serial[TB_CERT_SERIAL_HEX_MAX], hex[2 * TB_KEYID_LEN + 1];
	struct tb_diag d;
	bool dtls = false, sign;

	tb_diag_clear(&d);
	if (tb_config_load(n->config_path, &c, &d) != TB_OK || strcmp(c.cert, n->cfg.cert) != 0 ||
	    strcmp(c.key, n->cfg.key) != 0 || strcmp(c.sign_key, n->cfg.sign_key) != 0 ||
	    strcmp(c.root, n->cfg.root) != 0)
		return; /* reload_config has said why */
	if (tb_config_check(n->config_path, TB_CHECK_IDENTITY_ONLY, n->reg, collect, &f) != TB_OK) {
		log_errorx("SIGHUP: certificate and keys not rotated, keeping those in use: %s%s",
		           f.first, f.fails > 1 ? " (and more)" : "");
		return;
	}
	if (load_new(n, &k1, &k2, &cert, &d) != TB_OK ||
	    tb_transport_set_identity(n, &dtls, &d) != TB_OK) {
		log_errorx("SIGHUP: certificate and keys not rotated, keeping those in use: %s",
		           tb_diag_format(&d, line, sizeof(line)));
		goto out;
	}
	tb_key_id(k1, kid);
	sign = memcmp(kid, n->sign_kid, sizeof(kid)) != 0;
	if (sign) {
		tb_node_set_sign_key(n, k1);
		tb_ingest_set_key(n, k2);
		k1 = k2 = NULL;
	}
	n->cert_not_after = tb_cert_not_after(cert);
	if (!dtls && !sign) {
		log_info("SIGHUP: certificate and keys unchanged");
		goto out;
	}
	if (tb_cert_serial_hex(cert, serial) != TB_OK)
		snprintf(serial, sizeof(serial), "?");
	tb_hex_encode(kid, sizeof(kid), hex);
	log_info("SIGHUP: rotated: %s certificate serial %s (valid until %lld) for new DTLS "
	         "sessions; message-signing key %.16s...%s",
	         dtls ? "new" : "unchanged", serial, (long long)n->cert_not_after, hex,
	         sign ? " (new)" : " (unchanged)");
out:
	tb_cert_free(cert);
	tb_key_free(k2);
	tb_key_free(k1);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct tb_node *n = arg;
	struct tb_diag d;

	(void)sig;
	(void)what;
	notify_reloading();
	reload_config(n);
	/* a refused registry leaves the one in force, and its last good copy
	 * beside the journal, as they were (node.c) */
	(void)tb_node_reload_registry(n, "SIGHUP", &d); /* logs the outcome */
	/* after the registry, which may list the new keys */
	rotate_keys(n);
	notify("READY=1");
}

/* The CoAP resources, on the transport's context. */
static int
start_inbound(struct tb_node *n, struct tb_diag *d)
{
	/* the outbound stage sends a hub's relays, and settles messages of
	 * ours whose receipts came back through a hub */
	struct tb_inbound_consumer out = {tb_outbound_returned, tb_outbound_relays_queued, NULL, n};

	if (tb_inbound_init(n) != TB_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "resources");
	tb_inbound_add_consumer(n, &out);
	return TB_OK;
}

/* The optional consumers of what arrives: the reference responder
 * (responder NULL: none) and the webhook. */
static int
start_consumers(struct tb_node *n, struct tb_responder *responder, struct tb_diag *d)
{
	tb_responder_start(responder);
	return tb_webhook_start(n, d);
}

/* The answers to exchanges are settled on a thread of their own. */
static int
start_answers(struct tb_node *n, struct tb_diag *d)
{
	return tb_answers_start(n, d);
}

/* The journal, and the messages a stopped node held in memory due now. */
static int
open_journal(struct tb_node *n)
{
	struct tb_diag d;
	char line[400];

	tb_journal_library_init();
	if ((n->journal = tb_journal_open(n->cfg.journal, &d)) == NULL) {
		fprintf(stderr, "tongban-node: journal %s: %s\n", n->cfg.journal,
		        tb_diag_format(&d, line, sizeof(line)));
		return TB_E_IO;
	}
	/* messages a stopped node held in memory are due now */
	int64_t held = 0;
	if (tb_journal_outbound_release_held(n->journal, tb_now(), &held) != TB_OK) {
		fprintf(stderr, "tongban-node: journal %s: %s\n", n->cfg.journal,
		        tb_journal_diag(n->journal)->detail);
		return TB_E_IO;
	}
	if (held > 0)
		log_info("%lld queued message(s) due again after the restart", (long long)held);
	return TB_OK;
}

/* The pipeline's stages, lowest first, each registering with those below
 * it what it must be told. */
static int
start_stages(struct tb_node *n, struct tb_responder *responder, struct tb_diag *d)
{
	if (tb_outbound_init(n, d) != TB_OK || tb_transport_start(n, d) != TB_OK ||
	    start_inbound(n, d) != TB_OK || tb_api_start(n, d) != TB_OK ||
	    tb_ingest_start(n, d) != TB_OK || start_answers(n, d) != TB_OK ||
	    start_consumers(n, responder, d) != TB_OK)
		return d->code != TB_OK ? d->code : TB_E_IO;
	return TB_OK;
}

/* The daemon's own events: signals; and the journal's retention. */
struct daemon_events {
	struct event *term, *intr, *hup, *watchdog;
	struct tb_retain *retain;
};

static int
watch_signals(struct tb_node *n, struct daemon_events *ev)
{
	ev->term = evsignal_new(n->base, SIGTERM, on_term, n);
	ev->intr = evsignal_new(n->base, SIGINT, on_term, n);
	ev->hup = evsignal_new(n->base, SIGHUP, on_hup, n);
	if (ev->term == NULL || ev->intr == NULL || ev->hup == NULL ||
	    evsignal_add(ev->term, NULL) != 0 || evsignal_add(ev->intr, NULL) != 0 ||
	    evsignal_add(ev->hup, NULL) != 0)
		return TB_E_NOMEM;
	return TB_OK;
}

/* Stops the stages, highest first, and frees everything. */
static void
stop_all(struct tb_node *n, struct tb_responder *responder, struct daemon_events *ev)
{
	tb_lifecycle_stop(n);
	tb_webhook_stop(n);
	tb_ingest_stop(n);
	tb_answers_stop(n);
	tb_outbound_forget(n);
	tb_api_stop(n);
	tb_transport_stop(n);
	tb_inbound_free(n);
	tb_audit_stop(n); /* the stages that append are stopped */
	if (ev->term)
		event_free(ev->term);
	if (ev->intr)
		event_free(ev->intr);
	if (ev->hup)
		event_free(ev->hup);
	if (ev->watchdog)
		event_free(ev->watchdog);
	tb_retain_stop(ev->retain);
	tb_regsync_stop(n);
	tb_outbound_free(n);
	if (n->base)
		event_base_free(n->base);
	tb_responder_free(responder);
	tb_node_free(n);
}

/* Everything -n checks, and the node and the optional responder built
 * (*np, *rp): -1 to go on and start, else the exit status (0 for -n
 * when all is well; the node is freed then). */
static int
prepare(const char *config, bool check, struct tb_node **np, struct tb_responder **rp)
{
	struct tb_node *n;
	struct tb_diag d;
	char line[400];

	if (tb_crypto_init() != TB_OK) {
		fprintf(stderr, "tongban-node: cannot initialise GnuTLS\n");
		return 1;
	}
	/* what the node will use, every finding (-n and start-up alike) */
	if (tb_config_check(config, TB_CHECK_PORTS, NULL, print_finding, &check) != TB_OK)
		return 1;
	if ((n = tb_node_new(config, &d)) == NULL) {
		fprintf(stderr, "tongban-node: %s\n",
		        d.code == TB_E_ARG || d.code == TB_E_IO
		            ? d.detail
		            : tb_diag_format(&d, line, sizeof(line)));
		return 1;
	}
	/* the optional consumers' files, also for -n */
	if (tb_responder_load(n, rp, &d) != TB_OK ||
	    (n->cfg.webhook[0] != '\0' && tb_webhook_check(n->cfg.webhook, &d) != TB_OK)) {
		fprintf(stderr, "tongban-node: %s\n",
		        d.code == TB_E_ARG || d.code == TB_E_IO
		            ? d.detail
		            : tb_diag_format(&d, line, sizeof(line)));
		tb_node_free(n);
		return 1;
	}
	if (check) {
		printf("configuration OK\n");
		tb_responder_free(*rp);
		tb_node_free(n);
		return 0;
	}
	*np = n;
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"check", no_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {0, 0, 0, 0}};
	const char *config = NULL;
	bool check = false;
	struct tb_node *n;
	struct tb_responder *responder = NULL;
	struct daemon_events ev = {NULL, NULL, NULL, NULL, NULL};
	struct tb_diag d;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'n': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tongban-node %s (protocol v1)\n", PACKAGE_VERSION); return 0;
		default: fprintf(stderr, "tongban-node: unknown option (try --help)\n"); return 2;
		}
	}
	if (config == NULL || optind != argc) {
		fprintf(stderr, "tongban-node: --config FILE is required (try --help)\n");
		return 2;
	}
	if ((rc = prepare(config, check, &n, &responder)) >= 0)
		return rc;
	rc = 1;
	signal(SIGPIPE, SIG_IGN);
	/* every DTLS client session is a socket of its own, up to
	 * peer_sessions per peer: use the whole descriptor allowance */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (open_journal(n) != TB_OK)
		goto out;
	if ((n->base = event_base_new()) == NULL) {
		fprintf(stderr, "tongban-node: event_base_new failed\n");
		goto out;
	}
	/* the chain's signed head and "start", before any stage appends */
	if (tb_audit_start(n, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: journal %s: %s\n", n->cfg.journal, d.detail);
		goto out;
	}
	tb_node_on_registry(n, tb_audit_on_registry, n);
	if (start_stages(n, responder, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		goto out;
	}
	if (watch_signals(n, &ev) != TB_OK || watch_dog(n, &ev.watchdog) != TB_OK) {
		fprintf(stderr, "tongban-node: signal setup failed\n");
		goto out;
	}
	if ((ev.retain = tb_retain_start(n, &d)) == NULL) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		goto out;
	}
	if (tb_regsync_start(n) != TB_OK) {
		fprintf(stderr, "tongban-node: registry sync setup failed\n");
		goto out;
	}
	/* expiry, the registry kept until valid, warnings, health */
	if (tb_lifecycle_start(n, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		goto out;
	}
	tb_outbound_schedule(n, 0); /* resume deliveries journalled before a restart */
	log_info("tongban-node %s: member %s ready (state %s)", PACKAGE_VERSION, n->cfg.member_id,
	         tb_node_state_name(n->state));
	notify("READY=1");
	event_base_dispatch(n->base);
	log_info("stopped");
	rc = 0;
out:
	stop_all(n, responder, &ev);
	return rc;
}
