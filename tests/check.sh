#!/usr/bin/env bash
# check.sh - everything `make check` runs: the build, the unit tests (plain
# and sanitizer builds), the clang build, fuzz smoke runs, the end-to-end lab
# tests (root) and the benchmark smoke runs. Every build step, fuzz target
# and bench smoke counts as one test; every cmocka test case and every e2e
# PASS/FAIL line counts as one. The last line is exactly "N passed, N failed";
# the exit status is non-zero if anything failed.
# Environment: FUZZ_TIME (seconds per fuzz target, default 10), E2E_TIMEOUT
# (seconds per e2e script, default 600), CHECK_SKIP_E2E=1 to leave e2e out.
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

ok() { passed=$((passed + 1)); echo "PASS: $1"; }
ko() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }

section() { printf '\n==== %s ====\n' "$1"; }

# step DESCRIPTION CMD... : one test, passes when CMD exits 0.
step() {
	local desc=$1
	shift
	section "$desc"
	if "$@"; then ok "$desc"; else ko "$desc"; fi
}

# Unit tests of one build directory, counted per cmocka test case.
unit() {
	local build=$1 out line p f name
	section "unit tests ($build)"
	out=$(bash tests/run-unit.sh "$build" 2>&1)
	printf '%s\n' "$out"
	while IFS= read -r line; do
		if [[ $line =~ ^unit\ (test_[^:]*):\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
			name=${BASH_REMATCH[1]}
			p=${BASH_REMATCH[2]}
			f=${BASH_REMATCH[3]}
			passed=$((passed + p))
			failed=$((failed + f))
			[ "$f" -gt 0 ] && failures+=("unit $name ($build): $f failed")
		fi
	done <<<"$out"
}

# ---- builds and unit tests ----
step "build (make -j2 all)" make -j2 all
unit build
step "sanitizer build (make -j2 asan)" make -j2 asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
unit build-asan
step "clang build (make -j2 clang)" make -j2 clang

# ---- fuzz targets: build, then a short smoke run each ----
step "fuzz build (make fuzz)" make fuzz
fuzz_time=${FUZZ_TIME:-10}
shopt -s nullglob
for fz in build-fuzz/fuzz_*; do
	[ -f "$fz" ] && [ -x "$fz" ] || continue
	name=$(basename "$fz")
	name=${name#fuzz_}
	scratch="build-fuzz/corpus-$name"
	mkdir -p "$scratch"
	dirs=("$scratch")
	[ -d "fuzz/corpus/$name" ] && dirs+=("fuzz/corpus/$name")
	section "fuzz smoke $name (${fuzz_time}s)"
	log="build-fuzz/$name.log"
	if "$fz" -max_total_time="$fuzz_time" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "${dirs[@]}" >"$log" 2>&1; then
		tail -n 3 "$log"
		ok "fuzz smoke $name"
	else
		tail -n 40 "$log"
		ko "fuzz smoke $name (log: $log)"
	fi
done

# ---- end-to-end lab tests ----
if [ "${CHECK_SKIP_E2E:-0}" = 1 ]; then
	section "e2e skipped (CHECK_SKIP_E2E=1)"
elif [ "$(id -u)" != 0 ]; then
	section "e2e"
	ko "e2e tests need root (network namespaces); run make check as root"
else
	# every script with AF_PACKET ports and two workers per detourd, then
	# the traffic scripts again with AF_XDP ports (E2E_IO=afxdp, see
	# lib.sh) and with one worker
	runs=()
	for t in tests/e2e/*.sh; do
		[ "$(basename "$t")" = lib.sh ] || runs+=("$t::2")
	done
	for t in basic chain nat distributed; do
		runs+=("tests/e2e/e2e_$t.sh:afxdp:2")
	done
	# Geneve through the hosts' AF_XDP uplinks (E2E_UPLINK=1)
	for w in 1 2; do
		runs+=("tests/e2e/e2e_distributed.sh:uplink:$w")
	done
	runs+=("tests/e2e/e2e_underlay.sh:uplink:2" "tests/e2e/e2e_mtu.sh:uplink:2")
	for t in basic chain nat; do
		runs+=("tests/e2e/e2e_$t.sh::1")
	done
	# the lab on the ASan/UBSan build: threads, hand-offs, reloads
	for t in workers reload distributed; do
		runs+=("tests/e2e/e2e_$t.sh::2:asan")
	done
	for r in "${runs[@]}"; do
		IFS=: read -r t io workers san <<<"$r"
		name="$(basename "$t" .sh)${io:+ ($io)} ($workers worker$([ "$workers" = 1 ] || echo s))${san:+ ($san)}"
		bindir=$PWD/build/bin
		[ "$san" = asan ] && bindir=$PWD/build-asan/bin
		section "e2e $name"
		ul=""
		[ "$io" = uplink ] && io="" ul=1
		out=$(E2E_IO=$io E2E_UPLINK=$ul E2E_WORKERS=$workers DETOUR_BIN=$bindir timeout --kill-after=10 "${E2E_TIMEOUT:-600}" bash "$t" 2>&1)
		rc=$?
		printf '%s\n' "$out"
		np=$(grep -c '^PASS: ' <<<"$out")
		nf=$(grep -c '^FAIL: ' <<<"$out")
		passed=$((passed + np))
		failed=$((failed + nf))
		if [ "$nf" -gt 0 ]; then
			while IFS= read -r l; do failures+=("${l#FAIL: }"); done < <(grep '^FAIL: ' <<<"$out")
		fi
		if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then
			ko "e2e $name exited with status $rc without a FAIL line"
		elif [ "$np" -eq 0 ] && [ "$nf" -eq 0 ]; then
			ko "e2e $name printed no result"
		fi
	done
fi

# ---- benchmark smoke runs ----
for b in build/bench/*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	step "bench smoke $(basename "$b")" timeout 300 "$b" --smoke
done
step "bench smoke bench_pipeline --workers 2" timeout 300 build/bench/bench_pipeline --smoke --workers 2
if [ "$(id -u)" = 0 ] && [ "${CHECK_SKIP_E2E:-0}" != 1 ]; then
	step "bench smoke system" timeout 300 bash bench/system/run.sh --smoke
fi

section "summary"
for f in "${failures[@]}"; do echo "  failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
