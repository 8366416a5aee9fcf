/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_journal.c - `tongban journal`: a consistent backup of a node's
 * journal while the node runs, and what the journal holds.  Both read
 * the journal file named in the node's config directly (read-only), as
 * `tongban audit verify` does; neither needs the node's API.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../node/config.h"
#include "../node/journal.h"
#include "../util/tb_err.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: tongban journal backup (--node CONFIG | --journal FILE) OUT\n"
    "       tongban journal stats (--node CONFIG | --journal FILE)\n"
    "\n"
    "backup  copies the node's journal, as of one moment, to the new file OUT\n"
    "        (mode 0600; an existing OUT is refused) while the node runs:\n"
    "        SQLite's online backup, the WAL's contents included.  Restore:\n"
    "        stop the node, put the copy in the journal's place, start it\n"
    "        (docs/ADMIN.md, \"Backup and restore\").  A postgresql:// journal\n"
    "        is backed up with pg_dump -Fc instead (refused here, saying so).\n"
    "stats   one JSON line: messages by state, audit entries, file bytes\n"
    "        (FILE may be a postgresql:// URI: bytes is the database's size).\n";

/* The journal path from --journal, or the one --node's config names. */
static int
journal_path(const char *node, const char *journal, struct tb_config *cfg, const char **out)
{
	struct tb_diag d;

	if ((node == NULL) == (journal == NULL))
		return cli_usage_error("give one of --node CONFIG or --journal FILE");
	if (journal != NULL) {
		*out = journal;
		return EX_TB_OK;
	}
	if (tb_config_load(node, cfg, &d) != TB_OK)
		return cli_fail(d.code == TB_E_IO ? EX_TB_IO : EX_TB_USAGE, "%s", d.detail);
	*out = cfg->journal;
	return EX_TB_OK;
}

static int
stats(const char *path)
{
	struct tb_journal_stats st;
	struct tb_diag d;

	if (tb_journal_stats(path, &st, &d) != TB_OK)
		return cli_fail_diag(&d);
	printf("{\"inbox\":%" PRId64 ",\"inbound_acked\":%" PRId64 ",\"queued\":%" PRId64
	       ",\"delivered\":%" PRId64 ",\"failed\":%" PRId64 ",\"audit\":%" PRId64
	       ",\"bytes\":%" PRId64 ",\"free_bytes\":%" PRId64 "}\n",
	       st.inbox, st.inbound_acked, st.queued, st.delivered, st.failed, st.audit, st.bytes,
	       st.free_bytes);
	return EX_TB_OK;
}

int
cmd_journal(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
	                                     {"journal", required_argument, NULL, 'j'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *node = NULL, *journal = NULL, *sub, *path;
	struct tb_config cfg;
	struct tb_diag d;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		if (argc < 2)
			return cli_usage_error("a subcommand is required: backup or stats");
		fputs(usage_text, stdout);
		return EX_TB_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "backup") != 0 && strcmp(sub, "stats") != 0)
		return cli_usage_error("unknown subcommand '%s'", sub);
	argc--;
	argv++;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'j': journal = optarg; break;
		case 'h': fputs(usage_text, stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (strcmp(sub, "stats") == 0) {
		if (optind != argc)
			return cli_usage_error("unexpected argument '%s'", argv[optind]);
		if ((rc = journal_path(node, journal, &cfg, &path)) != EX_TB_OK)
			return rc;
		return stats(path);
	}
	if (optind + 1 != argc)
		return cli_usage_error(optind == argc ? "backup needs OUT, the file to create"
		                                      : "backup takes one OUT");
	if ((rc = journal_path(node, journal, &cfg, &path)) != EX_TB_OK)
		return rc;
	if (tb_journal_backup(path, argv[optind], &d) != TB_OK)
		return cli_fail_diag(&d);
	printf("backup of %s written to %s\n", path, argv[optind]);
	return EX_TB_OK;
}
