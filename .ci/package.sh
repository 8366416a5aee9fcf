#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# .ci/package.sh - the package test (`./quickstart.sh package`, a CI stage
# of .ci/run).  INSTALLS PACKAGES SYSTEM-WIDE and adds the user tongban:
# run it on a fresh Debian 12 machine or chroot as root, never in make
# check.  No systemd is needed (there is none in the CI chroot): the
# nodes run as user tongban through setpriv (-n through runuser).
#  1. builds the .debs from a copy of the tree (DEB_BUILD_OPTIONS=nocheck:
#     the suite has stages of its own), lintian: no errors;
#  2. apt-get install ./*.deb (dependencies by apt), checks the installed
#     paths, the user, the state directory, the conffile, the units
#     (systemd-analyze verify; security: exposure <= 2.0; systemd is
#     installed for that, not run);
#  3. enrols two members with the installed tongban (root CA, two province
#     CAs as registry authorities, 2 of 2, node init, ca issue, registry
#     add/sign/verify), `tongban-node -n` on each as user tongban, runs
#     both as user tongban, exchanges a message;
#  4. stops the receiver, queues a message at the sender, stops it (as
#     systemd stops a node for an upgrade), upgrades to a package of a
#     higher version (the changelog bumped, rebuilt with -nc: dh's binary
#     stages again, install, maintainer scripts, control files, from the
#     objects already compiled: the upgrade path is what is tested, and a
#     second compile would double the stage's time), checks the edited
#     conffile and the journal kept, starts both, sees it delivered;
#  5. tongban-interop runs the installed vectors (the source tree gone);
#  6. purge removes the state, the user and the conffile.
# Fixed ports 25684/25685 (DTLS) and 28080/28081 (API): a fresh machine.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "package: run as root (installs packages)" >&2; exit 2; }
if getent passwd tongban >/dev/null || dpkg-query -W tongban-node >/dev/null 2>&1; then
	echo "package: tongban-node or the user tongban is present already: a fresh machine only" >&2
	exit 2
fi
T=$(mktemp -d /tmp/tongban-pkg.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
step() { printf '\n== package: %s (%s s)\n' "$*" "$SECONDS"; }
fail() { echo "package: FAIL: $*" >&2; for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }

step "build dependencies"
# man-db (a dependency of debhelper) would rebuild its index at every
# later install: not on a CI machine
echo 'man-db man-db/auto-update boolean false' | debconf-set-selections
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	build-essential debhelper lintian dpkg-dev >/dev/null
# systemd-analyze for the units (systemd is installed, not running)
command -v systemd-analyze >/dev/null ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null

step "dpkg-buildpackage -us -uc -b (nocheck)"
mkdir "$T/tongban"
tar -C "$SRC" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$T/tongban" -xf -
(cd "$T/tongban" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1) || fail "dpkg-buildpackage"
V1=$(dpkg-parsechangelog -l "$T/tongban/debian/changelog" -S Version)
ls "$T"/*.deb

step "lintian (no errors)"
lintian --fail-on error "$T/tongban_${V1}_amd64.changes" || fail "lintian reports errors"

step "apt-get install ./*.deb"
(cd "$T" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	"./tongban-node_${V1}_amd64.deb" "./tongban_${V1}_amd64.deb" \
	"./tongban-tools_${V1}_amd64.deb" >"$T/apt.log" 2>&1) || fail "apt-get install"

step "installed paths"
for f in /usr/sbin/tongban-node /usr/bin/tongban /usr/bin/tongban-interop /usr/bin/tongban-bench; do
	[ -x "$f" ] || fail "$f missing"
done
for f in /usr/share/man/man8/tongban-node.8.gz /usr/share/man/man1/tongban.1.gz \
	/usr/share/man/man1/tongban-interop.1.gz /usr/share/man/man1/tongban-bench.1.gz \
	/lib/systemd/system/tongban-node.service /lib/systemd/system/tongban-node@.service \
	/usr/lib/sysusers.d/tongban.conf /usr/lib/tmpfiles.d/tongban.conf /etc/tongban/node.conf \
	/usr/share/doc/tongban-node/copyright /usr/share/doc/tongban/README.md.gz \
	/usr/share/tongban/vectors/README.md /usr/share/tongban/demo.sh; do
	[ -f "$f" ] || fail "$f missing"
done
ls /usr/share/doc/tongban-node/ADMIN.md* /usr/share/doc/tongban-node/PROTOCOL.md* \
	/usr/share/doc/tongban-tools/INTEROP.md* /usr/share/doc/tongban-tools/PERFORMANCE.md* >/dev/null ||
	fail "documents missing"
[ ! -e /usr/bin/tongban-node ] && [ ! -e /usr/local/bin/tongban ] || fail "programs in the wrong place"
dpkg-query -W -f='${Conffiles}\n' tongban-node | grep -q ' /etc/tongban/node.conf ' ||
	fail "/etc/tongban/node.conf is not a conffile"
grep -q '^journal = /var/lib/tongban/journal.db$' /etc/tongban/node.conf || fail "node.conf is not the example"
getent passwd tongban >/dev/null || fail "no user tongban"
[ "$(stat -c '%U:%G %a' /var/lib/tongban)" = "tongban:tongban 700" ] ||
	fail "/var/lib/tongban is $(stat -c '%U:%G %a' /var/lib/tongban)"
grep -q '^ExecStart=/usr/sbin/tongban-node --config /etc/tongban/node.conf$' \
	/lib/systemd/system/tongban-node.service || fail "unit's ExecStart"
systemd-analyze verify --man=no tongban-node.service tongban-node@320000.service ||
	fail "systemd-analyze verify"
for u in tongban-node.service tongban-node@320000.service; do
	x=$(systemd-analyze security --offline=yes "/lib/systemd/system/${u/@320000/@}" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	echo "systemd-analyze security $u: $x"
	awk -v x="$x" 'BEGIN { exit !(x != "" && x <= 2.0) }' || fail "exposure of $u: '$x', not <= 2.0"
done
tongban-node --version

step "enrol two members with the installed tongban"
mkdir "$T/ca"
cd "$T/ca"
tongban ca init --dir root --name "Package Test Root" >/dev/null
YES=""
tongban ca issue --help 2>&1 | grep -q -- '--yes' && YES=--yes
for hub in 320000:Jiangsu 370000:Shandong; do
	id=${hub%%:*}
	tongban ca init --dir "ca-$id" --name "${hub#*:} Province CA" --id "$id" --parent root >/dev/null
done
tongban trust new --root root/ca.crt --authority ca-320000/ca.crt --authority ca-370000/ca.crt \
	--threshold 2 --federation pkgtest --out trust.json >/dev/null
tongban registry new --federation pkgtest --out reg.json --valid-days 90 >/dev/null
i=0
for hub in 320000:Jiangsu 370000:Shandong; do
	id=${hub%%:*}
	tongban node init --dir "/etc/tongban/$id" --id "$id" --name "${hub#*:}" --org pkgtest \
		--endpoint "coaps://127.0.0.1:$((25684 + i))" >/dev/null
	tongban ca issue --dir "ca-$id" --csr "/etc/tongban/$id/node.csr" --out "/etc/tongban/$id/node.crt" \
		$YES >/dev/null
	cat "/etc/tongban/$id/node.crt" "ca-$id/ca.crt" >"/etc/tongban/$id/node-chain.pem"
	tongban registry add reg.json --cert "/etc/tongban/$id/node-chain.pem" --trust trust.json --role hub \
		--endpoint "coaps://127.0.0.1:$((25684 + i))" --service "hukou.transfer=${id%0000}" >/dev/null
	i=$((i + 1))
done
tongban registry policy reg.json --default allow >/dev/null
tongban registry sign reg.json --key ca-320000/ca.key --cert ca-320000/ca.crt --trust trust.json >/dev/null
tongban registry sign reg.json --key ca-370000/ca.key --cert ca-370000/ca.crt --trust trust.json >/dev/null
tongban registry verify reg.json --trust trust.json
cp root/ca.crt /etc/tongban/root.crt
cp trust.json /etc/tongban/trust.json
i=0
for id in 320000 370000; do
	install -d -o tongban -g tongban -m 0700 "/var/lib/tongban/$id"
	install -o tongban -g tongban -m 0600 reg.json "/var/lib/tongban/$id/registry.json"
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"/etc/tongban/$id/api.token"
	cat >"/etc/tongban/$id.conf" <<CONF
# member $id (tongban-node@$id.service)
member_id = $id
listen = 127.0.0.1:$((25684 + i))
cert = $id/node-chain.pem
key = $id/node.key
root = root.crt
trust = trust.json
registry = /var/lib/tongban/$id/registry.json
journal = /var/lib/tongban/$id/journal.db
api = 127.0.0.1:$((28080 + i))
api_token_file = $id/api.token
CONF
	chown -R tongban:tongban "/etc/tongban/$id"
	chmod 0600 "/etc/tongban/$id/api.token" "/etc/tongban/$id/node.key"
	i=$((i + 1))
done
cd /

step "tongban-node -n on each, as user tongban"
for id in 320000 370000; do
	runuser -u tongban -- tongban-node -n -c "/etc/tongban/$id.conf" || fail "tongban-node -n ($id)"
done

# start ID: the installed daemon as user tongban (umask 077 as the unit's)
declare -A PID
start() {
	local id=$1 port end
	port=$(sed -n 's/^api = 127.0.0.1://p' "/etc/tongban/$id.conf")
	(umask 077 && exec setpriv --reuid=tongban --regid=tongban --init-groups \
		/usr/sbin/tongban-node -c "/etc/tongban/$id.conf") \
		>>"$T/$id.log" 2>&1 &
	PID[$id]=$!
	PIDS+=($!)
	end=$((SECONDS + 30))
	until healthy "$port"; do
		kill -0 "${PID[$id]}" 2>/dev/null || fail "node $id exited at start"
		[ "$SECONDS" -lt "$end" ] || fail "node $id not healthy within 30 s"
		sleep 0.2
	done
}
healthy() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
	local ok=1
	head -n 1 <&3 | grep -q '^HTTP/1\.[01] 200' && ok=0
	exec 3>&-
	return $ok
}
stop() {
	local p=${PID[$1]} n
	kill -TERM "$p"
	for n in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
	kill -0 "$p" 2>/dev/null && fail "node $1 did not stop"
	wait "$p" || fail "node $1 exited $?"
}
body() {
	printf '{"applicant":{"idhash":"%s","kind":"person"},"case_id":"%s","materials":[],"mode":"online","service":"hukou.transfer"}' \
		6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0 "pkg$RANDOM$SECONDS" >"$T/body.json"
}
send() {
	body
	tongban send --node /etc/tongban/320000.conf --to 370000 --type case.submit \
		--service hukou.transfer --body "$T/body.json"
}
state() { tongban status --node /etc/tongban/320000.conf "$1" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'; }
delivered() {
	local end=$((SECONDS + 60)) s
	while :; do
		s=$(state "$1") || s=""
		[ "$s" = delivered ] && return 0
		[ "$s" = failed ] && fail "message $1 failed"
		[ "$SECONDS" -lt "$end" ] || fail "message $1 not delivered within 60 s (state $s)"
		sleep 0.2
	done
}

step "both nodes as user tongban; a message"
start 320000
start 370000
for id in 320000 370000; do
	[ "$(ps -o user=,comm= -p "${PID[$id]}" | tr -s ' ')" = "tongban tongban-node" ] ||
		fail "node $id does not run as tongban: $(ps -o user=,comm= -p "${PID[$id]}")"
done
id1=$(send) || fail "send"
delivered "$id1"
echo "delivered: $id1"
[ "$(stat -c '%U %a' /var/lib/tongban/320000/journal.db)" = "tongban 600" ] ||
	fail "journal is $(stat -c '%U %a' /var/lib/tongban/320000/journal.db)"

step "a queued message across an upgrade"
stop 370000
id2=$(send) || fail "send (receiver stopped)"
sleep 2
[ "$(state "$id2")" != delivered ] || fail "$id2 delivered with the receiver stopped"
stop 320000
echo "# edited by the package test" >>/etc/tongban/node.conf
sed -i "1s/^tongban (\([^)]*\))/tongban (\1+ci1)/" "$T/tongban/debian/changelog"
V2=$(dpkg-parsechangelog -l "$T/tongban/debian/changelog" -S Version)
[ "$V2" = "$V1+ci1" ] || fail "changelog bump: $V2"
(cd "$T/tongban" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b -nc >"$T/build2.log" 2>&1) || fail "dpkg-buildpackage (upgrade)"
(cd "$T" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	"./tongban-node_${V2}_amd64.deb" "./tongban_${V2}_amd64.deb" \
	"./tongban-tools_${V2}_amd64.deb" >"$T/apt2.log" 2>&1) || fail "apt-get install (upgrade)"
[ "$(dpkg-query -W -f='${Version}' tongban-node)" = "$V2" ] || fail "not upgraded"
grep -q '^# edited by the package test$' /etc/tongban/node.conf || fail "edited conffile not kept"
[ -f /var/lib/tongban/320000/journal.db ] || fail "journal gone"
start 370000
start 320000
delivered "$id2"
echo "delivered after the upgrade: $id2"
[ "$(state "$id1")" = delivered ] || fail "$id1 forgotten across the upgrade"

step "tongban-interop on the installed vectors"
stop 320000
stop 370000
rm -rf "$T/tongban"
(cd / && tongban-interop --suite vectors | tail -n 1) || fail "tongban-interop --suite vectors"

step "purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tongban-node tongban tongban-tools >"$T/purge.log" 2>&1 ||
	fail "apt-get purge"
[ ! -e /var/lib/tongban ] || fail "/var/lib/tongban left by purge"
! getent passwd tongban >/dev/null || fail "user tongban left by purge"
[ ! -e /etc/tongban/node.conf ] || fail "conffile left by purge"
rm -rf /etc/tongban
echo "package: all passed ($SECONDS s)"
