/* tongban-node.c - the federation daemon: arguments, signals, the loop. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "journal.h"
#include "log.h"
#include "answers.h"
#include "api.h"
#include "inbound.h"
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
	fprintf(f,
	        "Usage: tongban-node --config FILE [-n]\n"
	        "       tongban-node --help | --version\n\n"
	        "Runs one Tongban federation node in the foreground.\n\n"
	        "  -c, --config FILE  configuration file (see tongban-node(8))\n"
	        "  -n, --check        check the configuration and the files it names,\n"
	        "                     print \"configuration OK\", exit\n\n"
	        "Signals: SIGTERM/SIGINT drain in-flight exchanges and exit;\n"
	        "SIGHUP re-reads the registry file and the configuration: the keys\n"
	        "marked (SIGHUP) apply at once, a change to any other needs a restart.\n\n"
	        "Configuration keys (KEY = VALUE lines; errors as FILE:LINE: KEY: why):\n");
	tb_config_describe(f);
	fprintf(f, "\nExit status: 0 clean exit or configuration OK, 1 configuration or\n"
	           "startup error, 2 usage error.\n");
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
	log_info("SIGHUP: configuration reloaded (%s)", applied);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct tb_node *n = arg;
	struct tb_buf b;
	struct tb_diag d;

	(void)sig;
	(void)what;
	reload_config(n);
	tb_diag_clear(&d);
	tb_buf_init(&b);
	if (tb_file_read(n->cfg.registry, TB_REG_MAX_SIZE, &b, &d) == TB_OK &&
	    b.len == n->reg_bytes.len && memcmp(b.data, n->reg_bytes.data, b.len) == 0) {
		log_info("SIGHUP: registry unchanged (serial %llu)",
		         (unsigned long long)tb_reg_serial(n->reg));
	} else if (d.code != TB_OK ||
	           tb_node_apply_registry(n, b.data, b.len, false, &d) != TB_OK) {
		char line[300];
		log_warnx("SIGHUP: registry not reloaded, keeping serial %llu: %s",
		          (unsigned long long)tb_reg_serial(n->reg),
		          tb_diag_format(&d, line, sizeof(line)));
	}
	tb_buf_free(&b);
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

/* The answers to exchanges are settled on the ingest thread. */
static int
start_answers(struct tb_node *n, struct tb_diag *d)
{
	struct tb_worker *w;
	struct tb_journal *j;

	if (tb_ingest_thread(n, &w, &j) != TB_OK)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "answers: no ingest thread");
	return tb_answers_start(n, w, j, d);
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
	struct event *term, *intr, *hup;
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
	tb_webhook_stop(n);
	tb_ingest_stop(n);
	tb_answers_stop(n);
	tb_outbound_forget(n);
	tb_api_stop(n);
	tb_transport_stop(n);
	tb_inbound_free(n);
	if (ev->term)
		event_free(ev->term);
	if (ev->intr)
		event_free(ev->intr);
	if (ev->hup)
		event_free(ev->hup);
	tb_retain_stop(ev->retain);
	tb_regsync_stop(n);
	tb_outbound_free(n);
	if (n->base)
		event_base_free(n->base);
	tb_responder_free(responder);
	tb_node_free(n);
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
	struct daemon_events ev = {NULL, NULL, NULL, NULL};
	struct tb_diag d;
	char line[400];
	int c, rc = 1;

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
	if (tb_crypto_init() != TB_OK) {
		fprintf(stderr, "tongban-node: cannot initialise GnuTLS\n");
		return 1;
	}
	/* -n: also the files the configuration names, and the identity */
	if (check && tb_config_check(config, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		return 1;
	}
	if ((n = tb_node_new(config, &d)) == NULL) {
		fprintf(stderr, "tongban-node: %s\n",
		        d.code == TB_E_ARG || d.code == TB_E_IO
		            ? d.detail
		            : tb_diag_format(&d, line, sizeof(line)));
		return 1;
	}
	/* the optional consumers' files, also for -n */
	if (tb_responder_load(n, &responder, &d) != TB_OK ||
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
		tb_responder_free(responder);
		tb_node_free(n);
		return 0;
	}
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
	if (start_stages(n, responder, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		goto out;
	}
	if (watch_signals(n, &ev) != TB_OK) {
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
	tb_outbound_schedule(n, 0); /* resume deliveries journalled before a restart */
	log_info("tongban-node %s: member %s ready", PACKAGE_VERSION, n->cfg.member_id);
	event_base_dispatch(n->base);
	log_info("stopped");
	rc = 0;
out:
	stop_all(n, responder, &ev);
	return rc;
}
