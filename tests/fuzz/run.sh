#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS]: builds the libFuzzer targets
# (tests/fuzz/fuzz_*.c, see tests/fuzz/README.md) with clang, ASan and
# UBSan in a tree of their own (build-fuzz/, so the normal build is neither
# touched nor slowed), seeds each from the test corpus, tests/fuzz/seeds/
# and tests/fuzz/regress/, and runs them one after the other for SECONDS
# each. A crash, a leak, undefined behaviour or a failed check of the
# target fails the run; the input that caused it stays in
# build-fuzz/crashes/<target>/, and the log prints its path and the
# command that replays it. What a run found new stays in
# build-fuzz/corpus/<target>/ for the next. Environment:
#   COMFYQ_FUZZ_DIR  build directory (default: build-fuzz)
#   FUZZ_SECONDS     seconds per target when no argument is given (60)
#   FUZZ_TARGETS     which targets (default: all seven,
#                    "wfjob input render rqurl simreq comfyws sched")
#   FUZZ_RUNS        stop a target after this many executions, if its
#                    time is not up first (default: no limit)
#   FUZZ_JOBS        build jobs (default: nproc)
# Installs clang and libFuzzer's runtime when missing (deploy/lib/);
# tests/run.sh installs the libraries the build needs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
dir=${COMFYQ_FUZZ_DIR:-build-fuzz}
secs=${1:-${FUZZ_SECONDS:-60}}
targets=${FUZZ_TARGETS:-wfjob input render rqurl simreq comfyws sched}
case $secs in
'' | *[!0-9]*)
	echo "usage: tests/fuzz/run.sh [SECONDS]" >&2
	exit 2
	;;
esac

. "$root/deploy/lib/packages.sh"
. "$root/deploy/lib/deps.sh"
# shellcheck disable=SC2086
deps_install $PKGS_FUZZ
deps_install "$(pkgs_fuzz_runtime)"

cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DASAN=ON -DUBSAN=ON \
	-DCOMFYQ_FUZZ=ON -DCOMFYQ_CUDA=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$dir" -j "${FUZZ_JOBS:-$(nproc)}" --target $(printf 'fuzz_%s ' $targets)

# Seeds: tests/fuzz/seeds/<t>/ and tests/fuzz/regress/<t>/, and the
# corpora the unit tests use, split one input a file.
seeds() {
	local t=$1 out=$dir/seeds/$1 n=0 line f
	rm -rf "$out"
	mkdir -p "$out"
	for f in "tests/fuzz/seeds/$t"/* "tests/fuzz/regress/$t"/*; do
		[ -f "$f" ] && cp "$f" "$out/$(basename "$(dirname "$f")")_$(basename "$f")"
	done
	case $t in
	wfjob)
		cp tests/data/golden/*.case.json "$out/"
		while IFS= read -r line; do
			n=$((n + 1))
			printf '%s' "$line" >"$out/good$n.json"
		done <tests/data/specs/good.txt
		grep -v '^#' tests/data/specs/bad.tsv | cut -f2- |
			while IFS= read -r line; do
				n=$((n + 1))
				printf '%s' "$line" >"$out/bad$n.json"
			done
		;;
	input)
		# Byte 0 picks fitting and Canny; then the file or its base64.
		for f in tests/data/images/*; do
			n=$((n + 1))
			{ printf '\0'; cat "$f"; } >"$out/raw$n"
			{ printf '\030data:image/png;base64,'; base64 -w0 "$f"; } \
				>"$out/b64$n"
		done
		;;
	render)
		# Byte 0 picks a template when the spec names none.
		for f in tests/data/golden/*.case.json; do
			{ printf '\0'; cat "$f"; } >"$out/$(basename "$f")"
		done
		while IFS= read -r line; do
			n=$((n + 1))
			printf '\0%s' "$line" >"$out/good$n.json"
		done <tests/data/specs/good.txt
		;;
	rqurl)
		# The URLs the unit tests parse.
		grep -ohE '"(redis|rediss|unix)[^"]*"' tests/unit/test_rq.c |
			tr -d '"' | sort -u | while IFS= read -r line; do
			n=$((n + 1))
			printf '%s' "$line" >"$out/unit$n"
		done
		;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in $targets; do
	seeds "$t"
	mkdir -p "$dir/corpus/$t" "$dir/crashes/$t"
	opts=()
	[ -f "tests/fuzz/$t.dict" ] && opts=(-dict="tests/fuzz/$t.dict")
	[ -n "${FUZZ_RUNS:-}" ] && opts+=(-runs="$FUZZ_RUNS")
	echo "fuzz: $t for $secs s"
	if ! "$dir/bin/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "${opts[@]}" \
		-artifact_prefix="$dir/crashes/$t/" \
		"$dir/corpus/$t" "$dir/seeds/$t" >"$dir/fuzz_$t.log" 2>&1; then
		failed=$((failed + 1))
		tail -60 "$dir/fuzz_$t.log"
		for f in "$dir/crashes/$t"/*; do
			[ -e "$f" ] || continue
			echo "fuzz: $t failed; reproducer: $f"
			echo "fuzz: replay with: $dir/bin/fuzz_$t $f"
		done
		continue
	fi
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
		"$dir/fuzz_$t.log" | sed "s/^/fuzz: $t: /"
done
n=$(echo "$targets" | wc -w)
echo "fuzz: $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
