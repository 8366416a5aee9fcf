#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/pkg_conf.sh - the example configuration installed as
# /etc/tongban/node.conf (systemd/node.conf.example) names every key of
# the node's key table, each once, and is exactly what
# tools/node-conf-example.sh makes of `tongban-node --help`: a key added to
# node/config.c without regenerating it fails here.  And with the
# required keys of a dev federation's member added, `tongban-node -n`
# accepts it (every value in it parses).  Starts no daemon; < 1 s.
set -u
B=${TB_BUILDDIR:?}
S=${TB_SRCDIR:-.}
EX=$S/systemd/node.conf.example
. "$S/tests/ports.sh"
BASE=$(tp_block 1) || exit 1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

sh "$S/tools/node-conf-example.sh" "$B/tongban-node" >"$W/gen" || fail "node-conf-example.sh"
diff -u "$EX" "$W/gen" >"$W/diff" ||
	fail "systemd/node.conf.example is stale: run tools/node-conf-example.sh $B/tongban-node > systemd/node.conf.example
$(cat "$W/diff")"
"$B/tongban-node" --help | sed -n '/^Configuration keys/,/^$/s/^  \([a-z_]*\) .*/\1/p' | sort >"$W/keys"
[ "$(wc -l <"$W/keys")" -ge 20 ] || fail "--help lists $(wc -l <"$W/keys") keys"
sed -n 's/^#\{0,1\}\([a-z_]*\) =.*/\1/p' "$EX" | sort >"$W/ex"
diff -u "$W/keys" "$W/ex" || fail "keys of --help and of node.conf.example differ"
# every line a comment, blank, or KEY = VALUE
bad=$(grep -v -e '^#' -e '^$' -e '^[a-z_]* = ' "$EX") && fail "lines that are not KEY = VALUE: $bad"

# the example with a member's required keys (its own paths) checks OK
"$B/tongban" dev-federation --dir "$W/fed" --members 320300 --base-port "$BASE" >/dev/null ||
	fail "dev-federation"
D=$W/fed/320300
{
	sed -e "s|^journal = .*|journal = $W/journal.db|" -e "s|^registry = .*|#&|" "$EX"
	grep -e '^member_id' -e '^listen' -e '^api ' "$D/node.conf"
	grep -e '^cert' -e '^key' -e '^root' -e '^trust' -e '^registry' -e '^api_token_file' \
		"$D/node.conf" | sed "s|= |= $D/|"
} >"$D/example.conf"
if ! "$B/tongban-node" -n -c "$D/example.conf" >"$W/out" 2>&1; then
	tp_clash "$W/out"
	fail "tongban-node -n on the example: $(cat "$W/out")"
fi
out=$(cat "$W/out")
echo "$out" | grep -q "configuration OK" || fail "no configuration OK: $out"
echo "PASS: node.conf.example up to date, $(wc -l <"$W/keys") keys, accepted by -n"
