#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_audit.sh - bad input to `tongban audit verify|show|export`
# (and to verify --export FILE)
# gets one clear line on stderr and a non-zero exit (2 usage, 3 I/O,
# 1 refused); output that cannot be written exits 3 (as cli_exit.sh;
# export writes nothing for an empty journal, node_audit_head.sh exports).
# The journal is made with the sqlite3 shell: an empty schema-3 journal
# and one whose head file is not a head.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
command -v sqlite3 >/dev/null 2>&1 || { echo "SKIP: no sqlite3 shell"; exit 77; }
J="$W/journal.db"
sqlite3 "$J" "PRAGMA application_id = 1413630513; PRAGMA user_version = 3;
	CREATE TABLE audit (seq INTEGER PRIMARY KEY, prev TEXT NOT NULL, dir TEXT NOT NULL,
	msgid TEXT NOT NULL, digest TEXT NOT NULL, peer TEXT NOT NULL, at INTEGER NOT NULL,
	event TEXT NOT NULL, hash TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');" ||
	tb_fail "sqlite3" "a journal" "none"

# usage errors: exit 2, one line
tb_run 2 audit;                                  tb_expect_err "audit needs verify, show or export"
tb_run 2 audit check --journal "$J";             tb_expect_err "not 'check'"
tb_run 2 audit verify;                           tb_expect_err "give one of --node CONFIG and --journal FILE"
tb_run 2 audit show --journal "$J" --node x.conf; tb_expect_err "give one of --node CONFIG and --journal FILE"
tb_run 2 audit show --journal "$J" --since 0;    tb_expect_err "--since needs an entry number"
tb_run 2 audit show --journal "$J" --since x;    tb_expect_err "--since needs an entry number"
tb_run 2 audit show --journal "$J" --bogus;      tb_expect_err "unknown option or missing value: '--bogus'"
tb_run 2 audit show --journal "$J" extra;        tb_expect_err "unexpected argument 'extra'"
tb_run 2 audit show --journal "$J" --output f;   tb_expect_err "show takes"
tb_run 2 audit export --journal "$J" --json;     tb_expect_err "export takes"
tb_run 2 audit verify --journal "$J" --json;     tb_expect_err "verify takes"
tb_run 2 audit verify --journal "$J" --pub a --registry b; tb_expect_err "not both"
tb_run 2 audit verify --export x --journal "$J";  tb_expect_err "--export FILE takes no --node, --journal or --head"
tb_run 2 audit verify --export x --head h;       tb_expect_err "--export FILE takes no"
tb_run 2 audit verify --export x --pub a --registry b; tb_expect_err "not both"
tb_run 2 audit show --export x;                  tb_expect_err "--export FILE is for verify"
tb_run 3 audit verify --export "$W/none.jsonl";  tb_expect_err "none.jsonl"
printf 'not json\n' >"$W/x.jsonl"
tb_run 1 audit verify --export "$W/x.jsonl";     tb_expect_err "audit.broken: line 1 is not a JSON object"
printf '{"seq":1}' >"$W/x.jsonl"
tb_run 1 audit verify --export "$W/x.jsonl";     tb_expect_err "the last line has no LF"
printf '{"seq":1}\n' >"$W/x.jsonl"
tb_run 1 audit verify --export "$W/x.jsonl";     tb_expect_err "audit.broken: first broken entry 1: bad member object (10 members)"
printf '' >"$W/x.jsonl"
tb_run 1 audit verify --export "$W/x.jsonl";     tb_expect_err "audit.no-head"
# files that are not there or not journals: exit 3 or 1, one line
tb_run 3 audit verify --journal "$W/none.db";    tb_expect_err "none.db"
tb_run 3 audit show --node "$W/none.conf";       tb_expect_err "none.conf"
echo "not sqlite" >"$W/text.db"
tb_run 1 audit show --journal "$W/text.db";      tb_expect_err "journal.corrupt"
tb_run 3 audit export --journal "$J" --output "$W/no/such/dir/x"; tb_expect_err "no/such/dir"
# an empty chain with no head is fine; a head that is not one is refused
tb_run 0 audit verify --journal "$J";            tb_expect_out_has "ok: 0 entries"
echo '{"seq":1}' >"$J.audit-head"
tb_run 1 audit verify --journal "$J";            tb_expect_err "audit.bad-head"
tb_run 1 audit export --journal "$J";            tb_expect_err "audit.bad-head"
rm -f "$J.audit-head"
# help
tb_run 0 audit --help;                           tb_expect_out_has "tongban audit export"
tb_run 0 audit show --help;                      tb_expect_out_has "tongban audit show"
# output that cannot be written
if [ -w /dev/full ]; then
	for sub in show; do
		rc=0
		"$TB" audit $sub --journal "$J" >/dev/full 2>"$W/err" || rc=$?
		TB_LAST="tongban audit $sub > /dev/full"
		tb_expect_eq "$TB_LAST: exit" 3 "$rc"
		tb_expect_err "cannot write to standard output"
	done
fi
tb_done
