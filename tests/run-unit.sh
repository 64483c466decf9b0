#!/usr/bin/env bash
# run-unit.sh BUILD - runs every BUILD/tests/test_* (cmocka) binary, shows
# its output and one result line per binary:
#   unit NAME: P passed, F failed
# A binary that crashes or exits non-zero without a cmocka failure count is
# counted as one failed test. Exits non-zero if anything failed.
set -u
build=${1:-build}
dir="$build/tests"
total_p=0 total_f=0
shopt -s nullglob
bins=("$dir"/test_*)
if [ ${#bins[@]} -eq 0 ]; then
	echo "run-unit: no unit test binaries in $dir"
	exit 0
fi
for t in "${bins[@]}"; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	name=$(basename "$t")
	out=$("$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s).*/\1/p' | tail -n1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' | tail -n1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or failed outside cmocka's accounting
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		echo "unit $name: $p passed, $f failed (exit $rc)"
	else
		echo "unit $name: $p passed, $f failed"
	fi
	total_p=$((total_p + p))
	total_f=$((total_f + f))
done
echo "unit binaries in $build: $total_p passed, $total_f failed in all"
[ "$total_f" -eq 0 ]
