/* SPDX-License-Identifier: Apache-2.0 */
/* tongban.c - the admin CLI: dispatch and shared helpers. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../certs/tb_key.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

const char *cli_cmd = "tongban";
static char cmdname[128];

static const struct {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
} commands[] = {
    {"canon", cmd_canon, "print the RFC 8785 canonical form of JSON"},
    {"key", cmd_key, "generate keys, print public keys and key ids"},
    {"msg", cmd_msg, "create, seal and open envelopes"},
    {"ca", cmd_ca, "create CAs, issue and revoke certificates, publish CRLs"},
    {"node", cmd_node, "create a node key and certificate request"},
    {"cert", cmd_cert, "verify and show certificates"},
    {"csr", cmd_csr, "show a certificate request (subject, member id, key id)"},
    {"trust", cmd_trust, "create the registry trust anchor (authorities, threshold)"},
    {"registry", cmd_registry, "build, sign, verify and show the member registry"},
    {"route", cmd_route, "resolve which member serves a service for a region"},
    {"policy", cmd_policy, "check the registry's access policy"},
    {"send", cmd_send, "submit a message through a running node"},
    {"status", cmd_status, "delivery status of a message sent by a node"},
    {"inbox", cmd_inbox, "list or acknowledge messages a node received"},
    {"reply", cmd_reply, "answer a message a node received, through the node"},
    {"peers", cmd_peers, "the members as a running node sees them (reachability)"},
    {"audit", cmd_audit, "verify, show and export a node's signed audit chain"},
    {"journal", cmd_journal, "back up a running node's journal; its figures"},
    {"licence", cmd_licence, "check a presented licence (digest, issuer signature, status)"},
    {"demo", cmd_demo, "run the Huaihai region demo on 127.0.0.1"},
    {"dev-federation", cmd_devfed, "create a complete test federation on 127.0.0.1"},
};

static void
usage(FILE *f)
{
	fprintf(f, "Usage: tongban [--help] [--version] COMMAND [ARGS]...\n\n"
	           "Administer a Tongban federation node.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'tongban COMMAND --help' for a command's options.\n"
	           "Exit status: 0 success, 1 refused (invalid or not verified), 2 usage,\n"
	           "3 I/O error (also: standard output could not be written), 4 internal error.\n");
}

int
cli_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try '%s --help')\n", cli_cmd);
	return EX_TB_USAGE;
}

int
cli_fail_diag(const struct tb_diag *d)
{
	char line[512];
	int code;

	switch (d->code) {
	case TB_E_IO: code = EX_TB_IO; break;
	case TB_E_NOMEM:
	case TB_E_CRYPTO: code = EX_TB_INTERNAL; break;
	case TB_E_ARG: code = EX_TB_USAGE; break;
	default: code = EX_TB_REFUSED;
	}
	/* I/O errors read better without the reason token */
	if (d->code == TB_E_IO)
		return cli_fail(code, "%s", d->detail);
	return cli_fail(code, "%s", tb_diag_format(d, line, sizeof(line)));
}

char *
cli_read_pass(const char *path, int *rc)
{
	struct tb_buf b;
	struct tb_diag d;
	char *p;

	*rc = EX_TB_OK;
	if (path == NULL)
		return NULL;
	tb_buf_init(&b);
	if (tb_file_read(path, 4096, &b, &d) != TB_OK) {
		*rc = cli_fail_diag(&d);
		tb_buf_wipe(&b);
		return NULL;
	}
	size_t n = strcspn((const char *)b.data, "\r\n");
	if (n == 0) {
		*rc = cli_fail(EX_TB_REFUSED, "%s: empty password file", path);
		tb_buf_wipe(&b);
		return NULL;
	}
	if ((p = malloc(n + 1)) == NULL) {
		*rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		tb_buf_wipe(&b);
		return NULL;
	}
	memcpy(p, b.data, n);
	p[n] = '\0';
	tb_buf_wipe(&b);
	return p;
}

void
cli_free_pass(char *p)
{
	if (p == NULL)
		return;
	for (volatile char *q = p; *q != '\0'; q++)
		*q = '\0';
	free(p);
}

/* One line from the terminal into buf, echo off when noecho. */
static bool
tty_line(const char *prompt, bool noecho, char *buf, size_t n)
{
	struct termios old, raw;
	FILE *tty = fopen("/dev/tty", "r+");
	FILE *in = tty != NULL ? tty : stdin;
	bool ok, restore = false;

	fputs(prompt, tty != NULL ? tty : stderr);
	fflush(tty != NULL ? tty : stderr);
	if (noecho && tcgetattr(fileno(in), &old) == 0) {
		raw = old;
		raw.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(in), TCSANOW, &raw) == 0;
	}
	ok = fgets(buf, (int)n, in) != NULL;
	if (restore) {
		tcsetattr(fileno(in), TCSANOW, &old);
		fputc('\n', tty != NULL ? tty : stderr);
	}
	if (tty != NULL)
		fclose(tty);
	buf[ok ? strcspn(buf, "\r\n") : 0] = '\0';
	return ok;
}

char *
cli_key_pass(const char *keypath, const char *passf, int *rc)
{
	struct tb_buf b;
	char line[1024], *p;
	bool enc;

	if (passf != NULL)
		return cli_read_pass(passf, rc);
	*rc = EX_TB_OK;
	tb_buf_init(&b);
	enc = tb_file_read(keypath, 1 << 20, &b, NULL) == TB_OK && b.len > 0 &&
	      memmem(b.data, b.len, "ENCRYPTED", 9) != NULL;
	tb_buf_free(&b);
	if (!enc)
		return NULL;
	if (!isatty(STDIN_FILENO)) {
		*rc = cli_fail(EX_TB_USAGE,
		               "%s: the key is encrypted: give its password with --pass-file FILE "
		               "(or run on a terminal to be asked for it)",
		               keypath);
		return NULL;
	}
	snprintf(line, sizeof(line), "Password for %s: ", keypath);
	if (!tty_line(line, true, line, sizeof(line)) || line[0] == '\0') {
		*rc = cli_fail(EX_TB_USAGE, "%s: no password given", keypath);
		return NULL;
	}
	if ((p = strdup(line)) == NULL)
		*rc = cli_fail(EX_TB_INTERNAL, "out of memory");
	for (volatile char *q = line; *q != '\0'; q++)
		*q = '\0';
	return p;
}

bool
cli_confirm(const char *question)
{
	char line[64];

	return tty_line(question, false, line, sizeof(line)) && (line[0] == 'y' || line[0] == 'Y');
}

void
cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

int
cli_parse_i64(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' ? -1 : 0;
}

int
cli_stdout_error(const char *why)
{
	static bool said;

	if (!said) {
		said = true;
		cli_fail(EX_TB_IO, "cannot write to standard output: %s", why);
	}
	return EX_TB_IO;
}

static int
run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EX_TB_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EX_TB_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tongban %s (protocol v1)\n", PACKAGE_VERSION);
		return EX_TB_OK;
	}
	if (tb_crypto_init() != TB_OK)
		return cli_fail(EX_TB_INTERNAL, "cannot initialise GnuTLS");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* every command answers --version like the program itself */
		for (int a = 2; a < argc && strcmp(argv[a], "--") != 0; a++)
			if (strcmp(argv[a], "--version") == 0) {
				printf("tongban %s (protocol v1)\n", PACKAGE_VERSION);
				return EX_TB_OK;
			}
		snprintf(cmdname, sizeof(cmdname), "tongban %s", commands[i].name);
		cli_cmd = cmdname;
		return commands[i].fn(argc - 1, argv + 1);
	}
	return cli_usage_error("unknown command '%s'", argv[1]);
}

/* Output that did not reach its destination fails the command, whatever
 * it concluded (stdio holds output in a buffer, so the failure often
 * shows only when it is flushed, here): one line on stderr, status 3. */
int
main(int argc, char **argv)
{
	struct tb_diag d;
	int rc = run(argc, argv);

	if (tb_file_close_stdout(&d) != TB_OK)
		return cli_stdout_error(d.detail);
	return rc;
}

int
cli_json_args(int argc, char **argv, void (*usage_fn)(FILE *), bool *json, const char *what)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	int c;

	*json = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage_fn(stdout);
			return -1;
		}
		if (c != 'j')
			return cli_usage_error("unknown option");
		*json = true;
	}
	if (argc - optind != 1)
		return cli_usage_error("exactly one %s expected", what);
	return EX_TB_OK;
}
