#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/pkg_spdx.sh - every source file of the tree carries the SPDX
# line (tools/spdx.sh --check): a new file without it fails here.  First
# tools/spdx.sh itself on a scratch tree: --check fails on a C file and
# a #! script without the line, the fix adds it (after the #! line),
# then --check passes and a second run changes nothing.  < 2 s.
set -u
S=${TB_SRCDIR:-.}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$W/t/node" "$W/t/tests/fuzz/corpus/json"
printf 'int x;\n' >"$W/t/node/a.c"
printf '#!/bin/sh\necho hi\n' >"$W/t/tests/b.sh"
printf '{}\n' >"$W/t/tests/fuzz/corpus/json/c"
out=$(sh "$S/tools/spdx.sh" --check "$W/t") && fail "--check passed a tree without the line: $out"
echo "$out" | grep -q 'no SPDX line: node/a.c' || fail "--check did not name node/a.c: $out"
echo "$out" | grep -q 'no SPDX line: tests/b.sh' || fail "--check did not name tests/b.sh: $out"
echo "$out" | grep -q corpus && fail "--check named a fuzz corpus file: $out"
sh "$S/tools/spdx.sh" "$W/t" >/dev/null || fail "tools/spdx.sh (fix) failed"
[ "$(head -n 1 "$W/t/node/a.c")" = "/* SPDX-License-Identifier: Apache-2.0 */" ] || fail "a.c: $(head -n 1 "$W/t/node/a.c")"
[ "$(head -n 2 "$W/t/tests/b.sh" | tr '\n' '|')" = "#!/bin/sh|# SPDX-License-Identifier: Apache-2.0|" ] ||
	fail "b.sh: $(head -n 2 "$W/t/tests/b.sh")"
sh "$S/tools/spdx.sh" --check "$W/t" >/dev/null || fail "--check after the fix"
[ -z "$(sh "$S/tools/spdx.sh" "$W/t")" ] || fail "a second run changed files"
# outside git (a tarball: make distcheck on a machine without git) the
# build directories' generated scripts are not sources: the fresh CI's
# distcheck failed on _build/sub/config.status
mkdir -p "$W/t/_build/sub"
printf '#! /bin/sh\necho\n' >"$W/t/_build/sub/config.status"
printf '#! /bin/sh\necho\n' >"$W/t/libtool"
out=$(sh "$S/tools/spdx.sh" --check "$W/t") || fail "--check named a build directory's file: $out"

# the project's own tree
out=$(sh "$S/tools/spdx.sh" --check "$S") || fail "source files without the SPDX line:
$out"
echo "PASS: every source file has the SPDX line"
