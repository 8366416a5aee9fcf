#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/help_man.sh - every option a program's --help names is in its man
# page, and every option its man page names is in its --help (issue 19:
# nine differed).  For tongban-node, tongban-interop and tongban-bench the
# whole --help is compared with the whole man page; for tongban, the
# program's own --help with the man page outside COMMANDS, and each
# command's --help (with its subcommands' --help, e.g. `registry install
# --help`) with the man page's entries for that command (the .TP entries
# of COMMANDS whose tag starts with the command's name).  Commands listed
# by `tongban --help` and commands with a man page entry must agree too.
#
# An option is a word `--name` or `-x` (one letter) not glued to a word
# before it (tongban-node, JOURNAL.audit-head are no options); roff's \-
# and font escapes are undone first.  An option right after another
# program's or command's name is a cross-reference, not one of this
# page's options ("tongban journal backup --node", "sshd -t"): left out.  Deliberate differences are in the
# allow-list below, each with its reason.  Runs in about a second.
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
MAN="$TB_SRCDIR/man"

# Deliberate differences, "PROGRAM-OR-COMMAND OPTION" per line:
#  - every tongban command answers --help and --version; tongban(1) says
#    so once (DESCRIPTION) instead of in every entry, and the usage lines
#    of the commands do not repeat it
ALLOW='tongban-cmd --help
tongban-cmd --version'

# opts SELF: the options named in standard input, one a line, sorted;
# SELF ("tongban-node", "tongban registry") is whose they are: an option
# right after another program's or command's name is left out
opts() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/ /g' -e 's/\\&//g' |
		awk -v self="$1" '{
			out = ""; s = $0
			while (match(s, /(tongban|sshd)( [a-z][a-z-]*)* --?[A-Za-z][A-Za-z0-9-]*/)) {
				m = substr(s, RSTART, RLENGTH)
				glued = RSTART > 1 && substr(s, RSTART - 1, 1) ~ /[A-Za-z0-9_-]/
				out = out substr(s, 1, RSTART - 1) ((glued || index(m, self " ") == 1) ? m : " ")
				s = substr(s, RSTART + RLENGTH)
			}
			print out s
		}' |
		grep -oE '(^|[^A-Za-z0-9_./-])--?[A-Za-z][A-Za-z0-9-]*' |
		sed 's/^[^-]*//' | grep -E '^(--[a-z][a-z0-9-]*[a-z0-9]|-[A-Za-z])$' | sort -u
}

# allowed WHO OPTION: true when the difference is in ALLOW
allowed() {
	printf '%s\n' "$ALLOW" | grep -qxF "$1 $2"
}

BAD=0
FOUND=0 # options found in --help texts: the extraction works
# compare WHO HELPFILE MANFILE ALLOWKEY: each side's options in the other
compare() {
	opts "$1" <"$2" >"$W/h.opts"
	opts "$1" <"$3" >"$W/m.opts"
	TB_CHECKS=$((TB_CHECKS + 1))
	for o in $(comm -23 "$W/h.opts" "$W/m.opts"); do
		allowed "$4" "$o" && continue
		echo "FAIL: $1: $o is in --help but not in the man page" >&2
		BAD=$((BAD + 1))
	done
	for o in $(comm -13 "$W/h.opts" "$W/m.opts"); do
		allowed "$4" "$o" && continue
		echo "FAIL: $1: $o is in the man page but not in --help" >&2
		BAD=$((BAD + 1))
	done
	FOUND=$((FOUND + $(wc -l <"$W/h.opts")))
}

# help PROGRAM [ARGS...]: its --help into $W/help (exit 0 expected)
help() {
	rc=0
	"$@" --help </dev/null >"$W/help" 2>"$W/err" || rc=$?
	[ "$rc" = 0 ] || { echo "FAIL: $* --help exited $rc" >&2; BAD=$((BAD + 1)); }
}

# ---- the other programs: their whole --help against their whole man page
for p in tongban-node:tongban-node.8 tongban-interop:tongban-interop.1 \
	tongban-bench:tongban-bench.1; do
	prog=${p%%:*}
	[ -f "$MAN/${p#*:}" ] || { echo "FAIL: no man page ${p#*:}" >&2; BAD=$((BAD + 1)); continue; }
	help "$TB_BUILDDIR/$prog"
	compare "$prog" "$W/help" "$MAN/${p#*:}" "$prog"
	# a --help text goes through printf: the man page's "%m" (a member
	# id in a value) printed as strerror's text (tongban-bench did)
	if grep -q '%m' "$MAN/${p#*:}"; then
		TB_CHECKS=$((TB_CHECKS + 1))
		grep -q '%m' "$W/help" || {
			echo "FAIL: $prog --help lost the man page's %m: $(grep -m1 -o '.\{20\}No such file.\{10\}' "$W/help")" >&2
			BAD=$((BAD + 1))
		}
	fi
done

# ---- tongban: the commands it lists
help "$TB"
cp "$W/help" "$W/tongban.help"
cmds=$(sed -n '/^Commands:/,/^$/p' "$W/tongban.help" | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || tb_fail "tongban --help" "a list of commands" "none"

# the man page split by command: "CMD<TAB>line" (CMD "tongban" outside
# COMMANDS, "?WORD" for an entry of COMMANDS naming no command)
awk -v cmds="$cmds" '
BEGIN { n = split(cmds, c, /[ \n]+/); for (i = 1; i <= n; i++) known[c[i]] = 1; cur = "tongban" }
/^\.SH/ { cur = ($2 == "COMMANDS") ? "" : "tongban"; tp = 0; incmds = ($2 == "COMMANDS"); next }
/^\.SS/ { cur = ""; next }
/^\.TP/ { tp = incmds; next }
tp {
	tp = 0; t = $0
	gsub(/\\f[BIRP]|"/, "", t); sub(/^\.[BIR]+[ \t]+/, "", t); split(t, w, /[ \t]+/)
	gsub(/\\-/, "-", w[1])
	cur = (w[1] in known) ? w[1] : "?" w[1]
}
cur != "" { print cur "\t" $0 }
' "$MAN/tongban.1" >"$W/man.split"

# the program itself
grep '^tongban	' "$W/man.split" | cut -f2- >"$W/man.tongban"
compare "tongban" "$W/tongban.help" "$W/man.tongban" "tongban"

for w in $(cut -f1 "$W/man.split" | sort -u); do
	case "$w" in
	\?*)
		echo "FAIL: tongban(1) has an entry for '${w#?}', which tongban --help does not list" >&2
		BAD=$((BAD + 1))
		;;
	esac
done

for c in $cmds; do
	grep "^$c	" "$W/man.split" | cut -f2- >"$W/man.cmd"
	TB_CHECKS=$((TB_CHECKS + 1))
	if [ ! -s "$W/man.cmd" ]; then
		echo "FAIL: tongban $c has no entry in tongban(1)" >&2
		BAD=$((BAD + 1))
		continue
	fi
	help "$TB" "$c"
	cp "$W/help" "$W/cmd.help"
	# subcommands: "tongban CMD SUB" in its usage; their own --help too
	for s in $(grep -oE "tongban $c [a-z][a-z-]*" "$W/cmd.help" | awk '{ print $3 }' | sort -u); do
		rc=0
		"$TB" "$c" "$s" --help </dev/null >"$W/sub.help" 2>/dev/null || rc=$?
		[ "$rc" = 0 ] && cat "$W/sub.help" >>"$W/cmd.help"
	done
	compare "tongban $c" "$W/cmd.help" "$W/man.cmd" "tongban-cmd"
done

[ "$FOUND" -ge 100 ] || { echo "FAIL: only $FOUND options found in the --help texts" >&2; BAD=$((BAD + 1)); }
if [ "$BAD" -gt 0 ]; then
	echo "FAIL: $BAD differences between --help and the man pages" >&2
	exit 1
fi
echo "ok: $TB_CHECKS comparisons of $FOUND options, --help and the man pages name the same options"
