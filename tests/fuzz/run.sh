#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh - build the libFuzzer targets and run each for a while.
#
#   tests/fuzz/run.sh [SECONDS]        (default 60 per target)
#
# from the top of the source tree.  It configures a separate build
# directory, build-fuzz/, with
#   ./configure CC=clang --enable-fuzzers
# (clang with libFuzzer, e.g. Debian's clang-14 + libfuzzer-14-dev), builds
# fuzz_json, fuzz_env_open, fuzz_registry, fuzz_flow, fuzz_inflate and
# fuzz_trust, and runs each on a scratch copy of its seed corpus
# (tests/fuzz/corpus/json, env, registry, flow, inflate, trust), so the committed
# seeds stay small.  Crash inputs land in build-fuzz/artifacts/; the script
# exits non-zero when a target fails.  Set FUZZ_JOBS=N to run N workers.
# (`make check` replays the seed corpora without libFuzzer:
# tests/fuzz/replay_TARGET, tests/fuzz/replay.c.)
set -eu

secs=${1:-60}
src=$(cd "$(dirname "$0")/../.." && pwd)
bld="$src/build-fuzz"

[ -x "$src/configure" ] || (cd "$src" && ./bootstrap)
mkdir -p "$bld"
cd "$bld"
if [ ! -f Makefile ] || ! grep -q -- '--enable-fuzzers' config.status 2>/dev/null; then
	"$src/configure" CC=clang --enable-fuzzers >configure.log ||
		{ tail -n 20 configure.log; exit 1; }
fi
make -j"$(nproc 2>/dev/null || echo 2)" fuzz_json fuzz_env_open fuzz_registry fuzz_flow fuzz_inflate fuzz_trust >make.log 2>&1 ||
	{ tail -n 30 make.log; exit 1; }

mkdir -p artifacts
status=0
for t in json env_open registry flow inflate trust; do
	case $t in json) seeds=json ;; registry) seeds=registry ;; flow) seeds=flow ;; inflate) seeds=inflate ;; trust) seeds=trust ;; *) seeds=env ;; esac
	work="corpus-$t"
	mkdir -p "$work"
	echo "== fuzz_$t for ${secs}s"
	# shellcheck disable=SC2046
	./"fuzz_$t" -max_total_time="$secs" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
		$([ -n "${FUZZ_JOBS:-}" ] && echo "-fork=$FUZZ_JOBS") \
		-artifact_prefix=artifacts/ -print_final_stats=1 \
		"$work" "$src/tests/fuzz/corpus/$seeds" 2>"fuzz_$t.log" || status=1
	grep -E 'stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY|Done' \
		"fuzz_$t.log" || true
done
[ $status = 0 ] && echo "fuzzing: no failures" || echo "fuzzing: FAILURES, see $bld/artifacts"
exit $status
