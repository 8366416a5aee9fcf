#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# quickstart.sh - install what is missing (Debian 12), build, and run.
#
#   ./quickstart.sh demo         build, then the envelope walk-through and the Huaihai
#                                federation demo (14 nodes on 127.0.0.1): the main job
#   ./quickstart.sh test         build and run the whole test suite (make check)
#   ./quickstart.sh sanitizers   the test suite again, built with ASan+UBSan
#   ./quickstart.sh tsan         the node's thread-heavy tests (TSAN_TESTS) built with
#                                ThreadSanitizer (TSAN_ALL=1: the whole suite)
#   ./quickstart.sh distcheck    make distcheck (the tarball builds, installs and passes
#                                DISTCHECK_TESTS, a quick part of the suite)
#   ./quickstart.sh package      build the .debs, install them, run two members as
#                                user tongban, upgrade, purge (.ci/package.sh):
#                                INSTALLS SYSTEM-WIDE, for a fresh CI machine only
#
# Needs root (or sudo) only to install packages.  Builds go to build/,
# build-san/, build-tsan/ and build-dist/ inside the source tree.
set -eu

cd "$(dirname "$0")"
SRC=$(pwd)
mode=${1:-demo}

PKGS="gcc make autoconf automake libtool pkg-config
libgnutls28-dev libssl-dev gnutls-bin libcoap3-dev libcoap3-bin libevent-dev libcjson-dev
libsqlite3-dev sqlite3 libpq-dev postgresql-15 zlib1g-dev libdeflate-dev libcmocka-dev libsystemd-dev openssl valgrind procps faketime prometheus curl"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "quickstart: installing:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ -x configure ] || ./bootstrap

build() { # build DIR [configure args...]
	dir=$1
	shift
	mkdir -p "$dir"
	cd "$dir"
	if [ ! -f Makefile ] || [ "$SRC/configure" -nt Makefile ]; then
		"$SRC/configure" -q --enable-werror "$@"
	fi
	make -s -j"$(nproc)"
}

show_failures() { # the end of each failed test's log
	for f in $(grep -l '^:test-result: \(FAIL\|ERROR\)' tests/*.trs 2>/dev/null); do
		echo "==== ${f%.trs}.log"
		tail -n 60 "${f%.trs}.log"
	done
}

case "$mode" in
demo)
	build build
	"$SRC/interop/walkthrough.sh" "$SRC/build"
	exec "$SRC/build/tongban" demo
	;;
test)
	build build
	make -s -j"$(nproc)" check || { show_failures; exit 1; }
	;;
sanitizers)
	build build-san --enable-sanitizers
	make -s -j"$(nproc)" check || { show_failures; exit 1; }
	;;
tsan)
	# the node's threads (ingest, checkpoints) under
	# ThreadSanitizer; a report stops the process (exit 66) and fails
	# the test, and node tests also look for reports in the node logs
	build build-tsan --enable-tsan
	# the tests of TSAN_TESTS (Makefile.am), to keep CI within its time;
	# TSAN_ALL=1 runs the whole suite
	tests='TESTS=$(TSAN_TESTS)'
	[ -z "${TSAN_ALL:-}" ] || tests=
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" \
		make -s -j"$(nproc)" check ${tests:+"$tests"} || { show_failures; exit 1; }
	;;
distcheck)
	build build-dist
	# the tarball's own run: DISTCHECK_TESTS (Makefile.am); the whole
	# suite is what `test`, `sanitizers` and `tsan` run
	make -s -j"$(nproc)" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror 'TESTS=$(DISTCHECK_TESTS)'
	;;
package)
	exec bash "$SRC/.ci/package.sh"
	;;
*)
	echo "usage: $0 demo|test|sanitizers|tsan|distcheck|package" >&2
	exit 2
	;;
esac
