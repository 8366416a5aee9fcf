#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/admin_guide.sh - docs/ADMIN.md is a test: every fenced ```sh block
# of the guide is run, in order, by one POSIX sh (`sh -eu`), as an
# administrator following it word for word would, on 127.0.0.1.
#
#   tests/admin_guide.sh [ADMIN.md]
#
# (Without an argument it first checks itself on three small guides.)
#
# - Blocks fenced ```sh are steps; anything else (```text, ```ini, ...)
#   is shown to the reader and not run.
# - The guide's first block sets its host-specific values with
#   `: "${VAR:=default}"`; this test sets them first: TB_HOME (where the
#   walk-through keeps its files) is a scratch dir, TB_PORT / TB_API_PORT
#   (first DTLS and API port) a free block (tests/ports.sh).
# - A line `# > TEXT` in a block is an expected output line: the block's
#   output (stdout and stderr of its commands) must contain a line
#   containing TEXT.
# - The test fails on the first command that fails (set -e), naming the
#   block and its line in the guide, with the block's output.
# - The complete node.conf of section 6 must name every key of
#   `tongban-node --help` (set or commented out) and no other.
# - The programs are the ones of this build tree ($TB_BUILDDIR first on
#   PATH).  Processes the guide starts and leaves running are stopped at
#   the end (and the guide is expected to stop its own nodes).
: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
. "$TB_SRCDIR/tests/ports.sh"
guide=${1:-$TB_SRCDIR/docs/ADMIN.md}
[ -f "$guide" ] || { echo "FAIL: no guide $guide" >&2; exit 1; }

# Without an argument, first the runner itself: a guide whose command
# fails, and one whose expected line is missing, must fail, naming the
# block; one that holds must pass.
if [ $# -eq 0 ]; then
	S=$(mktemp -d "${TMPDIR:-/tmp}/tbguide-self.XXXXXX") || exit 1
	fence='```'
	printf '%s\n' "# t" "${fence}sh" ': "${TB_HOME:=/nowhere}"' 'x=1' "$fence" "${fence}text" 'false' "$fence" \
		"${fence}sh" 'echo "x is $x"' '# > x is 1' "$fence" >"$S/good.md"
	sed 's/^echo "x is \$x"$/echo "x is $x"; false/' "$S/good.md" >"$S/fails.md"
	sed 's/^# > x is 1$/# > x is 2/' "$S/good.md" >"$S/missing.md"
	self() { # self GUIDE EXPECTED-STATUS TEXT
		_rc=0
		sh "$0" "$S/$1" >"$S/out" 2>&1 || _rc=$?
		if [ "$_rc" -ne "$2" ] || ! grep -q -F -- "$3" "$S/out"; then
			echo "FAIL: runner on $1: expected exit $2 and '$3', got exit $_rc:" >&2
			cat "$S/out" >&2
			rm -rf "$S"
			exit 1
		fi
	}
	self good.md 0 "PASS: 2 blocks run, 1 expected lines seen"
	self fails.md 1 "the block at line 10 (block 2 of 2) failed"
	self missing.md 1 "expected a line with: x is 2"
	rm -rf "$S"
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/tbguide.XXXXXX") || exit 1
cleanup() {
	# whatever the guide left running (its nodes), then the scratch dir
	for p in $(cat "$W/pids" 2>/dev/null); do
		kill "$p" 2>/dev/null
	done
	sleep 0.5
	for p in $(cat "$W/pids" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null
	done
	if [ -n "${KEEP:-}" ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

BASE=$(tp_block 20) || exit 1
abs() { (cd "$1" && pwd); }
BUILD=$(abs "$TB_BUILDDIR")

# split the guide: $W/blockN.sh, $W/expectN (expected lines), $W/lineN
# (where the block starts in the guide); $W/count
awk -v w="$W" '
	/^```/ {
		if (inblk) { inblk = 0; next }
		if ($0 ~ /^```sh[ \t]*$/) {
			inblk = 1; n++
			print NR + 1 > (w "/line" n); close(w "/line" n)
			printf "" > (w "/block" n ".sh"); printf "" > (w "/expect" n)
			next
		}
		inother = !inother; next
	}
	inblk {
		print > (w "/block" n ".sh")
		if ($0 ~ /^[ \t]*# > /) { sub(/^[ \t]*# > /, ""); print > (w "/expect" n) }
	}
	END { print n + 0 > (w "/count") }
' "$guide"
count=$(cat "$W/count")
[ "$count" -gt 0 ] || { echo "FAIL: no \`\`\`sh blocks in $guide" >&2; exit 1; }

# one script: each block with its output in $W/outN; the block being run
# in $W/cur; background jobs recorded for the cleanup
{
	echo 'set -eu'
	echo 'exec 3>&1 4>&2'
	i=1
	while [ "$i" -le "$count" ]; do
		echo "echo $i >'$W/cur'"
		echo "exec >'$W/out$i' 2>&1"
		cat "$W/block$i.sh"
		echo
		echo "exec >&3 2>&4"
		echo "jobs -p >>'$W/pids'"
		i=$((i + 1))
	done
	echo "echo done >'$W/cur'"
} >"$W/guide.sh"

mkdir -p "$W/home"
rc=0
(
	cd "$W/home" || exit 1
	PATH="$BUILD:$PATH" TB_HOME="$W/home" TB_HOST=127.0.0.1 \
		TB_PORT="$BASE" TB_API_PORT=$((BASE + 1000)) \
		timeout 600 sh "$W/guide.sh"
) || rc=$?

cur=$(cat "$W/cur" 2>/dev/null)
if [ "$cur" != done ]; then
	tp_clash "$W"/out* "$W"/home/*/node.log "$W"/home/*/*/node.log
	n=${cur:-1}
	{
		echo "FAIL: $guide: the block at line $(cat "$W/line$n") (block $n of $count) failed (exit $rc)"
		echo "--- the block"
		sed 's/^/    /' "$W/block$n.sh"
		echo "--- its output (last 40 lines)"
		tail -n 40 "$W/out$n" 2>/dev/null | sed 's/^/    /'
	} >&2
	exit 1
fi

checks=0
i=1
while [ "$i" -le "$count" ]; do
	while IFS= read -r want; do
		checks=$((checks + 1))
		if ! grep -q -F -- "$want" "$W/out$i"; then
			{
				echo "FAIL: $guide: the block at line $(cat "$W/line$i"): expected a line with: $want"
				echo "--- its output (last 40 lines)"
				tail -n 40 "$W/out$i" | sed 's/^/    /'
			} >&2
			exit 1
		fi
	done <"$W/expect$i"
	i=$((i + 1))
done
# The guide's complete node.conf (section 6) shows every key the node
# knows (set, or commented out at its default), and no other.
conf="$W/home/320300/node.conf"
if [ $# -eq 0 ]; then
	"$BUILD/tongban-node" --help | sed -n '/^Configuration keys/,/^$/p' |
		awk 'NR > 1 && /^  [a-z_]+ / { print $1 }' | sort >"$W/keys.help"
	sed -n 's/^#\{0,1\}\([a-z_]*\) =.*/\1/p' "$conf" | sort -u >"$W/keys.guide"
	if ! cmp -s "$W/keys.help" "$W/keys.guide"; then
		echo "FAIL: the guide's node.conf (section 6) and tongban-node --help differ in keys:" >&2
		diff "$W/keys.help" "$W/keys.guide" | grep '^[<>]' | sed 's/^</  only in --help:/; s/^>/  only in the guide:/' >&2
		exit 1
	fi
	checks=$((checks + 1))
fi
echo "PASS: $count blocks run, $checks expected lines seen"
