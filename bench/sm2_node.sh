#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/sm2_node.sh BUILDDIR [MESSAGES] [ROUNDS] - tongban-bench node with
# SM2 message and receipt keys against P-256, in one run (issue 21 point
# 6): the two alternate, ROUNDS each (default 2; MESSAGES default 20000),
# so drift in machine load hits both alike; prints each run's JSON line,
# then the mean msgs/s of each and their ratio (sm2 / p256, wanted >= 0.8),
# and the ratio of their CPU per message (sender + receiver, p256 / sm2:
# the capacity ratio, which holds up better than msgs/s on a shared
# machine) as one JSON line.  By hand, not in make check; the figures go into
# docs/PERFORMANCE.md.
set -u
B=${1:-build}
N=${2:-20000}
R=${3:-2}
i=0
p=0
s=0
pc=0
sc=0
while [ "$i" -lt "$R" ]; do
	for alg in p256 sm2; do
		line=$("$B/tongban-bench" node --messages "$N" --alg "$alg" | tail -n 1) || exit 1
		echo "$line"
		v=$(printf '%s' "$line" | sed 's/.*"msgs_per_s":\([0-9]*\).*/\1/')
		c=$(printf '%s' "$line" | sed 's/.*"sender_cpu_us_per_msg":\([0-9]*\),"receiver_cpu_us_per_msg":\([0-9]*\).*/\1 + \2/')
		c=$(($c))
		if [ "$alg" = p256 ]; then p=$((p + v)); pc=$((pc + c)); else s=$((s + v)); sc=$((sc + c)); fi
	done
	i=$((i + 1))
done
awk -v p="$p" -v s="$s" -v pc="$pc" -v sc="$sc" -v r="$R" 'BEGIN {
	printf "{\"p256_msgs_per_s\":%.0f,\"sm2_msgs_per_s\":%.0f,\"ratio\":%.3f,", p / r, s / r, s / p
	printf "\"p256_cpu_us_per_msg\":%.0f,\"sm2_cpu_us_per_msg\":%.0f,\"cpu_ratio\":%.3f}\n", pc / r, sc / r, pc / sc }'
