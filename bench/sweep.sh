#!/usr/bin/env bash
# sweep.sh - Mpps of the in-memory pipeline against the number of hops in
# the chain (0 = guest to guest) and the number of flows, as a CSV and a PNG
# plot: build/bench/sweep.csv, build/bench/sweep.png.
#   bash bench/sweep.sh [--smoke]
set -eu
cd "$(dirname "$0")/.."
make -s build/bench/bench_pipeline
out=build/bench
./build/bench/bench_pipeline --sweep "$@" | tee "$out/sweep.csv"
if ! command -v gnuplot >/dev/null; then
	echo "sweep: gnuplot not installed, no plot (scripts/install-deps.sh installs it)" >&2
	exit 0
fi
gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 900,560 noenhanced
set output "$out/sweep.png"
set title "Detour in-memory pipeline, one core: established flows through a chain of NSH nodes"
set xlabel "hops (service nodes on the path; 0 = guest to guest)"
set ylabel "Mpps"
set key top right
set grid
set xtics 1
plot for [f in "1 1000 100000"] "$out/sweep.csv" using (\$2 == f+0 ? \$1 : NaN):3 with linespoints lw 2 title sprintf("%s flows", f)
GP
echo "sweep: plot in $out/sweep.png"
