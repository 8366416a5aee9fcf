#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tools/spdx.sh [--check] [DIR] - the SPDX licence line in every source
# file of the tree at DIR (default: the tree this script is in): C and
# headers, shell, Python, JavaScript, the autotools files, debian/rules
# and the maintainer scripts.  Without --check, adds the line where it is
# missing (first line, or after a #! line) and lists the files changed;
# run it again after adding files: it changes nothing twice.  --check
# changes nothing, lists the files without the line and exits 1 if any
# (tests/pkg_spdx.sh runs it in make check).
# Files: git's (tracked and untracked, not ignored) in a git work tree,
# else every file below DIR but autotools' output and build*/.  Data
# (fuzz corpora, vectors) and documents are not source and are skipped.
set -eu
check=no
[ "${1:-}" = --check ] && { check=yes; shift; }
DIR=${1:-$(dirname "$0")/..}
cd "$DIR"
LINE='SPDX-License-Identifier: Apache-2.0'

files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard
	else
		# a tarball's tree: its build directories (distcheck's _build and _inst,
		# an in-tree configure's config.status and libtool) are not sources
		find . -type f ! -path './build*' ! -path './_build/*' ! -path './_inst/*' ! -path './autom4te.cache/*' \
			! -path './build-aux/*' ! -path './m4/*' ! -path './.git/*' ! -path './configure' \
			! -path './config.status' ! -path './libtool' ! -path './tongban-*/*' |
			sed 's|^\./||'
	fi
}

# the comment that carries the line in FILE, or nothing: not source
style() {
	case $1 in
	tests/fuzz/corpus/*) return 0 ;;
	interop/vectors/*.js | interop/vectors/*/*.js) echo '//' ;;
	interop/vectors/*) return 0 ;;
	*.c | *.h) echo '/*' ;;
	*.sh | *.py | *.am | configure.ac | bootstrap | .ci/run | debian/rules | \
		debian/*.postinst | debian/*.postrm | debian/*.preinst | debian/*.prerm | \
		systemd/*.in | systemd/*.sysusers | systemd/*.tmpfiles) echo '#' ;;
	*.js) echo '//' ;;
	*) # other executable scripts
		if head -c 2 "$1" 2>/dev/null | grep -q '^#!'; then echo '#'; fi ;;
	esac
	return 0
}

missing=0
for f in $(files); do
	[ -f "$f" ] || continue
	st=$(style "$f")
	[ -n "$st" ] || continue
	head -n 3 "$f" | grep -q "$LINE" && continue
	if [ $check = yes ]; then
		echo "no SPDX line: $f"
		missing=$((missing + 1))
		continue
	fi
	case $st in
	'/*') text="/* $LINE */" ;;
	'//') text="// $LINE" ;;
	*) text="# $LINE" ;;
	esac
	tmp=$f.spdx.$$
	if head -n 1 "$f" | grep -q '^#!'; then
		{ head -n 1 "$f"; echo "$text"; tail -n +2 "$f"; } >"$tmp"
	else
		{ echo "$text"; cat "$f"; } >"$tmp"
	fi
	chmod "$(stat -c %a "$f")" "$tmp"
	mv "$tmp" "$f"
	echo "added: $f"
done
[ $check = no ] || [ $missing -eq 0 ] || { echo "$missing file(s) without \"$LINE\" (run tools/spdx.sh)"; exit 1; }
exit 0
