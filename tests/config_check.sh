#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/config_check.sh - `tongban-node -n` and the configuration table.
# * A good configuration: exit 0, "configuration OK".
# * (Warnings, such as the dev registry's expiry within 30 days, are
#   lines "tongban-node: warning: ..." beside the failures.)
# * A value the table refuses (registry_upstream = hello), keys that
#   disagree (retry_min_ms > retry_max_ms, at the later key's line), and
#   files named by the configuration that are missing or are not what
#   the key says (cert, key, sign_key, root, trust, registry): exit 1 and
#   one line "file:line: key: why" (or the file's own message) on stderr.
# * --help and tongban-node(8) name the same keys and the same reloadable
#   (SIGHUP) ones.
# Starts no daemon.  tests/node_checks.sh has the checks of what the
# node will use (identity, modes, ports) at -n and at start-up.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
nl_devfed 320300
conf=$F/320300/node.conf
bad=$F/320300/bad.conf
lines=$(wc -l <"$conf")

out=$("$TBN" -n -c "$conf" 2>&1) || nl_fail "tongban-node -n on a good config" "exit 0" "$out"
nl_has "tongban-node -n on a good config" "configuration OK" "$out"

# refused TEXT_EXPECTED [N]: -n on $bad exits 1 with one failure line (or
# N) on stderr, one of them holding TEXT_EXPECTED
refused() {
	local rc=0 err
	"$TBN" -n -c "$bad" >"$W/out" 2>"$W/err" || rc=$?
	err=$(cat "$W/err")
	nl_eq "-n exit status ($1)" 1 "$rc"
	nl_eq "-n: failures on stderr ($1)" "${2:-1}" "$(grep -v -c '^tongban-node: warning: ' "$W/err")"
	nl_has "-n message" "tongban-node: $1" "$err"
	[ ! -s "$W/out" ] || nl_fail "-n printed on stdout for a refused config" "nothing" "$(cat "$W/out")"
}
# with LINES...: $bad is $conf with LINES added at its end
with() { cp "$conf" "$bad"; printf '%s\n' "$@" >>"$bad"; }
# edit SED: $bad is $conf edited
edit() { sed "$1" "$conf" >"$bad"; }

with "registry_upstream = hello"
refused "$bad:$((lines + 1)): registry_upstream: must be a 6-digit member id"
with "retry_min_ms = 5000" "# the largest delay" "retry_max_ms = 1000"
refused "$bad:$((lines + 3)): retry_max_ms: retry_min_ms (5000) is greater than retry_max_ms (1000)"
with "retry_min_ms = 70000"
refused "$bad:$((lines + 1)): retry_min_ms: retry_min_ms (70000) is greater than retry_max_ms (60000)"
with "webhook = http://192.0.2.1:80/x"
refused "$bad:$((lines + 1)): webhook: must be on this machine"
with "log_level = loud"
refused "$bad:$((lines + 1)): log_level: must be one of debug, info, warn, error"
with "deflate = 2"
refused "$bad:$((lines + 1)): deflate: must be yes or no"

# the files the configuration names
n() { grep -n "^$1 = " "$conf" | cut -d: -f1; }
edit "s|^cert = .*|cert = missing.pem|"
refused "$bad:$(n cert): cert: cannot read $F/320300/missing.pem: No such file or directory"
# (a certificate given as a key, kept private as a key would be)
install -m 600 "$F/320300/node.crt" "$F/320300/cert-as-key.pem"
edit "s|^key = .*|key = cert-as-key.pem|"
refused "$bad:$(n key): key: $F/320300/cert-as-key.pem: not a PEM private key"
with "sign_key = cert-as-key.pem"
refused "$bad:$((lines + 1)): sign_key: $F/320300/cert-as-key.pem: not a PEM private key"
edit "s|^key = .*|key = ../testids/foreign/node.key|"
refused "$bad:$(n cert): cert: $F/320300/node-chain.pem does not certify the key in $F/320300/../testids/foreign/node.key"
edit "s|^root = .*|root = node.crt|"
refused "$bad:$(n root): root: $F/320300/node.crt: serialNumber=320300,CN=Member 320300,O=tongban-dev is not a CA certificate"
edit "s|^trust = .*|trust = node.key|"
refused "$bad:$(n trust): trust: json.syntax: malformed JSON at byte 1"
edit "s|^registry = .*|registry = ../trust.json|"
refused "$bad:$(n registry): registry: "
edit "s|^member_id = .*|member_id = 371300|"
# (and not the certificate's member: a second line)
refused "$bad:$(n member_id): member_id: 371300 is not a member of the registry (serial 1)" 2
edit "s|^registry = .*|registry = nowhere.json|"
refused "$bad:$(n registry): registry: cannot read $F/320300/nowhere.json"
# a journal need not exist yet: start-up creates it
edit "s|^journal = .*|journal = new/journal.db|"
out=$("$TBN" -n -c "$bad" 2>&1) || nl_fail "-n with a journal not yet created" "exit 0" "$out"
nl_ok

# --help and the manual agree on the keys and on which are reloadable
man=${TB_SRCDIR:-.}/man/tongban-node.8
help=$("$TBN" --help)
keys=$(printf '%s\n' "$help" | sed -n '/^Configuration keys/,/^$/s/^  \([a-z_]*\) .*/\1/p')
hup=$(printf '%s\n' "$help" | sed -n '/^Configuration keys/,/^$/s/^  \([a-z_]*\) .*(SIGHUP)$/\1/p' | sort)
[ "$(printf '%s\n' "$keys" | wc -l)" -ge 20 ] || nl_fail "--help lists the keys" ">= 20 keys" "$keys"
nl_eq "reloadable keys in --help" "archive_dir batch_max breaker_open_ms clock_skew deflate full_retry log_format log_level max_message_size registry_warn_days retention retry_max_ms retry_min_ms" "$(echo $hup)"
# the manual: CONFIGURATION's entries (".B key" or ".BR key , key2"),
# those that say (SIGHUP), and the keys SIGNALS names under SIGHUP
mankeys=$(sed -n '/^\.SH CONFIGURATION/,/^\.SH /p' "$man" | awk '
	/^\.TP/ { tp = 1; next }
	tp && /^\.BR? / { sub(/^\.BR? /, ""); gsub(/[",]/, " "); for (i = 1; i <= NF; i++) print $i }
	{ tp = 0 }' | sort)
nl_eq "keys in tongban-node(8) and --help" "$(printf '%s\n' "$keys" | sort | tr '\n' ' ')" "$(echo $mankeys) "
manhup=$(sed -n '/^\.SH CONFIGURATION/,/^\.SH /p' "$man" | awk '
	/^\.TP/ { getline; sub(/^\.BR? /, ""); gsub(/[",]/, " "); cur = $0; next }
	/\(SIGHUP\)/ && cur != "" { n = split(cur, k, " "); for (i = 1; i <= n; i++) print k[i]; cur = "" }' | sort -u)
nl_eq "keys tongban-node(8) marks (SIGHUP)" "$(echo $hup)" "$(echo $manhup)"
sighup=$(sed -n '/^\.B SIGHUP/,/^\.\(SH\|TP\)/p' "$man" | tr '\n' ' ' |
	sed -n 's/.*(SIGHUP) under CONFIGURATION (\([^)]*\)).*/\1/p' | tr -s ' ,' '\n' | sort -u)
nl_eq "keys named under SIGNALS SIGHUP" "$(echo $hup)" "$(echo $sighup)"
nl_done
