# SPDX-License-Identifier: Apache-2.0
# tests/lib.sh - helpers shared by the scripted CLI tests (POSIX sh).
#
# Usage in a test script:
#   . "${TB_SRCDIR:-.}/tests/lib.sh"
#   tb_init                      # $TB (the binary), $W (scratch dir, removed on exit)
#   tb_run 0 canon "$f"          # run $TB with args; expect exit code 0
#   tb_expect_err json.syntax    # stderr mentions the reason token (and is one line)
#   tb_expect_out_file want.json # stdout is byte-identical to a file
# Every failed check prints what was expected and what happened, then
# exits 1.  Output of the last run: $W/out, $W/err, exit code $TB_RC.

: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
TB_CHECKS=0

tb_init() {
	TB="$TB_BUILDDIR/tongban"
	[ -x "$TB" ] || { echo "FAIL: $TB is not built" >&2; exit 1; }
	W=$(mktemp -d "${TMPDIR:-/tmp}/tbtest.XXXXXX") || exit 1
	trap 'rm -rf "$W"' EXIT
	trap 'exit 1' INT TERM HUP
}

# tb_fail WHAT EXPECTED GOT
tb_fail() {
	{
		echo "FAIL: $1"
		echo "  expected: $2"
		echo "  got:      $3"
		if [ -s "$W/err" ]; then echo "  stderr:"; sed 's/^/    /' "$W/err" | head -n 5; fi
	} >&2
	exit 1
}

# tb_run EXPECTED_RC ARGS... ; stdin from $TB_STDIN when set (else /dev/null)
tb_run() {
	_want=$1
	shift
	TB_LAST="tongban $*"
	TB_RC=0
	"$TB" "$@" <"${TB_STDIN:-/dev/null}" >"$W/out" 2>"$W/err" || TB_RC=$?
	TB_CHECKS=$((TB_CHECKS + 1))
	if [ "$TB_RC" -ge 126 ]; then
		tb_fail "$TB_LAST crashed" "exit $_want" "exit $TB_RC (signal?)"
	fi
	[ "$TB_RC" = "$_want" ] || tb_fail "$TB_LAST" "exit $_want" "exit $TB_RC"
}

# tb_expect_err TOKEN: stderr is exactly one line and contains TOKEN
tb_expect_err() {
	_lines=$(wc -l <"$W/err" | tr -d ' ')
	[ "$_lines" = 1 ] || tb_fail "$TB_LAST: one line on stderr" "1 line" "$_lines lines"
	grep -F -q -- "$1" "$W/err" || tb_fail "$TB_LAST: reason on stderr" "$1" "$(cat "$W/err")"
}

# tb_expect_err_has TEXT: stderr contains TEXT (any number of lines)
tb_expect_err_has() {
	grep -F -q -- "$1" "$W/err" || tb_fail "$TB_LAST: stderr" "contains '$1'" "$(cat "$W/err")"
}

tb_expect_out_file() {
	cmp -s "$W/out" "$1" || tb_fail "$TB_LAST: stdout" "bytes of $1" "$(head -c 300 "$W/out")"
}

tb_expect_out_has() {
	grep -F -q -- "$1" "$W/out" || tb_fail "$TB_LAST: stdout" "contains '$1'" "$(head -c 300 "$W/out")"
}

tb_expect_out_empty() {
	[ ! -s "$W/out" ] || tb_fail "$TB_LAST: stdout" "nothing" "$(head -c 300 "$W/out")"
}

# tb_expect_eq WHAT EXPECTED GOT
tb_expect_eq() {
	TB_CHECKS=$((TB_CHECKS + 1))
	[ "$2" = "$3" ] || tb_fail "$1" "$2" "$3"
}

tb_mode() { stat -c %a "$1"; }

tb_done() { echo "PASS: $TB_CHECKS checks"; }
