#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# walkthrough.sh BUILDDIR - the protocol core, step by step: make keys,
# create an envelope, seal it, open it, and watch tampering fail.
# (Replaced by the federation demo once the node exists.)
set -eu
B=${1:-build}
T=$(cd "$B" && pwd)/tongban
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "1. Xuzhou (320300) creates an Ed25519 message-signing key"
run "$T" key gen --alg ed25519 --out "$W/xuzhou.key"
run "$T" key pub "$W/xuzhou.key" > "$W/xuzhou.pub"
printf 'key id: '; "$T" key id "$W/xuzhou.pub"

step "2. It writes a case submission for Linyi (371300)"
cat > "$W/body.json" <<'JSON'
{"service":"hukou.transfer","mode":"joint",
 "applicant":{"idhash":"6b1f0c1e2d3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4"},
 "materials":[{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":4}]}
JSON
run "$T" msg new --type case.submit --from 320300 --to 371300 --service hukou.transfer --body "$W/body.json" > "$W/msg.json"
cat "$W/msg.json"

step "3. It seals the envelope (RFC 8785 form without sig, signed)"
run "$T" msg seal --key "$W/xuzhou.key" "$W/msg.json" > "$W/sealed.json"
cat "$W/sealed.json"

step "4. Linyi opens it with Xuzhou's public key"
run "$T" msg open --pub "$W/xuzhou.pub" "$W/sealed.json" > /dev/null && echo "verified: ok"
printf 'digest: '; "$T" msg digest "$W/sealed.json"

step "5. A byte changed in transit is caught"
sed 's/"371300"/"371700"/' "$W/sealed.json" > "$W/tampered.json"
if "$T" msg open --pub "$W/xuzhou.pub" "$W/tampered.json" >/dev/null; then
	echo "walkthrough: tampered envelope was accepted" >&2
	exit 1
fi

step "6. A P-256 key works the same way"
run "$T" key gen --alg p256 --out "$W/p256.key"
"$T" key pub "$W/p256.key" > "$W/p256.pub"
"$T" msg seal --key "$W/p256.key" "$W/msg.json" | "$T" msg open --pub "$W/p256.pub" >/dev/null && echo "verified: ok"

printf '\nwalkthrough: all steps passed\n'
