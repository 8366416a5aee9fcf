#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_exit.sh - a program whose standard output cannot be written
# exits 3 with one line on stderr, even when the command itself succeeded
# (issue 17: `tongban registry show > /dev/full` exited 0).  stdio holds
# output in a buffer, so a small output fails only when it is flushed at
# exit; a large one fails while it is written.  The same commands into a
# file exit 0, so /dev/full is what fails them.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
[ -w /dev/full ] || { echo "SKIP: no /dev/full"; exit 77; }
TBI="$TB_BUILDDIR/tongban-interop"
TBB="$TB_BUILDDIR/tongban-bench"

# full PROGRAM ARGS...: stdout to /dev/full must give exit 3 and one
# stderr line naming standard output; stdout to a file must give exit 0
full() {
	TB_LAST="$*"
	rc=0
	"$@" </dev/null >/dev/full 2>"$W/err" || rc=$?
	TB_CHECKS=$((TB_CHECKS + 1))
	[ "$rc" = 3 ] || tb_fail "$* > /dev/full" "exit 3" "exit $rc"
	tb_expect_err "cannot write to standard output"
	rc=0
	"$@" </dev/null >"$W/out" 2>"$W/err" || rc=$?
	TB_CHECKS=$((TB_CHECKS + 1))
	[ "$rc" = 0 ] || tb_fail "$* > file" "exit 0" "exit $rc"
	[ -s "$W/out" ] || tb_fail "$* > file" "some output" "none"
}

"$TB" dev-federation --dir "$W/fed" --members 320300,371300 --base-port 30100 \
	>"$W/devfed.out" 2>&1 || tb_fail "dev-federation" "exit 0" "$(tail -n 3 "$W/devfed.out")"
printf '{"b":[1,2.50],"a":"x"}' >"$W/doc.json"
"$TB" key gen --alg ed25519 --out "$W/k.pem" >/dev/null 2>&1 || tb_fail "key gen" "exit 0" "failed"
# a registry listing long enough to fail while it is written
"$TB" dev-federation --dir "$W/big" --members \
	320300,320700,321300,370400,370800,371300,371700,340600,341300,411400 --base-port 30200 \
	>"$W/devfed.out" 2>&1 || tb_fail "dev-federation (10 cities)" "exit 0" "$(tail -n 3 "$W/devfed.out")"

full "$TB" --help
full "$TB" --version
full "$TB" msg types
full "$TB" canon "$W/doc.json"
full "$TB" key pub "$W/k.pem"
full "$TB" registry show "$W/fed/registry.json"
full "$TB" registry show "$W/big/registry.json"
full "$TB" registry verify --trust "$W/fed/trust.json" "$W/fed/registry.json"
full "$TB" cert show "$W/fed/320300/node.crt"
full "$TB" route resolve --registry "$W/fed/registry.json" --service hukou.transfer --region 371300
full "$TBI" --help
full "$TBI" --list --suite vectors --vectors "$TB_SRCDIR/interop/vectors"
full "$TBB" --help
full "$TBB" --version

# a refusal that prints nothing keeps its own status
rc=0
"$TB" registry verify --trust "$W/fed/trust.json" "$W/doc.json" >/dev/null 2>"$W/err" || rc=$?
tb_expect_eq "a refusal with stdout fine: 1" 1 "$rc"
tb_done
