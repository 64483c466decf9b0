#!/usr/bin/env bash
# callgrind.sh - instructions per packet of the in-memory pipeline under
# valgrind's callgrind: repeatable on a noisy machine (it counts
# instructions, not time). Each scenario runs twice with N and 2N packets;
# the difference divided by N removes the set-up. N is large enough for
# both runs to pass the flow cache's rest after the set-up's burst of new
# flows (flowcache.h: 64 windows of 1024 probes), so the figure is the
# steady state's.
#   bash bench/callgrind.sh [N]     (default N = 100000; FLOWS=K picks the
#   number of distinct flows, default 1000)
set -eu
cd "$(dirname "$0")/.."
make -s build/bench/bench_pipeline
n=${1:-100000}
count() { # scenario packets -> instructions
	valgrind --tool=callgrind --callgrind-out-file=/dev/null ./build/bench/bench_pipeline \
		--only "$1" --flows "${FLOWS:-1000}" --packets "$2" 2>&1 >/dev/null |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-8s %16s\n' scenario instr/packet
for s in g2g chain dist; do
	a=$(count "$s" "$n")
	b=$(count "$s" $((2 * n)))
	printf '%-8s %16d\n' "$s" $(((b - a) / n))
done
