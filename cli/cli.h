/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - shared pieces of the `tongban` admin CLI, grouped by file.
 *
 * Exit codes (documented in man/tongban.1):
 *   0  success
 *   1  refused: the input is invalid or does not verify
 *   2  usage error
 *   3  I/O error (file missing, unreadable, unwritable)
 *   4  internal error (out of memory, crypto library failure)
 */
#ifndef TB_CLI_H
#define TB_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct tb_diag;

enum { EX_TB_OK = 0, EX_TB_REFUSED = 1, EX_TB_USAGE = 2, EX_TB_IO = 3, EX_TB_INTERNAL = 4 };

/* A subcommand: argv[0] is the subcommand's name. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* tongban.c */
extern const char *cli_cmd; /* "tongban msg open", for messages */
/* One line "tongban CMD: message" on stderr; returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line from a diagnostic; returns the exit code for its error. */
int cli_fail_diag(const struct tb_diag *d);
/* Standard output could not be written (why: the reason): one line on
 * stderr, printed once per run; returns EX_TB_IO.  main() checks
 * standard output after every command too. */
int cli_stdout_error(const char *why);
/* Usage error: one line plus a hint to --help; returns EX_TB_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses "[--json] FILE" (the show commands): *json set, optind at FILE;
 * EX_TB_OK, a usage error naming what (one WHAT expected), or -1 after
 * --help (usage printed). */
int cli_json_args(int argc, char **argv, void (*usage)(FILE *), bool *json, const char *what);
/* Reads a password file (first line); NULL path gives NULL.  On error
 * prints a message and returns NULL with *rc set. Caller frees (wipes). */
char *cli_read_pass(const char *path, int *rc);
void cli_free_pass(char *p);
/* The password for the private key in keypath: read from passf when
 * given; else, when the key is encrypted, asked for on the terminal
 * (echo off) if standard input is one, or refused with one line saying
 * how to give it (*rc EX_TB_USAGE).  NULL with *rc 0 for an unencrypted
 * (or unreadable: its loader reports that) key.  Caller frees with
 * cli_free_pass. */
char *cli_key_pass(const char *keypath, const char *passf, int *rc);
/* Asks question (a yes/no) on the terminal; true for an answer starting
 * with y or Y. */
bool cli_confirm(const char *question);
/* Writes s as a JSON string (quoted, escaped; UTF-8 passed through) to f. */
void cli_json_str(FILE *f, const char *s);
/* Parses a decimal int64; 0 on success. */
int cli_parse_i64(const char *s, long long *out);

/* cli_proto.c: canon, key, msg */
int cmd_canon(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_msg(int argc, char **argv);

/* cli_pki.c: ca, node, cert, csr (the federation PKI) */
int cmd_ca(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_csr(int argc, char **argv);

/* cli_fed.c: trust, registry, route, policy (the federation registry) */
int cmd_trust(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_policy(int argc, char **argv);

/* cli_node.c: talking to a running node */
int cmd_send(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_reply(int argc, char **argv);
int cmd_peers(int argc, char **argv);

/* cli_audit.c: the node's audit chain, its signed head, export */
int cmd_audit(int argc, char **argv);
/* One HTTP/1.0 request to the local API of the node configured in cfg
 * (body may be NULL); the answer's body is appended to out, its status
 * to *status.  An exit code; failures are reported (one line). */
struct tb_buf;
struct tb_config;
int cli_api_call(const struct tb_config *cfg, const char *method, const char *path,
                 const char *body, int *status, struct tb_buf *out);

/* cli_reginstall.c: `tongban registry install` (a subcommand of registry) */
int registry_install(int argc, char **argv);
void registry_install_usage(FILE *f);

/* cli_journal.c: backup and figures of a node's journal */
int cmd_journal(int argc, char **argv);

/* cli_flow.c: message-flow objects */
int cmd_licence(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* cli_devfed.c: a test federation in one command */
int cmd_devfed(int argc, char **argv);

#endif
