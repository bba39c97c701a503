#!/usr/bin/env bash
# tests/run.sh: install what is missing, build with ASan and UBSan, start a
# private redis-server, and run every test (ctest: unit and integration).
# Works on a fresh Debian machine as root or with sudo; without either it
# prints the exact apt-get line to run. Environment:
#   COMFYQ_BUILD_DIR   build directory (default: build); its install prefix
#                      is BUILD/stage (integration.install installs there:
#                      this ASan build is never meant for /usr/local)
#   CI=true            also turns warnings into errors
#   CTEST_ARGS         extra arguments for ctest (e.g. "-R integration")
#   COMFYQ_FUZZ_SECONDS seconds each libFuzzer target runs after the tests
#                      pass (tests/fuzz/run.sh, clang, in build-fuzz/;
#                      default 10, .ci/run gives 30; 0 skips); skipped
#                      when CTEST_ARGS picks tests
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${COMFYQ_BUILD_DIR:-build}

. "$root/deploy/lib/packages.sh"
. "$root/deploy/lib/deps.sh"
# shellcheck disable=SC2086
deps_install $PKGS_BUILD $PKGS_RUN $PKGS_TEST

werror=OFF
[ "${CI:-}" = true ] && werror=ON
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASAN=ON \
	-DUBSAN=ON -DWERROR=$werror \
	-DCMAKE_INSTALL_PREFIX="$(cd "$build" && pwd)/stage"
cmake --build "$build" -j "$(nproc)"

. "$root/deploy/lib/redis.sh"
rdir=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-run.XXXXXX")
cleanup() { redis_stop; rm -rf "$rdir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
redis_start "$rdir"
export COMFYQ_TEST_REDIS_URL=$REDIS_URL
echo "tests/run.sh: redis-server pid $REDIS_PID on $REDIS_URL"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
bdir=$(realpath "$build")

# leftovers: the processes a test started and left running: a program of
# this build, or an example of this checkout (a test stops what it starts,
# by PID; a user's own processes, say demo.sh's in build-release, are not
# matched).
leftovers() {
	local d exe args mine=" $BASHPID " p=$$
	while [ "$p" -gt 1 ]; do	# this shell and its callers
		mine="$mine$p "
		p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null) || break
	done
	for d in /proc/[0-9]*; do
		case "$mine" in *" ${d#/proc/} "*) continue ;; esac
		exe=$(readlink "$d/exe" 2>/dev/null) || continue
		args=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		case "$exe $args" in
		*"$root/tests/run.sh"*) ;;	# this script's own subshells
		"$bdir"/* | *" $bdir/"* | *" $root/deploy/examples/"* | \
			*" $root/tests/"*) echo "${d#/proc/}" ;;
		esac
	done
}

cd "$build"
rc=0
# shellcheck disable=SC2086
ctest --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-} || rc=$?
# (Twice, 2 s apart: what is in both scans, not a process on its way out.)
left=$(leftovers)
if [ -n "$left" ]; then
	sleep 2
	left=$(leftovers | grep -xF "$left" || true)
fi
if [ -n "$left" ]; then
	echo "tests/run.sh: processes left running by the tests (stopped now):"
	# shellcheck disable=SC2086
	ps -o pid,etime,args -p "$(echo $left | tr ' ' ',')" || true
	# shellcheck disable=SC2086
	kill -9 $left 2>/dev/null || true
	rc=1
fi
# The short fuzz runs: every target for COMFYQ_FUZZ_SECONDS, on the whole
# suite only (a CTEST_ARGS run is a developer's targeted one).
fuzz_secs=${COMFYQ_FUZZ_SECONDS:-10}
if [ "$rc" = 0 ] && [ -z "${CTEST_ARGS:-}" ] && [ "$fuzz_secs" != 0 ]; then
	"$root/tests/fuzz/run.sh" "$fuzz_secs" || rc=1
fi
exit $rc
