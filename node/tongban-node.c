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
#include "node.h"

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

static void
on_prune(evutil_socket_t fd, short what, void *arg)
{
	struct tb_node *n = arg;
	size_t removed = 0;

	(void)fd;
	(void)what;
	/* ids are remembered while a copy could still pass the time check */
	if (tb_journal_prune(n->journal, tb_now(), n->cfg.clock_skew + 60, &removed) != TB_OK)
		log_warnx("journal: prune failed (tried again later): %s",
		          tb_journal_diag(n->journal)->detail);
	else if (removed > 0)
		log_debug("journal: pruned %zu entries", removed);
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
	if (check) {
		printf("configuration OK\n");
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
	tb_journal_library_init();
	if ((n->journal = tb_journal_open(n->cfg.journal, &d)) == NULL) {
		fprintf(stderr, "tongban-node: journal %s: %s\n", n->cfg.journal,
		        tb_diag_format(&d, line, sizeof(line)));
		goto out;
	}
	/* messages a stopped node held in memory are due now */
	int64_t held = 0;
	if (tb_journal_outbound_release_held(n->journal, tb_now(), &held) != TB_OK) {
		fprintf(stderr, "tongban-node: journal %s: %s\n", n->cfg.journal,
		        tb_journal_diag(n->journal)->detail);
		goto out;
	}
	if (held > 0)
		log_info("%lld queued message(s) due again after the restart", (long long)held);
	if ((n->base = event_base_new()) == NULL) {
		fprintf(stderr, "tongban-node: event_base_new failed\n");
		goto out;
	}
	tb_outbound_init(n);
	if (tb_transport_start(n, &d) != TB_OK || tb_api_start(n, &d) != TB_OK ||
	    tb_ingest_start(n, &d) != TB_OK || tb_answers_start(n, &d) != TB_OK ||
	    tb_webhook_start(n, &d) != TB_OK) {
		fprintf(stderr, "tongban-node: %s\n", d.detail);
		goto out;
	}
	n->sigterm_ev = evsignal_new(n->base, SIGTERM, on_term, n);
	n->sigint_ev = evsignal_new(n->base, SIGINT, on_term, n);
	n->sighup_ev = evsignal_new(n->base, SIGHUP, on_hup, n);
	n->prune_timer = event_new(n->base, -1, EV_PERSIST, on_prune, n);
	struct timeval minute = {60, 0};
	if (n->sigterm_ev == NULL || n->sigint_ev == NULL || n->sighup_ev == NULL ||
	    n->prune_timer == NULL || evsignal_add(n->sigterm_ev, NULL) != 0 ||
	    evsignal_add(n->sigint_ev, NULL) != 0 || evsignal_add(n->sighup_ev, NULL) != 0 ||
	    evtimer_add(n->prune_timer, &minute) != 0) {
		fprintf(stderr, "tongban-node: signal setup failed\n");
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
	tb_webhook_stop(n);
	tb_ingest_stop(n);
	tb_answers_stop(n);
	tb_outbound_forget(n);
	tb_api_stop(n);
	tb_transport_stop(n);
	if (n->deliver_timer)
		event_free(n->deliver_timer);
	if (n->sigterm_ev)
		event_free(n->sigterm_ev);
	if (n->sigint_ev)
		event_free(n->sigint_ev);
	if (n->sighup_ev)
		event_free(n->sighup_ev);
	if (n->prune_timer)
		event_free(n->prune_timer);
	if (n->resync_timer)
		event_free(n->resync_timer);
	while (n->exchanges != NULL) {
		struct tb_exchange *x = n->exchanges;
		n->exchanges = x->next;
		free(x->ids);
		free(x->digests);
		free(x->tos);
		free(x->relayed);
		free(x);
	}
	if (n->base)
		event_base_free(n->base);
	tb_node_free(n);
	return rc;
}
